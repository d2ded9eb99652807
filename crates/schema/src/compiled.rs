//! What every deserializer of this crate shares: the registry, and a bounded
//! cache of schemas compiled for its format (parsed Avro schemas, Protobuf
//! descriptor pools, JSON Schema validators), keyed by schema id.
//!
//! The hot path of a record is one lookup in that cache; a miss asks the
//! registry (its own cache first, then a fetch) and compiles. A schema that
//! does not compile is cached as that failure too (ids are immutable); an
//! unknown id or an unavailable registry is not cached here, so the next
//! record asks again.

use std::sync::Arc;

use crate::error::{FailureKind, SchemaError};
use crate::registry::{RegisteredSchema, SchemaRegistry, SchemaType};

pub(crate) struct Compiled<V> {
    pub(crate) registry: SchemaRegistry,
    cache: quick_cache::sync::Cache<u32, Result<Arc<V>, SchemaError>>,
}

impl<V: Send + Sync + 'static> Compiled<V> {
    pub(crate) fn new(registry: SchemaRegistry) -> Self {
        let capacity = registry.cache_capacity();
        Compiled {
            registry,
            cache: quick_cache::sync::Cache::new(capacity),
        }
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

    /// Count a failure in the registry's metrics and hand it on.
    pub(crate) fn failed(&self, e: SchemaError) -> SchemaError {
        self.registry.shared_metrics().failed(e.kind);
        e
    }
}
