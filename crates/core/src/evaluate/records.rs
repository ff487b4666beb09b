//! Findings about the `_mta-sts` (RFC 8461 §3.1) and `_smtp._tls` (RFC 8460 §3) TXT record
//! sets: what a sender concludes from the set, and every diagnostic worth fixing.
//!
//! Shared by `mxprobe lint` (records typed by hand) and the scan (records from DNS). Pure.

use std::fmt::Display;

use crate::finding::{Code, Finding, Severity, Subject, TxtProblem};
use crate::tagvalue::{Conclusion, IgnoredField, Selection, SelectionNote};
use crate::tlsrpt::record::TlsRptSelection;

/// Which of the two records a set is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    /// `_mta-sts.<domain>` (RFC 8461 §3.1).
    MtaSts,
    /// `_smtp._tls.<domain>` (RFC 8460 §3).
    TlsRpt,
}

impl RecordKind {
    fn code(self, problem: TxtProblem) -> Code {
        match self {
            Self::MtaSts => Code::StsTxt(problem),
            Self::TlsRpt => Code::TlsRptTxt(problem),
        }
    }

    fn owner(self) -> &'static str {
        match self {
            Self::MtaSts => "_mta-sts",
            Self::TlsRpt => "_smtp._tls",
        }
    }

    fn version(self) -> &'static str {
        match self {
            Self::MtaSts => "v=STSv1",
            Self::TlsRpt => "v=TLSRPTv1",
        }
    }

    fn example(self) -> &'static str {
        match self {
            Self::MtaSts => "v=STSv1; id=20240101T000000",
            Self::TlsRpt => "v=TLSRPTv1; rua=mailto:tlsrpt@example.com",
        }
    }

    fn without(self) -> &'static str {
        match self {
            Self::MtaSts => "senders see no MTA-STS policy for the domain",
            Self::TlsRpt => "senders send no TLS reports for the domain",
        }
    }
}

fn at(kind: RecordKind, subject: &Subject, index: usize, total: usize) -> Subject {
    if total == 1 {
        subject.clone().at(format!("{} TXT", kind.owner()))
    } else {
        subject.clone().at(format!(
            "{} TXT record {} of {total}",
            kind.owner(),
            index + 1
        ))
    }
}

/// What a sender concludes from a TXT record set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RecordOutcome {
    /// Exactly one valid record.
    Valid,
    /// No record of this kind.
    None,
    /// More than one: senders treat the domain as publishing none.
    Several,
    /// One, but invalid: senders treat the domain as publishing none.
    Invalid,
}

impl RecordOutcome {
    /// The outcome of a selection.
    pub fn of<R, E>(c: &Conclusion<R, E>) -> Self {
        match c {
            Conclusion::One { .. } => Self::Valid,
            Conclusion::None => Self::None,
            Conclusion::Several { .. } => Self::Several,
            Conclusion::Invalid { .. } => Self::Invalid,
        }
    }
}

/// Whether a set with no record of the kind is a problem: when the user hands `lint` records
/// to check it is; a domain without MTA-STS or TLS-RPT in DNS is reported by the caller in
/// its own words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenAbsent {
    /// Report "none of the records is one" as an error.
    Error,
    /// Say nothing.
    Silent,
}

