//! The `[schema_registry]` table of `switchyard run`: the Schema Registry
//! that listeners with `value = "avro"`, `"protobuf"` or `"json-schema"` read
//! their schemas from (Confluent's API; Apicurio's Confluent-compatible one).
//!
//! ```toml
//! [schema_registry]
//! urls = ["https://registry-a:8081", "https://registry-b:8081"]   # tried in order
//! basic_auth_user_info = "${env:SR_USER_INFO}"   # "user:password", or:
//! # bearer_token = "${file:/var/run/secrets/sr-token}"
//! ca_file = "/etc/ssl/registry-ca.pem"           # trusted in addition to the platform's roots
//! request_timeout = "5s"
//! cache_capacity = 1000                          # schemas kept in memory
//! ```
//!
//! `basic_auth_user_info` and `bearer_token` take `${env:NAME}` and
//! `${file:PATH}` as the `[kafka]` table does; their values are never shown
//! in an error or in `Debug` output.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::error::ConfigError;
use crate::secret::{redact_url, resolve_secret};

/// Default [`SchemaRegistryConfig::request_timeout`].
pub const DEFAULT_REGISTRY_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Default [`SchemaRegistryConfig::cache_capacity`].
pub const DEFAULT_REGISTRY_CACHE_CAPACITY: usize = 1000;

fn default_request_timeout() -> Duration {
    DEFAULT_REGISTRY_REQUEST_TIMEOUT
}
fn default_cache_capacity() -> usize {
    DEFAULT_REGISTRY_CACHE_CAPACITY
}

/// The `[schema_registry]` table, with its secrets resolved; see the
/// [module docs](self).
///
/// ```
/// use switchyard_config::SchemaRegistryConfig;
///
/// let sr: SchemaRegistryConfig = toml::from_str(r#"
///     urls = ["http://registry:8081"]
///     basic_auth_user_info = "user:s3cret"
/// "#).unwrap();
/// let sr = sr.resolved().unwrap();
/// assert_eq!(sr.basic_auth(), Some(("user", "s3cret")));
/// assert!(!format!("{sr:?}").contains("s3cret"));
/// ```
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchemaRegistryConfig {
    /// Base URLs, tried in order (`http://` or `https://`).
    pub urls: Vec<String>,
    /// `user:password` for HTTP basic authentication (Confluent Cloud: the
    /// API key and secret).
    #[serde(default)]
    pub basic_auth_user_info: Option<String>,
    /// A bearer token (`Authorization: Bearer ...`).
    #[serde(default)]
    pub bearer_token: Option<String>,
    /// A PEM file of certificate authorities trusted in addition to the
    /// platform's roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Timeout of one request to the registry.
    #[serde(default = "default_request_timeout", with = "crate::duration")]
    pub request_timeout: Duration,
    /// Most schemas kept in memory.
    #[serde(default = "default_cache_capacity")]
    pub cache_capacity: usize,
}

impl std::fmt::Debug for SchemaRegistryConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = |s: &Option<String>| s.as_ref().map(|_| "<redacted>");
        f.debug_struct("SchemaRegistryConfig")
            .field(
                "urls",
                &self.urls.iter().map(|u| redact_url(u)).collect::<Vec<_>>(),
            )
            .field(
                "basic_auth_user_info",
                &self
                    .basic_auth()
                    .map(|(user, _)| format!("{user}:<redacted>")),
            )
            .field("bearer_token", &redacted(&self.bearer_token))
            .field("ca_file", &self.ca_file)
            .field("request_timeout", &self.request_timeout)
            .field("cache_capacity", &self.cache_capacity)
            .finish()
    }
}

impl SchemaRegistryConfig {
    /// A registry at `urls` with the defaults.
    pub fn new<S: Into<String>>(urls: impl IntoIterator<Item = S>) -> SchemaRegistryConfig {
        SchemaRegistryConfig {
            urls: urls.into_iter().map(Into::into).collect(),
            basic_auth_user_info: None,
            bearer_token: None,
            ca_file: None,
            request_timeout: DEFAULT_REGISTRY_REQUEST_TIMEOUT,
            cache_capacity: DEFAULT_REGISTRY_CACHE_CAPACITY,
        }
    }

