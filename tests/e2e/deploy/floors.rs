//! Start floors (handoff offsets applied to later assignments) are scoped
//! to their handoff: once the slot's group has committed anything since the
//! handoff (past the floor, or an operator's reset), the floor no longer
//! moves a start.

use super::*;

/// After a switch to green and green committing past the handoff offsets,
/// an operator resets green's group to the beginning (its instance stopped,
/// the group empty) and starts green again: green processes from the
/// beginning. The handoff offsets, still in the desired state, used to act
/// as start floors for ever, and everything below them was skipped (I2).
#[test]
fn an_offset_reset_after_a_switch_is_not_undone_by_its_handoff_offsets() {
    let mut d = Deployment::new("dpfl");
    let (code, out) = d.deploy("init", &["--slot", "blue", "--topics", &d.topic.clone()]);
    assert_eq!(code, 0, "{out}");
    let tail = d.plane.tail();
    let _b1 = d.probe("dpfl-blue-1", "blue");
    let mut g1 = d.probe("dpfl-green-1", "green");
    d.wait_ready(&tail, &[("blue", 1), ("green", 1)]);
    let b = bootstrap();
    SeqProducer::new(&b).send(&d.topic, None, 100, |s| s.to_string());
    wait_until("blue processed everything", WAIT, || d.processed() == 100);
    let (code, out) = d.deploy("switch", &["--to", "green"]);
    assert_eq!(code, 0, "{out}");
    SeqProducer::new(&b).send(&d.topic, None, 40, |s| s.to_string());
    let green = format!("{}-green", d.group);
    let end = end_offsets(&b, &d.topic);
    wait_until("green committed everything", WAIT, || {
        committed_offsets(&b, &green, &d.topic) == end
    });
    // the operator's reset needs an empty group
    g1.terminate();
    g1.wait_exit(WAIT).expect("green stops");
    wait_until("green's group is empty", WAIT, || {
        group_members(&b, &green).0 == 0
    });
    let args: Vec<String> = [
        "offsets",
        "reset",
        "--bootstrap",
        &b,
        "--group",
        &green,
        "--topic",
        &d.topic,
        "--to-earliest",
        "--execute",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let (code, out) = switchyard(&args);
    assert_eq!(code, 0, "{out}");
    assert_eq!(committed_offsets(&b, &green, &d.topic), zeros(&end));
    let _g2 = d.probe("dpfl-green-2", "green");
    let g2_log = d.logs.last().unwrap().clone();
    let total: i64 = end.values().sum();
    wait_until("green processes again from the beginning", WAIT, || {
        ProcessedLog::read(&g2_log).count(&d.topic) as i64 == total
    });
    ProcessedLog::read(&g2_log)
        .check_no_gaps(&d.topic, &zeros(&end), &end)
        .unwrap();
}
