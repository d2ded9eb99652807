//! `auto.offset.reset`: where a consumer starts when it has no usable
//! committed offset for a partition.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;

/// What to do when a partition has no committed offset (or it is out of
/// range): Kafka's `auto.offset.reset`.
///
/// Parses from the Kafka spellings and librdkafka's aliases (`smallest`,
/// `beginning`, `largest`, `end`, and Java's `none` for `error`).
///
/// ```
/// use switchyard_config::OffsetReset;
///
/// assert_eq!("earliest".parse::<OffsetReset>().unwrap(), OffsetReset::Earliest);
/// assert_eq!("none".parse::<OffsetReset>().unwrap(), OffsetReset::Error);
/// assert_eq!(OffsetReset::Latest.to_string(), "latest");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OffsetReset {
    /// Start from the oldest retained record.
    #[serde(alias = "smallest", alias = "beginning")]
    Earliest,
    /// Start after the newest record.
    #[serde(alias = "largest", alias = "end")]
    Latest,
    /// Report an error instead of resetting (Java's `none`).
    #[serde(alias = "none")]
    Error,
}

impl OffsetReset {
    /// The Kafka / librdkafka spelling.
    ///
    /// ```
    /// # use switchyard_config::OffsetReset;
    /// assert_eq!(OffsetReset::Error.as_str(), "error");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            OffsetReset::Earliest => "earliest",
            OffsetReset::Latest => "latest",
            OffsetReset::Error => "error",
        }
    }
}

impl fmt::Display for OffsetReset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for OffsetReset {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "earliest" | "smallest" | "beginning" => Ok(OffsetReset::Earliest),
            "latest" | "largest" | "end" => Ok(OffsetReset::Latest),
            "error" | "none" => Ok(OffsetReset::Error),
            _ => Err(ConfigError::invalid(
                "auto.offset.reset",
                s,
                "expected `earliest`, `latest` or `error`",
            )),
        }
    }
}
