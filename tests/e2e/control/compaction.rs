//! The control topic under compaction, on Apache Kafka: the topic is created
//! with compaction forced by its settings (`segment.ms=100`,
//! `min.cleanable.dirty.ratio=0.01`, `min.compaction.lag.ms=0`,
//! `delete.retention.ms=0`; the test broker's cleaner looks for work every
//! second), and a store that has read the log since before the writes and a
//! store created after compaction must hold the same state.
//!
//! - concurrent fenced writers doing compare-and-set changes;
//! - a writer that hangs mid-transaction, fenced by the next one;
//! - records written raw: unknown fields of a newer build, a malformed
//!   record, a newer schema, a tombstone; and an agent that fails closed on
//!   an unreadable state.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::ClientConfig;
use switchyard_control::kafka_clients::{
    deliver, producer, transactional_producer, TRANSACTION_TIMEOUT,
};
use switchyard_control::kafka_store::KafkaStore;
use switchyard_control::{ControlError, DesiredState, Pause, Store};
use switchyard_runtime::{Listener, PauseTarget};

use super::super::common::*;

const WAIT: Duration = Duration::from_secs(60);

/// A control topic whose log the broker compacts as soon as it can.
fn compacted_topic(b: &str, prefix: &str) -> String {
    let topic = unique_name(prefix);
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", b)
        .create()
        .unwrap();
    let new = NewTopic::new(&topic, 1, TopicReplication::Fixed(1))
        .set("cleanup.policy", "compact")
        .set("segment.ms", "100")
        .set("min.cleanable.dirty.ratio", "0.01")
        .set("min.compaction.lag.ms", "0")
        .set("delete.retention.ms", "0");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for r in rt
        .block_on(admin.create_topics([&new], &AdminOptions::new()))
        .unwrap()
    {
        r.unwrap();
    }
    topic
}

fn raw(p: &BaseProducer, topic: &str, app: &str, payload: Option<&[u8]>) {
    let mut r = BaseRecord::<str, [u8]>::to(topic).key(app);
    if let Some(v) = payload {
        r = r.payload(v);
    }
    p.send(r).map_err(|(e, _)| e).unwrap();
    deliver(p).unwrap();
}

/// Wait until compaction removed records of `app` from the log (fewer of
/// its committed records are left than `written`); meanwhile records of
/// another key roll segments, so that the ones written before become
/// cleanable.
fn wait_compacted(b: &str, topic: &str, store: &KafkaStore, app: &str, written: usize) {
    let ticks = producer(b).unwrap();
    let start = Instant::now();
    let mut left = written;
    wait_until(
        &format!("compaction of `{topic}` removing records of `{app}`"),
        WAIT,
        || {
            raw(&ticks, topic, "tick", None);
            let history = store.history(b).unwrap();
            left = history.iter().filter(|s| s.app == app).count();
            if left >= written {
                std::thread::sleep(Duration::from_millis(200));
            }
            left < written
        },
    );
    eprintln!(
        "compaction left {left} of {written} records of `{app}` after {:?}",
        start.elapsed()
    );
}

/// The state of `app` in a long-lived store and in a new one agree; that state.
fn agreed(b: &str, topic: &str, long: &KafkaStore, app: &str) -> DesiredState {
    let fresh = KafkaStore::new(b, topic).unwrap();
    let (old, new) = (long.read(app).unwrap(), fresh.read(app).unwrap());
    assert_eq!(old, new, "a long-lived and a fresh store disagree");
    new
}

