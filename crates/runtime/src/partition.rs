//! One assigned partition as the runtime sees it, and every decision that
//! concerns it alone: a pure state machine with no Kafka client in it.
//!
//! A partition holds its life-cycle state ([`PartitionState`]), the jobs
//! queue of records waiting for a worker, the offset tracker, and whether
//! librdkafka is fetching it. Its methods take what happened (records
//! fetched, a pause, lanes of a job ended, a record failed for good, a
//! resume, the buffer's fill) and change the state; what librdkafka must do
//! about it comes back as a value ([`Fetch`], [`PauseStart`], [`LanesEnded`])
//! that the coordinator applies on the poll thread. The state diagram and
//! the pause semantics are in docs/design.md; the unit tests beside this file
//! pin every decision.
//!
//! A partition is created on assignment (with a fresh *slot* number, so that
//! late reports about an earlier assignment of the same partition are
//! ignored) and dropped on revoke.

use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};
use std::sync::Arc;

use crate::fetched::Fetched;

use crate::command::{PartitionState, PartitionStatus};
use crate::event::LaneEnds;
use crate::jobs_queue::{JobsQueue, Lane, Ordering};
use crate::offset_tracker::OffsetTracker;

/// What librdkafka must do with a partition's fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fetch {
    /// Stop fetching (`pause`).
    Pause,
    /// Fetch again (`resume`), from `from` when known: the first record
    /// dropped while the partition stood still, or the one after the last
    /// taken. `None`: it never took a record, and starts where librdkafka
    /// would.
    Resume { from: Option<i64> },
}

/// How a pause began for one partition ([`Partition::begin_pause`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PauseStart {
    /// It was not running (paused, draining or stopped already): nothing
    /// changed.
    NotRunning,
    /// Nothing of it was in flight: drained now, its commit is due.
    Drained,
    /// Records of it are in flight: the end of its last lane drains it.
    Draining,
}

/// What the end of lanes of a job changed ([`Partition::lanes_ended`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LanesEnded {
    /// Records newly finished.
    pub finished: u64,
    /// A pause (or a stop) waited for these lanes: nothing of the partition
    /// runs any more, its commit is due.
    pub drained: bool,
}

/// One job's worth of a partition's records ([`Partition::take_job`]).
#[derive(Debug)]
pub(crate) struct Taken {
    /// Each lane and how many of `records` are its, in order.
    pub lanes: Vec<(Lane, usize)>,
    pub records: Vec<Fetched>,
    /// Set when the partition halts: the job stops before its next record.
    pub halt: Arc<AtomicBool>,
}

/// Runtime state of one assigned partition.
#[derive(Debug)]
pub(crate) struct Partition {
    pub slot: u64,
    pub topic: String,
    pub partition: i32,
    state: PartitionState,
    pub queue: JobsQueue,
    pub tracker: OffsetTracker,
    /// Lanes handed to workers and not ended.
    in_flight_lanes: usize,
    /// Last next-offset known to be committed.
    pub committed: Option<i64>,
    /// Last next-offset sent in an async commit not yet confirmed.
    pub commit_sent: Option<i64>,
    /// Metadata (finished-above offsets) of the last commit sent.
    pub commit_meta: Option<String>,
    /// Fetching is paused in librdkafka.
    fetch_paused: bool,
    /// No more records are taken because the buffer is full.
    backpressured: bool,
    /// Its records come through its own fetch queue (fetch_queues.rs):
    /// backpressure stops taking them instead of pausing the fetch.
    pub own_queue: bool,
    /// The record the failure policy stopped at, with the reason.
    stopped_at: Option<(i64, String)>,
    /// The synchronous commit of a pause failed: drained but not
    /// committed, so not paused (acknowledged) yet.
    pause_failure: Option<String>,
    /// Shared with the jobs dispatched since the last halt: set, they stop
    /// before their next record ([`Partition::drop_waiting`]).
    halt: Arc<AtomicBool>,
}

impl Partition {
    pub fn new(slot: u64, topic: String, partition: i32, ordering: Ordering) -> Self {
        Partition {
            slot,
            topic,
            partition,
            state: PartitionState::Running,
            queue: JobsQueue::new(ordering),
            tracker: OffsetTracker::new(),
            in_flight_lanes: 0,
            committed: None,
            commit_sent: None,
            commit_meta: None,
            fetch_paused: false,
            backpressured: false,
            own_queue: false,
            stopped_at: None,
            pause_failure: None,
            halt: Arc::default(),
        }
    }

    pub fn state(&self) -> PartitionState {
        self.state
    }

    /// Fetching is paused in librdkafka (as last decided by
    /// [`Partition::fetch_change`]).
    pub fn fetch_paused(&self) -> bool {
        self.fetch_paused
    }

    /// Lanes of it handed to workers and not ended.
    pub fn in_flight_lanes(&self) -> usize {
        self.in_flight_lanes
    }

