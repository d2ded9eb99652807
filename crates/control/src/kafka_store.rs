//! The desired state in a compacted, single-partition Kafka control topic
//! (created when missing). Readers use `assign()` from the beginning, never a
//! consumer group: librdkafka wants a `group.id` even for `assign()`, so
//! [`READER_GROUP`] is set but never joined nor committed. Every read runs
//! the log through the [`Reducer`], the same way on every instance.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use tokio::sync::watch;

use crate::error::{ControlError, Result};
use crate::log::{Reducer, Verdict};
use crate::model::DesiredState;
use crate::store::Store;

/// The group id readers set because librdkafka requires one; never joined.
pub const READER_GROUP: &str = "switchyard-control-reader";

/// How long one blocking Kafka request may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Base client configuration.
pub fn client(bootstrap: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap)
        .set("broker.address.family", "v4")
        .set("socket.timeout.ms", "10000")
        .set("reconnect.backoff.ms", "20")
        .set("reconnect.backoff.max.ms", "500");
    c
}

/// A reader of partition 0 of `topic` from the beginning, outside any group.
pub fn reader(bootstrap: &str, topic: &str) -> Result<BaseConsumer> {
    let c: BaseConsumer = client(bootstrap)
        .set("group.id", READER_GROUP)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("fetch.wait.max.ms", "10")
        .set("fetch.error.backoff.ms", "10")
        .create()?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)?;
    c.assign(&tpl)?;
    Ok(c)
}

/// A producer that sends at once.
pub fn producer(bootstrap: &str) -> Result<BaseProducer> {
    Ok(client(bootstrap)
        .set("linger.ms", "0")
        .set("message.timeout.ms", "10000")
        .create()?)
}

/// Wait until every message `p` sent is delivered (`flush` of rdkafka
/// polls in 100 ms steps; this polls in 1 ms steps).
pub fn deliver(p: &BaseProducer) -> Result<()> {
    let deadline = Instant::now() + REQUEST_TIMEOUT;
    while p.in_flight_count() > 0 {
        if Instant::now() > deadline {
            return Err(ControlError::Timeout("message delivery".into()));
        }
        p.poll(Duration::from_millis(1));
    }
    Ok(())
}

