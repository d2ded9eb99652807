//! Waiting for conditions with a deadline.
//!
//! Tests never sleep to let something happen: they poll the condition that says it happened, every 10 ms, and fail
//! with a message naming what was awaited once the deadline passes. Everything else in the testkit waits this way.

use std::time::{Duration, Instant};

/// How often [`wait_until`] and [`wait_for`] poll their condition.
pub const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// Poll `cond` every 10 ms until it returns true or `timeout` passes; panics with `what` and the elapsed time on
/// timeout.
///
/// `cond` is always called at least once, and once more at the deadline, so a zero timeout still checks it.
pub fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    wait_for(what, timeout, || cond().then_some(()))
}

/// Like [`wait_until`], but returns the value once `f` returns `Some`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    match poll_until(timeout, &mut f) {
        Ok(value) => value,
        Err(elapsed) => {
            panic!("timed out after {elapsed:.2?} (limit {timeout:?}) waiting for {what}")
        }
    }
}

/// Poll `f` every 10 ms until it returns `Some` or `timeout` passes; `Err(elapsed)` on timeout.
///
/// The non-panicking core of [`wait_for`], for callers that want to report a timeout their own way.
pub fn poll_until<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Result<T, Duration> {
    let start = Instant::now();
    let deadline = start + timeout;
    loop {
        if let Some(value) = f() {
            return Ok(value);
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(now - start);
        }
        std::thread::sleep(POLL_INTERVAL.min(deadline - now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_once_the_condition_holds() {
        let mut calls = 0;
        let got = wait_for("third call", Duration::from_secs(5), || {
            calls += 1;
            (calls == 3).then_some(calls)
        });
        assert_eq!(got, 3);
    }

    #[test]
    #[should_panic(expected = "waiting for never")]
    fn panics_with_what_on_timeout() {
        wait_until("never", Duration::from_millis(30), || false);
    }

    #[test]
    fn poll_until_reports_elapsed() {
        let elapsed = poll_until::<()>(Duration::from_millis(20), || None).unwrap_err();
        assert!(elapsed >= Duration::from_millis(20));
    }
}
