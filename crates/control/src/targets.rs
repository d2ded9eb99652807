//! From desired state to runtime pause targets, per listener: which
//! [`PauseTarget`]s a listener should hold at a given time (expired pauses
//! left out, per-instance overrides applied), and the steps that move the
//! targets a listener holds to the wanted ones.
//!
//! ```
//! use switchyard_control::{model::{DesiredState, Pause}, targets::*};
//! use switchyard_runtime::PauseTarget;
//! let mut s = DesiredState::new("a");
//! let mut p = Pause::topic("l", "t");
//! p.expires_at_ms = Some(100);
//! s.pauses.push(p);
//! let none = Overrides::new();
//! assert_eq!(wanted(Some(&s), &none, "l", 99).len(), 1);
//! assert!(wanted(Some(&s), &none, "l", 100).is_empty());
//! ```

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use switchyard_runtime::{FloorScope, PauseTarget, StartFloor};

use crate::model::DesiredState;

/// A per-instance override of one listener (Spring actuator style). An
/// override can only pause more: it never runs what the desired state
/// withholds (the fleet's pauses, partitions owned by another slot or
/// frozen for a handoff).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Override {
    /// The whole listener paused on this instance, whatever the fleet's
    /// desired state says.
    Paused,
    /// No override: what the desired state says holds. (Kept for statuses
    /// of older instances, on which it ran the listener whatever the
    /// desired state said; the agent never stores it now.)
    Resumed,
}

/// Overrides of this instance, by listener.
pub type Overrides = BTreeMap<String, Override>;

/// The targets `listener` should hold at `now_ms`: the pauses of the
/// desired state not expired, plus the whole listener under a `Paused`
/// override (an override never lifts a pause). An unreadable desired
/// state ([`DesiredState::unreadable`]) holds the whole listener paused,
/// whatever the overrides say (fail closed).
pub fn wanted(
    desired: Option<&DesiredState>,
    overrides: &Overrides,
    listener: &str,
    now_ms: i64,
) -> BTreeSet<PauseTarget> {
    if desired.is_some_and(DesiredState::is_unreadable) {
        return BTreeSet::from([PauseTarget::Listener]);
    }
    let mut w: BTreeSet<PauseTarget> = desired
        .map(|d| {
            d.pauses
                .iter()
                .filter(|p| p.listener == listener && p.active_at(now_ms))
                .map(|p| p.target())
                .collect()
        })
        .unwrap_or_default();
    // an override can only pause more: `Paused` adds the whole listener,
    // `Resumed` lifts nothing
    if overrides.get(listener) == Some(&Override::Paused) {
        w.insert(PauseTarget::Listener);
    }
    w
}

/// The slot value meaning "owned by nobody" (frozen during a handoff).
pub const NOBODY: &str = "";

/// Parse an `owners` key: `topic-partition` (numeric suffix) or `topic`.
pub fn parse_owner_key(key: &str) -> PauseTarget {
    match key.rsplit_once('-') {
        Some((t, p)) if !t.is_empty() && !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
            match p.parse() {
                Ok(p) => PauseTarget::Partition(t.into(), p),
                Err(_) => PauseTarget::Topic(key.into()),
            }
        }
        _ => PauseTarget::Topic(key.into()),
    }
}

/// The targets that slot ownership makes `listener` hold on an instance of
/// `slot`: every partition (or topic) owned by another slot or by nobody
/// ([`NOBODY`]). A listener without `owners` entries is not constrained.
pub fn ownership_pauses(
    desired: Option<&DesiredState>,
    listener: &str,
    slot: &str,
) -> BTreeSet<PauseTarget> {
    desired
        .and_then(|d| d.owners.get(listener))
        .map(|m| {
            m.iter()
                .filter(|(_, owner)| owner.as_str() != slot)
                .map(|(k, _)| parse_owner_key(k))
                .collect()
        })
        .unwrap_or_default()
}

/// The handoff offset of `topic`/`partition` for `listener`, if any.
pub fn handoff_offset(
    desired: Option<&DesiredState>,
    listener: &str,
    topic: &str,
    partition: i32,
) -> Option<i64> {
    desired?
        .handoff
        .get(listener)?
        .get(&format!("{topic}-{partition}"))
        .copied()
}

