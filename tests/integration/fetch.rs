//! The policy-fetch scenarios of fixtures/vectors/policy-fetch-scenarios.json, judged from
//! recorded facts (the network fetcher produces the same facts; here they are built by hand,
//! with certificates from the lab PKI).

use std::net::{IpAddr, Ipv4Addr};

use mxprobe_core::domain::DomainName;
use mxprobe_core::evaluate::policy_fetch::{ContentTypeRule, FetchVerdict, judge_fetch};
use mxprobe_core::facts::{FetchAttempt, FetchOutcome, HttpResponse, PolicyFetchFacts};
use mxprobe_core::finding::Severity;
use mxprobe_core::mtasts::Mode;
use mxprobe_core::tls::Anchors;
use mxprobe_core::tlsrpt::ResultType;
use serde_json::Value;

use crate::support::TestPki;
use time::OffsetDateTime;
use time::macros::datetime;

const NOW: OffsetDateTime = datetime!(2025-06-01 12:00 UTC);
const GOOD_BODY: &str = "version: STSv1\nmode: enforce\nmx: mail.loc\nmax_age: 86400";

fn response(
    status: u16,
    content_type: Option<&str>,
    body: &str,
    chain: Vec<Vec<u8>>,
) -> HttpResponse {
    HttpResponse {
        status,
        content_type: content_type.map(str::to_owned),
        location: None,
        chain,
        body: body.to_owned(),
        body_not_utf8: false,
        body_truncated: false,
    }
}

fn facts(outcomes: Vec<FetchOutcome>) -> PolicyFetchFacts {
    PolicyFetchFacts {
        url: "https://mta-sts.good.loc/.well-known/mta-sts.txt".to_owned(),
        attempts: outcomes
            .into_iter()
            .enumerate()
            .map(|(i, outcome)| FetchAttempt {
                address: Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 10 + i as u8))),
                outcome,
            })
            .collect(),
    }
}

/// Builds the facts a scenario describes (by its name; an unknown name fails the test).
fn scenario_facts(name: &str, pki: &TestPki, domain: &str) -> PolicyFetchFacts {
    let host = format!("mta-sts.{domain}");
    let good_chain = pki.der_chain(&[&host]);
    let ok = |body: &str| {
        FetchOutcome::Response(response(200, Some("text/plain"), body, good_chain.clone()))
    };
    match name {
        "good" => facts(vec![ok(GOOD_BODY)]),
        "body garbage" => facts(vec![ok("garbage")]),
        "content-type missing" => facts(vec![FetchOutcome::Response(response(
            200,
            None,
            GOOD_BODY,
            good_chain.clone(),
        ))]),
        "HTTP 404 with a valid-looking body" => facts(vec![FetchOutcome::Response(response(
            404,
            Some("text/plain"),
            GOOD_BODY,
            good_chain.clone(),
        ))]),
        "HTTP 301 redirect" => {
            let mut r = response(301, Some("text/html"), "", good_chain.clone());
            r.location = Some(format!("https://www.{domain}/mta-sts.txt"));
            facts(vec![FetchOutcome::Response(r)])
        }
        "HTTP 204" => facts(vec![FetchOutcome::Response(response(
            204,
            Some("text/plain"),
            "",
            good_chain.clone(),
        ))]),
        "cert not valid for mta-sts.<domain>" => facts(vec![FetchOutcome::Response(response(
            200,
            Some("text/plain"),
            GOOD_BODY,
            pki.der_chain(&[domain]),
        ))]),
        "wildcard cert" => facts(vec![FetchOutcome::Response(response(
            200,
            Some("text/plain"),
            GOOD_BODY,
            pki.der_chain(&[&format!("*.{domain}")]),
        ))]),
        "chunked body growing past 64 KiB" => {
            let mut r = response(
                200,
                Some("text/plain"),
                &"x".repeat(64 * 1024),
                good_chain.clone(),
            );
            r.body_truncated = true;
            facts(vec![FetchOutcome::Response(r)])
        }
        "no DNS for mta-sts.<domain>" => PolicyFetchFacts {
            url: format!("https://{host}/.well-known/mta-sts.txt"),
            attempts: vec![FetchAttempt {
                address: None,
                outcome: FetchOutcome::DnsError {
                    error: "NXDOMAIN".to_owned(),
                    not_found: true,
                },
            }],
        },
        "TXT present, policy host has several addresses, first refuses" => facts(vec![
            FetchOutcome::ConnectError {
                error: "connection refused".to_owned(),
            },
            ok(GOOD_BODY),
        ]),
        other => panic!("scenario {other:?} is not understood by this test: add it"),
    }
}

