//! What a benchmark row costs the process that runs it, as the kernel reports
//! it in `/proc`: CPU time (user + system of every thread, `/proc/<pid>/stat`)
//! and peak resident memory (`VmHWM`, `/proc/<pid>/status`).
//!
//! A row runs in a child process of its own, so that both figures are its
//! alone. The child times its window itself (first record to last) and reads
//! its own CPU ticks at both ends; it prints them on one stdout line,
//! `ROW count=N elapsed_ns=N cpu_ticks=N`, and then waits: [`measure_child`]
//! reads the child's `VmHWM` while it still runs, and then stops it.

use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context;
use switchyard_testkit::Child;

/// What a row measured over its window, and its process's peak memory.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    /// Records counted.
    pub records: u64,
    /// The window: first record to last, in seconds.
    pub secs: f64,
    /// CPU time of the process over the window (user + system), in seconds.
    pub cpu_secs: f64,
    /// Peak resident memory of the process (`VmHWM`), in MB.
    pub peak_mb: f64,
}

impl Sample {
    /// Records per second over the window.
    pub fn rate(&self) -> f64 {
        self.records as f64 / self.secs
    }

    /// CPU microseconds per record over the window.
    pub fn cpu_us_per_record(&self) -> f64 {
        self.cpu_secs * 1e6 / self.records as f64
    }
}

/// The window of a row run in this process: opened at its first record.
pub struct Window {
    start: Instant,
    start_ticks: u64,
}

impl Window {
    /// Open the window now.
    pub fn open() -> anyhow::Result<Window> {
        Ok(Window {
            start: Instant::now(),
            start_ticks: cpu_ticks("self")?,
        })
    }

    /// Close it after `records` records: the line [`measure_child`] parses.
    pub fn close(&self, records: u64) -> anyhow::Result<String> {
        let elapsed = self.start.elapsed();
        let ticks = cpu_ticks("self")? - self.start_ticks;
        Ok(format!(
            "ROW count={records} elapsed_ns={} cpu_ticks={ticks}",
            elapsed.as_nanos()
        ))
    }
}

/// CPU time (utime + stime, every thread) of process `pid` (`"self"` for
/// this one), in clock ticks.
pub fn cpu_ticks(pid: &str) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("read {path}"))?;
    parse_cpu_ticks(&stat).with_context(|| format!("no utime and stime in {path}: {stat}"))
}

/// Fields 14 and 15 (utime, stime) of a `stat` line, counted after the
/// command name, which is in parentheses and may hold spaces and parentheses.
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // the rest starts at field 3 (the state)
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// CPU seconds (utime + stime, every thread) of process `pid` (`"self"`
/// for this one).
pub fn cpu_secs(pid: &str) -> anyhow::Result<f64> {
    Ok(cpu_ticks(pid)? as f64 / ticks_per_second())
}

/// The machine's CPU time so far from `/proc/stat`, in clock ticks: every
/// state (user to steal), and of it idle (idle + iowait) and steal (taken by
/// the hypervisor for other guests).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct MachineTicks {
    pub total: u64,
    pub idle: u64,
    pub steal: u64,
}

impl MachineTicks {
    /// Now.
    pub fn now() -> anyhow::Result<MachineTicks> {
        let stat = std::fs::read_to_string("/proc/stat").context("read /proc/stat")?;
        parse_machine_ticks(&stat).with_context(|| format!("no cpu line in /proc/stat: {stat}"))
    }

    /// The share of `later - self` that was idle, and the share stolen.
    pub fn shares_until(&self, later: &MachineTicks) -> (f64, f64) {
        let total = later.total.saturating_sub(self.total).max(1) as f64;
        (
            later.idle.saturating_sub(self.idle) as f64 / total,
            later.steal.saturating_sub(self.steal) as f64 / total,
        )
    }
}

/// The `cpu` line of `/proc/stat`: user nice system idle iowait irq softirq
/// steal (guest time is counted in user already).
fn parse_machine_ticks(stat: &str) -> Option<MachineTicks> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let f: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(|v| v.parse().ok())
        .collect::<Option<_>>()?;
    (f.len() == 8).then(|| MachineTicks {
        total: f.iter().sum(),
        idle: f[3] + f[4],
        steal: f[7],
    })
}

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`).
fn ticks_per_second() -> f64 {
    // SAFETY: sysconf only reads a system setting.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 {
        hz as f64
    } else {
        100.0
    }
}

/// Peak resident memory (`VmHWM`) of process `pid`, in MB.
pub fn peak_resident_mb(pid: u32) -> anyhow::Result<f64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("read {path}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .with_context(|| format!("no VmHWM in {path}"))
}

/// Run a row's child process `command` (stdout is piped, stderr inherited),
/// wait up to `timeout` for its `ROW` line, read its `VmHWM`, and stop it.
pub fn measure_child(name: &str, command: Command, timeout: Duration) -> anyhow::Result<Sample> {
    let program = command.get_program().to_string_lossy().into_owned();
    // the testkit panics when the program cannot be started
    let mut child = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        Child::spawn_command(name, command)
    }))
    .map_err(|_| anyhow::anyhow!("cannot start {name} ({program})"))?;
    let line = child
        .wait_for_line(|l| l.starts_with("ROW "), timeout)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let peak_mb = peak_resident_mb(child.pid())?;
    child.terminate();
    child.wait_exit(Duration::from_secs(10));
    let fields: HashMap<&str, &str> = line
        .split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .collect();
    let field = |key: &str| -> anyhow::Result<u64> {
        fields
            .get(key)
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("{name} printed no {key}: {line}"))
    };
    Ok(Sample {
        records: field("count")?,
        secs: field("elapsed_ns")? as f64 / 1e9,
        cpu_secs: field("cpu_ticks")? as f64 / ticks_per_second(),
        peak_mb,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_are_read_after_the_command_name() {
        let stat = "4242 (a (b) c) S 1 4242 4242 0 -1 4194560 100 0 0 0 25 7 0 0 20 0 3 0 99";
        assert_eq!(parse_cpu_ticks(stat), Some(32));
        assert_eq!(parse_cpu_ticks("4242 (short) S 1"), None);
        assert!(cpu_ticks("self").is_ok());
    }

    #[test]
    fn machine_ticks_count_idle_with_iowait_and_steal_apart() {
        let stat = "cpu  10 1 4 50 5 1 1 8 3 0\ncpu0 5 0 2 25 2 0 0 4 0 0\n";
        let t = parse_machine_ticks(stat).unwrap();
        assert_eq!((t.total, t.idle, t.steal), (80, 55, 8));
        let later = MachineTicks {
            total: 180,
            idle: 75,
            steal: 38,
        };
        assert_eq!(t.shares_until(&later), (0.2, 0.3));
        assert!(MachineTicks::now().is_ok());
        assert!(peak_resident_mb(std::process::id()).unwrap() > 0.0);
    }
}
