//! The monitoring history: one SQLite database that keeps, for every run of `mxprobe monitor`,
//! each domain's [`Snapshot`], the [`Alert`] raised for it, and that alert's delivery state on
//! every notification channel; and, beside them, the TLS-RPT reports (RFC 8460) the domains'
//! owners received from other senders (`mxprobe reports ingest`), kept once per reporter and
//! report id.
//!
//! [`crate::changes`] decides what changed and [`crate::notify`] delivers alerts; this module
//! only stores what they produce and answers the questions the next run asks (the previous
//! snapshot, the inconclusive streak, the last alert, what is still to deliver) and the
//! timeline people read.
//!
//! I/O: reads and writes the database file given to [`History::open`] (and SQLite's `-wal` and
//! `-shm` files beside it), and holds an exclusive advisory lock on `<path>.lock` for as long as
//! the [`History`] lives, so that two runs started by cron or a timer never interleave. The
//! lock file is left in place: removing it could let a third process lock a file the second
//! is about to replace. No clock is read here: every time is a parameter.
//!
//! # Storage
//! The schema version is SQLite's `PRAGMA user_version`. [`MIGRATIONS`] lists the SQL that
//! takes the schema from version *n* to *n + 1*; opening applies the missing ones in order, in
//! one transaction, and refuses (without writing anything) a database newer than this build.
//! Timestamps are RFC 3339 UTC text of fixed width (`2026-11-29T06:00:00.000000000Z`), so that
//! text order is time order and every instant reads back exactly. Snapshots and alerts are kept
//! as JSON (serde_json) next to the columns the queries need, so that the timeline never parses
//! a whole snapshot. A delivery is `pending` from the moment its alert is recorded until it is
//! marked delivered, whatever happens to the process in between. A received report is kept as
//! the JSON text it arrived as, read again with the tolerant reader ([`read_report`]) when
//! asked for, with its reporter, id, date range and policy domains in columns for the queries.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::BorrowedFormatItem;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;

use crate::alert::{Alert, ChangeKind, DomainStatus, Snapshot};
use crate::domain::DomainName;
use crate::finding::Severity;
use crate::tlsrpt::report::{ReadError, Report, read_report};

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

/// SQL ordering the groups of `report_failures` by their summed sessions, largest first,
/// exactly: the sum is `SUM(hi) × 2³² + SUM(lo)`, compared as its high part
/// `SUM(hi) + SUM(lo) / 2³²` and then its low 32 bits.
const LARGEST_SUM_FIRST: &str = "SUM(f.sessions_hi) + (SUM(f.sessions_lo) >> 32) DESC, \
                                 SUM(f.sessions_lo) & 4294967295 DESC";

/// The schema version whose migration also fills the report rows from the stored JSON.
const REPORT_ROWS_VERSION: u32 = 3;

/// The schema version this build writes: the number of [`MIGRATIONS`].
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// How long a statement waits for a database another connection is writing. The run lock
/// keeps monitor runs apart; this covers anything else that opens the file (`sqlite3`, a
/// backup) for a moment.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The stored timestamp form: RFC 3339 in UTC with all nine fraction digits (fixed width).
const STORED_TIME: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:9]Z");

/// The timestamp form of [`write_timeline`]: RFC 3339 in UTC to the second.
const SHOWN_TIME: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");

/// One run of `mxprobe monitor`, as numbered in the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct RunId(pub i64);

/// One stored alert, as numbered in the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct AlertId(pub i64);

