//! Bulk scans: many domains through one shared [`Scanner`], a bounded number at a time,
//! each result handed out as soon as its domain is done, and a clean stop on request.
//!
//! This module owns the run loop only: how many domains are in flight, the per-domain
//! deadline, the events, the shutdown with its grace period, and the run's counts. The
//! sharing of probes and the politeness towards mail servers live in the [`Scanner`]
//! ([`crate::scan`]), so a single-domain scan gets them too. It does no I/O of its own (the
//! scanner's adapters do); reading targets, writing results and drawing progress belong to
//! the caller, through the target stream and the [`Event`] callback.
//!
//! # The run ([`run`])
//! - Targets are taken lazily from a stream, one when a slot is free: at most
//!   [`BulkOptions::concurrency`] domains are in flight, each in its own tokio task (so a
//!   multi-threaded runtime spreads the TLS work over its cores).
//! - Each domain is scanned with [`Scanner::scan`] at the time the caller's clock gives
//!   when it starts. A domain that passes [`BulkOptions::domain_deadline`] ends as
//!   [`DomainOutcome::TimedOut`]: a result, counted as inconclusive, never lost.
//! - Results are handed to the callback as [`Event::Finished`] in the order domains finish,
//!   not the input order. Nothing is kept per finished domain: memory holds the in-flight
//!   domains, the scanner's bounded caches and the counts, whatever the number of targets.
//! - When the `shutdown` future resolves, no more targets are taken ([`Event::Stopping`]);
//!   the domains in flight get [`BulkOptions::grace`] to finish (each one that does is a
//!   normal [`Event::Finished`]); the rest are cancelled and each is reported once as
//!   [`Event::Abandoned`], so a resumed run can do them again. Every started domain ends in
//!   exactly one `Finished` or `Abandoned` event.

use std::collections::HashMap;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use time::OffsetDateTime;
use tokio::task::{self, JoinError, JoinSet};
use tokio::time::{Instant, timeout, timeout_at};

use crate::scan::Scanner;
use mxprobe_core::dns::Resolve;
use mxprobe_core::domain::DomainName;
use mxprobe_core::finding::Severity;
use mxprobe_core::result::DomainResult;

/// How a bulk run proceeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BulkOptions {
    /// At most this many domains in flight (0 is taken as 1).
    pub concurrency: usize,
    /// The longest one domain may take in all, DNS, policy fetch and SMTP together (waits
    /// for a connection slot at a busy address included).
    pub domain_deadline: Duration,
    /// After shutdown is requested, how long the domains in flight may still take before
    /// they are abandoned.
    pub grace: Duration,
}

impl Default for BulkOptions {
    /// 64 domains at once, five minutes per domain, five seconds of grace.
    fn default() -> Self {
        Self {
            concurrency: 64,
            domain_deadline: Duration::from_secs(300),
            grace: Duration::from_secs(5),
        }
    }
}

/// How one domain of a bulk run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DomainOutcome {
    /// Scanned: the facts and the verdict.
    Scanned(Box<DomainResult>),
    /// The domain passed its deadline before the scan ended: nothing can be said about it
    /// (inconclusive, not a failure).
    TimedOut {
        /// The deadline it passed.
        deadline: Duration,
    },
    /// The scan of this domain stopped on an internal error (a bug in mxprobe, never the
    /// network's doing); the run went on.
    Crashed {
        /// What the error said.
        message: String,
    },
}

impl DomainOutcome {
    /// Whether senders would fail on this domain: its verdict has an error finding.
    pub fn is_failing(&self) -> bool {
        match self {
            Self::Scanned(report) => report.verdict.fails(Severity::Error),
            Self::TimedOut { .. } | Self::Crashed { .. } => false,
        }
    }

    /// Whether something could not be tested: the verdict says so, or the domain timed out
    /// or crashed.
    pub fn is_inconclusive(&self) -> bool {
        match self {
            Self::Scanned(report) => report.verdict.inconclusive,
            Self::TimedOut { .. } | Self::Crashed { .. } => true,
        }
    }
}

