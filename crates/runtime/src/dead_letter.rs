//! The dead-letter topic: where records go that could not be decoded or whose
//! handler failed on every attempt.
//!
//! The dead-letter record keeps the original key and value and adds headers:
//! `switchyard.dlt.original.topic`, `...original.partition`,
//! `...original.offset`, `...error` and `...attempts`. The topic is
//! `<topic>.DLT` unless the listener names one; it is created (with one
//! partition) when the broker does not know it. The original offset is only
//! committed after the dead-letter record is safely written, so a failed
//! write is retried with backoff, a bounded number of times (a write that
//! can never succeed, such as a missing ACL or a record larger than the
//! topic's `max.message.bytes`, must not hold the record's worker forever);
//! then [`DeadLetters::send`] returns the error and the listener's
//! [`DeadLetterFallback`](crate::failure::DeadLetterFallback) decides.
//!
//! The producer and the admin client are made at the first write, not with
//! the listener: a listener whose records all decode and succeed (nearly
//! every one, nearly always) keeps no idle clients for its dead letters,
//! nor their threads (rust-rdkafka's producer polling thread spins out the
//! last millisecond of every 100 ms wait: 32 of them, a fleet of 32
//! instances in one process, took 4.4% of a 2-core machine's samples).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::ClientConfig;

use crate::fetched::Fetched;
use rdkafka::producer::{FutureProducer, FutureRecord};
use switchyard_config::Connection;

use crate::failure::RetryPolicy;

/// Header names of a dead-letter record.
pub mod headers {
    /// Topic of the original record.
    pub const TOPIC: &str = "switchyard.dlt.original.topic";
    /// Partition of the original record.
    pub const PARTITION: &str = "switchyard.dlt.original.partition";
    /// Offset of the original record.
    pub const OFFSET: &str = "switchyard.dlt.original.offset";
    /// The error that sent it here.
    pub const ERROR: &str = "switchyard.dlt.error";
    /// How many handler attempts were made (0 for a decode error).
    pub const ATTEMPTS: &str = "switchyard.dlt.attempts";
}

/// Writes dead-letter records for one listener.
pub struct DeadLetters {
    config: ClientConfig,
    /// Made at the first write.
    clients: Mutex<Option<Arc<Clients>>>,
    fixed_topic: Option<String>,
    known: Mutex<HashSet<String>>,
    retry: RetryPolicy,
    /// Create a missing dead-letter topic (with the broker's default
    /// partitions and replication factor) before the first write to it.
    create_topics: bool,
}

/// The clients of the writes.
struct Clients {
    producer: FutureProducer,
    admin: AdminClient<DefaultClientContext>,
}

/// A dead-letter write that failed on every attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetterError {
    /// The dead-letter topic.
    pub topic: String,
    /// Attempts made.
    pub attempts: u32,
    /// The last error.
    pub error: String,
}

impl std::fmt::Display for DeadLetterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "dead-letter write to `{}` failed {} time(s): {}",
            self.topic, self.attempts, self.error
        )
    }
}

impl std::error::Error for DeadLetterError {}

impl DeadLetters {
    /// A dead-letter writer on `connection` (a [`Connection`], or a
    /// bootstrap list for a plaintext one); `topic` overrides `<topic>.DLT`;
    /// a write is tried [`RetryPolicy::dead_letter`] times at most. The
    /// Kafka clients are made at the first write.
    ///
    /// ```
    /// use switchyard_runtime::dead_letter::DeadLetters;
    ///
    /// let dl = DeadLetters::new("127.0.0.1:9092", None).unwrap();
    /// assert_eq!(dl.topic_for("orders"), "orders.DLT");
    /// ```
    pub fn new(
        connection: impl Into<Connection>,
        topic: Option<String>,
    ) -> Result<Self, rdkafka::error::KafkaError> {
        Self::with_retry(connection, topic, RetryPolicy::dead_letter())
    }

    /// [`DeadLetters::new`] with `retry` for the writes (attempts and backoff).
    pub fn with_retry(
        connection: impl Into<Connection>,
        topic: Option<String>,
        retry: RetryPolicy,
    ) -> Result<Self, rdkafka::error::KafkaError> {
        let mut cfg = connection.into().client_config();
        cfg.set("message.timeout.ms", "10000").set("acks", "all");
        Ok(DeadLetters {
            config: cfg,
            clients: Mutex::new(None),
            fixed_topic: topic,
            known: Mutex::new(HashSet::new()),
            retry,
            create_topics: true,
        })
    }

