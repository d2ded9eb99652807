//! `switchyard-bench`: Switchyard's benchmarks, each beside a baseline
//! measured in the same run (docs/benchmarks.md has the figures and the
//! commands behind them).
//!
//! Every benchmark takes a broker: `--bootstrap HOST:PORT` (an existing
//! cluster), `--kafka` (a local Apache Kafka broker started for the run), or
//! by default librdkafka's embedded mock cluster. Exit codes: 0 done, 1
//! failed, 2 usage.

use clap::{Parser, Subcommand};

/// Records are allocated on the poll thread and freed on worker threads;
/// glibc's allocator serialises that on an arena lock, mimalloc does not
/// (the same allocator as the `switchyard` binary).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod broker;
mod consume;
mod control;
mod delivery;
mod handoff;
mod java_consumer;
mod lag;
mod parallel;
mod proc_stats;
mod status_footprint;
mod switch;
mod switch_shared;

/// Switchyard's benchmarks: throughput, memory, lag, control plane and
/// deployment switches beside a baseline measured in the same run.
#[derive(Parser)]
#[command(name = "switchyard-bench", about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Listener with an empty handler vs a raw BaseConsumer loop and a Java KafkaConsumer loop.
    Consume(consume::Args),
    /// One Rust row of `consume`, in a process of its own (run by `consume`).
    #[command(hide = true)]
    ConsumeRow(consume::RowArgs),
    /// The worker pool: sequential vs key-ordered vs unordered, IO- and CPU-bound handlers.
    Parallel(parallel::Args),
    /// Memory with a large backlog and a slow handler: peak RSS against the buffer bound.
    Backlog(parallel::BacklogArgs),
    /// Lag of 200 groups x 50 partitions from outside vs one request per partition.
    Lag(lag::Args),
    /// Fleet-wide pause: command to last acknowledgement with 1, 4, 8 instances vs a 5 s-poll baseline.
    Control(control::Args),
    /// Records per second delivered over HTTP to a local application, per record and in batches, vs the in-process empty handler.
    Delivery(delivery::Args),
    /// Blue/green switch with the deploy driver: gap and total, p50/p99, vs stop and deploy.
    Switch(switch::Args),
}

/// Default log filter: warnings, without rdkafka's "Failed to close consumer
/// queue on drop" error, which its Drop prints after every clean close.
const DEFAULT_LOG: &str = "warn,rdkafka::consumer::base_consumer=off";

fn main() {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SWITCHYARD_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG)),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Cmd::Consume(a) => consume::run(a),
        Cmd::ConsumeRow(a) => consume::row(a),
        Cmd::Parallel(a) => parallel::run(a),
        Cmd::Backlog(a) => parallel::backlog(a),
        Cmd::Lag(a) => lag::run(a),
        Cmd::Control(a) => control::run(a),
        Cmd::Switch(a) => switch::run(a),
        Cmd::Delivery(a) => delivery::run(a),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
