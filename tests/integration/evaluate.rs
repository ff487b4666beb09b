//! The per-domain evaluation on facts built by hand: which policy applies to each MX host
//! (DANE before MTA-STS), session verdicts, and the findings a sender's view produces.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use mxprobe_core::dns::{AddressLookups, DnssecStatus, Lookup, Mx, Tlsa, Txt};
use mxprobe_core::domain::DomainName;
use mxprobe_core::evaluate::policy_fetch::ContentTypeRule;
use mxprobe_core::evaluate::verdict::{DomainVerdict, Routing, SessionResult};
use mxprobe_core::evaluate::{EvalOptions, evaluate_domain};
use mxprobe_core::facts::{
    DomainFacts, FetchAttempt, FetchOutcome, HttpResponse, MxHostFacts, PolicyFetchFacts,
};
use mxprobe_core::finding::Severity;
use mxprobe_core::smtp::{SmtpFacts, SmtpOutcome, TlsFacts};
use mxprobe_core::tls::describe;
use mxprobe_core::tlsrpt::{PolicyType, ResultType};
use mxprobe_testpki::{Issued, LeafSpec, Validity, self_signed_leaf};
use rustls_pki_types::CertificateDer;
use time::OffsetDateTime;
use time::macros::datetime;

use crate::support::{TestPki, leaf_window};

const NOW: OffsetDateTime = datetime!(2025-06-01 12:00 UTC);

fn name(s: &str) -> DomainName {
    DomainName::parse(s).unwrap()
}

fn txt(records: &[&str]) -> Lookup<Txt> {
    if records.is_empty() {
        return Lookup::NoData {
            dnssec: DnssecStatus::Insecure,
        };
    }
    Lookup::Records {
        records: records
            .iter()
            .map(|r| Txt {
                strings: vec![(*r).to_owned()],
            })
            .collect(),
        dnssec: DnssecStatus::Insecure,
        cname_chain: Vec::new(),
    }
}

fn secure<T>(records: Vec<T>) -> Lookup<T> {
    Lookup::Records {
        records,
        dnssec: DnssecStatus::Secure,
        cname_chain: Vec::new(),
    }
}

fn insecure<T>(records: Vec<T>) -> Lookup<T> {
    Lookup::Records {
        records,
        dnssec: DnssecStatus::Insecure,
        cname_chain: Vec::new(),
    }
}

fn session(mx: &str, last: u8, chain: Option<Vec<CertificateDer<'static>>>) -> SmtpFacts {
    let outcome = if chain.is_some() {
        SmtpOutcome::Completed
    } else {
        SmtpOutcome::StarttlsNotOffered
    };
    let mut s = SmtpFacts::new(
        name(mx),
        SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)), 25),
        outcome,
    );
    s.source_ip = Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
    s.tls = chain.map(|chain| TlsFacts {
        version: "TLSv1.3".to_owned(),
        cipher_suite: "TLS_AES_128_GCM_SHA256".to_owned(),
        sni: Some(mx.to_owned()),
        chain,
    });
    s
}

fn host(mx: &str, pref: u16, sessions: Vec<SmtpFacts>, tlsa: Option<Lookup<Tlsa>>) -> MxHostFacts {
    let addrs: Vec<IpAddr> = sessions.iter().map(|s| s.address.ip()).collect();
    let addr_lookup = if tlsa.is_some() {
        secure(addrs)
    } else {
        insecure(addrs)
    };
    MxHostFacts {
        exchange: mx.to_owned(),
        name: Some(name(mx)),
        preference: pref,
        implicit: false,
        addresses: Some(AddressLookups {
            a: Some(addr_lookup),
            aaaa: None,
        }),
        tlsa,
        tlsa_base: None,
        sessions,
    }
}

fn policy_fetch(pki: &TestPki, domain: &str, body: &str) -> PolicyFetchFacts {
    let host = format!("mta-sts.{domain}");
    let leaf = pki.leaf(&[&host], leaf_window());
    PolicyFetchFacts {
        url: format!("https://{host}/.well-known/mta-sts.txt"),
        attempts: vec![FetchAttempt {
            address: Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 9))),
            outcome: FetchOutcome::Response(HttpResponse {
                status: 200,
                content_type: Some("text/plain".to_owned()),
                location: None,
                chain: pki
                    .chain(&leaf)
                    .into_iter()
                    .map(|c| c.as_ref().to_vec())
                    .collect(),
                body: body.to_owned(),
                body_not_utf8: false,
                body_truncated: false,
            }),
        }],
    }
}

