//! One reading of a group's offsets from outside: for every partition the
//! log start and log end offsets, the committed offset, and the owner (the
//! member that holds it) when the group is active.
//!
//! Which groups are seen: groups are described by `switchyard-admin`
//! ([`switchyard_admin::group`]): DescribeGroups first, and
//! DescribeConsumerGroups for a group DescribeGroups does not describe or
//! describes as Dead, so that a KIP-848 consumer group (`group.protocol=consumer`)
//! shows its state, members and partition owners like a classic group.
//!
//! How partitions are named: the broker's OffsetFetch is always sent for
//! named partitions (nisshi 0.8.1 answers nothing to the all-partitions form,
//! and has no readable `__consumer_offsets` topic). For an active group the
//! partitions are those of the topics in its members' assignments (decoded
//! from DescribeGroups, [`crate::assignment`], or as ConsumerGroupDescribe
//! gives them); for a group without members
//! they are all partitions of every non-internal topic of the cluster, and
//! partitions without a committed offset are left out. Owned partitions are
//! always kept, with `committed: None` if nothing was committed yet.
//!
//! Owners need the members' assignments. nisshi 0.8.1 answers DescribeGroups
//! with member ids only (no assignment, client id or host): there, partitions
//! have no owner, a group with members is asked about every partition like an
//! empty one, and [`GroupOffsets::assignments_known`] is false.
//!
//! What it costs per reading: one metadata request, one DescribeGroups per
//! named group (or one ListGroups + DescribeGroups for all when more than a
//! few groups are asked for), one DescribeConsumerGroups for the KIP-848
//! groups among them, one OffsetFetch per group (sent in parallel;
//! OffsetFetch is bound to the client's `group.id`, so there is one small
//! client per group, created once and kept by the [`OffsetReader`]), and one
//! ListOffsets for the log starts and one for the log ends of all partitions
//! of all groups together.
//!
//! ```
//! use switchyard_lag::offsets::PartitionOffsets;
//! let p = PartitionOffsets { topic: "orders".into(), partition: 0, log_start: 0, log_end: 120, committed: Some(100), owner: None };
//! assert_eq!(p.lag(), Some(20));
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde::Serialize;
use switchyard_admin::group::{
    describe_all, describe_consumer_groups, describe_group, GroupDescription, GroupError,
    MemberDescription,
};
use switchyard_config::Connection;

use crate::LagError;

/// Above this many named groups, groups are described with one listing of all groups.
const DESCRIBE_ONE_BY_ONE_MAX: usize = 4;

/// (topic, partition).
use switchyard_config::Tp;
/// Committed offsets of one group, by partition.
type Committed = Vec<(Tp, Option<i64>)>;

/// The member that holds a partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Owner {
    /// Member id given by the group coordinator.
    pub member_id: String,
    /// The member's `client.id`.
    pub client_id: String,
    /// The member's host as the broker saw it.
    pub host: String,
}

/// One partition's offsets for one group, read at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartitionOffsets {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Log start offset (the oldest record still stored).
    pub log_start: i64,
    /// Log end offset (the offset the next record will get).
    pub log_end: i64,
    /// The group's committed offset, `None` if it committed nothing here.
    pub committed: Option<i64>,
    /// The member holding the partition, when the group is active.
    pub owner: Option<Owner>,
}

impl PartitionOffsets {
    /// `log_end - committed`, at least 0; `None` without a committed offset.
    pub fn lag(&self) -> Option<i64> {
        self.committed.map(|c| (self.log_end - c).max(0))
    }
}

/// One group's offsets, read at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupOffsets {
    /// Group id.
    pub group: String,
    /// Group state as the broker reports it (`Stable`, `Empty`, ...; `Dead` if unknown).
    pub state: String,
    /// Number of members.
    pub members: usize,
    /// The members (member id, client id, host as the broker reports them).
    pub member_list: Vec<Owner>,
    /// Whether the broker told which member holds which partition (decodable
    /// assignments). nisshi 0.8.1 does not: its DescribeGroups gives member
    /// ids only, so partitions have no owner there.
    pub assignments_known: bool,
    /// Partitions, sorted by topic and partition.
    pub partitions: Vec<PartitionOffsets>,
}

