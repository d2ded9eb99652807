//! Validation rules for [`ConsumerConfig`].
//!
//! Catches at configuration time what would otherwise surface as a failed
//! consumer creation, a silently wrong setting or a rebalance storm:
//! librdkafka's own cross-property checks (`max.poll.interval.ms >=
//! session.timeout.ms`, `fetch.max.bytes >= message.max.bytes`), the
//! group-membership timing rules, and every passthrough property, which is
//! checked against librdkafka itself.

use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaConfRes;

use crate::consumer::ConsumerConfig;
use crate::error::{ConfigError, ConfigWarning};
use crate::group_protocol::GroupProtocol;
use crate::keys::{check_librdkafka_property, reserved_reason, typed_key};
use crate::secret::shown;

/// librdkafka's default `message.max.bytes`.
const DEFAULT_MESSAGE_MAX_BYTES: u64 = 1_000_000;
/// librdkafka's default `fetch.max.bytes`.
const DEFAULT_FETCH_MAX_BYTES: u64 = 52_428_800;

impl ConsumerConfig {
    /// Checks every rule and returns the warnings, each of which is also
    /// logged with `tracing::warn!`.
    ///
    /// Errors (the first one found is returned):
    /// - `bootstrap.servers` is blank; an optional id (`group.id`, ...) is blank;
    /// - under `group.protocol = classic`: `session.timeout.ms` < 1000;
    ///   `heartbeat.interval.ms` is 0 or not below `session.timeout.ms`;
    ///   `max.poll.interval.ms` < `session.timeout.ms`; `group.remote.assignor`
    ///   set (it belongs to the consumer protocol);
    /// - under `group.protocol = consumer` (KIP-848): `session.timeout.ms`,
    ///   `heartbeat.interval.ms` or `partition.assignment.strategy` changed
    ///   from its default (the broker's `group.consumer.session.timeout.ms`
    ///   and `group.consumer.heartbeat.interval.ms` and the client's
    ///   `group.remote.assignor` replace them), or a `group.protocol.type`
    ///   passthrough;
    /// - `max.poll.records` or `default.api.timeout.ms` is 0;
    /// - `fetch.min.bytes` > `fetch.max.bytes`; `fetch.max.bytes` <
    ///   `message.max.bytes` (librdkafka refuses to create such a consumer);
    /// - `group.instance.id` without `group.id`;
    /// - `enable.auto.commit = true` with `auto.commit.interval.ms = 0`;
    /// - a buffer size below -1;
    /// - a passthrough key that duplicates a typed field (`group.protocol`
    ///   among them), that the runtime manages, that librdkafka does not know
    ///   or whose value it rejects;
    /// - any value librdkafka rejects (ranges), reported under its Kafka name.
    ///
    /// Warnings: `heartbeat.interval.ms` above a third of
    /// `session.timeout.ms` (classic protocol); a `group.remote.assignor`
    /// other than Kafka's `uniform` and `range` (a custom broker-side
    /// assignor must be configured on the brokers); `fetch.max.wait.ms` not at least 1000 ms below
    /// `request.timeout.ms`; `default.api.timeout.ms` below
    /// `request.timeout.ms`.
    ///
    /// ```
    /// use switchyard_config::{ConfigError, ConsumerConfig};
    ///
    /// assert!(ConsumerConfig::default().validate().unwrap().is_empty());
    ///
    /// let err = ConsumerConfig::new("kafka:9092")
    ///     .with_session_timeout_ms(6000)
    ///     .with_heartbeat_interval_ms(6000)
    ///     .validate()
    ///     .unwrap_err();
    /// assert!(matches!(err, ConfigError::Constraint { .. }));
    /// assert!(err.to_string().contains("heartbeat.interval.ms"));
    /// ```
    pub fn validate(&self) -> Result<Vec<ConfigWarning>, ConfigError> {
        self.check_fields()?;
        self.check_passthrough()?;
        self.check_native()?;
        let warnings = self.warnings();
        for warning in &warnings {
            tracing::warn!(key = %warning.key, "{}", warning.message);
        }
        Ok(warnings)
    }

