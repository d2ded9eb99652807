//! The Kafka clients of the control plane, as its stores, publishers and
//! tails make them: the base configuration ([`client`]: the connection's
//! properties, then short timeouts and backoffs), a [`reader`] of a
//! single-partition topic outside any group (committed records only), a
//! [`producer`] that sends at once and [`deliver`] that waits for it, the
//! control topic's fenced [`transactional_producer`], and [`read_to_end`]
//! for one-off reads. The topics themselves are made and checked in
//! `compacted_topic.rs`.
//!
//! ```no_run
//! use std::time::Duration;
//! use switchyard_control::kafka_clients::{reader, CONTROL_FETCH_WAIT};
//!
//! let tail = reader("127.0.0.1:9092", "switchyard.control", CONTROL_FETCH_WAIT)?;
//! let next = tail.poll(Duration::from_millis(100));
//! # Ok::<(), switchyard_control::error::ControlError>(())
//! ```

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, Producer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use switchyard_config::Connection;

use crate::error::{ControlError, Result};

/// The group id readers set because librdkafka requires one; never joined.
pub const READER_GROUP: &str = "switchyard-control-reader";

/// How long one blocking Kafka request may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// `transaction.timeout.ms` of writers: a writer that dies mid-transaction
/// holds readers back (the last stable offset) at most this long, plus the
/// broker's `transaction.abort.timed.out.transaction.cleanup.interval.ms`,
/// unless the next writer of its application fences it sooner.
pub const TRANSACTION_TIMEOUT: Duration = Duration::from_secs(10);

/// Base client configuration: every property of `connection` (bootstrap
/// servers, security), then the store's timeouts and backoffs where the
/// connection does not set them.
pub fn client(connection: &Connection) -> ClientConfig {
    let mut c = connection.client_config();
    for (key, value) in [
        ("socket.timeout.ms", "10000"),
        ("reconnect.backoff.ms", "20"),
        ("reconnect.backoff.max.ms", "500"),
    ] {
        if connection.get(key).is_none() {
            c.set(key, value);
        }
    }
    c
}

/// How long the broker may hold a fetch of the control topic's tail that
/// finds no new record. Apache Kafka answers a waiting fetch as soon as a
/// record is committed, so this costs no latency there and keeps an idle
/// reader at two requests a second (at 10 ms, a hundred per instance). A
/// broker that holds an empty fetch for all of it (librdkafka's mock
/// cluster) delivers a change up to this late.
pub const CONTROL_FETCH_WAIT: Duration = Duration::from_millis(500);

/// [`CONTROL_FETCH_WAIT`] of the status topic's readers: that topic is busy
/// (every instance's heartbeats), and the age of a status read late must not
/// pass for a gone instance on a broker that holds empty fetches.
pub const STATUS_FETCH_WAIT: Duration = Duration::from_millis(100);

/// A reader of partition 0 of `topic` from the beginning, outside any
/// group, of committed records only, whose fetches the broker holds up to
/// `fetch_wait` when there is nothing new.
pub fn reader(
    connection: impl Into<Connection>,
    topic: &str,
    fetch_wait: Duration,
) -> Result<BaseConsumer> {
    let c: BaseConsumer = client(&connection.into())
        .set("group.id", READER_GROUP)
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("fetch.wait.max.ms", fetch_wait.as_millis().to_string())
        .set("fetch.error.backoff.ms", "10")
        .create()?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)?;
    c.assign(&tpl)?;
    Ok(c)
}

/// A producer that sends at once.
pub fn producer(connection: impl Into<Connection>) -> Result<BaseProducer> {
    Ok(client(&connection.into())
        .set("linger.ms", "0")
        .set("message.timeout.ms", "10000")
        .create()?)
}

/// The `transactional.id` of the writers of `app` on the control `topic`.
pub fn transactional_id(topic: &str, app: &str) -> String {
    format!("switchyard-control.{topic}.{app}")
}

/// A transactional producer of the writers of `app` on `topic`, initialised:
/// every earlier producer of the same id is fenced, its open transaction
/// aborted.
pub fn transactional_producer(
    connection: impl Into<Connection>,
    topic: &str,
    app: &str,
) -> Result<BaseProducer> {
    let p: BaseProducer = client(&connection.into())
        .set("transactional.id", transactional_id(topic, app))
        .set(
            "transaction.timeout.ms",
            TRANSACTION_TIMEOUT.as_millis().to_string(),
        )
        .set("linger.ms", "0")
        .create()?;
    // A broker connection up before `init_transactions`: when none is up
    // yet (the bootstrap connection is dropped once the brokers are
    // learned), librdkafka looks the transaction coordinator up only on its
    // 500 ms retry timer, which held about a third of the writes 500 ms on
    // Apache Kafka. The first Metadata request goes through the bootstrap
    // connection, the second through a learned broker, which stays up.
    for _ in 0..2 {
        p.client().fetch_metadata(Some(topic), REQUEST_TIMEOUT)?;
    }
    p.init_transactions(2 * REQUEST_TIMEOUT)?;
    Ok(p)
}

/// The application position of `c` on partition 0 of `topic`: past the last
/// record returned and past transaction markers (which are not returned).
pub(crate) fn position(c: &BaseConsumer, topic: &str) -> Option<i64> {
    let tpl = c.position().ok()?;
    match tpl.find_partition(topic, 0)?.offset() {
        Offset::Offset(n) => Some(n),
        _ => None,
    }
}

/// Wait until every message `p` sent is delivered (`flush` of rdkafka
/// polls in 100 ms steps; this looks every 1 ms). rdkafka's
/// `BaseProducer::poll` waits whole milliseconds of what is left of its
/// timeout and spins on the fraction, so a `poll` of 1 ms is 1 ms of
/// spinning: it serves the delivery reports without waiting, and the thread
/// sleeps in between.
pub fn deliver(p: &BaseProducer) -> Result<()> {
    let deadline = Instant::now() + REQUEST_TIMEOUT;
    loop {
        p.poll(Duration::ZERO);
        if p.in_flight_count() == 0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(ControlError::Timeout("message delivery".into()));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Read the committed records of partition 0 of `topic` from the
/// beginning to its end (the last stable offset as of the call), giving each
/// record (key, payload) to `f`.
pub fn read_to_end(
    connection: impl Into<Connection>,
    topic: &str,
    mut f: impl FnMut(Option<&[u8]>, Option<&[u8]>),
) -> Result<BaseConsumer> {
    let c = reader(connection, topic, CONTROL_FETCH_WAIT)?;
    let (_, high) = c.fetch_watermarks(topic, 0, REQUEST_TIMEOUT)?;
    let deadline = Instant::now() + REQUEST_TIMEOUT;
    let mut next = 0;
    while next < high {
        if Instant::now() > deadline {
            return Err(ControlError::Timeout(format!(
                "reading `{topic}` to offset {high}"
            )));
        }
        match c.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                next = next.max(m.offset() + 1);
                f(m.key(), m.payload());
            }
            Some(Err(e)) => tracing::debug!(topic, error = %e, "control read"),
            None => {
                // compaction may leave the first offset above 0
                if let Ok((low, _)) = c.fetch_watermarks(topic, 0, REQUEST_TIMEOUT) {
                    next = next.max(low);
                }
            }
        }
        // transaction markers move the position without a record
        next = next.max(position(&c, topic).unwrap_or(0));
    }
    Ok(c)
}
