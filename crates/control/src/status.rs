//! Actual state: what one instance reports ([`InstanceStatus`]), and the
//! fleet view over the latest status of every instance ([`fleet_view`]):
//! converged or not, and which instances are gone (no status for three
//! heartbeat intervals).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::command::{Action, BindingCommand};
use crate::targets::Override;

/// The longest heartbeat interval a status is believed (1 hour): a status
/// claiming more is gone three hours after it was made.
pub const MAX_HEARTBEAT_MS: u64 = 3_600_000;

/// One assigned partition as reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionReport {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// `running`, `paused`, `draining` or `stopped`.
    pub state: String,
    /// Records handed to workers and not finished.
    pub in_flight: usize,
    /// Last committed next offset.
    pub committed: Option<i64>,
    /// Why a stopped partition stopped, or why a draining one is not
    /// paused yet (its pause's commit failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// One listener as reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListenerReport {
    /// Listener id.
    pub name: String,
    /// Assigned partitions.
    pub partitions: Vec<PartitionReport>,
    /// Pause targets this instance holds for it (`*`, `topic`, `topic-p`).
    pub paused_targets: Vec<String>,
    /// The consumer group the listener commits under (lag monitors use it
    /// to tell an intended pause from a stalled consumer).
    #[serde(default)]
    pub group: Option<String>,
    /// In its consumer group (`None`: a standalone assignment, or an older
    /// instance that does not say).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub joined: Option<bool>,
}

/// What one instance reports on the status topic (key: instance id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceStatus {
    /// Instance id.
    pub instance: String,
    /// Slot (deployment colour).
    pub slot: String,
    /// Application.
    pub app: String,
    /// Listeners with their partitions.
    pub listeners: Vec<ListenerReport>,
    /// The desired version applied (every wanted pause acknowledged).
    pub applied_version: u64,
    /// Per-instance overrides, by listener.
    pub overrides: BTreeMap<String, Override>,
    /// Heartbeat interval: a status older than three is gone.
    pub heartbeat_ms: u64,
    /// When this status was made (ms since the epoch).
    pub timestamp_ms: i64,
    /// Why the desired state of the app cannot be read, while it cannot:
    /// the instance holds every listener paused (fail closed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unreadable: Option<String>,
}

impl InstanceStatus {
    /// Has this instance acknowledged `cmd` at `version`? Applied that
    /// version, and for a pause every covered partition paused (drained and
    /// committed) or stopped with nothing running (a stopped partition whose
    /// other lanes still run, or a drained one whose commit failed, is
    /// reported draining); for a resume none of them draining. An instance
    /// without the listener has nothing to do.
    pub fn acknowledges(&self, cmd: &BindingCommand, version: u64) -> bool {
        if self.applied_version < version {
            return false;
        }
        let target = cmd.target();
        let Some(l) = self.listeners.iter().find(|l| l.name == cmd.listener) else {
            return true;
        };
        let mut covered = l
            .partitions
            .iter()
            .filter(|p| target.matches(&p.topic, p.partition));
        match cmd.action {
            Action::Pause => covered.all(|p| p.state == "paused" || p.state == "stopped"),
            Action::Resume => covered.all(|p| p.state != "draining"),
        }
    }

    /// Why the partitions `cmd` covers are not paused yet, where the
    /// instance says (a pause whose commit failed, a stopped partition):
    /// `topic-partition state: reason`.
    pub fn pending_reasons(&self, cmd: &BindingCommand) -> Vec<String> {
        let target = cmd.target();
        self.listeners
            .iter()
            .filter(|l| l.name == cmd.listener)
            .flat_map(|l| l.partitions.iter())
            .filter(|p| target.matches(&p.topic, p.partition) && p.state != "paused")
            .filter_map(|p| {
                let r = p.reason.as_ref()?;
                Some(format!("{}-{} {}: {r}", p.topic, p.partition, p.state))
            })
            .collect()
    }