/// Reads [`GroupOffsets`]; keeps its clients between readings.
pub struct OffsetReader {
    connection: Connection,
    timeout: Duration,
    parallelism: usize,
    admin: BaseConsumer,
    group_clients: Mutex<HashMap<String, Arc<BaseConsumer>>>,
}

struct Described {
    state: String,
    members: usize,
    member_list: Vec<Owner>,
    assignments_known: bool,
    owners: BTreeMap<Tp, Owner>,
}

impl OffsetReader {
    /// A reader for the cluster of `connection` (a [`Connection`], or a
    /// bootstrap list for a plaintext one); `timeout` bounds every request.
    pub fn new(
        connection: impl Into<Connection>,
        timeout: Duration,
    ) -> Result<OffsetReader, LagError> {
        let connection = connection.into();
        Ok(OffsetReader {
            admin: base_config(&connection).create()?,
            connection,
            timeout,
            parallelism: 8,
            group_clients: Mutex::new(HashMap::new()),
        })
    }

    /// How many OffsetFetch requests run at once (default 8).
    pub fn with_parallelism(mut self, n: usize) -> OffsetReader {
        self.parallelism = n.max(1);
        self
    }

    /// Every group the cluster knows (ListGroups), sorted.
    pub fn list_groups(&self) -> Result<Vec<String>, LagError> {
        let list = self.admin.fetch_group_list(None, self.timeout)?;
        let mut names: Vec<String> = list.groups().iter().map(|g| g.name().to_string()).collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// Read the offsets of `groups` (in that order).
    pub fn fetch(&self, groups: &[String]) -> Result<Vec<GroupOffsets>, LagError> {
        let described = self.describe(groups)?;
        let metadata = self.admin.fetch_metadata(None, self.timeout)?;
        let mut cluster: BTreeMap<String, Vec<i32>> = BTreeMap::new();
        for t in metadata.topics() {
            if t.error().is_some() || t.name().starts_with("__") {
                continue;
            }
            let mut ps: Vec<i32> = t.partitions().iter().map(|p| p.id()).collect();
            ps.sort_unstable();
            cluster.insert(t.name().to_string(), ps);
        }
        // Partitions to ask each group about.
        let wanted: Vec<Vec<Tp>> = described
            .iter()
            .map(|d| {
                if d.owners.is_empty() {
                    return cluster
                        .iter()
                        .flat_map(|(t, ps)| ps.iter().map(move |p| (t.clone(), *p)))
                        .collect();
                }
                let topics: BTreeSet<&String> = d.owners.keys().map(|(t, _)| t).collect();
                let mut v: BTreeSet<Tp> = d.owners.keys().cloned().collect();
                for t in topics {
                    for p in cluster.get(t).into_iter().flatten() {
                        v.insert((t.clone(), *p));
                    }
                }
                v.into_iter().collect()
            })
            .collect();
        let committed = self.committed_all(groups, &wanted)?;
        let mut result = Vec::with_capacity(groups.len());
        let mut needed: BTreeSet<Tp> = BTreeSet::new();
        for ((group, d), committed) in groups.iter().zip(described).zip(committed) {
            let partitions: Vec<PartitionOffsets> = committed
                .into_iter()
                .filter_map(|((topic, partition), c)| {
                    let owner = d.owners.get(&(topic.clone(), partition)).cloned();
                    if c.is_none() && owner.is_none() {
                        return None;
                    }
                    needed.insert((topic.clone(), partition));
                    Some(PartitionOffsets {
                        topic,
                        partition,
                        log_start: 0,
                        log_end: 0,
                        committed: c,
                        owner,
                    })
                })
                .collect();
            result.push(GroupOffsets {
                group: group.clone(),
                state: d.state,
                members: d.members,
                member_list: d.member_list,
                assignments_known: d.assignments_known,
                partitions,
            });
        }
        let marks = self.watermarks(&needed)?;
        for g in &mut result {
            for p in &mut g.partitions {
                if let Some((low, high)) = marks.get(&(p.topic.clone(), p.partition)) {
                    p.log_start = *low;
                    p.log_end = *high;
                }
            }
        }
        Ok(result)
    }

    fn describe(&self, groups: &[String]) -> Result<Vec<Described>, LagError> {
        let mut by_name: HashMap<String, GroupDescription> = HashMap::new();
        if groups.len() > DESCRIBE_ONE_BY_ONE_MAX {
            for d in describe_all(&self.admin, self.timeout)? {
                by_name.insert(d.group.clone(), d);
            }
            // Named groups the listing left out: asked for by name.
            let mut missing: Vec<&str> = groups
                .iter()
                .filter(|g| !by_name.contains_key(*g))
                .map(String::as_str)
                .collect();
            missing.sort_unstable();
            missing.dedup();
            let found = describe_consumer_groups(self.admin.client(), &missing, self.timeout)?;
            for (name, d) in missing.iter().zip(found) {
                match d {
                    Ok(d) => {
                        by_name.insert(name.to_string(), d);
                    }
                    Err(e) => tracing::warn!(group = *name, error = %e, "group not described"),
                }
            }
        } else {
            for name in groups {
                let d = describe_group(&self.admin, name, self.timeout).map_err(|e| match e {
                    GroupError::List(source) => LagError::Group {
                        group: name.clone(),
                        source,
                    },
                    e => LagError::Describe(e),
                })?;
                by_name.insert(name.clone(), d);
            }
        }
        Ok(groups
            .iter()
            .map(|g| match by_name.get(g) {
                Some(d) => described(d),
                None => described(&GroupDescription::dead(g)),
            })
            .collect())
    }

    fn group_client(&self, group: &str) -> Result<Arc<BaseConsumer>, LagError> {
        if let Some(c) = self
            .group_clients
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(group)
        {
            return Ok(c.clone());
        }
        let client: BaseConsumer = base_config(&self.connection)
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .create()?;
        let client = Arc::new(client);
        self.group_clients
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(group.to_string(), client.clone());
        Ok(client)
    }

    /// Committed offsets of every group on its wanted partitions, OffsetFetch requests in parallel.
    fn committed_all(
        &self,
        groups: &[String],
        wanted: &[Vec<Tp>],
    ) -> Result<Vec<Committed>, LagError> {
        let next = AtomicUsize::new(0);
        let slots: Vec<Mutex<Option<Result<Committed, LagError>>>> =
            groups.iter().map(|_| Mutex::new(None)).collect();
        let workers = self.parallelism.min(groups.len());
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= groups.len() {
                        break;
                    }
                    let r = self.committed(&groups[i], &wanted[i]);
                    *slots[i].lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
                });
            }
        });
        slots
            .into_iter()
            .map(|m| {
                m.into_inner()
                    .unwrap_or_else(|p| p.into_inner())
                    .unwrap_or_else(|| Ok(Vec::new()))
            })
            .collect()
    }

    fn committed(&self, group: &str, wanted: &[Tp]) -> Result<Committed, LagError> {
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        let client = self.group_client(group)?;
        let mut tpl = TopicPartitionList::with_capacity(wanted.len());
        for (t, p) in wanted {
            tpl.add_partition(t, *p);
        }
        let got = client
            .committed_offsets(tpl, self.timeout)
            .map_err(|source| LagError::Group {
                group: group.to_string(),
                source,
            })?;
        Ok(wanted
            .iter()
            .map(|(t, p)| {
                let c = got
                    .find_partition(t, *p)
                    .and_then(|e| match (e.error(), e.offset()) {
                        (Ok(()), Offset::Offset(n)) => Some(n),
                        _ => None,
                    });
                ((t.clone(), *p), c)
            })
            .collect())
    }

    /// Log start and end of every partition: two batched ListOffsets (earliest, latest),
    /// falling back to one request per partition for partitions the batch did not answer.
    fn watermarks(&self, parts: &BTreeSet<Tp>) -> Result<HashMap<Tp, (i64, i64)>, LagError> {
        let mut out = HashMap::with_capacity(parts.len());
        if parts.is_empty() {
            return Ok(out);
        }
        let batch = |at: Offset| -> Option<TopicPartitionList> {
            let mut tpl = TopicPartitionList::with_capacity(parts.len());
            for (t, p) in parts {
                tpl.add_partition_offset(t, *p, at).ok()?;
            }
            match self.admin.offsets_for_times(tpl, self.timeout) {
                Ok(r) => Some(r),
                Err(e) => {
                    tracing::debug!(error = %e, "batched ListOffsets failed; asking per partition");
                    None
                }
            }
        };
        let lows = batch(Offset::Beginning);
        let highs = batch(Offset::End);
        let read = |tpl: &Option<TopicPartitionList>, t: &str, p: i32| -> Option<i64> {
            let e = tpl.as_ref()?.find_partition(t, p)?;
            match (e.error(), e.offset()) {
                (Ok(()), Offset::Offset(n)) => Some(n),
                _ => None,
            }
        };
        for (t, p) in parts {
            let marks = match (read(&lows, t, *p), read(&highs, t, *p)) {
                (Some(l), Some(h)) => (l, h),
                _ => self.admin.fetch_watermarks(t, *p, self.timeout)?,
            };
            out.insert((t.clone(), *p), marks);
        }
        Ok(out)
    }
}

