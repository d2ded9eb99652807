//! Producing test records.
//!
//! Records are sequence-numbered: the value of each record is its sequence number in decimal ("0", "1", ...), so a
//! consumer's processed log ([`crate::ProcessedLog`]) shows which records were processed and in what order.
//! [`SeqProducer`] produces batches on the calling thread and returns only when every record is acknowledged;
//! [`SteadyProducer`] produces a steady stream from a background thread while a test does something else (kills a
//! consumer, adds one, ...).
//!
//! Producers use `acks=all`, `linger.ms=5` and a 10 s delivery timeout.

use std::collections::{HashMap, VecDeque};
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::error::KafkaError;
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{
    BaseRecord, DeliveryFuture, FutureProducer, FutureRecord, Producer, ProducerContext,
    ThreadedProducer,
};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientConfig, ClientContext};

use crate::client::{block_on, client_config, MESSAGE_TIMEOUT_MS};

/// Most deliveries [`SeqProducer::send`] leaves outstanding (each holds a
/// future): beyond, it waits for the oldest, so producing millions of records
/// takes little memory.
const MAX_PENDING: usize = 50_000;

/// How long producing helpers wait for outstanding deliveries (a flush, or one delivery report).
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);

/// Producer configuration of the testkit: [`client_config`] plus `acks=all`, `linger.ms=5`, and
/// `message.timeout.ms` 10 s.
pub fn producer_config(bootstrap: &str) -> ClientConfig {
    let mut config = client_config(bootstrap);
    config
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("message.timeout.ms", MESSAGE_TIMEOUT_MS);
    config
}

/// A producer of sequence-numbered records: value = the decimal sequence number, key chosen by the caller.
/// Sequence numbers are counted per topic, from 0, across calls of [`SeqProducer::send`].
pub struct SeqProducer {
    producer: FutureProducer,
    next_seq: HashMap<String, u64>,
    /// Longest wait for one delivery report, and for the flush of a send.
    wait: Duration,
}

impl SeqProducer {
    /// A producer connected to `bootstrap` (see [`producer_config`]).
    pub fn new(bootstrap: &str) -> SeqProducer {
        Self::with_config(producer_config(bootstrap), DELIVERY_TIMEOUT)
    }

    /// A producer for millions of records: batches of up to 10,000 records
    /// and a delivery timeout of 5 minutes instead of 10 s (a broker shared
    /// with a whole test suite may take minutes to take in a large backlog).
    pub fn bulk(bootstrap: &str) -> SeqProducer {
        let mut config = producer_config(bootstrap);
        config
            .set("linger.ms", "20")
            .set("batch.num.messages", "10000")
            .set("message.timeout.ms", "300000");
        Self::with_config(config, Duration::from_secs(310))
    }

    fn with_config(config: ClientConfig, wait: Duration) -> SeqProducer {
        SeqProducer {
            producer: config.create().expect("create producer"),
            next_seq: HashMap::new(),
            wait,
        }
    }

