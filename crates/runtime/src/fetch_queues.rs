//! Fetch queues: one librdkafka queue per assigned partition, so that
//! backpressure can stop *taking* a partition's records instead of pausing
//! its fetch.
//!
//! By default librdkafka forwards every partition's fetched records to the
//! consumer's one queue, and the only way to stop one partition is to pause
//! its fetch; a pause drops the records librdkafka had prefetched (up to
//! `queued.min.messages`), which are fetched and decoded again on resume. A
//! busy pool hits its buffer bound again and again, and each time paid for a
//! second fetch of its prefetch. With the partition's queue split off the
//! consumer queue (`rd_kafka_queue_get_partition` + forward to none), the
//! poller simply does not take records of a backpressured partition;
//! librdkafka stops fetching it by itself once its queue holds
//! `queued.min.messages` records or `queued.max.messages.kbytes`, and nothing
//! is fetched twice. Pauses by the application or the control plane still
//! pause the fetch (see pause.rs).
//!
//! Ordering: records fetched before a partition's queue was split sit in the
//! consumer queue. The poller takes from the fetch queues only in a turn in
//! which it found the consumer queue empty, after the split, so a partition's
//! older records are always taken first.
//!
//! The queues live here, on the poll thread, and not in the coordinator: a
//! queue holds a reference to the consumer, whose context holds the
//! coordinator.

use std::sync::Arc;

use rdkafka::consumer::base_consumer::PartitionQueue;
use switchyard_config::Tp;

use crate::batch_queue::BatchQueue;
use crate::client_problem::ClientProblems;
use crate::fetched::{Alive, Fetched};
use crate::rebalance::{Kafka, RuntimeContext};

/// A callback that wakes the poll thread.
pub(crate) type Wake = Arc<dyn Fn() + Send + Sync>;

/// One split-off queue: rust-rdkafka's handle (which keeps the queue
/// forwarded to none and wakes the poll thread when it fills) and a second
/// handle that takes its records in batches.
struct Split {
    slot: u64,
    _queue: PartitionQueue<RuntimeContext>,
    batch: BatchQueue,
}

/// The split-off queues of the assigned partitions, by slot.
pub(crate) struct FetchQueues {
    queues: Vec<Split>,
    /// The coordinator's assignment epoch the queues match.
    epoch: u64,
    /// Round-robin start of the next [`FetchQueues::take`].
    next: usize,
    wake: Wake,
    /// The tally of records taken from these queues and not freed yet.
    alive: Alive,
}

impl FetchQueues {
    pub fn new(wake: Wake) -> Self {
        FetchQueues {
            queues: Vec::new(),
            epoch: 0,
            next: 0,
            wake,
            alive: Alive::default(),
        }
    }

    /// The assignment epoch the queues match.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Match the assignment: split the queues of partitions assigned since
    /// the last call and forget those of revoked ones. `assigned` is the
    /// coordinator's (slot, partition) list at `epoch`; returns the slots
    /// whose queue was split now.
    pub fn sync(&mut self, kafka: &Arc<Kafka>, epoch: u64, assigned: &[(u64, Tp)]) -> Vec<u64> {
        self.epoch = epoch;
        self.queues
            .retain(|q| assigned.iter().any(|(s, _)| *s == q.slot));
        let mut split = Vec::new();
        for (slot, (topic, partition)) in assigned {
            if self.queues.iter().any(|q| q.slot == *slot) {
                continue;
            }
            // the batch handle first: a queue split off without one would
            // never be read
            let handles = BatchQueue::of(kafka, topic, *partition, &self.alive)
                .and_then(|batch| Some((batch, kafka.split_partition_queue(topic, *partition)?)));
            let Some((batch, mut queue)) = handles else {
                tracing::debug!(%topic, partition, "no fetch queue: records come through the consumer queue");
                continue;
            };
            let wake = self.wake.clone();
            queue.set_nonempty_callback(move || wake());
            tracing::debug!(%topic, partition, slot, "fetch queue split off");
            self.queues.push(Split {
                slot: *slot,
                _queue: queue,
                batch,
            });
            split.push(*slot);
        }
        split
    }

    /// Take up to `budget` records from the queues of the slots `wants`
    /// accepts, round robin over partitions.
    pub fn take(
        &mut self,
        budget: usize,
        wants: impl Fn(u64) -> bool,
        problems: &ClientProblems,
    ) -> Vec<Fetched> {
        let mut batch = Vec::new();
        let n = self.queues.len();
        if n == 0 {
            return batch;
        }
        let start = self.next % n;
        self.next = self.next.wrapping_add(1);
        for i in 0..n {
            let q = &self.queues[(start + i) % n];
            if !wants(q.slot) {
                continue;
            }
            while batch.len() < budget
                && q.batch.take(budget - batch.len(), &mut batch, problems) > 0
            {}
            if batch.len() >= budget {
                break;
            }
        }
        batch
    }

    /// Forget every queue (before the consumer closes).
    pub fn clear(&mut self) {
        self.queues.clear();
    }

    /// The tally of records taken from these queues and alive.
    pub fn alive(&self) -> &Alive {
        &self.alive
    }
}

/// One poll's outcome into `batch` (an error goes to
/// [`ClientProblems::consumer_error`]); false when the queue was empty.
pub(crate) fn take_one(
    polled: Option<rdkafka::error::KafkaResult<rdkafka::message::BorrowedMessage<'_>>>,
    batch: &mut Vec<Fetched>,
    problems: &ClientProblems,
) -> bool {
    match polled {
        Some(Ok(m)) => batch.push(Fetched::owned(m.detach())),
        Some(Err(e)) => problems.consumer_error(e.rdkafka_error_code(), &e.to_string()),
        None => return false,
    }
    true
}
