//! Helpers shared by the end-to-end tests: the broker, short-timeout consumer
//! configuration, an in-process collecting listener, probe processes, a
//! reader of records with their headers, a client of the HTTP APIs, and an
//! async wait with a deadline.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
pub use switchyard_config::GroupProtocol;
use switchyard_config::{AssignmentStrategy, ConsumerConfig, OffsetReset};
use switchyard_runtime::deserializer::Utf8;
use switchyard_runtime::record::Record;
use switchyard_runtime::ListenerBuilder;
pub use switchyard_testkit::*;

/// The broker of this test binary.
pub fn broker() -> &'static Broker {
    Broker::shared()
}

pub fn bootstrap() -> String {
    broker().bootstrap()
}

/// Consumer settings with short timeouts so that tests stay fast (classic
/// protocol).
pub fn config(group: &str) -> ConsumerConfig {
    config_for(group, GroupProtocol::Classic)
}

/// [`config`] under `protocol`. Classic: session timeout 6 s, heartbeat 1 s, range
/// assignor. Consumer (KIP-848): none of those (librdkafka refuses them);
/// the test broker's `group.consumer.session.timeout.ms` (3 s) and
/// `group.consumer.heartbeat.interval.ms` (250 ms) apply, and the broker's
/// default assignor (`uniform`) assigns. `max.poll.interval.ms` is 10 s
/// under both.
pub fn config_for(group: &str, protocol: GroupProtocol) -> ConsumerConfig {
    let config = ConsumerConfig::new(bootstrap())
        .with_group(group)
        .with_group_protocol(protocol)
        .with_offset_reset(OffsetReset::Earliest)
        .with_max_poll_interval_ms(10000);
    match protocol {
        GroupProtocol::Classic => config
            .with_session_timeout_ms(6000)
            .with_heartbeat_interval_ms(1000)
            .with_strategy(AssignmentStrategy::Range),
        GroupProtocol::Consumer => config,
    }
}

/// The `switchyard-probe` flags that select `protocol`.
pub fn protocol_args(protocol: GroupProtocol) -> [&'static str; 2] {
    ["--group-protocol", protocol.as_str()]
}

/// Probe flags for a short session, so that the group notices a killed
/// member quickly: 3 s (heartbeat 500 ms) under classic; under consumer the
/// broker's `group.consumer.session.timeout.ms` of the test broker applies
/// (the same 3 s), so none.
pub fn fast_session_args(protocol: GroupProtocol) -> &'static [&'static str] {
    match protocol {
        GroupProtocol::Classic => &["--session-timeout-ms", "3000", "--heartbeat-ms", "500"],
        GroupProtocol::Consumer => &[],
    }
}

