//! Typed, validated configuration for Switchyard Kafka consumers.
//!
//! - [`Connection`]: the client properties every client of one cluster
//!   shares (bootstrap servers, TLS, SASL), from TOML, `-X`, a
//!   `--command-config` file or the environment;
//! - [`ConsumerConfig`]: the consumer settings, with Java's names and
//!   defaults, mapped onto librdkafka by [`ConsumerConfig::to_client_config`]
//!   and buildable from Kafka dotted properties with
//!   [`ConsumerConfig::from_properties`];
//! - [`ListenerConfig`]: what one listener consumes and its commit,
//!   decode-error and shutdown policies;
//! - [`AppConfig`]: the TOML file holding both;
//! - [`RunConfig`]: the file of `switchyard run` (`[kafka]`, `[instance]`,
//!   `[consumer]`, listeners with their [`DeliveryConfig`], the
//!   [`SchemaRegistryConfig`]);
//! - [`ConfigError`] / [`ConfigWarning`]: what validation reports, always
//!   naming the key in its Kafka dotted spelling;
//! - [`PrometheusText`] ([`prometheus`]): the writer of the Prometheus text
//!   format every `/metrics` body of the workspace goes through.
//!
//! ```
//! use switchyard_config::AppConfig;
//!
//! let app = AppConfig::from_toml_str(r#"
//!     [consumer]
//!     bootstrap_servers = "127.0.0.1:9092"
//!     group_id = "orders"
//!     session_timeout_ms = 6000
//!     heartbeat_interval_ms = 1000
//!     partition_assignment_strategy = "cooperative-sticky"
//!     [consumer.librdkafka]
//!     "statistics.interval.ms" = "1000"
//!     [[listener]]
//!     name = "orders"
//!     topics = ["orders"]
//!     commit = { mode = "every-n", records = 100 }
//! "#)?;
//! let client = app.consumer.to_client_config()?;
//! assert_eq!(client.get("session.timeout.ms"), Some("6000"));
//! # Ok::<(), switchyard_config::ConfigError>(())
//! ```

#![warn(missing_docs)]

mod assignment;
mod clock;
mod connection;
mod consumer;
mod delivery;
pub mod duration;
mod error;
mod file;
mod group_protocol;
mod keys;
mod listener;
mod offset_reset;
mod policy;
pub mod prometheus;
mod properties;
mod run;
mod schema_registry;
mod secret;
mod validate;

#[cfg(test)]
mod tests;

pub use assignment::AssignmentStrategy;
pub use clock::{now_ms, Tp};
pub use connection::{Connection, DEFAULT_BOOTSTRAP_SERVERS, ENV_PREFIX};
pub use consumer::ConsumerConfig;
pub use delivery::{
    DeliveryConfig, DeliveryFailure, DeliveryMode, DeliveryOrdering, PayloadFormat,
    DEFAULT_EXEC_TIMEOUT, DEFAULT_HTTP_TIMEOUT,
};
pub use error::{ConfigError, ConfigWarning};
pub use file::AppConfig;
pub use group_protocol::GroupProtocol;
pub use listener::{ListenerConfig, ListenerSource, TopicPartitions, DEFAULT_SHUTDOWN_TIMEOUT_MS};
pub use offset_reset::OffsetReset;
pub use policy::{CommitPolicy, DecodeErrorPolicy};
pub use prometheus::{escape_label_value, MetricKind, PrometheusText, SampleValue};
pub use run::{
    ControlStoreConfig, InstanceConfig, RunConfig, DEFAULT_INSTANCE_ID_ENV,
    DEFAULT_RUN_SHUTDOWN_TIMEOUT,
};
pub use schema_registry::{
    SchemaRegistryConfig, DEFAULT_REGISTRY_CACHE_CAPACITY, DEFAULT_REGISTRY_REQUEST_TIMEOUT,
};
pub use secret::{is_secret, redact_url};
