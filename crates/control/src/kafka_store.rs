//! The desired state in a compacted, single-partition Kafka control topic
//! (created when missing).
//!
//! Readers use `assign()` from the beginning, never a consumer group:
//! librdkafka wants a `group.id` even for `assign()`, so
//! [`READER_GROUP`](crate::kafka_clients::READER_GROUP)
//! is set but never joined nor committed. They read with
//! `isolation.level=read_committed` and run every record through the
//! [`Reducer`]: the state of an application is its last committed record,
//! the one record of the key that compaction keeps.
//!
//! Writers are fenced the way Kafka Connect fences the writers of its
//! config topic (KIP-618). A write runs in a transaction of a producer whose
//! `transactional.id` belongs to the topic and the application
//! ([`transactional_id`](crate::kafka_clients::transactional_id)):
//! `init_transactions` fences every earlier producer
//! of that id and aborts its open transaction; the writer then reads to the
//! end of the log (waiting until no transaction is open below the end),
//! checks that the state is still the one its change was made from, and
//! produces and commits. A writer that initialises later fences this one, so
//! a commit that succeeds was preceded by nothing this writer did not read:
//! compare-and-set is on the writer's side, and nothing is ever re-written.
//! A store keeps the producer of an application's last committed write for
//! the next one (whose read still follows the initialisation); when another
//! writer fenced it meanwhile, its commit is refused and the write runs
//! again in a newly initialised producer.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use switchyard_config::Connection;
use tokio::sync::watch;

use crate::compacted_topic::{ensure_topic_with, TopicOptions};
use crate::error::{ControlError, Result};
use crate::kafka_clients::{
    client, deliver, position, read_to_end, reader, transactional_producer, CONTROL_FETCH_WAIT,
    REQUEST_TIMEOUT, TRANSACTION_TIMEOUT,
};
use crate::log::{decode_record, Reducer, Verdict};
use crate::model::DesiredState;
use crate::store::Store;

/// How long a writer waits for the transactions open below the end of the
/// log to finish (a writer of another application that died mid-transaction
/// is aborted by the broker after [`TRANSACTION_TIMEOUT`]).
pub const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a write with a kept producer waits for the transactions open
/// below the end of the log before it initialises a new producer instead
/// (which aborts a hung writer's transaction of its own app at once).
const KEPT_PATIENCE: Duration = Duration::from_millis(200);

/// Records of an application the store remembers (to find out whether a
/// commit of unknown outcome landed).
const RECENT: usize = 64;

/// What the tail thread has read so far.
#[derive(Default)]
struct Tail {
    reducer: Reducer,
    /// Next offset to read (the reader's position).
    next: i64,
    /// The last valid documents of each application, most recent last.
    recent: BTreeMap<String, VecDeque<DesiredState>>,
    watchers: Vec<(String, watch::Sender<Option<DesiredState>>)>,
}

impl Tail {
    /// Apply the record at `offset` and tell the watchers of its application.
    fn apply(&mut self, topic: &str, offset: i64, key: Option<&[u8]>, payload: Option<&[u8]>) {
        match self.reducer.apply_record(key, payload) {
            Verdict::Ignored(why) => {
                tracing::info!(topic, offset, %why, "control record ignored");
                return;
            }
            Verdict::Unreadable(why) => {
                tracing::warn!(topic, offset, %why, "control record unreadable: the app fails closed (every listener paused) until a valid record comes")
            }
            Verdict::Cleared => {
                tracing::info!(
                    topic,
                    offset,
                    "control tombstone: the app has no desired state"
                )
            }
            Verdict::Set(_) => {}
        }
        let Ok((app, _)) = decode_record(key, None) else {
            return;
        };
        let state = self.reducer.state(&app);
        if !state.is_unreadable() && state.version > 0 {
            let recent = self.recent.entry(app.clone()).or_default();
            recent.push_back(state.clone());
            if recent.len() > RECENT {
                recent.pop_front();
            }
        }
        self.watchers.retain(|(_, w)| !w.is_closed());
        for (a, w) in &self.watchers {
            if *a == app {
                w.send_if_modified(|held| {
                    let changed = held.as_ref() != Some(&state);
                    if changed {
                        *held = Some(state.clone());
                    }
                    changed
                });
            }
        }
    }
}

