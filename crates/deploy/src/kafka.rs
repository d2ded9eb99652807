//! Group offsets and membership, read from outside the groups.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use switchyard_config::Connection;

/// A partition: (topic, partition).
pub type Tp = (String, i32);

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
/// phase 3 of a handoff reads committed offsets while no partition is
/// processed, and a new client (connection, metadata, coordinator lookup)
/// costs 100-150 ms.
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

/// The committed next offset of `group` for each of `tps` (-1: none).
/// Partitions are always named (some brokers answer nothing to an
/// all-partitions fetch).
pub fn committed(
    connection: impl Into<Connection>,
    group: &str,
    tps: &[Tp],
) -> anyhow::Result<BTreeMap<Tp, i64>> {
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
/// classic group as for a KIP-848 consumer group.
///
/// DescribeGroups (`fetch_group_list`) answers for classic groups only: a
/// consumer-protocol group is "Dead" with no members there. So a group it
/// does not describe is asked for again with DescribeConsumerGroups
/// ([`describe_group`]), which describes both kinds.
pub fn members(connection: impl Into<Connection>, group: &str) -> anyhow::Result<usize> {
    let c = client(&connection.into(), None)?;
    let list = c.fetch_group_list(Some(group), TIMEOUT)?;
    if let Some(g) = list
        .groups()
        .iter()
        .find(|g| g.name() == group && g.state() != "Dead")
    {
        return Ok(g.members().len());
    }
    Ok(describe_group(&c, group, TIMEOUT)?.members)
}

/// A consumer group as DescribeConsumerGroups sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    /// `Classic`, `Consumer` (KIP-848) or `Unknown`.
    pub kind: String,
    /// `Stable`, `Empty`, `Dead`, ...
    pub state: String,
    /// The member count.
    pub members: usize,
}

/// DescribeConsumerGroups of one group (librdkafka asks with
/// ConsumerGroupDescribe and falls back to DescribeGroups for a classic
/// group). A group the broker does not know is `Dead` with no members.
pub fn describe_group<C: rdkafka::consumer::ConsumerContext>(
    c: &BaseConsumer<C>,
    group: &str,
    timeout: Duration,
) -> anyhow::Result<GroupDescription> {
    use rdkafka::bindings as rd;
    use std::ffi::{CStr, CString};

    /// Destroys what it holds on every way out.
    struct Guard {
        queue: *mut rd::rd_kafka_queue_t,
        options: *mut rd::rd_kafka_AdminOptions_t,
        event: *mut rd::rd_kafka_event_t,
    }
    impl Drop for Guard {
        fn drop(&mut self) {
            // SAFETY: each pointer is null or was created by librdkafka and
            // is destroyed once, here.
            unsafe {
                if !self.event.is_null() {
                    rd::rd_kafka_event_destroy(self.event);
                }
                if !self.options.is_null() {
                    rd::rd_kafka_AdminOptions_destroy(self.options);
                }
                if !self.queue.is_null() {
                    rd::rd_kafka_queue_destroy(self.queue);
                }
            }
        }
    }
    fn text(p: *const std::ffi::c_char) -> String {
        if p.is_null() {
            String::new()
        } else {
            // SAFETY: librdkafka returns NUL-terminated strings that live as
            // long as the event they belong to.
            unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
        }
    }

    let name = CString::new(group)?;
    let rk = c.client().native_ptr();
    let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
    // SAFETY: `rk` is a live client; the queue, options and event are owned
    // by `guard`; the group name outlives the request call, which copies it.
    unsafe {
        let mut guard = Guard {
            queue: rd::rd_kafka_queue_new(rk),
            options: rd::rd_kafka_AdminOptions_new(
                rk,
                rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_DESCRIBECONSUMERGROUPS,
            ),
            event: std::ptr::null_mut(),
        };
        let mut errstr = [0 as std::ffi::c_char; 256];
        rd::rd_kafka_AdminOptions_set_request_timeout(
            guard.options,
            ms,
            errstr.as_mut_ptr(),
            errstr.len(),
        );
        let mut groups = [name.as_ptr()];
        rd::rd_kafka_DescribeConsumerGroups(rk, groups.as_mut_ptr(), 1, guard.options, guard.queue);
        // the request times out by itself; allow a little more for the event
        guard.event = rd::rd_kafka_queue_poll(guard.queue, ms.saturating_add(1000));
        anyhow::ensure!(
            !guard.event.is_null(),
            "describing group {group}: no answer within {timeout:?}"
        );
        let err = rd::rd_kafka_event_error(guard.event);
        if err != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
            let code: RDKafkaErrorCode = err.into();
            anyhow::bail!(
                "describing group {group}: {code} ({})",
                text(rd::rd_kafka_event_error_string(guard.event))
            );
        }
        let result = rd::rd_kafka_event_DescribeConsumerGroups_result(guard.event);
        anyhow::ensure!(!result.is_null(), "describing group {group}: no result");
        let mut n = 0usize;
        let descriptions = rd::rd_kafka_DescribeConsumerGroups_result_groups(result, &mut n);
        for i in 0..n {
            let d = *descriptions.add(i);
            if text(rd::rd_kafka_ConsumerGroupDescription_group_id(d)) != group {
                continue;
            }
            let error = rd::rd_kafka_ConsumerGroupDescription_error(d);
            if !error.is_null() {
                let code: RDKafkaErrorCode = rd::rd_kafka_error_code(error).into();
                if code == RDKafkaErrorCode::GroupIdNotFound {
                    break;
                }
                anyhow::bail!(
                    "describing group {group}: {code} ({})",
                    text(rd::rd_kafka_error_string(error))
                );
            }
            return Ok(GroupDescription {
                kind: text(rd::rd_kafka_consumer_group_type_name(
                    rd::rd_kafka_ConsumerGroupDescription_type(d),
                )),
                state: text(rd::rd_kafka_consumer_group_state_name(
                    rd::rd_kafka_ConsumerGroupDescription_state(d),
                )),
                members: rd::rd_kafka_ConsumerGroupDescription_member_count(d),
            });
        }
    }
    Ok(GroupDescription {
        kind: "Unknown".into(),
        state: "Dead".into(),
        members: 0,
    })
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
        let e = super::members(cluster.bootstrap_servers(), "g").unwrap_err();
        assert!(super::unsupported(&e), "{e:#}");
        assert!(!super::unsupported(&anyhow::anyhow!("timed out")));
    }
}
