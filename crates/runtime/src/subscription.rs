//! What a listener consumes: topics or a pattern in a consumer group, or
//! partitions assigned without a group. The builder takes it
//! (`ListenerBuilder::topics` and its
//! siblings) and the handle reports it.

/// What a listener consumes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subscription {
    /// Named topics, in a consumer group.
    Topics(Vec<String>),
    /// Every topic matching a regex, in a consumer group; topics created later
    /// are picked up at the next metadata refresh.
    Pattern(String),
    /// Standalone: explicit partitions, no group membership, no rebalance. An
    /// empty partition list means every partition of the topic, including
    /// partitions added later.
    Assign(Vec<(String, Vec<i32>)>),
}
