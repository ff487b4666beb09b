//! Findings about an MTA-STS policy body (RFC 8461 §3.2) and about which MX hosts its `mx`
//! patterns cover (§4.1).
//!
//! Shared by `mxprobe lint` (a candidate policy file) and the policy-fetch judgement (a
//! served policy), so a policy gets the same findings wherever it comes from. Pure.

use serde::Serialize;

use crate::domain::DomainName;
use crate::finding::{Finding, Severity, Subject};
use crate::mtasts::{Mode, MxPattern, Policy, PolicyError, PolicyNote, parse_policy};
use crate::tlsrpt::{PolicyType, ResultType};

/// A `max_age` below this many seconds makes the policy expire before a day is out; RFC 8461
/// §3.2 recommends "weeks or greater".
pub const SHORT_MAX_AGE: u32 = 86_400;

/// The result of checking a policy body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyCheck {
    /// The policy when the body is valid.
    pub policy: Option<Policy>,
    /// The mx patterns understood, even from an invalid body (for coverage hints).
    pub patterns: Vec<MxPattern>,
    /// Every finding about the body.
    pub findings: Vec<Finding>,
}

/// Checks a policy body. `not_utf8` says the bytes were not UTF-8 (the caller decoded them
/// lossily); `subject` names the domain and where the body came from.
pub fn check_policy_body(body: &str, not_utf8: bool, subject: &Subject) -> PolicyCheck {
    let parsed = parse_policy(body);
    let mut findings = Vec::new();
    if not_utf8 {
        findings.push(invalid(
            subject.clone(),
            "not-utf8",
            "the policy is not valid UTF-8 text; RFC 8461 §3.2 policies are plain ASCII lines"
                .to_owned(),
            "save the policy as plain ASCII text".to_owned(),
        ));
    }
    for error in &parsed.errors {
        let at = match error.line() {
            Some(line) => subject.clone().at(format!("policy line {line}")),
            None => subject.clone().at("policy"),
        };
        let (code, fix) = error_code_and_fix(error);
        findings.push(invalid(at, code, error.to_string(), fix));
    }
    for note in &parsed.notes {
        findings.push(note_finding(note, subject));
    }
    if let Some(policy) = &parsed.policy {
        findings.extend(policy_advice(policy, subject));
    }
    PolicyCheck {
        patterns: parsed.partial.mx.clone(),
        policy: parsed.policy,
        findings,
    }
}

fn invalid(subject: Subject, kind: &'static str, message: String, fix: String) -> Finding {
    Finding::new(
        format!("sts.policy.{kind}"),
        Severity::Error,
        subject,
        format!("{message}; senders treat the policy as invalid and ignore MTA-STS"),
    )
    .with_fix(fix)
    .with_result(PolicyType::Sts, ResultType::StsPolicyInvalid)
    .with_reason_code(kind)
}

fn error_code_and_fix(error: &PolicyError) -> (&'static str, String) {
    match error {
        PolicyError::EmptyBody => (
            "empty",
            "serve a policy: version, mode, mx and max_age lines".to_owned(),
        ),
        PolicyError::MissingVersion => (
            "missing-version",
            "add \"version: STSv1\" as the first line".to_owned(),
        ),
        PolicyError::MissingMode => (
            "missing-mode",
            "add \"mode: testing\" (or enforce, once reports are clean)".to_owned(),
        ),
        PolicyError::MissingMaxAge => (
            "missing-max-age",
            "add \"max_age: 604800\" (one week; RFC 8461 recommends weeks or more)".to_owned(),
        ),
        PolicyError::NoMx { .. } => (
            "no-mx",
            "add one \"mx:\" line per MX host (or a \"*.\" pattern covering them)".to_owned(),
        ),
        PolicyError::BadVersion { .. } => (
            "bad-version",
            "write exactly \"version: STSv1\" (case-sensitive)".to_owned(),
        ),
        PolicyError::BadMode { .. } => (
            "bad-mode",
            "write \"mode: enforce\", \"mode: testing\" or \"mode: none\" in lower case".to_owned(),
        ),
        PolicyError::BadMaxAge { .. } => (
            "bad-max-age",
            "write max_age as plain seconds, e.g. \"max_age: 604800\"".to_owned(),
        ),
        PolicyError::MaxAgeTooLarge { .. } => (
            "max-age-too-large",
            "use at most 31557600 (one year)".to_owned(),
        ),
        PolicyError::BadMx { .. } => (
            "bad-mx",
            "write each mx as a host name in A-label form, optionally starting with \"*.\" \
             (e.g. \"mx: mail.example.com\" or \"mx: *.example.net\")"
                .to_owned(),
        ),
        PolicyError::NoColon { .. } => (
            "not-key-value",
            "every line is \"key: value\"; remove or fix the line".to_owned(),
        ),
        PolicyError::WhitespaceBeforeColon { .. } => (
            "space-before-colon",
            "remove the whitespace between the key and ':'".to_owned(),
        ),
        PolicyError::LeadingWhitespace { .. } => (
            "leading-whitespace",
            "remove the whitespace at the start of the line".to_owned(),
        ),
        PolicyError::BadKey { .. } => (
            "bad-key",
            "use only the keys version, mode, mx and max_age".to_owned(),
        ),
        PolicyError::EmptyExtensionValue { .. } => (
            "empty-value",
            "give the key a value or remove the line".to_owned(),
        ),
        PolicyError::BadExtensionValue { .. } => (
            "bad-value",
            "remove control characters from the value".to_owned(),
        ),
        PolicyError::NotALineEnd { .. } => {
            ("bad-line-end", "end every line with LF or CRLF".to_owned())
        }
        PolicyError::BlankLine { .. } => ("blank-line", "remove the empty line".to_owned()),
    }
}

