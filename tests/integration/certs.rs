//! Certificate judgement and DANE matching, on certificates the lab PKI makes per run.
//!
//! Every test uses fixed times (the "now" of the judgement and every validity window), so
//! only the random keys differ between runs, and every test asserts its exact outcome and
//! RFC 8460 result type.

use mxprobe_core::dane::{
    self, DaneOutcome, NoDaneReason, NoMatchReason, RecordStatus, Tlsa, TlsaAnswer, TlsaLookup,
    Unusable,
};
use mxprobe_core::dns::DnssecStatus;
use mxprobe_core::domain::DomainName;
use mxprobe_core::tls::{
    Anchors, CertProblem, ChainPosition, describe, judge_for_host, judge_for_names, judge_pkix,
};
use mxprobe_core::tlsrpt::ResultType;
use mxprobe_testpki::{CertAuthority, Issued, KeyKind, LeafSpec, Validity, self_signed_leaf};
use proptest::prelude::*;
use rustls_pki_types::CertificateDer;
use time::OffsetDateTime;
use time::macros::datetime;

const NOW: OffsetDateTime = datetime!(2025-06-01 12:00 UTC);
const ROOT: &str = "O=mxprobe lab, CN=Lab Root";
const INTERMEDIATE: &str = "O=mxprobe lab, CN=Lab Intermediate";

fn ca_window() -> Validity {
    Validity::new(
        datetime!(2020-01-01 0:00 UTC),
        datetime!(2035-01-01 0:00 UTC),
    )
}
fn valid() -> Validity {
    Validity::new(
        datetime!(2025-01-01 0:00 UTC),
        datetime!(2026-01-01 0:00 UTC),
    )
}
fn expired() -> Validity {
    Validity::new(
        datetime!(2024-01-01 0:00 UTC),
        datetime!(2025-01-01 0:00 UTC),
    )
}
fn not_yet() -> Validity {
    Validity::new(
        datetime!(2025-09-01 0:00 UTC),
        datetime!(2026-09-01 0:00 UTC),
    )
}

fn name(s: &str) -> DomainName {
    DomainName::parse(s).unwrap()
}

/// A root, an intermediate under it, and the root as the only anchor.
struct Lab {
    root: CertAuthority,
    int: CertAuthority,
    anchors: Anchors,
}

fn lab() -> Lab {
    let root = CertAuthority::root("Lab Root", ca_window(), KeyKind::EcdsaP256).unwrap();
    let int = root
        .intermediate("Lab Intermediate", ca_window(), KeyKind::EcdsaP256)
        .unwrap();
    let anchors = Anchors::from_pem(root.cert().pem().as_bytes()).unwrap();
    Lab { root, int, anchors }
}

impl Lab {
    fn leaf(&self, names: &[&str], validity: Validity) -> Issued {
        self.int.leaf(&LeafSpec::new(names, validity)).unwrap()
    }
}

fn leaf_subject(n: &str) -> String {
    format!("O=mxprobe lab, CN={n}")
}

// ---------------------------------------------------------------------------------------
// PKIX + name (MTA-STS).

#[test]
fn valid_chain_has_no_problem() {
    let lab = lab();
    let leaf = lab.leaf(&["mx.example.com"], valid());
    let v = judge_for_host(
        &lab.int.chain_for(&leaf),
        &name("mx.example.com"),
        NOW,
        &lab.anchors,
    );
    assert_eq!(v.problems, vec![]);
    assert!(v.is_valid() && v.pkix_valid() && v.name_valid());
    assert_eq!(v.result_types(), vec![]);
}

#[test]
fn expired_leaf() {
    let lab = lab();
    let leaf = lab.leaf(&["mx.example.com"], expired());
    let v = judge_for_host(
        &lab.int.chain_for(&leaf),
        &name("mx.example.com"),
        NOW,
        &lab.anchors,
    );
    assert_eq!(
        v.problems,
        vec![CertProblem::Expired {
            which: ChainPosition::Leaf,
            subject: leaf_subject("mx.example.com"),
            not_after: datetime!(2025-01-01 0:00 UTC),
        }]
    );
    assert_eq!(v.result_types(), vec![ResultType::CertificateExpired]);
    assert_eq!(v.problems[0].reason_code(), "leaf-expired");
}

