//! The state of an application in the control log, as every reader computes
//! it, and the next document a writer puts on top of it.
//!
//! The control topic is compacted: for every key (application) compaction
//! keeps only the last record. So that a reader that followed the log for
//! days and one that starts now on the compacted log always agree, the
//! state of an application is a function of the **last committed record of
//! its key only** (read with `isolation.level=read_committed`):
//!
//! - a valid document: that state;
//! - a tombstone (no payload): no state (version 0), applied by every reader;
//! - anything else (not JSON, not a valid document, a key that is not its
//!   `app`, a `schema` newer than this build): the state is **unreadable**,
//!   [`DesiredState::unreadable`]; agents fail closed on it (every listener
//!   held paused) and writers refuse to write over it, until a valid record
//!   comes.
//!
//! Readers judge no versions. Compare-and-set is on the writer's side: a
//! writer is fenced by every later writer of the same application
//! (the Kafka store), reads to the end, checks its base and commits,
//! so the last committed record of a key is always the newest accepted
//! write, and [`next_write`] decides what that write is.
//!
//! ```
//! use switchyard_control::{log::{Reducer, Verdict}, model::DesiredState};
//! let v1 = DesiredState::new("a").next(None, 0);
//! let v2 = v1.next(Some("x"), 1);
//! let mut r = Reducer::default();
//! assert_eq!(r.apply_state(v2.clone()), Verdict::Set(2));
//! assert_eq!(r.apply_state(v1), Verdict::Set(1)); // the last record wins
//! assert_eq!(r.version("a"), 1);
//! assert!(matches!(r.apply_record(Some(b"a"), Some(b"{oops")), Verdict::Unreadable(_)));
//! assert!(r.state("a").is_unreadable());
//! assert_eq!(r.apply_record(Some(b"a"), None), Verdict::Cleared);
//! assert_eq!(r.state("a"), DesiredState::new("a"));
//! ```

use std::collections::BTreeMap;

use crate::error::{ControlError, Result};
use crate::model::{Change, DesiredState};

#[cfg(test)]
#[path = "log_model.rs"]
mod log_model;

/// The state one record gives its application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppState {
    /// A valid document.
    Valid(Box<DesiredState>),
    /// The record cannot be read, with the reason.
    Unreadable(String),
}

/// What one record did to the state of its application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A valid document of this version is now the state.
    Set(u64),
    /// A tombstone: the application has no state (version 0).
    Cleared,
    /// The record cannot be read: the state is unreadable, with the reason.
    Unreadable(String),
    /// Not a record of any application (no key, or a blank or non-UTF-8
    /// key): ignored, with the reason. Compaction keeps such records apart
    /// from every application's key, so ignoring them changes no state.
    Ignored(String),
}

/// The application a record belongs to and the state it gives it (`None`:
/// a tombstone). `Err`: the record belongs to no application.
pub fn decode_record(
    key: Option<&[u8]>,
    payload: Option<&[u8]>,
) -> std::result::Result<(String, Option<AppState>), String> {
    let Some(key) = key else {
        return Err("control record without a key ignored".into());
    };
    let app = match std::str::from_utf8(key) {
        Ok(k) if !k.trim().is_empty() => k.to_string(),
        Ok(_) => return Err("control record with a blank key ignored".into()),
        Err(_) => {
            return Err(format!(
                "control record with a non-UTF-8 key {key:?} ignored"
            ))
        }
    };
    let Some(payload) = payload else {
        return Ok((app, None));
    };
    let what = format!("control record `{app}`");
    let state = match DesiredState::decode(payload, &what) {
        Err(e) => AppState::Unreadable(e.to_string()),
        Ok(s) if s.app != app => AppState::Unreadable(format!(
            "{what}: the document is of app `{}`, not of its key",
            s.app
        )),
        Ok(s) => match s.validate() {
            Ok(()) => AppState::Valid(Box::new(s)),
            Err(e) => AppState::Unreadable(format!("{what}: {e}")),
        },
    };
    Ok((app, Some(state)))
}

/// The state of every application: the last record of each key.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Reducer {
    apps: BTreeMap<String, AppState>,
}

impl Reducer {
    /// Apply one committed record (key, payload) of the control topic.
    pub fn apply_record(&mut self, key: Option<&[u8]>, payload: Option<&[u8]>) -> Verdict {
        match decode_record(key, payload) {
            Err(why) => Verdict::Ignored(why),
            Ok((app, None)) => {
                self.apps.remove(&app);
                Verdict::Cleared
            }
            Ok((app, Some(state))) => {
                let verdict = match &state {
                    AppState::Valid(s) => Verdict::Set(s.version),
                    AppState::Unreadable(why) => Verdict::Unreadable(why.clone()),
                };
                self.apps.insert(app, state);
                verdict
            }
        }
    }

