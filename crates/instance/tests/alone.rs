//! An instance without a control plane, no broker needed: its admin
//! address binds every interface and serves the probes, and its shutdown
//! hands back a report per listener within the deadline (a consumer that
//! never reached a broker still stops).

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use switchyard_config::ConsumerConfig;
use switchyard_instance::Instance;
use switchyard_runtime::{deserializer::Utf8, record::Record, Listener};
use switchyard_testkit::http_get;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_without_a_control_plane_serves_its_probes_on_every_interface_and_stops_in_time(
) {
    // a port nothing listens on: the consumer never connects
    let unreachable = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let bootstrap = unreachable.local_addr().unwrap().to_string();
    drop(unreachable);
    let listener = Listener::builder("alone")
        .config(ConsumerConfig::new(&bootstrap).with_group("alone-g"))
        .topics(["t"])
        .handler(Utf8, Utf8, |_r: Record<String, String>| async { Ok(()) });
    let instance = Instance::builder("alone-1")
        .listener(listener)
        .http("0.0.0.0:0".parse().unwrap())
        .shutdown_timeout(Duration::from_secs(3))
        .handle_signals(false)
        .start()
        .await
        .unwrap();
    let bound = instance.http_addr().expect("the admin API runs");
    assert!(bound.ip().is_unspecified(), "{bound}");
    let port = bound.port();
    let loopback = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let (code, body) = tokio::task::spawn_blocking(move || http_get(loopback, "/healthz"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((code, body.as_str()), (200, "ok"));
    let (code, body) = tokio::task::spawn_blocking(move || http_get(loopback, "/metrics"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(code, 200);
    assert!(
        body.contains("switchyard_records_processed_total{listener=\"alone\"} 0"),
        "{body}"
    );
    assert!(instance.agent().is_none());

    let t0 = Instant::now();
    let summary = instance.shutdown().await;
    assert!(t0.elapsed() < Duration::from_secs(4), "{summary:?}");
    assert!(summary.within_deadline, "{summary:?}");
    assert_eq!(summary.listeners.keys().collect::<Vec<_>>(), ["alone"]);
    assert_eq!(summary.status_removed, None, "no status topic");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the admin API stopped with the instance"
    );
}
