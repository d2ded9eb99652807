//! Events that reach the poller thread: progress from workers, commands from
//! `ListenerHandle`s, and wake-ups when
//! librdkafka's queue has something. One channel carries them all so the poller
//! waits in one place.

use tokio::sync::oneshot;

use crate::command::{ListenerSnapshot, PauseAck, PauseTarget, SeekTo, ShutdownReport};
use crate::error::RuntimeError;
use crate::jobs_queue::Lane;

/// Something the poller must react to.
pub(crate) enum Event {
    /// Records finished (processed, dead-lettered or skipped).
    Progress { slot: u64, offsets: Vec<i64> },
    /// A record failed for good under the stop policy.
    Stopped {
        slot: u64,
        offset: i64,
        reason: String,
    },
    /// Lanes of job `id` are over, with their last finished records and
    /// the records they did not start (halted); the lanes may run again.
    LaneEnd { id: u64, slot: u64, ends: LaneEnds },
    /// An operator or application request.
    Command(Command),
    /// librdkafka's consumer queue became non-empty.
    Wake,
}

/// How lanes of a job ended: the lanes, their finished offsets not reported
/// yet, and the offsets they did not start because the job was halted.
#[derive(Debug, Default)]
pub(crate) struct LaneEnds {
    pub lanes: Vec<Lane>,
    pub done: Vec<i64>,
    pub unstarted: Vec<i64>,
}

/// Where a seek answers: the absolute offsets moved to, or why not.
pub(crate) type SeekReply = oneshot::Sender<Result<Vec<(String, i32, i64)>, RuntimeError>>;

/// Requests handled by the poller.
pub(crate) enum Command {
    Pause(PauseTarget, oneshot::Sender<PauseAck>),
    /// Resume a target (skipping stopped records or not), keeping the
    /// narrower targets listed.
    Resume(PauseTarget, bool, Vec<PauseTarget>, oneshot::Sender<()>),
    /// Seek; the offsets are finished already above the target (a handoff).
    Seek(Option<(String, i32)>, SeekTo, Vec<i64>, SeekReply),
    /// A snapshot with the log ends librdkafka knows (the handle asks for
    /// those of paused partitions, see [`crate::log_ends`]).
    Snapshot(oneshot::Sender<ListenerSnapshot>),
    /// Join (true) or leave (false) the consumer group.
    Membership(bool, oneshot::Sender<Result<(), RuntimeError>>),
    /// Start floors of partitions assigned later: (topic, partition, offset).
    StartFloors(Vec<crate::start_floor::StartFloor>, oneshot::Sender<()>),
    Shutdown(std::time::Duration, oneshot::Sender<ShutdownReport>),
}
