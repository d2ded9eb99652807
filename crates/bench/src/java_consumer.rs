//! The Java row of `consume`: Apache Kafka's own `KafkaConsumer`
//! (kafka-clients) in a plain poll loop, `crates/bench/java/ConsumeLoop.java`,
//! run as a single-file program by a JVM with every jar of the testkit's
//! Kafka installation on its classpath (`scripts/install-test-deps.sh`
//! installs them from Maven Central).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::Context;
use rdkafka::ClientConfig;
use switchyard_testkit::broker::kafka_home;

use crate::proc_stats::{measure_child, Sample};

/// The fetch settings of the Rust rows as librdkafka resolves them (its
/// name, then the Java client's name): the Java consumer gets the same values.
const FETCH_SETTINGS: [(&str, &str); 4] = [
    ("fetch.min.bytes", "fetch.min.bytes"),
    ("fetch.wait.max.ms", "fetch.max.wait.ms"),
    ("fetch.max.bytes", "fetch.max.bytes"),
    ("max.partition.fetch.bytes", "max.partition.fetch.bytes"),
];

/// How long the JVM may take to start, compile the program, join the group
/// and count the records (the loop itself gives up after 120 s).
const TIMEOUT: Duration = Duration::from_secs(300);

/// Consume `records` records of `topic` in the fresh group `group` with the
/// Java consumer, from the earliest offset, without committing (as the raw
/// row), with the fetch settings librdkafka resolves for `rust` (the raw
/// row's configuration) and the Java client's defaults otherwise.
pub fn measure(
    bootstrap: &str,
    topic: &str,
    group: &str,
    records: u64,
    rust: &ClientConfig,
) -> anyhow::Result<Sample> {
    let native = rust.create_native_config()?;
    let mut settings = vec![
        format!("group.id={group}"),
        "auto.offset.reset=earliest".to_string(),
        "enable.auto.commit=false".to_string(),
    ];
    for (librdkafka, java) in FETCH_SETTINGS {
        let value = native
            .get(librdkafka)
            .with_context(|| format!("librdkafka has no {librdkafka}"))?;
        settings.push(format!("{java}={value}"));
    }
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("java/ConsumeLoop.java");
    let mut command = jvm()?;
    command
        .arg(source)
        .args([bootstrap, topic, &records.to_string()])
        .args(settings);
    measure_child("java", command, TIMEOUT)
}

/// `java` with Kafka's jars and logging configuration, as the testkit's
/// `java_command()` builds it but without the flags it adds for short-lived
/// tools (C1 compiler only, serial GC): a throughput measurement runs the
/// JVM with its default settings.
fn jvm() -> anyhow::Result<Command> {
    let home = kafka_home();
    let libs = home.join("libs");
    let has_clients = std::fs::read_dir(&libs).is_ok_and(|dir| {
        dir.filter_map(|e| e.ok()).any(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("kafka-clients-")
        })
    });
    anyhow::ensure!(
        has_clients,
        "no kafka-clients jar in {} (run scripts/install-test-deps.sh, or pass --no-java)",
        libs.display()
    );
    let mut command = Command::new("java");
    command
        .arg("-cp")
        .arg(libs.join("*"))
        .arg(format!(
            "-Dlog4j2.configurationFile={}",
            home.join("config/log4j2.properties").display()
        ))
        .stdin(Stdio::null());
    Ok(command)
}
