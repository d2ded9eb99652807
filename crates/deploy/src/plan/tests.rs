//! Unit tests of the planner: move selection, phase changes,
//! acknowledgement rules (with and without the group's membership), and the
//! phase machine.

use super::*;
use switchyard_control::status::{ListenerReport, PartitionReport};

fn tp(p: i32) -> Tp {
    ("t".into(), p)
}

fn state(owners: &[(&str, i32)]) -> DesiredState {
    let mut s = DesiredState::new("a");
    for (slot, p) in owners {
        init(&mut s, "l", slot, &[tp(*p)]);
    }
    s
}

#[test]
fn switch_canary_promote_abort_rollback_pick_the_right_partitions() {
    let s = state(&[("blue", 0), ("blue", 1), ("blue", 2), ("blue", 3)]);
    let m = switch(&s, "l", "green").unwrap();
    assert_eq!((m.from.as_str(), m.partitions.len()), ("blue", 4));
    assert!(switch(&s, "l", "blue").is_err());
    assert!(rollback(&s, "l").is_err());
    let mut s2 = s.clone();
    transfer(&mut s2, &m, &BTreeMap::from([(tp(0), 5), (tp(1), -1)]));
    assert_eq!(s2.handoff["l"]["t-0"], 5);
    assert!(!s2.handoff["l"].contains_key("t-1"));
    let r = rollback(&s2, "l").unwrap();
    assert_eq!((r.from.as_str(), r.to.as_str()), ("green", "blue"));

    let c = canary(&s, "l", "green", &[tp(1), tp(3)]).unwrap();
    assert_eq!(c.partitions, vec![tp(1), tp(3)]);
    assert!(canary(&s, "l", "green", &[tp(0), tp(1), tp(2), tp(3)]).is_err());
    assert!(canary(&s, "l", "green", &[tp(9)]).is_err());
    let mut s3 = s.clone();
    transfer(&mut s3, &c, &BTreeMap::new());
    assert!(canary(&s3, "l", "green", &[tp(0)]).is_err());
    let p = promote(&s3, "l").unwrap();
    assert_eq!(
        (p.to.as_str(), p.partitions.clone()),
        ("green", vec![tp(0), tp(2)])
    );
    assert!(!p.meta_after.contains_key(CANARY));
    let a = abort(&s3, "l").unwrap();
    assert_eq!((a.from.as_str(), a.to.as_str()), ("green", "blue"));
    assert_eq!(a.partitions, vec![tp(1), tp(3)]);
    // a rollback writes the previous owners and bookkeeping back
    let mut s4 = s3.clone();
    freeze(&mut s4, &a);
    assert!(switch(&s4, "l", "blue").unwrap_err().contains("nobody"));
    restore(&mut s4, &a, None);
    assert_eq!(owners(&s4, "l"), owners(&s3, "l"));
    assert_eq!(s4.deploy, s3.deploy);
}

/// A transfer scopes its handoff offsets to the receiving group's committed
/// offsets; a later handoff of the same partition drops the old scope.
#[test]
fn handoff_offsets_are_scoped_to_their_handoff() {
    let s = state(&[("blue", 0), ("blue", 1)]);
    let m = switch(&s, "l", "green").unwrap();
    let mut s2 = s.clone();
    transfer(&mut s2, &m, &BTreeMap::from([(tp(0), 50), (tp(1), 60)]));
    scope_handoff(&mut s2, &m, &BTreeMap::from([(tp(0), -1), (tp(1), 12)]));
    assert_eq!(s2.handoff_base["l"]["t-0"], -1);
    assert_eq!(s2.handoff_base["l"]["t-1"], 12);
    // back to blue, with no handoff offset for t-1 (green never committed it)
    let back = rollback(&s2, "l").unwrap();
    let mut s3 = s2.clone();
    transfer(&mut s3, &back, &BTreeMap::from([(tp(0), 80)]));
    assert!(!s3.handoff.get("l").is_some_and(|h| h.contains_key("t-1")));
    assert!(
        !s3.handoff_base.contains_key("l"),
        "scopes of the earlier handoff are gone: {:?}",
        s3.handoff_base
    );
    scope_handoff(&mut s3, &back, &BTreeMap::from([(tp(0), 40)]));
    assert_eq!(
        s3.handoff_base["l"],
        BTreeMap::from([("t-0".to_string(), 40)])
    );
}

