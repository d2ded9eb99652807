//! The coordinator: the state of a listener's assigned partitions and the
//! decisions taken on it: what to dispatch, when to stop fetching
//! (backpressure), and how to react to worker reports and commands.
//!
//! It lives inside the consumer's context (see rebalance.rs) so that
//! both the poll loop (poller.rs) and librdkafka's rebalance callbacks
//! reach it; both run on the poll thread, so the mutex around it is never
//! contended. Its other duties are split by concept: commits in
//! committer.rs, pause and resume in pause.rs, assignment and revocation in
//! rebalance.rs, seeks in seek.rs; one partition's state and decisions in
//! [`Partition`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::fetched::Fetched;
use crossbeam_channel::Receiver;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::{Offset, TopicPartitionList};
use switchyard_config::{now_ms, CommitPolicy, GroupProtocol, Tp};
use tokio::sync::oneshot;

use crate::command::{ListenerSnapshot, PauseAck, PauseTarget};
use crate::commit_sequence::CommitSequence;
use crate::event::{Command, Event};
use crate::executor::{Executor, Job, MAX_LANES_PER_JOB};
use crate::hooks::RebalanceHooks;
use crate::jobs_queue::Ordering;
use crate::membership::Membership;
use crate::partition::{Fetch, Partition};
use crate::start_floor::Floors;
use crate::stats::ListenerStats;

/// Fewest lanes handed to workers at once. The `workers` limit is on handler
/// calls in progress (the executor's permits), not on lanes handed over:
/// lanes whose handlers complete at once leave their permit at once, so
/// handing over more lanes than workers keeps the workers busy without a
/// round trip to this thread per `workers` records.
pub(crate) const DISPATCH_LANES: usize = 1024;

/// A pause waiting for its partitions to drain: the partitions, when the
/// in-flight records still running are abandoned, and where to answer.
pub(crate) struct PauseWaiter {
    pub partitions: BTreeSet<Tp>,
    pub deadline: Instant,
    pub ack: oneshot::Sender<PauseAck>,
}

/// Tunables of the coordinator, fixed at start.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub ordering: Ordering,
    pub workers: usize,
    pub max_poll_records: usize,
    pub max_buffered_records: usize,
    pub max_buffered_bytes: usize,
    pub commit: CommitPolicy,
    pub commit_interval: Duration,
    pub api_timeout: Duration,
    pub revoke_timeout: Duration,
    /// How long a pause waits for the records in flight of its partitions
    /// before it abandons their handler calls.
    pub pause_timeout: Duration,
    /// `group.protocol`: under `consumer` (KIP-848) every rebalance is
    /// incremental, whatever librdkafka reports before the first subscribe.
    pub group_protocol: GroupProtocol,
}

pub(crate) struct Coordinator {
    pub name: String,
    pub settings: Settings,
    pub parts: BTreeMap<Tp, Partition>,
    pub slots: HashMap<u64, Tp>,
    next_slot: u64,
    /// Bumped whenever a partition is added or removed.
    pub assignment_epoch: u64,
    next_job: u64,
    rr: usize,
    pub executor: Executor,
    /// Pause targets wanted by the application or the control plane.
    pub desired: BTreeSet<PauseTarget>,
    /// Pauses not acknowledged yet: their partitions and deadline.
    pub pause_waiters: Vec<PauseWaiter>,
    pub seq: CommitSequence,
    pub stats: Arc<ListenerStats>,
    pub hooks: Arc<dyn RebalanceHooks>,
    /// Same channel as the poller's, for waits inside rebalance callbacks.
    pub events: Receiver<Event>,
    /// Commands that arrived during a callback, handled by the poller next.
    pub deferred: Vec<Command>,
    pub dirty: bool,
    pub job_ended: bool,
    pub records_since_commit: u64,
    pub last_commit: Instant,
    pub shutting_down: bool,
    pub revoked_at: Option<Instant>,
    /// In the group or not, and what to subscribe to (membership.rs).
    pub membership: Membership,
    /// Start floors of partitions assigned later ([`crate::start_floor`]).
    pub start_floors: Floors,
}

