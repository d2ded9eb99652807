//! Tests for `consumer.rs`: defaults, builders, enums and the librdkafka mapping.

use std::collections::BTreeMap;

use crate::{AssignmentStrategy, ConsumerConfig, OffsetReset};

#[test]
fn defaults_match_the_documented_values() {
    let c = ConsumerConfig::default();
    assert_eq!(c.bootstrap_servers, "127.0.0.1:9092");
    assert_eq!(c.group_id, None);
    assert_eq!(c.group_instance_id, None);
    assert_eq!(c.client_id, None);
    assert_eq!(c.client_rack, None);
    assert_eq!(c.fetch_min_bytes, None);
    assert_eq!(c.fetch_max_wait_ms, None);
    assert_eq!(c.fetch_max_bytes, None);
    assert_eq!(c.max_partition_fetch_bytes, None);
    assert_eq!(c.max_poll_records, 500);
    assert_eq!(c.session_timeout_ms, 45_000);
    assert_eq!(c.heartbeat_interval_ms, 3_000);
    assert_eq!(c.max_poll_interval_ms, 300_000);
    assert_eq!(c.default_api_timeout_ms, 60_000);
    assert_eq!(c.request_timeout_ms, 30_000);
    assert_eq!(c.auto_offset_reset, OffsetReset::Latest);
    assert!(!c.enable_auto_commit);
    assert_eq!(c.auto_commit_interval_ms, 5_000);
    assert_eq!(c.partition_assignment_strategy, AssignmentStrategy::Range);
    assert_eq!(c.receive_buffer_bytes, None);
    assert_eq!(c.send_buffer_bytes, None);
    assert!(c.librdkafka.is_empty());
    assert_eq!(ConsumerConfig::new("127.0.0.1:9092"), c);
    assert_eq!(c.validate().unwrap(), vec![]);
}

#[test]
fn empty_toml_table_gives_defaults() {
    let c: ConsumerConfig = toml::from_str("").unwrap();
    assert_eq!(c, ConsumerConfig::default());
}

#[test]
fn builders_set_their_fields() {
    let c = ConsumerConfig::new("b:1")
        .with_group("g")
        .with_instance_id("i")
        .with_client_id("c")
        .with_strategy(AssignmentStrategy::CooperativeSticky)
        .with_offset_reset(OffsetReset::Earliest)
        .with_session_timeout_ms(10_000)
        .with_heartbeat_interval_ms(2_000)
        .with_max_poll_interval_ms(20_000)
        .with_max_poll_records(7);
    assert_eq!(c.group_id.as_deref(), Some("g"));
    assert_eq!(c.group_instance_id.as_deref(), Some("i"));
    assert_eq!(c.client_id.as_deref(), Some("c"));
    assert!(c.partition_assignment_strategy.is_cooperative());
    assert_eq!(c.auto_offset_reset, OffsetReset::Earliest);
    assert_eq!(
        (
            c.session_timeout_ms,
            c.heartbeat_interval_ms,
            c.max_poll_interval_ms
        ),
        (10_000, 2_000, 20_000)
    );
    assert_eq!(c.max_poll_records, 7);
}

#[test]
fn to_client_config_maps_names() {
    let mut c = ConsumerConfig::new("k1:9092,k2:9092")
        .with_group("orders")
        .with_instance_id("pod-1")
        .with_client_id("svc")
        .with_strategy(AssignmentStrategy::CooperativeSticky)
        .with_offset_reset(OffsetReset::Earliest);
    c.client_rack = Some("eu-1a".into());
    c.fetch_min_bytes = Some(10);
    c.fetch_max_wait_ms = Some(250);
    c.fetch_max_bytes = Some(2_000_000);
    c.max_partition_fetch_bytes = Some(500_000);
    c.request_timeout_ms = 20_000;
    c.receive_buffer_bytes = Some(65_536);
    c.send_buffer_bytes = Some(-1);
    let client = c.to_client_config().unwrap();
    let expect = [
        ("bootstrap.servers", "k1:9092,k2:9092"),
        ("group.id", "orders"),
        ("group.instance.id", "pod-1"),
        ("client.id", "svc"),
        ("client.rack", "eu-1a"),
        ("fetch.min.bytes", "10"),
        ("fetch.wait.max.ms", "250"),
        ("fetch.max.bytes", "2000000"),
        ("max.partition.fetch.bytes", "500000"),
        ("group.protocol", "classic"),
        ("session.timeout.ms", "45000"),
        ("heartbeat.interval.ms", "3000"),
        ("max.poll.interval.ms", "300000"),
        ("socket.timeout.ms", "20000"),
        ("auto.offset.reset", "earliest"),
        ("enable.auto.commit", "false"),
        ("auto.commit.interval.ms", "5000"),
        ("partition.assignment.strategy", "cooperative-sticky"),
        ("socket.receive.buffer.bytes", "65536"),
        ("socket.send.buffer.bytes", "0"),
        ("enable.auto.offset.store", "false"),
        ("enable.partition.eof", "false"),
    ];
    for (key, value) in expect {
        assert_eq!(client.get(key), Some(value), "{key}");
    }
    // Java names and runtime-only settings are not passed on.
    for key in [
        "fetch.max.wait.ms",
        "request.timeout.ms",
        "max.poll.records",
        "default.api.timeout.ms",
        "receive.buffer.bytes",
    ] {
        assert_eq!(client.get(key), None, "{key}");
    }
    assert_eq!(client.config_map().len(), expect.len());
    client.create_native_config().unwrap();
}

