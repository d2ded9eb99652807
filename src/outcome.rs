//! How a command ended, and the one place that turns it into the process's
//! exit code (the table is in the README, "Exit codes"):
//!
//! | code | outcome |
//! |---|---|
//! | 0 | done |
//! | 1 | failed: tried and did not succeed (Kafka unreachable, a timeout, a rolled-back handoff, an aborted canary, a failed demo check) |
//! | 2 | usage: bad arguments (clap's own errors too) or an invalid configuration (`-X`, `--command-config`, `config check` of an invalid file) |
//! | 3 | refused: the state forbids it and nothing was changed (a reset of a group with members, a stale `--expect-version`, nothing to move) |

use switchyard_config::ConfigError;

/// Why a command did not end in "done".
#[derive(Debug)]
pub enum Failure {
    /// Bad arguments found after parsing, or an invalid configuration. An
    /// empty text: already printed (clap's errors).
    Usage(String),
    /// The state forbids it (a group with members, a stale version, nothing
    /// to move); nothing was changed.
    Refused(String),
    /// Tried and did not succeed.
    Failed(anyhow::Error),
}

/// What every command returns.
pub type Outcome = Result<(), Failure>;

/// A usage error found after parsing, carried in an error chain.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// An error chain is a failure, unless it is a [`UsageError`] or an invalid
/// configuration (a connection's `-X` or `--command-config`, a
/// configuration file).
impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Failure {
        if let Some(u) = e.downcast_ref::<UsageError>() {
            return Failure::Usage(u.0.clone());
        }
        if let Some(c) = e.downcast_ref::<ConfigError>() {
            return Failure::Usage(c.to_string());
        }
        Failure::Failed(e)
    }
}

impl From<ConfigError> for Failure {
    fn from(e: ConfigError) -> Failure {
        Failure::Usage(e.to_string())
    }
}

/// The exit code of `outcome`: 0 done, 1 failed, 2 usage, 3 refused.
pub fn exit_code(outcome: &Outcome) -> i32 {
    match outcome {
        Ok(()) => 0,
        Err(Failure::Failed(_)) => 1,
        Err(Failure::Usage(_)) => 2,
        Err(Failure::Refused(_)) => 3,
    }
}

/// Say on stderr why `outcome` is not "done".
pub fn report(outcome: &Outcome) {
    match outcome {
        Ok(()) => {}
        Err(Failure::Failed(e)) => eprintln!("error: {e:#}"),
        Err(Failure::Usage(why)) if why.is_empty() => {}
        Err(Failure::Usage(why)) => eprintln!("error: {why}"),
        Err(Failure::Refused(why)) => eprintln!("refused: {why}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_outcome_has_its_code() {
        assert_eq!(exit_code(&Ok(())), 0);
        assert_eq!(exit_code(&Err(Failure::Failed(anyhow::anyhow!("x")))), 1);
        assert_eq!(exit_code(&Err(Failure::Usage("x".into()))), 2);
        assert_eq!(exit_code(&Err(Failure::Refused("x".into()))), 3);
    }

    #[test]
    fn an_invalid_configuration_in_an_error_chain_is_a_usage_error() {
        let e = switchyard_config::Connection::new("b:9092")
            .apply_overrides(&["no-equals-sign"])
            .expect_err("not KEY=VALUE");
        let f: Failure = anyhow::Error::from(e).into();
        assert!(matches!(f, Failure::Usage(_)), "{f:?}");
        let f: Failure = anyhow::Error::from(UsageError("--window".into())).into();
        assert!(matches!(f, Failure::Usage(_)), "{f:?}");
        let f: Failure = anyhow::anyhow!("broker down").into();
        assert!(matches!(f, Failure::Failed(_)), "{f:?}");
    }
}
