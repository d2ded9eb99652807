//! Tests for `properties.rs`: building a config from Kafka dotted names.

use super::assert_mentions;
use crate::keys::TYPED_KEYS;
use crate::{AssignmentStrategy, ConfigError, ConsumerConfig, OffsetReset};

#[test]
fn from_properties_with_kafka_names() {
    let c = ConsumerConfig::from_properties([
        ("bootstrap.servers", "k1:9092"),
        ("group.id", "orders"),
        ("group.instance.id", "pod-3"),
        ("client.id", "svc"),
        ("client.rack", "r1"),
        ("fetch.min.bytes", "1"),
        ("fetch.max.wait.ms", "100"),
        ("fetch.max.bytes", "1048576"),
        ("max.partition.fetch.bytes", "524288"),
        ("max.poll.records", "50"),
        ("session.timeout.ms", "10000"),
        ("heartbeat.interval.ms", "3000"),
        ("max.poll.interval.ms", "60000"),
        ("default.api.timeout.ms", "40000"),
        ("request.timeout.ms", "25000"),
        ("auto.offset.reset", "earliest"),
        ("enable.auto.commit", "TRUE"),
        ("auto.commit.interval.ms", "1000"),
        ("partition.assignment.strategy", "roundrobin"),
        ("receive.buffer.bytes", "-1"),
        ("send.buffer.bytes", "131072"),
    ])
    .unwrap();
    let expected = ConsumerConfig {
        bootstrap_servers: "k1:9092".into(),
        group_id: Some("orders".into()),
        group_instance_id: Some("pod-3".into()),
        client_id: Some("svc".into()),
        client_rack: Some("r1".into()),
        fetch_min_bytes: Some(1),
        fetch_max_wait_ms: Some(100),
        fetch_max_bytes: Some(1_048_576),
        max_partition_fetch_bytes: Some(524_288),
        max_poll_records: 50,
        group_protocol: Default::default(),
        group_remote_assignor: None,
        session_timeout_ms: 10_000,
        heartbeat_interval_ms: 3_000,
        max_poll_interval_ms: 60_000,
        default_api_timeout_ms: 40_000,
        request_timeout_ms: 25_000,
        auto_offset_reset: OffsetReset::Earliest,
        enable_auto_commit: true,
        auto_commit_interval_ms: 1_000,
        partition_assignment_strategy: AssignmentStrategy::Roundrobin,
        receive_buffer_bytes: Some(-1),
        send_buffer_bytes: Some(131_072),
        librdkafka: Default::default(),
        connection: None,
    };
    assert_eq!(c, expected);
    c.validate().unwrap();
}

#[test]
fn librdkafka_spellings_set_the_typed_fields() {
    let c = ConsumerConfig::from_properties([
        ("metadata.broker.list", "k:1"),
        ("fetch.wait.max.ms", "200"),
        ("socket.timeout.ms", "15000"),
        ("fetch.message.max.bytes", "4096"),
        ("socket.receive.buffer.bytes", "1024"),
        ("socket.send.buffer.bytes", "2048"),
    ])
    .unwrap();
    assert_eq!(c.bootstrap_servers, "k:1");
    assert_eq!(c.fetch_max_wait_ms, Some(200));
    assert_eq!(c.request_timeout_ms, 15_000);
    assert_eq!(c.max_partition_fetch_bytes, Some(4096));
    assert_eq!(c.receive_buffer_bytes, Some(1024));
    assert_eq!(c.send_buffer_bytes, Some(2048));
    assert!(c.librdkafka.is_empty());
}

#[test]
fn bad_number_names_key_value_and_reason() {
    let err = ConsumerConfig::from_properties([("session.timeout.ms", "abc")]).unwrap_err();
    assert!(matches!(err, ConfigError::InvalidValue { .. }));
    assert_mentions(&err, &["session.timeout.ms", "abc", "integer"]);

    let err = ConsumerConfig::from_properties([("fetch.min.bytes", "-5")]).unwrap_err();
    assert_mentions(&err, &["fetch.min.bytes", "-5"]);

    let err = ConsumerConfig::from_properties([("max.poll.records", "lots")]).unwrap_err();
    assert_mentions(&err, &["max.poll.records", "lots"]);
}

#[test]
fn bad_enum_and_bool_values_name_the_key_as_written() {
    let err = ConsumerConfig::from_properties([("enable.auto.commit", "yes")]).unwrap_err();
    assert_mentions(&err, &["enable.auto.commit", "yes", "true"]);
    let err = ConsumerConfig::from_properties([("auto.offset.reset", "oldest")]).unwrap_err();
    assert_mentions(&err, &["auto.offset.reset", "oldest"]);
    let err =
        ConsumerConfig::from_properties([("partition.assignment.strategy", "sticky")]).unwrap_err();
    assert_mentions(&err, &["partition.assignment.strategy", "sticky"]);
    let err = ConsumerConfig::from_properties([("group.id", " ")]).unwrap_err();
    assert_mentions(&err, &["group.id", "empty"]);
}

