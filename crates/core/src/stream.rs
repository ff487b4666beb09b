//! Streaming results of long scans: JSON Lines written as each domain finishes, a CSV
//! summary, and reading a JSON Lines file back to resume an interrupted run.
//!
//! Every line is built in memory and written with one `write_all` followed by a flush, so a
//! reader never sees half a line from a live writer; a run killed mid-write can leave a
//! truncated last line, which [`resume_state`] detects and cuts off.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use crate::csv_cell;
use crate::domain::DomainName;
use crate::evaluate::verdict::{DomainVerdict, SessionResult, Status};
use crate::finding::{Counts, Finding, Severity};
use crate::result::DomainResult;

/// The version of the JSON Lines records.
pub const JSONL_SCHEMA_VERSION: u32 = 2;

/// One JSON Lines record. Tagged by `type`.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Record<'a> {
    /// A scanned domain: its facts and verdict.
    Domain {
        /// [`JSONL_SCHEMA_VERSION`].
        schema_version: u32,
        /// The input line (or argument position) the domain came from.
        line: usize,
        /// The domain.
        domain: &'a DomainName,
        /// The facts and the verdict.
        #[serde(flatten)]
        report: &'a DomainResult,
    },
    /// An input row that is not a domain.
    Invalid {
        /// [`JSONL_SCHEMA_VERSION`].
        schema_version: u32,
        /// The input line.
        line: usize,
        /// The text of the row.
        input: &'a str,
        /// Why it is not a domain.
        error: &'a str,
    },
    /// The last record of a run.
    Summary {
        /// [`JSONL_SCHEMA_VERSION`].
        schema_version: u32,
        /// Domains scanned in this run.
        domains: usize,
        /// Invalid input rows.
        invalid: usize,
        /// Domains with an error finding.
        failing: usize,
        /// Domains where something could not be tested.
        inconclusive: usize,
        /// Domains abandoned by an interruption (a `--resume` run scans them).
        abandoned: usize,
        /// Whether the run was interrupted.
        interrupted: bool,
    },
}

/// Writes JSON Lines, one record per line, each flushed at once.
#[derive(Debug)]
pub struct JsonlWriter<W: Write> {
    out: W,
    buf: Vec<u8>,
}

impl<W: Write> JsonlWriter<W> {
    /// A writer over `out`.
    pub fn new(out: W) -> Self {
        Self {
            out,
            buf: Vec::with_capacity(16 * 1024),
        }
    }

    /// Writes one record as one line.
    pub fn write(&mut self, record: &Record<'_>) -> io::Result<()> {
        self.buf.clear();
        serde_json::to_writer(&mut self.buf, record)?;
        self.buf.push(b'\n');
        self.out.write_all(&self.buf)?;
        self.out.flush()
    }
}

/// What an earlier (interrupted) run already wrote.
#[derive(Debug, Default)]
pub struct ResumeState {
    /// Domains with a complete `domain` record: skipped by the new run.
    pub done: HashSet<DomainName>,
    /// How many of them have a finding that fails at the `fail_on` severity given to
    /// [`resume_state`] ([`Finding::fails`]): the resumed run's exit status counts them.
    pub failing: u64,
    /// How many of them were inconclusive.
    pub inconclusive: u64,
    /// The worst of their statuses at `fail_on`: the resumed run starts from it.
    pub status: Status,
    /// Bytes of a truncated last line that were cut off.
    pub truncated_bytes: u64,
}

/// The longest line [`resume_state`] reads: far above any record mxprobe writes (findings
/// are capped per domain), so a longer one is not from mxprobe.
pub const MAX_RESUME_LINE_BYTES: usize = 64 * 1024 * 1024;

