//! The decisions behind each `switchyard deploy` command, on a [`Driver`]:
//! the strategy chosen at `init` and what every later command does under
//! it, what is refused, and the canary's watch-then-abort loop. Each
//! returns the handoff's [`Outcome`] or a [`DeployError`] the caller can
//! match (a refusal, a rolled-back handoff, an aborted canary, a failure).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use switchyard_control::model::now_ms;

use switchyard_control::DesiredState;

use crate::driver::Driver;
use crate::error::{DeployError, Result};
use crate::kafka::{self, Tp};
use crate::outcome::Outcome;
use crate::plan::{self, Move};
use crate::recover;
use crate::strategy::shared;

/// How the slots of an application share the work, chosen at `init`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// A consumer group per slot (`<group>-<slot>`), the standby subscribed
    /// and paused; partitions move by a drain-verified handoff, canaries
    /// possible.
    Separate,
    /// One consumer group for every slot; the standby slot stays out of it
    /// until the switch.
    Shared,
}

/// What `init` wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Initialised {
    /// The version written.
    pub version: u64,
    /// The strategy the application now deploys with.
    pub strategy: Strategy,
    /// Partitions the slot owns (separate groups; 0 for a shared group).
    pub partitions: usize,
}

/// How a canary is watched after its handoff: unhealthy when its group's
/// lag on the canary partitions exceeds `max_lag`, or when a canary
/// partition does not run on a live instance of its slot for `grace`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CanaryWatch {
    /// How long to watch.
    pub watch: Duration,
    /// Most lag allowed.
    pub max_lag: i64,
    /// Longest a canary partition may not run.
    pub grace: Duration,
}

impl Driver {
    /// `deploy init`: `slot` is the first owner of `listener`'s `topics`
    /// under `strategy`. Refused when the listener has owners or joined
    /// slots already.
    pub fn init(
        &self,
        listener: &str,
        slot: &str,
        topics: &[String],
        strategy: Strategy,
    ) -> Result<Initialised> {
        if slot.trim().is_empty() {
            return Err(DeployError::refused("the slot is blank"));
        }
        let current = self.read()?;
        if !plan::owners(&current, listener).is_empty() || current.joined.contains_key(listener) {
            return Err(DeployError::Refused(format!(
                "listener `{listener}` already has slot owners or joined slots"
            )));
        }
        if strategy == Strategy::Shared {
            let version = self.write(|s| shared::init(s, listener, slot, topics))?;
            return Ok(Initialised {
                version,
                strategy,
                partitions: 0,
            });
        }
        let mut parts: Vec<Tp> = Vec::new();
        for t in topics {
            for p in kafka::partitions(&self.connection, t)? {
                parts.push((t.clone(), p));
            }
        }
        let version = self.write(|s| plan::init(s, listener, slot, &parts))?;
        Ok(Initialised {
            version,
            strategy,
            partitions: parts.len(),
        })
    }

    /// The listener a command acts on: `given`, or else the only listener
    /// the application's deployment names (`owners` or `joined`); refused
    /// when it names none or several.
    pub fn listener(&self, given: Option<&str>) -> Result<String> {
        if let Some(l) = given {
            return Ok(l.to_string());
        }
        let s = self.read().map_err(DeployError::Failed)?;
        let named: BTreeSet<&String> = s.owners.keys().chain(s.joined.keys()).collect();
        match named.into_iter().collect::<Vec<_>>()[..] {
            [only] => Ok(only.clone()),
            [] => Err(DeployError::Refused(format!(
                "application `{}` has no deployment yet: `deploy init --listener ID` first, or name the listener with --listener",
                s.app
            ))),
            ref several => Err(DeployError::Refused(format!(
                "application `{}` deploys several listeners ({}): name one with --listener",
                s.app,
                several.iter().map(|l| l.as_str()).collect::<Vec<_>>().join(", ")
            ))),
        }
    }

    /// The strategy the desired state says the application deploys with.
    pub fn strategy(s: &DesiredState) -> Strategy {
        if shared::is_shared(s) {
            Strategy::Shared
        } else {
            Strategy::Separate
        }
    }

