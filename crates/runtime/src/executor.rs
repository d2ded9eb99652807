//! The executor: runs jobs (records of one lane, see [`crate::jobs_queue`]) on
//! the tokio runtime, at most `workers` at a time, and reports back to the
//! poller through the event channel.
//!
//! For each record it decodes, calls the handler, retries failures with the
//! [`RetryPolicy`], and applies the [`FailurePolicy`] or the decode-error
//! policy; then it reports the record's offset as finished
//! ([`Event::Progress`]). When the job is over it reports [`Event::JobEnd`] so
//! the lane can run again. Nothing here touches the Kafka consumer: the poller
//! owns it.

use std::collections::HashMap;
use std::sync::Arc;

use crossbeam_channel::Sender;
use rdkafka::message::{Message, OwnedMessage};
use switchyard_config::DecodeErrorPolicy;
use tokio::task::AbortHandle;

use crate::dead_letter::DeadLetters;
use crate::deserializer::DecodeError;
use crate::event::Event;
use crate::failure::{FailurePolicy, RetryPolicy};
use crate::handler::{HandlerKind, SharedProcessor};
use crate::jobs_queue::Lane;
use crate::stats::ListenerStats;

/// Records of one lane handed to a worker.
pub(crate) struct Job {
    pub id: u64,
    pub slot: u64,
    pub lane: Lane,
    pub msgs: Vec<OwnedMessage>,
}

/// Everything a worker needs, shared by all jobs of a listener.
pub(crate) struct WorkerContext {
    pub listener: String,
    pub processor: SharedProcessor,
    pub retry: RetryPolicy,
    pub failure: FailurePolicy,
    pub on_decode_error: DecodeErrorPolicy,
    pub dead_letters: Option<Arc<DeadLetters>>,
    pub events: Sender<Event>,
    pub stats: Arc<ListenerStats>,
}

/// Spawns jobs and remembers them so shutdown can abandon them.
pub(crate) struct Executor {
    rt: tokio::runtime::Handle,
    ctx: Arc<WorkerContext>,
    running: HashMap<u64, AbortHandle>,
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
        }
    }

    /// Jobs running now.
    pub fn running(&self) -> usize {
        self.running.len()
    }

    pub fn spawn(&mut self, job: Job) {
        let ctx = self.ctx.clone();
        let id = job.id;
        let handle = self.rt.spawn(run_job(ctx, job));
        self.running.insert(id, handle.abort_handle());
    }

    pub fn finished(&mut self, id: u64) {
        self.running.remove(&id);
    }

    /// Abort every running job (shutdown past its deadline); returns how many.
    pub fn abort_all(&mut self) -> usize {
        let n = self.running.len();
        for (_, h) in self.running.drain() {
            h.abort();
        }
        n
    }
}

async fn run_job(ctx: Arc<WorkerContext>, job: Job) {
    match ctx.processor.kind() {
        HandlerKind::Record => {
            for msg in &job.msgs {
                match run_record(&ctx, msg).await {
                    Outcome::Done => {
                        let _ = ctx.events.send(Event::Progress {
                            slot: job.slot,
                            offsets: vec![msg.offset()],
                        });
                    }
                    Outcome::Stop(reason) => {
                        let _ = ctx.events.send(Event::Stopped {
                            slot: job.slot,
                            offset: msg.offset(),
                            reason,
                        });
                        break;
                    }
                }
            }
        }
        HandlerKind::Batch => run_batch(&ctx, &job).await,
    }
    let _ = ctx.events.send(Event::JobEnd {
        id: job.id,
        slot: job.slot,
        lane: job.lane,
    });
}

async fn run_record(ctx: &WorkerContext, msg: &OwnedMessage) -> Outcome {
    let mut attempt = 1;
    loop {
        let fut = match ctx.processor.call_one(msg) {
            Ok(f) => f,
            Err(e) => return on_decode_error(ctx, msg, &e).await,
        };
        match fut.await {
            Ok(()) => {
                ctx.stats.processed.inc();
                return Outcome::Done;
            }
            Err(e) => {
                ctx.stats.handler_errors.inc();
                if attempt >= ctx.retry.max_attempts {
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

async fn run_batch(ctx: &WorkerContext, job: &Job) {
    let mut attempt = 1;
    loop {
        let (fut, bad) = ctx.processor.call_batch(&job.msgs);
        if attempt == 1 {
            for (i, e) in &bad {
                // decode errors are final whatever the attempt: report once
                if let Outcome::Stop(reason) = on_decode_error(ctx, &job.msgs[*i], e).await {
                    let _ = ctx.events.send(Event::Stopped {
                        slot: job.slot,
                        offset: job.msgs[*i].offset(),
                        reason,
                    });
                    return;
                }
            }
        }
        let result = match fut {
            Some(f) => f.await,
            None => Ok(()),
        };
        match result {
            Ok(()) => {
                let ok = job.msgs.len() - bad.len();
                ctx.stats.processed.add(ok as u64);
                let _ = ctx.events.send(Event::Progress {
                    slot: job.slot,
                    offsets: job.msgs.iter().map(|m| m.offset()).collect(),
                });
                return;
            }
            Err(e) => {
                ctx.stats.handler_errors.inc();
                if attempt >= ctx.retry.max_attempts {
                    // the batch as a whole is exhausted: apply the policy record by record
                    let reason = e.to_string();
                    let mut done = Vec::new();
                    for m in &job.msgs {
                        match on_exhausted(ctx, m, &reason, attempt).await {
                            Outcome::Done => done.push(m.offset()),
                            Outcome::Stop(r) => {
                                let _ = ctx.events.send(Event::Progress {
                                    slot: job.slot,
                                    offsets: done,
                                });
                                let _ = ctx.events.send(Event::Stopped {
                                    slot: job.slot,
                                    offset: m.offset(),
                                    reason: r,
                                });
                                return;
                            }
                        }
                    }
                    let _ = ctx.events.send(Event::Progress {
                        slot: job.slot,
                        offsets: done,
                    });
                    return;
                }
                tokio::time::sleep(ctx.retry.backoff(attempt)).await;
                ctx.stats.retries.inc();
                attempt += 1;
            }
        }
    }
}

async fn on_decode_error(ctx: &WorkerContext, msg: &OwnedMessage, e: &DecodeError) -> Outcome {
    ctx.stats.decode_errors.inc();
    tracing::warn!(listener = %ctx.listener, topic = msg.topic(), partition = msg.partition(),
        offset = msg.offset(), error = %e, policy = ?ctx.on_decode_error, "undecodable record");
    match (ctx.on_decode_error, &ctx.dead_letters) {
        (DecodeErrorPolicy::DeadLetter, Some(dl)) => {
            dl.send(msg, &e.to_string(), 0).await;
            ctx.stats.dead_lettered.inc();
        }
        _ => ctx.stats.skipped.inc(),
    }
    Outcome::Done
}

async fn on_exhausted(
    ctx: &WorkerContext,
    msg: &OwnedMessage,
    error: &str,
    attempts: u32,
) -> Outcome {
    tracing::warn!(listener = %ctx.listener, topic = msg.topic(), partition = msg.partition(),
        offset = msg.offset(), attempts, error, policy = ?ctx.failure, "handler failed on every attempt");
    match (ctx.failure, &ctx.dead_letters) {
        (FailurePolicy::DeadLetter, Some(dl)) => {
            dl.send(msg, error, attempts).await;
            ctx.stats.dead_lettered.inc();
            Outcome::Done
        }
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
