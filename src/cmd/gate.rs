//! `mxprobe gate`: the live domain observed, then judged as if the candidate were published.

use std::io::Write as _;

use anyhow::Context as _;

use super::{App, Outcome, given_txt, read_policy_file, runtime, warn_once_about_the_resolver};
use crate::cli::{Format, GateArgs};
use crate::config::probe_config;
use crate::sinks::Sink;
use mxprobe_core::domain::DomainName;
use mxprobe_core::gate::{
    self, Candidate, CandidatePolicy, CandidateSummary, GATE_SCHEMA_VERSION, GateDocument,
};
use mxprobe_core::lint;
use mxprobe_core::output::write_domain;
use mxprobe_core::result::DomainResult;
use mxprobe_probe::scan::Scanner;

/// Runs `mxprobe gate`.
pub fn run(args: GateArgs, app: &App) -> anyhow::Result<Outcome> {
    let domain =
        DomainName::parse(&args.domain).with_context(|| format!("domain {:?}", args.domain))?;
    let mx: Vec<DomainName> = args
        .mx
        .iter()
        .map(|m| DomainName::parse(m).with_context(|| format!("--mx {m:?}")))
        .collect::<anyhow::Result<_>>()?;
    lint::check_txt_lengths(&args.sts_txt, &args.tlsrpt_txt)?;
    let policy =
        read_policy_file(app, "--policy-file", args.policy_file.as_deref())?.map(|bytes| {
            let not_utf8 = std::str::from_utf8(&bytes).is_err();
            CandidatePolicy {
                body: String::from_utf8_lossy(&bytes).into_owned(),
                not_utf8,
            }
        });
    let config = probe_config(&args.probe, &app.env)?;
    let output = &args.output;
    let title = format!("mxprobe gate {domain}");
    let meta = crate::sinks::html_meta(app, title.clone(), &config);
    let mut sink = Sink::gate(app, output, title)?.with_html(
        output.html.as_deref(),
        meta,
        mxprobe_core::html::Kind::Scan,
    )?;
    let (gated, checked_at) = runtime()?.block_on(async {
        let scanner = Scanner::new(config).context("setting up the DNS resolver")?;
        let now = app.now();
        // Candidate MX hosts in the order given, at preferences 10, 20, …
        let candidate_hosts = futures::future::join_all(
            mx.iter()
                .zip((10u16..).step_by(10))
                .map(|(host, preference)| scanner.observe_host(host, preference)),
        );
        let (mut live, hosts) = futures::join!(scanner.observe(&domain, now), candidate_hosts);
        warn_once_about_the_resolver(app, &scanner, &mut false);
        if !args.tlsrpt_txt.is_empty() {
            // The candidate's report destinations, checked as the live ones are: the gate
            // judges whether its reports will arrive before it is published.
            let candidate_txt = given_txt(&args.tlsrpt_txt, live.tlsrpt_txt.dnssec());
            for rua in scanner.observe_rua(Some(&domain), &candidate_txt).await {
                if !live.rua.iter().any(|r| r.uri() == rua.uri()) {
                    live.rua.push(rua);
                }
            }
        }
        let wants_policy = policy.is_some() || !args.sts_txt.is_empty();
        let policy_host = if wants_policy && live.policy_fetch.is_none() {
            Some(scanner.fetch(&domain).await)
        } else {
            None
        };
        let candidate = Candidate {
            policy,
            sts_txt: args.sts_txt.clone(),
            tlsrpt_txt: args.tlsrpt_txt.clone(),
            mx: hosts,
            policy_host,
        };
        let gated = gate::judge(
            &live,
            &candidate,
            &scanner.eval_options(now),
            &mxprobe_core::generate::policy_id(now),
        );
        anyhow::Ok((gated, now))
    })?;
    let report = DomainResult::new(gated.facts.clone(), gated.verdict.clone());
    match output.format {
        Format::Json => {
            let mut out = app.out();
            serde_json::to_writer_pretty(
                &mut *out,
                &GateDocument {
                    schema_version: GATE_SCHEMA_VERSION,
                    domain: &domain,
                    checked_at,
                    candidate: CandidateSummary {
                        policy_file: args.policy_file.as_deref(),
                        sts_txt: &args.sts_txt,
                        tlsrpt_txt: &args.tlsrpt_txt,
                        mx: &args.mx,
                    },
                    gated: &gated,
                },
            )?;
            writeln!(out)?;
        }
        Format::Text => app.styled(output.color, |w| {
            writeln!(w, "{}\n", heading(&domain, &args))?;
            write_domain(w, &report, app.text_width)
        })?,
    }
    sink.domain(0, report)?;
    sink.finish_outputs(&mxprobe_probe::bulk::BulkStats::default())?;
    Ok(sink.outcome())
}

