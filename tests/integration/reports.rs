//! Real TLS-RPT reports (fixtures/tlsrpt-reports) through the tolerant reader, reports we
//! write checked against RFC 8460 §4.4, round trips, and report file names (§5.1).

use std::net::IpAddr;
use std::path::Path;

use mxprobe_core::domain::DomainName;
use mxprobe_core::mtasts::MxPattern;
use mxprobe_core::tlsrpt::filename::{ReportFileName, UniqueId};
use mxprobe_core::tlsrpt::report::{
    DateRange, FailureDetail, FailureResultType, PolicyDetails, PolicyReport, Quirk, ReadReport,
    Report, Summary, check_required_fields, read_report,
};
use mxprobe_core::tlsrpt::{PolicyType, ResultType};
use proptest::prelude::*;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::macros::datetime;

/// The bytes of a file under fixtures/tlsrpt-reports/.
macro_rules! report_fixture {
    ($path:literal) => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/tlsrpt-reports/",
            $path
        ))
    };
}

const RFC8460: &[u8] = report_fixture!("parsedmarc/rfc8460.json");
const SMTP_TLS: &[u8] = report_fixture!("parsedmarc/smtp_tls.json");
const MAIL_RU: &[u8] = report_fixture!("parsedmarc/mail.ru.json");
const GOOGLE_XMOX: &[u8] = report_fixture!(
    "extracted/mox_example__google.com!test.xmox.nl!1663200000!1663286399!001.json"
);
const MICROSOFT_XMOX: &[u8] = report_fixture!(
    "extracted/mox_microsoft__microsoft.com!test.xmox.nl!1673308800!1673395199!133198585438131172.json"
);
const GOOGLE_CARDINAL: &[u8] = report_fixture!(
    "extracted/parsedmarc_google.com_smtp_tls_report__google.com!cardinalhealth.ca!1725321600!1725407999!001.json"
);

/// Every real report, by fixture name.
const REAL: [(&str, &[u8]); 6] = [
    ("rfc8460.json", RFC8460),
    ("smtp_tls.json", SMTP_TLS),
    ("mail.ru.json", MAIL_RU),
    ("google xmox", GOOGLE_XMOX),
    ("microsoft xmox", MICROSOFT_XMOX),
    ("google cardinalhealth", GOOGLE_CARDINAL),
];

fn read(bytes: &[u8]) -> ReadReport {
    read_report(bytes).unwrap_or_else(|e| panic!("real report rejected: {e}"))
}

