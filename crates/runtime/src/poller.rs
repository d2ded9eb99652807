//! The poll thread: the only thread that touches the Kafka consumer.
//!
//! Each turn it handles events (worker reports, commands), dispatches waiting
//! records to workers, commits by policy, then takes what librdkafka has
//! (without blocking) and hands it to the coordinator. When there is nothing
//! to do it sleeps on the event channel, which is woken by workers, by
//! commands and by librdkafka's "queue non-empty" callback, and at least every
//! [`TICK`] so that `poll` is called often enough for `max.poll.interval.ms`
//! however slow the handlers are (they run on other threads) and however long
//! partitions stay paused.
//!
//! Shutdown ([`crate::shutdown`]) also runs on this thread.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use rdkafka::consumer::Consumer;
use rdkafka::{Offset, TopicPartitionList};

use crate::event::{Command, Event};
use crate::fetch_queues::{take_one, FetchQueues};
use crate::metadata_watcher::{MetadataSource, MetadataWatcher};
use crate::rebalance::Kafka;

/// Longest wait between two polls when nothing wakes the thread. Records,
/// worker reports, commands and librdkafka's own events (rebalances, commit
/// results) all wake it, so this only bounds how late time-driven work runs
/// (pause and revoke deadlines, the commit interval, the metadata watcher).
/// It was 1 ms: an idle listener woke a thousand times a second, each wake
/// a spin and a few yields of the channel before it parked again.
pub const TICK: Duration = Duration::from_millis(10);

/// What the poll thread needs besides the consumer.
pub(crate) struct Poller {
    pub kafka: Arc<Kafka>,
    pub queues: FetchQueues,
    pub events: Receiver<Event>,
    pub wake: Arc<AtomicBool>,
    pub max_poll_records: usize,
    /// Standalone listeners that follow partitions added later: the watcher,
    /// its interval, and a source other than the broker, if one was given.
    pub watcher: Option<Watch>,
}

/// The metadata watcher of a standalone listener, its interval, and its
/// source when it is not the broker.
pub(crate) type Watch = (MetadataWatcher, Duration, Option<Arc<dyn MetadataSource>>);

/// Partition counts read from the broker's metadata.
pub(crate) struct BrokerMetadata<'a>(pub &'a Kafka, pub Duration);

impl MetadataSource for BrokerMetadata<'_> {
    fn partition_count(&self, topic: &str) -> Option<i32> {
        let md = self.0.fetch_metadata(Some(topic), self.1).ok()?;
        let t = md.topics().iter().find(|t| t.name() == topic)?;
        (t.error().is_none()).then(|| t.partitions().len() as i32)
    }
}

impl Poller {
    /// Run until shutdown is requested (or every handle is gone).
    pub fn run(mut self) {
        let mut pending: Option<Event> = None;
        let mut last_watch = Instant::now();
        loop {
            self.kafka.context().lock().stats.poll_clock.tick();
            let shutdown = {
                let mut c = self.kafka.context().lock();
                let mut shutdown = None;
                let deferred: Vec<Command> = std::mem::take(&mut c.deferred);
                let incoming = pending
                    .take()
                    .into_iter()
                    .chain(deferred.into_iter().map(Event::Command));
                for ev in incoming.chain(self.events.try_iter()) {
                    match ev {
                        Event::Command(Command::Shutdown(d, tx)) => shutdown = Some((d, tx)),
                        ev => c.on_event(&self.kafka, ev),
                    }
                }
                if shutdown.is_none() {
                    c.enforce_pause_deadlines(&self.kafka);
                    c.dispatch(&self.kafka);
                    c.maybe_commit(&self.kafka);
                }
                shutdown
            };
            if let Some((deadline, reply)) = shutdown {
                self.queues.clear();
                let report =
                    crate::shutdown::run(self.kafka, &self.events, deadline, self.queues.alive());
                let _ = reply.send(report);
                return;
            }
            if let Some((watcher, every, source)) = &mut self.watcher {
                if last_watch.elapsed() >= *every {
                    last_watch = Instant::now();
                    let broker = BrokerMetadata(&self.kafka, Duration::from_secs(2));
                    let new = watcher.poll(source.as_deref().unwrap_or(&broker));
                    if !new.is_empty() {
                        assign_new(&self.kafka, &new);
                    }
                }
            }
            self.wake.store(false, Ordering::SeqCst);
            let batch = self.take_records();
            let got = !batch.is_empty();
            if got {
                let mut c = self.kafka.context().lock();
                c.ingest(&self.kafka, batch);
                c.dispatch(&self.kafka);
            }
            if !got && !self.wake.load(Ordering::SeqCst) {
                match self.events.recv_timeout(TICK) {
                    Ok(ev) => pending = Some(ev),
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => return,
                }
            }
        }
    }
}

impl Poller {
    /// Records from the consumer queue, then (when it is empty) from the
    /// partitions' own fetch queues, at most `max_poll_records` in all.
    fn take_records(&mut self) -> Vec<crate::fetched::Fetched> {
        let max = self.max_poll_records;
        let mut batch = Vec::new();
        let mut misses = 0;
        while batch.len() < max && misses < 2 {
            let problems = &self.kafka.context().problems;
            if !take_one(self.kafka.poll(Duration::ZERO), &mut batch, problems) {
                misses += 1;
            }
        }
        if batch.len() >= max {
            return batch; // the consumer queue may hold older records still
        }
        let (epoch, assigned) = {
            let c = self.kafka.context().lock();
            let epoch = c.assignment_epoch;
            (
                epoch,
                (epoch != self.queues.epoch()).then(|| c.assignment()),
            )
        };
        if let Some(assigned) = assigned {
            // split now: records fetched before are in the consumer queue,
            // taken in a later turn before any of this queue's
            let split = self.queues.sync(&self.kafka, epoch, &assigned);
            self.kafka.context().lock().set_own_queues(&split);
            return batch;
        }
        let wants = self.kafka.context().lock().taking_slots();
        if !wants.is_empty() {
            let problems = self.kafka.context().problems.clone();
            batch.extend(
                self.queues
                    .take(max - batch.len(), |s| wants.contains(&s), &problems),
            );
        }
        batch
    }
}

/// Assign partitions found by the metadata watcher, from the beginning (a
/// partition created after start holds only records nobody has seen).
fn assign_new(kafka: &Kafka, new: &[(String, i32)]) {
    let mut tpl = TopicPartitionList::new();
    for (t, p) in new {
        let _ = tpl.add_partition_offset(t, *p, Offset::Beginning);
    }
    match kafka.incremental_assign(&tpl) {
        Ok(()) => {
            tracing::info!(partitions = ?new, "new partitions assigned by the metadata watcher");
            kafka.context().lock().on_assign(kafka, new);
        }
        Err(e) => tracing::warn!(error = %e, "cannot assign new partitions"),
    }
}
