//! The `v=VERSION; name=value; …` grammar shared by the `_mta-sts` TXT record (RFC 8461 §3.1)
//! and the `_smtp._tls` TXT record (RFC 8460 §3), the join of a TXT RR's character-strings,
//! and the record-set selection rule both RFCs state ("discard the records that do not begin
//! with the version, then exactly one must remain").
//!
//! Both records share one shape:
//!
//! ```text
//! record     = version 1*(field-delim field) [field-delim]
//! field-delim = *WSP ";" *WSP
//! field      = ext-name "=" ext-value           ; or a field with its own value grammar
//! ext-name   = (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".")
//! ext-value  = 1*(%x21-3A / %x3C / %x3E-7E)
//! ```
//!
//! This module owns only that shape: it finds the fields, checks names and (generic) values
//! and reports the first problem with its 1-based byte column. What a field means (`id`,
//! `rua`), which fields are required and what duplicates do is decided by
//! [`crate::mtasts::record`] and [`crate::tlsrpt::record`]. Pure: no I/O; the DNS layer feeds
//! it the character-strings it received.

use std::fmt;

/// The longest field name the ABNF allows: one leading character and 31 more.
const MAX_NAME_LEN: usize = 32;

/// Which record a lexer run is for: its exact version field, and the fields whose value has
/// its own grammar (checked by the caller) instead of `ext-value`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grammar {
    /// The version field exactly as it must begin the record, e.g. `v=STSv1` (case-sensitive:
    /// RFC 7405 `%s`).
    pub version: &'static str,
    /// Field names whose value is returned as written (minus the delimiter's whitespace) for
    /// the caller to check, e.g. `rua`, whose URI list may contain spaces around `,` and `=`.
    pub raw_fields: &'static [&'static str],
}

impl Grammar {
    /// The version without its trailing digits (`v=STSv`), used to recognise "another version
    /// of the same record" when discarding records.
    fn version_stem(&self) -> &'static str {
        self.version.trim_end_matches(|c: char| c.is_ascii_digit())
    }
}

/// One `name=value` field after the version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TagField<'a> {
    /// The field name, as written (names are case-sensitive).
    pub name: &'a str,
    /// The value. For a raw field (see [`Grammar::raw_fields`]) it may contain whitespace;
    /// otherwise it matches `ext-value`.
    pub value: &'a str,
    /// 1-based byte column of the name.
    pub column: usize,
    /// 1-based byte column of the value.
    pub value_column: usize,
}

/// The fields of a syntactically valid record, in order, after the version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagList<'a> {
    /// The fields after the version, duplicates included, in the order written.
    pub fields: Vec<TagField<'a>>,
    /// The record ends with a field delimiter (`…;`), which the ABNF allows.
    pub trailing_delimiter: bool,
    /// There is whitespace between the version and the first `;` (`v=STSv1 ;`): valid by the
    /// ABNF, but a sender that tests the literal prefix `v=STSv1;` discards such a record.
    pub space_before_first_delimiter: bool,
}

/// What is wrong with a field name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameProblem {
    /// Nothing before the `=`.
    Empty,
    /// The first character is not a letter or digit.
    BadFirst(char),
    /// A character other than letters, digits, `_`, `-` and `.`.
    BadChar(char),
    /// More than 32 characters.
    TooLong(usize),
}

impl fmt::Display for NameProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("it is empty"),
            Self::BadFirst(c) => write!(
                f,
                "it starts with {c:?}; a name starts with a letter or digit"
            ),
            Self::BadChar(c) => write!(
                f,
                "it contains {c:?}; a name has only letters, digits, '_', '-' and '.'"
            ),
            Self::TooLong(n) => write!(f, "it is {n} characters long; the limit is {MAX_NAME_LEN}"),
        }
    }
}

