//! The topics the project creates (control, status, dead letters): created
//! with the broker's defaults, refused when an existing control or status
//! topic is not compacted, never created when creation is turned off.
//! An instance never creates its control topic: pointed at a missing one it
//! fails at start naming it and the command that creates it;
//! `--no-create-topics` makes the operator commands refuse a missing topic.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;
use rdkafka::ClientConfig;
use switchyard_config::Connection;
use switchyard_control::compacted_topic::{ensure_topic_with, TopicOptions};
use switchyard_control::kafka_store::KafkaStore;
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
    assert!(!exists(&topic));
    // an existing compacted topic is accepted with creation off
    ensure_topic_with(&conn, &topic, TopicOptions::default()).unwrap();
    KafkaStore::open(&conn, &topic, TopicOptions::no_create()).unwrap();
}

/// Does `topic` exist? (Asked without creating it.)
fn exists(topic: &str) -> bool {
    match ensure_topic_with(bootstrap(), topic, TopicOptions::no_create()) {
        Err(ControlError::MissingTopic(t)) => {
            assert_eq!(t, topic);
            false
        }
        _ => true,
    }
}

#[test]
fn an_instance_never_creates_its_control_topic() {
    let control = unique_name("sy-topics-typo-ctl");
    let status = unique_name("sy-topics-typo-st");
    let log = log_path("sy-topics-typo");
    let args: Vec<String> = [
        "--bootstrap",
        &bootstrap(),
        "--group",
        &unique_name("sy-topics-typo-g"),
        "--topics",
        &unique_name("sy-topics-typo-t"),
        "--log",
        &log.display().to_string(),
        "--instance",
        "typo-1",
        "--app",
        &unique_name("sy-topics-typo-app"),
        "--control-topic",
        &control,
        "--status-topic",
        &status,
    ]
    .map(str::to_string)
    .to_vec();
    let (code, _, err) = run_bounded(
        env!("CARGO_BIN_EXE_switchyard-probe"),
        &args,
        Duration::from_secs(60),
    );
    assert_ne!(code, 0, "{err}");
    assert!(
        err.contains(&format!("control topic `{control}` does not exist"))
            && err.contains("switchyard deploy init"),
        "{err}"
    );
    assert!(!exists(&control), "the instance created {control}");
    assert!(!exists(&status), "the instance created {status}");
}

#[test]
fn no_create_topics_refuses_a_missing_status_topic_by_name() {
    let plane = Plane::new("sy-topics-nc");
    // ctl: the status topic is read first
    let mut args = plane.cli_args("ctl", "pause");
    args.extend(["--listener", "l", "--no-create-topics"].map(str::to_string));
    let (code, _, err) = run_bounded(
        env!("CARGO_BIN_EXE_switchyard"),
        &args,
        Duration::from_secs(60),
    );
    assert_ne!(code, 0, "{err}");
    assert!(
        err.contains(&format!("topic `{}` does not exist", plane.status))
            && err.contains("creation is off"),
        "{err}"
    );
    assert!(!exists(&plane.status));
    // deploy, likewise
    let deploy = |p: &Plane| {
        let mut args = p.cli_args("deploy", "status");
        args.extend(["--group", "g", "--no-create-topics"].map(str::to_string));
        run_bounded(
            env!("CARGO_BIN_EXE_switchyard"),
            &args,
            Duration::from_secs(60),
        )
    };
    let (code, _, err) = deploy(&plane);
    assert_ne!(code, 0, "{err}");
    assert!(
        err.contains(&format!("topic `{}` does not exist", plane.status)),
        "{err}"
    );
    assert!(!exists(&plane.status));
    // created ahead, the status topic is accepted; a missing control topic
    // is refused by name
    ensure_topic_with(bootstrap(), &plane.status, TopicOptions::default()).unwrap();
    let missing = Plane {
        app: plane.app.clone(),
        control: unique_name("sy-topics-nc-ctl"),
        status: plane.status.clone(),
    };
    let (code, _, err) = deploy(&missing);
    assert_ne!(code, 0, "{err}");
    assert!(
        err.contains(&format!("topic `{}` does not exist", missing.control)),
        "{err}"
    );
    assert!(!exists(&missing.control));
    let mut args = plane.cli_args("ctl", "status");
    args.push("--no-create-topics".into());
    let (code, _, err) = run_bounded(
        env!("CARGO_BIN_EXE_switchyard"),
        &args,
        Duration::from_secs(60),
    );
    assert_eq!(code, 0, "{err}");
}
