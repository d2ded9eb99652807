//! The per-instance agent: tails the desired state of its application in a
//! [`Store`](crate::store::Store), applies every accepted version to its
//! listeners (pause and resume through [`ListenerHandle`], waiting for each
//! pause to be acknowledged: drained and committed), evaluates expiries,
//! keeps the per-instance overrides, and publishes the instance's actual
//! state on every change and every heartbeat.
//!
//! For deployments it also applies slot ownership (pauses of partitions
//! another slot owns), start floors from handoff offsets, and, with the
//! shared-group strategy, the group membership of each listener (an
//! instance whose slot is not joined leaves the group).
//!
//! The runtime keeps the wanted targets of each listener and applies them to
//! partitions assigned later, so a pause follows a partition across
//! rebalances; at start-up the agent reads the desired state before its first
//! apply, so it also follows across restarts.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use switchyard_runtime::command::PartitionState;
use switchyard_runtime::{ListenerHandle, PauseTarget};
use tokio::sync::{watch, Notify};

use crate::error::{ControlError, Result};
use crate::model::{now_ms, DesiredState};
use crate::status::{InstanceStatus, ListenerReport, PartitionReport};
use crate::status_topic::StatusPublisher;
use crate::store::SharedStore;
use crate::targets::{self, Override, Overrides};

/// Who this agent is.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// Application.
    pub app: String,
    /// Instance id (pod name).
    pub instance: String,
    /// Slot (deployment colour).
    pub slot: String,
    /// Status heartbeat interval.
    pub heartbeat: Duration,
}

#[derive(Default)]
struct State {
    overrides: Overrides,
    override_gen: u64,
    held: BTreeMap<String, BTreeSet<PauseTarget>>,
    /// Held targets whose pause was answered without an acknowledgement
    /// (a partition's commit failed), per listener: paused again at the
    /// next apply, and until then the version is not applied.
    unacked: BTreeMap<String, BTreeSet<PauseTarget>>,
    /// Group membership applied per listener (shared-group strategy).
    joined: BTreeMap<String, bool>,
    /// Start floors applied per listener (handoff offsets).
    floors: BTreeMap<String, Vec<switchyard_runtime::StartFloor>>,
    desired: Option<DesiredState>,
    last_status: Option<InstanceStatus>,
}

struct Shared {
    cfg: AgentConfig,
    listeners: Mutex<BTreeMap<String, Arc<ListenerHandle>>>,
    store: SharedStore,
    publisher: Option<Arc<StatusPublisher>>,
    state: Mutex<State>,
    kick: Notify,
    /// (applied desired version, applied override generation)
    applied: watch::Sender<(u64, u64)>,
    stopping: AtomicBool,
    /// A pause was not acknowledged: apply again soon ([`RETRY`]).
    retry: AtomicBool,
    /// Set once [`Agent::stop`] begins: the HTTP servers serving this agent
    /// shut down, waits for an apply end.
    stopped: watch::Sender<bool>,
    /// The HTTP servers serving this agent (the admin API's): a stop
    /// waits for them, so no request still holds a listener.
    servers: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// One status publication at a time (the heartbeat task and the apply
    /// loop both publish): a snapshot never lands after a newer one.
    publishing: tokio::sync::Mutex<()>,
}

/// How long a stop waits for an HTTP server to finish its requests.
const SERVER_STOP: Duration = Duration::from_secs(5);

/// How soon an apply whose pauses were not all acknowledged is tried again.
const RETRY: Duration = Duration::from_millis(500);

/// A running agent; cheap to clone.
#[derive(Clone)]
pub struct Agent {
    shared: Arc<Shared>,
    task: Arc<Mutex<Option<tokio::task::JoinHandle<()>>>>,
}

