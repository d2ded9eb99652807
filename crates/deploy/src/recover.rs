//! `deploy recover`: finish what an interrupted driver (killed between
//! phases) left behind, by rolling back to the slot the handoff came from.
//!
//! - separate groups: partitions owned by nobody (frozen) go back to the
//!   `from` slot of the recorded `in_progress` handoff; its committed
//!   offsets are right for them (it drained and committed before the
//!   freeze was acknowledged, and nobody processed them since);
//! - shared group: two joined slots go back to the `from` slot alone (the
//!   other leaves, draining and committing on revoke).
//!
//! A handoff interrupted after its transfer needs nothing: the target slot
//! owns the partitions with their handoff offsets (start floors on every
//! later assignment), so `recover` says there is nothing to do.

use switchyard_control::model::DesiredState;
use switchyard_control::targets::NOBODY;

use crate::bookkeeping::{in_progress, IN_PROGRESS};
use crate::driver::Driver;
use crate::outcome::Outcome;
use crate::plan::{describe, owners, Move};
use crate::strategy::shared::{self, SharedMove};

/// What `recover` will do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recovery {
    /// Nothing is frozen and one slot is joined.
    Nothing,
    /// Give frozen partitions back (separate groups).
    Separate(Move),
    /// Leave only the source slot joined (shared group).
    Shared(SharedMove),
}

/// What recovering `listener` means in `s`.
pub fn plan(s: &DesiredState, listener: &str) -> Result<Recovery, String> {
    if shared::is_shared(s) {
        let joined = s.joined.get(listener).cloned().unwrap_or_default();
        if joined.len() <= 1 {
            return Ok(Recovery::Nothing);
        }
        let (from, to) = in_progress(s)?;
        return Ok(Recovery::Shared(SharedMove {
            listener: listener.into(),
            from,
            to,
            topics: shared::topics(s),
        }));
    }
    let frozen: Vec<_> = owners(s, listener)
        .into_iter()
        .filter(|(_, v)| v == NOBODY)
        .map(|(k, _)| k)
        .collect();
    if frozen.is_empty() {
        return Ok(Recovery::Nothing);
    }
    let (from, to) = in_progress(s)?;
    let mut meta = s.deploy.clone();
    meta.remove(IN_PROGRESS);
    Ok(Recovery::Separate(Move {
        listener: listener.into(),
        from,
        to,
        partitions: frozen,
        meta_before: meta.clone(),
        meta_after: meta,
    }))
}

impl Driver {
    /// Carry out a [`Recovery`]; `None` when there was nothing to do.
    pub fn recover(
        &self,
        r: &Recovery,
        out: &mut dyn FnMut(String),
    ) -> anyhow::Result<Option<Outcome>> {
        match r {
            Recovery::Nothing => Ok(None),
            Recovery::Separate(m) => {
                out(format!(
                    "recover: {} frozen by an interrupted handoff {} -> {}: back to {}",
                    describe(&m.partitions),
                    m.from,
                    m.to,
                    m.from
                ));
                self.roll_back(m, false, &Default::default(), &Default::default(), out)?;
                Ok(Some(Outcome {
                    ok: true,
                    moved: m.partitions.clone(),
                    ..Default::default()
                }))
            }
            Recovery::Shared(m) => {
                out(format!(
                    "recover: slots {} and {} joined by an interrupted switch: back to {} alone",
                    m.from, m.to, m.from
                ));
                self.restore_shared(m, out)?;
                Ok(Some(Outcome {
                    ok: true,
                    ..Default::default()
                }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{freeze, init, switch};

    #[test]
    fn an_interrupted_freeze_goes_back_to_its_source() {
        let mut s = DesiredState::new("a");
        let tps = vec![("t".to_string(), 0), ("t".to_string(), 1)];
        init(&mut s, "l", "blue", &tps);
        assert_eq!(plan(&s, "l").unwrap(), Recovery::Nothing);
        let m = switch(&s, "l", "green").unwrap();
        freeze(&mut s, &m);
        match plan(&s, "l").unwrap() {
            Recovery::Separate(r) => {
                assert_eq!((r.from.as_str(), r.to.as_str()), ("blue", "green"));
                assert_eq!(r.partitions, tps);
                assert!(!r.meta_before.contains_key(IN_PROGRESS));
            }
            other => panic!("{other:?}"),
        }
        s.deploy.remove(IN_PROGRESS);
        assert!(plan(&s, "l").is_err());
    }

    #[test]
    fn an_interrupted_shared_switch_leaves_the_source_alone() {
        let mut s = DesiredState::new("a");
        shared::init(&mut s, "l", "blue", &["t".into()]);
        let m = shared::switch(&s, "l", "green").unwrap();
        shared::join_both(&mut s, &m);
        assert_eq!(plan(&s, "l").unwrap(), Recovery::Shared(m.clone()));
        shared::leave(&mut s, &m);
        assert_eq!(plan(&s, "l").unwrap(), Recovery::Nothing);
    }
}
