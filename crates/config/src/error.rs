//! Error and warning types shared by every part of the configuration crate.
//!
//! Errors always name the offending key in its Kafka dotted spelling (for
//! example `heartbeat.interval.ms`), the rejected value and the reason, so a
//! message can be shown to an operator as is.

use std::fmt;

/// Everything that can go wrong while building, parsing or validating a
/// Switchyard configuration.
///
/// # Examples
///
/// ```
/// use switchyard_config::{ConfigError, ConsumerConfig};
///
/// let err = ConsumerConfig::new("localhost:9092")
///     .set("session.timeout.ms", "abc")
///     .unwrap_err();
/// assert!(matches!(err, ConfigError::InvalidValue { .. }));
/// assert!(err.to_string().contains("session.timeout.ms"));
/// assert!(err.to_string().contains("abc"));
/// ```
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A key that is neither a Switchyard setting nor a librdkafka property.
    #[error("unknown configuration key `{key}`")]
    UnknownKey {
        /// The key as it was given.
        key: String,
    },
    /// A single value that cannot be accepted on its own (bad number, bad
    /// enum spelling, out of range, rejected by librdkafka, ...).
    #[error("invalid value `{value}` for `{key}`: {reason}")]
    InvalidValue {
        /// Kafka dotted name of the setting.
        key: String,
        /// The rejected value, as text.
        value: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A value that is fine on its own but conflicts with another setting.
    #[error("`{key}` = {value}: {reason}")]
    Constraint {
        /// Kafka dotted name of the setting the rule is reported against.
        key: String,
        /// Its value, as text.
        value: String,
        /// The rule that was broken, naming the other setting(s).
        reason: String,
    },
    /// A listener definition is incomplete or inconsistent.
    #[error("listener `{listener}`: {reason}")]
    Listener {
        /// The listener's name (may be blank when that is the problem).
        listener: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A configuration file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The path that was being read.
        path: String,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// TOML syntax or type error; `message` is toml's own report, which
    /// locates the key and says what was expected.
    #[error("{path}: {message}")]
    Parse {
        /// The file the TOML came from, or `<string>` for in-memory input.
        path: String,
        /// toml's message (location, offending key and reason).
        message: String,
    },
}

impl ConfigError {
    /// Shorthand for [`ConfigError::InvalidValue`].
    ///
    /// ```
    /// use switchyard_config::ConfigError;
    ///
    /// let err = ConfigError::invalid("fetch.min.bytes", "-1", "expected an integer");
    /// assert_eq!(
    ///     err.to_string(),
    ///     "invalid value `-1` for `fetch.min.bytes`: expected an integer"
    /// );
    /// ```
    pub fn invalid(
        key: impl Into<String>,
        value: impl ToString,
        reason: impl Into<String>,
    ) -> Self {
        ConfigError::InvalidValue {
            key: key.into(),
            value: value.to_string(),
            reason: reason.into(),
        }
    }

    /// Shorthand for [`ConfigError::Constraint`].
    ///
    /// ```
    /// use switchyard_config::ConfigError;
    ///
    /// let err = ConfigError::constraint("group.instance.id", "a", "requires `group.id`");
    /// assert_eq!(err.to_string(), "`group.instance.id` = a: requires `group.id`");
    /// ```
    pub fn constraint(
        key: impl Into<String>,
        value: impl ToString,
        reason: impl Into<String>,
    ) -> Self {
        ConfigError::Constraint {
            key: key.into(),
            value: value.to_string(),
            reason: reason.into(),
        }
    }

    /// Shorthand for [`ConfigError::Listener`].
    ///
    /// ```
    /// use switchyard_config::ConfigError;
    ///
    /// let err = ConfigError::listener("orders", "no topics");
    /// assert_eq!(err.to_string(), "listener `orders`: no topics");
    /// ```
    pub fn listener(listener: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError::Listener {
            listener: listener.into(),
            reason: reason.into(),
        }
    }
}

/// A setting that is accepted but probably not what was intended.
///
/// Returned by the `validate` methods (which also log each warning with
/// `tracing::warn!`).
///
/// # Examples
///
/// ```
/// use switchyard_config::ConsumerConfig;
///
/// let warnings = ConsumerConfig::new("localhost:9092")
///     .with_session_timeout_ms(9000)
///     .with_heartbeat_interval_ms(4000)
///     .validate()
///     .unwrap();
/// assert_eq!(warnings[0].key, "heartbeat.interval.ms");
/// assert!(warnings[0].to_string().starts_with("`heartbeat.interval.ms`: "));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigWarning {
    /// Kafka dotted name of the setting the warning is about.
    pub key: String,
    /// Human readable explanation.
    pub message: String,
}

impl ConfigWarning {
    /// Creates a warning.
    ///
    /// ```
    /// use switchyard_config::ConfigWarning;
    ///
    /// let w = ConfigWarning::new("fetch.max.wait.ms", "too close to request.timeout.ms");
    /// assert_eq!(w.to_string(), "`fetch.max.wait.ms`: too close to request.timeout.ms");
    /// ```
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigWarning {
            key: key.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`: {}", self.key, self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_error_keeps_source() {
        let err = ConfigError::Io {
            path: "/nope.toml".into(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "gone"),
        };
        assert_eq!(err.to_string(), "cannot read /nope.toml: gone");
        assert!(std::error::Error::source(&err).is_some());
    }
}