/// The writer of one application in this store: its lock serialises the
/// store's writes of the app (which would only fence each other), and it
/// keeps the app's transactional producer of the last write that committed,
/// ready for the next one.
type WriterSlot = Arc<Mutex<Option<BaseProducer>>>;

/// How a transaction failed.
enum TxnFailure {
    /// Before the commit was asked for: the write did not land.
    NotCommitted(rdkafka::error::KafkaError),
    /// The commit failed: the write may or may not have landed.
    Unsure(rdkafka::error::KafkaError),
}

/// Produce `s` in a transaction of `p` and commit it.
fn produce_in_transaction(
    p: &BaseProducer,
    topic: &str,
    s: &DesiredState,
) -> std::result::Result<(), TxnFailure> {
    p.begin_transaction().map_err(TxnFailure::NotCommitted)?;
    let payload = s.encode();
    p.send(BaseRecord::to(topic).key(&s.app).payload(&payload))
        .map_err(|(e, _)| TxnFailure::NotCommitted(e))?;
    // rdkafka's `commit_transaction` flushes first, polling in 100 ms
    // steps, which puts a 100 ms floor under every write; delivered here
    // in 1 ms steps, its flush finds nothing left. A delivery that fails
    // or times out is left to the commit, which then fails (unsure).
    let _ = deliver(p);
    p.commit_transaction(REQUEST_TIMEOUT).map_err(|e| {
        if fenced(&e) {
            // a later producer of the app initialised: the broker aborted
            // this transaction and refuses its commit
            TxnFailure::NotCommitted(e)
        } else {
            TxnFailure::Unsure(e)
        }
    })
}

/// Whether `e` says a later producer of the same `transactional.id`
/// fenced this one.
fn fenced(e: &rdkafka::error::KafkaError) -> bool {
    use rdkafka::types::RDKafkaErrorCode as Code;
    matches!(
        e.rdkafka_error_code(),
        Some(Code::Fenced | Code::ProducerFenced | Code::InvalidProducerEpoch)
    )
}

/// The control topic as a [`Store`]: one reader thread tails the log
/// through the reducer for the life of the store; reads wait until it has
/// caught up with the end of the committed log as of the call. Writes are
/// transactions of a fenced producer per application (module docs).
pub struct KafkaStore {
    connection: Connection,
    topic: String,
    /// `isolation.level=read_committed`: its end offset is the last stable
    /// offset. (Not the tail's reader: a broker answers the requests of one
    /// connection in order, so a request of the reader's would wait out its
    /// fetch, up to [`CONTROL_FETCH_WAIT`].)
    committed_end: BaseConsumer,
    /// `isolation.level=read_uncommitted`: its end offset is the high
    /// watermark. Made at the first write (an instance's store only reads).
    log_end: Mutex<Option<Arc<BaseConsumer>>>,
    tail: Arc<(Mutex<Tail>, Condvar)>,
    stop: Arc<AtomicBool>,
    writers: Mutex<BTreeMap<String, WriterSlot>>,
}

impl Drop for KafkaStore {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl KafkaStore {
    /// A store on `topic`, created (compacted, one partition) when missing.
    /// `connection` is a [`Connection`] (or a bootstrap list for a
    /// plaintext one).
    pub fn new(connection: impl Into<Connection>, topic: &str) -> Result<Arc<KafkaStore>> {
        KafkaStore::open(connection, topic, TopicOptions::default())
    }

