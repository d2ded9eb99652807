//! One consumer instance (`switchyard_instance::Instance`, run by the probe
//! process) end to end: its start in a standby slot, Spring Cloud Stream's
//! `/actuator/bindings` on its admin API, and its stop on SIGTERM.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use switchyard_control::kafka_store::KafkaStore;
use switchyard_control::status::InstanceStatus;
use switchyard_control::status_topic::StatusTail;
use switchyard_control::Store;

use super::common::*;

const WAIT: Duration = Duration::from_secs(40);

/// A probe with the control plane of `plane` and `extra` flags.
fn instance(
    plane: &Plane,
    name: &str,
    group: &str,
    topic: &str,
    log: &Path,
    extra: &[&str],
) -> Child {
    let mut args = plane.probe_args();
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    probe(name, group, topic, log, &args)
}

/// The live status of instance `name`, if it reports.
fn status_of(tail: &StatusTail, name: &str) -> Option<InstanceStatus> {
    let now = switchyard_control::model::now_ms();
    tail.latest()
        .remove(name)
        .filter(|s| now - s.timestamp_ms < 5_000)
}

fn count(log: &Path, topic: &str) -> usize {
    ProcessedLog::read(log).count(topic)
}

/// The admin API's address a probe announced, made reachable: a probe bound
/// to `0.0.0.0` is asked on loopback.
fn http_addr(c: &Child) -> String {
    let line = c.wait_for_line(|l| l.starts_with("HTTP "), WAIT).unwrap();
    line[5..].replace("0.0.0.0", "127.0.0.1")
}

#[test]
fn an_instance_started_in_a_standby_slot_processes_nothing_until_its_slot_owns_the_partitions() {
    let b = bootstrap();
    let plane = Plane::new("ins");
    let topic = new_topic(broker(), "ins", 2);
    let group = unique_name("ins-g");
    let log = log_path("ins-green");
    SeqProducer::new(&b).send(&topic, None, 20, |s| s.to_string());
    let store = KafkaStore::new(b.as_str(), &plane.control).unwrap();
    let own = |slot: &'static str| {
        let topic = topic.clone();
        move |s: &mut switchyard_control::DesiredState| {
            let owners = s.owners.entry("probe".into()).or_default();
            for p in 0..2 {
                owners.insert(format!("{topic}-{p}"), slot.to_string());
            }
            Ok::<(), switchyard_control::ControlError>(())
        }
    };
    store
        .write(&plane.app, None, Some("test"), &own("blue"))
        .unwrap();

    let green = instance(
        &plane,
        "ins-green",
        &group,
        &topic,
        &log,
        &["--slot", "green"],
    );
    let tail = plane.tail();
    wait_until("green assigned both partitions, held paused", WAIT, || {
        status_of(&tail, "ins-green").is_some_and(|s| {
            s.partitions().count() == 2 && s.partitions().all(|p| p.state == "paused")
        })
    });
    // time passes by the instance's own clock: five more heartbeats
    let since = status_of(&tail, "ins-green").unwrap().timestamp_ms;
    wait_until("five more heartbeats of green", WAIT, || {
        status_of(&tail, "ins-green").is_some_and(|s| s.timestamp_ms >= since + 5 * 200)
    });
    assert_eq!(count(&log, &topic), 0, "a standby processed records");
    assert!(
        committed_offsets(&b, &group, &topic)
            .values()
            .all(|o| *o <= 0),
        "a standby committed offsets"
    );
    assert!(
        green.lines().iter().any(|l| l.starts_with("ASSIGNED")),
        "green is in the group: {:?}",
        green.lines()
    );

    store
        .write(&plane.app, None, Some("test"), &own("green"))
        .unwrap();
    wait_until(
        "green processes every record once it owns them",
        WAIT,
        || count(&log, &topic) == 20,
    );
    let end = end_offsets(&b, &topic);
    ProcessedLog::read(&log)
        .check_no_gaps(&topic, &zeros(&end), &end)
        .unwrap();
}

