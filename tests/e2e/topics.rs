//! The topics the project creates (control, status, dead letters): created
//! with the broker's defaults, refused when an existing control or status
//! topic is not compacted, never created when creation is turned off.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;
use rdkafka::ClientConfig;
use switchyard_config::Connection;
use switchyard_control::kafka_store::{ensure_topic_with, KafkaStore, TopicOptions};
use switchyard_control::status_topic::{StatusPublisher, StatusTail};
use switchyard_control::ControlError;
use switchyard_testkit::topics::{create_topic, partition_count, unique_name};

use super::common::*;

fn cleanup_policy(topic: &str) -> Option<String> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .create()
        .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let res = rt
        .block_on(admin.describe_configs(
            [&ResourceSpecifier::Topic(topic)],
            &AdminOptions::new().request_timeout(Some(Duration::from_secs(10))),
        ))
        .unwrap();
    let resource = res.into_iter().next().unwrap().unwrap();
    resource.get("cleanup.policy").and_then(|e| e.value.clone())
}

#[test]
fn a_missing_control_topic_is_created_compacted_with_one_partition() {
    let topic = unique_name("sy-topics-created");
    let conn = Connection::new(bootstrap());
    let store = KafkaStore::new(&conn, &topic).unwrap();
    drop(store);
    assert_eq!(partition_count(&bootstrap(), &topic), 1);
    assert_eq!(cleanup_policy(&topic).as_deref(), Some("compact"));
}

#[test]
fn a_control_or_status_topic_that_is_not_compacted_is_refused_naming_the_setting() {
    let topic = unique_name("sy-topics-delete");
    create_topic(&bootstrap(), &topic, 1);
    let conn = Connection::new(bootstrap());
    for err in [
        KafkaStore::new(&conn, &topic).err().expect("refused"),
        StatusPublisher::new(&conn, &topic).err().expect("refused"),
        StatusTail::start(&conn, &topic).err().expect("refused"),
    ] {
        assert!(matches!(err, ControlError::Topic(_)), "{err}");
        let text = err.to_string();
        assert!(text.contains("cleanup.policy=delete"), "{text}");
        assert!(text.contains("cleanup.policy=compact"), "{text}");
        assert!(text.contains(&topic), "{text}");
    }
    // nothing was changed on the topic
    assert_eq!(cleanup_policy(&topic).as_deref(), Some("delete"));
}

#[test]
fn with_creation_off_a_missing_topic_is_an_error_and_stays_missing() {
    let topic = unique_name("sy-topics-nocreate");
    let conn = Connection::new(bootstrap());
    let err = KafkaStore::open(&conn, &topic, TopicOptions::no_create())
        .err()
        .expect("refused");
    let text = err.to_string();
    assert!(
        text.contains(&topic) && text.contains("creation is off"),
        "{text}"
    );
    // still missing
    let err = ensure_topic_with(&conn, &topic, TopicOptions::no_create()).unwrap_err();
    assert!(matches!(err, ControlError::Topic(_)), "{err}");
    // an existing compacted topic is accepted with creation off
    ensure_topic_with(&conn, &topic, TopicOptions::default()).unwrap();
    KafkaStore::open(&conn, &topic, TopicOptions::no_create()).unwrap();
}
