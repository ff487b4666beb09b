//! Validated DNS host and domain names.
//!
//! [`DomainName`] is the one name type mxprobe passes around: IDNA-converted to A-labels,
//! lower-cased, without the trailing root dot, and checked against the host-name rules
//! (LDH labels of 1–63 octets, at most 253 octets in all). Every comparison of names in
//! mxprobe (MX patterns, certificate names, report fields) happens on this form, so a
//! U-label, a capital letter or a trailing dot can never make two equal names differ.
//! Pure: no I/O.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a string is not a usable domain name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DomainError {
    /// The input was empty (or only a dot).
    #[error("the name is empty")]
    Empty,
    /// IDNA (UTS #46) conversion to A-labels failed.
    #[error("{input:?} is not a valid internationalised domain name (IDNA conversion failed)")]
    Idna {
        /// The name as given.
        input: String,
    },
    /// Two dots in a row, or a leading dot.
    #[error("{input:?} has an empty label (two dots in a row or a leading dot)")]
    EmptyLabel {
        /// The name as given.
        input: String,
    },
    /// A label longer than 63 octets.
    #[error("label {label:?} of {input:?} is {len} octets long; the limit is 63")]
    LabelTooLong {
        /// The name as given.
        input: String,
        /// The offending label.
        label: String,
        /// Its length in octets.
        len: usize,
    },
    /// The whole name is longer than 253 octets.
    #[error("{input:?} is {len} octets long; a domain name may have at most 253")]
    TooLong {
        /// The name as given.
        input: String,
        /// Its length in octets (A-label form, no trailing dot).
        len: usize,
    },
    /// A character other than letters, digits and hyphens.
    #[error(
        "label {label:?} of {input:?} contains {ch:?}; host names use only letters, digits and '-'"
    )]
    BadCharacter {
        /// The name as given.
        input: String,
        /// The offending label.
        label: String,
        /// The first character that is not allowed.
        ch: char,
    },
    /// A label that starts or ends with a hyphen.
    #[error("label {label:?} of {input:?} starts or ends with '-'")]
    HyphenAtEdge {
        /// The name as given.
        input: String,
        /// The offending label.
        label: String,
    },
    /// An IP address literal where a name is needed.
    #[error("{input:?} is an IP address, not a domain name")]
    IpLiteral {
        /// The name as given.
        input: String,
    },
    /// The top-level label is all digits, so the name could be taken for an address.
    #[error("{input:?} ends in an all-numeric label; no top-level domain is numeric")]
    NumericTld {
        /// The name as given.
        input: String,
    },
}

/// A host or mail domain name in canonical A-label form.
///
/// Invariants: non-empty, lower-case ASCII, no trailing dot, LDH labels of 1–63 octets
/// that neither start nor end with `-`, at most 253 octets, last label not all digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DomainName(String);

impl DomainName {
    /// Parses a name as a user or a DNS answer gives it: U-labels are converted to
    /// A-labels, case is folded and one trailing dot is removed.
    pub fn parse(input: &str) -> Result<Self, DomainError> {
        let trimmed = input.strip_suffix('.').unwrap_or(input);
        if trimmed.is_empty() {
            return Err(DomainError::Empty);
        }
        if trimmed.parse::<std::net::IpAddr>().is_ok()
            || trimmed
                .strip_prefix('[')
                .and_then(|s| s.strip_suffix(']'))
                .is_some_and(|s| s.parse::<std::net::IpAddr>().is_ok())
        {
            return Err(DomainError::IpLiteral {
                input: input.to_owned(),
            });
        }
        let ascii = if trimmed.is_ascii() {
            trimmed.to_ascii_lowercase()
        } else {
            idna::domain_to_ascii(trimmed).map_err(|_| DomainError::Idna {
                input: input.to_owned(),
            })?
        };
        Self::check_ascii(input, &ascii)?;
        if ascii.contains("xn--") && idna::domain_to_unicode(&ascii).1.is_err() {
            return Err(DomainError::Idna {
                input: input.to_owned(),
            });
        }
        Ok(Self(ascii))
    }

