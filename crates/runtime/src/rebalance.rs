//! The consumer context: librdkafka's callbacks into the runtime. It owns the
//! [`Coordinator`] so that the rebalance and commit callbacks, which run
//! inside `poll` on the poll thread, work on the same state as the loop.
//!
//! Rebalances are eager (`assign`/`unassign` of the whole assignment) under
//! the classic protocol with an eager assignor, and incremental (only the
//! partitions that move) under the classic protocol with
//! `cooperative-sticky` and always under KIP-848's consumer protocol
//! ([`RuntimeContext::incremental`]). Everything below holds for both.
//!
//! **Revoke** (eager: everything; incremental: the revoked subset): stop
//! dispatching the partitions and drop their waiting records, wait for their
//! in-flight records up to the revoke timeout (then abandon the handler calls
//! still running: aborted, never committed), commit synchronously, call
//! `on_revoked`, forget them. A *lost* assignment skips the commit and calls
//! `on_lost`.
//!
//! **Assign**: raise the start offsets to their floors
//! ([`crate::start_floor`]), track the new partitions, read their committed
//! offsets, and
//! apply the wanted pauses *before* any of their records can reach a handler
//! (a pause follows the partition, not the pod); then call `on_assigned`.
//! Every rebalance is logged with the partitions that moved and how long
//! processing stood still.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, RebalanceProtocol,
};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::types::{RDKafkaErrorCode, RDKafkaRespErr};
use rdkafka::{Offset, TopicPartitionList};
use switchyard_config::{GroupProtocol, Tp};

use crate::coordinator::Coordinator;
use crate::event::Event;
use crate::offset_metadata::decode;

/// The consumer a listener drives. The coordinator's decisions take any
/// `BaseConsumer`, so that the coordinator does not depend on this context,
/// which holds it.
pub(crate) type Kafka = BaseConsumer<RuntimeContext>;

/// librdkafka context of a listener's consumer.
pub struct RuntimeContext {
    pub(crate) coord: Mutex<Coordinator>,
    /// Shared with the handle; not behind `coord` (librdkafka calls
    /// [`ClientContext::error`] on the poll thread, which may hold it).
    pub(crate) problems: std::sync::Arc<crate::client_problem::ClientProblems>,
}

impl RuntimeContext {
    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, Coordinator> {
        self.coord.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl ClientContext for RuntimeContext {
    /// Logs librdkafka's errors: most are transient and librdkafka retries
    /// them; a fatal one leaves the consumer unusable and is kept as the
    /// listener's fatal error ([`crate::ListenerHandle::fatal_error`]). Under
    /// KIP-848's consumer protocol, a member whose `group.instance.id` is
    /// still held by a crashed one (`UNRELEASED_INSTANCE_ID`) gets one.
    fn error(&self, error: KafkaError, reason: &str) {
        // librdkafka's error event carries the underlying code of a fatal
        // error (e.g. UNRELEASED_INSTANCE_ID) and says "fatal" in its text
        let code = error.rdkafka_error_code();
        if self.problems.report(code, reason) {
            return;
        }
        let fatal =
            code == Some(RDKafkaErrorCode::Fatal) || reason.to_ascii_lowercase().contains("fatal");
        if !fatal {
            tracing::warn!(error = %error, reason, "kafka client error");
            return;
        }
        let hint = if code == Some(RDKafkaErrorCode::UnreleasedInstanceId) {
            " (with group.protocol=consumer a group.instance.id stays held by a member that crashed until the broker's session timeout expires it: start again after that, or stop members cleanly)"
        } else {
            ""
        };
        self.problems
            .set_fatal(format!("fatal Kafka client error: {reason}{hint}"));
    }
}

impl RuntimeContext {
    /// Whether this rebalance hands over only the partitions that move
    /// (`incremental_assign`/`incremental_unassign`) rather than the whole
    /// assignment (`assign`/`unassign`). Under `group.protocol = consumer`
    /// always (KIP-848 rebalances are incremental, and `assign`/`unassign`
    /// inside the callback are an error there); under `classic` when the
    /// assignor is cooperative. Under KIP-848 librdkafka reports
    /// `COOPERATIVE` too, but only once the consumer has subscribed: the
    /// configured protocol is the one that cannot be wrong.
    pub(crate) fn incremental(&self, kafka: &BaseConsumer<Self>) -> bool {
        if self.lock().settings.group_protocol == GroupProtocol::Consumer {
            return true;
        }
        matches!(kafka.rebalance_protocol(), RebalanceProtocol::Cooperative)
    }
}

impl ConsumerContext for RuntimeContext {
    /// rust-rdkafka's rebalance, with one step more: before an assignment,
    /// the start floors raise the start offsets ([`crate::start_floor`]).
    fn rebalance(
        &self,
        kafka: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let assign = err == RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS;
        if assign {
            let mut coord = self.lock();
            let timeout = coord.settings.api_timeout;
            coord.start_floors.apply(kafka, tpl, timeout);
        }
        let rebalance = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => Rebalance::Assign(tpl),
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => Rebalance::Revoke(tpl),
            e => Rebalance::Error(KafkaError::Rebalance(e.into())),
        };
        self.pre_rebalance(kafka, &rebalance);
        let incremental = self.incremental(kafka);
        let result = match (assign, incremental) {
            (true, true) => kafka.incremental_assign(tpl),
            (true, false) => kafka.assign(tpl),
            (false, true) => kafka.incremental_unassign(tpl),
            (false, false) => kafka.unassign(),
        };
        if let Err(e) = result {
            tracing::error!(error = %e, assign, "cannot apply the rebalance");
        }
        self.post_rebalance(kafka, &rebalance);
    }

    fn pre_rebalance(&self, kafka: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            let lost = kafka.assignment_lost();
            self.lock().on_revoke(kafka, &tps(tpl), lost);
        }
    }

