//! The JSON envelope a record travels in: its coordinates, key, timestamp,
//! headers and value, one JSON object per record.
//!
//! ```json
//! {"topic":"orders","partition":3,"offset":42,"key":"k1","key_encoding":"text",
//!  "timestamp":1764590000000,"headers":{"trace":"abc"},
//!  "value":{"id":7},"value_encoding":"json"}
//! ```
//!
//! How bytes become JSON (docs/decisions.md, "Delivery envelope"):
//!
//! - `value` by the listener's [`ValueFormat`]: in `auto` (the default) a
//!   payload that is valid JSON is embedded as JSON (`value_encoding:
//!   "json"`), otherwise valid UTF-8 is a JSON string (`"text"`), otherwise
//!   the bytes are base64 (standard alphabet, padded) in a string
//!   (`"base64"`). `json`, `text` and `base64` force one encoding; a payload
//!   that is not valid JSON (or UTF-8) under `json` (`text`) is a decode
//!   error, handled by the listener's decode-error policy (dead letter or
//!   skip) and never sent. A tombstone (null payload) is `null` with
//!   `value_encoding: "null"`.
//! - `key` is a UTF-8 string (`key_encoding: "text"`), base64 when it is not
//!   UTF-8 (`"base64"`), `null` when the record has none.
//! - `headers` is an object of name to UTF-8 value (invalid bytes replaced
//!   by U+FFFD, a null value `null`); a name that occurs twice keeps its last
//!   value.
//! - `timestamp` is milliseconds since the epoch, or `null`.
//!
//! ```
//! use switchyard_delivery::envelope::{Envelope, ValueFormat};
//! use switchyard_runtime::deserializer::Deserializer;
//! use switchyard_runtime::record::Record;
//!
//! let value = ValueFormat::Auto.deserialize("orders", Some(br#"{"id":7}"#)).unwrap();
//! let record = Record { topic: "orders".into(), partition: 3, offset: 42, timestamp_ms: None,
//!                       headers: vec![], key: Some(b"k1".to_vec()), value };
//! let json = Envelope::of(&record).to_json();
//! assert!(json.contains(r#""value":{"id":7},"value_encoding":"json""#), "{json}");
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use switchyard_runtime::deserializer::{DecodeError, Deserializer};
use switchyard_runtime::record::Record;

/// How a payload is written into the envelope's `value`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ValueFormat {
    /// JSON if it parses, else a UTF-8 string, else base64.
    #[default]
    Auto,
    /// JSON; anything else is a decode error.
    Json,
    /// A UTF-8 string; invalid UTF-8 is a decode error.
    Text,
    /// Base64 of the bytes, always.
    Base64,
}

impl ValueFormat {
    /// The TOML spelling.
    pub fn as_str(&self) -> &'static str {
        match self {
            ValueFormat::Auto => "auto",
            ValueFormat::Json => "json",
            ValueFormat::Text => "text",
            ValueFormat::Base64 => "base64",
        }
    }
}

impl fmt::Display for ValueFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ValueFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(ValueFormat::Auto),
            "json" => Ok(ValueFormat::Json),
            "text" => Ok(ValueFormat::Text),
            "base64" => Ok(ValueFormat::Base64),
            other => Err(format!(
                "unknown value format `{other}`: expected auto, json, text or base64"
            )),
        }
    }
}

/// Which encoding a value or key was given in the envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// Embedded JSON.
    Json,
    /// A JSON string holding the UTF-8 text.
    Text,
    /// A JSON string holding base64 of the bytes.
    Base64,
    /// No payload (a tombstone).
    Null,
}

/// A value ready for the envelope: its JSON text and how it was encoded.
/// The output of [`ValueFormat`] as a [`Deserializer`], so the work is done
/// on the listener's workers and a forced format that does not fit is a
/// decode error.
#[derive(Debug, Clone)]
pub struct EncodedValue {
    /// The JSON of `value`.
    pub json: Box<RawValue>,
    /// How it was encoded.
    pub encoding: Encoding,
}

