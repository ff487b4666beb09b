//! Judging everything seen for one domain as a sender would: which policy applies to each MX
//! host (DANE first, then MTA-STS, else none), whether each SMTP session passes it, and what
//! a sender would put in its TLS-RPT report.
//!
//! Input: [`DomainFacts`] (what the observe stage recorded), trust anchors and the time.
//! Output: [`DomainVerdict`] — the routing, the MTA-STS state, one [`SessionVerdict`] per
//! (MX host, address) and every finding. Pure: no I/O, no clock.

use std::net::IpAddr;

use rustls_pki_types::CertificateDer;
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::dane::Tlsa;
use crate::dane::{self, DaneOutcome};
use crate::dns::{BrokenLink, DnssecStatus, Lookup, ResolverProblem, Txt};
use crate::domain::DomainName;
use crate::evaluate::policy::coverage;
use crate::evaluate::policy::coverage_findings;
use crate::evaluate::policy_fetch::{
    ContentTypeRule, FetchVerdict, is_could_not_tell, judge_fetch,
};
use crate::evaluate::records::{
    RecordKind, RecordOutcome, WhenAbsent, selection_findings, tlsrpt_set_findings,
};
use crate::facts::{DomainFacts, MxHostFacts};
use crate::finding::{Finding, Severity, Subject};
use crate::mtasts::{Mode, Policy, select_sts};
use crate::smtp::{SmtpFacts, SmtpOutcome};
use crate::tls::{Anchors, describe, judge_for_host};
use crate::tlsrpt::record::select_tlsrpt;
use crate::tlsrpt::{PolicyType, ResultType};

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

/// How mail for the domain is routed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Routing {
    /// MX records name the hosts.
    Mx,
    /// No MX RRset: the domain itself is the mail host (RFC 5321 §5.1).
    ImplicitMx,
    /// A null MX (RFC 7505): the domain accepts no mail.
    NullMx,
    /// The domain does not exist (NXDOMAIN).
    NoSuchDomain,
    /// The MX lookup failed: could not tell.
    Unknown,
}

/// The MTA-STS state a sender ends up with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StsState {
    /// What the `_mta-sts` record set says (`None` when the lookup failed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record: Option<RecordOutcome>,
    /// The policy id from the record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The policy, when fetched and valid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<Policy>,
    /// The policy-level failure (fetch error, invalid policy, bad certificate).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<PolicyFailure>,
    /// The RFC 8460 policy-string: the policy lines as served.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub policy_string: Vec<String>,
}

impl StsState {
    /// The policy when it applies to MX hosts (mode enforce or testing).
    pub fn active(&self) -> Option<&Policy> {
        self.policy.as_ref().filter(|p| p.mode != Mode::None)
    }
}

/// A policy-level failure (RFC 8460 §4.3.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyFailure {
    /// The result type.
    pub result_type: ResultType,
    /// The failure-reason-code.
    pub reason_code: String,
}

/// One failure of a session, as a TLS-RPT failure-details entry would carry it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionFailure {
    /// The result type.
    pub result_type: ResultType,
    /// The failure-reason-code.
    pub reason_code: String,
}

/// How a session fared under the policy that applies to its MX host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum SessionResult {
    /// A policy-compliant TLS session (or, without a policy, any TLS session).
    Success,
    /// No compliant session; every failure listed (they are non-exclusive, RFC 8460 §4.3).
    Failure {
        /// The failures.
        failures: Vec<SessionFailure>,
    },
    /// The probe could not tell (timeout, 421, reset …): neither success nor failure.
    Inconclusive {
        /// Why.
        reason: String,
    },
}

/// The verdict on one (MX host, address).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionVerdict {
    /// The MX host.
    pub mx: DomainName,
    /// The address probed (`receiving-ip`).
    pub ip: IpAddr,
    /// The local address used (`sending-mta-ip`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<IpAddr>,
    /// The name the server announced (`receiving-mx-helo`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub helo: Option<String>,
    /// The policy applied to this host.
    pub policy_type: PolicyType,
    /// The TLS version negotiated, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_version: Option<String>,
    /// The outcome.
    #[serde(flatten)]
    pub result: SessionResult,
    /// When DANE applies and the domain also has an MTA-STS policy in force: the session
    /// judged by that policy too, as senders that apply only MTA-STS do.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sts_result: Option<SessionResult>,
}

/// Everything evaluation concludes about a domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainVerdict {
    /// The domain.
    pub domain: DomainName,
    /// How mail is routed.
    pub routing: Routing,
    /// MTA-STS as senders see it.
    pub sts: StsState,
    /// The usable TLS-RPT destinations, when the domain publishes a valid record.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub tlsrpt_rua: Vec<String>,
    /// One verdict per probed (MX host, address), in MX preference order.
    pub sessions: Vec<SessionVerdict>,
    /// Whether something could not be tested (DNS failures, timeouts, 421 …).
    pub inconclusive: bool,
    /// Every finding.
    pub findings: Vec<Finding>,
    /// DNSSEC failures that block delivery without a session to show for it: a bogus MX
    /// RRset, or MX host addresses that are bogus (nothing could be probed). Validating
    /// senders report them as `dnssec-invalid` under policy type `tlsa` (RFC 7672 §2.1.1,
    /// RFC 8460 §4.3.2.1).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub dnssec_failures: Vec<DnssecFailure>,
}

