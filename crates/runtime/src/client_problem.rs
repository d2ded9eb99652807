//! Problems of the Kafka client that no retry of librdkafka fixes:
//! authentication (a wrong password, an untrusted certificate) and
//! authorization (no READ on a topic or on the group). librdkafka keeps
//! retrying them and reports each attempt; the runtime names the problem
//! once, at error level, with what to check, and keeps the latest one for
//! the listener's snapshot (`ListenerHandle::problem`) and its
//! readiness, so that an operator sees "authentication failed" instead of
//! a consumer that silently processes nothing. The problem is cleared when
//! the client is given partitions again (the fix took effect, see
//! [`ClientProblems::clear`]). No secret is ever in the
//! message: librdkafka's texts name the mechanism, never the password.
//!
//! A fatal error is another matter: the consumer is unusable for good (under
//! KIP-848, a `group.instance.id` still held by a member that crashed,
//! `UNRELEASED_INSTANCE_ID`). It is kept for ever ([`ClientProblems::fatal`]):
//! the listener's liveness and readiness fail, and an instance stops with
//! it, so that its supervisor (Kubernetes, systemd) starts it again.

use std::sync::Mutex;

use rdkafka::types::RDKafkaErrorCode;

/// The problem `code` (with librdkafka's `text`) is, with what to check;
/// `None` for the errors librdkafka recovers from by itself.
///
/// ```ignore
/// let p = classify(Some(RDKafkaErrorCode::Authentication), "SASL authentication error").unwrap();
/// assert!(p.starts_with("authentication failed"));
/// ```
pub(crate) fn classify(code: Option<RDKafkaErrorCode>, text: &str) -> Option<String> {
    let hint = match code? {
        RDKafkaErrorCode::Authentication | RDKafkaErrorCode::SaslAuthenticationFailed => {
            "authentication failed: the cluster refused this client's credentials (check security.protocol, sasl.mechanism, sasl.username and sasl.password)"
        }
        RDKafkaErrorCode::SSL => {
            "TLS failed: check ssl.ca.location (does this client trust the CA that signed the broker's certificate?) and the broker's address"
        }
        RDKafkaErrorCode::TopicAuthorizationFailed => {
            "not authorized for a topic: the principal needs READ and DESCRIBE on the listener's topics"
        }
        RDKafkaErrorCode::GroupAuthorizationFailed => {
            "not authorized for the consumer group: the principal needs READ on the listener's group"
        }
        RDKafkaErrorCode::ClusterAuthorizationFailed => {
            "not authorized for the cluster operation the client attempted"
        }
        _ => return None,
    };
    Some(format!("{hint}: {text}"))
}

/// The latest problem of one listener's clients, and its fatal error.
#[derive(Debug)]
pub(crate) struct ClientProblems {
    listener: String,
    latest: Mutex<Option<String>>,
    fatal: tokio::sync::watch::Sender<Option<String>>,
}

impl ClientProblems {
    pub(crate) fn new(listener: &str) -> ClientProblems {
        ClientProblems {
            listener: listener.to_string(),
            latest: Mutex::default(),
            fatal: tokio::sync::watch::Sender::new(None),
        }
    }

    /// The consumer hit a fatal error (`text`, with what to do): kept for
    /// ever, logged at error level once.
    pub(crate) fn set_fatal(&self, text: String) {
        self.fatal.send_if_modified(|held| {
            if held.is_some() {
                return false;
            }
            tracing::error!(listener = %self.listener, error = %text, "fatal Kafka client error: this listener's consumer cannot go on; it consumes nothing more");
            *held = Some(text);
            true
        });
    }

    /// The fatal error, if the consumer hit one.
    pub(crate) fn fatal(&self) -> Option<String> {
        self.fatal.borrow().clone()
    }

    /// Resolves with the fatal error once the consumer hits one.
    pub(crate) async fn fatal_error(&self) -> String {
        let mut rx = self.fatal.subscribe();
        let held = match rx.wait_for(Option::is_some).await {
            Ok(held) => held.clone(),
            // the sender lives as long as `self`
            Err(_) => None,
        };
        match held {
            Some(text) => text,
            None => std::future::pending().await,
        }
    }

