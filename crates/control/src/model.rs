//! The desired-state schema (JSON, versioned by `schema`), one document per
//! application. A document holds the pause set (listener, topic or
//! partition; reason, issuer, since, optional expiry), and, for
//! deployments, slot `owners` and `handoff` offsets (carried, unused
//! here). `version` increases by one per accepted write and `prev_version`
//! names the version a write replaces; a write is a [`Change`] to the
//! current document (the control log's reducer decides what it makes).
//!
//! Fields this build does not know are kept ([`DesiredState::extra`],
//! [`Pause::extra`]) and written back unchanged, so an older writer carries
//! a newer writer's fields forward (docs/control-plane.md, "Compatibility").
//!
//! ```
//! use switchyard_control::model::{DesiredState, Pause};
//! let mut s = DesiredState::new("orders");
//! s.pauses.push(Pause::topic("probe", "orders-in"));
//! let json = serde_json::to_string(&s).unwrap();
//! assert_eq!(DesiredState::decode(json.as_bytes(), "k").unwrap(), s);
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use switchyard_runtime::PauseTarget;

use crate::error::{ControlError, Result};

/// The schema version this build writes and reads.
pub const SCHEMA_VERSION: u32 = 1;

/// Desired state of one application.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DesiredState {
    /// Schema version of this document.
    pub schema: u32,
    /// Application name (the record key in the control topic).
    pub app: String,
    /// Version of this document (1 for the first write).
    pub version: u64,
    /// The version this write replaces (0: none).
    pub prev_version: u64,
    /// Wanted pauses.
    #[serde(default)]
    pub pauses: Vec<Pause>,
    /// Slot ownership: listener -> `topic` or `topic-partition` -> slot.
    #[serde(default)]
    pub owners: BTreeMap<String, BTreeMap<String, String>>,
    /// Handoff offsets: listener -> `topic-partition` -> offset.
    #[serde(default)]
    pub handoff: BTreeMap<String, BTreeMap<String, i64>>,
    /// The scope of each handoff offset: listener -> `topic-partition` ->
    /// the committed offset of the new owner's group when the handoff
    /// offset was written (-1: it had none). A handoff offset acts as a
    /// start floor only while that group still stands there (nothing
    /// committed since the handoff); one without a scope (written by an
    /// older driver) acts while the group is below it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub handoff_base: BTreeMap<String, BTreeMap<String, i64>>,
    /// Offsets above each handoff offset that the previous owner had
    /// finished already: listener -> `topic-partition` -> offsets, read from
    /// the commit metadata of the previous owner's group. In key and
    /// unordered modes records finish out of order; an instance starting at
    /// the handoff offset skips these instead of processing them again.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub handoff_done: BTreeMap<String, BTreeMap<String, Vec<i64>>>,
    /// Shared-group strategy: listener -> the slots whose instances are
    /// members of the listener's (one, shared) consumer group; instances of
    /// other slots stay out of it. A listener without an entry is not
    /// constrained (every instance joins).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub joined: BTreeMap<String, Vec<String>>,
    /// Deployment bookkeeping of `switchyard deploy` (e.g. `previous`,
    /// `canary`, `canary_from` slots); agents do not read it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub deploy: BTreeMap<String, String>,
    /// Who wrote this version.
    #[serde(default)]
    pub issuer: Option<String>,
    /// When, in ms since the epoch.
    #[serde(default)]
    pub written_at_ms: i64,
    /// Fields this build does not know (written by a newer build with the
    /// same `schema`): kept as they are and written back by [`Self::next`].
    #[serde(flatten)]
    pub extra: Map<String, Value>,
    /// Set (never serialized) when the last record of the app could not be
    /// read: malformed, invalid, or of a newer `schema`. The reason. Such a
    /// state holds nothing else; agents fail closed on it (every listener
    /// paused) and writers refuse to write on top of it.
    #[serde(skip)]
    pub unreadable: Option<String>,
}

