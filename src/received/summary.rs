//! Summaries of the TLS-RPT reports (RFC 8460) a domain owner received: per policy domain,
//! the session totals each reporter gave, the failures broken down by result type, receiving
//! MX, receiving IP and sending IP, and the totals day by day; written as a table for people
//! ([`write_text`]) or as CSV for spreadsheets ([`write_csv`]). The [`ReportSummary`] itself
//! serializes as JSON.
//!
//! The sums are made by SQLite ([`History::policy_sums`], [`History::failure_sums`]) over
//! the rows stored with each report, one policy domain at a time ([`summaries`]), so that
//! neither the reports nor the whole summary are ever held in memory: what is held is one
//! domain's reporters, days and at most [`BREAKDOWN_LIMIT`] entries per breakdown. Sums are
//! 128-bit: no report, however large its counts, makes a total wrap or saturate. Apart from
//! reading the history this module is pure: the writers take any `impl Write`, and no clock
//! is read.
//!
//! Two sources of counts are kept apart, because real reports do not always agree with
//! themselves: `successful` and `failed` are the senders' `summary` totals (RFC 8460 §4.4
//! `total-successful-session-count`, `total-failure-session-count`), while the breakdowns add
//! up the `failed-session-count` of each `failure-details` entry. Mail.ru, for one, reports
//! one failed session in its summary and two in its details.

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io::{self, Write};

use serde::{Serialize, Serializer};
use time::macros::format_description;
use time::{Date, OffsetDateTime};

use crate::history::{
    BreakdownKey, FailureKey, FailureSums, History, HistoryError, PolicySums, SumScope,
    add_sessions,
};
use mxprobe_core::csv_cell;
use mxprobe_core::domain::DomainName;

/// The breakdown key of a failure-details entry that leaves the field out (policy-level
/// failures such as `sts-policy-fetch-error` have no MX and no receiving IP).
pub const NOT_GIVEN: &str = "(not given)";

/// How many entries each breakdown keeps (by result type, receiving MX, receiving IP,
/// sending IP; for a domain, a reporter or a day): the largest. The others are summed in one
/// `(N others)` entry, so that reports with millions of distinct addresses give a summary of
/// bounded size.
pub const BREAKDOWN_LIMIT: usize = 1000;

/// How many entries of each breakdown [`write_text`] lists; the rest are counted in one
/// line. The JSON form keeps up to [`BREAKDOWN_LIMIT`].
const TEXT_TOP: usize = 10;

/// How many policy domains are read from the history at a time.
const DOMAIN_PAGE: usize = 256;

/// The summary of a set of reports: one entry per policy domain, in name order.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct ReportSummary {
    /// The policy domains the reports cover.
    pub domains: Vec<DomainSummary>,
}

/// What the reports say about one policy domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DomainSummary {
    /// The `policy-domain`.
    pub policy_domain: DomainName,
    /// One entry per reporter (`organization-name`), in name order.
    pub reporters: Vec<ReporterSummary>,
    /// All reporters together.
    pub total: Counts,
    /// All reporters together, per day, oldest first.
    pub days: Vec<DaySummary>,
}

/// What one reporter said about one policy domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReporterSummary {
    /// The reporter's `organization-name`, as written.
    pub reporter: String,
    /// How many of its reports have a policy for the domain.
    pub reports: u64,
    /// The sessions of those policies.
    pub counts: Counts,
    /// The `policy-type`s it applied (`no-policy-found`, `sts`, `tlsa`), in name order.
    pub policy_types: Vec<String>,
    /// Its reports per day, oldest first.
    pub days: Vec<DaySummary>,
}

/// Session counts summed over policies.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Counts {
    /// The sum of `total-successful-session-count`.
    pub successful: u128,
    /// The sum of `total-failure-session-count`.
    pub failed: u128,
    /// `failed-session-count` of the failure details, by `result-type`.
    pub by_result_type: BTreeMap<String, u128>,
    /// `failed-session-count` of the failure details, by `receiving-mx-hostname`
    /// ([`NOT_GIVEN`] when absent).
    pub by_receiving_mx: BTreeMap<String, u128>,
    /// `failed-session-count` of the failure details, by `receiving-ip` ([`NOT_GIVEN`] when
    /// absent).
    pub by_receiving_ip: BTreeMap<String, u128>,
    /// `failed-session-count` of the failure details, by `sending-mta-ip` ([`NOT_GIVEN`]
    /// when absent).
    pub by_sending_ip: BTreeMap<String, u128>,
}

/// The reports of one day: those whose `date-range` starts on that UTC day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DaySummary {
    /// The UTC day the date ranges start on (serialized as `YYYY-MM-DD`).
    #[serde(serialize_with = "iso_date")]
    pub day: Date,
    /// How many reports.
    pub reports: u64,
    /// The `policy-type`s applied, in name order.
    pub policy_types: Vec<String>,
    /// The sum of `total-successful-session-count`.
    pub successful: u128,
    /// The sum of `total-failure-session-count`.
    pub failed: u128,
    /// `failed-session-count` of the failure details, by `result-type`.
    pub by_result_type: BTreeMap<String, u128>,
}

/// The summaries of the stored reports whose date range ends at or after `since`: of
/// `domain` alone, or of every policy domain in name order, one at a time.
pub fn summaries<'h>(
    history: &'h History,
    domain: Option<&DomainName>,
    since: Option<OffsetDateTime>,
) -> Summaries<'h> {
    Summaries {
        history,
        since,
        page: domain.cloned().into_iter().collect(),
        after: None,
        paging: domain.is_none(),
    }
}

/// The summaries [`summaries`] gives, each computed when it is asked for.
#[derive(Debug)]
pub struct Summaries<'h> {
    history: &'h History,
    since: Option<OffsetDateTime>,
    /// The domains read but not summarised yet.
    page: VecDeque<DomainName>,
    /// The last domain read, where the next page starts.
    after: Option<DomainName>,
    /// Whether more domains are to be read from the history.
    paging: bool,
}

