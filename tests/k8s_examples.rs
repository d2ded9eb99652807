//! The Kubernetes example (`examples/sidecar`): every manifest parses and
//! passes the Kubernetes API's schemas (kubernetes-validate, strict, at the
//! oldest and newest versions the example supports), and the fields that
//! matter hold together:
//!
//! - the probes of switchyard hit its admin port (from the ConfigMap's TOML)
//!   at `/healthz` and `/readyz`;
//! - the grace period is above switchyard's preStop plus the shutdown
//!   timeout of its TOML, with room for the application to stop after it;
//! - the application is a native sidecar (started before switchyard and
//!   stopped after it) listening where the delivery URL points;
//! - the instance id is the pod name (downward API);
//! - each disruption budget selects exactly its slot's pods;
//! - blue and green differ only in the slot's name;
//! - the Kafka credentials are referenced (`${env:..}`, `${file:..}` from
//!   the Secret), never written into a manifest;
//! - the Python application answers as switchyard's HTTP delivery expects;
//! - the commands the manifests run are commands of the binary.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_yaml::Value;
use switchyard_config::RunConfig;
use switchyard_testkit::http_request;

/// The Kubernetes versions the manifests are validated against: the oldest
/// with native sidecars and the preStop `sleep` action on by default, and
/// the newest kubernetes-validate knows.
const K8S_VERSIONS: [&str; 2] = ["1.30.0", "1.37.0"];

fn sidecar() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/sidecar")
}

/// Every manifest file of the example, sorted.
fn manifest_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(sidecar().join("k8s"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 5, "{files:?}");
    files
}

/// Every document of every manifest, with its file name.
fn manifests() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for f in manifest_files() {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&f).unwrap();
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let v = Value::deserialize(doc).unwrap_or_else(|e| panic!("{name}: {e}"));
            if !v.is_null() {
                out.push((name.clone(), v));
            }
        }
    }
    out
}

fn of_kind(kind: &str) -> Vec<Value> {
    manifests()
        .into_iter()
        .map(|(_, v)| v)
        .filter(|v| v["kind"] == kind)
        .collect()
}

fn one(kind: &str, name: &str) -> Value {
    of_kind(kind)
        .into_iter()
        .find(|v| v["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v:?}"))
}

fn seq(v: &Value) -> &Vec<Value> {
    static EMPTY: Vec<Value> = Vec::new();
    v.as_sequence().unwrap_or(&EMPTY)
}

fn named<'a>(list: &'a Value, name: &str) -> &'a Value {
    seq(list)
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no `{name}` in {list:?}"))
}

/// The ConfigMap file `path` mounted in `container` of `pod` (a pod spec).
fn mounted_config(pod: &Value, container: &Value, path: &str) -> String {
    let path = Path::new(path);
    let mount = seq(&container["volumeMounts"])
        .iter()
        .find(|m| path.starts_with(s(&m["mountPath"])))
        .unwrap_or_else(|| panic!("{} is not mounted", path.display()));
    let volume = named(&pod["volumes"], s(&mount["name"]));
    let map = one("ConfigMap", s(&volume["configMap"]["name"]));
    let key = path.strip_prefix(s(&mount["mountPath"])).unwrap();
    s(&map["data"][key.to_str().unwrap()]).to_string()
}

