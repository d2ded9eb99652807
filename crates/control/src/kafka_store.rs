//! The desired state in a compacted, single-partition Kafka control topic
//! (created when missing).
//!
//! Readers use `assign()` from the beginning, never a consumer group:
//! librdkafka wants a `group.id` even for `assign()`, so [`READER_GROUP`]
//! is set but never joined nor committed. They read with
//! `isolation.level=read_committed` and run every record through the
//! [`Reducer`]: the state of an application is its last committed record,
//! the one record of the key that compaction keeps.
//!
//! Writers are fenced the way Kafka Connect fences the writers of its
//! config topic (KIP-618). A write runs in a transaction of a producer whose
//! `transactional.id` belongs to the topic and the application
//! ([`transactional_id`]): `init_transactions` fences every earlier producer
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

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use switchyard_config::Connection;
use tokio::sync::watch;

use crate::error::{ControlError, Result};
use crate::log::{decode_record, Reducer, Verdict};
use crate::model::DesiredState;
use crate::store::Store;

/// The group id readers set because librdkafka requires one; never joined.
pub const READER_GROUP: &str = "switchyard-control-reader";

/// How long one blocking Kafka request may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// `transaction.timeout.ms` of writers: a writer that dies mid-transaction
/// holds readers back (the last stable offset) at most this long, plus the
/// broker's `transaction.abort.timed.out.transaction.cleanup.interval.ms`,
/// unless the next writer of its application fences it sooner.
pub const TRANSACTION_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a writer waits for the transactions open below the end of the
/// log to finish (a writer of another application that died mid-transaction
/// is aborted by the broker after [`TRANSACTION_TIMEOUT`]).
pub const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);

/// `segment.ms` of the control and status topics the control plane
/// creates: a segment is compacted once it is rolled and its records are
/// older than `min.compaction.lag.ms` (1 hour).
pub const SEGMENT_MS: Duration = Duration::from_secs(600);

/// How long a write with a kept producer waits for the transactions open
/// below the end of the log before it initialises a new producer instead
/// (which aborts a hung writer's transaction of its own app at once).
const KEPT_PATIENCE: Duration = Duration::from_millis(200);

/// Records of an application the store remembers (to find out whether a
/// commit of unknown outcome landed).
const RECENT: usize = 64;

/// Base client configuration: every property of `connection` (bootstrap
/// servers, security), then the store's timeouts and backoffs where the
/// connection does not set them.
pub fn client(connection: &Connection) -> ClientConfig {
    let mut c = connection.client_config();
    for (key, value) in [
        ("socket.timeout.ms", "10000"),
        ("reconnect.backoff.ms", "20"),
        ("reconnect.backoff.max.ms", "500"),
    ] {
        if connection.get(key).is_none() {
            c.set(key, value);
        }
    }
    c
}

/// How long the broker may hold a fetch of the control topic's tail that
/// finds no new record. Apache Kafka answers a waiting fetch as soon as a
/// record is committed, so this costs no latency there and keeps an idle
/// reader at two requests a second (at 10 ms, a hundred per instance). A
/// broker that holds an empty fetch for all of it (librdkafka's mock
/// cluster) delivers a change up to this late.
pub const CONTROL_FETCH_WAIT: Duration = Duration::from_millis(500);

/// [`CONTROL_FETCH_WAIT`] of the status topic's readers: that topic is busy
/// (every instance's heartbeats), and the age of a status read late must not
/// pass for a gone instance on a broker that holds empty fetches.
pub const STATUS_FETCH_WAIT: Duration = Duration::from_millis(100);

/// A reader of partition 0 of `topic` from the beginning, outside any
/// group, of committed records only, whose fetches the broker holds up to
/// `fetch_wait` when there is nothing new.
pub fn reader(
    connection: impl Into<Connection>,
    topic: &str,
    fetch_wait: Duration,
) -> Result<BaseConsumer> {
    let c: BaseConsumer = client(&connection.into())
        .set("group.id", READER_GROUP)
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("fetch.wait.max.ms", fetch_wait.as_millis().to_string())
        .set("fetch.error.backoff.ms", "10")
        .create()?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)?;
    c.assign(&tpl)?;
    Ok(c)
}

/// A producer that sends at once.
pub fn producer(connection: impl Into<Connection>) -> Result<BaseProducer> {
    Ok(client(&connection.into())
        .set("linger.ms", "0")
        .set("message.timeout.ms", "10000")
        .create()?)
}

/// The `transactional.id` of the writers of `app` on the control `topic`.
pub fn transactional_id(topic: &str, app: &str) -> String {
    format!("switchyard-control.{topic}.{app}")
}

