//! A blue/green deployment over SASL_SSL only: `deploy init`, two
//! instances (one per slot, separate groups) and `deploy switch` then
//! `deploy rollback`, every client configured by `--command-config` and
//! `-X`; every record processed exactly once (I1, I2) and nothing printed
//! holds a secret.

use std::path::Path;
use std::time::Duration;

use switchyard_control::status_topic::StatusTail;
use switchyard_testkit::{wait::wait_until, Child, ProcessedLog};

use super::*;

const PARTITIONS: i32 = 2;

/// A probe of `slot` in group `<group>-<slot>` over SASL_SSL, once started.
fn instance(
    flags: &[String],
    plane: &[String],
    group: &str,
    topic: &str,
    slot: &str,
    log: &Path,
) -> Child {
    let mut args: Vec<String> = flags.to_vec();
    args.extend(plane.iter().cloned());
    args.extend(
        [
            "--group",
            group,
            "--topics",
            topic,
            "--log",
            &log.display().to_string(),
            "--instance",
            slot,
            "--slot",
            slot,
            "--group-per-slot",
            "--status-interval-ms",
            "200",
        ]
        .map(str::to_string),
    );
    let child = Child::spawn(
        slot,
        Path::new(env!("CARGO_BIN_EXE_switchyard-probe")),
        &args,
        &[("SWITCHYARD_LOG".into(), "info".into())],
    );
    child
        .wait_for_line(|l| l == "STARTED", Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{slot} did not start: {e}"));
    child
}

fn produce_n(topic: &str, from: usize, n: usize) {
    let values: Vec<String> = (from..from + n).map(|i| i.to_string()).collect();
    let p: BaseProducer = admin().client_config().create().unwrap();
    for (i, v) in values.iter().enumerate() {
        p.send(
            BaseRecord::to(topic)
                .partition((i % PARTITIONS as usize) as i32)
                .key(v)
                .payload(v),
        )
        .unwrap();
    }
    p.flush(Duration::from_secs(30)).unwrap();
}

#[test]
fn a_blue_green_switch_and_rollback_over_sasl_ssl() {
    let dir = std::env::temp_dir().join(unique_name("sy-deploy-sec"));
    let flags = connection_flags(&dir);
    let (app, control, status) = (
        unique_name("sec-dep-app"),
        unique_name("sec-dep-ctl"),
        unique_name("sec-dep-st"),
    );
    let plane: Vec<String> = [
        "--app",
        &app,
        "--control-topic",
        &control,
        "--status-topic",
        &status,
    ]
    .map(str::to_string)
    .to_vec();
    let topic = unique_name("sec-dep-t");
    create_topic(&admin(), &topic, PARTITIONS);
    let group = unique_name("sec-dep-g");
    let deploy = |verb: &str, extra: &[&str]| {
        let mut args = vec!["deploy".to_string(), verb.to_string()];
        args.extend(flags.iter().cloned());
        args.extend(plane.iter().cloned());
        args.extend(["--group".to_string(), group.clone()]);
        args.extend(extra.iter().map(|s| s.to_string()));
        cli(&args)
    };
    let (code, out) = deploy(
        "init",
        &["--listener", "probe", "--slot", "blue", "--topics", &topic],
    );
    assert_eq!(code, 0, "{out}");

    let logs = [
        std::env::temp_dir().join(format!("{}.log", unique_name("sec-dep-blue"))),
        std::env::temp_dir().join(format!("{}.log", unique_name("sec-dep-green"))),
    ];
    let blue = instance(&flags, &plane, &group, &topic, "blue", &logs[0]);
    let green = instance(&flags, &plane, &group, &topic, "green", &logs[1]);
    let tail = StatusTail::start(admin(), &status).unwrap();
    wait_until(
        "both slots hold both partitions",
        Duration::from_secs(60),
        || {
            let latest = tail.latest();
            ["blue", "green"].iter().all(|i| {
                latest
                    .get(*i)
                    .is_some_and(|s| s.partitions().count() == PARTITIONS as usize)
            })
        },
    );
    let processed = || ProcessedLog::read_all(&logs);
    let by = |slot: &str| {
        processed()
            .entries
            .iter()
            .filter(|e| e.instance == slot)
            .count()
    };

    produce_n(&topic, 0, 20);
    wait_until(
        "blue processes the first 20",
        Duration::from_secs(60),
        || by("blue") == 20,
    );
    let (code, out) = deploy("switch", &["--to", "green"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("summary: moved 2 partitions"), "{out}");
    produce_n(&topic, 20, 20);
    wait_until(
        "green processes the next 20",
        Duration::from_secs(60),
        || by("green") == 20,
    );
    let (code, out) = deploy("rollback", &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("summary: moved 2 partitions"), "{out}");
    produce_n(&topic, 40, 20);
    wait_until(
        "blue processes the last 20",
        Duration::from_secs(60),
        || by("blue") == 40,
    );

    let all = processed();
    let end: std::collections::BTreeMap<i32, i64> = (0..PARTITIONS).map(|p| (p, 30)).collect();
    let zeros: std::collections::BTreeMap<i32, i64> = (0..PARTITIONS).map(|p| (p, 0)).collect();
    all.check_no_gaps(&topic, &zeros, &end)
        .unwrap_or_else(|e| panic!("I2: {e}"));
    assert!(
        all.duplicates(&topic).is_empty(),
        "I1: {:?}",
        all.duplicates(&topic)
    );
    tail.stop();
    for c in [blue, green] {
        log(&c.lines().join("\n"));
    }
    let _ = std::fs::remove_dir_all(dir);
    scan_logged();
}
