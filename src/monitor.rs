//! One scheduled monitoring run (`mxprobe monitor`): each scanned domain is compared with its
//! previous run, stored, and alerted on when something changed; then every pending alert is
//! delivered, and the Prometheus textfile written.
//!
//! The order makes alerts durable: a domain's snapshot and its alert (with one pending
//! delivery per channel) are stored in one transaction *before* any delivery is tried, and
//! a delivery is marked done only after the channel accepted it. A run killed at any point
//! loses nothing; the next run delivers what is still pending, from any earlier run. A
//! failing channel is retried ([`RetryPolicy`]) and then left pending; it never fails the
//! run.
//!
//! I/O: the history database (through [`History`]), the channels (through [`Channel`]) and
//! the textfile (through [`metrics::write_atomically`]).

use std::path::PathBuf;

use time::OffsetDateTime;

use crate::alert::{Alert, DomainStatus, Snapshot};
use crate::changes::{ChangeOptions, Past, detect};
use crate::history::{History, HistoryError, RunId};
use crate::metrics::{self, MetricsOptions, RunInfo};
use crate::notify::{Channel, RetryPolicy, deliver_with_retry};
use crate::tls::Anchors;

/// How many stored runs of a domain change detection sees: the previous one and those
/// before it, for places the previous run could not observe.
const RECENT_RUNS: usize = 6;

/// How a monitoring run decides and delivers.
#[derive(Debug)]
pub struct MonitorConfig {
    /// Certificate expiry thresholds in days (e.g. 21 and 7).
    pub expiry_warn_days: Vec<u32>,
    /// Repeat open failures after this long without an alert.
    pub remind_every: Option<time::Duration>,
    /// Alert after this many inconclusive runs in a row.
    pub inconclusive_after: u32,
    /// Where alerts go.
    pub channels: Vec<Channel>,
    /// How patiently each delivery is tried within a run.
    pub retry: RetryPolicy,
    /// The Prometheus textfile, if one is wanted.
    pub prometheus: Option<(PathBuf, MetricsOptions)>,
}

/// What became of the deliveries of one run.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DeliveryReport {
    /// Alerts accepted by a channel (one per alert and channel).
    pub delivered: usize,
    /// Deliveries that failed this time and stay pending: the channel's target and why.
    pub failed: Vec<String>,
}

/// A monitoring run in progress.
#[derive(Debug)]
pub struct Monitor {
    history: History,
    run: RunId,
    started: std::time::Instant,
    config: MonitorConfig,
    /// What the textfile needs, kept only when one is written.
    snapshots: Vec<Snapshot>,
    domains: u64,
}

impl Monitor {
    /// Starts a run in `history` (already opened, so its lock is held).
    pub fn start(
        mut history: History,
        config: MonitorConfig,
        started_at: OffsetDateTime,
    ) -> Result<Self, HistoryError> {
        let run = history.begin_run(started_at)?;
        Ok(Self {
            history,
            run,
            started: std::time::Instant::now(),
            config,
            snapshots: Vec::new(),
            domains: 0,
        })
    }

    /// Compares one domain's snapshot with its previous run, stores it, and returns the
    /// alert raised for it, if anything changed.
    pub fn observe(
        &mut self,
        snapshot: Snapshot,
        anchors: &Anchors,
        now: OffsetDateTime,
    ) -> Result<Option<Alert>, HistoryError> {
        let domain = snapshot.facts.domain.clone();
        // The previous run, and a few before it for what the previous run could not observe
        // (an address that timed out, a lookup that failed).
        let mut recent = self
            .history
            .recent(&domain, RECENT_RUNS)?
            .into_iter()
            .map(|(_, s)| s);
        let previous = recent.next();
        let past = Past {
            earlier: recent.collect(),
            inconclusive_streak: self.history.inconclusive_streak(&domain)?,
            last_alert_at: self.history.last_alert_at(&domain)?,
            previous,
        };
        let options = ChangeOptions {
            now,
            expiry_warn_days: self.config.expiry_warn_days.clone(),
            remind_every: self.config.remind_every,
            inconclusive_after: self.config.inconclusive_after,
            anchors,
        };
        let changes = detect(&past, &snapshot, &options);
        let alert = (!changes.is_empty()).then(|| {
            Alert::new(
                domain,
                snapshot.facts.observed_at,
                DomainStatus::of(&snapshot.verdict),
                past.previous.as_ref().map(|p| DomainStatus::of(&p.verdict)),
                changes,
            )
        });
        let names: Vec<&str> = self.config.channels.iter().map(Channel::name).collect();
        self.history
            .record(self.run, &snapshot, alert.as_ref(), &names)?;
        self.domains += 1;
        if self.config.prometheus.is_some() {
            self.snapshots.push(snapshot);
        }
        Ok(alert)
    }

    /// Delivers every pending alert (of this run and earlier ones) on every channel.
    pub async fn deliver(&mut self) -> Result<DeliveryReport, HistoryError> {
        let mut report = DeliveryReport::default();
        for channel in &self.config.channels {
            for (id, alert) in self.history.pending(channel.name())? {
                let at = OffsetDateTime::now_utc();
                match deliver_with_retry(channel, &alert, &self.config.retry).await {
                    Ok(()) => {
                        self.history.mark_delivered(id, channel.name(), at)?;
                        report.delivered += 1;
                    }
                    Err(e) => {
                        let why = e.to_string();
                        self.history.mark_failed(id, channel.name(), at, &why)?;
                        report.failed.push(format!(
                            "{} alert for {}: {why}",
                            channel.name(),
                            alert.domain
                        ));
                    }
                }
            }
        }
        Ok(report)
    }

    /// Ends the run: records its end and writes the textfile.
    pub fn finish(mut self, finished_at: OffsetDateTime) -> Result<(), MonitorError> {
        self.history.finish_run(self.run, finished_at)?;
        if let Some((path, options)) = &self.config.prometheus {
            let refs: Vec<&Snapshot> = self.snapshots.iter().collect();
            let text = metrics::render(
                &refs,
                &RunInfo {
                    finished_at,
                    duration: self.started.elapsed(),
                    domains: self.domains,
                },
                options,
            );
            metrics::write_atomically(path, &text)?;
        }
        Ok(())
    }
}

/// Why a run could not be finished.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MonitorError {
    /// The history database failed.
    #[error(transparent)]
    History(#[from] HistoryError),
    /// The Prometheus textfile could not be written.
    #[error("--prometheus: {0}")]
    Metrics(#[from] metrics::WriteError),
}
