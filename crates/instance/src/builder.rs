//! [`InstanceBuilder`]: what one instance is made of, and its start in
//! order:
//!
//! 1. the control plane's store is opened and the desired state of the
//!    application read (with the status publisher, off the async runtime);
//! 2. each listener starts detached (outside its group) and pauses what
//!    the desired state wants paused in this instance's slot;
//! 3. the agent starts: it applies the desired state and joins the
//!    listeners to their groups, then keeps applying;
//! 4. the admin HTTP API binds its address.
//!
//! Without a control plane, the listeners start in their groups at once
//! and the admin API serves metrics and health only.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use switchyard_config::Connection;
use switchyard_control::compacted_topic::TopicOptions;
use switchyard_control::status_topic::{StatusPublisher, StatusTail};
use switchyard_control::{Agent, AgentConfig};
use switchyard_runtime::{ListenerBuilder, ListenerHandle};

use crate::error::{InstanceError, Result};
use crate::instance::{Admin, Instance};
use crate::signals::Signals;
use crate::store::ControlStore;
use crate::{admin, slot};

/// The default status heartbeat interval.
pub const DEFAULT_STATUS_INTERVAL: Duration = Duration::from_secs(1);

/// The default shutdown deadline of an instance.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

/// The application, slot and store of an instance's control plane.
#[derive(Debug, Clone)]
pub(crate) struct Plane {
    pub(crate) app: String,
    pub(crate) slot: String,
    pub(crate) store: ControlStore,
}

/// Builds an [`Instance`]; see [`Instance::builder`]. Without a control
/// plane an instance is its listeners, their metrics and probes, and the
/// stop signals:
///
/// ```no_run
/// use switchyard_config::ConsumerConfig;
/// use switchyard_instance::Instance;
/// use switchyard_runtime::{deserializer::Utf8, record::Record, Listener};
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let audit = Listener::builder("audit")
///     .config(ConsumerConfig::new("127.0.0.1:9092").with_group("audit"))
///     .topics(["orders"])
///     .handler(Utf8, Utf8, |_r: Record<String, String>| async { Ok(()) });
/// let instance = Instance::builder("audit-1")
///     .listener(audit)
///     .http("0.0.0.0:9090".parse()?) // /metrics, /healthz, /readyz
///     .start()
///     .await?;
/// let summary = instance.run_until_signal().await?;
/// println!("{}", summary.listeners["audit"].committed.len());
/// # Ok(()) }
/// ```
pub struct InstanceBuilder {
    pub(crate) id: String,
    pub(crate) connection: Option<Connection>,
    pub(crate) listeners: Vec<ListenerBuilder>,
    pub(crate) plane: Option<Plane>,
    pub(crate) status_topic: Option<String>,
    pub(crate) status_interval: Duration,
    pub(crate) create_topics: bool,
    pub(crate) http: Option<SocketAddr>,
    pub(crate) token: Option<String>,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) signals: bool,
}

impl Instance {
    /// A builder of the instance `id` (the pod name: the key of its status).
    pub fn builder(id: impl Into<String>) -> InstanceBuilder {
        InstanceBuilder::new(id.into())
    }
}

impl InstanceBuilder {
    pub(crate) fn new(id: String) -> InstanceBuilder {
        InstanceBuilder {
            id,
            connection: None,
            listeners: Vec::new(),
            plane: None,
            status_topic: None,
            status_interval: DEFAULT_STATUS_INTERVAL,
            create_topics: true,
            http: None,
            token: None,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            signals: true,
        }
    }

    /// The Kafka connection of the clients the instance creates: the
    /// control topic's reader and writer, the status publisher and the
    /// fleet view's reader. (Each listener's consumer is built from its own
    /// [`ConsumerConfig`](switchyard_config::ConsumerConfig); give it the
    /// same connection with `with_connection`.)
    pub fn connection(mut self, connection: impl Into<Connection>) -> Self {
        self.connection = Some(connection.into());
        self
    }

    /// Add a listener (its name must be unique in the instance). It is
    /// started by [`InstanceBuilder::start`], detached when there is a
    /// control plane.
    pub fn listener(mut self, listener: ListenerBuilder) -> Self {
        self.listeners.push(listener);
        self
    }

