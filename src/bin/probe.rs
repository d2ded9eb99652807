//! `switchyard-probe`: a listener that appends every processed record to a
//! log file and prints its life on stdout, one event per line. The
//! end-to-end tests run it as a separate consumer process (to kill it with
//! SIGKILL, restart it, and check the invariants on the logs). Test-only: a
//! binary of the `switchyard` package built only with the `test-probe`
//! feature (it writes the processed log of `switchyard-testkit`), so the
//! shipped `switchyard` binary does not depend on the testkit
//! (docs/decisions.md).
//!
//! stdout lines: `STARTED`, `ASSIGNED t-0,t-1`, `REVOKED ...`, `LOST ...`,
//! `SHUTDOWN {json report}`.
//!
//! The consumer instance is a [`switchyard_instance::Instance`] with one
//! listener (named `probe`). With `--app`, a control-plane agent runs beside
//! it: desired state from `--control-topic` (or `--redis`, or
//! `--desired-file`), status to `--status-topic`. With `--http`, the admin
//! API (metrics and health only without `--app`), announced as
//! `HTTP 127.0.0.1:PORT`. SIGTERM or ctrl-c stops the instance in order.

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use switchyard_config::{
    AssignmentStrategy, CommitPolicy, Connection, ConsumerConfig, GroupProtocol,
};
use switchyard_instance::{ControlStore, Instance};
use switchyard_runtime::deserializer::Utf8;
use switchyard_runtime::hooks::RebalanceHooks;
use switchyard_runtime::record::Record;
use switchyard_runtime::{FailurePolicy, Listener, Ordering, RetryPolicy};
use switchyard_testkit::LogWriter;

/// Records are allocated on the poll thread and freed on worker threads: the
/// same allocator as the `switchyard` binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A listener that logs every record it processes (the end-to-end tests'
/// consumer process).
#[derive(clap::Parser)]
#[command(name = "switchyard-probe", about, long_about = None)]
struct Args {
    #[arg(long)]
    bootstrap: String,
    /// A librdkafka client property, KEY=VALUE (repeatable), as `switchyard`
    /// takes it.
    #[arg(short = 'X', value_name = "KEY=VALUE")]
    properties: Vec<String>,
    /// A Java client properties file, as `switchyard` takes it.
    #[arg(long, value_name = "FILE")]
    command_config: Option<PathBuf>,
    #[arg(long)]
    group: String,
    #[arg(long, value_delimiter = ',')]
    topics: Vec<String>,
    /// Processed log (appended).
    #[arg(long)]
    log: PathBuf,
    /// Name written in the log.
    #[arg(long, default_value = "probe")]
    instance: String,
    /// Static membership (group.instance.id).
    #[arg(long)]
    instance_id: Option<String>,
    /// classic | consumer (KIP-848: the broker assigns and owns the session,
    /// so `--strategy`, `--session-timeout-ms` and `--heartbeat-ms` are
    /// refused with it)
    #[arg(long, default_value = "classic")]
    group_protocol: String,
    /// Broker-side assignor under `--group-protocol consumer` (uniform | range).
    #[arg(long)]
    remote_assignor: Option<String>,
    /// range | roundrobin | cooperative-sticky (classic protocol; default range)
    #[arg(long)]
    strategy: Option<String>,
    /// auto | sync | async | every-N
    #[arg(long, default_value = "async")]
    commit: String,
    /// partition | key | unordered
    #[arg(long, default_value = "partition")]
    ordering: String,
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// Handler latency: uniformly random in 0..=delay_ms.
    #[arg(long, default_value_t = 0)]
    delay_ms: u64,
    /// Classic protocol only; default 6000.
    #[arg(long)]
    session_timeout_ms: Option<u32>,
    /// Classic protocol only; default 1000.
    #[arg(long)]
    heartbeat_ms: Option<u32>,
    #[arg(long, default_value_t = 10000)]
    shutdown_timeout_ms: u64,
    /// Most records per job (max.poll.records).
    #[arg(long, default_value_t = 500)]
    max_poll_records: usize,
    /// Application: starts the control-plane agent.
    #[arg(long)]
    app: Option<String>,
    /// Slot of this instance.
    #[arg(long, default_value = "blue")]
    slot: String,
    /// Control topic (desired state).
    #[arg(long, default_value = "switchyard.control")]
    control_topic: String,
    /// Status topic.
    #[arg(long)]
    status_topic: Option<String>,
    /// Desired state in Redis at this URL instead of the control topic.
    #[arg(long)]
    redis: Option<String>,
    /// Desired pauses from this watched file instead of the control topic.
    #[arg(long)]
    desired_file: Option<PathBuf>,
    /// Admin HTTP API address (e.g. 127.0.0.1:0).
    #[arg(long)]
    http: Option<std::net::SocketAddr>,
    /// Bearer token for HTTP mutations.
    #[arg(long)]
    token: Option<String>,
    /// Separate-groups deployment: the group id is `<group>-<slot>`.
    #[arg(long)]
    group_per_slot: bool,
    /// Status heartbeat interval of the control-plane agent.
    #[arg(long, default_value_t = 1000)]
    status_interval_ms: u64,
    /// `PARTITION@OFFSET`: the handler fails on that record every time, and
    /// the failure policy stops the partition there (one attempt).
    #[arg(long)]
    stop_at: Option<String>,
}

