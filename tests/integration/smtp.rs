//! The STARTTLS probe (`mxprobe_probe::starttls`) against the lab's SMTP servers on loopback:
//! one test per server behaviour, each asserting the exact outcome and the facts recorded.
//!
//! Timeouts are short (a few hundred milliseconds) so the misbehaving servers end quickly;
//! no test asserts a duration, only the classification.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use mxprobe_core::domain::DomainName;
use mxprobe_core::smtp::{EhloName, Phase, Reply, SmtpFacts, SmtpOutcome};
use mxprobe_lab::smtp::{EhloAnswer, Greeting, RunningSmtp, SmtpServer, SmtpStats, StartTls};
use mxprobe_probe::capture;
use mxprobe_probe::starttls::{SmtpConfig, probe};
use mxprobe_testpki::{CertAuthority, Issued, KeyKind, LeafSpec, Validity, self_signed_leaf};
use rustls_pki_types::CertificateDer;
use time::macros::datetime;

const MX: &str = "mx.lab.example";
const V4: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const V6: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);

fn mx() -> DomainName {
    DomainName::parse(MX).unwrap()
}

fn config() -> SmtpConfig {
    SmtpConfig {
        ehlo_name: EhloName::parse("probe.mxprobe.example").unwrap(),
        connect_timeout: Duration::from_millis(500),
        phase_timeout: Duration::from_millis(300),
        deadline: Duration::from_secs(3),
        tls: capture::client_config(),
    }
}

/// A root, an intermediate, and a leaf for [`MX`]: the chain the server sends and its key.
fn chain() -> (Vec<CertificateDer<'static>>, Issued) {
    let window = Validity::new(
        datetime!(2020-01-01 0:00 UTC),
        datetime!(2040-01-01 0:00 UTC),
    );
    let root = CertAuthority::root("mxprobe lab root", window, KeyKind::EcdsaP256).unwrap();
    let int = root
        .intermediate("mxprobe lab intermediate", window, KeyKind::EcdsaP384)
        .unwrap();
    let leaf = int.leaf(&LeafSpec::new(&[MX], window)).unwrap();
    (int.chain_for(&leaf), leaf)
}

fn tls_server() -> (SmtpServer, Vec<CertificateDer<'static>>) {
    let (chain, leaf) = chain();
    let spec = SmtpServer::with_tls(MX, chain.clone(), leaf.private_key()).unwrap();
    (spec, chain)
}

fn starttls(behaviour: StartTls) -> SmtpServer {
    SmtpServer {
        starttls: behaviour,
        ..SmtpServer::new(MX)
    }
}

async fn run(spec: SmtpServer, ip: IpAddr) -> (SmtpFacts, RunningSmtp) {
    let server = spec.start(ip).await.unwrap();
    let facts = probe(&config(), &mx(), server.addr()).await;
    (facts, server)
}

fn verbs(server: &RunningSmtp) -> Vec<String> {
    server.commands()
}

