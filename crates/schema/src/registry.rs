//! The Schema Registry client: schemas fetched by id with the Confluent API
//! (`GET /schemas/ids/{id}`, references through
//! `GET /subjects/{subject}/versions/{version}`), cached in a bounded cache.
//!
//! * Schema ids are immutable, so a fetched schema is cached for good, up to
//!   [`RegistryConfig::cache_capacity`] schemas (least recently used go
//!   first). An id the registry does not know is remembered for
//!   [`RegistryConfig::unknown_id_ttl`], so a burst of such records asks
//!   once.
//! * The registry URLs are tried in order for every request; a URL that
//!   cannot be reached, times out, answers 5xx, 429, 401 or 403 passes the
//!   request to the next. When none answers, the request is retried with
//!   exponential backoff ([`RetryBudget`]) until
//!   [`RetryBudget::give_up_after`]; then it fails as
//!   [`FailureKind::RegistryUnavailable`]. A 404 is final:
//!   [`FailureKind::UnknownSchemaId`].
//! * Credentials (basic or bearer) go into the `Authorization` header and
//!   nowhere else: `Debug` shows `<redacted>`, and a URL with
//!   `user:password@` is turned into basic credentials and stripped before it
//!   is stored, logged or shown in an error.
//! * TLS is rustls (through reqwest), with the platform's roots, extra roots
//!   from PEM, or only the given roots, and an optional client identity.
//! * Requests run on the client's own thread (a one-thread tokio runtime), so
//!   a fetch never needs the caller's runtime and concurrent requests for one
//!   id share a single fetch.
//!
//! The deserializers call [`SchemaRegistry::get_blocking`]: a cache lookup,
//! and on a miss a wait for the fetch on the client's thread, inside
//! `tokio::task::block_in_place` when the caller is a worker of a
//! multi-thread tokio runtime (the listener's workers), so the runtime moves
//! its other tasks to another thread meanwhile. The listener's poll thread is
//! never involved: it keeps polling, so the group keeps the partition while a
//! record waits for the registry. [`SchemaRegistry::prefetch`] fills the cache
//! ahead, from async code.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::{BoxFuture, FutureExt, Shared};
use reqwest::header::{HeaderValue, AUTHORIZATION};
use reqwest::{StatusCode, Url};
use serde::Deserialize;

use crate::error::{FailureKind, SchemaError};

/// A secret string: shown as `<redacted>` by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wrap a secret.
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    /// The secret itself (only for building the request header).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// How the client authenticates to the registry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Credentials {
    /// No `Authorization` header.
    #[default]
    None,
    /// HTTP basic authentication (Confluent Cloud: the API key and secret).
    Basic {
        /// User name or API key.
        username: String,
        /// Password or API secret.
        password: Secret,
    },
    /// `Authorization: Bearer <token>`.
    Bearer(Secret),
}

impl Credentials {
    /// Basic credentials.
    pub fn basic(username: impl Into<String>, password: impl Into<String>) -> Self {
        Credentials::Basic {
            username: username.into(),
            password: Secret::new(password),
        }
    }

    /// A bearer token.
    pub fn bearer(token: impl Into<String>) -> Self {
        Credentials::Bearer(Secret::new(token))
    }

    fn header(&self) -> Option<HeaderValue> {
        use base64::Engine;
        let text = match self {
            Credentials::None => return None,
            Credentials::Basic { username, password } => format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD
                    .encode(format!("{username}:{}", password.expose()))
            ),
            Credentials::Bearer(token) => format!("Bearer {}", token.expose()),
        };
        let mut value = HeaderValue::from_str(&text).ok()?;
        value.set_sensitive(true);
        Some(value)
    }
}