/// Why the history could not be opened, read or written.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// The path names something other than a regular file (a device such as `/dev/null`, a
    /// directory, a FIFO): SQLite needs a file, and the lock file beside it would land
    /// where it does not belong.
    #[error(
        "{} is not a regular file; give the path of an SQLite file for the history (it is \
         created when missing)",
        .path.display()
    )]
    NotAFile {
        /// The path given.
        path: PathBuf,
    },
    /// Another process holds the run lock.
    #[error(
        "the history database {} is in use by another mxprobe process (it holds the lock {}); \
         wait for that run to finish (if runs overlap, schedule them further apart)",
        .path.display(), .lock.display()
    )]
    Locked {
        /// The database.
        path: PathBuf,
        /// The lock file.
        lock: PathBuf,
    },
    /// The lock file could not be created or locked.
    #[error(
        "cannot create or lock {}: {source}; check that its directory exists and is writable",
        .lock.display()
    )]
    Lock {
        /// The lock file.
        lock: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// The database could not be opened or configured (not an SQLite file, no permission …).
    #[error(
        "cannot open the history database {}: {source}; check the path and that the file is \
         an mxprobe history (an SQLite database)",
        .path.display()
    )]
    Open {
        /// The database.
        path: PathBuf,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// A migration failed; the transaction was rolled back, so the database is as it was.
    #[error(
        "cannot migrate the history database {} from schema version {from} to {to}: {source}; \
         the database was left at version {from}",
        .path.display()
    )]
    Migrate {
        /// The database.
        path: PathBuf,
        /// The version the database had.
        from: u32,
        /// The version whose migration failed.
        to: u32,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// The database has a schema version this build does not know (a newer mxprobe wrote
    /// it). Nothing was written to it.
    #[error(
        "the history database {} has schema version {found}, but this mxprobe knows versions \
         up to {supported}; use a newer mxprobe (the database was left untouched)",
        .path.display()
    )]
    TooNew {
        /// The database.
        path: PathBuf,
        /// Its `user_version`.
        found: i64,
        /// [`SCHEMA_VERSION`].
        supported: u32,
    },
    /// A read-only open met a database of an older schema (or an empty file).
    #[error(
        "{}: schema version {found}, this mxprobe reads {supported}; run `mxprobe monitor` \
         (or `mxprobe reports ingest`) on it once to migrate it",
        .path.display()
    )]
    NotMigrated {
        /// The database.
        path: PathBuf,
        /// Its `user_version`.
        found: i64,
        /// [`SCHEMA_VERSION`].
        supported: u32,
    },
    /// A statement failed.
    #[error("{what}: {source}")]
    Sql {
        /// What was being done, naming the domain, run or alert.
        what: String,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// A snapshot or alert could not be written as JSON, or a stored one could not be read.
    #[error("{what}: {source}")]
    Json {
        /// Which snapshot or alert.
        what: String,
        /// serde_json's error.
        source: serde_json::Error,
    },
    /// A stored value is not one mxprobe writes (the file was changed by hand).
    #[error(
        "{what} holds {value:?}, which mxprobe never writes; the database was changed outside \
         mxprobe (restore a backup or start a new history)"
    )]
    Corrupt {
        /// Which column of which row.
        what: String,
        /// The value found.
        value: String,
    },
    /// A sum of session counts does not fit in 128 bits (it would take billions of
    /// reports claiming the largest counts).
    #[error("{what} add up to more than 2^128 - 1, which mxprobe cannot count")]
    SumTooLarge {
        /// Which counts, naming the domain.
        what: String,
    },
    /// A time outside the years 0000–9999 cannot be written as RFC 3339.
    #[error("cannot store {value}: RFC 3339 timestamps must fall in the years 0000 to 9999")]
    TimeOutOfRange {
        /// The time.
        value: OffsetDateTime,
    },
    /// The run was never begun in this history.
    #[error("run {run} is not in the history; begin runs with History::begin_run")]
    NoSuchRun {
        /// The run number.
        run: i64,
    },
    /// The domain already has a snapshot in this run.
    #[error("{domain} is already recorded in run {run}; record each domain once per run")]
    AlreadyRecorded {
        /// The run number.
        run: i64,
        /// The domain.
        domain: DomainName,
    },
    /// The alert is about another domain than the snapshot it was recorded with.
    #[error(
        "the alert is about {alert} but the snapshot is of {snapshot}; record each alert with \
         the snapshot of its own domain"
    )]
    DomainMismatch {
        /// The snapshot's domain.
        snapshot: DomainName,
        /// The alert's domain.
        alert: DomainName,
    },
    /// The alert has no delivery on this channel.
    #[error(
        "alert {alert} has no delivery on channel {channel:?}; only the channels named when \
         the alert was recorded can be marked"
    )]
    NoSuchDelivery {
        /// The alert number.
        alert: i64,
        /// The channel.
        channel: String,
    },
    /// A failure was reported for a delivery that already succeeded.
    #[error(
        "alert {alert} was already delivered on channel {channel:?}; a failed attempt cannot \
         follow a delivery"
    )]
    AlreadyDelivered {
        /// The alert number.
        alert: i64,
        /// The channel.
        channel: String,
    },
    /// The bytes given as a report's JSON are not UTF-8 text (gzip, for instance).
    #[error(
        "{origin}: the JSON given for report {report_id:?} from {reporter:?} is not UTF-8 \
         text; store the decompressed JSON the report was read from"
    )]
    ReportNotText {
        /// Where the report was read from.
        origin: String,
        /// Its `organization-name`.
        reporter: String,
        /// Its `report-id`.
        report_id: String,
    },
    /// The JSON given with a report cannot be read as a TLS-RPT report.
    #[error(
        "{origin}: the JSON given for report {report_id:?} from {reporter:?} is not a \
         readable TLS-RPT report ({error}); store each report with the bytes it was read from"
    )]
    ReportUnreadable {
        /// Where the report was read from.
        origin: String,
        /// The `organization-name` of the report it came with.
        reporter: String,
        /// The `report-id` of the report it came with.
        report_id: String,
        /// Why the reader refused it (boxed: it is large, and rare).
        #[source]
        error: Box<ReadError>,
    },
    /// The JSON given with a report reads back as another report.
    #[error(
        "{origin}: the JSON given for report {report_id:?} from {reporter:?} reads back as a \
         different report; store each report with the bytes it was read from"
    )]
    ReportMismatch {
        /// Where the report was read from.
        origin: String,
        /// Its `organization-name`.
        reporter: String,
        /// Its `report-id`.
        report_id: String,
    },
    /// A stored report's JSON no longer reads as a TLS-RPT report.
    #[error(
        "the stored JSON of report {report_id:?} from {reporter:?} (read from {origin}) is not \
         a readable TLS-RPT report: {error}; the database was changed outside mxprobe (ingest \
         the report again from its source, or restore a backup)"
    )]
    StoredReportUnreadable {
        /// Where the report was read from when it was stored.
        origin: String,
        /// Its reporter, as stored.
        reporter: String,
        /// Its report id, as stored.
        report_id: String,
        /// Why the reader refused it (boxed: it is large, and rare).
        #[source]
        error: Box<ReadError>,
    },
}

/// Adds what was being done to an SQLite error.
trait During<T> {
    fn during(self, what: impl FnOnce() -> String) -> Result<T, HistoryError>;
}

impl<T> During<T> for rusqlite::Result<T> {
    fn during(self, what: impl FnOnce() -> String) -> Result<T, HistoryError> {
        self.map_err(|source| HistoryError::Sql {
            what: what(),
            source,
        })
    }
}

/// The monitoring history: the open database and the run lock, both held until dropped.
#[derive(Debug)]
pub struct History {
    /// Declared first so that it closes before the lock below is released.
    conn: Connection,
    /// The locked `<path>.lock`; closing it releases the lock. `None` when opened read-only.
    _lock: Option<File>,
}

