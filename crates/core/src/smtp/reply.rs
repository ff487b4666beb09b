//! SMTP replies (RFC 5321 §4.2) parsed from a byte buffer, and what the probe reads from
//! them: EHLO keywords and the server's announced name.
//!
//! [`parse`] works like a frame check: given the bytes read so far it answers
//! [`Parse::Incomplete`], [`Parse::Complete`] (the reply and how many bytes it used) or
//! [`Parse::Invalid`]. The caller owns the buffer. The parser is bounded: a line longer than
//! [`MAX_LINE_LEN`] or a reply of more than [`MAX_LINES`] lines is invalid as soon as the
//! limit is passed, so a hostile server can never make the reader buffer without end.
//!
//! Line ends: RFC 5321 §2.3.8 requires CRLF. A bare LF is accepted as a line end too, as
//! deployed SMTP clients (Postfix, Exim) accept it; it does not change what a sender
//! experiences, and refusing it would report a fault no sender sees. A CR not followed by LF
//! stays part of the line's text.
//!
//! No I/O: `probe.rs` reads the bytes and feeds them here.

use serde::{Deserialize, Serialize};

/// The longest reply line accepted, line end included. RFC 5321 §4.5.3.1.5 sets 512 octets;
/// real servers exceed it with long EHLO parameter lists, so the probe allows 8 times that
/// and still bounds what it buffers.
pub const MAX_LINE_LEN: usize = 4096;

/// The most lines a reply may have. Real EHLO replies have about a dozen.
pub const MAX_LINES: usize = 100;

/// One complete SMTP reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    /// The three-digit reply code (RFC 5321 §4.2), the same on every line.
    pub code: u16,
    /// The text of each line after the code and its separator, without the line end, in
    /// order. Bytes that are not UTF-8 are replaced with U+FFFD.
    pub lines: Vec<String>,
}

impl Reply {
    /// A reply with `code` and these lines of text (at least one line is rendered).
    pub fn new(code: u16, lines: &[&str]) -> Self {
        Self {
            code,
            lines: lines.iter().map(|l| (*l).to_owned()).collect(),
        }
    }

    /// The first digit of the code: 2 (positive completion), 3, 4 (transient negative) or 5
    /// (permanent negative), RFC 5321 §4.2.1.
    pub fn class(&self) -> u16 {
        self.code / 100
    }

    /// All lines of text joined with `\n`.
    pub fn text(&self) -> String {
        self.lines.join("\n")
    }

    /// The name the server announces: the first word of the first line.
    ///
    /// RFC 5321 §4.2 (`Greeting`) and §4.1.1.1 (`ehlo-ok-rsp`): both the 220 greeting and the
    /// 250 reply to EHLO start with the server's `Domain` or address literal. HELO's 250 reply
    /// has the same form in practice. The word is returned as sent, not validated.
    pub fn announced_name(&self) -> Option<&str> {
        self.lines.first()?.split_ascii_whitespace().next()
    }

    /// The EHLO keywords of a 250 reply to EHLO, upper-cased, in order (RFC 5321 §4.1.1.1:
    /// every line after the first is `ehlo-keyword *( SP ehlo-param )`).
    ///
    /// A keyword is `(ALPHA / DIGIT) *(ALPHA / DIGIT / "-")`; a line whose first word does not
    /// start with one is skipped. An `=` right after the keyword (the old `AUTH=LOGIN` form)
    /// ends the keyword. Empty for any other reply.
    pub fn ehlo_keywords(&self) -> Vec<String> {
        if self.code != 250 {
            return Vec::new();
        }
        self.lines
            .iter()
            .skip(1)
            .filter_map(|line| ehlo_keyword(line))
            .collect()
    }

    /// Whether this 250 reply to EHLO lists `keyword` (case-insensitive, whole word: RFC 5321
    /// §2.4 makes keywords case-insensitive; `STARTTLS` does not match `X-STARTTLS`).
    pub fn has_ehlo_keyword(&self, keyword: &str) -> bool {
        self.ehlo_keywords()
            .iter()
            .any(|k| k.eq_ignore_ascii_case(keyword))
    }

