//! What is wrong with a presented chain: each problem, its RFC 8460 result type and reason code.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::domain::DomainName;
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
    pub(super) fn of(index: usize) -> Self {
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
    /// The path rustls-webpki verifies at the time of judgement (server authentication, no
    /// name check), as indices into the chain: 0 for the leaf, then every intermediate the
    /// path uses, nearest the leaf first; certificates the path does not use and the anchor
    /// are not in it. `None` when no path verifies then. Not part of the serialized form.
    #[serde(skip)]
    pub verified_path: Option<Vec<usize>>,
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

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

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
}