fn commands(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

fn assert_good_session(facts: &SmtpFacts, chain: &[CertificateDer<'static>], ip: IpAddr) {
    assert_eq!(facts.outcome, SmtpOutcome::Completed);
    assert_eq!(facts.source_ip, Some(ip), "sending-mta-ip");
    assert_eq!(facts.address.ip(), ip);
    let banner = facts.banner.as_ref().unwrap();
    assert_eq!(banner.code, 220);
    assert_eq!(banner.announced_name(), Some(MX));
    assert_eq!(
        facts.ehlo_keywords,
        commands(&["PIPELINING", "SIZE", "8BITMIME", "STARTTLS"])
    );
    assert_eq!(facts.starttls.as_ref().map(|r| r.code), Some(220));
    let tls = facts.tls.as_ref().unwrap();
    assert_eq!(
        tls.chain, chain,
        "the recorded chain is the one sent, leaf first"
    );
    assert_eq!(tls.sni.as_deref(), Some(MX));
    assert_eq!(
        facts.ehlo_keywords_after_tls,
        commands(&["PIPELINING", "SIZE", "8BITMIME"])
    );
    assert_eq!(facts.quit.as_ref().map(|r| r.code), Some(221));
    assert_eq!(facts.receiving_mx_helo(), Some(MX));
    assert!(facts.helo.is_none());
    let phases: Vec<Phase> = facts.timings.iter().map(|t| t.phase).collect();
    assert_eq!(
        phases,
        [
            Phase::Connect,
            Phase::Greeting,
            Phase::Ehlo,
            Phase::Starttls,
            Phase::TlsHandshake,
            Phase::EhloAfterTls,
            Phase::Quit
        ]
    );
}

#[tokio::test]
async fn good_starttls_records_chain_version_cipher_and_names() {
    let (spec, chain) = tls_server();
    let (facts, server) = run(spec, V4).await;
    assert_good_session(&facts, &chain, V4);
    let tls = facts.tls.as_ref().unwrap();
    assert_eq!(tls.version, "TLSv1.3");
    assert!(
        [
            "TLS_AES_128_GCM_SHA256",
            "TLS_AES_256_GCM_SHA384",
            "TLS_CHACHA20_POLY1305_SHA256"
        ]
        .contains(&tls.cipher_suite.as_str()),
        "{}",
        tls.cipher_suite
    );
    assert_eq!(
        verbs(&server),
        commands(&["EHLO", "STARTTLS", "EHLO", "QUIT"]),
        "never MAIL or RCPT"
    );
    assert_eq!(server.stats().connections, 1);
}

#[tokio::test]
async fn good_starttls_over_ipv6_loopback() {
    let (spec, chain) = tls_server();
    let (facts, _server) = run(spec, V6).await;
    assert_good_session(&facts, &chain, V6);
}

#[tokio::test]
async fn tls12_only_server_is_recorded_as_tls12() {
    let (chain, leaf) = chain();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS12])
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain.clone(), leaf.private_key())
        .unwrap();
    let (facts, _server) = run(starttls(StartTls::Accept(Arc::new(config))), V4).await;
    assert_good_session(&facts, &chain, V4);
    let tls = facts.tls.unwrap();
    assert_eq!(tls.version, "TLSv1.2");
    assert!(
        tls.cipher_suite.starts_with("TLS_ECDHE_ECDSA_WITH_"),
        "{}",
        tls.cipher_suite
    );
}

#[tokio::test]
async fn expired_self_signed_certificate_is_still_recorded() {
    // The verifier judges nothing: the evaluators do, afterwards.
    let old = Validity::new(
        datetime!(2001-01-01 0:00 UTC),
        datetime!(2002-01-01 0:00 UTC),
    );
    let leaf = self_signed_leaf(&LeafSpec::new(&["other.example"], old)).unwrap();
    let chain = vec![leaf.der().clone()];
    let spec = SmtpServer::with_tls(MX, chain.clone(), leaf.private_key()).unwrap();
    let (facts, _server) = run(spec, V4).await;
    assert_eq!(facts.outcome, SmtpOutcome::Completed);
    assert_eq!(facts.tls.unwrap().chain, chain);
}

#[tokio::test]
async fn multi_line_banner_is_kept_whole() {
    let (mut spec, _chain) = tls_server();
    spec.greeting = Greeting::Ready(vec![
        "banner.lab.example ESMTP".into(),
        "no UCE".into(),
        "ready".into(),
    ]);
    let (facts, _server) = run(spec, V4).await;
    assert_eq!(facts.outcome, SmtpOutcome::Completed);
    assert_eq!(
        facts.banner,
        Some(Reply::new(
            220,
            &["banner.lab.example ESMTP", "no UCE", "ready"]
        ))
    );
    // The EHLO reply's name wins over the banner's for receiving-mx-helo.
    assert_eq!(facts.receiving_mx_helo(), Some(MX));
}

