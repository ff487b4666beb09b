//! `mxprobe scan` and `mxprobe demo` as a user runs them, and the synthetic report files of
//! `--report-dir`: read back with the tolerant reader and checked against every field
//! RFC 8460 §4.4 requires.

use std::path::Path;
use std::process::{Command, Output};

use mxprobe_core::domain::DomainName;
use mxprobe_core::tlsrpt::PolicyType;
use mxprobe_core::tlsrpt::filename::ReportFileName;
use mxprobe_core::tlsrpt::report::{check_required_fields, read_report};
use mxprobe_lab::{Lab, Scenario};
use serde_json::Value;
use time::OffsetDateTime;

fn mxprobe(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mxprobe"))
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("SSL_CERT_FILE")
        .output()
        .expect("the mxprobe binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn temp_dir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "mxprobe-{tag}-{}-{}",
        std::process::id(),
        OffsetDateTime::now_utc().unix_timestamp_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Reads every report in `dir`: each parses with the tolerant reader without a quirk,
/// passes the §4.4 field check, and carries a valid RFC 8460 §5.1 file name whose policy
/// domain and dates agree with its content. Returns (file name, report JSON) pairs.
fn read_reports(dir: &Path, gzip: bool) -> Vec<(ReportFileName, Value)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let file = path.file_name().unwrap().to_str().unwrap().to_owned();
        let name: ReportFileName = file.parse().unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(name.gzip, gzip, "{file}");
        assert_eq!(name.sender.as_str(), "mxprobe.invalid");
        let bytes = std::fs::read(&path).unwrap();
        let read = read_report(&bytes).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(read.quirks.is_empty(), "{file}: {:?}", read.quirks);
        let report = read.report;
        let json: Value = serde_json::from_str(&report.to_json()).unwrap();
        let problems = check_required_fields(&json);
        assert!(problems.is_empty(), "{file}: {problems:?}");
        assert!(report.organization_name.contains("synthetic"));
        assert_eq!(report.contact_info, "synthetic-report@mxprobe.invalid");
        assert_eq!(
            name.begin,
            u64::try_from(report.date_range.start().unix_timestamp()).unwrap()
        );
        let first = &report.policies[0].policy;
        if first.policy_type != PolicyType::Tlsa {
            assert_eq!(first.policy_domain, name.policy_domain, "{file}");
        }
        out.push((name, json));
    }
    out
}

