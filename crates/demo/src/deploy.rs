//! The blue/green part of the demo: a switch and a rollback while records
//! flow, on the same broker as the first part, then a check that no offset
//! was processed twice (I1 of docs/design.md) or skipped (I2).
//!
//! 1. `deploy init`: slot `blue` owns every partition of `demo.payments`
//!    (names as in the first part: suffixed per run on a cluster);
//! 2. two instances in this process, each a listener and a control-plane
//!    agent publishing its status every 150 ms: `blue-1` in group
//!    `demo-payments-blue` and `green-1` in group `demo-payments-green`
//!    (green starts with every partition paused: blue owns them). Their
//!    handler appends (slot, partition, offset, sequence number) to a
//!    shared processed log; a background producer sends sequence-numbered
//!    records at a steady rate;
//! 3. `deploy switch --to green`, then, once green has processed records,
//!    `deploy rollback`, both through [`Driver::run`] (progress indented);
//! 4. the producer stops; once everything produced has been processed (or a
//!    deadline passed), the verification table: produced, processed, per
//!    slot, duplicates, lost, and each handoff's gap. Duplicates, lost
//!    records or a handoff that did not finish fail the demo.
//!
//! The embedded broker (librdkafka's mock cluster) cannot list group
//! members, so there phase 2 of each handoff counts the slot's live
//! instances instead (the driver says so in a progress line;
//! docs/deploy.md); a cluster answers with the group's members.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use switchyard_config::{ConsumerConfig, OffsetReset};
use switchyard_control::kafka_store::KafkaStore;
use switchyard_control::model::now_ms;
use switchyard_control::{DesiredState, SharedStore};
use switchyard_deploy::kafka::{self, Tp};
use switchyard_deploy::plan::{self, Move};
use switchyard_deploy::{Driver, Outcome};
use switchyard_instance::Instance;
use switchyard_runtime::deserializer::{Json, Utf8};
use switchyard_runtime::record::Record;
use switchyard_runtime::Listener;

use crate::producer::SteadyProducer;
use crate::slot::{start_in_slot, SlotInstance};
use crate::Cluster;

const LISTENER: &str = "payments";
const SLOTS: [&str; 2] = ["blue", "green"];
const HEARTBEAT: Duration = Duration::from_millis(150);
const PHASE_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest wait for the instances, for records, for the end of the flow.
const WAIT: Duration = Duration::from_secs(10);

/// One processed record.
#[derive(Debug, Clone)]
struct Processed {
    slot: &'static str,
    partition: i32,
    offset: i64,
    seq: u64,
}

/// The processed log of both slots, and its distinct offsets.
#[derive(Default)]
struct Log {
    entries: Vec<Processed>,
    offsets: HashSet<(i32, i64)>,
}

type SharedLog = Arc<Mutex<Log>>;

/// The names of this part on a cluster.
struct Names {
    topic: String,
    control: String,
    status: String,
    app: String,
    group: String,
}