    /// [`KafkaStore::new`] with `options` for the topic (whether a missing
    /// one is created).
    pub fn open(
        connection: impl Into<Connection>,
        topic: &str,
        options: TopicOptions,
    ) -> Result<Arc<KafkaStore>> {
        let connection = connection.into();
        ensure_topic_with(&connection, topic, options)?;
        let c = reader(&connection, topic, CONTROL_FETCH_WAIT)?;
        let tail: Arc<(Mutex<Tail>, Condvar)> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (t, st, top) = (tail.clone(), stop.clone(), topic.to_string());
        std::thread::Builder::new()
            .name("sy-control-tail".into())
            .spawn(move || {
                // A transaction marker moves the position without a record,
                // and a poll returns only with a record or at its timeout:
                // after a record, poll in 5 ms steps until the position is
                // past the marker that comes right behind it (at most
                // 100 ms: a record written outside a transaction has none),
                // so that a read waiting for the position past the marker of
                // a write just read is not held up to a 100 ms timeout. Only
                // then: 32 tails polling every 5 ms for as long as writes
                // came took a fifth of the CPU of a 32-instance fleet.
                let mut marker: Option<(i64, Instant)> = None;
                while !st.load(Ordering::Relaxed) {
                    let next = t.0.lock().unwrap().next;
                    let step = match marker {
                        Some((at, until)) if next <= at && Instant::now() < until => {
                            Duration::from_millis(5)
                        }
                        _ => Duration::from_millis(100),
                    };
                    let polled = c.poll(step);
                    let pos = position(&c, &top);
                    let (lock, cv) = &*t;
                    let mut tail = lock.lock().unwrap();
                    let before = tail.next;
                    match polled {
                        Some(Ok(m)) => {
                            tail.apply(&top, m.offset(), m.key(), m.payload());
                            tail.next = tail.next.max(m.offset() + 1);
                            marker =
                                Some((m.offset() + 1, Instant::now() + Duration::from_millis(100)));
                        }
                        Some(Err(e)) => tracing::debug!(topic = %top, error = %e, "control tail"),
                        None => {}
                    }
                    tail.next = tail.next.max(pos.unwrap_or(0));
                    if tail.next != before {
                        cv.notify_all();
                    }
                }
            })?;
        Ok(Arc::new(KafkaStore {
            topic: topic.into(),
            committed_end: client(&connection)
                .set("isolation.level", "read_committed")
                .create()?,
            log_end: Mutex::default(),
            connection,
            tail,
            stop,
            writers: Mutex::default(),
        }))
    }

    /// The high-watermark client, made at the first call.
    fn log_end(&self) -> Result<Arc<BaseConsumer>> {
        let mut log_end = self.log_end.lock().unwrap();
        if let Some(c) = &*log_end {
            return Ok(c.clone());
        }
        let c: Arc<BaseConsumer> = Arc::new(
            client(&self.connection)
                .set("isolation.level", "read_uncommitted")
                .create()?,
        );
        *log_end = Some(c.clone());
        Ok(c)
    }

    /// Wait until the tail has read up to offset `end` (or the log start
    /// `low`, whichever is higher); run `f` on it.
    fn caught_up<T>(&self, low: i64, end: i64, f: impl FnOnce(&mut Tail) -> T) -> Result<T> {
        let deadline = Instant::now() + REQUEST_TIMEOUT;
        let (lock, cv) = &*self.tail;
        let mut tail = lock.lock().unwrap();
        while tail.next.max(low) < end {
            let now = Instant::now();
            if now > deadline {
                return Err(ControlError::Timeout(format!(
                    "reading `{}` to offset {end} (at {})",
                    self.topic, tail.next
                )));
            }
            tail = cv.wait_timeout(tail, deadline - now).unwrap().0;
        }
        Ok(f(&mut tail))
    }

    /// Wait until the tail has read every record committed so far; run `f`.
    fn committed<T>(&self, f: impl FnOnce(&mut Tail) -> T) -> Result<T> {
        let (low, end) = self
            .committed_end
            .fetch_watermarks(&self.topic, 0, REQUEST_TIMEOUT)?;
        self.caught_up(low, end, f)
    }

