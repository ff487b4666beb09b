//! Plain DNS data shared by the observe and evaluate stages: the outcome of one lookup
//! ([`Lookup`]) with its DNSSEC status ([`DnssecStatus`]) and the CNAME chain followed, the
//! record types mxprobe asks for ([`Mx`], [`Txt`], addresses, [`Tlsa`]), and the
//! [`Resolve`] trait at the stage boundary so the scan can run on canned answers. Pure: no
//! I/O; the network adapter is [`hickory`], the only importer of hickory-resolver.
//!
//! The rule that shapes [`Lookup`]: a DNS failure is "could not tell", never "no record"
//! (RFC 8461 §3.1 / §5, RFC 7672 §2.1.1, RFC 5321 §5.1). NXDOMAIN, NODATA, SERVFAIL,
//! REFUSED, a timeout and a DNSSEC validation failure are distinct variants, and each answer
//! or denial carries its own DNSSEC status, so a *secure* denial of existence (RFC 4035
//! §5.4) can be told from an insecure one.

use std::future::Future;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::domain::DomainName;

pub mod chain;
mod tlsa;

pub use chain::{BrokenLink, ExtendedDnsError, ResolverFault, ResolverProblem};
pub use tlsa::{
    DANE_EE, DANE_TA, MATCH_FULL, MATCH_SHA256, MATCH_SHA512, SELECTOR_CERT, SELECTOR_SPKI, Tlsa,
    TlsaAnswer, TlsaLookup, TlsaParseError,
};

/// The DNSSEC status of one answer (RFC 4033 §5 terms).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DnssecStatus {
    /// A chain of trust from a trust anchor validates the answer (or a secure denial).
    Secure,
    /// Provably unsigned: a secure delegation says the zone is not signed.
    Insecure,
    /// Signed but failing validation (bad signatures, missing proofs).
    Bogus,
    /// The status could not be determined (no trust anchor, resolver did not say).
    Indeterminate,
}

impl DnssecStatus {
    /// The status of an answer assembled from several RRsets (a CNAME chain and its target,
    /// or the SOA and NSEC records of a denial): the weakest link decides. Any bogus part makes
    /// the whole bogus; otherwise any undetermined part makes it indeterminate; otherwise any
    /// insecure part makes it insecure (RFC 4035 §5: an answer is only as secure as every
    /// RRset it depends on). An empty list is indeterminate: nothing was proven.
    pub fn combine(statuses: impl IntoIterator<Item = Self>) -> Self {
        let mut seen_any = false;
        let mut worst = Self::Secure;
        for status in statuses {
            seen_any = true;
            worst = match (worst, status) {
                (Self::Bogus, _) | (_, Self::Bogus) => Self::Bogus,
                (Self::Indeterminate, _) | (_, Self::Indeterminate) => Self::Indeterminate,
                (Self::Insecure, _) | (_, Self::Insecure) => Self::Insecure,
                (Self::Secure, Self::Secure) => Self::Secure,
            };
        }
        if seen_any { worst } else { Self::Indeterminate }
    }
}