/// Why a record does not follow the shared grammar. Columns are 1-based byte positions.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TagValueError {
    /// Empty, or only spaces and tabs.
    #[error("the record is empty")]
    Empty,
    /// The record does not begin with a version field at all.
    #[error("the record must begin with {expected:?}, but it begins with {found:?}")]
    MissingVersion {
        /// The version field required.
        expected: &'static str,
        /// The first field as written.
        found: String,
    },
    /// The record begins with `v=` but not with the exact version (case-sensitive).
    #[error(
        "the record's version field is {found:?}; only {expected:?} (case-sensitive) is defined"
    )]
    WrongVersion {
        /// The version field required.
        expected: &'static str,
        /// The version field as written.
        found: String,
    },
    /// Whitespace before the version field.
    #[error("column {column}: the record starts with whitespace; it must begin with {expected:?}")]
    LeadingWhitespace {
        /// Where the whitespace starts.
        column: usize,
        /// The version field required.
        expected: &'static str,
    },
    /// Spaces or tabs next to `=`.
    #[error("column {column}: whitespace around '=' in {field:?}; write name=value without spaces")]
    WhitespaceAroundEquals {
        /// Where the whitespace is.
        column: usize,
        /// The field as written.
        field: String,
    },
    /// A field without `=`.
    #[error("column {column}: {field:?} is not a name=value field")]
    MissingEquals {
        /// Where the field starts.
        column: usize,
        /// The field as written.
        field: String,
    },
    /// Two delimiters with no field between them (`;;`).
    #[error("column {column}: empty field (';' follows ';' with nothing between)")]
    EmptyField {
        /// The column of the second `;`.
        column: usize,
    },
    /// A field name outside `(ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".")`.
    #[error("column {column}: {name:?} is not a valid field name: {problem}")]
    BadName {
        /// Where the name starts.
        column: usize,
        /// The name as written.
        name: String,
        /// What is wrong with it.
        problem: NameProblem,
    },
    /// `name=` with nothing after it.
    #[error("column {column}: field {name:?} has an empty value")]
    EmptyValue {
        /// Where the field starts.
        column: usize,
        /// The field name.
        name: String,
    },
    /// A value character outside `%x21-3A / %x3C / %x3E-7E`.
    #[error(
        "column {column}: the value of {name:?} contains {ch:?}; values may not contain '=', \
         ';', spaces, control or non-ASCII characters"
    )]
    BadValue {
        /// Where the character is.
        column: usize,
        /// The field name.
        name: String,
        /// The character.
        ch: char,
    },
    /// Text after a field without a `;` before it.
    #[error("column {column}: unexpected {text:?} after {field:?}; separate fields with ';'")]
    TrailingText {
        /// Where the text starts.
        column: usize,
        /// The field it follows.
        field: String,
        /// The unexpected text.
        text: String,
    },
    /// Whitespace at the very end with no `;` before it: the ABNF only allows whitespace as
    /// part of a `;` delimiter.
    #[error("column {column}: whitespace at the end of the record without a ';' before it")]
    TrailingWhitespace {
        /// Where the whitespace starts.
        column: usize,
    },
}

/// SP or HTAB (RFC 5234 `WSP`).
pub(crate) fn is_wsp(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// `%x21-3A / %x3C / %x3E-7E`: printable ASCII except `;` and `=`.
pub(crate) fn is_ext_value_char(c: char) -> bool {
    matches!(c, '\x21'..='\x3a' | '\x3c' | '\x3e'..='\x7e')
}

/// Checks a field name against `(ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".")`.
/// The same rule names extension keys in the policy body (RFC 8461 §3.2).
pub fn check_name(name: &str) -> Result<(), NameProblem> {
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return Err(NameProblem::Empty);
    };
    if !first.is_ascii_alphanumeric() {
        return Err(NameProblem::BadFirst(first));
    }
    if let Some(c) = chars.find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))) {
        return Err(NameProblem::BadChar(c));
    }
    let len = name.chars().count();
    if len > MAX_NAME_LEN {
        return Err(NameProblem::TooLong(len));
    }
    Ok(())
}

/// Splits `s` at its first WSP: the token before it, the offset where whitespace starts, and
/// the text after the whitespace run.
fn split_token(s: &str) -> (&str, usize, &str) {
    let end = s.find(is_wsp).unwrap_or(s.len());
    (&s[..end], end, s[end..].trim_start_matches(is_wsp))
}