/// Run the blue/green part on `cluster` (its topics are created here).
pub async fn run(cluster: &Cluster, partitions: i32, rate: u32) -> anyhow::Result<()> {
    let bootstrap = cluster.bootstrap.clone();
    let names = Arc::new(Names {
        topic: cluster.name("demo.payments"),
        control: cluster.name("demo.deploy.control"),
        status: cluster.name("demo.deploy.status"),
        app: cluster.name("demo-deploy"),
        group: cluster.name("demo-payments"),
    });
    let Names { topic, group, .. } = &*names;
    cluster.create_topic(topic, partitions).await?;
    cluster.create_plane_topic(&names.control).await?;
    cluster.create_plane_topic(&names.status).await?;
    println!();
    println!(
        "blue/green deployment of listener `{LISTENER}` on {topic} ({partitions} partitions), \
         groups {group}-blue and {group}-green, {rate} records/s"
    );
    let (store, driver) = tokio::task::spawn_blocking({
        let (b, n) = (bootstrap.clone(), names.clone());
        move || -> anyhow::Result<(SharedStore, Driver)> {
            let store: SharedStore = KafkaStore::new(&b, &n.control)?;
            let d = Driver::start(
                &b,
                store.clone(),
                &n.status,
                &n.app,
                &n.group,
                "demo".into(),
                PHASE_TIMEOUT,
            )?;
            // `deploy init`: blue owns every partition
            let parts: Vec<Tp> = (0..partitions).map(|p| (n.topic.clone(), p)).collect();
            let v = d.write(|s| plan::init(s, LISTENER, SLOTS[0], &parts))?;
            println!(
                "deploy init: wrote v{v}, {} partitions owned by {}",
                parts.len(),
                SLOTS[0]
            );
            Ok((store, d))
        }
    })
    .await??;
    let driver = Arc::new(driver);
    let log = SharedLog::default();
    let mut instances = Vec::new();
    for slot in SLOTS {
        instances.push(start_instance(&bootstrap, &names, slot, &store, &log).await?);
    }
    let producer = SteadyProducer::start(&bootstrap, topic, partitions, rate)?;
    wait_for("blue running and green paused on every partition", || {
        let all = driver.tail.latest();
        states(&all, &names.app, SLOTS[0]) == vec!["running"; partitions as usize]
            && states(&all, &names.app, SLOTS[1]) == vec!["paused"; partitions as usize]
            && count(&log, SLOTS[0], 0) >= rate as usize / 10
    })
    .await?;
    println!(
        "instances ready: blue-1 runs {partitions} partitions, green-1 holds them paused; \
         {} records processed by blue so far",
        count(&log, SLOTS[0], 0)
    );

    let mut outcomes = Vec::new();
    let flow = (rate as usize / 5).max(1);
    let switch = handoff(&driver, "deploy switch --to green", |s| {
        plan::switch(s, LISTENER, SLOTS[1])
    })
    .await;
    let switched = matches!(&switch, Ok(o) if o.ok);
    outcomes.push(("blue -> green", switch));
    if switched {
        let from = count(&log, SLOTS[1], 0);
        wait_for("records processed by green", || {
            count(&log, SLOTS[1], 0) >= from + flow
        })
        .await?;
        let before = count(&log, SLOTS[0], 0);
        let back = handoff(&driver, "deploy rollback", |s| plan::rollback(s, LISTENER)).await;
        outcomes.push(("green -> blue", back));
        let since = log.lock().unwrap().entries.len();
        wait_for("records processed by blue after the rollback", || {
            count(&log, SLOTS[0], since) >= flow
        })
        .await?;
        println!(
            "green processed {} records, blue {} after the rollback",
            count(&log, SLOTS[1], 0),
            count(&log, SLOTS[0], 0) - before
        );
    }

    let failed = producer.failed();
    let delivered = tokio::task::spawn_blocking(move || producer.stop()).await?;
    let tps: Vec<Tp> = (0..partitions).map(|p| (topic.clone(), p)).collect();
    let ends = tokio::task::spawn_blocking({
        let b = bootstrap.clone();
        move || kafka::end_offsets(&b, &tps)
    })
    .await??;
    let ends: BTreeMap<i32, i64> = ends.into_iter().map(|((_, p), e)| (p, e)).collect();
    let produced: i64 = ends.values().sum();
    println!(
        "producer stopped: {delivered} records delivered ({failed} failed); \
         waiting until all {produced} are processed"
    );
    let drained = wait_for("every produced record processed", || {
        log.lock().unwrap().offsets.len() as i64 >= produced
    })
    .await;
    for instance in instances {
        instance.shutdown().await;
    }
    driver.tail.stop();
    let entries = std::mem::take(&mut log.lock().unwrap().entries);
    let v = verify(&entries, &ends, delivered);
    print_table(&v, &outcomes);
    check(&v, &outcomes)?;
    drained
}

