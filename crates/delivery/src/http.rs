//! HTTP delivery: each record (or a batch of records of one partition) is
//! POSTed to the application's URL; a 2xx answer means processed.
//!
//! Any other status, a connection error or no answer within the timeout is a
//! handler error: the listener retries with backoff, then applies its failure
//! policy (dead letter, skip or stop the partition). Nothing is committed
//! before the application answered 2xx.
//!
//! - Per record (`batch` = 1): the body is the record's
//!   [envelope](crate::envelope) (`Content-Type: application/json`), and the
//!   request carries `Kafka-Topic`, `Kafka-Partition`, `Kafka-Offset` and
//!   `Kafka-Key` headers (`Kafka-Key-Base64` when the key is not a valid
//!   header value; neither without a key), so a router or a log can tell the
//!   record without reading the body.
//! - Batches (`batch` > 1): the listener's batch handler gets the records of
//!   one partition it has (at most `max.poll.records`); they are POSTed in
//!   chunks of at most `batch` records, in offset order, each chunk a JSON
//!   array of envelopes with `Kafka-Topic`, `Kafka-Partition`,
//!   `Kafka-Offset` (of the first record) and `Kafka-Count` headers. A
//!   failed chunk fails the whole call, which is retried from its first
//!   record: chunks already answered 2xx are sent again (at least once).
//!
//! One `reqwest` client (rustls, HTTP/1.1 keep-alive) is shared by every
//! call, so connections are reused. The listener's `workers` bound the
//! requests in flight (one permit per handler call; retries keep theirs), and
//! its ordering mode holds: the next record of a key or partition is handed
//! over only after the previous one's request finished.
//!
//! ```no_run
//! use std::time::Duration;
//! use switchyard_delivery::{http::{HttpDelivery, HttpOptions}, envelope::ValueFormat};
//! use switchyard_runtime::{Listener, Ordering};
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let http = HttpDelivery::new(HttpOptions::new("http://127.0.0.1:8000/records")
//!     .timeout(Duration::from_secs(5)))?;
//! let builder = Listener::builder("orders").topics(["orders"]).workers(8).ordering(Ordering::Key);
//! let listener = http.attach(builder, ValueFormat::Auto).start()?;
//! # Ok(()) }
//! ```

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use switchyard_runtime::handler::HandlerResult;
use switchyard_runtime::ListenerBuilder;

use crate::envelope::{DeliveryRecord, Envelope};
use crate::error::DeliveryError;
use crate::schema::ValueDecoder;

/// Default request timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Settings of an [`HttpDelivery`].
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// Where records are POSTed (`http://` or `https://`).
    pub url: String,
    /// Records per request: 1 sends each record alone, more sends batches.
    pub batch: usize,
    /// How long one request may take, connection included.
    pub timeout: Duration,
    /// Idle connections kept open (set it to the listener's workers).
    pub connections: usize,
}

impl HttpOptions {
    /// Per-record delivery to `url` with the default timeout.
    ///
    /// ```
    /// # use switchyard_delivery::http::HttpOptions;
    /// let o = HttpOptions::new("http://app/records").batch(100);
    /// assert_eq!(o.batch, 100);
    /// ```
    pub fn new(url: impl Into<String>) -> HttpOptions {
        HttpOptions {
            url: url.into(),
            batch: 1,
            timeout: DEFAULT_TIMEOUT,
            connections: 16,
        }
    }
    /// Records per request (at least 1).
    pub fn batch(mut self, records: usize) -> Self {
        self.batch = records.max(1);
        self
    }
    /// The per-request timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
    /// Idle connections kept open.
    pub fn connections(mut self, connections: usize) -> Self {
        self.connections = connections.max(1);
        self
    }
}

struct Inner {
    client: reqwest::Client,
    url: reqwest::Url,
    shown: String,
    batch: usize,
    timeout: Duration,
}

/// Delivers records over HTTP; cheap to clone (one shared client).
#[derive(Clone)]
pub struct HttpDelivery {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for HttpDelivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpDelivery")
            .field("url", &self.inner.shown)
            .field("batch", &self.inner.batch)
            .field("timeout", &self.inner.timeout)
            .finish()
    }
}

/// `url` as messages show it: scheme, host, port and path, without the
/// user's password or the query string. Every URL a
/// [`DeliveryError`] holds went through here.
///
/// ```
/// # use switchyard_delivery::http::shown_url;
/// assert_eq!(shown_url("https://u:secret@app:8443/in?token=x"), "https://u@app:8443/in");
/// assert_eq!(shown_url("not a url"), "<invalid url>");
/// ```
pub fn shown_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_password(None);
            u.set_query(None);
            u.set_fragment(None);
            u.to_string()
        }
        Err(_) => "<invalid url>".to_string(),
    }
}

