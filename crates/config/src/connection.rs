//! One Kafka connection configuration for every client the project creates.
//!
//! A [`Connection`] holds the librdkafka client properties that every client
//! shares: `bootstrap.servers` and the security settings (`security.protocol`,
//! `sasl.*`, `ssl.*`), plus any other client property such as
//! `broker.address.family` or `client.rack`. The consumer of a listener, its
//! dead-letter producer, the control store, the status publisher, the deploy
//! driver, `lag` and `offsets reset` are all built from one: none is built
//! from a bare bootstrap string.
//!
//! Where a connection comes from, in the order they are applied:
//! 1. the `[kafka]` table of a TOML file ([`Connection::from_table`]);
//! 2. a Java-style properties file, as Kafka's own tools take with
//!    `--command-config` ([`Connection::apply_java_properties`]): Java names
//!    are mapped to librdkafka's, and `sasl.jaas.config` gives the SASL
//!    username and password (PLAIN, SCRAM) or the OIDC client (OAUTHBEARER);
//! 3. `-X key=value` on the command line, as kcat takes them
//!    ([`Connection::apply_overrides`]);
//! 4. the environment ([`Connection::apply_env`]): `SWITCHYARD_KAFKA_<KEY>`
//!    with the key upper-cased and its dots as underscores, for example
//!    `SWITCHYARD_KAFKA_SASL_PASSWORD`, so a Kubernetes Secret can supply a
//!    password without writing it into a file or onto a command line.
//!
//! Every value may name a secret kept elsewhere: `${env:NAME}` is replaced
//! by the environment variable `NAME` and `${file:PATH}` by the content of a
//! file (trailing line breaks removed), for example a mounted Secret.
//!
//! Secrets never leave a `Connection` in text meant for people: `Debug`,
//! [`Connection::redacted`] and every error show `<redacted>` for passwords,
//! secrets, tokens, private keys, `sasl.jaas.config` and
//! `sasl.oauthbearer.config`.
//!
//! ```
//! use switchyard_config::Connection;
//!
//! let mut c = Connection::new("broker-1:9093");
//! c.apply_overrides(&["security.protocol=SASL_SSL", "sasl.mechanism=SCRAM-SHA-512"])?;
//! c.apply_java_properties(r#"
//!     sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="svc" password="s3cret";
//! "#)?;
//! assert_eq!(c.get("sasl.username"), Some("svc"));
//! assert!(!format!("{c:?}").contains("s3cret"));
//! let client = c.client_config();
//! assert_eq!(client.get("sasl.password"), Some("s3cret"));
//! # Ok::<(), switchyard_config::ConfigError>(())
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use rdkafka::ClientConfig;

use crate::error::ConfigError;
use crate::keys::check_librdkafka_property;
use crate::secret::{is_secret, resolve};

/// The prefix of environment variables that set connection properties.
pub const ENV_PREFIX: &str = "SWITCHYARD_KAFKA_";

/// Default `bootstrap.servers`.
pub const DEFAULT_BOOTSTRAP_SERVERS: &str = "127.0.0.1:9092";

/// The librdkafka client properties shared by every client of one cluster.
#[derive(Clone, PartialEq, Eq)]
pub struct Connection {
    properties: BTreeMap<String, String>,
}

impl Default for Connection {
    fn default() -> Self {
        Connection::new(DEFAULT_BOOTSTRAP_SERVERS)
    }
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.redacted()).finish()
    }
}

impl Connection {
    /// A plaintext connection to `bootstrap` (`host:port[,host:port...]`).
    pub fn new(bootstrap: impl Into<String>) -> Connection {
        let mut properties = BTreeMap::new();
        properties.insert("bootstrap.servers".to_string(), bootstrap.into());
        Connection { properties }
    }

    /// `bootstrap.servers`.
    pub fn bootstrap(&self) -> &str {
        self.get("bootstrap.servers").unwrap_or_default()
    }