impl History {
    /// Opens (creating) the database at `path`, migrates it to [`SCHEMA_VERSION`], and takes
    /// the run lock: an exclusive advisory lock on `<path>.lock`, held until the `History` is
    /// dropped. Another process holding it → [`HistoryError::Locked`]; a database newer than
    /// this build → [`HistoryError::TooNew`], with nothing written to it.
    pub fn open(path: &Path) -> Result<Self, HistoryError> {
        refuse_non_file(path)?;
        let lock_path = lock_path(path);
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(|source| HistoryError::Lock {
                lock: lock_path.clone(),
                source,
            })?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(HistoryError::Locked {
                    path: path.to_owned(),
                    lock: lock_path,
                });
            }
            Err(TryLockError::Error(source)) => {
                return Err(HistoryError::Lock {
                    lock: lock_path,
                    source,
                });
            }
        }

        let open_error = |source| HistoryError::Open {
            path: path.to_owned(),
            source,
        };
        let mut conn = Connection::open(path).map_err(open_error)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_error)?;
        conn.pragma_update(None, "foreign_keys", true)
            .map_err(open_error)?;
        // Read the version before anything writes: a newer database stays byte for byte as
        // it was (switching to WAL would already rewrite its header).
        let found: i64 = conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(open_error)?;
        check_version(path, found)?;
        // WAL: a reader outside mxprobe (`sqlite3`, a backup) never blocks the run's writes,
        // and each commit is one append to the log.
        conn.pragma_update(None, "journal_mode", "wal")
            .map_err(open_error)?;
        migrate(&mut conn, path)?;
        Ok(Self {
            conn,
            _lock: Some(lock),
        })
    }

    /// Opens an existing database for reading only (`mxprobe history`), without the run
    /// lock, so that it works while a monitoring run is going (WAL lets readers in). A
    /// database of another schema version is refused: [`HistoryError::TooNew`] when newer,
    /// [`HistoryError::NotMigrated`] when older (the next `monitor` run migrates it).
    pub fn open_read_only(path: &Path) -> Result<Self, HistoryError> {
        refuse_non_file(path)?;
        let open_error = |source| HistoryError::Open {
            path: path.to_owned(),
            source,
        };
        let conn = Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(open_error)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_error)?;
        let found: i64 = conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(open_error)?;
        check_version(path, found)?;
        if found != i64::from(SCHEMA_VERSION) {
            return Err(HistoryError::NotMigrated {
                path: path.to_owned(),
                found,
                supported: SCHEMA_VERSION,
            });
        }
        Ok(Self { conn, _lock: None })
    }

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
    pub fn previous(&self, domain: &DomainName) -> Result<Option<(RunId, Snapshot)>, HistoryError> {
        Ok(self.recent(domain, 1)?.into_iter().next())
    }

    /// The domain's latest `limit` stored snapshots, newest first (the previous run's first,
    /// then the ones before it: what change detection consults for places the previous run
    /// could not observe).
    pub fn recent(
        &self,
        domain: &DomainName,
        limit: usize,
    ) -> Result<Vec<(RunId, Snapshot)>, HistoryError> {
        let what = || format!("reading the latest snapshots of {domain}");
        let mut statement = self
            .conn
            .prepare(
                "SELECT run_id, snapshot FROM snapshots WHERE domain = ?1
                 ORDER BY run_id DESC LIMIT ?2",
            )
            .during(what)?;
        let rows = statement
            .query_map(
                params![domain.as_str(), i64::try_from(limit).unwrap_or(i64::MAX)],
                |row| Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?)),
            )
            .during(what)?;
        let mut out = Vec::new();
        for row in rows {
            let (run, json) = row.during(what)?;
            let snapshot = serde_json::from_str(&json).map_err(|source| HistoryError::Json {
                what: format!("reading the snapshot of {domain} in run {run}"),
                source,
            })?;
            out.push((RunId(run), snapshot));
        }
        Ok(out)
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
        snapshot: &Snapshot,
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
        let summary = Summary::of(snapshot);
        let observed = stored_time(snapshot.facts.observed_at)?;
        let snapshot_json =
            serde_json::to_string(snapshot).map_err(|source| HistoryError::Json {
                what: format!("writing the snapshot of {domain} as JSON"),
                source,
            })?;
        let mx_json = serde_json::to_string(&summary.mx).map_err(|source| HistoryError::Json {
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
                summary.status.as_str(),
                summary.errors,
                summary.warnings,
                summary.notices,
                summary.policy_mode,
                summary.policy_id,
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

    /// Every alert still pending on `channel`, oldest first (from this run and earlier ones).
    pub fn pending(&self, channel: &str) -> Result<Vec<(AlertId, Alert)>, HistoryError> {
        let what = || format!("reading the alerts pending on channel {channel:?}");
        let mut stmt = self
            .conn
            .prepare(
                "SELECT a.id, a.alert FROM deliveries d JOIN alerts a ON a.id = d.alert_id
                 WHERE d.channel = ?1 AND d.state = 'pending'
                 ORDER BY a.id",
            )
            .during(what)?;
        let rows = stmt
            .query_map(params![channel], |row| {
                Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?))
            })
            .during(what)?
            .collect::<rusqlite::Result<Vec<_>>>()
            .during(what)?;
        rows.into_iter()
            .map(|(id, json)| {
                let alert = serde_json::from_str(&json).map_err(|source| HistoryError::Json {
                    what: format!("reading stored alert {id}"),
                    source,
                })?;
                Ok((AlertId(id), alert))
            })
            .collect()
    }

    /// Marks the alert delivered on `channel` at `at`. Marking a delivered alert again
    /// changes nothing (the first delivery time is kept).
    pub fn mark_delivered(
        &mut self,
        alert: AlertId,
        channel: &str,
        at: OffsetDateTime,
    ) -> Result<(), HistoryError> {
        let at = stored_time(at)?;
        let changed = self
            .conn
            .execute(
                "UPDATE deliveries
                 SET state = 'delivered', attempts = attempts + 1, last_attempt_at = ?3,
                     delivered_at = ?3
                 WHERE alert_id = ?1 AND channel = ?2 AND state = 'pending'",
                params![alert.0, channel, at],
            )
            .during(|| format!("marking alert {} delivered on channel {channel:?}", alert.0))?;
        if changed == 1 {
            return Ok(());
        }
        match self.delivery_state(alert, channel)? {
            Some(DeliveryState::Delivered) => Ok(()),
            // Pending cannot occur here: the update above would have matched it.
            Some(DeliveryState::Pending) | None => Err(HistoryError::NoSuchDelivery {
                alert: alert.0,
                channel: channel.to_owned(),
            }),
        }
    }

    /// Records a failed attempt to deliver the alert on `channel` at `at`: the attempt count
    /// grows and `error` is kept as the last error; the delivery stays pending.
    pub fn mark_failed(
        &mut self,
        alert: AlertId,
        channel: &str,
        at: OffsetDateTime,
        error: &str,
    ) -> Result<(), HistoryError> {
        let at = stored_time(at)?;
        let changed = self
            .conn
            .execute(
                "UPDATE deliveries
                 SET attempts = attempts + 1, last_attempt_at = ?3, last_error = ?4
                 WHERE alert_id = ?1 AND channel = ?2 AND state = 'pending'",
                params![alert.0, channel, at, error],
            )
            .during(|| {
                format!(
                    "recording a failed delivery of alert {} on channel {channel:?}",
                    alert.0
                )
            })?;
        if changed == 1 {
            return Ok(());
        }
        match self.delivery_state(alert, channel)? {
            Some(DeliveryState::Delivered) => Err(HistoryError::AlreadyDelivered {
                alert: alert.0,
                channel: channel.to_owned(),
            }),
            Some(DeliveryState::Pending) | None => Err(HistoryError::NoSuchDelivery {
                alert: alert.0,
                channel: channel.to_owned(),
            }),
        }
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

    /// Stores a received TLS-RPT report: `report` as read from `json` (the decompressed JSON
    /// text, kept as received), `source` saying where it was read from (a file path, a
    /// message in a mail folder) and `received_at` when it was read. A report is known by its
    /// reporter (`organization-name`) and `report-id`: storing one already there changes
    /// nothing and gives [`StoreOutcome::Duplicate`].
    ///
    /// `json` must read back as `report` ([`HistoryError::ReportMismatch`] otherwise), so
    /// that [`History::reports`] gives back exactly what was stored. On error nothing is
    /// stored.
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

    /// The stored TLS-RPT reports, ordered by the start of their date range, then reporter
    /// (then report id): all of them, or only those with a policy for `domain`, and only
    /// those whose date range ends at or after `since`. Each comes back whole, with the
    /// policies for other domains too.
    pub fn reports(
        &self,
        domain: Option<&DomainName>,
        since: Option<OffsetDateTime>,
    ) -> Result<Vec<StoredReport>, HistoryError> {
        let since = since.map(stored_time).transpose()?;
        let what = || match domain {
            Some(domain) => format!("reading the stored reports for {domain}"),
            None => "reading the stored reports".to_owned(),
        };
        let mut stmt = self
            .conn
            .prepare(
                "SELECT r.reporter, r.report_id, r.source, r.received_at, r.json
                 FROM reports r
                 WHERE (?1 IS NULL OR EXISTS (SELECT 1 FROM report_domains d
                                              WHERE d.domain = ?1 AND d.report = r.id))
                   AND (?2 IS NULL OR r.range_end >= ?2)
                 ORDER BY r.range_start, r.reporter, r.report_id",
            )
            .during(what)?;
        let rows = stmt
            .query_map(params![domain.map(DomainName::as_str), since], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, String>(3)?,
                    row.get::<_, String>(4)?,
                ))
            })
            .during(what)?
            .collect::<rusqlite::Result<Vec<_>>>()
            .during(what)?;
        rows.into_iter()
            .map(|(reporter, report_id, source, received_at, json)| {
                let received_at = read_time(&received_at, || {
                    format!("reports.received_at of report {report_id:?} from {reporter:?}")
                })?;
                let report = read_report(json.as_bytes())
                    .map_err(|error| HistoryError::StoredReportUnreadable {
                        origin: source.clone(),
                        reporter,
                        report_id,
                        error: Box::new(error),
                    })?
                    .report;
                Ok(StoredReport {
                    source,
                    received_at,
                    report,
                })
            })
            .collect()
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

    /// Whether `alert` has a delivery on `channel`, and its state.
    fn delivery_state(
        &self,
        alert: AlertId,
        channel: &str,
    ) -> Result<Option<DeliveryState>, HistoryError> {
        let what = || {
            format!(
                "reading the delivery of alert {} on channel {channel:?}",
                alert.0
            )
        };
        let state: Option<String> = self
            .conn
            .query_row(
                "SELECT state FROM deliveries WHERE alert_id = ?1 AND channel = ?2",
                params![alert.0, channel],
                |row| row.get(0),
            )
            .optional()
            .during(what)?;
        state
            .map(|state| match state.as_str() {
                "pending" => Ok(DeliveryState::Pending),
                "delivered" => Ok(DeliveryState::Delivered),
                _ => Err(HistoryError::Corrupt {
                    what: format!(
                        "deliveries.state of alert {} on channel {channel:?}",
                        alert.0
                    ),
                    value: state,
                }),
            })
            .transpose()
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

/// A received TLS-RPT report as stored in the history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredReport {
    /// Where it was read from (a file path, a message in a mail folder).
    pub source: String,
    /// When it was read.
    #[serde(with = "time::serde::rfc3339")]
    pub received_at: OffsetDateTime,
    /// The report, read again from the stored JSON.
    pub report: Report,
}

