//! `switchyard ctl`: the operator's CLI of the control plane.
//!
//! `ctl pause|resume` writes the desired state (compare-and-set on the Kafka
//! control topic, or Redis with `--redis`), then waits for every live
//! instance of the application to acknowledge it on the status topic
//! (applied version >= the written one and, for a pause, every matching
//! partition paused), one progress line per instance. `ctl status` prints
//! the fleet view as a table or `--json`.
//!
//! Done when every live instance acknowledged; refused on a stale
//! `--expect-version`; failed on a timeout (the instances that did not
//! acknowledge are named).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use switchyard_config::duration;
use switchyard_control::command::{Action, BindingCommand};
use switchyard_control::compacted_topic::TopicOptions;
use switchyard_control::kafka_store::KafkaStore;
use switchyard_control::model::now_ms;
use switchyard_control::redis_store::RedisStore;
use switchyard_control::status::fleet_view;
use switchyard_control::status_topic::StatusTail;
use switchyard_control::{ControlError, SharedStore};
use switchyard_lag::report::render_table;

use crate::connection_args::ConnectionArgs;
use crate::outcome::{Failure, Outcome, UsageError};

/// Where an application's control plane lives: the arguments of `ctl` and
/// `deploy`.
#[derive(clap::Args, Clone)]
pub struct Plane {
    /// The cluster (the status topic, and the control topic unless `ctl --redis`).
    #[command(flatten)]
    pub kafka: ConnectionArgs,
    /// Application.
    #[arg(long)]
    pub app: String,
    #[arg(long, default_value = "switchyard.control")]
    pub control_topic: String,
    #[arg(long, default_value = "switchyard.status")]
    pub status_topic: String,
    /// Never create the control and status topics (created ahead): a
    /// missing one is an error that names it.
    #[arg(long)]
    pub no_create_topics: bool,
}

impl Plane {
    /// Whether a missing control or status topic may be created.
    pub fn topic_options(&self) -> TopicOptions {
        TopicOptions {
            create: !self.no_create_topics,
        }
    }
}

/// Where the control plane lives, and its store.
#[derive(clap::Args, Clone)]
pub struct Common {
    #[command(flatten)]
    plane: Plane,
    /// Use the Redis store at this URL instead of the control topic.
    #[arg(long)]
    redis: Option<String>,
}

/// A pause or resume.
#[derive(clap::Args)]
pub struct Change {
    #[command(flatten)]
    common: Common,
    /// Listener id.
    #[arg(long)]
    listener: String,
    /// Topic (default: the whole listener).
    #[arg(long)]
    topic: Option<String>,
    /// Partition (needs --topic).
    #[arg(long)]
    partition: Option<i32>,
    #[arg(long)]
    reason: Option<String>,
    /// Who (default: $USER).
    #[arg(long)]
    issuer: Option<String>,
    /// A pause that resumes by itself after this long (e.g. `15m`).
    #[arg(long, value_parser = duration::parse, value_name = "DURATION")]
    expires_in: Option<Duration>,
    /// `--expires-in` in milliseconds (kept for existing scripts).
    #[arg(long, hide = true, conflicts_with = "expires_in")]
    expires_in_ms: Option<u64>,
    /// Refuse unless the current desired version is this one.
    #[arg(long)]
    expect_version: Option<u64>,
    /// How long to wait for the acknowledgements (e.g. `30s`, `2m`).
    #[arg(long, value_parser = duration::parse, default_value = "30s", value_name = "DURATION")]
    timeout: Duration,
    /// `--timeout` in milliseconds (kept for existing scripts).
    #[arg(long, hide = true)]
    timeout_ms: Option<u64>,
}

impl Change {
    /// How long to wait for the acknowledgements.
    fn timeout(&self) -> Duration {
        self.timeout_ms.map_or(self.timeout, Duration::from_millis)
    }

    /// After how long the pause resumes by itself, in milliseconds.
    fn expires_in_ms(&self) -> Option<u64> {
        self.expires_in_ms.or_else(|| {
            self.expires_in
                .map(|d| d.as_millis().min(u64::MAX as u128) as u64)
        })
    }
}

