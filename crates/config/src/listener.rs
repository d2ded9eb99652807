//! Per-listener settings: what a listener consumes and how the runtime
//! commits, handles undecodable records and shuts it down.
//!
//! A listener reads either a list of `topics`, a regex `pattern` or a fixed
//! `assign`ment of partitions (exactly one of the three), optionally in its
//! own consumer group.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::consumer::ConsumerConfig;
use crate::delivery::DeliveryConfig;
use crate::error::ConfigError;
use crate::policy::{CommitPolicy, DecodeErrorPolicy};

/// Default [`ListenerConfig::shutdown_timeout_ms`].
pub const DEFAULT_SHUTDOWN_TIMEOUT_MS: u64 = 10_000;

fn default_true() -> bool {
    true
}

fn default_shutdown_timeout_ms() -> u64 {
    DEFAULT_SHUTDOWN_TIMEOUT_MS
}

/// One topic of a standalone assignment. Empty `partitions` means all
/// partitions of the topic.
///
/// ```
/// use switchyard_config::TopicPartitions;
///
/// let tp = TopicPartitions::new("orders", [0, 1]);
/// assert_eq!(tp.partitions, vec![0, 1]);
/// assert!(TopicPartitions::all("orders").partitions.is_empty());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicPartitions {
    /// Topic name.
    pub topic: String,
    /// Partitions to read; empty for all of them.
    #[serde(default)]
    pub partitions: Vec<i32>,
}

impl TopicPartitions {
    /// Selected partitions of a topic.
    ///
    /// ```
    /// # use switchyard_config::TopicPartitions;
    /// assert_eq!(TopicPartitions::new("t", [3]).topic, "t");
    /// ```
    pub fn new(topic: impl Into<String>, partitions: impl IntoIterator<Item = i32>) -> Self {
        TopicPartitions {
            topic: topic.into(),
            partitions: partitions.into_iter().collect(),
        }
    }

    /// All partitions of a topic.
    ///
    /// ```
    /// # use switchyard_config::TopicPartitions;
    /// assert!(TopicPartitions::all("t").partitions.is_empty());
    /// ```
    pub fn all(topic: impl Into<String>) -> Self {
        Self::new(topic, [])
    }
}

