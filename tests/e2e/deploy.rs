//! Blue/green and canary deployments end to end (separate-groups strategy):
//! probe processes in two slots (`--group-per-slot`: groups `<g>-blue` and
//! `<g>-green`) under a steady record flow, driven by `switchyard deploy`.
//! I1 (no offset processed by two slots) and I2 (no offset skipped) are
//! checked on the processed logs. Status heartbeats are 200 ms.
//!
//! `kills`: a random instance killed with SIGKILL during each switch;
//! `shared`: the shared-group strategy; `drivers`: one driver at a time (the
//! handoff's lease), rollbacks and frozen partitions that fail with a
//! reason. The twenty switches, the switches
//! with kills and the shared-group switch run under both group protocols
//! (`_classic`, `_consumer`).

mod drivers;
mod floors;
mod kills;
mod members;
mod shared;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use switchyard_control::model::now_ms;
use switchyard_control::status_topic::StatusTail;

use super::common::*;

const WAIT: Duration = Duration::from_secs(60);
const PARTITIONS: i32 = 4;

struct Deployment {
    plane: Plane,
    group: String,
    topic: String,
    logs: Vec<PathBuf>,
    /// Shared-group strategy: every slot in group `group`.
    shared: bool,
    /// The group protocol of every probe.
    protocol: GroupProtocol,
}

impl Deployment {
    fn new(prefix: &str) -> Deployment {
        Deployment {
            plane: Plane::new(prefix),
            group: unique_name(&format!("{prefix}-g")),
            topic: new_topic(broker(), prefix, PARTITIONS),
            logs: Vec::new(),
            shared: false,
            protocol: GroupProtocol::Classic,
        }
    }

    /// A deployment whose probes speak `protocol`.
    fn with_protocol(prefix: &str, protocol: GroupProtocol) -> Deployment {
        Deployment {
            protocol,
            ..Deployment::new(prefix)
        }
    }

    fn probe(&mut self, name: &str, slot: &str) -> Child {
        self.probe_with(name, slot, &[])
    }

