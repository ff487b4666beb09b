//! Certificate judgement and DANE matching, on certificates the lab PKI makes per run.
//!
//! Every case uses fixed times (the "now" of the judgement and every validity window), so
//! only the random keys differ between runs. The PKIX and DANE cases are rows of two tables,
//! one test per row, each asserting its exact outcome and RFC 8460 result types.

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
use ring::digest::{SHA256, SHA512, digest};
use rustls_pki_types::CertificateDer;
use time::OffsetDateTime;
use time::macros::datetime;

use crate::support::{ca_window, leaf_window as valid};
use Data::*;

const NOW: OffsetDateTime = datetime!(2025-06-01 12:00 UTC);
const ROOT: &str = "O=mxprobe lab, CN=Lab Root";
const INTERMEDIATE: &str = "O=mxprobe lab, CN=Lab Intermediate";
const MX: &str = "mx.example.com";
const LEAF: &str = "O=mxprobe lab, CN=mx.example.com";

const EXPIRED: Validity = Validity {
    not_before: datetime!(2024-01-01 0:00 UTC),
    not_after: datetime!(2025-01-01 0:00 UTC),
};
const NOT_YET: Validity = Validity {
    not_before: datetime!(2025-09-01 0:00 UTC),
    not_after: datetime!(2026-09-01 0:00 UTC),
};

fn names(list: &[&str]) -> Vec<DomainName> {
    list.iter().map(|s| DomainName::parse(s).unwrap()).collect()
}

/// What the server sends.
#[derive(Clone, Copy)]
enum Chain {
    SelfSigned,
    /// The lab leaf without its intermediate.
    LeafOnly,
    /// The lab leaf and intermediate.
    Lab,
    LabAndRoot,
    /// As `Lab`, with an intermediate that expired on 2025-03-01.
    LabIntExpired,
    /// The lab leaf and an unrelated CA.
    LeafAndOtherCa,
}

/// The lab root and intermediate, one case's chain, an unrelated CA and self-signed leaf.
struct Pki {
    root: CertAuthority,
    int: CertAuthority,
    chain: Vec<CertificateDer<'static>>,
    other_ca: CertAuthority,
    other_leaf: Issued,
}

impl Pki {
    fn new(chain: Chain, sans: &[&str], validity: Validity) -> Self {
        let p256 = KeyKind::EcdsaP256;
        let root = CertAuthority::root("Lab Root", ca_window(), p256).unwrap();
        let int_window = match chain {
            Chain::LabIntExpired => {
                Validity::new(ca_window().not_before, datetime!(2025-03-01 0:00 UTC))
            }
            _ => ca_window(),
        };
        let int = root
            .intermediate("Lab Intermediate", int_window, p256)
            .unwrap();
        let other_ca = CertAuthority::root("Other CA", ca_window(), p256).unwrap();
        let other_leaf = self_signed_leaf(&LeafSpec::new(&[MX], valid())).unwrap();
        let spec = LeafSpec::new(sans, validity);
        let leaf = match chain {
            Chain::SelfSigned => self_signed_leaf(&spec).unwrap(),
            _ => int.leaf(&spec).unwrap(),
        };
        let chain = match chain {
            Chain::SelfSigned | Chain::LeafOnly => vec![leaf.der().clone()],
            Chain::Lab | Chain::LabIntExpired => int.chain_for(&leaf),
            Chain::LabAndRoot => int.full_chain_for(&leaf),
            Chain::LeafAndOtherCa => vec![leaf.der().clone(), other_ca.cert().der().clone()],
        };
        Self {
            root,
            int,
            chain,
            other_ca,
            other_leaf,
        }
    }
}

