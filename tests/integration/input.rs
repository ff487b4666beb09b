//! Reading scan targets through the public API `mxprobe::input`: CSV variants, lists, bad
//! rows with their physical line numbers, duplicates, command-line arguments, and a large
//! generated file read as a stream.

use std::cell::Cell;
use std::io::{BufWriter, Read, Write};
use std::rc::Rc;

use mxprobe::input::{
    Column, Given, InputError, MAX_RECORD_BYTES, Target, TargetError, from_args, targets,
};
use mxprobe_core::domain::DomainName;

fn read(input: &str, column: Option<Column>) -> Vec<Target> {
    targets(input.as_bytes(), column)
        .expect("the header is usable")
        .collect::<Result<Vec<_>, _>>()
        .expect("an in-memory reader does not fail")
}

fn name(n: &str) -> DomainName {
    DomainName::parse(n).expect("test names are valid")
}

fn dom(line: usize, n: &str) -> Target {
    Target::Domain {
        line,
        domain: name(n),
        given: Given::Domain,
    }
}

/// (line, domain) of every scannable target, in order.
fn domains(targets: &[Target]) -> Vec<(usize, String)> {
    targets
        .iter()
        .filter_map(|t| t.domain().map(|d| (t.line(), d.as_str().to_owned())))
        .collect()
}

#[test]
fn header_variants_find_the_domain_column() {
    let cases: &[(&str, &str, Option<Column>, usize, &str)] = &[
        ("lower", "domain\na.example\n", None, 2, "a.example"),
        (
            "capitalised",
            "Domain,Owner\na.example,x\n",
            None,
            2,
            "a.example",
        ),
        (
            "spaced",
            "owner, domain ,n\nx,a.example,1\n",
            None,
            2,
            "a.example",
        ),
        (
            "quoted header",
            "\"owner\",\"DOMAIN\"\nx,a.example\n",
            None,
            2,
            "a.example",
        ),
        (
            "by name",
            "site,host\na.example,b.example\n",
            Some(Column::Name("Host".into())),
            2,
            "b.example",
        ),
        (
            "by number",
            "site,host\na.example,b.example\n",
            Some(Column::Number(2)),
            2,
            "b.example",
        ),
        (
            "by number, parsed from the flag",
            "site,host\na.example,b.example\n",
            Some("1".parse().expect("a number")),
            2,
            "a.example",
        ),
    ];
    for (what, input, column, line, want) in cases {
        assert_eq!(
            read(input, column.clone()),
            vec![dom(*line, want)],
            "{what}"
        );
    }
}

#[test]
fn missing_column_is_an_error_before_any_target() {
    let err = targets(&b"email,name\nu@a.example,U\n"[..], None).unwrap_err();
    match &err {
        InputError::ColumnNotFound {
            line,
            wanted,
            columns,
        } => {
            assert_eq!(*line, 1);
            assert_eq!(wanted, "domain");
            assert_eq!(columns, &["email".to_owned(), "name".to_owned()]);
        }
        other => panic!("{other:?}"),
    }
    let message = err.to_string();
    assert!(message.contains("\"email\", \"name\""), "{message}");
    assert!(message.contains("--column NAME|N"), "{message}");

    let err = targets(&b"a,b\nx,y\n"[..], Some(Column::Number(5))).unwrap_err();
    assert!(
        matches!(err, InputError::ColumnOutOfRange { number: 5, ref columns, .. } if columns.len() == 2),
        "{err:?}"
    );
    let err = targets(&b"a,b\n"[..], Some(Column::Name("zz".into()))).unwrap_err();
    assert!(
        matches!(err, InputError::ColumnNotFound { ref wanted, .. } if wanted == "zz"),
        "{err:?}"
    );
    assert!("0".parse::<Column>().is_err());
}

#[test]
fn quoting_crlf_bom_comments_and_blank_lines() {
    let input = concat!(
        "\u{feff}# exported from the CRM\r\n",
        "\r\n",
        "name,domain,notes\r\n",
        "\"Smith, Jane\",a.example,\"said \"\"hi\"\"\"\r\n",
        "   # a comment after spaces\r\n",
        "\t\r\n",
        "\"Doe, \"\"J\"\"\",\"b.example\",\"two\r\nlines\"\r\n",
        "x,c.example,\r\n",
    );
    assert_eq!(
        domains(&read(input, None)),
        vec![
            (4, "a.example".to_owned()),
            (7, "b.example".to_owned()),
            (9, "c.example".to_owned()),
        ]
    );
}

