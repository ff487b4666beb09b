//! `mxprobe scan`: the domains of the arguments or of `--input`, streamed through the bulk
//! scanner into every output asked for.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

use super::targets::{open_targets, refuse_input_as_output};
use super::{App, Outcome, runtime};
use crate::cli::ScanArgs;
use crate::config::{deliver_config, scan_config};
use crate::progress::{Progress, ProgressMode, Tally, Total};
use crate::sinks::{self, ScanFiles, Sink};
use mxprobe_core::domain::DomainName;
use mxprobe_core::html::Kind;
use mxprobe_probe::bulk::{BulkOptions, BulkStats, DomainOutcome};
use mxprobe_probe::scan::Scanner;

/// More domains than this on the command line get a progress display.
const FEW_DOMAINS: usize = 10;

/// Runs `mxprobe scan`.
pub fn run(args: ScanArgs, app: &App) -> anyhow::Result<Outcome> {
    if let Some(input) = &args.input {
        refuse_input_as_output(
            input,
            &[
                ("--jsonl", args.jsonl.as_deref()),
                ("--csv", args.csv.as_deref()),
                ("--junit", args.output.junit.as_deref()),
                ("--html", args.output.html.as_deref()),
            ],
        )?;
    }
    let config = scan_config(&args, &app.env)?;
    if args.deliver_reports {
        return run_delivering(&args, config, app);
    }
    let input = open_targets(
        app,
        &args.domains,
        args.input.as_deref(),
        args.column.as_deref(),
    )?;
    let bulk = BulkOptions {
        concurrency: args.bulk.concurrency as usize,
        domain_deadline: Duration::from_secs(args.bulk.deadline.max(1)),
        ..BulkOptions::default()
    };
    // Results from the command line are printed in the order given; from a file, as each
    // domain finishes (streaming).
    let ordered = args.input.is_none();
    let files = ScanFiles {
        jsonl: args.jsonl.as_deref(),
        csv: args.csv.as_deref(),
        resume: args.resume,
    };
    let meta = sinks::html_meta(app, "mxprobe scan", &config);
    let sink = Sink::scan(app, &args.output, files, ordered)?.with_html(
        args.output.html.as_deref(),
        meta,
        Kind::Scan,
    )?;
    let many = args.input.is_some() || args.domains.len() > FEW_DOMAINS;
    let progress = if args.quiet || !many {
        ProgressMode::Quiet
    } else if app.stderr_is_terminal {
        ProgressMode::Bar
    } else {
        ProgressMode::Plain
    };
    runtime()?.block_on(async {
        let scanner = Arc::new(Scanner::new(config).context("setting up the DNS resolver")?);
        sinks::run(scanner, input, &bulk, sink, progress).await
    })
}