    /// Partitions in `state`, over all listeners.
    pub fn count(&self, state: &str) -> usize {
        self.partitions().filter(|p| p.state == state).count()
    }
    /// Every reported partition with its listener.
    pub fn partitions(&self) -> impl Iterator<Item = &PartitionReport> {
        self.listeners.iter().flat_map(|l| l.partitions.iter())
    }
    /// Records in flight, over all listeners. The record comes from
    /// outside: the sum saturates.
    pub fn in_flight(&self) -> usize {
        self.partitions()
            .fold(0, |sum: usize, p| sum.saturating_add(p.in_flight))
    }
    /// Is it older than three heartbeat intervals at `now_ms`? The record
    /// comes from outside: the arithmetic saturates, and a heartbeat above
    /// [`MAX_HEARTBEAT_MS`] counts as that (an absurd one would keep a
    /// stopped instance live for ever).
    pub fn is_gone(&self, now_ms: i64) -> bool {
        let beats = self.heartbeat_ms.clamp(1, MAX_HEARTBEAT_MS) as i64;
        now_ms.saturating_sub(self.timestamp_ms) > beats.saturating_mul(3)
    }
    /// Same content, ignoring the timestamp?
    pub fn same_as(&self, other: &InstanceStatus) -> bool {
        InstanceStatus {
            timestamp_ms: 0,
            ..self.clone()
        } == InstanceStatus {
            timestamp_ms: 0,
            ..other.clone()
        }
    }
}

/// One line of the fleet view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceView {
    /// Instance id.
    pub instance: String,
    /// Slot.
    pub slot: String,
    /// No status for three heartbeat intervals.
    pub gone: bool,
    /// Applied desired version.
    pub applied_version: u64,
    /// Live, applied the desired version, nothing draining.
    pub converged: bool,
    /// Listener ids.
    pub listeners: Vec<String>,
    /// Partitions running.
    pub running: usize,
    /// Partitions paused.
    pub paused: usize,
    /// Partitions draining.
    pub draining: usize,
    /// Records in flight.
    pub in_flight: usize,
    /// Listeners with an instance override.
    pub overrides: Vec<String>,
    /// Age of the status, ms.
    pub age_ms: i64,
}

/// The fleet of one application.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetView {
    /// Application.
    pub app: String,
    /// The desired version in the store.
    pub desired_version: u64,
    /// Every live instance converged.
    pub converged: bool,
    /// Instances, live and gone, by id.
    pub instances: Vec<InstanceView>,
}

