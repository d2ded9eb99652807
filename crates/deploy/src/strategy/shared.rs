//! The shared-group strategy (docs/design.md, "Shared group"): both slots
//! use one consumer group; the standby slot stays out of it until the
//! switch. The desired state's `joined` names, per listener, the slots whose
//! instances are members of the group; an agent whose slot is not named
//! leaves the group (its revoke drains and commits) and joins again when it
//! is.
//!
//! A switch from `A` to `B` is make-before-break, and Kafka's group protocol
//! carries the offsets (no copying, no handoff offsets):
//!
//! 1. **join**: write `joined = [A, B]`; wait until every live `B` instance
//!    applied it and reports itself in the group, and every partition runs
//!    on some live instance (the join rebalance is over; partitions that
//!    moved to `B` were revoked from `A` with a commit, eager or
//!    cooperative);
//! 2. **leave**: write `joined = [B]`; wait until every live `A` instance
//!    applied it, left the group and holds nothing, and every partition
//!    runs on a live `B` instance.
//!
//! A timeout writes `joined = [A]` back (rollback: `B` leaves, `A` joins
//! again if it had left) and waits for `A` to run every partition. Canaries
//! need separate groups (one group cannot pin partitions to slots) and are
//! refused.
//!
//! This file holds the pure part ([`SharedMove`], the desired-state changes
//! and the checks over instance statuses) and [`Driver::run_shared`]; the
//! keys it writes in the `deploy` map are those of
//! [`bookkeeping`](crate::bookkeeping).

use std::collections::BTreeMap;
use std::time::Instant;

use switchyard_control::model::{now_ms, DesiredState};
use switchyard_control::status::InstanceStatus;

use crate::bookkeeping::{mark_in_progress, IN_PROGRESS, PREVIOUS, SHARED, STRATEGY, TOPICS};
use crate::driver::{Driver, LOOK_AGAIN};
use crate::error::DeployError;
use crate::kafka::{self, Tp};
use crate::outcome::{fmt_offsets, Outcome};
use crate::plan::{key, live};

/// Does this application deploy with one shared group?
pub fn is_shared(s: &DesiredState) -> bool {
    s.deploy.get(STRATEGY).is_some_and(|v| v == SHARED)
}

/// The first write of a shared-group application: only `slot` is joined.
pub fn init(s: &mut DesiredState, listener: &str, slot: &str, topics: &[String]) {
    s.joined.insert(listener.into(), vec![slot.into()]);
    s.deploy.insert(STRATEGY.into(), SHARED.into());
    s.deploy.insert(TOPICS.into(), topics.join(","));
}

/// One switch of a shared group: `listener` goes from slot `from` to `to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedMove {
    /// Listener id.
    pub listener: String,
    /// The joined slot now.
    pub from: String,
    /// The slot that will be joined.
    pub to: String,
    /// The listener's topics.
    pub topics: Vec<String>,
}

/// Switch `listener` to slot `to`.
pub fn switch(s: &DesiredState, listener: &str, to: &str) -> Result<SharedMove, String> {
    if to.trim().is_empty() {
        return Err("the target slot is blank".into());
    }
    let joined = s.joined.get(listener).ok_or_else(|| {
        format!(
            "listener `{listener}` has no joined slot (run `deploy init --strategy shared` first)"
        )
    })?;
    let from = match joined.as_slice() {
        [one] => one.clone(),
        many => {
            return Err(format!(
            "slots {} are joined: a handoff is in progress or was interrupted (`deploy recover`)",
            many.join(", ")
        ))
        }
    };
    if from == to {
        return Err(format!(
            "slot `{to}` is already the joined slot: nothing to move"
        ));
    }
    Ok(SharedMove {
        listener: listener.into(),
        from,
        to: to.into(),
        topics: topics(s),
    })
}

