//! Consumer group state as the broker sees it.
//!
//! [`committed_offsets`] reads what a group committed (to check that a consumer committed what it processed, and
//! to compute where a restarted consumer resumes); [`group_members`] reads membership and state (to wait until a
//! rebalance settled), for classic and KIP-848 consumer groups alike. Both open a short-lived client of their own, which never joins the group.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use switchyard_admin::group::describe_group;

use crate::client::{client_config, REQUEST_TIMEOUT};
use crate::topics::partition_count;
use crate::wait::poll_until;

/// How long the helpers of this module retry failing requests.
pub const GROUP_TIMEOUT: Duration = Duration::from_secs(20);

/// The committed offset of `group` for every partition of `topic`: `Offset(n)` gives `n`, no commit gives -1.
///
/// Partitions are taken from the topic's metadata and always named in the OffsetFetch request: nisshi's
/// all-partitions OffsetFetch returns nothing. Retries for up to 20 s, then panics.
pub fn committed_offsets(bootstrap: &str, group: &str, topic: &str) -> BTreeMap<i32, i64> {
    committed_with_metadata(bootstrap, group, topic)
        .into_iter()
        .map(|(partition, (offset, _))| (partition, offset))
        .collect()
}

/// The committed offset and its commit metadata of `group` for every partition of `topic` (-1 and `""` where
/// nothing was committed), as [`committed_offsets`] reads them.
pub fn committed_with_metadata(
    bootstrap: &str,
    group: &str,
    topic: &str,
) -> BTreeMap<i32, (i64, String)> {
    let partitions = partition_count(bootstrap, topic);
    let consumer: BaseConsumer = client_config(bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("create offset-fetch client");
    let mut request = TopicPartitionList::new();
    for partition in 0..partitions {
        request.add_partition(topic, partition);
    }
    let mut last_error = String::new();
    let result = poll_until(GROUP_TIMEOUT, || {
        match consumer.committed_offsets(request.clone(), REQUEST_TIMEOUT) {
            Ok(list) => Some(
                (0..partitions)
                    .map(|partition| {
                        let entry = list.find_partition(topic, partition);
                        let offset = match entry.as_ref().map(|e| e.offset()) {
                            Some(Offset::Offset(n)) => n,
                            _ => -1,
                        };
                        let metadata = entry.map(|e| e.metadata().to_string()).unwrap_or_default();
                        (partition, (offset, metadata))
                    })
                    .collect(),
            ),
            Err(e) => {
                last_error = e.to_string();
                None
            }
        }
    });
    result.unwrap_or_else(|elapsed| {
        panic!("committed offsets of {group} on {topic} after {elapsed:.1?}: {last_error}")
    })
}

/// The member count and state (e.g. `"Stable"`, `"Empty"`, `"PreparingRebalance"`) of `group`, classic or KIP-848
/// consumer group alike, as [`switchyard_admin::group::describe_group`] describes it (DescribeGroups, then
/// DescribeConsumerGroups for a group DescribeGroups sees as Dead). A group the broker does not know gives
/// `(0, "Dead")`. Retries failing requests for up to 20 s, then panics.
pub fn group_members(bootstrap: &str, group: &str) -> (usize, String) {
    let consumer: BaseConsumer = client_config(bootstrap)
        .create()
        .expect("create group-describe client");
    let mut last_error = String::new();
    let result = poll_until(GROUP_TIMEOUT, || {
        match describe_group(&consumer, group, REQUEST_TIMEOUT) {
            Ok(d) => Some((d.members.len(), d.state.to_string())),
            Err(e) => {
                last_error = e.to_string();
                None
            }
        }
    });
    result.unwrap_or_else(|elapsed| {
        panic!("description of group {group} after {elapsed:.1?}: {last_error}")
    })
}