/// The fleet view of `app` from the latest statuses.
pub fn fleet_view(
    statuses: &BTreeMap<String, InstanceStatus>,
    app: &str,
    desired_version: u64,
    now_ms: i64,
) -> FleetView {
    let instances: Vec<InstanceView> = statuses
        .values()
        .filter(|s| s.app == app)
        .map(|s| {
            let gone = s.is_gone(now_ms);
            InstanceView {
                instance: s.instance.clone(),
                slot: s.slot.clone(),
                gone,
                applied_version: s.applied_version,
                converged: !gone
                    && s.applied_version >= desired_version
                    && s.count("draining") == 0,
                listeners: s.listeners.iter().map(|l| l.name.clone()).collect(),
                running: s.count("running"),
                paused: s.count("paused"),
                draining: s.count("draining"),
                in_flight: s.in_flight(),
                overrides: s.overrides.keys().cloned().collect(),
                age_ms: now_ms.saturating_sub(s.timestamp_ms),
            }
        })
        .collect();
    FleetView {
        app: app.into(),
        desired_version,
        converged: instances.iter().all(|i| i.gone || i.converged),
        instances,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A status record comes from outside: absurd heartbeats and timestamps
    /// neither overflow the liveness arithmetic nor keep an instance live
    /// for ever.
    #[test]
    fn absurd_heartbeats_and_timestamps_neither_overflow_nor_live_for_ever() {
        let now = 1_763_740_000_000;
        for hb in [u64::MAX, i64::MAX as u64, u64::MAX / 3 + 1] {
            let mut s = status("x", 1, now, &["running"]);
            s.heartbeat_ms = hb;
            assert!(!s.is_gone(now + 1000), "{hb}");
            assert!(s.is_gone(now + 24 * 3_600_000), "{hb}: not live for ever");
            assert!(s.is_gone(i64::MAX));
        }
        let mut s = status("x", 1, i64::MIN, &["running"]);
        assert!(s.is_gone(now));
        s.timestamp_ms = i64::MAX;
        assert!(!s.is_gone(i64::MIN));
        let m = BTreeMap::from([("x".to_string(), status("x", 1, i64::MIN, &[]))]);
        let v = fleet_view(&m, "a", 1, i64::MAX);
        assert!(v.instances[0].gone && v.instances[0].age_ms == i64::MAX);
    }

    /// Records in flight come from the record too: absurd counts saturate
    /// instead of overflowing the sum.
    #[test]
    fn absurd_in_flight_counts_saturate() {
        let mut s = status("x", 1, 0, &["running", "running"]);
        for p in &mut s.listeners[0].partitions {
            p.in_flight = usize::MAX;
        }
        assert_eq!(s.in_flight(), usize::MAX);
        let m = BTreeMap::from([("x".to_string(), s)]);
        assert_eq!(fleet_view(&m, "a", 1, 0).instances[0].in_flight, usize::MAX);
    }

    pub(crate) fn status(id: &str, version: u64, ts: i64, states: &[&str]) -> InstanceStatus {
        InstanceStatus {
            instance: id.into(),
            slot: "blue".into(),
            app: "a".into(),
            listeners: vec![ListenerReport {
                joined: None,
                name: "l".into(),
                group: None,
                partitions: states
                    .iter()
                    .enumerate()
                    .map(|(i, s)| PartitionReport {
                        topic: "t".into(),
                        partition: i as i32,
                        state: s.to_string(),
                        in_flight: 1,
                        committed: Some(5),
                        reason: None,
                    })
                    .collect(),
                paused_targets: vec![],
            }],
            applied_version: version,
            overrides: BTreeMap::new(),
            heartbeat_ms: 100,
            timestamp_ms: ts,
            unreadable: None,
        }
    }

    fn command(action: Action) -> BindingCommand {
        BindingCommand::new("l", action)
    }

    #[test]
    fn a_pause_is_acknowledged_once_applied_and_every_covered_partition_is_paused_or_stopped() {
        let pause = command(Action::Pause);
        assert!(status("x", 3, 0, &["paused", "stopped"]).acknowledges(&pause, 3));
        assert!(
            !status("x", 2, 0, &["paused", "paused"]).acknowledges(&pause, 3),
            "older version"
        );
        assert!(!status("x", 3, 0, &["paused", "draining"]).acknowledges(&pause, 3));
        let mut other = status("x", 3, 0, &["running"]);
        other.listeners[0].name = "other".into();
        assert!(
            other.acknowledges(&pause, 3),
            "no such listener: nothing to do"
        );
        let resume = command(Action::Resume);
        assert!(status("x", 3, 0, &["running", "paused"]).acknowledges(&resume, 3));
        assert!(!status("x", 3, 0, &["running", "draining"]).acknowledges(&resume, 3));
    }

    #[test]
    fn the_reasons_of_a_pause_not_acknowledged_name_the_partition_and_what_the_instance_says() {
        let mut s = status("x", 3, 0, &["paused", "draining", "stopped"]);
        for (p, why) in s.listeners[0].partitions.iter_mut().zip([
            "-",
            "commit on pause failed: timed out",
            "handler failed",
        ]) {
            p.reason = Some(why.to_string());
        }
        assert_eq!(
            s.pending_reasons(&command(Action::Pause)),
            vec![
                "t-1 draining: commit on pause failed: timed out".to_string(),
                "t-2 stopped: handler failed".to_string()
            ]
        );
    }

    #[test]
    fn stale_instances_are_gone_and_do_not_block_convergence() {
        let mut m = BTreeMap::new();
        m.insert("i1".into(), status("i1", 3, 1000, &["paused", "running"]));
        m.insert("i2".into(), status("i2", 2, 650, &["running"]));
        let v = fleet_view(&m, "a", 3, 1000);
        assert!(v.converged, "{v:?}");
        assert!(v.instances[1].gone);
        assert_eq!(
            (
                v.instances[0].paused,
                v.instances[0].running,
                v.instances[0].in_flight
            ),
            (1, 1, 2)
        );
        m.insert("i2".into(), status("i2", 2, 750, &["running"]));
        let v = fleet_view(&m, "a", 3, 1000);
        assert!(!v.converged);
        m.insert("i2".into(), status("i2", 3, 990, &["draining"]));
        assert!(!fleet_view(&m, "a", 3, 1000).converged);
        assert!(fleet_view(&m, "other", 3, 1000).instances.is_empty());
        let a = status("x", 1, 1, &[]);
        assert!(a.same_as(&status("x", 1, 2, &[])));
    }
}
