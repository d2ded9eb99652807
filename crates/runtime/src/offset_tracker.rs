//! Per-partition offset bookkeeping: which offset is safe to commit.
//!
//! Every record the poller takes out of librdkafka is *ingested* into the
//! [`OffsetTracker`] of its partition and stays *pending* until a handler has
//! finished with it (processed, dead-lettered or skipped by policy). The
//! commit point is the **low watermark**: the smallest pending offset, or the
//! offset after the last ingested record when nothing is pending. A record
//! that has not finished is therefore never committed, whatever order the
//! workers finish in (key-ordered and unordered modes finish out of order).
//!
//! When waiting records are dropped without being processed (pause, stop),
//! the tracker [forgets them](OffsetTracker::drop_waiting) and fetching
//! resumes at the first of them; records that finished above that point (out
//! of order, in key or unordered mode) are remembered and not processed again
//! when they are fetched a second time.
//!
//! ```ignore
//! use switchyard_runtime::offset_tracker::OffsetTracker;
//! let mut t = OffsetTracker::new();
//! for o in 10..15 { t.ingest(o); }
//! t.complete(11);
//! t.complete(10);
//! assert_eq!(t.low_watermark(), Some(12)); // 12 is still pending
//! t.complete(13);
//! assert_eq!(t.low_watermark(), Some(12));
//! ```
//!
//! (The unit test `the_module_example` runs this example.)

use std::collections::{BTreeSet, HashSet, VecDeque};

/// Pending offsets of one partition and the commit point derived from them.
///
/// Ingested offsets live in a deque in offset order with a *done* flag; done
/// entries leave the front as soon as nothing unfinished (and no dropped
/// offset) lies below them, so in partition mode the deque holds just the
/// records in flight or waiting, and every operation is O(1) amortised.
#[derive(Debug, Default, Clone)]
pub struct OffsetTracker {
    /// (offset, done, record timestamp in ms or -1), increasing offsets.
    entries: VecDeque<(i64, bool, i64)>,
    pending: usize,
    /// Finished according to the commit metadata of an earlier owner.
    preset_done: BTreeSet<i64>,
    /// Offset after the last ingested record, or the rewind point.
    next: Option<i64>,
    /// Where the next completion probably is (the entry after the last one):
    /// workers finish records roughly in offset order.
    hint: usize,
}

impl OffsetTracker {
    /// An empty tracker: nothing ingested, no commit point yet.
    pub fn new() -> Self {
        Self::default()
    }

    fn find(&self, offset: i64) -> Result<usize, usize> {
        // fast paths: in partition mode records arrive at the back and finish at the front
        match (self.entries.front(), self.entries.back()) {
            (None, _) => Err(0),
            (Some(f), _) if f.0 == offset => Ok(0),
            (_, Some(b)) if b.0 < offset => Err(self.entries.len()),
            _ => self.entries.binary_search_by_key(&offset, |e| e.0),
        }
    }

    /// Drop done entries from the front while no hole lies below them.
    fn pop_done(&mut self) {
        while let Some(&(o, true, _)) = self.entries.front() {
            match self.next {
                Some(n) if o <= n => {
                    self.next = Some(n.max(o + 1));
                    self.entries.pop_front();
                    self.hint = self.hint.saturating_sub(1);
                }
                _ => break,
            }
        }
    }

    /// A record at `offset` was taken from the consumer. Returns false when it
    /// must not be processed: it finished already (fetched again after a
    /// rewind, or finished by an earlier owner) or it is still in flight.
    pub fn ingest(&mut self, offset: i64) -> bool {
        self.ingest_at(offset, -1)
    }

    /// [`ingest`](Self::ingest) with the record's timestamp (ms), for
    /// [`oldest_pending_timestamp`](Self::oldest_pending_timestamp).
    pub fn ingest_at(&mut self, offset: i64, timestamp_ms: i64) -> bool {
        let below_next = self.next.is_some_and(|n| offset < n);
        self.next = Some(self.next.map_or(offset + 1, |n| n.max(offset + 1)));
        let fresh = match self.find(offset) {
            Ok(_) => false,
            Err(_) if below_next => false,
            Err(i) => {
                let done = self.preset_done.remove(&offset);
                if i == self.entries.len() {
                    self.entries.push_back((offset, done, timestamp_ms));
                } else {
                    self.entries.insert(i, (offset, done, timestamp_ms));
                }
                if !done {
                    self.pending += 1;
                }
                !done
            }
        };
        self.pop_done();
        fresh
    }