/// TLS settings (rustls). The default trusts the platform's roots.
#[derive(Clone, Default)]
pub struct TlsConfig {
    /// Extra trusted root certificates (PEM, one or more).
    pub ca_pem: Option<Vec<u8>>,
    /// Trust only `ca_pem`, not the platform's roots.
    pub only_ca: bool,
    /// A client certificate (chain) and its private key, both PEM, for mutual TLS.
    pub identity_pem: Option<(Vec<u8>, Secret)>,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConfig")
            .field("ca_pem", &self.ca_pem.as_ref().map(|p| p.len()))
            .field("only_ca", &self.only_ca)
            .field(
                "identity_pem",
                &self.identity_pem.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// How long and how patiently an unreachable registry is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryBudget {
    /// Wait after the first round of URLs failed; doubles every round.
    pub initial_backoff: Duration,
    /// Upper bound of the wait.
    pub max_backoff: Duration,
    /// Give up (the record goes to the failure policy as
    /// `registry_unavailable`) once this much time has passed; `None` waits
    /// for the registry forever.
    pub give_up_after: Option<Duration>,
}

impl Default for RetryBudget {
    fn default() -> Self {
        RetryBudget {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            give_up_after: Some(Duration::from_secs(60)),
        }
    }
}

/// Settings of a [`SchemaRegistry`].
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// Base URLs, tried in order (for Apicurio: `.../apis/ccompat/v7`).
    pub urls: Vec<String>,
    /// Authentication.
    pub credentials: Credentials,
    /// TLS.
    pub tls: TlsConfig,
    /// Timeout of one HTTP request (connection included).
    pub request_timeout: Duration,
    /// Timeout of establishing a connection.
    pub connect_timeout: Duration,
    /// Most schemas cached (raw and, per deserializer, compiled).
    pub cache_capacity: usize,
    /// How long an id the registry does not know is answered from memory.
    pub unknown_id_ttl: Duration,
    /// Retries while no registry answers.
    pub retry: RetryBudget,
}

impl RegistryConfig {
    /// Settings for the registries at `urls` (tried in order), with defaults:
    /// no credentials, platform roots, 5 s requests, 2 s connects, 1,000
    /// schemas, unknown ids remembered 5 s, registry retried for 60 s.
    pub fn new<S: Into<String>>(urls: impl IntoIterator<Item = S>) -> Self {
        RegistryConfig {
            urls: urls.into_iter().map(Into::into).collect(),
            credentials: Credentials::None,
            tls: TlsConfig::default(),
            request_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(2),
            cache_capacity: 1000,
            unknown_id_ttl: Duration::from_secs(5),
            retry: RetryBudget::default(),
        }
    }

    /// With these credentials.
    pub fn with_credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = credentials;
        self
    }

    /// With these TLS settings.
    pub fn with_tls(mut self, tls: TlsConfig) -> Self {
        self.tls = tls;
        self
    }

    /// With this retry budget.
    pub fn with_retry(mut self, retry: RetryBudget) -> Self {
        self.retry = retry;
        self
    }

    /// With this cache bound.
    pub fn with_cache_capacity(mut self, capacity: usize) -> Self {
        self.cache_capacity = capacity;
        self
    }

    /// With this request timeout.
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }
}

/// Why a [`SchemaRegistry`] could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// No URL.
    #[error("no schema registry URL")]
    NoUrl,
    /// A URL that does not parse or is not http(s).
    #[error("invalid schema registry URL {url}: {reason}")]
    Url {
        /// The URL, without credentials.
        url: String,
        /// Why.
        reason: String,
    },
    /// Credentials both in a URL and in the settings, or different in two URLs.
    #[error("conflicting credentials: {0}")]
    Credentials(String),
    /// Bad PEM or an HTTP client that cannot be built.
    #[error("TLS or HTTP client: {0}")]
    Client(String),
}

/// The serialization format of a registered schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaType {
    /// Avro (the registry's default when `schemaType` is absent).
    Avro,
    /// Protobuf.
    Protobuf,
    /// JSON Schema.
    Json,
}

impl SchemaType {
    fn parse(s: Option<&str>) -> Result<SchemaType, String> {
        match s.map(str::to_ascii_uppercase).as_deref() {
            None | Some("AVRO") => Ok(SchemaType::Avro),
            Some("PROTOBUF") => Ok(SchemaType::Protobuf),
            Some("JSON") => Ok(SchemaType::Json),
            Some(other) => Err(format!("unknown schemaType {other}")),
        }
    }
}

impl std::fmt::Display for SchemaType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SchemaType::Avro => "AVRO",
            SchemaType::Protobuf => "PROTOBUF",
            SchemaType::Json => "JSON",
        })
    }
}

/// A schema as the registry holds it, with its references resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredSchema {
    /// The id (for a reference fetched by subject and version, the id the
    /// registry reported, 0 if none).
    pub id: u32,
    /// Its format.
    pub schema_type: SchemaType,
    /// The schema text (for Protobuf: `.proto` source or a base64-encoded
    /// `FileDescriptorProto`, as registered).
    pub schema: String,
    /// The schemas it references: (the name it imports them by, the schema).
    pub references: Vec<(String, Arc<RegisteredSchema>)>,
}

