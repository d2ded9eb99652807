//! `switchyard demo`: the whole path in one run (`switchyard-demo`), on an
//! embedded broker by default or on a cluster with `--bootstrap`.

use crate::outcome::Outcome;

/// Options of the demo.
#[derive(clap::Args)]
pub struct Args {
    /// Records to produce and consume in the first part (the blue/green
    /// part produces at --deploy-rate until its handoffs are done).
    #[arg(long, default_value_t = 200_000)]
    records: u64,
    /// Partitions of the demo topics.
    #[arg(long, default_value_t = 4)]
    partitions: i32,
    /// Records per second produced during the blue/green phase.
    #[arg(long, default_value_t = 3000)]
    deploy_rate: u32,
    /// Run on this cluster instead of an embedded broker (topics, groups
    /// and application named per run, so that it can run again).
    #[arg(long, value_name = "HOST:PORT")]
    bootstrap: Option<String>,
}

pub fn run(a: Args) -> Outcome {
    let options = switchyard_demo::Options {
        records: a.records,
        partitions: a.partitions,
        deploy_rate: a.deploy_rate,
        bootstrap: a.bootstrap,
    };
    Ok(switchyard_demo::run(options)?)
}
