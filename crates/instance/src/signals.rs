//! The stop signals of an instance: SIGTERM (Kubernetes stopping a pod) and
//! SIGINT (ctrl-c). They are caught from the moment [`Signals::install`]
//! runs, so a signal that arrives while the instance is still starting is
//! not lost, and it no longer kills the process: the instance shuts down
//! in order instead (`Instance::run_until_signal`).

use serde::Serialize;

/// A signal that stopped an instance (the `signal` of its `ShutdownSummary`).
///
/// ```
/// use switchyard_instance::Signal;
/// assert_eq!(serde_json::to_string(&Signal::Terminate).unwrap(), "\"terminate\"");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Signal {
    /// SIGTERM.
    Terminate,
    /// SIGINT (ctrl-c).
    Interrupt,
}

/// Installed handlers of SIGTERM and SIGINT.
pub(crate) struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
}

impl Signals {
    /// Catch SIGTERM and SIGINT from now on (within a tokio runtime).
    pub(crate) fn install() -> std::io::Result<Signals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(Signals {
                term: signal(SignalKind::terminate())?,
                int: signal(SignalKind::interrupt())?,
            })
        }
        #[cfg(not(unix))]
        Ok(Signals {})
    }

    /// The next signal.
    pub(crate) async fn recv(&mut self) -> Signal {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.term.recv() => Signal::Terminate,
                _ = self.int.recv() => Signal::Interrupt,
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            Signal::Interrupt
        }
    }
}
