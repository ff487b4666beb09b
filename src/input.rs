//! Scan targets from a CSV file, a list of domains (one a line) or command-line arguments.
//!
//! This module owns turning what a user hands `mxprobe scan` into a stream of [`Target`]s:
//! which column of a CSV file holds the domain, which lines are comments, how an e-mail address
//! or an internationalised name becomes a [`DomainName`], and which rows repeat an earlier one.
//! It opens no files and touches no network: it reads only from the [`Read`] the caller gives
//! it (a file or standard input), and it reads it as a stream.
//!
//! # Input forms
//! - **CSV with a header row**, tokenized by `csv-core`, the `csv` crate's tokenizer (RFC 4180: comma separated, fields
//!   optionally in double quotes, a quote inside a quoted field written twice, quoted fields may
//!   span lines; CRLF or LF line ends). The domain is in the column named `domain`
//!   (case-insensitive, spaces around the name ignored) unless the caller names another column
//!   by header name or by 1-based number ([`Column`]). The first row that is not blank or a
//!   comment is always the header. Values are trimmed: RFC 4180 §2 rule 4 counts spaces as part
//!   of a field, but no domain contains one and hand-edited files put them there.
//!   RFC 4180 §2 rule 5: a field is quoted only when its very first character is a quote, so
//!   in `x, "a.example"` the quotes are text; since no domain or column name contains a quote,
//!   one pair of quotes still around a trimmed value (and no quote inside) is removed. A comma
//!   inside such a late-quoted field still separates fields. A quote inside an unquoted field
//!   is kept as text (the domain check rejects it). Text after a closing quote is joined to
//!   the field (`"a"b.example` reads `ab.example`), as the `csv` crate reads
//!   it. A quoted field that is never closed runs to the end of the input and
//!   makes that one row invalid ([`TargetError::UnterminatedQuote`]).
//! - **One domain per line.** Detection rule: if the caller named no column and the first line
//!   that is neither blank nor a comment contains no comma, the input is a list of domains, one
//!   a line, with no quoting. The one exception is a first line that reads `domain` (or
//!   `"domain"`): that is a one-column CSV file with its header, so it is read as CSV.
//!
//! The input is UTF-8. An input that starts with a UTF-16 byte-order mark (`FF FE` or `FE FF`,
//! a spreadsheet's "Unicode text") is refused as a whole ([`InputError::Utf16`]) rather than
//! read as rows of garbage.
//!
//! In both forms, before any record: a UTF-8 byte-order mark at the very start is ignored,
//! blank lines (spaces, tabs and carriage returns only) are skipped, and a line whose first
//! character after optional spaces or tabs is `#` is a comment and skipped. A `#` line inside a
//! quoted multi-line field is part of the field, not a comment. A CSV row whose fields are all
//! empty (spreadsheet padding such as `,,`) is skipped like a blank line. In a CSV file an
//! indented comment (`  # note`) is tokenized as a row before it is dropped, so a field in it
//! that starts with a quote (`  # a,"b`) opens a quoted field like anywhere else; and a row
//! whose first field is quoted and starts with blanks and `#` (`" #1",a.example`) counts as
//! an indented comment. A `#` in the first column of a line is always a comment.
//!
//! # Values
//! Each value is trimmed; an e-mail address (`user@example.com`, as users paste them) stands for
//! the domain after its last `@` (RFC 5321 §4.1.2: `Mailbox = Local-part "@" Domain`, and a
//! quoted local part may itself contain `@`), and the target records that it came from an
//! address ([`Given::Address`]); then [`DomainName::parse`] removes one trailing dot, converts
//! U-labels to A-labels (`bücher.example` → `xn--bcher-kva.example`) and checks the name.
//! A value that is not a domain becomes [`Target::Invalid`], naming its line and what is wrong;
//! a malformed row never stops the stream.
//!
//! # Line numbers
//! Every target carries the 1-based physical line of the file on which its row starts, counting
//! every line feed, including those inside quoted multi-line fields, blank lines and comments.
//! For command-line arguments ([`from_args`]) the "line" is the 1-based argument position.
//!
//! # Memory
//! Reading holds one row at a time. A row longer than [`MAX_RECORD_BYTES`] is reported as
//! invalid ([`TargetError::TooLong`]) and dropped, and that cap bounds memory: the rest of an
//! over-long list line is skipped without being kept, and a CSV row is tokenized into buffers
//! of that size, its bytes beyond them dropped unseen (a quote that is never closed makes the
//! rest of the file one row: one invalid row, read in constant memory).
//! The one structure that grows with the input is the set used to merge duplicates: one hashed
//! entry per *distinct valid* domain: the A-label string plus its first line number, about the
//! name's length plus 55 bytes with the hash table's overhead, so about 8 MB for 100,000
//! distinct 20-character names and 80 MB for a million. Invalid rows and duplicates add nothing.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fmt;
use std::io::{self, BufRead, BufReader, Chain, Cursor, Read};
use std::str::FromStr;

use csv::ByteRecord;

use mxprobe_core::domain::{DomainError, DomainName};

/// The longest row (all its fields together, in bytes) that is accepted. A longer row becomes
/// [`TargetError::TooLong`] and is dropped; no domain comes near it (RFC 1035 §2.3.4: 255
/// octets), so only a broken file or a wrong format hits it. A list line is cut off at this
/// length while it is read; a CSV row is read whole first (see the module's "Memory" notes).
pub const MAX_RECORD_BYTES: usize = 64 * 1024;

/// How many characters of an invalid value [`Target::Invalid`] keeps in `text`.
const MAX_TEXT_CHARS: usize = 256;

/// The UTF-8 encoding of U+FEFF, which spreadsheet programs put at the start of CSV exports.
const BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];

/// Which CSV column holds the domain (the command line's `--column NAME|N`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Column {
    /// The column whose header is this name (case-insensitive; spaces around it ignored).
    Name(String),
    /// The N-th column, counting from 1.
    Number(usize),
}

impl FromStr for Column {
    type Err = ColumnParseError;

    /// A string of ASCII digits is a column number (from 1); anything else is a header name.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.is_empty() {
            return Err(ColumnParseError::Empty);
        }
        if s.bytes().all(|b| b.is_ascii_digit()) {
            return match s.parse::<usize>() {
                Ok(0) => Err(ColumnParseError::Zero),
                Ok(n) => Ok(Self::Number(n)),
                Err(_) => Err(ColumnParseError::TooLarge {
                    value: s.to_owned(),
                }),
            };
        }
        Ok(Self::Name(s.to_owned()))
    }
}

impl fmt::Display for Column {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Name(name) => write!(f, "{name:?}"),
            Self::Number(n) => write!(f, "{n}"),
        }
    }
}

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

/// How the user wrote a target that became a domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Given {
    /// The value was a domain name.
    Domain,
    /// The value was an e-mail address; the domain is the part after its last `@`.
    Address,
}