/// `text` (a run configuration) with its secret references replaced, so
/// that it can be parsed here: `${env:X}` by a value, `${file:P}` by a file.
fn parse_run_config(text: &str) -> RunConfig {
    let dir = std::env::temp_dir().join(format!("sy-k8s-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut resolved = text.to_string();
    for (start, _) in text.match_indices("${") {
        let end = start + text[start..].find('}').unwrap();
        let reference = &text[start..=end];
        let inner = &text[start + 2..end];
        let value = if let Some(path) = inner.strip_prefix("file:") {
            let f = dir.join(Path::new(path).file_name().unwrap());
            std::fs::write(&f, "secret").unwrap();
            f.display().to_string()
        } else {
            assert!(inner.starts_with("env:"), "{reference}");
            "user".to_string()
        };
        let value = if inner.starts_with("file:") {
            format!("${{file:{value}}}")
        } else {
            value
        };
        resolved = resolved.replace(reference, &value);
    }
    RunConfig::from_toml_str(&resolved).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// A container port by name or number.
fn port(container: &Value, port: &Value) -> u64 {
    match port.as_u64() {
        Some(n) => n,
        None => named(&container["ports"], s(port))["containerPort"]
            .as_u64()
            .unwrap(),
    }
}

fn duration_of_prestop(container: &Value) -> u64 {
    let pre = &container["lifecycle"]["preStop"];
    if let Some(n) = pre["sleep"]["seconds"].as_u64() {
        return n;
    }
    let cmd: Vec<&str> = seq(&pre["exec"]["command"]).iter().map(s).collect();
    match cmd.as_slice() {
        ["sleep", n] => n.parse().unwrap(),
        [] => 0,
        other => panic!("a preStop whose length is not known: {other:?}"),
    }
}

#[test]
fn every_manifest_passes_the_kubernetes_schemas() {
    for (file, v) in manifests() {
        for field in ["apiVersion", "kind"] {
            assert!(v[field].is_string(), "{file}: no {field}");
        }
        assert!(v["metadata"]["name"].is_string(), "{file}: no name");
    }
    let validator = std::env::var_os("SWITCHYARD_K8S_VALIDATE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(&std::env::var_os("HOME").expect("HOME"))
                .join(".cache/switchyard/k8s-validate/bin/kubernetes-validate")
        });
    assert!(
        validator.exists(),
        "{} is missing: run scripts/install-test-deps.sh (it installs kubernetes-validate from PyPI)",
        validator.display()
    );
    for version in K8S_VERSIONS {
        let out = Command::new(&validator)
            .args(["--strict", "--no-warn", "-k", version])
            .args(manifest_files())
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success(),
            "kubernetes-validate {version}:\n{text}"
        );
        assert_eq!(
            text.matches(" passed for resource ").count(),
            manifests().len(),
            "every resource validated at {version}:\n{text}"
        );
    }
}

#[test]
fn the_slots_differ_only_in_their_name() {
    let k8s = sidecar().join("k8s");
    let blue = std::fs::read_to_string(k8s.join("blue.yaml")).unwrap();
    let green = std::fs::read_to_string(k8s.join("green.yaml")).unwrap();
    assert_eq!(green, blue.replace("blue", "green"));
    let map = one("ConfigMap", "orders-switchyard");
    let (b, g) = (s(&map["data"]["blue.toml"]), s(&map["data"]["green.toml"]));
    assert_eq!(g, b.replace("blue", "green"));
    for slot in ["blue", "green"] {
        let run = parse_run_config(s(&map["data"][format!("{slot}.toml").as_str()]));
        assert_eq!(run.instance.slot.as_deref(), Some(slot));
        assert_eq!(
            run.consumer.group_id.as_deref(),
            Some(format!("orders-{slot}").as_str()),
            "separate groups: the deploy driver's <group>-<slot>"
        );
        let d = one("Deployment", &format!("orders-{slot}"));
        assert_eq!(d["spec"]["template"]["metadata"]["labels"]["slot"], slot);
    }
}

#[test]
fn probes_and_the_grace_period_fit_the_admin_port_and_the_shutdown_deadline() {
    let deployments = of_kind("Deployment");
    assert_eq!(deployments.len(), 2);
    for d in &deployments {
        let name = s(&d["metadata"]["name"]);
        let pod = &d["spec"]["template"]["spec"];
        let sy = named(&pod["containers"], "switchyard");
        let args: Vec<&str> = seq(&sy["args"]).iter().map(s).collect();
        assert_eq!(args[0], "run", "{name}");
        let config = args[args.iter().position(|a| *a == "--config").unwrap() + 1];
        let text = mounted_config(pod, sy, config);
        let run = parse_run_config(&text);

        // probes on the admin port
        let admin = run.instance.admin.expect("an admin address").port() as u64;
        for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
            let get = &sy[probe]["httpGet"];
            assert_eq!(get["path"], path, "{name} {probe}");
            assert_eq!(
                port(sy, &get["port"]),
                admin,
                "{name} {probe}: the admin port"
            );
        }

        // the grace period covers the preStop, the shutdown and the
        // application's stop after it
        let grace = pod["terminationGracePeriodSeconds"].as_u64().unwrap();
        let pre_stop = duration_of_prestop(sy);
        assert!(pre_stop > 0, "{name}: switchyard has a preStop");
        let shutdown = run.instance.shutdown_timeout.as_secs();
        assert!(
            grace >= pre_stop + shutdown + 5,
            "{name}: grace {grace} s < preStop {pre_stop} s + shutdown {shutdown} s + 5 s"
        );

        // the instance id is the pod name
        assert!(run.instance.instance_id.is_none(), "{name}: no fixed id");
        let env = named(&sy["env"], &run.instance.instance_id_env);
        assert_eq!(
            env["valueFrom"]["fieldRef"]["fieldPath"], "metadata.name",
            "{name}"
        );

        // the application: a native sidecar (before switchyard at start,
        // after it at stop), where every delivery URL points
        let app = named(&pod["initContainers"], "app");
        assert_eq!(app["restartPolicy"], "Always", "{name}: a native sidecar");
        assert_eq!(app["startupProbe"]["httpGet"]["path"], "/healthz");
        assert!(seq(&pod["containers"]).iter().all(|c| c["name"] != "app"));
        for l in &run.listeners {
            let url = l.delivery.as_ref().unwrap().url.clone().unwrap();
            let rest = url.strip_prefix("http://127.0.0.1:").expect("in the pod");
            let p: u64 = rest[..rest.find('/').unwrap()].parse().unwrap();
            assert!(
                seq(&app["ports"]).iter().any(|x| x["containerPort"] == p),
                "{name}: the application listens on {p}"
            );
        }
    }
}

