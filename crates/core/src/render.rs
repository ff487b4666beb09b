//! Human-readable text for findings, shared by every command that prints them, and the text
//! of a `lint` report.
//!
//! Writes to any `io::Write`; colour is decided by the caller (an `anstream` stream strips
//! the styles when the output is not a terminal or `NO_COLOR` is set). Pure apart from the
//! writer it is given.

use std::io::{self, Write};

use anstyle::{AnsiColor, Style};

use crate::evaluate::records::RecordOutcome;
use crate::finding::{Finding, Severity};
use crate::lint::LintReport;

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

/// Writes one finding as an indented block:
///
/// ```text
/// error  sts.policy.mx-not-covered  example.com, MX mx2.example.com
///        MX mx2.example.com is not covered by any mx pattern of the policy …
///        fix: add "mx: mx2.example.com" to the policy …
///        senders report: validation-failure (sts), mx-not-covered
/// ```
///
/// The text lines are wrapped to `width` columns, continued under their first word.
pub fn write_finding(w: &mut dyn Write, f: &Finding, width: usize) -> io::Result<()> {
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
    write_wrapped(w, &f.message, width)?;
    if let Some(fix) = &f.fix {
        write_wrapped(w, &format!("{DIM}fix:{DIM:#} {fix}"), width)?;
    }
    if let Some(rt) = f.result_type {
        let mut line = format!("{DIM}senders report:{DIM:#} {rt}");
        if let Some(pt) = f.policy_type {
            line.push_str(&format!(" ({pt})"));
        }
        if let Some(code) = &f.failure_reason_code {
            line.push_str(&format!(", {code}"));
        }
        write_wrapped(w, &line, width)?;
    }
    Ok(())
}

/// The indent of a finding's text lines.
const TEXT_INDENT: &str = "        ";

/// Writes `text` indented, wrapped to `width` columns (styles take no width; a word longer
/// than the line stays whole).
fn write_wrapped(w: &mut dyn Write, text: &str, width: usize) -> io::Result<()> {
    let options = textwrap::Options::new(width.max(TEXT_INDENT.len() + 20))
        .initial_indent(TEXT_INDENT)
        .subsequent_indent(TEXT_INDENT)
        .break_words(false)
        .word_splitter(textwrap::WordSplitter::NoHyphenation);
    for line in textwrap::wrap(text, options) {
        writeln!(w, "{}", line.trim_end())?;
    }
    Ok(())
}

/// Writes findings, most severe first (stable within a severity), separated by blank lines.
pub fn write_findings(w: &mut dyn Write, findings: &[Finding], width: usize) -> io::Result<()> {
    let mut sorted: Vec<&Finding> = findings.iter().collect();
    sorted.sort_by_key(|f| std::cmp::Reverse(f.severity));
    for (i, f) in sorted.into_iter().enumerate() {
        if i > 0 {
            writeln!(w)?;
        }
        write_finding(w, f, width)?;
    }
    Ok(())
}