    /// The value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.properties.get(key).map(String::as_str)
    }

    /// Set `key` to `value` after resolving `${env:..}` and `${file:..}` in
    /// it and checking both against librdkafka; the error names the key and
    /// never shows a secret value.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
        let key = key.trim();
        if key.is_empty() {
            return Err(ConfigError::invalid(
                "<empty>",
                value,
                "a property needs a key",
            ));
        }
        let value = resolve(key, value.trim())?;
        check_librdkafka_property(key, &value)?;
        self.properties.insert(key.to_string(), value);
        Ok(())
    }

    /// [`Connection::set`], by value.
    pub fn with(mut self, key: &str, value: &str) -> Result<Connection, ConfigError> {
        self.set(key, value)?;
        Ok(self)
    }

    /// Every property of a TOML `[kafka]` table (keys in librdkafka's dotted
    /// spelling; values strings, numbers or booleans).
    pub fn from_table(table: &BTreeMap<String, toml::Value>) -> Result<Connection, ConfigError> {
        let mut c = Connection::default();
        for (key, value) in table {
            let text = match value {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(n) => n.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                toml::Value::Float(x) => x.to_string(),
                other => {
                    return Err(ConfigError::invalid(
                        key,
                        other.type_str(),
                        "expected a string, a number or a boolean",
                    ))
                }
            };
            c.set(key, &text)?;
        }
        Ok(c)
    }

    /// `-X key=value` overrides, applied in order.
    pub fn apply_overrides<S: AsRef<str>>(&mut self, overrides: &[S]) -> Result<(), ConfigError> {
        for entry in overrides {
            let entry = entry.as_ref();
            let (key, value) = entry.split_once('=').ok_or_else(|| {
                ConfigError::invalid(
                    entry.split('=').next().unwrap_or(entry),
                    "",
                    "expected `-X key=value`",
                )
            })?;
            self.set(key, value)?;
        }
        Ok(())
    }

    /// The properties of a Java-style `--command-config` file.
    pub fn apply_command_config(&mut self, path: &Path) -> Result<(), ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError::invalid(
                "--command-config",
                path.display().to_string(),
                e.to_string(),
            )
        })?;
        self.apply_java_properties(&text)
    }

    /// The properties of a Java `.properties` text (`key=value` or
    /// `key: value` lines, `#` and `!` comments, `\` line continuations),
    /// with Java's client names mapped to librdkafka's.
    pub fn apply_java_properties(&mut self, text: &str) -> Result<(), ConfigError> {
        let mut truststore_type = None;
        let mut truststore = None;
        for (key, value) in java_properties(text) {
            match key.as_str() {
                "sasl.jaas.config" => {
                    for (k, v) in jaas_properties(&value)? {
                        self.set(k, &v)?;
                    }
                }
                "ssl.truststore.type" => truststore_type = Some(value.to_ascii_uppercase()),
                "ssl.truststore.location" => truststore = Some(value),
                "ssl.truststore.password" => {}
                "ssl.endpoint.identification.algorithm" if value.is_empty() => {
                    self.set(&key, "none")?
                }
                "sasl.oauthbearer.token.endpoint.url" => {
                    self.set("sasl.oauthbearer.method", "oidc")?;
                    self.set(&key, &value)?;
                }
                // Java-only settings with no meaning for librdkafka's clients
                "sasl.login.callback.handler.class" | "sasl.client.callback.handler.class" => {}
                _ => self.set(&key, &value)?,
            }
        }
        if let Some(location) = truststore {
            match truststore_type.as_deref() {
                Some("PEM") => self.set("ssl.ca.location", &location)?,
                other => {
                    return Err(ConfigError::invalid(
                        "ssl.truststore.location",
                        location,
                        format!(
                            "librdkafka reads no {} trust store: export the CA certificates as PEM and set `ssl.ca.location` (or `ssl.truststore.type=PEM`)",
                            other.unwrap_or("JKS")
                        ),
                    ))
                }
            }
        }
        Ok(())
    }

    /// `SWITCHYARD_KAFKA_<KEY>` variables of the environment `vars` (for
    /// example `std::env::vars()`): `SWITCHYARD_KAFKA_SASL_PASSWORD` sets
    /// `sasl.password`. Keys are lower-cased with `_` as `.`.
    pub fn apply_env(
        &mut self,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(), ConfigError> {
        let mut found: Vec<(String, String)> = vars
            .into_iter()
            .filter_map(|(name, value)| {
                let key = name
                    .strip_prefix(ENV_PREFIX)?
                    .to_ascii_lowercase()
                    .replace('_', ".");
                Some((key, value))
            })
            .collect();
        found.sort();
        for (key, value) in found {
            self.set(&key, &value)?;
        }
        Ok(())
    }

    /// Every property, secrets shown as `<redacted>`: for logs, `config
    /// check` and status.
    pub fn redacted(&self) -> BTreeMap<String, String> {
        self.properties
            .iter()
            .map(|(k, v)| {
                let shown = if is_secret(k) {
                    "<redacted>".to_string()
                } else {
                    v.clone()
                };
                (k.clone(), shown)
            })
            .collect()
    }

    /// Every property (`bootstrap.servers` included), for callers that add
    /// their own settings on top.
    pub fn properties(&self) -> &BTreeMap<String, String> {
        &self.properties
    }

    /// A librdkafka client configuration with every property set; callers
    /// add their client's own settings (`group.id`, producer settings, ...).
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        for (key, value) in &self.properties {
            config.set(key, value);
        }
        config
    }

    /// This connection with `bootstrap.servers` replaced by `bootstrap`.
    pub fn with_bootstrap(mut self, bootstrap: impl Into<String>) -> Connection {
        self.properties
            .insert("bootstrap.servers".to_string(), bootstrap.into());
        self
    }

    /// Whether the connection authenticates or encrypts (`security.protocol`
    /// other than plaintext).
    pub fn is_secured(&self) -> bool {
        self.get("security.protocol")
            .is_some_and(|p| !p.eq_ignore_ascii_case("plaintext"))
    }
}

