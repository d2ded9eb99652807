//! One assigned partition as the runtime sees it: its life-cycle state, the
//! jobs queue of records waiting for a worker, the offset tracker, and whether
//! librdkafka is fetching it.
//!
//! A partition is created on assignment (with a fresh *slot* number, so that
//! late reports about an earlier assignment of the same partition are
//! ignored) and dropped on revoke. See docs/architecture.md for the states.

use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};
use std::sync::Arc;

use crate::command::{PartitionState, PartitionStatus};
use crate::jobs_queue::{JobsQueue, Ordering};
use crate::offset_tracker::OffsetTracker;

/// Runtime state of one assigned partition.
#[derive(Debug)]
pub(crate) struct Partition {
    pub slot: u64,
    pub topic: String,
    pub partition: i32,
    pub state: PartitionState,
    pub queue: JobsQueue,
    pub tracker: OffsetTracker,
    pub in_flight_lanes: usize,
    /// Last next-offset known to be committed.
    pub committed: Option<i64>,
    /// Last next-offset sent in an async commit not yet confirmed.
    pub commit_sent: Option<i64>,
    /// Metadata (finished-above offsets) of the last commit sent.
    pub commit_meta: Option<String>,
    /// Fetching is paused in librdkafka.
    pub fetch_paused: bool,
    /// No more records are taken because the buffer is full.
    pub backpressured: bool,
    /// Its records come through its own fetch queue (fetch_queues.rs).
    pub own_queue: bool,
    /// The record the failure policy stopped at, with the reason.
    pub stopped_at: Option<(i64, String)>,
    /// The synchronous commit of a pause failed: drained but not
    /// committed, so not paused (acknowledged) yet.
    pub pause_failure: Option<String>,
    /// Shared with the jobs dispatched since the last halt: set, they stop
    /// before their next record ([`Partition::drop_waiting`]).
    pub halt: Arc<AtomicBool>,
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
