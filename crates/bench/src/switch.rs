//! `switchyard-bench switch`: how long a blue/green switch leaves a listener
//! without processing, with the real deploy driver (`switchyard-deploy`, the
//! code `switchyard deploy switch` runs).
//!
//! 2 blue + 2 green in-process instances (a listener and a control-plane
//! agent each; slot `s` consumes as group `<group>-<s>`, the standby slot
//! assigned and paused) under a steady record flow; N handoffs alternating
//! blue → green → blue. Every processed record is logged with its time, the
//! slot that processed it and its partition. Per switch, from the records:
//! **gap** = first record processed by the new slot − the last record
//! processed before it (by anyone); **total** = from the driver's start
//! until every partition has processed a record on the new slot. The
//! driver's own gap/total (its clock, from status reports) are shown too.
//!
//! Baseline, same run: "stop and deploy" with one group: shut down the 2
//! running instances (commit, leave the group), start 2 fresh ones in the
//! same group; gap and total measured the same way from the records.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use switchyard_config::{ConsumerConfig, GroupProtocol, OffsetReset};
use switchyard_control::kafka_store::{producer, KafkaStore};
use switchyard_control::status_topic::StatusPublisher;
use switchyard_control::{Agent, AgentConfig, SharedStore};
use switchyard_deploy::plan;
use switchyard_deploy::Driver;
use switchyard_runtime::deserializer::Bytes;
use switchyard_runtime::record::Record;
use switchyard_runtime::{Listener, ListenerBuilder, ListenerHandle};

use crate::broker::{pct, BenchBroker, BrokerArgs};

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

