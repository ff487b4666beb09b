//! `mxprobe worker`: takes the targets of a run from Redis, scans them through the bulk
//! engine with politeness and probes shared across every worker of the run, and stores each
//! result (once per domain) as it finishes.
//!
//! The targets are a stream over the queue ([`Worker::next`]); each finished domain goes to a
//! task that stores it and acknowledges its entry in one step; a heartbeat keeps this worker
//! listed as live and the entries it holds its own. At SIGINT or SIGTERM the bulk engine stops
//! taking targets and gives the domains in flight a grace period; those it abandons, and
//! those read ahead, are given back to the queue.

use std::cell::Cell;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context as _;
use futures::StreamExt as _;

use super::queue::{Notes, connect};
use super::{App, Outcome, runtime};
use crate::cli::WorkerArgs;
use crate::config::polite_config;
use crate::progress::{Progress, ProgressMode, Tally, Total};
use mxprobe_probe::bulk::{self, BulkOptions, DomainOutcome, Event};
use mxprobe_probe::scan::{Scanner, Sharing};
use mxprobe_queue::sharing::{RedisProbes, RedisSlots};
use mxprobe_queue::work::{Entry, Worker, WorkerOptions};
use mxprobe_queue::{QueueError, StoredOutcome, StoredRecord};

/// Runs `mxprobe worker`.
pub fn run(args: WorkerArgs, app: &App) -> anyhow::Result<Outcome> {
    let config = polite_config(
        &args.probe,
        args.bulk.per_ip,
        args.bulk.per_ip_rate,
        &app.env,
    )?;
    let deadline = Duration::from_secs(args.bulk.deadline.max(1));
    let options = BulkOptions {
        concurrency: args.bulk.concurrency as usize,
        domain_deadline: deadline,
        ..BulkOptions::default()
    };
    let worker_options = WorkerOptions {
        claim_after: deadline + Duration::from_secs(args.claim_grace),
        follow: args.follow,
    };
    let progress = if args.quiet {
        ProgressMode::Quiet
    } else if app.stderr_is_terminal {
        ProgressMode::Bar
    } else {
        ProgressMode::Plain
    };
    let notes = Notes::new();
    let result = runtime()?.block_on(async {
        let store = connect(&args.redis, &notes, app).await?;
        let probe_ttl = config.probe_cache.ttl;
        let sharing = Sharing {
            slots: Some(Arc::new(RedisSlots::new(
                store.clone(),
                config.politeness.per_ip,
                config.politeness.per_ip_rate,
            ))),
            probes: Some(Arc::new(RedisProbes::new(store.clone(), probe_ttl))),
        };
        let scanner = Arc::new(
            Scanner::new(config)
                .context("setting up the DNS resolver")?
                .with_sharing(sharing),
        );
        let consumer = format!(
            "{}-{}",
            app.env.hostname.as_deref().unwrap_or("worker"),
            std::process::id()
        );
        let worker = Arc::new(Worker::join(store.clone(), consumer, worker_options).await?);
        app.note(format_args!(
            "mxprobe worker {}: joined run {} at {}",
            worker.consumer(),
            args.redis.run,
            store.url()
        ));
        let heartbeat = tokio::spawn({
            let worker = Arc::clone(&worker);
            async move {
                loop {
                    tokio::time::sleep(worker.heartbeat_interval()).await;
                    let _ = worker.heartbeat().await;
                }
            }
        });
        let (results, mut to_store) =
            tokio::sync::mpsc::unbounded_channel::<(Entry, StoredRecord)>();
        let storer = tokio::spawn({
            let worker = Arc::clone(&worker);
            async move {
                let (mut stored, mut again) = (0u64, 0u64);
                while let Some((entry, record)) = to_store.recv().await {
                    if worker.store(&entry, &record).await? {
                        stored += 1;
                    } else {
                        again += 1;
                    }
                }
                Ok::<_, QueueError>((stored, again))
            }
        });
        let read_error: Arc<Mutex<Option<QueueError>>> = Arc::default();
        let targets = futures::stream::unfold(Arc::clone(&worker), {
            let read_error = Arc::clone(&read_error);
            move |worker| {
                let read_error = Arc::clone(&read_error);
                async move {
                    match worker.next().await {
                        Ok(Some(entry)) => {
                            let domain = entry.domain.clone();
                            Some(((entry, domain), worker))
                        }
                        Ok(None) => None,
                        Err(e) => {
                            *read_error.lock().unwrap_or_else(PoisonError::into_inner) = Some(e);
                            None
                        }
                    }
                }
            }
        })
        .boxed();
        let display = std::cell::RefCell::new(Progress::new(progress, Total::Unknown));
        let tally = Cell::new(Tally::default());
        let stats = bulk::run(
            Arc::clone(&scanner),
            targets,
            &options,
            app.clock(),
            app.shutdown(),
            |event| match event {
                Event::Finished {
                    id,
                    domain,
                    outcome,
                    progress: p,
                } => {
                    tally.set(Tally {
                        done: p.done,
                        failing: p.failing,
                        inconclusive: p.inconclusive,
                    });
                    display.borrow_mut().update(tally.get());
                    let outcome = match outcome {
                        DomainOutcome::Scanned(report) => StoredOutcome::Scanned { report },
                        DomainOutcome::TimedOut { deadline } => StoredOutcome::TimedOut {
                            deadline_secs: deadline.as_secs(),
                        },
                        DomainOutcome::Crashed { message } => StoredOutcome::Crashed { message },
                    };
                    let line = id.line;
                    // The storer ends only after this loop: sending cannot fail.
                    let _ = results.send((
                        id,
                        StoredRecord::Domain {
                            line,
                            domain,
                            outcome,
                        },
                    ));
                    notes.show(app);
                }
                Event::Stopping { in_flight } => app.note(format_args!(
                    "mxprobe worker: stopping: finishing {in_flight} domain(s) in flight, then \
                     giving back the rest"
                )),
                // Still held: given back below.
                Event::Abandoned { .. } => {}
                Event::Started { .. } => {}
            },
        )
        .await;
        display.into_inner().finish(tally.get());
        drop(results);
        let stored = storer.await.context("the task storing results stopped")?;
        // What is still held (abandoned at shutdown, read ahead and not started) goes back.
        let give_back = worker.held();
        let given = if give_back.is_empty() {
            0
        } else {
            worker.give_back(&give_back).await?
        };
        heartbeat.abort();
        let (stored, again) = stored?;
        let _ = worker.leave().await;
        notes.show(app);
        if let Some(e) = read_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            return Err(anyhow::Error::new(e).context(format!(
                "mxprobe worker {}: reading the queue (stored {stored} result(s) before)",
                worker.consumer()
            )));
        }
        let rejected = worker.rejected();
        app.note(format_args!(
            "mxprobe worker {}: {} domain(s) scanned, {stored} stored, {again} already stored \
             by another delivery, {given} given back{}; {} SMTP probe(s) made here, {} shared; \
             {:.1} s",
            worker.consumer(),
            stats.done,
            if rejected > 0 {
                format!(", {rejected} malformed entr(ies) dropped")
            } else {
                String::new()
            },
            stats.smtp_probes,
            stats.smtp_probes_shared,
            stats.elapsed.as_secs_f64()
        ));
        Ok(if stats.interrupted {
            Outcome::Interrupted
        } else {
            Outcome::Pass
        })
    });
    notes.show(app);
    result
}
