//! At-least-once delivery across crashes (SIGKILL) and clean rebalances
//! (2 -> 3 -> 2 consumers, eager and cooperative-sticky under the classic
//! protocol, and KIP-848's consumer protocol): I2 always, and no duplicates
//! when members come and go cleanly. The crash test runs under both group
//! protocols (`_classic`, `_consumer`).

use std::time::Duration;

use super::common::*;

crate::protocol_tests!(sigkill_mid_stream:
    sigkill_mid_stream_loses_nothing_and_duplicates_only_uncommitted_records_classic,
    sigkill_mid_stream_loses_nothing_and_duplicates_only_uncommitted_records_consumer);

fn sigkill_mid_stream(protocol: GroupProtocol) {
    let b = bootstrap();
    let proto = protocol_args(protocol);
    let topic = new_topic(broker(), "kill", 4);
    let group = unique_name("kill-g");
    let mut producer = SeqProducer::new(&b);
    producer.send(&topic, None, 3000, |s| format!("k{}", s % 50));
    let log = log_path("kill");

    let mut a = probe(
        "a",
        &group,
        &topic,
        &log,
        &["--delay-ms", "2", "--workers", "4", proto[0], proto[1]],
    );
    wait_until("a processed 500 records", Duration::from_secs(60), || {
        ProcessedLog::read(&log).count(&topic) >= 500
    });
    a.kill();
    let committed_at_crash = committed_offsets(&b, &group, &topic);
    let processed_by_a = ProcessedLog::read(&log).count(&topic);
    assert!(
        processed_by_a < 3000,
        "a finished before the kill; the test proves nothing"
    );

    let _b = probe(
        "b",
        &group,
        &topic,
        &log,
        &["--workers", "4", proto[0], proto[1]],
    );
    let end = end_offsets(&b, &topic);
    wait_until("every offset processed", Duration::from_secs(90), || {
        ProcessedLog::read(&log)
            .check_no_gaps(&topic, &zeros(&end), &end)
            .is_ok()
    });
    let all = ProcessedLog::read(&log);
    all.check_no_gaps(&topic, &zeros(&end), &end).unwrap();
    for ((p, o), who) in all.duplicates(&topic) {
        let c = committed_at_crash.get(&p).copied().unwrap_or(-1).max(0);
        assert!(
            o >= c,
            "offset {p}/{o} processed twice ({who:?}) although it was committed ({c}) before the crash"
        );
    }
}

/// `assignment`: the probe flags that choose the protocol and assignor.
fn rebalance_round_trip(assignment: [&str; 2]) {
    let b = bootstrap();
    let topic = new_topic(broker(), &format!("rebal-{}", assignment[1]), 6);
    let group = unique_name("rebal-g");
    let log = log_path("rebal");
    let producer = SteadyProducer::start(&b, &topic, 6, 400);
    let args = [
        assignment[0],
        assignment[1],
        "--delay-ms",
        "3",
        "--workers",
        "3",
    ];
    let mut c1 = probe("c1", &group, &topic, &log, &args);
    let mut c2 = probe("c2", &group, &topic, &log, &args);
    let grows = |n: usize| {
        let before = ProcessedLog::read(&log).count(&topic);
        wait_until("records keep flowing", Duration::from_secs(60), || {
            ProcessedLog::read(&log).count(&topic) >= before + n
        });
    };
    grows(300);
    let mut c3 = probe("c3", &group, &topic, &log, &args);
    c3.wait_for_line(
        |l| l.starts_with("ASSIGNED") && l.len() > "ASSIGNED ".len(),
        Duration::from_secs(30),
    )
    .expect("c3 gets partitions");
    grows(300);
    c3.terminate();
    assert!(
        c3.wait_exit(Duration::from_secs(15)).is_some(),
        "c3 exits on SIGTERM"
    );
    grows(300);
    c1.terminate();
    assert!(c1.wait_exit(Duration::from_secs(15)).is_some());
    grows(200);
    let sent = producer.stop();
    assert!(sent > 1000);
    let end = end_offsets(&b, &topic);
    wait_until("all records processed", Duration::from_secs(60), || {
        ProcessedLog::read(&log)
            .check_no_gaps(&topic, &zeros(&end), &end)
            .is_ok()
    });
    c2.terminate();
    c2.wait_exit(Duration::from_secs(15));
    let all = ProcessedLog::read(&log);
    assert_eq!(
        all.duplicates(&topic),
        vec![],
        "a clean rebalance processes nothing twice"
    );
    assert_eq!(all.count(&topic) as i64, end.values().sum::<i64>());
}

#[test]
fn eager_rebalances_two_three_two_lose_and_duplicate_nothing() {
    rebalance_round_trip(["--strategy", "range"]);
}

#[test]
fn cooperative_rebalances_two_three_two_lose_and_duplicate_nothing() {
    rebalance_round_trip(["--strategy", "cooperative-sticky"]);
}

/// KIP-848: the broker assigns, incrementally.
#[test]
fn consumer_protocol_rebalances_two_three_two_lose_and_duplicate_nothing() {
    rebalance_round_trip(protocol_args(GroupProtocol::Consumer));
}
