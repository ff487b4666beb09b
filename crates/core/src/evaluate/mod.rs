//! Pure judgement of facts and candidate records: RFC rules applied to what was seen or
//! typed. No I/O.
//!
//! [`evaluate_domain`] judges one domain as a sender would: which policy applies to each MX
//! host (DANE first, then MTA-STS, else none), whether each SMTP session passes it, and what
//! a sender would put in its TLS-RPT report. Input: [`DomainFacts`] (what the observe stage
//! recorded), trust anchors and the time; output: a [`DomainVerdict`]. No clock.
//!
//! - [`verdict`]: the verdict on a domain and on each of its sessions.
//! - [`routing`]: the MX records and the addresses of the MX hosts.
//! - [`session`]: one SMTP session under the policy that applies to its MX host.
//! - [`records`]: the `_mta-sts` and `_smtp._tls` TXT record sets.
//! - [`policy`]: the policy body and which MX hosts its patterns cover.
//! - [`policy_fetch`]: the policy fetch (RFC 8461 §3.3) and its three failure types.
//! - [`rua`]: whether TLS reports can reach each `rua` destination (RFC 8460 §5).

use std::net::IpAddr;

use time::OffsetDateTime;

use crate::dns::{DnssecStatus, Lookup, ResolverProblem, Txt};
use crate::domain::DomainName;
use crate::facts::DomainFacts;
use crate::finding::{Code, Finding, Severity, Subject};
use crate::mtasts::{Mode, select_sts};
use crate::tls::Anchors;
use crate::tlsrpt::PolicyType;
use crate::tlsrpt::record::{Rua, select_tlsrpt};
use policy::{coverage, coverage_findings};
use policy_fetch::{ContentTypeRule, FetchVerdict, is_could_not_tell, judge_fetch};
use records::{RecordKind, RecordOutcome, WhenAbsent, selection_findings, tlsrpt_set_findings};
use routing::{host_findings, routing};
use session::{SessionContext, judge_session};
use verdict::{DomainVerdict, PolicyFailure, Routing, SessionResult, SessionVerdict, StsState};

pub mod policy;
pub mod policy_fetch;
pub mod records;
pub mod routing;
pub mod rua;
pub mod session;
pub mod verdict;

/// Days before expiry that a valid certificate draws a warning, unless configured otherwise.
pub const EXPIRY_WARN_DAYS: i64 = 21;

/// What evaluation needs besides the facts.
#[derive(Debug, Clone, Copy)]
pub struct EvalOptions<'a> {
    /// The trust anchors senders use (Mozilla's by default).
    pub anchors: &'a Anchors,
    /// The time of judgement (certificate validity, DANE-TA chains).
    pub now: OffsetDateTime,
    /// How strictly to judge the policy's Content-Type.
    pub content_type: ContentTypeRule,
    /// Warn when a valid server certificate expires within this many days.
    pub expiry_warn_days: i64,
}

