//! Judging the MTA-STS policy fetch (RFC 8461 §3.3) from what the fetcher recorded.
//!
//! The fetcher accepts any certificate and records the chain, so one request tells apart the
//! three policy-level failures of RFC 8460 §4.3.2: `sts-webpki-invalid` (the chain does not
//! validate for `mta-sts.<domain>`), `sts-policy-fetch-error` (no 200 response: DNS,
//! connection, timeout, TLS, redirect, other status, body over the limit) and
//! `sts-policy-invalid` (the body is not a valid policy). Pure: facts, anchors and time in,
//! verdict and findings out.

use rustls_pki_types::CertificateDer;
use time::OffsetDateTime;

use crate::domain::DomainName;
use crate::evaluate::policy::{PolicyCheck, check_policy_body};
use crate::facts::{FetchOutcome, FetchPhase, HttpResponse, PolicyFetchFacts};
use crate::finding::{Code, Finding, Severity, Subject};
use crate::mtasts::{ContentTypeVerdict, MAX_POLICY_BYTES, Policy, judge_content_type};
use crate::tls::{Anchors, judge_for_host};
use crate::tlsrpt::{PolicyType, ResultType};

/// How strictly to judge the Content-Type of the policy response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ContentTypeRule {
    /// A wrong or missing Content-Type is a warning; the body is still used (most senders,
    /// e.g. mox, do not check it).
    #[default]
    Warn,
    /// A wrong or missing Content-Type makes the policy invalid, as some senders
    /// (postfix-mta-sts-resolver) decide: RFC 8461 §3.2 says senders SHOULD validate it.
    Reject,
}

/// What a sender ends up with after the fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchVerdict {
    /// A valid policy.
    Policy(Policy),
    /// No usable policy: the sender delivers as if there were no MTA-STS (RFC 8461 §5) and
    /// reports this result under policy type `sts`.
    Failed {
        /// The RFC 8460 result type.
        result_type: ResultType,
        /// The failure-reason-code.
        reason_code: String,
    },
}

/// The judgement of one policy fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchJudgement {
    /// What a sender ends up with.
    pub verdict: FetchVerdict,
    /// The RFC 8460 `policy-string`: the policy body's lines as served (empty when no body).
    pub policy_string: Vec<String>,
    /// Everything worth saying, failures and warnings alike.
    pub findings: Vec<Finding>,
}

/// Judges a policy fetch for `domain` at time `now` against `anchors`.
pub fn judge_fetch(
    domain: &DomainName,
    facts: &PolicyFetchFacts,
    anchors: &Anchors,
    now: OffsetDateTime,
    content_type_rule: ContentTypeRule,
) -> FetchJudgement {
    let subject = Subject::domain(domain).at(format!("policy fetch {}", facts.url));
    let Ok(host) = DomainName::parse(&domain.prefixed("mta-sts")) else {
        // A domain of 245 octets or more has no policy host name (253-octet limit).
        let reason = "policy-host-name-too-long";
        return FetchJudgement {
            verdict: FetchVerdict::Failed {
                result_type: ResultType::StsPolicyFetchError,
                reason_code: reason.to_owned(),
            },
            policy_string: Vec::new(),
            findings: vec![
                Finding::new(
                    Code::StsFetchFailed,
                    Severity::Error,
                    subject,
                    format!("mta-sts.{domain} is longer than a host name may be"),
                )
                .with_result(PolicyType::Sts, ResultType::StsPolicyFetchError)
                .with_reason_code(reason),
            ],
        };
    };
    let Some(response) = facts.response() else {
        return no_response(facts, &subject, &host);
    };

    // RFC 8461 §3.3: the certificate must be valid for mta-sts.<domain> (DNS-ID), chain to
    // a trusted root and be unexpired. Judged before anything else: a sender whose TLS
    // stack rejects the certificate never sees the response.
    let chain: Vec<CertificateDer<'_>> = response
        .chain
        .iter()
        .map(|der| CertificateDer::from(der.as_slice()))
        .collect();
    let cert = judge_for_host(&chain, &host, now, anchors);
    if let Some(first) = cert.problems.first() {
        let problems: Vec<String> = cert.problems.iter().map(ToString::to_string).collect();
        let finding = Finding::new(
            Code::StsFetchWebpkiInvalid,
            Severity::Error,
            subject,
            format!(
                "the certificate of {host} does not validate: {}. Senders cannot authenticate \
                 the policy and ignore MTA-STS for this domain",
                problems.join("; ")
            ),
        )
        .with_fix(format!(
            "serve a certificate for {host} (a SAN dNSName of exactly that name or *.{domain}) \
             from a publicly trusted CA, with its full chain, and renew it before it expires"
        ))
        .with_result(PolicyType::Sts, ResultType::StsWebpkiInvalid)
        .with_reason_code(first.reason_code());
        return FetchJudgement {
            verdict: FetchVerdict::Failed {
                result_type: ResultType::StsWebpkiInvalid,
                reason_code: first.reason_code().to_owned(),
            },
            policy_string: Vec::new(),
            findings: vec![finding],
        };
    }
    judge_response(domain, response, subject, content_type_rule)
}

