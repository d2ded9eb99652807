//! Avro records in the Confluent wire format, decoded with the writer's schema
//! from the registry (`apache-avro`): to a typed value through serde
//! ([`Avro`]) or to a JSON value ([`AvroJson`]).
//!
//! With a reader schema ([`Avro::with_reader_schema`]) records are resolved
//! from the writer's schema to the reader's by Avro's rules, so a consumer
//! built against an older (or newer) version of the schema reads every
//! version: a field the writer added is dropped, a field the writer lacks
//! takes the reader's default. Without one, the record is deserialized
//! straight from the writer's schema into `T` (serde ignores fields `T` does
//! not have; a field `T` has and the writer lacks needs `#[serde(default)]`).
//!
//! A record decoded with bytes left over counts as a schema mismatch: it was
//! not written with the schema its id names.

use std::marker::PhantomData;
use std::sync::Arc;

use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::schema::ResolvedSchema;
use apache_avro::types::Value;
use apache_avro::Schema;
use switchyard_runtime::deserializer::{DecodeError, Deserializer};

use crate::compiled::Compiled;
use crate::error::{FailureKind, SchemaError};
use crate::registry::{RegisteredSchema, SchemaRegistry, SchemaType};
use crate::wire;

/// A reader schema and the named schemas it references.
pub struct ReaderSchema {
    schema: Schema,
    references: Vec<Schema>,
}

impl ReaderSchema {
    /// Parse a reader schema (JSON), with the schemas its named types refer
    /// to, dependencies first.
    pub fn parse(schema: &str, references: &[&str]) -> Result<ReaderSchema, SchemaError> {
        let invalid = |e: apache_avro::Error| {
            SchemaError::new(FailureKind::InvalidSchema, format!("reader schema: {e}"))
        };
        let (schema, references) = if references.is_empty() {
            (Schema::parse_str(schema).map_err(invalid)?, Vec::new())
        } else {
            Schema::parse_str_with_list(schema, references).map_err(invalid)?
        };
        Ok(ReaderSchema { schema, references })
    }
}

/// A writer schema from the registry, parsed, with the reader to use on it.
struct Owner {
    writer: Schema,
    writer_refs: Vec<Schema>,
    reader: Option<Arc<ReaderSchema>>,
}

type DatumReader<'a> = GenericDatumReader<'a>;

self_cell::self_cell!(
    struct CompiledAvro {
        owner: Owner,
        #[covariant]
        dependent: DatumReader,
    }
);

fn compile(
    raw: &RegisteredSchema,
    reader: Option<Arc<ReaderSchema>>,
) -> Result<CompiledAvro, SchemaError> {
    let invalid =
        |e: apache_avro::Error| SchemaError::new(FailureKind::InvalidSchema, e.to_string());
    let refs = raw.references_flat();
    let (writer, writer_refs) = if refs.is_empty() {
        (Schema::parse_str(&raw.schema).map_err(invalid)?, Vec::new())
    } else {
        Schema::parse_str_with_list(&raw.schema, refs.iter().map(|(_, r)| r.schema.as_str()))
            .map_err(invalid)?
    };
    let owner = Owner {
        writer,
        writer_refs,
        reader,
    };
    CompiledAvro::try_new(owner, |o| {
        let mut writers: Vec<&Schema> = o.writer_refs.iter().collect();
        writers.push(&o.writer);
        let resolved = ResolvedSchema::new_with_schemata(writers)?;
        let builder = GenericDatumReader::builder(&o.writer).resolved_writer_schemata(resolved);
        match &o.reader {
            None => builder.build(),
            Some(r) => {
                let mut readers: Vec<&Schema> = r.references.iter().collect();
                readers.push(&r.schema);
                let resolved = ResolvedSchema::new_with_schemata(readers)?;
                builder
                    .reader_schema(&r.schema)
                    .resolved_reader_schemata(resolved)
                    .build()
            }
        }
    })
    .map_err(invalid)
}

struct Core {
    compiled: Compiled<CompiledAvro>,
    reader: Option<Arc<ReaderSchema>>,
}

impl Core {
    fn new(registry: SchemaRegistry) -> Self {
        Core {
            compiled: Compiled::new(registry),
            reader: None,
        }
    }

    /// Decode the framed `data` with `read`, checking that nothing is left.
    fn decode<T>(
        &self,
        data: Option<&[u8]>,
        read: impl FnOnce(&CompiledAvro, &mut &[u8]) -> Result<T, SchemaError>,
    ) -> Result<T, SchemaError> {
        self.compiled
            .decode(data, || self.decode_uncounted(data, read))
    }

    fn decode_uncounted<T>(
        &self,
        data: Option<&[u8]>,
        read: impl FnOnce(&CompiledAvro, &mut &[u8]) -> Result<T, SchemaError>,
    ) -> Result<T, SchemaError> {
        let data =
            data.ok_or_else(|| SchemaError::new(FailureKind::NullPayload, "null payload"))?;
        let (id, mut payload) = wire::split(data)?;
        let compiled = self.compiled.get(id, SchemaType::Avro, |raw| {
            compile(raw, self.reader.clone())
        })?;
        let value = read(&compiled, &mut payload).map_err(|mut e| {
            e.detail = format!("schema id {id}: {}", e.detail);
            e
        })?;
        if !payload.is_empty() {
            return Err(SchemaError::new(
                FailureKind::SchemaMismatch,
                format!(
                    "schema id {id}: {} bytes left after the record: not written with this schema",
                    payload.len()
                ),
            ));
        }
        Ok(value)
    }
}

