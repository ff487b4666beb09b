//! MTA-STS policy `mx` patterns (RFC 8461 §3.2) and how an MX host name is matched against
//! them (RFC 8461 §4.1).
//!
//! A pattern is an A-label domain name, optionally preceded by `*.` as the whole leftmost
//! label. `*.example.com` matches exactly one extra leftmost label (`mail.example.com`), never
//! the parent (`example.com`) and never two labels (`a.b.example.com`). Matching is anchored
//! and case-insensitive because both sides are [`DomainName`]s (lower-case, no trailing dot).
//! Pure: no I/O; the policy parser builds patterns and the evaluate stage matches MX names.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::domain::{DomainError, DomainName};

/// Why a policy `mx` value is not a valid pattern.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MxPatternError {
    /// The value is empty.
    #[error("the mx value is empty")]
    Empty,
    /// `*` or `*.` with no domain after it.
    #[error("{input:?} has a wildcard but no domain after it (write e.g. \"*.example.com\")")]
    WildcardWithoutDomain {
        /// The value as written.
        input: String,
    },
    /// `*` inside a label (`*x.example`, `**.example`).
    #[error(
        "{input:?}: the wildcard must be a whole label \"*\" (as in \"*.example.com\"), not part of {label:?}"
    )]
    PartialWildcard {
        /// The value as written.
        input: String,
        /// The label containing `*`.
        label: String,
    },
    /// `*` as a label other than the leftmost one (`mail.*.example`).
    #[error("{input:?}: a wildcard is only allowed as the leftmost label")]
    WildcardNotLeftmost {
        /// The value as written.
        input: String,
    },
    /// More than one wildcard label (`*.*.example`).
    #[error("{input:?}: only one wildcard label is allowed, and only leftmost")]
    RepeatedWildcard {
        /// The value as written.
        input: String,
    },
    /// A trailing dot: RFC 5321 `Domain` (which the policy uses) has none.
    #[error("{input:?} ends with a dot; write the name without the trailing dot")]
    TrailingDot {
        /// The value as written.
        input: String,
    },
    /// The domain part is not an LDH A-label name (U-labels, IP literals, bad characters …).
    #[error("{0}")]
    Domain(#[from] DomainError),
}

/// One `mx` pattern of a policy.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MxPattern {
    wildcard: bool,
    domain: DomainName,
}

impl MxPattern {
    /// Parses a policy `mx` value: `["*."] Domain` with the domain in A-label form
    /// (RFC 8461 §3.2: "MUST be A-labels"; U-labels are rejected, not converted).
    pub fn parse(input: &str) -> Result<Self, MxPatternError> {
        if input.is_empty() {
            return Err(MxPatternError::Empty);
        }
        let (wildcard, rest) = match input.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, input),
        };
        if input == "*" || (wildcard && rest.is_empty()) {
            return Err(MxPatternError::WildcardWithoutDomain {
                input: input.to_owned(),
            });
        }
        let whole_star_labels = rest.split('.').filter(|l| *l == "*").count();
        if let Some(label) = input.split('.').find(|l| l.contains('*') && *l != "*") {
            return Err(MxPatternError::PartialWildcard {
                input: input.to_owned(),
                label: label.to_owned(),
            });
        }
        if whole_star_labels > 0 {
            return Err(if wildcard && rest.starts_with("*.") {
                MxPatternError::RepeatedWildcard {
                    input: input.to_owned(),
                }
            } else {
                MxPatternError::WildcardNotLeftmost {
                    input: input.to_owned(),
                }
            });
        }
        if rest.ends_with('.') {
            return Err(MxPatternError::TrailingDot {
                input: input.to_owned(),
            });
        }
        let domain = DomainName::parse_a_label(rest)?;
        Ok(if wildcard {
            Self::wildcard(domain)
        } else {
            Self::exact(domain)
        })
    }

    /// The pattern that matches exactly `domain` (RFC 8461 §4.1: a plain `mx` value matches
    /// the identical name).
    ///
    /// Every [`DomainName`] makes a valid pattern: its text is what [`MxPattern::parse`]
    /// accepts and reads back equal.
    pub fn exact(domain: DomainName) -> Self {
        Self {
            wildcard: false,
            domain,
        }
    }

    /// The pattern `*.domain`, which matches a name with exactly one more leftmost label
    /// than `domain` (RFC 8461 §4.1), never `domain` itself.
    ///
    /// Every [`DomainName`] makes a valid pattern: its text is what [`MxPattern::parse`]
    /// accepts and reads back equal.
    pub fn wildcard(domain: DomainName) -> Self {
        Self {
            wildcard: true,
            domain,
        }
    }

    /// Whether the pattern starts with `*.`.
    pub fn is_wildcard(&self) -> bool {
        self.wildcard
    }

    /// The domain after the optional `*.`.
    pub fn domain(&self) -> &DomainName {
        &self.domain
    }

    /// RFC 8461 §4.1: whether `host` (an MX host name) matches this pattern.
    ///
    /// A plain pattern matches the identical name. A wildcard pattern matches a name whose
    /// leftmost label is removed to give exactly the pattern's domain: "the wildcard character
    /// '*' ... matches only one label, not the parent domain" (Appendix B pseudocode: compare
    /// the part after the first '.' with the pattern minus "*.").
    pub fn matches(&self, host: &DomainName) -> bool {
        if self.wildcard {
            host.parent().is_some_and(|parent| parent == self.domain)
        } else {
            *host == self.domain
        }
    }
}

