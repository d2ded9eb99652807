//! Checks of a phase's wait that end it before its deadline, or say who it
//! waited for when it ends there: a moving partition stopped by the failure
//! policy ([`stopped`], [`stopped_reason`]: it never reports `paused` or
//! `running`, so the wait would only time out), and the instances of a slot
//! that did not acknowledge a freeze ([`unacknowledged`]).

use std::collections::BTreeMap;

use switchyard_control::status::InstanceStatus;

use crate::kafka::Tp;
use crate::plan::{self, key, Move};

/// A moving partition that the failure policy stopped on an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stopped {
    /// The instance that holds it.
    pub instance: String,
    /// The partition.
    pub tp: Tp,
    /// Its committed offset: the record it stopped at.
    pub committed: Option<i64>,
    /// Why it stopped, as the instance reports it.
    pub reason: Option<String>,
}

/// The moving partitions of `m` reported `stopped` by a live instance of
/// `slot`.
pub fn stopped(
    statuses: &BTreeMap<String, InstanceStatus>,
    app: &str,
    m: &Move,
    slot: &str,
    now_ms: i64,
) -> Vec<Stopped> {
    let mut out = Vec::new();
    for s in plan::live(statuses, app, slot, now_ms) {
        for l in s.listeners.iter().filter(|l| l.name == m.listener) {
            for p in &l.partitions {
                let tp = (p.topic.clone(), p.partition);
                if p.state == "stopped" && m.partitions.contains(&tp) {
                    out.push(Stopped {
                        instance: s.instance.clone(),
                        tp,
                        committed: p.committed,
                        reason: p.reason.clone(),
                    });
                }
            }
        }
    }
    out
}

/// Why a phase fails at once on `stopped` partitions (not empty): each
/// partition, its instance, its offset and reason, and the way out.
pub fn stopped_reason(label: &str, listener: &str, stopped: &[Stopped]) -> String {
    let each: Vec<String> = stopped
        .iter()
        .map(|s| {
            format!(
                "partition {} is stopped by the failure policy on {} at offset {}{}",
                key(&s.tp),
                s.instance,
                s.committed
                    .map_or_else(|| "unknown".to_string(), |o| o.to_string()),
                s.reason
                    .as_ref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default()
            )
        })
        .collect();
    let (topic, partition) = &stopped[0].tp;
    format!(
        "{label}: {}: a stopped partition is neither drained nor run until it is resumed. \
         Retry its record with `switchyard ctl pause --listener {listener} --topic {topic} --partition {partition}` \
         then `switchyard ctl resume --listener {listener} --topic {topic} --partition {partition}`, \
         or skip it from the application (`ListenerHandle::resume_skipping`), then run the deploy command again",
        each.join("; ")
    )
}

/// The instances of `m.from` with a status, live or not, that did not
/// acknowledge `version`; a stale one says for how long it has been silent.
pub fn unacknowledged(
    statuses: &BTreeMap<String, InstanceStatus>,
    app: &str,
    m: &Move,
    version: u64,
    now_ms: i64,
) -> Vec<String> {
    let acked = plan::freeze_acked(statuses, app, m, version);
    statuses
        .values()
        .filter(|s| s.app == app && s.slot == m.from && !acked.contains(&s.instance))
        .map(|s| {
            if s.is_gone(now_ms) {
                format!(
                    "{} (no status for {} ms)",
                    s.instance,
                    now_ms - s.timestamp_ms
                )
            } else {
                s.instance.clone()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_control::status::{ListenerReport, PartitionReport};

    fn part(p: i32, state: &str, committed: i64, reason: Option<&str>) -> PartitionReport {
        PartitionReport {
            topic: "t".into(),
            partition: p,
            state: state.into(),
            in_flight: 0,
            committed: Some(committed),
            reason: reason.map(String::from),
        }
    }

    fn st(id: &str, v: u64, at: i64, parts: Vec<PartitionReport>) -> InstanceStatus {
        InstanceStatus {
            instance: id.into(),
            slot: "blue".into(),
            app: "a".into(),
            listeners: vec![ListenerReport {
                name: "l".into(),
                joined: None,
                group: Some("g-blue".into()),
                paused_targets: vec![],
                partitions: parts,
            }],
            applied_version: v,
            overrides: Default::default(),
            heartbeat_ms: 200,
            timestamp_ms: at,
            unreadable: None,
        }
    }

    fn mv(parts: &[i32]) -> Move {
        Move {
            listener: "l".into(),
            from: "blue".into(),
            to: "green".into(),
            partitions: parts.iter().map(|p| ("t".to_string(), *p)).collect(),
            meta_before: Default::default(),
            meta_after: Default::default(),
        }
    }

    #[test]
    fn a_stopped_moving_partition_is_found_with_its_offset_and_the_way_out() {
        let mut all = BTreeMap::new();
        all.insert(
            "b1".to_string(),
            st(
                "b1",
                3,
                10_000,
                vec![
                    part(0, "stopped", 5, Some("handler failed 1 times at offset 5")),
                    part(1, "paused", 9, None),
                    part(2, "stopped", 7, None),
                ],
            ),
        );
        // partition 2 does not move: not a reason
        let found = stopped(&all, "a", &mv(&[0, 1]), "blue", 10_100);
        assert_eq!(found.len(), 1);
        assert_eq!((found[0].tp.1, found[0].committed), (0, Some(5)));
        let r = stopped_reason("phase 2 (freeze)", "l", &found);
        assert!(
            r.starts_with("phase 2 (freeze): partition t-0 is stopped"),
            "{r}"
        );
        assert!(r.contains("on b1 at offset 5 (handler failed"), "{r}");
        assert!(
            r.contains("switchyard ctl resume --listener l --topic t --partition 0"),
            "{r}"
        );
        // a gone instance's stale report is no reason either
        assert!(stopped(&all, "a", &mv(&[0]), "blue", 20_000).is_empty());
        assert!(stopped(&all, "a", &mv(&[0]), "green", 10_100).is_empty());
    }

    #[test]
    fn the_instances_that_did_not_acknowledge_are_named_stale_or_not() {
        let mut all = BTreeMap::new();
        all.insert(
            "b1".to_string(),
            st("b1", 4, 10_000, vec![part(0, "paused", 5, None)]),
        );
        all.insert(
            "b2".to_string(),
            st("b2", 3, 10_000, vec![part(1, "running", 5, None)]),
        );
        all.insert(
            "b3".to_string(),
            st("b3", 2, 5_000, vec![part(2, "running", 5, None)]),
        );
        let m = mv(&[0, 1, 2]);
        assert_eq!(
            unacknowledged(&all, "a", &m, 4, 10_100),
            ["b2", "b3 (no status for 5100 ms)"]
        );
    }
}