impl RegisteredSchema {
    /// Every referenced schema, depth first, each once, dependencies before
    /// the schemas that use them: (import name, schema).
    pub fn references_flat(&self) -> Vec<(String, Arc<RegisteredSchema>)> {
        fn walk(
            s: &RegisteredSchema,
            out: &mut Vec<(String, Arc<RegisteredSchema>)>,
            seen: &mut std::collections::HashSet<String>,
        ) {
            for (name, r) in &s.references {
                if seen.insert(name.clone()) {
                    walk(r, out, seen);
                    out.push((name.clone(), r.clone()));
                }
            }
        }
        let mut out = Vec::new();
        walk(self, &mut out, &mut Default::default());
        out
    }
}

/// Counters of a registry client and of the deserializers built on it.
#[derive(Debug, Default)]
pub struct SchemaMetrics {
    requests_ok: AtomicU64,
    requests_not_found: AtomicU64,
    requests_failed: AtomicU64,
    fetch_retries: AtomicU64,
    cache_misses: AtomicU64,
    failures: [AtomicU64; FailureKind::ALL.len()],
}

/// A copy of [`SchemaMetrics`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetricsSnapshot {
    /// Registry requests answered with a schema.
    pub requests_ok: u64,
    /// Registry requests answered 404.
    pub requests_not_found: u64,
    /// Registry requests that failed (unreachable, timeout, 5xx, 401, ...).
    pub requests_failed: u64,
    /// Rounds of URLs retried after a backoff.
    pub fetch_retries: u64,
    /// Lookups of a schema not in the cache.
    pub cache_misses: u64,
    /// Records that failed to decode, by kind (in [`FailureKind::ALL`] order).
    pub failures: Vec<(FailureKind, u64)>,
}

impl MetricsSnapshot {
    /// Failures of `kind`.
    pub fn failures_of(&self, kind: FailureKind) -> u64 {
        self.failures
            .iter()
            .find(|(k, _)| *k == kind)
            .map_or(0, |(_, n)| *n)
    }

    /// The counters in the Prometheus text format:
    /// `switchyard_schema_decode_failures_total{reason}`,
    /// `switchyard_schema_registry_requests_total{outcome}`,
    /// `switchyard_schema_registry_retries_total`,
    /// `switchyard_schema_cache_misses_total`, each with its `# HELP` and
    /// `# TYPE` lines, written by the workspace's one writer of the format
    /// (`switchyard_config::PrometheusText`).
    pub fn prometheus(&self) -> String {
        use switchyard_runtime::config::prometheus::{MetricKind, PrometheusText};
        let mut out = PrometheusText::new();
        let name = "switchyard_schema_decode_failures_total";
        out.family(
            name,
            MetricKind::Counter,
            "Records that failed to decode against their schema, by reason.",
        );
        for (kind, n) in &self.failures {
            out.sample(name, &[("reason", kind.code())], *n);
        }
        let name = "switchyard_schema_registry_requests_total";
        out.family(
            name,
            MetricKind::Counter,
            "Schema registry requests, by outcome.",
        );
        for (outcome, n) in [
            ("ok", self.requests_ok),
            ("not_found", self.requests_not_found),
            ("failed", self.requests_failed),
        ] {
            out.sample(name, &[("outcome", outcome)], n);
        }
        let name = "switchyard_schema_registry_retries_total";
        out.family(
            name,
            MetricKind::Counter,
            "Rounds of registry URLs retried after a backoff.",
        );
        out.sample(name, &[], self.fetch_retries);
        let name = "switchyard_schema_cache_misses_total";
        out.family(
            name,
            MetricKind::Counter,
            "Lookups of a schema not in the cache.",
        );
        out.sample(name, &[], self.cache_misses);
        out.finish()
    }
}

impl SchemaMetrics {
    /// Count a record that failed with `kind`.
    pub fn failed(&self, kind: FailureKind) {
        self.failures[kind.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// A copy of the counters.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        MetricsSnapshot {
            requests_ok: get(&self.requests_ok),
            requests_not_found: get(&self.requests_not_found),
            requests_failed: get(&self.requests_failed),
            fetch_retries: get(&self.fetch_retries),
            cache_misses: get(&self.cache_misses),
            failures: FailureKind::ALL
                .iter()
                .map(|k| (*k, get(&self.failures[k.index()])))
                .collect(),
        }
    }
}

