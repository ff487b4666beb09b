//! The report model and its strict writer.

use std::fmt;
use std::io::Write;
use std::net::IpAddr;

use flate2::Compression;
use flate2::write::GzEncoder;
use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};
use time::format_description::well_known::Rfc3339;
use time::{Date, OffsetDateTime, UtcOffset};

use crate::domain::{DomainError, DomainName};
use crate::mtasts::MxPattern;
use crate::tlsrpt::{PolicyType, ResultType};

/// One TLS-RPT aggregate report (RFC 8460 §4.4), as mxprobe writes and reads it.
///
/// Serializing it (`serde_json::to_string`) is the strict writer; deserializing it runs
/// the tolerant reader and drops the quirk list (use [`read_report`](super::read_report)
/// to keep it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Report {
    /// `organization-name`: the organization responsible for the report.
    pub organization_name: String,
    /// `date-range`: the period the report covers.
    pub date_range: DateRange,
    /// `contact-info`: an RFC 5322 addr-spec for the party responsible for the report.
    pub contact_info: String,
    /// `report-id`: a unique identifier, in whatever scheme the author prefers.
    pub report_id: String,
    /// `policies`: one entry per applied policy. Always written as an array.
    pub policies: Vec<PolicyReport>,
}

/// `date-range`: the start and end of the reported period (RFC 8460 §4.4 `date-time`,
/// RFC 3339 §5.6).
///
/// Both instants are kept in UTC and within the years 0000–9999 (RFC 3339 `date-fullyear`
/// is four digits), and the end is not before the start, so the range can always be
/// written. Build it with [`DateRange::new`] or [`DateRange::utc_day`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateRange {
    start: OffsetDateTime,
    end: OffsetDateTime,
}

/// Why two instants do not make a writable [`DateRange`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DateRangeError {
    /// An instant whose UTC date is outside the years 0000–9999.
    #[error(
        "the {which} date-time {value} falls outside the years 0000-9999 in UTC, \
         which an RFC 3339 date-time cannot express"
    )]
    YearOutOfRange {
        /// `start` or `end`.
        which: &'static str,
        /// The instant as given.
        value: OffsetDateTime,
    },
    /// The end lies before the start.
    #[error("the range ends ({end}) before it starts ({start})")]
    EndBeforeStart {
        /// The start, in UTC.
        start: OffsetDateTime,
        /// The end, in UTC.
        end: OffsetDateTime,
    },
}

impl DateRange {
    /// A range from `start` to `end`, both converted to UTC.
    pub fn new(start: OffsetDateTime, end: OffsetDateTime) -> Result<Self, DateRangeError> {
        let start = writable_utc(start).ok_or(DateRangeError::YearOutOfRange {
            which: "start",
            value: start,
        })?;
        let end = writable_utc(end).ok_or(DateRangeError::YearOutOfRange {
            which: "end",
            value: end,
        })?;
        if end < start {
            return Err(DateRangeError::EndBeforeStart { start, end });
        }
        Ok(Self { start, end })
    }

    /// The full UTC day RFC 8460 §4.1 asks a report to cover: `date`T00:00:00Z to
    /// `date`T23:59:59Z, the form Google and Microsoft write (and that their file names'
    /// end timestamps match).
    pub fn utc_day(date: Date) -> Result<Self, DateRangeError> {
        let start = date.midnight().assume_utc();
        let end = date
            .with_hms(23, 59, 59)
            .expect("23:59:59 is a valid time of day")
            .assume_utc();
        Self::new(start, end)
    }

    /// The start of the period, in UTC.
    pub fn start(&self) -> OffsetDateTime {
        self.start
    }

    /// The end of the period, in UTC.
    pub fn end(&self) -> OffsetDateTime {
        self.end
    }
}

/// `t` in UTC, if its UTC date has a four-digit year.
fn writable_utc(t: OffsetDateTime) -> Option<OffsetDateTime> {
    let utc = t.checked_to_offset(UtcOffset::UTC)?;
    (0..=9999).contains(&utc.year()).then_some(utc)
}

/// RFC 3339 §5.6 text of a UTC instant: `Z`, never `+00:00`; fractional seconds only when
/// there are any.
fn rfc3339_utc(t: OffsetDateTime) -> String {
    t.format(&Rfc3339)
        .expect("DateRange keeps instants in UTC within years 0000-9999, which RFC 3339 can write")
}

impl Serialize for DateRange {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("DateRange", 2)?;
        s.serialize_field("start-datetime", &rfc3339_utc(self.start))?;
        s.serialize_field("end-datetime", &rfc3339_utc(self.end))?;
        s.end()
    }
}

