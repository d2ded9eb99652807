//! The Prometheus text format (version 0.0.4) of a [`Report`], with the
//! names and labels of kafka-lag-exporter where one exists.
//!
//! | metric | labels | value |
//! |---|---|---|
//! | `kafka_consumergroup_group_lag` | group, topic, partition | lag in records |
//! | `kafka_consumergroup_group_lag_seconds` | group, topic, partition | time lag in seconds (absent if unknown) |
//! | `kafka_consumergroup_group_offset` | group, topic, partition | committed offset |
//! | `kafka_consumergroup_group_topic_sum_lag` | group, topic | sum of the topic's lags |
//! | `kafka_consumergroup_group_sum_lag` | group | sum of the group's lags |
//! | `kafka_consumergroup_group_max_lag_seconds` | group | largest time lag of the group |
//! | `kafka_partition_latest_offset` | topic, partition | log end offset |
//! | `kafka_partition_earliest_offset` | topic, partition | log start offset |
//! | `switchyard_lag_health` | group, topic, partition, status | 1 for the partition's status, 0 for the others |
//! | `switchyard_lag_group_health` | group, status | 1 for the group's status, 0 for the others |
//! | `switchyard_lag_group_members` | group | number of members |
//! | `switchyard_lag_group_member` | group, member_id, client_id, host | 1 |
//! | `switchyard_lag_partition_owner` | group, topic, partition, member_id, client_id, host | 1 |
//! | `switchyard_lag_sample_timestamp_seconds` | | when the report was sampled |
//! | `switchyard_lag_sample_duration_seconds` | | how long the last sample took |
//! | `switchyard_lag_samples_total`, `switchyard_lag_sample_errors_total` | | counters |
//!
//! Statuses are the upper-case names of [`Status`]: OK, UNKNOWN, PAUSED,
//! DRAINING, WARN, REWIND, STALL, STOP.
//!
//! The text is written by [`PrometheusText`], the workspace's one writer of
//! the format (label values escaped by
//! [`switchyard_config::escape_label_value`]).
//!
//! ```
//! use switchyard_lag::exporter::{render, SamplingStats};
//! use switchyard_lag::report::{GroupReport, Report};
//! let report = Report { at_ms: 1_000, groups: vec![GroupReport::new("g", "Empty", 0, vec![])] };
//! let text = render(Some(&report), &SamplingStats::default());
//! assert!(text.contains("switchyard_lag_group_health{group=\"g\",status=\"OK\"} 1\n"));
//! ```

use std::collections::BTreeMap;

use switchyard_config::prometheus::{MetricKind, PrometheusText};

use crate::health::Status;
use crate::report::Report;

/// Counters of the sampling loop, exported beside the report.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SamplingStats {
    /// Samples taken successfully.
    pub samples: u64,
    /// Samples that failed.
    pub errors: u64,
    /// Duration of the last successful sample, in seconds.
    pub last_duration_secs: f64,
}