#[test]
fn one_domain_per_line() {
    let input = "# my domains\na.example\n\n  b.example.  \n#c.example\nBÜCHER.example\n";
    assert_eq!(
        read(input, None),
        vec![
            dom(2, "a.example"),
            dom(4, "b.example"),
            dom(6, "xn--bcher-kva.example"),
        ]
    );
}

#[test]
fn idn_and_email_addresses() {
    let got = read(
        "domain\nbücher.example\nuser@münchen.example\nPostmaster@Bücher.Example.\n",
        None,
    );
    assert_eq!(
        got,
        vec![
            dom(2, "xn--bcher-kva.example"),
            Target::Domain {
                line: 3,
                domain: name("xn--mnchen-3ya.example"),
                given: Given::Address,
            },
            Target::Duplicate {
                line: 4,
                domain: name("xn--bcher-kva.example"),
                first_line: 2,
            },
        ]
    );
}

#[test]
fn invalid_rows_name_their_physical_line() {
    let input = concat!(
        "note,domain\n",                     // 1
        "\"multi\nline\nnote\",a.example\n", // 2-4
        "x,not_a_domain\n",                  // 5
        "\n",                                // 6
        "\"another\n\",192.0.2.1\n",         // 7-8
        "y,\n",                              // 9
        "z\n",                               // 10
        "w,@b.example\n",                    // 11
        "v,b.example\n",                     // 12
    );
    let got = read(input, None);
    let summary: Vec<(usize, &str)> = got
        .iter()
        .map(|t| match t {
            Target::Domain { line, .. } => (*line, "domain"),
            Target::Duplicate { line, .. } => (*line, "duplicate"),
            Target::Invalid { line, .. } => (*line, "invalid"),
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (2, "domain"),
            (5, "invalid"),
            (7, "invalid"),
            (9, "invalid"),
            (10, "invalid"),
            (11, "invalid"),
            (12, "domain"),
        ]
    );
    let errors: Vec<String> = got
        .iter()
        .filter_map(|t| match t {
            Target::Invalid { text, error, .. } => Some(format!("{text} | {error}")),
            _ => None,
        })
        .collect();
    assert_eq!(
        errors,
        vec![
            "not_a_domain | not a domain name: label \"not_a_domain\" of \"not_a_domain\" contains '_'; host names use only letters, digits and '-'",
            "192.0.2.1 | not a domain name: \"192.0.2.1\" is an IP address, not a domain name",
            " | no domain given: the domain field is empty",
            " | the row has 1 field(s); the domain is in column 2",
            "@b.example | an e-mail address needs a local part before '@'",
        ]
    );
}

#[test]
fn unterminated_quote_is_one_invalid_row() {
    let got = read("domain\na.example\n\"b.example\nc.example\n", None);
    assert_eq!(got.len(), 2);
    assert_eq!(got[0], dom(2, "a.example"));
    assert!(
        matches!(
            &got[1],
            Target::Invalid {
                line: 3,
                error: TargetError::UnterminatedQuote,
                ..
            }
        ),
        "{:?}",
        got[1]
    );
}

#[test]
fn duplicates_are_reported_not_rescanned() {
    let got = read(
        "a.example\nb.example\nA.Example.\nx@b.example\na.example\n",
        None,
    );
    assert_eq!(
        got,
        vec![
            dom(1, "a.example"),
            dom(2, "b.example"),
            Target::Duplicate {
                line: 3,
                domain: name("a.example"),
                first_line: 1
            },
            Target::Duplicate {
                line: 4,
                domain: name("b.example"),
                first_line: 2
            },
            Target::Duplicate {
                line: 5,
                domain: name("a.example"),
                first_line: 1
            },
        ]
    );
}