/// `ctl` subcommands.
#[derive(clap::Subcommand)]
pub enum Cmd {
    /// Pause a listener, topic or partition on every instance and wait for the acknowledgements.
    Pause(Change),
    /// Resume a listener, topic or partition on every instance and wait for the acknowledgements.
    Resume(Change),
    /// The fleet: per instance slot, partitions, in-flight, applied version, converged.
    Status {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        json: bool,
    },
}

pub fn run(cmd: Cmd) -> Outcome {
    let result = match cmd {
        Cmd::Pause(c) => change(c, Action::Pause),
        Cmd::Resume(c) => change(c, Action::Resume),
        Cmd::Status { common, json } => status(common, json),
    };
    result.map_err(|e| match e.downcast_ref::<ControlError>() {
        Some(ControlError::Conflict { .. }) => Failure::Refused(e.to_string()),
        _ => e.into(),
    })
}

fn store(c: &Common) -> anyhow::Result<SharedStore> {
    Ok(match &c.redis {
        Some(url) => RedisStore::new(url)?,
        None => KafkaStore::open(
            c.plane.kafka.connection()?,
            &c.plane.control_topic,
            c.plane.topic_options(),
        )?,
    })
}

fn caught_up(tail: &StatusTail) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !tail.caught_up() {
        anyhow::ensure!(Instant::now() < deadline, "cannot read the status topic");
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

fn change(c: Change, action: Action) -> anyhow::Result<()> {
    let cmd = BindingCommand {
        listener: c.listener.clone(),
        action,
        topic: c.topic.clone(),
        partition: c.partition,
        reason: c.reason.clone(),
        issuer: c
            .issuer
            .clone()
            .or_else(|| std::env::var("USER").ok().map(|u| format!("cli:{u}"))),
        expires_in_ms: c.expires_in_ms(),
    };
    cmd.validate().map_err(|e| UsageError(e.to_string()))?;
    let tail = StatusTail::open(
        c.common.plane.kafka.connection()?,
        &c.common.plane.status_topic,
        c.common.plane.topic_options(),
    )?;
    let st = store(&c.common)?;
    let written = st.write(
        &c.common.plane.app,
        c.expect_version,
        cmd.issuer.as_deref(),
        &|s| cmd.apply(s, now_ms()),
    )?;
    let v = written.version;
    // a timed pause that has expired by the time its status is read was
    // applied and is over: the version applied is its acknowledgement
    let expires_at = match cmd.action {
        Action::Pause => written
            .pauses
            .iter()
            .find(|p| {
                p.listener == cmd.listener && p.topic == cmd.topic && p.partition == cmd.partition
            })
            .and_then(|p| p.expires_at_ms),
        Action::Resume => None,
    };
    println!(
        "wrote version {v} of {} ({})",
        c.common.plane.app,
        st.describe()
    );
    caught_up(&tail)?;
    let live: Vec<String> = tail
        .latest()
        .values()
        .filter(|s| s.app == c.common.plane.app && !s.is_gone(now_ms()))
        .map(|s| s.instance.clone())
        .collect();
    if live.is_empty() {
        println!("no live instance of {}", c.common.plane.app);
        tail.stop();
        return Ok(());
    }
    let mp = MultiProgress::with_draw_target(indicatif::ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template("{spinner} {prefix:<24} {msg}").expect("template");
    let bars: BTreeMap<String, ProgressBar> = live
        .iter()
        .map(|i| {
            let b = mp.add(ProgressBar::new_spinner());
            b.set_style(style.clone());
            b.set_prefix(i.clone());
            b.set_message(format!("waiting for version {v}"));
            b.enable_steady_tick(Duration::from_millis(100));
            (i.clone(), b)
        })
        .collect();
    let started = Instant::now();
    let deadline = started + c.timeout();
    let mut pending: Vec<String> = live.clone();
    while !pending.is_empty() && Instant::now() < deadline {
        let latest = tail.latest();
        pending.retain(|i| {
            let bar = &bars[i];
            match latest.get(i) {
                None => {
                    bar.finish_with_message("stopped (status removed)");
                    println!("{i}: stopped");
                    false
                }
                Some(s)
                    if s.acknowledges(&cmd, v)
                        || (s.applied_version >= v
                            && expires_at.is_some_and(|e| now_ms() >= e)) =>
                {
                    let committed: Vec<String> = s
                        .partitions()
                        .filter(|p| cmd.target().matches(&p.topic, p.partition))
                        .map(|p| {
                            format!("{}-{}@{}", p.topic, p.partition, p.committed.unwrap_or(-1))
                        })
                        .collect();
                    let msg = format!(
                        "acknowledged version {v} in {} ms [{}]",
                        started.elapsed().as_millis(),
                        committed.join(",")
                    );
                    bar.finish_with_message(msg.clone());
                    println!("{i}: {msg}");
                    false
                }
                // silence is no acknowledgement (an agent reports while it
                // applies): a silent instance stays awaited
                Some(s) if s.is_gone(now_ms()) => {
                    bar.set_message("stopped reporting (no status for three heartbeats)");
                    true
                }
                Some(s) => {
                    let why = s.pending_reasons(&cmd);
                    let mut msg = format!("applied {} of {v}", s.applied_version);
                    if !why.is_empty() {
                        msg.push_str(&format!("; not acknowledged: {}", why.join("; ")));
                    }
                    bar.set_message(msg);
                    true
                }
            }
        });
        std::thread::sleep(Duration::from_millis(5));
    }
    let latest = tail.latest();
    tail.stop();
    if !pending.is_empty() {
        for i in &pending {
            if latest.get(i).is_some_and(|s| s.is_gone(now_ms())) {
                bars[i].abandon_with_message(
                    "no acknowledgement: stopped reporting (killed or wedged; if killed, the next owner of its partitions applies the version)",
                );
                continue;
            }
            let why = latest
                .get(i)
                .map(|s| s.pending_reasons(&cmd))
                .unwrap_or_default();
            if why.is_empty() {
                bars[i].abandon_with_message("no acknowledgement");
            } else {
                bars[i].abandon_with_message(format!("no acknowledgement: {}", why.join("; ")));
            }
        }
        anyhow::bail!(
            "timed out after {}: not acknowledged by {}",
            duration::format(c.timeout()),
            pending.join(", ")
        );
    }
    println!("all {} live instances acknowledged version {v}", live.len());
    Ok(())
}

fn status(c: Common, json: bool) -> anyhow::Result<()> {
    let tail = StatusTail::open(
        c.plane.kafka.connection()?,
        &c.plane.status_topic,
        c.plane.topic_options(),
    )?;
    let st: Arc<dyn switchyard_control::Store> = store(&c)?;
    let desired = st.read(&c.plane.app)?.version;
    caught_up(&tail)?;
    let view = fleet_view(&tail.latest(), &c.plane.app, desired, now_ms());
    tail.stop();
    if json {
        println!("{}", serde_json::to_string_pretty(&view)?);
        return Ok(());
    }
    println!(
        "app {}  desired version {}  converged: {}",
        view.app,
        view.desired_version,
        if view.converged { "yes" } else { "no" }
    );
    let header = [
        "INSTANCE",
        "SLOT",
        "LISTENERS",
        "RUNNING",
        "PAUSED",
        "DRAINING",
        "IN-FLIGHT",
        "APPLIED",
        "CONVERGED",
    ];
    let right = [false, false, false, true, true, true, true, true, false];
    let mut rows = Vec::new();
    for i in &view.instances {
        let conv = if i.gone {
            "gone"
        } else if i.converged {
            "yes"
        } else {
            "no"
        };
        let mut listeners = i.listeners.join(",");
        if !i.overrides.is_empty() {
            listeners.push_str(&format!(" (override: {})", i.overrides.join(",")));
        }
        rows.push(vec![
            i.instance.clone(),
            i.slot.clone(),
            listeners,
            i.running.to_string(),
            i.paused.to_string(),
            i.draining.to_string(),
            i.in_flight.to_string(),
            i.applied_version.to_string(),
            conv.to_string(),
        ]);
    }
    print!("{}", render_table(&header, &rows, &right));
    Ok(())
}