type Fetch = Shared<BoxFuture<'static, Result<Arc<RegisteredSchema>, SchemaError>>>;

struct Inner {
    urls: Vec<Url>,
    auth: Option<HeaderValue>,
    http: reqwest::Client,
    retry: RetryBudget,
    unknown_id_ttl: Duration,
    cache: quick_cache::sync::Cache<u32, Arc<RegisteredSchema>>,
    unknown: Mutex<HashMap<u32, Instant>>,
    inflight: Mutex<HashMap<u32, Fetch>>,
    metrics: Arc<SchemaMetrics>,
    capacity: usize,
}

/// The registry's own thread: a one-thread tokio runtime that runs every
/// request; it ends when the last clone of the client is dropped.
struct Thread {
    handle: tokio::runtime::Handle,
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// A Schema Registry client (cheap to clone; clones share the cache, the
/// metrics and the request thread).
#[derive(Clone)]
pub struct SchemaRegistry {
    inner: Arc<Inner>,
    thread: Arc<Thread>,
    config: Arc<RegistryConfig>,
}

impl std::fmt::Debug for SchemaRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchemaRegistry")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The wire form of `GET /schemas/ids/{id}` and
/// `GET /subjects/{subject}/versions/{version}`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SchemaResponse {
    schema: String,
    #[serde(default)]
    schema_type: Option<String>,
    #[serde(default)]
    references: Vec<Reference>,
    #[serde(default)]
    id: Option<u32>,
}

#[derive(Deserialize)]
struct Reference {
    name: String,
    subject: String,
    version: i64,
}

/// What one request came back with.
enum Answer {
    Found(SchemaResponse),
    NotFound(String),
    /// Try the next URL, then again after a backoff.
    Failed(String),
    /// A final answer that is not a schema (a body that does not parse).
    Invalid(String),
}

