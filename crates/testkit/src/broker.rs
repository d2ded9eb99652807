//! A real nisshi broker for end-to-end tests.
//!
//! [`Broker::shared`] is the broker of the test process: started on first use on a free 127.0.0.1 port and shared by
//! every test of the binary, which isolate themselves by using their own topics and groups
//! ([`crate::topics::new_topic`]). [`Broker::start`] gives a test a broker of its own, for tests that stop or restart
//! it. Brokers use in-memory storage, so a restarted broker starts empty.
//!
//! Brokers are spawned through [`crate::spawner`] with `PR_SET_PDEATHSIG`, so they die with the test process. Their
//! stdout and stderr go to a log file in [`std::env::temp_dir`], whose path is printed once per broker; when a broker
//! fails to come up, the panic message carries the tail of that log.
//!
//! The binary is `$SWITCHYARD_NISSHI` if set, else `nisshi` on `PATH`, else `~/.cargo/bin/nisshi`.

use std::fs::{File, OpenOptions};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};

use crate::client::client_config;
use crate::spawner;
use crate::wait::{poll_until, POLL_INTERVAL};

/// How long a broker may take to answer its first metadata request.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// How many ports [`Broker::start`] tries when a port turns out to be taken by the time the broker binds it.
const PORT_ATTEMPTS: usize = 3;

/// A nisshi broker process listening on `127.0.0.1:port`.
pub struct Broker {
    port: u16,
    binary: PathBuf,
    log_path: PathBuf,
    child: Mutex<Option<std::process::Child>>,
}

/// A free TCP port on 127.0.0.1 (bind to :0, read the port, drop the listener).
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("bind 127.0.0.1:0 to find a free port")
}

/// The nisshi binary: `$SWITCHYARD_NISSHI`, else `nisshi` on `PATH`, else `~/.cargo/bin/nisshi`.
pub fn nisshi_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("SWITCHYARD_NISSHI").filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join("nisshi"))
        .find(|candidate| candidate.is_file());
    if let Some(path) = on_path {
        return path;
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    home.join(".cargo/bin/nisshi")
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
        let binary = nisshi_binary();
        assert!(
            binary.is_file(),
            "nisshi binary not found at {} (set SWITCHYARD_NISSHI, put nisshi on PATH, or `cargo install nisshi`)",
            binary.display()
        );
        let mut failures = Vec::new();
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port();
            let broker = Broker {
                port,
                log_path: std::env::temp_dir().join(format!(
                    "switchyard-nisshi-{}-{port}.log",
                    std::process::id()
                )),
                binary: binary.clone(),
                child: Mutex::new(None),
            };
            eprintln!(
                "testkit: nisshi broker on 127.0.0.1:{port}, log: {}",
                broker.log_path.display()
            );
            match broker.launch(true) {
                Ok(()) => return broker,
                Err(failure) => failures.push(failure),
            }
        }
        panic!("nisshi broker did not start:\n{}", failures.join("\n\n"));
    }

    /// `"127.0.0.1:PORT"`, for `bootstrap.servers`.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The port the broker listens on.
    pub fn port(&self) -> u16 {
        self.port
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

    /// Start the broker again on the same port (after [`Broker::stop`]), empty, and wait until it answers.
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
        panic!("nisshi broker did not restart:\n{}", failures.join("\n\n"));
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
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let mut command = Command::new(&self.binary);
        command
            .arg("broker")
            .args(["--listener-url", &url])
            .args(["--advertised-listener-url", &url])
            .args(["--storage-engine", "memory://nisshi/"])
            .args(["--group-initial-rebalance-delay", "0s"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log);
        let child =
            spawner::spawn(command).map_err(|e| format!("spawn {}: {e}", self.binary.display()))?;
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
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let mut consumer: Option<BaseConsumer> = None;
        let mut last_error = String::from("no answer yet");
        poll_until(STARTUP_TIMEOUT, || {
            if let Some(status) = self
                .lock_child()
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                return Some(Err(format!("nisshi exited with {status} before answering")));
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
