//! One driver at a time: the **lease** on the handoff record, and the
//! compare-and-set writes of a driver (docs/deploy.md, "One driver at a
//! time").
//!
//! A driver takes the lease before it reads what to move: a write of the
//! desired state's `deploy` map with its id ([`HOLDER`]) and an expiry
//! ([`UNTIL`], ms since the epoch), refused while another driver's lease
//! has not expired. It renews the lease while it runs (a write every third
//! of the lease's length) and gives it back with its last write. Every
//! write of the driver names the version it last wrote or read
//! (compare-and-set on the version); when another write came in between,
//! the driver goes on on top of it only if it did not touch the deployment
//! (a `ctl pause`, say) and the lease is still the driver's ([`rebase`]);
//! otherwise the driver fails with what changed and who wrote it.
//!
//! The pure part (the decisions over a desired state) is tested here; the
//! writes are [`Lease::acquire`], [`Lease::write`] and [`Lease::release`].

use std::sync::{Arc, Mutex};
use std::time::Duration;

use switchyard_control::model::{now_ms, DesiredState};
use switchyard_control::{ControlError, SharedStore};

use crate::error::{DeployError, Result};

/// `deploy` bookkeeping: the id of the driver holding the lease.
pub const HOLDER: &str = "lease_holder";
/// `deploy` bookkeeping: when the lease expires (ms since the epoch).
pub const UNTIL: &str = "lease_until_ms";

/// The default length of a lease.
pub const DEFAULT_TTL: Duration = Duration::from_secs(15);

/// How many times a write is put on top of a concurrent one that did not
/// touch the deployment.
const REBASES: u32 = 10;

/// A lease as the desired state records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// The driver's id.
    pub holder: String,
    /// Expiry, ms since the epoch (0: unreadable, expired).
    pub until_ms: i64,
}

impl Held {
    /// `driver X, for N ms more` (or `expired N ms ago`).
    pub fn describe(&self, now_ms: i64) -> String {
        let left = self.until_ms - now_ms;
        if left > 0 {
            format!("driver `{}` (lease valid for {left} ms more)", self.holder)
        } else {
            format!("driver `{}` (lease expired {} ms ago)", self.holder, -left)
        }
    }
}

/// The lease recorded in `s`.
pub fn held(s: &DesiredState) -> Option<Held> {
    let holder = s.deploy.get(HOLDER)?.clone();
    let until_ms = s
        .deploy
        .get(UNTIL)
        .and_then(|u| u.parse().ok())
        .unwrap_or(0);
    Some(Held { holder, until_ms })
}

/// May driver `me` act on `s` at `now_ms`? `Err` with the lease of another
/// driver that has not expired.
pub fn check(s: &DesiredState, me: &str, now_ms: i64) -> std::result::Result<(), Held> {
    match held(s) {
        Some(h) if h.holder != me && h.until_ms > now_ms => Err(h),
        _ => Ok(()),
    }
}

/// Record the lease of `me` until `until_ms`.
pub fn take(s: &mut DesiredState, me: &str, until_ms: i64) {
    s.deploy.insert(HOLDER.into(), me.into());
    s.deploy.insert(UNTIL.into(), until_ms.to_string());
}

/// Remove the lease of `me` (another driver's is left alone).
pub fn give_back(s: &mut DesiredState, me: &str) {
    if held(s).is_some_and(|h| h.holder == me) {
        s.deploy.remove(HOLDER);
        s.deploy.remove(UNTIL);
    }
}