    /// Produce `count` records to `topic`, partition `partition` (or `None`: by key hash), with key `key_of(seq)` and
    /// value `seq`; sequence numbers continue from this producer's counter for `topic`. Flushes and panics unless
    /// every delivery succeeded. Returns the range of sequence numbers sent.
    pub fn send(
        &mut self,
        topic: &str,
        partition: Option<i32>,
        count: u64,
        key_of: impl Fn(u64) -> String,
    ) -> Range<u64> {
        let start = self.next_seq.get(topic).copied().unwrap_or(0);
        let range = start..start + count;
        let mut pending: VecDeque<(u64, DeliveryFuture)> = VecDeque::new();
        let mut failures = Vec::new();
        for seq in range.clone() {
            let key = key_of(seq);
            let value = seq.to_string();
            let mut record = FutureRecord::to(topic)
                .key(key.as_str())
                .payload(value.as_str());
            if let Some(partition) = partition {
                record = record.partition(partition);
            }
            let future = loop {
                match self.producer.send_result(record) {
                    Ok(future) => break future,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                        // Wait for the oldest outstanding delivery to make room in the queue.
                        record = returned;
                        match pending.pop_front() {
                            Some((seq, oldest)) => {
                                failures.extend(await_delivery(topic, seq, oldest, self.wait).err())
                            }
                            None => panic!("producer queue full with nothing outstanding"),
                        }
                    }
                    Err((e, _)) => panic!("produce {topic} seq {seq}: {e}"),
                }
            };
            pending.push_back((seq, future));
            if pending.len() > MAX_PENDING {
                // bounded memory for large counts: wait for the oldest delivery
                let (seq, oldest) = pending.pop_front().expect("not empty");
                failures.extend(await_delivery(topic, seq, oldest, self.wait).err());
            }
        }
        self.next_seq.insert(topic.to_string(), range.end);
        if let Err(e) = self.producer.flush(self.wait) {
            panic!("flush after producing {topic} seq {range:?}: {e}");
        }
        for (seq, future) in pending {
            failures.extend(await_delivery(topic, seq, future, self.wait).err());
        }
        assert!(
            failures.is_empty(),
            "{} deliveries failed, first: {}",
            failures.len(),
            failures[0]
        );
        range
    }

    /// Produce one record with explicit key, value, optional timestamp (ms since the epoch) and optional partition;
    /// flush; return the `(partition, offset)` it was written to. Panics if the delivery failed.
    pub fn send_raw(
        &self,
        topic: &str,
        partition: Option<i32>,
        key: Option<&[u8]>,
        value: &[u8],
        timestamp_ms: Option<i64>,
    ) -> (i32, i64) {
        let mut record = FutureRecord::<[u8], [u8]>::to(topic).payload(value);
        if let Some(key) = key {
            record = record.key(key);
        }
        if let Some(partition) = partition {
            record = record.partition(partition);
        }
        if let Some(timestamp) = timestamp_ms {
            record = record.timestamp(timestamp);
        }
        let future = self
            .producer
            .send_result(record)
            .map_err(|(e, _)| e)
            .unwrap_or_else(|e| {
                panic!("produce raw record to {topic}: {e}");
            });
        if let Err(e) = self.producer.flush(DELIVERY_TIMEOUT) {
            panic!("flush raw record to {topic}: {e}");
        }
        match block_on(future, DELIVERY_TIMEOUT) {
            Some(Ok(Ok(delivery))) => (delivery.partition, delivery.offset),
            Some(Ok(Err((e, _)))) => panic!("raw record to {topic} not delivered: {e}"),
            Some(Err(_)) => panic!("raw record to {topic}: delivery report dropped"),
            None => panic!("raw record to {topic}: no delivery report within {DELIVERY_TIMEOUT:?}"),
        }
    }
}

/// Wait for one delivery report of [`SeqProducer::send`]; `Err(description)` unless it succeeded.
fn await_delivery(
    topic: &str,
    seq: u64,
    future: DeliveryFuture,
    wait: Duration,
) -> Result<(), String> {
    match block_on(future, wait) {
        Some(Ok(Ok(_))) => Ok(()),
        Some(Ok(Err((e, _)))) => Err(format!("{topic} seq {seq}: {e}")),
        Some(Err(_)) => Err(format!("{topic} seq {seq}: delivery report dropped")),
        None => Err(format!(
            "{topic} seq {seq}: no delivery report within {wait:?}"
        )),
    }
}

/// Counts delivery reports of a [`SteadyProducer`].
#[derive(Default)]
struct Counts {
    enqueued: AtomicU64,
    delivered: AtomicU64,
    failed: AtomicU64,
}

/// The producer context of a [`SteadyProducer`]: counts delivered and failed records.
struct CountingContext(Arc<Counts>);

impl ClientContext for CountingContext {}