/// What the previous owner finished above a handoff offset travels with
/// it (only offsets above it, only for partitions with a handoff offset);
/// a later handoff of the same partition drops it.
#[test]
fn finished_above_offsets_travel_with_their_handoff_offset() {
    let s = state(&[("blue", 0), ("blue", 1), ("blue", 2)]);
    let m = switch(&s, "l", "green").unwrap();
    let mut s2 = s.clone();
    transfer(&mut s2, &m, &BTreeMap::from([(tp(0), 50), (tp(1), 60)]));
    let done = BTreeMap::from([(tp(0), vec![49, 52, 55]), (tp(1), vec![]), (tp(2), vec![7])]);
    carry_done(&mut s2, &m, &done);
    assert_eq!(
        s2.handoff_done["l"],
        BTreeMap::from([("t-0".to_string(), vec![52, 55])])
    );
    let back = rollback(&s2, "l").unwrap();
    let mut s3 = s2.clone();
    transfer(&mut s3, &back, &BTreeMap::from([(tp(0), 80)]));
    assert!(s3.handoff_done.is_empty(), "{:?}", s3.handoff_done);
}

fn st(id: &str, slot: &str, v: u64, ts: i64, parts: &[(i32, &str)]) -> InstanceStatus {
    InstanceStatus {
        instance: id.into(),
        slot: slot.into(),
        app: "a".into(),
        listeners: vec![ListenerReport {
            joined: None,
            name: "l".into(),
            group: None,
            partitions: parts
                .iter()
                .map(|(p, s)| PartitionReport {
                    topic: "t".into(),
                    partition: *p,
                    state: s.to_string(),
                    in_flight: 0,
                    committed: Some(7),
                    reason: None,
                })
                .collect(),
            paused_targets: vec![],
        }],
        applied_version: v,
        overrides: BTreeMap::new(),
        heartbeat_ms: 100,
        timestamp_ms: ts,
        unreadable: None,
    }
}

/// A partition whose pause commit failed is reported draining, with the
/// reason, by an instance that did not apply the version: not acknowledged.
#[test]
fn a_pause_whose_commit_failed_does_not_acknowledge_the_freeze() {
    let s = state(&[("blue", 0)]);
    let m = switch(&s, "l", "green").unwrap();
    let mut b1 = st("b1", "blue", 4, 1000, &[(0, "draining")]);
    b1.listeners[0].partitions[0].reason = Some("commit on pause failed: Broker: timeout".into());
    let all = BTreeMap::from([("b1".to_string(), b1)]);
    assert_eq!(
        freeze_pending(&all, "a", &m, 5, 1000),
        vec!["b1".to_string()]
    );
    assert!(freeze_acked(&all, "a", &m, 5).is_empty());
    assert!(!freeze_done(1, 0, Some(1)));
}

#[test]
fn acknowledgements_count_live_instances_of_the_right_slot() {
    let s = state(&[("blue", 0), ("blue", 1)]);
    let m = switch(&s, "l", "green").unwrap();
    let mut all = BTreeMap::new();
    all.insert("b1".into(), st("b1", "blue", 5, 1000, &[(0, "paused")]));
    all.insert("b2".into(), st("b2", "blue", 5, 1000, &[(1, "draining")]));
    all.insert("b3".into(), st("b3", "blue", 1, 100, &[(1, "running")])); // gone
    all.insert("g1".into(), st("g1", "green", 4, 1000, &[(0, "paused")]));
    assert_eq!(
        freeze_pending(&all, "a", &m, 5, 1000),
        vec!["b2".to_string()]
    );
    assert_eq!(freeze_pending(&all, "a", &m, 6, 1000).len(), 2);
    all.insert("b2".into(), st("b2", "blue", 5, 1000, &[(1, "paused")]));
    assert!(freeze_pending(&all, "a", &m, 5, 1000).is_empty());
    assert_eq!(
        freeze_acked(&all, "a", &m, 5),
        vec!["b1".to_string(), "b2".to_string()]
    );
    // a stale status does not count as acknowledged while the group has more members
    assert!(!freeze_done(0, 2, Some(3)));
    assert!(freeze_done(0, 2, Some(2)));
    assert!(freeze_done(1, 0, Some(0)));
    assert!(!freeze_done(0, 5, None));
    assert!(running_on(&all, "a", &m, "green", 6, 1000).is_empty());
    all.insert(
        "g1".into(),
        st("g1", "green", 6, 1000, &[(0, "running"), (1, "paused")]),
    );
    let r = running_on(&all, "a", &m, "green", 6, 1000);
    assert_eq!(r.keys().cloned().collect::<Vec<_>>(), vec![tp(0)]);
}