#[test]
fn each_disruption_budget_selects_exactly_its_slot() {
    let pdbs = of_kind("PodDisruptionBudget");
    assert_eq!(pdbs.len(), 2);
    let deployments = of_kind("Deployment");
    let selects = |selector: &Value, labels: &Value| {
        selector
            .as_mapping()
            .unwrap()
            .iter()
            .all(|(k, v)| &labels[k.as_str().unwrap()] == v)
    };
    for pdb in &pdbs {
        let name = s(&pdb["metadata"]["name"]);
        let selector = &pdb["spec"]["selector"]["matchLabels"];
        assert!(
            pdb["spec"]["maxUnavailable"].is_u64() || pdb["spec"]["minAvailable"].is_u64(),
            "{name}"
        );
        let matched: Vec<&str> = deployments
            .iter()
            .filter(|d| selects(selector, &d["spec"]["template"]["metadata"]["labels"]))
            .map(|d| s(&d["metadata"]["name"]))
            .collect();
        assert_eq!(matched, [name], "{name} selects its slot's pods only");
        let d = one("Deployment", name);
        assert_eq!(selector, &d["spec"]["selector"]["matchLabels"], "{name}");
    }
    for d in &deployments {
        let selector = &d["spec"]["selector"]["matchLabels"];
        assert!(selects(
            selector,
            &d["spec"]["template"]["metadata"]["labels"]
        ));
    }
    // the admin Service reaches both slots on the admin port
    let svc = one("Service", "orders-admin");
    for d in &deployments {
        assert!(selects(
            &svc["spec"]["selector"],
            &d["spec"]["template"]["metadata"]["labels"]
        ));
        let sy = named(&d["spec"]["template"]["spec"]["containers"], "switchyard");
        let target = &seq(&svc["spec"]["ports"])[0]["targetPort"];
        assert_eq!(port(sy, target), 8080);
    }
}

#[test]
fn kafka_credentials_are_referenced_never_inlined() {
    let secrets = of_kind("Secret");
    assert_eq!(secrets.len(), 1, "one Secret");
    let secret = &secrets[0];
    let secret_name = s(&secret["metadata"]["name"]);
    let password = s(&secret["stringData"]["password"]);
    for f in manifest_files() {
        let text = std::fs::read_to_string(&f).unwrap();
        if f.file_name().unwrap() != "secret.yaml" {
            assert!(!text.contains(password), "{}: the password", f.display());
        }
    }
    // every pod that talks to Kafka takes the credentials from the Secret
    let mut pods: Vec<(String, Value)> = of_kind("Deployment")
        .iter()
        .map(|d| {
            (
                s(&d["metadata"]["name"]).to_string(),
                d["spec"]["template"]["spec"].clone(),
            )
        })
        .collect();
    for j in of_kind("Job") {
        pods.push((
            s(&j["metadata"]["name"]).to_string(),
            j["spec"]["template"]["spec"].clone(),
        ));
    }
    assert_eq!(pods.len(), 3);
    for (name, pod) in &pods {
        for c in seq(&pod["containers"])
            .iter()
            .chain(seq(&pod["initContainers"]))
        {
            let mut texts = Vec::new();
            for e in seq(&c["env"]) {
                let var = s(&e["name"]).to_ascii_uppercase();
                if ["PASSWORD", "SECRET", "TOKEN", "USERNAME"]
                    .iter()
                    .any(|w| var.contains(w))
                {
                    assert_eq!(
                        e["valueFrom"]["secretKeyRef"]["name"], secret_name,
                        "{name}: {var} comes from the Secret"
                    );
                }
            }
            let args: Vec<&str> = seq(&c["args"]).iter().map(s).collect();
            texts.push(args.join(" "));
            if let Some(config) = args
                .iter()
                .position(|a| *a == "--config")
                .map(|i| args[i + 1])
            {
                texts.push(mounted_config(pod, c, config));
            }
            let text = texts.join("\n");
            if !text.contains("sasl.") {
                continue;
            }
            // the password is a reference to the mounted Secret
            let reference = text
                .split("sasl.password")
                .nth(1)
                .and_then(|r| r.split("${").nth(1))
                .and_then(|r| r.split('}').next())
                .unwrap_or_else(|| panic!("{name}: sasl.password is not a reference"));
            if let Some(path) = reference.strip_prefix("file:") {
                let mount = seq(&c["volumeMounts"])
                    .iter()
                    .find(|m| Path::new(path).starts_with(s(&m["mountPath"])))
                    .unwrap_or_else(|| panic!("{name}: {path} not mounted"));
                let volume = named(&pod["volumes"], s(&mount["name"]));
                assert_eq!(volume["secret"]["secretName"], secret_name, "{name}");
                let key = Path::new(path)
                    .strip_prefix(s(&mount["mountPath"]))
                    .unwrap()
                    .to_str()
                    .unwrap();
                let items = seq(&volume["secret"]["items"]);
                assert!(
                    items.is_empty() || items.iter().any(|i| i["path"] == key),
                    "{name}: {key} is in the volume"
                );
            } else {
                let var = reference.strip_prefix("env:").expect("env: or file:");
                let e = named(&c["env"], var);
                assert_eq!(e["valueFrom"]["secretKeyRef"]["name"], secret_name);
            }
        }
    }
}

