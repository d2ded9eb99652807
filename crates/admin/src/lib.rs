//! # switchyard-admin
//!
//! Operations on consumer groups from outside, with no consumer of the group
//! running: describing a group, classic or KIP-848 ([`group`]: its state,
//! type, members and the partitions each holds), and resetting committed
//! offsets ([`reset`]), like `kafka-consumer-groups --reset-offsets`.

mod assignment;
mod error;
pub mod group;
pub mod reset;

pub use group::{
    describe_group, GroupDescription, GroupError, GroupState, GroupType, MemberDescription,
};
pub use reset::{reset_offsets, ResetError, ResetTo};
