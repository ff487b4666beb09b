//! TLSA records (RFC 6698 §2): the record, its presentation form, and the outcome of a TLSA
//! query in the shape the DANE judgement ([`crate::dane`]) takes.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::{DnssecStatus, Lookup};
use crate::tls::cert::hex_upper;

/// Certificate usage DANE-TA(2) (RFC 7218 mnemonic).
pub const DANE_TA: u8 = 2;
/// Certificate usage DANE-EE(3).
pub const DANE_EE: u8 = 3;
/// Selector Cert(0): the whole certificate.
pub const SELECTOR_CERT: u8 = 0;
/// Selector SPKI(1): the SubjectPublicKeyInfo.
pub const SELECTOR_SPKI: u8 = 1;
/// Matching type Full(0): the data is the selected content itself.
pub const MATCH_FULL: u8 = 0;
/// Matching type SHA2-256(1).
pub const MATCH_SHA256: u8 = 1;
/// Matching type SHA2-512(2).
pub const MATCH_SHA512: u8 = 2;

/// One TLSA record (RFC 6698 §2.1).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Tlsa {
    /// Certificate usage.
    pub usage: u8,
    /// Selector.
    pub selector: u8,
    /// Matching type.
    pub matching_type: u8,
    /// Certificate association data.
    pub data: Vec<u8>,
}

impl fmt::Display for Tlsa {
    /// The presentation form RFC 8460 §4.4 puts in `policy-string`: `"3 1 1 HEX"`, upper-case
    /// hex with no spaces or parentheses inside the data.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} {}",
            self.usage,
            self.selector,
            self.matching_type,
            hex_upper(&self.data)
        )
    }
}

/// Why a TLSA presentation string could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TlsaParseError {
    /// Fewer than four fields.
    #[error(
        "the TLSA record has no {field} field (expected \"usage selector matching-type hex-data\")"
    )]
    Missing {
        /// The missing field.
        field: &'static str,
    },
    /// A numeric field that is not 0–255 or a known mnemonic.
    #[error("{field} {value:?} is not a number from 0 to 255 (or an RFC 7218 mnemonic)")]
    BadNumber {
        /// Which field.
        field: &'static str,
        /// The text found.
        value: String,
    },
    /// A character that is not a hex digit in the data.
    #[error(
        "the association data contains {ch:?} at character {position}; only hex digits are allowed"
    )]
    BadHex {
        /// The character.
        ch: char,
        /// Its 1-based position within the data.
        position: usize,
    },
    /// An odd number of hex digits.
    #[error(
        "the association data has {digits} hex digits; a whole number of bytes needs an even count"
    )]
    OddHex {
        /// How many digits.
        digits: usize,
    },
}

fn number(field: &'static str, text: &str, mnemonics: &[(&str, u8)]) -> Result<u8, TlsaParseError> {
    if let Some(&(_, v)) = mnemonics.iter().find(|(m, _)| m.eq_ignore_ascii_case(text)) {
        return Ok(v);
    }
    if !text.is_empty()
        && text.len() <= 3
        && text.bytes().all(|b| b.is_ascii_digit())
        && let Ok(v) = text.parse::<u8>()
    {
        return Ok(v);
    }
    Err(TlsaParseError::BadNumber {
        field,
        value: text.to_owned(),
    })
}

impl FromStr for Tlsa {
    type Err = TlsaParseError;

