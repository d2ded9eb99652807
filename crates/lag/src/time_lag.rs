//! Time lag: how far behind a group is in time, per partition.
//!
//! Two ways, chosen by [`TimeLagMode`]:
//!
//! - **read** (exact): the age of the record at the committed offset, the
//!   oldest record the group has not processed: `now - timestamp`. One
//!   [`RecordTimeReader`] (a consumer that never joins a group nor
//!   commits) is assigned every lagging partition at once, at its committed
//!   offset, and polled until each gave one record or the wait cap passes
//!   (default 2 s); partitions that did not answer in time have no time lag
//!   this sample. Many groups at different offsets of one partition are read
//!   in one forward pass from the smallest offset (seeking over large gaps).
//!   Fetches are kept small (`max.partition.fetch.bytes` 4 KiB).
//!   A committed offset below the log start reads the first stored record.
//! - **estimate**: interpolated from the log end offsets sampled over time
//!   (like kafka-lag-exporter): the moment the log end passed the committed
//!   offset is found between two samples, and the time lag is now minus
//!   that moment ([`estimate_ms`]). No records are read; when the committed
//!   offset is older than the history, the age of the oldest sample is a
//!   lower bound and is used.
//!
//! Lag 0 always means time lag 0.
//!
//! ```
//! use switchyard_lag::time_lag::estimate_ms;
//! // The log end was 100 at t=0 s and 200 at t=10 s; offset 150 was written at about t=5 s.
//! assert_eq!(estimate_ms(&[(0, 100), (10_000, 200)], 150, 12_000), Some(7_000));
//! assert_eq!(estimate_ms(&[(0, 100), (10_000, 200)], 200, 12_000), Some(0));
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::str::FromStr;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use switchyard_config::Connection;

use crate::LagError;

/// How the time lag is obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimeLagMode {
    /// Read the record at the committed offset (exact).
    #[default]
    Read,
    /// Interpolate from sampled log end offsets (no reads).
    Estimate,
    /// No time lag.
    Off,
}

impl FromStr for TimeLagMode {
    type Err = LagError;
    /// `read`, `estimate` or `off`.
    ///
    /// ```
    /// use switchyard_lag::TimeLagMode;
    /// assert_eq!("estimate".parse::<TimeLagMode>().unwrap(), TimeLagMode::Estimate);
    /// assert!("fast".parse::<TimeLagMode>().is_err());
    /// ```
    fn from_str(s: &str) -> Result<TimeLagMode, LagError> {
        match s {
            "read" => Ok(TimeLagMode::Read),
            "estimate" => Ok(TimeLagMode::Estimate),
            "off" => Ok(TimeLagMode::Off),
            _ => Err(LagError::TimeLagMode(s.to_string())),
        }
    }
}

/// Reads the timestamps of records at given offsets; one consumer reused for every call.
pub struct RecordTimeReader {
    consumer: BaseConsumer,
    max_wait: Duration,
}

impl RecordTimeReader {
    /// A reader for the cluster of `connection` (a [`Connection`], or a
    /// bootstrap list for a plaintext one) that waits at most `max_wait` per
    /// call.
    pub fn new(
        connection: impl Into<Connection>,
        max_wait: Duration,
    ) -> Result<RecordTimeReader, LagError> {
        let connection = connection.into();
        let mut config = connection.client_config();
        if connection.get("client.id").is_none() {
            config.set("client.id", "switchyard-lag-time");
        }
        let consumer: BaseConsumer = config
            // librdkafka wants a group id to assign; this one is never joined nor committed to.
            .set("group.id", "switchyard-lag-time-reader")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("max.partition.fetch.bytes", "4096")
            .set("queued.max.messages.kbytes", "1024")
            .set("fetch.wait.max.ms", "10")
            .set("socket.timeout.ms", "10000")
            .create()?;
        Ok(RecordTimeReader { consumer, max_wait })
    }

