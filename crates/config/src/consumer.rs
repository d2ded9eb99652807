//! The typed consumer configuration and its mapping onto librdkafka.
//!
//! [`ConsumerConfig`] mirrors the Java consumer settings that matter to a
//! Switchyard runtime (with Java's names and defaults) and translates them to
//! librdkafka property names in [`ConsumerConfig::to_client_config`]. Any other
//! librdkafka property can be passed through the `librdkafka` map.
//!
//! Parsing from Kafka dotted property names lives in `properties.rs`, the
//! validation rules in `validate.rs`.

use std::collections::BTreeMap;
use std::fmt;

use rdkafka::ClientConfig;
use serde::{Deserialize, Serialize};

use crate::assignment::AssignmentStrategy;
use crate::connection::{Connection, DEFAULT_BOOTSTRAP_SERVERS};
use crate::error::ConfigError;
use crate::group_protocol::GroupProtocol;
use crate::offset_reset::OffsetReset;

/// Consumer settings, named after the Java client, mapped onto librdkafka.
///
/// In TOML the keys are the snake_case field names; librdkafka properties
/// without a typed field go into the `[consumer.librdkafka]` table under their
/// dotted names. Every field has a default, see [`ConsumerConfig::default`].
///
/// # Examples
///
/// ```
/// use switchyard_config::{AssignmentStrategy, ConsumerConfig};
///
/// let config = ConsumerConfig::new("kafka-1:9092,kafka-2:9092")
///     .with_group("orders")
///     .with_strategy(AssignmentStrategy::CooperativeSticky);
/// let client = config.to_client_config().unwrap();
/// assert_eq!(client.get("group.id"), Some("orders"));
/// assert_eq!(client.get("partition.assignment.strategy"), Some("cooperative-sticky"));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsumerConfig {
    /// `bootstrap.servers`: comma separated `host:port` list.
    pub bootstrap_servers: String,
    /// `group.id`; omitted from the client config when `None`.
    pub group_id: Option<String>,
    /// `group.instance.id` (static membership); requires `group.id`.
    pub group_instance_id: Option<String>,
    /// `client.id`.
    pub client_id: Option<String>,
    /// `client.rack`.
    pub client_rack: Option<String>,
    /// `fetch.min.bytes`.
    pub fetch_min_bytes: Option<u32>,
    /// Java `fetch.max.wait.ms`, librdkafka `fetch.wait.max.ms`.
    pub fetch_max_wait_ms: Option<u32>,
    /// `fetch.max.bytes`.
    pub fetch_max_bytes: Option<u32>,
    /// `max.partition.fetch.bytes`.
    pub max_partition_fetch_bytes: Option<u32>,
    /// `max.poll.records`: the runtime's batch size limit (librdkafka has no
    /// such setting). Default 500, at least 1.
    pub max_poll_records: usize,
    /// `group.protocol`, default `classic`. Under `consumer` (KIP-848)
    /// `session.timeout.ms`, `heartbeat.interval.ms` and
    /// `partition.assignment.strategy` are not sent and must keep their
    /// defaults; see [`GroupProtocol`].
    pub group_protocol: GroupProtocol,
    /// `group.remote.assignor`: the broker-side assignor under
    /// `group.protocol = consumer` (`uniform` or `range`; unset: the
    /// broker's default, `uniform`). An error under `classic`.
    pub group_remote_assignor: Option<String>,
    /// `session.timeout.ms`, default 45000 (classic protocol only).
    pub session_timeout_ms: u32,
    /// `heartbeat.interval.ms`, default 3000 (classic protocol only).
    pub heartbeat_interval_ms: u32,
    /// `max.poll.interval.ms`, default 300000.
    pub max_poll_interval_ms: u32,
    /// `default.api.timeout.ms`, default 60000: the runtime's timeout for
    /// blocking calls (synchronous commit, seek, metadata). Not passed to
    /// librdkafka.
    pub default_api_timeout_ms: u32,
    /// Java `request.timeout.ms`, librdkafka `socket.timeout.ms`; default 30000.
    pub request_timeout_ms: u32,
    /// `auto.offset.reset`, default `latest`.
    pub auto_offset_reset: OffsetReset,
    /// `enable.auto.commit`, default `false`: a listener's
    /// [`CommitPolicy`](crate::CommitPolicy) decides (the listener's
    /// configuration turns it on for the policies that need it, in its
    /// `effective_consumer`).
    pub enable_auto_commit: bool,
    /// `auto.commit.interval.ms`, default 5000.
    pub auto_commit_interval_ms: u32,
    /// `partition.assignment.strategy`, default `range` (classic protocol
    /// only).
    pub partition_assignment_strategy: AssignmentStrategy,
    /// Java `receive.buffer.bytes`, librdkafka `socket.receive.buffer.bytes`
    /// (`-1` means the OS default and is passed as `0`).
    pub receive_buffer_bytes: Option<i32>,
    /// Java `send.buffer.bytes`, librdkafka `socket.send.buffer.bytes`
    /// (`-1` means the OS default and is passed as `0`).
    pub send_buffer_bytes: Option<i32>,
    /// Any other librdkafka property, by its dotted name. Applied last.
    /// TOML values may be strings, integers, floats or booleans.
    #[serde(deserialize_with = "deserialize_properties")]
    pub librdkafka: BTreeMap<String, String>,
    /// The connection's properties (security: `security.protocol`, `sasl.*`,
    /// `ssl.*`, ...), applied before the typed settings; its
    /// `bootstrap.servers` is replaced by [`ConsumerConfig::bootstrap_servers`].
    /// Set with [`ConsumerConfig::with_connection`]; not read from TOML here
    /// (the `[kafka]` table is a [`Connection`]'s).
    #[serde(skip)]
    pub connection: Option<Connection>,
}

