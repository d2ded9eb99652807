//! The shared-group strategy: blue and green probes configured with one
//! group; only the joined slot is a member. A switch makes green join, then
//! blue leave after draining and committing on revoke; a rollback goes back
//! the same way. I1 and I2 hold with no duplicate at all (nothing crashes).

use switchyard_control::model::now_ms;
use switchyard_control::status_topic::StatusTail;

use super::*;

/// Every partition held by live instances of `slot`, and no live instance
/// of another slot holds one or reports itself in the group.
fn only_slot_runs(d: &Deployment, tail: &StatusTail, slot: &str, instances: usize) -> bool {
    let now = now_ms();
    let live: Vec<_> = tail
        .latest()
        .into_values()
        .filter(|s| s.app == d.plane.app && !s.is_gone(now))
        .collect();
    let (mine, others): (Vec<_>, Vec<_>) = live.iter().partition(|s| s.slot == slot);
    mine.len() == instances
        && mine.iter().map(|s| s.partitions().count()).sum::<usize>() == PARTITIONS as usize
        && others.iter().all(|s| {
            s.partitions().count() == 0 && s.listeners.iter().all(|l| l.joined == Some(false))
        })
}

crate::protocol_tests!(shared_switch_and_rollback:
    a_shared_group_switch_and_rollback_process_every_record_once_classic,
    a_shared_group_switch_and_rollback_process_every_record_once_consumer);

fn shared_switch_and_rollback(protocol: GroupProtocol) {
    let mut d = Deployment::with_protocol("dpshr", protocol);
    d.shared = true;
    let (code, out) = d.deploy(
        "init",
        &[
            "--slot",
            "blue",
            "--topics",
            &d.topic.clone(),
            "--strategy",
            "shared",
        ],
    );
    assert_eq!(code, 0, "{out}");
    let tail = d.plane.tail();
    let _b1 = d.probe("dpshr-blue-1", "blue");
    let _b2 = d.probe("dpshr-blue-2", "blue");
    let _g1 = d.probe("dpshr-green-1", "green");
    let _g2 = d.probe("dpshr-green-2", "green");
    wait_until(
        "blue runs everything, green stays out of the group",
        WAIT,
        || only_slot_runs(&d, &tail, "blue", 2),
    );
    let producer = SteadyProducer::start(&bootstrap(), &d.topic, PARTITIONS, 200);
    d.wait_progress(100);

    let (code, out) = d.deploy("switch", &["--to", "green"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("phase 2 done") && out.contains("phase 4 done"),
        "{out}"
    );
    assert!(
        out.contains("summary: moved 4 partitions blue -> green (shared group"),
        "{out}"
    );
    wait_until("green runs everything, blue left the group", WAIT, || {
        only_slot_runs(&d, &tail, "green", 2)
    });
    let (code, out) = d.deploy("status", &[]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("shared group") && out.contains("green"),
        "{out}"
    );
    d.wait_progress(100);
    let green_logs: Vec<PathBuf> = d
        .logs
        .iter()
        .filter(|p| p.display().to_string().contains("green"))
        .cloned()
        .collect();
    assert!(ProcessedLog::read_all(&green_logs).count(&d.topic) > 0);

    let (code, out) = d.deploy("rollback", &[]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("summary: moved 4 partitions green -> blue (shared group"),
        "{out}"
    );
    wait_until("blue runs everything again", WAIT, || {
        only_slot_runs(&d, &tail, "blue", 2)
    });
    // canaries need separate groups
    let (code, out) = d.deploy("canary", &["--to", "green", "--partitions", "1"]);
    assert_eq!(code, 3, "refused: {out}");
    d.wait_progress(100);
    d.check_invariants(producer);
    tail.stop();
}