    fn check_fields(&self) -> Result<(), ConfigError> {
        if self.bootstrap_servers.trim().is_empty() {
            return Err(ConfigError::invalid(
                "bootstrap.servers",
                &self.bootstrap_servers,
                "must list at least one `host:port`",
            ));
        }
        let names = [
            ("group.id", &self.group_id),
            ("group.instance.id", &self.group_instance_id),
            ("client.id", &self.client_id),
            ("client.rack", &self.client_rack),
            ("group.remote.assignor", &self.group_remote_assignor),
        ];
        for (key, value) in names {
            if let Some(value) = value.as_deref().filter(|v| v.trim().is_empty()) {
                return Err(ConfigError::invalid(
                    key,
                    value,
                    "must not be blank (leave it unset instead)",
                ));
            }
        }
        match self.group_protocol {
            GroupProtocol::Classic => self.check_classic_group()?,
            GroupProtocol::Consumer => self.check_consumer_group()?,
        }
        if self.max_poll_records == 0 {
            return Err(ConfigError::invalid(
                "max.poll.records",
                0,
                "must be at least 1",
            ));
        }
        if self.default_api_timeout_ms == 0 {
            return Err(ConfigError::invalid(
                "default.api.timeout.ms",
                0,
                "must be at least 1 (0 would fail every blocking commit, seek and metadata call)",
            ));
        }
        if let (Some(min), Some(max)) = (self.fetch_min_bytes, self.fetch_max_bytes) {
            if min > max {
                return Err(ConfigError::constraint(
                    "fetch.min.bytes",
                    min,
                    format!("must not exceed `fetch.max.bytes` ({max})"),
                ));
            }
        }
        if let Some(max) = self.fetch_max_bytes {
            let message_max = self
                .librdkafka
                .get("message.max.bytes")
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(DEFAULT_MESSAGE_MAX_BYTES);
            if u64::from(max) < message_max {
                return Err(ConfigError::constraint(
                    "fetch.max.bytes",
                    max,
                    format!(
                        "librdkafka requires it to be at least `message.max.bytes` ({message_max})"
                    ),
                ));
            }
        }
        if let Some(instance) = &self.group_instance_id {
            if self.group_id.is_none() {
                return Err(ConfigError::constraint(
                    "group.instance.id",
                    instance,
                    "static membership requires `group.id`",
                ));
            }
        }
        if self.enable_auto_commit && self.auto_commit_interval_ms == 0 {
            return Err(ConfigError::constraint(
                "auto.commit.interval.ms",
                0,
                "must be greater than 0 when `enable.auto.commit` = true",
            ));
        }
        let buffers = [
            ("receive.buffer.bytes", self.receive_buffer_bytes),
            ("send.buffer.bytes", self.send_buffer_bytes),
        ];
        for (key, value) in buffers {
            if let Some(bytes) = value.filter(|b| *b < -1) {
                return Err(ConfigError::invalid(
                    key,
                    bytes,
                    "must be -1 (OS default) or a non-negative size",
                ));
            }
        }
        Ok(())
    }

    /// The classic protocol's session rules; `group.remote.assignor` is the
    /// consumer protocol's.
    fn check_classic_group(&self) -> Result<(), ConfigError> {
        let session = self.session_timeout_ms;
        if session < 1000 {
            return Err(ConfigError::invalid(
                "session.timeout.ms",
                session,
                "must be at least 1000",
            ));
        }
        let heartbeat = self.heartbeat_interval_ms;
        if heartbeat == 0 {
            return Err(ConfigError::invalid(
                "heartbeat.interval.ms",
                heartbeat,
                "must be at least 1",
            ));
        }
        if heartbeat >= session {
            return Err(ConfigError::constraint(
                "heartbeat.interval.ms",
                heartbeat,
                format!("must be lower than `session.timeout.ms` ({session}), ideally at most a third of it"),
            ));
        }
        if self.max_poll_interval_ms < session {
            return Err(ConfigError::constraint(
                "max.poll.interval.ms",
                self.max_poll_interval_ms,
                format!("must be at least `session.timeout.ms` ({session})"),
            ));
        }
        if let Some(assignor) = &self.group_remote_assignor {
            return Err(ConfigError::constraint(
                "group.remote.assignor",
                assignor,
                "is only used with `group.protocol` = consumer (KIP-848); with `classic` the client assigns: set `partition.assignment.strategy` instead",
            ));
        }
        Ok(())
    }

    /// KIP-848: the broker owns the session and the assignment, and
    /// librdkafka refuses the classic settings; they must keep their
    /// defaults (they are not sent).
    fn check_consumer_group(&self) -> Result<(), ConfigError> {
        let defaults = ConsumerConfig::default();
        if self.session_timeout_ms != defaults.session_timeout_ms {
            return Err(ConfigError::constraint(
                "session.timeout.ms",
                self.session_timeout_ms,
                "is not supported with `group.protocol` = consumer (KIP-848): the broker's `group.consumer.session.timeout.ms` (or the group's `consumer.session.timeout.ms`) sets the session timeout; leave it unset",
            ));
        }
        if self.heartbeat_interval_ms != defaults.heartbeat_interval_ms {
            return Err(ConfigError::constraint(
                "heartbeat.interval.ms",
                self.heartbeat_interval_ms,
                "is not supported with `group.protocol` = consumer (KIP-848): the broker's `group.consumer.heartbeat.interval.ms` (or the group's `consumer.heartbeat.interval.ms`) sets the heartbeat interval; leave it unset",
            ));
        }
        if self.partition_assignment_strategy != defaults.partition_assignment_strategy {
            return Err(ConfigError::constraint(
                "partition.assignment.strategy",
                self.partition_assignment_strategy,
                "is not supported with `group.protocol` = consumer (KIP-848): the broker assigns, and every assignor is sticky and incremental; choose it with `group.remote.assignor` (`uniform` or `range`) and leave this unset",
            ));
        }
        Ok(())
    }