impl Default for ConsumerConfig {
    /// The Java client's defaults, except `enable.auto.commit = false`.
    ///
    /// ```
    /// use switchyard_config::{AssignmentStrategy, ConsumerConfig, OffsetReset};
    ///
    /// let c = ConsumerConfig::default();
    /// assert_eq!(c.bootstrap_servers, "127.0.0.1:9092");
    /// assert_eq!(c.session_timeout_ms, 45_000);
    /// assert_eq!(c.auto_offset_reset, OffsetReset::Latest);
    /// assert_eq!(c.partition_assignment_strategy, AssignmentStrategy::Range);
    /// assert!(!c.enable_auto_commit);
    /// ```
    fn default() -> Self {
        ConsumerConfig {
            bootstrap_servers: DEFAULT_BOOTSTRAP_SERVERS.to_string(),
            connection: None,
            group_id: None,
            group_instance_id: None,
            client_id: None,
            client_rack: None,
            fetch_min_bytes: None,
            fetch_max_wait_ms: None,
            fetch_max_bytes: None,
            max_partition_fetch_bytes: None,
            max_poll_records: 500,
            group_protocol: GroupProtocol::Classic,
            group_remote_assignor: None,
            session_timeout_ms: 45_000,
            heartbeat_interval_ms: 3_000,
            max_poll_interval_ms: 300_000,
            default_api_timeout_ms: 60_000,
            request_timeout_ms: 30_000,
            auto_offset_reset: OffsetReset::Latest,
            enable_auto_commit: false,
            auto_commit_interval_ms: 5_000,
            partition_assignment_strategy: AssignmentStrategy::Range,
            receive_buffer_bytes: None,
            send_buffer_bytes: None,
            librdkafka: BTreeMap::new(),
        }
    }
}

impl ConsumerConfig {
    /// Defaults with the given `bootstrap.servers`.
    ///
    /// ```
    /// use switchyard_config::ConsumerConfig;
    ///
    /// let c = ConsumerConfig::new("broker:9092");
    /// assert_eq!(c.bootstrap_servers, "broker:9092");
    /// assert_eq!(c.max_poll_records, 500);
    /// ```
    pub fn new(bootstrap_servers: impl Into<String>) -> Self {
        ConsumerConfig {
            bootstrap_servers: bootstrap_servers.into(),
            ..Self::default()
        }
    }

    /// Defaults on `connection`: its bootstrap servers and every other
    /// property of it (security settings) in the client configuration.
    ///
    /// ```
    /// use switchyard_config::{Connection, ConsumerConfig};
    ///
    /// let conn = Connection::new("broker:9093").with("security.protocol", "SSL")?;
    /// let c = ConsumerConfig::default().with_connection(conn);
    /// let client = c.to_client_config()?;
    /// assert_eq!(client.get("bootstrap.servers"), Some("broker:9093"));
    /// assert_eq!(client.get("security.protocol"), Some("SSL"));
    /// # Ok::<(), switchyard_config::ConfigError>(())
    /// ```
    pub fn with_connection(mut self, connection: Connection) -> Self {
        self.bootstrap_servers = connection.bootstrap().to_string();
        self.connection = Some(connection);
        self
    }

