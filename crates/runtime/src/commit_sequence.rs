//! The sequence guard for asynchronous commits.
//!
//! An asynchronous commit that fails must not be retried blindly: by the time
//! its failure arrives a newer commit may have been sent (or have succeeded),
//! and retrying the old offsets would move the group's committed offset
//! *backwards*. Java users guard against this with a sequence number captured
//! by the callback; [`CommitSequence`] does the same for librdkafka, whose
//! commit callback carries the committed offsets but no opaque value: an issued
//! commit is recognised in the callback by its offsets.
//!
//! Rule: a failed commit is retried only if it is still the newest commit
//! issued; otherwise it is *stale* and dropped (the newer commit carries
//! offsets at least as high).
//!
//! ```ignore
//! use switchyard_runtime::commit_sequence::{CommitSequence, Verdict};
//! let mut seq = CommitSequence::default();
//! let old = vec![(("t".to_string(), 0), 10)];
//! let new = vec![(("t".to_string(), 0), 20)];
//! seq.issued(old.clone());
//! seq.issued(new.clone());
//! assert_eq!(seq.failed(&old), Verdict::Stale);   // a newer commit was sent
//! assert_eq!(seq.failed(&new), Verdict::Retry);   // the newest may be retried
//! ```
//!
//! (The unit test `the_module_example` runs this example.)

use std::collections::VecDeque;

/// Offsets of one commit: ((topic, partition), next offset).
pub type CommitOffsets = Vec<((String, i32), i64)>;

/// What to do with a failed asynchronous commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// It is the newest commit issued: retry it (with the current offsets).
    Retry,
    /// A newer commit was issued after it: drop the failure.
    Stale,
    /// Not a commit this guard issued (a synchronous or librdkafka auto commit).
    Unknown,
}

/// Tracks issued asynchronous commits by sequence number.
#[derive(Debug, Default)]
pub struct CommitSequence {
    next_seq: u64,
    in_flight: VecDeque<(u64, CommitOffsets)>,
    stale_ignored: u64,
}

impl CommitSequence {
    /// Records a commit being sent; returns its sequence number.
    pub fn issued(&mut self, mut offsets: CommitOffsets) -> u64 {
        offsets.sort();
        self.next_seq += 1;
        self.in_flight.push_back((self.next_seq, offsets));
        // Bound memory if callbacks never arrive (broker gone).
        if self.in_flight.len() > 1024 {
            self.in_flight.pop_front();
        }
        self.next_seq
    }

    fn take(&mut self, offsets: &CommitOffsets) -> Option<u64> {
        let mut sorted = offsets.clone();
        sorted.sort();
        let pos = self.in_flight.iter().position(|(_, o)| *o == sorted)?;
        self.in_flight.remove(pos).map(|(s, _)| s)
    }

    /// A commit with `offsets` succeeded.
    pub fn succeeded(&mut self, offsets: &CommitOffsets) {
        self.take(offsets);
    }

    /// A commit with `offsets` failed: retry it or drop it?
    pub fn failed(&mut self, offsets: &CommitOffsets) -> Verdict {
        match self.take(offsets) {
            None => Verdict::Unknown,
            Some(seq) if seq == self.next_seq => Verdict::Retry,
            Some(_) => {
                self.stale_ignored += 1;
                Verdict::Stale
            }
        }
    }

    /// How many stale failures were dropped so far.
    #[cfg(test)]
    pub fn stale_ignored(&self) -> u64 {
        self.stale_ignored
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the module docs.
    #[test]
    fn the_module_example() {
        use crate::commit_sequence::{CommitSequence, Verdict};
        let mut seq = CommitSequence::default();
        let old = vec![(("t".to_string(), 0), 10)];
        let new = vec![(("t".to_string(), 0), 20)];
        seq.issued(old.clone());
        seq.issued(new.clone());
        assert_eq!(seq.failed(&old), Verdict::Stale); // a newer commit was sent
        assert_eq!(seq.failed(&new), Verdict::Retry); // the newest may be retried
    }

    fn offs(o: i64) -> CommitOffsets {
        vec![(("t".into(), 0), o), (("t".into(), 1), o + 1)]
    }

    #[test]
    fn stale_failure_is_not_retried() {
        let mut s = CommitSequence::default();
        s.issued(offs(1));
        s.issued(offs(2));
        s.succeeded(&offs(2));
        assert_eq!(s.failed(&offs(1)), Verdict::Stale);
        assert_eq!(s.stale_ignored(), 1);
    }

    #[test]
    fn newest_failure_is_retried() {
        let mut s = CommitSequence::default();
        s.issued(offs(1));
        assert_eq!(s.failed(&offs(1)), Verdict::Retry);
    }

    #[test]
    fn order_of_partitions_does_not_matter() {
        let mut s = CommitSequence::default();
        let mut o = offs(3);
        s.issued(o.clone());
        o.reverse();
        assert_eq!(s.failed(&o), Verdict::Retry);
    }

    #[test]
    fn foreign_commits_are_unknown() {
        let mut s = CommitSequence::default();
        assert_eq!(s.failed(&offs(9)), Verdict::Unknown);
    }
}
