//! `switchyard-bench control`: how fast a fleet-wide pause takes effect.
//!
//! N in-process instances (a listener and a control-plane agent each, one
//! consumer group) under a steady record flow, on the embedded mock cluster
//! or a real broker (`--bootstrap`, `--kafka`; topics through the admin API,
//! named per run). Each instance has the Kafka clients an instance of a
//! fleet has: its listener's consumer, a status producer and a control-topic
//! store of its own (`--shared-store`: one store for all of them); they share
//! the process, its runtime and its cores.
//! After one unmeasured cycle, per cycle: write a pause of the topic to the
//! control topic (a fenced transaction: **write**), wait until
//! every instance's status on the status topic acknowledges it (applied
//! version and every partition paused), note the last record delivered, then
//! resume the same way. Beside it, the baseline: the same agents, but a
//! change is applied only when the instance's next poll returns, with a 5 s
//! poll timeout (Spring Kafka's default `pollTimeout`): a poll returns when
//! a record arrives for the instance, or after 5 s.
//!
//! Each row also reports the status topic's footprint: the status records
//! written during the cycles and the size (key + value) of one status by
//! the number of partitions of its instance, and the CPU the bench process
//! and a `--kafka` broker used during the cycles.
//!
//! On a real broker each `switchyard` row starts with unmeasured cycles for
//! `--warmup` (60 s): a freshly started broker's JIT compilers took a third
//! of the 2 cores of the reference machine for its first minute, and again
//! when a row of more instances followed, which a broker in service has
//! long finished. The flow's producer batches for `--linger-ms`
//! (librdkafka's default, 5 ms).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;

use rdkafka::consumer::{BaseConsumer, Consumer};
use switchyard_config::{ConsumerConfig, OffsetReset};
use switchyard_control::command::{Action, BindingCommand};
use switchyard_control::kafka_store::KafkaStore;
use switchyard_control::model::{now_ms, DesiredState};
use switchyard_control::status::InstanceStatus;
use switchyard_control::status_topic::{StatusPublisher, StatusTail};
use switchyard_control::{Agent, AgentConfig, SharedStore, Store};
use switchyard_runtime::deserializer::Bytes;
use switchyard_runtime::record::Record;
use switchyard_runtime::Listener;
use tokio::sync::{watch, Notify};

use crate::broker::{pct, BenchBroker, BrokerArgs};
use crate::status_footprint::{describe_footprint, status_sizes, topic_settings, Footprint};

/// Options of `control`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    broker: BrokerArgs,
    /// Instance counts to measure (a list: 1,8,32).
    #[arg(long, value_delimiter = ',', default_value = "1,4,8")]
    instances: Vec<usize>,
    /// Pause/resume cycles per instance count.
    #[arg(long, default_value_t = 50)]
    cycles: usize,
    /// Cycles of the 5 s-poll baseline (each resume waits out a poll timeout).
    #[arg(long, default_value_t = 5)]
    baseline_cycles: usize,
    /// Steady flow, records per second.
    #[arg(long, default_value_t = 2000)]
    rate: u64,
    /// Partitions of the topic (with fewer partitions than instances, some
    /// instances have none: they acknowledge with no partition).
    #[arg(long, default_value_t = 16)]
    partitions: i32,
    /// Status heartbeat of the agents (a status is also published on every
    /// change).
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(1..))]
    status_interval_ms: u64,
    /// One control-topic store (one reader of the control topic) for all the
    /// instances, instead of one per instance as in a fleet.
    #[arg(long)]
    shared_store: bool,
    /// Unmeasured pause/resume cycles before each row (not the baseline's),
    /// for this long (`60s`, `0s`): the broker's JIT warm-up. Default 60 s
    /// on a real broker, none on the mock cluster (no JIT there).
    #[arg(long, value_parser = switchyard_config::duration::parse)]
    warmup: Option<Duration>,
    /// `linger.ms` of the steady flow's producer.
    #[arg(long, default_value_t = 5)]
    linger_ms: u64,
}

const POLL_TIMEOUT: Duration = Duration::from_secs(5);

/// The default `--warmup` on a real broker.
const WARMUP: Duration = Duration::from_secs(60);

pub fn run(a: Args) -> anyhow::Result<()> {
    anyhow::ensure!(
        a.instances.iter().all(|&n| n > 0),
        "--instances: every count must be at least 1"
    );
    let broker = BenchBroker::start(&a.broker)?;
    let rt = tokio::runtime::Runtime::new().context("tokio")?;
    rt.block_on(bench(a, &broker))
}

