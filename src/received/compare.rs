//! Observed versus predicted: the failures real TLS-RPT reports show for a domain, next to
//! the findings of mxprobe's latest run of it (`mxprobe reports compare`).
//!
//! Three lists come out:
//! - **both**: a reported failure that a finding of the latest run predicts (same RFC 8460
//!   result type, and the same MX host or address where the report names one);
//! - **reports only**: a reported failure mxprobe does not see, with what mxprobe's own view
//!   says about it (the MX was probed and passed: a sender-side or passing problem; the MX
//!   could not be tested from here; mxprobe did not see that MX or address at all);
//! - **predicted only**: a failing finding of mxprobe's that no report shows yet.
//!
//! The reports come in summed by SQLite ([`History::reported_failures`]: per reporter,
//! policy type, result type, receiving MX and address, the [`FAILURE_LIMIT`] largest), so
//! that no report is held in memory; from there on this module is pure: sums and a snapshot
//! in, a [`Comparison`] out.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::net::IpAddr;

use serde::Serialize;
use time::{Date, OffsetDateTime};

use crate::history::{History, HistoryError, ReportedFailures};
use mxprobe_core::domain::DomainName;
use mxprobe_core::evaluate::verdict::SessionResult;
use mxprobe_core::finding::{Finding, Severity};
use mxprobe_core::result::DomainResult;
use mxprobe_core::tlsrpt::ResultType;

/// How many kinds of reported failure (reporter, policy type, result type, MX, address) a
/// comparison lists: the largest by sessions. The others are counted, not listed, so that
/// reports naming millions of addresses give a comparison of bounded size.
pub const FAILURE_LIMIT: usize = 1000;

/// One kind of failure a reporter saw, summed over its reports: the same reporter, policy
/// type, result type, receiving MX and address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReportedFailure {
    /// The reporter (`organization-name`).
    pub reporter: String,
    /// The policy type the sender applied (`sts`, `tlsa`, `no-policy-found`).
    pub policy_type: String,
    /// The RFC 8460 result type, as reported.
    pub result_type: String,
    /// `receiving-mx-hostname`, when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receiving_mx: Option<DomainName>,
    /// `receiving-ip`, when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receiving_ip: Option<IpAddr>,
    /// The failed sessions, summed.
    pub sessions: u128,
    /// The first and last day (UTC, date-range start) of the reports that show it.
    pub first_day: Date,
    /// See `first_day`.
    pub last_day: Date,
}

/// A reported failure and the findings that predict it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Predicted {
    /// What the reporter saw.
    pub reported: ReportedFailure,
    /// The codes of mxprobe's findings with the same result type and place.
    pub findings: Vec<String>,
}

/// A reported failure mxprobe's latest run does not show, and what mxprobe saw there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unexplained {
    /// What the reporter saw.
    pub reported: ReportedFailure,
    /// mxprobe's view of the same place, in words.
    pub mxprobe_saw: String,
}

/// The comparison for one domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Comparison {
    /// The policy domain.
    pub domain: DomainName,
    /// When mxprobe last observed the domain (`None`: never; only reports are shown).
    #[serde(with = "time::serde::rfc3339::option")]
    pub observed_at: Option<OffsetDateTime>,
    /// How many reports have a policy for the domain.
    pub reports: u64,
    /// The successful and failed sessions the reports count in all.
    pub successful_sessions: u128,
    /// See `successful_sessions`.
    pub failed_sessions: u128,
    /// Kinds of reported failure past [`FAILURE_LIMIT`], counted but not listed.
    #[serde(skip_serializing_if = "is_zero")]
    pub unlisted_failures: u64,
    /// Their failed sessions.
    #[serde(skip_serializing_if = "is_zero_sessions")]
    pub unlisted_sessions: u128,
    /// Reported and predicted.
    pub both: Vec<Predicted>,
    /// Reported, not predicted.
    pub reports_only: Vec<Unexplained>,
    /// Predicted (failing findings of the latest run), not reported.
    pub predicted_only: Vec<Finding>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn is_zero_sessions(n: &u128) -> bool {
    *n == 0
}

