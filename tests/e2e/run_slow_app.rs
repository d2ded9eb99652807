//! `switchyard run` in front of an application slower than the topic: the
//! listener's buffer bound from the run file (`max_buffered_records`)
//! holds, taking records stops and goes on, and every record reaches the
//! application once.

use std::path::PathBuf;
use std::time::Duration;

use super::app_delivery::{admin_address, http_app, switchyard_run};
use super::common::*;

const BOUND: usize = 100;
const BATCH: usize = 50;

/// A run file: listener `orders` over HTTP to `url`, key order, 8 workers,
/// at most [`BOUND`] records waiting or in flight.
fn run_file(app: &str, topic: &str, url: &str) -> PathBuf {
    let text = format!(
        r#"

[instance]
application = "{app}"
admin = "127.0.0.1:0"

[consumer]
auto_offset_reset = "earliest"
max_poll_records = {BATCH}

[[listener]]
name = "orders"
topics = ["{topic}"]
max_buffered_records = {BOUND}
[listener.delivery]
mode = "http"
url = "{url}"
workers = 8
ordering = "key"
"#,
    );
    run_file_with("run-slow", &text)
}

/// The records waiting or in flight now, from the admin API's metrics
/// (`switchyard_partition_buffered_records` + `switchyard_partition_in_flight`).
fn waiting_or_in_flight(admin: &str) -> usize {
    let (code, metrics) = http_get(admin.parse().unwrap(), "/metrics").unwrap();
    assert_eq!(code, 200, "{metrics}");
    sum(&metrics, "switchyard_partition_buffered_records") as usize
        + sum(&metrics, "switchyard_partition_in_flight") as usize
}

/// The sum of the samples of metric `name`.
fn sum(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[test]
fn run_with_a_slow_application_keeps_the_buffer_bound_of_its_file() {
    let b = bootstrap();
    let topic = new_topic(broker(), "run-slow", 2);
    let app = unique_name("run-slow-app");
    let log = log_path("run-slow");
    let total = 3_000;
    SeqProducer::new(&b).send(&topic, None, total, |s| format!("k{}", s % 40));
    let (_http, port) = http_app("app", &log, 0, &["--delay-ms", "5"]);
    let file = run_file(&app, &topic, &format!("http://127.0.0.1:{port}/orders"));
    let mut run = switchyard_run(
        "run",
        &[
            "--config".into(),
            file.display().to_string(),
            "--instance-id".into(),
            "run-slow-1".into(),
        ],
    );
    let admin = admin_address(&run, "run-slow-1");
    let end = end_offsets(&b, &topic);
    let mut most = 0;
    wait_until("every record delivered", Duration::from_secs(120), || {
        most = most.max(waiting_or_in_flight(&admin));
        ProcessedLog::read(&log)
            .check_no_gaps(&topic, &zeros(&end), &end)
            .is_ok()
    });
    assert!(
        most <= BOUND + 2 * BATCH,
        "{most} records waiting or in flight, bound {BOUND} (+ two poll batches of {BATCH})"
    );
    assert!(most > 0, "the buffer was seen in use");
    let (_, metrics) = http_get(admin.parse().unwrap(), "/metrics").unwrap();
    assert!(
        sum(&metrics, "switchyard_backpressure_pauses_total") > 0.0,
        "taking records stopped at the bound:\n{metrics}"
    );
    let log = ProcessedLog::read(&log);
    assert!(
        log.duplicates(&topic).is_empty(),
        "{:?}",
        log.duplicates(&topic)
    );
    log.check_key_order(&topic).unwrap();
    run.terminate();
    let status = run.wait_exit(Duration::from_secs(40)).expect("run stopped");
    assert_eq!(status.code(), Some(0), "{:?}", run.lines());
}
