//! Log ends of partitions that stand still, asked of the broker from
//! outside the poll thread.
//!
//! librdkafka learns a partition's log end from fetch responses, so the
//! figure stands still while the partition's fetching is paused (a pause by
//! the application or the control plane, a stopped partition). A
//! `ListenerHandle::snapshot`, which feeds
//! the lag metrics, asks the broker for those partitions' log ends here:
//! on a client of its own (the listener's connection settings without its
//! group, created at the first need), on a blocking thread, each partition
//! at most once a second and at most [`PER_SNAPSHOT`] per snapshot; a
//! snapshot waits at most 300 ms for the answers (later ones serve the next
//! snapshot). The poll thread never waits for these requests, and a request
//! that times out cannot disturb the consumer's connections.
//!
//! The figures are patched into the snapshot the poll thread built:
//!
//! ```ignore
//! # use switchyard_runtime::command::{PartitionState, PartitionStatus};
//! # use switchyard_runtime::log_ends::patch;
//! let mut p = PartitionStatus {
//!     topic: "t".into(), partition: 0, state: PartitionState::Paused,
//!     in_flight: 0, buffered: 0, committed: Some(10), buffered_bytes: 0,
//!     log_end: Some(10), lag: Some(0), time_lag_ms: Some(0), reason: None,
//! };
//! patch(&mut p, 17); // 7 records produced while paused
//! assert_eq!((p.log_end, p.lag, p.time_lag_ms), (Some(17), Some(7), None));
//! ```
//!
//! (The unit test `the_module_example` runs this example.)

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;

use crate::command::{ListenerSnapshot, PartitionState, PartitionStatus};

/// Most partitions asked for in one snapshot.
pub const PER_SNAPSHOT: usize = 4;
/// Shortest interval between two requests for one partition.
const EVERY: Duration = Duration::from_secs(1);
/// Longest wait of the client for one answer.
const TIMEOUT: Duration = Duration::from_secs(2);
/// Longest wait of a snapshot for the answers: later ones are kept for the
/// next snapshot (a metrics scrape must not wait for a slow broker).
const SNAPSHOT_WAIT: Duration = Duration::from_millis(300);

use switchyard_config::Tp;

/// The side client and the last answers, per listener.
pub(crate) struct LogEnds {
    config: ClientConfig,
    client: Mutex<Option<Arc<BaseConsumer>>>,
    /// The last answer per partition.
    known: Arc<Mutex<HashMap<Tp, i64>>>,
    /// When each partition was last asked for.
    asked: Mutex<HashMap<Tp, Instant>>,
}

impl LogEnds {
    /// From the listener's client configuration; the group settings are
    /// dropped (the side client never joins a group).
    pub fn new(listener: &ClientConfig) -> Self {
        let mut config = listener.clone();
        config
            .remove("group.id")
            .remove("group.instance.id")
            .set("enable.auto.commit", "false");
        LogEnds {
            config,
            client: Mutex::new(None),
            known: Arc::default(),
            asked: Mutex::new(HashMap::new()),
        }
    }

    /// Ask for the stale log ends of `snap`'s partitions that stand still,
    /// and patch every such partition with the last answer known.
    pub async fn refresh(&self, snap: &mut ListenerSnapshot) {
        let still: Vec<Tp> = snap
            .partitions
            .iter()
            .filter(|p| stands_still(p))
            .map(|p| (p.topic.clone(), p.partition))
            .collect();
        let stale: Vec<Tp> = {
            let mut asked = self.asked.lock().expect("not poisoned");
            asked.retain(|tp, _| still.contains(tp));
            let stale: Vec<Tp> = still
                .iter()
                .filter(|tp| asked.get(*tp).is_none_or(|at| at.elapsed() >= EVERY))
                .take(PER_SNAPSHOT)
                .cloned()
                .collect();
            for tp in &stale {
                asked.insert(tp.clone(), Instant::now());
            }
            stale
        };
        self.known
            .lock()
            .expect("not poisoned")
            .retain(|tp, _| still.contains(tp));
        if !stale.is_empty() {
            self.ask(stale).await;
        }
        let known = self.known.lock().expect("not poisoned");
        for p in snap.partitions.iter_mut().filter(|p| stands_still(p)) {
            if let Some(end) = known.get(&(p.topic.clone(), p.partition)) {
                patch(p, *end);
            }
        }
    }

    async fn ask(&self, stale: Vec<Tp>) {
        let Some(client) = self.client() else {
            return;
        };
        let known = self.known.clone();
        let asking = tokio::task::spawn_blocking(move || {
            for tp in stale {
                match client.fetch_watermarks(&tp.0, tp.1, TIMEOUT) {
                    Ok((_, end)) => {
                        known.lock().expect("not poisoned").insert(tp, end);
                    }
                    Err(e) => {
                        tracing::debug!(topic = %tp.0, partition = tp.1, error = %e, "log end not known")
                    }
                }
            }
        });
        let _ = tokio::time::timeout(SNAPSHOT_WAIT, asking).await;
    }

    fn client(&self) -> Option<Arc<BaseConsumer>> {
        let mut client = self.client.lock().expect("not poisoned");
        if client.is_none() {
            match self.config.create::<BaseConsumer>() {
                Ok(c) => *client = Some(Arc::new(c)),
                Err(e) => tracing::warn!(error = %e, "cannot create the log-end client"),
            }
        }
        client.clone()
    }
}

/// A partition whose fetching is paused: its cached log end stands still.
fn stands_still(p: &PartitionStatus) -> bool {
    matches!(
        p.state,
        PartitionState::Paused | PartitionState::Draining | PartitionState::Stopped
    )
}

/// Raise `p`'s log end to `end` (never lower it) and its lag with it; a
/// partition that holds no record has a time lag of 0 when caught up and an
/// unknown one otherwise (the records behind the lag are not fetched).
pub fn patch(p: &mut PartitionStatus, end: i64) {
    let old = p.log_end;
    let new = old.max(Some(end));
    p.lag = match (p.lag, old, new, p.committed) {
        (Some(lag), Some(old), Some(new), _) => Some(lag + (new - old)),
        (_, _, Some(new), Some(committed)) => Some((new - committed).max(0)),
        (lag, ..) => lag,
    };
    p.log_end = new;
    if p.in_flight == 0 && p.buffered == 0 {
        p.time_lag_ms = (p.lag == Some(0)).then_some(0);
    }
}

#[cfg(test)]
mod tests {
    /// The example of the module docs.
    #[test]
    fn the_module_example() {
        use crate::command::{PartitionState, PartitionStatus};
        use crate::log_ends::patch;
        let mut p = PartitionStatus {
            topic: "t".into(),
            partition: 0,
            state: PartitionState::Paused,
            in_flight: 0,
            buffered: 0,
            committed: Some(10),
            buffered_bytes: 0,
            log_end: Some(10),
            lag: Some(0),
            time_lag_ms: Some(0),
            reason: None,
        };
        patch(&mut p, 17); // 7 records produced while paused
        assert_eq!((p.log_end, p.lag, p.time_lag_ms), (Some(17), Some(7), None));
    }
}