    /// The reply as it goes on the wire: `code-text` lines and a last `code SP text` line,
    /// each ending in CRLF. A reply without lines renders as one line with the code alone.
    pub fn to_wire(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let count = self.lines.len();
        if count == 0 {
            out.extend_from_slice(format!("{:03}\r\n", self.code).as_bytes());
        }
        for (i, line) in self.lines.iter().enumerate() {
            let sep = if i + 1 == count { ' ' } else { '-' };
            out.extend_from_slice(format!("{:03}{sep}{line}\r\n", self.code).as_bytes());
        }
        out
    }
}

fn ehlo_keyword(line: &str) -> Option<String> {
    let word = line.split_ascii_whitespace().next()?;
    let end = word
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .unwrap_or(word.len());
    let (keyword, rest) = word.split_at(end);
    let starts_well = keyword.starts_with(|c: char| c.is_ascii_alphanumeric());
    if !starts_well || !(rest.is_empty() || rest.starts_with('=')) {
        return None;
    }
    Some(keyword.to_ascii_uppercase())
}

/// What [`parse`] found at the start of a buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parse {
    /// More bytes are needed; nothing is wrong so far.
    Incomplete,
    /// A whole reply, and the number of bytes it used from the start of the buffer.
    Complete(Reply, usize),
    /// The bytes cannot be (the start of) a reply.
    Invalid(ReplyError),
}

/// Why bytes are not an SMTP reply. Line numbers count from 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    /// The line does not start with a reply code: three digits, the first 2–5 and the second
    /// 0–5 (RFC 5321 §4.2).
    #[error("reply line {line} does not start with an SMTP reply code: {start:?}")]
    BadCode {
        /// The line number.
        line: usize,
        /// The first bytes of the line (at most 8), lossily decoded.
        start: String,
    },
    /// After the code comes neither a space, a hyphen nor the line end.
    #[error("reply line {line} has {found:?} after the code where a space or '-' must be")]
    BadSeparator {
        /// The line number.
        line: usize,
        /// The character found.
        found: char,
    },
    /// A continuation line carries another code than the first line (RFC 5321 §4.2.1:
    /// every line of a multi-line reply has the same code).
    #[error("reply line {line} has code {found}, but the reply began with {first}")]
    CodeMismatch {
        /// The line number.
        line: usize,
        /// The first line's code.
        first: u16,
        /// This line's code.
        found: u16,
    },
    /// A line is longer than the limit (bytes, line end included).
    #[error("reply line {line} is longer than {limit} bytes")]
    LineTooLong {
        /// The line number.
        line: usize,
        /// [`MAX_LINE_LEN`].
        limit: usize,
    },
    /// The reply has more lines than the limit and its last line has not come.
    #[error("the reply has more than {limit} lines")]
    TooManyLines {
        /// [`MAX_LINES`].
        limit: usize,
    },
}

/// Parses one reply from the start of `buf`.
///
/// Never looks further than one reply, never needs more than [`MAX_LINES`] ×
/// [`MAX_LINE_LEN`] bytes to decide, and answers `Invalid` as soon as a prefix cannot start a
/// valid line (so a garbage banner is caught at its first bytes).
pub fn parse(buf: &[u8]) -> Parse {
    let mut pos = 0;
    let mut first_code = None;
    let mut lines = Vec::new();
    loop {
        let line_no = lines.len() + 1;
        let rest = &buf[pos..];
        let window = &rest[..rest.len().min(MAX_LINE_LEN)];
        let Some(lf) = window.iter().position(|&b| b == b'\n') else {
            if rest.len() >= MAX_LINE_LEN {
                return Parse::Invalid(ReplyError::LineTooLong {
                    line: line_no,
                    limit: MAX_LINE_LEN,
                });
            }
            // Check what has come of this line so far, so garbage fails early.
            return match check_prefix(rest, line_no, first_code) {
                Ok(()) => Parse::Incomplete,
                Err(e) => Parse::Invalid(e),
            };
        };
        let raw = &window[..lf];
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        let (code, sep, text) = match split_line(line, line_no) {
            Ok(parts) => parts,
            Err(e) => return Parse::Invalid(e),
        };
        let first = *first_code.get_or_insert(code);
        if code != first {
            return Parse::Invalid(ReplyError::CodeMismatch {
                line: line_no,
                first,
                found: code,
            });
        }
        lines.push(String::from_utf8_lossy(text).into_owned());
        pos += lf + 1;
        if sep != Some(b'-') {
            return Parse::Complete(Reply { code, lines }, pos);
        }
        if lines.len() >= MAX_LINES {
            return Parse::Invalid(ReplyError::TooManyLines { limit: MAX_LINES });
        }
    }
}