fn domain(s: &str) -> DomainName {
    DomainName::parse(s).unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn p(s: &str) -> String {
    s.to_owned()
}

fn lines(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// The quirk for a first policy without `mx-host` (Google-style, Mail.ru, Microsoft).
fn missing_mx_host() -> Quirk {
    Quirk::MissingMxHost {
        path: p("$.policies[0].policy.mx-host"),
    }
}

/// The quirk for a first policy without `failure-details` (Google, Microsoft).
fn missing_failure_details() -> Quirk {
    Quirk::MissingFailureDetails {
        path: p("$.policies[0].failure-details"),
    }
}

#[test]
fn rfc8460_appendix_b_example() {
    let ReadReport { report, quirks } = read(RFC8460);
    assert_eq!(report.organization_name, "Company-X");
    assert_eq!(report.contact_info, "sts-reporting@company-x.example");
    assert_eq!(report.report_id, "5065427c-23d3-47ca-b6e0-946ea0e8c4be");
    assert_eq!(
        report.date_range.start(),
        datetime!(2016-04-01 00:00:00 UTC)
    );
    assert_eq!(report.date_range.end(), datetime!(2016-04-01 23:59:59 UTC));
    assert_eq!(report.policies.len(), 1);
    let policy = &report.policies[0];
    assert_eq!(
        policy.policy,
        PolicyDetails {
            policy_type: PolicyType::Sts,
            policy_string: lines(&[
                "version: STSv1",
                "mode: testing",
                "mx: *.mail.company-y.example",
                "max_age: 86400"
            ]),
            policy_domain: domain("company-y.example"),
            mx_host: vec![MxPattern::wildcard(domain("mail.company-y.example"))],
        }
    );
    assert_eq!(
        policy.summary,
        Summary {
            total_successful_session_count: 5326,
            total_failure_session_count: 303,
        }
    );
    assert_eq!(
        policy.failure_details,
        vec![
            FailureDetail {
                result_type: ResultType::CertificateExpired.into(),
                sending_mta_ip: Some(ip("2001:db8:abcd:12::1")),
                receiving_mx_hostname: Some(domain("mx1.mail.company-y.example")),
                receiving_mx_helo: None,
                receiving_ip: None,
                failed_session_count: 100,
                additional_information: None,
                failure_reason_code: None,
            },
            FailureDetail {
                result_type: ResultType::StarttlsNotSupported.into(),
                sending_mta_ip: Some(ip("2001:db8:abcd:13::1")),
                receiving_mx_hostname: Some(domain("mx2.mail.company-y.example")),
                receiving_mx_helo: None,
                receiving_ip: Some(ip("203.0.113.56")),
                failed_session_count: 200,
                additional_information: Some(p(
                    "https://reports.company-x.example/report_info?id=5065427c-23d3#StarttlsNotSupported"
                )),
                failure_reason_code: None,
            },
            FailureDetail {
                result_type: ResultType::ValidationFailure.into(),
                sending_mta_ip: Some(ip("198.51.100.62")),
                receiving_mx_hostname: Some(domain("mx-backup.mail.company-y.example")),
                receiving_mx_helo: None,
                receiving_ip: Some(ip("203.0.113.58")),
                failed_session_count: 3,
                additional_information: None,
                failure_reason_code: Some(p("X509_V_ERR_PROXY_PATH_LENGTH_EXCEEDED")),
            },
        ]
    );
    assert_eq!(
        quirks,
        vec![
            Quirk::MxHostWasString {
                path: p("$.policies[0].policy.mx-host")
            },
            Quirk::NonCanonicalIp {
                path: p("$.policies[0].failure-details[0].sending-mta-ip"),
                found: p("2001:db8:abcd:0012::1"),
                canonical: p("2001:db8:abcd:12::1"),
            },
            Quirk::NonCanonicalIp {
                path: p("$.policies[0].failure-details[1].sending-mta-ip"),
                found: p("2001:db8:abcd:0013::1"),
                canonical: p("2001:db8:abcd:13::1"),
            },
        ]
    );
    // The example as the RFC prints it is not what the strict checker accepts.
    let raw: Value = serde_json::from_slice(RFC8460).unwrap();
    assert_eq!(
        check_required_fields(&raw),
        vec![
            p("$.policies[0].policy.mx-host: must be an array of strings, found a string"),
            p(
                "$.policies[0].failure-details[0].sending-mta-ip: \"2001:db8:abcd:0012::1\" is not in canonical form (RFC 5952); write \"2001:db8:abcd:12::1\""
            ),
            p(
                "$.policies[0].failure-details[1].sending-mta-ip: \"2001:db8:abcd:0013::1\" is not in canonical form (RFC 5952); write \"2001:db8:abcd:13::1\""
            ),
        ]
    );
}

#[test]
fn google_style_report_without_mx_host() {
    let ReadReport { report, quirks } = read(SMTP_TLS);
    assert_eq!(report.organization_name, "Example Inc.");
    assert_eq!(report.contact_info, "smtp-tls-reporting@example.com");
    assert_eq!(report.report_id, "2024-01-09T00:00:00Z_example.com");
    assert_eq!(
        report.date_range.start(),
        datetime!(2024-01-09 00:00:00 UTC)
    );
    assert_eq!(report.date_range.end(), datetime!(2024-01-09 23:59:59 UTC));
    let policy = &report.policies[0];
    assert_eq!(policy.policy.policy_type, PolicyType::Sts);
    assert_eq!(policy.policy.policy_domain, domain("example.com"));
    assert_eq!(policy.policy.mx_host, vec![]);
    assert_eq!(policy.policy.policy_string[2], "mx: example.com");
    assert_eq!(policy.summary.total_successful_session_count, 0);
    assert_eq!(policy.summary.total_failure_session_count, 3);
    let details: Vec<_> = policy
        .failure_details
        .iter()
        .map(|d| {
            (
                d.result_type.known(),
                d.sending_mta_ip,
                d.receiving_ip,
                d.receiving_mx_hostname.as_ref().map(DomainName::as_str),
                d.failed_session_count,
            )
        })
        .collect();
    assert_eq!(
        details,
        vec![
            (
                Some(ResultType::ValidationFailure),
                Some(ip("209.85.222.201")),
                Some(ip("173.212.201.41")),
                Some("example.com"),
                2
            ),
            (
                Some(ResultType::ValidationFailure),
                Some(ip("209.85.208.176")),
                Some(ip("173.212.201.41")),
                Some("example.com"),
                1
            ),
        ]
    );
    assert_eq!(quirks, vec![missing_mx_host()]);
}

#[test]
fn mail_ru_policy_fetch_errors_without_session_fields() {
    let ReadReport { report, quirks } = read(MAIL_RU);
    assert_eq!(report.organization_name, "Mail.ru");
    assert_eq!(report.contact_info, "tls_support@corp.mail.ru");
    assert_eq!(
        report.report_id,
        "b28254de-7b2e-be36-bb5c-4c3b92da8b25@mail.ru"
    );
    // Mail.ru ends the day at the next midnight.
    assert_eq!(
        report.date_range.start(),
        datetime!(2024-02-22 00:00:00 UTC)
    );
    assert_eq!(report.date_range.end(), datetime!(2024-02-23 00:00:00 UTC));
    let policy = &report.policies[0];
    assert_eq!(policy.policy.policy_type, PolicyType::Sts);
    assert_eq!(policy.policy.policy_domain, domain("example.com"));
    assert_eq!(policy.policy.policy_string, Vec::<String>::new());
    assert_eq!(policy.summary.total_failure_session_count, 1);
    let fetch_error = |code: &str| FailureDetail {
        result_type: ResultType::StsPolicyFetchError.into(),
        sending_mta_ip: None,
        receiving_mx_hostname: None,
        receiving_mx_helo: None,
        receiving_ip: None,
        failed_session_count: 1,
        additional_information: None,
        failure_reason_code: Some(format!("bad https response code: {code}")),
    };
    assert_eq!(
        policy.failure_details,
        vec![fetch_error("404"), fetch_error("500")]
    );
    assert_eq!(
        quirks,
        vec![
            Quirk::MissingPolicyString {
                path: p("$.policies[0].policy.policy-string")
            },
            missing_mx_host(),
        ]
    );
}

#[test]
fn google_report_from_mox_fixture() {
    let ReadReport { report, quirks } = read(GOOGLE_XMOX);
    assert_eq!(report.organization_name, "Google Inc.");
    assert_eq!(report.contact_info, "smtp-tls-reporting@google.com");
    assert_eq!(report.report_id, "2022-09-15T00:00:00Z_test.xmox.nl");
    assert_eq!(
        report.date_range.start(),
        datetime!(2022-09-15 00:00:00 UTC)
    );
    let policy = &report.policies[0];
    assert_eq!(
        policy.policy.policy_string,
        lines(&[
            "version: STSv1",
            "mode: enforce",
            "max_age: 86400",
            "mx: komijn.test.xmox.nl"
        ])
    );
    assert_eq!(
        policy.policy.mx_host,
        vec![MxPattern::exact(domain("komijn.test.xmox.nl"))]
    );
    assert_eq!(
        policy.summary,
        Summary {
            total_successful_session_count: 3,
            total_failure_session_count: 0
        }
    );
    assert_eq!(policy.failure_details, vec![]);
    assert_eq!(quirks, vec![missing_failure_details()]);
}

#[test]
fn microsoft_report_without_time_zone() {
    let ReadReport { report, quirks } = read(MICROSOFT_XMOX);
    assert_eq!(report.organization_name, "Microsoft Corporation");
    assert_eq!(report.contact_info, "tlsrpt-noreply@microsoft.com");
    assert_eq!(report.report_id, "133198585438131172+test.xmox.nl");
    // Zone-less date-times are read as UTC.
    assert_eq!(
        report.date_range.start(),
        datetime!(2023-01-10 00:00:00 UTC)
    );
    assert_eq!(report.date_range.end(), datetime!(2023-01-10 23:59:59 UTC));
    let policy = &report.policies[0];
    assert_eq!(policy.policy.policy_domain, domain("test.xmox.nl"));
    assert_eq!(policy.policy.policy_string[2], "mx: komijn.test.xmox.nl");
    assert_eq!(policy.summary.total_successful_session_count, 2);
    assert_eq!(
        quirks,
        vec![
            Quirk::DateTimeWithoutZone {
                path: p("$.date-range.start-datetime"),
                value: p("2023-01-10T00:00:00")
            },
            Quirk::DateTimeWithoutZone {
                path: p("$.date-range.end-datetime"),
                value: p("2023-01-10T23:59:59")
            },
            missing_mx_host(),
            missing_failure_details(),
        ]
    );
}

#[test]
fn google_no_policy_found_heartbeat() {
    let ReadReport { report, quirks } = read(GOOGLE_CARDINAL);
    assert_eq!(report.report_id, "2024-09-03T00:00:00Z_cardinalhealth.ca");
    let policy = &report.policies[0];
    assert_eq!(policy.policy.policy_type, PolicyType::NoPolicyFound);
    assert_eq!(policy.policy.policy_domain, domain("cardinalhealth.ca"));
    assert_eq!(policy.policy.policy_string, Vec::<String>::new());
    assert_eq!(policy.summary.total_successful_session_count, 48);
    // No policy-string is expected for no-policy-found, so only the absent details count.
    assert_eq!(quirks, vec![missing_failure_details()]);
}

#[test]
fn microsoft_double_encoded_tlsa_policy_string() {
    // Shape of Microsoft's DANE entries (the published TLSA records of karlsen.fr).
    let record = "3 1 1 7FF8B87BB269715FEF08A0F4F0033D7A2F3B680470A30E878CEB2D3E244AF3EA";
    let body = json!({
        "organization-name": "Microsoft Corporation",
        "date-range": {"start-datetime": "2023-01-10T00:00:00", "end-datetime": "2023-01-10T23:59:59"},
        "contact-info": "tlsrpt-noreply@microsoft.com",
        "report-id": "1+karlsen.fr",
        "policies": [{
            "policy": {
                "policy-type": "tlsa",
                "policy-string": [format!("[\"{record}\",\"2 1 1 ABCDEF\"]")],
                "policy-domain": "karlsen.fr"
            },
            "summary": {"total-successful-session-count": 1, "total-failure-session-count": 0}
        }]
    });
    let ReadReport { report, quirks } = read(body.to_string().as_bytes());
    assert_eq!(
        report.policies[0].policy.policy_string,
        lines(&[record, "2 1 1 ABCDEF"])
    );
    assert!(quirks.contains(&Quirk::PolicyStringDoubleEncoded {
        path: p("$.policies[0].policy.policy-string")
    }));
    // Written back, the strings are a plain array.
    let written: Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(
        written["policies"][0]["policy"]["policy-string"],
        json!([record, "2 1 1 ABCDEF"])
    );
}

#[test]
fn unknown_types_are_kept_or_skipped() {
    let mut body: Value = serde_json::from_slice(SMTP_TLS).unwrap();
    body["policies"][0]["failure-details"][1]["result-type"] = json!("tls-version-too-old");
    let mut other = body["policies"][0].clone();
    other["policy"]["policy-type"] = json!("dane");
    body["policies"].as_array_mut().unwrap().push(other);
    let ReadReport { report, quirks } = read(body.to_string().as_bytes());
    assert_eq!(report.policies.len(), 1);
    let kept = &report.policies[0].failure_details[1].result_type;
    assert_eq!(kept.known(), None);
    assert_eq!(kept.as_str(), "tls-version-too-old");
    assert!(quirks.contains(&Quirk::UnknownResultType {
        path: p("$.policies[0].failure-details[1].result-type"),
        value: p("tls-version-too-old")
    }));
    assert!(quirks.contains(&Quirk::UnknownPolicyTypeSkipped {
        path: p("$.policies[1]"),
        value: p("dane")
    }));
    // The unknown type is written back verbatim.
    assert!(
        report
            .to_json()
            .contains("\"result-type\":\"tls-version-too-old\"")
    );
}

#[test]
fn every_real_report_in_the_fixture_tree_parses() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/tlsrpt-reports");
    let mut seen = 0;
    for dir in ["parsedmarc", "extracted"] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "json") {
                let bytes = std::fs::read(&path).unwrap();
                assert!(
                    read_report(&bytes).is_ok(),
                    "{} was rejected",
                    path.display()
                );
                seen += 1;
            }
        }
    }
    assert_eq!(seen, REAL.len(), "a fixture is not covered by REAL");
}