/// One row of the input (or one command-line argument), judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A domain to scan, first seen here.
    Domain {
        /// The 1-based physical line where the row starts (or argument position).
        line: usize,
        /// The domain, in canonical A-label form.
        domain: DomainName,
        /// Whether the value was a domain or an e-mail address.
        given: Given,
    },
    /// A row whose value is not a domain; the scan reports it and goes on.
    Invalid {
        /// The 1-based physical line where the row starts (or argument position).
        line: usize,
        /// The value as read, trimmed (at most 256 characters; invalid UTF-8 replaced
        /// by U+FFFD; empty when the row has no domain field).
        text: String,
        /// What is wrong with it.
        error: TargetError,
    },
    /// A domain already seen on an earlier line: counted, not scanned again.
    Duplicate {
        /// The 1-based physical line where this row starts (or argument position).
        line: usize,
        /// The domain, in canonical A-label form.
        domain: DomainName,
        /// The line (or argument position) of the first occurrence.
        first_line: usize,
    },
}

impl Target {
    /// The 1-based physical line where the row starts (or the argument position).
    pub fn line(&self) -> usize {
        match self {
            Self::Domain { line, .. }
            | Self::Invalid { line, .. }
            | Self::Duplicate { line, .. } => *line,
        }
    }

    /// The domain to scan: `Some` only for [`Target::Domain`].
    pub fn domain(&self) -> Option<&DomainName> {
        match self {
            Self::Domain { domain, .. } => Some(domain),
            Self::Invalid { .. } | Self::Duplicate { .. } => None,
        }
    }
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

/// Starts reading targets from `reader`: a CSV file with a header row, or one domain a line
/// (see the module documentation for the rule that tells them apart).
///
/// Reads the input only as far as the header (CSV) or the first domain (a list). Returns an
/// error, before any target, when reading fails there or the header has no usable domain
/// column. An input with no row at all (empty, or only blank lines and comments) yields no
/// targets and no error, even when `column` is given.
pub fn targets<R: Read>(reader: R, column: Option<Column>) -> Result<Targets<R>, InputError> {
    if column == Some(Column::Number(0)) {
        return Err(InputError::ColumnZero);
    }
    let mut src = BufReader::new(reader);
    let sniffed = sniff(&mut src)?;
    let csv = column.is_some()
        || sniffed
            .first_line
            .as_ref()
            .is_some_and(|l| looks_like_csv(l));
    let src = Cursor::new(sniffed.prefix).chain(src);
    if !csv {
        return Ok(Targets {
            rows: Rows::Lines(Lines { src, line: 1 }),
            mode: Mode::Plain,
            seen: Dedupe::default(),
            finished: false,
        });
    }
    let mut rows = CsvRows::new(src);
    let header = rows.next_record().map_err(|source| InputError::Read {
        line: rows.line(),
        source,
    })?;
    let mode = match header {
        None => Mode::Plain,
        Some(header) => Mode::Csv {
            index: find_column(&header, column)?,
        },
    };
    Ok(Targets {
        rows: Rows::Csv(Box::new(rows)),
        mode,
        seen: Dedupe::default(),
        finished: false,
    })
}

/// Turns command-line domain arguments into the same [`Target`]s a file gives: trimmed,
/// addresses and IDNs accepted, invalid ones reported, duplicates merged. The "line" of each
/// target is its 1-based position among `args`. Blank arguments are [`TargetError::Empty`].
pub fn from_args<I>(args: I) -> ArgTargets<I::IntoIter>
where
    I: IntoIterator,
    I::Item: AsRef<str>,
{
    ArgTargets {
        args: args.into_iter(),
        position: 0,
        seen: Dedupe::default(),
    }
}

/// The targets of command-line arguments; see [`from_args`].
#[derive(Debug)]
pub struct ArgTargets<I> {
    args: I,
    position: usize,
    seen: Dedupe,
}

impl<I> Iterator for ArgTargets<I>
where
    I: Iterator,
    I::Item: AsRef<str>,
{
    type Item = Target;

    fn next(&mut self) -> Option<Target> {
        let arg = self.args.next()?;
        self.position += 1;
        Some(self.seen.judge(self.position, arg.as_ref()))
    }
}

/// What [`targets`] reads from: the bytes [`sniff`] looked at, then the rest of the input.
type Source<R> = Chain<Cursor<Vec<u8>>, BufReader<R>>;

/// The stream of targets read from a file or standard input; see [`targets`].
///
/// Each item is a [`Target`] (valid, invalid or duplicate) or, once, an
/// [`InputError::Read`] after which the stream ends.
pub struct Targets<R> {
    rows: Rows<R>,
    mode: Mode,
    seen: Dedupe,
    finished: bool,
}

impl<R: Read> fmt::Debug for Targets<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Targets")
            .field("mode", &self.mode)
            .field("line", &self.rows.line())
            .field("distinct_domains", &self.seen.first.len())
            .finish_non_exhaustive()
    }
}

impl<R> Targets<R> {
    /// Whether the input is read as CSV (`true`) or as one domain a line (`false`). An input
    /// with no row at all has no header and reads as an (empty) list.
    pub fn is_csv(&self) -> bool {
        matches!(self.mode, Mode::Csv { .. })
    }

    /// How many distinct valid domains have been seen so far.
    pub fn distinct_domains(&self) -> usize {
        self.seen.first.len()
    }
}

impl<R: Read> Iterator for Targets<R> {
    type Item = Result<Target, InputError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.finished {
            return None;
        }
        loop {
            let record = match self.rows.next_record() {
                Ok(Some(record)) => record,
                Ok(None) => {
                    self.finished = true;
                    return None;
                }
                Err(source) => {
                    self.finished = true;
                    return Some(Err(InputError::Read {
                        line: self.rows.line(),
                        source,
                    }));
                }
            };
            if record.problem.is_none() && record.is_blank() {
                continue;
            }
            return Some(Ok(self.judge(record)));
        }
    }
}

impl<R> Targets<R> {
    fn judge(&mut self, record: Record) -> Target {
        let line = record.line;
        let index = match self.mode {
            Mode::Plain => 0,
            Mode::Csv { index } => index,
        };
        let field = record.fields.get(index);
        let text = || {
            field
                .map(|f| clip(&String::from_utf8_lossy(f)))
                .unwrap_or_default()
        };
        if let Some(error) = record.problem {
            return Target::Invalid {
                line,
                text: text(),
                error,
            };
        }
        let Some(field) = field else {
            return Target::Invalid {
                line,
                text: String::new(),
                error: TargetError::MissingColumn {
                    column: index + 1,
                    fields: record.fields.len(),
                },
            };
        };
        match std::str::from_utf8(field) {
            Ok(value) if self.is_csv() => self.seen.judge(line, unwrap_quotes(value.trim())),
            Ok(value) => self.seen.judge(line, value),
            Err(_) => Target::Invalid {
                line,
                text: text(),
                error: TargetError::NotUtf8,
            },
        }
    }
}

/// The set that merges duplicates: one entry per distinct valid domain.
#[derive(Debug, Default)]
struct Dedupe {
    first: HashMap<DomainName, usize>,
}

