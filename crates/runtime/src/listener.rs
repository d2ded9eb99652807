//! Listeners: defining one ([`ListenerBuilder`]) and steering a running one
//! ([`ListenerHandle`]).
//!
//! A listener is a name, a subscription (topics, a regex pattern, or a
//! standalone assignment of explicit partitions), a consumer configuration, a
//! handler with its deserializers, and policies: ordering and workers, commit,
//! retry and failure, decode errors, buffer bounds, rebalance hooks and the
//! shutdown deadline. [`ListenerBuilder::start`] creates the consumer on its
//! own poll thread (see [`crate::poller`]); handlers run on the tokio runtime
//! that called `start`.
//!
//! ```no_run
//! use switchyard_config::ConsumerConfig;
//! use switchyard_runtime::{Listener, deserializer::Utf8, record::Record, command::PauseTarget};
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let config = ConsumerConfig::new("127.0.0.1:9092").with_group("orders-app");
//! let listener = Listener::builder("orders")
//!     .config(config)
//!     .topics(["orders"])
//!     .handler(Utf8, Utf8, |r: Record<String, String>| async move {
//!         println!("{}: {}", r.offset, r.value);
//!         Ok(())
//!     })
//!     .start()?;
//! let ack = listener.pause(PauseTarget::Topic("orders".into())).await?; // drained and committed
//! listener.resume(PauseTarget::Topic("orders".into())).await?;
//! let report = listener.shutdown().await;
//! # Ok(()) }
//! ```

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::consumer::Consumer;
use rdkafka::{Offset, TopicPartitionList};
use switchyard_config::{CommitPolicy, ConsumerConfig, DecodeErrorPolicy, ListenerConfig};

use crate::coordinator::{Coordinator, Settings};
use crate::dead_letter::DeadLetters;
use crate::deserializer::Deserializer;
use crate::error::RuntimeError;
use crate::event::Event;
use crate::executor::{Executor, WorkerContext};
use crate::failure::{DeadLetterFallback, FailurePolicy, RetryPolicy};
pub use crate::handle::ListenerHandle;
use crate::handler::{HandlerResult, PerBatch, PerRecord, SharedProcessor, Typed};
use crate::hooks::{NoHooks, RebalanceHooks};
use crate::jobs_queue::Ordering;
use crate::log_ends::LogEnds;
use crate::metadata_watcher::{MetadataSource, MetadataWatcher};
use crate::poller::{BrokerMetadata, Poller};
use crate::rebalance::Kafka;
use crate::rebalance::RuntimeContext;
use crate::record::Record;
use crate::stats::ListenerStats;
pub use crate::subscription::Subscription;

/// Entry point: `Listener::builder(name)`.
pub struct Listener;

impl Listener {
    /// Start defining a listener called `name` (the id operators address).
    pub fn builder(name: impl Into<String>) -> ListenerBuilder {
        ListenerBuilder::new(name.into())
    }
}

/// Definition of a listener; see the [module docs](self).
#[derive(Clone)]
pub struct ListenerBuilder {
    name: String,
    config: ConsumerConfig,
    subscription: Option<Subscription>,
    group_id: Option<String>,
    commit: CommitPolicy,
    ordering: Ordering,
    workers: usize,
    retry: RetryPolicy,
    failure: FailurePolicy,
    decode: DecodeErrorPolicy,
    dead_letter_topic: Option<String>,
    dead_letter_retry: RetryPolicy,
    dead_letter_topic_creation: bool,
    dead_letter_fallback: DeadLetterFallback,
    hooks: Arc<dyn RebalanceHooks>,
    shutdown_timeout: Duration,
    revoke_timeout: Duration,
    pause_timeout: Duration,
    commit_interval: Duration,
    max_buffered_records: usize,
    max_buffered_bytes: usize,
    metadata_refresh: Duration,
    metadata_source: Option<Arc<dyn MetadataSource>>,
    processor: Option<SharedProcessor>,
    detached: bool,
}

