//! The CI gate: candidate changes (a policy file, `_mta-sts` and `_smtp._tls` TXT records, an
//! MX list) judged against what was observed of the live domain, before they are published.
//!
//! [`candidate_facts`] applies the candidate to the live [`DomainFacts`]: the facts senders
//! will see once it is published. The same pure evaluation as `scan` ([`evaluate_domain`])
//! judges them, so every rule lives in one place; [`judge`] adds only the findings about the
//! *change* itself (`gate.*`): a policy changed under an unchanged id, an MX removed from the
//! policy while still in DNS, a candidate MX the policy does not cover, what `enforce` would
//! break, max_age measured against the change, a policy host that cannot serve the candidate
//! yet. [`smtp_blocked`] recognises a machine whose outbound SMTP is blocked (common on CI
//! runners), so that this is reported as "not tested", never as a STARTTLS failure.
//!
//! Pure: no I/O; the time of judgement comes in [`EvalOptions::now`].

use std::collections::BTreeSet;
use std::net::IpAddr;

use serde::Serialize;
use time::{Duration, OffsetDateTime};

use crate::dns::{Lookup, Mx, Txt};
use crate::domain::DomainName;
use crate::evaluate::policy::{check_policy_body, coverage, coverage_findings};
use crate::evaluate::verdict::{DomainVerdict, SessionResult};
use crate::evaluate::{EvalOptions, evaluate_domain};
use crate::facts::PolicyFetchFacts;
use crate::facts::{DomainFacts, FetchAttempt, FetchOutcome, HttpResponse, MxHostFacts};
use crate::finding::{Code, Finding, Severity, Subject};
use crate::mtasts::{Mode, Policy};
use crate::smtp::SmtpOutcome;
use crate::tlsrpt::PolicyType;

/// A max_age above this (one week) is long for a first `enforce`: a mistake would be cached
/// by senders for that long.
pub const FIRST_ENFORCE_MAX_AGE: u32 = 604_800;

/// The candidate policy file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CandidatePolicy {
    /// The body (decoded lossily when it is not UTF-8).
    pub body: String,
    /// The file was not valid UTF-8.
    pub not_utf8: bool,
}

/// What is about to be published. Empty fields keep the live state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Candidate {
    /// The policy file to be served at `https://mta-sts.<domain>/.well-known/mta-sts.txt`.
    pub policy: Option<CandidatePolicy>,
    /// The `_mta-sts` TXT record set to be published (replaces the live one).
    pub sts_txt: Vec<String>,
    /// The `_smtp._tls` TXT record set to be published (replaces the live one).
    pub tlsrpt_txt: Vec<String>,
    /// The MX hosts to be published, in preference order, each observed as it is now
    /// (replaces the live MX set).
    pub mx: Vec<MxHostFacts>,
    /// The policy host as fetched for the gate, when the live domain publishes no
    /// `_mta-sts` record (the scan then fetches nothing).
    pub policy_host: Option<PolicyFetchFacts>,
}

impl Candidate {
    /// Whether nothing is proposed (the gate then judges the live state alone).
    pub fn is_empty(&self) -> bool {
        self.policy.is_none()
            && self.sts_txt.is_empty()
            && self.tlsrpt_txt.is_empty()
            && self.mx.is_empty()
    }
}

/// The gate's conclusion for one domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Gated {
    /// The facts as senders will see them once the candidate is published.
    pub facts: DomainFacts,
    /// The live state, judged as `scan` judges it.
    pub live: DomainVerdict,
    /// The candidate state, with the findings about the change (`gate.*`) added.
    pub verdict: DomainVerdict,
}

/// The version of `mxprobe gate --format json`'s shape (docs/ci.md).
pub const GATE_SCHEMA_VERSION: u32 = 1;

/// `mxprobe gate --format json`.
#[derive(Debug, Serialize)]
pub struct GateDocument<'a> {
    /// [`GATE_SCHEMA_VERSION`].
    pub schema_version: u32,
    pub domain: &'a DomainName,
    /// When the live domain was observed and judged.
    #[serde(with = "time::serde::rfc3339")]
    pub checked_at: OffsetDateTime,
    /// What was proposed, as given on the command line.
    pub candidate: CandidateSummary<'a>,
    #[serde(flatten)]
    pub gated: &'a Gated,
}