impl SchemaRegistry {
    /// A client with `config`; starts the client's request thread.
    pub fn new(config: RegistryConfig) -> Result<SchemaRegistry, ConfigError> {
        let (urls, from_urls) = parse_urls(&config.urls)?;
        let mut config = config;
        if let Some(creds) = from_urls {
            if config.credentials != Credentials::None && config.credentials != creds {
                return Err(ConfigError::Credentials(
                    "a URL carries user:password and other credentials are set".into(),
                ));
            }
            config.credentials = creds;
        }
        config.urls = urls.iter().map(|u| u.to_string()).collect();
        let http = build_client(&config)?;
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| ConfigError::Client(format!("registry runtime: {e}")))?;
        let handle = rt.handle().clone();
        std::thread::Builder::new()
            .name("schema-registry".into())
            .spawn(move || {
                rt.block_on(async {
                    let _ = stop_rx.await;
                });
            })
            .map_err(|e| ConfigError::Client(format!("registry thread: {e}")))?;
        let capacity = config.cache_capacity.max(1);
        Ok(SchemaRegistry {
            inner: Arc::new(Inner {
                urls,
                auth: config.credentials.header(),
                http,
                retry: config.retry,
                unknown_id_ttl: config.unknown_id_ttl,
                cache: quick_cache::sync::Cache::new(capacity),
                unknown: Mutex::new(HashMap::new()),
                inflight: Mutex::new(HashMap::new()),
                metrics: Arc::default(),
                capacity,
            }),
            thread: Arc::new(Thread {
                handle,
                _stop: stop_tx,
            }),
            config: Arc::new(config),
        })
    }

    /// The settings (URLs without credentials; `Debug` redacts secrets).
    pub fn config(&self) -> &RegistryConfig {
        &self.config
    }

    /// The counters of this client and its deserializers.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.inner.metrics.snapshot()
    }

    pub(crate) fn shared_metrics(&self) -> &SchemaMetrics {
        &self.inner.metrics
    }

    /// The cache bound.
    pub fn cache_capacity(&self) -> usize {
        self.inner.capacity
    }

    /// Schemas in the cache now.
    pub fn cached(&self) -> usize {
        self.inner.cache.len()
    }

    /// Put a schema into the cache as if fetched: for schemas known ahead
    /// (an offline consumer, tests, benchmarks). Ids are the registry's, so a
    /// preloaded id must be the registry's schema of that id.
    pub fn preload(&self, schema: RegisteredSchema) {
        self.inner.cache.insert(schema.id, Arc::new(schema));
    }

    /// The schema `id` from the cache, without asking the registry.
    pub fn cached_schema(&self, id: u32) -> Option<Arc<RegisteredSchema>> {
        self.inner.cache.get(&id)
    }

    /// The schema `id`: from the cache, or fetched (asynchronously).
    pub async fn schema(&self, id: u32) -> Result<Arc<RegisteredSchema>, SchemaError> {
        if let Some(s) = self.inner.cache.get(&id) {
            return Ok(s);
        }
        self.fetch(id).await
    }

    /// Fetch these schemas into the cache ahead of the records that use them;
    /// the first failure, if any.
    pub async fn prefetch(&self, ids: impl IntoIterator<Item = u32>) -> Result<(), SchemaError> {
        let all: Vec<_> = ids.into_iter().map(|id| self.schema(id)).collect();
        for r in futures::future::join_all(all).await {
            r?;
        }
        Ok(())
    }

    /// The schema `id` for synchronous code (the deserializers): from the
    /// cache, or fetched on the client's thread while this thread waits
    /// (inside `block_in_place` on a multi-thread tokio runtime). Waits at
    /// most the retry budget when no registry answers.
    pub fn get_blocking(&self, id: u32) -> Result<Arc<RegisteredSchema>, SchemaError> {
        if let Some(s) = self.inner.cache.get(&id) {
            return Ok(s);
        }
        let fetch = self.fetch(id);
        match tokio::runtime::Handle::try_current() {
            Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(|| futures::executor::block_on(fetch))
            }
            _ => futures::executor::block_on(fetch),
        }
    }

    /// One fetch per id at a time: later callers share the one in flight.
    fn fetch(&self, id: u32) -> Fetch {
        let inner = &self.inner;
        inner.metrics.cache_misses.fetch_add(1, Ordering::Relaxed);
        if let Some(err) = self.known_unknown(id) {
            return futures::future::ready(Err(err)).boxed().shared();
        }
        let mut inflight = inner.inflight.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(f) = inflight.get(&id) {
            return f.clone();
        }
        let task_inner = inner.clone();
        let task = self.thread.handle.spawn(async move {
            let result = task_inner.fetch_resolved(id).await;
            match &result {
                Ok(s) => task_inner.cache.insert(id, s.clone()),
                Err(e) if e.kind == FailureKind::UnknownSchemaId => {
                    let mut unknown = task_inner.unknown.lock().unwrap_or_else(|p| p.into_inner());
                    let ttl = task_inner.unknown_id_ttl;
                    unknown.retain(|_, at| at.elapsed() < ttl);
                    unknown.insert(id, Instant::now());
                }
                Err(_) => {}
            }
            task_inner
                .inflight
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&id);
            result
        });
        let fetch = async move {
            task.await.unwrap_or_else(|e| {
                Err(SchemaError::new(
                    FailureKind::RegistryUnavailable,
                    format!("schema registry client stopped: {e}"),
                ))
            })
        }
        .boxed()
        .shared();
        inflight.insert(id, fetch.clone());
        fetch
    }

    fn known_unknown(&self, id: u32) -> Option<SchemaError> {
        let unknown = self.inner.unknown.lock().unwrap_or_else(|p| p.into_inner());
        let at = unknown.get(&id)?;
        (at.elapsed() < self.inner.unknown_id_ttl).then(|| unknown_id(id, "remembered"))
    }
}

fn unknown_id(id: u32, detail: &str) -> SchemaError {
    SchemaError::new(
        FailureKind::UnknownSchemaId,
        format!("schema id {id} is not in the registry ({detail})"),
    )
}

/// Most levels of references followed.
const MAX_REFERENCE_DEPTH: usize = 16;

impl Inner {
    /// The schema `id` with its references.
    async fn fetch_resolved(&self, id: u32) -> Result<Arc<RegisteredSchema>, SchemaError> {
        let path = format!("schemas/ids/{id}");
        let response = match self.get(&path).await? {
            Ok(r) => r,
            Err(detail) => return Err(unknown_id(id, &detail)),
        };
        self.resolve(id, response, 0).await
    }

