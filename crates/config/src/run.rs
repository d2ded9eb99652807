//! The file `switchyard run --config app.toml` reads: the cluster
//! (`[kafka]`), the instance (`[instance]`), consumer settings shared by
//! the listeners (`[consumer]`) and the listeners, each with the
//! `[listener.delivery]` table that says how its records reach the
//! application (see [`crate::DeliveryConfig`]).
//!
//! ```toml
//! [kafka]                                  # every client: consumers, producers, admin
//! "bootstrap.servers" = "kafka-1:9093"
//! "security.protocol" = "SASL_SSL"
//! "sasl.mechanism" = "SCRAM-SHA-512"
//! "sasl.username" = "orders"
//! "sasl.password" = "${env:KAFKA_PASSWORD}"
//!
//! [instance]
//! application = "orders-app"
//! instance_id = "orders-1"        # else --instance-id, else $POD_NAME, else $HOSTNAME
//! slot = "blue"
//! control = { kafka = "orders-app.control" }   # or { redis = "redis://..." } or { file = "desired.json" }
//! status_topic = "orders-app.status"
//! create_topics = true             # false: a missing status topic is an error (the control topic is never created here)
//! admin = "0.0.0.0:8080"
//! shutdown_timeout = "30s"
//!
//! [consumer]
//! group_id = "orders"                  # default: the application's name
//!
//! [[listener]]
//! name = "orders"
//! topics = ["orders"]
//! [listener.delivery]
//! mode = "http"
//! url = "http://127.0.0.1:8000/records"
//! value = "avro"                       # decoded through [schema_registry]
//!
//! [schema_registry]                    # see crate::SchemaRegistryConfig
//! urls = ["http://registry:8081"]
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::connection::Connection;
use crate::consumer::ConsumerConfig;
use crate::error::ConfigError;
use crate::file::{from_toml, read_file};
use crate::listener::ListenerConfig;
use crate::schema_registry::SchemaRegistryConfig;
use crate::secret::{redact_url, resolve_secret};

/// The environment variable the instance id is read from by default.
pub const DEFAULT_INSTANCE_ID_ENV: &str = "POD_NAME";
/// Default [`InstanceConfig::shutdown_timeout`].
pub const DEFAULT_RUN_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);

/// Where the control plane's desired state is kept.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum ControlStoreConfig {
    /// A compacted Kafka topic, on the `[kafka]` cluster.
    Kafka(String),
    /// A Redis server (`redis://[user:password@]host:port/db`).
    Redis(String),
    /// A JSON file, read again when it changes (read-only).
    File(PathBuf),
}

impl std::fmt::Debug for ControlStoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ControlStoreConfig::Kafka(t) => f.debug_tuple("Kafka").field(t).finish(),
            ControlStoreConfig::Redis(u) => f.debug_tuple("Redis").field(&redact_url(u)).finish(),
            ControlStoreConfig::File(p) => f.debug_tuple("File").field(p).finish(),
        }
    }
}

fn default_instance_id_env() -> String {
    DEFAULT_INSTANCE_ID_ENV.to_string()
}
fn default_true() -> bool {
    true
}
fn default_shutdown_timeout() -> Duration {
    DEFAULT_RUN_SHUTDOWN_TIMEOUT
}

/// The `[instance]` table: who this process is in its fleet.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceConfig {
    /// The application (the fleet this instance belongs to).
    pub application: String,
    /// This instance's id; see [`InstanceConfig::resolve_instance_id`].
    #[serde(default)]
    pub instance_id: Option<String>,
    /// The environment variable holding the instance id when neither the
    /// file nor `--instance-id` gives one (default `POD_NAME`).
    #[serde(default = "default_instance_id_env")]
    pub instance_id_env: String,
    /// The deployment slot (blue/green, canary) this instance runs in.
    #[serde(default)]
    pub slot: Option<String>,
    /// The control store; none: no control-plane agent.
    #[serde(default)]
    pub control: Option<ControlStoreConfig>,
    /// The topic the instance publishes its status to.
    #[serde(default)]
    pub status_topic: Option<String>,
    /// Create the status topic when it is missing (default true); false
    /// where topics are created ahead: a missing one is then an error that
    /// names it. An instance never creates its control topic, whatever
    /// this says: a missing control topic is an error naming it.
    #[serde(default = "default_true")]
    pub create_topics: bool,
    /// Address of the admin HTTP server (health, metrics, status), e.g. "0.0.0.0:8080".
    #[serde(default)]
    pub admin: Option<SocketAddr>,
    /// Bearer token the admin API requires of requests that change state
    /// (`POST /bindings/..`, `POST /actuator/bindings/..`); takes
    /// `${env:NAME}` and `${file:PATH}`; needs `admin` and `control`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_token: Option<String>,
    /// How long a shutdown (SIGTERM, SIGINT) waits for records in flight.
    #[serde(default = "default_shutdown_timeout", with = "crate::duration")]
    pub shutdown_timeout: Duration,
}

