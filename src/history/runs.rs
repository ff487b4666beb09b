//! Runs, the snapshot of each domain in each run, the alert raised for it, and the timeline
//! they make.

use rusqlite::{OptionalExtension, TransactionBehavior, params};
use serde::Serialize;
use time::OffsetDateTime;

use super::error::During;
use super::{AlertId, History, HistoryError, RunId, read_time, stored_time};
use mxprobe_core::alert::{Alert, DomainStatus};
use mxprobe_core::domain::DomainName;
use mxprobe_core::finding::Severity;
use mxprobe_core::result::DomainResult;

impl History {
    /// Starts a run at `started_at` and returns its number.
    pub fn begin_run(&mut self, started_at: OffsetDateTime) -> Result<RunId, HistoryError> {
        let started = stored_time(started_at)?;
        self.conn
            .execute(
                "INSERT INTO runs (started_at) VALUES (?1)",
                params![started],
            )
            .during(|| "storing the start of a run".to_owned())?;
        Ok(RunId(self.conn.last_insert_rowid()))
    }

    /// Notes when `run` finished.
    pub fn finish_run(
        &mut self,
        run: RunId,
        finished_at: OffsetDateTime,
    ) -> Result<(), HistoryError> {
        let finished = stored_time(finished_at)?;
        let changed = self
            .conn
            .execute(
                "UPDATE runs SET finished_at = ?2 WHERE id = ?1",
                params![run.0, finished],
            )
            .during(|| format!("storing the end of run {}", run.0))?;
        if changed == 0 {
            return Err(HistoryError::NoSuchRun { run: run.0 });
        }
        Ok(())
    }

    /// The latest stored snapshot of `domain` (that of the most recent run that recorded it),
    /// with its run.
    pub fn previous(
        &self,
        domain: &DomainName,
    ) -> Result<Option<(RunId, DomainResult)>, HistoryError> {
        Ok(self.recent(domain, 1)?.into_iter().next())
    }