impl HttpDelivery {
    /// A delivery to `options.url`.
    ///
    /// # Errors
    ///
    /// [`DeliveryError::Config`] for a URL that does not parse or is not
    /// `http`/`https`.
    ///
    /// ```
    /// # use switchyard_delivery::http::{HttpDelivery, HttpOptions};
    /// assert!(HttpDelivery::new(HttpOptions::new("ftp://app/x")).is_err());
    /// assert!(HttpDelivery::new(HttpOptions::new("http://127.0.0.1:1/x")).is_ok());
    /// ```
    pub fn new(options: HttpOptions) -> Result<HttpDelivery, DeliveryError> {
        let url = reqwest::Url::parse(&options.url).map_err(|e| DeliveryError::Config {
            key: "url",
            reason: format!("`{}` is not a URL: {e}", shown_url(&options.url)),
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(DeliveryError::Config {
                key: "url",
                reason: format!("scheme `{}`: expected http or https", url.scheme()),
            });
        }
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(options.connections.max(1))
            .pool_idle_timeout(Duration::from_secs(60))
            .tcp_nodelay(true)
            .timeout(options.timeout)
            .build()
            .map_err(|e| DeliveryError::Config {
                key: "url",
                reason: format!("cannot build the HTTP client: {e}"),
            })?;
        Ok(HttpDelivery {
            inner: Arc::new(Inner {
                client,
                shown: shown_url(url.as_str()),
                url,
                batch: options.batch.max(1),
                timeout: options.timeout,
            }),
        })
    }

    /// Records per request.
    pub fn batch(&self) -> usize {
        self.inner.batch
    }

    /// The listener `builder` with this delivery as its handler: a record
    /// handler when `batch` is 1, a batch handler otherwise; keys are raw
    /// bytes, values encoded by `format`.
    pub fn attach(
        self,
        builder: ListenerBuilder,
        format: impl Into<ValueDecoder>,
    ) -> ListenerBuilder {
        let format: ValueDecoder = format.into();
        if self.inner.batch <= 1 {
            builder.handler(
                switchyard_runtime::deserializer::Bytes,
                format,
                move |r: DeliveryRecord| {
                    let this = self.clone();
                    async move { this.deliver(&r).await.map_err(Into::into) }
                },
            )
        } else {
            builder.batch_handler(
                switchyard_runtime::deserializer::Bytes,
                format,
                move |rs: Vec<DeliveryRecord>| {
                    let this = self.clone();
                    async move { this.deliver_all(&rs).await }
                },
            )
        }
    }

    /// POST one record; `Ok` when the application answered 2xx.
    pub async fn deliver(&self, record: &DeliveryRecord) -> Result<(), DeliveryError> {
        let mut headers = coordinates(&record.topic, record.partition, record.offset);
        if let Some(key) = &record.key {
            match HeaderValue::from_bytes(key) {
                Ok(v) if key.iter().all(|b| b.is_ascii() && !b.is_ascii_control()) => {
                    headers.insert(HeaderName::from_static("kafka-key"), v);
                }
                _ => {
                    let b64 = base64::engine::general_purpose::STANDARD.encode(key);
                    headers.insert(
                        HeaderName::from_static("kafka-key-base64"),
                        HeaderValue::from_str(&b64).expect("base64 is a header value"),
                    );
                }
            }
        }
        self.post(headers, Envelope::of(record).to_json()).await
    }

    /// POST `records` (of one partition, in offset order) in chunks of at
    /// most `batch`; `Ok` when every chunk was answered 2xx.
    pub async fn deliver_batch(&self, records: &[DeliveryRecord]) -> Result<(), DeliveryError> {
        for chunk in records.chunks(self.inner.batch) {
            let first = &chunk[0];
            let mut headers = coordinates(&first.topic, first.partition, first.offset);
            headers.insert(
                HeaderName::from_static("kafka-count"),
                HeaderValue::from(chunk.len()),
            );
            self.post(headers, Envelope::array(chunk)).await?;
        }
        Ok(())
    }

    async fn deliver_all(&self, records: &[DeliveryRecord]) -> HandlerResult {
        self.deliver_batch(records).await.map_err(Into::into)
    }

    async fn post(&self, mut headers: HeaderMap, body: String) -> Result<(), DeliveryError> {
        let inner = &self.inner;
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let failed = |e: reqwest::Error| {
            if e.is_timeout() {
                DeliveryError::Timeout {
                    url: inner.shown.clone(),
                    timeout: inner.timeout,
                }
            } else {
                DeliveryError::Request {
                    url: inner.shown.clone(),
                    reason: error_chain(&e.without_url()),
                }
            }
        };
        let response = inner
            .client
            .post(inner.url.clone())
            .headers(headers)
            .body(body)
            .send()
            .await
            .map_err(failed)?;
        let status = response.status();
        // the body is read in full either way, so the connection is reused
        let body = response.bytes().await.map_err(failed)?;
        if status.is_success() {
            return Ok(());
        }
        let mut text = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
        text.retain(|c| !c.is_control());
        Err(DeliveryError::Status {
            url: inner.shown.clone(),
            status: status.as_u16(),
            body: text.trim().to_string(),
        })
    }
}

fn coordinates(topic: &str, partition: i32, offset: i64) -> HeaderMap {
    let mut h = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(topic) {
        h.insert(HeaderName::from_static("kafka-topic"), v);
    }
    h.insert(
        HeaderName::from_static("kafka-partition"),
        HeaderValue::from(partition),
    );
    h.insert(
        HeaderName::from_static("kafka-offset"),
        HeaderValue::from(offset),
    );
    h
}

/// An error and its sources, `: `-separated (reqwest's own message alone
/// says only "error sending request").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let line = s.to_string();
        if !text.contains(&line) {
            text.push_str(": ");
            text.push_str(&line);
        }
        source = s.source();
    }
    text
}
