//! Records taken from a partition's fetch queue in batches.
//!
//! rust-rdkafka's `PartitionQueue::poll` takes one record per call: each
//! call locks the queue, reads the clock and wraps the record in an event,
//! and `detach` then copies it. A [`BatchQueue`] is a second handle on the
//! same librdkafka queue that takes up to [`BATCH`] records with one
//! `rd_kafka_consume_batch_queue` call (one lock, no event per record) and
//! keeps each as librdkafka's own message ([`Fetched`], freed by whichever
//! thread drops it, without a copy). librdkafka
//! drops records of an outdated fetch (before a seek or a re-assignment)
//! inside the call, as it does for `poll`.

use std::ffi::{CStr, CString};
use std::ptr::NonNull;
use std::sync::Arc;

use rdkafka::bindings as rdsys;
use rdkafka::consumer::Consumer;
use rdkafka::types::{RDKafkaErrorCode, RDKafkaRespErr};

use crate::client_problem::ClientProblems;
use crate::fetched::{Alive, Fetched, Origin};
use crate::rebalance::Kafka;

/// Most records one `rd_kafka_consume_batch_queue` call takes.
pub(crate) const BATCH: usize = 256;

/// A handle on one partition's fetch queue (its own reference, released
/// on drop).
pub(crate) struct BatchQueue {
    queue: NonNull<rdsys::rd_kafka_queue_t>,
    origin: Arc<Origin>,
}

// SAFETY: a librdkafka queue handle may be used from any thread; this one
// is used by the poll thread only.
unsafe impl Send for BatchQueue {}

impl Drop for BatchQueue {
    fn drop(&mut self) {
        // SAFETY: the handle is ours, released once.
        unsafe { rdsys::rd_kafka_queue_destroy(self.queue.as_ptr()) }
    }
}

impl BatchQueue {
    /// A handle on the fetch queue of `topic`/`partition`, if librdkafka
    /// knows the partition.
    pub fn of(kafka: &Kafka, topic: &str, partition: i32, alive: &Alive) -> Option<BatchQueue> {
        let name = CString::new(topic).ok()?;
        // SAFETY: the client outlives the call; a new reference is returned
        // (or NULL).
        let queue = unsafe {
            rdsys::rd_kafka_queue_get_partition(
                kafka.client().native_ptr(),
                name.as_ptr(),
                partition,
            )
        };
        NonNull::new(queue).map(|queue| BatchQueue {
            queue,
            origin: Origin::new(topic, alive),
        })
    }

    /// Take up to `budget` records (at most [`BATCH`]) into `batch`; an
    /// error in the queue goes to [`ClientProblems::consumer_error`]. Returns how many entries the queue gave (0: it is empty).
    pub fn take(
        &self,
        budget: usize,
        batch: &mut Vec<Fetched>,
        problems: &ClientProblems,
    ) -> usize {
        let mut taken = [std::ptr::null_mut::<rdsys::rd_kafka_message_t>(); BATCH];
        let size = budget.min(BATCH);
        if size == 0 {
            return 0;
        }
        // SAFETY: `taken` has room for `size` pointers; timeout 0 does not block.
        let got = unsafe {
            rdsys::rd_kafka_consume_batch_queue(self.queue.as_ptr(), 0, taken.as_mut_ptr(), size)
        };
        let got = usize::try_from(got).unwrap_or(0);
        for &m in &taken[..got] {
            let Some(msg) = NonNull::new(m) else { continue };
            // SAFETY: librdkafka returned `got` valid messages, each ours to
            // destroy once: a record is kept (and destroyed when dropped),
            // an error entry destroyed now.
            unsafe {
                if (*m).err == RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR {
                    batch.push(Fetched::native(msg, self.origin.clone()));
                } else {
                    let text = CStr::from_ptr(rdsys::rd_kafka_message_errstr(m)).to_string_lossy();
                    problems.consumer_error(Some(RDKafkaErrorCode::from((*m).err)), &text);
                    rdsys::rd_kafka_message_destroy(m);
                }
            }
        }
        got
    }
}
