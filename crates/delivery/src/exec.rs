//! Exec delivery: records go to a child process, one
//! [envelope](crate::envelope) per line on its stdin, and each is
//! acknowledged by one [`Ack`] line on its stdout.
//!
//! A handler call completes only when the child acknowledged its record, so
//! nothing is committed before that. `"ok":false` is a handler error (the
//! listener retries, then dead-letters or skips). When the child dies (exits,
//! closes its stdout, or a write to its stdin fails), every record in flight
//! fails with [`DeliveryError::ChildEnded`] and goes back to the listener's
//! retry policy, and the child is started again after a backoff (doubling
//! from `restart_backoff` up to `max_restart_backoff`; back to the start once
//! a child lived a minute). Records that arrive meanwhile wait for the new
//! child; a record not acknowledged within `timeout` fails with
//! [`DeliveryError::AckTimeout`] (a late acknowledgement of it is then
//! ignored, or taken for its retry).
//!
//! The child inherits stderr and the environment. At
//! [`ExecDelivery::stop`] its stdin is closed, and it is killed unless it
//! exits within 5 s.
//!
//! The listener's `workers` bound the records in flight at once; with more
//! than one, the child may acknowledge in any order (acknowledgements name
//! their record). Ordering by key or partition holds as for any handler.
//!
//! ```no_run
//! use std::time::Duration;
//! use switchyard_delivery::{exec::{ExecDelivery, ExecOptions}, envelope::ValueFormat};
//! use switchyard_runtime::Listener;
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let exec = ExecDelivery::start(ExecOptions::new(["python3", "app.py"]))?;
//! let builder = Listener::builder("orders").topics(["orders"]);
//! let listener = exec.clone().attach(builder, ValueFormat::Auto).start()?;
//! // ... later
//! listener.shutdown().await;
//! exec.stop().await;
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use switchyard_runtime::ListenerBuilder;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::{mpsc, oneshot, watch};

use crate::ack::Ack;
use crate::envelope::{DeliveryRecord, Envelope};
use crate::error::DeliveryError;
use crate::schema::ValueDecoder;

/// Default acknowledgement timeout.
pub const DEFAULT_ACK_TIMEOUT: Duration = Duration::from_secs(30);

/// Settings of an [`ExecDelivery`].
#[derive(Debug, Clone)]
pub struct ExecOptions {
    /// Program and arguments.
    pub command: Vec<String>,
    /// How long a record may wait for its acknowledgement.
    pub timeout: Duration,
    /// Wait before the first restart of a dead child.
    pub restart_backoff: Duration,
    /// Upper bound of the restart wait.
    pub max_restart_backoff: Duration,
}

impl ExecOptions {
    /// Run `command` (program, then arguments) with the default timeouts.
    ///
    /// ```
    /// # use switchyard_delivery::exec::ExecOptions;
    /// let o = ExecOptions::new(["python3", "-u", "app.py"]);
    /// assert_eq!(o.command.len(), 3);
    /// ```
    pub fn new<S: Into<String>>(command: impl IntoIterator<Item = S>) -> ExecOptions {
        ExecOptions {
            command: command.into_iter().map(Into::into).collect(),
            timeout: DEFAULT_ACK_TIMEOUT,
            restart_backoff: Duration::from_millis(100),
            max_restart_backoff: Duration::from_secs(10),
        }
    }
    /// The acknowledgement timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

type RecordId = (String, i32, i64);

struct Request {
    id: RecordId,
    line: String,
    reply: oneshot::Sender<Result<(), DeliveryError>>,
}

struct Inner {
    requests: mpsc::UnboundedSender<Request>,
    stop: watch::Sender<bool>,
    timeout: Duration,
    starts: Arc<AtomicU64>,
    supervisor: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// Delivers records to a child process; cheap to clone (one child).
#[derive(Clone)]
pub struct ExecDelivery {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ExecDelivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecDelivery")
            .field("timeout", &self.inner.timeout)
            .field("starts", &self.starts())
            .finish()
    }
}

impl ExecDelivery {
    /// Start the child and its supervisor (within a tokio runtime).
    ///
    /// # Errors
    ///
    /// [`DeliveryError::Config`] for an empty command, [`DeliveryError::Spawn`]
    /// when the first start fails (later restarts are retried with backoff).
    pub fn start(options: ExecOptions) -> Result<ExecDelivery, DeliveryError> {
        if options.command.first().is_none_or(|p| p.trim().is_empty()) {
            return Err(DeliveryError::Config {
                key: "command",
                reason: "the command is empty: give the program and its arguments".into(),
            });
        }
        let child = spawn(&options.command)?;
        let (requests, rx) = mpsc::unbounded_channel();
        let (stop, stopped) = watch::channel(false);
        let starts = Arc::new(AtomicU64::new(1));
        let supervisor = tokio::spawn(supervise(
            options.clone(),
            child,
            rx,
            stopped,
            starts.clone(),
        ));
        Ok(ExecDelivery {
            inner: Arc::new(Inner {
                requests,
                stop,
                timeout: options.timeout,
                starts,
                supervisor: std::sync::Mutex::new(Some(supervisor)),
            }),
        })
    }

