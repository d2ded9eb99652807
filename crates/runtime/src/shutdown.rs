//! Bounded shutdown (Java's `wakeup()` + `close()`, with a deadline):
//!
//! 1. stop fetching every partition and drop waiting records;
//! 2. let in-flight records finish, polling meanwhile so the group keeps us,
//!    until they are done or most of the deadline is used;
//! 3. abandon what is still running (reported) and commit synchronously;
//! 4. close the consumer (revoke, leave the group), polling until librdkafka
//!    says it is closed or the deadline passes. A consumer that did not close
//!    in time is leaked rather than dropped, because dropping an rdkafka
//!    consumer can block forever (rust-rdkafka #509, #453, #611).
//!
//! The caller waits at most the deadline too
//! ([`ListenerHandle::shutdown`](crate::ListenerHandle::shutdown)),
//! so a librdkafka call that never returns cannot hang the application.

use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use rdkafka::consumer::{CommitMode, Consumer};

use crate::command::ShutdownReport;
use crate::event::{Command, Event};
use crate::fetched::Alive;
use crate::rebalance::Kafka;
use switchyard_config::Tp;

/// Part of the deadline kept for the final commit and close.
fn close_reserve(deadline: Duration) -> Duration {
    (deadline * 3 / 10).min(Duration::from_secs(3))
}

pub(crate) fn run(
    kafka: std::sync::Arc<Kafka>,
    events: &Receiver<Event>,
    deadline: Duration,
    alive: &Alive,
) -> ShutdownReport {
    let started = Instant::now();
    let end = started + deadline;
    let drain_end = end - close_reserve(deadline);
    let mut report = ShutdownReport::default();
    {
        let mut c = kafka.context().lock();
        tracing::info!(listener = %c.name, in_flight = c.in_flight(), ?deadline, "shutting down");
        c.shutting_down = true;
        let tps: Vec<Tp> = c.parts.keys().cloned().collect();
        for tp in &tps {
            if let Some(p) = c.parts.get_mut(tp) {
                p.drop_waiting();
            }
            c.apply_fetch(&kafka, tp);
        }
    }
    // 2. drain
    loop {
        if kafka.context().lock().executor.running() == 0 || Instant::now() >= drain_end {
            break;
        }
        let _ = kafka.poll(Duration::ZERO);
        let wait = drain_end
            .saturating_duration_since(Instant::now())
            .min(Duration::from_millis(20));
        if let Ok(ev) = events.recv_timeout(wait) {
            let mut c = kafka.context().lock();
            for ev in std::iter::once(ev).chain(events.try_iter()) {
                match ev {
                    Event::Command(Command::Shutdown(..)) => {}
                    ev => c.on_event(&kafka, ev),
                }
            }
        }
    }
    // 3. abandon and commit
    {
        let mut c = kafka.context().lock();
        report.abandoned_in_flight = c.in_flight();
        let aborted = c.executor.abort_all();
        if aborted > 0 {
            report.notes.push(format!(
                "{aborted} job(s) with {} record(s) still running at the deadline were abandoned; they will be delivered again",
                report.abandoned_in_flight
            ));
            for p in c.parts.values_mut() {
                p.all_abandoned();
            }
        }
        match c.commit(&kafka, CommitMode::Sync, None) {
            Ok(done) => report.committed = done,
            Err(e) => report.notes.push(format!("final commit failed: {e}")),
        }
    }
    // 4. close
    kafka.unsubscribe();
    if let Err(e) = kafka.close_queue() {
        report.notes.push(format!("close failed: {e}"));
    }
    while !kafka.closed() && Instant::now() < end {
        let _ = kafka.poll(Duration::from_millis(20));
    }
    report.closed = kafka.closed();
    let name = kafka.context().lock().name.clone();
    // librdkafka destroys a consumer only once every message it handed out
    // is freed (fetched.rs): free the records still queued (those of a
    // standalone assignment, which no revoke removed) and give the jobs
    // aborted above a moment to drop theirs
    kafka.context().lock().clear_partitions();
    let freed = alive.wait_gone(end.max(Instant::now() + Duration::from_millis(500)));
    if report.closed && freed {
        drop(kafka);
    } else if !freed {
        report.notes.push(format!(
            "{} record(s) still held at the deadline keep librdkafka's consumer: it was left to the operating system",
            alive.count()
        ));
        std::mem::forget(kafka);
    } else {
        report.notes.push(
            "consumer did not close before the deadline; it was left to the operating system"
                .into(),
        );
        std::mem::forget(kafka);
    }
    report.elapsed_ms = started.elapsed().as_millis() as u64;
    tracing::info!(listener = %name, ?report, "shut down");
    report
}
