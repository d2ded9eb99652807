//! Group offsets and membership, read from outside the groups.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use switchyard_admin::group::{describe_group, GroupError};
use switchyard_config::Connection;
use switchyard_runtime::offset_metadata::decode;

pub use switchyard_config::Tp;

const TIMEOUT: Duration = Duration::from_secs(10);

fn client(connection: &Connection, group: Option<&str>) -> anyhow::Result<BaseConsumer> {
    let mut c = connection.client_config();
    c.set("enable.auto.commit", "false");
    if connection.get("socket.timeout.ms").is_none() {
        c.set("socket.timeout.ms", "10000");
    }
    if let Some(g) = group {
        c.set("group.id", g);
    }
    Ok(c.create()?)
}

/// One client per (connection properties, group), kept for the process:
/// phases 2 and 3 of a handoff read the group's members and committed
/// offsets while no partition is processed, and a new client (connection,
/// metadata, coordinator lookup) costs 100-150 ms.
fn group_client(connection: &Connection, group: &str) -> anyhow::Result<Arc<BaseConsumer>> {
    type Key = (BTreeMap<String, String>, String);
    type Clients = Mutex<HashMap<Key, Arc<BaseConsumer>>>;
    static CLIENTS: OnceLock<Clients> = OnceLock::new();
    let key = (connection.properties().clone(), group.to_string());
    let mut clients = CLIENTS
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some(c) = clients.get(&key) {
        return Ok(c.clone());
    }
    let c = Arc::new(client(connection, Some(group))?);
    clients.insert(key, c.clone());
    Ok(c)
}

/// Connect the client of `group` in the background, so that a later
/// [`committed`] of the group does not pay for the connection.
pub fn warm_up(connection: impl Into<Connection>, group: &str, tps: &[Tp]) {
    let (b, g, t) = (connection.into(), group.to_string(), tps.to_vec());
    std::thread::spawn(move || {
        let _ = committed(&b, &g, &t);
    });
}

/// At most this many finished-above offsets of a partition travel with a
/// handoff offset in the desired state; beyond it, none do (those records
/// are processed again by the next owner: at-least-once, never loss).
pub const MAX_DONE_ABOVE: usize = 1000;

/// What a group committed for one partition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Committed {
    /// The next offset (-1: none).
    pub offset: i64,
    /// The offsets above it finished already, from Switchyard's commit
    /// metadata (`switchyard_runtime::offset_metadata`); none when the
    /// metadata says nothing or lists more than [`MAX_DONE_ABOVE`].
    pub done_above: Vec<i64>,
}

/// The committed next offset of `group` for each of `tps` (-1: none).
/// Partitions are always named (some brokers answer nothing to an
/// all-partitions fetch).
pub fn committed(
    connection: impl Into<Connection>,
    group: &str,
    tps: &[Tp],
) -> anyhow::Result<BTreeMap<Tp, i64>> {
    Ok(committed_with_done(connection, group, tps)?
        .into_iter()
        .map(|(tp, c)| (tp, c.offset))
        .collect())
}

/// [`committed`] with the offsets finished above each committed offset.
pub fn committed_with_done(
    connection: impl Into<Connection>,
    group: &str,
    tps: &[Tp],
) -> anyhow::Result<BTreeMap<Tp, Committed>> {
    let c = group_client(&connection.into(), group)?;
    let mut req = TopicPartitionList::new();
    for (t, p) in tps {
        req.add_partition(t, *p);
    }
    let mut last = None;
    for _ in 0..5 {
        match c.committed_offsets(req.clone(), TIMEOUT) {
            Ok(list) => {
                return Ok(tps
                    .iter()
                    .map(|(t, p)| {
                        let e = list.find_partition(t, *p);
                        let c = match e.as_ref().map(|e| e.offset()) {
                            Some(Offset::Offset(n)) => {
                                let meta = e.as_ref().map_or("", |e| e.metadata());
                                let mut done_above = decode(n, meta);
                                if done_above.len() > MAX_DONE_ABOVE {
                                    done_above.clear();
                                }
                                Committed {
                                    offset: n,
                                    done_above,
                                }
                            }
                            _ => Committed {
                                offset: -1,
                                done_above: Vec::new(),
                            },
                        };
                        ((t.clone(), *p), c)
                    })
                    .collect())
            }
            Err(e) => last = Some(e),
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Err(anyhow::anyhow!(
        "committed offsets of group {group}: {}",
        last.map(|e| e.to_string()).unwrap_or_default()
    ))
}

/// The log end offset of each of `tps`.
pub fn end_offsets(
    connection: impl Into<Connection>,
    tps: &[Tp],
) -> anyhow::Result<BTreeMap<Tp, i64>> {
    let c = client(&connection.into(), None)?;
    tps.iter()
        .map(|(t, p)| Ok(((t.clone(), *p), c.fetch_watermarks(t, *p, TIMEOUT)?.1)))
        .collect()
}

/// The partitions of `topic`.
pub fn partitions(connection: impl Into<Connection>, topic: &str) -> anyhow::Result<Vec<i32>> {
    let c = client(&connection.into(), None)?;
    let md = c.fetch_metadata(Some(topic), TIMEOUT)?;
    let t = md
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .ok_or_else(|| anyhow::anyhow!("topic {topic} not found"))?;
    anyhow::ensure!(
        !t.partitions().is_empty(),
        "topic {topic} has no partitions"
    );
    let mut ps: Vec<i32> = t.partitions().iter().map(|p| p.id()).collect();
    ps.sort();
    Ok(ps)
}

/// The member count of `group` (0 when the broker does not know it), for a
/// classic group as for a KIP-848 consumer group: described by
/// [`switchyard_admin::group::describe_group`] (DescribeGroups, then
/// DescribeConsumerGroups for a group DescribeGroups sees as Dead).
/// Asked through the group's kept client, as [`committed`] is.
pub fn members(connection: impl Into<Connection>, group: &str) -> anyhow::Result<usize> {
    let c = group_client(&connection.into(), group)?;
    Ok(describe_group(&c, group, TIMEOUT)?.members.len())
}

/// Is `e`, from [`members`], the broker not supporting group listing at all
/// (librdkafka's mock cluster answers neither ListGroups nor DescribeGroups),
/// rather than a request that failed?
pub fn unsupported(e: &anyhow::Error) -> bool {
    e.downcast_ref::<GroupError>()
        .is_some_and(GroupError::is_unsupported)
        || matches!(
            e.downcast_ref::<KafkaError>(),
            Some(KafkaError::GroupListFetch(
                RDKafkaErrorCode::UnsupportedFeature
            ))
        )
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_mock_cluster_cannot_list_group_members_and_says_so() {
        let cluster = rdkafka::mocking::MockCluster::new(1).unwrap();
        let e = super::members(cluster.bootstrap_servers(), "g").unwrap_err();
        assert!(super::unsupported(&e), "{e:#}");
        assert!(!super::unsupported(&anyhow::anyhow!("timed out")));
    }
}
