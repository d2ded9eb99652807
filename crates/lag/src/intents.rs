//! What the control plane knows that the offsets cannot tell: which
//! partitions are paused or draining on purpose, and the [`Intent`] that
//! follows for one partition. The health evaluator shows such partitions
//! PAUSED or DRAINING instead of raising STALL or STOP.
//!
//! Targets are written `GROUP:TOPIC:PARTITION` or `GROUP:TOPIC:*` (every
//! partition of the topic), as the CLI's `--paused` and `--draining` take them.

use std::collections::HashSet;
use std::str::FromStr;

use crate::LagError;

/// What the control plane says about a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    /// Nothing: judge by the offsets.
    None,
    /// Paused on purpose.
    Paused,
    /// Being paused (draining in-flight records).
    Draining,
}

/// One partition (or every partition of a topic) of one group.
///
/// Parsed from `GROUP:TOPIC:PARTITION` or `GROUP:TOPIC:*`; split from the
/// right, since topic names never contain `:`.
///
/// ```
/// use switchyard_lag::intents::Target;
/// let t: Target = "billing:orders:3".parse().unwrap();
/// assert_eq!((t.group.as_str(), t.topic.as_str(), t.partition), ("billing", "orders", Some(3)));
/// assert_eq!("a:b:c:orders:*".parse::<Target>().unwrap().group, "a:b:c");
/// assert!("orders".parse::<Target>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    /// Group id.
    pub group: String,
    /// Topic.
    pub topic: String,
    /// Partition; `None`: every partition of the topic.
    pub partition: Option<i32>,
}

impl FromStr for Target {
    type Err = LagError;
    fn from_str(s: &str) -> Result<Target, LagError> {
        let bad = || LagError::Target(s.to_string());
        let mut it = s.rsplitn(3, ':');
        let (p, topic, group) = (
            it.next().ok_or_else(bad)?,
            it.next().ok_or_else(bad)?,
            it.next().ok_or_else(bad)?,
        );
        if group.is_empty() || topic.is_empty() {
            return Err(bad());
        }
        let partition = if p == "*" {
            None
        } else {
            Some(p.parse().map_err(|_| bad())?)
        };
        Ok(Target {
            group: group.into(),
            topic: topic.into(),
            partition,
        })
    }
}

/// The partitions known, from outside, to be paused or draining.
///
/// ```
/// use switchyard_lag::intents::{Intent, Intents};
/// let mut i = Intents::default();
/// i.pause("g:orders:*".parse().unwrap());
/// i.drain("g:orders:2".parse().unwrap());
/// assert_eq!(i.intent("g", "orders", 0), Intent::Paused);
/// assert_eq!(i.intent("g", "orders", 2), Intent::Draining);
/// assert_eq!(i.intent("other", "orders", 0), Intent::None);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Intents {
    paused: HashSet<Target>,
    draining: HashSet<Target>,
}

impl Intents {
    /// Mark a target paused.
    pub fn pause(&mut self, t: Target) {
        self.paused.insert(t);
    }

    /// Mark a target draining.
    pub fn drain(&mut self, t: Target) {
        self.draining.insert(t);
    }

    /// The intent for one partition; draining wins over paused (it is the newer word).
    pub fn intent(&self, group: &str, topic: &str, partition: i32) -> Intent {
        let covers = |set: &HashSet<Target>| {
            set.iter().any(|t| {
                t.group == group && t.topic == topic && t.partition.is_none_or(|p| p == partition)
            })
        };
        if covers(&self.draining) {
            Intent::Draining
        } else if covers(&self.paused) {
            Intent::Paused
        } else {
            Intent::None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_and_reject() {
        assert!("g:t:x".parse::<Target>().is_err());
        assert!(":t:1".parse::<Target>().is_err());
        assert_eq!("g:t:*".parse::<Target>().unwrap().partition, None);
    }
}
