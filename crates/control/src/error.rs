//! Errors of the control plane. Each names the key, target or version
//! involved and the reason, so an operator can act on it.

use thiserror::Error;

/// What can go wrong when reading, writing or applying desired state.
#[derive(Debug, Error)]
pub enum ControlError {
    /// A write named a version that is no longer the current one (compare-and-set lost).
    #[error("stale version for app `{app}`: expected {expected}, current is {current}")]
    Conflict {
        /// Application.
        app: String,
        /// The version the writer based its change on.
        expected: u64,
        /// The version the store holds.
        current: u64,
    },
    /// The last record of the app in the store cannot be read (malformed,
    /// invalid, or of a newer schema): agents fail closed and writes are
    /// refused until a valid record replaces it.
    #[error("the desired state of app `{app}` is unreadable: {reason}")]
    Unreadable {
        /// Application.
        app: String,
        /// Why the record cannot be read.
        reason: String,
    },
    /// The version of the app is `u64::MAX`: no version can follow it.
    #[error("app `{app}`: version {version} cannot be followed (no version after u64::MAX)")]
    VersionExhausted {
        /// Application.
        app: String,
        /// The version held.
        version: u64,
    },
    /// A command was malformed or named something that does not exist.
    #[error("invalid command: {0}")]
    Invalid(String),
    /// The listener is unknown to this instance.
    #[error("unknown listener `{0}`")]
    UnknownListener(String),
    /// A record or file could not be decoded.
    #[error("cannot decode {what}: {reason}")]
    Decode {
        /// What was decoded (a record key, a file path).
        what: String,
        /// Why it failed.
        reason: String,
    },
    /// The store does not accept writes (e.g. a watched file).
    #[error("the desired-state source is read-only: {0}")]
    ReadOnly(String),
    /// Kafka client error.
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// Redis client error.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// A topic the control plane uses is missing and may not be created
    /// (its topic options turn automatic creation off).
    #[error(
        "topic `{0}` does not exist and automatic topic creation is off: \
         create it with one partition and cleanup.policy=compact"
    )]
    MissingTopic(String),
    /// A topic the control plane uses cannot be created, read,
    /// or is misconfigured (for example not `cleanup.policy=compact`).
    #[error("{0}")]
    Topic(String),
    /// A deadline passed.
    #[error("timed out: {0}")]
    Timeout(String),
    /// Any I/O error.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, ControlError>;