/// What was proposed, as given on the command line.
#[derive(Debug, Serialize)]
pub struct CandidateSummary<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_file: Option<&'a std::path::Path>,
    pub sts_txt: &'a [String],
    pub tlsrpt_txt: &'a [String],
    pub mx: &'a [String],
}

/// The facts senders will see once `candidate` is published, built from the live facts.
///
/// The policy file is assumed to be served by the live policy host the way that host serves
/// HTTPS today (its certificate chain, its Content-Type when it already answers 200, else
/// `text/plain`), with status 200. Without any HTTP response from the policy host the live
/// fetch failure is kept: the candidate cannot be served yet.
pub fn candidate_facts(live: &DomainFacts, candidate: &Candidate) -> DomainFacts {
    let mut facts = live.clone();
    if !candidate.sts_txt.is_empty() {
        facts.sts_txt = txt_records(&candidate.sts_txt, &live.sts_txt);
    }
    if !candidate.tlsrpt_txt.is_empty() {
        facts.tlsrpt_txt = txt_records(&candidate.tlsrpt_txt, &live.tlsrpt_txt);
    }
    if !candidate.mx.is_empty() {
        facts.mx = Lookup::Records {
            records: candidate
                .mx
                .iter()
                .map(|h| Mx {
                    preference: h.preference,
                    exchange: h.exchange.clone(),
                })
                .collect(),
            dnssec: live.mx.dnssec(),
            cname_chain: Vec::new(),
        };
        facts.hosts = candidate.mx.clone();
    }
    let served = live
        .policy_fetch
        .as_ref()
        .or(candidate.policy_host.as_ref());
    match (&candidate.policy, served) {
        (Some(policy), Some(fetch)) => {
            facts.policy_fetch = Some(serve_candidate(fetch, policy));
        }
        (None, Some(fetch)) if facts.policy_fetch.is_none() => {
            facts.policy_fetch = Some(fetch.clone());
        }
        _ => {}
    }
    facts
}

/// The fetch as it will go once the candidate file is in place.
fn serve_candidate(fetch: &PolicyFetchFacts, policy: &CandidatePolicy) -> PolicyFetchFacts {
    let answered = fetch.attempts.iter().find_map(|a| match &a.outcome {
        FetchOutcome::Response(r) => Some((a.address, r)),
        _ => None,
    });
    let Some((address, response)) = answered else {
        return fetch.clone();
    };
    let content_type = if response.status == 200 {
        response.content_type.clone()
    } else {
        Some("text/plain".to_owned())
    };
    PolicyFetchFacts {
        url: fetch.url.clone(),
        attempts: vec![FetchAttempt {
            address,
            outcome: FetchOutcome::Response(HttpResponse {
                status: 200,
                content_type,
                location: None,
                chain: response.chain.clone(),
                body: policy.body.clone(),
                body_not_utf8: policy.not_utf8,
                body_truncated: false,
            }),
        }],
    }
}

fn txt_records(values: &[String], live: &Lookup<Txt>) -> Lookup<Txt> {
    Lookup::Records {
        records: values
            .iter()
            .map(|v| Txt {
                strings: vec![v.clone()],
            })
            .collect(),
        dnssec: live.dnssec(),
        cname_chain: Vec::new(),
    }
}