    /// The connection every other client of this consumer's cluster is
    /// built from (dead-letter producer, admin client): the connection set
    /// with [`ConsumerConfig::with_connection`], or a plaintext one, with
    /// [`ConsumerConfig::bootstrap_servers`].
    pub fn connection(&self) -> Connection {
        self.connection
            .clone()
            .unwrap_or_default()
            .with_bootstrap(self.bootstrap_servers.clone())
    }

    /// Sets `group.id`.
    ///
    /// ```
    /// # use switchyard_config::ConsumerConfig;
    /// let c = ConsumerConfig::new("b:9092").with_group("orders");
    /// assert_eq!(c.group_id.as_deref(), Some("orders"));
    /// ```
    pub fn with_group(mut self, group_id: impl Into<String>) -> Self {
        self.group_id = Some(group_id.into());
        self
    }

    /// Sets `group.instance.id` (static membership).
    ///
    /// ```
    /// # use switchyard_config::ConsumerConfig;
    /// let c = ConsumerConfig::new("b:9092").with_group("g").with_instance_id("pod-0");
    /// assert_eq!(c.group_instance_id.as_deref(), Some("pod-0"));
    /// ```
    pub fn with_instance_id(mut self, instance_id: impl Into<String>) -> Self {
        self.group_instance_id = Some(instance_id.into());
        self
    }

    /// Sets `client.id`.
    ///
    /// ```
    /// # use switchyard_config::ConsumerConfig;
    /// let c = ConsumerConfig::new("b:9092").with_client_id("billing");
    /// assert_eq!(c.client_id.as_deref(), Some("billing"));
    /// ```
    pub fn with_client_id(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = Some(client_id.into());
        self
    }

    /// Sets `partition.assignment.strategy`.
    ///
    /// ```
    /// # use switchyard_config::{AssignmentStrategy, ConsumerConfig};
    /// let c = ConsumerConfig::new("b:9092").with_strategy(AssignmentStrategy::Roundrobin);
    /// assert_eq!(c.partition_assignment_strategy, AssignmentStrategy::Roundrobin);
    /// ```
    pub fn with_strategy(mut self, strategy: AssignmentStrategy) -> Self {
        self.partition_assignment_strategy = strategy;
        self
    }

    /// Sets `group.protocol`.
    ///
    /// ```
    /// # use switchyard_config::{ConsumerConfig, GroupProtocol};
    /// let c = ConsumerConfig::new("b:9092").with_group_protocol(GroupProtocol::Consumer);
    /// let client = c.to_client_config().unwrap();
    /// assert_eq!(client.get("group.protocol"), Some("consumer"));
    /// assert_eq!(client.get("session.timeout.ms"), None);
    /// ```
    pub fn with_group_protocol(mut self, protocol: GroupProtocol) -> Self {
        self.group_protocol = protocol;
        self
    }

    /// Sets `group.remote.assignor` (only valid with
    /// `group.protocol = consumer`).
    ///
    /// ```
    /// # use switchyard_config::{ConsumerConfig, GroupProtocol};
    /// let c = ConsumerConfig::new("b:9092")
    ///     .with_group_protocol(GroupProtocol::Consumer)
    ///     .with_remote_assignor("range");
    /// assert_eq!(c.group_remote_assignor.as_deref(), Some("range"));
    /// ```
    pub fn with_remote_assignor(mut self, assignor: impl Into<String>) -> Self {
        self.group_remote_assignor = Some(assignor.into());
        self
    }

    /// Sets `auto.offset.reset`.
    ///
    /// ```
    /// # use switchyard_config::{ConsumerConfig, OffsetReset};
    /// let c = ConsumerConfig::new("b:9092").with_offset_reset(OffsetReset::Earliest);
    /// assert_eq!(c.auto_offset_reset, OffsetReset::Earliest);
    /// ```
    pub fn with_offset_reset(mut self, reset: OffsetReset) -> Self {
        self.auto_offset_reset = reset;
        self
    }