    /// The record at `offset` has finished; returns false if it was not pending
    /// (a late completion after a seek or a drop, which is ignored).
    pub fn complete(&mut self, offset: i64) -> bool {
        let found = match self.entries.get(self.hint) {
            Some(e) if e.0 == offset => Ok(self.hint),
            _ => self.find(offset),
        };
        match found {
            Ok(i) if !self.entries[i].1 => {
                self.entries[i].1 = true;
                self.hint = i + 1;
                self.pending -= 1;
                self.pop_done();
                true
            }
            _ => false,
        }
    }

    /// Records that were waiting for a worker are dropped (pause, revoke,
    /// stop): they are no longer pending and fetching must resume at the
    /// smallest of them. Records in flight stay pending.
    pub fn drop_waiting(&mut self, dropped: impl IntoIterator<Item = i64>) {
        let dropped: HashSet<i64> = dropped.into_iter().collect();
        let Some(&min) = dropped.iter().min() else {
            return;
        };
        let before = self.entries.len();
        self.entries
            .retain(|(o, done, _)| *done || !dropped.contains(o));
        self.pending -= before - self.entries.len();
        self.next = Some(self.next.map_or(min, |n| n.min(min)));
    }

    /// Every unfinished record is given up (its handler call was abandoned
    /// at a deadline): fetching resumes at the first of them. Returns how
    /// many.
    pub fn drop_unfinished(&mut self) -> usize {
        let dropped: Vec<i64> = self.entries.iter().filter(|e| !e.1).map(|e| e.0).collect();
        let n = dropped.len();
        self.drop_waiting(dropped);
        n
    }

    /// Offsets known to be finished already (from the commit metadata of a
    /// previous owner): they are skipped when fetched.
    pub fn seed_done(&mut self, done: impl IntoIterator<Item = i64>) {
        self.preset_done.extend(done);
    }

    /// The partition was moved to `offset` (seek): forget everything else.
    pub fn reset(&mut self, offset: i64) {
        self.entries.clear();
        self.preset_done.clear();
        self.pending = 0;
        self.next = Some(offset);
    }

    /// The offset to commit: every record below it has finished.
    pub fn low_watermark(&self) -> Option<i64> {
        let first_pending = self.entries.iter().find(|e| !e.1).map(|e| e.0);
        match (first_pending, self.next) {
            (Some(p), Some(n)) => Some(p.min(n)),
            (p, n) => p.or(n),
        }
    }

    /// Timestamp (ms) of the oldest record not finished, if known: the
    /// instance's own time lag is its age.
    pub fn oldest_pending_timestamp(&self) -> Option<i64> {
        self.entries
            .iter()
            .find(|e| !e.1)
            .map(|e| e.2)
            .filter(|t| *t >= 0)
    }

    /// Number of ingested records that have not finished.
    pub fn pending(&self) -> usize {
        self.pending
    }

    /// Where fetching continues: the offset after the last ingested record, or
    /// the smallest dropped one.
    pub fn next(&self) -> Option<i64> {
        self.next
    }

