//! Errors of the runtime.

/// Why a listener could not start or a request failed.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] switchyard_config::ConfigError),
    /// librdkafka refused an operation.
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// The listener definition is incomplete or contradictory.
    #[error("listener `{listener}`: {reason}")]
    Listener {
        /// Listener name.
        listener: String,
        /// What is wrong.
        reason: String,
    },
    /// The listener has shut down and answers no more requests.
    #[error("listener `{0}` is not running")]
    NotRunning(String),
    /// A partition named in a request is not assigned to this listener.
    #[error("{topic}-{partition} is not assigned to this listener")]
    NotAssigned {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
    },
}
