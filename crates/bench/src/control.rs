//! `switchyard-bench control`: how fast a fleet-wide pause takes effect.
//!
//! N in-process instances (a listener and a control-plane agent each, one
//! consumer group) under a steady record flow, on the embedded mock cluster
//! or a real broker (`--bootstrap`, `--kafka`; topics through the admin API,
//! named per run).
//! Per cycle: write a pause of the topic to the control topic, wait until
//! every instance's status on the status topic acknowledges it (applied
//! version and every partition paused), note the last record delivered, then
//! resume the same way. Beside it, the baseline: the same agents, but a
//! change is applied only when the instance's next poll returns, with a 5 s
//! poll timeout (Spring Kafka's default `pollTimeout`): a poll returns when
//! a record arrives for the instance, or after 5 s.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;

use switchyard_config::{ConsumerConfig, OffsetReset};
use switchyard_control::command::{Action, BindingCommand};
use switchyard_control::kafka_store::KafkaStore;
use switchyard_control::model::{now_ms, DesiredState};
use switchyard_control::status_topic::{StatusPublisher, StatusTail};
use switchyard_control::{Agent, AgentConfig, SharedStore, Store};
use switchyard_runtime::deserializer::Bytes;
use switchyard_runtime::record::Record;
use switchyard_runtime::Listener;
use tokio::sync::watch;

use crate::broker::{pct, BenchBroker, BrokerArgs};

/// Options of `control`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    broker: BrokerArgs,
    /// Instance counts to measure.
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
    /// Partitions of the topic.
    #[arg(long, default_value_t = 16)]
    partitions: i32,
}

const POLL_TIMEOUT: Duration = Duration::from_secs(5);

pub fn run(a: Args) -> anyhow::Result<()> {
    let broker = BenchBroker::start(&a.broker)?;
    let rt = tokio::runtime::Runtime::new().context("tokio")?;
    rt.block_on(bench(a, &broker))
}

struct Stats {
    ack: Vec<f64>,
    last_record: Vec<f64>,
    resume: Vec<f64>,
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
        "{:<10} {:>9} {:>7} {:>10} {:>10} {:>13} {:>13} {:>11} {:>11}",
        "mode",
        "instances",
        "cycles",
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
            let tag = format!("{run}-{i}{}", if baseline { "b" } else { "c" });
            let s = measure(broker, &a, n, cycles, baseline, &tag).await?;
            println!(
                "{:<10} {:>9} {:>7} {:>8.1}ms {:>8.1}ms {:>11.1}ms {:>11.1}ms {:>9.1}ms {:>9.1}ms",
                if baseline { "poll-5s" } else { "switchyard" },
                n,
                cycles,
                pct(&s.ack, 0.5),
                pct(&s.ack, 0.99),
                pct(&s.last_record, 0.5),
                pct(&s.last_record, 0.99),
                pct(&s.resume, 0.5),
                pct(&s.resume, 0.99)
            );
        }
    }
    Ok(())
}

/// A store whose changes reach the agent only when the instance's next poll
/// returns: a record delivered to it after the change, or 5 s.
struct NextPollStore {
    inner: SharedStore,
    delivered: Arc<AtomicU64>,
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
        let delivered = self.delivered.clone();
        tokio::spawn(async move {
            while inner.changed().await.is_ok() {
                let seen = delivered.load(Ordering::SeqCst);
                let until = Instant::now() + POLL_TIMEOUT;
                while delivered.load(Ordering::SeqCst) == seen && Instant::now() < until {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
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

async fn measure(
    broker: &BenchBroker,
    a: &Args,
    n: usize,
    cycles: usize,
    baseline: bool,
    tag: &str,
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
    let kafka: SharedStore = {
        let (b, c) = (bootstrap.to_string(), control.clone());
        tokio::task::spawn_blocking(move || KafkaStore::new(&b, &c)).await??
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
        let delivered = Arc::new(AtomicU64::new(0));
        let (l, d) = (last.clone(), delivered.clone());
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
                d.fetch_add(1, Ordering::SeqCst);
                async { Ok(()) }
            })
            .start()?;
        listeners.push((listener, delivered));
    }
    let mut agents = Vec::new();
    for (i, (listener, delivered)) in listeners.into_iter().enumerate() {
        let store: SharedStore = if baseline {
            Arc::new(NextPollStore {
                inner: kafka.clone(),
                delivered,
            })
        } else {
            kafka.clone()
        };
        let (b, s) = (bootstrap.to_string(), status.clone());
        let publisher = tokio::task::spawn_blocking(move || StatusPublisher::new(&b, &s)).await??;
        let cfg = AgentConfig {
            app: app.clone(),
            instance: format!("{tag}-{i}"),
            slot: "blue".into(),
            heartbeat: Duration::from_millis(500),
        };
        agents.push(Agent::start(cfg, vec![Arc::new(listener)], store, Some(publisher)).await?);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let flow = crate::handoff::flow(bootstrap, &topic, a.partitions, a.rate, stop.clone());
    let tail = {
        let (b, s) = (bootstrap.to_string(), status.clone());
        tokio::task::spawn_blocking(move || StatusTail::start(&b, &s)).await??
    };
    let all = |f: &dyn Fn(&switchyard_control::status::InstanceStatus) -> bool| {
        let latest = tail.latest();
        let mine: Vec<_> = latest.values().filter(|s| s.app == app).collect();
        mine.len() == n && mine.iter().all(|s| f(s))
    };
    wait(Duration::from_secs(60), "the group to settle", || {
        all(&|s| s.partitions().count() > 0)
            && tail
                .latest()
                .values()
                .filter(|s| s.app == app)
                .map(|s| s.partitions().count())
                .sum::<usize>()
                == a.partitions as usize
    })
    .await?;
    let mut stats = Stats {
        ack: vec![],
        last_record: vec![],
        resume: vec![],
    };
    let mut cmd = BindingCommand::new("bench", Action::Pause);
    cmd.topic = Some(topic.clone());
    for _ in 0..cycles {
        let t0 = base.elapsed();
        let v = write(&kafka, &app, &cmd, Action::Pause).await?;
        wait(Duration::from_secs(30), "pause acknowledgements", || {
            all(&|s| s.applied_version >= v && s.partitions().all(|p| p.state == "paused"))
        })
        .await?;
        let t_ack = base.elapsed();
        let last_rec = Duration::from_nanos(last.load(Ordering::SeqCst));
        stats.ack.push((t_ack - t0).as_secs_f64() * 1e3);
        stats
            .last_record
            .push(last_rec.saturating_sub(t0).as_secs_f64() * 1e3);
        let t1 = base.elapsed();
        let v = write(&kafka, &app, &cmd, Action::Resume).await?;
        wait(Duration::from_secs(30), "resume acknowledgements", || {
            all(&|s| s.applied_version >= v && s.partitions().all(|p| p.state == "running"))
        })
        .await?;
        stats.resume.push((base.elapsed() - t1).as_secs_f64() * 1e3);
    }
    stop.store(true, Ordering::Relaxed);
    let _ = flow.join();
    tail.stop();
    crate::handoff::stop_agents(agents).await;
    Ok(stats)
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

async fn wait(timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) -> anyhow::Result<()> {
    let until = Instant::now() + timeout;
    while !cond() {
        anyhow::ensure!(Instant::now() < until, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Ok(())
}
