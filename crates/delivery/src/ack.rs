//! The acknowledgement a child process writes on its stdout, one JSON
//! object per line, per record it was given:
//!
//! ```json
//! {"topic":"orders","partition":3,"offset":42,"ok":true}
//! {"topic":"orders","partition":3,"offset":43,"ok":false,"error":"no such customer"}
//! ```
//!
//! `ok` defaults to `true`; `error` is optional. A record is identified by
//! its (topic, partition, offset), so acknowledgements may come in any
//! order. A line that is not such an object is logged and ignored (the
//! child's own output belongs on stderr, which is passed through).
//!
//! ```
//! use switchyard_delivery::ack::Ack;
//! let a = Ack::parse(r#"{"topic":"t","partition":0,"offset":7,"ok":false,"error":"bad"}"#).unwrap();
//! assert_eq!((a.partition, a.offset, a.ok), (0, 7, false));
//! assert!(Ack::parse("hello").is_none());
//! ```

use serde::{Deserialize, Serialize};

/// One acknowledgement; see the [module docs](self).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    /// Topic of the record.
    pub topic: String,
    /// Partition of the record.
    pub partition: i32,
    /// Offset of the record.
    pub offset: i64,
    /// Whether it was processed (a refusal is retried, then dead-lettered or skipped).
    #[serde(default = "yes")]
    pub ok: bool,
    /// Why it was refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

fn yes() -> bool {
    true
}

impl Ack {
    /// The acknowledgement on `line`, if it is one.
    pub fn parse(line: &str) -> Option<Ack> {
        serde_json::from_str(line.trim()).ok()
    }

    /// (topic, partition, offset).
    pub fn record(&self) -> (&str, i32, i64) {
        (&self.topic, self.partition, self.offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ok_defaults_to_true() {
        let a = Ack::parse(r#" {"topic":"t","partition":1,"offset":2} "#).unwrap();
        assert!(a.ok);
        assert_eq!(a.record(), ("t", 1, 2));
        assert!(Ack::parse(r#"{"partition":1,"offset":2}"#).is_none());
    }
}
