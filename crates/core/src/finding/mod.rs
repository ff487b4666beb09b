//! The one model for everything mxprobe reports.
//!
//! A [`Finding`] has a stable machine code (`sts.policy.mx-not-covered`), a [`Severity`],
//! the [`Subject`] it is about (domain, MX, address, record or line), a message that says
//! what is wrong, a fix that says what to change, and — where the finding is a TLS failure a
//! sender would report — the RFC 8460 result type, policy type and failure-reason-code.
//! Evaluation produces findings; every writer (text, JSON, reports, JUnit, alerts) reads
//! them and never recomputes a verdict. Pure: no I/O.

use std::borrow::Cow;
use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::domain::DomainName;
use crate::tlsrpt::{PolicyType, ResultType};

pub(crate) mod code;

pub use code::{Code, InvalidPolicy, TLSRPT_PREFIX, TxtProblem};

/// How bad a finding is. Ordered: `Notice < Warning < Error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing; nothing breaks.
    Notice,
    /// Works today but is fragile, out of spec in a tolerated way, or will break later.
    Warning,
    /// Senders will fail, or the record/policy is invalid.
    Error,
}

impl Severity {
    /// The lower-case name used on the wire and on the command line.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Notice => "notice",
            Self::Warning => "warning",
            Self::Error => "error",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Severity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "notice" => Ok(Self::Notice),
            "warning" => Ok(Self::Warning),
            "error" => Ok(Self::Error),
            other => Err(format!(
                "{other:?} is not a severity (use notice, warning or error)"
            )),
        }
    }
}

/// What a finding is about. Every part is optional; the more is known the more is filled.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    /// The policy (recipient) domain.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub domain: Option<DomainName>,
    /// The MX host.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub mx: Option<DomainName>,
    /// One address of the MX host.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub ip: Option<IpAddr>,
    /// Where in a record or file, or the addresses of the MX host.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub location: Option<Location>,
}

/// Where a finding is, besides its domain, MX host and address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Location {
    /// A place in a record or file: `_mta-sts TXT`, `policy line 3`, `--mx mx2.example.com`.
    Text(String),
    /// Several addresses of one MX host with the same problem, written
    /// `addresses 192.0.2.1, 192.0.2.2`.
    Addresses(Vec<IpAddr>),
}

impl Location {
    const ADDRESSES: &'static str = "addresses ";

    /// Reads the written form back (a stored finding): the address list when the text is
    /// one, else the text.
    fn parse(text: String) -> Self {
        let ips = text.strip_prefix(Self::ADDRESSES).and_then(|list| {
            list.split(", ")
                .map(|a| a.parse().ok())
                .collect::<Option<Vec<IpAddr>>>()
        });
        match ips {
            Some(ips) => Self::Addresses(ips),
            None => Self::Text(text),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Text(text) => f.write_str(text),
            Self::Addresses(ips) => {
                f.write_str(Self::ADDRESSES)?;
                for (i, ip) in ips.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{ip}")?;
                }
                Ok(())
            }
        }
    }
}

impl Serialize for Location {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Location {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self::parse)
    }
}

impl Subject {
    /// A subject naming only a domain.
    pub fn domain(domain: &DomainName) -> Self {
        Self {
            domain: Some(domain.clone()),
            ..Self::default()
        }
    }

    /// A subject naming only a place in a record or file.
    pub fn location(location: impl Into<String>) -> Self {
        Self::default().at(location)
    }

    /// The same subject with a location added.
    pub fn at(mut self, location: impl Into<String>) -> Self {
        self.location = Some(Location::Text(location.into()));
        self
    }

    /// The same subject at several addresses of its MX host instead of one.
    pub fn at_addresses(mut self, ips: Vec<IpAddr>) -> Self {
        self.ip = None;
        self.location = Some(Location::Addresses(ips));
        self
    }

    /// The addresses of a subject that names several (see [`Location::Addresses`]).
    pub fn addresses(&self) -> Option<&[IpAddr]> {
        match (&self.ip, &self.location) {
            (None, Some(Location::Addresses(ips))) => Some(ips),
            _ => None,
        }
    }

    /// The same subject with an MX host added.
    pub fn with_mx(mut self, mx: &DomainName) -> Self {
        self.mx = Some(mx.clone());
        self
    }

    /// The same subject with an address added.
    pub fn with_ip(mut self, ip: IpAddr) -> Self {
        self.ip = Some(ip);
        self
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = Vec::new();
        if let Some(d) = &self.domain {
            parts.push(d.to_string());
        }
        if let Some(mx) = &self.mx {
            parts.push(format!("MX {mx}"));
        }
        if let Some(ip) = &self.ip {
            parts.push(ip.to_string());
        }
        if let Some(l) = &self.location {
            parts.push(l.to_string());
        }
        f.write_str(&parts.join(", "))
    }
}

