//! The TLS-RPT reports (RFC 8460) received from other senders: stored once per reporter and
//! report id, with their policies and failure details as rows that the summaries add up in
//! SQL. A session count (u64) is stored as its high and low 32 bits, so that sums stay exact.

use std::path::Path;

use rusqlite::{Connection, TransactionBehavior, params};
use time::OffsetDateTime;
use time::macros::format_description;

use super::error::During;
use super::schema::REPORT_ROWS_VERSION;
use super::{History, HistoryError, stored_time};
use mxprobe_core::domain::DomainName;
use mxprobe_core::tlsrpt::report::{Report, read_report};

/// SQL ordering the groups of `report_failures` by their summed sessions, largest first,
/// exactly: the sum is `SUM(hi) × 2³² + SUM(lo)`, compared as its high part
/// `SUM(hi) + SUM(lo) / 2³²` and then its low 32 bits.
const LARGEST_SUM_FIRST: &str = "SUM(f.sessions_hi) + (SUM(f.sessions_lo) >> 32) DESC, \
                                 SUM(f.sessions_lo) & 4294967295 DESC";

impl History {
    /// Stores a received TLS-RPT report: `report` as read from `json` (the decompressed JSON
    /// text, kept as received), `source` saying where it was read from (a file path, a
    /// message in a mail folder) and `received_at` when it was read. A report is known by its
    /// reporter (`organization-name`) and `report-id`: storing one already there changes
    /// nothing and gives [`StoreOutcome::Duplicate`].
    ///
    /// `json` must read back as `report` ([`HistoryError::ReportMismatch`] otherwise): the
    /// rows come from `report`, and a migration may build them again from `json`. On error
    /// nothing is stored.
    pub fn store_report(
        &mut self,
        report: &Report,
        json: &[u8],
        source: &str,
        received_at: OffsetDateTime,
    ) -> Result<StoreOutcome, HistoryError> {
        let reporter = &report.organization_name;
        let id = &report.report_id;
        let text = std::str::from_utf8(json).map_err(|_| HistoryError::ReportNotText {
            origin: source.to_owned(),
            reporter: reporter.clone(),
            report_id: id.clone(),
        })?;
        match read_report(json) {
            Ok(read) if read.report == *report => {}
            Ok(_) => {
                return Err(HistoryError::ReportMismatch {
                    origin: source.to_owned(),
                    reporter: reporter.clone(),
                    report_id: id.clone(),
                });
            }
            Err(error) => {
                return Err(HistoryError::ReportUnreadable {
                    origin: source.to_owned(),
                    reporter: reporter.clone(),
                    report_id: id.clone(),
                    error: Box::new(error),
                });
            }
        }
        let start = stored_time(report.date_range.start())?;
        let end = stored_time(report.date_range.end())?;
        let received = stored_time(received_at)?;
        let mut domains: Vec<&str> = report
            .policies
            .iter()
            .map(|p| p.policy.policy_domain.as_str())
            .collect();
        domains.sort_unstable();
        domains.dedup();

        let what = || format!("storing report {id:?} from {reporter:?} (read from {source})");
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .during(what)?;
        let inserted = tx
            .execute(
                "INSERT INTO reports (reporter, report_id, range_start, range_end, received_at,
                     source, json)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (reporter, report_id) DO NOTHING",
                params![reporter, id, start, end, received, source, text],
            )
            .during(what)?;
        if inserted == 0 {
            // Dropping the transaction rolls it back; it wrote nothing anyway.
            return Ok(StoreOutcome::Duplicate);
        }
        let row = tx.last_insert_rowid();
        for domain in domains {
            tx.execute(
                "INSERT INTO report_domains (domain, report) VALUES (?1, ?2)",
                params![domain, row],
            )
            .during(what)?;
        }
        insert_report_rows(&tx, row, report).during(what)?;
        tx.commit().during(what)?;
        Ok(StoreOutcome::Stored)
    }

    /// Up to `limit` policy domains of the stored reports, in name order, after `after`
    /// (from the first when `None`), of the reports whose date range ends at or after
    /// `since`. Call again with the last one to page through all of them.
    pub fn report_domains(
        &self,
        after: Option<&DomainName>,
        since: Option<OffsetDateTime>,
        limit: usize,
    ) -> Result<Vec<DomainName>, HistoryError> {
        let since = since.map(stored_time).transpose()?;
        let what = || "reading the policy domains of the stored reports".to_owned();
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT DISTINCT p.domain FROM report_policies p JOIN reports r ON r.id = p.report
                 WHERE (?1 IS NULL OR p.domain > ?1) AND (?2 IS NULL OR r.range_end >= ?2)
                 ORDER BY p.domain LIMIT ?3",
            )
            .during(what)?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let names = stmt
            .query_map(
                params![after.map(DomainName::as_str), since, limit],
                |row| row.get::<_, String>(0),
            )
            .during(what)?
            .collect::<rusqlite::Result<Vec<_>>>()
            .during(what)?;
        names
            .into_iter()
            .map(|name| stored_domain(&name, "report_policies.domain"))
            .collect()
    }

    /// The policies for `domain` in the reports whose date range ends at or after `since`,
    /// summed per reporter and UTC day (the day each report's range starts on), ordered by
    /// reporter then day.
    pub fn policy_sums(
        &self,
        domain: &DomainName,
        since: Option<OffsetDateTime>,
    ) -> Result<Vec<PolicySums>, HistoryError> {
        let since = since.map(stored_time).transpose()?;
        let what = || format!("summing the reported sessions of {domain}");
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT r.reporter, substr(r.range_start, 1, 10) AS group_day,
                        COUNT(DISTINCT p.report), group_concat(DISTINCT p.policy_type),
                        SUM(p.successful_hi), SUM(p.successful_lo),
                        SUM(p.failed_hi), SUM(p.failed_lo)
                 FROM report_policies p JOIN reports r ON r.id = p.report
                 WHERE p.domain = ?1 AND (?2 IS NULL OR r.range_end >= ?2)
                 GROUP BY r.reporter, group_day
                 ORDER BY r.reporter, group_day",
            )
            .during(what)?;
        let mut rows = stmt.query(params![domain.as_str(), since]).during(what)?;
        let mut sums = Vec::new();
        while let Some(row) = rows.next().during(what)? {
            let reporter: String = row.get(0).during(what)?;
            let day: String = row.get(1).during(what)?;
            let reports: i64 = row.get(2).during(what)?;
            let types: String = row.get(3).during(what)?;
            let halves: [i64; 4] = [
                row.get(4).during(what)?,
                row.get(5).during(what)?,
                row.get(6).during(what)?,
                row.get(7).during(what)?,
            ];
            let mut policy_types: Vec<String> = types.split(',').map(str::to_owned).collect();
            policy_types.sort();
            sums.push(PolicySums {
                day: stored_day(&day, "reports.range_start")?,
                reports: u64::try_from(reports).unwrap_or_default(),
                policy_types,
                successful: stored_sum(halves[0], halves[1], || {
                    format!("the successful sessions of {domain} from {reporter:?}")
                })?,
                failed: stored_sum(halves[2], halves[3], || {
                    format!("the failed sessions of {domain} from {reporter:?}")
                })?,
                reporter,
            });
        }
        Ok(sums)
    }

    /// The failed sessions of the failure details for `domain` (in the reports whose date
    /// range ends at or after `since`), summed by `key` within each group of `scope`; in
    /// each group the `keep` largest entries, largest first, and the rest summed in one
    /// [`BreakdownKey::Others`] entry at the end. Groups come ordered by reporter, then day.
    pub fn failure_sums(
        &self,
        domain: &DomainName,
        since: Option<OffsetDateTime>,
        key: FailureKey,
        scope: SumScope,
        keep: usize,
    ) -> Result<Vec<FailureSums>, HistoryError> {
        let since = since.map(stored_time).transpose()?;
        let what = || {
            format!(
                "summing the reported failures of {domain} by {}",
                key.column()
            )
        };
        // The column and the scope come from these fixed choices, never from input.
        let sql = format!(
            "SELECT {reporter} AS group_reporter, {day} AS group_day, f.{key} AS group_key,
                    SUM(f.sessions_hi), SUM(f.sessions_lo)
             FROM report_failures f JOIN reports r ON r.id = f.report
             WHERE f.domain = ?1 AND (?2 IS NULL OR r.range_end >= ?2)
             GROUP BY group_reporter, group_day, group_key
             ORDER BY group_reporter, group_day, {largest_first}, group_key",
            reporter = if scope.reporter { "r.reporter" } else { "NULL" },
            day = if scope.day {
                "substr(r.range_start, 1, 10)"
            } else {
                "NULL"
            },
            key = key.column(),
            largest_first = LARGEST_SUM_FIRST,
        );
        let mut stmt = self.conn.prepare_cached(&sql).during(what)?;
        let mut rows = stmt.query(params![domain.as_str(), since]).during(what)?;
        let mut groups: Vec<FailureSums> = Vec::new();
        let mut others = (0u64, 0u128);
        while let Some(row) = rows.next().during(what)? {
            let reporter: Option<String> = row.get(0).during(what)?;
            let day = row
                .get::<_, Option<String>>(1)
                .during(what)?
                .map(|day| stored_day(&day, "reports.range_start"))
                .transpose()?;
            let value: Option<String> = row.get(2).during(what)?;
            let sessions = stored_sum(row.get(3).during(what)?, row.get(4).during(what)?, || {
                format!("the failed sessions of {domain}")
            })?;
            let same_group = groups
                .last()
                .is_some_and(|g| g.reporter == reporter && g.day == day);
            if !same_group {
                close_group(&mut groups, &mut others);
                groups.push(FailureSums {
                    reporter,
                    day,
                    entries: Vec::new(),
                });
            }
            let group = groups.last_mut().expect("a group was pushed above");
            if group.entries.len() < keep {
                let key = value.map_or(BreakdownKey::NotGiven, BreakdownKey::Given);
                group.entries.push((key, sessions));
            } else {
                others.0 += 1;
                others.1 = add_sessions(others.1, sessions, || {
                    format!("the failed sessions of {domain}")
                })?;
            }
        }
        close_group(&mut groups, &mut others);
        Ok(groups)
    }

    /// What the reports say about `domain` (those whose date range ends at or after
    /// `since`): how many cover it, their session totals, and their failure details summed
    /// per reporter, policy type, result type, receiving MX and receiving IP, the `keep`
    /// largest of them (the rest counted in [`ReportedFailures::unlisted`]).
    pub fn reported_failures(
        &self,
        domain: &DomainName,
        since: Option<OffsetDateTime>,
        keep: usize,
    ) -> Result<ReportedFailures, HistoryError> {
        let since = since.map(stored_time).transpose()?;
        let what = || format!("summing the reported failures of {domain}");
        let (reports, halves) = self
            .conn
            .query_row(
                "SELECT COUNT(DISTINCT p.report), SUM(p.successful_hi), SUM(p.successful_lo),
                        SUM(p.failed_hi), SUM(p.failed_lo)
                 FROM report_policies p JOIN reports r ON r.id = p.report
                 WHERE p.domain = ?1 AND (?2 IS NULL OR r.range_end >= ?2)",
                params![domain.as_str(), since],
                |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        [
                            row.get::<_, Option<i64>>(1)?.unwrap_or(0),
                            row.get::<_, Option<i64>>(2)?.unwrap_or(0),
                            row.get::<_, Option<i64>>(3)?.unwrap_or(0),
                            row.get::<_, Option<i64>>(4)?.unwrap_or(0),
                        ],
                    ))
                },
            )
            .during(what)?;
        let mut totals = ReportedFailures {
            reports: u64::try_from(reports).unwrap_or_default(),
            successful: stored_sum(halves[0], halves[1], || {
                format!("the successful sessions of {domain}")
            })?,
            failed: stored_sum(halves[2], halves[3], || {
                format!("the failed sessions of {domain}")
            })?,
            failures: Vec::new(),
            unlisted: (0, 0),
        };
        let sql = format!(
            "SELECT r.reporter, f.policy_type, f.result_type, f.receiving_mx, f.receiving_ip,
                    SUM(f.sessions_hi), SUM(f.sessions_lo),
                    MIN(substr(r.range_start, 1, 10)), MAX(substr(r.range_start, 1, 10))
             FROM report_failures f JOIN reports r ON r.id = f.report
             WHERE f.domain = ?1 AND (?2 IS NULL OR r.range_end >= ?2)
             GROUP BY r.reporter, f.policy_type, f.result_type, f.receiving_mx, f.receiving_ip
             ORDER BY {LARGEST_SUM_FIRST}, r.reporter, f.policy_type, f.result_type,
                      f.receiving_mx, f.receiving_ip"
        );
        let mut stmt = self.conn.prepare_cached(&sql).during(what)?;
        let mut rows = stmt.query(params![domain.as_str(), since]).during(what)?;
        while let Some(row) = rows.next().during(what)? {
            let sessions = stored_sum(row.get(5).during(what)?, row.get(6).during(what)?, || {
                format!("the failed sessions of {domain}")
            })?;
            if totals.failures.len() >= keep {
                totals.unlisted.0 += 1;
                totals.unlisted.1 = add_sessions(totals.unlisted.1, sessions, || {
                    format!("the failed sessions of {domain}")
                })?;
                continue;
            }
            let receiving_mx = row
                .get::<_, Option<String>>(3)
                .during(what)?
                .map(|mx| stored_domain(&mx, "report_failures.receiving_mx"))
                .transpose()?;
            let receiving_ip = row
                .get::<_, Option<String>>(4)
                .during(what)?
                .map(|ip| {
                    ip.parse::<std::net::IpAddr>()
                        .map_err(|_| HistoryError::Corrupt {
                            what: "report_failures.receiving_ip".to_owned(),
                            value: ip,
                        })
                })
                .transpose()?;
            totals.failures.push(FailureGroup {
                reporter: row.get(0).during(what)?,
                policy_type: row.get(1).during(what)?,
                result_type: row.get(2).during(what)?,
                receiving_mx,
                receiving_ip,
                sessions,
                first_day: stored_day(
                    &row.get::<_, String>(7).during(what)?,
                    "reports.range_start",
                )?,
                last_day: stored_day(
                    &row.get::<_, String>(8).during(what)?,
                    "reports.range_start",
                )?,
            });
        }
        Ok(totals)
    }
}

