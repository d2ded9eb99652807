//! The [`Driver`] of one application's deployments: its connection, the
//! control store, its tail of the status topic ([`StatusTail`]) and its
//! [`Lease`], under which every write is a compare-and-set. The strategies
//! (a handoff between separate groups, a switch of a shared group) and the
//! `deploy` commands over them add their methods to it in their own
//! modules.

use std::sync::Arc;
use std::time::{Duration, Instant};

use switchyard_config::Connection;
use switchyard_control::model::DesiredState;
use switchyard_control::status_topic::StatusTail;
use switchyard_control::SharedStore;

use crate::lease::{self, Lease};

/// Runs handoffs of one application.
pub struct Driver {
    /// The cluster's connection (groups' offsets, the status topic).
    pub connection: Connection,
    /// Application.
    pub app: String,
    /// Base group id: slot `s` consumes as `<group>-<s>`.
    pub group: String,
    /// The desired-state store.
    pub store: SharedStore,
    /// The status topic, read from the beginning.
    pub tail: StatusTail,
    /// Longest wait of a phase.
    pub phase_timeout: Duration,
    /// Who writes.
    pub issuer: String,
    /// One driver at a time: the lease, and the compare-and-set writes.
    lease: Arc<Lease>,
}

/// How often a phase looks at the statuses again while it waits: every
/// millisecond of it is in a handoff's gap, and a look is a copy of a few
/// statuses.
pub(crate) const LOOK_AGAIN: Duration = Duration::from_millis(5);

impl Driver {
    /// A driver of `app` (base group `group`) over `store`, once its tail of
    /// `status_topic` has caught up (at most 10 s).
    pub fn start(
        connection: impl Into<Connection>,
        store: SharedStore,
        status_topic: &str,
        app: &str,
        group: &str,
        issuer: String,
        phase_timeout: Duration,
    ) -> anyhow::Result<Driver> {
        let connection = connection.into();
        let tail = StatusTail::start(&connection, status_topic)?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while !tail.caught_up() {
            if Instant::now() >= deadline {
                tail.stop();
                anyhow::bail!("cannot read the status topic {status_topic}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let lease = Lease::new(store.clone(), app, &issuer, lease::DEFAULT_TTL);
        Ok(Driver {
            connection,
            app: app.into(),
            group: group.into(),
            store,
            tail,
            phase_timeout,
            issuer,
            lease,
        })
    }

    /// The same driver with leases of length `ttl` (renewed every third).
    pub fn with_lease_ttl(mut self, ttl: Duration) -> Driver {
        self.lease = Lease::new(self.store.clone(), &self.app, &self.issuer, ttl);
        self
    }

    /// Make the status tail read every status written so far, before a
    /// phase judges from their age which instances are live: a status the
    /// tail has not read yet must not make a live instance look gone.
    pub(crate) fn sync_statuses(&self, label: &str) -> Result<(), String> {
        self.tail
            .sync(self.phase_timeout.min(Duration::from_secs(10)))
            .map_err(|e| format!("{label}: {e}"))
    }

    /// This driver's lease.
    pub fn lease(&self) -> &Arc<Lease> {
        &self.lease
    }

    /// The group of `slot`.
    pub fn group_of(&self, slot: &str) -> String {
        format!("{}-{slot}", self.group)
    }

    /// The current desired state (with the lease held, checked against
    /// the driver's last write: [`Lease::read`]).
    pub fn read(&self) -> anyhow::Result<DesiredState> {
        self.lease.read()
    }

    /// Write a change: compare-and-set on the version the driver last
    /// wrote or read, and with the lease held the lease renewed
    /// ([`Lease::write`]).
    pub fn write(&self, f: impl Fn(&mut DesiredState)) -> anyhow::Result<u64> {
        Ok(self.lease.write(&|s| f(s))?.version)
    }
}
