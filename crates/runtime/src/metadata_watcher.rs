//! Watching topic metadata for partitions added after start, for standalone
//! listeners (explicit assignment, no group): a plain standalone consumer
//! (Java's `assign()`) never sees a partition added later; this one assigns
//! it within one refresh interval.
//!
//! The watcher is pure: it is fed partition counts by a [`MetadataSource`]
//! (the broker in production, a scripted source in tests) and answers which
//! partitions are new.
//!
//! ```
//! use switchyard_runtime::metadata_watcher::MetadataWatcher;
//! let mut w = MetadataWatcher::new([("t".to_string(), 2)]);
//! assert!(w.observe("t", 2).is_empty());
//! assert_eq!(w.observe("t", 4), vec![2, 3]);
//! assert!(w.observe("t", 4).is_empty());
//! ```

use std::collections::BTreeMap;

/// Where partition counts come from: the broker by default; a listener can be
/// given another source (a registry, or a scripted one in tests).
pub trait MetadataSource: Send + Sync {
    /// Current partition count of `topic`, or `None` if it cannot be read now.
    fn partition_count(&self, topic: &str) -> Option<i32>;
}

/// Remembers the partition count of every watched topic.
#[derive(Debug, Default, Clone)]
pub struct MetadataWatcher {
    known: BTreeMap<String, i32>,
}

impl MetadataWatcher {
    /// Watch `topics` with their current partition counts.
    pub fn new(topics: impl IntoIterator<Item = (String, i32)>) -> Self {
        MetadataWatcher {
            known: topics.into_iter().collect(),
        }
    }

    /// The topic now has `count` partitions: which ones are new?
    pub fn observe(&mut self, topic: &str, count: i32) -> Vec<i32> {
        let known = self.known.entry(topic.to_string()).or_insert(count);
        if count <= *known {
            return Vec::new();
        }
        let new = (*known..count).collect();
        *known = count;
        new
    }

    /// Ask `source` about every watched topic; returns the new (topic, partition)s.
    pub fn poll(&mut self, source: &dyn MetadataSource) -> Vec<(String, i32)> {
        let topics: Vec<String> = self.known.keys().cloned().collect();
        let mut new = Vec::new();
        for t in topics {
            if let Some(n) = source.partition_count(&t) {
                new.extend(self.observe(&t, n).into_iter().map(|p| (t.clone(), p)));
            }
        }
        new
    }

    /// Watched topics.
    pub fn topics(&self) -> impl Iterator<Item = &str> {
        self.known.keys().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Scripted(std::sync::atomic::AtomicI32);
    impl MetadataSource for Scripted {
        fn partition_count(&self, _: &str) -> Option<i32> {
            Some(self.0.load(std::sync::atomic::Ordering::SeqCst))
        }
    }

    #[test]
    fn new_partitions_are_reported_once() {
        let src = Scripted(1.into());
        let mut w = MetadataWatcher::new([("a".to_string(), 1)]);
        assert!(w.poll(&src).is_empty());
        src.0.store(3, std::sync::atomic::Ordering::SeqCst);
        assert_eq!(
            w.poll(&src),
            vec![("a".to_string(), 1), ("a".to_string(), 2)]
        );
        assert!(w.poll(&src).is_empty());
        src.0.store(2, std::sync::atomic::Ordering::SeqCst); // a shrinking count (metadata glitch) is ignored
        assert!(w.poll(&src).is_empty());
    }
}
