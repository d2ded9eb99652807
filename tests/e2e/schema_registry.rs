//! Schema Registry records end to end: an independent producer (Confluent's
//! Python client with its SchemaRegistryClient and Avro, Protobuf and JSON
//! Schema serializers, `tests/peers/schema_producer.py`) writes records in the
//! Confluent wire format against a real registry (Apicurio Registry, its
//! Confluent-compatible API, started once for this binary by the testkit);
//! listeners decode them with `switchyard-schema` into typed values. Schema
//! evolution is read by an older and a newer reader schema. Every failure (a
//! wrong magic byte, an unknown schema id, a payload that does not match its
//! schema, a schema of another format, a registry that is down) goes to the
//! dead-letter topic with its reason while its neighbours are processed, or
//! is skipped by policy, and is counted; a registry that is down makes the
//! partition wait without leaving the group.

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};
use switchyard_config::DecodeErrorPolicy;
use switchyard_runtime::dead_letter::headers;
use switchyard_runtime::deserializer::{Deserializer, Utf8};
use switchyard_runtime::record::Record;
use switchyard_runtime::{Listener, ListenerHandle};
use switchyard_schema::avro::Avro;
use switchyard_schema::json_schema::JsonSchema;
use switchyard_schema::protobuf::{ProtobufJson, ProtobufSerde};
use switchyard_schema::{
    Credentials, FailureKind, RegistryConfig, RetryBudget, SchemaRegistry, TlsConfig,
};

use super::common::*;

pub(super) const ORDER_V1: &str = r#"{"type":"record","name":"Order","namespace":"shop","fields":[
  {"name":"id","type":"long"},{"name":"item","type":"string"}]}"#;
/// v1 with a field added with a default: a backward- and forward-compatible change.
const ORDER_V2: &str = r#"{"type":"record","name":"Order","namespace":"shop","fields":[
  {"name":"id","type":"long"},{"name":"item","type":"string"},
  {"name":"quantity","type":"int","default":1}]}"#;

const ORDER_JSON_SCHEMA: &str = r#"{"$schema":"http://json-schema.org/draft-07/schema#",
  "type":"object","properties":{"id":{"type":"integer","minimum":1},"item":{"type":"string"}},
  "required":["id","item"]}"#;

#[derive(Debug, Clone, PartialEq, Deserialize)]
struct OrderV1 {
    id: i64,
    item: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
struct OrderV2 {
    id: i64,
    item: String,
    quantity: i32,
}

/// `shop/order.proto` as a `FileDescriptorProto` in JSON: `Refund` is message
/// [0], `Order` message [1] with `Order.Line` nested in it.
pub(super) fn order_proto() -> Value {
    let field = |name: &str, number: i32, ty: &str| json!({"name": name, "number": number, "type": ty, "label": "LABEL_OPTIONAL"});
    json!({
        "name": "shop/order.proto", "package": "shop", "syntax": "proto3",
        "messageType": [
            {"name": "Refund", "field": [field("order_id", 1, "TYPE_INT64")]},
            {"name": "Order",
             "field": [field("id", 1, "TYPE_INT64"), field("item", 2, "TYPE_STRING"),
                       {"name": "lines", "number": 3, "type": "TYPE_MESSAGE", "typeName": ".shop.Order.Line",
                        "label": "LABEL_REPEATED"}],
             "nestedType": [{"name": "Line", "field": [field("sku", 1, "TYPE_STRING"),
                                                       field("count", 2, "TYPE_UINT32")]}]}
        ]
    })
}

/// The shared registry of this binary.
pub(super) fn registry() -> &'static Registry {
    Registry::shared()
}

/// Write `records` (see `tests/peers/schema_producer.py`) to partition 0 of
/// `topic` with Confluent's Python serializers; the schema id of each.
pub(super) fn produce(topic: &str, records: Vec<Value>) -> Vec<Option<u32>> {
    produce_to(registry(), json!({}), topic, records)
}

