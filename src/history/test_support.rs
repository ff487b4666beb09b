//! Test helpers: histories in directories of their own, snapshots, alerts and reports.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use rusqlite::Connection;
use serde_json::json;
use time::OffsetDateTime;
use time::macros::datetime;

use super::{History, RunId, TimelineEntry};
use mxprobe_core::alert::{Alert, Change, ChangeKind, DomainStatus};
use mxprobe_core::domain::DomainName;
use mxprobe_core::finding::{Severity, Subject};
use mxprobe_core::result::DomainResult;
use mxprobe_core::tlsrpt::report::{Report, read_report};

/// A history holding some reports; its directory is removed when it is dropped.
pub(crate) struct TempHistory {
    pub(crate) history: History,
    dir: PathBuf,
}

impl TempHistory {
    /// A fresh history with `reports` stored, each from its compact JSON.
    pub(crate) fn with_reports(tag: &str, reports: &[Report]) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "mxprobe-reports-{tag}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let mut history = History::open(&dir.join("history.db")).unwrap();
        for (i, report) in reports.iter().enumerate() {
            history
                .store_report(
                    report,
                    report.to_json().as_bytes(),
                    &format!("report {i}"),
                    datetime!(2026-11-30 08:00 UTC),
                )
                .unwrap();
        }
        Self { history, dir }
    }
}

