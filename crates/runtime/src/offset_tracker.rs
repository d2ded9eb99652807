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
//! ```
//! use switchyard_runtime::offset_tracker::OffsetTracker;
//! let mut t = OffsetTracker::new();
//! for o in 10..15 { t.ingest(o); }
//! t.complete(11);
//! t.complete(10);
//! assert_eq!(t.low_watermark(), Some(12)); // 12 is still pending
//! t.complete(13);
//! assert_eq!(t.low_watermark(), Some(12));
//! ```

use std::collections::BTreeSet;

/// Pending offsets of one partition and the commit point derived from them.
#[derive(Debug, Default, Clone)]
pub struct OffsetTracker {
    /// Ingested and not finished (in flight or waiting for a worker).
    pending: BTreeSet<i64>,
    /// Finished, but above the low watermark (out-of-order completion).
    done_above: BTreeSet<i64>,
    /// Offset after the last ingested record (or the rewind point).
    next: Option<i64>,
}

impl OffsetTracker {
    /// An empty tracker: nothing ingested, no commit point yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// A record at `offset` was taken from the consumer. Returns false when the
    /// record already finished earlier (it was re-fetched after a rewind): it
    /// must not be processed again.
    pub fn ingest(&mut self, offset: i64) -> bool {
        self.next = Some(self.next.map_or(offset + 1, |n| n.max(offset + 1)));
        if self.done_above.remove(&offset) {
            self.prune();
            return false;
        }
        self.pending.insert(offset);
        true
    }

    /// The record at `offset` has finished; returns false if it was not pending
    /// (a late completion after a seek, which is ignored).
    pub fn complete(&mut self, offset: i64) -> bool {
        if !self.pending.remove(&offset) {
            return false;
        }
        if self.low_watermark().is_some_and(|w| offset > w) {
            self.done_above.insert(offset);
        }
        self.prune();
        true
    }

    fn prune(&mut self) {
        if let Some(w) = self.low_watermark() {
            self.done_above = self.done_above.split_off(&w);
        }
    }

    /// Records that were waiting for a worker are dropped (pause, revoke,
    /// stop): they are no longer pending and fetching must resume at the
    /// smallest of them. Records in flight stay pending.
    pub fn drop_waiting(&mut self, dropped: impl IntoIterator<Item = i64>) {
        let mut min = None::<i64>;
        for o in dropped {
            self.pending.remove(&o);
            min = Some(min.map_or(o, |m| m.min(o)));
        }
        if let Some(m) = min {
            self.next = Some(self.next.map_or(m, |n| n.min(m)));
        }
    }

    /// Offsets known to be finished already (from the commit metadata of a
    /// previous owner): they are skipped when fetched.
    pub fn seed_done(&mut self, done: impl IntoIterator<Item = i64>) {
        self.done_above.extend(done);
    }

    /// The partition was moved to `offset` (seek): forget everything else.
    pub fn reset(&mut self, offset: i64) {
        self.pending.clear();
        self.done_above.clear();
        self.next = Some(offset);
    }

    /// The offset to commit: every record below it has finished.
    pub fn low_watermark(&self) -> Option<i64> {
        match (self.pending.first(), self.next) {
            (Some(&p), Some(n)) => Some(p.min(n)),
            (Some(&p), None) => Some(p),
            (None, n) => n,
        }
    }

    /// Number of ingested records that have not finished.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Where fetching continues: the offset after the last ingested record, or
    /// the smallest dropped one.
    pub fn next(&self) -> Option<i64> {
        self.next
    }

    /// Finished offsets above the low watermark (what a restart would process again).
    pub fn done_above(&self) -> impl Iterator<Item = i64> + '_ {
        self.done_above.iter().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn reset_forgets_in_flight() {
        let mut t = OffsetTracker::new();
        t.ingest(4);
        t.reset(100);
        assert_eq!(t.low_watermark(), Some(100));
        assert!(!t.complete(4));
    }
}
