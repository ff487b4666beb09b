//! The `mxprobe` binary: `lint` flags, output shapes and exit statuses.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn mxprobe(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mxprobe"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("the mxprobe binary runs")
}

fn with_stdin(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mxprobe"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the mxprobe binary runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn fixture(name: &str) -> String {
    format!("{}/fixtures/lint/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn text(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(o)))
}

fn codes(v: &Value) -> Vec<String> {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn good_policy_covering_every_mx_exits_0() {
    let good = fixture("good-policy.txt");
    let out = mxprobe(&[
        "lint",
        "--policy",
        &good,
        "--mx",
        "mx1.example.com,mx2.backup.example.net",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let t = text(&out);
    assert!(
        t.contains("policy          valid, mode enforce, max_age 604800"),
        "{t}"
    );
    assert!(
        t.contains("    mx1.example.com         covered by mx1.example.com\n"),
        "{t}"
    );
    assert!(
        t.contains("    mx2.backup.example.net  covered by *.backup.example.net\n"),
        "{t}"
    );
    assert!(t.ends_with("no errors, no warnings, no notices\n"), "{t}");
}

#[test]
fn uncovered_mx_is_an_error_naming_the_mx_and_the_fix() {
    let good = fixture("good-policy.txt");
    let out = mxprobe(&[
        "lint",
        "--policy",
        &good,
        "--mx",
        "mx1.example.com",
        "--mx",
        "mx2.example.com",
        "--mx",
        "a.b.backup.example.net",
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let v = json(&out);
    let not_covered: Vec<&Value> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["code"] == "sts.policy.mx-not-covered")
        .collect();
    assert_eq!(not_covered.len(), 2);
    assert_eq!(not_covered[0]["subject"]["mx"], "mx2.example.com");
    assert_eq!(not_covered[1]["subject"]["mx"], "a.b.backup.example.net");
    let f = not_covered[0];
    assert_eq!(f["severity"], "error");
    assert_eq!(f["result_type"], "validation-failure");
    assert_eq!(f["policy_type"], "sts");
    assert_eq!(f["failure_reason_code"], "mx-not-covered");
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .contains("in enforce mode senders will not deliver to mx2.example.com")
    );
    assert_eq!(
        f["fix"],
        "add \"mx: mx2.example.com\" to the policy (and publish a new id in the _mta-sts TXT record)"
    );
    assert_eq!(v["mx_coverage"][1]["covered_by"], Value::Null);
    assert_eq!(v["mx_coverage"][0]["covered_by"], "mx1.example.com");
}

#[test]
fn broken_policy_lists_every_problem_with_its_line() {
    let broken = fixture("broken-policy.txt");
    let out = mxprobe(&["lint", "--policy", &broken, "--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let v = json(&out);
    assert_eq!(v["policy"]["valid"], false);
    let c = codes(&v);
    for want in [
        "sts.policy.bad-mode",
        "sts.policy.bad-mx",
        "sts.policy.max-age-too-large",
        "sts.policy.duplicate-key",
    ] {
        assert!(c.contains(&want.to_owned()), "{want} missing from {c:?}");
    }
    let bad_mode = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "sts.policy.bad-mode")
        .unwrap();
    assert_eq!(bad_mode["subject"]["location"], "policy line 2");
    assert_eq!(bad_mode["result_type"], "sts-policy-invalid");
}

#[test]
fn record_sets_follow_the_discard_then_count_rule() {
    // Two STS records: senders see no policy at all.
    let out = mxprobe(&[
        "lint",
        "--sts-txt",
        "v=STSv1; id=20240101",
        "--sts-txt",
        "v=STSv1; id=20240202",
        "--sts-txt",
        "v=spf1 -all",
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let v = json(&out);
    assert_eq!(v["sts_record"]["outcome"], "several");
    assert_eq!(v["sts_record"]["records"], 3);
    assert_eq!(codes(&v), ["sts.txt.several"]);

    // An unrelated record beside the real one is fine.
    let out = mxprobe(&[
        "lint",
        "--sts-txt",
        "site-verification=abc",
        "--sts-txt",
        "v=STSv1; id=20240101T000000",
        "--tlsrpt-txt",
        "v=TLSRPTv1; rua=mailto:tlsrpt@example.com",
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let v = json(&out);
    assert_eq!(v["sts_record"]["id"], "20240101T000000");
    assert_eq!(v["tlsrpt_record"]["rua"][0], "mailto:tlsrpt@example.com");
}

#[test]
fn tlsrpt_problems_are_reported() {
    let out = mxprobe(&[
        "lint",
        "--tlsrpt-txt",
        "v=TLSRPTv1; rua=http://reports.example.com/tlsrpt",
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let v = json(&out);
    assert_eq!(
        codes(&v),
        ["tlsrpt.rua.unusable-scheme", "tlsrpt.rua.none-usable"]
    );
    let out = mxprobe(&["lint", "--tlsrpt-txt", "v=TLSRPTv1;", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json(&out)["tlsrpt_record"]["outcome"], "invalid");
}

#[test]
fn legacy_tlsrpt_name_draws_a_warning() {
    let out = mxprobe(&[
        "lint",
        "--tlsrpt-txt",
        "v=TLSRPTv1; rua=mailto:tlsrpt@example.com",
        "--tlsrpt-name",
        "_smtp-tlsrpt",
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let v = json(&out);
    assert_eq!(codes(&v), ["tlsrpt.txt.legacy-name"]);
    assert_eq!(v["findings"][0]["severity"], "warning");
}

#[test]
fn policy_from_stdin_and_fail_on_warning() {
    let body = "version: STSv1\nmode: testing\nmx: mail.example.com\nmax_age: 3600\n";
    let out = with_stdin(&["lint", "--policy", "-"], body);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("sts.policy.max-age-short"));
    let out = with_stdin(&["lint", "--policy", "-", "--fail-on", "warning"], body);
    assert_eq!(out.status.code(), Some(1));
    let out = with_stdin(&["lint", "--policy", "-", "--fail-on", "notice"], body);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn usage_errors_exit_2_and_name_the_problem() {
    let out = mxprobe(&["lint"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing to check"));

    let out = mxprobe(&["lint", "--policy", "/nonexistent/policy.txt"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/policy.txt"));

    let out = mxprobe(&["lint", "--mx", "mx..example.com"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--mx \"mx..example.com\""));

    let out = mxprobe(&["lint", "--format", "yaml", "--mx", "a.example"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn json_shape_is_stable() {
    let good = fixture("good-policy.txt");
    let out = mxprobe(&[
        "lint",
        "--domain",
        "Example.COM.",
        "--policy",
        &good,
        "--mx",
        "mx1.example.com",
        "--format",
        "json",
    ]);
    let v = json(&out);
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "counts",
            "domain",
            "findings",
            "mx_coverage",
            "policy",
            "schema_version"
        ]
    );
    assert_eq!(v["schema_version"], 1);
    assert_eq!(v["domain"], "example.com");
    assert_eq!(
        v["counts"],
        serde_json::json!({"error": 0, "warning": 0, "notice": 1})
    );
    assert_eq!(
        v["policy"],
        serde_json::json!({"valid": true, "mode": "enforce", "max_age": 604800,
            "mx": ["mx1.example.com", "*.backup.example.net"]})
    );
    // The pattern that covers no given MX is a notice.
    assert_eq!(codes(&v), ["sts.policy.unused-pattern"]);
}

#[test]
fn help_explains_exit_status() {
    let out = mxprobe(&["lint", "--help"]);
    assert_eq!(out.status.code(), Some(0));
    let t = text(&out);
    assert!(
        t.contains("Exit status (the same for every command but demo):"),
        "{t}"
    );
    assert!(t.contains("--sts-txt"), "{t}");
    // The contract, in every command's help.
    for command in ["lint", "scan", "gate", "generate"] {
        let t = text(&mxprobe(&[command, "--help"]));
        for line in [
            "0    nothing",
            "1    findings",
            "2    usage",
            "3    inconclusive",
        ] {
            assert!(t.contains(line), "{command} --help lacks {line:?}: {t}");
        }
    }
    // The demo exits by its self-check.
    let t = text(&mxprobe(&["demo", "--help"]));
    assert!(t.contains("0    every lab domain was judged as"), "{t}");
    assert!(t.contains("1    a lab domain was judged otherwise"), "{t}");
}
