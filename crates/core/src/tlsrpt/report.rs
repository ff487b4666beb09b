//! The RFC 8460 §4 aggregate report: the typed model, a strict writer, a tolerant reader
//! and a checker of raw JSON against the §4.4 field list.
//!
//! - **Writer** ([`Report::to_json`], [`Report::to_json_pretty`], [`Report::to_gzip`]):
//!   emits exactly the RFC's kebab-case members, `policies`, `policy-string` and `mx-host`
//!   always as arrays, date-times in UTC with `Z`, names as A-labels, IPv6 in RFC 5952
//!   form, and omits absent optional members (never `null`, never `""`).
//! - **Reader** ([`read_report`], [`Report::from_json`]): accepts what real senders write
//!   (Google, Microsoft, Mail.ru, the RFC's own Appendix B) and returns the report together
//!   with a typed [`Quirk`] for every departure from the RFC it tolerated. Input that
//!   cannot be understood is a [`ReadError`] naming the JSON path; it never panics.
//!   For every report the writer produces, the reader gives back an equal report with no
//!   quirks (except [`Quirk::UnknownResultType`] for a result type the report itself
//!   carries as unregistered). Two exceptions, both outside what real data produces: an
//!   optional string `Some("")` is written as absent and reads back as `None`, and a `tlsa`
//!   `policy-string` whose only element is itself a JSON array of strings reads back
//!   unwrapped (it cannot be told from Microsoft's encoding, [`Quirk::PolicyStringDoubleEncoded`]).
//!   Duplicate member names, which I-JSON (RFC 7493 §2.3) forbids, are not detected: the
//!   JSON parser keeps the last one.
//! - **Checker** ([`check_required_fields`]): one message per departure of a raw JSON value
//!   from RFC 8460 §4.4, for files that other parts of mxprobe write.
//!
//! This module does no I/O and reads no clock: bytes come in, bytes go out. The file name
//! a report travels under is [`super::filename`].

use std::fmt;
use std::io::{Read, Write};
use std::net::IpAddr;

use flate2::Compression;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use serde::ser::SerializeStruct;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, OffsetDateTime, PrimitiveDateTime, UtcOffset};

use super::{PolicyType, ResultType};
use crate::domain::{DomainError, DomainName};
use crate::mtasts::MxPattern;

/// The largest report, in bytes after decompression, that [`read_report`] accepts.
///
/// Receivers commonly cap reports near 10 MB compressed (RFC 8460 §5.2 says why reports
/// SHOULD be compressed); 20 MiB of JSON is far beyond any real daily report, and the cap
/// stops a small gzip bomb from becoming a large allocation.
pub const MAX_REPORT_BYTES: usize = 20 * 1024 * 1024;

/// The two bytes every gzip member starts with (RFC 1952 §2.3.1: ID1, ID2).
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

// ---------------------------------------------------------------------------------------
// Model
// ---------------------------------------------------------------------------------------

/// One TLS-RPT aggregate report (RFC 8460 §4.4), as mxprobe writes and reads it.
///
/// Serializing it (`serde_json::to_string`) is the strict writer; deserializing it runs
/// the tolerant reader and drops the quirk list (use [`read_report`] to keep it).
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
    /// its absence (Google omits it) with [`Quirk::MissingFailureDetails`].
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
fn tolerant_mx_pattern(text: &str) -> Result<MxPattern, DomainError> {
    match text.strip_prefix("*.") {
        Some(name) => DomainName::parse(name).map(MxPattern::wildcard),
        None => DomainName::parse(text).map(MxPattern::exact),
    }
}

// ---------------------------------------------------------------------------------------
// Writer
// ---------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------
// Reader
// ---------------------------------------------------------------------------------------

/// A report as read, with the departures from RFC 8460 the reader tolerated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadReport {
    /// The report.
    pub report: Report,
    /// Every tolerated departure, in document order.
    pub quirks: Vec<Quirk>,
}

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

/// `path.key`.
fn member(path: &str, key: &str) -> String {
    format!("{path}.{key}")
}

/// `path[index]`.
fn element(path: &str, index: usize) -> String {
    format!("{path}[{index}]")
}

/// The JSON type of `value`, in words.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
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