/// The counts of a run so far, sent with every [`Event::Finished`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Progress {
    /// Domains started.
    pub started: u64,
    /// Domains finished (scanned, timed out or crashed).
    pub done: u64,
    /// Finished domains that are failing ([`DomainOutcome::is_failing`]).
    pub failing: u64,
    /// Finished domains where something could not be tested
    /// ([`DomainOutcome::is_inconclusive`]).
    pub inconclusive: u64,
    /// Domains in flight now.
    pub in_flight: usize,
}

/// What a bulk run reports while it runs. `Id` is the caller's name for a target (its input
/// line, say), handed back untouched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event<Id> {
    /// A domain was taken from the targets and its scan started.
    Started {
        /// The caller's id.
        id: Id,
        /// The domain.
        domain: DomainName,
    },
    /// A domain is done; sent as soon as it is, whatever the input order.
    Finished {
        /// The caller's id.
        id: Id,
        /// The domain.
        domain: DomainName,
        /// How it ended.
        outcome: DomainOutcome,
        /// The run's counts, this domain included.
        progress: Progress,
    },
    /// Shutdown was requested: no more targets are taken; `in_flight` domains get the grace
    /// period.
    Stopping {
        /// Domains in flight when the request came.
        in_flight: usize,
    },
    /// A domain in flight did not finish within the grace period and was cancelled; it has
    /// no result (redo it when resuming).
    Abandoned {
        /// The caller's id.
        id: Id,
        /// The domain.
        domain: DomainName,
    },
}

/// What a whole bulk run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BulkStats {
    /// Domains started.
    pub started: u64,
    /// Domains finished (scanned, timed out or crashed).
    pub done: u64,
    /// Finished domains that are failing.
    pub failing: u64,
    /// Finished domains where something could not be tested (timed-out ones included).
    pub inconclusive: u64,
    /// Finished domains that passed their deadline.
    pub timed_out: u64,
    /// Domains cancelled at shutdown.
    pub abandoned: u64,
    /// Whether the run stopped on the shutdown request (targets may remain untaken).
    pub interrupted: bool,
    /// SMTP probes made (one per distinct MX host and address not already known).
    pub smtp_probes: u64,
    /// Times a domain used a probe made for another domain.
    pub smtp_probes_shared: u64,
    /// SMTP connection attempts, retries of busy servers included.
    pub smtp_attempts: u64,
    /// Policy fetches made.
    pub policy_fetches: u64,
    /// From the start of the run to its end.
    pub elapsed: Duration,
}

