//! A lag report: per partition figures and health, totals per topic and per
//! group, rendered as an aligned table ([`Report::table`]) or JSON
//! ([`Report::to_json`]).
//!
//! Totals: a topic's and a group's lag are the sums of their partitions'
//! lags (partitions without a committed offset count 0); their time lag is
//! the largest of their partitions'; a group's health is the most severe of
//! its partitions' ([`crate::health::group_status`]).
//!
//! ```
//! use switchyard_lag::report::{GroupReport, PartitionReport, Report};
//! use switchyard_lag::Status;
//!
//! let p = |partition, lag| PartitionReport {
//!     group: "g".into(), topic: "orders".into(), partition, log_start: 0, log_end: 100,
//!     committed: Some(100 - lag), lag: Some(lag), time_lag_ms: Some(lag * 10),
//!     owner: None, health: Status::Ok, reason: String::new(),
//! };
//! let g = GroupReport::new("g", "Empty", 0, vec![p(0, 5), p(1, 7)]);
//! assert_eq!((g.lag, g.max_time_lag_ms), (12, Some(70)));
//! let report = Report { at_ms: 0, groups: vec![g] };
//! assert!(report.table().contains("orders"));
//! assert_eq!(report.to_json()["groups"][0]["topics"][0]["lag"], 12);
//! ```

use std::collections::BTreeMap;

use serde::Serialize;

use crate::health::{group_status, Status};
use crate::offsets::Owner;

/// One partition of one group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartitionReport {
    /// Group id.
    pub group: String,
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Log start offset.
    pub log_start: i64,
    /// Log end offset.
    pub log_end: i64,
    /// Committed offset, if any.
    pub committed: Option<i64>,
    /// `max(0, log_end - committed)`, if committed.
    pub lag: Option<i64>,
    /// Time lag in ms, if known.
    pub time_lag_ms: Option<i64>,
    /// The member holding the partition.
    pub owner: Option<Owner>,
    /// Health status.
    pub health: Status,
    /// Why.
    pub reason: String,
}

/// Totals of one topic within one group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TopicReport {
    /// Topic.
    pub topic: String,
    /// Number of partitions reported.
    pub partitions: usize,
    /// Sum of the partitions' lags.
    pub lag: i64,
    /// Largest time lag of the partitions, in ms.
    pub max_time_lag_ms: Option<i64>,
    /// Most severe partition status.
    pub health: Status,
}

/// One group: totals, per topic totals and partitions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupReport {
    /// Group id.
    pub group: String,
    /// Group state from the broker.
    pub state: String,
    /// Number of members.
    pub members: usize,
    /// The members, when known (set by the sampler; empty from [`GroupReport::new`]).
    pub member_list: Vec<Owner>,
    /// Sum of the partitions' lags.
    pub lag: i64,
    /// Largest time lag of the partitions, in ms.
    pub max_time_lag_ms: Option<i64>,
    /// Most severe partition status.
    pub health: Status,
    /// Totals per topic, sorted by topic.
    pub topics: Vec<TopicReport>,
    /// Partitions, sorted by topic and partition.
    pub partitions: Vec<PartitionReport>,
}

impl GroupReport {
    /// Aggregate partitions into a group report.
    pub fn new(
        group: &str,
        state: &str,
        members: usize,
        mut partitions: Vec<PartitionReport>,
    ) -> GroupReport {
        partitions.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        let mut by_topic: BTreeMap<&str, Vec<&PartitionReport>> = BTreeMap::new();
        for p in &partitions {
            by_topic.entry(&p.topic).or_default().push(p);
        }
        let topics = by_topic
            .into_iter()
            .map(|(t, ps)| TopicReport {
                topic: t.to_string(),
                partitions: ps.len(),
                lag: ps.iter().filter_map(|p| p.lag).sum(),
                max_time_lag_ms: ps.iter().filter_map(|p| p.time_lag_ms).max(),
                health: group_status(ps.iter().map(|p| p.health)),
            })
            .collect();
        GroupReport {
            group: group.to_string(),
            state: state.to_string(),
            members,
            member_list: Vec::new(),
            lag: partitions.iter().filter_map(|p| p.lag).sum(),
            max_time_lag_ms: partitions.iter().filter_map(|p| p.time_lag_ms).max(),
            health: group_status(partitions.iter().map(|p| p.health)),
            topics,
            partitions,
        }
    }