pub fn run(a: Args) -> anyhow::Result<()> {
    let broker = BenchBroker::start(&a.broker)?;
    let env = Env {
        bootstrap: broker.bootstrap.clone(),
        tag: broker.run_tag(),
        broker,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("tokio")?;
    rt.block_on(bench(a, &env))
}

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

async fn bench(a: Args, env: &Env) -> anyhow::Result<()> {
    let topic = format!("bench.switch.{}", env.tag);
    {
        let (e, t, p) = (env, topic.clone(), a.partitions);
        tokio::task::block_in_place(|| e.create(&t, p))?;
    }
    println!(
        "blue/green switch: {} partitions, {} records/s steady flow, {} + {} instances, group protocol {}, {}",
        a.partitions,
        a.rate,
        a.instances,
        a.instances,
        a.group_protocol,
        env.broker.describe()
    );
    let base = Instant::now();
    let log: Log = Arc::new(Mutex::new(Vec::with_capacity(1 << 18)));
    let stop = Arc::new(AtomicBool::new(false));
    let flow = flow(&env.bootstrap, &topic, a.partitions, a.rate, stop.clone());

    let sep = separate_groups(env, &a, &topic, base, &log).await;
    let shr = match &sep {
        Ok(_) => crate::switch_shared::shared_group(env, &a, &topic, base, &log).await,
        Err(_) => Ok(Stats::default()),
    };
    let stp = match &sep {
        Ok(_) => stop_and_deploy(env, &a, &topic, base, &log).await,
        Err(_) => Ok(Stats::default()),
    };
    stop.store(true, Ordering::Relaxed);
    let _ = flow.join();
    let (sep, shr, stp) = (sep?, shr?, stp?);

    println!();
    println!(
        "{:<34} {:>8} {:>10} {:>10} {:>11} {:>11} {:>8}",
        "strategy", "switches", "gap p50", "gap p99", "total p50", "total p99", "stalled"
    );
    let row = |name: &str, n: usize, g: &[f64], t: &[f64], stalled: usize| {
        println!(
            "{:<34} {:>8} {:>8.1}ms {:>8.1}ms {:>9.1}ms {:>9.1}ms {:>8}",
            name,
            n,
            pct(g, 0.5),
            pct(g, 0.99),
            pct(t, 0.5),
            pct(t, 0.99),
            stalled
        );
    };
    row(
        "separate groups (deploy driver)",
        sep.gap.len() + sep.stalled,
        &sep.gap,
        &sep.total,
        sep.stalled,
    );
    row(
        "  same, driver's own clock",
        sep.driver_gap.len(),
        &sep.driver_gap,
        &sep.driver_total,
        0,
    );
    row(
        "stop and deploy (one group)",
        stp.gap.len() + stp.stalled,
        &stp.gap,
        &stp.total,
        stp.stalled,
    );
    row(
        "no handoff (steady, longest hole)",
        sep.steady.len(),
        &sep.steady,
        &[],
        0,
    );
    row(
        "shared group (deploy driver)",
        shr.gap.len() + shr.stalled,
        &shr.gap,
        &shr.total,
        shr.stalled,
    );
    row(
        "  same, driver's own clock",
        shr.driver_gap.len(),
        &shr.driver_gap,
        &shr.driver_total,
        0,
    );
    let goal = pct(&sep.gap, 0.99);
    println!(
        "goal: separate-groups gap p99 < 250 ms: {} ({goal:.1} ms)",
        if goal < 250.0 { "met" } else { "NOT met" }
    );
    Ok(())
}

/// A producer thread writing `rate` one-byte records/s round robin over
/// `parts` partitions until `stop` (the steady flow of the benchmarks).
pub(crate) fn flow(
    bootstrap: &str,
    topic: &str,
    parts: i32,
    rate: u64,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<anyhow::Result<()>> {
    let (b, t) = (bootstrap.to_string(), topic.to_string());
    std::thread::spawn(move || -> anyhow::Result<()> {
        let p: BaseProducer = producer(&b)?;
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

async fn separate_groups(
    env: &Env,
    a: &Args,
    topic: &str,
    base: Instant,
    log: &Log,
) -> anyhow::Result<Stats> {
    let (control, status) = (
        format!("bench.switch.ctl.{}", env.tag),
        format!("bench.switch.status.{}", env.tag),
    );
    tokio::task::block_in_place(|| {
        env.broker.create_plane_topic(&control)?;
        env.broker.create_plane_topic(&status)
    })?;
    let app = format!("bench-switch-{}", env.tag);
    let group = format!("bench-switch-{}", env.tag);
    let bootstrap = env.bootstrap.clone();
    let driver =
        tokio::task::block_in_place(|| bench_driver(&bootstrap, &app, &group, &control, &status))?;
    // `deploy init`: blue owns every partition
    let parts: Vec<(String, i32)> = (0..a.partitions).map(|p| (topic.to_string(), p)).collect();
    tokio::task::block_in_place(|| driver.write(|s| plan::init(s, LISTENER, SLOTS[0], &parts)))?;
    let initial = tokio::task::block_in_place(|| driver.read())?;
    let mut agents = Vec::new();
    for (tag, slot) in SLOTS.iter().enumerate() {
        for i in 0..a.instances {
            let l = listener(
                &bootstrap,
                a.group_protocol,
                &driver.group_of(slot),
                topic,
                tag as u32,
                base,
                log,
            )?
            .start()?;
            let overrides = Default::default();
            for t in switchyard_control::targets::wanted_in_slot(
                Some(&initial),
                &overrides,
                LISTENER,
                slot,
                switchyard_control::model::now_ms(),
            ) {
                l.pause(t).await?;
            }
            let instance = Instance {
                bootstrap: &bootstrap,
                status: &status,
                app: &app,
                slot,
                heartbeat: Duration::from_millis(a.status_interval_ms),
            };
            agents.push(instance.start(format!("{slot}-{i}"), l, &driver).await?);
        }
    }
    // settled: each slot's instances hold every partition (blue running, green paused)
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let latest = driver.tail.latest();
        let held = |slot: &str, state: &str| {
            latest
                .values()
                .filter(|s| s.app == app && s.slot == slot)
                .flat_map(|s| s.partitions())
                .filter(|p| p.state == state)
                .count()
        };
        if held(SLOTS[0], "running") == a.partitions as usize
            && held(SLOTS[1], "paused") == a.partitions as usize
        {
            break;
        }
        anyhow::ensure!(
            Instant::now() < until,
            "timed out waiting for the slots to settle"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let t = base.elapsed().as_nanos() as u64;
    anyhow::ensure!(
        wait_log(log, 0, t, a.partitions).await.1.is_some(),
        "blue did not process every partition"
    );
    // phase 2 of the driver counts the active group's members (ListGroups /
    // DescribeGroups), which librdkafka's mock cluster does not answer
    let members = tokio::task::block_in_place(|| {
        switchyard_deploy::kafka::members(&bootstrap, &driver.group_of(SLOTS[0]))
    });
    if !matches!(members, Ok(n) if n > 0) {
        anyhow::bail!(
            "the broker does not report the members of group {} ({}); the deploy driver needs \
             them (librdkafka's mock cluster cannot): run with --kafka or --bootstrap",
            driver.group_of(SLOTS[0]),
            match members {
                Ok(n) => format!("{n} members"),
                Err(e) => format!("{e:#}"),
            }
        );
    }
    tokio::time::sleep(Duration::from_millis(a.settle_ms)).await;

    let mut stats = Stats::default();
    for n in 0..a.switches {
        let to = (n + 1) % 2;
        let t0 = base.elapsed().as_nanos() as u64;
        stats
            .steady
            .push(hole(log, t0.saturating_sub(a.settle_ms * 1_000_000), t0));
        let o = tokio::task::block_in_place(|| -> anyhow::Result<_> {
            let m = plan::switch(&driver.read()?, LISTENER, SLOTS[to])
                .map_err(|e| anyhow::anyhow!(e))?;
            driver.run(&m, &mut trace_line(base))
        })?;
        anyhow::ensure!(
            o.ok,
            "switch {n} rolled back: {}",
            o.reason.unwrap_or_default()
        );
        let r = wait_log(log, to as u32, t0, a.partitions).await;
        let what = stats.driver(&o, "switch", n, to);
        note(&mut stats, &what, r);
        tokio::time::sleep(Duration::from_millis(a.settle_ms)).await;
    }
    driver.tail.stop();
    stop_agents(agents).await;
    Ok(stats)
}

async fn stop_and_deploy(
    env: &Env,
    a: &Args,
    topic: &str,
    base: Instant,
    log: &Log,
) -> anyhow::Result<Stats> {
    let group = format!("bench-switch-stop-{}", env.tag);
    let start = |tag: u32| -> anyhow::Result<Vec<ListenerHandle>> {
        (0..a.instances)
            .map(|_| {
                Ok(listener(
                    &env.bootstrap,
                    a.group_protocol,
                    &group,
                    topic,
                    tag,
                    base,
                    log,
                )?
                .start()?)
            })
            .collect()
    };
    let mut tag = 100u32;
    let t = base.elapsed().as_nanos() as u64;
    let mut running = start(tag)?;
    anyhow::ensure!(
        wait_log(log, tag, t, a.partitions).await.1.is_some(),
        "the stop-and-deploy group did not process every partition"
    );
    tokio::time::sleep(Duration::from_millis(a.settle_ms)).await;
    let mut stats = Stats::default();
    for n in 0..a.baseline_switches {
        let t0 = base.elapsed().as_nanos() as u64;
        futures::future::join_all(running.drain(..).map(|l| l.shutdown())).await;
        tag += 1;
        running = start(tag)?;
        let r = wait_log(log, tag, t0, a.partitions).await;
        note(&mut stats, &format!("stop and deploy {:>3}", n + 1), r);
        tokio::time::sleep(Duration::from_millis(a.settle_ms)).await;
    }
    futures::future::join_all(running.drain(..).map(|l| l.shutdown())).await;
    Ok(stats)
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

/// The deploy driver of a benchmark application, its status tail caught up.
pub(crate) fn bench_driver(
    bootstrap: &str,
    app: &str,
    group: &str,
    control: &str,
    status: &str,
) -> anyhow::Result<Driver> {
    let store: SharedStore = KafkaStore::new(bootstrap, control)?;
    Driver::start(
        bootstrap,
        store,
        status,
        app,
        group,
        "bench".into(),
        Duration::from_secs(30),
    )
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

/// Where a benchmark instance's agent reports, and for which slot.
pub(crate) struct Instance<'a> {
    pub bootstrap: &'a str,
    pub status: &'a str,
    pub app: &'a str,
    pub slot: &'a str,
    pub heartbeat: Duration,
}

impl Instance<'_> {
    /// Start the control-plane agent of listener `l` as instance `name`.
    pub async fn start(
        &self,
        name: String,
        l: switchyard_runtime::ListenerHandle,
        driver: &Driver,
    ) -> anyhow::Result<Agent> {
        let (b, s) = (self.bootstrap.to_string(), self.status.to_string());
        let publisher = tokio::task::spawn_blocking(move || StatusPublisher::new(&b, &s)).await??;
        let cfg = AgentConfig {
            app: self.app.to_string(),
            instance: name,
            slot: self.slot.to_string(),
            heartbeat: self.heartbeat,
        };
        let store = driver.store.clone();
        Ok(Agent::start(cfg, vec![Arc::new(l)], store, Some(publisher)).await?)
    }
}