impl fmt::Display for MxPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.wildcard {
            f.write_str("*.")?;
        }
        f.write_str(self.domain.as_str())
    }
}

impl std::str::FromStr for MxPattern {
    type Err = MxPatternError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for MxPattern {
    type Error = MxPatternError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<MxPattern> for String {
    fn from(p: MxPattern) -> Self {
        p.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn host(s: &str) -> DomainName {
        DomainName::parse(s).unwrap()
    }

    #[test]
    fn valid_patterns() {
        let cases = [
            ("mail.example.com", false, "mail.example.com"),
            ("*.example.com", true, "example.com"),
            ("Mail.Example.COM", false, "mail.example.com"),
            ("*.xn--bcher-kva.example", true, "xn--bcher-kva.example"),
            ("localhost", false, "localhost"),
        ];
        for (input, wildcard, domain) in cases {
            let p = MxPattern::parse(input).unwrap();
            assert_eq!(p.is_wildcard(), wildcard, "{input}");
            assert_eq!(p.domain().as_str(), domain, "{input}");
        }
        assert_eq!(
            MxPattern::parse("*.Example.com").unwrap().to_string(),
            "*.example.com"
        );
    }

    /// `wildcard(domain)` or `exact(domain)`.
    fn built(wildcard: bool, domain: DomainName) -> MxPattern {
        if wildcard {
            MxPattern::wildcard(domain)
        } else {
            MxPattern::exact(domain)
        }
    }

    #[test]
    fn constructors() {
        let cases = [
            (false, "mail.example.com", "mail.example.com"),
            (true, "example.com", "*.example.com"),
            (false, "localhost", "localhost"),
            (true, "com", "*.com"),
            (true, "Bücher.example.", "*.xn--bcher-kva.example"),
        ];
        for (wildcard, name, text) in cases {
            let pattern = built(wildcard, host(name));
            assert_eq!(pattern.is_wildcard(), wildcard, "{text}");
            assert_eq!(pattern.domain(), &host(name), "{text}");
            assert_eq!(pattern.to_string(), text);
            assert_eq!(MxPattern::parse(text).unwrap(), pattern, "{text}");
        }
        let exact = MxPattern::exact(host("mail.example.com"));
        assert!(exact.matches(&host("mail.example.com")));
        assert!(!exact.matches(&host("a.mail.example.com")));
        let wild = MxPattern::wildcard(host("example.com"));
        assert!(wild.matches(&host("mail.example.com")));
        assert!(!wild.matches(&host("example.com")));
        assert_ne!(MxPattern::exact(host("example.com")), wild);
    }

    type Check = fn(&MxPatternError) -> bool;

    #[test]
    fn invalid_patterns() {
        let cases: &[(&str, Check)] = &[
            ("", |e| matches!(e, MxPatternError::Empty)),
            ("*", |e| {
                matches!(e, MxPatternError::WildcardWithoutDomain { .. })
            }),
            ("*.", |e| {
                matches!(e, MxPatternError::WildcardWithoutDomain { .. })
            }),
            (
                "*example.com",
                |e| matches!(e, MxPatternError::PartialWildcard { label, .. } if label == "*example"),
            ),
            (
                "**.example",
                |e| matches!(e, MxPatternError::PartialWildcard { label, .. } if label == "**"),
            ),
            ("mail.*.example.com", |e| {
                matches!(e, MxPatternError::WildcardNotLeftmost { .. })
            }),
            ("*.*.example", |e| {
                matches!(e, MxPatternError::RepeatedWildcard { .. })
            }),
            ("example.*", |e| {
                matches!(e, MxPatternError::WildcardNotLeftmost { .. })
            }),
            ("mail.example.com.", |e| {
                matches!(e, MxPatternError::TrailingDot { .. })
            }),
            ("test.example-", |e| {
                matches!(e, MxPatternError::Domain(DomainError::HyphenAtEdge { .. }))
            }),
            ("bücher.example", |e| {
                matches!(
                    e,
                    MxPatternError::Domain(DomainError::BadCharacter { ch: 'ü', .. })
                )
            }),
            ("192.0.2.1", |e| {
                matches!(e, MxPatternError::Domain(DomainError::IpLiteral { .. }))
            }),
            ("[192.0.2.1]", |e| {
                matches!(e, MxPatternError::Domain(DomainError::IpLiteral { .. }))
            }),
            ("*.192.0.2.1", |e| matches!(e, MxPatternError::Domain(_))),
            ("a..b", |e| {
                matches!(e, MxPatternError::Domain(DomainError::EmptyLabel { .. }))
            }),
            (" mail.example", |e| {
                matches!(
                    e,
                    MxPatternError::Domain(DomainError::BadCharacter { ch: ' ', .. })
                )
            }),
        ];
        for (input, check) in cases {
            let err = MxPattern::parse(input).unwrap_err();
            assert!(check(&err), "{input:?} gave {err:?}");
        }
    }

    #[test]
    fn matching_rules() {
        let cases = [
            ("mail.example.com", "mail.example.com", true),
            ("mail.example.com", "MAIL.example.com.", true),
            ("mail.example.com", "example.com", false),
            ("mail.example.com", "a.mail.example.com", false),
            ("example.com", "bad-example.com", false),
            ("*.example.com", "mail.example.com", true),
            ("*.example.com", "example.com", false),
            ("*.example.com", "a.b.example.com", false),
            ("*.example.com", "mail.example.com.evil.com", false),
            ("*.example.com", "mailexample.com", false),
            ("*.com", "example.com", true),
        ];
        for (pattern, h, want) in cases {
            let p = MxPattern::parse(pattern).unwrap();
            assert_eq!(p.matches(&host(h)), want, "{pattern} vs {h}");
        }
    }

    #[test]
    fn serde_as_string() {
        let p = MxPattern::parse("*.example.com").unwrap();
        assert_eq!(serde_json::to_string(&p).unwrap(), "\"*.example.com\"");
        let back: MxPattern = serde_json::from_str("\"*.example.com\"").unwrap();
        assert_eq!(back, p);
        assert!(serde_json::from_str::<MxPattern>("\"*.*.x\"").is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn parse_never_panics(s in any::<String>()) {
            let _ = MxPattern::parse(&s);
        }

        #[test]
        fn round_trip_and_one_label(
            wildcard in any::<bool>(),
            labels in proptest::collection::vec("[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", 1..4),
            tld in "[a-z]{2,6}",
            extra in "[a-z0-9]{1,8}",
        ) {
            // A label starting "xn--" is an A-label and must be valid Punycode ("xn--0" is
            // not): the name parser refuses it, rightly, so it is no plain LDH label here.
            prop_assume!(labels.iter().all(|l| !l.starts_with("xn--")));
            let domain = format!("{}.{tld}", labels.join("."));
            let text = if wildcard { format!("*.{domain}") } else { domain.clone() };
            let p = MxPattern::parse(&text).unwrap();
            prop_assert_eq!(p.to_string(), text.clone());
            prop_assert_eq!(MxPattern::parse(&p.to_string()).unwrap(), p.clone());
            let one_more = host(&format!("{extra}.{domain}"));
            let two_more = host(&format!("{extra}.{extra}.{domain}"));
            prop_assert_eq!(p.matches(&one_more), wildcard);
            prop_assert!(!p.matches(&two_more));
            prop_assert_eq!(p.matches(&host(&domain)), !wildcard);
        }

        #[test]
        fn constructed_patterns_parse_back(
            wildcard in any::<bool>(),
            name in "[a-zA-Z0-9]([a-zA-Z0-9-]{0,8}[a-zA-Z0-9])?(\\.[a-z0-9]{1,8}){0,3}\\.[a-zA-Z]{2,6}\\.?",
        ) {
            prop_assume!(DomainName::parse(&name).is_ok());
            let domain = host(&name);
            let p = built(wildcard, domain.clone());
            prop_assert_eq!(p.is_wildcard(), wildcard);
            prop_assert_eq!(p.domain(), &domain);
            prop_assert_eq!(MxPattern::parse(&p.to_string()).unwrap(), p);
        }

        #[test]
        fn parse_never_panics_on_alphabet(s in "[*.a-z0-9-]{0,20}") {
            if let Ok(p) = MxPattern::parse(&s) {
                prop_assert_eq!(p.to_string(), s);
            }
        }
    }
}
