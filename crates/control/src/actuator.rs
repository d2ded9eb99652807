//! Spring Cloud Stream's bindings actuator, at instance scope: the routes
//! `/actuator/bindings` of the admin API answer in the
//! shapes of Spring's `BindingsEndpoint`, so tools written for a Spring
//! fleet can read and steer a Switchyard instance.
//!
//! - `GET /actuator/bindings`: a JSON array with one object per listener;
//! - `GET /actuator/bindings/{name}`: one object (404 for an unknown name);
//! - `POST /actuator/bindings/{name}` with `{"state": "STOPPED"|"STARTED"|"PAUSED"|"RESUMED"}`:
//!   acts on this instance only, through the per-instance override of
//!   `POST /bindings/{name}?scope=instance` (`STOPPED` and `PAUSED` pause
//!   the whole listener; `STARTED` and `RESUMED` clear the override, and
//!   what the fleet's desired state withholds stays paused). Answers 200
//!   with the binding once applied; a bad state is refused (422, or 400 for
//!   a body that is not JSON) without any change.
//!
//! A binding object has exactly Spring's keys:
//!
//! ```json
//! {"bindingName": "orders", "name": "orders-in", "group": "orders-app",
//!  "pausable": true, "state": "running", "input": true}
//! ```
//!
//! `bindingName` is the listener's name, `name` its destination (topics
//! joined with commas, the pattern, or the assigned topics), `group` its
//! consumer group, `state` one of [`binding_state`]'s answers.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Json;
use serde_json::{json, Value};
use switchyard_runtime::command::PartitionState;
use switchyard_runtime::{ListenerHandle, PauseTarget, Subscription};

use crate::api::{authorize, check_listener, set_override, ApiError, HttpState};
use crate::command::Action;
use crate::error::ControlError;
use crate::request::StateChange;

/// How long a binding's state may take to read (a stuck poll loop does not
/// answer: the binding is then reported `stopped`).
const SNAPSHOT_TIMEOUT: Duration = Duration::from_millis(500);

/// What a binding reports of itself, as far as its state goes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    /// Its poll loop answered.
    pub answering: bool,
    /// In its consumer group (`None`: a standalone assignment).
    pub joined: Option<bool>,
    /// The whole listener is held paused (an override or a fleet pause).
    pub listener_paused: bool,
    /// The states of its assigned partitions.
    pub partitions: Vec<PartitionState>,
}

/// Spring's lower-case binding state of what `o` says: `stopped` when the
/// listener does not answer or is out of its group (a slot that is not
/// joined), `paused` when the whole listener is held paused or every
/// assigned partition is not running, else `running`.
///
/// ```
/// use switchyard_control::actuator::{binding_state, Observed};
/// use switchyard_runtime::command::PartitionState::{Paused, Running};
/// let o = Observed { answering: true, joined: Some(true), ..Default::default() };
/// assert_eq!(binding_state(&o), "running");
/// let held = Observed { listener_paused: true, ..o.clone() };
/// assert_eq!(binding_state(&held), "paused");
/// let all = Observed { partitions: vec![Paused, Paused], ..o.clone() };
/// assert_eq!(binding_state(&all), "paused");
/// let some = Observed { partitions: vec![Paused, Running], ..o.clone() };
/// assert_eq!(binding_state(&some), "running");
/// let out = Observed { joined: Some(false), ..o };
/// assert_eq!(binding_state(&out), "stopped");
/// ```
pub fn binding_state(o: &Observed) -> &'static str {
    if !o.answering || o.joined == Some(false) {
        "stopped"
    } else if o.listener_paused
        || (!o.partitions.is_empty() && o.partitions.iter().all(|p| *p != PartitionState::Running))
    {
        "paused"
    } else {
        "running"
    }
}

/// The destination of a subscription as Spring names it: the topics joined
/// with commas, or the pattern.
///
/// ```
/// use switchyard_control::actuator::destination;
/// use switchyard_runtime::Subscription;
/// assert_eq!(destination(&Subscription::Topics(vec!["a".into(), "b".into()])), "a,b");
/// assert_eq!(destination(&Subscription::Pattern("orders-.*".into())), "orders-.*");
/// assert_eq!(destination(&Subscription::Assign(vec![("t".into(), vec![0, 1])])), "t");
/// ```
pub fn destination(s: &Subscription) -> String {
    match s {
        Subscription::Topics(t) => t.join(","),
        Subscription::Pattern(p) => p.clone(),
        Subscription::Assign(a) => a
            .iter()
            .map(|(t, _)| t.as_str())
            .collect::<Vec<_>>()
            .join(","),
    }
}

