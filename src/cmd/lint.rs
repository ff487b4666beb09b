//! `mxprobe lint`: candidate records and a policy file judged offline.

use std::io::Write as _;

use anyhow::Context as _;

use super::{App, Outcome, given_txt, read_policy_file, runtime, warn_once_about_the_resolver};
use crate::cli::{Format, Inconclusive, LintArgs};
use crate::config::probe_config;
use mxprobe_core::dns::DnssecStatus;
use mxprobe_core::evaluate::policy_fetch::ContentTypeRule;
use mxprobe_core::evaluate::rua::judge_observed;
use mxprobe_core::evaluate::{EXPIRY_WARN_DAYS, EvalOptions};
use mxprobe_core::facts::MAX_RUA_CHECKED;
use mxprobe_core::finding::{Counts, Subject};
use mxprobe_core::lint::{self, LintInput};
use mxprobe_core::tlsrpt::record::{Rua, select_tlsrpt};
use mxprobe_probe::scan::Scanner;

/// Runs `mxprobe lint`.
pub fn run(args: LintArgs, app: &App) -> anyhow::Result<Outcome> {
    let policy = read_policy_file(app, "--policy", args.policy.as_deref())?;
    let input = LintInput {
        domain: args.domain.clone(),
        policy,
        sts_txt: args.sts_txt.clone(),
        tlsrpt_txt: args.tlsrpt_txt.clone(),
        tlsrpt_name: Some(args.tlsrpt_name.clone()),
        mx: args.mx.clone(),
    };
    let mut report = lint::lint(&input).context("checking the command line")?;
    if args.live {
        check_destinations(&args, &mut report, app)?;
    }
    match args.format {
        Format::Json => {
            let mut out = app.out();
            serde_json::to_writer_pretty(&mut *out, &report)?;
            writeln!(out)?;
        }
        Format::Text => app.styled(args.color, |w| {
            mxprobe_core::render::write_lint_report(w, &report, app.text_width)
        })?,
    }
    // Lint tests nothing on the network but the destinations of --live, whose "could not
    // tell" is a notice, never failing: so it is never inconclusive.
    Ok(Outcome::of(
        report.status(args.fail_on),
        Inconclusive::Report,
    ))
}

