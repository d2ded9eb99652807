//! `switchyard demo` end to end: the pause/resume part with a small record
//! count, then the blue/green part (a switch and a rollback while records
//! flow), whose verification table must show no duplicate, no lost record
//! and both handoffs done. On its own embedded broker (no test broker
//! needed), and with `--bootstrap` on the test broker, twice (its names are
//! unique per run).

use super::common::*;

/// The value column of the verification table's row `name` (the text after it).
fn row<'a>(out: &'a str, name: &str) -> &'a str {
    let table = out
        .split_once("\nverification\n")
        .unwrap_or_else(|| panic!("no verification table in:\n{out}"))
        .1;
    table
        .lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix(name))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no `{name}` line in:\n{out}"))
}

/// The demo's exit code was 0 and its verification table shows every
/// record processed once and both handoffs done.
fn assert_verified(code: i32, out: &str) {
    assert_eq!(code, 0, "demo failed:\n{out}");
    assert!(row(out, "duplicates").starts_with("0 "), "{out}");
    assert!(row(out, "lost").starts_with("0 "), "{out}");
    assert_eq!(row(out, "records produced"), row(out, "records processed"));
    for h in ["handoff blue -> green", "handoff green -> blue"] {
        assert!(row(out, h).starts_with("done: 4 partitions"), "{h}: {out}");
    }
    assert!(
        row(out, "by green").parse::<u64>().unwrap() > 0,
        "green processed nothing: {out}"
    );
}

#[test]
fn the_demo_switches_to_green_and_back_without_duplicates_or_lost_records() {
    let (code, out) = switchyard(&["demo".into(), "--records".into(), "2000".into()]);
    assert_verified(code, &out);
}

#[test]
fn the_demo_runs_on_a_cluster_with_bootstrap_twice() {
    for run in 0..2 {
        let args = ["demo", "--bootstrap", &bootstrap(), "--records", "2000"];
        let (code, out) = switchyard(&args.map(String::from));
        assert!(out.contains("cluster at "), "run {run}: {out}");
        assert_verified(code, &out);
    }
}