/// One thing mxprobe has to say.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable, dotted machine code, e.g. `sts.policy.mx-not-covered`: a [`Code`] of the
    /// catalogue (a string here, so that findings stored by other versions still read).
    pub code: Cow<'static, str>,
    /// How bad it is.
    pub severity: Severity,
    /// What it is about.
    pub subject: Subject,
    /// What is wrong, in one or two sentences naming the record, host or value.
    pub message: String,
    /// What to change so that the finding goes away.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub fix: Option<String>,
    /// The RFC 8460 result type a sender would report, where one applies.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub result_type: Option<ResultType>,
    /// The policy type the result would be reported under.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub policy_type: Option<PolicyType>,
    /// The RFC 8460 `failure-reason-code`, where one applies.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub failure_reason_code: Option<String>,
    /// The finding says that something could not be tested from here (a timeout, a DNS
    /// failure, a 421, SMTP not probed), not that something is wrong. Such findings make a
    /// result inconclusive (exit status 3) and never count towards `--fail-on`.
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub inconclusive: bool,
}

impl Finding {
    /// A finding with a code, severity, subject and message; the rest is added with the
    /// `with_*` methods.
    pub fn new(
        code: Code,
        severity: Severity,
        subject: Subject,
        message: impl Into<String>,
    ) -> Self {
        Self {
            code: code.text(),
            severity,
            subject,
            message: message.into(),
            fix: None,
            result_type: None,
            policy_type: None,
            failure_reason_code: None,
            inconclusive: false,
        }
    }

    /// Whether the finding has this code.
    pub fn is(&self, code: Code) -> bool {
        self.code == code.text()
    }

    /// Marks the finding as "could not test" (see [`Finding::inconclusive`]).
    pub fn could_not_test(mut self) -> Self {
        self.inconclusive = true;
        self
    }

    /// Marks the finding as "could not test" unless `definite` (a bogus DNSSEC answer, say,
    /// is a definite failure even where a timeout would be "could not tell").
    pub fn could_not_test_unless(self, definite: bool) -> Self {
        if definite {
            self
        } else {
            self.could_not_test()
        }
    }

    /// Whether this finding counts towards `--fail-on` at `threshold`: it is at least that
    /// severe and says that something is wrong (not that it could not be tested).
    pub fn fails(&self, threshold: Severity) -> bool {
        self.severity >= threshold && !self.inconclusive
    }

    /// Adds what to change.
    pub fn with_fix(mut self, fix: impl Into<String>) -> Self {
        self.fix = Some(fix.into());
        self
    }

    /// Adds the RFC 8460 result type and the policy type it is reported under.
    pub fn with_result(mut self, policy_type: PolicyType, result_type: ResultType) -> Self {
        self.policy_type = Some(policy_type);
        self.result_type = Some(result_type);
        self
    }

    /// Adds the RFC 8460 failure-reason-code.
    pub fn with_reason_code(mut self, code: impl Into<String>) -> Self {
        self.failure_reason_code = Some(code.into());
        self
    }
}

/// The most findings one domain (or one `lint` run) reports; more are folded into one last
/// finding, [`Code::FindingsLeftOut`], that counts them. No legitimate domain comes near it (one MX
/// host with every address failing every check gives a few dozen); a hostile policy or
/// record set could otherwise make every output grow without bound.
pub const MAX_FINDINGS: usize = 200;

/// Keeps at most [`MAX_FINDINGS`] findings: the most severe, those that say something is
/// wrong before those that say something could not be tested, in their original order; the
/// last one kept counts the rest by severity. `subject` names what the findings are about.
pub fn cap_findings(findings: &mut Vec<Finding>, subject: &Subject) {
    if findings.len() <= MAX_FINDINGS {
        return;
    }
    let keep = MAX_FINDINGS - 1;
    // Most severe first, definite before "could not test"; stable, so ties keep their order.
    let mut order: Vec<usize> = (0..findings.len()).collect();
    order.sort_by_key(|&i| {
        let f = &findings[i];
        (std::cmp::Reverse(f.severity), f.inconclusive)
    });
    let mut kept = vec![false; findings.len()];
    for &i in &order[..keep] {
        kept[i] = true;
    }
    let mut left_out = [0usize; 3];
    let mut i = 0;
    findings.retain(|f| {
        let k = kept[i];
        i += 1;
        if !k {
            left_out[f.severity as usize] += 1;
        }
        k
    });
    let [notices, warnings, errors] = left_out;
    let total = notices + warnings + errors;
    findings.push(
        Finding::new(
            Code::FindingsLeftOut,
            Severity::Notice,
            subject.clone(),
            format!(
                "{total} more findings are left out ({errors} errors, {warnings} warnings, \
                 {notices} notices): at most {MAX_FINDINGS} are reported, the most severe first"
            ),
        )
        .with_fix("fix the findings shown, then run again to see the rest"),
    );
}

/// Counts of findings by severity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Counts {
    /// Findings of severity error.
    pub error: usize,
    /// Findings of severity warning.
    pub warning: usize,
    /// Findings of severity notice.
    pub notice: usize,
}

impl Counts {
    /// Counts the findings.
    pub fn of(findings: &[Finding]) -> Self {
        let mut c = Self::default();
        for f in findings {
            match f.severity {
                Severity::Error => c.error += 1,
                Severity::Warning => c.warning += 1,
                Severity::Notice => c.notice += 1,
            }
        }
        c
    }

