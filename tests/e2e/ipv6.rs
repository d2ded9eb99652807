//! A dual-stack cluster reached over IPv6: the test broker also listens on
//! `[::1]` (when the machine has IPv6 loopback); a listener consumes and
//! commits, and `switchyard lag` reads the group, both bootstrapping from
//! `[::1]:port` with no `broker.address.family` set: nothing in Switchyard
//! forces IPv4.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use switchyard_config::ConsumerConfig;
use switchyard_runtime::deserializer::Utf8;
use switchyard_runtime::record::Record;
use switchyard_runtime::Listener;

use super::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_and_lag_work_over_ipv6_with_no_address_family_set() {
    let Some(v6) = broker().bootstrap_v6() else {
        eprintln!(
            "no IPv6 loopback on this machine (or not an Apache Kafka broker): nothing to test"
        );
        return;
    };
    let topic = new_topic(broker(), "v6", 2);
    let group = unique_name("v6-g");
    SeqProducer::new(&bootstrap()).send(&topic, None, 20, |s| format!("k{s}"));
    let handled = Arc::new(AtomicUsize::new(0));
    let h = handled.clone();
    let cfg = ConsumerConfig {
        bootstrap_servers: v6.clone(),
        ..config(&group)
    };
    assert!(
        cfg.librdkafka.keys().all(|k| k != "broker.address.family"),
        "{cfg:?}"
    );
    let listener = Listener::builder("v6")
        .config(cfg)
        .topics([topic.clone()])
        .handler(Utf8, Utf8, move |_r: Record<String, String>| {
            let h = h.clone();
            async move {
                h.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
        })
        .start()
        .unwrap();
    eventually(
        "20 records handled over IPv6",
        Duration::from_secs(30),
        || handled.load(Ordering::SeqCst) == 20,
    )
    .await;
    eventually("committed over IPv6", Duration::from_secs(20), || {
        committed_offsets(&bootstrap(), &group, &topic)
            .values()
            .sum::<i64>()
            == 20
    })
    .await;
    listener.shutdown_within(Duration::from_secs(5)).await;
    let (code, out) = tokio::task::block_in_place(|| {
        switchyard(&[
            "lag".into(),
            "--bootstrap".into(),
            v6.clone(),
            "--group".into(),
            group.clone(),
            "--time-lag".into(),
            "off".into(),
            "--json".into(),
        ])
    });
    assert_eq!(code, 0, "{out}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    let parts = json["groups"][0]["partitions"].as_array().unwrap();
    assert_eq!(parts.len(), 2, "{out}");
    assert!(parts.iter().all(|p| p["lag"] == 0), "{out}");
}