/// Writes a `lint` report for people.
pub fn write_lint_report(w: &mut dyn Write, report: &LintReport, width: usize) -> io::Result<()> {
    let bold = Style::new().bold();
    match &report.domain {
        Some(d) => writeln!(w, "{bold}mxprobe lint{bold:#}: {d}")?,
        None => writeln!(w, "{bold}mxprobe lint{bold:#}")?,
    }
    writeln!(w)?;
    if let Some(s) = &report.sts_record {
        let detail = match (&s.outcome, &s.id) {
            (RecordOutcome::Valid, Some(id)) => format!("valid, id {id}"),
            (o, _) => outcome_text(*o).to_owned(),
        };
        writeln!(w, "  _mta-sts TXT    {detail}")?;
    }
    if let Some(p) = &report.policy {
        let patterns: Vec<String> = p.mx.iter().map(ToString::to_string).collect();
        let detail = match (p.valid, p.mode, p.max_age) {
            (true, Some(mode), Some(max_age)) => format!(
                "valid, mode {mode}, max_age {max_age}, mx {}",
                if patterns.is_empty() {
                    "none".to_owned()
                } else {
                    patterns.join(", ")
                }
            ),
            _ => "INVALID".to_owned(),
        };
        writeln!(w, "  policy          {detail}")?;
    }
    if let Some(t) = &report.tlsrpt_record {
        let detail = match t.outcome {
            RecordOutcome::Valid => format!("valid, rua {}", t.rua.join(", ")),
            o => outcome_text(o).to_owned(),
        };
        writeln!(w, "  _smtp._tls TXT  {detail}")?;
        for d in &report.tlsrpt_destinations {
            writeln!(w, "    {}  {}", d.uri, d.delivery)?;
        }
    }
    if !report.mx_coverage.is_empty() {
        writeln!(w, "  MX coverage")?;
        let width = report
            .mx_coverage
            .iter()
            .map(|c| c.mx.as_str().len())
            .max()
            .unwrap_or(0);
        for c in &report.mx_coverage {
            match &c.covered_by {
                Some(p) => writeln!(w, "    {:<width$}  covered by {p}", c.mx.as_str())?,
                None => writeln!(w, "    {:<width$}  NOT COVERED", c.mx.as_str())?,
            }
        }
    }
    writeln!(w)?;
    if !report.findings.is_empty() {
        write_findings(w, &report.findings, width)?;
        writeln!(w)?;
    }
    writeln!(w, "{}", report.counts.summary())
}

fn outcome_text(o: RecordOutcome) -> &'static str {
    match o {
        RecordOutcome::Valid => "valid",
        RecordOutcome::None => "NONE (no record of this kind)",
        RecordOutcome::Several => "SEVERAL (senders use none)",
        RecordOutcome::Invalid => "INVALID (senders use none)",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::{Code, Subject};
    use crate::tlsrpt::{PolicyType, ResultType};

    #[test]
    fn plain_text_block() {
        let f = Finding::new(
            Code::StsPolicyMxNotCovered,
            Severity::Error,
            Subject::location("--mx mx2.example.com"),
            "not covered",
        )
        .with_fix("add it")
        .with_result(PolicyType::Sts, ResultType::ValidationFailure)
        .with_reason_code("mx-not-covered");
        let n = Finding::new(Code::MxNull, Severity::Notice, Subject::default(), "fyi");
        let mut out = anstream::StripStream::new(Vec::new());
        write_findings(&mut out, &[n, f], 80).unwrap();
        let text = String::from_utf8(out.into_inner()).unwrap();
        assert_eq!(
            text,
            "error   sts.policy.mx-not-covered  --mx mx2.example.com\n        not covered\n        fix: add it\n        senders report: validation-failure (sts), mx-not-covered\n\nnotice  mx.null\n        fyi\n"
        );
    }

    #[test]
    fn long_text_wraps_with_a_hanging_indent_and_styles_take_no_width() {
        let message = "the certificate of mx.example.com expired at 2026-11-22T09:35:59Z; in \
                       enforce mode senders will not deliver to mx.example.com";
        let f = Finding::new(Code::MxNull, Severity::Error, Subject::default(), message)
            .with_fix("renew the certificate of mx.example.com (and automate renewal)");
        for (width, styled) in [(40, false), (60, false), (60, true)] {
            let mut out = Vec::new();
            write_finding(&mut out, &f, width).unwrap();
            let text = String::from_utf8(out).unwrap();
            let plain = anstream::adapter::strip_str(&text).to_string();
            if styled {
                assert_ne!(text, plain, "styles are kept in the raw output");
            }
            let lines: Vec<&str> = plain.lines().skip(1).collect();
            assert!(lines.len() > 3, "{plain}");
            for line in &lines {
                assert!(line.chars().count() <= width, "{width}: {line:?}");
                assert!(line.starts_with("        ") && !line.starts_with("         "));
            }
            // Nothing lost: the words are those of the message and the fix, in order.
            let words: Vec<&str> = lines.iter().flat_map(|l| l.split_whitespace()).collect();
            let want: Vec<&str> = message
                .split_whitespace()
                .chain(["fix:"])
                .chain(f.fix.as_deref().unwrap().split_whitespace())
                .collect();
            assert_eq!(words, want);
        }
    }
}
