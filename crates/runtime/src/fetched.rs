//! A fetched record as the runtime holds it, from the poll thread to the
//! worker that finishes it: librdkafka's own message, not a copy.
//!
//! Records taken from a partition's fetch queue in batches
//! (batch_queue.rs) stay librdkafka's messages: the key, value and headers
//! are read in place by the worker that decodes them, and the message is
//! freed (`rd_kafka_message_destroy`) by whichever thread drops it last,
//! usually that worker. The poll thread neither copies nor allocates per
//! record, and frees nothing a worker allocated. Records taken with a plain
//! `poll` (the consumer queue, before a partition's queue is split off) are
//! copied as before ([`Fetched::owned`]).
//!
//! librdkafka's messages are safe to read and free from any thread. A
//! message keeps its partition (and so the consumer) alive: librdkafka's
//! `rd_kafka_destroy` waits until every message is freed. So every record
//! carries its [`Origin`], whose [`Alive`] tally tells the shutdown when
//! the last record of the listener is gone: it frees the queued ones, waits
//! (within its deadline) for those of aborted jobs, and leaks the consumer
//! rather than hang if one is still held.

use std::ffi::CStr;
use std::ptr::NonNull;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use rdkafka::bindings as rdsys;
use rdkafka::message::{Header, Headers, Message, OwnedHeaders, OwnedMessage, Timestamp};
use rdkafka::types::RDKafkaRespErr;

/// The tally of a listener's records that are librdkafka's messages: each
/// [`Origin`] holds a token, and every record holds its origin.
#[derive(Debug, Default)]
pub(crate) struct Alive(Arc<()>);

impl Alive {
    /// Wait until no record and no origin is left, at most until `until`.
    /// True when none is.
    pub fn wait_gone(&self, until: Instant) -> bool {
        while Arc::strong_count(&self.0) > 1 {
            if Instant::now() >= until {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        true
    }

    /// Records (or fetch queues) alive now, for the log.
    pub fn count(&self) -> usize {
        Arc::strong_count(&self.0) - 1
    }
}

/// What the records of one fetch queue share: the topic's name, and a token
/// of the listener's [`Alive`] tally.
#[derive(Debug)]
pub(crate) struct Origin {
    topic: Box<str>,
    _alive: Arc<()>,
}

impl Origin {
    pub fn new(topic: &str, alive: &Alive) -> Arc<Origin> {
        Arc::new(Origin {
            topic: topic.into(),
            _alive: alive.0.clone(),
        })
    }
}

/// One fetched record.
pub(crate) struct Fetched(Inner);

enum Inner {
    /// librdkafka's message, freed on drop.
    Native {
        msg: NonNull<rdsys::rd_kafka_message_t>,
        origin: Arc<Origin>,
        /// librdkafka parses a message's headers on first use and keeps
        /// them; that first parse happens once, here, whichever thread
        /// asks first.
        headers_parsed: OnceLock<()>,
    },
    /// A copy.
    Owned(OwnedMessage),
}

// SAFETY: a consumed librdkafka message is immutable and may be read and
// destroyed from any thread; `Fetched` frees it once, on drop.
unsafe impl Send for Fetched {}
// SAFETY: as above: `&Fetched` only reads, apart from librdkafka's parse of
// the headers on first use, which `headers_parsed` makes happen once.
unsafe impl Sync for Fetched {}

impl Drop for Fetched {
    fn drop(&mut self) {
        if let Inner::Native { msg, .. } = &self.0 {
            // SAFETY: the message is ours and freed once, here.
            unsafe { rdsys::rd_kafka_message_destroy(msg.as_ptr()) }
        }
    }
}

impl std::fmt::Debug for Fetched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fetched")
            .field("topic", &self.topic())
            .field("partition", &self.partition())
            .field("offset", &self.offset())
            .finish()
    }
}

impl Fetched {
    /// librdkafka's message `msg` from `origin`, to be freed when dropped.
    ///
    /// # Safety
    /// `msg` is a valid consumed message without error, not destroyed and
    /// not used by anyone else afterwards.
    pub unsafe fn native(msg: NonNull<rdsys::rd_kafka_message_t>, origin: Arc<Origin>) -> Fetched {
        debug_assert_eq!(msg.as_ref().err, RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR);
        Fetched(Inner::Native {
            msg,
            origin,
            headers_parsed: OnceLock::new(),
        })
    }

    /// A copied message.
    pub fn owned(msg: OwnedMessage) -> Fetched {
        Fetched(Inner::Owned(msg))
    }