struct Stats {
    write: Vec<f64>,
    ack: Vec<f64>,
    last_record: Vec<f64>,
    resume: Vec<f64>,
    status: Footprint,
    /// The status topic's settings, when asked for.
    settings: Option<String>,
    /// Unmeasured warm-up cycles.
    warmed: usize,
    /// CPU during the cycles, in cores: the bench process, the broker.
    cpu: (f64, Option<f64>),
    /// The machine's idle and stolen shares during the cycles.
    machine: (f64, f64),
}

async fn bench(a: Args, broker: &BenchBroker) -> anyhow::Result<()> {
    let run = broker.run_tag();
    println!(
        "control plane: {} partitions, {} records/s steady flow, {}",
        a.partitions,
        a.rate,
        broker.describe()
    );
    println!(
        "instances: in-process, all in this one process (its runtime, its cores): each a listener \
         (its consumer), a control-plane agent with a status producer and {}; no HTTP admin API, \
         so no instance reads the status topic; status heartbeat {} ms",
        if a.shared_store {
            "one control-topic store shared by all"
        } else {
            "a control-topic store of its own"
        },
        a.status_interval_ms
    );
    println!(
        "{:<10} {:>9} {:>7} {:>10} {:>10} {:>10} {:>13} {:>13} {:>11} {:>11}",
        "mode",
        "instances",
        "cycles",
        "write p50",
        "ack p50",
        "ack p99",
        "last rec p50",
        "last rec p99",
        "resume p50",
        "resume p99"
    );
    for (i, &n) in a.instances.iter().enumerate() {
        for baseline in [false, true] {
            let cycles = if baseline {
                a.baseline_cycles
            } else {
                a.cycles
            };
            if cycles == 0 {
                continue;
            }
            let tag = format!("{run}-{i}{}", if baseline { "b" } else { "c" });
            let first = i == 0 && !baseline;
            let s = measure(broker, &a, n, cycles, baseline, &tag, first).await?;
            println!(
                "{:<10} {:>9} {:>7} {:>8.1}ms {:>8.1}ms {:>8.1}ms {:>11.1}ms {:>11.1}ms {:>9.1}ms {:>9.1}ms",
                if baseline { "poll-5s" } else { "switchyard" },
                n,
                cycles,
                pct(&s.write, 0.5),
                pct(&s.ack, 0.5),
                pct(&s.ack, 0.99),
                pct(&s.last_record, 0.5),
                pct(&s.last_record, 0.99),
                pct(&s.resume, 0.5),
                pct(&s.resume, 0.99)
            );
            println!("{}", describe_footprint(&s.status, n, a.status_interval_ms));
            println!(
                "  {} unmeasured cycle{} before; CPU during the cycles: this process {:.2} cores{}; \
                 the machine {:.0}% idle, {:.0}% stolen by the hypervisor",
                s.warmed,
                if s.warmed == 1 { "" } else { "s" },
                s.cpu.0,
                s.cpu
                    .1
                    .map(|b| format!(", the broker {b:.2} cores"))
                    .unwrap_or_default(),
                s.machine.0 * 100.0,
                s.machine.1 * 100.0
            );
            if let Some(settings) = &s.settings {
                println!("  {settings}");
            }
        }
    }
    Ok(())
}

/// Records delivered to one instance, and a wake-up per record.
#[derive(Default)]
struct Deliveries {
    count: AtomicU64,
    delivered: Notify,
}

/// A store whose changes reach the agent only when the instance's next poll
/// returns: a record delivered to it after the change, or 5 s.
struct NextPollStore {
    inner: SharedStore,
    deliveries: Arc<Deliveries>,
}

impl Store for NextPollStore {
    fn read(&self, app: &str) -> switchyard_control::error::Result<DesiredState> {
        self.inner.read(app)
    }
    fn try_put(&self, next: &DesiredState) -> switchyard_control::error::Result<bool> {
        self.inner.try_put(next)
    }
    fn watch(
        &self,
        app: &str,
    ) -> switchyard_control::error::Result<watch::Receiver<Option<DesiredState>>> {
        let mut inner = self.inner.watch(app)?;
        let (tx, rx) = watch::channel(inner.borrow().clone());
        let d = self.deliveries.clone();
        tokio::spawn(async move {
            while inner.changed().await.is_ok() {
                // woken by each delivered record, not a 1 ms poll per
                // instance: the baseline of 32 instances would spin
                let seen = d.count.load(Ordering::SeqCst);
                let _ = tokio::time::timeout(POLL_TIMEOUT, async {
                    loop {
                        let next = d.delivered.notified();
                        tokio::pin!(next);
                        next.as_mut().enable();
                        if d.count.load(Ordering::SeqCst) != seen {
                            return;
                        }
                        next.await;
                    }
                })
                .await;
                let s = inner.borrow_and_update().clone();
                if tx.send(s).is_err() {
                    break;
                }
            }
        });
        Ok(rx)
    }
    fn describe(&self) -> String {
        format!("{} behind a 5 s poll", self.inner.describe())
    }
}