fn judge_response(
    domain: &DomainName,
    response: &HttpResponse,
    subject: Subject,
    content_type_rule: ContentTypeRule,
) -> FetchJudgement {
    let fail = |code: Code, message: String, fix: String, reason: String| {
        let finding = Finding::new(code, Severity::Error, subject.clone(), message)
            .with_fix(fix)
            .with_result(PolicyType::Sts, ResultType::StsPolicyFetchError)
            .with_reason_code(reason.clone());
        FetchJudgement {
            verdict: FetchVerdict::Failed {
                result_type: ResultType::StsPolicyFetchError,
                reason_code: reason,
            },
            policy_string: Vec::new(),
            findings: vec![finding],
        }
    };
    let status = response.status;
    if (300..400).contains(&status) {
        // RFC 8461 §3.3: "Senders MUST NOT follow HTTP redirects."
        let to = response.redirect_target();
        return fail(
            Code::StsFetchRedirect,
            format!(
                "the policy URL answers {status} (a redirect{to}); senders must not follow \
                 redirects, so they find no policy"
            ),
            "serve the policy directly at https://mta-sts.<domain>/.well-known/mta-sts.txt \
             with status 200 (no redirect, not even to HTTPS or another path)"
                .replace("<domain>", domain.as_str()),
            format!("http-redirect-{status}"),
        );
    }
    if status != 200 {
        return fail(
            Code::StsFetchHttpStatus,
            format!(
                "the policy URL answers HTTP {status}; only 200 delivers a policy (RFC 8461 §3.3)"
            ),
            format!(
                "serve the policy file at https://mta-sts.{domain}/.well-known/mta-sts.txt with \
                 status 200"
            ),
            format!("bad https response code: {status}"),
        );
    }
    if response.body_truncated {
        return fail(
            Code::StsFetchTooLarge,
            format!(
                "the policy body is larger than the {} KiB senders read; they abort the fetch",
                MAX_POLICY_BYTES / 1024
            ),
            "serve only the policy (version, mode, mx and max_age lines): a few hundred bytes"
                .to_owned(),
            "policy-too-large".to_owned(),
        );
    }

    let mut findings = Vec::new();
    let content_type = judge_content_type(response.content_type.as_deref());
    if let Some(f) = content_type_finding(&content_type, &subject, content_type_rule) {
        let rejects = f.severity == Severity::Error;
        findings.push(f);
        if rejects {
            return FetchJudgement {
                verdict: FetchVerdict::Failed {
                    result_type: ResultType::StsPolicyInvalid,
                    reason_code: "content-type-not-text-plain".to_owned(),
                },
                policy_string: crate::mtasts::policy_string(&response.body),
                findings,
            };
        }
    }

    let PolicyCheck {
        policy,
        findings: body_findings,
        ..
    } = check_policy_body(&response.body, response.body_not_utf8, &subject);
    findings.extend(body_findings);
    let verdict = match policy {
        Some(p) => FetchVerdict::Policy(p),
        None => FetchVerdict::Failed {
            result_type: ResultType::StsPolicyInvalid,
            reason_code: findings
                .iter()
                .find(|f| f.result_type == Some(ResultType::StsPolicyInvalid))
                .and_then(|f| f.failure_reason_code.clone())
                .unwrap_or_else(|| "policy-invalid".to_owned()),
        },
    };
    FetchJudgement {
        verdict,
        policy_string: crate::mtasts::policy_string(&response.body),
        findings,
    }
}

