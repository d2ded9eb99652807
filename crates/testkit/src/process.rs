//! A consumer under test, run as a child process with line-oriented stdout.
//!
//! [`Child::spawn`] starts the program through [`crate::spawner`] (so it dies with the test process) and starts a
//! reader thread that collects its stdout line by line and echoes each line to stderr prefixed with the child's name,
//! so a failing test's output shows what the child said. Tests then wait for the lines that announce progress
//! ([`Child::wait_for_line`]) and stop the child gracefully ([`Child::terminate`]) or not ([`Child::kill`]).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::spawner;
use crate::wait::poll_until;

/// How many trailing lines an error of [`Child::wait_for_line`] shows.
const TAIL_LINES: usize = 20;

/// How long [`Child::wait_exit`] waits, after the exit, for the rest of the child's stdout (a grandchild that
/// inherited it may keep it open).
const EOF_GRACE: Duration = Duration::from_secs(10);

/// The stdout lines of a child, shared with its reader thread.
#[derive(Default)]
struct Output {
    lines: Vec<String>,
    /// `consumed[i]`: line `i` was already returned by [`Child::wait_for_line`].
    consumed: Vec<bool>,
    /// The child closed its stdout (usually: it exited).
    eof: bool,
}

/// A child process under test (see the module docs). Killed with SIGKILL on drop if still running.
pub struct Child {
    name: String,
    child: std::process::Child,
    status: Option<ExitStatus>,
    output: Arc<(Mutex<Output>, Condvar)>,
}

impl Child {
    /// Spawn `program args` with the extra environment `env`. Stdout lines are collected by a reader thread and
    /// echoed to stderr as `[name] line`; stderr is inherited; stdin is closed. The child gets
    /// `PR_SET_PDEATHSIG(SIGKILL)`, so it dies with the test. Panics if the program cannot be started.
    pub fn spawn(name: &str, program: &Path, args: &[String], env: &[(String, String)]) -> Child {
        let mut command = Command::new(program);
        command.args(args).envs(env.iter().map(|(k, v)| (k, v)));
        Child::spawn_command(name, command)
    }