/// A plaintext connection to a bootstrap list ([`Connection::new`]).
impl From<&str> for Connection {
    fn from(bootstrap: &str) -> Connection {
        Connection::new(bootstrap)
    }
}

/// A plaintext connection to a bootstrap list ([`Connection::new`]).
impl From<String> for Connection {
    fn from(bootstrap: String) -> Connection {
        Connection::new(bootstrap)
    }
}

/// A plaintext connection to a bootstrap list ([`Connection::new`]).
impl From<&String> for Connection {
    fn from(bootstrap: &String) -> Connection {
        Connection::new(bootstrap.as_str())
    }
}

impl From<&Connection> for Connection {
    fn from(c: &Connection) -> Connection {
        c.clone()
    }
}

/// The `key=value` pairs of a Java properties text.
fn java_properties(text: &str) -> Vec<(String, String)> {
    let mut logical = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let line = line.trim_start();
        if current.is_empty() && (line.is_empty() || line.starts_with('#') || line.starts_with('!'))
        {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(head) => current.push_str(head),
            None => {
                current.push_str(line);
                logical.push(std::mem::take(&mut current));
            }
        }
    }
    if !current.is_empty() {
        logical.push(current);
    }
    logical
        .into_iter()
        .filter_map(|line| {
            let at = line.find(['=', ':'])?;
            Some((
                line[..at].trim().to_string(),
                line[at + 1..].trim().to_string(),
            ))
        })
        .collect()
}

