//! The `switchyard` binary's logs on stderr: no colour codes when stderr is
//! not a terminal, and one JSON object per line with `--log-format json` or
//! `SWITCHYARD_LOG_FORMAT=json`. The command is a `ctl pause` on a plane with
//! no instance (it writes the desired state, logs it at `info`, and has
//! nobody to wait for).

use std::process::Command;

use super::common::*;

/// Run `switchyard ctl pause` on `plane` with `args` first and `env`: exit
/// code and stderr.
fn pause(plane: &Plane, args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let mut cli: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    cli.extend(plane.cli_args("ctl", "pause"));
    cli.extend([
        "--listener".into(),
        "l".into(),
        "--timeout-ms".into(),
        "5000".into(),
    ]);
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(&cli)
        .env("SWITCHYARD_LOG", "info")
        .env_remove("SWITCHYARD_LOG_FORMAT")
        .env_remove("NO_COLOR")
        .envs(env.iter().copied())
        .output()
        .expect("run switchyard");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    eprintln!("[switchyard ctl pause {args:?} {env:?}]\n{stderr}");
    (out.status.code().unwrap_or(-1), stderr)
}

#[test]
fn logs_on_a_pipe_have_no_escape_codes() {
    let plane = Plane::new("logtext");
    let (code, stderr) = pause(&plane, &[], &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("desired state written"),
        "the write is logged: {stderr}"
    );
    assert!(
        !stderr.contains('\u{1b}'),
        "no escape codes on a pipe: {stderr:?}"
    );
}

#[test]
fn json_logs_are_one_object_per_line_by_flag_and_by_environment() {
    let plane = Plane::new("logjson");
    for (args, env) in [
        (&["--log-format", "json"][..], &[][..]),
        (&[][..], &[("SWITCHYARD_LOG_FORMAT", "json")][..]),
    ] {
        let (code, stderr) = pause(&plane, args, env);
        assert_eq!(code, 0, "{stderr}");
        assert!(!stderr.contains('\u{1b}'), "{stderr:?}");
        let lines: Vec<serde_json::Value> = stderr
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("not a JSON line ({e}): {l:?}"));
                assert!(v.is_object(), "not an object: {l}");
                for field in ["timestamp", "level", "target", "message"] {
                    assert!(v.get(field).is_some(), "no `{field}`: {l}");
                }
                v
            })
            .collect();
        let written = lines
            .iter()
            .find(|v| v["message"] == "desired state written")
            .unwrap_or_else(|| panic!("the write is logged: {stderr}"));
        assert_eq!(written["level"], "INFO");
        assert_eq!(
            written["app"],
            plane.app.as_str(),
            "fields at the top level"
        );
    }
}