#[tokio::test]
async fn starttls_not_offered() {
    let (facts, server) = run(SmtpServer::new(MX), V4).await;
    assert_eq!(facts.outcome, SmtpOutcome::StarttlsNotOffered);
    assert!(!facts.ehlo_keywords.contains(&"STARTTLS".to_owned()));
    assert!(facts.starttls.is_none() && facts.tls.is_none());
    assert_eq!(verbs(&server), commands(&["EHLO", "QUIT"]));
}

#[tokio::test]
async fn starttls_refused_with_454_keeps_banner() {
    let spec = starttls(StartTls::Refuse {
        code: 454,
        text: "4.7.0 TLS not available due to temporary reason".into(),
    });
    let (facts, server) = run(spec, V4).await;
    assert_eq!(
        facts.outcome,
        SmtpOutcome::StarttlsRejected {
            code: 454,
            text: "4.7.0 TLS not available due to temporary reason".into()
        }
    );
    assert_eq!(facts.banner.as_ref().map(|r| r.code), Some(220));
    assert!(facts.ehlo_keywords.contains(&"STARTTLS".to_owned()));
    assert!(facts.tls.is_none());
    assert_eq!(verbs(&server), commands(&["EHLO", "STARTTLS", "QUIT"]));
}

#[tokio::test]
async fn ehlo_5xx_falls_back_to_helo() {
    let mut spec = SmtpServer::new(MX);
    spec.ehlo = EhloAnswer::Reject {
        code: 502,
        text: "5.5.2 EHLO not implemented".into(),
    };
    let (facts, server) = run(spec, V4).await;
    assert_eq!(
        facts.outcome,
        SmtpOutcome::EhloRejected {
            code: 502,
            text: "5.5.2 EHLO not implemented".into()
        }
    );
    assert_eq!(facts.helo, Some(Reply::new(250, &[MX])));
    assert_eq!(facts.receiving_mx_helo(), Some(MX));
    assert_eq!(verbs(&server), commands(&["EHLO", "HELO", "QUIT"]));
}

#[tokio::test]
async fn greeting_421_is_inconclusive() {
    let mut spec = SmtpServer::new(MX);
    spec.greeting =
        Greeting::ServiceUnavailable("4.7.0 mx.lab.example too many connections".into());
    let (facts, server) = run(spec, V4).await;
    let expected = SmtpOutcome::ServiceUnavailable421 {
        phase: Phase::Greeting,
        text: "4.7.0 mx.lab.example too many connections".into(),
    };
    assert_eq!(facts.outcome, expected);
    assert!(facts.outcome.is_inconclusive());
    assert!(verbs(&server).is_empty(), "nothing is sent after a 421");
}

#[tokio::test]
async fn ehlo_421_is_inconclusive_and_no_helo() {
    let mut spec = SmtpServer::new(MX);
    spec.ehlo = EhloAnswer::Reject {
        code: 421,
        text: "4.7.0 rate limited".into(),
    };
    let (facts, server) = run(spec, V4).await;
    assert_eq!(
        facts.outcome,
        SmtpOutcome::ServiceUnavailable421 {
            phase: Phase::Ehlo,
            text: "4.7.0 rate limited".into()
        }
    );
    assert_eq!(verbs(&server), commands(&["EHLO"]));
}

#[tokio::test]
async fn silent_banner_ends_by_phase_timeout() {
    let mut spec = SmtpServer::new(MX);
    spec.greeting = Greeting::Silent;
    let (facts, _server) = run(spec, V4).await;
    assert_eq!(
        facts.outcome,
        SmtpOutcome::Timeout {
            phase: Phase::Greeting
        }
    );
    assert!(facts.banner.is_none());
    assert_eq!(facts.source_ip, Some(V4));
}

#[tokio::test]
async fn dripping_banner_ends_by_deadline() {
    let mut spec = SmtpServer::new(MX);
    spec.greeting = Greeting::Drip {
        interval: Duration::from_millis(20),
    };
    let server = spec.start(V4).await.unwrap();
    let config = SmtpConfig {
        deadline: Duration::from_millis(1200),
        ..config()
    };
    let facts = probe(&config, &mx(), server.addr()).await;
    assert_eq!(
        facts.outcome,
        SmtpOutcome::DeadlineExceeded {
            phase: Phase::Greeting
        }
    );
    assert!(facts.banner.is_none());
}

