//! Every domain of the mail lab (`fixtures/lab/scenario.toml`) scanned end to end with the
//! real `Scanner` — lab DNS with DNSSEC, the lab policy server, the lab SMTP servers — and
//! held to the expectation the scenario file states for it: routing, the MTA-STS failure,
//! the policy type and result types of every session, the findings, and "could not tell".
//! The misbehaving servers must end with the right classification; the whole scan is given
//! a generous upper bound only so that a hang fails instead of blocking the suite.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures::future::join_all;
use mxprobe_core::dns::BrokenLink;
use mxprobe_core::domain::DomainName;
use mxprobe_core::evaluate::verdict::SessionResult;
use mxprobe_core::finding::Severity;
use mxprobe_core::result::DomainResult;
use mxprobe_core::smtp::{Phase, SmtpOutcome};
use mxprobe_core::synthetic_report::build_report;
use mxprobe_core::tlsrpt::ResultType;
use mxprobe_core::tlsrpt::report::DateRange;
use mxprobe_lab::scenario::{DomainSpec, SmtpBehaviour};
use mxprobe_lab::{Lab, LabCounters, Scenario};
use mxprobe_probe::scan::Scanner;
use time::OffsetDateTime;

/// Far above what the lab needs (seconds); only here to turn a hang into a failure.
const HANG_GUARD: Duration = Duration::from_secs(120);

struct Scanned {
    scenario: Scenario,
    reports: Vec<DomainResult>,
    /// The addresses the lab gave each host.
    addresses: BTreeMap<DomainName, usize>,
    counters: LabCounters,
    /// What the scanner did (probes made, shared, attempts).
    stats: mxprobe_probe::scan::ScanStats,
    /// When the scan ran (the lab clock).
    scanned_at: OffsetDateTime,
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
        scanned_at: lab.now(),
        scenario,
    }
}

/// Every way `report` differs from what `spec` expects, in words.
fn mismatches(
    spec: &DomainSpec,
    report: &DomainResult,
    addresses: &BTreeMap<DomainName, usize>,
) -> Vec<String> {
    spec.expect.mismatches(&spec.name, report, &|mx| {
        addresses.get(mx).copied().unwrap_or_default()
    })
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

/// A bogus answer is a failure with its cause named (the answer and the chain above it asked
/// again with the CD bit and validated in-process): expired signatures with the time, a DS
/// that matches no key, corrupted signatures. Never "could not tell"; validating senders
/// report `dnssec-invalid` under policy type `tlsa` for the host, which the synthetic report
/// carries with the broken link as failure-reason-code.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bogus_dnssec_names_its_broken_link() {
    let scanned = scan_lab().await;
    let report = |domain: &str| {
        scanned
            .reports
            .iter()
            .find(|r| r.facts.domain.as_str() == domain)
            .unwrap_or_else(|| panic!("{domain} scanned"))
    };
    let cases = [
        (
            "rrsig-expired.test",
            "mx.rrsig-expired.test",
            "rrsig-expired",
            "expired at",
            "re-sign the zone mx.rrsig-expired.test: its RRSIGs expired at",
        ),
        (
            "ds-mismatch.test",
            "mx.ds-mismatch.test",
            "ds-mismatch",
            "match none of its DNSKEYs",
            "publish at the parent of mx.ds-mismatch.test",
        ),
        (
            "bogus-host.test",
            "mx.bogus-host.test",
            "rrsig-invalid",
            "does not verify",
            "re-sign the zone mx.bogus-host.test",
        ),
    ];
    let range = DateRange::utc_day(scanned.scanned_at.date()).unwrap();
    for (domain, mx, code, words, fix) in cases {
        let r = report(domain);
        assert!(
            !r.verdict.inconclusive,
            "{domain}: a failure, not could-not-tell"
        );
        let f = r
            .verdict
            .findings
            .iter()
            .find(|f| f.code == "dns.mx-address.bogus")
            .unwrap_or_else(|| panic!("{domain}: {:#?}", r.verdict.findings));
        assert_eq!(f.severity, Severity::Error);
        assert!(!f.inconclusive);
        assert_eq!(f.failure_reason_code.as_deref(), Some(code), "{domain}");
        assert_eq!(f.result_type, Some(ResultType::DnssecInvalid));
        assert!(
            f.message.contains(&format!("zone {mx}")) && f.message.contains(words),
            "{domain}: {}",
            f.message
        );
        let f_fix = f.fix.as_deref().unwrap_or_default();
        assert!(f_fix.contains(fix), "{domain}: {f_fix}");
        assert!(
            f_fix.contains(&format!("every validating sender refuses mail to {mx}")),
            "{f_fix}"
        );
        // The facts keep the cause.
        let a = r.facts.hosts[0]
            .addresses
            .as_ref()
            .and_then(|a| a.a.as_ref())
            .expect("an A lookup");
        let link = a.broken_link().unwrap_or_else(|| panic!("{domain}: {a:?}"));
        assert_eq!(link.zone(), mx);
        assert_eq!(link.reason_code(), code);
        // The synthetic report: a tlsa entry for the host, failure dnssec-invalid.
        let json = serde_json::to_value(build_report(&r.facts, &r.verdict, range, "t".into()))
            .expect("json");
        let tlsa = json["policies"]
            .as_array()
            .expect("policies")
            .iter()
            .find(|p| p["policy"]["policy-type"] == "tlsa")
            .unwrap_or_else(|| panic!("{domain}: no tlsa policy in {json:#}"));
        assert_eq!(tlsa["policy"]["policy-domain"], mx);
        assert_eq!(tlsa["summary"]["total-failure-session-count"], 1);
        let detail = &tlsa["failure-details"][0];
        assert_eq!(detail["result-type"], "dnssec-invalid");
        assert_eq!(detail["receiving-mx-hostname"], mx);
        assert_eq!(detail["failure-reason-code"], code);
        assert!(detail.get("receiving-ip").is_none(), "{detail}");
    }
    // The expiry time is the signatures' own: three days before the scan, whole seconds.
    let expired = report("rrsig-expired.test").facts.hosts[0]
        .addresses
        .as_ref()
        .and_then(|a| a.a.as_ref())
        .and_then(|l| l.broken_link().cloned());
    match expired {
        Some(BrokenLink::SignaturesExpired { expired_at, .. }) => {
            let age = scanned.scanned_at - expired_at;
            assert!(
                age > time::Duration::hours(71) && age < time::Duration::hours(73),
                "{expired_at}"
            );
            assert_eq!(expired_at.nanosecond(), 0);
        }
        other => panic!("{other:?}"),
    }
    // The domain's own MX RRset bogus: a DANE failure for the whole domain.
    let bogus_mx = report("bogus-mx.test");
    let f = bogus_mx
        .verdict
        .findings
        .iter()
        .find(|f| f.code == "dns.mx.bogus")
        .expect("dns.mx.bogus");
    assert_eq!(f.failure_reason_code.as_deref(), Some("rrsig-expired"));
    assert_eq!(
        bogus_mx.verdict.dnssec_failures[0].policy_domain.as_str(),
        "bogus-mx.test"
    );
    // A bogus TLSA RRset names its broken link in the session's failure.
    let tlsa = report("dnssec-invalid.test");
    match &tlsa.verdict.sessions[0].result {
        SessionResult::Failure { failures } => {
            assert_eq!(failures[0].result_type, ResultType::DnssecInvalid);
            assert_eq!(failures[0].reason_code, "rrsig-invalid");
        }
        other => panic!("{other:?}"),
    }
}