#[test]
fn without_group_membership_phase_2_waits_for_the_instances_live_now_or_at_the_start() {
    let s = state(&[("blue", 0), ("blue", 1)]);
    let m = switch(&s, "l", "green").unwrap();
    let mut all = BTreeMap::new();
    all.insert("b1".into(), st("b1", "blue", 4, 1000, &[(0, "running")]));
    all.insert("b2".into(), st("b2", "blue", 4, 1000, &[(1, "running")]));
    all.insert("b3".into(), st("b3", "blue", 4, 100, &[(1, "running")])); // gone
    all.insert("g1".into(), st("g1", "green", 4, 1000, &[(0, "paused")]));
    let at_start = live_instances(&all, "a", "blue", 1000);
    let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(
        at_start,
        names(&["b1", "b2"]),
        "not the stale b3, not green"
    );
    let done = |all: &BTreeMap<String, InstanceStatus>, now| {
        let awaited = awaited_by_status(all, "a", "blue", &at_start, now);
        freeze_done_by_status(&awaited, &freeze_acked(all, "a", &m, 5))
    };
    assert!(!done(&all, 1000));
    all.insert("b1".into(), st("b1", "blue", 5, 1200, &[(0, "paused")]));
    assert!(!done(&all, 1200), "b2 has not acknowledged");
    // b2's status goes stale during the wait: still awaited (the broker
    // would still count it as a member until its session times out)
    assert!(!done(&all, 5000));
    // a new live instance that has not applied v5 is awaited too
    all.insert("b4".into(), st("b4", "blue", 4, 5000, &[]));
    all.insert("b2".into(), st("b2", "blue", 5, 5000, &[(1, "paused")]));
    assert!(!done(&all, 5000));
    all.insert("b4".into(), st("b4", "blue", 5, 5000, &[]));
    assert!(done(&all, 5000));
    // a clean stop removes the status: no longer awaited
    all.insert("b2".into(), st("b2", "blue", 4, 1000, &[(1, "running")]));
    assert!(!done(&all, 5000));
    all.remove("b2");
    assert!(done(&all, 5000));
    // nothing live and nothing left from the start: nothing to wait for
    assert!(freeze_done_by_status(
        &awaited_by_status(&BTreeMap::new(), "a", "blue", &at_start, 5000),
        &[]
    ));
}

#[test]
fn the_machine_goes_through_the_phases_and_rolls_back_on_timeouts() {
    let mut h = Handoff::new();
    assert_eq!(h.on(Event::Written(3)).unwrap(), &Step::AwaitFreeze(3));
    assert!(h.on(Event::Written(4)).is_err());
    assert_eq!(h.on(Event::Acked).unwrap(), &Step::ReadOffsets);
    let o = BTreeMap::from([(tp(0), 9)]);
    assert_eq!(
        h.on(Event::Offsets(o.clone())).unwrap(),
        &Step::WriteTransfer(o.clone())
    );
    assert_eq!(h.on(Event::Written(4)).unwrap(), &Step::AwaitTransfer(4));
    let mut late = h.clone();
    assert_eq!(h.on(Event::Acked).unwrap(), &Step::Done);
    assert_eq!(
        late.on(Event::Failed("slow".into())).unwrap(),
        &Step::RollBack {
            reason: "slow".into(),
            after_transfer: true,
            frozen: o
        }
    );
    let mut early = Handoff::new();
    early.on(Event::Written(3)).unwrap();
    match early.on(Event::Failed("no ack".into())).unwrap() {
        Step::RollBack { after_transfer, .. } => assert!(!after_transfer),
        s => panic!("{s:?}"),
    }
}