/// `--stop-at PARTITION@OFFSET`.
fn parse_stop_at(s: Option<&str>) -> anyhow::Result<Option<(i32, i64)>> {
    let Some(s) = s else { return Ok(None) };
    let (p, o) = s
        .split_once('@')
        .ok_or_else(|| anyhow::anyhow!("--stop-at wants PARTITION@OFFSET, not {s}"))?;
    Ok(Some((p.parse()?, o.parse()?)))
}

struct PrintHooks;
impl RebalanceHooks for PrintHooks {
    fn on_assigned(&self, p: &[(String, i32)]) {
        say(&format!("ASSIGNED {}", fmt(p)));
    }
    fn on_revoked(&self, p: &[(String, i32)]) {
        say(&format!("REVOKED {}", fmt(p)));
    }
    fn on_lost(&self, p: &[(String, i32)]) {
        say(&format!("LOST {}", fmt(p)));
    }
}

fn fmt(p: &[(String, i32)]) -> String {
    p.iter()
        .map(|(t, p)| format!("{t}-{p}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Default log filter: warnings, without rdkafka's "Failed to close consumer
/// queue on drop" error, which its Drop prints after every clean close.
const DEFAULT_LOG: &str = "warn,rdkafka::consumer::base_consumer=off";

fn main() {
    let args = <Args as clap::Parser>::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SWITCHYARD_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG)),
        )
        .with_writer(std::io::stderr)
        .init();
    if let Err(e) = run(args) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn parse_commit(s: &str) -> anyhow::Result<CommitPolicy> {
    Ok(match s {
        "auto" => CommitPolicy::Auto,
        "sync" => CommitPolicy::SyncPerBatch,
        "async" => CommitPolicy::Async,
        s => match s.strip_prefix("every-") {
            Some(n) => CommitPolicy::EveryN {
                records: n.parse()?,
            },
            None => anyhow::bail!("unknown commit policy `{s}`"),
        },
    })
}

fn run(a: Args) -> anyhow::Result<()> {
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async move {
        let protocol: GroupProtocol = a.group_protocol.parse()?;
        let ordering = match a.ordering.as_str() {
            "partition" => Ordering::Partition,
            "key" => Ordering::Key,
            "unordered" => Ordering::Unordered,
            s => anyhow::bail!("unknown ordering `{s}`"),
        };
        let group = if a.group_per_slot {
            format!("{}-{}", a.group, a.slot)
        } else {
            a.group.clone()
        };
        let mut connection = Connection::new(&a.bootstrap);
        if let Some(path) = &a.command_config {
            connection.apply_command_config(path)?;
        }
        connection.apply_overrides(&a.properties)?;
        let mut config = ConsumerConfig::new(&a.bootstrap)
            .with_connection(connection.clone())
            .with_group(&group)
            .with_group_protocol(protocol)
            .with_offset_reset(switchyard_config::OffsetReset::Earliest)
            .with_max_poll_records(a.max_poll_records);
        match protocol {
            GroupProtocol::Classic => {
                let strategy = match a.strategy.as_deref().unwrap_or("range") {
                    "range" => AssignmentStrategy::Range,
                    "roundrobin" => AssignmentStrategy::Roundrobin,
                    "cooperative-sticky" => AssignmentStrategy::CooperativeSticky,
                    s => anyhow::bail!("unknown strategy `{s}`"),
                };
                let session = a.session_timeout_ms.unwrap_or(6000);
                config = config
                    .with_strategy(strategy)
                    .with_session_timeout_ms(session)
                    .with_heartbeat_interval_ms(a.heartbeat_ms.unwrap_or(1000))
                    .with_max_poll_interval_ms(session.max(10_000));
            }
            GroupProtocol::Consumer => {
                anyhow::ensure!(
                    a.strategy.is_none() && a.session_timeout_ms.is_none() && a.heartbeat_ms.is_none(),
                    "--strategy, --session-timeout-ms and --heartbeat-ms are classic-protocol settings; under --group-protocol consumer the broker owns them"
                );
                config = config.with_max_poll_interval_ms(10_000);
            }
        }
        if let Some(assignor) = &a.remote_assignor {
            config = config.with_remote_assignor(assignor);
        }
        if let Some(id) = &a.instance_id {
            config = config.with_instance_id(id);
        }
        let stop_at = parse_stop_at(a.stop_at.as_deref())?;
        let log = Arc::new(Mutex::new(LogWriter::open(&a.log)?));
        let instance = Arc::new(a.instance.clone());
        let delay = a.delay_ms;
        let shutdown_timeout = Duration::from_millis(a.shutdown_timeout_ms);
        let listener = Listener::builder("probe")
            .config(config)
            .topics(a.topics.clone())
            .commit(parse_commit(&a.commit)?)
            .ordering(ordering)
            .workers(a.workers)
            .hooks(PrintHooks)
            .retry(RetryPolicy {
                max_attempts: if stop_at.is_some() { 1 } else { 3 },
                ..RetryPolicy::default()
            })
            .on_failure(if stop_at.is_some() {
                FailurePolicy::StopPartition
            } else {
                FailurePolicy::default()
            })
            .shutdown_timeout(shutdown_timeout)
            .handler(Utf8, Utf8, move |r: Record<String, String>| {
                let log = log.clone();
                let instance = instance.clone();
                async move {
                    if stop_at == Some((r.partition, r.offset)) {
                        return Err(format!("failing at {}@{} as told", r.partition, r.offset).into());
                    }
                    if delay > 0 {
                        let ms = rand_below(delay + 1);
                        tokio::time::sleep(Duration::from_millis(ms)).await;
                    }
                    log.lock().unwrap().record(
                        &instance,
                        &r.topic,
                        r.partition,
                        r.offset,
                        r.key.as_deref().unwrap_or(""),
                        &r.value,
                    )?;
                    Ok(())
                }
            });
        // with a control plane, the instance joins the group once the agent
        // has applied the desired state (a slot may have to stay out)
        let mut builder = Instance::builder(&a.instance)
            .connection(connection)
            .listener(listener)
            .shutdown_timeout(shutdown_timeout);
        if let Some(app) = &a.app {
            let store = match (&a.redis, &a.desired_file) {
                (Some(url), _) => ControlStore::redis(url),
                (None, Some(path)) => ControlStore::file(path),
                (None, None) => ControlStore::kafka(&a.control_topic),
            };
            builder = builder
                .control(app, &a.slot, store)
                .status_interval(Duration::from_millis(a.status_interval_ms));
            if let Some(t) = &a.status_topic {
                builder = builder.status_topic(t);
            }
            if let Some(t) = &a.token {
                builder = builder.token(t);
            }
        }
        if let Some(addr) = a.http {
            builder = builder.http(addr);
        }
        let instance = builder.start().await?;
        if let Some(bound) = instance.http_addr() {
            say(&format!("HTTP {bound}"));
        }
        say("STARTED");
        let mut summary = instance.run_until_signal().await?;
        let report = summary.listeners.remove("probe").unwrap_or_else(|| {
            switchyard_runtime::ShutdownReport {
                notes: summary.notes.clone(),
                ..Default::default()
            }
        });
        say(&format!("SHUTDOWN {}", serde_json::to_string(&report)?));
        match summary.failure {
            Some(f) => {
                say(&format!("FATAL {f}"));
                anyhow::bail!("stopped by a fatal error: {f}")
            }
            None => Ok(()),
        }
    })
}

/// A cheap random number in 0..n (no rand dependency needed for test latency).
fn rand_below(n: u64) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(n);
    h.finish() % n
}
