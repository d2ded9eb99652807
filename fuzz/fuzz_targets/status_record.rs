//! A record of the status topic: the JSON status one instance publishes.
//!
//! The input is decoded the way the status topic's reader decodes a value
//! (`serde_json::from_slice::<InstanceStatus>`, `StatusTail` in
//! crates/control/src/status_topic.rs). A status that decodes goes through
//! the liveness arithmetic ([`InstanceStatus::is_gone`]) at extreme clocks,
//! its counts, and the fleet view ([`fleet_view`]) built from it, as
//! `GET /fleet` and `switchyard ctl status` build it: absurd `heartbeat_ms`,
//! `timestamp_ms` or `in_flight` values must neither overflow nor panic.

#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use switchyard_control::status::{fleet_view, InstanceStatus};

const NOWS: [i64; 7] = [
    i64::MIN,
    i64::MIN + 1,
    -1,
    0,
    1_763_740_000_000,
    i64::MAX - 1,
    i64::MAX,
];

fuzz_target!(|data: &[u8]| {
    let Ok(status) = serde_json::from_slice::<InstanceStatus>(data) else {
        return;
    };
    for now in NOWS {
        let _ = status.is_gone(now);
        let _ = status.is_gone(status.timestamp_ms.saturating_add(now));
    }
    let _ = status.count("running");
    let _ = status.count("draining");
    let _ = status.in_flight();
    let _ = status.same_as(&status);
    let _ = serde_json::to_vec(&status);

    // the fleet view of one instance, and of two with the same content
    let mut statuses = BTreeMap::from([(status.instance.clone(), status.clone())]);
    for now in NOWS {
        for desired in [0, 1, status.applied_version, u64::MAX] {
            let _ = fleet_view(&statuses, &status.app, desired, now);
        }
    }
    let mut twin = status.clone();
    twin.instance.push_str("-twin");
    statuses.insert(twin.instance.clone(), twin);
    let _ = fleet_view(&statuses, &status.app, status.applied_version, 0);
});
