//! The control plane's other inputs end to end: the HTTP admin API (every
//! error case, the token), a watched file and the Redis store.

use super::*;

fn http_addr(c: &Child) -> String {
    c.wait_for_line(|l| l.starts_with("HTTP "), WAIT).unwrap()[5..].to_string()
}

#[test]
fn http_api_answers_every_error_with_its_status_and_reason_and_needs_the_token() {
    let b = bootstrap();
    let plane = Plane::new("cph");
    let topic = new_topic(broker(), "cph", 2);
    let logs = [log_path("cph")];
    SeqProducer::new(&b).send(&topic, None, 10, |s| s.to_string());
    let a = plane.probe(
        "cph-a",
        &unique_name("cph-g"),
        &topic,
        &logs[0],
        &["--http", "127.0.0.1:0", "--token", "s3cret"],
    );
    let addr = http_addr(&a);
    wait_until("10 processed", WAIT, || count_of(&logs, &topic) == 10);
    let t = Some("s3cret");
    let pause = r#"{"state":"PAUSED"}"#;
    let (code, v) = http(&addr, "GET", "/bindings", None, "");
    assert_eq!((code, v[0]["name"].as_str()), (200, Some("probe")));
    // (method, path, token, body, status, reason)
    type Case<'a> = (&'a str, &'a str, Option<&'a str>, &'a str, u16, &'a str);
    let cases: Vec<Case> = vec![
        (
            "GET",
            "/bindings/nope",
            None,
            "",
            404,
            "unknown listener `nope`",
        ),
        (
            "POST",
            "/bindings/probe",
            None,
            pause,
            401,
            "missing bearer token",
        ),
        (
            "POST",
            "/bindings/probe",
            Some("wrong"),
            pause,
            401,
            "wrong bearer token",
        ),
        ("POST", "/bindings/nope", t, pause, 404, "unknown listener"),
        ("POST", "/bindings/%20", t, pause, 400, "blank"),
        ("POST", "/bindings/", t, pause, 400, "blank"),
        (
            "POST",
            "/bindings/probe",
            t,
            "{not json",
            400,
            "malformed JSON",
        ),
        (
            "POST",
            "/bindings/probe",
            t,
            r#"{"state":"FROZEN"}"#,
            422,
            "unknown state `FROZEN`",
        ),
        (
            "POST",
            "/bindings/probe",
            t,
            r#"{"stat":"PAUSED"}"#,
            422,
            "invalid body",
        ),
        (
            "POST",
            "/bindings/probe",
            t,
            r#"{"state":"PAUSED","version":99}"#,
            409,
            "stale version",
        ),
        (
            "POST",
            "/bindings/probe?scope=galaxy",
            t,
            pause,
            400,
            "unknown scope",
        ),
        (
            "POST",
            "/bindings/probe",
            t,
            r#"{"state":"PAUSED","partition":1}"#,
            422,
            "needs a topic",
        ),
    ];
    for (method, path, token, body, want, reason) in cases {
        let (code, v) = http(&addr, method, path, token, body);
        let err = v["error"].as_str().unwrap_or_default().to_string();
        assert_eq!(code, want, "{method} {path} {body}: {v}");
        assert!(
            err.contains(reason),
            "{method} {path} {body}: `{err}` lacks `{reason}`"
        );
    }
    let (_, v) = http(&addr, "GET", "/bindings/probe", None, "");
    assert_eq!(
        (v["state"].as_str(), v["applied_version"].as_u64()),
        (Some("RUNNING"), Some(0)),
        "errors changed nothing"
    );

    let (code, v) = http(
        &addr,
        "POST",
        "/bindings/probe",
        t,
        r#"{"state":"STOPPED","version":0}"#,
    );
    assert_eq!((code, v["version"].as_u64()), (200, Some(1)), "{v}");
    let (_, v) = http(&addr, "GET", "/bindings/probe", None, "");
    assert_eq!(v["state"], "PAUSED");
    assert!(
        v["partitions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["state"] == "paused"),
        "{v}"
    );
    let (code, _) = http(
        &addr,
        "POST",
        "/bindings/probe",
        t,
        r#"{"state":"STARTED"}"#,
    );
    assert_eq!(code, 200);
    let (code, v) = http(&addr, "POST", "/bindings/probe?scope=instance", t, pause);
    assert_eq!((code, v["override"].as_str()), (200, Some("paused")), "{v}");
    let (_, v) = http(&addr, "GET", "/bindings/probe", None, "");
    assert_eq!(
        (v["state"].as_str(), v["override"].as_str()),
        (Some("PAUSED"), Some("paused"))
    );
    let tail = plane.tail();
    wait_until("override reported in the status", WAIT, || {
        live(&tail, &plane.app)
            .iter()
            .any(|s| !s.overrides.is_empty() && s.applied_version == 2)
    });
    let (code, v) = http(&addr, "GET", "/fleet", None, "");
    assert_eq!(code, 200);
    assert_eq!(v["instances"][0]["overrides"][0], "probe", "{v}");
}

