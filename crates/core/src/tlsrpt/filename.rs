//! TLS-RPT report file names (RFC 8460 §5.1, "Report Filename"):
//! `sender "!" policy-domain "!" begin-timestamp "!" end-timestamp ["!" unique-id] "."
//! ("json" / "json.gz")`, e.g. `google.com!test.xmox.nl!1663200000!1663286399!001.json.gz`.
//!
//! [`ReportFileName`] renders and parses that grammar exactly; it is the name under which
//! a report (see [`super::report`]) is attached to mail (§5.3) or stored. This module does
//! no I/O.

use std::fmt;
use std::str::FromStr;

use super::report::DateRange;
use crate::domain::{DomainError, DomainName};

/// A report file name, RFC 8460 §5.1.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ReportFileName {
    /// `sender`: the reporting domain — the domain of the report's `contact-info`.
    pub sender: DomainName,
    /// `policy-domain`: the Policy Domain the report is about.
    pub policy_domain: DomainName,
    /// `begin-timestamp`: Unix seconds of the start of the reported range.
    ///
    /// Unsigned because the grammar is `1*DIGIT`: there is no way to write an instant
    /// before 1970.
    pub begin: u64,
    /// `end-timestamp`: Unix seconds of the end of the reported range.
    pub end: u64,
    /// `unique-id`: optional, to tell apart reports made at once by different sources.
    pub unique_id: Option<UniqueId>,
    /// Extension `json.gz` (gzip-compressed, RFC 8460 §5.2) rather than `json`.
    pub gzip: bool,
}

/// `unique-id = 1*(ALPHA / DIGIT)` (RFC 8460 §5.1).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UniqueId(String);

impl UniqueId {
    /// Checks `1*(ALPHA / DIGIT)`; letters keep their case.
    pub fn parse(input: &str) -> Result<Self, FileNameError> {
        if input.is_empty() {
            return Err(FileNameError::EmptyUniqueId);
        }
        if let Some(ch) = input.chars().find(|c| !c.is_ascii_alphanumeric()) {
            return Err(FileNameError::BadUniqueId {
                value: input.to_owned(),
                ch,
            });
        }
        Ok(Self(input.to_owned()))
    }

    /// The identifier.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UniqueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a string is not an RFC 8460 §5.1 report file name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FileNameError {
    /// The name does not end in `.json` or `.json.gz`.
    #[error("{name:?} does not end in \".json\" or \".json.gz\" (RFC 8460 §5.1)")]
    BadExtension {
        /// The whole name.
        name: String,
    },
    /// Not 4 or 5 `!`-separated fields before the extension.
    #[error(
        "{name:?} has {found} '!'-separated fields; RFC 8460 §5.1 wants \
         sender!policy-domain!begin!end, optionally followed by !unique-id"
    )]
    FieldCount {
        /// The whole name.
        name: String,
        /// How many fields there were.
        found: usize,
    },
    /// The sender or policy domain is not an A-label host name.
    #[error("the {field} {value:?} is not a domain name in A-label form: {source}")]
    BadDomain {
        /// `sender` or `policy-domain`.
        field: &'static str,
        /// The text as found.
        value: String,
        /// What is wrong.
        #[source]
        source: DomainError,
    },
    /// A domain written with a trailing dot, which RFC 5321 `Domain` does not allow.
    #[error("the {field} {value:?} ends in a dot; file names carry names without the root dot")]
    TrailingDot {
        /// `sender` or `policy-domain`.
        field: &'static str,
        /// The text as found.
        value: String,
    },
    /// A timestamp that is not `1*DIGIT`.
    #[error("the {field} timestamp {value:?} is not a run of digits (Unix seconds)")]
    BadTimestamp {
        /// `begin` or `end`.
        field: &'static str,
        /// The text as found.
        value: String,
    },
    /// A timestamp too large for 64 bits.
    #[error("the {field} timestamp {value:?} is too large")]
    TimestampTooLarge {
        /// `begin` or `end`.
        field: &'static str,
        /// The text as found.
        value: String,
    },
    /// The end timestamp is before the begin timestamp.
    #[error("the end timestamp {end} is before the begin timestamp {begin}")]
    EndBeforeBegin {
        /// Begin, Unix seconds.
        begin: u64,
        /// End, Unix seconds.
        end: u64,
    },
    /// An empty `unique-id` after a fifth `!`.
    #[error("the unique-id after the last '!' is empty; RFC 8460 §5.1 wants 1*(ALPHA / DIGIT)")]
    EmptyUniqueId,
    /// A `unique-id` with a character other than letters and digits.
    #[error(
        "the unique-id {value:?} contains {ch:?}; RFC 8460 §5.1 allows only letters and digits"
    )]
    BadUniqueId {
        /// The text as found.
        value: String,
        /// The first character not allowed.
        ch: char,
    },
    /// A date range that starts before 1970, which `1*DIGIT` cannot write.
    #[error(
        "the report range starts before 1970-01-01T00:00:00Z, which a file name cannot express"
    )]
    BeforeEpoch,
}

