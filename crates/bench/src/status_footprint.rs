//! The status topic's footprint during a row of `switchyard-bench control`:
//! how many statuses the instances wrote, the size of one by the number of
//! partitions of its instance ([`status_sizes`], read back from the topic),
//! and the topic's settings as the broker describes them
//! ([`topic_settings`]); [`describe_footprint`] makes the row's line.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

/// What the status topic took during a row.
#[derive(Default)]
pub(crate) struct Footprint {
    /// Status records written during the cycles.
    pub records: i64,
    /// Status records written since the agents started (settling included).
    pub total: i64,
    /// Length of the cycles.
    pub secs: f64,
    /// Key + value bytes of the records of the cycles, by the number of
    /// partitions of their instance.
    pub sizes: BTreeMap<usize, Sizes>,
}

#[derive(Clone, Copy)]
pub(crate) struct Sizes {
    count: u64,
    min: usize,
    max: usize,
    sum: u64,
}

impl Sizes {
    fn add(&mut self, bytes: usize) {
        self.count += 1;
        self.min = self.min.min(bytes);
        self.max = self.max.max(bytes);
        self.sum += bytes as u64;
    }
}

/// The status topic line of a row.
pub(crate) fn describe_footprint(f: &Footprint, n: usize, heartbeat_ms: u64) -> String {
    let per_instance = if f.secs > 0.0 {
        f.records as f64 / f.secs / n as f64
    } else {
        f64::NAN
    };
    let sizes: Vec<String> = f
        .sizes
        .iter()
        .map(|(p, s)| {
            format!(
                "{p} partition{} {} B ({}-{}, {} records)",
                if *p == 1 { "" } else { "s" },
                s.sum / s.count.max(1),
                s.min,
                s.max,
                s.count
            )
        })
        .collect();
    format!(
        "  status topic: {} records in the cycles ({:.1} s: {:.2}/s per instance, of which {:.2}/s \
         heartbeats), {} since the agents started; key+value of one status by its instance's \
         partitions: {}",
        f.records,
        f.secs,
        per_instance,
        1000.0 / heartbeat_ms as f64,
        f.total,
        if sizes.is_empty() {
            "none read".to_string()
        } else {
            sizes.join("; ")
        }
    )
}

/// The settings of the status `topic` that bound its size, as the broker
/// describes them (the control plane created the topic).
pub(crate) async fn topic_settings(bootstrap: &str, topic: &str) -> String {
    use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
    use rdkafka::client::DefaultClientContext;
    const KEYS: [&str; 7] = [
        "cleanup.policy",
        "segment.ms",
        "segment.bytes",
        "min.compaction.lag.ms",
        "min.cleanable.dirty.ratio",
        "delete.retention.ms",
        "max.compaction.lag.ms",
    ];
    let admin: AdminClient<DefaultClientContext> = match crate::broker::client(bootstrap).create() {
        Ok(a) => a,
        Err(e) => return format!("status topic settings: no admin client: {e}"),
    };
    let opts = AdminOptions::new().request_timeout(Some(Duration::from_secs(5)));
    let described = admin
        .describe_configs([&ResourceSpecifier::Topic(topic)], &opts)
        .await;
    match described.map(|r| r.into_iter().next()) {
        Ok(Some(Ok(resource))) => {
            let values: Vec<String> = KEYS
                .iter()
                .map(|k| {
                    let v = resource.get(k).and_then(|e| e.value.clone());
                    format!("{k}={}", v.as_deref().unwrap_or("?"))
                })
                .collect();
            format!("status topic settings (as created): {}", values.join(", "))
        }
        Ok(Some(Err(code))) => format!("status topic settings: not described ({code})"),
        Ok(None) => "status topic settings: not described".to_string(),
        Err(e) => format!("status topic settings: not described ({e})"),
    }
}

/// Key + value bytes of the status records at offsets `from..to` of
/// `topic`, by the number of partitions of their instance.
pub(crate) fn status_sizes(
    bootstrap: &str,
    topic: &str,
    from: i64,
    to: i64,
    partitions_of: &BTreeMap<String, usize>,
) -> anyhow::Result<BTreeMap<usize, Sizes>> {
    let mut sizes: BTreeMap<usize, Sizes> = BTreeMap::new();
    if to <= from {
        return Ok(sizes);
    }
    let c: BaseConsumer = crate::broker::client(bootstrap)
        .set("group.id", "switchyard-bench-status-sizes")
        .set("enable.auto.commit", "false")
        .create()?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Offset(from))?;
    c.assign(&tpl)?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut next = from;
    while next < to {
        anyhow::ensure!(
            Instant::now() < deadline,
            "reading the status records {from}..{to} of `{topic}`: at {next}"
        );
        let Some(m) = c.poll(Duration::from_millis(100)) else {
            continue;
        };
        let m = m?;
        next = m.offset() + 1;
        let (Some(key), Some(value)) = (m.key(), m.payload()) else {
            continue;
        };
        let Some(&p) = partitions_of.get(String::from_utf8_lossy(key).as_ref()) else {
            continue;
        };
        sizes
            .entry(p)
            .or_insert(Sizes {
                count: 0,
                min: usize::MAX,
                max: 0,
                sum: 0,
            })
            .add(key.len() + value.len());
    }
    Ok(sizes)
}
