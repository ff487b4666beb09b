//! DANE for SMTP (RFC 7672, RFC 7671; TLSA matching from RFC 6698): TLSA records, their
//! usability, and the judgement of a presented chain against a TLSA RRset.
//!
//! Input is what the DNS and STARTTLS probes observed — the TLSA lookup outcome with its
//! DNSSEC status, the chain the server presented, the reference identifiers and the time —
//! and nothing else. Output is a [`DaneVerdict`]: one [`DaneOutcome`] for the host plus a
//! [`RecordReport`] per TLSA record saying why it did or did not match, so a report writer
//! can name the matching record (by index) and explain the others. Every outcome maps to the
//! RFC 8460 §4.3 result types and failure-reason-codes it is reported under
//! ([`DaneOutcome::failures`]). Pure: no I/O; the time is a parameter.
//!
//! Decisions, with their RFC basis:
//! - Only DANE-TA(2) and DANE-EE(3) are usable; PKIX-TA(0)/PKIX-EE(1) are unusable for SMTP
//!   (RFC 7672 §3.1.3), as are unknown usages, selectors and matching types, digests of the
//!   wrong length and matching-type-0 data that is not a certificate / SPKI (RFC 7671 §4.1).
//! - A secure RRset with no usable record means TLS is still mandatory but unauthenticated
//!   (RFC 7672 §2.2) → [`DaneOutcome::UnusableOnly`], `tlsa-invalid` (RFC 8460 §4.3.3).
//! - Digest algorithm agility (RFC 7671 §9): for each (usage, selector) pair, only the
//!   strongest digest matching type present among the usable records is used (SHA2-512
//!   over SHA2-256); weaker ones are [`RecordStatus::IgnoredWeakerDigest`]. Matching type
//!   Full(0) takes no part in agility.
//! - DANE-EE(3): the leaf (or its SPKI) must match; names, dates and the chain are ignored
//!   (RFC 7671 §5.1, RFC 7672 §3.1.1).
//! - DANE-TA(2): the record designates a trust anchor — a certificate of the presented
//!   chain whose certificate/SPKI matches, or a full certificate or key in the record itself
//!   (matching type 0; RFC 7671 §5.2.2 lets a `2 1 0` key stand alone). The leaf must chain
//!   to it with valid signatures and dates — webpki with that anchor as the *only* anchor
//!   and the rest of the chain as intermediates; as in RFC 5280 §6.1.1 the anchor's own
//!   dates are not checked — and carry a DNS-ID matching one of the reference identifiers
//!   (RFC 7672 §3.2.2, §3.2.3; wildcard only as the whole leftmost label). This module is
//!   DNS-ID only, as [`crate::tls::cert`] is (RFC 9525); RFC 7672 §3.2.3's CN-ID fallback for
//!   certificates without any DNS-ID is deliberately not applied.
//! - A TA that matched but whose chain fails reports the certificate problems:
//!   `certificate-host-mismatch` for the name, `certificate-expired` for expiry and for a
//!   certificate not valid yet (as [`crate::tls::CertProblem::result_type`] maps them), and
//!   `validation-failure` for everything else — the anchor comes from DNS, so a broken
//!   chain to it is a DANE validation failure, not an untrusted public CA.
//! - No usable record matches → `validation-failure` with failure-reason-code
//!   `dane-no-match` (RFC 8460 has no dedicated type; mox does the same).
//! - A TLSA lookup that failed, or an answer that is bogus or indeterminate, makes the MX
//!   unusable (RFC 7672 §2.1.1, §2.2) → `dnssec-invalid`. An insecure answer, or a secure
//!   denial of existence, means no DANE for the host (RFC 7672 §2.2).

use std::fmt;

use rustls_pki_types::{CertificateDer, Der, TrustAnchor};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::dns::{
    DANE_EE, DANE_TA, DnssecStatus, MATCH_FULL, MATCH_SHA256, MATCH_SHA512, SELECTOR_CERT,
    SELECTOR_SPKI, Tlsa, TlsaAnswer, TlsaLookup,
};
use crate::domain::DomainName;
use crate::tls::cert::{issuer_contents, parse_exact, spki_contents};
use crate::tls::{Anchors, CertProblem, judge_for_names};
use crate::tlsrpt::ResultType;