/// One wanted pause.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pause {
    /// Listener id.
    pub listener: String,
    /// Topic (none: the whole listener).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// Partition (needs `topic`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<i32>,
    /// Why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Who.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// Since when (ms since the epoch).
    #[serde(default)]
    pub since_ms: i64,
    /// Resumes by itself at this time (ms since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at_ms: Option<i64>,
    /// Fields this build does not know: kept and written back.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Pause {
    /// A pause of a whole listener.
    pub fn listener(listener: &str) -> Pause {
        Pause {
            listener: listener.into(),
            topic: None,
            partition: None,
            reason: None,
            issuer: None,
            since_ms: 0,
            expires_at_ms: None,
            extra: Map::new(),
        }
    }
    /// A pause of a topic of a listener.
    pub fn topic(listener: &str, topic: &str) -> Pause {
        Pause {
            topic: Some(topic.into()),
            ..Pause::listener(listener)
        }
    }
    /// A pause of one partition.
    pub fn partition(listener: &str, topic: &str, partition: i32) -> Pause {
        Pause {
            partition: Some(partition),
            ..Pause::topic(listener, topic)
        }
    }
    /// The runtime target of this pause.
    pub fn target(&self) -> PauseTarget {
        match (&self.topic, self.partition) {
            (None, _) => PauseTarget::Listener,
            (Some(t), None) => PauseTarget::Topic(t.clone()),
            (Some(t), Some(p)) => PauseTarget::Partition(t.clone(), p),
        }
    }
    /// Is it still in force at `now_ms`?
    pub fn active_at(&self, now_ms: i64) -> bool {
        self.expires_at_ms.is_none_or(|e| now_ms < e)
    }
    /// Check the fields; the reason names the field.
    pub fn validate(&self) -> Result<()> {
        if self.listener.trim().is_empty() {
            return Err(ControlError::Invalid(
                "pause: the listener id is blank".into(),
            ));
        }
        if let Some(t) = &self.topic {
            if t.trim().is_empty() {
                return Err(ControlError::Invalid("pause: the topic is blank".into()));
            }
        }
        if self.partition.is_some() && self.topic.is_none() {
            return Err(ControlError::Invalid(
                "pause: a partition needs a topic".into(),
            ));
        }
        if self.partition.is_some_and(|p| p < 0) {
            return Err(ControlError::Invalid("pause: negative partition".into()));
        }
        Ok(())
    }
}

impl DesiredState {
    /// The empty state of `app` (version 0: nothing written yet).
    pub fn new(app: &str) -> DesiredState {
        DesiredState {
            schema: SCHEMA_VERSION,
            app: app.into(),
            version: 0,
            prev_version: 0,
            pauses: Vec::new(),
            owners: BTreeMap::new(),
            handoff: BTreeMap::new(),
            handoff_base: BTreeMap::new(),
            handoff_done: BTreeMap::new(),
            joined: BTreeMap::new(),
            deploy: BTreeMap::new(),
            issuer: None,
            written_at_ms: 0,
            extra: Map::new(),
            unreadable: None,
        }
    }

    /// The state of `app` whose last record cannot be read, with the reason
    /// (version 0, nothing wanted: agents hold every listener paused).
    pub fn unreadable(app: &str, reason: impl Into<String>) -> DesiredState {
        DesiredState {
            unreadable: Some(reason.into()),
            ..DesiredState::new(app)
        }
    }

    /// Is this the state of an app whose last record cannot be read?
    pub fn is_unreadable(&self) -> bool {
        self.unreadable.is_some()
    }

    /// Check a stored document: a named app, a version of at least 1
    /// (0 means nothing written), valid pauses.
    pub fn validate(&self) -> Result<()> {
        if self.app.trim().is_empty() {
            return Err(ControlError::Invalid("the app name is blank".into()));
        }
        if self.version == 0 {
            return Err(ControlError::Invalid(format!(
                "app `{}`: version 0 is not a written version",
                self.app
            )));
        }
        self.pauses.iter().try_for_each(|p| {
            p.validate().map_err(|e| {
                ControlError::Invalid(format!("app `{}` version {}: {e}", self.app, self.version))
            })
        })
    }

    /// Decode a JSON document; `what` names the record or file in the error.
    pub fn decode(bytes: &[u8], what: &str) -> Result<DesiredState> {
        let s: DesiredState = serde_json::from_slice(bytes).map_err(|e| ControlError::Decode {
            what: what.into(),
            reason: e.to_string(),
        })?;
        if s.schema > SCHEMA_VERSION {
            return Err(ControlError::Decode {
                what: what.into(),
                reason: format!("schema {} is newer than {SCHEMA_VERSION}", s.schema),
            });
        }
        Ok(s)
    }