impl ListenerBuilder {
    fn new(name: String) -> Self {
        ListenerBuilder {
            name,
            config: ConsumerConfig::default(),
            subscription: None,
            group_id: None,
            commit: CommitPolicy::default(),
            ordering: Ordering::Partition,
            workers: 1,
            retry: RetryPolicy::default(),
            failure: FailurePolicy::default(),
            decode: DecodeErrorPolicy::default(),
            dead_letter_topic: None,
            dead_letter_retry: RetryPolicy::dead_letter(),
            dead_letter_topic_creation: true,
            dead_letter_fallback: DeadLetterFallback::default(),
            hooks: Arc::new(NoHooks),
            shutdown_timeout: Duration::from_secs(10),
            revoke_timeout: Duration::from_secs(10),
            pause_timeout: Duration::from_secs(10),
            commit_interval: Duration::from_millis(200),
            max_buffered_records: 10_000,
            max_buffered_bytes: 64 << 20,
            metadata_refresh: Duration::from_secs(5),
            metadata_source: None,
            processor: None,
            detached: false,
        }
    }

    /// A builder from the `[[listener]]` entry of a TOML file and the `[consumer]` section.
    pub fn from_config(
        listener: &ListenerConfig,
        consumer: &ConsumerConfig,
    ) -> Result<Self, RuntimeError> {
        listener.validate()?;
        let mut b = Listener::builder(&listener.name)
            .config(consumer.clone())
            .commit(listener.commit)
            .on_decode_error(listener.on_decode_error)
            .shutdown_timeout(Duration::from_millis(listener.shutdown_timeout_ms));
        b.group_id = listener.group_id.clone();
        b.dead_letter_topic = listener.dead_letter_topic.clone();
        b.dead_letter_topic_creation = listener.create_dead_letter_topic;
        if let Some(n) = listener.max_buffered_records {
            b.max_buffered_records = n;
        }
        if let Some(n) = listener.max_buffered_bytes {
            b.max_buffered_bytes = n;
        }
        b.subscription = Some(if let Some(p) = &listener.pattern {
            Subscription::Pattern(p.clone())
        } else if !listener.assign.is_empty() {
            Subscription::Assign(
                listener
                    .assign
                    .iter()
                    .map(|a| (a.topic.clone(), a.partitions.clone()))
                    .collect(),
            )
        } else {
            Subscription::Topics(listener.topics.clone())
        });
        Ok(b)
    }