    fn post_rebalance(&self, kafka: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => {
                if tpl.count() > 0 {
                    self.problems.clear();
                }
                self.lock().on_assign(kafka, &tps(tpl))
            }
            Rebalance::Revoke(_) => {}
            Rebalance::Error(e) => tracing::error!(error = %e, "rebalance error"),
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        if let Err(e) = &result {
            tracing::warn!(error = %e, "commit failed");
        }
        self.lock().on_commit_result(result.is_ok(), offsets);
    }
}

fn tps(tpl: &TopicPartitionList) -> Vec<Tp> {
    tpl.elements()
        .iter()
        .map(|e| (e.topic().to_string(), e.partition()))
        .collect()
}

impl Coordinator {
    /// Partitions are going away (see the module docs).
    pub fn on_revoke(
        &mut self,
        kafka: &BaseConsumer<impl ConsumerContext>,
        revoked: &[Tp],
        lost: bool,
    ) {
        let started = Instant::now();
        self.revoked_at = Some(started);
        self.stats.rebalances.inc();
        for tp in revoked {
            if let Some(part) = self.parts.get_mut(tp) {
                part.begin_revoke();
            }
        }
        let in_flight = |c: &Coordinator| -> usize {
            revoked
                .iter()
                .filter_map(|tp| c.parts.get(tp))
                .map(|p| p.in_flight_lanes())
                .sum()
        };
        let mut committed = Vec::new();
        if !lost {
            let deadline = started + self.settings.revoke_timeout;
            while in_flight(self) > 0 {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    // abandoned, not left running: their tasks would keep
                    // their worker permits (and whatever they wait for)
                    // after the partitions are gone
                    for tp in revoked {
                        self.abandon_in_flight(tp, "revoke timeout");
                    }
                    break;
                }
                match self
                    .events
                    .recv_timeout(left.min(Duration::from_millis(50)))
                {
                    Ok(Event::Command(cmd)) => self.deferred.push(cmd),
                    Ok(ev) => self.on_event(kafka, ev),
                    Err(_) => {}
                }
            }
            match self.commit(kafka, CommitMode::Sync, Some(revoked)) {
                Ok(c) => committed = c,
                Err(e) => {
                    tracing::warn!(listener = %self.name, error = %e, "commit on revoke failed")
                }
            }
            self.hooks.on_revoked(revoked);
        } else {
            self.hooks.on_lost(revoked);
        }
        for tp in revoked {
            // librdkafka keeps an application pause on its partition object
            // after the partition is revoked, and an assignment lifts only
            // its own pauses: left paused, the partition would come back
            // (to this member, later) fetching nothing whatever the runtime
            // wants. Whether it should be paused then is decided at that
            // assignment.
            if self.parts.get(tp).is_some_and(|p| p.fetch_paused()) {
                let mut tpl = TopicPartitionList::new();
                tpl.add_partition(&tp.0, tp.1);
                if let Err(e) = kafka.resume(&tpl) {
                    tracing::warn!(listener = %self.name, topic = %tp.0, partition = tp.1, error = %e, "lifting the pause of a revoked partition failed");
                }
            }
            self.remove_partition(tp);
        }
        self.answer_pause_waiters();
        let assigned = !self.parts.is_empty();
        self.membership.answer_leave_waiters(assigned);
        tracing::info!(listener = %self.name, revoked = ?revoked, lost, committed = ?committed,
            drain_ms = started.elapsed().as_millis() as u64, "partitions revoked");
    }

    /// Partitions arrived (see the module docs).
    pub fn on_assign(&mut self, kafka: &BaseConsumer<impl ConsumerContext>, assigned: &[Tp]) {
        self.stats.rebalances.inc();
        let mut tpl = TopicPartitionList::new();
        for tp in assigned {
            tpl.add_partition(&tp.0, tp.1);
        }
        let committed = kafka.committed_offsets(tpl, self.settings.api_timeout).ok();
        let mut paused = Vec::new();
        for tp in assigned {
            let want_pause = self.is_desired_paused(tp);
            let floor = self.start_floors.take_applied(tp);
            self.dirty |= floor.is_some();
            let part = self.add_partition(tp.clone());
            let elem = committed
                .as_ref()
                .and_then(|c| c.find_partition(&tp.0, tp.1));
            if let Some(e) = elem {
                if let Offset::Offset(o) = e.offset() {
                    part.committed = Some(o);
                    part.tracker.seed_done(decode(o, e.metadata()));
                }
            }
            if let Some(floor) = floor {
                // started above the committed offset: that start is the next
                // commit, and what the previous owner finished above it is done
                part.tracker.reset(floor.offset);
                part.tracker.seed_done(floor.done_above);
            }
            if want_pause {
                part.start_paused();
                paused.push(tp.clone());
            }
        }
        for tp in &paused {
            self.apply_fetch(kafka, tp);
        }
        let stood_still = self.revoked_at.take().map(|t| t.elapsed());
        if let Some(d) = stood_still {
            self.stats.rebalance_stall_ms.add(d.as_millis() as u64);
        }
        self.hooks.on_assigned(assigned);
        if self.parts.is_empty() {
            tracing::warn!(listener = %self.name, "idle member: no partitions assigned (more members than partitions?)");
        }
        tracing::info!(listener = %self.name, assigned = ?assigned, paused = ?paused,
            stood_still_ms = stood_still.map(|d| d.as_millis() as u64), "partitions assigned");
    }
}
