//! An independent client as a peer: kafka-python (Debian's python3-kafka,
//! for /usr/bin/python3) produces records that a Switchyard listener
//! consumes, and reads back the offsets the listener committed.

use std::process::Command;
use std::time::Duration;

use switchyard_runtime::Listener;

use super::common::*;

fn python(script: &str) -> String {
    let out = Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(script)
        .output()
        .expect("/usr/bin/python3 runs (scripts/install-test-deps.sh installs python3-kafka)");
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_python_produces_and_reads_back_our_commits() {
    let b = bootstrap();
    let topic = new_topic(broker(), "peer", 2);
    let group = unique_name("peer-g");
    let produced = python(&format!(
        r#"
from kafka import KafkaProducer
p = KafkaProducer(bootstrap_servers="{b}", api_version=(2, 5, 0))
for i in range(60):
    p.send("{topic}", key=("k%d" % (i % 7)).encode(), value=str(i).encode(), partition=i % 2)
p.flush()
print(60)
"#
    ));
    assert_eq!(produced, "60");
    let (builder, seen) = collecting(
        Listener::builder("peer")
            .config(config(&group))
            .topics([topic.clone()]),
    );
    let l = builder.start().unwrap();
    eventually("all 60 records", Duration::from_secs(30), || {
        count(&seen) == 60
    })
    .await;
    let mut values: Vec<i64> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|r| r.3.parse().unwrap())
        .collect();
    values.sort();
    assert_eq!(values, (0..60).collect::<Vec<_>>());
    let report = l.shutdown().await;
    assert!(report.closed);
    let committed = python(&format!(
        r#"
from kafka import KafkaConsumer, TopicPartition
c = KafkaConsumer(bootstrap_servers="{b}", group_id="{group}", enable_auto_commit=False, api_version=(2, 5, 0))
print(",".join(str(c.committed(TopicPartition("{topic}", p))) for p in (0, 1)))
"#
    ));
    assert_eq!(
        committed, "30,30",
        "kafka-python reads the offsets Switchyard committed"
    );
}
