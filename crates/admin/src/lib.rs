//! # switchyard-admin
//!
//! Operations on consumer groups from outside, with no consumer of the group
//! running: resetting committed offsets ([`reset`]), like
//! `kafka-consumer-groups --reset-offsets`.

pub mod reset;

pub use reset::{reset_offsets, ResetError, ResetTo};
