//! Tests for `group.protocol`: the classic protocol and KIP-848's consumer
//! protocol, what each sends to librdkafka and what each refuses.

use std::collections::BTreeMap;

use super::assert_mentions;
use crate::{AppConfig, AssignmentStrategy, ConfigError, ConsumerConfig, GroupProtocol};

fn consumer() -> ConsumerConfig {
    ConsumerConfig::new("k:9092")
        .with_group("g")
        .with_group_protocol(GroupProtocol::Consumer)
}

#[track_caller]
fn constraint(c: &ConsumerConfig, parts: &[&str]) {
    let err = c.validate().unwrap_err();
    assert!(matches!(err, ConfigError::Constraint { .. }), "{err:?}");
    assert_mentions(&err, parts);
}

#[test]
fn classic_is_the_default_and_is_sent() {
    let c = ConsumerConfig::new("k:9092").with_group("g");
    assert_eq!(c.group_protocol, GroupProtocol::Classic);
    assert_eq!(c.group_remote_assignor, None);
    let client = c.to_client_config().unwrap();
    assert_eq!(client.get("group.protocol"), Some("classic"));
    assert_eq!(client.get("session.timeout.ms"), Some("45000"));
    assert_eq!(client.get("heartbeat.interval.ms"), Some("3000"));
    assert_eq!(client.get("partition.assignment.strategy"), Some("range"));
    assert_eq!(client.get("group.remote.assignor"), None);
}

#[test]
fn consumer_protocol_sends_none_of_the_classic_settings() {
    let c = consumer().with_remote_assignor("range");
    assert!(c.validate().unwrap().is_empty());
    let client = c.to_client_config().unwrap();
    assert_eq!(client.get("group.protocol"), Some("consumer"));
    assert_eq!(client.get("group.remote.assignor"), Some("range"));
    for key in [
        "session.timeout.ms",
        "heartbeat.interval.ms",
        "partition.assignment.strategy",
        "group.protocol.type",
    ] {
        assert_eq!(client.get(key), None, "{key}");
    }
    // the rest is as under classic
    assert_eq!(client.get("group.id"), Some("g"));
    assert_eq!(client.get("max.poll.interval.ms"), Some("300000"));
    assert_eq!(client.get("enable.auto.offset.store"), Some("false"));
    client.create_native_config().unwrap();
}

#[test]
fn consumer_protocol_without_an_assignor_leaves_it_to_the_broker() {
    let client = consumer().to_client_config().unwrap();
    assert_eq!(client.get("group.remote.assignor"), None);
}

#[test]
fn consumer_protocol_rejects_a_session_timeout_naming_its_replacement() {
    let c = consumer().with_session_timeout_ms(10_000);
    constraint(
        &c,
        &[
            "session.timeout.ms",
            "10000",
            "group.protocol",
            "group.consumer.session.timeout.ms",
        ],
    );
}

#[test]
fn consumer_protocol_rejects_a_heartbeat_interval_naming_its_replacement() {
    let c = consumer().with_heartbeat_interval_ms(1_000);
    constraint(
        &c,
        &[
            "heartbeat.interval.ms",
            "1000",
            "group.protocol",
            "group.consumer.heartbeat.interval.ms",
        ],
    );
}

#[test]
fn consumer_protocol_rejects_an_assignment_strategy_naming_its_replacement() {
    for strategy in [
        AssignmentStrategy::Roundrobin,
        AssignmentStrategy::CooperativeSticky,
    ] {
        let c = consumer().with_strategy(strategy);
        constraint(
            &c,
            &[
                "partition.assignment.strategy",
                strategy.as_str(),
                "group.remote.assignor",
                "uniform",
                "range",
            ],
        );
    }
}

#[test]
fn consumer_protocol_accepts_the_classic_defaults_set_explicitly() {
    let c = consumer()
        .with_session_timeout_ms(45_000)
        .with_heartbeat_interval_ms(3_000)
        .with_strategy(AssignmentStrategy::Range);
    c.validate().unwrap();
}

#[test]
fn consumer_protocol_drops_the_session_rules() {
    // max.poll.interval.ms below the (unused) session.timeout.ms default
    let c = consumer().with_max_poll_interval_ms(10_000);
    assert!(c.validate().unwrap().is_empty());
}

