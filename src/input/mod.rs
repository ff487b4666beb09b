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
//!
//! The stream of targets is in `stream`; the rows it judges come from `rows` (the first line
//! looked at, list lines) or `csv_rows` (the tokenizer and the header); `error` says what can be
//! wrong with a row or the input.

use std::fmt;
use std::str::FromStr;

use mxprobe_core::domain::DomainName;

mod csv_rows;
mod error;
mod rows;
mod stream;

pub use error::{ColumnParseError, InputError, TargetError};
pub use stream::{ArgTargets, Targets, from_args, targets};

/// The longest row (all its fields together, in bytes) that is accepted. A longer row becomes
/// [`TargetError::TooLong`] and is dropped; no domain comes near it (RFC 1035 §2.3.4: 255
/// octets), so only a broken file or a wrong format hits it. A list line is cut off at this
/// length while it is read; a CSV row is read whole first (see the module's "Memory" notes).
pub const MAX_RECORD_BYTES: usize = 64 * 1024;

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

#[cfg(test)]
mod test_support {
    use std::io::{self, Read};

    use super::{Column, Given, Target, TargetError, targets};
    use mxprobe_core::domain::DomainName;

    pub(super) fn read(input: &str, column: Option<Column>) -> Vec<Target> {
        targets(input.as_bytes(), column)
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    pub(super) fn dom(line: usize, name: &str) -> Target {
        Target::Domain {
            line,
            domain: DomainName::parse(name).unwrap(),
            given: Given::Domain,
        }
    }

    pub(super) fn addr(line: usize, name: &str) -> Target {
        Target::Domain {
            line,
            domain: DomainName::parse(name).unwrap(),
            given: Given::Address,
        }
    }

    pub(super) fn dup(line: usize, name: &str, first_line: usize) -> Target {
        Target::Duplicate {
            line,
            domain: DomainName::parse(name).unwrap(),
            first_line,
        }
    }

    pub(super) fn bad(line: usize, text: &str, error: TargetError) -> Target {
        Target::Invalid {
            line,
            text: text.to_owned(),
            error,
        }
    }

    pub(super) fn name(s: &str) -> Option<Column> {
        Some(Column::Name(s.to_owned()))
    }

    /// A reader that hands out one byte per call, then fails.
    pub(super) struct Trickle {
        pub(super) data: Vec<u8>,
        pub(super) pos: usize,
        pub(super) fail: bool,
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
    pub(super) struct Chunked<R> {
        pub(super) inner: R,
        pub(super) chunk: usize,
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
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
