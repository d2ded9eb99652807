//! Decoding of keys and values: the [`Deserializer`] trait and the built-in
//! [`Bytes`], [`Utf8`] and [`Json`] deserializers.
//!
//! A listener is built with one deserializer for keys and one for values.
//! Decoding happens on the worker, before the handler; a record that cannot be
//! decoded never reaches the handler: it goes to the dead-letter topic or is
//! skipped, by the listener's
//! [`DecodeErrorPolicy`](switchyard_config::DecodeErrorPolicy), and is counted
//! and logged. Avro or Protobuf plug in by implementing the trait.
//!
//! ```
//! use switchyard_runtime::deserializer::{Deserializer, Json, Utf8};
//! #[derive(serde::Deserialize, Debug, PartialEq)]
//! struct Order { id: u32 }
//! assert_eq!(Utf8.deserialize("t", Some(b"hi")).unwrap(), "hi");
//! assert_eq!(Json::<Order>::new().deserialize("t", Some(br#"{"id":1}"#)).unwrap(), Order { id: 1 });
//! assert!(Json::<Order>::new().deserialize("t", Some(b"nope")).is_err());
//! ```

use std::marker::PhantomData;

/// Why a payload could not be decoded.
#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot decode {what}: {reason}")]
pub struct DecodeError {
    /// "key" or "value" (filled in by the runtime) or the format name.
    pub what: String,
    /// Human-readable reason.
    pub reason: String,
}

impl DecodeError {
    /// A decode error with a reason.
    pub fn new(reason: impl Into<String>) -> Self {
        DecodeError {
            what: "payload".into(),
            reason: reason.into(),
        }
    }
}

/// Turns the bytes of a key or value into a typed value.
pub trait Deserializer: Send + Sync + 'static {
    /// The decoded type.
    type Output: Send + 'static;
    /// Decode `data` (`None` for a null key or a tombstone value) read from `topic`.
    fn deserialize(&self, topic: &str, data: Option<&[u8]>) -> Result<Self::Output, DecodeError>;
}

/// Raw bytes; a null payload decodes to an empty vector.
#[derive(Debug, Clone, Copy, Default)]
pub struct Bytes;

impl Deserializer for Bytes {
    type Output = Vec<u8>;
    fn deserialize(&self, _: &str, data: Option<&[u8]>) -> Result<Vec<u8>, DecodeError> {
        Ok(data.unwrap_or_default().to_vec())
    }
}

/// UTF-8 text; invalid UTF-8 is a decode error, a null payload is "".
#[derive(Debug, Clone, Copy, Default)]
pub struct Utf8;

impl Deserializer for Utf8 {
    type Output = String;
    fn deserialize(&self, _: &str, data: Option<&[u8]>) -> Result<String, DecodeError> {
        String::from_utf8(data.unwrap_or_default().to_vec())
            .map_err(|e| DecodeError::new(format!("invalid UTF-8: {e}")))
    }
}

/// JSON through serde; a null payload is a decode error.
pub struct Json<T>(PhantomData<fn() -> T>);

impl<T> Json<T> {
    /// A JSON deserializer for `T`.
    pub fn new() -> Self {
        Json(PhantomData)
    }
}

impl<T> Default for Json<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Deserializer for Json<T>
where
    T: serde::de::DeserializeOwned + Send + 'static,
{
    type Output = T;
    fn deserialize(&self, _: &str, data: Option<&[u8]>) -> Result<T, DecodeError> {
        let data = data.ok_or_else(|| DecodeError::new("null payload"))?;
        serde_json::from_slice(data).map_err(|e| DecodeError::new(format!("invalid JSON: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_rejects_invalid_bytes() {
        assert!(Utf8.deserialize("t", Some(&[0xff, 0xfe])).is_err());
        assert_eq!(Utf8.deserialize("t", None).unwrap(), "");
    }

    #[test]
    fn json_rejects_null() {
        let e = Json::<u32>::new().deserialize("t", None).unwrap_err();
        assert!(e.to_string().contains("null payload"));
    }

    #[test]
    fn bytes_pass_through() {
        assert_eq!(Bytes.deserialize("t", Some(b"ab")).unwrap(), b"ab".to_vec());
    }
}
