//! Where desired state lives: the [`Store`] trait over the Kafka control
//! topic ([`crate::kafka_store`]), Redis ([`crate::redis_store`]) and a
//! watched file ([`crate::file_source`], read-only). Writes are
//! compare-and-set: [`Store::write`] reads the current version, applies a
//! change, and puts version + 1 naming the current one as `prev_version`.

use std::sync::Arc;

use tokio::sync::watch;

use crate::error::{ControlError, Result};
use crate::model::{now_ms, DesiredState};

/// A change to the desired state (validated; an error rejects the write).
pub type Change<'a> = &'a dyn Fn(&mut DesiredState) -> Result<()>;

/// A desired-state store. Calls block (run them off the async runtime).
pub trait Store: Send + Sync + 'static {
    /// The current state of `app` (version 0 when nothing was written).
    fn read(&self, app: &str) -> Result<DesiredState>;

    /// Put `next` if `next.prev_version` is still the current version;
    /// `Ok(false)` when another write won.
    fn try_put(&self, next: &DesiredState) -> Result<bool>;

    /// A receiver of every accepted state of `app` (starts after the
    /// current state is read; `None` until then).
    fn watch(&self, app: &str) -> Result<watch::Receiver<Option<DesiredState>>>;

    /// For logs: what this store is.
    fn describe(&self) -> String;

    /// Compare-and-set write. With `expected`, a write based on another
    /// version fails with [`ControlError::Conflict`]; without, a lost race is
    /// retried on top of the winner (up to 5 times).
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
        let mut current = self.read(app)?;
        for _ in 0..5 {
            if let Some(e) = expected.filter(|e| *e != current.version) {
                return Err(ControlError::Conflict {
                    app: app.into(),
                    expected: e,
                    current: current.version,
                });
            }
            let mut next = current.next(issuer, now_ms());
            change(&mut next)?;
            if self.try_put(&next)? {
                tracing::info!(app, version = next.version, store = %self.describe(), "desired state written");
                return Ok(next);
            }
            let base = current.version;
            current = self.read(app)?;
            tracing::info!(app, base, now = current.version, "compare-and-set lost");
            if expected.is_some() {
                return Err(ControlError::Conflict {
                    app: app.into(),
                    expected: base,
                    current: current.version,
                });
            }
        }
        Err(ControlError::Conflict {
            app: app.into(),
            expected: current.version,
            current: current.version,
        })
    }
}

/// A shared store.
pub type SharedStore = Arc<dyn Store>;