    fn resolve(
        &self,
        id: u32,
        response: SchemaResponse,
        depth: usize,
    ) -> BoxFuture<'_, Result<Arc<RegisteredSchema>, SchemaError>> {
        async move {
            let schema_type = SchemaType::parse(response.schema_type.as_deref())
                .map_err(|e| SchemaError::new(FailureKind::InvalidSchema, e))?;
            let mut references = Vec::with_capacity(response.references.len());
            for r in response.references {
                if depth >= MAX_REFERENCE_DEPTH {
                    return Err(SchemaError::new(
                        FailureKind::InvalidSchema,
                        format!("schema id {id}: references nested deeper than {MAX_REFERENCE_DEPTH}"),
                    ));
                }
                let path = format!(
                    "subjects/{}/versions/{}",
                    encode_path_segment(&r.subject),
                    r.version
                );
                let referenced = match self.get(&path).await? {
                    Ok(resp) => resp,
                    Err(detail) => {
                        return Err(SchemaError::new(
                            FailureKind::InvalidSchema,
                            format!(
                                "schema id {id} references {} version {} which the registry does not have ({detail})",
                                r.subject, r.version
                            ),
                        ))
                    }
                };
                let ref_id = referenced.id.unwrap_or(0);
                let resolved = match self.cache.get(&ref_id).filter(|_| ref_id != 0) {
                    Some(s) => s,
                    None => self.resolve(ref_id, referenced, depth + 1).await?,
                };
                references.push((r.name, resolved));
            }
            Ok(Arc::new(RegisteredSchema {
                id,
                schema_type,
                schema: response.schema,
                references,
            }))
        }
        .boxed()
    }

    /// GET `path` from the first registry that answers, retried with backoff
    /// within the budget: `Ok(Ok(response))`, `Ok(Err(detail))` for a 404,
    /// `Err` when unavailable or the answer is not a schema.
    async fn get(&self, path: &str) -> Result<Result<SchemaResponse, String>, SchemaError> {
        let start = Instant::now();
        let mut backoff = self.retry.initial_backoff;
        loop {
            let mut failures = Vec::new();
            for base in &self.urls {
                match self.get_once(base, path).await {
                    Answer::Found(r) => return Ok(Ok(r)),
                    Answer::NotFound(detail) => return Ok(Err(detail)),
                    Answer::Invalid(detail) => {
                        return Err(SchemaError::new(FailureKind::InvalidSchema, detail))
                    }
                    Answer::Failed(why) => {
                        tracing::warn!(url = %base, path, error = %why, "schema registry request failed");
                        failures.push(format!("{base}: {why}"));
                    }
                }
            }
            let elapsed = start.elapsed();
            if let Some(limit) = self.retry.give_up_after {
                if elapsed + backoff > limit {
                    return Err(SchemaError::new(
                        FailureKind::RegistryUnavailable,
                        format!(
                            "no schema registry answered GET {path} within {elapsed:.1?}: {}",
                            failures.join("; ")
                        ),
                    ));
                }
            }
            tokio::time::sleep(backoff).await;
            self.metrics.fetch_retries.fetch_add(1, Ordering::Relaxed);
            backoff = (backoff * 2).min(self.retry.max_backoff);
        }
    }

    async fn get_once(&self, base: &Url, path: &str) -> Answer {
        let url = match base.join(path) {
            Ok(u) => u,
            Err(e) => return Answer::Invalid(format!("cannot build the URL: {e}")),
        };
        let mut request = self.http.get(url).header(
            reqwest::header::ACCEPT,
            "application/vnd.schemaregistry.v1+json, application/json",
        );
        if let Some(auth) = &self.auth {
            request = request.header(AUTHORIZATION, auth.clone());
        }
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => {
                self.metrics.requests_failed.fetch_add(1, Ordering::Relaxed);
                return Answer::Failed(describe(&e));
            }
        };
        let status = response.status();
        let body = match response.bytes().await {
            Ok(b) => b,
            Err(e) => {
                self.metrics.requests_failed.fetch_add(1, Ordering::Relaxed);
                return Answer::Failed(describe(&e));
            }
        };
        if status == StatusCode::NOT_FOUND {
            self.metrics
                .requests_not_found
                .fetch_add(1, Ordering::Relaxed);
            return Answer::NotFound(format!("404: {}", snippet(&body)));
        }
        if !status.is_success() {
            self.metrics.requests_failed.fetch_add(1, Ordering::Relaxed);
            return Answer::Failed(format!("HTTP {status}: {}", snippet(&body)));
        }
        match serde_json::from_slice::<SchemaResponse>(&body) {
            Ok(r) => {
                self.metrics.requests_ok.fetch_add(1, Ordering::Relaxed);
                Answer::Found(r)
            }
            Err(e) => Answer::Invalid(format!("registry answer to {path} is not a schema: {e}")),
        }
    }
}