/// Splits a whole line (without its line end) into code, separator and text.
fn split_line(line: &[u8], line_no: usize) -> Result<(u16, Option<u8>, &[u8]), ReplyError> {
    check_prefix(line, line_no, None)?;
    if line.len() < 3 {
        return Err(bad_code(line, line_no));
    }
    let code = line[..3]
        .iter()
        .fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0'));
    match line.get(3) {
        None => Ok((code, None, &[])),
        Some(&sep) => Ok((code, Some(sep), &line[4..])),
    }
}

/// Checks that `bytes` can begin a reply line: code digits in range, then ' ' or '-'; and,
/// for a continuation line whose code is complete, that the code matches the first line.
fn check_prefix(bytes: &[u8], line_no: usize, first: Option<u16>) -> Result<(), ReplyError> {
    // RFC 5321 §4.2: Reply-code = %x32-35 %x30-35 %x30-39
    let ranges: [(u8, u8); 3] = [(b'2', b'5'), (b'0', b'5'), (b'0', b'9')];
    for (b, (lo, hi)) in bytes.iter().zip(ranges) {
        if !(lo..=hi).contains(b) {
            return Err(bad_code(bytes, line_no));
        }
    }
    if let Some(&sep) = bytes.get(3)
        && sep != b' '
        && sep != b'-'
    {
        return Err(ReplyError::BadSeparator {
            line: line_no,
            found: char::from(sep),
        });
    }
    if let (Some(first), Some(digits)) = (first, bytes.get(..3)) {
        let code = digits
            .iter()
            .fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0'));
        if code != first {
            return Err(ReplyError::CodeMismatch {
                line: line_no,
                first,
                found: code,
            });
        }
    }
    Ok(())
}