/// One `#[test]` per row, named after it.
macro_rules! cases {
    ($driver:ident { $($name:ident: $case:expr,)* }) => {
        $(#[test] fn $name() { $driver($case) })*
    };
}

/// The distinct items, in order.
fn distinct<T: PartialEq>(items: impl IntoIterator<Item = T>) -> Vec<T> {
    let mut out = Vec::new();
    for item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// PKIX + name (MTA-STS).

/// A problem, its result type and its reason code.
type Found = (CertProblem, ResultType, &'static str);

struct Pkix {
    chain: Chain,
    sans: &'static [&'static str],
    validity: Validity,
    /// The public roots instead of the lab root.
    mozilla: bool,
    hosts: &'static [&'static str],
    problems: Vec<Found>,
    /// The first problem's text.
    message: Option<String>,
}

/// A valid lab leaf for MX, sent with its intermediate.
fn ok() -> Pkix {
    Pkix {
        chain: Chain::Lab,
        sans: &[MX],
        validity: valid(),
        mozilla: false,
        hosts: &[MX],
        problems: vec![],
        message: None,
    }
}

fn pkix(case: Pkix) {
    let pki = Pki::new(case.chain, case.sans, case.validity);
    let anchors = match case.mozilla {
        true => Anchors::mozilla(),
        false => Anchors::from_pem(pki.root.cert().pem().as_bytes()).unwrap(),
    };
    let hosts = names(case.hosts);
    let v = match &hosts[..] {
        [host] => judge_for_host(&pki.chain, host, NOW, &anchors),
        _ => judge_for_names(&pki.chain, &hosts, NOW, &anchors),
    };
    let found = v
        .problems
        .iter()
        .map(|p| (p.clone(), p.result_type(), p.reason_code()));
    assert_eq!(found.collect::<Vec<_>>(), case.problems);
    let types = distinct(case.problems.iter().map(|f| f.1));
    assert_eq!(v.result_types(), types);
    if let Some(message) = case.message {
        assert_eq!(v.problems[0].to_string(), message);
    }
    // PKIX alone sees every problem but the name.
    let is_name = |p: &CertProblem| matches!(p, CertProblem::HostMismatch { .. });
    let (name, pkix): (Vec<_>, Vec<_>) = v.problems.iter().cloned().partition(is_name);
    let expected = (v.problems.is_empty(), pkix.is_empty(), name.is_empty());
    assert_eq!((v.is_valid(), v.pkix_valid(), v.name_valid()), expected);
    assert_eq!(judge_pkix(&pki.chain, NOW, &anchors).problems, pkix);
}

fn leaf_expired() -> Found {
    let (which, subject) = (ChainPosition::Leaf, LEAF.to_owned());
    let not_after = datetime!(2025-01-01 0:00 UTC);
    let expired = CertProblem::Expired {
        which,
        subject,
        not_after,
    };
    (expired, ResultType::CertificateExpired, "leaf-expired")
}

fn mismatch(expected: &[&str], presented: &[&str]) -> Found {
    let (expected, presented) = (names(expected), presented.iter().map(|&p| p.into()));
    let problem = CertProblem::HostMismatch {
        expected,
        presented: presented.collect(),
    };
    (
        problem,
        ResultType::CertificateHostMismatch,
        "name-mismatch",
    )
}

fn self_signed() -> Found {
    let subject = LEAF.to_owned();
    let problem = CertProblem::SelfSignedLeaf { subject };
    (problem, ResultType::CertificateNotTrusted, "self-signed")
}

fn no_intermediate() -> Found {
    let issuer = INTERMEDIATE.to_owned();
    let problem = CertProblem::IssuerNotFound { issuer, index: 0 };
    (problem, ResultType::CertificateNotTrusted, "unknown-issuer")
}

fn wildcard_mismatch(hosts: &'static [&'static str]) -> Pkix {
    let problems = vec![mismatch(hosts, &["*.example.com"])];
    Pkix {
        sans: &["*.example.com"],
        hosts,
        problems,
        ..ok()
    }
}

