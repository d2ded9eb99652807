//! Rebalance hooks: application code that runs when partitions are assigned,
//! revoked or lost (like Java's `ConsumerRebalanceListener`).
//!
//! The runtime does the safety work itself before calling `on_revoked`: it
//! stops dispatching the revoked partitions, waits for their in-flight records
//! (up to the revoke timeout) and commits synchronously. `on_lost` is called
//! instead when the assignment was lost (session timeout): nothing can be
//! committed then. Hooks run on the poll thread and must be quick.
//!
//! ```
//! use switchyard_runtime::hooks::RebalanceHooks;
//! struct Log;
//! impl RebalanceHooks for Log {
//!     fn on_assigned(&self, partitions: &[(String, i32)]) { println!("got {partitions:?}"); }
//! }
//! ```

/// Callbacks around rebalances; every method has an empty default.
pub trait RebalanceHooks: Send + Sync + 'static {
    /// Partitions were assigned (eager: the whole new assignment; cooperative: the added ones).
    fn on_assigned(&self, _partitions: &[(String, i32)]) {}
    /// Partitions are being revoked; their offsets are already committed.
    fn on_revoked(&self, _partitions: &[(String, i32)]) {}
    /// Partitions were lost without a clean revoke; nothing was committed.
    fn on_lost(&self, _partitions: &[(String, i32)]) {}
}

/// Hooks that do nothing.
pub struct NoHooks;
impl RebalanceHooks for NoHooks {}