/// The librdkafka properties a `sasl.jaas.config` stands for.
fn jaas_properties(jaas: &str) -> Result<Vec<(&'static str, String)>, ConfigError> {
    let options = jaas_options(jaas);
    let get = |name: &str| {
        options
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let module = jaas.split_whitespace().next().unwrap_or_default();
    if module.ends_with("PlainLoginModule") || module.ends_with("ScramLoginModule") {
        let (Some(username), Some(password)) = (get("username"), get("password")) else {
            return Err(ConfigError::invalid(
                "sasl.jaas.config",
                "<redacted>",
                "PLAIN and SCRAM need `username` and `password` options",
            ));
        };
        return Ok(vec![
            ("sasl.username", username),
            ("sasl.password", password),
        ]);
    }
    if module.ends_with("OAuthBearerLoginModule") {
        let mut out = Vec::new();
        for (option, key) in [
            ("clientId", "sasl.oauthbearer.client.id"),
            ("clientSecret", "sasl.oauthbearer.client.secret"),
            ("scope", "sasl.oauthbearer.scope"),
        ] {
            if let Some(v) = get(option) {
                out.push((key, v));
            }
        }
        return Ok(out);
    }
    Err(ConfigError::invalid(
        "sasl.jaas.config",
        module,
        "supported login modules: PlainLoginModule, ScramLoginModule, OAuthBearerLoginModule (GSSAPI/Kerberos is not built in)",
    ))
}

/// `name="value"` (or unquoted) options of a JAAS entry.
fn jaas_options(jaas: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = jaas;
    while let Some(eq) = rest.find('=') {
        let name = rest[..eq]
            .split_whitespace()
            .last()
            .unwrap_or_default()
            .to_string();
        let after = rest[eq + 1..].trim_start();
        let (value, tail) = match after.strip_prefix('"') {
            Some(quoted) => match quoted.find('"') {
                Some(end) => (quoted[..end].to_string(), &quoted[end + 1..]),
                None => (quoted.to_string(), ""),
            },
            None => {
                let end = after.find([' ', ';']).unwrap_or(after.len());
                (after[..end].to_string(), &after[end..])
            }
        };
        out.push((name, value));
        rest = tail;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_properties_map_to_librdkafka() {
        let mut c = Connection::new("b:9093");
        c.apply_java_properties(
            "# a comment\n\
             security.protocol=SASL_SSL\n\
             sasl.mechanism: SCRAM-SHA-256\n\
             ssl.endpoint.identification.algorithm=\n\
             ssl.truststore.type=PEM\n\
             ssl.truststore.location=/etc/ca.pem\n\
             sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule \\\n  required username=\"u\" password=\"p w\";\n",
        )
        .unwrap();
        assert_eq!(c.get("security.protocol"), Some("SASL_SSL"));
        assert_eq!(c.get("sasl.mechanism"), Some("SCRAM-SHA-256"));
        assert_eq!(c.get("ssl.endpoint.identification.algorithm"), Some("none"));
        assert_eq!(c.get("ssl.ca.location"), Some("/etc/ca.pem"));
        assert_eq!(c.get("sasl.username"), Some("u"));
        assert_eq!(c.get("sasl.password"), Some("p w"));
    }

    #[test]
    fn a_jks_trust_store_is_refused_with_the_way_out() {
        let err = Connection::new("b:1")
            .apply_java_properties(
                "ssl.truststore.location=/x.jks\nssl.truststore.password=hunter2\n",
            )
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("ssl.truststore.location") && err.contains("ssl.ca.location"),
            "{err}"
        );
        assert!(!err.contains("hunter2"));
    }

    #[test]
    fn secrets_are_redacted_everywhere() {
        let mut c = Connection::new("b:1");
        c.apply_overrides(&[
            "sasl.password=hunter2",
            "sasl.oauthbearer.config=principal=x token=abc",
        ])
        .unwrap();
        let shown = format!("{c:?} {:?}", c.redacted());
        for secret in ["hunter2", "abc"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert_eq!(c.client_config().get("sasl.password"), Some("hunter2"));
        let err = Connection::new("b:1")
            .with("sasl.password", "${env:SWITCHYARD_SURELY_UNSET}")
            .unwrap_err()
            .to_string();
        assert!(err.contains("SWITCHYARD_SURELY_UNSET"), "{err}");
    }

    #[test]
    fn env_and_file_references_are_resolved() {
        let dir = std::env::temp_dir().join(format!("sy-conn-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("password");
        std::fs::write(&file, "from-file\n").unwrap();
        let c = Connection::new("b:1")
            .with("sasl.password", &format!("${{file:{}}}", file.display()))
            .unwrap();
        assert_eq!(c.get("sasl.password"), Some("from-file"));
        let mut c = Connection::new("b:1");
        c.apply_env([
            (
                "SWITCHYARD_KAFKA_SASL_USERNAME".to_string(),
                "svc".to_string(),
            ),
            ("OTHER".to_string(), "x".to_string()),
        ])
        .unwrap();
        assert_eq!(c.get("sasl.username"), Some("svc"));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn bad_overrides_name_the_key() {
        let err = Connection::new("b:1")
            .apply_overrides(&["no.such.property=1"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("no.such.property"), "{err}");
        let err = Connection::new("b:1")
            .apply_overrides(&["security.protocol"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("key=value"), "{err}");
    }
}