/// The policies of a domain's reports from one reporter on one day, summed
/// ([`History::policy_sums`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicySums {
    /// The reporter (`organization-name`).
    pub reporter: String,
    /// The UTC day the reports' date ranges start on.
    pub day: time::Date,
    /// How many reports (one with several policies for the domain counts once).
    pub reports: u64,
    /// The policy types applied, in name order.
    pub policy_types: Vec<String>,
    /// The sum of `total-successful-session-count`.
    pub successful: u128,
    /// The sum of `total-failure-session-count`.
    pub failed: u128,
}

/// What failure details are summed by ([`History::failure_sums`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureKey {
    /// `result-type`.
    ResultType,
    /// `receiving-mx-hostname`.
    ReceivingMx,
    /// `receiving-ip`.
    ReceivingIp,
    /// `sending-mta-ip`.
    SendingIp,
}

impl FailureKey {
    /// The column of `report_failures`.
    fn column(self) -> &'static str {
        match self {
            Self::ResultType => "result_type",
            Self::ReceivingMx => "receiving_mx",
            Self::ReceivingIp => "receiving_ip",
            Self::SendingIp => "sending_ip",
        }
    }
}

/// Within what failure details are summed: the whole domain (both `false`), per reporter,
/// per day, or per reporter and day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SumScope {
    /// One group per reporter.
    pub reporter: bool,
    /// One group per UTC day.
    pub day: bool,
}