impl Iterator for Summaries<'_> {
    type Item = Result<DomainSummary, HistoryError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(domain) = self.page.pop_front() {
                match summarise(self.history, &domain, self.since) {
                    Ok(Some(summary)) => return Some(Ok(summary)),
                    Ok(None) => continue,
                    Err(e) => return Some(Err(e)),
                }
            }
            if !self.paging {
                return None;
            }
            match self
                .history
                .report_domains(self.after.as_ref(), self.since, DOMAIN_PAGE)
            {
                Ok(page) => {
                    self.paging = page.len() == DOMAIN_PAGE;
                    self.after = page.last().cloned();
                    if page.is_empty() {
                        return None;
                    }
                    self.page = page.into();
                }
                Err(e) => {
                    self.paging = false;
                    return Some(Err(e));
                }
            }
        }
    }
}

/// Every summary of [`summaries`], collected (for small histories and tests).
pub fn summary(
    history: &History,
    domain: Option<&DomainName>,
    since: Option<OffsetDateTime>,
) -> Result<ReportSummary, HistoryError> {
    Ok(ReportSummary {
        domains: summaries(history, domain, since).collect::<Result<_, _>>()?,
    })
}

/// The summary of `domain` (`None` when no report has a policy for it). A report counts
/// once for a domain even when it has several policies for it.
pub fn summarise(
    history: &History,
    domain: &DomainName,
    since: Option<OffsetDateTime>,
) -> Result<Option<DomainSummary>, HistoryError> {
    let policies = history.policy_sums(domain, since)?;
    if policies.is_empty() {
        return Ok(None);
    }
    let sums = |key, reporter, day| {
        history.failure_sums(
            domain,
            since,
            key,
            SumScope { reporter, day },
            BREAKDOWN_LIMIT,
        )
    };
    let successful = || format!("the successful sessions of {domain}");
    let failed = || format!("the failed sessions of {domain}");

    // Per reporter and day, then per reporter, per day and in all.
    let mut by_reporter_day: BTreeMap<(Option<String>, Option<Date>), BTreeMap<String, u128>> =
        sums(FailureKey::ResultType, true, true)?
            .into_iter()
            .map(entries)
            .collect();
    let mut by_day: BTreeMap<(Option<String>, Option<Date>), BTreeMap<String, u128>> =
        sums(FailureKey::ResultType, false, true)?
            .into_iter()
            .map(entries)
            .collect();
    let mut per_reporter: BTreeMap<String, Counts> = BTreeMap::new();
    let mut total = Counts::default();
    for key in [
        FailureKey::ResultType,
        FailureKey::ReceivingMx,
        FailureKey::ReceivingIp,
        FailureKey::SendingIp,
    ] {
        for group in sums(key, true, false)? {
            let ((reporter, _), map) = entries(group);
            *per_reporter
                .entry(reporter.unwrap_or_default())
                .or_default()
                .breakdown(key) = map;
        }
        if let Some(group) = sums(key, false, false)?.into_iter().next() {
            *total.breakdown(key) = entries(group).1;
        }
    }

    let mut reporters: Vec<ReporterSummary> = Vec::new();
    let mut days: BTreeMap<Date, DaySummary> = BTreeMap::new();
    for p in policies {
        let day = DaySummary {
            day: p.day,
            reports: p.reports,
            policy_types: p.policy_types.clone(),
            successful: p.successful,
            failed: p.failed,
            by_result_type: by_reporter_day
                .remove(&(Some(p.reporter.clone()), Some(p.day)))
                .unwrap_or_default(),
        };
        let all_day = days.entry(p.day).or_insert_with(|| DaySummary {
            day: p.day,
            reports: 0,
            policy_types: Vec::new(),
            successful: 0,
            failed: 0,
            by_result_type: by_day.remove(&(None, Some(p.day))).unwrap_or_default(),
        });
        add_policies(all_day, &p, successful, failed)?;
        total.successful = add_sessions(total.successful, p.successful, successful)?;
        total.failed = add_sessions(total.failed, p.failed, failed)?;
        match reporters.last_mut() {
            Some(r) if r.reporter == p.reporter => {
                r.reports = r.reports.saturating_add(p.reports);
                r.counts.successful = add_sessions(r.counts.successful, p.successful, successful)?;
                r.counts.failed = add_sessions(r.counts.failed, p.failed, failed)?;
                r.policy_types = union(&r.policy_types, &p.policy_types);
                r.days.push(day);
            }
            _ => {
                let mut counts = per_reporter.remove(&p.reporter).unwrap_or_default();
                counts.successful = p.successful;
                counts.failed = p.failed;
                reporters.push(ReporterSummary {
                    reporter: p.reporter.clone(),
                    reports: p.reports,
                    counts,
                    policy_types: p.policy_types.clone(),
                    days: vec![day],
                });
            }
        }
    }
    Ok(Some(DomainSummary {
        policy_domain: domain.clone(),
        reporters,
        total,
        days: days.into_values().collect(),
    }))
}

impl Counts {
    /// The breakdown by `key`.
    fn breakdown(&mut self, key: FailureKey) -> &mut BTreeMap<String, u128> {
        match key {
            FailureKey::ResultType => &mut self.by_result_type,
            FailureKey::ReceivingMx => &mut self.by_receiving_mx,
            FailureKey::ReceivingIp => &mut self.by_receiving_ip,
            FailureKey::SendingIp => &mut self.by_sending_ip,
        }
    }
}

/// One reporter's policies of a day added to the day's totals.
fn add_policies(
    day: &mut DaySummary,
    p: &PolicySums,
    successful: impl FnOnce() -> String,
    failed: impl FnOnce() -> String,
) -> Result<(), HistoryError> {
    day.reports = day.reports.saturating_add(p.reports);
    day.policy_types = union(&day.policy_types, &p.policy_types);
    day.successful = add_sessions(day.successful, p.successful, successful)?;
    day.failed = add_sessions(day.failed, p.failed, failed)?;
    Ok(())
}

/// The names in `a` or `b`, in order, once each.
fn union(a: &[String], b: &[String]) -> Vec<String> {
    a.iter()
        .chain(b)
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// The breakdown key that sums the entries past [`BREAKDOWN_LIMIT`].
fn others_key(entries: u64) -> String {
    format!("({entries} others)")
}

/// How many entries a breakdown key stands for: those an [`others_key`] sums, else one.
fn entries_in(key: &str) -> u64 {
    key.strip_prefix('(')
        .and_then(|k| k.strip_suffix(" others)"))
        .and_then(|n| n.parse().ok())
        .unwrap_or(1)
}

/// A group's scope and its entries as a breakdown map.
fn entries(group: FailureSums) -> ((Option<String>, Option<Date>), BTreeMap<String, u128>) {
    let map = group
        .entries
        .into_iter()
        .map(|(key, n)| {
            let key = match key {
                BreakdownKey::Given(value) => value,
                BreakdownKey::NotGiven => NOT_GIVEN.to_owned(),
                BreakdownKey::Others { entries } => others_key(entries),
            };
            (key, n)
        })
        .collect();
    ((group.reporter, group.day), map)
}

/// `YYYY-MM-DD`.
fn day_text(day: Date) -> String {
    let format = format_description!("[year]-[month]-[day]");
    day.format(&format)
        .expect("a Date has every component [year]-[month]-[day] needs")
}

/// Serializes a day as `YYYY-MM-DD` (RFC 3339 full-date).
fn iso_date<S: Serializer>(day: &Date, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&day_text(*day))
}