/// One element of `policies`: the policy applied, its totals and its failures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct PolicyReport {
    /// `policy`: what was applied, for which domain.
    pub policy: PolicyDetails,
    /// `summary`: the session totals.
    pub summary: Summary,
    /// `failure-details`: one entry per distinct failure.
    ///
    /// Always written, as `[]` when there were no failures: the §4.4 schema lists the
    /// member without marking it optional (only `receiving-mx-helo` is). Readers tolerate
    /// its absence (Google omits it) with
    /// [`Quirk::MissingFailureDetails`](super::Quirk::MissingFailureDetails).
    pub failure_details: Vec<FailureDetail>,
}

/// `policy`: the applied policy (RFC 8460 §4.4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct PolicyDetails {
    /// `policy-type`: `tlsa`, `sts` or `no-policy-found`.
    pub policy_type: PolicyType,
    /// `policy-string`: the policy as a JSON array of strings — one element per MTA-STS
    /// policy line, or one per TLSA RR in presentation form. Always written, as `[]` for
    /// `no-policy-found`.
    pub policy_string: Vec<String>,
    /// `policy-domain`: the Policy Domain (for DANE, the TLSA base domain), as A-labels.
    pub policy_domain: DomainName,
    /// `mx-host`: for `sts`, the policy's `mx` patterns (RFC 8461 §3.2), as A-labels.
    /// Always written as an array (erratum 6241), `[]` when there are none.
    pub mx_host: Vec<MxPattern>,
}

/// `summary`: session totals (RFC 8460 §4.2, integers written as JSON numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Summary {
    /// `total-successful-session-count`: policy-compliant TLS sessions established.
    pub total_successful_session_count: u64,
    /// `total-failure-session-count`: sessions that could not be established.
    pub total_failure_session_count: u64,
}

/// One element of `failure-details` (RFC 8460 §4.4).
///
/// The session fields are optional in the model: policy-level failures
/// (`sts-policy-fetch-error` and friends) have no MX, no receiving IP and often no sending
/// IP, and Mail.ru and the RFC's own Appendix B leave some of them out. The writer omits a
/// `None` (and an empty string) instead of writing `""` or `null`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct FailureDetail {
    /// `result-type`: a §4.3 result type, or a value this version does not know.
    pub result_type: FailureResultType,
    /// `sending-mta-ip`: the address the Sending MTA connected from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sending_mta_ip: Option<IpAddr>,
    /// `receiving-mx-hostname`: the MX host the session went to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receiving_mx_hostname: Option<DomainName>,
    /// `receiving-mx-helo`: the name the server announced in its greeting or EHLO reply
    /// (optional in §4.4).
    #[serde(skip_serializing_if = "is_absent")]
    pub receiving_mx_helo: Option<String>,
    /// `receiving-ip`: the address the session was made to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receiving_ip: Option<IpAddr>,
    /// `failed-session-count`: sessions that met this failure.
    pub failed_session_count: u64,
    /// `additional-information`: a URI with more about the failure.
    #[serde(skip_serializing_if = "is_absent")]
    pub additional_information: Option<String>,
    /// `failure-reason-code`: free text, e.g. a TLS library error name. §4.3.1: SHOULD be
    /// set with `certificate-not-trusted` and `validation-failure`.
    #[serde(skip_serializing_if = "is_absent")]
    pub failure_reason_code: Option<String>,
}

/// Whether an optional string is left out of the JSON: RFC 8460 has no meaning for an
/// empty value, so `Some("")` is written as absent, exactly like `None`.
fn is_absent(value: &Option<String>) -> bool {
    value.as_deref().is_none_or(str::is_empty)
}

/// A `result-type` value as found in a report: one of the registered §4.3 types, or a
/// string this version does not know (kept verbatim, never dropped or mapped to another
/// type, so a reader sees exactly what the sender wrote).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FailureResultType(ResultRepr);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum ResultRepr {
    Known(ResultType),
    Unregistered(String),
}

impl FailureResultType {
    /// The value for a wire string: registered types by their exact (case-sensitive)
    /// name, anything else kept as unregistered.
    pub fn from_wire(value: &str) -> Self {
        match value.parse::<ResultType>() {
            Ok(known) => Self(ResultRepr::Known(known)),
            Err(_) => Self(ResultRepr::Unregistered(value.to_owned())),
        }
    }

    /// The registered result type, if this is one.
    pub fn known(&self) -> Option<ResultType> {
        match &self.0 {
            ResultRepr::Known(known) => Some(*known),
            ResultRepr::Unregistered(_) => None,
        }
    }

