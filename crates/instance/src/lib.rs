//! # switchyard-instance
//!
//! One consumer instance of a Switchyard fleet, in one builder:
//! [`Instance::builder`] takes the listeners, the control plane (the
//! application, the instance's slot and the desired-state store:
//! [`ControlStore`]), the status topic, the admin HTTP API with its token,
//! the shutdown deadline and the stop signals, and starts them in order, so
//! that a standby slot never processes a record; [`Instance::shutdown`] and
//! [`Instance::run_until_signal`] stop them in order, within the deadline,
//! and report ([`ShutdownSummary`]).
//!
//! One file per concept:
//!
//! - `builder`: [`InstanceBuilder`] and the start order;
//! - `instance`: [`Instance`] and the stop order;
//! - `store`: [`ControlStore`], where the desired state is read;
//! - `slot`: what a listener holds paused before it joins its group;
//! - `admin`: the admin HTTP API on one address;
//! - `signals`: SIGTERM and SIGINT;
//! - `error`: [`InstanceError`].
//!
//! See docs/architecture.md in the repository.

mod admin;
mod builder;
mod error;
mod instance;
mod signals;
mod slot;
mod store;

pub use builder::{InstanceBuilder, DEFAULT_SHUTDOWN_TIMEOUT, DEFAULT_STATUS_INTERVAL};
pub use error::{InstanceError, Result};
pub use instance::{Instance, ShutdownSummary};
pub use signals::Signal;
pub use store::ControlStore;