const REPORT_FIELDS: &[&str] = &[
    "organization-name",
    "date-range",
    "contact-info",
    "report-id",
    "policies",
];
const DATE_RANGE_FIELDS: &[&str] = &["start-datetime", "end-datetime"];
const POLICY_ENTRY_FIELDS: &[&str] = &["policy", "summary", "failure-details"];
const POLICY_FIELDS: &[&str] = &["policy-type", "policy-string", "policy-domain", "mx-host"];
const SUMMARY_FIELDS: &[&str] = &[
    "total-successful-session-count",
    "total-failure-session-count",
];
const DETAIL_FIELDS: &[&str] = &[
    "result-type",
    "sending-mta-ip",
    "receiving-mx-hostname",
    "receiving-mx-helo",
    "receiving-ip",
    "failed-session-count",
    "additional-information",
    "failure-reason-code",
];

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

// ---------------------------------------------------------------------------------------
// Checker
// ---------------------------------------------------------------------------------------

/// Checks a raw JSON report against RFC 8460 §4.4 as mxprobe's writer follows it, and
/// returns one message per problem, each starting with its JSON path. An empty list
/// means the report conforms.
///
/// Checked: the required members at every level (`failure-details` included, `mx-host`
/// for `sts`) and no others; arrays where §4.4 and erratum 6241 call for arrays; counts as
/// non-negative JSON integers; date-times as RFC 3339 in UTC with `Z`, start not after
/// end; `policies` not empty; `policy-type` and `result-type` from the registered
/// values; names in canonical A-label form; IPs in canonical form (RFC 5952 for IPv6);
/// `contact-info` shaped as an addr-spec; `additional-information` shaped as a URI;
/// optional members either absent or non-empty strings (never `null` or `""`).
///
/// Not required: `sending-mta-ip`, `receiving-mx-hostname` and `receiving-ip`. §4.4 does
/// not mark them optional, but policy-level failures (§4.3.2) have no session to describe,
/// and the RFC's own Appendix B example leaves `receiving-ip` out.
pub fn check_required_fields(report: &Value) -> Vec<String> {
    let mut checker = Checker {
        problems: Vec::new(),
    };
    checker.report(report);
    checker.problems
}

struct Checker {
    problems: Vec<String>,
}

impl Checker {
    fn problem(&mut self, path: &str, what: impl fmt::Display) {
        self.problems.push(format!("{path}: {what}"));
    }

    /// A value of the wrong JSON type where §4.4 calls for `expected`.
    fn wrong_type(&mut self, path: &str, expected: &str, found: &Value) {
        self.problem(
            path,
            format_args!("must be {expected}, found {}", kind(found)),
        );
    }