#[test]
fn actuator_bindings_answer_in_springs_shapes_and_pause_and_resume_this_instance_only() {
    let b = bootstrap();
    let plane = Plane::new("act");
    let topic = new_topic(broker(), "act", 2);
    let group = unique_name("act-g");
    let logs: Vec<PathBuf> = ["act-a", "act-b"].iter().map(|n| log_path(n)).collect();
    let mut producer = SeqProducer::new(&b);
    for p in 0..2 {
        producer.send(&topic, Some(p), 5, |s| s.to_string());
    }
    let token = "s3cret";
    let a = instance(
        &plane,
        "act-a",
        &group,
        &topic,
        &logs[0],
        &["--http", "127.0.0.1:0", "--token", token],
    );
    // the other instance binds every interface
    let bb = instance(
        &plane,
        "act-b",
        &group,
        &topic,
        &logs[1],
        &["--http", "0.0.0.0:0"],
    );
    let (addr_a, addr_b) = (http_addr(&a), http_addr(&bb));
    let tail = plane.tail();
    let partition_of = |name: &str| -> Option<i32> {
        let s = status_of(&tail, name)?;
        let parts: Vec<i32> = s.partitions().map(|p| p.partition).collect();
        (parts.len() == 1).then(|| parts[0])
    };
    let (pa, pb) = wait_for("one partition each", WAIT, || {
        Some((partition_of("act-a")?, partition_of("act-b")?))
    });
    wait_until("10 processed", WAIT, || {
        count(&logs[0], &topic) + count(&logs[1], &topic) == 10
    });

    let (code, list) = http(&addr_a, "GET", "/actuator/bindings", None, "");
    assert_eq!(code, 200, "{list}");
    let want = serde_json::json!([{
        "bindingName": "probe",
        "name": topic,
        "group": group,
        "pausable": true,
        "state": "running",
        "input": true,
    }]);
    assert_eq!(list, want, "Spring's keys and nothing else");

    let stop = r#"{"state":"STOPPED"}"#;
    let (code, v) = http(&addr_a, "POST", "/actuator/bindings/probe", None, stop);
    assert_eq!(
        (code, v["error"].as_str()),
        (401, Some("missing bearer token"))
    );
    let (code, v) = http(
        &addr_a,
        "POST",
        "/actuator/bindings/probe",
        Some(token),
        stop,
    );
    assert_eq!(code, 200, "{v}");
    assert_eq!(
        (v["bindingName"].as_str(), v["state"].as_str()),
        (Some("probe"), Some("paused"))
    );
    let (_, v) = http(&addr_a, "GET", "/actuator/bindings/probe", None, "");
    assert_eq!(v["state"], "paused");
    let (_, v) = http(&addr_b, "GET", "/actuator/bindings/probe", None, "");
    assert_eq!(v["state"], "running", "the other instance is not paused");

    // a bad state or an unknown binding changes nothing
    for (path, body, want) in [
        ("/actuator/bindings/probe", r#"{"state":"FROZEN"}"#, 422),
        (
            "/actuator/bindings/probe",
            r#"{"state":"STARTED","partition":1}"#,
            422,
        ),
        ("/actuator/bindings/probe", "{not json", 400),
        ("/actuator/bindings/nope", r#"{"state":"STARTED"}"#, 404),
    ] {
        let (code, v) = http(&addr_a, "POST", path, Some(token), body);
        assert_eq!(code, want, "{path} {body}: {v}");
        assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()), "{v}");
    }
    assert_eq!(
        http(&addr_a, "GET", "/actuator/bindings/nope", None, "").0,
        404
    );
    let (_, v) = http(&addr_a, "GET", "/actuator/bindings/probe", None, "");
    assert_eq!(v["state"], "paused", "still paused after the refusals");

    let (a0, b0) = (count(&logs[0], &topic), count(&logs[1], &topic));
    for p in 0..2 {
        producer.send(&topic, Some(p), 5, |s| s.to_string());
    }
    wait_until("b processes the new records of its partition", WAIT, || {
        count(&logs[1], &topic) == b0 + 5
    });
    // a's partition stayed with a (no rebalance) and nothing more of it ran
    assert_eq!(partition_of("act-a"), Some(pa));
    assert_eq!(partition_of("act-b"), Some(pb));
    assert_eq!(count(&logs[0], &topic), a0, "a processed while stopped");
    let (_, v) = http(&addr_a, "GET", "/bindings/probe", None, "");
    assert_eq!(
        v["applied_version"], 0,
        "nothing written to the desired state"
    );

    let (code, v) = http(
        &addr_a,
        "POST",
        "/actuator/bindings/probe",
        Some(token),
        r#"{"state":"STARTED"}"#,
    );
    assert_eq!((code, v["state"].as_str()), (200, Some("running")), "{v}");
    wait_until("a continues at its committed offset", WAIT, || {
        count(&logs[0], &topic) == a0 + 5
    });
    let end = end_offsets(&b, &topic);
    ProcessedLog::read_all(&logs)
        .check_no_gaps(&topic, &zeros(&end), &end)
        .unwrap();
    assert!(ProcessedLog::read_all(&logs).duplicates(&topic).is_empty());
}