    /// The wire string.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            ResultRepr::Known(known) => known.as_str(),
            ResultRepr::Unregistered(other) => other,
        }
    }
}

impl From<ResultType> for FailureResultType {
    fn from(known: ResultType) -> Self {
        Self(ResultRepr::Known(known))
    }
}

impl PartialEq<ResultType> for FailureResultType {
    fn eq(&self, other: &ResultType) -> bool {
        self.known() == Some(*other)
    }
}

impl fmt::Display for FailureResultType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for FailureResultType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// An `mx-host` value as senders write it: an MTA-STS `mx` pattern (RFC 8461 §3.2), `*.`
/// as the whole leftmost label or nothing, then a host name. The name part is read with
/// [`DomainName::parse`], so U-labels, capitals and a trailing dot are converted to the
/// canonical A-label form instead of rejected; callers compare the result's text with the
/// input to see whether it was canonical.
pub(super) fn tolerant_mx_pattern(text: &str) -> Result<MxPattern, DomainError> {
    match text.strip_prefix("*.") {
        Some(name) => DomainName::parse(name).map(MxPattern::wildcard),
        None => DomainName::parse(text).map(MxPattern::exact),
    }
}

impl Report {
    /// The report as compact JSON (the `application/tlsrpt+json` body, RFC 8460 §6.3).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self)
            .expect("every field serializes to JSON: string keys, writable date-times")
    }

    /// The report as indented JSON, for people to read.
    pub fn to_json_pretty(&self) -> String {
        serde_json::to_string_pretty(self)
            .expect("every field serializes to JSON: string keys, writable date-times")
    }

    /// The compact JSON compressed with gzip (RFC 1952), as RFC 8460 §5.2 recommends for
    /// both transports (`application/tlsrpt+gzip`, §6.4). The gzip header carries no file
    /// name and no time stamp, so equal reports give equal bytes.
    pub fn to_gzip(&self) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder
            .write_all(self.to_json().as_bytes())
            .expect("writing into a Vec cannot fail");
        encoder.finish().expect("writing into a Vec cannot fail")
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};
    use time::macros::{date, datetime};

    use super::super::fixtures::full_report;
    use super::super::read::GZIP_MAGIC;
    use super::super::{check_required_fields, read_report};
    use super::*;

    #[test]
    fn writer_output_is_exact() {
        let report = full_report();
        let json: Value = serde_json::from_str(&report.to_json()).unwrap();
        let expected = json!({
            "organization-name": "mxprobe (synthetic)",
            "date-range": {
                "start-datetime": "2024-09-03T00:00:00Z",
                "end-datetime": "2024-09-03T23:59:59Z"
            },
            "contact-info": "reports@probe.example",
            "report-id": "2024-09-03T00:00:00Z_example.com",
            "policies": [{
                "policy": {
                    "policy-type": "sts",
                    "policy-string": ["version: STSv1", "mode: testing", "mx: *.mail.example.com", "max_age: 86400"],
                    "policy-domain": "example.com",
                    "mx-host": ["*.mail.example.com"]
                },
                "summary": {"total-successful-session-count": 5, "total-failure-session-count": 2},
                "failure-details": [{
                    "result-type": "certificate-expired",
                    "sending-mta-ip": "2001:db8:abcd:12::1",
                    "receiving-mx-hostname": "mx1.mail.example.com",
                    "receiving-mx-helo": "mx1.mail.example.com",
                    "receiving-ip": "203.0.113.56",
                    "failed-session-count": 1,
                    "additional-information": "https://probe.example/info?id=1",
                    "failure-reason-code": "certificate expired"
                }, {
                    "result-type": "sts-policy-fetch-error",
                    "failed-session-count": 1,
                    "failure-reason-code": "HTTP 404"
                }]
            }, {
                "policy": {
                    "policy-type": "no-policy-found",
                    "policy-string": [],
                    "policy-domain": "other.example",
                    "mx-host": []
                },
                "summary": {"total-successful-session-count": 0, "total-failure-session-count": 0},
                "failure-details": []
            }]
        });
        assert_eq!(json, expected);
        // Members come in the RFC's order.
        assert!(report.to_json().starts_with(
            "{\"organization-name\":\"mxprobe (synthetic)\",\"date-range\":{\"start-datetime\""
        ));
        assert_eq!(check_required_fields(&json), Vec::<String>::new());
        assert_eq!(
            serde_json::from_str::<Value>(&report.to_json_pretty()).unwrap(),
            expected
        );
    }

    #[test]
    fn writer_round_trips_plain_pretty_gzip_and_serde() {
        let report = full_report();
        for bytes in [
            report.to_json().into_bytes(),
            report.to_json_pretty().into_bytes(),
            report.to_gzip(),
        ] {
            let read = read_report(&bytes).unwrap();
            assert_eq!(read.report, report);
            assert_eq!(read.quirks, vec![]);
        }
        assert_eq!(report.to_gzip()[..2], GZIP_MAGIC);
        assert_eq!(
            report.to_gzip(),
            report.to_gzip(),
            "gzip output is deterministic"
        );
        let via_serde: Report = serde_json::from_str(&report.to_json()).unwrap();
        assert_eq!(via_serde, report);
    }

    #[test]
    fn writer_omits_empty_optional_strings() {
        let mut report = full_report();
        let detail = &mut report.policies[0].failure_details[0];
        detail.receiving_mx_helo = Some(String::new());
        detail.additional_information = Some(String::new());
        detail.failure_reason_code = Some(String::new());
        let json = report.to_json();
        for key in ["receiving-mx-helo", "additional-information"] {
            assert!(!json.contains(key), "{key} in {json}");
        }
        assert!(!json.contains("\"\""), "{json}");
        let back = read_report(json.as_bytes()).unwrap().report;
        let detail = &back.policies[0].failure_details[0];
        assert_eq!(detail.receiving_mx_helo, None);
        assert_eq!(detail.failure_reason_code, None);
    }

    #[test]
    fn date_times_are_written_in_utc_with_z() {
        let range = DateRange::new(
            datetime!(2024-01-01 01:30:00.25 +01:30),
            datetime!(2024-01-01 23:59:59 -05:00),
        )
        .unwrap();
        let json = serde_json::to_value(range).unwrap();
        assert_eq!(
            json,
            json!({"start-datetime": "2024-01-01T00:00:00.25Z", "end-datetime": "2024-01-02T04:59:59Z"})
        );
        assert_eq!(range.start().offset(), UtcOffset::UTC);
    }

    #[test]
    fn date_range_rules() {
        let day = DateRange::utc_day(date!(2016 - 04 - 01)).unwrap();
        assert_eq!(day.start(), datetime!(2016-04-01 00:00:00 UTC));
        assert_eq!(day.end(), datetime!(2016-04-01 23:59:59 UTC));
        assert_eq!(
            DateRange::utc_day(date!(9999 - 12 - 31)).unwrap().end(),
            datetime!(9999-12-31 23:59:59 UTC)
        );
        assert!(matches!(
            DateRange::utc_day(date!(-0001 - 12 - 31)),
            Err(DateRangeError::YearOutOfRange { which: "start", .. })
        ));
        assert!(matches!(
            DateRange::new(
                datetime!(0000-01-01 00:30 UTC),
                datetime!(9999-12-31 23:30 -01:00)
            ),
            Err(DateRangeError::YearOutOfRange { which: "end", .. })
        ));
        assert!(matches!(
            DateRange::new(
                datetime!(2024-01-02 00:00 UTC),
                datetime!(2024-01-01 00:00 UTC)
            ),
            Err(DateRangeError::EndBeforeStart { .. })
        ));
    }

    #[test]
    fn mx_host_patterns() {
        let cases = [
            ("mx.example.com", false, "mx.example.com"),
            ("*.mail.example.com", true, "*.mail.example.com"),
            ("MX.Example.COM.", false, "mx.example.com"),
            ("*.bücher.example", true, "*.xn--bcher-kva.example"),
        ];
        for (input, wildcard, canonical) in cases {
            let p = tolerant_mx_pattern(input).unwrap();
            assert_eq!(p.is_wildcard(), wildcard, "{input}");
            assert_eq!(p.to_string(), canonical, "{input}");
        }
        for bad in [
            "",
            "*",
            "*.",
            "a.*.example",
            "**.example",
            "mx..example",
            "192.0.2.1",
        ] {
            assert!(tolerant_mx_pattern(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn failure_result_type_keeps_unknown_values() {
        let known = FailureResultType::from_wire("dane-required");
        assert_eq!(known, ResultType::DaneRequired);
        assert_eq!(known.known(), Some(ResultType::DaneRequired));
        let other = FailureResultType::from_wire("Certificate-Expired");
        assert_eq!(other.known(), None);
        assert_eq!(other.as_str(), "Certificate-Expired");
        assert_ne!(other, ResultType::CertificateExpired);
        assert_eq!(
            serde_json::to_string(&other).unwrap(),
            "\"Certificate-Expired\""
        );
        for r in ResultType::ALL {
            assert_eq!(
                FailureResultType::from_wire(r.as_str()),
                FailureResultType::from(r)
            );
        }
    }
}
