//! The bodies of the admin API's state changes, read as its handlers read
//! them: [`BindingChange`] for `POST /bindings/{listener}` (a
//! [`BindingCommand`] and the version it is based on) and [`StateChange`]
//! for Spring's `POST /actuator/bindings/{name}` (an [`Action`]). Each says
//! whether a refused body is not JSON at all ([`RequestError::Malformed`],
//! 400) or JSON of the wrong shape ([`RequestError::Invalid`], 422); unknown
//! fields are refused. The handlers and the fuzz target of the bodies use
//! these, so both read the same thing.

use serde::Deserialize;
use serde_json::Value;

use crate::command::{Action, BindingCommand};
use crate::error::ControlError;

/// Why a body was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// Not JSON.
    #[error("malformed JSON body: {0}")]
    Malformed(String),
    /// JSON, but not a body of this request.
    #[error("invalid body: {0}")]
    Invalid(String),
}

/// Read `body` as JSON of type `T` (unknown fields refused by `T`).
fn parse<T: serde::de::DeserializeOwned>(body: &[u8], expected: &str) -> Result<T, RequestError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| RequestError::Malformed(e.to_string()))?;
    serde_json::from_value(value).map_err(|e| RequestError::Invalid(format!("{e}{expected}")))
}

/// The body of `POST /bindings/{listener}`.
///
/// ```
/// use switchyard_control::command::Action;
/// use switchyard_control::request::BindingChange;
///
/// let b = BindingChange::parse(br#"{"state": "PAUSED", "topic": "orders", "version": 4}"#).unwrap();
/// assert_eq!(b.version, Some(4));
/// let cmd = b.command("orders-in", Some("http:pod-1".into())).unwrap();
/// assert_eq!((cmd.action, cmd.topic.as_deref()), (Action::Pause, Some("orders")));
/// assert!(BindingChange::parse(br#"{"state": "PAUSED", "tpoic": "x"}"#).is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BindingChange {
    /// `PAUSED`/`RESUMED` (or Spring's `STOPPED`/`STARTED`).
    pub state: String,
    /// Only this topic of the listener.
    pub topic: Option<String>,
    /// Only this partition of `topic`.
    pub partition: Option<i32>,
    /// Why (kept in the desired state).
    pub reason: Option<String>,
    /// A pause that lifts itself after this long.
    pub expires_in_ms: Option<u64>,
    /// The desired version this change is based on (compare-and-set).
    pub version: Option<u64>,
}

impl BindingChange {
    /// Read a request body.
    pub fn parse(body: &[u8]) -> Result<BindingChange, RequestError> {
        parse(body, "")
    }

    /// The command of this change to `listener`, validated (an unknown
    /// state, a partition without its topic, a bad expiry are refused).
    pub fn command(
        &self,
        listener: &str,
        issuer: Option<String>,
    ) -> Result<BindingCommand, ControlError> {
        let cmd = BindingCommand {
            listener: listener.to_string(),
            action: Action::from_binding_state(&self.state)?,
            topic: self.topic.clone(),
            partition: self.partition,
            reason: self.reason.clone(),
            issuer,
            expires_in_ms: self.expires_in_ms,
        };
        cmd.validate()?;
        Ok(cmd)
    }
}

/// The body of Spring's `POST /actuator/bindings/{name}`: a `state` and
/// nothing else (a `topic` or `partition` belongs to `/bindings`).
///
/// ```
/// use switchyard_control::command::Action;
/// use switchyard_control::request::StateChange;
///
/// let s = StateChange::parse(br#"{"state": "STOPPED"}"#).unwrap();
/// assert_eq!(s.action().unwrap(), Action::Pause);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateChange {
    /// `STOPPED`, `STARTED`, `PAUSED` or `RESUMED`.
    pub state: String,
}

impl StateChange {
    /// Read a request body.
    pub fn parse(body: &[u8]) -> Result<StateChange, RequestError> {
        parse(
            body,
            " (expected {\"state\": \"STOPPED\"|\"STARTED\"|\"PAUSED\"|\"RESUMED\"})",
        )
    }

    /// The action it asks for.
    pub fn action(&self) -> Result<Action, ControlError> {
        Action::from_binding_state(&self.state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_json_and_the_wrong_shape_are_told_apart() {
        assert!(matches!(
            BindingChange::parse(b"{"),
            Err(RequestError::Malformed(_))
        ));
        assert!(matches!(
            BindingChange::parse(br#"{"state": 1}"#),
            Err(RequestError::Invalid(_))
        ));
        let e = StateChange::parse(br#"{"state": "STOPPED", "topic": "t"}"#).unwrap_err();
        assert!(e.to_string().contains("expected {\"state\""), "{e}");
        let b = BindingChange::parse(br#"{"state": "SLEEPING"}"#).unwrap();
        assert!(b.command("l", None).is_err(), "an unknown state is refused");
    }
}
