//! Parallel processing without loss or reordering: I1 and I2 in
//! each ordering mode with random handler latency while consumers are added,
//! removed and killed; a handler slower than max.poll.interval.ms causes no
//! rebalance; a backlog (40,000 records, and one of 2 million) stays
//! within the buffer bound.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;

use switchyard_runtime::deserializer::Utf8;
use switchyard_runtime::record::Record;
use switchyard_runtime::{Listener, Ordering};

use super::common::*;

/// Per (instance, partition), offsets in processing order must increase.
fn check_partition_order(log: &ProcessedLog, topic: &str) -> Result<(), String> {
    let mut last: HashMap<(String, i32), i64> = HashMap::new();
    for e in log.entries.iter().filter(|e| e.topic == topic) {
        let k = (e.instance.clone(), e.partition);
        if let Some(prev) = last.get(&k) {
            if e.offset <= *prev {
                return Err(format!(
                    "{} processed {}/{} after {}",
                    e.instance, e.partition, e.offset, prev
                ));
            }
        }
        last.insert(k, e.offset);
    }
    Ok(())
}

/// Per (instance, key), a record never runs before an earlier record of its
/// key that it had not seen yet. Repeats of records already processed (a
/// re-delivery after a hand-over, see `churn`) are duplicates, checked
/// there, not reorderings.
fn check_key_order(log: &ProcessedLog, topic: &str) -> Result<(), String> {
    let mut seen: HashMap<(String, String, i32), std::collections::BTreeSet<i64>> = HashMap::new();
    for e in log.entries.iter().filter(|e| e.topic == topic) {
        let offsets = seen
            .entry((e.instance.clone(), e.key.clone(), e.partition))
            .or_default();
        if offsets.contains(&e.offset) {
            continue;
        }
        if let Some(max) = offsets.last() {
            if e.offset < *max {
                return Err(format!(
                    "{} processed key {} at {}/{} after {}/{max}",
                    e.instance, e.key, e.partition, e.offset, e.partition
                ));
            }
        }
        offsets.insert(e.offset);
    }
    Ok(())
}

fn churn(ordering: &str) {
    let b = bootstrap();
    let topic = new_topic(broker(), &format!("par-{ordering}"), 4);
    let group = unique_name("par-g");
    let log = log_path("par");
    let producer = SteadyProducer::start(&b, &topic, 4, 300);
    let args = ["--ordering", ordering, "--workers", "8", "--delay-ms", "20"];
    let grows = |n: usize| {
        let before = ProcessedLog::read(&log).count(&topic);
        wait_until("records keep flowing", Duration::from_secs(60), || {
            ProcessedLog::read(&log).count(&topic) >= before + n
        });
    };
    let mut p1 = probe("p1", &group, &topic, &log, &args);
    let mut p2 = probe("p2", &group, &topic, &log, &args);
    grows(300);
    let p3 = probe("p3", &group, &topic, &log, &args);
    grows(300);
    p1.kill(); // SIGKILL with records in flight
    let committed_at_kill = committed_offsets(&b, &group, &topic);
    grows(300);
    p2.terminate();
    assert!(p2.wait_exit(Duration::from_secs(15)).is_some());
    let p4 = probe("p4", &group, &topic, &log, &args);
    grows(300);
    producer.stop();
    let end = end_offsets(&b, &topic);
    wait_until("every offset processed", Duration::from_secs(90), || {
        ProcessedLog::read(&log)
            .check_no_gaps(&topic, &zeros(&end), &end)
            .is_ok()
    });
    drop((p3, p4));
    let all = ProcessedLog::read(&log);
    // I2: nothing lost
    all.check_no_gaps(&topic, &zeros(&end), &end).unwrap();
    // I1: a record is processed twice only if p1 had processed it but not
    // committed it when it was killed. Graceful hand-overs (p3 joining, p2
    // leaving) repeat nothing: in key and unordered mode, what finished above
    // the committed offset travels in the commit metadata.
    all.check_duplicates_only_from(&topic, "p1", &committed_at_kill)
        .unwrap();
    match ordering {
        "partition" => check_partition_order(&all, &topic).unwrap(),
        "key" => check_key_order(&all, &topic).unwrap(),
        _ => {}
    }
}

#[test]
fn partition_mode_keeps_partition_order_and_loses_nothing_under_churn() {
    churn("partition");
}

#[test]
fn key_mode_keeps_key_order_and_loses_nothing_under_churn() {
    churn("key");
}

#[test]
fn unordered_mode_loses_nothing_under_churn() {
    churn("unordered");
}