/// A reqwest error without anything secret (URLs never carry credentials
/// here), with its causes, which say what actually failed.
fn describe(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    text.chars().take(200).collect()
}

fn encode_path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Parse the URLs (a trailing `/` is added so paths join below them) and take
/// credentials out of them.
fn parse_urls(urls: &[String]) -> Result<(Vec<Url>, Option<Credentials>), ConfigError> {
    if urls.is_empty() {
        return Err(ConfigError::NoUrl);
    }
    let mut creds: Option<Credentials> = None;
    let mut out = Vec::with_capacity(urls.len());
    for raw in urls {
        let mut url = Url::parse(raw.trim()).map_err(|e| ConfigError::Url {
            url: strip_userinfo(raw),
            reason: e.to_string(),
        })?;
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err(ConfigError::Url {
                url: strip_userinfo(raw),
                reason: "expected http or https".into(),
            });
        }
        if !url.username().is_empty() {
            let username = decode_percent(url.username());
            let password = decode_percent(url.password().unwrap_or(""));
            let c = Credentials::basic(username, password);
            if creds.as_ref().is_some_and(|prev| *prev != c) {
                return Err(ConfigError::Credentials(
                    "two URLs carry different user:password".into(),
                ));
            }
            creds = Some(c);
            let _ = url.set_username("");
            let _ = url.set_password(None);
        }
        if !url.path().ends_with('/') {
            let path = format!("{}/", url.path());
            url.set_path(&path);
        }
        out.push(url);
    }
    Ok((out, creds))
}

fn strip_userinfo(raw: &str) -> String {
    match (raw.find("://"), raw.find('@')) {
        (Some(s), Some(at)) if at > s => format!("{}{}", &raw[..s + 3], &raw[at + 1..]),
        _ => raw.to_string(),
    }
}

