//! The executor: runs jobs (records of one or more lanes, see
//! [`crate::jobs_queue`]) on the tokio runtime, at most `workers` handler
//! calls at a time (one permit per call), and reports back to the poller
//! through the event channel.
//!
//! For each record it decodes, calls the handler, retries failures with the
//! [`RetryPolicy`], and applies the [`FailurePolicy`] or the decode-error
//! policy; then it reports the record's offset as finished
//! (`Event::Progress`, batched per 64 records or 20 ms). When lanes of the
//! job are over it reports `Event::LaneEnd` with their last offsets (the
//! lanes that ended in one poll of the job together), so they can run again.
//! A job whose partition pauses, is revoked or shuts down is *halted*: its
//! lanes stop before their next record and report the records they did not
//! start, which the coordinator drops like records still waiting. Nothing
//! here touches the Kafka consumer: the poller owns it.

use ahash::AHashMap as HashMap;
use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};
use std::sync::Arc;

use crate::fetched::Fetched;
use crossbeam_channel::Sender;
use switchyard_config::DecodeErrorPolicy;
use tokio::task::AbortHandle;

use crate::dead_letter::DeadLetters;
use crate::deserializer::DecodeError;
use crate::event::{Event, LaneEnds};
use crate::failure::{DeadLetterFallback, FailurePolicy, RetryPolicy};
use crate::handler::{HandlerKind, SharedProcessor};
use crate::jobs_queue::Lane;
use crate::stats::{ListenerStats, LocalLatency};

/// Records of one or more lanes of one partition handed to a worker task.
/// The lanes run concurrently in the task, each lane's records in order;
/// several lanes per task keep the cost of a task off every record when
/// lanes are short (key mode with many keys, unordered mode).
pub(crate) struct Job {
    pub id: u64,
    pub slot: u64,
    /// Each lane and how many of `records` are its, in order.
    pub lanes: Vec<(Lane, usize)>,
    /// The records of every lane, lane after lane.
    pub records: Vec<Fetched>,
    /// Set when the partition pauses, is revoked or shuts down: stop before
    /// the next record.
    pub halt: Arc<AtomicBool>,
}

/// Most lanes in one job.
pub(crate) const MAX_LANES_PER_JOB: usize = 32;

/// Everything a worker needs, shared by all jobs of a listener.
pub(crate) struct WorkerContext {
    pub listener: String,
    pub processor: SharedProcessor,
    pub retry: RetryPolicy,
    pub failure: FailurePolicy,
    pub on_decode_error: DecodeErrorPolicy,
    pub dead_letters: Option<Arc<DeadLetters>>,
    /// What a dead-letter write that failed on every attempt turns into.
    pub dead_letter_fallback: DeadLetterFallback,
    pub events: Sender<Event>,
    pub stats: Arc<ListenerStats>,
    /// One permit per handler call in progress: at most `workers` at once.
    pub calls: tokio::sync::Semaphore,
}

/// Spawns jobs and remembers them so a pause, a revoke or the shutdown can
/// abandon them at its deadline.
pub(crate) struct Executor {
    rt: tokio::runtime::Handle,
    ctx: Arc<WorkerContext>,
    /// Job id -> its task, its lanes still running, its partition's slot.
    running: HashMap<u64, (AbortHandle, usize, u64)>,
    busy_lanes: usize,
}

/// How one record ended.
enum Outcome {
    Done,
    Stop(String),
}

impl Executor {
    pub fn new(rt: tokio::runtime::Handle, ctx: WorkerContext) -> Self {
        Executor {
            rt,
            ctx: Arc::new(ctx),
            running: HashMap::new(),
            busy_lanes: 0,
        }
    }

    /// Lanes running now (the unit of the `workers` limit).
    pub fn running(&self) -> usize {
        self.busy_lanes
    }

    pub fn spawn(&mut self, job: Job) {
        let ctx = self.ctx.clone();
        let (id, lanes, slot) = (job.id, job.lanes.len(), job.slot);
        let handle = self.rt.spawn(run_job(ctx, job));
        self.busy_lanes += lanes;
        self.running
            .insert(id, (handle.abort_handle(), lanes, slot));
    }

    /// `n` lanes of job `id` are over; the job is forgotten with its last
    /// lane. False when the job is not known: it was abandoned (its lanes
    /// were given up then), and its late reports count for nothing.
    pub fn lanes_finished(&mut self, id: u64, n: usize) -> bool {
        let Some((_, lanes, _)) = self.running.get_mut(&id) else {
            return false;
        };
        *lanes -= n;
        self.busy_lanes -= n;
        if *lanes == 0 {
            self.running.remove(&id);
        }
        true
    }