/// A DNSSEC failure that is not a session (see [`DomainVerdict::dnssec_failures`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnssecFailure {
    /// The RFC 8460 policy-domain: the MX host (the TLSA base domain), or the recipient
    /// domain when its MX RRset itself is bogus.
    pub policy_domain: DomainName,
    /// The MX host (`receiving-mx-hostname`), when the failure is one host's.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub mx: Option<DomainName>,
    /// The failure-reason-code: the broken link's code (e.g. `rrsig-expired`), or
    /// `dnssec-bogus` when the cause is not known.
    pub reason_code: String,
}

impl DomainVerdict {
    /// The most severe finding, if any.
    pub fn worst(&self) -> Option<Severity> {
        crate::finding::worst(&self.findings)
    }

    /// Whether a finding fails at `fail_on` (`--fail-on`).
    pub fn fails(&self, fail_on: Severity) -> bool {
        self.status(fail_on) == Status::Fail
    }

    /// The domain's status at `fail_on`.
    pub fn status(&self, fail_on: Severity) -> Status {
        Status::of(&self.findings, self.inconclusive, fail_on)
    }
}

/// A result at a `--fail-on` threshold. Ordered from best to worst, so that the status of a
/// run is the greatest of its domains'.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Nothing fails, and everything was tested.
    #[default]
    Pass,
    /// Nothing fails, but something could not be tested.
    Inconclusive,
    /// A finding at or above the threshold that is not "could not test"
    /// ([`Finding::fails`]).
    Fail,
}

impl Status {
    /// The status of `findings`, `inconclusive` when something could not be tested: a
    /// failure outranks "could not test" (a domain broken somewhere is broken).
    pub fn of(findings: &[Finding], inconclusive: bool, fail_on: Severity) -> Self {
        if findings.iter().any(|f| f.fails(fail_on)) {
            Self::Fail
        } else if inconclusive {
            Self::Inconclusive
        } else {
            Self::Pass
        }
    }

