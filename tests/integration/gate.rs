//! `mxprobe gate` against the lab: every exit status (0, 1, 2, 3) from the situations the CI
//! gate exists for, candidate changes caught with findings that name the MX and the fix,
//! `--no-smtp` and a blocked SMTP port never reported as SMTP failures, JUnit parsed back,
//! GitHub annotations only under `GITHUB_ACTIONS=true`; and the commands of docs/ci.md run
//! exactly as documented.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use quick_xml::XmlVersion;
use quick_xml::events::Event;
use serde_json::Value;

use crate::support::LabEnv;

/// The lab and the MXPROBE_* environment a CI job would set for a staging setup.
struct GateLab(LabEnv);

impl GateLab {
    fn start(tag: &str) -> Self {
        Self(LabEnv::start(&format!("gate-{tag}")))
    }

    fn command(&self) -> Command {
        self.0.command()
    }

    /// Runs `mxprobe gate …` (the lab keeps serving on its runtime's threads).
    fn gate(&self, args: &[&str]) -> Output {
        self.command()
            .arg("gate")
            .args(args)
            .output()
            .expect("mxprobe runs")
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        self.0.write(name, text)
    }
}

impl std::ops::Deref for GateLab {
    type Target = LabEnv;
    fn deref(&self) -> &LabEnv {
        &self.0
    }
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: stdout {} stderr {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn codes(doc: &Value) -> Vec<String> {
    doc["verdict"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap().to_owned())
        .collect()
}

fn finding<'a>(doc: &'a Value, code: &str) -> &'a Value {
    doc["verdict"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == code)
        .unwrap_or_else(|| panic!("no {code} in {:#}", doc["verdict"]["findings"]))
}

const GOOD_POLICY: &str =
    "version: STSv1\nmode: enforce\nmx: mx1.good.test\nmx: mx2.good.test\nmax_age: 604800\n";

