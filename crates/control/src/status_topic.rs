//! The compacted status topic: [`StatusPublisher`] writes an instance's
//! [`InstanceStatus`] keyed by instance id (a tombstone on a clean stop);
//! [`StatusTail`] reads it from the beginning, outside any group, and keeps
//! the latest status of every instance. A tail is as current as its reader:
//! who concludes from a status's age that an instance is gone first makes
//! the tail read everything written so far ([`StatusTail::sync`]).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord};
use switchyard_config::Connection;

use crate::compacted_topic::{ensure_topic_with, TopicOptions};
use crate::error::{ControlError, Result};
use crate::kafka_clients::{
    client, deliver, position, producer, reader, REQUEST_TIMEOUT, STATUS_FETCH_WAIT,
};
use crate::status::InstanceStatus;

/// Publishes statuses to the status topic.
pub struct StatusPublisher {
    topic: String,
    producer: BaseProducer,
}

impl StatusPublisher {
    /// A publisher on `topic` (created compacted when missing).
    pub fn new(connection: impl Into<Connection>, topic: &str) -> Result<StatusPublisher> {
        StatusPublisher::open(connection, topic, TopicOptions::default())
    }

    /// [`StatusPublisher::new`] with `options` for the topic (whether a
    /// missing one is created).
    pub fn open(
        connection: impl Into<Connection>,
        topic: &str,
        options: TopicOptions,
    ) -> Result<StatusPublisher> {
        let connection = connection.into();
        ensure_topic_with(&connection, topic, options)?;
        Ok(StatusPublisher {
            topic: topic.into(),
            producer: producer(&connection)?,
        })
    }

    /// Send `status` and wait for delivery.
    pub fn publish(&self, status: &InstanceStatus) -> Result<()> {
        let payload = serde_json::to_vec(status).expect("serializable");
        self.producer
            .send(
                BaseRecord::to(&self.topic)
                    .key(&status.instance)
                    .payload(&payload),
            )
            .map_err(|(e, _)| e)?;
        deliver(&self.producer)?;
        Ok(())
    }

    /// Remove `instance` (tombstone): it stopped cleanly.
    pub fn remove(&self, instance: &str) -> Result<()> {
        self.producer
            .send(BaseRecord::<str, [u8]>::to(&self.topic).key(instance))
            .map_err(|(e, _)| e)?;
        deliver(&self.producer)?;
        Ok(())
    }
}

/// The latest status of every instance, kept current by a reader thread.
#[derive(Clone)]
pub struct StatusTail {
    latest: Arc<Mutex<BTreeMap<String, InstanceStatus>>>,
    /// The end of the topic when the reader started.
    start_end: i64,
    stop: Arc<AtomicBool>,
    /// The next offset the reader reads.
    next: Arc<AtomicI64>,
    topic: Arc<str>,
    /// Asks for the end of the topic ([`StatusTail::sync`]).
    ends: Arc<BaseConsumer>,
}

impl StatusTail {
    /// Start reading `topic` from the beginning.
    pub fn start(connection: impl Into<Connection>, topic: &str) -> Result<StatusTail> {
        StatusTail::open(connection, topic, TopicOptions::default())
    }

    /// [`StatusTail::start`] with `options` for the topic (whether a
    /// missing one is created).
    pub fn open(
        connection: impl Into<Connection>,
        topic: &str,
        options: TopicOptions,
    ) -> Result<StatusTail> {
        let connection = connection.into();
        ensure_topic_with(&connection, topic, options)?;
        let c = reader(&connection, topic, STATUS_FETCH_WAIT)?;
        let (_, high) = c.fetch_watermarks(topic, 0, REQUEST_TIMEOUT)?;
        let tail = StatusTail {
            latest: Arc::default(),
            start_end: high,
            stop: Arc::default(),
            next: Arc::default(),
            topic: topic.into(),
            ends: Arc::new(client(&connection).create()?),
        };
        let t = tail.clone();
        std::thread::Builder::new()
            .name("sy-status-tail".into())
            .spawn(move || {
                while !t.stop.load(Ordering::Relaxed) {
                    if let Some(Ok(m)) = c.poll(Duration::from_millis(50)) {
                        let key = String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned();
                        let mut map = t.latest.lock().unwrap();
                        match m.payload().map(serde_json::from_slice::<InstanceStatus>) {
                            None => {
                                map.remove(&key);
                            }
                            Some(Ok(s)) => {
                                map.insert(key, s);
                            }
                            Some(Err(e)) => tracing::warn!(key, error = %e, "bad status record"),
                        }
                        t.next.fetch_max(m.offset() + 1, Ordering::SeqCst);
                    }
                    if let Some(p) = position(&c, &t.topic) {
                        t.next.fetch_max(p, Ordering::SeqCst);
                    }
                }
            })?;
        Ok(tail)
    }

    /// The latest statuses by instance id (gone ones included).
    pub fn latest(&self) -> BTreeMap<String, InstanceStatus> {
        self.latest.lock().unwrap().clone()
    }

    /// Has the reader caught up with the end of the topic as of the start?
    pub fn caught_up(&self) -> bool {
        self.position() >= self.start_end
    }

    /// The next offset the reader reads: it moves with every status read
    /// (after the status is in [`StatusTail::latest`]), so a caller that
    /// waits for a status can look again only when it moved.
    pub fn position(&self) -> i64 {
        self.next.load(Ordering::SeqCst)
    }

    /// Wait until the reader has read every status written before the
    /// call (up to the end of the topic as of the call), at most `timeout`.
    /// Statuses arrive as fast as the reader fetches them (at once from
    /// Apache Kafka; from a broker that holds an empty fetch for its whole
    /// `fetch.wait.max.ms`, up to that late): an instance whose status looks
    /// stale may only be late in the tail, unless the tail is synced.
    pub fn sync(&self, timeout: Duration) -> Result<()> {
        let (low, end) = self
            .ends
            .fetch_watermarks(&self.topic, 0, REQUEST_TIMEOUT)?;
        let deadline = Instant::now() + timeout;
        loop {
            let next = self.next.load(Ordering::SeqCst);
            if next.max(low) >= end {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(ControlError::Timeout(format!(
                    "reading the status topic `{}` to offset {end} (at {next})",
                    self.topic
                )));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Stop the reader thread.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
