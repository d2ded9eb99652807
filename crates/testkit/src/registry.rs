//! The test Schema Registry: Apicurio Registry 3 (in-memory storage), whose Confluent-compatible API
//! (`/apis/ccompat/v7`) the schema tests and their independent producers use.
//!
//! `scripts/install-test-deps.sh` unpacks the runnable assembly of `io.apicurio:apicurio-registry-app` from Maven
//! Central into [`apicurio_home`]; a registry is `java -jar quarkus-run.jar` there, on a free 127.0.0.1 port, run by
//! a Java 21+ ([`registry_java`]). [`Registry::shared`] is the registry of the test process, started on first use and
//! shared by every test of the binary (tests isolate themselves with their own subjects, named after their topics);
//! [`Registry::start`] gives a test a registry of its own, which it may stop. Like the brokers, registries are spawned
//! through the testkit's spawner, so they die with the test process; their output goes to a log file in
//! [`std::env::temp_dir`], whose tail is in the panic message when a registry does not come up.

use std::fs::File;
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use crate::broker::free_port;
use crate::http::http_get;
use crate::spawner;
use crate::wait::poll_until;

/// How long a registry may take to answer its first request (Quarkus on a JVM, on a loaded machine).
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(120);
/// The path of the Confluent-compatible API under the registry's root.
pub const CCOMPAT_PATH: &str = "/apis/ccompat/v7";
const PORT_ATTEMPTS: usize = 3;

/// Where the install script put Apicurio Registry: `$SWITCHYARD_APICURIO_HOME`, else
/// `~/.cache/switchyard/apicurio`. It holds `quarkus-run.jar` and the fast-jar tree beside it.
pub fn apicurio_home() -> PathBuf {
    if let Some(path) = std::env::var_os("SWITCHYARD_APICURIO_HOME").filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    home.join(".cache/switchyard/apicurio")
}

/// The `java` that runs the registry (Apicurio 3 is built for Java 21): `$SWITCHYARD_REGISTRY_JAVA`, else the
/// newest JDK of version 21 or more in `/usr/lib/jvm` (read from its `release` file), else `java` on the `PATH`.
pub fn registry_java() -> PathBuf {
    if let Some(path) = std::env::var_os("SWITCHYARD_REGISTRY_JAVA").filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    let mut best: Option<(u32, PathBuf)> = None;
    for entry in std::fs::read_dir("/usr/lib/jvm")
        .into_iter()
        .flatten()
        .flatten()
    {
        let java = entry.path().join("bin/java");
        let Some(major) = java_major(&entry.path()) else {
            continue;
        };
        if major >= 21 && java.exists() && best.as_ref().is_none_or(|(m, _)| major > *m) {
            best = Some((major, java));
        }
    }
    best.map(|(_, java)| java)
        .unwrap_or_else(|| PathBuf::from("java"))
}

/// The major version of the JDK in `home`, from `JAVA_VERSION="25.0.3"` in its `release` file.
fn java_major(home: &Path) -> Option<u32> {
    let release = std::fs::read_to_string(home.join("release")).ok()?;
    let line = release
        .lines()
        .find_map(|l| l.strip_prefix("JAVA_VERSION="))?;
    let version = line.trim_matches('"');
    let major = version.split(['.', '-', '+']).next()?;
    match major.parse::<u32>().ok()? {
        1 => version.split('.').nth(1)?.parse().ok(),
        n => Some(n),
    }
}

/// An Apicurio Registry process listening on `127.0.0.1:port`.
pub struct Registry {
    port: u16,
    scheme: &'static str,
    props: Vec<(String, String)>,
    log_path: PathBuf,
    child: Mutex<Option<std::process::Child>>,
}