    /// Finished offsets above the low watermark (what a restart would process again).
    pub fn done_above(&self) -> impl Iterator<Item = i64> + '_ {
        let w = self.low_watermark().unwrap_or(i64::MIN);
        self.entries
            .iter()
            .filter(|e| e.1)
            .map(|e| e.0)
            .chain(self.preset_done.iter().copied())
            .filter(move |o| *o > w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the module docs.
    #[test]
    fn the_module_example() {
        use crate::offset_tracker::OffsetTracker;
        let mut t = OffsetTracker::new();
        for o in 10..15 {
            t.ingest(o);
        }
        t.complete(11);
        t.complete(10);
        assert_eq!(t.low_watermark(), Some(12)); // 12 is still pending
        t.complete(13);
        assert_eq!(t.low_watermark(), Some(12));
    }

    #[test]
    fn empty_tracker_has_no_commit_point() {
        assert_eq!(OffsetTracker::new().low_watermark(), None);
    }

    #[test]
    fn in_order_completion_advances() {
        let mut t = OffsetTracker::new();
        t.ingest(0);
        t.ingest(1);
        assert_eq!(t.low_watermark(), Some(0));
        t.complete(0);
        assert_eq!(t.low_watermark(), Some(1));
        t.complete(1);
        assert_eq!(t.low_watermark(), Some(2));
    }

    #[test]
    fn out_of_order_completion_never_passes_unfinished() {
        let mut t = OffsetTracker::new();
        for o in 100..110 {
            t.ingest(o);
        }
        for o in (101..110).rev() {
            t.complete(o);
            assert_eq!(t.low_watermark(), Some(100));
        }
        t.complete(100);
        assert_eq!(t.low_watermark(), Some(110));
    }

    #[test]
    fn gaps_from_compaction_are_skipped() {
        let mut t = OffsetTracker::new();
        t.ingest(5);
        t.ingest(9);
        t.complete(5);
        assert_eq!(t.low_watermark(), Some(9));
        t.complete(9);
        assert_eq!(t.low_watermark(), Some(10));
    }

    #[test]
    fn dropping_waiting_records_keeps_in_flight() {
        let mut t = OffsetTracker::new();
        for o in 0..10 {
            t.ingest(o);
        }
        // 0..3 in flight, 3..10 waiting and dropped
        t.drop_waiting(3..10);
        assert_eq!(t.pending(), 3);
        assert_eq!(t.low_watermark(), Some(0));
        for o in 0..3 {
            t.complete(o);
        }
        assert_eq!(t.low_watermark(), Some(3));
        assert_eq!(t.next(), Some(3));
        // a late completion of a dropped record is ignored
        assert!(!t.complete(7));
        assert_eq!(t.low_watermark(), Some(3));
    }

    #[test]
    fn finished_records_above_a_drop_are_not_processed_again() {
        let mut t = OffsetTracker::new();
        for o in 0..5 {
            t.ingest(o);
        }
        // 1 and 3 in flight (other keys), 0, 2, 4 waiting and dropped
        t.drop_waiting([0, 2, 4]);
        t.complete(3);
        t.complete(1);
        assert_eq!(t.low_watermark(), Some(0));
        // re-fetched after resume: 0, 2, 4 are new; 1 and 3 are already done
        assert!(t.ingest(0));
        assert!(!t.ingest(1));
        assert!(t.ingest(2));
        assert!(!t.ingest(3));
        assert!(t.ingest(4));
        for o in [0, 2, 4] {
            t.complete(o);
        }
        assert_eq!(t.low_watermark(), Some(5));
        assert_eq!(t.done_above().count(), 0);
    }

    #[test]
    fn oldest_pending_timestamp_follows_the_commit_point() {
        let mut t = OffsetTracker::new();
        t.ingest_at(0, 1000);
        t.ingest_at(1, 2000);
        assert_eq!(t.oldest_pending_timestamp(), Some(1000));
        t.complete(0);
        assert_eq!(t.oldest_pending_timestamp(), Some(2000));
        t.complete(1);
        assert_eq!(t.oldest_pending_timestamp(), None);
    }

    #[test]
    fn abandoned_records_are_fetched_again_from_the_first() {
        let mut t = OffsetTracker::new();
        for o in 0..4 {
            t.ingest(o);
        }
        t.complete(0);
        t.complete(2);
        assert_eq!(t.drop_unfinished(), 2);
        assert_eq!(t.pending(), 0);
        assert_eq!(t.low_watermark(), Some(1));
        assert_eq!(t.next(), Some(1));
        assert!(t.ingest(1));
        assert!(!t.ingest(2), "finished above the first abandoned one");
    }

    #[test]
    fn reset_forgets_in_flight() {
        let mut t = OffsetTracker::new();
        t.ingest(4);
        t.reset(100);
        assert_eq!(t.low_watermark(), Some(100));
        assert!(!t.complete(4));
    }
}