#[test]
fn expired_intermediate_is_named() {
    let root = CertAuthority::root("Lab Root", ca_window(), KeyKind::EcdsaP256).unwrap();
    let int = root
        .intermediate(
            "Lab Intermediate",
            Validity::new(
                datetime!(2020-01-01 0:00 UTC),
                datetime!(2025-03-01 0:00 UTC),
            ),
            KeyKind::EcdsaP256,
        )
        .unwrap();
    let leaf = int
        .leaf(&LeafSpec::new(&["mx.example.com"], valid()))
        .unwrap();
    let anchors = Anchors::from_pem(root.cert().pem().as_bytes()).unwrap();
    let v = judge_for_host(
        &int.chain_for(&leaf),
        &name("mx.example.com"),
        NOW,
        &anchors,
    );
    assert_eq!(
        v.problems,
        vec![CertProblem::Expired {
            which: ChainPosition::Intermediate { index: 1 },
            subject: INTERMEDIATE.to_owned(),
            not_after: datetime!(2025-03-01 0:00 UTC),
        }]
    );
    assert_eq!(v.problems[0].reason_code(), "intermediate-expired");
    assert_eq!(v.result_types(), vec![ResultType::CertificateExpired]);
}

#[test]
fn not_yet_valid_leaf() {
    let lab = lab();
    let leaf = lab.leaf(&["mx.example.com"], not_yet());
    let v = judge_for_host(
        &lab.int.chain_for(&leaf),
        &name("mx.example.com"),
        NOW,
        &lab.anchors,
    );
    assert_eq!(
        v.problems,
        vec![CertProblem::NotYetValid {
            which: ChainPosition::Leaf,
            subject: leaf_subject("mx.example.com"),
            not_before: datetime!(2025-09-01 0:00 UTC),
        }]
    );
    // Reported as senders report it: OpenSSL's and Go's verifiers (and mox) group "expired
    // or not yet valid" as one time error, certificate-expired; the reason code says which.
    assert_eq!(v.result_types(), vec![ResultType::CertificateExpired]);
    assert_eq!(v.problems[0].reason_code(), "leaf-not-yet-valid");
}

#[test]
fn wrong_name_lists_the_names_carried() {
    let lab = lab();
    let leaf = lab.leaf(&["mx.example.com", "mx2.example.com"], valid());
    let v = judge_for_host(
        &lab.int.chain_for(&leaf),
        &name("mail.example.net"),
        NOW,
        &lab.anchors,
    );
    assert_eq!(
        v.problems,
        vec![CertProblem::HostMismatch {
            expected: vec![name("mail.example.net")],
            presented: vec!["mx.example.com".into(), "mx2.example.com".into()],
        }]
    );
    assert_eq!(v.result_types(), vec![ResultType::CertificateHostMismatch]);
    assert!(v.pkix_valid() && !v.name_valid());
    assert_eq!(
        v.problems[0].to_string(),
        "the certificate is for mx.example.com, mx2.example.com, not mail.example.net"
    );
    // PKIX only ignores the name.
    assert!(judge_pkix(&lab.int.chain_for(&leaf), NOW, &lab.anchors).is_valid());
}

#[test]
fn wildcard_matches_exactly_one_leftmost_label() {
    let lab = lab();
    let leaf = lab.leaf(&["*.example.com"], valid());
    let chain = lab.int.chain_for(&leaf);
    let cases = [
        ("mx.example.com", true),
        ("a.b.example.com", false),
        ("example.com", false),
        ("mx.example.com.evil.net", false),
    ];
    for (host, ok) in cases {
        let v = judge_for_host(&chain, &name(host), NOW, &lab.anchors);
        if ok {
            assert_eq!(v.problems, vec![], "{host}");
        } else {
            assert_eq!(
                v.problems,
                vec![CertProblem::HostMismatch {
                    expected: vec![name(host)],
                    presented: vec!["*.example.com".into()],
                }],
                "{host}"
            );
        }
    }
}

