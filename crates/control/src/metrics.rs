//! Metrics and health probes of a running instance: `GET /metrics` in the
//! Prometheus text format (names in the style of kafka-lag-exporter and
//! KMinion), `GET /healthz` (the process answers and no listener's consumer
//! hit a fatal error) and `GET /readyz` (every
//! listener's poll loop went round recently: a loop stuck longer than the
//! threshold makes the instance unready).
//!
//! Series (labels `listener`, and `topic`, `partition` per partition):
//!
//! | name | type | what |
//! |---|---|---|
//! | `switchyard_records_processed_total` | counter | records whose handler finished |
//! | `switchyard_records_fetched_total` | counter | records taken from the consumer |
//! | `switchyard_handler_errors_total`, `switchyard_handler_retries_total` | counter | failed calls, retries |
//! | `switchyard_records_dead_lettered_total`, `switchyard_records_skipped_total`, `switchyard_decode_errors_total` | counter | records not handled normally |
//! | `switchyard_dead_letter_failures_total` | counter | records whose dead-letter write failed on every attempt (the partition stops there by default) |
//! | `switchyard_records_abandoned_total` | counter | handler calls abandoned at a pause or revoke deadline (delivered again) |
//! | `switchyard_commits_total`, `switchyard_commit_failures_total` | counter | commits |
//! | `switchyard_rebalances_total`, `switchyard_rebalance_stall_seconds_total` | counter | rebalances and how long they stood processing still |
//! | `switchyard_handler_duration_seconds` | histogram | handler call durations |
//! | `switchyard_poll_age_seconds` | gauge | time since the poll loop last went round |
//! | `kafka_consumergroup_group_lag` | gauge | log end minus committed, per partition; labels `group`, `topic`, `partition` as kafka-lag-exporter's (and `listener`) |
//! | `kafka_consumergroup_group_lag_seconds` | gauge | age of the oldest record held and not finished (0 when caught up); the same labels |
//! | `switchyard_partition_paused` | gauge | 1 when paused/draining/stopped, with `state` and `reason` |
//! | `switchyard_partition_in_flight`, `switchyard_partition_buffered_records`, `switchyard_partition_buffered_bytes` | gauge | work in the runtime |
//!
//! Label values are escaped as the text format says (backslash, double
//! quote, and a line feed as `\n`, as in a stopped partition's `reason`);
//! the text is written by [`PrometheusText`].
//!
//! Time lag from outside (also while a consumer is down) is exported by
//! `switchyard lag serve`.

use std::fmt::Write;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use switchyard_config::prometheus::{MetricKind, PrometheusText};
use switchyard_runtime::command::{ListenerSnapshot, PartitionState};
use switchyard_runtime::stats::ListenerStats;
use switchyard_runtime::ListenerHandle;

/// Listeners whose metrics and health are served.
#[derive(Clone)]
pub struct Probes {
    /// The listeners.
    pub listeners: Arc<Vec<Arc<ListenerHandle>>>,
    /// A poll loop older than this makes `/readyz` fail.
    pub stuck_after: Duration,
}

/// `/metrics`, `/healthz`, `/readyz`.
pub fn router(probes: Probes) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route(
            "/healthz",
            get(|State(p): State<Probes>| async move { liveness(&p.listeners) }),
        )
        .route("/readyz", get(readyz))
        .with_state(probes)
}

/// Serve the probes alone on `addr` in the background (an instance without
/// the admin API); the bound address.
pub async fn serve(
    addr: std::net::SocketAddr,
    probes: Probes,
) -> std::io::Result<std::net::SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, router(probes)).await;
    });
    Ok(bound)
}

/// One listener's metrics: its snapshot, its live counters and its group.
pub(crate) type ListenerMetrics<'a> = (ListenerSnapshot, &'a ListenerStats, Option<&'a str>);

