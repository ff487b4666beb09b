//! The answer to `/probe`: blackbox_exporter's `probe_success` and `probe_duration_seconds`,
//! the domain series the textfile has ([`DomainFamilies`]), and the per-address series only a
//! single-target scrape can afford (session result and RFC 8460 result types, TLS version,
//! leaf and verified-chain expiry, DANE), with the MTA-STS policy and TLS-RPT. Pure: the
//! same result gives the same bytes.

use std::time::Duration;

use mxprobe_core::evaluate::verdict::{SessionResult, SessionVerdict, Status};
use mxprobe_core::facts::DomainFacts;
use mxprobe_core::finding::Severity;
use mxprobe_core::result::DomainResult;
use mxprobe_core::smtp::SmtpFacts;
use mxprobe_core::tls::describe;
use mxprobe_core::tlsrpt::{PolicyType, ResultType};

use super::cache::Probed;
use crate::exposition::{
    DomainFamilies, DomainOptions, Exposition, FAILURE, Family, INCONCLUSIVE, SUCCESS, indicator,
    session_result,
};

/// What one scrape answers with.
#[derive(Debug, Clone)]
pub struct Answer<'a> {
    /// The probe's result; `None` when the scrape timeout came first.
    pub probed: Option<&'a Probed>,
    /// How long the probe took (or, without a result, how long the scrape waited).
    pub duration: Duration,
    /// The result came from an earlier scrape (within --min-interval).
    pub cached: bool,
    /// How old the result is.
    pub age: Duration,
}

/// The DANE statuses of an MX address, as label values.
const DANE_STATUSES: [&str; 4] = ["failure", "inconclusive", "none", "success"];

/// The text of the answer.
pub fn render(answer: &Answer<'_>) -> String {
    let scanned = match answer.probed {
        Some(Probed::Scanned(result)) => Some(&**result),
        _ => None,
    };
    let mut success = Family::gauge(
        "probe_success",
        &[],
        "1 when the domain has no finding at error severity and everything was tested, else 0.",
    );
    let mut duration = Family::gauge(
        "probe_duration_seconds",
        &[],
        "How long the probe of the domain took, in seconds.",
    );
    let mut timed_out = Family::gauge(
        "mxprobe_probe_timed_out",
        &[],
        "1 when the probe did not end within the scrape timeout or the --deadline (the \
         result is then unknown, and probe_success 0).",
    );
    let mut cached = Family::gauge(
        "mxprobe_probe_cached",
        &[],
        "1 when the result is one an earlier scrape started (within --min-interval).",
    );
    let mut age = Family::gauge(
        "mxprobe_probe_age_seconds",
        &[],
        "How long ago the probe that gave this result ended, in seconds.",
    );
    let passed = scanned.is_some_and(|r| r.verdict.status(Severity::Error) == Status::Pass);
    success.set(&[], indicator(passed));
    duration.set(&[], answer.duration.as_secs_f64());
    let late = matches!(answer.probed, None | Some(Probed::PastDeadline(_)));
    timed_out.set(&[], indicator(late));
    cached.set(&[], indicator(answer.cached));
    age.set(&[], answer.age.as_secs_f64());

    let mut exposition = Exposition::default();
    exposition.extend([success, duration, timed_out, cached, age]);
    let mut domain = DomainFamilies::new(&DomainOptions::default());
    let mut addresses = AddressFamilies::new();
    if let Some(result) = scanned {
        domain.add(result);
        addresses.add(result);
    }
    exposition.extend(domain.into_families());
    exposition.extend(addresses.into_families());
    exposition.encode()
}

/// The series per MX address and about the policies, only in `/probe`.
struct AddressFamilies {
    session: Family,
    failure: Family,
    tls_version: Family,
    leaf_not_after: Family,
    chain_not_after: Family,
    dane: Family,
    policy_id: Family,
    max_age: Family,
    policy_failure: Family,
    tlsrpt: Family,
}

const ADDRESS: &[&str] = &["domain", "mx", "ip"];

