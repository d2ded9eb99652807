//! `switchyard config check FILE`: validate a TOML configuration the way a
//! listener would at start, and say what is wrong (the key, the value and
//! why) before anything runs. Done when valid (warnings are printed), a
//! usage error (exit 2) when not.

use std::path::PathBuf;

use switchyard_config::AppConfig;

use crate::outcome::Outcome;

/// Configuration commands.
#[derive(clap::Subcommand)]
pub enum Cmd {
    /// Validate a configuration file: every key, every value, every rule.
    Check {
        /// The TOML file (`[consumer]` and `[[listener]]` sections).
        file: PathBuf,
    },
}

pub fn run(cmd: Cmd) -> Outcome {
    let Cmd::Check { file } = cmd;
    let app = AppConfig::from_file(&file)?;
    let warnings = app.validate()?;
    for w in &warnings {
        println!("warning: {w}");
    }
    println!(
        "{}: valid ({} listener(s), {} warning(s))",
        file.display(),
        app.listeners.len(),
        warnings.len()
    );
    Ok(())
}