impl Coordinator {
    pub fn new(
        name: String,
        settings: Settings,
        executor: Executor,
        stats: Arc<ListenerStats>,
        hooks: Arc<dyn RebalanceHooks>,
        events: Receiver<Event>,
    ) -> Self {
        Coordinator {
            start_floors: Floors::new(&name),
            name,
            settings,
            parts: BTreeMap::new(),
            slots: HashMap::new(),
            next_slot: 0,
            assignment_epoch: 0,
            next_job: 0,
            rr: 0,
            executor,
            desired: BTreeSet::new(),
            pause_waiters: Vec::new(),
            seq: CommitSequence::default(),
            stats,
            hooks,
            events,
            deferred: Vec::new(),
            dirty: false,
            job_ended: false,
            records_since_commit: 0,
            last_commit: Instant::now(),
            shutting_down: false,
            revoked_at: None,
            membership: Membership::default(),
        }
    }

    /// Start tracking a newly assigned partition.
    pub fn add_partition(&mut self, tp: Tp) -> &mut Partition {
        self.next_slot += 1;
        self.assignment_epoch += 1;
        let slot = self.next_slot;
        self.slots.insert(slot, tp.clone());
        let part = Partition::new(slot, tp.0.clone(), tp.1, self.settings.ordering);
        self.parts.insert(tp.clone(), part);
        self.parts.get_mut(&tp).expect("just inserted")
    }

    /// Stop tracking a partition; later reports about it are ignored.
    pub fn remove_partition(&mut self, tp: &Tp) -> Option<Partition> {
        let part = self.parts.remove(tp)?;
        self.assignment_epoch += 1;
        self.slots.remove(&part.slot);
        Some(part)
    }

    /// Stop tracking every partition (the consumer is closed): their
    /// queued records are freed.
    pub fn clear_partitions(&mut self) {
        if !self.parts.is_empty() {
            self.assignment_epoch += 1;
        }
        self.parts.clear();
        self.slots.clear();
    }

    /// Slot and name of every assigned partition.
    pub fn assignment(&self) -> Vec<(u64, Tp)> {
        self.parts
            .iter()
            .map(|(tp, p)| (p.slot, tp.clone()))
            .collect()
    }

    /// The partitions of `slots` now have their own fetch queue
    /// (fetch_queues.rs): backpressure stops taking their records
    /// instead of pausing their fetch.
    pub fn set_own_queues(&mut self, slots: &[u64]) {
        for slot in slots {
            if let Some(part) = self.part_of_slot(*slot) {
                part.own_queue = true;
            }
        }
    }

    /// Slots whose records the poller may take from their fetch queues:
    /// running and not backpressured.
    pub fn taking_slots(&self) -> Vec<u64> {
        if self.shutting_down {
            return Vec::new();
        }
        self.parts
            .values()
            .filter(|p| p.own_queue && p.takes_records())
            .map(|p| p.slot)
            .collect()
    }

    fn part_of_slot(&mut self, slot: u64) -> Option<&mut Partition> {
        let tp = self.slots.get(&slot)?;
        self.parts.get_mut(tp)
    }

    /// Records fetched by the poller.
    pub fn ingest(&mut self, kafka: &BaseConsumer<impl ConsumerContext>, msgs: Vec<Fetched>) {
        let shutting_down = self.shutting_down;
        self.stats.fetched.add(msgs.len() as u64);
        // consecutive records mostly share a partition: no name copy per record
        let mut tp: Tp = (String::new(), -1);
        for msg in msgs {
            if tp.1 != msg.partition() || tp.0 != msg.topic() {
                tp = (msg.topic().to_string(), msg.partition());
            }
            let Some(part) = self.parts.get_mut(&tp) else {
                continue; // not (or no longer) assigned
            };
            part.offer(msg, shutting_down);
        }
        self.apply_backpressure(kafka);
    }

