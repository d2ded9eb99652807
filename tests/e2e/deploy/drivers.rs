//! One driver at a time, and phases that fail with a reason instead of
//! timing out without one: a second driver (`switch`, `rollback`,
//! `recover`) is refused while a live driver holds the handoff's lease, and
//! names it; a rollback whose target slot does not acknowledge the reverse
//! freeze fails naming the instance and leaves the partitions owned by
//! nobody; a moving partition stopped by the failure policy fails the
//! freeze at once, naming the partition and its offset.

use std::time::{Duration, Instant};

use super::members::Stranger;
use super::*;

/// `switchyard deploy <verb> ...` of `d`: exit code and stdout followed by
/// stderr (a refusal is said on stderr).
fn deploy_all(d: &Deployment, verb: &str, extra: &[&str]) -> (i32, String) {
    run_all(&d.deploy_args(verb, extra))
}

fn run_all(args: &[String]) -> (i32, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(args)
        .output()
        .expect("run switchyard");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("[switchyard deploy {}] {text}", args[1]);
    (out.status.code().unwrap_or(-1), text)
}

/// A `deploy` command running in the background, its stdout collected.
fn spawn_deploy(d: &Deployment, name: &str, verb: &str, extra: &[&str]) -> Child {
    Child::spawn(
        name,
        std::path::Path::new(env!("CARGO_BIN_EXE_switchyard")),
        &d.deploy_args(verb, extra),
        &[],
    )
}

/// Send `signal` (`STOP`, `CONT`) to `child`.
fn signal(child: &Child, signal: &str) {
    let ok = std::process::Command::new("kill")
        .args([format!("-{signal}"), child.pid().to_string()])
        .status()
        .expect("run kill")
        .success();
    assert!(ok, "kill -{signal} {}", child.pid());
}

/// The owners of the listener's partitions, `""` for nobody.
fn all_frozen(d: &Deployment) -> bool {
    all_owned_by(d, "")
}

#[test]
fn two_concurrent_switches_only_one_acts_and_the_other_names_the_lease_holder() {
    let mut d = Deployment::new("dplease");
    let (code, out) = d.deploy("init", &["--slot", "blue", "--topics", &d.topic.clone()]);
    assert_eq!(code, 0, "{out}");
    let tail = d.plane.tail();
    let _b1 = d.probe("dplease-blue-1", "blue");
    d.wait_ready(&tail, &[("blue", 1)]);
    // no green instance yet: the first driver transfers and then waits in
    // phase 5 until one comes
    let mut first = spawn_deploy(
        &d,
        "dplease-first",
        "switch",
        &[
            "--to",
            "green",
            "--issuer",
            "first-driver",
            "--phase-timeout-ms",
            "60000",
        ],
    );
    first
        .wait_for_line(|l| l.starts_with("phase 4 transfer"), WAIT)
        .expect("the first driver transferred");
    // a second driver moving the other way is refused, naming the first
    let (code, out) = deploy_all(
        &d,
        "switch",
        &[
            "--to",
            "blue",
            "--issuer",
            "second-driver",
            "--phase-timeout-ms",
            "5000",
        ],
    );
    assert_eq!(code, 3, "refused while the lease is held: {out}");
    assert!(out.contains("first-driver"), "names the holder: {out}");
    let (code, out) = deploy_all(&d, "rollback", &["--issuer", "third-driver"]);
    assert_eq!(code, 3, "refused while the lease is held: {out}");
    assert!(out.contains("first-driver"), "names the holder: {out}");
    // the first one finishes once green runs
    let _g1 = d.probe("dplease-green-1", "green");
    let status = first.wait_exit(WAIT).expect("the first driver ends");
    let out = first.lines().join("\n");
    assert_eq!(status.code(), Some(0), "{out}");
    assert!(
        out.contains("summary: moved 4 partitions blue -> green"),
        "{out}"
    );
    assert!(all_owned_by(&d, "green"), "{:?}", d.owners());
    d.wait_ready(&tail, &[("blue", 1), ("green", 1)]);

    // two switches started together: exactly one moves the partitions
    let runs: Vec<_> = ["left", "right"]
        .into_iter()
        .map(|who| {
            let args = d.deploy_args("switch", &["--to", "blue", "--issuer", who]);
            std::thread::spawn(move || run_all(&args))
        })
        .collect();
    let ends: Vec<(i32, String)> = runs.into_iter().map(|t| t.join().unwrap()).collect();
    let moved: Vec<_> = ends
        .iter()
        .filter(|(_, out)| out.contains("summary: moved 4 partitions green -> blue"))
        .collect();
    assert_eq!(moved.len(), 1, "exactly one acts: {ends:#?}");
    assert_eq!(moved[0].0, 0, "{ends:#?}");
    let other = ends.iter().find(|(c, _)| *c != 0).expect("one refused");
    assert_eq!(other.0, 3, "the other is refused: {ends:#?}");
    assert!(all_owned_by(&d, "blue"), "{:?}", d.owners());
    tail.stop();
}

