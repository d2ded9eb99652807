//! [`Instance`]: a running instance, and its stop in order, within its
//! shutdown deadline:
//!
//! 1. the agent stops applying (the listeners keep their pauses) and the
//!    admin HTTP API stops (requests in progress finish first);
//! 2. the listeners are taken back and shut down together: fetching stops,
//!    in-flight records finish, offsets are committed, the group is left;
//! 3. the final status is published: the instance's status is removed
//!    from the status topic (a tombstone, a clean stop), only now that its
//!    listeners have left their groups.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use switchyard_control::status_topic::{StatusPublisher, StatusTail};
use switchyard_control::Agent;
use switchyard_runtime::{ListenerHandle, ShutdownReport};

use crate::admin::ProbeServer;
use crate::error::{InstanceError, Result};
use crate::signals::{Signal, Signals};

/// Who holds the listeners of a running instance.
pub(crate) enum Admin {
    /// The control-plane agent (and through it the admin API).
    Agent(Agent),
    /// Nobody but the instance (and its probes server).
    Alone(Vec<Arc<ListenerHandle>>),
}

/// The part of the deadline kept for the final status, when there is one.
fn status_reserve(deadline: Duration) -> Duration {
    (deadline / 10).min(Duration::from_secs(1))
}

/// The shortest time a listener is given to shut down, however late the
/// agent stopped (a listener with less cannot even leave its group).
const MIN_LISTENER_DEADLINE: Duration = Duration::from_millis(500);

/// What a shutdown of an instance did.
///
/// ```
/// use switchyard_instance::ShutdownSummary;
/// use switchyard_runtime::ShutdownReport;
/// let mut s = ShutdownSummary { within_deadline: true, ..Default::default() };
/// s.listeners.insert("orders".into(), ShutdownReport { closed: true, ..Default::default() });
/// assert!(s.clean());
/// ```
#[derive(Debug, Clone, Default, Serialize)]
pub struct ShutdownSummary {
    /// The signal that stopped it, if one did.
    pub signal: Option<Signal>,
    /// The fatal error of a listener's consumer that stopped it, if one did
    /// (`<listener>: <error>`; `ListenerHandle::fatal_error`).
    pub failure: Option<String>,
    /// The report of every listener, by name.
    pub listeners: BTreeMap<String, ShutdownReport>,
    /// Time from the start of the shutdown to its end.
    pub elapsed_ms: u64,
    /// Whether it ended within the instance's deadline.
    pub within_deadline: bool,
    /// Whether the status was removed from the status topic (`None`: no
    /// status topic).
    pub status_removed: Option<bool>,
    /// Anything that did not go as planned.
    pub notes: Vec<String>,
}

impl ShutdownSummary {
    /// Did every listener close (leave its group), the shutdown end in
    /// time, and no fatal error stop the instance?
    pub fn clean(&self) -> bool {
        self.failure.is_none() && self.within_deadline && self.listeners.values().all(|r| r.closed)
    }
}

/// One consumer instance of a fleet: its listeners, the control-plane agent
/// with its store, status publishing, the admin HTTP API and the stop
/// signals, started and stopped in order.
///
/// ```no_run
/// use std::time::Duration;
/// use switchyard_config::{Connection, ConsumerConfig};
/// use switchyard_instance::{ControlStore, Instance};
/// use switchyard_runtime::{deserializer::Utf8, record::Record, Listener};
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let kafka = Connection::new("127.0.0.1:9092");
/// let orders = Listener::builder("orders")
///     .config(ConsumerConfig::default().with_connection(kafka.clone()).with_group("orders-app"))
///     .topics(["orders"])
///     .handler(Utf8, Utf8, |r: Record<String, String>| async move {
///         println!("{}: {}", r.offset, r.value);
///         Ok(())
///     });
/// let instance = Instance::builder("orders-7d9f-1")
///     .connection(kafka)
///     .listener(orders)
///     .control("orders-app", "blue", ControlStore::kafka("switchyard.control"))
///     .status_topic("switchyard.status")
///     .http("0.0.0.0:8080".parse()?)
///     .shutdown_timeout(Duration::from_secs(20))
///     .start()
///     .await?;
/// println!("admin API on {:?}", instance.http_addr());
/// let summary = instance.run_until_signal().await?; // SIGTERM or ctrl-c
/// assert!(summary.clean(), "{summary:?}");
/// # Ok(()) }
/// ```
pub struct Instance {
    id: String,
    admin: Admin,
    shutdown_timeout: Duration,
    signals: Option<Signals>,
    pub(crate) http: Option<std::net::SocketAddr>,
    pub(crate) probes: Option<ProbeServer>,
    pub(crate) fleet: Option<StatusTail>,
}

impl Instance {
    pub(crate) fn new(
        id: String,
        admin: Admin,
        shutdown_timeout: Duration,
        signals: Option<Signals>,
    ) -> Instance {
        Instance {
            id,
            admin,
            shutdown_timeout,
            signals,
            http: None,
            probes: None,
            fleet: None,
        }
    }

    /// The instance id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The address the admin HTTP API is bound to, if it runs.
    pub fn http_addr(&self) -> Option<std::net::SocketAddr> {
        self.http
    }

    /// The control-plane agent, if there is a control plane.
    pub fn agent(&self) -> Option<&Agent> {
        match &self.admin {
            Admin::Agent(a) => Some(a),
            Admin::Alone(_) => None,
        }
    }