/// Reads a JSON Lines file written by an earlier run, collects the domains it finished (and
/// whether each failed at `fail_on` or was inconclusive), cuts off a truncated or unparsable
/// last line, and returns the file opened for appending. A missing file is an empty state and
/// a new file.
pub fn resume_state(path: &Path, fail_on: Severity) -> Result<(ResumeState, File), ResumeError> {
    let err = |source| ResumeError::Io {
        path: path.to_owned(),
        source,
    };
    let mut state = ResumeState::default();
    let mut file = OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .open(path)
        .map_err(err)?;
    let mut good_end: u64 = 0;
    let mut reader = BufReader::new(&mut file);
    let mut line = Vec::new();
    let mut number = 0usize;
    loop {
        line.clear();
        let cap = u64::try_from(MAX_RESUME_LINE_BYTES).unwrap_or(u64::MAX);
        let n = (&mut reader)
            .take(cap)
            .read_until(b'\n', &mut line)
            .map_err(err)?;
        if n == 0 {
            break;
        }
        number += 1;
        if n >= MAX_RESUME_LINE_BYTES && !line.ends_with(b"\n") {
            return Err(ResumeError::Corrupt {
                path: path.to_owned(),
                line: number,
            });
        }
        let complete = line.ends_with(b"\n");
        let parsed: Option<Value> = serde_json::from_slice(&line).ok();
        match parsed {
            Some(v) if complete => {
                good_end += n as u64;
                if let Some(d) = v["facts"]["domain"]
                    .as_str()
                    .filter(|_| v["type"] == "domain")
                {
                    let corrupt = || ResumeError::Corrupt {
                        path: path.to_owned(),
                        line: number,
                    };
                    let d = DomainName::parse(d).map_err(|_| corrupt())?;
                    let findings: Vec<Finding> =
                        serde_json::from_value(v["verdict"]["findings"].clone())
                            .map_err(|_| corrupt())?;
                    if state.done.insert(d) {
                        let inconclusive = v["verdict"]["inconclusive"] == true;
                        let status = Status::of(&findings, inconclusive, fail_on);
                        state.failing += u64::from(status == Status::Fail);
                        state.inconclusive += u64::from(inconclusive);
                        state.status = state.status.max(status);
                    }
                }
            }
            _ => {
                // Only the last line may be damaged (the writer flushes whole lines).
                let rest = reader.fill_buf().map_err(err)?;
                if !rest.is_empty() {
                    return Err(ResumeError::Corrupt {
                        path: path.to_owned(),
                        line: number,
                    });
                }
                state.truncated_bytes = n as u64;
                break;
            }
        }
    }
    drop(reader);
    if state.truncated_bytes > 0 {
        file.set_len(good_end).map_err(err)?;
    }
    file.seek(SeekFrom::End(0)).map_err(err)?;
    Ok((state, file))
}

/// Why a JSON Lines file cannot be resumed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResumeError {
    /// Reading or truncating failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A line other than the last is not a record mxprobe wrote.
    #[error(
        "{path}, line {line}: not a JSON Lines record written by mxprobe; resume only with the \
         file an earlier run wrote"
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The 1-based line.
        line: usize,
    },
}

/// The one-word status of a domain in summaries: its status at error severity, a passing
/// one with warnings being `warn`.
pub fn status_word(v: &DomainVerdict) -> &'static str {
    match (v.status(Severity::Error), v.worst()) {
        (Status::Fail, _) => "fail",
        (Status::Inconclusive, _) => "inconclusive",
        (Status::Pass, Some(Severity::Warning | Severity::Error)) => "warn",
        (Status::Pass, _) => "ok",
    }
}

/// The CSV summary header.
pub const CSV_HEADER: [&str; 10] = [
    "domain",
    "status",
    "policy",
    "mode",
    "mx_count",
    "worst_result",
    "errors",
    "warnings",
    "notices",
    "findings",
];

/// One CSV summary row per domain (RFC 4180 quoting). Text cells follow the rule of
/// [`crate::csv_cell`]; the count columns are plain integers.
#[derive(Debug)]
pub struct CsvWriter<W: Write> {
    out: W,
}

impl<W: Write> CsvWriter<W> {
    /// Writes the header and returns the writer.
    pub fn new(mut out: W) -> io::Result<Self> {
        write_row(&mut out, &CSV_HEADER.map(String::from))?;
        Ok(Self { out })
    }

