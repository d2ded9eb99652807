//! The separate-groups strategy, driven: [`Driver::run`] takes a [`Move`]
//! through the phases of [`Handoff`] over the control store, the status
//! topic and the groups' committed offsets, one progress line per phase and
//! instance, and rolls back on a timeout (the rollback `recover` runs too).
//! The pure part (which partitions move, the desired-state change of each
//! phase, the acknowledgement checks) is [`plan`], with [`checks`].

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use switchyard_control::model::now_ms;

use crate::checks;
use crate::driver::{Driver, LOOK_AGAIN};
use crate::error::DeployError;
use crate::kafka::{self, Tp};
use crate::outcome::{fmt_offsets, Outcome};
use crate::plan::{self, describe, Event, Handoff, Move, Step};

impl Driver {
    /// Phase 2: wait for the acknowledgements of `m.from`: no live instance
    /// pending, and as many acknowledged as the group has members (or none).
    /// A broker that cannot list group members at all (librdkafka's mock
    /// cluster has no DescribeGroups) is said once; the instances awaited
    /// are then those of the slot by their statuses
    /// ([`plan::awaited_by_status`]).
    ///
    /// A moving partition stopped by the failure policy fails the phase at
    /// once. The member count is read again until the deadline when it
    /// cannot be read; still unreadable then, the phase fails with the
    /// error (an unreadable group never counts as an empty one).
    fn await_freeze(
        &self,
        m: &Move,
        v: u64,
        label: &str,
        out: &mut dyn FnMut(String),
    ) -> Result<(), String> {
        let deadline = Instant::now() + self.phase_timeout;
        let group = self.group_of(&m.from);
        self.sync_statuses(label)?;
        let at_start = plan::live_instances(&self.tail.latest(), &self.app, &m.from, now_ms());
        let mut said = BTreeSet::new();
        let mut members = None;
        // the broker cannot list the group's members: go by the statuses
        let mut unlisted = false;
        let mut last_members = Instant::now() - Duration::from_secs(1);
        // the last failure to read the group's members, until a read works
        let mut members_error: Option<String> = None;
        loop {
            let all = self.tail.latest();
            let now = now_ms();
            let stopped = checks::stopped(&all, &self.app, m, &m.from, now);
            if !stopped.is_empty() {
                return Err(checks::stopped_reason(label, &m.listener, &stopped));
            }
            let pending = plan::freeze_pending(&all, &self.app, m, v, now);
            let acked = plan::freeze_acked(&all, &self.app, m, v);
            for id in &acked {
                if said.insert(id.clone()) {
                    let s = &all[id];
                    let held: Vec<String> = s
                        .partitions()
                        .filter(|p| m.partitions.contains(&(p.topic.clone(), p.partition)))
                        .map(|p| {
                            format!("{}-{}@{}", p.topic, p.partition, p.committed.unwrap_or(-1))
                        })
                        .collect();
                    out(format!(
                        "{} ack: {} ({}) applied v{}, paused and committed [{}]",
                        label.split(" (").next().unwrap_or(label),
                        s.instance,
                        m.from,
                        s.applied_version,
                        held.join(",")
                    ));
                }
            }
            let refresh = pending.is_empty() || members == Some(0);
            if refresh && !unlisted && last_members.elapsed() >= Duration::from_millis(250) {
                last_members = Instant::now();
                members = match kafka::members(&self.connection, &group) {
                    Ok(n) => {
                        members_error = None;
                        Some(n)
                    }
                    Err(e) if kafka::unsupported(&e) => {
                        unlisted = true;
                        out(format!(
                            "{label}: the broker does not support listing the members of {group}; waiting for the `{}` instances by their statuses instead",
                            m.from
                        ));
                        None
                    }
                    Err(e) => {
                        members_error = Some(format!("{e:#}"));
                        None
                    }
                };
            }
            let awaited =
                unlisted.then(|| plan::awaited_by_status(&all, &self.app, &m.from, &at_start, now));
            match &awaited {
                Some(a) if plan::freeze_done_by_status(a, &acked) => {
                    if a.is_empty() {
                        out(format!("{label}: no live `{}` instance", m.from));
                    }
                    return Ok(());
                }
                Some(_) => {}
                None if refresh && plan::freeze_done(pending.len(), acked.len(), members) => {
                    if members == Some(0) {
                        out(format!("{label}: group {group} has no members"));
                    }
                    return Ok(());
                }
                None => {}
            }
            if Instant::now() >= deadline {
                if let Some(e) = &members_error {
                    return Err(format!(
                        "{label}: the members of group {group} could not be read within {:?} (an unreadable group is never taken as empty): {e}",
                        self.phase_timeout
                    ));
                }
                let silent = checks::unacknowledged(&all, &self.app, m, v, now);
                let of = match &awaited {
                    Some(a) => format!(
                        "awaited `{}` instances ({})",
                        m.from,
                        a.iter().cloned().collect::<Vec<_>>().join(", ")
                    ),
                    None => format!(
                        "{} members of {group}",
                        members.map_or("?".to_string(), |n| n.to_string())
                    ),
                };
                return Err(format!(
                    "{label} timed out after {:?}: pending {}; acknowledged {} of {of}{}",
                    self.phase_timeout,
                    if pending.is_empty() {
                        "none".to_string()
                    } else {
                        pending.join(", ")
                    },
                    acked.len(),
                    if silent.is_empty() {
                        String::new()
                    } else {
                        format!("; not acknowledged by {}", silent.join(", "))
                    }
                ));
            }
            std::thread::sleep(LOOK_AGAIN);
        }
    }

