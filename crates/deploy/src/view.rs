//! `deploy status`: per slot, its live instances, what it owns or holds and
//! its lag, read from the desired state, the status topic and the groups'
//! offsets. Serialised as `deploy status --json` prints it.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use switchyard_control::model::now_ms;
use switchyard_control::status::InstanceStatus;
use switchyard_control::targets::NOBODY;
use switchyard_control::DesiredState;

use crate::bookkeeping::SHARED;
use crate::command::Strategy;
use crate::driver::Driver;
use crate::error::Result;
use crate::kafka::{self, Tp};
use crate::plan;
use crate::strategy::shared;

/// The deployment of one listener.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Status {
    /// Separate groups.
    Separate(SeparateStatus),
    /// One shared group.
    Shared(SharedStatus),
}

/// A separate-groups deployment (fields in the order `--json` prints them).
#[derive(Debug, Clone, Serialize)]
pub struct SeparateStatus {
    /// Application.
    pub app: String,
    /// `deploy` bookkeeping of the desired state.
    pub deploy: BTreeMap<String, String>,
    /// Partitions owned by nobody (frozen by a handoff), `topic-partition`.
    pub frozen: Vec<String>,
    /// Every slot that owns something or has a live instance.
    pub slots: Vec<SlotView>,
    /// The desired state's version.
    pub version: u64,
}

/// One slot of a separate-groups deployment.
#[derive(Debug, Clone, Serialize)]
pub struct SlotView {
    /// Slot.
    pub slot: String,
    /// Its group.
    pub group: String,
    /// Its live instances, `instance(vN)` with the version each applied.
    pub instances: Vec<String>,
    /// The partitions it owns, `topic-partition`.
    pub owns: Vec<String>,
    /// Lag of the slot's group on the partitions it owns.
    pub lag: i64,
    /// The group's committed offsets, `topic-partition` to offset.
    pub committed: BTreeMap<String, i64>,
}

/// A shared-group deployment (fields in the order `--json` prints them).
#[derive(Debug, Clone, Serialize)]
pub struct SharedStatus {
    /// Application.
    pub app: String,
    /// `deploy` bookkeeping of the desired state.
    pub deploy: BTreeMap<String, String>,
    /// The group.
    pub group: String,
    /// The group's lag on every partition of the listener's topics.
    pub lag: i64,
    /// Every joined slot and every slot with a live instance.
    pub slots: Vec<SharedSlotView>,
    /// Always `shared`.
    pub strategy: &'static str,
    /// The desired state's version.
    pub version: u64,
}

/// One slot of a shared-group deployment.
#[derive(Debug, Clone, Serialize)]
pub struct SharedSlotView {
    /// Partitions its live instances hold, `topic-partition`.
    pub holds: Vec<String>,
    /// Its live instances, `instance(vN)`.
    pub instances: Vec<String>,
    /// Is the slot joined (its instances members of the group)?
    pub joined: bool,
    /// Slot.
    pub slot: String,
}

impl Driver {
    /// The deployment of `listener` now.
    pub fn status(&self, listener: &str) -> Result<Status> {
        let s = self.read()?;
        let now = now_ms();
        let live: Vec<InstanceStatus> = self
            .tail
            .latest()
            .into_values()
            .filter(|x| x.app == self.app && !x.is_gone(now))
            .collect();
        Ok(match Driver::strategy(&s) {
            Strategy::Shared => Status::Shared(self.shared_status(listener, &s, &live)?),
            Strategy::Separate => Status::Separate(self.separate_status(listener, &s, &live)?),
        })
    }

    fn separate_status(
        &self,
        listener: &str,
        s: &DesiredState,
        live: &[InstanceStatus],
    ) -> Result<SeparateStatus> {
        let owners = plan::owners(s, listener);
        let mut slots: BTreeSet<String> = owners
            .values()
            .filter(|v| v.as_str() != NOBODY)
            .cloned()
            .collect();
        slots.extend(live.iter().map(|x| x.slot.clone()));
        let tps: Vec<Tp> = owners.keys().cloned().collect();
        let ends = kafka::end_offsets(&self.connection, &tps)?;
        let mut views = Vec::new();
        for slot in &slots {
            let group = self.group_of(slot);
            let committed = kafka::committed(&self.connection, &group, &tps)?;
            let owns: Vec<Tp> = owners
                .iter()
                .filter(|(_, v)| *v == slot)
                .map(|(k, _)| k.clone())
                .collect();
            views.push(SlotView {
                slot: slot.clone(),
                group,
                instances: instances(live, slot),
                owns: owns.iter().map(plan::key).collect(),
                lag: lag(&owns, &ends, &committed),
                committed: committed.iter().map(|(k, v)| (plan::key(k), *v)).collect(),
            });
        }
        Ok(SeparateStatus {
            app: self.app.clone(),
            deploy: s.deploy.clone(),
            frozen: owners
                .iter()
                .filter(|(_, v)| v.as_str() == NOBODY)
                .map(|(k, _)| plan::key(k))
                .collect(),
            slots: views,
            version: s.version,
        })
    }

    fn shared_status(
        &self,
        listener: &str,
        s: &DesiredState,
        live: &[InstanceStatus],
    ) -> Result<SharedStatus> {
        let joined = s.joined.get(listener).cloned().unwrap_or_default();
        let mut tps = Vec::new();
        for t in shared::topics(s) {
            for p in kafka::partitions(&self.connection, &t)? {
                tps.push((t.clone(), p));
            }
        }
        let ends = kafka::end_offsets(&self.connection, &tps)?;
        let committed = kafka::committed(&self.connection, &self.group, &tps)?;
        let mut slots: BTreeSet<String> = joined.iter().cloned().collect();
        slots.extend(live.iter().map(|x| x.slot.clone()));
        let views = slots
            .iter()
            .map(|slot| SharedSlotView {
                holds: live
                    .iter()
                    .filter(|x| &x.slot == slot)
                    .flat_map(|x| {
                        x.partitions()
                            .map(|p| format!("{}-{}", p.topic, p.partition))
                    })
                    .collect(),
                instances: instances(live, slot),
                joined: joined.contains(slot),
                slot: slot.clone(),
            })
            .collect();
        Ok(SharedStatus {
            app: self.app.clone(),
            deploy: s.deploy.clone(),
            group: self.group.clone(),
            lag: lag(&tps, &ends, &committed),
            slots: views,
            strategy: SHARED,
            version: s.version,
        })
    }
}

/// The live instances of `slot`, `instance(vN)`.
fn instances(live: &[InstanceStatus], slot: &str) -> Vec<String> {
    live.iter()
        .filter(|x| x.slot == slot)
        .map(|x| format!("{}(v{})", x.instance, x.applied_version))
        .collect()
}

/// Sum over `tps` of log end minus committed (no commit: from 0).
fn lag(tps: &[Tp], ends: &BTreeMap<Tp, i64>, committed: &BTreeMap<Tp, i64>) -> i64 {
    tps.iter()
        .map(|tp| {
            ends.get(tp).copied().unwrap_or(0) - committed.get(tp).copied().unwrap_or(-1).max(0)
        })
        .sum()
}
