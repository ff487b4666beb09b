//! Judging a presented certificate chain, and describing one certificate.
//!
//! [`judge_for_host`] / [`judge_for_names`] / [`judge_pkix`] take the chain a server sent
//! (DER, leaf first), the time (a parameter; this module never reads the clock) and a set of
//! [`Anchors`], and return a [`CertVerdict`] listing **every** problem, not just the first:
//! RFC 8460 §4.3 result types are non-exclusive, so an expired certificate for the wrong
//! name is two failures. Path building and name matching are rustls-webpki's (with the
//! *ring* signature algorithms); this module adds the separation a report needs:
//!
//! - **time** problems ([`CertProblem::Expired`], [`CertProblem::NotYetValid`]) name which
//!   certificate of the path is outside its window;
//! - **trust** problems are learned by re-running path building at a time inside the
//!   chain's validity windows, so an expired chain that is otherwise sound reports only the
//!   expiry, and one that is also untrusted reports both, with the precise reason
//!   (self-signed leaf, root that is not an anchor, issuer not sent, bad signature, EKU …);
//! - the **name** problem ([`CertProblem::HostMismatch`]) is checked separately and carries
//!   the names the certificate does have. Matching is DNS-ID only (SAN dNSName), wildcard
//!   only as the whole leftmost label matching exactly one label (RFC 8461 §3.3 for
//!   MTA-STS, RFC 9525 §6.3); the subject CN is never consulted.
//!
//! MTA-STS needs PKIX + name ([`judge_for_host`] with the MX name); DANE-TA needs PKIX to
//! the one TLSA-designated anchor + any of several reference names ([`judge_for_names`],
//! driven by [`crate::dane`]). [`describe`] summarises one certificate with x509-parser for
//! facts and JSON output. The raw pieces the diagnosis compares (the exact issuer and subject
//! Names, the SubjectPublicKeyInfo) and the signature checks that pin a bad signature to one
//! certificate come from x509-parser too (its *ring* `verify` feature); this module decodes no
//! DER itself. Pure: no I/O.

use std::fmt;
use std::net::IpAddr;

use rustls_pki_types::{CertificateDer, ServerName, TrustAnchor, UnixTime};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use webpki::{EndEntityCert, KeyUsage};
use x509_parser::asn1_rs::Any;
use x509_parser::extensions::GeneralName;
use x509_parser::num_bigint::BigUint;
use x509_parser::prelude::{FromDer, SubjectPublicKeyInfo, X509Certificate, X509Name};

use crate::domain::DomainName;
use crate::tls::anchors::Anchors;
use crate::tlsrpt::ResultType;

/// Where in the presented chain a certificate sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "position", rename_all = "kebab-case")]
pub enum ChainPosition {
    /// The server's own (end-entity) certificate, index 0.
    Leaf,
    /// A CA certificate the server sent, at this index of the chain (≥ 1).
    Intermediate {
        /// Index in the presented chain.
        index: usize,
    },
}

impl ChainPosition {
    fn of(index: usize) -> Self {
        if index == 0 {
            Self::Leaf
        } else {
            Self::Intermediate { index }
        }
    }
}

impl fmt::Display for ChainPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Leaf => f.write_str("the server certificate"),
            Self::Intermediate { index } => write!(f, "the intermediate certificate #{index}"),
        }
    }
}

/// One thing wrong with a presented chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum CertProblem {
    /// The server sent no certificate.
    EmptyChain,
    /// A certificate could not be parsed (DER), or webpki rejected its encoding.
    Malformed {
        /// Index in the chain when known.
        index: Option<usize>,
        /// What the parser said.
        detail: String,
    },
    /// A certificate of the validation path is past its notAfter.
    Expired {
        /// Which certificate.
        which: ChainPosition,
        /// Its subject.
        subject: String,
        /// Its notAfter.
        #[serde(with = "time::serde::rfc3339")]
        not_after: OffsetDateTime,
    },
    /// A certificate of the validation path is before its notBefore.
    NotYetValid {
        /// Which certificate.
        which: ChainPosition,
        /// Its subject.
        subject: String,
        /// Its notBefore.
        #[serde(with = "time::serde::rfc3339")]
        not_before: OffsetDateTime,
    },
    /// No DNS-ID of the leaf matches any reference identifier.
    HostMismatch {
        /// The names the certificate had to match (any one of them).
        expected: Vec<DomainName>,
        /// The SAN names the certificate does carry (DNS names and IP addresses).
        presented: Vec<String>,
    },
    /// The leaf is self-signed (issuer = subject) and not an anchor.
    SelfSignedLeaf {
        /// The leaf's subject.
        subject: String,
    },
    /// The chain ends in a self-signed root that is not a trust anchor (unknown CA).
    UntrustedRoot {
        /// The root's subject.
        subject: String,
        /// Its index in the presented chain.
        index: usize,
    },
    /// The issuer of the last certificate sent is neither sent nor an anchor: an unknown CA,
    /// or an intermediate the server failed to send.
    IssuerNotFound {
        /// The issuer name that could not be found.
        issuer: String,
        /// Index of the certificate whose issuer is missing.
        index: usize,
    },
    /// A signature in the path does not verify with its issuer's key.
    BadSignature {
        /// The certificate whose signature fails, when it could be pinned down.
        index: Option<usize>,
        /// Its subject, when known.
        subject: Option<String>,
    },
    /// A signature algorithm (or key/algorithm pairing) the verifier does not support.
    UnsupportedAlgorithm {
        /// webpki's description.
        detail: String,
    },
    /// The leaf's extended key usage does not allow TLS server authentication.
    WrongEku,
    /// The leaf is a CA certificate (basicConstraints cA = true).
    CaAsLeaf,
    /// A certificate used as an issuer is not a CA.
    IssuerNotCa {
        /// The first certificate of the apparent path that is not a CA, when found.
        index: Option<usize>,
    },
    /// A pathLenConstraint is exceeded.
    PathLength,
    /// A CA's name constraints exclude the leaf's names.
    NameConstraints,
    /// The key is explicitly distrusted.
    Distrusted,
    /// Another validation error, named by webpki.
    Other {
        /// webpki's description.
        detail: String,
    },
}

