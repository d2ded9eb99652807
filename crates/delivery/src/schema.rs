//! Records written with a Schema Registry (Confluent wire format), decoded
//! before they are delivered: a listener whose `[listener.delivery]` says
//! `value = "avro"`, `"protobuf"` or `"json-schema"` hands the application
//! the record as JSON in the envelope's `value` (`value_encoding: "json"`),
//! as Confluent's REST Proxy does, with the schema fetched from the
//! `[schema_registry]` of the file (one [`SchemaRegistry`] client shared by
//! every listener, its schemas cached).
//!
//! A record that cannot be decoded (a wrong magic byte, an unknown schema
//! id, a payload that does not match its schema, no registry answering
//! within its retry budget) is a decode error whose reason starts with its
//! [`FailureKind`](switchyard_schema::FailureKind) code: the listener's
//! decode-error policy dead-letters its original bytes with that reason in
//! the `switchyard.dlt.error` header, or skips it. A tombstone is delivered
//! as `null` (`value_encoding: "null"`), as in the other formats.
//!
//! ```
//! use switchyard_config::{PayloadFormat, SchemaRegistryConfig};
//! use switchyard_delivery::schema::{registry, ValueDecoder};
//! use switchyard_runtime::deserializer::Deserializer;
//!
//! let sr = registry(&SchemaRegistryConfig::new(["http://127.0.0.1:1"])).unwrap();
//! let avro = ValueDecoder::new(PayloadFormat::Avro, Some(&sr)).unwrap();
//! let err = avro.deserialize("orders", Some(b"{}")).unwrap_err();
//! assert!(err.to_string().contains("wrong_magic_byte"), "{err}");
//! ```

use std::sync::Arc;

use serde_json::value::RawValue;
use switchyard_config::{PayloadFormat, SchemaRegistryConfig};
use switchyard_runtime::deserializer::{DecodeError, Deserializer};
use switchyard_schema::avro::AvroJson;
use switchyard_schema::json_schema::JsonSchemaValue;
use switchyard_schema::protobuf::ProtobufJson;
use switchyard_schema::{Credentials, RegistryConfig, SchemaRegistry, TlsConfig};

use crate::envelope::{EncodedValue, Encoding, ValueFormat};
use crate::error::DeliveryError;

/// The registry client of a `[schema_registry]` table (its credentials
/// already resolved).
///
/// # Errors
///
/// [`DeliveryError::Registry`] for a CA file that cannot be read or a
/// client that cannot be built; the message never holds a credential.
pub fn registry(config: &SchemaRegistryConfig) -> Result<SchemaRegistry, DeliveryError> {
    let mut rc = RegistryConfig::new(config.urls.iter().cloned())
        .with_request_timeout(config.request_timeout)
        .with_cache_capacity(config.cache_capacity);
    if let Some((user, password)) = config.basic_auth() {
        rc = rc.with_credentials(Credentials::basic(user, password));
    } else if let Some(token) = &config.bearer_token {
        rc = rc.with_credentials(Credentials::bearer(token.clone()));
    }
    if let Some(ca) = &config.ca_file {
        let pem = std::fs::read(ca).map_err(|e| DeliveryError::Registry {
            reason: format!(
                "cannot read `schema_registry.ca_file` {}: {e}",
                ca.display()
            ),
        })?;
        rc = rc.with_tls(TlsConfig {
            ca_pem: Some(pem),
            ..TlsConfig::default()
        });
    }
    SchemaRegistry::new(rc).map_err(|e| DeliveryError::Registry {
        reason: e.to_string(),
    })
}

/// A record value as the envelope carries it: one of the plain formats, or
/// decoded through a Schema Registry to JSON. Cheap to clone.
#[derive(Clone)]
pub enum ValueDecoder {
    /// `auto`, `json`, `text` or `base64`.
    Plain(ValueFormat),
    /// `avro`, `protobuf` or `json-schema`, decoded to a JSON value.
    Schema {
        /// The TOML spelling, for `Debug`.
        format: PayloadFormat,
        /// The schema deserializer.
        decoder: Arc<dyn Deserializer<Output = serde_json::Value>>,
    },
}

impl std::fmt::Debug for ValueDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ValueDecoder::Plain(p) => write!(f, "Plain({p})"),
            ValueDecoder::Schema { format, .. } => write!(f, "Schema({})", format.as_str()),
        }
    }
}

