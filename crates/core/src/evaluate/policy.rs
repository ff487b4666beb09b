//! Findings about an MTA-STS policy body (RFC 8461 §3.2) and about which MX hosts its `mx`
//! patterns cover (§4.1).
//!
//! Shared by `mxprobe lint` (a candidate policy file) and the policy-fetch judgement (a
//! served policy), so a policy gets the same findings wherever it comes from. Pure.

use std::collections::HashMap;

use serde::Serialize;

use crate::domain::DomainName;
use crate::finding::{Code, Finding, InvalidPolicy, Severity, Subject};
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
            InvalidPolicy::NotUtf8,
            "the policy is not valid UTF-8 text; RFC 8461 §3.2 policies are plain ASCII lines"
                .to_owned(),
            "save the policy as plain ASCII text".to_owned(),
        ));
    }
    let mut by_line = Vec::new();
    for error in &parsed.errors {
        let at = match error.line() {
            Some(line) => subject.clone().at(format!("policy line {line}")),
            None => subject.clone().at("policy"),
        };
        let (kind, fix) = error_code_and_fix(error);
        let finding = invalid(at, kind, error.to_string(), fix);
        by_line.push((error.line(), Code::StsPolicyInvalid(kind), finding));
    }
    for note in &parsed.notes {
        let (code, finding) = note_finding(note, subject);
        by_line.push((Some(note.line()), code, finding));
    }
    findings.extend(aggregate(by_line, subject));
    if let Some(policy) = &parsed.policy {
        findings.extend(policy_advice(policy, subject));
    }
    PolicyCheck {
        patterns: parsed.partial.mx.clone(),
        policy: parsed.policy,
        findings,
    }
}

/// More findings of one code than this about one policy are folded into one
/// (`aggregate`).
pub const SAME_CODE_PER_POLICY: usize = 3;

/// How many line numbers a folded finding lists.
const LINES_LISTED: usize = 5;

/// Folds the findings of each code that occurs more than [`SAME_CODE_PER_POLICY`] times into
/// one, at the place of the first: "65,536 blank lines", the first few line numbers, and the
/// first one's message and fix. A body of 64 KiB of blank lines thus gives a handful of
/// findings, not 65,539. Codes seen fewer times keep each finding.
fn aggregate(findings: Vec<(Option<usize>, Code, Finding)>, subject: &Subject) -> Vec<Finding> {
    let mut counts: HashMap<Code, usize> = HashMap::new();
    for (_, code, _) in &findings {
        *counts.entry(*code).or_default() += 1;
    }
    let folded: HashMap<Code, usize> = counts
        .into_iter()
        .filter(|&(_, n)| n > SAME_CODE_PER_POLICY)
        .collect();
    if folded.is_empty() {
        return findings.into_iter().map(|(_, _, f)| f).collect();
    }
    // Per folded code: the index of its first finding in `out` and its first lines.
    let mut firsts: HashMap<Code, (usize, Vec<usize>)> = HashMap::new();
    let mut out: Vec<Finding> = Vec::new();
    for (line, code, f) in findings {
        if !folded.contains_key(&code) {
            out.push(f);
            continue;
        }
        match firsts.get_mut(&code) {
            Some((at, lines)) => {
                if let Some(line) = line
                    && lines.len() < LINES_LISTED
                {
                    lines.push(line);
                }
                let first = &mut out[*at];
                first.severity = first.severity.max(f.severity);
            }
            None => {
                firsts.insert(code, (out.len(), line.into_iter().collect()));
                out.push(f);
            }
        }
    }
    for (code, (at, lines)) in firsts {
        let total = folded[&code];
        let first = &mut out[at];
        let listed = lines
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        let more = total - lines.len();
        first.subject = subject.clone().at(if lines.is_empty() {
            "policy".to_owned()
        } else {
            format!("policy lines {listed}{}", if more > 0 { ", …" } else { "" })
        });
        let what = match code {
            Code::StsPolicyInvalid(InvalidPolicy::BlankLine) => "blank lines",
            Code::StsPolicyInvalid(InvalidPolicy::NotKeyValue) => {
                "lines that are not \"key: value\""
            }
            Code::StsPolicyDuplicateMx => "repeated mx lines",
            Code::StsPolicyDuplicateKey => "repeated keys",
            Code::StsPolicyUnknownKey => "unknown keys",
            Code::StsPolicyInvalid(InvalidPolicy::BadMx) => "invalid mx lines",
            _ => "lines with this problem",
        };
        let lines_text = match (lines.len(), more) {
            (0, _) => String::new(),
            (_, 0) => format!(" (lines {listed})"),
            (_, more) => format!(" (lines {listed} and {} more)", thousands(more)),
        };
        first.message = format!(
            "{} {what}{lines_text}; the first: {}",
            thousands(total),
            first.message
        );
    }
    out
}

