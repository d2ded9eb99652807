//! Every client over SASL_SSL (SCRAM-SHA-512, TLS with a CA of the test's
//! own) on a broker of its own whose clients reach it on that listener only:
//! a listener and its dead letters, control writes, lag and offsets reset,
//! a blue/green switch and rollback (`secured/deploy.rs`);
//! a wrong password and an untrusted certificate fail in bounded time with
//! no secret shown; with the StandardAuthorizer a principal without write
//! access to the control topic is refused and changes nothing while an
//! operator's write lands. Nothing the test logged holds a secret.

mod deploy;
mod problems;

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use switchyard_admin::{reset_offsets, ResetTo};
use switchyard_config::{Connection, ConsumerConfig, OffsetReset};
use switchyard_control::kafka_clients::READER_GROUP;
use switchyard_control::kafka_store::KafkaStore;
use switchyard_control::model::Pause;
use switchyard_control::Store;
use switchyard_lag::{Sampler, SamplerConfig};
use switchyard_runtime::deserializer::Utf8;
use switchyard_runtime::record::Record;
use switchyard_runtime::{FailurePolicy, Listener, RetryPolicy};
use switchyard_testkit::broker::secured::{make_ca, random_token};
use switchyard_testkit::{java_command, unique_name, Broker, SecuredOptions};

/// The secured broker of this binary with its principals' passwords, and
/// everything the test's child processes printed.
struct Sec {
    broker: Broker,
    instance_password: String,
    operator_password: String,
    logged: Mutex<String>,
}

fn sec() -> &'static Sec {
    static SEC: OnceLock<Sec> = OnceLock::new();
    SEC.get_or_init(|| {
        let instance_password = format!("inst-{}", random_token());
        let operator_password = format!("oper-{}", random_token());
        let broker = Broker::start_secured(
            SecuredOptions::default()
                .user("instance", &instance_password)
                .user("operator", &operator_password)
                .with_authorizer(),
        );
        Sec {
            broker,
            instance_password,
            operator_password,
            logged: Mutex::new(String::new()),
        }
    })
}

fn connection(user: &str, password: &str) -> Connection {
    let s = sec().broker.secured().unwrap();
    let mut c = Connection::new(s.bootstrap());
    for (k, v) in s.client_properties(user, password) {
        c.set(&k, &v).unwrap();
    }
    c
}

fn admin() -> Connection {
    let s = sec().broker.secured().unwrap();
    connection("admin", &s.options.admin_password)
}

fn secrets() -> Vec<String> {
    let s = sec();
    let mut out: Vec<String> = s
        .broker
        .secured()
        .unwrap()
        .all_users()
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    out.push(s.instance_password.clone());
    out.push(s.operator_password.clone());
    out
}

fn log(text: &str) {
    eprintln!("{text}");
    sec().logged.lock().unwrap().push_str(text);
    sec().logged.lock().unwrap().push('\n');
}

/// Everything logged so far holds no secret (each test checks at its end,
/// so the scan does not depend on the order tests run in).
fn scan_logged() {
    let logged = sec().logged.lock().unwrap().clone();
    assert_no_secret("the test's log", &logged);
}

fn assert_no_secret(what: &str, text: &str) {
    for secret in secrets() {
        assert!(!text.contains(&secret), "{what} shows a secret");
    }
}

fn create_topic(conn: &Connection, topic: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = conn.client_config().create().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(-1));
    for r in rt
        .block_on(admin.create_topics([&new], &AdminOptions::new()))
        .unwrap()
    {
        r.unwrap();
    }
}

fn produce(conn: &Connection, topic: &str, values: &[&str]) {
    let p: BaseProducer = conn.client_config().create().unwrap();
    for v in values {
        p.send(BaseRecord::to(topic).partition(0).key("k").payload(*v))
            .unwrap();
    }
    p.flush(Duration::from_secs(30)).unwrap();
}