    /// How many times the child was started (1 + restarts).
    pub fn starts(&self) -> u64 {
        self.inner.starts.load(Ordering::Relaxed)
    }

    /// The listener `builder` with this delivery as its record handler;
    /// keys are raw bytes, values encoded by `format`.
    pub fn attach(
        self,
        builder: ListenerBuilder,
        format: impl Into<ValueDecoder>,
    ) -> ListenerBuilder {
        let format: ValueDecoder = format.into();
        builder.handler(
            switchyard_runtime::deserializer::Bytes,
            format,
            move |r: DeliveryRecord| {
                let this = self.clone();
                async move { this.deliver(&r).await.map_err(Into::into) }
            },
        )
    }

    /// Write `record` to the child and wait for its acknowledgement.
    pub async fn deliver(&self, record: &DeliveryRecord) -> Result<(), DeliveryError> {
        let (reply, answer) = oneshot::channel();
        let request = Request {
            id: (record.topic.clone(), record.partition, record.offset),
            line: Envelope::of(record).to_json(),
            reply,
        };
        self.inner
            .requests
            .send(request)
            .map_err(|_| DeliveryError::Stopped)?;
        match tokio::time::timeout(self.inner.timeout, answer).await {
            Err(_) => Err(DeliveryError::AckTimeout {
                timeout: self.inner.timeout,
            }),
            Ok(Err(_)) => Err(DeliveryError::Stopped),
            Ok(Ok(result)) => result,
        }
    }

