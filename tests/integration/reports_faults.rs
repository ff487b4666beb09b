//! `mxprobe reports` against large and odd input built by the tests: many large gzip
//! reports ingested and summarised under a memory limit with nothing legitimate skipped, a
//! gzip bomb refused at the named limit, a report JSON behind a byte order mark, and session
//! counts whose totals pass `u64::MAX`.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::{Value, json};

use crate::support::under_memory_limit;

/// A scratch directory, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "mxprobe-reports-faults-{tag}-{}-{}",
            std::process::id(),
            time::OffsetDateTime::now_utc().unix_timestamp_nanos()
        ));
        std::fs::create_dir_all(dir.join("inbox")).unwrap();
        Self(dir)
    }

    fn db(&self) -> PathBuf {
        self.0.join("history.sqlite")
    }

    fn inbox(&self) -> PathBuf {
        self.0.join("inbox")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn mxprobe(db: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mxprobe"));
    command
        .args(args)
        .arg("--db")
        .arg(db)
        .env("NO_COLOR", "1")
        .env_remove("MXPROBE_DB");
    command
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// A report from `reporter` for example.com on 2026-11-01 with these session counts, one
/// failure detail, and `padding` bytes of policy strings (in lines of 1 MiB at most).
fn report(reporter: &str, id: &str, ok: u64, failed: u64, padding: usize) -> String {
    let line = 1024 * 1024;
    let strings: Vec<String> = (0..padding.div_ceil(line))
        .map(|i| "x".repeat(line.min(padding - i * line)))
        .collect();
    json!({
        "organization-name": reporter,
        "date-range": {"start-datetime": "2026-11-01T00:00:00Z",
                       "end-datetime": "2026-11-01T23:59:59Z"},
        "contact-info": "tlsrpt@reporter.example",
        "report-id": id,
        "policies": [{
            "policy": {"policy-type": "sts", "policy-string": strings,
                       "policy-domain": "example.com", "mx-host": ["mx.example.com"]},
            "summary": {"total-successful-session-count": ok,
                        "total-failure-session-count": failed},
            "failure-details": [{"result-type": "certificate-expired",
                                 "sending-mta-ip": "192.0.2.1",
                                 "receiving-mx-hostname": "mx.example.com",
                                 "receiving-ip": "198.51.100.25",
                                 "failed-session-count": failed}],
        }],
    })
    .to_string()
}

/// The data segment `ingest` and `summary` run in. Held whole, the reports below need more
/// than twice as much.
const MEMORY_LIMIT: u64 = 192 * 1024 * 1024;

#[test]
fn many_large_gzip_reports_are_stored_one_by_one_under_a_memory_limit() {
    let scratch = Scratch::new("large");
    // 24 reports of 8 MiB of JSON each (192 MiB decompressed, kilobytes of gzip), every one
    // within the 20 MiB limit for one report: all legitimate.
    let count = 24;
    for i in 0..count {
        let json = report(
            &format!("Reporter {i:02}"),
            &format!("r{i}"),
            1000,
            7,
            8 << 20,
        );
        let path = scratch.inbox().join(format!("report-{i:02}.json.gz"));
        std::fs::write(path, gzip(json.as_bytes())).unwrap();
    }
    // A gzip bomb: 64 MiB of spaces, past the limit for one report.
    std::fs::write(
        scratch.inbox().join("bomb.json.gz"),
        gzip(&vec![b' '; 64 << 20]),
    )
    .unwrap();

    let ingest = mxprobe(
        &scratch.db(),
        &["reports", "ingest", scratch.inbox().to_str().unwrap()],
    );
    let out = under_memory_limit(&ingest, MEMORY_LIMIT).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{count} report(s) stored, 0 already stored, 1 skipped\n"),
        "{}",
        text(&out)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "bomb.json.gz: skipped: the report is larger than 20971520 bytes (after \
             decompression); refusing to read it"
        ),
        "{}",
        text(&out)
    );
    assert_eq!(stderr.matches("skipped").count(), 1, "{}", text(&out));

    // The summary adds up in SQL: also under the limit, whatever the stored JSON weighs.
    let summary = mxprobe(&scratch.db(), &["reports", "summary", "--format", "json"]);
    let out = under_memory_limit(&summary, MEMORY_LIMIT).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    let domain = &summary["domains"][0];
    assert_eq!(domain["policy_domain"], "example.com");
    assert_eq!(domain["reporters"].as_array().unwrap().len(), count);
    assert_eq!(domain["total"]["successful"], json!(1000 * count));
    assert_eq!(domain["total"]["failed"], json!(7 * count));
    assert_eq!(
        domain["total"]["by_sending_ip"],
        json!({"192.0.2.1": 7 * count})
    );
    assert_eq!(domain["days"][0]["reports"], json!(count));

    let compare = mxprobe(
        &scratch.db(),
        &["reports", "compare", "example.com", "--format", "json"],
    );
    let out = under_memory_limit(&compare, MEMORY_LIMIT).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let comparison: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(comparison["reports"], json!(count));
    assert_eq!(comparison["reports_only"].as_array().unwrap().len(), count);
}

