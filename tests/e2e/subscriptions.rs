//! Subscriptions beyond a fixed topic list: a regex pattern picks up a topic
//! created after start; a standalone assignment (no group) of a whole topic
//! picks up partitions added later.

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use switchyard_runtime::metadata_watcher::MetadataSource;
use switchyard_runtime::Listener;

use super::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pattern_subscription_picks_up_a_topic_created_later() {
    let b = bootstrap();
    let prefix = unique_name("pat");
    let first = format!("{prefix}-first");
    create_topic(&b, &first, 1);
    let (builder, seen) = collecting(
        Listener::builder("pattern")
            .config(config(&unique_name("pat-g")))
            .pattern(format!("{}-.*", regex_escape(&prefix)))
            .metadata_refresh(Duration::from_millis(500)),
    );
    let l = builder.start().unwrap();
    let producer = SeqProducer::new(&b);
    producer.send_raw(&first, Some(0), None, b"one", None);
    eventually("record of the first topic", Duration::from_secs(20), || {
        count(&seen) == 1
    })
    .await;
    let later = format!("{prefix}-later");
    create_topic(&b, &later, 2);
    producer.send_raw(&later, Some(0), None, b"two", None);
    producer.send_raw(&later, Some(1), None, b"three", None);
    eventually(
        "records of the topic created later",
        Duration::from_secs(30),
        || count(&seen) == 3,
    )
    .await;
    let mut values: Vec<String> = seen.lock().unwrap().iter().map(|r| r.3.clone()).collect();
    values.sort();
    assert_eq!(
        values,
        vec!["one", "three", "two"],
        "each record once, from both topics"
    );
    l.shutdown().await;
}

/// Neither nisshi 0.8.1 (CreatePartitions answers UnsupportedFeature) nor
/// librdkafka's mock cluster can add partitions to a topic. So the topic is
/// created with 3 partitions and the listener reads partition counts from a
/// source of our own that shows 2 at first, then 3: the watcher must assign
/// the third partition and its records must arrive, on the real broker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_assignment_picks_up_partitions_added_later() {
    let b = bootstrap();
    let topic = new_topic(broker(), "standalone", 3);
    let group = unique_name("standalone-g");
    let visible = Arc::new(AtomicI32::new(2));
    let (builder, seen) = collecting(
        Listener::builder("standalone")
            .config(config(&group))
            .assign(topic.clone(), [])
            .metadata_source(Scripted(visible.clone()))
            .metadata_refresh(Duration::from_millis(300)),
    );
    let l = builder.start().unwrap();
    let producer = SeqProducer::new(&b);
    producer.send_raw(&topic, Some(1), None, b"p1", None);
    producer.send_raw(&topic, Some(2), None, b"p2", None);
    eventually("record of p1", Duration::from_secs(20), || {
        count(&seen) == 1
    })
    .await;
    assert_eq!(l.snapshot().await.unwrap().partitions.len(), 2);
    assert_eq!(
        group_members(&b, &group).0,
        0,
        "a standalone listener joins no group"
    );
    visible.store(3, Ordering::SeqCst); // the partition "is added"
    eventually(
        "record of the partition added later",
        Duration::from_secs(30),
        || count(&seen) == 2,
    )
    .await;
    assert_eq!(seen.lock().unwrap()[1].0, 2);
    assert_eq!(l.snapshot().await.unwrap().partitions.len(), 3);
    l.shutdown().await;
    assert_eq!(
        committed_offsets(&b, &group, &topic)[&2],
        1,
        "standalone commits under its group id"
    );
}

struct Scripted(Arc<AtomicI32>);

impl MetadataSource for Scripted {
    fn partition_count(&self, _topic: &str) -> Option<i32> {
        Some(self.0.load(Ordering::SeqCst))
    }
}

fn regex_escape(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c.to_string()
            } else {
                format!("\\{c}")
            }
        })
        .collect()
}
