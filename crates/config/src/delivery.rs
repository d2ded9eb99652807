//! How `switchyard run` hands a listener's records to the application: the
//! `[listener.delivery]` table.
//!
//! ```toml
//! [[listener]]
//! name = "orders"
//! topics = ["orders"]
//! [listener.delivery]
//! mode = "http"                      # or "exec"
//! url = "http://127.0.0.1:8000/records"
//! batch = 1                          # records per request (http only)
//! timeout = "10s"                    # per request (http) or per acknowledgement (exec)
//! workers = 4                        # records in flight at once
//! ordering = "key"                   # "partition" (default), "key" or "unordered"
//! attempts = 5                       # attempts in all, the first included
//! backoff = "200ms"                  # before the second attempt, doubling
//! max_backoff = "5s"
//! on_failure = "dead-letter"         # or "skip" or "stop"
//! value = "auto"                     # "auto", "json", "text", "base64",
//!                                    # or through [schema_registry]: "avro", "protobuf", "json-schema"
//! ```
//!
//! Exec mode takes `command = ["python3", "app.py"]` instead of `url`.
//! Durations are humantime spellings ("250ms", "10s", "1m").

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;
use crate::secret::redact_url;

/// Where records go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryMode {
    /// POST to `url`.
    Http,
    /// One line per record on the stdin of `command`, acknowledged on its stdout.
    Exec,
}

/// The order records are handed over in (the runtime's ordering modes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryOrdering {
    /// One record of a partition at a time.
    #[default]
    Partition,
    /// One record of a key at a time; keys of a partition in parallel.
    Key,
    /// No order.
    Unordered,
}

/// What happens to a record that failed every attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeliveryFailure {
    /// To the listener's dead-letter topic.
    #[default]
    DeadLetter,
    /// Logged, counted and skipped.
    Skip,
    /// The partition stops at the record until an operator resumes or skips it.
    Stop,
}

/// How a payload is written into the JSON envelope's `value`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PayloadFormat {
    /// JSON if it parses, else a UTF-8 string, else base64.
    #[default]
    Auto,
    /// JSON; anything else is a decode error.
    Json,
    /// UTF-8 text; anything else is a decode error.
    Text,
    /// Always base64.
    Base64,
    /// Avro in the Confluent wire format, decoded with its schema from the
    /// `[schema_registry]` and given as JSON.
    Avro,
    /// Protobuf in the Confluent wire format, decoded with its schema from
    /// the `[schema_registry]` and given as JSON.
    Protobuf,
    /// JSON Schema in the Confluent wire format, validated against its
    /// schema from the `[schema_registry]`.
    #[serde(rename = "json-schema")]
    JsonSchema,
}

impl PayloadFormat {
    /// The TOML spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            PayloadFormat::Auto => "auto",
            PayloadFormat::Json => "json",
            PayloadFormat::Text => "text",
            PayloadFormat::Base64 => "base64",
            PayloadFormat::Avro => "avro",
            PayloadFormat::Protobuf => "protobuf",
            PayloadFormat::JsonSchema => "json-schema",
        }
    }

    /// Whether records of this format are read through a Schema Registry.
    ///
    /// ```
    /// use switchyard_config::PayloadFormat;
    /// assert!(PayloadFormat::Avro.needs_registry());
    /// assert!(!PayloadFormat::Json.needs_registry());
    /// ```
    pub fn needs_registry(self) -> bool {
        matches!(
            self,
            PayloadFormat::Avro | PayloadFormat::Protobuf | PayloadFormat::JsonSchema
        )
    }
}

/// Default HTTP request timeout.
pub const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// Default acknowledgement timeout of exec mode.
pub const DEFAULT_EXEC_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest `batch`.
pub const MAX_BATCH: usize = 10_000;
/// Largest `workers`.
pub const MAX_WORKERS: usize = 1024;

