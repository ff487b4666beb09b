//! One SMTP session judged under the policy that applies to its MX host: DANE where the
//! host has a DNSSEC-validated TLSA RRset (RFC 7672; it takes precedence), else MTA-STS in
//! mode enforce or testing (RFC 8461 §4), else none.

use rustls_pki_types::CertificateDer;
use time::Duration;

use super::EvalOptions;
use super::verdict::{SessionFailure, SessionResult, SessionVerdict, StsState};
use crate::dane::{self, DaneFailure, DaneOutcome, DaneVerdict};
use crate::dns::{BrokenLink, Lookup, Tlsa};
use crate::domain::DomainName;
use crate::finding::{Code, Finding, Severity, Subject};
use crate::mtasts::{Mode, Policy};
use crate::smtp::{SmtpFacts, SmtpOutcome};
use crate::tls::{CertVerdict, describe, judge_for_host};
use crate::tlsrpt::{PolicyType, ResultType};

/// What a session is judged with besides its own facts.
pub(super) struct SessionContext<'a> {
    pub(super) mx: &'a DomainName,
    /// The TLSA lookup of the host (asked only when its addresses are DNSSEC-secure).
    pub(super) tlsa: Option<&'a Lookup<Tlsa>>,
    /// The CNAME-expanded name the TLSA records were found at, when not the MX name.
    pub(super) tlsa_base: Option<&'a DomainName>,
    /// The MX RRset was DNSSEC-secure, or there is no MX (implicit): the recipient domain is
    /// then a DANE reference identifier too (RFC 7672 §3.2.3).
    pub(super) next_hop_secure: bool,
    pub(super) sts: &'a StsState,
    pub(super) domain: &'a DomainName,
    pub(super) opts: &'a EvalOptions<'a>,
}

/// Judges one session: the policy that applies, whether it could be tested, and every
/// failure a sender would report; the findings go to `findings`.
pub(super) fn judge_session(
    ctx: &SessionContext<'_>,
    session: &SmtpFacts,
    domain_subject: &Subject,
    findings: &mut Vec<Finding>,
) -> SessionVerdict {
    let ip = session.address.ip();
    let subject = domain_subject.clone().with_mx(ctx.mx).with_ip(ip);
    let chain: Vec<CertificateDer<'_>> = session
        .tls
        .as_ref()
        .map(|t| t.chain.clone())
        .unwrap_or_default();
    // One certificate judgement per session: the policy checks and the verified path share it.
    let cert = judge_for_host(&chain, ctx.mx, ctx.opts.now, ctx.opts.anchors);
    // RFC 7672 §2.2 / RFC 8461 §2: DANE, where it applies, takes precedence over MTA-STS.
    let dane = judge_dane(ctx, &chain);
    let dane_applies = dane
        .as_ref()
        .is_some_and(|d| !matches!(d.outcome, DaneOutcome::NoDane { .. }));
    let mut verdict = SessionVerdict {
        mx: ctx.mx.clone(),
        ip,
        source_ip: session.sending_mta_ip(),
        helo: session.receiving_mx_helo().map(str::to_owned),
        policy_type: if dane_applies {
            PolicyType::Tlsa
        } else if ctx.sts.active().is_some() {
            PolicyType::Sts
        } else {
            PolicyType::NoPolicyFound
        },
        tls_version: session.tls.as_ref().map(|t| t.version.clone()),
        result: SessionResult::Success,
        sts_result: None,
        verified_path: cert.verified_path.clone(),
    };
    if let Some(result) = untested(ctx, session, &subject, findings) {
        verdict.result = result;
        return verdict;
    }

    let primary = primary_consequence(ctx, &verdict, session, dane.as_ref());
    let mut failures = Vec::new();
    let mut report = |failures: &mut Vec<SessionFailure>, consequence: &Consequence, f: Failure| {
        report_failure(findings, failures, &subject, consequence, f);
    };
    if let Some(mut f) = no_tls(session) {
        // No TLS: under DANE (usable records or a failed lookup) and under MTA-STS the session
        // fails; without a policy it is reported too (senders fall back to plaintext).
        if let Some(DaneOutcome::DnssecInvalid { .. }) = dane.as_ref().map(|d| &d.outcome) {
            f.code = Code::DaneDnssecInvalid;
            f.result_type = ResultType::DnssecInvalid;
        }
        report(&mut failures, &primary, f);
    } else if let Some(dane) = dane.as_ref().filter(|_| dane_applies) {
        for f in dane_failures(ctx, &dane.outcome) {
            report(&mut failures, &primary, f);
        }
        // RFC 8461 §2 only forbids a passing MTA-STS result overriding a failing DANE one;
        // senders that apply only MTA-STS still judge the session by the policy.
        if let Some(policy) = ctx.sts.active() {
            let sts = sts_only_consequence(policy.mode, ctx.mx);
            let mut sts_failed = Vec::new();
            for f in sts_failures(policy, ctx.mx, &cert) {
                report(&mut sts_failed, &sts, f);
            }
            verdict.sts_result = Some(result_of(sts_failed));
        }
    } else if let Some(policy) = ctx.sts.active() {
        for f in sts_failures(policy, ctx.mx, &cert) {
            report(&mut failures, &primary, f);
        }
    } else if session.tls.is_some() {
        would_fail_policy(ctx, &cert, &subject, findings);
    }
    if failures.is_empty() {
        expiry_warning(&chain, ctx.mx, ctx.opts, &subject, findings);
    } else {
        verdict.result = result_of(failures);
    }
    verdict
}