#[test]
fn classic_settings_in_the_passthrough_are_rejected_under_both_protocols() {
    for protocol in GroupProtocol::ALL {
        for key in [
            "session.timeout.ms",
            "heartbeat.interval.ms",
            "partition.assignment.strategy",
        ] {
            let mut c = consumer().with_group_protocol(protocol);
            c.librdkafka.insert(key.into(), "1000".into());
            constraint(&c, &[key, "typed setting"]);
        }
    }
    let mut c = consumer();
    c.librdkafka
        .insert("group.protocol.type".into(), "consumer".into());
    constraint(&c, &["group.protocol.type", "group.protocol", "consumer"]);
    // under classic it is librdkafka's business
    let mut c = consumer().with_group_protocol(GroupProtocol::Classic);
    c.librdkafka
        .insert("group.protocol.type".into(), "consumer".into());
    c.validate().unwrap();
}

#[test]
fn remote_assignor_under_classic_is_an_error() {
    let c = ConsumerConfig::new("k:9092")
        .with_group("g")
        .with_remote_assignor("uniform");
    constraint(
        &c,
        &[
            "group.remote.assignor",
            "uniform",
            "group.protocol",
            "consumer",
            "partition.assignment.strategy",
        ],
    );
}

#[test]
fn remote_assignor_must_not_be_blank_and_unknown_ones_warn() {
    let mut c = consumer();
    c.group_remote_assignor = Some(" ".into());
    let err = c.validate().unwrap_err();
    assert!(matches!(err, ConfigError::InvalidValue { .. }), "{err:?}");
    assert_mentions(&err, &["group.remote.assignor", "blank"]);

    let warnings = consumer()
        .with_remote_assignor("sticky")
        .validate()
        .unwrap();
    assert_eq!(warnings.len(), 1);
    assert_eq!(warnings[0].key, "group.remote.assignor");
    assert!(warnings[0].message.contains("sticky"));
    assert!(warnings[0].message.contains("uniform"));
    for known in ["uniform", "range"] {
        assert!(consumer()
            .with_remote_assignor(known)
            .validate()
            .unwrap()
            .is_empty());
    }
}

#[test]
fn consumer_protocol_has_no_heartbeat_warning() {
    // under classic, 3000 of 45000 is fine anyway; what matters is that the
    // classic rule is not applied to settings that are not sent
    let mut c = consumer();
    c.fetch_max_wait_ms = Some(100);
    assert!(c.validate().unwrap().is_empty());
}

#[test]
fn protocol_spellings_and_properties() {
    for (p, text) in [
        (GroupProtocol::Classic, "classic"),
        (GroupProtocol::Consumer, "consumer"),
    ] {
        assert_eq!(p.to_string(), text);
        assert_eq!(text.parse::<GroupProtocol>().unwrap(), p);
        assert_eq!(text.to_uppercase().parse::<GroupProtocol>().unwrap(), p);
        let toml_text = toml::to_string(&BTreeMap::from([("p", p)])).unwrap();
        assert_eq!(toml_text.trim(), format!("p = \"{text}\""));
    }
    let err = "kip848".parse::<GroupProtocol>().unwrap_err();
    assert_mentions(&err, &["group.protocol", "kip848", "classic", "consumer"]);

    let c = ConsumerConfig::from_properties([
        ("bootstrap.servers", "k:9092"),
        ("group.id", "g"),
        ("group.protocol", "consumer"),
        ("group.remote.assignor", "uniform"),
    ])
    .unwrap();
    assert_eq!(c.group_protocol, GroupProtocol::Consumer);
    assert_eq!(c.group_remote_assignor.as_deref(), Some("uniform"));
    assert!(c.librdkafka.is_empty(), "typed, not passed through");
    c.validate().unwrap();
}

#[test]
fn toml_keys_in_the_consumer_table() {
    let app = AppConfig::from_toml_str(
        r#"
        [consumer]
        bootstrap_servers = "k:9092"
        group_id = "orders"
        group_protocol = "consumer"
        group_remote_assignor = "range"
        [[listener]]
        name = "orders"
        topics = ["orders"]
        "#,
    )
    .unwrap();
    assert_eq!(app.consumer.group_protocol, GroupProtocol::Consumer);
    assert_eq!(app.consumer.group_remote_assignor.as_deref(), Some("range"));
    app.validate().unwrap();

    let err = AppConfig::from_toml_str(
        r#"
        [consumer]
        group_id = "orders"
        group_protocol = "consumer"
        session_timeout_ms = 6000
        [[listener]]
        name = "orders"
        topics = ["orders"]
        "#,
    )
    .unwrap_err();
    assert_mentions(
        &err,
        &["session.timeout.ms", "group.consumer.session.timeout.ms"],
    );

    let err = AppConfig::from_toml_str("[consumer]\ngroup_protocol = \"next\"\n").unwrap_err();
    assert_mentions(&err, &["group_protocol"]);
}