/// Why a TLSA record cannot be used to authenticate an SMTP server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Unusable {
    /// PKIX-TA(0) or PKIX-EE(1): not for SMTP (RFC 7672 §3.1.3).
    PkixUsage {
        /// The usage.
        usage: u8,
    },
    /// A usage no RFC defines.
    UnknownUsage {
        /// The usage.
        usage: u8,
    },
    /// A selector other than Cert(0) / SPKI(1).
    UnknownSelector {
        /// The selector.
        selector: u8,
    },
    /// A matching type other than Full(0) / SHA2-256(1) / SHA2-512(2).
    UnknownMatchingType {
        /// The matching type.
        matching_type: u8,
    },
    /// A digest of the wrong length (32 bytes for SHA2-256, 64 for SHA2-512).
    WrongDigestLength {
        /// The matching type.
        matching_type: u8,
        /// The length it requires.
        expected: usize,
        /// The length found.
        actual: usize,
    },
    /// Selector Cert(0), matching Full(0), but the data is not a DER certificate.
    NotACertificate,
    /// Selector SPKI(1), matching Full(0), but the data is not a DER SubjectPublicKeyInfo.
    NotAPublicKey,
}

impl fmt::Display for Unusable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PkixUsage { usage } => write!(
                f,
                "usage {usage} ({}) is not usable for SMTP (RFC 7672 §3.1.3); use 2 (DANE-TA) \
                 or 3 (DANE-EE)",
                if *usage == 0 { "PKIX-TA" } else { "PKIX-EE" }
            ),
            Self::UnknownUsage { usage } => write!(f, "usage {usage} is not defined"),
            Self::UnknownSelector { selector } => {
                write!(f, "selector {selector} is not defined (0 = Cert, 1 = SPKI)")
            }
            Self::UnknownMatchingType { matching_type } => write!(
                f,
                "matching type {matching_type} is not defined (0 = Full, 1 = SHA2-256, \
                 2 = SHA2-512)"
            ),
            Self::WrongDigestLength {
                matching_type,
                expected,
                actual,
            } => write!(
                f,
                "matching type {matching_type} needs a {expected}-byte digest but the data has \
                 {actual} bytes"
            ),
            Self::NotACertificate => {
                f.write_str("the data of this Cert/Full record is not a DER certificate")
            }
            Self::NotAPublicKey => {
                f.write_str("the data of this SPKI/Full record is not a DER SubjectPublicKeyInfo")
            }
        }
    }
}

impl Tlsa {
    /// Whether this record can authenticate an SMTP server (RFC 7672 §3.1, RFC 7671 §4.1).
    pub fn usability(&self) -> Result<(), Unusable> {
        match self.usage {
            DANE_TA | DANE_EE => {}
            0 | 1 => return Err(Unusable::PkixUsage { usage: self.usage }),
            usage => return Err(Unusable::UnknownUsage { usage }),
        }
        if self.selector > SELECTOR_SPKI {
            return Err(Unusable::UnknownSelector {
                selector: self.selector,
            });
        }
        let expected = match self.matching_type {
            MATCH_FULL => {
                return match self.selector {
                    SELECTOR_CERT if parse_exact(&self.data).is_none() => {
                        Err(Unusable::NotACertificate)
                    }
                    SELECTOR_SPKI if spki_contents(&self.data).is_none() => {
                        Err(Unusable::NotAPublicKey)
                    }
                    _ => Ok(()),
                };
            }
            MATCH_SHA256 => 32,
            MATCH_SHA512 => 64,
            matching_type => return Err(Unusable::UnknownMatchingType { matching_type }),
        };
        if self.data.len() != expected {
            return Err(Unusable::WrongDigestLength {
                matching_type: self.matching_type,
                expected,
                actual: self.data.len(),
            });
        }
        Ok(())
    }

    /// Whether `der` (a certificate) matches this record's selector and matching type.
    /// `None` when the certificate cannot be parsed far enough to find its SPKI.
    fn matches_cert(&self, der: &[u8]) -> Option<bool> {
        let selected = match self.selector {
            SELECTOR_CERT => der,
            _ => parse_exact(der)?.tbs_certificate.subject_pki.raw,
        };
        Some(match self.matching_type {
            MATCH_FULL => selected == self.data.as_slice(),
            MATCH_SHA256 => {
                ring::digest::digest(&ring::digest::SHA256, selected).as_ref() == self.data
            }
            _ => ring::digest::digest(&ring::digest::SHA512, selected).as_ref() == self.data,
        })
    }
}

