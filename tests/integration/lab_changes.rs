//! Changing a running lab between two scans: `good.test` is scanned, then mx1.good.test is
//! given an expired certificate and the policy drops mx2.good.test, and a second scan (a new
//! `Scanner`, so no probe is reused) must see exactly those two changes and nothing else —
//! same DNS answers, same chains elsewhere, same PKI. The error cases (unknown hosts, hosts
//! without STARTTLS, domains without a policy host) are checked on the running lab too.
//! Every server is the lab's, on loopback.

use std::time::Duration;

use mxprobe_core::domain::DomainName;
use mxprobe_core::evaluate::verdict::{DomainVerdict, SessionResult};
use mxprobe_core::mtasts::policy::Mode;
use mxprobe_core::result::DomainResult;
use mxprobe_core::smtp::SmtpFacts;
use mxprobe_core::tlsrpt::ResultType;
use mxprobe_lab::scenario::CertProfile;
use mxprobe_lab::smtp::StartTls;
use mxprobe_lab::{Lab, LabError, RunningLab, Scenario};
use mxprobe_probe::scan::Scanner;
use time::OffsetDateTime;

/// Far above what one lab domain needs; only here to turn a hang into a failure.
const HANG_GUARD: Duration = Duration::from_secs(60);

/// The policy of good.test without mx2.good.test (the id in DNS stays the same).
const POLICY_WITHOUT_MX2: &str =
    "version: STSv1\nmode: enforce\nmx: mx1.good.test\nmax_age: 604800\n";

fn name(s: &str) -> DomainName {
    DomainName::parse(s).expect("a valid name")
}

async fn start_lab() -> RunningLab {
    let scenario = Scenario::embedded().expect("the shipped scenario is valid");
    // The lab's DNSSEC signatures are made at the wall-clock time, so the lab clock is now.
    Lab::start(&scenario, OffsetDateTime::now_utc())
        .await
        .expect("the lab starts")
}

/// Scans `domain` with a new scanner (its probe cache is empty).
async fn scan(lab: &RunningLab, domain: &DomainName) -> DomainResult {
    let scanner = Scanner::new(lab.scan_config()).expect("the lab resolver");
    tokio::time::timeout(HANG_GUARD, scanner.scan(domain, lab.now()))
        .await
        .expect("a lab scan hung")
}

/// Every session's result at `mx`, one per address the lab gave it.
fn results_at<'a>(
    lab: &RunningLab,
    verdict: &'a DomainVerdict,
    mx: &str,
) -> Vec<&'a SessionResult> {
    let mx = name(mx);
    let results: Vec<&SessionResult> = verdict
        .sessions
        .iter()
        .filter(|s| s.mx == mx)
        .map(|s| &s.result)
        .collect();
    assert_eq!(
        results.len(),
        lab.addresses(&mx).len(),
        "one session per address of {mx}"
    );
    assert!(!results.is_empty(), "{mx} was probed");
    results
}

/// The failures of a session as (result type, reason code).
fn failures(result: &SessionResult) -> Vec<(ResultType, &str)> {
    match result {
        SessionResult::Failure { failures } => failures
            .iter()
            .map(|f| (f.result_type, f.reason_code.as_str()))
            .collect(),
        other => panic!("expected a failure, got {other:?}"),
    }
}

/// Every SMTP session of `mx` in `report`.
fn sessions<'a>(report: &'a DomainResult, mx: &str) -> Vec<&'a SmtpFacts> {
    let mx = name(mx);
    report
        .facts
        .hosts
        .iter()
        .filter(|h| h.name.as_ref() == Some(&mx))
        .flat_map(|h| h.sessions.iter())
        .collect()
}

/// The chains presented by `mx`, one per session.
fn chains(report: &DomainResult, mx: &str) -> Vec<Vec<Vec<u8>>> {
    sessions(report, mx)
        .iter()
        .map(|s| {
            let tls = s.tls.as_ref().expect("the TLS handshake completed");
            tls.chain.iter().map(|c| c.as_ref().to_vec()).collect()
        })
        .collect()
}

