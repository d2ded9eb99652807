//! `switchyard deploy`: blue/green and canary deployments of consumers with a
//! drain-verified handoff. Strategy, chosen at `init`: separate groups (slot
//! `s` consumes as group `<group>-<s>`) or one shared group `<group>` that
//! the standby slot joins only at the switch; see docs/deploy.md and
//! `switchyard-deploy`.
//!
//! Exit codes: 0 done, 1 error, 2 refused (nothing to move, a handoff in
//! progress, no canary...), 4 a phase timed out and the handoff was rolled
//! back, 5 a watched canary was unhealthy and aborted by itself.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::time::Duration;

use switchyard_control::kafka_store::KafkaStore;
use switchyard_control::model::now_ms;
use switchyard_control::targets::NOBODY;
use switchyard_control::SharedStore;
use switchyard_deploy::kafka::{self, Tp};
use switchyard_deploy::plan::{self, Move};
use switchyard_deploy::Driver;
use switchyard_deploy::{recover, shared};

/// Where the deployment lives.
#[derive(clap::Args, Clone)]
pub struct Common {
    #[command(flatten)]
    plane: crate::ctl::Plane,
    /// Listener id.
    #[arg(long, default_value = "probe")]
    listener: String,
    /// Group id: with separate groups, the base (slot `s` consumes as
    /// `<group>-<s>`); with a shared group, the group itself.
    #[arg(long)]
    group: String,
    /// Longest wait of one handoff phase.
    #[arg(long, default_value_t = 30_000)]
    phase_timeout_ms: u64,
    /// Who (default: $USER).
    #[arg(long)]
    issuer: Option<String>,
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
        #[arg(long, value_enum, default_value_t = Strategy::Separate)]
        strategy: Strategy,
    },
    /// Roll back what an interrupted `deploy` left behind (frozen
    /// partitions, two joined slots).
    Recover {
        #[command(flatten)]
        common: Common,
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
        /// itself when it is unhealthy (0: do not watch).
        #[arg(long, default_value_t = 0)]
        watch_ms: u64,
        /// Unhealthy: the canary group's lag on its partitions exceeds this.
        #[arg(long, default_value_t = 10_000)]
        max_lag: i64,
        /// Unhealthy: a canary partition does not run on a live canary instance this long.
        #[arg(long, default_value_t = 5_000)]
        grace_ms: u64,
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
pub enum Strategy {
    /// A consumer group per slot.
    Separate,
    /// One consumer group for every slot.
    Shared,
}

struct Refused(String);
impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::fmt::Debug for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for Refused {}

pub fn run(cmd: Cmd) -> i32 {
    match run_inner(cmd) {
        Ok(code) => code,
        Err(e) => match e.downcast_ref::<Refused>() {
            Some(r) => {
                eprintln!("refused: {r}");
                2
            }
            None => crate::fail(e),
        },
    }
}

fn say(line: String) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn driver(c: &Common) -> anyhow::Result<Driver> {
    let store: SharedStore = KafkaStore::new(&c.plane.bootstrap, &c.plane.control_topic)?;
    let issuer = c
        .issuer
        .clone()
        .or_else(|| std::env::var("USER").ok())
        .map(|u| format!("deploy:{u}"))
        .unwrap_or_else(|| "deploy".into());
    let timeout = Duration::from_millis(c.phase_timeout_ms);
    Driver::start(
        &c.plane.bootstrap,
        store,
        &c.plane.status_topic,
        &c.plane.app,
        &c.group,
        issuer,
        timeout,
    )
}

/// `deploy init`: `slot` owns every partition of `topics` for `listener`
/// (refused when the listener already has owners); the version written and
/// the number of partitions.
pub(crate) fn init(
    d: &Driver,
    listener: &str,
    slot: &str,
    topics: &[String],
) -> anyhow::Result<(u64, usize)> {
    anyhow::ensure!(!slot.is_empty(), "the slot is blank");
    let current = d.read()?;
    if !plan::owners(&current, listener).is_empty() || current.joined.contains_key(listener) {
        return Err(Refused(format!(
            "listener `{listener}` already has slot owners or joined slots"
        ))
        .into());
    }
    let mut parts = Vec::new();
    for t in topics {
        for p in kafka::partitions(&d.connection, t)? {
            parts.push((t.clone(), p));
        }
    }
    let v = d.write(|s| plan::init(s, listener, slot, &parts))?;
    Ok((v, parts.len()))
}

fn handoff(
    c: &Common,
    pick: impl Fn(&switchyard_control::DesiredState) -> Result<Move, String>,
) -> anyhow::Result<i32> {
    let d = driver(c)?;
    let s = d.read()?;
    if shared::is_shared(&s) {
        return Err(Refused(
            "canaries need the separate-groups strategy (one group cannot pin partitions to slots)"
                .into(),
        )
        .into());
    }
    let m = pick(&s).map_err(Refused)?;
    let o = d.run(&m, &mut say)?;
    d.tail.stop();
    Ok(if o.ok { 0 } else { 4 })
}

/// A switch (`to`) or a rollback (`None`), by the application's strategy.
fn switch(c: &Common, to: Option<&str>) -> anyhow::Result<i32> {
    let d = driver(c)?;
    let s = d.read()?;
    let l = c.listener.as_str();
    let o = if shared::is_shared(&s) {
        let m = match to {
            Some(to) => shared::switch(&s, l, to),
            None => shared::rollback(&s, l),
        }
        .map_err(Refused)?;
        d.run_shared(&m, &mut say)?
    } else {
        let m = match to {
            Some(to) => plan::switch(&s, l, to),
            None => plan::rollback(&s, l),
        }
        .map_err(Refused)?;
        d.run(&m, &mut say)?
    };
    d.tail.stop();
    Ok(if o.ok { 0 } else { 4 })
}

fn run_inner(cmd: Cmd) -> anyhow::Result<i32> {
    match cmd {
        Cmd::Init {
            common,
            slot,
            topics,
            strategy,
        } => {
            let d = driver(&common)?;
            if strategy == Strategy::Shared {
                let current = d.read()?;
                if current.joined.contains_key(&common.listener)
                    || !plan::owners(&current, &common.listener).is_empty()
                {
                    return Err(Refused(format!(
                        "listener `{}` already has slot owners or joined slots",
                        common.listener
                    ))
                    .into());
                }
                let v = d.write(|s| shared::init(s, &common.listener, &slot, &topics))?;
                say(format!(
                    "init: wrote v{v}, shared group {}: only {slot} joined",
                    common.group
                ));
                d.tail.stop();
                return Ok(0);
            }
            let (v, n) = init(&d, &common.listener, &slot, &topics)?;
            say(format!("init: wrote v{v}, {n} partitions owned by {slot}"));
            d.tail.stop();
            Ok(0)
        }
        Cmd::Status { common, json } => status(&common, json),
        Cmd::Switch { common, to } => switch(&common, Some(&to)),
        Cmd::Rollback { common } => switch(&common, None),
        Cmd::Recover { common } => {
            let d = driver(&common)?;
            let r = recover::plan(&d.read()?, &common.listener).map_err(Refused)?;
            if d.recover(&r, &mut say)?.is_none() {
                say("recover: nothing to do (no frozen partition, one joined slot)".into());
            }
            d.tail.stop();
            Ok(0)
        }
        Cmd::Canary {
            common,
            to,
            partitions,
            topic,
            watch_ms,
            max_lag,
            grace_ms,
        } => {
            let l = common.listener.clone();
            let pick = |s: &switchyard_control::DesiredState| {
                let topic = match &topic {
                    Some(t) => t.clone(),
                    None => {
                        let ts: BTreeSet<String> =
                            plan::owners(s, &l).into_keys().map(|(t, _)| t).collect();
                        match ts.len() {
                            1 => ts.into_iter().next().expect("one"),
                            _ => {
                                return Err(
                                    "the listener has several topics: name one with --topic".into(),
                                )
                            }
                        }
                    }
                };
                let tps: Vec<Tp> = partitions.iter().map(|p| (topic.clone(), *p)).collect();
                plan::canary(s, &l, &to, &tps)
            };
            let d = driver(&common)?;
            let m = pick(&d.read()?).map_err(Refused)?;
            let o = d.run(&m, &mut say)?;
            if !o.ok {
                return Ok(4);
            }
            if watch_ms == 0 {
                return Ok(0);
            }
            let watch = Duration::from_millis(watch_ms);
            match d.watch_canary(
                &m,
                watch,
                max_lag,
                Duration::from_millis(grace_ms),
                &mut say,
            ) {
                Ok(()) => {
                    say(format!("canary healthy for {watch_ms} ms"));
                    Ok(0)
                }
                Err(reason) => {
                    say(format!("canary unhealthy: {reason}; aborting"));
                    let m = plan::abort(&d.read()?, &l).map_err(Refused)?;
                    let o = d.run(&m, &mut say)?;
                    Ok(if o.ok { 5 } else { 4 })
                }
            }
        }
        Cmd::Promote { common } => {
            let l = common.listener.clone();
            handoff(&common, |s| plan::promote(s, &l))
        }
        Cmd::Abort { common } => {
            let l = common.listener.clone();
            handoff(&common, |s| plan::abort(s, &l))
        }
    }
}

#[derive(serde::Serialize)]
struct SlotView {
    slot: String,
    group: String,
    instances: Vec<String>,
    owns: Vec<String>,
    /// Lag of the slot's group on the partitions it owns.
    lag: i64,
    committed: BTreeMap<String, i64>,
}

fn status(c: &Common, json: bool) -> anyhow::Result<i32> {
    let d = driver(c)?;
    let s = d.read()?;
    let now = now_ms();
    let live: Vec<_> = d
        .tail
        .latest()
        .into_values()
        .filter(|x| x.app == c.plane.app && !x.is_gone(now))
        .collect();
    if shared::is_shared(&s) {
        d.tail.stop();
        return shared_status(c, &s, &live, json);
    }
    let owners = plan::owners(&s, &c.listener);
    let mut slots: BTreeSet<String> = owners
        .values()
        .filter(|v| v.as_str() != NOBODY)
        .cloned()
        .collect();
    slots.extend(live.iter().map(|x| x.slot.clone()));
    let tps: Vec<Tp> = owners.keys().cloned().collect();
    let ends = kafka::end_offsets(&c.plane.bootstrap, &tps)?;
    let mut views = Vec::new();
    for slot in &slots {
        let group = d.group_of(slot);
        let committed = kafka::committed(&c.plane.bootstrap, &group, &tps)?;
        let owns: Vec<Tp> = owners
            .iter()
            .filter(|(_, v)| *v == slot)
            .map(|(k, _)| k.clone())
            .collect();
        let lag = owns
            .iter()
            .map(|tp| {
                ends.get(tp).copied().unwrap_or(0) - committed.get(tp).copied().unwrap_or(-1).max(0)
            })
            .sum();
        views.push(SlotView {
            slot: slot.clone(),
            group,
            instances: live
                .iter()
                .filter(|x| &x.slot == slot)
                .map(|x| format!("{}(v{})", x.instance, x.applied_version))
                .collect(),
            owns: owns.iter().map(plan::key).collect(),
            lag,
            committed: committed.iter().map(|(k, v)| (plan::key(k), *v)).collect(),
        });
    }
    let frozen: Vec<String> = owners
        .iter()
        .filter(|(_, v)| v.as_str() == NOBODY)
        .map(|(k, _)| plan::key(k))
        .collect();
    d.tail.stop();
    if json {
        say(serde_json::to_string_pretty(&serde_json::json!({
            "app": c.plane.app, "version": s.version, "deploy": s.deploy, "frozen": frozen, "slots": views,
        }))?);
        return Ok(0);
    }
    say(format!(
        "app {} desired v{} {:?}",
        c.plane.app, s.version, s.deploy
    ));
    if !frozen.is_empty() {
        say(format!("owned by nobody (frozen): {}", frozen.join(",")));
    }
    say(format!(
        "{:<10} {:<24} {:>8}  {:<30} instances",
        "SLOT", "GROUP", "LAG", "OWNS"
    ));
    for v in views {
        say(format!(
            "{:<10} {:<24} {:>8}  {:<30} {}",
            v.slot,
            v.group,
            v.lag,
            v.owns.join(","),
            v.instances.join(" ")
        ));
    }
    Ok(0)
}

/// `deploy status` of a shared-group application: per slot, whether it is
/// joined, its live instances and the partitions they hold; the group's lag.
fn shared_status(
    c: &Common,
    s: &switchyard_control::DesiredState,
    live: &[switchyard_control::status::InstanceStatus],
    json: bool,
) -> anyhow::Result<i32> {
    let joined = s.joined.get(&c.listener).cloned().unwrap_or_default();
    let mut tps = Vec::new();
    for t in shared::topics(s) {
        for p in kafka::partitions(&c.plane.bootstrap, &t)? {
            tps.push((t.clone(), p));
        }
    }
    let ends = kafka::end_offsets(&c.plane.bootstrap, &tps)?;
    let committed = kafka::committed(&c.plane.bootstrap, &c.group, &tps)?;
    let lag: i64 = tps
        .iter()
        .map(|tp| {
            ends.get(tp).copied().unwrap_or(0) - committed.get(tp).copied().unwrap_or(-1).max(0)
        })
        .sum();
    let mut slots: BTreeSet<String> = joined.iter().cloned().collect();
    slots.extend(live.iter().map(|x| x.slot.clone()));
    let views: Vec<serde_json::Value> = slots
        .iter()
        .map(|slot| {
            let mine: Vec<_> = live.iter().filter(|x| &x.slot == slot).collect();
            let holds: Vec<String> = mine
                .iter()
                .flat_map(|x| x.partitions().map(|p| format!("{}-{}", p.topic, p.partition)))
                .collect();
            serde_json::json!({
                "slot": slot,
                "joined": joined.contains(slot),
                "instances": mine.iter().map(|x| format!("{}(v{})", x.instance, x.applied_version)).collect::<Vec<_>>(),
                "holds": holds,
            })
        })
        .collect();
    if json {
        say(serde_json::to_string_pretty(&serde_json::json!({
            "app": c.plane.app, "version": s.version, "strategy": "shared", "group": c.group,
            "lag": lag, "deploy": s.deploy, "slots": views,
        }))?);
        return Ok(0);
    }
    say(format!(
        "app {} desired v{} shared group {} lag {lag} {:?}",
        c.plane.app, s.version, c.group, s.deploy
    ));
    say(format!(
        "{:<10} {:<7} {:<30} instances",
        "SLOT", "JOINED", "HOLDS"
    ));
    for v in views {
        let list = |k: &str| {
            v[k].as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str())
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default()
        };
        say(format!(
            "{:<10} {:<7} {:<30} {}",
            v["slot"].as_str().unwrap_or(""),
            if v["joined"].as_bool() == Some(true) {
                "yes"
            } else {
                "no"
            },
            list("holds"),
            list("instances").replace(',', " ")
        ));
    }
    Ok(0)
}
