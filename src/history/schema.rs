//! The schema and its migrations: SQLite's `user_version` is the number of migrations applied.

use std::path::Path;

use rusqlite::{Connection, TransactionBehavior};

use super::HistoryError;
use super::received::fill_report_rows;

/// The schema migrations, in order: entry *n* takes a database from `user_version` *n* to
/// *n + 1*. Append new entries; never edit a released one.
pub const MIGRATIONS: &[&str] = &[
    // 0 → 1: runs, snapshots, alerts and their deliveries.
    "CREATE TABLE runs (
        id          INTEGER PRIMARY KEY,
        started_at  TEXT NOT NULL,
        finished_at TEXT
    ) STRICT;
    CREATE TABLE snapshots (
        id          INTEGER PRIMARY KEY,
        run_id      INTEGER NOT NULL REFERENCES runs (id),
        domain      TEXT NOT NULL,
        observed_at TEXT NOT NULL,
        status      TEXT NOT NULL CHECK (status IN ('pass', 'fail', 'inconclusive')),
        errors      INTEGER NOT NULL,
        warnings    INTEGER NOT NULL,
        notices     INTEGER NOT NULL,
        policy_mode TEXT,
        policy_id   TEXT,
        mx          TEXT NOT NULL,
        snapshot    TEXT NOT NULL
    ) STRICT;
    CREATE UNIQUE INDEX snapshots_by_domain ON snapshots (domain, run_id);
    CREATE TABLE alerts (
        id        INTEGER PRIMARY KEY,
        run_id    INTEGER NOT NULL REFERENCES runs (id),
        domain    TEXT NOT NULL,
        raised_at TEXT NOT NULL,
        alert     TEXT NOT NULL
    ) STRICT;
    CREATE UNIQUE INDEX alerts_by_domain ON alerts (domain, run_id);
    CREATE TABLE deliveries (
        alert_id        INTEGER NOT NULL REFERENCES alerts (id),
        channel         TEXT NOT NULL,
        state           TEXT NOT NULL CHECK (state IN ('pending', 'delivered')),
        attempts        INTEGER NOT NULL DEFAULT 0,
        last_attempt_at TEXT,
        last_error      TEXT,
        delivered_at    TEXT,
        PRIMARY KEY (alert_id, channel)
    ) STRICT;
    CREATE INDEX deliveries_pending ON deliveries (channel, alert_id) WHERE state = 'pending';",
    // 1 → 2: received TLS-RPT reports, and the policy domains each one covers.
    "CREATE TABLE reports (
        id          INTEGER PRIMARY KEY,
        reporter    TEXT NOT NULL,
        report_id   TEXT NOT NULL,
        range_start TEXT NOT NULL,
        range_end   TEXT NOT NULL,
        received_at TEXT NOT NULL,
        source      TEXT NOT NULL,
        json        TEXT NOT NULL,
        UNIQUE (reporter, report_id)
    ) STRICT;
    CREATE INDEX reports_by_end ON reports (range_end);
    CREATE TABLE report_domains (
        domain TEXT NOT NULL,
        report INTEGER NOT NULL REFERENCES reports (id),
        PRIMARY KEY (domain, report)
    ) STRICT, WITHOUT ROWID;",
    // 2 → 3: each report's policies and failure details as rows, so that summaries are
    // sums in SQL. A session count (u64) is kept as its high and low 32 bits: SQLite
    // integers are signed 64-bit, and SUM() of 32-bit halves stays exact. The rows of the
    // reports already stored are filled in by [`fill_report_rows`] in the same transaction.
    "CREATE TABLE report_policies (
        report        INTEGER NOT NULL REFERENCES reports (id),
        domain        TEXT NOT NULL,
        policy_type   TEXT NOT NULL,
        successful_hi INTEGER NOT NULL,
        successful_lo INTEGER NOT NULL,
        failed_hi     INTEGER NOT NULL,
        failed_lo     INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX report_policies_by_domain ON report_policies (domain, report);
    CREATE TABLE report_failures (
        report       INTEGER NOT NULL REFERENCES reports (id),
        domain       TEXT NOT NULL,
        policy_type  TEXT NOT NULL,
        result_type  TEXT NOT NULL,
        receiving_mx TEXT,
        receiving_ip TEXT,
        sending_ip   TEXT,
        sessions_hi  INTEGER NOT NULL,
        sessions_lo  INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX report_failures_by_domain ON report_failures (domain, report);",
];

