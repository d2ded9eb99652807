//! An instance of a slot: a listener and its control-plane agent, as a
//! [`switchyard_instance::Instance`], which starts the listener with what
//! the desired state wants paused in the slot already paused, so that a
//! standby never processes a record.

use std::time::Duration;

use switchyard_config::Connection;
use switchyard_control::SharedStore;
use switchyard_instance::{ControlStore, Instance};
use switchyard_runtime::ListenerBuilder;

/// Who an instance of the demo is.
pub(crate) struct SlotInstance<'a> {
    /// Application.
    pub app: &'a str,
    /// Slot.
    pub slot: &'a str,
    /// Instance id.
    pub instance: String,
    /// Status topic.
    pub status_topic: &'a str,
    /// Status heartbeat interval.
    pub heartbeat: Duration,
}

/// Start `listener` as the instance `who` on `bootstrap`, reading the
/// desired state from `store` (shared with the deploy driver). The demo
/// stops it itself: no signal handling.
pub(crate) async fn start_in_slot(
    bootstrap: &str,
    who: SlotInstance<'_>,
    listener: ListenerBuilder,
    store: SharedStore,
) -> anyhow::Result<Instance> {
    Ok(Instance::builder(who.instance)
        .connection(Connection::new(bootstrap))
        .listener(listener)
        .control(who.app, who.slot, ControlStore::Shared(store))
        .status_topic(who.status_topic)
        .status_interval(who.heartbeat)
        .handle_signals(false)
        .start()
        .await?)
}
