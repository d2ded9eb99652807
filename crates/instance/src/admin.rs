//! The admin HTTP API of an instance, on one address: with a control plane
//! the whole router of [`switchyard_control::http`] (bindings, the Spring
//! actuator shapes, fleet, metrics, health, readiness), served until the
//! agent stops; without one the probes of [`switchyard_control::metrics`]
//! alone (metrics, health, readiness), served until the instance stops
//! them. Any address binds, `0.0.0.0:8080` as well as `127.0.0.1:0`; the
//! bound one is returned (the port chosen for port 0).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use switchyard_control::http::HttpState;
use switchyard_control::metrics::Probes;
use switchyard_control::status_topic::StatusTail;
use switchyard_control::Agent;
use switchyard_runtime::ListenerHandle;
use tokio::sync::watch;

use crate::error::{InstanceError, Result};

/// A poll loop older than this makes `/readyz` fail.
const STUCK_AFTER: Duration = Duration::from_secs(10);

/// How long a stop waits for the requests in progress.
const STOP_WAIT: Duration = Duration::from_secs(5);

/// The probes-only server of an instance without a control plane.
pub(crate) struct ProbeServer {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl ProbeServer {
    /// Stop serving (the requests in progress finish, at most 5 s): the
    /// listeners are no longer held once this returns.
    pub(crate) async fn stop(self) {
        self.stop.send_replace(true);
        let mut task = self.task;
        if tokio::time::timeout(STOP_WAIT, &mut task).await.is_err() {
            tracing::warn!("the admin HTTP server did not finish its requests in time; aborted");
            task.abort();
            let _ = task.await;
        }
    }
}

async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| InstanceError::Http { addr, source })
}

/// Serve the admin API of `agent` on `addr`; it stops with the agent.
pub(crate) async fn serve_agent(
    addr: SocketAddr,
    agent: &Agent,
    token: Option<String>,
    fleet: Option<StatusTail>,
) -> Result<SocketAddr> {
    let state = HttpState {
        agent: agent.clone(),
        token,
        fleet,
    };
    switchyard_control::http::serve(addr, state)
        .await
        .map_err(|source| InstanceError::Http { addr, source })
}

/// Serve `/metrics`, `/healthz` and `/readyz` of `listeners` on `addr`
/// until [`ProbeServer::stop`].
pub(crate) async fn serve_probes(
    addr: SocketAddr,
    listeners: Vec<Arc<ListenerHandle>>,
) -> Result<(SocketAddr, ProbeServer)> {
    let listener = bind(addr).await?;
    let bound = listener
        .local_addr()
        .map_err(|source| InstanceError::Http { addr, source })?;
    let router = switchyard_control::metrics::router(Probes {
        listeners: Arc::new(listeners),
        stuck_after: STUCK_AFTER,
    });
    let (stop, mut stopped) = watch::channel(false);
    let task = tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.wait_for(|s| *s).await;
        };
        if let Err(e) = axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::warn!(error = %e, "admin HTTP server stopped");
        }
    });
    tracing::info!(%bound, "admin HTTP API listening (metrics and health only)");
    Ok((bound, ProbeServer { stop, task }))
}
