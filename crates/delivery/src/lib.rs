//! # switchyard-delivery
//!
//! Delivery of Kafka records to an application outside the process, in
//! any language: the handlers `switchyard run` gives its listeners.
//!
//! - [`envelope`]: the JSON a record travels in;
//! - [`http`]: POST to a URL, per record or in batches; 2xx = processed;
//! - [`exec`]: a child process, one envelope per line on its stdin, one
//!   [`ack`] per line on its stdout;
//! - [`delivery`]: either of them from a listener's `[listener.delivery]`
//!   table ([`switchyard_config::DeliveryConfig`]), attached to a
//!   [`ListenerBuilder`](switchyard_runtime::ListenerBuilder) with its
//!   workers, ordering, retries and failure policy;
//! - [`schema`]: records written with a Schema Registry (Avro, Protobuf,
//!   JSON Schema in the Confluent wire format) decoded to JSON for the
//!   envelope;
//! - [`error`]: what can go wrong, as typed errors.
//!
//! Every failure (a non-2xx status, a refused or unacknowledged record, a
//! dead child) is a handler error: the listener retries with backoff and
//! then dead-letters, skips or stops the partition, and commits a record
//! only once the application took it. See docs/run.md in the repository.

pub mod ack;
pub mod delivery;
pub mod envelope;
pub mod error;
pub mod exec;
pub mod http;
pub mod schema;

pub use delivery::Delivery;
pub use envelope::{Envelope, ValueFormat};
pub use error::DeliveryError;