/// Start the instance `<slot>-1`: a listener in group `<group>-<slot>` that
/// appends to `log`, and its agent (what another slot owns paused first).
async fn start_instance(
    bootstrap: &str,
    names: &Arc<Names>,
    slot: &'static str,
    store: &SharedStore,
    log: &SharedLog,
) -> anyhow::Result<Instance> {
    let config = ConsumerConfig::new(bootstrap)
        .with_group(format!("{}-{slot}", names.group))
        .with_offset_reset(OffsetReset::Earliest);
    let l = log.clone();
    let listener = Listener::builder(LISTENER)
        .config(config)
        .topics([names.topic.clone()])
        .handler(Utf8, Json::<u64>::new(), move |r: Record<String, u64>| {
            l.lock().unwrap().push(Processed {
                slot,
                partition: r.partition,
                offset: r.offset,
                seq: r.value,
            });
            async { Ok(()) }
        });
    let who = SlotInstance {
        app: &names.app,
        slot,
        instance: format!("{slot}-1"),
        status_topic: &names.status,
        heartbeat: HEARTBEAT,
    };
    start_in_slot(bootstrap, who, listener, store.clone())
        .await
        .with_context(|| format!("start the {slot} instance"))
}

impl Log {
    fn push(&mut self, p: Processed) {
        self.offsets.insert((p.partition, p.offset));
        self.entries.push(p);
    }
}

/// Records processed by `slot` from entry `since` of the log on.
fn count(log: &SharedLog, slot: &str, since: usize) -> usize {
    let log = log.lock().unwrap();
    log.entries
        .iter()
        .skip(since)
        .filter(|p| p.slot == slot)
        .count()
}

/// The partition states the live instances of `app` in `slot` report.
fn states(
    all: &BTreeMap<String, switchyard_control::status::InstanceStatus>,
    app: &str,
    slot: &str,
) -> Vec<String> {
    let now = now_ms();
    all.values()
        .filter(|s| s.app == app && s.slot == slot && !s.is_gone(now))
        .flat_map(|s| s.partitions().map(|p| p.state.clone()))
        .collect()
}

