//! Judging a presented certificate chain, and describing one certificate.
//!
//! [`judge_for_host`] / [`judge_for_names`] / [`judge_pkix`] take the chain a server sent
//! (DER, leaf first), the time (a parameter; this module never reads the clock) and a set of
//! [`Anchors`](super::Anchors), and return a [`CertVerdict`] listing **every** problem, not
//! just the first: RFC 8460 §4.3 result types are non-exclusive, so an expired certificate
//! for the wrong name is two failures. Path building and name matching are rustls-webpki's (with the
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

mod judge;
mod summary;
mod verdict;
mod x509;

pub use judge::{judge_for_host, judge_for_names, judge_pkix};
pub(crate) use summary::hex_upper;
pub use summary::{CertSummary, DescribeError, describe};
pub use verdict::{CertProblem, CertVerdict, ChainPosition};
pub(crate) use x509::{issuer_contents, parse_exact, spki_contents};

#[cfg(test)]
mod fixtures {
    use mxprobe_testpki::Validity;
    use time::macros::datetime;

    pub(super) fn window() -> Validity {
        Validity::new(
            datetime!(2024-01-01 0:00 UTC),
            datetime!(2026-01-01 0:00 UTC),
        )
    }
}
