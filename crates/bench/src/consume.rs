//! `switchyard-bench consume`: a listener with an empty handler against a
//! raw rdkafka `BaseConsumer` loop and a Java `KafkaConsumer` poll loop over
//! the same topic, each row in a child process of its own (the Rust rows are
//! this binary re-run as the hidden `consume-row`), so that its CPU time and
//! peak resident memory are its alone.

use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::Context;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::ClientConfig;
use switchyard_config::{ConsumerConfig, OffsetReset};
use switchyard_runtime::deserializer::Bytes;
use switchyard_runtime::record::Record;
use switchyard_runtime::Listener;

use crate::broker::{client, BenchBroker, BrokerArgs};
use crate::java_consumer;
use crate::proc_stats::{measure_child, Sample, Window};

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
    /// Repetitions of each measurement (the fastest is reported).
    #[arg(long, default_value_t = 3)]
    runs: u32,
    /// Leave out the Java `KafkaConsumer` row (it needs Java and the jars
    /// of scripts/install-test-deps.sh; it never runs on the mock cluster).
    #[arg(long)]
    no_java: bool,
}

/// Options of the hidden `consume-row`: one Rust row of `consume`, run in a
/// process of its own by `consume`.
#[derive(clap::Args)]
pub struct RowArgs {
    #[arg(long, value_enum)]
    row: RowKind,
    #[arg(long)]
    bootstrap: String,
    #[arg(long)]
    topic: String,
    #[arg(long)]
    group: String,
    #[arg(long)]
    records: u64,
}

/// The Rust rows.
#[derive(clap::ValueEnum, Clone, Copy)]
enum RowKind {
    Raw,
    Listener,
}

impl RowKind {
    fn name(self) -> &'static str {
        match self {
            RowKind::Raw => "raw",
            RowKind::Listener => "listener",
        }
    }
}

/// How long a row's process may take from its start to its result.
const ROW_TIMEOUT: Duration = Duration::from_secs(300);

pub fn run(a: Args) -> anyhow::Result<()> {
    let Args {
        broker,
        records,
        value_bytes,
        partitions,
        runs,
        no_java,
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
    let java = !no_java && !broker.is_mock();
    if !java {
        println!(
            "Java row left out ({})",
            if no_java {
                "--no-java"
            } else {
                "it needs --kafka or --bootstrap"
            }
        );
    }
    let (mut raw, mut lis, mut jav) = (None, None, None);
    for run in 0..runs {
        let group = |row: &str| format!("{topic}-{row}-{run}");
        for (kind, best) in [(RowKind::Raw, &mut raw), (RowKind::Listener, &mut lis)] {
            let sample = rust_row(kind, &bootstrap, &topic, &group(kind.name()), records)?;
            keep_fastest(best, kind.name(), sample, records)?;
        }
        if java {
            let g = group("java");
            let sample = java_consumer::measure(
                &bootstrap,
                &topic,
                &g,
                records,
                &raw_config(&bootstrap, &g),
            )?;
            keep_fastest(&mut jav, "java", sample, records)?;
        }
    }
    let raw = raw.context("no run")?;
    let lis = lis.context("no run")?;
    println!();
    println!(
        "{:<34} {:>12} {:>8} {:>7} {:>7} {:>11} {:>12}",
        "consumer", "records/s", "MB/s", "vs raw", "vs Java", "CPU µs/rec", "peak RSS MB"
    );
    let rows = [
        ("raw rdkafka BaseConsumer loop", Some(raw)),
        ("switchyard listener, empty handler", Some(lis)),
        ("Java KafkaConsumer poll loop", jav),
    ];
    for (name, sample) in rows {
        let Some(s) = sample else { continue };
        let vs_java = jav.map_or(String::from("-"), |j| format!("{:.2}", s.rate() / j.rate()));
        println!(
            "{:<34} {:>12.0} {:>8.1} {:>7.2} {:>7} {:>11.2} {:>12.1}",
            name,
            s.rate(),
            mb / s.secs,
            s.rate() / raw.rate(),
            vs_java,
            s.cpu_us_per_record(),
            s.peak_mb
        );
    }
    if let Some(j) = jav {
        println!(
            "listener / Java: records/s {:.2}, CPU per record {:.2}, peak RSS {:.2}",
            lis.rate() / j.rate(),
            lis.cpu_us_per_record() / j.cpu_us_per_record(),
            lis.peak_mb / j.peak_mb
        );
    }
    println!(
        "each row in a process of its own; window: first record to the last one counted; \
         CPU: user + system of the row's process over the window (/proc/<pid>/stat, clock ticks); \
         peak RSS: its VmHWM; the fastest of {runs} runs, all figures from that run"
    );
    Ok(())
}

/// Keep the faster of `best` and `sample`, after checking that it counted every record.
fn keep_fastest(
    best: &mut Option<Sample>,
    name: &str,
    sample: Sample,
    records: u64,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        sample.records == records,
        "the {name} row counted {} records of {records}",
        sample.records
    );
    if best.is_none_or(|b| sample.secs < b.secs) {
        *best = Some(sample);
    }
    Ok(())
}