/// Create `topic` (1 partition, compacted) unless it exists.
pub fn ensure_topic(bootstrap: &str, topic: &str) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> = client(bootstrap).create()?;
    let probe: BaseConsumer = client(bootstrap).create()?;
    let exists = |c: &BaseConsumer| {
        c.fetch_metadata(Some(topic), REQUEST_TIMEOUT)
            .ok()
            .and_then(|m| {
                m.topics()
                    .first()
                    .map(|t| t.error().is_none() && !t.partitions().is_empty())
            })
            .unwrap_or(false)
    };
    if exists(&probe) {
        return Ok(());
    }
    let new = NewTopic::new(topic, 1, TopicReplication::Fixed(1))
        .set("cleanup.policy", "compact")
        .set("min.compaction.lag.ms", "3600000");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let res = rt.block_on(admin.create_topics([&new], &AdminOptions::new()))?;
    for r in res {
        if let Err((t, code)) = r {
            if code != rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists {
                return Err(ControlError::Invalid(format!(
                    "cannot create topic `{t}`: {code}"
                )));
            }
        }
    }
    let deadline = Instant::now() + REQUEST_TIMEOUT;
    while !exists(&probe) {
        if Instant::now() > deadline {
            return Err(ControlError::Timeout(format!(
                "topic `{topic}` not visible after creation"
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// Read partition 0 of `topic` from the beginning to its end, giving each
/// record (key, payload) to `f`.
pub fn read_to_end(
    bootstrap: &str,
    topic: &str,
    mut f: impl FnMut(Option<&[u8]>, Option<&[u8]>),
) -> Result<BaseConsumer> {
    let c = reader(bootstrap, topic)?;
    let (_, high) = c.fetch_watermarks(topic, 0, REQUEST_TIMEOUT)?;
    let deadline = Instant::now() + REQUEST_TIMEOUT;
    let mut next = 0;
    while next < high {
        if Instant::now() > deadline {
            return Err(ControlError::Timeout(format!(
                "reading `{topic}` to offset {high}"
            )));
        }
        match c.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                next = m.offset() + 1;
                f(m.key(), m.payload());
            }
            Some(Err(e)) => tracing::debug!(topic, error = %e, "control read"),
            None => {
                // compaction may leave the first offset above 0
                if let Ok((low, _)) = c.fetch_watermarks(topic, 0, REQUEST_TIMEOUT) {
                    next = next.max(low);
                }
            }
        }
    }
    Ok(c)
}

/// What the tail thread has read so far.
#[derive(Default)]
struct Tail {
    reducer: Reducer,
    /// Next offset to read.
    next: i64,
    /// Accepted records, most recent last (bounded).
    accepted: VecDeque<DesiredState>,
    watchers: Vec<(String, watch::Sender<Option<DesiredState>>)>,
}

/// The control topic as a [`Store`]: one reader thread tails the log
/// through the reducer for the life of the store; reads wait until it has
/// caught up with the end of the log as of the call.
pub struct KafkaStore {
    topic: String,
    producer: BaseProducer,
    meta: BaseConsumer,
    tail: Arc<(Mutex<Tail>, Condvar)>,
    stop: Arc<AtomicBool>,
}

impl Drop for KafkaStore {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl KafkaStore {
    /// A store on `topic`, created (compacted, one partition) when missing.
    pub fn new(bootstrap: &str, topic: &str) -> Result<Arc<KafkaStore>> {
        ensure_topic(bootstrap, topic)?;
        let c = reader(bootstrap, topic)?;
        let tail: Arc<(Mutex<Tail>, Condvar)> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (t, st, top) = (tail.clone(), stop.clone(), topic.to_string());
        std::thread::Builder::new()
            .name("sy-control-tail".into())
            .spawn(move || {
                while !st.load(Ordering::Relaxed) {
                    match c.poll(Duration::from_millis(100)) {
                        Some(Ok(m)) => {
                            let (lock, cv) = &*t;
                            let mut tail = lock.lock().unwrap();
                            match tail.reducer.apply_record(m.key(), m.payload()) {
                                Verdict::Accepted => {
                                    let app = String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned();
                                    if let Some(s) = tail.reducer.get(&app).cloned() {
                                        tail.watchers.retain(|(_, w)| !w.is_closed());
                                        for (a, w) in &tail.watchers {
                                            if *a == app {
                                                w.send_replace(Some(s.clone()));
                                            }
                                        }
                                        tail.accepted.push_back(s);
                                        if tail.accepted.len() > 1000 {
                                            tail.accepted.pop_front();
                                        }
                                    }
                                }
                                Verdict::Duplicate => {}
                                Verdict::Rejected(why) => {
                                    tracing::info!(topic = %top, offset = m.offset(), %why, "control record rejected")
                                }
                            }
                            tail.next = m.offset() + 1;
                            cv.notify_all();
                        }
                        Some(Err(e)) => tracing::debug!(topic = %top, error = %e, "control tail"),
                        None => {}
                    }
                }
            })?;
        Ok(Arc::new(KafkaStore {
            topic: topic.into(),
            producer: producer(bootstrap)?,
            meta: client(bootstrap).create()?,
            tail,
            stop,
        }))
    }

    /// Wait until the tail has read everything written so far; run `f` on it.
    fn caught_up<T>(&self, f: impl FnOnce(&mut Tail) -> T) -> Result<T> {
        let (low, high) = self
            .meta
            .fetch_watermarks(&self.topic, 0, REQUEST_TIMEOUT)?;
        let deadline = Instant::now() + REQUEST_TIMEOUT;
        let (lock, cv) = &*self.tail;
        let mut tail = lock.lock().unwrap();
        while tail.next.max(low) < high {
            let now = Instant::now();
            if now > deadline {
                return Err(ControlError::Timeout(format!(
                    "reading `{}` to offset {high} (at {})",
                    self.topic, tail.next
                )));
            }
            tail = cv.wait_timeout(tail, deadline - now).unwrap().0;
        }
        Ok(f(&mut tail))
    }

    /// Every decoded record of the log, in order (for checks; reads the topic anew).
    pub fn history(&self, bootstrap: &str) -> Result<Vec<DesiredState>> {
        let mut out = Vec::new();
        read_to_end(bootstrap, &self.topic, |_, p| {
            if let Some(s) = p.and_then(|p| DesiredState::decode(p, "record").ok()) {
                out.push(s);
            }
        })?;
        Ok(out)
    }

    fn produce(&self, s: &DesiredState) -> Result<()> {
        let payload = s.encode();
        self.producer
            .send(BaseRecord::to(&self.topic).key(&s.app).payload(&payload))
            .map_err(|(e, _)| e)?;
        deliver(&self.producer)?;
        Ok(())
    }
}

impl Store for KafkaStore {
    fn read(&self, app: &str) -> Result<DesiredState> {
        self.caught_up(|t| {
            t.reducer
                .get(app)
                .cloned()
                .unwrap_or_else(|| DesiredState::new(app))
        })
    }

    fn try_put(&self, next: &DesiredState) -> Result<bool> {
        self.produce(next)?;
        let (won, winner) = self.caught_up(|t| {
            (
                t.accepted.iter().rev().any(|s| s == next),
                t.reducer.get(&next.app).cloned(),
            )
        })?;
        if !won {
            // lost: make the winner the last record again, so compaction keeps it
            if let Some(w) = winner {
                self.produce(&w)?;
            }
        }
        Ok(won)
    }

    fn watch(&self, app: &str) -> Result<watch::Receiver<Option<DesiredState>>> {
        self.caught_up(|t| {
            let s = t
                .reducer
                .get(app)
                .cloned()
                .unwrap_or_else(|| DesiredState::new(app));
            let (tx, rx) = watch::channel(Some(s));
            t.watchers.push((app.to_string(), tx));
            rx
        })
    }

    fn describe(&self) -> String {
        format!("kafka topic `{}`", self.topic)
    }
}