fn policy_mx(verdict: &DomainVerdict) -> Vec<String> {
    let policy = verdict.sts.policy.as_ref().expect("a valid policy");
    policy.mx.iter().map(ToString::to_string).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_certificate_and_a_narrower_policy_show_in_the_next_scan() {
    let lab = start_lab().await;
    let good = name("good.test");

    let before = scan(&lab, &good).await;
    for mx in ["mx1.good.test", "mx2.good.test"] {
        for result in results_at(&lab, &before.verdict, mx) {
            assert_eq!(*result, SessionResult::Success, "{mx} before the change");
        }
    }
    let policy = before.verdict.sts.policy.as_ref().expect("a valid policy");
    assert_eq!(policy.mode, Mode::Enforce);
    assert_eq!(
        policy_mx(&before.verdict),
        ["mx1.good.test", "mx2.good.test"]
    );

    lab.replace_certificate(&name("mx1.good.test"), CertProfile::Expired)
        .expect("mx1.good.test serves STARTTLS");
    lab.set_policy(&good, POLICY_WITHOUT_MX2)
        .expect("good.test has a policy host");
    let after = scan(&lab, &good).await;

    // Exactly the two changes.
    for result in results_at(&lab, &after.verdict, "mx1.good.test") {
        assert_eq!(
            failures(result),
            [(ResultType::CertificateExpired, "leaf-expired")],
            "mx1.good.test after the change"
        );
    }
    for result in results_at(&lab, &after.verdict, "mx2.good.test") {
        assert_eq!(
            failures(result),
            [(ResultType::ValidationFailure, "mx-not-covered")],
            "mx2.good.test after the change"
        );
    }
    assert_eq!(policy_mx(&after.verdict), ["mx1.good.test"]);
    assert_eq!(
        after.verdict.sts.id, before.verdict.sts.id,
        "same _mta-sts id"
    );
    assert_eq!(after.verdict.sts.failure, None);

    // The DNS answers are the same records with the same DNSSEC status.
    assert_eq!(after.facts.mx, before.facts.mx, "MX");
    assert_eq!(after.facts.sts_txt, before.facts.sts_txt, "_mta-sts TXT");
    assert_eq!(
        after.facts.tlsrpt_txt, before.facts.tlsrpt_txt,
        "_smtp._tls TXT"
    );
    assert_eq!(after.facts.hosts.len(), before.facts.hosts.len());
    for (a, b) in after.facts.hosts.iter().zip(&before.facts.hosts) {
        assert_eq!(a.exchange, b.exchange);
        assert_eq!(a.addresses, b.addresses, "addresses of {}", a.exchange);
        assert_eq!(a.tlsa, b.tlsa, "TLSA of {} (not changed)", a.exchange);
    }

    // mx2.good.test and the policy host present the very same chains.
    assert_eq!(
        chains(&after, "mx2.good.test"),
        chains(&before, "mx2.good.test")
    );
    let policy_chain = |r: &DomainResult| {
        r.facts
            .policy_fetch
            .as_ref()
            .and_then(|f| f.response())
            .map(|resp| resp.chain.clone())
            .expect("the policy was fetched")
    };
    assert_eq!(policy_chain(&after), policy_chain(&before));

    // mx1.good.test has a new, expired leaf from the same intermediate.
    for (new, old) in chains(&after, "mx1.good.test")
        .iter()
        .zip(&chains(&before, "mx1.good.test"))
    {
        assert_eq!(new.len(), 2, "leaf and intermediate");
        assert_ne!(new[0], old[0], "a new leaf");
        assert_eq!(new[1], old[1], "the same lab intermediate");
        let leaf = mxprobe_core::tls::describe(&new[0]).expect("a certificate");
        assert!(leaf.not_after < lab.now(), "expired: {}", leaf.not_after);
        assert_eq!(leaf.dns_names, ["mx1.good.test"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_change_keeps_every_other_behaviour() {
    let lab = start_lab().await;
    let host = name("mx.ehlo-rejected.test");
    let before: Vec<_> = lab
        .smtp_servers()
        .filter(|(h, _)| **h == host)
        .map(|(_, s)| s.spec())
        .collect();
    assert!(!before.is_empty(), "the scenario has {host}");

    lab.replace_certificate(&host, CertProfile::WrongName)
        .expect("the host accepts STARTTLS");
    let after: Vec<_> = lab
        .smtp_servers()
        .filter(|(h, _)| **h == host)
        .map(|(_, s)| s.spec())
        .collect();
    assert_eq!(after.len(), before.len());
    for (a, b) in after.iter().zip(&before) {
        assert_eq!(a.hostname, b.hostname);
        assert_eq!(a.greeting, b.greeting);
        assert_eq!(a.keywords, b.keywords);
        assert_eq!(a.ehlo, b.ehlo, "EHLO is still rejected");
        assert!(
            matches!(a.starttls, StartTls::Accept(_)),
            "{:?}",
            a.starttls
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_to_what_the_lab_does_not_serve_are_errors_naming_it() {
    let lab = start_lab().await;

    let unknown = name("mx9.good.test");
    let err = lab
        .replace_certificate(&unknown, CertProfile::Expired)
        .expect_err("no such host");
    assert!(
        matches!(&err, LabError::NoSmtpServer { host } if host == "mx9.good.test"),
        "{err}"
    );
    assert!(err.to_string().contains("mx9.good.test"), "{err}");

    let plaintext = name("mx.starttls-missing.test");
    let err = lab
        .replace_certificate(&plaintext, CertProfile::Expired)
        .expect_err("no STARTTLS");
    let expected_ip = lab.addresses(&plaintext)[0];
    assert!(
        matches!(&err, LabError::NoStartTls { host, ip }
            if host == "mx.starttls-missing.test" && *ip == expected_ip),
        "{err}"
    );
    assert!(
        err.to_string().contains("mx.starttls-missing.test"),
        "{err}"
    );

    let without_policy = lab
        .scenario()
        .domains
        .iter()
        .find(|d| d.policy.is_none())
        .map(|d| d.name.clone())
        .expect("the scenario has a domain without a policy host");
    let unknown_domain = name("nowhere.test");
    for domain in [&without_policy, &unknown_domain] {
        let err = lab
            .set_policy(domain, POLICY_WITHOUT_MX2)
            .expect_err("no policy host");
        assert!(
            matches!(&err, LabError::NoPolicyHost { domain: d } if d == domain.as_str()),
            "{err}"
        );
        assert!(err.to_string().contains(domain.as_str()), "{err}");
    }
}