/// The outcome of one DNS lookup (one name, one type).
///
/// Serialised with a `status` tag (`records`, `nodata`, `nxdomain`, `bogus`, `servfail`,
/// `refused`, `timeout`, `error`), e.g.
/// `{"status":"records","records":[…],"dnssec":"secure","cname-chain":[]}` or
/// `{"status":"servfail"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum Lookup<T> {
    /// The name has records of the asked type.
    Records {
        /// The records, in the order the server sent them.
        records: Vec<T>,
        /// The DNSSEC status of the answer, CNAME chain included.
        dnssec: DnssecStatus,
        /// The aliases followed from the asked name, in order: each entry is the target of
        /// one CNAME (lower-case, no trailing dot). The last one owns `records`. Empty when
        /// the asked name owns the records itself.
        #[serde(rename = "cname-chain")]
        cname_chain: Vec<String>,
    },
    /// NODATA: the name exists but has no records of this type (RFC 2308 §2.2).
    #[serde(rename = "nodata")]
    NoData {
        /// The DNSSEC status of the denial (secure = validated NSEC/NSEC3 proof).
        dnssec: DnssecStatus,
    },
    /// NXDOMAIN: the name does not exist (RFC 2308 §2.1).
    #[serde(rename = "nxdomain")]
    NxDomain {
        /// The DNSSEC status of the denial (secure = validated NSEC/NSEC3 proof).
        dnssec: DnssecStatus,
    },
    /// The answer failed DNSSEC validation (RFC 4035 §5.5): its content cannot be used,
    /// and it is neither an answer nor a denial. Validating senders treat the name as
    /// unusable.
    Bogus {
        /// What failed: the broken link in words, or the validator's words.
        detail: String,
        /// The broken link of the chain of trust, when the diagnosis (a query with the CD
        /// bit, validated in-process from the trust anchor) found it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cause: Option<BrokenLink>,
        /// Extended DNS Errors (RFC 8914) the resolver sent with its failure.
        #[serde(
            rename = "extended-errors",
            default,
            skip_serializing_if = "Vec::is_empty"
        )]
        extended_errors: Vec<ExtendedDnsError>,
    },
    /// The server answered SERVFAIL and the diagnosis found no DNSSEC failure behind it (a
    /// validating resolver says SERVFAIL for bogus data too; that case is [`Self::Bogus`]).
    #[serde(rename = "servfail")]
    ServFail {
        /// Extended DNS Errors (RFC 8914) the resolver sent with its failure.
        #[serde(
            rename = "extended-errors",
            default,
            skip_serializing_if = "Vec::is_empty"
        )]
        extended_errors: Vec<ExtendedDnsError>,
        /// What the diagnosis found, when it ran: no answer even with checking disabled
        /// (the zone's servers are unreachable or lame), or an answer that validates here.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        diagnosis: Option<String>,
    },
    /// The server answered REFUSED.
    Refused,
    /// No answer came within the configured timeout and attempts.
    Timeout,
    /// Any other failure: another response code, a malformed answer, a network error, a
    /// name that cannot be queried.
    Error {
        /// What went wrong.
        error: String,
    },
}

impl<T> Lookup<T> {
    /// The DNSSEC status of the outcome; failures (SERVFAIL, timeout, …) are indeterminate
    /// because nothing was learnt (RFC 7672 §2.1.1 treats them alike).
    pub fn dnssec(&self) -> DnssecStatus {
        match self {
            Self::Records { dnssec, .. } | Self::NoData { dnssec } | Self::NxDomain { dnssec } => {
                *dnssec
            }
            Self::Bogus { .. } => DnssecStatus::Bogus,
            Self::ServFail { .. } | Self::Refused | Self::Timeout | Self::Error { .. } => {
                DnssecStatus::Indeterminate
            }
        }
    }

    /// The records, when there are some.
    pub fn records(&self) -> Option<&[T]> {
        match self {
            Self::Records { records, .. } => Some(records),
            _ => None,
        }
    }

    /// True for a definite answer about the name: records, NODATA or NXDOMAIN. False for
    /// every "could not tell" outcome (bogus, SERVFAIL, REFUSED, timeout, other errors).
    pub fn is_definite(&self) -> bool {
        matches!(
            self,
            Self::Records { .. } | Self::NoData { .. } | Self::NxDomain { .. }
        )
    }

    /// A short description of a failure, `None` for a definite answer.
    pub fn failure(&self) -> Option<String> {
        match self {
            Self::Records { .. } | Self::NoData { .. } | Self::NxDomain { .. } => None,
            Self::Bogus {
                detail,
                extended_errors,
                ..
            } => Some(format!(
                "DNSSEC validation failed: {detail}{}",
                extended_text(extended_errors)
            )),
            Self::ServFail {
                extended_errors,
                diagnosis,
            } => Some(format!(
                "the DNS server answered SERVFAIL{}{}",
                extended_text(extended_errors),
                diagnosis
                    .as_deref()
                    .map(|d| format!("; {d}"))
                    .unwrap_or_default()
            )),
            Self::Refused => Some("the DNS server refused the query".to_owned()),
            Self::Timeout => Some("the DNS query timed out".to_owned()),
            Self::Error { error } => Some(error.clone()),
        }
    }

    /// The same outcome with each record converted (the status and chain are kept).
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Lookup<U> {
        match self {
            Self::Records {
                records,
                dnssec,
                cname_chain,
            } => Lookup::Records {
                records: records.into_iter().map(f).collect(),
                dnssec,
                cname_chain,
            },
            Self::NoData { dnssec } => Lookup::NoData { dnssec },
            Self::NxDomain { dnssec } => Lookup::NxDomain { dnssec },
            Self::Bogus {
                detail,
                cause,
                extended_errors,
            } => Lookup::Bogus {
                detail,
                cause,
                extended_errors,
            },
            Self::ServFail {
                extended_errors,
                diagnosis,
            } => Lookup::ServFail {
                extended_errors,
                diagnosis,
            },
            Self::Refused => Lookup::Refused,
            Self::Timeout => Lookup::Timeout,
            Self::Error { error } => Lookup::Error { error },
        }
    }
}

