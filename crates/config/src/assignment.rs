//! `partition.assignment.strategy`: how a consumer group spreads partitions
//! over its members, and whether rebalances are eager or cooperative.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;

/// The partition assignment strategy (`partition.assignment.strategy`).
///
/// Parses from the librdkafka spellings and from the Java assignor class
/// names (`org.apache.kafka.clients.consumer.CooperativeStickyAssignor`, ...).
/// Only one strategy can be configured.
///
/// ```
/// use switchyard_config::AssignmentStrategy;
///
/// let s: AssignmentStrategy = "cooperative-sticky".parse().unwrap();
/// assert!(s.is_cooperative());
/// assert_eq!(AssignmentStrategy::Roundrobin.to_string(), "roundrobin");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AssignmentStrategy {
    /// Eager range assignor (`range`).
    Range,
    /// Eager round-robin assignor (`roundrobin`).
    Roundrobin,
    /// Incremental cooperative sticky assignor (`cooperative-sticky`).
    CooperativeSticky,
}

impl AssignmentStrategy {
    /// The librdkafka spelling.
    ///
    /// ```
    /// # use switchyard_config::AssignmentStrategy;
    /// assert_eq!(AssignmentStrategy::CooperativeSticky.as_str(), "cooperative-sticky");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            AssignmentStrategy::Range => "range",
            AssignmentStrategy::Roundrobin => "roundrobin",
            AssignmentStrategy::CooperativeSticky => "cooperative-sticky",
        }
    }

    /// Whether rebalances are incremental (only moved partitions are revoked
    /// and assigned), which changes how the runtime handles rebalance events.
    ///
    /// ```
    /// # use switchyard_config::AssignmentStrategy;
    /// assert!(AssignmentStrategy::CooperativeSticky.is_cooperative());
    /// assert!(!AssignmentStrategy::Range.is_cooperative());
    /// ```
    pub fn is_cooperative(self) -> bool {
        matches!(self, AssignmentStrategy::CooperativeSticky)
    }
}

impl fmt::Display for AssignmentStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AssignmentStrategy {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let name = s.trim();
        let short = name.rsplit('.').next().unwrap_or(name);
        match short.to_ascii_lowercase().as_str() {
            "range" | "rangeassignor" => Ok(AssignmentStrategy::Range),
            "roundrobin" | "round-robin" | "roundrobinassignor" => {
                Ok(AssignmentStrategy::Roundrobin)
            }
            "cooperative-sticky" | "cooperativestickyassignor" => {
                Ok(AssignmentStrategy::CooperativeSticky)
            }
            _ => {
                let reason = if name.contains(',') {
                    "only one strategy can be configured: `range`, `roundrobin` or `cooperative-sticky`"
                } else {
                    "expected `range`, `roundrobin` or `cooperative-sticky`"
                };
                Err(ConfigError::invalid(
                    "partition.assignment.strategy",
                    s,
                    reason,
                ))
            }
        }
    }
}
