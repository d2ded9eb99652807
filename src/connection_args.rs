//! The connection arguments every subcommand that talks to Kafka shares
//! (`ctl`, `deploy`, `lag`, `offsets`): `--bootstrap`, `-X key=value`
//! (repeatable, librdkafka's names, as kcat takes them) and
//! `--command-config FILE` (a Java client properties file, as Kafka's own
//! tools take it), plus `SWITCHYARD_KAFKA_*` from the environment; see
//! `switchyard_config::Connection` and docs/security.md.

use std::path::PathBuf;

use switchyard_config::{ConfigError, Connection};

/// How to reach and authenticate to the cluster.
#[derive(clap::Args, Clone, Debug)]
pub struct ConnectionArgs {
    /// Bootstrap servers.
    #[arg(long, env = "SWITCHYARD_BOOTSTRAP", default_value = "127.0.0.1:9092")]
    pub bootstrap: String,
    /// A librdkafka client property, KEY=VALUE (repeatable), for example
    /// -X security.protocol=SASL_SSL -X sasl.mechanism=SCRAM-SHA-512; a value
    /// may be ${env:NAME} or ${file:PATH}.
    #[arg(short = 'X', value_name = "KEY=VALUE")]
    pub properties: Vec<String>,
    /// A Java client properties file (security.protocol, sasl.jaas.config,
    /// ssl.truststore...), as Kafka's tools take it.
    #[arg(long, value_name = "FILE")]
    pub command_config: Option<PathBuf>,
}

impl ConnectionArgs {
    /// The connection: `--bootstrap`, then `--command-config`, then `-X`,
    /// then `SWITCHYARD_KAFKA_*` variables.
    pub fn connection(&self) -> Result<Connection, ConfigError> {
        let mut c = Connection::new(self.bootstrap.as_str());
        if let Some(path) = &self.command_config {
            c.apply_command_config(path)?;
        }
        c.apply_overrides(&self.properties)?;
        c.apply_env(std::env::vars())?;
        Ok(c)
    }
}
