//! The policy fetcher (`mxprobe_probe::fetch`) against the lab's HTTPS policy servers on loopback:
//! every scenario of fixtures/vectors/policy-fetch-scenarios.json checked at the facts level
//! (exact status, headers, body, chain, attempts) and then judged end to end by
//! `judge_fetch`; plus the misbehaving servers (hangs end by the timeout) and concurrent
//! fetches (chains never mix). Nothing here leaves 127.0.0.0/8.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use bytes::Bytes;
use mxprobe_core::domain::DomainName;
use mxprobe_core::evaluate::policy_fetch::{ContentTypeRule, FetchVerdict, judge_fetch};
use mxprobe_core::facts::{FetchAttempt, FetchOutcome, FetchPhase, HttpResponse, PolicyFetchFacts};
use mxprobe_core::finding::Severity;
use mxprobe_core::mtasts::Mode;
use mxprobe_core::tlsrpt::ResultType;
use mxprobe_lab::https::{
    HostBehaviour, Pace, PolicyBody, PolicyHost, PolicyResponse, PolicyServer, RunningHttps,
};
use mxprobe_probe::fetch::{
    FetchConfig, FetchTimeouts, MAX_POLICY_BYTES, dns_error, fetch_policy, not_found, policy_host,
};
use serde_json::Value;
use time::OffsetDateTime;
use time::macros::datetime;

use crate::support::{TestPki, leaf_window};

const NOW: OffsetDateTime = datetime!(2025-06-01 12:00 UTC);
const GOOD_BODY: &str = "version: STSv1\nmode: enforce\nmx: mail.loc\nmax_age: 86400";
const LO: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// A second loopback address (Linux routes all of 127.0.0.0/8 to `lo`).
const LO2: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

struct Pki(TestPki);

impl Pki {
    fn new() -> Self {
        // An intermediate, so a recorded chain has more than the leaf in it.
        Self(TestPki::with_intermediate("Fetch Net Root"))
    }

    /// A host named `name` whose certificate has the SANs `sans`; also the chain as DER, as
    /// the fetcher must record it.
    fn host(&self, name: &str, sans: &[&str], behaviour: HostBehaviour) -> (PolicyHost, Chain) {
        let leaf = self.0.leaf(sans, leaf_window());
        let chain = self.0.chain(&leaf);
        let der = chain.iter().map(|c| c.as_ref().to_vec()).collect();
        let host = PolicyHost {
            name: name.to_owned(),
            chain,
            key: leaf.private_key(),
            behaviour,
        };
        (host, der)
    }
}

type Chain = Vec<Vec<u8>>;

fn domain(name: &str) -> DomainName {
    DomainName::parse(name).unwrap()
}

fn timeouts() -> FetchTimeouts {
    FetchTimeouts {
        connect: Duration::from_secs(5),
        request: Duration::from_secs(10),
        overall: Duration::from_secs(20),
    }
}

/// Short enough that a hanging server ends a test quickly.
fn hang_timeouts() -> FetchTimeouts {
    FetchTimeouts {
        connect: Duration::from_millis(400),
        request: Duration::from_millis(400),
        overall: Duration::from_secs(5),
    }
}

fn config_for(server: &RunningHttps, timeouts: FetchTimeouts) -> FetchConfig {
    FetchConfig::new(timeouts).with_port(server.addr.ip(), server.addr.port())
}

fn judge(domain: &DomainName, facts: &PolicyFetchFacts, pki: &Pki) -> FetchVerdict {
    judge_fetch(domain, facts, &pki.0.anchors, NOW, ContentTypeRule::Warn).verdict
}

fn only_response(facts: &PolicyFetchFacts) -> &HttpResponse {
    assert_eq!(facts.attempts.len(), 1, "{facts:#?}");
    assert_eq!(facts.attempts[0].address, Some(LO));
    match &facts.attempts[0].outcome {
        FetchOutcome::Response(r) => r,
        other => panic!("expected a response, got {other:?}"),
    }
}