    /// Wait until no transaction is open below the end of the log as of
    /// the call and the tail has read up to it; run `f`. What a fenced
    /// writer reads: no committed record of its app below that end can be
    /// hidden from it behind another app's open transaction.
    ///
    /// `Ok(None)` when a transaction is still open after `patience`: a
    /// writer with a kept producer then initialises a new one, which aborts
    /// the open transaction if it is a hung writer's of its own app (it may
    /// have fenced the kept producer), instead of waiting for its timeout.
    fn settled<T>(
        &self,
        patience: Option<Duration>,
        f: impl FnOnce(&mut Tail) -> T,
    ) -> Result<Option<T>> {
        let (_, end) = self
            .log_end()?
            .fetch_watermarks(&self.topic, 0, REQUEST_TIMEOUT)?;
        let started = Instant::now();
        loop {
            let (low, stable) =
                self.committed_end
                    .fetch_watermarks(&self.topic, 0, REQUEST_TIMEOUT)?;
            if stable >= end {
                return self.caught_up(low, end, f).map(Some);
            }
            if patience.is_some_and(|p| started.elapsed() > p) {
                return Ok(None);
            }
            if started.elapsed() > SETTLE_TIMEOUT {
                return Err(ControlError::Timeout(format!(
                    "a transaction is still open below offset {end} of `{}` (last stable offset {stable}); \
                     a writer that died mid-transaction is aborted after {TRANSACTION_TIMEOUT:?}",
                    self.topic
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Every decoded record of the log, in order (for checks; reads the
    /// committed records of the topic anew).
    pub fn history(&self, connection: impl Into<Connection>) -> Result<Vec<DesiredState>> {
        let mut out = Vec::new();
        read_to_end(connection, &self.topic, |_, p| {
            if let Some(s) = p.and_then(|p| DesiredState::decode(p, "record").ok()) {
                out.push(s);
            }
        })?;
        Ok(out)
    }

    /// The control topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    fn writer(&self, app: &str) -> WriterSlot {
        self.writers
            .lock()
            .unwrap()
            .entry(app.to_string())
            .or_default()
            .clone()
    }

    /// Commit `next` if the state of its app, read after fencing every
    /// other writer of the app, passes `still_base`. `Ok(false)`: the state
    /// changed, or this writer was fenced (the write did not land).
    ///
    /// A write runs in the producer the app's last committed write of this
    /// store used, whose `init_transactions` fenced every earlier writer: a
    /// writer that initialised since fences it in turn, so its commit
    /// succeeds only if nobody initialised between that initialisation and
    /// the commit, and the state it read after initialising was the state
    /// it changed. A write whose kept producer is refused (fenced, expired,
    /// in error) is tried once more with a new producer, as the first write
    /// of an app: initialising fences every earlier writer of the app and
    /// aborts its open transaction at once, so a writer that hangs or died
    /// mid-transaction holds this one back no longer than an
    /// `InitProducerId` takes. A commit whose outcome is unknown is resolved
    /// the same way: the next producer's initialisation completes or aborts
    /// it, and the log says whether it landed.
    fn put_checked(
        &self,
        next: &DesiredState,
        still_base: impl Fn(&DesiredState) -> bool,
    ) -> Result<bool> {
        let app = next.app.as_str();
        let slot = self.writer(app);
        let mut kept = slot.lock().unwrap_or_else(|p| p.into_inner());
        let mut unsure = false;
        for _ in 0..4 {
            let (p, new) = match kept.take() {
                Some(p) => (p, false),
                None => (
                    transactional_producer(&self.connection, &self.topic, app)?,
                    true,
                ),
            };
            // a kept producer waits briefly for open transactions (another
            // app's take a few ms); a new one has fenced its app's
            let patience = (!new).then_some(KEPT_PATIENCE);
            let read = self.settled(patience, |t| {
                let landed = t
                    .recent
                    .get(app)
                    .is_some_and(|r| r.iter().any(|s| s == next));
                (t.reducer.state(app), landed)
            })?;
            let Some((current, landed)) = read else {
                tracing::debug!(
                    app,
                    "a transaction is open below the end; initialising a new control writer"
                );
                continue;
            };
            if unsure {
                tracing::info!(
                    app,
                    version = next.version,
                    landed,
                    "outcome of an unsure commit"
                );
                *kept = Some(p);
                return Ok(landed);
            }
            if !still_base(&current) {
                *kept = Some(p);
                return Ok(false);
            }
            match produce_in_transaction(&p, &self.topic, next) {
                Ok(()) => {
                    *kept = Some(p);
                    return Ok(true);
                }
                Err(TxnFailure::NotCommitted(e)) if !new => {
                    let _ = p.abort_transaction(REQUEST_TIMEOUT);
                    tracing::debug!(app, version = next.version, error = %e, "the kept control writer was refused (fenced by another writer?); initialising a new one");
                }
                Err(TxnFailure::NotCommitted(e)) => {
                    let _ = p.abort_transaction(REQUEST_TIMEOUT);
                    tracing::info!(app, version = next.version, error = %e, "control write not committed (fenced by another writer?)");
                    return Ok(false);
                }
                Err(TxnFailure::Unsure(e)) => {
                    tracing::warn!(app, version = next.version, error = %e, "control commit failed; fencing to learn whether it landed");
                    unsure = true;
                }
            }
        }
        Err(ControlError::Timeout(format!(
            "the outcome of the write of version {} of app `{app}` is unknown",
            next.version
        )))
    }
}

impl Store for KafkaStore {
    fn read(&self, app: &str) -> Result<DesiredState> {
        self.committed(|t| t.reducer.state(app))
    }

    fn try_put(&self, next: &DesiredState) -> Result<bool> {
        self.put_checked(next, |cur| {
            !cur.is_unreadable() && cur.version == next.prev_version
        })
    }

    fn put_if(&self, base: &DesiredState, next: &DesiredState) -> Result<bool> {
        self.put_checked(next, |cur| cur == base)
    }

    fn watch(&self, app: &str) -> Result<watch::Receiver<Option<DesiredState>>> {
        self.committed(|t| {
            let (tx, rx) = watch::channel(Some(t.reducer.state(app)));
            t.watchers.push((app.to_string(), tx));
            rx
        })
    }

    fn describe(&self) -> String {
        format!("kafka topic `{}`", self.topic)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kafka_clients::producer;
    use crate::model::Pause;
    use rdkafka::mocking::MockCluster;

    /// librdkafka's mock cluster (the demo's broker) answers the
    /// transactional requests (InitProducerId, AddPartitionsToTxn, EndTxn):
    /// writes, reads, tombstones and unreadable records work on it as on
    /// Kafka. (It does not fence: every InitProducerId gets a new producer
    /// id, so only writes through one store are serialised there.)
    #[test]
    fn the_store_works_on_the_mock_cluster() {
        let cluster = MockCluster::new(1).unwrap();
        let b = cluster.bootstrap_servers();
        // as the demo does (the mock cluster does not answer CreateTopics)
        cluster.create_topic("ctl", 1, 1).unwrap();
        let store = KafkaStore::new(&b, "ctl").unwrap();
        let rx = store.watch("app").unwrap();
        for (i, l) in ["x", "y", "z"].iter().enumerate() {
            let s = store
                .write("app", Some(i as u64), Some("test"), &|s| {
                    s.add_pause(Pause::listener(l))
                })
                .unwrap();
            assert_eq!(s.version, i as u64 + 1);
        }
        let e = store.write("app", Some(1), None, &|_| Ok(())).unwrap_err();
        assert!(
            matches!(e, ControlError::Conflict { current: 3, .. }),
            "{e}"
        );
        let fresh = KafkaStore::new(&b, "ctl").unwrap();
        let s = fresh.read("app").unwrap();
        assert_eq!((s.version, s.pauses.len()), (3, 3));
        assert_eq!(store.read("app").unwrap(), s);
        let deadline = Instant::now() + REQUEST_TIMEOUT;
        while rx.borrow().as_ref().map(|s| s.version) != Some(3) {
            assert!(Instant::now() < deadline, "the watcher saw version 3");
            std::thread::sleep(Duration::from_millis(10));
        }
        // raw records: garbage, then a tombstone
        let raw = producer(&b).unwrap();
        raw.send(BaseRecord::to("ctl").key("app").payload("garbage"))
            .map_err(|(e, _)| e)
            .unwrap();
        deliver(&raw).unwrap();
        for st in [&store, &fresh] {
            let s = st.read("app").unwrap();
            assert!(s.is_unreadable(), "{s:?}");
            let e = st.write("app", None, None, &|_| Ok(())).unwrap_err();
            assert!(matches!(e, ControlError::Unreadable { .. }), "{e}");
        }
        raw.send(BaseRecord::<str, str>::to("ctl").key("app"))
            .map_err(|(e, _)| e)
            .unwrap();
        deliver(&raw).unwrap();
        assert_eq!(fresh.read("app").unwrap(), DesiredState::new("app"));
        let s = store.write("app", Some(0), None, &|_| Ok(())).unwrap();
        assert_eq!(s.version, 1);
        assert_eq!(fresh.read("app").unwrap(), s);
    }
}
