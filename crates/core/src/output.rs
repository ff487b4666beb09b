//! Writing scan results: text for people, one JSON document for programs, and synthetic
//! RFC 8460 report files. Writers read verdicts; they never recompute them.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anstyle::{AnsiColor, Style};
use serde::Serialize;
use time::OffsetDateTime;

use crate::dns::Lookup;
use crate::domain::DomainName;
use crate::evaluate::records::RecordOutcome;
use crate::evaluate::rua::Delivery;
use crate::evaluate::verdict::Status;
use crate::evaluate::verdict::{Routing, SessionResult};
use crate::finding::{Counts, Severity};
use crate::render::write_findings;
use crate::result::DomainResult;
use crate::synthetic_report::{build_report, file_name};
use crate::tlsrpt::PolicyType;
use crate::tlsrpt::report::DateRange;

/// The version of the `scan --format json` document.
pub const SCHEMA_VERSION: u32 = 2;

/// The `scan --format json` document.
#[derive(Debug, Serialize)]
pub struct ScanDocument<'a> {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// When the scan started.
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    /// Findings by severity, over all domains.
    pub counts: Counts,
    /// One entry per domain, in the order given: `facts` and `verdict`.
    pub domains: &'a [DomainResult],
}

/// Writes the JSON document.
pub fn write_json(
    w: &mut dyn Write,
    started_at: OffsetDateTime,
    reports: &[DomainResult],
) -> io::Result<()> {
    let all: Vec<_> = reports
        .iter()
        .flat_map(|r| r.verdict.findings.iter().cloned())
        .collect();
    let doc = ScanDocument {
        schema_version: SCHEMA_VERSION,
        started_at,
        counts: Counts::of(&all),
        domains: reports,
    };
    serde_json::to_writer_pretty(&mut *w, &doc)?;
    writeln!(w)
}

fn style(c: AnsiColor) -> Style {
    Style::new().fg_color(Some(c.into())).bold()
}

/// The word a domain's block is headed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tag {
    Ok,
    /// Passing, with warnings.
    Warn,
    Fail,
    Inconclusive,
}

impl Tag {
    /// The tag of a scanned domain: its status at `--fail-on error`.
    pub fn of(report: &DomainResult) -> Self {
        let v = &report.verdict;
        match (v.status(Severity::Error), v.worst()) {
            (Status::Fail, _) => Self::Fail,
            (Status::Inconclusive, _) => Self::Inconclusive,
            (Status::Pass, Some(Severity::Warning | Severity::Error)) => Self::Warn,
            (Status::Pass, _) => Self::Ok,
        }
    }

    pub const fn word(self) -> &'static str {
        match self {
            Self::Ok => "OK",
            Self::Warn => "WARN",
            Self::Fail => "FAIL",
            Self::Inconclusive => "INCONCLUSIVE",
        }
    }

    fn style(self) -> Style {
        match self {
            Self::Ok => style(AnsiColor::Green),
            Self::Warn | Self::Inconclusive => style(AnsiColor::Yellow),
            Self::Fail => style(AnsiColor::Red),
        }
    }
}

/// What the closing line of the text output counts: each domain once, by its tag, and the
/// findings by severity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub ok: usize,
    pub warn: usize,
    pub fail: usize,
    pub inconclusive: usize,
    pub findings: Counts,
    /// Input rows that are not domains.
    pub invalid: usize,
}

impl Totals {
    /// Counts a scanned domain.
    pub fn add(&mut self, report: &DomainResult) {
        match Tag::of(report) {
            Tag::Ok => self.ok += 1,
            Tag::Warn => self.warn += 1,
            Tag::Fail => self.fail += 1,
            Tag::Inconclusive => self.inconclusive += 1,
        }
        let c = Counts::of(&report.verdict.findings);
        self.findings.error += c.error;
        self.findings.warning += c.warning;
        self.findings.notice += c.notice;
    }

    /// Counts a domain that ended without a report (inconclusive).
    pub fn add_not_tested(&mut self) {
        self.inconclusive += 1;
    }
}