/// After a lost compare-and-set: may driver `me`, which wrote or read
/// `base` last, put its change on top of `now`? Only when the lease in
/// `now` is still its own and `now` changed nothing a deployment decides
/// (owners, handoff offsets and their scopes, joined slots, the `deploy`
/// bookkeeping): a pause written by an operator in between is no reason to
/// stop. `Err` says what changed and who wrote it.
pub fn rebase(
    base: &DesiredState,
    now: &DesiredState,
    me: &str,
) -> std::result::Result<(), String> {
    let by = now.issuer.as_deref().unwrap_or("unknown");
    match held(now) {
        Some(h) if h.holder == me => {}
        Some(h) => {
            return Err(format!(
                "the lease was taken over by driver `{}` at v{} (written by {by})",
                h.holder, now.version
            ))
        }
        None => {
            return Err(format!(
                "the lease was removed at v{} (written by {by})",
                now.version
            ))
        }
    }
    let changed: Vec<&str> = [
        ("owners", base.owners != now.owners),
        ("handoff", base.handoff != now.handoff),
        ("handoff_base", base.handoff_base != now.handoff_base),
        ("handoff_done", base.handoff_done != now.handoff_done),
        ("joined", base.joined != now.joined),
        ("deploy", base.deploy != now.deploy),
    ]
    .into_iter()
    .filter(|(_, c)| *c)
    .map(|(f, _)| f)
    .collect();
    if changed.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "the deployment was changed under the driver at v{} by {by} ({})",
            now.version,
            changed.join(", ")
        ))
    }
}