/// A transactional producer of the writers of `app` on `topic`, initialised:
/// every earlier producer of the same id is fenced, its open transaction
/// aborted.
pub fn transactional_producer(
    connection: impl Into<Connection>,
    topic: &str,
    app: &str,
) -> Result<BaseProducer> {
    let p: BaseProducer = client(&connection.into())
        .set("transactional.id", transactional_id(topic, app))
        .set(
            "transaction.timeout.ms",
            TRANSACTION_TIMEOUT.as_millis().to_string(),
        )
        .set("linger.ms", "0")
        .create()?;
    // A broker connection up before `init_transactions`: when none is up
    // yet (the bootstrap connection is dropped once the brokers are
    // learned), librdkafka looks the transaction coordinator up only on its
    // 500 ms retry timer, which held about a third of the writes 500 ms on
    // Apache Kafka. The first Metadata request goes through the bootstrap
    // connection, the second through a learned broker, which stays up.
    for _ in 0..2 {
        p.client().fetch_metadata(Some(topic), REQUEST_TIMEOUT)?;
    }
    p.init_transactions(2 * REQUEST_TIMEOUT)?;
    Ok(p)
}

/// The application position of `c` on partition 0 of `topic`: past the last
/// record returned and past transaction markers (which are not returned).
pub(crate) fn position(c: &BaseConsumer, topic: &str) -> Option<i64> {
    let tpl = c.position().ok()?;
    match tpl.find_partition(topic, 0)?.offset() {
        Offset::Offset(n) => Some(n),
        _ => None,
    }
}