impl Drop for TempHistory {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A fresh directory under the system temp dir, removed on drop (also when a test fails).
pub(super) struct TempDir(pub(super) PathBuf);

impl TempDir {
    pub(super) fn new(name: &str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "mxprobe-history-{}-{}-{name}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    pub(super) fn db(&self) -> PathBuf {
        self.0.join("history.db")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub(super) fn example() -> DomainName {
    DomainName::parse("example.com").unwrap()
}

/// A snapshot of example.com observed at `at`, with one finding per `(severity,
/// inconclusive)`, an optional policy `(mode, id)` and the given MX hosts.
pub(super) fn snapshot(
    at: &str,
    findings: &[(&str, bool)],
    policy: Option<(&str, &str)>,
    mx: &[&str],
) -> DomainResult {
    let findings: Vec<_> = findings
        .iter()
        .enumerate()
        .map(|(i, (severity, inconclusive))| {
            json!({"code": format!("test.finding-{i}"), "severity": severity,
                   "subject": {"domain": "example.com"}, "message": "m",
                   "inconclusive": inconclusive})
        })
        .collect();
    let sts = match policy {
        Some((mode, id)) => json!({"id": id, "policy": {"mode": mode, "max_age": 86400,
                                   "mx": mx, "extensions": []}}),
        None => json!({}),
    };
    let records: Vec<_> = mx
        .iter()
        .enumerate()
        .map(|(i, host)| json!({"preference": 10 * (i + 1), "exchange": host}))
        .collect();
    let hosts: Vec<_> = mx
        .iter()
        .enumerate()
        .map(|(i, host)| json!({"exchange": host, "preference": 10 * (i + 1)}))
        .collect();
    let inconclusive = findings.iter().any(|f| f["inconclusive"] == true);
    serde_json::from_value(json!({
        "facts": {
            "domain": "example.com",
            "observed_at": at,
            "mx": {"status": "records", "records": records, "dnssec": "insecure",
                   "cname-chain": []},
            "sts_txt": {"status": "nodata", "dnssec": "insecure"},
            "tlsrpt_txt": {"status": "nodata", "dnssec": "insecure"},
            "hosts": hosts
        },
        "verdict": {
            "domain": "example.com",
            "routing": "mx",
            "sts": sts,
            "sessions": [],
            "inconclusive": inconclusive,
            "findings": findings
        }
    }))
    .unwrap()
}

pub(super) fn alert(at: OffsetDateTime, status: DomainStatus, kinds: &[ChangeKind]) -> Alert {
    let d = example();
    Alert::new(
        d.clone(),
        at,
        status,
        Some(DomainStatus::Pass),
        kinds
            .iter()
            .map(|&kind| Change {
                kind,
                severity: Severity::Error,
                subject: Subject::domain(&d),
                message: "changed".to_owned(),
                fix: None,
            })
            .collect(),
    )
}

pub(super) fn user_version(path: &Path) -> i64 {
    Connection::open(path)
        .unwrap()
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .unwrap()
}

pub(super) const SMTP_TLS: &[u8] =
    include_bytes!("../../fixtures/tlsrpt-reports/parsedmarc/smtp_tls.json");
pub(super) const MAIL_RU: &[u8] =
    include_bytes!("../../fixtures/tlsrpt-reports/parsedmarc/mail.ru.json");
pub(super) const RFC8460: &[u8] =
    include_bytes!("../../fixtures/tlsrpt-reports/parsedmarc/rfc8460.json");

pub(super) fn read(json: &[u8]) -> Report {
    read_report(json).unwrap().report
}

/// A report from `reporter` with id `id` covering the UTC day `day`, with one
/// no-policy-found policy per entry of `domains`.
pub(super) fn made_report(reporter: &str, id: &str, day: &str, domains: &[&str]) -> String {
    let policies: Vec<_> = domains
        .iter()
        .map(|d| {
            json!({"policy": {"policy-type": "no-policy-found", "policy-string": [],
                              "policy-domain": d},
                   "summary": {"total-successful-session-count": 1,
                               "total-failure-session-count": 0},
                   "failure-details": []})
        })
        .collect();
    json!({"organization-name": reporter,
           "date-range": {"start-datetime": format!("{day}T00:00:00Z"),
                          "end-datetime": format!("{day}T23:59:59Z")},
           "contact-info": "tlsrpt@example.org", "report-id": id, "policies": policies})
    .to_string()
}

/// The alert of the second of [`four_runs`]: two new failures and a policy change.
pub(super) fn second_run_alert() -> Alert {
    alert(
        datetime!(2026-11-02 06:00:00.5 UTC),
        DomainStatus::Fail,
        &[
            ChangeKind::NewFailure,
            ChangeKind::PolicyChanged,
            ChangeKind::NewFailure,
        ],
    )
}

/// The timeline of four runs of example.com: a pass under an enforce policy, a failure under
/// a testing policy with [`second_run_alert`], then two inconclusive runs without a policy.
pub(super) fn four_runs() -> Vec<TimelineEntry> {
    let mx = |hosts: &[&str]| hosts.iter().map(|h| (*h).to_owned()).collect::<Vec<_>>();
    let both = mx(&["mx1.example.com", "mx2.example.com"]);
    let entry =
        |run, observed_at, status, counts: [u32; 3], policy: Option<(&str, &str)>| TimelineEntry {
            run: RunId(run),
            observed_at,
            status,
            errors: counts[0],
            warnings: counts[1],
            notices: counts[2],
            policy_mode: policy.map(|(mode, _)| mode.to_owned()),
            policy_id: policy.map(|(_, id)| id.to_owned()),
            mx: both.clone(),
            alert: None,
        };
    let second = TimelineEntry {
        mx: mx(&["mx1.example.com"]),
        alert: Some(second_run_alert()),
        ..entry(
            2,
            datetime!(2026-11-02 06:00:00.5 UTC),
            DomainStatus::Fail,
            [1, 1, 1],
            Some(("testing", "2026b")),
        )
    };
    vec![
        entry(
            1,
            datetime!(2026-11-01 06:00 UTC),
            DomainStatus::Pass,
            [0, 0, 1],
            Some(("enforce", "2026a")),
        ),
        second,
        entry(
            3,
            datetime!(2026-11-03 06:00 UTC),
            DomainStatus::Inconclusive,
            [1, 0, 0],
            None,
        ),
        entry(
            4,
            datetime!(2026-11-04 06:00 UTC),
            DomainStatus::Inconclusive,
            [0, 1, 0],
            None,
        ),
    ]
}