/// Render the listeners' counters, histograms and partitions.
pub(crate) fn render(listeners: &[ListenerMetrics<'_>]) -> String {
    let mut out = PrometheusText::new();
    type Counter = fn(&switchyard_runtime::stats::StatsSnapshot) -> f64;
    let counters: [(&str, &str, Counter); 14] = [
        (
            "switchyard_records_processed_total",
            "Records whose handler finished.",
            |s| s.processed as f64,
        ),
        (
            "switchyard_records_fetched_total",
            "Records taken from the consumer.",
            |s| s.fetched as f64,
        ),
        (
            "switchyard_handler_errors_total",
            "Handler calls that failed.",
            |s| s.handler_errors as f64,
        ),
        (
            "switchyard_handler_retries_total",
            "Handler calls repeated after a failure.",
            |s| s.retries as f64,
        ),
        (
            "switchyard_records_dead_lettered_total",
            "Records written to the dead-letter topic.",
            |s| s.dead_lettered as f64,
        ),
        (
            "switchyard_records_skipped_total",
            "Records skipped by policy.",
            |s| s.skipped as f64,
        ),
        (
            "switchyard_decode_errors_total",
            "Records that could not be decoded.",
            |s| s.decode_errors as f64,
        ),
        (
            "switchyard_commits_total",
            "Commits sent or offsets stored.",
            |s| s.commits as f64,
        ),
        (
            "switchyard_commit_failures_total",
            "Commits that failed.",
            |s| s.commit_failures as f64,
        ),
        ("switchyard_rebalances_total", "Rebalance callbacks.", |s| {
            s.rebalances as f64
        }),
        (
            "switchyard_rebalance_stall_seconds_total",
            "Time rebalances stood processing still.",
            |s| s.rebalance_stall_ms as f64 / 1000.0,
        ),
        (
            "switchyard_backpressure_pauses_total",
            "Times taking records of a partition stopped because the buffer was full.",
            |s| s.backpressure_pauses as f64,
        ),
        (
            "switchyard_dead_letter_failures_total",
            "Records whose dead-letter write failed on every attempt.",
            |s| s.dead_letter_failures as f64,
        ),
        (
            "switchyard_records_abandoned_total",
            "Handler calls abandoned at a pause or revoke deadline (delivered again).",
            |s| s.abandoned as f64,
        ),
    ];
    for (name, help, get) in counters {
        out.family(name, MetricKind::Counter, help);
        for (snap, _, _) in listeners {
            out.sample(name, &[("listener", &snap.name)], get(&snap.stats));
        }
    }
    let name = "switchyard_handler_duration_seconds";
    out.family(name, MetricKind::Histogram, "Handler call durations.");
    for (snap, stats, _) in listeners {
        let (buckets, count, sum) = stats.handler_latency.snapshot();
        out.histogram(name, &[("listener", &snap.name)], &buckets, count, sum);
    }
    let name = "switchyard_poll_age_seconds";
    out.family(
        name,
        MetricKind::Gauge,
        "Time since the poll loop last went round.",
    );
    for (snap, stats, _) in listeners {
        out.sample(
            name,
            &[("listener", &snap.name)],
            stats.poll_clock.age_ms() as f64 / 1000.0,
        );
    }
    type Gauge = fn(&switchyard_runtime::command::PartitionStatus) -> Option<f64>;
    let gauges: [(&str, &str, Gauge); 5] = [
        (
            "kafka_consumergroup_group_lag",
            "Log end offset minus committed offset.",
            |p| p.lag.map(|l| l as f64),
        ),
        (
            "kafka_consumergroup_group_lag_seconds",
            "Age of the oldest record held and not finished (0 when caught up).",
            |p| p.time_lag_ms.map(|t| t as f64 / 1000.0),
        ),
        (
            "switchyard_partition_in_flight",
            "Records handed to handlers and not finished.",
            |p| Some(p.in_flight as f64),
        ),
        (
            "switchyard_partition_buffered_records",
            "Records waiting for a worker.",
            |p| Some(p.buffered as f64),
        ),
        (
            "switchyard_partition_buffered_bytes",
            "Bytes of the records waiting for a worker.",
            |p| Some(p.buffered_bytes as f64),
        ),
    ];
    for (name, help, get) in gauges {
        out.family(name, MetricKind::Gauge, help);
        for (snap, _, group) in listeners {
            for p in &snap.partitions {
                if let Some(v) = get(p) {
                    let part = p.partition.to_string();
                    // kafka-lag-exporter's labels (group, topic, partition)
                    // and the listener's
                    let l = [
                        ("group", group.unwrap_or_default()),
                        ("listener", &snap.name),
                        ("topic", &p.topic),
                        ("partition", &part),
                    ];
                    out.sample(name, &l, v);
                }
            }
        }
    }
    let name = "switchyard_partition_paused";
    out.family(
        name,
        MetricKind::Gauge,
        "1 when the partition is not running (paused, draining or stopped).",
    );
    for (snap, _, _) in listeners {
        for p in &snap.partitions {
            let state = serde_json::to_value(p.state)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            let part = p.partition.to_string();
            let reason = p.reason.clone().unwrap_or_default();
            let l = [
                ("listener", snap.name.as_str()),
                ("topic", &p.topic),
                ("partition", &part),
                ("state", &state),
                ("reason", &reason),
            ];
            out.sample(name, &l, u8::from(p.state != PartitionState::Running));
        }
    }
    out.finish()
}

async fn snapshots(
    listeners: &[Arc<ListenerHandle>],
) -> Vec<(ListenerSnapshot, Arc<ListenerHandle>)> {
    let mut out = Vec::new();
    for l in listeners {
        // a stuck poll loop does not answer: leave that listener's partitions out
        let snap = tokio::time::timeout(Duration::from_millis(500), l.snapshot()).await;
        let snap = match snap {
            Ok(Ok(s)) => s,
            _ => ListenerSnapshot {
                name: l.name().to_string(),
                stats: l.stats(),
                ..Default::default()
            },
        };
        out.push((snap, l.clone()));
    }
    out
}

/// The answer of `GET /metrics` for `listeners`.
pub async fn metrics_of(
    listeners: &[Arc<ListenerHandle>],
) -> (StatusCode, [(&'static str, &'static str); 1], String) {
    let snaps = snapshots(listeners).await;
    let pairs: Vec<ListenerMetrics<'_>> = snaps
        .iter()
        .map(|(s, l)| (s.clone(), l.live_stats(), l.group_id()))
        .collect();
    (
        StatusCode::OK,
        [("content-type", "text/plain; version=0.0.4")],
        render(&pairs),
    )
}

async fn metrics(
    State(probes): State<Probes>,
) -> (StatusCode, [(&'static str, &'static str); 1], String) {
    metrics_of(&probes.listeners).await
}

async fn readyz(State(probes): State<Probes>) -> (StatusCode, String) {
    readiness(&probes.listeners, probes.stuck_after)
}

/// The answer of `GET /healthz` for `listeners`: alive unless a listener's
/// consumer hit a fatal error ([`ListenerHandle::fatal_error`]): it
/// consumes nothing more, and only a restart helps (what a liveness probe
/// that fails makes Kubernetes do).
pub fn liveness(listeners: &[Arc<ListenerHandle>]) -> (StatusCode, String) {
    let failed: Vec<String> = listeners
        .iter()
        .filter_map(|l| l.fatal_error().map(|e| format!("{}: {e}\n", l.name())))
        .collect();
    if failed.is_empty() {
        (StatusCode::OK, "ok".into())
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, failed.concat())
    }
}