/// The reports for `domain` stored in `history` (those whose date range ends at or after
/// `since`), summed for [`compare`].
pub fn reported(
    history: &History,
    domain: &DomainName,
    since: Option<OffsetDateTime>,
) -> Result<ReportedFailures, HistoryError> {
    history.reported_failures(domain, since, FAILURE_LIMIT)
}

/// Compares the failures the reports for `domain` show ([`reported`]) with the findings of
/// `latest`.
pub fn compare(
    domain: &DomainName,
    reported: ReportedFailures,
    latest: Option<&DomainResult>,
) -> Comparison {
    let mut failures: Vec<ReportedFailure> = reported
        .failures
        .into_iter()
        .map(|f| ReportedFailure {
            reporter: f.reporter,
            policy_type: f.policy_type,
            result_type: f.result_type,
            receiving_mx: f.receiving_mx,
            receiving_ip: f.receiving_ip,
            sessions: f.sessions,
            first_day: f.first_day,
            last_day: f.last_day,
        })
        .collect();
    // Listed by reporter, policy type, result type, MX and address.
    failures.sort_by(|a, b| {
        let key = |f: &ReportedFailure| {
            (
                f.reporter.clone(),
                f.policy_type.clone(),
                f.result_type.clone(),
                f.receiving_mx
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                f.receiving_ip.map(|ip| ip.to_string()).unwrap_or_default(),
            )
        };
        key(a).cmp(&key(b))
    });

    let failing: Vec<&Finding> = latest
        .map(|s| {
            s.verdict
                .findings
                .iter()
                .filter(|f| {
                    f.fails(Severity::Error)
                        || f.result_type.is_some() && f.fails(Severity::Warning)
                })
                .collect()
        })
        .unwrap_or_default();
    let mut explained = vec![false; failing.len()];
    let mut both = Vec::new();
    let mut reports_only = Vec::new();
    for reported in failures {
        let matching: Vec<usize> = failing
            .iter()
            .enumerate()
            .filter(|(_, f)| predicts(f, &reported))
            .map(|(i, _)| i)
            .collect();
        if matching.is_empty() {
            let mxprobe_saw = match latest {
                Some(snapshot) => what_mxprobe_saw(snapshot, &reported),
                None => {
                    "mxprobe has not observed this domain (run `mxprobe monitor` on it)".to_owned()
                }
            };
            reports_only.push(Unexplained {
                reported,
                mxprobe_saw,
            });
        } else {
            let mut codes: Vec<String> = matching
                .iter()
                .map(|&i| failing[i].code.to_string())
                .collect();
            codes.dedup();
            for i in matching {
                explained[i] = true;
            }
            both.push(Predicted {
                reported,
                findings: codes,
            });
        }
    }
    let predicted_only = failing
        .iter()
        .zip(&explained)
        .filter(|(_, done)| !**done)
        .map(|(f, _)| (*f).clone())
        .collect();
    Comparison {
        domain: domain.clone(),
        observed_at: latest.map(|s| s.facts.observed_at),
        reports: reported.reports,
        successful_sessions: reported.successful,
        failed_sessions: reported.failed,
        unlisted_failures: reported.unlisted.0,
        unlisted_sessions: reported.unlisted.1,
        both,
        reports_only,
        predicted_only,
    }
}

/// Whether `finding` predicts `reported`: the same result type, and the same place where
/// the report names one (policy-level results have no place).
fn predicts(finding: &Finding, reported: &ReportedFailure) -> bool {
    let Some(rt) = finding.result_type else {
        return false;
    };
    if rt.as_str() != reported.result_type {
        return false;
    }
    if is_policy_level(rt) {
        return true;
    }
    let mx_agrees = match (&reported.receiving_mx, &finding.subject.mx) {
        (Some(r), Some(f)) => r == f,
        _ => true,
    };
    let ip_agrees = match (reported.receiving_ip, &finding.subject.ip) {
        (Some(r), Some(f)) => r == *f,
        // A finding merged over several addresses names them.
        (Some(r), None) => finding
            .subject
            .addresses()
            .is_none_or(|ips| ips.contains(&r)),
        _ => true,
    };
    mx_agrees && ip_agrees
}