#[tokio::test]
async fn garbage_instead_of_server_hello() {
    let (facts, _server) = run(starttls(StartTls::GarbageAfter220), V4).await;
    match &facts.outcome {
        SmtpOutcome::TlsHandshakeFailed { alert: None, error } => {
            assert!(error.contains("corrupt message"), "{error}");
        }
        other => panic!("expected tls-handshake-failed, got {other:?}"),
    }
    assert_eq!(facts.starttls.as_ref().map(|r| r.code), Some(220));
    assert!(facts.tls.is_none());
}

#[tokio::test]
async fn reset_after_starttls_220() {
    let (facts, _server) = run(starttls(StartTls::ResetAfter220), V4).await;
    assert_eq!(
        facts.outcome,
        SmtpOutcome::ConnectionReset {
            phase: Phase::TlsHandshake
        }
    );
    assert!(facts.outcome.is_inconclusive());
    assert_eq!(facts.starttls.as_ref().map(|r| r.code), Some(220));
}

#[tokio::test]
async fn oversized_ehlo_reply_is_a_protocol_error() {
    let mut spec = SmtpServer::new(MX);
    spec.ehlo = EhloAnswer::Oversized;
    let (facts, _server) = run(spec, V4).await;
    assert_eq!(
        facts.outcome,
        SmtpOutcome::ProtocolError {
            phase: Phase::Ehlo,
            detail: "reply line 1 is longer than 4096 bytes".into()
        }
    );
    assert!(facts.ehlo.is_none());
}

#[tokio::test]
async fn closed_port_is_connection_refused() {
    let listener = tokio::net::TcpListener::bind((V4, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let facts = probe(&config(), &mx(), addr).await;
    assert_eq!(facts.outcome, SmtpOutcome::ConnectionRefused);
    assert!(facts.source_ip.is_none());
}

#[tokio::test]
async fn server_counts_simultaneous_connections() {
    let mut spec = SmtpServer::new(MX);
    spec.greeting = Greeting::Silent;
    let server = spec.start(V4).await.unwrap();
    let cfg = config();
    let name = mx();
    let addr = server.addr();
    let all = futures::future::join_all((0..3).map(|_| probe(&cfg, &name, addr))).await;
    for facts in &all {
        assert_eq!(
            facts.outcome,
            SmtpOutcome::Timeout {
                phase: Phase::Greeting
            }
        );
    }
    let stats = server.stats();
    assert_eq!(stats.connections, 3);
    assert_eq!(stats.max_simultaneous, 3);
}

#[tokio::test]
async fn dropped_server_stops_listening() {
    let server = SmtpServer::new(MX).start(V4).await.unwrap();
    let addr: SocketAddr = server.addr();
    assert_eq!(
        probe(&config(), &mx(), addr).await.outcome,
        SmtpOutcome::StarttlsNotOffered
    );
    assert_eq!(
        server.stats(),
        SmtpStats {
            connections: 1,
            active: server.stats().active,
            max_simultaneous: 1
        }
    );
    drop(server);
    // The abort takes effect when the runtime next polls the task.
    tokio::task::yield_now().await;
    let mut outcome = probe(&config(), &mx(), addr).await.outcome;
    for _ in 0..20 {
        if outcome == SmtpOutcome::ConnectionRefused {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        outcome = probe(&config(), &mx(), addr).await.outcome;
    }
    assert_eq!(outcome, SmtpOutcome::ConnectionRefused);
}

#[tokio::test]
async fn facts_survive_a_json_round_trip() {
    let (spec, _chain) = tls_server();
    let (facts, _server) = run(spec, V4).await;
    let json = serde_json::to_string(&facts).unwrap();
    assert!(json.contains(r#""outcome":{"kind":"completed"}"#), "{json}");
    let back: SmtpFacts = serde_json::from_str(&json).unwrap();
    assert_eq!(back, facts);
}
