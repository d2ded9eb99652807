//! The health evaluator: pure logic over a [`Window`] of samples of one
//! partition, in the spirit of Burrow's consumer rules.
//!
//! A [`Sample`] is one reading of a partition for a group: when, log start,
//! log end, committed offset, and whether a member of the group holds the
//! partition. The window keeps the samples of the last [`WindowConfig::span`]
//! (default 5 minutes), and never fewer than the last
//! [`WindowConfig::min_samples`] (default 5), so that a sampling interval
//! longer than the span still leaves something to judge. Lag is
//! `max(0, log_end - committed)`.
//!
//! The rules, first match wins:
//!
//! 1. **REWIND**: the committed offset went back between two consecutive
//!    samples of the window (an offset reset, a seek, a consumer committing
//!    an older offset). Stays while that sample is in the window.
//! 2. **PAUSED** / **DRAINING**: the partition is known, from outside (the
//!    control plane's [`Intents`], see [`crate::intents`]), to be paused or draining. An intended
//!    pause raises no STALL or STOP.
//! 3. **UNKNOWN**: the newest sample has no committed offset.
//! 4. **OK**: some sample of the window has lag 0 (the consumer caught up
//!    within the window; Burrow's first rule).
//! 5. **UNKNOWN**: fewer than `min_samples` samples: not enough evidence yet.
//! 6. **STALL**: the committed offset is the same in every sample of the
//!    window, lag > 0 throughout, and the partition is held: a member of the
//!    group owns it (or, where the broker does not tell assignments, as
//!    nisshi 0.8.1, the group has members). The consumer is there but makes
//!    no progress.
//! 7. **STOP**: as STALL, but the partition is not held (the group is empty
//!    or the partition unassigned): no commits while there is lag, the
//!    consumer is gone. Burrow decides this from commit timestamps ("the
//!    last commit is older than the window"); Kafka does not expose commit
//!    times to an outside reader, so an unmoved offset plus the absence of an
//!    owner stands for it. A standalone consumer (assign, no group
//!    membership) that is alive but stuck is therefore reported STOP.
//! 8. **WARN**: the committed offset moves, but the lag never decreases
//!    between consecutive samples and is larger at the end of the window
//!    than at its start: the consumer falls behind.
//! 9. **OK** otherwise.
//!
//! A group's status is the most severe of its partitions', in the order
//! OK < UNKNOWN < PAUSED < DRAINING < WARN < REWIND < STALL < STOP.
//!
//! ```
//! use std::time::Duration;
//! use switchyard_lag::health::{Intent, Sample, Status, Window, WindowConfig};
//!
//! let mut w = Window::new(WindowConfig { span: Duration::from_secs(60), min_samples: 3 });
//! for (i, end) in [10, 20, 30].into_iter().enumerate() {
//!     w.push(Sample { at_ms: i as i64 * 1000, log_start: 0, log_end: end, committed: Some(5), owned: false });
//! }
//! assert_eq!(w.evaluate(Intent::None).status, Status::Stop);
//! assert_eq!(w.evaluate(Intent::Paused).status, Status::Paused);
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;

use serde::Serialize;

pub use crate::intents::{Intent, Intents, Target};

/// A partition's health, ordered by severity (`Ok` least severe).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    /// Caught up within the window, or keeping pace.
    Ok,
    /// Not enough evidence (too few samples, or nothing committed).
    Unknown,
    /// Known paused from outside.
    Paused,
    /// Known draining (a pause in progress) from outside.
    Draining,
    /// Lag growing while the consumer moves.
    Warn,
    /// The committed offset went back.
    Rewind,
    /// Owned, lag > 0, committed offset not moving.
    Stall,
    /// Not owned, lag > 0, committed offset not moving: the consumer is gone.
    Stop,
}

impl Status {
    /// Every status, least severe first.
    pub const ALL: [Status; 8] = [
        Status::Ok,
        Status::Unknown,
        Status::Paused,
        Status::Draining,
        Status::Warn,
        Status::Rewind,
        Status::Stall,
        Status::Stop,
    ];

    /// The upper-case name (`"STALL"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::Unknown => "UNKNOWN",
            Status::Paused => "PAUSED",
            Status::Draining => "DRAINING",
            Status::Warn => "WARN",
            Status::Rewind => "REWIND",
            Status::Stall => "STALL",
            Status::Stop => "STOP",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// The most severe status of `statuses` (OK when empty).
///
/// ```
/// use switchyard_lag::health::{group_status, Status};
/// assert_eq!(group_status([Status::Ok, Status::Warn, Status::Paused]), Status::Warn);
/// assert_eq!(group_status([]), Status::Ok);
/// ```
pub fn group_status(statuses: impl IntoIterator<Item = Status>) -> Status {
    statuses.into_iter().max().unwrap_or(Status::Ok)
}

/// One reading of one partition for one group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Sample {
    /// When, in ms since the epoch.
    pub at_ms: i64,
    /// Log start offset.
    pub log_start: i64,
    /// Log end offset.
    pub log_end: i64,
    /// Committed offset, if any.
    pub committed: Option<i64>,
    /// Whether a member of the group holds the partition (where assignments
    /// are unknown: whether the group has members).
    pub owned: bool,
}