    /// Hand waiting records to free workers, round robin over partitions,
    /// then resume fetching if the buffer drained below its low mark.
    pub fn dispatch(&mut self, kafka: &BaseConsumer<impl ConsumerContext>) {
        self.dispatch_jobs();
        self.apply_backpressure(kafka);
    }

    fn dispatch_jobs(&mut self) {
        if self.shutting_down || self.parts.is_empty() {
            return;
        }
        let Coordinator {
            parts,
            executor,
            settings,
            next_job,
            rr,
            ..
        } = self;
        let n = parts.len();
        // One job from `part` if it can run one; None once every worker is busy.
        let mut step = |part: &mut Partition| -> Option<bool> {
            let lanes = settings.workers.max(DISPATCH_LANES);
            if executor.running() >= lanes {
                return None;
            }
            let free = lanes - executor.running();
            // room for the records of one job: one lane of up to
            // max.poll.records in partition mode, mostly one record per lane
            // otherwise
            let per_job = match settings.ordering {
                Ordering::Partition => settings.max_poll_records,
                Ordering::Key | Ordering::Unordered => MAX_LANES_PER_JOB,
            };
            let Some(taken) = part.take_job(
                free.min(MAX_LANES_PER_JOB),
                settings.max_poll_records,
                per_job,
            ) else {
                return Some(false);
            };
            *next_job += 1;
            executor.spawn(Job {
                id: *next_job,
                slot: part.slot,
                lanes: taken.lanes,
                records: taken.records,
                halt: taken.halt,
            });
            Some(true)
        };
        loop {
            // round robin: each pass starts one partition further
            let start = *rr % n;
            *rr = rr.wrapping_add(1);
            let mut progressed = false;
            for part in parts.values_mut().skip(start) {
                match step(part) {
                    None => return,
                    Some(p) => progressed |= p,
                }
            }
            for part in parts.values_mut().take(start) {
                match step(part) {
                    None => return,
                    Some(p) => progressed |= p,
                }
            }
            if !progressed {
                return;
            }
        }
    }

    /// Stop taking records of every partition while the buffer is full
    /// (pausing their fetch if they have no fetch queue of their own), so it
    /// exceeds its bound by one poll batch at most; go on below half.
    pub fn apply_backpressure(&mut self, kafka: &BaseConsumer<impl ConsumerContext>) {
        // records: waiting and in flight (handed to workers, not finished);
        // bytes: waiting (a worker holds at most one job's worth per lane)
        let (records, bytes) = self.parts.values().fold((0, 0), |(r, b), p| {
            (r + p.tracker.pending(), b + p.queue.bytes())
        });
        let (max_r, max_b) = (
            self.settings.max_buffered_records,
            self.settings.max_buffered_bytes,
        );
        let over = records >= max_r || bytes >= max_b;
        let under = records <= max_r / 2 && bytes <= max_b / 2;
        let mut changed = Vec::new();
        for (tp, part) in self.parts.iter_mut() {
            if part.backpressure(over, under) {
                if part.backpressured() {
                    self.stats.backpressure_pauses.inc();
                }
                changed.push(tp.clone());
            }
        }
        if !changed.is_empty() {
            tracing::debug!(listener = %self.name, records, bytes, over, partitions = ?changed, "backpressure changed");
        }
        for tp in changed {
            self.apply_fetch(kafka, &tp);
        }
    }