/// Run one Rust row in a child process: this binary as `consume-row`.
fn rust_row(
    kind: RowKind,
    bootstrap: &str,
    topic: &str,
    group: &str,
    records: u64,
) -> anyhow::Result<Sample> {
    let mut command = Command::new(std::env::current_exe().context("this binary's path")?);
    command
        .args([
            "consume-row",
            "--row",
            kind.name(),
            "--bootstrap",
            bootstrap,
        ])
        .args(["--topic", topic, "--group", group, "--records"])
        .arg(records.to_string());
    measure_child(kind.name(), command, ROW_TIMEOUT)
}

/// `consume-row`: run one Rust row, print its `ROW` line, and wait for the
/// parent to read this process's peak memory and terminate it.
pub fn row(a: RowArgs) -> anyhow::Result<()> {
    let RowArgs {
        row,
        bootstrap,
        topic,
        group,
        records,
    } = a;
    let mut runtime = None;
    let line = match row {
        RowKind::Raw => raw_loop(&bootstrap, &topic, &group, records)?,
        RowKind::Listener => runtime
            .insert(tokio::runtime::Runtime::new()?)
            .block_on(listener_loop(&bootstrap, &topic, &group, records))?,
    };
    println!("{line}");
    loop {
        std::thread::park();
    }
}

/// librdkafka backs off fetching for `fetch.queue.backoff.ms` (1 s) whenever
/// its prefetch queue passed its threshold; both loops use the same short
/// value so that the comparison measures the consumers, not that back-off.
const FETCH_QUEUE_BACKOFF_MS: &str = "10";

/// The raw loop's configuration (its fetch settings are also the Java row's).
fn raw_config(bootstrap: &str, group: &str) -> ClientConfig {
    let mut c = client(bootstrap);
    c.set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("fetch.queue.backoff.ms", FETCH_QUEUE_BACKOFF_MS);
    c
}

/// The raw row: its `ROW` line.
fn raw_loop(bootstrap: &str, topic: &str, group: &str, records: u64) -> anyhow::Result<String> {
    let c: BaseConsumer = raw_config(bootstrap, group).create()?;
    c.subscribe(&[topic])?;
    let mut n = 0u64;
    let mut bytes = 0usize;
    let mut window = None;
    let deadline = Instant::now() + Duration::from_secs(120);
    while n < records {
        anyhow::ensure!(Instant::now() < deadline, "raw loop timed out at {n}");
        if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
            if window.is_none() {
                window = Some(Window::open()?);
            }
            bytes += m.payload().map_or(0, |p| p.len());
            n += 1;
        }
    }
    let line = window.context("no record")?.close(n)?;
    std::hint::black_box(bytes);
    Ok(line)
}

/// The listener row: its `ROW` line.
async fn listener_loop(
    bootstrap: &str,
    topic: &str,
    group: &str,
    records: u64,
) -> anyhow::Result<String> {
    let n = Arc::new(AtomicU64::new(0));
    let first = Arc::new(OnceLock::<anyhow::Result<Window>>::new());
    let (n2, f2) = (n.clone(), first.clone());
    let listener = Listener::builder("bench")
        .config(
            ConsumerConfig::new(bootstrap)
                .with_group(group)
                .with_offset_reset(OffsetReset::Earliest)
                .set("fetch.queue.backoff.ms", FETCH_QUEUE_BACKOFF_MS)?,
        )
        .topics([topic])
        .workers(4)
        .handler(Bytes, Bytes, move |r: Record<Vec<u8>, Vec<u8>>| {
            f2.get_or_init(Window::open);
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
    let window = first.get().context("no record")?;
    let line = window
        .as_ref()
        .map_err(|e| anyhow::anyhow!("{e:#}"))?
        .close(n.load(Ordering::Relaxed))?;
    eprintln!("listener counters: {:?}", listener.stats());
    listener.shutdown().await;
    Ok(line)
}
