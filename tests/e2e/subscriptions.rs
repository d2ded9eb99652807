//! Subscriptions beyond a fixed topic list: a regex pattern picks up a topic
//! created after start; a standalone assignment (no group) of a whole topic
//! picks up partitions added later.

use std::time::Duration;

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

/// A standalone listener follows its topic's partition count: a partition
/// added with CreatePartitions while it runs is assigned, and its records
/// arrive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_assignment_picks_up_partitions_added_later() {
    let b = bootstrap();
    let topic = new_topic(broker(), "standalone", 2);
    let group = unique_name("standalone-g");
    let (builder, seen) = collecting(
        Listener::builder("standalone")
            .config(config(&group))
            .assign(topic.clone(), [])
            .metadata_refresh(Duration::from_millis(300)),
    );
    let l = builder.start().unwrap();
    let producer = SeqProducer::new(&b);
    producer.send_raw(&topic, Some(1), None, b"p1", None);
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
    add_partitions(&b, &topic, 3);
    // a new producer: the first one's metadata may not show the new partition yet
    SeqProducer::new(&b).send_raw(&topic, Some(2), None, b"p2", None);
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
