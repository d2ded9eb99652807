//! The control plane's compacted topics (the control topic, the status
//! topic): [`ensure_topic_with`] makes sure one exists and is compacted,
//! creating a missing one when [`TopicOptions`] allow it, and says at once
//! why a client cannot connect ([`ConnectErrors`]: authentication, TLS)
//! instead of timing out.
//!
//! ```no_run
//! use switchyard_control::compacted_topic::{ensure_topic_with, TopicOptions};
//!
//! // topics made ahead by an operator: a missing one is an error naming it
//! ensure_topic_with("127.0.0.1:9092", "switchyard.status", TopicOptions::no_create())?;
//! # Ok::<(), switchyard_control::error::ControlError>(())
//! ```

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use switchyard_config::Connection;

use crate::error::{ControlError, Result};
use crate::kafka_clients::{client, REQUEST_TIMEOUT};

/// `segment.ms` of the control and status topics the control plane
/// creates: a segment is compacted once it is rolled and its records are
/// older than `min.compaction.lag.ms` (1 hour).
pub const SEGMENT_MS: Duration = Duration::from_secs(600);

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