#[test]
fn real_reports_rewritten_pass_the_checker_and_round_trip() {
    for (name, bytes) in REAL {
        let ReadReport { report, quirks } = read(bytes);
        let gz = {
            use std::io::Write;
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(bytes).unwrap();
            e.finish().unwrap()
        };
        let from_gzip = read(&gz);
        assert_eq!(from_gzip.report, report, "{name} via gzip");
        assert_eq!(from_gzip.quirks, quirks, "{name} via gzip");

        let written: Value = serde_json::from_str(&report.to_json()).unwrap();
        assert_eq!(
            check_required_fields(&written),
            Vec::<String>::new(),
            "{name}"
        );
        for output in [report.to_json().into_bytes(), report.to_gzip()] {
            let again = read(&output);
            assert_eq!(again.report, report, "{name}");
            assert_eq!(again.quirks, vec![], "{name}");
        }
    }
}

#[test]
fn writer_normalises_the_rfc_example() {
    let report = read(RFC8460).report;
    let json = report.to_json();
    assert!(
        json.contains("\"mx-host\":[\"*.mail.company-y.example\"]"),
        "{json}"
    );
    assert!(
        json.contains("\"sending-mta-ip\":\"2001:db8:abcd:12::1\""),
        "{json}"
    );
    assert!(
        json.contains("\"start-datetime\":\"2016-04-01T00:00:00Z\""),
        "{json}"
    );
    assert!(
        json.contains("\"end-datetime\":\"2016-04-01T23:59:59Z\""),
        "{json}"
    );
    assert!(!json.contains("null") && !json.contains("\"\""), "{json}");
    let microsoft = read(MICROSOFT_XMOX).report.to_json();
    assert!(microsoft.contains("\"start-datetime\":\"2023-01-10T00:00:00Z\""));
    assert!(microsoft.contains("\"mx-host\":[]"));
    assert!(microsoft.contains("\"failure-details\":[]"));
}

