//! The exit codes of `switchyard`, one scheme for every command (README,
//! "Exit codes"): 0 done, 1 failed, 2 usage, 3 refused; checked on real
//! commands.

use std::time::{Duration, Instant};

use switchyard_runtime::Listener;

use super::common::*;

const WAIT: Duration = Duration::from_secs(20);

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

#[test]
fn usage_errors_exit_2() {
    // clap: a required argument missing
    let (code, out) = switchyard(&args(&["offsets", "reset", "--group", "g"]));
    assert_eq!(code, 2, "{out}");
    // clap: an unknown subcommand
    let (code, out) = switchyard(&args(&["no-such-command"]));
    assert_eq!(code, 2, "{out}");
    // found after parsing: a bad -X property, a non-positive window
    let b = bootstrap();
    let (code, out) = switchyard(&args(&[
        "offsets",
        "reset",
        "--bootstrap",
        &b,
        "-X",
        "no-value",
        "--group",
        "g",
        "--topic",
        "t",
        "--to-earliest",
    ]));
    assert_eq!(code, 2, "{out}");
    let (code, out) = switchyard(&args(&[
        "lag",
        "--bootstrap",
        &b,
        "--group",
        "g",
        "--window",
        "0",
    ]));
    assert_eq!(code, 2, "{out}");
    // help is not an error
    let (code, out) = switchyard(&args(&["--help"]));
    assert_eq!(code, 0, "{out}");
}

#[test]
fn an_unreachable_bootstrap_fails_with_1() {
    let closed = format!("127.0.0.1:{}", free_port());
    let started = Instant::now();
    let (code, out) = switchyard(&args(&["lag", "--bootstrap", &closed, "--group", "g"]));
    assert_eq!(code, 1, "{out}");
    assert!(started.elapsed() < Duration::from_secs(60), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_reset_of_an_active_group_is_refused_with_3_and_done_with_0_once_it_is_empty() {
    let b = bootstrap();
    let topic = new_topic(broker(), "exitcodes", 2);
    let group = unique_name("exitcodes-g");
    SeqProducer::new(&b).send(&topic, None, 10, |s| format!("k{s}"));
    let (builder, seen) = collecting(
        Listener::builder("exitcodes")
            .config(config(&group))
            .topics([topic.clone()]),
    );
    let listener = builder.start().unwrap();
    eventually("all consumed", WAIT, || count(&seen) == 10).await;
    let reset = args(&[
        "offsets",
        "reset",
        "--bootstrap",
        &b,
        "--group",
        &group,
        "--topic",
        &topic,
        "--to-earliest",
        "--execute",
    ]);
    let r = reset.clone();
    let (code, out) = tokio::task::spawn_blocking(move || switchyard(&r))
        .await
        .unwrap();
    assert_eq!(code, 3, "a reset while the group has a member: {out}");
    listener.shutdown().await;
    wait_until("group empty", WAIT, || group_members(&b, &group).0 == 0);
    let (code, out) = tokio::task::spawn_blocking(move || switchyard(&reset))
        .await
        .unwrap();
    assert_eq!(code, 0, "{out}");
    assert!(
        committed_offsets(&bootstrap(), &group, &topic)
            .values()
            .all(|o| *o == 0),
        "{out}"
    );
}

#[test]
fn a_deploy_move_with_nothing_to_move_is_refused_with_3() {
    let plane = Plane::new("exitcodes");
    let mut promote = plane.cli_args("deploy", "promote");
    promote.extend(args(&["--group", &unique_name("exitcodes-dg")]));
    let (code, out) = switchyard(&promote);
    assert_eq!(code, 3, "no canary to promote: {out}");
}
