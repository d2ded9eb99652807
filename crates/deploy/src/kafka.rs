//! Group offsets and membership, read from outside the groups.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

/// A partition: (topic, partition).
pub type Tp = (String, i32);

const TIMEOUT: Duration = Duration::from_secs(10);

fn client(bootstrap: &str, group: Option<&str>) -> anyhow::Result<BaseConsumer> {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap)
        .set("enable.auto.commit", "false")
        .set("socket.timeout.ms", "10000");
    if let Some(g) = group {
        c.set("group.id", g);
    }
    Ok(c.create()?)
}

/// One client per (bootstrap, group), kept for the process: phase 3 of a
/// handoff reads committed offsets while no partition is processed, and a
/// new client (connection, metadata, coordinator lookup) costs 100-150 ms.
fn group_client(bootstrap: &str, group: &str) -> anyhow::Result<Arc<BaseConsumer>> {
    type Clients = Mutex<HashMap<(String, String), Arc<BaseConsumer>>>;
    static CLIENTS: OnceLock<Clients> = OnceLock::new();
    let key = (bootstrap.to_string(), group.to_string());
    let mut clients = CLIENTS
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some(c) = clients.get(&key) {
        return Ok(c.clone());
    }
    let c = Arc::new(client(bootstrap, Some(group))?);
    clients.insert(key, c.clone());
    Ok(c)
}

/// Connect the client of `group` in the background, so that a later
/// [`committed`] of the group does not pay for the connection.
pub fn warm_up(bootstrap: &str, group: &str, tps: &[Tp]) {
    let (b, g, t) = (bootstrap.to_string(), group.to_string(), tps.to_vec());
    std::thread::spawn(move || {
        let _ = committed(&b, &g, &t);
    });
}

/// The committed next offset of `group` for each of `tps` (-1: none).
/// Partitions are always named (some brokers answer nothing to an
/// all-partitions fetch).
pub fn committed(bootstrap: &str, group: &str, tps: &[Tp]) -> anyhow::Result<BTreeMap<Tp, i64>> {
    let c = group_client(bootstrap, group)?;
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
                        let o = match list.find_partition(t, *p).map(|e| e.offset()) {
                            Some(Offset::Offset(n)) => n,
                            _ => -1,
                        };
                        ((t.clone(), *p), o)
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
pub fn end_offsets(bootstrap: &str, tps: &[Tp]) -> anyhow::Result<BTreeMap<Tp, i64>> {
    let c = client(bootstrap, None)?;
    tps.iter()
        .map(|(t, p)| Ok(((t.clone(), *p), c.fetch_watermarks(t, *p, TIMEOUT)?.1)))
        .collect()
}

/// The partitions of `topic`.
pub fn partitions(bootstrap: &str, topic: &str) -> anyhow::Result<Vec<i32>> {
    let c = client(bootstrap, None)?;
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

/// The member count of `group` (0 when the broker does not list it).
pub fn members(bootstrap: &str, group: &str) -> anyhow::Result<usize> {
    let c = client(bootstrap, None)?;
    let list = c.fetch_group_list(Some(group), TIMEOUT)?;
    Ok(list
        .groups()
        .iter()
        .find(|g| g.name() == group)
        .map_or(0, |g| g.members().len()))
}

/// Is `e`, from [`members`], the broker not supporting group listing at all
/// (librdkafka's mock cluster answers neither ListGroups nor DescribeGroups),
/// rather than a request that failed?
pub fn unsupported(e: &anyhow::Error) -> bool {
    matches!(
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
        let e = super::members(&cluster.bootstrap_servers(), "g").unwrap_err();
        assert!(super::unsupported(&e), "{e:#}");
        assert!(!super::unsupported(&anyhow::anyhow!("timed out")));
    }
}
