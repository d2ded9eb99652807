//! The two ways an application's slots share its partitions, each driven
//! by the [`Driver`](crate::Driver):
//!
//! - [`separate`]: a consumer group per slot; partitions move by the
//!   drain-verified handoff planned in [`plan`](crate::plan);
//! - [`shared`]: one consumer group for every slot; the standby slot joins
//!   it at the switch and the active slot then leaves.
//!
//! The strategy is chosen at `deploy init` and recorded in the desired
//! state ([`bookkeeping`](crate::bookkeeping)).

pub mod separate;
pub mod shared;