#[test]
fn checker_finds_problems_in_hand_broken_reports() {
    let good: Value = serde_json::from_str(&read(RFC8460).report.to_json()).unwrap();
    assert_eq!(check_required_fields(&good), Vec::<String>::new());
    // (name, how to break the report, the problems expected)
    type Case = (&'static str, fn(&mut Value), Vec<&'static str>);
    let cases: Vec<Case> = vec![
        (
            "missing contact-info and report-id",
            |v| {
                let o = v.as_object_mut().unwrap();
                o.remove("contact-info");
                o.remove("report-id");
            },
            vec![
                "$.contact-info: is required by RFC 8460 §4.4 but missing",
                "$.report-id: is required by RFC 8460 §4.4 but missing",
            ],
        ),
        (
            "time with an offset",
            |v| v["date-range"]["end-datetime"] = json!("2016-04-02T01:59:59+02:00"),
            vec![
                "$.date-range.end-datetime: \"2016-04-02T01:59:59+02:00\" must be in UTC written with \"Z\"",
            ],
        ),
        (
            "count as a string and missing summary count",
            |v| {
                v["policies"][0]["failure-details"][2]["failed-session-count"] = json!("3");
                v["policies"][0]["summary"]
                    .as_object_mut()
                    .unwrap()
                    .remove("total-failure-session-count");
            },
            vec![
                "$.policies[0].summary.total-failure-session-count: is required by RFC 8460 §4.4 but missing",
                "$.policies[0].failure-details[2].failed-session-count: must be an integer encoded as a JSON number, found a string",
            ],
        ),
        (
            "policy-string and mx-host as strings",
            |v| {
                v["policies"][0]["policy"]["policy-string"] = json!("version: STSv1");
                v["policies"][0]["policy"]["mx-host"] = json!("*.mail.company-y.example");
            },
            vec![
                "$.policies[0].policy.policy-string: must be an array of strings, found a string",
                "$.policies[0].policy.mx-host: must be an array of strings, found a string",
            ],
        ),
        (
            "empty and null optional members",
            |v| {
                v["policies"][0]["failure-details"][0]["receiving-ip"] = json!("");
                v["policies"][0]["failure-details"][0]["receiving-mx-helo"] = json!(null);
            },
            vec![
                "$.policies[0].failure-details[0].receiving-ip: is an empty string; leave an unknown optional member out",
                "$.policies[0].failure-details[0].receiving-mx-helo: is null; leave an unknown optional member out",
            ],
        ),
        (
            "unregistered result type, bad IP, U-label host",
            |v| {
                v["policies"][0]["failure-details"][1]["result-type"] = json!("timeout");
                v["policies"][0]["failure-details"][1]["receiving-ip"] = json!("203.0.113.256");
                v["policies"][0]["failure-details"][1]["receiving-mx-hostname"] =
                    json!("mx.bücher.example");
            },
            vec![
                "$.policies[0].failure-details[1].result-type: \"timeout\" is not a result type RFC 8460 §4.3 defines",
                "$.policies[0].failure-details[1].receiving-ip: \"203.0.113.256\" is not an IP address",
                "$.policies[0].failure-details[1].receiving-mx-hostname: label \"bücher\" of \"mx.bücher.example\" contains 'ü'; host names use only letters, digits and '-'",
            ],
        ),
        (
            "policies not an array",
            |v| v["policies"] = v["policies"][0].clone(),
            vec!["$.policies: must be an array, found an object"],
        ),
    ];
    for (name, edit, expected) in cases {
        let mut v = good.clone();
        edit(&mut v);
        assert_eq!(check_required_fields(&v), expected, "{name}");
    }
}

