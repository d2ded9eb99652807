//! The application configuration file: one `[consumer]` table and any number
//! of `[[listener]]` tables, parsed from TOML and validated as a whole.
//!
//! ```toml
//! [consumer]
//! bootstrap_servers = "127.0.0.1:9092"
//! group_id = "orders"
//! partition_assignment_strategy = "cooperative-sticky"
//! [consumer.librdkafka]
//! "statistics.interval.ms" = "1000"
//!
//! [[listener]]
//! name = "orders"
//! topics = ["orders"]
//! commit = { mode = "every-n", records = 100 }
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::consumer::ConsumerConfig;
use crate::error::{ConfigError, ConfigWarning};
use crate::listener::ListenerConfig;
use crate::policy::CommitPolicy;

/// The whole configuration file.
///
/// ```
/// use switchyard_config::AppConfig;
///
/// let app = AppConfig::from_toml_str(r#"
///     [consumer]
///     group_id = "orders"
///     [[listener]]
///     name = "orders"
///     topics = ["orders"]
/// "#).unwrap();
/// assert_eq!(app.listeners[0].name, "orders");
/// assert_eq!(app.consumer.bootstrap_servers, "127.0.0.1:9092");
/// ```
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AppConfig {
    /// Settings shared by every listener's consumer.
    pub consumer: ConsumerConfig,
    /// The listeners (`[[listener]]` tables).
    #[serde(default, rename = "listener")]
    pub listeners: Vec<ListenerConfig>,
}

impl AppConfig {
    /// Parses TOML and validates everything (see [`AppConfig::validate`]).
    ///
    /// # Errors
    ///
    /// [`ConfigError::Parse`] (path `<string>`) for TOML syntax and type
    /// errors, with toml's message naming the key, otherwise whatever
    /// [`AppConfig::validate`] reports.
    ///
    /// ```
    /// use switchyard_config::{AppConfig, ConfigError};
    ///
    /// let err = AppConfig::from_toml_str("[consumer]\nsession_timeout_ms = \"abc\"\n").unwrap_err();
    /// assert!(matches!(err, ConfigError::Parse { .. }));
    /// assert!(err.to_string().contains("session_timeout_ms"));
    /// ```
    pub fn from_toml_str(s: &str) -> Result<Self, ConfigError> {
        Self::parse(s, "<string>")
    }

