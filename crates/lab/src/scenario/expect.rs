//! A scan held to what the scenario expects of it: each difference in words.

use std::collections::BTreeSet;

use mxprobe_core::domain::DomainName;
use mxprobe_core::evaluate::verdict::SessionResult;
use mxprobe_core::result::DomainResult;
use mxprobe_core::tlsrpt::ResultType;

use super::{Expectation, ExpectedResult};

fn sorted(types: &[ResultType]) -> Vec<&'static str> {
    let mut v: Vec<&'static str> = types.iter().map(|t| t.as_str()).collect();
    v.sort_unstable();
    v.dedup();
    v
}

impl Expectation {
    /// Every way the scan of `name` in `report` differs from this expectation, in words
    /// (empty: judged as expected). `addresses` is how many addresses an MX host has: one
    /// session is expected per address.
    pub fn mismatches(
        &self,
        name: &DomainName,
        report: &DomainResult,
        addresses: &dyn Fn(&DomainName) -> usize,
    ) -> Vec<String> {
        let v = &report.verdict;
        let mut out = Vec::new();
        let mut differ = |what: &str, expected: String, got: String| {
            if expected != got {
                out.push(format!("{name}: {what}: expected {expected}, got {got}"));
            }
        };
        differ(
            "routing",
            format!("{:?}", self.routing),
            format!("{:?}", v.routing),
        );
        differ(
            "sts failure",
            format!("{:?}", self.sts_failure),
            format!("{:?}", v.sts.failure.as_ref().map(|f| f.result_type)),
        );
        differ(
            "inconclusive",
            self.inconclusive.to_string(),
            v.inconclusive.to_string(),
        );
        let codes: BTreeSet<&str> = v.findings.iter().map(|f| f.code.as_ref()).collect();
        for code in &self.findings {
            if !codes.contains(code.as_str()) {
                out.push(format!("{name}: finding {code} missing; found {codes:?}"));
            }
        }
        if let (Some(limit), Some(worst)) = (self.worst, v.worst())
            && worst > limit
        {
            let bad: Vec<String> = v
                .findings
                .iter()
                .filter(|f| f.severity > limit)
                .map(|f| format!("{} ({})", f.code, f.message))
                .collect();
            out.push(format!("{name}: findings worse than {limit:?}: {bad:?}"));
        }
        if !self.rua.is_empty() {
            let got: Vec<_> = v.tlsrpt_destinations.iter().map(|d| d.delivery).collect();
            if got != self.rua {
                out.push(format!(
                    "{name}: rua destinations: expected {:?}, got {got:?}",
                    self.rua
                ));
            }
        }
        let seen: BTreeSet<&DomainName> = v.sessions.iter().map(|s| &s.mx).collect();
        let expected: BTreeSet<&DomainName> = self.sessions.iter().map(|s| &s.mx).collect();
        if seen != expected {
            out.push(format!(
                "{name}: sessions with {seen:?}, expected sessions with {expected:?}"
            ));
        }
        for e in &self.sessions {
            let sessions: Vec<_> = v.sessions.iter().filter(|s| s.mx == e.mx).collect();
            let count = addresses(&e.mx);
            if sessions.len() != count {
                out.push(format!(
                    "{name}: {} sessions with {}, expected one per address ({count})",
                    sessions.len(),
                    e.mx
                ));
            }
            for s in sessions {
                let at = format!("{} at {}", e.mx, s.ip);
                if s.policy_type != e.policy {
                    out.push(format!(
                        "{name}: {at}: policy {}, expected {}",
                        s.policy_type, e.policy
                    ));
                }
                let got = match &s.result {
                    SessionResult::Success => "success".to_owned(),
                    SessionResult::Inconclusive { reason } => format!("inconclusive ({reason})"),
                    SessionResult::Failure { failures } => {
                        let types: Vec<ResultType> =
                            failures.iter().map(|f| f.result_type).collect();
                        format!("failure {:?}", sorted(&types))
                    }
                };
                let ok = match (&e.result, &s.result) {
                    (ExpectedResult::Success, SessionResult::Success)
                    | (ExpectedResult::Inconclusive, SessionResult::Inconclusive { .. }) => true,
                    (ExpectedResult::Failure(types), SessionResult::Failure { failures }) => {
                        let got: Vec<ResultType> = failures.iter().map(|f| f.result_type).collect();
                        sorted(types) == sorted(&got)
                    }
                    _ => false,
                };
                if !ok {
                    out.push(format!("{name}: {at}: expected {:?}, got {got}", e.result));
                }
            }
        }
        out
    }
}
