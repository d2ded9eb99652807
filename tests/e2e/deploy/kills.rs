//! Blue/green switches with one random instance killed with SIGKILL during
//! each switch, at a random phase: no record is lost (I2), and a record is
//! processed twice only if the killed instance was one of its processors
//! (I1's exception for the records in flight in a crashed instance). A kill
//! of the target slot after the transfer is where the start floors matter:
//! the partition lands on the other member of the target group, which must
//! start at the handoff offset, not at its group's older committed offset.

use std::time::Duration;

use super::*;

/// A cheap random number in 0..n.
fn random_below(n: usize) -> usize {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_usize(n);
    (h.finish() % n as u64) as usize
}

crate::protocol_tests!(twenty_switches_with_kills:
    twenty_switches_each_with_an_instance_killed_lose_nothing_classic,
    twenty_switches_each_with_an_instance_killed_lose_nothing_consumer);

fn twenty_switches_with_kills(protocol: GroupProtocol) {
    let mut d = Deployment::with_protocol("dpsig", protocol);
    // short sessions (3 s), so the group notices a killed member quickly
    let fast = fast_session_args(protocol);
    let (code, out) = d.deploy("init", &["--slot", "blue", "--topics", &d.topic.clone()]);
    assert_eq!(code, 0, "{out}");
    let tail = d.plane.tail();
    let mut running: Vec<(String, Child)> = Vec::new();
    for (name, slot) in [
        ("b0", "blue"),
        ("b1", "blue"),
        ("g0", "green"),
        ("g1", "green"),
    ] {
        let id = format!("dpsig-{slot}-{name}-0");
        running.push((slot.to_string(), d.probe_with(&id, slot, fast)));
    }
    d.wait_ready(&tail, &[("blue", 2), ("green", 2)]);
    let producer = SteadyProducer::start(&bootstrap(), &d.topic, PARTITIONS, 200);
    d.wait_progress(100);
    // the line of the switch's output at which the victim dies
    let phases = [
        "phase 1 freeze",
        "phase 2 done",
        "phase 4 transfer",
        "phase 5 ack",
    ];
    let mut killed = Vec::new();
    for i in 0..20 {
        let to = if i % 2 == 0 { "green" } else { "blue" };
        let victim = random_below(running.len());
        let phase = phases[random_below(phases.len())];
        let mut switch = Child::spawn(
            &format!("switch-{i}"),
            std::path::Path::new(env!("CARGO_BIN_EXE_switchyard")),
            &d.deploy_args("switch", &["--to", to]),
            &[],
        );
        // the switch may end before the phase shows (e.g. no phase 5 ack
        // left to print): the victim dies then anyway
        let _ = switch.wait_for_line(|l| l.starts_with(phase), Duration::from_secs(60));
        let (slot, mut child) = running.swap_remove(victim);
        eprintln!(
            "switch {i} to {to}: killing {} ({slot}) at `{phase}`",
            child.name()
        );
        child.kill();
        killed.push(Killed {
            instance: child.name().to_string(),
            committed: committed_offsets(&bootstrap(), &d.group_of(&slot), &d.topic),
        });
        let status = switch
            .wait_exit(Duration::from_secs(120))
            .expect("the switch ends");
        let out = switch.lines().join("\n");
        assert_eq!(status.code(), Some(0), "switch {i} to {to}: {out}");
        assert!(out.contains("summary: moved 4 partitions"), "{out}");
        assert!(all_owned_by(&d, to), "{:?}", d.owners());
        // the victim comes back (a new process, a new log)
        let id = format!("dpsig-{slot}-r{i}");
        running.push((slot.clone(), d.probe_with(&id, &slot, fast)));
        d.wait_ready(&tail, &[("blue", 2), ("green", 2)]);
        d.wait_progress(20);
    }
    d.check_invariants_with_kills(producer, &killed);
    tail.stop();
}

#[test]
fn an_interrupted_switch_is_recovered() {
    let mut d = Deployment::new("dprec");
    let (code, out) = d.deploy("init", &["--slot", "blue", "--topics", &d.topic.clone()]);
    assert_eq!(code, 0, "{out}");
    let tail = d.plane.tail();
    let _b1 = d.probe("dprec-blue-1", "blue");
    let _g1 = d.probe("dprec-green-1", "green");
    d.wait_ready(&tail, &[("blue", 1), ("green", 1)]);
    let producer = SteadyProducer::start(&bootstrap(), &d.topic, PARTITIONS, 200);
    d.wait_progress(100);
    let (code, out) = d.deploy("recover", &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("nothing to do"), "{out}");
    // the driver dies right after writing the freeze, its lease (3 s) left
    let mut switch = Child::spawn(
        "dprec-switch",
        std::path::Path::new(env!("CARGO_BIN_EXE_switchyard")),
        &d.deploy_args("switch", &["--to", "green", "--lease-ms", "3000"]),
        &[],
    );
    switch
        .wait_for_line(|l| l.starts_with("phase 1 freeze"), Duration::from_secs(60))
        .expect("freeze written");
    switch.kill();
    let (code, out) = d.deploy("switch", &["--to", "green"]);
    assert_eq!(code, 3, "a frozen partition refuses every move: {out}");
    // recover is refused until the dead driver's lease expired
    let mut out = String::new();
    wait_until("recover once the lease expired", WAIT, || {
        let (code, o) = d.deploy("recover", &[]);
        assert!(code == 0 || code == 3, "recover: {code}: {o}");
        out = o;
        code == 0
    });
    assert!(out.contains("back to blue"), "{out}");
    assert!(all_owned_by(&d, "blue"), "{:?}", d.owners());
    d.wait_progress(100);
    // and deployments work again
    let (code, out) = d.deploy("switch", &["--to", "green"]);
    assert_eq!(code, 0, "{out}");
    d.wait_progress(100);
    d.check_invariants(producer);
    tail.stop();
}
