//! Findings about the `_mta-sts` (RFC 8461 §3.1) and `_smtp._tls` (RFC 8460 §3) TXT record
//! sets: what a sender concludes from the set, and every diagnostic worth fixing.
//!
//! Shared by `mxprobe lint` (records typed by hand) and the scan (records from DNS). Pure.

use std::fmt::Display;

use crate::finding::{Finding, Severity, Subject};
use crate::tagvalue::{Conclusion, IgnoredField, Selection, SelectionNote};

/// Which of the two records a set is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    /// `_mta-sts.<domain>` (RFC 8461 §3.1).
    MtaSts,
    /// `_smtp._tls.<domain>` (RFC 8460 §3).
    TlsRpt,
}

impl RecordKind {
    fn code_prefix(self) -> &'static str {
        match self {
            Self::MtaSts => "sts.txt",
            Self::TlsRpt => "tlsrpt.txt",
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

fn code(kind: RecordKind, suffix: &str) -> String {
    format!("{}.{suffix}", kind.code_prefix())
}

fn at(kind: RecordKind, subject: &Subject, index: usize, total: usize) -> Subject {
    if total == 1 {
        subject.clone().at(format!("{} TXT", kind.owner()))
    } else {
        subject
            .clone()
            .at(format!("{} TXT record {} of {total}", kind.owner(), index + 1))
    }
}

/// Findings for one record set. `ignored` gives the fields the chosen record ignored
/// (duplicates), if one was chosen.
pub fn selection_findings<R, E: Display>(
    kind: RecordKind,
    selection: &Selection<R, E>,
    ignored: &[IgnoredField],
    subject: &Subject,
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
                        code(kind, "discarded"),
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
                    code(kind, "space-before-delimiter"),
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
                    code(kind, "invalid"),
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
                        code(kind, "ignored-field"),
                        Severity::Warning,
                        at(kind, subject, *index, total),
                        field.to_string(),
                    )
                    .with_fix("remove the repeated field"),
                );
            }
        }
        Conclusion::None if lookalikes == 0 => out.push(
            Finding::new(
                code(kind, "none"),
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
                    code(kind, "several"),
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
                code(kind, "invalid"),
                Severity::Error,
                at(kind, subject, *index, total),
                format!("{error}; {}", kind.without()),
            )
            .with_fix(format!("correct the record, e.g. \"{}\"", kind.example())),
        ),
    }
    out
}