/// The schema version whose migration also fills the report rows from the stored JSON.
pub(super) const REPORT_ROWS_VERSION: u32 = 3;

/// The schema version this build writes: the number of [`MIGRATIONS`].
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// The database's version when this build knows it; otherwise [`HistoryError::TooNew`].
pub(super) fn check_version(path: &Path, found: i64) -> Result<u32, HistoryError> {
    u32::try_from(found)
        .ok()
        .filter(|v| *v <= SCHEMA_VERSION)
        .ok_or_else(|| HistoryError::TooNew {
            path: path.to_owned(),
            found,
            supported: SCHEMA_VERSION,
        })
}

/// Applies the missing migrations in one transaction, with the version read again inside it.
pub(super) fn migrate(conn: &mut Connection, path: &Path) -> Result<(), HistoryError> {
    let open_error = |source| HistoryError::Open {
        path: path.to_owned(),
        source,
    };
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(open_error)?;
    let found: i64 = tx
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(open_error)?;
    let from = check_version(path, found)?;
    if from == SCHEMA_VERSION {
        return Ok(());
    }
    for (to, sql) in (from + 1..).zip(&MIGRATIONS[from as usize..]) {
        let migrate_error = |source| HistoryError::Migrate {
            path: path.to_owned(),
            from,
            to,
            source,
        };
        tx.execute_batch(sql).map_err(migrate_error)?;
        if to == REPORT_ROWS_VERSION {
            fill_report_rows(&tx, path, from)?;
        }
        tx.pragma_update(None, "user_version", to)
            .map_err(migrate_error)?;
    }
    tx.commit().map_err(|source| HistoryError::Migrate {
        path: path.to_owned(),
        from,
        to: SCHEMA_VERSION,
        source,
    })
}

#[cfg(test)]
mod tests {
    use rusqlite::params;
    use time::macros::datetime;

    use super::super::test_support::*;
    use super::super::{AlertId, BreakdownKey, FailureKey, History, RunId, StoreOutcome, SumScope};
    use super::*;
    use mxprobe_core::alert::{Alert, ChangeKind, DomainStatus};
    use mxprobe_core::domain::DomainName;
    use mxprobe_core::result::DomainResult;
    use mxprobe_core::tlsrpt::report::read_report;

    #[test]
    fn a_fresh_file_is_migrated_and_reopening_changes_nothing() {
        let dir = TempDir::new("migrate");
        let path = dir.db();
        {
            let mut h = History::open(&path).unwrap();
            let mode: String = h
                .conn
                .pragma_query_value(None, "journal_mode", |row| row.get(0))
                .unwrap();
            assert_eq!(mode, "wal");
            let run = h.begin_run(datetime!(2026-11-01 06:00 UTC)).unwrap();
            h.record(
                run,
                &snapshot("2026-11-01T06:00:00Z", &[], None, &["mx1.example.com"]),
                None,
                &[],
            )
            .unwrap();
        }
        assert_eq!(user_version(&path), i64::from(SCHEMA_VERSION));
        let h = History::open(&path).unwrap();
        let tables: Vec<String> = h
            .conn
            .prepare(
                "SELECT name FROM sqlite_schema
                 WHERE type IN ('table', 'index') AND name NOT LIKE 'sqlite_%' ORDER BY name",
            )
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(
            tables,
            [
                "alerts",
                "alerts_by_domain",
                "deliveries",
                "deliveries_pending",
                "report_domains",
                "report_failures",
                "report_failures_by_domain",
                "report_policies",
                "report_policies_by_domain",
                "reports",
                "reports_by_end",
                "runs",
                "snapshots",
                "snapshots_by_domain"
            ]
        );
        drop(h);
        assert_eq!(user_version(&path), i64::from(SCHEMA_VERSION));
        let h = History::open(&path).unwrap();
        let (run, _) = h.previous(&example()).unwrap().unwrap();
        assert_eq!(run, RunId(1));
    }