    /// Phase 5: wait until every moving partition runs on `slot` at `v`.
    /// Returns when the first one was seen running. A partition's start is
    /// said as the agent computes it, `max(committed, handoff)`: the
    /// reported committed offset may predate the handoff seek's commit.
    fn await_running(
        &self,
        m: &Move,
        slot: &str,
        v: u64,
        handoff: &BTreeMap<Tp, i64>,
        label: &str,
        out: &mut dyn FnMut(String),
    ) -> (Option<Instant>, Result<(), String>) {
        let timeout = self.phase_timeout;
        let deadline = Instant::now() + timeout;
        let mut seen = BTreeSet::new();
        let mut first = None;
        loop {
            let all = self.tail.latest();
            let stopped = checks::stopped(&all, &self.app, m, slot, now_ms());
            if !stopped.is_empty() {
                return (
                    first,
                    Err(checks::stopped_reason(label, &m.listener, &stopped)),
                );
            }
            let running = plan::running_on(&all, &self.app, m, slot, v, now_ms());
            for (tp, (inst, committed)) in &running {
                if seen.insert(tp.clone()) {
                    first.get_or_insert_with(Instant::now);
                    out(format!(
                        "{label} ack: {inst} ({slot}) applied v{v}, running {} from {}",
                        plan::key(tp),
                        committed
                            .unwrap_or(-1)
                            .max(handoff.get(tp).copied().unwrap_or(-1))
                    ));
                }
            }
            if running.len() == m.partitions.len() {
                return (first, Ok(()));
            }
            if Instant::now() >= deadline {
                let missing: Vec<Tp> = m
                    .partitions
                    .iter()
                    .filter(|tp| !running.contains_key(*tp))
                    .cloned()
                    .collect();
                return (
                    first,
                    Err(format!(
                        "phase 5 (resume) timed out after {timeout:?}: {} not running on slot `{slot}`",
                        describe(&missing)
                    )),
                );
            }
            std::thread::sleep(LOOK_AGAIN);
        }
    }

    /// Run the handoff `m` under the driver's lease (taken here unless the
    /// caller holds it; refused while another driver holds it).
    pub fn run(&self, m: &Move, out: &mut dyn FnMut(String)) -> anyhow::Result<Outcome> {
        self.lease()
            .hold(false, out, |out| {
                self.run_held(m, out).map_err(DeployError::Failed)
            })
            .map_err(anyhow::Error::from)
    }

