//! Compare-and-set on a log: which writes of the control topic are accepted.
//!
//! Every record is a whole [`DesiredState`] keyed by its application. A
//! record is accepted when its `prev_version` equals the version held for the
//! application and its `version` is one more; otherwise it is rejected and
//! changes nothing. Every instance runs this pure reducer over the same
//! single-partition log from the beginning, so all accept the same sequence.
//!
//! Compaction keeps only the last record per application, so a reader that
//! holds nothing accepts the first record it sees for an application (the
//! compaction base). To keep the last record an accepted one, a writer whose
//! write was rejected re-writes the winning record verbatim; an exact copy of
//! the held version is a no-op ([`Verdict::Duplicate`]).
//!
//! ```
//! use switchyard_control::{log::{Reducer, Verdict}, model::DesiredState};
//! let v1 = DesiredState::new("a").next(None, 0);
//! let (mut x, mut y) = (v1.next(Some("x"), 1), v1.next(Some("y"), 1));
//! let mut r = Reducer::default();
//! assert_eq!(r.apply_state(v1.clone()), Verdict::Accepted);
//! assert_eq!(r.apply_state(x), Verdict::Accepted);
//! assert!(matches!(r.apply_state(y), Verdict::Rejected(_)));
//! ```

use std::collections::BTreeMap;

use crate::model::DesiredState;

/// What the reducer did with one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A new version.
    Accepted,
    /// An exact copy of the held version (re-assertion): no change.
    Duplicate,
    /// Not applied, with the reason.
    Rejected(String),
}

/// The reducer: the held state per application.
#[derive(Debug, Default, Clone)]
pub struct Reducer {
    held: BTreeMap<String, DesiredState>,
}

impl Reducer {
    /// Apply one raw record (key, payload) of the control topic.
    pub fn apply_record(&mut self, key: Option<&[u8]>, payload: Option<&[u8]>) -> Verdict {
        let key = key.map(|k| String::from_utf8_lossy(k).into_owned());
        let Some(payload) = payload else {
            return Verdict::Rejected(format!("tombstone for key {key:?} ignored"));
        };
        let what = format!("control record with key {key:?}");
        match DesiredState::decode(payload, &what) {
            Ok(s) if key.as_deref() != Some(s.app.as_str()) => {
                Verdict::Rejected(format!("{what}: the key does not match app `{}`", s.app))
            }
            Ok(s) => self.apply_state(s),
            Err(e) => Verdict::Rejected(e.to_string()),
        }
    }

    /// Apply one decoded state.
    pub fn apply_state(&mut self, s: DesiredState) -> Verdict {
        if s.app.trim().is_empty() {
            return Verdict::Rejected("blank app".into());
        }
        if let Err(e) = s.pauses.iter().try_for_each(|p| p.validate()) {
            return Verdict::Rejected(format!("app `{}` version {}: {e}", s.app, s.version));
        }
        match self.held.get(&s.app) {
            None if s.version >= 1 && s.version > s.prev_version => {
                self.held.insert(s.app.clone(), s);
                Verdict::Accepted
            }
            None => Verdict::Rejected(format!(
                "app `{}`: version {} does not follow prev_version {}",
                s.app, s.version, s.prev_version
            )),
            Some(h) if *h == s => Verdict::Duplicate,
            Some(h) if s.prev_version == h.version && s.version == h.version + 1 => {
                self.held.insert(s.app.clone(), s);
                Verdict::Accepted
            }
            Some(h) => Verdict::Rejected(format!(
                "app `{}`: stale write (prev_version {}, version {}) against held version {}",
                s.app, s.prev_version, s.version, h.version
            )),
        }
    }

    /// The held state of `app`.
    pub fn get(&self, app: &str) -> Option<&DesiredState> {
        self.held.get(app)
    }

    /// The held version of `app` (0: none).
    pub fn version(&self, app: &str) -> u64 {
        self.get(app).map_or(0, |s| s.version)
    }
}

/// The accepted versions of `app` in a sequence of states, in log order.
pub fn accepted_versions(app: &str, log: impl IntoIterator<Item = DesiredState>) -> Vec<u64> {
    let mut r = Reducer::default();
    log.into_iter()
        .filter(|s| s.app == app)
        .filter_map(|s| {
            let v = s.version;
            (r.apply_state(s) == Verdict::Accepted).then_some(v)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Pause;

    fn v(prev: &DesiredState, who: &str) -> DesiredState {
        prev.next(Some(who), 0)
    }

    #[test]
    fn concurrent_writers_exactly_one_wins_and_all_readers_agree() {
        let v1 = DesiredState::new("a").next(None, 0);
        let mut x = v(&v1, "x");
        x.add_pause(Pause::listener("l")).unwrap();
        let y = v(&v1, "y");
        let z = v(&x, "z");
        let log = vec![v1.clone(), x.clone(), y.clone(), z.clone()];
        assert_eq!(accepted_versions("a", log.clone()), vec![1, 2, 3]);
        // every reader from the beginning holds the same final state
        let mut r1 = Reducer::default();
        let mut r2 = Reducer::default();
        for s in &log {
            r1.apply_state(s.clone());
            r2.apply_state(s.clone());
        }
        assert_eq!(r1.get("a"), r2.get("a"));
        assert_eq!(r1.get("a").unwrap().issuer.as_deref(), Some("z"));
    }

    #[test]
    fn reassertion_is_a_no_op_and_a_compacted_base_is_accepted() {
        let v1 = DesiredState::new("a").next(None, 0);
        let v2 = v(&v1, "x");
        let mut r = Reducer::default();
        assert_eq!(r.apply_state(v1.clone()), Verdict::Accepted);
        assert_eq!(r.apply_state(v2.clone()), Verdict::Accepted);
        assert_eq!(r.apply_state(v2.clone()), Verdict::Duplicate);
        assert!(matches!(r.apply_state(v1), Verdict::Rejected(_)));
        let mut fresh = Reducer::default();
        assert_eq!(fresh.apply_state(v2), Verdict::Accepted);
        assert_eq!(fresh.version("a"), 2);
    }

    #[test]
    fn bad_records_change_nothing() {
        let mut r = Reducer::default();
        assert!(matches!(
            r.apply_record(Some(b"a"), None),
            Verdict::Rejected(_)
        ));
        let v = r.apply_record(Some(b"a"), Some(b"not json"));
        assert!(
            matches!(&v, Verdict::Rejected(m) if m.contains("key Some(\"a\")")),
            "{v:?}"
        );
        let s = DesiredState::new("b").next(None, 0);
        assert!(matches!(
            r.apply_record(Some(b"a"), Some(&s.encode())),
            Verdict::Rejected(_)
        ));
        assert!(matches!(
            r.apply_state(DesiredState::new("a")),
            Verdict::Rejected(_)
        ));
        let mut bad = DesiredState::new("a").next(None, 0);
        bad.pauses.push(Pause::listener(""));
        assert!(matches!(r.apply_state(bad), Verdict::Rejected(_)));
        assert_eq!(r.version("a"), 0);
        assert_eq!(
            r.apply_record(Some(b"b"), Some(&s.encode())),
            Verdict::Accepted
        );
    }
}
