//! A pause or resume command from any input (HTTP, CLI), validated and
//! applied to a desired state. A bad command is rejected with a reason and
//! changes nothing.
//!
//! Input limits (docs/control-plane.md, "Limits"), checked before anything
//! is written: `expires_in_ms` from 1 ms to [`MAX_EXPIRES_IN_MS`] (30
//! days), `reason` up to [`MAX_REASON_BYTES`], `issuer` up to
//! [`MAX_ISSUER_BYTES`], a topic name Kafka accepts (1 to 249 characters of
//! `[a-zA-Z0-9._-]`), and the resulting document up to
//! [`MAX_DOCUMENT_BYTES`] encoded (well under the default 1 MiB record
//! size of the control topic).

use serde::{Deserialize, Serialize};
use switchyard_runtime::PauseTarget;

use crate::error::{ControlError, Result};
use crate::model::{DesiredState, Pause};

/// Longest timed pause: 30 days. A longer pause is an untimed one.
pub const MAX_EXPIRES_IN_MS: u64 = 30 * 24 * 3_600_000;
/// Longest `reason`, in bytes.
pub const MAX_REASON_BYTES: usize = 1024;
/// Longest `issuer`, in bytes.
pub const MAX_ISSUER_BYTES: usize = 256;
/// Longest topic name (Kafka's limit).
pub const MAX_TOPIC_CHARS: usize = 249;
/// Largest encoded desired-state document a command may produce.
pub const MAX_DOCUMENT_BYTES: usize = 512 * 1024;

/// Pause or resume.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    /// Pause the target.
    Pause,
    /// Resume the target.
    Resume,
}

impl Action {
    /// From a Spring Cloud Stream binding state: `PAUSED`/`STOPPED` pause,
    /// `RESUMED`/`STARTED` resume (STOPPED/STARTED pause and resume the
    /// whole listener; the consumer stays in its group).
    pub fn from_binding_state(s: &str) -> Result<Action> {
        match s.to_ascii_uppercase().as_str() {
            "PAUSED" | "STOPPED" => Ok(Action::Pause),
            "RESUMED" | "STARTED" => Ok(Action::Resume),
            _ => Err(ControlError::Invalid(format!(
                "unknown state `{s}` (expected PAUSED, RESUMED, STOPPED or STARTED)"
            ))),
        }
    }
}

/// One command on one listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindingCommand {
    /// Listener id.
    pub listener: String,
    /// Pause or resume.
    pub action: Action,
    /// Topic (none: the whole listener).
    pub topic: Option<String>,
    /// Partition (needs a topic).
    pub partition: Option<i32>,
    /// Why.
    pub reason: Option<String>,
    /// Who.
    pub issuer: Option<String>,
    /// A pause that resumes by itself after this long.
    pub expires_in_ms: Option<u64>,
}

impl BindingCommand {
    /// A command with only the listener and action set.
    pub fn new(listener: &str, action: Action) -> BindingCommand {
        BindingCommand {
            listener: listener.into(),
            action,
            topic: None,
            partition: None,
            reason: None,
            issuer: None,
            expires_in_ms: None,
        }
    }

    /// The target of the command.
    pub fn target(&self) -> PauseTarget {
        self.pause(0).target()
    }

    fn pause(&self, now_ms: i64) -> Pause {
        Pause {
            listener: self.listener.clone(),
            topic: self.topic.clone(),
            partition: self.partition,
            reason: self.reason.clone(),
            issuer: self.issuer.clone(),
            since_ms: now_ms,
            expires_at_ms: self
                .expires_in_ms
                .map(|d| now_ms.saturating_add(i64::try_from(d).unwrap_or(i64::MAX))),
            extra: Default::default(),
        }
    }

    /// Check the command; the reason names the field.
    pub fn validate(&self) -> Result<()> {
        self.pause(0).validate()?;
        if self.action == Action::Resume && self.expires_in_ms.is_some() {
            return Err(ControlError::Invalid(
                "an expiry only applies to a pause".into(),
            ));
        }
        if self.expires_in_ms == Some(0) {
            return Err(ControlError::Invalid(
                "expires_in_ms must be positive".into(),
            ));
        }
        if let Some(d) = self.expires_in_ms.filter(|d| *d > MAX_EXPIRES_IN_MS) {
            return Err(ControlError::Invalid(format!(
                "expires_in_ms {d} is above the limit of {MAX_EXPIRES_IN_MS} (30 days); a longer pause is an untimed one"
            )));
        }
        for (field, value, max) in [
            ("reason", &self.reason, MAX_REASON_BYTES),
            ("issuer", &self.issuer, MAX_ISSUER_BYTES),
        ] {
            if let Some(n) = value.as_ref().map(String::len).filter(|n| *n > max) {
                return Err(ControlError::Invalid(format!(
                    "{field} is {n} bytes, above the limit of {max}"
                )));
            }
        }
        if let Some(t) = &self.topic {
            check_topic(t)?;
        }
        Ok(())
    }