/// Wait until `cond` holds, at most [`WAIT`].
async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) -> anyhow::Result<()> {
    let deadline = Instant::now() + WAIT;
    while !cond() {
        anyhow::ensure!(
            Instant::now() < deadline,
            "timed out after {WAIT:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Run the handoff `pick` chooses, printing the driver's lines indented.
async fn handoff(
    d: &Arc<Driver>,
    what: &'static str,
    pick: impl FnOnce(&DesiredState) -> Result<Move, String> + Send + 'static,
) -> anyhow::Result<Outcome> {
    println!("{what}");
    let d = d.clone();
    tokio::task::spawn_blocking(move || {
        let m = pick(&d.read()?).map_err(|e| anyhow::anyhow!("{what}: refused: {e}"))?;
        d.run(&m, &mut |line| println!("    {line}"))
    })
    .await?
}

/// What the processed log shows.
#[derive(Debug, PartialEq, Eq)]
struct Verification {
    /// Records in the topic (sum of the end offsets).
    produced: i64,
    /// Records delivered by the producer (distinct sequence numbers).
    delivered: u64,
    /// Handler calls, duplicates included.
    processed: usize,
    per_slot: BTreeMap<&'static str, usize>,
    /// Offsets processed more than once.
    duplicates: usize,
    /// Of those, offsets processed by both slots.
    across_slots: usize,
    /// Offsets below the end never processed.
    lost: i64,
    /// Distinct sequence numbers processed.
    seqs: usize,
}

fn verify(entries: &[Processed], ends: &BTreeMap<i32, i64>, delivered: u64) -> Verification {
    let mut by_offset: BTreeMap<(i32, i64), Vec<&str>> = BTreeMap::new();
    let mut per_slot = BTreeMap::new();
    for p in entries {
        by_offset
            .entry((p.partition, p.offset))
            .or_default()
            .push(p.slot);
        *per_slot.entry(p.slot).or_insert(0) += 1;
    }
    let twice: Vec<&Vec<&str>> = by_offset.values().filter(|s| s.len() > 1).collect();
    let lost = ends
        .iter()
        .map(|(p, end)| {
            (0..*end)
                .filter(|o| !by_offset.contains_key(&(*p, *o)))
                .count() as i64
        })
        .sum();
    Verification {
        produced: ends.values().sum(),
        delivered,
        processed: entries.len(),
        per_slot,
        duplicates: twice.len(),
        across_slots: twice
            .iter()
            .filter(|s| s.iter().collect::<BTreeSet<_>>().len() > 1)
            .count(),
        lost,
        seqs: entries.iter().map(|p| p.seq).collect::<HashSet<_>>().len(),
    }
}

type Handoffs = Vec<(&'static str, anyhow::Result<Outcome>)>;

fn print_table(v: &Verification, handoffs: &Handoffs) {
    println!();
    println!("verification");
    let row = |k: &str, v: String| println!("  {k:<24} {v}");
    row("records produced", v.produced.to_string());
    row("records processed", v.processed.to_string());
    for (slot, n) in &v.per_slot {
        row(&format!("  by {slot}"), n.to_string());
    }
    row(
        "duplicates",
        format!(
            "{}  (offsets processed twice; {} across slots)",
            v.duplicates, v.across_slots
        ),
    );
    row("lost", format!("{}  (offsets never processed)", v.lost));
    row(
        "sequence numbers",
        format!("{} distinct of {} delivered", v.seqs, v.delivered),
    );
    for (what, o) in handoffs {
        let text = match o {
            Ok(o) if o.ok => format!(
                "done: {} partitions, gap {} ms, total {} ms",
                o.moved.len(),
                o.gap.map_or(0, |g| g.as_millis()),
                o.total.as_millis()
            ),
            Ok(o) => format!("ROLLED BACK: {}", o.reason.clone().unwrap_or_default()),
            Err(e) => format!("FAILED: {e:#}"),
        };
        row(&format!("handoff {what}"), text);
    }
}

fn check(v: &Verification, handoffs: &Handoffs) -> anyhow::Result<()> {
    let mut problems = Vec::new();
    if v.duplicates > 0 {
        problems.push(format!("{} offsets processed twice", v.duplicates));
    }
    if v.lost > 0 {
        problems.push(format!("{} offsets never processed", v.lost));
    }
    if v.seqs as u64 != v.delivered {
        problems.push(format!(
            "{} distinct sequence numbers processed, {} delivered",
            v.seqs, v.delivered
        ));
    }
    let done = handoffs.iter().filter(|(_, o)| matches!(o, Ok(o) if o.ok));
    if done.count() < 2 {
        problems.push("the switch and the rollback did not both finish".into());
    }
    anyhow::ensure!(
        problems.is_empty(),
        "blue/green verification failed: {}",
        problems.join("; ")
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(slot: &'static str, partition: i32, offset: i64, seq: u64) -> Processed {
        Processed {
            slot,
            partition,
            offset,
            seq,
        }
    }

    #[test]
    fn verification_counts_duplicates_across_slots_and_lost_offsets() {
        let ends = BTreeMap::from([(0, 3), (1, 2)]);
        let clean = [
            p("blue", 0, 0, 0),
            p("blue", 1, 0, 1),
            p("blue", 0, 1, 2),
            p("green", 1, 1, 3),
            p("green", 0, 2, 4),
        ];
        let v = verify(&clean, &ends, 5);
        assert_eq!((v.duplicates, v.lost, v.seqs, v.processed), (0, 0, 5, 5));
        assert_eq!(v.per_slot, BTreeMap::from([("blue", 3), ("green", 2)]));
        assert!(check(&v, &Vec::new()).is_err(), "no handoff finished");

        // offset 0-1 twice (blue then green), 1-0 twice by blue, 0-2 never
        let bad = [
            p("blue", 0, 0, 0),
            p("blue", 0, 1, 2),
            p("green", 0, 1, 2),
            p("blue", 1, 0, 1),
            p("blue", 1, 0, 1),
            p("green", 1, 1, 3),
        ];
        let v = verify(&bad, &ends, 5);
        assert_eq!((v.duplicates, v.across_slots, v.lost), (2, 1, 1));
        assert_eq!((v.produced, v.seqs), (5, 4));
        let e = check(&v, &Vec::new()).unwrap_err().to_string();
        assert!(e.contains("2 offsets processed twice"), "{e}");
        assert!(e.contains("1 offsets never processed"), "{e}");
    }
}
