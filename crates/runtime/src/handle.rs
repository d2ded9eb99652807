//! [`ListenerHandle`]: steering a running listener from any task. Every
//! request is a command to the listener's poll thread (the only thread that
//! touches the consumer), answered on a oneshot channel: pause and resume
//! (acknowledged when drained and committed), seek, group membership (leave
//! and join again without stopping), start floors for partitions assigned
//! later, snapshots, and the shutdown with a deadline.
//!
//! ```no_run
//! # use switchyard_runtime::{ListenerHandle, PauseTarget};
//! # async fn demo(l: &ListenerHandle) -> Result<(), switchyard_runtime::RuntimeError> {
//! l.pause(PauseTarget::Topic("orders".into())).await?; // drained and committed
//! l.leave_group().await?;                               // revoked, committed, left
//! l.join_group().await?;                                // subscribes again
//! l.resume(PauseTarget::Topic("orders".into())).await?;
//! # Ok(()) }
//! ```

use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::Sender;
use tokio::sync::oneshot;

use crate::command::{ListenerSnapshot, PauseAck, PauseTarget, SeekTo, ShutdownReport};
use crate::error::RuntimeError;
use crate::event::{Command, Event};
use crate::log_ends::LogEnds;
use crate::stats::{ListenerStats, StatsSnapshot};

/// Steers a running listener; cheap to share by reference.
pub struct ListenerHandle {
    pub(crate) name: String,
    pub(crate) group: Option<String>,
    pub(crate) tx: Sender<Event>,
    pub(crate) stats: Arc<ListenerStats>,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) thread: Option<std::thread::JoinHandle<()>>,
    /// Log ends of paused partitions, asked off the poll thread.
    pub(crate) log_ends: Arc<LogEnds>,
    /// What it consumes.
    pub(crate) subscription: crate::subscription::Subscription,
    /// The latest authentication or authorization problem of its clients.
    pub(crate) problems: Arc<crate::client_problem::ClientProblems>,
}

impl ListenerHandle {
    /// The listener's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The consumer group id it commits under.
    pub fn group_id(&self) -> Option<&str> {
        self.group.as_deref()
    }

    /// The latest problem of its Kafka clients that no retry fixes, if
    /// any: authentication failed (a wrong password, an untrusted
    /// certificate) or not authorized (no READ on a topic or the group),
    /// with what to check; no secret is in it. The listener keeps
    /// retrying; its readiness fails while the problem stands.
    ///
    /// ```no_run
    /// # fn demo(l: &switchyard_runtime::ListenerHandle) {
    /// if let Some(p) = l.problem() {
    ///     eprintln!("{}: {p}", l.name());
    /// }
    /// # }
    /// ```
    pub fn problem(&self) -> Option<String> {
        self.problems.current()
    }

    /// The fatal error of its consumer, if it hit one: the consumer is
    /// unusable for good (librdkafka's fatal errors, such as a
    /// `group.instance.id` still held by a member that crashed under
    /// KIP-848) and the listener consumes nothing more; it stays set. Its
    /// liveness fails (`/healthz`), and an instance stops with it
    /// (`Instance::run_until_signal`), so that its supervisor starts it
    /// again.
    ///
    /// ```no_run
    /// # fn demo(l: &switchyard_runtime::ListenerHandle) {
    /// if let Some(e) = l.fatal_error() {
    ///     eprintln!("{} must be restarted: {e}", l.name());
    /// }
    /// # }
    /// ```
    pub fn fatal_error(&self) -> Option<String> {
        self.problems.fatal()
    }

    /// Resolves with the fatal error of its consumer once it hits one
    /// ([`ListenerHandle::fatal_error`]); never, while it works.
    pub async fn failed(&self) -> String {
        self.problems.fatal_error().await
    }

    /// What it consumes: its topics, pattern or standalone assignment.
    pub fn subscription(&self) -> &crate::subscription::Subscription {
        &self.subscription
    }