/// Run `f` on a blocking thread (Kafka clients' setup blocks).
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    tokio::task::spawn_blocking(f).await?
}

async fn measure(
    broker: &BenchBroker,
    a: &Args,
    n: usize,
    cycles: usize,
    baseline: bool,
    tag: &str,
    settings: bool,
) -> anyhow::Result<Stats> {
    let topic = format!("bench.control.{tag}");
    let (control, status) = (format!("bench.ctl.{tag}"), format!("bench.status.{tag}"));
    let bootstrap = broker.bootstrap.as_str();
    tokio::task::block_in_place(|| {
        broker.create_topic(&topic, a.partitions)?;
        broker.create_plane_topic(&control)?;
        broker.create_plane_topic(&status)
    })?;
    let app = format!("bench-{tag}");
    // the operator's side: a store to write with, a reader of the status
    // topic (which creates it, before the instances' publishers)
    let kafka: SharedStore = {
        let (b, c) = (bootstrap.to_string(), control.clone());
        blocking(move || Ok(KafkaStore::new(&b, &c)?)).await?
    };
    let tail = {
        let (b, s) = (bootstrap.to_string(), status.clone());
        blocking(move || Ok(StatusTail::start(&b, &s)?)).await?
    };
    let base = Instant::now();
    let last = Arc::new(AtomicU64::new(0));
    // All listeners first, then the agents: the mock cluster elects the
    // group 3 s after its first member joins, and a member joining after
    // that starts a rebalance that it only ends after session.timeout.ms
    // - 1 s. Creating a status publisher and starting an agent per instance
    // in between took the 8th listener past the 3 s on a loaded machine, and
    // the group then settled only after 44 s, or not within the bench's
    // 60 s. A 10 s session bounds that wait to 9 s.
    let mut listeners = Vec::new();
    for _ in 0..n {
        let deliveries = Arc::new(Deliveries::default());
        let (l, d) = (last.clone(), deliveries.clone());
        let listener = Listener::builder("bench")
            .config(
                ConsumerConfig::new(bootstrap)
                    .with_group(format!("bench-control-{tag}"))
                    .with_offset_reset(OffsetReset::Latest)
                    .with_session_timeout_ms(10_000)
                    .with_heartbeat_interval_ms(1_000),
            )
            .topics([topic.clone()])
            .handler(Bytes, Bytes, move |_r: Record<Vec<u8>, Vec<u8>>| {
                l.fetch_max(base.elapsed().as_nanos() as u64, Ordering::SeqCst);
                d.count.fetch_add(1, Ordering::SeqCst);
                d.delivered.notify_waiters();
                async { Ok(()) }
            })
            .start()?;
        listeners.push((listener, deliveries));
    }
    // each instance's Kafka clients, made side by side (each store and
    // publisher checks its topic first: a few requests each)
    let clients = futures::future::try_join_all((0..n).map(|_| {
        let (b, c, s) = (bootstrap.to_string(), control.clone(), status.clone());
        let shared = a.shared_store.then(|| kafka.clone());
        blocking(move || {
            let store: SharedStore = match shared {
                Some(k) => k,
                None => KafkaStore::new(&b, &c)?,
            };
            Ok((store, StatusPublisher::new(&b, &s)?))
        })
    }))
    .await?;
    let agents = futures::future::try_join_all(listeners.into_iter().zip(clients).enumerate().map(
        |(i, ((listener, deliveries), (store, publisher)))| {
            let store: SharedStore = if baseline {
                Arc::new(NextPollStore {
                    inner: store,
                    deliveries,
                })
            } else {
                store
            };
            let cfg = AgentConfig {
                app: app.clone(),
                instance: format!("{tag}-{i}"),
                slot: "blue".into(),
                heartbeat: Duration::from_millis(a.status_interval_ms),
            };
            Agent::start(cfg, vec![Arc::new(listener)], store, Some(publisher))
        },
    ))
    .await?;
    let stop = Arc::new(AtomicBool::new(false));
    let flow = crate::handoff::flow(
        bootstrap,
        &topic,
        a.partitions,
        a.rate,
        Duration::from_millis(a.linger_ms),
        stop.clone(),
    );
    let mut cmd = BindingCommand::new("bench", Action::Pause);
    cmd.topic = Some(topic.clone());
    let cycle = Cycle {
        kafka: &kafka,
        app: &app,
        cmd: &cmd,
        tail: &tail,
        n,
        base,
        last: &last,
    };
    // every partition assigned, and to every instance one at least when
    // there are enough
    let settle = Duration::from_secs(60 + n as u64);
    wait(&tail, settle, "the group to settle", || {
        let mine = cycle.statuses();
        mine.len() == n
            && mine.iter().map(|s| s.partitions().count()).sum::<usize>() == a.partitions as usize
            && (n > a.partitions as usize || mine.iter().all(|s| s.partitions().count() > 0))
    })
    .await?;
    let watermarks = {
        let b = bootstrap.to_string();
        blocking(move || Ok(crate::broker::client(&b).create::<BaseConsumer>()?)).await?
    };
    let end_of = |c: &BaseConsumer| -> anyhow::Result<i64> {
        let status = status.clone();
        tokio::task::block_in_place(|| {
            Ok(c.fetch_watermarks(&status, 0, Duration::from_secs(10))?.1)
        })
    };
    // one cycle unmeasured: the first transaction on a fresh broker waits
    // for its transaction coordinator to load (1-2 s), which is no
    // property of a pause; then the warm-up
    cycle
        .run(Duration::from_secs(30), "the warm-up cycle")
        .await?;
    let mut warmed = 1;
    if !baseline {
        let warmup = a.warmup.unwrap_or(if broker.is_mock() {
            Duration::ZERO
        } else {
            WARMUP
        });
        let until = Instant::now() + warmup;
        while Instant::now() < until {
            cycle
                .run(Duration::from_secs(30), "a warm-up cycle")
                .await?;
            warmed += 1;
        }
    }
    let mut stats = Stats {
        write: vec![],
        ack: vec![],
        last_record: vec![],
        resume: vec![],
        status: Footprint::default(),
        settings: None,
        warmed,
        cpu: (0.0, None),
        machine: (0.0, 0.0),
    };
    if settings {
        stats.settings = Some(topic_settings(bootstrap, &status).await);
    }
    let from = end_of(&watermarks)?;
    let broker_pid = broker.pid().map(|p| p.to_string());
    let cpu_at = || -> (f64, Option<f64>) {
        let me = crate::proc_stats::cpu_secs("self").unwrap_or(f64::NAN);
        let b = broker_pid
            .as_deref()
            .and_then(|p| crate::proc_stats::cpu_secs(p).ok());
        (me, b)
    };
    let cpu0 = cpu_at();
    let machine0 = crate::proc_stats::MachineTicks::now()?;
    let t_cycles = Instant::now();
    for _ in 0..cycles {
        let c = cycle
            .run(Duration::from_secs(30), "acknowledgements")
            .await?;
        stats.write.push(c.write);
        stats.ack.push(c.ack);
        stats.last_record.push(c.last_record);
        stats.resume.push(c.resume);
    }
    let cpu1 = cpu_at();
    stats.machine = machine0.shares_until(&crate::proc_stats::MachineTicks::now()?);
    let secs = t_cycles.elapsed().as_secs_f64();
    stats.cpu = (
        (cpu1.0 - cpu0.0) / secs,
        cpu0.1.zip(cpu1.1).map(|(a, b)| (b - a) / secs),
    );
    stats.status.secs = secs;
    let to = end_of(&watermarks)?;
    stats.status.records = to - from;
    stats.status.total = to;
    stop.store(true, Ordering::Relaxed);
    let _ = flow.join();
    let partitions_of: BTreeMap<String, usize> = cycle
        .statuses()
        .into_iter()
        .map(|s| (s.instance.clone(), s.partitions().count()))
        .collect();
    {
        let (b, s) = (bootstrap.to_string(), status.clone());
        stats.status.sizes =
            blocking(move || status_sizes(&b, &s, from, to, &partitions_of)).await?;
    }
    tail.stop();
    stop_all(agents).await;
    Ok(stats)
}