/// Render the exposition text; without a report only the sampling counters.
pub fn render(report: Option<&Report>, stats: &SamplingStats) -> String {
    let mut o = PrometheusText::new();
    o.family(
        "switchyard_lag_samples_total",
        MetricKind::Counter,
        "Samples taken successfully.",
    );
    o.sample("switchyard_lag_samples_total", &[], stats.samples as f64);
    o.family(
        "switchyard_lag_sample_errors_total",
        MetricKind::Counter,
        "Samples that failed.",
    );
    o.sample(
        "switchyard_lag_sample_errors_total",
        &[],
        stats.errors as f64,
    );
    let Some(report) = report else {
        return o.finish();
    };
    o.family(
        "switchyard_lag_sample_duration_seconds",
        MetricKind::Gauge,
        "Duration of the last sample.",
    );
    o.sample(
        "switchyard_lag_sample_duration_seconds",
        &[],
        stats.last_duration_secs,
    );
    o.family(
        "switchyard_lag_sample_timestamp_seconds",
        MetricKind::Gauge,
        "When the exported figures were sampled.",
    );
    o.sample(
        "switchyard_lag_sample_timestamp_seconds",
        &[],
        report.at_ms as f64 / 1000.0,
    );

    let parts = || report.groups.iter().flat_map(|g| g.partitions.iter());
    let gtp = |p: &crate::report::PartitionReport| -> [(&'static str, String); 3] {
        [
            ("group", p.group.clone()),
            ("topic", p.topic.clone()),
            ("partition", p.partition.to_string()),
        ]
    };
    let refs = |l: &[(&'static str, String)]| -> Vec<(&'static str, String)> { l.to_vec() };
    let emit = |o: &mut PrometheusText, name: &str, labels: Vec<(&'static str, String)>, v: f64| {
        let l: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
        o.sample(name, &l, v);
    };

    o.family(
        "kafka_consumergroup_group_lag",
        MetricKind::Gauge,
        "Group lag of a partition in records: log end offset minus committed offset.",
    );
    for p in parts() {
        if let Some(lag) = p.lag {
            emit(
                &mut o,
                "kafka_consumergroup_group_lag",
                refs(&gtp(p)),
                lag as f64,
            );
        }
    }
    o.family(
        "kafka_consumergroup_group_lag_seconds",
        MetricKind::Gauge,
        "Group time lag of a partition: age of the record at the committed offset.",
    );
    for p in parts() {
        if let Some(ms) = p.time_lag_ms {
            emit(
                &mut o,
                "kafka_consumergroup_group_lag_seconds",
                refs(&gtp(p)),
                ms as f64 / 1000.0,
            );
        }
    }
    o.family(
        "kafka_consumergroup_group_offset",
        MetricKind::Gauge,
        "Committed offset of a group on a partition.",
    );
    for p in parts() {
        if let Some(c) = p.committed {
            emit(
                &mut o,
                "kafka_consumergroup_group_offset",
                refs(&gtp(p)),
                c as f64,
            );
        }
    }
    o.family(
        "kafka_consumergroup_group_topic_sum_lag",
        MetricKind::Gauge,
        "Sum of a group's lags over a topic.",
    );
    for g in &report.groups {
        for t in &g.topics {
            emit(
                &mut o,
                "kafka_consumergroup_group_topic_sum_lag",
                vec![("group", g.group.clone()), ("topic", t.topic.clone())],
                t.lag as f64,
            );
        }
    }
    o.family(
        "kafka_consumergroup_group_sum_lag",
        MetricKind::Gauge,
        "Sum of a group's lags.",
    );
    for g in &report.groups {
        emit(
            &mut o,
            "kafka_consumergroup_group_sum_lag",
            vec![("group", g.group.clone())],
            g.lag as f64,
        );
    }
    o.family(
        "kafka_consumergroup_group_max_lag_seconds",
        MetricKind::Gauge,
        "Largest time lag of a group's partitions.",
    );
    for g in &report.groups {
        if let Some(ms) = g.max_time_lag_ms {
            emit(
                &mut o,
                "kafka_consumergroup_group_max_lag_seconds",
                vec![("group", g.group.clone())],
                ms as f64 / 1000.0,
            );
        }
    }
    // Partition offsets once per partition, whatever the number of groups.
    let mut marks: BTreeMap<(&str, i32), (i64, i64)> = BTreeMap::new();
    for p in parts() {
        marks.insert((&p.topic, p.partition), (p.log_start, p.log_end));
    }
    o.family(
        "kafka_partition_latest_offset",
        MetricKind::Gauge,
        "Log end offset of a partition.",
    );
    for ((t, p), (_, end)) in &marks {
        emit(
            &mut o,
            "kafka_partition_latest_offset",
            vec![("topic", t.to_string()), ("partition", p.to_string())],
            *end as f64,
        );
    }
    o.family(
        "kafka_partition_earliest_offset",
        MetricKind::Gauge,
        "Log start offset of a partition.",
    );
    for ((t, p), (start, _)) in &marks {
        emit(
            &mut o,
            "kafka_partition_earliest_offset",
            vec![("topic", t.to_string()), ("partition", p.to_string())],
            *start as f64,
        );
    }
    o.family(
        "switchyard_lag_health",
        MetricKind::Gauge,
        "Health of a group's partition: 1 for its status, 0 for the others.",
    );
    for p in parts() {
        for s in Status::ALL {
            let mut l = refs(&gtp(p));
            l.push(("status", s.as_str().to_string()));
            emit(
                &mut o,
                "switchyard_lag_health",
                l,
                if s == p.health { 1.0 } else { 0.0 },
            );
        }
    }
    o.family(
        "switchyard_lag_group_health",
        MetricKind::Gauge,
        "Health of a group (its most severe partition): 1 for its status, 0 for the others.",
    );
    for g in &report.groups {
        for s in Status::ALL {
            let l = vec![
                ("group", g.group.clone()),
                ("status", s.as_str().to_string()),
            ];
            emit(
                &mut o,
                "switchyard_lag_group_health",
                l,
                if s == g.health { 1.0 } else { 0.0 },
            );
        }
    }
    o.family(
        "switchyard_lag_group_members",
        MetricKind::Gauge,
        "Members of a group.",
    );
    for g in &report.groups {
        emit(
            &mut o,
            "switchyard_lag_group_members",
            vec![("group", g.group.clone())],
            g.members as f64,
        );
    }
    o.family(
        "switchyard_lag_group_member",
        MetricKind::Gauge,
        "A member of a group (always 1).",
    );
    for g in &report.groups {
        for m in &g.member_list {
            let l = vec![
                ("group", g.group.clone()),
                ("member_id", m.member_id.clone()),
                ("client_id", m.client_id.clone()),
                ("host", m.host.clone()),
            ];
            emit(&mut o, "switchyard_lag_group_member", l, 1.0);
        }
    }
    o.family(
        "switchyard_lag_partition_owner",
        MetricKind::Gauge,
        "The member holding a group's partition (always 1).",
    );
    for p in parts() {
        if let Some(w) = &p.owner {
            let mut l = refs(&gtp(p));
            l.extend([
                ("member_id", w.member_id.clone()),
                ("client_id", w.client_id.clone()),
                ("host", w.host.clone()),
            ]);
            emit(&mut o, "switchyard_lag_partition_owner", l, 1.0);
        }
    }
    o.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::offsets::Owner;
    use crate::report::{GroupReport, PartitionReport};

    fn report() -> Report {
        let p = |partition, committed: Option<i64>, health| PartitionReport {
            group: "g-1".into(),
            topic: "orders".into(),
            partition,
            log_start: 2,
            log_end: 10,
            committed,
            lag: committed.map(|c| 10 - c),
            time_lag_ms: committed.map(|_| 1500),
            owner: (partition == 0).then(|| Owner {
                member_id: "m-1".into(),
                client_id: "c".into(),
                host: "/127.0.0.1".into(),
            }),
            health,
            reason: String::new(),
        };
        Report {
            at_ms: 5_000,
            groups: vec![GroupReport::new(
                "g-1",
                "Stable",
                1,
                vec![p(0, Some(4), Status::Stall), p(1, None, Status::Unknown)],
            )],
        }
    }

    #[test]
    fn parses_back_with_the_right_series() {
        let text = render(
            Some(&report()),
            &SamplingStats {
                samples: 3,
                errors: 1,
                last_duration_secs: 0.25,
            },
        );
        let scrape =
            prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap();
        let find = |name: &str, labels: &[(&str, &str)]| -> Vec<f64> {
            scrape
                .samples
                .iter()
                .filter(|s| {
                    s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v))
                })
                .map(|s| match s.value {
                    prometheus_parse::Value::Gauge(v)
                    | prometheus_parse::Value::Counter(v)
                    | prometheus_parse::Value::Untyped(v) => v,
                    _ => f64::NAN,
                })
                .collect()
        };
        assert_eq!(
            find(
                "kafka_consumergroup_group_lag",
                &[("group", "g-1"), ("partition", "0")]
            ),
            [6.0]
        );
        assert_eq!(
            find("kafka_consumergroup_group_lag", &[("partition", "1")]),
            Vec::<f64>::new(),
            "no lag without a commit"
        );
        assert_eq!(
            find(
                "kafka_consumergroup_group_lag_seconds",
                &[("partition", "0")]
            ),
            [1.5]
        );
        assert_eq!(
            find("kafka_partition_earliest_offset", &[("topic", "orders")]),
            [2.0, 2.0]
        );
        assert_eq!(
            find(
                "switchyard_lag_health",
                &[("partition", "0"), ("status", "STALL")]
            ),
            [1.0]
        );
        assert_eq!(
            find("switchyard_lag_health", &[("partition", "0")])
                .iter()
                .sum::<f64>(),
            1.0
        );
        assert_eq!(
            find("switchyard_lag_group_health", &[("status", "STALL")]),
            [1.0]
        );
        assert_eq!(
            find(
                "switchyard_lag_partition_owner",
                &[("member_id", "m-1"), ("host", "/127.0.0.1")]
            ),
            [1.0]
        );
        assert_eq!(find("switchyard_lag_sample_errors_total", &[]), [1.0]);
    }
}
