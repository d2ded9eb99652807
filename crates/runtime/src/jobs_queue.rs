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
//! ```ignore
//! use switchyard_runtime::jobs_queue::{JobsQueue, Ordering};
//! # use rdkafka::message::{Fetched, Timestamp};
//! # fn msg(o: i64, k: &str) -> Fetched { Fetched::new(Some(vec![]), Some(k.as_bytes().to_vec()), "t".into(), Timestamp::NotAvailable, 0, o, None) }
//! let mut q = JobsQueue::new(Ordering::Key);
//! q.push(msg(0, "a")); q.push(msg(1, "b")); q.push(msg(2, "a"));
//! let (lane_a, job) = q.next_job(10).unwrap();
//! assert_eq!(job.len(), 2);                        // both records of "a"
//! let (_, job_b) = q.next_job(10).unwrap();
//! assert_eq!(job_b.len(), 1);
//! assert!(q.next_job(10).is_none());               // every lane is busy or empty
//! q.finish(lane_a);
//! ```
//!
//! (The unit test `the_module_example` runs this example.)

use std::collections::VecDeque;

use std::collections::hash_map::Entry;
use std::hash::{BuildHasherDefault, Hasher};

use crate::fetched::Fetched;

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
///
/// Layout, chosen for many short lanes (key mode with many keys): a lane's
/// first waiting record sits in `ready`, in arrival order, with the lane's
/// id; records behind it (or behind the lane's job in flight) sit in the
/// lane's `blocked` list. The lane map holds only small entries (no record
/// inline), so it stays in cache however many lanes are open, and each record
/// costs three lookups: at push, at dispatch and when its job finishes.
#[derive(Debug)]
pub struct JobsQueue {
    ordering: Ordering,
    /// Every lane with a record in `ready` or a job in flight.
    lanes: LaneMap,
    hasher: ahash::RandomState,
    /// Records that can start now: the first waiting record of each lane
    /// that is not busy (every record in unordered mode), oldest first.
    ready: VecDeque<(Lane, Fetched)>,
    busy: usize,
    len: usize,
    bytes: usize,
}

/// Lanes are already 64-bit hashes: the map uses them as they are.
type LaneMap = std::collections::HashMap<Lane, LaneState, BuildHasherDefault<LaneHasher>>;

/// The identity "hash" of a [`Lane`].
#[derive(Default)]
struct LaneHasher(u64);

impl Hasher for LaneHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // not used by `u64` keys; a plain fold keeps it correct anyway
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// One open lane: whether a job of it is in flight, and its records behind
/// the one in `ready` (or behind the job). A lane is forgotten when it is
/// neither busy nor has a record waiting.
#[derive(Debug, Default)]
struct LaneState {
    busy: bool,
    /// Boxed: most lanes never hold a second record, and a small entry keeps
    /// the map in cache (16 bytes against 40).
    #[allow(clippy::box_collection)]
    blocked: Option<Box<VecDeque<Fetched>>>,
}

impl JobsQueue {
    /// An empty queue for `ordering`.
    pub fn new(ordering: Ordering) -> Self {
        JobsQueue {
            ordering,
            lanes: LaneMap::default(),
            hasher: ahash::RandomState::new(),
            ready: VecDeque::new(),
            busy: 0,
            len: 0,
            bytes: 0,
        }
    }

    fn lane_of(&self, msg: &Fetched) -> Lane {
        match self.ordering {
            Ordering::Key => self.hasher.hash_one(msg.key().unwrap_or_default()),
            Ordering::Partition | Ordering::Unordered => ONE_LANE,
        }
    }

    pub fn push(&mut self, msg: Fetched) {
        self.len += 1;
        self.bytes += message_size(&msg);
        if self.ordering == Ordering::Unordered {
            self.ready.push_back((ONE_LANE, msg));
            return;
        }
        let lane = self.lane_of(&msg);
        match self.lanes.entry(lane) {
            Entry::Vacant(v) => {
                v.insert(LaneState::default());
                self.ready.push_back((lane, msg));
            }
            // busy, or its first record is in `ready`: this one waits behind.
            // In key order a lane may wait long while others go on: its
            // records are copied, so that they do not keep the fetch
            // responses they came in alive (fetched.rs).
            Entry::Occupied(o) => {
                let msg = if self.ordering == Ordering::Key {
                    msg.detached()
                } else {
                    msg
                };
                o.into_mut().blocked.get_or_insert_default().push_back(msg)
            }
        }
    }

    /// Take the next job: up to `max` records of a ready lane, which becomes busy.
    #[cfg(test)]
    pub fn next_job(&mut self, max: usize) -> Option<(Lane, Vec<Fetched>)> {
        let mut job = Vec::new();
        self.next_job_into(max, &mut job).map(|lane| (lane, job))
    }