/// [`produce`] against `sr`, with extra `SchemaRegistryClient` settings.
fn produce_to(sr: &Registry, conf: Value, topic: &str, records: Vec<Value>) -> Vec<Option<u32>> {
    let home = std::env::var_os("HOME").expect("HOME");
    let python = std::path::Path::new(&home).join(".cache/switchyard/python-serdes/bin/python");
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/peers/schema_producer.py"
    );
    let spec = json!({
        "bootstrap": bootstrap(), "registry": sr.url(), "registry_conf": conf, "topic": topic,
        "records": records,
    });
    let mut child = Command::new(&python)
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "{} runs (scripts/install-test-deps.sh installs it): {e}",
                python.display()
            )
        });
    child
        .stdin
        .take()
        .unwrap()
        .write_all(spec.to_string().as_bytes())
        .unwrap();
    // a deadline: a producer that hangs fails the test instead of the suite
    let pid = child.id();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let watchdog = std::thread::spawn(move || {
        while std::time::Instant::now() < deadline {
            if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                return false;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        true
    });
    let out = child.wait_with_output().unwrap();
    let killed = watchdog.join().unwrap_or(false);
    assert!(!killed, "schema producer hung for 120 s and was killed");
    assert!(
        out.status.success(),
        "schema producer failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("a JSON list of schema ids")
}

pub(super) fn avro_record(schema: &str, value: Value) -> Value {
    json!({"format": "avro", "schema": schema, "value": value})
}

/// A registry client on `urls`, retrying briefly.
fn client(urls: Vec<String>, give_up_after: Option<Duration>) -> SchemaRegistry {
    SchemaRegistry::new(RegistryConfig::new(urls).with_retry(RetryBudget {
        initial_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(500),
        give_up_after,
    }))
    .unwrap()
}

/// A URL on which nothing listens.
fn dead_url() -> String {
    format!("http://127.0.0.1:{}/apis/ccompat/v7", free_port())
}

/// (offset, value) of every record a typed handler saw.
type Got<T> = Arc<Mutex<Vec<(i64, T)>>>;

fn typed_listener<D>(
    topic: &str,
    group: &str,
    values: D,
    policy: DecodeErrorPolicy,
) -> (ListenerHandle, Got<D::Output>)
where
    D: Deserializer,
{
    let got: Got<D::Output> = Arc::default();
    let g = got.clone();
    let l = Listener::builder("schema")
        .config(config(group))
        .topics([topic.to_string()])
        .on_decode_error(policy)
        .handler(Utf8, values, move |r: Record<String, D::Output>| {
            g.lock().unwrap().push((r.offset, r.value));
            async { Ok(()) }
        })
        .start()
        .unwrap();
    (l, got)
}

fn len<T>(got: &Got<T>) -> usize {
    got.lock().unwrap().len()
}

/// Records of a dead-letter topic: (original offset, the error header).
fn read_dlt(topic: &str, n: usize) -> Vec<(i64, String)> {
    read_dead_letters(&bootstrap(), topic, n)
        .into_iter()
        .map(|(_, hs)| {
            (
                hs[headers::OFFSET].parse().unwrap(),
                hs[headers::ERROR].clone(),
            )
        })
        .collect()
}

async fn committed_to(group: &str, topic: &str, end: i64) {
    let b = bootstrap();
    eventually("committed to the end", Duration::from_secs(30), || {
        committed_offsets(&b, group, topic).get(&0) == Some(&end)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn avro_records_of_a_python_producer_decode_to_typed_values() {
    let topic = new_topic(broker(), "sr-avro", 1);
    let group = unique_name("sr-avro-g");
    let orders: Vec<Value> = (1..=20)
        .map(|i| avro_record(ORDER_V1, json!({"id": i, "item": format!("item-{i}")})))
        .collect();
    let ids = produce(&topic, orders);
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    // the first URL is down: every request goes on to the second
    let sr = client(
        vec![dead_url(), registry().url()],
        Some(Duration::from_secs(30)),
    );
    let (l, got) = typed_listener(
        &topic,
        &group,
        Avro::<OrderV1>::new(&sr),
        DecodeErrorPolicy::DeadLetter,
    );
    eventually("20 orders", Duration::from_secs(60), || len(&got) == 20).await;
    let got = got.lock().unwrap().clone();
    for (i, (offset, order)) in got.iter().enumerate() {
        assert_eq!(*offset, i as i64);
        assert_eq!(
            order,
            &OrderV1 {
                id: i as i64 + 1,
                item: format!("item-{}", i + 1)
            }
        );
    }
    let m = sr.metrics();
    assert_eq!(m.requests_ok, 1, "one fetch for the one id: {m:?}");
    assert!(
        m.requests_failed >= 1,
        "the dead URL was tried first: {m:?}"
    );
    assert_eq!(l.stats().decode_errors, 0);
    committed_to(&group, &topic, 20).await;
    l.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protobuf_records_decode_with_registry_descriptors() {
    let topic = new_topic(broker(), "sr-proto", 1);
    let group = unique_name("sr-proto-g");
    let proto = |message: &str, value: Value| json!({"format": "protobuf", "schema": order_proto(), "message": message, "value": value});
    let mut records: Vec<Value> = (1..=5)
        .map(|i| {
            proto(
                "Order",
                json!({"id": i, "item": format!("p{i}"), "lines": [{"sku": "s", "count": i}]}),
            )
        })
        .collect();
    records.insert(2, proto("Refund", json!({"order_id": 2})));
    produce(&topic, records);

    // dynamically, to JSON: the message indexes pick Order or Refund
    let sr = client(vec![registry().url()], Some(Duration::from_secs(30)));
    let (l, got) = typed_listener(
        &topic,
        &group,
        ProtobufJson::new(&sr),
        DecodeErrorPolicy::DeadLetter,
    );
    eventually("6 messages", Duration::from_secs(60), || len(&got) == 6).await;
    let values: Vec<Value> = got.lock().unwrap().iter().map(|r| r.1.clone()).collect();
    assert_eq!(values[2], json!({"order_id": 2}));
    assert_eq!(
        values[0],
        json!({"id": 1, "item": "p1", "lines": [{"sku": "s", "count": 1}]})
    );
    l.shutdown().await;

    // to a typed value: the Refund does not fit and is dead-lettered
    #[derive(Debug, Clone, Deserialize)]
    struct Line {
        count: u32,
    }
    #[derive(Debug, Clone, Deserialize)]
    struct Order {
        id: i64,
        item: String,
        lines: Vec<Line>,
    }
    let group2 = unique_name("sr-proto-typed-g");
    let (l, got) = typed_listener(
        &topic,
        &group2,
        ProtobufSerde::<Order>::new(&sr),
        DecodeErrorPolicy::DeadLetter,
    );
    eventually("5 orders", Duration::from_secs(60), || len(&got) == 5).await;
    let orders = got.lock().unwrap().clone();
    assert_eq!(
        orders
            .iter()
            .map(|(_, o)| (o.id, o.item.clone(), o.lines[0].count))
            .collect::<Vec<_>>(),
        (1..=5)
            .map(|i| (i, format!("p{i}"), i as u32))
            .collect::<Vec<_>>()
    );
    let dlt = read_dlt(&format!("{topic}.DLT"), 1);
    assert_eq!(dlt[0].0, 2);
    assert!(dlt[0].1.contains("schema_mismatch"), "{dlt:?}");
    committed_to(&group2, &topic, 6).await;
    l.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_schema_records_are_validated_then_typed() {
    let topic = new_topic(broker(), "sr-json", 1);
    let group = unique_name("sr-json-g");
    let json_record = |i: i64| json!({"format": "json", "schema": ORDER_JSON_SCHEMA, "value": {"id": i, "item": format!("j{i}")}});
    let mut records: Vec<Value> = (1..=4).map(json_record).collect();
    // valid JSON, but against its schema id 0 is below the minimum
    let mut invalid = json_record(9);
    invalid["replace_payload_hex"] = json!(hex(br#"{"id":0,"item":"zero"}"#));
    records.insert(1, invalid);
    produce(&topic, records);
    let sr = client(vec![registry().url()], Some(Duration::from_secs(30)));
    let (l, got) = typed_listener(
        &topic,
        &group,
        JsonSchema::<OrderV1>::new(&sr),
        DecodeErrorPolicy::DeadLetter,
    );
    eventually("4 valid orders", Duration::from_secs(60), || len(&got) == 4).await;
    let got: Vec<(i64, i64)> = got
        .lock()
        .unwrap()
        .iter()
        .map(|(o, v)| (*o, v.id))
        .collect();
    assert_eq!(got, vec![(0, 1), (2, 2), (3, 3), (4, 4)]);
    let dlt = read_dlt(&format!("{topic}.DLT"), 1);
    assert_eq!(dlt[0].0, 1);
    assert!(
        dlt[0].1.contains("schema_mismatch") && dlt[0].1.contains("fails validation"),
        "{dlt:?}"
    );
    assert_eq!(sr.metrics().failures_of(FailureKind::SchemaMismatch), 1);
    committed_to(&group, &topic, 5).await;
    l.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_evolution_is_read_by_older_and_newer_reader_schemas() {
    let topic = new_topic(broker(), "sr-evolve", 1);
    let mut records: Vec<Value> = (1..=3)
        .map(|i| avro_record(ORDER_V1, json!({"id": i, "item": "old"})))
        .collect();
    records.extend((4..=6).map(|i| {
        avro_record(
            ORDER_V2,
            json!({"id": i, "item": "new", "quantity": i * 10}),
        )
    }));
    let ids = produce(&topic, records);
    assert_ne!(ids[0], ids[3], "v2 is another schema id: {ids:?}");
    let sr = client(vec![registry().url()], Some(Duration::from_secs(30)));

    // a consumer built against v1 reads v2 records: the added field is dropped
    let older = Avro::<OrderV1>::new(&sr)
        .with_reader_schema(ORDER_V1, &[])
        .unwrap();
    let (l1, got1) = typed_listener(
        &topic,
        &unique_name("sr-old-g"),
        older,
        DecodeErrorPolicy::DeadLetter,
    );
    // a consumer built against v2 reads v1 records: the added field takes its default
    let newer = Avro::<OrderV2>::new(&sr)
        .with_reader_schema(ORDER_V2, &[])
        .unwrap();
    let (l2, got2) = typed_listener(
        &topic,
        &unique_name("sr-new-g"),
        newer,
        DecodeErrorPolicy::DeadLetter,
    );
    eventually("both read all 6", Duration::from_secs(60), || {
        len(&got1) == 6 && len(&got2) == 6
    })
    .await;
    let old: Vec<(i64, String)> = got1
        .lock()
        .unwrap()
        .iter()
        .map(|(_, o)| (o.id, o.item.clone()))
        .collect();
    assert_eq!(old[0], (1, "old".into()));
    assert_eq!(old[5], (6, "new".into()));
    let quantities: Vec<i32> = got2
        .lock()
        .unwrap()
        .iter()
        .map(|(_, o)| o.quantity)
        .collect();
    assert_eq!(quantities, vec![1, 1, 1, 40, 50, 60]);
    assert_eq!(l1.stats().decode_errors + l2.stats().decode_errors, 0);
    l1.shutdown().await;
    l2.shutdown().await;
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A topic with a bad record of every kind between good ones; the reasons by
/// offset.
fn produce_bad_records(topic: &str) -> Vec<(i64, &'static str)> {
    let good = |i: i64| avro_record(ORDER_V1, json!({"id": i, "item": "ok"}));
    let mut unknown = good(99);
    unknown["schema_id"] = json!(987_654_321u32);
    let mut garbled = good(98);
    garbled["replace_payload_hex"] = json!("ffffffff");
    let json_id = json!({"format": "json", "schema": ORDER_JSON_SCHEMA, "value": {"id": 1, "item": "a json record"}});
    let records = vec![
        good(1),
        json!({"raw_hex": hex(br#"{"id":1,"item":"plain json"}"#)}),
        good(2),
        unknown,
        good(3),
        garbled,
        good(4),
        json_id,
        good(5),
    ];
    produce(topic, records);
    vec![
        (1, "wrong_magic_byte"),
        (3, "unknown_schema_id"),
        (5, "schema_mismatch"),
        (7, "invalid_schema"),
    ]
}

async fn bad_records(policy: DecodeErrorPolicy) {
    let topic = new_topic(broker(), "sr-bad", 1);
    let group = unique_name("sr-bad-g");
    let reasons = produce_bad_records(&topic);
    let sr = client(vec![registry().url()], Some(Duration::from_secs(30)));
    let (l, got) = typed_listener(&topic, &group, Avro::<OrderV1>::new(&sr), policy);
    eventually("the 5 good neighbours", Duration::from_secs(60), || {
        len(&got) == 5
    })
    .await;
    let offsets: Vec<i64> = got.lock().unwrap().iter().map(|r| r.0).collect();
    assert_eq!(offsets, vec![0, 2, 4, 6, 8]);
    committed_to(&group, &topic, 9).await;
    let stats = l.stats();
    assert_eq!(stats.decode_errors, 4);
    let m = sr.metrics();
    for kind in [
        FailureKind::WrongMagicByte,
        FailureKind::UnknownSchemaId,
        FailureKind::SchemaMismatch,
        FailureKind::InvalidSchema,
    ] {
        assert_eq!(m.failures_of(kind), 1, "{kind}: {m:?}");
    }
    match policy {
        DecodeErrorPolicy::DeadLetter => {
            assert_eq!(stats.dead_lettered, 4);
            let dlt = read_dlt(&format!("{topic}.DLT"), 4);
            assert_eq!(dlt.len(), 4, "{dlt:?}");
            for ((offset, error), (want_offset, reason)) in dlt.iter().zip(&reasons) {
                assert_eq!(offset, want_offset);
                assert!(
                    error.starts_with(&format!("cannot decode value: {reason}: ")),
                    "{error}"
                );
            }
        }
        DecodeErrorPolicy::Skip => assert_eq!(stats.skipped, 4),
    }
    l.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_schema_records_go_to_the_dead_letter_topic_with_their_reason() {
    bad_records(DecodeErrorPolicy::DeadLetter).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_schema_records_are_skipped_by_policy() {
    bad_records(DecodeErrorPolicy::Skip).await;
}

/// A TCP forwarder to the registry on a port of its own, that can be cut: a
/// registry that is down and comes back, without restarting the registry.
struct Outage {
    port: u16,
    tasks: Option<tokio::task::JoinSet<()>>,
}

impl Outage {
    /// Down (nothing listens on the port) until [`Outage::up`].
    fn new() -> Outage {
        Outage {
            port: free_port(),
            tasks: None,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/apis/ccompat/v7", self.port)
    }

    async fn up(&mut self) {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port))
            .await
            .expect("bind the forwarder port");
        let target = ("127.0.0.1", registry().port());
        let mut tasks = tokio::task::JoinSet::new();
        tasks.spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                conns.spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        self.tasks = Some(tasks);
    }

    /// Close the port and every connection through it.
    async fn down(&mut self) {
        if let Some(mut tasks) = self.tasks.take() {
            tasks.abort_all();
            while tasks.join_next().await.is_some() {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_that_is_down_holds_the_partition_in_the_group_until_it_is_back() {
    let topic = new_topic(broker(), "sr-down", 1);
    let group = unique_name("sr-down-g");
    produce(
        &topic,
        (1..=3)
            .map(|i| avro_record(ORDER_V1, json!({"id": i, "item": "wait"})))
            .collect(),
    );
    let mut outage = Outage::new();
    let sr = client(vec![outage.url()], None);
    let (l, got) = typed_listener(
        &topic,
        &group,
        Avro::<OrderV1>::new(&sr),
        DecodeErrorPolicy::DeadLetter,
    );
    eventually("assigned", Duration::from_secs(30), || {
        !futures::executor::block_on(l.snapshot())
            .unwrap()
            .partitions
            .is_empty()
    })
    .await;
    let rebalances = l.stats().rebalances;
    // down for longer than the session timeout (6 s): the poll thread keeps the membership
    tokio::time::sleep(Duration::from_secs(8)).await;
    let snap = l.snapshot().await.unwrap();
    let (seen, members, retries) = (
        len(&got),
        group_members(&bootstrap(), &group),
        sr.metrics().fetch_retries,
    );
    // back up before asserting: a decode waiting for good would keep the runtime from shutting down
    outage.up().await;
    assert_eq!(seen, 0);
    assert_eq!(snap.partitions.len(), 1, "{snap:?}");
    let p0 = &snap.partitions[0];
    assert_eq!(p0.in_flight + p0.buffered, 3, "held, not lost: {snap:?}");
    assert_eq!(
        p0.state,
        switchyard_runtime::command::PartitionState::Running,
        "{snap:?}"
    );
    assert_eq!(members.0, 1, "{members:?}");
    assert!(retries >= 3, "{retries}");
    eventually(
        "processed once the registry is back",
        Duration::from_secs(30),
        || len(&got) == 3,
    )
    .await;
    committed_to(&group, &topic, 3).await;
    let stats = l.stats();
    assert_eq!(stats.rebalances, rebalances, "no rebalance while waiting");
    assert_eq!((stats.decode_errors, stats.dead_lettered), (0, 0));
    l.shutdown().await;
    outage.down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_down_past_the_budget_dead_letters_only_the_records_it_is_needed_for() {
    let topic = new_topic(broker(), "sr-gone", 1);
    let group = unique_name("sr-gone-g");
    let ids = produce(
        &topic,
        vec![
            avro_record(ORDER_V1, json!({"id": 1, "item": "cached"})),
            avro_record(
                ORDER_V2,
                json!({"id": 2, "item": "needs the registry", "quantity": 2}),
            ),
            avro_record(ORDER_V1, json!({"id": 3, "item": "cached"})),
        ],
    );
    let mut outage = Outage::new();
    outage.up().await;
    let sr = client(vec![outage.url()], Some(Duration::from_secs(2)));
    // the v1 schema is fetched ahead, then the registry goes away
    sr.prefetch([ids[0].unwrap()]).await.unwrap();
    outage.down().await;
    let (l, got) = typed_listener(
        &topic,
        &group,
        Avro::<OrderV1>::new(&sr),
        DecodeErrorPolicy::DeadLetter,
    );
    eventually(
        "the neighbours with a cached schema",
        Duration::from_secs(60),
        || len(&got) == 2,
    )
    .await;
    let offsets: Vec<i64> = got.lock().unwrap().iter().map(|r| r.0).collect();
    assert_eq!(offsets, vec![0, 2]);
    let dlt = read_dlt(&format!("{topic}.DLT"), 1);
    assert_eq!(dlt[0].0, 1);
    assert!(
        dlt[0]
            .1
            .starts_with("cannot decode value: registry_unavailable: "),
        "{dlt:?}"
    );
    assert_eq!(
        sr.metrics().failures_of(FailureKind::RegistryUnavailable),
        1
    );
    committed_to(&group, &topic, 3).await;
    l.shutdown().await;
}

/// A test CA and a server certificate for 127.0.0.1 that it signed
/// (openssl): (folder, CA certificate, server certificate, server key).
fn test_pki() -> (std::path::PathBuf, String, String, String) {
    let dir = std::env::temp_dir().join(unique_name("sr-tls"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = |name: &str| dir.join(name).display().to_string();
    std::fs::write(
        file("server.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .output()
            .expect("openssl runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let (ca, ca_key) = (file("ca.pem"), file("ca.key"));
    let (cert, key, csr) = (file("server.pem"), file("server.key"), file("server.csr"));
    openssl(
        &[
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ]
        .iter()
        .copied()
        .chain([
            "-subj",
            "/CN=switchyard test CA",
            "-keyout",
            &ca_key,
            "-out",
            &ca,
        ])
        .collect::<Vec<_>>(),
    );
    openssl(
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
        ]
        .iter()
        .copied()
        .chain(["-keyout", &key, "-out", &csr])
        .collect::<Vec<_>>(),
    );
    let ext = file("server.ext");
    openssl(
        &["x509", "-req", "-days", "2", "-CAcreateserial"]
            .iter()
            .copied()
            .chain([
                "-in", &csr, "-CA", &ca, "-CAkey", &ca_key, "-out", &cert, "-extfile", &ext,
            ])
            .collect::<Vec<_>>(),
    );
    (dir, ca, cert, key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_behind_tls_and_basic_auth() {
    let (dir, ca, cert, key) = test_pki();
    // Apicurio's Quarkus serves TLS only, and every API path needs a user
    let sr = Registry::start_with(
        "https",
        &[
            ("quarkus.http.ssl.certificate.files", &cert),
            ("quarkus.http.ssl.certificate.key-files", &key),
            ("quarkus.http.insecure-requests", "disabled"),
            ("quarkus.http.auth.basic", "true"),
            ("quarkus.security.users.embedded.enabled", "true"),
            ("quarkus.security.users.embedded.plain-text", "true"),
            ("quarkus.security.users.embedded.users.alice", "s3cret-pw"),
            ("quarkus.http.auth.permission.api.paths", "/apis/*"),
            ("quarkus.http.auth.permission.api.policy", "authenticated"),
        ],
    );
    let topic = new_topic(broker(), "sr-tls", 1);
    let group = unique_name("sr-tls-g");
    let conf = json!({"ssl.ca.location": ca, "basic.auth.user.info": "alice:s3cret-pw"});
    let ids = produce_to(
        &sr,
        conf,
        &topic,
        (1..=3)
            .map(|i| avro_record(ORDER_V1, json!({"id": i, "item": "tls"})))
            .collect(),
    );
    let id = ids[0].unwrap();
    let ca = std::fs::read(&ca).unwrap();
    let tls = TlsConfig {
        ca_pem: Some(ca),
        only_ca: true,
        identity_pem: None,
    };
    let brief = RetryBudget {
        initial_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(100),
        give_up_after: Some(Duration::from_millis(500)),
    };
    let with = |credentials: Credentials, tls: TlsConfig| {
        SchemaRegistry::new(
            RegistryConfig::new([sr.url()])
                .with_credentials(credentials)
                .with_tls(tls)
                .with_retry(brief),
        )
        .unwrap()
    };
    // a wrong password is refused (and never shows in the error); without the CA the handshake fails
    let wrong = with(Credentials::basic("alice", "not-the-pw"), tls.clone());
    let e = wrong.schema(id).await.unwrap_err();
    assert_eq!(e.kind, FailureKind::RegistryUnavailable, "{e}");
    assert!(
        e.detail.contains("401") && !e.detail.contains("not-the-pw"),
        "{e}"
    );
    let untrusted = with(
        Credentials::basic("alice", "s3cret-pw"),
        TlsConfig::default(),
    );
    let e = untrusted.schema(id).await.unwrap_err();
    assert_eq!(e.kind, FailureKind::RegistryUnavailable, "{e}");

    let client = with(Credentials::basic("alice", "s3cret-pw"), tls);
    assert!(!format!("{client:?}").contains("s3cret-pw"));
    let (l, got) = typed_listener(
        &topic,
        &group,
        Avro::<OrderV1>::new(&client),
        DecodeErrorPolicy::DeadLetter,
    );
    eventually("3 orders over TLS", Duration::from_secs(60), || {
        len(&got) == 3
    })
    .await;
    assert_eq!(client.metrics().requests_ok, 1);
    l.shutdown().await;
    sr.stop();
    let _ = std::fs::remove_dir_all(dir);
}