/// Judges one domain.
pub fn evaluate_domain(facts: &DomainFacts, opts: &EvalOptions<'_>) -> DomainVerdict {
    let domain = &facts.domain;
    let subject = Subject::domain(domain);
    if let Some(problem) = &facts.resolver_problem {
        return unjudged(facts, problem, subject);
    }
    let mut findings = Vec::new();
    let mut inconclusive = false;
    let mut dnssec_failures = Vec::new();

    let routing = routing(
        facts,
        &subject,
        &mut findings,
        &mut inconclusive,
        &mut dnssec_failures,
    );
    let sts = sts_state(facts, opts, &subject, &mut findings, &mut inconclusive);
    let usable_rua = tlsrpt(facts, &subject, &mut findings, &mut inconclusive);
    let tlsrpt_rua: Vec<String> = usable_rua.iter().map(|r| r.uri().to_owned()).collect();
    let tlsrpt_destinations =
        rua::judge_destinations(facts, &usable_rua, opts, &subject, &mut findings);
    // A domain that receives no mail needs neither policy: advice to publish one is noise.
    if matches!(routing, Routing::NullMx | Routing::NoSuchDomain) {
        findings.retain(|f| !f.is(Code::StsNone) && !f.is(Code::TlsRptNone));
    }

    if routing == Routing::NullMx
        && (sts.record == Some(RecordOutcome::Valid) || !tlsrpt_rua.is_empty())
    {
        findings.push(
            Finding::new(
                Code::MxNullWithPolicy,
                Severity::Warning,
                subject.clone(),
                "the domain publishes a null MX (it accepts no mail) but also MTA-STS or TLS-RPT \
                 records",
            )
            .with_fix("remove the _mta-sts and _smtp._tls records, or replace the null MX"),
        );
    }

    let mut sessions = Vec::new();
    let mut session_findings = Vec::new();
    if let Some(policy) = sts.active() {
        let names: Vec<DomainName> = facts.hosts.iter().filter_map(|h| h.name.clone()).collect();
        let cov = coverage(&policy.mx, &names);
        // Coverage is judged per session below; here only the patterns covering no MX.
        findings.extend(
            coverage_findings(&policy.mx, &cov, Some(policy.mode), &subject)
                .into_iter()
                .filter(|f| !f.is(Code::StsPolicyMxNotCovered)),
        );
    }
    for host in &facts.hosts {
        host_findings(
            host,
            &subject,
            &mut findings,
            &mut inconclusive,
            &mut dnssec_failures,
        );
        let Some(name) = &host.name else { continue };
        let ctx = SessionContext {
            mx: name,
            tlsa: host.tlsa.as_ref(),
            tlsa_base: host.tlsa_base.as_ref(),
            next_hop_secure: host.implicit || facts.mx.dnssec() == DnssecStatus::Secure,
            sts: &sts,
            domain,
            opts,
        };
        for session in &host.sessions {
            let v = judge_session(&ctx, session, &subject, &mut session_findings);
            if matches!(v.result, SessionResult::Inconclusive { .. }) {
                inconclusive = true;
            }
            sessions.push(v);
        }
    }
    findings.extend(merge_by_address(session_findings));

    findings.extend(no_deliverable_mx(&sts, &sessions, &subject, domain));

    crate::finding::cap_findings(&mut findings, &subject);
    DomainVerdict {
        domain: domain.clone(),
        routing,
        sts,
        tlsrpt_rua,
        tlsrpt_destinations,
        sessions,
        inconclusive,
        findings,
        dnssec_failures,
    }
}