#[test]
fn command_line_arguments_use_the_same_rules() {
    let got: Vec<Target> = from_args(vec![
        "a.example".to_owned(),
        "jane@bücher.example".to_owned(),
        "A.EXAMPLE.".to_owned(),
        "bad..name".to_owned(),
    ])
    .collect();
    assert_eq!(got[0], dom(1, "a.example"));
    assert_eq!(
        got[1],
        Target::Domain {
            line: 2,
            domain: name("xn--bcher-kva.example"),
            given: Given::Address
        }
    );
    assert_eq!(
        got[2],
        Target::Duplicate {
            line: 3,
            domain: name("a.example"),
            first_line: 1
        }
    );
    assert!(
        matches!(&got[3], Target::Invalid { line: 4, text, error: TargetError::Domain(_) } if text == "bad..name"),
        "{:?}",
        got[3]
    );
}

/// Counts the bytes handed out, so a test can see how far ahead the reader has read.
struct Counting<R> {
    inner: R,
    read: Rc<Cell<usize>>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.set(self.read.get() + n);
        Ok(n)
    }
}

#[test]
fn a_large_file_is_streamed() {
    const LINES: usize = 200_000;
    const DISTINCT: usize = 150_000;
    let path = std::env::temp_dir().join(format!("mxprobe-input-large-{}.csv", std::process::id()));
    // Line 1 is the header; data line i (from 2) holds domain d{(i-2) % DISTINCT}, except
    // every 1000th data line, which is invalid.
    let mut want_domains = 0;
    let mut want_duplicates = 0;
    let mut want_invalid = 0;
    {
        let file = std::fs::File::create(&path).expect("temp file");
        let mut w = BufWriter::new(file);
        writeln!(w, "id,domain,notes").expect("write");
        for i in 0..LINES - 1 {
            if i % 1000 == 999 {
                writeln!(w, "{i},bad_{i}.example,\"x, y\"").expect("write");
                want_invalid += 1;
            } else {
                writeln!(w, "{i},d{}.example,\"note {i}\"", i % DISTINCT).expect("write");
                if i < DISTINCT {
                    want_domains += 1;
                } else {
                    want_duplicates += 1;
                }
            }
        }
        w.flush().expect("flush");
    }

    let read = Rc::new(Cell::new(0));
    let file = std::fs::File::open(&path).expect("open");
    let file_len = file.metadata().expect("metadata").len() as usize;
    let mut stream = targets(
        Counting {
            inner: file,
            read: Rc::clone(&read),
        },
        None,
    )
    .expect("the header has a domain column");

    // Streaming: the first target comes after reading a buffer or two, not the file.
    let first = stream.next().expect("a target").expect("readable");
    assert_eq!(first, dom(2, "d0.example"));
    assert!(
        read.get() <= 2 * MAX_RECORD_BYTES,
        "read {} of {file_len} bytes before the first target",
        read.get()
    );

    let (mut domains, mut duplicates, mut invalid, mut last_line) = (1, 0, 0, 2);
    for target in stream {
        let target = target.expect("readable");
        assert_eq!(target.line(), last_line + 1, "{target:?}");
        last_line = target.line();
        match target {
            Target::Domain { .. } => domains += 1,
            Target::Duplicate {
                line, first_line, ..
            } => {
                assert_eq!(line - first_line, DISTINCT, "line {line}");
                duplicates += 1;
            }
            Target::Invalid { line, .. } => {
                assert_eq!((line - 2) % 1000, 999, "line {line}");
                invalid += 1;
            }
        }
    }
    std::fs::remove_file(&path).expect("remove temp file");
    assert_eq!(read.get(), file_len);
    assert_eq!(last_line, LINES);
    assert_eq!(
        (domains, duplicates, invalid),
        (want_domains, want_duplicates, want_invalid)
    );
    assert_eq!((domains, duplicates, invalid), (149_850, 49_950, 199));
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

    /// Arbitrary bytes, with or without a named column, never panic the reader.
    #[test]
    fn arbitrary_bytes_never_panic(
        bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512),
        named in proptest::bool::ANY,
    ) {
        let column = named.then(|| Column::Name("domain".into()));
        if let Ok(stream) = targets(&bytes[..], column) {
            for item in stream {
                proptest::prop_assert!(item.is_ok());
            }
        }
    }
}
