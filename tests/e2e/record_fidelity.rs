//! Every record reaches its handler once and exactly as it was produced:
//! key (or none), value (or none, or empty), headers in order (also with a
//! null value), create time, partition and offset; and the group's
//! committed offsets stand at the log end once they are processed. The
//! records travel the runtime's batch path (each partition's fetch queue
//! read with `rd_kafka_consume_batch_queue` and copied out of librdkafka),
//! in key order with a pool of workers.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use switchyard_runtime::deserializer::Bytes;
use switchyard_runtime::record::Record;
use switchyard_runtime::{Listener, Ordering};

use switchyard_testkit::produce::producer_config;

use super::common::*;

const PARTITIONS: i32 = 3;
const COUNT: usize = 3000;
/// Create times start here (2026-11-30), one millisecond per record.
const T0: i64 = 1_764_460_800_000;

/// A record as the handler saw it.
type Seen = Record<Vec<u8>, Vec<u8>>;

/// What record `i` carries, as the handler must see it.
#[derive(Debug, Clone, PartialEq)]
struct Sent {
    partition: i32,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<(String, Option<Vec<u8>>)>,
    timestamp_ms: i64,
}

fn sent(i: usize) -> Sent {
    let key = (!i.is_multiple_of(7)).then(|| format!("key-{}", i % 50).into_bytes());
    let value = match i % 11 {
        0 => None,             // a tombstone
        1 => Some(Vec::new()), // an empty value
        _ => Some(format!("value-{i}-{}", "x".repeat(i % 300)).into_bytes()),
    };
    let headers = (0..i % 4)
        .map(|h| {
            let value = (h != 1).then(|| format!("h{h}-of-{i}").into_bytes());
            (format!("name-{h}"), value)
        })
        .collect();
    Sent {
        partition: (i % PARTITIONS as usize) as i32,
        key,
        value,
        headers,
        timestamp_ms: T0 + i as i64,
    }
}

/// The identity of a record, recovered from what the handler saw: its
/// create time.
fn index_of(timestamp_ms: i64) -> usize {
    (timestamp_ms - T0) as usize
}

fn produce_all(topic: &str) {
    let producer: BaseProducer = producer_config(&bootstrap()).create().unwrap();
    for i in 0..COUNT {
        let s = sent(i);
        let mut headers = OwnedHeaders::new();
        for (name, value) in &s.headers {
            headers = headers.insert(Header {
                key: name,
                value: value.as_deref(),
            });
        }
        let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(topic)
            .partition(s.partition)
            .timestamp(s.timestamp_ms)
            .headers(headers);
        if let Some(k) = &s.key {
            record = record.key(k);
        }
        if let Some(v) = &s.value {
            record = record.payload(v);
        }
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, r)) => {
                    producer.poll(Duration::from_millis(10));
                    record = r;
                }
            }
        }
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(30)).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_record_reaches_its_handler_once_with_key_value_headers_and_time_intact() {
    let topic = new_topic(broker(), "fidelity", PARTITIONS);
    let group = unique_name("fidelity-g");
    let t = topic.clone();
    tokio::task::spawn_blocking(move || produce_all(&t))
        .await
        .unwrap();

    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let s2 = seen.clone();
    let listener = Listener::builder("fidelity")
        .config(config(&group))
        .topics([topic.clone()])
        .ordering(Ordering::Key)
        .workers(16)
        .handler(Bytes, Bytes, move |r: Record<Vec<u8>, Vec<u8>>| {
            let seen = s2.clone();
            async move {
                seen.lock().unwrap().push(r);
                Ok(())
            }
        })
        .start()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.lock().unwrap().len() < COUNT {
        assert!(
            Instant::now() < deadline,
            "{} of {COUNT} records within 60 s",
            seen.lock().unwrap().len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let report = listener.shutdown_within(Duration::from_secs(10)).await;
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), COUNT, "no record twice");

    let mut offsets: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
    let mut last_of_key: BTreeMap<(i32, Vec<u8>), i64> = BTreeMap::new();
    for r in &seen {
        assert_eq!(r.topic, topic);
        let ts = r.timestamp_ms.expect("a create time");
        let want = sent(index_of(ts));
        // the Bytes deserializer reads a null key as None and a null value as empty
        let got = Sent {
            partition: r.partition,
            key: r.key.clone(),
            value: want.value.as_ref().map(|_| r.value.clone()),
            headers: r.headers.clone(),
            timestamp_ms: ts,
        };
        assert_eq!(got, want, "record at {}:{}", r.partition, r.offset);
        if want.value.is_none() {
            assert!(r.value.is_empty(), "a tombstone has no value");
        }
        if let Some(k) = &want.key {
            let before = last_of_key.insert((r.partition, k.clone()), r.offset);
            assert!(
                before.is_none_or(|b| b < r.offset),
                "key order kept in partition {}",
                r.partition
            );
        }
        offsets.entry(r.partition).or_default().push(r.offset);
    }
    for (p, mut o) in offsets {
        o.sort_unstable();
        let n = o.len() as i64;
        assert_eq!(
            o,
            (0..n).collect::<Vec<_>>(),
            "partition {p}: every offset once"
        );
    }
    let committed = tokio::task::block_in_place(|| committed_offsets(&bootstrap(), &group, &topic));
    let expected: BTreeMap<i32, i64> = (0..PARTITIONS)
        .map(|p| {
            (
                p,
                (COUNT as i64 + (PARTITIONS - 1 - p) as i64) / PARTITIONS as i64,
            )
        })
        .collect();
    assert_eq!(committed, expected, "committed at the log end: {report:?}");
}
