//! Why a record could not be decoded against its schema.
//!
//! Every failure has a [`FailureKind`] with a stable code (`unknown_schema_id`,
//! `registry_unavailable`, ...) that starts the reason the runtime writes into
//! the dead-letter header `switchyard.dlt.error`, so a dead-letter consumer
//! can route on it: `cannot decode value: unknown_schema_id: schema id 9 ...`.

use switchyard_runtime::deserializer::DecodeError;

/// What went wrong, by cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureKind {
    /// The first byte is not the wire format's magic byte 0 (or the payload is empty).
    WrongMagicByte,
    /// The payload ends inside the header or the Protobuf message indexes.
    Truncated,
    /// The registry does not know the schema id.
    UnknownSchemaId,
    /// No registry answered (down, unreachable, 5xx, refused credentials)
    /// within the retry budget.
    RegistryUnavailable,
    /// The registry's schema could not be parsed or compiled, or is of another
    /// type than the deserializer reads (an Avro id on a Protobuf topic).
    InvalidSchema,
    /// The payload does not match its schema (not decodable with it, fails
    /// JSON Schema validation, or does not fit the target type).
    SchemaMismatch,
    /// A null payload (tombstone) where a value was expected.
    NullPayload,
}

impl FailureKind {
    /// Every kind, in the order of the metrics.
    pub const ALL: [FailureKind; 7] = [
        FailureKind::WrongMagicByte,
        FailureKind::Truncated,
        FailureKind::UnknownSchemaId,
        FailureKind::RegistryUnavailable,
        FailureKind::InvalidSchema,
        FailureKind::SchemaMismatch,
        FailureKind::NullPayload,
    ];

    /// The stable code: the first word of the reason and the `reason` label of
    /// the metrics.
    pub fn code(self) -> &'static str {
        match self {
            FailureKind::WrongMagicByte => "wrong_magic_byte",
            FailureKind::Truncated => "truncated",
            FailureKind::UnknownSchemaId => "unknown_schema_id",
            FailureKind::RegistryUnavailable => "registry_unavailable",
            FailureKind::InvalidSchema => "invalid_schema",
            FailureKind::SchemaMismatch => "schema_mismatch",
            FailureKind::NullPayload => "null_payload",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl std::fmt::Display for FailureKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

/// A decoding failure: its kind and a human-readable detail (never a
/// credential).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {detail}")]
pub struct SchemaError {
    /// The cause.
    pub kind: FailureKind,
    /// What exactly.
    pub detail: String,
}

impl SchemaError {
    /// A failure of `kind`.
    pub fn new(kind: FailureKind, detail: impl Into<String>) -> Self {
        SchemaError {
            kind,
            detail: detail.into(),
        }
    }
}

impl From<SchemaError> for DecodeError {
    fn from(e: SchemaError) -> Self {
        DecodeError::new(e.to_string())
    }
}