#[test]
fn self_signed_leaf_is_named() {
    let lab = lab();
    let leaf = self_signed_leaf(&LeafSpec::new(&["mx.example.com"], valid())).unwrap();
    let v = judge_for_host(
        &[leaf.der().clone()],
        &name("mx.example.com"),
        NOW,
        &lab.anchors,
    );
    assert_eq!(
        v.problems,
        vec![CertProblem::SelfSignedLeaf {
            subject: leaf_subject("mx.example.com"),
        }]
    );
    assert_eq!(v.result_types(), vec![ResultType::CertificateNotTrusted]);
    assert_eq!(v.problems[0].reason_code(), "self-signed");
}

#[test]
fn unknown_ca_names_the_root() {
    let lab = lab();
    let leaf = lab.leaf(&["mx.example.com"], valid());
    // The full chain, root included, but the root is not a public CA.
    let v = judge_for_host(
        &lab.int.full_chain_for(&leaf),
        &name("mx.example.com"),
        NOW,
        &Anchors::mozilla(),
    );
    assert_eq!(
        v.problems,
        vec![CertProblem::UntrustedRoot {
            subject: ROOT.to_owned(),
            index: 2,
        }]
    );
    assert_eq!(v.result_types(), vec![ResultType::CertificateNotTrusted]);
    assert_eq!(v.problems[0].reason_code(), "untrusted-root");
}

#[test]
fn missing_intermediate_says_send_the_full_chain() {
    let lab = lab();
    let leaf = lab.leaf(&["mx.example.com"], valid());
    let v = judge_for_host(
        &[leaf.der().clone()],
        &name("mx.example.com"),
        NOW,
        &lab.anchors,
    );
    assert_eq!(
        v.problems,
        vec![CertProblem::IssuerNotFound {
            issuer: INTERMEDIATE.to_owned(),
            index: 0,
        }]
    );
    assert_eq!(v.result_types(), vec![ResultType::CertificateNotTrusted]);
    let message = v.problems[0].to_string();
    assert!(message.contains("send the full chain"), "{message}");
    assert!(message.contains(INTERMEDIATE), "{message}");
}

#[test]
fn expired_and_wrong_name_gives_both() {
    let lab = lab();
    let leaf = lab.leaf(&["mx.example.com"], expired());
    let v = judge_for_host(
        &lab.int.chain_for(&leaf),
        &name("mail.example.net"),
        NOW,
        &lab.anchors,
    );
    assert_eq!(
        v.problems,
        vec![
            CertProblem::Expired {
                which: ChainPosition::Leaf,
                subject: leaf_subject("mx.example.com"),
                not_after: datetime!(2025-01-01 0:00 UTC),
            },
            CertProblem::HostMismatch {
                expected: vec![name("mail.example.net")],
                presented: vec!["mx.example.com".into()],
            },
        ]
    );
    assert_eq!(
        v.result_types(),
        vec![
            ResultType::CertificateExpired,
            ResultType::CertificateHostMismatch
        ]
    );
}

#[test]
fn expired_and_untrusted_are_separated() {
    let leaf = self_signed_leaf(&LeafSpec::new(&["mx.example.com"], expired())).unwrap();
    let v = judge_for_host(
        &[leaf.der().clone()],
        &name("mx.example.com"),
        NOW,
        &Anchors::mozilla(),
    );
    assert_eq!(
        v.problems,
        vec![
            CertProblem::Expired {
                which: ChainPosition::Leaf,
                subject: leaf_subject("mx.example.com"),
                not_after: datetime!(2025-01-01 0:00 UTC),
            },
            CertProblem::SelfSignedLeaf {
                subject: leaf_subject("mx.example.com"),
            },
        ]
    );
    assert_eq!(
        v.result_types(),
        vec![
            ResultType::CertificateExpired,
            ResultType::CertificateNotTrusted
        ]
    );
}