fn json_string(s: &str) -> Box<RawValue> {
    RawValue::from_string(serde_json::to_string(s).expect("a string serializes"))
        .expect("a serialized string is JSON")
}

fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

impl Deserializer for ValueFormat {
    type Output = EncodedValue;
    fn deserialize(&self, _topic: &str, data: Option<&[u8]>) -> Result<EncodedValue, DecodeError> {
        let Some(data) = data else {
            return Ok(EncodedValue {
                json: RawValue::from_string("null".into()).expect("null is JSON"),
                encoding: Encoding::Null,
            });
        };
        let as_json = || {
            let raw: &RawValue = serde_json::from_slice(data).ok()?;
            // pretty-printed JSON is made compact: an envelope is one line
            let json = if raw.get().contains(['\n', '\r']) {
                let value: serde_json::Value = serde_json::from_str(raw.get()).ok()?;
                RawValue::from_string(value.to_string()).ok()?
            } else {
                raw.to_owned()
            };
            Some(EncodedValue {
                json,
                encoding: Encoding::Json,
            })
        };
        let as_text = || {
            std::str::from_utf8(data).ok().map(|s| EncodedValue {
                json: json_string(s),
                encoding: Encoding::Text,
            })
        };
        let as_base64 = || EncodedValue {
            json: json_string(&base64(data)),
            encoding: Encoding::Base64,
        };
        match self {
            ValueFormat::Auto => Ok(as_json().or_else(as_text).unwrap_or_else(as_base64)),
            ValueFormat::Json => {
                as_json().ok_or_else(|| DecodeError::new("value format `json`: not valid JSON"))
            }
            ValueFormat::Text => {
                as_text().ok_or_else(|| DecodeError::new("value format `text`: invalid UTF-8"))
            }
            ValueFormat::Base64 => Ok(as_base64()),
        }
    }
}

/// The records a delivery handler gets: raw key, encoded value.
pub type DeliveryRecord = Record<Vec<u8>, EncodedValue>;

/// One record as the application receives it; see the [module docs](self).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope {
    /// Topic the record was read from.
    pub topic: String,
    /// Its partition.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// The key (UTF-8, or base64), `null` when there is none.
    pub key: Option<String>,
    /// How `key` is encoded (`text` or `base64`; `null` without a key).
    pub key_encoding: Option<Encoding>,
    /// Milliseconds since the epoch, if known.
    pub timestamp: Option<i64>,
    /// Kafka headers, name to UTF-8 value.
    pub headers: BTreeMap<String, Option<String>>,
    /// The value, encoded as `value_encoding` says.
    pub value: Box<RawValue>,
    /// `json`, `text`, `base64` or `null`.
    pub value_encoding: Encoding,
}

impl Envelope {
    /// The envelope of `record`.
    pub fn of(record: &DeliveryRecord) -> Envelope {
        let (key, key_encoding) = match &record.key {
            None => (None, None),
            Some(k) => match std::str::from_utf8(k) {
                Ok(s) => (Some(s.to_string()), Some(Encoding::Text)),
                Err(_) => (Some(base64(k)), Some(Encoding::Base64)),
            },
        };
        Envelope {
            topic: record.topic.clone(),
            partition: record.partition,
            offset: record.offset,
            key,
            key_encoding,
            timestamp: record.timestamp_ms,
            headers: record
                .headers
                .iter()
                .map(|(name, v)| {
                    let v = v
                        .as_deref()
                        .map(|b| String::from_utf8_lossy(b).into_owned());
                    (name.clone(), v)
                })
                .collect(),
            value: record.value.json.clone(),
            value_encoding: record.value.encoding,
        }
    }

