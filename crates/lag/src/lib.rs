//! # switchyard-lag
//!
//! Consumer lag you can trust, measured from outside: no consumer of the
//! group needs to run, nothing joins the group.
//!
//! Lag is, per partition, the log end offset minus the group's committed
//! offset (`LOG-END-OFFSET - CURRENT-OFFSET`), the same figure
//! `kafka-consumer-groups --describe` prints and Burrow evaluates. This crate
//! reads it for many groups at once and judges it over time:
//!
//! | module | concept |
//! |---|---|
//! | [`offsets`] | one reading of log start, log end, committed offset and owner of every partition of some groups |
//! | [`time_lag`] | how old the record at the committed offset is (read, or estimated from sampled log ends) |
//! | [`assignment`] | decoding which partitions a member holds |
//! | [`intents`] | partitions known paused or draining from outside |
//! | [`health`] | the pure evaluator: a [`health::Window`] of samples of one partition gives a [`health::Health`] (Burrow's rules) |
//! | [`sampler`] | repeated readings feeding the windows: one [`report::Report`] per sample |
//! | [`report`] | totals per topic and group; the aligned table and the JSON |
//! | [`exporter`] | the Prometheus text format of a report |
//! | [`serve`] | `switchyard lag serve`: the sampling loop and the HTTP server (`/metrics`, `/healthz`) |
//!
//! ```no_run
//! use switchyard_lag::sampler::{Sampler, SamplerConfig};
//!
//! let mut sampler = Sampler::new(SamplerConfig::new("127.0.0.1:9092", ["orders-service"]))?;
//! let report = sampler.sample()?;
//! print!("{}", report.table());
//! # Ok::<(), switchyard_lag::LagError>(())
//! ```

use rdkafka::error::KafkaError;

pub mod assignment;
pub mod exporter;
pub mod health;
pub mod intents;
pub mod offsets;
pub mod report;
pub mod sampler;
pub mod serve;
pub mod time_lag;

pub use health::{Health, Intents, Sample, Status, Target, Window, WindowConfig};
pub use offsets::{GroupOffsets, OffsetReader, Owner, PartitionOffsets};
pub use report::{GroupReport, PartitionReport, Report, TopicReport};
pub use sampler::{GroupSelection, Sampler, SamplerConfig};
pub use serve::{ServeConfig, Server};
pub use time_lag::TimeLagMode;

/// Everything that can go wrong while measuring lag.
#[derive(Debug, thiserror::Error)]
pub enum LagError {
    /// A Kafka request or client creation failed.
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    /// A request about one group failed.
    #[error("group `{group}`: {source}")]
    Group {
        /// Group id.
        group: String,
        /// The failure.
        source: KafkaError,
    },
    /// A group could not be described.
    #[error("{0}")]
    Describe(#[from] switchyard_admin::group::GroupError),
    /// A member's assignment could not be decoded (not the consumer protocol).
    #[error("assignment bytes: {0}")]
    Assignment(String),
    /// A paused/draining target did not parse.
    #[error("`{0}`: expected GROUP:TOPIC:PARTITION or GROUP:TOPIC:*")]
    Target(String),
    /// A time-lag mode did not parse.
    #[error("`{0}`: expected read, estimate or off")]
    TimeLagMode(String),
    /// Neither groups nor `--all` were given.
    #[error("no group given: name groups or select all")]
    NoGroups,
    /// The HTTP listener could not be bound or served.
    #[error("listen on {addr}: {source}")]
    Listen {
        /// Address.
        addr: String,
        /// The failure.
        source: std::io::Error,
    },
}

pub use switchyard_config::now_ms;
