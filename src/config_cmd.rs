//! `switchyard config check FILE`: validate a TOML configuration the way a
//! listener would at start, and say what is wrong (the key, the value and
//! why) before anything runs. Exit 0 when valid (warnings are printed), 2
//! when not.

use std::path::PathBuf;

use switchyard_config::AppConfig;

/// Configuration commands.
#[derive(clap::Subcommand)]
pub enum Cmd {
    /// Validate a configuration file: every key, every value, every rule.
    Check {
        /// The TOML file (`[consumer]` and `[[listener]]` sections).
        file: PathBuf,
    },
}

pub fn run(cmd: Cmd) -> i32 {
    let Cmd::Check { file } = cmd;
    match AppConfig::from_file(&file).and_then(|app| app.validate().map(|w| (app, w))) {
        Ok((app, warnings)) => {
            for w in &warnings {
                println!("warning: {w}");
            }
            println!(
                "{}: valid ({} listener(s), {} warning(s))",
                file.display(),
                app.listeners.len(),
                warnings.len()
            );
            0
        }
        Err(e) => {
            eprintln!("error: {e}");
            2
        }
    }
}
