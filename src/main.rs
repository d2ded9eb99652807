//! `switchyard`: the command-line front of the Switchyard runtime.
//!
//! A thin binary over the workspace crates: each subcommand lives in its own
//! module (`demo`, `offsets`, `lag`, `ctl`, `deploy`, `config`) and calls
//! the libraries. The benchmarks are a binary of their own,
//! `switchyard-bench` (crates/bench); the end-to-end tests' consumer
//! process is `switchyard-probe` (src/bin/probe.rs, feature `test-probe`).
//! Exit codes: 0 success, 1 failure, 2 usage or configuration error, 3
//! refused (e.g. a reset while the group has members).

use clap::{Parser, Subcommand};

/// Records are allocated on the poll thread and freed on worker threads;
/// glibc's allocator serialises that on an arena lock, mimalloc does not.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod config_cmd;
mod connection_args;
mod ctl;
mod demo;
mod deploy;
mod lag;
mod offsets;

/// Runtime and operations toolkit for Kafka consumer fleets.
///
/// Start with `switchyard demo` (no broker needed), then see
/// `switchyard <command> --help`.
#[derive(Parser)]
#[command(name = "switchyard", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a self-contained demo on an embedded broker (librdkafka's mock cluster), or on a cluster with --bootstrap.
    Demo(demo::Args),
    /// Group offset operations (reset), like kafka-consumer-groups.
    #[command(subcommand)]
    Offsets(offsets::Cmd),
    /// Consumer lag and its health per partition and group, from outside; `lag serve`: a Prometheus exporter.
    Lag(lag::Args),
    /// Fleet-wide pause/resume through the control plane, and the fleet's status.
    #[command(subcommand)]
    Ctl(ctl::Cmd),
    /// Blue/green and canary deployments: drain-verified handoff of partitions between slots.
    #[command(subcommand)]
    Deploy(deploy::Cmd),
    /// Check a configuration file: the key, the value and the reason of every error.
    #[command(subcommand)]
    Config(config_cmd::Cmd),
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
    let code = match cli.command {
        Cmd::Demo(a) => demo::run(a),
        Cmd::Offsets(c) => offsets::run(c),
        Cmd::Lag(a) => lag::run(a),
        Cmd::Ctl(c) => ctl::run(c),
        Cmd::Config(c) => config_cmd::run(c),
        Cmd::Deploy(c) => deploy::run(c),
    };
    std::process::exit(code);
}

/// Print an error chain and return exit code 1.
pub(crate) fn fail(e: anyhow::Error) -> i32 {
    eprintln!("error: {e:#}");
    1
}