#[test]
fn a_report_behind_a_byte_order_mark_is_ingested() {
    let scratch = Scratch::new("bom");
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend_from_slice(report("BOM Corp", "bom-1", 5, 1, 0).as_bytes());
    // Under a report name, under no known name (found by its content), and gzipped.
    std::fs::write(scratch.inbox().join("bom.json"), &bytes).unwrap();
    let mut second = b"\xEF\xBB\xBF".to_vec();
    second.extend_from_slice(report("BOM Corp", "bom-2", 5, 1, 0).as_bytes());
    std::fs::write(scratch.inbox().join("report-without-suffix"), &second).unwrap();
    let mut third = b"\xEF\xBB\xBF".to_vec();
    third.extend_from_slice(report("BOM Corp", "bom-3", 5, 1, 0).as_bytes());
    std::fs::write(scratch.inbox().join("bom.json.gz"), gzip(&third)).unwrap();
    let out = mxprobe(
        &scratch.db(),
        &["reports", "ingest", scratch.inbox().to_str().unwrap()],
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "3 report(s) stored, 0 already stored, 0 skipped\n",
        "{}",
        text(&out)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stderr)
            .matches("tolerated: $ starts with a UTF-8 byte order mark")
            .count(),
        3,
        "{}",
        text(&out)
    );
}

#[test]
fn totals_past_u64_max_are_exact_in_every_format() {
    let scratch = Scratch::new("huge");
    for id in ["a", "b", "c"] {
        let json = report("Huge Inc.", id, u64::MAX, u64::MAX, 0);
        std::fs::write(scratch.inbox().join(format!("{id}.json")), json).unwrap();
    }
    let out = mxprobe(
        &scratch.db(),
        &["reports", "ingest", scratch.inbox().to_str().unwrap()],
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let three = (3 * u128::from(u64::MAX)).to_string();

    let out = mxprobe(&scratch.db(), &["reports", "summary", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let json = String::from_utf8_lossy(&out.stdout);
    assert!(json.contains(&format!("\"successful\": {three}")), "{json}");
    assert!(
        json.contains(&format!("\"certificate-expired\": {three}")),
        "{json}"
    );

    let out = mxprobe(&scratch.db(), &["reports", "summary"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.starts_with(&format!(
            "example.com: 3 reports from 1 reporter; {three} successful sessions, {three} \
             failed (50.0 % failed)\n"
        )),
        "{table}"
    );

    let out = mxprobe(&scratch.db(), &["reports", "summary", "--format", "csv"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!(
            "example.com,2026-11-01,Huge Inc.,3,sts,{three},{three},certificate-expired={three}"
        )),
        "{}",
        text(&out)
    );

    let out = mxprobe(
        &scratch.db(),
        &["reports", "compare", "example.com", "--format", "json"],
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let json = String::from_utf8_lossy(&out.stdout);
    assert!(
        json.contains(&format!("\"failed_sessions\": {three}")),
        "{json}"
    );
}
