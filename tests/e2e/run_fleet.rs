//! `switchyard run` as a blue/green fleet: two `switchyard run` processes,
//! slot blue and slot green, on one control plane (control and status
//! topics), each in its own consumer group (`<g>-blue`, `<g>-green`, the
//! separate-groups strategy) and each delivering over HTTP to its own
//! instance of the application (`tests/peers/record_app.py`, named after
//! the slot, both appending to one processed log). `switchyard deploy`
//! initialises the deployment on blue, switches to green and rolls back
//! while records flow; I1 (no record processed twice) and I2 (none lost)
//! are checked on the application's own log.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use switchyard_control::model::now_ms;

use super::app_delivery::http_app;
use super::common::*;

const WAIT: Duration = Duration::from_secs(90);
const PARTITIONS: i32 = 4;
const LISTENER: &str = "orders";

/// A `switchyard run` file of `slot`: listener `orders` on `topic` in group
/// `<group>-<slot>`, delivering over HTTP to `url`, with the plane's
/// control and status topics.
fn fleet_file(plane: &Plane, slot: &str, group: &str, topic: &str, url: &str) -> PathBuf {
    let text = format!(
        r#"

[instance]
application = "{app}"
slot = "{slot}"
control = {{ kafka = "{control}" }}
status_topic = "{status}"
admin = "127.0.0.1:0"
shutdown_timeout = "20s"

[consumer]
auto_offset_reset = "earliest"
session_timeout_ms = 6000
heartbeat_interval_ms = 1000

[[listener]]
name = "{LISTENER}"
topics = ["{topic}"]
group_id = "{group}-{slot}"
[listener.delivery]
mode = "http"
url = "{url}"
workers = 4
ordering = "key"
timeout = "5s"
"#,
        app = plane.app,
        control = plane.control,
        status = plane.status,
    );
    run_file_with("run-fleet", &text)
}

/// `switchyard run --config <file> --instance-id <id>`, once it has started.
fn switchyard_run(id: &str, file: &Path) -> Child {
    let run = super::app_delivery::switchyard_run(
        id,
        &[
            "--config".into(),
            file.display().to_string(),
            "--instance-id".into(),
            id.into(),
        ],
    );
    super::app_delivery::admin_address(&run, id);
    run
}

/// Partition -> owning slot of listener `orders`, from the control topic.
fn owners(plane: &Plane) -> BTreeMap<i32, String> {
    plane.owners(LISTENER)
}

fn all_owned_by(plane: &Plane, slot: &str) -> bool {
    let o = owners(plane);
    o.len() == PARTITIONS as usize && o.values().all(|v| v == slot)
}

/// Offsets of `topic` the application processed, counting duplicates.
fn processed(log: &Path, topic: &str) -> usize {
    ProcessedLog::read(log).count(topic)
}

fn wait_progress(log: &Path, topic: &str, n: usize) {
    let base = processed(log, topic);
    wait_until("records keep being processed", WAIT, || {
        processed(log, topic) >= base + n
    });
}

#[test]
fn run_fleet_blue_green_switch_and_rollback_deliver_every_record_once_to_the_application() {
    let plane = Plane::new("rfl");
    let group = unique_name("rfl-g");
    let topic = new_topic(broker(), "rfl", PARTITIONS);
    let log = log_path("rfl-app");
    let deploy = |verb: &str, extra: &[&str]| {
        let mut args = plane.cli_args("deploy", verb);
        args.extend(["--group".to_string(), group.clone()]);
        args.extend(["--listener".to_string(), LISTENER.to_string()]);
        args.extend(extra.iter().map(|s| s.to_string()));
        switchyard(&args)
    };
    let (code, out) = deploy("init", &["--slot", "blue", "--topics", &topic]);
    assert_eq!(code, 0, "{out}");
    let tail = plane.tail();
    // one application per slot, named after it, both logging to one file
    let (_blue_app, blue_port) = http_app("app-blue", &log, 0, &["--name", "blue"]);
    let (_green_app, green_port) = http_app("app-green", &log, 0, &["--name", "green"]);
    let url = |port: u16| format!("http://127.0.0.1:{port}/records");
    let blue_file = fleet_file(&plane, "blue", &group, &topic, &url(blue_port));
    let green_file = fleet_file(&plane, "green", &group, &topic, &url(green_port));
    let _blue = switchyard_run("rfl-blue-1", &blue_file);
    let _green = switchyard_run("rfl-green-1", &green_file);
    wait_until("both slots assigned and reporting", WAIT, || {
        let now = now_ms();
        let live: Vec<_> = tail
            .latest()
            .into_values()
            .filter(|s| s.app == plane.app && !s.is_gone(now))
            .collect();
        ["blue", "green"].iter().all(|slot| {
            live.iter()
                .filter(|s| s.slot == *slot)
                .map(|s| s.partitions().count())
                .sum::<usize>()
                == PARTITIONS as usize
        })
    });
    let producer = SteadyProducer::start(&bootstrap(), &topic, PARTITIONS, 200);
    wait_progress(&log, &topic, 100);

    let (code, out) = deploy("switch", &["--to", "green"]);
    assert_eq!(code, 0, "switch to green: {out}");
    assert!(out.contains("summary: moved 4 partitions"), "{out}");
    assert!(all_owned_by(&plane, "green"), "{:?}", owners(&plane));
    wait_progress(&log, &topic, 100);

    let (code, out) = deploy("rollback", &[]);
    assert_eq!(code, 0, "rollback: {out}");
    assert!(out.contains("summary: moved 4 partitions"), "{out}");
    assert!(all_owned_by(&plane, "blue"), "{:?}", owners(&plane));
    wait_progress(&log, &topic, 100);

    let confirmed = producer.stop() as usize;
    let end = end_offsets(&bootstrap(), &topic);
    // under load a delivery can time out in the producer although the
    // broker wrote it: the log end is the truth
    let sent = end.values().sum::<i64>() as usize;
    assert!(sent >= confirmed, "log end {sent} < confirmed {confirmed}");
    let distinct = |log: &ProcessedLog| -> usize {
        let extra: usize = log
            .duplicates(&topic)
            .iter()
            .map(|(_, by)| by.len() - 1)
            .sum();
        log.count(&topic) - extra
    };
    // distinct offsets: a duplicate must not end the wait early
    wait_until("every offset up to the log end processed", WAIT, || {
        distinct(&ProcessedLog::read(&log)) >= sent
    });
    let processed = ProcessedLog::read(&log);
    processed
        .check_no_gaps(&topic, &zeros(&end), &end)
        .unwrap_or_else(|e| panic!("I2: {e}"));
    let dups = processed.duplicates(&topic);
    assert!(
        dups.is_empty(),
        "I1: {} offsets processed twice, e.g. {:?}",
        dups.len(),
        &dups[..dups.len().min(5)]
    );
    assert_eq!(processed.count(&topic), sent, "every offset exactly once");
    // the handoffs really moved the work: both applications processed records
    for slot in ["blue", "green"] {
        assert!(
            processed.entries.iter().any(|e| e.instance == slot),
            "the {slot} application processed nothing"
        );
    }
    tail.stop();
}
