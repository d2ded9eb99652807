//! # switchyard-schema
//!
//! Deserializers for records written with a Schema Registry in the Confluent
//! wire format (magic byte `0`, the schema id as 4 bytes big endian, for
//! Protobuf the message indexes, then the payload), for Switchyard
//! listeners: they implement the runtime's
//! [`Deserializer`](switchyard_runtime::deserializer::Deserializer) trait.
//!
//! | format | deserializers |
//! |---|---|
//! | Avro (`apache-avro`) | [`Avro<T>`](avro::Avro) (serde, optional reader schema), [`AvroJson`](avro::AvroJson) |
//! | Protobuf (`prost-reflect`, `protox`) | [`ProtobufJson`](protobuf::ProtobufJson), [`ProtobufSerde<T>`](protobuf::ProtobufSerde), [`Protobuf<M>`](protobuf::Protobuf) (prost) |
//! | JSON Schema (`jsonschema`) | [`JsonSchema<T>`](json_schema::JsonSchema), [`JsonSchemaValue`](json_schema::JsonSchemaValue) |
//!
//! All of them share one [`SchemaRegistry`] client: schemas by id, cached
//! in a bounded cache, several URLs tried in order, basic or bearer
//! credentials, TLS (rustls), retried with backoff while no registry answers
//! (see [`registry`] for how a fetch waits without blocking the poll
//! thread).
//!
//! A record that cannot be decoded is a decode error with a reason that
//! starts with its [`FailureKind`] code (`wrong_magic_byte`,
//! `unknown_schema_id`, `registry_unavailable`, `schema_mismatch`, ...): the
//! runtime sends it to the dead-letter topic with that reason in the
//! `switchyard.dlt.error` header, or skips it, by the listener's decode-error
//! policy, and counts it; [`SchemaRegistry::metrics`] counts it by kind.
//!
//! ```no_run
//! use switchyard_runtime::{deserializer::Utf8, record::Record, Listener};
//! use switchyard_schema::{avro::Avro, Credentials, RegistryConfig, SchemaRegistry};
//!
//! #[derive(serde::Deserialize)]
//! struct Order { id: i64, item: String }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let registry = SchemaRegistry::new(
//!     RegistryConfig::new(["https://registry-a:8081", "https://registry-b:8081"])
//!         .with_credentials(Credentials::basic("key", "secret")),
//! )?;
//! let listener = Listener::builder("orders")
//!     .topics(["orders"])
//!     .handler(Utf8, Avro::<Order>::new(&registry), |r: Record<String, Order>| async move {
//!         println!("order {} {}", r.value.id, r.value.item);
//!         Ok(())
//!     });
//! # Ok(())
//! # }
//! ```

pub mod avro;
mod compiled;
pub mod error;
pub mod json_schema;
pub mod protobuf;
pub mod registry;
pub mod wire;

pub use error::{FailureKind, SchemaError};
pub use registry::{
    ConfigError, Credentials, MetricsSnapshot, RegisteredSchema, RegistryConfig, RetryBudget,
    SchemaRegistry, SchemaType, Secret, TlsConfig,
};

/// The format crates, for their types (`apache_avro::Schema`,
/// `prost_reflect::DynamicMessage`, ...).
pub use {apache_avro, prost, prost_reflect};