fn note_finding(note: &PolicyNote, subject: &Subject) -> Finding {
    match note {
        PolicyNote::DuplicateKey {
            line, key, value, ..
        } => Finding::new(
            "sts.policy.duplicate-key",
            Severity::Warning,
            subject.clone().at(format!("policy line {line}")),
            note.to_string(),
        )
        .with_fix(format!("remove the line \"{key}: {value}\"")),
        PolicyNote::DuplicateMx { line, .. } => Finding::new(
            "sts.policy.duplicate-mx",
            Severity::Notice,
            subject.clone().at(format!("policy line {line}")),
            note.to_string(),
        )
        .with_fix("remove the repeated line"),
        PolicyNote::UnknownKey {
            line, similar_to, ..
        } => Finding::new(
            "sts.policy.unknown-key",
            if similar_to.is_some() {
                Severity::Warning
            } else {
                Severity::Notice
            },
            subject.clone().at(format!("policy line {line}")),
            note.to_string(),
        )
        .with_fix(match similar_to {
            Some(known) => format!("write the key as {known:?}"),
            None => "remove the line unless an extension needs it".to_owned(),
        }),
    }
}

/// Advice on a valid policy: short max_age, testing and none modes.
fn policy_advice(policy: &Policy, subject: &Subject) -> Vec<Finding> {
    let mut out = Vec::new();
    let at = subject.clone().at("policy");
    if policy.mode != Mode::None && policy.max_age < SHORT_MAX_AGE {
        out.push(
            Finding::new(
                "sts.policy.max-age-short",
                Severity::Warning,
                at.clone(),
                format!(
                    "max_age is {} seconds: senders forget the policy within a day, so an attacker \
                     who blocks the policy fetch can strip TLS soon after",
                    policy.max_age
                ),
            )
            .with_fix("use at least 604800 (one week); RFC 8461 §3.2 recommends weeks or more"),
        );
    }
    match policy.mode {
        Mode::Testing => out.push(
            Finding::new(
                "sts.policy.mode-testing",
                Severity::Notice,
                at,
                "mode is testing: senders deliver even when TLS fails and only report the failure",
            )
            .with_fix("switch to \"mode: enforce\" once TLS-RPT reports show no failures"),
        ),
        Mode::None => out.push(
            Finding::new(
                "sts.policy.mode-none",
                Severity::Notice,
                at,
                "mode is none: senders treat the domain as having no MTA-STS policy",
            )
            .with_fix("keep mode none only while withdrawing MTA-STS"),
        ),
        Mode::Enforce => {}
    }
    out
}

/// Which pattern covers one MX host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Coverage {
    /// The MX host.
    pub mx: DomainName,
    /// The first pattern that matches it, or none.
    pub covered_by: Option<MxPattern>,
}

/// RFC 8461 §4.1: which pattern covers each MX host.
pub fn coverage(patterns: &[MxPattern], mx_hosts: &[DomainName]) -> Vec<Coverage> {
    mx_hosts
        .iter()
        .map(|mx| Coverage {
            mx: mx.clone(),
            covered_by: patterns.iter().find(|p| p.matches(mx)).cloned(),
        })
        .collect()
}

/// Findings for MX hosts no pattern covers, and for patterns that cover no MX host.
/// `mode` is the policy's mode (`None` when the policy is invalid: the coverage is then a
/// hint for after the fix).
pub fn coverage_findings(
    patterns: &[MxPattern],
    coverage: &[Coverage],
    mode: Option<Mode>,
    subject: &Subject,
) -> Vec<Finding> {
    let mut out = Vec::new();
    if mode == Some(Mode::None) {
        return out;
    }
    let listed: Vec<String> = patterns.iter().map(ToString::to_string).collect();
    let listed = if listed.is_empty() {
        "none".to_owned()
    } else {
        listed.join(", ")
    };
    for c in coverage.iter().filter(|c| c.covered_by.is_none()) {
        let consequence = match mode {
            Some(Mode::Enforce) => format!("in enforce mode senders will not deliver to {}", c.mx),
            Some(Mode::Testing) => format!(
                "in testing mode senders still deliver to {} but report every session as a failure",
                c.mx
            ),
            _ => "once the policy is valid, senders will treat it as a failure".to_owned(),
        };
        let severity = match mode {
            Some(Mode::Testing) => Severity::Warning,
            _ => Severity::Error,
        };
        out.push(
            Finding::new(
                "sts.policy.mx-not-covered",
                severity,
                subject.clone().with_mx(&c.mx),
                format!(
                    "MX {} is not covered by any mx pattern of the policy ({listed}); {consequence}",
                    c.mx
                ),
            )
            .with_fix(format!(
                "add \"mx: {}\" to the policy (and publish a new id in the _mta-sts TXT record)",
                c.mx
            ))
            .with_result(PolicyType::Sts, ResultType::ValidationFailure)
            .with_reason_code("mx-not-covered"),
        );
    }
    for p in patterns {
        if !coverage.is_empty() && !coverage.iter().any(|c| p.matches(&c.mx)) {
            out.push(
                Finding::new(
                    "sts.policy.unused-pattern",
                    Severity::Notice,
                    subject.clone().at(format!("policy mx {p}")),
                    format!("the mx pattern {p} covers none of the MX hosts given"),
                )
                .with_fix("remove patterns for hosts that no longer receive mail"),
            );
        }
    }
    out
}