impl Dedupe {
    fn judge(&mut self, line: usize, value: &str) -> Target {
        match parse_value(value) {
            Err(error) => Target::Invalid {
                line,
                text: clip(value.trim()),
                error,
            },
            Ok((domain, given)) => match self.first.entry(domain) {
                Entry::Occupied(seen) => Target::Duplicate {
                    line,
                    domain: seen.key().clone(),
                    first_line: *seen.get(),
                },
                Entry::Vacant(slot) => {
                    let domain = slot.key().clone();
                    slot.insert(line);
                    Target::Domain {
                        line,
                        domain,
                        given,
                    }
                }
            },
        }
    }
}
/// One value (a trimmed field or argument) → a domain, or why not.
fn parse_value(value: &str) -> Result<(DomainName, Given), TargetError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(TargetError::Empty);
    }
    // RFC 5321 §4.1.2: Mailbox = Local-part "@" ( Domain / address-literal ). A quoted
    // local part may contain '@', so the domain is what follows the last one. An
    // address-literal (`[192.0.2.1]`) is refused by `DomainName::parse` as an IP literal.
    if let Some((local, domain)) = value.rsplit_once('@') {
        if local.is_empty() {
            return Err(TargetError::EmptyLocalPart);
        }
        return DomainName::parse(domain)
            .map(|d| (d, Given::Address))
            .map_err(TargetError::AddressDomain);
    }
    DomainName::parse(value)
        .map(|d| (d, Given::Domain))
        .map_err(TargetError::Domain)
}

