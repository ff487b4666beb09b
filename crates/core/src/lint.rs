//! `mxprobe lint`: offline judgement of candidate records and a policy file, before they are
//! published.
//!
//! The input is what an operator is about to publish: `_mta-sts` and `_smtp._tls` TXT record
//! sets, a policy body, and the MX host names the policy must cover. The checks are the
//! same functions the scan applies to live data ([`crate::evaluate`]), so `lint` and `scan`
//! never disagree about a record. The output ([`LintReport`]) is plain data: the JSON shape
//! is documented in `docs/output.md`, and [`crate::render::write_lint_report`] renders it for
//! people. Pure: no I/O.

use serde::Serialize;

use crate::domain::{DomainError, DomainName};
use crate::evaluate::policy::{Coverage, check_policy_body, coverage, coverage_findings};
use crate::evaluate::records::{
    RecordKind, RecordOutcome, WhenAbsent, selection_findings, tlsrpt_owner_finding,
    tlsrpt_set_findings,
};
use crate::evaluate::verdict::Status;
use crate::finding::{Counts, Finding, Severity, Subject};
use crate::mtasts::{Mode, MxPattern, select_sts};
use crate::tlsrpt::record::select_tlsrpt;

/// The version of the JSON shape; raised when a field changes meaning or disappears.
pub const SCHEMA_VERSION: u32 = 1;

/// What to check (everything optional; at least one part must be given).
#[derive(Debug, Clone, Default)]
pub struct LintInput {
    /// The policy domain, as typed.
    pub domain: Option<String>,
    /// The policy body, as bytes from a file or standard input.
    pub policy: Option<Vec<u8>>,
    /// The `_mta-sts` TXT record set, each record already joined.
    pub sts_txt: Vec<String>,
    /// The `_smtp._tls` TXT record set.
    pub tlsrpt_txt: Vec<String>,
    /// The owner name those records are published under (`_smtp._tls` unless told).
    pub tlsrpt_name: Option<String>,
    /// The MX host names, as typed.
    pub mx: Vec<String>,
}

/// Why the input cannot be checked at all (a usage error, exit status 2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LintError {
    /// Nothing to check.
    #[error("nothing to check: give --policy, --sts-txt, --tlsrpt-txt or --mx")]
    NothingToCheck,
    /// `--domain` is not a domain name.
    #[error("--domain {value:?}: {error}")]
    BadDomain {
        /// The value typed.
        value: String,
        /// Why it is not a domain name.
        error: DomainError,
    },
    /// A TXT value longer than any TXT record can be ([`crate::limits::TXT_VALUE_BYTES`]).
    #[error(
        "{flag}: the value is {bytes} bytes long; a TXT record holds at most {} bytes, and \
         these records are a few dozen",
        crate::limits::TXT_VALUE_BYTES
    )]
    TxtTooLong {
        /// The flag.
        flag: &'static str,
        /// The value's length.
        bytes: usize,
    },
    /// An `--mx` value is not a host name.
    #[error("--mx {value:?}: {error}")]
    BadMx {
        /// The value typed.
        value: String,
        /// Why it is not a host name.
        error: DomainError,
    },
}

/// The `_mta-sts` record set as a sender sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StsRecordSummary {
    /// How many records were given.
    pub records: usize,
    /// What a sender concludes.
    pub outcome: RecordOutcome,
    /// The policy id, when one valid record was chosen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// The `_smtp._tls` record set as a sender sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TlsRptRecordSummary {
    /// How many records were given.
    pub records: usize,
    /// What a sender concludes.
    pub outcome: RecordOutcome,
    /// The report destinations, when one valid record was chosen.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rua: Vec<String>,
}

/// The policy body as understood.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicySummary {
    /// Whether the body is a valid policy.
    pub valid: bool,
    /// The mode, when valid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    /// max_age in seconds, when valid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_age: Option<u32>,
    /// The mx patterns understood (from an invalid body too).
    pub mx: Vec<MxPattern>,
}

/// Everything `lint` found. Serialised, this is the `--format json` document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LintReport {
    /// The JSON shape's version ([`SCHEMA_VERSION`]).
    pub schema_version: u32,
    /// The policy domain, when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<DomainName>,
    /// Findings by severity.
    pub counts: Counts,
    /// The `_mta-sts` record set, when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sts_record: Option<StsRecordSummary>,
    /// The policy, when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<PolicySummary>,
    /// The `_smtp._tls` record set, when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tlsrpt_record: Option<TlsRptRecordSummary>,
    /// Which pattern covers each MX host, when MX hosts were given.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mx_coverage: Vec<Coverage>,
    /// Whether reports reach each usable `rua` destination (`--live` only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tlsrpt_destinations: Vec<crate::evaluate::rua::RuaVerdict>,
    /// Every finding, in the order the checks ran.
    pub findings: Vec<Finding>,
}