impl CertProblem {
    /// The RFC 8460 §4.3.1 result type this problem is reported under.
    ///
    /// A certificate that is not valid *yet* is `certificate-expired` too, with
    /// failure-reason-code `*-not-yet-valid`: that is what senders report (mox, and every
    /// sender built on OpenSSL's or Go's verifier, which group "expired or not yet valid"
    /// as one time error and send the TLS `certificate_expired` alert for both), and a
    /// synthetic report should predict the real ones.
    /// Empty chains, unparsable certificates and unclassified errors are
    /// `validation-failure`, the §4.3.1 catch-all.
    pub fn result_type(&self) -> ResultType {
        match self {
            Self::Expired { .. } | Self::NotYetValid { .. } => ResultType::CertificateExpired,
            Self::HostMismatch { .. } => ResultType::CertificateHostMismatch,
            Self::SelfSignedLeaf { .. }
            | Self::UntrustedRoot { .. }
            | Self::IssuerNotFound { .. }
            | Self::BadSignature { .. }
            | Self::UnsupportedAlgorithm { .. }
            | Self::WrongEku
            | Self::CaAsLeaf
            | Self::IssuerNotCa { .. }
            | Self::PathLength
            | Self::NameConstraints
            | Self::Distrusted => ResultType::CertificateNotTrusted,
            Self::EmptyChain | Self::Malformed { .. } | Self::Other { .. } => {
                ResultType::ValidationFailure
            }
        }
    }

    /// A short stable failure-reason-code (RFC 8460 §4.4 `failure-reason-code`).
    pub fn reason_code(&self) -> &'static str {
        match self {
            Self::EmptyChain => "empty-chain",
            Self::Malformed { .. } => "malformed-certificate",
            Self::Expired {
                which: ChainPosition::Leaf,
                ..
            } => "leaf-expired",
            Self::Expired { .. } => "intermediate-expired",
            Self::NotYetValid {
                which: ChainPosition::Leaf,
                ..
            } => "leaf-not-yet-valid",
            Self::NotYetValid { .. } => "intermediate-not-yet-valid",
            Self::HostMismatch { .. } => "name-mismatch",
            Self::SelfSignedLeaf { .. } => "self-signed",
            Self::UntrustedRoot { .. } => "untrusted-root",
            Self::IssuerNotFound { .. } => "unknown-issuer",
            Self::BadSignature { .. } => "bad-signature",
            Self::UnsupportedAlgorithm { .. } => "unsupported-signature-algorithm",
            Self::WrongEku => "no-server-auth-eku",
            Self::CaAsLeaf => "ca-as-leaf",
            Self::IssuerNotCa { .. } => "issuer-not-ca",
            Self::PathLength => "path-length-exceeded",
            Self::NameConstraints => "name-constraints-violated",
            Self::Distrusted => "distrusted-key",
            Self::Other { .. } => "chain-invalid",
        }
    }

    /// Whether this is a validity-window problem.
    pub fn is_time(&self) -> bool {
        matches!(self, Self::Expired { .. } | Self::NotYetValid { .. })
    }

    /// Whether this is the name problem.
    pub fn is_name(&self) -> bool {
        matches!(self, Self::HostMismatch { .. })
    }
}

fn rfc3339(t: &OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

impl fmt::Display for CertProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EmptyChain => f.write_str("the server sent no certificate"),
            Self::Malformed {
                index: Some(i),
                detail,
            } => write!(
                f,
                "certificate #{i} of the chain cannot be parsed: {detail}"
            ),
            Self::Malformed {
                index: None,
                detail,
            } => write!(f, "a certificate of the chain is malformed: {detail}"),
            Self::Expired {
                which,
                subject,
                not_after,
            } => write!(f, "{which} ({subject}) expired at {}", rfc3339(not_after)),
            Self::NotYetValid {
                which,
                subject,
                not_before,
            } => write!(
                f,
                "{which} ({subject}) is not valid before {}",
                rfc3339(not_before)
            ),
            Self::HostMismatch {
                expected,
                presented,
            } => {
                let expected: Vec<&str> = expected.iter().map(DomainName::as_str).collect();
                if presented.is_empty() {
                    write!(
                        f,
                        "the certificate carries no DNS name (SAN) at all; it must name {}",
                        expected.join(" or ")
                    )
                } else {
                    write!(
                        f,
                        "the certificate is for {}, not {}",
                        presented.join(", "),
                        expected.join(" or ")
                    )
                }
            }
            Self::SelfSignedLeaf { subject } => write!(
                f,
                "the server certificate ({subject}) is self-signed; senders that validate \
                 certificates do not trust it"
            ),
            Self::UntrustedRoot { subject, index } => write!(
                f,
                "the chain ends in the root {subject} (certificate #{index}), which is not a \
                 trusted certificate authority"
            ),
            Self::IssuerNotFound { issuer, index } => write!(
                f,
                "the issuer {issuer} of certificate #{index} was not sent and is not a trusted \
                 root: an unknown CA or a missing intermediate; send the full chain"
            ),
            Self::BadSignature {
                subject: Some(s),
                index: Some(i),
            } => write!(
                f,
                "the signature on certificate #{i} ({s}) does not verify with its issuer's key"
            ),
            Self::BadSignature { .. } => {
                f.write_str("a signature in the chain does not verify with its issuer's key")
            }
            Self::UnsupportedAlgorithm { detail } => {
                write!(
                    f,
                    "the chain uses an unsupported signature algorithm ({detail})"
                )
            }
            Self::WrongEku => f.write_str(
                "the server certificate's extended key usage does not allow TLS server \
                 authentication",
            ),
            Self::CaAsLeaf => f.write_str("the server certificate is a CA certificate"),
            Self::IssuerNotCa { index: Some(i) } => write!(
                f,
                "certificate #{i} is used as an issuer but is not a CA certificate"
            ),
            Self::IssuerNotCa { index: None } => {
                f.write_str("a certificate used as an issuer in the chain is not a CA")
            }
            Self::PathLength => f.write_str("the chain exceeds a CA's path length constraint"),
            Self::NameConstraints => {
                f.write_str("the certificate's names violate a CA's name constraints")
            }
            Self::Distrusted => f.write_str("a key in the chain is explicitly distrusted"),
            Self::Other { detail } => write!(f, "the chain does not validate: {detail}"),
        }
    }
}

