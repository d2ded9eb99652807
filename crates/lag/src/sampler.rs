//! Sampling over time: each [`Sampler::sample`] reads the offsets of the
//! selected groups ([`crate::offsets`]), pushes one [`Sample`] into the
//! [`Window`] of every partition, evaluates it ([`crate::health`]) with the
//! current [`Intents`], adds the time lag ([`crate::time_lag`]) and returns
//! the [`Report`].
//!
//! The sampler keeps its Kafka clients and windows between samples, so the
//! CLI's `--watch`, `lag serve` and tests all call [`Sampler::sample`] at
//! their own interval. Windows of partitions that disappear are forgotten.
//!
//! ```no_run
//! use std::time::Duration;
//! use switchyard_lag::{Sampler, SamplerConfig, WindowConfig};
//!
//! let config = SamplerConfig::new("127.0.0.1:9092", ["billing"])
//!     .with_window(WindowConfig { span: Duration::from_secs(60), min_samples: 4 });
//! let mut sampler = Sampler::new(config)?;
//! sampler.intents_mut().pause("billing:invoices:*".parse()?);
//! loop {
//!     let report = sampler.sample()?;
//!     println!("{} {}", report.groups[0].lag, report.groups[0].health);
//!     std::thread::sleep(Duration::from_secs(15));
//! }
//! # Ok::<(), switchyard_lag::LagError>(())
//! ```

use std::collections::HashMap;
use std::time::Duration;

use switchyard_config::Connection;

use crate::health::{Intents, Sample, Window, WindowConfig};
use crate::offsets::OffsetReader;
use crate::report::{GroupReport, PartitionReport, Report};
use crate::time_lag::{estimate_ms, RecordTimeReader, TimeLagMode};
use crate::{now_ms, LagError};

/// Which groups to sample.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupSelection {
    /// These groups.
    Named(Vec<String>),
    /// Every group the cluster lists, at each sample.
    All,
}

/// How to sample.
#[derive(Debug, Clone)]
pub struct SamplerConfig {
    /// The cluster's connection (bootstrap servers, security).
    pub connection: Connection,
    /// Groups.
    pub groups: GroupSelection,
    /// The health window.
    pub window: WindowConfig,
    /// How to get the time lag.
    pub time_lag: TimeLagMode,
    /// The cap on the wait for records in [`TimeLagMode::Read`].
    pub time_lag_wait: Duration,
    /// Bound on every Kafka request.
    pub request_timeout: Duration,
}

impl SamplerConfig {
    /// Named groups, default window, time lag read, 2 s read cap, 10 s requests.
    /// `connection` is a [`Connection`] or a bootstrap list for a plaintext
    /// one.
    pub fn new<I: IntoIterator<Item = S>, S: Into<String>>(
        connection: impl Into<Connection>,
        groups: I,
    ) -> SamplerConfig {
        SamplerConfig {
            connection: connection.into(),
            groups: GroupSelection::Named(groups.into_iter().map(Into::into).collect()),
            window: WindowConfig::default(),
            time_lag: TimeLagMode::Read,
            time_lag_wait: Duration::from_secs(2),
            request_timeout: Duration::from_secs(10),
        }
    }

    /// Every group of the cluster.
    pub fn all(connection: impl Into<Connection>) -> SamplerConfig {
        SamplerConfig {
            groups: GroupSelection::All,
            ..SamplerConfig::new(connection, Vec::<String>::new())
        }
    }

    /// Set the health window.
    pub fn with_window(mut self, window: WindowConfig) -> SamplerConfig {
        self.window = window;
        self
    }

    /// Set the time-lag mode.
    pub fn with_time_lag(mut self, mode: TimeLagMode) -> SamplerConfig {
        self.time_lag = mode;
        self
    }
}

/// Samples groups repeatedly; see the module docs.
pub struct Sampler {
    config: SamplerConfig,
    reader: OffsetReader,
    times: Option<RecordTimeReader>,
    windows: HashMap<(String, String, i32), Window>,
    intents: Intents,
}

impl Sampler {
    /// Create the clients (nothing is requested yet).
    pub fn new(config: SamplerConfig) -> Result<Sampler, LagError> {
        if config.groups == GroupSelection::Named(Vec::new()) {
            return Err(LagError::NoGroups);
        }
        let reader = OffsetReader::new(&config.connection, config.request_timeout)?;
        let times = match config.time_lag {
            TimeLagMode::Read => Some(RecordTimeReader::new(
                &config.connection,
                config.time_lag_wait,
            )?),
            _ => None,
        };
        Ok(Sampler {
            config,
            reader,
            times,
            windows: HashMap::new(),
            intents: Intents::default(),
        })
    }