#[test]
fn a_watched_file_pauses_and_resumes_an_instance_and_a_bad_file_keeps_the_last_state() {
    let b = bootstrap();
    let topic = new_topic(broker(), "cpf", 2);
    let logs = [log_path("cpf")];
    let file = std::env::temp_dir().join(format!("{}.toml", unique_name("cpf-desired")));
    std::fs::write(&file, "pauses = []\n").unwrap();
    let mut producer = SeqProducer::new(&b);
    producer.send(&topic, None, 10, |s| s.to_string());
    let a = probe(
        "cpf-a",
        &unique_name("cpf-g"),
        &topic,
        &logs[0],
        &[
            "--app",
            "cpf",
            "--desired-file",
            file.to_str().unwrap(),
            "--http",
            "127.0.0.1:0",
        ],
    );
    let addr = http_addr(&a);
    wait_until("10 processed", WAIT, || count_of(&logs, &topic) == 10);
    let state = || http(&addr, "GET", "/bindings/probe", None, "").1;
    std::fs::write(
        &file,
        format!("[[pauses]]\nlistener = \"probe\"\ntopic = \"{topic}\"\nreason = \"test\"\n"),
    )
    .unwrap();
    wait_until("paused from the file", WAIT, || {
        let v = state();
        v["applied_version"] == 2
            && v["partitions"]
                .as_array()
                .is_some_and(|p| p.len() == 2 && p.iter().all(|p| p["state"] == "paused"))
    });
    producer.send(&topic, None, 10, |s| s.to_string());
    std::fs::write(&file, "[[pauses]]\nlistener = \"\"\n").unwrap();
    std::fs::write(&file, "this is not toml [").unwrap();
    wait_until("bad file seen", WAIT, || state()["applied_version"] == 2);
    assert_eq!(
        count_of(&logs, &topic),
        10,
        "still paused: the last good state is kept"
    );
    std::fs::write(&file, "pauses = []\n").unwrap();
    wait_until("resumed from the file", WAIT, || {
        count_of(&logs, &topic) == 20
    });
    let _ = std::fs::remove_file(&file);
}

/// redis-server on a free port, killed on drop.
struct Redis {
    _child: Child,
    url: String,
}

fn redis() -> Redis {
    let port = free_port();
    let child = Child::spawn(
        "redis",
        std::path::Path::new("redis-server"),
        &[
            "--port".into(),
            port.to_string(),
            "--save".into(),
            "".into(),
            "--appendonly".into(),
            "no".into(),
        ],
        &[],
    );
    child
        .wait_for_line(|l| l.contains("Ready to accept connections"), WAIT)
        .expect("redis-server starts (scripts/install-test-deps.sh installs it)");
    Redis {
        _child: child,
        url: format!("redis://127.0.0.1:{port}/"),
    }
}