// ---------------------------------------------------------------------------------------
// Text
// ---------------------------------------------------------------------------------------

/// Writes the summary for people: per domain a heading with the totals, a table of
/// reporters, a table of days (with the result types of that day's failure details), and
/// the failed sessions of the failure details by result type, receiving MX, receiving IP
/// and sending IP, largest first (the first ten of each). Text from the reports is written
/// with control characters escaped.
pub fn write_text(out: &mut impl Write, s: &ReportSummary) -> io::Result<()> {
    let mut text = TextWriter::default();
    for d in &s.domains {
        text.domain(out, d)?;
    }
    text.finish(out)
}

/// [`write_text`] one domain at a time.
#[derive(Debug, Default)]
struct TextWriter {
    written: bool,
}

impl TextWriter {
    fn domain(&mut self, out: &mut impl Write, d: &DomainSummary) -> io::Result<()> {
        if self.written {
            writeln!(out)?;
        }
        self.written = true;
        write_domain(out, d)
    }

    fn finish(self, out: &mut impl Write) -> io::Result<()> {
        if self.written {
            Ok(())
        } else {
            writeln!(out, "no TLS-RPT reports to summarise")
        }
    }
}

/// The forms [`write()`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// [`write_text`].
    Text,
    /// The [`ReportSummary`] as indented JSON.
    Json,
    /// [`write_csv`].
    Csv,
}

/// Why [`write()`] stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    /// The history could not be read.
    #[error(transparent)]
    History(#[from] HistoryError),
    /// The output could not be written.
    #[error("writing the summary: {0}")]
    Io(#[from] io::Error),
    /// The CSV output could not be written.
    #[error("writing the summary: {0}")]
    Csv(#[from] csv::Error),
    /// The JSON output could not be written.
    #[error("writing the summary: {0}")]
    Json(#[from] serde_json::Error),
}

/// Writes `summaries` (from [`summaries`]) in `format`, each domain as it comes, so that
/// memory holds one domain's summary at a time. The JSON form is the [`ReportSummary`]
/// document.
pub fn write(
    out: &mut impl Write,
    format: Format,
    summaries: impl Iterator<Item = Result<DomainSummary, HistoryError>>,
) -> Result<(), WriteError> {
    match format {
        Format::Text => {
            let mut text = TextWriter::default();
            for d in summaries {
                text.domain(out, &d?)?;
            }
            text.finish(out)?;
        }
        Format::Csv => {
            let mut csv = csv::Writer::from_writer(out);
            csv.write_record(CSV_HEADER)?;
            for d in summaries {
                write_csv_domain(&mut csv, &d?)?;
            }
            csv.flush()?;
        }
        Format::Json => {
            let failed = RefCell::new(None);
            let document = LazySummary {
                domains: LazyDomains {
                    items: RefCell::new(Some(summaries)),
                    failed: &failed,
                },
            };
            serde_json::to_writer_pretty(&mut *out, &document)?;
            if let Some(e) = failed.into_inner() {
                return Err(e.into());
            }
            writeln!(out)?;
        }
    }
    Ok(())
}

/// The [`ReportSummary`] document with its domains computed while they are written.
struct LazySummary<'a, I> {
    domains: LazyDomains<'a, I>,
}

impl<I: Iterator<Item = Result<DomainSummary, HistoryError>>> Serialize for LazySummary<'_, I> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;
        let mut document = serializer.serialize_struct("ReportSummary", 1)?;
        document.serialize_field("domains", &self.domains)?;
        document.end()
    }
}

/// The domains of [`LazySummary`]: a history error ends the list and is kept in `failed`.
struct LazyDomains<'a, I> {
    items: RefCell<Option<I>>,
    failed: &'a RefCell<Option<HistoryError>>,
}

impl<I: Iterator<Item = Result<DomainSummary, HistoryError>>> Serialize for LazyDomains<'_, I> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let items = self.items.borrow_mut().take().into_iter().flatten();
        serializer.collect_seq(items.map_while(|item| match item {
            Ok(d) => Some(d),
            Err(e) => {
                *self.failed.borrow_mut() = Some(e);
                None
            }
        }))
    }
}

