//! The dead-letter topic: where records go that could not be decoded or whose
//! handler failed on every attempt.
//!
//! The dead-letter record keeps the original key and value and adds headers:
//! `switchyard.dlt.original.topic`, `...original.partition`,
//! `...original.offset`, `...error` and `...attempts`. The topic is
//! `<topic>.DLT` unless the listener names one; it is created (with one
//! partition) when the broker does not know it. Sending is retried until it
//! succeeds or the listener shuts down, because the original offset is only
//! committed after the dead-letter record is safely written.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::message::{Header, Message, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;

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
    producer: FutureProducer,
    admin: AdminClient<DefaultClientContext>,
    fixed_topic: Option<String>,
    known: Mutex<HashSet<String>>,
}

impl DeadLetters {
    /// A dead-letter writer on `bootstrap`; `topic` overrides `<topic>.DLT`.
    pub fn new(bootstrap: &str, topic: Option<String>) -> Result<Self, rdkafka::error::KafkaError> {
        let mut cfg = ClientConfig::new();
        cfg.set("bootstrap.servers", bootstrap)
            .set("message.timeout.ms", "10000")
            .set("acks", "all");
        Ok(DeadLetters {
            producer: cfg.create()?,
            admin: cfg.create()?,
            fixed_topic: topic,
            known: Mutex::new(HashSet::new()),
        })
    }

    /// The dead-letter topic for records of `topic`.
    pub fn topic_for(&self, topic: &str) -> String {
        self.fixed_topic
            .clone()
            .unwrap_or_else(|| format!("{topic}.DLT"))
    }

    async fn ensure_topic(&self, topic: &str) {
        if self.known.lock().unwrap().contains(topic) {
            return;
        }
        let new = NewTopic::new(topic, 1, TopicReplication::Fixed(1));
        let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        // "already exists" is fine; other errors surface when sending.
        let _ = self.admin.create_topics([&new], &opts).await;
        self.known.lock().unwrap().insert(topic.to_string());
    }

    /// Write `msg` to its dead-letter topic with the error headers; retries
    /// until the write is acknowledged.
    pub async fn send(&self, msg: &OwnedMessage, error: &str, attempts: u32) {
        let dlt = self.topic_for(msg.topic());
        self.ensure_topic(&dlt).await;
        let partition = msg.partition().to_string();
        let offset = msg.offset().to_string();
        let attempts = attempts.to_string();
        let mut backoff = Duration::from_millis(50);
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
            match self.producer.send(rec, Duration::from_secs(5)).await {
                Ok(_) => return,
                Err((e, _)) => {
                    tracing::warn!(topic = %dlt, error = %e, "dead-letter write failed, retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
            }
        }
    }
}

fn header<'a>(key: &'a str, value: &'a str) -> Header<'a, &'a str> {
    Header {
        key,
        value: Some(value),
    }
}