#[test]
fn the_redis_store_pauses_and_resumes_an_instance() {
    let r = redis();
    let b = bootstrap();
    let plane = Plane::new("cpx");
    let topic = new_topic(broker(), "cpx", 2);
    let logs = [log_path("cpx")];
    let mut producer = SeqProducer::new(&b);
    producer.send(&topic, None, 10, |s| s.to_string());
    let _a = plane.probe(
        "cpx-a",
        &unique_name("cpx-g"),
        &topic,
        &logs[0],
        &["--redis", &r.url],
    );
    let tail = plane.tail();
    wait_until("10 processed", WAIT, || count_of(&logs, &topic) == 10);
    wait_until("assigned", WAIT, || {
        live(&tail, &plane.app)
            .iter()
            .any(|s| s.partitions().count() == 2)
    });
    let (code, out) = plane.ctl(
        "pause",
        &["--redis", &r.url, "--listener", "probe", "--topic", &topic],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("cpx-a: acknowledged version 1"), "{out}");
    producer.send(&topic, None, 10, |s| s.to_string());
    wait_heartbeats(&tail, &plane.app, 3);
    assert_eq!(
        count_of(&logs, &topic),
        10,
        "nothing delivered while paused"
    );
    let (code, out) = plane.ctl(
        "resume",
        &["--redis", &r.url, "--listener", "probe", "--topic", &topic],
    );
    assert_eq!(code, 0, "{out}");
    wait_until("resumed", WAIT, || count_of(&logs, &topic) == 20);
}