    /// [`next_job`](Self::next_job), appending the records to `out` (one
    /// buffer for the lanes of several jobs); returns the lane.
    pub fn next_job_into(&mut self, max: usize, out: &mut Vec<Fetched>) -> Option<Lane> {
        let (lane, msg) = self.ready.pop_front()?;
        let mut bytes = message_size(&msg);
        out.push(msg);
        let mut n = 1;
        if self.ordering != Ordering::Unordered {
            let state = self.lanes.get_mut(&lane).expect("a ready lane is open");
            state.busy = true;
            self.busy += 1;
            if let Some(blocked) = state.blocked.as_mut() {
                let more = blocked.len().min(max.max(1) - 1);
                for m in blocked.drain(..more) {
                    bytes += message_size(&m);
                    out.push(m);
                }
                n += more;
            }
        }
        self.len -= n;
        self.bytes -= bytes;
        Some(lane)
    }

    /// The job of `lane` has finished: the lane may run again.
    pub fn finish(&mut self, lane: Lane) {
        if self.ordering == Ordering::Unordered {
            return;
        }
        let Entry::Occupied(mut o) = self.lanes.entry(lane) else {
            return;
        };
        let state = o.get_mut();
        if !std::mem::take(&mut state.busy) {
            return;
        }
        self.busy -= 1;
        match state.blocked.as_mut().and_then(|b| b.pop_front()) {
            Some(next) => self.ready.push_back((lane, next)),
            None => {
                o.remove();
            }
        }
    }

    /// Drop every waiting record (pause, revoke, seek); returns the dropped
    /// offsets. Busy lanes stay busy until their jobs finish.
    pub fn drain_all(&mut self) -> Vec<i64> {
        let mut dropped: Vec<i64> = self.ready.drain(..).map(|(_, m)| m.offset()).collect();
        for state in self.lanes.values_mut() {
            if let Some(blocked) = state.blocked.take() {
                dropped.extend(blocked.into_iter().map(|m| m.offset()));
            }
        }
        self.lanes.retain(|_, l| l.busy);
        self.len = 0;
        self.bytes = 0;
        dropped
    }

    /// The jobs of every busy lane were abandoned (a pause or a revoke past
    /// its deadline): their lanes are free. Call after
    /// [`drain_all`](Self::drain_all), which leaves only busy lanes.
    pub fn forget_busy(&mut self) {
        self.lanes.retain(|_, l| !l.busy);
        self.busy = 0;
    }

    /// Waiting records.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no record waits.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Approximate bytes of waiting records.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

/// A record of topic `t`, partition 0, at `offset` with `key` (value `v`),
/// for the tests of the runtime's pure parts.
#[cfg(test)]
pub(crate) fn test_record(offset: i64, key: &str) -> Fetched {
    Fetched::owned(rdkafka::message::OwnedMessage::new(
        Some(b"v".to_vec()),
        Some(key.as_bytes().to_vec()),
        "t".into(),
        rdkafka::message::Timestamp::NotAvailable,
        0,
        offset,
        None,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the module docs.
    #[test]
    fn the_module_example() {
        use crate::jobs_queue::{JobsQueue, Ordering};
        let mut q = JobsQueue::new(Ordering::Key);
        q.push(msg(0, "a"));
        q.push(msg(1, "b"));
        q.push(msg(2, "a"));
        let (lane_a, job) = q.next_job(10).unwrap();
        assert_eq!(job.len(), 2); // both records of "a"
        let (_, job_b) = q.next_job(10).unwrap();
        assert_eq!(job_b.len(), 1);
        assert!(q.next_job(10).is_none()); // every lane is busy or empty
        q.finish(lane_a);
    }
    use super::test_record as msg;

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

    /// Random pushes, jobs and finishes over few and many keys: every record
    /// is handed out once, a key's records in offset order, and never two
    /// jobs of one lane at once.
    #[test]
    fn key_mode_hands_out_every_record_once_in_key_order() {
        for keys in [1u64, 3, 50, 5000] {
            let mut rng = 0x9E37_79B9_7F4A_7C15u64;
            let mut next = || {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                rng
            };
            let mut q = JobsQueue::new(Ordering::Key);
            let (mut pushed, mut running) = (0i64, Vec::<Lane>::new());
            let mut seen = std::collections::HashMap::<String, i64>::new();
            let mut handed = 0;
            while handed < 20_000 {
                match next() % 3 {
                    0 if pushed < 20_000 => {
                        for _ in 0..(next() % 40).min(20_000 - pushed as u64) {
                            q.push(msg(pushed, &format!("k{}", pushed as u64 * 7919 % keys)));
                            pushed += 1;
                        }
                    }
                    1 if !running.is_empty() => {
                        let i = (next() as usize) % running.len();
                        q.finish(running.swap_remove(i));
                    }
                    _ => {
                        let Some((lane, job)) = q.next_job((next() % 5 + 1) as usize) else {
                            if pushed >= 20_000 && running.is_empty() {
                                break;
                            }
                            continue;
                        };
                        assert!(!running.contains(&lane), "two jobs of one lane");
                        running.push(lane);
                        for m in job {
                            let key = String::from_utf8(m.key().unwrap().to_vec()).unwrap();
                            let last = seen.insert(key, m.offset());
                            assert!(last.is_none_or(|l| l < m.offset()), "key order");
                            handed += 1;
                        }
                    }
                }
            }
            assert_eq!((handed, q.len(), q.bytes()), (20_000, 0, 0), "{keys} keys");
        }
    }
}
