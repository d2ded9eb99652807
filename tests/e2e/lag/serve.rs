//! `lag serve` in process on a free port: /healthz, and /metrics parsed as
//! Prometheus text, series and label values checked against the commits.

use std::time::{Duration, Instant};

use switchyard_lag::{Intents, SamplerConfig, ServeConfig, Server};

use super::*;

/// GET `path` from the server; (status code, body). A blocking client, run off the async workers.
async fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let request = format!("GET {path} HTTP/1.1\r\nHost: lag\r\nConnection: close\r\n\r\n");
    let text = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(request.as_bytes()).unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        text
    })
    .await
    .unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let code = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (code, body.to_string())
}

fn parse(body: &str) -> prometheus_parse::Scrape {
    prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_string())))
        .expect("Prometheus text")
}

/// The value of the one series of `metric` with exactly these labels (among others); panics if not exactly one.
fn value(scrape: &prometheus_parse::Scrape, metric: &str, labels: &[(&str, &str)]) -> f64 {
    let found: Vec<f64> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == metric && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match s.value {
            prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Untyped(v) => v,
            ref other => panic!("{metric}: unexpected {other:?}"),
        })
        .collect();
    assert_eq!(found.len(), 1, "{metric}{labels:?}: {found:?}");
    found[0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_exports_lag_and_health_as_prometheus_text() {
    let topic = new_topic(broker(), "lag-serve", 2);
    let (ga, gb) = (unique_name("lag-serve-a"), unique_name("lag-serve-b"));
    produce(&topic, 0, 7);
    produce(&topic, 1, 3);
    commit(&ga, &topic, &[(0, 2), (1, 3)]);
    commit(&gb, &topic, &[(0, 7)]);
    let sampler =
        SamplerConfig::new(bootstrap(), [ga.clone(), gb.clone()]).with_window(short_window());
    let config = ServeConfig {
        sampler,
        listen: "127.0.0.1:0".parse().unwrap(),
        interval: EVERY,
    };
    let server = Server::start(config).await.unwrap();
    let addr = server.local_addr();
    let deadline = Instant::now() + Duration::from_secs(20);
    while http_get(addr, "/healthz").await.0 != 200 {
        assert!(Instant::now() < deadline, "healthz never became 200");
        tokio::time::sleep(EVERY).await;
    }
    let (code, body) = http_get(addr, "/metrics").await;
    assert_eq!(code, 200);
    let m = parse(&body);
    let t = topic.as_str();
    let lag = |g: &str, p: &str| {
        value(
            &m,
            "kafka_consumergroup_group_lag",
            &[("group", g), ("topic", t), ("partition", p)],
        )
    };
    assert_eq!(
        (lag(&ga, "0"), lag(&ga, "1"), lag(&gb, "0")),
        (5.0, 0.0, 0.0)
    );
    let offset = |g: &str, p: &str| {
        value(
            &m,
            "kafka_consumergroup_group_offset",
            &[("group", g), ("topic", t), ("partition", p)],
        )
    };
    assert_eq!(
        (offset(&ga, "0"), offset(&ga, "1"), offset(&gb, "0")),
        (2.0, 3.0, 7.0)
    );
    assert!(
        !m.samples
            .iter()
            .any(|s| s.metric == "kafka_consumergroup_group_lag"
                && s.labels.get("group") == Some(gb.as_str())
                && s.labels.get("partition") == Some("1")),
        "group b never committed partition 1"
    );
    assert_eq!(
        value(
            &m,
            "kafka_partition_latest_offset",
            &[("topic", t), ("partition", "0")]
        ),
        7.0
    );
    assert_eq!(
        value(
            &m,
            "kafka_partition_latest_offset",
            &[("topic", t), ("partition", "1")]
        ),
        3.0
    );
    assert_eq!(
        value(
            &m,
            "kafka_partition_earliest_offset",
            &[("topic", t), ("partition", "0")]
        ),
        0.0
    );
    assert!(
        value(
            &m,
            "kafka_consumergroup_group_lag_seconds",
            &[("group", &ga), ("topic", t), ("partition", "0")]
        ) >= 0.0
    );
    assert_eq!(
        value(
            &m,
            "kafka_consumergroup_group_lag_seconds",
            &[("group", &ga), ("topic", t), ("partition", "1")]
        ),
        0.0
    );
    assert_eq!(
        value(&m, "kafka_consumergroup_group_sum_lag", &[("group", &ga)]),
        5.0
    );
    assert_eq!(
        value(
            &m,
            "kafka_consumergroup_group_topic_sum_lag",
            &[("group", &gb), ("topic", t)]
        ),
        0.0
    );
    // One status per partition is 1, the others 0.
    for (g, p) in [(&ga, "0"), (&ga, "1"), (&gb, "0")] {
        let ones: Vec<&str> = m
            .samples
            .iter()
            .filter(|s| {
                s.metric == "switchyard_lag_health"
                    && s.labels.get("group") == Some(g.as_str())
                    && s.labels.get("partition") == Some(p)
            })
            .filter(|s| matches!(s.value, prometheus_parse::Value::Gauge(v) if v == 1.0))
            .map(|s| s.labels.get("status").unwrap())
            .collect();
        assert_eq!(ones.len(), 1, "{g}/{p}: {ones:?}");
    }
    assert_eq!(
        value(
            &m,
            "switchyard_lag_health",
            &[("group", &gb), ("partition", "0"), ("status", "OK")]
        ),
        1.0
    );

    // Group a's partition 0 has lag and nobody consumes it: STOP within the window, PAUSED once known paused.
    let scrape_until = |what: &'static str, labels: Vec<(&'static str, String)>| async move {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let m = parse(&http_get(addr, "/metrics").await.1);
            let l: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
            if value(&m, "switchyard_lag_health", &l) == 1.0 {
                return m;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(EVERY).await;
        }
    };
    let lbl = |status: &str| {
        vec![
            ("group", ga.clone()),
            ("topic", topic.clone()),
            ("partition", "0".to_string()),
            ("status", status.to_string()),
        ]
    };
    let m = scrape_until("STOP", lbl("STOP")).await;
    assert_eq!(
        value(
            &m,
            "switchyard_lag_group_health",
            &[("group", &ga), ("status", "STOP")]
        ),
        1.0
    );
    let mut known = Intents::default();
    known.pause(format!("{ga}:{topic}:0").parse().unwrap());
    server.set_intents(known);
    let m = scrape_until("PAUSED", lbl("PAUSED")).await;
    assert_eq!(
        value(
            &m,
            "switchyard_lag_health",
            &[("group", &ga), ("partition", "0"), ("status", "STOP")]
        ),
        0.0
    );
    assert!(value(&m, "switchyard_lag_samples_total", &[]) >= 3.0);
    assert_eq!(server.latest().unwrap().group(&ga).unwrap().lag, 5);
    server.shutdown().await;
}
