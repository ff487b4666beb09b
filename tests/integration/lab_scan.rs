//! Every domain of the mail lab (`fixtures/lab/scenario.toml`) scanned end to end with the
//! real `Scanner` — lab DNS with DNSSEC, the lab policy server, the lab SMTP servers — and
//! held to the expectation the scenario file states for it: routing, the MTA-STS failure,
//! the policy type and result types of every session, the findings, and "could not tell".
//! The misbehaving servers must end with the right classification; the whole scan is given
//! a generous upper bound only so that a hang fails instead of blocking the suite.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures::future::join_all;
use mxprobe::domain::DomainName;
use mxprobe::evaluate::domain::SessionResult;
use mxprobe::lab::scenario::{DomainSpec, ExpectedResult, SmtpBehaviour};
use mxprobe::lab::{Lab, LabCounters, Scenario};
use mxprobe::scan::{DomainReport, Scanner};
use mxprobe::smtp::{Phase, SmtpOutcome};
use mxprobe::tlsrpt::ResultType;
use time::OffsetDateTime;

/// Far above what the lab needs (seconds); only here to turn a hang into a failure.
const HANG_GUARD: Duration = Duration::from_secs(120);

struct Scanned {
    scenario: Scenario,
    reports: Vec<DomainReport>,
    /// The addresses the lab gave each host.
    addresses: BTreeMap<DomainName, usize>,
    counters: LabCounters,
    /// What the scanner did (probes made, shared, attempts).
    stats: mxprobe::scan::ScanStats,
}

/// Starts the lab from the embedded scenario and scans every domain at once.
async fn scan_lab() -> Scanned {
    let scenario = Scenario::embedded().expect("the shipped scenario is valid");
    // The lab's DNSSEC signatures are made at the wall-clock time, so the lab clock is now.
    let lab = Lab::start(&scenario, OffsetDateTime::now_utc())
        .await
        .expect("the lab starts");
    let scanner = Scanner::new(lab.scan_config()).expect("the lab resolver");
    let scans = join_all(lab.domains().iter().map(|d| scanner.scan(d, lab.now())));
    let reports = tokio::time::timeout(HANG_GUARD, scans)
        .await
        .expect("a lab scan hung");
    // Every name an MX record can use: each host and its aliases (CNAMEs to it).
    let addresses = scenario
        .hosts
        .iter()
        .flat_map(|h| std::iter::once(&h.name).chain(&h.aliases))
        .map(|n| (n.clone(), lab.addresses(n).len()))
        .collect();
    Scanned {
        reports,
        addresses,
        counters: lab.counters(),
        stats: scanner.stats(),
        scenario,
    }
}

fn sorted(types: &[ResultType]) -> Vec<&'static str> {
    let mut v: Vec<&'static str> = types.iter().map(|t| t.as_str()).collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// Every way `report` differs from what `spec` expects, in words.
