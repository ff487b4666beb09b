//! `mxprobe history`: a domain's timeline from the monitoring history; and the `--db` and
//! `--since` flags the `reports` commands share with it.

use std::io::Write as _;
use std::path::Path;

use anyhow::Context as _;
use time::OffsetDateTime;

use super::{App, Outcome};
use crate::cli::{Format, HistoryArgs};
use crate::history::{History, TimelineEntry, write_timeline};
use mxprobe_core::domain::DomainName;
use mxprobe_core::finding::Counts;
use mxprobe_core::html::{HistoryRun, HtmlReport, Kind, Meta, StripRun};
use mxprobe_core::result::DomainResult;

/// Runs `mxprobe history`.
pub fn run(args: HistoryArgs, app: &App) -> anyhow::Result<Outcome> {
    let domain =
        DomainName::parse(&args.domain).with_context(|| format!("domain {:?}", args.domain))?;
    let (history, since) = read_history(app, &args.db, args.since.as_deref())?;
    let entries = history.timeline(&domain, since)?;
    if let Some(path) = &args.html {
        let latest = history.previous(&domain)?.map(|(_, snapshot)| snapshot);
        write_html(app, path, &domain, &entries, latest.as_ref())
            .with_context(|| format!("writing --html {}", path.display()))?;
    }
    let mut out = app.out();
    match args.format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut *out, &entries)?;
            writeln!(out)?;
        }
        Format::Text => write_timeline(&mut *out, &domain, &entries)?,
    }
    Ok(Outcome::Pass)
}

/// How many runs the status strip of `history --html` shows (the runs table has them all).
const STRIP_RUNS: usize = 100;

/// `history --html`: the domain's runs and the latest one in detail.
fn write_html(
    app: &App,
    path: &Path,
    domain: &DomainName,
    entries: &[TimelineEntry],
    latest: Option<&DomainResult>,
) -> anyhow::Result<()> {
    let meta = Meta {
        title: format!("mxprobe history {domain}"),
        started_at: latest.map_or_else(|| app.now(), |l| l.facts.observed_at),
        ehlo_name: None,
        resolver: "not kept in the history database".to_owned(),
        dnssec: "not kept in the history database".to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
    };
    let file = std::fs::File::create(path)?;
    let mut report = HtmlReport::new(meta, Kind::History, tempfile::tempfile)?;
    let runs: Vec<HistoryRun> = entries
        .iter()
        .map(|e| HistoryRun {
            observed_at: e.observed_at,
            status: e.status,
            counts: Counts {
                error: e.errors as usize,
                warning: e.warnings as usize,
                notice: e.notices as usize,
            },
            policy: match (&e.policy_mode, &e.policy_id) {
                (Some(mode), Some(id)) => format!("{mode} (id {id})"),
                (Some(mode), None) => mode.clone(),
                (None, Some(id)) => format!("id {id}, no valid policy"),
                (None, None) => "none".to_owned(),
            },
            mx: e.mx.clone(),
            changes: e
                .alert
                .as_ref()
                .map(|a| a.changes.clone())
                .unwrap_or_default(),
        })
        .collect();
    if let Some(latest) = latest {
        let strip: Vec<StripRun> = entries
            .iter()
            .rev()
            .take(STRIP_RUNS)
            .rev()
            .map(|e| StripRun {
                observed_at: e.observed_at,
                status: e.status,
            })
            .collect();
        let changes = entries
            .last()
            .and_then(|e| e.alert.as_ref())
            .map(|a| a.changes.clone())
            .unwrap_or_default();
        report.add(latest, &changes, &strip, app.now())?;
    }
    let mut out = std::io::BufWriter::new(file);
    report.finish(&mut out, app.now(), Some(&runs))?;
    out.flush()?;
    Ok(())
}

/// The history database opened for reading (`history`, `reports summary`, `reports
/// compare`), and the `--since` time.
pub(crate) fn read_history(
    app: &App,
    db: &Path,
    since: Option<&str>,
) -> anyhow::Result<(History, Option<OffsetDateTime>)> {
    let since = since.map(|s| parse_since(s, app.now())).transpose()?;
    let history = History::open_read_only(db).with_context(|| format!("--db {}", db.display()))?;
    Ok((history, since))
}

