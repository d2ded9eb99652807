//! Tests for `file.rs`: the TOML file, parse errors and app-level rules.

use super::assert_mentions;
use crate::{
    AppConfig, AssignmentStrategy, CommitPolicy, ConfigError, ConsumerConfig, ListenerConfig,
};

const EXAMPLE: &str = r#"
[consumer]
bootstrap_servers = "127.0.0.1:9092"
group_id = "orders"
session_timeout_ms = 6000
heartbeat_interval_ms = 1000
partition_assignment_strategy = "cooperative-sticky"
[consumer.librdkafka]
"statistics.interval.ms" = "1000"
[[listener]]
name = "orders"
topics = ["orders"]
commit = { mode = "every-n", records = 100 }
"#;

#[test]
fn example_parses() {
    let app = AppConfig::from_toml_str(EXAMPLE).unwrap();
    let c = &app.consumer;
    assert_eq!(c.group_id.as_deref(), Some("orders"));
    assert_eq!(c.session_timeout_ms, 6000);
    assert_eq!(c.heartbeat_interval_ms, 1000);
    assert_eq!(
        c.partition_assignment_strategy,
        AssignmentStrategy::CooperativeSticky
    );
    assert_eq!(c.librdkafka["statistics.interval.ms"], "1000");
    assert_eq!(c.max_poll_records, 500, "unset fields keep defaults");
    assert_eq!(app.listeners.len(), 1);
    assert_eq!(
        app.listeners[0].commit,
        CommitPolicy::EveryN { records: 100 }
    );
    assert_eq!(app.listener("orders"), Some(&app.listeners[0]));
}

#[test]
fn example_round_trips() {
    let app = AppConfig::from_toml_str(EXAMPLE).unwrap();
    let text = toml::to_string(&app).unwrap();
    let again = AppConfig::from_toml_str(&text).unwrap();
    assert_eq!(again.consumer, app.consumer);
    assert_eq!(again.listeners, app.listeners);
}

#[test]
fn full_config_round_trips() {
    let mut consumer = ConsumerConfig::new("a:1,b:2")
        .with_group("g")
        .with_instance_id("i");
    consumer.fetch_max_bytes = Some(2_000_000);
    consumer.receive_buffer_bytes = Some(-1);
    consumer
        .librdkafka
        .insert("socket.keepalive.enable".into(), "true".into());
    let app = AppConfig {
        consumer,
        listeners: vec![
            ListenerConfig::new("a")
                .with_assign([crate::TopicPartitions::new("t", [0])])
                .with_commit(CommitPolicy::SyncPerBatch),
            ListenerConfig::new("b")
                .with_pattern("^b.*")
                .with_group("other")
                .with_dead_letter_topic("b.dead")
                .with_decode_error_policy(crate::DecodeErrorPolicy::Skip),
        ],
    };
    let text = toml::to_string(&app).unwrap();
    let again = AppConfig::from_toml_str(&text).unwrap();
    assert_eq!(again.consumer, app.consumer);
    assert_eq!(again.listeners, app.listeners);
}

#[test]
fn type_error_is_a_parse_error_naming_the_key() {
    let err = AppConfig::from_toml_str("[consumer]\nsession_timeout_ms = \"abc\"\n").unwrap_err();
    let ConfigError::Parse { path, message } = &err else {
        panic!("expected a parse error, got {err:?}");
    };
    assert_eq!(path, "<string>");
    assert!(message.contains("consumer.session_timeout_ms"), "{message}");
    assert!(message.contains("expected u32"), "{message}");
    assert!(message.contains("line 2"), "{message}");
}

#[test]
fn unknown_toml_keys_are_rejected() {
    let err = AppConfig::from_toml_str("[consumer]\nsesion_timeout_ms = 1\n").unwrap_err();
    assert!(matches!(err, ConfigError::Parse { .. }));
    assert_mentions(&err, &["sesion_timeout_ms", "unknown field"]);
    let err = AppConfig::from_toml_str("[consumer]\n[[listener]]\nname = \"x\"\ntopic = \"t\"\n")
        .unwrap_err();
    assert_mentions(&err, &["listener.topic", "unknown field"]);
    let err = AppConfig::from_toml_str("[consumer]\n[listeners]\n").unwrap_err();
    assert_mentions(&err, &["listeners"]);
}