/// Two tests of one body, one per group protocol: `$classic` runs
/// `$body(GroupProtocol::Classic)`, `$consumer` runs
/// `$body(GroupProtocol::Consumer)`. With `async`, the body is an async fn
/// and the tests run on a two-thread tokio runtime.
#[macro_export]
macro_rules! protocol_tests {
    ($body:ident: $classic:ident, $consumer:ident) => {
        #[test]
        fn $classic() {
            $body($crate::e2e::common::GroupProtocol::Classic)
        }

        #[test]
        fn $consumer() {
            $body($crate::e2e::common::GroupProtocol::Consumer)
        }
    };
    (async $body:ident: $classic:ident, $consumer:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $classic() {
            $body($crate::e2e::common::GroupProtocol::Classic).await
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $consumer() {
            $body($crate::e2e::common::GroupProtocol::Consumer).await
        }
    };
}

/// (partition, offset, key, value) of every record a collecting handler saw, in order.
pub type Seen = Arc<Mutex<Vec<(i32, i64, String, String)>>>;

/// Attach a handler that records every record into the returned list.
pub fn collecting(b: ListenerBuilder) -> (ListenerBuilder, Seen) {
    let seen: Seen = Arc::default();
    let s = seen.clone();
    let b = b.handler(Utf8, Utf8, move |r: Record<String, String>| {
        s.lock()
            .unwrap()
            .push((r.partition, r.offset, r.key.unwrap_or_default(), r.value));
        async { Ok(()) }
    });
    (b, seen)
}

pub fn count(seen: &Seen) -> usize {
    seen.lock().unwrap().len()
}

/// Wait (asynchronously) until `cond` holds; panics with `what` after `timeout`.
pub async fn eventually(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    loop {
        if cond() {
            return;
        }
        if start.elapsed() > timeout {
            panic!("timed out after {:?} waiting for: {what}", start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A fresh temp file path for a processed log.
pub fn log_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("{}.log", unique_name(name)))
}

/// Start `switchyard-probe` (the test-only consumer binary of feature
/// `test-probe`) as a separate consumer process.
pub fn probe(name: &str, group: &str, topic: &str, log: &std::path::Path, extra: &[&str]) -> Child {
    let mut args: Vec<String> = vec![
        "--bootstrap".into(),
        bootstrap(),
        "--group".into(),
        group.into(),
        "--topics".into(),
        topic.into(),
        "--log".into(),
        log.display().to_string(),
        "--instance".into(),
        name.into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let child = Child::spawn(
        name,
        std::path::Path::new(env!("CARGO_BIN_EXE_switchyard-probe")),
        &args,
        &[("SWITCHYARD_LOG".into(), "info".into())],
    );
    child
        .wait_for_line(|l| l == "STARTED", Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("{name} did not start: {e}"));
    child
}

/// Run the `switchyard` binary with `args`: its exit code and stdout (both
/// streams are echoed to stderr, so a failing test shows them).
pub fn switchyard(args: &[String]) -> (i32, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(args)
        .output()
        .expect("run switchyard");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    eprintln!(
        "[switchyard {}] {stdout}{}",
        args.first().map_or("", String::as_str),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), stdout)
}

/// `switchyard run` of a run file in the temp folder, named after `name`,
/// that holds `text` as it is: the exit code and stderr (for files the run
/// refuses before it starts anything).
pub fn run_refusal(name: &str, text: &str) -> (i32, String) {
    let path = std::env::temp_dir().join(format!("{}.toml", unique_name(name)));
    std::fs::write(&path, text).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["run", "--config", &path.display().to_string()])
        .output()
        .expect("run switchyard");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.code().unwrap_or(-1), stderr)
}

/// Offsets 0..end of every partition, for [`ProcessedLog::check_no_gaps`].
pub fn zeros(end: &std::collections::BTreeMap<i32, i64>) -> std::collections::BTreeMap<i32, i64> {
    end.keys().map(|p| (*p, 0)).collect()
}

/// One request to an HTTP API at `addr` (`host:port`), with a JSON `body`
/// and, given a `token`, `Authorization: Bearer`: the status and the body
/// as JSON (`Null` when it is not JSON).
pub fn http(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (u16, serde_json::Value) {
    let (code, body) = http_request(addr, method, path, token, body)
        .unwrap_or_else(|e| panic!("{method} {path} at {addr}: {e}"));
    (
        code,
        serde_json::from_str(&body).unwrap_or(serde_json::Value::Null),
    )
}

/// The first `n` records of partition 0 of `topic` from offset `from` on:
/// each record's value bytes and headers (header values as UTF-8, lossy).
/// Panics when fewer than `n` arrive within 30 s.
pub fn read_with_headers(
    b: &str,
    topic: &str,
    from: Offset,
    n: usize,
) -> Vec<(Vec<u8>, BTreeMap<String, String>)> {
    let c: BaseConsumer = client_config(b)
        .set("group.id", unique_name("header-reader"))
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, from).unwrap();
    c.assign(&tpl).unwrap();
    let mut out = Vec::new();
    wait_until(
        &format!("{n} records of {topic}"),
        Duration::from_secs(30),
        || {
            if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
                let headers = m
                    .headers()
                    .map(|hs| {
                        hs.iter()
                            .map(|h| {
                                let v = String::from_utf8_lossy(h.value.unwrap_or_default());
                                (h.key.to_string(), v.into_owned())
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                out.push((m.payload().unwrap_or_default().to_vec(), headers));
            }
            out.len() >= n
        },
    );
    out
}

/// The first `n` records of a dead-letter topic (partition 0): value (UTF-8,
/// lossy) and headers. Panics when fewer than `n` arrive within 30 s.
pub fn read_dead_letters(
    b: &str,
    topic: &str,
    n: usize,
) -> Vec<(String, BTreeMap<String, String>)> {
    read_with_headers(b, topic, Offset::Beginning, n)
        .into_iter()
        .map(|(value, headers)| (String::from_utf8_lossy(&value).into_owned(), headers))
        .collect()
}

/// Names of one test's control plane (application, control and status
/// topics), and the arguments that point a probe or the CLI at it.
pub struct Plane {
    pub app: String,
    pub control: String,
    pub status: String,
}

impl Plane {
    /// Partition -> owning slot of `listener`, from the control topic.
    pub fn owners(&self, listener: &str) -> std::collections::BTreeMap<i32, String> {
        use switchyard_control::Store;
        let store = switchyard_control::kafka_store::KafkaStore::new(bootstrap(), &self.control)
            .expect("store");
        let s = store.read(&self.app).expect("read");
        s.owners
            .get(listener)
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| {
                let p = k.rsplit_once('-').expect("partition key").1;
                (p.parse().expect("a partition"), v)
            })
            .collect()
    }

    /// A plane with its control topic created (as `switchyard deploy init`
    /// or `ctl` would): instances never create it.
    pub fn new(prefix: &str) -> Plane {
        let plane = Plane {
            app: unique_name(&format!("{prefix}-app")),
            control: unique_name(&format!("{prefix}-ctl")),
            status: unique_name(&format!("{prefix}-st")),
        };
        switchyard_control::compacted_topic::ensure_topic(bootstrap(), &plane.control)
            .expect("control topic");
        plane
    }

    /// `--app`, `--control-topic` and `--status-topic` of this plane.
    fn flags(&self) -> Vec<String> {
        let flags = [
            "--app",
            &self.app,
            "--control-topic",
            &self.control,
            "--status-topic",
            &self.status,
        ];
        flags.iter().map(|s| s.to_string()).collect()
    }

    /// Flags of a probe with a control-plane agent (status every 200 ms).
    pub fn probe_args(&self) -> Vec<String> {
        let mut args = self.flags();
        args.extend(["--status-interval-ms".to_string(), "200".to_string()]);
        args
    }

    /// `switchyard <command> <verb>` pointed at this plane.
    pub fn cli_args(&self, command: &str, verb: &str) -> Vec<String> {
        let mut args = vec![command.to_string(), verb.to_string()];
        args.extend(["--bootstrap".to_string(), bootstrap()]);
        args.extend(self.flags());
        args
    }

    /// A reader of the status topic.
    pub fn tail(&self) -> switchyard_control::status_topic::StatusTail {
        switchyard_control::status_topic::StatusTail::start(bootstrap(), &self.status)
            .expect("status tail")
    }
}

/// Run `program args` to its exit within `timeout`: exit code, stdout,
/// stderr (both read while it runs, so a full pipe never blocks it).
pub fn run_bounded(program: &str, args: &[String], timeout: Duration) -> (i32, String, String) {
    use std::io::Read;
    use std::process::{Command, Stdio};
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    fn drain(mut r: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    }
    let out = drain(child.stdout.take().unwrap());
    let err = drain(child.stderr.take().unwrap());
    let deadline = std::time::Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("{program} did not exit within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let (out, err) = (out.join().unwrap(), err.join().unwrap());
    eprintln!("[{program}] {out}{err}");
    (status.code().unwrap_or(-1), out, err)
}

/// A `switchyard run` file in the temp folder, named after `name`: a
/// `[kafka]` table with the test broker's bootstrap, then `tables` (the
/// test's `[instance]`, `[consumer]` and `[[listener]]` tables).
pub fn run_file_with(name: &str, tables: &str) -> std::path::PathBuf {
    let text = format!(
        "[kafka]\n\"bootstrap.servers\" = \"{}\"\n{tables}",
        bootstrap()
    );
    let path = std::env::temp_dir().join(format!("{}.toml", unique_name(name)));
    std::fs::write(&path, text).unwrap();
    path
}
