//! What can go wrong with the history, and the context every SQLite error gets.

use std::io;
use std::path::PathBuf;

use time::OffsetDateTime;

use mxprobe_core::domain::DomainName;
use mxprobe_core::tlsrpt::report::ReadError;

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
    NotAFile { path: PathBuf },
    /// Another process holds the run lock.
    #[error(
        "the history database {} is in use by another mxprobe process (it holds the lock {}); \
         wait for that run to finish (if runs overlap, schedule them further apart)",
        .path.display(), .lock.display()
    )]
    Locked { path: PathBuf, lock: PathBuf },
    /// The lock file could not be created or locked.
    #[error(
        "cannot create or lock {}: {source}; check that its directory exists and is writable",
        .lock.display()
    )]
    Lock { lock: PathBuf, source: io::Error },
    /// The database could not be opened or configured (not an SQLite file, no permission …).
    #[error(
        "cannot open the history database {}: {source}; check the path and that the file is \
         an mxprobe history (an SQLite database)",
        .path.display()
    )]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    /// A migration failed; the transaction was rolled back, so the database is as it was.
    #[error(
        "cannot migrate the history database {} from schema version {from} to {to}: {source}; \
         the database was left at version {from}",
        .path.display()
    )]
    Migrate {
        path: PathBuf,
        /// The version the database had.
        from: u32,
        /// The version whose migration failed.
        to: u32,
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
        path: PathBuf,
        /// Its `user_version`.
        found: i64,
        /// [`super::SCHEMA_VERSION`].
        supported: u32,
    },
    /// A read-only open met a database of an older schema (or an empty file).
    #[error(
        "{}: schema version {found}, this mxprobe reads {supported}; run `mxprobe monitor` \
         (or `mxprobe reports ingest`) on it once to migrate it",
        .path.display()
    )]
    NotMigrated {
        path: PathBuf,
        /// Its `user_version`.
        found: i64,
        /// [`super::SCHEMA_VERSION`].
        supported: u32,
    },
    /// A statement failed.
    #[error("{what}: {source}")]
    Sql {
        /// What was being done, naming the domain, run or alert.
        what: String,
        source: rusqlite::Error,
    },
    /// A snapshot or alert could not be written as JSON, or a stored one could not be read.
    #[error("{what}: {source}")]
    Json {
        /// Which snapshot or alert.
        what: String,
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
    TimeOutOfRange { value: OffsetDateTime },
    /// The run was never begun in this history.
    #[error("run {run} is not in the history; begin runs with History::begin_run")]
    NoSuchRun { run: i64 },
    /// The domain already has a snapshot in this run.
    #[error("{domain} is already recorded in run {run}; record each domain once per run")]
    AlreadyRecorded { run: i64, domain: DomainName },
    /// The alert is about another domain than the snapshot it was recorded with.
    #[error(
        "the alert is about {alert} but the snapshot is of {snapshot}; record each alert with \
         the snapshot of its own domain"
    )]
    DomainMismatch {
        snapshot: DomainName,
        alert: DomainName,
    },
    /// The alert has no delivery on this channel.
    #[error(
        "alert {alert} has no delivery on channel {channel:?}; only the channels named when \
         the alert was recorded can be marked"
    )]
    NoSuchDelivery { alert: i64, channel: String },
    /// A failure was reported for a delivery that already succeeded.
    #[error(
        "alert {alert} was already delivered on channel {channel:?}; a failed attempt cannot \
         follow a delivery"
    )]
    AlreadyDelivered { alert: i64, channel: String },
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
pub(super) trait During<T> {
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