impl<T> Lookup<T> {
    /// A SERVFAIL with nothing more known.
    pub fn servfail() -> Self {
        Self::ServFail {
            extended_errors: Vec::new(),
            diagnosis: None,
        }
    }

    /// A bogus answer with the validator's words only.
    pub fn bogus(detail: impl Into<String>) -> Self {
        Self::Bogus {
            detail: detail.into(),
            cause: None,
            extended_errors: Vec::new(),
        }
    }

    /// The broken link of the chain of trust, for a bogus answer whose cause was found.
    pub fn broken_link(&self) -> Option<&BrokenLink> {
        match self {
            Self::Bogus { cause, .. } => cause.as_ref(),
            _ => None,
        }
    }
}

/// `" (EDE 7 (Signature Expired); …)"`, or nothing.
fn extended_text(errors: &[ExtendedDnsError]) -> String {
    if errors.is_empty() {
        return String::new();
    }
    let list: Vec<String> = errors.iter().map(ToString::to_string).collect();
    format!(" ({})", list.join("; "))
}

/// One MX record (RFC 1035 §3.3.9).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Mx {
    /// Lower values are preferred (RFC 5321 §5.1).
    pub preference: u16,
    /// The exchange host, lower-case without the trailing dot; `"."` for the root, which is
    /// how a null MX names "no mail" (RFC 7505 §3).
    pub exchange: String,
}

impl Mx {
    /// True when this record is the RFC 7505 null MX form `0 .`.
    pub fn is_null(&self) -> bool {
        self.preference == 0 && self.exchange == "."
    }
}

/// One TXT record: its character-strings as sent (RFC 1035 §3.3.14), in order.
///
/// Bytes that are not UTF-8 are replaced by U+FFFD, which is not ASCII, so a caller that
/// requires US-ASCII (RFC 8461 §3.1, RFC 8460 §3) still rejects them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Txt {
    /// The character-strings of the record.
    pub strings: Vec<String>,
}

impl Txt {
    /// The record's text: its strings concatenated without separators (RFC 7208 §3.3,
    /// applied by RFC 8461 §3.1 and RFC 8460 §3 to multi-string records).
    pub fn joined(&self) -> String {
        self.strings.concat()
    }
}

/// The address lookups for one host: one [`Lookup`] per family asked for, `None` for a
/// family excluded by configuration (`-4` / `-6`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressLookups {
    /// The A lookup (IPv4).
    pub a: Option<Lookup<IpAddr>>,
    /// The AAAA lookup (IPv6).
    pub aaaa: Option<Lookup<IpAddr>>,
}

impl AddressLookups {
    /// Every address found, IPv4 first, each family in the order received.
    pub fn addresses(&self) -> Vec<IpAddr> {
        [&self.a, &self.aaaa]
            .into_iter()
            .flatten()
            .filter_map(Lookup::records)
            .flatten()
            .copied()
            .collect()
    }

    /// The combined DNSSEC status of the families asked for (RFC 7672 §2.2.2: TLSA is asked
    /// for only when the host's address records are secure).
    pub fn dnssec(&self) -> DnssecStatus {
        DnssecStatus::combine(
            [&self.a, &self.aaaa]
                .into_iter()
                .flatten()
                .map(Lookup::dnssec),
        )
    }
}

