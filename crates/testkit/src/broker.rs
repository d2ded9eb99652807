//! The test broker: Apache Kafka in KRaft mode (the reference), or nisshi.
//!
//! [`Broker::shared`] is the broker of the test process: started on first use on free 127.0.0.1 ports and shared by
//! every test of the binary, which isolate themselves by using their own topics and groups (the topics module's
//! `new_topic`). [`Broker::start`] gives a test a broker of its own, for tests that stop or restart
//! it. [`BrokerKind::from_env`] picks the broker: Apache Kafka ([`kafka`]) unless `SWITCHYARD_TEST_BROKER=nisshi`
//! ([`nisshi`]). A restarted Kafka keeps its data; a restarted nisshi starts empty.
//!
//! Brokers are spawned through [`crate::spawner`] with `PR_SET_PDEATHSIG`, so they die with the test process. Their
//! stdout and stderr go to a log file in [`std::env::temp_dir`], whose path is printed once per broker; when a broker
//! fails to come up, the panic message carries the tail of that log.

pub mod kafka;
pub mod nisshi;
pub mod secured;

use std::fs::{File, OpenOptions};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};

pub use kafka::{java_command, kafka_home, kafka_version};
pub use nisshi::nisshi_binary;
pub use secured::{Secured, SecuredOptions};

use crate::client::client_config;
use crate::spawner;
use crate::wait::{poll_until, POLL_INTERVAL};

/// How long a broker may take to answer its first metadata request (a JVM on a loaded machine is slow to start).
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(90);
/// How many ports [`Broker::start`] tries when a port turns out to be taken by the time the broker binds it.
const PORT_ATTEMPTS: usize = 3;

/// Which broker the tests run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokerKind {
    /// Apache Kafka 4 in KRaft combined mode, from the jars `scripts/install-test-deps.sh` installed.
    Kafka,
    /// nisshi, a Kafka-compatible broker with in-memory storage.
    Nisshi,
}

impl BrokerKind {
    /// `SWITCHYARD_TEST_BROKER`: `nisshi` for nisshi; unset, empty or `kafka` for Apache Kafka.
    pub fn from_env() -> BrokerKind {
        match std::env::var("SWITCHYARD_TEST_BROKER").as_deref() {
            Ok("nisshi") => BrokerKind::Nisshi,
            Ok("" | "kafka") | Err(_) => BrokerKind::Kafka,
            Ok(other) => panic!("SWITCHYARD_TEST_BROKER={other}: expected `kafka` or `nisshi`"),
        }
    }
}

/// A broker process listening on `127.0.0.1:port`.
pub struct Broker {
    kind: BrokerKind,
    ports: kafka::Ports,
    dir: PathBuf,
    log_path: PathBuf,
    child: Mutex<Option<std::process::Child>>,
    secured: Option<Secured>,
}

