//! The closed vocabularies of RFC 8460 §4: result types and policy types.
//!
//! The wire strings are the RFC's (IANA "STARTTLS Validation Result Types"), exactly.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A TLS-RPT result type (RFC 8460 §4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ResultType {
    /// §4.3.1: the MX did not offer STARTTLS, or refused it.
    StarttlsNotSupported,
    /// §4.3.1: the certificate does not carry a name the policy requires.
    CertificateHostMismatch,
    /// §4.3.1: the certificate has expired.
    CertificateExpired,
    /// §4.3.1: the chain does not lead to a trusted anchor.
    CertificateNotTrusted,
    /// §4.3.1: any other failure; a failure-reason-code says which.
    ValidationFailure,
    /// §4.3.3: a DNSSEC-validated TLSA RRset with no usable record.
    TlsaInvalid,
    /// §4.3.3: the resolver returned no valid (DNSSEC-validated) records.
    DnssecInvalid,
    /// §4.3.3: DANE is required but no validated TLSA records exist.
    DaneRequired,
    /// §4.3.2: the MTA-STS policy could not be retrieved.
    StsPolicyFetchError,
    /// §4.3.2: the MTA-STS policy did not validate.
    StsPolicyInvalid,
    /// §4.3.2: the policy host's certificate failed PKIX validation.
    StsWebpkiInvalid,
}

impl ResultType {
    /// Every result type, in the RFC's order.
    pub const ALL: [Self; 11] = [
        Self::StarttlsNotSupported,
        Self::CertificateHostMismatch,
        Self::CertificateExpired,
        Self::CertificateNotTrusted,
        Self::ValidationFailure,
        Self::TlsaInvalid,
        Self::DnssecInvalid,
        Self::DaneRequired,
        Self::StsPolicyFetchError,
        Self::StsPolicyInvalid,
        Self::StsWebpkiInvalid,
    ];

    /// The RFC's wire string.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::StarttlsNotSupported => "starttls-not-supported",
            Self::CertificateHostMismatch => "certificate-host-mismatch",
            Self::CertificateExpired => "certificate-expired",
            Self::CertificateNotTrusted => "certificate-not-trusted",
            Self::ValidationFailure => "validation-failure",
            Self::TlsaInvalid => "tlsa-invalid",
            Self::DnssecInvalid => "dnssec-invalid",
            Self::DaneRequired => "dane-required",
            Self::StsPolicyFetchError => "sts-policy-fetch-error",
            Self::StsPolicyInvalid => "sts-policy-invalid",
            Self::StsWebpkiInvalid => "sts-webpki-invalid",
        }
    }

    /// Whether the result concerns the policy as a whole (fetching or validating the
    /// MTA-STS policy) rather than one MX session.
    pub const fn is_policy_level(self) -> bool {
        matches!(
            self,
            Self::StsPolicyFetchError | Self::StsPolicyInvalid | Self::StsWebpkiInvalid
        )
    }
}

impl fmt::Display for ResultType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ResultType {
    type Err = UnknownValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownValue(s.to_owned()))
    }
}

/// A TLS-RPT policy type (RFC 8460 §4.4: `policy-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PolicyType {
    /// DANE (RFC 7672): a TLSA RRset.
    Tlsa,
    /// MTA-STS (RFC 8461).
    Sts,
    /// Neither policy applied.
    NoPolicyFound,
}

impl PolicyType {
    /// The RFC's wire string.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Tlsa => "tlsa",
            Self::Sts => "sts",
            Self::NoPolicyFound => "no-policy-found",
        }
    }
}

impl fmt::Display for PolicyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for PolicyType {
    type Err = UnknownValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Self::Tlsa, Self::Sts, Self::NoPolicyFound]
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| UnknownValue(s.to_owned()))
    }
}

/// A string that is not one of the RFC's values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a value RFC 8460 defines")]
pub struct UnknownValue(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_strings_round_trip() {
        for r in ResultType::ALL {
            let json = serde_json::to_string(&r).unwrap();
            assert_eq!(json, format!("\"{}\"", r.as_str()));
            assert_eq!(r.as_str().parse::<ResultType>().unwrap(), r);
            assert_eq!(serde_json::from_str::<ResultType>(&json).unwrap(), r);
        }
        for p in [PolicyType::Tlsa, PolicyType::Sts, PolicyType::NoPolicyFound] {
            assert_eq!(
                serde_json::to_string(&p).unwrap(),
                format!("\"{}\"", p.as_str())
            );
            assert_eq!(p.as_str().parse::<PolicyType>().unwrap(), p);
        }
        assert!("STS".parse::<PolicyType>().is_err());
        assert!("certificate_expired".parse::<ResultType>().is_err());
    }
}
