//! Metrics and probes of a running instance: `/metrics` parses as
//! Prometheus exposition and carries the listed series with true values;
//! `/readyz` fails while a poll loop is stuck and recovers after.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use switchyard_control::metrics::{serve, Probes};
use switchyard_runtime::deserializer::Utf8;
use switchyard_runtime::hooks::RebalanceHooks;
use switchyard_runtime::record::Record;
use switchyard_runtime::{Listener, PauseTarget};

use super::common::*;

fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (code, body)
}

/// Blocks the poll thread in the assignment callback (a stuck poll loop).
struct StuckOnAssign;
impl RebalanceHooks for StuckOnAssign {
    fn on_assigned(&self, _: &[(String, i32)]) {
        std::thread::sleep(Duration::from_secs(5));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_and_readyz_fails_while_the_poll_loop_is_stuck() {
    let b = bootstrap();
    let topic = new_topic(broker(), "metrics", 2);
    let group = unique_name("metrics-g");
    SeqProducer::new(&b).send(&topic, Some(0), 30, |s| s.to_string());
    SeqProducer::new(&b).send(&topic, Some(1), 20, |s| s.to_string());
    let release = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let seen: Seen = Default::default();
    let (s, r) = (seen.clone(), release.clone());
    let builder = Listener::builder("metrics")
        .config(config(&group))
        .topics([topic.clone()])
        .handler(Utf8, Utf8, move |rec: Record<String, String>| {
            let (s, r) = (s.clone(), r.clone());
            async move {
                // a record two minutes old that the handler holds: time lag
                while rec.value == "old" && !r.load(std::sync::atomic::Ordering::SeqCst) {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                s.lock()
                    .unwrap()
                    .push((rec.partition, rec.offset, String::new(), rec.value));
                Ok(())
            }
        });
    let listener = Arc::new(builder.hooks(StuckOnAssign).start().unwrap());
    let probes = Probes {
        listeners: Arc::new(vec![listener.clone()]),
        stuck_after: Duration::from_secs(2),
    };
    let addr = serve("127.0.0.1:0".parse().unwrap(), probes).await.unwrap();
    assert_eq!(get(addr, "/healthz").0, 200);
    let mut saw_stuck = false;
    eventually(
        "readyz fails while stuck in the assignment",
        Duration::from_secs(20),
        || {
            saw_stuck |= get(addr, "/readyz").0 == 503;
            saw_stuck
        },
    )
    .await;
    eventually("all records", Duration::from_secs(30), || {
        count(&seen) == 50
    })
    .await;
    eventually("readyz recovers", Duration::from_secs(20), || {
        get(addr, "/readyz").0 == 200
    })
    .await;
    listener
        .pause(PauseTarget::Partition(topic.clone(), 1))
        .await
        .unwrap();
    SeqProducer::new(&b).send(&topic, Some(1), 7, |s| s.to_string());

    let (code, text) = get(addr, "/metrics");
    assert_eq!(code, 200);
    let lines = text.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("valid Prometheus exposition");
    let value = |name: &str, want: &[(&str, &str)]| -> Option<f64> {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == name && want.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .map(|s| match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                _ => f64::NAN,
            })
    };
    assert_eq!(
        value(
            "switchyard_records_processed_total",
            &[("listener", "metrics")]
        ),
        Some(50.0)
    );
    assert_eq!(
        value(
            "switchyard_partition_paused",
            &[("partition", "1"), ("state", "paused")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            "switchyard_partition_paused",
            &[("partition", "0"), ("state", "running")]
        ),
        Some(0.0)
    );
    for name in [
        "switchyard_commits_total",
        "switchyard_rebalances_total",
        "switchyard_poll_age_seconds",
        "switchyard_partition_in_flight",
        "switchyard_partition_buffered_bytes",
    ] {
        assert!(
            scrape.samples.iter().any(|s| s.metric == name),
            "{name} missing"
        );
    }
    // the instance's lag gauges carry kafka-lag-exporter's labels (group,
    // topic, partition) with the same meaning, and the listener's
    let lag_samples: Vec<_> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == "kafka_consumergroup_group_lag")
        .collect();
    assert!(!lag_samples.is_empty(), "{text}");
    for s in lag_samples {
        assert_eq!(s.labels.get("group"), Some(group.as_str()), "{s:?}");
        assert_eq!(s.labels.get("topic"), Some(topic.as_str()), "{s:?}");
        assert_eq!(s.labels.get("listener"), Some("metrics"), "{s:?}");
    }
    let hist = scrape
        .samples
        .iter()
        .find(|s| s.metric == "switchyard_handler_duration_seconds")
        .expect("histogram");
    match &hist.value {
        prometheus_parse::Value::Histogram(buckets) => {
            assert_eq!(
                buckets.last().map(|b| b.count),
                Some(50.0),
                "every handler call observed"
            )
        }
        v => panic!("not a histogram: {v:?}"),
    }
    let lag_of_partition_1 = |lag: &'static str| {
        move || {
            let (_, text) = get(addr, "/metrics");
            text.lines().any(|l| {
                l.starts_with("kafka_consumergroup_group_lag")
                    && l.contains("partition=\"1\"")
                    && l.ends_with(lag)
            })
        }
    };
    // lag of the paused partition: 7 records produced while paused
    let seen = lag_of_partition_1(" 7");
    eventually(
        "lag seen from the consumer's watermarks",
        Duration::from_secs(20),
        seen,
    )
    .await;
    // 5 more long after the pause: no fetch of the partition is in flight
    // any more, so only a request for its log end can see them
    SeqProducer::new(&b).send(&topic, Some(1), 5, |s| s.to_string());
    let grown = lag_of_partition_1(" 12");
    eventually(
        "lag of a paused partition grows without fetches",
        Duration::from_secs(20),
        grown,
    )
    .await;
    // caught up: no time lag; a record two minutes old held by the handler: its age
    let line_of = |text: &str, name: &str, partition: &str| -> Option<f64> {
        text.lines()
            .find(|l| {
                l.starts_with(&format!("{name}{{"))
                    && l.contains(&format!("partition=\"{partition}\""))
            })
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
    };
    // (the log end comes from librdkafka's cache, filled by the next fetch response)
    eventually("caught up: no time lag", Duration::from_secs(20), || {
        line_of(
            &get(addr, "/metrics").1,
            "kafka_consumergroup_group_lag_seconds",
            "0",
        ) == Some(0.0)
    })
    .await;
    let old = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        - 120_000;
    SeqProducer::new(&b).send_raw(&topic, Some(0), None, b"old", Some(old));
    eventually(
        "time lag of the held record",
        Duration::from_secs(20),
        || {
            line_of(
                &get(addr, "/metrics").1,
                "kafka_consumergroup_group_lag_seconds",
                "0",
            )
            .is_some_and(|s| s >= 119.0)
        },
    )
    .await;
    release.store(true, std::sync::atomic::Ordering::SeqCst);
    eventually("time lag back to 0", Duration::from_secs(20), || {
        line_of(
            &get(addr, "/metrics").1,
            "kafka_consumergroup_group_lag_seconds",
            "0",
        ) == Some(0.0)
    })
    .await;
    // the server task holds the listener until the test process ends
}