#[test]
fn to_client_config_omits_unset_optionals() {
    let client = ConsumerConfig::default().to_client_config().unwrap();
    for key in [
        "group.id",
        "group.instance.id",
        "client.id",
        "client.rack",
        "fetch.min.bytes",
        "fetch.wait.max.ms",
        "fetch.max.bytes",
        "max.partition.fetch.bytes",
        "socket.receive.buffer.bytes",
    ] {
        assert_eq!(client.get(key), None, "{key}");
    }
    assert_eq!(client.get("partition.assignment.strategy"), Some("range"));
    assert_eq!(client.get("auto.offset.reset"), Some("latest"));
}

#[test]
fn to_client_config_applies_passthrough_and_validates() {
    let mut c = ConsumerConfig {
        librdkafka: BTreeMap::from([
            ("statistics.interval.ms".to_string(), "1000".to_string()),
            ("socket.keepalive.enable".to_string(), "true".to_string()),
        ]),
        ..ConsumerConfig::default()
    };
    let client = c.to_client_config().unwrap();
    assert_eq!(client.get("statistics.interval.ms"), Some("1000"));
    assert_eq!(client.get("socket.keepalive.enable"), Some("true"));

    c.session_timeout_ms = 10;
    assert!(c.to_client_config().is_err());
}

#[test]
fn strategy_spellings() {
    for (s, text) in [
        (AssignmentStrategy::Range, "range"),
        (AssignmentStrategy::Roundrobin, "roundrobin"),
        (AssignmentStrategy::CooperativeSticky, "cooperative-sticky"),
    ] {
        assert_eq!(s.to_string(), text);
        assert_eq!(text.parse::<AssignmentStrategy>().unwrap(), s);
        let toml_text = toml::to_string(&BTreeMap::from([("s", s)])).unwrap();
        assert_eq!(toml_text.trim(), format!("s = \"{text}\""));
    }
    assert_eq!(
        "org.apache.kafka.clients.consumer.CooperativeStickyAssignor"
            .parse::<AssignmentStrategy>()
            .unwrap(),
        AssignmentStrategy::CooperativeSticky
    );
    assert_eq!(
        "RoundRobinAssignor".parse::<AssignmentStrategy>().unwrap(),
        AssignmentStrategy::Roundrobin
    );
    let err = "range,roundrobin"
        .parse::<AssignmentStrategy>()
        .unwrap_err();
    super::assert_mentions(
        &err,
        &[
            "partition.assignment.strategy",
            "range,roundrobin",
            "only one",
        ],
    );
    let err = "sticky".parse::<AssignmentStrategy>().unwrap_err();
    super::assert_mentions(&err, &["partition.assignment.strategy", "sticky"]);
}

#[test]
fn offset_reset_spellings() {
    for (r, text) in [
        (OffsetReset::Earliest, "earliest"),
        (OffsetReset::Latest, "latest"),
        (OffsetReset::Error, "error"),
    ] {
        assert_eq!(r.to_string(), text);
        assert_eq!(text.parse::<OffsetReset>().unwrap(), r);
    }
    for (alias, r) in [
        ("smallest", OffsetReset::Earliest),
        ("beginning", OffsetReset::Earliest),
        ("LARGEST", OffsetReset::Latest),
        ("end", OffsetReset::Latest),
        ("none", OffsetReset::Error),
    ] {
        assert_eq!(alias.parse::<OffsetReset>().unwrap(), r, "{alias}");
    }
    let c: ConsumerConfig = toml::from_str("auto_offset_reset = \"smallest\"").unwrap();
    assert_eq!(c.auto_offset_reset, OffsetReset::Earliest);
    let err = "oldest".parse::<OffsetReset>().unwrap_err();
    super::assert_mentions(&err, &["auto.offset.reset", "oldest"]);
}

#[test]
fn passthrough_table_accepts_scalars() {
    let c: ConsumerConfig = toml::from_str(
        r#"
        [librdkafka]
        "statistics.interval.ms" = 1000
        "socket.keepalive.enable" = true
        "client.dns.lookup" = "use_all_dns_ips"
        "#,
    )
    .unwrap();
    assert_eq!(c.librdkafka["statistics.interval.ms"], "1000");
    assert_eq!(c.librdkafka["socket.keepalive.enable"], "true");
    assert_eq!(c.librdkafka["client.dns.lookup"], "use_all_dns_ips");
}
