//! `switchyard deploy`: blue/green and canary deployments of consumers with a
//! drain-verified handoff. Strategy, chosen at `init`: separate groups (slot
//! `s` consumes as group `<group>-<s>`) or one shared group `<group>` that
//! the standby slot joins only at the switch; see docs/deploy.md. This
//! module parses, calls `switchyard-deploy` (which decides) and prints.
//!
//! Refused (exit 3): nothing to move, a handoff in progress, another
//! driver holding the lease, no canary...;
//! failed (exit 1): also a handoff rolled back after a phase timed out, and
//! a watched canary that was unhealthy and aborted by itself.

use std::io::Write;
use std::time::Duration;

use switchyard_config::duration;
use switchyard_control::compacted_topic::ensure_topic_with;
use switchyard_control::kafka_store::KafkaStore;
use switchyard_control::SharedStore;
use switchyard_deploy::view::{SeparateStatus, SharedStatus, Status};
use switchyard_deploy::{CanaryWatch, DeployError, Driver, Strategy};
use switchyard_lag::report::render_table;

use crate::outcome::{Failure, Outcome};

/// Where the deployment lives.
#[derive(clap::Args, Clone)]
pub struct Common {
    #[command(flatten)]
    plane: crate::ctl::Plane,
    /// Listener id (default: the only listener the application's
    /// deployment names; `init` needs it).
    #[arg(long)]
    listener: Option<String>,
    /// Group id: with separate groups, the base (slot `s` consumes as
    /// `<group>-<s>`); with a shared group, the group itself.
    #[arg(long)]
    group: String,
    /// Longest wait of one handoff phase.
    #[arg(long, value_parser = duration::parse, default_value = "30s", value_name = "DURATION")]
    phase_timeout: Duration,
    /// `--phase-timeout` in milliseconds (kept for existing scripts).
    #[arg(long, hide = true, conflicts_with = "phase_timeout")]
    phase_timeout_ms: Option<u64>,
    /// Who (default: $USER).
    #[arg(long)]
    issuer: Option<String>,
    /// How long the driver's lease on the handoff lasts without renewal
    /// (renewed every third while the command runs); a killed driver's
    /// lease blocks `recover` this long.
    #[arg(long, value_parser = duration::parse, default_value = "15s", value_name = "DURATION")]
    lease: Duration,
    /// `--lease` in milliseconds (kept for existing scripts).
    #[arg(long, hide = true, conflicts_with = "lease")]
    lease_ms: Option<u64>,
}

/// A duration flag, or its older form in milliseconds when that is given.
fn or_ms(d: Duration, ms: Option<u64>) -> Duration {
    ms.map_or(d, Duration::from_millis)
}

/// `deploy` subcommands.
#[derive(clap::Subcommand)]
pub enum Cmd {
    /// Give every partition of the topics to one slot (the first deployment).
    Init {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        slot: String,
        #[arg(long, value_delimiter = ',', required = true)]
        topics: Vec<String>,
        /// separate: a group per slot, standby subscribed and paused;
        /// shared: one group, the standby slot stays out until the switch.
        #[arg(long, value_enum, default_value_t = StrategyArg::Separate)]
        strategy: StrategyArg,
    },
    /// Roll back what an interrupted `deploy` left behind (frozen
    /// partitions, two joined slots).
    Recover {
        #[command(flatten)]
        common: Common,
        /// Recover even while another driver's lease has not expired (it
        /// may still be running: its next write then fails); says whose
        /// lease it overrides.
        #[arg(long)]
        force: bool,
    },
    /// Slots, their instances, partition ownership, lag per slot.
    Status {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        json: bool,
    },
    /// Hand every partition over to a slot.
    Switch {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        to: String,
    },
    /// Hand every partition back to the previous slot.
    Rollback {
        #[command(flatten)]
        common: Common,
    },
    /// Hand some partitions over to a slot.
    Canary {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        to: String,
        /// Partitions (of --topic, or of the listener's only topic).
        #[arg(long, value_delimiter = ',', required = true)]
        partitions: Vec<i32>,
        #[arg(long)]
        topic: Option<String>,
        /// Watch the canary this long after the handoff and abort it by
        /// itself when it is unhealthy (0s: do not watch).
        #[arg(long, value_parser = duration::parse, default_value = "0s", value_name = "DURATION")]
        watch: Duration,
        /// `--watch` in milliseconds (kept for existing scripts).
        #[arg(long, hide = true, conflicts_with = "watch")]
        watch_ms: Option<u64>,
        /// Unhealthy: the canary group's lag on its partitions exceeds this.
        #[arg(long, default_value_t = 10_000)]
        max_lag: i64,
        /// Unhealthy: a canary partition does not run on a live canary instance this long.
        #[arg(long, value_parser = duration::parse, default_value = "5s", value_name = "DURATION")]
        grace: Duration,
        /// `--grace` in milliseconds (kept for existing scripts).
        #[arg(long, hide = true, conflicts_with = "grace")]
        grace_ms: Option<u64>,
    },
    /// Move the rest to the canary's slot.
    Promote {
        #[command(flatten)]
        common: Common,
    },
    /// Move the canary's partitions back.
    Abort {
        #[command(flatten)]
        common: Common,
    },
}

/// How slots share the work.
#[derive(clap::ValueEnum, Clone, Copy, PartialEq, Eq)]
pub enum StrategyArg {
    /// A consumer group per slot.
    Separate,
    /// One consumer group for every slot.
    Shared,
}

pub fn run(cmd: Cmd) -> Outcome {
    run_inner(cmd).map_err(|e| match e {
        DeployError::Refused(r) => Failure::Refused(r),
        DeployError::Failed(e) => e.into(),
        e @ (DeployError::RolledBack(_) | DeployError::CanaryAborted { .. }) => {
            Failure::Failed(e.into())
        }
    })
}