impl ValueDecoder {
    /// The decoder of the table's `value`; the schema formats read through
    /// `registry`.
    ///
    /// # Errors
    ///
    /// [`DeliveryError::Config`] for a schema format without a registry.
    pub fn new(
        format: PayloadFormat,
        registry: Option<&SchemaRegistry>,
    ) -> Result<ValueDecoder, DeliveryError> {
        let plain = |p| Ok(ValueDecoder::Plain(p));
        let decoder: Arc<dyn Deserializer<Output = serde_json::Value>> = match format {
            PayloadFormat::Auto => return plain(ValueFormat::Auto),
            PayloadFormat::Json => return plain(ValueFormat::Json),
            PayloadFormat::Text => return plain(ValueFormat::Text),
            PayloadFormat::Base64 => return plain(ValueFormat::Base64),
            schema => {
                let registry = registry.ok_or_else(|| DeliveryError::Config {
                    key: "value",
                    reason: format!(
                        "`{}` reads its schemas from a Schema Registry, and none is configured",
                        schema.as_str()
                    ),
                })?;
                match schema {
                    PayloadFormat::Avro => Arc::new(AvroJson::new(registry)),
                    PayloadFormat::Protobuf => Arc::new(ProtobufJson::new(registry)),
                    _ => Arc::new(JsonSchemaValue::new(registry)),
                }
            }
        };
        Ok(ValueDecoder::Schema { format, decoder })
    }
}

impl From<ValueFormat> for ValueDecoder {
    fn from(f: ValueFormat) -> Self {
        ValueDecoder::Plain(f)
    }
}

impl Deserializer for ValueDecoder {
    type Output = EncodedValue;
    fn deserialize(&self, topic: &str, data: Option<&[u8]>) -> Result<EncodedValue, DecodeError> {
        match self {
            ValueDecoder::Plain(p) => p.deserialize(topic, data),
            ValueDecoder::Schema { decoder, .. } => {
                let Some(data) = data else {
                    return ValueFormat::Auto.deserialize(topic, None);
                };
                let value = decoder.deserialize(topic, Some(data))?;
                let json = RawValue::from_string(value.to_string())
                    .map_err(|e| DecodeError::new(format!("decoded value as JSON: {e}")))?;
                Ok(EncodedValue {
                    json,
                    encoding: Encoding::Json,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_schema::wire::frame;
    use switchyard_schema::{RegisteredSchema, SchemaType};

    const ORDER: &str = r#"{"type":"record","name":"Order","fields":[
        {"name":"id","type":"long"},{"name":"item","type":"string"}]}"#;

    fn avro_registry() -> SchemaRegistry {
        let sr = registry(&SchemaRegistryConfig::new(["http://127.0.0.1:1"])).unwrap();
        sr.preload(RegisteredSchema {
            id: 7,
            schema_type: SchemaType::Avro,
            schema: ORDER.into(),
            references: vec![],
        });
        sr
    }

    #[test]
    fn avro_becomes_embedded_json_and_a_tombstone_null() {
        let sr = avro_registry();
        let d = ValueDecoder::new(PayloadFormat::Avro, Some(&sr)).unwrap();
        // Avro's binary encoding of {"id": 42, "item": "tea"}: zigzag varints
        let body = [84, 6, b't', b'e', b'a'];
        let v = d.deserialize("t", Some(&frame(7, &body))).unwrap();
        assert_eq!(v.encoding, Encoding::Json);
        let got: serde_json::Value = serde_json::from_str(v.json.get()).unwrap();
        assert_eq!(got, serde_json::json!({"id": 42, "item": "tea"}));
        let v = d.deserialize("t", None).unwrap();
        assert_eq!((v.json.get(), v.encoding), ("null", Encoding::Null));
    }

    #[test]
    fn undecodable_records_are_decode_errors_with_their_kind() {
        let sr = avro_registry();
        let d = ValueDecoder::new(PayloadFormat::Avro, Some(&sr)).unwrap();
        let err = d.deserialize("t", Some(&frame(7, &[0xff]))).unwrap_err();
        assert!(err.to_string().contains("schema_mismatch"), "{err}");
        let err = d.deserialize("t", Some(b"plain")).unwrap_err();
        assert!(err.to_string().contains("wrong_magic_byte"), "{err}");
    }

    #[test]
    fn a_schema_format_needs_a_registry_and_plain_formats_do_not() {
        let err = ValueDecoder::new(PayloadFormat::Protobuf, None).unwrap_err();
        assert!(err.to_string().contains("protobuf"), "{err}");
        let d = ValueDecoder::new(PayloadFormat::Text, None).unwrap();
        let v = d.deserialize("t", Some(b"hi")).unwrap();
        assert_eq!(v.encoding, Encoding::Text);
    }
}