/// Why DANE does not apply to the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NoDaneReason {
    /// The answer is provably unsigned (RFC 7672 §2.2: DANE needs a secure TLSA RRset).
    Insecure,
    /// A validated denial of existence: no TLSA records.
    SecureDenial,
}

/// Why a usable record did not match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum NoMatchReason {
    /// The server sent no certificate.
    NoCertificate,
    /// DANE-EE: the leaf (or its SPKI) is not what the record holds.
    LeafDiffers,
    /// DANE-EE with selector SPKI: the leaf is too broken to find its public key.
    LeafUnparsable,
    /// DANE-TA: no certificate of the chain matches, and the record holds no full anchor.
    NoChainCertMatches,
}

impl fmt::Display for NoMatchReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NoCertificate => "the server sent no certificate",
            Self::LeafDiffers => "the server certificate does not match the record",
            Self::LeafUnparsable => "the server certificate cannot be parsed to find its key",
            Self::NoChainCertMatches => {
                "no certificate in the presented chain matches the record (is the trust \
                 anchor's certificate sent?)"
            }
        })
    }
}

/// What became of one TLSA record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum RecordStatus {
    /// The record cannot be used at all.
    Unusable {
        /// Why.
        why: Unusable,
    },
    /// A stronger digest exists for the same usage and selector (RFC 7671 §9).
    IgnoredWeakerDigest {
        /// The matching type used instead.
        preferred: u8,
    },
    /// Usable, but it does not match the presented chain.
    NoMatch {
        /// Why.
        why: NoMatchReason,
    },
    /// The record authenticates the server.
    Matched {
        /// DANE-TA: index in the chain of the matched anchor (`None` for DANE-EE, or for a
        /// full anchor taken from the record itself).
        ta_index: Option<usize>,
    },
    /// DANE-TA: the record designates an anchor, but the leaf does not validate under it.
    TaChainInvalid {
        /// Index in the chain of the matched anchor (`None` if taken from the record).
        ta_index: Option<usize>,
        /// Every problem, as [`crate::tls::cert`] reports them.
        problems: Vec<CertProblem>,
    },
}

/// One record and what became of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordReport {
    /// The record.
    pub record: Tlsa,
    /// What became of it.
    pub status: RecordStatus,
}

/// The verdict for one host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum DaneOutcome {
    /// DANE does not apply; deliver as without DANE.
    NoDane {
        /// Why.
        reason: NoDaneReason,
    },
    /// The TLSA lookup failed, or its answer is bogus or indeterminate: the MX must be
    /// treated as unreachable (RFC 7672 §2.1.1).
    DnssecInvalid {
        /// The DNSSEC status of the answer.
        status: DnssecStatus,
        /// The lookup error, if the lookup failed.
        detail: Option<String>,
    },
    /// A secure RRset in which no record is usable: TLS is mandatory, authentication is not
    /// (RFC 7672 §2.2).
    UnusableOnly,
    /// A usable record matched.
    Authenticated {
        /// Index of the first matching record in the RRset.
        record: usize,
    },
    /// No record matched, and a DANE-TA record designated an anchor whose chain failed.
    TaChainInvalid {
        /// Index of the first such record.
        record: usize,
        /// Its problems.
        problems: Vec<CertProblem>,
    },
    /// Usable records exist but none matches.
    NoMatch,
}

/// One failure-details entry a sender would write for this host (RFC 8460 §4.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaneFailure {
    pub result_type: ResultType,
    /// The failure-reason-code.
    pub reason_code: String,
    /// Under a DANE-TA record that matched: the reason code of the certificate problem.
    pub ta_problem: Option<&'static str>,
}

