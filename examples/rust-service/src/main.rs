//! `orders-service`: an example of a Rust service in a Switchyard fleet.
//!
//! The records are handled in the process (no delivery to another program):
//! each listener of the configuration gets [`handle`], and the whole
//! instance (listeners, the control-plane agent and its store, the status
//! topic, the admin HTTP API, SIGTERM and SIGINT) is assembled by
//! [`switchyard_instance::Instance`]:
//!
//! ```text
//! orders-service --config service.toml [--instance-id ID]
//! ```
//!
//! The configuration has the tables of `switchyard run`'s file (`[kafka]`
//! with `${env:..}`/`${file:..}` references, `[instance]`, `[consumer]`,
//! `[[listener]]`) without `[listener.delivery]`: see `service.toml`. A
//! shutdown finishes the records in flight, commits and leaves the group
//! within `shutdown_timeout`; the exit code is 0 for a clean stop, 1
//! otherwise.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::Path;

use anyhow::Context;
use serde::Deserialize;
use switchyard_config::{
    Connection, ConsumerConfig, ControlStoreConfig, InstanceConfig, ListenerConfig,
};
use switchyard_instance::{ControlStore, Instance};
use switchyard_runtime::deserializer::Utf8;
use switchyard_runtime::handler::HandlerResult;
use switchyard_runtime::record::Record;
use switchyard_runtime::ListenerBuilder;

/// The slot of an instance whose file names none.
const DEFAULT_SLOT: &str = "default";

/// The service's file as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ServiceFile {
    #[serde(default)]
    kafka: BTreeMap<String, toml::Value>,
    instance: InstanceConfig,
    #[serde(default)]
    consumer: ConsumerConfig,
    #[serde(rename = "listener")]
    listeners: Vec<ListenerConfig>,
}

/// The service's configuration, secret references resolved.
struct ServiceConfig {
    kafka: Connection,
    instance: InstanceConfig,
    consumer: ConsumerConfig,
    listeners: Vec<ListenerConfig>,
}

/// Parse the service's TOML (`what` names it in errors).
fn parse(text: &str, what: &str) -> anyhow::Result<ServiceConfig> {
    let file: ServiceFile = toml::from_str(text).with_context(|| what.to_string())?;
    let mut kafka = Connection::from_table(&file.kafka).with_context(|| what.to_string())?;
    if !file.kafka.contains_key("bootstrap.servers") {
        kafka.set("bootstrap.servers", &file.consumer.bootstrap_servers)?;
    }
    let mut consumer = file.consumer.with_connection(kafka.clone());
    if consumer.group_id.is_none() {
        consumer.group_id = Some(file.instance.application.clone());
    }
    anyhow::ensure!(!file.listeners.is_empty(), "{what}: no [[listener]]");
    Ok(ServiceConfig {
        kafka,
        instance: file.instance,
        consumer,
        listeners: file.listeners,
    })
}

/// The application's work on one record: here, a log line with the order
/// id when the value is a JSON object with one.
async fn handle(r: Record<String, String>) -> HandlerResult {
    let id = serde_json::from_str::<serde_json::Value>(&r.value)
        .ok()
        .and_then(|v| v.get("id").cloned());
    tracing::info!(
        topic = %r.topic,
        partition = r.partition,
        offset = r.offset,
        key = r.key.as_deref().unwrap_or(""),
        id = %id.unwrap_or_default(),
        "order processed"
    );
    Ok(())
}

/// The instance of `config` with id `id`, not started.
fn instance(
    config: &ServiceConfig,
    id: &str,
) -> anyhow::Result<switchyard_instance::InstanceBuilder> {
    let i = &config.instance;
    let mut b = Instance::builder(id)
        .connection(config.kafka.clone())
        .shutdown_timeout(i.shutdown_timeout);
    for l in &config.listeners {
        let listener = ListenerBuilder::from_config(l, &config.consumer)
            .with_context(|| format!("listener `{}`", l.name))?;
        b = b.listener(listener.handler(Utf8, Utf8, handle));
    }
    if let Some(store) = &i.control {
        let store = match store {
            ControlStoreConfig::Kafka(topic) => ControlStore::kafka(topic),
            ControlStoreConfig::Redis(url) => ControlStore::redis(url),
            ControlStoreConfig::File(path) => ControlStore::file(path),
        };
        b = b.control(
            &i.application,
            i.slot.as_deref().unwrap_or(DEFAULT_SLOT),
            store,
        );
    }
    if let Some(topic) = &i.status_topic {
        b = b.status_topic(topic);
    }
    if let Some(addr) = i.admin {
        b = b.http(addr);
    }
    Ok(b)
}

fn args() -> anyhow::Result<(String, Option<String>)> {
    let mut config = None;
    let mut id = None;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--config" => config = it.next(),
            "--instance-id" => id = it.next(),
            _ => anyhow::bail!("usage: orders-service --config FILE [--instance-id ID]"),
        }
    }
    let config = config.context("usage: orders-service --config FILE [--instance-id ID]")?;
    Ok((config, id))
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
    let code = match run() {
        Ok(true) => 0,
        Ok(false) => 1,
        Err(e) => {
            eprintln!("error: {e:#}");
            1
        }
    };
    std::process::exit(code);
}

/// Run until a signal: whether the stop was clean.
fn run() -> anyhow::Result<bool> {
    let (path, flag) = args()?;
    let text = std::fs::read_to_string(Path::new(&path)).with_context(|| path.clone())?;
    let config = parse(&text, &path)?;
    let id = config
        .instance
        .resolve_instance_id(flag.as_deref(), |k| std::env::var(k).ok())?;
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let instance = instance(&config, &id)?.start().await?;
        tracing::info!(instance = %id, "started; SIGTERM or SIGINT stops it");
        let summary = instance.run_until_signal().await?;
        tracing::info!(?summary, "stopped");
        Ok(summary.clean())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shipped service.toml parses (its secret references pointed at
    /// a file and a variable of the test) and builds an instance.
    #[test]
    fn the_shipped_configuration_builds_an_instance() {
        let text = include_str!("../service.toml");
        let dir = std::env::temp_dir().join(format!("sy-rust-service-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let password = dir.join("password");
        std::fs::write(&password, "secret").unwrap();
        let text = text
            .replace(
                "/etc/switchyard/kafka/password",
                &password.display().to_string(),
            )
            .replace("${env:KAFKA_USERNAME}", "orders");
        let config = parse(&text, "service.toml").unwrap();
        assert_eq!(config.instance.slot.as_deref(), Some("blue"));
        assert_eq!(config.consumer.group_id.as_deref(), Some("orders-blue"));
        assert_eq!(config.kafka.get("sasl.password"), Some("secret"));
        assert_eq!(config.instance.shutdown_timeout.as_secs(), 30);
        let id = config
            .instance
            .resolve_instance_id(None, |k| (k == "POD_NAME").then(|| "orders-blue-1".into()))
            .unwrap();
        assert_eq!(id, "orders-blue-1");
        instance(&config, &id).unwrap();
        assert!(parse("[instance]\napplication = \"a\"\nlistener = []\n", "x").is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