    /// Parses a name that must already be in A-label form (as RFC 8461 requires of policy
    /// `mx` values and RFC 8460 of report fields): a non-ASCII character is an error rather
    /// than something to convert.
    pub fn parse_a_label(input: &str) -> Result<Self, DomainError> {
        if let Some(ch) = input.chars().find(|c| !c.is_ascii()) {
            let label = input
                .split('.')
                .find(|l| l.contains(ch))
                .unwrap_or(input)
                .to_owned();
            return Err(DomainError::BadCharacter {
                input: input.to_owned(),
                label,
                ch,
            });
        }
        Self::parse(input)
    }

    fn check_ascii(input: &str, ascii: &str) -> Result<(), DomainError> {
        if ascii.is_empty() {
            return Err(DomainError::Empty);
        }
        if ascii.len() > 253 {
            return Err(DomainError::TooLong {
                input: input.to_owned(),
                len: ascii.len(),
            });
        }
        let mut last = "";
        for label in ascii.split('.') {
            if label.is_empty() {
                return Err(DomainError::EmptyLabel {
                    input: input.to_owned(),
                });
            }
            if label.len() > 63 {
                return Err(DomainError::LabelTooLong {
                    input: input.to_owned(),
                    label: label.to_owned(),
                    len: label.len(),
                });
            }
            if let Some(ch) = label
                .chars()
                .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
            {
                return Err(DomainError::BadCharacter {
                    input: input.to_owned(),
                    label: label.to_owned(),
                    ch,
                });
            }
            if label.starts_with('-') || label.ends_with('-') {
                return Err(DomainError::HyphenAtEdge {
                    input: input.to_owned(),
                    label: label.to_owned(),
                });
            }
            last = label;
        }
        if last.bytes().all(|b| b.is_ascii_digit()) {
            return Err(DomainError::NumericTld {
                input: input.to_owned(),
            });
        }
        Ok(())
    }

    /// The canonical A-label form.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The labels, left to right.
    pub fn labels(&self) -> impl Iterator<Item = &str> {
        self.0.split('.')
    }

    /// The name with the leftmost label removed, if there is more than one label.
    pub fn parent(&self) -> Option<Self> {
        self.0
            .split_once('.')
            .map(|(_, rest)| Self(rest.to_owned()))
    }

    /// `prefix.self`, for service names such as `_mta-sts`, `_smtp._tls` or `_25._tcp`.
    /// The result is a DNS query name, not a host name, so it is returned as a string.
    pub fn prefixed(&self, prefix: &str) -> String {
        format!("{prefix}.{}", self.0)
    }

    /// The name for display, with A-labels turned back into Unicode where they decode.
    pub fn to_unicode(&self) -> String {
        let (unicode, result) = idna::domain_to_unicode(&self.0);
        if result.is_ok() {
            unicode
        } else {
            self.0.clone()
        }
    }
}

impl fmt::Display for DomainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for DomainName {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for DomainName {
    type Error = DomainError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<DomainName> for String {
    fn from(d: DomainName) -> Self {
        d.0
    }
}

impl AsRef<str> for DomainName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_form() {
        let cases = [
            ("Example.COM", "example.com"),
            ("example.com.", "example.com"),
            ("mx1.example.com", "mx1.example.com"),
            ("bücher.example", "xn--bcher-kva.example"),
            ("XN--BCHER-KVA.example", "xn--bcher-kva.example"),
            ("a-b.example", "a-b.example"),
            ("localhost", "localhost"),
        ];
        for (input, want) in cases {
            assert_eq!(DomainName::parse(input).unwrap().as_str(), want, "{input}");
        }
    }

    type Check = fn(&DomainError) -> bool;

