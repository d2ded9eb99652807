//! Bad records never stall or kill the loop: an undecodable record goes to
//! the dead-letter topic (with headers) or is skipped, by policy, counted; a
//! record whose handler keeps failing is retried, then dead-lettered while
//! its neighbours are processed, or stops only its own partition.

use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};
use std::sync::Arc;
use std::time::Duration;

use switchyard_config::DecodeErrorPolicy;
use switchyard_runtime::command::PartitionState;
use switchyard_runtime::dead_letter::headers;
use switchyard_runtime::deserializer::{Json, Utf8};
use switchyard_runtime::record::Record;
use switchyard_runtime::{FailurePolicy, Listener, PauseTarget, RetryPolicy};

use super::common::*;

#[derive(serde::Deserialize)]
struct Order {
    id: u32,
}

async fn decode_policy(policy: DecodeErrorPolicy) {
    let b = bootstrap();
    let topic = new_topic(broker(), "decode", 1);
    let group = unique_name("decode-g");
    let p = SeqProducer::new(&b);
    for v in [
        r#"{"id":1}"#,
        "not json",
        r#"{"id":2}"#,
        r#"{"id":"#,
        r#"{"id":3}"#,
    ] {
        p.send_raw(&topic, Some(0), Some(b"k"), v.as_bytes(), None);
    }
    let ids: Seen = Default::default();
    let ids2 = ids.clone();
    let l = Listener::builder("decode")
        .config(config(&group))
        .topics([topic.clone()])
        .on_decode_error(policy)
        .handler(
            Utf8,
            Json::<Order>::new(),
            move |r: Record<String, Order>| {
                ids2.lock().unwrap().push((
                    r.partition,
                    r.offset,
                    String::new(),
                    r.value.id.to_string(),
                ));
                async { Ok(()) }
            },
        )
        .start()
        .unwrap();
    eventually("valid records processed", Duration::from_secs(20), || {
        count(&ids) == 3
    })
    .await;
    eventually("all committed", Duration::from_secs(20), || {
        committed_offsets(&b, &group, &topic)[&0] == 5
    })
    .await;
    let stats = l.stats();
    assert_eq!(stats.decode_errors, 2);
    let got: Vec<i64> = ids.lock().unwrap().iter().map(|r| r.1).collect();
    assert_eq!(got, vec![0, 2, 4]);
    match policy {
        DecodeErrorPolicy::DeadLetter => {
            assert_eq!(stats.dead_lettered, 2);
            let dlt = read_dead_letters(&b, &format!("{topic}.DLT"), 2);
            assert_eq!(dlt.len(), 2);
            assert_eq!(dlt[0].0, "not json");
            assert_eq!(dlt[0].1[headers::TOPIC], topic);
            assert_eq!(dlt[0].1[headers::PARTITION], "0");
            assert_eq!(dlt[0].1[headers::OFFSET], "1");
            assert!(
                dlt[0].1[headers::ERROR].contains("invalid JSON"),
                "{:?}",
                dlt[0].1
            );
            assert_eq!(dlt[1].1[headers::OFFSET], "3");
        }
        DecodeErrorPolicy::Skip => assert_eq!(stats.skipped, 2),
    }
    l.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_records_go_to_the_dead_letter_topic() {
    decode_policy(DecodeErrorPolicy::DeadLetter).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_records_are_skipped_by_policy() {
    decode_policy(DecodeErrorPolicy::Skip).await;
}

fn failing_listener(
    topic: &str,
    group: &str,
    policy: FailurePolicy,
    seen: Seen,
) -> switchyard_runtime::ListenerHandle {
    Listener::builder("failing")
        .config(config(group))
        .topics([topic.to_string()])
        .workers(2)
        .retry(RetryPolicy {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(50),
        })
        .on_failure(policy)
        .handler(Utf8, Utf8, move |r: Record<String, String>| {
            let seen = seen.clone();
            async move {
                if r.value == "poison" {
                    return Err("poison record".into());
                }
                seen.lock()
                    .unwrap()
                    .push((r.partition, r.offset, String::new(), r.value));
                Ok(())
            }
        })
        .start()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_record_is_retried_then_dead_lettered_while_neighbours_go_on() {
    let b = bootstrap();
    let topic = new_topic(broker(), "poison", 1);
    let group = unique_name("poison-g");
    let p = SeqProducer::new(&b);
    for v in ["a", "b", "poison", "c", "d"] {
        p.send_raw(&topic, Some(0), Some(b"k"), v.as_bytes(), None);
    }
    let seen: Seen = Default::default();
    let l = failing_listener(&topic, &group, FailurePolicy::DeadLetter, seen.clone());
    eventually("neighbours processed", Duration::from_secs(20), || {
        count(&seen) == 4
    })
    .await;
    let dlt = read_dead_letters(&b, &format!("{topic}.DLT"), 1);
    assert_eq!(dlt[0].0, "poison");
    assert_eq!(dlt[0].1[headers::ATTEMPTS], "3");
    assert_eq!(dlt[0].1[headers::OFFSET], "2");
    assert!(dlt[0].1[headers::ERROR].contains("poison record"));
    let stats = l.stats();
    assert_eq!((stats.retries, stats.dead_lettered), (2, 1));
    eventually("committed past it", Duration::from_secs(20), || {
        committed_offsets(&b, &group, &topic)[&0] == 5
    })
    .await;
    l.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_policy_stops_only_the_failing_partition_until_skipped() {
    let b = bootstrap();
    let topic = new_topic(broker(), "stop", 2);
    let group = unique_name("stop-g");
    let p = SeqProducer::new(&b);
    for v in ["a", "poison", "b"] {
        p.send_raw(&topic, Some(0), Some(b"k"), v.as_bytes(), None);
    }
    let seen: Seen = Default::default();
    let l = failing_listener(&topic, &group, FailurePolicy::StopPartition, seen.clone());
    eventually("p0 stopped", Duration::from_secs(20), || {
        futures::executor::block_on(l.snapshot())
            .unwrap()
            .partitions
            .iter()
            .any(|s| s.partition == 0 && s.state == PartitionState::Stopped)
    })
    .await;
    let snap = l.snapshot().await.unwrap();
    let p0 = snap.partitions.iter().find(|s| s.partition == 0).unwrap();
    assert!(
        p0.reason.as_deref().unwrap_or("").contains("offset 1"),
        "{p0:?}"
    );
    // the other partition keeps flowing
    p.send_raw(&topic, Some(1), Some(b"k"), b"x", None);
    eventually("p1 flows", Duration::from_secs(20), || {
        seen.lock().unwrap().iter().any(|r| r.0 == 1)
    })
    .await;
    assert_eq!(
        committed_offsets(&b, &group, &topic)[&0],
        1,
        "p0 committed up to the failed record"
    );
    assert!(
        !seen.lock().unwrap().iter().any(|r| r.3 == "b"),
        "nothing after the failed record"
    );
    l.resume_skipping(PauseTarget::Partition(topic.clone(), 0))
        .await
        .unwrap();
    eventually(
        "p0 continues after the skipped record",
        Duration::from_secs(20),
        || seen.lock().unwrap().iter().any(|r| r.3 == "b"),
    )
    .await;
    eventually("committed past it", Duration::from_secs(20), || {
        committed_offsets(&b, &group, &topic)[&0] == 3
    })
    .await;
    l.shutdown().await;
}

/// Create `topic` (one partition) with topic-level `configs`.
fn create_topic_with(b: &str, topic: &str, configs: &[(&str, &str)]) {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    let admin: AdminClient<DefaultClientContext> = client_config(b).create().unwrap();
    let mut t = NewTopic::new(topic, 1, TopicReplication::Fixed(1));
    for (k, v) in configs {
        t = t.set(k, v);
    }
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let r = futures::executor::block_on(admin.create_topics([&t], &opts)).unwrap();
    assert!(r.iter().all(Result::is_ok), "{r:?}");
    // a fresh client sees it with a leader
    create_topic(b, topic, 1);
}

fn partition_state(
    l: &switchyard_runtime::ListenerHandle,
    p: i32,
) -> Option<switchyard_runtime::command::PartitionStatus> {
    futures::executor::block_on(l.snapshot_local())
        .ok()?
        .partitions
        .into_iter()
        .find(|s| s.partition == p)
}

/// A dead letter that can never be written (the record is larger than the
/// dead-letter topic's `max.message.bytes`) is tried a bounded number of
/// times; then the partition stops at the record, with the reason, and the
/// only worker is free for the other partition (the write used to be retried
/// forever, holding the permit: with one worker the listener stood still).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_write_that_cannot_succeed_stops_the_partition_and_frees_the_worker() {
    let b = bootstrap();
    let topic = new_topic(broker(), "dlt-fail", 2);
    let group = unique_name("dlt-fail-g");
    create_topic_with(
        &b,
        &format!("{topic}.DLT"),
        &[("max.message.bytes", "1024")],
    );
    let p = SeqProducer::new(&b);
    let big = format!("poison{}", "x".repeat(4000));
    p.send_raw(&topic, Some(0), Some(b"k"), big.as_bytes(), None);
    p.send_raw(&topic, Some(0), Some(b"k"), b"after", None);
    let seen: Seen = Default::default();
    let s = seen.clone();
    let l = Listener::builder("dlt-fail")
        .config(config(&group))
        .topics([topic.clone()])
        .workers(1)
        .retry(RetryPolicy::none())
        .on_failure(FailurePolicy::DeadLetter)
        .handler(Utf8, Utf8, move |r: Record<String, String>| {
            let s = s.clone();
            async move {
                if r.value.starts_with("poison") {
                    return Err("poison record".into());
                }
                s.lock()
                    .unwrap()
                    .push((r.partition, r.offset, String::new(), r.value));
                Ok(())
            }
        })
        .start()
        .unwrap();
    eventually("p0 stopped at the record", Duration::from_secs(40), || {
        partition_state(&l, 0).is_some_and(|s| s.state == PartitionState::Stopped)
    })
    .await;
    let p0 = partition_state(&l, 0).unwrap();
    let reason = p0.reason.unwrap_or_default();
    assert!(
        reason.contains("dead-letter") && reason.contains("offset 0"),
        "{reason}"
    );
    // the only worker is free: the other partition flows
    p.send_raw(&topic, Some(1), Some(b"k"), b"x", None);
    eventually("p1 flows", Duration::from_secs(20), || {
        seen.lock().unwrap().iter().any(|r| r.0 == 1)
    })
    .await;
    assert!(
        !seen.lock().unwrap().iter().any(|r| r.3 == "after"),
        "nothing after the record that could not be dead-lettered"
    );
    eventually("p1 committed", Duration::from_secs(20), || {
        committed_offsets(&b, &group, &topic).get(&1) == Some(&1)
    })
    .await;
    assert_eq!(
        committed_offsets(&b, &group, &topic)
            .get(&0)
            .copied()
            .unwrap_or(0),
        0,
        "nothing of p0 committed past the record"
    );
    l.shutdown().await;
}

/// A handler that never returns the first time it sees `hang`.
fn hanging_listener(
    name: &str,
    topic: &str,
    group: &str,
    seen: Seen,
    hung: Arc<AtomicBool>,
) -> switchyard_runtime::ListenerBuilder {
    Listener::builder(name)
        .config(config(group))
        .topics([topic.to_string()])
        .workers(1)
        .handler(Utf8, Utf8, move |r: Record<String, String>| {
            let (seen, hung) = (seen.clone(), hung.clone());
            async move {
                if r.value == "hang" && !hung.swap(true, AtomicOrdering::SeqCst) {
                    futures::future::pending::<()>().await;
                }
                seen.lock()
                    .unwrap()
                    .push((r.partition, r.offset, String::new(), r.value));
                Ok(())
            }
        })
}

/// A pause of a partition whose handler never returns is acknowledged once
/// the pause deadline passes: the call is abandoned (its worker permit freed,
/// the record delivered again after the resume) and the partition is
/// committed below it. It used to wait forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_abandons_a_handler_that_outlives_its_deadline() {
    let b = bootstrap();
    let topic = new_topic(broker(), "hang-pause", 2);
    let group = unique_name("hang-pause-g");
    let p = SeqProducer::new(&b);
    for v in ["a", "hang", "b"] {
        p.send_raw(&topic, Some(0), Some(b"k"), v.as_bytes(), None);
    }
    let seen: Seen = Default::default();
    let hung = Arc::new(AtomicBool::new(false));
    let l = hanging_listener("hang-pause", &topic, &group, seen.clone(), hung.clone())
        .start()
        .unwrap();
    eventually("the handler hangs", Duration::from_secs(20), || {
        hung.load(AtomicOrdering::SeqCst) && count(&seen) == 1
    })
    .await;
    let ack = tokio::time::timeout(
        Duration::from_secs(30),
        l.pause(PauseTarget::Partition(topic.clone(), 0)),
    )
    .await
    .expect("the pause is acknowledged within its deadline")
    .unwrap();
    assert_eq!(ack.partitions[0].committed, Some(1), "{ack:?}");
    assert_eq!(
        partition_state(&l, 0).unwrap().state,
        PartitionState::Paused
    );
    // the only worker is free again
    p.send_raw(&topic, Some(1), Some(b"k"), b"x", None);
    eventually("p1 flows", Duration::from_secs(20), || {
        seen.lock().unwrap().iter().any(|r| r.0 == 1)
    })
    .await;
    l.resume(PauseTarget::Partition(topic.clone(), 0))
        .await
        .unwrap();
    eventually(
        "p0 goes on from the abandoned record",
        Duration::from_secs(20),
        || seen.lock().unwrap().iter().any(|r| r.3 == "b"),
    )
    .await;
    let p0: Vec<i64> = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.0 == 0)
        .map(|r| r.1)
        .collect();
    assert_eq!(p0, vec![0, 1, 2]);
    l.shutdown().await;
}

/// A revoke (here: leaving the group) that times out abandons the handler
/// call still running: after joining again, the partition is processed from
/// the abandoned record on. The call used to keep running, holding the only
/// worker permit, so nothing was processed after the rejoin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoke_abandons_a_handler_that_outlives_its_timeout() {
    let b = bootstrap();
    let topic = new_topic(broker(), "hang-revoke", 1);
    let group = unique_name("hang-revoke-g");
    let p = SeqProducer::new(&b);
    for v in ["a", "hang", "b"] {
        p.send_raw(&topic, Some(0), Some(b"k"), v.as_bytes(), None);
    }
    let seen: Seen = Default::default();
    let hung = Arc::new(AtomicBool::new(false));
    let l = hanging_listener("hang-revoke", &topic, &group, seen.clone(), hung.clone())
        .revoke_timeout(Duration::from_secs(2))
        .start()
        .unwrap();
    eventually("the handler hangs", Duration::from_secs(20), || {
        hung.load(AtomicOrdering::SeqCst) && count(&seen) == 1
    })
    .await;
    tokio::time::timeout(Duration::from_secs(20), l.leave_group())
        .await
        .expect("the revoke ends at its timeout")
        .unwrap();
    assert_eq!(committed_offsets(&b, &group, &topic).get(&0), Some(&1));
    l.join_group().await.unwrap();
    eventually(
        "processed from the abandoned record on",
        Duration::from_secs(30),
        || seen.lock().unwrap().iter().any(|r| r.3 == "b"),
    )
    .await;
    let p0: Vec<i64> = seen.lock().unwrap().iter().map(|r| r.1).collect();
    assert_eq!(p0, vec![0, 1, 2]);
    l.shutdown().await;
}

