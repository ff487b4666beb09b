//! `mxprobe queue push | collect | status`: a run in Redis, from the side of whoever starts
//! it and reads its results (the workers are `mxprobe worker`, in `worker.rs`).

use std::io::Write as _;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::Context as _;
use futures::StreamExt as _;
use serde_json::json;

use super::targets::{open_targets, target_stream};
use super::{App, Outcome, runtime};
use crate::cli::{
    Format, QueueCollectArgs, QueueCommand, QueuePushArgs, QueueStatusArgs, RedisArgs,
};
use crate::input::Target;
use crate::sinks::{ScanFiles, Sink};
use mxprobe_probe::bulk::{BulkStats, DomainOutcome};
use mxprobe_queue::work::{self, Pusher, RESULTS_BATCH, RunStatus};
use mxprobe_queue::{RedisUrl, Store, StoredOutcome, StoredRecord};

/// Runs `mxprobe queue …`.
pub fn run(command: QueueCommand, app: &App) -> anyhow::Result<Outcome> {
    match command {
        QueueCommand::Push(args) => push(args, app),
        QueueCommand::Collect(args) => collect(args, app),
        QueueCommand::Status(args) => status(args, app),
    }
}

/// Notes from the Redis connection (it went away, it came back), shown on standard error by
/// [`Notes::show`] from the command's own thread.
pub(crate) struct Notes {
    rx: mpsc::Receiver<String>,
    tx: mpsc::Sender<String>,
}

impl Notes {
    pub(crate) fn new() -> Self {
        let (tx, rx) = mpsc::channel();
        Self { rx, tx }
    }

    /// The callback the store calls.
    pub(crate) fn sender(&self) -> mxprobe_queue::Notes {
        let tx = self.tx.clone();
        Arc::new(move |text| {
            let _ = tx.send(text);
        })
    }

    /// Writes the notes received so far.
    pub(crate) fn show(&self, app: &App) {
        while let Ok(text) = self.rx.try_recv() {
            app.note(format_args!("mxprobe: {text}"));
        }
    }
}

/// Connects to the run `args` names. While Redis does not answer yet, the store's notes (it
/// says once that it keeps trying, and for how long) are shown as they come, so that a wrong
/// URL or a Redis that is down does not look like a hang.
pub(crate) async fn connect(args: &RedisArgs, notes: &Notes, app: &App) -> anyhow::Result<Store> {
    let url = RedisUrl::parse(&args.redis).context("--redis")?;
    let connecting = Store::connect(
        &url,
        &args.run,
        Duration::from_secs(args.patience.max(1)),
        notes.sender(),
    );
    let mut connecting = std::pin::pin!(connecting);
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        tokio::select! {
            store = &mut connecting => {
                notes.show(app);
                return Ok(store?);
            }
            _ = tick.tick() => notes.show(app),
        }
    }
}

fn push(args: QueuePushArgs, app: &App) -> anyhow::Result<Outcome> {
    let input = open_targets(app, &[], Some(&args.input), args.column.as_deref())?;
    let name = input.name.clone();
    let notes = Notes::new();
    let result = runtime()?.block_on(async {
        let store = connect(&args.redis, &notes, app).await?;
        let mut pusher = Pusher::begin(store.clone()).await?;
        let mut targets = std::pin::pin!(target_stream(input.targets)?);
        let mut read_error = None;
        while let Some(target) = targets.next().await {
            match target {
                Ok(Target::Domain { line, domain, .. }) => pusher.domain(line, domain).await?,
                Ok(Target::Invalid { line, text, error }) => {
                    app.note(format_args!(
                        "mxprobe: input line {line}: {text:?} skipped: {error}"
                    ));
                    pusher.invalid(line, &text, &error.to_string()).await?;
                }
                Ok(Target::Duplicate { .. }) => {}
                Err(e) => {
                    read_error = Some(e);
                    break;
                }
            }
        }
        let stats = pusher.finish().await?;
        notes.show(app);
        if let Some(e) = read_error {
            return Err(anyhow::Error::new(e).context(format!(
                "reading {} (the {} domain(s) before the error are pushed; push the rest again)",
                name.as_deref().unwrap_or("the input"),
                stats.pushed
            )));
        }
        if stats.pushed == 0 {
            anyhow::bail!(
                "no domain to push: {} has none ({} invalid row(s), each reported above)",
                name.as_deref().unwrap_or("the input"),
                stats.invalid
            );
        }
        app.note(format_args!(
            "mxprobe: pushed {} domain(s) and {} invalid row(s) to run {} at {}",
            stats.pushed,
            stats.invalid,
            args.redis.run,
            store.url()
        ));
        Ok(Outcome::Pass)
    });
    notes.show(app);
    result
}

