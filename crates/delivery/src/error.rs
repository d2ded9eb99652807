//! What can go wrong delivering a record: every variant is a handler error
//! to the listener, whose retry policy and failure policy (dead letter, skip
//! or stop the partition) decide what happens next; none loses a record.
//!
//! Messages never show a URL's password or query string: the HTTP
//! delivery fills a variant's `url` with the URL already stripped of them.
//!
//! ```
//! use std::time::Duration;
//! use switchyard_delivery::DeliveryError;
//! let e = DeliveryError::Timeout { url: "http://app:8080/records".into(), timeout: Duration::from_secs(2) };
//! assert_eq!(e.to_string(), "POST http://app:8080/records: no answer within 2s");
//! ```

use std::time::Duration;

/// Why a record (or a batch) was not delivered.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// The delivery settings cannot work (a bad URL, an empty command).
    #[error("invalid delivery setting `{key}`: {reason}")]
    Config {
        /// The setting, as in `[listener.delivery]`.
        key: &'static str,
        /// Why.
        reason: String,
    },
    /// The application answered with a status other than 2xx.
    #[error("POST {url}: the application answered {status}{}", body_suffix(.body))]
    Status {
        /// The URL, without credentials.
        url: String,
        /// The HTTP status code.
        status: u16,
        /// The start of the response body (at most 200 bytes).
        body: String,
    },
    /// No answer within the request timeout.
    #[error("POST {url}: no answer within {}", humanize(*.timeout))]
    Timeout {
        /// The URL, without credentials.
        url: String,
        /// The request timeout.
        timeout: Duration,
    },
    /// The request could not be made (connection refused, reset, TLS).
    #[error("POST {url}: {reason}")]
    Request {
        /// The URL, without credentials.
        url: String,
        /// The client's report, without the URL.
        reason: String,
    },
    /// The child process answered `"ok":false`.
    #[error("the application refused {topic}/{partition}@{offset}: {error}")]
    Refused {
        /// Topic of the record.
        topic: String,
        /// Partition of the record.
        partition: i32,
        /// Offset of the record.
        offset: i64,
        /// The child's reason.
        error: String,
    },
    /// The child process could not be started.
    #[error("cannot start the application process `{program}`: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The child process ended (or its pipes broke) with the record in flight.
    #[error("the application process ended before acknowledging the record: {reason}")]
    ChildEnded {
        /// How it ended.
        reason: String,
    },
    /// The child process did not acknowledge within the timeout.
    #[error("no acknowledgement from the application process within {}", humanize(*.timeout))]
    AckTimeout {
        /// The acknowledgement timeout.
        timeout: Duration,
    },
    /// The `[schema_registry]` client could not be built (a CA file that
    /// cannot be read, a bad PEM, conflicting credentials); never shows a
    /// credential.
    #[error("schema registry: {reason}")]
    Registry {
        /// Why.
        reason: String,
    },
    /// The delivery was shut down.
    #[error("delivery stopped")]
    Stopped,
}

fn body_suffix(body: &str) -> String {
    if body.is_empty() {
        String::new()
    } else {
        format!(": {body}")
    }
}

fn humanize(d: Duration) -> String {
    format!("{d:?}")
}