/// Lexes a record: the version, then every field, checked against the shared grammar.
///
/// Returns the first problem found, with its column.
pub fn lex<'a>(input: &'a str, grammar: &Grammar) -> Result<TagList<'a>, TagValueError> {
    if input.trim_matches(is_wsp).is_empty() {
        return Err(TagValueError::Empty);
    }
    // ';' never occurs inside a field: ext-value excludes %x3B and RFC 8460 §3 requires ';'
    // in a rua URI to be percent-encoded, so splitting on it finds exactly the fields.
    let mut segments = Vec::new();
    let mut start = 0;
    for part in input.split(';') {
        segments.push((start, part));
        start += part.len() + 1;
    }
    let count = segments.len();
    let (_, first) = segments[0];
    let space_before_first_delimiter = lex_version(input, first, count == 1, grammar)?;
    let mut fields = Vec::new();
    let mut trailing_delimiter = false;
    for (i, &(offset, segment)) in segments.iter().enumerate().skip(1) {
        let is_last = i + 1 == count;
        match lex_field(offset, segment, is_last, grammar)? {
            Some(field) => fields.push(field),
            None => trailing_delimiter = true,
        }
    }
    Ok(TagList {
        fields,
        trailing_delimiter,
        space_before_first_delimiter,
    })
}

/// Checks the first segment (before the first `;`); returns whether whitespace precedes the
/// first delimiter.
fn lex_version(
    whole: &str,
    segment: &str,
    is_last: bool,
    grammar: &Grammar,
) -> Result<bool, TagValueError> {
    let expected = grammar.version;
    if segment.starts_with(is_wsp) {
        let rest = segment.trim_start_matches(is_wsp);
        if rest.starts_with(expected) {
            return Err(TagValueError::LeadingWhitespace {
                column: 1,
                expected,
            });
        }
        let token = split_token(rest).0;
        return Err(TagValueError::MissingVersion {
            expected,
            found: if token.is_empty() {
                // Nothing before the first ';' (` ; ;`): show the record itself.
                whole.trim_matches(is_wsp).to_owned()
            } else {
                token.to_owned()
            },
        });
    }
    let (token, ws_at, rest) = split_token(segment);
    if token != expected {
        if (token.ends_with('=') && !rest.is_empty()) || rest.starts_with('=') {
            return Err(TagValueError::WhitespaceAroundEquals {
                column: ws_at + 1,
                field: segment.trim_end_matches(is_wsp).to_owned(),
            });
        }
        let found = token.to_owned();
        return Err(
            if token
                .split_once('=')
                .is_some_and(|(n, _)| n.eq_ignore_ascii_case("v"))
            {
                TagValueError::WrongVersion { expected, found }
            } else {
                TagValueError::MissingVersion { expected, found }
            },
        );
    }
    if !rest.is_empty() {
        return Err(TagValueError::TrailingText {
            column: segment.len() - rest.len() + 1,
            field: token.to_owned(),
            text: rest.trim_end_matches(is_wsp).to_owned(),
        });
    }
    let has_space = ws_at < segment.len();
    if is_last && has_space {
        // RFC 8461 §3.1 / RFC 8460 §3: WSP is only allowed as part of "*WSP ';' *WSP".
        return Err(TagValueError::TrailingWhitespace { column: ws_at + 1 });
    }
    Ok(has_space)
}

/// Lexes the segment between two `;` (or after the last one). `None` is the empty segment
/// after a trailing delimiter.
fn lex_field<'a>(
    offset: usize,
    segment: &'a str,
    is_last: bool,
    grammar: &Grammar,
) -> Result<Option<TagField<'a>>, TagValueError> {
    let lead = segment.len() - segment.trim_start_matches(is_wsp).len();
    let content = segment[lead..].trim_end_matches(is_wsp);
    let column = offset + lead + 1;
    if content.is_empty() {
        if is_last {
            // The optional final field-delim, with its *WSP.
            return Ok(None);
        }
        return Err(TagValueError::EmptyField {
            column: offset + segment.len() + 1,
        });
    }
    let content_end = lead + content.len();
    if is_last && content_end < segment.len() {
        return Err(TagValueError::TrailingWhitespace {
            column: offset + content_end + 1,
        });
    }
    let name_end = content
        .find(|c: char| c == '=' || is_wsp(c))
        .unwrap_or(content.len());
    let name = &content[..name_end];
    if name_end == content.len() {
        return Err(TagValueError::MissingEquals {
            column,
            field: content.to_owned(),
        });
    }
    if content[name_end..].starts_with(is_wsp) {
        let after = content[name_end..].trim_start_matches(is_wsp);
        if after.starts_with('=') {
            return Err(TagValueError::WhitespaceAroundEquals {
                column: column + name_end,
                field: content.to_owned(),
            });
        }
        return Err(TagValueError::MissingEquals {
            column,
            field: content.to_owned(),
        });
    }
    check_name(name).map_err(|problem| TagValueError::BadName {
        column,
        name: name.to_owned(),
        problem,
    })?;
    let value = &content[name_end + 1..];
    let value_column = column + name_end + 1;
    if value.is_empty() {
        return Err(TagValueError::EmptyValue {
            column,
            name: name.to_owned(),
        });
    }
    if value.starts_with(is_wsp) {
        return Err(TagValueError::WhitespaceAroundEquals {
            column: value_column,
            field: content.to_owned(),
        });
    }
    if !grammar.raw_fields.contains(&name) {
        let (token, ws_at, rest) = split_token(value);
        if !rest.is_empty() {
            return Err(TagValueError::TrailingText {
                column: value_column + value.len() - rest.len(),
                field: format!("{name}={token}"),
                text: rest.to_owned(),
            });
        }
        debug_assert_eq!(ws_at, value.len(), "content has no trailing WSP");
        if let Some((at, ch)) = value.char_indices().find(|&(_, c)| !is_ext_value_char(c)) {
            return Err(TagValueError::BadValue {
                column: value_column + at,
                name: name.to_owned(),
                ch,
            });
        }
    }
    Ok(Some(TagField {
        name,
        value,
        column,
        value_column,
    }))
}