/// One entry of a breakdown.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BreakdownKey {
    /// The value of the field.
    Given(String),
    /// Details without the field.
    NotGiven,
    /// The entries past the number kept, summed.
    Others {
        /// How many entries.
        entries: u64,
    },
}

/// The sums of one group ([`History::failure_sums`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureSums {
    /// The reporter, when grouped by reporter.
    pub reporter: Option<String>,
    /// The UTC day, when grouped by day.
    pub day: Option<time::Date>,
    /// The failed sessions per key, largest first, [`BreakdownKey::Others`] last.
    pub entries: Vec<(BreakdownKey, u128)>,
}

/// A domain's reports in sums ([`History::reported_failures`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportedFailures {
    /// How many reports have a policy for the domain.
    pub reports: u64,
    /// The sum of their `total-successful-session-count`.
    pub successful: u128,
    /// The sum of their `total-failure-session-count`.
    pub failed: u128,
    /// The failure details summed per kind, largest first.
    pub failures: Vec<FailureGroup>,
    /// The kinds past the number kept: how many, and their sessions.
    pub unlisted: (u64, u128),
}

/// The failure details of one reporter, policy type, result type, receiving MX and
/// receiving IP, summed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureGroup {
    /// The reporter.
    pub reporter: String,
    /// `policy-type`.
    pub policy_type: String,
    /// `result-type`, as reported.
    pub result_type: String,
    /// `receiving-mx-hostname`, when given.
    pub receiving_mx: Option<DomainName>,
    /// `receiving-ip`, when given.
    pub receiving_ip: Option<std::net::IpAddr>,
    /// The failed sessions.
    pub sessions: u128,
    /// The first UTC day (date-range start) of the reports that show it.
    pub first_day: time::Date,
    /// The last such day.
    pub last_day: time::Date,
}