/// Stop every agent and shut its listener down, all at once: one after the
/// other, each listener leaving the group rebalances the others, which 32
/// instances make slow.
async fn stop_all(agents: Vec<Agent>) {
    futures::future::join_all(agents.into_iter().map(|agent| async move {
        for l in agent.stop().await {
            if let Ok(l) = Arc::try_unwrap(l) {
                l.shutdown_within(Duration::from_secs(5)).await;
            }
        }
    }))
    .await;
}

/// One pause/resume cycle's figures, in ms.
struct CycleTimes {
    write: f64,
    ack: f64,
    last_record: f64,
    resume: f64,
}

/// What a pause/resume cycle needs.
struct Cycle<'a> {
    kafka: &'a SharedStore,
    app: &'a str,
    cmd: &'a BindingCommand,
    tail: &'a StatusTail,
    /// Instances.
    n: usize,
    base: Instant,
    /// When the last record was delivered (ns since `base`).
    last: &'a AtomicU64,
}

impl Cycle<'_> {
    /// The latest status of every instance of the app.
    fn statuses(&self) -> Vec<InstanceStatus> {
        let latest = self.tail.latest().into_values();
        latest.filter(|s| s.app == self.app).collect()
    }

    /// Whether there is a status of every instance and each passes `f`.
    fn all(&self, f: impl Fn(&InstanceStatus) -> bool) -> bool {
        let mine = self.statuses();
        mine.len() == self.n && mine.iter().all(f)
    }

    /// Pause, wait for every acknowledgement, resume, wait for them again.
    async fn run(&self, timeout: Duration, what: &str) -> anyhow::Result<CycleTimes> {
        let wall0 = now_ms();
        let t0 = self.base.elapsed();
        let v = write(self.kafka, self.app, self.cmd, Action::Pause).await?;
        let written = self.base.elapsed();
        wait(self.tail, timeout, &format!("pause {what}"), || {
            self.all(|s| s.applied_version >= v && s.partitions().all(|p| p.state == "paused"))
        })
        .await?;
        let t_ack = self.base.elapsed();
        if std::env::var_os("SWITCHYARD_BENCH_TRACE").is_some() {
            // when the last acknowledging status was made (wall clock, ms
            // after the write began), and whose it was
            let last = self.statuses().into_iter().max_by_key(|s| s.timestamp_ms);
            if let Some(s) = last {
                eprintln!(
                    "cycle {what}: written {:.1} ms, last status made {} ms ({}), read {:.1} ms",
                    (written - t0).as_secs_f64() * 1e3,
                    s.timestamp_ms - wall0,
                    s.instance,
                    (t_ack - t0).as_secs_f64() * 1e3
                );
            }
        }
        let last_rec = Duration::from_nanos(self.last.load(Ordering::SeqCst));
        let t1 = self.base.elapsed();
        let v = write(self.kafka, self.app, self.cmd, Action::Resume).await?;
        wait(self.tail, timeout, &format!("resume {what}"), || {
            self.all(|s| s.applied_version >= v && s.partitions().all(|p| p.state == "running"))
        })
        .await?;
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        Ok(CycleTimes {
            write: ms(written - t0),
            ack: ms(t_ack - t0),
            last_record: ms(last_rec.saturating_sub(t0)),
            resume: ms(self.base.elapsed() - t1),
        })
    }
}

async fn write(
    store: &SharedStore,
    app: &str,
    cmd: &BindingCommand,
    action: Action,
) -> anyhow::Result<u64> {
    let (store, app) = (store.clone(), app.to_string());
    let mut cmd = cmd.clone();
    cmd.action = action;
    let s = tokio::task::spawn_blocking(move || {
        store.write(&app, None, Some("bench"), &|s| cmd.apply(s, now_ms()))
    })
    .await??;
    Ok(s.version)
}

/// Wait until `cond`, which looks at the statuses `tail` read: checked
/// every millisecond, but again only when the tail read a status since
/// (cloning 32 statuses a millisecond would take CPU from the instances
/// measured, which share the same cores).
async fn wait(
    tail: &StatusTail,
    timeout: Duration,
    what: &str,
    mut cond: impl FnMut() -> bool,
) -> anyhow::Result<()> {
    let until = Instant::now() + timeout;
    let mut seen = None;
    loop {
        let at = tail.position();
        if seen != Some(at) {
            seen = Some(at);
            if cond() {
                return Ok(());
            }
        }
        anyhow::ensure!(Instant::now() < until, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}