/// `scan --deliver-reports`: the domains of the command line (at most `--deliver-limit`),
/// each scanned, then its synthetic report sent to its own `rua` destinations, then written
/// to every output with the deliveries' results.
fn run_delivering(
    args: &ScanArgs,
    config: mxprobe_probe::scan::ScanConfig,
    app: &App,
) -> anyhow::Result<Outcome> {
    if args.input.is_some() {
        anyhow::bail!(
            "--deliver-reports sends reports only for domains named on the command line, \
             never for an --input list: name the domains (at most --deliver-limit {})",
            args.deliver_limit
        );
    }
    let mut domains: Vec<DomainName> = Vec::new();
    for text in &args.domains {
        let domain = DomainName::parse(text).map_err(|e| {
            anyhow::anyhow!("--deliver-reports: {text:?} is not a domain name: {e}")
        })?;
        if !domains.contains(&domain) {
            domains.push(domain);
        }
    }
    let limit = args.deliver_limit as usize;
    if domains.len() > limit {
        anyhow::bail!(
            "--deliver-reports: {} domains named, more than --deliver-limit {limit}; name at \
             most {limit} domains, or raise --deliver-limit if every one of them is yours",
            domains.len()
        );
    }
    let deliver = deliver_config(args, &config, &app.env)?;
    let deadline = Duration::from_secs(args.bulk.deadline.max(1));
    let files = ScanFiles {
        jsonl: args.jsonl.as_deref(),
        csv: args.csv.as_deref(),
        resume: false,
    };
    let mut sink = Sink::scan(app, &args.output, files, true)?;
    let mode = if args.quiet || domains.len() <= FEW_DOMAINS {
        ProgressMode::Quiet
    } else if app.stderr_is_terminal {
        ProgressMode::Bar
    } else {
        ProgressMode::Plain
    };
    let mut progress = Progress::new(mode, Total::Domains(domains.len() as u64));
    let mut tally = Tally::default();
    runtime()?.block_on(async {
        let scanner = Scanner::new(config).context("setting up the DNS resolver")?;
        let started = app.now();
        let scans = futures::future::join_all(
            domains
                .iter()
                .map(|d| tokio::time::timeout(deadline, scanner.scan(d, started))),
        )
        .await;
        let finished = app.now();
        let mut stats = BulkStats::default();
        for (i, (domain, scanned)) in domains.iter().zip(scans).enumerate() {
            stats.started += 1;
            stats.done += 1;
            match scanned {
                Ok(mut result) => {
                    crate::deliver::deliver(&deliver, &mut result, started, finished).await?;
                    sink.domain(i + 1, result)?;
                }
                Err(_elapsed) => {
                    stats.timed_out += 1;
                    sink.not_tested(i + 1, domain, &DomainOutcome::TimedOut { deadline })?;
                }
            }
            // Progress counts the domains whose reports went out.
            tally.done += 1;
            progress.update(tally);
        }
        progress.finish(tally);
        if let Some(problem) = scanner.resolver_problem() {
            app.note(format_args!("mxprobe: {problem}"));
        }
        sink.finish(&stats).await?;
        Ok(sink.outcome())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Command;
    use crate::cmd::testing::{LabFixture, TempDir, app, parse};
    use serde_json::Value;

    fn scan_args(args: &[String]) -> ScanArgs {
        match parse(args) {
            Command::Scan(args) => args,
            other => panic!("not scan: {other:?}"),
        }
    }

    fn lines(path: &std::path::Path) -> Vec<Value> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn scan_of_an_input_file_writes_every_output_and_exits_by_the_worst_domain() {
        let lab = LabFixture::start("scan");
        let dir = TempDir::new("scan-out");
        let input = dir.path("in.csv");
        std::fs::write(
            &input,
            "domain,owner\ngood.test,a\nnot a domain,b\nexpired.test,c\ngood.test,d\n",
        )
        .unwrap();
        let mut argv: Vec<String> = ["scan", "--input", &dir.arg("in.csv"), "-q"]
            .map(str::to_owned)
            .to_vec();
        argv.extend(["--jsonl".into(), dir.arg("out.jsonl")]);
        argv.extend(["--csv".into(), dir.arg("out.csv")]);
        argv.extend(lab.probe_flags());
        let t = app();
        let outcome = run(scan_args(&argv), &t.app).unwrap();
        // expired.test presents an expired certificate.
        assert_eq!(outcome, Outcome::Fail, "{}", t.err.text());
        let text = t.out.text();
        assert!(text.contains("good.test  OK"), "{text}");
        assert!(text.contains("expired.test  FAIL"), "{text}");
        assert!(
            text.contains("\n2 domains: 1 OK, 1 FAIL; findings: "),
            "{text}"
        );
        assert!(text.ends_with("; 1 invalid input row skipped\n"), "{text}");
        assert!(
            t.err
                .text()
                .contains("mxprobe: input line 3: \"not a domain\" skipped: "),
            "{}",
            t.err.text()
        );
        let records = lines(&dir.path("out.jsonl"));
        let types: Vec<&str> = records
            .iter()
            .map(|r| r["type"].as_str().unwrap())
            .collect();
        assert_eq!(types.len(), 4, "{types:?}");
        assert_eq!(types.iter().filter(|t| **t == "domain").count(), 2);
        assert_eq!(types.iter().filter(|t| **t == "invalid").count(), 1);
        let summary = records.last().unwrap();
        assert_eq!(summary["type"], "summary");
        assert_eq!(
            (summary["domains"].as_u64(), summary["failing"].as_u64()),
            (Some(2), Some(1))
        );
        let csv = std::fs::read_to_string(dir.path("out.csv")).unwrap();
        assert_eq!(csv.lines().count(), 4, "{csv}");
        assert!(
            csv.lines().any(|l| l.starts_with("expired.test,fail,")),
            "{csv}"
        );

        // --resume: both domains are done, nothing is scanned again, and the exit status
        // still counts expired.test.
        let mut again: Vec<String> = ["scan", "good.test", "expired.test", "--resume", "-q"]
            .map(str::to_owned)
            .to_vec();
        again.extend(["--jsonl".into(), dir.arg("out.jsonl")]);
        again.extend([
            "--fail-on".into(),
            "error".into(),
            "--format".into(),
            "json".into(),
        ]);
        again.extend(lab.probe_flags());
        let t = app();
        assert_eq!(run(scan_args(&again), &t.app).unwrap(), Outcome::Fail);
        let doc: Value = serde_json::from_str(&t.out.text()).unwrap();
        assert_eq!(doc["domains"].as_array().unwrap().len(), 0);
    }

    /// A domain past its deadline in an `--input` run gets its block in the text output.
    #[test]
    fn a_domain_past_its_deadline_is_shown_inconclusive() {
        let lab = LabFixture::start("scan-deadline");
        let dir = TempDir::new("scan-deadline-in");
        std::fs::write(dir.path("in.txt"), "silent.test\n").unwrap();
        let mut argv: Vec<String> = ["scan", "--input", &dir.arg("in.txt"), "-q"]
            .map(str::to_owned)
            .to_vec();
        argv.extend(["--deadline".into(), "1".into()]);
        argv.extend(lab.probe_flags());
        let t = app();
        let outcome = run(scan_args(&argv), &t.app).unwrap();
        assert_eq!(outcome, Outcome::Inconclusive, "{}", t.err.text());
        let text = t.out.text();
        assert!(
            text.starts_with(
                "silent.test  INCONCLUSIVE\n  not finished within --deadline 1s: nothing could \
                 be judged\n\n"
            ),
            "{text}"
        );
    }

    /// The rows named in the error are counted by the input rules (see
    /// `targets::tests::standard_input_rows_follow_the_input_rules`): two, not five lines.
    #[test]
    fn an_input_of_invalid_rows_is_an_error_counting_them() {
        let t = crate::cmd::testing::app_with_stdin(
            b"\xEF\xBB\xBF# targets\ndomain,owner\n  # indented\nbad domain,\"two\nlines\"\nx y,z\n",
        );
        let argv: Vec<String> = ["scan", "--input", "-", "--resolver", "127.0.0.1", "-q"]
            .map(str::to_owned)
            .to_vec();
        let err = run(scan_args(&argv), &t.app).unwrap_err();
        assert_eq!(
            err.to_string(),
            "no domain to scan: none of the 2 row(s) of standard input is a domain (each is \
             reported above with its line and why)"
        );
        let err_text = t.err.text();
        assert!(
            err_text.contains("input line 4: \"bad domain\" skipped"),
            "{err_text}"
        );
        assert!(
            err_text.contains("input line 6: \"x y\" skipped"),
            "{err_text}"
        );
    }

    #[test]
    fn an_input_without_domains_is_an_error_naming_it() {
        let dir = TempDir::new("scan-empty");
        std::fs::write(dir.path("in.txt"), "# nothing\n\n").unwrap();
        let argv: Vec<String> = [
            "scan",
            "--input",
            &dir.arg("in.txt"),
            "--resolver",
            "127.0.0.1",
        ]
        .map(str::to_owned)
        .to_vec();
        let t = app();
        let err = run(scan_args(&argv), &t.app).unwrap_err();
        assert!(
            err.to_string().starts_with(&format!(
                "no domain to scan: the input file {} has no rows",
                dir.path("in.txt").display()
            )),
            "{err}"
        );
        // An output that is the input is refused before anything is read.
        let argv: Vec<String> = [
            "scan",
            "--input",
            &dir.arg("in.txt"),
            "--csv",
            &dir.arg("in.txt"),
        ]
        .map(str::to_owned)
        .to_vec();
        let err = run(scan_args(&argv), &t.app).unwrap_err();
        assert!(err.to_string().contains("this is the input file"), "{err}");
        assert_eq!(
            std::fs::read_to_string(dir.path("in.txt")).unwrap(),
            "# nothing\n\n"
        );
    }
}