    /// The report of one partition.
    pub fn partition(&self, topic: &str, partition: i32) -> Option<&PartitionReport> {
        self.partitions
            .iter()
            .find(|p| p.topic == topic && p.partition == partition)
    }
}

/// The result of one sample of some groups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// When the sample was taken, ms since the epoch.
    pub at_ms: i64,
    /// Groups, in the order asked for.
    pub groups: Vec<GroupReport>,
}

impl Report {
    /// The report of one group.
    pub fn group(&self, group: &str) -> Option<&GroupReport> {
        self.groups.iter().find(|g| g.group == group)
    }

    /// The report as JSON: `{"at_ms", "groups": [{group, state, members, lag, max_time_lag_ms, health, topics, partitions}]}`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }

    /// An aligned table: one block per group (a summary line, then one row
    /// per partition and one total row per topic).
    pub fn table(&self) -> String {
        let mut out = String::new();
        for g in &self.groups {
            out.push_str(&format!(
                "GROUP {} ({}, {} member{}): lag {}, time lag {}, health {}\n",
                g.group,
                g.state,
                g.members,
                if g.members == 1 { "" } else { "s" },
                g.lag,
                fmt_ms(g.max_time_lag_ms),
                g.health
            ));
            if !g.member_list.is_empty() && g.partitions.iter().all(|p| p.owner.is_none()) {
                let m: Vec<String> = g.member_list.iter().map(describe_member).collect();
                out.push_str(&format!(
                    "MEMBERS (assignments unknown): {}\n",
                    m.join(", ")
                ));
            }
            let header = [
                "TOPIC",
                "PARTITION",
                "LOG-START",
                "LOG-END",
                "COMMITTED",
                "LAG",
                "TIME-LAG",
                "HEALTH",
                "MEMBER",
                "HOST",
                "CLIENT",
            ];
            let mut rows: Vec<Vec<String>> = Vec::new();
            for t in &g.topics {
                for p in g.partitions.iter().filter(|p| p.topic == t.topic) {
                    let o = p.owner.as_ref();
                    rows.push(vec![
                        p.topic.clone(),
                        p.partition.to_string(),
                        p.log_start.to_string(),
                        p.log_end.to_string(),
                        p.committed.map_or("-".into(), |c| c.to_string()),
                        p.lag.map_or("-".into(), |l| l.to_string()),
                        fmt_ms(p.time_lag_ms),
                        p.health.to_string(),
                        o.map_or("-".into(), |o| o.member_id.clone()),
                        o.map_or("-".into(), |o| o.host.clone()),
                        o.map_or("-".into(), |o| o.client_id.clone()),
                    ]);
                }
                if t.partitions > 1 {
                    let mut total = vec![String::new(); header.len()];
                    total[0] = t.topic.clone();
                    total[1] = "total".into();
                    total[5] = t.lag.to_string();
                    total[6] = fmt_ms(t.max_time_lag_ms);
                    total[7] = t.health.to_string();
                    rows.push(total);
                }
            }
            if rows.is_empty() {
                out.push_str("  (no committed offsets)\n\n");
                continue;
            }
            // Numbers right-aligned, words left-aligned.
            let right = [
                false, true, true, true, true, true, true, false, false, false, false,
            ];
            out.push_str(&render_table(&header, &rows, &right));
            out.push('\n');
        }
        out
    }
}

/// `id` or `id (client, host)`.
fn describe_member(m: &Owner) -> String {
    if m.client_id.is_empty() && m.host.is_empty() {
        m.member_id.clone()
    } else {
        format!("{} ({}, {})", m.member_id, m.client_id, m.host)
    }
}

/// `1.5s`, `2m03s`, `1h02m`, or `-`.
///
/// ```
/// use switchyard_lag::report::fmt_ms;
/// assert_eq!(fmt_ms(Some(1_500)), "1.5s");
/// assert_eq!(fmt_ms(Some(123_000)), "2m03s");
/// assert_eq!(fmt_ms(None), "-");
/// ```
pub fn fmt_ms(ms: Option<i64>) -> String {
    match ms {
        None => "-".into(),
        Some(ms) if ms < 60_000 => format!("{:.1}s", ms as f64 / 1000.0),
        Some(ms) if ms < 3_600_000 => format!("{}m{:02}s", ms / 60_000, ms % 60_000 / 1000),
        Some(ms) => format!("{}h{:02}m", ms / 3_600_000, ms % 3_600_000 / 60_000),
    }
}

