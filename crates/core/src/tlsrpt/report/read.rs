//! The tolerant reader of reports as senders mail them.

use std::io::Read;
use std::net::IpAddr;

use flate2::read::MultiGzDecoder;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

use super::model::{
    DateRange, DateRangeError, FailureDetail, FailureResultType, PolicyDetails, PolicyReport,
    Report, Summary, tolerant_mx_pattern,
};
use super::quirk::Quirk;
use super::schema::{
    DATE_RANGE_FIELDS, DETAIL_FIELDS, POLICY_ENTRY_FIELDS, POLICY_FIELDS, REPORT_FIELDS,
    SUMMARY_FIELDS, element, kind, member,
};
use crate::domain::{DomainError, DomainName};
use crate::mtasts::MxPattern;
use crate::tlsrpt::PolicyType;

/// The largest report, in bytes after decompression, that [`read_report`] accepts.
///
/// Receivers commonly cap reports near 10 MB compressed (RFC 8460 §5.2 says why reports
/// SHOULD be compressed); 20 MiB of JSON is far beyond any real daily report, and the cap
/// stops a small gzip bomb from becoming a large allocation.
pub const MAX_REPORT_BYTES: usize = 20 * 1024 * 1024;

/// The two bytes every gzip member starts with (RFC 1952 §2.3.1: ID1, ID2).
pub(super) const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

impl Report {
    /// Reads a plain JSON report with the tolerant reader and the [`MAX_REPORT_BYTES`]
    /// cap; unlike [`read_report`] it does not look for gzip.
    pub fn from_json(bytes: &[u8]) -> Result<ReadReport, ReadError> {
        parse_capped(bytes, MAX_REPORT_BYTES)
    }

    /// Reads a report already parsed as a JSON value, with the tolerant reader.
    pub fn from_value(value: &Value) -> Result<ReadReport, ReadError> {
        let mut walker = Walker { quirks: Vec::new() };
        let report = walker.report(value)?;
        Ok(ReadReport {
            report,
            quirks: walker.quirks,
        })
    }
}

impl<'de> Deserialize<'de> for Report {
    /// Runs the tolerant reader; the quirks are dropped.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Self::from_value(&value)
            .map(|read| read.report)
            .map_err(serde::de::Error::custom)
    }
}

/// A report as read, with the departures from RFC 8460 the reader tolerated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadReport {
    /// The report.
    pub report: Report,
    /// Every tolerated departure, in document order.
    pub quirks: Vec<Quirk>,
}

/// Why bytes could not be read as a TLS-RPT report. Paths are JSON paths (`$` is the
/// report).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The (decompressed) report is larger than the cap.
    #[error("the report is larger than {limit} bytes (after decompression); refusing to read it")]
    TooLarge {
        /// The cap in bytes.
        limit: usize,
    },
    /// The bytes start like gzip but do not decompress.
    #[error("the report starts like gzip but does not decompress: {source}")]
    Gzip {
        /// The decoder's complaint.
        #[source]
        source: std::io::Error,
    },
    /// The bytes are not one JSON value.
    #[error("the report is not valid JSON (line {line}, column {column}): {source}")]
    Json {
        /// Line of the problem, from 1.
        line: usize,
        /// Column of the problem, from 1.
        column: usize,
        /// The JSON parser's complaint.
        #[source]
        source: serde_json::Error,
    },
    /// A required member is absent.
    #[error("{path} is required by RFC 8460 §4.4 but missing")]
    Missing {
        /// The path the member should have had.
        path: String,
    },
    /// A member has the wrong JSON type.
    #[error("{path} must be {expected}, found {found}")]
    WrongType {
        /// Where.
        path: String,
        /// What RFC 8460 calls for.
        expected: &'static str,
        /// What was there.
        found: &'static str,
    },
    /// A count that is not a non-negative integer.
    #[error("{path} must be a non-negative integer, found {found}")]
    NotACount {
        /// Where.
        path: String,
        /// The number as written.
        found: String,
    },
    /// A date-time that is neither RFC 3339 nor RFC 3339 without its zone.
    #[error("{path} {value:?} is not an RFC 3339 date-time")]
    BadDateTime {
        /// Where.
        path: String,
        /// The text as found.
        value: String,
    },
    /// The two date-times do not make a range.
    #[error("{path} is not a usable range: {source}")]
    BadDateRange {
        /// Where (`$.date-range`).
        path: String,
        /// What is wrong.
        #[source]
        source: DateRangeError,
    },
    /// A domain name that is not one.
    #[error("{path} is not a usable domain name: {source}")]
    BadDomain {
        /// Where.
        path: String,
        /// What is wrong.
        #[source]
        source: DomainError,
    },
    /// An `mx-host` value that is not an mx pattern, even read tolerantly.
    #[error(
        "{path}: {value:?} is not an MX host pattern (a host name, optionally after \"*.\"): \
         {source}"
    )]
    BadMxHost {
        /// Where.
        path: String,
        /// The text as found.
        value: String,
        /// What is wrong with its name part (after any `*.`).
        #[source]
        source: DomainError,
    },
    /// An IP address that is not one.
    #[error("{path} {value:?} is not an IPv4 or IPv6 address")]
    BadIp {
        /// Where.
        path: String,
        /// The text as found.
        value: String,
    },
}

