//! Protobuf records in the Confluent wire format (magic byte, schema id,
//! message indexes, payload), decoded with descriptors built from the
//! registry's schema (`prost-reflect`): dynamically to JSON
//! ([`ProtobufJson`]), to a serde type through that JSON
//! ([`ProtobufSerde`]), or to a prost-generated message ([`Protobuf`]).
//!
//! The registry holds a Protobuf schema either as `.proto` source, compiled
//! here with `protox` (a protobuf compiler in Rust; `google/protobuf/*.proto`
//! imports are built in), or as a base64-encoded `FileDescriptorProto` (what
//! Confluent's serializers register); both are read, and so are schema
//! references (imports served by the registry under their import names).
//! The message indexes pick the message of the file: `[0]` the first
//! top-level message, `[1, 0]` the first message nested in the second.

use std::collections::HashMap;
use std::marker::PhantomData;

use prost::Message as _;
use prost_reflect::{
    DescriptorPool, DynamicMessage, FileDescriptor, MessageDescriptor, SerializeOptions,
};
use switchyard_runtime::deserializer::{DecodeError, Deserializer};

use crate::compiled::Compiled;
use crate::error::{FailureKind, SchemaError};
use crate::registry::{RegisteredSchema, SchemaRegistry, SchemaType};
use crate::wire;

/// The file of a registered Protobuf schema, with every file it imports.
pub(crate) struct CompiledProto {
    file: FileDescriptor,
}

impl CompiledProto {
    /// The message at `indexes`.
    fn message(&self, indexes: &[usize]) -> Result<MessageDescriptor, SchemaError> {
        let missing = || {
            SchemaError::new(
                FailureKind::SchemaMismatch,
                format!(
                    "message indexes {indexes:?} name no message of {}",
                    self.file.name()
                ),
            )
        };
        let (first, rest) = indexes.split_first().ok_or_else(missing)?;
        let mut message = self.file.messages().nth(*first).ok_or_else(missing)?;
        for &i in rest {
            let child = message.child_messages().nth(i);
            message = child.ok_or_else(missing)?;
        }
        Ok(message)
    }
}

/// Import names to files, for protox.
struct Files(HashMap<String, protox::file::File>);

impl protox::file::FileResolver for Files {
    fn open_file(&self, name: &str) -> Result<protox::file::File, protox::Error> {
        self.0
            .get(name)
            .cloned()
            .ok_or_else(|| protox::Error::file_not_found(name))
    }
}

/// A schema text as a protox file named `name`: a base64
/// `FileDescriptorProto`, or `.proto` source.
fn to_file(name: &str, text: &str) -> Result<protox::file::File, SchemaError> {
    use base64::Engine;
    let trimmed = text.trim();
    let looks_base64 = !trimmed.is_empty()
        && trimmed
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+/=\r\n".contains(&b));
    if looks_base64 {
        if let Ok(bytes) =
            base64::engine::general_purpose::STANDARD.decode(trimmed.replace(['\r', '\n'], ""))
        {
            if let Ok(mut proto) = prost_types::FileDescriptorProto::decode(bytes.as_slice()) {
                proto.name = Some(name.to_string());
                return Ok(protox::file::File::from_file_descriptor_proto(proto));
            }
        }
    }
    protox::file::File::from_source(name, text)
        .map_err(|e| SchemaError::new(FailureKind::InvalidSchema, format!("{name}: {e}")))
}

pub(crate) fn compile(raw: &RegisteredSchema) -> Result<CompiledProto, SchemaError> {
    let invalid = |e: String| SchemaError::new(FailureKind::InvalidSchema, e);
    let mut files = HashMap::new();
    for (name, r) in raw.references_flat() {
        files.insert(name.clone(), to_file(&name, &r.schema)?);
    }
    let main = format!("switchyard-registry-schema-{}.proto", raw.id);
    files.insert(main.clone(), to_file(&main, &raw.schema)?);
    let mut resolver = protox::file::ChainFileResolver::new();
    resolver.add(Files(files));
    resolver.add(protox::file::GoogleFileResolver::new());
    let mut compiler = protox::Compiler::with_file_resolver(resolver);
    compiler
        .open_file(&main)
        .map_err(|e| invalid(e.to_string()))?;
    let pool: DescriptorPool = compiler.descriptor_pool();
    let file = pool
        .get_file_by_name(&main)
        .ok_or_else(|| invalid("compiled file missing from its pool".into()))?;
    Ok(CompiledProto { file })
}

/// Split a framed record into its message descriptor and payload.
fn locate<'a>(
    compiled: &Compiled<CompiledProto>,
    data: Option<&'a [u8]>,
) -> Result<(u32, MessageDescriptor, &'a [u8]), SchemaError> {
    let data = data.ok_or_else(|| SchemaError::new(FailureKind::NullPayload, "null payload"))?;
    let (id, rest) = wire::split(data)?;
    let (indexes, payload) = wire::message_indexes(rest)?;
    let proto = compiled.get(id, SchemaType::Protobuf, compile)?;
    let message = proto.message(&indexes).map_err(|mut e| {
        e.detail = format!("schema id {id}: {}", e.detail);
        e
    })?;
    Ok((id, message, payload))
}

fn decode_dynamic(
    compiled: &Compiled<CompiledProto>,
    data: Option<&[u8]>,
) -> Result<DynamicMessage, SchemaError> {
    let (id, desc, payload) = locate(compiled, data)?;
    DynamicMessage::decode(desc.clone(), payload).map_err(|e| {
        SchemaError::new(
            FailureKind::SchemaMismatch,
            format!("schema id {id}: not a {}: {e}", desc.full_name()),
        )
    })
}