/// The listener topics recorded by `init`.
pub fn topics(s: &DesiredState) -> Vec<String> {
    s.deploy
        .get(TOPICS)
        .map(|t| {
            t.split(',')
                .filter(|t| !t.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

/// Switch back to the previous slot.
pub fn rollback(s: &DesiredState, listener: &str) -> Result<SharedMove, String> {
    let prev = s.deploy.get(PREVIOUS).ok_or("no previous slot recorded")?;
    switch(s, listener, &prev.clone())
}

/// Phase 1: both slots joined.
pub fn join_both(s: &mut DesiredState, m: &SharedMove) {
    s.joined
        .insert(m.listener.clone(), vec![m.from.clone(), m.to.clone()]);
    mark_in_progress(s, &m.from, &m.to);
}

/// Phase 2: only the target slot joined; the source becomes `previous`.
pub fn leave(s: &mut DesiredState, m: &SharedMove) {
    s.joined.insert(m.listener.clone(), vec![m.to.clone()]);
    s.deploy.insert(PREVIOUS.into(), m.from.clone());
    s.deploy.remove(IN_PROGRESS);
}

/// Rollback: only the source slot joined again.
pub fn restore(s: &mut DesiredState, m: &SharedMove) {
    s.joined.insert(m.listener.clone(), vec![m.from.clone()]);
    s.deploy.remove(IN_PROGRESS);
}

/// The live instances of `slot` that have not yet applied `version` with
/// `listener` in the group (`joined`) or out of it and holding nothing.
pub fn membership_pending(
    statuses: &BTreeMap<String, InstanceStatus>,
    app: &str,
    listener: &str,
    slot: &str,
    joined: bool,
    version: u64,
    now_ms: i64,
) -> Vec<String> {
    live(statuses, app, slot, now_ms)
        .filter(|s| {
            s.applied_version < version
                || s.listeners
                    .iter()
                    .filter(|l| l.name == listener)
                    .any(|l| l.joined != Some(joined) || (!joined && !l.partitions.is_empty()))
        })
        .map(|s| s.instance.clone())
        .collect()
}

/// Live instances of `slot`.
pub fn live_count(
    statuses: &BTreeMap<String, InstanceStatus>,
    app: &str,
    slot: &str,
    now_ms: i64,
) -> usize {
    live(statuses, app, slot, now_ms).count()
}

/// Which live instance of one of `slots` runs each partition of `listener`.
pub fn running(
    statuses: &BTreeMap<String, InstanceStatus>,
    app: &str,
    listener: &str,
    slots: &[&str],
    now_ms: i64,
) -> BTreeMap<Tp, String> {
    let mut out = BTreeMap::new();
    for slot in slots {
        for s in live(statuses, app, slot, now_ms) {
            for l in s.listeners.iter().filter(|l| l.name == listener) {
                for p in l.partitions.iter().filter(|p| p.state == "running") {
                    out.insert((p.topic.clone(), p.partition), s.instance.clone());
                }
            }
        }
    }
    out
}

impl Driver {
    /// The partitions of `topics`.
    fn all_partitions(&self, topics: &[String]) -> anyhow::Result<Vec<Tp>> {
        let mut out = Vec::new();
        for t in topics {
            for p in kafka::partitions(&self.connection, t)? {
                out.push((t.clone(), p));
            }
        }
        Ok(out)
    }

    /// Wait until `slot`'s live instances applied `v` with the listener in
    /// (`joined`) or out of the group, and every partition runs on a live
    /// instance of `cover`. `Err` says what is missing at the deadline.
    #[allow(clippy::too_many_arguments)]
    fn await_membership(
        &self,
        m: &SharedMove,
        slot: &str,
        joined: bool,
        v: u64,
        cover: &[&str],
        all: &[Tp],
        label: &str,
        out: &mut dyn FnMut(String),
    ) -> Result<(), String> {
        let deadline = Instant::now() + self.phase_timeout;
        self.sync_statuses(label)?;
        let mut said = false;
        loop {
            let statuses = self.tail.latest();
            let now = now_ms();
            let pending =
                membership_pending(&statuses, &self.app, &m.listener, slot, joined, v, now);
            let live = live_count(&statuses, &self.app, slot, now);
            let run = running(&statuses, &self.app, &m.listener, cover, now);
            let covered = all.iter().all(|tp| run.contains_key(tp));
            // joining needs somebody to join; leaving is done by nobody left
            let enough = !joined || live > 0;
            if pending.is_empty() && enough && !said {
                said = true;
                out(format!(
                    "{label} ack: {live} live `{slot}` instance(s) applied v{v}, {} the group",
                    if joined { "in" } else { "out of" }
                ));
            }
            if pending.is_empty() && enough && covered {
                let owners: Vec<String> = run
                    .iter()
                    .map(|(tp, i)| format!("{}@{i}", key(tp)))
                    .collect();
                out(format!("{label} done: running {}", owners.join(",")));
                return Ok(());
            }
            if Instant::now() >= deadline {
                let missing: Vec<String> = all
                    .iter()
                    .filter(|tp| !run.contains_key(*tp))
                    .map(key)
                    .collect();
                return Err(format!(
                    "{label} timed out after {:?}: pending {}; live `{slot}` instances {live}; not running on {}: {}",
                    self.phase_timeout,
                    if pending.is_empty() { "none".into() } else { pending.join(", ") },
                    cover.join("/"),
                    if missing.is_empty() { "none".into() } else { missing.join(",") },
                ));
            }
            std::thread::sleep(LOOK_AGAIN);
        }
    }

    /// Rollback: only `m.from` in the group again; wait for it to run
    /// every partition (a timeout is said, not an error).
    pub(crate) fn restore_shared(
        &self,
        m: &SharedMove,
        out: &mut dyn FnMut(String),
    ) -> anyhow::Result<()> {
        let all = self.all_partitions(&m.topics)?;
        let v = self.write(|s| restore(s, m))?;
        out(format!(
            "rollback: wrote v{v}, only {} in the group",
            m.from
        ));
        if let Err(r) = self.await_membership(m, &m.to, false, v, &[&m.from], &all, "rollback", out)
        {
            out(format!("rollback: {r}"));
        }
        Ok(())
    }

    /// Run a shared-group switch (see the module docs) under the driver's
    /// lease (taken here unless the caller holds it).
    pub fn run_shared(
        &self,
        m: &SharedMove,
        out: &mut dyn FnMut(String),
    ) -> anyhow::Result<Outcome> {
        self.lease()
            .hold(false, out, |out| {
                self.run_shared_held(m, out).map_err(DeployError::Failed)
            })
            .map_err(anyhow::Error::from)
    }

    fn run_shared_held(
        &self,
        m: &SharedMove,
        out: &mut dyn FnMut(String),
    ) -> anyhow::Result<Outcome> {
        let start = Instant::now();
        let all = self.all_partitions(&m.topics)?;
        anyhow::ensure!(
            !all.is_empty(),
            "listener `{}` has no partitions (topics {:?})",
            m.listener,
            m.topics
        );
        out(format!(
            "shared-group switch of `{}` in group {}: {} -> {} ({} partitions)",
            m.listener,
            self.group,
            m.from,
            m.to,
            all.len()
        ));
        let (from, to) = (m.from.as_str(), m.to.as_str());
        let v1 = self.write(|s| join_both(s, m))?;
        out(format!(
            "phase 1 join: wrote v{v1}, slots {from},{to} in the group"
        ));
        let failed = self
            .await_membership(m, to, true, v1, &[from, to], &all, "phase 2", out)
            .err();
        let mut gap = None;
        let failed = match failed {
            Some(r) => Some(r),
            None => {
                let v2 = self.write(|s| leave(s, m))?;
                let left_at = Instant::now();
                out(format!(
                    "phase 3 leave: wrote v{v2}, only {to} in the group"
                ));
                match self.await_membership(m, from, false, v2, &[to], &all, "phase 4", out) {
                    Ok(()) => {
                        gap = Some(left_at.elapsed());
                        None
                    }
                    Err(r) => Some(r),
                }
            }
        };
        if let Some(reason) = failed {
            out(format!("rollback: {reason}"));
            self.restore_shared(m, out)?;
            let o = Outcome {
                ok: false,
                reason: Some(reason),
                total: start.elapsed(),
                ..Default::default()
            };
            out(format!(
                "summary: ROLLED BACK to {from} after {} ms",
                o.total.as_millis()
            ));
            return Ok(o);
        }
        let committed = kafka::committed(&self.connection, &self.group, &all).unwrap_or_default();
        let o = Outcome {
            ok: true,
            reason: None,
            moved: all,
            handoff: committed,
            gap,
            total: start.elapsed(),
        };
        out(format!(
            "summary: moved {} partitions {from} -> {to} (shared group {}); committed {}; gap <= {} ms (leave to all running on {to}); total {} ms",
            o.moved.len(),
            self.group,
            fmt_offsets(&o.handoff),
            o.gap.map_or(0, |g| g.as_millis()),
            o.total.as_millis()
        ));
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_control::status::{ListenerReport, PartitionReport};

    fn st(id: &str, slot: &str, v: u64, joined: bool, parts: &[i32]) -> InstanceStatus {
        InstanceStatus {
            instance: id.into(),
            slot: slot.into(),
            app: "a".into(),
            listeners: vec![ListenerReport {
                name: "l".into(),
                joined: Some(joined),
                group: Some("g".into()),
                paused_targets: vec![],
                partitions: parts
                    .iter()
                    .map(|p| PartitionReport {
                        topic: "t".into(),
                        partition: *p,
                        state: "running".into(),
                        in_flight: 0,
                        committed: None,
                        reason: None,
                    })
                    .collect(),
            }],
            applied_version: v,
            overrides: Default::default(),
            heartbeat_ms: 1000,
            timestamp_ms: 10_000,
            unreadable: None,
        }
    }

    #[test]
    fn switch_rollback_and_the_written_states() {
        let mut s = DesiredState::new("a");
        init(&mut s, "l", "blue", &["t".into()]);
        assert!(is_shared(&s));
        assert!(switch(&s, "l", "blue").unwrap_err().contains("already"));
        let m = switch(&s, "l", "green").unwrap();
        assert_eq!(
            (m.from.as_str(), m.topics.clone()),
            ("blue", vec!["t".to_string()])
        );
        join_both(&mut s, &m);
        assert_eq!(s.joined["l"], ["blue", "green"]);
        assert!(switch(&s, "l", "green").unwrap_err().contains("recover"));
        leave(&mut s, &m);
        assert_eq!(s.joined["l"], ["green"]);
        assert!(!s.deploy.contains_key(IN_PROGRESS));
        let back = rollback(&s, "l").unwrap();
        assert_eq!((back.from.as_str(), back.to.as_str()), ("green", "blue"));
        restore(&mut s, &back);
        assert_eq!(s.joined["l"], ["green"]);
        assert!(rollback(&DesiredState::new("a"), "l").is_err());
    }

    #[test]
    fn membership_checks_count_live_instances_of_the_slot() {
        let now = 10_500;
        let mut all = BTreeMap::new();
        all.insert("b1".into(), st("b1", "blue", 3, true, &[0, 1]));
        all.insert("g1".into(), st("g1", "green", 3, true, &[2]));
        all.insert("g2".into(), st("g2", "green", 2, false, &[]));
        // g2 has not applied v3 yet
        assert_eq!(
            membership_pending(&all, "a", "l", "green", true, 3, now),
            ["g2"]
        );
        all.insert("g2".into(), st("g2", "green", 3, true, &[3]));
        assert!(membership_pending(&all, "a", "l", "green", true, 3, now).is_empty());
        assert_eq!(running(&all, "a", "l", &["blue", "green"], now).len(), 4);
        // blue applied v4 but still holds partitions: not left yet
        all.insert("b1".into(), st("b1", "blue", 4, false, &[0]));
        assert_eq!(
            membership_pending(&all, "a", "l", "blue", false, 4, now),
            ["b1"]
        );
        all.insert("b1".into(), st("b1", "blue", 4, false, &[]));
        assert!(membership_pending(&all, "a", "l", "blue", false, 4, now).is_empty());
        // a gone instance does not count
        assert!(membership_pending(&all, "a", "l", "green", true, 9, 20_000).is_empty());
        assert_eq!(live_count(&all, "a", "green", 20_000), 0);
    }
}
