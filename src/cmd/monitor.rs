//! `mxprobe monitor`: one scheduled run, through the same loop and sink as `scan`, into the
//! history database; alerts delivered at the end.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

use super::targets::{open_targets, refuse_input_as_output};
use super::{App, Outcome, runtime};
use crate::cli::MonitorArgs;
use crate::config::{monitor_channels, probe_config};
use crate::history::History;
use crate::monitor::{Monitor, MonitorConfig};
use crate::progress::ProgressMode;
use crate::sinks::{self, Sink};
use mxprobe_core::html::Kind;
use mxprobe_probe::bulk::BulkOptions;
use mxprobe_probe::scan::Scanner;

/// Runs `mxprobe monitor`.
pub fn run(args: MonitorArgs, app: &App) -> anyhow::Result<Outcome> {
    if let Some(input) = &args.input {
        refuse_input_as_output(
            input,
            &[
                ("--db", Some(args.db.as_path())),
                ("--prometheus", args.prometheus.as_deref()),
                ("--html", args.html.as_deref()),
            ],
        )?;
    }
    let mut config = probe_config(&args.probe, &app.env)?;
    let input = open_targets(
        app,
        &args.domains,
        args.input.as_deref(),
        args.column.as_deref(),
    )?;
    config.politeness.per_ip = usize::try_from(args.per_ip).unwrap_or(usize::MAX);
    let meta = sinks::html_meta(app, "mxprobe monitor", &config);
    let channels = monitor_channels(&args, &app.env, &config.anchors)?;
    let history = History::open(&args.db).with_context(|| format!("--db {}", args.db.display()))?;
    let monitor_config = MonitorConfig {
        expiry_warn_days: args.expiry_warn.clone(),
        remind_every: args
            .remind_every
            .map(|h| time::Duration::hours(i64::try_from(h).unwrap_or(i64::MAX / 3600))),
        inconclusive_after: args.inconclusive_after,
        channels,
        retry: crate::notify::RetryPolicy::default(),
        delivery_deadline: Duration::from_secs(args.delivery_deadline),
        prometheus: args.prometheus.clone().map(|p| {
            (
                p,
                crate::metrics::MetricsOptions {
                    per_ip: args.prometheus_per_ip,
                },
            )
        }),
    };
    let bulk = BulkOptions {
        concurrency: args.concurrency as usize,
        ..BulkOptions::default()
    };
    runtime()?.block_on(async {
        let scanner = Arc::new(Scanner::new(config).context("setting up the DNS resolver")?);
        let monitor = Monitor::start(history, monitor_config, app.now())?;
        let sink = Sink::monitor(app, monitor, args.verbose, args.fail_on, args.inconclusive)
            .with_html(args.html.as_deref(), meta, Kind::Monitor)?;
        sinks::run(scanner, input, &bulk, sink, ProgressMode::Quiet).await
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Command;
    use crate::cmd::testing::{LabFixture, TempDir, app, parse};

    pub(crate) fn monitor_args(args: &[String]) -> MonitorArgs {
        match parse(args) {
            Command::Monitor(args) => args,
            other => panic!("not monitor: {other:?}"),
        }
    }

    #[test]
    fn monitor_records_runs_and_alerts_only_on_change() {
        let lab = LabFixture::start("monitor");
        let dir = TempDir::new("monitor-db");
        let mut argv: Vec<String> = ["monitor", "good.test", "expired.test", "--db"]
            .map(str::to_owned)
            .to_vec();
        argv.push(dir.arg("h.sqlite"));
        argv.extend(["--prometheus".into(), dir.arg("m.prom")]);
        argv.extend(lab.probe_flags());

        let t = app();
        assert_eq!(run(monitor_args(&argv), &t.app).unwrap(), Outcome::Fail);
        // The first run alerts on expired.test's failures, not on good.test.
        let first = t.out.text();
        assert!(first.contains("expired.test"), "{first}");
        assert!(!first.contains("good.test"), "{first}");
        let prom = std::fs::read_to_string(dir.path("m.prom")).unwrap();
        assert!(
            prom.contains("domain=\"expired.test\",status=\"fail\"} 1"),
            "{prom}"
        );

        // Nothing changed: nothing printed, unless --verbose.
        let t = app();
        assert_eq!(run(monitor_args(&argv), &t.app).unwrap(), Outcome::Fail);
        assert_eq!(t.out.text(), "");
        argv.push("--verbose".into());
        let t = app();
        run(monitor_args(&argv), &t.app).unwrap();
        assert!(t.out.text().contains("good.test  OK"), "{}", t.out.text());

        let history = History::open_read_only(&dir.path("h.sqlite")).unwrap();
        let good = mxprobe_core::domain::DomainName::parse("good.test").unwrap();
        assert_eq!(history.timeline(&good, None).unwrap().len(), 3);
    }

    /// `monitor --html`: each domain's status in its runs so far, and the run's changes.
    #[test]
    fn monitor_html_shows_the_runs_and_the_changes() {
        use scraper::{Html, Selector};
        let lab = LabFixture::start("monitor-html");
        let dir = TempDir::new("monitor-html");
        let mut argv: Vec<String> = ["monitor", "good.test", "expired.test", "--db"]
            .map(str::to_owned)
            .to_vec();
        argv.push(dir.arg("h.sqlite"));
        argv.extend(["--html".into(), dir.arg("run.html")]);
        argv.extend(lab.probe_flags());
        let sel = |s: &str| Selector::parse(s).unwrap();
        for run_number in 1..=2 {
            let t = app();
            assert_eq!(run(monitor_args(&argv), &t.app).unwrap(), Outcome::Fail);
            let page = std::fs::read_to_string(dir.path("run.html")).unwrap();
            let doc = Html::parse_document(&page);
            assert!(doc.errors.is_empty(), "{:?}", doc.errors);
            let rows: Vec<(String, String, usize)> = doc
                .select(&sel("#grid tbody tr"))
                .map(|tr| {
                    (
                        tr.select(&sel("td.domain a"))
                            .next()
                            .unwrap()
                            .text()
                            .collect(),
                        tr.value().attr("data-status").unwrap().to_owned(),
                        tr.select(&sel(".strip span")).count(),
                    )
                })
                .collect();
            assert_eq!(
                rows,
                [
                    ("expired.test".to_owned(), "fail".to_owned(), run_number),
                    ("good.test".to_owned(), "ok".to_owned(), run_number),
                ]
            );
            // The first run alerts on expired.test; the second changes nothing.
            let changes: Vec<String> = doc
                .select(&sel("#changes-table tbody tr td:first-child"))
                .map(|td| td.text().collect())
                .collect();
            if run_number == 1 {
                assert!(!changes.is_empty(), "{page}");
                assert!(changes.iter().all(|d| d == "expired.test"), "{changes:?}");
            } else {
                assert!(changes.is_empty(), "{changes:?}");
                assert!(page.contains("Nothing changed since the previous run."));
            }
        }
    }

    #[test]
    fn an_interrupted_run_exits_130_and_keeps_what_it_recorded() {
        let lab = LabFixture::start("monitor-stop");
        let dir = TempDir::new("monitor-stop");
        let mut argv: Vec<String> = ["monitor", "good.test", "--db"].map(str::to_owned).to_vec();
        argv.push(dir.arg("h.sqlite"));
        argv.extend(lab.probe_flags());
        let t = app().interrupted();
        assert_eq!(
            run(monitor_args(&argv), &t.app).unwrap(),
            Outcome::Interrupted
        );
        assert!(
            t.err
                .text()
                .ends_with("mxprobe: interrupted; the domains finished so far are recorded\n"),
            "{}",
            t.err.text()
        );
    }
}