    /// Encode as JSON.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("serializable")
    }

    /// The next version: `version + 1`, `prev_version = version`, the
    /// rest (unknown fields included) carried over. A version at
    /// `u64::MAX` cannot be followed ([`ControlError::VersionExhausted`]);
    /// an unreadable state cannot be written over ([`ControlError::Unreadable`]).
    pub fn try_next(&self, issuer: Option<&str>, now_ms: i64) -> Result<DesiredState> {
        if let Some(reason) = &self.unreadable {
            return Err(ControlError::Unreadable {
                app: self.app.clone(),
                reason: reason.clone(),
            });
        }
        let version =
            self.version
                .checked_add(1)
                .ok_or_else(|| ControlError::VersionExhausted {
                    app: self.app.clone(),
                    version: self.version,
                })?;
        Ok(DesiredState {
            version,
            prev_version: self.version,
            issuer: issuer.map(str::to_string),
            written_at_ms: now_ms,
            schema: SCHEMA_VERSION,
            ..self.clone()
        })
    }

    /// [`Self::try_next`] for states known to be readable and below
    /// `u64::MAX` (tests, local sources); panics otherwise.
    pub fn next(&self, issuer: Option<&str>, now_ms: i64) -> DesiredState {
        self.try_next(issuer, now_ms)
            .unwrap_or_else(|e| panic!("DesiredState::next: {e}"))
    }

    /// Add a pause (replacing one with the same target of the same listener).
    pub fn add_pause(&mut self, pause: Pause) -> Result<()> {
        pause.validate()?;
        let t = pause.target();
        self.pauses
            .retain(|p| !(p.listener == pause.listener && p.target() == t));
        self.pauses.push(pause);
        Ok(())
    }

    /// Remove the pauses of `listener` that resuming `target` lifts (a topic
    /// lifts its partitions; the listener lifts everything). Returns how many.
    pub fn remove_pause(&mut self, listener: &str, target: &PauseTarget) -> usize {
        let before = self.pauses.len();
        self.pauses
            .retain(|p| !(p.listener == listener && covers(target, &p.target())));
        before - self.pauses.len()
    }
}

/// Does resuming `outer` lift `inner` (the runtime's rule, docs/decisions.md)?
pub fn covers(outer: &PauseTarget, inner: &PauseTarget) -> bool {
    match (outer, inner) {
        (PauseTarget::Listener, _) => true,
        (PauseTarget::Topic(a), PauseTarget::Topic(b)) => a == b,
        (PauseTarget::Topic(a), PauseTarget::Partition(b, _)) => a == b,
        (a, b) => a == b,
    }
}

pub use switchyard_config::now_ms;

/// A change to the desired state (validated; an error rejects the write).
pub type Change<'a> = &'a dyn Fn(&mut DesiredState) -> Result<()>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_links_versions_and_resume_lifts_narrower_pauses() {
        let mut s = DesiredState::new("a").next(Some("me"), 5);
        assert_eq!((s.version, s.prev_version), (1, 0));
        s.add_pause(Pause::partition("l", "t", 1)).unwrap();
        s.add_pause(Pause::topic("l", "u")).unwrap();
        s.add_pause(Pause::topic("l", "u")).unwrap();
        assert_eq!(s.pauses.len(), 2);
        assert_eq!(s.remove_pause("l", &PauseTarget::Topic("t".into())), 1);
        assert_eq!(s.remove_pause("other", &PauseTarget::Listener), 0);
        assert_eq!(s.remove_pause("l", &PauseTarget::Listener), 1);
        let n = s.next(None, 6);
        assert_eq!((n.version, n.prev_version), (2, 1));
    }

    #[test]
    fn bad_documents_are_rejected_with_the_reason() {
        let e = DesiredState::decode(b"{", "key `a`")
            .unwrap_err()
            .to_string();
        assert!(e.contains("key `a`"), "{e}");
        let mut s = DesiredState::new("a");
        s.schema = 99;
        let e = DesiredState::decode(&s.encode(), "k")
            .unwrap_err()
            .to_string();
        assert!(e.contains("schema 99"), "{e}");
        assert!(s.add_pause(Pause::listener(" ")).is_err());
        let mut p = Pause::listener("l");
        p.partition = Some(1);
        assert!(p.validate().is_err());
    }
}
