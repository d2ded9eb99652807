//! The pure part of a deployment: which partitions move between which slots
//! ([`Move`], made by [`switch`], [`canary`], [`promote`], [`abort`],
//! [`rollback`]), the desired-state change of each phase ([`freeze`],
//! [`transfer`], [`restore`]), the acknowledgement checks over instance
//! statuses ([`freeze_pending`], [`running_on`], and [`awaited_by_status`]
//! when the broker cannot list a group's members) and the phase machine
//! ([`Handoff`]).

use std::collections::{BTreeMap, BTreeSet};

use switchyard_control::model::DesiredState;
use switchyard_control::status::InstanceStatus;
use switchyard_control::targets::{parse_owner_key, NOBODY};
use switchyard_runtime::PauseTarget;

use crate::bookkeeping::{mark_in_progress, CANARY, CANARY_FROM, PREVIOUS};
use crate::kafka::Tp;

/// One handoff: `partitions` of `listener` move from slot `from` to `to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Move {
    /// Listener id.
    pub listener: String,
    /// The slot that owns the partitions now.
    pub from: String,
    /// The slot that will own them.
    pub to: String,
    /// The moving partitions.
    pub partitions: Vec<Tp>,
    /// Deployment bookkeeping before the move (written back by a rollback).
    pub meta_before: BTreeMap<String, String>,
    /// Deployment bookkeeping after the move.
    pub meta_after: BTreeMap<String, String>,
}

impl Move {
    /// The same move in the other direction.
    pub fn reversed(&self) -> Move {
        Move {
            listener: self.listener.clone(),
            from: self.to.clone(),
            to: self.from.clone(),
            partitions: self.partitions.clone(),
            meta_before: self.meta_after.clone(),
            meta_after: self.meta_before.clone(),
        }
    }
}

/// The `owners` key of a partition.
pub fn key(tp: &Tp) -> String {
    format!("{}-{}", tp.0, tp.1)
}

/// `t-1,t-3`.
pub fn describe(tps: &[Tp]) -> String {
    tps.iter().map(key).collect::<Vec<_>>().join(",")
}

