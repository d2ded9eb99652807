//! `switchyard offsets reset`: move a group's committed offsets.

use std::time::Duration;

use switchyard_admin::{reset_offsets, ResetError, ResetTo};

/// Group offset operations.
#[derive(clap::Subcommand)]
pub enum Cmd {
    /// Reset the committed offsets of a group on every partition of a topic.
    /// Refused (exit 3) while the group has members.
    Reset {
        /// Bootstrap servers.
        #[arg(long, env = "SWITCHYARD_BOOTSTRAP", default_value = "127.0.0.1:9092")]
        bootstrap: String,
        /// Group id.
        #[arg(long)]
        group: String,
        /// Topic.
        #[arg(long)]
        topic: String,
        /// earliest | latest | offset:N | timestamp:MS | an RFC 3339 date-time.
        #[arg(long)]
        to: ResetTo,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(cmd: Cmd) -> i32 {
    let Cmd::Reset {
        bootstrap,
        group,
        topic,
        to,
        json,
    } = cmd;
    match reset_offsets(&bootstrap, &group, &topic, to, Duration::from_secs(10)) {
        Ok(rows) => {
            if json {
                let v: Vec<_> = rows
                    .iter()
                    .map(|r| serde_json::json!({"topic": topic, "partition": r.partition, "before": r.before, "after": r.after}))
                    .collect();
                println!("{}", serde_json::Value::Array(v));
            } else {
                println!(
                    "{:<30} {:>9} {:>12} {:>12}",
                    "TOPIC", "PARTITION", "BEFORE", "AFTER"
                );
                for r in rows {
                    println!(
                        "{:<30} {:>9} {:>12} {:>12}",
                        topic, r.partition, r.before, r.after
                    );
                }
            }
            0
        }
        Err(e @ ResetError::GroupActive { .. }) => {
            eprintln!("refused: {e}");
            3
        }
        Err(e) => crate::fail(e.into()),
    }
}