    /// Assigned while a wanted pause covers it: it starts paused, with
    /// nothing to drain.
    pub fn start_paused(&mut self) {
        self.state = PartitionState::Paused;
    }

    /// Records may be taken from its fetch queue now.
    pub fn takes_records(&self) -> bool {
        self.state == PartitionState::Running && !self.backpressured
    }

    /// A fetched record: queued for a worker while running; otherwise (it
    /// was fetched after a pause, stop or shutdown took effect) dropped, to
    /// be fetched again on resume. Records finished already (by a previous
    /// owner) are skipped.
    pub fn offer(&mut self, msg: Fetched, shutting_down: bool) {
        if self.state != PartitionState::Running || shutting_down {
            self.tracker.drop_waiting([msg.offset()]);
            return;
        }
        let ts = msg.timestamp().to_millis().unwrap_or(-1);
        if self.tracker.ingest_at(msg.offset(), ts) {
            self.queue.push(msg);
        }
    }

    /// One job: up to `lanes` ready lanes of up to `max_records` each,
    /// records of the same lane in order. `None` while it is not running or
    /// has nothing ready.
    pub fn take_job(&mut self, lanes: usize, max_records: usize, per_job: usize) -> Option<Taken> {
        if self.state != PartitionState::Running {
            return None;
        }
        let mut taken = Vec::with_capacity(lanes);
        let mut records = Vec::with_capacity(self.queue.len().min(per_job));
        while taken.len() < lanes {
            let before = records.len();
            match self.queue.next_job_into(max_records, &mut records) {
                Some(lane) => taken.push((lane, records.len() - before)),
                None => break,
            }
        }
        if taken.is_empty() {
            return None;
        }
        self.in_flight_lanes += taken.len();
        Some(Taken {
            lanes: taken,
            records,
            halt: self.halt.clone(),
        })
    }

    /// Records of it finished (processed, dead-lettered or skipped), reported
    /// while their lane goes on. Returns how many were new.
    pub fn finished(&mut self, offsets: impl IntoIterator<Item = i64>) -> u64 {
        offsets
            .into_iter()
            .map(|o| self.tracker.complete(o) as u64)
            .sum()
    }

    /// Lanes of a job ended: their last finished records are done, the
    /// lanes may run again, and the records they did not start (a halt) are
    /// fetched again.
    pub fn lanes_ended(&mut self, ends: LaneEnds) -> LanesEnded {
        let finished = self.finished(ends.done);
        self.in_flight_lanes = self.in_flight_lanes.saturating_sub(ends.lanes.len());
        for lane in ends.lanes {
            self.queue.finish(lane);
        }
        if !ends.unstarted.is_empty() {
            self.tracker.drop_waiting(ends.unstarted);
        }
        let drained = matches!(
            self.state,
            PartitionState::Draining | PartitionState::Stopped
        ) && self.in_flight_lanes == 0;
        LanesEnded { finished, drained }
    }

    /// Handler calls of it were abandoned at a deadline (`lanes` of them):
    /// every unfinished record is given up and fetched again from the first
    /// of them. Returns how many records.
    pub fn abandoned(&mut self, lanes: usize) -> usize {
        self.in_flight_lanes = self.in_flight_lanes.saturating_sub(lanes);
        self.drop_waiting();
        self.queue.forget_busy();
        self.tracker.drop_unfinished()
    }

    /// Every job of it was aborted at a shutdown's deadline.
    pub fn all_abandoned(&mut self) {
        self.in_flight_lanes = 0;
    }

    /// The failure policy stopped it at `offset`: nothing more is
    /// dispatched, the waiting records are dropped, and fetching starts at
    /// the failed record again on resume. The rest of its lane comes back
    /// as not started with the lane's end; other lanes (key or unordered
    /// mode) finish their record.
    pub fn stop_at(&mut self, offset: i64, reason: String) {
        self.state = PartitionState::Stopped;
        self.drop_waiting();
        self.tracker.drop_waiting([offset]);
        self.stopped_at = Some((offset, reason));
    }

    /// Steps 1-3 of a pause (docs/design.md): dispatch nothing more, drop
    /// the records waiting for a worker; the fetch is paused by the
    /// [`Fetch`] that [`Partition::fetch_change`] returns next.
    pub fn begin_pause(&mut self) -> PauseStart {
        if self.state != PartitionState::Running {
            return PauseStart::NotRunning;
        }
        self.state = PartitionState::Draining;
        self.drop_waiting();
        if self.in_flight_lanes == 0 {
            PauseStart::Drained
        } else {
            PauseStart::Draining
        }
    }

    /// Nothing of it runs, but it is not committed as a pause requires:
    /// drained with a failed commit, or stopped. A pause commits it again.
    pub fn drained_uncommitted(&self) -> bool {
        self.in_flight_lanes == 0
            && (self.state == PartitionState::Stopped
                || (self.state == PartitionState::Draining && self.pause_failure.is_some()))
    }

