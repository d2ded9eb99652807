//! `switchyard-bench parallel`: the worker pool against a sequential
//! listener, in one run. One partition, 10,000 distinct keys; an IO-bound
//! handler (2 ms sleep) for sequential, key-ordered (16, 64, 256, 1024 workers) and
//! unordered (256); a CPU-bound handler sequential and unordered; and the
//! pool's overhead with an empty handler against the plain listener.
//!
//! The sequential IO-bound run would take 200 s for 100,000 records, so it
//! processes the first `--sequential-sample` records; its rate is what is
//! compared.
//!
//! Each row prints records/s, the process's CPU time per record (every
//! thread) and the poll thread's CPU time per record, each beside its
//! baseline. The empty-handler rows run `--rounds` times, interleaved, and
//! are compared with the plain listener's run of the same round (paired
//! ratios, whose median counts), so that a slow spell of a shared machine
//! hits both sides of a ratio.

use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::Context;
use switchyard_config::{ConsumerConfig, OffsetReset};
use switchyard_runtime::deserializer::Bytes;
use switchyard_runtime::record::Record;
use switchyard_runtime::{Listener, Ordering};

use crate::broker::{peak_rss_mb, BenchBroker, BrokerArgs};

/// Options of `parallel`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    broker: BrokerArgs,
    #[arg(long, default_value_t = 100_000)]
    records: u64,
    #[arg(long, default_value_t = 10_000)]
    keys: u64,
    /// Records the sequential IO-bound run processes.
    #[arg(long, default_value_t = 1_000)]
    sequential_sample: u64,
    /// Handler latency of the IO-bound runs, in ms.
    #[arg(long, default_value_t = 2)]
    io_ms: u64,
    /// Work of the CPU-bound handler (hash rounds per record).
    #[arg(long, default_value_t = 20_000)]
    cpu_rounds: u64,
    /// Runs of the empty-handler rows (interleaved; the median counts).
    #[arg(long, default_value_t = 9)]
    rounds: usize,
    /// Run only the configurations whose name contains this text.
    #[arg(long)]
    only: Option<String>,
}

