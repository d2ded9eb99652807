//! The vocabulary of the blue/green switch benchmark (`switchyard-bench
//! switch`), shared by its rows (separate groups, shared group, stop and
//! deploy): its options, the two slots, the record log and what it tells of
//! a handoff ([`Stats`]), the in-process instances and the deploy driver
//! that moves them, and the steady record flow the control benchmark runs
//! too.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use switchyard_config::{Connection, ConsumerConfig, GroupProtocol, OffsetReset};
use switchyard_control::kafka_clients::client;
use switchyard_control::kafka_store::KafkaStore;
use switchyard_control::status_topic::StatusPublisher;
use switchyard_control::{Agent, AgentConfig, SharedStore};
use switchyard_deploy::Driver;
use switchyard_runtime::deserializer::Bytes;
use switchyard_runtime::record::Record;
use switchyard_runtime::{Listener, ListenerBuilder};

use crate::broker::{BenchBroker, BrokerArgs};

/// Options of `switch`. The mock cluster cannot report group members, so
/// the switch stops with an error there: run it with `--kafka` or
/// `--bootstrap`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub(crate) broker: BrokerArgs,
    /// Blue/green handoffs (alternating blue → green → blue).
    #[arg(long, default_value_t = 50)]
    pub(crate) switches: usize,
    /// Stop-and-deploy baseline handoffs (each a group rebalance).
    #[arg(long, default_value_t = 5)]
    pub(crate) baseline_switches: usize,
    /// Steady flow, records per second.
    #[arg(long, default_value_t = 1000)]
    pub(crate) rate: u64,
    /// Partitions of the topic.
    #[arg(long, default_value_t = 8)]
    pub(crate) partitions: i32,
    /// Instances per slot.
    #[arg(long, default_value_t = 2)]
    pub(crate) instances: usize,
    /// Status heartbeat of the agents (a status is also published on every change).
    #[arg(long, default_value_t = 200)]
    pub(crate) status_interval_ms: u64,
    /// Steady flow between two handoffs.
    #[arg(long, default_value_t = 300)]
    pub(crate) settle_ms: u64,
    /// Group protocol of every listener: classic or consumer (KIP-848).
    #[arg(long, default_value = "classic")]
    pub(crate) group_protocol: GroupProtocol,
}

pub(crate) const LISTENER: &str = "switch";
pub(crate) const SLOTS: [&str; 2] = ["blue", "green"];

/// (ns since start, tag of the processing instance set, partition).
pub(crate) type Log = Arc<Mutex<Vec<(u64, u32, i32)>>>;

#[derive(Default)]
pub(crate) struct Stats {
    pub gap: Vec<f64>,
    pub total: Vec<f64>,
    pub driver_gap: Vec<f64>,
    pub driver_total: Vec<f64>,
    /// Without a handoff: the longest hole between two processed records in
    /// the steady window (`--settle-ms`) before each handoff.
    pub steady: Vec<f64>,
    /// Handoffs after which some partition was not processed within 10 s.
    pub stalled: usize,
}

impl Stats {
    /// Keep the driver's own figures of handoff `n` (to `SLOTS[to]`); the
    /// line that names it.
    pub(crate) fn driver(
        &mut self,
        o: &switchyard_deploy::Outcome,
        kind: &str,
        n: usize,
        to: usize,
    ) -> String {
        let dg = o.gap.map_or(f64::NAN, |g| g.as_secs_f64() * 1e3);
        let dt = o.total.as_secs_f64() * 1e3;
        self.driver_gap.push(dg);
        self.driver_total.push(dt);
        format!(
            "{kind} {:>3} {} -> {} (driver: gap {dg:.1} ms, total {dt:.1} ms)",
            n + 1,
            SLOTS[1 - to],
            SLOTS[to]
        )
    }
}

/// The broker of the run and the suffix of its names.
pub(crate) struct Env {
    pub broker: BenchBroker,
    pub bootstrap: String,
    pub tag: String,
}

