//! What happens when a handler fails: retries with exponential backoff
//! ([`RetryPolicy`]), then the [`FailurePolicy`].
//!
//! Retries run on the worker that holds the record, so a failing record delays
//! only its own key (key mode) or partition (partition mode); other lanes go
//! on. After the last attempt the record is dead-lettered (with headers naming
//! the original topic, partition, offset, error and attempts), skipped, or the
//! partition stops at that record until an operator resumes or skips it.
//!
//! ```
//! use std::time::Duration;
//! use switchyard_runtime::failure::RetryPolicy;
//! let p = RetryPolicy { max_attempts: 4, initial_backoff: Duration::from_millis(100),
//!                       max_backoff: Duration::from_millis(250) };
//! assert_eq!(p.backoff(1), Duration::from_millis(100));
//! assert_eq!(p.backoff(2), Duration::from_millis(200));
//! assert_eq!(p.backoff(3), Duration::from_millis(250)); // capped
//! ```

use std::time::Duration;

/// How often and how patiently a failing handler call is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first one included (1 = no retry).
    pub max_attempts: u32,
    /// Wait before the second attempt; doubles for every further attempt.
    pub initial_backoff: Duration,
    /// Upper bound of the wait.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// No retry: the first failure goes straight to the failure policy.
    pub fn none() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// The default for dead-letter writes: 3 attempts, 200 ms doubling, at
    /// most 2 s (each attempt also waits up to the producer's 10 s delivery
    /// timeout).
    pub fn dead_letter() -> Self {
        RetryPolicy {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(2),
        }
    }

    /// Wait after failed attempt number `attempt` (1-based).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u32
            .checked_shl(attempt.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.initial_backoff
            .checked_mul(factor)
            .unwrap_or(self.max_backoff)
            .min(self.max_backoff)
    }
}

/// What to do with a record whose handler failed on every attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FailurePolicy {
    /// Send it to the dead-letter topic and go on.
    #[default]
    DeadLetter,
    /// Count it, log it and go on.
    Skip,
    /// Stop the partition at this record (paused, with the reason) until an
    /// operator resumes it (retry) or skips it.
    StopPartition,
}

/// What to do with a record whose dead-letter write failed on every attempt
/// (the record is neither processed nor dead-lettered).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeadLetterFallback {
    /// Stop the partition at this record, with the reason (in the
    /// partition's status, the metrics and the log), until an operator
    /// resumes it (the write is tried again) or skips it. Nothing is lost.
    #[default]
    StopPartition,
    /// Count it, log it and go on: the record is lost.
    Skip,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_never_overflows() {
        let p = RetryPolicy::default();
        assert_eq!(p.backoff(200), p.max_backoff);
        assert_eq!(p.backoff(0), p.initial_backoff);
    }
}
