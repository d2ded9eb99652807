//! # switchyard-demo
//!
//! The whole path of Switchyard in one run, what `switchyard demo` runs:
//!
//! 1. [`orders`]: produce sample records, consume them with a listener
//!    while showing progress, pause and resume the topic half-way through
//!    the control plane (control topic, agent, acknowledgement), shut down
//!    cleanly, and print a summary (records, rate, commits, lag);
//! 2. [`deploy`]: a blue/green switch and rollback while records flow,
//!    verified for duplicates and lost records (it fails if any record was
//!    processed twice or never).
//!
//! By default on an embedded broker (librdkafka's mock cluster, nothing to
//! install), with fixed names (`demo.orders`, `demo.payments`, ...). With
//! [`Options::bootstrap`], on that cluster: the same demo and the same
//! verification, every topic, group and application name suffixed with the
//! process id and the time, so that it can run again on the same cluster.

use std::time::{Duration, Instant};

use anyhow::Context;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientConfig;

pub mod deploy;
pub mod orders;
mod producer;
mod slot;

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Records to produce and consume in the first part (the blue/green
    /// part produces at `deploy_rate` until its handoffs are done).
    pub records: u64,
    /// Partitions of the demo topics.
    pub partitions: i32,
    /// Records per second produced during the blue/green part.
    pub deploy_rate: u32,
    /// A cluster to run on instead of the embedded broker.
    pub bootstrap: Option<String>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            records: 200_000,
            partitions: 4,
            deploy_rate: 3000,
            bootstrap: None,
        }
    }
}

/// Run the demo: the orders part, then the blue/green part. `Err` when a
/// check failed (records missing or processed twice, a handoff that did not
/// finish) or the broker could not be used.
pub fn run(options: Options) -> anyhow::Result<()> {
    let cluster = Cluster::new(options.bootstrap.as_deref())?;
    let rt = tokio::runtime::Runtime::new().context("tokio")?;
    let result = rt.block_on(async {
        orders::run(&cluster, &options).await?;
        deploy::run(&cluster, options.partitions, options.deploy_rate).await
    });
    // The embedded broker is left to the process exit: clients that live in
    // background threads until then would log "all brokers down" otherwise.
    if let Some(mock) = cluster.mock {
        std::mem::forget(mock);
    }
    result
}

/// Where the demo runs: the embedded broker or a cluster, and the names it
/// uses there.
pub struct Cluster {
    /// Bootstrap servers.
    pub bootstrap: String,
    mock: Option<MockCluster<'static, DefaultProducerContext>>,
    /// Appended to every topic, group and application name: empty on the
    /// embedded broker, `-<pid>-<ms>` on a cluster.
    suffix: String,
}

const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const TOPIC_TIMEOUT: Duration = Duration::from_secs(30);

impl Cluster {
    /// The cluster at `bootstrap`, or a new embedded broker.
    pub fn new(bootstrap: Option<&str>) -> anyhow::Result<Cluster> {
        Ok(match bootstrap {
            Some(b) => Cluster {
                bootstrap: b.to_string(),
                mock: None,
                suffix: format!(
                    "-{}-{}",
                    std::process::id(),
                    switchyard_control::model::now_ms()
                ),
            },
            None => {
                let mock = MockCluster::new(1).context("cannot start the embedded broker")?;
                Cluster {
                    bootstrap: mock.bootstrap_servers(),
                    mock: Some(mock),
                    suffix: String::new(),
                }
            }
        })
    }

    /// `base`, made unique on a cluster.
    pub fn name(&self, base: &str) -> String {
        format!("{base}{}", self.suffix)
    }

    /// What the demo runs on, for its first line.
    pub fn describe(&self) -> String {
        match self.mock {
            Some(_) => format!("embedded broker at {}", self.bootstrap),
            None => format!("cluster at {}", self.bootstrap),
        }
    }

    /// A control or status topic of the control plane: created here on the
    /// embedded broker; on a cluster left to the control store and the
    /// status publisher and tail, which create it compacted (and refuse one
    /// that is not).
    pub async fn create_plane_topic(&self, topic: &str) -> anyhow::Result<()> {
        match &self.mock {
            Some(m) => Ok(m.create_topic(topic, 1, 1)?),
            None => Ok(()),
        }
    }

    /// Create `topic` (replication 1 on the embedded broker, the cluster's
    /// default otherwise) and wait until every partition has a leader.
    pub async fn create_topic(&self, topic: &str, partitions: i32) -> anyhow::Result<()> {
        if let Some(m) = &self.mock {
            return Ok(m.create_topic(topic, partitions, 1)?);
        }
        let admin: AdminClient<DefaultClientContext> = client(&self.bootstrap).create()?;
        let options = AdminOptions::new()
            .request_timeout(Some(REQUEST_TIMEOUT))
            .operation_timeout(Some(REQUEST_TIMEOUT));
        // -1: the cluster's default.replication.factor
        let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(-1));
        for r in admin.create_topics([&new], &options).await? {
            match r {
                Ok(_) => {}
                Err((t, RDKafkaErrorCode::TopicAlreadyExists)) => {
                    anyhow::bail!("create {t}: the topic exists already")
                }
                Err((t, e)) => anyhow::bail!("create {t}: {e}"),
            }
        }
        let (b, t) = (self.bootstrap.clone(), topic.to_string());
        tokio::task::spawn_blocking(move || wait_for_leaders(&b, &t, partitions)).await?
    }
}

fn client(bootstrap: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap);
    c
}

fn wait_for_leaders(bootstrap: &str, topic: &str, partitions: i32) -> anyhow::Result<()> {
    let c: BaseConsumer = client(bootstrap).create()?;
    let deadline = Instant::now() + TOPIC_TIMEOUT;
    loop {
        let md = c.fetch_metadata(Some(topic), REQUEST_TIMEOUT)?;
        let ready = md.topics().iter().any(|t| {
            t.name() == topic
                && t.partitions().len() == partitions as usize
                && t.partitions().iter().all(|p| p.leader() >= 0)
        });
        if ready {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "topic {topic}: not every partition has a leader after {TOPIC_TIMEOUT:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
