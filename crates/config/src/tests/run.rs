//! `RunConfig` and `DeliveryConfig`: the file of `switchyard run`.

use std::time::Duration;

use super::assert_mentions;
use crate::{
    ConfigError, ControlStoreConfig, DeliveryFailure, DeliveryMode, DeliveryOrdering,
    PayloadFormat, RunConfig,
};

const FULL: &str = r#"
[kafka]
"bootstrap.servers" = "kafka-1:9093,kafka-2:9093"
"security.protocol" = "SASL_SSL"
"sasl.mechanism" = "SCRAM-SHA-512"
"sasl.username" = "orders"
"sasl.password" = "pa55word"

[instance]
application = "orders-app"
instance_id = "orders-1"
slot = "blue"
control = { kafka = "orders-app.control" }
status_topic = "orders-app.status"
admin = "0.0.0.0:8080"
shutdown_timeout = "45s"

[consumer]
session_timeout_ms = 6000
heartbeat_interval_ms = 1000

[[listener]]
name = "orders"
topics = ["orders"]
[listener.delivery]
mode = "http"
url = "https://app:8443/records"
batch = 100
timeout = "2s"
workers = 8
ordering = "key"
attempts = 5
backoff = "50ms"
max_backoff = "1s"
on_failure = "skip"
value = "json"

[[listener]]
name = "audit"
topics = ["audit"]
group_id = "audit-group"
[listener.delivery]
mode = "exec"
command = ["python3", "-u", "audit.py"]
"#;

fn parse_err(text: &str) -> ConfigError {
    RunConfig::from_toml_str(text).expect_err("invalid")
}

fn with_delivery(delivery: &str) -> String {
    format!(
        "[instance]\napplication = \"a\"\n[[listener]]\nname = \"l\"\ntopics = [\"t\"]\n[listener.delivery]\n{delivery}\n"
    )
}

#[test]
fn a_full_file_parses() {
    let run = RunConfig::from_toml_str(FULL).unwrap();
    assert_eq!(run.kafka.bootstrap(), "kafka-1:9093,kafka-2:9093");
    assert_eq!(run.consumer.bootstrap_servers, "kafka-1:9093,kafka-2:9093");
    assert_eq!(
        run.consumer.connection().get("sasl.username"),
        Some("orders")
    );
    assert_eq!(run.consumer.group_id.as_deref(), Some("orders-app"));
    assert_eq!(run.instance.shutdown_timeout, Duration::from_secs(45));
    assert_eq!(run.instance.admin.unwrap().port(), 8080);
    assert_eq!(
        run.instance.control,
        Some(ControlStoreConfig::Kafka("orders-app.control".into()))
    );
    let d = run.listeners[0].delivery.as_ref().unwrap();
    assert_eq!(d.mode, DeliveryMode::Http);
    assert_eq!((d.batch, d.workers, d.attempts), (100, 8, 5));
    assert_eq!(d.ordering, DeliveryOrdering::Key);
    assert_eq!(d.on_failure, DeliveryFailure::Skip);
    assert_eq!(d.value, PayloadFormat::Json);
    assert_eq!(d.timeout(), Duration::from_secs(2));
    assert_eq!(d.backoff, Duration::from_millis(50));
    let e = run.listeners[1].delivery.as_ref().unwrap();
    assert_eq!(e.mode, DeliveryMode::Exec);
    assert_eq!(e.command, ["python3", "-u", "audit.py"]);
    assert_eq!(e.timeout(), Duration::from_secs(30));
    assert_eq!(e.ordering, DeliveryOrdering::Partition);
    assert_eq!(e.on_failure, DeliveryFailure::DeadLetter);
}

#[test]
fn secrets_stay_out_of_debug_output() {
    let text = FULL.replace(
        "control = { kafka = \"orders-app.control\" }",
        "control = { redis = \"redis://u:r3dis@redis:6379/0\" }",
    );
    let text = text.replace(
        "https://app:8443/records",
        "https://svc:h77p@app:8443/records",
    );
    let run = RunConfig::from_toml_str(&text).unwrap();
    let shown = format!("{run:?}");
    for secret in ["pa55word", "r3dis", "h77p"] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
}

