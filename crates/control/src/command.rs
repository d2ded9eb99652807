//! A pause or resume command from any input (HTTP, CLI), validated and
//! applied to a desired state. A bad command is rejected with a reason and
//! changes nothing.

use serde::{Deserialize, Serialize};
use switchyard_runtime::PauseTarget;

use crate::error::{ControlError, Result};
use crate::model::{DesiredState, Pause};

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
            expires_at_ms: self.expires_in_ms.map(|d| now_ms + d as i64),
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
        Ok(())
    }

    /// Apply to `state` (validated first; on error `state` is unchanged).
    pub fn apply(&self, state: &mut DesiredState, now_ms: i64) -> Result<()> {
        self.validate()?;
        match self.action {
            Action::Pause => state.add_pause(self.pause(now_ms)),
            Action::Resume => {
                state.remove_pause(&self.listener, &self.target());
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
