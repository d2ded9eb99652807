//! `switchyard run` with records written through a Schema Registry: Avro and
//! Protobuf records produced by Confluent's Python serializers
//! (`tests/peers/schema_producer.py`) against a real registry (Apicurio, its
//! Confluent-compatible API) reach the HTTP application
//! (`tests/peers/record_app.py`) as JSON objects equal to what was produced;
//! a record with a schema id the registry does not know goes to the
//! dead-letter topic with its original bytes and the reason, its neighbours
//! are delivered and everything is committed.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use rdkafka::Offset;
use serde_json::{json, Value};
use switchyard_runtime::dead_letter::headers;

use super::app_delivery::{http_app, switchyard_run};
use super::common::*;
use super::schema_registry::{avro_record, order_proto, produce, registry, ORDER_V1};

/// A run file: listener `orders` (Avro) and listener `refunds` (Protobuf),
/// both over HTTP to `url`, with the shared registry.
fn run_file(app: &str, orders: &str, refunds: &str, url: &str) -> PathBuf {
    let text = format!(
        r#"

[instance]
application = "{app}"
shutdown_timeout = "20s"

[consumer]
auto_offset_reset = "earliest"
session_timeout_ms = 6000
heartbeat_interval_ms = 1000

[schema_registry]
urls = ["{registry}"]
request_timeout = "5s"
cache_capacity = 100

[[listener]]
name = "orders"
topics = ["{orders}"]
on_decode_error = "dead-letter"
[listener.delivery]
mode = "http"
url = "{url}"
value = "avro"

[[listener]]
name = "refunds"
topics = ["{refunds}"]
group_id = "{app}-refunds"
[listener.delivery]
mode = "http"
url = "{url}"
value = "protobuf"
"#,
        registry = registry().url(),
    );
    run_file_with("run-sr", &text)
}

/// The values the application logged for `topic`, by offset, each with its
/// `value_encoding` (the app runs with `--with-encoding`).
fn delivered(log: &std::path::Path, topic: &str) -> BTreeMap<i64, Value> {
    ProcessedLog::read(log)
        .entries
        .iter()
        .filter(|e| e.topic == topic)
        .map(|e| {
            let v = serde_json::from_str(&e.value).unwrap_or_else(|err| {
                panic!("{topic}@{}: not JSON ({err}): {}", e.offset, e.value)
            });
            (e.offset, v)
        })
        .collect()
}

/// What the application logs for a value embedded as JSON.
fn as_json(value: Value) -> Value {
    json!({"value": value, "value_encoding": "json"})
}

#[test]
fn run_schema_avro_and_protobuf_records_reach_the_application_as_json_and_an_unknown_id_is_dead_lettered(
) {
    let b = bootstrap();
    let orders = new_topic(broker(), "run-sr-orders", 1);
    let refunds = new_topic(broker(), "run-sr-refunds", 1);
    let app = unique_name("run-sr-app");
    let log = log_path("run-sr");
    let (_http, port) = http_app("app", &log, 0, &["--with-encoding"]);

    let order = |i: i64| json!({"id": i, "item": format!("item-{i}")});
    let mut records: Vec<Value> = (1..=5).map(|i| avro_record(ORDER_V1, order(i))).collect();
    let mut unknown = avro_record(ORDER_V1, order(99));
    unknown["schema_id"] = json!(987_654_321u32);
    records.insert(2, unknown);
    let ids = produce(&orders, records);
    assert_eq!(ids[2], Some(987_654_321), "{ids:?}");
    let refund =
        |i: i64| json!({"id": i, "item": format!("r{i}"), "lines": [{"sku": "s", "count": i}]});
    let protos = (1..=3)
        .map(|i| json!({"format": "protobuf", "schema": order_proto(), "message": "Order", "value": refund(i)}))
        .collect();
    produce(&refunds, protos);

    let file = run_file(
        &app,
        &orders,
        &refunds,
        &format!("http://127.0.0.1:{port}/records"),
    );
    let mut run = switchyard_run(
        "run-sr",
        &[
            "--config".into(),
            file.display().to_string(),
            "--instance-id".into(),
            "run-sr-1".into(),
        ],
    );
    run.wait_for_line(
        |l| l.starts_with("switchyard run: instance `run-sr-1`"),
        Duration::from_secs(30),
    )
    .unwrap_or_else(|e| panic!("{e}: {:?}", run.lines()));

    wait_until(
        "the 5 orders and 3 refunds delivered",
        Duration::from_secs(90),
        || delivered(&log, &orders).len() >= 5 && delivered(&log, &refunds).len() >= 3,
    );
    let want: BTreeMap<i64, Value> = [(0, 1), (1, 2), (3, 3), (4, 4), (5, 5)]
        .into_iter()
        .map(|(offset, i)| (offset, as_json(order(i))))
        .collect();
    assert_eq!(
        delivered(&log, &orders),
        want,
        "the Avro records as JSON objects"
    );
    let want: BTreeMap<i64, Value> = (0..3).map(|o| (o, as_json(refund(o + 1)))).collect();
    assert_eq!(
        delivered(&log, &refunds),
        want,
        "the Protobuf records as JSON objects"
    );

    // the unknown id: on the dead-letter topic, byte for byte, with the reason
    let dlt = read_with_headers(&bootstrap(), &format!("{orders}.DLT"), Offset::Beginning, 1);
    let (original, _) = read_with_headers(&bootstrap(), &orders, Offset::Offset(2), 1).remove(0);
    let (value, hs) = &dlt[0];
    assert_eq!(value, &original, "the dead letter keeps the original bytes");
    assert_eq!(
        &original[..5],
        &[0, 0x3a, 0xde, 0x68, 0xb1],
        "magic byte and id 987654321"
    );
    assert_eq!(hs[headers::OFFSET], "2", "{hs:?}");
    assert!(
        hs[headers::ERROR].starts_with("cannot decode value: unknown_schema_id: "),
        "{hs:?}"
    );

    wait_until("everything committed", Duration::from_secs(30), || {
        committed_offsets(&b, &app, &orders) == end_offsets(&b, &orders)
            && committed_offsets(&b, &format!("{app}-refunds"), &refunds)
                == end_offsets(&b, &refunds)
    });
    run.terminate();
    let status = run.wait_exit(Duration::from_secs(40)).expect("run stopped");
    assert_eq!(status.code(), Some(0), "{:?}", run.lines());
}

#[test]
fn run_schema_refuses_avro_without_a_registry_table_naming_the_key() {
    let (code, stderr) = run_refusal(
        "run-sr-bad",
        r#"
[instance]
application = "a"
[[listener]]
name = "orders"
topics = ["orders"]
delivery = { mode = "http", url = "http://127.0.0.1:9/", value = "avro" }
"#,
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("listener `orders`") && stderr.contains("[schema_registry]"),
        "{stderr}"
    );
}