    #[test]
    fn rejected_names() {
        let cases: &[(&str, Check)] = &[
            ("", |e| matches!(e, DomainError::Empty)),
            (".", |e| matches!(e, DomainError::Empty)),
            ("a..b", |e| matches!(e, DomainError::EmptyLabel { .. })),
            (".a.b", |e| matches!(e, DomainError::EmptyLabel { .. })),
            ("-a.example", |e| {
                matches!(e, DomainError::HyphenAtEdge { .. })
            }),
            ("a-.example", |e| {
                matches!(e, DomainError::HyphenAtEdge { .. })
            }),
            ("a_b.example", |e| {
                matches!(e, DomainError::BadCharacter { .. })
            }),
            ("a b.example", |e| {
                matches!(e, DomainError::BadCharacter { .. })
            }),
            ("*.example", |e| {
                matches!(e, DomainError::BadCharacter { .. })
            }),
            ("192.0.2.1", |e| matches!(e, DomainError::IpLiteral { .. })),
            ("[2001:db8::1]", |e| {
                matches!(e, DomainError::IpLiteral { .. })
            }),
            ("2001:db8::1", |e| {
                matches!(e, DomainError::IpLiteral { .. })
            }),
            ("a.123", |e| matches!(e, DomainError::NumericTld { .. })),
            ("xn--zz.example", |e| matches!(e, DomainError::Idna { .. })),
        ];
        for (input, check) in cases {
            let err = DomainName::parse(input).unwrap_err();
            assert!(check(&err), "{input:?} gave {err:?}");
        }
        let long_label = format!("{}.example", "a".repeat(64));
        assert!(matches!(
            DomainName::parse(&long_label),
            Err(DomainError::LabelTooLong { len: 64, .. })
        ));
        let long_name = ["a".repeat(63).as_str(); 4].join(".");
        assert!(matches!(
            DomainName::parse(&long_name),
            Err(DomainError::TooLong { len: 255, .. })
        ));
    }

    #[test]
    fn a_label_only() {
        assert!(DomainName::parse_a_label("xn--bcher-kva.example").is_ok());
        assert!(matches!(
            DomainName::parse_a_label("bücher.example"),
            Err(DomainError::BadCharacter { ch: 'ü', .. })
        ));
    }

    #[test]
    fn helpers() {
        let d = DomainName::parse("mx.Example.com.").unwrap();
        assert_eq!(d.parent().unwrap().as_str(), "example.com");
        assert_eq!(d.prefixed("_25._tcp"), "_25._tcp.mx.example.com");
        assert_eq!(d.labels().count(), 3);
        let u = DomainName::parse("bücher.example").unwrap();
        assert_eq!(u.to_unicode(), "bücher.example");
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(json, "\"mx.example.com\"");
        let back: DomainName = serde_json::from_str("\"MX.example.com.\"").unwrap();
        assert_eq!(back, d);
        assert!(serde_json::from_str::<DomainName>("\"a..b\"").is_err());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        /// Parsing never panics, and a parsed name parses again to itself.
        #[test]
        fn parse_is_total_and_idempotent(input in "\\PC{0,80}") {
            if let Ok(d) = DomainName::parse(&input) {
                proptest::prop_assert_eq!(DomainName::parse(d.as_str()), Ok(d.clone()));
                proptest::prop_assert_eq!(DomainName::parse_a_label(d.as_str()), Ok(d));
            }
        }

        /// Names built from the host-name alphabet round-trip through the canonical form.
        #[test]
        fn ldh_names_round_trip(input in "[a-zA-Z0-9][a-zA-Z0-9-]{0,10}[a-zA-Z0-9](\\.[a-zA-Z0-9]{1,10}){0,4}\\.[a-zA-Z]{2,6}\\.?") {
            // A first label starting "xn--" is a (possibly bogus) A-label: not plain LDH.
            proptest::prop_assume!(!input.to_ascii_lowercase().starts_with("xn--"));
            let d = DomainName::parse(&input).unwrap();
            proptest::prop_assert_eq!(d.as_str(), input.trim_end_matches('.').to_ascii_lowercase());
        }
    }
}