/// A field the record layer parsed but did not use, kept so `lint` can warn about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnoredField {
    /// 1-based byte column of the field name.
    pub column: usize,
    /// The field name.
    pub name: String,
    /// The value as written.
    pub value: String,
    /// Why it was ignored.
    pub reason: IgnoredReason,
}

/// Why a field was not used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IgnoredReason {
    /// A second occurrence of a field that may appear once: the first one wins.
    Duplicate,
    /// A value already listed earlier (e.g. the same rua URI twice).
    RepeatedValue,
}

impl fmt::Display for IgnoredField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.reason {
            IgnoredReason::Duplicate => write!(
                f,
                "column {}: {}={} repeats the field {:?}; the first one is used",
                self.column, self.name, self.value, self.name
            ),
            IgnoredReason::RepeatedValue => write!(
                f,
                "column {}: {}={} is already listed; the repetition changes nothing",
                self.column, self.name, self.value
            ),
        }
    }
}

// ---------------------------------------------------------------------------------------
// TXT character-strings
// ---------------------------------------------------------------------------------------

/// Why a TXT RR's character-strings are not a usable record text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TxtJoinError {
    /// A byte outside US-ASCII: both records are US-ASCII by their ABNF.
    #[error(
        "character-string {string} of the TXT record contains the non-ASCII byte 0x{byte:02x} \
         at offset {offset}; the record must be plain ASCII"
    )]
    NonAscii {
        /// 1-based number of the character-string within the RR.
        string: usize,
        /// 0-based offset of the byte within that character-string.
        offset: usize,
        /// The byte.
        byte: u8,
    },
}

/// Joins the character-strings of one TXT RR into the record text.
///
/// RFC 8461 §3.1 / RFC 8460 §3: several strings are concatenated *without* anything between
/// them (unlike SPF's occasional reading with spaces).
pub fn join_txt<S: AsRef<[u8]>>(strings: &[S]) -> Result<String, TxtJoinError> {
    let mut out = String::new();
    for (i, s) in strings.iter().enumerate() {
        let bytes = s.as_ref();
        if let Some(offset) = bytes.iter().position(|b| !b.is_ascii()) {
            return Err(TxtJoinError::NonAscii {
                string: i + 1,
                offset,
                byte: bytes[offset],
            });
        }
        // Every byte is ASCII, so each is one char.
        out.extend(bytes.iter().map(|&b| char::from(b)));
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// Record-set selection
// ---------------------------------------------------------------------------------------

/// Why a TXT record of the set was discarded before counting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiscardReason {
    /// Some other kind of record (SPF, site verification, free text).
    Unrelated,
    /// Another version of this record (`v=STSv10`, `v=TLSRPTv2`).
    OtherVersion {
        /// The first field as written.
        found: String,
    },
    /// The version in other letter case (`V=STSv1`, `v=stsv1`): `%s` makes it case-sensitive.
    CaseMismatch {
        /// The first field as written.
        found: String,
    },
    /// Exactly the version, but no `;` follows it (`v=STSv1`, `v=STSv1 id=1`).
    NoDelimiter,
    /// Whitespace before the version.
    LeadingWhitespace,
    /// The version field appears, but not first.
    VersionNotFirst {
        /// 1-based byte column of the version field.
        column: usize,
    },
}

impl DiscardReason {
    /// Whether the record was probably meant to be one of ours (everything except
    /// [`Self::Unrelated`]); `lint` reports these.
    pub fn looks_like_record(&self) -> bool {
        !matches!(self, Self::Unrelated)
    }
}

impl fmt::Display for DiscardReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unrelated => f.write_str("it is not this kind of record"),
            Self::OtherVersion { found } => write!(f, "it is another version ({found:?})"),
            Self::CaseMismatch { found } => write!(
                f,
                "its version {found:?} differs in letter case, and the version is case-sensitive"
            ),
            Self::NoDelimiter => f.write_str("no ';' follows the version"),
            Self::LeadingWhitespace => f.write_str("it starts with whitespace"),
            Self::VersionNotFirst { column } => {
                write!(f, "the version field is at column {column}, not first")
            }
        }
    }
}