/// Protobuf to JSON, decoded dynamically with the registry's descriptors.
///
/// By default fields keep their names from the `.proto` file, 64-bit
/// integers stay numbers, and fields at their default value are present
/// (unlike the canonical proto3 JSON mapping, which [`ProtobufJson::with_options`]
/// can select).
pub struct ProtobufJson {
    compiled: Compiled<CompiledProto>,
    options: SerializeOptions,
}

/// The JSON options of [`ProtobufJson::new`].
pub fn plain_json_options() -> SerializeOptions {
    SerializeOptions::new()
        .use_proto_field_name(true)
        .stringify_64_bit_integers(false)
        .skip_default_fields(false)
}

impl ProtobufJson {
    /// A deserializer to JSON on `registry`.
    pub fn new(registry: &SchemaRegistry) -> Self {
        ProtobufJson {
            compiled: Compiled::new(registry.clone()),
            options: plain_json_options(),
        }
    }

    /// With other JSON options (`SerializeOptions::new()` is the canonical
    /// proto3 JSON mapping).
    pub fn with_options(mut self, options: SerializeOptions) -> Self {
        self.options = options;
        self
    }

    /// Decode a framed record to a dynamic message.
    pub fn decode_message(&self, data: Option<&[u8]>) -> Result<DynamicMessage, SchemaError> {
        self.compiled
            .decode(data, || decode_dynamic(&self.compiled, data))
    }

    /// Decode a framed record to JSON.
    pub fn decode(&self, data: Option<&[u8]>) -> Result<serde_json::Value, SchemaError> {
        self.compiled.decode(data, || self.to_json(data))
    }

    fn to_json(&self, data: Option<&[u8]>) -> Result<serde_json::Value, SchemaError> {
        let message = decode_dynamic(&self.compiled, data)?;
        message
            .serialize_with_options(serde_json::value::Serializer, &self.options)
            .map_err(|e| SchemaError::new(FailureKind::SchemaMismatch, e.to_string()))
    }
}

impl Deserializer for ProtobufJson {
    type Output = serde_json::Value;
    fn deserialize(
        &self,
        _topic: &str,
        data: Option<&[u8]>,
    ) -> Result<serde_json::Value, DecodeError> {
        self.decode(data).map_err(DecodeError::from)
    }
}

/// Protobuf to `T` through serde, by way of [`ProtobufJson`]'s JSON: no code
/// generation needed, `T` names the fields it wants.
pub struct ProtobufSerde<T> {
    json: ProtobufJson,
    _t: PhantomData<fn() -> T>,
}

impl<T> ProtobufSerde<T> {
    /// A deserializer to `T` on `registry`.
    pub fn new(registry: &SchemaRegistry) -> Self {
        ProtobufSerde {
            json: ProtobufJson::new(registry),
            _t: PhantomData,
        }
    }
}

impl<T: serde::de::DeserializeOwned> ProtobufSerde<T> {
    /// Decode a framed record.
    pub fn decode(&self, data: Option<&[u8]>) -> Result<T, SchemaError> {
        self.json.compiled.decode(data, || {
            self.json.to_json(data).and_then(|v| {
                serde_json::from_value(v).map_err(|e| {
                    SchemaError::new(
                        FailureKind::SchemaMismatch,
                        format!("does not fit {}: {e}", std::any::type_name::<T>()),
                    )
                })
            })
        })
    }
}

impl<T> Deserializer for ProtobufSerde<T>
where
    T: serde::de::DeserializeOwned + Send + 'static,
{
    type Output = T;
    fn deserialize(&self, _topic: &str, data: Option<&[u8]>) -> Result<T, DecodeError> {
        self.decode(data).map_err(DecodeError::from)
    }
}

/// Protobuf to a prost message `M`. The schema id must be known to the
/// registry and the message indexes must name a message of it; with
/// [`Protobuf::expecting`] that message must also be the one `M` is.
pub struct Protobuf<M> {
    compiled: Compiled<CompiledProto>,
    expected: Option<String>,
    _m: PhantomData<fn() -> M>,
}

impl<M> Protobuf<M> {
    /// A deserializer to `M` on `registry`.
    pub fn new(registry: &SchemaRegistry) -> Self {
        Protobuf {
            compiled: Compiled::new(registry.clone()),
            expected: None,
            _m: PhantomData,
        }
    }

    /// Refuse (as a schema mismatch) records of another message than
    /// `full_name` (`package.Message`).
    pub fn expecting(mut self, full_name: impl Into<String>) -> Self {
        self.expected = Some(full_name.into());
        self
    }
}

impl<M: prost::Message + Default> Protobuf<M> {
    /// Decode a framed record.
    pub fn decode(&self, data: Option<&[u8]>) -> Result<M, SchemaError> {
        self.compiled.decode(data, || self.decode_inner(data))
    }

    fn decode_inner(&self, data: Option<&[u8]>) -> Result<M, SchemaError> {
        let (id, desc, payload) = locate(&self.compiled, data)?;
        if let Some(expected) = &self.expected {
            if desc.full_name() != expected {
                return Err(SchemaError::new(
                    FailureKind::SchemaMismatch,
                    format!(
                        "schema id {id}: a {}, expected {expected}",
                        desc.full_name()
                    ),
                ));
            }
        }
        M::decode(payload).map_err(|e| {
            SchemaError::new(
                FailureKind::SchemaMismatch,
                format!("schema id {id}: not a {}: {e}", desc.full_name()),
            )
        })
    }
}

impl<M> Deserializer for Protobuf<M>
where
    M: prost::Message + Default + Send + 'static,
{
    type Output = M;
    fn deserialize(&self, _topic: &str, data: Option<&[u8]>) -> Result<M, DecodeError> {
        self.decode(data).map_err(DecodeError::from)
    }
}