#[test]
fn kafka_values_resolve_environment_references_and_errors_hide_them() {
    std::env::set_var("SWITCHYARD_TEST_RUN_PASSWORD", "from-env");
    let run = RunConfig::from_toml_str(
        "[kafka]\n\"sasl.password\" = \"${env:SWITCHYARD_TEST_RUN_PASSWORD}\"\n[instance]\napplication = \"a\"\n[[listener]]\nname = \"l\"\ntopics = [\"t\"]\ndelivery = { mode = \"exec\", command = [\"cat\"] }\n",
    )
    .unwrap();
    assert_eq!(run.kafka.get("sasl.password"), Some("from-env"));
    let err = parse_err(
        "[kafka]\n\"sasl.password\" = \"${env:SWITCHYARD_TEST_RUN_NOT_SET}\"\n[instance]\napplication = \"a\"\n",
    );
    assert_mentions(&err, &["sasl.password", "SWITCHYARD_TEST_RUN_NOT_SET"]);
    let err =
        parse_err("[kafka]\n\"no.such.property\" = \"s3cret\"\n[instance]\napplication = \"a\"\n");
    assert_mentions(&err, &["no.such.property"]);
}

#[test]
fn the_bootstrap_servers_of_the_consumer_table_apply_without_a_kafka_table() {
    let run = RunConfig::from_toml_str(&format!(
        "[consumer]\nbootstrap_servers = \"k:1\"\n{}",
        with_delivery("mode = \"exec\"\ncommand = [\"cat\"]")
    ))
    .unwrap();
    assert_eq!(run.kafka.bootstrap(), "k:1");
}

#[test]
fn delivery_errors_name_the_listener_and_the_key() {
    for (delivery, key) in [
        ("mode = \"http\"", "delivery.url"),
        ("mode = \"http\"\nurl = \"ftp://x/y\"", "delivery.url"),
        ("mode = \"http\"\nurl = \"http:///y\"", "delivery.url"),
        (
            "mode = \"http\"\nurl = \"http://x/\"\nbatch = 0",
            "delivery.batch",
        ),
        (
            "mode = \"http\"\nurl = \"http://x/\"\nworkers = 0",
            "delivery.workers",
        ),
        (
            "mode = \"http\"\nurl = \"http://x/\"\nattempts = 0",
            "delivery.attempts",
        ),
        (
            "mode = \"http\"\nurl = \"http://x/\"\ntimeout = \"0s\"",
            "delivery.timeout",
        ),
        (
            "mode = \"http\"\nurl = \"http://x/\"\nbackoff = \"10s\"\nmax_backoff = \"1s\"",
            "delivery.backoff",
        ),
        (
            "mode = \"http\"\nurl = \"http://x/\"\ncommand = [\"a\"]",
            "delivery.command",
        ),
        ("mode = \"exec\"", "delivery.command"),
        ("mode = \"exec\"\ncommand = [\"\"]", "delivery.command"),
        (
            "mode = \"exec\"\ncommand = [\"a\"]\nbatch = 10",
            "delivery.batch",
        ),
        (
            "mode = \"exec\"\ncommand = [\"a\"]\nurl = \"http://x/\"",
            "delivery.url",
        ),
    ] {
        let err = parse_err(&with_delivery(delivery));
        assert!(
            matches!(err, ConfigError::Listener { .. }),
            "{delivery}: {err}"
        );
        assert_mentions(&err, &["listener `l`", key]);
    }
}

#[test]
fn a_password_in_a_refused_url_is_not_shown() {
    let err = parse_err(&with_delivery(
        "mode = \"http\"\nurl = \"ftp://u:s3cret@x/y\"",
    ));
    assert!(!err.to_string().contains("s3cret"), "{err}");
}