#[test]
fn any_of_several_reference_names() {
    let lab = lab();
    let leaf = lab.leaf(&["example.net"], valid());
    let v = judge_for_names(
        &lab.int.chain_for(&leaf),
        &[name("mx.example.net"), name("example.net")],
        NOW,
        &lab.anchors,
    );
    assert_eq!(v.problems, vec![]);
}

#[test]
fn describe_a_lab_leaf() {
    let lab = lab();
    let mut spec = LeafSpec::new(&["mx.example.com", "*.example.com"], valid());
    spec.ip_addresses = vec!["192.0.2.25".parse().unwrap()];
    let leaf = lab.int.leaf(&spec).unwrap();
    let s = describe(leaf.der()).unwrap();
    assert_eq!(s.subject, leaf_subject("mx.example.com"));
    assert_eq!(s.issuer, INTERMEDIATE);
    assert_eq!(s.dns_names, vec!["mx.example.com", "*.example.com"]);
    assert_eq!(
        s.ip_addresses,
        vec!["192.0.2.25".parse::<std::net::IpAddr>().unwrap()]
    );
    assert_eq!(s.not_before, datetime!(2025-01-01 0:00 UTC));
    assert_eq!(s.not_after, datetime!(2026-01-01 0:00 UTC));
    assert_eq!(s.key, "ECDSA P-256");
    assert_eq!(s.sha256.len(), 64);
    assert!(!s.is_ca && !s.self_signed);
    let json = serde_json::to_string(&s).unwrap();
    assert!(
        json.contains(r#""not_after":"2026-01-01T00:00:00Z""#),
        "{json}"
    );
    assert_eq!(
        serde_json::from_str::<mxprobe_core::tls::CertSummary>(&json).unwrap(),
        s
    );
}

// ---------------------------------------------------------------------------------------
// DANE.

fn secure(records: &[String]) -> TlsaAnswer {
    TlsaAnswer {
        lookup: TlsaLookup::Records {
            records: records.iter().map(|r| r.parse().unwrap()).collect(),
        },
        dnssec: DnssecStatus::Secure,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

fn spki(der: &[u8]) -> Vec<u8> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).unwrap();
    cert.public_key().raw.to_vec()
}

fn sha256(b: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, b)
        .as_ref()
        .to_vec()
}

fn sha512(b: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA512, b)
        .as_ref()
        .to_vec()
}

fn failures(outcome: &DaneOutcome) -> Vec<(ResultType, String)> {
    outcome
        .failures()
        .into_iter()
        .map(|f| (f.result_type, f.reason_code))
        .collect()
}

#[test]
fn dane_ee_ignores_expiry_name_and_issuer() {
    // Expired, self-signed, and for another name: DANE-EE does not care (RFC 7671 §5.1).
    let leaf = self_signed_leaf(&LeafSpec::new(&["other.example"], expired())).unwrap();
    let der = leaf.der().as_ref();
    let records = [
        format!("3 1 1 {}", hex(&sha256(&spki(der)))),
        format!("3 0 1 {}", hex(&sha256(der))),
        format!("3 0 0 {}", hex(der)),
        format!("3 1 2 {}", hex(&sha512(&spki(der)))),
        format!("3 1 0 {}", hex(&spki(der))),
    ];
    for record in records {
        let v = dane::judge(
            &secure(std::slice::from_ref(&record)),
            &[leaf.der().clone()],
            &[name("mx.example.com")],
            NOW,
        );
        assert_eq!(
            v.outcome,
            DaneOutcome::Authenticated { record: 0 },
            "{record}"
        );
        assert_eq!(
            v.records[0].status,
            RecordStatus::Matched { ta_index: None },
            "{record}"
        );
        assert_eq!(failures(&v.outcome), vec![], "{record}");
        assert!(v.outcome.requires_tls() && !v.outcome.blocks_delivery());
    }
}