fn write_domain(out: &mut impl Write, d: &DomainSummary) -> io::Result<()> {
    let reports = d
        .reporters
        .iter()
        .fold(0u64, |sum, r| sum.saturating_add(r.reports));
    let t = &d.total;
    write!(
        out,
        "{}: {} from {}; {}, {} failed",
        d.policy_domain,
        counted(u128::from(reports), "report"),
        counted(d.reporters.len() as u128, "reporter"),
        counted(t.successful, "successful session"),
        t.failed,
    )?;
    match failure_rate(t.successful, t.failed) {
        Some(rate) => writeln!(out, " ({rate})")?,
        None => writeln!(out)?,
    }

    writeln!(out)?;
    let rows: Vec<Vec<String>> = d
        .reporters
        .iter()
        .map(|r| {
            vec![
                printable(&r.reporter),
                r.reports.to_string(),
                r.counts.successful.to_string(),
                r.counts.failed.to_string(),
                r.policy_types.join(", "),
            ]
        })
        .collect();
    write_table(
        out,
        &[
            ("reporter", Align::Left),
            ("reports", Align::Right),
            ("successful", Align::Right),
            ("failed", Align::Right),
            ("policy types", Align::Left),
        ],
        &rows,
    )?;

    writeln!(out)?;
    let rows: Vec<Vec<String>> = d
        .days
        .iter()
        .map(|day| {
            vec![
                day_text(day.day),
                day.reports.to_string(),
                day.successful.to_string(),
                day.failed.to_string(),
                largest_first(&day.by_result_type)
                    .iter()
                    .map(|(key, n)| format!("{} {n}", printable(key)))
                    .collect::<Vec<_>>()
                    .join(", "),
            ]
        })
        .collect();
    write_table(
        out,
        &[
            ("day", Align::Left),
            ("reports", Align::Right),
            ("successful", Align::Right),
            ("failed", Align::Right),
            ("failure details", Align::Left),
        ],
        &rows,
    )?;

    writeln!(out)?;
    let detailed = t
        .by_result_type
        .values()
        .fold(0u128, |sum, n| sum.saturating_add(*n));
    if t.by_result_type.is_empty() {
        return match t.failed {
            0 => writeln!(out, "  no failure details"),
            n => writeln!(
                out,
                "  no failure details, although the summaries count {}",
                counted(n, "failed session")
            ),
        };
    }
    if detailed == t.failed {
        writeln!(
            out,
            "  failure details ({})",
            counted(detailed, "failed session")
        )?;
    } else {
        writeln!(
            out,
            "  failure details ({}; the summaries count {})",
            counted(detailed, "failed session"),
            t.failed
        )?;
    }
    for (title, map) in [
        ("by result type", &t.by_result_type),
        ("by receiving MX", &t.by_receiving_mx),
        ("by receiving IP", &t.by_receiving_ip),
        ("by sending IP", &t.by_sending_ip),
    ] {
        writeln!(out, "    {title}")?;
        let entries = largest_first(map);
        let shown = &entries[..entries.len().min(TEXT_TOP)];
        let rows: Vec<Vec<String>> = shown
            .iter()
            .map(|(key, n)| vec![format!("    {}", printable(key)), n.to_string()])
            .collect();
        write_rows(out, &[Align::Left, Align::Right], &rows)?;
        let rest = &entries[shown.len()..];
        if !rest.is_empty() {
            let sessions = rest
                .iter()
                .fold(0u128, |sum, (_, n)| sum.saturating_add(*n));
            let more = rest
                .iter()
                .fold(0u64, |sum, (key, _)| sum.saturating_add(entries_in(key)));
            writeln!(
                out,
                "      and {more} more ({})",
                counted(sessions, "failed session")
            )?;
        }
    }
    Ok(())
}

/// A breakdown's entries, the largest count first, ties in key order.
fn largest_first(map: &BTreeMap<String, u128>) -> Vec<(&str, u128)> {
    let mut entries: Vec<(&str, u128)> = map.iter().map(|(k, &n)| (k.as_str(), n)).collect();
    // Stable: equal counts keep the map's key order.
    entries.sort_by_key(|&(_, n)| Reverse(n));
    entries
}

/// `12.5 % failed`, to one decimal, rounded half up; `None` without sessions.
fn failure_rate(successful: u128, failed: u128) -> Option<String> {
    // Scaled down until `failed × 1000` cannot overflow; the ratio keeps its first digits.
    let (mut successful, mut failed) = (successful, failed);
    while failed > u128::MAX / 2000 || successful > u128::MAX / 2000 {
        successful /= 2;
        failed /= 2;
    }
    let total = successful + failed;
    if total == 0 {
        return None;
    }
    let tenths = (failed * 1000 + total / 2) / total;
    Some(format!("{}.{} % failed", tenths / 10, tenths % 10))
}

