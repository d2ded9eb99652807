//! Pause and resume of partitions, with the exact semantics of docs/design.md:
//!
//! 1. dispatch nothing more from the partition;
//! 2. pause fetching in librdkafka and keep polling (no rebalance, however long);
//! 3. drop fetched records that no worker took yet; fetching restarts at the
//!    first of them (seek before resume);
//! 4. when the partition's in-flight records are finished, commit synchronously;
//! 5. only then acknowledge, with the committed offset.
//!
//! A commit that fails is no acknowledgement: the partition stays draining
//! (drained, not paused) with the failure as its reason, the answer carries
//! the failure ([`PauseAck::is_acknowledged`] is false), and a later pause
//! of it tries the commit again. A partition stopped by the failure policy
//! counts as paused once no record of it runs any more (in key or
//! unordered mode other lanes may still run after the stop) and it is
//! committed below the failed record.
//!
//! A handler call that is still running when the pause timeout passes
//! (`ListenerBuilder::pause_timeout`) is abandoned: its task is aborted (its
//! worker permit freed), its record is not committed and is delivered again
//! after the resume, and the pause completes.
//!
//! Resume is the reverse: seek to where the partition stopped, resume fetching.
//! The wanted pauses are kept as a set of [`PauseTarget`]s, not as partition
//! flags, so they follow partitions across rebalances: a newly assigned
//! partition that a target covers starts paused (see rebalance.rs).

use std::collections::BTreeSet;
use std::time::Instant;

use rdkafka::consumer::{BaseConsumer, CommitMode, ConsumerContext};
use switchyard_config::Tp;
use tokio::sync::oneshot;

use crate::command::{PartitionAck, PartitionState, PauseAck, PauseTarget};
use crate::coordinator::{Coordinator, PauseWaiter};
use crate::partition::PauseStart;

impl Coordinator {
    /// Is `tp` covered by a wanted pause?
    pub fn is_desired_paused(&self, tp: &Tp) -> bool {
        self.desired.iter().any(|t| t.matches(&tp.0, tp.1))
    }

    /// Pause `target`; `ack` is answered once every matching assigned
    /// partition is drained and committed.
    pub fn pause(
        &mut self,
        kafka: &BaseConsumer<impl ConsumerContext>,
        target: PauseTarget,
        ack: oneshot::Sender<PauseAck>,
    ) {
        let matching: BTreeSet<Tp> = self
            .parts
            .keys()
            .filter(|tp| target.matches(&tp.0, tp.1))
            .cloned()
            .collect();
        self.desired.insert(target);
        // drained at once, or drained before but not committed (a failed
        // commit, or a stopped partition): committed now
        let idle: Vec<Tp> = matching
            .iter()
            .filter(|tp| self.start_pause(kafka, tp) || self.uncommitted_idle(tp))
            .cloned()
            .collect();
        // one synchronous commit for every partition drained at once, not
        // one round trip to the coordinator per partition
        self.complete_pauses(kafka, &idle);
        self.pause_waiters.push(PauseWaiter {
            partitions: matching,
            deadline: Instant::now() + self.settings.pause_timeout,
            ack,
        });
        self.answer_pause_waiters();
    }

    /// Nothing of `tp` runs, but it is not committed as a pause requires:
    /// drained with a failed commit, or stopped.
    fn uncommitted_idle(&self, tp: &Tp) -> bool {
        self.parts.get(tp).is_some_and(|p| p.drained_uncommitted())
    }

    /// Pauses past their deadline: abandon the handler calls still running
    /// in their draining partitions (see the module docs) and complete them.
    /// Called every turn of the poll loop; costs nothing without waiters.
    pub fn enforce_pause_deadlines(&mut self, kafka: &BaseConsumer<impl ConsumerContext>) {
        if self.pause_waiters.is_empty() {
            return;
        }
        let now = Instant::now();
        let late: BTreeSet<Tp> = self
            .pause_waiters
            .iter()
            .filter(|w| w.deadline <= now)
            .flat_map(|w| w.partitions.iter())
            .filter(|tp| self.parts.get(*tp).is_some_and(|p| p.draining_with_lanes()))
            .cloned()
            .collect();
        if late.is_empty() {
            return;
        }
        for tp in &late {
            self.abandon_in_flight(tp, "pause timeout");
        }
        let drained: Vec<Tp> = late.into_iter().collect();
        self.complete_pauses(kafka, &drained);
    }

    /// Steps 1-3 for one partition. True when nothing of it is in flight:
    /// it is drained, and completing the pause is up to the caller;
    /// otherwise the end of its last in-flight job completes it.
    pub fn start_pause(&mut self, kafka: &BaseConsumer<impl ConsumerContext>, tp: &Tp) -> bool {
        let Some(part) = self.parts.get_mut(tp) else {
            return false;
        };
        let start = part.begin_pause();
        if start == PauseStart::NotRunning {
            return false;
        }
        self.apply_fetch(kafka, tp);
        tracing::info!(listener = %self.name, topic = %tp.0, partition = tp.1, "pausing partition");
        start == PauseStart::Drained
    }