#[test]
fn real_file_names_parse_and_agree_with_their_reports() {
    let cases = [
        (
            "mox_example__google.com!test.xmox.nl!1663200000!1663286399!001.json",
            GOOGLE_XMOX,
            "001",
        ),
        (
            "mox_microsoft__microsoft.com!test.xmox.nl!1673308800!1673395199!133198585438131172.json",
            MICROSOFT_XMOX,
            "133198585438131172",
        ),
        (
            "parsedmarc_google.com_smtp_tls_report__google.com!cardinalhealth.ca!1725321600!1725407999!001.json",
            GOOGLE_CARDINAL,
            "001",
        ),
    ];
    for (fixture, bytes, id) in cases {
        // The fixture name is `<origin>__<attachment name without .gz>`; the e-mails carry
        // the `.json.gz` form.
        let (_, attachment) = fixture.split_once("__").unwrap();
        let plain: ReportFileName = attachment.parse().unwrap();
        let gz: ReportFileName = format!("{attachment}.gz").parse().unwrap();
        assert!(!plain.gzip && gz.gzip, "{fixture}");
        assert_eq!(gz.to_string(), format!("{attachment}.gz"));
        assert_eq!(plain.to_string(), attachment);
        assert_eq!(plain.unique_id.as_ref().map(UniqueId::as_str), Some(id));

        let report = read(bytes).report;
        let (_, contact_domain) = report.contact_info.rsplit_once('@').unwrap();
        assert_eq!(plain.sender.as_str(), contact_domain, "{fixture}");
        assert_eq!(
            plain.policy_domain, report.policies[0].policy.policy_domain,
            "{fixture}"
        );
        let rebuilt = ReportFileName::for_range(
            plain.sender.clone(),
            plain.policy_domain.clone(),
            &report.date_range,
            plain.unique_id.clone(),
            true,
        )
        .unwrap();
        assert_eq!(rebuilt, gz, "{fixture}");
    }
    let rfc: ReportFileName = "mail.sndr.example.com!example.net!1470013207!1470186007!001.json.gz"
        .parse()
        .unwrap();
    assert_eq!(rfc.begin, 1_470_013_207);
    assert_eq!(rfc.end, 1_470_186_007);
}

// ---------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------

fn any_text(max: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(any::<char>(), 0..max).prop_map(String::from_iter)
}

fn non_empty_text() -> impl Strategy<Value = String> {
    proptest::collection::vec(any::<char>(), 1..16).prop_map(String::from_iter)
}

fn any_domain() -> impl Strategy<Value = DomainName> {
    "[a-z0-9]([a-z0-9-]{0,6}[a-z0-9])?(\\.[a-z0-9]([a-z0-9-]{0,6}[a-z0-9])?){0,2}\\.[a-z]{2,5}"
        .prop_filter_map("not a valid name (e.g. a bad xn-- label)", |s| {
            DomainName::parse(&s).ok()
        })
}

fn any_instant() -> impl Strategy<Value = OffsetDateTime> {
    // 0000-01-01T00:00:00Z ..= 9999-12-31T23:59:59Z, any nanosecond, any offset.
    (
        -62_167_219_200i64..=253_402_300_799,
        prop_oneof![Just(0u32), 0u32..1_000_000_000],
        -86_399i32..=86_399,
    )
        .prop_filter_map(
            "outside the representable range",
            |(secs, nanos, offset)| {
                let offset = time::UtcOffset::from_whole_seconds(offset).ok()?;
                let t = OffsetDateTime::from_unix_timestamp(secs)
                    .ok()?
                    .replace_nanosecond(nanos)
                    .ok()?;
                t.checked_to_offset(offset)
            },
        )
}

fn any_range() -> impl Strategy<Value = DateRange> {
    (any_instant(), any_instant()).prop_filter_map("not writable", |(a, b)| {
        DateRange::new(a.min(b), a.max(b)).ok()
    })
}

fn result_type(conforming: bool) -> BoxedStrategy<FailureResultType> {
    let known =
        proptest::sample::select(ResultType::ALL.to_vec()).prop_map(FailureResultType::from);
    if conforming {
        known.boxed()
    } else {
        prop_oneof![
            known,
            any_text(12).prop_map(|s| FailureResultType::from_wire(&s))
        ]
        .boxed()
    }
}

fn any_detail(conforming: bool) -> impl Strategy<Value = FailureDetail> {
    let info = if conforming {
        any_domain()
            .prop_map(|d| format!("https://{d}/info"))
            .boxed()
    } else {
        non_empty_text().boxed()
    };
    (
        result_type(conforming),
        proptest::option::of(any::<IpAddr>()),
        proptest::option::of(any_domain()),
        proptest::option::of(non_empty_text()),
        proptest::option::of(any::<IpAddr>()),
        any::<u64>(),
        proptest::option::of(info),
        proptest::option::of(non_empty_text()),
    )
        .prop_map(
            |(result_type, smta, mx, helo, rip, count, info, reason)| FailureDetail {
                result_type,
                sending_mta_ip: smta,
                receiving_mx_hostname: mx,
                receiving_mx_helo: helo,
                receiving_ip: rip,
                failed_session_count: count,
                additional_information: info,
                failure_reason_code: reason,
            },
        )
}

fn any_pattern() -> impl Strategy<Value = MxPattern> {
    (any::<bool>(), any_domain()).prop_map(|(wild, d)| {
        if wild {
            MxPattern::wildcard(d)
        } else {
            MxPattern::exact(d)
        }
    })
}