#[test]
fn unknown_key_is_an_error_naming_it() {
    let err =
        ConsumerConfig::from_properties([("bootstrap.servers", "k:1"), ("no.such.thing", "1")])
            .unwrap_err();
    assert!(matches!(&err, ConfigError::UnknownKey { key } if key == "no.such.thing"));
    assert_mentions(&err, &["no.such.thing"]);
    // Java-only settings are not librdkafka properties either.
    let err = ConsumerConfig::from_properties([("key.deserializer", "x")]).unwrap_err();
    assert!(matches!(err, ConfigError::UnknownKey { .. }));
}

#[test]
fn librdkafka_properties_go_to_passthrough() {
    let c = ConsumerConfig::from_properties([
        ("statistics.interval.ms", "1000"),
        ("security.protocol", "plaintext"),
        ("queued.max.messages.kbytes", "1024"),
    ])
    .unwrap();
    assert_eq!(c.librdkafka.len(), 3);
    assert_eq!(c.librdkafka["statistics.interval.ms"], "1000");
    assert_eq!(c.librdkafka["security.protocol"], "plaintext");
    let client = c.to_client_config().unwrap();
    assert_eq!(client.get("queued.max.messages.kbytes"), Some("1024"));
}

#[test]
fn passthrough_value_is_checked_by_librdkafka() {
    let err = ConsumerConfig::from_properties([("statistics.interval.ms", "often")]).unwrap_err();
    assert!(matches!(err, ConfigError::InvalidValue { .. }));
    assert_mentions(&err, &["statistics.interval.ms", "often", "librdkafka"]);
}

#[test]
fn sensitive_values_are_redacted() {
    let err = ConsumerConfig::new("k:1")
        .set("enable.auto.offset.store", "true")
        .unwrap_err();
    assert_mentions(&err, &["enable.auto.offset.store", "runtime"]);
    let mut c = ConsumerConfig::default();
    c.librdkafka
        .insert("sasl.password".into(), "hunter2".into());
    c.librdkafka.insert("session.timeout.ms".into(), "1".into());
    // the duplicate is reported, but a password never appears in a message
    let err = c.validate().unwrap_err();
    assert!(!err.to_string().contains("hunter2"));
    assert_eq!(
        crate::secret::shown("sasl.password", "hunter2"),
        "<redacted>"
    );
}

#[test]
fn reserved_keys_are_rejected() {
    for key in ["enable.auto.offset.store", "enable.partition.eof"] {
        let err = ConsumerConfig::from_properties([(key, "true")]).unwrap_err();
        assert!(matches!(err, ConfigError::Constraint { .. }), "{key}");
        assert_mentions(&err, &[key, "true", "runtime"]);
    }
}

#[test]
fn set_overrides_and_later_entries_win() {
    let c = ConsumerConfig::from_properties([
        ("session.timeout.ms", "10000"),
        ("session.timeout.ms", "20000"),
    ])
    .unwrap()
    .set("client.id", "a")
    .unwrap();
    assert_eq!(c.session_timeout_ms, 20_000);
    assert_eq!(c.client_id.as_deref(), Some("a"));
}

#[test]
fn every_typed_key_and_alias_is_settable() {
    for typed in TYPED_KEYS {
        for key in std::iter::once(&typed.kafka).chain(typed.aliases) {
            let value = match typed.field {
                "auto_offset_reset" => "earliest",
                "enable_auto_commit" => "true",
                "partition_assignment_strategy" => "range",
                "group_protocol" => "consumer",
                "group_remote_assignor" => "uniform",
                _ => "1000",
            };
            ConsumerConfig::default()
                .set(key, value)
                .unwrap_or_else(|e| panic!("{key}: {e}"));
        }
    }
}

#[test]
fn typed_key_fields_match_the_serde_names() {
    let table = toml::Value::try_from(ConsumerConfig {
        group_id: Some("g".into()),
        group_instance_id: Some("i".into()),
        client_id: Some("c".into()),
        client_rack: Some("r".into()),
        fetch_min_bytes: Some(1),
        fetch_max_wait_ms: Some(1),
        fetch_max_bytes: Some(1),
        max_partition_fetch_bytes: Some(1),
        receive_buffer_bytes: Some(1),
        send_buffer_bytes: Some(1),
        group_remote_assignor: Some("uniform".into()),
        ..ConsumerConfig::default()
    })
    .unwrap();
    let table = table.as_table().unwrap();
    for typed in TYPED_KEYS {
        assert!(table.contains_key(typed.field), "{}", typed.field);
    }
    // every serde field except the passthrough map has a dotted name
    assert_eq!(table.len(), TYPED_KEYS.len() + 1);
}
