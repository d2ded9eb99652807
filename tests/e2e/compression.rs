//! Records compressed by another client (Apache Kafka's Java producer) with
//! gzip, snappy, lz4 and zstd are consumed by a listener, every value intact.
//! (kafka-python from Debian has only gzip without extra packages, so the
//! Java client is the producer.)

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use switchyard_runtime::deserializer::Utf8;
use switchyard_runtime::record::Record;
use switchyard_runtime::Listener;
use switchyard_testkit::java_command;

use super::common::*;

const COUNT: usize = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_compressed_with_gzip_snappy_lz4_and_zstd_by_the_java_client_are_consumed() {
    let topic = new_topic(broker(), "codecs", 1);
    let group = unique_name("codecs-g");
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/CompressedProducer.java");
    let (b, t) = (bootstrap(), topic.clone());
    let out = tokio::task::spawn_blocking(move || {
        java_command()
            .arg(source)
            .args([&b, &t, &COUNT.to_string()])
            .output()
            .expect("run the Java producer")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && stdout.contains("DONE"),
        "the Java producer failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let seen: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let s2 = seen.clone();
    let listener = Listener::builder("codecs")
        .config(config(&group))
        .topics([topic.clone()])
        .handler(Utf8, Utf8, move |r: Record<String, String>| {
            let seen = s2.clone();
            async move {
                seen.lock()
                    .unwrap()
                    .push((r.key.unwrap_or_default(), r.value));
                Ok(())
            }
        })
        .start()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.lock().unwrap().len() < 4 * COUNT {
        assert!(
            Instant::now() < deadline,
            "consumed {} of {}",
            seen.lock().unwrap().len(),
            4 * COUNT
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    listener.shutdown().await;
    let seen = seen.lock().unwrap().clone();
    let mut expected = Vec::new();
    for codec in ["gzip", "snappy", "lz4", "zstd"] {
        for i in 0..COUNT {
            expected.push((codec.to_string(), format!("{codec}-{i}")));
        }
    }
    assert_eq!(seen, expected);
}
