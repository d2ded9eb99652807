//! # switchyard-control
//!
//! The control plane of Switchyard (docs/design.md, "Control plane"): what
//! operators want per application (the desired state: pauses, and later slot
//! owners and handoff offsets), stored with compare-and-set, applied by an
//! agent in every instance, acknowledged through a status topic.
//!
//! - [`model`]: the JSON schema; [`command`]: pause/resume commands;
//! - [`log`]: the compare-and-set reducer over the control log;
//! - [`targets`]: desired state to pause targets per listener, with expiries;
//! - [`store`]: the store trait, over [`kafka_store`], [`redis_store`] and
//!   [`file_source`];
//! - [`agent`]: the per-instance loop; [`status`], [`status_topic`]: actual
//!   state, the fleet view, the status topic;
//! - [`http`]: the admin API, with [`actuator`], its Spring Cloud Stream
//!   bindings-actuator shapes, [`api`], what the handlers of both share,
//!   and [`request`], the bodies of their state changes.
//!
//! See docs/control-plane.md in the repository.

pub mod actuator;
pub mod agent;
pub mod api;
pub mod command;
pub mod compacted_topic;
pub mod error;
pub mod file_source;
pub mod http;
pub mod kafka_clients;
pub mod kafka_store;
pub mod log;
pub mod metrics;
pub mod model;
pub mod redis_store;
pub mod request;
pub mod status;
pub mod status_topic;
pub mod store;
pub mod targets;

pub use agent::{Agent, AgentConfig};
pub use error::ControlError;
pub use model::{DesiredState, Pause};
pub use store::{SharedStore, Store};