impl std::fmt::Debug for InstanceConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstanceConfig")
            .field("application", &self.application)
            .field("instance_id", &self.instance_id)
            .field("instance_id_env", &self.instance_id_env)
            .field("slot", &self.slot)
            .field("control", &self.control)
            .field("status_topic", &self.status_topic)
            .field("create_topics", &self.create_topics)
            .field("admin", &self.admin)
            .field(
                "admin_token",
                &self.admin_token.as_ref().map(|_| "<redacted>"),
            )
            .field("shutdown_timeout", &self.shutdown_timeout)
            .finish()
    }
}

impl InstanceConfig {
    /// The instance id: `flag` (`--instance-id`), else `instance_id` from
    /// the file, else the variable named by `instance_id_env`, else
    /// `HOSTNAME`, as `env` reports them (blank values are skipped).
    ///
    /// ```
    /// use switchyard_config::RunConfig;
    /// let run = RunConfig::from_toml_str(r#"
    ///     [instance]
    ///     application = "a"
    ///     [[listener]]
    ///     name = "l"
    ///     topics = ["t"]
    ///     delivery = { mode = "exec", command = ["cat"] }
    /// "#).unwrap();
    /// let env = |k: &str| (k == "POD_NAME").then(|| "pod-7".to_string());
    /// assert_eq!(run.instance.resolve_instance_id(None, env).unwrap(), "pod-7");
    /// assert_eq!(run.instance.resolve_instance_id(Some("x"), env).unwrap(), "x");
    /// assert!(run.instance.resolve_instance_id(None, |_| None).is_err());
    /// ```
    pub fn resolve_instance_id(
        &self,
        flag: Option<&str>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<String, ConfigError> {
        let blank = |s: &String| s.trim().is_empty();
        flag.map(str::to_string)
            .filter(|s| !blank(s))
            .or_else(|| self.instance_id.clone().filter(|s| !blank(s)))
            .or_else(|| env(&self.instance_id_env).filter(|s| !blank(s)))
            .or_else(|| env("HOSTNAME").filter(|s| !blank(s)))
            .map(|s| s.trim().to_string())
            .ok_or_else(|| {
                ConfigError::invalid(
                    "instance.instance_id",
                    "",
                    format!(
                        "no instance id: set it in the file, pass --instance-id, or set {} or HOSTNAME",
                        self.instance_id_env
                    ),
                )
            })
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let blank = |key: &str, value: &str| {
            Err(ConfigError::invalid(
                key,
                value,
                "must not be blank (leave it out instead)",
            ))
        };
        if self.application.trim().is_empty() {
            return Err(ConfigError::invalid(
                "instance.application",
                &self.application,
                "the application's name is required",
            ));
        }
        if let Some(id) = self.instance_id.as_deref().filter(|s| s.trim().is_empty()) {
            return blank("instance.instance_id", id);
        }
        if let Some(slot) = self.slot.as_deref().filter(|s| s.trim().is_empty()) {
            return blank("instance.slot", slot);
        }
        if let Some(t) = self.status_topic.as_deref().filter(|s| s.trim().is_empty()) {
            return blank("instance.status_topic", t);
        }
        if self.instance_id_env.trim().is_empty() {
            return blank("instance.instance_id_env", &self.instance_id_env);
        }
        match &self.control {
            Some(ControlStoreConfig::Kafka(t)) if t.trim().is_empty() => {
                return blank("instance.control.kafka", t)
            }
            Some(ControlStoreConfig::Redis(u))
                if !u.starts_with("redis://") && !u.starts_with("rediss://") =>
            {
                return Err(ConfigError::invalid(
                    "instance.control.redis",
                    "<url>",
                    "expected a redis:// or rediss:// URL",
                ))
            }
            Some(ControlStoreConfig::File(p)) if p.as_os_str().is_empty() => {
                return blank("instance.control.file", "")
            }
            _ => {}
        }
        if let Some(t) = &self.admin_token {
            if t.trim().is_empty() {
                return blank("instance.admin_token", "");
            }
            if self.admin.is_none() {
                return Err(ConfigError::invalid(
                    "instance.admin_token",
                    "<redacted>",
                    "guards the admin API: give its address (`admin`)",
                ));
            }
            if self.control.is_none() {
                return Err(ConfigError::invalid(
                    "instance.admin_token",
                    "<redacted>",
                    "guards the admin API's control endpoints: give a control store (`control`)",
                ));
            }
        }
        if self.shutdown_timeout.is_zero() {
            return Err(ConfigError::invalid(
                "instance.shutdown_timeout",
                "0s",
                "must be more than 0",
            ));
        }
        Ok(())
    }
}

/// The TOML as written; [`RunConfig`] holds it resolved.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRunConfig {
    #[serde(default)]
    kafka: BTreeMap<String, toml::Value>,
    instance: InstanceConfig,
    #[serde(default)]
    consumer: ConsumerConfig,
    #[serde(default, rename = "listener")]
    listeners: Vec<ListenerConfig>,
    #[serde(default)]
    schema_registry: Option<SchemaRegistryConfig>,
}