/// `1 report`, `2 reports`, `0 reports`.
fn counted(n: u128, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// The text with every control character escaped (`\u{1b}`), so that a report cannot
/// move the cursor or recolour the terminal.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Where a cell's text sits in its column.
#[derive(Clone, Copy)]
enum Align {
    Left,
    Right,
}

/// A table indented by two spaces: a header line, then the rows.
fn write_table(
    out: &mut impl Write,
    columns: &[(&str, Align)],
    rows: &[Vec<String>],
) -> io::Result<()> {
    let header: Vec<String> = columns.iter().map(|(h, _)| (*h).to_owned()).collect();
    let aligns: Vec<Align> = columns.iter().map(|&(_, a)| a).collect();
    let all: Vec<Vec<String>> = std::iter::once(header)
        .chain(rows.iter().cloned())
        .collect();
    write_rows(out, &aligns, &all)
}

/// Rows indented by two spaces, columns two spaces apart and as wide as their widest cell;
/// no trailing spaces.
fn write_rows(out: &mut impl Write, aligns: &[Align], rows: &[Vec<String>]) -> io::Result<()> {
    let widths: Vec<usize> = (0..aligns.len())
        .map(|c| {
            rows.iter()
                .map(|row| row[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in rows {
        let mut line = String::from(" ");
        for ((cell, align), width) in row.iter().zip(aligns).zip(&widths) {
            let pad = " ".repeat(width - cell.chars().count());
            line.push(' ');
            match align {
                Align::Left => {
                    line.push_str(cell);
                    line.push_str(&pad);
                }
                Align::Right => {
                    line.push_str(&pad);
                    line.push_str(cell);
                }
            }
            line.push(' ');
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// CSV
// ---------------------------------------------------------------------------------------

/// The CSV header of [`write_csv`].
pub const CSV_HEADER: [&str; 8] = [
    "policy_domain",
    "day",
    "reporter",
    "reports",
    "policy_types",
    "successful_sessions",
    "failed_sessions",
    "failed_by_result_type",
];

/// Writes the summary as CSV (RFC 4180) for spreadsheets: the [`CSV_HEADER`] line, then one
/// row per policy domain, day and reporter — the grain a pivot table sums up — ordered by
/// domain, day, reporter. `policy_types` is space-separated; `failed_by_result_type` lists
/// the failure details as `result-type=count`, largest first, separated by `; `. Text
/// cells follow the rule of [`mxprobe_core::csv_cell`] (no control characters; a leading `'` where
/// a spreadsheet would see a formula); the counts are plain integers.
pub fn write_csv(out: impl Write, s: &ReportSummary) -> Result<(), csv::Error> {
    let mut writer = csv::Writer::from_writer(out);
    writer.write_record(CSV_HEADER)?;
    for d in &s.domains {
        write_csv_domain(&mut writer, d)?;
    }
    writer.flush()?;
    Ok(())
}

/// The CSV rows of one domain.
fn write_csv_domain<W: Write>(
    writer: &mut csv::Writer<W>,
    d: &DomainSummary,
) -> Result<(), csv::Error> {
    let mut rows: Vec<(Date, &str, &DaySummary)> = d
        .reporters
        .iter()
        .flat_map(|r| {
            r.days
                .iter()
                .map(move |day| (day.day, r.reporter.as_str(), day))
        })
        .collect();
    rows.sort_by_key(|&(day, reporter, _)| (day, reporter));
    for (day, reporter, summary) in rows {
        let failures = largest_first(&summary.by_result_type)
            .iter()
            .map(|(key, n)| format!("{key}={n}"))
            .collect::<Vec<_>>()
            .join("; ");
        writer.write_record([
            csv_cell::text(d.policy_domain.as_str()).into_owned(),
            day_text(day),
            csv_cell::text(reporter).into_owned(),
            summary.reports.to_string(),
            csv_cell::text(&summary.policy_types.join(" ")).into_owned(),
            summary.successful.to_string(),
            summary.failed.to_string(),
            csv_cell::text(&failures).into_owned(),
        ])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::test_support::TempHistory;
    use mxprobe_core::tlsrpt::report::{Report, read_report};
    use time::macros::date;

    /// The report in `json`; `_source` names it where it is listed.
    fn stored(json: &[u8], _source: &str) -> Report {
        read_report(json).unwrap().report
    }

    /// The summary of `reports` once stored in a history, as `mxprobe reports summary`
    /// makes it.
    fn summarise(reports: &[Report], domain: Option<&DomainName>) -> ReportSummary {
        let stored = TempHistory::with_reports("summary", reports);
        let whole = summary(&stored.history, domain, None).unwrap();
        // Written one domain at a time, the JSON is the document of the whole summary.
        let mut streamed = Vec::new();
        write(
            &mut streamed,
            Format::Json,
            summaries(&stored.history, domain, None),
        )
        .unwrap();
        let mut expected = serde_json::to_vec_pretty(&whole).unwrap();
        expected.push(b'\n');
        assert_eq!(
            String::from_utf8(streamed).unwrap(),
            String::from_utf8(expected).unwrap()
        );
        whole
    }

    fn domain(name: &str) -> DomainName {
        DomainName::parse(name).unwrap()
    }

    fn map(entries: &[(&str, u128)]) -> BTreeMap<String, u128> {
        entries.iter().map(|&(k, n)| (k.to_owned(), n)).collect()
    }

    fn types(names: &[&str]) -> Vec<String> {
        names.iter().map(|&n| n.to_owned()).collect()
    }

    /// Every published report in fixtures/tlsrpt-reports that is a JSON file (the three
    /// under parsedmarc/ and the three attachments under extracted/).
    fn real_reports() -> Vec<Report> {
        vec![
            stored(
                include_bytes!("../../fixtures/tlsrpt-reports/parsedmarc/mail.ru.json"),
                "mail.ru.json",
            ),
            stored(
                include_bytes!("../../fixtures/tlsrpt-reports/parsedmarc/rfc8460.json"),
                "rfc8460.json",
            ),
            stored(
                include_bytes!("../../fixtures/tlsrpt-reports/parsedmarc/smtp_tls.json"),
                "smtp_tls.json",
            ),
            stored(
                include_bytes!(
                    "../../fixtures/tlsrpt-reports/extracted/mox_example__google.com!test.xmox.nl!1663200000!1663286399!001.json"
                ),
                "google test.xmox.nl",
            ),
            stored(
                include_bytes!(
                    "../../fixtures/tlsrpt-reports/extracted/mox_microsoft__microsoft.com!test.xmox.nl!1673308800!1673395199!133198585438131172.json"
                ),
                "microsoft test.xmox.nl",
            ),
            stored(
                include_bytes!(
                    "../../fixtures/tlsrpt-reports/extracted/parsedmarc_google.com_smtp_tls_report__google.com!cardinalhealth.ca!1725321600!1725407999!001.json"
                ),
                "google cardinalhealth.ca",
            ),
        ]
    }

    // What the six files say, read by hand:
    //
    // mail.ru.json      Mail.ru, 2024-02-22T00:00:00Z, sts example.com; summary 0 ok / 1 failed;
    //                   details: sts-policy-fetch-error 1 (404) + 1 (500), neither with MX,
    //                   receiving IP nor sending IP.
    // rfc8460.json      Company-X, 2016-04-01, sts company-y.example; 5326 ok / 303 failed;
    //                   certificate-expired 100 (sending 2001:db8:abcd:0012::1, MX
    //                   mx1.mail.company-y.example, no receiving IP); starttls-not-supported
    //                   200 (sending 2001:db8:abcd:0013::1, MX mx2.mail.company-y.example,
    //                   receiving 203.0.113.56); validation-failure 3 (sending 198.51.100.62,
    //                   MX mx-backup.mail.company-y.example, receiving 203.0.113.58).
    // smtp_tls.json     Example Inc., 2024-01-09, sts example.com; 0 ok / 3 failed;
    //                   validation-failure 2 (sending 209.85.222.201) + 1 (sending
    //                   209.85.208.176), both MX example.com, receiving 173.212.201.41.
    // mox google        Google Inc., 2022-09-15, sts test.xmox.nl; 3 ok / 0 failed; no details.
    // mox microsoft     Microsoft Corporation, 2023-01-10 (no time zone: UTC), sts
    //                   test.xmox.nl; 2 ok / 0 failed; no details.
    // parsedmarc google Google Inc., 2024-09-03, no-policy-found cardinalhealth.ca; 48 ok /
    //                   0 failed; no details.
    #[test]
    fn the_real_reports_add_up_to_the_hand_counted_totals() {
        let summary = summarise(&real_reports(), None);
        let names: Vec<&str> = summary
            .domains
            .iter()
            .map(|d| d.policy_domain.as_str())
            .collect();
        assert_eq!(
            names,
            [
                "cardinalhealth.ca",
                "company-y.example",
                "example.com",
                "test.xmox.nl"
            ]
        );

        // cardinalhealth.ca: one Google report, 48 ok, nothing failed, no policy.
        assert_eq!(
            summary.domains[0],
            DomainSummary {
                policy_domain: domain("cardinalhealth.ca"),
                reporters: vec![ReporterSummary {
                    reporter: "Google Inc.".to_owned(),
                    reports: 1,
                    counts: Counts {
                        successful: 48,
                        ..Counts::default()
                    },
                    policy_types: types(&["no-policy-found"]),
                    days: vec![DaySummary {
                        day: date!(2024 - 09 - 03),
                        reports: 1,
                        policy_types: types(&["no-policy-found"]),
                        successful: 48,
                        failed: 0,
                        by_result_type: BTreeMap::new(),
                    }],
                }],
                total: Counts {
                    successful: 48,
                    ..Counts::default()
                },
                days: vec![DaySummary {
                    day: date!(2024 - 09 - 03),
                    reports: 1,
                    policy_types: types(&["no-policy-found"]),
                    successful: 48,
                    failed: 0,
                    by_result_type: BTreeMap::new(),
                }],
            }
        );

        // company-y.example: the RFC's example. Failures 100 + 200 + 3 = 303, as the summary
        // says; the IPv6 senders read in RFC 5952 form (0012 → 12).
        let rfc = &summary.domains[1];
        let rfc_counts = Counts {
            successful: 5326,
            failed: 303,
            by_result_type: map(&[
                ("certificate-expired", 100),
                ("starttls-not-supported", 200),
                ("validation-failure", 3),
            ]),
            by_receiving_mx: map(&[
                ("mx-backup.mail.company-y.example", 3),
                ("mx1.mail.company-y.example", 100),
                ("mx2.mail.company-y.example", 200),
            ]),
            by_receiving_ip: map(&[(NOT_GIVEN, 100), ("203.0.113.56", 200), ("203.0.113.58", 3)]),
            by_sending_ip: map(&[
                ("198.51.100.62", 3),
                ("2001:db8:abcd:12::1", 100),
                ("2001:db8:abcd:13::1", 200),
            ]),
        };
        assert_eq!(rfc.total, rfc_counts);
        assert_eq!(rfc.reporters.len(), 1);
        assert_eq!(rfc.reporters[0].reporter, "Company-X");
        assert_eq!(rfc.reporters[0].counts, rfc_counts);
        assert_eq!(
            rfc.days,
            [DaySummary {
                day: date!(2016 - 04 - 01),
                reports: 1,
                policy_types: types(&["sts"]),
                successful: 5326,
                failed: 303,
                by_result_type: rfc_counts.by_result_type.clone(),
            }]
        );

        // example.com: Example Inc. (0 ok / 3 failed) and Mail.ru (0 ok / 1 failed): 0 / 4.
        // The details count 3 validation-failure + 2 sts-policy-fetch-error = 5 sessions
        // (Mail.ru's details say 2 where its summary says 1).
        let ex = &summary.domains[2];
        assert_eq!(
            ex.total,
            Counts {
                successful: 0,
                failed: 4,
                by_result_type: map(&[("sts-policy-fetch-error", 2), ("validation-failure", 3)]),
                by_receiving_mx: map(&[(NOT_GIVEN, 2), ("example.com", 3)]),
                by_receiving_ip: map(&[(NOT_GIVEN, 2), ("173.212.201.41", 3)]),
                by_sending_ip: map(&[(NOT_GIVEN, 2), ("209.85.208.176", 1), ("209.85.222.201", 2)]),
            }
        );
        let reporters: Vec<(&str, u64, u128, u128, &[String])> = ex
            .reporters
            .iter()
            .map(|r| {
                (
                    r.reporter.as_str(),
                    r.reports,
                    r.counts.successful,
                    r.counts.failed,
                    r.policy_types.as_slice(),
                )
            })
            .collect();
        assert_eq!(
            reporters,
            [
                ("Example Inc.", 1, 0, 3, types(&["sts"]).as_slice()),
                ("Mail.ru", 1, 0, 1, types(&["sts"]).as_slice()),
            ]
        );
        assert_eq!(
            ex.reporters[1].counts.by_result_type,
            map(&[("sts-policy-fetch-error", 2)])
        );
        assert_eq!(ex.reporters[1].counts.by_sending_ip, map(&[(NOT_GIVEN, 2)]));
        assert_eq!(
            ex.days,
            [
                DaySummary {
                    day: date!(2024 - 01 - 09),
                    reports: 1,
                    policy_types: types(&["sts"]),
                    successful: 0,
                    failed: 3,
                    by_result_type: map(&[("validation-failure", 3)]),
                },
                DaySummary {
                    day: date!(2024 - 02 - 22),
                    reports: 1,
                    policy_types: types(&["sts"]),
                    successful: 0,
                    failed: 1,
                    by_result_type: map(&[("sts-policy-fetch-error", 2)]),
                },
            ]
        );

        // test.xmox.nl: Google 3 ok on 2022-09-15, Microsoft 2 ok on 2023-01-10: 5 / 0.
        let mox = &summary.domains[3];
        assert_eq!(
            mox.total,
            Counts {
                successful: 5,
                ..Counts::default()
            }
        );
        let reporters: Vec<(&str, u64, u128, u128)> = mox
            .reporters
            .iter()
            .map(|r| {
                (
                    r.reporter.as_str(),
                    r.reports,
                    r.counts.successful,
                    r.counts.failed,
                )
            })
            .collect();
        assert_eq!(
            reporters,
            [("Google Inc.", 1, 3, 0), ("Microsoft Corporation", 1, 2, 0)]
        );
        let days: Vec<(Date, u128, u128)> = mox
            .days
            .iter()
            .map(|d| (d.day, d.successful, d.failed))
            .collect();
        assert_eq!(
            days,
            [(date!(2022 - 09 - 15), 3, 0), (date!(2023 - 01 - 10), 2, 0)]
        );

        // Google Inc. reports on two domains; each domain counts only its own.
        assert_eq!(summary.domains[0].reporters[0].reporter, "Google Inc.");
        assert_eq!(mox.reporters[0].counts.successful, 3);

        // Filtering keeps one domain, exactly as it was in the full summary.
        let only = summarise(&real_reports(), Some(&domain("example.com")));
        assert_eq!(only.domains, [summary.domains[2].clone()]);
        assert_eq!(
            summarise(&real_reports(), Some(&domain("example.org"))),
            ReportSummary::default()
        );
    }

    /// Two small reports made by hand: Google on 1 November (example.com, sts, 100 ok, 2
    /// validation failures on mx1), Microsoft on 2 November (example.com, sts, 50 ok, 1
    /// failed with a detail of 1 sts-policy-fetch-error without MX or IPs; and example.net,
    /// tlsa, 7 ok).
    fn pair() -> Vec<Report> {
        let google = br#"{"organization-name": "Google Inc.",
            "date-range": {"start-datetime": "2026-11-01T00:00:00Z",
                           "end-datetime": "2026-11-01T23:59:59Z"},
            "contact-info": "smtp-tls-reporting@google.com", "report-id": "g-1",
            "policies": [{
                "policy": {"policy-type": "sts", "policy-domain": "example.com",
                           "policy-string": ["version: STSv1", "mode: enforce",
                                             "mx: mx1.example.com", "max_age: 86400"],
                           "mx-host": ["mx1.example.com"]},
                "summary": {"total-successful-session-count": 100,
                            "total-failure-session-count": 2},
                "failure-details": [{"result-type": "validation-failure",
                                     "sending-mta-ip": "192.0.2.1",
                                     "receiving-mx-hostname": "mx1.example.com",
                                     "receiving-ip": "198.51.100.1",
                                     "failed-session-count": 2}]}]}"#;
        let microsoft = br#"{"organization-name": "Microsoft Corporation",
            "date-range": {"start-datetime": "2026-11-02T00:00:00Z",
                           "end-datetime": "2026-11-02T23:59:59Z"},
            "contact-info": "tlsrpt-noreply@microsoft.com", "report-id": "m-1",
            "policies": [{
                "policy": {"policy-type": "sts", "policy-domain": "example.com",
                           "policy-string": ["version: STSv1", "mode: enforce",
                                             "mx: mx1.example.com", "max_age: 86400"],
                           "mx-host": ["mx1.example.com"]},
                "summary": {"total-successful-session-count": 50,
                            "total-failure-session-count": 1},
                "failure-details": [{"result-type": "sts-policy-fetch-error",
                                     "failed-session-count": 1}]},
              {
                "policy": {"policy-type": "tlsa", "policy-domain": "example.net",
                           "policy-string": ["3 1 1 0123456789abcdef"], "mx-host": []},
                "summary": {"total-successful-session-count": 7,
                            "total-failure-session-count": 0},
                "failure-details": []}]}"#;
        vec![
            stored(google, "google.json"),
            stored(microsoft, "microsoft.json"),
        ]
    }

    #[test]
    fn text_output_of_a_pair_of_reports() {
        let mut out = Vec::new();
        write_text(&mut out, &summarise(&pair(), None)).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\
example.com: 2 reports from 2 reporters; 150 successful sessions, 3 failed (2.0 % failed)

  reporter               reports  successful  failed  policy types
  Google Inc.                  1         100       2  sts
  Microsoft Corporation        1          50       1  sts

  day         reports  successful  failed  failure details
  2026-11-01        1         100       2  validation-failure 2
  2026-11-02        1          50       1  sts-policy-fetch-error 1

  failure details (3 failed sessions)
    by result type
      validation-failure      2
      sts-policy-fetch-error  1
    by receiving MX
      mx1.example.com  2
      (not given)      1
    by receiving IP
      198.51.100.1  2
      (not given)   1
    by sending IP
      192.0.2.1    2
      (not given)  1

example.net: 1 report from 1 reporter; 7 successful sessions, 0 failed (0.0 % failed)

  reporter               reports  successful  failed  policy types
  Microsoft Corporation        1           7       0  tlsa

  day         reports  successful  failed  failure details
  2026-11-02        1           7       0

  no failure details
"
        );
        let mut out = Vec::new();
        write_text(&mut out, &ReportSummary::default()).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "no TLS-RPT reports to summarise\n"
        );
    }

    #[test]
    fn csv_output_of_a_pair_of_reports() {
        let mut out = Vec::new();
        write_csv(&mut out, &summarise(&pair(), None)).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "policy_domain,day,reporter,reports,policy_types,successful_sessions,\
             failed_sessions,failed_by_result_type\n\
             example.com,2026-11-01,Google Inc.,1,sts,100,2,validation-failure=2\n\
             example.com,2026-11-02,Microsoft Corporation,1,sts,50,1,sts-policy-fetch-error=1\n\
             example.net,2026-11-02,Microsoft Corporation,1,tlsa,7,0,\n"
        );
        let mut out = Vec::new();
        write_csv(&mut out, &ReportSummary::default()).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "policy_domain,day,reporter,reports,policy_types,successful_sessions,\
             failed_sessions,failed_by_result_type\n"
        );
    }

    #[test]
    fn text_of_the_real_example_com_reports_shows_where_details_and_summaries_disagree() {
        let mut out = Vec::new();
        write_text(
            &mut out,
            &summarise(&real_reports(), Some(&domain("example.com"))),
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\
example.com: 2 reports from 2 reporters; 0 successful sessions, 4 failed (100.0 % failed)

  reporter      reports  successful  failed  policy types
  Example Inc.        1           0       3  sts
  Mail.ru             1           0       1  sts

  day         reports  successful  failed  failure details
  2024-01-09        1           0       3  validation-failure 3
  2024-02-22        1           0       1  sts-policy-fetch-error 2

  failure details (5 failed sessions; the summaries count 4)
    by result type
      validation-failure      3
      sts-policy-fetch-error  2
    by receiving MX
      example.com  3
      (not given)  2
    by receiving IP
      173.212.201.41  3
      (not given)     2
    by sending IP
      (not given)     2
      209.85.222.201  2
      209.85.208.176  1
"
        );
    }

    /// One report with an sts and a tlsa policy for example.com, from a reporter whose name
    /// carries a formula and an escape sequence, failing from twelve sending addresses; its
    /// summary counts no failure at all.
    fn odd_report() -> Report {
        let details: Vec<String> = (1..=12)
            .map(|i| {
                format!(
                    r#"{{"result-type": "certificate-expired", "sending-mta-ip": "192.0.2.{i}",
                        "failed-session-count": {i}}}"#
                )
            })
            .collect();
        let json = format!(
            r#"{{"organization-name": "=cmd|' /C calc'!A0 \u001b[31mred",
                "date-range": {{"start-datetime": "2026-11-01T22:00:00-05:00",
                               "end-datetime": "2026-11-02T21:59:59-05:00"}},
                "contact-info": "tlsrpt@example.org", "report-id": "odd",
                "policies": [
                  {{"policy": {{"policy-type": "tlsa", "policy-domain": "example.com",
                               "policy-string": ["3 1 1 00"], "mx-host": []}},
                    "summary": {{"total-successful-session-count": 1,
                                "total-failure-session-count": 0}},
                    "failure-details": [{}]}},
                  {{"policy": {{"policy-type": "sts", "policy-domain": "example.com",
                               "policy-string": [], "mx-host": []}},
                    "summary": {{"total-successful-session-count": 2,
                                "total-failure-session-count": 0}},
                    "failure-details": []}}]}}"#,
            details.join(",")
        );
        stored(json.as_bytes(), "odd.json")
    }

    #[test]
    fn two_policies_of_one_report_count_once_and_odd_text_is_defused() {
        let summary = summarise(&[odd_report()], None);
        let d = &summary.domains[0];
        assert_eq!(d.reporters[0].reports, 1);
        assert_eq!(d.reporters[0].policy_types, types(&["sts", "tlsa"]));
        assert_eq!((d.total.successful, d.total.failed), (3, 0));
        // 1 + 2 + … + 12 = 78 in the details.
        assert_eq!(d.total.by_result_type, map(&[("certificate-expired", 78)]));
        assert_eq!(d.total.by_receiving_mx, map(&[(NOT_GIVEN, 78)]));
        assert_eq!(d.total.by_sending_ip.len(), 12);
        // 22:00 at -05:00 on 1 November is 03:00 UTC on 2 November.
        assert_eq!(d.days[0].day, date!(2026 - 11 - 02));
        assert_eq!(d.days[0].reports, 1);

        let mut out = Vec::new();
        write_text(&mut out, &summary).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[3],
            r"  =cmd|' /C calc'!A0 \u{1b}[31mred        1           3       0  sts, tlsa"
        );
        assert!(!text.contains('\u{1b}'));
        // The ten largest senders (12 down to 3), then the two smallest (1 + 2 sessions).
        let senders = lines
            .iter()
            .position(|l| *l == "    by sending IP")
            .unwrap();
        assert_eq!(
            lines[senders + 1..],
            [
                "      192.0.2.12  12",
                "      192.0.2.11  11",
                "      192.0.2.10  10",
                "      192.0.2.9    9",
                "      192.0.2.8    8",
                "      192.0.2.7    7",
                "      192.0.2.6    6",
                "      192.0.2.5    5",
                "      192.0.2.4    4",
                "      192.0.2.3    3",
                "      and 2 more (3 failed sessions)",
            ]
        );
        assert!(
            text.contains("  failure details (78 failed sessions; the summaries count 0)\n"),
            "{text}"
        );

        let mut out = Vec::new();
        write_csv(&mut out, &summary).unwrap();
        let csv = String::from_utf8(out).unwrap();
        assert_eq!(
            csv.lines().nth(1).unwrap(),
            "example.com,2026-11-02,'=cmd|' /C calc'!A0 \u{FFFD}[31mred,1,sts tlsa,3,0,\
             certificate-expired=78"
        );
        assert!(!csv.contains('\u{1b}'), "{csv}");
    }

    #[test]
    fn breakdowns_keep_the_largest_entries_and_sum_the_others() {
        // 1,005 sending addresses, address i failing i sessions.
        let details: Vec<String> = (1..=BREAKDOWN_LIMIT + 5)
            .map(|i| {
                format!(
                    r#"{{"result-type": "validation-failure",
                        "sending-mta-ip": "10.0.{}.{}", "failed-session-count": {i}}}"#,
                    i / 256,
                    i % 256
                )
            })
            .collect();
        let json = format!(
            r#"{{"organization-name": "Many", "report-id": "many", "contact-info": "a@b.example",
                "date-range": {{"start-datetime": "2026-11-01T00:00:00Z",
                               "end-datetime": "2026-11-01T23:59:59Z"}},
                "policies": [{{"policy": {{"policy-type": "no-policy-found",
                                          "policy-string": [], "policy-domain": "example.com"}},
                              "summary": {{"total-successful-session-count": 0,
                                          "total-failure-session-count": 0}},
                              "failure-details": [{}]}}]}}"#,
            details.join(",")
        );
        let summary = summarise(&[stored(json.as_bytes(), "many.json")], None);
        let senders = &summary.domains[0].total.by_sending_ip;
        assert_eq!(senders.len(), BREAKDOWN_LIMIT + 1);
        assert_eq!(senders["(5 others)"], 1 + 2 + 3 + 4 + 5);
        assert_eq!(senders["10.0.3.237"], 1005);
        assert!(!senders.contains_key("10.0.0.5"));
        assert_eq!(
            summary.domains[0].reporters[0].counts.by_sending_ip,
            *senders
        );
        let mut out = Vec::new();
        write_text(&mut out, &summary).unwrap();
        let text = String::from_utf8(out).unwrap();
        // Ten listed (1,005 down to 996), then 990 kept and the 5 summed: 995 more.
        assert!(
            text.contains("      10.0.3.228   996\n      and 995 more (495510 failed sessions)\n"),
            "{text}"
        );
    }

    #[test]
    fn no_details_despite_failures_is_said() {
        let mut report = odd_report();
        for policy in &mut report.policies {
            policy.failure_details.clear();
            policy.summary.total_failure_session_count = 4;
        }
        let mut out = Vec::new();
        write_text(&mut out, &summarise(&[report], None)).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text.lines().last().unwrap(),
            "  no failure details, although the summaries count 8 failed sessions"
        );
    }

    #[test]
    fn the_summary_serializes_days_as_dates() {
        let summary = summarise(&pair(), Some(&domain("example.net")));
        assert_eq!(
            serde_json::to_value(&summary).unwrap(),
            serde_json::json!({"domains": [{
                "policy_domain": "example.net",
                "reporters": [{
                    "reporter": "Microsoft Corporation", "reports": 1,
                    "counts": {"successful": 7, "failed": 0, "by_result_type": {},
                               "by_receiving_mx": {}, "by_receiving_ip": {},
                               "by_sending_ip": {}},
                    "policy_types": ["tlsa"],
                    "days": [{"day": "2026-11-02", "reports": 1, "policy_types": ["tlsa"],
                              "successful": 7, "failed": 0, "by_result_type": {}}]
                }],
                "total": {"successful": 7, "failed": 0, "by_result_type": {},
                          "by_receiving_mx": {}, "by_receiving_ip": {}, "by_sending_ip": {}},
                "days": [{"day": "2026-11-02", "reports": 1, "policy_types": ["tlsa"],
                          "successful": 7, "failed": 0, "by_result_type": {}}]
            }]})
        );
    }
}
