//! The `switchyard lag` command: the same figures as JSON and as an aligned
//! table, `--all`, and exit code 2 on usage errors.

use super::*;

#[test]
fn the_cli_prints_the_same_figures_as_json_and_a_table() {
    let topic = new_topic(broker(), "lag-cli", 2);
    let group = unique_name("lag-cli-g");
    produce(&topic, 0, 9);
    produce(&topic, 1, 5);
    commit(&group, &topic, &[(0, 3), (1, 5)]);
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .args(["lag", "--bootstrap", &bootstrap(), "--group", &group])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let json: serde_json::Value = serde_json::from_str(&run(&["--json"])).unwrap();
    let g = &json["groups"][0];
    assert_eq!(g["group"], group.as_str());
    assert_eq!(g["lag"], 6);
    let rows: Vec<(i64, i64, i64, i64)> = g["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["partition"].as_i64().unwrap(),
                p["log_end"].as_i64().unwrap(),
                p["committed"].as_i64().unwrap(),
                p["lag"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(rows, [(0, 9, 3, 6), (1, 5, 5, 0)]);
    assert_eq!(g["partitions"][1]["time_lag_ms"], 0);
    assert!(g["partitions"][0]["time_lag_ms"].as_i64().unwrap() >= 0);

    let table = run(&["--time-lag", "off"]);
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with(&format!("GROUP {group} (Empty, 0 members): lag 6")),
        "{table}"
    );
    let header = lines[1];
    let lag_end = header.find("LAG ").unwrap() + 3;
    let row = lines
        .iter()
        .find(|l| l.starts_with(&topic) && l.split_whitespace().nth(1) == Some("0"))
        .unwrap();
    assert_eq!(
        row[..lag_end].split_whitespace().last(),
        Some("6"),
        "LAG column right-aligned under its header:\n{table}"
    );

    // --all lists the groups of the cluster: this one among them, with the same figures.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args([
            "lag",
            "--bootstrap",
            &bootstrap(),
            "--all",
            "--json",
            "--time-lag",
            "off",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let all: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mine = all["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["group"] == group.as_str());
    assert_eq!(mine.expect("group listed by --all")["lag"], 6);

    // Usage errors exit 2.
    for args in [
        &["--window", "0", "--group", "g"][..],
        &[][..],
        &["--group", "g", "--all"][..],
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .args(["lag", "--bootstrap", &bootstrap()])
            .args(args)
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