#[test]
fn type_errors_name_the_key() {
    for (delivery, key) in [
        ("mode = \"smtp\"", "listener.delivery.mode"),
        (
            "mode = \"exec\"\ncommand = [\"a\"]\ntimeout = 30",
            "listener.delivery.timeout",
        ),
        (
            "mode = \"exec\"\ncommand = [\"a\"]\ntimeout = \"30 parsecs\"",
            "listener.delivery.timeout",
        ),
        (
            "mode = \"exec\"\ncommand = [\"a\"]\nordering = \"random\"",
            "listener.delivery.ordering",
        ),
        (
            "mode = \"exec\"\ncommand = [\"a\"]\non_failure = \"retry\"",
            "listener.delivery.on_failure",
        ),
        ("mode = \"exec\"\ncommand = [\"a\"]\nretries = 3", "retries"),
    ] {
        let err = parse_err(&with_delivery(delivery));
        assert!(
            matches!(err, ConfigError::Parse { .. }),
            "{delivery}: {err}"
        );
        assert_mentions(&err, &[key]);
    }
}

#[test]
fn instance_errors_name_the_key() {
    let listener = "[[listener]]\nname = \"l\"\ntopics = [\"t\"]\ndelivery = { mode = \"exec\", command = [\"cat\"] }\n";
    for (instance, key) in [
        ("application = \" \"", "instance.application"),
        ("application = \"a\"\nslot = \"\"", "instance.slot"),
        (
            "application = \"a\"\nshutdown_timeout = \"0s\"",
            "instance.shutdown_timeout",
        ),
        (
            "application = \"a\"\nshutdown_timeout = \"soon\"",
            "instance.shutdown_timeout",
        ),
        (
            "application = \"a\"\nadmin = \"everywhere\"",
            "instance.admin",
        ),
        (
            "application = \"a\"\ncontrol = { kafka = \"\" }",
            "instance.control.kafka",
        ),
        (
            "application = \"a\"\ncontrol = { redis = \"localhost:6379\" }",
            "instance.control.redis",
        ),
        (
            "application = \"a\"\ncontrol = { zookeeper = \"z\" }",
            "zookeeper",
        ),
        ("applicaton = \"a\"", "applicaton"),
    ] {
        let err = parse_err(&format!("[instance]\n{instance}\n{listener}"));
        assert_mentions(&err, &[key]);
    }
}

#[test]
fn a_run_needs_listeners_with_a_delivery_and_distinct_names() {
    let err = parse_err("[instance]\napplication = \"a\"\n");
    assert_mentions(&err, &["listener"]);
    let err = parse_err(
        "[instance]\napplication = \"a\"\n[[listener]]\nname = \"l\"\ntopics = [\"t\"]\n",
    );
    assert_mentions(&err, &["listener `l`", "[listener.delivery]"]);
    let one = "[[listener]]\nname = \"l\"\ntopics = [\"t\"]\ndelivery = { mode = \"exec\", command = [\"cat\"] }\n";
    let err = parse_err(&format!("[instance]\napplication = \"a\"\n{one}{one}"));
    assert_mentions(&err, &["listener `l`", "same name"]);
}

#[test]
fn the_instance_id_comes_from_the_flag_the_file_or_the_environment() {
    let run =
        RunConfig::from_toml_str(&with_delivery("mode = \"exec\"\ncommand = [\"cat\"]")).unwrap();
    let env = |k: &str| match k {
        "POD_NAME" => Some("pod-1".to_string()),
        "HOSTNAME" => Some("host-1".to_string()),
        _ => None,
    };
    assert_eq!(
        run.instance.resolve_instance_id(None, env).unwrap(),
        "pod-1"
    );
    assert_eq!(
        run.instance.resolve_instance_id(Some("flag"), env).unwrap(),
        "flag"
    );
    let hostname_only = |k: &str| (k == "HOSTNAME").then(|| "host-1".to_string());
    assert_eq!(
        run.instance
            .resolve_instance_id(None, hostname_only)
            .unwrap(),
        "host-1"
    );
    let mut instance = run.instance.clone();
    instance.instance_id = Some("file".into());
    assert_eq!(instance.resolve_instance_id(None, env).unwrap(), "file");
    instance.instance_id = None;
    instance.instance_id_env = "MY_ID".into();
    let err = instance.resolve_instance_id(None, |_| None).unwrap_err();
    assert_mentions(&err, &["instance.instance_id", "MY_ID", "--instance-id"]);
}