/// Scans every target with `scanner` (see the module documentation for the rules), calling
/// `on_event` from this task as things happen, until the targets run out or `shutdown`
/// resolves. `clock` gives the time each domain is observed and judged at (the wall clock in
/// the binary, a fixed time in tests). Must run inside a tokio runtime.
pub async fn run<R, Id>(
    scanner: Arc<Scanner<R>>,
    targets: impl Stream<Item = (Id, DomainName)>,
    options: &BulkOptions,
    clock: impl Fn() -> OffsetDateTime,
    shutdown: impl Future<Output = ()>,
    mut on_event: impl FnMut(Event<Id>),
) -> BulkStats
where
    R: Resolve + 'static,
    Id: Clone,
{
    let started_at = Instant::now();
    let scanner_before = scanner.stats();
    let concurrency = options.concurrency.max(1);
    let mut targets = pin!(targets);
    let mut shutdown = pin!(shutdown);
    let mut tasks: JoinSet<DomainOutcome> = JoinSet::new();
    let mut run = Run {
        in_flight: HashMap::with_capacity(concurrency),
        progress: Progress::default(),
        timed_out: 0,
        abandoned: 0,
    };
    let mut exhausted = false;
    let mut interrupted = false;

    loop {
        let can_take = !exhausted && tasks.len() < concurrency;
        if !can_take && tasks.is_empty() {
            break;
        }
        tokio::select! {
            biased;
            () = &mut shutdown => {
                interrupted = true;
                break;
            }
            Some(joined) = tasks.join_next_with_id(), if !tasks.is_empty() => {
                run.end(joined, &mut on_event);
            }
            next = targets.next(), if can_take => match next {
                Some((id, domain)) => {
                    let scanner = Arc::clone(&scanner);
                    let deadline = options.domain_deadline;
                    let now = clock();
                    let scanned = domain.clone();
                    let handle = tasks.spawn(async move {
                        match timeout(deadline, scanner.scan(&scanned, now)).await {
                            Ok(report) => DomainOutcome::Scanned(Box::new(report)),
                            Err(_elapsed) => DomainOutcome::TimedOut { deadline },
                        }
                    });
                    run.progress.started += 1;
                    run.in_flight.insert(handle.id(), (id.clone(), domain.clone()));
                    run.progress.in_flight = run.in_flight.len();
                    on_event(Event::Started { id, domain });
                }
                None => exhausted = true,
            },
        }
    }

    if interrupted {
        on_event(Event::Stopping {
            in_flight: tasks.len(),
        });
        let grace_end = Instant::now() + options.grace;
        while let Ok(Some(joined)) = timeout_at(grace_end, tasks.join_next_with_id()).await {
            run.end(joined, &mut on_event);
        }
        tasks.abort_all();
        while let Some(joined) = tasks.join_next_with_id().await {
            run.end(joined, &mut on_event);
        }
    }

    let scanned = scanner.stats().since(&scanner_before);
    BulkStats {
        started: run.progress.started,
        done: run.progress.done,
        failing: run.progress.failing,
        inconclusive: run.progress.inconclusive,
        timed_out: run.timed_out,
        abandoned: run.abandoned,
        interrupted,
        smtp_probes: scanned.smtp_probes,
        smtp_probes_shared: scanned.smtp_probes_shared,
        smtp_attempts: scanned.smtp_attempts,
        policy_fetches: scanned.policy_fetches,
        elapsed: started_at.elapsed(),
    }
}

/// The loop's bookkeeping: the domains in flight (at most `concurrency`) and the counts.
struct Run<Id> {
    in_flight: HashMap<task::Id, (Id, DomainName)>,
    progress: Progress,
    timed_out: u64,
    abandoned: u64,
}

impl<Id> Run<Id> {
    /// Reports the end of one task: finished (with its outcome), crashed, or cancelled.
    fn end(
        &mut self,
        joined: Result<(task::Id, DomainOutcome), JoinError>,
        on_event: &mut impl FnMut(Event<Id>),
    ) {
        let (task_id, outcome) = match joined {
            Ok(done) => done,
            Err(e) if e.is_cancelled() => {
                if let Some((id, domain)) = self.in_flight.remove(&e.id()) {
                    self.abandoned += 1;
                    self.progress.in_flight = self.in_flight.len();
                    on_event(Event::Abandoned { id, domain });
                }
                return;
            }
            Err(e) => {
                let message = format!("the scan of this domain failed unexpectedly: {e}");
                (e.id(), DomainOutcome::Crashed { message })
            }
        };
        // Every task was registered when spawned, so the entry is there.
        let Some((id, domain)) = self.in_flight.remove(&task_id) else {
            return;
        };
        self.progress.done += 1;
        self.progress.failing += u64::from(outcome.is_failing());
        self.progress.inconclusive += u64::from(outcome.is_inconclusive());
        self.timed_out += u64::from(matches!(outcome, DomainOutcome::TimedOut { .. }));
        self.progress.in_flight = self.in_flight.len();
        on_event(Event::Finished {
            id,
            domain,
            outcome,
            progress: self.progress,
        });
    }
}