    /// Writes the row of a scanned domain.
    pub fn domain(&mut self, report: &DomainResult) -> io::Result<()> {
        let v = &report.verdict;
        let counts = Counts::of(&v.findings);
        let policy = if v
            .sessions
            .iter()
            .any(|s| s.policy_type == crate::tlsrpt::PolicyType::Tlsa)
        {
            "dane"
        } else if v.sts.policy.is_some() {
            "sts"
        } else {
            "none"
        };
        let mode = v
            .sts
            .policy
            .as_ref()
            .map(|p| p.mode.as_str())
            .unwrap_or_default();
        let worst_result = v
            .sessions
            .iter()
            .find_map(|s| match &s.result {
                SessionResult::Failure { failures } => {
                    failures.first().map(|f| f.result_type.as_str())
                }
                _ => None,
            })
            .or_else(|| v.sts.failure.as_ref().map(|f| f.result_type.as_str()))
            .unwrap_or_default();
        let mut codes: Vec<&str> = v.findings.iter().map(|f| f.code.as_ref()).collect();
        codes.dedup();
        write_row(
            &mut self.out,
            &[
                csv_cell::text(v.domain.as_str()).into_owned(),
                status_word(v).to_owned(),
                policy.to_owned(),
                csv_cell::text(mode).into_owned(),
                report.facts.hosts.len().to_string(),
                csv_cell::text(worst_result).into_owned(),
                counts.error.to_string(),
                counts.warning.to_string(),
                counts.notice.to_string(),
                csv_cell::text(&codes.join(" ")).into_owned(),
            ],
        )?;
        self.out.flush()
    }

