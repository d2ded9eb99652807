//! Pause and resume of single partitions through the library API, with the
//! semantics of docs/design.md: a pause longer than session.timeout.ms and
//! max.poll.interval.ms causes no rebalance (I4), nothing of the paused
//! partition reaches the handler after the acknowledgement (I3), and resume
//! continues at exactly the committed offset. The long pause runs under both
//! group protocols (`_classic`, `_consumer`).

use std::time::{Duration, Instant};

use switchyard_runtime::command::PartitionState;
use switchyard_runtime::{Listener, PauseTarget};

use super::common::*;

crate::protocol_tests!(async long_pause:
    long_pause_keeps_the_group_and_resumes_at_the_committed_offset_classic,
    long_pause_keeps_the_group_and_resumes_at_the_committed_offset_consumer);

async fn long_pause(protocol: GroupProtocol) {
    let b = bootstrap();
    let topic = new_topic(broker(), "pause", 2);
    let group = unique_name("pause-g");
    let mut producer = SeqProducer::new(&b);
    producer.send(&topic, Some(0), 50, |s| s.to_string());
    producer.send(&topic, Some(1), 50, |s| s.to_string());
    // session timeout 6 s (classic; the broker's 3 s under consumer),
    // max.poll.interval 10 s: the pause below lasts 14 s
    let (builder, seen) = collecting(
        Listener::builder("pause")
            .config(config_for(&group, protocol))
            .topics([topic.clone()]),
    );
    let listener = builder.workers(2).start().unwrap();
    eventually("first 100 records", Duration::from_secs(30), || {
        count(&seen) == 100
    })
    .await;
    let before = listener.snapshot().await.unwrap();

    let ack = listener
        .pause(PauseTarget::Partition(topic.clone(), 0))
        .await
        .unwrap();
    assert_eq!(ack.partitions.len(), 1);
    assert_eq!(
        ack.partitions[0].committed,
        Some(50),
        "acknowledged with the committed offset"
    );
    assert_eq!(
        committed_offsets(&b, &group, &topic)[&0],
        50,
        "committed before the acknowledgement"
    );
    let acked_at = count(&seen);

    producer.send(&topic, Some(0), 30, |s| s.to_string());
    let paused_until = Instant::now() + Duration::from_secs(14);
    while Instant::now() < paused_until {
        producer.send(&topic, Some(1), 5, |s| s.to_string());
        tokio::time::sleep(Duration::from_millis(500)).await;
        let snap = listener.snapshot().await.unwrap();
        let p0 = snap
            .partitions
            .iter()
            .find(|p| p.partition == 0)
            .expect("p0 still assigned");
        assert_eq!(p0.state, PartitionState::Paused);
    }
    let during: Vec<_> = seen.lock().unwrap()[acked_at..].to_vec();
    assert!(
        during.iter().all(|r| r.0 == 1),
        "nothing of p0 delivered while paused"
    );
    assert!(!during.is_empty(), "p1 kept flowing during the pause");

    let after = listener.snapshot().await.unwrap();
    assert_eq!(
        after.stats.rebalances, before.stats.rebalances,
        "no rebalance during a 14 s pause"
    );
    assert_eq!(after.member_id, before.member_id, "same group member");

    let resumed_at = count(&seen);
    listener
        .resume(PauseTarget::Partition(topic.clone(), 0))
        .await
        .unwrap();
    eventually("p0 records after resume", Duration::from_secs(20), || {
        seen.lock().unwrap()[resumed_at..]
            .iter()
            .filter(|r| r.0 == 0)
            .count()
            == 30
    })
    .await;
    let p0_after: Vec<i64> = seen.lock().unwrap()[resumed_at..]
        .iter()
        .filter(|r| r.0 == 0)
        .map(|r| r.1)
        .collect();
    assert_eq!(
        p0_after,
        (50..80).collect::<Vec<_>>(),
        "resume continues at exactly the committed offset"
    );
    let report = listener.shutdown().await;
    assert!(report.closed);
}

/// A listener whose handler takes `delay_ms` per record, with at most
/// `max_poll` records per job, logging what it processed.
fn slow_listener(
    name: &str,
    topic: &str,
    group: &str,
    max_poll: usize,
    delay_ms: u64,
) -> (switchyard_runtime::ListenerHandle, Seen) {
    let seen: Seen = Default::default();
    let s = seen.clone();
    let listener = Listener::builder(name)
        .config(config(group).with_max_poll_records(max_poll))
        .topics([topic.to_string()])
        .handler(
            switchyard_runtime::deserializer::Utf8,
            switchyard_runtime::deserializer::Utf8,
            move |r: switchyard_runtime::record::Record<String, String>| {
                let s = s.clone();
                async move {
                    tokio::time::sleep(Duration::from_millis(delay_ms)).await;
                    s.lock()
                        .unwrap()
                        .push((r.partition, r.offset, String::new(), r.value));
                    Ok(())
                }
            },
        )
        .start()
        .unwrap();
    (listener, seen)
}