/// Every problem found with a chain; empty means valid.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertVerdict {
    /// Time problems first, then trust problems, then the name problem.
    pub problems: Vec<CertProblem>,
}

impl CertVerdict {
    /// Valid for what was asked (PKIX, and the name if one was given).
    pub fn is_valid(&self) -> bool {
        self.problems.is_empty()
    }

    /// PKIX-valid (trusted and within its dates), whatever the name.
    pub fn pkix_valid(&self) -> bool {
        self.problems.iter().all(CertProblem::is_name)
    }

    /// No name problem (also true when no name was checked).
    pub fn name_valid(&self) -> bool {
        !self.problems.iter().any(CertProblem::is_name)
    }

    /// The distinct result types, in the order of [`Self::problems`].
    pub fn result_types(&self) -> Vec<ResultType> {
        let mut out: Vec<ResultType> = Vec::new();
        for p in &self.problems {
            let r = p.result_type();
            if !out.contains(&r) {
                out.push(r);
            }
        }
        out
    }
}

/// PKIX + name, for MTA-STS (RFC 8461 §4.1: the MX name) or the policy host.
pub fn judge_for_host(
    chain: &[CertificateDer<'_>],
    reference: &DomainName,
    at: OffsetDateTime,
    anchors: &Anchors,
) -> CertVerdict {
    judge(chain, Some(std::slice::from_ref(reference)), at, anchors)
}

/// PKIX + name, where any of `references` may match (DANE-TA, RFC 7672 §3.2.3). An empty
/// `references` makes every certificate a mismatch.
pub fn judge_for_names(
    chain: &[CertificateDer<'_>],
    references: &[DomainName],
    at: OffsetDateTime,
    anchors: &Anchors,
) -> CertVerdict {
    judge(chain, Some(references), at, anchors)
}

/// PKIX only: trust and dates, no name check.
pub fn judge_pkix(
    chain: &[CertificateDer<'_>],
    at: OffsetDateTime,
    anchors: &Anchors,
) -> CertVerdict {
    judge(chain, None, at, anchors)
}

/// The path rustls-webpki verifies at `at` from the leaf to one of `anchors` (server
/// authentication; no name check), as indices into `chain`: 0 for the leaf, then every
/// intermediate the path uses, nearest the leaf first. Certificates the server sent that the
/// path does not use (a cross-signed copy of a root, the root itself, strays) are not in it,
/// and neither is the anchor. `None` when no path verifies at `at` ([`judge_pkix`] says why).
pub fn verified_path(
    chain: &[CertificateDer<'_>],
    at: OffsetDateTime,
    anchors: &Anchors,
) -> Option<Vec<usize>> {
    let leaf = EndEntityCert::try_from(chain.first()?).ok()?;
    let intermediates = &chain[1..];
    let path = leaf
        .verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            anchors.as_slice(),
            intermediates,
            unix(at),
            KeyUsage::server_auth(),
            None,
            None,
        )
        .ok()?;
    let mut used = vec![0];
    for cert in path.intermediate_certificates() {
        let der = cert.der();
        // webpki hands out the certificates it was given, so each is found in the chain.
        used.extend((1..chain.len()).find(|&j| chain[j].as_ref() == der.as_ref()));
    }
    Some(used)
}

fn unix(t: OffsetDateTime) -> UnixTime {
    // Certificates before 1970 do not exist in practice; clamp rather than fail.
    let secs = u64::try_from(t.unix_timestamp()).unwrap_or(0);
    UnixTime::since_unix_epoch(std::time::Duration::from_secs(secs))
}

/// What the judgement needs of each presented certificate.
struct Info<'a> {
    /// The certificate as x509-parser reads it, when nothing follows it.
    cert: Option<X509Certificate<'a>>,
    subject: String,
    issuer: String,
    not_before: Option<OffsetDateTime>,
    not_after: Option<OffsetDateTime>,
    is_ca: bool,
}

impl<'a> Info<'a> {
    fn parse(der: &'a [u8]) -> Self {
        match X509Certificate::from_der(der) {
            Ok((rest, x)) => Self {
                subject: x.subject().to_string(),
                issuer: x.issuer().to_string(),
                not_before: Some(x.validity().not_before.to_datetime()),
                not_after: Some(x.validity().not_after.to_datetime()),
                is_ca: x.is_ca(),
                cert: rest.is_empty().then_some(x),
            },
            Err(_) => Self {
                cert: None,
                subject: "(unparsable certificate)".to_owned(),
                issuer: "(unknown)".to_owned(),
                not_before: None,
                not_after: None,
                is_ca: false,
            },
        }
    }

    /// The issuer Name's contents (see [`issuer_contents`]).
    fn issuer_name(&self) -> Option<&'a [u8]> {
        self.cert.as_ref().and_then(issuer_contents)
    }

    /// The subject Name's contents.
    fn subject_name(&self) -> Option<&'a [u8]> {
        self.cert.as_ref().and_then(subject_contents)
    }

    fn self_issued(&self) -> bool {
        self.cert.as_ref().is_some_and(self_issued)
    }
}