    /// Apply a document as if it were the next record of its app.
    pub fn apply_state(&mut self, s: DesiredState) -> Verdict {
        self.apply_record(Some(s.app.as_bytes()), Some(&s.encode()))
    }

    /// The state of `app`: the document, [`DesiredState::new`] (version 0)
    /// when it has none, [`DesiredState::unreadable`] when its last record
    /// cannot be read.
    pub fn state(&self, app: &str) -> DesiredState {
        match self.apps.get(app) {
            None => DesiredState::new(app),
            Some(AppState::Valid(s)) => (**s).clone(),
            Some(AppState::Unreadable(why)) => DesiredState::unreadable(app, why.clone()),
        }
    }

    /// The valid document of `app`, if its state is one.
    pub fn get(&self, app: &str) -> Option<&DesiredState> {
        match self.apps.get(app) {
            Some(AppState::Valid(s)) => Some(s),
            _ => None,
        }
    }

    /// Why the state of `app` is unreadable, if it is.
    pub fn unreadable(&self, app: &str) -> Option<&str> {
        match self.apps.get(app) {
            Some(AppState::Unreadable(why)) => Some(why),
            _ => None,
        }
    }

    /// The version of `app` (0: no state, or unreadable).
    pub fn version(&self, app: &str) -> u64 {
        self.get(app).map_or(0, |s| s.version)
    }

    /// Every application with a state, in name order.
    pub fn apps(&self) -> impl Iterator<Item = (&str, &AppState)> {
        self.apps.iter().map(|(k, v)| (k.as_str(), v))
    }
}

/// The document a writer puts on top of `current`, the state it read after
/// fencing every earlier writer: refused when `current` is unreadable
/// ([`ControlError::Unreadable`]), when `expected` is given and is not
/// `current`'s version ([`ControlError::Conflict`]) and when no version can
/// follow ([`ControlError::VersionExhausted`]); otherwise `current.version
/// + 1` naming `current.version` as `prev_version`, changed by `change`,
///   and valid.
pub fn next_write(
    current: &DesiredState,
    expected: Option<u64>,
    issuer: Option<&str>,
    now_ms: i64,
    change: Change<'_>,
) -> Result<DesiredState> {
    if let Some(reason) = &current.unreadable {
        return Err(ControlError::Unreadable {
            app: current.app.clone(),
            reason: reason.clone(),
        });
    }
    if let Some(e) = expected.filter(|e| *e != current.version) {
        return Err(ControlError::Conflict {
            app: current.app.clone(),
            expected: e,
            current: current.version,
        });
    }
    let mut next = current.try_next(issuer, now_ms)?;
    change(&mut next)?;
    if (next.app.as_str(), next.version, next.prev_version)
        != (current.app.as_str(), current.version + 1, current.version)
    {
        return Err(ControlError::Invalid(
            "a change may not alter the app, version or prev_version".into(),
        ));
    }
    next.validate()?;
    Ok(next)
}