impl Drop for OffsetReader {
    /// Closing a client that has a `group.id` takes librdkafka about 100 ms
    /// (the consumer-group handle shuts down on its own timer), so the group
    /// clients are closed in parallel, up to 256 at a time.
    fn drop(&mut self) {
        let clients: Vec<Arc<BaseConsumer>> = self
            .group_clients
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
            .map(|(_, c)| c)
            .collect();
        let mut clients = clients.into_iter().peekable();
        while clients.peek().is_some() {
            let chunk: Vec<_> = clients.by_ref().take(256).collect();
            std::thread::scope(|s| {
                for c in chunk {
                    s.spawn(move || drop(c));
                }
            });
        }
    }
}

/// Every property of `connection`, then the reader's own defaults where the
/// connection does not set them.
pub(crate) fn base_config(connection: &Connection) -> ClientConfig {
    let mut c = connection.client_config();
    for (key, value) in [
        ("client.id", "switchyard-lag"),
        ("socket.timeout.ms", "10000"),
        ("reconnect.backoff.ms", "20"),
        ("reconnect.backoff.max.ms", "500"),
    ] {
        if connection.get(key).is_none() {
            c.set(key, value);
        }
    }
    c
}

/// What a reading needs of a group's description: its members, and the
/// owner of each partition they hold.
fn described(g: &GroupDescription) -> Described {
    let owner = |m: &MemberDescription| Owner {
        member_id: m.member_id.clone(),
        client_id: m.client_id.clone(),
        host: m.host.clone(),
    };
    let owners: BTreeMap<Tp, Owner> = g
        .owners()
        .into_iter()
        .map(|(tp, m)| (tp, owner(m)))
        .collect();
    Described {
        state: g.state.to_string(),
        members: g.members.len(),
        member_list: g.members.iter().map(owner).collect(),
        assignments_known: g.members.is_empty() || !owners.is_empty(),
        owners,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_is_never_negative() {
        let p = PartitionOffsets {
            topic: "t".into(),
            partition: 0,
            log_start: 5,
            log_end: 10,
            committed: Some(12),
            owner: None,
        };
        assert_eq!(p.lag(), Some(0));
        assert_eq!(
            PartitionOffsets {
                committed: None,
                ..p
            }
            .lag(),
            None
        );
    }
}
