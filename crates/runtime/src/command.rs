//! The vocabulary of requests a running listener answers: pause targets,
//! seek targets, and the reports that come back (pause acknowledgements,
//! snapshots of partition states, shutdown reports).
//!
//! ```
//! use switchyard_runtime::command::PauseTarget;
//! let t = PauseTarget::Topic("orders".into());
//! assert!(t.matches("orders", 3));
//! assert!(!t.matches("payments", 3));
//! ```

use serde::Serialize;

/// What to pause or resume.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, serde::Deserialize)]
pub enum PauseTarget {
    /// Every partition of the listener.
    Listener,
    /// Every partition of a topic.
    Topic(String),
    /// One partition.
    Partition(String, i32),
}

impl PauseTarget {
    /// Does this target cover `topic`/`partition`?
    pub fn matches(&self, topic: &str, partition: i32) -> bool {
        match self {
            PauseTarget::Listener => true,
            PauseTarget::Topic(t) => t == topic,
            PauseTarget::Partition(t, p) => t == topic && *p == partition,
        }
    }
}

/// Where to move a partition's position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum SeekTo {
    /// The log start offset.
    Beginning,
    /// The log end offset (only new records).
    End,
    /// An absolute offset.
    Offset(i64),
    /// The first record with a timestamp at or after this many ms since the epoch.
    Timestamp(i64),
}

/// The life of an assigned partition (see docs/architecture.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PartitionState {
    /// Fetching and dispatching.
    Running,
    /// Pause requested: nothing is dispatched, in-flight records are finishing.
    Draining,
    /// Paused, drained and committed (acknowledged).
    Paused,
    /// Stopped at a record by the failure policy, until resumed or skipped.
    Stopped,
}

/// One partition as answered by a pause.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartitionAck {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// The committed next offset (where resume continues), if any was known.
    pub committed: Option<i64>,
    /// Why the partition is not acknowledged although nothing of it runs:
    /// the synchronous commit of the pause failed. It stays draining (not
    /// paused) until a later pause commits it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The answer to a pause: every matching assigned partition is drained (no
/// record of it in a handler) and, unless its [`PartitionAck::error`] says
/// otherwise, committed and paused.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PauseAck {
    /// The matching partitions.
    pub partitions: Vec<PartitionAck>,
}

impl PauseAck {
    /// Every partition committed: the pause is acknowledged (docs/design.md).
    ///
    /// ```
    /// use switchyard_runtime::command::{PartitionAck, PauseAck};
    /// let mut ack = PauseAck { partitions: vec![PartitionAck {
    ///     topic: "t".into(), partition: 0, committed: Some(5), error: None }] };
    /// assert!(ack.is_acknowledged());
    /// ack.partitions[0].error = Some("commit on pause failed".into());
    /// assert!(!ack.is_acknowledged());
    /// ```
    pub fn is_acknowledged(&self) -> bool {
        self.partitions.iter().all(|p| p.error.is_none())
    }

    /// The partitions that are not acknowledged, with the reason.
    pub fn failures(&self) -> impl Iterator<Item = &PartitionAck> {
        self.partitions.iter().filter(|p| p.error.is_some())
    }
}

/// State of one assigned partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartitionStatus {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Life-cycle state.
    pub state: PartitionState,
    /// Records handed to workers and not finished.
    pub in_flight: usize,
    /// Records fetched and waiting for a worker.
    pub buffered: usize,
    /// Last committed next offset known to this instance.
    pub committed: Option<i64>,
    /// Bytes of the records waiting for a worker.
    pub buffered_bytes: usize,
    /// Log end offset as last seen by the consumer (no request is made).
    pub log_end: Option<i64>,
    /// `log_end` minus the committed offset.
    pub lag: Option<i64>,
    /// Age in ms of the oldest record this instance holds and has not
    /// finished (0 when caught up; unknown when the records behind the lag
    /// are not fetched, e.g. while paused).
    pub time_lag_ms: Option<i64>,
    /// Why the partition is stopped, or why a draining one is not paused
    /// (its pause's commit failed), when it is.
    pub reason: Option<String>,
}

/// A listener's partitions and counters at one moment.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ListenerSnapshot {
    /// Listener name.
    pub name: String,
    /// Assigned partitions, sorted.
    pub partitions: Vec<PartitionStatus>,
    /// The group member id, if in a group.
    pub member_id: Option<String>,
    /// In its consumer group now (`None`: a standalone assignment).
    pub joined: Option<bool>,
    /// Counters.
    pub stats: crate::stats::StatsSnapshot,
}

impl ListenerSnapshot {
    /// Records waiting for a worker or in flight, over every partition: the
    /// figure the buffer bound (`ListenerBuilder::buffer`) applies to.
    ///
    /// ```
    /// # use switchyard_runtime::command::ListenerSnapshot;
    /// assert_eq!(ListenerSnapshot::default().waiting_or_in_flight(), 0);
    /// ```
    pub fn waiting_or_in_flight(&self) -> usize {
        self.partitions
            .iter()
            .map(|p| p.buffered + p.in_flight)
            .sum()
    }
}

/// What a shutdown did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ShutdownReport {
    /// Time from the request to the end.
    pub elapsed_ms: u64,
    /// Offsets committed by the final commit: (topic, partition, next offset).
    pub committed: Vec<(String, i32, i64)>,
    /// Records still in flight at the deadline (abandoned, will be redelivered).
    pub abandoned_in_flight: usize,
    /// Whether the consumer closed (left the group) before the deadline.
    pub closed: bool,
    /// Human-readable notes on anything abandoned.
    pub notes: Vec<String>,
}