fn facts(domain: &str, mx: Vec<(u16, &str)>, hosts: Vec<MxHostFacts>) -> DomainFacts {
    DomainFacts {
        domain: name(domain),
        observed_at: NOW,
        mx: insecure(
            mx.into_iter()
                .map(|(preference, exchange)| Mx {
                    preference,
                    exchange: exchange.to_owned(),
                })
                .collect(),
        ),
        sts_txt: txt(&[]),
        tlsrpt_txt: txt(&["v=TLSRPTv1; rua=mailto:tlsrpt@example.com"]),
        policy_fetch: None,
        hosts,
        resolver_problem: None,
        rua: Vec::new(),
    }
}

/// Evaluates, and checks that every code in the verdict is documented.
/// `example.com` with one MX host, `mx1.example.com`, probed at one address (127.0.0.1):
/// TLS with `chain`, or no STARTTLS when `None`; `tlsa` as the host's TLSA lookup.
fn one_mx(chain: Option<Vec<CertificateDer<'static>>>, tlsa: Option<Lookup<Tlsa>>) -> DomainFacts {
    facts(
        "example.com",
        vec![(10, "mx1.example.com")],
        vec![host(
            "mx1.example.com",
            10,
            vec![session("mx1.example.com", 1, chain)],
            tlsa,
        )],
    )
}

fn judge(f: &DomainFacts, pki: &TestPki) -> DomainVerdict {
    let v = evaluate_domain(
        f,
        &EvalOptions {
            anchors: &pki.anchors,
            now: NOW,
            content_type: ContentTypeRule::Warn,
            expiry_warn_days: 21,
        },
    );
    crate::docs::assert_documented(v.findings.iter().map(|f| f.code.as_ref()));
    v
}

fn codes(v: &DomainVerdict) -> Vec<&str> {
    v.findings.iter().map(|f| f.code.as_ref()).collect()
}

fn failures(v: &DomainVerdict, i: usize) -> Vec<(ResultType, String)> {
    match &v.sessions[i].result {
        SessionResult::Failure { failures } => failures
            .iter()
            .map(|f| (f.result_type, f.reason_code.clone()))
            .collect(),
        other => panic!("session {i}: {other:?}"),
    }
}

const POLICY: &str = "version: STSv1\nmode: enforce\nmx: mx1.example.com\nmax_age: 604800\n";

#[test]
fn sts_enforce_with_one_good_and_one_uncovered_mx() {
    let pki = TestPki::root("Eval Root");
    let good = pki.leaf(&["mx1.example.com"], leaf_window());
    let other = pki.leaf(&["mx2.example.com"], leaf_window());
    let mut f = facts(
        "example.com",
        vec![(10, "mx1.example.com"), (20, "mx2.example.com")],
        vec![
            host(
                "mx1.example.com",
                10,
                vec![session("mx1.example.com", 1, Some(pki.chain(&good)))],
                None,
            ),
            host(
                "mx2.example.com",
                20,
                vec![session("mx2.example.com", 2, Some(pki.chain(&other)))],
                None,
            ),
        ],
    );
    f.sts_txt = txt(&["v=STSv1; id=20250101"]);
    f.policy_fetch = Some(policy_fetch(&pki, "example.com", POLICY));
    let v = judge(&f, &pki);
    assert_eq!(v.routing, Routing::Mx);
    assert_eq!(v.sts.id.as_deref(), Some("20250101"));
    assert!(v.sts.policy.is_some());
    assert_eq!(v.sessions[0].policy_type, PolicyType::Sts);
    assert_eq!(v.sessions[0].result, SessionResult::Success);
    assert_eq!(
        failures(&v, 1),
        [(ResultType::ValidationFailure, "mx-not-covered".to_owned())]
    );
    let f = v
        .findings
        .iter()
        .find(|f| f.code == "sts.policy.mx-not-covered")
        .unwrap();
    assert_eq!(f.severity, Severity::Error);
    assert!(
        f.message
            .contains("in enforce mode senders will not deliver to mx2.example.com"),
        "{}",
        f.message
    );
    assert!(!v.inconclusive);
}