    /// Writes the row of an invalid input line.
    pub fn invalid(&mut self, input: &str, error: &str) -> io::Result<()> {
        write_row(
            &mut self.out,
            &[
                csv_cell::text(input).into_owned(),
                "invalid".to_owned(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                csv_cell::text(error).into_owned(),
            ],
        )?;
        self.out.flush()
    }
}

fn write_row(out: &mut impl Write, fields: &[String]) -> io::Result<()> {
    let mut line = String::new();
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            line.push(',');
        }
        if f.contains([',', '"', '\n', '\r']) {
            line.push('"');
            line.push_str(&f.replace('"', "\"\""));
            line.push('"');
        } else {
            line.push_str(f);
        }
    }
    line.push_str("\r\n");
    out.write_all(line.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("mxprobe-stream-{}-{name}", std::process::id()))
    }

    #[test]
    fn csv_quoting() {
        let mut out = Vec::new();
        write_row(
            &mut out,
            &["a".to_owned(), "b,c".to_owned(), "say \"hi\"".to_owned()],
        )
        .unwrap();
        assert_eq!(out, b"a,\"b,c\",\"say \"\"hi\"\"\"\r\n");
    }

    #[test]
    fn invalid_rows_are_written_inert() {
        let mut w = CsvWriter::new(Vec::new()).unwrap();
        w.invalid(
            "=cmd|' /C calc'!A0\u{1b}[2J\u{7}\0",
            "not a domain name: \u{1b}",
        )
        .unwrap();
        w.invalid("-2+3", "x").unwrap();
        let text = String::from_utf8(w.out).unwrap();
        let rows: Vec<&str> = text.lines().collect();
        assert_eq!(
            rows[1],
            "'=cmd|' /C calc'!A0\u{FFFD}[2J\u{FFFD}\u{FFFD},invalid,,,,,,,,not a domain name: \u{FFFD}"
        );
        assert!(rows[2].starts_with("'-2+3,invalid,"), "{}", rows[2]);
        assert!(!text.contains(['\u{1b}', '\u{7}', '\0']));
    }

    #[test]
    fn resume_cuts_a_truncated_last_line_and_collects_done_domains() {
        let path = temp("resume.jsonl");
        let cut = "{\"type\":\"domain\",\"facts\":{\"domain\":\"b.exa";
        std::fs::write(
            &path,
            format!(
                "{{\"type\":\"domain\",\"facts\":{{\"domain\":\"a.example\"}},\
                 \"verdict\":{{\"findings\":[],\"inconclusive\":false}}}}\n\
                 {{\"type\":\"invalid\",\"line\":2,\"input\":\"x\",\"error\":\"e\"}}\n{cut}"
            ),
        )
        .unwrap();
        let (state, mut file) = resume_state(&path, Severity::Error).unwrap();
        assert_eq!(state.done.len(), 1);
        assert!(
            state
                .done
                .contains(&DomainName::parse("a.example").unwrap())
        );
        assert_eq!(state.truncated_bytes, cut.len() as u64);
        file.write_all(b"{\"type\":\"summary\"}\n").unwrap();
        drop(file);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.ends_with("\"error\":\"e\"}\n{\"type\":\"summary\"}\n"),
            "{text}"
        );
        std::fs::remove_file(&path).unwrap();
    }

    /// The domains an interrupted run found failing count in the resumed run's exit status.
    #[test]
    fn resume_counts_failing_and_inconclusive_domains() {
        let path = temp("failing.jsonl");
        let finding = |severity: &str, inconclusive: bool| {
            format!(
                "{{\"code\":\"x.y\",\"severity\":\"{severity}\",\"subject\":{{}},\
                 \"message\":\"m\",\"inconclusive\":{inconclusive}}}"
            )
        };
        let record = |domain: &str, findings: &[String], inconclusive: bool| {
            format!(
                "{{\"type\":\"domain\",\"facts\":{{\"domain\":\"{domain}\"}},\
                 \"verdict\":{{\"findings\":[{}],\"inconclusive\":{inconclusive}}}}}\n",
                findings.join(",")
            )
        };
        std::fs::write(
            &path,
            [
                record("a.example", &[finding("error", false)], false),
                record("b.example", &[finding("warning", false)], false),
                record("c.example", &[finding("error", true)], true),
                record("d.example", &[], false),
            ]
            .concat(),
        )
        .unwrap();
        let (at_error, _) = resume_state(&path, Severity::Error).unwrap();
        assert_eq!(
            (at_error.done.len(), at_error.failing, at_error.inconclusive),
            (4, 1, 1)
        );
        assert_eq!(at_error.status, Status::Fail);
        let (at_warning, _) = resume_state(&path, Severity::Warning).unwrap();
        assert_eq!(at_warning.failing, 2);
        // Without a's failure, c's could-not-test error leaves the run inconclusive.
        std::fs::write(
            &path,
            [
                record("b.example", &[finding("warning", false)], false),
                record("c.example", &[finding("error", true)], true),
            ]
            .concat(),
        )
        .unwrap();
        let (without_a, _) = resume_state(&path, Severity::Error).unwrap();
        assert_eq!(without_a.status, Status::Inconclusive);
        let (at_warning, _) = resume_state(&path, Severity::Warning).unwrap();
        assert_eq!(at_warning.status, Status::Fail);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn resume_refuses_damage_before_the_last_line() {
        let path = temp("corrupt.jsonl");
        std::fs::write(&path, "not json\n{\"type\":\"summary\"}\n").unwrap();
        assert!(matches!(
            resume_state(&path, Severity::Error),
            Err(ResumeError::Corrupt { line: 1, .. })
        ));
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn resume_of_a_missing_file_starts_empty() {
        let path = temp("missing.jsonl");
        let _ = std::fs::remove_file(&path);
        let (state, _) = resume_state(&path, Severity::Error).unwrap();
        assert!(state.done.is_empty());
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn jsonl_records_are_single_lines() {
        let mut w = JsonlWriter::new(Vec::new());
        w.write(&Record::Invalid {
            schema_version: 1,
            line: 3,
            input: "a\nb",
            error: "bad",
        })
        .unwrap();
        w.write(&Record::Summary {
            schema_version: 1,
            domains: 0,
            invalid: 1,
            failing: 0,
            inconclusive: 0,
            abandoned: 0,
            interrupted: false,
        })
        .unwrap();
        let text = String::from_utf8(w.out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        for l in lines {
            let v: Value = serde_json::from_str(l).unwrap();
            assert!(v["type"].is_string());
        }
    }
}
