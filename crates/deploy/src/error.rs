//! What a deployment command can end in besides success, typed so that a
//! caller (the `switchyard deploy` CLI, a test) can tell a refusal from a
//! rolled-back handoff from a broken cluster.

use crate::outcome::Outcome;

/// Why a deployment command did not do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// The command does not apply to the desired state as it is (nothing to
    /// move, a handoff in progress, no canary, the listener initialised
    /// already, a canary under the shared-group strategy...); nothing was
    /// written.
    #[error("{0}")]
    Refused(String),
    /// A phase of the handoff timed out and the driver rolled it back: the
    /// partitions are where they were.
    #[error("the handoff was rolled back: {}", reason(.0))]
    RolledBack(Box<Outcome>),
    /// A watched canary was unhealthy and was aborted by itself: its
    /// partitions went back to the slot they came from (`abort`, the
    /// outcome of that handoff).
    #[error("the canary was unhealthy ({reason}) and was aborted")]
    CanaryAborted {
        /// Why it was unhealthy.
        reason: String,
        /// The abort handoff.
        abort: Box<Outcome>,
    },
    /// The control store, the status topic or the cluster failed.
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

fn reason(o: &Outcome) -> &str {
    o.reason.as_deref().unwrap_or("no reason given")
}

impl DeployError {
    /// A refusal with this text.
    pub fn refused(why: impl Into<String>) -> DeployError {
        DeployError::Refused(why.into())
    }
}

impl From<switchyard_control::ControlError> for DeployError {
    fn from(e: switchyard_control::ControlError) -> DeployError {
        DeployError::Failed(e.into())
    }
}

/// Result of the deployment commands.
pub type Result<T> = std::result::Result<T, DeployError>;
