//! An instance whose handler is wedged while a pause is applied: its agent
//! keeps reporting (the partition `draining`), `ctl pause` never takes its
//! silence or its slowness for success (it names the instance and exits
//! non-zero), and SIGTERM still ends it within its shutdown deadline (I6).

use std::time::{Duration, Instant};

use super::*;

#[test]
fn a_wedged_instance_keeps_reporting_ctl_names_it_and_sigterm_ends_it_within_the_deadline() {
    let b = bootstrap();
    let plane = Plane::new("wdg");
    let topic = new_topic(broker(), "wdg", 1);
    let group = unique_name("wdg-g");
    let log = log_path("wdg");
    SeqProducer::new(&b).send(&topic, Some(0), 3, |s| s.to_string());
    let mut args = plane.probe_args();
    // every record takes ten minutes: the first one wedges the partition
    args.extend(["--delay-ms", "600000", "--shutdown-timeout-ms", "3000"].map(str::to_string));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut p = probe("wdg-1", &group, &topic, &log, &args);
    let tail = plane.tail();
    wait_until(
        "a record in flight, wedged",
        Duration::from_secs(30),
        || {
            live(&tail, &plane.app)
                .iter()
                .any(|s| s.partitions().any(|p| p.in_flight > 0))
        },
    );

    let ctl = {
        let mut a = plane.cli_args("ctl", "pause");
        a.extend(["--listener", "probe", "--timeout", "4s"].map(str::to_string));
        a
    };
    let (code, out, err) = run_bounded(
        env!("CARGO_BIN_EXE_switchyard"),
        &ctl,
        Duration::from_secs(60),
    );
    assert_ne!(
        code, 0,
        "a pause nobody acknowledged is no success:\n{out}{err}"
    );
    assert!(
        err.contains("not acknowledged by wdg-1"),
        "the instance is named:\n{out}{err}"
    );
    // it kept reporting while the pause drained: live, the partition draining
    let now = live(&tail, &plane.app);
    assert!(
        now.iter()
            .any(|s| s.instance == "wdg-1" && s.partitions().any(|p| p.state == "draining")),
        "the instance reports while it applies: {now:?}"
    );

    let stopping = Instant::now();
    p.terminate();
    let status = p
        .wait_exit(Duration::from_secs(30))
        .expect("the instance exits");
    let took = stopping.elapsed();
    assert!(
        took < Duration::from_secs(3) + Duration::from_secs(3),
        "SIGTERM to exit took {took:?} with a 3 s shutdown deadline (and at most 3 s to start and leave the group)"
    );
    assert!(status.code().is_some(), "{status:?}");
    tail.stop();
}
