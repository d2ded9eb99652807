//! `switchyard run --config app.toml`: one instance of an application
//! written in any language. The listeners of the file deliver their records
//! to the application over HTTP or to a child process
//! (switchyard-delivery), inside a `switchyard_instance::Instance` with the
//! control-plane agent, the status topic and the admin HTTP API the file
//! asks for, until SIGTERM or SIGINT. docs/run.md has the file's keys.
//!
//! The connection is the file's `[kafka]` table, then `--command-config`,
//! then `-X`, then `SWITCHYARD_KAFKA_*` variables. Exit codes: 0 stopped
//! cleanly by a signal, 1 failed (cannot start, or a shutdown past its
//! deadline), 2 an invalid file or flag. A listener whose `value` is
//! `avro`, `protobuf` or `json-schema` reads its schemas from the file's
//! `[schema_registry]` (one client shared by the listeners).

use std::path::PathBuf;

use anyhow::Context;
use switchyard_config::{ControlStoreConfig, RunConfig};
use switchyard_delivery::{Delivery, DeliveryError};
use switchyard_instance::{ControlStore, Instance};
use switchyard_runtime::ListenerBuilder;

use crate::outcome::{Failure, Outcome};

/// The slot of an instance whose file names none.
pub const DEFAULT_SLOT: &str = "default";

/// Options of `run`.
#[derive(clap::Args)]
pub struct Args {
    /// The application's file: [kafka], [instance], [consumer] and
    /// [[listener]] tables, each listener with a [listener.delivery] table.
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// This instance's id (else the file's instance_id, else $POD_NAME or
    /// the variable named by instance_id_env, else $HOSTNAME).
    #[arg(long)]
    instance_id: Option<String>,
    /// A librdkafka client property, KEY=VALUE (repeatable), applied over
    /// the file's [kafka] table; a value may be ${env:NAME} or ${file:PATH}.
    #[arg(short = 'X', value_name = "KEY=VALUE")]
    properties: Vec<String>,
    /// A Java client properties file (security.protocol, sasl.jaas.config,
    /// ssl.truststore...), applied over the file's [kafka] table.
    #[arg(long, value_name = "FILE")]
    command_config: Option<PathBuf>,
}

pub fn run(a: Args) -> Outcome {
    let mut config = RunConfig::from_file(&a.config)?;
    let mut kafka = config.kafka.clone();
    if let Some(path) = &a.command_config {
        kafka.apply_command_config(path)?;
    }
    kafka.apply_overrides(&a.properties)?;
    kafka.apply_env(std::env::vars())?;
    config.set_connection(kafka);
    config.validate()?;
    let id = config
        .instance
        .resolve_instance_id(a.instance_id.as_deref(), |k| std::env::var(k).ok())?;
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    rt.block_on(serve(config, id))
}

async fn serve(config: RunConfig, id: String) -> Outcome {
    let i = &config.instance;
    let mut builder = Instance::builder(&id)
        .connection(config.kafka.clone())
        .shutdown_timeout(i.shutdown_timeout);
    let registry = match &config.schema_registry {
        Some(sr) => Some(
            switchyard_delivery::schema::registry(sr)
                .map_err(|e| Failure::Usage(format!("`[schema_registry]`: {e}")))?,
        ),
        None => None,
    };
    let mut deliveries = Vec::new();
    for l in &config.listeners {
        let delivery = l
            .delivery
            .as_ref()
            .expect("validated: every listener has one");
        let delivery =
            Delivery::start_with_registry(delivery, registry.as_ref()).map_err(|e| match e {
                DeliveryError::Config { .. } | DeliveryError::Registry { .. } => {
                    Failure::Usage(format!("listener `{}`: {e}", l.name))
                }
                e => {
                    Failure::Failed(anyhow::Error::new(e).context(format!("listener `{}`", l.name)))
                }
            })?;
        let listener = ListenerBuilder::from_config(l, &config.consumer)
            .with_context(|| format!("listener `{}`", l.name))?;
        builder = builder.listener(delivery.attach(listener));
        deliveries.push(delivery);
    }
    if let Some(store) = &i.control {
        let store = match store {
            ControlStoreConfig::Kafka(topic) => ControlStore::kafka(topic),
            ControlStoreConfig::Redis(url) => ControlStore::redis(url),
            ControlStoreConfig::File(path) => ControlStore::file(path),
        };
        let slot = i.slot.as_deref().unwrap_or(DEFAULT_SLOT);
        builder = builder.control(&i.application, slot, store);
    }
    if let Some(topic) = &i.status_topic {
        builder = builder.status_topic(topic).create_topics(i.create_topics);
    }
    if let Some(addr) = i.admin {
        builder = builder.http(addr);
        if let Some(t) = &i.admin_token {
            builder = builder.token(t.clone());
        }
    }
    let started = builder.start().await;
    let instance = match started {
        Ok(instance) => instance,
        Err(e) => {
            for d in &deliveries {
                d.stop().await;
            }
            return Err(anyhow::Error::new(e)
                .context(format!("starting instance `{id}`"))
                .into());
        }
    };
    let admin = instance
        .http_addr()
        .map(|a| format!(", admin API on http://{a}"))
        .unwrap_or_default();
    println!(
        "switchyard run: instance `{id}` of `{}` started with {} listener(s){admin}",
        i.application,
        config.listeners.len()
    );
    let summary = instance.run_until_signal().await;
    for d in &deliveries {
        d.stop().await;
    }
    let summary = summary.context("waiting for a signal")?;
    println!(
        "switchyard run: instance `{id}` stopped in {} ms{}",
        summary.elapsed_ms,
        if summary.clean() { "" } else { ", not cleanly" }
    );
    if let Some(f) = &summary.failure {
        return Err(Failure::Failed(anyhow::anyhow!(
            "a listener's consumer cannot go on, so the instance stopped (start it again): {f}"
        )));
    }
    if summary.clean() {
        Ok(())
    } else {
        Err(Failure::Failed(anyhow::anyhow!(
            "the shutdown was not clean: {summary:?}"
        )))
    }
}
