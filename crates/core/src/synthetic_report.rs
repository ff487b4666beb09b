//! Synthetic TLS-RPT reports: what a sender would report after the sessions mxprobe made.
//!
//! One [`Report`] per policy domain (RFC 8460 §4), built from the facts and the verdict of
//! one scan. It looks synthetic on purpose: `organization-name` and `report-id` name
//! mxprobe, and `contact-info` is at the reserved `.invalid` TLD, so nobody can mistake it
//! for a real sender's report. Policies (RFC 8460 §4.4):
//! - `sts` when the domain publishes a `_mta-sts` record: the policy as served, its patterns
//!   as `mx-host`, the sessions under it; a policy-level failure (fetch error, invalid policy,
//!   bad certificate) is one failed session with no MX fields, and the MX sessions, which a
//!   sender then makes with opportunistic TLS, count as successful;
//! - one `tlsa` entry per MX host where DANE applies, with the TLSA base domain (the MX host)
//!   as `policy-domain` and the TLSA records as `policy-string`;
//! - one `tlsa` entry with a `dnssec-invalid` failure per DNSSEC failure that left no session
//!   to count (a bogus MX RRset, bogus MX host addresses): what validating senders report
//!   (RFC 7672 §2.1.1, RFC 8460 §4.3.2.1), with the broken link as failure-reason-code;
//! - `no-policy-found` for the remaining sessions.
//!
//! Inconclusive sessions (timeouts, 421) are not counted: RFC 8460 §4.3.4 lets transient
//! errors go unreported. Pure: no I/O.

use crate::dns::Tlsa;
use crate::domain::DomainName;
use crate::evaluate::records::RecordOutcome;
use crate::evaluate::verdict::{DomainVerdict, SessionResult, SessionVerdict};
use crate::facts::DomainFacts;
use crate::tlsrpt::filename::{FileNameError, ReportFileName, UniqueId};
use crate::tlsrpt::report::{
    DateRange, FailureDetail, PolicyDetails, PolicyReport, Report, Summary,
};
use crate::tlsrpt::{PolicyType, ResultType};

/// The organization named in every synthetic report.
pub const ORGANIZATION: &str = "mxprobe (synthetic report, not from a real sender)";

/// The contact in every synthetic report; `.invalid` is reserved (RFC 6761 §6.4).
pub const CONTACT: &str = "synthetic-report@mxprobe.invalid";

/// The sender domain for report file names (RFC 8460 §5.1), the domain of [`CONTACT`].
pub const SENDER_DOMAIN: &str = "mxprobe.invalid";

/// Builds the synthetic report for one scanned domain. `report_id` should be unique per
/// report (e.g. the scan start and the domain).
pub fn build_report(
    facts: &DomainFacts,
    verdict: &DomainVerdict,
    range: DateRange,
    report_id: String,
) -> Report {
    let mut policies = Vec::new();
    let has_sts = verdict.sts.record == Some(RecordOutcome::Valid);

    if has_sts {
        let mut entry = PolicyReport {
            policy: PolicyDetails {
                policy_type: PolicyType::Sts,
                policy_string: verdict.sts.policy_string.clone(),
                policy_domain: verdict.domain.clone(),
                mx_host: verdict
                    .sts
                    .policy
                    .as_ref()
                    .map(|p| p.mx.clone())
                    .unwrap_or_default(),
            },
            summary: Summary::default(),
            failure_details: Vec::new(),
        };
        if let Some(failure) = &verdict.sts.failure {
            add_failure(
                &mut entry,
                FailureDetail {
                    result_type: failure.result_type.into(),
                    sending_mta_ip: None,
                    receiving_mx_hostname: None,
                    receiving_mx_helo: None,
                    receiving_ip: None,
                    failed_session_count: 1,
                    additional_information: None,
                    failure_reason_code: Some(failure.reason_code.clone()),
                },
            );
            entry.summary.total_failure_session_count += 1;
        }
        // Sessions under the policy; where DANE decided, the same session as senders that
        // apply only MTA-STS judge it; and the sessions made without the policy (after a
        // policy-level failure, or in mode none).
        for s in &verdict.sessions {
            match (&s.sts_result, s.policy_type) {
                (Some(result), _) => count_result(&mut entry, s, result, false),
                (None, PolicyType::Sts) => count(&mut entry, s, false),
                (None, PolicyType::NoPolicyFound) => {
                    count(&mut entry, s, verdict.sts.failure.is_some());
                }
                (None, PolicyType::Tlsa) => {}
            }
        }
        policies.push(entry);
    }

    for host in &facts.hosts {
        let Some(name) = &host.name else { continue };
        let sessions: Vec<&SessionVerdict> = verdict
            .sessions
            .iter()
            .filter(|s| s.policy_type == PolicyType::Tlsa && &s.mx == name)
            .collect();
        if sessions.is_empty() {
            continue;
        }
        let records: Vec<Tlsa> = host
            .tlsa
            .as_ref()
            .and_then(|l| l.records())
            .map(<[Tlsa]>::to_vec)
            .unwrap_or_default();
        let mut entry = PolicyReport {
            policy: PolicyDetails {
                policy_type: PolicyType::Tlsa,
                policy_string: records.iter().map(ToString::to_string).collect(),
                policy_domain: name.clone(),
                mx_host: Vec::new(),
            },
            summary: Summary::default(),
            failure_details: Vec::new(),
        };
        for s in sessions {
            count(&mut entry, s, false);
        }
        policies.push(entry);
    }

    for failure in &verdict.dnssec_failures {
        let mut entry = PolicyReport {
            policy: PolicyDetails {
                policy_type: PolicyType::Tlsa,
                policy_string: Vec::new(),
                policy_domain: failure.policy_domain.clone(),
                mx_host: Vec::new(),
            },
            summary: Summary::default(),
            failure_details: Vec::new(),
        };
        add_failure(
            &mut entry,
            FailureDetail {
                result_type: ResultType::DnssecInvalid.into(),
                sending_mta_ip: None,
                receiving_mx_hostname: failure.mx.clone(),
                receiving_mx_helo: None,
                receiving_ip: None,
                failed_session_count: 1,
                additional_information: None,
                failure_reason_code: Some(failure.reason_code.clone()),
            },
        );
        entry.summary.total_failure_session_count += 1;
        policies.push(entry);
    }

    let rest: Vec<&SessionVerdict> = verdict
        .sessions
        .iter()
        .filter(|s| s.policy_type == PolicyType::NoPolicyFound && !has_sts)
        .collect();
    if !rest.is_empty() || policies.is_empty() {
        let mut entry = PolicyReport {
            policy: PolicyDetails {
                policy_type: PolicyType::NoPolicyFound,
                policy_string: Vec::new(),
                policy_domain: verdict.domain.clone(),
                mx_host: Vec::new(),
            },
            summary: Summary::default(),
            failure_details: Vec::new(),
        };
        for s in rest {
            count(&mut entry, s, false);
        }
        policies.push(entry);
    }

    Report {
        organization_name: ORGANIZATION.to_owned(),
        date_range: range,
        contact_info: CONTACT.to_owned(),
        report_id,
        policies,
    }
}