cases! { pkix {
    valid_chain_has_no_problem: ok(),
    expired_leaf: Pkix { validity: EXPIRED, problems: vec![leaf_expired()], ..ok() },
    expired_intermediate_is_named: Pkix {
        chain: Chain::LabIntExpired,
        problems: vec![(
            CertProblem::Expired {
                which: ChainPosition::Intermediate { index: 1 },
                subject: INTERMEDIATE.to_owned(),
                not_after: datetime!(2025-03-01 0:00 UTC),
            },
            ResultType::CertificateExpired,
            "intermediate-expired",
        )],
        ..ok()
    },
    // Reported as senders report it: OpenSSL's and Go's verifiers (and mox) group "expired
    // or not yet valid" as one time error, certificate-expired; the reason code says which.
    not_yet_valid_leaf: Pkix {
        validity: NOT_YET,
        problems: vec![(
            CertProblem::NotYetValid {
                which: ChainPosition::Leaf,
                subject: LEAF.to_owned(),
                not_before: datetime!(2025-09-01 0:00 UTC),
            },
            ResultType::CertificateExpired,
            "leaf-not-yet-valid",
        )],
        ..ok()
    },
    wrong_name_lists_the_names_carried: Pkix {
        sans: &[MX, "mx2.example.com"],
        hosts: &["mail.example.net"],
        problems: vec![mismatch(&["mail.example.net"], &[MX, "mx2.example.com"])],
        message: Some(
            "the certificate is for mx.example.com, mx2.example.com, not mail.example.net".into(),
        ),
        ..ok()
    },
    // A wildcard matches exactly one leftmost label.
    wildcard_matches_one_label: Pkix { sans: &["*.example.com"], ..ok() },
    wildcard_not_two_labels: wildcard_mismatch(&["a.b.example.com"]),
    wildcard_not_the_parent: wildcard_mismatch(&["example.com"]),
    wildcard_not_a_longer_name: wildcard_mismatch(&["mx.example.com.evil.net"]),
    self_signed_leaf_is_named: Pkix { chain: Chain::SelfSigned, problems: vec![self_signed()], ..ok() },
    // The full chain, root included, but the root is not a public CA.
    unknown_ca_names_the_root: Pkix {
        chain: Chain::LabAndRoot,
        mozilla: true,
        problems: vec![(
            CertProblem::UntrustedRoot { subject: ROOT.to_owned(), index: 2 },
            ResultType::CertificateNotTrusted,
            "untrusted-root",
        )],
        ..ok()
    },
    missing_intermediate_says_send_the_full_chain: Pkix {
        chain: Chain::LeafOnly,
        problems: vec![no_intermediate()],
        message: Some(format!(
            "the issuer {INTERMEDIATE} of certificate #0 was not sent and is not a trusted \
             root: an unknown CA or a missing intermediate; send the full chain"
        )),
        ..ok()
    },
    expired_and_wrong_name_gives_both: Pkix {
        validity: EXPIRED,
        hosts: &["mail.example.net"],
        problems: vec![leaf_expired(), mismatch(&["mail.example.net"], &[MX])],
        ..ok()
    },
    expired_and_untrusted_are_separated: Pkix {
        chain: Chain::SelfSigned,
        validity: EXPIRED,
        mozilla: true,
        problems: vec![leaf_expired(), self_signed()],
        ..ok()
    },
    any_of_several_reference_names: Pkix {
        sans: &["example.net"],
        hosts: &["mx.example.net", "example.net"],
        ..ok()
    },
}}

#[test]
fn describe_a_lab_leaf() {
    let pki = Pki::new(Chain::Lab, &[MX], valid());
    let mut spec = LeafSpec::new(&[MX, "*.example.com"], valid());
    spec.ip_addresses = vec!["192.0.2.25".parse().unwrap()];
    let leaf = pki.int.leaf(&spec).unwrap();
    let s = describe(leaf.der()).unwrap();
    assert_eq!(s.subject, LEAF);
    assert_eq!(s.issuer, INTERMEDIATE);
    assert_eq!(s.dns_names, vec![MX, "*.example.com"]);
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

/// Where a TLSA record's association data comes from.
#[derive(Clone, Copy)]
enum Data {
    Leaf,
    Int,
    Root,
    OtherCa,
    OtherLeaf,
    /// The leaf's, cut to this many bytes.
    LeafCut(usize),
    /// These bytes as they are.
    Raw(&'static [u8]),
}

/// The record "usage selector matching-type" for `data`: selector 0 takes the certificate,
/// 1 its SubjectPublicKeyInfo; matching type 0 takes it as is, 1 its SHA2-256, 2 its SHA2-512.
fn record(pki: &Pki, (params, data): (&str, Data)) -> Tlsa {
    let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02X}")).collect::<String>();
    let der = match data {
        Leaf | LeafCut(_) => pki.chain[0].to_vec(),
        Int => pki.int.cert().der().to_vec(),
        Root => pki.root.cert().der().to_vec(),
        OtherCa => pki.other_ca.cert().der().to_vec(),
        OtherLeaf => pki.other_leaf.der().to_vec(),
        Raw(bytes) => return format!("{params} {}", hex(bytes)).parse().unwrap(),
    };
    let p = params.as_bytes();
    let selected = match p[2] {
        b'1' => x509_parser::parse_x509_certificate(&der)
            .unwrap()
            .1
            .public_key()
            .raw
            .to_vec(),
        _ => der,
    };
    let mut bytes = match p[4] {
        b'0' => selected,
        b'1' => digest(&SHA256, &selected).as_ref().to_vec(),
        _ => digest(&SHA512, &selected).as_ref().to_vec(),
    };
    if let LeafCut(len) = data {
        bytes.truncate(len);
    }
    format!("{params} {}", hex(&bytes)).parse().unwrap()
}

struct Dane {
    chain: Chain,
    sans: &'static [&'static str],
    validity: Validity,
    records: &'static [(&'static str, Data)],
    dnssec: DnssecStatus,
    /// The lookup fails with this detail instead.
    lookup_error: Option<&'static str>,
    names: &'static [&'static str],
    outcome: DaneOutcome,
    /// Each record's status, in RRset order.
    statuses: Vec<RecordStatus>,
    failures: Vec<(ResultType, &'static str)>,
}