/// The whole `switchyard run` file, with `${env:..}`/`${file:..}` in
/// `[kafka]` resolved; `Debug` never shows a secret.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// The client properties every client shares (`[kafka]`).
    pub kafka: Connection,
    /// The instance (`[instance]`).
    pub instance: InstanceConfig,
    /// Consumer settings shared by the listeners (`[consumer]`); its
    /// bootstrap servers and security come from `kafka`.
    pub consumer: ConsumerConfig,
    /// The listeners (`[[listener]]`), each with a delivery.
    pub listeners: Vec<ListenerConfig>,
    /// The Schema Registry (`[schema_registry]`) of the listeners whose
    /// `value` is `avro`, `protobuf` or `json-schema`, credentials resolved.
    pub schema_registry: Option<SchemaRegistryConfig>,
}

impl RunConfig {
    /// Parses and validates TOML text (errors name `<string>` as the path).
    pub fn from_toml_str(text: &str) -> Result<RunConfig, ConfigError> {
        Self::parse(text, "<string>")
    }

    /// Reads, parses and validates a file.
    ///
    /// ```
    /// # use switchyard_config::{ConfigError, RunConfig};
    /// let err = RunConfig::from_file("/does/not/exist.toml").unwrap_err();
    /// assert!(matches!(err, ConfigError::Io { .. }));
    /// ```
    pub fn from_file(path: impl AsRef<Path>) -> Result<RunConfig, ConfigError> {
        let (text, path) = read_file(path.as_ref())?;
        Self::parse(&text, &path)
    }

    fn parse(text: &str, path: &str) -> Result<RunConfig, ConfigError> {
        let raw: RawRunConfig = from_toml(text, path)?;
        let mut kafka = Connection::from_table(&raw.kafka)?;
        if !raw.kafka.contains_key("bootstrap.servers") {
            kafka.set("bootstrap.servers", &raw.consumer.bootstrap_servers)?;
        }
        let mut consumer = raw.consumer;
        if consumer.group_id.is_none() {
            consumer.group_id = Some(raw.instance.application.clone());
        }
        let mut instance = raw.instance;
        if let Some(t) = &instance.admin_token {
            instance.admin_token = Some(resolve_secret("instance.admin_token", t)?);
        }
        let run = RunConfig {
            consumer: consumer.with_connection(kafka.clone()),
            kafka,
            instance,
            listeners: raw.listeners,
            schema_registry: raw.schema_registry.map(|s| s.resolved()).transpose()?,
        };
        run.validate()?;
        Ok(run)
    }