#[test]
fn dane_ee_mismatch() {
    let leaf = self_signed_leaf(&LeafSpec::new(&["mx.example.com"], valid())).unwrap();
    let other = self_signed_leaf(&LeafSpec::new(&["mx.example.com"], valid())).unwrap();
    let record = format!("3 1 1 {}", hex(&sha256(&spki(other.der()))));
    let v = dane::judge(
        &secure(&[record]),
        &[leaf.der().clone()],
        &[name("mx.example.com")],
        NOW,
    );
    assert_eq!(v.outcome, DaneOutcome::NoMatch);
    assert_eq!(
        v.records[0].status,
        RecordStatus::NoMatch {
            why: NoMatchReason::LeafDiffers
        }
    );
    assert_eq!(
        failures(&v.outcome),
        vec![(ResultType::ValidationFailure, "dane-no-match".to_owned())]
    );
    assert!(v.outcome.blocks_delivery());
}

#[test]
fn dane_ta_on_the_intermediate() {
    let lab = lab();
    let leaf = lab.leaf(&["mx.example.com"], valid());
    let record = format!("2 1 1 {}", hex(&sha256(&spki(lab.int.cert().der()))));
    let v = dane::judge(
        &secure(&[record]),
        &lab.int.chain_for(&leaf),
        &[name("mx.example.com")],
        NOW,
    );
    assert_eq!(v.outcome, DaneOutcome::Authenticated { record: 0 });
    assert_eq!(
        v.records[0].status,
        RecordStatus::Matched { ta_index: Some(1) }
    );
    assert_eq!(v.outcome.result_types(), vec![]);
}

#[test]
fn dane_ta_on_the_root_sent_in_the_chain() {
    let lab = lab();
    let leaf = lab.leaf(&["mx.example.com"], valid());
    let record = format!("2 0 1 {}", hex(&sha256(lab.root.cert().der())));
    let v = dane::judge(
        &secure(&[record]),
        &lab.int.full_chain_for(&leaf),
        &[name("mx.example.com")],
        NOW,
    );
    assert_eq!(v.outcome, DaneOutcome::Authenticated { record: 0 });
    assert_eq!(
        v.records[0].status,
        RecordStatus::Matched { ta_index: Some(2) }
    );
}

#[test]
fn dane_ta_root_not_sent_does_not_match_by_digest() {
    let lab = lab();
    let leaf = lab.leaf(&["mx.example.com"], valid());
    let record = format!("2 0 1 {}", hex(&sha256(lab.root.cert().der())));
    let v = dane::judge(
        &secure(&[record]),
        &lab.int.chain_for(&leaf),
        &[name("mx.example.com")],
        NOW,
    );
    assert_eq!(v.outcome, DaneOutcome::NoMatch);
    assert_eq!(
        v.records[0].status,
        RecordStatus::NoMatch {
            why: NoMatchReason::NoChainCertMatches
        }
    );
}

#[test]
fn dane_ta_full_anchor_in_the_record() {
    let lab = lab();
    let leaf = lab.leaf(&["mx.example.com"], valid());
    for record in [
        format!("2 0 0 {}", hex(lab.root.cert().der())),
        format!("2 1 0 {}", hex(&spki(lab.root.cert().der()))),
    ] {
        let v = dane::judge(
            &secure(std::slice::from_ref(&record)),
            &lab.int.chain_for(&leaf),
            &[name("mx.example.com")],
            NOW,
        );
        assert_eq!(
            v.outcome,
            DaneOutcome::Authenticated { record: 0 },
            "{record}"
        );
        assert_eq!(
            v.records[0].status,
            RecordStatus::Matched { ta_index: None },
            "{record}"
        );
    }
}

