//! The start of an instance in its slot: before a listener joins its
//! consumer group, it holds paused what the desired state wants paused in
//! the instance's slot (the partitions another slot or nobody owns, the
//! fleet's pauses), so a standby never processes a record. The runtime
//! keeps the wanted targets of a listener and applies them to partitions
//! assigned later; the agent joins the group at its first apply.

use std::collections::BTreeSet;

use switchyard_control::{model::now_ms, targets, DesiredState};
use switchyard_runtime::{ListenerHandle, PauseTarget};

use crate::error::{InstanceError, Result};

/// The targets `listener` must hold in `slot` before it joins, by `initial`.
pub(crate) fn held_at_start(
    initial: &DesiredState,
    listener: &str,
    slot: &str,
) -> BTreeSet<PauseTarget> {
    targets::wanted_in_slot(Some(initial), &Default::default(), listener, slot, now_ms())
}

/// Pause in `listener` (started detached: nothing assigned yet) what
/// `initial` wants paused in `slot`.
pub(crate) async fn pause_for_slot(
    listener: &ListenerHandle,
    initial: &DesiredState,
    slot: &str,
) -> Result<()> {
    for t in held_at_start(initial, listener.name(), slot) {
        tracing::debug!(listener = listener.name(), target = %targets::describe(&t), slot, "held from the start");
        listener
            .pause(t)
            .await
            .map_err(|e| InstanceError::listener(listener.name(), e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_standby_holds_what_another_slot_owns_and_the_owner_holds_nothing() {
        let mut s = DesiredState::new("a");
        s.owners
            .insert("l".into(), [("t-0".to_string(), "blue".to_string())].into());
        assert_eq!(
            held_at_start(&s, "l", "green"),
            BTreeSet::from([PauseTarget::Partition("t".into(), 0)])
        );
        assert!(held_at_start(&s, "l", "blue").is_empty());
        assert!(held_at_start(&s, "other", "green").is_empty());
    }
}