/// The first line of the text output: the domain, and what is proposed.
fn heading(domain: &DomainName, args: &GateArgs) -> String {
    let mut proposed = Vec::new();
    if let Some(path) = &args.policy_file {
        proposed.push(format!("policy file {}", path.display()));
    }
    for txt in &args.sts_txt {
        proposed.push(format!("_mta-sts TXT \"{txt}\""));
    }
    for txt in &args.tlsrpt_txt {
        proposed.push(format!("_smtp._tls TXT \"{txt}\""));
    }
    if !args.mx.is_empty() {
        proposed.push(format!("MX {}", args.mx.join(", ")));
    }
    if proposed.is_empty() {
        format!("mxprobe gate: {domain} as it is live (no candidate given)")
    } else {
        format!(
            "mxprobe gate: {domain} judged as if published: {}",
            proposed.join("; ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Command;
    use crate::cmd::testing::{LabFixture, TempDir, app, app_with_stdin, parse};
    use serde_json::Value;

    fn gate_args(args: &[String]) -> GateArgs {
        match parse(args) {
            Command::Gate(args) => args,
            other => panic!("not gate: {other:?}"),
        }
    }

    fn argv(lab: &LabFixture, flags: &[&str]) -> Vec<String> {
        let mut argv: Vec<String> = std::iter::once("gate")
            .chain(flags.iter().copied())
            .map(str::to_owned)
            .collect();
        argv.extend(lab.probe_flags());
        argv
    }

    #[test]
    fn gate_judges_the_live_lab_and_a_candidate() {
        let lab = LabFixture::start("gate");
        let dir = TempDir::new("gate-out");

        // Live, as it is: good.test passes, and the text says no candidate was given.
        let t = app();
        let out = run(gate_args(&argv(&lab, &["good.test"])), &t.app).unwrap();
        assert_eq!(out, Outcome::Pass, "{}", t.out.text());
        assert!(
            t.out.text().starts_with(
                "mxprobe gate: good.test as it is live (no candidate given)\n\ngood.test  OK\n"
            ),
            "{}",
            t.out.text()
        );

        // A policy (from standard input) that leaves out the live MX: the gate fails,
        // in the JSON document, the JUnit file and the report directory alike.
        let t =
            app_with_stdin(b"version: STSv1\nmode: enforce\nmx: other.example\nmax_age: 86400\n");
        let junit = dir.arg("gate.xml");
        let reports = dir.arg("reports");
        let flags = [
            "good.test",
            "--policy-file",
            "-",
            "--format",
            "json",
            "--junit",
            &junit,
            "--report-dir",
            &reports,
        ];
        let out = run(gate_args(&argv(&lab, &flags)), &t.app).unwrap();
        assert_eq!(out, Outcome::Fail);
        let doc: Value = serde_json::from_str(&t.out.text()).unwrap();
        assert_eq!(doc["schema_version"], 1);
        assert_eq!(doc["domain"], "good.test");
        assert_eq!(doc["candidate"]["policy_file"], "-");
        let codes: Vec<&str> = doc["verdict"]["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["code"].as_str().unwrap())
            .collect();
        assert!(codes.contains(&"sts.policy.mx-not-covered"), "{codes:?}");
        let xml = std::fs::read_to_string(&junit).unwrap();
        assert!(xml.contains("<testsuite name=\"good.test\""), "{xml}");
        assert!(xml.contains("<failure"), "{xml}");
        assert_eq!(std::fs::read_dir(&reports).unwrap().count(), 1);
        assert!(
            t.err
                .text()
                .contains("mxprobe: wrote 1 synthetic TLS-RPT report(s) to "),
            "{}",
            t.err.text()
        );
    }

    #[test]
    fn under_github_the_annotations_leave_json_output_clean() {
        let lab = LabFixture::start("gate-github");
        let dir = TempDir::new("gate-github");
        let t = app().under_github(dir.path("summary.md"));
        let flags = ["expired.test", "--format", "json"];
        assert_eq!(
            run(gate_args(&argv(&lab, &flags)), &t.app).unwrap(),
            Outcome::Fail
        );
        let _: Value = serde_json::from_str(&t.out.text()).expect("stdout is one JSON document");
        assert!(
            t.err.text().contains("::error title=mxprobe "),
            "{}",
            t.err.text()
        );
        let summary = std::fs::read_to_string(dir.path("summary.md")).unwrap();
        assert!(
            summary.starts_with("## mxprobe gate expired.test\n"),
            "{summary}"
        );
    }

    #[test]
    fn bad_arguments_are_errors_before_any_probe() {
        let t = app();
        let err = run(gate_args(&["gate".into(), "bad domain".into()]), &t.app).unwrap_err();
        assert!(
            err.to_string().starts_with("domain \"bad domain\""),
            "{err}"
        );
        let flags: Vec<String> = ["gate", "a.example", "--mx", "not a host"]
            .map(str::to_owned)
            .to_vec();
        let err = run(gate_args(&flags), &t.app).unwrap_err();
        assert!(err.to_string().starts_with("--mx \"not a host\""), "{err}");
    }
}