/// One failure of a session, before it becomes a finding and a failure-details entry.
struct Failure {
    code: Code,
    result_type: ResultType,
    /// The RFC 8460 failure-reason-code.
    reason: String,
    message: String,
    fix: String,
}

/// What failures mean for delivery under the policy they are reported under.
struct Consequence {
    policy_type: PolicyType,
    severity: Severity,
    /// The end of each message: what senders do.
    tail: String,
}

/// Adds the finding for `f` and its failure-details entry (once per result and reason).
fn report_failure(
    findings: &mut Vec<Finding>,
    failures: &mut Vec<SessionFailure>,
    subject: &Subject,
    consequence: &Consequence,
    f: Failure,
) {
    findings.push(
        Finding::new(
            f.code,
            consequence.severity,
            subject.clone(),
            format!("{}; {}", f.message, consequence.tail),
        )
        .with_fix(f.fix)
        .with_result(consequence.policy_type, f.result_type)
        .with_reason_code(f.reason.clone()),
    );
    let entry = SessionFailure {
        result_type: f.result_type,
        reason_code: f.reason,
    };
    if !failures.contains(&entry) {
        failures.push(entry);
    }
}

fn result_of(failures: Vec<SessionFailure>) -> SessionResult {
    if failures.is_empty() {
        SessionResult::Success
    } else {
        SessionResult::Failure { failures }
    }
}

/// The DANE verdict on the presented chain, when the host's TLSA records were asked for.
fn judge_dane(ctx: &SessionContext<'_>, chain: &[CertificateDer<'_>]) -> Option<DaneVerdict> {
    let lookup = ctx.tlsa?;
    // RFC 7672 §3.2.3 with §2.2.2: the TLSA base domain (the expanded name, when the records
    // were found there) and the MX name as published; the recipient domain only when the MX
    // lookup was secure (or there was no MX), since an insecure MX answer can be forged.
    let mut refs: Vec<DomainName> = ctx.tlsa_base.into_iter().cloned().collect();
    refs.push(ctx.mx.clone());
    if ctx.next_hop_secure && ctx.domain != ctx.mx {
        refs.push(ctx.domain.clone());
    }
    Some(dane::judge(
        &lookup.to_tlsa_answer(),
        chain,
        &refs,
        ctx.opts.now,
    ))
}

