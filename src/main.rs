//! `switchyard`: the command-line front of the Switchyard runtime.
//!
//! A thin binary over the workspace crates: each subcommand lives in its own
//! module (`demo`, `offsets`, `lag`, `ctl`, `deploy`, `config`, `run`) and calls
//! the libraries. The benchmarks are a binary of their own,
//! `switchyard-bench` (crates/bench); the end-to-end tests' consumer
//! process is `switchyard-probe` (src/bin/probe.rs, feature `test-probe`).
//!
//! Every command returns an [`outcome::Outcome`]; [`outcome::exit_code`]
//! alone turns it into the exit code: 0 done, 1 failed, 2 usage, 3 refused.

use clap::{Parser, Subcommand};

use crate::outcome::{Failure, Outcome};

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
mod logging;
mod offsets;
mod outcome;
mod run;

/// Runtime and operations toolkit for Kafka consumer fleets.
///
/// Start with `switchyard demo` (no broker needed), then see
/// `switchyard <command> --help`.
#[derive(Parser)]
#[command(name = "switchyard", version, about, long_about = None)]
struct Cli {
    /// Log format on stderr: `text`, or `json` (one object per line). The
    /// filter is `SWITCHYARD_LOG` (e.g. `info`, `switchyard_control=debug`).
    #[arg(
        long,
        global = true,
        value_enum,
        env = "SWITCHYARD_LOG_FORMAT",
        default_value_t
    )]
    log_format: logging::LogFormat,
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
    /// Run one instance of an application in any language: deliver its listeners' records over HTTP or to a child process (--config app.toml).
    Run(run::Args),
}

fn main() {
    let outcome = match Cli::try_parse() {
        Ok(cli) => {
            logging::init(cli.log_format);
            run(cli.command)
        }
        // clap prints its own message (help and version on stdout: done)
        Err(e) => {
            let _ = e.print();
            if e.use_stderr() {
                Err(Failure::Usage(String::new()))
            } else {
                Ok(())
            }
        }
    };
    outcome::report(&outcome);
    std::process::exit(outcome::exit_code(&outcome));
}

fn run(command: Cmd) -> Outcome {
    match command {
        Cmd::Demo(a) => demo::run(a),
        Cmd::Offsets(c) => offsets::run(c),
        Cmd::Lag(a) => lag::run(a),
        Cmd::Ctl(c) => ctl::run(c),
        Cmd::Config(c) => config_cmd::run(c),
        Cmd::Deploy(c) => deploy::run(c),
        Cmd::Run(a) => run::run(a),
    }
}
