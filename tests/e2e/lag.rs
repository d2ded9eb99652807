//! `switchyard lag` from outside: figures per partition checked against what
//! each test produced and committed (with and without group members), each
//! health state reached by feeding the evaluator real samples taken from the
//! broker over time, the CLI's JSON, and `lag serve`'s /metrics parsed as
//! Prometheus text.
//!
//! Submodules: [`health`] (one scenario per health state), [`cli`] (the
//! `switchyard lag` command), [`serve`] (`lag serve`'s /metrics).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use switchyard_lag::{Report, Sampler, SamplerConfig, Status, TimeLagMode, WindowConfig};

use super::common::*;

mod cli;
mod health;
mod serve;

/// Sampling interval of the health tests.
const EVERY: Duration = Duration::from_millis(200);

/// A short window so that decisions come within seconds: 1.5 s, at least 3 samples.
fn short_window() -> WindowConfig {
    WindowConfig {
        span: Duration::from_millis(1500),
        min_samples: 3,
    }
}

fn sampler(group: &str, time_lag: TimeLagMode) -> Sampler {
    let config = SamplerConfig::new(bootstrap(), [group])
        .with_window(short_window())
        .with_time_lag(time_lag);
    Sampler::new(config).expect("sampler")
}

/// Commit offsets for `group` from outside, with a consumer that never joins it.
fn commit(group: &str, topic: &str, offsets: &[(i32, i64)]) {
    let c: BaseConsumer = client_config(&bootstrap())
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for (p, o) in offsets {
        tpl.add_partition_offset(topic, *p, Offset::Offset(*o))
            .unwrap();
    }
    c.commit(&tpl, CommitMode::Sync).unwrap();
}

/// Produce `n` records to one partition.
fn produce(topic: &str, partition: i32, n: u64) {
    SeqProducer::new(&bootstrap()).send(topic, Some(partition), n, |s| s.to_string());
}

/// (log_start, log_end, committed, lag) of every reported partition of `topic` in `group`.
fn figures(
    report: &Report,
    group: &str,
    topic: &str,
) -> BTreeMap<i32, (i64, i64, Option<i64>, Option<i64>)> {
    let g = report.group(group).expect("group in report");
    g.partitions
        .iter()
        .filter(|p| p.topic == topic)
        .map(|p| (p.partition, (p.log_start, p.log_end, p.committed, p.lag)))
        .collect()
}

fn status(report: &Report, group: &str, topic: &str, partition: i32) -> Status {
    report
        .group(group)
        .and_then(|g| g.partition(topic, partition))
        .map_or(Status::Unknown, |p| p.health)
}

/// Sample every [`EVERY`] until `cond` holds on a report (deadline 20 s); returns that report.
fn sample_until(s: &mut Sampler, what: &str, mut cond: impl FnMut(&Report) -> bool) -> Report {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = s.sample().expect("sample");
        if cond(&r) {
            return r;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; last report:\n{}",
            r.table()
        );
        std::thread::sleep(EVERY);
    }
}

/// The same, from async tests that run listeners (the sampler blocks on Kafka requests).
fn sample_until_blocking(s: &mut Sampler, what: &str, cond: impl FnMut(&Report) -> bool) -> Report {
    tokio::task::block_in_place(|| sample_until(s, what, cond))
}

#[test]
fn figures_match_what_was_produced_and_committed_with_no_consumer() {
    let topic = new_topic(broker(), "lag-figures", 3);
    let other = new_topic(broker(), "lag-untouched", 1);
    let group = unique_name("lag-figures-g");
    let producer = SeqProducer::new(&bootstrap());
    // Records one second apart, starting two minutes ago: the age of each record is known.
    let base = switchyard_lag::now_ms() - 120_000;
    for (p, n) in [(0, 10i64), (1, 20), (2, 30)] {
        for i in 0..n {
            producer.send_raw(
                &topic,
                Some(p),
                Some(b"k"),
                i.to_string().as_bytes(),
                Some(base + i * 1000),
            );
        }
    }
    produce(&other, 0, 4);
    // Partition 1 never committed: left out. Partition 2 fully consumed.
    commit(&group, &topic, &[(0, 4), (2, 30)]);

    let mut s = sampler(&group, TimeLagMode::Read);
    let r = s.sample().unwrap();
    let g = r.group(&group).unwrap();
    assert_eq!((g.state.as_str(), g.members), ("Empty", 0));
    assert_eq!(
        figures(&r, &group, &topic),
        BTreeMap::from([
            (0, (0, 10, Some(4), Some(6))),
            (2, (0, 30, Some(30), Some(0)))
        ])
    );
    assert!(
        g.partitions.iter().all(|p| p.topic == topic),
        "only partitions with a commit: {:?}",
        g.partitions
    );
    assert!(g.partitions.iter().all(|p| p.owner.is_none()));
    let p0 = g.partition(&topic, 0).unwrap();
    assert_eq!(
        p0.time_lag_ms,
        Some(r.at_ms - (base + 4000)),
        "age of the record at the committed offset 4"
    );
    assert_eq!(
        g.partition(&topic, 2).unwrap().time_lag_ms,
        Some(0),
        "no lag, no time lag"
    );
    assert_eq!((g.lag, g.topics.len(), g.topics[0].lag), (6, 1, 6));
    assert_eq!(g.max_time_lag_ms, p0.time_lag_ms);
    assert_eq!(
        p0.health,
        Status::Unknown,
        "one sample with lag: not enough evidence"
    );

    // The estimate needs no reads: with one sample of log ends, at least the age of that sample.
    let mut est = sampler(&group, TimeLagMode::Estimate);
    let r = est.sample().unwrap();
    assert_eq!(
        r.group(&group)
            .unwrap()
            .partition(&topic, 0)
            .unwrap()
            .time_lag_ms,
        Some(0)
    );
}
