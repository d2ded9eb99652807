//! The compacted status topic: [`StatusPublisher`] writes an instance's
//! [`InstanceStatus`] keyed by instance id (a tombstone on a clean stop);
//! [`StatusTail`] reads it from the beginning, outside any group, and keeps
//! the latest status of every instance.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::consumer::Consumer;
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord};
use switchyard_config::Connection;

use crate::error::Result;
use crate::kafka_store::{
    deliver, ensure_topic_with, producer, reader, TopicOptions, REQUEST_TIMEOUT,
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
    updates: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
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
        let c = reader(&connection, topic)?;
        let tail = StatusTail {
            latest: Arc::default(),
            updates: Arc::default(),
            stop: Arc::default(),
        };
        let t = tail.clone();
        let (_, high) = c.fetch_watermarks(topic, 0, REQUEST_TIMEOUT)?;
        std::thread::Builder::new()
            .name("sy-status-tail".into())
            .spawn(move || {
                let mut caught_up = high == 0;
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
                        caught_up |= m.offset() + 1 >= high;
                    }
                    if caught_up {
                        t.updates.fetch_add(1, Ordering::SeqCst);
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
        self.updates.load(Ordering::SeqCst) > 0
    }

    /// Stop the reader thread.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
