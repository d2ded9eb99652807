//! What a handoff ended in ([`Outcome`]), whichever strategy ran it: the
//! value the driver returns and the typed errors carry when a handoff was
//! rolled back or a canary aborted.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::kafka::Tp;
use crate::plan::key;

/// What a handoff did.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Finished (false: rolled back).
    pub ok: bool,
    /// Why it rolled back.
    pub reason: Option<String>,
    /// The partitions moved.
    pub moved: Vec<Tp>,
    /// Their handoff offsets (the previous owner's committed offsets).
    pub handoff: BTreeMap<Tp, i64>,
    /// From the freeze acknowledgement to the first resume acknowledgement.
    pub gap: Option<Duration>,
    /// The whole handoff.
    pub total: Duration,
}

/// Offsets per partition as progress lines show them: `t-0=5,t-1=7`.
pub(crate) fn fmt_offsets(o: &BTreeMap<Tp, i64>) -> String {
    o.iter()
        .map(|(tp, v)| format!("{}={v}", key(tp)))
        .collect::<Vec<_>>()
        .join(",")
}