/// The DNS questions the scan asks, at the boundary between the scan and the network. The
/// hickory adapter ([`hickory::Resolver`]) implements it; tests implement it with canned
/// answers. Every method returns an outcome, never an error: failures are [`Lookup`]
/// variants.
pub trait Resolve: Send + Sync {
    /// The MX RRset of a domain.
    fn mx(&self, domain: &DomainName) -> impl Future<Output = Lookup<Mx>> + Send;
    /// The TXT RRset at `name` (which may start with `_`, e.g. `_mta-sts.example.com`);
    /// CNAMEs are followed.
    fn txt(&self, name: &str) -> impl Future<Output = Lookup<Txt>> + Send;
    /// The A and AAAA RRsets of a host, per the configured families.
    fn addresses(&self, host: &DomainName) -> impl Future<Output = AddressLookups> + Send;
    /// The TLSA RRset at `_<port>._tcp.<host>` (RFC 7672 §2.2.3; port 25 for SMTP).
    fn tlsa(&self, host: &DomainName, port: u16) -> impl Future<Output = Lookup<Tlsa>> + Send;
    /// Whether the resolver itself is unfit to judge `name` (it cannot serve a validated
    /// chain of trust for the root or `name`'s top-level domain): `None` when it is fit, or
    /// when the implementation does not check (canned answers). Checked once per run and
    /// top-level domain, so cheap to ask for every domain.
    fn resolver_problem(
        &self,
        name: &DomainName,
    ) -> impl Future<Output = Option<ResolverProblem>> + Send {
        let _ = name;
        async { None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use DnssecStatus::{Bogus, Indeterminate, Insecure, Secure};

    use proptest::prelude::*;

    fn status() -> impl Strategy<Value = DnssecStatus> {
        prop_oneof![
            Just(Secure),
            Just(Insecure),
            Just(Bogus),
            Just(Indeterminate)
        ]
    }

    fn mx_lookup() -> impl Strategy<Value = Lookup<Mx>> {
        let mx = (any::<u16>(), "[a-z0-9.-]{0,30}|\\.").prop_map(|(preference, exchange)| Mx {
            preference,
            exchange,
        });
        prop_oneof![
            (
                proptest::collection::vec(mx, 0..4),
                status(),
                proptest::collection::vec("[a-z0-9_.-]{1,20}", 0..3)
            )
                .prop_map(|(records, dnssec, cname_chain)| Lookup::Records {
                    records,
                    dnssec,
                    cname_chain
                }),
            status().prop_map(|dnssec| Lookup::NoData { dnssec }),
            status().prop_map(|dnssec| Lookup::NxDomain { dnssec }),
            ".*".prop_map(Lookup::bogus),
            Just(Lookup::servfail()),
            Just(Lookup::Refused),
            Just(Lookup::Timeout),
            ".*".prop_map(|error| Lookup::Error { error }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn lookups_round_trip_through_json(lookup in mx_lookup()) {
            let json = serde_json::to_string(&lookup).expect("serialise");
            let back: Lookup<Mx> = serde_json::from_str(&json).expect("deserialise");
            prop_assert_eq!(back, lookup);
        }

        #[test]
        fn combine_ignores_order_and_is_never_stronger_than_a_part(
            parts in proptest::collection::vec(status(), 1..6)
        ) {
            let combined = DnssecStatus::combine(parts.iter().copied());
            let reversed = DnssecStatus::combine(parts.iter().rev().copied());
            prop_assert_eq!(combined, reversed);
            prop_assert!(parts.contains(&combined));
            if combined == Secure {
                prop_assert!(parts.iter().all(|p| *p == Secure));
            }
        }
    }

    #[test]
    fn combine_takes_the_weakest_link() {
        let cases: &[(&[DnssecStatus], DnssecStatus)] = &[
            (&[], Indeterminate),
            (&[Secure], Secure),
            (&[Secure, Secure], Secure),
            (&[Secure, Insecure], Insecure),
            (&[Insecure, Secure], Insecure),
            (&[Secure, Indeterminate, Insecure], Indeterminate),
            (&[Insecure, Bogus, Indeterminate], Bogus),
            (&[Bogus], Bogus),
        ];
        for (input, expected) in cases {
            assert_eq!(
                DnssecStatus::combine(input.iter().copied()),
                *expected,
                "{input:?}"
            );
        }
    }

    #[test]
    fn lookup_serialises_with_a_status_tag() {
        let cases: Vec<(Lookup<Mx>, &str)> = vec![
            (
                Lookup::Records {
                    records: vec![Mx {
                        preference: 0,
                        exchange: ".".into(),
                    }],
                    dnssec: Secure,
                    cname_chain: vec![],
                },
                r#"{"status":"records","records":[{"preference":0,"exchange":"."}],"dnssec":"secure","cname-chain":[]}"#,
            ),
            (
                Lookup::NoData { dnssec: Insecure },
                r#"{"status":"nodata","dnssec":"insecure"}"#,
            ),
            (
                Lookup::NxDomain { dnssec: Secure },
                r#"{"status":"nxdomain","dnssec":"secure"}"#,
            ),
            (Lookup::bogus("x"), r#"{"status":"bogus","detail":"x"}"#),
            (Lookup::servfail(), r#"{"status":"servfail"}"#),
            (
                Lookup::ServFail {
                    extended_errors: vec![ExtendedDnsError {
                        code: 22,
                        purpose: Some("No Reachable Authority".into()),
                        text: None,
                    }],
                    diagnosis: Some("d".into()),
                },
                r#"{"status":"servfail","extended-errors":[{"code":22,"purpose":"No Reachable Authority"}],"diagnosis":"d"}"#,
            ),
            (Lookup::Refused, r#"{"status":"refused"}"#),
            (Lookup::Timeout, r#"{"status":"timeout"}"#),
            (
                Lookup::Error { error: "e".into() },
                r#"{"status":"error","error":"e"}"#,
            ),
        ];
        for (lookup, json) in cases {
            assert_eq!(serde_json::to_string(&lookup).expect("serialise"), json);
            let back: Lookup<Mx> = serde_json::from_str(json).expect("deserialise");
            assert_eq!(back, lookup);
        }
    }

    #[test]
    fn failures_are_not_definite_and_have_no_records() {
        let failures: Vec<Lookup<Txt>> = vec![
            Lookup::bogus("bad"),
            Lookup::servfail(),
            Lookup::Refused,
            Lookup::Timeout,
            Lookup::Error { error: "x".into() },
        ];
        for lookup in failures {
            assert!(!lookup.is_definite(), "{lookup:?}");
            assert!(lookup.records().is_none());
            assert!(lookup.failure().is_some());
            let expected = if matches!(lookup, Lookup::Bogus { .. }) {
                Bogus
            } else {
                Indeterminate
            };
            assert_eq!(lookup.dnssec(), expected);
        }
        assert!(Lookup::<Txt>::NoData { dnssec: Secure }.is_definite());
        assert!(Lookup::<Txt>::NxDomain { dnssec: Insecure }.is_definite());
    }

    #[test]
    fn null_mx_and_joined_txt() {
        let null = Mx {
            preference: 0,
            exchange: ".".into(),
        };
        assert!(null.is_null());
        assert!(
            !Mx {
                preference: 10,
                exchange: ".".into()
            }
            .is_null()
        );
        assert!(
            !Mx {
                preference: 0,
                exchange: "mx.example".into()
            }
            .is_null()
        );
        let txt = Txt {
            strings: vec!["v=STSv1; ".into(), "id=1".into()],
        };
        assert_eq!(txt.joined(), "v=STSv1; id=1");
    }

    #[test]
    fn tlsa_lookup_maps_to_the_dane_input() {
        let record = Tlsa {
            usage: 3,
            selector: 1,
            matching_type: 1,
            data: vec![0; 32],
        };
        let cases: Vec<(Lookup<Tlsa>, TlsaLookup, DnssecStatus)> = vec![
            (
                Lookup::Records {
                    records: vec![record.clone()],
                    dnssec: Secure,
                    cname_chain: vec![],
                },
                TlsaLookup::Records {
                    records: vec![record],
                },
                Secure,
            ),
            (
                Lookup::NoData { dnssec: Secure },
                TlsaLookup::NoRecords,
                Secure,
            ),
            (
                Lookup::NxDomain { dnssec: Insecure },
                TlsaLookup::NoRecords,
                Insecure,
            ),
            (
                Lookup::servfail(),
                TlsaLookup::Failed {
                    detail: "the DNS server answered SERVFAIL".into(),
                },
                Indeterminate,
            ),
            (
                Lookup::bogus("bad sig"),
                TlsaLookup::Failed {
                    detail: "DNSSEC validation failed: bad sig".into(),
                },
                Bogus,
            ),
        ];
        for (lookup, expected, status) in cases {
            let answer = lookup.to_tlsa_answer();
            assert_eq!(answer.lookup, expected);
            assert_eq!(answer.dnssec, status);
        }
    }

    #[test]
    fn address_lookups_collect_both_families() {
        let lookups = AddressLookups {
            a: Some(Lookup::Records {
                records: vec!["192.0.2.1".parse().expect("ip")],
                dnssec: Secure,
                cname_chain: vec![],
            }),
            aaaa: Some(Lookup::NoData { dnssec: Secure }),
        };
        assert_eq!(
            lookups.addresses(),
            vec!["192.0.2.1".parse::<IpAddr>().expect("ip")]
        );
        assert_eq!(lookups.dnssec(), Secure);
        let v4_only = AddressLookups {
            a: Some(Lookup::Timeout),
            aaaa: None,
        };
        assert!(v4_only.addresses().is_empty());
        assert_eq!(v4_only.dnssec(), Indeterminate);
    }
}