    /// Apply to `state` (validated first; on error `state` is unchanged).
    /// A change that would make the encoded document larger than
    /// [`MAX_DOCUMENT_BYTES`] is refused.
    pub fn apply(&self, state: &mut DesiredState, now_ms: i64) -> Result<()> {
        self.validate()?;
        match self.action {
            Action::Pause => {
                let before = state.clone();
                state.add_pause(self.pause(now_ms))?;
                let size = state.encode().len();
                if size > MAX_DOCUMENT_BYTES {
                    *state = before;
                    return Err(ControlError::Invalid(format!(
                        "the desired state would be {size} bytes, above the limit of {MAX_DOCUMENT_BYTES} (too many pauses or reasons too long)"
                    )));
                }
                Ok(())
            }
            Action::Resume => {
                state.remove_pause(&self.listener, &self.target());
                Ok(())
            }
        }
    }
}

/// A topic name Kafka accepts: 1 to 249 characters of `[a-zA-Z0-9._-]`,
/// not `.` or `..`.
fn check_topic(t: &str) -> Result<()> {
    let ok = !t.is_empty()
        && t.len() <= MAX_TOPIC_CHARS
        && t != "."
        && t != ".."
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        return Ok(());
    }
    let shown: String = t.chars().take(60).collect();
    Err(ControlError::Invalid(format!(
        "topic `{shown}` is not a Kafka topic name (1 to {MAX_TOPIC_CHARS} characters of a-z, A-Z, 0-9, `.`, `_`, `-`)"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every out-of-range field is refused with its name, and nothing
    /// changes: an expiry that overflows the clock, a reason of 1.5 MB, a
    /// topic Kafka would refuse; and no command makes the document larger
    /// than a record may be.
    #[test]
    fn out_of_range_commands_are_refused_with_the_field() {
        let mut s = DesiredState::new("a");
        let pause = |f: &dyn Fn(&mut BindingCommand)| {
            let mut c = BindingCommand::new("l", Action::Pause);
            c.topic = Some("t".into());
            f(&mut c);
            c
        };
        let cases: Vec<(BindingCommand, &str)> = vec![
            (
                pause(&|c| c.expires_in_ms = Some(u64::MAX)),
                "expires_in_ms",
            ),
            (
                pause(&|c| c.expires_in_ms = Some(i64::MAX as u64)),
                "expires_in_ms",
            ),
            (pause(&|c| c.reason = Some("x".repeat(1_500_000))), "reason"),
            (pause(&|c| c.issuer = Some("x".repeat(10_000))), "issuer"),
            (pause(&|c| c.topic = Some("a topic".into())), "topic"),
            (pause(&|c| c.topic = Some("t".repeat(250))), "topic"),
        ];
        for (c, field) in cases {
            let e = std::panic::catch_unwind(|| c.clone().apply(&mut s.clone(), 1_763_740_000_000))
                .unwrap_or_else(|_| panic!("{field}: panicked"))
                .expect_err(field)
                .to_string();
            assert!(e.contains(field), "{e}");
        }
        let mut c = pause(&|c| c.reason = Some("r".repeat(1000)));
        let mut refused = None;
        for p in 0..5_000 {
            c.partition = Some(p);
            if let Err(e) = c.apply(&mut s, 0) {
                refused = Some(e.to_string());
                break;
            }
        }
        assert!(s.encode().len() < 1_000_000, "{} bytes", s.encode().len());
        assert!(refused.is_some_and(|e| e.contains("bytes")));
    }

    #[test]
    fn commands_apply_and_bad_ones_change_nothing() {
        let mut s = DesiredState::new("a");
        let mut c = BindingCommand::new("l", Action::Pause);
        c.topic = Some("t".into());
        c.expires_in_ms = Some(50);
        c.apply(&mut s, 100).unwrap();
        assert_eq!(s.pauses[0].expires_at_ms, Some(150));
        let before = s.clone();
        let mut bad = BindingCommand::new(" ", Action::Pause);
        assert!(bad.apply(&mut s, 0).is_err());
        bad = BindingCommand::new("l", Action::Resume);
        bad.expires_in_ms = Some(5);
        assert!(bad.apply(&mut s, 0).is_err());
        assert_eq!(s, before);
        BindingCommand::new("l", Action::Resume)
            .apply(&mut s, 0)
            .unwrap();
        assert!(s.pauses.is_empty());
        assert_eq!(
            Action::from_binding_state("stopped").unwrap(),
            Action::Pause
        );
        assert!(Action::from_binding_state("FROZEN")
            .unwrap_err()
            .to_string()
            .contains("FROZEN"));
    }
}