fn say(line: String) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn driver(c: &Common) -> anyhow::Result<Driver> {
    let connection = c.plane.kafka.connection()?;
    let options = c.plane.topic_options();
    if c.plane.no_create_topics {
        // the driver's status tail would create a missing status topic
        ensure_topic_with(&connection, &c.plane.status_topic, options)?;
    }
    let store: SharedStore = KafkaStore::open(connection, &c.plane.control_topic, options)?;
    let issuer = c
        .issuer
        .clone()
        .or_else(|| std::env::var("USER").ok())
        .map(|u| format!("deploy:{u}"))
        .unwrap_or_else(|| "deploy".into());
    let lease = or_ms(c.lease, c.lease_ms);
    anyhow::ensure!(
        lease >= Duration::from_millis(300),
        crate::outcome::UsageError(format!(
            "--lease must be at least 300ms, not {}",
            duration::format(lease)
        ))
    );
    Ok(Driver::start(
        c.plane.kafka.connection()?,
        store,
        &c.plane.status_topic,
        &c.plane.app,
        &c.group,
        issuer,
        or_ms(c.phase_timeout, c.phase_timeout_ms),
    )?
    .with_lease_ttl(lease))
}

/// Run `f` on the driver of `common`, then stop its status tail.
fn with_driver<T>(
    common: &Common,
    f: impl FnOnce(&Driver, &str) -> Result<T, DeployError>,
) -> Result<T, DeployError> {
    let d = driver(common)?;
    let r = d
        .listener(common.listener.as_deref())
        .and_then(|l| f(&d, &l));
    d.tail.stop();
    r
}

fn run_inner(cmd: Cmd) -> Result<(), DeployError> {
    match cmd {
        Cmd::Init {
            common,
            slot,
            topics,
            strategy,
        } => {
            let strategy = match strategy {
                StrategyArg::Separate => Strategy::Separate,
                StrategyArg::Shared => Strategy::Shared,
            };
            if common.listener.is_none() {
                return Err(DeployError::Refused(
                    "deploy init needs --listener: the id of the listener the instances run".into(),
                ));
            }
            let i = with_driver(&common, |d, l| d.init(l, &slot, &topics, strategy))?;
            say(match i.strategy {
                Strategy::Shared => format!(
                    "init: wrote v{}, shared group {}: only {slot} joined",
                    i.version, common.group
                ),
                Strategy::Separate => format!(
                    "init: wrote v{}, {} partitions owned by {slot}",
                    i.version, i.partitions
                ),
            });
        }
        Cmd::Status { common, json } => {
            let s = with_driver(&common, |d, l| d.status(l))?;
            print_status(&s, json)?;
        }
        Cmd::Switch { common, to } => {
            with_driver(&common, |d, l| d.switch(l, &to, &mut say))?;
        }
        Cmd::Rollback { common } => {
            with_driver(&common, |d, l| d.rollback(l, &mut say))?;
        }
        Cmd::Recover { common, force } => {
            if with_driver(&common, |d, l| d.recover_listener(l, force, &mut say))?.is_none() {
                say("recover: nothing to do (no frozen partition, one joined slot)".into());
            }
        }
        Cmd::Canary {
            common,
            to,
            partitions,
            topic,
            watch,
            watch_ms,
            max_lag,
            grace,
            grace_ms,
        } => {
            let watch = CanaryWatch {
                watch: or_ms(watch, watch_ms),
                max_lag,
                grace: or_ms(grace, grace_ms),
            };
            with_driver(&common, |d, l| {
                d.canary(l, &to, topic.as_deref(), &partitions, Some(watch), &mut say)
            })?;
        }
        Cmd::Promote { common } => {
            with_driver(&common, |d, l| d.promote(l, &mut say))?;
        }
        Cmd::Abort { common } => {
            with_driver(&common, |d, l| d.abort(l, &mut say))?;
        }
    }
    Ok(())
}

fn print_status(s: &Status, json: bool) -> anyhow::Result<()> {
    if json {
        say(serde_json::to_string_pretty(s)?);
        return Ok(());
    }
    match s {
        Status::Separate(s) => print_separate(s),
        Status::Shared(s) => print_shared(s),
    }
    Ok(())
}

fn print_separate(s: &SeparateStatus) {
    say(format!(
        "app {} desired v{} {:?}",
        s.app, s.version, s.deploy
    ));
    if !s.frozen.is_empty() {
        say(format!("owned by nobody (frozen): {}", s.frozen.join(",")));
    }
    let rows: Vec<Vec<String>> = s
        .slots
        .iter()
        .map(|v| {
            vec![
                v.slot.clone(),
                v.group.clone(),
                v.lag.to_string(),
                v.owns.join(","),
                v.instances.join(" "),
            ]
        })
        .collect();
    let header = ["SLOT", "GROUP", "LAG", "OWNS", "INSTANCES"];
    print!("{}", render_table(&header, &rows, &[false, false, true]));
}

fn print_shared(s: &SharedStatus) {
    say(format!(
        "app {} desired v{} shared group {} lag {} {:?}",
        s.app, s.version, s.group, s.lag, s.deploy
    ));
    let rows: Vec<Vec<String>> = s
        .slots
        .iter()
        .map(|v| {
            vec![
                v.slot.clone(),
                if v.joined { "yes" } else { "no" }.to_string(),
                v.holds.join(","),
                v.instances.join(" "),
            ]
        })
        .collect();
    let header = ["SLOT", "JOINED", "HOLDS", "INSTANCES"];
    print!("{}", render_table(&header, &rows, &[]));
}
