//! Bad configuration is a clear error naming the key, the value and why,
//! before anything runs: through `switchyard config check` and through the
//! library's `start()`. Risky configuration is a warning.

use std::process::Command;

use switchyard_config::ConsumerConfig;
use switchyard_runtime::deserializer::Utf8;
use switchyard_runtime::record::Record;
use switchyard_runtime::Listener;

use super::common::*;

fn check(toml: &str) -> (i32, String) {
    let path = std::env::temp_dir().join(format!("{}.toml", unique_name("cfg")));
    std::fs::write(&path, toml).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["config", "check"])
        .arg(&path)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn config_check_names_key_value_and_reason() {
    let base = "[consumer]\nbootstrap_servers = \"127.0.0.1:9092\"\ngroup_id = \"g\"\n";
    let listener = "[[listener]]\nname = \"orders\"\ntopics = [\"orders\"]\n";
    let (code, out) = check(&format!("{base}{listener}"));
    assert_eq!(code, 0, "{out}");

    let (code, out) = check(&format!(
        "{base}session_timeout_ms = 6000\nheartbeat_interval_ms = 7000\n{listener}"
    ));
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("heartbeat.interval.ms") && out.contains("7000"),
        "{out}"
    );

    let (code, out) = check(&format!("{base}session_timeout_ms = \"abc\"\n{listener}"));
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("session_timeout_ms"), "{out}");

    let (code, out) = check(&format!("{base}sesion_timeout_ms = 6000\n{listener}"));
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("sesion_timeout_ms"),
        "unknown key named: {out}"
    );

    let (code, out) = check(&format!(
        "{base}[consumer.librdkafka]\n\"no.such.property\" = \"1\"\n{listener}"
    ));
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("no.such.property"), "{out}");

    let (code, out) = check(&format!(
        "{base}session_timeout_ms = 6000\nheartbeat_interval_ms = 3000\n{listener}"
    ));
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("warning") && out.contains("heartbeat.interval.ms"),
        "risky is a warning: {out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_refuses_to_start_with_bad_configuration() {
    let mut cfg = ConsumerConfig::new(bootstrap())
        .with_group("g")
        .with_session_timeout_ms(6000);
    cfg.heartbeat_interval_ms = 6000;
    let err = Listener::builder("bad")
        .config(cfg)
        .topics(["t"])
        .handler(Utf8, Utf8, |_r: Record<String, String>| async { Ok(()) })
        .start()
        .err()
        .expect("refused");
    assert!(err.to_string().contains("heartbeat.interval.ms"), "{err}");
    let err = Listener::builder(" ")
        .topics(["t"])
        .handler(Utf8, Utf8, |_r: Record<String, String>| async { Ok(()) })
        .start()
        .err()
        .expect("refused");
    assert!(err.to_string().contains("blank"), "{err}");
}
