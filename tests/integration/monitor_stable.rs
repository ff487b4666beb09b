//! Ten `monitor` runs over the unchanged in-process lab raise no alert after the first: every
//! verdict (misbehaving servers, bogus DNSSEC, broken handshakes included) is the same from
//! run to run, so change detection never sees a new failure that is not one. Each run is
//! what one cron run of `mxprobe monitor` does: a new scanner (nothing cached from the run
//! before), the history database opened, every lab domain observed, the run finished.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::future::join_all;
use mxprobe::history::History;
use mxprobe::monitor::{Monitor, MonitorConfig};
use mxprobe::notify::RetryPolicy;
use mxprobe_core::result::DomainResult;
use mxprobe_lab::{Lab, Scenario};
use mxprobe_probe::scan::{Backoff, Scanner};
use time::OffsetDateTime;

const RUNS: usize = 10;
/// Far above what a run needs (seconds); only here to turn a hang into a failure.
const HANG_GUARD: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_unchanged_monitor_runs_raise_no_alert_after_the_first() {
    let scenario = Scenario::embedded().expect("the shipped scenario is valid");
    let lab = Lab::start(&scenario, OffsetDateTime::now_utc())
        .await
        .expect("the lab starts");
    let dir = std::env::temp_dir().join(format!(
        "mxprobe-monitor-stable-{}-{}",
        std::process::id(),
        OffsetDateTime::now_utc().unix_timestamp_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("history.sqlite");

    // The lab's settings with shorter waits, so that ten runs stay quick; the misbehaving
    // servers still end the way they always do (timeouts, deadline, retries).
    let mut config = lab.scan_config();
    // Not shorter: under a loaded CI machine (tests run in parallel, some with thousands of
    // domains) a healthy server must still answer within them.
    config.smtp.phase_timeout = Duration::from_millis(2000);
    config.smtp.deadline = Duration::from_millis(5000);
    config.politeness.backoff = Backoff {
        initial: Duration::from_millis(50),
        max: Duration::from_millis(200),
        max_attempts: 4,
    };

    let mut alerts: Vec<(usize, String)> = Vec::new();
    // Every domain's finding codes, per run: they must not change.
    let mut codes: Vec<BTreeMap<String, Vec<String>>> = Vec::new();
    for run in 0..RUNS {
        let scanner = Scanner::new(config.clone()).expect("the lab resolver");
        let history = History::open(&db).expect("the history database");
        let monitor_config = MonitorConfig {
            expiry_warn_days: vec![21, 7],
            remind_every: None,
            // The "still inconclusive after N runs" reminder is by design, not a change; it
            // is kept out of reach here so that any alert after the first run is a spurious
            // change.
            inconclusive_after: u32::try_from(RUNS).unwrap() + 1,
            channels: Vec::new(),
            retry: RetryPolicy::default(),
            prometheus: None,
            delivery_deadline: Duration::from_secs(120),
        };
        let mut monitor = Monitor::start(history, monitor_config, OffsetDateTime::now_utc())
            .expect("the run starts");
        let scans = join_all(lab.domains().iter().map(|d| scanner.scan(d, lab.now())));
        let reports = tokio::time::timeout(HANG_GUARD, scans)
            .await
            .expect("a monitor run hung");
        let mut seen = BTreeMap::new();
        for report in reports {
            let mut found: Vec<String> = report
                .verdict
                .findings
                .iter()
                .map(|f| f.code.to_string())
                .collect();
            found.sort();
            seen.insert(report.verdict.domain.to_string(), found);
            let snapshot = DomainResult::new(report.facts, report.verdict);
            if let Some(alert) = monitor
                .observe(snapshot, OffsetDateTime::now_utc())
                .expect("the snapshot is stored")
            {
                alerts.push((run, alert.text()));
            }
        }
        monitor
            .finish(OffsetDateTime::now_utc())
            .expect("the run ends");
        codes.push(seen);
    }
    std::fs::remove_dir_all(&dir).unwrap();

    for (run, seen) in codes.iter().enumerate().skip(1) {
        for (domain, found) in seen {
            assert_eq!(
                found, &codes[0][domain],
                "run {run}: the findings of {domain} changed"
            );
        }
    }
    let late: Vec<&(usize, String)> = alerts.iter().filter(|(run, _)| *run > 0).collect();
    assert!(
        late.is_empty(),
        "alerts after the first of {RUNS} unchanged runs:\n{}",
        late.iter()
            .map(|(run, text)| format!("run {run}: {text}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