impl Env {
    pub(crate) fn create(&self, topic: &str, partitions: i32) -> anyhow::Result<()> {
        self.broker.create_topic(topic, partitions)
    }
}

/// A producer thread writing `rate` one-byte records/s round robin over
/// `parts` partitions until `stop` (the steady flow of the benchmarks),
/// batching them for `linger` (`linger.ms`: zero sends each record at once,
/// one produce request each).
pub(crate) fn flow(
    bootstrap: &str,
    topic: &str,
    parts: i32,
    rate: u64,
    linger: Duration,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<anyhow::Result<()>> {
    let (b, t) = (bootstrap.to_string(), topic.to_string());
    std::thread::spawn(move || -> anyhow::Result<()> {
        let p: BaseProducer = client(&Connection::from(b.as_str()))
            .set("linger.ms", linger.as_millis().to_string())
            .set("message.timeout.ms", "10000")
            .create()?;
        let every = Duration::from_secs_f64(1.0 / rate as f64);
        let start = Instant::now();
        let mut k = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let _ = p.send(
                BaseRecord::<(), [u8]>::to(&t)
                    .partition((k % parts as u64) as i32)
                    .payload(b"x"),
            );
            p.poll(Duration::ZERO);
            k += 1;
            if let Some(d) = (every * k as u32).checked_sub(start.elapsed()) {
                std::thread::sleep(d);
            }
        }
        p.flush(Duration::from_secs(5))?;
        Ok(())
    })
}

pub(crate) fn listener(
    bootstrap: &str,
    protocol: GroupProtocol,
    group: &str,
    topic: &str,
    tag: u32,
    base: Instant,
    log: &Log,
) -> anyhow::Result<ListenerBuilder> {
    let log = log.clone();
    Ok(Listener::builder(LISTENER)
        .config(
            ConsumerConfig::new(bootstrap)
                .with_group(group)
                .with_group_protocol(protocol)
                .with_offset_reset(OffsetReset::Earliest),
        )
        .topics([topic.to_string()])
        .handler(Bytes, Bytes, move |r: Record<Vec<u8>, Vec<u8>>| {
            let mut l = log.lock().expect("log");
            l.push((base.elapsed().as_nanos() as u64, tag, r.partition));
            async { Ok(()) }
        }))
}

/// From the record log, for a handoff to `tag` started at `t0` (ns): the gap
/// (first record of `tag` after `t0` − the record before it, ms), the time
/// until every partition processed a record of `tag` (ms; `None` while some
/// did not), and how many partitions did not yet.
fn from_log(log: &Log, tag: u32, t0: u64, parts: i32) -> (Option<f64>, Option<f64>, usize) {
    let l = log.lock().expect("log");
    let start = l.partition_point(|r| r.0 < t0);
    let Some(first) = (start..l.len()).find(|&i| l[i].1 == tag) else {
        return (None, None, parts as usize);
    };
    let before = if first > 0 { l[first - 1].0 } else { t0 };
    let mut seen = BTreeMap::new();
    for r in &l[first..] {
        if r.1 == tag {
            seen.entry(r.2).or_insert(r.0);
        }
    }
    let gap = Some((l[first].0 - before) as f64 / 1e6);
    let missing = (parts as usize).saturating_sub(seen.len());
    if missing > 0 {
        return (gap, None, missing);
    }
    let all = *seen.values().max().expect("some");
    (gap, Some((all - t0) as f64 / 1e6), 0)
}

/// The longest time without a processed record in `[from, to]` (ns), in ms.
pub(crate) fn hole(log: &Log, from: u64, to: u64) -> f64 {
    let l = log.lock().expect("log");
    let (a, b) = (
        l.partition_point(|r| r.0 < from),
        l.partition_point(|r| r.0 <= to),
    );
    let mut prev = from;
    let mut max = 0;
    for r in &l[a..b] {
        max = max.max(r.0 - prev);
        prev = r.0;
    }
    max.max(to - prev) as f64 / 1e6
}

