//! End-to-end tests of the testkit against a real broker (Apache Kafka, or nisshi).
//!
//! They need the broker installed (see `switchyard_testkit::broker`); all but `own_broker_stops_and_restarts` share
//! the broker of the test binary and isolate themselves with their own topics and groups.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::Message;
use switchyard_testkit::{
    client_config, committed_offsets, create_topic, end_offsets, group_members, new_topic,
    unique_name, wait_for, wait_until, Broker, BrokerKind, LogWriter, ProcessedLog, SeqProducer,
    SteadyProducer,
};

fn total(offsets: &BTreeMap<i32, i64>) -> i64 {
    offsets.values().sum()
}

#[test]
fn shared_broker_starts_and_answers_metadata() {
    let broker = Broker::shared();
    assert_eq!(broker.bootstrap(), format!("127.0.0.1:{}", broker.port()));
    let consumer: BaseConsumer = client_config(&broker.bootstrap()).create().unwrap();
    let metadata = consumer
        .fetch_metadata(None, Duration::from_secs(10))
        .expect("metadata");
    assert_eq!(metadata.brokers().len(), 1);
    assert_eq!(metadata.brokers()[0].port(), i32::from(broker.port()));
    assert!(
        std::ptr::eq(broker, Broker::shared()),
        "one shared broker per test binary"
    );
}

#[test]
fn created_topic_has_partitions_and_empty_end_offsets() {
    let broker = Broker::shared();
    let topic = unique_name("created");
    create_topic(&broker.bootstrap(), &topic, 3);
    assert_eq!(
        end_offsets(&broker.bootstrap(), &topic),
        BTreeMap::from([(0, 0), (1, 0), (2, 0)])
    );
    // Creating it again is accepted.
    create_topic(&broker.bootstrap(), &topic, 3);
}

#[test]
fn seq_producer_sends_numbered_records() {
    let broker = Broker::shared();
    let topic = new_topic(broker, "seq", 3);
    let mut producer = SeqProducer::new(&broker.bootstrap());
    assert_eq!(
        producer.send(&topic, None, 30, |seq| format!("k{}", seq % 7)),
        0..30
    );
    let ends = end_offsets(&broker.bootstrap(), &topic);
    assert_eq!(total(&ends), 30, "{ends:?}");

    assert_eq!(producer.send(&topic, Some(1), 5, |_| "one".into()), 30..35);
    let after = end_offsets(&broker.bootstrap(), &topic);
    assert_eq!(after[&1], ends[&1] + 5);
    assert_eq!(total(&after), 35);

    let (partition, offset) = producer.send_raw(
        &topic,
        Some(2),
        Some(b"raw"),
        b"payload",
        Some(1_700_000_000_000),
    );
    assert_eq!((partition, offset), (2, after[&2]));
    let (_, offset) = producer.send_raw(&topic, Some(2), None, b"no key", None);
    assert_eq!(offset, after[&2] + 1);
}

#[test]
fn unknown_group_has_no_commits_and_no_members() {
    let broker = Broker::shared();
    let topic = new_topic(broker, "nocommit", 3);
    let group = unique_name("nobody");
    assert_eq!(
        committed_offsets(&broker.bootstrap(), &group, &topic),
        BTreeMap::from([(0, -1), (1, -1), (2, -1)])
    );
    let (members, state) = group_members(&broker.bootstrap(), &group);
    assert_eq!(members, 0, "state {state}");
}