    /// Reads, parses and validates a TOML file.
    ///
    /// ```
    /// use switchyard_config::{AppConfig, ConfigError};
    ///
    /// let err = AppConfig::from_file("/does/not/exist.toml").unwrap_err();
    /// assert!(matches!(err, ConfigError::Io { .. }));
    /// assert!(err.to_string().contains("/does/not/exist.toml"));
    /// ```
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let (text, path) = read_file(path.as_ref())?;
        Self::parse(&text, &path)
    }

    fn parse(text: &str, path: &str) -> Result<Self, ConfigError> {
        let app: AppConfig = from_toml(text, path)?;
        app.validate()?;
        Ok(app)
    }

    /// The listener with this name.
    ///
    /// ```
    /// use switchyard_config::{AppConfig, ConsumerConfig, ListenerConfig};
    ///
    /// let app = AppConfig {
    ///     consumer: ConsumerConfig::new("kafka:9092").with_group("g"),
    ///     listeners: vec![ListenerConfig::new("a").with_topics(["a"])],
    /// };
    /// assert!(app.listener("a").is_some());
    /// assert!(app.listener("b").is_none());
    /// ```
    pub fn listener(&self, name: &str) -> Option<&ListenerConfig> {
        self.listeners.iter().find(|l| l.name == name)
    }

    /// Validates the consumer settings ([`ConsumerConfig::validate`]), every
    /// listener ([`ListenerConfig::validate`]) and the rules between them:
    /// listener names are unique; every subscribing (`topics` / `pattern`)
    /// listener has a group id (its own `group_id` or `consumer.group_id`);
    /// a listener with [`CommitPolicy::Auto`] needs a non-zero
    /// `auto.commit.interval.ms`.
    ///
    /// Warns (and logs) when `group.instance.id` is set and two listeners
    /// share a group: their consumers would fence each other unless the
    /// runtime makes the instance ids distinct.
    ///
    /// ```
    /// use switchyard_config::{AppConfig, ConsumerConfig, ListenerConfig};
    ///
    /// let app = AppConfig {
    ///     consumer: ConsumerConfig::new("kafka:9092"),
    ///     listeners: vec![ListenerConfig::new("a").with_topics(["a"])],
    /// };
    /// let err = app.validate().unwrap_err();
    /// assert!(err.to_string().contains("listener `a`"));
    /// assert!(err.to_string().contains("group"));
    /// ```
    pub fn validate(&self) -> Result<Vec<ConfigWarning>, ConfigError> {
        let mut warnings = self.consumer.validate()?;
        let mut groups: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (i, listener) in self.listeners.iter().enumerate() {
            listener.validate()?;
            let name = &listener.name;
            if self.listeners[..i].iter().any(|l| &l.name == name) {
                return Err(ConfigError::listener(
                    name,
                    "another listener has the same name",
                ));
            }
            let group = listener
                .group_id
                .as_deref()
                .or(self.consumer.group_id.as_deref());
            match group {
                Some(group) => groups.entry(group).or_default().push(name),
                // a standalone (`assign`) listener never joins its group: the
                // runtime picks one just to store offsets
                None if !listener.assign.is_empty() => {}
                None => {
                    return Err(ConfigError::listener(
                        name,
                        "subscribing needs a consumer group: set `group_id` on the listener or in `[consumer]`",
                    ))
                }
            }
            if listener.commit == CommitPolicy::Auto && self.consumer.auto_commit_interval_ms == 0 {
                return Err(ConfigError::listener(
                    name,
                    "commit mode `auto` needs `auto.commit.interval.ms` > 0 (got 0)",
                ));
            }
        }
        if let Some(instance) = &self.consumer.group_instance_id {
            for (group, names) in groups.iter().filter(|(_, names)| names.len() > 1) {
                let warning = ConfigWarning::new(
                    "group.instance.id",
                    format!(
                        "`{instance}` is shared by listeners `{}` in group `{group}`; static members of one group need distinct instance ids",
                        names.join("`, `")
                    ),
                );
                tracing::warn!(key = %warning.key, "{}", warning.message);
                warnings.push(warning);
            }
        }
        Ok(warnings)
    }
}

/// The dotted path (`consumer.session_timeout_ms`) of the `key = value` line
/// containing byte `offset`, when it can be told from the text: toml's
/// messages locate an error by line and column but do not name the table.
/// The text of the file at `path` and the path as errors name it.
pub(crate) fn read_file(path: &Path) -> Result<(String, String), ConfigError> {
    let shown = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => Ok((text, shown)),
        Err(source) => Err(ConfigError::Io {
            path: shown,
            source,
        }),
    }
}

/// `text` deserialized; a syntax or type error names the file and the key.
pub(crate) fn from_toml<T: serde::de::DeserializeOwned>(
    text: &str,
    path: &str,
) -> Result<T, ConfigError> {
    toml::from_str(text).map_err(|e| {
        let report = e.to_string().trim_end().to_string();
        let message = match e.span().and_then(|span| key_path(text, span.start)) {
            Some(key) => format!("key `{key}`: {report}"),
            None => report,
        };
        ConfigError::Parse {
            path: path.to_string(),
            message,
        }
    })
}

pub(crate) fn key_path(text: &str, offset: usize) -> Option<String> {
    let offset = offset.min(text.len());
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[offset..].find('\n').map_or(text.len(), |i| offset + i);
    let line = &text[line_start..line_end];
    let key = line[..line.find('=')?].trim();
    if key.is_empty() || (key.starts_with(['[', '#', '{', '"', '\'']) && !is_quoted_key(key)) {
        return None;
    }
    let table = text[..line_start]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .and_then(|header| {
            let inner = header.trim_start_matches('[');
            Some(inner[..inner.find(']')?].trim().to_string())
        });
    Some(match table {
        Some(table) if !table.is_empty() => format!("{table}.{key}"),
        _ => key.to_string(),
    })
}

fn is_quoted_key(key: &str) -> bool {
    (key.starts_with('"') && key.ends_with('"') || key.starts_with('\'') && key.ends_with('\''))
        && key.len() >= 2
}