    /// Abort every running job (shutdown past its deadline); returns how many.
    pub fn abort_all(&mut self) -> usize {
        let n = self.running.len();
        for (_, (h, _, _)) in self.running.drain() {
            h.abort();
        }
        self.busy_lanes = 0;
        n
    }

    /// Abort the running jobs of the partition with `slot` (a pause or a
    /// revoke past its deadline): their handler calls are dropped and their
    /// worker permits freed. Returns the lanes that were still running.
    pub fn abort_slot(&mut self, slot: u64) -> usize {
        let mut lanes = 0;
        self.running.retain(|_, (h, n, s)| {
            if *s != slot {
                return true;
            }
            h.abort();
            lanes += *n;
            false
        });
        self.busy_lanes -= lanes;
        lanes
    }
}

/// Reports finished records of one job to the poller in small batches, so
/// the poll thread is woken per 64 records (or 20 ms), not per record.
/// Its statistics (processed records, handler latencies) are added to the
/// listener's counters at the same moments, not per record.
struct Reporter<'a> {
    ctx: &'a WorkerContext,
    slot: u64,
    done: Vec<i64>,
    last_flush: std::time::Instant,
    processed: u64,
    latency: LocalLatency,
}

impl<'a> Reporter<'a> {
    const BATCH: usize = 64;
    const EVERY: std::time::Duration = std::time::Duration::from_millis(20);

    /// `now`: the job's start (the clock is read once per job, not per lane).
    fn new(ctx: &'a WorkerContext, slot: u64, now: std::time::Instant) -> Self {
        Reporter {
            ctx,
            slot,
            done: Vec::new(),
            last_flush: now,
            processed: 0,
            latency: LocalLatency::default(),
        }
    }

    /// A handler call took `d`.
    fn observe(&mut self, d: std::time::Duration) {
        self.latency.observe(d);
    }

    /// A record's handler succeeded.
    fn processed(&mut self) {
        self.processed += 1;
    }

    fn flush_stats(&mut self) {
        let stats = &self.ctx.stats;
        stats.processed.add(std::mem::take(&mut self.processed));
        stats.handler_latency.add(&mut self.latency);
    }

    fn done(&mut self, offset: i64) {
        self.done.push(offset);
        // the clock is read every 8 records only: it is not free
        if self.done.len() >= Self::BATCH
            || (self.done.len().is_multiple_of(8) && self.last_flush.elapsed() >= Self::EVERY)
        {
            self.flush();
        }
    }

    fn flush(&mut self) {
        self.flush_stats();
        if !self.done.is_empty() {
            let offsets = std::mem::take(&mut self.done);
            let _ = self.ctx.events.send(Event::Progress {
                slot: self.slot,
                offsets,
            });
        }
        self.last_flush = std::time::Instant::now();
    }

    fn stopped(&mut self, offset: i64, reason: String) {
        self.flush();
        let _ = self.ctx.events.send(Event::Stopped {
            slot: self.slot,
            offset,
            reason,
        });
    }

    /// The lane is over: its last offsets travel with the job's end.
    fn into_remaining(mut self) -> Vec<i64> {
        self.flush_stats();
        std::mem::take(&mut self.done)
    }
}

