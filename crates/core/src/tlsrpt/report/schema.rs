//! The RFC 8460 §4.4 member names and the JSON path helpers the reader and the checker share.

use serde_json::Value;

/// `path.key`.
pub(super) fn member(path: &str, key: &str) -> String {
    format!("{path}.{key}")
}

/// `path[index]`.
pub(super) fn element(path: &str, index: usize) -> String {
    format!("{path}[{index}]")
}

/// The JSON type of `value`, in words.
pub(super) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

pub(super) const REPORT_FIELDS: &[&str] = &[
    "organization-name",
    "date-range",
    "contact-info",
    "report-id",
    "policies",
];
pub(super) const DATE_RANGE_FIELDS: &[&str] = &["start-datetime", "end-datetime"];
pub(super) const POLICY_ENTRY_FIELDS: &[&str] = &["policy", "summary", "failure-details"];
pub(super) const POLICY_FIELDS: &[&str] =
    &["policy-type", "policy-string", "policy-domain", "mx-host"];
pub(super) const SUMMARY_FIELDS: &[&str] = &[
    "total-successful-session-count",
    "total-failure-session-count",
];
pub(super) const DETAIL_FIELDS: &[&str] = &[
    "result-type",
    "sending-mta-ip",
    "receiving-mx-hostname",
    "receiving-mx-helo",
    "receiving-ip",
    "failed-session-count",
    "additional-information",
    "failure-reason-code",
];