    /// Reads `usage selector matching-type data` (RFC 6698 §2.2): decimal numbers or the
    /// RFC 7218 mnemonics (`DANE-EE SPKI SHA2-256`, case-insensitive), then hex in either
    /// case, which may be split by white space. The data must not be empty.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut fields = s.split_ascii_whitespace();
        let mut next = |field| fields.next().ok_or(TlsaParseError::Missing { field });
        let usage = number(
            "usage",
            next("usage")?,
            &[
                ("PKIX-TA", 0),
                ("PKIX-EE", 1),
                ("DANE-TA", 2),
                ("DANE-EE", 3),
                ("PrivCert", 255),
            ],
        )?;
        let selector = number(
            "selector",
            next("selector")?,
            &[("Cert", 0), ("SPKI", 1), ("PrivSel", 255)],
        )?;
        let matching_type = number(
            "matching type",
            next("matching type")?,
            &[
                ("Full", 0),
                ("SHA2-256", 1),
                ("SHA2-512", 2),
                ("PrivMatch", 255),
            ],
        )?;
        let first = next("association data")?;
        let hex: String = std::iter::once(first).chain(fields).collect();
        if let Some((i, ch)) = hex
            .chars()
            .enumerate()
            .find(|(_, c)| !c.is_ascii_hexdigit())
        {
            return Err(TlsaParseError::BadHex {
                ch,
                position: i + 1,
            });
        }
        if !hex.len().is_multiple_of(2) {
            return Err(TlsaParseError::OddHex { digits: hex.len() });
        }
        let data = hex
            .as_bytes()
            .chunks(2)
            .map(|pair| {
                let digit = |b: u8| (b as char).to_digit(16).unwrap_or(0) as u8;
                digit(pair[0]) << 4 | digit(pair[1])
            })
            .collect();
        Ok(Self {
            usage,
            selector,
            matching_type,
            data,
        })
    }
}

/// What the TLSA query returned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum TlsaLookup {
    /// NXDOMAIN or NODATA.
    NoRecords,
    /// A TLSA RRset, in the order received.
    Records {
        /// The records.
        records: Vec<Tlsa>,
    },
    /// SERVFAIL, timeout, or an answer that could not be decoded.
    Failed {
        /// What went wrong.
        detail: String,
    },
}

/// The TLSA answer for `_25._tcp.<TLSA base domain>` with its DNSSEC status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsaAnswer {
    /// The lookup outcome.
    pub lookup: TlsaLookup,
    /// The DNSSEC status of the answer (or of the denial).
    pub dnssec: DnssecStatus,
}

impl Lookup<Tlsa> {
    /// The TLSA outcome in the shape the DANE judgement takes ([`crate::dane::judge`]):
    /// NXDOMAIN and NODATA become "no records" with the denial's status (RFC 7672 §2.2: a
    /// secure denial means no DANE), a bogus answer keeps status bogus, and every other
    /// failure becomes "failed" with status indeterminate (RFC 7672 §2.1.1).
    pub fn to_tlsa_answer(&self) -> TlsaAnswer {
        let dnssec = self.dnssec();
        let lookup = match self {
            Self::Records { records, .. } => TlsaLookup::Records {
                records: records.clone(),
            },
            Self::NoData { .. } | Self::NxDomain { .. } => TlsaLookup::NoRecords,
            failed => TlsaLookup::Failed {
                detail: failed.failure().unwrap_or_default(),
            },
        };
        TlsaAnswer { lookup, dnssec }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Tlsa {
        s.parse().unwrap()
    }

    #[test]
    fn presentation_form() {
        let cases: &[(&str, &str)] = &[
            ("3 1 1 ab", "3 1 1 AB"),
            ("  3   1 1   AB cd  ", "3 1 1 ABCD"),
            ("dane-ee spki sha2-256 00ff", "3 1 1 00FF"),
            ("DANE-TA Cert Full 01", "2 0 0 01"),
            ("255 255 255 00", "255 255 255 00"),
        ];
        for (input, want) in cases {
            assert_eq!(t(input).to_string(), *want, "{input}");
        }
    }

    #[test]
    fn presentation_errors() {
        let cases: &[(&str, TlsaParseError)] = &[
            ("", TlsaParseError::Missing { field: "usage" }),
            (
                "3 1 1",
                TlsaParseError::Missing {
                    field: "association data",
                },
            ),
            (
                "256 1 1 00",
                TlsaParseError::BadNumber {
                    field: "usage",
                    value: "256".into(),
                },
            ),
            (
                "3 +1 1 00",
                TlsaParseError::BadNumber {
                    field: "selector",
                    value: "+1".into(),
                },
            ),
            (
                "3 1 1 0g",
                TlsaParseError::BadHex {
                    ch: 'g',
                    position: 2,
                },
            ),
            (
                "3 1 1 (00)",
                TlsaParseError::BadHex {
                    ch: '(',
                    position: 1,
                },
            ),
            ("3 1 1 abc", TlsaParseError::OddHex { digits: 3 }),
        ];
        for (input, want) in cases {
            assert_eq!(input.parse::<Tlsa>().unwrap_err(), *want, "{input:?}");
        }
    }
}
