//! Where an instance reads its application's desired state:
//! [`ControlStore`], one of the control plane's stores, opened with the
//! instance's Kafka [`Connection`] when it is the control topic.

use std::path::PathBuf;

use switchyard_config::Connection;
use switchyard_control::compacted_topic::TopicOptions;
use switchyard_control::file_source::FileSource;
use switchyard_control::kafka_store::KafkaStore;
use switchyard_control::redis_store::RedisStore;
use switchyard_control::{ControlError, SharedStore};

use crate::error::{InstanceError, Result};

/// The desired-state store of an instance.
///
/// ```
/// use switchyard_instance::ControlStore;
/// let kafka = ControlStore::kafka("switchyard.control");
/// let redis = ControlStore::redis("redis://127.0.0.1:6379/");
/// let file = ControlStore::file("/etc/switchyard/pauses.toml");
/// assert!(kafka.needs_kafka() && !redis.needs_kafka() && !file.needs_kafka());
/// ```
#[derive(Clone)]
pub enum ControlStore {
    /// The compacted control topic, read with the instance's connection
    /// ([`KafkaStore`]). An instance never creates it: a missing control
    /// topic is [`InstanceError::MissingControlTopic`], so a mistyped name
    /// cannot start an empty control plane that no operator writes to.
    Kafka {
        /// The control topic.
        topic: String,
    },
    /// Redis at `url` ([`RedisStore`]).
    Redis {
        /// For example `redis://127.0.0.1:6379/`.
        url: String,
    },
    /// A watched file of pauses, read-only ([`FileSource`]).
    File {
        /// JSON, or TOML when it ends in `.toml`.
        path: PathBuf,
    },
    /// A store the caller opened already (shared with a deploy driver or
    /// other instances of the same process).
    Shared(SharedStore),
}

impl ControlStore {
    /// The control topic `topic`.
    pub fn kafka(topic: impl Into<String>) -> ControlStore {
        ControlStore::Kafka {
            topic: topic.into(),
        }
    }

    /// Redis at `url`.
    pub fn redis(url: impl Into<String>) -> ControlStore {
        ControlStore::Redis { url: url.into() }
    }

    /// The watched file at `path`.
    pub fn file(path: impl Into<PathBuf>) -> ControlStore {
        ControlStore::File { path: path.into() }
    }

    /// Does opening it need a Kafka connection?
    pub fn needs_kafka(&self) -> bool {
        matches!(self, ControlStore::Kafka { .. })
    }

    /// Open the store of `app` (blocking: Kafka and Redis are asked).
    pub(crate) fn open(&self, connection: Option<&Connection>, app: &str) -> Result<SharedStore> {
        Ok(match self {
            ControlStore::Kafka { topic } => {
                let connection = connection.ok_or_else(|| {
                    InstanceError::Invalid(format!(
                        "the control topic `{topic}` needs a Kafka connection"
                    ))
                })?;
                match KafkaStore::open(connection, topic, TopicOptions::no_create()) {
                    Ok(store) => store,
                    Err(ControlError::MissingTopic(topic)) => {
                        return Err(InstanceError::MissingControlTopic(topic))
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            ControlStore::Redis { url } => RedisStore::new(url)?,
            ControlStore::File { path } => FileSource::new(path, app),
            ControlStore::Shared(store) => store.clone(),
        })
    }
}

impl std::fmt::Debug for ControlStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ControlStore::Kafka { topic } => write!(f, "control topic {topic}"),
            // a Redis URL may carry a password
            ControlStore::Redis { .. } => write!(f, "redis"),
            ControlStore::File { path } => write!(f, "file {}", path.display()),
            ControlStore::Shared(s) => write!(f, "{}", s.describe()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_control_topic_without_a_connection_is_refused_by_name() {
        let e = ControlStore::kafka("ctl")
            .open(None, "a")
            .err()
            .expect("refused")
            .to_string();
        assert!(e.contains("`ctl`") && e.contains("connection"), "{e}");
    }

    #[test]
    fn a_missing_control_topic_names_it_and_the_command_that_creates_it() {
        let e = InstanceError::MissingControlTopic("orders.contrl".into()).to_string();
        assert!(
            e.contains("`orders.contrl` does not exist")
                && e.contains("never creates it")
                && e.contains("switchyard deploy init"),
            "{e}"
        );
    }

    #[test]
    fn a_redis_url_is_not_shown() {
        let s = ControlStore::redis("redis://:pw@127.0.0.1:6379/");
        assert!(!format!("{s:?}").contains("pw"));
    }
}
