//! `group.protocol`: a listener configured with `consumer` is a member of a
//! KIP-848 consumer group as the broker sees it, one configured with
//! `classic` of a classic group (Kafka's own `kafka-consumer-groups` tool,
//! `ConsumerGroupCommand`, asked for the group's type and state).

use std::time::Duration;

use switchyard_runtime::Listener;

use super::common::*;

/// `kafka-consumer-groups --bootstrap-server B <args>`: its stdout (its
/// output is echoed to stderr, so a failing test shows it).
fn consumer_groups(args: &[&str]) -> String {
    let out = java_command()
        .arg("org.apache.kafka.tools.consumer.group.ConsumerGroupCommand")
        .args(["--bootstrap-server", &bootstrap()])
        .args(args)
        .output()
        .expect("run ConsumerGroupCommand");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    eprintln!(
        "[kafka-consumer-groups {}]\n{stdout}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "ConsumerGroupCommand failed");
    stdout
}

/// The row of `group` in a `kafka-consumer-groups` table, split on blanks.
fn row(table: &str, group: &str) -> Vec<String> {
    table
        .lines()
        .find(|l| l.split_whitespace().next() == Some(group))
        .unwrap_or_else(|| panic!("no row for {group} in:\n{table}"))
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

async fn the_broker_sees_the_group_protocol(protocol: GroupProtocol) {
    let b = bootstrap();
    let topic = new_topic(broker(), "gp", 2);
    let group = unique_name("gp-g");
    SeqProducer::new(&b).send(&topic, None, 20, |s| s.to_string());
    let (builder, seen) = collecting(
        Listener::builder("gp")
            .config(config_for(&group, protocol))
            .topics([topic.clone()]),
    );
    let listener = builder.start().unwrap();
    eventually("20 records", Duration::from_secs(30), || count(&seen) == 20).await;

    let (list, state) = tokio::task::spawn_blocking({
        let group = group.clone();
        move || {
            (
                consumer_groups(&["--list", "--type"]),
                consumer_groups(&["--describe", "--group", &group, "--state"]),
            )
        }
    })
    .await
    .unwrap();
    let kind = match protocol {
        GroupProtocol::Classic => "Classic",
        GroupProtocol::Consumer => "Consumer",
    };
    // `--list --type`: GROUP TYPE
    assert_eq!(row(&list, &group)[1], kind, "group type:\n{list}");
    // `--describe --state`: GROUP COORDINATOR (ID) ASSIGNMENT-STRATEGY STATE #MEMBERS
    let described = row(&state, &group);
    let n = described.len();
    assert_eq!(described[n - 2], "Stable", "{state}");
    assert_eq!(described[n - 1], "1", "one member: {state}");
    let assignor = match protocol {
        // the client-side assignor of the classic group
        GroupProtocol::Classic => "range",
        // the broker's default assignor: no `group.remote.assignor` was set
        GroupProtocol::Consumer => "uniform",
    };
    assert_eq!(described[n - 3], assignor, "{state}");

    // the deployment driver's membership count sees the member either way
    // (DescribeGroups alone does not describe a consumer-protocol group)
    let members = tokio::task::spawn_blocking({
        let (b, group) = (b.clone(), group.clone());
        move || switchyard_deploy::kafka::members(&b, &group).unwrap()
    })
    .await
    .unwrap();
    assert_eq!(members, 1);
    let report = listener.shutdown().await;
    assert!(report.closed);
}

/// `group.remote.assignor` reaches the broker: the consumer group runs the
/// assignor the listener asked for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_remote_assignor_is_the_groups_assignor_consumer() {
    let topic = new_topic(broker(), "gpra", 2);
    let group = unique_name("gpra-g");
    let (builder, _seen) = collecting(
        Listener::builder("gpra")
            .config(config_for(&group, GroupProtocol::Consumer).with_remote_assignor("range"))
            .topics([topic.clone()]),
    );
    let listener = builder.start().unwrap();
    let state = tokio::task::spawn_blocking({
        let group = group.clone();
        move || {
            let mut state = String::new();
            wait_until("the group is stable", Duration::from_secs(30), || {
                state = consumer_groups(&["--describe", "--group", &group, "--state"]);
                state.contains("Stable")
            });
            state
        }
    })
    .await
    .unwrap();
    let described = row(&state, &group);
    assert_eq!(described[described.len() - 3], "range", "{state}");
    listener.shutdown().await;
}

crate::protocol_tests!(async the_broker_sees_the_group_protocol:
    the_broker_sees_a_classic_group_classic,
    the_broker_sees_a_consumer_group_consumer);
