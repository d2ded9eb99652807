//! The errors of building and starting an instance: each names what failed
//! (a listener, the store, the admin address) and why. Stopping never
//! fails: what a shutdown could not do is said in its report (a
//! `ShutdownSummary`).

use std::net::SocketAddr;

use switchyard_control::ControlError;
use switchyard_runtime::RuntimeError;
use thiserror::Error;

/// What can go wrong when an instance starts.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use switchyard_instance::{Instance, InstanceError};
/// let e = Instance::builder("i-1").start().await.err().unwrap();
/// assert!(matches!(e, InstanceError::Invalid(_)));
/// assert_eq!(e.to_string(), "invalid instance: no listener was given");
/// # }
/// ```
#[derive(Debug, Error)]
pub enum InstanceError {
    /// The builder was given something that cannot run (no listener, two
    /// listeners of one name, a status topic without a control plane, ...).
    #[error("invalid instance: {0}")]
    Invalid(String),
    /// A listener could not start, or refused the pauses of its slot.
    #[error("listener `{listener}`: {source}")]
    Listener {
        /// The listener's name.
        listener: String,
        /// Why.
        #[source]
        source: RuntimeError,
    },
    /// The control topic does not exist. An instance never creates it (a
    /// mistyped name would make an empty control plane): operator commands
    /// do, `switchyard deploy init` first.
    #[error(
        "the control topic `{0}` does not exist; an instance never creates it: \
         check the name, or create it with `switchyard deploy init` \
         (or `switchyard ctl pause|resume`) given the same --control-topic"
    )]
    MissingControlTopic(String),
    /// The control plane: opening the store, reading the desired state,
    /// the status topic, the agent.
    #[error("control plane: {0}")]
    Control(#[from] ControlError),
    /// The admin HTTP API could not bind its address.
    #[error("admin HTTP API on {addr}: {source}")]
    Http {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The signal handlers (SIGTERM, SIGINT) could not be installed.
    #[error("signal handlers: {0}")]
    Signals(#[source] std::io::Error),
    /// A background task of the start-up failed (panicked or was cancelled).
    #[error("start-up task: {0}")]
    Task(String),
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, InstanceError>;

impl InstanceError {
    pub(crate) fn listener(listener: &str, source: RuntimeError) -> InstanceError {
        InstanceError::Listener {
            listener: listener.into(),
            source,
        }
    }
}
