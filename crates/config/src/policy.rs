//! Per-listener policies: how offsets are committed and what happens to
//! records that cannot be decoded.

use serde::{Deserialize, Serialize};

/// How a listener commits offsets. In every mode the runtime stores an
/// offset only once the handler has finished with the record.
///
/// In TOML: `commit = { mode = "sync-per-batch" }` or
/// `commit = { mode = "every-n", records = 100 }`.
///
/// ```
/// use switchyard_config::CommitPolicy;
///
/// assert_eq!(CommitPolicy::default(), CommitPolicy::Async);
/// let policy: CommitPolicy = toml::from_str(r#"mode = "every-n"
/// records = 100"#).unwrap();
/// assert_eq!(policy, CommitPolicy::EveryN { records: 100 });
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "mode", try_from = "RawCommitPolicy")]
pub enum CommitPolicy {
    /// librdkafka auto-commit of offsets the runtime stored after the handler finished
    Auto,
    /// synchronous commit after each batch
    SyncPerBatch,
    /// asynchronous commit with a sequence guard, plus a synchronous commit on revoke and shutdown
    #[default]
    Async,
    /// async commit every `records` processed records inside large batches (plus the Async guarantees)
    EveryN {
        /// Number of processed records between commits; at least 1.
        records: u32,
    },
}

/// The TOML form of [`CommitPolicy`], checked strictly: unknown fields and a
/// `records` on a mode other than `every-n` are errors.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCommitPolicy {
    mode: String,
    #[serde(default)]
    records: Option<u32>,
}

impl TryFrom<RawCommitPolicy> for CommitPolicy {
    type Error = String;

    fn try_from(raw: RawCommitPolicy) -> Result<Self, Self::Error> {
        let policy = match raw.mode.as_str() {
            "auto" => CommitPolicy::Auto,
            "sync-per-batch" => CommitPolicy::SyncPerBatch,
            "async" => CommitPolicy::Async,
            "every-n" => {
                return raw
                    .records
                    .map(|records| CommitPolicy::EveryN { records })
                    .ok_or_else(|| "commit mode `every-n` requires `records`".to_string())
            }
            other => {
                return Err(format!(
                    "unknown commit mode `{other}`, expected `auto`, `sync-per-batch`, `async` or `every-n`"
                ))
            }
        };
        match raw.records {
            Some(_) => Err(format!(
                "`records` only applies to commit mode `every-n`, not `{}`",
                raw.mode
            )),
            None => Ok(policy),
        }
    }
}

impl CommitPolicy {
    /// Whether librdkafka's `enable.auto.commit` must be on for this policy.
    ///
    /// ```
    /// # use switchyard_config::CommitPolicy;
    /// assert!(CommitPolicy::Auto.uses_auto_commit());
    /// assert!(!CommitPolicy::SyncPerBatch.uses_auto_commit());
    /// ```
    pub fn uses_auto_commit(self) -> bool {
        matches!(self, CommitPolicy::Auto)
    }
}

/// What to do with a record whose key or payload cannot be decoded.
///
/// ```
/// use switchyard_config::DecodeErrorPolicy;
///
/// assert_eq!(DecodeErrorPolicy::default(), DecodeErrorPolicy::DeadLetter);
/// let p: DecodeErrorPolicy = serde::Deserialize::deserialize(
///     toml::Value::String("skip".into())).unwrap();
/// assert_eq!(p, DecodeErrorPolicy::Skip);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DecodeErrorPolicy {
    /// Publish the raw record to the dead-letter topic and go on.
    #[default]
    DeadLetter,
    /// Log it and go on.
    Skip,
}
