//! `mxprobe reports`: the real reports of fixtures/tlsrpt-reports ingested (files and
//! e-mails), stored once, summarised; a malformed file skipped with its reason; and
//! `compare` against a monitoring run of the lab with hand-made reports covering its three
//! lists.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Output;

use mxprobe_core::domain::DomainName;
use serde_json::{Value, json};

use crate::support::LabEnv;

/// The lab, and `mxprobe` run against it with a history database in a scratch directory.
struct Setup(LabEnv);

impl Setup {
    fn start(tag: &str) -> Self {
        let env = LabEnv::start(&format!("reports-{tag}"));
        std::fs::create_dir_all(env.dir.join("inbox")).unwrap();
        Self(env)
    }

    fn run(&self, args: &[&str]) -> Output {
        self.0.command().args(args).output().unwrap()
    }
}

impl std::ops::Deref for Setup {
    type Target = LabEnv;
    fn deref(&self) -> &LabEnv {
        &self.0
    }
}

fn out(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/tlsrpt-reports")
}

#[test]
fn real_reports_ingest_once_and_a_malformed_one_is_skipped() {
    let s = Setup::start("ingest");
    let bad = s.dir.join("inbox/truncated.json");
    std::fs::write(
        &bad,
        "{\"organization-name\": \"Broken Inc.\", \"report-id\": ",
    )
    .unwrap();
    let fixtures = fixtures();
    let paths = [
        fixtures.join("parsedmarc"),
        fixtures.join("mox"),
        s.dir.join("inbox"),
    ];
    let mut args = vec!["reports", "ingest"];
    let texts: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    args.extend(texts.iter().map(String::as_str));
    let o = s.run(&args);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    // parsedmarc/: 3 JSON files and 1 e-mail; mox/: 2 e-mails; the inbox: 1 broken file.
    assert!(
        stdout.contains("6 report(s) stored, 0 already stored, 1 skipped"),
        "{}",
        out(&o)
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr
            .lines()
            .any(|l| l.contains("truncated.json") && l.contains("skipped")),
        "{stderr}"
    );
    // Again: nothing new.
    let o = s.run(&args);
    assert!(
        String::from_utf8_lossy(&o.stdout)
            .contains("0 report(s) stored, 6 already stored, 1 skipped"),
        "{}",
        out(&o)
    );

    // The summary as JSON, per domain: every reported policy domain is there.
    let o = s.run(&["reports", "summary", "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    let summary: Value = serde_json::from_slice(&o.stdout).unwrap();
    let domains: Vec<&str> = summary["domains"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["policy_domain"].as_str().unwrap())
        .collect();
    for d in ["test.xmox.nl", "cardinalhealth.ca", "company-y.example"] {
        assert!(domains.contains(&d), "{d} missing from {domains:?}");
    }
    let o = s.run(&["reports", "summary", "--format", "csv"]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    let csv = String::from_utf8_lossy(&o.stdout);
    assert!(csv.lines().count() > 1, "{csv}");
    assert!(csv.contains("test.xmox.nl"), "{csv}");
}

/// A report for `domain` from `reporter` on `day` with these failure details.
fn hand_made(reporter: &str, id: &str, domain: &str, day: &str, details: Value) -> Value {
    let failed: u64 = details
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["failed-session-count"].as_u64().unwrap())
        .sum();
    json!({
        "organization-name": reporter,
        "date-range": {"start-datetime": format!("{day}T00:00:00Z"), "end-datetime": format!("{day}T23:59:59Z")},
        "contact-info": "smtp-tls-reporting@reporter.example",
        "report-id": id,
        "policies": [{
            "policy": {"policy-type": "sts",
                       "policy-string": ["version: STSv1", "mode: enforce", "mx: mx.expired.test", "max_age: 604800"],
                       "policy-domain": domain, "mx-host": ["mx.expired.test"]},
            "summary": {"total-successful-session-count": 0, "total-failure-session-count": failed},
            "failure-details": details
        }]
    })
}

#[test]
fn compare_puts_reports_next_to_a_monitoring_run_of_the_lab() {
    let s = Setup::start("compare");
    // mxprobe's view: expired.test's only MX presents an expired certificate.
    let o = s.run(&["monitor", "expired.test"]);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    let mx = DomainName::parse("mx.expired.test").unwrap();
    let ip = s.lab.addresses(&mx)[0].to_string();

    // What senders reported: the expired certificate (both see it), and a failure at an MX
    // mxprobe never saw (reports only). mxprobe's "every MX fails the enforce policy" has
    // no report (predicted only).
    let reports = [
        hand_made(
            "Google Inc.",
            "2026-11-27-expired",
            "expired.test",
            "2026-11-27",
            json!([{"result-type": "certificate-expired", "sending-mta-ip": "198.51.100.7",
                    "receiving-mx-hostname": "mx.expired.test", "receiving-ip": ip,
                    "failed-session-count": 40}]),
        ),
        hand_made(
            "Microsoft Corporation",
            "133198585438131999",
            "expired.test",
            "2026-11-28",
            json!([{"result-type": "starttls-not-supported", "sending-mta-ip": "203.0.113.50",
                    "receiving-mx-hostname": "old-mx.expired.test", "receiving-ip": "192.0.2.77",
                    "failed-session-count": 3}]),
        ),
    ];
    let inbox = s.dir.join("inbox");
    std::fs::write(
        inbox.join("google.json"),
        serde_json::to_vec(&reports[0]).unwrap(),
    )
    .unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&serde_json::to_vec(&reports[1]).unwrap())
        .unwrap();
    std::fs::write(inbox.join("microsoft.json.gz"), gz.finish().unwrap()).unwrap();
    let o = s.run(&["reports", "ingest", inbox.to_str().unwrap()]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("2 report(s) stored"),
        "{}",
        out(&o)
    );

    let o = s.run(&["reports", "compare", "expired.test", "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    let c: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(c["reports"], 2);
    assert_eq!(c["failed_sessions"], 43);
    let both = c["both"].as_array().unwrap();
    assert_eq!(both.len(), 1, "{c:#}");
    assert_eq!(both[0]["reported"]["result_type"], "certificate-expired");
    assert_eq!(both[0]["reported"]["sessions"], 40);
    assert_eq!(both[0]["findings"], json!(["smtp.cert.leaf-expired"]));
    let only = c["reports_only"].as_array().unwrap();
    assert_eq!(only.len(), 1, "{c:#}");
    assert_eq!(only[0]["reported"]["receiving_mx"], "old-mx.expired.test");
    assert!(
        only[0]["mxprobe_saw"]
            .as_str()
            .unwrap()
            .contains("did not probe MX old-mx.expired.test"),
        "{c:#}"
    );
    let predicted: Vec<&str> = c["predicted_only"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap())
        .collect();
    assert_eq!(predicted, ["sts.enforce.no-deliverable-mx"], "{c:#}");

    // The text form names the three lists.
    let o = s.run(&["reports", "compare", "expired.test"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("Reported and predicted by mxprobe (1):"),
        "{text}"
    );
    assert!(text.contains("Reported only (1):"), "{text}");
    assert!(
        text.contains("Predicted by mxprobe, not reported yet (1):"),
        "{text}"
    );
}
