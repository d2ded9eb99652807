//! Why a consumer group could not be described ([`GroupError`]): the
//! vocabulary of failure shared by the group description and the
//! assignment decoder it uses, which both return it.

use std::time::Duration;

use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

/// Why a group could not be described.
#[derive(Debug, thiserror::Error)]
pub enum GroupError {
    /// ListGroups or DescribeGroups (`fetch_group_list`) failed.
    #[error("group listing: {0}")]
    List(#[from] KafkaError),
    /// A group id holds a NUL byte and cannot be passed to librdkafka.
    #[error("group id {0:?} contains a NUL byte")]
    InvalidGroupId(String),
    /// The DescribeConsumerGroups request as a whole failed.
    #[error("describing {groups}: {code} ({message})")]
    Request {
        /// The groups asked about, comma-separated.
        groups: String,
        /// librdkafka's error code.
        code: RDKafkaErrorCode,
        /// librdkafka's message.
        message: String,
    },
    /// No answer came within the timeout.
    #[error("describing {groups}: no answer within {timeout:?}")]
    Timeout {
        /// The groups asked about, comma-separated.
        groups: String,
        /// The timeout.
        timeout: Duration,
    },
    /// The broker answered with an error for this group.
    #[error("describing group `{group}`: {code} ({message})")]
    Group {
        /// Group id.
        group: String,
        /// The error code.
        code: RDKafkaErrorCode,
        /// librdkafka's message.
        message: String,
    },
    /// A ConsumerProtocol assignment could not be decoded.
    #[error("assignment bytes: {0}")]
    Assignment(String),
}

impl GroupError {
    /// Is this the broker not supporting group listing at all (librdkafka's
    /// mock cluster answers neither ListGroups nor DescribeGroups), rather
    /// than a request that failed?
    pub fn is_unsupported(&self) -> bool {
        matches!(
            self,
            GroupError::List(KafkaError::GroupListFetch(
                RDKafkaErrorCode::UnsupportedFeature
            ))
        )
    }
}