    fn check_passthrough(&self) -> Result<(), ConfigError> {
        for (key, value) in &self.librdkafka {
            let shown_value = shown(key, value);
            if let Some(typed) = typed_key(key) {
                return Err(ConfigError::constraint(
                    key,
                    shown_value,
                    format!(
                        "duplicates a typed setting: set `{}` (`{}` in the `[consumer]` table) instead of a librdkafka passthrough entry",
                        typed.kafka, typed.field
                    ),
                ));
            }
            if let Some(reason) = reserved_reason(key) {
                return Err(ConfigError::constraint(key, shown_value, reason));
            }
            check_librdkafka_property(key, value)?;
            if key == "group.protocol.type" && self.group_protocol == GroupProtocol::Consumer {
                return Err(ConfigError::constraint(
                    key,
                    shown_value,
                    "is not supported with `group.protocol` = consumer (KIP-848): the consumer protocol has no protocol type; remove it",
                ));
            }
            if key == "receive.message.max.bytes" {
                let fetch_max = self.effective_fetch_max_bytes();
                let received: u64 = value.trim().parse().unwrap_or(u64::MAX);
                if fetch_max + 512 > received {
                    return Err(ConfigError::constraint(
                        key,
                        shown_value,
                        format!(
                            "librdkafka requires it to be at least `fetch.max.bytes` + 512 ({})",
                            fetch_max + 512
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// `fetch.max.bytes` as librdkafka will use it: the configured value, or
    /// its default adjusted to `queued.max.messages.kbytes` and
    /// `message.max.bytes` the way librdkafka does.
    fn effective_fetch_max_bytes(&self) -> u64 {
        if let Some(max) = self.fetch_max_bytes {
            return u64::from(max);
        }
        let passthrough = |key: &str, default: u64| {
            self.librdkafka
                .get(key)
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(default)
        };
        let queued = passthrough("queued.max.messages.kbytes", 65_536) * 1024;
        DEFAULT_FETCH_MAX_BYTES
            .min(queued)
            .max(passthrough("message.max.bytes", DEFAULT_MESSAGE_MAX_BYTES))
    }

    /// Sets everything on a native librdkafka configuration, which enforces
    /// librdkafka's ranges; errors are reported under the Kafka name.
    fn check_native(&self) -> Result<(), ConfigError> {
        match self.client_config_unchecked().create_native_config() {
            Ok(_) => Ok(()),
            Err(KafkaError::ClientConfig(result, description, key, value)) => {
                let kafka_key = self
                    .typed_entries()
                    .into_iter()
                    .find(|(_, rdkafka, _)| *rdkafka == key)
                    .map_or(key.as_str(), |(kafka, _, _)| kafka)
                    .to_string();
                if result == RDKafkaConfRes::RD_KAFKA_CONF_UNKNOWN {
                    return Err(ConfigError::UnknownKey { key: kafka_key });
                }
                let shown_value = shown(&key, &value);
                let reason = if kafka_key == key {
                    format!("rejected by librdkafka: {}", description.trim())
                } else {
                    format!("rejected by librdkafka as `{key}`: {}", description.trim())
                };
                Err(ConfigError::invalid(kafka_key, shown_value, reason))
            }
            Err(other) => Err(ConfigError::invalid(
                "librdkafka",
                "",
                format!("cannot build the librdkafka configuration: {other}"),
            )),
        }
    }

    fn warnings(&self) -> Vec<ConfigWarning> {
        let mut warnings = Vec::new();
        let session = self.session_timeout_ms;
        let classic = self.group_protocol == GroupProtocol::Classic;
        if classic && u64::from(self.heartbeat_interval_ms) * 3 > u64::from(session) {
            warnings.push(ConfigWarning::new(
                "heartbeat.interval.ms",
                format!(
                    "{} is above a third of `session.timeout.ms` ({session}); a couple of lost heartbeats will evict the member",
                    self.heartbeat_interval_ms
                ),
            ));
        }
        if let Some(assignor) = &self.group_remote_assignor {
            if !["uniform", "range"].contains(&assignor.trim()) {
                warnings.push(ConfigWarning::new(
                    "group.remote.assignor",
                    format!(
                        "`{assignor}` is not one of Kafka's broker-side assignors (`uniform`, `range`); the brokers' `group.consumer.assignors` must list it, or every heartbeat fails"
                    ),
                ));
            }
        }
        let fetch_wait = self.fetch_max_wait_ms.unwrap_or(500);
        if u64::from(fetch_wait) + 1000 > u64::from(self.request_timeout_ms) {
            warnings.push(ConfigWarning::new(
                "fetch.max.wait.ms",
                format!(
                    "{fetch_wait} should be at least 1000 below `request.timeout.ms` ({}) to avoid timing out fetch requests",
                    self.request_timeout_ms
                ),
            ));
        }
        if self.default_api_timeout_ms < self.request_timeout_ms {
            warnings.push(ConfigWarning::new(
                "default.api.timeout.ms",
                format!(
                    "{} is below `request.timeout.ms` ({}); blocking calls may give up before a single request times out",
                    self.default_api_timeout_ms, self.request_timeout_ms
                ),
            ));
        }
        warnings
    }
}
