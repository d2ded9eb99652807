//! The record a handler receives: decoded key and value plus the coordinates
//! of the Kafka message (topic, partition, offset, timestamp, headers).
//!
//! The runtime moves raw [`Fetched`]s from the poller to the workers and
//! decodes them there (off the poll thread) with the listener's
//! [`Deserializer`](crate::deserializer::Deserializer)s into a [`Record`].
//!
//! ```
//! use switchyard_runtime::record::Record;
//! let r = Record { topic: "orders".into(), partition: 0, offset: 7, timestamp_ms: None,
//!                  headers: vec![], key: Some("k".to_string()), value: 42u32 };
//! assert_eq!(r.coordinates(), ("orders", 0, 7));
//! ```

use crate::fetched::Fetched;

/// One decoded record.
#[derive(Debug, Clone, PartialEq)]
pub struct Record<K, V> {
    /// Topic the record was read from.
    pub topic: String,
    /// Partition within the topic.
    pub partition: i32,
    /// Offset within the partition.
    pub offset: i64,
    /// Create or log-append time in milliseconds since the epoch, if known.
    pub timestamp_ms: Option<i64>,
    /// Headers as (name, value) pairs, in order.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    /// Decoded key; `None` when the record has no key.
    pub key: Option<K>,
    /// Decoded value.
    pub value: V,
}

impl<K, V> Record<K, V> {
    /// (topic, partition, offset).
    pub fn coordinates(&self) -> (&str, i32, i64) {
        (&self.topic, self.partition, self.offset)
    }
}

/// Headers of a raw message as owned pairs.
pub(crate) fn headers_of(msg: &Fetched) -> Vec<(String, Option<Vec<u8>>)> {
    msg.headers()
}

/// Approximate memory held by a buffered message (for the byte bound).
pub(crate) fn message_size(msg: &Fetched) -> usize {
    msg.payload().map_or(0, |p| p.len()) + msg.key().map_or(0, |k| k.len()) + 96
}
