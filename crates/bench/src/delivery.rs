//! `switchyard-bench delivery`: records per second delivered over HTTP to a
//! local application, per record and in batches, beside the in-process
//! empty handler on the same topic in the same run.
//!
//! The application is a minimal HTTP server (axum, on its own thread and
//! runtime, on 127.0.0.1) that reads each body, counts the records
//! (`Kafka-Count` of a batch, else 1) and answers 200: what is measured is
//! the listener, the envelope and the HTTP round trips, not an application.
//! The clock runs from the first record handled to the last one answered.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::body::Bytes as Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use axum::Router;
use switchyard_config::{ConsumerConfig, OffsetReset};
use switchyard_delivery::http::{HttpDelivery, HttpOptions};
use switchyard_delivery::ValueFormat;
use switchyard_runtime::deserializer::Bytes;
use switchyard_runtime::record::Record;
use switchyard_runtime::{Listener, ListenerBuilder, Ordering as LaneOrdering};

use crate::broker::{BenchBroker, BrokerArgs};

/// Options of `delivery`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    broker: BrokerArgs,
    #[arg(long, default_value_t = 100_000)]
    records: u64,
    #[arg(long, default_value_t = 100)]
    value_bytes: usize,
    #[arg(long, default_value_t = 4)]
    partitions: i32,
    /// Requests in flight at once (the listener's workers) per record.
    #[arg(long, default_value_t = 16)]
    workers: usize,
    /// Records per request in the batch run.
    #[arg(long, default_value_t = 100)]
    batch: usize,
    /// Repetitions of each measurement (the best is reported).
    #[arg(long, default_value_t = 2)]
    runs: u32,
}

#[derive(Clone, Copy)]
enum Mode {
    Empty,
    PerRecord,
    Batch,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let broker = BenchBroker::start(&a.broker)?;
    let topic = format!("bench-delivery-{}", broker.run_tag());
    broker.fill_topic(&topic, a.partitions, a.records, a.value_bytes, |i| {
        (i % 1024).to_string()
    })?;
    println!(
        "topic {topic} on {}: {} records of {} B over {} partitions; {} workers per record, batches of {}",
        broker.describe(),
        a.records,
        a.value_bytes,
        a.partitions,
        a.workers,
        a.batch
    );
    let (url, answered) = start_application()?;
    let rt = tokio::runtime::Runtime::new()?;
    let modes = [
        ("in-process empty handler", Mode::Empty),
        ("HTTP, one record per request", Mode::PerRecord),
        ("HTTP, batches", Mode::Batch),
    ];
    let mut best = [f64::MAX; 3];
    for run in 0..a.runs {
        for (i, (_, mode)) in modes.iter().enumerate() {
            let secs = rt.block_on(measure(
                &broker.bootstrap,
                &topic,
                &a,
                *mode,
                &url,
                &answered,
                run,
            ))?;
            best[i] = best[i].min(secs);
        }
    }
    println!();
    println!(
        "{:<32} {:>12} {:>14}",
        "delivery", "records/s", "vs in-process"
    );
    for (i, (name, _)) in modes.iter().enumerate() {
        println!(
            "{:<32} {:>12.0} {:>14.3}",
            name,
            a.records as f64 / best[i],
            best[0] / best[i]
        );
    }
    Ok(())
}

/// What the local application counts.
#[derive(Default)]
struct Answered {
    records: AtomicU64,
    first: std::sync::Mutex<Option<Instant>>,
}

/// The local application: its URL and what it answered.
fn start_application() -> anyhow::Result<(String, Arc<Answered>)> {
    let answered = Arc::new(Answered::default());
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let url = format!("http://{}/records", listener.local_addr()?);
    let count = answered.clone();
    std::thread::Builder::new()
        .name("bench-app".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let app = Router::new()
                    .route("/records", post(take))
                    .with_state(count);
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                axum::serve(listener, app).await.expect("serve");
            });
        })?;
    Ok((url, answered))
}

async fn take(State(count): State<Arc<Answered>>, headers: HeaderMap, body: Body) -> &'static str {
    let n = headers
        .get("kafka-count")
        .and_then(|v| v.to_str().ok()?.parse().ok())
        .unwrap_or(1);
    std::hint::black_box(body.len());
    count
        .first
        .lock()
        .expect("not poisoned")
        .get_or_insert_with(Instant::now);
    count.records.fetch_add(n, Ordering::Relaxed);
    "ok"
}

async fn measure(
    bootstrap: &str,
    topic: &str,
    a: &Args,
    mode: Mode,
    url: &str,
    answered: &Arc<Answered>,
    run: u32,
) -> anyhow::Result<f64> {
    let tag = match mode {
        Mode::Empty => "empty",
        Mode::PerRecord => "http",
        Mode::Batch => "batch",
    };
    let builder = Listener::builder("bench").config(
        ConsumerConfig::new(bootstrap)
            .with_group(format!("{topic}-{tag}-{run}"))
            .with_offset_reset(OffsetReset::Earliest)
            .set("fetch.queue.backoff.ms", "10")?,
    );
    let builder: ListenerBuilder = builder.topics([topic]);
    let handled = Arc::new(AtomicU64::new(0));
    let first = Arc::new(std::sync::OnceLock::<Instant>::new());
    let base = answered.records.load(Ordering::Relaxed);
    *answered.first.lock().expect("not poisoned") = None;
    let builder = match mode {
        Mode::Empty => {
            let (n, f) = (handled.clone(), first.clone());
            builder
                .workers(a.workers)
                .handler(Bytes, Bytes, move |r: Record<Vec<u8>, Vec<u8>>| {
                    f.get_or_init(Instant::now);
                    std::hint::black_box(r.value.len());
                    n.fetch_add(1, Ordering::Relaxed);
                    async { Ok(()) }
                })
        }
        Mode::PerRecord | Mode::Batch => {
            let batch = if matches!(mode, Mode::Batch) {
                a.batch
            } else {
                1
            };
            let workers = if batch > 1 {
                a.partitions as usize
            } else {
                a.workers
            };
            let http = HttpDelivery::new(
                HttpOptions::new(url)
                    .batch(batch)
                    .connections(workers)
                    .timeout(Duration::from_secs(10)),
            )?;
            let ordering = if batch > 1 {
                LaneOrdering::Partition
            } else {
                LaneOrdering::Key
            };
            http.attach(
                builder.workers(workers).ordering(ordering),
                ValueFormat::Auto,
            )
        }
    };
    let listener = builder.start()?;
    let done = |m: Mode| match m {
        Mode::Empty => handled.load(Ordering::Relaxed),
        _ => answered.records.load(Ordering::Relaxed) - base,
    };
    let deadline = Instant::now() + Duration::from_secs(300);
    while done(mode) < a.records {
        anyhow::ensure!(
            Instant::now() < deadline,
            "{tag} timed out at {}",
            done(mode)
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let started = match mode {
        Mode::Empty => first.get().copied(),
        _ => *answered.first.lock().expect("not poisoned"),
    };
    let secs = started.context("no record")?.elapsed().as_secs_f64();
    listener.shutdown().await;
    Ok(secs)
}