fn read_all(conn: &Connection, topic: &str, n: usize) -> Vec<String> {
    let c: BaseConsumer = conn
        .client_config()
        .set("group.id", unique_name("sec-read"))
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .unwrap();
    c.assign(&tpl).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut out = Vec::new();
    while out.len() < n && Instant::now() < deadline {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(200)) {
            out.push(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned());
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_its_dead_letters_control_lag_and_reset_all_over_sasl_ssl() {
    let conn = admin();
    let topic = unique_name("sec-orders");
    let group = unique_name("sec-g");
    let c2 = conn.clone();
    let t2 = topic.clone();
    tokio::task::spawn_blocking(move || {
        create_topic(&c2, &t2, 1);
        produce(&c2, &t2, &["a", "b", "poison", "c", "d"]);
    })
    .await
    .unwrap();

    let mut config = ConsumerConfig::default()
        .with_connection(conn.clone())
        .with_group(group.clone());
    config.auto_offset_reset = OffsetReset::Earliest;
    config.session_timeout_ms = 6000;
    config.heartbeat_interval_ms = 500;
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let s2 = seen.clone();
    let listener = Listener::builder("secured")
        .config(config)
        .topics([topic.clone()])
        .retry(RetryPolicy {
            max_attempts: 2,
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(20),
        })
        .on_failure(FailurePolicy::DeadLetter)
        .handler(Utf8, Utf8, move |r: Record<String, String>| {
            let seen = s2.clone();
            async move {
                if r.value == "poison" {
                    return Err("poison record".into());
                }
                seen.lock().unwrap().push(r.value);
                Ok(())
            }
        })
        .start()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.lock().unwrap().len() < 4 {
        assert!(
            Instant::now() < deadline,
            "records not consumed over SASL_SSL"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (c2, dlt) = (conn.clone(), format!("{topic}.DLT"));
    let dead = tokio::task::spawn_blocking(move || read_all(&c2, &dlt, 1))
        .await
        .unwrap();
    assert_eq!(dead, ["poison"]);
    listener.shutdown().await;

    // control: pause and resume through the store
    let c2 = conn.clone();
    let control = unique_name("sec-control");
    tokio::task::spawn_blocking(move || {
        let store = KafkaStore::new(&c2, &control).unwrap();
        let s = store
            .write("orders", None, Some("test"), &|s| {
                s.add_pause(Pause::listener("secured"))
            })
            .unwrap();
        assert_eq!(s.pauses.len(), 1);
        let s = store
            .write("orders", None, Some("test"), &|s| {
                s.remove_pause("secured", &Pause::listener("secured").target());
                Ok(())
            })
            .unwrap();
        assert!(s.pauses.is_empty());
    })
    .await
    .unwrap();

    // lag, then offsets reset, of the (now empty) group
    let (c2, g2, t2) = (conn.clone(), group.clone(), topic.clone());
    tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let mut sampler = Sampler::new(SamplerConfig::new(&c2, [g2.clone()])).unwrap();
            let report = sampler.sample().unwrap();
            let lag = report
                .group(&g2)
                .and_then(|g| g.partition(&t2, 0))
                .and_then(|p| p.lag);
            if lag == Some(0) {
                break;
            }
            assert!(Instant::now() < deadline, "lag over SASL_SSL: {lag:?}");
            std::thread::sleep(Duration::from_millis(500));
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        let rows = loop {
            match reset_offsets(
                &c2,
                &g2,
                &t2,
                ResetTo::Earliest,
                true,
                Duration::from_secs(10),
            ) {
                Ok(rows) => break rows,
                Err(e) if Instant::now() < deadline => {
                    log(&format!("reset: {e}"));
                    std::thread::sleep(Duration::from_millis(500));
                }
                Err(e) => panic!("reset over SASL_SSL: {e}"),
            }
        };
        assert_eq!(rows.len(), 1);
        assert_eq!((rows[0].before, rows[0].after), (5, 0));
    })
    .await
    .unwrap();
}

/// A client error, and how long it took; the error must not hang.
fn control_error(conn: Connection) -> (String, Duration) {
    let start = Instant::now();
    let topic = unique_name("sec-bad");
    let r = KafkaStore::new(&conn, &topic);
    let text = match r {
        Ok(_) => panic!("a store was opened with bad credentials"),
        Err(e) => e.to_string(),
    };
    (text, start.elapsed())
}

#[test]
fn a_wrong_password_fails_in_bounded_time_without_showing_it() {
    let wrong = format!("wrong-{}", random_token());
    let conn = connection("operator", &wrong);
    let debug = format!("{conn:?}");
    assert!(!debug.contains(&wrong));
    let (text, took) = control_error(conn);
    log(&format!("wrong password: {text} (after {took:?})"));
    assert!(took < Duration::from_secs(60), "{took:?}");
    assert!(text.to_lowercase().contains("authentication"), "{text}");
    assert!(!text.contains(&wrong), "{text}");
    assert_no_secret("the error", &text);
    scan_logged();
}

#[test]
fn an_untrusted_certificate_fails_in_bounded_time() {
    let dir = std::env::temp_dir().join(unique_name("sy-untrusted-ca"));
    let other = make_ca(&dir, "other", "not-the-broker-ca").unwrap();
    let s = sec();
    let mut conn = connection("operator", &s.operator_password);
    conn.set("ssl.ca.location", &other.display().to_string())
        .unwrap();
    let (text, took) = control_error(conn);
    log(&format!("untrusted certificate: {text} (after {took:?})"));
    assert!(took < Duration::from_secs(60), "{took:?}");
    assert!(
        text.contains("SSL") || text.contains("certificate"),
        "{text}"
    );
    assert_no_secret("the error", &text);
    let _ = std::fs::remove_dir_all(dir);
    scan_logged();
}

fn acl(args: &[&str]) {
    let s = sec();
    let output = java_command()
        .arg("org.apache.kafka.tools.AclCommand")
        .args(["--bootstrap-server", &s.broker.bootstrap()])
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    log(&text);
    assert!(output.status.success(), "AclCommand {args:?}: {text}");
}

#[test]
fn with_the_authorizer_an_instance_cannot_write_the_control_topic_and_an_operator_can() {
    let s = sec();
    let topic = unique_name("sec-acl-control");
    let app = "orders";
    let txn = switchyard_control::kafka_clients::transactional_id(&topic, app);
    // the topic exists (an admin made it): the principals only read and write
    let admin_store = KafkaStore::new(admin(), &topic).unwrap();
    for (user, ops) in [
        ("instance", &["Read", "Describe"][..]),
        ("operator", &["Read", "Describe", "Write"][..]),
    ] {
        let principal = format!("User:{user}");
        let mut args = vec!["--add", "--allow-principal", &principal, "--topic", &topic];
        for op in ops {
            args.extend(["--operation", op]);
        }
        acl(&args);
        acl(&[
            "--add",
            "--allow-principal",
            &principal,
            "--group",
            READER_GROUP,
            "--operation",
            "Read",
        ]);
    }
    acl(&[
        "--add",
        "--allow-principal",
        "User:operator",
        "--transactional-id",
        &txn,
        "--operation",
        "Write",
        "--operation",
        "Describe",
    ]);

    let instance = KafkaStore::new(connection("instance", &s.instance_password), &topic).unwrap();
    let before = admin_store.read(app).unwrap();
    let err = instance
        .write(app, None, Some("instance"), &|st| {
            st.add_pause(Pause::listener("x"))
        })
        .unwrap_err()
        .to_string();
    log(&format!("instance write: {err}"));
    assert!(
        err.to_lowercase().contains("authoriz"),
        "not an authorization error: {err}"
    );
    assert_no_secret("the error", &err);
    assert_eq!(admin_store.read(app).unwrap(), before, "nothing changed");

    let operator = KafkaStore::new(connection("operator", &s.operator_password), &topic).unwrap();
    let after = operator
        .write(app, None, Some("operator"), &|st| {
            st.add_pause(Pause::listener("x"))
        })
        .unwrap();
    assert_eq!(after.pauses.len(), 1);
    scan_logged();
}

#[test]
fn the_logs_of_the_secured_tests_hold_no_secret() {
    let s = sec();
    // the broker's own log (it prints its configuration) and what the test logged
    let broker_log = std::fs::read_to_string(s.broker.log_path()).unwrap_or_default();
    assert_no_secret("the broker log", &broker_log);
    assert_no_secret("the test's log", &s.logged.lock().unwrap());
}

/// Run the `switchyard` binary; its exit code and everything it printed
/// (logged for the secret scan).
fn cli(args: &[String]) -> (i32, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(args)
        .output()
        .expect("run switchyard");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    log(&format!("[switchyard {}] {text}", args[..2].join(" ")));
    (out.status.code().unwrap_or(-1), text)
}

/// The admin principal's client settings in a Java properties file in
/// `dir` (the password only there, as Kafka's tools take it), and the
/// connection flags of every command: `--bootstrap`, `--command-config`
/// and `-X ssl.ca.location=..`.
fn connection_flags(dir: &std::path::Path) -> Vec<String> {
    let s = sec().broker.secured().unwrap();
    std::fs::create_dir_all(dir).unwrap();
    let props = dir.join("client.properties");
    std::fs::write(
        &props,
        format!(
            "security.protocol=SASL_SSL\nsasl.mechanism=SCRAM-SHA-512\n\
             sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required \
             username=\"admin\" password=\"{}\";\n",
            s.options.admin_password
        ),
    )
    .unwrap();
    vec![
        "--bootstrap".to_string(),
        s.bootstrap(),
        "--command-config".to_string(),
        props.display().to_string(),
        "-X".to_string(),
        format!("ssl.ca.location={}", s.ca_location().display()),
    ]
}

#[test]
fn the_cli_pauses_resumes_reads_lag_and_resets_offsets_over_sasl_ssl() {
    let dir = std::env::temp_dir().join(unique_name("sy-cli-sec"));
    let flags = connection_flags(&dir);
    let kafka = |command: &str, verb: Option<&str>| -> Vec<String> {
        let mut args = vec![command.to_string()];
        args.extend(verb.map(str::to_string));
        args.extend(flags.iter().cloned());
        args
    };
    let app = unique_name("sec-cli-app");
    let control = unique_name("sec-cli-ctl");
    let status = unique_name("sec-cli-st");
    let plane = |verb: &str| {
        let mut args = kafka("ctl", Some(verb));
        args.extend(
            [
                "--app",
                &app,
                "--control-topic",
                &control,
                "--status-topic",
                &status,
            ]
            .map(str::to_string),
        );
        args.extend(["--listener".to_string(), "orders".to_string()]);
        args
    };
    let (code, text) = cli(&plane("pause"));
    assert_eq!(code, 0, "{text}");
    let store = KafkaStore::new(admin(), &control).unwrap();
    assert_eq!(store.read(&app).unwrap().pauses.len(), 1);
    let (code, text) = cli(&plane("resume"));
    assert_eq!(code, 0, "{text}");
    assert!(store.read(&app).unwrap().pauses.is_empty());

    let topic = unique_name("sec-cli-t");
    create_topic(&admin(), &topic, 1);
    produce(&admin(), &topic, &["a", "b"]);
    let group = unique_name("sec-cli-g");
    let mut args = kafka("offsets", Some("reset"));
    args.extend(
        [
            "--group",
            &group,
            "--topic",
            &topic,
            "--to-latest",
            "--execute",
        ]
        .map(str::to_string),
    );
    let (code, text) = cli(&args);
    assert_eq!(code, 0, "{text}");
    let mut args = kafka("lag", None);
    args.extend(["--group".to_string(), group.clone()]);
    let (code, text) = cli(&args);
    assert!(text.contains(&topic), "{code}: {text}");
    let _ = std::fs::remove_dir_all(dir);
    scan_logged();
}
