//! The records on the wire against the protocol's JSON Schemas
//! (`schemas/`, docs/protocol.md): two running instances (slots blue and
//! green) with control-plane agents, driven by `switchyard ctl`, an instance
//! override over the HTTP admin API, a write of slot ownership through the
//! store, and a record the agents cannot read; then every record of the
//! control topic and of the status topic, read raw from Apache Kafka, is
//! validated.

use std::path::Path;

use switchyard_control::kafka_clients::{deliver, producer, read_to_end};
use switchyard_control::Pause;

use super::*;

fn validator(name: &str) -> jsonschema::Validator {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("schemas")
        .join(name);
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    jsonschema::draft202012::new(&schema).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[track_caller]
fn assert_valid(v: &jsonschema::Validator, what: &str, doc: &serde_json::Value) {
    let errors: Vec<String> = v
        .iter_errors(doc)
        .map(|e| format!("{e} (at `{}`)", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{what} does not match its schema: {errors:#?}\n{doc:#}"
    );
}

/// Every record of partition 0 of `topic`: (key, value).
fn records(topic: &str) -> Vec<(String, Option<Vec<u8>>)> {
    let mut out = Vec::new();
    read_to_end(bootstrap(), topic, |k, v| {
        out.push((
            String::from_utf8_lossy(k.unwrap_or_default()).into_owned(),
            v.map(<[u8]>::to_vec),
        ))
    })
    .unwrap();
    out
}

#[test]
fn control_and_status_records_written_by_running_instances_match_the_protocol_schemas() {
    let b = bootstrap();
    let plane = Plane::new("proto");
    let topic = new_topic(broker(), "proto", 2);
    let group = unique_name("proto-g");
    let logs = [log_path("proto-blue"), log_path("proto-green")];
    SeqProducer::new(&b).send(&topic, None, 10, |s| s.to_string());
    let mut blue = plane.probe(
        "proto-blue",
        &group,
        &topic,
        &logs[0],
        &["--http", "127.0.0.1:0", "--group-per-slot"],
    );
    let addr = blue
        .wait_for_line(|l| l.starts_with("HTTP "), WAIT)
        .unwrap()[5..]
        .to_string();
    let mut green = plane.probe(
        "proto-green",
        &group,
        &topic,
        &logs[1],
        &["--slot", "green", "--group-per-slot"],
    );
    let tail = plane.tail();
    wait_until("both instances report their partitions", WAIT, || {
        let l = live(&tail, &plane.app);
        l.len() == 2 && l.iter().all(|s| s.partitions().count() == 2)
    });

    // a partition pause with every field a command sets, and a topic pause
    let (code, out) = plane.ctl(
        "pause",
        &[
            "--listener",
            "probe",
            "--topic",
            &topic,
            "--partition",
            "1",
            "--reason",
            "incident 42",
            "--expires-in-ms",
            "600000",
        ],
    );
    assert_eq!(code, 0, "{out}");
    // an instance override on blue, reported in its status
    assert_eq!(
        http(
            &addr,
            "POST",
            "/bindings/probe?scope=instance",
            None,
            r#"{"state":"PAUSED"}"#
        )
        .0,
        200
    );
    // slot ownership, handoff offsets and bookkeeping, as the deployment
    // driver writes them
    let store = KafkaStore::new(&b, &plane.control).unwrap();
    let owned = store
        .write(&plane.app, None, Some("deploy"), &|s| {
            let owners = s.owners.entry("probe".into()).or_default();
            owners.insert(format!("{topic}-0"), "blue".into());
            owners.insert(format!("{topic}-1"), "blue".into());
            let handoff = s.handoff.entry("probe".into()).or_default();
            handoff.insert(format!("{topic}-0"), 5);
            let base = s.handoff_base.entry("probe".into()).or_default();
            base.insert(format!("{topic}-0"), -1);
            s.deploy.insert("previous".into(), "green".into());
            s.add_pause(Pause::topic("probe", "other-topic"))
        })
        .unwrap();
    wait_until("both instances applied the ownership", WAIT, || {
        let l = live(&tail, &plane.app);
        l.len() == 2
            && l.iter().all(|s| s.applied_version == owned.version)
            && l.iter().any(|s| !s.overrides.is_empty())
    });
    // a record no agent can read: both fail closed and say why
    let raw = producer(&b).unwrap();
    raw.send(
        rdkafka::producer::BaseRecord::to(&plane.control)
            .key(&plane.app)
            .payload("{\"schema\": 99}"),
    )
    .map_err(|(e, _)| e)
    .unwrap();
    deliver(&raw).unwrap();
    wait_until("both instances report the unreadable state", WAIT, || {
        let l = live(&tail, &plane.app);
        l.len() == 2 && l.iter().all(|s| s.unreadable.is_some())
    });
    // a clean stop leaves a tombstone
    green.terminate();
    green.wait_exit(WAIT).expect("green exits");
    blue.terminate();
    blue.wait_exit(WAIT).expect("blue exits");

    let desired = validator("desired-state.schema.json");
    let control = records(&plane.control);
    let documents: Vec<serde_json::Value> = control
        .iter()
        .filter_map(|(key, v)| {
            let v = v.as_deref()?;
            (v != b"{\"schema\": 99}").then(|| {
                assert_eq!(key, &plane.app);
                serde_json::from_slice(v).unwrap()
            })
        })
        .collect();
    assert_eq!(documents.len(), 2, "{documents:#?}");
    for d in &documents {
        assert_valid(&desired, "a control record", d);
    }
    let timed = &documents[0]["pauses"][0];
    assert_eq!(
        (timed["partition"].as_i64(), timed["reason"].as_str()),
        (Some(1), Some("incident 42")),
        "{timed}"
    );
    assert!(timed["expires_at_ms"].is_i64(), "{timed}");
    assert_eq!(documents[1]["deploy"]["previous"], "green");

    let status = validator("status.schema.json");
    let statuses = records(&plane.status);
    let mut tombstones = Vec::new();
    let mut seen_override = false;
    let mut seen_paused = false;
    let mut seen_unreadable = false;
    for (key, v) in &statuses {
        let Some(v) = v else {
            tombstones.push(key.clone());
            continue;
        };
        let doc: serde_json::Value = serde_json::from_slice(v).unwrap();
        assert_valid(&status, "a status record", &doc);
        assert_eq!(doc["instance"], key.as_str(), "the key is the instance");
        seen_override |= doc["overrides"]["probe"] == "paused";
        seen_paused |= doc["listeners"][0]["partitions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["state"] == "paused");
        seen_unreadable |= doc["unreadable"].is_string() && doc["applied_version"] == 0;
    }
    eprintln!(
        "{} control records, {} status records validated",
        control.len(),
        statuses.len()
    );
    assert!(
        seen_override && seen_paused && seen_unreadable,
        "{statuses:?}"
    );
    tombstones.sort();
    assert_eq!(
        tombstones,
        ["proto-blue", "proto-green"],
        "a tombstone per clean stop"
    );
}