/// The path a validator would try: from the leaf, each next certificate is the first one
/// sent whose subject is the current issuer, until a self-issued certificate or a gap.
fn apparent_path(infos: &[Info<'_>]) -> Vec<usize> {
    let mut path = vec![0];
    let mut current = 0;
    loop {
        if infos[current].self_issued() {
            return path;
        }
        let Some(issuer) = infos[current].issuer_name() else {
            return path;
        };
        let next = (1..infos.len())
            .find(|&j| !path.contains(&j) && infos[j].subject_name() == Some(issuer));
        match next {
            Some(j) => {
                path.push(j);
                current = j;
            }
            None => return path,
        }
    }
}

fn time_problems(infos: &[Info<'_>], indices: &[usize], at: OffsetDateTime) -> Vec<CertProblem> {
    // webpki's rule (RFC 5280 §4.1.2.5, both ends inclusive), at whole seconds.
    let now = at.unix_timestamp();
    let mut out = Vec::new();
    for &i in indices {
        let info = &infos[i];
        if let Some(nb) = info.not_before
            && now < nb.unix_timestamp()
        {
            out.push(CertProblem::NotYetValid {
                which: ChainPosition::of(i),
                subject: info.subject.clone(),
                not_before: nb,
            });
        }
        if let Some(na) = info.not_after
            && now > na.unix_timestamp()
        {
            out.push(CertProblem::Expired {
                which: ChainPosition::of(i),
                subject: info.subject.clone(),
                not_after: na,
            });
        }
    }
    out
}

fn is_time_error(e: &webpki::Error) -> bool {
    matches!(
        e,
        webpki::Error::CertExpired { .. } | webpki::Error::CertNotValidYet { .. }
    )
}

/// Times at which to re-run path building so that dates do not hide trust problems: the
/// start of the intersection of the apparent path's windows, then the leaf's notBefore.
fn probe_times(infos: &[Info<'_>], path: &[usize]) -> Vec<UnixTime> {
    let mut out = Vec::new();
    let starts: Option<Vec<OffsetDateTime>> = path.iter().map(|&i| infos[i].not_before).collect();
    let ends: Option<Vec<OffsetDateTime>> = path.iter().map(|&i| infos[i].not_after).collect();
    if let (Some(starts), Some(ends)) = (starts, ends)
        && let (Some(start), Some(end)) = (starts.into_iter().max(), ends.into_iter().min())
        && start <= end
    {
        out.push(unix(start));
    }
    if let Some(nb) = infos[0].not_before {
        out.push(unix(nb));
    }
    out
}

fn judge(
    chain: &[CertificateDer<'_>],
    names: Option<&[DomainName]>,
    at: OffsetDateTime,
    anchors: &Anchors,
) -> CertVerdict {
    let Some(leaf_der) = chain.first() else {
        return CertVerdict {
            problems: vec![CertProblem::EmptyChain],
        };
    };
    let leaf = match EndEntityCert::try_from(leaf_der) {
        Ok(leaf) => leaf,
        Err(e) => {
            return CertVerdict {
                problems: vec![CertProblem::Malformed {
                    index: Some(0),
                    detail: format!("{e:?}"),
                }],
            };
        }
    };
    let infos: Vec<Info<'_>> = chain.iter().map(|c| Info::parse(c.as_ref())).collect();
    let intermediates = &chain[1..];
    let verify = |t: UnixTime| {
        leaf.verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            anchors.as_slice(),
            intermediates,
            t,
            KeyUsage::server_auth(),
            None,
            None,
        )
        .map(|path| {
            let mut used = vec![0];
            for cert in path.intermediate_certificates() {
                let der = cert.der();
                if let Some(j) = (1..chain.len()).find(|&j| chain[j].as_ref() == der.as_ref()) {
                    used.push(j);
                }
            }
            used
        })
    };

    let mut problems = Vec::new();
    if let Err(now_err) = verify(unix(at)) {
        let path = apparent_path(&infos);
        let mut settled = false;
        for t in probe_times(&infos, &path) {
            match verify(t) {
                Ok(used) => {
                    problems.extend(time_problems(&infos, &used, at));
                    settled = true;
                    break;
                }
                Err(e) if is_time_error(&e) => continue,
                Err(e) => {
                    problems.extend(time_problems(&infos, &path, at));
                    problems.extend(trust_problem(&e, &infos, &path, anchors));
                    settled = true;
                    break;
                }
            }
        }
        if !settled {
            // The windows of the path do not overlap (or dates are unreadable): the time
            // problems are all that can be said.
            problems.extend(time_problems(&infos, &path, at));
        }
        if problems.is_empty() {
            // Path building failed now but succeeded at the probe time on a path that is
            // in its window now: only a webpki limit (budget) can do this. Say what it said.
            problems.push(CertProblem::Other {
                detail: format!("{now_err:?}"),
            });
        }
    }
    if let Some(names) = names
        && let Some(p) = name_problem(&leaf, leaf_der.as_ref(), names)
    {
        problems.push(p);
    }
    CertVerdict { problems }
}

fn trust_problem(
    e: &webpki::Error,
    infos: &[Info<'_>],
    path: &[usize],
    anchors: &Anchors,
) -> Vec<CertProblem> {
    use webpki::Error as E;
    let mut out = Vec::new();
    // A certificate the validator could not read: say which, since it may be the gap.
    for (i, info) in infos.iter().enumerate().skip(1) {
        if info.cert.is_none() {
            out.push(CertProblem::Malformed {
                index: Some(i),
                detail: "not a DER X.509 certificate".to_owned(),
            });
        }
    }
    let p = match e {
        E::UnknownIssuer => unknown_issuer(infos, path, anchors),
        E::InvalidSignatureForPublicKey => bad_signature(infos, path, anchors),
        E::UnsupportedSignatureAlgorithmContext(_)
        | E::UnsupportedSignatureAlgorithmForPublicKeyContext(_)
        | E::SignatureAlgorithmMismatch => CertProblem::UnsupportedAlgorithm {
            detail: format!("{e:?}"),
        },
        E::RequiredEkuNotFoundContext(_) | E::EmptyEkuExtension => CertProblem::WrongEku,
        E::CaUsedAsEndEntity => CertProblem::CaAsLeaf,
        E::EndEntityUsedAsCa => CertProblem::IssuerNotCa {
            index: path.iter().skip(1).copied().find(|&i| !infos[i].is_ca),
        },
        E::PathLenConstraintViolated => CertProblem::PathLength,
        E::NameConstraintViolation => CertProblem::NameConstraints,
        E::CertDistrusted => CertProblem::Distrusted,
        E::BadDer
        | E::BadDerTime
        | E::TrailingData(_)
        | E::MalformedExtensions
        | E::ExtensionValueInvalid
        | E::InvalidCertValidity
        | E::InvalidSerialNumber
        | E::UnsupportedCertVersion => CertProblem::Malformed {
            index: None,
            detail: format!("{e:?}"),
        },
        other => CertProblem::Other {
            detail: format!("{other:?}"),
        },
    };
    if !out.contains(&p) {
        out.push(p);
    }
    out
}

fn unknown_issuer(infos: &[Info<'_>], path: &[usize], anchors: &Anchors) -> CertProblem {
    let last = *path
        .last()
        .expect("the apparent path always starts with the leaf");
    let info = &infos[last];
    if info.self_issued() {
        if last == 0 {
            return CertProblem::SelfSignedLeaf {
                subject: info.subject.clone(),
            };
        }
        return CertProblem::UntrustedRoot {
            subject: info.subject.clone(),
            index: last,
        };
    }
    if let Some(issuer) = info.issuer_name()
        && anchors.has_subject(issuer)
    {
        // An anchor of that name exists but path building still failed on it.
        return bad_signature(infos, path, anchors);
    }
    CertProblem::IssuerNotFound {
        issuer: info.issuer.clone(),
        index: last,
    }
}

fn bad_signature(infos: &[Info<'_>], path: &[usize], anchors: &Anchors) -> CertProblem {
    let failing = |child: usize| CertProblem::BadSignature {
        index: Some(child),
        subject: Some(infos[child].subject.clone()),
    };
    for pair in path.windows(2) {
        let (child, parent) = (pair[0], pair[1]);
        if let (Some(c), Some(p)) = (&infos[child].cert, &infos[parent].cert)
            && c.verify_signature(Some(p.public_key())).is_err()
        {
            return failing(child);
        }
    }
    let last = *path
        .last()
        .expect("the apparent path always starts with the leaf");
    if let (Some(c), Some(issuer)) = (&infos[last].cert, infos[last].issuer_name()) {
        let named: Vec<&TrustAnchor<'_>> = anchors
            .as_slice()
            .iter()
            .filter(|a| a.subject.as_ref() == issuer)
            .collect();
        if !named.is_empty() && !named.iter().any(|a| signed_by_anchor(c, a)) {
            return failing(last);
        }
    }
    CertProblem::BadSignature {
        index: None,
        subject: None,
    }
}

fn name_problem(
    leaf: &EndEntityCert<'_>,
    leaf_der: &[u8],
    names: &[DomainName],
) -> Option<CertProblem> {
    for name in names {
        let Ok(server_name) = ServerName::try_from(name.as_str()) else {
            continue;
        };
        match leaf.verify_is_valid_for_subject_name(&server_name) {
            Ok(()) => return None,
            Err(webpki::Error::CertNotValidForName(_)) => {}
            Err(e) => {
                return Some(CertProblem::Malformed {
                    index: Some(0),
                    detail: format!("the subject alternative names cannot be read: {e:?}"),
                });
            }
        }
    }
    let (dns, ips) = san_names(leaf_der);
    let mut presented = dns;
    presented.extend(ips.iter().map(IpAddr::to_string));
    Some(CertProblem::HostMismatch {
        expected: names.to_vec(),
        presented,
    })
}

/// The SAN dNSNames and iPAddresses of a certificate, in certificate order; empty when the
/// certificate or its SAN extension cannot be read.
fn san_names(der: &[u8]) -> (Vec<String>, Vec<IpAddr>) {
    let mut dns_names = Vec::new();
    let mut ip_addresses = Vec::new();
    if let Ok((_, x)) = X509Certificate::from_der(der)
        && let Ok(Some(san)) = x.subject_alternative_name()
    {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(d) => dns_names.push((*d).to_owned()),
                GeneralName::IPAddress(b) => {
                    if let Ok(v4) = <[u8; 4]>::try_from(*b) {
                        ip_addresses.push(IpAddr::from(v4));
                    } else if let Ok(v6) = <[u8; 16]>::try_from(*b) {
                        ip_addresses.push(IpAddr::from(v6));
                    }
                }
                _ => {}
            }
        }
    }
    (dns_names, ip_addresses)
}

// ---------------------------------------------------------------------------------------
// The raw pieces webpki compares, as x509-parser hands them out.

/// The certificate in `der` if x509-parser reads one with nothing after it.
pub(crate) fn parse_exact(der: &[u8]) -> Option<X509Certificate<'_>> {
    match X509Certificate::from_der(der) {
        Ok(([], cert)) => Some(cert),
        _ => None,
    }
}

/// The contents of one DER value (without its tag and length), the form in which
/// [`TrustAnchor`] stores a Name and a SubjectPublicKeyInfo.
fn der_contents(der: &[u8]) -> Option<&[u8]> {
    Any::from_der(der).ok().map(|(_, any)| any.data)
}

/// A Name's contents, without its SEQUENCE header.
fn name_contents<'a>(name: &X509Name<'a>) -> Option<&'a [u8]> {
    der_contents(name.as_raw())
}

/// The issuer Name without its SEQUENCE header (as [`TrustAnchor::subject`] stores names).
pub(crate) fn issuer_contents<'a>(cert: &X509Certificate<'a>) -> Option<&'a [u8]> {
    name_contents(&cert.tbs_certificate.issuer)
}