    /// Not running and records of it in flight: a pause past its deadline
    /// abandons them.
    pub fn draining_with_lanes(&self) -> bool {
        self.state != PartitionState::Running && self.in_flight_lanes > 0
    }

    /// Steps 4 and 5: the commit of a drained partition ended, with
    /// `failure` if it failed. A draining partition committed is paused
    /// (true); one whose commit failed stays draining with the failure as
    /// its reason, and a later pause commits again.
    pub fn pause_committed(&mut self, failure: Option<String>) -> bool {
        let paused = failure.is_none() && self.state == PartitionState::Draining;
        self.pause_failure = failure;
        if paused {
            self.state = PartitionState::Paused;
        }
        paused
    }

    /// Nothing of it runs, and it is paused, or stopped, or drained with a
    /// failed commit: a pause waiting for it can be answered.
    pub fn pause_settled(&self) -> bool {
        self.in_flight_lanes == 0
            && match self.state {
                PartitionState::Paused | PartitionState::Stopped => true,
                PartitionState::Draining => self.pause_failure.is_some(),
                PartitionState::Running => false,
            }
    }

    /// Why its pause failed, if it did.
    pub fn pause_failure(&self) -> Option<&str> {
        self.pause_failure.as_deref()
    }

    /// Resume it (no wanted pause covers it any more). A partition stopped
    /// by the failure policy resumes at the failed record, or after it with
    /// `skip`: the skipped offset is returned (finished without processing).
    pub fn resume(&mut self, skip: bool) -> Option<i64> {
        let mut skipped = None;
        if let Some((offset, _)) = self.stopped_at.take() {
            if skip {
                self.tracker.ingest(offset);
                self.tracker.complete(offset);
                skipped = Some(offset);
            }
        }
        self.state = PartitionState::Running;
        self.pause_failure = None;
        skipped
    }

    /// Partitions are going away (a revoke): dispatch stops, the waiting
    /// records are dropped, the records in flight finish (up to the revoke
    /// timeout).
    pub fn begin_revoke(&mut self) {
        self.drop_waiting();
        if self.state == PartitionState::Running {
            self.state = PartitionState::Draining;
        }
    }

    /// The buffer's fill changed: at or over its bound (`over`) every
    /// partition stops taking records, also one with nothing buffered (each
    /// would otherwise add a poll batch past it); at or below half (`under`)
    /// they go on. True when this partition's backpressure changed.
    pub fn backpressure(&mut self, over: bool, under: bool) -> bool {
        if over && !self.backpressured {
            self.backpressured = true;
            true
        } else if under && self.backpressured {
            self.backpressured = false;
            true
        } else {
            false
        }
    }

    /// Stopped taking records because the buffer is full.
    pub fn backpressured(&self) -> bool {
        self.backpressured
    }

    /// What librdkafka's fetch of it must become for it to fetch only while
    /// running, not backpressured and not shutting down; `None` when it is
    /// right already. A partition with its own fetch queue is backpressured
    /// by not taking its records, not by a pause of its fetch.
    pub fn fetch_change(&mut self, shutting_down: bool) -> Option<Fetch> {
        let backpressured = self.backpressured && !self.own_queue;
        let want = self.state == PartitionState::Running && !backpressured && !shutting_down;
        if want != self.fetch_paused {
            return None;
        }
        self.fetch_paused = !want;
        Some(if want {
            Fetch::Resume {
                from: self.tracker.next(),
            }
        } else {
            Fetch::Pause
        })
    }

    /// Drop the records waiting for a worker; fetching must start again at
    /// the first of them. Jobs running now stop before their next record and
    /// report the records they did not start, which are dropped the same way
    /// (so a pause, revoke or shutdown waits for one record per lane, not
    /// for whole jobs).
    pub fn drop_waiting(&mut self) {
        self.halt.store(true, AtomicOrdering::Relaxed);
        self.halt = Arc::default();
        let dropped = self.queue.drain_all();
        if !dropped.is_empty() {
            self.tracker.drop_waiting(dropped);
        }
    }

    pub fn in_flight_records(&self) -> usize {
        self.tracker.pending().saturating_sub(self.queue.len())
    }

    pub fn status(&self) -> PartitionStatus {
        // a stopped partition whose other lanes (key or unordered mode) still
        // run is still draining: not paused, and not idle
        let state = match self.state {
            PartitionState::Stopped if self.in_flight_lanes > 0 => PartitionState::Draining,
            s => s,
        };
        PartitionStatus {
            topic: self.topic.clone(),
            partition: self.partition,
            state,
            in_flight: self.in_flight_records(),
            buffered: self.queue.len(),
            committed: self.committed,
            buffered_bytes: self.queue.bytes(),
            log_end: None,
            lag: None,
            time_lag_ms: None,
            reason: self
                .stopped_at
                .as_ref()
                .map(|(_, r)| r.clone())
                .or_else(|| self.pause_failure.clone()),
        }
    }
}

#[cfg(test)]
mod tests;
