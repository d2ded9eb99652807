//! `switchyard probe`: a listener that appends every processed record to a
//! log file and prints its life on stdout, one event per line. The
//! end-to-end tests run it as a separate consumer process (to kill it with
//! SIGKILL, restart it, and check the invariants on the logs).
//!
//! stdout lines: `STARTED`, `ASSIGNED t-0,t-1`, `REVOKED ...`, `LOST ...`,
//! `SHUTDOWN {json report}`.

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use switchyard_config::{AssignmentStrategy, CommitPolicy, ConsumerConfig};
use switchyard_runtime::deserializer::Utf8;
use switchyard_runtime::hooks::RebalanceHooks;
use switchyard_runtime::record::Record;
use switchyard_runtime::{Listener, Ordering};
use switchyard_testkit::LogWriter;

/// Options of the probe listener.
#[derive(clap::Args)]
pub struct Args {
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
    /// range | roundrobin | cooperative-sticky
    #[arg(long, default_value = "range")]
    strategy: String,
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
    #[arg(long, default_value_t = 6000)]
    session_timeout_ms: u32,
    #[arg(long, default_value_t = 1000)]
    heartbeat_ms: u32,
    #[arg(long, default_value_t = 10000)]
    shutdown_timeout_ms: u64,
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

pub fn run(a: Args) -> i32 {
    match run_inner(a) {
        Ok(()) => 0,
        Err(e) => crate::fail(e),
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

fn run_inner(a: Args) -> anyhow::Result<()> {
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async move {
        let strategy = match a.strategy.as_str() {
            "range" => AssignmentStrategy::Range,
            "roundrobin" => AssignmentStrategy::Roundrobin,
            "cooperative-sticky" => AssignmentStrategy::CooperativeSticky,
            s => anyhow::bail!("unknown strategy `{s}`"),
        };
        let ordering = match a.ordering.as_str() {
            "partition" => Ordering::Partition,
            "key" => Ordering::Key,
            "unordered" => Ordering::Unordered,
            s => anyhow::bail!("unknown ordering `{s}`"),
        };
        let mut config = ConsumerConfig::new(&a.bootstrap)
            .with_group(&a.group)
            .with_strategy(strategy)
            .with_offset_reset(switchyard_config::OffsetReset::Earliest)
            .with_session_timeout_ms(a.session_timeout_ms)
            .with_heartbeat_interval_ms(a.heartbeat_ms)
            .with_max_poll_interval_ms(a.session_timeout_ms.max(10_000));
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
        say("STARTED");
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        let report = listener.shutdown().await;
        say(&format!("SHUTDOWN {}", serde_json::to_string(&report)?));
        Ok(())
    })
}

/// A cheap random number in 0..n (no rand dependency needed for test latency).
fn rand_below(n: u64) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(n);
    h.finish() % n
}
