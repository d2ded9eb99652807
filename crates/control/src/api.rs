//! What every handler of the admin API shares, whether it answers in
//! Switchyard's shapes (`/bindings`) or in those of Spring's bindings
//! actuator (`/actuator/bindings`): the state the handlers are given
//! ([`HttpState`]), the error answer ([`ApiError`]), the checks of a
//! request (its bearer token, the listener it names) and the per-instance
//! override both route families set.

use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::agent::Agent;
use crate::command::Action;
use crate::error::ControlError;
use crate::request::RequestError;
use crate::status_topic::StatusTail;
use crate::targets::Override;

/// How long a mutation waits for this instance to apply it.
pub(crate) const APPLY_TIMEOUT: Duration = Duration::from_secs(20);

/// What the handlers share.
#[derive(Clone)]
pub struct HttpState {
    /// The instance's agent.
    pub agent: Agent,
    /// Bearer token required for mutations, if any.
    pub token: Option<String>,
    /// The status topic reader, for `GET /fleet`.
    pub fleet: Option<StatusTail>,
}

/// An error answer: `{"error": reason}` with `status`.
#[derive(Debug)]
pub struct ApiError(pub StatusCode, pub String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

impl From<RequestError> for ApiError {
    fn from(e: RequestError) -> Self {
        let code = match e {
            RequestError::Malformed(_) => StatusCode::BAD_REQUEST,
            RequestError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
        };
        ApiError(code, e.to_string())
    }
}

impl From<ControlError> for ApiError {
    fn from(e: ControlError) -> Self {
        let code = match &e {
            ControlError::Conflict { .. } => StatusCode::CONFLICT,
            ControlError::Invalid(_) | ControlError::Decode { .. } => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ControlError::UnknownListener(_) => StatusCode::NOT_FOUND,
            ControlError::ReadOnly(_) => StatusCode::METHOD_NOT_ALLOWED,
            ControlError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError(code, e.to_string())
    }
}

/// 400 for a blank listener id, 404 for a listener this instance does not
/// run.
pub(crate) fn check_listener(s: &HttpState, listener: &str) -> Result<(), ApiError> {
    if listener.trim().is_empty() {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            "the listener id is blank".into(),
        ));
    }
    if !s.agent.listener_names().iter().any(|n| n == listener) {
        return Err(ControlError::UnknownListener(listener.into()).into());
    }
    Ok(())
}

/// With a token set, 401 unless the request carries it as
/// `Authorization: Bearer <token>`.
pub(crate) fn authorize(s: &HttpState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(token) = &s.token else {
        return Ok(());
    };
    match headers.get("authorization").and_then(|v| v.to_str().ok()) {
        None => Err(ApiError(
            StatusCode::UNAUTHORIZED,
            "missing bearer token".into(),
        )),
        Some(v) if v.strip_prefix("Bearer ") == Some(token.as_str()) => Ok(()),
        Some(_) => Err(ApiError(
            StatusCode::UNAUTHORIZED,
            "wrong bearer token".into(),
        )),
    }
}

/// Set (pause) or clear (resume) the override of `listener` on this
/// instance and wait until it is applied: an override only pauses more, so
/// a resume clears it, and what the desired state withholds here stays
/// paused.
pub(crate) async fn set_override(
    s: &HttpState,
    listener: &str,
    action: Action,
) -> Result<Option<Override>, ApiError> {
    let o = match action {
        Action::Pause => Some(Override::Paused),
        Action::Resume => None,
    };
    s.agent.set_override(listener, o, APPLY_TIMEOUT).await?;
    Ok(o)
}
