//! `switchyard-bench lag`: the time to compute the lag of many groups (200
//! groups x 50 partitions by default) from outside, beside a naive baseline
//! measured in the same run: one client per group and one request per
//! partition (OffsetFetch, then ListOffsets for the watermarks).
//!
//! Setup (not timed): one topic, `records` records per partition, and every
//! group commits an offset on every partition with a consumer that never
//! joins the group. Both approaches must find the same total lag as the
//! setup committed, or the benchmark fails.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use switchyard_lag::{OffsetReader, Sampler, SamplerConfig, TimeLagMode};

use crate::broker::{client, BenchBroker, BrokerArgs};

const TIMEOUT: Duration = Duration::from_secs(10);

/// Lag of many groups: switchyard-lag vs one request per partition. Needs a
/// broker that lists groups: `--kafka` or `--bootstrap` (not the mock cluster).
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    broker: BrokerArgs,
    /// Number of groups.
    #[arg(long, default_value_t = 200)]
    groups: usize,
    /// Partitions of the topic the groups commit on.
    #[arg(long, default_value_t = 50)]
    partitions: i32,
    /// Records per partition.
    #[arg(long, default_value_t = 20)]
    records: i64,
    /// Repetitions of the switchyard measurements (the best is reported).
    #[arg(long, default_value_t = 3)]
    runs: u32,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    anyhow::ensure!(
        a.groups > 0 && a.partitions > 0 && a.records > 0,
        "groups, partitions and records must be positive"
    );
    anyhow::ensure!(
        a.broker.kafka || a.broker.bootstrap.is_some(),
        "the lag benchmark lists groups, which librdkafka's mock cluster cannot: \
         run it with --kafka or --bootstrap HOST:PORT"
    );
    let broker = BenchBroker::start(&a.broker)?;
    let bootstrap = broker.bootstrap.as_str();
    let topic = format!("bench-lag-{}", broker.run_tag());
    let groups: Vec<String> = (0..a.groups).map(|i| format!("{topic}-g{i}")).collect();
    let setup = Instant::now();
    broker.create_topic(&topic, a.partitions)?;
    fill(bootstrap, &topic, a.partitions, a.records)?;
    let committed = |g: usize, p: i32| (g as i64 * 7 + p as i64) % (a.records + 1);
    commit_all(bootstrap, &topic, &groups, a.partitions, &committed)?;
    let truth: i64 = (0..a.groups)
        .flat_map(|g| (0..a.partitions).map(move |p| (g, p)))
        .map(|(g, p)| a.records - committed(g, p))
        .sum();
    println!(
        "topic {topic} on {}: {} partitions x {} records; {} groups committed on every partition (setup {:.1}s); total lag {truth}",
        broker.describe(),
        a.partitions,
        a.records,
        a.groups,
        setup.elapsed().as_secs_f64()
    );

    let started = Instant::now();
    let (naive_total, clients) = naive(bootstrap, &topic, &groups, a.partitions)?;
    let naive_secs = started.elapsed().as_secs_f64();
    // Closing a client with a group.id takes librdkafka ~100 ms: not part of the measurement.
    std::thread::scope(|s| {
        clients
            .into_iter()
            .for_each(|c| drop(s.spawn(move || drop(c))))
    });
    anyhow::ensure!(
        naive_total == truth,
        "baseline found lag {naive_total}, expected {truth}"
    );

    let mut cold = f64::MAX;
    let mut warm = f64::MAX;
    for _ in 0..a.runs.max(1) {
        let started = Instant::now();
        let reader = OffsetReader::new(bootstrap, TIMEOUT)?;
        let read = reader.fetch(&groups)?;
        cold = cold.min(started.elapsed().as_secs_f64());
        check(&read, &topic, truth)?;
        let started = Instant::now();
        let read = reader.fetch(&groups)?;
        warm = warm.min(started.elapsed().as_secs_f64());
        check(&read, &topic, truth)?;
    }
    let mut sampled = [f64::MAX; 2];
    for (i, mode) in [TimeLagMode::Off, TimeLagMode::Read]
        .into_iter()
        .enumerate()
    {
        let mut sampler =
            Sampler::new(SamplerConfig::new(bootstrap, groups.clone()).with_time_lag(mode))?;
        sampler.sample()?; // clients connected, as in `lag serve` after its first sample
        for _ in 0..a.runs.max(1) {
            let started = Instant::now();
            let report = sampler.sample()?;
            sampled[i] = sampled[i].min(started.elapsed().as_secs_f64());
            let total: i64 = report.groups.iter().map(|g| g.lag).sum();
            anyhow::ensure!(
                total == truth,
                "sampler found lag {total}, expected {truth}"
            );
        }
    }

    let n = a.groups * a.partitions as usize;
    let rows = [
        (
            "baseline: client per group, 1 request per partition".to_string(),
            format!("{}", 3 * n),
            naive_secs,
        ),
        (
            "switchyard-lag, one-shot (clients created)".into(),
            format!("{}", a.groups + 5),
            cold,
        ),
        (
            "switchyard-lag, clients kept (lag serve)".into(),
            format!("{}", a.groups + 5),
            warm,
        ),
        (
            "  + health, report (sample, time lag off)".into(),
            format!("{}", a.groups + 5),
            sampled[0],
        ),
        (
            "  + time lag read at committed offsets".into(),
            format!("{}+fetches", a.groups + 5),
            sampled[1],
        ),
    ];
    let w = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    println!();
    println!(
        "{:<w$}  {:>13}  {:>9}  {:>11}",
        "lag of all groups", "requests", "seconds", "vs baseline"
    );
    for (name, requests, secs) in rows {
        println!(
            "{name:<w$}  {requests:>13}  {secs:>9.3}  {:>10.1}x",
            naive_secs / secs
        );
    }
    Ok(())
}

