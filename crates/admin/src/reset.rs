//! Resetting a group's committed offsets to the earliest or latest offset, an
//! absolute offset, a shift of the committed offset, or the first record at or
//! after a date-time, with the semantics of `kafka-consumer-groups
//! --reset-offsets`: targets are clamped to the partition's log, and a shift
//! needs a committed offset to shift.
//!
//! [`reset_offsets`] always computes the plan (before and after, per
//! partition) and commits it only when asked to execute, so that an operator
//! sees what would change first. The reset is refused while the group has
//! members (their commits would overwrite it, and Kafka rejects commits for an
//! active generation anyway): stop the consumers first. Members are counted
//! by [`crate::group::describe_group`], so the members of a KIP-848 consumer
//! group count as well as a classic group's. Partitions are named from the
//! topic's metadata.
//!
//! ```
//! use switchyard_admin::ResetTo;
//! assert_eq!("earliest".parse::<ResetTo>().unwrap(), ResetTo::Earliest);
//! assert_eq!("offset:42".parse::<ResetTo>().unwrap(), ResetTo::Offset(42));
//! assert_eq!("shift:-3".parse::<ResetTo>().unwrap(), ResetTo::ShiftBy(-3));
//! assert_eq!("2026-01-01T00:00:00Z".parse::<ResetTo>().unwrap(), ResetTo::Timestamp(1767225600000));
//! assert!("yesterday".parse::<ResetTo>().is_err());
//! ```

use std::str::FromStr;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use switchyard_config::Connection;

use crate::group::{describe_group, GroupError};

/// Where to move the committed offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetTo {
    /// The log start offset of each partition.
    Earliest,
    /// The log end offset of each partition.
    Latest,
    /// The same absolute offset on every partition (clamped to the log).
    Offset(i64),
    /// The first record at or after this time (ms since the epoch).
    Timestamp(i64),
    /// The committed offset moved by this many records (clamped to the log).
    ShiftBy(i64),
}

impl FromStr for ResetTo {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        match s {
            "earliest" => return Ok(ResetTo::Earliest),
            "latest" => return Ok(ResetTo::Latest),
            _ => {}
        }
        if let Some(n) = s.strip_prefix("offset:") {
            return n
                .parse()
                .map(ResetTo::Offset)
                .map_err(|_| format!("`{n}` is not an offset"));
        }
        if let Some(n) = s.strip_prefix("shift:") {
            return n
                .parse()
                .map(ResetTo::ShiftBy)
                .map_err(|_| format!("`{n}` is not a number of records"));
        }
        if let Some(n) = s.strip_prefix("timestamp:") {
            return n
                .parse()
                .map(ResetTo::Timestamp)
                .map_err(|_| format!("`{n}` is not a timestamp in ms"));
        }
        chrono::DateTime::parse_from_rfc3339(s)
            .map(|d| ResetTo::Timestamp(d.timestamp_millis()))
            .map_err(|_| {
                format!("`{s}`: expected earliest, latest, offset:N, shift:N, timestamp:MS or an RFC 3339 date-time")
            })
    }
}

/// Why a reset was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum ResetError {
    /// The group has members.
    #[error("group `{group}` has {members} active member(s) (state {state}): stop its consumers before resetting offsets")]
    GroupActive {
        /// Group id.
        group: String,
        /// Number of members.
        members: usize,
        /// Group state as the broker reports it.
        state: String,
    },
    /// The topic is unknown or has no partitions.
    #[error("topic `{0}` not found")]
    UnknownTopic(String),
    /// A shift was asked for a partition without a committed offset.
    #[error("cannot shift partition {partition} of `{topic}`: group `{group}` has no committed offset there")]
    NothingToShift {
        /// Group id.
        group: String,
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
    },
    /// The group could not be described.
    #[error("{0}")]
    Describe(#[from] GroupError),
    /// A Kafka request failed.
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
}

/// One partition's offsets before and after a reset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResetRow {
    /// Partition.
    pub partition: i32,
    /// Committed offset before (-1: none).
    pub before: i64,
    /// Committed offset after.
    pub after: i64,
}

/// Plan the reset of the committed offsets of `group` on every partition of
/// `topic`, and commit it when `execute` is true. Returns the plan (the same
/// rows whether or not it was executed).
///
/// `connection` is a [`Connection`] or a bootstrap list for a plaintext one.
pub fn reset_offsets(
    connection: impl Into<Connection>,
    group: &str,
    topic: &str,
    to: ResetTo,
    execute: bool,
    timeout: Duration,
) -> Result<Vec<ResetRow>, ResetError> {
    let connection: Connection = connection.into();
    let consumer: BaseConsumer = connection
        .client_config()
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()?;
    let described = describe_group(&consumer, group, timeout)?;
    if !described.members.is_empty() {
        return Err(ResetError::GroupActive {
            group: group.into(),
            members: described.members.len(),
            state: described.state.to_string(),
        });
    }
    let md = consumer.fetch_metadata(Some(topic), timeout)?;
    let partitions: Vec<i32> = md
        .topics()
        .iter()
        .find(|t| t.name() == topic && t.error().is_none())
        .map(|t| t.partitions().iter().map(|p| p.id()).collect())
        .unwrap_or_default();
    if partitions.is_empty() {
        return Err(ResetError::UnknownTopic(topic.into()));
    }
    let mut named = TopicPartitionList::new();
    for p in &partitions {
        named.add_partition(topic, *p);
    }
    let before = consumer.committed_offsets(named, timeout)?;
    let by_time = match to {
        ResetTo::Timestamp(ms) => {
            let mut tpl = TopicPartitionList::new();
            for p in &partitions {
                tpl.add_partition_offset(topic, *p, Offset::Offset(ms))?;
            }
            Some(consumer.offsets_for_times(tpl, timeout)?)
        }
        _ => None,
    };
    let mut target = TopicPartitionList::new();
    let mut rows = Vec::new();
    for p in &partitions {
        let (low, high) = consumer.fetch_watermarks(topic, *p, timeout)?;
        let old = match before.find_partition(topic, *p).map(|e| e.offset()) {
            Some(Offset::Offset(o)) => o,
            _ => -1,
        };
        let after = match to {
            ResetTo::Earliest => low,
            ResetTo::Latest => high,
            ResetTo::Offset(o) => o.clamp(low, high),
            ResetTo::ShiftBy(_) if old < 0 => {
                return Err(ResetError::NothingToShift {
                    group: group.into(),
                    topic: topic.into(),
                    partition: *p,
                })
            }
            ResetTo::ShiftBy(n) => old.saturating_add(n).clamp(low, high),
            ResetTo::Timestamp(_) => match by_time
                .as_ref()
                .and_then(|t| t.find_partition(topic, *p))
                .map(|e| e.offset())
            {
                Some(Offset::Offset(o)) => o,
                _ => high,
            },
        };
        target.add_partition_offset(topic, *p, Offset::Offset(after))?;
        rows.push(ResetRow {
            partition: *p,
            before: old,
            after,
        });
    }
    if execute {
        consumer.commit(&target, CommitMode::Sync)?;
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        assert_eq!("latest".parse::<ResetTo>(), Ok(ResetTo::Latest));
        assert_eq!("timestamp:5".parse::<ResetTo>(), Ok(ResetTo::Timestamp(5)));
        assert_eq!("shift:+2".parse::<ResetTo>(), Ok(ResetTo::ShiftBy(2)));
        assert!("offset:x"
            .parse::<ResetTo>()
            .unwrap_err()
            .contains("not an offset"));
        assert!("2026-13-01".parse::<ResetTo>().is_err());
    }
}
