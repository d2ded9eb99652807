//! Static membership (group.instance.id): a member restarted within
//! session.timeout.ms gets its partitions back and the other members see no
//! rebalance. This is also how rolling restarts avoid moving partitions.
//!
//! Under KIP-848's consumer protocol the restart must be clean: a static
//! member that closes leaves with epoch -2 and keeps its assignment for the
//! session timeout, while one that crashed still holds its instance id, and
//! a newcomer with that id is fenced (`UNRELEASED_INSTANCE_ID`, fatal) until
//! the broker's session timeout expires it. The group's session timeout is
//! set to 10 s for the test (a group config, `consumer.session.timeout.ms`).

use std::time::Duration;

use super::common::*;

#[test]
fn restarted_static_member_gets_its_partitions_back_without_a_rebalance() {
    static_restart(&["--strategy", "range"], Stop::Kill);
}

/// KIP-848: the member is stopped with SIGTERM (see the module docs).
#[test]
fn restarted_static_member_gets_its_partitions_back_without_a_rebalance_consumer() {
    static_restart(&protocol_args(GroupProtocol::Consumer), Stop::Terminate);
}

/// How the member is stopped before its restart.
#[derive(PartialEq)]
enum Stop {
    Kill,
    Terminate,
}

/// `kafka-configs --alter --entity-type groups`: `consumer.session.timeout.ms`
/// of `group` (a KIP-848 group config, settable before the group exists).
fn set_group_session_timeout(group: &str, ms: u32) {
    let out = java_command()
        .arg("kafka.admin.ConfigCommand")
        .args(["--bootstrap-server", &bootstrap()])
        .args(["--alter", "--entity-type", "groups", "--entity-name", group])
        .args(["--add-config", &format!("consumer.session.timeout.ms={ms}")])
        .output()
        .expect("run ConfigCommand");
    assert!(
        out.status.success(),
        "ConfigCommand: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A rolling restart: with static membership and
/// cooperative-sticky assignment, instances restart one by one without
/// moving partitions.
#[test]
fn rolling_restart_with_cooperative_sticky_moves_no_partition() {
    static_restart(&["--strategy", "cooperative-sticky"], Stop::Kill);
}

/// `assignment`: the probe flags that choose the protocol and assignor.
fn static_restart(assignment: &[&str], stop: Stop) {
    let b = bootstrap();
    let topic = new_topic(broker(), "static", 4);
    let group = unique_name("static-g");
    let classic = !assignment.contains(&"consumer");
    if !classic {
        set_group_session_timeout(&group, 10_000);
    }
    let log = log_path("static");
    let s1 = unique_name("s1");
    let s2 = unique_name("s2");
    let args = |id: &str| -> Vec<String> {
        let mut args = vec!["--instance-id", id];
        if classic {
            args.extend(["--session-timeout-ms", "10000", "--heartbeat-ms", "1000"]);
        }
        args.extend(assignment);
        args.iter().map(|s| s.to_string()).collect()
    };
    let a1: Vec<String> = args(&s1);
    let a2: Vec<String> = args(&s2);
    let mut m1 = probe("m1", &group, &topic, &log, &refs(&a1));
    let m2 = probe("m2", &group, &topic, &log, &refs(&a2));
    let assigned = |c: &Child| -> Vec<String> {
        c.lines()
            .into_iter()
            .filter(|l| l.starts_with("ASSIGNED") || l.starts_with("REVOKED"))
            .collect()
    };
    wait_until(
        "both members hold two partitions",
        Duration::from_secs(30),
        || held(&assigned(&m1)).len() == 2 && held(&assigned(&m2)).len() == 2,
    );
    let m1_partitions = held(&assigned(&m1));
    let m2_events = assigned(&m2).len();
    SeqProducer::new(&b).send(&topic, None, 200, |s| format!("k{s}"));
    wait_until("records processed", Duration::from_secs(30), || {
        ProcessedLog::read(&log).count(&topic) == 200
    });

    match stop {
        Stop::Kill => m1.kill(),
        Stop::Terminate => {
            m1.terminate();
            m1.wait_exit(Duration::from_secs(15))
                .expect("m1 exits on SIGTERM");
        }
    }
    let m1b = probe("m1b", &group, &topic, &log, &refs(&a1));
    m1b.wait_for_line(|l| l.starts_with("ASSIGNED"), Duration::from_secs(30))
        .expect("the restarted member is assigned");
    let back = held(&assigned(&m1b));
    assert_eq!(back, m1_partitions, "same partitions after the restart");
    SeqProducer::new(&b).send(&topic, None, 200, |s| format!("k{s}"));
    wait_until(
        "records processed after restart",
        Duration::from_secs(30),
        || ProcessedLog::read(&log).count(&topic) >= 400,
    );
    assert_eq!(
        assigned(&m2).len(),
        m2_events,
        "the other member saw no rebalance: {:?}",
        assigned(&m2)
    );
    let end = end_offsets(&b, &topic);
    ProcessedLog::read(&log)
        .check_no_gaps(&topic, &zeros(&end), &end)
        .unwrap();
}

/// KIP-848: a static member killed and started again at once finds its
/// `group.instance.id` still held by the dead member. librdkafka's consumer
/// gets a fatal error (`UNRELEASED_INSTANCE_ID`) and can never consume: the
/// instance stops with the error and a non-zero exit instead of running on
/// as a consumer that consumes nothing, so that its supervisor starts it
/// again; once the broker expired the dead member, that start works.
#[test]
fn a_static_member_whose_instance_id_is_still_held_stops_with_the_fatal_error_consumer() {
    let topic = new_topic(broker(), "static-fatal", 2);
    let group = unique_name("static-fatal-g");
    set_group_session_timeout(&group, 8_000);
    let log = log_path("static-fatal");
    let id = unique_name("sf");
    let mut args = vec!["--instance-id".to_string(), id.clone()];
    args.extend(
        protocol_args(GroupProtocol::Consumer)
            .iter()
            .map(|s| s.to_string()),
    );
    let mut first = probe("sf1", &group, &topic, &log, &refs(&args));
    first
        .wait_for_line(|l| l.starts_with("ASSIGNED"), Duration::from_secs(30))
        .expect("the first member is assigned");
    first.kill();
    let mut second = probe("sf2", &group, &topic, &log, &refs(&args));
    let status = second
        .wait_exit(Duration::from_secs(30))
        .expect("the member whose instance id is held stops by itself");
    assert!(!status.success(), "a fatal error is no success: {status:?}");
    let fatal = second
        .lines()
        .into_iter()
        .find(|l| l.starts_with("FATAL"))
        .expect("the fatal error is reported");
    assert!(fatal.contains("group.instance.id"), "{fatal}");
    // started again, as a supervisor does, until the broker expired the
    // dead member (its 8 s session): then it is assigned
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut starts = 0;
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "never assigned after {starts} starts"
        );
        starts += 1;
        let mut next = probe(
            &format!("sf{}", starts + 2),
            &group,
            &topic,
            &log,
            &refs(&args),
        );
        let line = next.wait_for_line(
            |l| l.starts_with("ASSIGNED") || l.starts_with("FATAL"),
            Duration::from_secs(30),
        );
        match line {
            Ok(l) if l.starts_with("ASSIGNED") => break,
            Ok(_) => {
                next.wait_exit(Duration::from_secs(10));
            }
            Err(e) => panic!("start {starts} neither assigned nor failed: {e}"),
        }
    }
}

fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// The partitions a member holds after its ASSIGNED/REVOKED lines (eager:
/// whole assignments; cooperative: increments).
fn held(lines: &[String]) -> std::collections::BTreeSet<String> {
    let mut held = std::collections::BTreeSet::new();
    for l in lines {
        let (verb, parts) = l.split_once(' ').unwrap_or((l, ""));
        let parts = parts
            .split(',')
            .filter(|p| !p.is_empty())
            .map(str::to_string);
        match verb {
            "ASSIGNED" => held.extend(parts),
            "REVOKED" => parts.for_each(|p| {
                held.remove(&p);
            }),
            _ => {}
        }
    }
    held
}
