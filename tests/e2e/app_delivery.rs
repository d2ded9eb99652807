//! Delivery to an application in another language (switchyard-delivery):
//! a Python standard-library HTTP server, or a Python child process on
//! stdin/stdout (`tests/peers/record_app.py`), logs every record it
//! processed. Records arrive in key order; a record answered 500 is retried
//! and dead-lettered while its neighbours are processed; while the
//! application is down nothing is committed past what it acknowledged; a
//! child that dies mid-stream loses nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use switchyard_delivery::exec::{ExecDelivery, ExecOptions};
use switchyard_delivery::http::{HttpDelivery, HttpOptions};
use switchyard_delivery::ValueFormat;
use switchyard_runtime::dead_letter::headers;
use switchyard_runtime::{FailurePolicy, Listener, ListenerBuilder, Ordering, RetryPolicy};

use super::common::*;

/// The application script.
pub fn record_app() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/record_app.py")
}

/// The HTTP application, started on `port` (0: any free one), and its port.
pub fn http_app(name: &str, log: &Path, port: u16, extra: &[&str]) -> (Child, u16) {
    let mut args = vec![
        record_app().display().to_string(),
        "http".into(),
        "--log".into(),
        log.display().to_string(),
        "--port".into(),
        port.to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let child = Child::spawn(name, Path::new("/usr/bin/python3"), &args, &[]);
    let line = child
        .wait_for_line(|l| l.starts_with("LISTENING "), Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("{name} did not start: {e}"));
    let port = line["LISTENING ".len()..].trim().parse().expect("a port");
    (child, port)
}

/// The exec application's command line.
pub fn exec_app(log: &Path, extra: &[&str]) -> Vec<String> {
    let mut command = vec![
        "/usr/bin/python3".to_string(),
        record_app().display().to_string(),
        "exec".into(),
        "--log".into(),
        log.display().to_string(),
    ];
    command.extend(extra.iter().map(|s| s.to_string()));
    command
}

fn listener(topic: &str, group: &str) -> ListenerBuilder {
    Listener::builder("app")
        .config(config(group))
        .topics([topic.to_string()])
}

/// Every offset of `topic` below `committed[p]` is in `log`: nothing was
/// committed that the application did not take.
pub fn committed_only_what_was_processed(
    log: &Path,
    topic: &str,
    committed: &BTreeMap<i32, i64>,
) -> Result<(), String> {
    let up_to: BTreeMap<i32, i64> = committed.iter().map(|(p, c)| (*p, (*c).max(0))).collect();
    let processed = ProcessedLog::read(log);
    let below: Vec<_> = processed
        .entries
        .iter()
        .filter(|e| e.topic == topic && e.offset < up_to.get(&e.partition).copied().unwrap_or(0))
        .cloned()
        .collect();
    ProcessedLog { entries: below }.check_no_gaps(topic, &zeros(&up_to), &up_to)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_http_delivers_every_record_in_key_order() {
    let b = bootstrap();
    let topic = new_topic(broker(), "dh-order", 4);
    let group = unique_name("dh-order-g");
    let log = log_path("dh-order");
    let (_app, port) = http_app("app", &log, 0, &["--name", "app"]);
    SeqProducer::new(&b).send(&topic, None, 2000, |s| format!("k{}", s % 50));
    let http = HttpDelivery::new(
        HttpOptions::new(format!("http://127.0.0.1:{port}/records")).connections(8),
    )
    .unwrap();
    let l = http
        .attach(
            listener(&topic, &group).workers(8).ordering(Ordering::Key),
            ValueFormat::Auto,
        )
        .start()
        .unwrap();
    let end = end_offsets(&b, &topic);
    eventually("2000 records delivered", Duration::from_secs(90), || {
        ProcessedLog::read(&log)
            .check_no_gaps(&topic, &zeros(&end), &end)
            .is_ok()
    })
    .await;
    let processed = ProcessedLog::read(&log);
    processed.check_key_order(&topic).unwrap();
    assert_eq!(processed.count(&topic), 2000, "each record once");
    // values are the producer's sequence numbers, embedded as JSON numbers
    let values: std::collections::BTreeSet<u64> = processed
        .entries
        .iter()
        .map(|e| e.value.parse().unwrap())
        .collect();
    assert_eq!(values, (0..2000).collect());
    eventually("all committed", Duration::from_secs(20), || {
        committed_offsets(&b, &group, &topic) == end
    })
    .await;
    l.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_http_in_batches_delivers_every_record_in_partition_order() {
    let b = bootstrap();
    let topic = new_topic(broker(), "dh-batch", 3);
    let group = unique_name("dh-batch-g");
    let log = log_path("dh-batch");
    let (_app, port) = http_app("app", &log, 0, &[]);
    SeqProducer::new(&b).send(&topic, None, 1500, |s| format!("k{}", s % 20));
    let http =
        HttpDelivery::new(HttpOptions::new(format!("http://127.0.0.1:{port}/batch")).batch(100))
            .unwrap();
    assert_eq!(http.batch(), 100);
    let l = http
        .attach(listener(&topic, &group).workers(3), ValueFormat::Auto)
        .start()
        .unwrap();
    let end = end_offsets(&b, &topic);
    eventually("1500 records delivered", Duration::from_secs(90), || {
        ProcessedLog::read(&log)
            .check_no_gaps(&topic, &zeros(&end), &end)
            .is_ok()
    })
    .await;
    let processed = ProcessedLog::read(&log);
    processed.check_key_order(&topic).unwrap();
    assert_eq!(processed.count(&topic), 1500);
    l.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_http_poison_record_is_retried_then_dead_lettered_while_neighbours_go_on() {
    let b = bootstrap();
    let topic = new_topic(broker(), "dh-poison", 1);
    let group = unique_name("dh-poison-g");
    let log = log_path("dh-poison");
    let (_app, port) = http_app("app", &log, 0, &["--fail-value", "poison"]);
    let p = SeqProducer::new(&b);
    for v in ["a", "b", "poison", "c", "d"] {
        p.send_raw(&topic, Some(0), Some(b"k"), v.as_bytes(), None);
    }
    let http = HttpDelivery::new(HttpOptions::new(format!("http://127.0.0.1:{port}/"))).unwrap();
    let l = http
        .attach(
            listener(&topic, &group)
                .retry(RetryPolicy {
                    max_attempts: 3,
                    initial_backoff: Duration::from_millis(50),
                    max_backoff: Duration::from_millis(200),
                })
                .on_failure(FailurePolicy::DeadLetter),
            ValueFormat::Auto,
        )
        .start()
        .unwrap();
    eventually("neighbours processed", Duration::from_secs(30), || {
        ProcessedLog::read(&log).count(&topic) == 4
    })
    .await;
    let values: Vec<String> = ProcessedLog::read(&log)
        .entries
        .into_iter()
        .map(|e| e.value)
        .collect();
    assert_eq!(values, ["a", "b", "c", "d"]);
    let dlt = read_dead_letters(&b, &format!("{topic}.DLT"), 1);
    assert_eq!(dlt[0].0, "poison");
    assert_eq!(dlt[0].1[headers::ATTEMPTS], "3");
    assert_eq!(dlt[0].1[headers::OFFSET], "2");
    assert!(dlt[0].1[headers::ERROR].contains("500"), "{:?}", dlt[0].1);
    let stats = l.stats();
    assert_eq!((stats.retries, stats.dead_lettered), (2, 1));
    eventually("committed past it", Duration::from_secs(20), || {
        committed_offsets(&b, &group, &topic).get(&0) == Some(&5)
    })
    .await;
    l.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_http_application_down_commits_nothing_it_did_not_take() {
    let b = bootstrap();
    let topic = new_topic(broker(), "dh-down", 2);
    let group = unique_name("dh-down-g");
    let log = log_path("dh-down");
    let (mut app, port) = http_app("app", &log, 0, &["--delay-ms", "5"]);
    SeqProducer::new(&b).send(&topic, None, 600, |s| format!("k{}", s % 10));
    let http = HttpDelivery::new(
        HttpOptions::new(format!("http://127.0.0.1:{port}/")).timeout(Duration::from_secs(2)),
    )
    .unwrap();
    let l = http
        .attach(
            listener(&topic, &group)
                .workers(2)
                .commit_interval(Duration::from_millis(50))
                .retry(RetryPolicy {
                    max_attempts: 10_000,
                    initial_backoff: Duration::from_millis(20),
                    max_backoff: Duration::from_millis(100),
                }),
            ValueFormat::Auto,
        )
        .start()
        .unwrap();
    eventually("100 records delivered", Duration::from_secs(60), || {
        ProcessedLog::read(&log).count(&topic) >= 100
    })
    .await;
    app.kill();
    let errors = l.stats().handler_errors;
    eventually(
        "the listener saw the application down",
        Duration::from_secs(30),
        || l.stats().handler_errors >= errors + 10,
    )
    .await;
    let committed = committed_offsets(&b, &group, &topic);
    let processed = ProcessedLog::read(&log).count(&topic);
    assert!(
        processed < 600,
        "all delivered before the kill: the test proves nothing"
    );
    committed_only_what_was_processed(&log, &topic, &committed).unwrap();
    // still down: the commits do not move
    let errors = l.stats().handler_errors;
    eventually("more failed attempts", Duration::from_secs(30), || {
        l.stats().handler_errors >= errors + 20
    })
    .await;
    assert_eq!(committed_offsets(&b, &group, &topic), committed);
    let (_app, _) = http_app("app-again", &log, port, &[]);
    let end = end_offsets(&b, &topic);
    eventually(
        "every record delivered after the restart",
        Duration::from_secs(90),
        || {
            ProcessedLog::read(&log)
                .check_no_gaps(&topic, &zeros(&end), &end)
                .is_ok()
        },
    )
    .await;
    eventually("all committed", Duration::from_secs(20), || {
        committed_offsets(&b, &group, &topic) == end
    })
    .await;
    l.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_exec_child_that_dies_mid_stream_loses_nothing() {
    let b = bootstrap();
    let topic = new_topic(broker(), "dx-die", 2);
    let group = unique_name("dx-die-g");
    let log = log_path("dx-die");
    let marker = log_path("dx-die-marker");
    SeqProducer::new(&b).send(&topic, None, 600, |s| format!("k{}", s % 10));
    let exec = ExecDelivery::start(
        ExecOptions::new(exec_app(
            &log,
            &[
                "--die-after",
                "150",
                "--die-once",
                &marker.display().to_string(),
            ],
        ))
        .timeout(Duration::from_secs(20)),
    )
    .unwrap();
    let l = exec
        .clone()
        .attach(
            listener(&topic, &group)
                .workers(4)
                .ordering(Ordering::Key)
                .retry(RetryPolicy {
                    max_attempts: 20,
                    initial_backoff: Duration::from_millis(50),
                    max_backoff: Duration::from_millis(500),
                }),
            ValueFormat::Auto,
        )
        .start()
        .unwrap();
    let end = end_offsets(&b, &topic);
    eventually("600 records delivered", Duration::from_secs(90), || {
        ProcessedLog::read(&log)
            .check_no_gaps(&topic, &zeros(&end), &end)
            .is_ok()
    })
    .await;
    assert!(
        marker.exists(),
        "the child never died: the test proves nothing"
    );
    assert_eq!(exec.starts(), 2, "one restart");
    eventually("all committed", Duration::from_secs(20), || {
        committed_offsets(&b, &group, &topic) == end
    })
    .await;
    let stats = l.stats();
    assert_eq!(stats.dead_lettered + stats.skipped, 0, "{stats:?}");
    l.shutdown().await;
    exec.stop().await;
}

/// A `switchyard run` file: listener `orders` over HTTP to `url` (key
/// order, 4 workers), listener `audit` to the exec application.
fn run_file(app: &str, orders: &str, url: &str, audit: &str, exec: &[String]) -> PathBuf {
    let command: Vec<String> = exec.iter().map(|s| format!("{s:?}")).collect();
    let text = format!(
        r#"

[instance]
application = "{app}"
admin = "127.0.0.1:0"
shutdown_timeout = "20s"

[consumer]
auto_offset_reset = "earliest"
session_timeout_ms = 6000
heartbeat_interval_ms = 1000

[[listener]]
name = "orders"
topics = ["{orders}"]
[listener.delivery]
mode = "http"
url = "{url}"
workers = 4
ordering = "key"
timeout = "5s"

[[listener]]
name = "audit"
topics = ["{audit}"]
group_id = "{app}-audit"
[listener.delivery]
mode = "exec"
command = [{command}]
attempts = 10
backoff = "50ms"
"#,
        command = command.join(", "),
    );
    run_file_with("run", &text)
}

pub fn switchyard_run(name: &str, args: &[String]) -> Child {
    let mut all = vec!["run".to_string()];
    all.extend(args.iter().cloned());
    Child::spawn(
        name,
        Path::new(env!("CARGO_BIN_EXE_switchyard")),
        &all,
        &[(
            "SWITCHYARD_LOG".into(),
            "info,rdkafka::consumer::base_consumer=off".into(),
        )],
    )
}

/// The admin API's address `switchyard run` instance `id` announces once
/// it has started.
pub fn admin_address(run: &Child, id: &str) -> String {
    let line = run
        .wait_for_line(
            |l| l.starts_with(&format!("switchyard run: instance `{id}`")),
            Duration::from_secs(30),
        )
        .unwrap_or_else(|e| panic!("{id} did not start: {e}"));
    line.split("http://")
        .nth(1)
        .expect("the admin API's address")
        .trim()
        .to_string()
}

/// [`switchyard_run`] with more environment variables, and its log
/// (stderr) among the lines of its stdout.
pub fn switchyard_run_with(name: &str, args: &[String], env: &[(String, String)]) -> Child {
    let mut command = std::process::Command::new("/bin/sh");
    command
        .args(["-c", "exec \"$0\" run \"$@\" 2>&1"])
        .arg(env!("CARGO_BIN_EXE_switchyard"))
        .args(args)
        .env(
            "SWITCHYARD_LOG",
            "info,rdkafka::consumer::base_consumer=off",
        )
        .envs(env.iter().map(|(k, v)| (k, v)));
    Child::spawn_command(name, command)
}

#[test]
fn delivery_run_delivers_over_http_and_to_a_child_process_and_stops_on_sigterm() {
    let b = bootstrap();
    let orders = new_topic(broker(), "run-orders", 3);
    let audit = new_topic(broker(), "run-audit", 2);
    let app = unique_name("run-app");
    let (orders_log, audit_log) = (log_path("run-orders"), log_path("run-audit"));
    let (_http, port) = http_app("app", &orders_log, 0, &[]);
    let mut producer = SeqProducer::new(&b);
    producer.send(&orders, None, 600, |s| format!("k{}", s % 30));
    producer.send(&audit, None, 300, |s| format!("a{}", s % 5));
    let file = run_file(
        &app,
        &orders,
        &format!("http://127.0.0.1:{port}/orders"),
        &audit,
        &exec_app(&audit_log, &["--name", "audit"]),
    );
    let mut run = switchyard_run(
        "run",
        &[
            "--config".into(),
            file.display().to_string(),
            "--instance-id".into(),
            "run-1".into(),
            "-X".into(),
            "client.id=switchyard-run-test".into(),
        ],
    );
    run.wait_for_line(
        |l| l.starts_with("switchyard run: instance `run-1`"),
        Duration::from_secs(30),
    )
    .unwrap();
    let (orders_end, audit_end) = (end_offsets(&b, &orders), end_offsets(&b, &audit));
    wait_until("every record delivered", Duration::from_secs(90), || {
        ProcessedLog::read(&orders_log)
            .check_no_gaps(&orders, &zeros(&orders_end), &orders_end)
            .is_ok()
            && ProcessedLog::read(&audit_log)
                .check_no_gaps(&audit, &zeros(&audit_end), &audit_end)
                .is_ok()
    });
    ProcessedLog::read(&orders_log)
        .check_key_order(&orders)
        .unwrap();
    ProcessedLog::read(&audit_log)
        .check_key_order(&audit)
        .unwrap();
    wait_until("everything committed", Duration::from_secs(30), || {
        committed_offsets(&b, &app, &orders) == orders_end
            && committed_offsets(&b, &format!("{app}-audit"), &audit) == audit_end
    });
    run.terminate();
    let status = run.wait_exit(Duration::from_secs(40)).expect("run stopped");
    assert_eq!(status.code(), Some(0), "{:?}", run.lines());
    assert!(
        run.lines().iter().any(|l| l.contains("stopped in")),
        "{:?}",
        run.lines()
    );
}

#[test]
fn delivery_run_refuses_an_invalid_file_naming_the_key() {
    let (code, stderr) = run_refusal(
        "run-bad",
        "[instance]\napplication = \"a\"\n[[listener]]\nname = \"orders\"\ntopics = [\"t\"]\n[listener.delivery]\nmode = \"http\"\nurl = \"ftp://u:s3cret@app/in\"\n",
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("listener `orders`") && stderr.contains("delivery.url"),
        "{stderr}"
    );
    assert!(!stderr.contains("s3cret"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_http_has_at_most_workers_requests_in_flight() {
    let b = bootstrap();
    let topic = new_topic(broker(), "dh-flight", 2);
    let group = unique_name("dh-flight-g");
    let log = log_path("dh-flight");
    let in_flight = log_path("dh-flight-most");
    let most = in_flight.display().to_string();
    let (_app, port) = http_app("app", &log, 0, &["--delay-ms", "20", "--in-flight", &most]);
    SeqProducer::new(&b).send(&topic, None, 300, |s| format!("k{s}"));
    let http =
        HttpDelivery::new(HttpOptions::new(format!("http://127.0.0.1:{port}/")).connections(3))
            .unwrap();
    let l = http
        .attach(
            listener(&topic, &group)
                .workers(3)
                .ordering(Ordering::Unordered),
            ValueFormat::Auto,
        )
        .start()
        .unwrap();
    let end = end_offsets(&b, &topic);
    eventually("300 records delivered", Duration::from_secs(60), || {
        ProcessedLog::read(&log)
            .check_no_gaps(&topic, &zeros(&end), &end)
            .is_ok()
    })
    .await;
    let most: usize = std::fs::read_to_string(&in_flight)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // 20 ms per request and 300 records: with 3 workers all three are busy
    assert_eq!(most, 3, "requests in flight at most");
    l.shutdown().await;
}