/// Whether a record survives the discard step, and if not, why.
///
/// RFC 8461 §3.1 ("records that do not begin with `v=STSv1;` are discarded") and RFC 8460 §3
/// (same with `v=TLSRPTv1;`). The prose writes the version and `;` together; the ABNF's
/// `field-delim` is `*WSP ";" *WSP`. Decision: a record is kept when it begins with the version
/// followed by `*WSP ";"`, i.e. by the ABNF's delimiter, so the ABNF-valid `v=STSv1 ;` is kept
/// (and flagged, see [`TagList::space_before_first_delimiter`]). A record that is exactly the
/// version with no `;` is discarded, as the prose says; it could never be valid anyway.
pub fn discard_reason(record: &str, grammar: &Grammar) -> Option<DiscardReason> {
    let version = grammar.version;
    if let Some(rest) = record.strip_prefix(version) {
        let after = rest.trim_start_matches(is_wsp);
        if after.starts_with(';') {
            return None;
        }
        if after.is_empty() || rest.starts_with(is_wsp) {
            return Some(DiscardReason::NoDelimiter);
        }
        // `v=STSv10`, `v=STSv1x`: the version token continues.
    }
    if record.starts_with(is_wsp) {
        let trimmed = record.trim_start_matches(is_wsp);
        if discard_reason(trimmed, grammar).is_none_or(|r| r.looks_like_record()) {
            return Some(DiscardReason::LeadingWhitespace);
        }
    }
    let token = record
        .split(|c: char| c == ';' || is_wsp(c))
        .next()
        .unwrap_or_default();
    if token.eq_ignore_ascii_case(version) {
        return Some(DiscardReason::CaseMismatch {
            found: token.to_owned(),
        });
    }
    if token.starts_with(grammar.version_stem()) {
        return Some(DiscardReason::OtherVersion {
            found: token.to_owned(),
        });
    }
    let mut offset = 0;
    for part in record.split(';') {
        let lead = part.len() - part.trim_start_matches(is_wsp).len();
        if offset > 0 && part.trim_matches(is_wsp) == version {
            return Some(DiscardReason::VersionNotFirst {
                column: offset + lead + 1,
            });
        }
        offset += part.len() + 1;
    }
    Some(DiscardReason::Unrelated)
}

/// What a sender concludes from a TXT record set. Indices are 0-based positions in the slice
/// given to the selection; messages show them as "record {index + 1} of {total}".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Conclusion<R, E> {
    /// Exactly one record survived the discard step and it is valid: the domain publishes one.
    One {
        /// Which record.
        index: usize,
        /// The parsed record.
        record: R,
    },
    /// No record survived the discard step: the domain publishes none.
    None,
    /// More than one record survived: senders treat the domain as publishing none.
    Several {
        /// The records that survived.
        indices: Vec<usize>,
    },
    /// Exactly one survived but it is syntactically invalid: senders treat the domain as
    /// publishing none (RFC 8461 §3.1; RFC 8460 §3).
    Invalid {
        /// Which record.
        index: usize,
        /// What is wrong with it.
        error: E,
    },
}