/// Result types about the policy, not about one MX session (RFC 8460 §4.3.2).
fn is_policy_level(rt: ResultType) -> bool {
    matches!(
        rt,
        ResultType::StsPolicyFetchError
            | ResultType::StsPolicyInvalid
            | ResultType::StsWebpkiInvalid
            | ResultType::TlsaInvalid
            | ResultType::DnssecInvalid
            | ResultType::DaneRequired
    )
}

/// What mxprobe's latest run says about the place of a failure it did not predict.
fn what_mxprobe_saw(snapshot: &DomainResult, reported: &ReportedFailure) -> String {
    let sessions: Vec<_> = snapshot
        .verdict
        .sessions
        .iter()
        .filter(|s| {
            reported.receiving_mx.as_ref().is_none_or(|mx| *mx == s.mx)
                && reported.receiving_ip.is_none_or(|ip| ip == s.ip)
        })
        .collect();
    if sessions.is_empty() {
        let place = match (&reported.receiving_mx, reported.receiving_ip) {
            (Some(mx), Some(ip)) => format!("MX {mx} at {ip}"),
            (Some(mx), None) => format!("MX {mx}"),
            (None, Some(ip)) => format!("address {ip}"),
            (None, None) => "any MX".to_owned(),
        };
        return format!(
            "mxprobe did not probe {place}: not in the MX records or addresses it saw (the \
             DNS changed since, or senders see other records)"
        );
    }
    let mut text = String::new();
    let inconclusive = sessions
        .iter()
        .filter(|s| matches!(s.result, SessionResult::Inconclusive { .. }))
        .count();
    let passed = sessions
        .iter()
        .filter(|s| matches!(s.result, SessionResult::Success))
        .count();
    if inconclusive == sessions.len() {
        let _ = write!(
            text,
            "mxprobe could not test this MX from here ({}); the reporter reached it",
            match &sessions[0].result {
                SessionResult::Inconclusive { reason } => reason.as_str(),
                _ => "",
            }
        );
    } else if passed == sessions.len() {
        let _ = write!(
            text,
            "mxprobe's probe passed here ({} session{}): a problem on the sender's side (old \
             TLS stack, missing root certificates), a different view of the network, or one \
             that is fixed since",
            passed,
            if passed == 1 { "" } else { "s" }
        );
    } else {
        let _ = write!(
            text,
            "mxprobe sees other failures here, not {}",
            reported.result_type
        );
    }
    text
}