/// At most [`MAX_TEXT_CHARS`] characters of `s`, trimmed.
fn clip(s: &str) -> String {
    let s = s.trim();
    match s.char_indices().nth(MAX_TEXT_CHARS) {
        Some((end, _)) => format!("{}…", &s[..end]),
        None => s.to_owned(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// One domain a line.
    Plain,
    /// CSV; the domain is in the field with this 0-based index.
    Csv { index: usize },
}

/// The detection rule: a first line with a comma, or a first line that is just a `domain`
/// header, makes the input CSV.
fn looks_like_csv(first: &[u8]) -> bool {
    if first.contains(&b',') {
        return true;
    }
    let text = String::from_utf8_lossy(first);
    let text = text.trim();
    let text = text
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(text);
    text.trim().eq_ignore_ascii_case("domain")
}

/// RFC 4180 §2 rule 5: a field is quoted only when its first character is a quote, so the `csv`
/// crate keeps the quotes of ` "a.example"` (a blank before the quote) as text. No domain or
/// column name contains a quote, so one pair left around a trimmed value, with no quote
/// inside, is removed.
fn unwrap_quotes(value: &str) -> &str {
    value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .filter(|inner| !inner.contains('"'))
        .unwrap_or(value)
}

fn find_column(header: &Record, column: Option<Column>) -> Result<usize, InputError> {
    if let Some(reason) = header.problem.clone() {
        return Err(InputError::BadHeader {
            line: header.line,
            reason,
        });
    }
    let columns: Vec<String> = header
        .fields
        .iter()
        .map(|f| unwrap_quotes(String::from_utf8_lossy(f).trim()).to_owned())
        .collect();
    let wanted = match column {
        Some(Column::Number(0)) => return Err(InputError::ColumnZero),
        Some(Column::Number(n)) if n <= columns.len() => return Ok(n - 1),
        Some(Column::Number(number)) => {
            return Err(InputError::ColumnOutOfRange {
                line: header.line,
                number,
                columns,
            });
        }
        Some(Column::Name(name)) => name.trim().to_owned(),
        None => "domain".to_owned(),
    };
    let numbers: Vec<usize> = columns
        .iter()
        .enumerate()
        .filter(|(_, c)| c.eq_ignore_ascii_case(&wanted))
        .map(|(i, _)| i + 1)
        .collect();
    match numbers.as_slice() {
        [] => Err(InputError::ColumnNotFound {
            line: header.line,
            wanted,
            columns,
        }),
        [n] => Ok(n - 1),
        _ => Err(InputError::AmbiguousColumn {
            line: header.line,
            wanted,
            numbers,
        }),
    }
}

/// What [`sniff`] read: the bytes to replay, and the first significant line.
struct Sniffed {
    /// A line feed for every blank or comment line before the first significant line (so
    /// line numbers stay right without keeping their text), then that line, capped at
    /// [`MAX_RECORD_BYTES`], without the byte-order mark.
    prefix: Vec<u8>,
    /// The first line that is neither blank nor a comment, if there is one (capped).
    first_line: Option<Vec<u8>>,
}

/// Reads up to the end of the first significant line, so the caller can choose between CSV
/// and a list; everything read is given back in `prefix`.
fn sniff<B: BufRead>(src: &mut B) -> Result<Sniffed, InputError> {
    #[derive(Clone, Copy)]
    enum St {
        Bom(usize),
        /// The first byte was the first of a UTF-16 byte-order mark.
        MaybeUtf16(u8),
        LineStart,
        Comment,
        Significant(usize),
    }
    let mut st = St::Bom(0);
    let mut prefix = Vec::new();
    let mut line = 1;
    loop {
        let buf = match src.fill_buf() {
            Ok(buf) => buf,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(source) => return Err(InputError::Read { line, source }),
        };
        if buf.is_empty() {
            let first_line = match st {
                St::Bom(0) | St::LineStart | St::Comment => None,
                St::MaybeUtf16(first) => {
                    prefix.push(first);
                    Some(vec![first])
                }
                St::Bom(n) => {
                    prefix.extend_from_slice(&BOM[..n]);
                    Some(BOM[..n].to_vec())
                }
                St::Significant(start) => Some(prefix[start..].to_vec()),
            };
            return Ok(Sniffed { prefix, first_line });
        }
        let mut used = 0;
        let mut done = None;
        for &b in buf {
            used += 1;
            // UTF-16 starts with FF FE (little-endian) or FE FF (big-endian); a UTF-8 file
            // never does (neither byte occurs in UTF-8).
            if let St::Bom(0) = st
                && matches!(b, 0xFF | 0xFE)
            {
                st = St::MaybeUtf16(b);
                continue;
            }
            if let St::MaybeUtf16(first) = st {
                if (first, b) == (0xFF, 0xFE) || (first, b) == (0xFE, 0xFF) {
                    return Err(InputError::Utf16 {
                        little_endian: first == 0xFF,
                    });
                }
                prefix.push(first);
                st = St::Significant(prefix.len() - 1);
            }
            // A mismatch in the byte-order mark makes its matched bytes the line's start.
            if let St::Bom(n) = st {
                if b == BOM[n] {
                    st = if n + 1 == BOM.len() {
                        St::LineStart
                    } else {
                        St::Bom(n + 1)
                    };
                    continue;
                }
                if n == 0 {
                    st = St::LineStart;
                } else {
                    st = St::Significant(prefix.len());
                    prefix.extend_from_slice(&BOM[..n]);
                }
            }
            st = match st {
                St::Bom(_) | St::MaybeUtf16(_) | St::LineStart => match b {
                    b' ' | b'\t' | b'\r' => St::LineStart,
                    b'\n' => {
                        prefix.push(b'\n');
                        line += 1;
                        St::LineStart
                    }
                    b'#' => St::Comment,
                    _ => {
                        prefix.push(b);
                        St::Significant(prefix.len() - 1)
                    }
                },
                St::Comment => {
                    if b == b'\n' {
                        prefix.push(b'\n');
                        line += 1;
                        St::LineStart
                    } else {
                        St::Comment
                    }
                }
                St::Significant(start) => {
                    prefix.push(b);
                    St::Significant(start)
                }
            };
            if let St::Significant(start) = st
                && (b == b'\n' || prefix.len() - start >= MAX_RECORD_BYTES)
            {
                done = Some(start);
                break;
            }
        }
        src.consume(used);
        if let Some(start) = done {
            let first_line = Some(prefix[start..].to_vec());
            return Ok(Sniffed { prefix, first_line });
        }
    }
}

/// One row as read: its fields' bytes, or what is wrong with it.
#[derive(Debug)]
struct Record {
    /// The 1-based physical line where the row starts.
    line: usize,
    /// The fields' bytes, trimmed of ASCII blanks (one field for a list line).
    fields: ByteRecord,
    /// What is wrong with the row as a whole, if anything.
    problem: Option<TargetError>,
}

impl Record {
    fn is_blank(&self) -> bool {
        self.fields
            .iter()
            .all(|f| String::from_utf8_lossy(f).trim().is_empty())
    }
}

/// Where the rows come from: plain lines, or the CSV tokenizer.
enum Rows<R> {
    Lines(Lines<Source<R>>),
    /// Boxed: the tokenizer's state is large beside a line reader's.
    Csv(Box<CsvRows<Source<R>>>),
}

impl<R: Read> Rows<R> {
    /// The 1-based physical line the reader is at (for read errors).
    fn line(&self) -> usize {
        match self {
            Self::Lines(lines) => lines.line,
            Self::Csv(rows) => rows.line(),
        }
    }

    fn next_record(&mut self) -> io::Result<Option<Record>> {
        match self {
            Self::Lines(lines) => lines.next_record(),
            Self::Csv(rows) => rows.next_record(),
        }
    }
}

/// A list read one line at a time, each line capped at [`MAX_RECORD_BYTES`]. No quoting: a
/// line is a line.
struct Lines<B> {
    src: B,
    /// The 1-based physical line of the next unread byte.
    line: usize,
}

impl<B: BufRead> Lines<B> {
    /// The next line that is not blank or a comment, `None` at the end of the input.
    fn next_record(&mut self) -> io::Result<Option<Record>> {
        loop {
            let line = self.line;
            let mut buf = Vec::new();
            let cap = u64::try_from(MAX_RECORD_BYTES).unwrap_or(u64::MAX);
            if (&mut self.src)
                .take(cap.saturating_add(1))
                .read_until(b'\n', &mut buf)?
                == 0
            {
                return Ok(None);
            }
            let mut problem = None;
            if buf.last() == Some(&b'\n') {
                buf.pop();
                self.line += 1;
            } else if buf.len() > MAX_RECORD_BYTES {
                buf.truncate(MAX_RECORD_BYTES);
                problem = Some(TargetError::TooLong {
                    limit: MAX_RECORD_BYTES,
                });
                if self.skip_line()? {
                    self.line += 1;
                }
            }
            let text = buf.trim_ascii();
            // A comment has no length limit; an over-long line of blanks is still over-long.
            if text.starts_with(b"#") || (text.is_empty() && problem.is_none()) {
                continue;
            }
            let mut fields = ByteRecord::with_capacity(text.len(), 1);
            fields.push_field(text);
            return Ok(Some(Record {
                line,
                fields,
                problem,
            }));
        }
    }

    /// Drops the rest of an over-long line without keeping it; `true` if a line feed ended it.
    fn skip_line(&mut self) -> io::Result<bool> {
        loop {
            let buf = match self.src.fill_buf() {
                Ok(buf) => buf,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if buf.is_empty() {
                return Ok(false);
            }
            if let Some(end) = buf.iter().position(|&b| b == b'\n') {
                self.src.consume(end + 1);
                return Ok(true);
            }
            let used = buf.len();
            self.src.consume(used);
        }
    }
}

/// Appended after the real input for the CSV tokenizer, which reports neither a quoted field
/// left open at the end nor whether the last row ended with a line feed. Outside a quoted
/// field the first line feed ends any last row and the rest reads as the row [`END_ROW`];
/// inside one, the quote closes the field (leaving [`END_IN_QUOTE`] in it).
const END_MARK: &[u8] = b"\n\0\"\n";
/// The row [`END_MARK`] reads as when no quoted field is open.
const END_ROW: &[u8] = b"\0\"";
/// What [`END_MARK`] adds to a quoted field that the input left open.
const END_IN_QUOTE: &[u8] = b"\n\0";

/// A reader that hands out its input, then [`END_MARK`], and remembers where that ends.
struct EndMarked<R> {
    inner: R,
    /// Bytes of the real input handed out so far.
    read: u64,
    /// The byte offset just past [`END_MARK`], once the real input has ended.
    end: Option<u64>,
    /// How much of [`END_MARK`] has been handed out.
    mark_sent: usize,
}

impl<R: Read> Read for EndMarked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.end.is_none() {
            loop {
                match self.inner.read(buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        self.read += n as u64;
                        return Ok(n);
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            self.end = Some(self.read + END_MARK.len() as u64);
        }
        let rest = &END_MARK[self.mark_sent..];
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.mark_sent += n;
        Ok(n)
    }
}

/// CSV rows, tokenized by `csv-core` (the tokenizer under the `csv` crate) into buffers of
/// a fixed size: a row's field bytes beyond [`MAX_RECORD_BYTES`], and its fields beyond
/// [`MAX_RECORD_FIELDS`], are tokenized and dropped, so memory stays flat whatever the row
/// (a quote that is never closed makes the rest of the input one row).
struct CsvRows<R> {
    src: BufReader<EndMarked<R>>,
    core: csv_core::Reader,
    /// The current row's field bytes: [`MAX_RECORD_BYTES`] kept, one more to notice more.
    out: Box<[u8]>,
    /// The current row's field ends (offsets into `out`).
    ends: Box<[usize]>,
    /// Where output beyond the caps goes to be counted and dropped.
    scratch: Box<[u8]>,
    scratch_ends: Box<[usize]>,
    /// Bytes of the input consumed so far (the end mark included).
    consumed: u64,
}

/// The most fields one CSV row may have; the rest of a row with more is dropped and the row
/// is [`TargetError::TooLong`]. Every field takes one byte (its comma), so a row within
/// [`MAX_RECORD_BYTES`] never reaches it.
const MAX_RECORD_FIELDS: usize = MAX_RECORD_BYTES;

/// The size of the chunks the CSV reader reads its input in.
const CSV_READ_BUFFER: usize = 64 * 1024;

impl<R: Read> CsvRows<R> {
    fn new(src: R) -> Self {
        let core = csv_core::ReaderBuilder::new()
            // Only a line feed ends a row; a carriage return before it is trimmed as a blank,
            // so CRLF and LF files read alike and every line feed counts one line.
            .terminator(csv_core::Terminator::Any(b'\n'))
            // A line starting with `#` is skipped whole; an indented one is dropped below.
            .comment(Some(b'#'))
            .build();
        Self {
            src: BufReader::with_capacity(
                CSV_READ_BUFFER,
                EndMarked {
                    inner: src,
                    read: 0,
                    end: None,
                    mark_sent: 0,
                },
            ),
            core,
            out: vec![0; MAX_RECORD_BYTES + 1].into_boxed_slice(),
            ends: vec![0; MAX_RECORD_FIELDS + 1].into_boxed_slice(),
            scratch: vec![0; 8 * 1024].into_boxed_slice(),
            scratch_ends: vec![0; 1024].into_boxed_slice(),
            consumed: 0,
        }
    }

    /// Tokenizes the next row: its fields (cut at the caps) and line feeds inside them,
    /// `None` at the end of the input. Rows may have any number of fields; the header is
    /// found by the caller.
    fn read_row(&mut self) -> io::Result<Option<(ByteRecord, usize, bool)>> {
        use csv_core::ReadRecordResult as R;
        let (mut outlen, mut endlen) = (0usize, 0usize);
        // Once a buffer is full, the rest of the row is tokenized into scratch space.
        let (mut out_full, mut ends_full) = (false, false);
        let mut newlines = 0usize;
        loop {
            let input = loop {
                match self.src.fill_buf() {
                    Ok(input) => break input,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            };
            let out: &mut [u8] = if out_full {
                &mut self.scratch
            } else {
                &mut self.out[outlen..]
            };
            let ends: &mut [usize] = if ends_full {
                &mut self.scratch_ends
            } else {
                &mut self.ends[endlen..]
            };
            let (result, nin, nout, nend) = self.core.read_record(input, out, ends);
            newlines += out[..nout].iter().filter(|&&b| b == b'\n').count();
            self.src.consume(nin);
            self.consumed += nin as u64;
            if !out_full {
                outlen += nout;
            }
            if !ends_full {
                endlen += nend;
            }
            match result {
                R::InputEmpty => {}
                R::OutputFull => out_full = true,
                R::OutputEndsFull => ends_full = true,
                R::Record => {
                    let mut fields = ByteRecord::with_capacity(outlen, endlen);
                    let mut start = 0;
                    for &end in &self.ends[..endlen] {
                        let end = end.min(outlen);
                        fields.push_field(&self.out[start.min(end)..end]);
                        start = end;
                    }
                    let cut = out_full || ends_full || outlen > MAX_RECORD_BYTES;
                    return Ok(Some((fields, newlines, cut)));
                }
                R::End => return Ok(None),
            }
        }
    }

    /// The next row that is not a comment, `None` at the end of the input.
    fn next_record(&mut self) -> io::Result<Option<Record>> {
        loop {
            let Some((mut fields, inside, cut)) = self.read_row()? else {
                return Ok(None);
            };
            // Every row ends with a line feed (END_MARK supplies one for the last row), and a
            // line feed inside a row can only be inside a quoted field, where the tokenizer
            // keeps it; so the row started that many lines, plus its own end, before the
            // current line. (Blank lines and comments before the row were consumed with it.)
            let line = usize::try_from(self.core.line())
                .unwrap_or(usize::MAX)
                .saturating_sub(inside + 1)
                .max(1);
            let mut problem = None;
            if self.src.get_ref().end == Some(self.consumed) {
                if fields.len() == 1 && &fields[0] == END_ROW {
                    return Ok(None);
                }
                // RFC 4180 §2 rules 5–7: only a quoted field that the input never closed runs
                // on into END_MARK.
                problem = Some(TargetError::UnterminatedQuote);
                fields = without_end_mark(&fields);
            } else if is_indented_comment(&fields) {
                continue;
            }
            if cut || fields.as_slice().len() > MAX_RECORD_BYTES {
                problem.get_or_insert(TargetError::TooLong {
                    limit: MAX_RECORD_BYTES,
                });
            }
            fields.trim();
            return Ok(Some(Record {
                line,
                fields,
                problem,
            }));
        }
    }

    /// The 1-based physical line the reader is at.
    fn line(&self) -> usize {
        usize::try_from(self.core.line()).unwrap_or(usize::MAX)
    }
}

/// A row whose first field, untrimmed, is spaces or tabs and then `#`: an indented comment.
/// (A `#` first on the line is skipped by the crate itself.)
fn is_indented_comment(fields: &ByteRecord) -> bool {
    fields.get(0).is_some_and(|first| {
        let rest = first.trim_ascii_start();
        rest.len() < first.len() && rest.starts_with(b"#")
    })
}

/// The fields of a row that ran into [`END_MARK`], with the mark's bytes taken off its last field.
fn without_end_mark(fields: &ByteRecord) -> ByteRecord {
    let last = fields.len().saturating_sub(1);
    fields
        .iter()
        .enumerate()
        .map(|(i, f)| match f.strip_suffix(END_IN_QUOTE) {
            Some(real) if i == last => real,
            _ => f,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(input: &str, column: Option<Column>) -> Vec<Target> {
        targets(input.as_bytes(), column)
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    fn dom(line: usize, name: &str) -> Target {
        Target::Domain {
            line,
            domain: DomainName::parse(name).unwrap(),
            given: Given::Domain,
        }
    }

    fn addr(line: usize, name: &str) -> Target {
        Target::Domain {
            line,
            domain: DomainName::parse(name).unwrap(),
            given: Given::Address,
        }
    }

    fn dup(line: usize, name: &str, first_line: usize) -> Target {
        Target::Duplicate {
            line,
            domain: DomainName::parse(name).unwrap(),
            first_line,
        }
    }

    fn bad(line: usize, text: &str, error: TargetError) -> Target {
        Target::Invalid {
            line,
            text: text.to_owned(),
            error,
        }
    }

    fn name(s: &str) -> Option<Column> {
        Some(Column::Name(s.to_owned()))
    }

    #[test]
    fn valid_inputs() {
        let cases: &[(&str, &str, Option<Column>, Vec<Target>)] = &[
            (
                "list",
                "a.example\nb.example\n",
                None,
                vec![dom(1, "a.example"), dom(2, "b.example")],
            ),
            (
                "list without final newline",
                "a.example\nb.example",
                None,
                vec![dom(1, "a.example"), dom(2, "b.example")],
            ),
            (
                "list CRLF",
                "a.example\r\nb.example\r\n",
                None,
                vec![dom(1, "a.example"), dom(2, "b.example")],
            ),
            (
                "list BOM",
                "\u{feff}a.example\nb.example",
                None,
                vec![dom(1, "a.example"), dom(2, "b.example")],
            ),
            (
                "list comments and blanks",
                "# top\n\n  \t\n a.example \n   # indented\n\r\nb.example.\n",
                None,
                vec![dom(4, "a.example"), dom(7, "b.example")],
            ),
            (
                "list BOM then comment",
                "\u{feff}# c\na.example",
                None,
                vec![dom(2, "a.example")],
            ),
            (
                "one-column csv",
                "domain\na.example\n",
                None,
                vec![dom(2, "a.example")],
            ),
            (
                "one-column csv quoted header",
                "\"Domain\"\n\"a.example\"\n",
                None,
                vec![dom(2, "a.example")],
            ),
            (
                "header Domain",
                "Domain,n\na.example,1\n",
                None,
                vec![dom(2, "a.example")],
            ),
            (
                "header spaced",
                "id, domain ,x\n1,a.example,2\n",
                None,
                vec![dom(2, "a.example")],
            ),
            (
                "by name",
                "host,site\na.example,b.example\n",
                name("SITE"),
                vec![dom(2, "b.example")],
            ),
            (
                "by name spaced",
                "host, my site \na.example,b.example\n",
                name(" my site"),
                vec![dom(2, "b.example")],
            ),
            (
                "by number",
                "host,site\na.example,b.example\n",
                Some(Column::Number(1)),
                vec![dom(2, "a.example")],
            ),
            (
                "named column, one-column file",
                "host\na.example\n",
                name("host"),
                vec![dom(2, "a.example")],
            ),
            (
                "quoted with commas",
                "note,domain\n\"x, y\",a.example\n\"q \"\"z\"\"\", \"b.example\" \n",
                None,
                vec![dom(2, "a.example"), dom(3, "b.example")],
            ),
            (
                "CRLF csv",
                "domain,n\r\na.example,1\r\nb.example,2\r\n",
                None,
                vec![dom(2, "a.example"), dom(3, "b.example")],
            ),
            (
                "BOM csv",
                "\u{feff}domain,n\na.example,1\n",
                None,
                vec![dom(2, "a.example")],
            ),
            (
                "BOM csv CRLF",
                "\u{feff}domain\r\n\r\na.example\r\n",
                None,
                vec![dom(3, "a.example")],
            ),
            (
                "csv comments",
                "# exported\ndomain,n\n# skip, this\n  #also\n\na.example,1\n",
                None,
                vec![dom(6, "a.example")],
            ),
            (
                "multi-line quoted field",
                "note,domain\n\"l1\nl2\n# not a comment\",a.example\nc.example,b.example.\n",
                name("domain"),
                vec![dom(2, "a.example"), dom(5, "b.example")],
            ),
            (
                "blank rows skipped",
                "domain,n\n,,\n a.example ,\n",
                None,
                vec![dom(3, "a.example")],
            ),
            (
                "IDN",
                "bücher.example\nBÜCHER.example.\n",
                None,
                vec![
                    dom(1, "xn--bcher-kva.example"),
                    dup(2, "xn--bcher-kva.example", 1),
                ],
            ),
            (
                "addresses",
                "user@a.example\n\"q@x\"@b.example\nb.example\n",
                None,
                vec![
                    addr(1, "a.example"),
                    addr(2, "b.example"),
                    dup(3, "b.example", 2),
                ],
            ),
            (
                "duplicates",
                "a.example\nA.EXAMPLE.\nx@a.example\n",
                None,
                vec![
                    dom(1, "a.example"),
                    dup(2, "a.example", 1),
                    dup(3, "a.example", 1),
                ],
            ),
            ("empty", "", None, vec![]),
            ("only comments", "# a\n\n#b", None, vec![]),
            ("only BOM", "\u{feff}", name("x"), vec![]),
            ("header only", "domain,x\n", None, vec![]),
        ];
        for (what, input, column, want) in cases {
            assert_eq!(&read(input, column.clone()), want, "{what}");
        }
    }

    #[test]
    fn multi_line_fields_keep_physical_lines() {
        let input =
            "note,domain\n\"l1\nl2\n# not a comment\",a.example\nb_c.example,\n\"x\ny\",bad_name\n";
        let got = read(input, None);
        assert_eq!(
            got,
            vec![
                dom(2, "a.example"),
                bad(5, "", TargetError::Empty),
                bad(
                    6,
                    "bad_name",
                    TargetError::Domain(DomainName::parse("bad_name").unwrap_err())
                ),
            ]
        );
    }

    #[test]
    fn invalid_rows() {
        let long = format!("{}.example", "a".repeat(64));
        let cases: Vec<(&str, String, Vec<Target>)> = vec![
            (
                "bad char with line number",
                "a.example\n\nb_c.example\n".to_owned(),
                vec![
                    dom(1, "a.example"),
                    bad(
                        3,
                        "b_c.example",
                        TargetError::Domain(DomainName::parse("b_c.example").unwrap_err()),
                    ),
                ],
            ),
            (
                "label too long",
                long.clone(),
                vec![bad(
                    1,
                    &long,
                    TargetError::Domain(DomainName::parse(&long).unwrap_err()),
                )],
            ),
            (
                "ip literal",
                "192.0.2.1\n".to_owned(),
                vec![bad(
                    1,
                    "192.0.2.1",
                    TargetError::Domain(DomainName::parse("192.0.2.1").unwrap_err()),
                )],
            ),
            (
                "address without local part",
                "@a.example\n".to_owned(),
                vec![bad(1, "@a.example", TargetError::EmptyLocalPart)],
            ),
            (
                "address with bad domain",
                "u@[192.0.2.1]\nu@\n".to_owned(),
                vec![
                    bad(
                        1,
                        "u@[192.0.2.1]",
                        TargetError::AddressDomain(DomainName::parse("[192.0.2.1]").unwrap_err()),
                    ),
                    bad(2, "u@", TargetError::AddressDomain(DomainError::Empty)),
                ],
            ),
            (
                "empty domain field",
                "domain,n\n,1\n".to_owned(),
                vec![bad(2, "", TargetError::Empty)],
            ),
            (
                "missing column",
                "n,domain\n1\n".to_owned(),
                vec![bad(
                    2,
                    "",
                    TargetError::MissingColumn {
                        column: 2,
                        fields: 1,
                    },
                )],
            ),
            (
                "unterminated quote swallows the rest",
                "domain\na.example\n\"b.example\nc.example\n".to_owned(),
                vec![
                    dom(2, "a.example"),
                    bad(3, "b.example\nc.example", TargetError::UnterminatedQuote),
                ],
            ),
            (
                // The `csv` crate joins text after a closing quote to the field (RFC 4180 §2
                // rule 7 has no such form; the crate reads it leniently).
                "text after quote",
                "n,domain\n1,\"a\"b.example\n2,c.example\n".to_owned(),
                vec![dom(2, "ab.example"), dom(3, "c.example")],
            ),
            (
                "quote inside unquoted field",
                "domain\na\"b.example\n".to_owned(),
                vec![bad(
                    2,
                    "a\"b.example",
                    TargetError::Domain(DomainName::parse("a\"b.example").unwrap_err()),
                )],
            ),
            (
                "comma in a list line makes it csv only on the first line",
                "a.example\nb.example,c\n".to_owned(),
                vec![
                    dom(1, "a.example"),
                    bad(
                        2,
                        "b.example,c",
                        TargetError::Domain(DomainName::parse("b.example,c").unwrap_err()),
                    ),
                ],
            ),
        ];
        for (what, input, want) in cases {
            assert_eq!(read(&input, None), want, "{what}");
        }
        let bytes = b"domain\n\xff\xfe.example\n".to_vec();
        let got: Vec<Target> = targets(&bytes[..], None)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(
            got,
            vec![bad(2, "\u{fffd}\u{fffd}.example", TargetError::NotUtf8)]
        );
    }

    /// How the `csv` crate's reading shows through, pinned: quotes that are not first in a
    /// field, the end of the input, and comments.
    #[test]
    fn csv_corners() {
        let domain_error = |v: &str| TargetError::Domain(DomainName::parse(v).unwrap_err());
        let cases: Vec<(&str, &str, Vec<Target>)> = vec![
            (
                "blank before the quote: one pair unwrapped, header too",
                "id, \"Domain\"\n1, \"a.example\" \n",
                vec![dom(2, "a.example")],
            ),
            (
                "blank before the quote: a comma inside still separates",
                "id,note,domain\n1, \"x, y\",a.example\n",
                vec![bad(2, "y\"", domain_error("y\""))],
            ),
            (
                "last row without a line feed keeps its line",
                "domain\n\n\na.example",
                vec![dom(4, "a.example")],
            ),
            (
                "quote left open at the very end",
                "domain\nb.example\n\"a.example",
                vec![
                    dom(2, "b.example"),
                    bad(3, "a.example", TargetError::UnterminatedQuote),
                ],
            ),
            (
                "quote left open after an escaped quote",
                "domain\n\"a\"\"\n",
                vec![bad(2, "a\"", TargetError::UnterminatedQuote)],
            ),
            (
                "closed quote at the very end",
                "domain\n\"a.example\"",
                vec![dom(2, "a.example")],
            ),
            (
                "rows that look like the end mark are data",
                "domain\n\0\"\n\0\"",
                vec![
                    bad(2, "\0\"", domain_error("\0\"")),
                    bad(3, "\0\"", domain_error("\0\"")),
                ],
            ),
            (
                "comment in column 1 may hold quotes",
                "domain\n# a,\"b\nc.example\n",
                vec![dom(3, "c.example")],
            ),
            (
                "indented comment is a row: a quote in it opens a field",
                "domain\n  # a,\"b\nc.example\n",
                vec![bad(2, "# a", TargetError::UnterminatedQuote)],
            ),
            (
                "quoted first field: '#' first is data, blanks then '#' a comment",
                "note,domain\n\"#1\",a.example\n\" #2\",b.example\n",
                vec![dom(2, "a.example")],
            ),
            (
                "carriage return alone does not end a row",
                "n,domain\r\n1,a.example\r2,b.example\r\n",
                vec![bad(2, "a.example\r2", domain_error("a.example\r2"))],
            ),
        ];
        for (what, input, want) in cases {
            assert_eq!(read(input, None), want, "{what}");
        }
    }

    #[test]
    fn overlong_rows_are_skipped_not_stored() {
        let huge = "x".repeat(MAX_RECORD_BYTES * 3);
        for input in [
            format!("a.example\n{huge}\nb.example\n"),
            format!("{huge}\nb.example\n"),
            format!("domain,n\n\"{huge}\",1\nb.example,2\n"),
        ] {
            let got = read(&input, None);
            assert_eq!(
                got.len(),
                if input.starts_with('a') { 3 } else { 2 },
                "{}",
                &input[..20]
            );
            let invalid = got
                .iter()
                .find(|t| matches!(t, Target::Invalid { .. }))
                .unwrap();
            match invalid {
                Target::Invalid { error, text, .. } => {
                    assert_eq!(
                        error,
                        &TargetError::TooLong {
                            limit: MAX_RECORD_BYTES
                        }
                    );
                    assert!(text.chars().count() <= MAX_TEXT_CHARS + 1);
                }
                other => panic!("{other:?}"),
            }
            assert_eq!(got.last().unwrap().domain().unwrap().as_str(), "b.example");
        }
    }

    #[test]
    fn header_errors() {
        type Check = fn(&InputError) -> bool;
        let cases: &[(&str, Option<Column>, Check, &str)] = &[
            (
                "email,name\nu@a.example,U\n",
                None,
                |e| matches!(e, InputError::ColumnNotFound { line: 1, wanted, columns } if wanted == "domain" && columns == &["email", "name"]),
                "the header on line 1 has no column named \"domain\" (columns found: \"email\", \"name\"); name the domain column with --column NAME|N",
            ),
            (
                "# c\nhost\na.example\n",
                name("site"),
                |e| matches!(e, InputError::ColumnNotFound { line: 2, wanted, columns } if wanted == "site" && columns == &["host"]),
                "the header on line 2 has no column named \"site\" (columns found: \"host\"); name the domain column with --column NAME|N",
            ),
            (
                "a,b\n",
                Some(Column::Number(3)),
                |e| matches!(e, InputError::ColumnOutOfRange { number: 3, .. }),
                "--column 3 is past the end of the header on line 1, which has 2 column(s): \"a\", \"b\"",
            ),
            (
                "a,b\n",
                Some(Column::Number(0)),
                |e| matches!(e, InputError::ColumnZero),
                "column numbers start at 1; --column 0 names no column",
            ),
            (
                "Domain,x,DOMAIN\n",
                None,
                |e| matches!(e, InputError::AmbiguousColumn { numbers, .. } if numbers == &[1, 3]),
                "the header on line 1 has several columns named \"domain\" (columns 1, 3); name one with --column N",
            ),
            (
                "\"domain,x\n",
                None,
                |e| {
                    matches!(
                        e,
                        InputError::BadHeader {
                            line: 1,
                            reason: TargetError::UnterminatedQuote
                        }
                    )
                },
                "the header on line 1 is not a valid CSV row: a quoted field opened in this row is never closed (a '\"' inside a quoted field is written twice)",
            ),
            (
                "example.com,foo\n",
                None,
                |e| matches!(e, InputError::ColumnNotFound { .. }),
                "the header on line 1 has no column named \"domain\" (columns found: \"example.com\", \"foo\"); name the domain column with --column NAME|N",
            ),
        ];
        for (input, column, check, message) in cases {
            let err = targets(input.as_bytes(), column.clone()).unwrap_err();
            assert!(check(&err), "{input:?}: {err:?}");
            assert_eq!(err.to_string(), *message, "{input:?}");
        }
    }

    #[test]
    fn detection() {
        let cases: &[(&str, Option<Column>, bool)] = &[
            ("a.example\n", None, false),
            ("# x,y\n\na.example\n", None, false),
            ("domain\n", None, true),
            (" DOMAIN \n", None, true),
            ("\"domain\"\n", None, true),
            ("domains\n", None, false),
            ("a,domain\n", None, true),
            ("host\n", name("host"), true),
            ("", None, false),
        ];
        for (input, column, csv) in cases {
            let t = targets(input.as_bytes(), column.clone()).unwrap();
            // An empty CSV has no header, so it reads as an (empty) list.
            let want = *csv && !input.is_empty();
            assert_eq!(t.is_csv(), want, "{input:?}");
        }
    }

    #[test]
    fn column_from_str() {
        let cases: &[(&str, Result<Column, ColumnParseError>)] = &[
            ("domain", Ok(Column::Name("domain".into()))),
            (" Site ", Ok(Column::Name("Site".into()))),
            ("2", Ok(Column::Number(2))),
            ("0", Err(ColumnParseError::Zero)),
            ("", Err(ColumnParseError::Empty)),
            ("2a", Ok(Column::Name("2a".into()))),
            (
                "99999999999999999999999",
                Err(ColumnParseError::TooLarge {
                    value: "99999999999999999999999".into(),
                }),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(&input.parse::<Column>(), want, "{input:?}");
        }
    }

    #[test]
    fn arguments() {
        let got: Vec<Target> =
            from_args(["a.example", " bücher.example. ", "u@a.example", "", "b_c"]).collect();
        assert_eq!(
            got,
            vec![
                dom(1, "a.example"),
                dom(2, "xn--bcher-kva.example"),
                dup(3, "a.example", 1),
                bad(4, "", TargetError::Empty),
                bad(
                    5,
                    "b_c",
                    TargetError::Domain(DomainName::parse("b_c").unwrap_err())
                ),
            ]
        );
    }

    /// A reader that hands out one byte per call, then fails.
    struct Trickle {
        data: Vec<u8>,
        pos: usize,
        fail: bool,
    }

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.pos == self.data.len() {
                return if self.fail {
                    Err(io::Error::other("disk on fire"))
                } else {
                    Ok(0)
                };
            }
            if buf.is_empty() {
                return Ok(0);
            }
            buf[0] = self.data[self.pos];
            self.pos += 1;
            Ok(1)
        }
    }

    /// Hands out `chunk` bytes of `inner` per read (one at a time from a [`Trickle`]).
    struct Chunked<R> {
        inner: R,
        chunk: usize,
    }

    impl<R: Read> Read for Chunked<R> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let mut n = 0;
            let want = buf.len().min(self.chunk);
            while n < want {
                match self.inner.read(&mut buf[n..want])? {
                    0 => break,
                    k => n += k,
                }
            }
            Ok(n)
        }
    }

    #[test]
    fn one_byte_reads_and_read_errors() {
        let input = "\u{feff}# c\nnote,domain\n\"a\nb\",a.example\n";
        let got: Vec<Target> = targets(
            Trickle {
                data: input.as_bytes().to_vec(),
                pos: 0,
                fail: false,
            },
            None,
        )
        .unwrap()
        .map(Result::unwrap)
        .collect();
        assert_eq!(got, vec![dom(3, "a.example")]);

        // A partial BOM is text, not a mark.
        let got: Vec<Target> = targets(
            Trickle {
                data: vec![0xEF, 0xBB, b'a', b'\n', b'b', b'.', b'x', b'\n'],
                pos: 0,
                fail: false,
            },
            None,
        )
        .unwrap()
        .map(Result::unwrap)
        .collect();
        assert!(
            matches!(
                &got[0],
                Target::Invalid {
                    line: 1,
                    error: TargetError::NotUtf8,
                    ..
                }
            ),
            "{got:?}"
        );
        assert_eq!(got[1], dom(2, "b.x"));

        let mut t = targets(
            Trickle {
                data: b"a.example\nb.example\nc.ex".to_vec(),
                pos: 0,
                fail: true,
            },
            None,
        )
        .unwrap();
        assert_eq!(t.next().unwrap().unwrap(), dom(1, "a.example"));
        assert_eq!(t.next().unwrap().unwrap(), dom(2, "b.example"));
        let err = t.next().unwrap().unwrap_err();
        assert!(matches!(err, InputError::Read { line: 3, .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            "could not read the input at line 3: disk on fire"
        );
        assert!(t.next().is_none());

        let err = targets(
            Trickle {
                data: b"# only\n".to_vec(),
                pos: 0,
                fail: true,
            },
            None,
        )
        .unwrap_err();
        assert!(matches!(err, InputError::Read { line: 2, .. }), "{err:?}");
    }

    #[test]
    fn utf16_is_refused_by_its_byte_order_mark() {
        for (bytes, little_endian) in [
            (&b"\xff\xfed\0o\0m\0a\0i\0n\0\n\0"[..], true),
            (&b"\xfe\xff\0a\0.\0x\0\n"[..], false),
        ] {
            let err = targets(bytes, None).unwrap_err();
            assert!(
                matches!(err, InputError::Utf16 { little_endian: le } if le == little_endian),
                "{err:?}"
            );
            assert!(err.to_string().contains("UTF-16"), "{err}");
        }
        // One of the two bytes alone, or in the other order, is not a mark: an invalid row.
        for bytes in [&b"\xffa.example\nb.example\n"[..], b"\xfe", b"\xff\xff\n"] {
            let got: Vec<Target> = targets(bytes, None).unwrap().map(Result::unwrap).collect();
            assert!(
                matches!(&got[0], Target::Invalid { line: 1, .. }),
                "{bytes:?}: {got:?}"
            );
        }
    }

    #[test]
    fn clip_keeps_short_text() {
        assert_eq!(clip("  abc "), "abc");
        let long = "é".repeat(MAX_TEXT_CHARS + 5);
        let clipped = clip(&long);
        assert_eq!(clipped.chars().count(), MAX_TEXT_CHARS + 1);
        assert!(clipped.ends_with('…'));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(384))]

        /// Arbitrary bytes never panic, and line numbers never go backwards or past the end.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..400), col in 0usize..4) {
            let column = if col == 0 { None } else { Some(Column::Number(col)) };
            let lines = bytes.iter().filter(|&&b| b == b'\n').count() + 1;
            if let Ok(t) = targets(&bytes[..], column) {
                let mut last = 0;
                for item in t {
                    let line = item.unwrap().line();
                    proptest::prop_assert!(line >= last && line <= lines);
                    last = line;
                }
            }
        }

        /// Inputs built from the format's own alphabet never panic, and every row is accounted for.
        #[test]
        fn grammar_alphabet_never_panics(input in "[a-cü.,\"# @\r\n\t-]{0,200}", named in proptest::bool::ANY) {
            let column = named.then(|| Column::Name("a".into()));
            if let Ok(t) = targets(input.as_bytes(), column) {
                let mut last = 0;
                for item in t {
                    let line = item.unwrap().line();
                    proptest::prop_assert!(line >= last);
                    last = line;
                }
            }
        }

        /// CSV written by the `csv` crate's writer reads back: each row's domain in order, on
        /// the physical line where the row starts (quoted notes may hold commas, quotes and
        /// line feeds), whatever the size of the reads.
        #[test]
        fn csv_round_trips_with_physical_lines(
            rows in proptest::collection::vec(
                ("n[a-z0-9,\" \n]{0,20}", "[a-z][a-z0-9]{0,8}\\.[a-z]{2,4}"),
                1..20,
            ),
            chunk in 1usize..64,
        ) {
            let mut w = csv::Writer::from_writer(Vec::new());
            w.write_record(["note", "domain"]).unwrap();
            let mut want = Vec::new();
            let mut line = 2;
            for (note, domain) in &rows {
                w.write_record([note.as_str(), domain.as_str()]).unwrap();
                want.push((line, domain.clone()));
                line += 1 + note.matches('\n').count();
            }
            let bytes = w.into_inner().unwrap();
            let reader = Trickle { data: bytes, pos: 0, fail: false };
            let got: Vec<(usize, String)> = targets(Chunked { inner: reader, chunk }, None)
                .unwrap()
                .map(Result::unwrap)
                .map(|t| match t {
                    Target::Domain { line, domain, .. } | Target::Duplicate { line, domain, .. } => {
                        (line, domain.as_str().to_owned())
                    }
                    Target::Invalid { .. } => (0, format!("{t:?}")),
                })
                .collect();
            proptest::prop_assert_eq!(got, want);
        }

        /// A list of generated names round-trips: every line yields its own domain or a duplicate.
        #[test]
        fn lists_round_trip(names in proptest::collection::vec("[a-z][a-z0-9]{0,8}\\.[a-z]{2,4}", 1..30)) {
            let input = names.join("\n");
            let got: Vec<Target> = targets(input.as_bytes(), None).unwrap().map(Result::unwrap).collect();
            proptest::prop_assert_eq!(got.len(), names.len());
            for (i, (t, n)) in got.iter().zip(&names).enumerate() {
                proptest::prop_assert_eq!(t.line(), i + 1);
                match t {
                    Target::Domain { domain, .. } | Target::Duplicate { domain, .. } => {
                        proptest::prop_assert_eq!(domain.as_str(), n.as_str());
                    }
                    Target::Invalid { .. } => proptest::prop_assert!(false, "{t:?}"),
                }
            }
        }
    }
}
