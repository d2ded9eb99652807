//! Every commit policy, each with a test of what it guarantees:
//! nothing unprocessed is ever committed (a stuck record holds its partition's
//! commit point below it under every policy), and everything processed ends
//! up committed. Plus the sequence guard against stale async failures, on the
//! mock cluster with injected commit errors.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use rdkafka::ClientConfig;
use switchyard_config::{CommitPolicy, ConsumerConfig, OffsetReset};
use switchyard_runtime::deserializer::Utf8;
use switchyard_runtime::record::Record;
use switchyard_runtime::Listener;

use super::common::*;

/// The first record of a job (jobs take up to 50 records).
const STUCK_AT: i64 = 100;

/// A stuck record at offset 100 of partition 0: the commit point of p0 must
/// stay at or below it while every other record is processed and committed.
async fn never_commits_unprocessed(policy: CommitPolicy) {
    commits_up_to_a_stuck_record(policy, STUCK_AT).await;
}

/// A stuck record at `stuck_at` of partition 0: the commit point of p0 must
/// reach it (what finished before it is committed, also inside the stuck
/// record's job) and stay there while every other record is processed and
/// committed.
async fn commits_up_to_a_stuck_record(policy: CommitPolicy, stuck_at: i64) {
    let b = bootstrap();
    let topic = new_topic(broker(), "policy", 2);
    let group = unique_name("policy-g");
    SeqProducer::new(&b).send(&topic, Some(0), 300, |s| s.to_string());
    SeqProducer::new(&b).send(&topic, Some(1), 300, |s| s.to_string());
    let release = Arc::new(AtomicBool::new(false));
    let r = release.clone();
    let mut cfg = config(&group);
    cfg.auto_commit_interval_ms = 100;
    let listener = Listener::builder("policy")
        .config(cfg.with_max_poll_records(50))
        .topics([topic.clone()])
        .commit(policy)
        .workers(2)
        .commit_interval(Duration::from_millis(50))
        .handler(Utf8, Utf8, move |rec: Record<String, String>| {
            let r = r.clone();
            async move {
                if rec.partition == 0 && rec.offset == stuck_at {
                    while !r.load(Ordering::SeqCst) {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }
                Ok(())
            }
        })
        .start()
        .unwrap();
    // p1 is fully committed while p0 is stuck
    eventually("p1 committed to its end", Duration::from_secs(20), || {
        committed_offsets(&b, &group, &topic).get(&1) == Some(&300)
    })
    .await;
    eventually(
        "p0 committed up to the stuck record",
        Duration::from_secs(20),
        || committed_offsets(&b, &group, &topic).get(&0) == Some(&stuck_at),
    )
    .await;
    let watch_until = Instant::now() + Duration::from_millis(800);
    while Instant::now() < watch_until {
        let c = committed_offsets(&b, &group, &topic)[&0];
        assert!(
            c <= stuck_at,
            "{policy:?} committed {c} while offset {stuck_at} was still in its handler"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    release.store(true, Ordering::SeqCst);
    eventually("p0 committed to its end", Duration::from_secs(20), || {
        committed_offsets(&b, &group, &topic).get(&0) == Some(&300)
    })
    .await;
    let report = listener.shutdown().await;
    assert!(report.closed, "{report:?}");
}

/// The records of a job that finished before its stuck record are committed
/// (they used to wait for the end of the job).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_before_a_stuck_one_in_the_same_job_are_committed() {
    commits_up_to_a_stuck_record(CommitPolicy::Async, STUCK_AT + 10).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_commit_stores_only_processed_offsets() {
    never_commits_unprocessed(CommitPolicy::Auto).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_per_batch_commits_only_processed_offsets() {
    never_commits_unprocessed(CommitPolicy::SyncPerBatch).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_commits_only_processed_offsets() {
    never_commits_unprocessed(CommitPolicy::Async).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_n_commits_only_processed_offsets() {
    never_commits_unprocessed(CommitPolicy::EveryN { records: 20 }).await;
}

/// Every N records inside one large batch: the committed offset advances in
/// steps while the batch (one job of 1000 records) is still being processed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_n_commits_inside_a_large_batch() {
    let b = bootstrap();
    let topic = new_topic(broker(), "everyn", 1);
    let group = unique_name("everyn-g");
    SeqProducer::new(&b).send(&topic, Some(0), 1000, |s| s.to_string());
    let listener = Listener::builder("everyn")
        .config(config(&group).with_max_poll_records(1000))
        .topics([topic.clone()])
        .commit(CommitPolicy::EveryN { records: 100 })
        .commit_interval(Duration::from_secs(3600)) // only N triggers commits
        .handler(Utf8, Utf8, |_r: Record<String, String>| async {
            tokio::time::sleep(Duration::from_micros(1500)).await;
            Ok(())
        })
        .start()
        .unwrap();
    let mut seen = std::collections::BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let c = committed_offsets(&b, &group, &topic)[&0];
        seen.insert(c);
        if c == 1000 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let inside: Vec<i64> = seen
        .iter()
        .copied()
        .filter(|c| *c > 0 && *c < 1000)
        .collect();
    assert!(inside.len() >= 3, "commits inside the batch: {inside:?}");
    assert!(
        seen.contains(&1000),
        "everything committed at the end: {seen:?}"
    );
    listener.shutdown().await;
}

/// The sequence guard: with commit round trips slowed down, several async
/// commits are in flight; the first fails (injected). Its failure is stale
/// (newer commits were sent), so it is dropped, not retried over a newer one,
/// and the committed offset never moves backwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_async_commit_failure_is_ignored() {
    let cluster = MockCluster::new(1).unwrap();
    let bs = cluster.bootstrap_servers();
    cluster.create_topic("guard", 1, 1).unwrap();
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &bs)
        .create()
        .unwrap();
    for i in 0..3000 {
        let v = i.to_string();
        producer
            .send(BaseRecord::<str, str>::to("guard").payload(&v))
            .unwrap();
        if i % 500 == 0 {
            producer.flush(Duration::from_secs(10)).unwrap();
        }
    }
    producer.flush(Duration::from_secs(10)).unwrap();
    let listener = Listener::builder("guard")
        .config(
            ConsumerConfig::new(&bs)
                .with_group("guard-g")
                .with_offset_reset(OffsetReset::Earliest),
        )
        .topics(["guard"])
        .commit(CommitPolicy::Async)
        .commit_interval(Duration::from_millis(5))
        .handler(Utf8, Utf8, |_r: Record<String, String>| async {
            tokio::time::sleep(Duration::from_micros(300)).await;
            Ok(())
        })
        .start()
        .unwrap();
    eventually("first records processed", Duration::from_secs(20), || {
        listener.stats().processed > 10
    })
    .await;
    cluster
        .broker_round_trip_time(1, Duration::from_millis(100))
        .unwrap();
    cluster.request_errors(
        RDKafkaApiKey::OffsetCommit,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_OFFSET_METADATA_TOO_LARGE],
    );
    eventually("all processed", Duration::from_secs(60), || {
        listener.stats().processed >= 3000
    })
    .await;
    cluster.broker_round_trip_time(1, Duration::ZERO).unwrap();
    let stats = listener.stats();
    let report = listener.shutdown().await;
    assert!(
        stats.commit_failures >= 1,
        "the injected failure happened: {stats:?}"
    );
    assert!(
        stats.stale_commit_failures >= 1,
        "it was recognised as stale: {stats:?}"
    );
    assert_eq!(
        report.committed.last().map(|c| c.2).or(Some(3000)),
        Some(3000),
        "{report:?}"
    );
    let lag = committed_on_mock(&bs);
    assert_eq!(
        lag, 3000,
        "final committed offset is the end, not an older one"
    );
}

fn committed_on_mock(bs: &str) -> i64 {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bs)
        .set("group.id", "guard-g")
        .create()
        .unwrap();
    let mut tpl = rdkafka::TopicPartitionList::new();
    tpl.add_partition("guard", 0);
    let got = c.committed_offsets(tpl, Duration::from_secs(10)).unwrap();
    match got.find_partition("guard", 0).unwrap().offset() {
        rdkafka::Offset::Offset(o) => o,
        o => panic!("no commit: {o:?}"),
    }
}

/// A pause commits its own partitions at once; what other partitions
/// finished just before is still committed at the policy's next commit (a
/// partial commit once cleared the listener's "something finished" flag, and
/// partition 0 stayed uncommitted until more of its records finished).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_of_one_partition_leaves_the_others_to_the_next_commit() {
    let b = bootstrap();
    let topic = new_topic(broker(), "partial", 2);
    let group = unique_name("partial-g");
    SeqProducer::new(&b).send(&topic, Some(0), 30, |s| s.to_string());
    SeqProducer::new(&b).send(&topic, Some(1), 20, |s| s.to_string());
    let seen = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let s = seen.clone();
    let l = Listener::builder("partial")
        .config(config(&group))
        .topics([topic.clone()])
        .commit_interval(Duration::from_secs(3))
        .handler(Utf8, Utf8, move |_r: Record<String, String>| {
            s.fetch_add(1, Ordering::SeqCst);
            async { Ok(()) }
        })
        .start()
        .unwrap();
    eventually("all handled", Duration::from_secs(30), || {
        seen.load(Ordering::SeqCst) == 50
    })
    .await;
    // within the 3 s interval: only the pause's own commit has happened
    l.pause(switchyard_runtime::PauseTarget::Partition(topic.clone(), 1))
        .await
        .unwrap();
    eventually("partition 0 committed", Duration::from_secs(10), || {
        committed_offsets(&b, &group, &topic).get(&0) == Some(&30)
    })
    .await;
    assert_eq!(committed_offsets(&b, &group, &topic).get(&1), Some(&20));
    l.shutdown().await;
}