    /// The shutdown deadline it was built with
    /// (`ListenerBuilder::shutdown_timeout`).
    pub fn shutdown_timeout(&self) -> Duration {
        self.shutdown_timeout
    }

    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, RuntimeError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Event::Command(make(reply)))
            .map_err(|_| RuntimeError::NotRunning(self.name.clone()))?;
        rx.await
            .map_err(|_| RuntimeError::NotRunning(self.name.clone()))
    }

    /// Pause `target`; resolves when every matching assigned partition is
    /// drained and committed (the acknowledgement of docs/design.md).
    pub async fn pause(&self, target: PauseTarget) -> Result<PauseAck, RuntimeError> {
        self.ask(|r| Command::Pause(target, r)).await
    }

    /// Resume `target`; records continue at exactly the committed offset.
    pub async fn resume(&self, target: PauseTarget) -> Result<(), RuntimeError> {
        self.ask(|r| Command::Resume(target, false, Vec::new(), r))
            .await
    }

    /// Resume `target` but keep the narrower targets of `keep` it would
    /// lift (a topic lifts its partitions, the listener lifts everything):
    /// the partitions they cover stay paused throughout, never resumed for
    /// a moment. Targets of `keep` that `target` does not cover are
    /// ignored.
    pub async fn resume_keeping(
        &self,
        target: PauseTarget,
        keep: Vec<PauseTarget>,
    ) -> Result<(), RuntimeError> {
        self.ask(|r| Command::Resume(target, false, keep, r)).await
    }

    /// Resume partitions stopped by the failure policy, skipping the failed record.
    pub async fn resume_skipping(&self, target: PauseTarget) -> Result<(), RuntimeError> {
        self.ask(|r| Command::Resume(target, true, Vec::new(), r))
            .await
    }

    /// Seek one assigned partition, or all of them with `None`.
    pub async fn seek(
        &self,
        partition: Option<(String, i32)>,
        to: SeekTo,
    ) -> Result<Vec<(String, i32, i64)>, RuntimeError> {
        self.ask(|r| Command::Seek(partition, to, Vec::new(), r))
            .await?
    }

    /// The handoff of a deployment: seek an assigned partition to `offset`,
    /// the previous owner's committed offset, and count `done_above`, the
    /// offsets above it that the previous owner had finished already, as
    /// done (they are skipped when fetched, and carried in this listener's
    /// commit metadata until its commit passes them).
    ///
    /// ```no_run
    /// # async fn demo(l: &switchyard_runtime::ListenerHandle) -> Result<(), switchyard_runtime::RuntimeError> {
    /// l.seek_handoff("orders", 3, 1234, vec![1236, 1237]).await?;
    /// # Ok(()) }
    /// ```
    pub async fn seek_handoff(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        done_above: Vec<i64>,
    ) -> Result<(), RuntimeError> {
        let tp = Some((topic.to_string(), partition));
        self.ask(|r| Command::Seek(tp, SeekTo::Offset(offset), done_above, r))
            .await??;
        Ok(())
    }

    /// Leave the consumer group without stopping: the assigned partitions
    /// are revoked like in a rebalance (dispatch stops, in-flight records
    /// finish, offsets are committed synchronously), then the member leaves
    /// (a static member stays until its session times out). Resolves when
    /// the revoke is done. No-op when not in the group.
    pub async fn leave_group(&self) -> Result<(), RuntimeError> {
        self.ask(|r| Command::Membership(false, r)).await?
    }

    /// Join the consumer group again (subscribe with the listener's topics or
    /// pattern). No-op when already in the group. Resolves at once; the
    /// assignment arrives with the next rebalance.
    pub async fn join_group(&self) -> Result<(), RuntimeError> {
        self.ask(|r| Command::Membership(true, r)).await?
    }

    /// Start floors: a partition assigned from now on starts at
    /// `max(committed, floor)` (and commits that start), so a handoff offset
    /// holds on whichever member of the group the partition lands on, as
    /// long as the floor's [`FloorScope`](crate::FloorScope) holds: once the
    /// group has committed past it or anything else since the handoff, or
    /// the floor lies beyond the log end, it is spent. The list replaces
    /// the previous one (a floor found spent stays spent); partitions
    /// already assigned are not moved (seek them).
    pub async fn set_start_floors(
        &self,
        floors: Vec<crate::StartFloor>,
    ) -> Result<(), RuntimeError> {
        self.ask(|r| Command::StartFloors(floors, r)).await
    }

    /// Partitions, their states and the counters. The log end of a paused
    /// partition (whose fetch responses, which carry it, stopped) is asked
    /// of the broker, at most once a second per partition, on a client of
    /// the handle's own and not on the poll thread ([`crate::log_ends`]).
    pub async fn snapshot(&self) -> Result<ListenerSnapshot, RuntimeError> {
        let mut snap = self.snapshot_local().await?;
        self.log_ends.refresh(&mut snap).await;
        Ok(snap)
    }

    /// [`ListenerHandle::snapshot`] without any request to the broker: the
    /// log end of a paused partition is the last one known. For callers
    /// that need the states, not the lag (a status report on the path of a
    /// pause acknowledgement).
    pub async fn snapshot_local(&self) -> Result<ListenerSnapshot, RuntimeError> {
        self.ask(Command::Snapshot).await
    }

    /// Counters, without asking the poll thread.
    pub fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }

    /// The live counters, histogram and poll clock (for metrics exporters).
    pub fn live_stats(&self) -> &ListenerStats {
        &self.stats
    }

    /// Shut down within the configured deadline.
    pub async fn shutdown(self) -> ShutdownReport {
        let d = self.shutdown_timeout;
        self.shutdown_within(d).await
    }

    /// Stop fetching, finish in-flight records, commit, leave the group, all
    /// within `deadline`; past it, the report says what was abandoned.
    pub async fn shutdown_within(mut self, deadline: Duration) -> ShutdownReport {
        let started = std::time::Instant::now();
        let (reply, rx) = oneshot::channel();
        if self
            .tx
            .send(Event::Command(Command::Shutdown(deadline, reply)))
            .is_err()
        {
            return ShutdownReport {
                closed: true,
                notes: vec!["already shut down".into()],
                ..Default::default()
            };
        }
        let grace = Duration::from_millis(250);
        let report = match tokio::time::timeout(deadline + grace, rx).await {
            Ok(Ok(r)) => r,
            _ => ShutdownReport {
                elapsed_ms: started.elapsed().as_millis() as u64,
                notes: vec!["the poll thread did not finish before the deadline (blocked in librdkafka); abandoned".into()],
                ..Default::default()
            },
        };
        if let Some(t) = self.thread.take() {
            if report.closed {
                let _ = t.join();
            }
        }
        report
    }
}

impl Drop for ListenerHandle {
    fn drop(&mut self) {
        if self.thread.is_some() {
            // Not shut down explicitly: ask for it and do not wait.
            let (reply, _rx) = oneshot::channel();
            let _ = self.tx.send(Event::Command(Command::Shutdown(
                self.shutdown_timeout,
                reply,
            )));
        }
    }
}