/// Under key ordering a record that fails for good stops its partition
/// while the lanes of other keys still run: a pause of the partition is
/// acknowledged only once they are done (a stopped partition used to count
/// as paused at once, with records of it still in a handler).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_partition_is_paused_only_once_its_other_lanes_are_done() {
    let b = bootstrap();
    let topic = new_topic(broker(), "stop-lanes", 1);
    let group = unique_name("stop-lanes-g");
    let p = SeqProducer::new(&b);
    p.send_raw(&topic, Some(0), Some(b"a"), b"poison", None);
    p.send_raw(&topic, Some(0), Some(b"b"), b"slow", None);
    let seen: Seen = Default::default();
    let s = seen.clone();
    let l = Listener::builder("stop-lanes")
        .config(config(&group))
        .topics([topic.clone()])
        .ordering(switchyard_runtime::Ordering::Key)
        .workers(2)
        .retry(RetryPolicy::none())
        .on_failure(FailurePolicy::StopPartition)
        .handler(Utf8, Utf8, move |r: Record<String, String>| {
            let s = s.clone();
            async move {
                match r.value.as_str() {
                    "poison" => return Err("poison record".into()),
                    "slow" => tokio::time::sleep(Duration::from_secs(3)).await,
                    _ => {}
                }
                s.lock()
                    .unwrap()
                    .push((r.partition, r.offset, String::new(), r.value));
                Ok(())
            }
        })
        .start()
        .unwrap();
    eventually(
        "p0 stopped at the poison record",
        Duration::from_secs(20),
        || partition_state(&l, 0).is_some_and(|s| s.reason.is_some()),
    )
    .await;
    assert_eq!(count(&seen), 0, "the slow record is still running");
    let _ack = l
        .pause(PauseTarget::Partition(topic.clone(), 0))
        .await
        .unwrap();
    assert_eq!(
        count(&seen),
        1,
        "acknowledged only after the other lane finished"
    );
    l.shutdown().await;
}
