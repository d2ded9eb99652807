//! Tests for `validate.rs`: every rule, with the key and value in the message.

use super::assert_mentions;
use crate::{ConfigError, ConsumerConfig};

fn base() -> ConsumerConfig {
    ConsumerConfig::new("k:9092").with_group("g")
}

#[track_caller]
fn constraint(c: &ConsumerConfig, parts: &[&str]) {
    let err = c.validate().unwrap_err();
    assert!(matches!(err, ConfigError::Constraint { .. }), "{err:?}");
    assert_mentions(&err, parts);
}

#[track_caller]
fn invalid(c: &ConsumerConfig, parts: &[&str]) {
    let err = c.validate().unwrap_err();
    assert!(matches!(err, ConfigError::InvalidValue { .. }), "{err:?}");
    assert_mentions(&err, parts);
}

#[test]
fn bootstrap_servers_must_not_be_blank() {
    invalid(
        &ConsumerConfig::new("  "),
        &["bootstrap.servers", "host:port"],
    );
}

#[test]
fn blank_ids_are_rejected() {
    let mut c = base();
    c.client_id = Some(String::new());
    invalid(&c, &["client.id", "blank"]);
}

#[test]
fn heartbeat_must_be_below_session_timeout() {
    let c = base()
        .with_session_timeout_ms(6000)
        .with_heartbeat_interval_ms(6000);
    constraint(&c, &["heartbeat.interval.ms", "6000", "session.timeout.ms"]);
    let c = base()
        .with_session_timeout_ms(6000)
        .with_heartbeat_interval_ms(9000);
    constraint(&c, &["heartbeat.interval.ms", "9000", "(6000)"]);
    let c = base().with_heartbeat_interval_ms(0);
    invalid(&c, &["heartbeat.interval.ms", "`0`"]);
}

#[test]
fn heartbeat_above_a_third_of_session_warns() {
    let c = base()
        .with_session_timeout_ms(9000)
        .with_heartbeat_interval_ms(3001);
    let warnings = c.validate().unwrap();
    assert_eq!(warnings.len(), 1);
    assert_eq!(warnings[0].key, "heartbeat.interval.ms");
    assert!(warnings[0].message.contains("3001"));
    assert!(warnings[0].message.contains("9000"));
    // exactly a third is fine
    let c = base()
        .with_session_timeout_ms(9000)
        .with_heartbeat_interval_ms(3000);
    assert!(c.validate().unwrap().is_empty());
}

#[test]
fn session_timeout_has_a_minimum() {
    let c = base()
        .with_session_timeout_ms(999)
        .with_heartbeat_interval_ms(100);
    invalid(&c, &["session.timeout.ms", "999", "1000"]);
}

#[test]
fn session_timeout_upper_bound_comes_from_librdkafka() {
    let c = base()
        .with_session_timeout_ms(4_000_000)
        .with_max_poll_interval_ms(5_000_000);
    invalid(&c, &["session.timeout.ms", "4000000", "librdkafka"]);
}

#[test]
fn librdkafka_ranges_are_reported_under_the_kafka_name() {
    let mut c = base();
    c.request_timeout_ms = 5;
    invalid(&c, &["request.timeout.ms", "`5`", "socket.timeout.ms"]);
}

#[test]
fn max_poll_interval_must_cover_session_timeout() {
    let c = base().with_max_poll_interval_ms(30_000);
    constraint(
        &c,
        &[
            "max.poll.interval.ms",
            "30000",
            "session.timeout.ms",
            "45000",
        ],
    );
}

#[test]
fn max_poll_records_must_be_positive() {
    invalid(
        &base().with_max_poll_records(0),
        &["max.poll.records", "`0`"],
    );
}

#[test]
fn default_api_timeout_must_be_positive() {
    let mut c = base();
    c.default_api_timeout_ms = 0;
    invalid(&c, &["default.api.timeout.ms", "`0`"]);
}

#[test]
fn fetch_min_must_not_exceed_fetch_max() {
    let mut c = base();
    c.fetch_min_bytes = Some(3_000_000);
    c.fetch_max_bytes = Some(2_000_000);
    constraint(
        &c,
        &["fetch.min.bytes", "3000000", "fetch.max.bytes", "2000000"],
    );
}