    /// `deploy switch --to`: every partition of `listener` to slot `to`, by
    /// the application's strategy.
    pub fn switch(&self, listener: &str, to: &str, out: &mut dyn FnMut(String)) -> Result<Outcome> {
        self.switch_or_rollback(listener, Some(to), out)
    }

    /// `deploy rollback`: every partition back to the previous slot.
    pub fn rollback(&self, listener: &str, out: &mut dyn FnMut(String)) -> Result<Outcome> {
        self.switch_or_rollback(listener, None, out)
    }

    fn switch_or_rollback(
        &self,
        listener: &str,
        to: Option<&str>,
        out: &mut dyn FnMut(String),
    ) -> Result<Outcome> {
        self.lease().clone().hold(false, out, |out| {
            self.switch_or_rollback_held(listener, to, out)
        })
    }

    fn switch_or_rollback_held(
        &self,
        listener: &str,
        to: Option<&str>,
        out: &mut dyn FnMut(String),
    ) -> Result<Outcome> {
        let s = self.read()?;
        let o = match Driver::strategy(&s) {
            Strategy::Shared => {
                let m = match to {
                    Some(to) => shared::switch(&s, listener, to),
                    None => shared::rollback(&s, listener),
                }
                .map_err(DeployError::Refused)?;
                self.run_shared(&m, out)?
            }
            Strategy::Separate => {
                let m = match to {
                    Some(to) => plan::switch(&s, listener, to),
                    None => plan::rollback(&s, listener),
                }
                .map_err(DeployError::Refused)?;
                self.run(&m, out)?
            }
        };
        finished(o)
    }

    /// `deploy canary`: `partitions` of `topic` (default: the listener's only
    /// topic) to slot `to`; with `watch`, the canary is then watched and
    /// aborted by itself when it is unhealthy.
    pub fn canary(
        &self,
        listener: &str,
        to: &str,
        topic: Option<&str>,
        partitions: &[i32],
        watch: Option<CanaryWatch>,
        out: &mut dyn FnMut(String),
    ) -> Result<Outcome> {
        self.lease().clone().hold(false, out, |out| {
            self.canary_held(listener, to, topic, partitions, watch, out)
        })
    }

    fn canary_held(
        &self,
        listener: &str,
        to: &str,
        topic: Option<&str>,
        partitions: &[i32],
        watch: Option<CanaryWatch>,
        out: &mut dyn FnMut(String),
    ) -> Result<Outcome> {
        let m = self.pick(|s| {
            let topic = match topic {
                Some(t) => t.to_string(),
                None => only_topic(s, listener)?,
            };
            let tps: Vec<Tp> = partitions.iter().map(|p| (topic.clone(), *p)).collect();
            plan::canary(s, listener, to, &tps)
        })?;
        let o = finished(self.run(&m, out)?)?;
        let Some(w) = watch.filter(|w| !w.watch.is_zero()) else {
            return Ok(o);
        };
        match self.watch_canary(&m, w.watch, w.max_lag, w.grace, out) {
            Ok(()) => {
                out(format!("canary healthy for {} ms", w.watch.as_millis()));
                Ok(o)
            }
            Err(reason) => {
                out(format!("canary unhealthy: {reason}; aborting"));
                let m = plan::abort(&self.read()?, listener).map_err(DeployError::Refused)?;
                let abort = finished(self.run(&m, out)?)?;
                Err(DeployError::CanaryAborted {
                    reason,
                    abort: Box::new(abort),
                })
            }
        }
    }

    /// `deploy promote`: the rest of the partitions to the canary's slot.
    pub fn promote(&self, listener: &str, out: &mut dyn FnMut(String)) -> Result<Outcome> {
        self.lease().clone().hold(false, out, |out| {
            let m = self.pick(|s| plan::promote(s, listener))?;
            finished(self.run(&m, out)?)
        })
    }