fn bad_code(bytes: &[u8], line_no: usize) -> ReplyError {
    let start = &bytes[..bytes.len().min(8)];
    ReplyError::BadCode {
        line: line_no,
        start: String::from_utf8_lossy(start).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn complete(code: u16, lines: &[&str], used: usize) -> Parse {
        Parse::Complete(Reply::new(code, lines), used)
    }

    #[test]
    fn parse_table() {
        let long_line = format!("250 {}\r\n", "x".repeat(MAX_LINE_LEN));
        let many_lines = "250-x\r\n".repeat(MAX_LINES + 1);
        let cases: Vec<(&str, Vec<u8>, Parse)> = vec![
            ("empty", b"".to_vec(), Parse::Incomplete),
            ("partial code", b"22".to_vec(), Parse::Incomplete),
            (
                "no line end yet",
                b"220 mx.example".to_vec(),
                Parse::Incomplete,
            ),
            (
                "single line",
                b"220 mx.example.com ESMTP\r\n".to_vec(),
                complete(220, &["mx.example.com ESMTP"], 26),
            ),
            (
                "trailing bytes not consumed",
                b"221 bye\r\n250 next".to_vec(),
                complete(221, &["bye"], 9),
            ),
            ("code only", b"220\r\n".to_vec(), complete(220, &[""], 5)),
            (
                "bare LF accepted",
                b"220 hi\n".to_vec(),
                complete(220, &["hi"], 7),
            ),
            (
                "CR inside text kept",
                b"220 a\rb\r\n".to_vec(),
                complete(220, &["a\rb"], 9),
            ),
            (
                "multi-line",
                b"250-mx.example.com\r\n250-PIPELINING\r\n250 STARTTLS\r\n".to_vec(),
                complete(250, &["mx.example.com", "PIPELINING", "STARTTLS"], 50),
            ),
            (
                "multi-line waiting for last line",
                b"250-mx.example.com\r\n250-PIPE".to_vec(),
                Parse::Incomplete,
            ),
            (
                "empty continuation text",
                b"220-\r\n220 x\r\n".to_vec(),
                complete(220, &["", "x"], 13),
            ),
            (
                "mismatched codes",
                b"250-a\r\n251 b\r\n".to_vec(),
                Parse::Invalid(ReplyError::CodeMismatch {
                    line: 2,
                    first: 250,
                    found: 251,
                }),
            ),
            (
                "mismatch seen before line end",
                b"250-a\r\n252".to_vec(),
                Parse::Invalid(ReplyError::CodeMismatch {
                    line: 2,
                    first: 250,
                    found: 252,
                }),
            ),
            (
                "garbage first byte",
                b"HTTP/1.1 400".to_vec(),
                Parse::Invalid(ReplyError::BadCode {
                    line: 1,
                    start: "HTTP/1.1".to_owned(),
                }),
            ),
            (
                "first digit out of range",
                b"620 x\r\n".to_vec(),
                Parse::Invalid(ReplyError::BadCode {
                    line: 1,
                    start: "620 x".to_owned(),
                }),
            ),
            (
                "second digit out of range",
                b"2".to_vec().into_iter().chain(*b"70").collect(),
                Parse::Invalid(ReplyError::BadCode {
                    line: 1,
                    start: "270".to_owned(),
                }),
            ),
            (
                "short line",
                b"22\r\n".to_vec(),
                Parse::Invalid(ReplyError::BadCode {
                    line: 1,
                    start: "22".to_owned(),
                }),
            ),
            (
                "bad separator",
                b"220_x\r\n".to_vec(),
                Parse::Invalid(ReplyError::BadSeparator {
                    line: 1,
                    found: '_',
                }),
            ),
            (
                "oversized line",
                long_line.into_bytes(),
                Parse::Invalid(ReplyError::LineTooLong {
                    line: 1,
                    limit: MAX_LINE_LEN,
                }),
            ),
            (
                "oversized line without end",
                format!("250 {}", "x".repeat(MAX_LINE_LEN)).into_bytes(),
                Parse::Invalid(ReplyError::LineTooLong {
                    line: 1,
                    limit: MAX_LINE_LEN,
                }),
            ),
            (
                "too many lines",
                many_lines.into_bytes(),
                Parse::Invalid(ReplyError::TooManyLines { limit: MAX_LINES }),
            ),
            (
                "not UTF-8 replaced",
                b"220 \xff\r\n".to_vec(),
                complete(220, &["\u{fffd}"], 7),
            ),
        ];
        for (name, input, expected) in cases {
            assert_eq!(parse(&input), expected, "case {name}");
        }
    }

    #[test]
    fn line_of_exactly_the_limit_is_accepted() {
        let text = "x".repeat(MAX_LINE_LEN - 6);
        let wire = format!("250 {text}\r\n");
        assert_eq!(wire.len(), MAX_LINE_LEN);
        assert_eq!(
            parse(wire.as_bytes()),
            Parse::Complete(Reply::new(250, &[&text]), MAX_LINE_LEN)
        );
    }

    #[test]
    fn max_lines_reply_is_accepted() {
        let mut wire = "250-x\r\n".repeat(MAX_LINES - 1);
        wire.push_str("250 y\r\n");
        match parse(wire.as_bytes()) {
            Parse::Complete(reply, used) => {
                assert_eq!(reply.lines.len(), MAX_LINES);
                assert_eq!(used, wire.len());
            }
            other => panic!("expected a complete reply, got {other:?}"),
        }
    }

    #[test]
    fn ehlo_keywords_table() {
        let cases: Vec<(&str, Reply, Vec<&str>)> = vec![
            (
                "typical",
                Reply::new(
                    250,
                    &[
                        "mx.example.com Hello",
                        "PIPELINING",
                        "SIZE 10240000",
                        "starttls",
                        "8BITMIME",
                    ],
                ),
                vec!["PIPELINING", "SIZE", "STARTTLS", "8BITMIME"],
            ),
            (
                "old AUTH= form",
                Reply::new(250, &["mx", "AUTH=LOGIN PLAIN", "AUTH LOGIN"]),
                vec!["AUTH", "AUTH"],
            ),
            (
                "invalid keywords skipped",
                Reply::new(250, &["mx", "-X", "", "X_Y", "ENHANCEDSTATUSCODES"]),
                vec!["ENHANCEDSTATUSCODES"],
            ),
            (
                "first line is the name",
                Reply::new(250, &["STARTTLS"]),
                vec![],
            ),
            ("not a 250", Reply::new(550, &["mx", "STARTTLS"]), vec![]),
        ];
        for (name, reply, expected) in cases {
            assert_eq!(reply.ehlo_keywords(), expected, "case {name}");
        }
    }

    #[test]
    fn starttls_keyword_is_whole_word_and_case_insensitive() {
        let cases = [
            ("STARTTLS", true),
            ("StartTLS", true),
            ("X-STARTTLS", false),
            ("STARTTLSX", false),
            ("STARTTLS extra", true),
        ];
        for (line, offered) in cases {
            let reply = Reply::new(250, &["mx.example.com", line]);
            assert_eq!(reply.has_ehlo_keyword("starttls"), offered, "line {line:?}");
        }
    }

    #[test]
    fn announced_name_is_first_word_of_first_line() {
        let cases = [
            (
                Reply::new(220, &["mx.example.com ESMTP Postfix"]),
                Some("mx.example.com"),
            ),
            (
                Reply::new(220, &["[192.0.2.1] ready", "more"]),
                Some("[192.0.2.1]"),
            ),
            (Reply::new(220, &[""]), None),
            (Reply::new(220, &[]), None),
        ];
        for (reply, expected) in cases {
            assert_eq!(reply.announced_name(), expected, "{reply:?}");
        }
    }

    fn reply_strategy() -> impl Strategy<Value = Reply> {
        let code = (2u16..=5, 0u16..=5, 0u16..=9).prop_map(|(a, b, c)| a * 100 + b * 10 + c);
        let line = "[ -~]{0,40}";
        (code, proptest::collection::vec(line, 1..8))
            .prop_map(|(code, lines)| Reply { code, lines })
    }

    fn check_bounds(buf: &[u8]) {
        match parse(buf) {
            Parse::Complete(reply, used) => {
                assert!(used <= buf.len());
                assert!(used <= MAX_LINE_LEN * MAX_LINES);
                assert!(reply.lines.len() <= MAX_LINES);
                assert!(reply.lines.iter().all(|l| l.len() < MAX_LINE_LEN * 3));
                assert!((200..600).contains(&reply.code));
            }
            // Incomplete only while no line has passed the limit.
            Parse::Incomplete => assert!(buf.len() < MAX_LINE_LEN * MAX_LINES),
            Parse::Invalid(_) => {}
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn never_panics_on_arbitrary_bytes(buf in proptest::collection::vec(any::<u8>(), 0..600)) {
            check_bounds(&buf);
        }

        #[test]
        fn never_panics_on_grammar_alphabet(
            parts in proptest::collection::vec(
                prop_oneof![
                    Just("220"), Just("250"), Just("421"), Just("-"), Just(" "), Just("\r\n"),
                    Just("\n"), Just("\r"), Just("STARTTLS"), Just("x"), Just("9"),
                ],
                0..60,
            )
        ) {
            check_bounds(parts.concat().as_bytes());
        }

        #[test]
        fn line_limit_holds_without_a_line_end(len in 0usize..(MAX_LINE_LEN + 200)) {
            let mut buf = b"250 ".to_vec();
            buf.resize(4 + len, b'x');
            let expected = if buf.len() >= MAX_LINE_LEN {
                Parse::Invalid(ReplyError::LineTooLong { line: 1, limit: MAX_LINE_LEN })
            } else {
                Parse::Incomplete
            };
            prop_assert_eq!(parse(&buf), expected);
        }

        #[test]
        fn line_count_limit_holds(lines in 1usize..(MAX_LINES + 20)) {
            let buf = "250-x\r\n".repeat(lines);
            let expected = if lines >= MAX_LINES {
                Parse::Invalid(ReplyError::TooManyLines { limit: MAX_LINES })
            } else {
                Parse::Incomplete
            };
            prop_assert_eq!(parse(buf.as_bytes()), expected);
        }

        #[test]
        fn rendered_reply_round_trips(reply in reply_strategy()) {
            let wire = reply.to_wire();
            prop_assert_eq!(parse(&wire), Parse::Complete(reply, wire.len()));
        }

        #[test]
        fn every_prefix_of_a_reply_is_incomplete(reply in reply_strategy(), cut in any::<prop::sample::Index>()) {
            let wire = reply.to_wire();
            let cut = cut.index(wire.len());
            prop_assert_eq!(parse(&wire[..cut]), Parse::Incomplete);
        }
    }
}
