//! Summaries of the TLS-RPT reports (RFC 8460) a domain owner received: per policy domain,
//! the session totals each reporter gave, the failures broken down by result type, receiving
//! MX, receiving IP and sending IP, and the totals day by day; written as a table for people
//! ([`write_text`]) or as CSV for spreadsheets ([`write_csv`]). The [`ReportSummary`] itself
//! serializes as JSON.
//!
//! Pure: the reports come in as [`StoredReport`]s (from [`crate::history::History::reports`]),
//! the writers take any `impl Write`, and no clock is read.
//!
//! Two sources of counts are kept apart, because real reports do not always agree with
//! themselves: `successful` and `failed` are the senders' `summary` totals (RFC 8460 §4.4
//! `total-successful-session-count`, `total-failure-session-count`), while the breakdowns add
//! up the `failed-session-count` of each `failure-details` entry. Mail.ru, for one, reports
//! one failed session in its summary and two in its details.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Write};

use serde::{Serialize, Serializer};
use time::Date;
use time::macros::format_description;

use crate::csv_cell;
use crate::domain::DomainName;
use crate::history::StoredReport;
use crate::tlsrpt::report::{FailureDetail, PolicyReport};

/// The breakdown key of a failure-details entry that leaves the field out (policy-level
/// failures such as `sts-policy-fetch-error` have no MX and no receiving IP).
pub const NOT_GIVEN: &str = "(not given)";

/// How many entries of each breakdown [`write_text`] lists; the rest are counted in one
/// line. The JSON and CSV forms keep every entry.
const TEXT_TOP: usize = 10;

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
    pub reports: u32,
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
    pub successful: u64,
    /// The sum of `total-failure-session-count`.
    pub failed: u64,
    /// `failed-session-count` of the failure details, by `result-type`.
    pub by_result_type: BTreeMap<String, u64>,
    /// `failed-session-count` of the failure details, by `receiving-mx-hostname`
    /// ([`NOT_GIVEN`] when absent).
    pub by_receiving_mx: BTreeMap<String, u64>,
    /// `failed-session-count` of the failure details, by `receiving-ip` ([`NOT_GIVEN`] when
    /// absent).
    pub by_receiving_ip: BTreeMap<String, u64>,
    /// `failed-session-count` of the failure details, by `sending-mta-ip` ([`NOT_GIVEN`]
    /// when absent).
    pub by_sending_ip: BTreeMap<String, u64>,
}

/// The reports of one day: those whose `date-range` starts on that UTC day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DaySummary {
    /// The UTC day the date ranges start on (serialized as `YYYY-MM-DD`).
    #[serde(serialize_with = "iso_date")]
    pub day: Date,
    /// How many reports.
    pub reports: u32,
    /// The `policy-type`s applied, in name order.
    pub policy_types: Vec<String>,
    /// The sum of `total-successful-session-count`.
    pub successful: u64,
    /// The sum of `total-failure-session-count`.
    pub failed: u64,
    /// `failed-session-count` of the failure details, by `result-type`.
    pub by_result_type: BTreeMap<String, u64>,
}

/// Summarises the policies of `reports` for `domain` (every policy domain when `None`).
/// A report counts once for a domain even when it has several policies for it.
pub fn summarise(reports: &[StoredReport], domain: Option<&DomainName>) -> ReportSummary {
    let mut domains: BTreeMap<&DomainName, DomainTally<'_>> = BTreeMap::new();
    for (index, stored) in reports.iter().enumerate() {
        let report = &stored.report;
        let day = report.date_range.start().date();
        for policy in &report.policies {
            let policy_domain = &policy.policy.policy_domain;
            if domain.is_some_and(|wanted| wanted != policy_domain) {
                continue;
            }
            let tally = domains.entry(policy_domain).or_default();
            tally.total.add(index, policy);
            tally.days.entry(day).or_default().add(index, policy);
            let reporter = tally
                .reporters
                .entry(report.organization_name.as_str())
                .or_default();
            reporter.all.add(index, policy);
            reporter.days.entry(day).or_default().add(index, policy);
        }
    }
    ReportSummary {
        domains: domains
            .into_iter()
            .map(|(policy_domain, tally)| DomainSummary {
                policy_domain: policy_domain.clone(),
                reporters: tally
                    .reporters
                    .into_iter()
                    .map(|(name, reporter)| ReporterSummary {
                        reporter: name.to_owned(),
                        reports: reporter.all.report_count(),
                        policy_types: reporter.all.policy_type_names(),
                        counts: reporter.all.counts,
                        days: day_summaries(reporter.days),
                    })
                    .collect(),
                total: tally.total.counts,
                days: day_summaries(tally.days),
            })
            .collect(),
    }
}

/// One domain's policies while they are added up.
#[derive(Default)]
struct DomainTally<'a> {
    total: Tally,
    days: BTreeMap<Date, Tally>,
    reporters: BTreeMap<&'a str, ReporterTally>,
}

/// One reporter's policies for one domain while they are added up.
#[derive(Default)]
struct ReporterTally {
    all: Tally,
    days: BTreeMap<Date, Tally>,
}

/// Policies added up: which reports (by index) they came from, their types and sessions.
#[derive(Default)]
struct Tally {
    reports: BTreeSet<usize>,
    policy_types: BTreeSet<&'static str>,
    counts: Counts,
}

impl Tally {
    fn add(&mut self, report: usize, policy: &PolicyReport) {
        self.reports.insert(report);
        self.policy_types.insert(policy.policy.policy_type.as_str());
        self.counts.add(policy);
    }

    fn report_count(&self) -> u32 {
        u32::try_from(self.reports.len()).unwrap_or(u32::MAX)
    }