/// Ends the last group of [`History::failure_sums`]: the entries past those kept as one
/// entry.
fn close_group(groups: &mut [FailureSums], others: &mut (u64, u128)) {
    if let Some(group) = groups.last_mut()
        && others.0 > 0
    {
        group
            .entries
            .push((BreakdownKey::Others { entries: others.0 }, others.1));
    }
    *others = (0, 0);
}

/// `a + b`, or [`HistoryError::SumTooLarge`] naming `what`.
pub fn add_sessions(a: u128, b: u128, what: impl FnOnce() -> String) -> Result<u128, HistoryError> {
    a.checked_add(b)
        .ok_or_else(|| HistoryError::SumTooLarge { what: what() })
}

/// A sum of stored session counts from the sums of their halves.
fn stored_sum(hi: i64, lo: i64, what: impl FnOnce() -> String) -> Result<u128, HistoryError> {
    count_from_halves(hi, lo).ok_or_else(|| HistoryError::Corrupt {
        what: what(),
        value: format!("{hi}, {lo}"),
    })
}

/// A stored domain name read back.
fn stored_domain(name: &str, what: &str) -> Result<DomainName, HistoryError> {
    DomainName::parse(name).map_err(|_| HistoryError::Corrupt {
        what: what.to_owned(),
        value: name.to_owned(),
    })
}

