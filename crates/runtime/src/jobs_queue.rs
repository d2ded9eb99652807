//! The jobs queue of one partition: fetched records waiting for a worker,
//! arranged in *lanes* by the listener's [`Ordering`].
//!
//! - [`Ordering::Partition`]: one lane; one job at a time per partition, so
//!   records of a partition are handled in offset order.
//! - [`Ordering::Key`]: one lane per record key; one job at a time per key, so
//!   records of a key stay in order while different keys run in parallel.
//! - [`Ordering::Unordered`]: every record is its own job.
//!
//! A job takes up to `max` consecutive records of a ready lane and marks the
//! lane busy until the executor reports the job finished. Dispatch is O(1) per
//! job whatever the number of keys.
//!
//! ```
//! use switchyard_runtime::jobs_queue::{JobsQueue, Ordering};
//! # use rdkafka::message::{OwnedMessage, Timestamp};
//! # fn msg(o: i64, k: &str) -> OwnedMessage { OwnedMessage::new(Some(vec![]), Some(k.as_bytes().to_vec()), "t".into(), Timestamp::NotAvailable, 0, o, None) }
//! let mut q = JobsQueue::new(Ordering::Key);
//! q.push(msg(0, "a")); q.push(msg(1, "b")); q.push(msg(2, "a"));
//! let (lane_a, job) = q.next_job(10).unwrap();
//! assert_eq!(job.len(), 2);                        // both records of "a"
//! let (_, job_b) = q.next_job(10).unwrap();
//! assert_eq!(job_b.len(), 1);
//! assert!(q.next_job(10).is_none());               // every lane is busy or empty
//! q.finish(lane_a);
//! ```

use std::collections::VecDeque;

use ahash::AHashMap as HashMap;

use rdkafka::message::{Message, OwnedMessage};

use crate::record::message_size;

/// How records may be processed in parallel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Ordering {
    /// Records of a partition in order; partitions in parallel.
    #[default]
    Partition,
    /// Records of a key in order; keys in parallel (many keys per partition).
    Key,
    /// Any record in parallel.
    Unordered,
}

/// The lane a job belongs to: a 64-bit hash of the record key in key mode
/// (no copy of the key per record; two keys that collide share a lane, which
/// costs parallelism, never order), 0 otherwise.
pub type Lane = u64;

/// The lane of every record in partition and unordered modes.
const ONE_LANE: Lane = 0;

/// Records of one partition waiting for a worker.
#[derive(Debug)]
pub struct JobsQueue {
    ordering: Ordering,
    lanes: HashMap<Lane, LaneState>,
    hasher: ahash::RandomState,
    ready: VecDeque<Lane>,
    busy: usize,
    len: usize,
    bytes: usize,
}

/// One lane: its waiting records, and whether a job of it is running. A lane
/// is forgotten when it is neither busy nor has records waiting. Its first
/// waiting record is held inline: with many keys most lanes hold one record,
/// and they then cost no allocation.
#[derive(Debug, Default)]
struct LaneState {
    first: Option<OwnedMessage>,
    more: VecDeque<OwnedMessage>,
    busy: bool,
}

impl LaneState {
    fn len(&self) -> usize {
        self.first.is_some() as usize + self.more.len()
    }

    fn push(&mut self, msg: OwnedMessage) {
        if self.first.is_none() && self.more.is_empty() {
            self.first = Some(msg);
        } else {
            self.more.push_back(msg);
        }
    }

    /// Move up to `max` (at least one) records, oldest first, to `out`.
    fn take_into(&mut self, max: usize, out: &mut Vec<OwnedMessage>) -> usize {
        let mut n = 0;
        if let Some(m) = self.first.take() {
            out.push(m);
            n += 1;
        }
        let more = self.more.len().min(max.max(1) - n);
        out.extend(self.more.drain(..more));
        n + more
    }

    fn drain(&mut self) -> impl Iterator<Item = OwnedMessage> + '_ {
        self.first.take().into_iter().chain(self.more.drain(..))
    }
}

impl JobsQueue {
    /// An empty queue for `ordering`.
    pub fn new(ordering: Ordering) -> Self {
        JobsQueue {
            ordering,
            lanes: HashMap::new(),
            hasher: ahash::RandomState::new(),
            ready: VecDeque::new(),
            busy: 0,
            len: 0,
            bytes: 0,
        }
    }

    fn lane_of(&self, msg: &OwnedMessage) -> Lane {
        match self.ordering {
            Ordering::Key => self.hasher.hash_one(msg.key().unwrap_or_default()),
            Ordering::Partition | Ordering::Unordered => ONE_LANE,
        }
    }

    pub fn push(&mut self, msg: OwnedMessage) {
        self.len += 1;
        self.bytes += message_size(&msg);
        let lane = self.lane_of(&msg);
        let state = self.lanes.entry(lane).or_default();
        state.push(msg);
        if self.ordering != Ordering::Unordered && state.len() == 1 && !state.busy {
            self.ready.push_back(lane);
        }
    }