    /// A database as this code wrote it before reports existed: schema version 1, with one
    /// run of example.com and an alert pending on the webhook.
    fn version_1_database(path: &Path, extra_sql: &str) -> (DomainResult, Alert) {
        let conn = Connection::open(path).unwrap();
        conn.execute_batch(MIGRATIONS[0]).unwrap();
        conn.execute_batch(extra_sql).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        let mut h = History { conn, _lock: None };
        let s = snapshot(
            "2026-11-01T06:00:00Z",
            &[("error", false)],
            Some(("enforce", "2026a")),
            &["mx1.example.com"],
        );
        let a = alert(
            datetime!(2026-11-01 06:00 UTC),
            DomainStatus::Fail,
            &[ChangeKind::NewFailure],
        );
        let run = h.begin_run(datetime!(2026-11-01 06:00 UTC)).unwrap();
        h.record(run, &s, Some(&a), &["webhook"]).unwrap();
        h.finish_run(run, datetime!(2026-11-01 06:01 UTC)).unwrap();
        (s, a)
    }

    #[test]
    fn a_version_1_database_is_migrated_to_the_latest_and_keeps_its_snapshots() {
        let dir = TempDir::new("from-v1");
        let path = dir.db();
        let (s, a) = version_1_database(&path, "");
        assert_eq!(user_version(&path), 1);
        let err = History::open_read_only(&path).unwrap_err();
        assert!(
            matches!(
                err,
                HistoryError::NotMigrated {
                    found: 1,
                    supported: 3,
                    ..
                }
            ),
            "{err:?}"
        );

        let mut h = History::open(&path).unwrap();
        assert_eq!(user_version(&path), 3);
        assert_eq!(h.previous(&example()).unwrap(), Some((RunId(1), s)));
        assert_eq!(h.pending("webhook").unwrap(), vec![(AlertId(1), a)]);
        assert_eq!(h.timeline(&example(), None).unwrap().len(), 1);
        assert_eq!(h.report_domains(None, None, 10).unwrap(), vec![]);
        assert_eq!(
            h.store_report(
                &read(SMTP_TLS),
                SMTP_TLS,
                "smtp_tls.json",
                datetime!(2026-11-30 08:00 UTC)
            )
            .unwrap(),
            StoreOutcome::Stored
        );
        drop(h);
        let h = History::open_read_only(&path).unwrap();
        assert_eq!(
            h.report_domains(None, None, 10).unwrap(),
            [DomainName::parse("example.com").unwrap()]
        );
        assert_eq!(h.timeline(&example(), None).unwrap().len(), 1);
    }