    /// The timestamp (ms since the epoch) of the record at `offset`, or of the
    /// first one after it, for each `(topic, partition, offset)`; several
    /// offsets of one partition are read in one forward pass (skipping ahead
    /// by a seek over gaps of more than [`SEEK_GAP`] records). Offsets with no
    /// record within the wait cap are missing from the result.
    pub fn timestamps(
        &self,
        at: &[(String, i32, i64)],
    ) -> Result<HashMap<(String, i32, i64), i64>, LagError> {
        let mut out = HashMap::new();
        // Per partition, the offsets still to read, ascending.
        let mut todo: BTreeMap<(String, i32), BTreeSet<i64>> = BTreeMap::new();
        for (t, p, o) in at {
            todo.entry((t.clone(), *p)).or_default().insert((*o).max(0));
        }
        if todo.is_empty() {
            return Ok(out);
        }
        let mut tpl = TopicPartitionList::with_capacity(todo.len());
        for ((t, p), offsets) in &todo {
            let first = offsets.first().copied().unwrap_or(0);
            tpl.add_partition_offset(t, *p, Offset::Offset(first))?;
        }
        self.consumer.assign(&tpl)?;
        let deadline = Instant::now() + self.max_wait;
        while !todo.is_empty() {
            let now = Instant::now();
            if now >= deadline {
                tracing::debug!(
                    partitions = todo.len(),
                    "time lag: no record within the wait cap"
                );
                break;
            }
            let m = match self.consumer.poll(deadline - now) {
                Some(Ok(m)) => m,
                Some(Err(e)) => {
                    tracing::debug!(error = %e, "time lag read");
                    continue;
                }
                None => continue,
            };
            let key = (m.topic().to_string(), m.partition());
            let (Some(offsets), Some(ts)) = (todo.get_mut(&key), m.timestamp().to_millis()) else {
                continue;
            };
            // Every wanted offset up to this record is answered by it (the first record at or after each).
            while let Some(o) = offsets.first().copied().filter(|o| *o <= m.offset()) {
                offsets.pop_first();
                out.insert((key.0.clone(), key.1, o), ts);
            }
            match offsets.first().copied() {
                None => {
                    todo.remove(&key);
                }
                Some(next) if next > m.offset() + SEEK_GAP => {
                    let _ = self
                        .consumer
                        .seek(&key.0, key.1, Offset::Offset(next), deadline - now);
                }
                Some(_) => {}
            }
        }
        self.consumer.unassign()?;
        Ok(out)
    }
}

/// Above this gap between two wanted offsets of a partition, the reader seeks instead of reading through.
pub const SEEK_GAP: i64 = 500;

/// Estimate a time lag from `(at_ms, log_end)` samples (oldest first): how
/// long ago the log end passed `committed`, seen from `now_ms`. `None`
/// without samples.
///
/// ```
/// use switchyard_lag::time_lag::estimate_ms;
/// // Older than the history: at least the age of the oldest sample.
/// assert_eq!(estimate_ms(&[(1_000, 50), (2_000, 60)], 10, 5_000), Some(4_000));
/// assert_eq!(estimate_ms(&[], 10, 5_000), None);
/// ```
pub fn estimate_ms(ends: &[(i64, i64)], committed: i64, now_ms: i64) -> Option<i64> {
    let (_, last_end) = *ends.last()?;
    if committed >= last_end {
        return Some(0);
    }
    // The last sample whose log end was at or below the committed offset.
    let Some(i) = ends.iter().rposition(|(_, end)| *end <= committed) else {
        return Some((now_ms - ends[0].0).max(0));
    };
    let (t0, e0) = ends[i];
    let (t1, e1) = ends[(i + 1).min(ends.len() - 1)];
    let passed = if e1 > e0 {
        t0 + ((committed - e0) as f64 / (e1 - e0) as f64 * (t1 - t0) as f64) as i64
    } else {
        t0
    };
    Some((now_ms - passed).max(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolates_between_the_right_samples() {
        let ends = [(0, 0), (1_000, 10), (2_000, 10), (3_000, 40)];
        // Offset 25 was written between t=2 s (end 10) and t=3 s (end 40): at 2.5 s.
        assert_eq!(estimate_ms(&ends, 25, 4_000), Some(1_500));
        assert_eq!(
            estimate_ms(&ends, 10, 4_000),
            Some(2_000),
            "end 10 still at t=2 s"
        );
        assert_eq!(estimate_ms(&ends, 40, 4_000), Some(0));
    }

    #[test]
    fn never_negative() {
        assert_eq!(estimate_ms(&[(5_000, 0), (6_000, 100)], 50, 1_000), Some(0));
    }
}
