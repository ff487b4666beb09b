//! Human-readable text for findings, shared by every command that prints them.
//!
//! Writes to any `io::Write`; colour is decided by the caller (an `anstream` stream strips
//! the styles when the output is not a terminal or `NO_COLOR` is set). Pure apart from the
//! writer it is given.

use std::io::{self, Write};

use anstyle::{AnsiColor, Style};

use crate::finding::{Finding, Severity};

const BOLD: Style = Style::new().bold();
const DIM: Style = Style::new().dimmed();

fn severity_style(s: Severity) -> Style {
    let color = match s {
        Severity::Error => AnsiColor::Red,
        Severity::Warning => AnsiColor::Yellow,
        Severity::Notice => AnsiColor::Cyan,
    };
    Style::new().fg_color(Some(color.into())).bold()
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

/// Writes one finding as an indented block:
///
/// ```text
/// error  sts.policy.mx-not-covered  example.com, MX mx2.example.com
///        MX mx2.example.com is not covered by any mx pattern of the policy …
///        fix: add "mx: mx2.example.com" to the policy …
///        senders report: validation-failure (sts), mx-not-covered
/// ```
pub fn write_finding(w: &mut dyn Write, f: &Finding) -> io::Result<()> {
    let sev = severity_style(f.severity);
    write!(
        w,
        "{sev}{:<7}{sev:#} {BOLD}{}{BOLD:#}",
        f.severity.as_str(),
        f.code
    )?;
    let subject = f.subject.to_string();
    if !subject.is_empty() {
        write!(w, "  {subject}")?;
    }
    writeln!(w)?;
    writeln!(w, "        {}", f.message)?;
    if let Some(fix) = &f.fix {
        writeln!(w, "        {DIM}fix:{DIM:#} {fix}")?;
    }
    if let Some(rt) = f.result_type {
        write!(w, "        {DIM}senders report:{DIM:#} {rt}")?;
        if let Some(pt) = f.policy_type {
            write!(w, " ({pt})")?;
        }
        if let Some(code) = &f.failure_reason_code {
            write!(w, ", {code}")?;
        }
        writeln!(w)?;
    }
    Ok(())
}

/// Writes findings, most severe first (stable within a severity), separated by blank lines.
pub fn write_findings(w: &mut dyn Write, findings: &[Finding]) -> io::Result<()> {
    let mut sorted: Vec<&Finding> = findings.iter().collect();
    sorted.sort_by_key(|f| std::cmp::Reverse(f.severity));
    for (i, f) in sorted.into_iter().enumerate() {
        if i > 0 {
            writeln!(w)?;
        }
        write_finding(w, f)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::Subject;
    use crate::tlsrpt::{PolicyType, ResultType};

    #[test]
    fn plain_text_block() {
        let f = Finding::new(
            "sts.policy.mx-not-covered",
            Severity::Error,
            Subject::location("--mx mx2.example.com"),
            "not covered",
        )
        .with_fix("add it")
        .with_result(PolicyType::Sts, ResultType::ValidationFailure)
        .with_reason_code("mx-not-covered");
        let n = Finding::new("x.y", Severity::Notice, Subject::default(), "fyi");
        let mut out = anstream::StripStream::new(Vec::new());
        write_findings(&mut out, &[n, f]).unwrap();
        let text = String::from_utf8(out.into_inner()).unwrap();
        assert_eq!(
            text,
            "error   sts.policy.mx-not-covered  --mx mx2.example.com\n        not covered\n        fix: add it\n        senders report: validation-failure (sts), mx-not-covered\n\nnotice  x.y\n        fyi\n"
        );
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
}