#[derive(Clone, Copy)]
enum Work {
    Empty,
    Io(Duration),
    Cpu(u64),
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let broker = BenchBroker::start(&a.broker)?;
    let bootstrap = broker.bootstrap.clone();
    let topic = format!("bench-parallel-{}", broker.run_tag());
    let keys = a.keys;
    broker.fill_topic(&topic, 1, a.records, 16, |i| format!("key-{}", i % keys))?;
    println!(
        "topic {topic} on {}: {} records, 1 partition, {} keys",
        broker.describe(),
        a.records,
        a.keys
    );
    let rt = tokio::runtime::Runtime::new()?;
    let io = Work::Io(Duration::from_millis(a.io_ms));
    let cpu = Work::Cpu(a.cpu_rounds);
    let all = a.records;
    let runs: Vec<(&'static str, Ordering, usize, Work, u64)> = vec![
        (
            "empty: plain listener (sequential)",
            Ordering::Partition,
            1,
            Work::Empty,
            all,
        ),
        (
            "empty: pool, key-ordered, 256",
            Ordering::Key,
            256,
            Work::Empty,
            all,
        ),
        (
            "empty: pool, unordered, 256",
            Ordering::Unordered,
            256,
            Work::Empty,
            all,
        ),
        (
            "io: sequential",
            Ordering::Partition,
            1,
            io,
            a.sequential_sample,
        ),
        ("io: key-ordered, 16 workers", Ordering::Key, 16, io, all),
        ("io: key-ordered, 64 workers", Ordering::Key, 64, io, all),
        ("io: key-ordered, 256 workers", Ordering::Key, 256, io, all),
        (
            "io: key-ordered, 1024 workers",
            Ordering::Key,
            1024,
            io,
            all,
        ),
        (
            "io: unordered, 256 workers",
            Ordering::Unordered,
            256,
            io,
            all,
        ),
        ("cpu: sequential", Ordering::Partition, 1, cpu, all / 10),
        (
            "cpu: unordered, 256 workers",
            Ordering::Unordered,
            256,
            cpu,
            all / 10,
        ),
    ];
    // Rounds: the empty-handler rows take a tenth of a second each, so they
    // run `--rounds` times, interleaved, every other round in reverse order;
    // the other rows run once. An empty row is compared with the plain
    // listener's run of the same round (a paired ratio: a slow spell of the
    // machine hits both), and the median of those ratios counts.
    let plain_row = "empty: plain listener (sequential)";
    let mut samples = Samples::default();
    // IO rows: (name, records/s, workers, nominal latency, measured latency)
    let mut limits: Vec<(&'static str, f64, usize, f64, f64)> = Vec::new();
    for round in 0..a.rounds.max(1) {
        let mut order: Vec<usize> = (0..runs.len()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for i in order {
            let (name, ordering, workers, work, n) = &runs[i];
            let empty = matches!(work, Work::Empty);
            if a.only.as_ref().is_some_and(|o| !name.contains(o.as_str())) || (round > 0 && !empty)
            {
                continue;
            }
            let run = i + round * runs.len();
            let m = rt.block_on(measure(
                &bootstrap, &topic, run, *ordering, *workers, *work, *n,
            ))?;
            let rate = *n as f64 / m.secs;
            let cpu_ns = m.cpu * 1e9 / *n as f64;
            let poll_ns = m.poll_cpu * 1e9 / *n as f64;
            eprintln!("{name}: {rate:.0} records/s, {cpu_ns:.0} ns CPU/record, poll thread {poll_ns:.0} ns/record");
            if let Work::Io(t) = work {
                if *workers > 1 {
                    limits.push((*name, rate, *workers, t.as_secs_f64(), m.handler_secs));
                }
            }
            samples.0.push(Sample {
                name,
                round,
                rate,
                cpu: cpu_ns,
                poll: poll_ns,
            });
        }
    }
    println!();
    println!(
        "{:<38} {:>10} {:>8} {:>14} {:>8} {:>10}",
        "configuration", "records/s", "vs base", "CPU ns/record", "vs base", "poll ns/r"
    );
    for name in samples.names() {
        let base = if name.starts_with("io") {
            "io: sequential"
        } else if name.starts_with("cpu") {
            "cpu: sequential"
        } else {
            plain_row
        };
        let (rate, cpu, poll) = samples.medians(name);
        let (vs_rate, vs_cpu) = samples.versus(name, base);
        println!("{name:<38} {rate:>10.0} {vs_rate:>7.2}x {cpu:>14.0} {vs_cpu:>7.2}x {poll:>10.0}");
    }
    println!("baselines: io/cpu rows vs their sequential row; empty rows vs the plain listener");
    println!(
        "empty rows: medians of {} interleaved runs; vs baseline: median of the ratios to the plain listener's run of the same round",
        a.rounds.max(1)
    );
    println!("CPU: the whole process (all threads) from the first record to the last;");
    println!("poll ns/r: the poll thread's CPU per record (the one thread every record passes)");
    println!("peak RSS of the process: {:.1} MB", peak_rss_mb());
    if !limits.is_empty() {
        println!();
        println!(
            "{:<38} {:>10} {:>12} {:>8} {:>12} {:>12} {:>8}",
            "IO-bound: against workers / latency",
            "records/s",
            "limit (nom.)",
            "of it",
            "handler took",
            "limit (real)",
            "of it"
        );
        for (name, rate, workers, nominal, real) in limits {
            let (lim_nominal, lim_real) = (workers as f64 / nominal, workers as f64 / real);
            println!(
                "{name:<38} {rate:>10.0} {lim_nominal:>12.0} {:>7.0}% {:>10.2}ms {lim_real:>12.0} {:>7.0}%",
                100.0 * rate / lim_nominal,
                real * 1e3,
                100.0 * rate / lim_real
            );
        }
        println!("limit (nom.): workers / the handler's nominal latency; limit (real): workers / the mean time its calls took");
    }
    Ok(())
}

/// One run's figures.
struct Sample {
    name: &'static str,
    round: usize,
    /// records/s
    rate: f64,
    /// CPU ns per record, whole process
    cpu: f64,
    /// CPU ns per record, poll thread
    poll: f64,
}

/// Every run's figures.
#[derive(Default)]
struct Samples(Vec<Sample>);

impl Samples {
    /// Configurations in the order they first ran.
    fn names(&self) -> Vec<&'static str> {
        let mut names: Vec<&'static str> = Vec::new();
        for s in &self.0 {
            if !names.contains(&s.name) {
                names.push(s.name);
            }
        }
        names
    }

    fn of<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Sample> {
        self.0.iter().filter(move |s| s.name == name)
    }

    /// Median records/s, CPU ns/record and poll-thread ns/record.
    fn medians(&self, name: &str) -> (f64, f64, f64) {
        (
            median(self.of(name).map(|s| s.rate).collect()),
            median(self.of(name).map(|s| s.cpu).collect()),
            median(self.of(name).map(|s| s.poll).collect()),
        )
    }

    /// `name` against `base` (records/s, CPU): the median of the ratios of
    /// runs of the same round, or the ratio of the medians when no round
    /// has both.
    fn versus(&self, name: &str, base: &str) -> (f64, f64) {
        let pairs: Vec<(f64, f64)> = self
            .of(name)
            .filter_map(|s| {
                let b = self.of(base).find(|b| b.round == s.round)?;
                Some((s.rate / b.rate, s.cpu / b.cpu))
            })
            .collect();
        if pairs.is_empty() {
            let ((r, c, _), (br, bc, _)) = (self.medians(name), self.medians(base));
            return (r / br, c / bc);
        }
        (
            median(pairs.iter().map(|p| p.0).collect()),
            median(pairs.iter().map(|p| p.1).collect()),
        )
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

async fn measure(
    bootstrap: &str,
    topic: &str,
    run: usize,
    ordering: Ordering,
    workers: usize,
    work: Work,
    n: u64,
) -> anyhow::Result<Measured> {
    let done = Arc::new(AtomicU64::new(0));
    let handler_ns = Arc::new(AtomicU64::new(0));
    let h_ns = handler_ns.clone();
    let first = Arc::new(OnceLock::<(Instant, Duration, Duration)>::new());
    let (d, f) = (done.clone(), first.clone());
    let listener = Listener::builder(format!("bench-{run}"))
        .config(
            ConsumerConfig::new(bootstrap)
                .with_group(format!("{topic}-{run}"))
                .with_offset_reset(OffsetReset::Earliest),
        )
        .topics([topic])
        .ordering(ordering)
        .workers(workers)
        .handler(Bytes, Bytes, move |r: Record<Vec<u8>, Vec<u8>>| {
            f.get_or_init(|| (Instant::now(), process_cpu(), poll_thread_cpu()));
            let d = d.clone();
            let h_ns = h_ns.clone();
            async move {
                let started = Instant::now();
                match work {
                    Work::Empty => {}
                    Work::Io(t) => tokio::time::sleep(t).await,
                    Work::Cpu(rounds) => {
                        let mut h = r.offset as u64;
                        for i in 0..rounds {
                            h = h.rotate_left(5) ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
                        }
                        std::hint::black_box(h);
                    }
                }
                h_ns.fetch_add(started.elapsed().as_nanos() as u64, AtomicOrdering::Relaxed);
                d.fetch_add(1, AtomicOrdering::Relaxed);
                Ok(())
            }
        })
        .start()?;
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut last_print = Instant::now();
    while done.load(AtomicOrdering::Relaxed) < n {
        anyhow::ensure!(Instant::now() < deadline, "timed out");
        if std::env::var_os("SWITCHYARD_BENCH_TRACE").is_some()
            && last_print.elapsed() > Duration::from_millis(20)
        {
            last_print = Instant::now();
            let s = listener.stats();
            eprintln!(
                "{:?} fetched {} processed {} backpressure {}",
                first.get().map(|f| f.0.elapsed()),
                s.fetched,
                s.processed,
                s.backpressure_pauses
            );
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let (start, cpu_start, poll_start) = *first.get().context("no record")?;
    let secs = start.elapsed().as_secs_f64();
    let cpu = (process_cpu() - cpu_start).as_secs_f64();
    let poll_cpu = poll_thread_cpu().saturating_sub(poll_start).as_secs_f64();
    tracing::info!(counters = ?listener.stats(), "run {run} done");
    listener.shutdown_within(Duration::from_secs(5)).await;
    let handler_secs = handler_ns.load(AtomicOrdering::Relaxed) as f64
        / 1e9
        / done.load(AtomicOrdering::Relaxed).max(1) as f64;
    Ok(Measured {
        secs,
        handler_secs,
        cpu,
        poll_cpu,
    })
}

/// One run: wall-clock seconds and CPU seconds of the whole process (every
/// thread: poll thread, workers, librdkafka's) from the first record
/// handled to the last.
struct Measured {
    secs: f64,
    /// Mean time a handler call took (the IO-bound rows' sleep as it
    /// really lasted: tokio's timer rounds a 2 ms sleep up to its 1 ms
    /// ticks), seconds.
    handler_secs: f64,
    cpu: f64,
    /// CPU seconds of the listener's poll thread alone (the one thread every
    /// record passes through).
    poll_cpu: f64,
}

/// CPU time of the process's poll threads (named `sy-poll-*`), from the
/// kernel's per-thread accounting.
fn poll_thread_cpu() -> Duration {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Duration::ZERO;
    };
    tasks
        .flatten()
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.starts_with("sy-poll"))
        })
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .map(Duration::from_nanos)
        .sum()
}

/// CPU time used by the process so far (user and system, all threads).
fn process_cpu() -> Duration {
    // SAFETY: getrusage fills the struct it is given.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Options of `backlog`.
#[derive(clap::Args)]
pub struct BacklogArgs {
    #[command(flatten)]
    broker: BrokerArgs,
    #[arg(long, default_value_t = 2_000_000)]
    records: u64,
    /// Buffer bound of the listener, in records.
    #[arg(long, default_value_t = 10_000)]
    buffer_records: usize,
    /// How long the slow handler consumes.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
}

/// A backlog of `records` small records, consumed for a while by a slow
/// handler (1 ms, key-ordered, 16 workers): the process's peak RSS beside its
/// RSS before the listener started (the baseline: producer and broker client
/// already loaded).
pub fn backlog(a: BacklogArgs) -> anyhow::Result<()> {
    let broker = BenchBroker::start(&a.broker)?;
    let bootstrap = broker.bootstrap.clone();
    let topic = format!("bench-backlog-{}", broker.run_tag());
    broker.fill_topic(&topic, 4, a.records, 16, |i| format!("key-{}", i % 1000))?;
    println!(
        "topic {topic} on {}: {} records, 4 partitions",
        broker.describe(),
        a.records
    );
    let before = peak_rss_mb();
    let rt = tokio::runtime::Runtime::new()?;
    let (processed, max_buffered) = rt.block_on(async {
        let done = Arc::new(AtomicU64::new(0));
        let d = done.clone();
        let listener = Listener::builder("backlog")
            .config(
                ConsumerConfig::new(&bootstrap)
                    .with_group(topic.clone())
                    .with_offset_reset(OffsetReset::Earliest),
            )
            .topics([topic.as_str()])
            .ordering(Ordering::Key)
            .workers(16)
            .buffer(a.buffer_records, 64 << 20)
            .handler(Bytes, Bytes, move |_r: Record<Vec<u8>, Vec<u8>>| {
                let d = d.clone();
                async move {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    d.fetch_add(1, AtomicOrdering::Relaxed);
                    Ok(())
                }
            })
            .start()?;
        let until = Instant::now() + Duration::from_secs(a.seconds);
        let mut max_buffered = 0;
        while Instant::now() < until {
            let snap = listener.snapshot().await?;
            max_buffered = max_buffered.max(snap.waiting_or_in_flight());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        listener.shutdown_within(Duration::from_secs(5)).await;
        anyhow::Ok((done.load(AtomicOrdering::Relaxed), max_buffered))
    })?;
    let peak = peak_rss_mb();
    println!();
    println!("{:<44} {:>12}", "measure", "value");
    println!("{:<44} {:>12}", "backlog (records)", a.records);
    println!("{:<44} {:>12}", "processed in the window", processed);
    println!("{:<44} {:>12}", "buffer bound (records)", a.buffer_records);
    println!(
        "{:<44} {:>12}",
        "most records waiting or in flight (sampled)", max_buffered
    );
    println!(
        "{:<44} {:>10.1} MB",
        "RSS before the listener (baseline)", before
    );
    println!("{:<44} {:>10.1} MB", "peak RSS while consuming", peak);
    Ok(())
}
