//! CSV rows, tokenized by `csv-core` in constant memory, and the header row that names the
//! domain column.

use std::io::{self, BufRead, BufReader, Read};

use csv::ByteRecord;

use super::rows::Record;
use super::{Column, InputError, MAX_RECORD_BYTES, TargetError};

/// RFC 4180 §2 rule 5: a field is quoted only when its first character is a quote, so the `csv`
/// crate keeps the quotes of ` "a.example"` (a blank before the quote) as text. No domain or
/// column name contains a quote, so one pair left around a trimmed value, with no quote
/// inside, is removed.
pub(super) fn unwrap_quotes(value: &str) -> &str {
    value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .filter(|inner| !inner.contains('"'))
        .unwrap_or(value)
}

pub(super) fn find_column(header: &Record, column: Option<Column>) -> Result<usize, InputError> {
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
pub(super) struct CsvRows<R> {
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
    pub(super) fn new(src: R) -> Self {
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
    pub(super) fn next_record(&mut self) -> io::Result<Option<Record>> {
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
    pub(super) fn line(&self) -> usize {
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
    use super::super::test_support::*;
    use super::super::{Target, targets};
    use super::*;
    use mxprobe_core::domain::DomainName;

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

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(384))]

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

    }
}