/// The `YYYY-MM-DD` start of a stored time, read back as a date.
fn stored_day(day: &str, what: &str) -> Result<time::Date, HistoryError> {
    time::Date::parse(day, format_description!("[year]-[month]-[day]")).map_err(|_| {
        HistoryError::Corrupt {
            what: what.to_owned(),
            value: day.to_owned(),
        }
    })
}

/// What [`History::store_report`] did with a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StoreOutcome {
    /// The report was new and is now stored.
    Stored,
    /// A report from the same reporter with the same report id was already stored; nothing
    /// changed.
    Duplicate,
}

/// Migration 3: the policy and failure rows of every report already stored, read again
/// from its JSON one at a time.
pub(super) fn fill_report_rows(
    tx: &Connection,
    path: &Path,
    from: u32,
) -> Result<(), HistoryError> {
    let migrate_error = |source| HistoryError::Migrate {
        path: path.to_owned(),
        from,
        to: REPORT_ROWS_VERSION,
        source,
    };
    let mut stmt = tx
        .prepare("SELECT id, reporter, report_id, source, json FROM reports ORDER BY id")
        .map_err(migrate_error)?;
    let mut rows = stmt.query([]).map_err(migrate_error)?;
    while let Some(row) = rows.next().map_err(migrate_error)? {
        let id: i64 = row.get(0).map_err(migrate_error)?;
        let json: String = row.get(4).map_err(migrate_error)?;
        let report = match read_report(json.as_bytes()) {
            Ok(read) => read.report,
            Err(error) => {
                return Err(HistoryError::StoredReportUnreadable {
                    origin: row.get(3).map_err(migrate_error)?,
                    reporter: row.get(1).map_err(migrate_error)?,
                    report_id: row.get(2).map_err(migrate_error)?,
                    error: Box::new(error),
                });
            }
        };
        insert_report_rows(tx, id, &report).map_err(migrate_error)?;
    }
    Ok(())
}

