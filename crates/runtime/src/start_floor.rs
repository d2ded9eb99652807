//! Start floors: where a partition starts when it is assigned later, at the
//! earliest. A deployment handoff hands a partition over with the previous
//! owner's committed offset; the member that holds the partition at that
//! moment seeks to `max(own committed, handoff)`, but if that member dies
//! before committing, or a rebalance moves the partition within its group,
//! the next holder would start at the group's older committed offset and
//! process again what the previous owner already did. With the handoff
//! offsets as start floors, every assignment starts at
//! `max(committed, floor)`, whichever member gets the partition.
//!
//! The floor is applied inside the rebalance callback, before the partition
//! is assigned in librdkafka (the assignment carries the start offset; a seek
//! right after an assignment races librdkafka's own committed-offset fetch),
//! and the start becomes the partition's next commit.
//!
//! A floor is scoped to its handoff ([`FloorScope`]): it holds only while
//! the group still stands where it stood at the handoff. Once the group has
//! committed at or past the floor (passed), or committed anything else since
//! (an operator reset its offsets, or the topic was deleted with its
//! offsets), or the floor lies beyond the log end (the topic was
//! re-created), the floor is spent: cleared, and not taken back when the
//! same floor is given again. It used to hold for ever, and a later
//! assignment after a reset or a re-created topic skipped every record below
//! it.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::{Offset, TopicPartitionList};
use switchyard_config::Tp;

/// Where a partition starts at the earliest when it is assigned later (a
/// handoff offset), and the scope of that floor.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StartFloor {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// The lowest start offset.
    pub offset: i64,
    /// While when it holds.
    pub scope: FloorScope,
    /// Offsets above `offset` that the previous owner had finished already
    /// (records finish out of order in key and unordered modes): a partition
    /// that starts at the floor skips them.
    pub done_above: Vec<i64>,
}

/// While when a start floor holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FloorScope {
    /// While the group's committed offset is still this one (`None`: it had
    /// none): the offset the group had committed when the floor was set (at
    /// the handoff). A commit since (past the floor, an operator's reset, a
    /// deleted topic's offsets gone) spends the floor.
    Since(Option<i64>),
    /// Not known (a handoff offset written before floors had scopes): while
    /// the group's committed offset is below the floor.
    Unscoped,
}

/// What a floor does to an assignment of its partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The partition starts at the floor.
    Apply,
    /// The group committed at or past the floor: spent.
    Passed,
    /// The group committed something else since the floor was set: spent.
    Superseded,
    /// The floor lies beyond the log end (a re-created topic): spent.
    BeyondLogEnd,
}

/// The verdict on `floor` for a partition whose group has `committed`;
/// `log_end` is asked only when the floor would apply.
pub(crate) fn verdict(
    floor: &StartFloor,
    committed: Option<i64>,
    log_end: impl FnOnce() -> Option<i64>,
) -> Verdict {
    if committed.is_some_and(|c| c >= floor.offset) {
        return Verdict::Passed;
    }
    if let FloorScope::Since(base) = floor.scope {
        if committed != base {
            return Verdict::Superseded;
        }
    }
    match log_end() {
        Some(end) if floor.offset > end => Verdict::BeyondLogEnd,
        _ => Verdict::Apply,
    }
}

/// Start floors given to the runtime and those it found spent.
#[derive(Debug, Default)]
pub(crate) struct Floors {
    /// The listener's name, for the log.
    listener: String,
    /// By partition.
    wanted: HashMap<Tp, StartFloor>,
    /// Spent floors: given again, they are ignored.
    spent: HashSet<StartFloor>,
    /// Partitions whose assignment was raised to their floor, until the
    /// assignment is tracked ([`Floors::take_applied`]).
    applied: HashMap<Tp, StartFloor>,
}

impl Floors {
    pub fn new(listener: &str) -> Self {
        Floors {
            listener: listener.to_string(),
            ..Floors::default()
        }
    }

    /// The floor `tp` was raised to in the assignment being tracked now.
    pub fn take_applied(&mut self, tp: &Tp) -> Option<StartFloor> {
        self.applied.remove(tp)
    }

    /// Replace the start floors (those found spent before stay spent).
    pub fn set(&mut self, floors: Vec<StartFloor>) {
        let spent = &self.spent;
        let wanted = floors
            .into_iter()
            .filter(|f| !spent.contains(f))
            .map(|f| ((f.topic.clone(), f.partition), f))
            .collect();
        self.wanted = wanted;
    }