/// The state of one delivery.
enum DeliveryState {
    Pending,
    Delivered,
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
struct Summary {
    status: DomainStatus,
    errors: u32,
    warnings: u32,
    notices: u32,
    policy_mode: Option<&'static str>,
    policy_id: Option<String>,
    mx: Vec<String>,
}

impl Summary {
    fn of(snapshot: &Snapshot) -> Self {
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

/// Writes the timeline for people: a heading line, then one line per run with the time,
/// status, finding counts, MTA-STS mode and id, MX hosts and the kinds of change alerted.
pub fn write_timeline(
    out: &mut impl Write,
    domain: &DomainName,
    entries: &[TimelineEntry],
) -> io::Result<()> {
    match entries.len() {
        0 => writeln!(out, "{domain}: no runs recorded")?,
        1 => writeln!(out, "{domain}: 1 run")?,
        n => writeln!(out, "{domain}: {n} runs")?,
    }
    for e in entries {
        let when = e
            .observed_at
            .to_offset(time::UtcOffset::UTC)
            .format(SHOWN_TIME)
            .map_err(io::Error::other)?;
        let sts = match (&e.policy_mode, &e.policy_id) {
            (Some(mode), Some(id)) => format!("mta-sts {mode} (id {id})"),
            (Some(mode), None) => format!("mta-sts {mode}"),
            (None, Some(id)) => format!("mta-sts id {id}, no valid policy"),
            (None, None) => "no mta-sts".to_owned(),
        };
        let mx = if e.mx.is_empty() {
            "no mx".to_owned()
        } else {
            format!("mx {}", e.mx.join(", "))
        };
        write!(
            out,
            "{when}  {:<12}  {}, {}, {}  {sts}  {mx}",
            e.status.as_str(),
            counted(e.errors, "error"),
            counted(e.warnings, "warning"),
            counted(e.notices, "notice"),
        )?;
        if let Some(alert) = &e.alert {
            let mut kinds: Vec<ChangeKind> = Vec::new();
            for change in &alert.changes {
                if !kinds.contains(&change.kind) {
                    kinds.push(change.kind);
                }
            }
            let names: Vec<String> = kinds.iter().map(kind_name).collect();
            write!(out, "  alert: {}", names.join(", "))?;
        }
        writeln!(out)?;
    }
    Ok(())
}

/// `1 error`, `2 errors`, `0 errors`.
fn counted(n: u32, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// The wire name of a change kind (`new-failure`), as in the alert JSON.
fn kind_name(kind: &ChangeKind) -> String {
    match serde_json::to_value(kind) {
        Ok(serde_json::Value::String(name)) => name,
        _ => format!("{kind:?}"),
    }
}

/// [`HistoryError::NotAFile`] when `path` exists and is not a regular file (a symbolic link
/// is followed). A missing path is left to the caller: [`History::open`] creates it.
fn refuse_non_file(path: &Path) -> Result<(), HistoryError> {
    match std::fs::metadata(path) {
        Ok(meta) if !meta.is_file() => Err(HistoryError::NotAFile {
            path: path.to_owned(),
        }),
        _ => Ok(()),
    }
}

/// `<path>.lock`.
fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// The database's version when this build knows it; otherwise [`HistoryError::TooNew`].
fn check_version(path: &Path, found: i64) -> Result<u32, HistoryError> {
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
fn migrate(conn: &mut Connection, path: &Path) -> Result<(), HistoryError> {
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

/// Migration 3: the policy and failure rows of every report already stored, read again
/// from its JSON one at a time.
fn fill_report_rows(tx: &Connection, path: &Path, from: u32) -> Result<(), HistoryError> {
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

/// The stored form of a time (see the module documentation).
fn stored_time(t: OffsetDateTime) -> Result<String, HistoryError> {
    let Some(utc) = t
        .checked_to_offset(time::UtcOffset::UTC)
        .filter(|utc| (0..=9999).contains(&utc.year()))
    else {
        return Err(HistoryError::TimeOutOfRange { value: t });
    };
    utc.format(STORED_TIME)
        .map_err(|_| HistoryError::TimeOutOfRange { value: t })
}

/// Reads a stored time back.
fn read_time(text: &str, what: impl FnOnce() -> String) -> Result<OffsetDateTime, HistoryError> {
    OffsetDateTime::parse(text, &Rfc3339).map_err(|_| HistoryError::Corrupt {
        what: what(),
        value: text.to_owned(),
    })
}

#[cfg(test)]
pub(crate) mod test_support {
    //! A history in a directory of its own, holding given reports, for the tests of the
    //! modules that read reports back.

    use std::sync::atomic::{AtomicU32, Ordering};

    use time::macros::datetime;

    use super::History;
    use crate::tlsrpt::report::Report;

    /// A history holding some reports; its directory is removed when it is dropped.
    pub(crate) struct TempHistory {
        pub(crate) history: History,
        dir: std::path::PathBuf,
    }

    impl TempHistory {
        /// A fresh history with `reports` stored, each from its compact JSON.
        pub(crate) fn with_reports(tag: &str, reports: &[Report]) -> Self {
            static NEXT: AtomicU32 = AtomicU32::new(0);
            let dir = std::env::temp_dir().join(format!(
                "mxprobe-reports-{tag}-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&dir).unwrap();
            let mut history = History::open(&dir.join("history.db")).unwrap();
            for (i, report) in reports.iter().enumerate() {
                history
                    .store_report(
                        report,
                        report.to_json().as_bytes(),
                        &format!("report {i}"),
                        datetime!(2026-11-30 08:00 UTC),
                    )
                    .unwrap();
            }
            Self { history, dir }
        }
    }

    impl Drop for TempHistory {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::Change;
    use crate::finding::Subject;
    use serde_json::json;
    use std::sync::atomic::{AtomicU32, Ordering};
    use time::macros::datetime;

    /// A fresh directory under the system temp dir, removed on drop (also when a test fails).
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> Self {
            static NEXT: AtomicU32 = AtomicU32::new(0);
            let dir = std::env::temp_dir().join(format!(
                "mxprobe-history-{}-{}-{name}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }

        fn db(&self) -> PathBuf {
            self.0.join("history.db")
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn example() -> DomainName {
        DomainName::parse("example.com").unwrap()
    }

    /// A snapshot of example.com observed at `at`, with one finding per `(severity,
    /// inconclusive)`, an optional policy `(mode, id)` and the given MX hosts.
    fn snapshot(
        at: &str,
        findings: &[(&str, bool)],
        policy: Option<(&str, &str)>,
        mx: &[&str],
    ) -> Snapshot {
        let findings: Vec<_> = findings
            .iter()
            .enumerate()
            .map(|(i, (severity, inconclusive))| {
                json!({"code": format!("test.finding-{i}"), "severity": severity,
                       "subject": {"domain": "example.com"}, "message": "m",
                       "inconclusive": inconclusive})
            })
            .collect();
        let sts = match policy {
            Some((mode, id)) => json!({"id": id, "policy": {"mode": mode, "max_age": 86400,
                                       "mx": mx, "extensions": []}}),
            None => json!({}),
        };
        let records: Vec<_> = mx
            .iter()
            .enumerate()
            .map(|(i, host)| json!({"preference": 10 * (i + 1), "exchange": host}))
            .collect();
        let hosts: Vec<_> = mx
            .iter()
            .enumerate()
            .map(|(i, host)| json!({"exchange": host, "preference": 10 * (i + 1)}))
            .collect();
        let inconclusive = findings.iter().any(|f| f["inconclusive"] == true);
        serde_json::from_value(json!({
            "facts": {
                "domain": "example.com",
                "observed_at": at,
                "mx": {"status": "records", "records": records, "dnssec": "insecure",
                       "cname-chain": []},
                "sts_txt": {"status": "nodata", "dnssec": "insecure"},
                "tlsrpt_txt": {"status": "nodata", "dnssec": "insecure"},
                "hosts": hosts
            },
            "verdict": {
                "domain": "example.com",
                "routing": "mx",
                "sts": sts,
                "sessions": [],
                "inconclusive": inconclusive,
                "findings": findings
            }
        }))
        .unwrap()
    }

    fn alert(at: OffsetDateTime, status: DomainStatus, kinds: &[ChangeKind]) -> Alert {
        let d = example();
        Alert::new(
            d.clone(),
            at,
            status,
            Some(DomainStatus::Pass),
            kinds
                .iter()
                .map(|&kind| Change {
                    kind,
                    severity: Severity::Error,
                    subject: Subject::domain(&d),
                    message: "changed".to_owned(),
                    fix: None,
                })
                .collect(),
        )
    }

    fn user_version(path: &Path) -> i64 {
        Connection::open(path)
            .unwrap()
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .unwrap()
    }

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
    fn version_1_database(path: &Path, extra_sql: &str) -> (Snapshot, Alert) {
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

    const SMTP_TLS: &[u8] = include_bytes!("../fixtures/tlsrpt-reports/parsedmarc/smtp_tls.json");
    const MAIL_RU: &[u8] = include_bytes!("../fixtures/tlsrpt-reports/parsedmarc/mail.ru.json");
    const RFC8460: &[u8] = include_bytes!("../fixtures/tlsrpt-reports/parsedmarc/rfc8460.json");

    fn read(json: &[u8]) -> Report {
        read_report(json).unwrap().report
    }

    /// A report from `reporter` with id `id` covering the UTC day `day`, with one
    /// no-policy-found policy per entry of `domains`.
    fn made_report(reporter: &str, id: &str, day: &str, domains: &[&str]) -> String {
        let policies: Vec<_> = domains
            .iter()
            .map(|d| {
                json!({"policy": {"policy-type": "no-policy-found", "policy-string": [],
                                  "policy-domain": d},
                       "summary": {"total-successful-session-count": 1,
                                   "total-failure-session-count": 0},
                       "failure-details": []})
            })
            .collect();
        json!({"organization-name": reporter,
               "date-range": {"start-datetime": format!("{day}T00:00:00Z"),
                              "end-datetime": format!("{day}T23:59:59Z")},
               "contact-info": "tlsrpt@example.org", "report-id": id, "policies": policies})
        .to_string()
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
        assert_eq!(h.reports(None, None).unwrap(), vec![]);
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
        assert_eq!(h.reports(None, None).unwrap().len(), 1);
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
            matches!(&err, HistoryError::StoredReportUnreadable { origin, .. } if origin == "bad.json"),
            "{err:?}"
        );
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

        let ids = |reports: Vec<StoredReport>| -> Vec<String> {
            reports.into_iter().map(|r| r.report.report_id).collect()
        };
        let smtp_tls_id = "2024-01-09T00:00:00Z_example.com";
        let mail_ru_id = "b28254de-7b2e-be36-bb5c-4c3b92da8b25@mail.ru";
        let rfc_id = "5065427c-23d3-47ca-b6e0-946ea0e8c4be";
        // By start of date range (2016-04-01, 2024-01-09 twice, 2024-02-22, 2024-03-01),
        // then reporter ("Example Inc." before "Example Org").
        let all = h.reports(None, None).unwrap();
        assert_eq!(
            all.iter()
                .map(|r| (r.report.organization_name.as_str(), r.source.as_str()))
                .collect::<Vec<_>>(),
            [
                ("Company-X", "rfc8460.json"),
                ("Example Inc.", "smtp_tls.json"),
                ("Example Org", "multi.json"),
                ("Mail.ru", "mail.ru.json"),
                ("Other Org", "other.json"),
            ]
        );
        assert_eq!(
            all[1],
            StoredReport {
                source: "smtp_tls.json".to_owned(),
                received_at: at,
                report: read(SMTP_TLS),
            }
        );

        let domain = |name: &str| DomainName::parse(name).unwrap();
        let for_domain = |name: &str, since| ids(h.reports(Some(&domain(name)), since).unwrap());
        assert_eq!(
            for_domain("example.com", None),
            [smtp_tls_id, "multi", mail_ru_id]
        );
        assert_eq!(for_domain("company-y.example", None), [rfc_id]);
        assert_eq!(for_domain("example.org", None), [smtp_tls_id]);
        assert_eq!(for_domain("nowhere.example", None), Vec::<String>::new());
        // A report comes back whole, with its policies for other domains.
        let net = h.reports(Some(&domain("example.net")), None).unwrap();
        assert_eq!(net.len(), 1);
        assert_eq!(net[0].report, read(multi.as_bytes()));
        assert_eq!(net[0].report.policies.len(), 3);

        // `since` keeps the reports whose range ends at or after it: smtp_tls.json and
        // multi end 2024-01-09T23:59:59Z, mail.ru.json at 2024-02-23T00:00:00Z.
        assert_eq!(
            for_domain("example.com", Some(datetime!(2024-01-09 23:59:59 UTC))),
            [smtp_tls_id, "multi", mail_ru_id]
        );
        assert_eq!(
            for_domain("example.com", Some(datetime!(2024-01-10 00:00 UTC))),
            [mail_ru_id]
        );
        assert_eq!(
            for_domain("example.com", Some(datetime!(2024-02-23 00:00 UTC))),
            [mail_ru_id]
        );
        assert_eq!(
            for_domain(
                "example.com",
                Some(datetime!(2024-02-23 00:00:00.000000001 UTC))
            ),
            Vec::<String>::new()
        );
        assert_eq!(
            ids(h
                .reports(None, Some(datetime!(2024-02-01 00:00 +01:00)))
                .unwrap()),
            [mail_ru_id, smtp_tls_id]
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
        assert_eq!(h.reports(None, None).unwrap(), vec![]);

        // A stored report changed by hand is named when it no longer reads.
        h.store_report(&report, SMTP_TLS, "smtp_tls.json", at)
            .unwrap();
        h.conn
            .execute("UPDATE reports SET json = '{\"policies\": 1}'", [])
            .unwrap();
        let err = h.reports(None, None).unwrap_err();
        assert!(
            matches!(&err, HistoryError::StoredReportUnreadable { origin, reporter, report_id, .. }
                if origin == "smtp_tls.json" && reporter == "Example Inc."
                    && report_id == "2024-01-09T00:00:00Z_example.com"),
            "{err:?}"
        );
        assert!(err.to_string().contains("changed outside mxprobe"), "{err}");
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

    #[test]
    fn a_file_that_is_not_a_database_is_refused() {
        let dir = TempDir::new("not-db");
        let path = dir.db();
        std::fs::write(
            &path,
            b"this is not an SQLite database, not even close to one",
        )
        .unwrap();
        let err = History::open(&path).unwrap_err();
        assert!(
            matches!(&err, HistoryError::Open { path: p, .. } if *p == path),
            "{err:?}"
        );
    }

    #[test]
    fn a_device_or_directory_is_refused_without_a_lock_file_beside_it() {
        let dir = TempDir::new("not-file");
        for path in [PathBuf::from("/dev/null"), dir.0.clone()] {
            for err in [
                History::open(&path).unwrap_err(),
                History::open_read_only(&path).unwrap_err(),
            ] {
                assert!(
                    matches!(&err, HistoryError::NotAFile { path: p } if *p == path),
                    "{err:?}"
                );
                assert!(
                    err.to_string()
                        .starts_with(&format!("{} is not a regular file", path.display())),
                    "{err}"
                );
            }
            assert!(!lock_path(&path).exists(), "{}", lock_path(&path).display());
        }
    }

    #[test]
    fn a_second_open_is_locked_until_the_first_is_dropped() {
        let dir = TempDir::new("lock");
        let path = dir.db();
        let first = History::open(&path).unwrap();
        let err = History::open(&path).unwrap_err();
        let lock = dir.0.join("history.db.lock");
        assert!(
            matches!(&err, HistoryError::Locked { path: p, lock: l } if *p == path && *l == lock),
            "{err:?}"
        );
        assert!(err.to_string().contains("history.db.lock"), "{err}");
        drop(first);
        History::open(&path).unwrap();
    }

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
    fn a_read_only_open_reads_during_a_run_and_refuses_what_it_cannot_read() {
        let dir = TempDir::new("read-only");
        let path = dir.db();
        // Nothing there: an error naming the file, and no file created.
        let err = History::open_read_only(&path).unwrap_err();
        assert!(matches!(err, HistoryError::Open { .. }), "{err:?}");
        assert!(!path.exists());
        // While a run holds the lock and has recorded a snapshot, a reader sees it.
        let mut writer = History::open(&path).unwrap();
        let run = writer.begin_run(datetime!(2026-11-01 06:00 UTC)).unwrap();
        writer
            .record(
                run,
                &snapshot(
                    "2026-11-01T06:00:00Z",
                    &[("error", false)],
                    None,
                    &["mx.example.com"],
                ),
                None,
                &[],
            )
            .unwrap();
        let reader = History::open_read_only(&path).unwrap();
        let timeline = reader.timeline(&example(), None).unwrap();
        assert_eq!(timeline.len(), 1);
        assert_eq!(timeline[0].status, DomainStatus::Fail);
        drop(writer);
        // An empty SQLite file (schema version 0) is not read: the next monitor run migrates it.
        let empty = dir.0.join("empty.db");
        Connection::open(&empty)
            .unwrap()
            .execute_batch("CREATE TABLE t (x)")
            .unwrap();
        let err = History::open_read_only(&empty).unwrap_err();
        assert!(
            matches!(err, HistoryError::NotMigrated { found: 0, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("run `mxprobe monitor`"), "{err}");
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
        let a2 = alert(
            datetime!(2026-11-02 06:00:00.5 UTC),
            DomainStatus::Fail,
            &[
                ChangeKind::NewFailure,
                ChangeKind::PolicyChanged,
                ChangeKind::NewFailure,
            ],
        );

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
        assert_eq!(all.len(), 4);
        assert_eq!(
            all[1],
            TimelineEntry {
                run: r2,
                observed_at: datetime!(2026-11-02 06:00:00.5 UTC),
                status: DomainStatus::Fail,
                errors: 1,
                warnings: 1,
                notices: 1,
                policy_mode: Some("testing".to_owned()),
                policy_id: Some("2026b".to_owned()),
                mx: vec!["mx1.example.com".to_owned()],
                alert: Some(a2.clone()),
            }
        );
        assert_eq!(
            all.iter().map(|e| e.status).collect::<Vec<_>>(),
            [
                DomainStatus::Pass,
                DomainStatus::Fail,
                DomainStatus::Inconclusive,
                DomainStatus::Inconclusive
            ]
        );
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

        let mut out = Vec::new();
        write_timeline(&mut out, &d, &all).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "example.com: 4 runs\n\
             2026-11-01T06:00:00Z  pass          0 errors, 0 warnings, 1 notice  \
             mta-sts enforce (id 2026a)  mx mx1.example.com, mx2.example.com\n\
             2026-11-02T06:00:00Z  fail          1 error, 1 warning, 1 notice  \
             mta-sts testing (id 2026b)  mx mx1.example.com  alert: new-failure, policy-changed\n\
             2026-11-03T06:00:00Z  inconclusive  1 error, 0 warnings, 0 notices  \
             no mta-sts  mx mx1.example.com, mx2.example.com\n\
             2026-11-04T06:00:00Z  inconclusive  0 errors, 1 warning, 0 notices  \
             no mta-sts  mx mx1.example.com, mx2.example.com\n"
        );
        let mut out = Vec::new();
        write_timeline(&mut out, &other, &[]).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "example.net: no runs recorded\n"
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

    #[test]
    fn deliveries_are_tracked_per_channel() {
        let dir = TempDir::new("deliveries");
        let mut h = History::open(&dir.db()).unwrap();
        let s1 = snapshot("2026-11-01T06:00:00Z", &[], None, &["mx1.example.com"]);
        let s2 = snapshot("2026-11-02T06:00:00Z", &[], None, &["mx2.example.com"]);
        let a1 = alert(
            datetime!(2026-11-01 06:00 UTC),
            DomainStatus::Fail,
            &[ChangeKind::NewFailure],
        );
        let a2 = alert(
            datetime!(2026-11-02 06:00 UTC),
            DomainStatus::Pass,
            &[ChangeKind::MxChanged],
        );
        let r1 = h.begin_run(datetime!(2026-11-01 06:00 UTC)).unwrap();
        let id1 = h
            .record(r1, &s1, Some(&a1), &["webhook", "email", "webhook"])
            .unwrap()
            .unwrap();
        let r2 = h.begin_run(datetime!(2026-11-02 06:00 UTC)).unwrap();
        let id2 = h
            .record(r2, &s2, Some(&a2), &["webhook", "email"])
            .unwrap()
            .unwrap();

        // Oldest first, on both channels; no delivery on a channel not named.
        assert_eq!(
            h.pending("webhook").unwrap(),
            vec![(id1, a1.clone()), (id2, a2.clone())]
        );
        assert_eq!(
            h.pending("email").unwrap(),
            vec![(id1, a1.clone()), (id2, a2.clone())]
        );
        assert_eq!(h.pending("exec").unwrap(), vec![]);

        // The webhook works; e-mail fails twice for the first alert.
        h.mark_delivered(id1, "webhook", datetime!(2026-11-02 06:01 UTC))
            .unwrap();
        h.mark_failed(
            id1,
            "email",
            datetime!(2026-11-02 06:01 UTC),
            "connection refused",
        )
        .unwrap();
        h.mark_failed(
            id1,
            "email",
            datetime!(2026-11-02 06:02 UTC),
            "421 try later",
        )
        .unwrap();
        assert_eq!(h.pending("webhook").unwrap(), vec![(id2, a2.clone())]);
        assert_eq!(
            h.pending("email").unwrap(),
            vec![(id1, a1.clone()), (id2, a2.clone())]
        );

        let row = |h: &History,
                   id: AlertId,
                   channel: &str|
         -> (String, i64, Option<String>, Option<String>, Option<String>) {
            h.conn
                .query_row(
                    "SELECT state, attempts, last_error, last_attempt_at, delivered_at
                     FROM deliveries WHERE alert_id = ?1 AND channel = ?2",
                    params![id.0, channel],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
                )
                .unwrap()
        };
        assert_eq!(
            row(&h, id1, "email"),
            (
                "pending".to_owned(),
                2,
                Some("421 try later".to_owned()),
                Some("2026-11-02T06:02:00.000000000Z".to_owned()),
                None
            )
        );
        assert_eq!(
            row(&h, id1, "webhook"),
            (
                "delivered".to_owned(),
                1,
                None,
                Some("2026-11-02T06:01:00.000000000Z".to_owned()),
                Some("2026-11-02T06:01:00.000000000Z".to_owned())
            )
        );

        // Marking again keeps the first delivery; a failure after delivery is refused.
        h.mark_delivered(id1, "webhook", datetime!(2026-11-03 00:00 UTC))
            .unwrap();
        assert_eq!(
            row(&h, id1, "webhook").4.as_deref(),
            Some("2026-11-02T06:01:00.000000000Z")
        );
        let err = h
            .mark_failed(id1, "webhook", datetime!(2026-11-03 00:00 UTC), "late")
            .unwrap_err();
        assert!(
            matches!(&err, HistoryError::AlreadyDelivered { alert: a, channel }
                if *a == id1.0 && channel == "webhook"),
            "{err:?}"
        );
        for err in [
            h.mark_delivered(id1, "exec", datetime!(2026-11-03 00:00 UTC))
                .unwrap_err(),
            h.mark_failed(AlertId(99), "email", datetime!(2026-11-03 00:00 UTC), "x")
                .unwrap_err(),
        ] {
            assert!(
                matches!(err, HistoryError::NoSuchDelivery { .. }),
                "{err:?}"
            );
        }

        h.mark_delivered(id1, "email", datetime!(2026-11-02 07:00 UTC))
            .unwrap();
        assert_eq!(h.pending("email").unwrap(), vec![(id2, a2.clone())]);
        assert_eq!(row(&h, id1, "email").1, 3);
    }

    #[test]
    fn alerts_recorded_before_a_crash_are_still_pending_after_reopening() {
        let dir = TempDir::new("crash");
        let path = dir.db();
        let a = alert(
            datetime!(2026-11-01 06:00 UTC),
            DomainStatus::Fail,
            &[ChangeKind::NewFailure],
        );
        let id = {
            let mut h = History::open(&path).unwrap();
            let run = h.begin_run(datetime!(2026-11-01 06:00 UTC)).unwrap();
            let s = snapshot(
                "2026-11-01T06:00:00Z",
                &[("error", false)],
                None,
                &["mx1.example.com"],
            );
            let id = h
                .record(run, &s, Some(&a), &["webhook", "email", "exec"])
                .unwrap()
                .unwrap();
            // The run never finishes and nothing is marked: the process dies here. The files
            // as they are on disk at this moment (no checkpoint, no clean close) are what a
            // killed process leaves behind.
            std::fs::copy(&path, dir.0.join("killed.db")).unwrap();
            std::fs::copy(dir.0.join("history.db-wal"), dir.0.join("killed.db-wal")).unwrap();
            id
        };
        for db in [path, dir.0.join("killed.db")] {
            let h = History::open(&db).unwrap();
            for channel in ["webhook", "email", "exec"] {
                assert_eq!(
                    h.pending(channel).unwrap(),
                    vec![(id, a.clone())],
                    "{} {channel}",
                    db.display()
                );
            }
        }
        let h = History::open(&dir.db()).unwrap();
        assert_eq!(
            h.last_alert_at(&example()).unwrap(),
            Some(datetime!(2026-11-01 06:00 UTC))
        );
    }

    #[test]
    fn stored_times_have_a_fixed_width_and_read_back_exactly() {
        let whole = datetime!(2026-11-29 06:00 UTC);
        let half = datetime!(2026-11-29 06:00:00.5 UTC);
        let shifted = datetime!(2026-11-29 08:00:00.000000001 +02:00);
        assert_eq!(
            stored_time(whole).unwrap(),
            "2026-11-29T06:00:00.000000000Z"
        );
        assert_eq!(stored_time(half).unwrap(), "2026-11-29T06:00:00.500000000Z");
        assert_eq!(
            stored_time(shifted).unwrap(),
            "2026-11-29T06:00:00.000000001Z"
        );
        assert!(stored_time(whole).unwrap() < stored_time(shifted).unwrap());
        assert!(stored_time(shifted).unwrap() < stored_time(half).unwrap());
        for t in [whole, half, shifted] {
            assert_eq!(read_time(&stored_time(t).unwrap(), String::new).unwrap(), t);
        }
        let ancient = datetime!(-0001-01-01 00:00 UTC);
        // In UTC this is in the year 10000, which `time` cannot even represent.
        let beyond = datetime!(9999-12-31 23:30 -01:00);
        for t in [ancient, beyond] {
            assert!(matches!(
                stored_time(t),
                Err(HistoryError::TimeOutOfRange { value }) if value == t
            ));
        }
        assert!(matches!(
            read_time("yesterday", || "runs.started_at".to_owned()),
            Err(HistoryError::Corrupt { what, value })
                if what == "runs.started_at" && value == "yesterday"
        ));
    }
}