/// A real consumer in a group: consumes everything, writes the processed log, commits; the testkit's views of the
/// group (members, committed offsets) and the log checks agree with what it did.
#[test]
fn consumer_group_commit_is_visible_and_log_checks_pass() {
    let broker = Broker::shared();
    let bootstrap = broker.bootstrap();
    let topic = new_topic(broker, "grouped", 2);
    let group = unique_name("grp");
    let mut producer = SeqProducer::new(&bootstrap);
    producer.send(&topic, Some(0), 25, |seq| format!("k{}", seq % 4));
    producer.send(&topic, Some(1), 15, |seq| format!("k{}", seq % 4));
    let end = end_offsets(&bootstrap, &topic);

    let consumer: BaseConsumer = client_config(&bootstrap)
        .set("group.id", &group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .create()
        .unwrap();
    consumer.subscribe(&[&topic]).unwrap();
    let log_path = std::env::temp_dir().join(format!("{}.log", unique_name("processed")));
    let mut log = LogWriter::open(&log_path).unwrap();
    let mut processed = 0;
    wait_until(
        "consumer processed all 40 records",
        Duration::from_secs(30),
        || {
            if let Some(message) = consumer.poll(Duration::from_millis(100)) {
                let message = message.expect("consume");
                let key = String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned();
                let value =
                    String::from_utf8_lossy(message.payload().unwrap_or_default()).into_owned();
                log.record(
                    "c1",
                    message.topic(),
                    message.partition(),
                    message.offset(),
                    &key,
                    &value,
                )
                .unwrap();
                processed += 1;
            }
            processed == 40
        },
    );
    let (members, state) = wait_for(
        "group listed with one member",
        Duration::from_secs(10),
        || {
            let (members, state) = group_members(&bootstrap, &group);
            (members == 1).then_some((members, state))
        },
    );
    assert_eq!((members, state.as_str()), (1, "Stable"));
    consumer
        .commit_consumer_state(CommitMode::Sync)
        .expect("commit");
    assert_eq!(committed_offsets(&bootstrap, &group, &topic), end);

    let processed = ProcessedLog::read(&log_path);
    assert_eq!(processed.count(&topic), 40);
    processed
        .check_no_gaps(&topic, &BTreeMap::new(), &end)
        .unwrap();
    assert!(processed.duplicates(&topic).is_empty());
    processed.check_key_order(&topic).unwrap();
    drop(consumer);
    let state = wait_for(
        "group empty after the consumer left",
        Duration::from_secs(10),
        || {
            let (members, state) = group_members(&bootstrap, &group);
            (members == 0).then_some(state)
        },
    );
    assert_eq!(state, "Empty");
    assert_eq!(
        committed_offsets(&bootstrap, &group, &topic),
        end,
        "commits outlive the member"
    );
    std::fs::remove_file(&log_path).unwrap();
}

#[test]
fn steady_producer_produces_until_stopped() {
    let broker = Broker::shared();
    let topic = new_topic(broker, "steady", 3);
    let producer = SteadyProducer::start(&broker.bootstrap(), &topic, 3, 500);
    wait_until(
        "steady producer sent 100 records",
        Duration::from_secs(20),
        || producer.sent() >= 100,
    );
    let sent = producer.stop();
    assert!(sent >= 100, "sent {sent}");
    let ends = end_offsets(&broker.bootstrap(), &topic);
    assert_eq!(total(&ends) as u64, sent, "{ends:?}");
    // Round robin: partition sizes differ by at most one.
    let (min, max) = (ends.values().min().unwrap(), ends.values().max().unwrap());
    assert!(max - min <= 1, "{ends:?}");
}

#[test]
fn own_broker_stops_and_restarts() {
    let broker = Broker::start();
    assert_ne!(broker.port(), Broker::shared().port());
    let topic = new_topic(&broker, "own", 1);
    SeqProducer::new(&broker.bootstrap()).send(&topic, Some(0), 3, |_| "k".into());
    assert_eq!(end_offsets(&broker.bootstrap(), &topic)[&0], 3);
    let pid = broker.pid().expect("running");
    broker.stop();
    assert!(broker.pid().is_none());
    broker.restart();
    assert_ne!(broker.pid(), Some(pid));
    // Kafka keeps its log across a restart; nisshi's in-memory storage starts empty. Both serve on the same port.
    let again = new_topic(&broker, "own-again", 1);
    assert_eq!(end_offsets(&broker.bootstrap(), &again)[&0], 0);
    if broker.kind() == BrokerKind::Kafka {
        assert_eq!(end_offsets(&broker.bootstrap(), &topic)[&0], 3);
    }
}