#[test]
fn key_path_heuristic() {
    use crate::file::key_path;
    let text = "top = 1\n[a.b] # c\n\"x.y\" = [\n  2,\n]\n[[l]]\nk = { m = 1 }\n";
    assert_eq!(key_path(text, 6).as_deref(), Some("top"));
    let at = |needle: &str| text.find(needle).unwrap();
    assert_eq!(key_path(text, at("[\n")).as_deref(), Some("a.b.\"x.y\""));
    assert_eq!(key_path(text, at("2,")), None);
    assert_eq!(key_path(text, at("{ m")).as_deref(), Some("l.k"));
    assert_eq!(key_path(text, at("[[l]]")), None);
    assert_eq!(key_path(text, text.len() + 10), None);
}

#[test]
fn semantic_errors_are_reported_after_parsing() {
    let text = EXAMPLE.replace(
        "heartbeat_interval_ms = 1000",
        "heartbeat_interval_ms = 7000",
    );
    let err = AppConfig::from_toml_str(&text).unwrap_err();
    assert_mentions(&err, &["heartbeat.interval.ms", "7000", "6000"]);

    let text = EXAMPLE.replace("topics = [\"orders\"]", "");
    let err = AppConfig::from_toml_str(&text).unwrap_err();
    assert_mentions(&err, &["listener `orders`", "topics"]);
}

#[test]
fn consumer_table_is_required() {
    let err = AppConfig::from_toml_str("").unwrap_err();
    assert_mentions(&err, &["consumer"]);
}

#[test]
fn listener_names_must_be_unique() {
    let text = format!("{EXAMPLE}\n[[listener]]\nname = \"orders\"\ntopics = [\"b\"]\n");
    let err = AppConfig::from_toml_str(&text).unwrap_err();
    assert_mentions(&err, &["listener `orders`", "same name"]);
}

#[test]
fn subscribing_listeners_need_a_group() {
    let mut app = AppConfig {
        consumer: ConsumerConfig::default(),
        listeners: vec![ListenerConfig::new("a").with_topics(["a"])],
    };
    assert_mentions(&app.validate().unwrap_err(), &["listener `a`", "group_id"]);
    app.listeners[0].group_id = Some("own".into());
    app.validate().unwrap();
    app.listeners[0] = ListenerConfig::new("p").with_pattern("^p");
    assert_mentions(&app.validate().unwrap_err(), &["listener `p`", "group"]);
    // standalone listeners do not join a group
    app.listeners[0] = ListenerConfig::new("s").with_assign([crate::TopicPartitions::all("s")]);
    app.validate().unwrap();
}

#[test]
fn auto_commit_listener_needs_an_interval() {
    let mut consumer = ConsumerConfig::default().with_group("g");
    consumer.auto_commit_interval_ms = 0;
    let mut app = AppConfig {
        consumer,
        listeners: vec![ListenerConfig::new("a").with_topics(["a"])],
    };
    app.validate().unwrap();
    app.listeners[0].commit = CommitPolicy::Auto;
    assert_mentions(
        &app.validate().unwrap_err(),
        &["listener `a`", "auto.commit.interval.ms"],
    );
}

#[test]
fn shared_static_membership_warns() {
    let app = AppConfig {
        consumer: ConsumerConfig::default()
            .with_group("g")
            .with_instance_id("pod-0"),
        listeners: vec![
            ListenerConfig::new("a").with_topics(["a"]),
            ListenerConfig::new("b").with_topics(["b"]),
            ListenerConfig::new("c")
                .with_topics(["c"])
                .with_group("other"),
        ],
    };
    let warnings = app.validate().unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0].key, "group.instance.id");
    assert!(warnings[0].message.contains("`a`, `b`"), "{}", warnings[0]);
}

#[test]
fn from_file_reads_and_reports_the_path() {
    let dir = std::env::temp_dir().join(format!("switchyard-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.toml");
    std::fs::write(&good, EXAMPLE).unwrap();
    let app = AppConfig::from_file(&good).unwrap();
    assert_eq!(app.listeners[0].name, "orders");

    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "[consumer]\nsession_timeout_ms = \"abc\"\n").unwrap();
    let err = AppConfig::from_file(&bad).unwrap_err();
    assert!(matches!(&err, ConfigError::Parse { path, .. } if path.ends_with("bad.toml")));

    let missing = dir.join("missing.toml");
    let err = AppConfig::from_file(&missing).unwrap_err();
    assert!(matches!(err, ConfigError::Io { .. }));
    assert_mentions(&err, &["missing.toml"]);
    std::fs::remove_dir_all(&dir).unwrap();
}