#[test]
fn expired_and_wrong_name_certificate_fail_both_ways_under_sts_testing() {
    let pki = TestPki::root("Eval Root");
    let expired = Validity::new(
        datetime!(2024-01-01 0:00 UTC),
        datetime!(2025-01-01 0:00 UTC),
    );
    let bad = pki.leaf(&["other.example.net"], expired);
    let mut f = one_mx(Some(pki.chain(&bad)), None);
    f.sts_txt = txt(&["v=STSv1; id=1"]);
    f.policy_fetch = Some(policy_fetch(
        &pki,
        "example.com",
        &POLICY.replace("enforce", "testing"),
    ));
    let v = judge(&f, &pki);
    assert_eq!(
        failures(&v, 0),
        [
            (ResultType::CertificateExpired, "leaf-expired".to_owned()),
            (
                ResultType::CertificateHostMismatch,
                "name-mismatch".to_owned()
            ),
        ]
    );
    let c = codes(&v);
    assert!(c.contains(&"smtp.cert.leaf-expired"), "{c:?}");
    assert!(c.contains(&"smtp.cert.name-mismatch"), "{c:?}");
    // Testing mode: a warning, and the wording says so.
    let expired = v
        .findings
        .iter()
        .find(|f| f.code == "smtp.cert.leaf-expired")
        .unwrap();
    assert_eq!(expired.severity, Severity::Warning);
    assert!(
        expired
            .message
            .contains("in testing mode senders still deliver")
    );
    assert!(c.contains(&"sts.policy.mode-testing"));
}