    /// [`Child::spawn`] for a prepared `command` (for example [`crate::java_command`] with a Java program), whose
    /// stdin, stdout and stderr are set as there.
    pub fn spawn_command(name: &str, mut command: Command) -> Child {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let program = command.get_program().to_string_lossy().into_owned();
        let mut child =
            spawner::spawn(command).unwrap_or_else(|e| panic!("spawn {name} ({program}): {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let output: Arc<(Mutex<Output>, Condvar)> = Arc::default();
        let shared = output.clone();
        let prefix = name.to_string();
        std::thread::Builder::new()
            .name(format!("stdout-{name}"))
            .spawn(move || {
                let mut reader = BufReader::new(stdout);
                let mut buf = Vec::new();
                loop {
                    buf.clear();
                    match reader.read_until(b'\n', &mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {
                            let line = String::from_utf8_lossy(&buf)
                                .trim_end_matches(['\n', '\r'])
                                .to_string();
                            eprintln!("[{prefix}] {line}");
                            let (lock, changed) = &*shared;
                            let mut out = lock.lock().unwrap_or_else(|p| p.into_inner());
                            out.lines.push(line);
                            out.consumed.push(false);
                            changed.notify_all();
                        }
                    }
                }
                let (lock, changed) = &*shared;
                lock.lock().unwrap_or_else(|p| p.into_inner()).eof = true;
                changed.notify_all();
            })
            .expect("spawn stdout reader thread");
        Child {
            name: name.to_string(),
            child,
            status: None,
            output,
        }
    }

    fn output(&self) -> MutexGuard<'_, Output> {
        self.output.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Wait for the first stdout line matching `pred` that no earlier `wait_for_line` returned (lines printed before
    /// this call count), mark it returned, and return it. `Err` with the last 20 lines if no such line comes within
    /// `timeout`, or if the child closes its stdout first.
    pub fn wait_for_line(
        &self,
        pred: impl Fn(&str) -> bool,
        timeout: Duration,
    ) -> Result<String, String> {
        let deadline = Instant::now() + timeout;
        let (_, changed) = &*self.output;
        let mut out = self.output();
        let mut checked = 0;
        loop {
            let Output {
                lines,
                consumed,
                eof,
            } = &mut *out;
            if let Some(i) = (checked..lines.len()).find(|&i| !consumed[i] && pred(&lines[i])) {
                consumed[i] = true;
                return Ok(lines[i].clone());
            }
            checked = lines.len();
            let now = Instant::now();
            if *eof || now >= deadline {
                let why = if *eof {
                    "closed its stdout"
                } else {
                    "printed no matching line"
                };
                let tail = &lines[lines.len().saturating_sub(TAIL_LINES)..];
                return Err(format!(
                    "{} {why} within {timeout:?}; last {} lines:\n{}",
                    self.name,
                    tail.len(),
                    tail.join("\n")
                ));
            }
            out = changed
                .wait_timeout(out, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Every stdout line so far.
    pub fn lines(&self) -> Vec<String> {
        self.output().lines.clone()
    }

    /// The name given at spawn.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Kill the child with SIGKILL and reap it (no-op if it already exited).
    pub fn kill(&mut self) {
        if self.exit_status().is_none() {
            let _ = self.child.kill();
            self.status = self.child.wait().ok();
        }
    }

    /// Send SIGTERM (a graceful stop request); does not wait. See [`Child::wait_exit`].
    pub fn terminate(&mut self) {
        if self.exit_status().is_none() {
            // SAFETY: plain kill(2) on our own, not yet reaped child, so the pid cannot have been reused.
            unsafe {
                libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
            }
        }
    }

    /// Wait up to `timeout` for the child to exit; its exit status, or `None` on timeout. After the exit it also
    /// waits (up to [`EOF_GRACE`]) until the reader thread has read the child's stdout to its end, so that
    /// [`Child::lines`] then holds everything the child printed.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let status = poll_until(timeout, || self.exit_status()).ok()?;
        let deadline = Instant::now() + EOF_GRACE;
        let (_, changed) = &*self.output;
        let mut out = self.output();
        while !out.eof {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            out = changed
                .wait_timeout(out, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        Some(status)
    }

    /// The exit status if the child has exited (reaping it), `None` while it runs.
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().ok().flatten();
        }
        self.status
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(name: &str, script: &str) -> Child {
        Child::spawn(
            name,
            Path::new("/bin/sh"),
            &["-c".to_string(), script.to_string()],
            &[],
        )
    }

    #[test]
    fn waits_for_lines_in_order_and_consumes_them() {
        let mut child = sh(
            "echoer",
            "echo ready; echo item 1; echo item 2; echo \"$GREETING\"; exec sleep 30",
        );
        let wait = Duration::from_secs(10);
        assert_eq!(
            child
                .wait_for_line(|l| l.starts_with("item"), wait)
                .unwrap(),
            "item 1"
        );
        assert_eq!(
            child
                .wait_for_line(|l| l.starts_with("item"), wait)
                .unwrap(),
            "item 2"
        );
        assert_eq!(
            child.wait_for_line(|l| l == "ready", wait).unwrap(),
            "ready"
        );
        let err = child
            .wait_for_line(|l| l == "ready", Duration::from_millis(50))
            .unwrap_err();
        assert!(
            err.contains("no matching line") && err.contains("item 2"),
            "{err}"
        );
        assert!(child.lines().len() >= 4);
        child.terminate();
        let status = child
            .wait_exit(Duration::from_secs(10))
            .expect("exits on SIGTERM");
        assert!(!status.success());
    }

    #[test]
    fn env_is_passed_and_eof_ends_waiting() {
        let mut child = Child::spawn(
            "env",
            Path::new("/bin/sh"),
            &["-c".to_string(), "echo \"hello $WHO\"".to_string()],
            &[("WHO".to_string(), "world".to_string())],
        );
        assert_eq!(
            child
                .wait_for_line(|l| l.starts_with("hello"), Duration::from_secs(10))
                .unwrap(),
            "hello world"
        );
        let err = child
            .wait_for_line(|l| l == "never", Duration::from_secs(30))
            .unwrap_err();
        assert!(err.contains("closed its stdout"), "{err}");
        assert!(child.wait_exit(Duration::from_secs(10)).unwrap().success());
    }

    #[test]
    fn wait_exit_returns_after_every_line_is_read() {
        // the child exits long before its reader thread has echoed all of
        // its output: `lines()` after `wait_exit` must still hold all of it
        let mut child = sh("counter", "seq 1 100000");
        assert!(child.wait_exit(Duration::from_secs(10)).unwrap().success());
        assert_eq!(child.lines().len(), 100000);
    }

    #[test]
    fn kill_reaps() {
        let mut child = sh("sleeper", "exec sleep 30");
        assert!(child.wait_exit(Duration::from_millis(20)).is_none());
        child.kill();
        assert!(child.exit_status().is_some());
        assert!(child.pid() > 0);
    }
}