impl DaneOutcome {
    /// The failure-details entries for this outcome; empty when there is no failure.
    pub fn failures(&self) -> Vec<DaneFailure> {
        let one = |result_type, code: &str| {
            vec![DaneFailure {
                result_type,
                reason_code: code.to_owned(),
                ta_problem: None,
            }]
        };
        match self {
            Self::NoDane { .. } | Self::Authenticated { .. } => Vec::new(),
            Self::DnssecInvalid { status, detail } => one(
                ResultType::DnssecInvalid,
                match (status, detail) {
                    (_, Some(_)) => "tlsa-lookup-failed",
                    (DnssecStatus::Bogus, None) => "dnssec-bogus",
                    (DnssecStatus::Indeterminate, None) => "dnssec-indeterminate",
                    (_, None) => "dnssec-invalid",
                },
            ),
            Self::UnusableOnly => one(ResultType::TlsaInvalid, "tlsa-no-usable-records"),
            Self::NoMatch => one(ResultType::ValidationFailure, "dane-no-match"),
            Self::TaChainInvalid { problems, .. } => {
                let mut out: Vec<DaneFailure> = Vec::new();
                for p in problems {
                    let result_type = if p.is_time() || p.is_name() {
                        p.result_type()
                    } else {
                        ResultType::ValidationFailure
                    };
                    let f = DaneFailure {
                        result_type,
                        reason_code: format!("dane-ta-{}", p.reason_code()),
                        ta_problem: Some(p.reason_code()),
                    };
                    if !out.contains(&f) {
                        out.push(f);
                    }
                }
                out
            }
        }
    }

    /// The distinct result types of [`Self::failures`].
    pub fn result_types(&self) -> Vec<ResultType> {
        let mut out = Vec::new();
        for f in self.failures() {
            if !out.contains(&f.result_type) {
                out.push(f.result_type);
            }
        }
        out
    }

    /// Whether a DANE sender must use TLS with this host (a usable or unusable secure
    /// TLSA RRset exists; RFC 7672 §2.2).
    pub fn requires_tls(&self) -> bool {
        !matches!(self, Self::NoDane { .. } | Self::DnssecInvalid { .. })
    }

    /// Whether a DANE sender must not deliver to this host at all.
    pub fn blocks_delivery(&self) -> bool {
        matches!(
            self,
            Self::DnssecInvalid { .. } | Self::TaChainInvalid { .. } | Self::NoMatch
        )
    }
}

/// The DANE verdict for one host: the outcome and what became of each record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaneVerdict {
    /// The outcome.
    pub outcome: DaneOutcome,
    /// One entry per TLSA record, in RRset order (empty when there were no records).
    pub records: Vec<RecordReport>,
}

