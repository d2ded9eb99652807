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
//! With `--app`, a control-plane agent runs beside the listener (named
//! `probe`): desired state from `--control-topic` (or `--redis`, or
//! `--desired-file`), status to `--status-topic`, and with `--http` the admin
//! API, announced as `HTTP 127.0.0.1:PORT`.

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use switchyard_config::{AssignmentStrategy, CommitPolicy, ConsumerConfig, GroupProtocol};
use switchyard_runtime::deserializer::Utf8;
use switchyard_runtime::hooks::RebalanceHooks;
use switchyard_runtime::record::Record;
use switchyard_runtime::{Listener, Ordering};
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
        let mut config = ConsumerConfig::new(&a.bootstrap)
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
        let log = Arc::new(Mutex::new(LogWriter::open(&a.log)?));
        let instance = Arc::new(a.instance.clone());
        let delay = a.delay_ms;
        let listener = Listener::builder("probe")
            .config(config)
            .topics(a.topics.clone())
            .commit(parse_commit(&a.commit)?)
            .ordering(ordering)
            .workers(a.workers)
            .hooks(PrintHooks)
            // with a control plane, the agent joins the group once it has
            // applied the desired state (a slot may have to stay out)
            .detached(a.app.is_some())
            .shutdown_timeout(Duration::from_millis(a.shutdown_timeout_ms))
            .handler(Utf8, Utf8, move |r: Record<String, String>| {
                let log = log.clone();
                let instance = instance.clone();
                async move {
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
            })
            .start()?;
        let mut listener = Some(listener);
        let agent = match &a.app {
            Some(app) => Some(start_agent(&a, app, listener.take().expect("started")).await?),
            None => None,
        };
        say("STARTED");
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        let listener = match agent {
            Some(agent) => stop_agent(agent).await?,
            None => listener.take().expect("kept"),
        };
        let report = listener.shutdown().await;
        say(&format!("SHUTDOWN {}", serde_json::to_string(&report)?));
        Ok(())
    })
}

/// Start the control-plane agent (and the HTTP API) for `listener`. The
/// desired state is read and its pauses sent to the listener first, before
/// its first assignment can deliver anything.
async fn start_agent(
    a: &Args,
    app: &str,
    listener: switchyard_runtime::ListenerHandle,
) -> anyhow::Result<switchyard_control::Agent> {
    use switchyard_control::{file_source::FileSource, kafka_store::KafkaStore};
    use switchyard_control::{redis_store::RedisStore, status_topic, SharedStore};
    let (bootstrap, app_name) = (a.bootstrap.clone(), app.to_string());
    let (redis, file, control) = (
        a.redis.clone(),
        a.desired_file.clone(),
        a.control_topic.clone(),
    );
    let status_topic = a.status_topic.clone();
    let (store, publisher, initial) = tokio::task::spawn_blocking(move || {
        let store: SharedStore = match (redis, file) {
            (Some(url), _) => RedisStore::new(&url)?,
            (None, Some(path)) => FileSource::new(&path, &app_name),
            (None, None) => KafkaStore::new(&bootstrap, &control)?,
        };
        let publisher = status_topic
            .map(|t| status_topic::StatusPublisher::new(&bootstrap, &t))
            .transpose()?;
        let initial = store.read(&app_name)?;
        anyhow::Ok((store, publisher, initial))
    })
    .await??;
    let cfg = switchyard_control::AgentConfig {
        app: app.into(),
        instance: a.instance.clone(),
        slot: a.slot.clone(),
        heartbeat: Duration::from_millis(a.status_interval_ms),
    };
    let agent = start_in_slot(cfg, listener, store, publisher, &initial).await?;
    if let Some(addr) = a.http {
        let fleet = match &a.status_topic {
            Some(t) => Some(switchyard_control::status_topic::StatusTail::start(
                &a.bootstrap,
                t,
            )?),
            None => None,
        };
        let state = switchyard_control::http::HttpState {
            agent: agent.clone(),
            token: a.token.clone(),
            fleet,
        };
        let bound = switchyard_control::http::serve(addr, state).await?;
        say(&format!("HTTP {bound}"));
    }
    Ok(agent)
}

/// Start the agent `cfg` for `listener`, after pausing what the desired
/// state `initial` wants paused in `cfg.slot` (partitions owned by another
/// slot, the operator's pauses), so that a standby never processes a record.
async fn start_in_slot(
    cfg: switchyard_control::AgentConfig,
    listener: switchyard_runtime::ListenerHandle,
    store: switchyard_control::SharedStore,
    publisher: Option<switchyard_control::status_topic::StatusPublisher>,
    initial: &switchyard_control::DesiredState,
) -> anyhow::Result<switchyard_control::Agent> {
    let now = switchyard_control::model::now_ms();
    for t in switchyard_control::targets::wanted_in_slot(
        Some(initial),
        &Default::default(),
        listener.name(),
        &cfg.slot,
        now,
    ) {
        listener.pause(t).await?;
    }
    Ok(switchyard_control::Agent::start(cfg, vec![Arc::new(listener)], store, publisher).await?)
}

/// Stop the agent and take the listener back for its shutdown.
async fn stop_agent(
    agent: switchyard_control::Agent,
) -> anyhow::Result<switchyard_runtime::ListenerHandle> {
    let mut listeners = agent.stop().await;
    let mut l = listeners
        .pop()
        .ok_or_else(|| anyhow::anyhow!("no listener"))?;
    for _ in 0..100 {
        match Arc::try_unwrap(l) {
            Ok(l) => return Ok(l),
            Err(back) => l = back,
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    anyhow::bail!("the listener is still in use by the admin API")
}

/// A cheap random number in 0..n (no rand dependency needed for test latency).
fn rand_below(n: u64) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(n);
    h.finish() % n
}