/// `65536` as `65,536`.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn invalid(subject: Subject, kind: InvalidPolicy, message: String, fix: String) -> Finding {
    Finding::new(
        Code::StsPolicyInvalid(kind),
        Severity::Error,
        subject,
        format!("{message}; senders treat the policy as invalid and ignore MTA-STS"),
    )
    .with_fix(fix)
    .with_result(PolicyType::Sts, ResultType::StsPolicyInvalid)
    .with_reason_code(kind.as_str())
}

fn error_code_and_fix(error: &PolicyError) -> (InvalidPolicy, String) {
    match error {
        PolicyError::EmptyBody => (
            InvalidPolicy::Empty,
            "serve a policy: version, mode, mx and max_age lines".to_owned(),
        ),
        PolicyError::MissingVersion => (
            InvalidPolicy::MissingVersion,
            "add \"version: STSv1\" as the first line".to_owned(),
        ),
        PolicyError::MissingMode => (
            InvalidPolicy::MissingMode,
            "add \"mode: testing\" (or enforce, once reports are clean)".to_owned(),
        ),
        PolicyError::MissingMaxAge => (
            InvalidPolicy::MissingMaxAge,
            "add \"max_age: 604800\" (one week; RFC 8461 recommends weeks or more)".to_owned(),
        ),
        PolicyError::NoMx { .. } => (
            InvalidPolicy::NoMx,
            "add one \"mx:\" line per MX host (or a \"*.\" pattern covering them)".to_owned(),
        ),
        PolicyError::BadVersion { .. } => (
            InvalidPolicy::BadVersion,
            "write exactly \"version: STSv1\" (case-sensitive)".to_owned(),
        ),
        PolicyError::BadMode { .. } => (
            InvalidPolicy::BadMode,
            "write \"mode: enforce\", \"mode: testing\" or \"mode: none\" in lower case".to_owned(),
        ),
        PolicyError::BadMaxAge { .. } => (
            InvalidPolicy::BadMaxAge,
            "write max_age as plain seconds, e.g. \"max_age: 604800\"".to_owned(),
        ),
        PolicyError::MaxAgeTooLarge { .. } => (
            InvalidPolicy::MaxAgeTooLarge,
            "use at most 31557600 (one year)".to_owned(),
        ),
        PolicyError::BadMx { .. } => (
            InvalidPolicy::BadMx,
            "write each mx as a host name in A-label form, optionally starting with \"*.\" \
             (e.g. \"mx: mail.example.com\" or \"mx: *.example.net\")"
                .to_owned(),
        ),
        PolicyError::NoColon { .. } => (
            InvalidPolicy::NotKeyValue,
            "every line is \"key: value\"; remove or fix the line".to_owned(),
        ),
        PolicyError::WhitespaceBeforeColon { .. } => (
            InvalidPolicy::SpaceBeforeColon,
            "remove the whitespace between the key and ':'".to_owned(),
        ),
        PolicyError::LeadingWhitespace { .. } => (
            InvalidPolicy::LeadingWhitespace,
            "remove the whitespace at the start of the line".to_owned(),
        ),
        PolicyError::BadKey { .. } => (
            InvalidPolicy::BadKey,
            "use only the keys version, mode, mx and max_age".to_owned(),
        ),
        PolicyError::EmptyExtensionValue { .. } => (
            InvalidPolicy::EmptyValue,
            "give the key a value or remove the line".to_owned(),
        ),
        PolicyError::BadExtensionValue { .. } => (
            InvalidPolicy::BadValue,
            "remove control characters from the value".to_owned(),
        ),
        PolicyError::NotALineEnd { .. } => (
            InvalidPolicy::BadLineEnd,
            "end every line with LF or CRLF".to_owned(),
        ),
        PolicyError::BlankLine { .. } => {
            (InvalidPolicy::BlankLine, "remove the empty line".to_owned())
        }
    }
}

fn note_finding(note: &PolicyNote, subject: &Subject) -> (Code, Finding) {
    let at = subject.clone().at(format!("policy line {}", note.line()));
    let (code, severity, fix) = match note {
        PolicyNote::DuplicateKey { key, value, .. } => (
            Code::StsPolicyDuplicateKey,
            Severity::Warning,
            format!("remove the line \"{key}: {value}\""),
        ),
        PolicyNote::DuplicateMx { .. } => (
            Code::StsPolicyDuplicateMx,
            Severity::Notice,
            "remove the repeated line".to_owned(),
        ),
        PolicyNote::UnknownKey { similar_to, .. } => (
            Code::StsPolicyUnknownKey,
            if similar_to.is_some() {
                Severity::Warning
            } else {
                Severity::Notice
            },
            match similar_to {
                Some(known) => format!("write the key as {known:?}"),
                None => "remove the line unless an extension needs it".to_owned(),
            },
        ),
    };
    let finding = Finding::new(code, severity, at, note.to_string()).with_fix(fix);
    (code, finding)
}

