//! The wall clock and the topic-partition pair every crate of the
//! workspace shares: one definition of each, here at the bottom of the
//! crate graph (every other crate depends on `switchyard-config`).

/// A partition: (topic, partition).
pub type Tp = (String, i32);

/// Now, in milliseconds since the Unix epoch (0 if the clock is before it).
///
/// ```
/// assert!(switchyard_config::now_ms() > 1_700_000_000_000);
/// ```
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