/// The owner of every partition of `listener` (partition keys only).
pub fn owners(s: &DesiredState, listener: &str) -> BTreeMap<Tp, String> {
    s.owners
        .get(listener)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| match parse_owner_key(k) {
                    PauseTarget::Partition(t, p) => Some(((t, p), v.clone())),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Ownership of every partition of `topics` by `slot` (the first write).
pub fn init(s: &mut DesiredState, listener: &str, slot: &str, partitions: &[Tp]) {
    let m = s.owners.entry(listener.into()).or_default();
    for tp in partitions {
        m.insert(key(tp), slot.into());
    }
}

fn moving(
    s: &DesiredState,
    listener: &str,
    pick: impl Fn(&Tp, &str) -> bool,
) -> Result<(String, Vec<Tp>), String> {
    let o = owners(s, listener);
    if o.is_empty() {
        return Err(format!(
            "listener `{listener}` has no slot owners (run `deploy init` first)"
        ));
    }
    let frozen: Vec<Tp> = o
        .iter()
        .filter(|(_, v)| v.as_str() == NOBODY)
        .map(|(k, _)| k.clone())
        .collect();
    if !frozen.is_empty() {
        return Err(format!(
            "partitions {} are owned by nobody: a handoff is in progress or was interrupted",
            describe(&frozen)
        ));
    }
    let parts: Vec<(Tp, String)> = o.into_iter().filter(|(k, v)| pick(k, v)).collect();
    let mut from: Vec<&String> = parts.iter().map(|(_, v)| v).collect();
    from.sort();
    from.dedup();
    match from.as_slice() {
        [] => Err("nothing to move".into()),
        [one] => Ok((
            (*one).clone(),
            parts.iter().map(|(k, _)| k.clone()).collect(),
        )),
        many => Err(format!(
            "the partitions to move are owned by several slots ({})",
            many.iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

fn clear_canary(meta: &mut BTreeMap<String, String>) {
    meta.remove(CANARY);
    meta.remove(CANARY_FROM);
}

/// Move every partition not owned by `to` to `to`.
pub fn switch(s: &DesiredState, listener: &str, to: &str) -> Result<Move, String> {
    let (from, partitions) = moving(s, listener, |_, v| v != to)?;
    let mut meta_after = s.deploy.clone();
    clear_canary(&mut meta_after);
    meta_after.insert(PREVIOUS.into(), from.clone());
    Ok(Move {
        listener: listener.into(),
        from,
        to: to.into(),
        partitions,
        meta_before: s.deploy.clone(),
        meta_after,
    })
}

/// Move everything back to the previous slot.
pub fn rollback(s: &DesiredState, listener: &str) -> Result<Move, String> {
    let prev = s
        .deploy
        .get(PREVIOUS)
        .ok_or("no previous slot recorded")?
        .clone();
    switch(s, listener, &prev)
}

/// Move `partitions` (a subset, owned by one slot) to `to`.
pub fn canary(
    s: &DesiredState,
    listener: &str,
    to: &str,
    partitions: &[Tp],
) -> Result<Move, String> {
    if let Some(c) = s.deploy.get(CANARY) {
        return Err(format!(
            "a canary on slot `{c}` is running: promote or abort it first"
        ));
    }
    let o = owners(s, listener);
    for tp in partitions {
        if !o.contains_key(tp) {
            return Err(format!("partition {} has no owner", key(tp)));
        }
    }
    let (from, parts) = moving(s, listener, |k, v| v != to && partitions.contains(k))?;
    if parts.len() != partitions.len() {
        return Err("some of the partitions are already owned by the canary slot".into());
    }
    if parts.len() == o.len() {
        return Err("a canary of every partition is a switch".into());
    }
    let mut meta_after = s.deploy.clone();
    meta_after.insert(CANARY.into(), to.into());
    meta_after.insert(CANARY_FROM.into(), from.clone());
    Ok(Move {
        listener: listener.into(),
        from,
        to: to.into(),
        partitions: parts,
        meta_before: s.deploy.clone(),
        meta_after,
    })
}

/// After a canary: move the rest to the canary slot.
pub fn promote(s: &DesiredState, listener: &str) -> Result<Move, String> {
    let c = s.deploy.get(CANARY).ok_or("no canary is running")?.clone();
    let mut m = switch(s, listener, &c)?;
    m.meta_before = s.deploy.clone();
    Ok(m)
}

/// After a canary: move its partitions back.
pub fn abort(s: &DesiredState, listener: &str) -> Result<Move, String> {
    let c = s.deploy.get(CANARY).ok_or("no canary is running")?.clone();
    let back = s
        .deploy
        .get(CANARY_FROM)
        .ok_or("the canary's origin slot is not recorded")?
        .clone();
    let (from, partitions) = moving(s, listener, |_, v| v == c)?;
    let mut meta_after = s.deploy.clone();
    clear_canary(&mut meta_after);
    Ok(Move {
        listener: listener.into(),
        from,
        to: back,
        partitions,
        meta_before: s.deploy.clone(),
        meta_after,
    })
}

/// Phase 1: the moving partitions are owned by nobody.
/// The handoff in progress is recorded (`in_progress`: `from>to`) for
/// `deploy recover`; the transfer and the restore clear it.
pub fn freeze(s: &mut DesiredState, m: &Move) {
    let o = s.owners.entry(m.listener.clone()).or_default();
    for tp in &m.partitions {
        o.insert(key(tp), NOBODY.into());
    }
    mark_in_progress(s, &m.from, &m.to);
}

/// The handoff offsets of the moved partitions (none where `offsets` has
/// none). A new handoff offset has no scope until [`scope_handoff`] gives it
/// one: the scope of an earlier handoff never carries over.
fn set_handoff(s: &mut DesiredState, m: &Move, offsets: &BTreeMap<Tp, i64>) {
    let h = s.handoff.entry(m.listener.clone()).or_default();
    for tp in &m.partitions {
        match offsets.get(tp) {
            Some(o) if *o >= 0 => {
                h.insert(key(tp), *o);
            }
            _ => {
                h.remove(&key(tp));
            }
        }
    }
    forget(&mut s.handoff_base, m);
    forget(&mut s.handoff_done, m);
}

/// Remove the entries of the moved partitions from a listener -> partition
/// map (and the listener when nothing is left).
fn forget<V>(map: &mut BTreeMap<String, BTreeMap<String, V>>, m: &Move) {
    if let Some(b) = map.get_mut(&m.listener) {
        for tp in &m.partitions {
            b.remove(&key(tp));
        }
        if b.is_empty() {
            map.remove(&m.listener);
        }
    }
}

/// The offsets the previous owner had finished above the handoff offsets
/// of the moved partitions (`done`, read with them from its group's commit
/// metadata): the new owner skips them when it starts at the handoff
/// offset (key and unordered modes finish records out of order).
pub fn carry_done(s: &mut DesiredState, m: &Move, done: &BTreeMap<Tp, Vec<i64>>) {
    let Some(h) = s.handoff.get(&m.listener) else {
        return;
    };
    let carried: Vec<(String, Vec<i64>)> = m
        .partitions
        .iter()
        .filter_map(|tp| {
            let at = *h.get(&key(tp))?;
            let above: Vec<i64> = done.get(tp)?.iter().copied().filter(|o| *o > at).collect();
            (!above.is_empty()).then(|| (key(tp), above))
        })
        .collect();
    if carried.is_empty() {
        return;
    }
    s.handoff_done
        .entry(m.listener.clone())
        .or_default()
        .extend(carried);
}

/// Scope the handoff offsets of the moved partitions to this handoff:
/// `bases` are the committed offsets of the receiving slot's group (`m.to`)
/// when the handoff offsets are written (-1 or missing: none). The agents
/// make a handoff offset a start floor only while that group still stands
/// there (docs/deploy.md, "Start floors"): once it has committed anything
/// since (past the floor, or an operator's reset), the floor is spent.
pub fn scope_handoff(s: &mut DesiredState, m: &Move, bases: &BTreeMap<Tp, i64>) {
    let Some(h) = s.handoff.get(&m.listener) else {
        return;
    };
    let scoped: Vec<(String, i64)> = m
        .partitions
        .iter()
        .filter(|tp| h.contains_key(&key(tp)))
        .map(|tp| (key(tp), bases.get(tp).copied().unwrap_or(-1).max(-1)))
        .collect();
    if scoped.is_empty() {
        return;
    }
    s.handoff_base
        .entry(m.listener.clone())
        .or_default()
        .extend(scoped);
}

/// Phase 4: the target slot owns the partitions; `offsets` (the previous
/// owner's committed offsets) are their handoff offsets.
pub fn transfer(s: &mut DesiredState, m: &Move, offsets: &BTreeMap<Tp, i64>) {
    let o = s.owners.entry(m.listener.clone()).or_default();
    for tp in &m.partitions {
        o.insert(key(tp), m.to.clone());
    }
    set_handoff(s, m, offsets);
    s.deploy = m.meta_after.clone();
}

/// Rollback: the previous owner owns the partitions again, with `offsets`
/// as handoff offsets when some slot may have gone past its own.
pub fn restore(s: &mut DesiredState, m: &Move, offsets: Option<&BTreeMap<Tp, i64>>) {
    let o = s.owners.entry(m.listener.clone()).or_default();
    for tp in &m.partitions {
        o.insert(key(tp), m.from.clone());
    }
    if let Some(off) = offsets {
        set_handoff(s, m, off);
    }
    s.deploy = m.meta_before.clone();
}

pub(crate) fn live<'a>(
    statuses: &'a BTreeMap<String, InstanceStatus>,
    app: &'a str,
    slot: &'a str,
    now_ms: i64,
) -> impl Iterator<Item = &'a InstanceStatus> + 'a {
    statuses
        .values()
        .filter(move |s| s.app == app && s.slot == slot && !s.is_gone(now_ms))
}

/// The instances of `slot` whose status is live at `now_ms`.
pub fn live_instances(
    statuses: &BTreeMap<String, InstanceStatus>,
    app: &str,
    slot: &str,
    now_ms: i64,
) -> BTreeSet<String> {
    live(statuses, app, slot, now_ms)
        .map(|s| s.instance.clone())
        .collect()
}

/// Phase 2 when the broker cannot list the active group's members (e.g.
/// librdkafka's mock cluster): the instances to wait for instead of the
/// membership. Those of `slot` live now, and those live when the phase began
/// (`at_start`) whose status is still there: a status that goes stale during
/// the wait keeps its instance awaited (a killed instance blocks until the
/// phase times out and rolls back), while a clean stop removes the status
/// (after a drain and a commit). An instance already stale at the start is
/// not waited for: weaker than the broker's membership, which would wait
/// for its session to time out.
pub fn awaited_by_status(
    statuses: &BTreeMap<String, InstanceStatus>,
    app: &str,
    slot: &str,
    at_start: &BTreeSet<String>,
    now_ms: i64,
) -> BTreeSet<String> {
    let mut awaited = live_instances(statuses, app, slot, now_ms);
    awaited.extend(
        at_start
            .iter()
            .filter(|i| statuses.contains_key(*i))
            .cloned(),
    );
    awaited
}

/// Phase 2 by statuses is done when every awaited instance acknowledged
/// (nothing awaited: done).
pub fn freeze_done_by_status(awaited: &BTreeSet<String>, acked: &[String]) -> bool {
    awaited.iter().all(|i| acked.contains(i))
}

/// Phase 2: the live instances of `m.from` that have not acknowledged
/// `version` (applied, and every moving partition they hold paused).
pub fn freeze_pending(
    statuses: &BTreeMap<String, InstanceStatus>,
    app: &str,
    m: &Move,
    version: u64,
    now_ms: i64,
) -> Vec<String> {
    live(statuses, app, &m.from, now_ms)
        .filter(|s| {
            s.applied_version < version
                || s.listeners
                    .iter()
                    .filter(|l| l.name == m.listener)
                    .flat_map(|l| l.partitions.iter())
                    .any(|p| {
                        m.partitions.contains(&(p.topic.clone(), p.partition))
                            && p.state != "paused"
                    })
        })
        .map(|s| s.instance.clone())
        .collect()
}

/// Phase 2: the instances of `m.from`, live or not, that acknowledged
/// `version` (a status with `applied_version >= version` proves it).
pub fn freeze_acked(
    statuses: &BTreeMap<String, InstanceStatus>,
    app: &str,
    m: &Move,
    version: u64,
) -> Vec<String> {
    statuses
        .values()
        .filter(|s| s.app == app && s.slot == m.from && s.applied_version >= version)
        .filter(|s| {
            s.listeners
                .iter()
                .filter(|l| l.name == m.listener)
                .flat_map(|l| l.partitions.iter())
                .all(|p| {
                    !m.partitions.contains(&(p.topic.clone(), p.partition)) || p.state == "paused"
                })
        })
        .map(|s| s.instance.clone())
        .collect()
}

/// Phase 2 is done when no live instance of the active slot is pending and
/// at least as many instances acknowledged as the active group has members
/// (a status that merely went stale proves nothing: the broker's membership
/// decides), or the group has no members.
pub fn freeze_done(pending: usize, acked: usize, members: Option<usize>) -> bool {
    match members {
        Some(0) => true,
        Some(n) => pending == 0 && acked >= n,
        None => false,
    }
}

/// Phase 5: the moving partitions running on a live instance of `slot`
/// that applied `version`, with the instance and its committed offset.
pub fn running_on(
    statuses: &BTreeMap<String, InstanceStatus>,
    app: &str,
    m: &Move,
    slot: &str,
    version: u64,
    now_ms: i64,
) -> BTreeMap<Tp, (String, Option<i64>)> {
    let mut out = BTreeMap::new();
    for s in live(statuses, app, slot, now_ms).filter(|s| s.applied_version >= version) {
        for l in s.listeners.iter().filter(|l| l.name == m.listener) {
            for p in &l.partitions {
                let tp = (p.topic.clone(), p.partition);
                if p.state == "running" && m.partitions.contains(&tp) {
                    out.insert(tp, (s.instance.clone(), p.committed));
                }
            }
        }
    }
    out
}

/// Where a handoff is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Write the freeze (phase 1).
    WriteFreeze,
    /// Wait for the active slot's acknowledgements of this version (phase 2).
    AwaitFreeze(u64),
    /// Read the active group's committed offsets (phase 3).
    ReadOffsets,
    /// Write the new owner with these handoff offsets (phase 4).
    WriteTransfer(BTreeMap<Tp, i64>),
    /// Wait for the target slot to run the partitions at this version (phase 5).
    AwaitTransfer(u64),
    /// Finished.
    Done,
    /// Write the previous owner back. `after_transfer`: the target slot may
    /// have processed, so the rollback is a handoff back; `frozen`: the
    /// offsets read in phase 3.
    RollBack {
        /// Why.
        reason: String,
        /// Was the transfer (maybe) written?
        after_transfer: bool,
        /// Phase 3's offsets (empty before it).
        frozen: BTreeMap<Tp, i64>,
    },
}

/// What happened in the current step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A write was accepted as this version.
    Written(u64),
    /// The awaited acknowledgements arrived.
    Acked,
    /// Phase 3 read these offsets.
    Offsets(BTreeMap<Tp, i64>),
    /// The step timed out or failed, with the reason.
    Failed(String),
}

/// The phase machine of one handoff.
#[derive(Debug, Clone)]
pub struct Handoff {
    step: Step,
    frozen: BTreeMap<Tp, i64>,
}

impl Default for Handoff {
    fn default() -> Self {
        Handoff::new()
    }
}

impl Handoff {
    /// A handoff about to freeze.
    pub fn new() -> Handoff {
        Handoff {
            step: Step::WriteFreeze,
            frozen: BTreeMap::new(),
        }
    }

    /// The current step.
    pub fn step(&self) -> &Step {
        &self.step
    }

    /// The offsets read in phase 3.
    pub fn frozen(&self) -> &BTreeMap<Tp, i64> {
        &self.frozen
    }

    /// Advance on `e`; an event that does not fit the step is an error and
    /// changes nothing.
    pub fn on(&mut self, e: Event) -> Result<&Step, String> {
        use Step::*;
        let next = match (&self.step, e) {
            (WriteFreeze, Event::Written(v)) => AwaitFreeze(v),
            (AwaitFreeze(_), Event::Acked) => ReadOffsets,
            (ReadOffsets, Event::Offsets(o)) => {
                self.frozen = o.clone();
                WriteTransfer(o)
            }
            (WriteTransfer(_), Event::Written(v)) => AwaitTransfer(v),
            (AwaitTransfer(_), Event::Acked) => Done,
            (WriteFreeze, Event::Failed(r)) => RollBack {
                reason: r,
                after_transfer: false,
                frozen: BTreeMap::new(),
            },
            (AwaitFreeze(_) | ReadOffsets, Event::Failed(r)) => RollBack {
                reason: r,
                after_transfer: false,
                frozen: self.frozen.clone(),
            },
            (WriteTransfer(_) | AwaitTransfer(_), Event::Failed(r)) => RollBack {
                reason: r,
                after_transfer: true,
                frozen: self.frozen.clone(),
            },
            (s, e) => return Err(format!("event {e:?} does not fit step {s:?}")),
        };
        self.step = next;
        Ok(&self.step)
    }
}

#[cfg(test)]
mod tests;
