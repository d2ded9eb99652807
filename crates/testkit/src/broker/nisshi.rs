//! nisshi, a Kafka-compatible broker written in Rust, as an optional second test broker
//! (`SWITCHYARD_TEST_BROKER=nisshi`). It keeps its data in memory, so a restarted nisshi starts empty.
//!
//! The binary is `$SWITCHYARD_NISSHI` if set, else `nisshi` on `PATH`, else `~/.cargo/bin/nisshi`.

use std::path::PathBuf;
use std::process::Command;

/// The nisshi binary: `$SWITCHYARD_NISSHI`, else `nisshi` on `PATH`, else `~/.cargo/bin/nisshi`.
pub fn nisshi_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("SWITCHYARD_NISSHI").filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join("nisshi"))
        .find(|candidate| candidate.is_file());
    if let Some(path) = on_path {
        return path;
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    home.join(".cargo/bin/nisshi")
}

/// The command that starts nisshi on `127.0.0.1:port`.
pub(crate) fn command(port: u16) -> Result<Command, String> {
    let binary = nisshi_binary();
    if !binary.is_file() {
        return Err(format!(
            "nisshi binary not found at {} (set SWITCHYARD_NISSHI, put nisshi on PATH, or `cargo install nisshi`)",
            binary.display()
        ));
    }
    let url = format!("tcp://127.0.0.1:{port}");
    let mut command = Command::new(&binary);
    command
        .arg("broker")
        .args(["--listener-url", &url])
        .args(["--advertised-listener-url", &url])
        .args(["--storage-engine", "memory://nisshi/"])
        .args(["--group-initial-rebalance-delay", "0s"]);
    Ok(command)
}