/// Advice on a valid policy: short max_age, testing and none modes.
fn policy_advice(policy: &Policy, subject: &Subject) -> Vec<Finding> {
    let mut out = Vec::new();
    let at = subject.clone().at("policy");
    if policy.mode != Mode::None && policy.max_age < SHORT_MAX_AGE {
        out.push(
            Finding::new(
                Code::StsPolicyMaxAgeShort,
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
                Code::StsPolicyModeTesting,
                Severity::Notice,
                at,
                "mode is testing: senders deliver even when TLS fails and only report the failure",
            )
            .with_fix("switch to \"mode: enforce\" once TLS-RPT reports show no failures"),
        ),
        Mode::None => out.push(
            Finding::new(
                Code::StsPolicyModeNone,
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
                Code::StsPolicyMxNotCovered,
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
                    Code::StsPolicyUnusedPattern,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(findings: &[Finding]) -> Vec<&str> {
        findings.iter().map(|f| f.code.as_ref()).collect()
    }

    /// 64 KiB of blank lines (within the fetch cap) gave 65,539 findings; now one per kind.
    #[test]
    fn repeated_problems_are_folded_per_code() {
        let subject = Subject::domain(&DomainName::parse("example.com").unwrap());
        let check = check_policy_body(&"\n".repeat(65_536), false, &subject);
        assert_eq!(
            codes(&check.findings),
            [
                "sts.policy.blank-line",
                "sts.policy.missing-version",
                "sts.policy.missing-mode",
                "sts.policy.missing-max-age"
            ]
        );
        let blank = &check.findings[0];
        assert!(
            blank.message.starts_with(
                "65,536 blank lines (lines 1, 2, 3, 4, 5 and 65,531 more); the first: line 1: \
                 blank line"
            ),
            "{}",
            blank.message
        );
        assert_eq!(
            blank
                .subject
                .location
                .as_ref()
                .map(ToString::to_string)
                .as_deref(),
            Some("policy lines 1, 2, 3, 4, 5, …")
        );
        assert_eq!(blank.failure_reason_code.as_deref(), Some("blank-line"));

        // A few of a kind stay separate; more than SAME_CODE_PER_POLICY are folded.
        let head = "version: STSv1\nmode: enforce\nmax_age: 604800\nmx: a.example\n";
        let few = check_policy_body(
            &format!("{head}mx: a.example\nmx: a.example\n"),
            false,
            &subject,
        );
        assert_eq!(codes(&few.findings), ["sts.policy.duplicate-mx"; 2]);
        let many = check_policy_body(
            &format!("{head}{}", "mx: a.example\n".repeat(4)),
            false,
            &subject,
        );
        assert_eq!(codes(&many.findings), ["sts.policy.duplicate-mx"]);
        assert!(
            many.findings[0]
                .message
                .starts_with("4 repeated mx lines (lines 5, 6, 7, 8); the first: line 5:"),
            "{}",
            many.findings[0].message
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// Whatever the body, no code is reported more than SAME_CODE_PER_POLICY times, and a
        /// folded finding counts exactly the problems of its code that the parser found.
        #[test]
        fn folded_findings_count_every_problem(
            lines in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::strategy::Just(String::new()),
                    proptest::strategy::Just("mx: a.example".to_owned()),
                    proptest::strategy::Just("mode: testing".to_owned()),
                    "[a-z_ :]{0,12}",
                ],
                0..60,
            )
        ) {
            let body = lines.join("\n");
            let subject = Subject::default();
            let check = check_policy_body(&body, false, &subject);
            let parsed = parse_policy(&body);
            let mut problems: HashMap<String, usize> = HashMap::new();
            for e in &parsed.errors {
                let code = Code::StsPolicyInvalid(error_code_and_fix(e).0);
                *problems.entry(code.text().into_owned()).or_default() += 1;
            }
            for n in &parsed.notes {
                *problems.entry(note_finding(n, &subject).0.text().into_owned()).or_default() += 1;
            }
            for (code, &n) in &problems {
                let found: Vec<&Finding> =
                    check.findings.iter().filter(|f| f.code == code.as_str()).collect();
                if n > SAME_CODE_PER_POLICY {
                    proptest::prop_assert_eq!(found.len(), 1);
                    let count = found[0].message.split(' ').next().unwrap().replace(',', "");
                    proptest::prop_assert_eq!(count, n.to_string());
                } else {
                    proptest::prop_assert_eq!(found.len(), n);
                }
            }
        }
    }

    #[test]
    fn thousands_separators() {
        for (n, want) in [
            (0, "0"),
            (999, "999"),
            (1000, "1,000"),
            (65_536, "65,536"),
            (1_234_567, "1,234,567"),
        ] {
            assert_eq!(thousands(n), want);
        }
    }
}
