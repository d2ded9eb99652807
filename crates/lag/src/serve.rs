//! `switchyard lag serve`: the evaluator and exporter as a standalone
//! process over many groups (Burrow's use case).
//!
//! A sampling thread calls [`Sampler::sample`] every interval (default 15 s;
//! a slow sample delays the next one rather than overlapping it) and keeps
//! the newest report, rendered. An axum server answers:
//!
//! - `GET /metrics`: the Prometheus text of the newest report
//!   ([`crate::exporter`]), `text/plain; version=0.0.4`;
//! - `GET /lag`: the newest report as JSON;
//! - `GET /healthz`: `200 ok` while the newest successful sample is younger
//!   than three intervals, `503` otherwise (no sample yet, or sampling fails).
//!
//! The paused and draining partitions can be replaced while it runs
//! ([`Server::set_intents`]); they apply from the next sample.
//!
//! ```no_run
//! # async fn f() -> Result<(), switchyard_lag::LagError> {
//! use switchyard_lag::{SamplerConfig, ServeConfig, Server};
//! let config = ServeConfig::new(SamplerConfig::new("127.0.0.1:9092", ["billing", "shipping"]));
//! let server = Server::start(config).await?;
//! println!("metrics on http://{}/metrics", server.local_addr());
//! tokio::signal::ctrl_c().await.ok();
//! server.shutdown().await;
//! # Ok(()) }
//! ```

use std::net::SocketAddr;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::exporter::{render, SamplingStats};
use crate::health::Intents;
use crate::report::Report;
use crate::sampler::{Sampler, SamplerConfig};
use crate::LagError;

/// What to serve.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// What and how to sample.
    pub sampler: SamplerConfig,
    /// Address to listen on (port 0: any free port).
    pub listen: SocketAddr,
    /// Time between the starts of two samples.
    pub interval: Duration,
}

impl ServeConfig {
    /// Listen on 127.0.0.1:9464, sample every 15 s.
    pub fn new(sampler: SamplerConfig) -> ServeConfig {
        ServeConfig {
            sampler,
            listen: SocketAddr::from(([127, 0, 0, 1], 9464)),
            interval: Duration::from_secs(15),
        }
    }
}

#[derive(Default)]
struct Latest {
    report: Option<Report>,
    metrics: String,
    stats: SamplingStats,
    last_ok: Option<Instant>,
    last_error: Option<String>,
}

struct Shared {
    latest: Mutex<Latest>,
    intents: Mutex<Option<Intents>>,
    interval: Duration,
}

/// Sets the paused and draining partitions of a running [`Server`].
#[derive(Clone)]
pub struct IntentsHandle(Arc<Shared>);

impl IntentsHandle {
    /// Replace the paused and draining partitions, from the next sample on.
    pub fn set(&self, intents: Intents) {
        *self.0.intents.lock().unwrap_or_else(|p| p.into_inner()) = Some(intents);
    }
}