/// Writes one domain for people: the policies, every MX address with its verdict, findings
/// (wrapped to `width` columns).
pub fn write_domain(w: &mut dyn Write, report: &DomainResult, width: usize) -> io::Result<()> {
    let v = &report.verdict;
    let bold = Style::new().bold();
    let tag = Tag::of(report);
    let (tag, tag_style) = (tag.word(), tag.style());
    writeln!(
        w,
        "{bold}{}{bold:#}  {tag_style}{tag}{tag_style:#}",
        v.domain
    )?;
    if report.facts.resolver_problem.is_some() {
        // Nothing the resolver said was judged (see the finding).
        let line = "not judged: the resolver cannot be used";
        writeln!(
            w,
            "  MTA-STS   {line}\n  TLS-RPT   {line}\n  MX        {line}"
        )?;
    } else {
        writeln!(w, "  MTA-STS   {}", sts_line(report))?;
        writeln!(w, "  TLS-RPT   {}", tlsrpt_line(report))?;
        match v.routing {
            Routing::NullMx => writeln!(w, "  MX        null MX: the domain accepts no mail")?,
            Routing::NoSuchDomain => writeln!(w, "  MX        the domain does not exist")?,
            Routing::Unknown if matches!(report.facts.mx, Lookup::Bogus { .. }) => writeln!(
                w,
                "  MX        DNSSEC-bogus: validating senders cannot route mail to the domain"
            )?,
            Routing::Unknown => writeln!(w, "  MX        could not be resolved")?,
            Routing::ImplicitMx | Routing::Mx => {}
        }
    }
    for host in &report.facts.hosts {
        let implicit = if host.implicit { " (implicit MX)" } else { "" };
        writeln!(w, "  MX {:>5} {}{implicit}", host.preference, host.exchange)?;
        let sessions: Vec<_> = v
            .sessions
            .iter()
            .filter(|s| Some(&s.mx) == host.name.as_ref())
            .collect();
        if sessions.is_empty() {
            writeln!(w, "            (no address probed)")?;
        }
        for s in sessions {
            let policy = match s.policy_type {
                PolicyType::Tlsa => "dane",
                PolicyType::Sts => "sts ",
                PolicyType::NoPolicyFound => "none",
            };
            let tls = s.tls_version.as_deref().unwrap_or("no TLS");
            let (word, st, detail) = match &s.result {
                SessionResult::Success => ("pass", style(AnsiColor::Green), tls.to_owned()),
                SessionResult::Failure { failures } => {
                    let list: Vec<String> = failures
                        .iter()
                        .map(|f| format!("{} ({})", f.result_type, f.reason_code))
                        .collect();
                    ("FAIL", style(AnsiColor::Red), list.join(", "))
                }
                SessionResult::Inconclusive { reason } => {
                    ("????", style(AnsiColor::Yellow), reason.clone())
                }
            };
            writeln!(
                w,
                "            {:<39} {policy}  {st}{word}{st:#}  {detail}",
                s.ip.to_string()
            )?;
        }
    }
    for d in &report.deliveries {
        // `scan --deliver-reports`: what each destination answered.
        let (word, st) = if d.accepted {
            ("accepted", style(AnsiColor::Green))
        } else {
            ("REFUSED", style(AnsiColor::Red))
        };
        let tls = match d.tls {
            Some(true) => " over TLS",
            Some(false) => " without TLS",
            None => "",
        };
        writeln!(
            w,
            "  REPORT    {} {st}{word}{st:#} via {}{tls}: {}",
            d.uri, d.via, d.answer
        )?;
    }
    if !v.findings.is_empty() {
        writeln!(w)?;
        let mut indented = Indented {
            inner: w,
            at_line_start: true,
        };
        write_findings(&mut indented, &v.findings, width.saturating_sub(2))?;
    }
    writeln!(w)
}

/// Writes a domain that ended without a report (its deadline passed, an internal error): it
/// is inconclusive, for the reason `why`.
pub fn write_not_tested(w: &mut dyn Write, domain: &DomainName, why: &str) -> io::Result<()> {
    let bold = Style::new().bold();
    let tag = style(AnsiColor::Yellow);
    writeln!(w, "{bold}{domain}{bold:#}  {tag}INCONCLUSIVE{tag:#}")?;
    writeln!(w, "  {why}")?;
    writeln!(w)
}