    /// Close the child's stdin, wait up to 5 s for it to exit (then kill
    /// it), and fail what is still waiting with [`DeliveryError::Stopped`].
    pub async fn stop(&self) {
        let _ = self.inner.stop.send(true);
        let task = self.inner.supervisor.lock().expect("not poisoned").take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

fn spawn(command: &[String]) -> Result<Child, DeliveryError> {
    Command::new(&command[0])
        .args(&command[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| DeliveryError::Spawn {
            program: command[0].clone(),
            source,
        })
}

/// How one child's run ended.
enum End {
    /// `stop()` or every delivery dropped: do not restart.
    Stopped,
    /// It died: restart.
    Died(String),
}

async fn supervise(
    options: ExecOptions,
    first: Child,
    mut requests: mpsc::UnboundedReceiver<Request>,
    mut stop: watch::Receiver<bool>,
    starts: Arc<AtomicU64>,
) {
    let mut child = Some(first);
    let mut backoff = options.restart_backoff;
    loop {
        let started = Instant::now();
        if let Some(c) = child.take() {
            match run_child(c, &mut requests, &mut stop).await {
                End::Stopped => break,
                End::Died(why) => {
                    tracing::warn!(command = ?options.command, "the application process ended: {why}; restarting in {backoff:?}")
                }
            }
        }
        if started.elapsed() > Duration::from_secs(60) {
            backoff = options.restart_backoff;
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stop.changed() => break,
        }
        backoff = (backoff * 2).min(options.max_restart_backoff);
        match spawn(&options.command) {
            Ok(c) => {
                starts.fetch_add(1, Ordering::Relaxed);
                child = Some(c);
            }
            Err(e) => tracing::warn!("{e}; trying again in {backoff:?}"),
        }
    }
    requests.close();
    while let Ok(r) = requests.try_recv() {
        let _ = r.reply.send(Err(DeliveryError::Stopped));
    }
}

async fn run_child(
    mut child: Child,
    requests: &mut mpsc::UnboundedReceiver<Request>,
    stop: &mut watch::Receiver<bool>,
) -> End {
    let stdin = child.stdin.take().expect("piped");
    let stdout = child.stdout.take().expect("piped");
    let mut pending: HashMap<RecordId, oneshot::Sender<Result<(), DeliveryError>>> = HashMap::new();
    let (end, stdout) = exchange(&mut child, stdin, stdout, requests, stop, &mut pending).await;
    let reason = match &end {
        End::Stopped => {
            // stdin is closed: give the child time to finish and acknowledge
            let mut lines = BufReader::new(stdout).lines();
            let drain = async {
                while let Ok(Some(line)) = lines.next_line().await {
                    acknowledge(&line, &mut pending);
                }
                child.wait().await
            };
            if tokio::time::timeout(Duration::from_secs(5), drain)
                .await
                .is_err()
            {
                let _ = child.kill().await;
            }
            "the delivery stopped".to_string()
        }
        End::Died(why) => {
            let _ = child.kill().await;
            why.clone()
        }
    };
    for (_, reply) in pending.drain() {
        let _ = reply.send(Err(DeliveryError::ChildEnded {
            reason: reason.clone(),
        }));
    }
    end
}

/// Feed requests to the child and match its acknowledgements until it
/// dies or the delivery stops; stdin is closed on return.
async fn exchange(
    child: &mut Child,
    mut stdin: ChildStdin,
    stdout: ChildStdout,
    requests: &mut mpsc::UnboundedReceiver<Request>,
    stop: &mut watch::Receiver<bool>,
    pending: &mut HashMap<RecordId, oneshot::Sender<Result<(), DeliveryError>>>,
) -> (End, ChildStdout) {
    let mut lines = BufReader::new(stdout).lines();
    let end = loop {
        tokio::select! {
            request = requests.recv() => {
                let Some(request) = request else { break End::Stopped };
                if request.reply.is_closed() {
                    continue; // its handler call timed out or was abandoned
                }
                let mut line = request.line;
                line.push('\n');
                if let Err(e) = stdin.write_all(line.as_bytes()).await {
                    let reason = format!("writing to its stdin failed: {e}");
                    let _ = request.reply.send(Err(DeliveryError::ChildEnded { reason: reason.clone() }));
                    break End::Died(reason);
                }
                pending.insert(request.id, request.reply);
            }
            line = lines.next_line() => match line {
                Ok(Some(line)) => acknowledge(&line, pending),
                Ok(None) => break End::Died(exit_status(child).await),
                Err(e) => break End::Died(format!("reading its stdout failed: {e}")),
            },
            status = child.wait() => {
                // read what it acknowledged before it ended
                let drain = async {
                    while let Ok(Some(line)) = lines.next_line().await {
                        acknowledge(&line, pending);
                    }
                };
                let _ = tokio::time::timeout(Duration::from_millis(500), drain).await;
                break End::Died(match status {
                    Ok(s) => format!("it exited ({s})"),
                    Err(e) => format!("waiting for it failed: {e}"),
                });
            }
            _ = stop.changed() => break End::Stopped,
        }
    };
    drop(stdin);
    (end, lines.into_inner().into_inner())
}

async fn exit_status(child: &mut Child) -> String {
    match tokio::time::timeout(Duration::from_millis(500), child.wait()).await {
        Ok(Ok(s)) => format!("it closed its stdout and exited ({s})"),
        _ => "it closed its stdout".to_string(),
    }
}

fn acknowledge(
    line: &str,
    pending: &mut HashMap<RecordId, oneshot::Sender<Result<(), DeliveryError>>>,
) {
    let Some(ack) = Ack::parse(line) else {
        if !line.trim().is_empty() {
            tracing::warn!(line = %line.chars().take(200).collect::<String>(), "the application process wrote a line that is not an acknowledgement");
        }
        return;
    };
    let id = (ack.topic, ack.partition, ack.offset);
    let Some(reply) = pending.remove(&id) else {
        tracing::debug!(?id, "acknowledgement of a record not in flight");
        return;
    };
    let result = if ack.ok {
        Ok(())
    } else {
        Err(DeliveryError::Refused {
            topic: id.0,
            partition: id.1,
            offset: id.2,
            error: ack.error.unwrap_or_else(|| "no reason given".into()),
        })
    };
    let _ = reply.send(result);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::ValueFormat;
    use switchyard_runtime::deserializer::Deserializer;
    use switchyard_runtime::record::Record;

    fn record(offset: i64, value: &str) -> DeliveryRecord {
        Record {
            topic: "t".into(),
            partition: 0,
            offset,
            timestamp_ms: None,
            headers: vec![],
            key: None,
            value: ValueFormat::Text
                .deserialize("t", Some(value.as_bytes()))
                .unwrap(),
        }
    }

    /// A child that acknowledges each line, refusing values "bad" and
    /// exiting on "die".
    const CHILD: &str = r#"
import json, sys
for line in sys.stdin:
    e = json.loads(line)
    if e["value"] == "die":
        sys.exit(3)
    ack = {"topic": e["topic"], "partition": e["partition"], "offset": e["offset"], "ok": e["value"] != "bad"}
    if not ack["ok"]:
        ack["error"] = "bad value"
    print(json.dumps(ack), flush=True)
"#;

    #[tokio::test]
    async fn acknowledged_refused_and_died_records() {
        let exec =
            ExecDelivery::start(ExecOptions::new(["/usr/bin/python3", "-c", CHILD])).unwrap();
        exec.deliver(&record(1, "good")).await.unwrap();
        let e = exec.deliver(&record(2, "bad")).await.unwrap_err();
        assert!(matches!(e, DeliveryError::Refused { offset: 2, .. }), "{e}");
        let e = exec.deliver(&record(3, "die")).await.unwrap_err();
        assert!(matches!(e, DeliveryError::ChildEnded { .. }), "{e}");
        // the next record waits for the restarted child
        exec.deliver(&record(4, "good")).await.unwrap();
        assert_eq!(exec.starts(), 2);
        exec.stop().await;
        let e = exec.deliver(&record(5, "good")).await.unwrap_err();
        assert!(matches!(e, DeliveryError::Stopped), "{e}");
    }

    #[tokio::test]
    async fn a_silent_child_times_out_and_a_missing_program_is_refused() {
        let exec = ExecDelivery::start(
            ExecOptions::new(["/usr/bin/python3", "-c", "import time; time.sleep(60)"])
                .timeout(Duration::from_millis(200)),
        )
        .unwrap();
        let e = exec.deliver(&record(1, "x")).await.unwrap_err();
        assert!(matches!(e, DeliveryError::AckTimeout { .. }), "{e}");
        exec.stop().await;
        let e = ExecDelivery::start(ExecOptions::new(["/no/such/program"])).unwrap_err();
        assert!(e.to_string().contains("/no/such/program"), "{e}");
        assert!(ExecDelivery::start(ExecOptions::new(Vec::<String>::new())).is_err());
    }
}