/// Judges `live` with `candidate` applied. `new_id` is a fresh policy id to suggest.
pub fn judge(
    live: &DomainFacts,
    candidate: &Candidate,
    opts: &EvalOptions<'_>,
    new_id: &str,
) -> Gated {
    let mut live = live.clone();
    let mut candidate = candidate.clone();
    let blocked = smtp_blocked(live.hosts.iter().chain(candidate.mx.iter()));
    if let Some(reason) = &blocked {
        mark_not_tested(&mut live.hosts, reason);
        mark_not_tested(&mut candidate.mx, reason);
    }
    let live_verdict = evaluate_domain(&live, opts);
    let facts = candidate_facts(&live, &candidate);
    let mut verdict = if candidate.is_empty() {
        live_verdict.clone()
    } else {
        evaluate_domain(&facts, opts)
    };
    let subject = Subject::domain(&live.domain);
    if live.resolver_problem.is_some() {
        // Nothing the resolver said can be judged, candidates included: the verdict is the
        // resolver's finding alone (inconclusive, never failing).
        return Gated {
            facts,
            live: live_verdict,
            verdict,
        };
    }
    let mut gate = Vec::new();
    if let Some(reason) = &blocked {
        gate.push(
            Finding::new(
                Code::SmtpPortBlocked,
                Severity::Warning,
                subject.clone(),
                format!("STARTTLS was not tested: {reason}"),
            )
            .with_fix(
                "run the gate where outbound connections to port 25 are allowed, or pass \
                 --no-smtp to check DNS and HTTPS only",
            )
            .could_not_test(),
        );
        verdict.inconclusive = true;
    }
    if !candidate.is_empty() {
        change_findings(
            &live,
            &live_verdict,
            &candidate,
            &facts,
            &mut verdict,
            opts.now,
            new_id,
            &subject,
            &mut gate,
        );
    }
    verdict.findings.extend(gate);
    crate::finding::cap_findings(&mut verdict.findings, &subject);
    Gated {
        facts,
        live: live_verdict,
        verdict,
    }
}