    /// The running listeners.
    pub fn listeners(&self) -> Vec<Arc<ListenerHandle>> {
        match &self.admin {
            Admin::Agent(a) => a.listeners(),
            Admin::Alone(l) => l.clone(),
        }
    }

    /// Wait for SIGTERM or SIGINT (ctrl-c), or for a listener's consumer
    /// to hit a fatal error (`ListenerHandle::failed`: it consumes nothing
    /// more, and a new process is the way out), then shut down
    /// ([`Instance::shutdown`]); the summary names the signal or the
    /// failure (which makes it not [`ShutdownSummary::clean`]).
    pub async fn run_until_signal(mut self) -> Result<ShutdownSummary> {
        let mut signals = match self.signals.take() {
            Some(s) => s,
            None => Signals::install().map_err(InstanceError::Signals)?,
        };
        let listeners = self.listeners();
        let failed = futures::future::select_all(
            listeners
                .iter()
                .map(|l| Box::pin(async move { format!("{}: {}", l.name(), l.failed().await) })),
        );
        let (signal, failure) = tokio::select! {
            s = signals.recv() => (Some(s), None),
            (f, _, _) = failed, if !listeners.is_empty() => (None, Some(f)),
        };
        match &failure {
            Some(f) => {
                tracing::error!(instance = %self.id, failure = %f, "stopping: a listener cannot go on")
            }
            None => tracing::info!(instance = %self.id, ?signal, "stopping"),
        }
        drop(listeners);
        let mut summary = self.shutdown().await;
        summary.signal = signal;
        summary.failure = failure;
        Ok(summary)
    }

    /// Stop in order (see this module's documentation), within the
    /// shutdown deadline, and report.
    pub async fn shutdown(self) -> ShutdownSummary {
        let started = Instant::now();
        let deadline = self.shutdown_timeout;
        let mut summary = ShutdownSummary::default();
        if let Some(p) = self.probes {
            p.stop().await;
        }
        let (listeners, publisher) = match self.admin {
            Admin::Agent(a) => a.stop_keeping_status().await,
            Admin::Alone(l) => (l, None),
        };
        if let Some(t) = &self.fleet {
            t.stop();
        }
        let reserve = if publisher.is_some() {
            status_reserve(deadline)
        } else {
            Duration::ZERO
        };
        let listeners_end = started + deadline.saturating_sub(reserve);
        let mut owned = Vec::new();
        for l in listeners {
            match take_back(l, listeners_end).await {
                Ok(l) => owned.push(l),
                Err(name) => {
                    summary.notes.push(format!(
                        "listener `{name}` is still in use elsewhere: not shut down here"
                    ));
                }
            }
        }
        let left = listeners_end
            .saturating_duration_since(Instant::now())
            .max(MIN_LISTENER_DEADLINE);
        let reports = futures::future::join_all(owned.into_iter().map(|l| async move {
            let name = l.name().to_string();
            let d = l.shutdown_timeout().min(left);
            (name, l.shutdown_within(d).await)
        }))
        .await;
        summary.listeners = reports.into_iter().collect();
        if let Some(p) = publisher {
            let end = started + deadline;
            summary.status_removed = Some(remove_status(p, &self.id, end).await);
        }
        let elapsed = started.elapsed();
        summary.elapsed_ms = elapsed.as_millis() as u64;
        summary.within_deadline = elapsed <= deadline;
        tracing::info!(instance = %self.id, ?summary, "instance stopped");
        summary
    }
}

/// Unwrap `l` once nothing else holds it, trying until `until`; its name
/// when something still does.
async fn take_back(
    mut l: Arc<ListenerHandle>,
    until: Instant,
) -> std::result::Result<ListenerHandle, String> {
    loop {
        match Arc::try_unwrap(l) {
            Ok(l) => return Ok(l),
            Err(back) if Instant::now() < until => {
                l = back;
                // a request of the admin API that held it has just ended
                tokio::task::yield_now().await;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Err(back) => return Err(back.name().to_string()),
        }
    }
}

/// Remove the status of `id` (the tombstone of a clean stop), giving up at
/// `end` (at least 200 ms from now); whether it was delivered.
async fn remove_status(p: Arc<StatusPublisher>, id: &str, end: Instant) -> bool {
    let id = id.to_string();
    let wait = end
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(200));
    let task = tokio::task::spawn_blocking(move || p.remove(&id));
    match tokio::time::timeout(wait, task).await {
        Ok(Ok(Ok(()))) => true,
        Ok(Ok(Err(e))) => {
            tracing::warn!(error = %e, "the final status was not published");
            false
        }
        _ => {
            tracing::warn!("the final status was not published in time");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_final_status_keeps_a_tenth_of_the_deadline_at_most_a_second() {
        assert_eq!(
            status_reserve(Duration::from_secs(3)),
            Duration::from_millis(300)
        );
        assert_eq!(
            status_reserve(Duration::from_secs(30)),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn a_summary_is_clean_when_every_listener_closed_in_time() {
        let mut s = ShutdownSummary {
            within_deadline: true,
            ..Default::default()
        };
        s.listeners.insert(
            "a".into(),
            ShutdownReport {
                closed: true,
                ..Default::default()
            },
        );
        assert!(s.clean());
        s.listeners.insert("b".into(), ShutdownReport::default());
        assert!(!s.clean());
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["listeners"]["a"]["closed"], true);
    }
}
