//! Consumer per thread: N listeners of one group in the process, each with
//! its own consumer and poll thread, sharing only the definition (like
//! Spring's `ConcurrentMessageListenerContainer`). Kafka spreads the
//! partitions over them; members beyond the partition count stay idle and
//! are reported by [`ConcurrentListener::idle_members`] (and logged at each
//! assignment).
//!
//! ```no_run
//! # use switchyard_runtime::{Listener, deserializer::Bytes, record::Record};
//! # async fn demo() -> Result<(), switchyard_runtime::RuntimeError> {
//! let members = Listener::builder("orders")
//!     .topics(["orders"])
//!     .handler(Bytes, Bytes, |_r: Record<Vec<u8>, Vec<u8>>| async { Ok(()) })
//!     .start_concurrent(3)?;
//! println!("idle: {:?}", members.idle_members().await);
//! members.shutdown().await;
//! # Ok(()) }
//! ```

use futures::future::join_all;

use crate::command::{ListenerSnapshot, PauseAck, PauseTarget, ShutdownReport};
use crate::error::RuntimeError;
use crate::listener::{ListenerBuilder, ListenerHandle};

/// N members of one listener definition in this process.
pub struct ConcurrentListener {
    members: Vec<ListenerHandle>,
}

impl ListenerBuilder {
    /// Start `n` members named `<name>-0` .. `<name>-{n-1}`, each with its own
    /// consumer in the same group.
    pub fn start_concurrent(self, n: usize) -> Result<ConcurrentListener, RuntimeError> {
        let base = self.name().to_string();
        let mut members = Vec::with_capacity(n);
        for i in 0..n.max(1) {
            members.push(self.clone().renamed(format!("{base}-{i}")).start()?);
        }
        Ok(ConcurrentListener { members })
    }
}

impl ConcurrentListener {
    /// The members' handles.
    pub fn members(&self) -> &[ListenerHandle] {
        &self.members
    }

    /// Snapshots of every member.
    pub async fn snapshots(&self) -> Result<Vec<ListenerSnapshot>, RuntimeError> {
        join_all(self.members.iter().map(|m| m.snapshot()))
            .await
            .into_iter()
            .collect()
    }

    /// Names of members with no partition assigned.
    pub async fn idle_members(&self) -> Vec<String> {
        self.snapshots()
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|s| s.partitions.is_empty())
            .map(|s| s.name)
            .collect()
    }

    /// Pause `target` on every member; the acknowledgements are merged.
    pub async fn pause(&self, target: PauseTarget) -> Result<PauseAck, RuntimeError> {
        let acks = join_all(self.members.iter().map(|m| m.pause(target.clone()))).await;
        let mut all = PauseAck::default();
        for a in acks {
            all.partitions.extend(a?.partitions);
        }
        Ok(all)
    }

    /// Resume `target` on every member.
    pub async fn resume(&self, target: PauseTarget) -> Result<(), RuntimeError> {
        for r in join_all(self.members.iter().map(|m| m.resume(target.clone()))).await {
            r?;
        }
        Ok(())
    }

    /// Shut every member down concurrently, each within its deadline.
    pub async fn shutdown(self) -> Vec<ShutdownReport> {
        join_all(self.members.into_iter().map(ListenerHandle::shutdown)).await
    }
}
