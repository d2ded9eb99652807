//! The admin API of `switchyard run` guarded by the run file's
//! `admin_token` (given as `${env:..}`): a change of state without the
//! token, or with a wrong one, is refused and changes nothing; with it, it
//! acts; the token never appears in the process's output.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::app_delivery::{admin_address, switchyard_run_with};
use super::common::*;

const TOKEN: &str = "rAdm1n-t0ken-9f2c";

/// A run file with a watched-file control store, the admin API on a free
/// port and its token read from `$RUN_ADMIN_TOKEN`.
fn run_file(app: &str, topic: &str, desired: &Path) -> PathBuf {
    let text = format!(
        r#"

[instance]
application = "{app}"
control = {{ file = "{desired}" }}
admin = "127.0.0.1:0"
admin_token = "${{env:RUN_ADMIN_TOKEN}}"

[[listener]]
name = "orders"
topics = ["{topic}"]
[listener.delivery]
mode = "exec"
command = ["cat"]
"#,
        desired = desired.display(),
    );
    run_file_with("run-admin", &text)
}

#[test]
fn run_admin_api_changes_state_only_with_the_token_of_its_file() {
    let topic = new_topic(broker(), "run-admin", 1);
    let app = unique_name("run-admin-app");
    let desired = std::env::temp_dir().join(format!("{}.json", unique_name("run-admin-desired")));
    let file = run_file(&app, &topic, &desired);
    let args = [
        "--config".to_string(),
        file.display().to_string(),
        "--instance-id".into(),
        "run-admin-1".into(),
    ];
    let mut run = switchyard_run_with(
        "run",
        &args,
        &[("RUN_ADMIN_TOKEN".to_string(), TOKEN.to_string())],
    );
    let admin = admin_address(&run, "run-admin-1");
    let stop = r#"{"state":"STOPPED"}"#;
    let path = "/actuator/bindings/orders";
    let (code, v) = http(&admin, "POST", path, None, stop);
    assert_eq!(
        (code, v["error"].as_str()),
        (401, Some("missing bearer token"))
    );
    let (code, v) = http(&admin, "POST", path, Some("not-the-token"), stop);
    assert_eq!(
        (code, v["error"].as_str()),
        (401, Some("wrong bearer token")),
        "{v}"
    );
    let (_, v) = http(&admin, "GET", path, None, "");
    assert_eq!(
        v["state"], "running",
        "a refused request changed nothing: {v}"
    );
    let (code, v) = http(&admin, "POST", path, Some(TOKEN), stop);
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["state"], "paused", "{v}");
    run.terminate();
    let status = run.wait_exit(Duration::from_secs(40)).expect("run stopped");
    assert_eq!(status.code(), Some(0), "{:?}", run.lines());
    let shown = run.lines().join("\n");
    assert!(
        !shown.contains(TOKEN),
        "the token reached the output:\n{shown}"
    );
}