/// The id of a driver of this process: `issuer@host:pid/n`.
pub fn driver_id(issuer: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    format!(
        "{issuer}@{host}:{}/{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// The lease of one driver over the desired state of one application, and
/// its compare-and-set writes.
pub struct Lease {
    store: SharedStore,
    app: String,
    issuer: String,
    /// This driver's id.
    pub id: String,
    /// How long a lease lasts without renewal.
    pub ttl: Duration,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// The state this driver last wrote or read: the version its next
    /// write names.
    base: Option<DesiredState>,
    /// Nested holds (a command that runs a handoff holds it once).
    depth: usize,
}

impl Lease {
    /// The lease of driver `issuer` (its id made unique) over `app`.
    pub fn new(store: SharedStore, app: &str, issuer: &str, ttl: Duration) -> Arc<Lease> {
        Arc::new(Lease {
            store,
            app: app.into(),
            issuer: issuer.into(),
            id: driver_id(issuer),
            ttl,
            state: Mutex::default(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn until(&self) -> i64 {
        now_ms() + self.ttl.as_millis().min(i64::MAX as u128) as i64
    }

    /// Is it held (by this process's driver)?
    pub fn is_held(&self) -> bool {
        self.lock().depth > 0
    }

    /// Take the lease: refused while another driver's has not expired,
    /// unless `force` (then `Ok` names the lease overridden). Nested calls
    /// only count.
    pub fn acquire(&self, force: bool) -> Result<Option<Held>> {
        let mut st = self.lock();
        if st.depth > 0 {
            st.depth += 1;
            return Ok(None);
        }
        for _ in 0..REBASES {
            let current = self.store.read(&self.app)?;
            let overridden = match check(&current, &self.id, now_ms()) {
                Ok(()) => None,
                Err(h) if force => Some(h),
                Err(h) => {
                    return Err(DeployError::Refused(format!(
                        "another deploy command is running on `{}`: {} holds the lease; \
                         it ends by itself, or it was killed and its lease expires; \
                         `deploy recover --force` overrides it",
                        self.app,
                        h.describe(now_ms())
                    )))
                }
            };
            let until = self.until();
            match self
                .store
                .write(&self.app, Some(current.version), Some(&self.issuer), &|s| {
                    take(s, &self.id, until);
                    Ok(())
                }) {
                Ok(next) => {
                    st.base = Some(next);
                    st.depth = 1;
                    return Ok(overridden);
                }
                // another write came in between (or the read lagged): look again
                Err(ControlError::Conflict { .. }) => {
                    std::thread::sleep(Duration::from_millis(50));
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(DeployError::Failed(anyhow::anyhow!(
            "the lease of `{}` could not be taken: the desired state kept changing",
            self.app
        )))
    }

    /// The desired state at `min` or later: a read of the log may lag
    /// behind the driver's own last write for a moment.
    fn read_from(&self, min: u64) -> anyhow::Result<DesiredState> {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let now = self.store.read(&self.app)?;
            if now.version >= min {
                return Ok(now);
            }
            anyhow::ensure!(
                std::time::Instant::now() < deadline,
                "the desired state of `{}` is read at v{}, behind this driver's own v{min}",
                self.app,
                now.version
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The current desired state; becomes the base of the next write when
    /// it passes [`rebase`] (a lease taken over or a deployment changed
    /// under the driver is an error).
    pub fn read(&self) -> anyhow::Result<DesiredState> {
        let mut st = self.lock();
        let min = match (&st.base, st.depth > 0) {
            (Some(b), true) => b.version,
            _ => 0,
        };
        let now = self.read_from(min)?;
        if st.depth > 0 {
            if let Some(base) = &st.base {
                if base.version != now.version {
                    rebase(base, &now, &self.id).map_err(anyhow::Error::msg)?;
                }
            }
            st.base = Some(now.clone());
        }
        Ok(now)
    }

    /// Write `f` (and the renewed lease) naming the version last written or
    /// read; a concurrent write that did not touch the deployment is
    /// written over ([`rebase`]), anything else fails. Without the lease
    /// held (a one-off write such as `init`), the version read just before.
    pub fn write(&self, f: &dyn Fn(&mut DesiredState)) -> anyhow::Result<DesiredState> {
        let mut st = self.lock();
        let held = st.depth > 0;
        let mut base = match (&st.base, held) {
            (Some(b), true) => b.clone(),
            _ => self.store.read(&self.app)?,
        };
        for _ in 0..REBASES {
            let until = self.until();
            let r = self
                .store
                .write(&self.app, Some(base.version), Some(&self.issuer), &|s| {
                    // renewed first, so that the release's change removes it
                    if held {
                        take(s, &self.id, until);
                    }
                    f(s);
                    Ok(())
                });
            match r {
                Ok(next) => {
                    if held {
                        st.base = Some(next.clone());
                    }
                    return Ok(next);
                }
                Err(ControlError::Conflict { .. }) => {
                    let now = self.read_from(base.version)?;
                    if now.version == base.version {
                        // the store's own read lagged: put it again
                        continue;
                    }
                    if held {
                        rebase(&base, &now, &self.id).map_err(anyhow::Error::msg)?;
                    } else {
                        anyhow::bail!(
                            "the desired state of `{}` changed while it was written (v{} by {})",
                            self.app,
                            now.version,
                            now.issuer.as_deref().unwrap_or("unknown")
                        );
                    }
                    base = now;
                }
                Err(e) => return Err(e.into()),
            }
        }
        anyhow::bail!(
            "the desired state of `{}` kept changing under the driver",
            self.app
        )
    }

    /// Renew the lease if held (a write of the lease alone).
    pub fn renew(&self) -> anyhow::Result<()> {
        if self.is_held() {
            self.write(&|_| {})?;
        }
        Ok(())
    }

    /// Give the lease back (the outermost hold only).
    pub fn release(&self) -> anyhow::Result<()> {
        {
            let mut st = self.lock();
            if st.depth == 0 {
                return Ok(());
            }
            st.depth -= 1;
            if st.depth > 0 {
                return Ok(());
            }
            // written below as the last write of the hold
            st.depth = 1;
        }
        let r = self.write(&|s| give_back(s, &self.id)).map(|_| ());
        let mut st = self.lock();
        st.depth = 0;
        st.base = None;
        r
    }

    /// Hold the lease around `body`, renewing it on a thread every third
    /// of its length; `said` is told when another driver's lease was
    /// overridden (`force`).
    pub fn hold<T>(
        self: &Arc<Self>,
        force: bool,
        said: &mut dyn FnMut(String),
        body: impl FnOnce(&mut dyn FnMut(String)) -> Result<T>,
    ) -> Result<T> {
        let nested = self.is_held();
        if let Some(h) = self.acquire(force)? {
            said(format!(
                "lease: --force overrides the lease of {}; if that driver is still running, its next write fails",
                h.describe(now_ms())
            ));
        }
        if nested {
            let r = body(said);
            let _ = self.release();
            return r;
        }
        said(format!(
            "lease: held by driver `{}` (renewed every {} ms)",
            self.id,
            (self.ttl / 3).as_millis()
        ));
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let me = self.clone();
        let renewer = std::thread::spawn(move || loop {
            match stopped.recv_timeout(me.ttl / 3) {
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    if let Err(e) = me.renew() {
                        tracing::warn!(error = %format!("{e:#}"), "the deploy lease could not be renewed");
                    }
                }
                _ => return,
            }
        });
        let r = body(said);
        drop(stop);
        let _ = renewer.join();
        let released = self.release();
        match (r, released) {
            (Ok(t), Ok(())) => Ok(t),
            (Ok(_), Err(e)) => Err(DeployError::Failed(e.context("giving the lease back"))),
            (Err(e), Ok(())) => Err(e),
            (Err(e), Err(r)) => {
                said(format!("lease: could not be given back: {r:#}"));
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_control::model::Pause;

    fn state() -> DesiredState {
        let mut s = DesiredState::new("a");
        s.version = 4;
        s.owners
            .entry("l".into())
            .or_default()
            .insert("t-0".into(), "blue".into());
        s
    }

    #[test]
    fn a_live_lease_of_another_driver_refuses_and_an_expired_one_does_not() {
        let mut s = state();
        assert_eq!(check(&s, "me", 1_000), Ok(()));
        take(&mut s, "other", 5_000);
        let h = check(&s, "me", 1_000).unwrap_err();
        assert_eq!(h.holder, "other");
        assert!(
            h.describe(1_000).contains("4000 ms more"),
            "{}",
            h.describe(1_000)
        );
        assert_eq!(check(&s, "other", 1_000), Ok(()), "its own lease");
        assert_eq!(check(&s, "me", 5_000), Ok(()), "expired");
        assert!(h.describe(6_000).contains("expired 1000 ms ago"));
        // an unreadable expiry is an expired lease
        s.deploy.insert(UNTIL.into(), "soon".into());
        assert_eq!(check(&s, "me", 1_000), Ok(()));
    }

    #[test]
    fn a_lease_is_given_back_only_by_its_holder() {
        let mut s = state();
        take(&mut s, "other", 5_000);
        give_back(&mut s, "me");
        assert_eq!(held(&s).unwrap().holder, "other");
        give_back(&mut s, "other");
        assert_eq!(held(&s), None);
        assert!(!s.deploy.contains_key(UNTIL));
    }

    #[test]
    fn a_driver_writes_over_a_pause_but_not_over_a_deployment_change_or_a_lost_lease() {
        let mut base = state();
        take(&mut base, "me", 5_000);
        // an operator's pause in between: go on
        let mut now = base.clone();
        now.version = 5;
        now.issuer = Some("ops".into());
        now.pauses.push(Pause::listener("l"));
        assert_eq!(rebase(&base, &now, "me"), Ok(()));
        // the owners changed: stop, naming the writer
        let mut moved = now.clone();
        moved
            .owners
            .get_mut("l")
            .unwrap()
            .insert("t-0".into(), "green".into());
        let e = rebase(&base, &moved, "me").unwrap_err();
        assert!(e.contains("by ops") && e.contains("owners"), "{e}");
        // another driver took the lease (`recover --force`)
        let mut taken = now.clone();
        take(&mut taken, "rescuer", 9_000);
        let e = rebase(&base, &taken, "me").unwrap_err();
        assert!(e.contains("taken over by driver `rescuer`"), "{e}");
        let mut gone = now.clone();
        give_back(&mut gone, "me");
        assert!(rebase(&base, &gone, "me").unwrap_err().contains("removed"));
    }

    #[test]
    fn driver_ids_differ_within_a_process() {
        let (a, b) = (driver_id("deploy:x"), driver_id("deploy:x"));
        assert_ne!(a, b);
        assert!(a.starts_with("deploy:x@"), "{a}");
    }
}