#[test]
fn sigterm_finishes_in_flight_records_commits_and_leaves_the_group_within_the_deadline() {
    let b = bootstrap();
    let plane = Plane::new("inst");
    let topic = new_topic(broker(), "inst", 4);
    let group = unique_name("inst-g");
    let log = log_path("inst");
    SeqProducer::new(&b).send(&topic, None, 200, |s| s.to_string());
    let deadline = Duration::from_secs(8);
    let deadline_ms = deadline.as_millis().to_string();
    // a long session: an empty group soon after the exit proves it left
    let mut c = instance(
        &plane,
        "inst-a",
        &group,
        &topic,
        &log,
        &[
            "--workers",
            "4",
            "--delay-ms",
            "800",
            "--session-timeout-ms",
            "30000",
            "--shutdown-timeout-ms",
            &deadline_ms,
        ],
    );
    let tail = plane.tail();
    wait_until("a few processed", WAIT, || count(&log, &topic) >= 4);
    wait_until("the instance reports", WAIT, || {
        status_of(&tail, "inst-a").is_some()
    });
    let at_signal = count(&log, &topic);
    let t0 = Instant::now();
    c.terminate();
    let status = c.wait_exit(WAIT).expect("the instance exits");
    let took = t0.elapsed();
    let lines = c.lines();
    assert!(status.success(), "{status:?}: {lines:?}");
    assert!(
        took < deadline,
        "exited after {took:?}, deadline {deadline:?}"
    );
    let report: Value = serde_json::from_str(
        lines
            .iter()
            .find_map(|l| l.strip_prefix("SHUTDOWN "))
            .unwrap_or_else(|| panic!("no shutdown report: {lines:?}")),
    )
    .unwrap();
    assert_eq!(report["closed"], true, "{report}");
    assert_eq!(report["abandoned_in_flight"], 0, "{report}");
    let processed = ProcessedLog::read(&log);
    assert!(
        processed.count(&topic) > at_signal,
        "the records in flight at the signal finished: {at_signal} before, {} after",
        processed.count(&topic)
    );
    // everything processed is committed, nothing beyond
    let mut next: BTreeMap<i32, i64> = (0..4).map(|p| (p, 0)).collect();
    for e in processed.entries.iter().filter(|e| e.topic == topic) {
        let n = next.get_mut(&e.partition).unwrap();
        *n = (*n).max(e.offset + 1);
    }
    let committed = committed_offsets(&b, &group, &topic);
    let committed: BTreeMap<i32, i64> = (0..4)
        .map(|p| (p, committed.get(&p).copied().unwrap_or(0).max(0)))
        .collect();
    assert_eq!(committed, next, "committed = processed");
    processed
        .check_no_gaps(&topic, &zeros(&next), &next)
        .unwrap();
    wait_until(
        "the group is empty (left, not timed out)",
        Duration::from_secs(5),
        || group_members(&b, &group).0 == 0,
    );
    wait_until("the status is removed", Duration::from_secs(10), || {
        !tail.latest().contains_key("inst-a")
    });
}