#[test]
fn exit_statuses_and_candidate_findings() {
    let lab = GateLab::start("exit");

    // 0: the live state, and a candidate that only raises max_age under a new id.
    let out = lab.gate(&["good.test"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let raised = lab.write(
        "raised.txt",
        &GOOD_POLICY.replace("max_age: 604800", "max_age: 1209600"),
    );
    let out = lab.gate(&[
        "good.test",
        "--policy-file",
        raised.to_str().unwrap(),
        "--sts-txt",
        "v=STSv1; id=20261129T000000",
        "--format",
        "json",
    ]);
    let doc = json(&out);
    assert_eq!(out.status.code(), Some(0), "{doc:#}");
    assert!(
        codes(&doc).iter().all(|c| !c.starts_with("gate.")),
        "{doc:#}"
    );
    assert_eq!(doc["verdict"]["sts"]["policy"]["max_age"], 1_209_600);
    assert_eq!(doc["live"]["sts"]["policy"]["max_age"], 604_800);

    // 1: the policy drops mx2.good.test, still in DNS, and the id is left unchanged.
    let dropped = lab.write(
        "dropped.txt",
        "version: STSv1\nmode: enforce\nmx: mx1.good.test\nmax_age: 604800\n",
    );
    let out = lab.gate(&[
        "good.test",
        "--policy-file",
        dropped.to_str().unwrap(),
        "--format",
        "json",
    ]);
    let doc = json(&out);
    assert_eq!(out.status.code(), Some(1), "{doc:#}");
    let removed = finding(&doc, "gate.mx.removed-from-policy");
    assert_eq!(removed["severity"], "error");
    assert_eq!(removed["subject"]["mx"], "mx2.good.test");
    assert!(
        removed["fix"]
            .as_str()
            .unwrap()
            .contains("keep \"mx: mx2.good.test\""),
        "{removed:#}"
    );
    let id = finding(&doc, "gate.sts.id-unchanged");
    assert_eq!(id["severity"], "error");
    assert!(
        id["message"]
            .as_str()
            .unwrap()
            .contains("mx removed: mx2.good.test"),
        "{id:#}"
    );
    assert!(
        id["message"].as_str().unwrap().contains("20250101T000000"),
        "{id:#}"
    );
    assert!(
        id["fix"].as_str().unwrap().contains("v=STSv1; id="),
        "{id:#}"
    );
    // The candidate judged by the ordinary rules too: mx2 now fails the policy.
    assert!(!codes(&doc).contains(&"sts.enforce.no-deliverable-mx".to_owned()));
    let sessions = doc["verdict"]["sessions"].as_array().unwrap();
    let mx2 = sessions
        .iter()
        .find(|s| s["mx"] == "mx2.good.test")
        .unwrap();
    assert_eq!(mx2["result"], "failure", "{mx2:#}");

    // 1: a candidate MX with an expired certificate under an enforce policy that covers it.
    let with_expired = lab.write(
        "with-expired.txt",
        "version: STSv1\nmode: enforce\nmx: mx1.good.test\nmx: mx.expired.test\nmax_age: 604800\n",
    );
    let out = lab.gate(&[
        "good.test",
        "--policy-file",
        with_expired.to_str().unwrap(),
        "--sts-txt",
        "v=STSv1; id=20261129T000001",
        "--mx",
        "mx1.good.test,mx.expired.test",
        "--format",
        "json",
    ]);
    let doc = json(&out);
    assert_eq!(out.status.code(), Some(1), "{doc:#}");
    let breaks = finding(&doc, "gate.enforce.breaks-mx");
    assert!(
        breaks["message"]
            .as_str()
            .unwrap()
            .contains("will not deliver to mx.expired.test"),
        "{breaks:#}"
    );
    assert!(
        breaks["fix"].as_str().unwrap().contains("mx.expired.test"),
        "{breaks:#}"
    );
    let expired = finding(&doc, "smtp.cert.leaf-expired");
    assert_eq!(expired["subject"]["mx"], "mx.expired.test");
    assert!(!codes(&doc).contains(&"gate.sts.id-unchanged".to_owned()));

    // 1: a candidate MX list the live policy does not cover.
    let out = lab.gate(&[
        "good.test",
        "--mx",
        "mx1.good.test",
        "--mx",
        "mx.testing-mode.test",
        "--format",
        "json",
    ]);
    let doc = json(&out);
    assert_eq!(out.status.code(), Some(1), "{doc:#}");
    let uncovered = finding(&doc, "gate.mx.not-covered");
    assert_eq!(uncovered["subject"]["mx"], "mx.testing-mode.test");
    assert!(
        uncovered["fix"]
            .as_str()
            .unwrap()
            .contains("add \"mx: mx.testing-mode.test\""),
        "{uncovered:#}"
    );

    // Testing mode: mail flows (0 at --fail-on error), enforce would break it (1 at warning),
    // and a first enforce with a year-long max_age draws its own warning.
    let out = lab.gate(&["testing-mode.test", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{:#}", json(&out));
    let enforce = lab.write(
        "enforce.txt",
        "version: STSv1\nmode: testing\nmx: mx.testing-mode.test\nmax_age: 86400\n",
    );
    let out = lab.gate(&[
        "testing-mode.test",
        "--policy-file",
        enforce.to_str().unwrap(),
        "--sts-txt",
        "v=STSv1; id=20261129T000002",
        "--fail-on",
        "warning",
        "--format",
        "json",
    ]);
    let doc = json(&out);
    assert_eq!(out.status.code(), Some(1), "{doc:#}");
    assert!(
        finding(&doc, "gate.enforce.would-break")["message"]
            .as_str()
            .unwrap()
            .contains("mx.testing-mode.test")
    );
    let year = lab.write(
        "year.txt",
        "version: STSv1\nmode: enforce\nmx: mx1.good.test\nmx: mx2.good.test\nmax_age: 31557600\n",
    );
    let out = lab.gate(&[
        "testing-mode.test",
        "--policy-file",
        year.to_str().unwrap(),
        "--sts-txt",
        "v=STSv1; id=20261129T000003",
        "--format",
        "json",
    ]);
    let doc = json(&out);
    assert_eq!(
        finding(&doc, "gate.max-age.long-first-enforce")["severity"],
        "warning"
    );

    // 2: usage and configuration errors.
    for args in [
        &["no_such domain"][..],
        &["good.test", "--policy-file", "/nonexistent/mta-sts.txt"],
        &["good.test", "--mx", "not a host"],
        &["good.test", "--inconclusive", "maybe"],
    ] {
        let out = lab.gate(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!out.stderr.is_empty());
    }
}

#[test]
fn smtp_not_tested_is_inconclusive_never_a_failure() {
    let lab = GateLab::start("nosmtp");
    // expired.test has an expired MX certificate: with SMTP probed it fails.
    let out = lab.gate(&["expired.test"]);
    assert_eq!(out.status.code(), Some(1));

    let out = lab.gate(&["expired.test", "--no-smtp", "--format", "json"]);
    let doc = json(&out);
    assert_eq!(out.status.code(), Some(3), "{doc:#}");
    assert_eq!(doc["verdict"]["inconclusive"], true);
    let codes = codes(&doc);
    assert!(codes.contains(&"smtp.not-tested".to_owned()), "{codes:?}");
    for c in &codes {
        assert!(
            !c.starts_with("smtp.cert")
                && !c.starts_with("smtp.starttls")
                && c != "sts.enforce.no-deliverable-mx",
            "an SMTP failure reported without SMTP: {c}"
        );
    }
    for s in doc["verdict"]["sessions"].as_array().unwrap() {
        assert_eq!(s["result"], "inconclusive", "{s:#}");
    }
    assert_eq!(
        lab.gate(&["expired.test", "--no-smtp", "--inconclusive", "pass"])
            .status
            .code(),
        Some(0)
    );
    assert_eq!(
        lab.gate(&["expired.test", "--no-smtp", "--inconclusive", "fail"])
            .status
            .code(),
        Some(1)
    );

    // Outbound SMTP blocked: every connection refused, at both MX addresses of good.test.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let out = lab
        .command()
        .env("MXPROBE_SMTP_PORT", port.to_string())
        .args(["gate", "good.test", "--format", "json"])
        .output()
        .unwrap();
    let doc = json(&out);
    assert_eq!(out.status.code(), Some(3), "{doc:#}");
    let blocked = finding(&doc, "smtp.port-blocked");
    assert!(
        blocked["message"]
            .as_str()
            .unwrap()
            .contains("outbound SMTP looks blocked"),
        "{blocked:#}"
    );
    assert!(blocked["fix"].as_str().unwrap().contains("--no-smtp"));
    for c in self::codes(&doc) {
        assert!(
            !c.starts_with("smtp.cert")
                && !c.starts_with("smtp.starttls")
                && c != "smtp.inconclusive",
            "{c}"
        );
    }
}

/// A JUnit test case: its attributes and the names of its child elements.
type Case = (BTreeMap<String, String>, Vec<String>);

/// Elements and attributes of a JUnit document, read back with quick-xml: each suite's
/// attributes and its test cases.
struct Junit {
    suites: Vec<(BTreeMap<String, String>, Vec<Case>)>,
}

fn attributes(e: &quick_xml::events::BytesStart<'_>) -> BTreeMap<String, String> {
    e.attributes()
        .map(|a| {
            let a = a.unwrap();
            (
                a.key.as_ref().to_owned(),
                a.normalized_value(XmlVersion::Explicit1_0)
                    .unwrap()
                    .into_owned(),
            )
        })
        .collect()
}

fn read_junit(path: &Path) -> Junit {
    let xml = std::fs::read_to_string(path).unwrap();
    let mut reader = quick_xml::Reader::from_str(&xml);
    let mut junit = Junit { suites: Vec::new() };
    let mut root = false;
    loop {
        match reader.read_event().unwrap() {
            Event::Start(e) | Event::Empty(e) => {
                let name: String = e.name().as_ref().to_owned();
                match name.as_str() {
                    "testsuites" => root = true,
                    "testsuite" => {
                        assert!(root, "testsuite outside testsuites");
                        junit.suites.push((attributes(&e), Vec::new()));
                    }
                    "testcase" => junit
                        .suites
                        .last_mut()
                        .expect("testcase inside a testsuite")
                        .1
                        .push((attributes(&e), Vec::new())),
                    "failure" | "skipped" | "system-out" => junit
                        .suites
                        .last_mut()
                        .unwrap()
                        .1
                        .last_mut()
                        .expect("inside a testcase")
                        .1
                        .push(name),
                    other => panic!("unexpected element {other}"),
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    assert!(root);
    junit
}

#[test]
fn junit_and_github_outputs() {
    let lab = GateLab::start("ci");
    let junit = lab.dir.join("gate.xml");
    let summary = lab.dir.join("summary.md");
    let out = lab.gate(&["expired.test", "--junit", junit.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !text.contains("::error"),
        "annotations outside GitHub: {text}"
    );
    assert!(!summary.exists());
    let doc = read_junit(&junit);
    assert_eq!(doc.suites.len(), 1);
    let (suite, cases) = &doc.suites[0];
    assert_eq!(suite["name"], "expired.test");
    assert_eq!(suite["tests"], cases.len().to_string());
    let failures = cases
        .iter()
        .filter(|(_, kids)| kids.contains(&"failure".to_owned()))
        .count();
    assert!(failures >= 1);
    assert_eq!(suite["failures"], failures.to_string());
    let starttls = cases
        .iter()
        .find(|(a, _)| a["name"].contains("STARTTLS"))
        .expect("a STARTTLS check");
    assert!(starttls.1.contains(&"failure".to_owned()));
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("smtp.cert.leaf-expired"), "{xml}");

    let out = lab
        .command()
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_STEP_SUMMARY", &summary)
        .args(["gate", "expired.test"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    let error = text
        .lines()
        .find(|l| l.starts_with("::error title=mxprobe smtp.cert.leaf-expired"))
        .unwrap_or_else(|| panic!("no annotation in {text}"));
    assert!(error.contains("mx.expired.test"), "{error}");
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(md.contains("expired.test"), "{md}");
    assert!(md.contains("FAIL"), "{md}");

    // JSON output stays valid JSON under GitHub Actions (the annotations go to stderr).
    let out = lab
        .command()
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_STEP_SUMMARY", &summary)
        .args(["gate", "expired.test", "--format", "json"])
        .output()
        .unwrap();
    json(&out);
    assert!(String::from_utf8_lossy(&out.stderr).contains("::error"));
}

/// The `mxprobe gate` lines of the CI configurations (the `yaml` blocks) of docs/ci.md, as
/// written there.
fn documented_gate_commands() -> Vec<String> {
    let doc = include_str!("../../docs/ci.md");
    let mut commands = Vec::new();
    let mut in_block = false;
    for line in doc.lines() {
        if let Some(fence) = line.trim_start().strip_prefix("```") {
            in_block = !in_block && fence == "yaml";
            continue;
        }
        if !in_block {
            continue;
        }
        if let Some(at) = line.find("mxprobe gate ") {
            commands.push(line[at..].trim().to_owned());
        }
    }
    commands
}

#[test]
fn the_documented_ci_commands_give_the_documented_exit_statuses() {
    let commands = documented_gate_commands();
    assert_eq!(commands.len(), 2, "{commands:?}");
    let lab = GateLab::start("docs");
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_mxprobe")).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let run = |command: &str, extra: &[(&str, String)]| -> i32 {
        let out = Command::new("sh")
            .arg("-c")
            .arg(command)
            .current_dir(&lab.dir)
            .envs(&lab.env)
            .envs(extra.iter().map(|(k, v)| (*k, v.clone())))
            .env("PATH", &path)
            .env("MAIL_DOMAIN", "good.test")
            .env("NO_COLOR", "1")
            .env_remove("SSL_CERT_FILE")
            .env_remove("GITHUB_ACTIONS")
            .output()
            .unwrap();
        let junit = lab.dir.join("mxprobe-junit.xml");
        assert!(junit.exists(), "{command}: no JUnit file");
        read_junit(&junit);
        std::fs::remove_file(&junit).unwrap();
        out.status.code().unwrap()
    };
    let publish = |policy: &str, id: &str| {
        lab.write("mail/mta-sts.txt", policy);
        lab.write("mail/mta-sts.id", &format!("{id}\n"));
    };
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port().to_string();
    drop(closed);
    // GitHub (hosted runners block port 25: --no-smtp --inconclusive pass) and GitLab (a
    // runner with port 25 open; exit 3 allowed as a warning).
    let expectations = [(0, 1, 1, 0), (0, 1, 1, 3)];
    for (command, (good, dropped, same_id, blocked)) in commands.iter().zip(expectations) {
        publish(
            &GOOD_POLICY.replace("max_age: 604800", "max_age: 1209600"),
            "20261129T100000",
        );
        assert_eq!(run(command, &[]), good, "{command}: a good change");
        publish(
            "version: STSv1\nmode: enforce\nmx: mx1.good.test\nmax_age: 604800\n",
            "20261129T100001",
        );
        assert_eq!(run(command, &[]), dropped, "{command}: mx2 dropped");
        publish(
            &GOOD_POLICY.replace("mode: enforce", "mode: testing"),
            "20250101T000000",
        );
        assert_eq!(run(command, &[]), same_id, "{command}: id unchanged");
        publish(GOOD_POLICY, "20261129T100002");
        assert_eq!(
            run(command, &[("MXPROBE_SMTP_PORT", closed_port.clone())]),
            blocked,
            "{command}: port 25 blocked"
        );
    }
}

/// `mxprobe generate` prints records and a policy that `mxprobe lint` accepts, for several
/// inputs; `--live` takes the MX hosts from DNS.
#[test]
fn generated_records_pass_lint() {
    let lab = GateLab::start("generate");
    let cases: [&[&str]; 5] = [
        &[
            "--domain",
            "example.com",
            "--mx",
            "mx1.example.com",
            "--rua",
            "mailto:tlsrpt@example.com",
        ],
        &[
            "--domain",
            "example.org",
            "--mx",
            "mx1.example.net,mx2.example.net",
            "--mode",
            "enforce",
            "--max-age",
            "1209600",
            "--rua",
            "mailto:tls,rpt@example.org",
            "--rua",
            "https://reports.example.org/tlsrpt",
        ],
        &[
            "--domain",
            "xn--bcher-kva.example",
            "--mx",
            "*.mail.example.net",
            "--rua",
            "mailto:r@example.net",
        ],
        &[
            "--domain",
            "good.test",
            "--live",
            "--mode",
            "enforce",
            "--rua",
            "mailto:tlsrpt@good.test",
        ],
        &[
            "--domain",
            "implicit-mx.test",
            "--live",
            "--rua",
            "mailto:tlsrpt@implicit-mx.test",
        ],
    ];
    for args in cases {
        let out = lab
            .command()
            .arg("generate")
            .args(args)
            .args(["--format", "json"])
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let generated = json(&out);
        let policy = lab.write(
            "generated-policy.txt",
            generated["policy"].as_str().unwrap(),
        );
        let domain = args[1];
        let mx: Vec<String> = generated["policy"]
            .as_str()
            .unwrap()
            .lines()
            .filter_map(|l| l.strip_prefix("mx: "))
            .map(|p| p.trim().trim_start_matches("*.").to_owned())
            .map(|p| {
                if p.contains("mail.example.net") {
                    format!("a.{p}")
                } else {
                    p
                }
            })
            .collect();
        assert!(!mx.is_empty(), "{generated:#}");
        let mut lint = lab.command();
        lint.args([
            "lint",
            "--domain",
            domain,
            "--policy",
            policy.to_str().unwrap(),
            "--sts-txt",
            generated["sts_txt"].as_str().unwrap(),
            "--tlsrpt-txt",
            generated["tlsrpt_txt"].as_str().unwrap(),
            "--fail-on",
            "warning",
            "--format",
            "json",
        ]);
        for m in &mx {
            lint.args(["--mx", m]);
        }
        let out = lint.output().unwrap();
        let report = json(&out);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {report:#}");
        assert_eq!(generated["sts_txt_name"], format!("_mta-sts.{domain}"));
        assert_eq!(
            generated["policy_url"],
            format!("https://mta-sts.{domain}/.well-known/mta-sts.txt")
        );
    }
    // --live follows the MX records in preference order; the implicit MX is the domain.
    let out = lab
        .command()
        .args([
            "generate",
            "--domain",
            "good.test",
            "--live",
            "--rua",
            "mailto:r@good.test",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    let policy = json(&out)["policy"].as_str().unwrap().to_owned();
    assert!(
        policy.contains("mx: mx1.good.test\r\nmx: mx2.good.test\r\n"),
        "{policy:?}"
    );
    let out = lab
        .command()
        .args([
            "generate",
            "--domain",
            "null-mx.test",
            "--live",
            "--rua",
            "mailto:r@null-mx.test",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("null MX"));
}