    /// A database of schema version 2 holding `reports` (JSON text and source), as the code
    /// before report rows stored them.
    fn version_2_database(path: &Path, reports: &[(&str, &str)]) {
        let conn = Connection::open(path).unwrap();
        conn.execute_batch(MIGRATIONS[0]).unwrap();
        conn.execute_batch(MIGRATIONS[1]).unwrap();
        for (json, source) in reports {
            // Read leniently here: a broken one is stored as it is, with made-up columns.
            let (reporter, id, domains) = match read_report(json.as_bytes()) {
                Ok(read) => (
                    read.report.organization_name.clone(),
                    read.report.report_id.clone(),
                    read.report
                        .policies
                        .iter()
                        .map(|p| p.policy.policy_domain.to_string())
                        .collect::<std::collections::BTreeSet<_>>(),
                ),
                Err(_) => (
                    "Broken".to_owned(),
                    (*source).to_owned(),
                    Default::default(),
                ),
            };
            conn.execute(
                "INSERT INTO reports (reporter, report_id, range_start, range_end, received_at,
                     source, json)
                 VALUES (?1, ?2, '2024-01-09T00:00:00.000000000Z',
                     '2024-01-09T23:59:59.000000000Z', '2026-11-30T08:00:00.000000000Z', ?3, ?4)",
                params![reporter, id, source, json],
            )
            .unwrap();
            let row = conn.last_insert_rowid();
            for domain in domains {
                conn.execute(
                    "INSERT INTO report_domains (domain, report) VALUES (?1, ?2)",
                    params![domain, row],
                )
                .unwrap();
            }
        }
        conn.pragma_update(None, "user_version", 2).unwrap();
    }

    #[test]
    fn a_version_2_database_gets_the_rows_of_its_stored_reports() {
        let dir = TempDir::new("from-v2");
        let path = dir.db();
        let text = |bytes: &[u8]| String::from_utf8(bytes.to_vec()).unwrap();
        let (rfc, mail_ru) = (text(RFC8460), text(MAIL_RU));
        version_2_database(&path, &[(&rfc, "rfc8460.json"), (&mail_ru, "mail.ru.json")]);
        let h = History::open(&path).unwrap();
        assert_eq!(user_version(&path), 3);
        // The RFC's example: 5326 ok / 303 failed; 100 + 200 + 3 in the details.
        let company = DomainName::parse("company-y.example").unwrap();
        let sums = h.policy_sums(&company, None).unwrap();
        assert_eq!(sums.len(), 1);
        assert_eq!(
            (
                sums[0].reporter.as_str(),
                sums[0].reports,
                sums[0].successful,
                sums[0].failed
            ),
            ("Company-X", 1, 5326, 303)
        );
        let by_type = h
            .failure_sums(
                &company,
                None,
                FailureKey::ResultType,
                SumScope {
                    reporter: false,
                    day: false,
                },
                10,
            )
            .unwrap();
        assert_eq!(
            by_type[0].entries,
            [
                (
                    BreakdownKey::Given("starttls-not-supported".to_owned()),
                    200
                ),
                (BreakdownKey::Given("certificate-expired".to_owned()), 100),
                (BreakdownKey::Given("validation-failure".to_owned()), 3),
            ]
        );
        let domains = h.report_domains(None, None, 10).unwrap();
        assert_eq!(
            domains.iter().map(DomainName::as_str).collect::<Vec<_>>(),
            ["company-y.example", "example.com"]
        );

        // A stored report that no longer reads stops the migration, which changes nothing.
        let dir = TempDir::new("from-v2-broken");
        let path = dir.db();
        version_2_database(
            &path,
            &[(&rfc, "rfc8460.json"), ("{\"policies\": 1}", "bad.json")],
        );
        let err = History::open(&path).unwrap_err();
        assert!(
            matches!(&err, HistoryError::StoredReportUnreadable { origin, reporter, report_id, .. }
                if origin == "bad.json" && reporter == "Broken" && report_id == "bad.json"),
            "{err:?}"
        );
        assert!(err.to_string().contains("changed outside mxprobe"), "{err}");
        assert_eq!(user_version(&path), 2);
        let conn = Connection::open(&path).unwrap();
        let tables: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_schema WHERE name = 'report_policies'",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(tables, 0);
    }

    #[test]
    fn a_failed_migration_to_2_leaves_version_1_as_it_was() {
        let dir = TempDir::new("from-v1-fails");
        let path = dir.db();
        // Someone added a table of that name by hand: migration 2 cannot create its own.
        version_1_database(&path, "CREATE TABLE reports (note TEXT);");
        let err = History::open(&path).unwrap_err();
        assert!(
            matches!(&err, HistoryError::Migrate { path: p, from: 1, to: 2, .. } if *p == path),
            "{err:?}"
        );
        assert!(err.to_string().contains("left at version 1"), "{err}");
        assert_eq!(user_version(&path), 1);
        let conn = Connection::open(&path).unwrap();
        let snapshots: i64 = conn
            .query_row("SELECT COUNT(*) FROM snapshots", [], |row| row.get(0))
            .unwrap();
        assert_eq!(snapshots, 1);
        let side_table: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_schema WHERE name = 'report_domains'",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(side_table, 0);
    }

    #[test]
    fn a_newer_database_is_refused_and_left_untouched() {
        let dir = TempDir::new("too-new");
        let path = dir.db();
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch("CREATE TABLE future (x INTEGER);")
                .unwrap();
            conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
                .unwrap();
        }
        let before = std::fs::read(&path).unwrap();
        let err = History::open(&path).unwrap_err();
        assert!(
            matches!(&err, HistoryError::TooNew { path: p, found, supported }
                if *p == path
                    && *found == i64::from(SCHEMA_VERSION) + 1
                    && *supported == SCHEMA_VERSION),
            "{err:?}"
        );
        assert!(err.to_string().contains("use a newer mxprobe"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), before);
        assert!(!dir.0.join("history.db-wal").exists());
    }
}