fn mismatches(
    spec: &DomainSpec,
    report: &DomainReport,
    addresses: &BTreeMap<DomainName, usize>,
) -> Vec<String> {
    let v = &report.verdict;
    let want = &spec.expect;
    let mut out = Vec::new();
    let mut differ = |what: &str, expected: String, got: String| {
        if expected != got {
            out.push(format!(
                "{}: {what}: expected {expected}, got {got}",
                spec.name
            ));
        }
    };
    differ(
        "routing",
        format!("{:?}", want.routing),
        format!("{:?}", v.routing),
    );
    differ(
        "sts failure",
        format!("{:?}", want.sts_failure),
        format!("{:?}", v.sts.failure.as_ref().map(|f| f.result_type)),
    );
    differ(
        "inconclusive",
        want.inconclusive.to_string(),
        v.inconclusive.to_string(),
    );
    let codes: BTreeSet<&str> = v.findings.iter().map(|f| f.code.as_ref()).collect();
    for code in &want.findings {
        if !codes.contains(code.as_str()) {
            out.push(format!(
                "{}: finding {code} missing; found {codes:?}",
                spec.name
            ));
        }
    }
    if let (Some(limit), Some(worst)) = (want.worst, v.worst())
        && worst > limit
    {
        let bad: Vec<String> = v
            .findings
            .iter()
            .filter(|f| f.severity > limit)
            .map(|f| format!("{} ({})", f.code, f.message))
            .collect();
        out.push(format!(
            "{}: findings worse than {limit:?}: {bad:?}",
            spec.name
        ));
    }
    let seen: BTreeSet<&DomainName> = v.sessions.iter().map(|s| &s.mx).collect();
    let expected: BTreeSet<&DomainName> = want.sessions.iter().map(|s| &s.mx).collect();
    if seen != expected {
        out.push(format!(
            "{}: sessions with {seen:?}, expected sessions with {expected:?}",
            spec.name
        ));
    }
    for e in &want.sessions {
        let sessions: Vec<_> = v.sessions.iter().filter(|s| s.mx == e.mx).collect();
        let count = addresses.get(&e.mx).copied().unwrap_or_default();
        if sessions.len() != count {
            out.push(format!(
                "{}: {} sessions with {}, expected one per address ({count})",
                spec.name,
                sessions.len(),
                e.mx
            ));
        }
        for s in sessions {
            let at = format!("{} at {}", e.mx, s.ip);
            if s.policy_type != e.policy {
                out.push(format!(
                    "{}: {at}: policy {}, expected {}",
                    spec.name, s.policy_type, e.policy
                ));
            }
            let got = match &s.result {
                SessionResult::Success => "success".to_owned(),
                SessionResult::Inconclusive { reason } => format!("inconclusive ({reason})"),
                SessionResult::Failure { failures } => {
                    let types: Vec<ResultType> = failures.iter().map(|f| f.result_type).collect();
                    format!("failure {:?}", sorted(&types))
                }
            };
            let ok = match (&e.result, &s.result) {
                (ExpectedResult::Success, SessionResult::Success)
                | (ExpectedResult::Inconclusive, SessionResult::Inconclusive { .. }) => true,
                (ExpectedResult::Failure(types), SessionResult::Failure { failures }) => {
                    let got: Vec<ResultType> = failures.iter().map(|f| f.result_type).collect();
                    sorted(types) == sorted(&got)
                }
                _ => false,
            };
            if !ok {
                out.push(format!(
                    "{}: {at}: expected {:?}, got {got}",
                    spec.name, e.result
                ));
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_lab_domain_meets_its_expectation() {
    let scanned = scan_lab().await;
    assert_eq!(scanned.reports.len(), scanned.scenario.domains.len());
    let mut problems = Vec::new();
    for (spec, report) in scanned.scenario.domains.iter().zip(&scanned.reports) {
        assert_eq!(report.verdict.domain, spec.name, "scenario order");
        problems.extend(mismatches(spec, report, &scanned.addresses));
    }
    assert!(
        problems.is_empty(),
        "{} mismatches:\n{}",
        problems.len(),
        problems.join("\n")
    );

    // One SMTP probe per distinct (MX host, address), shared by every domain that uses it
    // (several lab domains share MX hosts); the lab counted every connection, retries of
    // the busy (421) server included.
    let c = scanned.counters;
    assert!(c.dns_queries > 0 && c.policy_requests > 0, "{c:?}");
    let pairs: BTreeSet<(String, std::net::SocketAddr)> = scanned
        .reports
        .iter()
        .flat_map(|r| r.facts.hosts.iter())
        .flat_map(|h| h.sessions.iter().map(|s| (s.mx.to_string(), s.address)))
        .collect();
    assert_eq!(
        scanned.stats.smtp_probes as usize,
        pairs.len(),
        "one probe per pair"
    );
    assert_eq!(
        c.smtp_connections as u64, scanned.stats.smtp_attempts,
        "every connection is an attempt the scanner counted"
    );
    assert!(
        scanned.stats.smtp_attempts > scanned.stats.smtp_probes,
        "the 421 server was retried: {:?}",
        scanned.stats
    );
}

/// The misbehaving servers end with the exact probe outcome, whatever the policy.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn misbehaving_servers_end_classified() {
    let scanned = scan_lab().await;
    let mut checked = BTreeSet::new();
    for report in &scanned.reports {
        for host in &report.facts.hosts {
            let Some(spec) = host.name.as_ref().and_then(|n| scanned.scenario.host(n)) else {
                continue;
            };
            for session in &host.sessions {
                let outcome = &session.outcome;
                let ok = match spec.smtp {
                    SmtpBehaviour::Starttls => matches!(outcome, SmtpOutcome::Completed),
                    SmtpBehaviour::NoStarttls => {
                        matches!(outcome, SmtpOutcome::StarttlsNotOffered)
                    }
                    SmtpBehaviour::Starttls454 => {
                        matches!(outcome, SmtpOutcome::StarttlsRejected { code: 454, .. })
                    }
                    SmtpBehaviour::EhloRejected => {
                        matches!(outcome, SmtpOutcome::EhloRejected { code: 502, .. })
                    }
                    SmtpBehaviour::Greeting421 => matches!(
                        outcome,
                        SmtpOutcome::ServiceUnavailable421 {
                            phase: Phase::Greeting,
                            ..
                        }
                    ),
                    SmtpBehaviour::Silent => {
                        *outcome
                            == SmtpOutcome::Timeout {
                                phase: Phase::Greeting,
                            }
                    }
                    SmtpBehaviour::Drip => {
                        *outcome
                            == SmtpOutcome::DeadlineExceeded {
                                phase: Phase::Greeting,
                            }
                    }
                    SmtpBehaviour::GarbageAfterStarttls => {
                        matches!(outcome, SmtpOutcome::TlsHandshakeFailed { .. })
                    }
                    // Tried again with back-off, refused every time.
                    SmtpBehaviour::ResetAfterStarttls => {
                        *outcome
                            == SmtpOutcome::ConnectionReset {
                                phase: Phase::TlsHandshake,
                            }
                            && session.refused_tls_every_time()
                    }
                    SmtpBehaviour::CloseAfterStarttls => {
                        *outcome
                            == SmtpOutcome::ClosedByServer {
                                phase: Phase::TlsHandshake,
                            }
                            && session.refused_tls_every_time()
                    }
                    SmtpBehaviour::OversizedEhlo => matches!(
                        outcome,
                        SmtpOutcome::ProtocolError {
                            phase: Phase::Ehlo,
                            ..
                        }
                    ),
                };
                assert!(ok, "{} ({:?}): {outcome:?}", spec.name, spec.smtp);
                checked.insert(format!("{:?}", spec.smtp));
            }
        }
    }
    // Every behaviour the scenario uses was seen in a probe.
    let used: BTreeSet<String> = scanned
        .scenario
        .hosts
        .iter()
        .filter(|h| h.has_address() && !checked_out(&scanned, &h.name))
        .map(|h| format!("{:?}", h.smtp))
        .collect();
    assert!(
        used.is_subset(&checked),
        "unprobed behaviours: {:?}",
        used.difference(&checked)
    );
}

/// Whether no probe reached `host` because its addresses cannot be resolved (bogus DNSSEC).
fn checked_out(scanned: &Scanned, host: &DomainName) -> bool {
    scanned.reports.iter().all(|r| {
        r.facts
            .hosts
            .iter()
            .filter(|h| h.name.as_ref() == Some(host))
            .all(|h| h.sessions.is_empty())
    })
}

/// Every finding code a lab domain produces is documented in docs/findings.md (in
/// backticks, as the other docs test requires).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_lab_finding_code_is_documented() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/findings.md"))
        .expect("docs/findings.md");
    let scanned = scan_lab().await;
    let mut missing: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for report in &scanned.reports {
        for f in &report.verdict.findings {
            if !doc.contains(&format!("`{}`", f.code)) {
                missing
                    .entry(f.code.to_string())
                    .or_default()
                    .insert(report.verdict.domain.to_string());
            }
        }
    }
    assert!(
        missing.is_empty(),
        "docs/findings.md lacks these codes (code: lab domains): {missing:?}"
    );
}

/// RFC 7672 §2.2.2 and §8.1: an MX that is a secure CNAME has its TLSA records looked up at
/// the expanded name, and that name (the TLSA base domain) is the SNI; other MX hosts are
/// greeted by their own name.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_alias_mx_is_greeted_with_its_tlsa_base_domain() {
    let scanned = scan_lab().await;
    let report = |domain: &str| {
        scanned
            .reports
            .iter()
            .find(|r| r.facts.domain.as_str() == domain)
            .unwrap_or_else(|| panic!("{domain} scanned"))
    };
    let sni = |domain: &str| -> Vec<String> {
        report(domain).facts.hosts[0]
            .sessions
            .iter()
            .map(|s| {
                s.tls
                    .as_ref()
                    .and_then(|t| t.sni.clone())
                    .unwrap_or_default()
            })
            .collect()
    };
    let alias = &report("alias-dane.test").facts.hosts[0];
    assert_eq!(alias.exchange, "mx.alias-dane.test");
    assert_eq!(
        alias.tlsa_base.as_ref().map(DomainName::as_str),
        Some("mx.dane-ee.test")
    );
    assert_eq!(sni("alias-dane.test"), ["mx.dane-ee.test"]);
    assert_eq!(sni("dane-ee.test"), ["mx.dane-ee.test"]);
    assert_eq!(report("dane-ee.test").facts.hosts[0].tlsa_base, None);
    assert_eq!(sni("good.test")[0], "mx1.good.test");
}