impl LintReport {
    /// Whether any finding fails at `threshold` (exit status 1); lint tests nothing on the
    /// network, so it is never inconclusive.
    pub fn fails(&self, threshold: Severity) -> bool {
        self.status(threshold) == Status::Fail
    }

    /// The status at `threshold`: fail or pass.
    pub fn status(&self, threshold: Severity) -> Status {
        Status::of(&self.findings, false, threshold)
    }
}

/// Checks everything given.
pub fn lint(input: &LintInput) -> Result<LintReport, LintError> {
    if input.policy.is_none()
        && input.sts_txt.is_empty()
        && input.tlsrpt_txt.is_empty()
        && input.mx.is_empty()
    {
        return Err(LintError::NothingToCheck);
    }
    check_txt_lengths(&input.sts_txt, &input.tlsrpt_txt)?;
    let domain = input
        .domain
        .as_deref()
        .map(|d| {
            DomainName::parse(d).map_err(|error| LintError::BadDomain {
                value: d.to_owned(),
                error,
            })
        })
        .transpose()?;
    let mx_hosts = input
        .mx
        .iter()
        .filter(|m| !m.trim().is_empty())
        .map(|m| {
            DomainName::parse(m.trim()).map_err(|error| LintError::BadMx {
                value: m.clone(),
                error,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let subject = domain.as_ref().map(Subject::domain).unwrap_or_default();
    let mut findings = Vec::new();

    let sts_record = (!input.sts_txt.is_empty()).then(|| {
        let selection = select_sts(&input.sts_txt);
        let ignored = selection
            .record()
            .map(|r| r.ignored.clone())
            .unwrap_or_default();
        findings.extend(selection_findings(
            RecordKind::MtaSts,
            &selection,
            &ignored,
            &subject,
            WhenAbsent::Error,
        ));
        StsRecordSummary {
            records: selection.total,
            outcome: RecordOutcome::of(&selection.conclusion),
            id: selection.record().map(|r| r.id.clone()),
        }
    });

    let mut patterns = Vec::new();
    let mut mode = None;
    let policy = input.policy.as_ref().map(|bytes| {
        let (body, not_utf8) = match std::str::from_utf8(bytes) {
            Ok(text) => (text.to_owned(), false),
            Err(_) => (String::from_utf8_lossy(bytes).into_owned(), true),
        };
        let check = check_policy_body(&body, not_utf8, &subject);
        findings.extend(check.findings);
        patterns = check.patterns;
        mode = check.policy.as_ref().map(|p| p.mode);
        PolicySummary {
            valid: check.policy.is_some() && !not_utf8,
            mode,
            max_age: check.policy.as_ref().map(|p| p.max_age),
            mx: patterns.clone(),
        }
    });

    let tlsrpt_record = (!input.tlsrpt_txt.is_empty()).then(|| {
        let selection = select_tlsrpt(&input.tlsrpt_txt);
        if let Some(owner) = &input.tlsrpt_name {
            findings.extend(tlsrpt_owner_finding(owner, &subject));
        }
        findings.extend(tlsrpt_set_findings(&selection, &subject, WhenAbsent::Error));
        TlsRptRecordSummary {
            records: selection.total,
            outcome: RecordOutcome::of(&selection.conclusion),
            rua: selection
                .record()
                .map(|r| r.rua.iter().map(|u| u.uri().to_owned()).collect())
                .unwrap_or_default(),
        }
    });

    let mx_coverage = if policy.is_some() && !mx_hosts.is_empty() {
        let cov = coverage(&patterns, &mx_hosts);
        let hint_mode = if policy.as_ref().is_some_and(|p| p.valid) {
            mode
        } else {
            None
        };
        findings.extend(coverage_findings(&patterns, &cov, hint_mode, &subject));
        cov
    } else {
        Vec::new()
    };

    crate::finding::cap_findings(&mut findings, &subject);
    Ok(LintReport {
        schema_version: SCHEMA_VERSION,
        domain,
        counts: Counts::of(&findings),
        sts_record,
        policy,
        tlsrpt_record,
        mx_coverage,
        tlsrpt_destinations: Vec::new(),
        findings,
    })
}

/// Refuses a `--sts-txt` or `--tlsrpt-txt` value longer than a TXT record can be
/// ([`crate::limits::TXT_VALUE_BYTES`]); `gate` applies the same rule.
pub fn check_txt_lengths(sts_txt: &[String], tlsrpt_txt: &[String]) -> Result<(), LintError> {
    let too_long = |flag, values: &[String]| {
        values
            .iter()
            .find(|v| v.len() > crate::limits::TXT_VALUE_BYTES)
            .map_or(Ok(()), |v| {
                Err(LintError::TxtTooLong {
                    flag,
                    bytes: v.len(),
                })
            })
    };
    too_long("--sts-txt", sts_txt)?;
    too_long("--tlsrpt-txt", tlsrpt_txt)
}
