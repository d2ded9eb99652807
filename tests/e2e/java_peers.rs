//! Peers from the Java ecosystem: Apache Kafka's own `KafkaConsumer` in one
//! cooperative-sticky group with Switchyard listeners while members come and
//! go, and Kafka's `kafka-consumer-groups` tool (`ConsumerGroupCommand`),
//! whose `--describe` and `--reset-offsets` must agree with `switchyard lag`
//! and `switchyard offsets reset`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use super::common::*;

/// The Java consumer of `tests/peers/JavaPeerConsumer.java` as a child process in `group`.
fn java_peer(name: &str, group: &str, topic: &str, log: &Path) -> Child {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/JavaPeerConsumer.java");
    let mut command = java_command();
    command
        .arg(source)
        .args([&bootstrap(), group, topic])
        .arg(log)
        .arg(name);
    let child = Child::spawn_command(name, command);
    child
        .wait_for_line(|l| l == "STARTED", Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{name} did not start: {e}"));
    child
}

/// Run `kafka-consumer-groups` (ConsumerGroupCommand) with `args`; its stdout.
fn consumer_groups(args: &[&str]) -> String {
    let out = java_command()
        .arg("org.apache.kafka.tools.consumer.group.ConsumerGroupCommand")
        .args(["--bootstrap-server", &bootstrap()])
        .args(args)
        .output()
        .expect("run kafka-consumer-groups");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "kafka-consumer-groups {args:?}: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// One row of `kafka-consumer-groups --describe`, or of `switchyard lag --json`, for comparison.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Row {
    pub committed: Option<i64>,
    pub log_end: i64,
    pub lag: Option<i64>,
    pub member: Option<String>,
    pub host: Option<String>,
    pub client: Option<String>,
}

/// The rows of `kafka-consumer-groups --describe --group G` for `topic`, by partition.
pub(super) fn describe(group: &str, topic: &str) -> BTreeMap<i32, Row> {
    let text = consumer_groups(&["--describe", "--group", group]);
    let dash = |s: &str| (s != "-").then(|| s.to_string());
    text.lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .filter(|cols| cols.len() >= 9 && cols[0] == group && cols[1] == topic)
        .map(|cols| {
            let row = Row {
                committed: cols[3].parse().ok(),
                log_end: cols[4].parse().expect("LOG-END-OFFSET"),
                lag: cols[5].parse().ok(),
                member: dash(cols[6]),
                host: dash(cols[7]).map(|h| h.trim_start_matches('/').to_string()),
                client: dash(cols[8]),
            };
            (cols[2].parse().expect("PARTITION"), row)
        })
        .collect()
}

/// The rows of `switchyard lag --json --group G` for `topic`, by partition.
pub(super) fn switchyard_lag(group: &str, topic: &str) -> BTreeMap<i32, Row> {
    let (code, out) = switchyard(&[
        "lag".into(),
        "--bootstrap".into(),
        bootstrap(),
        "--group".into(),
        group.into(),
        "--time-lag".into(),
        "off".into(),
        "--json".into(),
    ]);
    assert_eq!(code, 0, "{out}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    let text = |v: &serde_json::Value| v.as_str().map(str::to_string);
    json["groups"][0]["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["topic"] == topic)
        .map(|p| {
            let owner = &p["owner"];
            let row = Row {
                committed: p["committed"].as_i64(),
                log_end: p["log_end"].as_i64().unwrap(),
                lag: p["lag"].as_i64(),
                member: text(&owner["member_id"]),
                host: text(&owner["host"]).map(|h| h.trim_start_matches('/').to_string()),
                client: text(&owner["client_id"]),
            };
            (p["partition"].as_i64().unwrap() as i32, row)
        })
        .collect()
}

/// Java consumers and Switchyard listeners in one cooperative-sticky group,
/// members joining, leaving and one Switchyard member killed while records
/// flow: every record is processed, and a record is processed twice only if
/// the killed member had processed it without committing it.
#[test]
fn a_java_consumer_and_switchyard_listeners_share_a_cooperative_group() {
    let b = bootstrap();
    let topic = new_topic(broker(), "java-mixed", 4);
    let group = unique_name("java-mixed-g");
    let log = log_path("java-mixed");
    let producer = SteadyProducer::start(&b, &topic, 4, 300);
    let args = ["--strategy", "cooperative-sticky", "--commit", "sync"];
    let grows = |n: usize| {
        let before = ProcessedLog::read(&log).count(&topic);
        wait_until("records keep flowing", Duration::from_secs(60), || {
            ProcessedLog::read(&log).count(&topic) >= before + n
        });
    };
    // a member that joins has processed records of its own before the next
    // change (it may be assigned nothing until a later rebalance)
    let works = |name: &str| {
        wait_until(
            &format!("{name} processes records"),
            Duration::from_secs(60),
            || {
                ProcessedLog::read(&log)
                    .entries
                    .iter()
                    .filter(|e| e.instance == name)
                    .count()
                    >= 50
            },
        );
    };
    let mut s1 = probe("s1", &group, &topic, &log, &args);
    grows(200);
    let mut j1 = java_peer("j1", &group, &topic, &log);
    works("j1");
    grows(300);
    let s2 = probe("s2", &group, &topic, &log, &args);
    works("s2");
    grows(300);
    j1.terminate(); // leaves the group after committing
    assert!(j1.wait_exit(Duration::from_secs(90)).is_some(), "j1 exits");
    grows(300);
    let j2 = java_peer("j2", &group, &topic, &log);
    works("j2");
    grows(300);
    s1.kill(); // SIGKILL with records processed but not yet committed
    let committed_at_kill = committed_offsets(&b, &group, &topic);
    grows(300);
    producer.stop();
    let end = end_offsets(&b, &topic);
    wait_until("every offset processed", Duration::from_secs(90), || {
        ProcessedLog::read(&log)
            .check_no_gaps(&topic, &zeros(&end), &end)
            .is_ok()
    });
    drop((s2, j2));
    let all = ProcessedLog::read(&log);
    all.check_no_gaps(&topic, &zeros(&end), &end).unwrap();
    let by: std::collections::BTreeSet<&str> =
        all.entries.iter().map(|e| e.instance.as_str()).collect();
    assert!(
        ["j1", "j2", "s1", "s2"].iter().all(|n| by.contains(n)),
        "every member processed records: {by:?}"
    );
    all.check_duplicates_only_from(&topic, "s1", &committed_at_kill)
        .unwrap();
}

/// `kafka-consumer-groups --describe` and `switchyard lag` read the same
/// committed offsets, log ends, lag and owners (member, host, client id),
/// partition by partition, for a group with an active Switchyard member.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_consumer_groups_describe_agrees_with_switchyard_lag() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use switchyard_runtime::deserializer::Utf8;
    use switchyard_runtime::record::Record;
    use switchyard_runtime::Listener;

    let b = bootstrap();
    let topic = new_topic(broker(), "java-describe", 3);
    let group = unique_name("java-describe-g");
    let mut producer = SeqProducer::new(&b);
    for (p, n) in [(0, 12), (1, 7), (2, 1)] {
        producer.send(&topic, Some(p), n, |s| s.to_string());
    }
    // Partition 2 is held after its first record: its lag stays 4.
    let handled = Arc::new(AtomicUsize::new(0));
    let h = handled.clone();
    let listener = Listener::builder("describe")
        .config(config(&group).with_client_id("describe-client"))
        .topics([topic.clone()])
        .workers(3)
        .handler(Utf8, Utf8, move |r: Record<String, String>| {
            let h = h.clone();
            async move {
                if r.partition == 2 && r.offset >= 1 {
                    std::future::pending::<()>().await;
                }
                h.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
        })
        .start()
        .unwrap();
    eventually("19 + 1 records handled", Duration::from_secs(30), || {
        handled.load(Ordering::SeqCst) == 20
    })
    .await;
    eventually("commits of 12, 7 and 1", Duration::from_secs(20), || {
        committed_offsets(&b, &group, &topic) == BTreeMap::from([(0, 12), (1, 7), (2, 1)])
    })
    .await;
    producer.send(&topic, Some(2), 4, |s| s.to_string());
    let (kafka, ours) =
        tokio::task::block_in_place(|| (describe(&group, &topic), switchyard_lag(&group, &topic)));
    assert_eq!(kafka.len(), 3, "{kafka:?}");
    assert_eq!(kafka, ours, "kafka-consumer-groups vs switchyard lag");
    assert_eq!(kafka[&2].lag, Some(4));
    assert_eq!(kafka[&0].client.as_deref(), Some("describe-client"));
    assert!(kafka.values().all(|r| r.member.is_some()), "{kafka:?}");
    listener.shutdown_within(Duration::from_secs(2)).await;
}

/// The same reset requests given to `kafka-consumer-groups --reset-offsets
/// --execute` and to `switchyard offsets reset --execute` leave the same
/// committed offsets; without `--execute` neither changes anything.
#[test]
fn kafka_consumer_groups_and_switchyard_reset_offsets_alike() {
    let b = bootstrap();
    let topic = new_topic(broker(), "java-reset", 3);
    let mut producer = SeqProducer::new(&b);
    for p in 0..3 {
        producer.send(&topic, Some(p), 10, |s| s.to_string());
    }
    let (theirs, ours) = (unique_name("java-reset-k"), unique_name("java-reset-s"));
    let start = [(0, 6), (1, 2), (2, 9)];
    let commit_start = |group: &str| {
        let c: rdkafka::consumer::BaseConsumer =
            client_config(&b).set("group.id", group).create().unwrap();
        let mut tpl = rdkafka::TopicPartitionList::new();
        for (p, o) in start {
            tpl.add_partition_offset(&topic, p, rdkafka::Offset::Offset(o))
                .unwrap();
        }
        rdkafka::consumer::Consumer::commit(&c, &tpl, rdkafka::consumer::CommitMode::Sync).unwrap();
    };
    let requests: [&[&str]; 5] = [
        &["--shift-by", "-3"],
        &["--shift-by", "5"],
        &["--to-offset", "4"],
        &["--to-earliest"],
        &["--to-latest"],
    ];
    for request in requests {
        commit_start(&theirs);
        commit_start(&ours);
        let mut kafka_args = vec!["--reset-offsets", "--group", &theirs, "--topic", &topic];
        kafka_args.extend_from_slice(request);
        // a dry run first: nothing changes
        consumer_groups(&kafka_args);
        let mut sy = vec![
            "offsets".to_string(),
            "reset".into(),
            "--bootstrap".into(),
            b.clone(),
            "--group".into(),
            ours.clone(),
            "--topic".into(),
            topic.clone(),
        ];
        sy.extend(request.iter().map(|s| s.to_string()));
        assert_eq!(switchyard(&sy).0, 0);
        let unchanged = BTreeMap::from(start);
        assert_eq!(committed_offsets(&b, &theirs, &topic), unchanged);
        assert_eq!(
            committed_offsets(&b, &ours, &topic),
            unchanged,
            "{request:?}"
        );
        // then for real
        kafka_args.push("--execute");
        consumer_groups(&kafka_args);
        sy.push("--execute".into());
        assert_eq!(switchyard(&sy).0, 0);
        assert_eq!(
            committed_offsets(&b, &ours, &topic),
            committed_offsets(&b, &theirs, &topic),
            "{request:?}"
        );
    }
    assert_eq!(
        committed_offsets(&b, &ours, &topic),
        BTreeMap::from([(0, 10), (1, 10), (2, 10)])
    );
}
