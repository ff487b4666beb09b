//! One SMTP session judged under the policy that applies to its MX host: DANE where the
//! host has a DNSSEC-validated TLSA RRset (RFC 7672; it takes precedence), else MTA-STS in
//! mode enforce or testing (RFC 8461 §4), else none.

use rustls_pki_types::CertificateDer;
use time::Duration;

use super::EvalOptions;
use super::verdict::{SessionFailure, SessionResult, SessionVerdict, StsState};
use crate::dane::{self, DaneOutcome};
use crate::dns::{BrokenLink, Lookup, Tlsa};
use crate::domain::DomainName;
use crate::finding::{Finding, Severity, Subject};
use crate::mtasts::{Mode, Policy};
use crate::smtp::{SmtpFacts, SmtpOutcome};
use crate::tls::{describe, judge_for_host};
use crate::tlsrpt::{PolicyType, ResultType};

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

pub(super) fn judge_session(
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
