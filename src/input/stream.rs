//! The stream of targets: each row judged, e-mail addresses and IDNs turned into domains,
//! duplicates merged.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fmt;
use std::io::{BufReader, Cursor, Read};

use super::csv_rows::{CsvRows, find_column, unwrap_quotes};
use super::rows::{Lines, Record, Rows, looks_like_csv, sniff};
use super::{Column, Given, InputError, Target, TargetError};
use mxprobe_core::domain::DomainName;

/// How many characters of an invalid value [`Target::Invalid`] keeps in `text`.
pub(super) const MAX_TEXT_CHARS: usize = 256;

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

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;
    use mxprobe_core::domain::DomainError;

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