    /// Make librdkafka's fetch state of `tp` match what the partition needs
    /// ([`Partition::fetch_change`]).
    pub fn apply_fetch(&mut self, kafka: &BaseConsumer<impl ConsumerContext>, tp: &Tp) {
        let shutting_down = self.shutting_down;
        let Some(part) = self.parts.get_mut(tp) else {
            return;
        };
        let Some(change) = part.fetch_change(shutting_down) else {
            return;
        };
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(&part.topic, part.partition);
        match change {
            Fetch::Pause => {
                if let Err(e) = kafka.pause(&tpl) {
                    tracing::warn!(topic = %part.topic, partition = part.partition, error = %e, "pause failed");
                }
            }
            Fetch::Resume { from } => {
                if let Err(e) = kafka.resume(&tpl) {
                    tracing::warn!(topic = %part.topic, partition = part.partition, error = %e, "resume failed");
                }
                // The seek is asynchronous (a zero timeout): an operation on
                // the partition's broker thread, it also wakes that thread,
                // which a resume alone does not (it would sleep up to 1 s
                // before its next fetch); and it costs no request and no
                // wait. A partition that never took a record resumes at its
                // logical start, which librdkafka seeks itself.
                if let Some(next) = from {
                    if let Err(e) = kafka.seek(
                        &part.topic,
                        part.partition,
                        Offset::Offset(next),
                        Duration::ZERO,
                    ) {
                        tracing::warn!(topic = %part.topic, partition = part.partition, next, error = %e, "seek on resume failed");
                    }
                }
            }
        }
    }

    /// React to one event; commands go to [`Coordinator::handle_command`].
    pub fn on_event(&mut self, kafka: &BaseConsumer<impl ConsumerContext>, event: Event) {
        match event {
            Event::Progress { slot, offsets } => {
                let Some(part) = self.part_of_slot(slot) else {
                    return;
                };
                let n = part.finished(offsets);
                self.records_since_commit += n;
                self.dirty |= n > 0;
            }
            Event::LaneEnd { id, slot, ends } => {
                self.job_ended = true;
                if !self.executor.lanes_finished(id, ends.lanes.len()) {
                    // abandoned at a deadline: its lanes and records were
                    // given up then
                    return;
                }
                let Some((tp, part)) = self
                    .slots
                    .get(&slot)
                    .and_then(|tp| self.parts.get_mut(tp).map(|p| (tp, p)))
                else {
                    return;
                };
                let ended = part.lanes_ended(ends);
                self.records_since_commit += ended.finished;
                self.dirty |= ended.finished > 0;
                // drained (a pause), or stopped with nothing running any
                // more: committed now, and any pause waiting is answered
                if ended.drained {
                    let tp = tp.clone();
                    self.complete_pause(kafka, &tp);
                }
            }
            Event::Stopped {
                slot,
                offset,
                reason,
            } => {
                let Some(tp) = self.slots.get(&slot).cloned() else {
                    return;
                };
                self.stop_partition(kafka, &tp, offset, reason);
            }
            Event::Command(cmd) => self.handle_command(kafka, cmd),
            Event::Wake => {}
        }
    }

    /// The failure policy stopped a partition at `offset`.
    fn stop_partition(
        &mut self,
        kafka: &BaseConsumer<impl ConsumerContext>,
        tp: &Tp,
        offset: i64,
        reason: String,
    ) {
        let part = self.parts.get_mut(tp).expect("known partition");
        tracing::error!(listener = %self.name, topic = %tp.0, partition = tp.1, offset, %reason, "partition stopped");
        self.stats.partitions_stopped.inc();
        part.stop_at(offset, reason);
        self.apply_fetch(kafka, tp);
    }

    pub fn handle_command(&mut self, kafka: &BaseConsumer<impl ConsumerContext>, cmd: Command) {
        match cmd {
            Command::Pause(target, ack) => self.pause(kafka, target, ack),
            Command::Resume(target, skip, keep, done) => {
                self.resume(kafka, &target, skip, &keep);
                let _ = done.send(());
            }
            Command::Seek(tp, to, done_above, done) => {
                let _ = done.send(self.seek(kafka, tp, to, done_above));
            }
            Command::Snapshot(reply) => {
                let _ = reply.send(self.snapshot(kafka));
            }
            Command::Membership(join, reply) => {
                let assigned = !self.parts.is_empty();
                self.membership
                    .set(kafka, &self.name, assigned, join, reply)
            }
            Command::StartFloors(floors, done) => {
                self.start_floors.set(floors);
                let _ = done.send(());
            }
            // Shutdown is driven by the poller; a second request is deferred to it.
            cmd @ Command::Shutdown(..) => self.deferred.push(cmd),
        }
    }