/// Wait (up to 10 s) for every partition to be processed by `tag`.
pub(crate) async fn wait_log(
    log: &Log,
    tag: u32,
    t0: u64,
    parts: i32,
) -> (Option<f64>, Option<f64>, usize) {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let r = from_log(log, tag, t0, parts);
        if r.1.is_some() || Instant::now() >= until {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Record one handoff's figures; a handoff after which some partition was
/// not processed within 10 s is counted as stalled.
pub(crate) fn note(stats: &mut Stats, what: &str, r: (Option<f64>, Option<f64>, usize)) {
    match r {
        (Some(gap), Some(total), _) => {
            stats.gap.push(gap);
            stats.total.push(total);
            eprintln!("{what}: gap {gap:.1} ms, total {total:.1} ms");
        }
        (gap, _, missing) => {
            stats.stalled += 1;
            eprintln!(
                "{what}: STALLED: {missing} partitions not processed within 10 s (gap {gap:?} ms)"
            );
        }
    }
}

/// The driver's progress lines, with the time since `base`, on stderr when
/// `SWITCHYARD_BENCH_TRACE` is set (where a handoff spends its time).
pub(crate) fn trace_line(base: Instant) -> impl FnMut(String) {
    let on = std::env::var_os("SWITCHYARD_BENCH_TRACE").is_some();
    move |line| {
        if on {
            eprintln!("{:>10.1} ms  {line}", base.elapsed().as_secs_f64() * 1e3);
        }
    }
}

/// Stop the agents, then shut their listeners down (5 s each).
pub(crate) async fn stop_agents(agents: Vec<switchyard_control::agent::Agent>) {
    for agent in agents {
        for l in agent.stop().await {
            if let Ok(l) = Arc::try_unwrap(l) {
                l.shutdown_within(Duration::from_secs(5)).await;
            }
        }
    }
}

/// The control plane of one row: its control and status topics, the deploy
/// driver over them (its status tail caught up), and what the agents of the
/// row's instances report as.
pub(crate) struct Plane {
    /// The application, also the group (the separate-groups row adds the
    /// slot: [`Driver::group_of`]).
    pub app: String,
    pub driver: Driver,
    bootstrap: String,
    status: String,
    heartbeat: Duration,
}

impl Env {
    /// Create the control and status topics of row `tag` and start its deploy
    /// driver, of application `bench-switch-<tag>`; its agents publish a
    /// status every `heartbeat`. Blocking.
    pub(crate) fn plane(&self, tag: &str, heartbeat: Duration) -> anyhow::Result<Plane> {
        let (control, status) = (
            format!("bench.switch.ctl.{tag}"),
            format!("bench.switch.status.{tag}"),
        );
        self.broker.create_plane_topic(&control)?;
        self.broker.create_plane_topic(&status)?;
        let app = format!("bench-switch-{tag}");
        let store: SharedStore = KafkaStore::new(&self.bootstrap, &control)?;
        let driver = Driver::start(
            &self.bootstrap,
            store,
            &status,
            &app,
            &app,
            "bench".into(),
            Duration::from_secs(30),
        )?;
        Ok(Plane {
            app,
            driver,
            bootstrap: self.bootstrap.clone(),
            status,
            heartbeat,
        })
    }
}

impl Plane {
    /// Start the control-plane agent of listener `l` as instance `name` of
    /// `slot`.
    pub(crate) async fn agent(
        &self,
        slot: &str,
        name: String,
        l: switchyard_runtime::ListenerHandle,
    ) -> anyhow::Result<Agent> {
        let (b, s) = (self.bootstrap.clone(), self.status.clone());
        let publisher = tokio::task::spawn_blocking(move || StatusPublisher::new(&b, &s)).await??;
        let cfg = AgentConfig {
            app: self.app.clone(),
            instance: name,
            slot: slot.to_string(),
            heartbeat: self.heartbeat,
        };
        let store = self.driver.store.clone();
        Ok(Agent::start(cfg, vec![Arc::new(l)], store, Some(publisher)).await?)
    }
}
