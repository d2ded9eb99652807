//! The one thread that spawns every child process of the testkit.
//!
//! `prctl(PR_SET_PDEATHSIG, SIGKILL)` kills a child when the *thread* that forked it exits, not the process. Test
//! threads come and go, so children are forked from a dedicated thread that never exits: the children then die
//! exactly when the test process does, however it ends (including a panic, `abort` or SIGKILL of the test binary).
//! The brokers and the consumers under test hand their `Command`s to [`spawn`].

use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::sync::mpsc::{self, Sender};
use std::sync::{Mutex, OnceLock};

type Request = (Command, Sender<io::Result<Child>>);

fn spawner() -> &'static Mutex<Sender<Request>> {
    static SPAWNER: OnceLock<Mutex<Sender<Request>>> = OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Request>();
        std::thread::Builder::new()
            .name("testkit-spawner".into())
            .spawn(move || {
                // The sender lives in a static, so this loop (and the thread) never ends.
                for (mut command, reply) in rx {
                    let _ = reply.send(command.spawn());
                }
                // Unreachable in practice; park forever rather than exit, which would kill every child.
                loop {
                    std::thread::park();
                }
            })
            .expect("spawn the testkit spawner thread");
        Mutex::new(tx)
    })
}

/// Spawn `command` from the spawner thread with `PR_SET_PDEATHSIG = SIGKILL`, so that the child is killed when the
/// test process exits.
pub(crate) fn spawn(mut command: Command) -> io::Result<Child> {
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: the closure only calls async-signal-safe functions (prctl, getppid, _exit).
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ) != 0
            {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died between fork and prctl: then nobody would ever kill us.
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
    let (reply_tx, reply_rx) = mpsc::channel();
    spawner()
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .send((command, reply_tx))
        .map_err(|_| io::Error::other("testkit spawner thread is gone"))?;
    reply_rx
        .recv()
        .map_err(|_| io::Error::other("testkit spawner thread dropped the request"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spawns_through_the_spawner_thread() {
        let mut child = spawn(Command::new("true")).expect("spawn true");
        assert!(child.wait().unwrap().success());
    }
}