impl AddressFamilies {
    fn new() -> Self {
        Self {
            session: Family::gauge(
                "mxprobe_mx_session",
                &["domain", "mx", "ip", "policy", "result"],
                "The SMTP session with the MX address under the policy that applies to it \
                 (tlsa, sts or no-policy-found): 1 for its result (success, failure or \
                 inconclusive), 0 for the others.",
            ),
            failure: Family::gauge(
                "mxprobe_mx_session_failure",
                &["domain", "mx", "ip", "policy", "result_type"],
                "1 for each RFC 8460 result type a sender would report for the session with \
                 the MX address.",
            ),
            tls_version: Family::gauge(
                "mxprobe_mx_tls_version",
                &["domain", "mx", "ip", "version"],
                "1 for the TLS version negotiated with the MX address.",
            ),
            leaf_not_after: Family::gauge(
                "mxprobe_mx_leaf_not_after_timestamp_seconds",
                ADDRESS,
                "When the leaf certificate the MX address presented expires, in seconds since \
                 the Unix epoch.",
            ),
            chain_not_after: Family::gauge(
                "mxprobe_mx_chain_not_after_timestamp_seconds",
                ADDRESS,
                "The earliest expiry of the certificates on the path that verified to a trust \
                 anchor (leaf and intermediates), in seconds since the Unix epoch; absent \
                 without such a path.",
            ),
            dane: Family::gauge(
                "mxprobe_mx_dane",
                &["domain", "mx", "ip", "status"],
                "DANE at the MX address: 1 for its status (success or failure of the TLSA \
                 match, inconclusive, or none when DANE does not apply), 0 for the others.",
            ),
            policy_id: Family::gauge(
                "mxprobe_sts_policy_id_info",
                &["domain", "id"],
                "1, with the id of the domain's _mta-sts record.",
            ),
            max_age: Family::gauge(
                "mxprobe_sts_max_age_seconds",
                &["domain"],
                "The max_age of the domain's valid MTA-STS policy, in seconds.",
            ),
            policy_failure: Family::gauge(
                "mxprobe_sts_policy_failure",
                &["domain", "result_type"],
                "1 for the RFC 8460 policy failure senders would report for the MTA-STS \
                 policy (sts-policy-fetch-error, sts-policy-invalid, sts-webpki-invalid), 0 \
                 for the others; all 0 when the policy was fetched and valid or none is \
                 published.",
            ),
            tlsrpt: Family::gauge(
                "mxprobe_tlsrpt_present",
                &["domain"],
                "1 when the domain publishes a valid TLS-RPT record with a usable destination.",
            ),
        }
    }

    fn add(&mut self, result: &DomainResult) {
        let domain = result.facts.domain.to_string();
        let verdict = &result.verdict;
        for session in &verdict.sessions {
            self.add_session(&domain, &result.facts, session);
        }
        if let Some(id) = &verdict.sts.id {
            self.policy_id.set(&[&domain, id], 1.0);
        }
        if let Some(policy) = &verdict.sts.policy {
            self.max_age.set(&[&domain], f64::from(policy.max_age));
        }
        let failing = verdict.sts.failure.as_ref().map(|f| f.result_type);
        for t in ResultType::ALL.into_iter().filter(|t| t.is_policy_level()) {
            self.policy_failure
                .set(&[&domain, t.as_str()], indicator(failing == Some(t)));
        }
        self.tlsrpt
            .set(&[&domain], indicator(!verdict.tlsrpt_rua.is_empty()));
    }

    fn add_session(&mut self, domain: &str, facts: &DomainFacts, session: &SessionVerdict) {
        let mx = session.mx.to_string();
        let ip = session.ip.to_string();
        let policy = session.policy_type.as_str();
        let current = session_result(&session.result);
        for result in [FAILURE, INCONCLUSIVE, SUCCESS] {
            self.session.set(
                &[domain, &mx, &ip, policy, result],
                indicator(result == current),
            );
        }
        if let SessionResult::Failure { failures } = &session.result {
            for f in failures {
                self.failure
                    .set(&[domain, &mx, &ip, policy, f.result_type.as_str()], 1.0);
            }
        }
        if let Some(version) = &session.tls_version {
            self.tls_version.set(&[domain, &mx, &ip, version], 1.0);
        }
        let dane = if session.policy_type == PolicyType::Tlsa {
            current
        } else {
            "none"
        };
        for status in DANE_STATUSES {
            self.dane
                .set(&[domain, &mx, &ip, status], indicator(status == dane));
        }
        let Some(chain) = smtp_of(facts, session)
            .and_then(|s| s.tls.as_ref())
            .map(|t| &t.chain)
        else {
            return;
        };
        let not_after = |i: usize| {
            chain
                .get(i)
                .and_then(|der| describe(der).ok())
                .map(|s| s.not_after.unix_timestamp() as f64)
        };
        if let Some(leaf) = not_after(0) {
            self.leaf_not_after.set(&[domain, &mx, &ip], leaf);
        }
        if let Some(path) = &session.verified_path {
            let earliest = path.iter().filter_map(|&i| not_after(i)).reduce(f64::min);
            if let Some(earliest) = earliest {
                self.chain_not_after.set(&[domain, &mx, &ip], earliest);
            }
        }
    }

    fn into_families(self) -> [Family; 10] {
        [
            self.session,
            self.failure,
            self.tls_version,
            self.leaf_not_after,
            self.chain_not_after,
            self.dane,
            self.policy_id,
            self.max_age,
            self.policy_failure,
            self.tlsrpt,
        ]
    }
}

/// The SMTP facts the session verdict judged.
fn smtp_of<'a>(facts: &'a DomainFacts, session: &SessionVerdict) -> Option<&'a SmtpFacts> {
    facts
        .hosts
        .iter()
        .flat_map(|h| &h.sessions)
        .find(|s| s.mx == session.mx && s.address.ip() == session.ip)
}