/// Where a listener's records come from; see [`ListenerConfig::source`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenerSource<'a> {
    /// Subscribe to these topics (group-managed).
    Topics(&'a [String]),
    /// Subscribe to topics matching this regex (group-managed).
    Pattern(&'a str),
    /// Read these partitions without group management.
    Assign(&'a [TopicPartitions]),
}

/// Settings of one listener (`[[listener]]` in TOML).
///
/// ```
/// use switchyard_config::{CommitPolicy, ListenerConfig, ListenerSource};
///
/// let listener = ListenerConfig::new("orders")
///     .with_topics(["orders"])
///     .with_commit(CommitPolicy::SyncPerBatch);
/// listener.validate().unwrap();
/// assert!(matches!(listener.source(), Some(ListenerSource::Topics(_))));
/// assert_eq!(listener.shutdown_timeout_ms, 10_000);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerConfig {
    /// Unique, non-blank name used in logs, metrics and errors.
    pub name: String,
    /// Topics to subscribe to.
    #[serde(default)]
    pub topics: Vec<String>,
    /// Regex of topics to subscribe to (compiled by the runtime; see
    /// [`ListenerConfig::librdkafka_pattern`]).
    #[serde(default)]
    pub pattern: Option<String>,
    /// Standalone assignment: `[{ topic = "t", partitions = [0, 1] }]`.
    #[serde(default)]
    pub assign: Vec<TopicPartitions>,
    /// Overrides `consumer.group_id` for this listener.
    #[serde(default)]
    pub group_id: Option<String>,
    /// How offsets are committed.
    #[serde(default)]
    pub commit: CommitPolicy,
    /// What to do with undecodable records.
    #[serde(default)]
    pub on_decode_error: DecodeErrorPolicy,
    /// Dead-letter topic; when unset the runtime uses `<topic>.DLT`.
    #[serde(default)]
    pub dead_letter_topic: Option<String>,
    /// Create a missing dead-letter topic (default true); false where
    /// topics are created ahead: a record for a missing one then fails
    /// its dead-lettering, naming the topic.
    #[serde(default = "default_true")]
    pub create_dead_letter_topic: bool,
    /// How long shutdown waits for in-flight records, default 10000.
    #[serde(default = "default_shutdown_timeout_ms")]
    pub shutdown_timeout_ms: u64,
    /// Bound of the records waiting for a worker or in flight (default
    /// 10,000): at it the listener stops taking records of the partitions
    /// that feed it, and goes on below half.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_buffered_records: Option<usize>,
    /// Bound of the bytes of the records waiting for a worker (default
    /// 64 MiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_buffered_bytes: Option<usize>,
    /// How `switchyard run` hands the records to the application
    /// (`[listener.delivery]`); a library user attaches a handler instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<DeliveryConfig>,
}

impl ListenerConfig {
    /// A listener with defaults and no source yet (add one with
    /// [`with_topics`](Self::with_topics), [`with_pattern`](Self::with_pattern)
    /// or [`with_assign`](Self::with_assign)).
    ///
    /// ```
    /// # use switchyard_config::ListenerConfig;
    /// let l = ListenerConfig::new("audit");
    /// assert!(l.validate().is_err()); // no source
    /// ```
    pub fn new(name: impl Into<String>) -> Self {
        ListenerConfig {
            name: name.into(),
            topics: Vec::new(),
            pattern: None,
            assign: Vec::new(),
            group_id: None,
            commit: CommitPolicy::default(),
            on_decode_error: DecodeErrorPolicy::default(),
            dead_letter_topic: None,
            create_dead_letter_topic: true,
            shutdown_timeout_ms: DEFAULT_SHUTDOWN_TIMEOUT_MS,
            max_buffered_records: None,
            max_buffered_bytes: None,
            delivery: None,
        }
    }

    /// Sets `topics`.
    ///
    /// ```
    /// # use switchyard_config::ListenerConfig;
    /// let l = ListenerConfig::new("l").with_topics(["a", "b"]);
    /// assert_eq!(l.topics, ["a", "b"]);
    /// ```
    pub fn with_topics<S: Into<String>>(mut self, topics: impl IntoIterator<Item = S>) -> Self {
        self.topics = topics.into_iter().map(Into::into).collect();
        self
    }

    /// Sets `pattern`.
    ///
    /// ```
    /// # use switchyard_config::ListenerConfig;
    /// let l = ListenerConfig::new("l").with_pattern("^orders-.*");
    /// assert_eq!(l.pattern.as_deref(), Some("^orders-.*"));
    /// ```
    pub fn with_pattern(mut self, pattern: impl Into<String>) -> Self {
        self.pattern = Some(pattern.into());
        self
    }

    /// Sets `assign`.
    ///
    /// ```
    /// # use switchyard_config::{ListenerConfig, TopicPartitions};
    /// let l = ListenerConfig::new("l").with_assign([TopicPartitions::new("t", [0])]);
    /// assert_eq!(l.assign.len(), 1);
    /// ```
    pub fn with_assign(mut self, assign: impl IntoIterator<Item = TopicPartitions>) -> Self {
        self.assign = assign.into_iter().collect();
        self
    }

    /// Sets `group_id`.
    ///
    /// ```
    /// # use switchyard_config::ListenerConfig;
    /// let l = ListenerConfig::new("l").with_group("audit-group");
    /// assert_eq!(l.group_id.as_deref(), Some("audit-group"));
    /// ```
    pub fn with_group(mut self, group_id: impl Into<String>) -> Self {
        self.group_id = Some(group_id.into());
        self
    }

    /// Sets `commit`.
    ///
    /// ```
    /// # use switchyard_config::{CommitPolicy, ListenerConfig};
    /// let l = ListenerConfig::new("l").with_commit(CommitPolicy::Auto);
    /// assert_eq!(l.commit, CommitPolicy::Auto);
    /// ```
    pub fn with_commit(mut self, commit: CommitPolicy) -> Self {
        self.commit = commit;
        self
    }

    /// Sets `on_decode_error`.
    ///
    /// ```
    /// # use switchyard_config::{DecodeErrorPolicy, ListenerConfig};
    /// let l = ListenerConfig::new("l").with_decode_error_policy(DecodeErrorPolicy::Skip);
    /// assert_eq!(l.on_decode_error, DecodeErrorPolicy::Skip);
    /// ```
    pub fn with_decode_error_policy(mut self, policy: DecodeErrorPolicy) -> Self {
        self.on_decode_error = policy;
        self
    }

    /// Sets `dead_letter_topic`.
    ///
    /// ```
    /// # use switchyard_config::ListenerConfig;
    /// let l = ListenerConfig::new("l").with_dead_letter_topic("orders.bad");
    /// assert_eq!(l.dead_letter_topic_for("orders"), "orders.bad");
    /// ```
    pub fn with_dead_letter_topic(mut self, topic: impl Into<String>) -> Self {
        self.dead_letter_topic = Some(topic.into());
        self
    }

    /// Sets `delivery`.
    ///
    /// ```
    /// # use switchyard_config::{DeliveryConfig, ListenerConfig};
    /// let l = ListenerConfig::new("l").with_topics(["t"]).with_delivery(DeliveryConfig::http("http://app/in"));
    /// assert!(l.validate().is_ok());
    /// ```
    pub fn with_delivery(mut self, delivery: DeliveryConfig) -> Self {
        self.delivery = Some(delivery);
        self
    }

    /// Sets `shutdown_timeout_ms`.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use switchyard_config::ListenerConfig;
    /// let l = ListenerConfig::new("l").with_shutdown_timeout_ms(2_000);
    /// assert_eq!(l.shutdown_timeout(), Duration::from_secs(2));
    /// ```
    pub fn with_shutdown_timeout_ms(mut self, ms: u64) -> Self {
        self.shutdown_timeout_ms = ms;
        self
    }

    /// The configured source, or `None` unless exactly one of `topics`,
    /// `pattern` and `assign` is given.
    ///
    /// ```
    /// # use switchyard_config::{ListenerConfig, ListenerSource};
    /// let l = ListenerConfig::new("l").with_pattern("^a.*");
    /// assert_eq!(l.source(), Some(ListenerSource::Pattern("^a.*")));
    /// assert_eq!(l.with_topics(["a"]).source(), None);
    /// ```
    pub fn source(&self) -> Option<ListenerSource<'_>> {
        match (
            self.topics.is_empty(),
            &self.pattern,
            self.assign.is_empty(),
        ) {
            (false, None, true) => Some(ListenerSource::Topics(&self.topics)),
            (true, Some(pattern), true) => Some(ListenerSource::Pattern(pattern)),
            (true, None, false) => Some(ListenerSource::Assign(&self.assign)),
            _ => None,
        }
    }

    /// The pattern as librdkafka expects it in a subscription: librdkafka
    /// treats a topic as a regex only when it starts with `^`, so one is
    /// added if missing.
    ///
    /// ```
    /// # use switchyard_config::ListenerConfig;
    /// let l = ListenerConfig::new("l").with_pattern("orders-.*");
    /// assert_eq!(l.librdkafka_pattern().as_deref(), Some("^orders-.*"));
    /// ```
    pub fn librdkafka_pattern(&self) -> Option<String> {
        self.pattern.as_deref().map(|p| {
            let p = p.trim();
            if p.starts_with('^') {
                p.to_string()
            } else {
                format!("^{p}")
            }
        })
    }

    /// The dead-letter topic for records from `source_topic`: the configured
    /// one, or `<source_topic>.DLT`.
    ///
    /// ```
    /// # use switchyard_config::ListenerConfig;
    /// assert_eq!(ListenerConfig::new("l").dead_letter_topic_for("orders"), "orders.DLT");
    /// ```
    pub fn dead_letter_topic_for(&self, source_topic: &str) -> String {
        self.dead_letter_topic
            .clone()
            .unwrap_or_else(|| format!("{source_topic}.DLT"))
    }

    /// `shutdown_timeout_ms` as a [`Duration`].
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use switchyard_config::ListenerConfig;
    /// assert_eq!(ListenerConfig::new("l").shutdown_timeout(), Duration::from_secs(10));
    /// ```
    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_millis(self.shutdown_timeout_ms)
    }

    /// The consumer configuration this listener runs with: `base` with the
    /// listener's `group_id` override applied and `enable.auto.commit`
    /// decided by the commit policy (on only for [`CommitPolicy::Auto`]).
    ///
    /// ```
    /// use switchyard_config::{CommitPolicy, ConsumerConfig, ListenerConfig};
    ///
    /// let base = ConsumerConfig::new("kafka:9092").with_group("default");
    /// let listener = ListenerConfig::new("audit")
    ///     .with_topics(["audit"])
    ///     .with_group("audit")
    ///     .with_commit(CommitPolicy::Auto);
    /// let effective = listener.effective_consumer(&base);
    /// assert_eq!(effective.group_id.as_deref(), Some("audit"));
    /// assert!(effective.enable_auto_commit);
    /// ```
    pub fn effective_consumer(&self, base: &ConsumerConfig) -> ConsumerConfig {
        let mut config = base.clone();
        if let Some(group) = &self.group_id {
            config.group_id = Some(group.clone());
        }
        config.enable_auto_commit = self.commit.uses_auto_commit();
        config
    }

    /// Checks the listener on its own: non-blank name, exactly one of
    /// `topics` / `pattern` / `assign`, non-blank and unique topic names,
    /// non-negative unique partitions, non-blank `group_id` and
    /// `dead_letter_topic`, and `every-n` with `records` >= 1. Errors are
    /// [`ConfigError::Listener`] naming the listener.
    ///
    /// ```
    /// use switchyard_config::ListenerConfig;
    ///
    /// let err = ListenerConfig::new("orders")
    ///     .with_topics(["orders"])
    ///     .with_pattern("^orders.*")
    ///     .validate()
    ///     .unwrap_err();
    /// assert!(err.to_string().starts_with("listener `orders`:"));
    /// ```
    pub fn validate(&self) -> Result<(), ConfigError> {
        let fail = |reason: String| Err(ConfigError::listener(&self.name, reason));
        if self.name.trim().is_empty() {
            return fail("`name` must not be blank".into());
        }
        let given: Vec<&str> = [
            (!self.topics.is_empty(), "`topics`"),
            (self.pattern.is_some(), "`pattern`"),
            (!self.assign.is_empty(), "`assign`"),
        ]
        .into_iter()
        .filter_map(|(set, name)| set.then_some(name))
        .collect();
        match given.len() {
            0 => return fail("one of `topics`, `pattern` or `assign` is required".into()),
            1 => {}
            _ => {
                return fail(format!(
                "{} are mutually exclusive: give exactly one of `topics`, `pattern` or `assign`",
                given.join(" and ")
            ))
            }
        }
        for (i, topic) in self.topics.iter().enumerate() {
            if topic.trim().is_empty() {
                return fail(format!("`topics` entry {i} is blank"));
            }
            if topic.starts_with('^') {
                return fail(format!(
                    "topic `{topic}` would be read as a regex by librdkafka; use `pattern` instead"
                ));
            }
            if self.topics[..i].contains(topic) {
                return fail(format!("topic `{topic}` is listed twice in `topics`"));
            }
        }
        if let Some(pattern) = &self.pattern {
            if pattern.trim().trim_start_matches('^').is_empty() {
                return fail(format!("`pattern` = `{pattern}` is empty"));
            }
        }
        for (i, tp) in self.assign.iter().enumerate() {
            if tp.topic.trim().is_empty() {
                return fail(format!("`assign` entry {i} has a blank topic"));
            }
            if self.assign[..i].iter().any(|prev| prev.topic == tp.topic) {
                return fail(format!("topic `{}` appears twice in `assign`", tp.topic));
            }
            for (j, &p) in tp.partitions.iter().enumerate() {
                if p < 0 {
                    return fail(format!(
                        "`assign` topic `{}`: partition {p} is negative",
                        tp.topic
                    ));
                }
                if tp.partitions[..j].contains(&p) {
                    return fail(format!(
                        "`assign` topic `{}`: partition {p} is listed twice",
                        tp.topic
                    ));
                }
            }
        }
        if let Some(group) = self.group_id.as_deref().filter(|g| g.trim().is_empty()) {
            return fail(format!(
                "`group_id` = `{group}` is blank; leave it unset to use `consumer.group_id`"
            ));
        }
        if let Some(dlt) = self
            .dead_letter_topic
            .as_deref()
            .filter(|t| t.trim().is_empty())
        {
            return fail(format!(
                "`dead_letter_topic` = `{dlt}` is blank; leave it unset for `<topic>.DLT`"
            ));
        }
        for (key, bound) in [
            ("max_buffered_records", self.max_buffered_records),
            ("max_buffered_bytes", self.max_buffered_bytes),
        ] {
            if bound == Some(0) {
                return fail(format!("`{key}` must be at least 1 (got 0)"));
            }
        }
        if let CommitPolicy::EveryN { records: 0 } = self.commit {
            return fail("`commit` mode `every-n` needs `records` >= 1 (got 0)".into());
        }
        if let Some(delivery) = &self.delivery {
            delivery.validate(&self.name)?;
        }
        Ok(())
    }
}
