//! An instance of a slot: a listener and its control-plane agent, started
//! with what the desired state wants paused in the slot already paused, so
//! that a standby never processes a record.

use std::sync::Arc;
use std::time::Duration;

use switchyard_control::status_topic::StatusPublisher;
use switchyard_control::{Agent, AgentConfig, DesiredState, SharedStore};
use switchyard_runtime::ListenerHandle;

/// Start the agent `cfg` for `listener`, after pausing what `initial`
/// wants paused in `cfg.slot` (partitions another slot owns, the operator's
/// pauses).
pub(crate) async fn start_in_slot(
    cfg: AgentConfig,
    listener: ListenerHandle,
    store: SharedStore,
    publisher: Option<StatusPublisher>,
    initial: &DesiredState,
) -> anyhow::Result<Agent> {
    let now = switchyard_control::model::now_ms();
    for t in switchyard_control::targets::wanted_in_slot(
        Some(initial),
        &Default::default(),
        listener.name(),
        &cfg.slot,
        now,
    ) {
        listener.pause(t).await?;
    }
    Ok(Agent::start(cfg, vec![Arc::new(listener)], store, publisher).await?)
}

/// Stop the agent and take the listener back for its shutdown.
pub(crate) async fn stop_agent(agent: Agent) -> anyhow::Result<ListenerHandle> {
    let mut listeners = agent.stop().await;
    let mut l = listeners
        .pop()
        .ok_or_else(|| anyhow::anyhow!("no listener"))?;
    for _ in 0..100 {
        match Arc::try_unwrap(l) {
            Ok(l) => return Ok(l),
            Err(back) => l = back,
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    anyhow::bail!("the listener is still in use")
}