/// Findings for one record set. `ignored` gives the fields the chosen record ignored
/// (duplicates), if one was chosen.
pub fn selection_findings<R, E: Display>(
    kind: RecordKind,
    selection: &Selection<R, E>,
    ignored: &[IgnoredField],
    subject: &Subject,
    absent: WhenAbsent,
) -> Vec<Finding> {
    let total = selection.total;
    let mut out = Vec::new();
    let mut lookalikes = 0;
    for note in &selection.notes {
        match note {
            SelectionNote::Discarded { index, reason } if reason.looks_like_record() => {
                lookalikes += 1;
                out.push(
                    Finding::new(
                        kind.code(TxtProblem::Discarded),
                        Severity::Error,
                        at(kind, subject, *index, total),
                        format!(
                            "this record looks like a {} record but senders discard it: {reason}",
                            kind.version()
                        ),
                    )
                    .with_fix(format!(
                        "begin the record with exactly \"{};\", e.g. \"{}\"",
                        kind.version(),
                        kind.example()
                    )),
                );
            }
            SelectionNote::Discarded { .. } => {}
            SelectionNote::SpaceBeforeDelimiter { index } => out.push(
                Finding::new(
                    kind.code(TxtProblem::SpaceBeforeDelimiter),
                    Severity::Warning,
                    at(kind, subject, *index, total),
                    format!(
                        "whitespace between {} and ';' is valid by the RFC's grammar, but senders \
                         that test the literal prefix \"{};\" discard the record",
                        kind.version(),
                        kind.version()
                    ),
                )
                .with_fix(format!("write \"{};\" with no space", kind.version())),
            ),
            SelectionNote::AlsoInvalid { index, error } => out.push(
                Finding::new(
                    kind.code(TxtProblem::Invalid),
                    Severity::Error,
                    at(kind, subject, *index, total),
                    format!("this record is also invalid: {error}"),
                )
                .with_fix("remove it"),
            ),
        }
    }
    match &selection.conclusion {
        Conclusion::One { index, .. } => {
            for field in ignored {
                out.push(
                    Finding::new(
                        kind.code(TxtProblem::IgnoredField),
                        Severity::Warning,
                        at(kind, subject, *index, total),
                        field.to_string(),
                    )
                    .with_fix("remove the repeated field"),
                );
            }
        }
        Conclusion::None if lookalikes == 0 && absent == WhenAbsent::Error => out.push(
            Finding::new(
                kind.code(TxtProblem::None),
                Severity::Error,
                subject.clone().at(format!("{} TXT", kind.owner())),
                format!(
                    "none of the {total} record(s) begins with \"{};\"; {}",
                    kind.version(),
                    kind.without()
                ),
            )
            .with_fix(format!("publish a record such as \"{}\"", kind.example())),
        ),
        Conclusion::None => {}
        Conclusion::Several { indices } => {
            let which: Vec<String> = indices.iter().map(|i| (i + 1).to_string()).collect();
            out.push(
                Finding::new(
                    kind.code(TxtProblem::Several),
                    Severity::Error,
                    subject.clone().at(format!("{} TXT", kind.owner())),
                    format!(
                        "records {} of {total} all begin with \"{};\"; exactly one is allowed, so {}",
                        which.join(", "),
                        kind.version(),
                        kind.without()
                    ),
                )
                .with_fix("keep one record and delete the others (an old one left behind is the usual cause)"),
            );
        }
        Conclusion::Invalid { index, error } => out.push(
            Finding::new(
                kind.code(TxtProblem::Invalid),
                Severity::Error,
                at(kind, subject, *index, total),
                format!("{error}; {}", kind.without()),
            )
            .with_fix(format!("correct the record, e.g. \"{}\"", kind.example())),
        ),
    }
    out
}

/// Findings for the `_smtp._tls` set, including destinations senders cannot use.
pub fn tlsrpt_set_findings(
    selection: &TlsRptSelection,
    subject: &Subject,
    absent: WhenAbsent,
) -> Vec<Finding> {
    let ignored = selection
        .record()
        .map(|r| r.ignored.clone())
        .unwrap_or_default();
    let mut out = selection_findings(RecordKind::TlsRpt, selection, &ignored, subject, absent);
    if let Some(record) = selection.record() {
        for rua in record.rua.iter().filter(|r| !r.usable()) {
            out.push(
                Finding::new(
                    Code::TlsRptRuaUnusableScheme,
                    Severity::Warning,
                    subject.clone().at("_smtp._tls TXT"),
                    format!(
                        "rua {} uses a scheme senders do not deliver to; RFC 8460 §3 defines only \
                         mailto: and https:",
                        rua.uri()
                    ),
                )
                .with_fix("use a mailto: address or an https: URL"),
            );
        }
        if record.rua.iter().all(|r| !r.usable()) {
            out.push(
                Finding::new(
                    Code::TlsRptRuaNoneUsable,
                    Severity::Error,
                    subject.clone().at("_smtp._tls TXT"),
                    "no rua destination is mailto: or https:, so no report can be delivered",
                )
                .with_fix("add rua=mailto:tlsrpt@<your domain>"),
            );
        }
    }
    out
}

/// The owner name senders query for TLS-RPT (RFC 8460 §3).
pub const TLSRPT_OWNER: &str = "_smtp._tls";