/// A running exporter.
pub struct Server {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop_sampler: mpsc::Sender<()>,
    sampler: Option<std::thread::JoinHandle<()>>,
    stop_http: Option<tokio::sync::oneshot::Sender<()>>,
    http: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Create the Kafka clients, bind the listener and start sampling and
    /// serving. Must be called within a tokio runtime.
    pub async fn start(config: ServeConfig) -> Result<Server, LagError> {
        let sampler_config = config.sampler.clone();
        let sampler = tokio::task::spawn_blocking(move || Sampler::new(sampler_config))
            .await
            .map_err(|e| LagError::Listen {
                addr: config.listen.to_string(),
                source: std::io::Error::other(e),
            })??;
        let listen_err = |source| LagError::Listen {
            addr: config.listen.to_string(),
            source,
        };
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(listen_err)?;
        let addr = listener.local_addr().map_err(listen_err)?;
        let shared = Arc::new(Shared {
            latest: Mutex::new(Latest {
                metrics: render(None, &SamplingStats::default()),
                ..Latest::default()
            }),
            intents: Mutex::new(None),
            interval: config.interval,
        });
        let (stop_sampler, stopped) = mpsc::channel();
        let s = shared.clone();
        let interval = config.interval;
        let sampler = std::thread::Builder::new()
            .name("switchyard-lag-sampler".into())
            .spawn(move || sample_loop(sampler, s, interval, stopped))
            .map_err(listen_err)?;
        let app = Router::new()
            .route("/metrics", get(metrics))
            .route("/lag", get(lag_json))
            .route("/healthz", get(healthz))
            .with_state(shared.clone());
        let (stop_http, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let http = tokio::spawn(async move {
            let served = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = stop_rx.await;
            });
            if let Err(e) = served.await {
                tracing::error!(error = %e, "lag exporter HTTP server failed");
            }
        });
        tracing::info!(%addr, ?interval, "lag exporter listening");
        Ok(Server {
            addr,
            shared,
            stop_sampler,
            sampler: Some(sampler),
            stop_http: Some(stop_http),
            http,
        })
    }

    /// The address actually listened on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Replace the paused and draining partitions, from the next sample on.
    pub fn set_intents(&self, intents: Intents) {
        self.intents_handle().set(intents);
    }

    /// A handle that sets the intents from another task (for example one
    /// that follows the control plane's status topic).
    pub fn intents_handle(&self) -> IntentsHandle {
        IntentsHandle(self.shared.clone())
    }

    /// The newest report, if a sample succeeded.
    pub fn latest(&self) -> Option<Report> {
        self.shared
            .latest
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .report
            .clone()
    }

    /// Stop sampling and serving; waits for a sample in progress to end.
    pub async fn shutdown(mut self) {
        let _ = self.stop_sampler.send(());
        if let Some(tx) = self.stop_http.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.http).await;
        tracing::debug!("lag exporter: HTTP server stopped");
        if let Some(t) = self.sampler.take() {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
        tracing::debug!("lag exporter: sampler stopped");
    }
}

fn sample_loop(
    mut sampler: Sampler,
    shared: Arc<Shared>,
    interval: Duration,
    stop: mpsc::Receiver<()>,
) {
    loop {
        if let Some(i) = shared
            .intents
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            sampler.set_intents(i);
        }
        let started = Instant::now();
        let result = sampler.sample();
        let took = started.elapsed();
        {
            let mut l = shared.latest.lock().unwrap_or_else(|p| p.into_inner());
            match result {
                Ok(report) => {
                    l.stats.samples += 1;
                    l.stats.last_duration_secs = took.as_secs_f64();
                    l.metrics = render(Some(&report), &l.stats);
                    l.report = Some(report);
                    l.last_ok = Some(Instant::now());
                    l.last_error = None;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "lag sample failed");
                    l.stats.errors += 1;
                    l.last_error = Some(e.to_string());
                    // Keep the newest good figures, with the error counter updated.
                    l.metrics = render(l.report.as_ref(), &l.stats);
                }
            }
        }
        match stop.recv_timeout(interval.saturating_sub(took)) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

async fn metrics(State(s): State<Arc<Shared>>) -> Response {
    let body = s
        .latest
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .metrics
        .clone();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

async fn lag_json(State(s): State<Arc<Shared>>) -> Response {
    let l = s.latest.lock().unwrap_or_else(|p| p.into_inner());
    match &l.report {
        Some(r) => (
            [(header::CONTENT_TYPE, "application/json")],
            r.to_json().to_string(),
        )
            .into_response(),
        None => (StatusCode::SERVICE_UNAVAILABLE, "no sample yet\n").into_response(),
    }
}

async fn healthz(State(s): State<Arc<Shared>>) -> Response {
    let l = s.latest.lock().unwrap_or_else(|p| p.into_inner());
    let fresh = l.last_ok.is_some_and(|t| t.elapsed() < s.interval * 3);
    if fresh {
        (StatusCode::OK, "ok\n".to_string()).into_response()
    } else {
        let why = l
            .last_error
            .clone()
            .unwrap_or_else(|| "no successful sample yet".into());
        (StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")).into_response()
    }
}