/// A free port on the loopback.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `method path` with a JSON `body` to the application on `port`: the status.
fn request(port: u16, method: &str, path: &str, body: &str) -> u16 {
    http_request(&format!("127.0.0.1:{port}"), method, path, None, body)
        .unwrap()
        .0
}

#[test]
fn the_application_takes_records_and_batches_and_stops_on_sigterm() {
    let script = sidecar().join("app/records_app.py");
    let source = std::fs::read_to_string(&script).unwrap();
    assert_eq!(
        s(&one("ConfigMap", "orders-app")["data"]["records_app.py"]),
        source,
        "the ConfigMap holds app/records_app.py as it is"
    );
    let port = free_port();
    let mut child = Command::new("python3")
        .arg(&script)
        .args(["--port", &port.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3");
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(start.elapsed() < Duration::from_secs(10), "not listening");
        std::thread::sleep(Duration::from_millis(50));
    }
    let envelope = r#"{"topic":"orders","partition":3,"offset":42,"key":"k1","key_encoding":"text","timestamp":1764590000000,"headers":{"trace":"abc"},"value":{"id":7},"value_encoding":"json"}"#;
    assert_eq!(request(port, "GET", "/healthz", ""), 200);
    assert_eq!(request(port, "POST", "/records", envelope), 204);
    let batch = format!("[{envelope},{}]", envelope.replace("42", "43"));
    assert_eq!(request(port, "POST", "/records", &batch), 204);
    assert_eq!(request(port, "POST", "/records", "not json"), 400);
    assert_eq!(request(port, "POST", "/records", r#"{"topic":"t"}"#), 400);
    assert_eq!(request(port, "POST", "/elsewhere", envelope), 404);
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no exit on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let offsets: Vec<i64> = out
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["offset"]
                .as_i64()
                .unwrap()
        })
        .collect();
    assert_eq!(
        offsets,
        [42, 42, 43],
        "each record processed once per request: {out}"
    );
    // the preStop form returns at once when no such process runs
    let start = Instant::now();
    let st = Command::new("python3")
        .arg(&script)
        .args(["--wait-for-exit", "no-such-process", "--at-most", "20"])
        .status()
        .unwrap();
    assert!(st.success() && start.elapsed() < Duration::from_secs(10));
}

#[test]
fn the_commands_the_manifests_run_are_commands_of_the_binary() {
    let help = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .args(args)
            .arg("--help")
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?} --help");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let mut commands: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (file, v) in manifests() {
        let pod = match s(&v["kind"]) {
            "Deployment" | "Job" => v["spec"]["template"]["spec"].clone(),
            _ => continue,
        };
        for c in seq(&pod["containers"]) {
            if !s(&c["image"]).starts_with("switchyard:") {
                continue;
            }
            let mut words: Vec<String> = seq(&c["args"])
                .iter()
                .flat_map(|a| {
                    s(a).split_whitespace()
                        .map(str::to_string)
                        .collect::<Vec<_>>()
                })
                .collect();
            if words.first().is_some_and(|w| w == "switchyard") {
                words.remove(0);
            }
            commands.insert(format!("{file}: {}", c["name"].as_str().unwrap()), words);
        }
    }
    assert_eq!(commands.len(), 3, "{commands:?}");
    let top = help(&[]);
    for (what, words) in &commands {
        let verbs: Vec<&str> = words
            .iter()
            .take_while(|w| !w.starts_with('-'))
            .map(String::as_str)
            .collect();
        if verbs == ["run"] && !top.contains("\n  run ") {
            // `switchyard run` is not part of this build yet: its flags are
            // checked once it is
            eprintln!("{what}: `switchyard run` not in this build; flags not checked");
            continue;
        }
        let text = help(&verbs);
        for flag in words.iter().filter(|w| w.starts_with("--")) {
            assert!(
                text.contains(flag.as_str()) || top.contains(flag.as_str()),
                "{what}: `switchyard {}` has no {flag}",
                verbs.join(" ")
            );
        }
    }
}
