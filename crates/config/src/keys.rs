//! The Kafka dotted keys of the consumer settings: each typed setting with
//! its Java name, its TOML field and its librdkafka spellings
//! ([`TYPED_KEYS`]), the keys the runtime reserves ([`RESERVED_KEYS`]), and
//! the check of any other key (with its value) against librdkafka
//! ([`check_librdkafka_property`]). Shared by the parsing of dotted
//! properties, the validation and the connection properties.

use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaConfRes;
use rdkafka::ClientConfig;

use crate::error::ConfigError;
use crate::secret::shown;

/// A typed setting: its Kafka dotted name, its TOML field name and the other
/// dotted spellings (librdkafka names and aliases) that mean the same thing.
pub(crate) struct TypedKey {
    pub kafka: &'static str,
    pub field: &'static str,
    pub aliases: &'static [&'static str],
}

const fn key(
    kafka: &'static str,
    field: &'static str,
    aliases: &'static [&'static str],
) -> TypedKey {
    TypedKey {
        kafka,
        field,
        aliases,
    }
}

/// Every typed setting of [`ConsumerConfig`].
pub(crate) const TYPED_KEYS: &[TypedKey] = &[
    key(
        "bootstrap.servers",
        "bootstrap_servers",
        &["metadata.broker.list"],
    ),
    key("group.id", "group_id", &[]),
    key("group.instance.id", "group_instance_id", &[]),
    key("client.id", "client_id", &[]),
    key("client.rack", "client_rack", &[]),
    key("fetch.min.bytes", "fetch_min_bytes", &[]),
    key(
        "fetch.max.wait.ms",
        "fetch_max_wait_ms",
        &["fetch.wait.max.ms"],
    ),
    key("fetch.max.bytes", "fetch_max_bytes", &[]),
    key(
        "max.partition.fetch.bytes",
        "max_partition_fetch_bytes",
        &["fetch.message.max.bytes"],
    ),
    key("max.poll.records", "max_poll_records", &[]),
    key("session.timeout.ms", "session_timeout_ms", &[]),
    key("heartbeat.interval.ms", "heartbeat_interval_ms", &[]),
    key("max.poll.interval.ms", "max_poll_interval_ms", &[]),
    key("default.api.timeout.ms", "default_api_timeout_ms", &[]),
    key(
        "request.timeout.ms",
        "request_timeout_ms",
        &["socket.timeout.ms"],
    ),
    key("auto.offset.reset", "auto_offset_reset", &[]),
    key(
        "enable.auto.commit",
        "enable_auto_commit",
        &["auto.commit.enable"],
    ),
    key("auto.commit.interval.ms", "auto_commit_interval_ms", &[]),
    key(
        "partition.assignment.strategy",
        "partition_assignment_strategy",
        &[],
    ),
    key("group.protocol", "group_protocol", &[]),
    key("group.remote.assignor", "group_remote_assignor", &[]),
    key(
        "receive.buffer.bytes",
        "receive_buffer_bytes",
        &["socket.receive.buffer.bytes"],
    ),
    key(
        "send.buffer.bytes",
        "send_buffer_bytes",
        &["socket.send.buffer.bytes"],
    ),
];

/// librdkafka properties the runtime fixes itself, with the reason.
pub(crate) const RESERVED_KEYS: &[(&str, &str)] = &[
    (
        "enable.auto.offset.store",
        "is managed by the runtime (always `false`: offsets are stored only after handlers finish); choose a listener commit policy instead",
    ),
    (
        "enable.partition.eof",
        "is managed by the runtime (always `false`)",
    ),
];

/// Finds the typed setting a dotted key (Kafka name or alias) refers to.
pub(crate) fn typed_key(dotted: &str) -> Option<&'static TypedKey> {
    TYPED_KEYS
        .iter()
        .find(|k| k.kafka == dotted || k.aliases.contains(&dotted))
}

/// The reason a dotted key cannot be set by users, if it is reserved.
pub(crate) fn reserved_reason(dotted: &str) -> Option<&'static str> {
    RESERVED_KEYS
        .iter()
        .find(|(k, _)| *k == dotted)
        .map(|(_, reason)| *reason)
}

/// Checks one property against librdkafka by setting it on an otherwise
/// empty native configuration.
pub(crate) fn check_librdkafka_property(key: &str, value: &str) -> Result<(), ConfigError> {
    let mut client = ClientConfig::new();
    client.set(key, value);
    match client.create_native_config() {
        Ok(_) => Ok(()),
        Err(KafkaError::ClientConfig(RDKafkaConfRes::RD_KAFKA_CONF_UNKNOWN, ..)) => {
            Err(ConfigError::UnknownKey {
                key: key.to_string(),
            })
        }
        Err(KafkaError::ClientConfig(_, description, ..)) => Err(ConfigError::invalid(
            key,
            shown(key, value),
            format!("rejected by librdkafka: {}", description.trim()),
        )),
        Err(other) => Err(ConfigError::invalid(
            key,
            shown(key, value),
            other.to_string(),
        )),
    }
}