    /// A probe of `slot` with `extra` flags, logging to a new file.
    fn probe_with(&mut self, name: &str, slot: &str, extra: &[&str]) -> Child {
        let log = log_path(name);
        self.logs.push(log.clone());
        let mut args = self.plane.probe_args();
        args.extend(["--slot".to_string(), slot.to_string()]);
        if !self.shared {
            args.push("--group-per-slot".to_string());
        }
        args.extend(protocol_args(self.protocol).map(str::to_string));
        args.extend(extra.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        probe(name, &self.group, &self.topic, &log, &args)
    }

    /// `switchyard deploy <verb> ...`: exit code and stdout.
    fn deploy(&self, verb: &str, extra: &[&str]) -> (i32, String) {
        switchyard(&self.deploy_args(verb, extra))
    }

    /// The arguments of `switchyard deploy <verb> ...`.
    fn deploy_args(&self, verb: &str, extra: &[&str]) -> Vec<String> {
        let mut args = self.plane.cli_args("deploy", verb);
        args.extend(["--group".to_string(), self.group.clone()]);
        if verb == "init" {
            // the other verbs find the deployment's only listener themselves
            args.extend(["--listener".to_string(), "probe".to_string()]);
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    }

    /// Partition -> owning slot, from the control topic.
    fn owners(&self) -> BTreeMap<i32, String> {
        self.plane.owners("probe")
    }

    fn processed(&self) -> usize {
        ProcessedLog::read_all(&self.logs).count(&self.topic)
    }

    /// Wait until every slot's live instances together hold every partition.
    fn wait_ready(&self, tail: &StatusTail, slots: &[(&str, usize)]) {
        wait_until("every slot assigned and reporting", WAIT, || {
            let now = now_ms();
            let live: Vec<_> = tail
                .latest()
                .into_values()
                .filter(|s| s.app == self.plane.app && !s.is_gone(now))
                .collect();
            slots.iter().all(|(slot, n)| {
                let mine: Vec<_> = live.iter().filter(|s| s.slot == *slot).collect();
                mine.len() == *n
                    && mine.iter().map(|s| s.partitions().count()).sum::<usize>()
                        == PARTITIONS as usize
                    && mine
                        .iter()
                        .all(|s| s.partitions().count() > 0 || *n > PARTITIONS as usize)
            })
        });
    }

    /// Records keep flowing: `n` more processed.
    fn wait_progress(&self, n: usize) {
        let base = self.processed();
        wait_until("records keep being processed", WAIT, || {
            self.processed() >= base + n
        });
    }

    /// The consumer group of `slot`'s instances.
    fn group_of(&self, slot: &str) -> String {
        if self.shared {
            self.group.clone()
        } else {
            format!("{}-{slot}", self.group)
        }
    }

    /// Stop the flow, wait until everything is processed, check I1 and I2.
    fn check_invariants(&self, producer: SteadyProducer) {
        self.check_invariants_with_kills(producer, &[]);
    }

    /// [`Self::check_invariants`], where an offset may be processed twice
    /// only if one of its processors is a killed instance of `killed` that
    /// had processed it without committing it: at or above the offset its
    /// group had committed for the partition when it was killed (I1's
    /// exception: the records in flight in an instance that crashed).
    fn check_invariants_with_kills(&self, producer: SteadyProducer, killed: &[Killed]) {
        let confirmed = producer.stop() as usize;
        let end = end_offsets(&bootstrap(), &self.topic);
        // under load a delivery can time out in the producer although the
        // broker wrote it: the log end is the truth
        let sent = end.values().sum::<i64>() as usize;
        assert!(sent >= confirmed, "log end {sent} < confirmed {confirmed}");
        let extra = |log: &ProcessedLog| -> usize {
            log.duplicates(&self.topic)
                .iter()
                .map(|(_, i)| i.len() - 1)
                .sum()
        };
        // distinct offsets: a duplicate must not end the wait early
        let done = switchyard_testkit::wait::poll_until(WAIT, || {
            let log = ProcessedLog::read_all(&self.logs);
            (log.count(&self.topic) - extra(&log) >= sent).then_some(())
        });
        if let Err(elapsed) = done {
            let log = ProcessedLog::read_all(&self.logs);
            panic!(
                "not every record processed after {elapsed:.1?}: {} distinct of {sent}, log end {end:?}; {}; owners {:?}; committed {:?}",
                log.count(&self.topic) - extra(&log),
                log.check_no_gaps(&self.topic, &zeros(&end), &end)
                    .err()
                    .unwrap_or_else(|| "no gap".into()),
                self.owners(),
                ["blue", "green"]
                    .map(|slot| (slot, committed_offsets(&bootstrap(), &self.group_of(slot), &self.topic)))
            );
        }
        let log = ProcessedLog::read_all(&self.logs);
        log.check_no_gaps(&self.topic, &zeros(&end), &end)
            .unwrap_or_else(|e| panic!("I2: {e}"));
        let dups = log.duplicates(&self.topic);
        let explained = |(p, o): (i32, i64), by: &[String]| {
            killed
                .iter()
                .any(|k| by.contains(&k.instance) && o >= k.committed.get(&p).copied().unwrap_or(0))
        };
        let unexplained: Vec<_> = dups.iter().filter(|(at, by)| !explained(*at, by)).collect();
        assert!(
            unexplained.is_empty(),
            "I1: {} offsets processed twice that no killed instance had processed uncommitted, e.g. {:?}; killed {:?}",
            unexplained.len(),
            &unexplained[..unexplained.len().min(5)],
            killed
        );
        assert_eq!(log.count(&self.topic), sent + extra(&log));
    }
}

/// An instance killed with SIGKILL, and the offsets its group had
/// committed right after (partition -> offset).
#[derive(Debug)]
struct Killed {
    instance: String,
    committed: BTreeMap<i32, i64>,
}

fn all_owned_by(d: &Deployment, slot: &str) -> bool {
    let o = d.owners();
    o.len() == PARTITIONS as usize && o.values().all(|v| v == slot)
}

crate::protocol_tests!(twenty_blue_green_switches:
    twenty_blue_green_switches_with_separate_groups_process_every_record_once_classic,
    twenty_blue_green_switches_with_separate_groups_process_every_record_once_consumer);

fn twenty_blue_green_switches(protocol: GroupProtocol) {
    let mut d = Deployment::with_protocol("dpsw", protocol);
    let (code, out) = d.deploy("init", &["--slot", "blue", "--topics", &d.topic.clone()]);
    assert_eq!(code, 0, "{out}");
    let tail = d.plane.tail();
    let _b1 = d.probe("dpsw-blue-1", "blue");
    let _b2 = d.probe("dpsw-blue-2", "blue");
    let _g1 = d.probe("dpsw-green-1", "green");
    let _g2 = d.probe("dpsw-green-2", "green");
    d.wait_ready(&tail, &[("blue", 2), ("green", 2)]);
    let producer = SteadyProducer::start(&bootstrap(), &d.topic, PARTITIONS, 200);
    d.wait_progress(100);
    // 20 handoffs, alternating; every fourth one is a `deploy rollback`
    for i in 0..20 {
        let to = if i % 2 == 0 { "green" } else { "blue" };
        let (code, out) = if i % 4 == 3 {
            d.deploy("rollback", &[])
        } else {
            d.deploy("switch", &["--to", to])
        };
        assert_eq!(code, 0, "switch {i} to {to}: {out}");
        assert!(out.contains("summary: moved 4 partitions"), "{out}");
        assert!(
            out.contains("phase 2 ack") && out.contains("phase 5 ack"),
            "{out}"
        );
        assert!(all_owned_by(&d, to), "{:?}", d.owners());
        d.wait_progress(40);
    }
    let (code, out) = d.deploy("status", &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("blue") && out.contains("green"), "{out}");
    d.check_invariants(producer);
    // both slots processed records (the handoffs really moved the work)
    let log = ProcessedLog::read_all(&d.logs);
    let dups = log.duplicates(&d.topic);
    assert!(dups.is_empty());
    for slot in ["blue", "green"] {
        let slot_logs: Vec<PathBuf> = d
            .logs
            .iter()
            .filter(|p| p.display().to_string().contains(slot))
            .cloned()
            .collect();
        assert!(
            ProcessedLog::read_all(&slot_logs).count(&d.topic) > 0,
            "slot {slot} processed nothing"
        );
    }
    tail.stop();
}

#[test]
fn a_switch_to_a_dead_standby_rolls_back_by_itself_and_the_active_slot_goes_on() {
    let mut d = Deployment::new("dpkill");
    let (code, out) = d.deploy("init", &["--slot", "blue", "--topics", &d.topic.clone()]);
    assert_eq!(code, 0, "{out}");
    let tail = d.plane.tail();
    let _b1 = d.probe("dpkill-blue-1", "blue");
    let mut g1 = d.probe("dpkill-green-1", "green");
    d.wait_ready(&tail, &[("blue", 1), ("green", 1)]);
    let producer = SteadyProducer::start(&bootstrap(), &d.topic, PARTITIONS, 200);
    d.wait_progress(100);
    g1.kill();
    let (code, out) = d.deploy("switch", &["--to", "green", "--phase-timeout-ms", "4000"]);
    assert_eq!(code, 1, "a rolled-back switch failed: {out}");
    assert!(out.contains("phase 5 (resume) timed out"), "{out}");
    assert!(out.contains("ROLLED BACK to blue"), "{out}");
    assert!(all_owned_by(&d, "blue"), "{:?}", d.owners());
    d.wait_progress(100);
    d.check_invariants(producer);
    tail.stop();
}

#[test]
fn a_promoted_canary_and_an_aborted_canary_keep_ownership_and_invariants() {
    let mut d = Deployment::new("dpcan");
    let (code, out) = d.deploy("init", &["--slot", "blue", "--topics", &d.topic.clone()]);
    assert_eq!(code, 0, "{out}");
    let tail = d.plane.tail();
    let _b1 = d.probe("dpcan-blue-1", "blue");
    let _g1 = d.probe("dpcan-green-1", "green");
    d.wait_ready(&tail, &[("blue", 1), ("green", 1)]);
    let producer = SteadyProducer::start(&bootstrap(), &d.topic, PARTITIONS, 200);
    d.wait_progress(100);

    let (code, out) = d.deploy("canary", &["--to", "green", "--partitions", "1,3"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("summary: moved 2 partitions blue -> green"),
        "{out}"
    );
    let split: BTreeMap<i32, String> = [(0, "blue"), (1, "green"), (2, "blue"), (3, "green")]
        .into_iter()
        .map(|(p, s)| (p, s.to_string()))
        .collect();
    assert_eq!(d.owners(), split);
    let (code, out) = d.deploy("canary", &["--to", "green", "--partitions", "0"]);
    assert_eq!(code, 3, "a second canary is refused: {out}");
    d.wait_progress(60);
    let (code, out) = d.deploy("promote", &[]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("summary: moved 2 partitions blue -> green"),
        "{out}"
    );
    assert!(all_owned_by(&d, "green"), "{:?}", d.owners());
    d.wait_progress(60);

    let (code, out) = d.deploy("canary", &["--to", "blue", "--partitions", "0,2"]);
    assert_eq!(code, 0, "{out}");
    d.wait_progress(60);
    let (code, out) = d.deploy("abort", &[]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("summary: moved 2 partitions blue -> green"),
        "{out}"
    );
    assert!(all_owned_by(&d, "green"), "{:?}", d.owners());
    let (code, _) = d.deploy("abort", &[]);
    assert_eq!(code, 3, "no canary left to abort");
    d.wait_progress(60);
    d.check_invariants(producer);
    tail.stop();
}

#[test]
fn a_watched_canary_that_falls_behind_is_aborted_by_itself() {
    let mut d = Deployment::new("dpauto");
    let (code, out) = d.deploy("init", &["--slot", "blue", "--topics", &d.topic.clone()]);
    assert_eq!(code, 0, "{out}");
    let tail = d.plane.tail();
    let _b1 = d.probe("dpauto-blue-1", "blue");
    // a slow green: about 30 records/s, while its canary partitions get 100/s
    let _g1 = d.probe_with("dpauto-green-1", "green", &["--delay-ms", "150"]);
    d.wait_ready(&tail, &[("blue", 1), ("green", 1)]);
    let producer = SteadyProducer::start(&bootstrap(), &d.topic, PARTITIONS, 200);
    d.wait_progress(100);
    let (code, out) = d.deploy(
        "canary",
        &[
            "--to",
            "green",
            "--partitions",
            "0,2",
            "--watch-ms",
            "20000",
            "--max-lag",
            "150",
        ],
    );
    assert_eq!(code, 1, "an aborted canary failed: {out}");
    assert!(out.contains("canary unhealthy: canary lag"), "{out}");
    assert!(
        out.contains("summary: moved 2 partitions green -> blue"),
        "{out}"
    );
    assert!(all_owned_by(&d, "blue"), "{:?}", d.owners());
    d.wait_progress(100);
    d.check_invariants(producer);
    tail.stop();
}