#[test]
fn concurrent_fenced_writers_under_compaction_leave_old_and_fresh_readers_in_agreement() {
    let b = bootstrap();
    let topic = compacted_topic(&b, "ctl-cmp");
    let app = "orders";
    let long = KafkaStore::new(&b, &topic).unwrap();
    // a long-lived watcher, as an agent: versions never go back
    let rx = long.watch(app).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let highest = Arc::new(AtomicU64::new(0));
    let watcher = {
        let (stop, highest) = (stop.clone(), highest.clone());
        std::thread::spawn(move || {
            let mut last = 0;
            while !stop.load(Ordering::SeqCst) {
                let v = rx.borrow().as_ref().map_or(0, |s| s.version);
                assert!(v >= last, "the watcher saw version {v} after {last}");
                last = v;
                highest.store(v, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    let writers = 4;
    let per_writer = 5;
    let won: Vec<(String, u64)> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..writers)
            .map(|w| {
                let (b, topic) = (&b, &topic);
                s.spawn(move || {
                    let store = KafkaStore::new(b, topic).unwrap();
                    let mut won = Vec::new();
                    let mut conflicts = 0;
                    for n in 0..per_writer {
                        let tag = format!("w{w}-{n}");
                        for _ in 0..30 {
                            // half the writers name the version they read
                            let expected = (w % 2 == 0).then(|| store.read(app).unwrap().version);
                            let r = store.write(app, expected, Some(&tag), &|st| {
                                st.add_pause(Pause::listener(&tag))
                            });
                            match r {
                                Ok(st) => {
                                    won.push((tag.clone(), st.version));
                                    break;
                                }
                                Err(ControlError::Conflict { .. }) => conflicts += 1,
                                Err(e) => panic!("writer {w}: {e}"),
                            }
                        }
                    }
                    eprintln!("writer {w}: {} written, {conflicts} conflicts", won.len());
                    won
                })
            })
            .collect();
        hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    assert!(
        won.len() >= writers,
        "most writes get through: {} of {}",
        won.len(),
        writers * per_writer
    );
    let mut versions: Vec<u64> = won.iter().map(|(_, v)| *v).collect();
    versions.sort_unstable();
    assert_eq!(
        versions,
        (1..=won.len() as u64).collect::<Vec<_>>(),
        "each successful write has its own version, one after another"
    );
    wait_compacted(&b, &topic, &long, app, won.len());
    let state = agreed(&b, &topic, &long, app);
    assert_eq!(
        state.version,
        won.len() as u64,
        "version == successful writes"
    );
    for (tag, v) in &won {
        assert!(
            state.pauses.iter().any(|p| &p.listener == tag),
            "the change of {tag} (version {v}) is in the state"
        );
    }
    assert_eq!(state.pauses.len(), won.len(), "and nothing else");
    wait_until("the watcher saw the last version", WAIT, || {
        highest.load(Ordering::SeqCst) == won.len() as u64
    });
    stop.store(true, Ordering::SeqCst);
    watcher.join().unwrap();
    // the log itself: every committed write names the one before it
    let history = long.history(&b).unwrap();
    let mine: Vec<&DesiredState> = history.iter().filter(|s| s.app == app).collect();
    for w in mine.windows(2) {
        assert!(w[0].version < w[1].version, "{:?}", (w[0], w[1]));
    }
    let last = mine.last().unwrap();
    assert_eq!(last.prev_version + 1, last.version);
}

#[test]
fn a_writer_hung_mid_transaction_is_fenced_by_the_next_writer_of_its_app() {
    let b = bootstrap();
    let topic = compacted_topic(&b, "ctl-zombie");
    let app = "billing";
    let long = KafkaStore::new(&b, &topic).unwrap();
    long.write(app, Some(0), Some("first"), &|s| {
        s.add_pause(Pause::listener("a"))
    })
    .unwrap();
    // a writer that read v1, began its transaction, produced v2 and hangs
    let zombie = hung_writer(&b, &topic, &long, app);
    // readers do not see the open transaction
    assert_eq!(long.read(app).unwrap().version, 1);
    // the next writer fences it at once (not after the transaction timeout)
    let other = KafkaStore::new(&b, &topic).unwrap();
    let v = write_fencing_in_time(&other, app, 1, "next");
    let e = zombie
        .commit_transaction(Duration::from_secs(10))
        .unwrap_err();
    eprintln!("the hung writer's commit: {e}");
    let state = agreed(&b, &topic, &long, app);
    assert_eq!(state, v);
    assert!(state.pauses.iter().all(|p| p.listener != "zombie"));
    assert!(long
        .history(&b)
        .unwrap()
        .iter()
        .all(|s| s.issuer.as_deref() != Some("zombie")));
    // the first store's producer, kept from its write of v1, was fenced by
    // the zombie: its next write runs in a new one and lands once, on v2
    let v3 = write_fencing_in_time(&long, app, 2, "again");
    assert_eq!(agreed(&b, &topic, &other, app), v3);
    let listeners: Vec<_> = v3.pauses.iter().map(|p| p.listener.as_str()).collect();
    assert_eq!(listeners, ["a", "next", "again"], "each write once");
    // and the second store's kept producer, fenced by the first, too
    let v4 = write_fencing_in_time(&other, app, 3, "last");
    assert_eq!(agreed(&b, &topic, &long, app), v4);
    // a writer hangs again: the first store's kept producer is fenced by it
    // and its transaction is open below the end; the store's next write
    // does not wait for that transaction's timeout, it fences it at once
    let zombie = hung_writer(&b, &topic, &long, app);
    let v5 = write_fencing_in_time(&long, app, 4, "after");
    assert!(zombie.commit_transaction(Duration::from_secs(10)).is_err());
    assert_eq!(agreed(&b, &topic, &other, app), v5);
}

/// Write version `base + 1` of `app` through `store` (a pause of listener
/// `tag`): it lands within the transaction timeout, a hung writer's open
/// transaction, if there is one, fenced rather than waited for.
fn write_fencing_in_time(store: &KafkaStore, app: &str, base: u64, tag: &str) -> DesiredState {
    let started = Instant::now();
    let v = store
        .write(app, Some(base), Some(tag), &|s| {
            s.add_pause(Pause::listener(tag))
        })
        .unwrap();
    assert_eq!(v.version, base + 1);
    assert!(
        started.elapsed() < TRANSACTION_TIMEOUT,
        "the hung writer is fenced, not waited for: {:?}",
        started.elapsed()
    );
    v
}

/// A writer of `app` that read the current state, began its transaction,
/// produced the next version and hangs (its transaction stays open).
fn hung_writer(b: &str, topic: &str, store: &KafkaStore, app: &str) -> BaseProducer {
    let zombie = transactional_producer(b, topic, app).unwrap();
    let mut next = store.read(app).unwrap().next(Some("zombie"), 0);
    next.add_pause(Pause::listener("zombie")).unwrap();
    zombie.begin_transaction().unwrap();
    let payload = next.encode();
    zombie
        .send(BaseRecord::to(topic).key(app).payload(&payload))
        .map_err(|(e, _)| e)
        .unwrap();
    zombie.flush(Duration::from_secs(10)).unwrap();
    zombie
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_records_lead_old_and_fresh_readers_to_one_state_and_agents_fail_closed() {
    let b = bootstrap();
    let control = {
        let b = b.clone();
        tokio::task::spawn_blocking(move || compacted_topic(&b, "ctl-raw"))
            .await
            .unwrap()
    };
    let app = "raw-app".to_string();
    let data = new_topic(broker(), "ctl-raw-data", 1);
    let group = unique_name("ctl-raw-g");
    let long = {
        let (b, c) = (b.clone(), control.clone());
        tokio::task::spawn_blocking(move || KafkaStore::new(&b, &c).unwrap())
            .await
            .unwrap()
    };
    // an agent over an in-process listener
    let (builder, seen) = collecting(
        Listener::builder("l")
            .config(config(&group))
            .topics([data.clone()]),
    );
    let listener = Arc::new(builder.start().unwrap());
    let agent = switchyard_control::Agent::start(
        switchyard_control::AgentConfig {
            app: app.clone(),
            instance: "i1".into(),
            slot: "blue".into(),
            heartbeat: Duration::from_millis(200),
        },
        vec![listener.clone()],
        long.clone(),
        None,
    )
    .await
    .unwrap();
    let mut data_producer = SeqProducer::new(&b);
    data_producer.send(&data, Some(0), 5, |s| s.to_string());
    eventually("5 records processed", WAIT, || count(&seen) == 5).await;

    let (b2, c2, a2, l2) = (b.clone(), control.clone(), app.clone(), long.clone());
    let checks = tokio::task::spawn_blocking(move || {
        let (b, control, app, long) = (b2, c2, a2, l2);
        let raw_p = producer(&b).unwrap();
        let v1 = long
            .write(&app, Some(0), Some("t"), &|s| {
                s.add_pause(Pause::topic("m", "t"))
            })
            .unwrap();
        assert_eq!(agreed(&b, &control, &long, &app), v1);

        // a newer build, same schema, with fields this build does not know
        let mut json: serde_json::Value = serde_json::from_slice(&v1.encode()).unwrap();
        json["version"] = 2.into();
        json["prev_version"] = 1.into();
        json["rollout"] = serde_json::json!({"step": 2});
        json["pauses"][0]["drain"] = "fast".into();
        raw(&raw_p, &control, &app, Some(json.to_string().as_bytes()));
        let v2 = agreed(&b, &control, &long, &app);
        assert_eq!(v2.version, 2);
        // this build writes on top and carries them forward
        let v3 = long
            .write(&app, Some(2), Some("t"), &|s| {
                s.add_pause(Pause::topic("m", "u"))
            })
            .unwrap();
        assert_eq!(agreed(&b, &control, &long, &app), v3);
        let json: serde_json::Value = serde_json::from_slice(&v3.encode()).unwrap();
        assert_eq!(json["rollout"]["step"], 2, "{json}");
        assert_eq!(json["pauses"][0]["drain"], "fast", "{json}");

        // a malformed record: unreadable everywhere, writes refused
        raw(&raw_p, &control, &app, Some(b"{\"schema\":1,\"app\":"));
        let s = agreed(&b, &control, &long, &app);
        assert!(s.is_unreadable(), "{s:?}");
        let e = long.write(&app, None, None, &|_| Ok(())).unwrap_err();
        assert!(matches!(e, ControlError::Unreadable { .. }), "{e}");
        s
    })
    .await
    .unwrap();
    // the agent fails closed: the whole listener paused, the reason in its status
    eventually("the agent holds the listener paused", WAIT, || {
        agent.held("l").0.contains(&PauseTarget::Listener)
    })
    .await;
    let status = agent.status().await;
    assert_eq!(status.unreadable, checks.unreadable, "{status:?}");
    assert_eq!(status.applied_version, 0);
    data_producer.send(&data, Some(0), 5, |s| s.to_string());
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(count(&seen), 5, "nothing processed while unreadable");

    let (b2, c2, a2, l2) = (b.clone(), control.clone(), app.clone(), long.clone());
    tokio::task::spawn_blocking(move || {
        let (b, control, app, long) = (b2, c2, a2, l2);
        let raw_p = producer(&b).unwrap();
        // a document of a newer schema: unreadable too
        let mut newer = DesiredState::new(&app).next(Some("newer"), 0);
        newer.schema = switchyard_control::model::SCHEMA_VERSION + 1;
        raw(&raw_p, &control, &app, Some(&newer.encode()));
        let s = agreed(&b, &control, &long, &app);
        assert!(
            s.unreadable
                .as_deref()
                .is_some_and(|r| r.contains("schema")),
            "{s:?}"
        );
        // a tombstone: no state, for every reader, also after compaction
        raw(&raw_p, &control, &app, None);
        assert_eq!(agreed(&b, &control, &long, &app), DesiredState::new(&app));
        wait_compacted(&b, &control, &long, &app, 3);
        assert_eq!(agreed(&b, &control, &long, &app), DesiredState::new(&app));
        let v1 = long
            .write(&app, Some(0), Some("again"), &|_| Ok(()))
            .unwrap();
        assert_eq!(v1.version, 1);
        assert_eq!(agreed(&b, &control, &long, &app), v1);
    })
    .await
    .unwrap();
    // readable again, nothing paused: the agent resumes
    agent.wait_applied(1, WAIT).await.unwrap();
    eventually("records flow again", WAIT, || count(&seen) == 10).await;
    assert_eq!(agent.status().await.unreadable, None);
    let listeners = agent.stop().await;
    drop(listeners);
    if let Ok(l) = Arc::try_unwrap(listener) {
        l.shutdown().await;
    }
}