/// Judges a presented chain (DER, leaf first) against a TLSA answer.
///
/// `references` are the reference identifiers for DANE-TA name checks, the TLSA base
/// domain first, then the others RFC 7672 §3.2.3 allows (the original next-hop domain and
/// its CNAME expansion when the MX RRset is secure). `at` is the time for DANE-TA dates.
pub fn judge(
    answer: &TlsaAnswer,
    chain: &[CertificateDer<'_>],
    references: &[DomainName],
    at: OffsetDateTime,
) -> DaneVerdict {
    let no_records = |outcome| DaneVerdict {
        outcome,
        records: Vec::new(),
    };
    match answer.dnssec {
        // RFC 7672 §2.2: only a secure TLSA RRset turns DANE on.
        DnssecStatus::Insecure => {
            return no_records(DaneOutcome::NoDane {
                reason: NoDaneReason::Insecure,
            });
        }
        // RFC 7672 §2.1.1: a bogus or indeterminate answer is a lookup failure.
        DnssecStatus::Bogus | DnssecStatus::Indeterminate => {
            let detail = match &answer.lookup {
                TlsaLookup::Failed { detail } => Some(detail.clone()),
                _ => None,
            };
            return no_records(DaneOutcome::DnssecInvalid {
                status: answer.dnssec,
                detail,
            });
        }
        DnssecStatus::Secure => {}
    }
    let records = match &answer.lookup {
        TlsaLookup::NoRecords => {
            return no_records(DaneOutcome::NoDane {
                reason: NoDaneReason::SecureDenial,
            });
        }
        TlsaLookup::Records { records } if records.is_empty() => {
            return no_records(DaneOutcome::NoDane {
                reason: NoDaneReason::SecureDenial,
            });
        }
        TlsaLookup::Records { records } => records,
        TlsaLookup::Failed { detail } => {
            return no_records(DaneOutcome::DnssecInvalid {
                status: answer.dnssec,
                detail: Some(detail.clone()),
            });
        }
    };

    let mut statuses: Vec<Option<RecordStatus>> = records
        .iter()
        .map(|r| {
            r.usability()
                .err()
                .map(|why| RecordStatus::Unusable { why })
        })
        .collect();
    if statuses.iter().all(Option::is_some) {
        return DaneVerdict {
            outcome: DaneOutcome::UnusableOnly,
            records: report(records, statuses),
        };
    }
    apply_digest_agility(records, &mut statuses);
    for (i, r) in records.iter().enumerate() {
        if statuses[i].is_none() {
            statuses[i] = Some(match_record(r, chain, references, at));
        }
    }
    let found = |want: fn(&RecordStatus) -> bool| {
        statuses.iter().position(|s| s.as_ref().is_some_and(want))
    };
    let outcome = if let Some(record) = found(|s| matches!(s, RecordStatus::Matched { .. })) {
        DaneOutcome::Authenticated { record }
    } else if let Some(record) = found(|s| matches!(s, RecordStatus::TaChainInvalid { .. })) {
        let problems = match &statuses[record] {
            Some(RecordStatus::TaChainInvalid { problems, .. }) => problems.clone(),
            _ => Vec::new(),
        };
        DaneOutcome::TaChainInvalid { record, problems }
    } else {
        DaneOutcome::NoMatch
    };
    DaneVerdict {
        outcome,
        records: report(records, statuses),
    }
}

fn report(records: &[Tlsa], statuses: Vec<Option<RecordStatus>>) -> Vec<RecordReport> {
    records
        .iter()
        .zip(statuses)
        .map(|(record, status)| RecordReport {
            record: record.clone(),
            status: status.expect("every record gets a status before reporting"),
        })
        .collect()
}

/// RFC 7671 §9: per (usage, selector), keep only the strongest digest among usable records.
fn apply_digest_agility(records: &[Tlsa], statuses: &mut [Option<RecordStatus>]) {
    let usable = |i: usize| statuses[i].is_none();
    let strongest: Vec<Option<u8>> = records
        .iter()
        .map(|r| {
            records
                .iter()
                .enumerate()
                .filter(|&(j, o)| {
                    usable(j)
                        && o.usage == r.usage
                        && o.selector == r.selector
                        && o.matching_type != MATCH_FULL
                })
                .map(|(_, o)| o.matching_type)
                .max()
        })
        .collect();
    for (i, r) in records.iter().enumerate() {
        if let Some(best) = strongest[i]
            && statuses[i].is_none()
            && r.matching_type != MATCH_FULL
            && r.matching_type < best
        {
            statuses[i] = Some(RecordStatus::IgnoredWeakerDigest { preferred: best });
        }
    }
}

fn match_record(
    r: &Tlsa,
    chain: &[CertificateDer<'_>],
    references: &[DomainName],
    at: OffsetDateTime,
) -> RecordStatus {
    let Some(leaf) = chain.first() else {
        return RecordStatus::NoMatch {
            why: NoMatchReason::NoCertificate,
        };
    };
    if r.usage == DANE_EE {
        // RFC 7671 §5.1: only the match counts; names, dates and issuers are ignored.
        return match r.matches_cert(leaf) {
            Some(true) => RecordStatus::Matched { ta_index: None },
            Some(false) => RecordStatus::NoMatch {
                why: NoMatchReason::LeafDiffers,
            },
            None => RecordStatus::NoMatch {
                why: NoMatchReason::LeafUnparsable,
            },
        };
    }
    // DANE-TA: the chain certificates the record designates, else a full anchor in the
    // record itself.
    let mut candidates: Vec<(Option<usize>, Vec<TrustAnchor<'static>>)> = chain
        .iter()
        .enumerate()
        .filter(|(_, c)| r.matches_cert(c) == Some(true))
        .filter_map(|(i, c)| Anchors::anchor_from_der(c).ok().map(|a| (Some(i), vec![a])))
        .collect();
    if candidates.is_empty()
        && r.matching_type == MATCH_FULL
        && let Some(anchors) = record_anchor(r, chain)
    {
        candidates.push((None, anchors));
    }
    if candidates.is_empty() {
        return RecordStatus::NoMatch {
            why: NoMatchReason::NoChainCertMatches,
        };
    }
    let mut first_failure = None;
    for (ta_index, anchors) in candidates {
        let verdict = judge_for_names(chain, references, at, &Anchors::from_anchors(anchors));
        if verdict.is_valid() {
            return RecordStatus::Matched { ta_index };
        }
        first_failure.get_or_insert(RecordStatus::TaChainInvalid {
            ta_index,
            problems: verdict.problems,
        });
    }
    first_failure.expect("at least one candidate was judged")
}

/// A full anchor given in a matching-type-0 record (RFC 7671 §5.2.2). A bare key (`2 1 0`)
/// has no name, so it is offered under the issuer name of every presented certificate and
/// path building picks the one whose signature it verifies.
fn record_anchor(r: &Tlsa, chain: &[CertificateDer<'_>]) -> Option<Vec<TrustAnchor<'static>>> {
    match r.selector {
        SELECTOR_CERT => Anchors::anchor_from_der(&CertificateDer::from(r.data.as_slice()))
            .ok()
            .map(|a| vec![a]),
        _ => {
            let spki = spki_contents(&r.data)?;
            let mut anchors: Vec<TrustAnchor<'static>> = Vec::new();
            for c in chain {
                if let Some(issuer) = parse_exact(c).as_ref().and_then(issuer_contents) {
                    let anchor = TrustAnchor {
                        subject: Der::from(issuer.to_vec()),
                        subject_public_key_info: Der::from(spki.to_vec()),
                        name_constraints: None,
                    };
                    if !anchors.contains(&anchor) {
                        anchors.push(anchor);
                    }
                }
            }
            (!anchors.is_empty()).then_some(anchors)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Tlsa {
        s.parse().unwrap()
    }

    #[test]
    fn usability_table() {
        let h32 = "00".repeat(32);
        let h64 = "00".repeat(64);
        let cases: Vec<(String, Result<(), Unusable>)> = vec![
            (format!("3 1 1 {h32}"), Ok(())),
            (format!("2 0 2 {h64}"), Ok(())),
            (
                format!("0 1 1 {h32}"),
                Err(Unusable::PkixUsage { usage: 0 }),
            ),
            (
                format!("1 1 1 {h32}"),
                Err(Unusable::PkixUsage { usage: 1 }),
            ),
            (
                format!("4 1 1 {h32}"),
                Err(Unusable::UnknownUsage { usage: 4 }),
            ),
            (
                format!("3 2 1 {h32}"),
                Err(Unusable::UnknownSelector { selector: 2 }),
            ),
            (
                format!("3 1 3 {h32}"),
                Err(Unusable::UnknownMatchingType { matching_type: 3 }),
            ),
            (
                format!("3 1 1 {h64}"),
                Err(Unusable::WrongDigestLength {
                    matching_type: 1,
                    expected: 32,
                    actual: 64,
                }),
            ),
            (
                format!("3 1 2 {h32}"),
                Err(Unusable::WrongDigestLength {
                    matching_type: 2,
                    expected: 64,
                    actual: 32,
                }),
            ),
            ("3 0 0 3000".to_owned(), Err(Unusable::NotACertificate)),
            ("3 1 0 3000".to_owned(), Err(Unusable::NotAPublicKey)),
        ];
        for (record, want) in cases {
            assert_eq!(t(&record).usability(), want, "{record}");
        }
    }

    #[test]
    fn full_records_must_hold_exactly_one_certificate_or_key() {
        use mxprobe_testpki::{LeafSpec, Validity, self_signed_leaf};
        let window = Validity::new(
            time::macros::datetime!(2024-01-01 0:00 UTC),
            time::macros::datetime!(2026-01-01 0:00 UTC),
        );
        let leaf = self_signed_leaf(&LeafSpec::new(&["mx.example.com"], window)).unwrap();
        let cert = leaf.der().to_vec();
        let spki = parse_exact(&cert)
            .unwrap()
            .tbs_certificate
            .subject_pki
            .raw
            .to_vec();
        let with_byte = |b: &[u8]| [b, &[0]].concat();
        let cases: Vec<(u8, Vec<u8>, Result<(), Unusable>)> = vec![
            (SELECTOR_CERT, cert.clone(), Ok(())),
            (
                SELECTOR_CERT,
                with_byte(&cert),
                Err(Unusable::NotACertificate),
            ),
            (
                SELECTOR_CERT,
                cert[..cert.len() - 1].to_vec(),
                Err(Unusable::NotACertificate),
            ),
            (SELECTOR_CERT, spki.clone(), Err(Unusable::NotACertificate)),
            (SELECTOR_SPKI, spki.clone(), Ok(())),
            (
                SELECTOR_SPKI,
                with_byte(&spki),
                Err(Unusable::NotAPublicKey),
            ),
            (SELECTOR_SPKI, cert, Err(Unusable::NotAPublicKey)),
            // RFC 5280 §4.1.1.2: an AlgorithmIdentifier starts with its OID.
            (
                SELECTOR_SPKI,
                b"\x30\x06\x30\x00\x03\x02\x00\x00".to_vec(),
                Err(Unusable::NotAPublicKey),
            ),
        ];
        for (i, (selector, data, want)) in cases.into_iter().enumerate() {
            let record = Tlsa {
                usage: DANE_EE,
                selector,
                matching_type: MATCH_FULL,
                data,
            };
            assert_eq!(record.usability(), want, "case {i}");
        }
    }

    #[test]
    fn digest_agility_prefers_sha512_per_usage_and_selector() {
        let records = vec![
            t(&format!("3 1 1 {}", "11".repeat(32))),
            t(&format!("3 1 2 {}", "22".repeat(64))),
            t(&format!("3 0 1 {}", "33".repeat(32))),
            t(&format!("2 1 1 {}", "44".repeat(32))),
            t(&format!("3 1 2 {}", "55".repeat(63))),
        ];
        let mut statuses: Vec<Option<RecordStatus>> = records
            .iter()
            .map(|r| {
                r.usability()
                    .err()
                    .map(|why| RecordStatus::Unusable { why })
            })
            .collect();
        apply_digest_agility(&records, &mut statuses);
        assert_eq!(
            statuses[0],
            Some(RecordStatus::IgnoredWeakerDigest { preferred: 2 })
        );
        assert_eq!(statuses[1], None);
        assert_eq!(statuses[2], None, "different selector");
        assert_eq!(statuses[3], None, "different usage");
        assert!(matches!(statuses[4], Some(RecordStatus::Unusable { .. })));
    }

    #[test]
    fn failures_map_to_result_types() {
        let cases: Vec<(DaneOutcome, Vec<(ResultType, &str)>)> = vec![
            (
                DaneOutcome::NoDane {
                    reason: NoDaneReason::Insecure,
                },
                vec![],
            ),
            (DaneOutcome::Authenticated { record: 0 }, vec![]),
            (
                DaneOutcome::DnssecInvalid {
                    status: DnssecStatus::Bogus,
                    detail: None,
                },
                vec![(ResultType::DnssecInvalid, "dnssec-bogus")],
            ),
            (
                DaneOutcome::DnssecInvalid {
                    status: DnssecStatus::Secure,
                    detail: Some("SERVFAIL".into()),
                },
                vec![(ResultType::DnssecInvalid, "tlsa-lookup-failed")],
            ),
            (
                DaneOutcome::UnusableOnly,
                vec![(ResultType::TlsaInvalid, "tlsa-no-usable-records")],
            ),
            (
                DaneOutcome::NoMatch,
                vec![(ResultType::ValidationFailure, "dane-no-match")],
            ),
            (
                DaneOutcome::TaChainInvalid {
                    record: 0,
                    problems: vec![CertProblem::WrongEku],
                },
                vec![(ResultType::ValidationFailure, "dane-ta-no-server-auth-eku")],
            ),
        ];
        for (outcome, want) in cases {
            let got: Vec<(ResultType, String)> = outcome
                .failures()
                .into_iter()
                .map(|f| (f.result_type, f.reason_code))
                .collect();
            let want: Vec<(ResultType, String)> =
                want.into_iter().map(|(r, c)| (r, c.to_owned())).collect();
            assert_eq!(got, want, "{outcome:?}");
        }
    }

    #[test]
    fn insecure_and_denial_need_no_chain() {
        let empty: [CertificateDer<'_>; 0] = [];
        let at = time::macros::datetime!(2025-01-01 0:00 UTC);
        let insecure = TlsaAnswer {
            lookup: TlsaLookup::Failed {
                detail: "SERVFAIL".into(),
            },
            dnssec: DnssecStatus::Insecure,
        };
        assert_eq!(
            judge(&insecure, &empty, &[], at).outcome,
            DaneOutcome::NoDane {
                reason: NoDaneReason::Insecure
            }
        );
        let denial = TlsaAnswer {
            lookup: TlsaLookup::NoRecords,
            dnssec: DnssecStatus::Secure,
        };
        assert_eq!(
            judge(&denial, &empty, &[], at).outcome,
            DaneOutcome::NoDane {
                reason: NoDaneReason::SecureDenial
            }
        );
    }
}