    /// Record an error; a problem not seen last time is logged at error
    /// level. True when the error was a problem (the caller need not log
    /// it again).
    pub(crate) fn report(&self, code: Option<RDKafkaErrorCode>, text: &str) -> bool {
        let Some(problem) = classify(code, text) else {
            return false;
        };
        let mut latest = self.latest.lock().unwrap_or_else(|p| p.into_inner());
        if latest.as_deref() != Some(problem.as_str()) {
            tracing::error!(listener = %self.listener, problem = %problem, "the Kafka client cannot go on until this is fixed; it keeps retrying");
            *latest = Some(problem);
        }
        true
    }

    /// An error the consumer handed out among its records (from `poll` or a
    /// fetch queue's batch): a problem is recorded as by
    /// [`ClientProblems::report`], the end of a partition ignored, anything
    /// else logged as a warning (librdkafka retries it).
    pub(crate) fn consumer_error(&self, code: Option<RDKafkaErrorCode>, text: &str) {
        if code == Some(RDKafkaErrorCode::PartitionEOF) || self.report(code, text) {
            return;
        }
        tracing::warn!(listener = %self.listener, error = %text, ?code, "consumer error");
    }

    /// The client works again: it was given partitions, which takes a
    /// successful authentication and the group's and topics' ACLs. The
    /// problem is cleared, and its end logged.
    pub(crate) fn clear(&self) {
        let mut latest = self.latest.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(was) = latest.take() {
            tracing::info!(listener = %self.listener, was = %was, "the Kafka client's problem is fixed: partitions were assigned");
        }
    }

    /// The fatal error, else the latest problem, if any.
    pub(crate) fn current(&self) -> Option<String> {
        self.fatal().or_else(|| {
            self.latest
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authentication_tls_and_authorization_are_problems_with_what_to_check() {
        let auth = classify(
            Some(RDKafkaErrorCode::Authentication),
            "SASL authentication error: Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512",
        )
        .unwrap();
        assert!(
            auth.starts_with("authentication failed") && auth.contains("sasl.password"),
            "{auth}"
        );
        let tls = classify(Some(RDKafkaErrorCode::SSL), "SSL handshake failed").unwrap();
        assert!(tls.contains("ssl.ca.location"), "{tls}");
        let topic = classify(
            Some(RDKafkaErrorCode::TopicAuthorizationFailed),
            "Broker: Topic authorization failed",
        )
        .unwrap();
        assert!(topic.contains("READ"), "{topic}");
        assert!(classify(Some(RDKafkaErrorCode::AllBrokersDown), "down").is_none());
        assert!(classify(None, "x").is_none());
    }

    #[test]
    fn a_problem_is_kept_and_replaced_by_the_next() {
        let p = ClientProblems::new("l");
        assert!(!p.report(Some(RDKafkaErrorCode::BrokerTransportFailure), "transport"));
        assert_eq!(p.current(), None);
        assert!(p.report(Some(RDKafkaErrorCode::SSL), "handshake"));
        assert!(p.report(Some(RDKafkaErrorCode::SSL), "handshake"));
        assert!(p.current().unwrap().starts_with("TLS failed"));
        assert!(p.report(Some(RDKafkaErrorCode::GroupAuthorizationFailed), "group"));
        assert!(p.current().unwrap().contains("group"));
        p.clear();
        assert_eq!(p.current(), None);
    }

    #[test]
    fn a_fatal_error_stays_and_comes_before_any_problem() {
        let p = ClientProblems::new("l");
        assert_eq!(p.fatal(), None);
        assert!(p.report(Some(RDKafkaErrorCode::SSL), "handshake"));
        p.set_fatal("fenced".into());
        p.set_fatal("another".into());
        assert_eq!(p.fatal().as_deref(), Some("fenced"), "the first is kept");
        assert_eq!(p.current().as_deref(), Some("fenced"));
        p.clear();
        assert_eq!(p.current().as_deref(), Some("fenced"), "never cleared");
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        assert_eq!(rt.block_on(p.fatal_error()), "fenced");
    }
}
