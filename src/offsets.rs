//! `switchyard offsets reset`: move a group's committed offsets, with the
//! flags and the plan-then-`--execute` behaviour of `kafka-consumer-groups
//! --reset-offsets`.

use std::time::Duration;

use switchyard_admin::{reset_offsets, ResetError, ResetTo};

use crate::outcome::{Failure, Outcome};

/// Group offset operations.
#[derive(clap::Subcommand)]
pub enum Cmd {
    /// Reset the committed offsets of a group on every partition of a topic.
    /// Prints the plan; commits it only with `--execute`. Refused (exit 3)
    /// while the group has members.
    Reset(ResetArgs),
}

/// Arguments of `offsets reset`: exactly one target.
#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("target").required(true).multiple(false)))]
pub struct ResetArgs {
    #[command(flatten)]
    kafka: crate::connection_args::ConnectionArgs,
    /// Group id.
    #[arg(long)]
    group: String,
    /// Topic.
    #[arg(long)]
    topic: String,
    /// earliest | latest | offset:N | shift:N | timestamp:MS | an RFC 3339 date-time.
    #[arg(long, group = "target")]
    to: Option<ResetTo>,
    /// The log start offset of each partition.
    #[arg(long, group = "target")]
    to_earliest: bool,
    /// The log end offset of each partition.
    #[arg(long, group = "target")]
    to_latest: bool,
    /// The same offset on every partition (clamped to the log).
    #[arg(long, group = "target", value_name = "OFFSET")]
    to_offset: Option<i64>,
    /// The committed offset moved by N records (negative: back), clamped to the log.
    #[arg(long, group = "target", value_name = "N", allow_hyphen_values = true)]
    shift_by: Option<i64>,
    /// The first record at or after this RFC 3339 date-time (e.g. 2026-11-30T12:00:00Z).
    #[arg(long, group = "target", value_name = "DATETIME")]
    to_datetime: Option<String>,
    /// Commit the plan (without it, only print it).
    #[arg(long)]
    execute: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

impl ResetArgs {
    fn target(&self) -> Result<ResetTo, String> {
        if let Some(to) = self.to {
            return Ok(to);
        }
        if self.to_earliest {
            return Ok(ResetTo::Earliest);
        }
        if self.to_latest {
            return Ok(ResetTo::Latest);
        }
        if let Some(offset) = self.to_offset {
            return Ok(ResetTo::Offset(offset));
        }
        if let Some(n) = self.shift_by {
            return Ok(ResetTo::ShiftBy(n));
        }
        match &self.to_datetime {
            Some(datetime) => datetime
                .parse::<ResetTo>()
                .map_err(|e| format!("--to-datetime: {e}")),
            None => Err("no target given".into()),
        }
    }
}

pub fn run(cmd: Cmd) -> Outcome {
    let Cmd::Reset(args) = cmd;
    let to = args.target().map_err(Failure::Usage)?;
    let rows = reset_offsets(
        args.kafka.connection()?,
        &args.group,
        &args.topic,
        to,
        args.execute,
        Duration::from_secs(10),
    )
    .map_err(|e| match e {
        ResetError::GroupActive { .. } | ResetError::NothingToShift { .. } => {
            Failure::Refused(e.to_string())
        }
        e => Failure::Failed(e.into()),
    })?;
    if args.json {
        let v: Vec<_> = rows
            .iter()
            .map(|r| serde_json::json!({"topic": args.topic, "partition": r.partition, "before": r.before, "after": r.after}))
            .collect();
        println!(
            "{}",
            serde_json::json!({"group": args.group, "executed": args.execute, "partitions": v})
        );
    } else {
        println!(
            "{:<30} {:>9} {:>12} {:>12}",
            "TOPIC", "PARTITION", "BEFORE", "AFTER"
        );
        for r in rows {
            println!(
                "{:<30} {:>9} {:>12} {:>12}",
                args.topic, r.partition, r.before, r.after
            );
        }
        if !args.execute {
            eprintln!("plan only: nothing was committed; run again with --execute to reset");
        }
    }
    Ok(())
}