impl ReportFileName {
    /// The name for a report covering `range`: begin and end are the range's start and
    /// end in Unix seconds (for [`DateRange::utc_day`] that gives `…!1663200000!1663286399`,
    /// as Google and Microsoft write).
    pub fn for_range(
        sender: DomainName,
        policy_domain: DomainName,
        range: &DateRange,
        unique_id: Option<UniqueId>,
        gzip: bool,
    ) -> Result<Self, FileNameError> {
        let seconds = |t: time::OffsetDateTime| {
            u64::try_from(t.unix_timestamp()).map_err(|_| FileNameError::BeforeEpoch)
        };
        Ok(Self {
            sender,
            policy_domain,
            begin: seconds(range.start())?,
            end: seconds(range.end())?,
            unique_id,
            gzip,
        })
    }

    /// The media type of the file's content (RFC 8460 §6.3, §6.4).
    pub fn media_type(&self) -> &'static str {
        if self.gzip {
            "application/tlsrpt+gzip"
        } else {
            "application/tlsrpt+json"
        }
    }
}

impl fmt::Display for ReportFileName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}!{}!{}!{}",
            self.sender, self.policy_domain, self.begin, self.end
        )?;
        if let Some(id) = &self.unique_id {
            write!(f, "!{id}")?;
        }
        f.write_str(if self.gzip { ".json.gz" } else { ".json" })
    }
}

impl FromStr for ReportFileName {
    type Err = FileNameError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        // ABNF quoted strings are case-insensitive (RFC 5234 §2.3), so ".JSON.GZ" is
        // the same extension; it is written back in lower case.
        let lower = name.to_ascii_lowercase();
        let (stem_len, gzip) = if lower.ends_with(".json.gz") {
            (name.len() - ".json.gz".len(), true)
        } else if lower.ends_with(".json") {
            (name.len() - ".json".len(), false)
        } else {
            return Err(FileNameError::BadExtension {
                name: name.to_owned(),
            });
        };
        // The suffix is ASCII, so `stem_len` is a character boundary.
        let stem = &name[..stem_len];
        let fields: Vec<&str> = stem.split('!').collect();
        let ([sender, policy_domain, begin, end], unique_id) = match *fields.as_slice() {
            [sender, policy_domain, begin, end] => ([sender, policy_domain, begin, end], None),
            [sender, policy_domain, begin, end, id] => (
                [sender, policy_domain, begin, end],
                Some(UniqueId::parse(id)?),
            ),
            _ => {
                return Err(FileNameError::FieldCount {
                    name: name.to_owned(),
                    found: fields.len(),
                });
            }
        };
        let sender = domain("sender", sender)?;
        let policy_domain = domain("policy-domain", policy_domain)?;
        let begin = timestamp("begin", begin)?;
        let end = timestamp("end", end)?;
        if end < begin {
            return Err(FileNameError::EndBeforeBegin { begin, end });
        }
        Ok(Self {
            sender,
            policy_domain,
            begin,
            end,
            unique_id,
            gzip,
        })
    }
}

/// `sender` and `policy-domain`: RFC 5321 `Domain`, A-labels (§5.1: "MUST consist of the
/// Punycode-encoded A-labels"); capitals are folded.
fn domain(field: &'static str, value: &str) -> Result<DomainName, FileNameError> {
    if value.ends_with('.') {
        return Err(FileNameError::TrailingDot {
            field,
            value: value.to_owned(),
        });
    }
    DomainName::parse_a_label(value).map_err(|source| FileNameError::BadDomain {
        field,
        value: value.to_owned(),
        source,
    })
}