    /// The domain's latest `limit` stored snapshots, newest first (the previous run's first,
    /// then the ones before it: what change detection consults for places the previous run
    /// could not observe).
    pub fn recent(
        &self,
        domain: &DomainName,
        limit: usize,
    ) -> Result<Vec<(RunId, DomainResult)>, HistoryError> {
        let rows = self.latest_rows(
            domain,
            limit,
            "run_id, snapshot",
            &|| format!("reading the latest snapshots of {domain}"),
            |row| Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?)),
        )?;
        let mut out = Vec::new();
        for (run, json) in rows {
            let snapshot = serde_json::from_str(&json).map_err(|source| HistoryError::Json {
                what: format!("reading the snapshot of {domain} in run {run}"),
                source,
            })?;
            out.push((RunId(run), snapshot));
        }
        Ok(out)
    }

    /// The domain's status in its latest `limit` runs, oldest first (the HTML report's
    /// status strip): one small row per run, no snapshot read.
    pub fn statuses(
        &self,
        domain: &DomainName,
        limit: usize,
    ) -> Result<Vec<(OffsetDateTime, DomainStatus)>, HistoryError> {
        let rows = self.latest_rows(
            domain,
            limit,
            "run_id, observed_at, status",
            &|| format!("reading the recent statuses of {domain}"),
            |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                ))
            },
        )?;
        let mut out = Vec::new();
        for (run, observed_at, status) in rows {
            let observed_at = read_time(&observed_at, || {
                format!("snapshots.observed_at of {domain} in run {run}")
            })?;
            let status = [
                DomainStatus::Pass,
                DomainStatus::Fail,
                DomainStatus::Inconclusive,
            ]
            .into_iter()
            .find(|s| s.as_str() == status)
            .ok_or_else(|| HistoryError::Corrupt {
                what: format!("snapshots.status of {domain} in run {run}"),
                value: status.clone(),
            })?;
            out.push((observed_at, status));
        }
        out.reverse();
        Ok(out)
    }

    /// The `columns` of the domain's latest `limit` rows of `snapshots`, newest first, each
    /// read by `read`; `what` names the reading in an error.
    fn latest_rows<T>(
        &self,
        domain: &DomainName,
        limit: usize,
        columns: &str,
        what: &dyn Fn() -> String,
        read: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>, HistoryError> {
        let mut statement = self
            .conn
            .prepare(&format!(
                "SELECT {columns} FROM snapshots WHERE domain = ?1
                 ORDER BY run_id DESC LIMIT ?2"
            ))
            .during(what)?;
        let rows = statement
            .query_map(
                params![domain.as_str(), i64::try_from(limit).unwrap_or(i64::MAX)],
                read,
            )
            .during(what)?;
        rows.map(|row| row.during(what)).collect()
    }

    /// How many of the domain's latest stored snapshots, in a row, are
    /// [`DomainStatus::Inconclusive`] (0 when the latest is not, or there is none).
    pub fn inconclusive_streak(&self, domain: &DomainName) -> Result<u32, HistoryError> {
        self.conn
            .query_row(
                "SELECT COUNT(*) FROM snapshots
                 WHERE domain = ?1 AND run_id > COALESCE(
                     (SELECT MAX(run_id) FROM snapshots
                      WHERE domain = ?1 AND status <> 'inconclusive'),
                     -1)",
                params![domain.as_str()],
                |row| row.get(0),
            )
            .during(|| format!("counting the inconclusive runs of {domain}"))
    }

    /// When the last alert for `domain` was raised (its `observed_at`), if ever.
    pub fn last_alert_at(
        &self,
        domain: &DomainName,
    ) -> Result<Option<OffsetDateTime>, HistoryError> {
        let raised: Option<String> = self
            .conn
            .query_row(
                "SELECT raised_at FROM alerts WHERE domain = ?1 ORDER BY run_id DESC LIMIT 1",
                params![domain.as_str()],
                |row| row.get(0),
            )
            .optional()
            .during(|| format!("reading the last alert for {domain}"))?;
        raised
            .map(|text| read_time(&text, || format!("alerts.raised_at of {domain}")))
            .transpose()
    }

    /// In one transaction: stores the snapshot of this run and, if given, the alert with one
    /// pending delivery per channel name in `channels` (a name given twice counts once).
    /// Once this returns, a process killed before delivery loses nothing: the deliveries stay
    /// pending until marked delivered. On error nothing is stored.
    pub fn record(
        &mut self,
        run: RunId,
        snapshot: &DomainResult,
        alert: Option<&Alert>,
        channels: &[&str],
    ) -> Result<Option<AlertId>, HistoryError> {
        let domain = &snapshot.facts.domain;
        if let Some(alert) = alert
            && alert.domain != *domain
        {
            return Err(HistoryError::DomainMismatch {
                snapshot: domain.clone(),
                alert: alert.domain.clone(),
            });
        }
        let columns = SnapshotColumns::of(snapshot);
        let observed = stored_time(snapshot.facts.observed_at)?;
        let snapshot_json =
            serde_json::to_string(snapshot).map_err(|source| HistoryError::Json {
                what: format!("writing the snapshot of {domain} as JSON"),
                source,
            })?;
        let mx_json = serde_json::to_string(&columns.mx).map_err(|source| HistoryError::Json {
            what: format!("writing the MX hosts of {domain} as JSON"),
            source,
        })?;
        let alert_row = match alert {
            Some(alert) => Some((
                stored_time(alert.observed_at)?,
                serde_json::to_string(alert).map_err(|source| HistoryError::Json {
                    what: format!("writing the alert for {domain} as JSON"),
                    source,
                })?,
            )),
            None => None,
        };

        let what = || format!("recording {domain} in run {}", run.0);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .during(what)?;
        let run_known = tx
            .query_row("SELECT 1 FROM runs WHERE id = ?1", params![run.0], |_| {
                Ok(())
            })
            .optional()
            .during(what)?
            .is_some();
        if !run_known {
            return Err(HistoryError::NoSuchRun { run: run.0 });
        }
        let recorded = tx
            .query_row(
                "SELECT 1 FROM snapshots WHERE domain = ?1 AND run_id = ?2",
                params![domain.as_str(), run.0],
                |_| Ok(()),
            )
            .optional()
            .during(what)?
            .is_some();
        if recorded {
            return Err(HistoryError::AlreadyRecorded {
                run: run.0,
                domain: domain.clone(),
            });
        }
        tx.execute(
            "INSERT INTO snapshots (run_id, domain, observed_at, status, errors, warnings,
                 notices, policy_mode, policy_id, mx, snapshot)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            params![
                run.0,
                domain.as_str(),
                observed,
                columns.status.as_str(),
                columns.errors,
                columns.warnings,
                columns.notices,
                columns.policy_mode,
                columns.policy_id,
                mx_json,
                snapshot_json,
            ],
        )
        .during(what)?;
        let alert_id = match alert_row {
            Some((raised, json)) => {
                tx.execute(
                    "INSERT INTO alerts (run_id, domain, raised_at, alert) VALUES (?1, ?2, ?3, ?4)",
                    params![run.0, domain.as_str(), raised, json],
                )
                .during(|| format!("recording the alert for {domain} in run {}", run.0))?;
                let id = tx.last_insert_rowid();
                for channel in channels {
                    tx.execute(
                        "INSERT INTO deliveries (alert_id, channel, state)
                         VALUES (?1, ?2, 'pending') ON CONFLICT DO NOTHING",
                        params![id, channel],
                    )
                    .during(|| {
                        format!("queueing alert {id} for {domain} on channel {channel:?}")
                    })?;
                }
                Some(AlertId(id))
            }
            None => None,
        };
        tx.commit().during(what)?;
        Ok(alert_id)
    }

    /// The domain's timeline, oldest run first, optionally only the entries observed at or
    /// after `since`.
    pub fn timeline(
        &self,
        domain: &DomainName,
        since: Option<OffsetDateTime>,
    ) -> Result<Vec<TimelineEntry>, HistoryError> {
        let since = since.map(stored_time).transpose()?;
        let what = || format!("reading the timeline of {domain}");
        let mut stmt = self
            .conn
            .prepare(
                "SELECT s.run_id, s.observed_at, s.status, s.errors, s.warnings, s.notices,
                        s.policy_mode, s.policy_id, s.mx, a.alert
                 FROM snapshots s
                 LEFT JOIN alerts a ON a.run_id = s.run_id AND a.domain = s.domain
                 WHERE s.domain = ?1 AND (?2 IS NULL OR s.observed_at >= ?2)
                 ORDER BY s.run_id",
            )
            .during(what)?;
        let rows = stmt
            .query_map(params![domain.as_str(), since], |row| {
                Ok(TimelineRow {
                    run: row.get(0)?,
                    observed_at: row.get(1)?,
                    status: row.get(2)?,
                    errors: row.get(3)?,
                    warnings: row.get(4)?,
                    notices: row.get(5)?,
                    policy_mode: row.get(6)?,
                    policy_id: row.get(7)?,
                    mx: row.get(8)?,
                    alert: row.get(9)?,
                })
            })
            .during(what)?
            .collect::<rusqlite::Result<Vec<_>>>()
            .during(what)?;
        rows.into_iter().map(|row| row.into_entry(domain)).collect()
    }
}