fn any_policy(conforming: bool) -> impl Strategy<Value = PolicyReport> {
    (
        proptest::sample::select(vec![
            PolicyType::Sts,
            PolicyType::Tlsa,
            PolicyType::NoPolicyFound,
        ]),
        proptest::collection::vec(any_text(20), 0..5),
        any_domain(),
        proptest::collection::vec(any_pattern(), 0..3),
        any::<(u64, u64)>(),
        proptest::collection::vec(any_detail(conforming), 0..4),
    )
        .prop_map(
            |(policy_type, policy_string, policy_domain, mx_host, (ok, failed), details)| {
                PolicyReport {
                    policy: PolicyDetails {
                        policy_type,
                        policy_string,
                        policy_domain,
                        mx_host,
                    },
                    summary: Summary {
                        total_successful_session_count: ok,
                        total_failure_session_count: failed,
                    },
                    failure_details: details,
                }
            },
        )
}

fn any_report(conforming: bool) -> impl Strategy<Value = Report> {
    let (text, min_policies) = if conforming {
        (non_empty_text().boxed(), 1)
    } else {
        (any_text(20).boxed(), 0)
    };
    let contact = if conforming {
        ("[a-z0-9._+-]{1,10}", any_domain())
            .prop_map(|(local, d)| format!("{local}@{d}"))
            .boxed()
    } else {
        any_text(20).boxed()
    };
    (
        text.clone(),
        any_range(),
        contact,
        text,
        proptest::collection::vec(any_policy(conforming), min_policies..3),
    )
        .prop_map(
            |(organization_name, date_range, contact_info, report_id, policies)| Report {
                organization_name,
                date_range,
                contact_info,
                report_id,
                policies,
            },
        )
}

/// RFC 8460 gives the writer no way to tell a one-element `tlsa` policy-string that is
/// itself a JSON array of strings from Microsoft's double encoding; the reader takes the
/// latter. No TLSA presentation record starts with `[`, so real reports never hit this.
fn ambiguous_tlsa(report: &Report) -> bool {
    report.policies.iter().any(|p| {
        p.policy.policy_type == PolicyType::Tlsa
            && p.policy.policy_string.len() == 1
            && serde_json::from_str::<Vec<String>>(&p.policy.policy_string[0]).is_ok()
    })
}

/// Truncations, overwrites, insertions and deletions of a real report.
fn mutated(bytes: &'static [u8]) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec((any::<prop::sample::Index>(), 0u8..4, any::<u8>()), 1..8).prop_map(
        move |edits| {
            let mut out = bytes.to_vec();
            for (index, op, byte) in edits {
                if out.is_empty() {
                    break;
                }
                let i = index.index(out.len());
                match op {
                    0 => out[i] = byte,
                    1 => out.insert(i, byte),
                    2 => {
                        out.remove(i);
                    }
                    _ => out.truncate(i),
                }
            }
            out
        },
    )
}

/// JSON text assembled from the report grammar's own tokens.
fn grammar_soup() -> impl Strategy<Value = String> {
    let tokens = vec![
        "{",
        "}",
        "[",
        "]",
        ",",
        ":",
        "\"organization-name\"",
        "\"date-range\"",
        "\"start-datetime\"",
        "\"end-datetime\"",
        "\"contact-info\"",
        "\"report-id\"",
        "\"policies\"",
        "\"policy\"",
        "\"policy-type\"",
        "\"sts\"",
        "\"tlsa\"",
        "\"no-policy-found\"",
        "\"policy-string\"",
        "\"policy-domain\"",
        "\"mx-host\"",
        "\"summary\"",
        "\"total-successful-session-count\"",
        "\"total-failure-session-count\"",
        "\"failure-details\"",
        "\"result-type\"",
        "\"sending-mta-ip\"",
        "\"receiving-mx-hostname\"",
        "\"receiving-ip\"",
        "\"failed-session-count\"",
        "\"2024-01-09T00:00:00Z\"",
        "\"2024-01-09T23:59:59\"",
        "\"example.com\"",
        "\"*.example.com\"",
        "\"2001:db8::1\"",
        "\"[\\\"3 1 1 AB\\\"]\"",
        "\"\"",
        "null",
        "0",
        "-1",
        "1.5",
        "18446744073709551616",
        "true",
    ];
    proptest::collection::vec(proptest::sample::select(tokens), 0..80).prop_map(|t| t.concat())
}