    /// A copy that does not hold librdkafka's message (nor the fetch
    /// response it came in); the message is freed now.
    pub fn detached(self) -> Fetched {
        if let Inner::Owned(_) = &self.0 {
            return self;
        }
        let mut headers = OwnedHeaders::new();
        for (name, value) in self.headers() {
            headers = headers.insert(Header {
                key: &name,
                value: value.as_deref(),
            });
        }
        let has_headers = headers.count() > 0;
        Fetched::owned(OwnedMessage::new(
            self.payload().map(<[u8]>::to_vec),
            self.key().map(<[u8]>::to_vec),
            self.topic().to_string(),
            self.timestamp(),
            self.partition(),
            self.offset(),
            has_headers.then_some(headers),
        ))
    }

    fn raw(&self) -> Option<&rdsys::rd_kafka_message_t> {
        match &self.0 {
            // SAFETY: valid until drop (see `native`).
            Inner::Native { msg, .. } => Some(unsafe { msg.as_ref() }),
            Inner::Owned(_) => None,
        }
    }

    pub fn topic(&self) -> &str {
        match &self.0 {
            Inner::Native { origin, .. } => &origin.topic,
            Inner::Owned(m) => m.topic(),
        }
    }

    pub fn partition(&self) -> i32 {
        match &self.0 {
            Inner::Native { .. } => self.raw().map_or(-1, |m| m.partition),
            Inner::Owned(m) => m.partition(),
        }
    }

    pub fn offset(&self) -> i64 {
        match &self.0 {
            Inner::Native { .. } => self.raw().map_or(-1, |m| m.offset),
            Inner::Owned(m) => m.offset(),
        }
    }

    pub fn key(&self) -> Option<&[u8]> {
        match (&self.0, self.raw()) {
            // SAFETY: librdkafka's key bytes live as long as the message.
            (Inner::Native { .. }, Some(m)) => unsafe { bytes(m.key, m.key_len) },
            (Inner::Owned(m), _) => m.key(),
            _ => None,
        }
    }

    pub fn payload(&self) -> Option<&[u8]> {
        match (&self.0, self.raw()) {
            // SAFETY: librdkafka's payload lives as long as the message.
            (Inner::Native { .. }, Some(m)) => unsafe { bytes(m.payload, m.len) },
            (Inner::Owned(m), _) => m.payload(),
            _ => None,
        }
    }

    pub fn timestamp(&self) -> Timestamp {
        match &self.0 {
            Inner::Native { msg, .. } => {
                let mut kind = rdsys::rd_kafka_timestamp_type_t::RD_KAFKA_TIMESTAMP_NOT_AVAILABLE;
                // SAFETY: a valid message; `kind` is an out-parameter.
                let ts = unsafe { rdsys::rd_kafka_message_timestamp(msg.as_ptr(), &mut kind) };
                match kind {
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
                }
            }
            Inner::Owned(m) => m.timestamp(),
        }
    }

    /// The headers as owned (name, value) pairs, in order.
    pub fn headers(&self) -> Vec<(String, Option<Vec<u8>>)> {
        match &self.0 {
            Inner::Native {
                msg,
                headers_parsed,
                ..
            } => {
                // SAFETY: a valid message; the first call parses (once).
                headers_parsed.get_or_init(|| unsafe {
                    let mut hdrs = std::ptr::null_mut();
                    rdsys::rd_kafka_message_headers(msg.as_ptr(), &mut hdrs);
                });
                // SAFETY: parsed already: this only reads.
                unsafe { native_headers(msg.as_ptr()) }
            }
            Inner::Owned(m) => m
                .headers()
                .map(|hs| {
                    hs.iter()
                        .map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec)))
                        .collect()
                })
                .unwrap_or_default(),
        }
    }
}

/// # Safety
/// `p` is null or points at `len` bytes that outlive the returned slice.
unsafe fn bytes<'a>(p: *mut std::ffi::c_void, len: usize) -> Option<&'a [u8]> {
    (!p.is_null()).then(|| std::slice::from_raw_parts(p as *const u8, len))
}

/// # Safety
/// `m` is a valid message not destroyed yet.
unsafe fn native_headers(m: *mut rdsys::rd_kafka_message_t) -> Vec<(String, Option<Vec<u8>>)> {
    let mut hdrs = std::ptr::null_mut();
    if rdsys::rd_kafka_message_headers(m, &mut hdrs) != RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR
        || hdrs.is_null()
    {
        return Vec::new();
    }
    let count = rdsys::rd_kafka_header_cnt(hdrs);
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let (mut name, mut value, mut len) = (std::ptr::null(), std::ptr::null(), 0usize);
        if rdsys::rd_kafka_header_get_all(hdrs, i, &mut name, &mut value, &mut len)
            != RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR
        {
            break;
        }
        let name = CStr::from_ptr(name).to_string_lossy().into_owned();
        let value = bytes(value as *mut std::ffi::c_void, len).map(<[u8]>::to_vec);
        out.push((name, value));
    }
    out
}