    /// Applies the connection on top of `[kafka]` (for `-X`,
    /// `--command-config` and the environment): `kafka` is replaced and the
    /// consumer takes it.
    pub fn set_connection(&mut self, kafka: Connection) {
        self.consumer = self.consumer.clone().with_connection(kafka.clone());
        self.kafka = kafka;
    }

    /// Checks the instance, the consumer and every listener: at least one
    /// listener, unique names, each with a `[listener.delivery]` table that
    /// validates ([`crate::DeliveryConfig::validate`]), a
    /// `[schema_registry]` table that validates, and one at all when a
    /// listener's `value` is read through it.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.instance.validate()?;
        self.consumer.validate()?;
        if self.listeners.is_empty() {
            return Err(ConfigError::invalid(
                "listener",
                "",
                "no `[[listener]]`: `switchyard run` needs at least one",
            ));
        }
        for (i, listener) in self.listeners.iter().enumerate() {
            listener.validate()?;
            if self.listeners[..i].iter().any(|l| l.name == listener.name) {
                return Err(ConfigError::listener(
                    &listener.name,
                    "another listener has the same name",
                ));
            }
            if listener.delivery.is_none() {
                return Err(ConfigError::listener(
                    &listener.name,
                    "no `[listener.delivery]` table: say how records reach the application (`mode = \"http\"` with `url`, or `mode = \"exec\"` with `command`)",
                ));
            }
            let value = listener.delivery.as_ref().map(|d| d.value);
            if let Some(format) = value.filter(|v| v.needs_registry()) {
                if self.schema_registry.is_none() {
                    return Err(ConfigError::listener(
                        &listener.name,
                        format!(
                            "`delivery.value = \"{}\"` reads its schemas from a Schema Registry: add a `[schema_registry]` table with `urls`",
                            format.as_str()
                        ),
                    ));
                }
            }
        }
        if let Some(registry) = &self.schema_registry {
            registry.validate()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(instance: &str) -> String {
        format!(
            "[instance]\napplication = \"a\"\n{instance}\n[[listener]]\nname = \"l\"\ntopics = [\"t\"]\ndelivery = {{ mode = \"exec\", command = [\"cat\"] }}\n"
        )
    }

    /// The admin token is resolved from the environment, never shown, and
    /// refused where it would guard nothing.
    #[test]
    fn the_admin_token_is_resolved_hidden_and_needs_the_admin_api_and_a_control_store() {
        std::env::set_var("SWITCHYARD_TEST_ADMIN_TOKEN", "t0p-s3cret");
        let run = RunConfig::from_toml_str(&file(
            "admin = \"127.0.0.1:0\"\ncontrol = { file = \"d.json\" }\nadmin_token = \"${env:SWITCHYARD_TEST_ADMIN_TOKEN}\"",
        ))
        .unwrap();
        assert_eq!(run.instance.admin_token.as_deref(), Some("t0p-s3cret"));
        let shown = format!("{run:?}");
        assert!(
            !shown.contains("t0p-s3cret") && shown.contains("<redacted>"),
            "{shown}"
        );

        let no_admin = RunConfig::from_toml_str(&file(
            "control = { file = \"d.json\" }\nadmin_token = \"inline-s3cret\"",
        ))
        .unwrap_err()
        .to_string();
        assert!(
            no_admin.contains("instance.admin_token") && no_admin.contains("`admin`"),
            "{no_admin}"
        );
        assert!(!no_admin.contains("inline-s3cret"), "{no_admin}");
        let no_control =
            RunConfig::from_toml_str(&file("admin = \"127.0.0.1:0\"\nadmin_token = \"x\""))
                .unwrap_err()
                .to_string();
        assert!(no_control.contains("`control`"), "{no_control}");
        let missing = RunConfig::from_toml_str(&file(
            "admin = \"127.0.0.1:0\"\ncontrol = { file = \"d.json\" }\nadmin_token = \"${env:SWITCHYARD_TEST_NO_SUCH_VAR}\"",
        ))
        .unwrap_err()
        .to_string();
        assert!(missing.contains("SWITCHYARD_TEST_NO_SUCH_VAR"), "{missing}");
    }
}