fn collect(args: QueueCollectArgs, app: &App) -> anyhow::Result<Outcome> {
    let files = ScanFiles {
        jsonl: Some(&args.jsonl),
        csv: args.csv.as_deref(),
        resume: false,
    };
    let mut sink = Sink::scan(app, &args.output, files, false)?;
    let notes = Notes::new();
    let result = runtime()?.block_on(async {
        let store = connect(&args.redis, &notes, app).await?;
        // Read first: a run that is complete now is complete in what is read after.
        let before = work::status(&store).await?;
        let mut stats = BulkStats::default();
        let mut after = "-".to_owned();
        let mut unreadable = 0u64;
        loop {
            let batch = work::read_results(&store, &after, RESULTS_BATCH).await?;
            let Some(last) = batch.last() else { break };
            after = last.id.clone();
            for read in batch {
                match read.record {
                    Ok(StoredRecord::Domain {
                        line,
                        domain,
                        outcome,
                    }) => {
                        let outcome = match outcome {
                            StoredOutcome::Scanned { report } => DomainOutcome::Scanned(report),
                            StoredOutcome::TimedOut { deadline_secs } => DomainOutcome::TimedOut {
                                deadline: Duration::from_secs(deadline_secs),
                            },
                            StoredOutcome::Crashed { message } => {
                                DomainOutcome::Crashed { message }
                            }
                        };
                        stats.done += 1;
                        stats.failing += u64::from(outcome.is_failing());
                        stats.inconclusive += u64::from(outcome.is_inconclusive());
                        stats.timed_out +=
                            u64::from(matches!(outcome, DomainOutcome::TimedOut { .. }));
                        match outcome {
                            DomainOutcome::Scanned(report) => sink.domain(line, *report)?,
                            other => sink.not_tested(line, &domain, &other)?,
                        }
                    }
                    Ok(StoredRecord::Invalid { line, input, error }) => {
                        sink.invalid(line, &input, &error)?;
                    }
                    Err(why) => {
                        unreadable += 1;
                        app.note(format_args!(
                            "mxprobe: result {} in {}: {why}; skipped",
                            read.id,
                            store.keys().results()
                        ));
                    }
                }
            }
        }
        let complete = before.push_complete && before.unread == 0 && before.in_flight == 0;
        stats.interrupted = !complete;
        sink.finish(&stats).await?;
        notes.show(app);
        if unreadable > 0 {
            app.note(format_args!(
                "mxprobe: {unreadable} stored result(s) could not be read (named above)"
            ));
        }
        if complete {
            Ok(sink.outcome())
        } else {
            app.note(format_args!(
                "mxprobe: the run {} is not finished ({} queued, {} in flight{}): the outputs \
                 hold the {} domain(s) stored so far; collect again later",
                args.redis.run,
                before.unread,
                before.in_flight,
                if before.push_complete {
                    ""
                } else {
                    ", push not complete"
                },
                stats.done
            ));
            Ok(Outcome::Interrupted)
        }
    });
    notes.show(app);
    result
}

fn status(args: QueueStatusArgs, app: &App) -> anyhow::Result<Outcome> {
    let notes = Notes::new();
    let result = runtime()?.block_on(async {
        let store = connect(&args.redis, &notes, app).await?;
        let status = work::status(&store).await?;
        let url = store.url().redacted();
        let mut out = app.out();
        match args.format {
            Format::Json => {
                serde_json::to_writer_pretty(
                    &mut *out,
                    &status_json(&args.redis.run, &url, &status),
                )?;
                writeln!(out)?;
            }
            Format::Text => {
                out.write_all(status_text(&args.redis.run, &url, &status).as_bytes())?
            }
        }
        Ok(Outcome::Pass)
    });
    notes.show(app);
    result
}

/// The status as JSON (the shape is documented in docs/distributed.md).
fn status_json(run: &str, url: &str, s: &RunStatus) -> serde_json::Value {
    json!({
        "run": run,
        "redis": url,
        "pushed": s.pushed,
        "invalid": s.invalid,
        "push_complete": s.push_complete,
        "queued": s.unread,
        "in_flight": s.in_flight,
        "done": s.done,
        "taken_over": s.taken_over,
        "drained": s.push_complete && s.unread == 0 && s.in_flight == 0,
        "workers": s.workers.iter().map(|w| json!({"name": w.name, "holding": w.holding})).collect::<Vec<_>>(),
    })
}

/// The status as text.
fn status_text(run: &str, url: &str, s: &RunStatus) -> String {
    let mut text = format!(
        "run {run} at {url}\n  pushed       {} domain(s), {} invalid row(s){}\n  queued       {}\n  \
         in flight    {}\n  done         {}\n  taken over   {}\n  workers      {} live\n",
        s.pushed,
        s.invalid,
        if s.push_complete {
            ""
        } else {
            " (push in progress)"
        },
        s.unread,
        s.in_flight,
        s.done,
        s.taken_over,
        s.workers.len()
    );
    for w in &s.workers {
        text.push_str(&format!("    {}  holding {}\n", w.name, w.holding));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_text_and_json_name_every_count() {
        let s = RunStatus {
            pushed: 10,
            invalid: 1,
            push_complete: true,
            unread: 2,
            in_flight: 3,
            done: 5,
            taken_over: 4,
            workers: vec![work::LiveWorker {
                name: "w1".to_owned(),
                holding: 3,
            }],
        };
        assert_eq!(
            status_text("r", "redis://h", &s),
            "run r at redis://h\n  pushed       10 domain(s), 1 invalid row(s)\n  queued       \
             2\n  in flight    3\n  done         5\n  taken over   4\n  workers      1 live\n    \
             w1  holding 3\n"
        );
        let j = status_json("r", "redis://h", &s);
        assert_eq!(j["queued"], 2);
        assert_eq!(j["drained"], false);
        assert_eq!(j["workers"][0]["holding"], 3);
    }
}