/// The versions `app` went through in a sequence of committed documents,
/// in log order (every valid document of the app sets its state).
pub fn accepted_versions(app: &str, log: impl IntoIterator<Item = DesiredState>) -> Vec<u64> {
    let mut r = Reducer::default();
    log.into_iter()
        .filter(|s| s.app == app)
        .filter_map(|s| match r.apply_state(s) {
            Verdict::Set(v) => Some(v),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Pause, SCHEMA_VERSION};

    fn v(prev: &DesiredState, who: &str) -> DesiredState {
        prev.next(Some(who), 0)
    }

    #[test]
    fn the_last_record_of_a_key_is_the_state_whatever_its_version() {
        let v1 = DesiredState::new("a").next(None, 0);
        let mut x = v(&v1, "x");
        x.add_pause(Pause::listener("l")).unwrap();
        let y = v(&v1, "y");
        let mut r = Reducer::default();
        for s in [v1.clone(), x.clone(), y.clone()] {
            r.apply_state(s);
        }
        assert_eq!(
            r.get("a"),
            Some(&y),
            "no version is judged: the last record wins"
        );
        // a fresh reader of the compacted log (only y left) agrees
        let mut fresh = Reducer::default();
        fresh.apply_state(y.clone());
        assert_eq!(fresh, r);
        assert_eq!(accepted_versions("a", [v1, x, y]), vec![1, 2, 2]);
    }

    #[test]
    fn tombstones_clear_and_bad_records_make_the_state_unreadable() {
        let mut r = Reducer::default();
        let s = DesiredState::new("a").next(None, 0);
        assert_eq!(r.apply_state(s.clone()), Verdict::Set(1));
        assert_eq!(r.apply_record(Some(b"a"), None), Verdict::Cleared);
        assert_eq!(r.version("a"), 0);
        assert_eq!(r.state("a"), DesiredState::new("a"));
        let v = r.apply_record(Some(b"a"), Some(b"not json"));
        assert!(
            matches!(&v, Verdict::Unreadable(m) if m.contains("control record `a`")),
            "{v:?}"
        );
        assert!(r.state("a").is_unreadable());
        assert_eq!(r.version("a"), 0);
        // the document of another app under this key
        let b = DesiredState::new("b").next(None, 0);
        assert!(matches!(
            r.apply_record(Some(b"a"), Some(&b.encode())),
            Verdict::Unreadable(m) if m.contains("not of its key")
        ));
        // an invalid pause, version 0
        let mut bad = s.clone();
        bad.pauses.push(Pause::listener(""));
        assert!(matches!(r.apply_state(bad), Verdict::Unreadable(_)));
        assert!(matches!(
            r.apply_state(DesiredState::new("a")),
            Verdict::Unreadable(m) if m.contains("version 0")
        ));
        // a newer schema
        let mut newer = s.clone();
        newer.schema = SCHEMA_VERSION + 1;
        assert!(matches!(
            r.apply_state(newer),
            Verdict::Unreadable(m) if m.contains("newer")
        ));
        // a valid record makes it readable again
        assert_eq!(r.apply_state(s.clone()), Verdict::Set(1));
        assert_eq!(r.get("a"), Some(&s));
        // records of no app change nothing
        assert!(matches!(
            r.apply_record(None, Some(b"x")),
            Verdict::Ignored(_)
        ));
        assert!(matches!(
            r.apply_record(Some(b" "), None),
            Verdict::Ignored(_)
        ));
        assert!(matches!(
            r.apply_record(Some(&[0xff, 0xfe]), None),
            Verdict::Ignored(_)
        ));
        assert_eq!(r.get("a"), Some(&s));
    }

    #[test]
    fn next_write_checks_the_base_and_never_wraps() {
        let add = |s: &mut DesiredState| s.add_pause(Pause::listener("l"));
        let cur = DesiredState::new("a").next(None, 0);
        let n = next_write(&cur, Some(1), Some("me"), 5, &add).unwrap();
        assert_eq!((n.version, n.prev_version, n.pauses.len()), (2, 1, 1));
        assert!(matches!(
            next_write(&cur, Some(0), None, 5, &add),
            Err(ControlError::Conflict {
                expected: 0,
                current: 1,
                ..
            })
        ));
        let e = next_write(
            &DesiredState::unreadable("a", "garbage"),
            None,
            None,
            5,
            &add,
        )
        .unwrap_err();
        assert!(matches!(&e, ControlError::Unreadable { reason, .. } if reason == "garbage"));
        let mut max = cur.clone();
        max.version = u64::MAX;
        max.prev_version = u64::MAX - 1;
        let e = next_write(&max, None, None, 5, &add).unwrap_err();
        assert!(matches!(
            e,
            ControlError::VersionExhausted {
                version: u64::MAX,
                ..
            }
        ));
        assert!(e.to_string().contains("cannot be followed"), "{e}");
        let mut almost = max.clone();
        almost.version = u64::MAX - 1;
        assert_eq!(
            next_write(&almost, None, None, 5, &add).unwrap().version,
            u64::MAX
        );
        let bump = |s: &mut DesiredState| {
            s.version += 1;
            Ok(())
        };
        assert!(matches!(
            next_write(&cur, None, None, 5, &bump),
            Err(ControlError::Invalid(_))
        ));
        let blank = |s: &mut DesiredState| {
            s.pauses.push(Pause::listener(" "));
            Ok(())
        };
        assert!(matches!(
            next_write(&cur, None, None, 5, &blank),
            Err(ControlError::Invalid(_))
        ));
    }

    #[test]
    fn unknown_fields_survive_a_write_by_this_build() {
        let newer = br#"{"schema":1,"app":"a","version":3,"prev_version":2,
            "pauses":[{"listener":"l","since_ms":0,"drain":"fast"}],
            "joined":{"l":["blue"]},"rollout":{"step":2}}"#;
        let mut r = Reducer::default();
        assert_eq!(r.apply_record(Some(b"a"), Some(newer)), Verdict::Set(3));
        let cur = r.state("a");
        let add = |s: &mut DesiredState| s.add_pause(Pause::topic("m", "t"));
        let next = next_write(&cur, Some(3), None, 9, &add).unwrap();
        let json: serde_json::Value = serde_json::from_slice(&next.encode()).unwrap();
        assert_eq!(json["rollout"]["step"], 2, "{json}");
        assert_eq!(json["joined"]["l"][0], "blue", "{json}");
        assert_eq!(json["pauses"][0]["drain"], "fast", "{json}");
        assert_eq!(json["version"], 4);
        assert_eq!(DesiredState::decode(&next.encode(), "k").unwrap(), next);
    }
}