    /// The lower-case name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Fail => "fail",
            Self::Inconclusive => "inconclusive",
        }
    }
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
    let tlsrpt_rua = tlsrpt(facts, &subject, &mut findings, &mut inconclusive);
    // A domain that receives no mail needs neither policy: advice to publish one is noise.
    if matches!(routing, Routing::NullMx | Routing::NoSuchDomain) {
        findings.retain(|f| f.code != "sts.none" && f.code != "tlsrpt.none");
    }

    if routing == Routing::NullMx
        && (sts.record == Some(RecordOutcome::Valid) || !tlsrpt_rua.is_empty())
    {
        findings.push(
            Finding::new(
                "mx.null-with-policy",
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
                .filter(|f| f.code != "sts.policy.mx-not-covered"),
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

    if let Some(policy) = sts.active().filter(|p| p.mode == Mode::Enforce) {
        // Each session as senders that apply MTA-STS see it (also where DANE decides).
        let sts_results: Vec<&SessionResult> = sessions
            .iter()
            .filter_map(|s| match s.policy_type {
                PolicyType::Sts => Some(&s.result),
                _ => s.sts_result.as_ref(),
            })
            .collect();
        if !sts_results.is_empty()
            && sts_results
                .iter()
                .all(|r| matches!(r, SessionResult::Failure { .. }))
        {
            findings.push(
                Finding::new(
                    "sts.enforce.no-deliverable-mx",
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
                ),
            );
        }
    }

    crate::finding::cap_findings(&mut findings, &subject);
    DomainVerdict {
        domain: domain.clone(),
        routing,
        sts,
        tlsrpt_rua,
        sessions,
        inconclusive,
        findings,
        dnssec_failures,
    }
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
        sessions: Vec::new(),
        inconclusive: true,
        findings: vec![
            Finding::new(
                "dns.resolver.unusable",
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
fn bogus_words<T>(lookup: &Lookup<T>) -> (String, String, String) {
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
fn lookup_failed<T>(
    what: &str,
    (failed_code, bogus_code): (&'static str, &'static str),
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

fn routing(
    facts: &DomainFacts,
    subject: &Subject,
    findings: &mut Vec<Finding>,
    inconclusive: &mut bool,
    dnssec_failures: &mut Vec<DnssecFailure>,
) -> Routing {
    let (failed, bogus) = lookup_failed(
        "MX records",
        ("dns.mx.failed", "dns.mx.bogus"),
        &facts.mx,
        subject,
        findings,
        inconclusive,
    );
    if let Some(reason_code) = bogus {
        // RFC 7672 §2.2.1: DANE senders need a secure MX RRset; a bogus one is a DANE
        // failure for the whole domain.
        if let Some(f) = findings.last_mut() {
            f.result_type = Some(ResultType::DnssecInvalid);
            f.policy_type = Some(PolicyType::Tlsa);
        }
        dnssec_failures.push(DnssecFailure {
            policy_domain: facts.domain.clone(),
            mx: None,
            reason_code,
        });
    }
    if failed {
        return Routing::Unknown;
    }
    match &facts.mx {
        Lookup::NxDomain { .. } => {
            findings.push(
                Finding::new(
                    "mx.nxdomain",
                    Severity::Error,
                    subject.clone(),
                    format!("{} does not exist in DNS (NXDOMAIN)", facts.domain),
                )
                .with_fix("check the spelling, or register and delegate the domain"),
            );
            Routing::NoSuchDomain
        }
        Lookup::NoData { .. } => {
            findings.push(
                Finding::new(
                    "mx.implicit",
                    Severity::Notice,
                    subject.clone(),
                    format!(
                        "{} has no MX records: senders deliver to the domain's own addresses \
                         (implicit MX, RFC 5321 §5.1)",
                        facts.domain
                    ),
                )
                .with_fix(format!(
                    "publish an MX record, or a null MX (\"0 .\") if {} receives no mail",
                    facts.domain
                )),
            );
            Routing::ImplicitMx
        }
        Lookup::Records { records, .. } => {
            if !records.iter().any(|m| m.exchange == ".") {
                return Routing::Mx;
            }
            if records.len() == 1 {
                if !records[0].is_null() {
                    findings.push(
                        Finding::new(
                            "mx.null-preference",
                            Severity::Notice,
                            subject.clone(),
                            format!(
                                "the null MX has preference {}; RFC 7505 §3 specifies 0",
                                records[0].preference
                            ),
                        )
                        .with_fix("publish the null MX as \"0 .\""),
                    );
                }
                findings.push(Finding::new(
                    "mx.null",
                    Severity::Notice,
                    subject.clone(),
                    format!(
                        "{} publishes a null MX (RFC 7505): it accepts no mail, and senders fail \
                         at once",
                        facts.domain
                    ),
                ));
                return Routing::NullMx;
            }
            findings.push(
                Finding::new(
                    "mx.null-mixed",
                    Severity::Error,
                    subject.clone(),
                    "a null MX (\".\") is published beside other MX records; RFC 7505 §3 forbids \
                     it and senders may treat the domain as accepting no mail",
                )
                .with_fix("remove the \"0 .\" MX record, or all the others"),
            );
            Routing::Mx
        }
        _ => Routing::Unknown,
    }
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
        ("dns.sts-txt.failed", "dns.sts-txt.bogus"),
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
                    "sts.none",
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
) -> Vec<String> {
    if lookup_failed(
        "_smtp._tls TXT records",
        ("dns.tlsrpt-txt.failed", "dns.tlsrpt-txt.bogus"),
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
        Some(r) => r.usable_rua().map(|u| u.uri().to_owned()).collect(),
        None => {
            if RecordOutcome::of(&selection.conclusion) == RecordOutcome::None {
                findings.push(
                    Finding::new(
                        "tlsrpt.none",
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

fn host_findings(
    host: &MxHostFacts,
    domain_subject: &Subject,
    findings: &mut Vec<Finding>,
    inconclusive: &mut bool,
    dnssec_failures: &mut Vec<DnssecFailure>,
) {
    let Some(name) = &host.name else {
        findings.push(
            Finding::new(
                "mx.invalid-name",
                Severity::Error,
                domain_subject.clone().at(format!("MX {}", host.exchange)),
                format!(
                    "the MX target {:?} is not a host name (an IP address or malformed name); \
                     senders cannot use it",
                    host.exchange
                ),
            )
            .with_fix("point the MX record at a host name that has A/AAAA records"),
        );
        return;
    };
    let subject = domain_subject.clone().with_mx(name);
    let Some(addrs) = &host.addresses else {
        return;
    };
    let lookups: Vec<&Lookup<IpAddr>> = [&addrs.a, &addrs.aaaa].into_iter().flatten().collect();
    let alias = lookups.iter().find_map(|l| match l {
        Lookup::Records { cname_chain, .. } => cname_chain.last(),
        _ => None,
    });
    if let Some(target) = alias {
        findings.push(
            Finding::new(
                "mx.cname",
                Severity::Warning,
                subject.clone(),
                format!(
                    "MX {name} is an alias (CNAME to {target}); RFC 2181 §10.3 and RFC 5321 \
                     §5.1 require the MX target to be a host name with addresses"
                ),
            )
            .with_fix(format!("point the MX record at {target} directly")),
        );
    }
    // RFC 7672 §2.1.1: a bogus answer is a failure, not a "could not tell": validating
    // senders treat the host as unreachable (and DANE senders report dnssec-invalid).
    if let Some(bogus) = lookups.iter().find(|l| matches!(l, Lookup::Bogus { .. })) {
        let (link, fix, reason) = bogus_words(*bogus);
        findings.push(
            Finding::new(
                "dns.mx-address.bogus",
                Severity::Error,
                subject.clone(),
                format!(
                    "the addresses of MX {name} fail DNSSEC validation: {link}; every \
                     validating sender treats {name} as unreachable and refuses to deliver mail \
                     there"
                ),
            )
            .with_fix(format!(
                "{fix}; until then every validating sender refuses mail to {name}"
            ))
            .with_result(PolicyType::Tlsa, ResultType::DnssecInvalid)
            .with_reason_code(reason.clone()),
        );
        dnssec_failures.push(DnssecFailure {
            policy_domain: name.clone(),
            mx: Some(name.clone()),
            reason_code: reason,
        });
    }
    let not_bogus = |l: &&&Lookup<IpAddr>| !matches!(l, Lookup::Bogus { .. });
    if !addrs.addresses().is_empty() {
        // One family answered, the other failed: the failed one was not probed, and its
        // DNSSEC status is unknown (could not tell). A bogus family is reported above.
        let failed: Vec<String> = lookups
            .iter()
            .filter(not_bogus)
            .filter_map(|l| l.failure())
            .collect();
        if !failed.is_empty() {
            *inconclusive = true;
            findings.push(
                Finding::new(
                    "dns.mx-address.partial",
                    Severity::Warning,
                    subject.clone(),
                    format!(
                        "one address lookup of MX {name} failed ({}); the addresses it would \
                         have given were not probed",
                        failed.join("; ")
                    ),
                )
                .with_fix("check that the MX host's name servers answer A and AAAA queries")
                .could_not_test(),
            );
        }
    }
    if addrs.addresses().is_empty() {
        if lookups.iter().any(|l| matches!(l, Lookup::Bogus { .. })) {
            // Reported above: a definite failure.
        } else if lookups.iter().all(|l| l.is_definite()) {
            findings.push(
                Finding::new(
                    "mx.unresolvable",
                    Severity::Error,
                    subject,
                    format!("MX {name} has no A or AAAA records: senders cannot deliver to it"),
                )
                .with_fix(format!(
                    "publish addresses for {name}, or remove the MX record"
                )),
            );
        } else {
            *inconclusive = true;
            let mut why: Vec<String> = lookups.iter().filter_map(|l| l.failure()).collect();
            why.dedup();
            findings.push(
                Finding::new(
                    "dns.mx-address.failed",
                    Severity::Warning,
                    subject,
                    format!(
                        "could not tell the addresses of MX {name}: {}",
                        why.join("; ")
                    ),
                )
                .with_fix("check that the MX host's name servers answer (and try again)")
                .could_not_test(),
            );
        }
    }
}

/// What a failure means for delivery, in the policy's words.
fn consequence(policy_type: PolicyType, mode: Option<Mode>, mx: &DomainName) -> (Severity, String) {
    match (policy_type, mode) {
        (PolicyType::Tlsa, _) => (
            Severity::Error,
            format!("DANE senders will not deliver to {mx}"),
        ),
        (PolicyType::Sts, Some(Mode::Enforce)) => (
            Severity::Error,
            format!("in enforce mode senders will not deliver to {mx}"),
        ),
        (PolicyType::Sts, _) => (
            Severity::Warning,
            format!(
                "in testing mode senders still deliver to {mx} but report the failure; in \
                 enforce mode they would not deliver"
            ),
        ),
        (PolicyType::NoPolicyFound, _) => (
            Severity::Warning,
            format!("without a policy senders deliver to {mx} anyway, possibly in plaintext"),
        ),
    }
}

/// A failure of the session to establish TLS at all, as a (result type, reason, message,
/// fix): what the last attempt ended with, or TLS refused after STARTTLS on every attempt.
fn session_tls_failure(session: &SmtpFacts) -> Option<(ResultType, String, String, &'static str)> {
    if !session.refused_tls_every_time() {
        return tls_failure(&session.outcome);
    }
    let ended = |outcome: &SmtpOutcome| match outcome {
        SmtpOutcome::ClosedByServer { .. } => "closed".to_owned(),
        SmtpOutcome::ConnectionReset { .. } => "reset".to_owned(),
        SmtpOutcome::TlsHandshakeFailed {
            alert: Some(alert), ..
        } => format!("alert {alert}"),
        other => format!("{other:?}"),
    };
    // One reason for a close and a reset: which of the two a client sees can depend on
    // packet timing (a server that closes with the ClientHello unread sends a reset), and
    // the code must not change from run to run for the same server.
    let what = match &session.outcome {
        SmtpOutcome::ClosedByServer { .. } => "closed the connection",
        SmtpOutcome::ConnectionReset { .. } => "reset the connection",
        // An alert is a handshake failure on any attempt.
        other => return tls_failure(other),
    };
    let each: Vec<String> = session
        .earlier_outcomes
        .iter()
        .chain(std::iter::once(&session.outcome))
        .map(ended)
        .collect();
    Some((
        ResultType::ValidationFailure,
        "tls-refused-after-starttls".to_owned(),
        format!(
            "the server answered STARTTLS with 220 and then {what} instead of a TLS handshake, \
             on all {} attempts ({}): it never accepts TLS",
            session.attempts,
            each.join(", ")
        ),
        "let the server complete the TLS handshake after its 220 reply to STARTTLS (check its \
         certificate and key configuration and the TLS library's log), or stop offering STARTTLS",
    ))
}

/// A failure of one attempt to establish TLS at all, as a (result type, reason, message, fix).
fn tls_failure(outcome: &SmtpOutcome) -> Option<(ResultType, String, String, &'static str)> {
    Some(match outcome {
        SmtpOutcome::StarttlsNotOffered => (
            ResultType::StarttlsNotSupported,
            "starttls-not-offered".to_owned(),
            "the server does not offer STARTTLS in its EHLO reply".to_owned(),
            "enable STARTTLS on the server (with a certificate for its MX name)",
        ),
        SmtpOutcome::StarttlsRejected { code, text } => (
            ResultType::StarttlsNotSupported,
            format!("starttls-rejected-{code}"),
            format!("the server answered STARTTLS with {code} {text}"),
            "fix the server's TLS configuration so that STARTTLS is answered with 220",
        ),
        SmtpOutcome::EhloRejected { code, .. } => (
            ResultType::StarttlsNotSupported,
            format!("ehlo-rejected-{code}"),
            format!(
                "the server refused EHLO with {code}; without EHLO there is no STARTTLS \
                 (RFC 3207)"
            ),
            "let the server accept EHLO",
        ),
        SmtpOutcome::TlsHandshakeFailed { alert, error } => (
            ResultType::ValidationFailure,
            "tls-handshake-failed".to_owned(),
            match alert {
                Some(a) => format!("the TLS handshake failed: the server sent alert {a}"),
                None => format!("the TLS handshake failed: {error}"),
            },
            "offer TLS 1.2 or 1.3 with current cipher suites and a certificate the server can \
             sign with",
        ),
        SmtpOutcome::ProtocolError { phase, detail } => (
            ResultType::ValidationFailure,
            "smtp-protocol-error".to_owned(),
            format!("the server broke the SMTP protocol during {phase}: {detail}"),
            "check the server (or a middlebox in front of it) for what it sends",
        ),
        SmtpOutcome::Rejected { phase, code, text } => (
            ResultType::ValidationFailure,
            format!("rejected-{code}"),
            format!("the server answered {code} {text} during {phase}"),
            "let the server accept connections and EHLO from senders",
        ),
        _ => return None,
    })
}

/// What a session is judged with besides its own facts.
struct SessionContext<'a> {
    mx: &'a DomainName,
    /// The TLSA lookup of the host (asked only when its addresses are DNSSEC-secure).
    tlsa: Option<&'a Lookup<Tlsa>>,
    /// The CNAME-expanded name the TLSA records were found at, when not the MX name.
    tlsa_base: Option<&'a DomainName>,
    /// The MX RRset was DNSSEC-secure, or there is no MX (implicit): the recipient domain is
    /// then a DANE reference identifier too (RFC 7672 §3.2.3).
    next_hop_secure: bool,
    sts: &'a StsState,
    domain: &'a DomainName,
    opts: &'a EvalOptions<'a>,
}

/// The MTA-STS check of one TLS session (RFC 8461 §4.1): the MX host must match a pattern,
/// and its certificate must be PKIX-valid for the MX name. (§3.4's TLS 1.2 or later is all
/// rustls speaks.) Each failure as (result type, reason, message, fix).
fn sts_failures(
    policy: &Policy,
    mx: &DomainName,
    chain: &[CertificateDer<'_>],
    opts: &EvalOptions<'_>,
) -> Vec<(ResultType, String, String, String)> {
    let mut out = Vec::new();
    if policy.matching_pattern(mx).is_none() {
        let listed: Vec<String> = policy.mx.iter().map(ToString::to_string).collect();
        out.push((
            ResultType::ValidationFailure,
            "mx-not-covered".to_owned(),
            format!(
                "MX {mx} is not covered by any mx pattern of the policy ({})",
                listed.join(", ")
            ),
            format!(
                "add \"mx: {mx}\" to the policy (and publish a new id in the _mta-sts TXT record)"
            ),
        ));
    }
    let cert = judge_for_host(chain, mx, opts.now, opts.anchors);
    for p in &cert.problems {
        out.push((
            p.result_type(),
            p.reason_code().to_owned(),
            format!("the certificate of {mx}: {p}"),
            cert_fix(p.reason_code(), mx),
        ));
    }
    out
}

fn judge_session(
    ctx: &SessionContext<'_>,
    session: &SmtpFacts,
    domain_subject: &Subject,
    findings: &mut Vec<Finding>,
) -> SessionVerdict {
    let SessionContext {
        mx,
        sts,
        opts,
        domain,
        ..
    } = *ctx;
    let ip = session.address.ip();
    let subject = domain_subject.clone().with_mx(mx).with_ip(ip);
    let chain: Vec<CertificateDer<'_>> = session
        .tls
        .as_ref()
        .map(|t| t.chain.clone())
        .unwrap_or_default();
    let mut verdict = SessionVerdict {
        mx: mx.clone(),
        ip,
        source_ip: session.sending_mta_ip(),
        helo: session.receiving_mx_helo().map(str::to_owned),
        policy_type: PolicyType::NoPolicyFound,
        tls_version: session.tls.as_ref().map(|t| t.version.clone()),
        result: SessionResult::Success,
        sts_result: None,
    };

    // RFC 7672 §2.2 / RFC 8461 §2: DANE, where it applies, takes precedence over MTA-STS.
    let dane = ctx.tlsa.map(|lookup| {
        // RFC 7672 §3.2.3: the TLSA base domain; the recipient domain only when the MX
        // lookup was secure (or there was no MX), since an insecure MX answer can be forged.
        // RFC 7672 §3.2.3 with §2.2.2: the TLSA base domain (the expanded name, when the
        // records were found there) and the MX name as published.
        let mut refs: Vec<DomainName> = ctx.tlsa_base.into_iter().cloned().collect();
        refs.push(mx.clone());
        if ctx.next_hop_secure && domain != mx {
            refs.push(domain.clone());
        }
        dane::judge(&lookup.to_tlsa_answer(), &chain, &refs, opts.now)
    });
    let dane_applies = dane
        .as_ref()
        .is_some_and(|d| !matches!(d.outcome, DaneOutcome::NoDane { .. }));
    verdict.policy_type = if dane_applies {
        PolicyType::Tlsa
    } else if sts.active().is_some() {
        PolicyType::Sts
    } else {
        PolicyType::NoPolicyFound
    };

    // A TLSA lookup that timed out here says nothing about the domain: could not tell.
    let tlsa_timed_out = matches!(ctx.tlsa, Some(Lookup::Timeout));
    if let SmtpOutcome::NotTested { reason } = &session.outcome {
        findings.push(
            Finding::new(
                "smtp.not-tested",
                Severity::Notice,
                subject,
                format!("STARTTLS was not tested: {reason}"),
            )
            .with_fix(
                "run the check where outbound connections to port 25 are allowed to test STARTTLS \
                 and the certificates",
            )
            .could_not_test(),
        );
        verdict.result = SessionResult::Inconclusive {
            reason: format!("not tested: {reason}"),
        };
        return verdict;
    }
    // TLS refused after the 220 to STARTTLS on every attempt is a failure, not "could not
    // tell" (RFC 8460 §4.3.1: a failed negotiation).
    if (session.outcome.is_inconclusive() && !session.refused_tls_every_time()) || tlsa_timed_out {
        let reason = if tlsa_timed_out {
            format!("the TLSA lookup for _25._tcp.{mx} timed out")
        } else {
            inconclusive_reason(&session.outcome)
        };
        findings.push(
            Finding::new(
                "smtp.inconclusive",
                Severity::Warning,
                subject,
                format!("could not test STARTTLS: {reason}"),
            )
            .with_fix(
                "nothing to fix if the server is healthy: try again later or from another address",
            )
            .could_not_test(),
        );
        verdict.result = SessionResult::Inconclusive { reason };
        return verdict;
    }

    let mode = sts.active().map(|p| p.mode);
    // All TLSA records unusable: TLS is required but not authenticated (RFC 7672 §2.2), so
    // DANE senders still deliver when TLS works.
    let unauthenticated_tls = dane_applies
        && session.tls.is_some()
        && dane
            .as_ref()
            .is_some_and(|d| matches!(d.outcome, DaneOutcome::UnusableOnly));
    let (severity, tail) = if unauthenticated_tls {
        (
            Severity::Warning,
            format!("DANE senders still deliver to {mx} over TLS, but without authentication"),
        )
    } else {
        consequence(verdict.policy_type, mode, mx)
    };
    let mut failures: Vec<SessionFailure> = Vec::new();
    let push = |findings: &mut Vec<Finding>,
                failures: &mut Vec<SessionFailure>,
                (policy_type, severity, tail): (PolicyType, Severity, &str),
                (rt, reason, message, fix): (ResultType, String, String, String)| {
        findings.push(
            Finding::new(
                session_code(rt, &reason),
                severity,
                subject.clone(),
                format!("{message}; {tail}"),
            )
            .with_fix(fix)
            .with_result(policy_type, rt)
            .with_reason_code(reason.clone()),
        );
        let f = SessionFailure {
            result_type: rt,
            reason_code: reason,
        };
        if !failures.contains(&f) {
            failures.push(f);
        }
    };
    let primary = (verdict.policy_type, severity, tail.as_str());

    if let Some((rt, reason, message, fix)) = session_tls_failure(session) {
        // No TLS: under DANE (usable records or a failed lookup) and under MTA-STS the session
        // fails; without a policy it is reported too (senders fall back to plaintext).
        let rt = match dane.as_ref().map(|d| &d.outcome) {
            Some(DaneOutcome::DnssecInvalid { .. }) => ResultType::DnssecInvalid,
            _ => rt,
        };
        push(
            findings,
            &mut failures,
            primary,
            (rt, reason, message, fix.to_owned()),
        );
    } else if dane_applies {
        if let Some(outcome) = dane.as_ref().map(|d| &d.outcome) {
            let link = ctx.tlsa.and_then(Lookup::broken_link);
            for f in outcome.failures() {
                let (message, fix) = dane_message(outcome, mx, link);
                // A bogus TLSA answer whose broken link is known reports that link.
                let reason = match (f.result_type, link) {
                    (ResultType::DnssecInvalid, Some(link)) => link.reason_code().to_owned(),
                    _ => f.reason_code,
                };
                push(
                    findings,
                    &mut failures,
                    primary,
                    (f.result_type, reason, message, fix),
                );
            }
        }
        // RFC 8461 §2 only forbids a passing MTA-STS result overriding a failing DANE one;
        // senders that apply only MTA-STS still judge the session by the policy.
        if let Some(policy) = sts.active() {
            let sts_tail = match policy.mode {
                Mode::Enforce => format!(
                    "senders that apply only MTA-STS (most large providers) will not deliver to                      {mx}"
                ),
                _ => format!(
                    "senders that apply only MTA-STS report the failure (mode testing) but                      deliver to {mx}"
                ),
            };
            let sts_severity = if policy.mode == Mode::Enforce {
                Severity::Error
            } else {
                Severity::Warning
            };
            let mut sts_fails = Vec::new();
            for f in sts_failures(policy, mx, &chain, opts) {
                push(
                    findings,
                    &mut sts_fails,
                    (PolicyType::Sts, sts_severity, &sts_tail),
                    f,
                );
            }
            verdict.sts_result = Some(if sts_fails.is_empty() {
                SessionResult::Success
            } else {
                SessionResult::Failure {
                    failures: sts_fails,
                }
            });
        }
    } else if let Some(policy) = sts.active() {
        for f in sts_failures(policy, mx, &chain, opts) {
            push(findings, &mut failures, primary, f);
        }
    } else if session.tls.is_some() {
        // No policy: any TLS session counts; still say when the certificate would not pass
        // a policy, since that blocks adopting MTA-STS.
        let cert = judge_for_host(&chain, mx, opts.now, opts.anchors);
        if let Some(p) = cert.problems.first() {
            findings.push(
                Finding::new(
                    "smtp.cert.would-fail-policy",
                    Severity::Notice,
                    subject.clone(),
                    format!(
                        "the certificate of {mx} would fail an MTA-STS policy: {p} (no policy \
                         applies today, so senders accept it)"
                    ),
                )
                .with_fix(cert_fix(p.reason_code(), mx)),
            );
        }
    }
    if failures.is_empty() {
        expiry_warning(&chain, mx, opts, &subject, findings);
    } else {
        verdict.result = SessionResult::Failure { failures };
    }
    verdict
}

/// The finding code for a session failure.
fn session_code(rt: ResultType, reason: &str) -> String {
    if reason.starts_with("dane-") {
        return format!("dane.{reason}");
    }
    match rt {
        ResultType::StarttlsNotSupported => "smtp.starttls.unavailable".to_owned(),
        ResultType::CertificateExpired
        | ResultType::CertificateHostMismatch
        | ResultType::CertificateNotTrusted => format!("smtp.cert.{reason}"),
        ResultType::TlsaInvalid | ResultType::DnssecInvalid => format!("dane.{}", rt.as_str()),
        _ if reason == "mx-not-covered" => "sts.policy.mx-not-covered".to_owned(),
        _ => format!("smtp.{reason}"),
    }
}

fn cert_fix(reason_code: &str, mx: &DomainName) -> String {
    match reason_code {
        "leaf-expired" | "intermediate-expired" => {
            format!("renew the certificate of {mx} (and automate renewal)")
        }
        "name-mismatch" => {
            format!("serve a certificate whose SAN lists {mx} (DNS-ID, not only CN)")
        }
        "unknown-issuer" => {
            "send the full chain (leaf and intermediates), from a publicly trusted CA".to_owned()
        }
        "self-signed" | "untrusted-root" => {
            format!("use a certificate for {mx} from a publicly trusted CA (e.g. ACME)")
        }
        _ => format!("serve a valid certificate for {mx} from a publicly trusted CA"),
    }
}

fn dane_message(
    outcome: &DaneOutcome,
    mx: &DomainName,
    link: Option<&BrokenLink>,
) -> (String, String) {
    match outcome {
        DaneOutcome::DnssecInvalid { status, detail } => (
            format!(
                "the TLSA lookup for _25._tcp.{mx} failed DNSSEC ({status:?}{})",
                detail
                    .as_deref()
                    .map(|d| format!(": {d}"))
                    .unwrap_or_default()
            ),
            match link {
                Some(link) => format!(
                    "{}; until then every DANE sender treats {mx} as unreachable",
                    link.fix()
                ),
                None => "fix the zone's DNSSEC (signatures, DS records) so that the TLSA \
                         answer validates"
                    .to_owned(),
            },
        ),
        DaneOutcome::UnusableOnly => (
            format!(
                "the TLSA records of {mx} are all unusable for SMTP (only DANE-TA 2 and DANE-EE 3 \
                 count, RFC 7672 §3.1.3); TLS is still required but not authenticated"
            ),
            "publish a \"3 1 1 <SHA-256 of the server key>\" record".to_owned(),
        ),
        DaneOutcome::NoMatch => (
            format!("no TLSA record of {mx} matches the certificate chain the server presents"),
            "publish a TLSA record for the current key before rolling it over (\"3 1 1\" of the \
             new key beside the old)"
                .to_owned(),
        ),
        DaneOutcome::TaChainInvalid { problems, .. } => {
            let list: Vec<String> = problems.iter().map(ToString::to_string).collect();
            (
                format!(
                    "a DANE-TA record matches, but the server certificate does not validate under \
                     it: {}",
                    list.join("; ")
                ),
                format!(
                    "serve a certificate for {mx} issued under the TLSA trust anchor, with the \
                     full chain"
                ),
            )
        }
        DaneOutcome::NoDane { .. } | DaneOutcome::Authenticated { .. } => {
            (String::new(), String::new())
        }
    }
}

fn inconclusive_reason(outcome: &SmtpOutcome) -> String {
    match outcome {
        SmtpOutcome::ConnectionRefused => "the connection was refused".to_owned(),
        SmtpOutcome::ConnectTimeout => "the TCP connection timed out".to_owned(),
        SmtpOutcome::ConnectFailed { error } => format!("the connection failed ({error})"),
        SmtpOutcome::Timeout { phase } => format!("no reply in time while waiting for {phase}"),
        SmtpOutcome::ClosedByServer { phase } => {
            format!("the server closed the connection during {phase}")
        }
        SmtpOutcome::ConnectionReset { phase } => {
            format!("the connection was reset during {phase}")
        }
        SmtpOutcome::IoError { phase, error } => format!("socket error during {phase}: {error}"),
        SmtpOutcome::ServiceUnavailable421 { phase, text } => {
            format!("the server answered 421 during {phase} (busy or rate limiting): {text}")
        }
        SmtpOutcome::DeadlineExceeded { phase } => {
            format!("the probe's deadline passed during {phase}")
        }
        SmtpOutcome::Rejected { phase, code, text } => {
            format!("temporary refusal {code} during {phase}: {text}")
        }
        other => format!("{other:?}"),
    }
}

/// Warns when a certificate that passes today expires soon.
fn expiry_warning(
    chain: &[CertificateDer<'_>],
    mx: &DomainName,
    opts: &EvalOptions<'_>,
    subject: &Subject,
    findings: &mut Vec<Finding>,
) {
    let Some(leaf) = chain.first().and_then(|c| describe(c.as_ref()).ok()) else {
        return;
    };
    let left = leaf.not_after - opts.now;
    if left > Duration::ZERO && left <= Duration::days(opts.expiry_warn_days) {
        findings.push(
            Finding::new(
                "smtp.cert.expires-soon",
                Severity::Warning,
                subject.clone(),
                format!(
                    "the certificate of {mx} expires in {} days ({})",
                    left.whole_days(),
                    leaf.not_after.date()
                ),
            )
            .with_fix(format!("renew the certificate of {mx} now")),
        );
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
                f.subject.ip = None;
                let list: Vec<String> = ips.iter().map(ToString::to_string).collect();
                f.subject.location = Some(format!("addresses {}", list.join(", ")));
            }
            f
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(severity: Severity) -> Finding {
        let d = DomainName::parse("example.com").unwrap();
        Finding::new("t.test", severity, Subject::domain(&d), "m")
    }

    #[test]
    fn status_fail_beats_inconclusive_beats_pass() {
        let warn = finding(Severity::Warning);
        let err = finding(Severity::Error);
        let untested = finding(Severity::Error).could_not_test();
        let cases: &[(&[&Finding], bool, Severity, Status)] = &[
            (&[], false, Severity::Error, Status::Pass),
            (&[&warn], false, Severity::Error, Status::Pass),
            (&[&warn], false, Severity::Warning, Status::Fail),
            (&[&warn], true, Severity::Error, Status::Inconclusive),
            (&[&err], true, Severity::Error, Status::Fail),
            // A could-not-test finding never fails, whatever its severity.
            (&[&untested], false, Severity::Notice, Status::Pass),
            (&[&untested], true, Severity::Notice, Status::Inconclusive),
        ];
        for (findings, inconclusive, fail_on, want) in cases {
            let findings: Vec<Finding> = findings.iter().map(|f| (*f).clone()).collect();
            let got = Status::of(&findings, *inconclusive, *fail_on);
            assert_eq!(got, *want, "{findings:?} {inconclusive} {fail_on}");
        }
        assert!(Status::Pass < Status::Inconclusive && Status::Inconclusive < Status::Fail);
        assert_eq!(
            serde_json::to_string(&Status::Inconclusive).unwrap(),
            "\"inconclusive\""
        );
    }
}
