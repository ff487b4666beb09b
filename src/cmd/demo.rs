//! `mxprobe demo`: the mail lab started on loopback and scanned, as `scan` would.

use std::io::Write as _;
use std::sync::Arc;

use anyhow::Context as _;

use super::targets::Input;
use super::{App, Outcome, runtime};
use crate::cli::{DemoArgs, Format};
use crate::progress::ProgressMode;
use crate::sinks::{self, ScanFiles, Sink};
use mxprobe_core::domain::DomainName;
use mxprobe_core::html::Kind;
use mxprobe_core::result::DomainResult;
use mxprobe_lab::scenario::Expectation;
use mxprobe_lab::{Lab, RunningLab, Scenario};
use mxprobe_probe::bulk::BulkOptions;
use mxprobe_probe::scan::{ScanConfig, Scanner};

/// Runs `mxprobe demo`: the exit status says whether every lab domain was judged as the
/// scenario expects (0) or not (1), whatever the domains' own findings.
pub fn run(args: DemoArgs, app: &App) -> anyhow::Result<Outcome> {
    let scenario = Scenario::embedded().context("reading the embedded lab scenario")?;
    run_scenario(args, app, &scenario)
}

/// [`run`] with the lab of `scenario`.
fn run_scenario(args: DemoArgs, app: &App, scenario: &Scenario) -> anyhow::Result<Outcome> {
    runtime()?.block_on(async {
        let lab = Lab::start(scenario, app.now())
            .await
            .context("starting the mail lab on loopback")?;
        let all = lab.domains();
        for d in &args.domains {
            let d = DomainName::parse(d).with_context(|| format!("domain {d:?}"))?;
            anyhow::ensure!(
                all.contains(&d),
                "{d} is not a lab domain (`mxprobe lab --list` lists them)"
            );
        }
        let names: Vec<String> = if args.domains.is_empty() {
            all.iter().map(ToString::to_string).collect()
        } else {
            args.domains.clone()
        };
        if args.output.format == Format::Text {
            app.note(format_args!(
                "mxprobe demo: mail lab on loopback ({} domains, DNS at {}); scanning {}\n",
                all.len(),
                lab.dns().addr,
                names.len()
            ));
        }
        let mut check = SelfCheck::default();
        let html = args.output.html.as_deref();
        let Some(results) = scan(app, &args, lab.scan_config(), names, html).await? else {
            return Ok(Outcome::Interrupted);
        };
        for (domain, report) in results {
            let expect = scenario.domain(&domain).map(|d| &d.expect);
            check.judge(&lab, expect, &domain, report.as_ref(), false);
        }
        // The broken resolvers of the scenario, each with the domains it lists: the resolver
        // is named once on stderr and every domain is inconclusive, none failing. Shown with
        // the full text demo only (one JSON document, report files and CI outputs stay those
        // of the lab scan).
        let full_text = args.output.format == Format::Text
            && args.domains.is_empty()
            && args.output.report_dir.is_none()
            && args.output.junit.is_none();
        if full_text {
            for spec in &scenario.resolvers {
                let config = lab
                    .scan_config_through(&spec.name)
                    .with_context(|| format!("the lab resolver {}", spec.name))?;
                let servers = config
                    .dns
                    .servers
                    .as_deref()
                    .unwrap_or_default()
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ");
                app.note(format_args!(
                    "\nmxprobe demo: the same lab through {} ({}, at {servers}); scanning {}\n",
                    spec.about,
                    spec.name,
                    spec.domains.len()
                ));
                let names = spec.domains.iter().map(ToString::to_string).collect();
                let Some(results) = scan(app, &args, config, names, None).await? else {
                    return Ok(Outcome::Interrupted);
                };
                for (domain, report) in results {
                    check.judge(&lab, Some(&spec.expect), &domain, report.as_ref(), true);
                }
            }
        }
        for problem in &check.problems {
            app.note(format_args!("mxprobe demo: not as expected: {problem}"));
        }
        let line = check.line();
        if args.output.format == Format::Text {
            writeln!(app.out(), "\n{line}").context("writing the self-check")?;
        } else {
            app.note(line);
        }
        Ok(if check.failed.is_empty() {
            Outcome::Pass
        } else {
            Outcome::Fail
        })
    })
}

/// The lab's verdicts held to the scenario's expectations.
#[derive(Debug, Default)]
struct SelfCheck {
    /// Scans through the lab's own DNS: (as expected, all).
    direct: (usize, usize),
    /// Scans through the lab's broken resolvers: (as expected, all).
    through_resolvers: (usize, usize),
    /// The domains judged otherwise than expected, once each, in order.
    failed: Vec<String>,
    /// Every difference, in words.
    problems: Vec<String>,
}

impl SelfCheck {
    fn judge(
        &mut self,
        lab: &RunningLab,
        expect: Option<&Expectation>,
        domain: &DomainName,
        report: Option<&DomainResult>,
        through_resolver: bool,
    ) {
        // Nothing is probed through a broken resolver: no sessions are expected.
        let problems = match (expect, report) {
            (None, _) => vec![format!("{domain}: not in the scenario")],
            (Some(_), None) => vec![format!("{domain}: no verdict (not tested)")],
            (Some(e), Some(r)) if through_resolver => e.mismatches(domain, r, &|_| 0),
            (Some(e), Some(r)) => lab.judge(e, domain, r),
        };
        let count = if through_resolver {
            &mut self.through_resolvers
        } else {
            &mut self.direct
        };
        count.1 += 1;
        if problems.is_empty() {
            count.0 += 1;
        } else {
            let name = domain.to_string();
            if !self.failed.contains(&name) {
                self.failed.push(name);
            }
            self.problems.extend(problems);
        }
    }