/// Run the lanes of a job: first each lane inline, record after record, as
/// long as handlers complete at once (no task, no allocation per lane);
/// a lane whose handler waits (or fails, or whose record does not decode)
/// goes on concurrently with the other such lanes, each reporting its own
/// end, so a slow lane holds back neither the offsets nor the worker slots
/// of the others. Lanes that end in the same poll of the job travel in one
/// event (with handlers that complete at once, one event per job).
async fn run_job(ctx: Arc<WorkerContext>, job: Job) {
    use futures::stream::{FuturesUnordered, StreamExt};
    let Job {
        id,
        slot,
        lanes,
        records,
        halt,
    } = job;
    let (ctx, halt) = (&ctx, &*halt);
    let now = std::time::Instant::now();
    let mut report = Reporter::new(ctx, slot, now);
    let mut ends = LaneEnds::default();
    // inline calls run one at a time: they share one permit
    let mut permit = None;
    // the inline part is plain code, polled once: no future per lane
    let mut blocked = Vec::new();
    let mut started = now;
    std::future::poll_fn(|cx| {
        let mut rest = &records[..];
        for &(lane, n) in &lanes {
            let (msgs, after) = rest.split_at(n);
            rest = after;
            let unstarted = &mut ends.unstarted;
            let call = (&mut permit, &mut started, &mut *cx);
            match run_inline(ctx, halt, msgs, call, &mut report, unstarted) {
                Inline::Finished => ends.lanes.push(lane),
                Inline::Blocked { at, first } => blocked.push((lane, &msgs[at..], first)),
            }
        }
        std::task::Poll::Ready(())
    })
    .await;
    let mut running: FuturesUnordered<_> = blocked
        .into_iter()
        .map(|(lane, msgs, first)| async move {
            let (done, unstarted) = run_lane(ctx, slot, now, halt, msgs, first).await;
            (lane, done, unstarted)
        })
        .collect();
    drop(permit);
    if ends.lanes.is_empty() {
        // no lane ended yet: what finished before the blocked records goes
        // out now, not with the first lane end (which may never come)
        report.flush();
    }
    ends.done = report.into_remaining();
    let send = |ends: &mut LaneEnds| {
        if !ends.lanes.is_empty() {
            let _ = ctx.events.send(Event::LaneEnd {
                id,
                slot,
                ends: std::mem::take(ends),
            });
        }
    };
    send(&mut ends);
    std::future::poll_fn(|cx| loop {
        match running.poll_next_unpin(cx) {
            std::task::Poll::Ready(Some((lane, done, unstarted))) => {
                ends.lanes.push(lane);
                ends.done.extend(done);
                ends.unstarted.extend(unstarted);
            }
            std::task::Poll::Ready(None) => {
                send(&mut ends);
                return std::task::Poll::Ready(());
            }
            std::task::Poll::Pending => {
                send(&mut ends);
                return std::task::Poll::Pending;
            }
        }
    })
    .await;
}

/// How the inline part of a lane ended.
enum Inline<'a> {
    /// Every record finished, or the job was halted (the rest is in `unstarted`).
    Finished,
    /// Record `at` needs the full path: its handler future if it was called
    /// (pending, or completed with an error), with its start.
    Blocked {
        at: usize,
        first: Option<FirstAttempt<'a>>,
    },
}

/// A handler call already made for a record: its future, when it started,
/// and the permit it holds.
type FirstAttempt<'a> = (
    futures::future::BoxFuture<'static, crate::handler::HandlerResult>,
    std::time::Instant,
    Permit<'a>,
);

/// What the inline calls of a job share: its permit, the end of its last
/// call, and the task's context.
type InlineCall<'a, 'b, 'c> = (
    &'b mut Option<Permit<'a>>,
    &'b mut std::time::Instant,
    &'b mut std::task::Context<'c>,
);

/// A handler call in progress (see [`WorkerContext::calls`]).
type Permit<'a> = tokio::sync::SemaphorePermit<'a>;

/// Run the records of a lane while a permit is free and their handlers
/// complete at once with success; never waits (each handler future is polled
/// once, with the job's context). A record is not started once the job is
/// halted. `permit`: the job's inline permit, taken if needed; a call that
/// does not complete at once keeps it. A record's latency runs from
/// `started`, the end of the previous record of the job (one clock read per
/// record, whatever the number of lanes).
fn run_inline<'a>(
    ctx: &'a WorkerContext,
    halt: &AtomicBool,
    msgs: &[Fetched],
    (permit, started, cx): InlineCall<'a, '_, '_>,
    report: &mut Reporter<'_>,
    unstarted: &mut Vec<i64>,
) -> Inline<'a> {
    if ctx.processor.kind() != HandlerKind::Record {
        return Inline::Blocked { at: 0, first: None };
    }
    for (i, msg) in msgs.iter().enumerate() {
        if halt.load(AtomicOrdering::Relaxed) {
            unstarted.extend(msgs[i..].iter().map(Fetched::offset));
            return Inline::Finished;
        }
        if permit.is_none() {
            *permit = ctx.calls.try_acquire().ok();
        }
        if permit.is_none() {
            return Inline::Blocked { at: i, first: None };
        }
        let Ok(mut fut) = ctx.processor.call_one(msg) else {
            return Inline::Blocked { at: i, first: None };
        };
        match fut.as_mut().poll(cx) {
            std::task::Poll::Ready(Ok(())) => {
                let end = std::time::Instant::now();
                report.observe(end - *started);
                *started = end;
                report.processed();
                report.done(msg.offset());
            }
            std::task::Poll::Ready(Err(e)) => {
                let ready = Box::pin(std::future::ready(Err(e)));
                return Inline::Blocked {
                    at: i,
                    first: Some((ready, *started, permit.take().expect("held"))),
                };
            }
            std::task::Poll::Pending => {
                return Inline::Blocked {
                    at: i,
                    first: Some((fut, *started, permit.take().expect("held"))),
                }
            }
        }
    }
    Inline::Finished
}