fn one() -> usize {
    1
}
fn three() -> u32 {
    3
}
fn default_backoff() -> Duration {
    Duration::from_millis(100)
}
fn default_max_backoff() -> Duration {
    Duration::from_secs(5)
}

/// The `[listener.delivery]` table; see the [module docs](self).
///
/// ```
/// use switchyard_config::{DeliveryConfig, DeliveryMode};
///
/// let d: DeliveryConfig = toml::from_str(r#"
///     mode = "http"
///     url = "http://127.0.0.1:8000/in"
///     timeout = "2s"
/// "#).unwrap();
/// d.validate("orders").unwrap();
/// assert_eq!(d.mode, DeliveryMode::Http);
/// assert_eq!(d.timeout(), std::time::Duration::from_secs(2));
/// ```
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryConfig {
    /// `http` or `exec`.
    pub mode: DeliveryMode,
    /// HTTP: where records are POSTed.
    #[serde(default)]
    pub url: Option<String>,
    /// Exec: program and arguments.
    #[serde(default)]
    pub command: Vec<String>,
    /// HTTP: records per request (1: one envelope; more: a JSON array).
    #[serde(default = "one")]
    pub batch: usize,
    /// Per request (HTTP) or per acknowledgement (exec); defaults 10 s and 30 s.
    #[serde(default, with = "crate::duration::optional")]
    pub timeout: Option<Duration>,
    /// Records in flight at once.
    #[serde(default = "one")]
    pub workers: usize,
    /// Ordering mode.
    #[serde(default)]
    pub ordering: DeliveryOrdering,
    /// Attempts in all, the first one included.
    #[serde(default = "three")]
    pub attempts: u32,
    /// Wait before the second attempt; doubles for each further one.
    #[serde(default = "default_backoff", with = "crate::duration")]
    pub backoff: Duration,
    /// Upper bound of the wait between attempts.
    #[serde(default = "default_max_backoff", with = "crate::duration")]
    pub max_backoff: Duration,
    /// After the last attempt.
    #[serde(default)]
    pub on_failure: DeliveryFailure,
    /// Encoding of the value in the envelope.
    #[serde(default)]
    pub value: PayloadFormat,
}

impl std::fmt::Debug for DeliveryConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeliveryConfig")
            .field("mode", &self.mode)
            .field("url", &self.url.as_deref().map(redact_url))
            .field("command", &self.command)
            .field("batch", &self.batch)
            .field("timeout", &self.timeout)
            .field("workers", &self.workers)
            .field("ordering", &self.ordering)
            .field("attempts", &self.attempts)
            .field("backoff", &self.backoff)
            .field("max_backoff", &self.max_backoff)
            .field("on_failure", &self.on_failure)
            .field("value", &self.value)
            .finish()
    }
}

impl DeliveryConfig {
    /// HTTP delivery to `url` with the defaults.
    ///
    /// ```
    /// # use switchyard_config::DeliveryConfig;
    /// assert!(DeliveryConfig::http("http://app/in").validate("l").is_ok());
    /// ```
    pub fn http(url: impl Into<String>) -> DeliveryConfig {
        DeliveryConfig {
            mode: DeliveryMode::Http,
            url: Some(url.into()),
            command: Vec::new(),
            batch: 1,
            timeout: None,
            workers: 1,
            ordering: DeliveryOrdering::Partition,
            attempts: 3,
            backoff: default_backoff(),
            max_backoff: default_max_backoff(),
            on_failure: DeliveryFailure::DeadLetter,
            value: PayloadFormat::Auto,
        }
    }

    /// Exec delivery to `command` with the defaults.
    ///
    /// ```
    /// # use switchyard_config::DeliveryConfig;
    /// assert!(DeliveryConfig::exec(["python3", "app.py"]).validate("l").is_ok());
    /// ```
    pub fn exec<S: Into<String>>(command: impl IntoIterator<Item = S>) -> DeliveryConfig {
        DeliveryConfig {
            mode: DeliveryMode::Exec,
            url: None,
            command: command.into_iter().map(Into::into).collect(),
            ..DeliveryConfig::http("")
        }
    }