    /// Compact JSON on one line (JSON escapes every line break in strings).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("an envelope serializes")
    }

    /// A JSON array of the envelopes of `records`.
    ///
    /// ```
    /// # use switchyard_delivery::envelope::{Envelope, ValueFormat};
    /// # use switchyard_runtime::{deserializer::Deserializer, record::Record};
    /// let r = |o| Record { topic: "t".into(), partition: 0, offset: o, timestamp_ms: None,
    ///     headers: vec![], key: None, value: ValueFormat::Text.deserialize("t", Some(b"x")).unwrap() };
    /// let body = Envelope::array(&[r(1), r(2)]);
    /// assert!(body.starts_with('[') && body.contains(r#""offset":2"#));
    /// ```
    pub fn array(records: &[DeliveryRecord]) -> String {
        let all: Vec<Envelope> = records.iter().map(Envelope::of).collect();
        serde_json::to_string(&all).expect("envelopes serialize")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(key: Option<&[u8]>, value: Option<&[u8]>, format: ValueFormat) -> DeliveryRecord {
        Record {
            topic: "t".into(),
            partition: 1,
            offset: 9,
            timestamp_ms: Some(5),
            headers: vec![("h".into(), Some(b"v".to_vec())), ("n".into(), None)],
            key: key.map(<[u8]>::to_vec),
            value: format.deserialize("t", value).unwrap(),
        }
    }

    fn parsed(r: &DeliveryRecord) -> serde_json::Value {
        serde_json::from_str(&Envelope::of(r).to_json()).unwrap()
    }

    #[test]
    fn auto_embeds_json_then_text_then_base64() {
        let v = parsed(&record(
            Some(b"k"),
            Some(br#"{"a":[1,2]}"#),
            ValueFormat::Auto,
        ));
        assert_eq!(v["value"]["a"][1], 2);
        assert_eq!(v["value_encoding"], "json");
        assert_eq!(v["key"], "k");
        assert_eq!(v["key_encoding"], "text");
        assert_eq!(v["headers"]["h"], "v");
        assert!(v["headers"]["n"].is_null());
        assert_eq!(v["timestamp"], 5);
        let v = parsed(&record(None, Some(b"line\nbreak"), ValueFormat::Auto));
        assert_eq!(v["value"], "line\nbreak");
        assert_eq!(v["value_encoding"], "text");
        assert!(v["key"].is_null());
        let v = parsed(&record(
            Some(&[0xff]),
            Some(&[0xff, 0x00]),
            ValueFormat::Auto,
        ));
        assert_eq!(v["value"], "/wA=");
        assert_eq!(v["value_encoding"], "base64");
        assert_eq!(v["key"], "/w==");
        assert_eq!(v["key_encoding"], "base64");
    }

    #[test]
    fn a_tombstone_is_null_and_forced_formats_refuse_what_does_not_fit() {
        let v = parsed(&record(None, None, ValueFormat::Json));
        assert!(v["value"].is_null());
        assert_eq!(v["value_encoding"], "null");
        assert!(ValueFormat::Json.deserialize("t", Some(b"nope")).is_err());
        assert!(ValueFormat::Text.deserialize("t", Some(&[0xff])).is_err());
        let v = parsed(&record(None, Some(b"42"), ValueFormat::Text));
        assert_eq!(v["value"], "42");
        let v = parsed(&record(None, Some(b"42"), ValueFormat::Base64));
        assert_eq!(v["value"], "NDI=");
    }

    #[test]
    fn an_envelope_is_one_line() {
        let json = Envelope::of(&record(Some(b"a\nb"), Some(b"x\ny"), ValueFormat::Auto)).to_json();
        assert!(!json.contains('\n'));
        let pretty = record(None, Some(b"{\n  \"a\": 1\n}\n"), ValueFormat::Json);
        assert_eq!(pretty.value.json.get(), r#"{"a":1}"#);
        let back: Envelope = serde_json::from_str(&json).unwrap();
        assert_eq!(back.key.as_deref(), Some("a\nb"));
    }

    #[test]
    fn formats_parse_from_their_names() {
        for f in [
            ValueFormat::Auto,
            ValueFormat::Json,
            ValueFormat::Text,
            ValueFormat::Base64,
        ] {
            assert_eq!(f.as_str().parse::<ValueFormat>().unwrap(), f);
        }
        assert!("xml".parse::<ValueFormat>().is_err());
    }
}
