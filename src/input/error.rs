//! What can be wrong with one row, and with the input as a whole.

use std::io;

use mxprobe_core::domain::DomainError;

#[cfg(doc)]
use super::MAX_RECORD_BYTES;

/// Why a `--column` value names no column.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ColumnParseError {
    /// The value was empty.
    #[error("--column needs a header name or a column number (from 1)")]
    Empty,
    /// The value was `0`.
    #[error("column numbers start at 1; --column 0 names no column")]
    Zero,
    /// A number too large to be a column.
    #[error("--column {value} is not a usable column number")]
    TooLarge {
        /// The value as given.
        value: String,
    },
}

/// Why one row or argument is not a target. The row is reported and the stream goes on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TargetError {
    /// The domain field was empty (other fields of the row were not).
    #[error("no domain given: the domain field is empty")]
    Empty,
    /// The value is not a usable domain name.
    #[error("not a domain name: {0}")]
    Domain(DomainError),
    /// The value is an e-mail address whose part after `@` is not a usable domain name.
    #[error("the part of the e-mail address after '@' is not a domain name: {0}")]
    AddressDomain(DomainError),
    /// The value starts with `@`: an address needs a local part (RFC 5321 §4.1.2).
    #[error("an e-mail address needs a local part before '@'")]
    EmptyLocalPart,
    /// The row ends before the domain column.
    #[error("the row has {fields} field(s); the domain is in column {column}")]
    MissingColumn {
        /// The 1-based domain column.
        column: usize,
        /// How many fields the row has.
        fields: usize,
    },
    /// The domain field is not valid UTF-8.
    #[error("the domain field is not valid UTF-8 text")]
    NotUtf8,
    /// The row is longer than [`MAX_RECORD_BYTES`]; it was dropped.
    #[error("the row is longer than {limit} bytes; no domain is that long")]
    TooLong {
        /// The limit in bytes.
        limit: usize,
    },
    /// RFC 4180 §2 rule 5–7: a quoted field opened in this row is never closed, so the rest
    /// of the input was read as part of it.
    #[error(
        "a quoted field opened in this row is never closed (a '\"' inside a quoted field is written twice)"
    )]
    UnterminatedQuote,
}

/// Why the input as a whole cannot be read. Returned before any target (header problems) or
/// as the last item of the stream (read failures).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InputError {
    /// Reading failed; the stream ends here.
    #[error("could not read the input at line {line}: {source}")]
    Read {
        /// The 1-based physical line being read.
        line: usize,
        /// The I/O error.
        source: io::Error,
    },
    /// The header has no column with the wanted name.
    #[error(
        "the header on line {line} has no column named {wanted:?} (columns found: {}); name the domain column with --column NAME|N",
        list_columns(.columns)
    )]
    ColumnNotFound {
        /// The 1-based line of the header.
        line: usize,
        /// The column name looked for (`domain` unless the caller named one).
        wanted: String,
        /// The header's column names, trimmed.
        columns: Vec<String>,
    },
    /// Several columns of the header have the wanted name.
    #[error(
        "the header on line {line} has several columns named {wanted:?} (columns {}); name one with --column N",
        list_numbers(.numbers)
    )]
    AmbiguousColumn {
        /// The 1-based line of the header.
        line: usize,
        /// The column name looked for.
        wanted: String,
        /// The 1-based numbers of the matching columns.
        numbers: Vec<usize>,
    },
    /// The column number is past the header's last column.
    #[error(
        "--column {number} is past the end of the header on line {line}, which has {} column(s): {}",
        .columns.len(),
        list_columns(.columns)
    )]
    ColumnOutOfRange {
        /// The 1-based line of the header.
        line: usize,
        /// The column number asked for.
        number: usize,
        /// The header's column names, trimmed.
        columns: Vec<String>,
    },
    /// The column number was 0.
    #[error("column numbers start at 1; --column 0 names no column")]
    ColumnZero,
    /// The input starts with a UTF-16 byte-order mark: it is UTF-16 text (a spreadsheet's
    /// "Unicode text" export), which is not read; every row would be garbage.
    #[error(
        "the input is UTF-16 text (it starts with the byte-order mark {}); mxprobe reads UTF-8: \
         save it as UTF-8 (\"CSV UTF-8\" in a spreadsheet) or convert it with \
         `iconv -f UTF-16 -t UTF-8`",
        if *.little_endian { "FF FE" } else { "FE FF" }
    )]
    Utf16 {
        /// Whether the mark is little-endian (`FF FE`) rather than big-endian (`FE FF`).
        little_endian: bool,
    },
    /// The header row itself is malformed.
    #[error("the header on line {line} is not a valid CSV row: {reason}")]
    BadHeader {
        /// The 1-based line of the header.
        line: usize,
        /// What is wrong with it.
        reason: TargetError,
    },
}

fn list_columns(columns: &[String]) -> String {
    if columns.is_empty() {
        return "none".to_owned();
    }
    columns
        .iter()
        .map(|c| format!("{c:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn list_numbers(numbers: &[usize]) -> String {
    numbers
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