#[test]
fn dane_takes_precedence_over_sts() {
    let pki = TestPki::root("Eval Root");
    // Valid for MTA-STS, but the TLSA record pins another key: DANE fails.
    let leaf = pki.leaf(&["mx1.example.com"], leaf_window());
    let other = pki.leaf(&["mx1.example.com"], leaf_window());
    let pin = |i: &Issued| -> Tlsa {
        format!("3 1 1 {}", describe(i.der().as_ref()).unwrap().spki_sha256)
            .parse()
            .unwrap()
    };
    let mut f = one_mx(Some(pki.chain(&leaf)), Some(secure(vec![pin(&other)])));
    f.sts_txt = txt(&["v=STSv1; id=1"]);
    f.policy_fetch = Some(policy_fetch(&pki, "example.com", POLICY));
    let v = judge(&f, &pki);
    assert_eq!(v.sessions[0].policy_type, PolicyType::Tlsa);
    assert_eq!(
        failures(&v, 0),
        [(ResultType::ValidationFailure, "dane-no-match".to_owned())]
    );
    assert!(codes(&v).contains(&"dane.dane-no-match"));

    // With the right pin DANE-EE passes, whatever the certificate's name and dates.
    let selfsigned = self_signed_leaf(&LeafSpec::new(
        &["wrong.example.org"],
        Validity::new(
            datetime!(2020-01-01 0:00 UTC),
            datetime!(2021-01-01 0:00 UTC),
        ),
    ))
    .unwrap();
    f.hosts[0].sessions = vec![session(
        "mx1.example.com",
        1,
        Some(vec![selfsigned.der().clone()]),
    )];
    f.hosts[0].tlsa = Some(secure(vec![pin(&selfsigned)]));
    let v = judge(&f, &pki);
    assert_eq!(v.sessions[0].policy_type, PolicyType::Tlsa);
    assert_eq!(v.sessions[0].result, SessionResult::Success);
    // ... but senders that apply only MTA-STS judge the same session by the enforce policy:
    // a self-signed certificate for another name fails it, and they will not deliver.
    let sts_failures: Vec<ResultType> = match &v.sessions[0].sts_result {
        Some(SessionResult::Failure { failures }) => {
            failures.iter().map(|f| f.result_type).collect()
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(
        sts_failures,
        [
            ResultType::CertificateExpired,
            ResultType::CertificateNotTrusted,
            ResultType::CertificateHostMismatch
        ]
    );
    let f = v
        .findings
        .iter()
        .find(|f| f.code == "smtp.cert.name-mismatch")
        .unwrap();
    assert_eq!(f.policy_type, Some(PolicyType::Sts));
    assert_eq!(f.severity, Severity::Error);
    assert!(
        f.message.contains("senders that apply only MTA-STS"),
        "{}",
        f.message
    );
    assert!(codes(&v).contains(&"sts.enforce.no-deliverable-mx"));
}

#[test]
fn dane_ta_reference_names_depend_on_a_secure_mx_lookup() {
    let pki = TestPki::root("Eval TA Root");
    // The leaf names only the recipient domain, not the MX host.
    let leaf = pki.leaf(&["example.com"], leaf_window());
    let ta = Tlsa {
        usage: 2,
        selector: 0,
        matching_type: 0,
        data: pki.ca.cert().der().as_ref().to_vec(),
    };
    let mut f = one_mx(Some(pki.chain(&leaf)), Some(secure(vec![ta])));
    // Insecure MX lookup: only the MX host name is a reference identifier (RFC 7672 §3.2.3).
    let v = judge(&f, &pki);
    assert_eq!(v.sessions[0].policy_type, PolicyType::Tlsa);
    assert_eq!(
        failures(&v, 0),
        [(
            ResultType::CertificateHostMismatch,
            "dane-ta-name-mismatch".to_owned()
        )]
    );
    // Secure MX lookup: the recipient domain counts too.
    f.mx = secure(vec![Mx {
        preference: 10,
        exchange: "mx1.example.com".to_owned(),
    }]);
    let v = judge(&f, &pki);
    assert_eq!(v.sessions[0].result, SessionResult::Success);
}

/// RFC 7672 §2.2.2 / §3.2.3: when the TLSA records were found at the CNAME-expanded MX
/// name, that name is a reference identifier for DANE-TA too.
#[test]
fn dane_ta_accepts_the_expanded_tlsa_base_domain() {
    let pki = TestPki::root("Eval TA Root");
    // The leaf names the CNAME target, not the MX host as published.
    let leaf = pki.leaf(&["mx.target.example.net"], leaf_window());
    let ta = Tlsa {
        usage: 2,
        selector: 0,
        matching_type: 0,
        data: pki.ca.cert().der().as_ref().to_vec(),
    };
    let mut f = one_mx(Some(pki.chain(&leaf)), Some(secure(vec![ta])));
    let v = judge(&f, &pki);
    assert_eq!(
        failures(&v, 0),
        [(
            ResultType::CertificateHostMismatch,
            "dane-ta-name-mismatch".to_owned()
        )]
    );
    f.hosts[0].tlsa_base = Some(name("mx.target.example.net"));
    let v = judge(&f, &pki);
    assert_eq!(v.sessions[0].policy_type, PolicyType::Tlsa);
    assert_eq!(v.sessions[0].result, SessionResult::Success);
}

#[test]
fn unusable_tlsa_records_with_tls_are_a_warning_not_a_block() {
    let pki = TestPki::root("Eval Unusable Root");
    let leaf = pki.leaf(&["mx1.example.com"], leaf_window());
    let pkix_ee: Tlsa = format!("1 1 1 {}", "AB".repeat(32)).parse().unwrap();
    let f = one_mx(Some(pki.chain(&leaf)), Some(secure(vec![pkix_ee])));
    let v = judge(&f, &pki);
    assert_eq!(
        failures(&v, 0),
        [(ResultType::TlsaInvalid, "tlsa-no-usable-records".to_owned())]
    );
    let finding = v
        .findings
        .iter()
        .find(|f| f.code == "dane.tlsa-invalid")
        .unwrap();
    assert_eq!(finding.severity, Severity::Warning);
    assert!(
        finding.message.contains("still deliver"),
        "{}",
        finding.message
    );
}

#[test]
fn tlsa_timeout_is_inconclusive() {
    let pki = TestPki::root("Eval Timeout Root");
    let leaf = pki.leaf(&["mx1.example.com"], leaf_window());
    let f = one_mx(Some(pki.chain(&leaf)), Some(Lookup::Timeout));
    let v = judge(&f, &pki);
    assert!(v.inconclusive);
    assert!(matches!(
        v.sessions[0].result,
        SessionResult::Inconclusive { .. }
    ));
}

#[test]
fn bogus_tlsa_blocks_and_is_dnssec_invalid() {
    let pki = TestPki::root("Eval Root");
    let leaf = pki.leaf(&["mx1.example.com"], leaf_window());
    let f = one_mx(Some(pki.chain(&leaf)), Some(Lookup::bogus("RRSIG expired")));
    let v = judge(&f, &pki);
    assert_eq!(v.sessions[0].policy_type, PolicyType::Tlsa);
    assert_eq!(
        failures(&v, 0),
        [(ResultType::DnssecInvalid, "tlsa-lookup-failed".to_owned())]
    );
}

#[test]
fn policy_fetch_failure_is_policy_level_and_sessions_succeed() {
    let pki = TestPki::root("Eval Root");
    let leaf = pki.leaf(&["mx1.example.com"], leaf_window());
    let mut f = one_mx(Some(pki.chain(&leaf)), None);
    f.sts_txt = txt(&["v=STSv1; id=1"]);
    let mut fetch = policy_fetch(&pki, "example.com", POLICY);
    if let FetchOutcome::Response(r) = &mut fetch.attempts[0].outcome {
        r.status = 404;
    }
    f.policy_fetch = Some(fetch);
    let v = judge(&f, &pki);
    let failure = v.sts.failure.as_ref().unwrap();
    assert_eq!(failure.result_type, ResultType::StsPolicyFetchError);
    assert_eq!(failure.reason_code, "bad https response code: 404");
    assert_eq!(v.sessions[0].policy_type, PolicyType::NoPolicyFound);
    assert_eq!(v.sessions[0].result, SessionResult::Success);
    assert!(codes(&v).contains(&"sts.fetch.http-status"));
}

#[test]
fn no_policy_starttls_missing_is_a_warning() {
    let pki = TestPki::root("Eval Root");
    let f = one_mx(None, None);
    let v = judge(&f, &pki);
    assert_eq!(v.sessions[0].policy_type, PolicyType::NoPolicyFound);
    assert_eq!(
        failures(&v, 0),
        [(
            ResultType::StarttlsNotSupported,
            "starttls-not-offered".to_owned()
        )]
    );
    let finding = v
        .findings
        .iter()
        .find(|f| f.code == "smtp.starttls.unavailable")
        .unwrap();
    assert_eq!(finding.severity, Severity::Warning);
    assert!(codes(&v).contains(&"sts.none"));
}

#[test]
fn same_problem_at_two_addresses_is_one_finding() {
    let pki = TestPki::root("Eval Root");
    let f = facts(
        "example.com",
        vec![(10, "mx1.example.com")],
        vec![host(
            "mx1.example.com",
            10,
            vec![
                session("mx1.example.com", 1, None),
                session("mx1.example.com", 2, None),
            ],
            None,
        )],
    );
    let v = judge(&f, &pki);
    let merged: Vec<_> = v
        .findings
        .iter()
        .filter(|f| f.code == "smtp.starttls.unavailable")
        .collect();
    assert_eq!(merged.len(), 1);
    assert_eq!(merged[0].subject.ip, None);
    assert_eq!(
        merged[0].subject.addresses(),
        Some(["127.0.0.1".parse().unwrap(), "127.0.0.2".parse().unwrap()].as_slice())
    );
    assert_eq!(
        merged[0].subject.to_string(),
        "example.com, MX mx1.example.com, addresses 127.0.0.1, 127.0.0.2"
    );
    assert_eq!(v.sessions.len(), 2);
}

#[test]
fn inconclusive_sessions_and_dns_failures_are_not_verdicts() {
    let pki = TestPki::root("Eval Root");
    let mut s = session("mx1.example.com", 1, None);
    s.outcome = SmtpOutcome::ServiceUnavailable421 {
        phase: mxprobe_core::smtp::Phase::Greeting,
        text: "too many connections".to_owned(),
    };
    let mut f = facts(
        "example.com",
        vec![(10, "mx1.example.com")],
        vec![host("mx1.example.com", 10, vec![s], None)],
    );
    f.sts_txt = Lookup::servfail();
    let v = judge(&f, &pki);
    assert!(v.inconclusive);
    assert!(matches!(
        v.sessions[0].result,
        SessionResult::Inconclusive { .. }
    ));
    let c = codes(&v);
    assert!(c.contains(&"smtp.inconclusive"), "{c:?}");
    assert!(c.contains(&"dns.sts-txt.failed"), "{c:?}");
    assert!(
        !c.contains(&"sts.none"),
        "SERVFAIL is not 'no MTA-STS': {c:?}"
    );
    assert!(!c.contains(&"smtp.starttls.unavailable"));
}

#[test]
fn routing_cases() {
    let pki = TestPki::root("Eval Root");
    let mut f = facts("example.com", vec![(0, ".")], Vec::new());
    assert_eq!(judge(&f, &pki).routing, Routing::NullMx);
    assert!(codes(&judge(&f, &pki)).contains(&"mx.null-with-policy"));
    f.tlsrpt_txt = txt(&[]);
    // No advice to publish policies for a domain that receives no mail.
    assert_eq!(codes(&judge(&f, &pki)), ["mx.null"]);

    // A lone null MX with another preference is still a null MX (with a notice).
    let f = facts("example.com", vec![(10, ".")], Vec::new());
    let v = judge(&f, &pki);
    assert_eq!(v.routing, Routing::NullMx);
    assert!(codes(&v).contains(&"mx.null-preference"));
    assert!(!codes(&v).contains(&"mx.null-mixed"));

    let f = facts(
        "example.com",
        vec![(0, "."), (10, "mx1.example.com")],
        Vec::new(),
    );
    assert!(codes(&judge(&f, &pki)).contains(&"mx.null-mixed"));

    let mut f = facts("example.com", Vec::new(), Vec::new());
    f.mx = Lookup::NoData {
        dnssec: DnssecStatus::Insecure,
    };
    let v = judge(&f, &pki);
    assert_eq!(v.routing, Routing::ImplicitMx);
    assert!(codes(&v).contains(&"mx.implicit"));

    f.mx = Lookup::NxDomain {
        dnssec: DnssecStatus::Insecure,
    };
    assert_eq!(judge(&f, &pki).routing, Routing::NoSuchDomain);
    f.mx = Lookup::Timeout;
    let v = judge(&f, &pki);
    assert_eq!(v.routing, Routing::Unknown);
    assert!(v.inconclusive);
}

#[test]
fn unresolvable_and_cname_mx_are_flagged() {
    let pki = TestPki::root("Eval Root");
    let mut h = host("mx1.example.com", 10, Vec::new(), None);
    h.addresses = Some(AddressLookups {
        a: Some(Lookup::NxDomain {
            dnssec: DnssecStatus::Insecure,
        }),
        aaaa: Some(Lookup::NxDomain {
            dnssec: DnssecStatus::Insecure,
        }),
    });
    let f = facts("example.com", vec![(10, "mx1.example.com")], vec![h]);
    assert!(codes(&judge(&f, &pki)).contains(&"mx.unresolvable"));

    let mut h = host("mx1.example.com", 10, Vec::new(), None);
    h.addresses = Some(AddressLookups {
        a: Some(Lookup::Records {
            records: vec![IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1))],
            dnssec: DnssecStatus::Insecure,
            cname_chain: vec!["real-mx.example.net".to_owned()],
        }),
        aaaa: None,
    });
    let f = facts("example.com", vec![(10, "mx1.example.com")], vec![h]);
    assert!(codes(&judge(&f, &pki)).contains(&"mx.cname"));

    // A answered, AAAA timed out: reported, and the domain is inconclusive.
    let mut h = host("mx1.example.com", 10, Vec::new(), None);
    h.addresses = Some(AddressLookups {
        a: Some(insecure(vec![IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1))])),
        aaaa: Some(Lookup::Timeout),
    });
    let f = facts("example.com", vec![(10, "mx1.example.com")], vec![h]);
    let v = judge(&f, &pki);
    assert!(codes(&v).contains(&"dns.mx-address.partial"));
    assert!(v.inconclusive);
}