    /// The table with `${env:..}` and `${file:..}` in its credentials
    /// replaced by what they name.
    pub fn resolved(mut self) -> Result<SchemaRegistryConfig, ConfigError> {
        if let Some(v) = &self.basic_auth_user_info {
            self.basic_auth_user_info =
                Some(resolve_secret("schema_registry.basic_auth_user_info", v)?);
        }
        if let Some(v) = &self.bearer_token {
            self.bearer_token = Some(resolve_secret("schema_registry.bearer_token", v)?);
        }
        Ok(self)
    }

    /// User and password of `basic_auth_user_info` (split at the first `:`).
    pub fn basic_auth(&self) -> Option<(&str, &str)> {
        self.basic_auth_user_info
            .as_deref()
            .map(|s| s.split_once(':').unwrap_or((s, "")))
    }

    /// Checks the table; errors name the key (`schema_registry.urls`, ...)
    /// and never show a credential.
    ///
    /// ```
    /// use switchyard_config::SchemaRegistryConfig;
    ///
    /// let err = SchemaRegistryConfig::new(Vec::<String>::new()).validate().unwrap_err();
    /// assert!(err.to_string().contains("schema_registry.urls"), "{err}");
    /// ```
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.urls.is_empty() {
            return Err(ConfigError::invalid(
                "schema_registry.urls",
                "[]",
                "at least one registry URL is required, e.g. [\"http://registry:8081\"]",
            ));
        }
        for url in &self.urls {
            let lower = url.trim().to_ascii_lowercase();
            let rest = lower
                .strip_prefix("http://")
                .or_else(|| lower.strip_prefix("https://"));
            let reason = match rest {
                None => "expected an `http://` or `https://` URL",
                Some(rest) if rest.split(['/', '?']).next().unwrap_or("").is_empty() => {
                    "the URL has no host"
                }
                Some(_) => continue,
            };
            return Err(ConfigError::invalid(
                "schema_registry.urls",
                redact_url(url),
                reason,
            ));
        }
        if self.basic_auth_user_info.is_some() && self.bearer_token.is_some() {
            return Err(ConfigError::constraint(
                "schema_registry.bearer_token",
                "<redacted>",
                "give `basic_auth_user_info` or `bearer_token`, not both",
            ));
        }
        if let Some(info) = &self.basic_auth_user_info {
            if !info.contains(':') {
                return Err(ConfigError::invalid(
                    "schema_registry.basic_auth_user_info",
                    "<redacted>",
                    "expected `user:password`",
                ));
            }
        }
        if self
            .bearer_token
            .as_deref()
            .is_some_and(|t| t.trim().is_empty())
        {
            return Err(ConfigError::invalid(
                "schema_registry.bearer_token",
                "",
                "must not be blank (leave it out instead)",
            ));
        }
        if let Some(ca) = &self.ca_file {
            if let Err(e) = std::fs::metadata(ca) {
                return Err(ConfigError::invalid(
                    "schema_registry.ca_file",
                    ca.display(),
                    format!("cannot be read: {e}"),
                ));
            }
        }
        if self.request_timeout.is_zero() {
            return Err(ConfigError::invalid(
                "schema_registry.request_timeout",
                "0s",
                "must be more than 0",
            ));
        }
        if self.cache_capacity == 0 {
            return Err(ConfigError::invalid(
                "schema_registry.cache_capacity",
                0,
                "must be at least 1",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::{ConfigError, PayloadFormat, RunConfig};

    fn run(value: &str, registry: &str) -> Result<RunConfig, ConfigError> {
        RunConfig::from_toml_str(&format!(
            r#"
            [instance]
            application = "a"
            [[listener]]
            name = "orders"
            topics = ["orders"]
            [listener.delivery]
            mode = "http"
            url = "http://127.0.0.1:8000/in"
            value = "{value}"
            {registry}
            "#
        ))
    }

    #[test]
    fn schema_formats_parse_with_a_registry_table() {
        let r = run(
            "avro",
            r#"[schema_registry]
            urls = ["http://r1:8081", "https://r2:8081/apis/ccompat/v7"]
            request_timeout = "2s"
            cache_capacity = 50"#,
        )
        .unwrap();
        let d = r.listeners[0].delivery.as_ref().unwrap();
        assert_eq!(d.value, PayloadFormat::Avro);
        let sr = r.schema_registry.unwrap();
        assert_eq!(sr.urls.len(), 2);
        assert_eq!(sr.request_timeout, std::time::Duration::from_secs(2));
        assert_eq!(sr.cache_capacity, 50);
        let table = "[schema_registry]\nurls = [\"http://r:8081\"]";
        let formats = [
            ("protobuf", PayloadFormat::Protobuf),
            ("json-schema", PayloadFormat::JsonSchema),
        ];
        for (name, format) in formats {
            let r = run(name, table).unwrap();
            assert_eq!(r.listeners[0].delivery.as_ref().unwrap().value, format);
            assert_eq!(format.as_str(), name);
        }
        // plain formats need no registry
        assert!(run("json", "").unwrap().schema_registry.is_none());
    }

    #[test]
    fn a_schema_format_without_a_registry_table_names_the_listener_and_the_key() {
        let err = run("avro", "").unwrap_err().to_string();
        assert!(err.contains("listener `orders`"), "{err}");
        assert!(err.contains("delivery.value = \"avro\""), "{err}");
        assert!(err.contains("[schema_registry]"), "{err}");
        let err = run("xml", "").unwrap_err().to_string();
        assert!(err.contains("value"), "{err}");
    }

    #[test]
    fn bad_tables_name_the_key_and_never_a_secret() {
        let cases = [
            ("urls = []", "schema_registry.urls"),
            ("urls = [\"ftp://r\"]", "schema_registry.urls"),
            ("urls = [\"http://\"]", "schema_registry.urls"),
            (
                "urls = [\"http://r\"]\nbasic_auth_user_info = \"u:topsecret\"\nbearer_token = \"topsecret\"",
                "schema_registry.bearer_token",
            ),
            (
                "urls = [\"http://r\"]\nbasic_auth_user_info = \"topsecret\"",
                "schema_registry.basic_auth_user_info",
            ),
            (
                "urls = [\"http://r\"]\nca_file = \"/no/such/ca.pem\"",
                "schema_registry.ca_file",
            ),
            (
                "urls = [\"http://r\"]\nrequest_timeout = \"0s\"",
                "schema_registry.request_timeout",
            ),
            (
                "urls = [\"http://r\"]\ncache_capacity = 0",
                "schema_registry.cache_capacity",
            ),
            (
                "urls = [\"http://r\"]\nbearer_token = \"${env:SWITCHYARD_SURELY_UNSET_SR}\"",
                "schema_registry.bearer_token",
            ),
            (
                "urls = [\"http://r\"]\nbearer_token = \"topsecret${env:oops\"",
                "schema_registry.bearer_token",
            ),
        ];
        for (table, key) in cases {
            let err = run("avro", &format!("[schema_registry]\n{table}"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(key), "{table}: {err}");
            assert!(!err.contains("topsecret"), "{table}: {err}");
        }
        let err = run(
            "avro",
            "[schema_registry]\nurls = [\"http://r\"]\nuser = \"x\"",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("user"), "{err}");
    }

    #[test]
    fn credentials_resolve_from_env_and_file_and_stay_out_of_debug() {
        let dir = std::env::temp_dir().join(format!("sr-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let token = dir.join("token");
        std::fs::write(&token, "tok-topsecret\n").unwrap();
        let r = run(
            "protobuf",
            &format!(
                "[schema_registry]\nurls = [\"https://u:pw-topsecret@r\"]\nbearer_token = \"${{file:{}}}\"",
                token.display()
            ),
        )
        .unwrap();
        let sr = r.schema_registry.as_ref().unwrap();
        assert_eq!(sr.bearer_token.as_deref(), Some("tok-topsecret"));
        let shown = format!("{r:?}");
        assert!(!shown.contains("topsecret"), "{shown}");
        std::env::set_var("SWITCHYARD_TEST_SR_USER_INFO", "key:sec-topsecret");
        let r = run(
            "json-schema",
            "[schema_registry]\nurls = [\"http://r\"]\nbasic_auth_user_info = \"${env:SWITCHYARD_TEST_SR_USER_INFO}\"",
        )
        .unwrap();
        let sr = r.schema_registry.unwrap();
        assert_eq!(sr.basic_auth(), Some(("key", "sec-topsecret")));
        let shown = format!("{sr:?}");
        assert!(
            shown.contains("key:<redacted>") && !shown.contains("topsecret"),
            "{shown}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