impl Agent {
    /// Read the current desired state, apply it once to `listeners`, then
    /// keep applying in a background task.
    pub async fn start(
        cfg: AgentConfig,
        listeners: Vec<Arc<ListenerHandle>>,
        store: SharedStore,
        publisher: Option<StatusPublisher>,
    ) -> Result<Agent> {
        let app = cfg.app.clone();
        let s = store.clone();
        let rx = tokio::task::spawn_blocking(move || s.watch(&app))
            .await
            .map_err(|e| ControlError::Invalid(format!("watch task: {e}")))??;
        let shared = Arc::new(Shared {
            listeners: Mutex::new(
                listeners
                    .into_iter()
                    .map(|l| (l.name().to_string(), l))
                    .collect(),
            ),
            store,
            publisher: publisher.map(Arc::new),
            state: Mutex::default(),
            kick: Notify::new(),
            applied: watch::channel((0, 0)).0,
            stopped: watch::channel(false).0,
            servers: Mutex::default(),
            publishing: tokio::sync::Mutex::new(()),
            stopping: AtomicBool::new(false),
            retry: AtomicBool::new(false),
            cfg,
        });
        let mut rx = rx;
        shared.apply(&mut rx).await;
        shared.publish(true).await;
        let task = tokio::spawn(run(shared.clone(), rx));
        Ok(Agent {
            shared,
            task: Arc::new(Mutex::new(Some(task))),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &AgentConfig {
        &self.shared.cfg
    }

    /// The store this agent reads.
    pub fn store(&self) -> SharedStore {
        self.shared.store.clone()
    }

    /// Listener ids.
    pub fn listeners(&self) -> Vec<Arc<ListenerHandle>> {
        self.shared
            .listeners
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Names of the listeners this agent steers.
    pub fn listener_names(&self) -> Vec<String> {
        self.shared
            .listeners
            .lock()
            .unwrap()
            .keys()
            .cloned()
            .collect()
    }

    /// The desired state last applied.
    pub fn desired(&self) -> Option<DesiredState> {
        self.shared.state.lock().unwrap().desired.clone()
    }

    /// The desired version last applied.
    pub fn applied_version(&self) -> u64 {
        self.shared.applied.borrow().0
    }

    /// Wait until desired version `version` or newer is applied here.
    pub async fn wait_applied(&self, version: u64, timeout: Duration) -> Result<()> {
        let what = format!("desired version {version}");
        self.wait_for_applied(|(v, _)| *v >= version, &what, timeout)
            .await
    }

    /// Wait until (applied version, applied override generation) satisfies `done`.
    async fn wait_for_applied(
        &self,
        done: impl FnMut(&(u64, u64)) -> bool,
        what: &str,
        timeout: Duration,
    ) -> Result<()> {
        let mut rx = self.shared.applied.subscribe();
        let stopped = self.stopped();
        tokio::select! {
            r = tokio::time::timeout(timeout, rx.wait_for(done)) => {
                r.map_err(|_| ControlError::Timeout(format!("{what} not applied within {timeout:?}")))?
                    .map_err(|_| ControlError::Invalid("the agent stopped".into()))?;
                Ok(())
            }
            () = stopped => Err(ControlError::Timeout(format!(
                "{what} not applied: the instance is stopping"
            ))),
        }
    }

    /// Resolves once [`Agent::stop`] has begun (an HTTP server serving
    /// this agent shuts down then).
    pub fn stopped(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.shared.stopped.subscribe();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    }

    /// An HTTP server task serving this agent: [`Agent::stop`] waits for it
    /// (at most 5 s, then aborts it).
    pub(crate) fn attach_server(&self, task: tokio::task::JoinHandle<()>) {
        self.shared.servers.lock().unwrap().push(task);
    }

    /// Set (or clear, with `None`) the override of `listener` on this
    /// instance, and wait until it is applied (pauses acknowledged). An
    /// override only pauses more: `Override::Resumed` clears the override,
    /// and what the desired state withholds (its pauses, partitions of
    /// another slot) stays paused ([`Agent::withheld`]).
    pub async fn set_override(
        &self,
        listener: &str,
        o: Option<Override>,
        timeout: Duration,
    ) -> Result<()> {
        if !self.shared.listeners.lock().unwrap().contains_key(listener) {
            return Err(ControlError::UnknownListener(listener.into()));
        }
        let gen = {
            let mut st = self.shared.state.lock().unwrap();
            match o {
                Some(Override::Paused) => st.overrides.insert(listener.into(), Override::Paused),
                // an override only pauses more: resuming is clearing it
                Some(Override::Resumed) | None => st.overrides.remove(listener),
            };
            st.override_gen += 1;
            st.override_gen
        };
        self.shared.kick.notify_one();
        let what = format!("override of `{listener}`");
        self.wait_for_applied(|(_, g)| *g >= gen, &what, timeout)
            .await
    }

    /// The actual state of this instance, now.
    pub async fn status(&self) -> InstanceStatus {
        self.shared.status().await
    }

    /// What the desired state withholds from `listener` on this instance
    /// now, whatever its override: the fleet's pauses and the partitions
    /// owned by another slot or by nobody.
    pub fn withheld(&self, listener: &str) -> BTreeSet<PauseTarget> {
        let st = self.shared.state.lock().unwrap();
        targets::wanted_in_slot(
            st.desired.as_ref(),
            &Overrides::new(),
            listener,
            &self.shared.cfg.slot,
            now_ms(),
        )
    }

    /// Targets held for `listener` and its override.
    pub fn held(&self, listener: &str) -> (Vec<PauseTarget>, Option<Override>) {
        let st = self.shared.state.lock().unwrap();
        (
            st.held
                .get(listener)
                .map(|h| h.iter().cloned().collect())
                .unwrap_or_default(),
            st.overrides.get(listener).copied(),
        )
    }

    /// Stop the agent (the listeners keep their pauses) and the HTTP
    /// servers serving it (their requests finish first, at most 5 s),
    /// remove this instance's status, and hand the listeners back for their
    /// shutdown: nothing else holds them then, so each `Arc` can be
    /// unwrapped for [`ListenerHandle::shutdown`].
    pub async fn stop(&self) -> Vec<Arc<ListenerHandle>> {
        let (listeners, publisher) = self.stop_keeping_status().await;
        if let Some(p) = publisher {
            let id = self.shared.cfg.instance.clone();
            let _ = tokio::task::spawn_blocking(move || p.remove(&id)).await;
        }
        listeners
    }

    /// [`Agent::stop`] without removing this instance's status: the
    /// listeners and the status publisher are handed back, so that the
    /// caller can shut the listeners down first and remove the status
    /// ([`StatusPublisher::remove`]) once they have left their groups: until
    /// then the instance still counts as live in the fleet view.
    pub async fn stop_keeping_status(
        &self,
    ) -> (Vec<Arc<ListenerHandle>>, Option<Arc<StatusPublisher>>) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        self.shared.stopped.send_replace(true);
        self.shared.kick.notify_one();
        let task = self.task.lock().unwrap().take();
        if let Some(t) = task {
            let _ = t.await;
        }
        let servers = std::mem::take(&mut *self.shared.servers.lock().unwrap());
        for mut s in servers {
            if tokio::time::timeout(SERVER_STOP, &mut s).await.is_err() {
                tracing::warn!(
                    "the admin HTTP server did not finish its requests in time; aborted"
                );
                s.abort();
                let _ = s.await;
            }
        }
        let listeners = std::mem::take(&mut *self.shared.listeners.lock().unwrap())
            .into_values()
            .collect();
        (listeners, self.shared.publisher.clone())
    }
}

async fn run(shared: Arc<Shared>, mut rx: watch::Receiver<Option<DesiredState>>) {
    let beat = shared.cfg.heartbeat;
    let heartbeat = tokio::spawn(heartbeat(shared.clone()));
    let mut stop = shared.stopped.subscribe();
    while !shared.stopping.load(Ordering::SeqCst) {
        let expiry = targets::next_expiry(shared.state.lock().unwrap().desired.as_ref(), now_ms());
        let mut wait = beat;
        if let Some(e) = expiry {
            wait = wait.min(Duration::from_millis((e - now_ms()).max(0) as u64));
        }
        if shared.retry.load(Ordering::SeqCst) {
            wait = wait.min(RETRY);
        }
        tokio::select! {
            r = rx.changed() => if r.is_err() {
                tracing::warn!("the desired-state source stopped; keeping the last state");
                rx = watch::channel(shared.state.lock().unwrap().desired.clone()).1;
                // never changes again; heartbeats go on
                let _ = rx.borrow_and_update();
            },
            _ = shared.kick.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
        if shared.stopping.load(Ordering::SeqCst) {
            break;
        }
        // a stop does not wait for an apply in progress (a pause waiting
        // for a wedged handler's drain): the shutdown has its own deadline
        tokio::select! {
            _ = shared.apply(&mut rx) => {}
            _ = stopped(&mut stop) => break,
        }
        shared.publish(false).await;
    }
    heartbeat.abort();
    let _ = heartbeat.await;
}

/// Resolves once the agent is told to stop.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await.map(|_| ());
}

/// The status every heartbeat, whatever the apply loop is doing: an
/// instance applying a change (a pause draining its partitions) keeps
/// reporting, with the partitions `draining`, and is never taken for gone.
async fn heartbeat(shared: Arc<Shared>) {
    let mut stop = shared.stopped.subscribe();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(shared.cfg.heartbeat) => shared.publish(true).await,
            _ = stopped(&mut stop) => return,
        }
    }
}

/// Before a resume: every assigned partition of `l` that goes from paused
/// (`held`) to running (`want`) and has a handoff offset starts at
/// `max(own committed, handoff)`: a seek, which the runtime commits, while
/// the partition is still paused (docs/design.md, handoff step 5).
async fn handoff_seeks(
    l: &ListenerHandle,
    desired: Option<&DesiredState>,
    held: &BTreeSet<PauseTarget>,
    want: &BTreeSet<PauseTarget>,
) {
    if desired.is_none_or(|d| !d.handoff.contains_key(l.name())) {
        return;
    }
    let Ok(snap) = l.snapshot_local().await else {
        return;
    };
    for p in &snap.partitions {
        let (t, n) = (p.topic.as_str(), p.partition);
        let was = held.iter().any(|x| x.matches(t, n));
        let will = want.iter().any(|x| x.matches(t, n));
        if !was || will {
            continue;
        }
        let Some(h) = targets::handoff_offset(desired, l.name(), t, n) else {
            continue;
        };
        let start = p.committed.map_or(h, |c| c.max(h));
        // what the previous owner finished above the handoff offset counts
        // only when starting there (a committed offset past it is this
        // group's own, with its own metadata)
        let done = if start == h {
            targets::handoff_done(desired, l.name(), t, n)
        } else {
            Vec::new()
        };
        match l.seek_handoff(t, n, start, done).await {
            Ok(_) => {
                tracing::info!(listener = l.name(), topic = t, partition = n, start, handoff = h, committed = ?p.committed, "handoff: starting at max(committed, handoff)")
            }
            Err(e) => {
                tracing::warn!(listener = l.name(), topic = t, partition = n, error = %e, "handoff seek failed")
            }
        }
    }
}

impl Shared {
    fn listeners(&self) -> Vec<Arc<ListenerHandle>> {
        self.listeners.lock().unwrap().values().cloned().collect()
    }