#[test]
fn dane_ta_wrong_name_is_a_host_mismatch() {
    let lab = lab();
    let leaf = lab.leaf(&["mx.example.com"], valid());
    let record = format!("2 1 1 {}", hex(&sha256(&spki(lab.int.cert().der()))));
    let v = dane::judge(
        &secure(&[record]),
        &lab.int.chain_for(&leaf),
        &[name("mail.example.net"), name("example.net")],
        NOW,
    );
    let problems = vec![CertProblem::HostMismatch {
        expected: vec![name("mail.example.net"), name("example.net")],
        presented: vec!["mx.example.com".into()],
    }];
    assert_eq!(
        v.outcome,
        DaneOutcome::TaChainInvalid {
            record: 0,
            problems: problems.clone()
        }
    );
    assert_eq!(
        v.records[0].status,
        RecordStatus::TaChainInvalid {
            ta_index: Some(1),
            problems
        }
    );
    assert_eq!(
        failures(&v.outcome),
        vec![(
            ResultType::CertificateHostMismatch,
            "dane-ta-name-mismatch".to_owned()
        )]
    );
}

#[test]
fn dane_ta_expired_leaf() {
    let lab = lab();
    let leaf = lab.leaf(&["mx.example.com"], expired());
    let record = format!("2 1 1 {}", hex(&sha256(&spki(lab.int.cert().der()))));
    let v = dane::judge(
        &secure(&[record]),
        &lab.int.chain_for(&leaf),
        &[name("mx.example.com")],
        NOW,
    );
    assert_eq!(
        v.outcome,
        DaneOutcome::TaChainInvalid {
            record: 0,
            problems: vec![CertProblem::Expired {
                which: ChainPosition::Leaf,
                subject: leaf_subject("mx.example.com"),
                not_after: datetime!(2025-01-01 0:00 UTC),
            }]
        }
    );
    assert_eq!(
        failures(&v.outcome),
        vec![(
            ResultType::CertificateExpired,
            "dane-ta-leaf-expired".to_owned()
        )]
    );
}

#[test]
fn dane_ta_leaf_not_signed_by_the_matched_anchor() {
    let lab = lab();
    let other = CertAuthority::root("Other CA", ca_window(), KeyKind::EcdsaP256).unwrap();
    let leaf = lab.leaf(&["mx.example.com"], valid());
    // The server sends an unrelated CA certificate, and the record pins that CA.
    let chain = vec![leaf.der().clone(), other.cert().der().clone()];
    let record = format!("2 0 1 {}", hex(&sha256(other.cert().der())));
    let v = dane::judge(&secure(&[record]), &chain, &[name("mx.example.com")], NOW);
    let problems = vec![CertProblem::IssuerNotFound {
        issuer: INTERMEDIATE.to_owned(),
        index: 0,
    }];
    assert_eq!(
        v.outcome,
        DaneOutcome::TaChainInvalid {
            record: 0,
            problems: problems.clone()
        }
    );
    assert_eq!(
        v.records[0].status,
        RecordStatus::TaChainInvalid {
            ta_index: Some(1),
            problems
        }
    );
    assert_eq!(
        failures(&v.outcome),
        vec![(
            ResultType::ValidationFailure,
            "dane-ta-unknown-issuer".to_owned()
        )]
    );
}

#[test]
fn pkix_usages_only_is_tlsa_invalid() {
    let leaf = self_signed_leaf(&LeafSpec::new(&["mx.example.com"], valid())).unwrap();
    let digest = hex(&sha256(&spki(leaf.der())));
    let v = dane::judge(
        &secure(&[format!("0 1 1 {digest}"), format!("1 1 1 {digest}")]),
        &[leaf.der().clone()],
        &[name("mx.example.com")],
        NOW,
    );
    assert_eq!(v.outcome, DaneOutcome::UnusableOnly);
    assert_eq!(
        v.records
            .iter()
            .map(|r| r.status.clone())
            .collect::<Vec<_>>(),
        vec![
            RecordStatus::Unusable {
                why: Unusable::PkixUsage { usage: 0 }
            },
            RecordStatus::Unusable {
                why: Unusable::PkixUsage { usage: 1 }
            },
        ]
    );
    assert_eq!(
        failures(&v.outcome),
        vec![(ResultType::TlsaInvalid, "tlsa-no-usable-records".to_owned())]
    );
    // RFC 7672 §2.2: TLS stays mandatory, delivery is not blocked.
    assert!(v.outcome.requires_tls() && !v.outcome.blocks_delivery());
}