#[test]
fn demo_scans_every_lab_domain_and_writes_valid_reports() {
    let dir = temp_dir("demo");
    let out = mxprobe(&["demo", "--report-dir", dir.to_str().unwrap(), "--gzip"]);
    // The lab has failing domains on purpose; each is judged as the scenario expects.
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let text = stdout(&out);
    let scenario = Scenario::embedded().unwrap();
    assert!(
        text.ends_with(&format!(
            "\n{n} of {n} lab domains judged as expected\n",
            n = scenario.domains.len()
        )),
        "{text}"
    );
    for d in &scenario.domains {
        assert!(
            text.contains(&format!("{}  ", d.name)),
            "{} missing",
            d.name
        );
    }
    assert!(text.contains("good.test  OK\n"), "{text}");
    assert!(text.contains("silent.test  INCONCLUSIVE\n"), "{text}");
    // The closing line counts each domain once, by the tag of its block, and every finding.
    let blocks = |tag: &str| {
        text.lines()
            .filter(|l| l.ends_with(&format!("  {tag}")))
            .count()
    };
    let tags: Vec<String> = ["OK", "WARN", "FAIL", "INCONCLUSIVE"]
        .into_iter()
        .filter(|t| blocks(t) > 0)
        .map(|t| format!("{} {t}", blocks(t)))
        .collect();
    assert_eq!(
        tags.iter()
            .map(|t| t.split(' ').next().unwrap().parse::<usize>().unwrap())
            .sum::<usize>(),
        scenario.domains.len()
    );
    let severities = ["error", "warning", "notice"].map(|s| {
        text.lines()
            .filter(|l| l.starts_with(&format!("  {s} ")))
            .count()
    });
    let totals = format!(
        "\n{} domains: {}; findings: {} errors, {} warnings, {} notices\n",
        scenario.domains.len(),
        tags.join(", "),
        severities[0],
        severities[1],
        severities[2]
    );
    assert!(text.contains(&totals), "{totals} not in {text}");

    let reports = read_reports(&dir, true);
    assert_eq!(reports.len(), scenario.domains.len());
    // Spot checks on content: an MTA-STS failure and a DANE report.
    let by_domain = |d: &str| {
        reports
            .iter()
            .find(|(n, _)| n.policy_domain.as_str() == d)
            .map(|(_, j)| j.clone())
            .unwrap_or_else(|| panic!("no report for {d}"))
    };
    let expired = by_domain("expired.test");
    let sts = &expired["policies"][0];
    assert_eq!(sts["policy"]["policy-type"], "sts");
    assert_eq!(sts["summary"]["total-failure-session-count"], 1);
    assert_eq!(
        sts["failure-details"][0]["result-type"],
        "certificate-expired"
    );
    assert_eq!(
        sts["failure-details"][0]["receiving-mx-hostname"],
        "mx.expired.test"
    );
    let fetch = by_domain("policy-404.test");
    assert_eq!(
        fetch["policies"][0]["failure-details"][0]["failure-reason-code"],
        "bad https response code: 404"
    );
    assert!(fetch["policies"][0]["failure-details"][0]["receiving-ip"].is_null());
    let dane = by_domain("dane-ee.test");
    let tlsa = dane["policies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["policy"]["policy-type"] == "tlsa")
        .expect("a tlsa policy");
    assert!(
        tlsa["policy"]["policy-string"][0]
            .as_str()
            .unwrap()
            .starts_with("3 1 1 ")
    );
    assert_eq!(tlsa["summary"]["total-successful-session-count"], 1);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn demo_json_is_the_full_facts_and_verdicts() {
    let out = mxprobe(&["demo", "good.test", "null-mx.test", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["schema_version"], 2);
    let domains = v["domains"].as_array().unwrap();
    assert_eq!(domains.len(), 2);
    let good = &domains[0];
    assert_eq!(good["facts"]["domain"], "good.test");
    assert_eq!(good["facts"]["mx"]["status"], "records");
    assert_eq!(good["facts"]["mx"]["dnssec"], "secure");
    let session = &good["facts"]["hosts"][0]["sessions"][0];
    assert_eq!(session["outcome"]["kind"], "completed");
    assert!(session["tls"]["chain"][0].is_string());
    assert_eq!(good["verdict"]["sessions"][0]["result"], "success");
    assert_eq!(good["verdict"]["sessions"][0]["policy_type"], "sts");
    assert_eq!(domains[1]["verdict"]["routing"], "null-mx");

    let bad = mxprobe(&["demo", "no-such.example"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not a lab domain"));
}

/// `mxprobe scan` with the flags a user has for a staging setup reaches the same verdicts:
/// nothing in the code path is lab-only but addresses, ports, resolver and trust anchors.
#[test]
fn scan_command_against_the_lab_with_user_flags() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let scenario = Scenario::embedded().unwrap();
    let lab = rt
        .block_on(Lab::start(&scenario, OffsetDateTime::now_utc()))
        .unwrap();
    let dir = temp_dir("scan");
    let anchor = dir.join("trust-anchor.txt");
    std::fs::write(&anchor, format!("{}\n", lab.dns().trust_anchor)).unwrap();
    let ca = dir.join("lab-root.pem");
    std::fs::write(&ca, lab.root_ca_pem()).unwrap();
    let mx = DomainName::parse("mx.expired.test").unwrap();
    let (_, smtp) = lab
        .smtp_servers()
        .find(|(h, _)| **h == mx)
        .expect("the lab serves mx.expired.test");
    let dns = lab.dns().addr.to_string();
    let smtp_port = smtp.addr().port().to_string();
    let https_port = lab.https().addr.port().to_string();
    let report_dir = dir.join("reports");
    let args = [
        "scan",
        "expired.test",
        "--resolver",
        &dns,
        "--trust-anchor",
        anchor.to_str().unwrap(),
        "--ca-file",
        ca.to_str().unwrap(),
        "--smtp-port",
        &smtp_port,
        "--https-port",
        &https_port,
        "--ehlo-name",
        "probe.mxprobe.test",
        "-4",
        "--report-dir",
        report_dir.to_str().unwrap(),
    ];
    // Run the binary off the runtime's threads; the lab keeps serving meanwhile.
    let out = rt.block_on(async {
        let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
        tokio::task::spawn_blocking(move || {
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            mxprobe(&refs)
        })
        .await
        .unwrap()
    });
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("expired.test  FAIL"), "{text}");
    assert!(
        text.contains("sts   FAIL  certificate-expired (leaf-expired)"),
        "{text}"
    );
    assert!(text.contains("smtp.cert.leaf-expired"), "{text}");
    let reports = read_reports(&report_dir, false);
    assert_eq!(reports.len(), 1);
    std::fs::remove_dir_all(&dir).unwrap();
    drop(lab);
}

/// Lab flags for `mxprobe scan` that reach one lab MX host (all SMTP goes to its port); the
/// other domains used with them need no SMTP (null MX, unresolvable MX).
struct LabFlags {
    _lab: mxprobe_lab::RunningLab,
    rt: tokio::runtime::Runtime,
    dir: std::path::PathBuf,
    args: Vec<String>,
}

fn lab_flags(tag: &str, mx_host: &str) -> LabFlags {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let scenario = Scenario::embedded().unwrap();
    let lab = rt
        .block_on(Lab::start(&scenario, OffsetDateTime::now_utc()))
        .unwrap();
    let dir = temp_dir(tag);
    let anchor = dir.join("trust-anchor.txt");
    std::fs::write(&anchor, format!("{}\n", lab.dns().trust_anchor)).unwrap();
    let ca = dir.join("lab-root.pem");
    std::fs::write(&ca, lab.root_ca_pem()).unwrap();
    let mx = DomainName::parse(mx_host).unwrap();
    let (_, smtp) = lab.smtp_servers().find(|(h, _)| **h == mx).unwrap();
    let args = vec![
        "--resolver".to_owned(),
        lab.dns().addr.to_string(),
        "--trust-anchor".to_owned(),
        anchor.display().to_string(),
        "--ca-file".to_owned(),
        ca.display().to_string(),
        "--smtp-port".to_owned(),
        smtp.addr().port().to_string(),
        "--https-port".to_owned(),
        lab.https().addr.port().to_string(),
        "-4".to_owned(),
    ];
    LabFlags {
        _lab: lab,
        rt,
        dir,
        args,
    }
}

impl LabFlags {
    fn run(&self, extra: &[&str]) -> Output {
        let mut args: Vec<String> = vec!["scan".to_owned()];
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        args.extend(self.args.iter().cloned());
        self.rt.block_on(async {
            tokio::task::spawn_blocking(move || {
                let refs: Vec<&str> = args.iter().map(String::as_str).collect();
                mxprobe(&refs)
            })
            .await
            .unwrap()
        })
    }
}

fn jsonl_records(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn bulk_input_streams_jsonl_and_csv_and_resumes() {
    let lab = lab_flags("bulk", "mx.expired.test");
    let input = lab.dir.join("domains.csv");
    std::fs::write(
        &input,
        "owner,Domain\n\
         # a comment line\n\
         alice,expired.test\n\
         bob,bad..domain\n\
         carol,null-mx.test\n\
         dave,EXPIRED.test.\n\
         erin,unresolvable-mx.test\n",
    )
    .unwrap();
    let jsonl = lab.dir.join("out.jsonl");
    let csv = lab.dir.join("out.csv");
    let out = lab.run(&[
        "--input",
        input.to_str().unwrap(),
        "--jsonl",
        jsonl.to_str().unwrap(),
        "--csv",
        csv.to_str().unwrap(),
        "--concurrency",
        "2",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("input line 4: \"bad..domain\" skipped"),
        "{stderr}"
    );
    let records = jsonl_records(&jsonl);
    let types: Vec<&str> = records
        .iter()
        .map(|r| r["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types.iter().filter(|t| **t == "domain").count(),
        3,
        "{types:?}"
    );
    assert_eq!(types.iter().filter(|t| **t == "invalid").count(), 1);
    assert_eq!(types.last(), Some(&"summary"));
    let expired = records
        .iter()
        .find(|r| r["domain"] == "expired.test")
        .unwrap();
    assert_eq!(expired["line"], 3);
    assert_eq!(expired["verdict"]["sessions"][0]["result"], "failure");
    let invalid = records.iter().find(|r| r["type"] == "invalid").unwrap();
    assert_eq!(invalid["line"], 4);
    let summary = records.last().unwrap();
    assert_eq!(summary["domains"], 3);
    assert_eq!(summary["invalid"], 1);
    let csv_text = std::fs::read_to_string(&csv).unwrap();
    let rows: Vec<&str> = csv_text.lines().collect();
    assert_eq!(
        rows[0],
        "domain,status,policy,mode,mx_count,worst_result,errors,warnings,notices,findings"
    );
    assert_eq!(rows.len(), 5, "{csv_text}");
    assert!(
        rows.iter()
            .any(|r| r.starts_with("expired.test,fail,sts,enforce,1,certificate-expired,")),
        "{csv_text}"
    );

    // An interrupted run: only the first domain line survived, then half a line.
    let first_domain = std::fs::read_to_string(&jsonl)
        .unwrap()
        .lines()
        .find(|l| l.contains("\"type\":\"domain\""))
        .unwrap()
        .to_owned();
    let done = serde_json::from_str::<Value>(&first_domain).unwrap()["domain"]
        .as_str()
        .unwrap()
        .to_owned();
    std::fs::write(&jsonl, format!("{first_domain}\n{{\"type\":\"dom")).unwrap();
    let out = lab.run(&[
        "--input",
        input.to_str().unwrap(),
        "--jsonl",
        jsonl.to_str().unwrap(),
        "--resume",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let records = jsonl_records(&jsonl);
    let mut domains: Vec<&str> = records
        .iter()
        .filter(|r| r["type"] == "domain")
        .map(|r| r["domain"].as_str().unwrap())
        .collect();
    domains.sort_unstable();
    assert_eq!(
        domains,
        ["expired.test", "null-mx.test", "unresolvable-mx.test"],
        "each domain exactly once after resuming (first run kept {done})"
    );
    std::fs::remove_dir_all(&lab.dir).unwrap();
}

/// SIGTERM in the middle of a run: no new domains, the finished ones kept, the hanging one
/// abandoned after the grace period (so `--resume` scans it again: it has no line), valid
/// JSON Lines ending in a summary, exit status 130.
#[test]
fn sigterm_leaves_valid_output_and_abandons_the_hanging_domain() {
    let lab = lab_flags("sigterm", "mx.silent.test");
    let input = lab.dir.join("domains.txt");
    // silent.test's MX never greets: its probe waits for the (default, long) timeouts.
    std::fs::write(&input, "null-mx.test\nsilent.test\n").unwrap();
    let jsonl = lab.dir.join("out.jsonl");
    let mut args: Vec<String> = [
        "scan",
        "--input",
        input.to_str().unwrap(),
        "--jsonl",
        jsonl.to_str().unwrap(),
        "--quiet",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    args.extend(lab.args.iter().cloned());
    let out = lab.rt.block_on(async {
        tokio::task::spawn_blocking(move || {
            let child = Command::new(env!("CARGO_BIN_EXE_mxprobe"))
                .args(&args)
                .env("NO_COLOR", "1")
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            // Wait until the quick domain is written, then interrupt.
            let started = std::time::Instant::now();
            while !std::fs::read_to_string(jsonl_path(&args))
                .unwrap_or_default()
                .contains("null-mx.test")
            {
                assert!(
                    started.elapsed().as_secs() < 30,
                    "the quick domain never finished"
                );
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            let status = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status()
                .unwrap();
            assert!(status.success());
            child.wait_with_output().unwrap()
        })
        .await
        .unwrap()
    });
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("silent.test: abandoned"), "{stderr}");
    let records = jsonl_records(&jsonl);
    assert_eq!(records.len(), 2, "{records:?}");
    assert_eq!(records[0]["domain"], "null-mx.test");
    assert_eq!(records[1]["type"], "summary");
    assert_eq!(records[1]["interrupted"], true);
    assert_eq!(records[1]["abandoned"], 1);
    std::fs::remove_dir_all(&lab.dir).unwrap();
}

/// The --jsonl path in an argument list.
fn jsonl_path(args: &[String]) -> std::path::PathBuf {
    let i = args.iter().position(|a| a == "--jsonl").unwrap();
    args[i + 1].clone().into()
}

#[test]
fn scan_usage_errors_name_the_problem() {
    let out = mxprobe(&["scan", "bad..domain"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("domain \"bad..domain\""));
    let out = mxprobe(&["scan", "example.com", "--dnssec", "resolver"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--resolver"));
    let out = mxprobe(&["scan", "example.com", "--ca-file", "/nonexistent.pem"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent.pem"));
}

/// `--deliver-reports` sends mail and HTTPS requests to the domains' own destinations: never
/// for an `--input` list, never for more domains than `--deliver-limit`. Both are usage
/// errors (exit 2) found before anything is asked or sent.
#[test]
fn deliver_reports_is_refused_with_input_and_over_the_limit() {
    let dir = temp_dir("deliver-usage");
    let list = dir.join("domains.txt");
    std::fs::write(&list, "a.example\nb.example\n").unwrap();
    let out = mxprobe(&[
        "scan",
        "--input",
        list.to_str().unwrap(),
        "--deliver-reports",
        "--resolver",
        "127.0.0.1",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--deliver-reports") && err.contains("--input"),
        "{err}"
    );

    let eleven: Vec<String> = (0..11).map(|i| format!("d{i}.example")).collect();
    let mut args: Vec<&str> = vec!["scan", "--deliver-reports", "--resolver", "127.0.0.1"];
    args.extend(eleven.iter().map(String::as_str));
    let out = mxprobe(&args);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("11 domains named, more than --deliver-limit 10"),
        "{err}"
    );
    // A lower limit counts the same way.
    let out = mxprobe(&[
        "scan",
        "--deliver-reports",
        "--deliver-limit",
        "1",
        "a.example",
        "b.example",
        "--resolver",
        "127.0.0.1",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("more than --deliver-limit 1"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A From address that is none: refused before anything is asked.
    let out = mxprobe(&[
        "scan",
        "--deliver-reports",
        "a.example",
        "--report-from",
        "not an address",
        "--resolver",
        "127.0.0.1",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--report-from \"not an address\""),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