    fn object<'a>(&mut self, value: &'a Value, path: &str) -> Option<&'a Map<String, Value>> {
        match value {
            Value::Object(object) => Some(object),
            other => {
                self.wrong_type(path, "an object", other);
                None
            }
        }
    }

    fn unexpected(&mut self, object: &Map<String, Value>, path: &str, known: &[&str]) {
        for key in object.keys() {
            if !known.contains(&key.as_str()) {
                self.problem(&member(path, key), "is not a member RFC 8460 §4.4 defines");
            }
        }
    }

    /// The member, or a "missing" problem.
    fn required<'a>(
        &mut self,
        object: &'a Map<String, Value>,
        path: &str,
        key: &str,
    ) -> Option<(String, &'a Value)> {
        let at = member(path, key);
        match object.get(key) {
            Some(value) => Some((at, value)),
            None => {
                self.problem(&at, "is required by RFC 8460 §4.4 but missing");
                None
            }
        }
    }

    /// A string member that must be present and not empty.
    fn required_text<'a>(
        &mut self,
        object: &'a Map<String, Value>,
        path: &str,
        key: &str,
    ) -> Option<(String, &'a str)> {
        let (at, value) = self.required(object, path, key)?;
        match value {
            Value::String(s) if s.is_empty() => {
                self.problem(&at, "must not be empty");
                None
            }
            Value::String(s) => Some((at, s)),
            other => {
                self.wrong_type(&at, "a string", other);
                None
            }
        }
    }

    /// An optional string member: absent, or a non-empty string.
    fn optional_text<'a>(
        &mut self,
        object: &'a Map<String, Value>,
        path: &str,
        key: &str,
    ) -> Option<(String, &'a str)> {
        let at = member(path, key);
        match object.get(key)? {
            Value::String(s) if s.is_empty() => {
                self.problem(
                    &at,
                    "is an empty string; leave an unknown optional member out",
                );
                None
            }
            Value::String(s) => Some((at, s)),
            Value::Null => {
                self.problem(&at, "is null; leave an unknown optional member out");
                None
            }
            other => {
                self.wrong_type(&at, "a string", other);
                None
            }
        }
    }

    fn count(&mut self, object: &Map<String, Value>, path: &str, key: &str) {
        let Some((at, value)) = self.required(object, path, key) else {
            return;
        };
        match value {
            Value::Number(n) if n.is_u64() => {}
            Value::Number(n) if n.is_i64() => self.problem(&at, "must not be negative"),
            Value::Number(n) => self.problem(
                &at,
                format_args!("must be an integer (RFC 8460 §4.4), found {n}"),
            ),
            other => self.wrong_type(&at, "an integer encoded as a JSON number", other),
        }
    }

    fn string_array<'a>(&mut self, value: &'a Value, path: &str) -> Vec<(String, &'a str)> {
        let Value::Array(items) = value else {
            self.wrong_type(path, "an array of strings", value);
            return Vec::new();
        };
        let mut strings = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let at = element(path, i);
            match item {
                Value::String(s) => strings.push((at, s.as_str())),
                other => self.wrong_type(&at, "a string", other),
            }
        }
        strings
    }

    fn canonical_domain(&mut self, text: &str, path: &str) {
        // RFC 8460 §4.4: A-labels, not U-labels; mxprobe also writes lower case, no dot.
        match DomainName::parse_a_label(text) {
            Ok(domain) if domain.as_str() == text => {}
            Ok(domain) => self.problem(
                path,
                format_args!(
                    "{text:?} is not in canonical form; write {:?}",
                    domain.as_str()
                ),
            ),
            Err(e) => self.problem(path, e),
        }
    }

    fn canonical_ip(&mut self, text: &str, path: &str) {
        match text.parse::<IpAddr>() {
            Ok(ip) if ip.to_string() == text => {}
            Ok(ip) => self.problem(
                path,
                format_args!("{text:?} is not in canonical form (RFC 5952); write \"{ip}\""),
            ),
            Err(_) => self.problem(path, format_args!("{text:?} is not an IP address")),
        }
    }

    fn report(&mut self, value: &Value) {
        let path = "$";
        let Some(object) = self.object(value, path) else {
            return;
        };
        self.unexpected(object, path, REPORT_FIELDS);
        self.required_text(object, path, "organization-name");
        if let Some((at, range)) = self.required(object, path, "date-range") {
            self.date_range(range, &at);
        }
        if let Some((at, contact)) = self.required_text(object, path, "contact-info") {
            self.contact_info(contact, &at);
        }
        self.required_text(object, path, "report-id");
        if let Some((at, policies)) = self.required(object, path, "policies") {
            match policies {
                Value::Array(entries) if entries.is_empty() => self.problem(
                    &at,
                    "is empty; a report describes at least one policy (RFC 8460 §4)",
                ),
                Value::Array(entries) => {
                    for (i, entry) in entries.iter().enumerate() {
                        self.policy_entry(entry, &element(&at, i));
                    }
                }
                other => self.wrong_type(&at, "an array", other),
            }
        }
    }

    fn date_range(&mut self, value: &Value, path: &str) {
        let Some(object) = self.object(value, path) else {
            return;
        };
        self.unexpected(object, path, DATE_RANGE_FIELDS);
        let start = self
            .required_text(object, path, "start-datetime")
            .and_then(|(at, text)| self.utc_date_time(text, &at));
        let end = self
            .required_text(object, path, "end-datetime")
            .and_then(|(at, text)| self.utc_date_time(text, &at));
        if let (Some(start), Some(end)) = (start, end)
            && end < start
        {
            self.problem(path, "end-datetime is before start-datetime");
        }
    }

    fn utc_date_time(&mut self, text: &str, path: &str) -> Option<OffsetDateTime> {
        match OffsetDateTime::parse(text, &Rfc3339) {
            // RFC 8460 §4.1: a UTC day; mxprobe writes the zone as `Z`, never an offset.
            Ok(t) if text.ends_with('Z') => Some(t),
            Ok(t) => {
                self.problem(
                    path,
                    format_args!("{text:?} must be in UTC written with \"Z\""),
                );
                Some(t)
            }
            Err(_) => {
                self.problem(
                    path,
                    format_args!("{text:?} is not an RFC 3339 date-time with a time zone"),
                );
                None
            }
        }
    }

    fn contact_info(&mut self, text: &str, path: &str) {
        // RFC 8460 §4.4: an RFC 5322 §3.4.1 addr-spec, `local-part "@" domain`.
        let shaped = text.rsplit_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && !text.chars().any(char::is_whitespace)
                && DomainName::parse_a_label(domain).is_ok()
        });
        if !shaped {
            self.problem(
                path,
                format_args!("{text:?} is not an e-mail address (local-part@domain)"),
            );
        }
    }

    fn policy_entry(&mut self, value: &Value, path: &str) {
        let Some(object) = self.object(value, path) else {
            return;
        };
        self.unexpected(object, path, POLICY_ENTRY_FIELDS);
        if let Some((at, policy)) = self.required(object, path, "policy") {
            self.policy(policy, &at);
        }
        if let Some((at, summary)) = self.required(object, path, "summary")
            && let Some(summary) = self.object(summary, &at)
        {
            self.unexpected(summary, &at, SUMMARY_FIELDS);
            self.count(summary, &at, "total-successful-session-count");
            self.count(summary, &at, "total-failure-session-count");
        }
        if let Some((at, details)) = self.required(object, path, "failure-details") {
            match details {
                Value::Array(entries) => {
                    for (i, entry) in entries.iter().enumerate() {
                        self.failure_detail(entry, &element(&at, i));
                    }
                }
                other => self.wrong_type(&at, "an array", other),
            }
        }
    }

    fn policy(&mut self, value: &Value, path: &str) {
        let Some(object) = self.object(value, path) else {
            return;
        };
        self.unexpected(object, path, POLICY_FIELDS);
        let policy_type = self
            .required_text(object, path, "policy-type")
            .and_then(|(at, text)| match text.parse::<PolicyType>() {
                Ok(t) => Some(t),
                Err(_) => {
                    self.problem(
                        &at,
                        format_args!("{text:?} is not one of tlsa, sts, no-policy-found"),
                    );
                    None
                }
            });
        if let Some((at, strings)) = self.required(object, path, "policy-string") {
            self.string_array(strings, &at);
        }
        if let Some((at, domain)) = self.required_text(object, path, "policy-domain") {
            self.canonical_domain(domain, &at);
        }
        let mx_host = if policy_type == Some(PolicyType::Sts) {
            // RFC 8460 §4.4: "In the case where policy-type is sts", the policy's patterns.
            self.required(object, path, "mx-host")
        } else {
            object.get("mx-host").map(|v| (member(path, "mx-host"), v))
        };
        if let Some((at, patterns)) = mx_host {
            for (item_at, text) in self.string_array(patterns, &at) {
                match tolerant_mx_pattern(text) {
                    Ok(p) if p.to_string() == text => {}
                    Ok(p) => self.problem(
                        &item_at,
                        format_args!("{text:?} is not in canonical form; write \"{p}\""),
                    ),
                    // The reader's words for the same value; they start with the path too.
                    Err(source) => self.problems.push(
                        ReadError::BadMxHost {
                            path: item_at,
                            value: text.to_owned(),
                            source,
                        }
                        .to_string(),
                    ),
                }
            }
        }
    }

    fn failure_detail(&mut self, value: &Value, path: &str) {
        let Some(object) = self.object(value, path) else {
            return;
        };
        self.unexpected(object, path, DETAIL_FIELDS);
        if let Some((at, text)) = self.required_text(object, path, "result-type")
            && text.parse::<ResultType>().is_err()
        {
            self.problem(
                &at,
                format_args!("{text:?} is not a result type RFC 8460 §4.3 defines"),
            );
        }
        for key in ["sending-mta-ip", "receiving-ip"] {
            if let Some((at, text)) = self.optional_text(object, path, key) {
                self.canonical_ip(text, &at);
            }
        }
        if let Some((at, text)) = self.optional_text(object, path, "receiving-mx-hostname") {
            self.canonical_domain(text, &at);
        }
        self.optional_text(object, path, "receiving-mx-helo");
        self.count(object, path, "failed-session-count");
        if let Some((at, text)) = self.optional_text(object, path, "additional-information")
            && !looks_like_uri(text)
        {
            self.problem(
                &at,
                format_args!("{text:?} is not a URI (RFC 3986: scheme \":\" …)"),
            );
        }
        self.optional_text(object, path, "failure-reason-code");
    }
}