pub(crate) fn sts_line(report: &DomainResult) -> String {
    let v = &report.verdict;
    let id = v
        .sts
        .id
        .as_deref()
        .map(|i| format!(", id {i}"))
        .unwrap_or_default();
    match (&v.sts.policy, &v.sts.failure, v.sts.record) {
        (Some(p), _, _) if p.mx.is_empty() => {
            format!("mode {}{id}, max_age {}", p.mode, p.max_age)
        }
        (Some(p), _, _) => format!(
            "mode {}{id}, max_age {}, mx {}",
            p.mode,
            p.max_age,
            p.mx.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(" ")
        ),
        (None, Some(f), _) => format!("UNUSABLE{id}: {} ({})", f.result_type, f.reason_code),
        (None, None, Some(RecordOutcome::Valid)) => format!("record only{id} (policy not fetched)"),
        (None, None, Some(RecordOutcome::None)) => "none".to_owned(),
        (None, None, Some(other)) => format!("no usable record ({other:?})").to_lowercase(),
        (None, None, None) => match report.facts.sts_txt {
            Lookup::Bogus { .. } => {
                "DNSSEC-bogus: validating senders cannot read the record".to_owned()
            }
            ref lookup => match lookup.failure() {
                Some(why) => format!("could not tell (DNS failure: {why})"),
                None => "could not tell".to_owned(),
            },
        },
    }
}

/// Where reports go: the usable `rua`, "none" only when the `_smtp._tls` lookup said so, and
/// "could not tell" when it failed (as for MTA-STS: a failed lookup is not "no record").
pub(crate) fn tlsrpt_line(report: &DomainResult) -> String {
    let v = &report.verdict;
    if !v.tlsrpt_rua.is_empty() {
        // Each destination with whether reports can reach it, when it was checked.
        return v
            .tlsrpt_rua
            .iter()
            .map(|uri| {
                match v
                    .tlsrpt_destinations
                    .iter()
                    .find(|d| d.uri == *uri)
                    .filter(|d| d.delivery != Delivery::NotChecked)
                {
                    Some(d) => format!("{uri} ({})", d.delivery),
                    None => uri.clone(),
                }
            })
            .collect::<Vec<_>>()
            .join(", ");
    }
    let lookup = &report.facts.tlsrpt_txt;
    if let Lookup::Bogus { .. } = lookup {
        return "DNSSEC-bogus: validating reporters cannot read the record".to_owned();
    }
    if let Some(why) = lookup.failure() {
        return format!("could not tell (DNS failure: {why})");
    }
    if lookup.records().is_some_and(|r| !r.is_empty()) {
        "no usable record".to_owned()
    } else {
        "none".to_owned()
    }
}

/// Indents every line written through it by two spaces.
struct Indented<'a> {
    inner: &'a mut dyn Write,
    at_line_start: bool,
}

impl Write for Indented<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        for line in buf.split_inclusive(|b| *b == b'\n') {
            if self.at_line_start && line != b"\n" {
                self.inner.write_all(b"  ")?;
            }
            self.inner.write_all(line)?;
            self.at_line_start = line.ends_with(b"\n");
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The closing summary line of a run.
pub fn write_totals(w: &mut dyn Write, t: &Totals) -> io::Result<()> {
    let domains = t.ok + t.warn + t.fail + t.inconclusive;
    let noun = if domains == 1 { "domain" } else { "domains" };
    let invalid = match t.invalid {
        0 => String::new(),
        1 => "; 1 invalid input row skipped".to_owned(),
        n => format!("; {n} invalid input rows skipped"),
    };
    // Tags and severities that occur, in the order of the blocks' words.
    let tags: Vec<String> = [
        (t.ok, Tag::Ok),
        (t.warn, Tag::Warn),
        (t.fail, Tag::Fail),
        (t.inconclusive, Tag::Inconclusive),
    ]
    .iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, tag)| format!("{n} {}", tag.word()))
    .collect();
    let f = &t.findings;
    let findings: Vec<String> = [
        (f.error, "error", "errors"),
        (f.warning, "warning", "warnings"),
        (f.notice, "notice", "notices"),
    ]
    .iter()
    .filter(|(n, ..)| *n > 0)
    .map(|(n, one, many)| format!("{n} {}", if *n == 1 { one } else { many }))
    .collect();
    let findings = if findings.is_empty() {
        "no findings".to_owned()
    } else {
        format!("findings: {}", findings.join(", "))
    };
    let tags = if tags.is_empty() {
        String::new()
    } else {
        format!(": {}", tags.join(", "))
    };
    writeln!(w, "{domains} {noun}{tags}; {findings}{invalid}")
}