    /// The closing line: how many lab domains were judged as expected, and which were not.
    fn line(&self) -> String {
        let (ok, all) = self.direct;
        let domains = if all == 1 { "domain" } else { "domains" };
        let mut line = format!("{ok} of {all} lab {domains} judged as expected");
        let (ok, all) = self.through_resolvers;
        if all > 0 {
            let scans = if all == 1 { "scan" } else { "scans" };
            line.push_str(&format!(
                ", and {ok} of {all} {scans} through broken resolvers"
            ));
        }
        if !self.failed.is_empty() {
            line.push_str(&format!("; not as expected: {}", self.failed.join(", ")));
        }
        line
    }
}

/// Scans `names` with `config` as `scan` would, printing in the order given, with the HTML
/// report written to `html`; every domain seen with its report, or none when the run was
/// interrupted.
async fn scan(
    app: &App,
    args: &DemoArgs,
    config: ScanConfig,
    names: Vec<String>,
    html: Option<&std::path::Path>,
) -> anyhow::Result<Option<Vec<(DomainName, Option<DomainResult>)>>> {
    let meta = sinks::html_meta(app, "mxprobe demo: the mail lab", &config);
    let sink = Sink::scan(app, &args.output, ScanFiles::default(), true)?
        .with_html(html, meta, Kind::Scan)?
        .keeping_results();
    let scanner = Arc::new(Scanner::new(config).context("setting up the DNS resolver")?);
    let (outcome, mut sink) = sinks::run_into(
        scanner,
        Input::domains(names),
        &BulkOptions::default(),
        sink,
        ProgressMode::Quiet,
    )
    .await?;
    Ok((outcome != Outcome::Interrupted).then(|| sink.take_kept()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Command;
    use crate::cmd::testing::{TempDir, app, parse};

    fn demo_args(args: &[&str]) -> DemoArgs {
        match parse(args) {
            Command::Demo(args) => args,
            other => panic!("not demo: {other:?}"),
        }
    }

    #[test]
    fn demo_scans_the_chosen_lab_domains_in_order() {
        let dir = TempDir::new("demo");
        let junit = dir.arg("demo.xml");
        let t = app();
        let args = demo_args(&["demo", "good.test", "expired.test", "--junit", &junit]);
        // expired.test fails, as the scenario expects: the demo passes its self-check.
        assert_eq!(run(args, &t.app).unwrap(), Outcome::Pass);
        let text = t.out.text();
        let good = text.find("good.test  OK").expect("good.test is shown");
        let expired = text
            .find("expired.test  FAIL")
            .expect("expired.test is shown");
        assert!(good < expired, "{text}");
        assert!(
            text.contains("\n2 domains: 1 OK, 1 FAIL; findings: "),
            "{text}"
        );
        assert!(
            text.ends_with("\n\n2 of 2 lab domains judged as expected\n"),
            "{text}"
        );
        assert!(
            t.err
                .text()
                .starts_with("mxprobe demo: mail lab on loopback ("),
            "{}",
            t.err.text()
        );
        let xml = std::fs::read_to_string(&junit).unwrap();
        assert_eq!(xml.matches("<testsuite ").count(), 2, "{xml}");
        assert!(xml.contains("<failure "), "{xml}");

        // mode-none.test has a notice only: the CI outputs fail it at --fail-on notice
        // alone; the exit status is the self-check's either way.
        let t = app();
        let args = demo_args(&["demo", "mode-none.test", "--format", "json"]);
        assert_eq!(run(args, &t.app).unwrap(), Outcome::Pass);
        let doc: serde_json::Value = serde_json::from_str(&t.out.text()).unwrap();
        assert_eq!(doc["counts"]["notice"], 1, "{doc}");
        assert_eq!(t.err.text(), "1 of 1 lab domain judged as expected\n");
        for (fail_on, fails) in [("error", false), ("notice", true)] {
            let args = demo_args(&[
                "demo",
                "mode-none.test",
                "--fail-on",
                fail_on,
                "--junit",
                &junit,
            ]);
            assert_eq!(run(args, &app().app).unwrap(), Outcome::Pass);
            let xml = std::fs::read_to_string(&junit).unwrap();
            assert_eq!(xml.contains("<failure "), fails, "{xml}");
        }
    }

    /// A lab domain judged otherwise than the scenario says is named, and the demo exits 1.
    #[test]
    fn demo_names_a_domain_judged_otherwise_than_expected() {
        let mut scenario = Scenario::embedded().unwrap();
        let good = DomainName::parse("good.test").unwrap();
        let spec = scenario
            .domains
            .iter_mut()
            .find(|d| d.name == good)
            .unwrap();
        spec.expect.inconclusive = true;
        let t = app();
        let args = demo_args(&["demo", "good.test", "expired.test"]);
        assert_eq!(
            run_scenario(args, &t.app, &scenario).unwrap(),
            Outcome::Fail
        );
        assert!(
            t.out
                .text()
                .ends_with("\n1 of 2 lab domains judged as expected; not as expected: good.test\n"),
            "{}",
            t.out.text()
        );
        assert!(
            t.err.text().contains(
                "mxprobe demo: not as expected: good.test: inconclusive: expected true, got \
                 false\n"
            ),
            "{}",
            t.err.text()
        );
    }

    #[test]
    fn demo_refuses_a_domain_the_lab_does_not_have() {
        let t = app();
        let err = run(demo_args(&["demo", "example.com"]), &t.app).unwrap_err();
        assert_eq!(
            err.to_string(),
            "example.com is not a lab domain (`mxprobe lab --list` lists them)"
        );
    }
}