/// A handler that runs longer than max.poll.interval.ms does not get the
/// consumer removed from the group: the poll thread keeps polling.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handler_slower_than_max_poll_interval_causes_no_rebalance() {
    let b = bootstrap();
    let topic = new_topic(broker(), "slow", 1);
    let group = unique_name("slow-g");
    SeqProducer::new(&b).send(&topic, Some(0), 5, |s| s.to_string());
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let cfg = config(&group)
        .with_session_timeout_ms(6000)
        .with_max_poll_interval_ms(7000);
    let l = Listener::builder("slow")
        .config(cfg)
        .topics([topic.clone()])
        .handler(Utf8, Utf8, move |r: Record<String, String>| {
            c.fetch_add(1, AtomicOrdering::SeqCst);
            async move {
                if r.offset == 2 {
                    tokio::time::sleep(Duration::from_secs(9)).await; // > max.poll.interval.ms
                }
                Ok(())
            }
        })
        .start()
        .unwrap();
    eventually("slow record started", Duration::from_secs(20), || {
        calls.load(AtomicOrdering::SeqCst) >= 3
    })
    .await;
    let before = l.snapshot().await.unwrap();
    eventually("all processed", Duration::from_secs(30), || {
        committed_offsets(&b, &group, &topic)[&0] == 5
    })
    .await;
    let after = l.snapshot().await.unwrap();
    assert_eq!(
        after.stats.rebalances, before.stats.rebalances,
        "no rebalance"
    );
    assert_eq!(after.member_id, before.member_id, "still the same member");
    assert_eq!(
        calls.load(AtomicOrdering::SeqCst),
        5,
        "each record handled once"
    );
    l.shutdown().await;
}

/// A key-ordered listener with 16 workers and the buffer bound `buffer`
/// (records, bytes) whose handler counts each record in `seen`, then sleeps
/// `slow`.
fn slow_key_ordered(
    cfg: switchyard_config::ConsumerConfig,
    topic: &str,
    buffer: (usize, usize),
    slow: Duration,
    seen: Arc<AtomicUsize>,
) -> switchyard_runtime::ListenerHandle {
    Listener::builder("backlog")
        .config(cfg)
        .topics([topic])
        .ordering(Ordering::Key)
        .workers(16)
        .buffer(buffer.0, buffer.1)
        .handler(Utf8, Utf8, move |_r: Record<String, String>| {
            seen.fetch_add(1, AtomicOrdering::SeqCst);
            tokio::time::sleep(slow).map(Ok)
        })
        .start()
        .unwrap()
}

/// A backlog far larger than the buffer, consumed by a slow handler: the
/// records waiting for workers or in flight never exceed the bound (plus one
/// poll batch),
/// taking records stops and goes on (backpressure), and every record is
/// processed once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backlog_stays_within_the_buffer_bound() {
    let b = bootstrap();
    let topic = new_topic(broker(), "backlog", 2);
    let group = unique_name("backlog-g");
    SeqProducer::new(&b).send(&topic, Some(0), 20_000, |s| format!("k{}", s % 100));
    SeqProducer::new(&b).send(&topic, Some(1), 20_000, |s| format!("k{}", s % 100));
    let seen = Arc::new(AtomicUsize::new(0));
    let (bound, batch) = (500usize, 100usize);
    let cfg = config(&group).with_max_poll_records(batch);
    let slow = Duration::from_micros(200);
    let l = slow_key_ordered(cfg, &topic, (bound, 1 << 20), slow, seen.clone());
    let mut max_buffered = 0;
    while seen.load(AtomicOrdering::SeqCst) < 40_000 {
        let snap = l.snapshot().await.unwrap();
        max_buffered = max_buffered.max(snap.waiting_or_in_flight());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let stats = l.stats();
    assert!(
        max_buffered <= bound + 2 * batch,
        "{max_buffered} records waiting or in flight, bound {bound}"
    );
    assert!(
        stats.backpressure_pauses > 0,
        "fetching was paused at the bound: {stats:?}"
    );
    eventually("all committed", Duration::from_secs(30), || {
        committed_offsets(&b, &group, &topic).values().sum::<i64>() == 40_000
    })
    .await;
    assert_eq!(
        seen.load(AtomicOrdering::SeqCst),
        40_000,
        "each record once"
    );
    l.shutdown().await;
}