/// Why a report file could not be written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReportFileError {
    /// The directory could not be created.
    #[error("--report-dir {path}: cannot create the directory ({error})")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The cause (in the message, so not repeated as a source).
        error: io::Error,
    },
    /// The report directory is a file (or another non-directory).
    #[error("--report-dir {path}: not a directory; name a directory (it is created if missing)")]
    NotADirectory {
        /// The path.
        path: PathBuf,
    },
    /// No file can be created in the report directory.
    #[error("--report-dir {path}: cannot create files there ({error}); check its permissions")]
    NotWritable {
        /// The directory.
        path: PathBuf,
        /// The cause (in the message, so not repeated as a source).
        error: io::Error,
    },
    /// A file could not be written.
    #[error("writing the report file {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// No valid file name could be made.
    #[error("naming the report for {domain}: {source}")]
    Name {
        /// The policy domain.
        domain: String,
        /// The cause.
        #[source]
        source: Box<crate::tlsrpt::filename::FileNameError>,
    },
}

/// Makes sure `dir` can take report files before a run starts: it exists (created when
/// missing), is a directory, and a file can be created in it (one is made and removed).
pub fn check_report_dir(dir: &Path) -> Result<(), ReportFileError> {
    let not_a_directory = || ReportFileError::NotADirectory {
        path: dir.to_owned(),
    };
    if dir.exists() && !dir.is_dir() {
        return Err(not_a_directory());
    }
    std::fs::create_dir_all(dir).map_err(|error| ReportFileError::CreateDir {
        path: dir.to_owned(),
        error,
    })?;
    if !dir.is_dir() {
        return Err(not_a_directory());
    }
    let probe = dir.join(format!(".mxprobe-write-check-{}", std::process::id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .and_then(|_| std::fs::remove_file(&probe))
        .map_err(|error| ReportFileError::NotWritable {
            path: dir.to_owned(),
            error,
        })
}

/// Writes one synthetic report per domain into `dir`; returns the paths written. The date
/// range is the scan's (from `started` to `finished`); the report id and the file's unique
/// id name the scan start so that reruns never overwrite each other.
pub fn write_report_files(
    dir: &Path,
    reports: &[DomainResult],
    started: OffsetDateTime,
    finished: OffsetDateTime,
    gzip: bool,
) -> Result<Vec<PathBuf>, ReportFileError> {
    std::fs::create_dir_all(dir).map_err(|error| ReportFileError::CreateDir {
        path: dir.to_owned(),
        error,
    })?;
    let range = DateRange::new(started, finished.max(started))
        .expect("scan times are within years 0000-9999 and ordered");
    let unique = format!("mxprobe{}", started.unix_timestamp_nanos());
    let mut written = Vec::new();
    for r in reports {
        let domain = &r.verdict.domain;
        let report = build_report(
            &r.facts,
            &r.verdict,
            range,
            format!("{unique}.{domain}@mxprobe.invalid"),
        );
        let name =
            file_name(domain, &range, &unique, gzip).map_err(|source| ReportFileError::Name {
                domain: domain.to_string(),
                source: Box::new(source),
            })?;
        let path = dir.join(name.to_string());
        let bytes = if gzip {
            report.to_gzip()
        } else {
            report.to_json_pretty().into_bytes()
        };
        std::fs::write(&path, bytes).map_err(|source| ReportFileError::Write {
            path: path.clone(),
            source,
        })?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::{DnssecStatus, Lookup, Txt};
    use crate::domain::DomainName;
    use crate::evaluate::policy_fetch::ContentTypeRule;
    use crate::evaluate::{EvalOptions, evaluate_domain};
    use crate::facts::DomainFacts;
    use crate::tls::Anchors;
    use time::macros::datetime;

    /// The TLS-RPT line of a domain with no MX records and `tlsrpt_txt` as its lookup.
    fn tlsrpt_text(tlsrpt_txt: Lookup<Txt>) -> String {
        let now = datetime!(2025-06-01 0:00 UTC);
        let facts = DomainFacts {
            domain: DomainName::parse("example.com").unwrap(),
            observed_at: now,
            mx: Lookup::NoData {
                dnssec: DnssecStatus::Insecure,
            },
            sts_txt: Lookup::NoData {
                dnssec: DnssecStatus::Insecure,
            },
            tlsrpt_txt,
            policy_fetch: None,
            hosts: Vec::new(),
            resolver_problem: None,
            rua: Vec::new(),
        };
        let anchors = Anchors::empty();
        let verdict = evaluate_domain(
            &facts,
            &EvalOptions {
                anchors: &anchors,
                now,
                content_type: ContentTypeRule::Warn,
                expiry_warn_days: 21,
            },
        );
        let mut out = Vec::new();
        write_domain(&mut out, &DomainResult::new(facts, verdict), 80).unwrap();
        let text = String::from_utf8(out).unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix("  TLS-RPT   "))
            .unwrap()
            .to_owned()
    }

    /// "none" only when DNS said there is no record; a failed lookup is "could not tell".
    #[test]
    fn tlsrpt_line_tells_none_from_could_not_tell() {
        let records = |text: &str| Lookup::Records {
            records: vec![Txt {
                strings: vec![text.to_owned()],
            }],
            dnssec: DnssecStatus::Insecure,
            cname_chain: Vec::new(),
        };
        let cases: Vec<(Lookup<Txt>, &str)> = vec![
            (
                Lookup::NoData {
                    dnssec: DnssecStatus::Insecure,
                },
                "none",
            ),
            (
                Lookup::servfail(),
                "could not tell (DNS failure: the DNS server answered SERVFAIL)",
            ),
            (
                Lookup::Timeout,
                "could not tell (DNS failure: the DNS query timed out)",
            ),
            (records("v=TLSRPTv1; rua=ftp://x"), "no usable record"),
            (
                records("v=TLSRPTv1; rua=mailto:tls@example.com"),
                "mailto:tls@example.com",
            ),
            (
                Lookup::Bogus {
                    detail: "the RRSIGs of zone example.com expired".to_owned(),
                    cause: None,
                    extended_errors: Vec::new(),
                },
                "DNSSEC-bogus: validating reporters cannot read the record",
            ),
        ];
        for (lookup, want) in cases {
            assert_eq!(tlsrpt_text(lookup.clone()), want, "{lookup:?}");
        }
    }

    #[test]
    fn report_dir_is_checked_before_the_run() {
        let base = std::env::temp_dir().join(format!(
            "mxprobe-report-dir-{}-{}",
            std::process::id(),
            OffsetDateTime::now_utc().unix_timestamp_nanos()
        ));
        let made = base.join("new/reports");
        check_report_dir(&made).unwrap();
        assert!(made.is_dir());
        assert_eq!(std::fs::read_dir(&made).unwrap().count(), 0, "no file left");
        let file = base.join("file");
        std::fs::write(&file, "x").unwrap();
        let err = check_report_dir(&file).unwrap_err();
        assert!(
            matches!(
                err,
                ReportFileError::CreateDir { .. } | ReportFileError::NotADirectory { .. }
            ),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .starts_with(&format!("--report-dir {}", file.display())),
            "{err}"
        );
        let below = file.join("reports");
        assert!(matches!(
            check_report_dir(&below),
            Err(ReportFileError::CreateDir { .. })
        ));
        std::fs::remove_dir_all(&base).unwrap();
    }
}