    /// The floor of `tp` is spent: cleared, and ignored if given again.
    pub fn spend(&mut self, tp: &Tp, why: Verdict) {
        if let Some(f) = self.wanted.remove(tp) {
            tracing::info!(listener = %self.listener, topic = %tp.0, partition = tp.1, floor = f.offset, scope = ?f.scope, ?why, "start floor spent");
            self.spent.insert(f);
        }
    }

    /// Committed `offsets`: the floors they reach are passed.
    pub fn committed(&mut self, offsets: &[(String, i32, i64)]) {
        if self.wanted.is_empty() {
            return;
        }
        for (t, p, o) in offsets {
            let tp = (t.clone(), *p);
            if self.wanted.get(&tp).is_some_and(|f| *o >= f.offset) {
                self.spend(&tp, Verdict::Passed);
            }
        }
    }

    /// Before an assignment: raise the start offset of every partition of
    /// `tpl` whose floor applies ([`verdict`]: in scope, above its committed
    /// offset and within the log), and spend the others; remembers the
    /// raised ones for [`Floors::take_applied`].
    pub fn apply(
        &mut self,
        kafka: &BaseConsumer<impl ConsumerContext>,
        tpl: &mut TopicPartitionList,
        timeout: Duration,
    ) {
        let mut floored = TopicPartitionList::new();
        for e in tpl.elements() {
            if self
                .wanted
                .contains_key(&(e.topic().to_string(), e.partition()))
            {
                floored.add_partition(e.topic(), e.partition());
            }
        }
        if floored.count() == 0 {
            return;
        }
        let committed = match kafka.committed_offsets(floored, timeout) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(listener = %self.listener, error = %e, "cannot read committed offsets for the start floors");
                return;
            }
        };
        for e in committed.elements() {
            let tp: Tp = (e.topic().to_string(), e.partition());
            let Some(floor) = self.wanted.get(&tp).cloned() else {
                continue;
            };
            let c = match e.offset() {
                Offset::Offset(c) => Some(c),
                _ => None,
            };
            let log_end = || match kafka.fetch_watermarks(&tp.0, tp.1, timeout) {
                Ok((_, high)) => Some(high),
                Err(err) => {
                    tracing::warn!(listener = %self.listener, topic = %tp.0, partition = tp.1, error = %err, "cannot read the log end for a start floor");
                    None
                }
            };
            match verdict(&floor, c, log_end) {
                Verdict::Apply => {
                    if tpl
                        .set_partition_offset(&tp.0, tp.1, Offset::Offset(floor.offset))
                        .is_ok()
                    {
                        tracing::info!(listener = %self.listener, topic = %tp.0, partition = tp.1, floor = floor.offset, committed = ?e.offset(), "start floor: starting above the committed offset");
                        self.applied.insert(tp, floor);
                    }
                }
                spent => self.spend(&tp, spent),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn floor(offset: i64, scope: FloorScope) -> StartFloor {
        StartFloor {
            topic: "t".into(),
            partition: 0,
            offset,
            scope,
            done_above: Vec::new(),
        }
    }

    #[test]
    fn a_floor_holds_only_while_the_group_stands_where_it_stood_at_the_handoff() {
        let end = || Some(1000);
        let never = || -> Option<i64> { panic!("the log end is not needed") };
        // the member that took the handoff died before its first commit
        let f = floor(500, FloorScope::Since(Some(200)));
        assert_eq!(verdict(&f, Some(200), end), Verdict::Apply);
        let f = floor(500, FloorScope::Since(None));
        assert_eq!(verdict(&f, None, end), Verdict::Apply);
        // the group committed at or past it: passed
        assert_eq!(verdict(&f, Some(500), never), Verdict::Passed);
        assert_eq!(verdict(&f, Some(700), never), Verdict::Passed);
        // an operator reset the group's offsets after it had passed
        let f = floor(500, FloorScope::Since(None));
        assert_eq!(verdict(&f, Some(0), never), Verdict::Superseded);
        let f = floor(500, FloorScope::Since(Some(200)));
        assert_eq!(verdict(&f, Some(100), never), Verdict::Superseded);
        // a deleted topic's offsets are gone
        assert_eq!(verdict(&f, None, never), Verdict::Superseded);
        // a re-created topic is shorter than the floor
        let f = floor(500, FloorScope::Since(None));
        assert_eq!(verdict(&f, None, || Some(40)), Verdict::BeyondLogEnd);
        // a floor of an older driver: while the group is below it
        let f = floor(500, FloorScope::Unscoped);
        assert_eq!(verdict(&f, Some(100), end), Verdict::Apply);
        assert_eq!(verdict(&f, Some(500), never), Verdict::Passed);
        assert_eq!(verdict(&f, None, || Some(40)), Verdict::BeyondLogEnd);
        assert_eq!(verdict(&f, None, || None), Verdict::Apply);
    }
}
