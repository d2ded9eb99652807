//! The `deploy` map of the desired state: the keys the deployment commands
//! keep there besides the owners and joined slots (the previous slot, the
//! canary, the strategy, the handoff in progress), shared by both
//! strategies, `recover` and `status`. The lease keeps its own keys (its
//! holder and expiry) next to these.

use switchyard_control::model::DesiredState;

/// The slot the last switch came from (what `rollback` goes back to).
pub const PREVIOUS: &str = "previous";
/// The slot a canary moved to.
pub const CANARY: &str = "canary";
/// The slot a canary came from.
pub const CANARY_FROM: &str = "canary_from";
/// The strategy (`shared`; absent: separate groups).
pub const STRATEGY: &str = "strategy";
/// The value of [`STRATEGY`] for one shared group.
pub const SHARED: &str = "shared";
/// The listener's topics (comma-separated).
pub const TOPICS: &str = "topics";
/// A handoff in progress, `from>to` (for `recover`).
pub const IN_PROGRESS: &str = "in_progress";

/// Record a handoff from slot `from` to `to` as in progress.
pub fn mark_in_progress(s: &mut DesiredState, from: &str, to: &str) {
    s.deploy.insert(IN_PROGRESS.into(), format!("{from}>{to}"));
}

/// The `(from, to)` slots of the handoff recorded as in progress.
///
/// ```
/// use switchyard_control::DesiredState;
/// use switchyard_deploy::bookkeeping::{in_progress, mark_in_progress};
///
/// let mut s = DesiredState::new("a");
/// assert!(in_progress(&s).is_err());
/// mark_in_progress(&mut s, "blue", "green");
/// assert_eq!(in_progress(&s).unwrap(), ("blue".to_string(), "green".to_string()));
/// ```
pub fn in_progress(s: &DesiredState) -> Result<(String, String), String> {
    let v = s
        .deploy
        .get(IN_PROGRESS)
        .ok_or("an interrupted handoff is visible but its slots are not recorded; write the owners by hand")?;
    let (from, to) = v
        .split_once('>')
        .ok_or_else(|| format!("malformed `{IN_PROGRESS}` record `{v}`"))?;
    Ok((from.to_string(), to.to_string()))
}
