//! `group.protocol`: which consumer group protocol a consumer speaks, the
//! classic one (JoinGroup/SyncGroup, client-side assignors) or KIP-848's
//! `consumer` protocol (heartbeats carry the assignment the broker computed).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;

/// The consumer group protocol (`group.protocol`).
///
/// Under [`GroupProtocol::Consumer`] (KIP-848, Apache Kafka 4.0+ brokers) the
/// broker assigns partitions and owns the session: `session.timeout.ms`,
/// `heartbeat.interval.ms` and `partition.assignment.strategy` are not sent
/// to librdkafka (which refuses them); the broker's
/// `group.consumer.session.timeout.ms` and
/// `group.consumer.heartbeat.interval.ms` and the client's
/// `group.remote.assignor` take their places. Rebalances are always
/// incremental.
///
/// ```
/// use switchyard_config::GroupProtocol;
///
/// let p: GroupProtocol = "consumer".parse().unwrap();
/// assert_eq!(p, GroupProtocol::Consumer);
/// assert_eq!(GroupProtocol::default().to_string(), "classic");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupProtocol {
    /// The classic protocol (`classic`), librdkafka's default.
    #[default]
    Classic,
    /// KIP-848's consumer protocol (`consumer`).
    Consumer,
}

impl GroupProtocol {
    /// Both protocols, classic first.
    pub const ALL: [GroupProtocol; 2] = [GroupProtocol::Classic, GroupProtocol::Consumer];

    /// The librdkafka spelling.
    ///
    /// ```
    /// # use switchyard_config::GroupProtocol;
    /// assert_eq!(GroupProtocol::Consumer.as_str(), "consumer");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            GroupProtocol::Classic => "classic",
            GroupProtocol::Consumer => "consumer",
        }
    }
}

impl fmt::Display for GroupProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for GroupProtocol {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "classic" => Ok(GroupProtocol::Classic),
            "consumer" => Ok(GroupProtocol::Consumer),
            _ => Err(ConfigError::invalid(
                "group.protocol",
                s,
                "expected `classic` or `consumer`",
            )),
        }
    }
}