    /// Steps 4 and 5: the partition is drained; commit and acknowledge.
    pub fn complete_pause(&mut self, kafka: &BaseConsumer<impl ConsumerContext>, tp: &Tp) {
        self.complete_pauses(kafka, std::slice::from_ref(tp));
    }

    /// Steps 4 and 5 for drained partitions (draining, or stopped with
    /// nothing running): commit them synchronously (one request); then the
    /// draining ones are paused, or, if the commit failed, stay draining with
    /// the failure; then answer the waiters.
    pub fn complete_pauses(&mut self, kafka: &BaseConsumer<impl ConsumerContext>, tps: &[Tp]) {
        if tps.is_empty() {
            return;
        }
        let failure = match self.commit(kafka, CommitMode::Sync, Some(tps)) {
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(listener = %self.name, partitions = ?tps, error = %e, "commit on pause failed: not acknowledged");
                Some(format!("commit on pause failed: {e}"))
            }
        };
        for tp in tps {
            let Some(part) = self.parts.get_mut(tp) else {
                continue;
            };
            if part.pause_committed(failure.clone()) {
                tracing::info!(listener = %self.name, topic = %tp.0, partition = tp.1, committed = ?part.committed, "partition paused");
            }
        }
        self.answer_pause_waiters();
    }

    /// Answer every waiter whose partitions are all settled (paused,
    /// stopped, or drained with a failed commit, and nothing of them
    /// running) or gone.
    pub fn answer_pause_waiters(&mut self) {
        let parts = &self.parts;
        let done = |tp: &Tp| parts.get(tp).is_none_or(|p| p.pause_settled());
        let waiters = std::mem::take(&mut self.pause_waiters);
        for w in waiters {
            if w.partitions.iter().all(done) {
                let partitions = w
                    .partitions
                    .iter()
                    .filter_map(|tp| parts.get(tp))
                    .map(|p| PartitionAck {
                        topic: p.topic.clone(),
                        partition: p.partition,
                        committed: p.committed,
                        error: p.pause_failure().map(str::to_string),
                    })
                    .collect();
                let _ = w.ack.send(PauseAck { partitions });
            } else {
                self.pause_waiters.push(w);
            }
        }
    }

    /// Remove `target` (and narrower targets it covers, except those in
    /// `keep`) from the wanted pauses and resume every partition no longer
    /// covered. A partition stopped by the failure policy is resumed at the
    /// failed record, or after it with `skip`.
    pub fn resume(
        &mut self,
        kafka: &BaseConsumer<impl ConsumerContext>,
        target: &PauseTarget,
        skip: bool,
        keep: &[PauseTarget],
    ) {
        self.desired
            .retain(|t| !covers(target, t) || (t != target && keep.contains(t)));
        let tps: Vec<Tp> = self
            .parts
            .iter()
            .filter(|(tp, p)| p.state() != PartitionState::Running && target.matches(&tp.0, tp.1))
            .map(|(tp, _)| tp.clone())
            .collect();
        for tp in tps {
            if self.is_desired_paused(&tp) {
                continue;
            }
            let part = self.parts.get_mut(&tp).expect("listed above");
            if let Some(offset) = part.resume(skip) {
                tracing::warn!(listener = %self.name, topic = %tp.0, partition = tp.1, offset, "skipped the stopped record");
                self.stats.skipped.inc();
                self.dirty = true;
            }
            tracing::info!(listener = %self.name, topic = %tp.0, partition = tp.1, next = ?part.tracker.next(), "resuming partition");
            self.apply_fetch(kafka, &tp);
        }
    }
}

/// Does resuming `outer` also lift `inner`?
fn covers(outer: &PauseTarget, inner: &PauseTarget) -> bool {
    match (outer, inner) {
        (PauseTarget::Listener, _) => true,
        (PauseTarget::Topic(a), PauseTarget::Topic(b)) => a == b,
        (PauseTarget::Topic(a), PauseTarget::Partition(b, _)) => a == b,
        (a, b) => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resuming_a_topic_lifts_its_partitions_but_not_the_listener() {
        let topic = PauseTarget::Topic("t".into());
        assert!(covers(&topic, &PauseTarget::Partition("t".into(), 1)));
        assert!(!covers(&topic, &PauseTarget::Listener));
        assert!(!covers(&topic, &PauseTarget::Topic("u".into())));
        assert!(covers(&PauseTarget::Listener, &topic));
    }
}