/// Run the records of one lane in order, stopping before the next record
/// once `halt` is set; returns the finished offsets not reported yet and the
/// offsets not started. `first`: the first record's handler call, if made.
async fn run_lane<'a>(
    ctx: &'a WorkerContext,
    slot: u64,
    now: std::time::Instant,
    halt: &AtomicBool,
    msgs: &[Fetched],
    mut first: Option<FirstAttempt<'a>>,
) -> (Vec<i64>, Vec<i64>) {
    let mut report = Reporter::new(ctx, slot, now);
    let mut unstarted = Vec::new();
    let halted = || halt.load(AtomicOrdering::Relaxed);
    match ctx.processor.kind() {
        HandlerKind::Record => {
            for (i, msg) in msgs.iter().enumerate() {
                let call = match first.take() {
                    Some(call) => Some(Call::Made(call)),
                    None if halted() => None,
                    None => {
                        report.flush();
                        let permit = ctx.calls.acquire().await.expect("never closed");
                        // the wait may have been long: halted meanwhile?
                        (!halted()).then_some(Call::Permitted(permit))
                    }
                };
                let Some(call) = call else {
                    unstarted = msgs[i..].iter().map(Fetched::offset).collect();
                    break;
                };
                match run_record(ctx, msg, &mut report, call).await {
                    Outcome::Done => report.done(msg.offset()),
                    Outcome::Stop(reason) => {
                        report.stopped(msg.offset(), reason);
                        unstarted = msgs[i + 1..].iter().map(Fetched::offset).collect();
                        break;
                    }
                }
            }
        }
        HandlerKind::Batch => unstarted = run_batch(ctx, msgs, &mut report).await,
    }
    (report.into_remaining(), unstarted)
}

/// Await `fut`, but first report finished records if it does not complete at
/// once: a handler that waits (IO, a stuck call) never holds back the commit
/// of the records before it, while handlers that complete at once are
/// reported in batches.
async fn reporting<T>(fut: impl std::future::Future<Output = T>, report: &mut Reporter<'_>) -> T {
    let mut fut = std::pin::pin!(fut);
    match futures::poll!(fut.as_mut()) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => {
            report.flush();
            fut.await
        }
    }
}