/// A diagnostic about one record of the set; it does not change the [`Conclusion`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SelectionNote<E> {
    /// The record was discarded before counting.
    Discarded {
        /// Which record.
        index: usize,
        /// Why.
        reason: DiscardReason,
    },
    /// The record was kept, but has whitespace before its first `;` (`v=STSv1 ;`): valid by
    /// the ABNF, yet a sender testing the literal prefix `v=STSv1;` would discard it.
    SpaceBeforeDelimiter {
        /// Which record.
        index: usize,
    },
    /// One of several kept records is also malformed.
    AlsoInvalid {
        /// Which record.
        index: usize,
        /// What is wrong with it.
        error: E,
    },
}

/// The outcome of record-set selection: the conclusion and the diagnostics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection<R, E> {
    /// How many records the set had.
    pub total: usize,
    /// What a sender concludes.
    pub conclusion: Conclusion<R, E>,
    /// Diagnostics for `lint`, in record order.
    pub notes: Vec<SelectionNote<E>>,
}

impl<R, E> Selection<R, E> {
    /// How messages name a record: `record 2 of 3` for index 1 of three.
    pub fn label(&self, index: usize) -> String {
        format!("record {} of {}", index + 1, self.total)
    }

    /// The one valid record, if the sender ends up with one.
    pub fn record(&self) -> Option<&R> {
        match &self.conclusion {
            Conclusion::One { record, .. } => Some(record),
            _ => None,
        }
    }
}

