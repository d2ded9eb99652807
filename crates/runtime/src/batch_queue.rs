//! Records taken from a partition's fetch queue in batches.
//!
//! rust-rdkafka's `PartitionQueue::poll` takes one record per call: each
//! call locks the queue, reads the clock and wraps the record in an event,
//! and `detach` then copies it. A [`BatchQueue`] is a second handle on the
//! same librdkafka queue that takes up to [`BATCH`] records with one
//! `rd_kafka_consume_batch_queue` call (one lock, no event per record) and
//! copies each into an `OwnedMessage` before librdkafka's message is freed,
//! so nothing borrowed from the consumer outlives the call. librdkafka
//! drops records of an outdated fetch (before a seek or a re-assignment)
//! inside the call, as it does for `poll`.

use std::ffi::{CStr, CString};
use std::ptr::NonNull;

use rdkafka::bindings as rdsys;
use rdkafka::consumer::Consumer;
use rdkafka::message::{Header, OwnedHeaders, OwnedMessage, Timestamp};
use rdkafka::types::{RDKafkaErrorCode, RDKafkaRespErr};

use crate::client_problem::ClientProblems;
use crate::rebalance::Kafka;

/// Most records one `rd_kafka_consume_batch_queue` call takes.
pub(crate) const BATCH: usize = 256;

/// A handle on one partition's fetch queue (its own reference, released
/// on drop).
pub(crate) struct BatchQueue {
    queue: NonNull<rdsys::rd_kafka_queue_t>,
    topic: String,
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
    pub fn of(kafka: &Kafka, topic: &str, partition: i32) -> Option<BatchQueue> {
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
            topic: topic.to_string(),
        })
    }

    /// Take up to `budget` records (at most [`BATCH`]) into `batch`; an
    /// error in the queue is logged, or recorded in `problems` when no retry
    /// fixes it. Returns how many entries the queue gave (0: it is empty).
    pub fn take(
        &self,
        budget: usize,
        batch: &mut Vec<OwnedMessage>,
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
            // SAFETY: librdkafka returned `got` valid messages, each ours to
            // destroy once; nothing of it is kept after the destroy.
            unsafe {
                if (*m).err == RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR {
                    batch.push(detach(m, &self.topic));
                } else {
                    report(m, problems);
                }
                rdsys::rd_kafka_message_destroy(m);
            }
        }
        got
    }
}

/// Copy a fetched message out of librdkafka.
///
/// # Safety
/// `m` is a valid message not destroyed yet.
unsafe fn detach(m: *mut rdsys::rd_kafka_message_t, topic: &str) -> OwnedMessage {
    let r = &*m;
    let bytes = |p: *mut std::ffi::c_void, len: usize| {
        (!p.is_null()).then(|| std::slice::from_raw_parts(p as *const u8, len).to_vec())
    };
    let mut kind = rdsys::rd_kafka_timestamp_type_t::RD_KAFKA_TIMESTAMP_NOT_AVAILABLE;
    let ts = rdsys::rd_kafka_message_timestamp(m, &mut kind);
    let timestamp = match kind {
        _ if ts == -1 => Timestamp::NotAvailable,
        rdsys::rd_kafka_timestamp_type_t::RD_KAFKA_TIMESTAMP_CREATE_TIME => {
            Timestamp::CreateTime(ts)
        }
        rdsys::rd_kafka_timestamp_type_t::RD_KAFKA_TIMESTAMP_LOG_APPEND_TIME => {
            Timestamp::LogAppendTime(ts)
        }
        rdsys::rd_kafka_timestamp_type_t::RD_KAFKA_TIMESTAMP_NOT_AVAILABLE => {
            Timestamp::NotAvailable
        }
    };
    OwnedMessage::new(
        bytes(r.payload, r.len),
        bytes(r.key, r.key_len),
        topic.to_string(),
        timestamp,
        r.partition,
        r.offset,
        headers(m),
    )
}

/// The message's headers, copied; `None` without headers.
///
/// # Safety
/// `m` is a valid message not destroyed yet.
unsafe fn headers(m: *mut rdsys::rd_kafka_message_t) -> Option<OwnedHeaders> {
    let mut native = std::ptr::null_mut();
    if rdsys::rd_kafka_message_headers(m, &mut native) != RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR
        || native.is_null()
    {
        return None;
    }
    let count = rdsys::rd_kafka_header_cnt(native);
    let mut out = OwnedHeaders::new_with_capacity(count);
    for i in 0..count {
        let (mut name, mut value, mut len) = (std::ptr::null(), std::ptr::null(), 0usize);
        if rdsys::rd_kafka_header_get_all(native, i, &mut name, &mut value, &mut len)
            != RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR
        {
            break;
        }
        let key = CStr::from_ptr(name).to_string_lossy();
        let value = (!value.is_null()).then(|| std::slice::from_raw_parts(value as *const u8, len));
        out = out.insert(Header { key: &key, value });
    }
    Some(out)
}

/// An error entry of the queue, as `take_one` reports those of `poll`.
///
/// # Safety
/// `m` is a valid message not destroyed yet.
unsafe fn report(m: *mut rdsys::rd_kafka_message_t, problems: &ClientProblems) {
    let code = RDKafkaErrorCode::from((*m).err);
    if code == RDKafkaErrorCode::PartitionEOF {
        return;
    }
    let text = CStr::from_ptr(rdsys::rd_kafka_message_errstr(m)).to_string_lossy();
    if !problems.report(Some(code), &text) {
        tracing::warn!(error = %text, ?code, "consumer error");
    }
}
