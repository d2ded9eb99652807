//! Where consumption starts and how to move it: auto.offset.reset earliest
//! and latest, seek to beginning, end, offset and timestamp on a running
//! listener, and the group offset reset that refuses while the group has
//! members.

use std::time::Duration;

use switchyard_admin::{reset_offsets, ResetError, ResetTo};
use switchyard_config::OffsetReset;
use switchyard_runtime::{Listener, SeekTo};

use super::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_offset_reset_earliest_and_latest() {
    let b = bootstrap();
    let topic = new_topic(broker(), "reset", 1);
    let mut producer = SeqProducer::new(&b);
    producer.send(&topic, Some(0), 10, |s| s.to_string());

    let (early, seen_early) = collecting(
        Listener::builder("early")
            .config(config(&unique_name("early")).with_offset_reset(OffsetReset::Earliest))
            .topics([topic.clone()]),
    );
    let (late, seen_late) = collecting(
        Listener::builder("late")
            .config(config(&unique_name("late")).with_offset_reset(OffsetReset::Latest))
            .topics([topic.clone()]),
    );
    let early = early.start().unwrap();
    let late = late.start().unwrap();
    eventually("early reads the backlog", Duration::from_secs(20), || {
        count(&seen_early) == 10
    })
    .await;
    // `latest` resolves its position once assigned; keep producing until it sees something.
    let mut produced = 10;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while count(&seen_late) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "late never received a record"
        );
        producer.send(&topic, Some(0), 1, |s| s.to_string());
        produced += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eventually("early sees everything", Duration::from_secs(20), || {
        count(&seen_early) == produced
    })
    .await;
    let late_offsets: Vec<i64> = seen_late.lock().unwrap().iter().map(|r| r.1).collect();
    assert!(
        late_offsets.iter().all(|o| *o >= 10),
        "latest skips the backlog: {late_offsets:?}"
    );
    let early_offsets: Vec<i64> = seen_early.lock().unwrap().iter().map(|r| r.1).collect();
    assert_eq!(
        early_offsets,
        (0..produced as i64).collect::<Vec<_>>(),
        "earliest reads the backlog"
    );
    early.shutdown().await;
    late.shutdown().await;
}

/// How long each step of the seek test may take (a loaded machine with several
/// brokers and consumer processes on 2 cores needs more than 20 s at times).
const SEEK_WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seek_to_beginning_end_offset_and_timestamp() {
    let b = bootstrap();
    let topic = new_topic(broker(), "seek", 1);
    let producer = SeqProducer::new(&b);
    // timestamps of the last hour: older ones than the broker's retention
    // (7 days) are deleted at its next retention check, records and all
    let base = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        - 3_600_000;
    for i in 0..20i64 {
        producer.send_raw(
            &topic,
            Some(0),
            Some(b"k"),
            i.to_string().as_bytes(),
            Some(base + i * 1000),
        );
    }
    let (builder, seen) = collecting(
        Listener::builder("seek")
            .config(config(&unique_name("seek-g")))
            .topics([topic.clone()]),
    );
    let listener = builder.start().unwrap();
    eventually("all 20", SEEK_WAIT, || count(&seen) == 20).await;
    let offsets_from =
        |from: usize| -> Vec<i64> { seen.lock().unwrap()[from..].iter().map(|r| r.1).collect() };
    let tp = Some((topic.clone(), 0));

    let mark = count(&seen);
    let done = listener.seek(tp.clone(), SeekTo::Beginning).await.unwrap();
    assert_eq!(done, vec![(topic.clone(), 0, 0)]);
    eventually("replay from the beginning", SEEK_WAIT, || {
        count(&seen) >= mark + 20
    })
    .await;
    assert_eq!(offsets_from(mark), (0..20).collect::<Vec<_>>());

    let mark = count(&seen);
    listener.seek(tp.clone(), SeekTo::Offset(15)).await.unwrap();
    eventually("replay from 15", SEEK_WAIT, || count(&seen) >= mark + 5).await;
    assert_eq!(offsets_from(mark), (15..20).collect::<Vec<_>>());

    let mark = count(&seen);
    let done = listener
        .seek(tp.clone(), SeekTo::Timestamp(base + 12_500))
        .await
        .unwrap();
    assert_eq!(done[0].2, 13, "first record at or after the time");
    eventually("replay from the time", SEEK_WAIT, || {
        count(&seen) >= mark + 7
    })
    .await;
    assert_eq!(offsets_from(mark), (13..20).collect::<Vec<_>>());

    let mark = count(&seen);
    let done = listener.seek(tp.clone(), SeekTo::End).await.unwrap();
    assert_eq!(done[0].2, 20);
    producer.send_raw(&topic, Some(0), Some(b"k"), b"20", None);
    eventually("only the new record", SEEK_WAIT, || count(&seen) > mark).await;
    assert_eq!(offsets_from(mark), vec![20]);

    let err = listener
        .seek(Some((topic.clone(), 7)), SeekTo::Beginning)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not assigned"), "{err}");
    listener.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_offset_reset_is_refused_while_active_and_done_when_empty() {
    let b = bootstrap();
    let topic = new_topic(broker(), "greset", 2);
    let group = unique_name("greset-g");
    SeqProducer::new(&b).send(&topic, None, 40, |s| format!("k{s}"));
    let (builder, seen) = collecting(
        Listener::builder("greset")
            .config(config(&group))
            .topics([topic.clone()]),
    );
    let listener = builder.start().unwrap();
    eventually("all consumed", Duration::from_secs(20), || {
        count(&seen) == 40
    })
    .await;
    eventually("committed", Duration::from_secs(20), || {
        committed_offsets(&b, &group, &topic).values().sum::<i64>() == 40
    })
    .await;
    let (b2, g2, t2) = (b.clone(), group.clone(), topic.clone());
    let refused = tokio::task::spawn_blocking(move || {
        reset_offsets(
            &b2,
            &g2,
            &t2,
            ResetTo::Earliest,
            true,
            Duration::from_secs(10),
        )
    })
    .await
    .unwrap();
    assert!(
        matches!(refused, Err(ResetError::GroupActive { members: 1, .. })),
        "{refused:?}"
    );
    assert_eq!(
        committed_offsets(&b, &group, &topic).values().sum::<i64>(),
        40,
        "nothing changed"
    );
    listener.shutdown().await;
    wait_until("group empty", Duration::from_secs(20), || {
        group_members(&b, &group).0 == 0
    });
    let rows = reset_offsets(
        &b,
        &group,
        &topic,
        ResetTo::Earliest,
        true,
        Duration::from_secs(10),
    )
    .unwrap();
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| r.after == 0));
    assert_eq!(
        committed_offsets(&b, &group, &topic).values().sum::<i64>(),
        0
    );
    reset_offsets(
        &b,
        &group,
        &topic,
        ResetTo::Offset(3),
        true,
        Duration::from_secs(10),
    )
    .unwrap();
    assert!(committed_offsets(&b, &group, &topic)
        .values()
        .all(|o| *o == 3));
    reset_offsets(
        &b,
        &group,
        &topic,
        ResetTo::Latest,
        true,
        Duration::from_secs(10),
    )
    .unwrap();
    assert_eq!(
        committed_offsets(&b, &group, &topic),
        end_offsets(&b, &topic)
    );
}