    /// Run the control-plane agent of application `app` in slot `slot`,
    /// reading the desired state from `store`.
    pub fn control(
        mut self,
        app: impl Into<String>,
        slot: impl Into<String>,
        store: ControlStore,
    ) -> Self {
        self.plane = Some(Plane {
            app: app.into(),
            slot: slot.into(),
            store,
        });
        self
    }

    /// Publish this instance's status to the compacted `topic` (created
    /// when missing unless [`create_topics`](Self::create_topics) is off),
    /// and serve the fleet view read from it at `GET /fleet`.
    /// Needs a control plane and a connection.
    pub fn status_topic(mut self, topic: impl Into<String>) -> Self {
        self.status_topic = Some(topic.into());
        self
    }

    /// Create the status topic when it is missing (default true). Off, a
    /// missing status topic is an error naming it. (The control topic is
    /// never created by an instance.)
    pub fn create_topics(mut self, create: bool) -> Self {
        self.create_topics = create;
        self
    }

    /// The status heartbeat interval (default 1 s).
    pub fn status_interval(mut self, interval: Duration) -> Self {
        self.status_interval = interval;
        self
    }

    /// Serve the admin HTTP API on `addr` (`0.0.0.0:8080`, or port 0 for
    /// any free port; [`Instance::http_addr`] says which).
    pub fn http(mut self, addr: SocketAddr) -> Self {
        self.http = Some(addr);
        self
    }

    /// Require `Authorization: Bearer <token>` for the admin API's
    /// mutations. Needs a control plane and the admin API.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// The deadline of the whole shutdown (default 10 s): the agent stops,
    /// every listener drains, commits and leaves its group, and the status
    /// is removed within it. A listener gets the time left, or its own
    /// deadline when that is shorter.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// Catch SIGTERM and SIGINT from the start (default true), for
    /// [`Instance::run_until_signal`]. Off, the process keeps the default
    /// actions until `run_until_signal` is called.
    pub fn handle_signals(mut self, handle: bool) -> Self {
        self.signals = handle;
        self
    }

