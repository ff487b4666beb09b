//! Where rows come from: the first significant line, looked at to choose between CSV and a
//! list, and then list lines or CSV rows.

use std::io::{self, BufRead, BufReader, Chain, Cursor, Read};

use csv::ByteRecord;

use super::csv_rows::CsvRows;
use super::{InputError, MAX_RECORD_BYTES, TargetError};

/// What [`super::targets`] reads from: the bytes [`sniff`] looked at, then the rest of the
/// input.
pub(super) type Source<R> = Chain<Cursor<Vec<u8>>, BufReader<R>>;

/// The UTF-8 encoding of U+FEFF, which spreadsheet programs put at the start of CSV exports.
const BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];

/// The detection rule: a first line with a comma, or a first line that is just a `domain`
/// header, makes the input CSV.
pub(super) fn looks_like_csv(first: &[u8]) -> bool {
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

/// What [`sniff`] read: the bytes to replay, and the first significant line.
pub(super) struct Sniffed {
    /// A line feed for every blank or comment line before the first significant line (so
    /// line numbers stay right without keeping their text), then that line, capped at
    /// [`MAX_RECORD_BYTES`], without the byte-order mark.
    pub(super) prefix: Vec<u8>,
    /// The first line that is neither blank nor a comment, if there is one (capped).
    pub(super) first_line: Option<Vec<u8>>,
}

/// Reads up to the end of the first significant line, so the caller can choose between CSV
/// and a list; everything read is given back in `prefix`.
pub(super) fn sniff<B: BufRead>(src: &mut B) -> Result<Sniffed, InputError> {
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
pub(super) struct Record {
    /// The 1-based physical line where the row starts.
    pub(super) line: usize,
    /// The fields' bytes, trimmed of ASCII blanks (one field for a list line).
    pub(super) fields: ByteRecord,
    /// What is wrong with the row as a whole, if anything.
    pub(super) problem: Option<TargetError>,
}

impl Record {
    pub(super) fn is_blank(&self) -> bool {
        self.fields
            .iter()
            .all(|f| String::from_utf8_lossy(f).trim().is_empty())
    }
}

/// Where the rows come from: plain lines, or the CSV tokenizer.
pub(super) enum Rows<R> {
    Lines(Lines<Source<R>>),
    /// Boxed: the tokenizer's state is large beside a line reader's.
    Csv(Box<CsvRows<Source<R>>>),
}

impl<R: Read> Rows<R> {
    /// The 1-based physical line the reader is at (for read errors).
    pub(super) fn line(&self) -> usize {
        match self {
            Self::Lines(lines) => lines.line,
            Self::Csv(rows) => rows.line(),
        }
    }

    pub(super) fn next_record(&mut self) -> io::Result<Option<Record>> {
        match self {
            Self::Lines(lines) => lines.next_record(),
            Self::Csv(rows) => rows.next_record(),
        }
    }
}

/// A list read one line at a time, each line capped at [`MAX_RECORD_BYTES`]. No quoting: a
/// line is a line.
pub(super) struct Lines<B> {
    pub(super) src: B,
    /// The 1-based physical line of the next unread byte.
    pub(super) line: usize,
}

impl<B: BufRead> Lines<B> {
    /// The next line that is not blank or a comment, `None` at the end of the input.
    pub(super) fn next_record(&mut self) -> io::Result<Option<Record>> {
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

#[cfg(test)]
mod tests {
    use super::super::stream::MAX_TEXT_CHARS;
    use super::super::test_support::*;
    use super::super::{Column, Target, targets};
    use super::*;

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
}