    /// The pause targets `listener` holds now.
    fn held(&self, listener: &str) -> BTreeSet<PauseTarget> {
        let st = self.state.lock().unwrap();
        st.held.get(listener).cloned().unwrap_or_default()
    }

    /// Move every listener to the targets wanted now.
    async fn apply(&self, rx: &mut watch::Receiver<Option<DesiredState>>) {
        let desired = rx.borrow_and_update().clone();
        let (overrides, gen) = {
            let st = self.state.lock().unwrap();
            if let Some(why) = desired.as_ref().and_then(|d| d.unreadable.as_deref()) {
                if st.desired.as_ref().and_then(|d| d.unreadable.as_deref()) != Some(why) {
                    tracing::warn!(app = %self.cfg.app, reason = why, "desired state unreadable: holding every listener paused");
                }
            }
            (st.overrides.clone(), st.override_gen)
        };
        let now = now_ms();
        for l in self.listeners() {
            let want = targets::wanted_in_slot(
                desired.as_ref(),
                &overrides,
                l.name(),
                &self.cfg.slot,
                now,
            );
            let held = self.held(l.name());
            let mut plan = targets::plan(&held, &want);
            // pauses answered without an acknowledgement: again (the
            // runtime tries the commit again)
            let unacked = self.state.lock().unwrap().unacked.remove(l.name());
            for t in unacked.into_iter().flatten().filter(|t| want.contains(t)) {
                if !plan.pause.contains(&t) {
                    plan.pause.push(t);
                }
            }
            if plan.is_empty() {
                self.apply_group(&l, desired.as_ref()).await;
                continue;
            }
            if !plan.resume.is_empty() {
                handoff_seeks(&l, desired.as_ref(), &held, &want).await;
            }
            // pauses first, then resumes that keep the wanted targets they
            // cover: a partition that stays wanted paused (owned by another
            // slot, say) is never resumed for a moment
            let mut unacked = BTreeSet::new();
            for t in &plan.pause {
                tracing::info!(listener = l.name(), target = %targets::describe(t), "pausing");
                match l.pause(t.clone()).await {
                    Ok(ack) if ack.is_acknowledged() => {
                        tracing::info!(listener = l.name(), target = %targets::describe(t), partitions = ack.partitions.len(), "pause acknowledged")
                    }
                    Ok(ack) => {
                        let failures: Vec<String> = ack
                            .failures()
                            .map(|p| {
                                let why = p.error.as_deref().unwrap_or_default();
                                format!("{}-{}: {why}", p.topic, p.partition)
                            })
                            .collect();
                        tracing::warn!(listener = l.name(), target = %targets::describe(t), ?failures, "pause not acknowledged; trying again");
                        unacked.insert(t.clone());
                    }
                    Err(e) => tracing::warn!(listener = l.name(), error = %e, "pause failed"),
                }
            }
            let keep: Vec<PauseTarget> = want.iter().cloned().collect();
            for t in &plan.resume {
                tracing::info!(listener = l.name(), target = %targets::describe(t), "resuming");
                if let Err(e) = l.resume_keeping(t.clone(), keep.clone()).await {
                    tracing::warn!(listener = l.name(), error = %e, "resume failed");
                }
            }
            {
                let mut st = self.state.lock().unwrap();
                st.held.insert(l.name().to_string(), want);
                if !unacked.is_empty() {
                    st.unacked.insert(l.name().to_string(), unacked);
                }
            }
            self.apply_group(&l, desired.as_ref()).await;
        }
        let version = desired.as_ref().map_or(0, |d| d.version);
        // a version is applied when every pause of it is acknowledged
        let acknowledged = {
            let mut st = self.state.lock().unwrap();
            st.desired = desired;
            st.unacked.is_empty()
        };
        self.retry.store(!acknowledged, Ordering::SeqCst);
        if acknowledged {
            self.applied.send_replace((version, gen));
        }
    }