#[allow(clippy::too_many_arguments)]
fn change_findings(
    live: &DomainFacts,
    live_verdict: &DomainVerdict,
    candidate: &Candidate,
    facts: &DomainFacts,
    verdict: &mut DomainVerdict,
    now: OffsetDateTime,
    new_id: &str,
    subject: &Subject,
    out: &mut Vec<Finding>,
) {
    let domain = &live.domain;
    let policy_subject = subject
        .clone()
        .at(format!("https://mta-sts.{domain}/.well-known/mta-sts.txt"));
    // The candidate body, judged by itself when no policy host can serve it yet (the
    // evaluation then never sees it).
    let unavailable = candidate.policy.is_some()
        && facts
            .policy_fetch
            .as_ref()
            .is_none_or(|f| f.response().is_none());
    let candidate_policy: Option<Policy> = match &candidate.policy {
        Some(p) if unavailable => {
            let check = check_policy_body(&p.body, p.not_utf8, &policy_subject);
            verdict.findings.extend(check.findings);
            let why = live
                .policy_fetch
                .as_ref()
                .or(candidate.policy_host.as_ref())
                .map_or_else(
                    || "it was not fetched".to_owned(),
                    |f| {
                        f.attempts
                            .iter()
                            .map(attempt_text)
                            .collect::<Vec<_>>()
                            .join("; ")
                    },
                );
            out.push(
                Finding::new(
                    Code::GatePolicyHostUnavailable,
                    Severity::Error,
                    policy_subject.clone(),
                    format!(
                        "the candidate policy cannot be served yet: mta-sts.{domain} gave no \
                         HTTPS response ({why}); senders would find no policy"
                    ),
                )
                .with_fix(format!(
                    "set up mta-sts.{domain} (A/AAAA records, HTTPS on port 443 with a \
                     certificate for that name) and serve the file there before publishing the \
                     _mta-sts record"
                )),
            );
            if let Some(policy) = &check.policy {
                let names: Vec<DomainName> =
                    facts.hosts.iter().filter_map(|h| h.name.clone()).collect();
                let cov = coverage(&policy.mx, &names);
                verdict.findings.extend(coverage_findings(
                    &policy.mx,
                    &cov,
                    Some(policy.mode),
                    &policy_subject,
                ));
            }
            check.policy
        }
        Some(_) => verdict.sts.policy.clone(),
        None => None,
    };
    let live_policy = live_verdict.sts.policy.as_ref();
    // The policy senders will apply once the change is out.
    let effective = candidate_policy.as_ref().or(live_policy);

    id_unchanged(
        live_verdict,
        verdict,
        candidate_policy.as_ref(),
        new_id,
        subject,
        out,
    );

    // MX hosts that will be in DNS: the candidate list, or the live one.
    let in_dns: Vec<DomainName> = facts.hosts.iter().filter_map(|h| h.name.clone()).collect();
    if let (Some(live_p), Some(cand_p)) = (live_policy, candidate_policy.as_ref())
        && cand_p.mode != Mode::None
    {
        for mx in &in_dns {
            if live_p.matching_pattern(mx).is_some() && cand_p.matching_pattern(mx).is_none() {
                out.push(
                    Finding::new(
                        Code::GateMxRemovedFromPolicy,
                        mode_severity(cand_p.mode),
                        subject.clone().with_mx(mx),
                        format!(
                            "the candidate policy no longer covers MX {mx}, which is still in \
                             the MX records: senders that apply the new policy (mode {}) will \
                             not deliver to it",
                            cand_p.mode
                        ),
                    )
                    .with_fix(format!(
                        "keep \"mx: {mx}\" in the policy until {mx} has left the MX records, or \
                         remove {mx} from the MX records first"
                    )),
                );
            }
        }
    }
    if !candidate.mx.is_empty()
        && let Some(policy) = effective.filter(|p| p.mode != Mode::None)
    {
        let live_mx: BTreeSet<&str> = live.hosts.iter().map(|h| h.exchange.as_str()).collect();
        for host in &candidate.mx {
            let Some(mx) = &host.name else { continue };
            if policy.matching_pattern(mx).is_some() {
                continue;
            }
            let new = if live_mx.contains(mx.as_str()) {
                ""
            } else {
                " new"
            };
            out.push(
                Finding::new(
                    Code::GateMxNotCovered,
                    mode_severity(policy.mode),
                    subject.clone().with_mx(mx),
                    format!(
                        "the{new} MX {mx} is not covered by the policy senders will apply (mx {}; \
                         mode {}): they will not deliver to it",
                        patterns(policy),
                        policy.mode
                    ),
                )
                .with_fix(format!(
                    "add \"mx: {mx}\" to the policy and publish a new id before {mx} goes into \
                     the MX records"
                )),
            );
        }
    }

    if let Some(policy) = verdict.sts.active().cloned() {
        let failing = sts_failing_hosts(verdict);
        if !failing.is_empty() {
            let list = failing
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            out.push(if policy.mode == Mode::Enforce {
                Finding::new(
                    Code::GateEnforceBreaksMx,
                    Severity::Error,
                    subject.clone(),
                    format!(
                        "with the candidate in mode enforce, senders that apply MTA-STS will not \
                         deliver to {list} (see the findings for each address)"
                    ),
                )
                .with_fix(format!(
                    "fix {list} first, or publish mode testing until it passes"
                ))
            } else {
                Finding::new(
                    Code::GateEnforceWouldBreak,
                    Severity::Warning,
                    subject.clone(),
                    format!(
                        "mode is testing, so mail still flows; switching this policy to enforce \
                         would stop delivery to {list}"
                    ),
                )
                .with_fix(format!(
                    "fix {list} (see the findings for each address) before switching to enforce"
                ))
            });
        }
    }

    max_age_findings(
        live_policy,
        candidate_policy.as_ref(),
        &in_dns,
        now,
        subject,
        out,
    );
}

/// RFC 8461 §3.1 / §5.1: senders fetch a policy again only when the TXT id changes.
fn id_unchanged(
    live: &DomainVerdict,
    candidate: &DomainVerdict,
    candidate_policy: Option<&Policy>,
    new_id: &str,
    subject: &Subject,
    out: &mut Vec<Finding>,
) {
    let (Some(live_id), Some(cand_id)) = (&live.sts.id, &candidate.sts.id) else {
        return;
    };
    let Some(cand_policy) = candidate_policy else {
        return;
    };
    if live_id != cand_id || live.sts.policy.as_ref() == Some(cand_policy) {
        return;
    }
    let what = match &live.sts.policy {
        Some(old) => policy_changes(old, cand_policy),
        None => "the live policy is invalid or could not be fetched".to_owned(),
    };
    let max_age = live.sts.policy.as_ref().map_or(String::new(), |p| {
        format!(" for up to max_age {} s", p.max_age)
    });
    out.push(
        Finding::new(
            Code::GateStsIdUnchanged,
            Severity::Error,
            subject.clone().at(format!("_mta-sts.{}", live.domain)),
            format!(
                "the policy changes ({what}) but the _mta-sts id stays {cand_id}: senders that \
                 cached the current policy keep applying it{max_age} and never fetch the new one \
                 (RFC 8461 §3.1)"
            ),
        )
        .with_fix(format!(
            "publish the new policy, then \"v=STSv1; id={new_id}\" at _mta-sts.{} (check it \
             here with --sts-txt)",
            live.domain
        )),
    );
}

