//! The JSON Schemas of the control protocol (`schemas/` at the repository
//! root, docs/protocol.md) against the code:
//!
//! - documents and statuses this build writes, minimal and with every
//!   optional field set, match their schema, and the schema describes
//!   exactly the fields the code writes (no field missing on either side);
//! - the records a real writer puts on a control topic and a status topic
//!   (librdkafka's mock cluster) match;
//! - the schema and the reader agree on what is readable: every malformed
//!   document below is refused by both, every accepted one read by both;
//! - the watched file, in JSON and TOML, matches its own schema;
//! - every JSON example in docs/protocol.md matches its schema and is read
//!   by the code.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use rdkafka::mocking::MockCluster;
use serde_json::{json, Value};
use switchyard_control::command::{Action, BindingCommand};
use switchyard_control::file_source;
use switchyard_control::kafka_clients::read_to_end;
use switchyard_control::kafka_store::KafkaStore;
use switchyard_control::log::{decode_record, next_write, AppState};
use switchyard_control::model::{DesiredState, Pause, SCHEMA_VERSION};
use switchyard_control::status::{InstanceStatus, ListenerReport, PartitionReport};
use switchyard_control::status_topic::StatusPublisher;
use switchyard_control::targets::Override;
use switchyard_control::Store;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn schema_json(name: &str) -> Value {
    let path = root().join("schemas").join(name);
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A validator of `schemas/<name>`, itself checked against draft 2020-12.
fn validator(name: &str) -> jsonschema::Validator {
    let schema = schema_json(name);
    assert_eq!(
        schema["$schema"], "https://json-schema.org/draft/2020-12/schema",
        "{name}"
    );
    if let Err(e) = jsonschema::meta::validate(&schema) {
        panic!("{name} is not a valid JSON Schema: {e}");
    }
    jsonschema::draft202012::new(&schema).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn errors(v: &jsonschema::Validator, doc: &Value) -> Vec<String> {
    v.iter_errors(doc)
        .map(|e| format!("{} (at `{}`)", e, e.instance_path()))
        .collect()
}

#[track_caller]
fn assert_valid(v: &jsonschema::Validator, what: &str, doc: &Value) {
    let e = errors(v, doc);
    assert!(
        e.is_empty(),
        "{what} does not match its schema: {e:#?}\n{doc:#}"
    );
}

const NOW: i64 = 1_763_740_000_000;

/// A document as a writer of this build makes it, every optional field set:
/// pauses of a listener, a topic and a partition (reason, issuer, expiry),
/// owners, handoff offsets and their scope, joined slots, deployment
/// bookkeeping, and fields of a newer build (in the document and in a
/// pause) carried forward.
fn full_state() -> DesiredState {
    let newer = json!({
        "schema": 1, "app": "orders", "version": 6, "prev_version": 5,
        "pauses": [{"listener": "audit", "since_ms": NOW - 5, "drain": "fast"}],
        "issuer": "cli:bob", "written_at_ms": NOW - 5,
        "rollout": {"step": 2}
    });
    let current = match decode_record(Some(b"orders"), Some(newer.to_string().as_bytes())) {
        Ok((_, Some(AppState::Valid(s)))) => *s,
        other => panic!("{other:?}"),
    };
    next_write(&current, Some(6), Some("deploy:green"), NOW, &|s| {
        let mut c = BindingCommand::new("orders-in", Action::Pause);
        c.topic = Some("orders".into());
        c.partition = Some(3);
        c.reason = Some("incident 42".into());
        c.issuer = Some("cli:alice".into());
        c.expires_in_ms = Some(600_000);
        c.apply(s, NOW)?;
        let mut c = BindingCommand::new("orders-in", Action::Pause);
        c.topic = Some("refunds".into());
        c.apply(s, NOW)?;
        let owners = s.owners.entry("orders-in".into()).or_default();
        owners.insert("orders-3".into(), "green".into());
        owners.insert("orders-4".into(), String::new());
        owners.insert("refunds".into(), "blue".into());
        s.handoff
            .entry("orders-in".into())
            .or_default()
            .insert("orders-3".into(), 1234);
        let base = s.handoff_base.entry("orders-in".into()).or_default();
        base.insert("orders-3".into(), -1);
        s.handoff_done
            .entry("orders-in".into())
            .or_default()
            .insert("orders-3".into(), vec![1236, 1237]);
        s.joined.insert("audit".into(), vec!["blue".into()]);
        s.deploy.insert("previous".into(), "blue".into());
        s.deploy.insert("canary".into(), "green".into());
        Ok(())
    })
    .unwrap()
}

/// A status with every optional field set.
fn full_status() -> InstanceStatus {
    InstanceStatus {
        instance: "orders-blue-7d9f-abcde".into(),
        slot: "blue".into(),
        app: "orders".into(),
        listeners: vec![
            ListenerReport {
                name: "orders-in".into(),
                partitions: vec![
                    PartitionReport {
                        topic: "orders".into(),
                        partition: 3,
                        state: "draining".into(),
                        in_flight: 2,
                        committed: Some(1234),
                        reason: Some("commit failed: broker unavailable".into()),
                    },
                    PartitionReport {
                        topic: "orders".into(),
                        partition: 4,
                        state: "running".into(),
                        in_flight: 0,
                        committed: None,
                        reason: None,
                    },
                ],
                paused_targets: vec!["orders-3".into(), "refunds".into(), "*".into()],
                group: Some("orders-blue".into()),
                joined: Some(true),
            },
            ListenerReport {
                name: "audit".into(),
                partitions: vec![],
                paused_targets: vec![],
                group: None,
                joined: None,
            },
        ],
        applied_version: 0,
        overrides: BTreeMap::from([("orders-in".to_string(), Override::Paused)]),
        heartbeat_ms: 5000,
        timestamp_ms: NOW,
        unreadable: Some("control record `orders`: schema 2 is newer than 1".into()),
    }
}

/// The keys of every object at `path` in `doc` (`[]` for each array level).
fn keys_at(doc: &Value, path: &[&str]) -> BTreeSet<String> {
    match path.split_first() {
        None => doc
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default(),
        Some((&"[]", rest)) => doc
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|d| keys_at(d, rest))
            .collect(),
        Some((k, rest)) => keys_at(&doc[*k], rest),
    }
}

fn properties(schema: &Value, pointer: &str) -> BTreeSet<String> {
    schema
        .pointer(pointer)
        .and_then(Value::as_object)
        .unwrap_or_else(|| panic!("no {pointer}"))
        .keys()
        .cloned()
        .collect()
}

#[test]
fn desired_state_documents_this_build_writes_match_the_schema() {
    let v = validator("desired-state.schema.json");
    let minimal = DesiredState::new("orders").next(None, NOW);
    assert_valid(
        &v,
        "a minimal document",
        &serde_json::to_value(&minimal).unwrap(),
    );
    let full = full_state();
    let doc: Value = serde_json::from_slice(&full.encode()).unwrap();
    assert_valid(&v, "a document with every field", &doc);
    // the schema describes exactly the fields the code writes; only the
    // newer build's fields are beyond it
    let schema = schema_json("desired-state.schema.json");
    let mut written = keys_at(&doc, &[]);
    assert!(written.remove("rollout"), "unknown field carried: {doc}");
    assert_eq!(
        written,
        properties(&schema, "/properties"),
        "document fields"
    );
    let mut written = keys_at(&doc, &["pauses", "[]"]);
    assert!(
        written.remove("drain"),
        "unknown pause field carried: {doc}"
    );
    assert_eq!(
        written,
        properties(&schema, "/$defs/pause/properties"),
        "pause fields"
    );
    // the pauses the code made: a listener, a topic, a partition
    let pauses = doc["pauses"].as_array().unwrap();
    assert_eq!(pauses.len(), 3, "{doc}");
    assert!(pauses
        .iter()
        .any(|p| p["partition"] == 3 && p["expires_at_ms"] == NOW + 600_000));
}

#[test]
fn status_records_this_build_writes_match_the_schema() {
    let v = validator("status.schema.json");
    let full = full_status();
    let doc = serde_json::to_value(&full).unwrap();
    assert_valid(&v, "a status with every field", &doc);
    let schema = schema_json("status.schema.json");
    assert_eq!(keys_at(&doc, &[]), properties(&schema, "/properties"));
    assert_eq!(
        keys_at(&doc, &["listeners", "[]"]),
        properties(&schema, "/$defs/listener/properties")
    );
    assert_eq!(
        keys_at(&doc, &["listeners", "[]", "partitions", "[]"]),
        properties(&schema, "/$defs/partition/properties")
    );
    let mut minimal = full.clone();
    minimal.unreadable = None;
    minimal.listeners.truncate(1);
    minimal.listeners[0].joined = None;
    minimal.overrides.clear();
    for p in &mut minimal.listeners[0].partitions {
        p.reason = None;
    }
    for state in ["running", "paused", "draining", "stopped"] {
        minimal.listeners[0].partitions[0].state = state.into();
        assert_valid(&v, state, &serde_json::to_value(&minimal).unwrap());
    }
    // a status of an older instance with a `resumed` override
    minimal.overrides.insert("audit".into(), Override::Resumed);
    assert_valid(&v, "resumed", &serde_json::to_value(&minimal).unwrap());
}

/// The records real writers put on the topics: a `KafkaStore` (fenced
/// transactional writes, a tombstone written by hand) and a
/// `StatusPublisher`, read back raw.
#[test]
fn records_written_to_a_control_and_a_status_topic_match_the_schemas() {
    let cluster = MockCluster::new(1).unwrap();
    let b = cluster.bootstrap_servers();
    cluster.create_topic("ctl", 1, 1).unwrap();
    cluster.create_topic("st", 1, 1).unwrap();
    let store = KafkaStore::new(&b, "ctl").unwrap();
    let full = full_state();
    store
        .write("orders", Some(0), Some("test"), &|s| {
            s.add_pause(Pause::listener("orders-in"))
        })
        .unwrap();
    store
        .write("orders", Some(1), Some("test"), &|s| {
            let keep = (s.version, s.prev_version, s.issuer.clone(), s.written_at_ms);
            *s = full.clone();
            (s.version, s.prev_version, s.issuer, s.written_at_ms) = keep;
            Ok(())
        })
        .unwrap();
    store
        .write("refunds", None, None, &|s| {
            let mut c = BindingCommand::new("refunds-in", Action::Pause);
            c.expires_in_ms = Some(1000);
            c.apply(s, NOW)
        })
        .unwrap();
    let publisher = StatusPublisher::new(&b, "st").unwrap();
    publisher.publish(&full_status()).unwrap();
    publisher.remove("orders-blue-7d9f-abcde").unwrap();

    let desired = validator("desired-state.schema.json");
    let mut records = Vec::new();
    read_to_end(&b, "ctl", |k, p| {
        records.push((k.map(<[u8]>::to_vec), p.map(<[u8]>::to_vec)))
    })
    .unwrap();
    assert_eq!(records.len(), 3, "three writes");
    for (key, payload) in &records {
        let doc: Value = serde_json::from_slice(payload.as_deref().unwrap()).unwrap();
        assert_valid(&desired, "a control record", &doc);
        assert_eq!(
            key.as_deref(),
            doc["app"].as_str().map(str::as_bytes),
            "key is app"
        );
    }
    let status = validator("status.schema.json");
    let mut records = Vec::new();
    read_to_end(&b, "st", |k, p| {
        records.push((k.map(<[u8]>::to_vec), p.map(<[u8]>::to_vec)))
    })
    .unwrap();
    assert_eq!(records.len(), 2, "a status and a tombstone");
    let doc: Value = serde_json::from_slice(records[0].1.as_deref().unwrap()).unwrap();
    assert_valid(&status, "a status record", &doc);
    assert_eq!(
        records[0].0.as_deref(),
        Some(&b"orders-blue-7d9f-abcde"[..])
    );
    assert_eq!(records[1].1, None, "a tombstone on a clean stop");
}

/// Is `doc` read as a valid document of app `orders` by this build?
fn readable(doc: &Value) -> bool {
    matches!(
        decode_record(Some(b"orders"), Some(doc.to_string().as_bytes())),
        Ok((_, Some(AppState::Valid(_))))
    )
}

/// The schema accepts what the reader reads and refuses what it finds
/// unreadable (except the key, which a schema of the value cannot see).
#[test]
fn the_schema_and_the_reader_agree_on_what_is_readable() {
    let v = validator("desired-state.schema.json");
    let base = json!({"schema": 1, "app": "orders", "version": 1, "prev_version": 0});
    let with = |f: &dyn Fn(&mut Value)| {
        let mut d = base.clone();
        f(&mut d);
        d
    };
    let pause = |p: Value| with(&|d| d["pauses"] = json!([p]));
    let accepted = [
        ("the four required fields", base.clone()),
        ("schema 0", with(&|d| d["schema"] = json!(0))),
        ("issuer null", with(&|d| d["issuer"] = Value::Null)),
        (
            "the highest version",
            with(&|d| d["version"] = json!(u64::MAX)),
        ),
        (
            "fields of a newer build",
            with(&|d| d["rollout"] = json!({"step": 2})),
        ),
        (
            "an empty owner (nobody)",
            with(&|d| d["owners"] = json!({"l": {"t-0": ""}})),
        ),
        ("a listener pause", pause(json!({"listener": "l"}))),
        (
            "null optional pause fields",
            pause(json!({"listener": "l", "topic": null, "partition": null,
                         "reason": null, "issuer": null, "expires_at_ms": null})),
        ),
        (
            "a partition pause",
            pause(json!({"listener": "l", "topic": "t", "partition": 0})),
        ),
        (
            "a pause field of a newer build",
            pause(json!({"listener": "l", "drain": "fast"})),
        ),
        (
            "a negative expiry",
            pause(json!({"listener": "l", "expires_at_ms": -1})),
        ),
    ];
    for (what, doc) in &accepted {
        assert!(readable(doc), "{what}: the reader refuses {doc}");
        assert_valid(&v, what, doc);
    }
    let refused = [
        ("not an object", json!([1])),
        (
            "no schema",
            with(&|d| {
                d.as_object_mut()
                    .unwrap()
                    .remove("schema")
                    .map(drop)
                    .unwrap()
            }),
        ),
        (
            "a newer schema",
            with(&|d| d["schema"] = json!(SCHEMA_VERSION + 1)),
        ),
        (
            "no app",
            with(&|d| d.as_object_mut().unwrap().remove("app").map(drop).unwrap()),
        ),
        ("a blank app", with(&|d| d["app"] = json!(" \t"))),
        ("version 0", with(&|d| d["version"] = json!(0))),
        ("a negative version", with(&|d| d["version"] = json!(-1))),
        (
            "a version beyond u64",
            with(&|d| d["version"] = json!(1e20)),
        ),
        ("a version as text", with(&|d| d["version"] = json!("1"))),
        (
            "no prev_version",
            with(&|d| {
                d.as_object_mut()
                    .unwrap()
                    .remove("prev_version")
                    .map(drop)
                    .unwrap()
            }),
        ),
        ("pauses null", with(&|d| d["pauses"] = Value::Null)),
        ("owners null", with(&|d| d["owners"] = Value::Null)),
        (
            "an owner slot not text",
            with(&|d| d["owners"] = json!({"l": {"t-0": 5}})),
        ),
        (
            "a handoff offset not an integer",
            with(&|d| d["handoff"] = json!({"l": {"t-0": 1.5}})),
        ),
        (
            "joined not a list",
            with(&|d| d["joined"] = json!({"l": "blue"})),
        ),
        (
            "deploy not text",
            with(&|d| d["deploy"] = json!({"previous": 1})),
        ),
        ("issuer not text", with(&|d| d["issuer"] = json!(5))),
        (
            "written_at_ms not an integer",
            with(&|d| d["written_at_ms"] = json!(1.5)),
        ),
        ("a pause without a listener", pause(json!({"topic": "t"}))),
        ("a blank listener", pause(json!({"listener": " "}))),
        (
            "a blank topic",
            pause(json!({"listener": "l", "topic": ""})),
        ),
        (
            "a partition without a topic",
            pause(json!({"listener": "l", "partition": 1})),
        ),
        (
            "a negative partition",
            pause(json!({"listener": "l", "topic": "t", "partition": -1})),
        ),
        (
            "a partition beyond i32",
            pause(json!({"listener": "l", "topic": "t", "partition": 1u64 << 31})),
        ),
        (
            "since_ms not an integer",
            pause(json!({"listener": "l", "since_ms": "0"})),
        ),
    ];
    for (what, doc) in &refused {
        assert!(!readable(doc), "{what}: the reader reads {doc}");
        assert!(
            !v.is_valid(doc),
            "{what}: the schema accepts what the reader refuses: {doc}"
        );
    }
}

#[test]
fn the_watched_file_matches_its_schema_in_json_and_toml() {
    let v = validator("desired-file.schema.json");
    // the pause is the same in the file and in the document
    assert_eq!(
        schema_json("desired-file.schema.json")["$defs"]["pause"],
        schema_json("desired-state.schema.json")["$defs"]["pause"]
    );
    let toml_text = r#"
[[pauses]]
listener = "orders-in"
topic = "orders"
partition = 3
reason = "incident 42"
issuer = "oncall"
expires_at_ms = 1763740600000

[[pauses]]
listener = "audit"
"#;
    let from_toml: toml::Value = toml::from_str(toml_text).unwrap();
    let doc = serde_json::to_value(&from_toml).unwrap();
    assert_valid(&v, "the TOML file", &doc);
    let pauses = file_source::parse(Path::new("pauses.toml"), toml_text).unwrap();
    assert_eq!(pauses.len(), 2);
    // the file the code would write for those pauses (JSON)
    let json_doc = json!({ "pauses": pauses });
    assert_valid(&v, "the JSON file", &json_doc);
    let json_text = json_doc.to_string();
    assert_eq!(
        file_source::parse(Path::new("pauses.json"), &json_text).unwrap(),
        pauses
    );
    assert_valid(&v, "an empty file", &json!({}));
    for (what, bad) in [
        (
            "a top-level field besides pauses",
            json!({"pauses": [], "app": "orders"}),
        ),
        ("pauses not a list", json!({"pauses": 3})),
        (
            "a partition without a topic",
            json!({"pauses": [{"listener": "l", "partition": 1}]}),
        ),
    ] {
        assert!(
            file_source::parse(Path::new("p.json"), &bad.to_string()).is_err(),
            "{what}: the file source reads it"
        );
        assert!(!v.is_valid(&bad), "{what}: the schema accepts it");
    }
}

/// Every ```json block of docs/protocol.md: a desired-state document (it
/// has `schema`), a status (`instance`) or a watched file (`pauses` only).
#[test]
fn the_examples_of_the_protocol_document_match_the_schemas() {
    let text = std::fs::read_to_string(root().join("docs/protocol.md")).unwrap();
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        match (&mut current, line.trim()) {
            (None, "```json") => current = Some(String::new()),
            (Some(b), "```") => {
                blocks.push(std::mem::take(b));
                current = None;
            }
            (Some(b), _) => {
                b.push_str(line);
                b.push('\n');
            }
            _ => {}
        }
    }
    let (desired, status, file) = (
        validator("desired-state.schema.json"),
        validator("status.schema.json"),
        validator("desired-file.schema.json"),
    );
    let mut seen = BTreeSet::new();
    for block in &blocks {
        let doc: Value =
            serde_json::from_str(block).unwrap_or_else(|e| panic!("{e}: not JSON:\n{block}"));
        if doc.get("schema").is_some() {
            assert_valid(&desired, "a desired-state example", &doc);
            let app = doc["app"].as_str().unwrap().as_bytes();
            let read = decode_record(Some(app), Some(block.as_bytes()));
            assert!(
                matches!(read, Ok((_, Some(AppState::Valid(_))))),
                "{read:?}"
            );
            seen.insert("desired");
        } else if doc.get("instance").is_some() {
            assert_valid(&status, "a status example", &doc);
            serde_json::from_value::<InstanceStatus>(doc).unwrap();
            seen.insert("status");
        } else if doc.get("pauses").is_some() {
            assert_valid(&file, "a watched-file example", &doc);
            file_source::parse(Path::new("p.json"), block).unwrap();
            seen.insert("file");
        }
    }
    assert_eq!(
        seen,
        BTreeSet::from(["desired", "status", "file"]),
        "docs/protocol.md shows an example of each record"
    );
}