    /// Group membership (join or leave, shared-group strategy) and start
    /// floors (handoff offsets) of `l`, after its pauses: a listener that
    /// joins already holds its pause targets.
    async fn apply_group(&self, l: &ListenerHandle, desired: Option<&DesiredState>) {
        // an unreadable state says nothing about membership or floors: keep what was applied
        if desired.is_some_and(DesiredState::is_unreadable) {
            return;
        }
        let name = l.name().to_string();
        let join = targets::joins(desired, &name, &self.cfg.slot);
        let floors = targets::start_floors(desired, &name, &self.cfg.slot);
        let (joined, floored) = {
            let st = self.state.lock().unwrap();
            (st.joined.get(&name).copied(), st.floors.get(&name).cloned())
        };
        if floored.as_ref() != Some(&floors) {
            if let Err(e) = l.set_start_floors(floors.clone()).await {
                tracing::warn!(listener = %name, error = %e, "cannot set start floors");
            }
            self.state
                .lock()
                .unwrap()
                .floors
                .insert(name.clone(), floors);
        }
        if joined == Some(join) {
            return;
        }
        let result = if join {
            l.join_group().await
        } else {
            tracing::info!(listener = %name, slot = %self.cfg.slot, "leaving the group (slot not joined)");
            l.leave_group().await
        };
        match result {
            Ok(()) => tracing::info!(listener = %name, join, "group membership applied"),
            // a standalone listener has no group: nothing to apply, ever
            Err(e) => tracing::debug!(listener = %name, error = %e, "group membership not applied"),
        }
        self.state.lock().unwrap().joined.insert(name, join);
    }

