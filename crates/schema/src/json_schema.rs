//! JSON Schema records in the Confluent wire format: the JSON payload is
//! validated against the registry's schema (`jsonschema`; the draft is the
//! one the schema's `$schema` names, 2020-12 when it names none), then
//! deserialized through serde ([`JsonSchema`]) or handed on as a JSON value
//! ([`JsonSchemaValue`]).
//!
//! Schema references are served to `$ref` by their reference name (a `$ref`
//! of `address.json` finds the reference named `address.json`); nothing is
//! fetched from elsewhere.

use std::collections::HashMap;
use std::marker::PhantomData;

use jsonschema::{Retrieve, Uri, Validator};
use serde_json::Value;
use switchyard_runtime::deserializer::{DecodeError, Deserializer};

use crate::compiled::Compiled;
use crate::error::{FailureKind, SchemaError};
use crate::registry::{RegisteredSchema, SchemaRegistry, SchemaType};
use crate::wire;

/// Serves the referenced schemas by name.
struct References(HashMap<String, Value>);

impl Retrieve for References {
    fn retrieve(
        &self,
        uri: &Uri<String>,
    ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        let uri = uri.as_str();
        self.0
            .iter()
            .find(|(name, _)| uri == name.as_str() || uri.ends_with(&format!("/{name}")))
            .map(|(_, v)| v.clone())
            .ok_or_else(|| format!("{uri} is not among the schema's references").into())
    }
}

fn parse(name: &str, text: &str) -> Result<Value, SchemaError> {
    serde_json::from_str(text).map_err(|e| {
        SchemaError::new(
            FailureKind::InvalidSchema,
            format!("{name} is not JSON: {e}"),
        )
    })
}

fn compile(raw: &RegisteredSchema) -> Result<Validator, SchemaError> {
    let schema = parse("the schema", &raw.schema)?;
    let mut references = HashMap::new();
    for (name, r) in raw.references_flat() {
        let value = parse(&name, &r.schema)?;
        references.insert(name, value);
    }
    jsonschema::options()
        .with_retriever(References(references))
        .build(&schema)
        .map_err(|e| SchemaError::new(FailureKind::InvalidSchema, e.to_string()))
}

/// Validate a framed record and parse its JSON.
fn validated(compiled: &Compiled<Validator>, data: Option<&[u8]>) -> Result<Value, SchemaError> {
    let data = data.ok_or_else(|| SchemaError::new(FailureKind::NullPayload, "null payload"))?;
    let (id, payload) = wire::split(data)?;
    let validator = compiled.get(id, SchemaType::Json, compile)?;
    let value: Value = serde_json::from_slice(payload).map_err(|e| {
        SchemaError::new(
            FailureKind::SchemaMismatch,
            format!("schema id {id}: invalid JSON: {e}"),
        )
    })?;
    let errors: Vec<String> = validator
        .iter_errors(&value)
        .take(3)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    if !errors.is_empty() {
        return Err(SchemaError::new(
            FailureKind::SchemaMismatch,
            format!("schema id {id}: fails validation: {}", errors.join("; ")),
        ));
    }
    Ok(value)
}

/// JSON Schema: validate, then deserialize to `T`.
pub struct JsonSchema<T> {
    compiled: Compiled<Validator>,
    _t: PhantomData<fn() -> T>,
}

impl<T> JsonSchema<T> {
    /// A deserializer to `T` on `registry`.
    pub fn new(registry: &SchemaRegistry) -> Self {
        JsonSchema {
            compiled: Compiled::new(registry.clone()),
            _t: PhantomData,
        }
    }
}

impl<T: serde::de::DeserializeOwned> JsonSchema<T> {
    /// Decode a framed record.
    pub fn decode(&self, data: Option<&[u8]>) -> Result<T, SchemaError> {
        self.compiled.decode(data, || {
            validated(&self.compiled, data).and_then(|v| {
                serde_json::from_value(v).map_err(|e| {
                    SchemaError::new(
                        FailureKind::SchemaMismatch,
                        format!(
                            "valid, but does not fit {}: {e}",
                            std::any::type_name::<T>()
                        ),
                    )
                })
            })
        })
    }
}

impl<T> Deserializer for JsonSchema<T>
where
    T: serde::de::DeserializeOwned + Send + 'static,
{
    type Output = T;
    fn deserialize(&self, _topic: &str, data: Option<&[u8]>) -> Result<T, DecodeError> {
        self.decode(data).map_err(DecodeError::from)
    }
}

/// JSON Schema: validate, then hand on the JSON value.
pub struct JsonSchemaValue {
    compiled: Compiled<Validator>,
}

impl JsonSchemaValue {
    /// A validating deserializer on `registry`.
    pub fn new(registry: &SchemaRegistry) -> Self {
        JsonSchemaValue {
            compiled: Compiled::new(registry.clone()),
        }
    }

    /// Decode a framed record.
    pub fn decode(&self, data: Option<&[u8]>) -> Result<Value, SchemaError> {
        self.compiled
            .decode(data, || validated(&self.compiled, data))
    }
}

impl Deserializer for JsonSchemaValue {
    type Output = Value;
    fn deserialize(&self, _topic: &str, data: Option<&[u8]>) -> Result<Value, DecodeError> {
        self.decode(data).map_err(DecodeError::from)
    }
}