    /// The timeout, or the mode's default.
    pub fn timeout(&self) -> Duration {
        self.timeout.unwrap_or(match self.mode {
            DeliveryMode::Http => DEFAULT_HTTP_TIMEOUT,
            DeliveryMode::Exec => DEFAULT_EXEC_TIMEOUT,
        })
    }

    /// Checks the table of listener `listener`: the mode's own key given
    /// (`url` for http, a non-empty `command` for exec) and the other's
    /// absent, an `http`/`https` URL, `batch` in 1..=10000 (and 1 for exec),
    /// `workers` in 1..=1024, a non-zero `timeout`, `attempts` >= 1,
    /// `backoff` <= `max_backoff`. Errors are [`ConfigError::Listener`]
    /// naming the key; a URL's text is never shown (it may hold a password).
    ///
    /// ```
    /// use switchyard_config::DeliveryConfig;
    ///
    /// let mut d = DeliveryConfig::http("ftp://app/in");
    /// let err = d.validate("orders").unwrap_err().to_string();
    /// assert!(err.contains("listener `orders`") && err.contains("delivery.url"), "{err}");
    /// d.url = Some("http://app/in".into());
    /// d.batch = 0;
    /// assert!(d.validate("orders").unwrap_err().to_string().contains("delivery.batch"));
    /// ```
    pub fn validate(&self, listener: &str) -> Result<(), ConfigError> {
        let fail = |reason: String| Err(ConfigError::listener(listener, reason));
        match self.mode {
            DeliveryMode::Http => {
                let Some(url) = &self.url else {
                    return fail("`delivery.url` is required with `mode = \"http\"`".into());
                };
                let lower = url.trim().to_ascii_lowercase();
                let rest = lower
                    .strip_prefix("http://")
                    .or_else(|| lower.strip_prefix("https://"));
                match rest {
                    None => {
                        return fail(
                            "`delivery.url` must start with `http://` or `https://`".into(),
                        )
                    }
                    Some(rest) if rest.split(['/', '?']).next().unwrap_or("").is_empty() => {
                        return fail("`delivery.url` has no host".into())
                    }
                    Some(_) => {}
                }
                if !self.command.is_empty() {
                    return fail("`delivery.command` belongs to `mode = \"exec\"`; with `mode = \"http\"` give `url` only".into());
                }
            }
            DeliveryMode::Exec => {
                if self.command.first().is_none_or(|p| p.trim().is_empty()) {
                    return fail("`delivery.command` is required with `mode = \"exec\"`: the program and its arguments, e.g. [\"python3\", \"app.py\"]".into());
                }
                if self.url.is_some() {
                    return fail("`delivery.url` belongs to `mode = \"http\"`; with `mode = \"exec\"` give `command` only".into());
                }
                if self.batch != 1 {
                    return fail(format!(
                        "`delivery.batch` = {}: exec mode delivers one record per line; batches are for `mode = \"http\"`",
                        self.batch
                    ));
                }
            }
        }
        if self.batch == 0 || self.batch > MAX_BATCH {
            return fail(format!(
                "`delivery.batch` = {}: expected 1 to {MAX_BATCH}",
                self.batch
            ));
        }
        if self.workers == 0 || self.workers > MAX_WORKERS {
            return fail(format!(
                "`delivery.workers` = {}: expected 1 to {MAX_WORKERS}",
                self.workers
            ));
        }
        if self.timeout == Some(Duration::ZERO) {
            return fail("`delivery.timeout` must be more than 0".into());
        }
        if self.attempts == 0 {
            return fail("`delivery.attempts` = 0: expected at least 1 (1 = no retry)".into());
        }
        if self.backoff > self.max_backoff {
            return fail(format!(
                "`delivery.backoff` ({:?}) is above `delivery.max_backoff` ({:?})",
                self.backoff, self.max_backoff
            ));
        }
        Ok(())
    }
}