/// A backlog of 2 million small records behind a slow handler (1 ms,
/// key-ordered, 16 workers). While the backlog lasts, the records waiting or
/// in flight stay within the buffer bound plus one poll batch (also with 4
/// partitions, each of which could add a batch when only the partitions
/// holding records stopped at the bound), taking stops at the bound, and
/// the process's resident memory grows by far less than the backlog would
/// take if it were buffered (about 400 MB for 2 million records): with
/// `fetch.max.bytes` at 1 MiB (see docs/benchmarks.md) librdkafka's
/// prefetch stays small too. The peak is printed (`--nocapture`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_of_two_million_records_stays_within_the_buffer_bound() {
    let b = bootstrap();
    let topic = new_topic(broker(), "backlog-2m", 4);
    let group = unique_name("backlog-2m-g");
    SeqProducer::bulk(&b).send(&topic, None, 2_000_000, |s| format!("k{}", s % 1000));
    let rss_before = switchyard_testkit::memory::resident_mb();
    let seen = Arc::new(AtomicUsize::new(0));
    let (bound, batch) = (10_000usize, 500usize);
    let mut cfg = config(&group).with_max_poll_records(batch);
    cfg.fetch_max_bytes = Some(1 << 20);
    let slow = Duration::from_millis(1);
    let l = slow_key_ordered(cfg, &topic, (bound, 64 << 20), slow, seen.clone());
    let (mut max_buffered, mut peak_rss) = (0, rss_before);
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while seen.load(AtomicOrdering::SeqCst) < 30_000 {
        assert!(
            std::time::Instant::now() < deadline,
            "30,000 records within 120 s"
        );
        let snap = l.snapshot().await.unwrap();
        max_buffered = max_buffered.max(snap.waiting_or_in_flight());
        peak_rss = peak_rss.max(switchyard_testkit::memory::resident_mb());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stats = l.stats();
    l.shutdown().await;
    let growth = peak_rss - rss_before;
    eprintln!(
        "2M backlog: {} processed, at most {max_buffered} records waiting or in flight \
         (bound {bound}), RSS {rss_before:.0} MB before, peak {peak_rss:.0} MB (+{growth:.0} MB)",
        seen.load(AtomicOrdering::SeqCst)
    );
    assert!(
        max_buffered <= bound + batch,
        "{max_buffered} records waiting or in flight, bound {bound}"
    );
    assert!(
        stats.backpressure_pauses > 0,
        "taking stopped at the bound: {stats:?}"
    );
    assert!(growth < 250.0, "resident memory grew by {growth:.0} MB");
}

/// Key mode with one key stuck: the committed offset stays at the stuck
/// record while everything else finishes above it. On hand-over the next
/// owner, a new member of the same group, reads the finished offsets from the
/// commit metadata the broker kept and processes only what was not finished.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_records_above_the_commit_are_not_processed_again_after_hand_over() {
    let bs = bootstrap();
    let topic = new_topic(broker(), "handover", 1);
    let group = unique_name("handover-g");
    SeqProducer::new(&bs).send(&topic, Some(0), 200, |i| format!("k{}", i % 10));
    let cfg = || config(&group);
    let seen_a: Seen = Default::default();
    let sa = seen_a.clone();
    let a = Listener::builder("kh-a")
        .config(cfg())
        .topics([topic.clone()])
        .ordering(Ordering::Key)
        .workers(10)
        .handler(Utf8, Utf8, move |r: Record<String, String>| {
            let sa = sa.clone();
            async move {
                if r.key.as_deref() == Some("k0") {
                    tokio::time::sleep(Duration::from_secs(60)).await; // stuck
                }
                sa.lock()
                    .unwrap()
                    .push((r.partition, r.offset, String::new(), r.value));
                Ok(())
            }
        })
        .start()
        .unwrap();
    eventually("every other key finished", Duration::from_secs(20), || {
        count(&seen_a) == 180
    })
    .await;
    let report = a.shutdown_within(Duration::from_secs(2)).await;
    // the commit point stays at the stuck record (the final commit may have
    // nothing new to send when an async commit carried it already)
    assert!(report.committed.iter().all(|c| c.2 == 0), "{report:?}");
    assert!(report.closed, "{report:?}");
    // the committed offset carries the finished records above it
    let committed = committed_with_metadata(&bs, &group, &topic)[&0].clone();
    assert_eq!(committed.0, 0, "{committed:?}");
    assert!(!committed.1.is_empty(), "finished offsets in the metadata");
    // the next owner joins the group and is assigned the partition
    let (b, seen_b) = collecting(
        Listener::builder("kh-b")
            .config(cfg())
            .topics([topic.clone()])
            .ordering(Ordering::Key)
            .workers(10),
    );
    let b = b.start().unwrap();
    eventually("the stuck key processed", Duration::from_secs(30), || {
        count(&seen_b) == 20
    })
    .await;
    let mut redone: Vec<i64> = seen_b.lock().unwrap().iter().map(|r| r.1).collect();
    redone.sort();
    assert_eq!(
        redone,
        (0..200).step_by(10).collect::<Vec<_>>(),
        "only the unfinished key again"
    );
    assert_eq!(b.stats().processed, 20);
    b.shutdown().await;
}

