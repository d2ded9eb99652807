//! The broker a benchmark runs against: an existing cluster (`--bootstrap`),
//! a local Apache Kafka broker started for the run (`--kafka`: the testkit's
//! Apache Kafka 4 in KRaft mode on free loopback ports, from the jars
//! `scripts/install-test-deps.sh` installs), or by default librdkafka's
//! embedded mock cluster.

use std::sync::OnceLock;
use std::time::Duration;

use anyhow::Context;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, DefaultProducerContext, Producer};
use rdkafka::ClientConfig;

/// Which broker: the options every benchmark takes.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct BrokerArgs {
    /// An existing cluster's bootstrap servers.
    #[arg(long, value_name = "HOST:PORT", conflicts_with = "kafka")]
    pub bootstrap: Option<String>,
    /// Start a local Apache Kafka broker for the run (KRaft mode, free
    /// loopback ports; jars from scripts/install-test-deps.sh).
    #[arg(long)]
    pub kafka: bool,
}

enum Kind {
    Mock(MockCluster<'static, DefaultProducerContext>),
    /// The broker lives in [`LOCAL_KAFKA`].
    Kafka,
    External,
}

/// A broker to benchmark against, kept running while this value lives.
pub struct BenchBroker {
    /// Its bootstrap servers.
    pub bootstrap: String,
    kind: Kind,
}

/// The `--kafka` broker, never dropped: clients that the benchmarks leave
/// to the process exit (closing ones, background readers) would log "all
/// brokers down" if it were killed before. The process exit kills it (the
/// testkit spawns it with `PR_SET_PDEATHSIG`), and the next testkit broker
/// start removes its data folder, as for the tests' shared broker.
static LOCAL_KAFKA: OnceLock<switchyard_testkit::Broker> = OnceLock::new();

impl BenchBroker {
    /// The broker `args` choose (a local Kafka broker is started and waited for).
    pub fn start(args: &BrokerArgs) -> anyhow::Result<BenchBroker> {
        if let Some(bootstrap) = &args.bootstrap {
            return Ok(BenchBroker {
                bootstrap: bootstrap.clone(),
                kind: Kind::External,
            });
        }
        if args.kafka {
            // the testkit panics with the broker's log tail when it does not come up
            let broker =
                std::panic::catch_unwind(switchyard_testkit::Broker::start).map_err(|p| {
                    let why = p
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default();
                    anyhow::anyhow!("cannot start a local Apache Kafka broker: {why}")
                })?;
            let bootstrap = broker.bootstrap();
            anyhow::ensure!(
                LOCAL_KAFKA.set(broker).is_ok(),
                "a local Kafka broker runs already"
            );
            return Ok(BenchBroker {
                bootstrap,
                kind: Kind::Kafka,
            });
        }
        let cluster = MockCluster::new(1).context("cannot start the mock cluster")?;
        Ok(BenchBroker {
            bootstrap: cluster.bootstrap_servers(),
            kind: Kind::Mock(cluster),
        })
    }

    /// What it is and where, for the benchmark's first line.
    pub fn describe(&self) -> String {
        match &self.kind {
            Kind::Mock(_) => format!("mock cluster at {}", self.bootstrap),
            Kind::Kafka => format!("local Apache Kafka at {}", self.bootstrap),
            Kind::External => self.bootstrap.clone(),
        }
    }

    /// The process id of the local Apache Kafka broker (`--kafka`).
    pub fn pid(&self) -> Option<u32> {
        match self.kind {
            Kind::Kafka => LOCAL_KAFKA.get().and_then(|b| b.pid()),
            _ => None,
        }
    }

    /// Whether it is librdkafka's embedded mock cluster (in this process).
    pub fn is_mock(&self) -> bool {
        matches!(self.kind, Kind::Mock(_))
    }

    /// A name suffix unique to this run: the process id, and on a real
    /// cluster (which outlives the run) the time too.
    pub fn run_tag(&self) -> String {
        match self.kind {
            Kind::Mock(_) => std::process::id().to_string(),
            _ => format!(
                "{}-{}",
                std::process::id(),
                switchyard_control::model::now_ms()
            ),
        }
    }

    /// Create `topic` (replication 1) and wait until every partition has a leader.
    pub fn create_topic(&self, topic: &str, partitions: i32) -> anyhow::Result<()> {
        match &self.kind {
            Kind::Mock(m) => Ok(m.create_topic(topic, partitions, 1)?),
            _ => create_topic(&self.bootstrap, topic, partitions),
        }
    }

    /// A control or status topic of the control plane: created here on the
    /// mock cluster; on a real broker left to the control store and the
    /// status publisher and tail, which create it compacted (and refuse one
    /// that is not).
    pub fn create_plane_topic(&self, topic: &str) -> anyhow::Result<()> {
        match &self.kind {
            Kind::Mock(m) => Ok(m.create_topic(topic, 1, 1)?),
            _ => Ok(()),
        }
    }

    /// Create `topic` and fill it with `records` records of `value_bytes`
    /// bytes, keys `key_of(i)`, spread round robin over the partitions.
    pub fn fill_topic(
        &self,
        topic: &str,
        partitions: i32,
        records: u64,
        value_bytes: usize,
        key_of: impl Fn(u64) -> String,
    ) -> anyhow::Result<()> {
        self.create_topic(topic, partitions)?;
        fill(
            &self.bootstrap,
            topic,
            partitions,
            records,
            value_bytes,
            key_of,
        )
    }
}

/// The mock cluster is left to the process exit too (see [`LOCAL_KAFKA`]).
impl Drop for BenchBroker {
    fn drop(&mut self) {
        if let Kind::Mock(m) = std::mem::replace(&mut self.kind, Kind::External) {
            std::mem::forget(m);
        }
    }
}

/// Create `topic` through the admin API and wait until every partition has
/// a leader: the testkit's [`switchyard_testkit::create_topic`] (topic names
/// are unique per run; it panics with the broker's answer on failure).
pub fn create_topic(bootstrap: &str, topic: &str, partitions: i32) -> anyhow::Result<()> {
    switchyard_testkit::create_topic(bootstrap, topic, partitions);
    Ok(())
}

/// A client configuration with `bootstrap.servers`.
pub fn client(bootstrap: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap);
    c
}

fn fill(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    records: u64,
    value_bytes: usize,
    key_of: impl Fn(u64) -> String,
) -> anyhow::Result<()> {
    let producer: BaseProducer = client(bootstrap)
        .set("linger.ms", "20")
        .set("batch.num.messages", "10000")
        .create()?;
    let payload = vec![b'x'; value_bytes];
    for i in 0..records {
        let key = key_of(i);
        while producer
            .send(
                BaseRecord::to(topic)
                    .key(&key)
                    .payload(&payload)
                    .partition((i % partitions as u64) as i32),
            )
            .is_err()
        {
            producer.poll(Duration::from_millis(5));
        }
    }
    producer.flush(Duration::from_secs(120))?;
    Ok(())
}

/// Peak resident set size of this process (VmHWM), in MB.
pub fn peak_rss_mb() -> f64 {
    switchyard_testkit::memory::peak_resident_mb()
}

/// The `p` quantile (0..=1) of `v`, NaN when empty.
pub fn pct(v: &[f64], p: f64) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        return f64::NAN;
    }
    v[((v.len() - 1) as f64 * p).round() as usize]
}
