//! Counters of a running listener, shared between the poller, the workers and
//! whoever reads them (the binary's summary, metrics exporters, tests).
//!
//! ```
//! use switchyard_runtime::stats::ListenerStats;
//! let s = ListenerStats::default();
//! s.processed.add(3);
//! assert_eq!(s.snapshot().processed, 3);
//! ```

use std::sync::atomic::{AtomicU64, Ordering};

/// A monotonically increasing counter.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Add `n`.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    /// Add one.
    pub fn inc(&self) {
        self.add(1)
    }
    /// Current value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

macro_rules! stats {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {
        /// Live counters of one listener.
        #[derive(Debug, Default)]
        pub struct ListenerStats { $($(#[$doc])* pub $name: Counter,)* }
        /// A point-in-time copy of [`ListenerStats`].
        #[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
        pub struct StatsSnapshot { $($(#[$doc])* pub $name: u64,)* }
        impl ListenerStats {
            /// Copy every counter.
            pub fn snapshot(&self) -> StatsSnapshot {
                StatsSnapshot { $($name: self.$name.get(),)* }
            }
        }
    };
}

stats! {
    /// Records whose handler finished successfully.
    processed,
    /// Records taken from the consumer.
    fetched,
    /// Records that could not be decoded.
    decode_errors,
    /// Handler calls that returned an error.
    handler_errors,
    /// Handler calls repeated after an error.
    retries,
    /// Records written to the dead-letter topic.
    dead_lettered,
    /// Records skipped by policy.
    skipped,
    /// Commits sent (sync and async) or offset stores (auto policy).
    commits,
    /// Commits that failed.
    commit_failures,
    /// Failed async commits dropped by the sequence guard because a newer one was sent.
    stale_commit_failures,
    /// Rebalance callbacks (assign or revoke).
    rebalances,
    /// Milliseconds during which rebalances stood processing still, summed.
    rebalance_stall_ms,
    /// Times fetching was paused because the buffer was full.
    backpressure_pauses,
    /// Partitions stopped by the failure policy.
    partitions_stopped,
}