    async fn status(&self) -> InstanceStatus {
        let mut listeners = Vec::new();
        for l in self.listeners() {
            // no log ends: a broker request here would hold the poll
            // thread, and this status, up to a long-poll fetch
            let snapshot = l.snapshot_local().await;
            let joined = snapshot.as_ref().ok().and_then(|s| s.joined);
            let partitions = match snapshot {
                Ok(s) => s
                    .partitions
                    .iter()
                    .map(|p| PartitionReport {
                        topic: p.topic.clone(),
                        partition: p.partition,
                        state: match p.state {
                            PartitionState::Running => "running",
                            PartitionState::Paused => "paused",
                            PartitionState::Draining => "draining",
                            PartitionState::Stopped => "stopped",
                        }
                        .into(),
                        in_flight: p.in_flight,
                        committed: p.committed,
                        reason: p.reason.clone(),
                    })
                    .collect(),
                Err(_) => Vec::new(),
            };
            let held = self.held(l.name());
            listeners.push(ListenerReport {
                name: l.name().to_string(),
                group: l.group_id().map(str::to_string),
                joined,
                partitions,
                paused_targets: held.iter().map(targets::describe).collect(),
            });
        }
        let st = self.state.lock().unwrap();
        InstanceStatus {
            instance: self.cfg.instance.clone(),
            slot: self.cfg.slot.clone(),
            app: self.cfg.app.clone(),
            listeners,
            applied_version: self.applied.borrow().0,
            overrides: st.overrides.clone(),
            heartbeat_ms: self.cfg.heartbeat.as_millis() as u64,
            timestamp_ms: now_ms(),
            unreadable: st.desired.as_ref().and_then(|d| d.unreadable.clone()),
        }
    }

    /// Publish the status if it changed, or anyway when `heartbeat`.
    async fn publish(&self, heartbeat: bool) {
        let Some(p) = self.publisher.clone() else {
            return;
        };
        let _one = self.publishing.lock().await;
        let status = self.status().await;
        let changed = self
            .state
            .lock()
            .unwrap()
            .last_status
            .as_ref()
            .is_none_or(|l| !l.same_as(&status));
        if !changed && !heartbeat {
            return;
        }
        let s = status.clone();
        match tokio::task::spawn_blocking(move || p.publish(&s)).await {
            Ok(Ok(())) => self.state.lock().unwrap().last_status = Some(status),
            Ok(Err(e)) => tracing::warn!(error = %e, "status publish failed"),
            Err(e) => tracing::warn!(error = %e, "status publish task failed"),
        }
    }
}