fn content_type_finding(
    verdict: &ContentTypeVerdict,
    subject: &Subject,
    rule: ContentTypeRule,
) -> Option<Finding> {
    let (message, reason) = match verdict {
        ContentTypeVerdict::TextPlain => return None,
        ContentTypeVerdict::Missing => (
            "the policy response has no Content-Type header; RFC 8461 §3.2 asks for text/plain \
             and some senders reject anything else"
                .to_owned(),
            "content-type-missing",
        ),
        other => (
            format!(
                "the policy response's Content-Type is {other}; RFC 8461 §3.2 asks for \
                 text/plain and some senders reject anything else"
            ),
            "content-type-not-text-plain",
        ),
    };
    let mut f = Finding::new(
        Code::StsFetchContentType,
        match rule {
            ContentTypeRule::Warn => Severity::Warning,
            ContentTypeRule::Reject => Severity::Error,
        },
        subject.clone(),
        message,
    )
    .with_fix("serve /.well-known/mta-sts.txt with \"Content-Type: text/plain\"");
    if rule == ContentTypeRule::Reject {
        f = f
            .with_result(PolicyType::Sts, ResultType::StsPolicyInvalid)
            .with_reason_code(reason);
    }
    Some(f)
}

/// No attempt got an HTTP response: DNS, connection, timeout or TLS failure.
fn no_response(facts: &PolicyFetchFacts, subject: &Subject, host: &DomainName) -> FetchJudgement {
    let mut reasons = Vec::new();
    for attempt in &facts.attempts {
        let at = attempt
            .address
            .map(|a| format!("{a}: "))
            .unwrap_or_default();
        reasons.push(match &attempt.outcome {
            FetchOutcome::DnsError {
                error,
                not_found: true,
            } => format!("{host} does not resolve ({error})"),
            FetchOutcome::DnsError { error, .. } => {
                format!("the address lookup of {host} failed ({error})")
            }
            FetchOutcome::ConnectError { error } => format!("{at}connection failed ({error})"),
            FetchOutcome::Timeout { phase } => format!("{at}timed out ({})", phase_name(*phase)),
            FetchOutcome::TlsError { error } => format!("{at}TLS handshake failed ({error})"),
            FetchOutcome::Response(_) => unreachable!("facts.response() found none"),
        });
    }
    let reason_code = match facts.attempts.last().map(|a| &a.outcome) {
        Some(FetchOutcome::DnsError {
            not_found: true, ..
        })
        | None => "policy-host-not-found",
        Some(FetchOutcome::DnsError { .. }) => "policy-host-dns-failed",
        Some(FetchOutcome::ConnectError { .. }) => "connection-failed",
        Some(FetchOutcome::Timeout { .. }) => "timeout",
        Some(FetchOutcome::TlsError { .. }) => "tls-handshake-failed",
        Some(FetchOutcome::Response(_)) => unreachable!("facts.response() found none"),
    };
    let message = if reasons.is_empty() {
        format!("the policy host {host} was not tried")
    } else {
        format!(
            "the policy could not be fetched: {}. Senders deliver without MTA-STS",
            reasons.join("; ")
        )
    };
    // A DNS failure or a timeout on the prober's side may be transient: could not tell.
    let could_not_tell = is_could_not_tell(reason_code);
    let finding = Finding::new(
        Code::StsFetchFailed,
        if could_not_tell {
            Severity::Warning
        } else {
            Severity::Error
        },
        subject.clone(),
        message,
    )
    .with_fix(if could_not_tell {
        format!("check that {host} and its name servers answer (and try again)")
    } else {
        format!(
            "publish A/AAAA records for {host} and serve the policy over HTTPS on port 443 at \
             every address"
        )
    })
    .with_result(PolicyType::Sts, ResultType::StsPolicyFetchError)
    .with_reason_code(reason_code)
    .could_not_test_unless(!could_not_tell);
    FetchJudgement {
        verdict: FetchVerdict::Failed {
            result_type: ResultType::StsPolicyFetchError,
            reason_code: reason_code.to_owned(),
        },
        policy_string: Vec::new(),
        findings: vec![finding],
    }
}

/// Whether a fetch failure's reason code means "could not tell" (a DNS failure or a timeout
/// seen from here), as opposed to a definite failure every sender would meet.
pub fn is_could_not_tell(reason_code: &str) -> bool {
    matches!(reason_code, "policy-host-dns-failed" | "timeout")
}

fn phase_name(p: FetchPhase) -> &'static str {
    match p {
        FetchPhase::Dns => "resolving the host",
        FetchPhase::Connect => "connecting",
        FetchPhase::Tls => "in the TLS handshake",
        FetchPhase::Response => "waiting for the response",
        FetchPhase::Body => "reading the body",
    }
}