/// The offsets above the handoff offset of `topic`/`partition` that the
/// previous owner had finished already (`handoff_done`; none if not said).
pub fn handoff_done(
    desired: Option<&DesiredState>,
    listener: &str,
    topic: &str,
    partition: i32,
) -> Vec<i64> {
    desired
        .and_then(|d| d.handoff_done.get(listener))
        .and_then(|m| m.get(&format!("{topic}-{partition}")))
        .cloned()
        .unwrap_or_default()
}

/// Does an instance of `slot` keep `listener` in its consumer group? Yes
/// unless the desired state's `joined` names the listener's slots and
/// `slot` is not among them (shared-group deployment strategy).
///
/// ```
/// use switchyard_control::{model::DesiredState, targets::joins};
/// let mut s = DesiredState::new("a");
/// assert!(joins(Some(&s), "l", "green"));
/// s.joined.insert("l".into(), vec!["blue".into()]);
/// assert!(joins(Some(&s), "l", "blue"));
/// assert!(!joins(Some(&s), "l", "green"));
/// ```
pub fn joins(desired: Option<&DesiredState>, listener: &str, slot: &str) -> bool {
    desired
        .and_then(|d| d.joined.get(listener))
        .is_none_or(|slots| slots.iter().any(|s| s == slot))
}

/// The start floors of `listener` on an instance of `slot`: the handoff
/// offsets of the partitions its slot owns (so whichever member of the
/// slot's group is assigned such a partition later starts at or above it),
/// each scoped to its handoff by `handoff_base` (the committed offset the
/// slot's group had then; unscoped when the document has none).
pub fn start_floors(desired: Option<&DesiredState>, listener: &str, slot: &str) -> Vec<StartFloor> {
    let Some(d) = desired else {
        return Vec::new();
    };
    let (Some(owners), Some(handoff)) = (d.owners.get(listener), d.handoff.get(listener)) else {
        return Vec::new();
    };
    let bases = d.handoff_base.get(listener);
    let done = d.handoff_done.get(listener);
    handoff
        .iter()
        .filter(|(k, _)| owners.get(*k).is_some_and(|o| o == slot))
        .filter_map(|(k, o)| match parse_owner_key(k) {
            PauseTarget::Partition(topic, partition) => Some(StartFloor {
                topic,
                partition,
                offset: *o,
                scope: match bases.and_then(|b| b.get(k)) {
                    Some(b) => FloorScope::Since((*b >= 0).then_some(*b)),
                    None => FloorScope::Unscoped,
                },
                done_above: done.and_then(|d| d.get(k)).cloned().unwrap_or_default(),
            }),
            _ => None,
        })
        .collect()
}

/// [`wanted`] plus the ownership pauses of an instance of `slot`, which no
/// override lifts (invariant I1: a partition owned by another slot, or by
/// nobody during a handoff, never runs here).
pub fn wanted_in_slot(
    desired: Option<&DesiredState>,
    overrides: &Overrides,
    listener: &str,
    slot: &str,
    now_ms: i64,
) -> BTreeSet<PauseTarget> {
    let mut w = wanted(desired, overrides, listener, now_ms);
    w.extend(ownership_pauses(desired, listener, slot));
    w
}

/// The earliest expiry after `now_ms` among the pauses of `desired`.
pub fn next_expiry(desired: Option<&DesiredState>, now_ms: i64) -> Option<i64> {
    desired?
        .pauses
        .iter()
        .filter_map(|p| p.expires_at_ms)
        .filter(|e| *e > now_ms)
        .min()
}

/// Steps from the held targets to the wanted ones: resume first, then pause.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Targets to resume.
    pub resume: Vec<PauseTarget>,
    /// Targets to pause (and wait for their acknowledgement).
    pub pause: Vec<PauseTarget>,
}

impl Plan {
    /// Nothing to do?
    pub fn is_empty(&self) -> bool {
        self.resume.is_empty() && self.pause.is_empty()
    }
}