#[test]
fn wrong_digest_length_is_unusable() {
    let leaf = self_signed_leaf(&LeafSpec::new(&["mx.example.com"], valid())).unwrap();
    let short = &sha256(&spki(leaf.der()))[..31];
    let v = dane::judge(
        &secure(&[format!("3 1 1 {}", hex(short))]),
        &[leaf.der().clone()],
        &[name("mx.example.com")],
        NOW,
    );
    assert_eq!(v.outcome, DaneOutcome::UnusableOnly);
    assert_eq!(
        v.records[0].status,
        RecordStatus::Unusable {
            why: Unusable::WrongDigestLength {
                matching_type: 1,
                expected: 32,
                actual: 31
            }
        }
    );
    assert_eq!(v.outcome.result_types(), vec![ResultType::TlsaInvalid]);
}

#[test]
fn unusable_records_beside_a_matching_one() {
    let leaf = self_signed_leaf(&LeafSpec::new(&["mx.example.com"], valid())).unwrap();
    let digest = sha256(&spki(leaf.der()));
    let v = dane::judge(
        &secure(&[
            format!("1 1 1 {}", hex(&digest)),
            format!("3 1 1 {}", hex(&digest[..20])),
            format!("3 1 1 {}", hex(&digest)),
        ]),
        &[leaf.der().clone()],
        &[name("mx.example.com")],
        NOW,
    );
    assert_eq!(v.outcome, DaneOutcome::Authenticated { record: 2 });
    assert!(matches!(v.records[0].status, RecordStatus::Unusable { .. }));
    assert!(matches!(v.records[1].status, RecordStatus::Unusable { .. }));
    assert_eq!(
        v.records[2].status,
        RecordStatus::Matched { ta_index: None }
    );
    assert_eq!(failures(&v.outcome), vec![]);
}

#[test]
fn digest_agility_ignores_the_weaker_digest() {
    // RFC 7671 §9: with SHA2-512 present for 3 1, the SHA2-256 record is not used.
    let leaf = self_signed_leaf(&LeafSpec::new(&["mx.example.com"], valid())).unwrap();
    let v = dane::judge(
        &secure(&[
            format!("3 1 1 {}", hex(&sha256(&spki(leaf.der())))),
            format!("3 1 2 {}", "AB".repeat(64)),
        ]),
        &[leaf.der().clone()],
        &[name("mx.example.com")],
        NOW,
    );
    assert_eq!(v.outcome, DaneOutcome::NoMatch);
    assert_eq!(
        v.records[0].status,
        RecordStatus::IgnoredWeakerDigest { preferred: 2 }
    );
}

#[test]
fn bogus_or_indeterminate_is_dnssec_invalid() {
    let leaf = self_signed_leaf(&LeafSpec::new(&["mx.example.com"], valid())).unwrap();
    for (status, code) in [
        (DnssecStatus::Bogus, "dnssec-bogus"),
        (DnssecStatus::Indeterminate, "dnssec-indeterminate"),
    ] {
        let mut answer = secure(&[format!("3 1 1 {}", hex(&sha256(&spki(leaf.der()))))]);
        answer.dnssec = status;
        let v = dane::judge(
            &answer,
            &[leaf.der().clone()],
            &[name("mx.example.com")],
            NOW,
        );
        assert_eq!(
            v.outcome,
            DaneOutcome::DnssecInvalid {
                status,
                detail: None
            }
        );
        assert_eq!(
            failures(&v.outcome),
            vec![(ResultType::DnssecInvalid, code.to_owned())]
        );
        assert!(v.outcome.blocks_delivery() && !v.outcome.requires_tls());
    }
    let failed = TlsaAnswer {
        lookup: TlsaLookup::Failed {
            detail: "SERVFAIL".into(),
        },
        dnssec: DnssecStatus::Bogus,
    };
    let v = dane::judge(
        &failed,
        &[leaf.der().clone()],
        &[name("mx.example.com")],
        NOW,
    );
    assert_eq!(
        failures(&v.outcome),
        vec![(ResultType::DnssecInvalid, "tlsa-lookup-failed".to_owned())]
    );
}