fn failed(result_type: ResultType, reason: &str) -> FetchVerdict {
    FetchVerdict::Failed {
        result_type,
        reason_code: reason.to_owned(),
    }
}

/// A body bigger than the limit, sent in chunks of 4 KiB with no Content-Length.
fn endless_chunks() -> PolicyBody {
    PolicyBody::Chunked {
        chunk: Bytes::from(vec![b'x'; 4096]),
        count: None,
    }
}

/// One scenario of the vector file: the host to serve, the exact facts expected, the
/// judgement expected.
struct Case {
    /// The scenario's `name` in policy-fetch-scenarios.json.
    scenario: &'static str,
    domain: &'static str,
    sans: &'static [&'static str],
    response: PolicyResponse,
    expect_status: u16,
    expect_content_type: Option<&'static str>,
    expect_location: Option<&'static str>,
    expect_body: String,
    expect_truncated: bool,
    expect_verdict: Expect,
}

enum Expect {
    Policy(Mode),
    PolicyWithWarning(&'static str),
    Failed(ResultType, &'static str),
}

fn cases() -> Vec<Case> {
    let plain = |body: &str| PolicyResponse::policy(body);
    vec![
        Case {
            scenario: "good",
            domain: "good.loc",
            sans: &["mta-sts.good.loc"],
            response: plain(GOOD_BODY),
            expect_status: 200,
            expect_content_type: Some("text/plain"),
            expect_location: None,
            expect_body: GOOD_BODY.to_owned(),
            expect_truncated: false,
            expect_verdict: Expect::Policy(Mode::Enforce),
        },
        Case {
            scenario: "body garbage",
            domain: "bad-policy1.loc",
            sans: &["mta-sts.bad-policy1.loc"],
            response: plain("garbage"),
            expect_status: 200,
            expect_content_type: Some("text/plain"),
            expect_location: None,
            expect_body: "garbage".to_owned(),
            expect_truncated: false,
            expect_verdict: Expect::Failed(ResultType::StsPolicyInvalid, ""),
        },
        Case {
            scenario: "content-type missing",
            domain: "no-ctype.loc",
            sans: &["mta-sts.no-ctype.loc"],
            response: plain(GOOD_BODY).with_content_type(None),
            expect_status: 200,
            expect_content_type: None,
            expect_location: None,
            expect_body: GOOD_BODY.to_owned(),
            expect_truncated: false,
            expect_verdict: Expect::PolicyWithWarning("sts.fetch.content-type"),
        },
        Case {
            scenario: "HTTP 404 with a valid-looking body",
            domain: "bad-policy4.loc",
            sans: &["mta-sts.bad-policy4.loc"],
            response: PolicyResponse {
                status: 404,
                ..plain(GOOD_BODY)
            },
            expect_status: 404,
            expect_content_type: Some("text/plain"),
            expect_location: None,
            expect_body: GOOD_BODY.to_owned(),
            expect_truncated: false,
            expect_verdict: Expect::Failed(
                ResultType::StsPolicyFetchError,
                "bad https response code: 404",
            ),
        },
        Case {
            scenario: "HTTP 301 redirect",
            domain: "redirect.loc",
            sans: &["mta-sts.redirect.loc"],
            // The target is on the same server: following it would show as a second request.
            response: PolicyResponse::redirect(
                301,
                "https://mta-sts.redirect.loc/.well-known/mta-sts.txt?moved=1",
            ),
            expect_status: 301,
            expect_content_type: None,
            expect_location: Some("https://mta-sts.redirect.loc/.well-known/mta-sts.txt?moved=1"),
            expect_body: String::new(),
            expect_truncated: false,
            expect_verdict: Expect::Failed(ResultType::StsPolicyFetchError, "http-redirect-301"),
        },
        Case {
            scenario: "HTTP 204",
            domain: "no-content.loc",
            sans: &["mta-sts.no-content.loc"],
            response: PolicyResponse::status(204),
            expect_status: 204,
            expect_content_type: None,
            expect_location: None,
            expect_body: String::new(),
            expect_truncated: false,
            expect_verdict: Expect::Failed(
                ResultType::StsPolicyFetchError,
                "bad https response code: 204",
            ),
        },
        Case {
            scenario: "cert not valid for mta-sts.<domain>",
            domain: "bad-cert2.loc",
            sans: &["bad-cert2.loc"],
            response: plain(GOOD_BODY),
            expect_status: 200,
            expect_content_type: Some("text/plain"),
            expect_location: None,
            expect_body: GOOD_BODY.to_owned(),
            expect_truncated: false,
            expect_verdict: Expect::Failed(ResultType::StsWebpkiInvalid, ""),
        },
        Case {
            scenario: "wildcard cert",
            domain: "fast-expire.loc",
            sans: &["*.fast-expire.loc"],
            response: plain(GOOD_BODY),
            expect_status: 200,
            expect_content_type: Some("text/plain"),
            expect_location: None,
            expect_body: GOOD_BODY.to_owned(),
            expect_truncated: false,
            expect_verdict: Expect::Policy(Mode::Enforce),
        },
        Case {
            scenario: "chunked body growing past 64 KiB",
            domain: "chunked-overlength.loc",
            sans: &["mta-sts.chunked-overlength.loc"],
            response: plain("").with_body(endless_chunks()),
            expect_status: 200,
            expect_content_type: Some("text/plain"),
            expect_location: None,
            expect_body: "x".repeat(MAX_POLICY_BYTES),
            expect_truncated: true,
            expect_verdict: Expect::Failed(ResultType::StsPolicyFetchError, "policy-too-large"),
        },
    ]
}

/// Scenarios checked by their own tests below (they need no HTTP response, or two addresses).
const OWN_TESTS: &[&str] = &[
    "no DNS for mta-sts.<domain>",
    "TXT present, policy host has several addresses, first refuses",
];

#[test]
fn every_vector_scenario_is_covered() {
    let text = include_str!("../../fixtures/vectors/policy-fetch-scenarios.json");
    let json: Value = serde_json::from_str(text).unwrap();
    let names: Vec<&str> = json["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    let covered: Vec<&str> = cases()
        .iter()
        .map(|c| c.scenario)
        .chain(OWN_TESTS.iter().copied())
        .collect();
    for name in &names {
        assert!(
            covered.contains(name),
            "scenario {name:?} has no network test"
        );
    }
    assert_eq!(
        covered.len(),
        names.len(),
        "a test names a scenario that is gone"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vector_scenarios_fetched_from_one_server_and_judged() {
    let pki = Pki::new();
    let cases = cases();
    let mut hosts = Vec::new();
    let mut chains = Vec::new();
    for case in &cases {
        let name = policy_host(&domain(case.domain));
        let (host, chain) = pki.host(
            &name,
            case.sans,
            HostBehaviour::Respond(case.response.clone()),
        );
        hosts.push(host);
        chains.push(chain);
    }
    let server = PolicyServer::start(LO, hosts).await.unwrap();
    let config = config_for(&server, timeouts());

    for (case, chain) in cases.iter().zip(chains) {
        let d = domain(case.domain);
        let facts = fetch_policy(&config, &d, &[LO]).await;
        let name = case.scenario;
        assert_eq!(
            facts.url,
            format!("https://mta-sts.{}/.well-known/mta-sts.txt", case.domain),
            "{name}"
        );
        let response = only_response(&facts);
        let expected = HttpResponse {
            status: case.expect_status,
            content_type: case.expect_content_type.map(str::to_owned),
            location: case.expect_location.map(str::to_owned),
            // The chain exactly as the server sent it, leaf first, wrong name or not.
            chain,
            body: case.expect_body.clone(),
            body_not_utf8: false,
            body_truncated: case.expect_truncated,
        };
        assert_eq!(response, &expected, "{name}");
        // One request per fetch: no redirect followed, no retry.
        assert_eq!(server.requests_for(&policy_host(&d)), 1, "{name}");

        let judgement = judge_fetch(&d, &facts, &pki.0.anchors, NOW, ContentTypeRule::Warn);
        match (&case.expect_verdict, &judgement.verdict) {
            (Expect::Policy(mode), FetchVerdict::Policy(p)) => {
                assert_eq!(p.mode, *mode, "{name}");
                assert!(
                    judgement
                        .findings
                        .iter()
                        .all(|f| f.severity < Severity::Warning),
                    "{name}: {:#?}",
                    judgement.findings
                );
            }
            (Expect::PolicyWithWarning(code), FetchVerdict::Policy(_)) => {
                assert!(
                    judgement
                        .findings
                        .iter()
                        .any(|f| f.code == *code && f.severity == Severity::Warning),
                    "{name}: {:#?}",
                    judgement.findings
                );
            }
            (
                Expect::Failed(result_type, reason),
                FetchVerdict::Failed {
                    result_type: got,
                    reason_code,
                },
            ) => {
                assert_eq!(got, result_type, "{name}");
                if !reason.is_empty() {
                    assert_eq!(reason_code, reason, "{name}");
                }
            }
            (_, other) => panic!("{name}: unexpected verdict {other:?}"),
        }
    }
    assert_eq!(server.request_count(), cases.len() as u64);
    assert_eq!(server.handshake_count(), cases.len() as u64);
}

#[tokio::test]
async fn request_carries_sni_host_path_and_user_agent() {
    let pki = Pki::new();
    let (host, _) = pki.host(
        "mta-sts.good.loc",
        &["mta-sts.good.loc"],
        HostBehaviour::Respond(PolicyResponse::policy(GOOD_BODY)),
    );
    let server = PolicyServer::start(LO, vec![host]).await.unwrap();
    let config = config_for(&server, timeouts());
    fetch_policy(&config, &domain("good.loc"), &[LO]).await;
    let seen = server.requests();
    assert_eq!(seen.len(), 1);
    let request = &seen[0];
    assert_eq!(request.sni, "mta-sts.good.loc");
    // RFC 8461 §3.3: the Host is the policy host; the lab port is not in it.
    assert_eq!(request.host.as_deref(), Some("mta-sts.good.loc"));
    assert_eq!(request.method, "GET");
    assert_eq!(request.target, "/.well-known/mta-sts.txt");
    assert_eq!(request.user_agent.as_deref(), Some(config.user_agent()));
    assert!(config.user_agent().starts_with("mxprobe/"));
}

#[tokio::test]
async fn no_dns_for_the_policy_host_is_a_dns_error() {
    // Scenario "no DNS for mta-sts.<domain>": the DNS stage records it through the helper;
    // fetch_policy given no address records the same kind of fact.
    let pki = Pki::new();
    let d = domain("doesnotexist.loc");
    let facts = not_found(&d, "NXDOMAIN");
    assert_eq!(
        facts.attempts,
        vec![FetchAttempt {
            address: None,
            outcome: FetchOutcome::DnsError {
                error: "NXDOMAIN".to_owned(),
                not_found: true,
            }
        }]
    );
    assert_eq!(
        judge(&d, &facts, &pki),
        failed(ResultType::StsPolicyFetchError, "policy-host-not-found")
    );
    // A lookup that failed (SERVFAIL) is not "no policy host": could not tell.
    let facts = dns_error(&d, "SERVFAIL");
    assert_eq!(
        judge(&d, &facts, &pki),
        failed(ResultType::StsPolicyFetchError, "policy-host-dns-failed")
    );

    let facts = fetch_policy(&FetchConfig::new(timeouts()), &d, &[]).await;
    assert_eq!(
        facts.attempts,
        vec![FetchAttempt {
            address: None,
            outcome: FetchOutcome::DnsError {
                error: "mta-sts.doesnotexist.loc has no A or AAAA record".to_owned(),
                not_found: true,
            }
        }]
    );
}

/// A loopback port with nothing listening on it.
async fn closed_port(ip: IpAddr) -> u16 {
    let listener = tokio::net::TcpListener::bind((ip, 0)).await.unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test]
async fn first_address_refuses_second_serves() {
    let pki = Pki::new();
    let (host, chain) = pki.host(
        "mta-sts.multi.loc",
        &["mta-sts.multi.loc"],
        HostBehaviour::Respond(PolicyResponse::policy(GOOD_BODY)),
    );
    let server = PolicyServer::start(LO2, vec![host]).await.unwrap();
    let config = FetchConfig::new(timeouts())
        .with_port(LO, closed_port(LO).await)
        .with_port(LO2, server.addr.port());
    let d = domain("multi.loc");
    let facts = fetch_policy(&config, &d, &[LO, LO2]).await;
    assert_eq!(facts.attempts.len(), 2, "{facts:#?}");
    assert_eq!(facts.attempts[0].address, Some(LO));
    assert!(
        matches!(&facts.attempts[0].outcome, FetchOutcome::ConnectError { error } if error.contains("refused")),
        "{:?}",
        facts.attempts[0].outcome
    );
    assert_eq!(facts.attempts[1].address, Some(LO2));
    let FetchOutcome::Response(response) = &facts.attempts[1].outcome else {
        panic!("second attempt: {:?}", facts.attempts[1].outcome);
    };
    assert_eq!(response.status, 200);
    assert_eq!(response.chain, chain);
    assert!(matches!(judge(&d, &facts, &pki), FetchVerdict::Policy(_)));
}

#[tokio::test]
async fn any_http_response_ends_the_address_loop() {
    let pki = Pki::new();
    let (first, _) = pki.host(
        "mta-sts.stop.loc",
        &["mta-sts.stop.loc"],
        HostBehaviour::Respond(PolicyResponse::status(404)),
    );
    let (second, _) = pki.host(
        "mta-sts.stop.loc",
        &["mta-sts.stop.loc"],
        HostBehaviour::Respond(PolicyResponse::policy(GOOD_BODY)),
    );
    let one = PolicyServer::start(LO, vec![first]).await.unwrap();
    let two = PolicyServer::start(LO2, vec![second]).await.unwrap();
    let config = FetchConfig::new(timeouts())
        .with_port(LO, one.addr.port())
        .with_port(LO2, two.addr.port());
    let facts = fetch_policy(&config, &domain("stop.loc"), &[LO, LO2, LO]).await;
    assert_eq!(only_response(&facts).status, 404);
    assert_eq!(two.request_count(), 0);
    assert_eq!(two.connection_count(), 0);
}

#[tokio::test]
async fn body_limit_is_exact() {
    let pki = Pki::new();
    let cap = MAX_POLICY_BYTES;
    let cases: Vec<(&str, PolicyBody, usize, bool)> = vec![
        (
            "chunked, exactly the limit",
            PolicyBody::Chunked {
                chunk: Bytes::from(vec![b'a'; 1024]),
                count: Some((cap / 1024) as u64),
            },
            cap,
            false,
        ),
        (
            "chunked, one byte over",
            PolicyBody::Chunked {
                chunk: Bytes::from(vec![b'a'; cap + 1]),
                count: Some(1),
            },
            cap,
            true,
        ),
        (
            "Content-Length exactly the limit",
            PolicyBody::Full(Bytes::from(vec![b'a'; cap])),
            cap,
            false,
        ),
        // An announced length over the limit is not read at all.
        (
            "Content-Length over the limit",
            PolicyBody::Full(Bytes::from(vec![b'a'; cap + 1])),
            0,
            true,
        ),
    ];
    for (name, body, len, truncated) in cases {
        let (host, _) = pki.host(
            "mta-sts.size.loc",
            &["mta-sts.size.loc"],
            HostBehaviour::Respond(PolicyResponse::policy("").with_body(body)),
        );
        let server = PolicyServer::start(LO, vec![host]).await.unwrap();
        let facts =
            fetch_policy(&config_for(&server, timeouts()), &domain("size.loc"), &[LO]).await;
        let response = only_response(&facts);
        assert_eq!(response.body.len(), len, "{name}");
        assert_eq!(response.body_truncated, truncated, "{name}");
        assert!(response.body.bytes().all(|b| b == b'a'), "{name}");
    }
}

#[tokio::test]
async fn body_that_is_not_utf8_is_flagged() {
    let pki = Pki::new();
    let (host, _) = pki.host(
        "mta-sts.latin1.loc",
        &["mta-sts.latin1.loc"],
        HostBehaviour::Respond(
            PolicyResponse::policy("").with_body(PolicyBody::Full(Bytes::from_static(b"mx: \xe9"))),
        ),
    );
    let server = PolicyServer::start(LO, vec![host]).await.unwrap();
    let facts = fetch_policy(
        &config_for(&server, timeouts()),
        &domain("latin1.loc"),
        &[LO],
    )
    .await;
    let response = only_response(&facts);
    assert_eq!(response.body, "mx: \u{fffd}");
    assert!(response.body_not_utf8);
}

#[tokio::test]
async fn hanging_servers_end_by_the_timeout_in_the_right_phase() {
    let pki = Pki::new();
    let cases: Vec<(&str, HostBehaviour, FetchPhase)> = vec![
        (
            "handshake.loc",
            HostBehaviour::StallHandshake,
            FetchPhase::Tls,
        ),
        (
            "head.loc",
            HostBehaviour::Respond(PolicyResponse::policy(GOOD_BODY).with_pace(Pace::Never)),
            FetchPhase::Response,
        ),
        (
            "body.loc",
            HostBehaviour::Respond(
                PolicyResponse::policy("")
                    .with_body(PolicyBody::Stalled(Bytes::from_static(b"version: STSv1\n"))),
            ),
            FetchPhase::Body,
        ),
    ];
    let mut hosts = Vec::new();
    for (d, behaviour, _) in &cases {
        let name = policy_host(&domain(d));
        hosts.push(pki.host(&name, &[&name], behaviour.clone()).0);
    }
    let server = PolicyServer::start(LO, hosts).await.unwrap();
    let config = config_for(&server, hang_timeouts());
    for (d, _, phase) in &cases {
        let d = domain(d);
        let facts = fetch_policy(&config, &d, &[LO]).await;
        assert_eq!(
            facts.attempts,
            vec![FetchAttempt {
                address: Some(LO),
                outcome: FetchOutcome::Timeout { phase: *phase }
            }],
            "{d}"
        );
        assert_eq!(
            judge(&d, &facts, &pki),
            failed(ResultType::StsPolicyFetchError, "timeout"),
            "{d}"
        );
    }
}

#[tokio::test]
async fn slow_but_timely_head_is_a_response() {
    let pki = Pki::new();
    let (host, _) = pki.host(
        "mta-sts.slow.loc",
        &["mta-sts.slow.loc"],
        HostBehaviour::Respond(
            PolicyResponse::policy(GOOD_BODY).with_pace(Pace::After(Duration::from_millis(50))),
        ),
    );
    let server = PolicyServer::start(LO, vec![host]).await.unwrap();
    let facts = fetch_policy(&config_for(&server, timeouts()), &domain("slow.loc"), &[LO]).await;
    assert_eq!(only_response(&facts).body, GOOD_BODY);
}

#[tokio::test]
async fn overall_timeout_stops_before_the_next_address() {
    let pki = Pki::new();
    let (host, _) = pki.host(
        "mta-sts.stuck.loc",
        &["mta-sts.stuck.loc"],
        HostBehaviour::StallHandshake,
    );
    let server = PolicyServer::start(LO, vec![host]).await.unwrap();
    let timeouts = FetchTimeouts {
        connect: Duration::from_secs(5),
        request: Duration::from_secs(5),
        overall: Duration::from_millis(300),
    };
    let config = config_for(&server, timeouts).with_port(LO2, closed_port(LO2).await);
    let facts = fetch_policy(&config, &domain("stuck.loc"), &[LO, LO2]).await;
    assert_eq!(
        facts.attempts,
        vec![FetchAttempt {
            address: Some(LO),
            outcome: FetchOutcome::Timeout {
                phase: FetchPhase::Tls
            }
        }]
    );
}

#[tokio::test]
async fn unknown_sni_is_a_tls_error() {
    let pki = Pki::new();
    let (host, _) = pki.host(
        "mta-sts.other.loc",
        &["mta-sts.other.loc"],
        HostBehaviour::Respond(PolicyResponse::policy(GOOD_BODY)),
    );
    let server = PolicyServer::start(LO, vec![host]).await.unwrap();
    let d = domain("unknown.loc");
    let facts = fetch_policy(&config_for(&server, timeouts()), &d, &[LO]).await;
    assert_eq!(facts.attempts.len(), 1);
    assert!(
        matches!(facts.attempts[0].outcome, FetchOutcome::TlsError { .. }),
        "{:?}",
        facts.attempts[0].outcome
    );
    assert_eq!(server.request_count(), 0);
    assert_eq!(
        judge(&d, &facts, &pki),
        failed(ResultType::StsPolicyFetchError, "tls-handshake-failed")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_fetches_never_mix_chains() {
    let pki = Pki::new();
    let names = ["a.loc", "b.loc", "c.loc", "d.loc"];
    let mut hosts = Vec::new();
    let mut chains = Vec::new();
    for d in names {
        let host = policy_host(&domain(d));
        let (h, chain) = pki.host(
            &host,
            &[&host],
            HostBehaviour::Respond(
                PolicyResponse::policy(GOOD_BODY).with_pace(Pace::After(Duration::from_millis(20))),
            ),
        );
        hosts.push(h);
        chains.push(chain);
    }
    let server = PolicyServer::start(LO, hosts).await.unwrap();
    let config = config_for(&server, timeouts());
    let fetches = (0..32).map(|i| {
        let config = &config;
        let d = domain(names[i % names.len()]);
        async move { (i, fetch_policy(config, &d, &[LO]).await) }
    });
    for (i, facts) in futures::future::join_all(fetches).await {
        let response = only_response(&facts);
        assert_eq!(response.chain, chains[i % names.len()], "fetch {i}");
    }
    assert_eq!(server.request_count(), 32);
    for d in names {
        assert_eq!(server.requests_for(&policy_host(&domain(d))), 8, "{d}");
    }
}

#[tokio::test]
async fn server_stops_when_dropped() {
    let pki = Pki::new();
    let (host, _) = pki.host(
        "mta-sts.gone.loc",
        &["mta-sts.gone.loc"],
        HostBehaviour::Respond(PolicyResponse::policy(GOOD_BODY)),
    );
    let server = PolicyServer::start(LO, vec![host]).await.unwrap();
    let config = config_for(&server, timeouts());
    server.shutdown();
    // Let the accept loop see the stop and close the listener.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let facts = fetch_policy(&config, &domain("gone.loc"), &[LO]).await;
    assert!(
        matches!(facts.attempts[0].outcome, FetchOutcome::ConnectError { .. }),
        "{:?}",
        facts.attempts[0].outcome
    );
}

#[tokio::test]
async fn ipv6_loopback_address_is_fetched() {
    let pki = Pki::new();
    let lo6 = IpAddr::V6(std::net::Ipv6Addr::LOCALHOST);
    let (host, chain) = pki.host(
        "mta-sts.six.loc",
        &["mta-sts.six.loc"],
        HostBehaviour::Respond(PolicyResponse::policy(GOOD_BODY)),
    );
    let server = match PolicyServer::start(lo6, vec![host]).await {
        Ok(server) => server,
        Err(e) => {
            eprintln!("skipped: this machine has no IPv6 loopback ({e})");
            return;
        }
    };
    let facts = fetch_policy(&config_for(&server, timeouts()), &domain("six.loc"), &[lo6]).await;
    assert_eq!(facts.attempts.len(), 1);
    assert_eq!(facts.attempts[0].address, Some(lo6));
    let FetchOutcome::Response(response) = &facts.attempts[0].outcome else {
        panic!("{:?}", facts.attempts[0].outcome);
    };
    assert_eq!((response.status, &response.chain), (200, &chain));
}
