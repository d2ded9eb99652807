//! Durations in TOML as humantime text ("250ms", "10s", "1m 30s"), for
//! `#[serde(with = "crate::duration")]` (and `crate::duration::optional`
//! for an `Option<Duration>`). A number or an unparsable text is an error
//! naming the expected spelling.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer};

/// Writes `d` as humantime text.
pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&humantime::format_duration(*d).to_string())
}

/// Reads humantime text.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d).map_err(|_| {
        serde::de::Error::custom("expected a duration as text, e.g. \"30s\" or \"250ms\"")
    })?;
    parse(&text).map_err(serde::de::Error::custom)
}

/// `text` as a duration, or why not.
pub fn parse(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|e| format!("invalid duration `{text}`: {e} (e.g. \"30s\" or \"250ms\")"))
}

/// `d` as humantime text, as operators read it (`30s`, `1m 30s`, `250ms`).
///
/// ```
/// use std::time::Duration;
/// assert_eq!(switchyard_config::duration::format(Duration::from_millis(90_000)), "1m 30s");
/// ```
pub fn format(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// The same for `Option<Duration>` (with `#[serde(default)]`).
pub mod optional {
    use super::*;

    /// Writes `d` as humantime text, or nothing.
    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::serialize(d, s),
            None => s.serialize_none(),
        }
    }

    /// Reads humantime text.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        super::deserialize(d).map(Some)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn humantime_spellings() {
        assert_eq!(super::parse("250ms").unwrap().as_millis(), 250);
        assert_eq!(super::parse(" 1m 30s ").unwrap().as_secs(), 90);
        assert!(super::parse("30").unwrap_err().contains("e.g."));
    }
}
