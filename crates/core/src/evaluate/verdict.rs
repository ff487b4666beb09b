//! What evaluation concludes about one domain: the routing, the MTA-STS state, one
//! [`SessionVerdict`] per (MX host, address), the DNSSEC failures and every finding.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::domain::DomainName;
use crate::evaluate::records::RecordOutcome;
use crate::finding::{Finding, Severity};
use crate::mtasts::{Mode, Policy};
use crate::tlsrpt::{PolicyType, ResultType};

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
    /// The presented certificates that form the path verifying under the trust anchors at
    /// the time of judgement, as indices into the chain (leaf first); `None` without TLS or
    /// without such a path. Not serialised: a stored verdict has `None`.
    #[serde(skip)]
    pub verified_path: Option<Vec<usize>>,
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
    /// Whether reports can reach each usable destination, in `rua` order.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub tlsrpt_destinations: Vec<super::rua::RuaVerdict>,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(severity: Severity) -> Finding {
        let d = DomainName::parse("example.com").unwrap();
        Finding::new(
            crate::finding::Code::MxNull,
            severity,
            crate::finding::Subject::domain(&d),
            "m",
        )
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