/// Scans through the scenario's broken resolvers (NXDOMAIN to everything; RRSIGs stripped):
/// the resolver is named as the problem, every domain is inconclusive, none fails, and
/// nothing is probed. The expectations come from the scenario file.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn broken_resolvers_are_blamed_not_the_domains() {
    let scenario = Scenario::embedded().expect("the shipped scenario is valid");
    assert!(
        scenario.resolvers.len() >= 2,
        "the scenario has broken resolvers"
    );
    let lab = Lab::start(&scenario, OffsetDateTime::now_utc())
        .await
        .expect("the lab starts");
    let mut problems = Vec::new();
    for spec in &scenario.resolvers {
        let config = lab.scan_config_through(&spec.name).expect("a lab resolver");
        let address = lab.broken_resolver(&spec.name).expect("running").addr;
        let scanner = Scanner::new(config).expect("the resolver");
        let scans = join_all(spec.domains.iter().map(|d| scanner.scan(d, lab.now())));
        let reports = tokio::time::timeout(HANG_GUARD, scans)
            .await
            .expect("a scan hung");
        let problem = scanner
            .resolver_problem()
            .unwrap_or_else(|| panic!("{}: no resolver problem noted", spec.name));
        assert_eq!(problem.resolver, address.to_string(), "{}", spec.name);
        for (domain, report) in spec.domains.iter().zip(&reports) {
            let as_domain = DomainSpec {
                expect: spec.expect.clone(),
                ..scenario.domain(domain).expect("a lab domain").clone()
            };
            problems.extend(
                mismatches(&as_domain, report, &BTreeMap::new())
                    .into_iter()
                    .map(|p| format!("through {}: {p}", spec.name)),
            );
            assert!(
                report
                    .verdict
                    .findings
                    .iter()
                    .all(|f| !f.fails(Severity::Notice)),
                "through {}: {domain}: {:#?}",
                spec.name,
                report.verdict.findings
            );
            assert!(report.facts.hosts.is_empty() && report.facts.policy_fetch.is_none());
            assert_eq!(report.facts.resolver_problem.as_ref(), Some(problem));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// TLS-RPT destinations cost nothing for a domain that reports to itself (its own MX hosts
/// are the destination's), and are checked once per run however many domains name them:
/// the MX hosts of a `mailto:` domain through the shared probe cache, an `https:` URL by one
/// HEAD, never a POST.
#[tokio::test]
async fn rua_destinations_are_checked_once_and_free_for_a_domain_reporting_to_itself() {
    use mxprobe_core::evaluate::rua::Delivery;
    use mxprobe_core::facts::RuaFacts;

    let scenario = Scenario::embedded().expect("the shipped scenario is valid");
    let lab = Lab::start(&scenario, OffsetDateTime::now_utc())
        .await
        .expect("the lab starts");
    let scanner = Scanner::new(lab.scan_config()).expect("the lab resolver");
    let name = |s: &str| DomainName::parse(s).unwrap();
    let scan = |d: DomainName| {
        let scanner = &scanner;
        let now = lab.now();
        async move {
            tokio::time::timeout(HANG_GUARD, scanner.scan(&d, now))
                .await
                .expect("a lab scan hung")
        }
    };

    // good.test reports to tlsrpt@good.test: its own two MX hosts, probed once each.
    let good = scan(name("good.test")).await;
    let stats = scanner.stats();
    assert_eq!((stats.smtp_probes, stats.rua_checks), (2, 0), "{stats:?}");
    assert!(
        matches!(&good.facts.rua[..], [RuaFacts::Mailto(m)] if m.same_as_domain && m.hosts.is_empty()),
        "{:?}",
        good.facts.rua
    );
    let deliveries: Vec<Delivery> = good
        .verdict
        .tlsrpt_destinations
        .iter()
        .map(|d| d.delivery)
        .collect();
    assert_eq!(deliveries, [Delivery::DeliverableTls]);

    // rua-healthy.test reports to good.test (MX hosts already probed) and to an https: URL.
    let before = scanner.stats();
    let healthy = scan(name("rua-healthy.test")).await;
    let first = scanner.stats().since(&before);
    assert_eq!(
        (first.rua_checks, first.rua_checks_shared, first.smtp_probes),
        (2, 0, 0),
        "{first:?}"
    );
    assert_eq!(
        healthy
            .verdict
            .tlsrpt_destinations
            .iter()
            .map(|d| d.delivery)
            .collect::<Vec<_>>(),
        [Delivery::DeliverableTls, Delivery::Reachable]
    );
    // The same destinations again (a bulk run's thousandth customer of one service).
    let before = scanner.stats();
    let again = scan(name("rua-healthy.test")).await;
    let second = scanner.stats().since(&before);
    assert_eq!(
        (
            second.rua_checks,
            second.rua_checks_shared,
            second.smtp_probes
        ),
        (0, 2, 0),
        "{second:?}"
    );
    assert_eq!(
        again.verdict.tlsrpt_destinations,
        healthy.verdict.tlsrpt_destinations
    );
    let requests: Vec<String> = lab
        .https()
        .requests()
        .into_iter()
        .filter(|r| r.sni == "reports.rua-healthy.test")
        .map(|r| format!("{} {}", r.method, r.target))
        .collect();
    assert_eq!(requests, ["HEAD /tlsrpt"], "one HEAD, never a POST");
}

/// The four lab domains of the TLS-RPT destination checks, each with its finding: a rua
/// mailbox at a domain without MX (it does not exist), at a null MX, an HTTPS endpoint with
/// an expired certificate, and a healthy mailbox (no destination finding at all).
#[tokio::test]
async fn rua_destinations_get_the_right_findings() {
    use mxprobe_core::evaluate::rua::Delivery;

    let scanned = scan_lab().await;
    let find = |domain: &str| {
        scanned
            .reports
            .iter()
            .find(|r| r.verdict.domain.as_str() == domain)
            .unwrap_or_else(|| panic!("{domain} scanned"))
    };
    let rua_findings = |r: &DomainResult| -> Vec<(String, Severity, String)> {
        r.verdict
            .findings
            .iter()
            .filter(|f| f.code.starts_with("tlsrpt.rua."))
            .map(|f| (f.code.to_string(), f.severity, f.message.clone()))
            .collect()
    };
    let cases = [
        (
            "rua-no-mx.test",
            Delivery::Undeliverable,
            Some((
                "tlsrpt.rua.undeliverable",
                Severity::Error,
                "does not exist (NXDOMAIN)",
            )),
        ),
        (
            "rua-null-mx.test",
            Delivery::Undeliverable,
            Some((
                "tlsrpt.rua.undeliverable",
                Severity::Error,
                "null MX (RFC 7505)",
            )),
        ),
        (
            "rua-https-expired.test",
            Delivery::CertificateInvalid,
            Some(("tlsrpt.rua.https-cert", Severity::Warning, "expired at")),
        ),
        ("rua-healthy.test", Delivery::DeliverableTls, None),
    ];
    for (domain, delivery, finding) in cases {
        let report = find(domain);
        assert_eq!(
            report.verdict.tlsrpt_destinations[0].delivery, delivery,
            "{domain}"
        );
        let found = rua_findings(report);
        match finding {
            Some((code, severity, words)) => {
                assert_eq!(found.len(), 1, "{domain}: {found:?}");
                assert_eq!(
                    (found[0].0.as_str(), found[0].1),
                    (code, severity),
                    "{domain}"
                );
                assert!(found[0].2.contains(words), "{domain}: {}", found[0].2);
            }
            None => assert!(found.is_empty(), "{domain}: {found:?}"),
        }
    }
}
