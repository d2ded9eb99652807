//! The HTTP admin API of one instance (Spring Cloud Stream bindings style):
//!
//! - `GET /bindings`, `GET /bindings/{listener}`: listeners, their
//!   partitions, held pause targets and override;
//! - `POST /bindings/{listener}` with `{"state": "PAUSED"|"RESUMED"|"STOPPED"|"STARTED"}`
//!   (optional `topic`, `partition`, `reason`, `expires_in_ms`, `version`):
//!   fleet scope (writes the desired state) by default, `?scope=instance`
//!   for a per-instance override;
//! - `GET /fleet`: the fleet view;
//! - `GET /actuator/bindings`, `GET /actuator/bindings/{name}`,
//!   `POST /actuator/bindings/{name}`: the same listeners in the shapes of
//!   Spring Cloud Stream's bindings actuator, at instance scope
//!   ([`actuator`]).
//!
//! Mutations need `Authorization: Bearer <token>` when a token is set.
//! Errors are `{"error": reason}` with a 4xx status. What the handlers of
//! both route families share (their state, their error answer, the checks
//! of a request, the per-instance override) is in [`api`](crate::api).

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::actuator;
use crate::api::{authorize, check_listener, set_override, APPLY_TIMEOUT};
use crate::command::Action;
use crate::metrics;
use crate::model::now_ms;
use crate::request::BindingChange;
use crate::status::fleet_view;
use crate::targets;

pub use crate::api::{ApiError, HttpState};

type ApiResult = Result<Json<Value>, ApiError>;

/// A poll loop older than this makes `/readyz` fail.
const STUCK_AFTER: Duration = Duration::from_secs(10);

/// The router. `/metrics`, `/healthz` and `/readyz` (see
/// [`metrics`]) ask the agent for its listeners at each request, so
/// the router holds none of them: once the agent is stopped they can be
/// shut down.
pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/bindings", get(list))
        .route("/bindings/", get(blank).post(blank))
        .route("/bindings/{listener}", get(one).post(mutate))
        .route("/fleet", get(fleet))
        .route("/actuator/bindings", get(actuator::list))
        .route("/actuator/bindings/", get(blank).post(blank))
        .route(
            "/actuator/bindings/{name}",
            get(actuator::one).post(actuator::change_state),
        )
        .route(
            "/metrics",
            get(|State(s): State<HttpState>| async move {
                metrics::metrics_of(&s.agent.listeners()).await
            }),
        )
        .route(
            "/healthz",
            get(
                |State(s): State<HttpState>| async move { metrics::liveness(&s.agent.listeners()) },
            ),
        )
        .route(
            "/readyz",
            get(|State(s): State<HttpState>| async move {
                metrics::readiness(&s.agent.listeners(), STUCK_AFTER)
            }),
        )
        .with_state(state)
        .fallback(|| async { ApiError(StatusCode::NOT_FOUND, "no such endpoint".into()) })
}

/// Bind `addr` and serve in the background until the agent stops
/// ([`Agent::stop`](crate::agent::Agent::stop) waits for the requests in
/// progress); the bound address.
pub async fn serve(addr: SocketAddr, state: HttpState) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let agent = state.agent.clone();
    let stopped = agent.stopped();
    let task = tokio::spawn(async move {
        let server = axum::serve(listener, router(state)).with_graceful_shutdown(stopped);
        match server.await {
            Ok(()) => tracing::info!(%bound, "admin HTTP API stopped"),
            Err(e) => tracing::warn!(error = %e, "admin HTTP server stopped"),
        }
    });
    agent.attach_server(task);
    tracing::info!(%bound, "admin HTTP API listening");
    Ok(bound)
}

async fn blank() -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, "the listener id is blank".into())
}

async fn binding(s: &HttpState, listener: &str) -> Value {
    let status = s.agent.status().await;
    let report = status.listeners.into_iter().find(|l| l.name == listener);
    let (held, o) = s.agent.held(listener);
    let state = if held.contains(&switchyard_runtime::PauseTarget::Listener) {
        "PAUSED"
    } else if held.is_empty() {
        "RUNNING"
    } else {
        "PARTIALLY_PAUSED"
    };
    json!({
        "name": listener,
        "state": state,
        "paused_targets": held.iter().map(targets::describe).collect::<Vec<_>>(),
        "override": o,
        "applied_version": s.agent.applied_version(),
        "partitions": report.map(|r| r.partitions).unwrap_or_default(),
    })
}

async fn list(State(s): State<HttpState>) -> ApiResult {
    let mut out = Vec::new();
    for l in s.agent.listener_names() {
        out.push(binding(&s, &l).await);
    }
    Ok(Json(Value::Array(out)))
}

async fn one(State(s): State<HttpState>, Path(listener): Path<String>) -> ApiResult {
    check_listener(&s, &listener)?;
    Ok(Json(binding(&s, &listener).await))
}

#[derive(Deserialize)]
struct Scope {
    scope: Option<String>,
}

async fn mutate(
    State(s): State<HttpState>,
    Path(listener): Path<String>,
    Query(scope): Query<Scope>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    authorize(&s, &headers)?;
    check_listener(&s, &listener)?;
    let body = BindingChange::parse(&body)?;
    let cmd = body.command(
        &listener,
        Some(format!("http:{}", s.agent.config().instance)),
    )?;
    let action = cmd.action;
    match scope.scope.as_deref().unwrap_or("fleet") {
        "instance" => {
            if cmd.topic.is_some() || cmd.expires_in_ms.is_some() || body.version.is_some() {
                return Err(ApiError(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "an instance override applies to the whole listener (no topic, partition, expiry or version)".into(),
                ));
            }
            let o = set_override(&s, &listener, action).await?;
            let mut answer = json!({"scope": "instance", "listener": listener, "override": o});
            let withheld: Vec<String> = s
                .agent
                .withheld(&listener)
                .iter()
                .map(targets::describe)
                .collect();
            if action == Action::Resume && !withheld.is_empty() {
                answer["withheld"] = json!(withheld);
                answer["note"] = json!(
                    "an instance override can only pause more: the desired state keeps these paused on this instance (fleet pauses, partitions owned by another slot or by nobody)"
                );
            }
            Ok(Json(answer))
        }
        "fleet" => {
            let store = s.agent.store();
            let app = s.agent.config().app.clone();
            let issuer = cmd.issuer.clone();
            let written = tokio::task::spawn_blocking(move || {
                store.write(&app, body.version, issuer.as_deref(), &|st| {
                    cmd.apply(st, now_ms())
                })
            })
            .await
            .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
            s.agent.wait_applied(written.version, APPLY_TIMEOUT).await?;
            Ok(Json(
                json!({"scope": "fleet", "listener": listener, "version": written.version}),
            ))
        }
        other => Err(ApiError(
            StatusCode::BAD_REQUEST,
            format!("unknown scope `{other}` (fleet or instance)"),
        )),
    }
}

async fn fleet(State(s): State<HttpState>) -> ApiResult {
    let Some(tail) = &s.fleet else {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            "no status topic configured on this instance".into(),
        ));
    };
    let desired = s.agent.desired().map_or(0, |d| d.version);
    let view = fleet_view(&tail.latest(), &s.agent.config().app, desired, now_ms());
    Ok(Json(serde_json::to_value(view).expect("serializable")))
}
