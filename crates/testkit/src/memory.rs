//! The memory of this process as the kernel reports it, for tests and
//! benchmarks that check or print it.
//!
//! ```
//! let now = switchyard_testkit::memory::resident_mb();
//! assert!(now > 0.0 && switchyard_testkit::memory::peak_resident_mb() >= now);
//! ```

/// Resident memory now (`VmRSS`), in MB; 0 where `/proc` is missing.
pub fn resident_mb() -> f64 {
    status_mb("VmRSS:")
}

/// Peak resident memory so far (`VmHWM`), in MB; 0 where `/proc` is missing.
pub fn peak_resident_mb() -> f64 {
    status_mb("VmHWM:")
}

fn status_mb(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}