/// Applies the discard-then-count rule to a record set (each record already joined with
/// [`join_txt`]) and parses the survivor with `parse`.
pub fn select<R, E>(
    records: &[String],
    grammar: &Grammar,
    parse: impl Fn(&str) -> Result<R, E>,
) -> Selection<R, E> {
    let mut notes = Vec::new();
    let mut kept = Vec::new();
    for (index, record) in records.iter().enumerate() {
        match discard_reason(record, grammar) {
            Some(reason) => notes.push(SelectionNote::Discarded { index, reason }),
            None => {
                let literal = format!("{};", grammar.version);
                if !record.starts_with(&literal) {
                    notes.push(SelectionNote::SpaceBeforeDelimiter { index });
                }
                kept.push(index);
            }
        }
    }
    let conclusion = match kept.as_slice() {
        [] => Conclusion::None,
        &[index] => match parse(&records[index]) {
            Ok(record) => Conclusion::One { index, record },
            Err(error) => Conclusion::Invalid { index, error },
        },
        several => {
            for &index in several {
                if let Err(error) = parse(&records[index]) {
                    notes.push(SelectionNote::AlsoInvalid { index, error });
                }
            }
            Conclusion::Several {
                indices: several.to_vec(),
            }
        }
    };
    Selection {
        total: records.len(),
        conclusion,
        notes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const G: Grammar = Grammar {
        version: "v=STSv1",
        raw_fields: &["rua"],
    };

    fn fields(input: &str) -> Vec<(String, String, usize)> {
        lex(input, &G)
            .unwrap()
            .fields
            .iter()
            .map(|f| (f.name.to_owned(), f.value.to_owned(), f.column))
            .collect()
    }

    #[test]
    fn valid_shapes() {
        /// (input, fields as (name, value, column), trailing delimiter, space before ';')
        type Case<'a> = (&'a str, &'a [(&'a str, &'a str, usize)], bool, bool);
        let cases: &[Case<'_>] = &[
            ("v=STSv1", &[], false, false),
            ("v=STSv1;", &[], true, false),
            ("v=STSv1;  \t", &[], true, false),
            ("v=STSv1;id=1", &[("id", "1", 9)], false, false),
            ("v=STSv1; id=1;", &[("id", "1", 10)], true, false),
            (
                "v=STSv1 ;\tid=1 ; x=y",
                &[("id", "1", 11), ("x", "y", 18)],
                false,
                true,
            ),
            ("v=STSv1; rua=a , b", &[("rua", "a , b", 10)], false, false),
            (
                "v=STSv1; a.b-c_d=!~",
                &[("a.b-c_d", "!~", 10)],
                false,
                false,
            ),
        ];
        for &(input, want, trailing, space) in cases {
            let list = lex(input, &G).unwrap();
            let got: Vec<_> = list
                .fields
                .iter()
                .map(|f| (f.name, f.value, f.column))
                .collect();
            assert_eq!(got, want, "{input:?}");
            assert_eq!(list.trailing_delimiter, trailing, "{input:?}");
            assert_eq!(list.space_before_first_delimiter, space, "{input:?}");
        }
        assert_eq!(fields("v=STSv1;id=1")[0].0, "id");
    }

    #[test]
    fn each_error_with_its_column() {
        use TagValueError as E;
        let s = String::from;
        let cases: Vec<(&str, E)> = vec![
            ("", E::Empty),
            (" \t ", E::Empty),
            (
                "bogus",
                E::MissingVersion {
                    expected: "v=STSv1",
                    found: s("bogus"),
                },
            ),
            (
                " ;  ;",
                E::MissingVersion {
                    expected: "v=STSv1",
                    found: s(";  ;"),
                },
            ),
            (
                "v=STSv10",
                E::WrongVersion {
                    expected: "v=STSv1",
                    found: s("v=STSv10"),
                },
            ),
            (
                "V=STSv1; id=1",
                E::WrongVersion {
                    expected: "v=STSv1",
                    found: s("V=STSv1"),
                },
            ),
            (
                " v=STSv1; id=1",
                E::LeadingWhitespace {
                    column: 1,
                    expected: "v=STSv1",
                },
            ),
            (
                "v= STSv1; id=1",
                E::WhitespaceAroundEquals {
                    column: 3,
                    field: s("v= STSv1"),
                },
            ),
            (
                "v=STSv1; id =abc",
                E::WhitespaceAroundEquals {
                    column: 12,
                    field: s("id =abc"),
                },
            ),
            (
                "v=STSv1; id= abc",
                E::WhitespaceAroundEquals {
                    column: 13,
                    field: s("id= abc"),
                },
            ),
            (
                "v=STSv1; bogus",
                E::MissingEquals {
                    column: 10,
                    field: s("bogus"),
                },
            ),
            ("v=STSv1; id=1;;", E::EmptyField { column: 15 }),
            (
                "v=STSv1; 1%=a",
                E::BadName {
                    column: 10,
                    name: s("1%"),
                    problem: NameProblem::BadChar('%'),
                },
            ),
            (
                "v=STSv1; _x=a",
                E::BadName {
                    column: 10,
                    name: s("_x"),
                    problem: NameProblem::BadFirst('_'),
                },
            ),
            (
                "v=STSv1; =a",
                E::BadName {
                    column: 10,
                    name: s(""),
                    problem: NameProblem::Empty,
                },
            ),
            (
                "v=STSv1; a12345678901234567890123456789012=1",
                E::BadName {
                    column: 10,
                    name: s("a12345678901234567890123456789012"),
                    problem: NameProblem::TooLong(33),
                },
            ),
            (
                "v=STSv1; id=a; more=",
                E::EmptyValue {
                    column: 16,
                    name: s("more"),
                },
            ),
            (
                "v=STSv1; id=a; test==",
                E::BadValue {
                    column: 21,
                    name: s("test"),
                    ch: '=',
                },
            ),
            (
                "v=STSv1; id=a\u{7f}",
                E::BadValue {
                    column: 14,
                    name: s("id"),
                    ch: '\u{7f}',
                },
            ),
            (
                "v=STSv1; id=é",
                E::BadValue {
                    column: 13,
                    name: s("id"),
                    ch: 'é',
                },
            ),
            (
                "v=STSv1; id=abc other",
                E::TrailingText {
                    column: 17,
                    field: s("id=abc"),
                    text: s("other"),
                },
            ),
            (
                "v=STSv1 id=1",
                E::TrailingText {
                    column: 9,
                    field: s("v=STSv1"),
                    text: s("id=1"),
                },
            ),
            ("v=STSv1; id=1   ", E::TrailingWhitespace { column: 14 }),
            ("v=STSv1 ", E::TrailingWhitespace { column: 8 }),
        ];
        for (input, want) in cases {
            assert_eq!(lex(input, &G), Err(want), "{input:?}");
        }
    }

    #[test]
    fn error_messages_name_the_place() {
        let e = lex("v=STSv1; id=a; test==", &G).unwrap_err();
        assert_eq!(
            e.to_string(),
            "column 21: the value of \"test\" contains '='; values may not contain '=', ';', \
             spaces, control or non-ASCII characters"
        );
    }

    #[test]
    fn join_without_spaces() {
        assert_eq!(join_txt(&["v=STSv1; ", "id=1"]).unwrap(), "v=STSv1; id=1");
        assert_eq!(join_txt(&["v=STS", "v1;id=1"]).unwrap(), "v=STSv1;id=1");
        assert_eq!(join_txt::<&[u8]>(&[]).unwrap(), "");
        assert_eq!(
            join_txt(&[b"v=STSv1;".as_slice(), b"id=\xc3\xa9"]),
            Err(TxtJoinError::NonAscii {
                string: 2,
                offset: 3,
                byte: 0xc3
            })
        );
    }

    #[test]
    fn discard_reasons() {
        let cases: &[(&str, Option<DiscardReason>)] = &[
            ("v=STSv1;id=1", None),
            ("v=STSv1 ; id=1", None),
            ("v=STSv1\t;", None),
            ("v=STSv1", Some(DiscardReason::NoDelimiter)),
            ("v=STSv1  ", Some(DiscardReason::NoDelimiter)),
            ("v=STSv1 id=1", Some(DiscardReason::NoDelimiter)),
            (" v=STSv1; id=1", Some(DiscardReason::LeadingWhitespace)),
            (
                "v=STSv10; id=1",
                Some(DiscardReason::OtherVersion {
                    found: "v=STSv10".into(),
                }),
            ),
            (
                "v=STSv12;id=20180907T090909;",
                Some(DiscardReason::OtherVersion {
                    found: "v=STSv12".into(),
                }),
            ),
            (
                "V=STSv1; id=1",
                Some(DiscardReason::CaseMismatch {
                    found: "V=STSv1".into(),
                }),
            ),
            (
                "id=20180907T090909; v=STSv1;",
                Some(DiscardReason::VersionNotFirst { column: 21 }),
            ),
            ("v=spf1 -all", Some(DiscardReason::Unrelated)),
            ("bogus", Some(DiscardReason::Unrelated)),
            ("", Some(DiscardReason::Unrelated)),
            ("  ", Some(DiscardReason::Unrelated)),
        ];
        for (input, want) in cases {
            assert_eq!(&discard_reason(input, &G), want, "{input:?}");
        }
    }

    #[test]
    fn selection_counts_after_discarding() {
        let parse = |s: &str| lex(s, &G).map(|l| l.fields.len());
        let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let one = select(&set(&["v=spf1 -all", "v=STSv1; id=1"]), &G, parse);
        assert_eq!(
            one.conclusion,
            Conclusion::One {
                index: 1,
                record: 1
            }
        );
        assert_eq!(one.total, 2);
        assert_eq!(one.label(1), "record 2 of 2");
        assert_eq!(
            one.notes,
            vec![SelectionNote::Discarded {
                index: 0,
                reason: DiscardReason::Unrelated
            }]
        );
        let none = select(&set(&["v=STSv1"]), &G, parse);
        assert_eq!(none.conclusion, Conclusion::None);
        let several = select(&set(&["v=STSv1; id=1", "v=STSv1 ;;"]), &G, parse);
        assert_eq!(
            several.conclusion,
            Conclusion::Several {
                indices: vec![0, 1]
            }
        );
        assert_eq!(
            several.notes,
            vec![
                SelectionNote::SpaceBeforeDelimiter { index: 1 },
                SelectionNote::AlsoInvalid {
                    index: 1,
                    error: TagValueError::EmptyField { column: 10 }
                }
            ]
        );
        let invalid = select(&set(&["v=STSv1; x"]), &G, parse);
        assert!(matches!(
            invalid.conclusion,
            Conclusion::Invalid { index: 0, .. }
        ));
        assert_eq!(invalid.record(), None);
        assert_eq!(one.record(), Some(&1));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn lex_never_panics(s in any::<String>()) {
            let _ = lex(&s, &G);
            let _ = discard_reason(&s, &G);
        }

        #[test]
        fn lex_never_panics_on_grammar_alphabet(s in "(v=STSv1)?[a-z0-9=; \t_.\\-%é]{0,40}") {
            if let Ok(list) = lex(&s, &G) {
                for f in &list.fields {
                    prop_assert_eq!(&s[f.column - 1..f.column - 1 + f.name.len()], f.name);
                    let v = f.value_column - 1;
                    prop_assert_eq!(&s[v..v + f.value.len()], f.value);
                }
            }
        }

        #[test]
        fn join_matches_concat(parts in proptest::collection::vec("[ -~]{0,10}", 0..5)) {
            prop_assert_eq!(join_txt(&parts).unwrap(), parts.concat());
        }
    }
}