impl Registry {
    /// The registry of this test process: started on first use on a free port, waited for until it answers
    /// (deadline [`STARTUP_TIMEOUT`], panic with its log tail otherwise), shared by all tests of the binary, and killed
    /// when the test process exits.
    pub fn shared() -> &'static Registry {
        static SHARED: OnceLock<Registry> = OnceLock::new();
        SHARED.get_or_init(Registry::start)
    }

    /// Start a registry owned by the caller (killed on drop).
    pub fn start() -> Registry {
        Registry::start_with("http", &[])
    }

    /// Start a registry with extra Quarkus or Apicurio properties (`-Dkey=value`), such as TLS
    /// (`quarkus.http.ssl.certificate.files`, ...) or authentication; `scheme` is `https` when the port serves TLS
    /// (then pass `quarkus.http.insecure-requests=disabled` and the certificate; the port is given to
    /// `quarkus.http.ssl-port`).
    pub fn start_with(scheme: &'static str, props: &[(&str, &str)]) -> Registry {
        let mut failures = Vec::new();
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port();
            let name = format!("switchyard-registry-{}-{port}", std::process::id());
            let registry = Registry {
                port,
                scheme,
                props: props
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                log_path: std::env::temp_dir().join(format!("{name}.log")),
                child: Mutex::new(None),
            };
            eprintln!(
                "testkit: Apicurio Registry on {}, log: {}",
                registry.root(),
                registry.log_path.display()
            );
            match registry.launch() {
                Ok(()) => return registry,
                Err(failure) => failures.push(failure),
            }
        }
        panic!(
            "Apicurio Registry did not start:\n{}",
            failures.join("\n\n")
        );
    }

    /// `http://127.0.0.1:PORT` (or `https://`).
    pub fn root(&self) -> String {
        format!("{}://127.0.0.1:{}", self.scheme, self.port)
    }

    /// The Confluent-compatible API: `http://127.0.0.1:PORT/apis/ccompat/v7`, the URL registry clients take.
    pub fn url(&self) -> String {
        format!("{}{CCOMPAT_PATH}", self.root())
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The file the registry's output goes to.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Kill the registry (SIGKILL) and reap it; its in-memory schemas are lost. Not for the shared registry.
    pub fn stop(&self) {
        if let Some(mut child) = self.lock_child().take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The last `lines` lines of the registry's log.
    pub fn log_tail(&self, lines: usize) -> String {
        let mut text = String::new();
        if let Ok(mut f) = File::open(&self.log_path) {
            let mut buf = Vec::new();
            let _ = f.read_to_end(&mut buf);
            text = String::from_utf8_lossy(&buf).into_owned();
        }
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    fn lock_child(&self) -> std::sync::MutexGuard<'_, Option<std::process::Child>> {
        self.child
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn command(&self) -> Result<Command, String> {
        let home = apicurio_home();
        let jar = home.join("quarkus-run.jar");
        if !jar.exists() {
            return Err(format!(
                "{} is missing: run scripts/install-test-deps.sh",
                jar.display()
            ));
        }
        let mut command = Command::new(registry_java());
        command
            .current_dir(&home)
            // a short-lived test service: start fast, stay small
            .args(["-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xmx512m"])
            .arg("-Dquarkus.http.host=127.0.0.1")
            // the management interface is built in (port 9000 by default): a free port of its own, so that
            // registries (and anything else on 9000) do not collide
            .arg("-Dquarkus.management.host=127.0.0.1")
            .arg(format!("-Dquarkus.management.port={}", free_port()))
            .arg("-Dquarkus.otel.enabled=false");
        if self.scheme == "https" {
            command.arg(format!("-Dquarkus.http.ssl-port={}", self.port));
            command.arg(format!("-Dquarkus.http.port={}", free_port()));
        } else {
            command.arg(format!("-Dquarkus.http.port={}", self.port));
        }
        for (k, v) in &self.props {
            command.arg(format!("-D{k}={v}"));
        }
        command.arg("-jar").arg(jar).stdin(Stdio::null());
        Ok(command)
    }

    fn launch(&self) -> Result<(), String> {
        let log = File::create(&self.log_path)
            .map_err(|e| format!("create {}: {e}", self.log_path.display()))?;
        let mut command = self.command()?;
        command
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log);
        let child = spawner::spawn(command).map_err(|e| {
            format!(
                "spawn {} (Java 21+ needed; set SWITCHYARD_REGISTRY_JAVA): {e}",
                registry_java().display()
            )
        })?;
        *self.lock_child() = Some(child);
        match self.wait_ready() {
            Ok(()) => Ok(()),
            Err(why) => {
                self.stop();
                Err(format!(
                    "{why}; registry log {} ends with:\n{}",
                    self.log_path.display(),
                    self.log_tail(40)
                ))
            }
        }
    }

    /// Ready once Quarkus says it started and, over plain HTTP, `GET /apis/ccompat/v7/subjects` answers 200.
    fn wait_ready(&self) -> Result<(), String> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let mut last = String::from("no answer yet");
        poll_until(STARTUP_TIMEOUT, || {
            if let Some(status) = self
                .lock_child()
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                return Some(Err(format!(
                    "the registry exited with {status} before answering"
                )));
            }
            if !self.log_tail(400).contains(" started in ") {
                return None;
            }
            if self.scheme == "https" {
                return TcpStream::connect_timeout(&addr, Duration::from_secs(1))
                    .is_ok()
                    .then_some(Ok(()));
            }
            match http_get(addr, &format!("{CCOMPAT_PATH}/subjects")) {
                Ok((200, _)) => Some(Ok(())),
                Ok((status, body)) => {
                    last = format!("HTTP {status}: {body}");
                    None
                }
                Err(e) => {
                    last = e.to_string();
                    None
                }
            }
        })
        .unwrap_or_else(|elapsed| Err(format!("no answer after {elapsed:.1?} (last: {last})")))
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_versions_are_read_from_release_files() {
        let dir = std::env::temp_dir().join(format!("testkit-jdk-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("release"),
            "IMPLEMENTOR=\"x\"\nJAVA_VERSION=\"25.0.3\"\n",
        )
        .unwrap();
        assert_eq!(java_major(&dir), Some(25));
        std::fs::write(dir.join("release"), "JAVA_VERSION=\"1.8.0_402\"\n").unwrap();
        assert_eq!(java_major(&dir), Some(8));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