#[test]
fn synthetic_report_counts_every_conclusive_session_once() {
    use mxprobe_core::synthetic_report::build_report;
    use mxprobe_core::tlsrpt::report::DateRange;
    let pki = TestPki::root("Eval Report Root");
    let leaf = pki.leaf(&["mx1.example.com"], leaf_window());
    let range = DateRange::utc_day(NOW.date()).unwrap();
    let count = |v: &DomainVerdict, f: &DomainFacts| {
        let r = build_report(f, v, range, "t".to_owned());
        r.policies
            .iter()
            .map(|p| {
                (
                    p.policy.policy_type,
                    p.summary.total_successful_session_count,
                    p.summary.total_failure_session_count,
                )
            })
            .collect::<Vec<_>>()
    };

    // Mode none: the session counts under the sts entry, as a success.
    let mut f = one_mx(Some(pki.chain(&leaf)), None);
    f.sts_txt = txt(&["v=STSv1; id=1"]);
    f.policy_fetch = Some(policy_fetch(
        &pki,
        "example.com",
        "version: STSv1\nmode: none\nmax_age: 86400\n",
    ));
    let v = judge(&f, &pki);
    assert_eq!(count(&v, &f), [(PolicyType::Sts, 1, 0)]);

    // A policy-level failure: one failed "session" for the policy; the MX session with TLS
    // counts as a success, one without TLS as a failure.
    let mut fetch = policy_fetch(&pki, "example.com", POLICY);
    if let FetchOutcome::Response(r) = &mut fetch.attempts[0].outcome {
        r.status = 500;
    }
    f.policy_fetch = Some(fetch);
    f.hosts[0]
        .sessions
        .push(session("mx1.example.com", 2, None));
    let v = judge(&f, &pki);
    assert_eq!(count(&v, &f), [(PolicyType::Sts, 1, 2)]);
}