/// A session count as stored: its high and low 32 bits (see migration 3).
fn count_halves(n: u64) -> (i64, i64) {
    (i64::from((n >> 32) as u32), i64::from(n as u32))
}

/// A sum of stored counts, from the sums of their halves; `None` for a negative sum, which
/// mxprobe never writes.
fn count_from_halves(hi: i64, lo: i64) -> Option<u128> {
    let hi = u128::try_from(hi).ok()?;
    let lo = u128::try_from(lo).ok()?;
    Some((hi << 32) + lo)
}

/// The policy and failure-detail rows of one report.
fn insert_report_rows(conn: &Connection, report_row: i64, report: &Report) -> rusqlite::Result<()> {
    let mut policy = conn.prepare_cached(
        "INSERT INTO report_policies (report, domain, policy_type, successful_hi,
             successful_lo, failed_hi, failed_lo)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    let mut failure = conn.prepare_cached(
        "INSERT INTO report_failures (report, domain, policy_type, result_type, receiving_mx,
             receiving_ip, sending_ip, sessions_hi, sessions_lo)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?;
    for p in &report.policies {
        let domain = p.policy.policy_domain.as_str();
        let policy_type = p.policy.policy_type.as_str();
        let (successful_hi, successful_lo) = count_halves(p.summary.total_successful_session_count);
        let (failed_hi, failed_lo) = count_halves(p.summary.total_failure_session_count);
        policy.execute(params![
            report_row,
            domain,
            policy_type,
            successful_hi,
            successful_lo,
            failed_hi,
            failed_lo
        ])?;
        for detail in &p.failure_details {
            let (hi, lo) = count_halves(detail.failed_session_count);
            failure.execute(params![
                report_row,
                domain,
                policy_type,
                detail.result_type.as_str(),
                detail
                    .receiving_mx_hostname
                    .as_ref()
                    .map(DomainName::as_str),
                detail.receiving_ip.map(|ip| ip.to_string()),
                detail.sending_mta_ip.map(|ip| ip.to_string()),
                hi,
                lo
            ])?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use time::macros::datetime;

    use super::super::test_support::*;
    use super::*;
    use mxprobe_core::tlsrpt::report::ReadError;

    /// How many rows `table` has.
    fn rows(h: &History, table: &str) -> i64 {
        h.conn
            .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |row| {
                row.get(0)
            })
            .unwrap()
    }

    #[test]
    fn sums_are_exact_past_u64_and_breakdowns_keep_the_largest() {
        let dir = TempDir::new("sums");
        let mut h = History::open(&dir.db()).unwrap();
        // Two reports claiming u64::MAX successful sessions each, and failure details from
        // five sending addresses.
        let huge = |id: &str| {
            let details: Vec<_> = (1..=5u64)
                .map(|i| {
                    json!({"result-type": "validation-failure",
                           "sending-mta-ip": format!("192.0.2.{i}"),
                           "failed-session-count": u64::MAX - 5 + i})
                })
                .collect();
            json!({"organization-name": "Big", "report-id": id,
                   "date-range": {"start-datetime": "2024-01-09T00:00:00Z",
                                  "end-datetime": "2024-01-09T23:59:59Z"},
                   "contact-info": "tlsrpt@example.org",
                   "policies": [{"policy": {"policy-type": "no-policy-found",
                                            "policy-string": [], "policy-domain": "example.com"},
                                 "summary": {"total-successful-session-count": u64::MAX,
                                             "total-failure-session-count": u64::MAX},
                                 "failure-details": details}]})
            .to_string()
        };
        for id in ["a", "b"] {
            let json = huge(id).replace("\"Big\"", &format!("\"Big {id}\""));
            h.store_report(
                &read(json.as_bytes()),
                json.as_bytes(),
                id,
                datetime!(2026-11-30 08:00 UTC),
            )
            .unwrap();
        }
        let example = example();
        let sums = h.policy_sums(&example, None).unwrap();
        assert_eq!(sums.len(), 2);
        assert_eq!(
            (sums[0].reporter.as_str(), sums[1].reporter.as_str()),
            ("Big a", "Big b")
        );
        assert_eq!(sums[0].successful, u128::from(u64::MAX));
        assert_eq!(sums[1].failed, u128::from(u64::MAX));
        assert_eq!(sums[0].reports, 1);
        // Per reporter: each has its own five addresses.
        let per_reporter = h
            .failure_sums(
                &example,
                None,
                FailureKey::SendingIp,
                SumScope {
                    reporter: true,
                    day: true,
                },
                5,
            )
            .unwrap();
        assert_eq!(per_reporter.len(), 2);
        assert_eq!(per_reporter[1].reporter.as_deref(), Some("Big b"));
        assert_eq!(
            per_reporter[1].day,
            Some(time::macros::date!(2024 - 01 - 09))
        );
        assert_eq!(per_reporter[1].entries.len(), 5);
        // For the whole domain, both reporters' sessions are summed per address, and only
        // the two largest are kept.
        let by_sender = h
            .failure_sums(
                &example,
                None,
                FailureKey::SendingIp,
                SumScope {
                    reporter: false,
                    day: false,
                },
                2,
            )
            .unwrap();
        assert_eq!(by_sender.len(), 1);
        assert_eq!(
            (by_sender[0].reporter.as_deref(), by_sender[0].day),
            (None, None)
        );
        let each = |i: u64| 2 * u128::from(u64::MAX - 5 + i);
        assert_eq!(
            by_sender[0].entries,
            [
                (BreakdownKey::Given("192.0.2.5".to_owned()), each(5)),
                (BreakdownKey::Given("192.0.2.4".to_owned()), each(4)),
                (
                    BreakdownKey::Others { entries: 3 },
                    each(1) + each(2) + each(3)
                ),
            ]
        );
        let reported = h.reported_failures(&example, None, 1).unwrap();
        assert_eq!(reported.reports, 2);
        assert_eq!(reported.failed, 2 * u128::from(u64::MAX));
        // Two kinds, one per reporter (no-policy-found, validation-failure, no MX, no
        // address); one listed, the other counted.
        assert_eq!(reported.failures.len(), 1);
        assert_eq!(
            reported.failures[0].sessions,
            (1..=5).map(each).sum::<u128>() / 2
        );
        assert_eq!(reported.unlisted, (1, (1..=5).map(each).sum::<u128>() / 2));
        assert_eq!(
            add_sessions(u128::MAX, 1, || "x".to_owned())
                .unwrap_err()
                .to_string(),
            "x add up to more than 2^128 - 1, which mxprobe cannot count"
        );
    }

    #[test]
    fn reports_are_stored_once_and_found_by_domain_and_date() {
        let dir = TempDir::new("reports");
        let mut h = History::open(&dir.db()).unwrap();
        let at = datetime!(2026-11-30 08:00 UTC);
        // Two policies for example.com and one for example.net in one report.
        let multi = made_report(
            "Example Org",
            "multi",
            "2024-01-09",
            &["example.com", "example.net", "example.com"],
        );
        // The same report id as smtp_tls.json, from another reporter.
        let other = made_report(
            "Other Org",
            "2024-01-09T00:00:00Z_example.com",
            "2024-03-01",
            &["example.org"],
        );
        for (json, source) in [
            (MAIL_RU, "mail.ru.json"),
            (multi.as_bytes(), "multi.json"),
            (RFC8460, "rfc8460.json"),
            (SMTP_TLS, "smtp_tls.json"),
            (other.as_bytes(), "other.json"),
        ] {
            assert_eq!(
                h.store_report(&read(json), json, source, at).unwrap(),
                StoreOutcome::Stored,
                "{source}"
            );
        }
        // Again, from elsewhere and later: nothing changes.
        assert_eq!(
            h.store_report(
                &read(SMTP_TLS),
                SMTP_TLS,
                "inbox/42",
                datetime!(2026-12-01 00:00 UTC)
            )
            .unwrap(),
            StoreOutcome::Duplicate
        );

        assert_eq!(rows(&h, "reports"), 5);
        // The first copy stays as it was received, byte for byte.
        let stored: (String, String, String) = h
            .conn
            .query_row(
                "SELECT source, received_at, json FROM reports WHERE reporter = 'Example Inc.'",
                [],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
            .unwrap();
        assert_eq!(
            stored,
            (
                "smtp_tls.json".to_owned(),
                "2026-11-30T08:00:00.000000000Z".to_owned(),
                String::from_utf8(SMTP_TLS.to_vec()).unwrap()
            )
        );

        // Per domain: the reporters with a policy for it, each report counted once (multi
        // has two policies for example.com, whose sessions add up).
        let domain = |name: &str| DomainName::parse(name).unwrap();
        let reporters = |name: &str, since| -> Vec<(String, u64, u128)> {
            h.policy_sums(&domain(name), since)
                .unwrap()
                .into_iter()
                .map(|s| (s.reporter, s.reports, s.successful))
                .collect()
        };
        let owned = |list: &[(&str, u64, u128)]| -> Vec<(String, u64, u128)> {
            list.iter()
                .map(|(r, n, ok)| ((*r).to_owned(), *n, *ok))
                .collect()
        };
        assert_eq!(
            reporters("example.com", None),
            owned(&[
                ("Example Inc.", 1, 0),
                ("Example Org", 1, 2),
                ("Mail.ru", 1, 0)
            ])
        );
        assert_eq!(
            reporters("company-y.example", None),
            owned(&[("Company-X", 1, 5326)])
        );
        assert_eq!(
            reporters("example.net", None),
            owned(&[("Example Org", 1, 1)])
        );
        assert_eq!(
            reporters("example.org", None),
            owned(&[("Other Org", 1, 1)])
        );
        assert_eq!(reporters("nowhere.example", None), owned(&[]));

        // `since` keeps the reports whose range ends at or after it: smtp_tls.json and
        // multi end 2024-01-09T23:59:59Z, mail.ru.json at 2024-02-23T00:00:00Z.
        assert_eq!(
            reporters("example.com", Some(datetime!(2024-01-09 23:59:59 UTC))),
            owned(&[
                ("Example Inc.", 1, 0),
                ("Example Org", 1, 2),
                ("Mail.ru", 1, 0)
            ])
        );
        assert_eq!(
            reporters("example.com", Some(datetime!(2024-01-10 00:00 UTC))),
            owned(&[("Mail.ru", 1, 0)])
        );
        assert_eq!(
            reporters("example.com", Some(datetime!(2024-02-23 00:00 UTC))),
            owned(&[("Mail.ru", 1, 0)])
        );
        assert_eq!(
            reporters(
                "example.com",
                Some(datetime!(2024-02-23 00:00:00.000000001 UTC))
            ),
            owned(&[])
        );
        let names = |since| -> Vec<String> {
            h.report_domains(None, since, 10)
                .unwrap()
                .iter()
                .map(|d| d.as_str().to_owned())
                .collect()
        };
        assert_eq!(
            names(None),
            [
                "company-y.example",
                "example.com",
                "example.net",
                "example.org"
            ]
        );
        assert_eq!(
            names(Some(datetime!(2024-02-01 00:00 +01:00))),
            ["example.com", "example.org"]
        );
    }

    #[test]
    fn a_report_that_does_not_match_its_json_is_refused_and_nothing_is_stored() {
        let dir = TempDir::new("reports-refused");
        let mut h = History::open(&dir.db()).unwrap();
        let at = datetime!(2026-11-30 08:00 UTC);
        let report = read(SMTP_TLS);
        let err = h
            .store_report(&report, &report.to_gzip(), "report.json.gz", at)
            .unwrap_err();
        assert!(
            matches!(&err, HistoryError::ReportNotText { origin, reporter, report_id }
                if origin == "report.json.gz" && reporter == "Example Inc."
                    && report_id == "2024-01-09T00:00:00Z_example.com"),
            "{err:?}"
        );
        let err = h
            .store_report(&report, MAIL_RU, "mail.ru.json", at)
            .unwrap_err();
        assert!(
            matches!(&err, HistoryError::ReportMismatch { origin, reporter, .. }
                if origin == "mail.ru.json" && reporter == "Example Inc."),
            "{err:?}"
        );
        let err = h
            .store_report(&report, b"{}", "empty.json", at)
            .unwrap_err();
        assert!(
            matches!(&err, HistoryError::ReportUnreadable { origin, error, .. }
                if origin == "empty.json" && matches!(**error, ReadError::Missing { .. })),
            "{err:?}"
        );
        for table in [
            "reports",
            "report_domains",
            "report_policies",
            "report_failures",
        ] {
            assert_eq!(rows(&h, table), 0, "{table}");
        }
    }
}