    /// Take the next job: up to `max` records of a ready lane, which becomes busy.
    pub fn next_job(&mut self, max: usize) -> Option<(Lane, Vec<OwnedMessage>)> {
        let mut job = Vec::new();
        self.next_job_into(max, &mut job).map(|lane| (lane, job))
    }

    /// [`next_job`](Self::next_job), appending the records to `out` (one
    /// buffer for the lanes of several jobs); returns the lane.
    pub fn next_job_into(&mut self, max: usize, out: &mut Vec<OwnedMessage>) -> Option<Lane> {
        let before = out.len();
        let lane = if self.ordering == Ordering::Unordered {
            self.lanes.get_mut(&ONE_LANE)?.take_into(1, out);
            ONE_LANE
        } else {
            let lane = self.ready.pop_front()?;
            let state = self.lanes.get_mut(&lane)?;
            state.take_into(max, out);
            state.busy = true;
            self.busy += 1;
            lane
        };
        let taken = &out[before..];
        if taken.is_empty() {
            return None;
        }
        self.len -= taken.len();
        self.bytes -= taken.iter().map(message_size).sum::<usize>();
        Some(lane)
    }

    /// The job of `lane` has finished: the lane may run again.
    pub fn finish(&mut self, lane: Lane) {
        if self.ordering == Ordering::Unordered {
            return;
        }
        let Some(state) = self.lanes.get_mut(&lane) else {
            return;
        };
        if !std::mem::take(&mut state.busy) {
            return;
        }
        self.busy -= 1;
        if state.len() == 0 {
            self.lanes.remove(&lane);
        } else {
            self.ready.push_back(lane);
        }
    }

    /// Drop every waiting record (pause, revoke, seek); returns the dropped
    /// offsets. Busy lanes stay busy until their jobs finish.
    pub fn drain_all(&mut self) -> Vec<i64> {
        let dropped = self
            .lanes
            .values_mut()
            .flat_map(|l| l.drain().map(|m| m.offset()))
            .collect();
        self.lanes.retain(|_, l| l.busy);
        self.ready.clear();
        self.len = 0;
        self.bytes = 0;
        dropped
    }

    /// Waiting records.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no record waits.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Approximate bytes of waiting records.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Lanes with a job in flight.
    pub fn busy_lanes(&self) -> usize {
        self.busy
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::message::Timestamp;

    fn msg(o: i64, k: &str) -> OwnedMessage {
        OwnedMessage::new(
            Some(b"v".to_vec()),
            Some(k.as_bytes().to_vec()),
            "t".into(),
            Timestamp::NotAvailable,
            0,
            o,
            None,
        )
    }

    #[test]
    fn partition_mode_is_one_job_at_a_time() {
        let mut q = JobsQueue::new(Ordering::Partition);
        for o in 0..5 {
            q.push(msg(o, &format!("k{o}")));
        }
        let (lane, job) = q.next_job(3).unwrap();
        assert_eq!(
            job.iter().map(|m| m.offset()).collect::<Vec<_>>(),
            [0, 1, 2]
        );
        assert!(q.next_job(3).is_none());
        q.finish(lane);
        let (_, job) = q.next_job(3).unwrap();
        assert_eq!(job.iter().map(|m| m.offset()).collect::<Vec<_>>(), [3, 4]);
        assert!(q.is_empty());
    }

    #[test]
    fn key_mode_keeps_key_order_and_parallelises_keys() {
        let mut q = JobsQueue::new(Ordering::Key);
        q.push(msg(0, "a"));
        q.push(msg(1, "b"));
        let (la, ja) = q.next_job(10).unwrap();
        q.push(msg(2, "a")); // arrives while "a" is busy
        let (_, jb) = q.next_job(10).unwrap();
        assert_eq!((ja[0].offset(), jb[0].offset()), (0, 1));
        assert!(q.next_job(10).is_none(), "a is busy");
        q.finish(la);
        let (_, ja2) = q.next_job(10).unwrap();
        assert_eq!(ja2[0].offset(), 2);
    }

    #[test]
    fn unordered_gives_single_records() {
        let mut q = JobsQueue::new(Ordering::Unordered);
        q.push(msg(0, "a"));
        q.push(msg(1, "a"));
        assert!(q.next_job(10).is_some());
        assert!(q.next_job(10).is_some());
        assert!(q.next_job(10).is_none());
    }

    #[test]
    fn drain_reports_dropped_offsets_and_resets_counts() {
        let mut q = JobsQueue::new(Ordering::Key);
        q.push(msg(7, "b"));
        q.push(msg(5, "a"));
        assert!(q.bytes() > 0);
        let mut d = q.drain_all();
        d.sort();
        assert_eq!(d, [5, 7]);
        assert_eq!((q.len(), q.bytes()), (0, 0));
        assert!(q.next_job(1).is_none());
    }
}