/// A secure RRset of `records` for a valid self-signed leaf for MX, which the first record
/// authenticates as DANE-EE.
fn ee(records: &'static [(&'static str, Data)]) -> Dane {
    Dane {
        chain: Chain::SelfSigned,
        sans: &[MX],
        validity: valid(),
        records,
        dnssec: DnssecStatus::Secure,
        lookup_error: None,
        names: &[MX],
        outcome: DaneOutcome::Authenticated { record: 0 },
        statuses: vec![RecordStatus::Matched { ta_index: None }],
        failures: vec![],
    }
}

/// RFC 7672 §2.2: whether a sender must use TLS, and whether it must not deliver at all.
fn delivery(outcome: &DaneOutcome) -> (bool, bool) {
    match outcome {
        DaneOutcome::NoDane { .. } => (false, false),
        DaneOutcome::Authenticated { .. } | DaneOutcome::UnusableOnly => (true, false),
        DaneOutcome::NoMatch | DaneOutcome::TaChainInvalid { .. } => (true, true),
        DaneOutcome::DnssecInvalid { .. } => (false, true),
        other => panic!("no delivery rule for {other:?}"),
    }
}

fn dane(case: Dane) {
    let pki = Pki::new(case.chain, case.sans, case.validity);
    let records = case.records.iter().map(|&r| record(&pki, r)).collect();
    let lookup = match case.lookup_error {
        Some(detail) => TlsaLookup::Failed {
            detail: detail.into(),
        },
        None => TlsaLookup::Records { records },
    };
    let answer = TlsaAnswer {
        lookup,
        dnssec: case.dnssec,
    };
    let v = dane::judge(&answer, &pki.chain, &names(case.names), NOW);
    assert_eq!(v.outcome, case.outcome);
    let statuses: Vec<_> = v.records.iter().map(|r| r.status.clone()).collect();
    assert_eq!(statuses, case.statuses);
    let failures = v.outcome.failures();
    let failures = failures
        .iter()
        .map(|f| (f.result_type, f.reason_code.as_str()));
    assert_eq!(failures.collect::<Vec<_>>(), case.failures);
    let types = distinct(case.failures.iter().map(|f| f.0));
    assert_eq!(v.outcome.result_types(), types);
    let tls_and_block = (v.outcome.requires_tls(), v.outcome.blocks_delivery());
    assert_eq!(tls_and_block, delivery(&case.outcome));
}

/// Expired, self-signed, and for another name: DANE-EE does not care (RFC 7671 §5.1).
fn stale_ee(records: &'static [(&'static str, Data)]) -> Dane {
    Dane {
        sans: &["other.example"],
        validity: EXPIRED,
        ..ee(records)
    }
}