/// The owner name of an early draft of RFC 8460, still seen in the wild; no sender queries it.
pub const LEGACY_TLSRPT_OWNER: &str = "_smtp-tlsrpt";

/// A finding when TLS-RPT records are published under `owner` rather than `_smtp._tls`.
/// `None` for the right name.
pub fn tlsrpt_owner_finding(owner: &str, subject: &Subject) -> Option<Finding> {
    let owner = owner.trim_end_matches('.');
    if owner == TLSRPT_OWNER {
        return None;
    }
    let legacy = owner == LEGACY_TLSRPT_OWNER;
    Some(
        Finding::new(
            if legacy {
                Code::TlsRptTxtLegacyName
            } else {
                Code::TlsRptTxtWrongName
            },
            if legacy {
                Severity::Warning
            } else {
                Severity::Error
            },
            subject.clone().at(format!("{owner} TXT")),
            if legacy {
                format!(
                    "{owner} is the name an early draft of RFC 8460 used; senders look up only \
                     {TLSRPT_OWNER}, so reports are not sent"
                )
            } else {
                format!("senders look up TLS-RPT records only at {TLSRPT_OWNER}, not at {owner}")
            },
        )
        .with_fix(format!(
            "publish the record at {TLSRPT_OWNER}.<domain> (and remove the one at {owner})"
        )),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mtasts::select_sts;

    fn codes(findings: &[Finding]) -> Vec<&str> {
        findings.iter().map(|f| f.code.as_ref()).collect()
    }

    #[test]
    fn conclusions_become_findings() {
        let subject = Subject::default();
        let cases: &[(&[&str], &[&str])] = &[
            (&["v=STSv1; id=1"], &[]),
            (&["v=STSv1; id=1", "v=spf1 -all"], &[]),
            (&["v=STSv1; id=1", "v=STSv1; id=2"], &["sts.txt.several"]),
            (&["v=spf1 -all"], &["sts.txt.none"]),
            (&["v=STSv1; id=a-b"], &["sts.txt.invalid"]),
            (&["V=STSv1; id=1"], &["sts.txt.discarded"]),
            (&["v=STSv1"], &["sts.txt.discarded"]),
            (&["v=STSv1 ; id=1"], &["sts.txt.space-before-delimiter"]),
            (&["v=STSv1; id=1; id=2"], &["sts.txt.ignored-field"]),
            (
                &["v=STSv1; id=1", "v=STSv1; id=x-"],
                &["sts.txt.invalid", "sts.txt.several"],
            ),
        ];
        for (records, want) in cases {
            let records: Vec<String> = records.iter().map(|s| (*s).to_owned()).collect();
            let sel = select_sts(&records);
            let ignored = sel.record().map(|r| r.ignored.clone()).unwrap_or_default();
            let f = selection_findings(
                RecordKind::MtaSts,
                &sel,
                &ignored,
                &subject,
                WhenAbsent::Error,
            );
            assert_eq!(codes(&f), *want, "{records:?}");
        }
    }

    #[test]
    fn record_locations_name_the_record() {
        let records = vec!["v=spf1 -all".to_owned(), "v=STSv1; id=a_b".to_owned()];
        let sel = select_sts(&records);
        let f = selection_findings(
            RecordKind::MtaSts,
            &sel,
            &[],
            &Subject::default(),
            WhenAbsent::Error,
        );
        assert_eq!(f.len(), 1);
        assert_eq!(
            f[0].subject
                .location
                .as_ref()
                .map(ToString::to_string)
                .as_deref(),
            Some("_mta-sts TXT record 2 of 2")
        );
    }

    #[test]
    fn tlsrpt_owner_names() {
        let s = Subject::default();
        assert!(tlsrpt_owner_finding("_smtp._tls", &s).is_none());
        assert!(tlsrpt_owner_finding("_smtp._tls.", &s).is_none());
        let legacy = tlsrpt_owner_finding("_smtp-tlsrpt", &s).unwrap();
        assert_eq!(legacy.code, "tlsrpt.txt.legacy-name");
        assert_eq!(legacy.severity, Severity::Warning);
        let wrong = tlsrpt_owner_finding("_tlsrpt", &s).unwrap();
        assert_eq!(wrong.code, "tlsrpt.txt.wrong-name");
        assert_eq!(wrong.severity, Severity::Error);
    }
}