#[test]
fn every_policy_fetch_scenario() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/vectors/policy-fetch-scenarios.json"
    ))
    .unwrap();
    let json: Value = serde_json::from_str(&text).unwrap();
    let scenarios = json["scenarios"].as_array().unwrap();
    assert_eq!(scenarios.len(), 11);
    let pki = TestPki::root("Fetch Root");
    let domain = DomainName::parse("good.loc").unwrap();
    for s in scenarios {
        let name = s["name"].as_str().unwrap();
        let expect = s["expect"].as_str().unwrap();
        let judged = judge_fetch(
            &domain,
            &scenario_facts(name, &pki, domain.as_str()),
            &pki.anchors,
            NOW,
            ContentTypeRule::Warn,
        );
        crate::docs::assert_documented(judged.findings.iter().map(|f| f.code.as_ref()));
        match s.get("tlsrpt_result_type").and_then(Value::as_str) {
            Some(want) => match &judged.verdict {
                FetchVerdict::Failed { result_type, .. } => {
                    assert_eq!(result_type.as_str(), want, "{name}")
                }
                FetchVerdict::Policy(_) => panic!("{name}: expected {want}, got a policy"),
            },
            None if expect.starts_with("policy") => match &judged.verdict {
                FetchVerdict::Policy(p) => assert_eq!(p.mode, Mode::Enforce, "{name}"),
                other => panic!("{name}: expected a policy, got {other:?}"),
            },
            None if expect.starts_with("warning") => {
                assert!(matches!(judged.verdict, FetchVerdict::Policy(_)), "{name}");
                assert!(
                    judged
                        .findings
                        .iter()
                        .any(|f| f.code == "sts.fetch.content-type"
                            && f.severity == Severity::Warning),
                    "{name}: {:?}",
                    judged.findings
                );
            }
            // The scenario gives no result type for an over-long body; RFC 8460 §4.3.2 files
            // "failure to retrieve" under sts-policy-fetch-error, which is what we report.
            None if name.starts_with("chunked") => match &judged.verdict {
                FetchVerdict::Failed {
                    result_type,
                    reason_code,
                } => {
                    assert_eq!(*result_type, ResultType::StsPolicyFetchError);
                    assert_eq!(reason_code, "policy-too-large");
                }
                other => panic!("{name}: {other:?}"),
            },
            None => panic!("{name}: expectation {expect:?} not understood by this test"),
        }
    }
}

#[test]
fn status_reason_codes_name_the_status() {
    let pki = TestPki::root("Fetch Root");
    let domain = DomainName::parse("good.loc").unwrap();
    let judged = judge_fetch(
        &domain,
        &scenario_facts("HTTP 404 with a valid-looking body", &pki, "good.loc"),
        &pki.anchors,
        NOW,
        ContentTypeRule::Warn,
    );
    assert_eq!(
        judged.verdict,
        FetchVerdict::Failed {
            result_type: ResultType::StsPolicyFetchError,
            reason_code: "bad https response code: 404".to_owned()
        }
    );
    let redirect = judge_fetch(
        &domain,
        &scenario_facts("HTTP 301 redirect", &pki, "good.loc"),
        &pki.anchors,
        NOW,
        ContentTypeRule::Warn,
    );
    assert!(
        redirect.findings[0]
            .message
            .contains("https://www.good.loc/mta-sts.txt")
    );
}

#[test]
fn wrong_content_type_rejected_when_strict() {
    let pki = TestPki::root("Fetch Root");
    let domain = DomainName::parse("good.loc").unwrap();
    let f = facts(vec![FetchOutcome::Response(response(
        200,
        Some("text/html"),
        GOOD_BODY,
        pki.der_chain(&["mta-sts.good.loc"]),
    ))]);
    let lenient = judge_fetch(&domain, &f, &pki.anchors, NOW, ContentTypeRule::Warn);
    assert!(matches!(lenient.verdict, FetchVerdict::Policy(_)));
    let strict = judge_fetch(&domain, &f, &pki.anchors, NOW, ContentTypeRule::Reject);
    assert_eq!(
        strict.verdict,
        FetchVerdict::Failed {
            result_type: ResultType::StsPolicyInvalid,
            reason_code: "content-type-not-text-plain".to_owned()
        }
    );
}

#[test]
fn expired_policy_certificate_is_webpki_invalid_even_with_a_good_body() {
    let pki = TestPki::root("Fetch Root");
    let domain = DomainName::parse("good.loc").unwrap();
    let judged = judge_fetch(
        &domain,
        &scenario_facts("good", &pki, "good.loc"),
        &pki.anchors,
        datetime!(2027-01-01 0:00 UTC),
        ContentTypeRule::Warn,
    );
    assert_eq!(
        judged.verdict,
        FetchVerdict::Failed {
            result_type: ResultType::StsWebpkiInvalid,
            reason_code: "leaf-expired".to_owned()
        }
    );
    // Not trusted by Mozilla's roots either: a lab CA is not a public CA.
    let mozilla = judge_fetch(
        &domain,
        &scenario_facts("good", &pki, "good.loc"),
        &Anchors::mozilla(),
        NOW,
        ContentTypeRule::Warn,
    );
    assert!(matches!(
        mozilla.verdict,
        FetchVerdict::Failed {
            result_type: ResultType::StsWebpkiInvalid,
            ..
        }
    ));
}
