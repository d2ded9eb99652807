//! `switchyard bench`: throughput and memory beside a baseline measured in the
//! same run.
//!
//! `bench consume`: a listener with an empty handler against a raw rdkafka
//! `BaseConsumer` loop over the same topic.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::ClientConfig;
use switchyard_config::{ConsumerConfig, OffsetReset};
use switchyard_runtime::deserializer::Bytes;
use switchyard_runtime::record::Record;
use switchyard_runtime::Listener;

/// Benchmarks.
#[derive(clap::Subcommand)]
pub enum Cmd {
    /// Listener with an empty handler vs a raw BaseConsumer loop.
    Consume {
        /// Bootstrap servers; default: an embedded mock cluster.
        #[arg(long)]
        bootstrap: Option<String>,
        #[arg(long, default_value_t = 500_000)]
        records: u64,
        #[arg(long, default_value_t = 100)]
        value_bytes: usize,
        #[arg(long, default_value_t = 4)]
        partitions: i32,
        /// Repetitions of each measurement (the best is reported).
        #[arg(long, default_value_t = 3)]
        runs: u32,
    },
    /// The worker pool: sequential vs key-ordered vs unordered, IO- and CPU-bound handlers.
    Parallel(crate::bench_parallel::Args),
    /// Memory with a large backlog and a slow handler: peak RSS against the buffer bound.
    Backlog(crate::bench_parallel::BacklogArgs),
    /// Lag of 200 groups x 50 partitions from outside vs one request per partition.
    Lag(crate::bench_lag::Args),
    /// Fleet-wide pause: command to last acknowledgement with 1, 4, 8 instances vs a 5 s-poll baseline.
    Control(crate::bench_control::Args),
    /// Blue/green switch with the deploy driver: gap and total, p50/p99, vs stop and deploy.
    Switch(crate::bench_switch::Args),
}

pub fn run(cmd: Cmd) -> i32 {
    let result = match cmd {
        Cmd::Consume {
            bootstrap,
            records,
            value_bytes,
            partitions,
            runs,
        } => consume(bootstrap, records, value_bytes, partitions, runs),
        Cmd::Parallel(a) => crate::bench_parallel::run(a),
        Cmd::Backlog(a) => crate::bench_parallel::backlog(a),
        Cmd::Lag(a) => crate::bench_lag::run(a),
        Cmd::Control(a) => crate::bench_control::run(a),
        Cmd::Switch(a) => crate::bench_switch::run(a),
    };
    match result {
        Ok(()) => 0,
        Err(e) => crate::fail(e),
    }
}

/// The given broker, or an embedded mock cluster when `None`.
pub fn broker(bootstrap: Option<String>) -> anyhow::Result<BenchBroker> {
    Ok(match bootstrap {
        Some(bootstrap) => BenchBroker {
            bootstrap,
            mock: None,
        },
        None => {
            let cluster = MockCluster::new(1)?;
            BenchBroker {
                bootstrap: cluster.bootstrap_servers(),
                mock: Some(cluster),
            }
        }
    })
}

/// A broker to benchmark against: a given one, or an embedded mock cluster.
pub struct BenchBroker {
    pub bootstrap: String,
    mock: Option<MockCluster<'static, rdkafka::producer::DefaultProducerContext>>,
}

impl BenchBroker {
    /// Create `topic` and fill it with `records` records of `value_bytes`
    /// bytes, keys `key_of(i)`, spread round robin over the partitions.
    pub fn fill_topic(
        &self,
        topic: &str,
        partitions: i32,
        records: u64,
        value_bytes: usize,
        key_of: impl Fn(u64) -> String,
    ) -> anyhow::Result<()> {
        match &self.mock {
            Some(m) => m.create_topic(topic, partitions, 1)?,
            None => create_topic(&self.bootstrap, topic, partitions)?,
        }
        fill(
            &self.bootstrap,
            topic,
            partitions,
            records,
            value_bytes,
            key_of,
        )
    }
}

fn fill(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    records: u64,
    value_bytes: usize,
    key_of: impl Fn(u64) -> String,
) -> anyhow::Result<()> {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "20")
        .set("batch.num.messages", "10000")
        .create()?;
    let payload = vec![b'x'; value_bytes];
    for i in 0..records {
        let key = key_of(i);
        while producer
            .send(
                BaseRecord::to(topic)
                    .key(&key)
                    .payload(&payload)
                    .partition((i % partitions as u64) as i32),
            )
            .is_err()
        {
            producer.poll(Duration::from_millis(5));
        }
    }
    producer.flush(Duration::from_secs(120))?;
    Ok(())
}

fn consume(
    bootstrap: Option<String>,
    records: u64,
    value_bytes: usize,
    partitions: i32,
    runs: u32,
) -> anyhow::Result<()> {
    let broker = broker(bootstrap)?;
    let bootstrap = broker.bootstrap.clone();
    let topic = format!("bench-consume-{}", std::process::id());
    broker.fill_topic(&topic, partitions, records, value_bytes, |i| {
        (i % 1024).to_string()
    })?;
    let mb = (records as f64 * value_bytes as f64) / 1e6;
    println!("topic {topic}: {records} records of {value_bytes} B over {partitions} partitions");
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

/// Create `topic` through the admin API.
pub(crate) fn create_topic(bootstrap: &str, topic: &str, partitions: i32) -> anyhow::Result<()> {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    let admin: AdminClient<_> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let res = rt.block_on(admin.create_topics(
        [&NewTopic::new(
            topic,
            partitions,
            TopicReplication::Fixed(1),
        )],
        &AdminOptions::new(),
    ))?;
    for r in res {
        r.map_err(|(t, e)| anyhow::anyhow!("create {t}: {e}"))?;
    }
    Ok(())
}

/// librdkafka backs off fetching for `fetch.queue.backoff.ms` (1 s) whenever
/// its prefetch queue passed its threshold; both loops use the same short
/// value so that the comparison measures the consumers, not that back-off.
const FETCH_QUEUE_BACKOFF_MS: &str = "10";

fn raw_loop(bootstrap: &str, topic: &str, records: u64, run: u32) -> anyhow::Result<f64> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set(
            "group.id",
            format!("bench-raw-{}-{run}", std::process::id()),
        )
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
                .with_group(format!("bench-listener-{}-{run}", std::process::id()))
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

/// Peak resident set size of this process (VmHWM), in MB.
pub fn peak_rss_mb() -> f64 {
    switchyard_testkit::memory::peak_resident_mb()
}
