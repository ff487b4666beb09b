//! The monitoring history: one SQLite database that keeps, for every run of `mxprobe monitor`,
//! each domain's [`DomainResult`], the [`Alert`] raised for it, and that alert's delivery state on
//! every notification channel; and, beside them, the TLS-RPT reports (RFC 8460) the domains'
//! owners received from other senders (`mxprobe reports ingest`), kept once per reporter and
//! report id.
//!
//! [`mxprobe_core::changes`] decides what changed and [`crate::notify`] delivers alerts; this module
//! only stores what they produce and answers the questions the next run asks (the previous
//! snapshot, the inconclusive streak, the last alert, what is still to deliver) and the
//! timeline people read.
//!
//! Opening (the run lock, the version check) and the stored time form are here; `schema`
//! holds the migrations, `runs` the runs, snapshots, alerts and timeline, `deliveries` each
//! alert's delivery per channel, `received` the received reports and their sums, and `text`
//! the timeline for people ([`write_timeline`]).
//!
//! I/O: reads and writes the database file given to [`History::open`] (and SQLite's `-wal` and
//! `-shm` files beside it while it is open), and holds an exclusive advisory lock on
//! `<path>.lock` for as long as the [`History`] lives, so that two runs started by cron or a
//! timer never interleave. On close the database leaves WAL mode (so that readers create no
//! `-wal` or `-shm` file) and the lock file is removed while still locked; a process that
//! locked the removed file sees that the path no longer names it and tries again. No clock
//! is read here: every time is a parameter.
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
//! the JSON text it arrived as, with its reporter, id, date range and policy domains in
//! columns, and its policies and failure details as rows that the summaries add up in SQL.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::BorrowedFormatItem;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;

#[cfg(doc)]
use mxprobe_core::{alert::Alert, result::DomainResult};

mod deliveries;
mod error;
mod received;
mod runs;
mod schema;
mod text;

pub use error::HistoryError;
pub use received::{
    BreakdownKey, FailureGroup, FailureKey, FailureSums, PolicySums, ReportedFailures,
    StoreOutcome, SumScope, add_sessions,
};
pub use runs::TimelineEntry;
pub use schema::{MIGRATIONS, SCHEMA_VERSION};
use schema::{check_version, migrate};
pub use text::write_timeline;

/// How long a statement waits for a database another connection is writing. The run lock
/// keeps monitor runs apart; this covers anything else that opens the file (`sqlite3`, a
/// backup) for a moment.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The stored timestamp form: RFC 3339 in UTC with all nine fraction digits (fixed width).
const STORED_TIME: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:9]Z");

/// One run of `mxprobe monitor`, as numbered in the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct RunId(pub i64);

/// One stored alert, as numbered in the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct AlertId(pub i64);

/// The monitoring history: the open database and the run lock, both held until dropped.
#[derive(Debug)]
pub struct History {
    /// Declared first so that it closes before the lock below is released.
    conn: Connection,
    /// The locked `<path>.lock`; dropping it removes the file and releases the lock. `None`
    /// when opened read-only.
    _lock: Option<RunLock>,
}

/// The run lock: `<path>.lock`, locked.
#[derive(Debug)]
struct RunLock {
    path: PathBuf,
    /// Closing it releases the lock (after the file is removed).
    _file: File,
}

impl RunLock {
    /// Locks `path`, creating it. A file removed by the process that held it before is
    /// locked in vain: then the path is opened again.
    fn take(path: &Path, db: &Path) -> Result<Self, HistoryError> {
        use std::os::unix::fs::MetadataExt as _;
        let lock_error = |source| HistoryError::Lock {
            lock: path.to_owned(),
            source,
        };
        loop {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(path)
                .map_err(lock_error)?;
            match file.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => {
                    return Err(HistoryError::Locked {
                        path: db.to_owned(),
                        lock: path.to_owned(),
                    });
                }
                Err(TryLockError::Error(source)) => return Err(lock_error(source)),
            }
            let held = file.metadata().map_err(lock_error)?;
            match std::fs::metadata(path) {
                Ok(now) if (now.dev(), now.ino()) == (held.dev(), held.ino()) => {
                    return Ok(Self {
                        path: path.to_owned(),
                        _file: file,
                    });
                }
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(lock_error(e)),
            }
        }
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // Still locked here: whoever opens the path next creates a new file.
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Drop for History {
    fn drop(&mut self) {
        // Only the run's connection may switch; with a reader still open this fails and the
        // database stays in WAL mode until the next run.
        if self._lock.is_some() {
            let _ = self
                .conn
                .pragma_update_and_check(None, "journal_mode", "delete", |_| Ok(()));
        }
    }
}

impl History {
    /// Opens (creating) the database at `path`, migrates it to [`SCHEMA_VERSION`], and takes
    /// the run lock: an exclusive advisory lock on `<path>.lock`, held until the `History` is
    /// dropped. Another process holding it → [`HistoryError::Locked`]; a database newer than
    /// this build → [`HistoryError::TooNew`], with nothing written to it.
    pub fn open(path: &Path) -> Result<Self, HistoryError> {
        refuse_non_file(path)?;
        let lock = RunLock::take(&lock_path(path), path)?;

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
pub(crate) mod test_support;

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::test_support::*;
    use super::*;
    use mxprobe_core::alert::DomainStatus;

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
