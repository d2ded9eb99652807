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

/// A monotonically increasing counter, alone on its cache line: the poll
/// thread and the workers update different counters at once.
#[derive(Debug, Default)]
#[repr(align(128))]
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
        pub struct ListenerStats {
            $($(#[$doc])* pub $name: Counter,)*
            /// Durations of handler calls.
            pub handler_latency: LatencyHistogram,
            /// When the poll loop last went round.
            pub poll_clock: PollClock,
        }
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
    /// Times the listener stopped taking records of a partition because the
    /// buffer was full (backpressure).
    backpressure_pauses,
    /// Partitions stopped by the failure policy.
    partitions_stopped,
    /// Records whose dead-letter write failed on every attempt.
    dead_letter_failures,
    /// Records whose handler call was abandoned because a pause or a revoke
    /// reached its deadline (they are delivered again).
    abandoned,
}

/// Upper bounds (seconds) of the handler latency histogram buckets.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// A cumulative histogram of handler call durations (Prometheus style).
/// Workers record into a [`LocalLatency`] and add it here in batches.
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct LatencyHistogram {
    buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl LatencyHistogram {
    /// Record one handler call.
    pub fn observe(&self, d: std::time::Duration) {
        let secs = d.as_secs_f64();
        if let Some(i) = LATENCY_BUCKETS.iter().position(|b| secs <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }

    /// Add the calls recorded in `local`, and clear it.
    pub fn add(&self, local: &mut LocalLatency) {
        if local.count == 0 {
            return;
        }
        for (b, n) in self.buckets.iter().zip(&mut local.buckets) {
            if *n > 0 {
                b.fetch_add(std::mem::take(n), Ordering::Relaxed);
            }
        }
        self.count.fetch_add(local.count, Ordering::Relaxed);
        self.sum_micros
            .fetch_add(local.sum_micros, Ordering::Relaxed);
        *local = LocalLatency::default();
    }

    /// (cumulative count per bucket bound, total count, sum in seconds).
    pub fn snapshot(&self) -> (Vec<(f64, u64)>, u64, f64) {
        let mut acc = 0;
        let cumulative = LATENCY_BUCKETS
            .iter()
            .zip(&self.buckets)
            .map(|(b, c)| {
                acc += c.load(Ordering::Relaxed);
                (*b, acc)
            })
            .collect();
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        (cumulative, self.count.load(Ordering::Relaxed), sum)
    }
}

/// Handler call durations recorded by one worker before they are added to
/// the shared [`LatencyHistogram`] (no atomic operation per call).
///
/// ```
/// use switchyard_runtime::stats::{LatencyHistogram, LocalLatency};
/// let (shared, mut local) = (LatencyHistogram::default(), LocalLatency::default());
/// local.observe(std::time::Duration::from_millis(3));
/// shared.add(&mut local);
/// assert_eq!(shared.snapshot().1, 1);
/// ```
#[derive(Debug, Default)]
pub struct LocalLatency {
    buckets: [u64; LATENCY_BUCKETS.len()],
    count: u64,
    sum_micros: u64,
}

impl LocalLatency {
    /// Record one handler call.
    pub fn observe(&mut self, d: std::time::Duration) {
        let secs = d.as_secs_f64();
        if let Some(i) = LATENCY_BUCKETS.iter().position(|b| secs <= *b) {
            self.buckets[i] += 1;
        }
        self.count += 1;
        self.sum_micros += d.as_micros() as u64;
    }
}

/// When the poll loop last went round, for liveness probes.
#[derive(Debug)]
pub struct PollClock(AtomicU64);

impl Default for PollClock {
    fn default() -> Self {
        let c = PollClock(AtomicU64::new(0));
        c.tick();
        c
    }
}

impl PollClock {
    fn now_ms() -> u64 {
        switchyard_config::now_ms().max(0) as u64
    }
    /// The loop went round now.
    pub fn tick(&self) {
        self.0.store(Self::now_ms(), Ordering::Relaxed);
    }
    /// Milliseconds since the loop last went round.
    pub fn age_ms(&self) -> u64 {
        Self::now_ms().saturating_sub(self.0.load(Ordering::Relaxed))
    }
}