/// A pause whose synchronous commit fails is not acknowledged: the partition
/// stays draining (never reported paused, which means drained *and*
/// committed) until a later pause commits it. It used to be logged and
/// acknowledged as paused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_whose_commit_fails_is_not_acknowledged() {
    use switchyard_runtime::command::PartitionState;
    use switchyard_runtime::PauseTarget;
    let cluster = MockCluster::new(1).unwrap();
    let bs = cluster.bootstrap_servers();
    cluster.create_topic("guard", 1, 1).unwrap();
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &bs)
        .create()
        .unwrap();
    for i in 0..10 {
        let v = i.to_string();
        producer
            .send(BaseRecord::<str, str>::to("guard").payload(&v))
            .unwrap();
    }
    producer.flush(Duration::from_secs(10)).unwrap();
    let listener = Listener::builder("guard")
        .config(
            ConsumerConfig::new(&bs)
                .with_group("guard-g")
                .with_offset_reset(OffsetReset::Earliest),
        )
        .topics(["guard"])
        // no commit but the pause's
        .commit_interval(Duration::from_secs(3600))
        .handler(Utf8, Utf8, |_r: Record<String, String>| async { Ok(()) })
        .start()
        .unwrap();
    eventually("all processed", Duration::from_secs(30), || {
        listener.stats().processed >= 10
    })
    .await;
    cluster.request_errors(
        RDKafkaApiKey::OffsetCommit,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_OFFSET_METADATA_TOO_LARGE],
    );
    let target = PauseTarget::Partition("guard".into(), 0);
    let ack = listener.pause(target.clone()).await.unwrap();
    assert!(!ack.is_acknowledged(), "{ack:?}");
    let error = ack.partitions[0].error.clone().unwrap_or_default();
    assert!(error.contains("commit on pause failed"), "{error}");
    let state = |l: &switchyard_runtime::ListenerHandle| {
        futures::executor::block_on(l.snapshot_local())
            .unwrap()
            .partitions[0]
            .clone()
    };
    let p0 = state(&listener);
    assert_ne!(
        p0.state,
        PartitionState::Paused,
        "paused means drained and committed: {p0:?}"
    );
    assert_eq!(p0.reason.as_deref(), Some(error.as_str()));
    // the injected error is used up: a pause again commits and acknowledges
    let ack = listener.pause(target).await.unwrap();
    assert!(ack.is_acknowledged(), "{ack:?}");
    assert_eq!(ack.partitions[0].committed, Some(10));
    assert_eq!(state(&listener).state, PartitionState::Paused);
    assert_eq!(committed_on_mock(&bs), 10);
    listener.shutdown().await;
}