/// One run of a domain as the timeline shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimelineEntry {
    /// The run.
    pub run: RunId,
    /// When the domain was observed.
    #[serde(with = "time::serde::rfc3339")]
    pub observed_at: OffsetDateTime,
    /// Its status.
    pub status: DomainStatus,
    /// How many findings at error severity.
    pub errors: u32,
    /// How many at warning severity.
    pub warnings: u32,
    /// How many at notice severity.
    pub notices: u32,
    /// The MTA-STS policy mode, when a valid policy was fetched.
    pub policy_mode: Option<String>,
    /// The MTA-STS policy id from the `_mta-sts` record.
    pub policy_id: Option<String>,
    /// The MX hosts in preference order (the domain itself for an implicit MX).
    pub mx: Vec<String>,
    /// The alert raised in that run, if any.
    pub alert: Option<Alert>,
}

/// A timeline row as stored, before its text is checked.
struct TimelineRow {
    run: i64,
    observed_at: String,
    status: String,
    errors: u32,
    warnings: u32,
    notices: u32,
    policy_mode: Option<String>,
    policy_id: Option<String>,
    mx: String,
    alert: Option<String>,
}

impl TimelineRow {
    fn into_entry(self, domain: &DomainName) -> Result<TimelineEntry, HistoryError> {
        let run = self.run;
        let observed_at = read_time(&self.observed_at, || {
            format!("snapshots.observed_at of {domain} in run {run}")
        })?;
        let status = [
            DomainStatus::Pass,
            DomainStatus::Fail,
            DomainStatus::Inconclusive,
        ]
        .into_iter()
        .find(|s| s.as_str() == self.status)
        .ok_or_else(|| HistoryError::Corrupt {
            what: format!("snapshots.status of {domain} in run {run}"),
            value: self.status.clone(),
        })?;
        let mx = serde_json::from_str(&self.mx).map_err(|source| HistoryError::Json {
            what: format!("reading the MX hosts of {domain} in run {run}"),
            source,
        })?;
        let alert = self
            .alert
            .map(|json| serde_json::from_str(&json))
            .transpose()
            .map_err(|source| HistoryError::Json {
                what: format!("reading the alert for {domain} in run {run}"),
                source,
            })?;
        Ok(TimelineEntry {
            run: RunId(run),
            observed_at,
            status,
            errors: self.errors,
            warnings: self.warnings,
            notices: self.notices,
            policy_mode: self.policy_mode,
            policy_id: self.policy_id,
            mx,
            alert,
        })
    }
}

