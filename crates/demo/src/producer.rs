//! A background producer of sequence-numbered records at a steady rate:
//! record `seq` (from 0) goes to partition `seq % partitions` with key
//! `k{seq % 64}` and value `seq` (JSON: a number), until stopped.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;

#[derive(Default)]
struct Counts {
    delivered: AtomicU64,
    failed: AtomicU64,
}

struct Counting(Arc<Counts>);

impl ClientContext for Counting {}

impl ProducerContext for Counting {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        let n = match result {
            Ok(_) => &self.0.delivered,
            Err(_) => &self.0.failed,
        };
        n.fetch_add(1, Ordering::Relaxed);
    }
}

/// The producer thread; [`SteadyProducer::stop`] ends it.
pub(crate) struct SteadyProducer {
    counts: Arc<Counts>,
    stop: Sender<()>,
    thread: Option<JoinHandle<()>>,
}

impl SteadyProducer {
    /// Start producing to `topic` at about `rate` records per second.
    pub(crate) fn start(
        bootstrap: &str,
        topic: &str,
        partitions: i32,
        rate: u32,
    ) -> anyhow::Result<SteadyProducer> {
        anyhow::ensure!(
            partitions > 0 && rate > 0,
            "partitions and rate must be positive"
        );
        let counts = Arc::new(Counts::default());
        let producer: ThreadedProducer<Counting> = crate::client(bootstrap)
            .set("acks", "all")
            .set("linger.ms", "5")
            .set("message.timeout.ms", "10000")
            .create_with_context(Counting(counts.clone()))?;
        let (stop, stopped) = mpsc::channel::<()>();
        let topic = topic.to_string();
        let thread = std::thread::Builder::new()
            .name("demo-producer".into())
            .spawn(move || {
                let start = Instant::now();
                let per_record = Duration::from_secs_f64(1.0 / f64::from(rate));
                let mut seq: u64 = 0;
                loop {
                    let due = (start.elapsed().as_secs_f64() * f64::from(rate)) as u64 + 1;
                    while seq < due {
                        let (key, value) = (format!("k{}", seq % 64), seq.to_string());
                        let record = BaseRecord::to(&topic)
                            .key(&key)
                            .payload(&value)
                            .partition((seq % partitions as u64) as i32);
                        if producer.send(record).is_err() {
                            break; // queue full: again at the next tick
                        }
                        seq += 1;
                    }
                    let next = start + per_record.mul_f64(seq as f64);
                    let wait = next
                        .saturating_duration_since(Instant::now())
                        .max(per_record / 4);
                    match stopped.recv_timeout(wait) {
                        Err(RecvTimeoutError::Timeout) => {}
                        Ok(()) | Err(RecvTimeoutError::Disconnected) => break,
                    }
                }
                let _ = producer.flush(Duration::from_secs(30));
            })?;
        Ok(SteadyProducer {
            counts,
            stop,
            thread: Some(thread),
        })
    }

    /// Records whose delivery failed so far.
    pub(crate) fn failed(&self) -> u64 {
        self.counts.failed.load(Ordering::Relaxed)
    }

    /// Stop producing, flush, and return the number of records delivered.
    pub(crate) fn stop(mut self) -> u64 {
        self.finish();
        self.counts.delivered.load(Ordering::Relaxed)
    }

    fn finish(&mut self) {
        let _ = self.stop.send(());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for SteadyProducer {
    fn drop(&mut self) {
        self.finish();
    }
}