/// `--live`: the destinations of the candidate `_smtp._tls` record observed and judged as
/// a scan judges them, their findings added to the report.
fn check_destinations(
    args: &LintArgs,
    report: &mut lint::LintReport,
    app: &App,
) -> anyhow::Result<()> {
    let config = probe_config(&args.probe, &app.env)?;
    let records = select_tlsrpt(&args.tlsrpt_txt);
    let Some(record) = records.record() else {
        // An invalid set has its own findings; there is nothing to deliver to.
        return Ok(());
    };
    let usable: Vec<Rua> = record.usable_rua().take(MAX_RUA_CHECKED).cloned().collect();
    let txt = given_txt(&args.tlsrpt_txt, DnssecStatus::Indeterminate);
    let now = app.now();
    let (observed, anchors) = runtime()?.block_on(async {
        let scanner = Scanner::new(config).context("setting up the DNS resolver")?;
        let observed = scanner.observe_rua(None, &txt).await;
        warn_once_about_the_resolver(app, &scanner, &mut false);
        anyhow::Ok((observed, scanner.config().anchors.clone()))
    })?;
    let opts = EvalOptions {
        anchors: &anchors,
        now,
        content_type: ContentTypeRule::default(),
        expiry_warn_days: EXPIRY_WARN_DAYS,
    };
    let subject = report
        .domain
        .as_ref()
        .map(Subject::domain)
        .unwrap_or_default();
    let mut findings = Vec::new();
    report.tlsrpt_destinations =
        judge_observed(None, &observed, &usable, &opts, &subject, &mut findings);
    report.findings.extend(findings);
    report.counts = Counts::of(&report.findings);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Command;
    use crate::cmd::testing::{app, app_with_stdin, parse};

    fn fixture(name: &str) -> String {
        format!("{}/fixtures/lint/{name}", env!("CARGO_MANIFEST_DIR"))
    }

    /// The string `field` of each object in the JSON array `items`, in order.
    fn strings<'a>(items: &'a serde_json::Value, field: &str) -> Vec<&'a str> {
        items
            .as_array()
            .unwrap()
            .iter()
            .map(|item| item[field].as_str().unwrap())
            .collect()
    }

    fn lint_args(args: &[&str]) -> LintArgs {
        match parse(args) {
            Command::Lint(args) => args,
            other => panic!("not lint: {other:?}"),
        }
    }

    #[test]
    fn a_broken_policy_fails_with_its_findings_in_text() {
        let t = app();
        let policy = fixture("broken-policy.txt");
        let outcome = run(lint_args(&["lint", "--policy", &policy]), &t.app).unwrap();
        assert_eq!(outcome, Outcome::Fail);
        let text = t.out.text();
        assert!(
            text.starts_with("mxprobe lint\n\n  policy          INVALID\n"),
            "{text}"
        );
        for code in [
            "error   sts.policy.bad-mode  policy line 2",
            "error   sts.policy.bad-mx  policy line 4",
            "warning sts.policy.duplicate-key  policy line 6",
        ] {
            assert!(text.contains(code), "{code} in {text}");
        }
        assert!(
            text.ends_with("3 errors, 1 warning, no notices\n"),
            "{text}"
        );
        // No colour unless asked for.
        assert!(!text.contains('\u{1b}'), "{text}");
    }

    #[test]
    fn the_threshold_decides_and_json_carries_the_findings() {
        let policy = fixture("good-policy.txt");
        let flags = [
            "lint",
            "--policy",
            &policy,
            "--mx",
            "mx1.example.com",
            "--format",
            "json",
        ];
        let t = app();
        assert_eq!(run(lint_args(&flags), &t.app).unwrap(), Outcome::Pass);
        let doc: serde_json::Value = serde_json::from_str(&t.out.text()).unwrap();
        let codes: Vec<&str> = strings(&doc["findings"], "code");
        assert_eq!(codes, ["sts.policy.unused-pattern"]);
        // The unused pattern is a notice: it fails at --fail-on notice.
        let mut strict = flags.to_vec();
        strict.extend(["--fail-on", "notice"]);
        let t = app();
        assert_eq!(run(lint_args(&strict), &t.app).unwrap(), Outcome::Fail);
    }

    #[test]
    fn the_policy_comes_from_standard_input_and_nothing_to_check_is_an_error() {
        let t =
            app_with_stdin(b"version: STSv1\nmode: testing\nmx: mx.example.com\nmax_age: 86400\n");
        let outcome = run(lint_args(&["lint", "--policy", "-"]), &t.app).unwrap();
        assert_eq!(outcome, Outcome::Pass, "{}", t.out.text());
        assert!(
            t.out.text().contains("valid, mode testing"),
            "{}",
            t.out.text()
        );
        let err = run(lint_args(&["lint"]), &app().app).unwrap_err();
        assert!(
            format!("{err:#}").starts_with("checking the command line: "),
            "{err:#}"
        );
    }

    /// `--live` checks the candidate record's destinations on the network (the lab's): a
    /// mailbox at a null MX and an endpoint with an expired certificate.
    #[test]
    fn live_checks_the_destinations_of_the_candidate_record() {
        use crate::cmd::testing::LabFixture;
        let lab = LabFixture::start("lint-live");
        let mut argv: Vec<String> = [
            "lint",
            "--tlsrpt-txt",
            "v=TLSRPTv1; rua=mailto:x@null-mx.test,https://reports.rua-https-expired.test/r",
            "--live",
            "--format",
            "json",
        ]
        .map(str::to_owned)
        .to_vec();
        argv.extend(lab.probe_flags());
        let t = app();
        let outcome = run(lint_args_owned(&argv), &t.app).unwrap();
        assert_eq!(outcome, Outcome::Fail, "{}", t.err.text());
        let doc: serde_json::Value = serde_json::from_str(&t.out.text()).unwrap();
        let deliveries: Vec<&str> = strings(&doc["tlsrpt_destinations"], "delivery");
        assert_eq!(deliveries, ["undeliverable", "certificate-invalid"]);
        let codes: Vec<&str> = strings(&doc["findings"], "code");
        assert_eq!(codes, ["tlsrpt.rua.undeliverable", "tlsrpt.rua.https-cert"]);
        assert_eq!(doc["counts"]["error"], 1);
        // Without --live nothing is asked: the same record is valid.
        let t = app();
        let offline = [
            "lint",
            "--tlsrpt-txt",
            "v=TLSRPTv1; rua=mailto:x@null-mx.test",
        ];
        assert_eq!(run(lint_args(&offline), &t.app).unwrap(), Outcome::Pass);
    }

    fn lint_args_owned(args: &[String]) -> LintArgs {
        match parse(args) {
            Command::Lint(args) => args,
            other => panic!("not lint: {other:?}"),
        }
    }

    #[test]
    fn a_closed_standard_output_is_a_broken_pipe() {
        let t = app().closed_stdout();
        let policy = fixture("good-policy.txt");
        let err = run(lint_args(&["lint", "--policy", &policy]), &t.app).unwrap_err();
        assert!(crate::cmd::is_broken_pipe(&err), "{err:#}");
    }
}
