//! `mxprobe reports`: the TLS-RPT reports real senders sent, stored, summarised and compared
//! with mxprobe's findings.

use std::io::Write as _;

use anyhow::Context as _;

use super::history::read_history;
use super::{App, Outcome};
use crate::cli::{
    Format, ReportsCommand, ReportsCompareArgs, ReportsIngestArgs, ReportsSummaryArgs,
    SummaryFormat,
};
use crate::history::{History, HistoryError, StoreOutcome};
use crate::received::compare;
use crate::received::ingest::{Found, ingest};
use crate::received::summary;
use mxprobe_core::domain::DomainName;

/// Runs `mxprobe reports …`.
pub fn run(command: ReportsCommand, app: &App) -> anyhow::Result<Outcome> {
    match command {
        ReportsCommand::Ingest(args) => run_ingest(args, app),
        ReportsCommand::Summary(args) => run_summary(args, app),
        ReportsCommand::Compare(args) => run_compare(args, app),
    }
}

/// `reports ingest`: each report is stored (one transaction) as soon as it is read, then
/// dropped.
fn run_ingest(args: ReportsIngestArgs, app: &App) -> anyhow::Result<Outcome> {
    // A path the user named must exist (inside a walk, an unreadable entry is only skipped);
    // checked before the database is created.
    for path in &args.paths {
        if let Err(e) = std::fs::metadata(path) {
            anyhow::bail!("{}: {}", path.display(), io_reason(&e));
        }
    }
    let mut history =
        History::open(&args.db).with_context(|| format!("--db {}", args.db.display()))?;
    let (mut stored, mut duplicates, mut skipped) = (0usize, 0usize, 0usize);
    let now = app.now();
    ingest(&args.paths, |found| {
        match found {
            Found::Report(r) => {
                for quirk in &r.read.quirks {
                    app.note(format_args!("mxprobe: {}: tolerated: {quirk}", r.origin));
                }
                match history.store_report(&r.read.report, &r.json, &r.origin.to_string(), now)? {
                    StoreOutcome::Stored => stored += 1,
                    StoreOutcome::Duplicate => duplicates += 1,
                }
            }
            Found::Skipped(s) => {
                skipped += 1;
                app.note(format_args!("mxprobe: {}: skipped: {}", s.origin, s.reason));
            }
        }
        Ok::<_, HistoryError>(())
    })?;
    writeln!(
        app.out(),
        "{stored} report(s) stored, {duplicates} already stored, {skipped} skipped"
    )?;
    Ok(Outcome::Pass)
}

/// An I/O error in words, without the "(os error N)" suffix.
fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".to_owned(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        _ => e.to_string(),
    }
}

fn run_summary(args: ReportsSummaryArgs, app: &App) -> anyhow::Result<Outcome> {
    let domain = args
        .domain
        .as_deref()
        .map(|d| DomainName::parse(d).with_context(|| format!("--domain {d:?}")))
        .transpose()?;
    let (history, since) = read_history(app, &args.db, args.since.as_deref())?;
    let format = match args.format {
        SummaryFormat::Text => summary::Format::Text,
        SummaryFormat::Json => summary::Format::Json,
        SummaryFormat::Csv => summary::Format::Csv,
    };
    summary::write(
        &mut *app.out(),
        format,
        summary::summaries(&history, domain.as_ref(), since),
    )?;
    Ok(Outcome::Pass)
}