/// Records fetched but not yet handed to a handler are dropped at the pause
/// and delivered again after resume, none lost and none twice (slow handler,
/// so the buffer is full when the pause arrives).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_with_a_full_buffer_loses_and_duplicates_nothing() {
    let b = bootstrap();
    let topic = new_topic(broker(), "pausebuf", 1);
    let group = unique_name("pausebuf-g");
    SeqProducer::new(&b).send(&topic, Some(0), 400, |s| s.to_string());
    let (listener, seen) = slow_listener("pausebuf", &topic, &group, 10, 2);
    eventually("some processed", Duration::from_secs(20), || {
        count(&seen) >= 50
    })
    .await;
    let ack = listener.pause(PauseTarget::Listener).await.unwrap();
    let n = count(&seen);
    assert_eq!(
        ack.partitions[0].committed,
        Some(n as i64),
        "committed = processed at the ack"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        count(&seen),
        n,
        "nothing delivered after the acknowledgement"
    );
    listener.resume(PauseTarget::Listener).await.unwrap();
    eventually("all processed", Duration::from_secs(30), || {
        count(&seen) >= 400
    })
    .await;
    let offsets: Vec<i64> = seen.lock().unwrap().iter().map(|r| r.1).collect();
    assert_eq!(
        offsets,
        (0..400).collect::<Vec<_>>(),
        "every offset once, in order"
    );
    listener.shutdown().await;
}

/// A pause does not wait for the rest of a job: a slow handler (50 ms per
/// record) got one job of 200 records, and the acknowledgement comes after
/// the record in progress; the records not started are delivered after
/// resume, none lost and none twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_stops_a_long_job_after_the_record_in_progress() {
    let b = bootstrap();
    let topic = new_topic(broker(), "pausejob", 1);
    let group = unique_name("pausejob-g");
    SeqProducer::new(&b).send(&topic, Some(0), 200, |s| s.to_string());
    let (listener, seen) = slow_listener("pausejob", &topic, &group, 500, 50);
    eventually("some processed", Duration::from_secs(20), || {
        count(&seen) >= 10
    })
    .await;
    let asked = count(&seen);
    let ack = listener.pause(PauseTarget::Listener).await.unwrap();
    let n = count(&seen);
    assert!(
        n <= asked + 2,
        "the pause waited for {} records of the job (asked at {asked})",
        n - asked
    );
    assert_eq!(ack.partitions[0].committed, Some(n as i64));
    listener.resume(PauseTarget::Listener).await.unwrap();
    eventually("all processed", Duration::from_secs(60), || {
        count(&seen) >= 200
    })
    .await;
    let offsets: Vec<i64> = seen.lock().unwrap().iter().map(|r| r.1).collect();
    assert_eq!(
        offsets,
        (0..200).collect::<Vec<_>>(),
        "every offset once, in order"
    );
    listener.shutdown().await;
}

crate::protocol_tests!(async paused_then_revoked:
    a_partition_revoked_while_paused_is_fetched_when_it_comes_back_running_classic,
    a_partition_revoked_while_paused_is_fetched_when_it_comes_back_running_consumer);

/// librdkafka keeps an application's pause on its partition object after the
/// partition is revoked, and an assignment lifts only its own pauses: a
/// partition that left paused and comes back running (its pause lifted while
/// it was away, as at a handoff between slots) must be fetched again.
async fn paused_then_revoked(protocol: GroupProtocol) {
    let b = bootstrap();
    let topic = new_topic(broker(), "pauserev", 1);
    let group = unique_name("pauserev-g");
    let mut producer = SeqProducer::new(&b);
    producer.send(&topic, Some(0), 20, |s| s.to_string());
    let (builder, seen) = collecting(
        Listener::builder("pauserev")
            .config(config_for(&group, protocol))
            .topics([topic.clone()]),
    );
    let listener = builder.start().unwrap();
    let wait = Duration::from_secs(30);
    eventually("first 20 records", wait, || count(&seen) == 20).await;
    let target = PauseTarget::Partition(topic.clone(), 0);
    listener.pause(target.clone()).await.unwrap();
    listener.leave_group().await.unwrap();
    let mut left = false;
    let deadline = Instant::now() + wait;
    while !left && Instant::now() < deadline {
        left = listener.snapshot().await.unwrap().partitions.is_empty();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(left, "the partition left with the group");
    // the pause is lifted while the partition is away
    listener.resume(target).await.unwrap();
    producer.send(&topic, Some(0), 20, |s| s.to_string());
    listener.join_group().await.unwrap();
    eventually("the 20 records produced while away", wait, || {
        count(&seen) == 40
    })
    .await;
    listener.shutdown().await;
}
