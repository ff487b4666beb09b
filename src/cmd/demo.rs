//! `mxprobe demo`: the mail lab started on loopback and scanned, as `scan` would.

use std::sync::Arc;

use anyhow::Context as _;

use super::targets::Input;
use super::{App, Outcome, runtime};
use crate::cli::{DemoArgs, Format};
use crate::progress::ProgressMode;
use crate::sinks::{self, ScanFiles, Sink};
use mxprobe_core::domain::DomainName;
use mxprobe_lab::{Lab, Scenario};
use mxprobe_probe::bulk::BulkOptions;
use mxprobe_probe::scan::{ScanConfig, Scanner};

/// Runs `mxprobe demo`.
pub fn run(args: DemoArgs, app: &App) -> anyhow::Result<Outcome> {
    runtime()?.block_on(async {
        let scenario = Scenario::embedded().context("reading the embedded lab scenario")?;
        let lab = Lab::start(&scenario, app.now())
            .await
            .context("starting the mail lab on loopback")?;
        let all = lab.domains();
        for d in &args.domains {
            let d = DomainName::parse(d).with_context(|| format!("domain {d:?}"))?;
            anyhow::ensure!(
                all.contains(&d),
                "{d} is not a lab domain (see fixtures/lab/scenario.toml)"
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
        let outcome = scan(app, &args, lab.scan_config(), names).await?;
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
                scan(app, &args, config, names).await?;
            }
        }
        Ok(outcome)
    })
}

/// Scans `names` with `config` as `scan` would, printing in the order given.
async fn scan(
    app: &App,
    args: &DemoArgs,
    config: ScanConfig,
    names: Vec<String>,
) -> anyhow::Result<Outcome> {
    let sink = Sink::scan(app, &args.output, ScanFiles::default(), true)?;
    let scanner = Arc::new(Scanner::new(config).context("setting up the DNS resolver")?);
    sinks::run(
        scanner,
        Input::domains(names),
        &BulkOptions::default(),
        sink,
        ProgressMode::Quiet,
    )
    .await
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
        assert_eq!(run(args, &t.app).unwrap(), Outcome::Fail);
        let text = t.out.text();
        let good = text.find("good.test  OK").expect("good.test is shown");
        let expired = text
            .find("expired.test  FAIL")
            .expect("expired.test is shown");
        assert!(good < expired, "{text}");
        assert!(
            text.ends_with("2 domain(s): 1 with errors, 0 inconclusive\n"),
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

        // mode-none.test has a notice only: it fails at --fail-on notice alone.
        let t = app();
        let args = demo_args(&["demo", "mode-none.test", "--format", "json"]);
        assert_eq!(run(args, &t.app).unwrap(), Outcome::Pass);
        let doc: serde_json::Value = serde_json::from_str(&t.out.text()).unwrap();
        assert_eq!(doc["counts"]["notice"], 1, "{doc}");
        let args = demo_args(&["demo", "mode-none.test", "--fail-on", "notice"]);
        assert_eq!(run(args, &app().app).unwrap(), Outcome::Fail);
    }

    #[test]
    fn demo_refuses_a_domain_the_lab_does_not_have() {
        let t = app();
        let err = run(demo_args(&["demo", "example.com"]), &t.app).unwrap_err();
        assert_eq!(
            err.to_string(),
            "example.com is not a lab domain (see fixtures/lab/scenario.toml)"
        );
    }
}