    fn run_held(&self, m: &Move, out: &mut dyn FnMut(String)) -> anyhow::Result<Outcome> {
        let start = Instant::now();
        // `m` may have been read before the lease was taken
        let owners = plan::owners(&self.read()?, &m.listener);
        if let Some(tp) = m
            .partitions
            .iter()
            .find(|tp| owners.get(*tp) != Some(&m.from))
        {
            anyhow::bail!(
                "the move is stale: {} is owned by `{}` now, not by `{}`",
                plan::key(tp),
                owners.get(tp).map_or("no slot", |o| o.as_str()),
                m.from
            );
        }
        kafka::warm_up(&self.connection, &self.group_of(&m.from), &m.partitions);
        kafka::warm_up(&self.connection, &self.group_of(&m.to), &m.partitions);
        let mut h = Handoff::new();
        let mut frozen_at = None;
        // what the source had finished above its phase-3 offsets
        let mut done_above = BTreeMap::new();
        out(format!(
            "handoff of {} partitions of `{}`: {} -> {} ({})",
            m.partitions.len(),
            m.listener,
            m.from,
            m.to,
            describe(&m.partitions)
        ));
        loop {
            let step = h.step().clone();
            let e = match step {
                Step::WriteFreeze => {
                    let v = self.write(|s| plan::freeze(s, m))?;
                    out(format!(
                        "phase 1 freeze: wrote v{v}, {} owned by nobody",
                        describe(&m.partitions)
                    ));
                    Event::Written(v)
                }
                Step::AwaitFreeze(v) => match self.await_freeze(m, v, "phase 2 (freeze)", out) {
                    Ok(()) => {
                        frozen_at = Some(Instant::now());
                        out(format!(
                            "phase 2 done: freeze acknowledged after {} ms",
                            start.elapsed().as_millis()
                        ));
                        Event::Acked
                    }
                    Err(r) => Event::Failed(r),
                },
                Step::ReadOffsets => match kafka::committed_with_done(
                    &self.connection,
                    &self.group_of(&m.from),
                    &m.partitions,
                ) {
                    Ok(c) => {
                        let (o, done) = split_done(c);
                        out(format!(
                            "phase 3 offsets of {}: {}{}",
                            self.group_of(&m.from),
                            fmt_offsets(&o),
                            fmt_done(&done)
                        ));
                        done_above = done;
                        Event::Offsets(o)
                    }
                    Err(e) => Event::Failed(format!("phase 3: {e:#}")),
                },
                Step::WriteTransfer(o) => match self.write_transfer(m, &o, &done_above, out) {
                    Ok(v) => {
                        out(format!(
                            "phase 4 transfer: wrote v{v}, owned by {} with handoff offsets",
                            m.to
                        ));
                        Event::Written(v)
                    }
                    Err(e) => Event::Failed(format!("phase 4: {e:#}")),
                },
                Step::AwaitTransfer(v) => {
                    let (first, r) = self.await_running(m, &m.to, v, h.frozen(), "phase 5", out);
                    match r {
                        Ok(()) => {
                            let gap = match (frozen_at, first) {
                                (Some(a), Some(b)) => Some(b.saturating_duration_since(a)),
                                _ => None,
                            };
                            let o = Outcome {
                                ok: true,
                                reason: None,
                                moved: m.partitions.clone(),
                                handoff: h.frozen().clone(),
                                gap,
                                total: start.elapsed(),
                            };
                            out(format!(
                                "summary: moved {} partitions {} -> {}; handoff offsets {}; gap {} ms; total {} ms",
                                o.moved.len(),
                                m.from,
                                m.to,
                                fmt_offsets(&o.handoff),
                                o.gap.map_or(0, |g| g.as_millis()),
                                o.total.as_millis()
                            ));
                            return Ok(o);
                        }
                        Err(r) => Event::Failed(r),
                    }
                }
                Step::Done => unreachable!("returned above"),
                Step::RollBack {
                    reason,
                    after_transfer,
                    frozen,
                } => {
                    out(format!("rollback: {reason}"));
                    self.roll_back(m, after_transfer, &frozen, &done_above, out)?;
                    let o = Outcome {
                        ok: false,
                        reason: Some(reason),
                        moved: Vec::new(),
                        handoff: frozen,
                        gap: None,
                        total: start.elapsed(),
                    };
                    out(format!(
                        "summary: ROLLED BACK to {} after {} ms",
                        m.from,
                        o.total.as_millis()
                    ));
                    return Ok(o);
                }
            };
            h.on(e).map_err(|e| anyhow::anyhow!(e))?;
        }
    }