/// The binding object of `l` on this instance.
async fn binding(s: &HttpState, l: &ListenerHandle) -> Value {
    let (held, _) = s.agent.held(l.name());
    let snapshot = tokio::time::timeout(SNAPSHOT_TIMEOUT, l.snapshot_local()).await;
    let mut o = Observed {
        listener_paused: held.contains(&PauseTarget::Listener),
        ..Observed::default()
    };
    if let Ok(Ok(snap)) = snapshot {
        o.answering = true;
        o.joined = snap.joined;
        o.partitions = snap.partitions.iter().map(|p| p.state).collect();
    }
    json!({
        "bindingName": l.name(),
        "name": destination(l.subscription()),
        "group": l.group_id(),
        "pausable": true,
        "state": binding_state(&o),
        "input": true,
    })
}

/// The listener `name` of the agent, or 404 (400 for a blank name).
fn find(s: &HttpState, name: &str) -> Result<std::sync::Arc<ListenerHandle>, ApiError> {
    check_listener(s, name)?;
    s.agent
        .listeners()
        .into_iter()
        .find(|l| l.name() == name)
        .ok_or_else(|| ControlError::UnknownListener(name.into()).into())
}

/// `GET /actuator/bindings`.
pub(crate) async fn list(State(s): State<HttpState>) -> Json<Value> {
    let mut out = Vec::new();
    for l in s.agent.listeners() {
        out.push(binding(&s, &l).await);
    }
    Json(Value::Array(out))
}

/// `GET /actuator/bindings/{name}`.
pub(crate) async fn one(
    State(s): State<HttpState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let l = find(&s, &name)?;
    Ok(Json(binding(&s, &l).await))
}

/// `POST /actuator/bindings/{name}`: the override of this instance.
pub(crate) async fn change_state(
    State(s): State<HttpState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    authorize(&s, &headers)?;
    let l = find(&s, &name)?;
    let action = parse_change(&body)?;
    set_override(&s, &name, action).await?;
    Ok(Json(binding(&s, &l).await))
}

/// The action a state-change body asks for; 400 for a body that is not
/// JSON, 422 for one without a known `state`.
fn parse_change(body: &[u8]) -> Result<Action, ApiError> {
    Ok(StateChange::parse(body)?.action()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    #[test]
    fn state_changes_are_springs_four_states_and_nothing_else() {
        let ok = |b: &str| parse_change(b.as_bytes()).map_err(|e| (e.0, e.1));
        assert_eq!(ok(r#"{"state":"STOPPED"}"#).unwrap(), Action::Pause);
        assert_eq!(ok(r#"{"state":"PAUSED"}"#).unwrap(), Action::Pause);
        assert_eq!(ok(r#"{"state":"STARTED"}"#).unwrap(), Action::Resume);
        assert_eq!(ok(r#"{"state":"RESUMED"}"#).unwrap(), Action::Resume);
        let (code, why) = ok(r#"{"state":"FROZEN"}"#).unwrap_err();
        assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(why.contains("FROZEN"), "{why}");
        let (code, _) = ok(r#"{"state":"PAUSED","partition":1}"#).unwrap_err();
        assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
        let (code, _) = ok(r#"{}"#).unwrap_err();
        assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
        let (code, _) = ok("{nope").unwrap_err();
        assert_eq!(code, StatusCode::BAD_REQUEST);
    }

    #[test]
    fn a_listener_that_does_not_answer_is_stopped_whatever_it_holds() {
        let o = Observed {
            answering: false,
            listener_paused: true,
            ..Observed::default()
        };
        assert_eq!(binding_state(&o), "stopped");
        let standalone = Observed {
            answering: true,
            joined: None,
            partitions: vec![PartitionState::Draining],
            ..Observed::default()
        };
        assert_eq!(binding_state(&standalone), "paused");
    }
}