/// Wait until every message `p` sent is delivered (`flush` of rdkafka
/// polls in 100 ms steps; this looks every 1 ms). rdkafka's
/// `BaseProducer::poll` waits whole milliseconds of what is left of its
/// timeout and spins on the fraction, so a `poll` of 1 ms is 1 ms of
/// spinning: it serves the delivery reports without waiting, and the thread
/// sleeps in between.
pub fn deliver(p: &BaseProducer) -> Result<()> {
    let deadline = Instant::now() + REQUEST_TIMEOUT;
    loop {
        p.poll(Duration::ZERO);
        if p.in_flight_count() == 0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(ControlError::Timeout("message delivery".into()));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// What [`ensure_topic_with`] may do about a missing topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicOptions {
    /// Create a missing topic (default). Off for clusters where topics are
    /// created ahead (by an operator, a GitOps tool): a missing topic is
    /// then an error naming it.
    pub create: bool,
}

impl Default for TopicOptions {
    fn default() -> Self {
        TopicOptions { create: true }
    }
}

impl TopicOptions {
    /// Topics are never created: they must exist.
    pub fn no_create() -> TopicOptions {
        TopicOptions { create: false }
    }
}

/// [`ensure_topic_with`] with the default options (create when missing).
pub fn ensure_topic(connection: impl Into<Connection>, topic: &str) -> Result<()> {
    ensure_topic_with(connection, topic, TopicOptions::default())
}

/// Make sure the compacted `topic` exists: an existing topic whose
/// `cleanup.policy` is not `compact` is refused (read by DescribeConfigs; a
/// broker that does not answer it, or a principal not allowed to ask, only
/// gets a warning); a missing one is created, when `options` allow it, with
/// one partition, `cleanup.policy=compact`, `min.compaction.lag.ms` one
/// hour, `segment.ms` [`SEGMENT_MS`] and the broker's default replication
/// factor.
pub fn ensure_topic_with(
    connection: impl Into<Connection>,
    topic: &str,
    options: TopicOptions,
) -> Result<()> {
    let connection = connection.into();
    if tokio::runtime::Handle::try_current().is_ok() {
        // called from async code (an instance starting its status tail):
        // the admin requests below block on a runtime of their own, which
        // tokio refuses inside another one; block a thread of their own
        return std::thread::scope(|s| {
            s.spawn(|| ensure_topic_with(connection, topic, options))
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p))
        });
    }
    let admin: AdminClient<DefaultClientContext> = client(&connection).create()?;
    let probe: BaseConsumer<ConnectErrors> =
        client(&connection).create_with_context(ConnectErrors::default())?;
    let exists = |c: &BaseConsumer<ConnectErrors>| {
        c.fetch_metadata(Some(topic), REQUEST_TIMEOUT)
            .ok()
            .and_then(|m| {
                m.topics()
                    .first()
                    .map(|t| t.error().is_none() && !t.partitions().is_empty())
            })
            .unwrap_or(false)
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    if exists(&probe) {
        return check_compacted(&rt, &admin, topic);
    }
    // a client that cannot connect (authentication, TLS) says why at once;
    // its errors are events, delivered by a poll
    for _ in 0..5 {
        let _ = probe.poll(Duration::from_millis(20));
    }
    if let Some(reason) = probe.context().fatal() {
        return Err(ControlError::Topic(format!(
            "cannot connect to {} to read topic `{topic}`: {reason}",
            connection.bootstrap()
        )));
    }
    if !options.create {
        return Err(ControlError::MissingTopic(topic.to_string()));
    }
    // -1: the broker's default.replication.factor (KIP-464). Compaction
    // never touches the active segment, which by the broker's defaults rolls
    // at 1 GiB or after 7 days: the status topic (a record per instance and
    // heartbeat) would hold up to 1 GiB of statuses that every reader reads
    // from the beginning. A segment rolls after SEGMENT_MS instead.
    let segment_ms = SEGMENT_MS.as_millis().to_string();
    let new = NewTopic::new(topic, 1, TopicReplication::Fixed(-1))
        .set("cleanup.policy", "compact")
        .set("min.compaction.lag.ms", "3600000")
        .set("segment.ms", &segment_ms);
    let opts = AdminOptions::new().request_timeout(Some(REQUEST_TIMEOUT));
    let res = rt.block_on(admin.create_topics([&new], &opts))?;
    for r in res {
        if let Err((t, code)) = r {
            if code != rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists {
                return Err(ControlError::Topic(format!(
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
    check_compacted(&rt, &admin, topic)
}

/// A client context that keeps the errors of connecting that no retry
/// mends: failed authentication (SASL) and failed TLS handshakes (an
/// untrusted certificate, a wrong host name). librdkafka reports them only
/// to the error callback, and a request then just times out.
#[derive(Default)]
pub struct ConnectErrors {
    last: Mutex<Option<String>>,
}

impl ConnectErrors {
    /// The last authentication or TLS error, if any.
    pub fn fatal(&self) -> Option<String> {
        self.last.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl rdkafka::ClientContext for ConnectErrors {
    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        use rdkafka::types::RDKafkaErrorCode as Code;
        let code = error.rdkafka_error_code();
        let lower = reason.to_ascii_lowercase();
        if matches!(code, Some(Code::Authentication | Code::SSL))
            || lower.contains("sasl")
            || lower.contains("ssl")
        {
            // librdkafka's reasons name the broker and the mechanism, never a secret
            *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Some(reason.to_string());
        }
        tracing::warn!(error = %error, reason, "kafka client error");
    }
}

impl rdkafka::consumer::ConsumerContext for ConnectErrors {}

/// Refuse `topic` unless its `cleanup.policy` is `compact` (a policy with
/// `delete` loses the states of apps not written for the retention time).
fn check_compacted(
    rt: &tokio::runtime::Runtime,
    admin: &AdminClient<DefaultClientContext>,
    topic: &str,
) -> Result<()> {
    // A broker that does not answer DescribeConfigs (librdkafka's mock
    // cluster never does) is asked once per process, for 2 s: the check is
    // a guard, not worth a 10 s wait per topic.
    static UNANSWERED: AtomicBool = AtomicBool::new(false);
    if UNANSWERED.load(Ordering::Relaxed) {
        tracing::debug!(%topic, "DescribeConfigs unanswered before: cleanup.policy not checked");
        return Ok(());
    }
    let opts = AdminOptions::new().request_timeout(Some(Duration::from_secs(2)));
    let described = rt.block_on(admin.describe_configs([&ResourceSpecifier::Topic(topic)], &opts));
    if described.is_err() {
        UNANSWERED.store(true, Ordering::Relaxed);
    }
    let policy = match described {
        Ok(results) => match results.into_iter().next() {
            Some(Ok(resource)) => resource.get("cleanup.policy").and_then(|e| e.value.clone()),
            Some(Err(code)) => {
                tracing::warn!(%topic, error = %code, "cannot read the topic's configuration (DescribeConfigs); its cleanup.policy is not checked");
                return Ok(());
            }
            None => None,
        },
        Err(e) => {
            tracing::warn!(%topic, error = %e, "cannot read the topic's configuration (DescribeConfigs); its cleanup.policy is not checked");
            return Ok(());
        }
    };
    match policy {
        Some(p) if is_compact_only(&p) => Ok(()),
        Some(p) => Err(ControlError::Topic(format!(
            "topic `{topic}` has cleanup.policy={p}; the control plane needs \
             cleanup.policy=compact (the state of an app is the last record of its key, \
             kept for as long as the topic lives): alter the topic's cleanup.policy to \
             compact or name another topic"
        ))),
        None => Ok(()),
    }
}

/// Whether a `cleanup.policy` value is `compact` alone.
fn is_compact_only(policy: &str) -> bool {
    let mut parts = policy.split(',').map(str::trim).filter(|p| !p.is_empty());
    parts
        .next()
        .is_some_and(|p| p.eq_ignore_ascii_case("compact"))
        && parts.all(|p| p.eq_ignore_ascii_case("compact"))
}

/// Read the committed records of partition 0 of `topic` from the
/// beginning to its end (the last stable offset as of the call), giving each
/// record (key, payload) to `f`.
pub fn read_to_end(
    connection: impl Into<Connection>,
    topic: &str,
    mut f: impl FnMut(Option<&[u8]>, Option<&[u8]>),
) -> Result<BaseConsumer> {
    let c = reader(connection, topic, CONTROL_FETCH_WAIT)?;
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
                next = next.max(m.offset() + 1);
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
        // transaction markers move the position without a record
        next = next.max(position(&c, topic).unwrap_or(0));
    }
    Ok(c)
}

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
        let reader = Arc::new(reader(&connection, topic, CONTROL_FETCH_WAIT)?);
        let tail: Arc<(Mutex<Tail>, Condvar)> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (t, st, top, c) = (
            tail.clone(),
            stop.clone(),
            topic.to_string(),
            reader.clone(),
        );
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
