//! The one place the `switchyard` binary sets up its logs (tracing, on
//! stderr): the filter from `SWITCHYARD_LOG` (default [`DEFAULT_LOG`]), the
//! format from `--log-format` or `SWITCHYARD_LOG_FORMAT` (`text`, the
//! default, or `json`: one JSON object per line), and colour only when
//! stderr is a terminal and `NO_COLOR` is not set.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Default log filter: warnings, without rdkafka's "Failed to close consumer
/// queue on drop" error, which its Drop prints after every clean close.
pub const DEFAULT_LOG: &str = "warn,rdkafka::consumer::base_consumer=off";

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line: `timestamp`, `level`, `target`, `message`
    /// and the event's fields at the top level.
    Json,
}

/// Install the subscriber for the process (once, before any command runs).
pub fn init(format: LogFormat) {
    let filter =
        EnvFilter::try_from_env("SWITCHYARD_LOG").unwrap_or_else(|_| EnvFilter::new(DEFAULT_LOG));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.with_ansi(colour()).init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .init(),
    }
}

/// Colour codes only for a person at a terminal: stderr is one and
/// `NO_COLOR` (no-color.org) is unset or empty.
fn colour() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}
