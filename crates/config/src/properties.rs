//! Building a [`ConsumerConfig`] from Kafka dotted property names.
//!
//! This is the `key = value` view of the configuration used by
//! [`ConsumerConfig::from_properties`] and [`ConsumerConfig::set`]: Java
//! names (`fetch.max.wait.ms`, `request.timeout.ms`, ...) and the librdkafka
//! spellings of the same settings (`fetch.wait.max.ms`, `socket.timeout.ms`,
//! ...) set the typed fields; any other valid librdkafka property goes to the
//! `librdkafka` passthrough map. Which key is which is the table of
//! `keys.rs`, which `validate.rs` also uses.

use std::str::FromStr;

use crate::consumer::ConsumerConfig;
use crate::error::ConfigError;
use crate::keys::{check_librdkafka_property, reserved_reason, typed_key};
use crate::secret::shown;

fn parse_number<T>(key: &str, value: &str, expected: &str) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    value
        .trim()
        .parse()
        .map_err(|e| ConfigError::invalid(key, value, format!("expected {expected} ({e})")))
}

fn parse_bool(key: &str, value: &str) -> Result<bool, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(ConfigError::invalid(
            key,
            value,
            "expected `true` or `false`",
        )),
    }
}

fn parse_name(key: &str, value: &str) -> Result<Option<String>, ConfigError> {
    if value.trim().is_empty() {
        Err(ConfigError::invalid(key, value, "must not be empty"))
    } else {
        Ok(Some(value.to_string()))
    }
}

/// Re-keys an error raised under the enum's canonical key to the key the
/// user actually wrote (an alias).
fn rekey(err: ConfigError, key: &str) -> ConfigError {
    match err {
        ConfigError::InvalidValue { value, reason, .. } => ConfigError::InvalidValue {
            key: key.to_string(),
            value,
            reason,
        },
        other => other,
    }
}

impl ConsumerConfig {
    /// Builds a configuration from Kafka dotted properties, on top of the
    /// defaults.
    ///
    /// Java names and their librdkafka spellings set the typed fields
    /// (`fetch.max.wait.ms` or `fetch.wait.max.ms`, `request.timeout.ms` or
    /// `socket.timeout.ms`, ...); any other key must be a property librdkafka
    /// accepts (it is checked, with its value) and goes to the `librdkafka`
    /// passthrough. Later entries win. Cross-field rules are checked by
    /// [`ConsumerConfig::validate`] (and by
    /// [`ConsumerConfig::to_client_config`]), not here.
    ///
    /// # Errors
    ///
    /// [`ConfigError::UnknownKey`] for a key that is neither,
    /// [`ConfigError::InvalidValue`] for a value that does not parse or that
    /// librdkafka rejects, [`ConfigError::Constraint`] for properties the
    /// runtime manages itself (`enable.auto.offset.store`,
    /// `enable.partition.eof`).
    ///
    /// ```
    /// use switchyard_config::{ConfigError, ConsumerConfig};
    ///
    /// let config = ConsumerConfig::from_properties([
    ///     ("bootstrap.servers", "kafka:9092"),
    ///     ("group.id", "orders"),
    ///     ("fetch.max.wait.ms", "100"),
    ///     ("statistics.interval.ms", "5000"),
    /// ])
    /// .unwrap();
    /// assert_eq!(config.fetch_max_wait_ms, Some(100));
    /// assert_eq!(config.librdkafka["statistics.interval.ms"], "5000");
    ///
    /// let err = ConsumerConfig::from_properties([("no.such.key", "1")]).unwrap_err();
    /// assert!(matches!(err, ConfigError::UnknownKey { .. }));
    /// ```
    pub fn from_properties<'a>(
        props: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, ConfigError> {
        let mut config = ConsumerConfig::default();
        for (key, value) in props {
            config.set_property(key, value)?;
        }
        Ok(config)
    }

    /// Sets any setting by its Kafka dotted name, like one entry of
    /// [`ConsumerConfig::from_properties`].
    ///
    /// ```
    /// use switchyard_config::{AssignmentStrategy, ConsumerConfig};
    ///
    /// let config = ConsumerConfig::new("kafka:9092")
    ///     .set("partition.assignment.strategy", "cooperative-sticky")?
    ///     .set("socket.keepalive.enable", "true")?;
    /// assert_eq!(config.partition_assignment_strategy, AssignmentStrategy::CooperativeSticky);
    /// assert_eq!(config.librdkafka["socket.keepalive.enable"], "true");
    /// # Ok::<(), switchyard_config::ConfigError>(())
    /// ```
    pub fn set(mut self, key: &str, value: &str) -> Result<Self, ConfigError> {
        self.set_property(key, value)?;
        Ok(self)
    }

    fn set_property(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
        let key = key.trim();
        if let Some(reason) = reserved_reason(key) {
            return Err(ConfigError::constraint(key, shown(key, value), reason));
        }
        let Some(typed) = typed_key(key) else {
            check_librdkafka_property(key, value)?;
            self.librdkafka.insert(key.to_string(), value.to_string());
            return Ok(());
        };
        const U32: &str = "a non-negative 32-bit integer";
        const I32: &str = "a 32-bit integer";
        match typed.field {
            "bootstrap_servers" => self.bootstrap_servers = value.trim().to_string(),
            "group_id" => self.group_id = parse_name(key, value)?,
            "group_instance_id" => self.group_instance_id = parse_name(key, value)?,
            "client_id" => self.client_id = parse_name(key, value)?,
            "client_rack" => self.client_rack = parse_name(key, value)?,
            "fetch_min_bytes" => self.fetch_min_bytes = Some(parse_number(key, value, U32)?),
            "fetch_max_wait_ms" => self.fetch_max_wait_ms = Some(parse_number(key, value, U32)?),
            "fetch_max_bytes" => self.fetch_max_bytes = Some(parse_number(key, value, U32)?),
            "max_partition_fetch_bytes" => {
                self.max_partition_fetch_bytes = Some(parse_number(key, value, U32)?)
            }
            "max_poll_records" => {
                self.max_poll_records = parse_number(key, value, "a positive integer")?
            }
            "session_timeout_ms" => self.session_timeout_ms = parse_number(key, value, U32)?,
            "heartbeat_interval_ms" => self.heartbeat_interval_ms = parse_number(key, value, U32)?,
            "max_poll_interval_ms" => self.max_poll_interval_ms = parse_number(key, value, U32)?,
            "default_api_timeout_ms" => {
                self.default_api_timeout_ms = parse_number(key, value, U32)?
            }
            "request_timeout_ms" => self.request_timeout_ms = parse_number(key, value, U32)?,
            "auto_offset_reset" => {
                self.auto_offset_reset = value.parse().map_err(|e| rekey(e, key))?
            }
            "enable_auto_commit" => self.enable_auto_commit = parse_bool(key, value)?,
            "auto_commit_interval_ms" => {
                self.auto_commit_interval_ms = parse_number(key, value, U32)?
            }
            "partition_assignment_strategy" => {
                self.partition_assignment_strategy = value.parse().map_err(|e| rekey(e, key))?
            }
            "group_protocol" => self.group_protocol = value.parse()?,
            "group_remote_assignor" => self.group_remote_assignor = parse_name(key, value)?,
            "receive_buffer_bytes" => {
                self.receive_buffer_bytes = Some(parse_number(key, value, I32)?)
            }
            "send_buffer_bytes" => self.send_buffer_bytes = Some(parse_number(key, value, I32)?),
            other => unreachable!("typed key table names unknown field `{other}`"),
        }
        Ok(())
    }
}