/// A free port on `[::1]`, or `None` when the machine has no IPv6 loopback.
pub fn free_port_v6() -> Option<u16> {
    TcpListener::bind((std::net::Ipv6Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .ok()
}

/// A free TCP port on 127.0.0.1 (bind to :0, read the port, drop the listener).
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("bind 127.0.0.1:0 to find a free port")
}

impl Broker {
    /// The broker of this test process: started on first use on a free 127.0.0.1 port, waited for until it answers a
    /// metadata request (deadline 30 s, panic with the broker's log tail otherwise), shared by all tests of the
    /// binary, and killed when the test process exits.
    pub fn shared() -> &'static Broker {
        static SHARED: OnceLock<Broker> = OnceLock::new();
        SHARED.get_or_init(Broker::start)
    }

    /// Start a separate broker owned by the caller (killed on drop), for tests that must stop the broker.
    pub fn start() -> Broker {
        Broker::start_with(BrokerKind::from_env(), None)
    }

    /// Start a separate Apache Kafka broker (whatever `SWITCHYARD_TEST_BROKER` says) with a SASL_SSL listener
    /// besides its PLAINTEXT one ([`secured`]); [`Broker::secured`] tells how clients reach it.
    pub fn start_secured(options: SecuredOptions) -> Broker {
        Broker::start_with(BrokerKind::Kafka, Some(options))
    }

    fn start_with(kind: BrokerKind, secured: Option<SecuredOptions>) -> Broker {
        remove_stale_broker_folders();
        let mut failures = Vec::new();
        for _ in 0..PORT_ATTEMPTS {
            let ports = kafka::Ports {
                port: free_port(),
                controller_port: free_port(),
                // the secured broker's listeners are its own; the shared one is dual-stack where IPv6 is
                v6_port: if secured.is_none() {
                    free_port_v6()
                } else {
                    None
                },
            };
            let name = format!("switchyard-broker-{}-{}", std::process::id(), ports.port);
            let dir = std::env::temp_dir().join(&name);
            let broker = Broker {
                kind,
                ports,
                secured: secured.clone().map(|options| Secured {
                    port: free_port(),
                    options,
                    dir: dir.join("tls"),
                    keystore_password: secured::random_token(),
                }),
                dir,
                log_path: std::env::temp_dir().join(format!("{name}.log")),
                child: Mutex::new(None),
            };
            eprintln!(
                "testkit: {kind:?} broker on 127.0.0.1:{}, log: {}",
                ports.port,
                broker.log_path.display()
            );
            match broker.launch(true) {
                Ok(()) => return broker,
                Err(failure) => failures.push(failure),
            }
        }
        panic!("{kind:?} broker did not start:\n{}", failures.join("\n\n"));
    }

    /// The SASL_SSL listener of a [`Broker::start_secured`] broker.
    pub fn secured(&self) -> Option<&Secured> {
        self.secured.as_ref()
    }

    /// Which broker this is.
    pub fn kind(&self) -> BrokerKind {
        self.kind
    }

    /// `"127.0.0.1:PORT"`, for `bootstrap.servers`.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.ports.port)
    }

    /// The bootstrap address of the broker's IPv6 listener (`[::1]:port`), when the machine has IPv6 loopback and
    /// this is an Apache Kafka broker started by [`Broker::start`].
    pub fn bootstrap_v6(&self) -> Option<String> {
        match self.kind {
            BrokerKind::Kafka => self.ports.v6_port.map(|p| format!("[::1]:{p}")),
            _ => None,
        }
    }

    /// The port the broker listens on.
    pub fn port(&self) -> u16 {
        self.ports.port
    }

    /// The file the broker's stdout and stderr go to.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The process id of the broker, `None` while it is stopped.
    pub fn pid(&self) -> Option<u32> {
        self.lock_child().as_ref().map(|child| child.id())
    }

    /// Kill the broker (SIGKILL) and reap it. Its in-memory data is lost. Meant for [`Broker::start`]ed brokers:
    /// stopping the shared broker would break every other test of the binary.
    pub fn stop(&self) {
        if let Some(mut child) = self.lock_child().take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Start the broker again on the same ports (after [`Broker::stop`]) and wait until it answers. Kafka keeps its
    /// data across the restart; nisshi starts empty.
    pub fn restart(&self) {
        self.stop();
        // The port was ours a moment ago; give another process's transient bind a few tries.
        let mut failures = Vec::new();
        for _ in 0..PORT_ATTEMPTS {
            match self.launch(false) {
                Ok(()) => return,
                Err(failure) => failures.push(failure),
            }
        }
        panic!(
            "{:?} broker did not restart:\n{}",
            self.kind,
            failures.join("\n\n")
        );
    }

    fn lock_child(&self) -> std::sync::MutexGuard<'_, Option<std::process::Child>> {
        self.child
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Spawn the broker process and wait until it answers a metadata request.
    fn launch(&self, truncate_log: bool) -> Result<(), String> {
        let log = OpenOptions::new()
            .create(true)
            .append(!truncate_log)
            .write(true)
            .truncate(truncate_log)
            .open(&self.log_path)
            .map_err(|e| format!("open broker log {}: {e}", self.log_path.display()))?;
        let mut command = match self.kind {
            BrokerKind::Kafka => kafka::prepare(&self.dir, self.ports, self.secured.as_ref())?,
            BrokerKind::Nisshi => nisshi::command(self.ports.port)?,
        };
        command
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log);
        let child = spawner::spawn(command).map_err(|e| format!("spawn {:?}: {e}", self.kind))?;
        *self.lock_child() = Some(child);
        match self.wait_ready() {
            Ok(()) => Ok(()),
            Err(why) => {
                self.stop();
                Err(format!(
                    "{why}; broker log {} ends with:\n{}",
                    self.log_path.display(),
                    self.log_tail(40)
                ))
            }
        }
    }

    fn wait_ready(&self) -> Result<(), String> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.ports.port));
        let mut consumer: Option<BaseConsumer> = None;
        let mut last_error = String::from("no answer yet");
        poll_until(STARTUP_TIMEOUT, || {
            if let Some(status) = self
                .lock_child()
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                return Some(Err(format!(
                    "the broker exited with {status} before answering"
                )));
            }
            // Cheap check first: is anything listening yet?
            if TcpStream::connect_timeout(&addr, POLL_INTERVAL * 10).is_err() {
                return None;
            }
            if consumer.is_none() {
                match client_config(&self.bootstrap()).create::<BaseConsumer>() {
                    Ok(created) => consumer = Some(created),
                    Err(e) => return Some(Err(format!("create metadata client: {e}"))),
                }
            }
            match consumer
                .as_ref()?
                .fetch_metadata(None, Duration::from_secs(2))
            {
                Ok(metadata) if !metadata.brokers().is_empty() => Some(Ok(())),
                Ok(_) => {
                    last_error = "metadata without brokers".into();
                    None
                }
                Err(e) => {
                    last_error = e.to_string();
                    None
                }
            }
        })
        .unwrap_or_else(|elapsed| {
            Err(format!(
                "no metadata answer after {elapsed:.1?} (last error: {last_error})"
            ))
        })
    }

    /// The last `lines` lines of the broker's log.
    pub fn log_tail(&self, lines: usize) -> String {
        log_tail(&self.log_path, lines)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Remove the data folders of brokers whose test process is gone (the shared broker lives in a static, which is never
/// dropped, so its folder outlives the process).
fn remove_stale_broker_folders() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.filter_map(|entry| entry.ok()) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix("switchyard-broker-")
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        let alive = Path::new("/proc").join(pid.to_string()).exists();
        if !alive && entry.path().is_dir() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn log_tail(path: &Path, lines: usize) -> String {
    let text = File::open(path)
        .and_then(|mut f| {
            let mut buf = Vec::new();
            std::io::Read::read_to_end(&mut f, &mut buf).map(|_| buf)
        })
        .map(|buf| String::from_utf8_lossy(&buf).into_owned())
        .unwrap_or_else(|e| format!("<cannot read {}: {e}>", path.display()));
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_bindable() {
        let port = free_port();
        assert_ne!(port, 0);
        TcpListener::bind((Ipv4Addr::LOCALHOST, port)).expect("port is free");
    }

    #[test]
    fn env_overrides_the_binary() {
        // Only reads the variable when set; other tests of this binary never set it.
        if std::env::var_os("SWITCHYARD_NISSHI").is_none() {
            assert!(nisshi_binary().ends_with("nisshi"));
        }
    }

    #[test]
    fn log_tail_of_missing_file_says_so() {
        assert!(log_tail(Path::new("/nonexistent/testkit.log"), 5).contains("cannot read"));
    }
}