/// The subject Name without its SEQUENCE header.
fn subject_contents<'a>(cert: &X509Certificate<'a>) -> Option<&'a [u8]> {
    name_contents(&cert.tbs_certificate.subject)
}

/// Issuer and subject are the same Name (RFC 5280 §3.3: a self-issued certificate).
fn self_issued(cert: &X509Certificate<'_>) -> bool {
    issuer_contents(cert).is_some_and(|issuer| subject_contents(cert) == Some(issuer))
}

/// Self-signed: self-issued, and the signature verifies with the certificate's own key.
fn self_signed(cert: &X509Certificate<'_>) -> bool {
    self_issued(cert) && cert.verify_signature(None).is_ok()
}

/// The contents of `spki` if it is exactly one DER SubjectPublicKeyInfo (RFC 5280 §4.1:
/// SEQUENCE { AlgorithmIdentifier, BIT STRING }, nothing inside or after it besides).
pub(crate) fn spki_contents(spki: &[u8]) -> Option<&[u8]> {
    match SubjectPublicKeyInfo::from_der(spki) {
        Ok(([], parsed)) if parsed.raw.len() == spki.len() => der_contents(spki),
        _ => None,
    }
}

/// Whether `cert`'s signature verifies with the key of `anchor`.
fn signed_by_anchor(cert: &X509Certificate<'_>, anchor: &TrustAnchor<'_>) -> bool {
    let der = webpki::spki_for_anchor(anchor);
    SubjectPublicKeyInfo::from_der(der.as_ref())
        .is_ok_and(|(_, spki)| cert.verify_signature(Some(&spki)).is_ok())
}

