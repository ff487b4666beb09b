//! The departures from RFC 8460 the tolerant reader accepts.

use std::fmt;

/// A departure from RFC 8460 that the reader accepted, with the JSON path where it was
/// found (`$` is the report, e.g. `$.policies[0].policy.mx-host`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Quirk {
    /// `mx-host` was a bare string (the RFC's Appendix B before erratum 6241); read as a
    /// one-element array.
    MxHostWasString {
        /// Where.
        path: String,
    },
    /// An `sts` policy without `mx-host` (Microsoft, Mail.ru); read as no patterns.
    MissingMxHost {
        /// The path `mx-host` would have had.
        path: String,
    },
    /// A date-time without a time zone (Microsoft, 2023); read as UTC.
    DateTimeWithoutZone {
        /// Where.
        path: String,
        /// The text as found.
        value: String,
    },
    /// A `tlsa` `policy-string` holding one string that is itself a JSON array of strings
    /// (Microsoft: `["[\"3 1 1 …\",\"3 1 1 …\"]"]`); the inner array was used.
    PolicyStringDoubleEncoded {
        /// Where.
        path: String,
    },
    /// `policy-string` was a bare string; read as a one-element array.
    PolicyStringWasString {
        /// Where.
        path: String,
    },
    /// An `sts` or `tlsa` policy without `policy-string` (Mail.ru); read as empty.
    MissingPolicyString {
        /// The path `policy-string` would have had.
        path: String,
    },
    /// A `policies` element without `failure-details` (Google, when nothing failed); read
    /// as no failures.
    MissingFailureDetails {
        /// The path `failure-details` would have had.
        path: String,
    },
    /// `policies` was a single object rather than an array; read as one policy.
    PoliciesWasObject {
        /// Where.
        path: String,
    },
    /// A `result-type` RFC 8460 and the IANA registry do not define; kept verbatim.
    UnknownResultType {
        /// Where.
        path: String,
        /// The value.
        value: String,
    },
    /// A `policy-type` other than `tlsa`, `sts` and `no-policy-found`; the whole
    /// `policies` element was skipped.
    UnknownPolicyTypeSkipped {
        /// The path of the skipped `policies` element.
        path: String,
        /// The policy type found.
        value: String,
    },
    /// An IP address not in its canonical text form (RFC 5952 for IPv6), such as the
    /// RFC's own `2001:db8:abcd:0012::1`.
    NonCanonicalIp {
        /// Where.
        path: String,
        /// The text as found.
        found: String,
        /// The canonical form that was read.
        canonical: String,
    },
    /// A domain name (or mx pattern) with capitals, a trailing dot or U-labels; read in
    /// canonical A-label form.
    NonCanonicalDomain {
        /// Where.
        path: String,
        /// The text as found.
        found: String,
        /// The canonical form that was read.
        canonical: String,
    },
    /// An optional member written as `""` (mox does this); read as absent.
    EmptyOptionalField {
        /// Where.
        path: String,
    },
    /// An optional member written as `null`; read as absent.
    NullOptionalField {
        /// Where.
        path: String,
    },
    /// A member RFC 8460 does not define; ignored.
    UnknownField {
        /// Where.
        path: String,
    },
    /// The JSON text starts with a UTF-8 byte order mark, which RFC 8259 §8.1 forbids
    /// writers to add and lets parsers ignore; some reporters send one. Ignored (path `$`).
    ByteOrderMark {
        /// Where (`$`).
        path: String,
    },
}

impl Quirk {
    /// The JSON path the quirk was found at.
    pub fn path(&self) -> &str {
        match self {
            Self::MxHostWasString { path }
            | Self::MissingMxHost { path }
            | Self::DateTimeWithoutZone { path, .. }
            | Self::PolicyStringDoubleEncoded { path }
            | Self::PolicyStringWasString { path }
            | Self::MissingPolicyString { path }
            | Self::MissingFailureDetails { path }
            | Self::PoliciesWasObject { path }
            | Self::UnknownResultType { path, .. }
            | Self::UnknownPolicyTypeSkipped { path, .. }
            | Self::NonCanonicalIp { path, .. }
            | Self::NonCanonicalDomain { path, .. }
            | Self::EmptyOptionalField { path }
            | Self::NullOptionalField { path }
            | Self::UnknownField { path }
            | Self::ByteOrderMark { path } => path,
        }
    }
}

impl fmt::Display for Quirk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MxHostWasString { path } => write!(
                f,
                "{path} is a string; RFC 8460 (erratum 6241) makes it an array of strings"
            ),
            Self::MissingMxHost { path } => {
                write!(
                    f,
                    "{path} is missing from an sts policy; read as no patterns"
                )
            }
            Self::DateTimeWithoutZone { path, value } => write!(
                f,
                "{path} {value:?} has no time zone; RFC 3339 requires one, read as UTC"
            ),
            Self::PolicyStringDoubleEncoded { path } => write!(
                f,
                "{path} holds a JSON array encoded inside a string; the inner array was used"
            ),
            Self::PolicyStringWasString { path } => {
                write!(
                    f,
                    "{path} is a string; RFC 8460 §4.4 makes it an array of strings"
                )
            }
            Self::MissingPolicyString { path } => {
                write!(f, "{path} is missing; read as an empty policy")
            }
            Self::MissingFailureDetails { path } => {
                write!(f, "{path} is missing; read as no failures")
            }
            Self::PoliciesWasObject { path } => {
                write!(
                    f,
                    "{path} is a single object; RFC 8460 §4.4 makes it an array"
                )
            }
            Self::UnknownResultType { path, value } => write!(
                f,
                "{path} {value:?} is not a result type RFC 8460 §4.3 defines; kept as written"
            ),
            Self::UnknownPolicyTypeSkipped { path, value } => write!(
                f,
                "{path} has policy-type {value:?}, which is not tlsa, sts or no-policy-found; \
                 that policy entry was skipped"
            ),
            Self::NonCanonicalIp {
                path,
                found,
                canonical,
            } => write!(
                f,
                "{path} {found:?} is not in canonical form (RFC 5952 for IPv6); read as {canonical}"
            ),
            Self::NonCanonicalDomain {
                path,
                found,
                canonical,
            } => write!(
                f,
                "{path} {found:?} is not a lower-case A-label name; read as {canonical}"
            ),
            Self::EmptyOptionalField { path } => {
                write!(f, "{path} is an empty string; read as absent")
            }
            Self::NullOptionalField { path } => write!(f, "{path} is null; read as absent"),
            Self::UnknownField { path } => {
                write!(f, "{path} is not a member RFC 8460 defines; ignored")
            }
            Self::ByteOrderMark { path } => write!(
                f,
                "{path} starts with a UTF-8 byte order mark, which RFC 8259 §8.1 forbids; ignored"
            ),
        }
    }
}