impl Sample {
    /// `max(0, log_end - committed)`.
    pub fn lag(&self) -> Option<i64> {
        self.committed.map(|c| (self.log_end - c).max(0))
    }
}

/// How much history a [`Window`] keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowConfig {
    /// Samples older than this (relative to the newest) leave the window.
    pub span: Duration,
    /// Decisions other than OK/REWIND/PAUSED wait for this many samples; the
    /// window never keeps fewer.
    pub min_samples: usize,
}

impl Default for WindowConfig {
    /// 5 minutes, 5 samples.
    fn default() -> Self {
        WindowConfig {
            span: Duration::from_secs(300),
            min_samples: 5,
        }
    }
}

/// A status with the reason for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Health {
    /// The status.
    pub status: Status,
    /// Why, in words.
    pub reason: String,
}

/// The recent samples of one partition.
#[derive(Debug, Clone)]
pub struct Window {
    config: WindowConfig,
    samples: VecDeque<Sample>,
}

impl Window {
    /// An empty window.
    pub fn new(config: WindowConfig) -> Window {
        Window {
            config,
            samples: VecDeque::new(),
        }
    }

    /// Add the newest sample; drop those older than the span (keeping at least `min_samples`).
    pub fn push(&mut self, sample: Sample) {
        self.samples.push_back(sample);
        let span_ms = self.config.span.as_millis() as i64;
        while self.samples.len() > self.config.min_samples.max(1)
            && self
                .samples
                .front()
                .is_some_and(|s| sample.at_ms - s.at_ms > span_ms)
        {
            self.samples.pop_front();
        }
    }

    /// The samples in the window, oldest first.
    pub fn samples(&self) -> impl ExactSizeIterator<Item = &Sample> {
        self.samples.iter()
    }

    /// The newest sample.
    pub fn latest(&self) -> Option<&Sample> {
        self.samples.back()
    }