    /// `deploy abort`: the canary's partitions back.
    pub fn abort(&self, listener: &str, out: &mut dyn FnMut(String)) -> Result<Outcome> {
        self.lease().clone().hold(false, out, |out| {
            let m = self.pick(|s| plan::abort(s, listener))?;
            finished(self.run(&m, out)?)
        })
    }

    /// `deploy recover`: roll back what an interrupted handoff of `listener`
    /// left behind; `None` when there was nothing to do. Refused while
    /// another driver's lease has not expired (it may still be running),
    /// unless `force`, which says whose lease it overrides.
    pub fn recover_listener(
        &self,
        listener: &str,
        force: bool,
        out: &mut dyn FnMut(String),
    ) -> Result<Option<Outcome>> {
        self.lease().clone().hold(force, out, |out| {
            let r = recover::plan(&self.read()?, listener).map_err(DeployError::Refused)?;
            Ok(self.recover(&r, out)?)
        })
    }

    /// The move `pick` chooses for a canary, promote or abort: refused under
    /// the shared-group strategy.
    fn pick(
        &self,
        pick: impl FnOnce(&DesiredState) -> std::result::Result<Move, String>,
    ) -> Result<Move> {
        let s = self.read()?;
        if Driver::strategy(&s) == Strategy::Shared {
            return Err(DeployError::refused(
                "canaries need the separate-groups strategy (one group cannot pin partitions to slots)",
            ));
        }
        pick(&s).map_err(DeployError::Refused)
    }
}

/// The listener's only topic (a canary names partitions of one topic).
fn only_topic(s: &DesiredState, listener: &str) -> std::result::Result<String, String> {
    let topics: BTreeSet<String> = plan::owners(s, listener)
        .into_keys()
        .map(|(t, _)| t)
        .collect();
    match topics.len() {
        1 => Ok(topics.into_iter().next().expect("one")),
        _ => Err("the listener has several topics: name one with --topic".into()),
    }
}

impl Driver {
    /// After a canary handoff `m`: watch the canary slot for `watch`. It is
    /// unhealthy when the lag of its group on the canary partitions exceeds
    /// `max_lag`, or when a canary partition is not running on a live
    /// instance of the slot for `grace`. `Err` names the reason.
    pub fn watch_canary(
        &self,
        m: &Move,
        watch: Duration,
        max_lag: i64,
        grace: Duration,
        out: &mut dyn FnMut(String),
    ) -> std::result::Result<(), String> {
        let until = Instant::now() + watch;
        let group = self.group_of(&m.to);
        let mut not_running_since: Option<Instant> = None;
        while Instant::now() < until {
            let running = plan::running_on(&self.tail.latest(), &self.app, m, &m.to, 0, now_ms());
            if running.len() < m.partitions.len() {
                let since = *not_running_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= grace {
                    return Err(format!(
                        "canary partitions not running on a live `{}` instance for {grace:?}",
                        m.to
                    ));
                }
            } else {
                not_running_since = None;
            }
            let ends =
                kafka::end_offsets(&self.connection, &m.partitions).map_err(|e| e.to_string())?;
            let committed = kafka::committed(&self.connection, &group, &m.partitions)
                .map_err(|e| e.to_string())?;
            let lag: i64 = m
                .partitions
                .iter()
                .map(|tp| {
                    ends.get(tp).copied().unwrap_or(0)
                        - committed.get(tp).copied().unwrap_or(0).max(0)
                })
                .sum();
            if lag > max_lag {
                return Err(format!("canary lag {lag} > {max_lag} on group {group}"));
            }
            out(format!(
                "canary watch: lag {lag}, {} of {} partitions running",
                running.len(),
                m.partitions.len()
            ));
            std::thread::sleep(Duration::from_millis(500));
        }
        Ok(())
    }
}

/// A finished handoff, or the rolled-back one as an error.
fn finished(o: Outcome) -> Result<Outcome> {
    if o.ok {
        Ok(o)
    } else {
        Err(DeployError::RolledBack(Box::new(o)))
    }
}