fn decode_percent(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn build_client(config: &RegistryConfig) -> Result<reqwest::Client, ConfigError> {
    let mut builder = reqwest::Client::builder()
        .timeout(config.request_timeout)
        .connect_timeout(config.connect_timeout)
        .pool_idle_timeout(Duration::from_secs(30))
        .user_agent(concat!("switchyard-schema/", env!("CARGO_PKG_VERSION")));
    let tls = &config.tls;
    if let Some(pem) = &tls.ca_pem {
        let certs = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|e| ConfigError::Client(format!("CA PEM: {e}")))?;
        builder = if tls.only_ca {
            builder.tls_certs_only(certs)
        } else {
            builder.tls_certs_merge(certs)
        };
    }
    if let Some((cert, key)) = &tls.identity_pem {
        let mut pem = cert.clone();
        pem.push(b'\n');
        pem.extend_from_slice(key.expose().as_bytes());
        let identity = reqwest::Identity::from_pem(&pem).map_err(|_| {
            ConfigError::Client("client certificate or key PEM does not parse".into())
        })?;
        builder = builder.identity(identity);
    }
    builder
        .build()
        .map_err(|e| ConfigError::Client(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_secrets() {
        let config = RegistryConfig::new(["https://registry.example:8081"])
            .with_credentials(Credentials::basic("key", "hunter2"));
        let text = format!("{config:?}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("<redacted>"), "{text}");
        let bearer = format!("{:?}", Credentials::bearer("tok-123"));
        assert!(!bearer.contains("tok-123"), "{bearer}");
    }

    #[test]
    fn url_credentials_become_basic_auth_and_leave_the_url() {
        let registry = SchemaRegistry::new(RegistryConfig::new([
            "http://alice:s%40cret@127.0.0.1:1/apis/ccompat/v7",
        ]))
        .unwrap();
        assert_eq!(
            registry.config().credentials,
            Credentials::basic("alice", "s@cret")
        );
        assert_eq!(
            registry.config().urls,
            vec!["http://127.0.0.1:1/apis/ccompat/v7/".to_string()]
        );
        assert!(!format!("{registry:?}").contains("s@cret"));
    }

    #[test]
    fn headers_are_basic_or_bearer() {
        let basic = Credentials::basic("Aladdin", "open sesame")
            .header()
            .unwrap();
        assert_eq!(
            basic.to_str().unwrap(),
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
        assert!(basic.is_sensitive());
        let bearer = Credentials::bearer("t0k").header().unwrap();
        assert_eq!(bearer.to_str().unwrap(), "Bearer t0k");
        assert!(Credentials::None.header().is_none());
    }

    #[test]
    fn bad_urls_are_refused_without_their_credentials() {
        assert!(matches!(
            SchemaRegistry::new(RegistryConfig::new(Vec::<String>::new())),
            Err(ConfigError::NoUrl)
        ));
        let err = SchemaRegistry::new(RegistryConfig::new(["ftp://u:pw@host/x"])).unwrap_err();
        assert!(!err.to_string().contains("pw"), "{err}");
    }

    #[test]
    fn unreachable_registries_fail_as_unavailable_after_the_budget() {
        // nothing listens on port 1 of the loopback address
        let registry = SchemaRegistry::new(
            RegistryConfig::new(["http://127.0.0.1:1", "http://127.0.0.1:1/second"]).with_retry(
                RetryBudget {
                    initial_backoff: Duration::from_millis(20),
                    max_backoff: Duration::from_millis(40),
                    give_up_after: Some(Duration::from_millis(200)),
                },
            ),
        )
        .unwrap();
        let started = Instant::now();
        let err = registry.get_blocking(7).unwrap_err();
        assert_eq!(err.kind, FailureKind::RegistryUnavailable, "{err}");
        assert!(err.detail.contains("127.0.0.1:1/second"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(5));
        let m = registry.metrics();
        assert!(m.fetch_retries >= 2, "{m:?}");
        assert!(m.requests_failed >= 4, "{m:?}");
    }

    #[test]
    fn references_flatten_dependencies_first() {
        let leaf = Arc::new(RegisteredSchema {
            id: 1,
            schema_type: SchemaType::Protobuf,
            schema: "leaf".into(),
            references: vec![],
        });
        let mid = Arc::new(RegisteredSchema {
            id: 2,
            schema_type: SchemaType::Protobuf,
            schema: "mid".into(),
            references: vec![("leaf.proto".into(), leaf.clone())],
        });
        let top = RegisteredSchema {
            id: 3,
            schema_type: SchemaType::Protobuf,
            schema: "top".into(),
            references: vec![("mid.proto".into(), mid), ("leaf.proto".into(), leaf)],
        };
        let names: Vec<_> = top.references_flat().into_iter().map(|r| r.0).collect();
        assert_eq!(names, ["leaf.proto", "mid.proto"]);
    }

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(encode_path_segment("a b/c"), "a%20b%2Fc");
        assert_eq!(strip_userinfo("http://u:p@h:1/x"), "http://h:1/x");
    }
}

#[cfg(test)]
mod prometheus_tests {
    use super::*;

    #[test]
    fn every_family_has_help_and_type_then_its_samples() {
        let metrics = SchemaMetrics::default();
        metrics.failed(FailureKind::Truncated);
        metrics.fetch_retries.fetch_add(3, Ordering::Relaxed);
        let text = metrics.snapshot().prometheus();
        for name in [
            "switchyard_schema_decode_failures_total",
            "switchyard_schema_registry_requests_total",
            "switchyard_schema_registry_retries_total",
            "switchyard_schema_cache_misses_total",
        ] {
            assert!(
                text.contains(&format!("# TYPE {name} counter\n")),
                "{name}: {text}"
            );
            assert!(text.contains(&format!("# HELP {name} ")), "{name}: {text}");
        }
        assert!(text.contains("switchyard_schema_decode_failures_total{reason=\"truncated\"} 1\n"));
        assert!(
            text.contains("switchyard_schema_registry_requests_total{outcome=\"not_found\"} 0\n")
        );
        assert!(text.contains("\nswitchyard_schema_registry_retries_total 3\n"));
        assert!(text.ends_with("\nswitchyard_schema_cache_misses_total 0\n"));
    }
}
