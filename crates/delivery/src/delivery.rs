//! A listener's delivery from its `[listener.delivery]` table: HTTP or exec,
//! with the listener's workers, ordering, retry and failure policy set from
//! the same table.
//!
//! ```no_run
//! use switchyard_config::{DeliveryConfig, ListenerConfig, ConsumerConfig};
//! use switchyard_delivery::Delivery;
//! use switchyard_runtime::ListenerBuilder;
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let listener = ListenerConfig::new("orders").with_topics(["orders"])
//!     .with_delivery(DeliveryConfig::http("http://127.0.0.1:8000/records"));
//! let delivery = Delivery::start(listener.delivery.as_ref().unwrap())?;
//! let builder = ListenerBuilder::from_config(&listener, &ConsumerConfig::new("127.0.0.1:9092"))?;
//! let handle = delivery.attach(builder).start()?;
//! handle.shutdown().await;
//! delivery.stop().await;
//! # Ok(()) }
//! ```

use switchyard_config::{
    DeliveryConfig, DeliveryFailure, DeliveryMode, DeliveryOrdering, PayloadFormat,
};
use switchyard_runtime::{FailurePolicy, ListenerBuilder, Ordering, RetryPolicy};

use switchyard_schema::SchemaRegistry;

use crate::envelope::ValueFormat;
use crate::error::DeliveryError;
use crate::exec::{ExecDelivery, ExecOptions};
use crate::http::{HttpDelivery, HttpOptions};
use crate::schema::ValueDecoder;

/// Where a listener's records go.
#[derive(Debug, Clone)]
pub enum Sink {
    /// Over HTTP.
    Http(HttpDelivery),
    /// To a child process.
    Exec(ExecDelivery),
}

/// A started delivery with the listener settings of its table.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Where the records go.
    pub sink: Sink,
    config: DeliveryConfig,
    value: ValueDecoder,
}

impl Delivery {
    /// Build the HTTP client or start the child process of `config`
    /// (within a tokio runtime).
    ///
    /// # Errors
    ///
    /// [`DeliveryError::Config`] for a bad URL or an empty command,
    /// [`DeliveryError::Spawn`] when the child cannot be started.
    pub fn start(config: &DeliveryConfig) -> Result<Delivery, DeliveryError> {
        Delivery::start_with_registry(config, None)
    }

    /// [`Delivery::start`] for a table whose `value` may be `avro`,
    /// `protobuf` or `json-schema`: those are decoded to JSON with schemas
    /// from `registry` (see [`crate::schema`]).
    ///
    /// # Errors
    ///
    /// Those of [`Delivery::start`], and [`DeliveryError::Config`] for a
    /// schema format without a registry.
    pub fn start_with_registry(
        config: &DeliveryConfig,
        registry: Option<&SchemaRegistry>,
    ) -> Result<Delivery, DeliveryError> {
        let value = ValueDecoder::new(config.value, registry)?;
        let sink = match config.mode {
            DeliveryMode::Http => {
                let url = config.url.clone().ok_or(DeliveryError::Config {
                    key: "url",
                    reason: "required with mode = \"http\"".into(),
                })?;
                Sink::Http(HttpDelivery::new(
                    HttpOptions::new(url)
                        .batch(config.batch)
                        .timeout(config.timeout())
                        .connections(config.workers),
                )?)
            }
            DeliveryMode::Exec => Sink::Exec(ExecDelivery::start(
                ExecOptions::new(config.command.clone()).timeout(config.timeout()),
            )?),
        };
        Ok(Delivery {
            sink,
            config: config.clone(),
            value,
        })
    }

    /// `builder` with this delivery as its handler, and the table's
    /// workers, ordering, retry policy and failure policy.
    pub fn attach(&self, builder: ListenerBuilder) -> ListenerBuilder {
        let c = &self.config;
        let builder = builder
            .workers(c.workers)
            .ordering(ordering(c.ordering))
            .retry(RetryPolicy {
                max_attempts: c.attempts.max(1),
                initial_backoff: c.backoff,
                max_backoff: c.max_backoff,
            })
            .on_failure(failure(c.on_failure));
        let format = self.value.clone();
        match &self.sink {
            Sink::Http(h) => h.clone().attach(builder, format),
            Sink::Exec(e) => e.clone().attach(builder, format),
        }
    }

    /// Stop the child process (exec); nothing to do for HTTP. Call it after
    /// the listener has shut down.
    pub async fn stop(&self) {
        if let Sink::Exec(e) = &self.sink {
            e.stop().await;
        }
    }
}

/// The runtime's ordering mode for the table's `ordering`.
pub fn ordering(o: DeliveryOrdering) -> Ordering {
    match o {
        DeliveryOrdering::Partition => Ordering::Partition,
        DeliveryOrdering::Key => Ordering::Key,
        DeliveryOrdering::Unordered => Ordering::Unordered,
    }
}

/// The runtime's failure policy for the table's `on_failure`.
pub fn failure(f: DeliveryFailure) -> FailurePolicy {
    match f {
        DeliveryFailure::DeadLetter => FailurePolicy::DeadLetter,
        DeliveryFailure::Skip => FailurePolicy::Skip,
        DeliveryFailure::Stop => FailurePolicy::StopPartition,
    }
}

/// The envelope's value format for the table's `value`; `None` for the
/// formats read through a Schema Registry (see [`ValueDecoder::new`]).
pub fn value_format(p: PayloadFormat) -> Option<ValueFormat> {
    match p {
        PayloadFormat::Auto => Some(ValueFormat::Auto),
        PayloadFormat::Json => Some(ValueFormat::Json),
        PayloadFormat::Text => Some(ValueFormat::Text),
        PayloadFormat::Base64 => Some(ValueFormat::Base64),
        PayloadFormat::Avro | PayloadFormat::Protobuf | PayloadFormat::JsonSchema => None,
    }
}