/// An instance override can pause more, never run what the desired state
/// withholds: `STARTED` at instance scope on a standby of the green slot
/// (blue owns every partition) leaves every partition paused, and the
/// answer says so. The override used to win over slot ownership, and the
/// standby processed partitions blue owned (invariant I1).
#[test]
fn an_instance_override_never_runs_what_slot_ownership_withholds() {
    let b = bootstrap();
    let plane = Plane::new("cpo");
    let topic = new_topic(broker(), "cpo", 2);
    let group = unique_name("cpo-g");
    let logs = [log_path("cpo")];
    let mut init = plane.cli_args("deploy", "init");
    init.extend(
        [
            "--group",
            &group,
            "--listener",
            "probe",
            "--slot",
            "blue",
            "--topics",
            &topic,
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    let (code, out) = switchyard(&init);
    assert_eq!(code, 0, "{out}");
    let tail = plane.tail();
    let green = plane.probe(
        "cpo-green",
        &group,
        &topic,
        &logs[0],
        &[
            "--slot",
            "green",
            "--group-per-slot",
            "--http",
            "127.0.0.1:0",
        ],
    );
    let addr = http_addr(&green);
    wait_until("the standby holds both partitions paused", WAIT, || {
        live(&tail, &plane.app)
            .iter()
            .any(|s| s.partitions().filter(|p| p.state == "paused").count() == 2)
    });
    SeqProducer::new(&b).send(&topic, None, 10, |s| s.to_string());
    let (code, v) = http(
        &addr,
        "POST",
        "/bindings/probe?scope=instance",
        None,
        r#"{"state":"STARTED"}"#,
    );
    assert_eq!(code, 200, "{v}");
    assert!(v["override"].is_null(), "no override to run more: {v}");
    let withheld: Vec<&str> = v["withheld"]
        .as_array()
        .map(|a| a.iter().filter_map(|t| t.as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        withheld,
        vec![format!("{topic}-0"), format!("{topic}-1")],
        "the answer names what stays paused: {v}"
    );
    // a pause override still works, and lifting it runs nothing either
    let (code, v) = http(
        &addr,
        "POST",
        "/bindings/probe?scope=instance",
        None,
        r#"{"state":"PAUSED"}"#,
    );
    assert_eq!((code, v["override"].as_str()), (200, Some("paused")), "{v}");
    let (code, _) = http(
        &addr,
        "POST",
        "/bindings/probe?scope=instance",
        None,
        r#"{"state":"RESUMED"}"#,
    );
    assert_eq!(code, 200);
    wait_heartbeats(&tail, &plane.app, 5);
    assert_eq!(count_of(&logs, &topic), 0, "the standby processed nothing");
    assert!(
        live(&tail, &plane.app)
            .iter()
            .all(|s| s.partitions().all(|p| p.state == "paused") && s.overrides.is_empty()),
        "still paused, no override"
    );
}

/// Out-of-range input is refused with 422 and the reason, before anything
/// reaches the broker: an expiry of 2^64-1 ms (it was accepted with 200 and
/// the pause, already expired, never held), a 1.5 MB reason (a 500 from the
/// broker's record size limit), a topic name Kafka would refuse.
#[test]
fn http_api_refuses_out_of_range_input_with_422_and_the_reason() {
    let b = bootstrap();
    let plane = Plane::new("cpr");
    let topic = new_topic(broker(), "cpr", 2);
    let logs = [log_path("cpr")];
    SeqProducer::new(&b).send(&topic, None, 10, |s| s.to_string());
    let a = plane.probe(
        "cpr-a",
        &unique_name("cpr-g"),
        &topic,
        &logs[0],
        &["--http", "127.0.0.1:0"],
    );
    let addr = http_addr(&a);
    wait_until("10 processed", WAIT, || count_of(&logs, &topic) == 10);
    let big = format!(
        r#"{{"state":"PAUSED","topic":"{topic}","reason":"{}"}}"#,
        "x".repeat(1_500_000)
    );
    let cases = [
        (
            format!(
                r#"{{"state":"PAUSED","topic":"{topic}","expires_in_ms":18446744073709551615}}"#
            ),
            "expires_in_ms",
        ),
        (big, "reason"),
        (
            r#"{"state":"PAUSED","topic":"no spaces"}"#.to_string(),
            "topic",
        ),
    ];
    for (body, field) in &cases {
        let (code, v) = http(&addr, "POST", "/bindings/probe", None, body);
        let err = v["error"].as_str().unwrap_or_default();
        assert_eq!(code, 422, "{field}: {}", &err[..err.len().min(200)]);
        assert!(err.contains(field), "`{err}` names `{field}`");
    }
    let (_, v) = http(&addr, "GET", "/bindings/probe", None, "");
    assert_eq!(
        (v["state"].as_str(), v["applied_version"].as_u64()),
        (Some("RUNNING"), Some(0)),
        "nothing was written"
    );
}

/// An instance with the admin API shuts down cleanly on SIGTERM: stopping
/// the agent stops its HTTP server (an idle keep-alive connection does not
/// hold it) and hands the listener back, which commits and leaves the
/// group: the shutdown report, the offsets committed, exit 0. The server
/// used to keep the listener, and the instance printed "error: the listener
/// is still in use by the admin API" with no report.
#[test]
fn an_instance_with_the_admin_api_shuts_down_cleanly_on_sigterm() {
    let b = bootstrap();
    let plane = Plane::new("cps");
    let topic = new_topic(broker(), "cps", 2);
    let group = unique_name("cps-g");
    let logs = [log_path("cps")];
    SeqProducer::new(&b).send(&topic, None, 20, |s| s.to_string());
    let mut a = plane.probe(
        "cps-a",
        &group,
        &topic,
        &logs[0],
        &["--http", "127.0.0.1:0"],
    );
    let addr = http_addr(&a);
    wait_until("20 processed", WAIT, || count_of(&logs, &topic) == 20);
    for path in ["/bindings/probe", "/metrics", "/readyz"] {
        assert_eq!(http(&addr, "GET", path, None, "").0, 200, "{path}");
    }
    // a keep-alive connection left open
    let mut idle = std::net::TcpStream::connect(&addr).unwrap();
    write!(idle, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut buf = [0u8; 64];
    let n = idle.read(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    a.terminate();
    let status = a.wait_exit(WAIT).expect("the instance exits");
    let lines = a.lines();
    assert!(status.success(), "{status:?}: {lines:?}");
    let report = lines
        .iter()
        .find_map(|l| l.strip_prefix("SHUTDOWN "))
        .unwrap_or_else(|| panic!("no shutdown report: {lines:?}"));
    let report: serde_json::Value = serde_json::from_str(report).unwrap();
    assert_eq!(report["closed"], true, "{report}");
    assert_eq!(
        committed_offsets(&b, &group, &topic),
        end_offsets(&b, &topic),
        "everything processed is committed"
    );
    drop(idle);
}
