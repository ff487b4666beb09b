//! The checker of raw JSON against RFC 8460 §4.4, for files mxprobe writes.

use std::fmt;
use std::net::IpAddr;

use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::model::tolerant_mx_pattern;
use super::read::ReadError;
use super::schema::{
    DATE_RANGE_FIELDS, DETAIL_FIELDS, POLICY_ENTRY_FIELDS, POLICY_FIELDS, REPORT_FIELDS,
    SUMMARY_FIELDS, element, kind, member,
};
use crate::domain::DomainName;
use crate::tlsrpt::{PolicyType, ResultType};

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
    use serde_json::json;

    use super::super::fixtures::{at, insert, remove, with};
    use super::*;

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
