//! Certificates: trust anchors, chain judgement and description. Pure: no network I/O.
//!
//! - [`anchors`]: the trust-anchor set (Mozilla roots via webpki-roots, extra PEM roots).
//! - [`cert`]: judging a presented chain for a reference name at a given time
//!   (rustls-webpki), with every problem named and mapped to its RFC 8460 result type;
//!   describing a certificate (x509-parser) for facts and output.
//!
//! The SMTP and HTTPS probes record the chain a server presents; these functions judge it
//! afterwards, so one handshake yields the MTA-STS verdict and the DANE verdict
//! ([`crate::dane`]) alike.

pub mod anchors;
pub mod cert;

pub use anchors::{AnchorError, Anchors};
pub use cert::{
    CertProblem, CertSummary, CertVerdict, ChainPosition, DescribeError, describe, judge_for_host,
    judge_for_names, judge_pkix,
};
