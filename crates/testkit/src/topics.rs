//! Topics for tests: unique names, creation, and end offsets.
//!
//! Tests share one broker ([`crate::Broker::shared`]), so each test creates its own topic with a name that no other
//! test or test process uses ([`unique_name`], [`new_topic`]). [`create_topic`] returns only once a fresh client sees
//! every partition with a leader, so a test can produce and consume right away. [`end_offsets`] reads the high
//! watermarks that the no-gap check of [`crate::ProcessedLog`] compares against.

use std::collections::hash_map::RandomState;
use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rdkafka::admin::{AdminClient, AdminOptions, NewPartitions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::types::RDKafkaErrorCode;

use crate::broker::Broker;
use crate::client::{block_on, client_config, REQUEST_TIMEOUT};
use crate::wait::wait_for;

/// How long [`create_topic`] waits for the topic to be usable.
pub const CREATE_TIMEOUT: Duration = Duration::from_secs(15);
/// How long [`end_offsets`] retries before giving up.
pub const OFFSETS_TIMEOUT: Duration = Duration::from_secs(15);

/// A name unique per call and per process: `"{prefix}-{pid}-{counter}-{random4hex}"`.
///
/// Characters of `prefix` outside `[a-zA-Z0-9._-]` are replaced by `_`, so the result is a valid topic or group
/// name.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let counter = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(counter);
    hasher.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    let random = hasher.finish() as u16;
    let prefix: String = prefix
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{prefix}-{}-{counter}-{random:04x}", std::process::id())
}

/// Create `topic` with `partitions` partitions and replication factor 1 through the admin API, then wait until a
/// fresh client's metadata shows the topic with every partition having a leader (deadline 15 s).
///
/// A topic that already exists is accepted (then only the wait applies). Panics on any other error.
pub fn create_topic(bootstrap: &str, topic: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = client_config(bootstrap)
        .create()
        .expect("create admin client");
    let options = AdminOptions::new()
        .request_timeout(Some(REQUEST_TIMEOUT))
        .operation_timeout(Some(REQUEST_TIMEOUT));
    let new_topic = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let results = block_on(admin.create_topics([&new_topic], &options), CREATE_TIMEOUT)
        .unwrap_or_else(|| panic!("CreateTopics {topic}: no answer within {CREATE_TIMEOUT:?}"))
        .unwrap_or_else(|e| panic!("CreateTopics {topic}: {e}"));
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => panic!("CreateTopics {name}: {code:?} ({code})"),
        }
    }
    wait_for_leaders(bootstrap, topic, partitions);
}

/// Grow `topic` to `partitions` partitions through the admin API (CreatePartitions), then wait until a fresh client's
/// metadata shows every partition with a leader (deadline 15 s). Panics on any error.
pub fn add_partitions(bootstrap: &str, topic: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = client_config(bootstrap)
        .create()
        .expect("create admin client");
    let options = AdminOptions::new()
        .request_timeout(Some(REQUEST_TIMEOUT))
        .operation_timeout(Some(REQUEST_TIMEOUT));
    let request = NewPartitions::new(topic, partitions as usize);
    let results = block_on(
        admin.create_partitions([&request], &options),
        CREATE_TIMEOUT,
    )
    .unwrap_or_else(|| panic!("CreatePartitions {topic}: no answer within {CREATE_TIMEOUT:?}"))
    .unwrap_or_else(|e| panic!("CreatePartitions {topic}: {e}"));
    for result in results {
        if let Err((name, code)) = result {
            panic!("CreatePartitions {name}: {code:?} ({code})");
        }
    }
    wait_for_leaders(bootstrap, topic, partitions);
}