    /// Phase 4: `m.to` owns the partitions, with the handoff offsets `o`
    /// scoped to the committed offsets `m.to`'s group has now (read first;
    /// if they cannot be read the offsets go unscoped, as an older driver
    /// wrote them, and a line says so).
    fn write_transfer(
        &self,
        m: &Move,
        o: &BTreeMap<Tp, i64>,
        done: &BTreeMap<Tp, Vec<i64>>,
        out: &mut dyn FnMut(String),
    ) -> anyhow::Result<u64> {
        let group = self.group_of(&m.to);
        let bases = match kafka::committed(&self.connection, &group, &m.partitions) {
            Ok(b) => Some(b),
            Err(e) => {
                out(format!(
                    "phase 4: committed offsets of {group} unreadable ({e:#}): handoff offsets unscoped"
                ));
                None
            }
        };
        self.write(|s| {
            plan::transfer(s, m, o);
            plan::carry_done(s, m, done);
            if let Some(b) = &bases {
                plan::scope_handoff(s, m, b);
            }
        })
    }

    /// Write the previous owner back. After the transfer this is the
    /// handoff in the other direction: freeze, wait for the target slot's
    /// acknowledgements exactly as a forward switch waits for its source
    /// (gone instances and an empty group count as done), and start the
    /// previous owner at `max(phase-3 offsets, the target group's committed
    /// offsets)`. An acknowledgement missing at the deadline fails the
    /// rollback, naming the instances: the partitions stay owned by nobody
    /// (nobody processes them) with the handoff recorded for `recover`.
    pub(crate) fn roll_back(
        &self,
        m: &Move,
        after_transfer: bool,
        frozen: &BTreeMap<Tp, i64>,
        frozen_done: &BTreeMap<Tp, Vec<i64>>,
        out: &mut dyn FnMut(String),
    ) -> anyhow::Result<()> {
        let mut offsets = None;
        let mut done = BTreeMap::new();
        if after_transfer {
            let back = m.reversed();
            let v = self.write(|s| plan::freeze(s, &back))?;
            out(format!("rollback freeze: wrote v{v}"));
            if let Err(r) = self.await_freeze(&back, v, "rollback freeze", out) {
                anyhow::bail!(
                    "rollback failed: `{}` did not acknowledge the reverse freeze v{v} ({r}); {} stay owned by nobody (no slot processes them) and the handoff {} -> {} is recorded: once `{}` has acknowledged or left group {}, `switchyard deploy recover` gives them back to `{}`",
                    back.from,
                    describe(&m.partitions),
                    back.from,
                    back.to,
                    back.from,
                    self.group_of(&back.from),
                    back.from
                );
            }
            let theirs =
                kafka::committed_with_done(&self.connection, &self.group_of(&m.to), &m.partitions)
                    .unwrap_or_default();
            let (o, d) = furthest(frozen, frozen_done, theirs);
            out(format!(
                "rollback offsets: {}{}",
                fmt_offsets(&o),
                fmt_done(&d)
            ));
            offsets = Some(o);
            done = d;
        }
        // handoff offsets back to `from` are scoped like a transfer's
        let back = m.reversed();
        let bases = offsets.as_ref().and_then(|_| {
            kafka::committed(&self.connection, &self.group_of(&m.from), &m.partitions).ok()
        });
        let v = self.write(|s| {
            plan::restore(s, m, offsets.as_ref());
            plan::carry_done(s, &back, &done);
            if let Some(b) = &bases {
                plan::scope_handoff(s, &back, b);
            }
        })?;
        out(format!(
            "rollback: wrote v{v}, {} owned by {} again",
            describe(&m.partitions),
            m.from
        ));
        let handoff = offsets.unwrap_or_default();
        let (_, r) = self.await_running(m, &m.from, v, &handoff, "rollback resume", out);
        if let Err(r) = r {
            out(format!("rollback: {r}"));
        }
        Ok(())
    }
}