    /// Apply the rules of the module docs.
    pub fn evaluate(&self, intent: Intent) -> Health {
        let h = |status, reason: String| Health { status, reason };
        let Some(last) = self.samples.back() else {
            return h(Status::Unknown, "no sample".into());
        };
        let s: Vec<&Sample> = self.samples.iter().collect();
        if let Some(w) = s
            .windows(2)
            .find(|w| matches!((w[0].committed, w[1].committed), (Some(a), Some(b)) if b < a))
        {
            return h(
                Status::Rewind,
                format!(
                    "committed offset went back from {} to {}",
                    w[0].committed.unwrap_or(-1),
                    w[1].committed.unwrap_or(-1)
                ),
            );
        }
        match intent {
            Intent::Paused => return h(Status::Paused, "paused on purpose".into()),
            Intent::Draining => return h(Status::Draining, "draining for a pause".into()),
            Intent::None => {}
        }
        let Some(committed) = last.committed else {
            return h(Status::Unknown, "nothing committed".into());
        };
        if s.iter().any(|x| x.lag() == Some(0)) {
            return h(Status::Ok, "caught up within the window".into());
        }
        if s.len() < self.config.min_samples {
            return h(
                Status::Unknown,
                format!("{} of {} samples", s.len(), self.config.min_samples),
            );
        }
        let lags: Vec<i64> = s.iter().map(|x| x.lag().unwrap_or(0)).collect();
        let secs = (last.at_ms - s[0].at_ms) as f64 / 1000.0;
        if s.iter().all(|x| x.committed == Some(committed)) {
            let lag = lags[lags.len() - 1];
            return if last.owned {
                h(Status::Stall, format!("committed offset {committed} unmoved for {secs:.1}s with lag {lag}, partition owned"))
            } else {
                h(Status::Stop, format!("committed offset {committed} unmoved for {secs:.1}s with lag {lag}, no owner"))
            };
        }
        if lags.windows(2).all(|w| w[1] >= w[0]) && lags[lags.len() - 1] > lags[0] {
            return h(
                Status::Warn,
                format!(
                    "lag grew from {} to {} over {secs:.1}s",
                    lags[0],
                    lags[lags.len() - 1]
                ),
            );
        }
        h(Status::Ok, "consumer keeps pace".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(min: usize) -> WindowConfig {
        WindowConfig {
            span: Duration::from_secs(10),
            min_samples: min,
        }
    }

    /// A window of samples one second apart: (log_end, committed, owned).
    fn window(min: usize, points: &[(i64, Option<i64>, bool)]) -> Window {
        let mut w = Window::new(cfg(min));
        for (i, (end, c, owned)) in points.iter().enumerate() {
            w.push(Sample {
                at_ms: i as i64 * 1000,
                log_start: 0,
                log_end: *end,
                committed: *c,
                owned: *owned,
            });
        }
        w
    }

    fn status(min: usize, points: &[(i64, Option<i64>, bool)]) -> Status {
        window(min, points).evaluate(Intent::None).status
    }

    #[test]
    fn caught_up_is_ok_even_with_one_sample() {
        assert_eq!(status(3, &[(10, Some(10), true)]), Status::Ok);
        assert_eq!(
            status(
                3,
                &[
                    (10, Some(10), true),
                    (20, Some(12), true),
                    (30, Some(13), true)
                ]
            ),
            Status::Ok
        );
    }

    #[test]
    fn too_few_samples_is_unknown() {
        assert_eq!(
            status(3, &[(10, Some(5), true), (11, Some(5), true)]),
            Status::Unknown
        );
        assert_eq!(status(1, &[(10, None, true)]), Status::Unknown);
    }

    #[test]
    fn unmoved_offset_with_lag_is_stall_when_owned_and_stop_when_not() {
        let pts = |owned| {
            [
                (10, Some(5), owned),
                (12, Some(5), owned),
                (12, Some(5), owned),
            ]
        };
        assert_eq!(status(3, &pts(true)), Status::Stall);
        assert_eq!(status(3, &pts(false)), Status::Stop);
    }

    #[test]
    fn growing_lag_with_moving_offset_warns() {
        let pts = [
            (10, Some(2), true),
            (20, Some(4), true),
            (30, Some(6), true),
        ];
        assert_eq!(status(3, &pts), Status::Warn);
        // Lag that shrinks at some point is keeping pace.
        let pts = [
            (10, Some(2), true),
            (20, Some(4), true),
            (20, Some(15), true),
        ];
        assert_eq!(status(3, &pts), Status::Ok);
        // Moving with constant lag is fine.
        let pts = [
            (10, Some(2), true),
            (20, Some(12), true),
            (30, Some(22), true),
        ];
        assert_eq!(status(3, &pts), Status::Ok);
    }

    #[test]
    fn rewind_beats_everything_and_leaves_with_its_sample() {
        let mut w = window(2, &[(10, Some(8), true), (10, Some(3), true)]);
        assert_eq!(w.evaluate(Intent::Paused).status, Status::Rewind);
        for i in 2..15 {
            w.push(Sample {
                at_ms: i * 1000,
                log_start: 0,
                log_end: 10,
                committed: Some(10),
                owned: true,
            });
        }
        assert_eq!(w.evaluate(Intent::None).status, Status::Ok);
    }

    #[test]
    fn paused_and_draining_replace_stall_and_stop() {
        let w = window(
            3,
            &[
                (10, Some(5), false),
                (12, Some(5), false),
                (14, Some(5), false),
            ],
        );
        assert_eq!(w.evaluate(Intent::Paused).status, Status::Paused);
        assert_eq!(w.evaluate(Intent::Draining).status, Status::Draining);
        assert_eq!(w.evaluate(Intent::None).status, Status::Stop);
    }

    #[test]
    fn the_window_keeps_the_span_and_at_least_min_samples() {
        let mut w = Window::new(cfg(3));
        for i in 0..30 {
            w.push(Sample {
                at_ms: i * 1000,
                log_start: 0,
                log_end: 10,
                committed: Some(5),
                owned: false,
            });
        }
        assert_eq!(w.samples().len(), 11, "10 s span at 1 s steps");
        let mut w = Window::new(WindowConfig {
            span: Duration::from_millis(1),
            min_samples: 4,
        });
        for i in 0..30 {
            w.push(Sample {
                at_ms: i * 1000,
                log_start: 0,
                log_end: 10,
                committed: Some(5),
                owned: false,
            });
        }
        assert_eq!(w.samples().len(), 4);
        assert_eq!(w.evaluate(Intent::None).status, Status::Stop);
    }

    #[test]
    fn a_consumer_that_stopped_turns_stop_once_the_caught_up_samples_leave() {
        let mut w = Window::new(cfg(3));
        let mut statuses = Vec::new();
        for i in 0..20 {
            let (end, committed) = if i < 5 {
                (i * 10, i * 10)
            } else {
                (i * 10, 40)
            };
            w.push(Sample {
                at_ms: i * 1000,
                log_start: 0,
                log_end: end,
                committed: Some(committed),
                owned: false,
            });
            statuses.push(w.evaluate(Intent::None).status);
        }
        assert!(
            statuses[..15].iter().all(|s| *s == Status::Ok),
            "{statuses:?}"
        );
        assert_eq!(statuses[15..], [Status::Stop; 5]);
    }

    #[test]
    fn group_status_is_the_most_severe() {
        assert_eq!(group_status([Status::Ok, Status::Paused]), Status::Paused);
        assert_eq!(
            group_status([Status::Stall, Status::Stop, Status::Rewind]),
            Status::Stop
        );
        assert_eq!(
            Status::ALL
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join(","),
            "OK,UNKNOWN,PAUSED,DRAINING,WARN,REWIND,STALL,STOP"
        );
    }
}