    /// The partitions' states, with the log ends librdkafka knows (no
    /// request: [`crate::log_ends`] asks for those of paused partitions).
    pub fn snapshot(&mut self, kafka: &BaseConsumer<impl ConsumerContext>) -> ListenerSnapshot {
        ListenerSnapshot {
            name: self.name.clone(),
            partitions: self
                .parts
                .values()
                .map(|p| {
                    let mut s = p.status();
                    s.log_end = cached_log_end(kafka, &p.topic, p.partition);
                    s.lag = s
                        .log_end
                        .zip(s.committed.or(p.tracker.low_watermark()))
                        .map(|(e, c)| (e - c).max(0));
                    s.time_lag_ms = match (s.lag, p.tracker.oldest_pending_timestamp()) {
                        (_, Some(ts)) => Some((now_ms() - ts).max(0)),
                        (Some(0), None) => Some(0),
                        _ => None,
                    };
                    s
                })
                .collect(),
            member_id: member_id(kafka),
            joined: self
                .membership
                .subscription
                .is_some()
                .then_some(self.membership.joined),
            stats: self.stats.snapshot(),
        }
    }

    /// Abandon the handler calls still running for `tp` (a pause or a revoke
    /// past its deadline): their tasks are aborted, which frees their worker
    /// permits, their lanes are free again and their records are fetched
    /// again from the first of them (never committed). Returns how many
    /// records were abandoned.
    pub fn abandon_in_flight(&mut self, tp: &Tp, why: &str) -> usize {
        let Some(part) = self.parts.get_mut(tp) else {
            return 0;
        };
        let lanes = self.executor.abort_slot(part.slot);
        if lanes == 0 {
            return 0;
        }
        let records = part.abandoned(lanes);
        self.stats.abandoned.add(records as u64);
        tracing::warn!(listener = %self.name, topic = %tp.0, partition = tp.1, lanes, records,
            next = ?part.tracker.next(), "{why}: handler calls still running were abandoned; their records will be delivered again");
        records
    }

    /// Records handed to workers and not finished, over all partitions.
    pub fn in_flight(&self) -> usize {
        self.parts.values().map(Partition::in_flight_records).sum()
    }
}

/// The partition's high watermark from librdkafka's cache (fetch responses
/// carry it): no request to the broker.
fn cached_log_end(
    kafka: &BaseConsumer<impl ConsumerContext>,
    topic: &str,
    partition: i32,
) -> Option<i64> {
    let topic = std::ffi::CString::new(topic).ok()?;
    let (mut low, mut high) = (-1i64, -1i64);
    // SAFETY: plain out-parameters; the topic string outlives the call.
    let err = unsafe {
        rdkafka::bindings::rd_kafka_get_watermark_offsets(
            kafka.client().native_ptr(),
            topic.as_ptr(),
            partition,
            &mut low,
            &mut high,
        )
    };
    (err == rdkafka::types::RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR && high >= 0).then_some(high)
}

fn member_id(kafka: &BaseConsumer<impl ConsumerContext>) -> Option<String> {
    // SAFETY: rd_kafka_memberid returns a malloc'ed string or NULL.
    unsafe {
        let p = rdkafka::bindings::rd_kafka_memberid(kafka.client().native_ptr());
        if p.is_null() {
            return None;
        }
        let s = std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned();
        rdkafka::bindings::rd_kafka_mem_free(kafka.client().native_ptr(), p as *mut _);
        (!s.is_empty()).then_some(s)
    }
}
