//! Bounded shutdown (I6): it finishes within its deadline with offsets
//! committed, also while a handler is still running, and the group hands the
//! partitions to another member at once (LeaveGroup), not after the session
//! timeout.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use switchyard_runtime::deserializer::Utf8;
use switchyard_runtime::record::Record;
use switchyard_runtime::Listener;

use super::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_with_a_stuck_handler_meets_its_deadline_and_hands_over_at_once() {
    let b = bootstrap();
    let topic = new_topic(broker(), "shut", 2);
    let group = unique_name("shut-g");
    // a long session: a takeover within a few seconds proves the member left
    let cfg = config(&group)
        .with_session_timeout_ms(20_000)
        .with_max_poll_interval_ms(30_000);

    let stuck_partition = Arc::new(AtomicI32::new(-1));
    let entered = Arc::new(AtomicBool::new(false));
    let (sp, en) = (stuck_partition.clone(), entered.clone());
    let a = Listener::builder("shut-a")
        .config(cfg.clone())
        .topics([topic.clone()])
        .handler(Utf8, Utf8, move |r: Record<String, String>| {
            let (sp, en) = (sp.clone(), en.clone());
            async move {
                if r.partition == sp.load(Ordering::SeqCst) {
                    en.store(true, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_secs(120)).await;
                }
                Ok(())
            }
        })
        .start()
        .unwrap();
    let (bb, seen_b) = collecting(
        Listener::builder("shut-b")
            .config(cfg)
            .topics([topic.clone()]),
    );
    let bl = bb.start().unwrap();
    eventually("both members assigned", Duration::from_secs(30), || {
        let sa = futures::executor::block_on(a.snapshot()).unwrap();
        let sb = futures::executor::block_on(bl.snapshot()).unwrap();
        sa.partitions.len() == 1 && sb.partitions.len() == 1
    })
    .await;
    let pa = a.snapshot().await.unwrap().partitions[0].partition;
    let mut producer = SeqProducer::new(&b);
    producer.send(&topic, Some(pa), 5, |s| s.to_string());
    eventually(
        "a processed the first records",
        Duration::from_secs(20),
        || committed_offsets(&b, &group, &topic)[&pa] == 5,
    )
    .await;
    stuck_partition.store(pa, Ordering::SeqCst);
    producer.send(&topic, Some(pa), 5, |s| s.to_string());
    eventually("a is stuck in its handler", Duration::from_secs(20), || {
        entered.load(Ordering::SeqCst)
    })
    .await;

    let t0 = Instant::now();
    let report = a.shutdown_within(Duration::from_secs(3)).await;
    let took = t0.elapsed();
    assert!(
        took < Duration::from_millis(3500),
        "shutdown took {took:?}: {report:?}"
    );
    assert!(report.closed, "left the group: {report:?}");
    assert!(
        report.abandoned_in_flight >= 1,
        "the stuck record is reported: {report:?}"
    );
    assert_eq!(
        committed_offsets(&b, &group, &topic)[&pa],
        5,
        "finished records committed, the stuck one not"
    );

    eventually(
        "b takes over the partition",
        Duration::from_secs(20),
        || {
            futures::executor::block_on(bl.snapshot())
                .unwrap()
                .partitions
                .len()
                == 2
        },
    )
    .await;
    let takeover = t0.elapsed();
    assert!(
        takeover < Duration::from_secs(8),
        "takeover after {takeover:?}: the session timeout is 20 s"
    );
    eventually(
        "b processes the abandoned records",
        Duration::from_secs(20),
        || seen_b.lock().unwrap().iter().filter(|r| r.0 == pa).count() == 5,
    )
    .await;
    let redone: Vec<i64> = seen_b
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.0 == pa)
        .map(|r| r.1)
        .collect();
    assert_eq!(redone, vec![5, 6, 7, 8, 9]);
    bl.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_shutdown_commits_everything_processed() {
    let b = bootstrap();
    let topic = new_topic(broker(), "shutok", 3);
    let group = unique_name("shutok-g");
    SeqProducer::new(&b).send(&topic, None, 300, |s| format!("k{s}"));
    let (builder, seen) = collecting(
        Listener::builder("shutok")
            .config(config(&group))
            .topics([topic.clone()]),
    );
    let l = builder
        .commit_interval(Duration::from_secs(3600))
        .start()
        .unwrap();
    eventually("all processed", Duration::from_secs(30), || {
        count(&seen) == 300
    })
    .await;
    let report = l.shutdown_within(Duration::from_secs(5)).await;
    assert!(
        report.closed && report.abandoned_in_flight == 0,
        "{report:?}"
    );
    assert_eq!(
        committed_offsets(&b, &group, &topic),
        end_offsets(&b, &topic),
        "final commit on shutdown"
    );
    wait_until("group empty", Duration::from_secs(10), || {
        group_members(&b, &group).0 == 0
    });
}