/// Reads a report, gzip-compressed (detected by the RFC 1952 magic bytes) or plain, with
/// the tolerant reader and the [`MAX_REPORT_BYTES`] cap.
pub fn read_report(bytes: &[u8]) -> Result<ReadReport, ReadError> {
    read_report_with_limit(bytes, MAX_REPORT_BYTES)
}

/// [`read_report`] with a different cap on the (decompressed) size in bytes.
pub fn read_report_with_limit(bytes: &[u8], limit: usize) -> Result<ReadReport, ReadError> {
    if bytes.starts_with(&GZIP_MAGIC) {
        let json = gunzip(bytes, limit)?;
        parse_capped(&json, limit)
    } else {
        parse_capped(bytes, limit)
    }
}

/// The UTF-8 encoding of U+FEFF, the byte order mark.
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

fn parse_capped(json: &[u8], limit: usize) -> Result<ReadReport, ReadError> {
    if json.len() > limit {
        return Err(ReadError::TooLarge { limit });
    }
    let (json, bom) = match json.strip_prefix(UTF8_BOM) {
        Some(rest) => (rest, true),
        None => (json, false),
    };
    let value: Value = serde_json::from_slice(json).map_err(|source| ReadError::Json {
        line: source.line(),
        column: source.column(),
        source,
    })?;
    let mut read = Report::from_value(&value)?;
    if bom {
        read.quirks.insert(
            0,
            Quirk::ByteOrderMark {
                path: "$".to_owned(),
            },
        );
    }
    Ok(read)
}

/// Decompresses every gzip member (RFC 1952 §2.2 allows several), reading at most one
/// byte past `limit` so an oversized stream is detected without being inflated.
fn gunzip(bytes: &[u8], limit: usize) -> Result<Vec<u8>, ReadError> {
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    let mut out = Vec::new();
    MultiGzDecoder::new(bytes)
        .take(cap)
        .read_to_end(&mut out)
        .map_err(|source| ReadError::Gzip { source })?;
    if out.len() > limit {
        return Err(ReadError::TooLarge { limit });
    }
    Ok(out)
}

fn wrong_type(path: String, expected: &'static str, found: &Value) -> ReadError {
    ReadError::WrongType {
        path,
        expected,
        found: kind(found),
    }
}

fn as_object<'a>(value: &'a Value, path: &str) -> Result<&'a Map<String, Value>, ReadError> {
    value
        .as_object()
        .ok_or_else(|| wrong_type(path.to_owned(), "an object", value))
}

fn as_str<'a>(value: &'a Value, path: &str) -> Result<&'a str, ReadError> {
    value
        .as_str()
        .ok_or_else(|| wrong_type(path.to_owned(), "a string", value))
}

fn required<'a>(
    object: &'a Map<String, Value>,
    path: &str,
    key: &str,
) -> Result<(String, &'a Value), ReadError> {
    let at = member(path, key);
    match object.get(key) {
        Some(value) => Ok((at, value)),
        None => Err(ReadError::Missing { path: at }),
    }
}

fn required_str<'a>(
    object: &'a Map<String, Value>,
    path: &str,
    key: &str,
) -> Result<&'a str, ReadError> {
    let (at, value) = required(object, path, key)?;
    as_str(value, &at)
}

fn count(value: &Value, path: &str) -> Result<u64, ReadError> {
    match value {
        // RFC 8460 §4.4: counts are integers encoded as JSON numbers.
        Value::Number(number) => number.as_u64().ok_or_else(|| ReadError::NotACount {
            path: path.to_owned(),
            found: number.to_string(),
        }),
        other => Err(wrong_type(path.to_owned(), "an integer", other)),
    }
}

fn required_count(object: &Map<String, Value>, path: &str, key: &str) -> Result<u64, ReadError> {
    let (at, value) = required(object, path, key)?;
    count(value, &at)
}

/// Zone-less date-time as Microsoft wrote it in 2023: RFC 3339 without `time-offset`.
const ZONELESS: &[time::format_description::BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second][optional [.[subsecond]]]");

/// The tolerant reader: walks a JSON value, collecting quirks.
struct Walker {
    quirks: Vec<Quirk>,
}

impl Walker {
    fn note(&mut self, quirk: Quirk) {
        self.quirks.push(quirk);
    }

    fn note_unknown_fields(&mut self, object: &Map<String, Value>, path: &str, known: &[&str]) {
        for key in object.keys() {
            if !known.contains(&key.as_str()) {
                self.note(Quirk::UnknownField {
                    path: member(path, key),
                });
            }
        }
    }