    fn validate(&self) -> Result<()> {
        let invalid = |why: &str| Err(InstanceError::Invalid(why.into()));
        if self.id.trim().is_empty() {
            return invalid("the instance id is blank");
        }
        if self.listeners.is_empty() {
            return invalid("no listener was given");
        }
        let mut names: Vec<&str> = self.listeners.iter().map(|l| l.name()).collect();
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(InstanceError::Invalid(format!(
                "two listeners are named `{}`",
                w[0]
            )));
        }
        if let Some(p) = &self.plane {
            if p.app.trim().is_empty() || p.slot.trim().is_empty() {
                return invalid("the application or slot name is blank");
            }
        } else if self.status_topic.is_some() || self.token.is_some() {
            return invalid("a status topic or a token needs a control plane (`control`)");
        }
        if self.token.is_some() && self.http.is_none() {
            return invalid("a token guards the admin API: give its address (`http`)");
        }
        if self.status_topic.is_some() && self.connection.is_none() {
            return invalid("the status topic needs a Kafka connection (`connection`)");
        }
        if self.status_interval.is_zero() {
            return invalid("the status interval is zero");
        }
        Ok(())
    }

    /// Start the instance (within a tokio runtime): see the order in this
    /// module's documentation. A failure stops what had started.
    pub async fn start(self) -> Result<Instance> {
        self.validate()?;
        let signals = if self.signals {
            Some(Signals::install().map_err(InstanceError::Signals)?)
        } else {
            None
        };
        let Some(plane) = self.plane.clone() else {
            return self.start_alone(signals).await;
        };
        let (connection, app, status) = (
            self.connection.clone(),
            plane.app.clone(),
            self.status_topic.clone(),
        );
        let fleet = self.http.is_some() && status.is_some();
        let options = TopicOptions {
            create: self.create_topics,
        };
        let (store, publisher, tail, initial) = tokio::task::spawn_blocking(move || {
            let store = plane.store.open(connection.as_ref(), &app)?;
            let initial = store.read(&app)?;
            let (publisher, tail) = match (&status, &connection) {
                (Some(topic), Some(c)) => (
                    Some(StatusPublisher::open(c, topic, options)?),
                    if fleet {
                        Some(StatusTail::open(c, topic, TopicOptions::no_create())?)
                    } else {
                        None
                    },
                ),
                _ => (None, None),
            };
            Ok::<_, InstanceError>((store, publisher, tail, initial))
        })
        .await
        .map_err(|e| InstanceError::Task(e.to_string()))??;
        let plane = self.plane.clone().expect("checked");
        let mut handles = Vec::new();
        for b in self.listeners {
            let name = b.name().to_string();
            let l = b
                .detached(true)
                .start()
                .map_err(|e| InstanceError::listener(&name, e))?;
            slot::pause_for_slot(&l, &initial, &plane.slot).await?;
            handles.push(Arc::new(l));
        }
        let cfg = AgentConfig {
            app: plane.app.clone(),
            instance: self.id.clone(),
            slot: plane.slot.clone(),
            heartbeat: self.status_interval,
        };
        let agent = match Agent::start(cfg, handles, store, publisher).await {
            Ok(a) => a,
            Err(e) => {
                if let Some(t) = &tail {
                    t.stop();
                }
                return Err(e.into());
            }
        };
        tracing::info!(instance = %self.id, app = %plane.app, slot = %plane.slot, "instance started");
        let mut instance = Instance::new(
            self.id,
            Admin::Agent(agent.clone()),
            self.shutdown_timeout,
            signals,
        );
        instance.fleet = tail.clone();
        if let Some(addr) = self.http {
            match admin::serve_agent(addr, &agent, self.token, tail).await {
                Ok(bound) => instance.http = Some(bound),
                Err(e) => {
                    instance.shutdown().await;
                    return Err(e);
                }
            }
        }
        Ok(instance)
    }

    /// Start without a control plane: listeners in their groups at once.
    async fn start_alone(self, signals: Option<Signals>) -> Result<Instance> {
        let mut handles: Vec<Arc<ListenerHandle>> = Vec::new();
        for b in self.listeners {
            let name = b.name().to_string();
            let l = b
                .detached(false)
                .start()
                .map_err(|e| InstanceError::listener(&name, e))?;
            handles.push(Arc::new(l));
        }
        let mut instance = Instance::new(
            self.id,
            Admin::Alone(handles.clone()),
            self.shutdown_timeout,
            signals,
        );
        if let Some(addr) = self.http {
            match admin::serve_probes(addr, handles).await {
                Ok((bound, server)) => {
                    instance.http = Some(bound);
                    instance.probes = Some(server);
                }
                Err(e) => {
                    instance.shutdown().await;
                    return Err(e);
                }
            }
        }
        Ok(instance)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_runtime::Listener;

    fn listener(name: &str) -> ListenerBuilder {
        Listener::builder(name)
    }

    fn refusal(b: InstanceBuilder) -> String {
        b.validate().unwrap_err().to_string()
    }

    #[test]
    fn what_cannot_run_is_refused_with_the_reason() {
        let b = || InstanceBuilder::new("i-1".into());
        assert!(refusal(b()).contains("no listener"));
        let two = b().listener(listener("a")).listener(listener("a"));
        assert!(refusal(two).contains("two listeners are named `a`"));
        let status = b().listener(listener("a")).status_topic("st");
        assert!(refusal(status).contains("needs a control plane"));
        let token = b()
            .listener(listener("a"))
            .control("app", "blue", ControlStore::file("/nonexistent"))
            .token("t");
        assert!(refusal(token).contains("admin API"));
        let blank =
            b().listener(listener("a"))
                .control("app", " ", ControlStore::file("/nonexistent"));
        assert!(refusal(blank).contains("blank"));
        let ok = b()
            .listener(listener("a"))
            .listener(listener("b"))
            .control("app", "blue", ControlStore::file("/nonexistent"))
            .http("0.0.0.0:0".parse().unwrap())
            .token("t");
        assert!(ok.validate().is_ok());
    }
}