fn mismatch(e: impl std::fmt::Display) -> SchemaError {
    SchemaError::new(FailureKind::SchemaMismatch, e.to_string())
}

/// Avro to `T` through serde.
///
/// ```no_run
/// use switchyard_schema::{avro::Avro, RegistryConfig, SchemaRegistry};
/// #[derive(serde::Deserialize)]
/// struct Order { id: i64, item: String }
/// let registry = SchemaRegistry::new(RegistryConfig::new(["http://127.0.0.1:8081"])).unwrap();
/// let orders = Avro::<Order>::new(&registry);
/// // Listener::builder("orders").handler(Utf8, orders, |r: Record<String, Order>| async { Ok(()) })
/// ```
pub struct Avro<T> {
    core: Core,
    direct: bool,
    _t: PhantomData<fn() -> T>,
}

impl<T> Avro<T> {
    /// Records decoded with the writer's schema.
    pub fn new(registry: &SchemaRegistry) -> Self {
        Avro {
            core: Core::new(registry.clone()),
            direct: false,
            _t: PhantomData,
        }
    }

    /// Deserialize straight from the datum into `T`, without Avro's generic
    /// value in between (faster: no value tree, no field-name strings per
    /// record; see docs/benchmarks.md). `apache-avro` then matches names:
    /// `T`'s serde name must be the record's name (`#[serde(rename =
    /// "Order")]`), or every record fails as a schema mismatch. Applies
    /// without a reader schema only (resolution needs the generic value).
    pub fn direct(mut self) -> Self {
        self.direct = true;
        self
    }

    /// Records resolved to this reader schema (JSON), with the schemas its
    /// named types refer to.
    pub fn with_reader_schema(
        mut self,
        schema: &str,
        references: &[&str],
    ) -> Result<Self, SchemaError> {
        self.core.reader = Some(Arc::new(ReaderSchema::parse(schema, references)?));
        Ok(self)
    }
}

impl<T> Avro<T>
where
    T: serde::de::DeserializeOwned,
{
    /// Decode a framed record (what [`Deserializer::deserialize`] does, with
    /// the cause kept).
    pub fn decode(&self, data: Option<&[u8]>) -> Result<T, SchemaError> {
        // By default through Avro's generic value: `read_deser` (straight
        // into `T`) insists that `T`'s name is the record's name.
        let direct = self.direct && self.core.reader.is_none();
        self.core.decode(data, |c, payload| {
            if direct {
                return c
                    .borrow_dependent()
                    .read_deser::<T>(payload)
                    .map_err(mismatch);
            }
            let value = c.borrow_dependent().read_value(payload).map_err(mismatch)?;
            apache_avro::from_value::<T>(&value).map_err(mismatch)
        })
    }
}

impl<T> Deserializer for Avro<T>
where
    T: serde::de::DeserializeOwned + Send + 'static,
{
    type Output = T;
    fn deserialize(&self, _topic: &str, data: Option<&[u8]>) -> Result<T, DecodeError> {
        self.decode(data).map_err(DecodeError::from)
    }
}

/// Avro to a JSON value (records as objects, unions as their value, bytes as
/// arrays of numbers, as `apache-avro` converts them).
pub struct AvroJson {
    core: Core,
}

impl AvroJson {
    /// Records decoded with the writer's schema.
    pub fn new(registry: &SchemaRegistry) -> Self {
        AvroJson {
            core: Core::new(registry.clone()),
        }
    }

    /// Records resolved to this reader schema first.
    pub fn with_reader_schema(
        mut self,
        schema: &str,
        references: &[&str],
    ) -> Result<Self, SchemaError> {
        self.core.reader = Some(Arc::new(ReaderSchema::parse(schema, references)?));
        Ok(self)
    }

    /// Decode a framed record to Avro's generic value.
    pub fn decode_value(&self, data: Option<&[u8]>) -> Result<Value, SchemaError> {
        self.core.decode(data, |c, payload| {
            c.borrow_dependent().read_value(payload).map_err(mismatch)
        })
    }

    /// Decode a framed record to JSON.
    pub fn decode(&self, data: Option<&[u8]>) -> Result<serde_json::Value, SchemaError> {
        self.core.decode(data, |c, payload| {
            let value = c.borrow_dependent().read_value(payload).map_err(mismatch)?;
            serde_json::Value::try_from(value).map_err(mismatch)
        })
    }
}

impl Deserializer for AvroJson {
    type Output = serde_json::Value;
    fn deserialize(
        &self,
        _topic: &str,
        data: Option<&[u8]>,
    ) -> Result<serde_json::Value, DecodeError> {
        self.decode(data).map_err(DecodeError::from)
    }
}