/// Committed offsets apart from what was finished above them.
fn split_done(c: BTreeMap<Tp, kafka::Committed>) -> (BTreeMap<Tp, i64>, BTreeMap<Tp, Vec<i64>>) {
    let mut offsets = BTreeMap::new();
    let mut done = BTreeMap::new();
    for (tp, c) in c {
        offsets.insert(tp.clone(), c.offset);
        if !c.done_above.is_empty() {
            done.insert(tp, c.done_above);
        }
    }
    (offsets, done)
}

/// Where a rollback starts the previous owner: per partition the further
/// of the phase-3 offset (`frozen`, with what was finished above it) and
/// the target group's committed offset (`theirs`, with its finished-above
/// offsets); at a tie, the offsets either had finished.
fn furthest(
    frozen: &BTreeMap<Tp, i64>,
    frozen_done: &BTreeMap<Tp, Vec<i64>>,
    theirs: BTreeMap<Tp, kafka::Committed>,
) -> (BTreeMap<Tp, i64>, BTreeMap<Tp, Vec<i64>>) {
    let mut offsets = frozen.clone();
    let mut done = frozen_done.clone();
    for (tp, c) in theirs {
        let at = offsets.get(&tp).copied().unwrap_or(-1);
        if c.offset > at {
            offsets.insert(tp.clone(), c.offset);
            done.insert(tp, c.done_above);
        } else if c.offset == at && !c.done_above.is_empty() {
            let d = done.entry(tp).or_default();
            d.extend(c.done_above);
            d.sort_unstable();
            d.dedup();
        }
    }
    done.retain(|_, d| !d.is_empty());
    (offsets, done)
}

/// `; finished above: t-0 x3` for the partitions with finished-above offsets.
fn fmt_done(d: &BTreeMap<Tp, Vec<i64>>) -> String {
    if d.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = d
        .iter()
        .map(|(tp, v)| format!("{} x{}", plan::key(tp), v.len()))
        .collect();
    format!("; finished above them: {}", parts.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(p: i32) -> Tp {
        ("t".into(), p)
    }

    /// A rollback starts the previous owner at the further of its phase-3
    /// offset and the target group's commit, with the finished-above
    /// offsets of whichever it is (both at a tie).
    #[test]
    fn a_rollback_carries_the_finished_offsets_of_the_further_commit() {
        let frozen = BTreeMap::from([(tp(0), 10), (tp(1), 20), (tp(2), 30)]);
        let frozen_done = BTreeMap::from([(tp(0), vec![12]), (tp(1), vec![22]), (tp(2), vec![33])]);
        let c = |offset, done_above: &[i64]| kafka::Committed {
            offset,
            done_above: done_above.to_vec(),
        };
        let theirs = BTreeMap::from([
            (tp(0), c(15, &[17])),
            (tp(1), c(20, &[21, 22])),
            (tp(2), c(-1, &[])),
        ]);
        let (o, d) = furthest(&frozen, &frozen_done, theirs);
        assert_eq!(o, BTreeMap::from([(tp(0), 15), (tp(1), 20), (tp(2), 30)]));
        assert_eq!(
            d,
            BTreeMap::from([(tp(0), vec![17]), (tp(1), vec![21, 22]), (tp(2), vec![33])])
        );
    }
}