/// The answer of `GET /readyz` for `listeners`: ready when there is at
/// least one, every poll loop went round within `stuck_after`, and no
/// listener's client has a problem no retry fixes
/// ([`ListenerHandle::problem`]: authentication or authorization).
pub fn readiness(listeners: &[Arc<ListenerHandle>], stuck_after: Duration) -> (StatusCode, String) {
    let mut body = String::new();
    let mut ready = !listeners.is_empty();
    for l in listeners {
        let age = Duration::from_millis(l.live_stats().poll_clock.age_ms());
        let ok = age <= stuck_after;
        ready &= ok;
        let _ = writeln!(
            body,
            "{} poll loop {} ms ago: {}",
            l.name(),
            age.as_millis(),
            if ok { "ok" } else { "stuck" }
        );
        // a client that cannot authenticate or is not authorized polls on
        // and processes nothing: not ready
        if let Some(problem) = l.problem() {
            ready = false;
            let _ = writeln!(body, "{}: {problem}", l.name());
        }
    }
    (
        if ready {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        },
        body,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_runtime::command::PartitionStatus;
    use switchyard_runtime::stats::ListenerStats;

    fn partition(partition: i32, state: PartitionState, reason: Option<&str>) -> PartitionStatus {
        PartitionStatus {
            topic: "orders".into(),
            partition,
            state,
            in_flight: 2,
            buffered: 5,
            committed: Some(10),
            buffered_bytes: 1024,
            log_end: Some(20),
            lag: Some(10),
            time_lag_ms: Some(1250),
            reason: reason.map(str::to_string),
        }
    }

    #[test]
    fn renders_counters_histograms_and_partitions_with_escaped_labels() {
        let stats = ListenerStats::default();
        stats.processed.add(12);
        stats.handler_latency.observe(Duration::from_micros(1500));
        let snap = ListenerSnapshot {
            name: "orders \"eu\"".into(),
            stats: stats.snapshot(),
            partitions: vec![
                partition(0, PartitionState::Running, None),
                partition(1, PartitionState::Stopped, Some("handler failed:\nboom")),
            ],
            ..Default::default()
        };
        let text = render(&[(snap, &stats, Some("g"))]);
        for line in [
            "# HELP switchyard_records_processed_total Records whose handler finished.\n\
             # TYPE switchyard_records_processed_total counter\n\
             switchyard_records_processed_total{listener=\"orders \\\"eu\\\"\"} 12\n",
            "# TYPE switchyard_handler_duration_seconds histogram\n\
             switchyard_handler_duration_seconds_bucket{listener=\"orders \\\"eu\\\"\",le=\"0.001\"} 0\n\
             switchyard_handler_duration_seconds_bucket{listener=\"orders \\\"eu\\\"\",le=\"0.002\"} 1\n",
            "switchyard_handler_duration_seconds_bucket{listener=\"orders \\\"eu\\\"\",le=\"+Inf\"} 1\n\
             switchyard_handler_duration_seconds_sum{listener=\"orders \\\"eu\\\"\"} 0.0015\n\
             switchyard_handler_duration_seconds_count{listener=\"orders \\\"eu\\\"\"} 1\n",
            "kafka_consumergroup_group_lag_seconds{group=\"g\",listener=\"orders \\\"eu\\\"\",topic=\"orders\",partition=\"0\"} 1.25\n",
            "switchyard_partition_paused{listener=\"orders \\\"eu\\\"\",topic=\"orders\",partition=\"0\",state=\"running\",reason=\"\"} 0\n",
            // a line feed in a label value is escaped, not replaced
            "switchyard_partition_paused{listener=\"orders \\\"eu\\\"\",topic=\"orders\",partition=\"1\",state=\"stopped\",reason=\"handler failed:\\nboom\"} 1\n",
        ] {
            assert!(text.contains(line), "{line:?} not in\n{text}");
        }
    }
}