/// `--since`: an RFC 3339 date-time, a date (midnight UTC), or an age (`7d`, `12h`, `30m`).
/// A time outside the years 0000-9999 (in UTC) is an error, never an overflow.
pub(crate) fn parse_since(s: &str, now: OffsetDateTime) -> anyhow::Result<OffsetDateTime> {
    use time::format_description::well_known::Rfc3339;
    let since = if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        Some(t)
    } else if let Ok(d) = time::Date::parse(
        s,
        &time::macros::format_description!("[year]-[month]-[day]"),
    ) {
        Some(d.midnight().assume_utc())
    } else {
        let (digits, unit) = s.split_at(s.len().saturating_sub(1));
        let n: i64 = digits.parse().map_err(|_| {
            anyhow::anyhow!(
                "--since {s:?}: give a date (2026-11-01), a date-time (2026-11-01T06:00:00Z) \
                 or an age (7d, 12h, 30m)"
            )
        })?;
        let unit_seconds: i64 = match unit {
            "d" => 86_400,
            "h" => 3_600,
            "m" => 60,
            _ => anyhow::bail!("--since {s:?}: an age ends in d, h or m (7d, 12h, 30m)"),
        };
        n.checked_mul(unit_seconds)
            .and_then(|seconds| now.checked_sub(time::Duration::seconds(seconds)))
    };
    since
        .and_then(|t| t.checked_to_offset(time::UtcOffset::UTC))
        .filter(|t| (0..=9999).contains(&t.year()))
        .ok_or_else(|| {
            anyhow::anyhow!(
                "--since {s:?}: that is outside the years 0000-9999 (UTC); give a later date or \
                 a smaller age"
            )
        })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::cli::Command;
    use crate::cmd::testing::{TempDir, app, parse};
    use mxprobe_core::result::DomainResult;
    use serde_json::json;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-11-20 12:00 UTC);

    #[test]
    fn since_takes_dates_date_times_and_ages() {
        let cases = [
            ("2026-11-01T06:00:00Z", datetime!(2026-11-01 06:00 UTC)),
            // Another offset is the same instant, in UTC.
            ("2026-11-01T08:00:00+02:00", datetime!(2026-11-01 06:00 UTC)),
            ("2026-11-01", datetime!(2026-11-01 00:00 UTC)),
            ("7d", datetime!(2026-11-13 12:00 UTC)),
            ("12h", datetime!(2026-11-20 00:00 UTC)),
            ("30m", datetime!(2026-11-20 11:30 UTC)),
            ("0d", NOW),
        ];
        for (given, want) in cases {
            let got = parse_since(given, NOW).unwrap_or_else(|e| panic!("{given}: {e}"));
            assert_eq!(got, want, "{given}");
            assert_eq!(got.offset(), time::UtcOffset::UTC, "{given}");
        }
    }

    #[test]
    fn since_errors_say_what_to_give() {
        let cases = [
            ("yesterday", "give a date (2026-11-01)"),
            ("", "give a date (2026-11-01)"),
            ("7w", "an age ends in d, h or m"),
            ("2026-13-01", "give a date"),
            // Too far back to be a year 0000-9999, or too large to compute.
            ("99999999d", "outside the years 0000-9999"),
            ("9223372036854775807d", "outside the years 0000-9999"),
            ("-99999999d", "outside the years 0000-9999"),
        ];
        for (given, want) in cases {
            let err = parse_since(given, NOW).unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("--since {given:?}: ")) && err.contains(want),
                "{given}: {err}"
            );
        }
    }

    /// A snapshot of example.com observed at `at`, failing when `failing`.
    fn snapshot(at: &str, failing: bool) -> DomainResult {
        let findings = if failing {
            vec![json!({"code": "sts.policy.bad-mode", "severity": "error",
                        "subject": {"domain": "example.com"}, "message": "bad mode"})]
        } else {
            Vec::new()
        };
        serde_json::from_value(json!({
            "facts": {
                "domain": "example.com",
                "observed_at": at,
                "mx": {"status": "records", "records": [{"preference": 10,
                       "exchange": "mx.example.com"}], "dnssec": "insecure", "cname-chain": []},
                "sts_txt": {"status": "nodata", "dnssec": "insecure"},
                "tlsrpt_txt": {"status": "nodata", "dnssec": "insecure"},
                "hosts": [{"exchange": "mx.example.com", "preference": 10}]
            },
            "verdict": {
                "domain": "example.com", "routing": "mx", "sts": {}, "sessions": [],
                "inconclusive": false, "findings": findings
            }
        }))
        .unwrap()
    }

    /// A history with two runs of example.com: failing on 2026-11-01, passing on 11-15.
    pub(crate) fn history_db(dir: &TempDir) -> std::path::PathBuf {
        let path = dir.path("h.sqlite");
        let mut history = History::open(&path).unwrap();
        for (at, failing) in [
            ("2026-11-01T06:00:00Z", true),
            ("2026-11-15T06:00:00Z", false),
        ] {
            let t =
                OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339).unwrap();
            let run = history.begin_run(t).unwrap();
            history
                .record(run, &snapshot(at, failing), None, &[])
                .unwrap();
            history.finish_run(run, t).unwrap();
        }
        path
    }

    fn history_args(args: &[String]) -> HistoryArgs {
        match parse(args) {
            Command::History(args) => args,
            other => panic!("not history: {other:?}"),
        }
    }

    #[test]
    fn history_shows_the_runs_since_a_time() {
        let dir = TempDir::new("history");
        let db = history_db(&dir).display().to_string();
        let argv = |extra: &[&str]| -> Vec<String> {
            ["history", "--db", &db, "example.com"]
                .iter()
                .chain(extra)
                .map(|s| (*s).to_owned())
                .collect()
        };
        let t = app();
        assert_eq!(
            run(history_args(&argv(&[])), &t.app).unwrap(),
            Outcome::Pass
        );
        let text = t.out.text();
        assert!(text.starts_with("example.com: 2 runs\n"), "{text}");
        assert_eq!(text.lines().count(), 3, "{text}");

        let t = app();
        run(
            history_args(&argv(&["--since", "2026-11-10", "--format", "json"])),
            &t.app,
        )
        .unwrap();
        let entries: serde_json::Value = serde_json::from_str(&t.out.text()).unwrap();
        let statuses: Vec<&str> = entries
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["status"].as_str().unwrap())
            .collect();
        assert_eq!(statuses, ["pass"]);

        // --html: the runs, newest first, and the latest run in the grid with its strip.
        let html = dir.arg("history.html");
        let t = app();
        run(history_args(&argv(&["--html", &html])), &t.app).unwrap();
        let page = std::fs::read_to_string(&html).unwrap();
        let doc = scraper::Html::parse_document(&page);
        assert!(doc.errors.is_empty(), "{:?}", doc.errors);
        let sel = |s: &str| scraper::Selector::parse(s).unwrap();
        let runs: Vec<String> = doc
            .select(&sel("#runs-table tbody tr td:nth-child(2)"))
            .map(|td| td.text().collect::<String>().trim().to_owned())
            .collect();
        assert_eq!(runs, ["\u{2713} pass", "\u{2717} fail"]);
        let rows: Vec<&str> = doc
            .select(&sel("#grid tbody tr"))
            .map(|tr| tr.value().attr("data-status").unwrap())
            .collect();
        assert_eq!(rows, ["ok"]);
        let strip: Vec<&str> = doc
            .select(&sel(".strip span"))
            .map(|s| s.value().attr("class").unwrap())
            .collect();
        assert_eq!(strip, ["s-fail", "s-ok"]);
        // The text output is unchanged by it.
        assert!(t.out.text().starts_with("example.com: 2 runs\n"));

        let err = run(history_args(&argv(&["--since", "soon"])), &app().app).unwrap_err();
        assert!(err.to_string().starts_with("--since \"soon\""), "{err}");
        let missing = dir.arg("missing.sqlite");
        let argv: Vec<String> = ["history", "--db", &missing, "example.com"]
            .map(str::to_owned)
            .to_vec();
        let err = run(history_args(&argv), &app().app).unwrap_err();
        assert!(
            err.to_string().starts_with(&format!("--db {missing}")),
            "{err}"
        );
    }
}
