//! Kafka client plumbing shared by the testkit's helpers.
//!
//! [`client_config`] is the base configuration of every client the testkit creates (short timeouts, so a broken
//! broker fails a test in seconds rather than minutes), and [`block_on`] drives rdkafka's futures (admin results,
//! delivery reports) to completion on the calling thread with a deadline. rdkafka resolves those futures from its own
//! background threads, so no async runtime is needed.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;

/// Socket timeout of testkit clients, in milliseconds.
pub const SOCKET_TIMEOUT_MS: &str = "10000";
/// Delivery timeout of testkit producers, in milliseconds.
pub const MESSAGE_TIMEOUT_MS: &str = "10000";
/// How long testkit helpers wait for a single broker request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The base configuration of testkit clients: `bootstrap.servers`, `socket.timeout.ms` 10 s and quick
/// reconnects. Producer- and consumer-only properties are added by the helpers that create those clients.
pub fn client_config(bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("socket.timeout.ms", SOCKET_TIMEOUT_MS)
        .set("reconnect.backoff.ms", "20")
        .set("reconnect.backoff.max.ms", "500");
    config
}

struct ThreadWaker(Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// Run `future` to completion on this thread; `None` if it is not ready within `timeout`.
///
/// The thread parks between polls and is woken by the future's waker (or the deadline), so this is a wait on a
/// condition, not a sleep.
pub fn block_on<F: Future>(future: F, timeout: Duration) -> Option<F::Output> {
    let deadline = Instant::now() + timeout;
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return Some(output);
        }
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        std::thread::park_timeout(deadline - now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_on_ready_and_pending() {
        assert_eq!(block_on(async { 7 }, Duration::from_millis(10)), Some(7));
        assert_eq!(
            block_on(std::future::pending::<()>(), Duration::from_millis(20)),
            None
        );
    }
}
