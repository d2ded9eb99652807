//! The first part of the demo: produce sample records, consume them with a
//! listener while showing progress, pause and resume the topic half-way
//! through the control plane (control topic, agent, acknowledgement), shut
//! down cleanly, and print a summary (records, rate, commits, lag). It fails
//! unless every record was processed once and the lag is 0 at the end.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use switchyard_config::{ConsumerConfig, OffsetReset};
use switchyard_control::command::{Action, BindingCommand};
use switchyard_control::kafka_store::KafkaStore;
use switchyard_control::model::now_ms;
use switchyard_control::{Agent, AgentConfig, SharedStore};
use switchyard_runtime::deserializer::{Json, Utf8};
use switchyard_runtime::record::Record;
use switchyard_runtime::Listener;

use crate::{client, Cluster, Options};

#[derive(serde::Deserialize)]
struct Order {
    id: u64,
    amount: u64,
}

/// Run the first part on `cluster`.
pub async fn run(cluster: &Cluster, a: &Options) -> anyhow::Result<()> {
    let bootstrap = cluster.bootstrap.clone();
    let (topic, control_topic) = (cluster.name("demo.orders"), cluster.name("demo.control"));
    let (app, group) = (cluster.name("demo"), cluster.name("demo"));
    let topic = topic.as_str();
    cluster.create_topic(topic, a.partitions).await?;
    cluster.create_plane_topic(&control_topic).await?;
    println!(
        "{}; topic {topic} with {} partitions",
        cluster.describe(),
        a.partitions
    );

    let bar = |len: u64, what: &str| {
        let pb = ProgressBar::new(len);
        pb.set_style(
            ProgressStyle::with_template(&format!(
                "{what:>9} [{{bar:40}}] {{pos}}/{{len}} {{per_sec}}"
            ))
            .expect("template")
            .progress_chars("=> "),
        );
        pb
    };
    let producer: BaseProducer = client(&bootstrap).set("linger.ms", "5").create()?;
    let pb = bar(a.records, "produce");
    for i in 0..a.records {
        let key = format!("customer-{}", i % 1000);
        let value = format!(r#"{{"id":{i},"amount":{}}}"#, i % 97);
        loop {
            match producer.send(BaseRecord::to(topic).key(&key).payload(&value)) {
                Ok(()) => break,
                Err((_, _)) => {
                    producer.poll(Duration::from_millis(10));
                }
            }
        }
        if i % 1000 == 0 {
            producer.poll(Duration::ZERO);
            pb.set_position(i);
        }
    }
    producer.flush(Duration::from_secs(30))?;
    pb.finish();

    let processed = Arc::new(AtomicU64::new(0));
    let amount = Arc::new(AtomicU64::new(0));
    let config = ConsumerConfig::new(&bootstrap)
        .with_group(&group)
        .with_offset_reset(OffsetReset::Earliest);
    let (p, s) = (processed.clone(), amount.clone());
    let listener = Listener::builder("orders")
        .config(config)
        .topics([topic])
        .workers(a.partitions as usize)
        .handler(
            Utf8,
            Json::<Order>::new(),
            move |r: Record<String, Order>| {
                let (p, s) = (p.clone(), s.clone());
                async move {
                    debug_assert!(r.value.id < u64::MAX);
                    s.fetch_add(r.value.amount, Ordering::Relaxed);
                    p.fetch_add(1, Ordering::Relaxed);
                    Ok(())
                }
            },
        )
        .start()?;
    // the pause half-way goes through the control plane: desired state in a
    // control topic, applied by the agent, acknowledged when drained and committed
    let store: SharedStore = tokio::task::spawn_blocking({
        let b = bootstrap.clone();
        move || KafkaStore::new(&b, &control_topic)
    })
    .await??;
    let cfg = AgentConfig {
        app: app.clone(),
        instance: "demo-1".into(),
        slot: "blue".into(),
        heartbeat: Duration::from_secs(1),
    };
    let agent = Agent::start(cfg, vec![Arc::new(listener)], store.clone(), None).await?;
    let pb = bar(a.records, "consume");
    let started = Instant::now();
    let deadline = started + Duration::from_secs(45);
    let mut paused_once = false;
    while processed.load(Ordering::Relaxed) < a.records && Instant::now() < deadline {
        let n = processed.load(Ordering::Relaxed);
        pb.set_position(n);
        if !paused_once && n >= a.records / 2 {
            paused_once = true;
            let t0 = Instant::now();
            let v = control(&store, &app, topic, Action::Pause).await?;
            agent.wait_applied(v, Duration::from_secs(20)).await?;
            let at = processed.load(Ordering::Relaxed);
            pb.println(format!(
                "paused {topic} through the control plane: version {v} acknowledged (drained, committed) in {} ms",
                t0.elapsed().as_millis()
            ));
            tokio::time::sleep(Duration::from_millis(500)).await;
            anyhow::ensure!(
                processed.load(Ordering::Relaxed) == at,
                "records were processed while paused"
            );
            pb.println("nothing processed while paused for 500 ms; resuming");
            let v = control(&store, &app, topic, Action::Resume).await?;
            agent.wait_applied(v, Duration::from_secs(20)).await?;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let listener = Arc::try_unwrap(agent.stop().await.pop().context("listener")?)
        .map_err(|_| anyhow::anyhow!("the listener is still shared"))?;
    let elapsed = started.elapsed();
    pb.finish();
    let stats = listener.stats();
    let report = listener.shutdown().await;
    let lag = {
        let (b, g, t, p) = (
            bootstrap.clone(),
            group.clone(),
            topic.to_string(),
            a.partitions,
        );
        tokio::task::spawn_blocking(move || group_lag(&b, &g, &t, p)).await??
    };
    let n = processed.load(Ordering::Relaxed);
    println!();
    println!("{:<22} {}", "records processed", n);
    println!(
        "{:<22} {:.0} records/s",
        "rate",
        n as f64 / elapsed.as_secs_f64()
    );
    println!("{:<22} {}", "commits", stats.commits);
    println!("{:<22} {}", "rebalances", stats.rebalances);
    println!(
        "{:<22} {}",
        "sum of amounts",
        amount.load(Ordering::Relaxed)
    );
    println!(
        "{:<22} {} ms, closed: {}",
        "shutdown", report.elapsed_ms, report.closed
    );
    println!("{:<22} {}", "lag at the end", lag);
    anyhow::ensure!(
        n == a.records,
        "only {n} of {} records processed",
        a.records
    );
    anyhow::ensure!(lag == 0, "lag is {lag} after shutdown");
    Ok(())
}

/// Write a pause or resume of `topic` to the desired state of `app`; its version.
async fn control(
    store: &SharedStore,
    app: &str,
    topic: &str,
    action: Action,
) -> anyhow::Result<u64> {
    let mut cmd = BindingCommand::new("orders", action);
    cmd.topic = Some(topic.into());
    let (store, app) = (store.clone(), app.to_string());
    let s = tokio::task::spawn_blocking(move || {
        store.write(&app, None, Some("demo"), &|s| cmd.apply(s, now_ms()))
    })
    .await??;
    Ok(s.version)
}

/// Sum over partitions of (log end - committed).
pub fn group_lag(
    bootstrap: &str,
    group: &str,
    topic: &str,
    partitions: i32,
) -> anyhow::Result<i64> {
    let c: BaseConsumer = client(bootstrap).set("group.id", group).create()?;
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let committed = c.committed_offsets(tpl, Duration::from_secs(10))?;
    let mut lag = 0;
    for p in 0..partitions {
        let (_, high) = c.fetch_watermarks(topic, p, Duration::from_secs(10))?;
        let done = match committed.find_partition(topic, p).map(|e| e.offset()) {
            Some(Offset::Offset(o)) => o,
            _ => 0,
        };
        lag += high - done;
    }
    Ok(lag)
}