// ---------------------------------------------------------------------------------------
// Description.

/// Why a certificate could not be described.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DescribeError {
    /// The bytes are not a DER X.509 certificate.
    #[error("not a DER X.509 certificate: {detail}")]
    NotACertificate {
        /// What x509-parser said.
        detail: String,
    },
    /// Bytes follow the certificate.
    #[error("{count} bytes follow the certificate")]
    TrailingData {
        /// How many.
        count: usize,
    },
}

/// What a certificate says, for facts and output.
///
/// Fingerprints are upper-case hex without separators, the form TLSA records use, so
/// `spki_sha256` can be compared with the data of a `3 1 1` record directly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertSummary {
    /// Subject DN (RFC 4514-like, as x509-parser prints it).
    pub subject: String,
    /// Issuer DN.
    pub issuer: String,
    /// SAN dNSNames, as written in the certificate.
    pub dns_names: Vec<String>,
    /// SAN iPAddresses.
    pub ip_addresses: Vec<IpAddr>,
    /// notBefore.
    #[serde(with = "time::serde::rfc3339")]
    pub not_before: OffsetDateTime,
    /// notAfter.
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    /// Key type and size: "ECDSA P-256", "RSA 2048", "Ed25519", …
    pub key: String,
    /// Serial number, upper-case hex.
    pub serial: String,
    /// SHA-256 of the whole certificate (DER), upper-case hex.
    pub sha256: String,
    /// SHA-256 of the SubjectPublicKeyInfo (DER), upper-case hex.
    pub spki_sha256: String,
    /// basicConstraints cA = true.
    pub is_ca: bool,
    /// Issuer = subject and the signature verifies with the certificate's own key.
    pub self_signed: bool,
}

pub(crate) fn hex_upper(bytes: &[u8]) -> String {
    use fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02X}");
            s
        })
}

fn sha256(bytes: &[u8]) -> String {
    hex_upper(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
}

/// The size in bits of an RSA modulus (big-endian, leading zero octets ignored).
fn rsa_bits(modulus: &[u8]) -> u64 {
    BigUint::from_bytes_be(modulus).bits()
}

fn key_description(spki: &SubjectPublicKeyInfo<'_>) -> String {
    let alg = spki.algorithm.algorithm.to_id_string();
    let bits = || match spki.parsed() {
        Ok(x509_parser::public_key::PublicKey::RSA(rsa)) => rsa_bits(rsa.modulus),
        _ => 0,
    };
    match alg.as_str() {
        "1.2.840.113549.1.1.1" => format!("RSA {}", bits()),
        "1.2.840.113549.1.1.10" => format!("RSA-PSS {}", bits()),
        "1.2.840.10045.2.1" => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|o| o.to_id_string());
            match curve.as_deref() {
                Some("1.2.840.10045.3.1.7") => "ECDSA P-256".to_owned(),
                Some("1.3.132.0.34") => "ECDSA P-384".to_owned(),
                Some("1.3.132.0.35") => "ECDSA P-521".to_owned(),
                Some(other) => format!("ECDSA (curve {other})"),
                None => "ECDSA (unnamed curve)".to_owned(),
            }
        }
        "1.3.101.112" => "Ed25519".to_owned(),
        "1.3.101.113" => "Ed448".to_owned(),
        other => format!("unknown key type {other}"),
    }
}

