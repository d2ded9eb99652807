//! A KIP-848 consumer group (`group.protocol=consumer`) is seen by everything
//! that describes groups, as a classic group is. DescribeGroups alone shows
//! such a group as Dead with no members; these tests run `switchyard-probe`
//! processes with `--group-protocol consumer` and check that
//! `switchyard lag` shows the group's members and the member that owns each
//! partition (the same rows as Kafka's `kafka-consumer-groups --describe`),
//! that `switchyard offsets reset --execute` refuses while the group has
//! members and resets once it is empty, and that the testkit's
//! `group_members` counts the members.

use std::time::Duration;

use serde_json::Value;
use switchyard_admin::group::{describe_group, GroupState, GroupType};

use super::common::*;
use super::java_peers::{describe, switchyard_lag};

const WAIT: Duration = Duration::from_secs(60);

/// Probe flags of a consumer-protocol member.
fn consumer_protocol() -> Vec<&'static str> {
    let mut args = protocol_args(GroupProtocol::Consumer).to_vec();
    args.extend_from_slice(fast_session_args(GroupProtocol::Consumer));
    args
}

/// Stop `probe` and wait for it to exit.
fn stop(mut probe: Child) {
    probe.terminate();
    assert!(
        probe.wait_exit(Duration::from_secs(30)).is_some(),
        "{} exits",
        probe.name()
    );
}

/// Run the `switchyard` binary: exit code, stdout and stderr.
fn switchyard_all(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(args)
        .output()
        .expect("run switchyard");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    eprintln!("[switchyard {}] {stdout}{stderr}", args.join(" "));
    (out.status.code().unwrap_or(-1), stdout, stderr)
}

/// `switchyard lag --json` of `group`: the group's document.
fn lag_json(group: &str) -> Value {
    let (code, out, _) = switchyard_all(&[
        "lag",
        "--bootstrap",
        &bootstrap(),
        "--group",
        group,
        "--time-lag",
        "off",
        "--json",
    ]);
    assert_eq!(code, 0, "{out}");
    let json: Value = serde_json::from_str(&out).expect("lag --json");
    json["groups"][0].clone()
}

#[test]
fn group_members_counts_the_members_of_a_consumer_protocol_group() {
    let b = bootstrap();
    let topic = new_topic(broker(), "cg-members", 4);
    let group = unique_name("cg-members-g");
    let log = log_path("cg-members");
    SeqProducer::new(&b).send(&topic, None, 20, |s| s.to_string());
    let args = consumer_protocol();
    let p1 = probe("cgm1", &group, &topic, &log, &args);
    let p2 = probe("cgm2", &group, &topic, &log, &args);
    let mut last = (0, String::new());
    wait_until("group_members sees two stable members", WAIT, || {
        last = group_members(&b, &group);
        last == (2, "Stable".to_string())
    });

    // The description behind it: the group's type, and each member with the
    // partitions it holds (four partitions, each held once).
    let admin: rdkafka::consumer::BaseConsumer = client_config(&b).create().unwrap();
    let mut held = Vec::new();
    wait_until("the members hold every partition", WAIT, || {
        let d = describe_group(&admin, &group, Duration::from_secs(10)).unwrap();
        assert_eq!(d.group_type, GroupType::Consumer, "{d:?}");
        assert!(d.coordinator.is_some(), "{d:?}");
        held = d
            .members
            .iter()
            .flat_map(|m| m.assignment.iter().cloned())
            .collect();
        held.sort();
        d.members.len() == 2
            && d.state == GroupState::Stable
            && d.members.iter().all(|m| !m.assignment.is_empty())
            && held == (0..4).map(|p| (topic.clone(), p)).collect::<Vec<_>>()
    });

    stop(p1);
    wait_until("group_members sees one member", WAIT, || {
        group_members(&b, &group).0 == 1
    });
    stop(p2);
    wait_until("group_members sees the group empty", WAIT, || {
        group_members(&b, &group) == (0, "Empty".to_string())
    });
}