    /// Whether a missing dead-letter topic is created (default `true`, with
    /// the broker's default partitions and replication factor). Off for
    /// clusters where topics are created ahead: a write to a missing topic
    /// then fails (and is retried) like any other failed write.
    pub fn with_topic_creation(mut self, create: bool) -> Self {
        self.create_topics = create;
        self
    }

    /// The dead-letter topic for records of `topic`.
    pub fn topic_for(&self, topic: &str) -> String {
        self.fixed_topic
            .clone()
            .unwrap_or_else(|| format!("{topic}.DLT"))
    }

    /// The clients, made at the first call.
    fn clients(&self) -> Result<Arc<Clients>, rdkafka::error::KafkaError> {
        let mut clients = self.clients.lock().unwrap();
        if let Some(c) = &*clients {
            return Ok(c.clone());
        }
        let made = Arc::new(Clients {
            producer: self.config.create()?,
            admin: self.config.create()?,
        });
        *clients = Some(made.clone());
        Ok(made)
    }

    /// Whether the clients were made (a record was sent here).
    #[cfg(test)]
    fn started(&self) -> bool {
        self.clients.lock().unwrap().is_some()
    }

    async fn ensure_topic(&self, admin: &AdminClient<DefaultClientContext>, topic: &str) {
        if self.known.lock().unwrap().contains(topic) {
            return;
        }
        if !self.create_topics {
            return;
        }
        // -1, -1: the broker's num.partitions and default.replication.factor.
        let new = NewTopic::new(topic, -1, TopicReplication::Fixed(-1));
        let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        // "already exists" is fine; other errors surface when sending.
        let _ = admin.create_topics([&new], &opts).await;
        self.known.lock().unwrap().insert(topic.to_string());
    }

    /// Write `msg` to its dead-letter topic with the error headers; a failed
    /// write is tried again with backoff, up to the retry policy's attempts.
    pub(crate) async fn send(
        &self,
        msg: &Fetched,
        error: &str,
        attempts: u32,
    ) -> Result<(), DeadLetterError> {
        let dlt = self.topic_for(msg.topic());
        let clients = self.clients().map_err(|e| DeadLetterError {
            topic: dlt.clone(),
            attempts: 0,
            error: format!("cannot make the dead-letter producer: {e}"),
        })?;
        self.ensure_topic(&clients.admin, &dlt).await;
        let partition = msg.partition().to_string();
        let offset = msg.offset().to_string();
        let attempts = attempts.to_string();
        let mut attempt = 1;
        loop {
            let hdrs = OwnedHeaders::new()
                .insert(header(headers::TOPIC, msg.topic()))
                .insert(header(headers::PARTITION, &partition))
                .insert(header(headers::OFFSET, &offset))
                .insert(header(headers::ERROR, error))
                .insert(header(headers::ATTEMPTS, &attempts));
            let mut rec: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&dlt).headers(hdrs);
            if let Some(k) = msg.key() {
                rec = rec.key(k);
            }
            if let Some(v) = msg.payload() {
                rec = rec.payload(v);
            }
            let e = match clients.producer.send(rec, Duration::from_secs(5)).await {
                Ok(_) => return Ok(()),
                Err((e, _)) => e,
            };
            if attempt >= self.retry.max_attempts.max(1) {
                return Err(DeadLetterError {
                    topic: dlt,
                    attempts: attempt,
                    error: e.to_string(),
                });
            }
            tracing::warn!(topic = %dlt, offset = msg.offset(), attempt, error = %e, "dead-letter write failed, retrying");
            tokio::time::sleep(self.retry.backoff(attempt)).await;
            attempt += 1;
        }
    }
}

fn header<'a>(key: &'a str, value: &'a str) -> Header<'a, &'a str> {
    Header {
        key,
        value: Some(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clients_are_made_at_the_first_write_and_kept() {
        let dl = DeadLetters::new("127.0.0.1:9", None).unwrap();
        assert!(!dl.started(), "no client before a write");
        let first = dl.clients().unwrap();
        assert!(dl.started());
        assert!(Arc::ptr_eq(&first, &dl.clients().unwrap()), "made once");
    }
}