    /// "1 error, 2 warnings, no notices" style summary.
    pub fn summary(&self) -> String {
        fn n(count: usize, one: &str, many: &str) -> String {
            match count {
                0 => format!("no {many}"),
                1 => format!("1 {one}"),
                k => format!("{k} {many}"),
            }
        }
        format!(
            "{}, {}, {}",
            n(self.error, "error", "errors"),
            n(self.warning, "warning", "warnings"),
            n(self.notice, "notice", "notices")
        )
    }
}

/// The highest severity among findings, if any.
pub fn worst(findings: &[Finding]) -> Option<Severity> {
    findings.iter().map(|f| f.severity).max()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_orders_and_parses() {
        assert!(Severity::Notice < Severity::Warning && Severity::Warning < Severity::Error);
        for s in [Severity::Notice, Severity::Warning, Severity::Error] {
            assert_eq!(s.as_str().parse::<Severity>().unwrap(), s);
        }
        assert!("fatal".parse::<Severity>().is_err());
    }

    #[test]
    fn findings_are_capped_keeping_the_most_severe_in_order() {
        let d = DomainName::parse("example.com").unwrap();
        let mut findings: Vec<Finding> = (0..1000)
            .map(|i| {
                let severity = match i % 10 {
                    0 => Severity::Error,
                    1 => Severity::Warning,
                    _ => Severity::Notice,
                };
                let f = Finding::new(Code::MxNull, severity, Subject::domain(&d), format!("{i}"));
                if i == 500 { f.could_not_test() } else { f }
            })
            .collect();
        cap_findings(&mut findings, &Subject::domain(&d));
        assert_eq!(findings.len(), MAX_FINDINGS);
        // All 100 errors (the "could not test" one last among them) and 99 warnings.
        let errors: Vec<&str> = findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .map(|f| f.message.as_str())
            .collect();
        assert_eq!(errors.len(), 100);
        assert_eq!(errors[0], "0");
        let warnings = findings
            .iter()
            .filter(|f| f.severity == Severity::Warning)
            .count();
        assert_eq!(warnings, 99);
        let last = findings.last().unwrap();
        assert!(last.is(Code::FindingsLeftOut));
        assert_eq!(
            last.message,
            "801 more findings are left out (0 errors, 1 warnings, 800 notices): at most 200 \
             are reported, the most severe first"
        );
        // Kept in their original order.
        let numbers: Vec<usize> = findings[..MAX_FINDINGS - 1]
            .iter()
            .map(|f| f.message.parse().unwrap())
            .collect();
        assert!(numbers.windows(2).all(|w| w[0] < w[1]));

        let mut few = findings[..3].to_vec();
        cap_findings(&mut few, &Subject::domain(&d));
        assert_eq!(few.len(), 3);
    }

    #[test]
    fn finding_serialises_without_empty_fields() {
        let d = DomainName::parse("example.com").unwrap();
        let f = Finding::new(
            Code::StsTxt(TxtProblem::Invalid),
            Severity::Error,
            Subject::domain(&d).at("_mta-sts TXT"),
            "no id field",
        );
        let json = serde_json::to_value(&f).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "code": "sts.txt.invalid",
                "severity": "error",
                "subject": {"domain": "example.com", "location": "_mta-sts TXT"},
                "message": "no id field"
            })
        );
        let back: Finding = serde_json::from_value(json).unwrap();
        assert_eq!(back, f);
        assert_eq!(worst(&[f]), Some(Severity::Error));
        assert_eq!(worst(&[]), None);
    }

    #[test]
    fn counts_summary() {
        assert_eq!(
            Counts::default().summary(),
            "no errors, no warnings, no notices"
        );
        let c = Counts {
            error: 1,
            warning: 2,
            notice: 0,
        };
        assert_eq!(c.summary(), "1 error, 2 warnings, no notices");
    }

    #[test]
    fn locations_are_written_as_text_and_read_back_typed() {
        let d = DomainName::parse("example.com").unwrap();
        let ips: Vec<IpAddr> = vec!["192.0.2.1".parse().unwrap(), "2001:db8::1".parse().unwrap()];
        let merged = Subject::domain(&d).at_addresses(ips.clone());
        let json = serde_json::to_value(&merged).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"domain": "example.com", "location": "addresses 192.0.2.1, 2001:db8::1"})
        );
        let back: Subject = serde_json::from_value(json).unwrap();
        assert_eq!(back, merged);
        assert_eq!(back.addresses(), Some(ips.as_slice()));
        assert_eq!(
            back.to_string(),
            "example.com, addresses 192.0.2.1, 2001:db8::1"
        );

        for text in [
            "_mta-sts TXT",
            "addresses of the host",
            "addresses 192.0.2.1, x",
        ] {
            let back: Subject =
                serde_json::from_value(serde_json::json!({"location": text})).unwrap();
            assert_eq!(back.location, Some(Location::Text(text.to_owned())));
            assert_eq!(back.addresses(), None);
        }
    }
}