#[test]
fn fetch_max_must_cover_message_max() {
    let mut c = base();
    c.fetch_max_bytes = Some(1000);
    constraint(&c, &["fetch.max.bytes", "1000", "message.max.bytes"]);
    c.librdkafka
        .insert("message.max.bytes".into(), "1000".into());
    c.validate().unwrap();
}

#[test]
fn receive_message_max_must_cover_fetch_max() {
    let mut c = base();
    c.librdkafka
        .insert("receive.message.max.bytes".into(), "1000000".into());
    constraint(
        &c,
        &["receive.message.max.bytes", "1000000", "fetch.max.bytes"],
    );
    c.fetch_max_bytes = Some(1_000_000);
    c.librdkafka
        .insert("receive.message.max.bytes".into(), "1000512".into());
    c.validate().unwrap();
}

#[test]
fn instance_id_requires_group_id() {
    let c = ConsumerConfig::new("k:1").with_instance_id("pod-0");
    constraint(&c, &["group.instance.id", "pod-0", "group.id"]);
    base().with_instance_id("pod-0").validate().unwrap();
}

#[test]
fn auto_commit_needs_an_interval() {
    let mut c = base();
    c.auto_commit_interval_ms = 0;
    c.validate().unwrap();
    c.enable_auto_commit = true;
    constraint(&c, &["auto.commit.interval.ms", "0", "enable.auto.commit"]);
}

#[test]
fn buffer_sizes_below_minus_one_are_rejected() {
    let mut c = base();
    c.send_buffer_bytes = Some(-2);
    invalid(&c, &["send.buffer.bytes", "-2"]);
}

#[test]
fn passthrough_duplicating_a_typed_field_is_rejected() {
    for (key, field) in [
        ("session.timeout.ms", "session_timeout_ms"),
        ("fetch.wait.max.ms", "fetch_max_wait_ms"),
        ("socket.timeout.ms", "request_timeout_ms"),
        ("bootstrap.servers", "bootstrap_servers"),
    ] {
        let mut c = base();
        c.librdkafka.insert(key.into(), "6000".into());
        constraint(&c, &[key, "6000", field, "typed"]);
    }
}

#[test]
fn passthrough_unknown_key_is_rejected() {
    let mut c = base();
    c.librdkafka.insert("not.a.property".into(), "1".into());
    let err = c.validate().unwrap_err();
    assert!(matches!(&err, ConfigError::UnknownKey { key } if key == "not.a.property"));
}

#[test]
fn passthrough_bad_value_is_rejected_by_librdkafka() {
    let mut c = base();
    c.librdkafka
        .insert("security.protocol".into(), "carrier-pigeon".into());
    invalid(&c, &["security.protocol", "carrier-pigeon", "librdkafka"]);
}

#[test]
fn passthrough_reserved_and_group_protocol_are_rejected() {
    let mut c = base();
    c.librdkafka
        .insert("enable.auto.offset.store".into(), "true".into());
    constraint(&c, &["enable.auto.offset.store", "true", "runtime"]);

    // `group.protocol` is a typed setting now, in either spelling
    for value in ["consumer", "classic"] {
        let mut c = base();
        c.librdkafka.insert("group.protocol".into(), value.into());
        constraint(&c, &["group.protocol", value, "group_protocol"]);
    }
}

#[test]
fn fetch_wait_close_to_request_timeout_warns() {
    let mut c = base();
    c.fetch_max_wait_ms = Some(29_500);
    let warnings = c.validate().unwrap();
    assert_eq!(warnings.len(), 1);
    assert_eq!(warnings[0].key, "fetch.max.wait.ms");
    assert!(warnings[0].message.contains("29500"));
}

#[test]
fn api_timeout_below_request_timeout_warns() {
    let mut c = base();
    c.default_api_timeout_ms = 10_000;
    let warnings = c.validate().unwrap();
    assert_eq!(warnings.len(), 1);
    assert_eq!(warnings[0].key, "default.api.timeout.ms");
    assert_eq!(
        warnings[0].to_string(),
        format!("`default.api.timeout.ms`: {}", warnings[0].message)
    );
}