/// Describes one certificate (DER). Lenient about extensions: an unreadable SAN extension
/// yields empty name lists rather than an error, since the rest is still worth showing.
pub fn describe(der: &[u8]) -> Result<CertSummary, DescribeError> {
    let (rest, x) = X509Certificate::from_der(der).map_err(|e| DescribeError::NotACertificate {
        detail: e.to_string(),
    })?;
    if !rest.is_empty() {
        return Err(DescribeError::TrailingData { count: rest.len() });
    }
    let (dns_names, ip_addresses) = san_names(der);
    Ok(CertSummary {
        subject: x.subject().to_string(),
        issuer: x.issuer().to_string(),
        dns_names,
        ip_addresses,
        not_before: x.validity().not_before.to_datetime(),
        not_after: x.validity().not_after.to_datetime(),
        key: key_description(x.public_key()),
        serial: hex_upper(x.raw_serial()),
        sha256: sha256(der),
        spki_sha256: sha256(x.public_key().raw),
        is_ca: x.is_ca(),
        self_signed: self_signed(&x),
    })
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;
    use mxprobe_testpki::{CertAuthority, KeyKind, LeafSpec, Validity, self_signed_leaf};

    fn window() -> Validity {
        Validity::new(
            datetime!(2024-01-01 0:00 UTC),
            datetime!(2026-01-01 0:00 UTC),
        )
    }

    #[test]
    fn spki_contents_takes_exactly_one_spki() {
        let leaf = self_signed_leaf(&LeafSpec::new(&["mx.example.com"], window())).unwrap();
        let anchor = Anchors::anchor_from_der(leaf.der()).unwrap();
        let spki = parse_exact(leaf.der()).unwrap().public_key().raw.to_vec();
        let mut trailing = spki.clone();
        trailing.push(0);
        // One octet of junk inside the SEQUENCE, after the key (a P-256 SPKI has a short-form
        // length).
        let mut inside = spki.clone();
        inside[1] += 1;
        inside.push(0);
        // (case, input, the contents expected)
        type Case<'a> = (&'a str, &'a [u8], Option<&'a [u8]>);
        let cases: &[Case<'_>] = &[
            (
                "a P-256 key",
                &spki,
                Some(anchor.subject_public_key_info.as_ref()),
            ),
            ("empty", b"", None),
            ("truncated", &spki[..spki.len() - 1], None),
            ("a byte after it", &trailing, None),
            ("a byte inside it after the key", &inside, None),
            ("empty SEQUENCE", b"\x30\x00", None),
            ("indefinite length", b"\x30\x80\x00\x00", None),
            // RFC 5280 §4.1.1.2: an AlgorithmIdentifier starts with its OID.
            (
                "algorithm without OID",
                b"\x30\x06\x30\x00\x03\x02\x00\x00",
                None,
            ),
        ];
        for (name, input, want) in cases {
            assert_eq!(spki_contents(input), *want, "{name}");
        }
    }

    #[test]
    fn names_and_keys_are_the_bytes_webpki_stores() {
        let root = CertAuthority::root("Root", window(), KeyKind::EcdsaP256).unwrap();
        let leaf = root
            .leaf(&LeafSpec::new(&["mx.example.com"], window()))
            .unwrap();
        let root_anchor = Anchors::anchor_from_der(root.cert().der()).unwrap();
        let leaf_anchor = Anchors::anchor_from_der(leaf.der()).unwrap();
        let root_x = parse_exact(root.cert().der()).unwrap();
        let leaf_x = parse_exact(leaf.der()).unwrap();
        assert_eq!(
            subject_contents(&root_x),
            Some(root_anchor.subject.as_ref())
        );
        assert_eq!(issuer_contents(&root_x), Some(root_anchor.subject.as_ref()));
        assert_eq!(issuer_contents(&leaf_x), Some(root_anchor.subject.as_ref()));
        assert_eq!(
            subject_contents(&leaf_x),
            Some(leaf_anchor.subject.as_ref())
        );
        assert!(signed_by_anchor(&leaf_x, &root_anchor));
        assert!(signed_by_anchor(&root_x, &root_anchor));
        assert!(!signed_by_anchor(&leaf_x, &leaf_anchor));
        assert!(self_signed(&root_x) && !self_issued(&leaf_x));
    }

    #[test]
    fn self_issued_is_not_self_signed() {
        // An intermediate named like its root: issuer = subject, but the root's key signed it.
        let root = CertAuthority::root("Root", window(), KeyKind::EcdsaP256).unwrap();
        let int = root
            .intermediate("Root", window(), KeyKind::EcdsaP256)
            .unwrap();
        let x = parse_exact(int.cert().der()).unwrap();
        assert!(self_issued(&x));
        assert!(!self_signed(&x));
        assert!(!describe(int.cert().der()).unwrap().self_signed);
    }

    #[test]
    fn key_description_of_rsa_and_p384_roots() {
        // ring cannot generate RSA keys, so the lab has none; the Mozilla roots do.
        let roots = Anchors::mozilla();
        let key_of = |name: &[u8]| {
            let anchor = roots
                .as_slice()
                .iter()
                .find(|a| a.subject.as_ref().windows(name.len()).any(|w| w == name))
                .unwrap();
            let der = webpki::spki_for_anchor(anchor);
            let (rest, spki) = SubjectPublicKeyInfo::from_der(der.as_ref()).unwrap();
            assert!(rest.is_empty());
            key_description(&spki)
        };
        assert_eq!(key_of(b"ISRG Root X1"), "RSA 4096");
        assert_eq!(key_of(b"ISRG Root X2"), "ECDSA P-384");
        assert_eq!(key_of(b"DigiCert Global Root G2"), "RSA 2048");
    }

    #[test]
    fn rsa_bits_counts_the_modulus() {
        assert_eq!(rsa_bits(&[0x00, 0x80, 0x00]), 16);
        assert_eq!(rsa_bits(&[0x01, 0x00]), 9);
        assert_eq!(rsa_bits(&[0x00]), 0);
        assert_eq!(rsa_bits(&[]), 0);
    }

    #[test]
    fn describe_reports_key_types() {
        for (kind, want) in [
            (KeyKind::EcdsaP256, "ECDSA P-256"),
            (KeyKind::EcdsaP384, "ECDSA P-384"),
            (KeyKind::Ed25519, "Ed25519"),
        ] {
            let mut spec = LeafSpec::new(&["mx.example.com"], window());
            spec.key = kind;
            let leaf = self_signed_leaf(&spec).unwrap();
            let s = describe(leaf.der()).unwrap();
            assert_eq!(s.key, want);
            assert!(s.self_signed, "{want}");
            assert!(!s.is_ca);
        }
    }

    #[test]
    fn describe_marks_issued_certs_not_self_signed() {
        let root = CertAuthority::root("Root", window(), KeyKind::EcdsaP256).unwrap();
        let leaf = root
            .leaf(&LeafSpec::new(&["mx.example.com"], window()))
            .unwrap();
        let s = describe(leaf.der()).unwrap();
        assert!(!s.self_signed);
        let r = describe(root.cert().der()).unwrap();
        assert!(r.self_signed && r.is_ca);
        assert_eq!(s.issuer, r.subject);
    }

    #[test]
    fn describe_rejects_trailing_data_and_garbage() {
        let leaf = self_signed_leaf(&LeafSpec::new(&["mx.example.com"], window())).unwrap();
        let mut bytes = leaf.der().to_vec();
        bytes.push(0);
        assert_eq!(
            describe(&bytes),
            Err(DescribeError::TrailingData { count: 1 })
        );
        assert!(matches!(
            describe(b"\x30\x03\x02\x01\x01"),
            Err(DescribeError::NotACertificate { .. })
        ));
    }

    #[test]
    fn result_types_and_codes() {
        let t = datetime!(2025-01-01 0:00 UTC);
        let cases: Vec<(CertProblem, ResultType, &str)> = vec![
            (
                CertProblem::Expired {
                    which: ChainPosition::Leaf,
                    subject: "CN=a".into(),
                    not_after: t,
                },
                ResultType::CertificateExpired,
                "leaf-expired",
            ),
            (
                CertProblem::Expired {
                    which: ChainPosition::Intermediate { index: 1 },
                    subject: "CN=a".into(),
                    not_after: t,
                },
                ResultType::CertificateExpired,
                "intermediate-expired",
            ),
            (
                CertProblem::NotYetValid {
                    which: ChainPosition::Leaf,
                    subject: "CN=a".into(),
                    not_before: t,
                },
                ResultType::CertificateExpired,
                "leaf-not-yet-valid",
            ),
            (
                CertProblem::HostMismatch {
                    expected: vec![],
                    presented: vec![],
                },
                ResultType::CertificateHostMismatch,
                "name-mismatch",
            ),
            (
                CertProblem::WrongEku,
                ResultType::CertificateNotTrusted,
                "no-server-auth-eku",
            ),
            (
                CertProblem::EmptyChain,
                ResultType::ValidationFailure,
                "empty-chain",
            ),
        ];
        for (p, rt, code) in cases {
            assert_eq!(p.result_type(), rt, "{p:?}");
            assert_eq!(p.reason_code(), code, "{p:?}");
        }
    }

    #[test]
    fn problems_round_trip_through_json() {
        let p = CertProblem::Expired {
            which: ChainPosition::Intermediate { index: 2 },
            subject: "CN=x".into(),
            not_after: datetime!(2025-01-01 0:00 UTC),
        };
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(
            json,
            r#"{"kind":"expired","which":{"position":"intermediate","index":2},"subject":"CN=x","not_after":"2025-01-01T00:00:00Z"}"#
        );
        assert_eq!(serde_json::from_str::<CertProblem>(&json).unwrap(), p);
    }

    #[test]
    fn verified_path_leaves_out_what_the_path_does_not_use() {
        let root = CertAuthority::root("Root", window(), KeyKind::EcdsaP256).unwrap();
        let int = root
            .intermediate("Intermediate", window(), KeyKind::EcdsaP256)
            .unwrap();
        let stray = CertAuthority::root("Stray", window(), KeyKind::EcdsaP256).unwrap();
        let leaf = int
            .leaf(&LeafSpec::new(&["mx.example.com"], window()))
            .unwrap();
        let anchors = Anchors::from_pem(root.cert().pem().as_bytes()).unwrap();
        let t = datetime!(2025-01-01 0:00 UTC);
        // leaf, stray CA, intermediate, root: the path is the leaf and the intermediate.
        let mut chain = vec![leaf.der().clone(), stray.cert().der().clone()];
        chain.extend(int.full_chain_for(&leaf).into_iter().skip(1));
        assert_eq!(chain.len(), 4);
        assert_eq!(verified_path(&chain, t, &anchors), Some(vec![0, 2]));
        assert_eq!(verified_path(&chain, t, &Anchors::empty()), None);
        assert_eq!(
            verified_path(&chain, datetime!(2027-01-01 0:00 UTC), &anchors),
            None
        );
        assert_eq!(verified_path(&[], t, &anchors), None);
    }

    #[test]
    fn wrong_eku_is_named() {
        let root = CertAuthority::root("Root", window(), KeyKind::EcdsaP256).unwrap();
        let mut spec = LeafSpec::new(&["mx.example.com"], window());
        spec.server_auth = false;
        let leaf = root.leaf(&spec).unwrap();
        let anchors = Anchors::from_pem(root.cert().pem().as_bytes()).unwrap();
        let v = judge_pkix(
            &root.chain_for(&leaf),
            datetime!(2025-01-01 0:00 UTC),
            &anchors,
        );
        assert_eq!(v.problems, vec![CertProblem::WrongEku]);
    }

    #[test]
    fn bad_signature_names_the_certificate() {
        // A leaf issued by an impostor CA with the same name as the trusted root.
        let root = CertAuthority::root("Root", window(), KeyKind::EcdsaP256).unwrap();
        let impostor = CertAuthority::root("Root", window(), KeyKind::EcdsaP256).unwrap();
        let leaf = impostor
            .leaf(&LeafSpec::new(&["mx.example.com"], window()))
            .unwrap();
        let anchors = Anchors::from_pem(root.cert().pem().as_bytes()).unwrap();
        let v = judge_pkix(
            &[leaf.der().clone()],
            datetime!(2025-01-01 0:00 UTC),
            &anchors,
        );
        assert_eq!(
            v.problems,
            vec![CertProblem::BadSignature {
                index: Some(0),
                subject: Some("O=mxprobe lab, CN=mx.example.com".into()),
            }]
        );
    }

    #[test]
    fn empty_and_garbage_chains() {
        let anchors = Anchors::empty();
        let t = datetime!(2025-01-01 0:00 UTC);
        assert_eq!(
            judge_pkix(&[], t, &anchors).problems,
            vec![CertProblem::EmptyChain]
        );
        let v = judge_pkix(&[CertificateDer::from(vec![1u8, 2, 3])], t, &anchors);
        assert!(matches!(
            v.problems.as_slice(),
            [CertProblem::Malformed { index: Some(0), .. }]
        ));
        assert_eq!(v.result_types(), vec![ResultType::ValidationFailure]);
    }
}