/// The comparison for people.
pub fn write_text(out: &mut impl Write, c: &Comparison) -> io::Result<()> {
    let observed = c
        .observed_at
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "never".to_owned());
    writeln!(
        out,
        "{}: {} report(s), {} successful and {} failed sessions; mxprobe last observed it: {observed}",
        c.domain, c.reports, c.successful_sessions, c.failed_sessions
    )?;
    let place = |r: &ReportedFailure| {
        let mut p = String::new();
        if let Some(mx) = &r.receiving_mx {
            let _ = write!(p, " MX {mx}");
        }
        if let Some(ip) = r.receiving_ip {
            let _ = write!(p, " at {ip}");
        }
        p
    };
    let days = |r: &ReportedFailure| {
        if r.first_day == r.last_day {
            r.first_day.to_string()
        } else {
            format!("{} to {}", r.first_day, r.last_day)
        }
    };
    writeln!(
        out,
        "\nReported and predicted by mxprobe ({}):",
        c.both.len()
    )?;
    for p in &c.both {
        let r = &p.reported;
        writeln!(
            out,
            "  {} {} ({}){}: {} session(s), {}; mxprobe: {}",
            r.reporter,
            r.result_type,
            r.policy_type,
            place(r),
            r.sessions,
            days(r),
            p.findings.join(", ")
        )?;
    }
    if c.unlisted_failures > 0 {
        writeln!(
            out,
            "\n{} more kind(s) of reported failure ({} session(s)) are not listed: only the \
             {FAILURE_LIMIT} largest are compared",
            c.unlisted_failures, c.unlisted_sessions
        )?;
    }
    writeln!(out, "\nReported only ({}):", c.reports_only.len())?;
    for u in &c.reports_only {
        let r = &u.reported;
        writeln!(
            out,
            "  {} {} ({}){}: {} session(s), {}\n    {}",
            r.reporter,
            r.result_type,
            r.policy_type,
            place(r),
            r.sessions,
            days(r),
            u.mxprobe_saw
        )?;
    }
    writeln!(
        out,
        "\nPredicted by mxprobe, not reported yet ({}):",
        c.predicted_only.len()
    )?;
    for f in &c.predicted_only {
        writeln!(out, "  {} {}: {}", f.severity, f.code, f.message)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::test_support::TempHistory;
    use mxprobe_core::tlsrpt::report::{Report, read_report};
    use serde_json::json;

    /// [`compare`] of `reports` once stored in a history.
    fn compared(
        domain: &DomainName,
        reports: &[Report],
        latest: Option<&DomainResult>,
    ) -> Comparison {
        let stored = TempHistory::with_reports("compare", reports);
        compare(
            domain,
            reported(&stored.history, domain, None).unwrap(),
            latest,
        )
    }

    fn report(org: &str, id: &str, day: &str, details: serde_json::Value) -> Report {
        let doc = json!({
            "organization-name": org,
            "date-range": {"start-datetime": format!("{day}T00:00:00Z"),
                           "end-datetime": format!("{day}T23:59:59Z")},
            "contact-info": "tlsrpt@reporter.example",
            "report-id": id,
            "policies": [{
                "policy": {"policy-type": "sts", "policy-string": ["version: STSv1", "mode: enforce",
                           "mx: mx1.example.com", "max_age: 86400"],
                           "policy-domain": "example.com", "mx-host": ["mx1.example.com"]},
                "summary": {"total-successful-session-count": 100,
                            "total-failure-session-count": details.as_array().unwrap().iter()
                                .map(|d| d["failed-session-count"].as_u64().unwrap()).sum::<u64>()},
                "failure-details": details,
            }],
        });
        read_report(doc.to_string().as_bytes()).unwrap().report
    }

    fn detail(rt: &str, mx: &str, ip: &str, n: u64) -> serde_json::Value {
        json!({"result-type": rt, "sending-mta-ip": "198.51.100.7", "receiving-mx-hostname": mx,
               "receiving-ip": ip, "failed-session-count": n})
    }

    /// example.com: mx1 (192.0.2.1) has an expired certificate; mx2 (192.0.2.2) passes;
    /// mx3 (192.0.2.3) could not be tested; TLS-RPT is missing (a notice).
    fn snapshot() -> DomainResult {
        let session = |mx: &str, ip: &str, result: serde_json::Value| {
            let mut s = json!({"mx": mx, "ip": ip, "policy_type": "sts"});
            s.as_object_mut()
                .unwrap()
                .extend(result.as_object().unwrap().clone());
            s
        };
        let verdict = json!({
            "domain": "example.com", "routing": "mx", "sts": {}, "inconclusive": true,
            "sessions": [
                session("mx1.example.com", "192.0.2.1", json!({"result": "failure", "failures": [
                    {"result_type": "certificate-expired", "reason_code": "leaf-expired"}]})),
                session("mx2.example.com", "192.0.2.2", json!({"result": "success"})),
                session("mx3.example.com", "192.0.2.3", json!({"result": "inconclusive",
                    "reason": "the TCP connection timed out"})),
            ],
            "findings": [
                {"code": "smtp.cert.leaf-expired", "severity": "error",
                 "subject": {"domain": "example.com", "mx": "mx1.example.com", "ip": "192.0.2.1"},
                 "message": "expired", "result_type": "certificate-expired", "policy_type": "sts"},
                {"code": "sts.policy.max-age-short", "severity": "warning",
                 "subject": {"domain": "example.com"}, "message": "short"},
                {"code": "dns.tlsrpt-txt.failed", "severity": "warning", "inconclusive": true,
                 "subject": {"domain": "example.com"}, "message": "timeout"},
                {"code": "sts.enforce.no-deliverable-mx", "severity": "error",
                 "subject": {"domain": "example.com"}, "message": "none deliverable"},
                {"code": "tlsrpt.none", "severity": "notice",
                 "subject": {"domain": "example.com"}, "message": "no TLS-RPT"},
            ],
        });
        let facts = json!({
            "domain": "example.com", "observed_at": "2026-11-29T06:00:00Z",
            "mx": {"status": "servfail"}, "sts_txt": {"status": "servfail"},
            "tlsrpt_txt": {"status": "servfail"}, "hosts": [],
        });
        DomainResult::new(
            serde_json::from_value(facts).unwrap(),
            serde_json::from_value(verdict).unwrap(),
        )
    }

    #[test]
    fn reported_and_predicted_failures_fall_into_three_lists() {
        let domain = DomainName::parse("example.com").unwrap();
        let reports = [
            report(
                "Google Inc.",
                "g1",
                "2026-11-27",
                json!([
                    detail("certificate-expired", "mx1.example.com", "192.0.2.1", 12),
                    detail("starttls-not-supported", "mx2.example.com", "192.0.2.2", 3),
                ]),
            ),
            report(
                "Google Inc.",
                "g2",
                "2026-11-28",
                json!([
                    detail("certificate-expired", "mx1.example.com", "192.0.2.1", 8),
                    detail("validation-failure", "mx3.example.com", "192.0.2.3", 1),
                    detail(
                        "certificate-expired",
                        "old-mx.example.com",
                        "203.0.113.9",
                        2
                    ),
                ]),
            ),
        ];
        let c = compared(&domain, &reports, Some(&snapshot()));
        assert_eq!(c.reports, 2);
        assert_eq!((c.successful_sessions, c.failed_sessions), (200, 26));
        // Both: mx1's expired certificate, 20 sessions over two days.
        assert_eq!(c.both.len(), 1);
        let both = &c.both[0];
        assert_eq!(both.findings, ["smtp.cert.leaf-expired"]);
        assert_eq!(both.reported.sessions, 20);
        assert_eq!(both.reported.first_day.to_string(), "2026-11-27");
        assert_eq!(both.reported.last_day.to_string(), "2026-11-28");
        // Reports only: what mxprobe saw at each place.
        let only: Vec<(&str, &str)> = c
            .reports_only
            .iter()
            .map(|u| (u.reported.result_type.as_str(), u.mxprobe_saw.as_str()))
            .collect();
        assert_eq!(only.len(), 3, "{only:#?}");
        assert!(
            only[0].0 == "certificate-expired"
                && only[0]
                    .1
                    .contains("did not probe MX old-mx.example.com at 203.0.113.9"),
            "{only:?}"
        );
        assert!(
            only[1].0 == "starttls-not-supported"
                && only[1].1.contains("probe passed here (1 session)"),
            "{only:?}"
        );
        assert!(
            only[2].0 == "validation-failure"
                && only[2]
                    .1
                    .contains("could not test this MX from here (the TCP connection timed out)"),
            "{only:?}"
        );
        // Predicted only: failing findings no report shows; not the notice, not the warning
        // without a result type, not what could not be tested.
        let predicted: Vec<&str> = c.predicted_only.iter().map(|f| &*f.code).collect();
        assert_eq!(predicted, ["sts.enforce.no-deliverable-mx"]);

        let mut text = Vec::new();
        write_text(&mut text, &c).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(
            text.starts_with(
                "example.com: 2 report(s), 200 successful and 26 failed sessions; mxprobe last \
             observed it: 2026-11-29T06:00:00Z\n"
            ),
            "{text}"
        );
        assert!(text.contains("\nReported and predicted by mxprobe (1):\n  Google Inc. certificate-expired (sts) MX mx1.example.com at 192.0.2.1: 20 session(s), 2026-11-27 to 2026-11-28; mxprobe: smtp.cert.leaf-expired\n"), "{text}");
        assert!(text.contains("\nPredicted by mxprobe, not reported yet (1):\n  error sts.enforce.no-deliverable-mx: none deliverable\n"), "{text}");
    }

    #[test]
    fn without_a_monitor_run_every_reported_failure_is_unexplained() {
        let domain = DomainName::parse("example.com").unwrap();
        let other = DomainName::parse("other.example").unwrap();
        let reports = [report(
            "Microsoft Corporation",
            "m1",
            "2026-11-28",
            json!([detail(
                "sts-policy-fetch-error",
                "mx1.example.com",
                "192.0.2.1",
                4
            )]),
        )];
        let c = compared(&domain, &reports, None);
        assert!(c.both.is_empty() && c.predicted_only.is_empty());
        assert_eq!(c.reports_only.len(), 1);
        assert!(
            c.reports_only[0]
                .mxprobe_saw
                .contains("has not observed this domain")
        );
        assert_eq!(c.observed_at, None);
        // Reports for other domains do not count.
        let c = compared(&other, &reports, None);
        assert_eq!((c.reports, c.failed_sessions), (0, 0));
        assert!(c.reports_only.is_empty());
    }

    #[test]
    fn failures_past_the_limit_are_counted_not_listed() {
        let domain = DomainName::parse("example.com").unwrap();
        let sums = ReportedFailures {
            reports: 3,
            successful: 10,
            failed: u128::from(u64::MAX) * 3,
            failures: Vec::new(),
            unlisted: (2500, u128::from(u64::MAX) * 3),
        };
        let c = compare(&domain, sums, None);
        assert_eq!(
            (c.unlisted_failures, c.unlisted_sessions),
            (2500, u128::from(u64::MAX) * 3)
        );
        let json = serde_json::to_string(&c).unwrap();
        assert!(
            json.contains("\"unlisted_failures\":2500,\"unlisted_sessions\":55340232221128654845"),
            "{json}"
        );
        let mut text = Vec::new();
        write_text(&mut text, &c).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(
            text.contains(
                "\n2500 more kind(s) of reported failure (55340232221128654845 session(s)) are \
                 not listed: only the 1000 largest are compared\n"
            ),
            "{text}"
        );
        // Nothing unlisted: nothing said, nothing in the JSON.
        let c = compared(&domain, &[], None);
        let json = serde_json::to_value(&c).unwrap();
        assert!(json.get("unlisted_failures").is_none(), "{json}");
        let mut text = Vec::new();
        write_text(&mut text, &c).unwrap();
        assert!(!String::from_utf8(text).unwrap().contains("not listed"));
    }

    #[test]
    fn policy_level_results_match_without_a_place() {
        let domain = DomainName::parse("example.com").unwrap();
        let mut snap = snapshot();
        snap.verdict.findings = vec![
            serde_json::from_value(json!({
            "code": "sts.fetch.failed", "severity": "error", "subject": {"domain": "example.com"},
            "message": "404", "result_type": "sts-policy-fetch-error", "policy_type": "sts"}))
            .unwrap(),
        ];
        let reports = [report(
            "Google Inc.",
            "g3",
            "2026-11-28",
            json!([detail(
                "sts-policy-fetch-error",
                "mx9.example.com",
                "192.0.2.9",
                5
            )]),
        )];
        let c = compared(&domain, &reports, Some(&snap));
        assert_eq!(c.both.len(), 1);
        assert_eq!(c.both[0].findings, ["sts.fetch.failed"]);
        assert!(c.reports_only.is_empty() && c.predicted_only.is_empty());
    }
}