/// What the snapshot columns keep besides the JSON.
struct SnapshotColumns {
    status: DomainStatus,
    errors: u32,
    warnings: u32,
    notices: u32,
    policy_mode: Option<&'static str>,
    policy_id: Option<String>,
    mx: Vec<String>,
}

impl SnapshotColumns {
    fn of(snapshot: &DomainResult) -> Self {
        let verdict = &snapshot.verdict;
        let count = |severity| {
            let n = verdict
                .findings
                .iter()
                .filter(|f| f.severity == severity)
                .count();
            u32::try_from(n).unwrap_or(u32::MAX)
        };
        Self {
            status: verdict.status(Severity::Error),
            errors: count(Severity::Error),
            warnings: count(Severity::Warning),
            notices: count(Severity::Notice),
            policy_mode: verdict.sts.policy.as_ref().map(|p| p.mode.as_str()),
            policy_id: verdict.sts.id.clone(),
            mx: snapshot
                .facts
                .hosts
                .iter()
                .map(|h| h.exchange.clone())
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use time::format_description::well_known::Rfc3339;
    use time::macros::datetime;

    use super::super::test_support::*;
    use super::*;
    use mxprobe_core::alert::ChangeKind;

    #[test]
    fn recent_gives_the_latest_snapshots_newest_first() {
        let dir = TempDir::new("recent");
        let mut h = History::open(&dir.db()).unwrap();
        assert!(h.recent(&example(), 3).unwrap().is_empty());
        let mut runs = Vec::new();
        for (i, at) in [
            "2026-11-01T06:00:00Z",
            "2026-11-02T06:00:00Z",
            "2026-11-03T06:00:00Z",
        ]
        .iter()
        .enumerate()
        {
            let run = h
                .begin_run(OffsetDateTime::parse(at, &Rfc3339).unwrap())
                .unwrap();
            let severity = if i == 1 { "error" } else { "notice" };
            h.record(
                run,
                &snapshot(at, &[(severity, false)], None, &["mx.example.com"]),
                None,
                &[],
            )
            .unwrap();
            runs.push(run);
        }
        let recent = h.recent(&example(), 2).unwrap();
        let got: Vec<(RunId, DomainStatus)> = recent
            .iter()
            .map(|(run, s)| (*run, s.verdict.status(Severity::Error)))
            .collect();
        assert_eq!(
            got,
            [(runs[2], DomainStatus::Pass), (runs[1], DomainStatus::Fail)]
        );
        assert_eq!(h.recent(&example(), 10).unwrap().len(), 3);
    }

    #[test]
    fn previous_streak_last_alert_and_timeline_follow_the_runs() {
        let dir = TempDir::new("record");
        let mut h = History::open(&dir.db()).unwrap();
        let d = example();
        assert!(h.previous(&d).unwrap().is_none());
        assert_eq!(h.inconclusive_streak(&d).unwrap(), 0);
        assert_eq!(h.last_alert_at(&d).unwrap(), None);

        let mx = ["mx1.example.com", "mx2.example.com"];
        // Run 1: pass, enforce. Run 2: fail (alert). Runs 3 and 4: inconclusive.
        let s1 = snapshot(
            "2026-11-01T06:00:00Z",
            &[("notice", false)],
            Some(("enforce", "2026a")),
            &mx,
        );
        let s2 = snapshot(
            "2026-11-02T06:00:00.5Z",
            &[("error", false), ("warning", false), ("notice", false)],
            Some(("testing", "2026b")),
            &mx[..1],
        );
        let s3 = snapshot("2026-11-03T06:00:00Z", &[("error", true)], None, &mx);
        let s4 = snapshot("2026-11-04T06:00:00Z", &[("warning", true)], None, &mx);
        let a2 = second_run_alert();

        let r1 = h.begin_run(datetime!(2026-11-01 06:00 UTC)).unwrap();
        assert_eq!(h.record(r1, &s1, None, &["webhook"]).unwrap(), None);
        h.finish_run(r1, datetime!(2026-11-01 06:01 UTC)).unwrap();
        assert_eq!(h.previous(&d).unwrap(), Some((r1, s1.clone())));
        assert_eq!(h.inconclusive_streak(&d).unwrap(), 0);

        let r2 = h.begin_run(datetime!(2026-11-02 06:00 UTC)).unwrap();
        let id2 = h.record(r2, &s2, Some(&a2), &["webhook"]).unwrap();
        assert_eq!(id2, Some(AlertId(1)));
        assert_eq!(
            h.last_alert_at(&d).unwrap(),
            Some(datetime!(2026-11-02 06:00:00.5 UTC))
        );

        let r3 = h.begin_run(datetime!(2026-11-03 06:00 UTC)).unwrap();
        h.record(r3, &s3, None, &[]).unwrap();
        assert_eq!(h.inconclusive_streak(&d).unwrap(), 1);
        let r4 = h.begin_run(datetime!(2026-11-04 06:00 UTC)).unwrap();
        h.record(r4, &s4, None, &[]).unwrap();
        assert_eq!((r1, r2, r3, r4), (RunId(1), RunId(2), RunId(3), RunId(4)));
        assert_eq!(h.inconclusive_streak(&d).unwrap(), 2);
        assert_eq!(h.previous(&d).unwrap(), Some((r4, s4)));
        // Another domain's history is its own.
        let other = DomainName::parse("example.net").unwrap();
        assert_eq!(h.previous(&other).unwrap(), None);
        assert_eq!(h.inconclusive_streak(&other).unwrap(), 0);

        let all = h.timeline(&d, None).unwrap();
        assert_eq!(all, four_runs());
        // `since` is inclusive, and a fraction of a second orders correctly: 06:00:00.5 on
        // 2 November is after 06:00:00 on that day.
        let since = h
            .timeline(&d, Some(datetime!(2026-11-02 06:00 UTC)))
            .unwrap();
        assert_eq!(
            since.iter().map(|e| e.run).collect::<Vec<_>>(),
            [r2, r3, r4]
        );
        let since = h
            .timeline(&d, Some(datetime!(2026-11-03 06:00 UTC)))
            .unwrap();
        assert_eq!(since.iter().map(|e| e.run).collect::<Vec<_>>(), [r3, r4]);
        assert!(
            h.timeline(&d, Some(datetime!(2026-11-05 00:00 UTC)))
                .unwrap()
                .is_empty()
        );

        let json = serde_json::to_value(&all[0]).unwrap();
        assert_eq!(
            json,
            json!({"run": 1, "observed_at": "2026-11-01T06:00:00Z", "status": "pass",
                   "errors": 0, "warnings": 0, "notices": 1, "policy_mode": "enforce",
                   "policy_id": "2026a", "mx": ["mx1.example.com", "mx2.example.com"],
                   "alert": null})
        );
    }

    #[test]
    fn a_failed_record_stores_nothing() {
        let dir = TempDir::new("record-errors");
        let mut h = History::open(&dir.db()).unwrap();
        let s = snapshot("2026-11-01T06:00:00Z", &[], None, &["mx1.example.com"]);
        let a = alert(
            datetime!(2026-11-01 06:00 UTC),
            DomainStatus::Fail,
            &[ChangeKind::MxChanged],
        );

        let err = h.record(RunId(7), &s, Some(&a), &["webhook"]).unwrap_err();
        assert!(matches!(err, HistoryError::NoSuchRun { run: 7 }), "{err:?}");
        assert!(matches!(
            h.finish_run(RunId(7), datetime!(2026-11-01 06:00 UTC))
                .unwrap_err(),
            HistoryError::NoSuchRun { run: 7 }
        ));

        let run = h.begin_run(datetime!(2026-11-01 06:00 UTC)).unwrap();
        let mut wrong = a.clone();
        wrong.domain = DomainName::parse("example.org").unwrap();
        let err = h.record(run, &s, Some(&wrong), &["webhook"]).unwrap_err();
        assert!(
            matches!(&err, HistoryError::DomainMismatch { snapshot, alert }
                if snapshot.as_str() == "example.com" && alert.as_str() == "example.org"),
            "{err:?}"
        );
        assert_eq!(h.previous(&example()).unwrap(), None);

        let id = h.record(run, &s, Some(&a), &["webhook"]).unwrap().unwrap();
        let err = h.record(run, &s, Some(&a), &["webhook"]).unwrap_err();
        assert!(
            matches!(&err, HistoryError::AlreadyRecorded { run: 1, domain }
                if *domain == example()),
            "{err:?}"
        );
        // Still one alert, one delivery.
        let pending = h.pending("webhook").unwrap();
        assert_eq!(pending, vec![(id, a)]);
    }
}