/// A DANE-TA record for the intermediate, under which the leaf does not validate.
fn ta_invalid(found: Found, failure: (ResultType, &'static str)) -> Dane {
    let problems = vec![found.0];
    let outcome = DaneOutcome::TaChainInvalid {
        record: 0,
        problems: problems.clone(),
    };
    let statuses = vec![RecordStatus::TaChainInvalid {
        ta_index: Some(1),
        problems,
    }];
    let failures = vec![failure];
    Dane {
        chain: Chain::Lab,
        outcome,
        statuses,
        failures,
        ..ee(&[("2 1 1", Int)])
    }
}

cases! { dane {
    dane_ee_ignores_expiry_name_and_issuer_3_1_1: stale_ee(&[("3 1 1", Leaf)]),
    dane_ee_ignores_expiry_name_and_issuer_3_0_1: stale_ee(&[("3 0 1", Leaf)]),
    dane_ee_ignores_expiry_name_and_issuer_3_0_0: stale_ee(&[("3 0 0", Leaf)]),
    dane_ee_ignores_expiry_name_and_issuer_3_1_2: stale_ee(&[("3 1 2", Leaf)]),
    dane_ee_ignores_expiry_name_and_issuer_3_1_0: stale_ee(&[("3 1 0", Leaf)]),
    dane_ee_mismatch: Dane {
        outcome: DaneOutcome::NoMatch,
        statuses: vec![RecordStatus::NoMatch { why: NoMatchReason::LeafDiffers }],
        failures: vec![(ResultType::ValidationFailure, "dane-no-match")],
        ..ee(&[("3 1 1", OtherLeaf)])
    },
    dane_ta_on_the_intermediate: Dane {
        chain: Chain::Lab,
        statuses: vec![RecordStatus::Matched { ta_index: Some(1) }],
        ..ee(&[("2 1 1", Int)])
    },
    dane_ta_on_the_root_sent_in_the_chain: Dane {
        chain: Chain::LabAndRoot,
        statuses: vec![RecordStatus::Matched { ta_index: Some(2) }],
        ..ee(&[("2 0 1", Root)])
    },
    dane_ta_root_not_sent_does_not_match_by_digest: Dane {
        chain: Chain::Lab,
        outcome: DaneOutcome::NoMatch,
        statuses: vec![RecordStatus::NoMatch { why: NoMatchReason::NoChainCertMatches }],
        failures: vec![(ResultType::ValidationFailure, "dane-no-match")],
        ..ee(&[("2 0 1", Root)])
    },
    // The full anchor in the record.
    dane_ta_full_anchor_in_the_record_2_0_0: Dane { chain: Chain::Lab, ..ee(&[("2 0 0", Root)]) },
    dane_ta_full_anchor_in_the_record_2_1_0: Dane { chain: Chain::Lab, ..ee(&[("2 1 0", Root)]) },
    dane_ta_wrong_name_is_a_host_mismatch: Dane {
        names: &["mail.example.net", "example.net"],
        ..ta_invalid(
            mismatch(&["mail.example.net", "example.net"], &[MX]),
            (ResultType::CertificateHostMismatch, "dane-ta-name-mismatch"),
        )
    },
    dane_ta_expired_leaf: Dane {
        validity: EXPIRED,
        ..ta_invalid(leaf_expired(), (ResultType::CertificateExpired, "dane-ta-leaf-expired"))
    },
    // The server sends an unrelated CA certificate, and the record pins that CA.
    dane_ta_leaf_not_signed_by_the_matched_anchor: Dane {
        chain: Chain::LeafAndOtherCa,
        records: &[("2 0 1", OtherCa)],
        ..ta_invalid(no_intermediate(), (ResultType::ValidationFailure, "dane-ta-unknown-issuer"))
    },
    // RFC 7672 §2.2: TLS stays mandatory, delivery is not blocked.
    pkix_usages_only_is_tlsa_invalid: Dane {
        outcome: DaneOutcome::UnusableOnly,
        statuses: vec![
            RecordStatus::Unusable { why: Unusable::PkixUsage { usage: 0 } },
            RecordStatus::Unusable { why: Unusable::PkixUsage { usage: 1 } },
        ],
        failures: vec![(ResultType::TlsaInvalid, "tlsa-no-usable-records")],
        ..ee(&[("0 1 1", Leaf), ("1 1 1", Leaf)])
    },
    wrong_digest_length_is_unusable: Dane {
        outcome: DaneOutcome::UnusableOnly,
        statuses: vec![RecordStatus::Unusable {
            why: Unusable::WrongDigestLength { matching_type: 1, expected: 32, actual: 31 },
        }],
        failures: vec![(ResultType::TlsaInvalid, "tlsa-no-usable-records")],
        ..ee(&[("3 1 1", LeafCut(31))])
    },
    unusable_records_beside_a_matching_one: Dane {
        outcome: DaneOutcome::Authenticated { record: 2 },
        statuses: vec![
            RecordStatus::Unusable { why: Unusable::PkixUsage { usage: 1 } },
            RecordStatus::Unusable {
                why: Unusable::WrongDigestLength { matching_type: 1, expected: 32, actual: 20 },
            },
            RecordStatus::Matched { ta_index: None },
        ],
        ..ee(&[("1 1 1", Leaf), ("3 1 1", LeafCut(20)), ("3 1 1", Leaf)])
    },
    // RFC 7671 §9: with SHA2-512 present for 3 1, the SHA2-256 record is not used.
    digest_agility_ignores_the_weaker_digest: Dane {
        outcome: DaneOutcome::NoMatch,
        statuses: vec![
            RecordStatus::IgnoredWeakerDigest { preferred: 2 },
            RecordStatus::NoMatch { why: NoMatchReason::LeafDiffers },
        ],
        failures: vec![(ResultType::ValidationFailure, "dane-no-match")],
        ..ee(&[("3 1 1", Leaf), ("3 1 2", Raw(&[0xAB; 64]))])
    },
    bogus_is_dnssec_invalid: Dane {
        dnssec: DnssecStatus::Bogus,
        outcome: DaneOutcome::DnssecInvalid { status: DnssecStatus::Bogus, detail: None },
        statuses: vec![],
        failures: vec![(ResultType::DnssecInvalid, "dnssec-bogus")],
        ..ee(&[("3 1 1", Leaf)])
    },
    indeterminate_is_dnssec_invalid: Dane {
        dnssec: DnssecStatus::Indeterminate,
        outcome: DaneOutcome::DnssecInvalid { status: DnssecStatus::Indeterminate, detail: None },
        statuses: vec![],
        failures: vec![(ResultType::DnssecInvalid, "dnssec-indeterminate")],
        ..ee(&[("3 1 1", Leaf)])
    },
    failed_lookup_is_dnssec_invalid: Dane {
        dnssec: DnssecStatus::Bogus,
        lookup_error: Some("SERVFAIL"),
        outcome: DaneOutcome::DnssecInvalid {
            status: DnssecStatus::Bogus,
            detail: Some("SERVFAIL".into()),
        },
        statuses: vec![],
        failures: vec![(ResultType::DnssecInvalid, "tlsa-lookup-failed")],
        ..ee(&[])
    },
    insecure_is_no_dane: Dane {
        dnssec: DnssecStatus::Insecure,
        outcome: DaneOutcome::NoDane { reason: NoDaneReason::Insecure },
        statuses: vec![],
        ..ee(&[("3 1 1", Raw(&[0; 32]))])
    },
}}

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
    let leaf = self_signed_leaf(&LeafSpec::new(&[MX], valid())).unwrap();
    let der = leaf.der().to_vec();
    let (anchors, mx) = (Anchors::empty(), names(&[MX]));
    let answer = TlsaAnswer {
        lookup: TlsaLookup::Records {
            records: vec![format!("3 1 1 {}", "00".repeat(32)).parse().unwrap()],
        },
        dnssec: DnssecStatus::Secure,
    };
    for i in 0..der.len() {
        let mut bad = der.clone();
        bad[i] ^= 0xA5;
        let _ = describe(&bad);
        let chain = [CertificateDer::from(bad)];
        let _ = judge_for_host(&chain, &mx[0], NOW, &anchors);
        let _ = dane::judge(&answer, &chain, &mx, NOW);
        // And every truncation.
        let _ = describe(&der[..i]);
        let _ = judge_pkix(&[CertificateDer::from(der[..i].to_vec())], NOW, &anchors);
    }
}