    /// An optional member: `None` when absent, `null` or `""` (the last two noted).
    fn optional<'a>(
        &mut self,
        object: &'a Map<String, Value>,
        path: &str,
        key: &str,
    ) -> Option<(String, &'a Value)> {
        let at = member(path, key);
        match object.get(key)? {
            Value::Null => {
                self.note(Quirk::NullOptionalField { path: at });
                None
            }
            Value::String(s) if s.is_empty() => {
                self.note(Quirk::EmptyOptionalField { path: at });
                None
            }
            value => Some((at, value)),
        }
    }

    /// An optional member that must be a string when present, with its path.
    fn optional_str<'a>(
        &mut self,
        object: &'a Map<String, Value>,
        path: &str,
        key: &str,
    ) -> Result<Option<(String, &'a str)>, ReadError> {
        let Some((at, value)) = self.optional(object, path, key) else {
            return Ok(None);
        };
        let text = as_str(value, &at)?;
        Ok(Some((at, text)))
    }

    fn optional_string(
        &mut self,
        object: &Map<String, Value>,
        path: &str,
        key: &str,
    ) -> Result<Option<String>, ReadError> {
        Ok(self
            .optional_str(object, path, key)?
            .map(|(_, text)| text.to_owned()))
    }

    fn optional_ip(
        &mut self,
        object: &Map<String, Value>,
        path: &str,
        key: &str,
    ) -> Result<Option<IpAddr>, ReadError> {
        let Some((at, text)) = self.optional_str(object, path, key)? else {
            return Ok(None);
        };
        let ip: IpAddr = text.parse().map_err(|_| ReadError::BadIp {
            path: at.clone(),
            value: text.to_owned(),
        })?;
        // RFC 8460 §4.4: IPv6 per RFC 5952; Rust's `Display` is that canonical form.
        let canonical = ip.to_string();
        if canonical != text {
            self.note(Quirk::NonCanonicalIp {
                path: at,
                found: text.to_owned(),
                canonical,
            });
        }
        Ok(Some(ip))
    }

    /// Notes [`Quirk::NonCanonicalDomain`] when a name or pattern was not written in the
    /// canonical form it was read as.
    fn note_if_non_canonical(&mut self, path: String, found: &str, canonical: &str) {
        if canonical != found {
            self.note(Quirk::NonCanonicalDomain {
                path,
                found: found.to_owned(),
                canonical: canonical.to_owned(),
            });
        }
    }

    fn domain(&mut self, text: &str, path: String) -> Result<DomainName, ReadError> {
        let domain = DomainName::parse(text).map_err(|source| ReadError::BadDomain {
            path: path.clone(),
            source,
        })?;
        self.note_if_non_canonical(path, text, domain.as_str());
        Ok(domain)
    }

    fn mx_pattern(&mut self, text: &str, path: String) -> Result<MxPattern, ReadError> {
        let pattern = tolerant_mx_pattern(text).map_err(|source| ReadError::BadMxHost {
            path: path.clone(),
            value: text.to_owned(),
            source,
        })?;
        self.note_if_non_canonical(path, text, &pattern.to_string());
        Ok(pattern)
    }

    /// A member RFC 8460 §4.4 makes an array of strings (`policy-string`, and `mx-host`
    /// per erratum 6241), each element converted by `item`: empty when absent, `null` or
    /// `""`; a bare string is read as a one-element array and noted with `was_string`.
    fn string_list<T>(
        &mut self,
        object: &Map<String, Value>,
        path: &str,
        key: &str,
        was_string: fn(String) -> Quirk,
        mut item: impl FnMut(&mut Self, &str, String) -> Result<T, ReadError>,
    ) -> Result<Vec<T>, ReadError> {
        match self.optional(object, path, key) {
            None => Ok(Vec::new()),
            Some((at, Value::String(s))) => {
                self.note(was_string(at.clone()));
                Ok(vec![item(self, s, at)?])
            }
            Some((at, Value::Array(items))) => items
                .iter()
                .enumerate()
                .map(|(i, value)| {
                    let item_at = element(&at, i);
                    let text = as_str(value, &item_at)?;
                    item(self, text, item_at)
                })
                .collect(),
            Some((at, other)) => Err(wrong_type(at, "an array of strings", other)),
        }
    }

    fn date_time(&mut self, value: &Value, path: String) -> Result<OffsetDateTime, ReadError> {
        let text = as_str(value, &path)?;
        if let Ok(t) = OffsetDateTime::parse(text, &Rfc3339) {
            return Ok(t);
        }
        // Microsoft (2023) wrote `2023-01-10T00:00:00`: RFC 3339 §5.6 requires the offset,
        // but a report period is a UTC day (RFC 8460 §4.1), so UTC is the only reading.
        match PrimitiveDateTime::parse(text, ZONELESS) {
            Ok(t) => {
                self.note(Quirk::DateTimeWithoutZone {
                    path,
                    value: text.to_owned(),
                });
                Ok(t.assume_utc())
            }
            Err(_) => Err(ReadError::BadDateTime {
                path,
                value: text.to_owned(),
            }),
        }
    }

    fn report(&mut self, value: &Value) -> Result<Report, ReadError> {
        let path = "$";
        let object = as_object(value, path)?;
        self.note_unknown_fields(object, path, REPORT_FIELDS);
        let organization_name = required_str(object, path, "organization-name")?.to_owned();
        let date_range = self.date_range(object, path)?;
        let contact_info = required_str(object, path, "contact-info")?.to_owned();
        let report_id = required_str(object, path, "report-id")?.to_owned();
        let (policies_path, policies_value) = required(object, path, "policies")?;
        let mut policies = Vec::new();
        match policies_value {
            Value::Array(entries) => {
                for (i, entry) in entries.iter().enumerate() {
                    if let Some(policy) = self.policy_entry(entry, element(&policies_path, i))? {
                        policies.push(policy);
                    }
                }
            }
            // RFC 8460 §4.4: `policies` is an array; a lone object is read as one entry.
            Value::Object(_) => {
                self.note(Quirk::PoliciesWasObject {
                    path: policies_path.clone(),
                });
                if let Some(policy) = self.policy_entry(policies_value, policies_path)? {
                    policies.push(policy);
                }
            }
            other => return Err(wrong_type(policies_path, "an array", other)),
        }
        Ok(Report {
            organization_name,
            date_range,
            contact_info,
            report_id,
            policies,
        })
    }

    fn date_range(
        &mut self,
        report: &Map<String, Value>,
        path: &str,
    ) -> Result<DateRange, ReadError> {
        let (at, value) = required(report, path, "date-range")?;
        let object = as_object(value, &at)?;
        self.note_unknown_fields(object, &at, DATE_RANGE_FIELDS);
        let (start_at, start) = required(object, &at, "start-datetime")?;
        let start = self.date_time(start, start_at)?;
        let (end_at, end) = required(object, &at, "end-datetime")?;
        let end = self.date_time(end, end_at)?;
        DateRange::new(start, end).map_err(|source| ReadError::BadDateRange { path: at, source })
    }

    /// One `policies` element; `None` when its policy type is unknown.
    fn policy_entry(
        &mut self,
        value: &Value,
        path: String,
    ) -> Result<Option<PolicyReport>, ReadError> {
        let object = as_object(value, &path)?;
        let (policy_at, policy_value) = required(object, &path, "policy")?;
        let policy_object = as_object(policy_value, &policy_at)?;
        let type_text = required_str(policy_object, &policy_at, "policy-type")?;
        // RFC 8460 §4.4: "the only three valid choices are tlsa, sts, and the literal
        // string no-policy-found". An entry of another type cannot be interpreted, so it
        // is skipped as a whole rather than guessed at.
        let Ok(policy_type) = type_text.parse::<PolicyType>() else {
            self.note(Quirk::UnknownPolicyTypeSkipped {
                path,
                value: type_text.to_owned(),
            });
            return Ok(None);
        };
        self.note_unknown_fields(object, &path, POLICY_ENTRY_FIELDS);
        let policy = self.policy(policy_object, &policy_at, policy_type)?;
        let (summary_at, summary_value) = required(object, &path, "summary")?;
        let summary = self.summary(summary_value, &summary_at)?;
        let details_at = member(&path, "failure-details");
        let mut failure_details = Vec::new();
        if !object.contains_key("failure-details") {
            self.note(Quirk::MissingFailureDetails {
                path: details_at.clone(),
            });
        }
        if let Some((at, value)) = self.optional(object, &path, "failure-details") {
            let Value::Array(entries) = value else {
                return Err(wrong_type(at, "an array", value));
            };
            for (i, entry) in entries.iter().enumerate() {
                failure_details.push(self.failure_detail(entry, element(&at, i))?);
            }
        }
        Ok(Some(PolicyReport {
            policy,
            summary,
            failure_details,
        }))
    }

    fn policy(
        &mut self,
        object: &Map<String, Value>,
        path: &str,
        policy_type: PolicyType,
    ) -> Result<PolicyDetails, ReadError> {
        self.note_unknown_fields(object, path, POLICY_FIELDS);
        let policy_string = self.policy_string(object, path, policy_type)?;
        let (domain_at, domain_value) = required(object, path, "policy-domain")?;
        let domain_text = as_str(domain_value, &domain_at)?;
        let policy_domain = self.domain(domain_text, domain_at)?;
        let mx_at = member(path, "mx-host");
        if policy_type == PolicyType::Sts && !object.contains_key("mx-host") {
            self.note(Quirk::MissingMxHost {
                path: mx_at.clone(),
            });
        }
        // Erratum 6241: an array; the RFC's Appendix B example shows a bare string.
        let mx_host = self.string_list(
            object,
            path,
            "mx-host",
            |path| Quirk::MxHostWasString { path },
            Self::mx_pattern,
        )?;
        Ok(PolicyDetails {
            policy_type,
            policy_string,
            policy_domain,
            mx_host,
        })
    }

    fn policy_string(
        &mut self,
        object: &Map<String, Value>,
        path: &str,
        policy_type: PolicyType,
    ) -> Result<Vec<String>, ReadError> {
        let at = member(path, "policy-string");
        if !object.contains_key("policy-string") && policy_type != PolicyType::NoPolicyFound {
            // Mail.ru omits it for sts; for no-policy-found there is nothing to encode.
            self.note(Quirk::MissingPolicyString { path: at });
            return Ok(Vec::new());
        }
        let strings = self.string_list(
            object,
            path,
            "policy-string",
            |path| Quirk::PolicyStringWasString { path },
            |_, text, _| Ok(text.to_owned()),
        )?;
        // Microsoft writes a TLSA RRset as one string holding a JSON array. A TLSA record
        // in presentation form (RFC 6698 §2.2) starts with a digit, never with `[`, so a
        // lone element that parses as an array of strings can only be this encoding.
        if policy_type == PolicyType::Tlsa
            && let [only] = strings.as_slice()
            && only.starts_with('[')
            && let Ok(inner) = serde_json::from_str::<Vec<String>>(only)
        {
            self.note(Quirk::PolicyStringDoubleEncoded { path: at });
            return Ok(inner);
        }
        Ok(strings)
    }

    fn summary(&mut self, value: &Value, path: &str) -> Result<Summary, ReadError> {
        let object = as_object(value, path)?;
        self.note_unknown_fields(object, path, SUMMARY_FIELDS);
        Ok(Summary {
            total_successful_session_count: required_count(
                object,
                path,
                "total-successful-session-count",
            )?,
            total_failure_session_count: required_count(
                object,
                path,
                "total-failure-session-count",
            )?,
        })
    }

    fn failure_detail(&mut self, value: &Value, path: String) -> Result<FailureDetail, ReadError> {
        let object = as_object(value, &path)?;
        self.note_unknown_fields(object, &path, DETAIL_FIELDS);
        let (type_at, type_value) = required(object, &path, "result-type")?;
        let result_type = FailureResultType::from_wire(as_str(type_value, &type_at)?);
        if result_type.known().is_none() {
            // RFC 8460 §4.3: "expected to grow over time"; keep what the sender wrote.
            self.note(Quirk::UnknownResultType {
                path: type_at,
                value: result_type.as_str().to_owned(),
            });
        }
        let sending_mta_ip = self.optional_ip(object, &path, "sending-mta-ip")?;
        let receiving_mx_hostname = self
            .optional_str(object, &path, "receiving-mx-hostname")?
            .map(|(at, text)| self.domain(text, at))
            .transpose()?;
        let receiving_mx_helo = self.optional_string(object, &path, "receiving-mx-helo")?;
        let receiving_ip = self.optional_ip(object, &path, "receiving-ip")?;
        let failed_session_count = required_count(object, &path, "failed-session-count")?;
        let additional_information =
            self.optional_string(object, &path, "additional-information")?;
        let failure_reason_code = self.optional_string(object, &path, "failure-reason-code")?;
        Ok(FailureDetail {
            result_type,
            sending_mta_ip,
            receiving_mx_hostname,
            receiving_mx_helo,
            receiving_ip,
            failed_session_count,
            additional_information,
            failure_reason_code,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use flate2::Compression;
    use flate2::write::GzEncoder;
    use serde_json::json;
    use time::macros::datetime;

    use super::super::check_required_fields;
    use super::super::fixtures::{at, domain, full_report, insert, remove, with};
    use super::*;

    #[test]
    fn bad_mx_host_names_path_value_and_cause() {
        let v = with(|v| *at(v, "/policies/0/policy/mx-host/0") = json!("*.mx_1.example"));
        let err = Report::from_value(&v).unwrap_err();
        assert!(
            matches!(
                &err,
                ReadError::BadMxHost {
                    path,
                    value,
                    source: DomainError::BadCharacter { ch: '_', .. },
                } if path == "$.policies[0].policy.mx-host[0]" && value == "*.mx_1.example"
            ),
            "{err:?}"
        );
        let expected = "$.policies[0].policy.mx-host[0]: \"*.mx_1.example\" is not an MX host \
                        pattern (a host name, optionally after \"*.\"): label \"mx_1\" of \
                        \"mx_1.example\" contains '_'; host names use only letters, digits and '-'";
        assert_eq!(err.to_string(), expected);
        // The checker says the same in the same words.
        assert_eq!(check_required_fields(&v), vec![expected.to_owned()]);
    }

    #[test]
    fn tolerated_quirks() {
        type Case = (&'static str, Value, Vec<Quirk>);
        let p = |s: &str| s.to_owned();
        let cases: Vec<Case> = vec![
            (
                "mx-host as a string",
                with(|v| *at(v, "/policies/0/policy/mx-host") = json!("mx.example.com")),
                vec![Quirk::MxHostWasString {
                    path: p("$.policies[0].policy.mx-host"),
                }],
            ),
            (
                "sts without mx-host",
                with(|v| remove(v, "/policies/0/policy", "mx-host")),
                vec![Quirk::MissingMxHost {
                    path: p("$.policies[0].policy.mx-host"),
                }],
            ),
            (
                "date-time without zone",
                with(|v| *at(v, "/date-range/start-datetime") = json!("2024-01-09T00:00:00")),
                vec![Quirk::DateTimeWithoutZone {
                    path: p("$.date-range.start-datetime"),
                    value: p("2024-01-09T00:00:00"),
                }],
            ),
            (
                "sts without policy-string",
                with(|v| remove(v, "/policies/0/policy", "policy-string")),
                vec![Quirk::MissingPolicyString {
                    path: p("$.policies[0].policy.policy-string"),
                }],
            ),
            (
                "policy-string as a string",
                with(|v| *at(v, "/policies/0/policy/policy-string") = json!("version: STSv1")),
                vec![Quirk::PolicyStringWasString {
                    path: p("$.policies[0].policy.policy-string"),
                }],
            ),
            (
                "no failure-details",
                with(|v| remove(v, "/policies/0", "failure-details")),
                vec![Quirk::MissingFailureDetails {
                    path: p("$.policies[0].failure-details"),
                }],
            ),
            (
                "policies as one object",
                with(|v| {
                    let entry = at(v, "/policies/0").take();
                    *at(v, "/policies") = entry;
                }),
                vec![Quirk::PoliciesWasObject {
                    path: p("$.policies"),
                }],
            ),
            (
                "unknown result type",
                with(|v| {
                    *at(v, "/policies/0/failure-details/0/result-type") = json!("tls-downgraded")
                }),
                vec![Quirk::UnknownResultType {
                    path: p("$.policies[0].failure-details[0].result-type"),
                    value: p("tls-downgraded"),
                }],
            ),
            (
                "non-canonical IPv6 (RFC 8460 Appendix B)",
                with(|v| {
                    *at(v, "/policies/0/failure-details/0/sending-mta-ip") =
                        json!("2001:db8:abcd:0012::1")
                }),
                vec![Quirk::NonCanonicalIp {
                    path: p("$.policies[0].failure-details[0].sending-mta-ip"),
                    found: p("2001:db8:abcd:0012::1"),
                    canonical: p("2001:db8:abcd:12::1"),
                }],
            ),
            (
                "upper-case IPv6",
                with(|v| {
                    *at(v, "/policies/0/failure-details/0/receiving-ip") = json!("2001:DB8::25")
                }),
                vec![Quirk::NonCanonicalIp {
                    path: p("$.policies[0].failure-details[0].receiving-ip"),
                    found: p("2001:DB8::25"),
                    canonical: p("2001:db8::25"),
                }],
            ),
            (
                "capitals and trailing dot in names",
                with(|v| {
                    *at(v, "/policies/0/policy/policy-domain") = json!("Example.COM.");
                    *at(v, "/policies/0/policy/mx-host/0") = json!("*.Example.com");
                }),
                vec![
                    Quirk::NonCanonicalDomain {
                        path: p("$.policies[0].policy.policy-domain"),
                        found: p("Example.COM."),
                        canonical: p("example.com"),
                    },
                    Quirk::NonCanonicalDomain {
                        path: p("$.policies[0].policy.mx-host[0]"),
                        found: p("*.Example.com"),
                        canonical: p("*.example.com"),
                    },
                ],
            ),
            (
                "empty strings and nulls for optional members (mox)",
                with(|v| {
                    *at(v, "/policies/0/failure-details/0/sending-mta-ip") = json!("");
                    *at(v, "/policies/0/failure-details/0/receiving-mx-hostname") = json!(null);
                }),
                vec![
                    Quirk::EmptyOptionalField {
                        path: p("$.policies[0].failure-details[0].sending-mta-ip"),
                    },
                    Quirk::NullOptionalField {
                        path: p("$.policies[0].failure-details[0].receiving-mx-hostname"),
                    },
                ],
            ),
            (
                "unknown members",
                with(|v| {
                    insert(v, "", "x-extra", json!(1));
                    insert(v, "/policies/0/summary", "x", json!(1));
                }),
                vec![
                    Quirk::UnknownField {
                        path: p("$.x-extra"),
                    },
                    Quirk::UnknownField {
                        path: p("$.policies[0].summary.x"),
                    },
                ],
            ),
        ];
        for (name, input, expected) in cases {
            let read = Report::from_value(&input).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(read.quirks, expected, "{name}");
            for quirk in &read.quirks {
                assert!(
                    quirk.to_string().starts_with(quirk.path()),
                    "{name}: {quirk}"
                );
            }
        }
    }

    #[test]
    fn quirk_values_are_read_as_documented() {
        let v = with(|v| {
            *at(v, "/policies/0/policy/mx-host") = json!("*.Mail.example.com");
            *at(v, "/date-range/end-datetime") = json!("2024-01-09T23:59:59.5");
            *at(v, "/policies/0/failure-details/0/sending-mta-ip") = json!("2001:db8:abcd:0012::1");
        });
        let report = Report::from_value(&v).unwrap().report;
        assert_eq!(
            report.policies[0].policy.mx_host,
            vec![MxPattern::wildcard(domain("mail.example.com"))]
        );
        assert_eq!(
            report.date_range.end(),
            datetime!(2024-01-09 23:59:59.5 UTC)
        );
        assert_eq!(
            report.policies[0].failure_details[0].sending_mta_ip,
            Some("2001:db8:abcd:12::1".parse().unwrap())
        );
    }

    #[test]
    fn microsoft_double_encoded_tlsa_is_unwrapped() {
        let inner = [
            "3 1 1 7FF8B87BB269715FEF08A0F4F0033D7A2F3B680470A30E878CEB2D3E244AF3EA",
            "2 1 1 ABCD",
        ];
        let encoded = serde_json::to_string(&inner).unwrap();
        let v = with(|v| {
            *at(v, "/policies/0/policy/policy-type") = json!("tlsa");
            *at(v, "/policies/0/policy/policy-string") = json!([encoded]);
        });
        let read = Report::from_value(&v).unwrap();
        assert_eq!(read.report.policies[0].policy.policy_string, inner);
        assert_eq!(
            read.quirks,
            vec![Quirk::PolicyStringDoubleEncoded {
                path: "$.policies[0].policy.policy-string".to_owned()
            }]
        );
        // Only for tlsa: an sts policy echo is kept exactly as written.
        let v = with(|v| *at(v, "/policies/0/policy/policy-string") = json!([encoded]));
        let read = Report::from_value(&v).unwrap();
        assert_eq!(
            read.report.policies[0].policy.policy_string,
            vec![encoded.clone()]
        );
        assert_eq!(read.quirks, vec![]);
        // A single plain TLSA record is not touched.
        let v = with(|v| {
            *at(v, "/policies/0/policy/policy-type") = json!("tlsa");
            *at(v, "/policies/0/policy/policy-string") = json!(["3 1 1 AB"]);
        });
        assert_eq!(
            Report::from_value(&v).unwrap().report.policies[0]
                .policy
                .policy_string,
            ["3 1 1 AB"]
        );
    }

    #[test]
    fn unknown_policy_type_skips_only_that_entry() {
        let v = with(|v| {
            let mut second = at(v, "/policies/0").clone();
            second["policy"]["policy-type"] = json!("STS");
            second["summary"] = json!("not even an object");
            at(v, "/policies").as_array_mut().unwrap().insert(0, second);
        });
        let read = Report::from_value(&v).unwrap();
        assert_eq!(read.report.policies.len(), 1);
        assert_eq!(read.report.policies[0].policy.policy_type, PolicyType::Sts);
        assert_eq!(
            read.quirks,
            vec![Quirk::UnknownPolicyTypeSkipped {
                path: "$.policies[0]".to_owned(),
                value: "STS".to_owned()
            }]
        );
    }

    #[test]
    fn malformed_reports_name_the_path() {
        type Check = fn(&ReadError) -> bool;
        let cases: Vec<(&str, Value, Check)> = vec![
            (
                "not an object",
                json!([]),
                |e| matches!(e, ReadError::WrongType { path, found: "an array", .. } if path == "$"),
            ),
            (
                "no report-id",
                with(|v| remove(v, "", "report-id")),
                |e| matches!(e, ReadError::Missing { path } if path == "$.report-id"),
            ),
            (
                "no date-range",
                with(|v| remove(v, "", "date-range")),
                |e| matches!(e, ReadError::Missing { path } if path == "$.date-range"),
            ),
            (
                "numeric organization",
                with(|v| *at(v, "/organization-name") = json!(7)),
                |e| matches!(e, ReadError::WrongType { path, expected: "a string", found: "a number" } if path == "$.organization-name"),
            ),
            (
                "bad date",
                with(|v| *at(v, "/date-range/end-datetime") = json!("09/01/2024")),
                |e| matches!(e, ReadError::BadDateTime { path, value } if path == "$.date-range.end-datetime" && value == "09/01/2024"),
            ),
            (
                "end before start",
                with(|v| *at(v, "/date-range/end-datetime") = json!("2024-01-08T00:00:00Z")),
                |e| matches!(e, ReadError::BadDateRange { path, source: DateRangeError::EndBeforeStart { .. } } if path == "$.date-range"),
            ),
            (
                "policies a string",
                with(|v| *at(v, "/policies") = json!("x")),
                |e| matches!(e, ReadError::WrongType { path, .. } if path == "$.policies"),
            ),
            (
                "no policy-type",
                with(|v| remove(v, "/policies/0/policy", "policy-type")),
                |e| matches!(e, ReadError::Missing { path } if path == "$.policies[0].policy.policy-type"),
            ),
            (
                "bad policy-domain",
                with(|v| *at(v, "/policies/0/policy/policy-domain") = json!("a..b")),
                |e| matches!(e, ReadError::BadDomain { path, source: DomainError::EmptyLabel { .. } } if path == "$.policies[0].policy.policy-domain"),
            ),
            (
                "bad mx-host",
                with(|v| *at(v, "/policies/0/policy/mx-host/0") = json!("mx_1.example")),
                |e| matches!(e, ReadError::BadMxHost { path, .. } if path == "$.policies[0].policy.mx-host[0]"),
            ),
            (
                "mx-host a number",
                with(|v| *at(v, "/policies/0/policy/mx-host") = json!(5)),
                |e| matches!(e, ReadError::WrongType { path, .. } if path == "$.policies[0].policy.mx-host"),
            ),
            (
                "policy-string element a number",
                with(|v| *at(v, "/policies/0/policy/policy-string/1") = json!(1)),
                |e| matches!(e, ReadError::WrongType { path, .. } if path == "$.policies[0].policy.policy-string[1]"),
            ),
            (
                "no summary",
                with(|v| remove(v, "/policies/0", "summary")),
                |e| matches!(e, ReadError::Missing { path } if path == "$.policies[0].summary"),
            ),
            (
                "negative count",
                with(|v| *at(v, "/policies/0/summary/total-failure-session-count") = json!(-1)),
                |e| matches!(e, ReadError::NotACount { path, found } if path == "$.policies[0].summary.total-failure-session-count" && found == "-1"),
            ),
            (
                "fractional count",
                with(|v| *at(v, "/policies/0/failure-details/0/failed-session-count") = json!(1.5)),
                |e| matches!(e, ReadError::NotACount { path, .. } if path == "$.policies[0].failure-details[0].failed-session-count"),
            ),
            (
                "count as a string",
                with(|v| *at(v, "/policies/0/summary/total-successful-session-count") = json!("1")),
                |e| {
                    matches!(
                        e,
                        ReadError::WrongType {
                            expected: "an integer",
                            found: "a string",
                            ..
                        }
                    )
                },
            ),
            (
                "failure-details an object",
                with(|v| *at(v, "/policies/0/failure-details") = json!({})),
                |e| matches!(e, ReadError::WrongType { path, .. } if path == "$.policies[0].failure-details"),
            ),
            (
                "bad sending ip",
                with(|v| {
                    *at(v, "/policies/0/failure-details/0/sending-mta-ip") = json!("192.0.2.300")
                }),
                |e| matches!(e, ReadError::BadIp { path, value } if path == "$.policies[0].failure-details[0].sending-mta-ip" && value == "192.0.2.300"),
            ),
            (
                "IPv4 with leading zero",
                with(|v| {
                    *at(v, "/policies/0/failure-details/0/receiving-ip") = json!("192.0.2.01")
                }),
                |e| matches!(e, ReadError::BadIp { .. }),
            ),
            (
                "no result-type",
                with(|v| remove(v, "/policies/0/failure-details/0", "result-type")),
                |e| matches!(e, ReadError::Missing { path } if path == "$.policies[0].failure-details[0].result-type"),
            ),
            (
                "no failed-session-count",
                with(|v| remove(v, "/policies/0/failure-details/0", "failed-session-count")),
                |e| matches!(e, ReadError::Missing { path } if path == "$.policies[0].failure-details[0].failed-session-count"),
            ),
            (
                "helo a number",
                with(|v| {
                    insert(
                        v,
                        "/policies/0/failure-details/0",
                        "receiving-mx-helo",
                        json!(1),
                    )
                }),
                |e| matches!(e, ReadError::WrongType { path, .. } if path == "$.policies[0].failure-details[0].receiving-mx-helo"),
            ),
        ];
        for (name, input, check) in cases {
            match Report::from_value(&input) {
                Ok(read) => panic!("{name}: accepted as {read:?}"),
                Err(e) => {
                    assert!(check(&e), "{name}: {e:?}");
                    assert!(!e.to_string().is_empty());
                }
            }
        }
    }

    #[test]
    fn bytes_level_errors() {
        assert!(matches!(
            read_report(b"{\"a\": }"),
            Err(ReadError::Json {
                line: 1,
                column: 7,
                ..
            })
        ));
        assert!(matches!(read_report(b""), Err(ReadError::Json { .. })));
        // `from_json` reads JSON only; `read_report` also gunzips.
        let gz = full_report().to_gzip();
        assert!(matches!(
            Report::from_json(&gz),
            Err(ReadError::Json { .. })
        ));
        assert_eq!(
            Report::from_json(full_report().to_json().as_bytes())
                .unwrap()
                .report,
            full_report()
        );
        assert!(matches!(
            read_report(&[0x1f, 0x8b, 0, 1, 2]),
            Err(ReadError::Gzip { .. })
        ));
        let big = full_report();
        let json = big.to_json();
        assert!(matches!(
            read_report_with_limit(json.as_bytes(), json.len() - 1),
            Err(ReadError::TooLarge { limit }) if limit == json.len() - 1
        ));
        assert!(read_report_with_limit(json.as_bytes(), json.len()).is_ok());
        let gz = big.to_gzip();
        assert!(matches!(
            read_report_with_limit(&gz, json.len() - 1),
            Err(ReadError::TooLarge { .. })
        ));
        assert!(read_report_with_limit(&gz, json.len()).is_ok());
        // A gzip bomb: 50 MiB of spaces in a few kilobytes stops at the default cap.
        let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
        encoder.write_all(&vec![b' '; 50 * 1024 * 1024]).unwrap();
        let bomb = encoder.finish().unwrap();
        assert!(bomb.len() < 100_000);
        assert!(matches!(
            read_report(&bomb),
            Err(ReadError::TooLarge {
                limit: MAX_REPORT_BYTES
            })
        ));
        // Deep nesting is refused by the JSON parser, not by a stack overflow.
        let deep = "[".repeat(100_000);
        assert!(matches!(
            read_report(deep.as_bytes()),
            Err(ReadError::Json { .. })
        ));
        // Two concatenated gzip members are one report (RFC 1952 §2.2).
        let json = full_report().to_json();
        let (a, b) = json.split_at(json.len() / 2);
        let mut two = Vec::new();
        for part in [a, b] {
            let mut e = GzEncoder::new(Vec::new(), Compression::fast());
            e.write_all(part.as_bytes()).unwrap();
            two.extend(e.finish().unwrap());
        }
        assert_eq!(read_report(&two).unwrap().report, full_report());
    }

    #[test]
    fn a_byte_order_mark_is_ignored_and_noted() {
        let json = full_report().to_json();
        let mut with_bom = b"\xEF\xBB\xBF".to_vec();
        with_bom.extend_from_slice(json.as_bytes());
        for read in [
            read_report(&with_bom).unwrap(),
            Report::from_json(&with_bom).unwrap(),
            // Gzipped, the mark is inside the compressed JSON.
            read_report(&{
                let mut e = GzEncoder::new(Vec::new(), Compression::fast());
                e.write_all(&with_bom).unwrap();
                e.finish().unwrap()
            })
            .unwrap(),
        ] {
            assert_eq!(read.report, full_report());
            assert_eq!(
                read.quirks,
                [Quirk::ByteOrderMark {
                    path: "$".to_owned()
                }]
            );
            assert_eq!(
                read.quirks[0].to_string(),
                "$ starts with a UTF-8 byte order mark, which RFC 8259 §8.1 forbids; ignored"
            );
        }
        // Only at the start: a mark inside the text is not white space.
        let mut inside = json.as_bytes()[..1].to_vec();
        inside.extend_from_slice(b"\xEF\xBB\xBF");
        inside.extend_from_slice(&json.as_bytes()[1..]);
        assert!(matches!(read_report(&inside), Err(ReadError::Json { .. })));
        // Two marks are one too many.
        let mut twice = b"\xEF\xBB\xBF".to_vec();
        twice.extend_from_slice(&with_bom);
        assert!(matches!(read_report(&twice), Err(ReadError::Json { .. })));
    }
}