/// Counts one session into a policy entry. `opportunistic`: the policy failed at policy
/// level, so the sender delivers with whatever TLS it gets: a session that established TLS
/// counts as a success (RFC 8460 §4.2: success is a TLS session), one without TLS as a
/// failure.
fn count(entry: &mut PolicyReport, s: &SessionVerdict, opportunistic: bool) {
    count_result(entry, s, &s.result, opportunistic);
}

fn count_result(
    entry: &mut PolicyReport,
    s: &SessionVerdict,
    result: &SessionResult,
    opportunistic: bool,
) {
    match result {
        SessionResult::Inconclusive { .. } => {}
        SessionResult::Success => entry.summary.total_successful_session_count += 1,
        SessionResult::Failure { .. } if opportunistic && s.tls_version.is_some() => {
            entry.summary.total_successful_session_count += 1;
        }
        SessionResult::Failure { failures } => {
            entry.summary.total_failure_session_count += 1;
            for f in failures {
                add_failure(entry, detail(s, f.result_type, &f.reason_code));
            }
        }
    }
}

fn detail(s: &SessionVerdict, result_type: ResultType, reason: &str) -> FailureDetail {
    FailureDetail {
        result_type: result_type.into(),
        sending_mta_ip: s.source_ip,
        receiving_mx_hostname: Some(s.mx.clone()),
        receiving_mx_helo: s.helo.clone(),
        receiving_ip: Some(s.ip),
        failed_session_count: 1,
        additional_information: None,
        failure_reason_code: Some(reason.to_owned()),
    }
}

/// Adds a failure detail, merging it into an equal one (same type, addresses, host,
/// reason) by adding the counts (RFC 8460 §4.4: one entry per distinct failure).
fn add_failure(entry: &mut PolicyReport, new: FailureDetail) {
    let same = |d: &FailureDetail| {
        d.result_type == new.result_type
            && d.sending_mta_ip == new.sending_mta_ip
            && d.receiving_mx_hostname == new.receiving_mx_hostname
            && d.receiving_ip == new.receiving_ip
            && d.failure_reason_code == new.failure_reason_code
    };
    match entry.failure_details.iter_mut().find(|d| same(d)) {
        Some(d) => d.failed_session_count += new.failed_session_count,
        None => entry.failure_details.push(new),
    }
}

/// The report file name (RFC 8460 §5.1) for a synthetic report on `policy_domain`.
pub fn file_name(
    policy_domain: &DomainName,
    range: &DateRange,
    unique_id: &str,
    gzip: bool,
) -> Result<ReportFileName, FileNameError> {
    let sender = DomainName::parse(SENDER_DOMAIN).expect("a constant, valid host name");
    let id = UniqueId::parse(unique_id)?;
    ReportFileName::for_range(sender, policy_domain.clone(), range, Some(id), gzip)
}