/// What differs between two policies, in words.
fn policy_changes(old: &Policy, new: &Policy) -> String {
    let mut parts = Vec::new();
    if old.mode != new.mode {
        parts.push(format!("mode {} → {}", old.mode, new.mode));
    }
    let old_mx: BTreeSet<String> = old.mx.iter().map(ToString::to_string).collect();
    let new_mx: BTreeSet<String> = new.mx.iter().map(ToString::to_string).collect();
    let added: Vec<&String> = new_mx.difference(&old_mx).collect();
    let removed: Vec<&String> = old_mx.difference(&new_mx).collect();
    if !added.is_empty() {
        parts.push(format!(
            "mx added: {}",
            added
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if !removed.is_empty() {
        parts.push(format!(
            "mx removed: {}",
            removed
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if old.max_age != new.max_age {
        parts.push(format!("max_age {} → {}", old.max_age, new.max_age));
    }
    if parts.is_empty() {
        "the order of the mx lines or the extension fields".to_owned()
    } else {
        parts.join("; ")
    }
}

/// max_age measured against the change: how long the old policy lingers in senders' caches,
/// and how long a first `enforce` would be held.
fn max_age_findings(
    live: Option<&Policy>,
    candidate: Option<&Policy>,
    in_dns: &[DomainName],
    now: OffsetDateTime,
    subject: &Subject,
    out: &mut Vec<Finding>,
) {
    let Some(cand) = candidate else { return };
    let live_mode = live.map(|p| p.mode);
    if cand.mode == Mode::Enforce
        && live_mode != Some(Mode::Enforce)
        && cand.max_age > FIRST_ENFORCE_MAX_AGE
    {
        out.push(
            Finding::new(
                Code::GateMaxAgeLongFirstEnforce,
                Severity::Warning,
                subject.clone(),
                format!(
                    "this is the first enforce policy and its max_age is {} s ({}): if it turns \
                     out wrong, senders that fetched it keep refusing the hosts it excludes for \
                     that long",
                    cand.max_age,
                    days(cand.max_age)
                ),
            )
            .with_fix(format!(
                "start enforce with a max_age of at most {FIRST_ENFORCE_MAX_AGE} (one week) and \
                 raise it (new id) once TLS-RPT reports show no failures"
            )),
        );
    }
    // RFC 8461 §5: a sender keeps a fetched policy until its max_age runs out, so hosts the
    // old policy covered stay subject to it (and must keep passing it) until then.
    let Some(old) = live.filter(|p| p.mode == Mode::Enforce) else {
        return;
    };
    let weaker = cand.mode != Mode::Enforce;
    let leaving: Vec<&DomainName> = old
        .mx
        .iter()
        .flat_map(|p| in_dns.iter().filter(move |mx| p.matches(mx)))
        .filter(|mx| cand.matching_pattern(mx).is_none())
        .collect();
    if !weaker && leaving.is_empty() {
        return;
    }
    let until = now + Duration::seconds(i64::from(old.max_age));
    let date = until
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| until.to_string());
    let change = if weaker {
        format!("the mode goes from enforce to {}", cand.mode)
    } else {
        "MX hosts leave the policy".to_owned()
    };
    out.push(
        Finding::new(
            Code::GateMaxAgeOldPolicyLingers,
            Severity::Notice,
            subject.clone(),
            format!(
                "{change}, but senders that cached the current enforce policy keep applying it \
                 for up to its max_age of {} s ({}), until about {date}",
                old.max_age,
                days(old.max_age)
            ),
        )
        .with_fix(format!(
            "keep every MX host the current policy covers accepting STARTTLS with a valid \
             certificate until {date}"
        )),
    );
}

fn days(seconds: u32) -> String {
    let d = f64::from(seconds) / 86_400.0;
    if d >= 1.0 {
        format!("{d:.1} days")
    } else {
        format!("{:.1} hours", f64::from(seconds) / 3_600.0)
    }
}

fn mode_severity(mode: Mode) -> Severity {
    if mode == Mode::Enforce {
        Severity::Error
    } else {
        Severity::Warning
    }
}

fn patterns(policy: &Policy) -> String {
    policy
        .mx
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The MX hosts with at least one address that fails MTA-STS (as judged by MTA-STS, also
/// where DANE decides), in session order.
fn sts_failing_hosts(verdict: &DomainVerdict) -> Vec<DomainName> {
    let mut out: Vec<DomainName> = Vec::new();
    for s in &verdict.sessions {
        let result = match s.policy_type {
            PolicyType::Sts => Some(&s.result),
            _ => s.sts_result.as_ref(),
        };
        if matches!(result, Some(SessionResult::Failure { .. })) && !out.contains(&s.mx) {
            out.push(s.mx.clone());
        }
    }
    out
}

fn attempt_text(a: &FetchAttempt) -> String {
    let at = a.address.map_or(String::new(), |ip| format!("{ip}: "));
    let what = match &a.outcome {
        FetchOutcome::DnsError { error, .. } => format!("DNS: {error}"),
        FetchOutcome::ConnectError { error } => format!("cannot connect: {error}"),
        FetchOutcome::Timeout { phase } => format!("timeout ({phase:?})"),
        FetchOutcome::TlsError { error } => format!("TLS: {error}"),
        FetchOutcome::Response(r) => format!("HTTP {}", r.status),
    };
    format!("{at}{what}")
}

/// Recognises a machine that cannot open SMTP connections at all (outbound port 25 blocked,
/// as on many cloud and CI runners): every probe, to at least two addresses, failed to
/// connect in the same way. Returns the reason to report, or `None`.
///
/// One address refusing is an ordinary (inconclusive) probe result; several unrelated
/// addresses failing identically at the TCP connect is the signature of a local block.
pub fn smtp_blocked<'a>(hosts: impl IntoIterator<Item = &'a MxHostFacts>) -> Option<String> {
    let sessions: Vec<_> = hosts.into_iter().flat_map(|h| h.sessions.iter()).collect();
    let first = sessions.first()?;
    let same = |o: &SmtpOutcome| match (o, &first.outcome) {
        (SmtpOutcome::ConnectionRefused, SmtpOutcome::ConnectionRefused)
        | (SmtpOutcome::ConnectTimeout, SmtpOutcome::ConnectTimeout) => true,
        (SmtpOutcome::ConnectFailed { error: a }, SmtpOutcome::ConnectFailed { error: b }) => {
            a == b
        }
        _ => false,
    };
    if !sessions.iter().all(|s| same(&s.outcome)) {
        return None;
    }
    let addresses: BTreeSet<IpAddr> = sessions.iter().map(|s| s.address.ip()).collect();
    if addresses.len() < 2 {
        return None;
    }
    let ports: BTreeSet<u16> = sessions.iter().map(|s| s.address.port()).collect();
    let how = match &first.outcome {
        SmtpOutcome::ConnectionRefused => "the connection was refused".to_owned(),
        SmtpOutcome::ConnectTimeout => "the connection timed out".to_owned(),
        SmtpOutcome::ConnectFailed { error } => error.clone(),
        _ => return None,
    };
    Some(format!(
        "every connection to port {} of {} addresses failed the same way ({how}): outbound \
         SMTP looks blocked from this machine",
        ports
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        addresses.len()
    ))
}

/// Replaces every session outcome with "not tested" for `reason`.
pub fn mark_not_tested(hosts: &mut [MxHostFacts], reason: &str) {
    for session in hosts.iter_mut().flat_map(|h| h.sessions.iter_mut()) {
        session.outcome = SmtpOutcome::NotTested {
            reason: reason.to_owned(),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smtp::SmtpFacts;
    use std::net::SocketAddr;

    fn host(name: &str, outcomes: &[(&str, SmtpOutcome)]) -> MxHostFacts {
        let dn = DomainName::parse(name).unwrap();
        MxHostFacts {
            exchange: name.to_owned(),
            name: Some(dn.clone()),
            preference: 10,
            implicit: false,
            addresses: None,
            tlsa: None,
            tlsa_base: None,
            sessions: outcomes
                .iter()
                .map(|(addr, o)| {
                    SmtpFacts::new(dn.clone(), addr.parse::<SocketAddr>().unwrap(), o.clone())
                })
                .collect(),
        }
    }

    #[test]
    fn a_blocked_port_needs_two_addresses_failing_the_same_way() {
        let refused = SmtpOutcome::ConnectionRefused;
        let two = [
            host("mx1.example", &[("192.0.2.1:25", refused.clone())]),
            host("mx2.example", &[("192.0.2.2:25", refused.clone())]),
        ];
        let reason = smtp_blocked(&two).expect("blocked");
        assert_eq!(
            reason,
            "every connection to port 25 of 2 addresses failed the same way (the connection \
             was refused): outbound SMTP looks blocked from this machine"
        );
        // One address refusing is an ordinary probe result.
        assert_eq!(smtp_blocked(&two[..1]), None);
        // Two addresses failing differently, or one that answered, is not a block.
        let mixed = [
            host("mx1.example", &[("192.0.2.1:25", refused.clone())]),
            host(
                "mx2.example",
                &[("192.0.2.2:25", SmtpOutcome::ConnectTimeout)],
            ),
        ];
        assert_eq!(smtp_blocked(&mixed), None);
        let answered = [
            host("mx1.example", &[("192.0.2.1:25", refused)]),
            host("mx2.example", &[("192.0.2.2:25", SmtpOutcome::Completed)]),
        ];
        assert_eq!(smtp_blocked(&answered), None);
        let unreachable = |e: &str| SmtpOutcome::ConnectFailed {
            error: e.to_owned(),
        };
        let same_error = [
            host(
                "a.example",
                &[("192.0.2.1:25", unreachable("no route to host"))],
            ),
            host(
                "b.example",
                &[("[2001:db8::1]:25", unreachable("no route to host"))],
            ),
        ];
        assert!(
            smtp_blocked(&same_error)
                .unwrap()
                .contains("(no route to host)")
        );
        let other_error = [
            host(
                "a.example",
                &[("192.0.2.1:25", unreachable("no route to host"))],
            ),
            host(
                "b.example",
                &[("192.0.2.2:25", unreachable("network is unreachable"))],
            ),
        ];
        assert_eq!(smtp_blocked(&other_error), None);
        assert_eq!(smtp_blocked(&[]), None);
    }

    #[test]
    fn not_tested_replaces_every_outcome() {
        let mut hosts = [host(
            "mx1.example",
            &[
                ("192.0.2.1:25", SmtpOutcome::ConnectionRefused),
                ("192.0.2.2:25", SmtpOutcome::ConnectTimeout),
            ],
        )];
        mark_not_tested(&mut hosts, "blocked");
        for s in &hosts[0].sessions {
            assert_eq!(
                s.outcome,
                SmtpOutcome::NotTested {
                    reason: "blocked".to_owned()
                }
            );
        }
    }

    #[test]
    fn policy_changes_are_named() {
        let old = Policy::parse(
            "version: STSv1\nmode: enforce\nmx: a.example\nmx: b.example\nmax_age: 604800\n",
        )
        .unwrap();
        let new = Policy::parse(
            "version: STSv1\nmode: testing\nmx: a.example\nmx: *.c.example\nmax_age: 86400\n",
        )
        .unwrap();
        assert_eq!(
            policy_changes(&old, &new),
            "mode enforce → testing; mx added: *.c.example; mx removed: b.example; max_age \
             604800 → 86400"
        );
        let reordered = Policy::parse(
            "version: STSv1\nmode: enforce\nmx: b.example\nmx: a.example\nmax_age: 604800\n",
        )
        .unwrap();
        assert_eq!(
            policy_changes(&old, &reordered),
            "the order of the mx lines or the extension fields"
        );
    }

    #[test]
    fn durations_read_as_days_or_hours() {
        assert_eq!(days(604_800), "7.0 days");
        assert_eq!(days(3_600), "1.0 hours");
        assert_eq!(days(31_557_600), "365.2 days");
    }
}
