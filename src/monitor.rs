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
//! Delivery is bounded in time: the channels are served side by side, each attempt by the
//! channel's own timeout, and all of them by one deadline per run
//! ([`MonitorConfig::delivery_deadline`]). A channel that times out is not tried again in
//! this run; what is not delivered by the deadline stays pending for the next run, so a dead
//! receiver can neither stretch a run into the next one nor hold back the other channels.
//!
//! I/O: the history database (through [`History`]), the channels (through [`Channel`]) and
//! the textfile (through [`metrics::write_atomically`]).

use std::path::PathBuf;
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::mpsc;

use crate::history::{AlertId, History, HistoryError, RunId};
use crate::metrics::{self, MetricsOptions, RunInfo};
use crate::notify::{Channel, RetryPolicy, deliver_with_retry};
use mxprobe_core::alert::Alert;
use mxprobe_core::changes::{ChangeOptions, Past, detect};
use mxprobe_core::finding::Severity;
use mxprobe_core::result::DomainResult;

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
    /// How long the run may spend delivering, all channels together; what is not delivered
    /// by then stays pending.
    pub delivery_deadline: Duration,
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
    /// Deliveries not tried in this run and kept pending, per channel: how many and why
    /// (the channel timed out, or the deadline came).
    pub postponed: Vec<String>,
}

/// What happened to one pending delivery, or to the rest of a channel's.
enum Outcome {
    /// An alert was tried.
    Tried {
        id: AlertId,
        channel: &'static str,
        domain: String,
        at: OffsetDateTime,
        result: Result<(), crate::notify::DeliveryError>,
    },
    /// The channel's remaining alerts were not tried.
    Postponed {
        channel: &'static str,
        target: String,
        count: usize,
        why: String,
    },
}

/// A monitoring run in progress.
#[derive(Debug)]
pub struct Monitor {
    history: History,
    run: RunId,
    started: std::time::Instant,
    config: MonitorConfig,
    /// What the textfile needs, kept only when one is written.
    snapshots: Vec<DomainResult>,
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
        snapshot: DomainResult,
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
        };
        let changes = detect(&past, &snapshot, &options);
        let alert = (!changes.is_empty()).then(|| {
            Alert::new(
                domain,
                snapshot.facts.observed_at,
                snapshot.verdict.status(Severity::Error),
                past.previous
                    .as_ref()
                    .map(|p| p.verdict.status(Severity::Error)),
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

    /// The domain's status in its latest `limit` runs (this one once observed), oldest
    /// first.
    pub fn statuses(
        &self,
        domain: &mxprobe_core::domain::DomainName,
        limit: usize,
    ) -> Result<Vec<(OffsetDateTime, mxprobe_core::alert::DomainStatus)>, HistoryError> {
        self.history.statuses(domain, limit)
    }

    /// Delivers the pending alerts (of this run and earlier ones), oldest first, every
    /// channel side by side, until [`MonitorConfig::delivery_deadline`]. Each outcome is
    /// recorded as it comes; a channel that times out is left for the next run, and so is
    /// whatever the deadline leaves untried.
    pub async fn deliver(&mut self) -> Result<DeliveryReport, HistoryError> {
        let deadline = tokio::time::Instant::now() + self.config.delivery_deadline;
        let mut work = Vec::new();
        for channel in &self.config.channels {
            work.push((channel, self.history.pending(channel.name())?));
        }
        let (sender, mut outcomes) = mpsc::unbounded_channel();
        let retry = self.config.retry;
        let limit = self.config.delivery_deadline;
        let channels = futures::future::join_all(work.into_iter().map(|(channel, pending)| {
            deliver_on(channel, pending, retry, deadline, limit, sender.clone())
        }));
        // Only the channels' clones remain: the receiver ends when the last channel does.
        drop(sender);
        let history = &mut self.history;
        let record = async move {
            let mut report = DeliveryReport::default();
            while let Some(outcome) = outcomes.recv().await {
                match outcome {
                    Outcome::Tried {
                        id,
                        channel,
                        at,
                        result: Ok(()),
                        ..
                    } => {
                        history.mark_delivered(id, channel, at)?;
                        report.delivered += 1;
                    }
                    Outcome::Tried {
                        id,
                        channel,
                        domain,
                        at,
                        result: Err(e),
                    } => {
                        let why = e.to_string();
                        history.mark_failed(id, channel, at, &why)?;
                        report
                            .failed
                            .push(format!("{channel} alert for {domain}: {why}"));
                    }
                    Outcome::Postponed {
                        channel,
                        target,
                        count,
                        why,
                    } => report.postponed.push(format!(
                        "{channel} {target}: {count} more alert(s) not tried in this run ({why}); \
                         they stay pending for the next run"
                    )),
                }
            }
            Ok::<_, HistoryError>(report)
        };
        // The record ends only after the channels do, unless the database fails: then the
        // deliveries still going are abandoned (they stay pending).
        match futures::future::select(std::pin::pin!(channels), std::pin::pin!(record)).await {
            futures::future::Either::Left((_, record)) => record.await,
            futures::future::Either::Right((report, _abandoned)) => report,
        }
    }

    /// Ends the run: records its end and writes the textfile.
    pub fn finish(mut self, finished_at: OffsetDateTime) -> Result<(), MonitorError> {
        self.history.finish_run(self.run, finished_at)?;
        if let Some((path, options)) = &self.config.prometheus {
            let refs: Vec<&DomainResult> = self.snapshots.iter().collect();
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

/// Delivers `pending` on `channel` one alert after the other, sending each outcome; stops
/// at the first timeout or at `deadline` (`limit` after the start), and sends how many were
/// left untried.
async fn deliver_on(
    channel: &Channel,
    pending: Vec<(AlertId, Alert)>,
    retry: RetryPolicy,
    deadline: tokio::time::Instant,
    limit: Duration,
    outcomes: mpsc::UnboundedSender<Outcome>,
) {
    let total = pending.len();
    for (done, (id, alert)) in pending.into_iter().enumerate() {
        if tokio::time::Instant::now() >= deadline {
            postpone(channel, total - done, deadline_passed(limit), &outcomes);
            return;
        }
        let at = OffsetDateTime::now_utc();
        let result = deliver_with_retry(channel, &alert, &retry, deadline).await;
        let timed_out = result.as_ref().is_err_and(|e| e.is_timeout());
        // The receiver lives as long as any channel: sending cannot fail.
        let _ = outcomes.send(Outcome::Tried {
            id,
            channel: channel.name(),
            domain: alert.domain.to_string(),
            at,
            result,
        });
        let rest = total - done - 1;
        if timed_out && rest > 0 {
            let why = if tokio::time::Instant::now() >= deadline {
                deadline_passed(limit)
            } else {
                "the channel did not answer in time".to_owned()
            };
            postpone(channel, rest, why, &outcomes);
            return;
        }
    }
}

fn deadline_passed(limit: Duration) -> String {
    format!("the delivery deadline of {limit:?} for the run passed")
}

fn postpone(
    channel: &Channel,
    count: usize,
    why: String,
    outcomes: &mpsc::UnboundedSender<Outcome>,
) {
    let _ = outcomes.send(Outcome::Postponed {
        channel: channel.name(),
        target: channel.target(),
        count,
        why,
    });
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
