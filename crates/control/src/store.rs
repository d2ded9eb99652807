//! Where desired state lives: the [`Store`] trait, which the Kafka control
//! topic (`kafka_store`), Redis (`redis_store`) and a watched file
//! (`file_source`, read-only) implement. Writes are compare-and-set:
//! [`Store::write`] reads the current state, decides the next document with
//! [`next_write`] (version + 1 naming the current one as `prev_version`)
//! and puts it only if the state is still the one it read
//! ([`Store::put_if`]).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::error::{ControlError, Result};
use crate::log::next_write;
use crate::model::{now_ms, DesiredState};

pub use crate::model::Change;

/// How many times [`Store::write`] puts a change before it gives up.
pub const WRITE_ATTEMPTS: u32 = 10;

/// A desired-state store. Calls block (run them off the async runtime).
pub trait Store: Send + Sync + 'static {
    /// The current state of `app`: version 0 when nothing was written,
    /// [`DesiredState::unreadable`] when its stored document cannot be read.
    fn read(&self, app: &str) -> Result<DesiredState>;

    /// Put `next` if `next.prev_version` is still the current version;
    /// `Ok(false)` when another write won (or this one did not land).
    fn try_put(&self, next: &DesiredState) -> Result<bool>;

    /// Put `next` if the current state is still `base` (the state `next`
    /// was made from); `Ok(false)` when it is not, or when the put did not
    /// land. Stores that can compare whole documents do (a tombstone can
    /// bring a version number back); the default compares versions
    /// ([`Store::try_put`]).
    fn put_if(&self, base: &DesiredState, next: &DesiredState) -> Result<bool> {
        let _ = base;
        self.try_put(next)
    }

    /// A receiver of every state of `app` (starts after the current state
    /// is read; `None` until then).
    fn watch(&self, app: &str) -> Result<watch::Receiver<Option<DesiredState>>>;

    /// For logs: what this store is.
    fn describe(&self) -> String;

    /// Compare-and-set write. With `expected`, a write based on another
    /// version fails with [`ControlError::Conflict`]; without, a lost race is
    /// retried on top of the winner. A put that did not land while the
    /// version stayed (a writer fenced by another that wrote nothing) is
    /// retried either way, up to [`WRITE_ATTEMPTS`] puts in all, with a
    /// growing random pause between them. An unreadable state or a version
    /// at `u64::MAX` is not written over (see [`next_write`]).
    fn write(
        &self,
        app: &str,
        expected: Option<u64>,
        issuer: Option<&str>,
        change: Change<'_>,
    ) -> Result<DesiredState> {
        if app.trim().is_empty() {
            return Err(ControlError::Invalid("the app name is blank".into()));
        }
        let mut attempt = 0;
        loop {
            let current = self.read(app)?;
            let next = next_write(&current, expected, issuer, now_ms(), change)?;
            if self.put_if(&current, &next)? {
                tracing::info!(app, version = next.version, store = %self.describe(), "desired state written");
                return Ok(next);
            }
            attempt += 1;
            tracing::info!(app, base = current.version, attempt, "compare-and-set lost");
            if attempt >= WRITE_ATTEMPTS {
                let now = self.read(app)?.version;
                return Err(ControlError::Conflict {
                    app: app.into(),
                    expected: expected.unwrap_or(current.version),
                    current: now,
                });
            }
            std::thread::sleep(backoff(attempt));
        }
    }
}

/// A random pause before put number `attempt + 1`: up to 10 ms times
/// 2^attempt, at most 400 ms (random, so that writers that fence each other
/// fall out of step).
pub fn backoff(attempt: u32) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(attempt);
    let cap = (10u64 << attempt.min(6)).min(400);
    Duration::from_millis(1 + h.finish() % cap)
}

/// A shared store.
pub type SharedStore = Arc<dyn Store>;