/// Wait until a fresh client's metadata shows `topic` with `partitions` partitions, each with a leader.
fn wait_for_leaders(bootstrap: &str, topic: &str, partitions: i32) {
    let consumer: BaseConsumer = client_config(bootstrap)
        .create()
        .expect("create metadata client");
    wait_for(
        &format!("topic {topic} with {partitions} partitions, all with a leader"),
        CREATE_TIMEOUT,
        || {
            let found = partition_leaders(&consumer, topic)?;
            (found.len() == partitions as usize && found.iter().all(|&leader| leader >= 0))
                .then_some(())
        },
    );
}

/// Convenience: [`unique_name`]`(prefix)` + [`create_topic`] on `broker`; returns the name.
pub fn new_topic(broker: &Broker, prefix: &str, partitions: i32) -> String {
    let topic = unique_name(prefix);
    create_topic(&broker.bootstrap(), &topic, partitions);
    topic
}

/// The high watermark (the offset the next record will get) of every partition of `topic`, read with
/// `fetch_watermarks` by a client without group id. Retries for up to 15 s, then panics.
pub fn end_offsets(bootstrap: &str, topic: &str) -> BTreeMap<i32, i64> {
    let consumer: BaseConsumer = client_config(bootstrap)
        .create()
        .expect("create watermark client");
    let mut last_error = String::new();
    let result = crate::wait::poll_until(OFFSETS_TIMEOUT, || {
        let Some(leaders) = partition_leaders(&consumer, topic) else {
            last_error = format!("topic {topic} not in metadata");
            return None;
        };
        if leaders.is_empty() {
            last_error = format!("topic {topic} has no partitions");
            return None;
        }
        let mut offsets = BTreeMap::new();
        for partition in 0..leaders.len() as i32 {
            match consumer.fetch_watermarks(topic, partition, REQUEST_TIMEOUT) {
                Ok((_low, high)) => {
                    offsets.insert(partition, high);
                }
                Err(e) => {
                    last_error = format!("fetch_watermarks {topic}/{partition}: {e}");
                    return None;
                }
            }
        }
        Some(offsets)
    });
    result.unwrap_or_else(|elapsed| {
        panic!("end offsets of {topic} after {elapsed:.1?}: {last_error}")
    })
}

/// The number of partitions of `topic` as the broker's metadata shows them (retrying for up to 15 s); panics if the
/// topic does not show up.
pub fn partition_count(bootstrap: &str, topic: &str) -> i32 {
    let consumer: BaseConsumer = client_config(bootstrap)
        .create()
        .expect("create metadata client");
    wait_for(
        &format!("metadata of topic {topic}"),
        OFFSETS_TIMEOUT,
        || {
            partition_leaders(&consumer, topic)
                .filter(|leaders| !leaders.is_empty())
                .map(|leaders| leaders.len() as i32)
        },
    )
}

/// The leader of each partition of `topic` (index = partition id), or `None` if the metadata request failed or the
/// topic is not (yet) known without error.
pub(crate) fn partition_leaders(consumer: &BaseConsumer, topic: &str) -> Option<Vec<i32>> {
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(2))
        .ok()?;
    let entry = metadata.topics().iter().find(|t| t.name() == topic)?;
    if entry.error().is_some() {
        return None;
    }
    let mut leaders = vec![-1; entry.partitions().len()];
    for partition in entry.partitions() {
        let slot = leaders.get_mut(usize::try_from(partition.id()).ok()?)?;
        *slot = if partition.error().is_some() {
            -1
        } else {
            partition.leader()
        };
    }
    Some(leaders)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_names_are_unique_and_valid() {
        let a = unique_name("orders");
        let b = unique_name("orders");
        assert_ne!(a, b);
        assert!(a.starts_with(&format!("orders-{}-", std::process::id())));
        let odd = unique_name("a b/c");
        assert!(odd.starts_with("a_b_c-"));
        assert!(odd
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')));
        let random = odd.rsplit('-').next().unwrap();
        assert_eq!(random.len(), 4);
        assert!(random.chars().all(|c| c.is_ascii_hexdigit()));
    }
}