    /// Sets `session.timeout.ms`.
    ///
    /// ```
    /// # use switchyard_config::ConsumerConfig;
    /// let c = ConsumerConfig::new("b:9092").with_session_timeout_ms(10_000);
    /// assert_eq!(c.session_timeout_ms, 10_000);
    /// ```
    pub fn with_session_timeout_ms(mut self, ms: u32) -> Self {
        self.session_timeout_ms = ms;
        self
    }

    /// Sets `heartbeat.interval.ms`.
    ///
    /// ```
    /// # use switchyard_config::ConsumerConfig;
    /// let c = ConsumerConfig::new("b:9092").with_heartbeat_interval_ms(1_000);
    /// assert_eq!(c.heartbeat_interval_ms, 1_000);
    /// ```
    pub fn with_heartbeat_interval_ms(mut self, ms: u32) -> Self {
        self.heartbeat_interval_ms = ms;
        self
    }

    /// Sets `max.poll.interval.ms`.
    ///
    /// ```
    /// # use switchyard_config::ConsumerConfig;
    /// let c = ConsumerConfig::new("b:9092").with_max_poll_interval_ms(60_000);
    /// assert_eq!(c.max_poll_interval_ms, 60_000);
    /// ```
    pub fn with_max_poll_interval_ms(mut self, ms: u32) -> Self {
        self.max_poll_interval_ms = ms;
        self
    }

    /// Sets `max.poll.records` (the runtime's batch size limit).
    ///
    /// ```
    /// # use switchyard_config::ConsumerConfig;
    /// let c = ConsumerConfig::new("b:9092").with_max_poll_records(50);
    /// assert_eq!(c.max_poll_records, 50);
    /// ```
    pub fn with_max_poll_records(mut self, records: usize) -> Self {
        self.max_poll_records = records;
        self
    }

    /// Builds the librdkafka client configuration, after [`validate`].
    ///
    /// Typed settings are translated to librdkafka names (`fetch.max.wait.ms`
    /// becomes `fetch.wait.max.ms`, `request.timeout.ms` becomes
    /// `socket.timeout.ms`, ...), `group.id` is omitted when unset,
    /// `group.protocol` is always set, under `consumer` without
    /// `session.timeout.ms`, `heartbeat.interval.ms` and
    /// `partition.assignment.strategy` (the broker owns them), and the
    /// runtime's fixed settings `enable.auto.offset.store = false` (offsets
    /// are stored only after handlers finish) and `enable.partition.eof =
    /// false` are always present. The `librdkafka` passthrough entries come
    /// last. `max.poll.records` and `default.api.timeout.ms` are runtime-side
    /// settings and are not passed on.
    ///
    /// [`validate`]: ConsumerConfig::validate
    ///
    /// ```
    /// use switchyard_config::ConsumerConfig;
    ///
    /// let mut config = ConsumerConfig::new("b:9092");
    /// config.fetch_max_wait_ms = Some(250);
    /// config.librdkafka.insert("statistics.interval.ms".into(), "1000".into());
    /// let client = config.to_client_config().unwrap();
    /// assert_eq!(client.get("fetch.wait.max.ms"), Some("250"));
    /// assert_eq!(client.get("socket.timeout.ms"), Some("30000"));
    /// assert_eq!(client.get("enable.auto.offset.store"), Some("false"));
    /// assert_eq!(client.get("statistics.interval.ms"), Some("1000"));
    /// assert_eq!(client.get("group.id"), None);
    /// ```
    pub fn to_client_config(&self) -> Result<ClientConfig, ConfigError> {
        self.validate()?;
        Ok(self.client_config_unchecked())
    }