/// `switchyard lag --json` of a consumer-protocol group: two members, every
/// partition owned by one of them, and the same committed offsets, log ends,
/// lag and owners (member id, host, client id) as `kafka-consumer-groups
/// --describe` shows, partition by partition.
#[test]
fn lag_shows_the_members_and_partition_owners_of_a_consumer_protocol_group() {
    let b = bootstrap();
    let topic = new_topic(broker(), "cg-lag", 4);
    let group = unique_name("cg-lag-g");
    let log = log_path("cg-lag");
    SeqProducer::new(&b).send(&topic, None, 40, |s| s.to_string());
    let args = consumer_protocol();
    let p1 = probe("cgl1", &group, &topic, &log, &args);
    let p2 = probe("cgl2", &group, &topic, &log, &args);
    let end = end_offsets(&b, &topic);
    wait_until("every record committed", WAIT, || {
        committed_offsets(&b, &group, &topic) == end
    });
    // Kafka's own tool sees the two members owning the four partitions.
    let mut kafka = Default::default();
    wait_until(
        "kafka-consumer-groups shows two members owning every partition",
        WAIT,
        || {
            kafka = describe(&group, &topic);
            let members: std::collections::BTreeSet<_> =
                kafka.values().filter_map(|r| r.member.clone()).collect();
            kafka.len() == 4 && kafka.values().all(|r| r.member.is_some()) && members.len() == 2
        },
    );

    let mut g = Value::Null;
    wait_until(
        "switchyard lag shows two members owning every partition",
        WAIT,
        || {
            g = lag_json(&group);
            let ids: Vec<&str> = g["member_list"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|m| m["member_id"].as_str())
                .collect();
            let owners: Vec<Option<&str>> = g["partitions"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["topic"] == topic.as_str())
                .map(|p| p["owner"]["member_id"].as_str())
                .collect();
            g["members"] == 2
                && ids.len() == 2
                && owners.len() == 4
                && owners.iter().all(|o| o.is_some_and(|o| ids.contains(&o)))
                && ids.iter().all(|id| owners.contains(&Some(id)))
        },
    );
    assert_eq!(g["state"], "Stable", "{g:#}");

    let mut ours = Default::default();
    wait_until(
        "kafka-consumer-groups --describe and switchyard lag agree",
        WAIT,
        || {
            kafka = describe(&group, &topic);
            ours = switchyard_lag(&group, &topic);
            kafka == ours
        },
    );
    assert_eq!(kafka.len(), 4, "{kafka:?}");
    assert!(kafka.values().all(|r| r.lag == Some(0)), "{kafka:?}");

    // `--all`, and more than four named groups (described from one listing
    // of all groups, then DescribeConsumerGroups for the rest), show the
    // group with its members and owners too.
    let others: Vec<String> = (0..4)
        .map(|i| unique_name(&format!("cg-none{i}")))
        .collect();
    let mut many = vec!["lag", "--bootstrap", &b, "--json", "--time-lag", "off"];
    many.extend(["--group", group.as_str()]);
    for o in &others {
        many.extend(["--group", o.as_str()]);
    }
    let all_args = [
        "lag",
        "--bootstrap",
        &b,
        "--all",
        "--json",
        "--time-lag",
        "off",
    ];
    for args in [&all_args[..], &many[..]] {
        let (code, out, _) = switchyard_all(args);
        assert_eq!(code, 0, "{out}");
        let all: Value = serde_json::from_str(&out).unwrap();
        let mine = all["groups"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["group"] == group.as_str())
            .unwrap_or_else(|| panic!("the group listed by {args:?}"));
        assert_eq!(mine["members"], 2, "{args:?}: {mine:#}");
        assert!(
            mine["partitions"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|p| p["topic"] == topic.as_str())
                .all(|p| p["owner"]["member_id"].is_string()),
            "{args:?}: {mine:#}"
        );
    }
    stop(p1);
    stop(p2);
}

/// `switchyard offsets reset --execute` refuses (exit 3, naming the active
/// member) while a consumer-protocol group has a member, and resets once the
/// group is empty.
#[test]
fn offsets_reset_refuses_while_a_consumer_protocol_group_has_members() {
    let b = bootstrap();
    let topic = new_topic(broker(), "cg-reset", 2);
    let group = unique_name("cg-reset-g");
    let log = log_path("cg-reset");
    SeqProducer::new(&b).send(&topic, None, 20, |s| s.to_string());
    let p = probe("cgr1", &group, &topic, &log, &consumer_protocol());
    let end = end_offsets(&b, &topic);
    wait_until("every record committed", WAIT, || {
        committed_offsets(&b, &group, &topic) == end
    });
    let reset = [
        "offsets",
        "reset",
        "--bootstrap",
        &b,
        "--group",
        &group,
        "--topic",
        &topic,
        "--to-earliest",
        "--execute",
    ];
    let (code, out, err) = switchyard_all(&reset);
    assert_eq!(code, 3, "refused while the group has a member: {out}{err}");
    assert!(
        err.contains(&format!("group `{group}` has 1 active member(s)")),
        "{err}"
    );
    assert_eq!(
        committed_offsets(&b, &group, &topic),
        end,
        "nothing reset while refused"
    );

    stop(p);
    wait_until("the group is empty", WAIT, || {
        group_members(&b, &group).0 == 0
    });
    let (code, out, err) = switchyard_all(&reset);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        committed_offsets(&b, &group, &topic)
            .values()
            .all(|o| *o == 0),
        "{out}"
    );
}
