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

mod check;
mod model;
mod quirk;
mod read;
mod schema;

pub use check::check_required_fields;
pub use model::{
    DateRange, DateRangeError, FailureDetail, FailureResultType, PolicyDetails, PolicyReport,
    Report, Summary,
};
pub use quirk::Quirk;
pub use read::{MAX_REPORT_BYTES, ReadError, ReadReport, read_report, read_report_with_limit};

/// Reports and JSON values the tests of the submodules share.
#[cfg(test)]
mod fixtures {
    use serde_json::{Value, json};
    use time::macros::date;

    use super::*;
    use crate::domain::DomainName;
    use crate::mtasts::MxPattern;
    use crate::tlsrpt::{PolicyType, ResultType};

    pub(super) fn domain(s: &str) -> DomainName {
        DomainName::parse(s).unwrap()
    }

    /// A report that uses every field, as mxprobe would write it.
    pub(super) fn full_report() -> Report {
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
    pub(super) fn base() -> Value {
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

    pub(super) fn with(edit: impl FnOnce(&mut Value)) -> Value {
        let mut v = base();
        edit(&mut v);
        v
    }

    pub(super) fn at<'a>(v: &'a mut Value, pointer: &str) -> &'a mut Value {
        v.pointer_mut(pointer).unwrap()
    }

    pub(super) fn insert(v: &mut Value, pointer: &str, key: &str, value: Value) {
        at(v, pointer)
            .as_object_mut()
            .unwrap()
            .insert(key.to_owned(), value);
    }

    pub(super) fn remove(v: &mut Value, pointer: &str, key: &str) {
        at(v, pointer).as_object_mut().unwrap().remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::base;
    use super::*;

    #[test]
    fn base_reads_without_quirks_and_passes_the_checker() {
        let read = Report::from_value(&base()).unwrap();
        assert_eq!(read.quirks, vec![]);
        assert_eq!(check_required_fields(&base()), Vec::<String>::new());
    }
}