/// `begin-timestamp` / `end-timestamp = 1*DIGIT`, seconds since the Unix epoch.
fn timestamp(field: &'static str, value: &str) -> Result<u64, FileNameError> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(FileNameError::BadTimestamp {
            field,
            value: value.to_owned(),
        });
    }
    value.parse().map_err(|_| FileNameError::TimestampTooLarge {
        field,
        value: value.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    fn name(s: &str) -> DomainName {
        DomainName::parse(s).unwrap()
    }

    #[test]
    fn valid_names() {
        let cases = [
            (
                "mail.sndr.example.com!example.net!1470013207!1470186007!001.json.gz",
                (
                    "mail.sndr.example.com",
                    "example.net",
                    1_470_013_207,
                    1_470_186_007,
                    Some("001"),
                    true,
                ),
                "mail.sndr.example.com!example.net!1470013207!1470186007!001.json.gz",
            ),
            (
                "a.example!b.example!0!0.json",
                ("a.example", "b.example", 0, 0, None, false),
                "a.example!b.example!0!0.json",
            ),
            (
                "Google.COM!Test.xmox.nl!01663200000!1663286399!AbC9.JSON.GZ",
                (
                    "google.com",
                    "test.xmox.nl",
                    1_663_200_000,
                    1_663_286_399,
                    Some("AbC9"),
                    true,
                ),
                "google.com!test.xmox.nl!1663200000!1663286399!AbC9.json.gz",
            ),
            (
                "xn--bcher-kva.example!example.com!1!18446744073709551615.json",
                (
                    "xn--bcher-kva.example",
                    "example.com",
                    1,
                    u64::MAX,
                    None,
                    false,
                ),
                "xn--bcher-kva.example!example.com!1!18446744073709551615.json",
            ),
        ];
        for (input, (sender, pd, begin, end, id, gzip), canonical) in cases {
            let parsed: ReportFileName = input.parse().unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(parsed.sender.as_str(), sender, "{input}");
            assert_eq!(parsed.policy_domain.as_str(), pd, "{input}");
            assert_eq!((parsed.begin, parsed.end), (begin, end), "{input}");
            assert_eq!(
                parsed.unique_id.as_ref().map(UniqueId::as_str),
                id,
                "{input}"
            );
            assert_eq!(parsed.gzip, gzip, "{input}");
            assert_eq!(parsed.to_string(), canonical, "{input}");
            assert_eq!(canonical.parse::<ReportFileName>().unwrap(), parsed);
        }
    }

    #[test]
    fn invalid_names() {
        type Check = fn(&FileNameError) -> bool;
        let cases: &[(&str, Check)] = &[
            ("a.example!b.example!1!2.xml", |e| {
                matches!(e, FileNameError::BadExtension { .. })
            }),
            ("a.example!b.example!1!2.json.zip", |e| {
                matches!(e, FileNameError::BadExtension { .. })
            }),
            ("a.example!b.example!1!2.gz", |e| {
                matches!(e, FileNameError::BadExtension { .. })
            }),
            ("a.example!b.example!1.json", |e| {
                matches!(e, FileNameError::FieldCount { found: 3, .. })
            }),
            ("a.example!b.example!1!2!x!y.json", |e| {
                matches!(e, FileNameError::FieldCount { found: 6, .. })
            }),
            (".json", |e| {
                matches!(e, FileNameError::FieldCount { found: 1, .. })
            }),
            ("a.example!b.example!1!2!.json", |e| {
                matches!(e, FileNameError::EmptyUniqueId)
            }),
            ("a.example!b.example!1!2!00-1.json", |e| {
                matches!(e, FileNameError::BadUniqueId { ch: '-', .. })
            }),
            ("a.example!b.example!1!2!é.json", |e| {
                matches!(e, FileNameError::BadUniqueId { ch: 'é', .. })
            }),
            ("bücher.example!b.example!1!2.json", |e| {
                matches!(
                    e,
                    FileNameError::BadDomain {
                        field: "sender",
                        ..
                    }
                )
            }),
            ("a.example!b_c.example!1!2.json", |e| {
                matches!(
                    e,
                    FileNameError::BadDomain {
                        field: "policy-domain",
                        ..
                    }
                )
            }),
            ("!b.example!1!2.json", |e| {
                matches!(
                    e,
                    FileNameError::BadDomain {
                        field: "sender",
                        ..
                    }
                )
            }),
            ("a.example.!b.example!1!2.json", |e| {
                matches!(
                    e,
                    FileNameError::TrailingDot {
                        field: "sender",
                        ..
                    }
                )
            }),
            ("a.example!b.example!-1!2.json", |e| {
                matches!(e, FileNameError::BadTimestamp { field: "begin", .. })
            }),
            ("a.example!b.example!1!+2.json", |e| {
                matches!(e, FileNameError::BadTimestamp { field: "end", .. })
            }),
            ("a.example!b.example!!2.json", |e| {
                matches!(e, FileNameError::BadTimestamp { field: "begin", .. })
            }),
            ("a.example!b.example!1!18446744073709551616.json", |e| {
                matches!(e, FileNameError::TimestampTooLarge { field: "end", .. })
            }),
            ("a.example!b.example!2!1.json", |e| {
                matches!(e, FileNameError::EndBeforeBegin { begin: 2, end: 1 })
            }),
        ];
        for (input, check) in cases {
            let err = input.parse::<ReportFileName>().unwrap_err();
            assert!(check(&err), "{input:?} gave {err:?}");
            assert!(!err.to_string().is_empty());
        }
    }

    #[test]
    fn name_for_a_utc_day() {
        let range = DateRange::utc_day(date!(2022 - 09 - 15)).unwrap();
        let file = ReportFileName::for_range(
            name("google.com"),
            name("test.xmox.nl"),
            &range,
            Some(UniqueId::parse("001").unwrap()),
            true,
        )
        .unwrap();
        assert_eq!(
            file.to_string(),
            "google.com!test.xmox.nl!1663200000!1663286399!001.json.gz"
        );
        assert_eq!(file.media_type(), "application/tlsrpt+gzip");
        let plain = ReportFileName {
            gzip: false,
            unique_id: None,
            ..file
        };
        assert_eq!(
            plain.to_string(),
            "google.com!test.xmox.nl!1663200000!1663286399.json"
        );
        assert_eq!(plain.media_type(), "application/tlsrpt+json");
        let early = DateRange::utc_day(date!(1969 - 12 - 31)).unwrap();
        assert_eq!(
            ReportFileName::for_range(name("a.example"), name("b.example"), &early, None, false),
            Err(FileNameError::BeforeEpoch)
        );
    }
}