fn real_report() -> impl Strategy<Value = &'static [u8]> {
    proptest::sample::select(REAL.iter().map(|(_, bytes)| *bytes).collect::<Vec<_>>())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn written_reports_read_back_equal(report in any_report(false)) {
        prop_assume!(!ambiguous_tlsa(&report));
        for bytes in [report.to_json().into_bytes(), report.to_json_pretty().into_bytes(), report.to_gzip()] {
            let read = read_report(&bytes).unwrap();
            prop_assert_eq!(&read.report, &report);
            // The only quirk a written report can carry is an unregistered result type.
            let unregistered = report.policies.iter()
                .flat_map(|p| &p.failure_details)
                .filter(|d| d.result_type.known().is_none())
                .count();
            prop_assert_eq!(read.quirks.len(), unregistered);
            let only_unknown_types =
                read.quirks.iter().all(|q| matches!(q, Quirk::UnknownResultType { .. }));
            prop_assert!(only_unknown_types, "{:?}", read.quirks);
        }
    }

    #[test]
    fn conforming_reports_pass_the_checker(report in any_report(true)) {
        let written: Value = serde_json::from_str(&report.to_json()).unwrap();
        prop_assert_eq!(check_required_fields(&written), Vec::<String>::new());
    }

    #[test]
    fn reader_never_panics_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = read_report(&bytes);
        let mut gz = vec![0x1f, 0x8b];
        gz.extend_from_slice(&bytes);
        let _ = read_report(&gz);
    }

    #[test]
    fn reader_never_panics_on_grammar_soup(text in grammar_soup()) {
        if let Ok(value) = serde_json::from_str::<Value>(&text) {
            let _ = Report::from_value(&value);
            let _ = check_required_fields(&value);
        }
        let _ = read_report(text.as_bytes());
    }

    #[test]
    fn reader_never_panics_on_mutated_real_reports(bytes in real_report().prop_flat_map(mutated)) {
        if let Ok(read) = read_report(&bytes) {
            // Whatever was accepted can be written and read back unchanged.
            if !ambiguous_tlsa(&read.report) {
                prop_assert_eq!(read_report(read.report.to_json().as_bytes()).unwrap().report, read.report.clone());
            }
        }
        if let Ok(value) = serde_json::from_slice::<Value>(&bytes) {
            let _ = check_required_fields(&value);
        }
    }

    #[test]
    fn file_names_round_trip(
        sender in any_domain(),
        policy_domain in any_domain(),
        (begin, end) in any::<(u64, u64)>().prop_map(|(a, b)| (a.min(b), a.max(b))),
        unique_id in proptest::option::of("[A-Za-z0-9]{1,20}"),
        gzip in any::<bool>(),
    ) {
        let name = ReportFileName {
            sender,
            policy_domain,
            begin,
            end,
            unique_id: unique_id.map(|id| UniqueId::parse(&id).unwrap()),
            gzip,
        };
        let text = name.to_string();
        prop_assert_eq!(text.parse::<ReportFileName>().unwrap(), name);
    }

    #[test]
    fn file_name_parser_never_panics(
        arbitrary in any_text(60),
        grammar in "[a-zA-Z0-9.!_-]{0,50}(\\.json|\\.json\\.gz|\\.JSON|\\.gz)?",
    ) {
        let _ = arbitrary.parse::<ReportFileName>();
        if let Ok(name) = grammar.parse::<ReportFileName>() {
            prop_assert_eq!(name.to_string().parse::<ReportFileName>().unwrap(), name);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Properties of the mail reader (RFC 8460 §5.3) and of the byte order mark
// ---------------------------------------------------------------------------------------

/// How a generated report mail carries its report.
#[derive(Debug, Clone)]
struct MailForm {
    /// The report gzipped (else plain JSON).
    gzip: bool,
    /// 0: `application/tlsrpt+*`; 1: `application/gzip` or `application/json` with a file
    /// name; 2: `application/octet-stream` with a file name.
    media: u8,
    /// Quoted-printable rather than base64 (plain JSON only).
    quoted_printable: bool,
    /// Encoded line length.
    line: usize,
    /// Forwarded: the report mail inside another one, as `message/rfc822`.
    forwarded: bool,
    /// The explanatory text part after the report part rather than before it.
    text_last: bool,
    /// Makes the boundaries unique (boundaries start with `=_`, which neither base64 nor
    /// quoted-printable output can contain).
    boundary: String,
}

fn any_mail_form() -> impl Strategy<Value = MailForm> {
    (
        any::<bool>(),
        0u8..3,
        any::<bool>(),
        4usize..=76,
        any::<bool>(),
        any::<bool>(),
        "[A-Za-z0-9'()+_,./:?-]{1,30}",
    )
        .prop_map(
            |(gzip, media, quoted_printable, line, forwarded, text_last, boundary)| MailForm {
                gzip,
                media,
                quoted_printable,
                line,
                forwarded,
                text_last,
                boundary,
            },
        )
}

/// Base64 in lines of `line` characters.
fn base64_lines(bytes: &[u8], line: usize) -> String {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
    encoded
        .as_bytes()
        .chunks(line)
        .map(|chunk| format!("{}\r\n", std::str::from_utf8(chunk).unwrap()))
        .collect()
}

/// Quoted-printable (RFC 2045 §6.7): every byte but printable ASCII other than `=` as
/// `=XX`, soft line breaks so that no line passes `line` characters (and 76).
fn quoted_printable(bytes: &[u8], line: usize) -> String {
    let limit = line.clamp(4, 76) - 1;
    let mut out = String::new();
    let mut width = 0;
    for &b in bytes {
        let piece = if (33..=126).contains(&b) && b != b'=' {
            (b as char).to_string()
        } else {
            format!("={b:02X}")
        };
        if width + piece.len() > limit {
            out.push_str("=\r\n");
            width = 0;
        }
        width += piece.len();
        out.push_str(&piece);
    }
    out.push_str("\r\n");
    out
}

/// A report mail (RFC 8460 §5.3) carrying `report` as `form` says.
fn report_mail(report: &Report, form: &MailForm) -> Vec<u8> {
    let json = report.to_json();
    let (payload, name) = if form.gzip {
        (report.to_gzip(), "report.json.gz")
    } else {
        (json.into_bytes(), "report.json")
    };
    let media = match (form.media, form.gzip) {
        (0, true) => "application/tlsrpt+gzip".to_owned(),
        (0, false) => "application/tlsrpt+json".to_owned(),
        (1, true) => format!("application/gzip; name=\"{name}\""),
        (1, false) => format!("application/json; name=\"{name}\""),
        _ => format!("application/octet-stream; name=\"{name}\""),
    };
    let (encoding, body) = if form.quoted_printable && !form.gzip {
        ("quoted-printable", quoted_printable(&payload, form.line))
    } else {
        ("base64", base64_lines(&payload, form.line))
    };
    let boundary = format!("=_{}", form.boundary);
    let report_part = format!(
        "Content-Type: {media}\r\nContent-Disposition: attachment; filename=\"{name}\"\r\n\
         Content-Transfer-Encoding: {encoding}\r\n\r\n{body}"
    );
    let text_part = "Content-Type: text/plain; charset=us-ascii\r\n\r\nThis is a TLS report.\r\n";
    let parts = if form.text_last {
        [report_part.as_str(), text_part]
    } else {
        [text_part, report_part.as_str()]
    };
    let mail = format!(
        "From: reports@reporter.example\r\nTo: tlsrpt@example.com\r\nSubject: Report Domain: \
         example.com\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; \
         report-type=\"tlsrpt\"; boundary=\"{boundary}\"\r\n\r\n--{boundary}\r\n{}--{boundary}\r\n{}--{boundary}--\r\n",
        parts[0], parts[1]
    );
    if !form.forwarded {
        return mail.into_bytes();
    }
    let outer = format!("=_outer{}", form.boundary);
    format!(
        "From: admin@example.com\r\nTo: security@example.com\r\nSubject: Fwd: report\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"{outer}\"\r\n\r\n\
         --{outer}\r\nContent-Type: text/plain\r\n\r\nSee the attached report.\r\n\
         --{outer}\r\nContent-Type: message/rfc822\r\n\r\n{mail}--{outer}--\r\n"
    )
    .into_bytes()
}

/// A real report mail of fixtures/tlsrpt-reports.
fn real_mail() -> impl Strategy<Value = &'static [u8]> {
    proptest::sample::select(vec![
        &report_fixture!("parsedmarc/google.com_smtp_tls_report.eml")[..],
        &report_fixture!("mox/microsoft.eml")[..],
        &report_fixture!("mox/example.eml")[..],
    ])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn every_form_of_report_mail_gives_back_the_report(
        report in any_report(false),
        form in any_mail_form(),
    ) {
        use mxprobe::received::ingest::{Found, Origin, reports_in_message};
        prop_assume!(!ambiguous_tlsa(&report));
        let mail = report_mail(&report, &form);
        let mut found = Vec::new();
        reports_in_message(&mail, &Origin::file("report.eml"), &mut |f| found.push(f));
        prop_assert_eq!(found.len(), 1, "{:?}", found);
        match &found[0] {
            Found::Report(ingested) => {
                prop_assert_eq!(&ingested.read.report, &report);
                prop_assert_eq!(&ingested.json, &report.to_json().into_bytes());
                prop_assert_eq!(&ingested.origin, &Origin::file("report.eml"));
            }
            Found::Skipped(skipped) => prop_assert!(false, "skipped: {}", skipped),
        }
    }

    #[test]
    fn the_mail_reader_never_panics_and_always_names_the_origin(
        bytes in proptest::collection::vec(any::<u8>(), 0..2048),
        mutated_mail in real_mail().prop_flat_map(mutated),
    ) {
        use mxprobe::received::ingest::{Origin, reports_in_message};
        let origin = Origin::file("inbox/1.eml");
        for raw in [&bytes, &mutated_mail] {
            let mut count = 0;
            reports_in_message(raw, &origin, &mut |found| {
                count += 1;
                assert_eq!(found.origin(), &origin);
            });
            // A message gives at least one outcome: its reports, or why it has none.
            prop_assert!(count >= 1);
        }
    }

    #[test]
    fn an_mbox_of_report_mails_gives_every_report_in_order(
        mails in proptest::collection::vec((any_report(false), any_mail_form()), 1..5),
    ) {
        use mxprobe::received::ingest::{Found, ingest};
        prop_assume!(mails.iter().all(|(report, _)| !ambiguous_tlsa(report)));
        // mboxrd: a "From " line, then the message with every line matching `>*From `
        // given one more `>`.
        let mut mbox = Vec::new();
        for (report, form) in &mails {
            mbox.extend_from_slice(b"From reports@reporter.example Sat Nov 29 06:00:00 2026\n");
            let mail = String::from_utf8(report_mail(report, form)).unwrap();
            for line in mail.split_inclusive('\n') {
                if line.trim_start_matches('>').starts_with("From ") {
                    mbox.push(b'>');
                }
                mbox.extend_from_slice(line.as_bytes());
            }
            mbox.extend_from_slice(b"\n");
        }
        let dir = std::env::temp_dir().join(format!(
            "mxprobe-mbox-property-{}-{}",
            std::process::id(),
            OffsetDateTime::now_utc().unix_timestamp_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("tlsrpt.mbox");
        std::fs::write(&path, &mbox).unwrap();
        let mut found = Vec::new();
        ingest(std::slice::from_ref(&path), |f| {
            found.push(f);
            Ok::<_, ()>(())
        })
        .unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        prop_assert_eq!(found.len(), mails.len());
        for (i, (found, (report, _))) in found.iter().zip(&mails).enumerate() {
            match found {
                Found::Report(ingested) => {
                    prop_assert_eq!(&ingested.read.report, report);
                    let position = ingested.origin.message.as_deref().unwrap_or_default();
                    prop_assert_eq!(position, (i + 1).to_string());
                }
                Found::Skipped(skipped) => prop_assert!(false, "skipped: {}", skipped),
            }
        }
    }

    #[test]
    fn a_byte_order_mark_before_any_report_is_ignored_and_noted(report in any_report(false)) {
        prop_assume!(!ambiguous_tlsa(&report));
        let mut bytes = b"\xEF\xBB\xBF".to_vec();
        bytes.extend_from_slice(report.to_json().as_bytes());
        let read = read_report(&bytes).unwrap();
        prop_assert_eq!(&read.report, &report);
        prop_assert_eq!(&read.quirks[0], &Quirk::ByteOrderMark { path: "$".to_owned() });
        let plain = read_report(report.to_json().as_bytes()).unwrap();
        prop_assert_eq!(&read.quirks[1..], &plain.quirks[..]);
    }
}