/// The result of a session that could not be tested (not probed, a timeout, a 421, a TLSA
/// lookup that timed out), with its finding; `None` when the session can be judged.
fn untested(
    ctx: &SessionContext<'_>,
    session: &SmtpFacts,
    subject: &Subject,
    findings: &mut Vec<Finding>,
) -> Option<SessionResult> {
    if let SmtpOutcome::NotTested { reason } = &session.outcome {
        findings.push(
            Finding::new(
                Code::SmtpNotTested,
                Severity::Notice,
                subject.clone(),
                format!("STARTTLS was not tested: {reason}"),
            )
            .with_fix(
                "run the check where outbound connections to port 25 are allowed to test STARTTLS \
                 and the certificates",
            )
            .could_not_test(),
        );
        return Some(SessionResult::Inconclusive {
            reason: format!("not tested: {reason}"),
        });
    }
    // A TLSA lookup that timed out here says nothing about the domain: could not tell.
    let tlsa_timed_out = matches!(ctx.tlsa, Some(Lookup::Timeout));
    // TLS refused after the 220 to STARTTLS on every attempt is a failure, not "could not
    // tell" (RFC 8460 §4.3.1: a failed negotiation).
    let probe_inconclusive = session.outcome.is_inconclusive() && !session.refused_tls_every_time();
    if !probe_inconclusive && !tlsa_timed_out {
        return None;
    }
    let reason = if tlsa_timed_out {
        format!("the TLSA lookup for _25._tcp.{} timed out", ctx.mx)
    } else {
        inconclusive_reason(&session.outcome)
    };
    findings.push(
        Finding::new(
            Code::SmtpInconclusive,
            Severity::Warning,
            subject.clone(),
            format!("could not test STARTTLS: {reason}"),
        )
        .with_fix(
            "nothing to fix if the server is healthy: try again later or from another address",
        )
        .could_not_test(),
    );
    Some(SessionResult::Inconclusive { reason })
}

