//! The control plane end to end: probe processes with a control-plane agent,
//! driven by `switchyard ctl`, the HTTP admin API, Redis and a watched file.
//! Status heartbeats are 200 ms so acknowledgements and staleness are quick.
//! `inputs`: the HTTP admin API, a watched file and Redis. `protocol`: the
//! records on the wire against the protocol's JSON Schemas.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use switchyard_control::kafka_clients::READER_GROUP;
use switchyard_control::kafka_store::KafkaStore;
use switchyard_control::log::accepted_versions;
use switchyard_control::status::InstanceStatus;
use switchyard_control::status_topic::StatusTail;
use switchyard_control::{ControlError, Store};

use super::common::*;

mod compaction;
mod inputs;
mod protocol;
mod wedged;

const WAIT: Duration = Duration::from_secs(40);

impl Plane {
    fn probe(
        &self,
        name: &str,
        group: &str,
        topic: &str,
        log: &std::path::Path,
        extra: &[&str],
    ) -> Child {
        let mut args = self.probe_args();
        args.extend(extra.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        probe(name, group, topic, log, &args)
    }

    /// Run `switchyard ctl <verb> ...`: exit code and stdout.
    fn ctl(&self, verb: &str, extra: &[&str]) -> (i32, String) {
        let mut args = self.cli_args("ctl", verb);
        args.extend(extra.iter().map(|s| s.to_string()));
        switchyard(&args)
    }
}

/// Instances whose status is recent. The product calls an instance gone
/// after three missed heartbeats (600 ms here); the tests allow 5 s, since
/// several consumer processes share two cores and a heartbeat can be late
/// without the instance being gone.
fn live(tail: &StatusTail, app: &str) -> Vec<InstanceStatus> {
    let now = switchyard_control::model::now_ms();
    tail.latest()
        .into_values()
        .filter(|s| s.app == app && now - s.timestamp_ms < 5_000)
        .collect()
}

fn count_of(log: &[PathBuf], topic: &str) -> usize {
    ProcessedLog::read_all(log).count(topic)
}

fn rebalance_lines(children: &[&Child]) -> usize {
    children
        .iter()
        .flat_map(|c| c.lines())
        .filter(|l| l.starts_with("REVOKED") || l.starts_with("ASSIGNED") || l.starts_with("LOST"))
        .count()
}

/// Wait until every live instance published `beats` more statuses (time passes, by the instances' own clocks).
fn wait_heartbeats(tail: &StatusTail, app: &str, beats: i64) {
    let base: BTreeMap<String, i64> = live(tail, app)
        .into_iter()
        .map(|s| (s.instance, s.timestamp_ms))
        .collect();
    wait_until("status heartbeats", WAIT, || {
        live(tail, app)
            .iter()
            .all(|s| s.timestamp_ms >= base.get(&s.instance).copied().unwrap_or(0) + beats * 200)
    });
}

#[test]
fn ctl_pause_holds_the_topic_on_every_instance_without_rebalance_and_resume_continues_at_the_committed_offsets(
) {
    let b = bootstrap();
    let plane = Plane::new("cp");
    let topic = new_topic(broker(), "cp", 4);
    let group = unique_name("cp-g");
    let logs = [log_path("cp-a"), log_path("cp-b")];
    let mut producer = SeqProducer::new(&b);
    for p in 0..4 {
        producer.send(&topic, Some(p), 5, |s| s.to_string());
    }
    let a = plane.probe("cp-a", &group, &topic, &logs[0], &[]);
    let bb = plane.probe("cp-b", &group, &topic, &logs[1], &[]);
    let tail = plane.tail();
    wait_until("20 processed", WAIT, || count_of(&logs, &topic) == 20);
    wait_until("both instances assigned and reporting", WAIT, || {
        let l = live(&tail, &plane.app);
        l.len() == 2 && l.iter().map(|s| s.partitions().count()).sum::<usize>() == 4
    });

    let (code, out) = plane.ctl("pause", &["--listener", "probe", "--topic", &topic]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("cp-a: acknowledged") && out.contains("cp-b: acknowledged"),
        "{out}"
    );
    let committed = committed_offsets(&b, &group, &topic);
    assert_eq!(
        committed,
        (0..4).map(|p| (p, 5)).collect(),
        "committed at the ack"
    );
    let rebalances = rebalance_lines(&[&a, &bb]);
    let paused_at = count_of(&logs, &topic);
    // produce 6, 7, 8 of every partition and keep producing for longer than
    // session.timeout.ms (6 s) and max.poll.interval.ms (10 s)
    for p in 0..4 {
        producer.send(&topic, Some(p), 3, |s| s.to_string());
    }
    let until = Instant::now() + Duration::from_secs(11);
    while Instant::now() < until {
        wait_heartbeats(&tail, &plane.app, 2);
        let l = live(&tail, &plane.app);
        assert_eq!(l.len(), 2, "both instances alive during the pause");
        assert!(
            l.iter()
                .all(|s| s.partitions().all(|p| p.state == "paused")),
            "{l:?}"
        );
        assert_eq!(
            count_of(&logs, &topic),
            paused_at,
            "nothing delivered while paused"
        );
    }
    assert_eq!(
        rebalance_lines(&[&a, &bb]),
        rebalances,
        "no rebalance during an 11 s pause (I4)"
    );
    // no consumer group for the control topic
    assert_eq!(group_members(&b, READER_GROUP).0, 0);
    for name in ["cp-a", "cp-b", plane.control.as_str()] {
        assert_eq!(
            group_members(&b, name),
            (0, "Dead".to_string()),
            "no group {name}"
        );
    }

    let (code, out) = plane.ctl("resume", &["--listener", "probe", "--topic", &topic]);
    assert_eq!(code, 0, "{out}");
    wait_until("32 processed", WAIT, || count_of(&logs, &topic) == 32);
    let after = ProcessedLog::read_all(&logs);
    let mut first: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
    for e in after
        .entries
        .iter()
        .filter(|e| e.topic == topic && e.offset >= 5)
    {
        first.entry(e.partition).or_default().push(e.offset);
    }
    for p in 0..4 {
        assert_eq!(
            first[&p],
            vec![5, 6, 7],
            "p{p} continues at the committed offset"
        );
    }
    let end = end_offsets(&b, &topic);
    after.check_no_gaps(&topic, &zeros(&end), &end).unwrap();
}

crate::protocol_tests!(pause_follows_the_partition:
    a_paused_partition_stays_paused_across_rebalances_kills_and_restarts_classic,
    a_paused_partition_stays_paused_across_rebalances_kills_and_restarts_consumer);

/// A pause follows the partition, not the instance.
fn pause_follows_the_partition(protocol: GroupProtocol) {
    let b = bootstrap();
    let proto = protocol_args(protocol);
    let plane = Plane::new("cpr");
    let topic = new_topic(broker(), "cpr", 4);
    let group = unique_name("cpr-g");
    let logs: Vec<PathBuf> = (0..5).map(|i| log_path(&format!("cpr-{i}"))).collect();
    let mut producer = SeqProducer::new(&b);
    for p in 0..4 {
        producer.send(&topic, Some(p), 5, |s| s.to_string());
    }
    let mut a = plane.probe("cpr-a", &group, &topic, &logs[0], &proto);
    let mut c = plane.probe("cpr-b", &group, &topic, &logs[1], &proto);
    let tail = plane.tail();
    wait_until("20 processed", WAIT, || count_of(&logs, &topic) == 20);
    let (code, out) = plane.ctl(
        "pause",
        &["--listener", "probe", "--topic", &topic, "--partition", "1"],
    );
    assert_eq!(code, 0, "{out}");
    let p1 = |logs: &[PathBuf]| {
        ProcessedLog::read_all(logs)
            .entries
            .iter()
            .filter(|e| e.topic == topic && e.partition == 1)
            .count()
    };
    let p1_paused = p1(&logs);
    let mut produced = 5;
    let mut more = |producer: &mut SeqProducer| {
        for p in 0..4 {
            producer.send(&topic, Some(p), 2, |s| s.to_string());
        }
        produced += 2;
        produced
    };
    let others_done = |n: i64| {
        let log = ProcessedLog::read_all(&logs);
        (0..4).filter(|p| *p != 1).all(|p| {
            log.entries
                .iter()
                .any(|e| e.topic == topic && e.partition == p && e.offset == n - 1)
        })
    };
    // instance added
    let d = plane.probe("cpr-c", &group, &topic, &logs[2], &proto);
    d.wait_for_line(|l| l.starts_with("ASSIGNED"), WAIT)
        .unwrap();
    let n = more(&mut producer);
    wait_until("other partitions flow after adding", WAIT, || {
        others_done(n)
    });
    assert_eq!(
        p1(&logs),
        p1_paused,
        "p1 stays paused after an instance was added"
    );
    // instance removed (graceful) and killed
    c.terminate();
    c.wait_exit(WAIT).expect("b exits");
    let n = more(&mut producer);
    wait_until("other partitions flow after a removal", WAIT, || {
        others_done(n)
    });
    a.kill();
    let n = more(&mut producer);
    wait_until("other partitions flow after SIGKILL", WAIT, || {
        others_done(n)
    });
    wait_until("p1 reassigned to the survivor", WAIT, || {
        live(&tail, &plane.app)
            .iter()
            .any(|s| s.instance == "cpr-c" && s.partitions().count() == 4)
    });
    assert_eq!(p1(&logs), p1_paused, "p1 stays paused after a kill");
    // all instances restart
    drop(d);
    let e = plane.probe("cpr-d", &group, &topic, &logs[3], &proto);
    let f = plane.probe("cpr-e", &group, &topic, &logs[4], &proto);
    let n = more(&mut producer);
    wait_until("other partitions flow after a restart", WAIT, || {
        others_done(n)
    });
    assert_eq!(
        p1(&logs),
        p1_paused,
        "p1 stays paused after all instances restarted"
    );
    let (code, out) = plane.ctl(
        "resume",
        &["--listener", "probe", "--topic", &topic, "--partition", "1"],
    );
    assert_eq!(code, 0, "{out}");
    let end = end_offsets(&b, &topic);
    wait_until("p1 drained after resume", WAIT, || {
        ProcessedLog::read_all(&logs)
            .entries
            .iter()
            .any(|x| x.topic == topic && x.partition == 1 && x.offset == end[&1] - 1)
    });
    ProcessedLog::read_all(&logs)
        .check_no_gaps(&topic, &zeros(&end), &end)
        .unwrap();
    drop((e, f));
}

#[test]
fn a_timed_pause_resumes_by_itself() {
    let b = bootstrap();
    let plane = Plane::new("cpt");
    let topic = new_topic(broker(), "cpt", 2);
    let logs = [log_path("cpt")];
    let mut producer = SeqProducer::new(&b);
    producer.send(&topic, None, 10, |s| s.to_string());
    let _a = plane.probe("cpt-a", &unique_name("cpt-g"), &topic, &logs[0], &[]);
    let tail = plane.tail();
    wait_until("10 processed", WAIT, || count_of(&logs, &topic) == 10);
    wait_until("assigned", WAIT, || {
        live(&tail, &plane.app)
            .iter()
            .any(|s| s.partitions().count() == 2)
    });
    let (code, out) = plane.ctl("pause", &["--listener", "probe", "--expires-in", "1500ms"]);
    assert_eq!(code, 0, "{out}");
    producer.send(&topic, None, 10, |s| s.to_string());
    wait_until("resumed by itself", WAIT, || count_of(&logs, &topic) == 20);
    wait_until("reported running", WAIT, || {
        live(&tail, &plane.app)
            .iter()
            .all(|s| s.partitions().all(|p| p.state == "running"))
    });
}

#[test]
fn concurrent_writers_exactly_one_wins_and_every_instance_accepts_the_same_versions() {
    let b = bootstrap();
    let plane = Plane::new("cpw");
    let topic = new_topic(broker(), "cpw", 2);
    let group = unique_name("cpw-g");
    let logs = [log_path("cpw-a"), log_path("cpw-b")];
    let _a = plane.probe("cpw-a", &group, &topic, &logs[0], &[]);
    let _c = plane.probe("cpw-b", &group, &topic, &logs[1], &[]);
    let tail = plane.tail();
    let store = KafkaStore::new(&b, &plane.control).unwrap();
    for round in 0..3 {
        let base = store.read(&plane.app).unwrap().version;
        let results: Vec<_> = std::thread::scope(|s| {
            let hs: Vec<_> = ["x", "y"]
                .iter()
                .map(|who| {
                    let (store, app, topic) = (&store, &plane.app, &topic);
                    s.spawn(move || {
                        store.write(app, Some(base), Some(who), &|st| {
                            st.add_pause(switchyard_control::Pause::partition(
                                "probe",
                                topic,
                                round % 2,
                            ))
                        })
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let won = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(won, 1, "exactly one writer wins: {results:?}");
        assert!(results
            .iter()
            .any(|r| matches!(r, Err(ControlError::Conflict { .. }))));
    }
    let history = store.history(&b).unwrap();
    let accepted = accepted_versions(&plane.app, history.clone());
    assert_eq!(accepted, vec![1, 2, 3]);
    assert_eq!(history.len(), 3, "a losing write never lands (fenced)");
    wait_until("both instances applied version 3", WAIT, || {
        let l = live(&tail, &plane.app);
        l.len() == 2 && l.iter().all(|s| s.applied_version == 3)
    });
    let (code, out) = plane.ctl("pause", &["--listener", "probe", "--expect-version", "1"]);
    assert_eq!(code, 3, "a stale version is refused: {out}");
    assert_eq!(
        store.read(&plane.app).unwrap().version,
        3,
        "a refused command changes nothing"
    );
    let (code, out) = plane.ctl("status", &[]);
    assert_eq!(code, 0);
    assert!(
        out.contains("cpw-a") && out.contains("cpw-b") && out.contains("converged: yes"),
        "{out}"
    );
}

/// A pause through the control plane reads PAUSED in `lag serve` (which
/// follows the status topic), where the same still consumer would read
/// STALL: an intended pause raises no alarm.
#[test]
fn lag_serve_reads_a_control_plane_pause_as_paused() {
    use std::io::{Read, Write};
    let b = bootstrap();
    let plane = Plane::new("lp");
    let topic = new_topic(broker(), "lp", 2);
    let group = unique_name("lp-g");
    let log = log_path("lp");
    let producer = SeqProducer::new(&b);
    for p in 0..2 {
        producer.send_raw(&topic, Some(p), Some(b"k"), b"x", None);
    }
    let _a = plane.probe("lp-a", &group, &topic, &log, &[]);
    wait_until("2 processed", WAIT, || {
        count_of(std::slice::from_ref(&log), &topic) == 2
    });
    let (code, out) = plane.ctl("pause", &["--listener", "probe", "--topic", &topic]);
    assert_eq!(code, 0, "{out}");
    for p in 0..2 {
        for _ in 0..5 {
            producer.send_raw(&topic, Some(p), Some(b"k"), b"y", None);
        }
    }
    let args: Vec<String> = [
        "lag",
        "serve",
        "--bootstrap",
        &b,
        "--group",
        &group,
        "--listen",
        "127.0.0.1:0",
        "--interval",
        "0.3",
        "--window",
        "2",
        "--min-samples",
        "3",
        "--status-topic",
        &plane.status,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let lag = Child::spawn(
        "lag",
        std::path::Path::new(env!("CARGO_BIN_EXE_switchyard")),
        &args,
        &[],
    );
    let line = lag
        .wait_for_line(|l| l.starts_with("lag exporter: http://"), WAIT)
        .expect("lag serve starts");
    let addr = line["lag exporter: http://".len()..]
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let metrics = || {
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        write!(s, "GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        text
    };
    let health = |text: &str, partition: &str, status: &str| {
        text.lines().any(|l| {
            l.starts_with("switchyard_lag_health{")
                && l.contains(&format!("group=\"{group}\""))
                && l.contains(&format!("partition=\"{partition}\""))
                && l.contains(&format!("status=\"{status}\""))
                && l.ends_with(" 1")
        })
    };
    wait_until("both partitions read PAUSED", WAIT, || {
        let text = metrics();
        health(&text, "0", "PAUSED") && health(&text, "1", "PAUSED")
    });
    let text = metrics();
    assert!(
        !health(&text, "0", "STALL") && !health(&text, "0", "STOP"),
        "{text}"
    );
}
