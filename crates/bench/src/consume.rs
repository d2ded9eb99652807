//! `switchyard-bench consume`: a listener with an empty handler against a
//! raw rdkafka `BaseConsumer` loop over the same topic.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use switchyard_config::{ConsumerConfig, OffsetReset};
use switchyard_runtime::deserializer::Bytes;
use switchyard_runtime::record::Record;
use switchyard_runtime::Listener;

use crate::broker::{client, peak_rss_mb, BenchBroker, BrokerArgs};

/// Options of `consume`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    broker: BrokerArgs,
    #[arg(long, default_value_t = 500_000)]
    records: u64,
    #[arg(long, default_value_t = 100)]
    value_bytes: usize,
    #[arg(long, default_value_t = 4)]
    partitions: i32,
    /// Repetitions of each measurement (the best is reported).
    #[arg(long, default_value_t = 3)]
    runs: u32,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let Args {
        broker,
        records,
        value_bytes,
        partitions,
        runs,
    } = a;
    let broker = BenchBroker::start(&broker)?;
    let bootstrap = broker.bootstrap.clone();
    let topic = format!("bench-consume-{}", broker.run_tag());
    broker.fill_topic(&topic, partitions, records, value_bytes, |i| {
        (i % 1024).to_string()
    })?;
    let mb = (records as f64 * value_bytes as f64) / 1e6;
    println!(
        "topic {topic} on {}: {records} records of {value_bytes} B over {partitions} partitions",
        broker.describe()
    );
    let mut raw_best = f64::MAX;
    let mut lis_best = f64::MAX;
    let rt = tokio::runtime::Runtime::new()?;
    for run in 0..runs {
        raw_best = raw_best.min(raw_loop(&bootstrap, &topic, records, run)?);
        lis_best = lis_best.min(rt.block_on(listener_loop(&bootstrap, &topic, records, run))?);
    }
    let rss = peak_rss_mb();
    println!();
    println!(
        "{:<34} {:>12} {:>10} {:>8}",
        "consumer", "records/s", "MB/s", "vs raw"
    );
    for (name, secs) in [
        ("raw rdkafka BaseConsumer loop", raw_best),
        ("switchyard listener, empty handler", lis_best),
    ] {
        println!(
            "{:<34} {:>12.0} {:>10.1} {:>8.2}",
            name,
            records as f64 / secs,
            mb / secs,
            raw_best / secs
        );
    }
    println!("peak RSS of the process: {rss:.1} MB");
    Ok(())
}

/// librdkafka backs off fetching for `fetch.queue.backoff.ms` (1 s) whenever
/// its prefetch queue passed its threshold; both loops use the same short
/// value so that the comparison measures the consumers, not that back-off.
const FETCH_QUEUE_BACKOFF_MS: &str = "10";

fn raw_loop(bootstrap: &str, topic: &str, records: u64, run: u32) -> anyhow::Result<f64> {
    let c: BaseConsumer = client(bootstrap)
        .set("group.id", format!("{topic}-raw-{run}"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("fetch.queue.backoff.ms", FETCH_QUEUE_BACKOFF_MS)
        .create()?;
    c.subscribe(&[topic])?;
    let mut n = 0u64;
    let mut bytes = 0usize;
    let mut started = None;
    let deadline = Instant::now() + Duration::from_secs(120);
    while n < records {
        anyhow::ensure!(Instant::now() < deadline, "raw loop timed out at {n}");
        if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
            started.get_or_insert_with(Instant::now);
            bytes += m.payload().map_or(0, |p| p.len());
            n += 1;
        }
    }
    std::hint::black_box(bytes);
    Ok(started.context("no record")?.elapsed().as_secs_f64())
}

async fn listener_loop(
    bootstrap: &str,
    topic: &str,
    records: u64,
    run: u32,
) -> anyhow::Result<f64> {
    let n = Arc::new(AtomicU64::new(0));
    let first = Arc::new(std::sync::OnceLock::<Instant>::new());
    let (n2, f2) = (n.clone(), first.clone());
    let listener = Listener::builder("bench")
        .config(
            ConsumerConfig::new(bootstrap)
                .with_group(format!("{topic}-listener-{run}"))
                .with_offset_reset(OffsetReset::Earliest)
                .set("fetch.queue.backoff.ms", FETCH_QUEUE_BACKOFF_MS)?,
        )
        .topics([topic])
        .workers(4)
        .handler(Bytes, Bytes, move |r: Record<Vec<u8>, Vec<u8>>| {
            f2.get_or_init(Instant::now);
            std::hint::black_box(r.value.len());
            n2.fetch_add(1, Ordering::Relaxed);
            async { Ok(()) }
        })
        .start()?;
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut last_print = Instant::now();
    while n.load(Ordering::Relaxed) < records {
        if std::env::var_os("SWITCHYARD_BENCH_TRACE").is_some()
            && last_print.elapsed() > Duration::from_millis(100)
        {
            last_print = Instant::now();
            let s = listener.stats();
            eprintln!("fetched {} processed {}", s.fetched, s.processed);
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "listener timed out at {}",
            n.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let secs = first.get().context("no record")?.elapsed().as_secs_f64();
    eprintln!("listener counters: {:?}", listener.stats());
    listener.shutdown().await;
    Ok(secs)
}