    /// The consumer configuration (bootstrap servers, group, timeouts, ...).
    pub fn config(mut self, config: ConsumerConfig) -> Self {
        self.config = config;
        self
    }
    /// Subscribe to these topics.
    pub fn topics<I: IntoIterator<Item = S>, S: Into<String>>(mut self, topics: I) -> Self {
        self.subscription = Some(Subscription::Topics(
            topics.into_iter().map(Into::into).collect(),
        ));
        self
    }
    /// Subscribe to every topic matching `regex` (e.g. `"test.*"`).
    pub fn pattern(mut self, regex: impl Into<String>) -> Self {
        self.subscription = Some(Subscription::Pattern(regex.into()));
        self
    }
    /// Standalone assignment of `partitions` of `topic` (empty: all, including later ones).
    pub fn assign(
        mut self,
        topic: impl Into<String>,
        partitions: impl IntoIterator<Item = i32>,
    ) -> Self {
        let entry = (topic.into(), partitions.into_iter().collect());
        match &mut self.subscription {
            Some(Subscription::Assign(v)) => v.push(entry),
            _ => self.subscription = Some(Subscription::Assign(vec![entry])),
        }
        self
    }
    /// Group id of this listener (overrides the configuration's).
    pub fn group_id(mut self, group: impl Into<String>) -> Self {
        self.group_id = Some(group.into());
        self
    }
    /// Commit policy (default: async with the sequence guard).
    pub fn commit(mut self, policy: CommitPolicy) -> Self {
        self.commit = policy;
        self
    }
    /// Ordering mode of the worker pool (default: partition).
    pub fn ordering(mut self, ordering: Ordering) -> Self {
        self.ordering = ordering;
        self
    }
    /// Maximum handler calls in progress at once (default 1: sequential).
    /// Retries and dead-letter writes of a record count as its call.
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = workers.max(1);
        self
    }
    /// Retry policy for failing handlers.
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }
    /// What happens after the last failed attempt.
    pub fn on_failure(mut self, policy: FailurePolicy) -> Self {
        self.failure = policy;
        self
    }
    /// What happens with an undecodable record.
    pub fn on_decode_error(mut self, policy: DecodeErrorPolicy) -> Self {
        self.decode = policy;
        self
    }
    /// Dead-letter topic (default `<topic>.DLT`).
    pub fn dead_letter_topic(mut self, topic: impl Into<String>) -> Self {
        self.dead_letter_topic = Some(topic.into());
        self
    }
    /// Whether a missing dead-letter topic is created before the first
    /// write to it (default `true`: the broker's default partitions and
    /// replication factor). Off where topics are created ahead.
    pub fn dead_letter_topic_creation(mut self, create: bool) -> Self {
        self.dead_letter_topic_creation = create;
        self
    }
    /// Attempts and backoff of a dead-letter write (default
    /// [`RetryPolicy::dead_letter`]: 3 attempts, 200 ms doubling, at most 2 s).
    /// The record keeps its worker meanwhile.
    pub fn dead_letter_retry(mut self, retry: RetryPolicy) -> Self {
        self.dead_letter_retry = retry;
        self
    }
    /// What happens when a dead-letter write failed on every attempt
    /// (default: the partition stops at the record, with the reason).
    pub fn on_dead_letter_failure(mut self, fallback: DeadLetterFallback) -> Self {
        self.dead_letter_fallback = fallback;
        self
    }
    /// Rebalance hooks.
    pub fn hooks(mut self, hooks: impl RebalanceHooks) -> Self {
        self.hooks = Arc::new(hooks);
        self
    }
    /// Deadline of [`ListenerHandle::shutdown`] (default 10 s).
    pub fn shutdown_timeout(mut self, d: Duration) -> Self {
        self.shutdown_timeout = d;
        self
    }
    /// How long a revoke waits for in-flight records (default 10 s); handler
    /// calls still running then are abandoned (aborted, not committed).
    pub fn revoke_timeout(mut self, d: Duration) -> Self {
        self.revoke_timeout = d;
        self
    }
    /// How long a pause waits for the in-flight records of its partitions
    /// (default 10 s); handler calls still running then are abandoned
    /// (aborted, not committed, delivered again after the resume) and the
    /// pause completes.
    pub fn pause_timeout(mut self, d: Duration) -> Self {
        self.pause_timeout = d;
        self
    }
    /// Interval of async commits (default 200 ms).
    pub fn commit_interval(mut self, d: Duration) -> Self {
        self.commit_interval = d;
        self
    }
    /// Bounds of the buffer (default 10,000 records and 64 MiB): records
    /// waiting for a worker or in flight, in count; records waiting, in bytes.
    /// At the bound the listener stops taking records of the partitions that
    /// feed it, and goes on below half.
    pub fn buffer(mut self, max_records: usize, max_bytes: usize) -> Self {
        self.max_buffered_records = max_records.max(1);
        self.max_buffered_bytes = max_bytes.max(1);
        self
    }
    /// How often patterns and standalone assignments look for new topics and partitions (default 5 s).
    pub fn metadata_refresh(mut self, d: Duration) -> Self {
        self.metadata_refresh = d;
        self
    }

    /// Where a standalone listener reads partition counts (default: the
    /// broker's metadata).
    pub fn metadata_source(mut self, source: impl MetadataSource + 'static) -> Self {
        self.metadata_source = Some(Arc::new(source));
        self
    }

    /// The per-record handler, with key and value deserializers.
    pub fn handler<KD, VD, F, Fut>(mut self, key: KD, value: VD, f: F) -> Self
    where
        KD: Deserializer,
        VD: Deserializer,
        F: Fn(Record<KD::Output, VD::Output>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HandlerResult> + Send + 'static,
    {
        self.processor = Some(Arc::new(Typed {
            key,
            value,
            handler: PerRecord(f),
        }));
        self
    }

    /// The per-batch handler (batches of one partition, at most `max.poll.records`).
    pub fn batch_handler<KD, VD, F, Fut>(mut self, key: KD, value: VD, f: F) -> Self
    where
        KD: Deserializer,
        VD: Deserializer,
        F: Fn(Vec<Record<KD::Output, VD::Output>>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HandlerResult> + Send + 'static,
    {
        self.processor = Some(Arc::new(Typed {
            key,
            value,
            handler: PerBatch(f),
        }));
        self
    }

    /// Start outside the consumer group: nothing is assigned until
    /// [`ListenerHandle::join_group`] (a control-plane agent joins once it
    /// knows the desired state; the shared-group deployment strategy keeps a
    /// standby slot out of the group). Not for standalone assignments.
    pub fn detached(mut self, detached: bool) -> Self {
        self.detached = detached;
        self
    }

    /// The listener's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn renamed(mut self, name: String) -> Self {
        self.name = name;
        self
    }

    fn fail(&self, reason: impl Into<String>) -> RuntimeError {
        RuntimeError::Listener {
            listener: self.name.clone(),
            reason: reason.into(),
        }
    }

    /// Create the consumer, subscribe or assign, and start the poll thread.
    /// Must be called within a tokio runtime (handlers run on it).
    pub fn start(self) -> Result<ListenerHandle, RuntimeError> {
        if self.name.trim().is_empty() {
            return Err(self.fail("the listener name is blank"));
        }
        let rt = tokio::runtime::Handle::try_current()
            .map_err(|_| self.fail("start() must be called within a tokio runtime"))?;
        let processor = self
            .processor
            .clone()
            .ok_or_else(|| self.fail("no handler was given"))?;
        let subscription = self
            .subscription
            .clone()
            .ok_or_else(|| self.fail("no topics, pattern or assignment was given"))?;
        let mut config = self.config.clone();
        if let Some(g) = &self.group_id {
            config.group_id = Some(g.clone());
        }
        match &subscription {
            Subscription::Topics(t) if t.is_empty() => return Err(self.fail("empty topic list")),
            Subscription::Pattern(p) => {
                regex::Regex::new(p)
                    .map_err(|e| self.fail(format!("invalid pattern `{p}`: {e}")))?;
            }
            Subscription::Assign(_) if self.detached => {
                return Err(
                    self.fail("a standalone assignment cannot start detached (it has no group)")
                )
            }
            Subscription::Assign(_) if config.group_id.is_none() => {
                // commits of a standalone listener need a group id, which is never joined
                config.group_id = Some(format!("switchyard-standalone-{}", self.name));
            }
            _ => {}
        }
        if config.group_id.is_none() {
            return Err(self.fail("a group id is required (config group_id or .group_id())"));
        }
        config.enable_auto_commit = self.commit == CommitPolicy::Auto;
        let mut client = config.to_client_config()?;
        client.set(
            "topic.metadata.refresh.interval.ms",
            self.metadata_refresh.as_millis().to_string(),
        );
        // librdkafka's own prefetch (per partition: each has its own fetch
        // queue, see fetch_queues.rs) is bounded like the runtime's buffer,
        // and when it backs off because that bound was reached it retries
        // soon (its default, 1 s, stalls a listener after backpressure).
        // Each is a default only: the consumer configuration wins.
        for (key, value) in [
            (
                "queued.min.messages",
                self.max_buffered_records.max(1000).to_string(),
            ),
            ("fetch.queue.backoff.ms", "20".to_string()),
            // A pause drops librdkafka's prefetched records and the resume
            // seeks back to them; that seek waits for the fetch in flight,
            // which at the log end is a long poll of up to fetch.wait.max.ms
            // (500 ms by default): bound the stall.
            ("fetch.wait.max.ms", "100".to_string()),
        ] {
            if client.get(key).is_none() {
                client.set(key, value);
            }
        }

        let log_ends = Arc::new(LogEnds::new(&client));
        let (tx, rx) = crossbeam_channel::unbounded();
        let stats = Arc::new(ListenerStats::default());
        let dead_letters = match (self.failure, self.decode) {
            (FailurePolicy::DeadLetter, _) | (_, DecodeErrorPolicy::DeadLetter) => Some(Arc::new(
                DeadLetters::with_retry(
                    config.connection(),
                    self.dead_letter_topic.clone(),
                    self.dead_letter_retry,
                )?
                .with_topic_creation(self.dead_letter_topic_creation),
            )),
            _ => None,
        };
        let executor = Executor::new(
            rt,
            WorkerContext {
                listener: self.name.clone(),
                processor,
                retry: self.retry,
                failure: self.failure,
                on_decode_error: self.decode,
                dead_letters,
                dead_letter_fallback: self.dead_letter_fallback,
                events: tx.clone(),
                stats: stats.clone(),
                calls: tokio::sync::Semaphore::new(self.workers.max(1)),
            },
        );
        let settings = Settings {
            ordering: self.ordering,
            workers: self.workers,
            max_poll_records: config.max_poll_records,
            max_buffered_records: self.max_buffered_records,
            max_buffered_bytes: self.max_buffered_bytes,
            commit: self.commit,
            commit_interval: self.commit_interval,
            api_timeout: Duration::from_millis(config.default_api_timeout_ms.into()),
            revoke_timeout: self.revoke_timeout,
            pause_timeout: self.pause_timeout,
            group_protocol: config.group_protocol,
        };
        let coord = Coordinator::new(
            self.name.clone(),
            settings,
            executor,
            stats.clone(),
            self.hooks.clone(),
            rx.clone(),
        );
        let problems = Arc::new(crate::client_problem::ClientProblems::new(&self.name));
        let ctx = RuntimeContext {
            coord: Mutex::new(coord),
            problems: problems.clone(),
        };
        let mut kafka: Kafka = client.create_with_context(ctx)?;
        let wake = Arc::new(AtomicBool::new(false));
        let wake_up: crate::fetch_queues::Wake = {
            let (wake, tx) = (wake.clone(), tx.clone());
            Arc::new(move || {
                if !wake.swap(true, AtomicOrdering::SeqCst) {
                    let _ = tx.send(Event::Wake);
                }
            })
        };
        {
            let wake_up = wake_up.clone();
            kafka.set_nonempty_callback(move || wake_up());
        }
        let watcher = self.subscribe(&kafka, &subscription, &config)?;
        let poller = Poller {
            kafka: Arc::new(kafka),
            queues: crate::fetch_queues::FetchQueues::new(wake_up),
            events: rx,
            wake,
            max_poll_records: config.max_poll_records,
            watcher: watcher.map(|w| (w, self.metadata_refresh, self.metadata_source.clone())),
        };
        let thread = std::thread::Builder::new()
            .name(format!("sy-poll-{}", self.name))
            .spawn(move || poller.run())
            .map_err(|e| self.fail(format!("cannot start the poll thread: {e}")))?;
        tracing::info!(listener = %self.name, ?subscription, group = ?config.group_id, "listener started");
        Ok(ListenerHandle {
            group: config.group_id.clone(),
            name: self.name,
            tx,
            stats,
            shutdown_timeout: self.shutdown_timeout,
            thread: Some(thread),
            log_ends,
            subscription,
            problems,
        })
    }

    fn subscribe(
        &self,
        kafka: &Kafka,
        subscription: &Subscription,
        config: &ConsumerConfig,
    ) -> Result<Option<MetadataWatcher>, RuntimeError> {
        match subscription {
            Subscription::Topics(_) | Subscription::Pattern(_) => {
                let topics = match subscription {
                    Subscription::Pattern(p) if !p.starts_with('^') => vec![format!("^{p}")],
                    Subscription::Pattern(p) => vec![p.clone()],
                    Subscription::Topics(t) => t.clone(),
                    Subscription::Assign(_) => unreachable!(),
                };
                if !self.detached {
                    let t: Vec<&str> = topics.iter().map(String::as_str).collect();
                    kafka.subscribe(&t)?;
                }
                let mut c = kafka.context().lock();
                c.membership.subscription = Some(topics);
                c.membership.joined = !self.detached;
                Ok(None)
            }
            Subscription::Assign(entries) => {
                let timeout = Duration::from_millis(config.default_api_timeout_ms.into());
                let mut tpl = TopicPartitionList::new();
                let mut watched = Vec::new();
                let mut assigned = Vec::new();
                for (topic, parts) in entries {
                    let parts = if parts.is_empty() {
                        let broker = BrokerMetadata(kafka, timeout);
                        let source = self.metadata_source.as_deref().unwrap_or(&broker);
                        let count = source.partition_count(topic).unwrap_or(0);
                        if count == 0 {
                            return Err(self.fail(format!(
                                "topic `{topic}` has no partitions (does it exist?)"
                            )));
                        }
                        watched.push((topic.clone(), count));
                        (0..count).collect()
                    } else {
                        parts.clone()
                    };
                    for p in parts {
                        tpl.add_partition_offset(topic, p, Offset::Stored)?;
                        assigned.push((topic.clone(), p));
                    }
                }
                kafka.assign(&tpl)?;
                kafka.context().lock().on_assign(kafka, &assigned);
                Ok((!watched.is_empty()).then(|| MetadataWatcher::new(watched)))
            }
        }
    }
}