    /// The paused and draining partitions, to change them between samples.
    pub fn intents_mut(&mut self) -> &mut Intents {
        &mut self.intents
    }

    /// Replace the paused and draining partitions.
    pub fn set_intents(&mut self, intents: Intents) {
        self.intents = intents;
    }

    /// The window of one partition of one group.
    pub fn window(&self, group: &str, topic: &str, partition: i32) -> Option<&Window> {
        self.windows
            .get(&(group.to_string(), topic.to_string(), partition))
    }

    /// Take one sample of every selected group.
    pub fn sample(&mut self) -> Result<Report, LagError> {
        let groups = match &self.config.groups {
            GroupSelection::Named(g) => g.clone(),
            GroupSelection::All => self.reader.list_groups()?,
        };
        let read = self.reader.fetch(&groups)?;
        let at_ms = now_ms();
        let mut seen = HashMap::new();
        let mut reports = Vec::with_capacity(read.len());
        for g in read {
            let mut parts = Vec::with_capacity(g.partitions.len());
            for p in g.partitions {
                let key = (g.group.clone(), p.topic.clone(), p.partition);
                let w = self
                    .windows
                    .entry(key.clone())
                    .or_insert_with(|| Window::new(self.config.window));
                w.push(Sample {
                    at_ms,
                    log_start: p.log_start,
                    log_end: p.log_end,
                    committed: p.committed,
                    owned: p.owner.is_some() || (!g.assignments_known && g.members > 0),
                });
                let health = w.evaluate(self.intents.intent(&g.group, &p.topic, p.partition));
                let lag = p.lag();
                let time_lag_ms = match (self.config.time_lag, lag, p.committed) {
                    (TimeLagMode::Off, _, _) | (_, None, _) | (_, _, None) => None,
                    (_, Some(0), _) => Some(0),
                    (TimeLagMode::Estimate, _, Some(c)) => {
                        let ends: Vec<(i64, i64)> =
                            w.samples().map(|s| (s.at_ms, s.log_end)).collect();
                        estimate_ms(&ends, c, at_ms)
                    }
                    (TimeLagMode::Read, _, _) => None, // filled in below
                };
                seen.insert(key, ());
                parts.push(PartitionReport {
                    group: g.group.clone(),
                    topic: p.topic,
                    partition: p.partition,
                    log_start: p.log_start,
                    log_end: p.log_end,
                    committed: p.committed,
                    lag,
                    time_lag_ms,
                    owner: p.owner,
                    health: health.status,
                    reason: health.reason,
                });
            }
            let mut report = GroupReport::new(&g.group, &g.state, g.members, parts);
            report.member_list = g.member_list;
            reports.push(report);
        }
        self.windows.retain(|k, _| seen.contains_key(k));
        if let Some(times) = &self.times {
            self.read_time_lags(times, &mut reports, at_ms)?;
        }
        Ok(Report {
            at_ms,
            groups: reports,
        })
    }

    fn read_time_lags(
        &self,
        times: &RecordTimeReader,
        reports: &mut [GroupReport],
        at_ms: i64,
    ) -> Result<(), LagError> {
        // One read per (topic, partition, offset), shared by the groups that sit at the same offset;
        // the offsets of one partition are read in one forward pass.
        let mut wanted: Vec<(String, i32, i64)> = reports
            .iter()
            .flat_map(|g| g.partitions.iter())
            .filter(|p| p.lag.unwrap_or(0) > 0)
            .filter_map(|p| Some((p.topic.clone(), p.partition, p.committed?.max(p.log_start))))
            .collect();
        wanted.sort();
        wanted.dedup();
        let stamps = times.timestamps(&wanted)?;
        for g in reports.iter_mut() {
            for p in g.partitions.iter_mut().filter(|p| p.lag.unwrap_or(0) > 0) {
                let Some(c) = p.committed else { continue };
                if let Some(ts) = stamps.get(&(p.topic.clone(), p.partition, c.max(p.log_start))) {
                    p.time_lag_ms = Some((at_ms - ts).max(0));
                }
            }
            let members = std::mem::take(&mut g.member_list);
            *g = GroupReport::new(
                &g.group,
                &g.state,
                g.members,
                std::mem::take(&mut g.partitions),
            );
            g.member_list = members;
        }
        Ok(())
    }
}
