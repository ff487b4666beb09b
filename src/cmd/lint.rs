//! `mxprobe lint`: candidate records and a policy file judged offline.

use std::io::Write as _;

use anyhow::Context as _;

use super::{App, Outcome, read_policy_file};
use crate::cli::{Format, Inconclusive, LintArgs};
use mxprobe_core::lint::{self, LintInput};

/// Runs `mxprobe lint`.
pub fn run(args: LintArgs, app: &App) -> anyhow::Result<Outcome> {
    let policy = read_policy_file(app, "--policy", args.policy.as_deref())?;
    let input = LintInput {
        domain: args.domain,
        policy,
        sts_txt: args.sts_txt,
        tlsrpt_txt: args.tlsrpt_txt,
        tlsrpt_name: Some(args.tlsrpt_name),
        mx: args.mx,
    };
    let report = lint::lint(&input).context("checking the command line")?;
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
    // Lint tests nothing on the network, so it is never inconclusive.
    Ok(Outcome::of(
        report.status(args.fail_on),
        Inconclusive::Report,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Command;
    use crate::cmd::testing::{app, app_with_stdin, parse};

    fn fixture(name: &str) -> String {
        format!("{}/fixtures/lint/{name}", env!("CARGO_MANIFEST_DIR"))
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
        let codes: Vec<&str> = doc["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["code"].as_str().unwrap())
            .collect();
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

    #[test]
    fn a_closed_standard_output_is_a_broken_pipe() {
        let t = app().closed_stdout();
        let policy = fixture("good-policy.txt");
        let err = run(lint_args(&["lint", "--policy", &policy]), &t.app).unwrap_err();
        assert!(crate::cmd::is_broken_pipe(&err), "{err:#}");
    }
}