/// Consumer per thread: three members of one group in the process on a
/// two-partition topic; one is reported idle; every record is processed once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_members_share_partitions_and_report_the_idle_one() {
    let b = bootstrap();
    let topic = new_topic(broker(), "concurrent", 2);
    let group = unique_name("concurrent-g");
    SeqProducer::new(&b).send(&topic, None, 200, |s| format!("k{s}"));
    let (builder, seen) = collecting(
        Listener::builder("members")
            .config(config(&group))
            .topics([topic.clone()]),
    );
    let members = builder.start_concurrent(3).unwrap();
    eventually("all records", Duration::from_secs(30), || {
        count(&seen) == 200
    })
    .await;
    eventually("one idle member", Duration::from_secs(20), || {
        futures::executor::block_on(members.idle_members()).len() == 1
    })
    .await;
    let snaps = members.snapshots().await.unwrap();
    assert_eq!(snaps.iter().map(|s| s.partitions.len()).sum::<usize>(), 2);
    let mut offsets: Vec<(i32, i64)> = seen.lock().unwrap().iter().map(|r| (r.0, r.1)).collect();
    offsets.sort();
    offsets.dedup();
    assert_eq!(offsets.len(), 200, "each record once");
    for r in members.shutdown().await {
        assert!(r.closed, "{r:?}");
    }
}

/// The batch handler gets batches of one partition, at most
/// `max.poll.records` long, in offset order, each record once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_handler_gets_ordered_bounded_batches() {
    let b = bootstrap();
    let topic = new_topic(broker(), "batch", 2);
    let group = unique_name("batch-g");
    SeqProducer::new(&b).send(&topic, None, 500, |s| format!("k{s}"));
    type Batches = Arc<std::sync::Mutex<Vec<Vec<(i32, i64)>>>>;
    let batches: Batches = Default::default();
    let bs = batches.clone();
    let l = Listener::builder("batch")
        .config(config(&group).with_max_poll_records(40))
        .topics([topic.clone()])
        .workers(2)
        .commit(switchyard_config::CommitPolicy::SyncPerBatch)
        .batch_handler(Utf8, Utf8, move |batch: Vec<Record<String, String>>| {
            bs.lock()
                .unwrap()
                .push(batch.iter().map(|r| (r.partition, r.offset)).collect());
            async { Ok(()) }
        })
        .start()
        .unwrap();
    eventually("all batched", Duration::from_secs(30), || {
        batches.lock().unwrap().iter().map(Vec::len).sum::<usize>() == 500
    })
    .await;
    eventually("committed", Duration::from_secs(20), || {
        committed_offsets(&b, &group, &topic).values().sum::<i64>() == 500
    })
    .await;
    let all = batches.lock().unwrap().clone();
    for batch in &all {
        assert!(
            !batch.is_empty() && batch.len() <= 40,
            "batch of {}",
            batch.len()
        );
        assert!(
            batch.iter().all(|r| r.0 == batch[0].0),
            "one partition per batch"
        );
        assert!(batch.windows(2).all(|w| w[1].1 > w[0].1), "offset order");
    }
    let mut flat: Vec<(i32, i64)> = all.concat();
    flat.sort();
    flat.dedup();
    assert_eq!(flat.len(), 500);
    l.shutdown().await;
}

/// `workers` bounds the handler calls in progress, whatever the number of
/// lanes handed to workers (many more keys than workers here): never more
/// than 4 at once, and the 4 are used.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_bound_the_handler_calls_in_progress() {
    let b = bootstrap();
    let topic = new_topic(broker(), "workers", 1);
    let group = unique_name("workers-g");
    SeqProducer::new(&b).send(&topic, Some(0), 400, |s| format!("k{}", s % 200));
    let (now, most, seen) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
    );
    let (n, m, s) = (now.clone(), most.clone(), seen.clone());
    let l = Listener::builder("workers")
        .config(config(&group))
        .topics([topic.clone()])
        .ordering(Ordering::Key)
        .workers(4)
        .handler(Utf8, Utf8, move |_r: Record<String, String>| {
            let (n, m, s) = (n.clone(), m.clone(), s.clone());
            async move {
                let running = n.fetch_add(1, AtomicOrdering::SeqCst) + 1;
                m.fetch_max(running, AtomicOrdering::SeqCst);
                tokio::time::sleep(Duration::from_millis(2)).await;
                n.fetch_sub(1, AtomicOrdering::SeqCst);
                s.fetch_add(1, AtomicOrdering::SeqCst);
                Ok(())
            }
        })
        .start()
        .unwrap();
    eventually("all handled", Duration::from_secs(30), || {
        seen.load(AtomicOrdering::SeqCst) == 400
    })
    .await;
    let most = most.load(AtomicOrdering::SeqCst);
    assert!(most <= 4, "{most} handler calls at once with 4 workers");
    assert_eq!(most, 4, "the 4 workers were used");
    l.shutdown().await;
}