fn run_compare(args: ReportsCompareArgs, app: &App) -> anyhow::Result<Outcome> {
    let domain =
        DomainName::parse(&args.domain).with_context(|| format!("domain {:?}", args.domain))?;
    let (history, since) = read_history(app, &args.db, args.since.as_deref())?;
    let reported = compare::reported(&history, &domain, since)?;
    let latest = history
        .recent(&domain, 1)?
        .into_iter()
        .next()
        .map(|(_, s)| s);
    let comparison = compare::compare(&domain, reported, latest.as_ref());
    let mut out = app.out();
    match args.format {
        Format::Text => compare::write_text(&mut *out, &comparison)?,
        Format::Json => {
            serde_json::to_writer_pretty(&mut *out, &comparison)?;
            writeln!(out)?;
        }
    }
    Ok(Outcome::Pass)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Command;
    use crate::cmd::history::tests::history_db;
    use crate::cmd::testing::{TempDir, app, parse};

    fn reports(args: &[&str]) -> ReportsCommand {
        match parse(args) {
            Command::Reports(command) => command,
            other => panic!("not reports: {other:?}"),
        }
    }

    fn fixtures() -> String {
        format!("{}/fixtures/tlsrpt-reports", env!("CARGO_MANIFEST_DIR"))
    }

    #[test]
    fn ingest_stores_each_report_once_and_summary_reads_them() {
        let dir = TempDir::new("reports");
        let db = dir.arg("h.sqlite");
        let fixtures = fixtures();
        let t = app();
        let ingest = ["reports", "ingest", "--db", &db, &fixtures];
        assert_eq!(run(reports(&ingest), &t.app).unwrap(), Outcome::Pass);
        let first = t.out.text();
        let counts: Vec<usize> = first.split(' ').filter_map(|w| w.parse().ok()).collect();
        let [stored, duplicates, _skipped] = counts[..] else {
            panic!("{first}")
        };
        assert!(stored > 0, "{first}");
        // The same files again: every report is already stored.
        let t = app();
        run(reports(&ingest), &t.app).unwrap();
        let all = stored + duplicates;
        assert!(
            t.out
                .text()
                .starts_with(&format!("0 report(s) stored, {all} already stored, ")),
            "{}",
            t.out.text()
        );

        let t = app();
        let summary = ["reports", "summary", "--db", &db, "--format", "csv"];
        assert_eq!(run(reports(&summary), &t.app).unwrap(), Outcome::Pass);
        let csv = t.out.text();
        assert!(csv.lines().count() > 1, "{csv}");
        assert!(csv.contains("test.xmox.nl"), "{csv}");
        let t = app();
        let one = ["reports", "summary", "--db", &db, "--domain", "bad domain"];
        let err = run(reports(&one), &t.app).unwrap_err();
        assert!(
            err.to_string().starts_with("--domain \"bad domain\""),
            "{err}"
        );
    }

    /// A named path that does not exist is an error (exit 2), before the database is made;
    /// the database is left alone, with no lock, WAL or shared-memory file beside it, after
    /// writing and after reading.
    #[test]
    fn a_missing_named_path_is_an_error_and_no_side_files_stay() {
        let dir = TempDir::new("reports-edges");
        let db = dir.arg("h.sqlite");
        let missing = dir.arg("no-such-dir");
        let t = app();
        let err = run(
            reports(&["reports", "ingest", "--db", &db, &missing]),
            &t.app,
        )
        .unwrap_err();
        assert_eq!(
            crate::cmd::error_text(&err),
            format!("{missing}: no such file or directory")
        );
        assert!(!dir.path("h.sqlite").exists());

        let fixtures = fixtures();
        let side_files = || {
            let mut names: Vec<String> = std::fs::read_dir(&dir.0)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            names
        };
        run(
            reports(&["reports", "ingest", "--db", &db, &fixtures]),
            &app().app,
        )
        .unwrap();
        assert_eq!(side_files(), ["h.sqlite"]);
        for command in [
            &["reports", "summary", "--db", &db][..],
            &["reports", "compare", "--db", &db, "test.xmox.nl"][..],
        ] {
            run(reports(command), &app().app).unwrap();
            assert_eq!(side_files(), ["h.sqlite"], "{command:?}");
        }
    }

    #[test]
    fn compare_sets_what_senders_reported_beside_the_latest_run() {
        let dir = TempDir::new("reports-compare");
        let db = history_db(&dir).display().to_string();
        let t = app();
        let compare = [
            "reports",
            "compare",
            "--db",
            &db,
            "example.com",
            "--format",
            "json",
        ];
        assert_eq!(run(reports(&compare), &t.app).unwrap(), Outcome::Pass);
        let doc: serde_json::Value = serde_json::from_str(&t.out.text()).unwrap();
        assert_eq!(doc["domain"], "example.com", "{doc}");
        let t = app();
        let text = ["reports", "compare", "--db", &db, "example.com"];
        run(reports(&text), &t.app).unwrap();
        assert!(t.out.text().contains("example.com"), "{}", t.out.text());
    }
}