fn check(read: &[switchyard_lag::GroupOffsets], topic: &str, truth: i64) -> anyhow::Result<()> {
    let total: i64 = read
        .iter()
        .flat_map(|g| g.partitions.iter())
        .filter(|p| p.topic == topic)
        .filter_map(|p| p.lag())
        .sum();
    anyhow::ensure!(
        total == truth,
        "switchyard-lag found lag {total}, expected {truth}"
    );
    Ok(())
}

/// The baseline: a client per group; per partition one OffsetFetch and one watermark request.
/// The clients are returned, to be closed outside the measurement.
fn naive(
    bootstrap: &str,
    topic: &str,
    groups: &[String],
    partitions: i32,
) -> anyhow::Result<(i64, Vec<BaseConsumer>)> {
    let mut total = 0;
    let mut clients = Vec::with_capacity(groups.len());
    for g in groups {
        let c: BaseConsumer = client(bootstrap)
            .set("group.id", g)
            .set("enable.auto.commit", "false")
            .create()?;
        for p in 0..partitions {
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition(topic, p);
            let got = c.committed_offsets(tpl, TIMEOUT)?;
            let (_, high) = c.fetch_watermarks(topic, p, TIMEOUT)?;
            if let Some(Offset::Offset(o)) = got.find_partition(topic, p).map(|e| e.offset()) {
                total += (high - o).max(0);
            }
        }
        clients.push(c);
    }
    Ok((total, clients))
}

fn fill(bootstrap: &str, topic: &str, partitions: i32, records: i64) -> anyhow::Result<()> {
    let producer: BaseProducer = client(bootstrap).set("linger.ms", "5").create()?;
    for p in 0..partitions {
        for i in 0..records {
            let v = i.to_string();
            while producer
                .send(BaseRecord::<str, str>::to(topic).payload(&v).partition(p))
                .is_err()
            {
                producer.poll(Duration::from_millis(5));
            }
        }
    }
    producer.flush(Duration::from_secs(60))?;
    Ok(())
}

/// Every group commits `committed(g, p)` on every partition, from 4 threads, without joining.
fn commit_all(
    bootstrap: &str,
    topic: &str,
    groups: &[String],
    partitions: i32,
    committed: &(dyn Fn(usize, i32) -> i64 + Sync),
) -> anyhow::Result<()> {
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| -> anyhow::Result<()> {
                    loop {
                        let g = next.fetch_add(1, Ordering::Relaxed);
                        let Some(group) = groups.get(g) else {
                            return Ok(());
                        };
                        let c: BaseConsumer = client(bootstrap)
                            .set("group.id", group)
                            .set("enable.auto.commit", "false")
                            .create()?;
                        let mut tpl = TopicPartitionList::new();
                        for p in 0..partitions {
                            tpl.add_partition_offset(topic, p, Offset::Offset(committed(g, p)))?;
                        }
                        c.commit(&tpl, CommitMode::Sync)
                            .with_context(|| format!("commit for {group}"))?;
                    }
                })
            })
            .collect();
        workers.into_iter().try_for_each(|w| {
            w.join()
                .map_err(|_| anyhow::anyhow!("commit thread panicked"))?
        })
    })
}