/// Rows under a header, each column as wide as its widest cell, two spaces
/// apart (comfy-table, without borders), so long pod names stay aligned.
/// Every table of the CLI is printed by it.
///
/// ```
/// use switchyard_lag::report::render_table;
/// let t = render_table(&["A", "NUM"], &[vec!["xyz".into(), "1".into()]], &[false, true]);
/// assert_eq!(t, "A    NUM\nxyz    1\n");
/// ```
pub fn render_table(header: &[&str], rows: &[Vec<String>], right: &[bool]) -> String {
    use comfy_table::{presets::NOTHING, CellAlignment, ContentArrangement, Table};
    let mut t = Table::new();
    t.load_preset(NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(header.to_vec());
    for r in rows {
        t.add_row(r.clone());
    }
    for (i, column) in t.column_iter_mut().enumerate() {
        column.set_padding((0, 2));
        if right.get(i).copied().unwrap_or(false) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
    let mut out = String::new();
    for line in t.lines() {
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    /// Long pod names widen their column: every column starts at the same
    /// place on every line.
    #[test]
    fn tables_stay_aligned_with_long_pod_names() {
        let rows = vec![
            vec![
                "orders-blue-7d9f8c6b5-abcde-0123456789".to_string(),
                "12".to_string(),
                "blue".to_string(),
            ],
            vec!["p".to_string(), "3456789".to_string(), "green".to_string()],
        ];
        let t = render_table(&["INSTANCE", "LAG", "SLOT"], &rows, &[false, true, false]);
        let lines: Vec<&str> = t.lines().collect();
        let slot_at: Vec<usize> = lines.iter().map(|l| l.rfind(' ').unwrap() + 1).collect();
        assert!(slot_at.windows(2).all(|w| w[0] == w[1]), "{t}");
        let lag_end: Vec<usize> = lines
            .iter()
            .map(|l| slot_at[0] - 2 - l[..slot_at[0] - 2].trim_end().len())
            .collect();
        assert!(lag_end.iter().all(|n| *n == 0), "right-aligned LAG:\n{t}");
    }

    use super::*;

    fn part(topic: &str, partition: i32, lag: Option<i64>, health: Status) -> PartitionReport {
        PartitionReport {
            group: "g".into(),
            topic: topic.into(),
            partition,
            log_start: 0,
            log_end: 50,
            committed: lag.map(|l| 50 - l),
            lag,
            time_lag_ms: lag.map(|l| l * 100),
            owner: None,
            health,
            reason: String::new(),
        }
    }

    #[test]
    fn totals_per_topic_and_group() {
        let g = GroupReport::new(
            "g",
            "Stable",
            2,
            vec![
                part("b", 1, Some(4), Status::Ok),
                part("a", 0, Some(1), Status::Warn),
                part("b", 0, None, Status::Unknown),
                part("a", 1, Some(2), Status::Ok),
            ],
        );
        assert_eq!(g.lag, 7);
        assert_eq!(g.health, Status::Warn);
        assert_eq!(
            g.topics
                .iter()
                .map(|t| (t.topic.as_str(), t.lag, t.health))
                .collect::<Vec<_>>(),
            [("a", 3, Status::Warn), ("b", 4, Status::Unknown)]
        );
        assert_eq!(g.partitions[0].topic, "a", "sorted");
        assert_eq!(g.max_time_lag_ms, Some(400));
    }

    #[test]
    fn table_columns_line_up() {
        let g = GroupReport::new(
            "g",
            "Empty",
            0,
            vec![
                part("orders", 0, Some(5), Status::Ok),
                part("orders", 10, Some(12345), Status::Stop),
            ],
        );
        let table = Report {
            at_ms: 0,
            groups: vec![g],
        }
        .table();
        let lines: Vec<&str> = table.lines().skip(1).filter(|l| !l.is_empty()).collect();
        assert!(lines[0].starts_with("TOPIC"));
        // Every row has its HEALTH cell start at the same column as the header.
        let at = lines[0].find("HEALTH").unwrap();
        for l in &lines[1..] {
            assert!(
                ["OK", "STOP"].iter().any(|s| l[at..].starts_with(s)),
                "{l:?}"
            );
        }
    }
}