impl ProducerContext for CountingContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => self.0.delivered.fetch_add(1, Ordering::Relaxed),
            Err((e, _)) => {
                eprintln!("testkit: SteadyProducer delivery failed: {e}");
                self.0.failed.fetch_add(1, Ordering::Relaxed)
            }
        };
    }
}

/// A background thread producing sequence-numbered records to a topic at a steady rate, until stopped.
///
/// Record `seq` (from 0) goes to partition `seq % partitions` with key `"k{seq % 64}"` and value `seq`.
pub struct SteadyProducer {
    counts: Arc<Counts>,
    stop: Sender<()>,
    thread: Option<JoinHandle<()>>,
}

impl SteadyProducer {
    /// Start producing to `topic` at about `rate` records per second, round robin over partitions
    /// `0..partitions`.
    pub fn start(bootstrap: &str, topic: &str, partitions: i32, rate: u32) -> Self {
        assert!(
            partitions > 0 && rate > 0,
            "SteadyProducer needs partitions > 0 and rate > 0"
        );
        let counts = Arc::new(Counts::default());
        let producer: ThreadedProducer<CountingContext> = producer_config(bootstrap)
            .create_with_context(CountingContext(counts.clone()))
            .expect("create steady producer");
        let (stop, stopped) = mpsc::channel::<()>();
        let topic = topic.to_string();
        let thread_counts = counts.clone();
        let thread = std::thread::Builder::new()
            .name(format!("steady-{topic}"))
            .spawn(move || {
                let counts = thread_counts;
                let start = Instant::now();
                let per_record = Duration::from_secs_f64(1.0 / f64::from(rate));
                let mut seq: u64 = 0;
                loop {
                    let due = (start.elapsed().as_secs_f64() * f64::from(rate)) as u64 + 1;
                    while seq < due {
                        let key = format!("k{}", seq % 64);
                        let value = seq.to_string();
                        let record = BaseRecord::to(&topic)
                            .key(&key)
                            .payload(&value)
                            .partition((seq % partitions as u64) as i32);
                        match producer.send(record) {
                            Ok(()) => {
                                seq += 1;
                                counts.enqueued.store(seq, Ordering::Relaxed);
                            }
                            // Queue full (or a transient error): try again at the next tick.
                            Err((e, _)) => {
                                eprintln!(
                                    "testkit: SteadyProducer enqueue of seq {seq} failed: {e}"
                                );
                                break;
                            }
                        }
                    }
                    // The stop channel is the clock: it wakes at the next record's due time, or at once on stop().
                    let next = start + per_record.mul_f64(seq as f64);
                    match stopped.recv_timeout(
                        next.saturating_duration_since(Instant::now())
                            .max(per_record / 4),
                    ) {
                        Err(RecvTimeoutError::Timeout) => {}
                        Ok(()) | Err(RecvTimeoutError::Disconnected) => break,
                    }
                }
                if let Err(e) = producer.flush(DELIVERY_TIMEOUT) {
                    eprintln!("testkit: SteadyProducer flush of {topic}: {e}");
                }
            })
            .expect("spawn steady producer thread");
        SteadyProducer {
            counts,
            stop,
            thread: Some(thread),
        }
    }

    /// Records enqueued so far (delivered or not yet).
    pub fn sent(&self) -> u64 {
        self.counts.enqueued.load(Ordering::Relaxed)
    }

    /// Records whose delivery failed so far (each is also reported on stderr).
    pub fn failed(&self) -> u64 {
        self.counts.failed.load(Ordering::Relaxed)
    }

    /// Stop producing, flush, and return the number of records sent (successfully delivered: equal to
    /// [`SteadyProducer::sent`] unless deliveries failed).
    pub fn stop(mut self) -> u64 {
        self.finish();
        self.counts.delivered.load(Ordering::Relaxed)
    }

    fn finish(&mut self) {
        let _ = self.stop.send(());
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                eprintln!("testkit: SteadyProducer thread panicked");
            }
        }
    }
}

impl Drop for SteadyProducer {
    fn drop(&mut self) {
        self.finish();
    }
}