    /// The typed settings as `(Kafka name, librdkafka name, value)`, in the
    /// order they are applied, without the passthrough entries.
    pub(crate) fn typed_entries(&self) -> Vec<(&'static str, &'static str, String)> {
        fn buffer(bytes: i32) -> String {
            // Java uses -1 for "OS default", librdkafka uses 0.
            if bytes == -1 { 0 } else { bytes }.to_string()
        }
        let mut out = vec![(
            "bootstrap.servers",
            "bootstrap.servers",
            self.bootstrap_servers.clone(),
        )];
        let optional_strings = [
            ("group.id", &self.group_id),
            ("group.instance.id", &self.group_instance_id),
            ("client.id", &self.client_id),
            ("client.rack", &self.client_rack),
        ];
        for (key, value) in optional_strings {
            if let Some(value) = value {
                out.push((key, key, value.clone()));
            }
        }
        let optional_numbers = [
            ("fetch.min.bytes", "fetch.min.bytes", self.fetch_min_bytes),
            (
                "fetch.max.wait.ms",
                "fetch.wait.max.ms",
                self.fetch_max_wait_ms,
            ),
            ("fetch.max.bytes", "fetch.max.bytes", self.fetch_max_bytes),
            (
                "max.partition.fetch.bytes",
                "max.partition.fetch.bytes",
                self.max_partition_fetch_bytes,
            ),
        ];
        for (kafka, rdkafka, value) in optional_numbers {
            if let Some(value) = value {
                out.push((kafka, rdkafka, value.to_string()));
            }
        }
        out.push((
            "group.protocol",
            "group.protocol",
            self.group_protocol.to_string(),
        ));
        let classic = self.group_protocol == GroupProtocol::Classic;
        if classic {
            out.extend([
                (
                    "session.timeout.ms",
                    "session.timeout.ms",
                    self.session_timeout_ms.to_string(),
                ),
                (
                    "heartbeat.interval.ms",
                    "heartbeat.interval.ms",
                    self.heartbeat_interval_ms.to_string(),
                ),
            ]);
        }
        if let Some(assignor) = &self.group_remote_assignor {
            out.push((
                "group.remote.assignor",
                "group.remote.assignor",
                assignor.clone(),
            ));
        }
        out.extend([
            (
                "max.poll.interval.ms",
                "max.poll.interval.ms",
                self.max_poll_interval_ms.to_string(),
            ),
            (
                "request.timeout.ms",
                "socket.timeout.ms",
                self.request_timeout_ms.to_string(),
            ),
            (
                "auto.offset.reset",
                "auto.offset.reset",
                self.auto_offset_reset.to_string(),
            ),
            (
                "enable.auto.commit",
                "enable.auto.commit",
                self.enable_auto_commit.to_string(),
            ),
            (
                "auto.commit.interval.ms",
                "auto.commit.interval.ms",
                self.auto_commit_interval_ms.to_string(),
            ),
        ]);
        if classic {
            out.push((
                "partition.assignment.strategy",
                "partition.assignment.strategy",
                self.partition_assignment_strategy.to_string(),
            ));
        }
        if let Some(bytes) = self.receive_buffer_bytes {
            out.push((
                "receive.buffer.bytes",
                "socket.receive.buffer.bytes",
                buffer(bytes),
            ));
        }
        if let Some(bytes) = self.send_buffer_bytes {
            out.push((
                "send.buffer.bytes",
                "socket.send.buffer.bytes",
                buffer(bytes),
            ));
        }
        out
    }

    /// The client configuration without running [`ConsumerConfig::validate`].
    pub(crate) fn client_config_unchecked(&self) -> ClientConfig {
        let mut client = match &self.connection {
            Some(c) => c.client_config(),
            None => ClientConfig::new(),
        };
        for (_, key, value) in self.typed_entries() {
            client.set(key, value);
        }
        client.set("enable.auto.offset.store", "false");
        client.set("enable.partition.eof", "false");
        for (key, value) in &self.librdkafka {
            client.set(key, value);
        }
        client
    }
}

/// Deserializes the passthrough table, accepting any TOML scalar as value.
fn deserialize_properties<'de, D>(deserializer: D) -> Result<BTreeMap<String, String>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    struct PropValue(String);

    impl<'de> Deserialize<'de> for PropValue {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct Visitor;
            impl serde::de::Visitor<'_> for Visitor {
                type Value = PropValue;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("a string, integer, float or boolean")
                }
                fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<PropValue, E> {
                    Ok(PropValue(v.to_string()))
                }
                fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<PropValue, E> {
                    Ok(PropValue(v.to_string()))
                }
                fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<PropValue, E> {
                    Ok(PropValue(v.to_string()))
                }
                fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<PropValue, E> {
                    Ok(PropValue(v.to_string()))
                }
                fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<PropValue, E> {
                    Ok(PropValue(v.to_string()))
                }
            }
            d.deserialize_any(Visitor)
        }
    }

    let raw = BTreeMap::<String, PropValue>::deserialize(deserializer)?;
    Ok(raw.into_iter().map(|(k, v)| (k, v.0)).collect())
}