/// In enforce mode, the finding that no MX address passes the policy.
fn no_deliverable_mx(
    sts: &StsState,
    sessions: &[SessionVerdict],
    subject: &Subject,
    domain: &DomainName,
) -> Option<Finding> {
    let policy = sts.active().filter(|p| p.mode == Mode::Enforce)?;
    // Each session as senders that apply MTA-STS see it (also where DANE decides).
    let sts_results: Vec<&SessionResult> = sessions
        .iter()
        .filter_map(|s| match s.policy_type {
            PolicyType::Sts => Some(&s.result),
            _ => s.sts_result.as_ref(),
        })
        .collect();
    let none_passes = !sts_results.is_empty()
        && sts_results
            .iter()
            .all(|r| matches!(r, SessionResult::Failure { .. }));
    none_passes.then(|| {
        Finding::new(
            Code::StsEnforceNoDeliverableMx,
            Severity::Error,
            subject.clone(),
            format!(
                "every MX address fails the policy (mode enforce, mx {}): senders that \
                     apply MTA-STS cannot deliver mail to {domain} at all",
                policy
                    .mx
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
        )
        .with_fix(
            "switch the policy to \"mode: testing\" (and change the id) until the MX \
                 hosts pass, then back to enforce",
        )
    })
}

/// The verdict when the resolver itself is unfit ([`DomainFacts::resolver_problem`]): nothing
/// it answered about the domain is judged, so the only finding is the resolver's, and it
/// makes the domain inconclusive, never failing.
fn unjudged(facts: &DomainFacts, problem: &ResolverProblem, subject: Subject) -> DomainVerdict {
    DomainVerdict {
        domain: facts.domain.clone(),
        routing: Routing::Unknown,
        sts: StsState {
            record: None,
            id: None,
            policy: None,
            failure: None,
            policy_string: Vec::new(),
        },
        tlsrpt_rua: Vec::new(),
        tlsrpt_destinations: Vec::new(),
        sessions: Vec::new(),
        inconclusive: true,
        findings: vec![
            Finding::new(
                Code::DnsResolverUnusable,
                Severity::Warning,
                subject,
                format!(
                    "{problem}; {} was not judged (inconclusive because of the resolver, not \
                     the domain)",
                    facts.domain
                ),
            )
            .with_fix(problem.advice())
            .could_not_test(),
        ],
        dnssec_failures: Vec::new(),
    }
}

/// The words for a bogus answer: the broken link when the diagnosis found it, and the fix
/// that names the zone; else the validator's words and the general fix.
pub(super) fn bogus_words<T>(lookup: &Lookup<T>) -> (String, String, String) {
    match lookup.broken_link() {
        Some(link) => (link.to_string(), link.fix(), link.reason_code().to_owned()),
        None => (
            lookup.failure().unwrap_or_default(),
            "fix the DNSSEC signatures or the DS records of the zone".to_owned(),
            "dnssec-bogus".to_owned(),
        ),
    }
}

/// Reports a failed lookup of one of the domain's own RRsets: "could not tell" (a warning,
/// inconclusive) for SERVFAIL, timeouts and the like; a definite error for a bogus answer,
/// which validating senders cannot use. Returns whether the lookup failed, and the reason
/// code of a bogus answer.
pub(super) fn lookup_failed<T>(
    what: &str,
    (failed_code, bogus_code): (Code, Code),
    lookup: &Lookup<T>,
    subject: &Subject,
    findings: &mut Vec<Finding>,
    inconclusive: &mut bool,
) -> (bool, Option<String>) {
    let Some(why) = lookup.failure() else {
        return (false, None);
    };
    if matches!(lookup, Lookup::Bogus { .. }) {
        let (link, fix, reason) = bogus_words(lookup);
        findings.push(
            Finding::new(
                bogus_code,
                Severity::Error,
                subject.clone(),
                format!(
                    "the {what} fail DNSSEC validation: {link}; validating resolvers answer \
                     SERVFAIL, so senders that validate cannot use them"
                ),
            )
            .with_fix(fix)
            .with_reason_code(reason.clone()),
        );
        return (true, Some(reason));
    }
    *inconclusive = true;
    findings.push(
        Finding::new(
            failed_code,
            Severity::Warning,
            subject.clone(),
            format!("could not tell the {what}: {why}; this is not the same as \"no record\""),
        )
        .with_fix("check that the domain's name servers answer (and try again)")
        .could_not_test(),
    );
    (true, None)
}

fn txt_records(lookup: &Lookup<Txt>) -> Vec<String> {
    lookup
        .records()
        .map(|r| r.iter().map(Txt::joined).collect())
        .unwrap_or_default()
}

fn sts_state(
    facts: &DomainFacts,
    opts: &EvalOptions<'_>,
    subject: &Subject,
    findings: &mut Vec<Finding>,
    inconclusive: &mut bool,
) -> StsState {
    let mut state = StsState {
        record: None,
        id: None,
        policy: None,
        failure: None,
        policy_string: Vec::new(),
    };
    if lookup_failed(
        "_mta-sts TXT records",
        (Code::DnsStsTxtFailed, Code::DnsStsTxtBogus),
        &facts.sts_txt,
        subject,
        findings,
        inconclusive,
    )
    .0
    {
        return state;
    }
    let records = txt_records(&facts.sts_txt);
    let selection = select_sts(&records);
    state.record = Some(RecordOutcome::of(&selection.conclusion));
    let ignored = selection
        .record()
        .map(|r| r.ignored.clone())
        .unwrap_or_default();
    findings.extend(selection_findings(
        RecordKind::MtaSts,
        &selection,
        &ignored,
        subject,
        WhenAbsent::Silent,
    ));
    let Some(record) = selection.record() else {
        if state.record == Some(RecordOutcome::None) {
            findings.push(
                Finding::new(
                    Code::StsNone,
                    Severity::Notice,
                    subject.clone(),
                    "no MTA-STS: senders use TLS only opportunistically, and an attacker on the \
                     path can strip it",
                )
                .with_fix("publish an MTA-STS policy, starting in mode testing"),
            );
        }
        return state;
    };
    state.id = Some(record.id.clone());
    let Some(fetch) = &facts.policy_fetch else {
        return state;
    };
    let judged = judge_fetch(
        &facts.domain,
        fetch,
        opts.anchors,
        opts.now,
        opts.content_type,
    );
    findings.extend(judged.findings);
    state.policy_string = judged.policy_string;
    match judged.verdict {
        FetchVerdict::Policy(p) => state.policy = Some(p),
        FetchVerdict::Failed {
            result_type,
            reason_code,
        } => {
            *inconclusive |= is_could_not_tell(&reason_code);
            state.failure = Some(PolicyFailure {
                result_type,
                reason_code,
            });
        }
    }
    state
}

fn tlsrpt(
    facts: &DomainFacts,
    subject: &Subject,
    findings: &mut Vec<Finding>,
    inconclusive: &mut bool,
) -> Vec<Rua> {
    if lookup_failed(
        "_smtp._tls TXT records",
        (Code::DnsTlsRptTxtFailed, Code::DnsTlsRptTxtBogus),
        &facts.tlsrpt_txt,
        subject,
        findings,
        inconclusive,
    )
    .0
    {
        return Vec::new();
    }
    let selection = select_tlsrpt(&txt_records(&facts.tlsrpt_txt));
    findings.extend(tlsrpt_set_findings(&selection, subject, WhenAbsent::Silent));
    match selection.record() {
        Some(r) => r.usable_rua().cloned().collect(),
        None => {
            if RecordOutcome::of(&selection.conclusion) == RecordOutcome::None {
                findings.push(
                    Finding::new(
                        Code::TlsRptNone,
                        Severity::Notice,
                        subject.clone(),
                        "no TLS-RPT record: senders will not tell you when TLS to your MX hosts \
                         fails",
                    )
                    .with_fix(
                        "publish \"v=TLSRPTv1; rua=mailto:tlsrpt@<domain>\" at _smtp._tls.<domain>",
                    ),
                );
            }
            Vec::new()
        }
    }
}

/// Findings that differ only in the address (the same problem at every address of an MX
/// host) are merged into one naming all addresses.
fn merge_by_address(findings: Vec<Finding>) -> Vec<Finding> {
    let mut out: Vec<(Finding, Vec<IpAddr>)> = Vec::new();
    for f in findings {
        let key_match = |(g, _): &(Finding, Vec<IpAddr>)| {
            g.code == f.code
                && g.subject.mx == f.subject.mx
                && g.severity == f.severity
                && g.message == f.message
                && g.failure_reason_code == f.failure_reason_code
        };
        match out.iter_mut().find(|e| key_match(e)) {
            Some((_, ips)) => ips.extend(f.subject.ip),
            None => {
                let ips = f.subject.ip.into_iter().collect();
                out.push((f, ips));
            }
        }
    }
    out.into_iter()
        .map(|(mut f, ips)| {
            if ips.len() > 1 {
                f.subject = f.subject.at_addresses(ips);
            }
            f
        })
        .collect()
}