#[test]
fn insecure_is_no_dane() {
    let leaf = self_signed_leaf(&LeafSpec::new(&["mx.example.com"], valid())).unwrap();
    let mut answer = secure(&[format!("3 1 1 {}", "00".repeat(32))]);
    answer.dnssec = DnssecStatus::Insecure;
    let v = dane::judge(
        &answer,
        &[leaf.der().clone()],
        &[name("mx.example.com")],
        NOW,
    );
    assert_eq!(
        v.outcome,
        DaneOutcome::NoDane {
            reason: NoDaneReason::Insecure
        }
    );
    assert_eq!(v.records, vec![]);
    assert_eq!(failures(&v.outcome), vec![]);
    assert!(!v.outcome.requires_tls());
}

#[test]
fn tlsa_policy_string_form() {
    let t: Tlsa = "3 1 1 7ff8b87bb269715fef08a0f4f0033d7a2f3b680470a30e878ceb2d3e244af3ea"
        .parse()
        .unwrap();
    assert_eq!(
        t.to_string(),
        "3 1 1 7FF8B87BB269715FEF08A0F4F0033D7A2F3B680470A30E878CEB2D3E244AF3EA"
    );
    assert_eq!(t.usability(), Ok(()));
}

// ---------------------------------------------------------------------------------------
// Properties.

fn tlsa_strategy() -> impl Strategy<Value = Tlsa> {
    (
        any::<u8>(),
        any::<u8>(),
        any::<u8>(),
        proptest::collection::vec(any::<u8>(), 1..80),
    )
        .prop_map(|(usage, selector, matching_type, data)| Tlsa {
            usage,
            selector,
            matching_type,
            data,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn tlsa_display_parse_round_trips(t in tlsa_strategy()) {
        let shown = t.to_string();
        prop_assert_eq!(shown.parse::<Tlsa>().unwrap(), t.clone());
        // Upper-case hex, no spaces inside the data (RFC 8460 policy-string form).
        let data = shown.splitn(4, ' ').nth(3).unwrap();
        prop_assert!(data.bytes().all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b)));
    }

    #[test]
    fn tlsa_parse_never_panics(s in ".{0,120}") {
        let _ = s.parse::<Tlsa>();
    }

    #[test]
    fn tlsa_parse_never_panics_on_its_alphabet(s in "[0-9a-fA-F \t-]{0,120}") {
        if let Ok(t) = s.parse::<Tlsa>() {
            let _ = t.usability();
        }
    }

    #[test]
    fn describe_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = describe(&bytes);
        let _ = judge_pkix(&[CertificateDer::from(bytes)], NOW, &Anchors::empty());
    }
}

#[test]
fn describe_and_judge_survive_corrupted_certificates() {
    // Deterministic corruption of a real certificate: every byte position, flipped.
    let leaf = self_signed_leaf(&LeafSpec::new(&["mx.example.com"], valid())).unwrap();
    let der = leaf.der().to_vec();
    let anchors = Anchors::empty();
    let tlsa: Tlsa = format!("3 1 1 {}", "00".repeat(32)).parse().unwrap();
    for i in 0..der.len() {
        let mut bad = der.clone();
        bad[i] ^= 0xA5;
        let _ = describe(&bad);
        let chain = [CertificateDer::from(bad)];
        let _ = judge_for_host(&chain, &name("mx.example.com"), NOW, &anchors);
        let _ = dane::judge(
            &secure(&[tlsa.to_string()]),
            &chain,
            &[name("mx.example.com")],
            NOW,
        );
        // And every truncation.
        let _ = describe(&der[..i]);
        let _ = judge_pkix(&[CertificateDer::from(der[..i].to_vec())], NOW, &anchors);
    }
}