/// RFC 3986 §3: `scheme ":" hier-part`, scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ),
/// with no spaces anywhere.
fn looks_like_uri(text: &str) -> bool {
    let Some((scheme, rest)) = text.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        && !rest.is_empty()
        && !text.chars().any(|c| c.is_whitespace() || c.is_control())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use time::macros::{date, datetime};

    fn domain(s: &str) -> DomainName {
        DomainName::parse(s).unwrap()
    }

    /// A report that uses every field, as mxprobe would write it.
    fn full_report() -> Report {
        Report {
            organization_name: "mxprobe (synthetic)".to_owned(),
            date_range: DateRange::utc_day(date!(2024 - 09 - 03)).unwrap(),
            contact_info: "reports@probe.example".to_owned(),
            report_id: "2024-09-03T00:00:00Z_example.com".to_owned(),
            policies: vec![
                PolicyReport {
                    policy: PolicyDetails {
                        policy_type: PolicyType::Sts,
                        policy_string: vec![
                            "version: STSv1".to_owned(),
                            "mode: testing".to_owned(),
                            "mx: *.mail.example.com".to_owned(),
                            "max_age: 86400".to_owned(),
                        ],
                        policy_domain: domain("example.com"),
                        mx_host: vec![MxPattern::wildcard(domain("mail.example.com"))],
                    },
                    summary: Summary {
                        total_successful_session_count: 5,
                        total_failure_session_count: 2,
                    },
                    failure_details: vec![
                        FailureDetail {
                            result_type: ResultType::CertificateExpired.into(),
                            sending_mta_ip: Some("2001:db8:abcd:12::1".parse().unwrap()),
                            receiving_mx_hostname: Some(domain("mx1.mail.example.com")),
                            receiving_mx_helo: Some("mx1.mail.example.com".to_owned()),
                            receiving_ip: Some("203.0.113.56".parse().unwrap()),
                            failed_session_count: 1,
                            additional_information: Some(
                                "https://probe.example/info?id=1".to_owned(),
                            ),
                            failure_reason_code: Some("certificate expired".to_owned()),
                        },
                        FailureDetail {
                            result_type: ResultType::StsPolicyFetchError.into(),
                            sending_mta_ip: None,
                            receiving_mx_hostname: None,
                            receiving_mx_helo: None,
                            receiving_ip: None,
                            failed_session_count: 1,
                            additional_information: None,
                            failure_reason_code: Some("HTTP 404".to_owned()),
                        },
                    ],
                },
                PolicyReport {
                    policy: PolicyDetails {
                        policy_type: PolicyType::NoPolicyFound,
                        policy_string: Vec::new(),
                        policy_domain: domain("other.example"),
                        mx_host: Vec::new(),
                    },
                    summary: Summary::default(),
                    failure_details: Vec::new(),
                },
            ],
        }
    }

    /// A minimal report JSON that reads without quirks; cases below break one thing.
    fn base() -> Value {
        json!({
            "organization-name": "Org",
            "date-range": {
                "start-datetime": "2024-01-09T00:00:00Z",
                "end-datetime": "2024-01-09T23:59:59Z"
            },
            "contact-info": "tlsrpt@org.example",
            "report-id": "r1",
            "policies": [{
                "policy": {
                    "policy-type": "sts",
                    "policy-string": ["version: STSv1", "mode: testing", "mx: mx.example.com", "max_age: 86400"],
                    "policy-domain": "example.com",
                    "mx-host": ["mx.example.com"]
                },
                "summary": {
                    "total-successful-session-count": 1,
                    "total-failure-session-count": 1
                },
                "failure-details": [{
                    "result-type": "validation-failure",
                    "sending-mta-ip": "192.0.2.1",
                    "receiving-mx-hostname": "mx.example.com",
                    "receiving-ip": "2001:db8::25",
                    "failed-session-count": 1
                }]
            }]
        })
    }

    fn with(edit: impl FnOnce(&mut Value)) -> Value {
        let mut v = base();
        edit(&mut v);
        v
    }

    fn at<'a>(v: &'a mut Value, pointer: &str) -> &'a mut Value {
        v.pointer_mut(pointer).unwrap()
    }

    fn insert(v: &mut Value, pointer: &str, key: &str, value: Value) {
        at(v, pointer)
            .as_object_mut()
            .unwrap()
            .insert(key.to_owned(), value);
    }

    fn remove(v: &mut Value, pointer: &str, key: &str) {
        at(v, pointer).as_object_mut().unwrap().remove(key);
    }

    #[test]
    fn base_reads_without_quirks_and_passes_the_checker() {
        let read = Report::from_value(&base()).unwrap();
        assert_eq!(read.quirks, vec![]);
        assert_eq!(check_required_fields(&base()), Vec::<String>::new());
    }

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

    #[test]
    fn checker_finds_each_problem() {
        let cases: Vec<(&str, Value, &str)> = vec![
            (
                "not an object",
                json!("x"),
                "$: must be an object, found a string",
            ),
            (
                "missing organization",
                with(|v| remove(v, "", "organization-name")),
                "$.organization-name: is required by RFC 8460 §4.4 but missing",
            ),
            (
                "empty report-id",
                with(|v| *at(v, "/report-id") = json!("")),
                "$.report-id: must not be empty",
            ),
            (
                "contact not an address",
                with(|v| *at(v, "/contact-info") = json!("Org support")),
                "$.contact-info: \"Org support\" is not an e-mail address (local-part@domain)",
            ),
            (
                "offset instead of Z",
                with(|v| *at(v, "/date-range/start-datetime") = json!("2024-01-09T00:00:00+00:00")),
                "$.date-range.start-datetime: \"2024-01-09T00:00:00+00:00\" must be in UTC written with \"Z\"",
            ),
            (
                "zone-less time",
                with(|v| *at(v, "/date-range/end-datetime") = json!("2024-01-09T23:59:59")),
                "$.date-range.end-datetime: \"2024-01-09T23:59:59\" is not an RFC 3339 date-time with a time zone",
            ),
            (
                "end before start",
                with(|v| *at(v, "/date-range/end-datetime") = json!("2024-01-08T23:59:59Z")),
                "$.date-range: end-datetime is before start-datetime",
            ),
            (
                "policies an object",
                with(|v| {
                    let e = at(v, "/policies/0").take();
                    *at(v, "/policies") = e;
                }),
                "$.policies: must be an array, found an object",
            ),
            (
                "policies empty",
                with(|v| *at(v, "/policies") = json!([])),
                "$.policies: is empty; a report describes at least one policy (RFC 8460 §4)",
            ),
            (
                "bad policy-type",
                with(|v| *at(v, "/policies/0/policy/policy-type") = json!("dane")),
                "$.policies[0].policy.policy-type: \"dane\" is not one of tlsa, sts, no-policy-found",
            ),
            (
                "policy-string missing",
                with(|v| remove(v, "/policies/0/policy", "policy-string")),
                "$.policies[0].policy.policy-string: is required by RFC 8460 §4.4 but missing",
            ),
            (
                "policy-string a string",
                with(|v| *at(v, "/policies/0/policy/policy-string") = json!("version: STSv1")),
                "$.policies[0].policy.policy-string: must be an array of strings, found a string",
            ),
            (
                "mx-host a string",
                with(|v| *at(v, "/policies/0/policy/mx-host") = json!("mx.example.com")),
                "$.policies[0].policy.mx-host: must be an array of strings, found a string",
            ),
            (
                "sts without mx-host",
                with(|v| remove(v, "/policies/0/policy", "mx-host")),
                "$.policies[0].policy.mx-host: is required by RFC 8460 §4.4 but missing",
            ),
            (
                "U-label policy-domain",
                with(|v| *at(v, "/policies/0/policy/policy-domain") = json!("bücher.example")),
                "$.policies[0].policy.policy-domain: label \"bücher\" of \"bücher.example\" contains 'ü'; host names use only letters, digits and '-'",
            ),
            (
                "capital mx-host",
                with(|v| *at(v, "/policies/0/policy/mx-host/0") = json!("MX.example.com")),
                "$.policies[0].policy.mx-host[0]: \"MX.example.com\" is not in canonical form; write \"mx.example.com\"",
            ),
            (
                "count a string",
                with(|v| *at(v, "/policies/0/summary/total-successful-session-count") = json!("1")),
                "$.policies[0].summary.total-successful-session-count: must be an integer encoded as a JSON number, found a string",
            ),
            (
                "count fractional",
                with(|v| *at(v, "/policies/0/summary/total-failure-session-count") = json!(1.5)),
                "$.policies[0].summary.total-failure-session-count: must be an integer (RFC 8460 §4.4), found 1.5",
            ),
            (
                "count negative",
                with(|v| *at(v, "/policies/0/failure-details/0/failed-session-count") = json!(-2)),
                "$.policies[0].failure-details[0].failed-session-count: must not be negative",
            ),
            (
                "failure-details missing",
                with(|v| remove(v, "/policies/0", "failure-details")),
                "$.policies[0].failure-details: is required by RFC 8460 §4.4 but missing",
            ),
            (
                "unknown result type",
                with(|v| {
                    *at(v, "/policies/0/failure-details/0/result-type") = json!("starttls-failed")
                }),
                "$.policies[0].failure-details[0].result-type: \"starttls-failed\" is not a result type RFC 8460 §4.3 defines",
            ),
            (
                "non-canonical IPv6",
                with(|v| {
                    *at(v, "/policies/0/failure-details/0/receiving-ip") = json!("2001:db8:0:0::25")
                }),
                "$.policies[0].failure-details[0].receiving-ip: \"2001:db8:0:0::25\" is not in canonical form (RFC 5952); write \"2001:db8::25\"",
            ),
            (
                "empty optional",
                with(|v| *at(v, "/policies/0/failure-details/0/sending-mta-ip") = json!("")),
                "$.policies[0].failure-details[0].sending-mta-ip: is an empty string; leave an unknown optional member out",
            ),
            (
                "null optional",
                with(|v| {
                    insert(
                        v,
                        "/policies/0/failure-details/0",
                        "failure-reason-code",
                        json!(null),
                    )
                }),
                "$.policies[0].failure-details[0].failure-reason-code: is null; leave an unknown optional member out",
            ),
            (
                "additional-information not a URI",
                with(|v| {
                    insert(
                        v,
                        "/policies/0/failure-details/0",
                        "additional-information",
                        json!("see the logs"),
                    )
                }),
                "$.policies[0].failure-details[0].additional-information: \"see the logs\" is not a URI (RFC 3986: scheme \":\" …)",
            ),
            (
                "unexpected member",
                with(|v| insert(v, "/policies/0/policy", "mx-hosts", json!([]))),
                "$.policies[0].policy.mx-hosts: is not a member RFC 8460 §4.4 defines",
            ),
        ];
        for (name, input, expected) in cases {
            assert_eq!(
                check_required_fields(&input),
                vec![expected.to_owned()],
                "{name}"
            );
        }
    }

    #[test]
    fn checker_accepts_optional_members_and_other_policy_types() {
        let v = with(|v| {
            *at(v, "/policies/0/policy/policy-type") = json!("no-policy-found");
            *at(v, "/policies/0/policy/policy-string") = json!([]);
            remove(v, "/policies/0/policy", "mx-host");
            remove(v, "/policies/0/failure-details/0", "sending-mta-ip");
            let d = at(v, "/policies/0/failure-details/0")
                .as_object_mut()
                .unwrap();
            d.insert("receiving-mx-helo".into(), json!("mx.example.com ESMTP"));
            d.insert(
                "additional-information".into(),
                json!("https://x.example/a?b=c"),
            );
            d.insert(
                "failure-reason-code".into(),
                json!("X509_V_ERR_PROXY_PATH_LENGTH_EXCEEDED"),
            );
        });
        assert_eq!(check_required_fields(&v), Vec::<String>::new());
    }
}