    fn policy_type_names(&self) -> Vec<String> {
        self.policy_types.iter().map(|&t| t.to_owned()).collect()
    }
}

impl Counts {
    /// Adds one policy's totals and failure details. Sums saturate: a report claiming
    /// `u64::MAX` sessions must not abort the summary.
    fn add(&mut self, policy: &PolicyReport) {
        let summary = &policy.summary;
        self.successful = self
            .successful
            .saturating_add(summary.total_successful_session_count);
        self.failed = self
            .failed
            .saturating_add(summary.total_failure_session_count);
        for detail in &policy.failure_details {
            self.add_detail(detail);
        }
    }

    fn add_detail(&mut self, detail: &FailureDetail) {
        let n = detail.failed_session_count;
        bump(
            &mut self.by_result_type,
            detail.result_type.as_str().to_owned(),
            n,
        );
        bump(
            &mut self.by_receiving_mx,
            given(detail.receiving_mx_hostname.as_ref()),
            n,
        );
        bump(
            &mut self.by_receiving_ip,
            given(detail.receiving_ip.as_ref()),
            n,
        );
        bump(
            &mut self.by_sending_ip,
            given(detail.sending_mta_ip.as_ref()),
            n,
        );
    }
}

/// Adds `n` to the count under `key`.
fn bump(map: &mut BTreeMap<String, u64>, key: String, n: u64) {
    let count = map.entry(key).or_default();
    *count = count.saturating_add(n);
}

/// The breakdown key of an optional field.
fn given(value: Option<&impl ToString>) -> String {
    value.map_or_else(|| NOT_GIVEN.to_owned(), ToString::to_string)
}

fn day_summaries(days: BTreeMap<Date, Tally>) -> Vec<DaySummary> {
    days.into_iter()
        .map(|(day, tally)| DaySummary {
            day,
            reports: tally.report_count(),
            policy_types: tally.policy_type_names(),
            successful: tally.counts.successful,
            failed: tally.counts.failed,
            by_result_type: tally.counts.by_result_type,
        })
        .collect()
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
    if s.domains.is_empty() {
        return writeln!(out, "no TLS-RPT reports to summarise");
    }
    for (i, d) in s.domains.iter().enumerate() {
        if i > 0 {
            writeln!(out)?;
        }
        write_domain(out, d)?;
    }
    Ok(())
}

fn write_domain(out: &mut impl Write, d: &DomainSummary) -> io::Result<()> {
    let reports: u64 = d.reporters.iter().map(|r| u64::from(r.reports)).sum();
    let t = &d.total;
    write!(
        out,
        "{}: {} from {}; {}, {} failed",
        d.policy_domain,
        counted(reports, "report"),
        counted(d.reporters.len() as u64, "reporter"),
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
        .fold(0u64, |sum, n| sum.saturating_add(*n));
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
            let sessions = rest.iter().fold(0u64, |sum, (_, n)| sum.saturating_add(*n));
            writeln!(
                out,
                "      and {} more ({})",
                rest.len(),
                counted(sessions, "failed session")
            )?;
        }
    }
    Ok(())
}

/// A breakdown's entries, the largest count first, ties in key order.
fn largest_first(map: &BTreeMap<String, u64>) -> Vec<(&str, u64)> {
    let mut entries: Vec<(&str, u64)> = map.iter().map(|(k, &n)| (k.as_str(), n)).collect();
    // Stable: equal counts keep the map's key order.
    entries.sort_by_key(|&(_, n)| Reverse(n));
    entries
}

/// `12.5 % failed`, to one decimal, rounded half up; `None` without sessions.
fn failure_rate(successful: u64, failed: u64) -> Option<String> {
    let total = u128::from(successful) + u128::from(failed);
    if total == 0 {
        return None;
    }
    let tenths = (u128::from(failed) * 1000 + total / 2) / total;
    Some(format!("{}.{} % failed", tenths / 10, tenths % 10))
}

/// `1 report`, `2 reports`, `0 reports`.
fn counted(n: u64, noun: &str) -> String {
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
/// cells follow the rule of [`crate::csv_cell`] (no control characters; a leading `'` where
/// a spreadsheet would see a formula); the counts are plain integers.
pub fn write_csv(out: impl Write, s: &ReportSummary) -> Result<(), csv::Error> {
    let mut writer = csv::Writer::from_writer(out);
    writer.write_record(CSV_HEADER)?;
    for d in &s.domains {
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
    }
    writer.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tlsrpt::report::read_report;
    use time::macros::{date, datetime};

    fn stored(json: &[u8], source: &str) -> StoredReport {
        StoredReport {
            source: source.to_owned(),
            received_at: datetime!(2026-11-30 08:00 UTC),
            report: read_report(json).unwrap().report,
        }
    }

    fn domain(name: &str) -> DomainName {
        DomainName::parse(name).unwrap()
    }

    fn map(entries: &[(&str, u64)]) -> BTreeMap<String, u64> {
        entries.iter().map(|&(k, n)| (k.to_owned(), n)).collect()
    }

    fn types(names: &[&str]) -> Vec<String> {
        names.iter().map(|&n| n.to_owned()).collect()
    }

    /// Every published report in fixtures/tlsrpt-reports that is a JSON file (the three
    /// under parsedmarc/ and the three attachments under extracted/).
    fn real_reports() -> Vec<StoredReport> {
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
        let reporters: Vec<(&str, u32, u64, u64, &[String])> = ex
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
        let reporters: Vec<(&str, u32, u64, u64)> = mox
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
        let days: Vec<(Date, u64, u64)> = mox
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
    fn pair() -> Vec<StoredReport> {
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
    fn odd_report() -> StoredReport {
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
    fn no_details_despite_failures_is_said() {
        let mut report = odd_report();
        for policy in &mut report.report.policies {
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