/// What a failure means under the policy that applies to the session.
fn primary_consequence(
    ctx: &SessionContext<'_>,
    verdict: &SessionVerdict,
    session: &SmtpFacts,
    dane: Option<&DaneVerdict>,
) -> Consequence {
    let mx = ctx.mx;
    // All TLSA records unusable: TLS is required but not authenticated (RFC 7672 §2.2), so
    // DANE senders still deliver when TLS works.
    let unauthenticated_tls = verdict.policy_type == PolicyType::Tlsa
        && session.tls.is_some()
        && dane.is_some_and(|d| matches!(d.outcome, DaneOutcome::UnusableOnly));
    let (severity, tail) = if unauthenticated_tls {
        (
            Severity::Warning,
            format!("DANE senders still deliver to {mx} over TLS, but without authentication"),
        )
    } else {
        consequence(verdict.policy_type, ctx.sts.active().map(|p| p.mode), mx)
    };
    Consequence {
        policy_type: verdict.policy_type,
        severity,
        tail,
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

/// What an MTA-STS failure means where DANE decides: senders that apply only MTA-STS
/// judge the session by the policy.
fn sts_only_consequence(mode: Mode, mx: &DomainName) -> Consequence {
    let (severity, tail) = match mode {
        Mode::Enforce => (
            Severity::Error,
            format!(
                "senders that apply only MTA-STS (most large providers) will not deliver to {mx}"
            ),
        ),
        _ => (
            Severity::Warning,
            format!(
                "senders that apply only MTA-STS report the failure (mode testing) but                      deliver to {mx}"
            ),
        ),
    };
    Consequence {
        policy_type: PolicyType::Sts,
        severity,
        tail,
    }
}

/// A failure of the session to establish TLS at all: what the last attempt ended with, or
/// TLS refused after STARTTLS on every attempt.
fn no_tls(session: &SmtpFacts) -> Option<Failure> {
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
    Some(Failure {
        code: Code::SmtpTlsRefusedAfterStarttls,
        result_type: ResultType::ValidationFailure,
        reason: "tls-refused-after-starttls".to_owned(),
        message: format!(
            "the server answered STARTTLS with 220 and then {what} instead of a TLS handshake, \
             on all {} attempts ({}): it never accepts TLS",
            session.attempts,
            each.join(", ")
        ),
        fix: "let the server complete the TLS handshake after its 220 reply to STARTTLS (check \
              its certificate and key configuration and the TLS library's log), or stop \
              offering STARTTLS"
            .to_owned(),
    })
}

/// A failure of one attempt to establish TLS at all.
fn tls_failure(outcome: &SmtpOutcome) -> Option<Failure> {
    let (code, result_type, reason, message, fix) = match outcome {
        SmtpOutcome::StarttlsNotOffered => (
            Code::SmtpStarttlsUnavailable,
            ResultType::StarttlsNotSupported,
            "starttls-not-offered".to_owned(),
            "the server does not offer STARTTLS in its EHLO reply".to_owned(),
            "enable STARTTLS on the server (with a certificate for its MX name)",
        ),
        SmtpOutcome::StarttlsRejected { code, text } => (
            Code::SmtpStarttlsUnavailable,
            ResultType::StarttlsNotSupported,
            format!("starttls-rejected-{code}"),
            format!("the server answered STARTTLS with {code} {text}"),
            "fix the server's TLS configuration so that STARTTLS is answered with 220",
        ),
        SmtpOutcome::EhloRejected { code, .. } => (
            Code::SmtpStarttlsUnavailable,
            ResultType::StarttlsNotSupported,
            format!("ehlo-rejected-{code}"),
            format!(
                "the server refused EHLO with {code}; without EHLO there is no STARTTLS \
                 (RFC 3207)"
            ),
            "let the server accept EHLO",
        ),
        SmtpOutcome::TlsHandshakeFailed { alert, error } => (
            Code::SmtpTlsHandshakeFailed,
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
            Code::SmtpProtocolError,
            ResultType::ValidationFailure,
            "smtp-protocol-error".to_owned(),
            format!("the server broke the SMTP protocol during {phase}: {detail}"),
            "check the server (or a middlebox in front of it) for what it sends",
        ),
        SmtpOutcome::Rejected { phase, code, text } => (
            Code::SmtpRejected(*code),
            ResultType::ValidationFailure,
            format!("rejected-{code}"),
            format!("the server answered {code} {text} during {phase}"),
            "let the server accept connections and EHLO from senders",
        ),
        _ => return None,
    };
    Some(Failure {
        code,
        result_type,
        reason,
        message,
        fix: fix.to_owned(),
    })
}

/// The failures of a session under DANE (RFC 7672 §2.2, §3).
fn dane_failures(ctx: &SessionContext<'_>, outcome: &DaneOutcome) -> Vec<Failure> {
    let link = ctx.tlsa.and_then(Lookup::broken_link);
    let (message, fix) = dane_message(outcome, ctx.mx, link);
    outcome
        .failures()
        .into_iter()
        .map(|f| Failure {
            code: dane_code(&f),
            result_type: f.result_type,
            // A bogus TLSA answer whose broken link is known reports that link.
            reason: match (f.result_type, link) {
                (ResultType::DnssecInvalid, Some(link)) => link.reason_code().to_owned(),
                _ => f.reason_code,
            },
            message: message.clone(),
            fix: fix.clone(),
        })
        .collect()
}

fn dane_code(f: &DaneFailure) -> Code {
    match (f.ta_problem, f.result_type) {
        (Some(problem), _) => Code::DaneTa(problem),
        (None, ResultType::DnssecInvalid) => Code::DaneDnssecInvalid,
        (None, ResultType::TlsaInvalid) => Code::DaneTlsaInvalid,
        (None, _) => Code::DaneNoMatch,
    }
}

/// The MTA-STS check of one TLS session (RFC 8461 §4.1): the MX host must match a pattern,
/// and its certificate must be PKIX-valid for the MX name. (§3.4's TLS 1.2 or later is all
/// rustls speaks.)
fn sts_failures(policy: &Policy, mx: &DomainName, cert: &CertVerdict) -> Vec<Failure> {
    let mut out = Vec::new();
    if policy.matching_pattern(mx).is_none() {
        let listed: Vec<String> = policy.mx.iter().map(ToString::to_string).collect();
        out.push(Failure {
            code: Code::StsPolicyMxNotCovered,
            result_type: ResultType::ValidationFailure,
            reason: "mx-not-covered".to_owned(),
            message: format!(
                "MX {mx} is not covered by any mx pattern of the policy ({})",
                listed.join(", ")
            ),
            fix: format!(
                "add \"mx: {mx}\" to the policy (and publish a new id in the _mta-sts TXT record)"
            ),
        });
    }
    for p in &cert.problems {
        out.push(Failure {
            code: Code::certificate(p),
            result_type: p.result_type(),
            reason: p.reason_code().to_owned(),
            message: format!("the certificate of {mx}: {p}"),
            fix: cert_fix(p.reason_code(), mx),
        });
    }
    out
}

/// Without a policy any TLS session counts; still say when the certificate would not pass
/// a policy, since that blocks adopting MTA-STS.
fn would_fail_policy(
    ctx: &SessionContext<'_>,
    cert: &CertVerdict,
    subject: &Subject,
    findings: &mut Vec<Finding>,
) {
    let mx = ctx.mx;
    if let Some(p) = cert.problems.first() {
        findings.push(
            Finding::new(
                Code::SmtpCertWouldFailPolicy,
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
                Code::SmtpCertExpiresSoon,
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
