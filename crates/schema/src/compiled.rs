//! What every deserializer of this crate shares: the registry, and a bounded
//! cache of schemas compiled for its format (parsed Avro schemas, Protobuf
//! descriptor pools, JSON Schema validators), keyed by schema id.
//!
//! The hot path of a record is one lookup in that cache; a miss asks the
//! registry (its own cache first, then a fetch) and compiles. A schema that
//! does not compile is cached as that failure too (ids are immutable); an
//! unknown id or an unavailable registry is not cached here, so the next
//! record asks again.
//!
//! The runtime may decode a record twice when the first try fails (its
//! inline path gives up on the record and its full path decodes it again
//! before applying the decode-error policy). A failure is therefore
//! remembered for [`REPLAY_WINDOW`] by the record's buffer (address, and the
//! bytes themselves, so a buffer reused for another record never matches):
//! the second call answers the same failure at once, without counting it
//! again or waiting for the registry a second time.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::error::{FailureKind, SchemaError};
use crate::registry::{RegisteredSchema, SchemaRegistry, SchemaType};

/// How long a failure is answered again for the same buffer.
pub(crate) const REPLAY_WINDOW: Duration = Duration::from_secs(2);
/// Most failures remembered.
const REPLAY_SLOTS: usize = 16;

/// A recent failure: (buffer address, its bytes, when, the failure).
type Failed = (usize, Vec<u8>, Instant, SchemaError);

pub(crate) struct Compiled<V> {
    pub(crate) registry: SchemaRegistry,
    cache: quick_cache::sync::Cache<u32, Result<Arc<V>, SchemaError>>,
    /// Recent failures.
    recent: Mutex<VecDeque<Failed>>,
    /// Entries in `recent`: the hot path reads this, not the lock.
    recent_len: AtomicUsize,
}

impl<V: Send + Sync + 'static> Compiled<V> {
    pub(crate) fn new(registry: SchemaRegistry) -> Self {
        let capacity = registry.cache_capacity();
        Compiled {
            registry,
            cache: quick_cache::sync::Cache::new(capacity),
            recent: Mutex::new(VecDeque::new()),
            recent_len: AtomicUsize::new(0),
        }
    }

    /// Decode `data` with `decode`, counting a failure once per record (see
    /// the module's doc).
    pub(crate) fn decode<T>(
        &self,
        data: Option<&[u8]>,
        decode: impl FnOnce() -> Result<T, SchemaError>,
    ) -> Result<T, SchemaError> {
        if let (Some(data), true) = (data, self.recent_len.load(Ordering::Relaxed) > 0) {
            if let Some(e) = self.replay(data) {
                return Err(e);
            }
        }
        decode().inspect_err(|e| {
            self.registry.shared_metrics().failed(e.kind);
            if let Some(data) = data {
                let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
                recent.retain(|r| r.2.elapsed() < REPLAY_WINDOW);
                if recent.len() >= REPLAY_SLOTS {
                    recent.pop_front();
                }
                recent.push_back((
                    data.as_ptr() as usize,
                    data.to_vec(),
                    Instant::now(),
                    e.clone(),
                ));
                self.recent_len.store(recent.len(), Ordering::Relaxed);
            }
        })
    }

    fn replay(&self, data: &[u8]) -> Option<SchemaError> {
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        recent.retain(|r| r.2.elapsed() < REPLAY_WINDOW);
        self.recent_len.store(recent.len(), Ordering::Relaxed);
        recent
            .iter()
            .find(|r| r.0 == data.as_ptr() as usize && r.1 == data)
            .map(|r| r.3.clone())
    }

    /// The compiled schema `id`, compiling it with `compile` on a miss after
    /// checking that it is a `want` schema.
    pub(crate) fn get(
        &self,
        id: u32,
        want: SchemaType,
        compile: impl FnOnce(&RegisteredSchema) -> Result<V, SchemaError>,
    ) -> Result<Arc<V>, SchemaError> {
        if let Some(hit) = self.cache.get(&id) {
            return hit;
        }
        let raw = self.registry.get_blocking(id)?;
        let compiled = if raw.schema_type != want {
            Err(SchemaError::new(
                FailureKind::InvalidSchema,
                format!(
                    "schema id {id} is a {} schema, this deserializer reads {want}",
                    raw.schema_type
                ),
            ))
        } else {
            compile(&raw).map(Arc::new).map_err(|mut e| {
                e.detail = format!("schema id {id}: {}", e.detail);
                e
            })
        };
        self.cache.insert(id, compiled.clone());
        compiled
    }
}
