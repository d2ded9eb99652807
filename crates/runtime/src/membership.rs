//! Group membership at run time: a listener can leave its consumer group and
//! join it again without being stopped (the shared-group deployment strategy
//! of docs/design.md: the standby slot joins at the switch, the active slot
//! leaves after draining and committing on revoke).
//!
//! Leaving is `unsubscribe`: librdkafka revokes the assignment through the
//! rebalance callback, so the revoke of rebalance.rs runs as in any
//! rebalance (dispatch stops, in-flight records finish up to the revoke
//! timeout, offsets are committed synchronously), and then the member sends
//! LeaveGroup (a static member does not: it stays in the group until its
//! session times out). Under KIP-848's consumer protocol the leave is a
//! heartbeat with member epoch -1, or -2 for a static member, which keeps
//! its assignment for the session timeout the same way. The leave request
//! is answered once that revoke has happened. Joining is `subscribe` with
//! the listener's topics or pattern.
//! A listener built with `ListenerBuilder::detached`
//! starts outside its group.

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use tokio::sync::oneshot;

use crate::error::RuntimeError;

/// What `subscribe` takes, and whether the listener is in its group now.
#[derive(Debug, Default)]
pub(crate) struct Membership {
    /// Topics, or one anchored regex; `None` for a standalone assignment.
    pub subscription: Option<Vec<String>>,
    /// Subscribed now.
    pub joined: bool,
    /// Leave requests answered when the revoke of the leave has happened.
    pub leave_waiters: Vec<oneshot::Sender<Result<(), RuntimeError>>>,
}

impl Membership {
    /// Join (`true`) or leave the group; see the module docs. `assigned`:
    /// the listener holds partitions now (a leave is answered once they are
    /// revoked, by [`Membership::answer_leave_waiters`]).
    pub fn set(
        &mut self,
        kafka: &BaseConsumer<impl ConsumerContext>,
        listener: &str,
        assigned: bool,
        join: bool,
        reply: oneshot::Sender<Result<(), RuntimeError>>,
    ) {
        let Some(subscription) = self.subscription.clone() else {
            let _ = reply.send(Err(RuntimeError::Listener {
                listener: listener.to_string(),
                reason: "a standalone (assigned) listener has no group to join or leave".into(),
            }));
            return;
        };
        if join == self.joined {
            let _ = reply.send(Ok(()));
            return;
        }
        if join {
            let topics: Vec<&str> = subscription.iter().map(String::as_str).collect();
            let result = kafka.subscribe(&topics).map_err(RuntimeError::from);
            if result.is_ok() {
                self.joined = true;
                tracing::info!(listener, "joined the group");
            }
            let _ = reply.send(result);
            return;
        }
        kafka.unsubscribe();
        self.joined = false;
        tracing::info!(listener, "leaving the group");
        if assigned {
            self.leave_waiters.push(reply);
        } else {
            let _ = reply.send(Ok(()));
        }
    }

    /// After a revoke: answer the leave requests once nothing is assigned.
    pub fn answer_leave_waiters(&mut self, assigned: bool) {
        if !self.joined && !assigned {
            for w in self.leave_waiters.drain(..) {
                let _ = w.send(Ok(()));
            }
        }
    }
}