/// How a record's handling starts: with the handler already called, or with
/// a permit to call it.
enum Call<'a> {
    Made(FirstAttempt<'a>),
    Permitted(Permit<'a>),
}

/// Handle one record (holding its permit throughout, retries included).
async fn run_record(
    ctx: &WorkerContext,
    msg: &Fetched,
    report: &mut Reporter<'_>,
    call: Call<'_>,
) -> Outcome {
    let (mut first, _permit) = match call {
        Call::Made((fut, started, permit)) => (Some((fut, started)), permit),
        Call::Permitted(permit) => (None, permit),
    };
    let mut attempt = 1;
    loop {
        let (fut, started) = match first.take() {
            Some(call) => call,
            None => match ctx.processor.call_one(msg) {
                Ok(f) => (f, std::time::Instant::now()),
                Err(e) => return reporting(on_decode_error(ctx, msg, &e), report).await,
            },
        };
        let result = reporting(fut, report).await;
        report.observe(started.elapsed());
        match result {
            Ok(()) => {
                report.processed();
                return Outcome::Done;
            }
            Err(e) => {
                ctx.stats.handler_errors.inc();
                if attempt >= ctx.retry.max_attempts {
                    report.flush();
                    return on_exhausted(ctx, msg, &e.to_string(), attempt).await;
                }
                tracing::debug!(listener = %ctx.listener, topic = msg.topic(), partition = msg.partition(),
                    offset = msg.offset(), attempt, error = %e, "handler failed, retrying");
                tokio::time::sleep(ctx.retry.backoff(attempt)).await;
                ctx.stats.retries.inc();
                attempt += 1;
            }
        }
    }
}

/// Run a batch; returns the records after the one the partition stopped
/// at, if it stopped (not started).
async fn run_batch(ctx: &WorkerContext, all: &[Fetched], report: &mut Reporter<'_>) -> Vec<i64> {
    let _permit = ctx.calls.acquire().await.expect("never closed");
    let after = |i: usize| all[i + 1..].iter().map(Fetched::offset).collect();
    let mut msgs = all;
    let (mut fut, mut bad) = ctx.processor.call_batch(msgs);
    // decode errors are final whatever the attempt: handle them once; one
    // that can be neither decoded nor dead-lettered ends the batch before it
    // (the records before it still run) and stops the partition there
    let mut stop = None;
    for (i, e) in &bad {
        if let Outcome::Stop(r) = on_decode_error(ctx, &msgs[*i], e).await {
            stop = Some((*i, r));
            msgs = &msgs[..*i];
            fut = ctx.processor.call_batch(msgs).0;
            break;
        }
    }
    bad.retain(|(i, _)| *i < msgs.len());
    let mut attempt = 1;
    loop {
        let result = match fut.take() {
            Some(f) => reporting(f, report).await,
            None => Ok(()),
        };
        match result {
            Ok(()) => {
                ctx.stats.processed.add((msgs.len() - bad.len()) as u64);
                for m in msgs {
                    report.done(m.offset());
                }
                break;
            }
            Err(e) if attempt >= ctx.retry.max_attempts => {
                ctx.stats.handler_errors.inc();
                // the batch as a whole is exhausted: apply the policy record by record
                let reason = e.to_string();
                for (i, m) in msgs.iter().enumerate() {
                    match on_exhausted(ctx, m, &reason, attempt).await {
                        Outcome::Done => report.done(m.offset()),
                        Outcome::Stop(r) => {
                            report.stopped(m.offset(), r);
                            return after(i);
                        }
                    }
                }
                break;
            }
            Err(_) => {
                ctx.stats.handler_errors.inc();
                tokio::time::sleep(ctx.retry.backoff(attempt)).await;
                ctx.stats.retries.inc();
                attempt += 1;
                fut = ctx.processor.call_batch(msgs).0;
            }
        }
    }
    match stop {
        Some((i, reason)) => {
            report.stopped(all[i].offset(), reason);
            after(i)
        }
        None => Vec::new(),
    }
}

async fn on_decode_error(ctx: &WorkerContext, msg: &Fetched, e: &DecodeError) -> Outcome {
    ctx.stats.decode_errors.inc();
    tracing::warn!(listener = %ctx.listener, topic = msg.topic(), partition = msg.partition(),
        offset = msg.offset(), error = %e, policy = ?ctx.on_decode_error, "undecodable record");
    match (ctx.on_decode_error, &ctx.dead_letters) {
        (DecodeErrorPolicy::DeadLetter, Some(dl)) => {
            dead_letter(ctx, dl, msg, &e.to_string(), 0).await
        }
        _ => {
            ctx.stats.skipped.inc();
            Outcome::Done
        }
    }
}

/// Write `msg` to the dead-letter topic; a write that failed on every
/// attempt goes to the [`DeadLetterFallback`].
async fn dead_letter(
    ctx: &WorkerContext,
    dl: &DeadLetters,
    msg: &Fetched,
    error: &str,
    attempts: u32,
) -> Outcome {
    let e = match dl.send(msg, error, attempts).await {
        Ok(()) => {
            ctx.stats.dead_lettered.inc();
            return Outcome::Done;
        }
        Err(e) => e,
    };
    ctx.stats.dead_letter_failures.inc();
    tracing::error!(listener = %ctx.listener, topic = msg.topic(), partition = msg.partition(),
        offset = msg.offset(), error = %e, fallback = ?ctx.dead_letter_fallback, "dead-letter write failed on every attempt");
    match ctx.dead_letter_fallback {
        DeadLetterFallback::StopPartition => Outcome::Stop(format!(
            "record at offset {} could not be dead-lettered: {e} (the record failed: {error})",
            msg.offset()
        )),
        DeadLetterFallback::Skip => {
            ctx.stats.skipped.inc();
            Outcome::Done
        }
    }
}

async fn on_exhausted(ctx: &WorkerContext, msg: &Fetched, error: &str, attempts: u32) -> Outcome {
    tracing::warn!(listener = %ctx.listener, topic = msg.topic(), partition = msg.partition(),
        offset = msg.offset(), attempts, error, policy = ?ctx.failure, "handler failed on every attempt");
    match (ctx.failure, &ctx.dead_letters) {
        (FailurePolicy::DeadLetter, Some(dl)) => dead_letter(ctx, dl, msg, error, attempts).await,
        (FailurePolicy::StopPartition, _) => Outcome::Stop(format!(
            "handler failed {attempts} times at offset {}: {error}",
            msg.offset()
        )),
        _ => {
            ctx.stats.skipped.inc();
            Outcome::Done
        }
    }
}
