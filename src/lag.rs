//! `switchyard lag`: consumer lag from outside (no consumer needs to run),
//! with health per partition and group; `switchyard lag serve`: the same as a
//! Prometheus exporter over many groups. See docs/lag.md.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::time::Duration;

use switchyard_control::status::InstanceStatus;
use switchyard_control::status_topic::StatusTail;
use switchyard_lag::{
    GroupSelection, Intents, LagError, Sampler, SamplerConfig, ServeConfig, Server, Target,
    TimeLagMode, WindowConfig,
};

use crate::outcome::{Failure, Outcome, UsageError};

/// Show lag (default) or serve it as Prometheus metrics.
#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    #[command(subcommand)]
    serve: Option<Sub>,
    #[command(flatten)]
    show: ShowArgs,
}

#[derive(clap::Subcommand)]
enum Sub {
    /// Sample groups every interval and serve GET /metrics (Prometheus) and GET /healthz.
    Serve(ServeArgs),
}

#[derive(clap::Args)]
struct Common {
    #[command(flatten)]
    kafka: crate::connection_args::ConnectionArgs,
    /// Group id (repeatable).
    #[arg(long = "group", value_name = "GROUP")]
    groups: Vec<String>,
    /// Every group of the cluster.
    #[arg(long, conflicts_with = "groups")]
    all: bool,
    /// A partition paused on purpose: GROUP:TOPIC:PARTITION or GROUP:TOPIC:* (repeatable); shown PAUSED, not STALL/STOP.
    #[arg(long, value_name = "TARGET")]
    paused: Vec<Target>,
    /// A partition draining for a pause, same form as --paused (repeatable).
    #[arg(long, value_name = "TARGET")]
    draining: Vec<Target>,
    /// Time lag: read (age of the record at the committed offset), estimate (from sampled log ends), off.
    #[arg(long, default_value = "read")]
    time_lag: TimeLagMode,
    /// Health window in seconds.
    #[arg(long, default_value_t = 300.0, value_name = "SECS")]
    window: f64,
    /// Samples needed before STALL/STOP/WARN can be decided.
    #[arg(long, default_value_t = 5)]
    min_samples: usize,
}

#[derive(clap::Args)]
struct ShowArgs {
    #[command(flatten)]
    common: Common,
    /// Print JSON instead of a table (one document per sample with --watch).
    #[arg(long)]
    json: bool,
    /// Sample again every SECS seconds (health needs several samples).
    #[arg(long, value_name = "SECS")]
    watch: Option<f64>,
}

#[derive(clap::Args)]
struct ServeArgs {
    #[command(flatten)]
    common: Common,
    /// Address to serve on.
    #[arg(long, default_value = "127.0.0.1:9464")]
    listen: SocketAddr,
    /// Seconds between samples.
    #[arg(long, default_value_t = 15.0, value_name = "SECS")]
    interval: f64,
    /// The control plane's status topic: partitions its instances report
    /// paused or draining read PAUSED / DRAINING, not STALL or STOP.
    #[arg(long)]
    status_topic: Option<String>,
}

pub fn run(args: Args) -> Outcome {
    let result = match args.serve {
        Some(Sub::Serve(a)) => serve(a),
        None => show(args.show),
    };
    result.map_err(|e| match e.downcast_ref::<LagError>() {
        Some(LagError::NoGroups) => Failure::Usage(format!("{e} (--group G or --all)")),
        _ => e.into(),
    })
}

fn secs(s: f64, what: &str) -> anyhow::Result<Duration> {
    if !(s.is_finite() && s > 0.0) {
        return Err(UsageError(format!("{what} must be a positive number of seconds")).into());
    }
    Ok(Duration::from_secs_f64(s))
}

fn sampler(c: &Common) -> anyhow::Result<Sampler> {
    let mut config = if c.all {
        SamplerConfig::all(c.kafka.connection()?)
    } else {
        SamplerConfig::new(c.kafka.connection()?, c.groups.clone())
    };
    config.window = WindowConfig {
        span: secs(c.window, "--window")?,
        min_samples: c.min_samples.max(1),
    };
    config.time_lag = c.time_lag;
    let mut sampler = Sampler::new(config)?;
    sampler.set_intents(intents(c));
    Ok(sampler)
}

fn intents(c: &Common) -> Intents {
    let mut i = Intents::default();
    c.paused.iter().cloned().for_each(|t| i.pause(t));
    c.draining.iter().cloned().for_each(|t| i.drain(t));
    i
}

/// `base` plus the partitions the live instances report paused or draining.
fn intents_from_status(mut base: Intents, statuses: &[InstanceStatus]) -> Intents {
    for s in statuses {
        for l in &s.listeners {
            let Some(group) = &l.group else { continue };
            for p in &l.partitions {
                let t = Target {
                    group: group.clone(),
                    topic: p.topic.clone(),
                    partition: Some(p.partition),
                };
                match p.state.as_str() {
                    "paused" => base.pause(t),
                    "draining" => base.drain(t),
                    _ => {}
                }
            }
        }
    }
    base
}

fn show(a: ShowArgs) -> anyhow::Result<()> {
    let watch = a.watch.map(|w| secs(w, "--watch")).transpose()?;
    let mut sampler = sampler(&a.common)?;
    let clear = watch.is_some() && !a.json && std::io::stdout().is_terminal();
    loop {
        let report = sampler.sample()?;
        if a.json {
            println!("{}", report.to_json());
        } else {
            if clear {
                print!("\x1b[2J\x1b[H");
            }
            if watch.is_some() {
                println!("{}", chrono::Local::now().format("%Y-%m-%d %H:%M:%S"));
            }
            print!("{}", report.table());
        }
        match watch {
            Some(every) => std::thread::sleep(every),
            None => return Ok(()),
        }
    }
}

fn serve(a: ServeArgs) -> anyhow::Result<()> {
    let c = &a.common;
    let mut sampler = if c.all {
        SamplerConfig::all(c.kafka.connection()?)
    } else {
        SamplerConfig::new(c.kafka.connection()?, c.groups.clone())
    };
    if sampler.groups == GroupSelection::Named(Vec::new()) {
        return Err(LagError::NoGroups.into());
    }
    sampler.window = WindowConfig {
        span: secs(c.window, "--window")?,
        min_samples: c.min_samples.max(1),
    };
    sampler.time_lag = c.time_lag;
    let config = ServeConfig {
        sampler,
        listen: a.listen,
        interval: secs(a.interval, "--interval")?,
    };
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let server = Server::start(config).await?;
        server.set_intents(intents(c));
        if let Some(topic) = a.status_topic.clone() {
            let (b, handle) = (c.kafka.connection()?, server.intents_handle());
            let flags = intents(c);
            let tail = tokio::task::spawn_blocking(move || StatusTail::start(&b, &topic)).await??;
            tokio::spawn(async move {
                loop {
                    let now = switchyard_control::model::now_ms();
                    let statuses: Vec<InstanceStatus> = tail
                        .latest()
                        .into_values()
                        .filter(|s| !s.is_gone(now))
                        .collect();
                    handle.set(intents_from_status(flags.clone(), &statuses));
                    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                }
            });
        }
        println!(
            "lag exporter: http://{}/metrics (healthz: /healthz)",
            server.local_addr()
        );
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        server.shutdown().await;
        Ok(())
    })
}