#[test]
fn recover_refuses_while_a_live_driver_holds_the_lease_and_force_overrides_it() {
    let mut d = Deployment::new("dprlease");
    let (code, out) = d.deploy("init", &["--slot", "blue", "--topics", &d.topic.clone()]);
    assert_eq!(code, 0, "{out}");
    let tail = d.plane.tail();
    let _b1 = d.probe("dprlease-blue-1", "blue");
    let _g1 = d.probe("dprlease-green-1", "green");
    d.wait_ready(&tail, &[("blue", 1), ("green", 1)]);
    // a member of blue's group that acknowledges nothing holds the driver
    // in phase 2, with its partitions frozen
    let blue_group = format!("{}-blue", d.group);
    let _stranger = Stranger::join(&blue_group, &d.topic);
    wait_until("two members in the blue group", WAIT, || {
        group_members(&bootstrap(), &blue_group).0 == 2
    });
    let mut driver = spawn_deploy(
        &d,
        "dprlease-switch",
        "switch",
        &[
            "--to",
            "green",
            "--issuer",
            "live-driver",
            "--phase-timeout-ms",
            "20000",
        ],
    );
    driver
        .wait_for_line(|l| l.starts_with("phase 1 freeze"), WAIT)
        .expect("freeze written");
    let (code, out) = deploy_all(&d, "recover", &[]);
    assert_eq!(code, 3, "recover is refused while the driver lives: {out}");
    assert!(out.contains("live-driver"), "names the holder: {out}");
    assert!(all_frozen(&d), "recover changed nothing: {:?}", d.owners());
    // --force takes over, saying whose lease it overrides
    let (code, out) = deploy_all(&d, "recover", &["--force"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("--force overrides the lease of driver `deploy:live-driver"),
        "{out}"
    );
    assert!(all_owned_by(&d, "blue"), "{:?}", d.owners());
    // the overridden driver times out and can no longer write
    let status = driver.wait_exit(WAIT).expect("the driver ends");
    assert_eq!(status.code(), Some(1), "{}", driver.lines().join("\n"));
    assert!(all_owned_by(&d, "blue"), "{:?}", d.owners());
    let (code, out) = deploy_all(&d, "recover", &[]);
    assert_eq!(code, 0, "no lease is left behind: {out}");
    assert!(out.contains("nothing to do"), "{out}");
    tail.stop();
}

#[test]
fn a_rollback_whose_target_never_acknowledges_fails_naming_the_instance() {
    let mut d = Deployment::new("dprback");
    let (code, out) = d.deploy("init", &["--slot", "blue", "--topics", &d.topic.clone()]);
    assert_eq!(code, 0, "{out}");
    let tail = d.plane.tail();
    let _b1 = d.probe("dprback-blue-1", "blue");
    // a long session: the stopped instance stays a member of green's group
    let mut g1 = d.probe_with(
        "dprback-green-1",
        "green",
        &["--session-timeout-ms", "60000", "--heartbeat-ms", "1000"],
    );
    d.wait_ready(&tail, &[("blue", 1), ("green", 1)]);
    // green's instance hangs: it neither runs what it is given (phase 5
    // times out) nor acknowledges the reverse freeze
    signal(&g1, "STOP");
    let (code, out) = deploy_all(
        &d,
        "switch",
        &["--to", "green", "--phase-timeout-ms", "4000"],
    );
    signal(&g1, "CONT");
    g1.kill();
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("phase 5 (resume) timed out"), "{out}");
    assert!(
        out.contains("dprback-green-1") && out.contains("did not acknowledge"),
        "the rollback fails naming the instance: {out}"
    );
    assert!(
        all_frozen(&d),
        "nothing goes back to blue unacknowledged: {:?}",
        d.owners()
    );
    tail.stop();
}

#[test]
fn a_stopped_partition_fails_the_freeze_at_once_with_its_offset() {
    let mut d = Deployment::new("dpstop");
    let (code, out) = d.deploy("init", &["--slot", "blue", "--topics", &d.topic.clone()]);
    assert_eq!(code, 0, "{out}");
    let tail = d.plane.tail();
    let _b1 = d.probe_with("dpstop-blue-1", "blue", &["--stop-at", "0@5"]);
    let _g1 = d.probe("dpstop-green-1", "green");
    d.wait_ready(&tail, &[("blue", 1), ("green", 1)]);
    let producer = SteadyProducer::start(&bootstrap(), &d.topic, PARTITIONS, 200);
    wait_until("partition 0 stopped on blue", WAIT, || {
        tail.latest().values().any(|s| {
            s.instance == "dpstop-blue-1"
                && s.partitions()
                    .any(|p| p.partition == 0 && p.state == "stopped")
        })
    });
    producer.stop();
    let started = Instant::now();
    let (code, out) = deploy_all(
        &d,
        "switch",
        &["--to", "green", "--phase-timeout-ms", "30000"],
    );
    let took = started.elapsed();
    assert_eq!(code, 1, "{out}");
    let key = format!("{}-0", d.topic);
    assert!(
        out.contains(&format!("{key} is stopped")) && out.contains("offset 5"),
        "names the partition and the offset: {out}"
    );
    assert!(
        out.contains("switchyard ctl resume"),
        "says the way out: {out}"
    );
    assert!(
        took < Duration::from_secs(20),
        "failed at once, not at the phase timeout: {took:?}"
    );
    assert!(all_owned_by(&d, "blue"), "{:?}", d.owners());
    tail.stop();
}
