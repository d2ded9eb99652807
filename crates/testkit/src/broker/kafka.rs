//! Apache Kafka as the test broker: where its jars are, how a broker is configured and launched, and how Kafka's own
//! tools and Java programs run beside it.
//!
//! `scripts/install-test-deps.sh` copies the jars of `scripts/kafka/pom.xml` (the broker, `kafka-tools`,
//! `kafka-clients` and Log4j 2) into one folder, [`kafka_home`]`/libs`. A broker is one JVM in KRaft combined mode
//! (broker and controller, node id 1) on two free loopback ports, with its data in a folder of its own that
//! [`prepare`] formats with `kafka.tools.StorageTool`. Its settings keep tests fast: no initial rebalance delay,
//! one-partition internal topics, low group session and heartbeat bounds (for both group protocols) and a log
//! cleaner that looks for work every second.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The folder the install script put Apache Kafka in: `$SWITCHYARD_KAFKA_HOME`, else `~/.cache/switchyard/kafka`.
/// It holds `libs/` (every jar) and `config/log4j2.properties`.
pub fn kafka_home() -> PathBuf {
    if let Some(path) = std::env::var_os("SWITCHYARD_KAFKA_HOME").filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    home.join(".cache/switchyard/kafka")
}

/// The version of the installed Apache Kafka, read from the name of its `kafka_2.13-<version>.jar`.
pub fn kafka_version() -> Option<String> {
    std::fs::read_dir(kafka_home().join("libs"))
        .ok()?
        .filter_map(|entry| entry.ok())
        .filter_map(|entry| entry.file_name().into_string().ok())
        .find_map(|name| {
            name.strip_prefix("kafka_2.13-")?
                .strip_suffix(".jar")
                .map(str::to_string)
        })
}

/// A `java` command with every Kafka jar on its classpath and the quiet Log4j 2 configuration, ready for a main
/// class (`kafka.Kafka`, `org.apache.kafka.tools.consumer.group.ConsumerGroupCommand`, ...) or, with a `.java` file
/// as its first argument, a single-file Java program (Java 11+ source launcher) such as a test peer.
///
/// ```no_run
/// let mut tool = switchyard_testkit::broker::java_command();
/// tool.args(["org.apache.kafka.tools.consumer.group.ConsumerGroupCommand", "--list"]);
/// tool.args(["--bootstrap-server", "127.0.0.1:9092"]);
/// ```
pub fn java_command() -> Command {
    let mut command = jvm();
    // Short-lived tools and peers: start fast rather than peak late.
    command.args(["-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"]);
    command
}

/// `java` with Kafka's classpath and logging configuration, and no JVM tuning.
fn jvm() -> Command {
    let home = kafka_home();
    let mut command = Command::new("java");
    command
        .arg("-cp")
        .arg(home.join("libs").join("*"))
        .arg(format!(
            "-Dlog4j2.configurationFile={}",
            home.join("config/log4j2.properties").display()
        ))
        .stdin(Stdio::null());
    command
}

/// Where a broker listens: clients on `port`, the KRaft controller on `controller_port`, both on 127.0.0.1, and
/// clients also on `[::1]:v6_port` when the machine has IPv6 loopback (a dual-stack broker).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ports {
    pub(crate) port: u16,
    pub(crate) controller_port: u16,
    pub(crate) v6_port: Option<u16>,
}

/// The broker's `server.properties`.
pub(crate) fn server_properties(ports: Ports, data: &Path) -> String {
    let Ports {
        port,
        controller_port,
        v6_port,
    } = ports;
    let (v6_listener, v6_protocol) = match v6_port {
        Some(v6) => (format!(",IPV6://[::1]:{v6}"), ",IPV6:PLAINTEXT"),
        None => (String::new(), ""),
    };
    format!(
        "process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{controller_port}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}{v6_listener}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}{v6_listener}
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT{v6_protocol}
inter.broker.listener.name=PLAINTEXT
log.dirs={data}
num.partitions=1
default.replication.factor=1
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
group.min.session.timeout.ms=500
group.consumer.min.session.timeout.ms=1000
group.consumer.session.timeout.ms=3000
group.consumer.min.heartbeat.interval.ms=100
group.consumer.heartbeat.interval.ms=250
num.network.threads=2
num.io.threads=4
background.threads=4
log.cleaner.backoff.ms=1000
log.cleaner.dedupe.buffer.size=16777216
log.index.size.max.bytes=1048576
log.retention.check.interval.ms=5000
",
        data = data.display()
    )
}

/// Write the broker's configuration into `dir` and format its storage (a short JVM run of `StorageTool`), unless
/// `dir` holds a formatted broker already (a restart keeps its data). Returns the `kafka.Kafka` command to spawn.
///
/// With `secured`, the broker also has its SASL_SSL listener ([`super::secured`]): certificates made first, the
/// listener's settings added to `server.properties` (later keys win) and its SCRAM users created at format time.
pub(crate) fn prepare(
    dir: &Path,
    ports: Ports,
    secured: Option<&super::secured::Secured>,
) -> Result<Command, String> {
    let libs = kafka_home().join("libs");
    if kafka_version().is_none() {
        return Err(format!(
            "Apache Kafka is not installed in {} (run scripts/install-test-deps.sh, or set SWITCHYARD_KAFKA_HOME)",
            libs.display()
        ));
    }
    let data = dir.join("data");
    let properties = dir.join("server.properties");
    std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let mut text = server_properties(ports, &data);
    if let Some(secured) = secured {
        secured.make_certificates()?;
        text.push_str(&secured.server_properties(ports.port, ports.controller_port));
    }
    std::fs::write(&properties, text)
        .map_err(|e| format!("write {}: {e}", properties.display()))?;
    if !data.join("meta.properties").is_file() {
        let output = java_command()
            .args(["kafka.tools.StorageTool", "format", "--ignore-formatted"])
            .args(["--cluster-id", "c3dpdGNoeWFyZC10ZXN0Cg"])
            .arg("--config")
            .arg(&properties)
            .args(secured.map(|s| s.scram_args()).unwrap_or_default())
            .output()
            .map_err(|e| format!("run java (StorageTool): {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "StorageTool format failed with {}: {}{}",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ));
        }
    }
    let mut command = jvm();
    // The JVM settings of Kafka's own kafka-server-start.sh, with a smaller heap.
    command
        .args([
            "-Xms512m",
            "-Xmx1g",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
        ])
        .args([
            "-XX:InitiatingHeapOccupancyPercent=35",
            "-Djava.awt.headless=true",
        ])
        .arg("kafka.Kafka")
        .arg(&properties);
    Ok(command)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_properties_name_both_ports_and_the_data_folder() {
        let text = server_properties(
            Ports {
                port: 1234,
                controller_port: 5678,
                v6_port: Some(4321),
            },
            Path::new("/tmp/x/data"),
        );
        assert!(text.contains("listeners=PLAINTEXT://127.0.0.1:1234,CONTROLLER://127.0.0.1:5678"));
        assert!(text.contains("controller.quorum.voters=1@127.0.0.1:5678"));
        assert!(text.contains("log.dirs=/tmp/x/data"));
    }
}