/// The plan from `held` to `wanted`: resume what is held and no longer
/// wanted, pause what is wanted and not held. The runtime's resume of a
/// topic or the listener also lifts the narrower targets it covers, so the
/// agent resumes keeping the wanted ones
/// ([`ListenerHandle::resume_keeping`](switchyard_runtime::ListenerHandle::resume_keeping)):
/// a partition that stays wanted paused never runs for a moment.
pub fn plan(held: &BTreeSet<PauseTarget>, wanted: &BTreeSet<PauseTarget>) -> Plan {
    Plan {
        resume: held.difference(wanted).cloned().collect(),
        pause: wanted.difference(held).cloned().collect(),
    }
}

/// A target as text: `*`, `topic` or `topic-partition`.
pub fn describe(t: &PauseTarget) -> String {
    match t {
        PauseTarget::Listener => "*".into(),
        PauseTarget::Topic(t) => t.clone(),
        PauseTarget::Partition(t, p) => format!("{t}-{p}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Pause;

    fn topic(t: &str) -> PauseTarget {
        PauseTarget::Topic(t.into())
    }

    #[test]
    fn wanted_filters_by_listener_and_expiry_and_overrides_win() {
        let mut s = DesiredState::new("a");
        s.pauses.push(Pause::topic("l", "t"));
        s.pauses.push(Pause::partition("other", "t", 0));
        let mut timed = Pause::topic("l", "u");
        timed.expires_at_ms = Some(1000);
        s.pauses.push(timed);
        let mut o = Overrides::new();
        assert_eq!(
            wanted(Some(&s), &o, "l", 999),
            BTreeSet::from([topic("t"), topic("u")])
        );
        assert_eq!(
            wanted(Some(&s), &o, "l", 1000),
            BTreeSet::from([topic("t")])
        );
        assert_eq!(next_expiry(Some(&s), 999), Some(1000));
        assert_eq!(next_expiry(Some(&s), 1000), None);
        assert!(wanted(None, &o, "l", 0).is_empty());
        o.insert("l".into(), Override::Resumed);
        assert_eq!(wanted(Some(&s), &o, "l", 0).len(), 2, "lifts nothing");
        o.insert("l".into(), Override::Paused);
        assert_eq!(
            wanted(None, &o, "l", 0),
            BTreeSet::from([PauseTarget::Listener])
        );
        // an unreadable state holds every listener paused, overrides included
        let bad = DesiredState::unreadable("a", "garbage");
        o.insert("l".into(), Override::Resumed);
        for l in ["l", "other"] {
            assert_eq!(
                wanted_in_slot(Some(&bad), &o, l, "blue", 0),
                BTreeSet::from([PauseTarget::Listener])
            );
        }
    }

    #[test]
    fn ownership_pauses_what_another_slot_or_nobody_owns() {
        let mut s = DesiredState::new("a");
        let none = Overrides::new();
        s.add_pause(Pause::topic("l", "x")).unwrap();
        assert_eq!(wanted_in_slot(Some(&s), &none, "l", "blue", 0).len(), 1);
        let m = s.owners.entry("l".into()).or_default();
        m.insert("t-0".into(), "blue".into());
        m.insert("t-1".into(), "green".into());
        m.insert("t-2".into(), NOBODY.into());
        m.insert("u".into(), "green".into());
        let p = |t: &str, n| PauseTarget::Partition(t.into(), n);
        assert_eq!(
            ownership_pauses(Some(&s), "l", "blue"),
            BTreeSet::from([p("t", 1), p("t", 2), topic("u")])
        );
        assert_eq!(
            ownership_pauses(Some(&s), "l", "green"),
            BTreeSet::from([p("t", 0), p("t", 2)])
        );
        assert!(ownership_pauses(Some(&s), "other", "blue").is_empty());
        assert_eq!(wanted_in_slot(Some(&s), &none, "l", "green", 0).len(), 3);
        let mut o = Overrides::new();
        o.insert("l".into(), Override::Resumed);
        assert_eq!(wanted_in_slot(Some(&s), &o, "l", "green", 0).len(), 3);
        assert_eq!(parse_owner_key("my-topic-12"), p("my-topic", 12));
        assert_eq!(parse_owner_key("my-topic"), topic("my-topic"));
        s.handoff
            .entry("l".into())
            .or_default()
            .insert("t-1".into(), 42);
        assert_eq!(handoff_offset(Some(&s), "l", "t", 1), Some(42));
        assert_eq!(handoff_offset(Some(&s), "l", "t", 0), None);
    }

    #[test]
    fn start_floors_are_the_handoff_offsets_of_the_slot_scoped_to_their_handoff() {
        let mut s = DesiredState::new("a");
        let o = s.owners.entry("l".into()).or_default();
        for (k, slot) in [("t-0", "green"), ("t-1", "green"), ("t-2", "blue")] {
            o.insert(k.into(), slot.into());
        }
        let h = s.handoff.entry("l".into()).or_default();
        for (k, off) in [("t-0", 50), ("t-1", 60), ("t-2", 70)] {
            h.insert(k.into(), off);
        }
        let b = s.handoff_base.entry("l".into()).or_default();
        b.insert("t-0".into(), -1);
        s.handoff_done
            .entry("l".into())
            .or_default()
            .insert("t-0".into(), vec![52, 55]);
        let f = |partition, offset, scope| StartFloor {
            topic: "t".into(),
            partition,
            offset,
            scope,
            done_above: Vec::new(),
        };
        let done = StartFloor {
            done_above: vec![52, 55],
            ..f(0, 50, FloorScope::Since(None))
        };
        assert_eq!(
            start_floors(Some(&s), "l", "green"),
            vec![done, f(1, 60, FloorScope::Unscoped)]
        );
        assert_eq!(handoff_done(Some(&s), "l", "t", 0), vec![52, 55]);
        assert_eq!(handoff_done(Some(&s), "l", "t", 1), Vec::<i64>::new());
        s.handoff_base
            .get_mut("l")
            .unwrap()
            .insert("t-1".into(), 12);
        assert_eq!(
            start_floors(Some(&s), "l", "green")[1].scope,
            FloorScope::Since(Some(12))
        );
        assert_eq!(
            start_floors(Some(&s), "l", "blue"),
            vec![f(2, 70, FloorScope::Unscoped)]
        );
    }

    /// An instance override pauses more, never runs what the desired state
    /// withholds: slot ownership and the fleet's pauses hold whatever the
    /// override (invariant I1: a standby never runs what another slot owns).
    #[test]
    fn an_override_pauses_more_and_never_runs_what_the_desired_state_withholds() {
        let mut s = DesiredState::new("a");
        s.add_pause(Pause::topic("l", "x")).unwrap();
        let m = s.owners.entry("l".into()).or_default();
        m.insert("t-0".into(), "blue".into());
        m.insert("t-1".into(), "blue".into());
        let p = |n| PauseTarget::Partition("t".into(), n);
        let withheld = BTreeSet::from([topic("x"), p(0), p(1)]);
        let none = Overrides::new();
        assert_eq!(wanted_in_slot(Some(&s), &none, "l", "green", 0), withheld);
        let resumed = Overrides::from([("l".to_string(), Override::Resumed)]);
        assert_eq!(
            wanted_in_slot(Some(&s), &resumed, "l", "green", 0),
            withheld,
            "a resume override lifts nothing the desired state wants"
        );
        let paused = Overrides::from([("l".to_string(), Override::Paused)]);
        let w = wanted_in_slot(Some(&s), &paused, "l", "green", 0);
        assert!(w.contains(&PauseTarget::Listener) && w.is_superset(&withheld));
        assert!(w.contains(&PauseTarget::Listener));
        let w = wanted_in_slot(Some(&s), &paused, "l", "blue", 0);
        assert_eq!(w, BTreeSet::from([PauseTarget::Listener, topic("x")]));
    }

    #[test]
    fn plan_resumes_what_is_no_longer_wanted_and_pauses_what_is_new() {
        let p1 = PauseTarget::Partition("t".into(), 1);
        let held = BTreeSet::from([topic("t"), p1.clone()]);
        let want = BTreeSet::from([p1.clone()]);
        let pl = plan(&held, &want);
        assert_eq!(pl.resume, vec![topic("t")]);
        assert!(pl.pause.is_empty(), "the resume keeps p1");
        let pl = plan(&want, &held);
        assert_eq!(
            pl,
            Plan {
                resume: vec![],
                pause: vec![topic("t")]
            }
        );
        assert!(plan(&held, &held).is_empty());
        assert_eq!(describe(&p1), "t-1");
    }
}
