//! The MTA-STS policy body served at `https://mta-sts.<domain>/.well-known/mta-sts.txt`
//! (RFC 8461 §3.2): parsing with every problem reported by line, rendering, the RFC 8460
//! `policy-string`, and the MX check of §4.1.
//!
//! ```text
//! sts-policy-record  = sts-policy-field *WSP *(sts-policy-term sts-policy-field *WSP)
//!                      [sts-policy-term]
//! sts-policy-field   = version / mode / max_age / mx / extension   ; "key:" *WSP value
//! sts-policy-term    = LF / CRLF
//! ```
//!
//! Decisions taken strictly from that ABNF:
//! - Lines end with LF or CRLF, mixed freely; a final line end is optional. A lone CR, VT,
//!   FF (or a Unicode line separator) is not a line end: the line holding it is an error.
//! - A blank (or whitespace-only) line is an error: every `sts-policy-term` except the last
//!   must be followed by a field, so `\n\n` or a trailing blank line is outside the grammar.
//! - Whitespace after `:` and at the end of a line is allowed (`":" *WSP`, `field *WSP`);
//!   whitespace before `:` or at the start of a line is not.
//! - Keys and the values `STSv1`, `enforce`, `testing`, `none` are case-sensitive (`%s`).
//! - The order of fields is free; `version`, `mode` and `max_age` are required once, a
//!   duplicate is ignored (first wins, RFC 8461 §3.2) and noted; `mx` repeats.
//! - Unknown keys are extensions: accepted if their name and value are well-formed, noted.
//!
//! Pure: no I/O; the fetcher hands over the body and the evaluate stage judges it.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::domain::DomainName;
use crate::mtasts::pattern::{MxPattern, MxPatternError};
use crate::tagvalue::{NameProblem, check_name, is_wsp};

/// RFC 8461 §3.2: "max_age: Max lifetime of the policy (plaintext non-negative integer
/// seconds, maximum value of 31557600)".
pub const MAX_AGE_LIMIT: u32 = 31_557_600;

/// The only policy version (RFC 8461 §3.2 `%s"STSv1"`).
pub const POLICY_VERSION: &str = "STSv1";

/// The policy mode (RFC 8461 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Senders must not deliver to MX hosts that fail the policy.
    Enforce,
    /// Senders deliver anyway and report failures.
    Testing,
    /// Senders behave as if there were no policy.
    None,
}

impl Mode {
    /// The wire value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Enforce => "enforce",
            Self::Testing => "testing",
            Self::None => "none",
        }
    }

    /// Parses the wire value, case-sensitively (RFC 8461 §3.2 `%s`).
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "enforce" => Some(Self::Enforce),
            "testing" => Some(Self::Testing),
            "none" => Some(Self::None),
            _ => None,
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A valid MTA-STS policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// The mode.
    pub mode: Mode,
    /// The cache lifetime in seconds, at most [`MAX_AGE_LIMIT`].
    pub max_age: u32,
    /// The `mx` patterns in the order written (may be empty only with mode `none`).
    pub mx: Vec<MxPattern>,
    /// Unknown `key: value` lines, in order (RFC 8461 §3.2: ignored by senders).
    pub extensions: Vec<(String, String)>,
}

/// One problem that makes a policy invalid. Line numbers are 1-based.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The body is empty.
    #[error("the policy is empty")]
    EmptyBody,
    /// No `version` line.
    #[error("the policy has no \"version: STSv1\" line")]
    MissingVersion,
    /// No `mode` line.
    #[error("the policy has no \"mode:\" line (enforce, testing or none)")]
    MissingMode,
    /// No `max_age` line.
    #[error("the policy has no \"max_age:\" line")]
    MissingMaxAge,
    /// Mode `enforce` or `testing` without any `mx` line.
    #[error("mode {mode} needs at least one \"mx:\" line naming the MX hosts")]
    NoMx {
        /// The mode.
        mode: Mode,
    },
    /// `version` is not exactly `STSv1`.
    #[error("line {line}: version is {value:?}; it must be \"STSv1\" (case-sensitive)")]
    BadVersion {
        /// The line.
        line: usize,
        /// The value as written.
        value: String,
    },
    /// `mode` is not exactly `enforce`, `testing` or `none`.
    #[error(
        "line {line}: mode is {value:?}; it must be \"enforce\", \"testing\" or \"none\" (lower-case)"
    )]
    BadMode {
        /// The line.
        line: usize,
        /// The value as written.
        value: String,
    },
    /// `max_age` is not 1 to 10 digits.
    #[error("line {line}: max_age is {value:?}; it must be 1 to 10 digits (seconds), nothing else")]
    BadMaxAge {
        /// The line.
        line: usize,
        /// The value as written.
        value: String,
    },
    /// `max_age` above 31557600.
    #[error("line {line}: max_age is {value}; the maximum is 31557600 (one year)")]
    MaxAgeTooLarge {
        /// The line.
        line: usize,
        /// The value.
        value: u64,
    },
    /// An `mx` value that is not a valid pattern.
    #[error("line {line}: mx {value:?} is not valid: {error}")]
    BadMx {
        /// The line.
        line: usize,
        /// The value as written.
        value: String,
        /// Why.
        error: MxPatternError,
    },
    /// A line without `:`.
    #[error("line {line}: {text:?} is not a \"key: value\" line")]
    NoColon {
        /// The line.
        line: usize,
        /// The line as written.
        text: String,
    },
    /// Whitespace between the key and `:`.
    #[error("line {line}: whitespace between {key:?} and ':'; write \"{key}: value\"")]
    WhitespaceBeforeColon {
        /// The line.
        line: usize,
        /// The key (without the whitespace).
        key: String,
    },
    /// The line starts with whitespace.
    #[error("line {line}: the line starts with whitespace; keys start at the beginning of a line")]
    LeadingWhitespace {
        /// The line.
        line: usize,
    },
    /// A key that is not a valid extension name.
    #[error("line {line}: {key:?} is not a valid key: {problem}")]
    BadKey {
        /// The line.
        line: usize,
        /// The key as written.
        key: String,
        /// What is wrong with it.
        problem: NameProblem,
    },
    /// An extension with an empty value.
    #[error("line {line}: {key:?} has an empty value")]
    EmptyExtensionValue {
        /// The line.
        line: usize,
        /// The key.
        key: String,
    },
    /// An extension value with a control character (or a tab inside it).
    #[error(
        "line {line}, column {column}: the value of {key:?} contains {ch:?}, which is not allowed"
    )]
    BadExtensionValue {
        /// The line.
        line: usize,
        /// 1-based byte column of the character.
        column: usize,
        /// The key.
        key: String,
        /// The character.
        ch: char,
    },
    /// A character used as if it ended a line, which only LF and CRLF do.
    #[error(
        "line {line}, column {column}: {ch:?} is not a line end; policy lines end with LF or CRLF"
    )]
    NotALineEnd {
        /// The line.
        line: usize,
        /// 1-based byte column of the character.
        column: usize,
        /// The character (lone CR, VT, FF, NEL, LS, PS).
        ch: char,
    },
    /// An empty or whitespace-only line.
    #[error("line {line}: blank line; the policy grammar allows no empty lines")]
    BlankLine {
        /// The line.
        line: usize,
    },
}

impl PolicyError {
    /// The 1-based line the problem is on, if it is on one.
    pub fn line(&self) -> Option<usize> {
        match self {
            Self::EmptyBody
            | Self::MissingVersion
            | Self::MissingMode
            | Self::MissingMaxAge
            | Self::NoMx { .. } => None,
            Self::BadVersion { line, .. }
            | Self::BadMode { line, .. }
            | Self::BadMaxAge { line, .. }
            | Self::MaxAgeTooLarge { line, .. }
            | Self::BadMx { line, .. }
            | Self::NoColon { line, .. }
            | Self::WhitespaceBeforeColon { line, .. }
            | Self::LeadingWhitespace { line }
            | Self::BadKey { line, .. }
            | Self::EmptyExtensionValue { line, .. }
            | Self::BadExtensionValue { line, .. }
            | Self::NotALineEnd { line, .. }
            | Self::BlankLine { line } => Some(*line),
        }
    }
}

/// Something worth saying about a policy that does not make it invalid.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PolicyNote {
    /// A second `version`, `mode`, `max_age` or extension line: ignored, the first one wins.
    DuplicateKey {
        /// The ignored line.
        line: usize,
        /// The key.
        key: String,
        /// The ignored value.
        value: String,
        /// The line that is used.
        first_line: usize,
    },
    /// The same `mx` pattern twice.
    DuplicateMx {
        /// The repeating line.
        line: usize,
        /// The pattern.
        pattern: MxPattern,
        /// The line where it first appears.
        first_line: usize,
    },
    /// A key the RFC does not define: senders ignore it.
    UnknownKey {
        /// The line.
        line: usize,
        /// The key.
        key: String,
        /// A defined key it was probably meant to be (`Mode`, `max-age`).
        similar_to: Option<&'static str>,
    },
}

impl PolicyNote {
    /// The 1-based line the note is about.
    pub fn line(&self) -> usize {
        match self {
            Self::DuplicateKey { line, .. }
            | Self::DuplicateMx { line, .. }
            | Self::UnknownKey { line, .. } => *line,
        }
    }
}

impl fmt::Display for PolicyNote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::DuplicateKey {
                line,
                key,
                value,
                first_line,
            } => write!(
                f,
                "line {line}: \"{key}: {value}\" is ignored; {key:?} was already given on line \
                 {first_line} and the first one wins"
            ),
            Self::DuplicateMx {
                line,
                pattern,
                first_line,
            } => write!(f, "line {line}: mx {pattern} repeats line {first_line}"),
            Self::UnknownKey {
                line,
                key,
                similar_to: Some(known),
            } => write!(
                f,
                "line {line}: {key:?} is not a policy key (keys are case-sensitive; did you mean \
                 {known:?}?); senders ignore the line"
            ),
            Self::UnknownKey {
                line,
                key,
                similar_to: None,
            } => write!(
                f,
                "line {line}: unknown key {key:?}; senders ignore the line"
            ),
        }
    }
}

/// What the parser understood, valid or not, for `lint` to reason about a broken policy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartialPolicy {
    /// The first valid mode, if any.
    pub mode: Option<Mode>,
    /// The first max_age that is 1*10DIGIT (possibly above the limit).
    pub max_age: Option<u64>,
    /// The valid mx patterns.
    pub mx: Vec<MxPattern>,
}

/// The full result of parsing a policy body: the policy when valid, every error, and notes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyParse {
    /// The policy; `Some` exactly when `errors` is empty.
    pub policy: Option<Policy>,
    /// Every problem, in line order, then the missing fields.
    pub errors: Vec<PolicyError>,
    /// Non-fatal observations, in line order.
    pub notes: Vec<PolicyNote>,
    /// What was understood, even when the policy is invalid.
    pub partial: PartialPolicy,
}

/// A policy body that is not a valid policy: every problem found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid MTA-STS policy: {}", list(errors))]
pub struct PolicyInvalid {
    /// Every problem, in line order, then the missing fields.
    pub errors: Vec<PolicyError>,
}

fn list(errors: &[PolicyError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Characters that some writers use as line breaks but RFC 8461 §3.2 does not (only LF and
/// CRLF end a line). CR here is a CR not followed by LF.
fn is_false_line_end(c: char) -> bool {
    matches!(
        c,
        '\r' | '\x0b' | '\x0c' | '\u{85}' | '\u{2028}' | '\u{2029}'
    )
}

/// The lines of a body: LF or CRLF ends a line; the empty remainder after a final line end
/// is not a line. Returns the lines without their terminators.
fn lines(body: &str) -> Vec<&str> {
    if body.is_empty() {
        return Vec::new();
    }
    let mut out: Vec<&str> = body
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    if body.ends_with('\n') {
        out.pop();
    }
    out
}

fn similar_key(key: &str) -> Option<&'static str> {
    let folded: String = key
        .chars()
        .filter(|c| !matches!(c, '_' | '-'))
        .map(|c| c.to_ascii_lowercase())
        .collect();
    ["version", "mode", "max_age", "mx"]
        .into_iter()
        .find(|known| known.replace('_', "") == folded)
}

/// Where a required key was first seen.
#[derive(Default)]
struct Seen {
    version: Option<usize>,
    mode: Option<usize>,
    max_age: Option<usize>,
}

/// Parses a policy body, collecting every problem.
pub fn parse_policy(body: &str) -> PolicyParse {
    let mut errors = Vec::new();
    let mut notes = Vec::new();
    let mut partial = PartialPolicy::default();
    let mut seen = Seen::default();
    let mut version_ok = false;
    let mut mx_lines = Vec::new();
    // Where each distinct pattern and extension key was first seen: hashed, so a policy of
    // many lines is checked in linear time.
    let mut mx_seen_at: HashMap<MxPattern, usize> = HashMap::new();
    let mut extensions: Vec<(String, String)> = Vec::new();
    let mut extension_lines: HashMap<String, usize> = HashMap::new();

    if body.is_empty() {
        return PolicyParse {
            policy: None,
            errors: vec![PolicyError::EmptyBody],
            notes,
            partial,
        };
    }

    for (i, text) in lines(body).into_iter().enumerate() {
        let line = i + 1;
        if let Some((at, ch)) = text.char_indices().find(|&(_, c)| is_false_line_end(c)) {
            errors.push(PolicyError::NotALineEnd {
                line,
                column: at + 1,
                ch,
            });
            continue;
        }
        if text.trim_matches(is_wsp).is_empty() {
            errors.push(PolicyError::BlankLine { line });
            continue;
        }
        if text.starts_with(is_wsp) {
            errors.push(PolicyError::LeadingWhitespace { line });
            continue;
        }
        let Some((raw_key, raw_value)) = text.split_once(':') else {
            errors.push(PolicyError::NoColon {
                line,
                text: text.to_owned(),
            });
            continue;
        };
        if raw_key.ends_with(is_wsp) {
            errors.push(PolicyError::WhitespaceBeforeColon {
                line,
                key: raw_key.trim_end_matches(is_wsp).to_owned(),
            });
            continue;
        }
        let key = raw_key;
        // sts-policy-field-delim = ":" *WSP, and each field may be followed by *WSP.
        let value_start = raw_value.len() - raw_value.trim_start_matches(is_wsp).len();
        let value = raw_value.trim_matches(is_wsp);
        let value_column = key.len() + 1 + value_start + 1;

        let first = match key {
            "version" => seen.version,
            "mode" => seen.mode,
            "max_age" => seen.max_age,
            _ => None,
        };
        if let Some(first_line) = first {
            notes.push(PolicyNote::DuplicateKey {
                line,
                key: key.to_owned(),
                value: value.to_owned(),
                first_line,
            });
            continue;
        }
        match key {
            "version" => {
                seen.version = Some(line);
                if value == POLICY_VERSION {
                    version_ok = true;
                } else {
                    errors.push(PolicyError::BadVersion {
                        line,
                        value: value.to_owned(),
                    });
                }
            }
            "mode" => {
                seen.mode = Some(line);
                match Mode::parse(value) {
                    Some(mode) => partial.mode = Some(mode),
                    None => errors.push(PolicyError::BadMode {
                        line,
                        value: value.to_owned(),
                    }),
                }
            }
            "max_age" => {
                seen.max_age = Some(line);
                // sts-policy-max-age-value = 1*10(DIGIT)
                if value.is_empty()
                    || value.len() > 10
                    || !value.bytes().all(|b| b.is_ascii_digit())
                {
                    errors.push(PolicyError::BadMaxAge {
                        line,
                        value: value.to_owned(),
                    });
                } else {
                    let n: u64 = value
                        .parse()
                        .expect("1 to 10 ASCII digits always fit in a u64");
                    partial.max_age = Some(n);
                    if n > u64::from(MAX_AGE_LIMIT) {
                        errors.push(PolicyError::MaxAgeTooLarge { line, value: n });
                    }
                }
            }
            "mx" => {
                mx_lines.push(line);
                match MxPattern::parse(value) {
                    Ok(pattern) => {
                        match mx_seen_at.entry(pattern.clone()) {
                            Entry::Occupied(first) => notes.push(PolicyNote::DuplicateMx {
                                line,
                                pattern: pattern.clone(),
                                first_line: *first.get(),
                            }),
                            Entry::Vacant(slot) => {
                                slot.insert(line);
                            }
                        }
                        partial.mx.push(pattern);
                    }
                    Err(error) => errors.push(PolicyError::BadMx {
                        line,
                        value: value.to_owned(),
                        error,
                    }),
                }
            }
            _ => {
                if let Err(problem) = check_name(key) {
                    errors.push(PolicyError::BadKey {
                        line,
                        key: key.to_owned(),
                        problem,
                    });
                    continue;
                }
                if value.is_empty() {
                    errors.push(PolicyError::EmptyExtensionValue {
                        line,
                        key: key.to_owned(),
                    });
                    continue;
                }
                // sts-policy-ext-value: VCHAR or UTF-8, with inner spaces (not tabs).
                if let Some((at, ch)) = value.char_indices().find(|&(_, c)| c.is_ascii_control()) {
                    errors.push(PolicyError::BadExtensionValue {
                        line,
                        column: value_column + at,
                        key: key.to_owned(),
                        ch,
                    });
                    continue;
                }
                if let Some(&first_line) = extension_lines.get(key) {
                    notes.push(PolicyNote::DuplicateKey {
                        line,
                        key: key.to_owned(),
                        value: value.to_owned(),
                        first_line,
                    });
                    continue;
                }
                notes.push(PolicyNote::UnknownKey {
                    line,
                    key: key.to_owned(),
                    similar_to: similar_key(key),
                });
                extensions.push((key.to_owned(), value.to_owned()));
                extension_lines.insert(key.to_owned(), line);
            }
        }
    }

    if seen.version.is_none() {
        errors.push(PolicyError::MissingVersion);
    }
    if seen.mode.is_none() {
        errors.push(PolicyError::MissingMode);
    }
    if seen.max_age.is_none() {
        errors.push(PolicyError::MissingMaxAge);
    }
    // RFC 8461 §3.2: mx is "required at least once, except when mode is none".
    if let Some(mode @ (Mode::Enforce | Mode::Testing)) = partial.mode
        && mx_lines.is_empty()
    {
        errors.push(PolicyError::NoMx { mode });
    }

    let policy = match (errors.is_empty(), version_ok, partial.mode, partial.max_age) {
        (true, true, Some(mode), Some(max_age)) => Some(Policy {
            mode,
            max_age: u32::try_from(max_age).expect("checked against MAX_AGE_LIMIT above"),
            mx: partial.mx.clone(),
            extensions,
        }),
        _ => None,
    };
    debug_assert_eq!(policy.is_some(), errors.is_empty());
    PolicyParse {
        policy,
        errors,
        notes,
        partial,
    }
}

impl Policy {
    /// Parses a policy body; on failure, every problem is returned. Use [`parse_policy`] to
    /// get the notes too.
    pub fn parse(body: &str) -> Result<Self, PolicyInvalid> {
        let parsed = parse_policy(body);
        parsed.policy.ok_or(PolicyInvalid {
            errors: parsed.errors,
        })
    }

    /// The canonical body: `version`, `mode`, each `mx`, `max_age`, then extensions, each
    /// line ending in LF.
    pub fn render(&self) -> String {
        let mut out = format!("version: {POLICY_VERSION}\nmode: {}\n", self.mode);
        for mx in &self.mx {
            out.push_str(&format!("mx: {mx}\n"));
        }
        out.push_str(&format!("max_age: {}\n", self.max_age));
        for (key, value) in &self.extensions {
            out.push_str(&format!("{key}: {value}\n"));
        }
        out
    }

    /// RFC 8461 §4.1: the first `mx` pattern that `host` matches, if any.
    pub fn matching_pattern(&self, host: &DomainName) -> Option<&MxPattern> {
        self.mx.iter().find(|p| p.matches(host))
    }
}

/// The RFC 8460 §4.4 `policy-string` for an MTA-STS policy body as fetched: one element per
/// line, exactly as served (line ends removed, nothing else changed), "including any errors
/// that may be present". Each `mx` line is therefore its own element.
pub fn policy_string(body: &str) -> Vec<String> {
    lines(body).into_iter().map(str::to_owned).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn mx(s: &str) -> MxPattern {
        MxPattern::parse(s).unwrap()
    }

    #[test]
    fn rfc_example() {
        let p = Policy::parse(
            "version: STSv1\nmode: enforce\nmx: mail.example.com\nmx: *.example.net\nmx: \
             backupmx.example.com\nmax_age: 604800",
        )
        .unwrap();
        assert_eq!(p.mode, Mode::Enforce);
        assert_eq!(p.max_age, 604_800);
        assert_eq!(
            p.mx,
            vec![
                mx("mail.example.com"),
                mx("*.example.net"),
                mx("backupmx.example.com")
            ]
        );
        assert_eq!(
            p.render(),
            "version: STSv1\nmode: enforce\nmx: mail.example.com\nmx: *.example.net\nmx: \
             backupmx.example.com\nmax_age: 604800\n"
        );
        let host = DomainName::parse("mx7.example.net").unwrap();
        assert_eq!(p.matching_pattern(&host), Some(&mx("*.example.net")));
        assert_eq!(
            p.matching_pattern(&DomainName::parse("example.net").unwrap()),
            None
        );
    }

    #[test]
    fn each_error_with_its_line() {
        use PolicyError as E;
        const HEAD: &str = "version: STSv1\nmode: none\nmax_age: 1\n";
        let s = String::from;
        let cases: Vec<(String, Vec<E>)> = vec![
            (s(""), vec![E::EmptyBody]),
            (s("mode: none\nmax_age: 1"), vec![E::MissingVersion]),
            (s("version: STSv1\nmax_age: 1"), vec![E::MissingMode]),
            (s("version: STSv1\nmode: none"), vec![E::MissingMaxAge]),
            (
                s("version: STSv1\nmode: testing\nmax_age: 1"),
                vec![E::NoMx {
                    mode: Mode::Testing,
                }],
            ),
            (
                s("version: stsv1\nmode: none\nmax_age: 1"),
                vec![E::BadVersion {
                    line: 1,
                    value: s("stsv1"),
                }],
            ),
            (
                s("version: STSv1\nmode: Enforce\nmax_age: 1\nmx: a.example"),
                vec![E::BadMode {
                    line: 2,
                    value: s("Enforce"),
                }],
            ),
            (
                s("version: STSv1\nmode: none\nmax_age: 01234567890"),
                vec![E::BadMaxAge {
                    line: 3,
                    value: s("01234567890"),
                }],
            ),
            (
                s("version: STSv1\nmode: none\nmax_age: -1"),
                vec![E::BadMaxAge {
                    line: 3,
                    value: s("-1"),
                }],
            ),
            (
                s("version: STSv1\nmode: none\nmax_age:"),
                vec![E::BadMaxAge {
                    line: 3,
                    value: s(""),
                }],
            ),
            (
                s("version: STSv1\nmode: none\nmax_age: 9999999999"),
                vec![E::MaxAgeTooLarge {
                    line: 3,
                    value: 9_999_999_999,
                }],
            ),
            (
                s("version: STSv1\nmode: enforce\nmax_age: 1\nmx: *.*.example"),
                vec![E::BadMx {
                    line: 4,
                    value: s("*.*.example"),
                    error: MxPatternError::RepeatedWildcard {
                        input: s("*.*.example"),
                    },
                }],
            ),
            (
                format!("{HEAD}not_a_pair"),
                vec![E::NoColon {
                    line: 4,
                    text: s("not_a_pair"),
                }],
            ),
            (
                format!("{HEAD}foo : bar"),
                vec![E::WhitespaceBeforeColon {
                    line: 4,
                    key: s("foo"),
                }],
            ),
            (
                s("version: STSv1\n mode: none\nmax_age: 1"),
                vec![E::LeadingWhitespace { line: 2 }, E::MissingMode],
            ),
            (
                format!("{HEAD}_bad:test"),
                vec![E::BadKey {
                    line: 4,
                    key: s("_bad"),
                    problem: NameProblem::BadFirst('_'),
                }],
            ),
            (
                format!("{HEAD}a12345678901234567890123456789012:1"),
                vec![E::BadKey {
                    line: 4,
                    key: s("a12345678901234567890123456789012"),
                    problem: NameProblem::TooLong(33),
                }],
            ),
            (
                format!("{HEAD}ext:   "),
                vec![E::EmptyExtensionValue {
                    line: 4,
                    key: s("ext"),
                }],
            ),
            (
                format!("{HEAD}ext: a\tb"),
                vec![E::BadExtensionValue {
                    line: 4,
                    column: 7,
                    key: s("ext"),
                    ch: '\t',
                }],
            ),
            (
                s("version: STSv1\u{b}mode: none\u{b}max_age: 86400"),
                vec![
                    E::NotALineEnd {
                        line: 1,
                        column: 15,
                        ch: '\u{b}',
                    },
                    E::MissingVersion,
                    E::MissingMode,
                    E::MissingMaxAge,
                ],
            ),
            (
                s("version: STSv1\rmode: none\nmax_age: 1"),
                vec![
                    E::NotALineEnd {
                        line: 1,
                        column: 15,
                        ch: '\r',
                    },
                    E::MissingVersion,
                    E::MissingMode,
                ],
            ),
            (
                s("version: STSv1\n\nmode: none\nmax_age: 1\n"),
                vec![E::BlankLine { line: 2 }],
            ),
            (format!("{HEAD}\n"), vec![E::BlankLine { line: 4 }]),
            (format!("{HEAD} \t\r\n"), vec![E::BlankLine { line: 4 }]),
            (
                s("garbage"),
                vec![
                    E::NoColon {
                        line: 1,
                        text: s("garbage"),
                    },
                    E::MissingVersion,
                    E::MissingMode,
                    E::MissingMaxAge,
                ],
            ),
        ];
        for (input, want) in cases {
            let parsed = parse_policy(&input);
            assert_eq!(parsed.errors, want, "{input:?}");
            assert_eq!(parsed.policy, None, "{input:?}");
        }
    }

    #[test]
    fn error_messages() {
        let e =
            Policy::parse("version: STSv1\nmode: Enforce\nmax_age: 1\nmx: a.example").unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid MTA-STS policy: line 2: mode is \"Enforce\"; it must be \"enforce\", \
             \"testing\" or \"none\" (lower-case)"
        );
        assert_eq!(e.errors[0].line(), Some(2));
        assert_eq!(PolicyError::MissingMode.line(), None);
    }

    #[test]
    fn notes_do_not_invalidate() {
        let body = "version: STSv1\r\nmode: enforce\nmode: testing\nmx: a.example\nmx: \
                    a.example\nMax_Age: 5\nmax_age: 86400 \t\nmax_age: 1\nfoo: bar baz\nfoo: x\n";
        let parsed = parse_policy(body);
        let p = parsed.policy.unwrap();
        assert_eq!(p.mode, Mode::Enforce);
        assert_eq!(p.max_age, 86400);
        assert_eq!(p.mx, vec![mx("a.example"), mx("a.example")]);
        assert_eq!(
            p.extensions,
            vec![
                ("Max_Age".to_owned(), "5".to_owned()),
                ("foo".to_owned(), "bar baz".to_owned())
            ]
        );
        assert_eq!(
            parsed.notes,
            vec![
                PolicyNote::DuplicateKey {
                    line: 3,
                    key: "mode".into(),
                    value: "testing".into(),
                    first_line: 2
                },
                PolicyNote::DuplicateMx {
                    line: 5,
                    pattern: mx("a.example"),
                    first_line: 4
                },
                PolicyNote::UnknownKey {
                    line: 6,
                    key: "Max_Age".into(),
                    similar_to: Some("max_age")
                },
                PolicyNote::DuplicateKey {
                    line: 8,
                    key: "max_age".into(),
                    value: "1".into(),
                    first_line: 7
                },
                PolicyNote::UnknownKey {
                    line: 9,
                    key: "foo".into(),
                    similar_to: None
                },
                PolicyNote::DuplicateKey {
                    line: 10,
                    key: "foo".into(),
                    value: "x".into(),
                    first_line: 9
                },
            ]
        );
        assert_eq!(
            parsed.notes[2].to_string(),
            "line 6: \"Max_Age\" is not a policy key (keys are case-sensitive; did you mean \
             \"max_age\"?); senders ignore the line"
        );
    }

    #[test]
    fn first_duplicate_wins_even_when_invalid() {
        let parsed =
            parse_policy("version: STSv1\nmode: none\nmax_age: 99999999\nmax_age: 86400\n");
        assert_eq!(
            parsed.errors,
            vec![PolicyError::MaxAgeTooLarge {
                line: 3,
                value: 99_999_999
            }]
        );
        assert_eq!(parsed.partial.max_age, Some(99_999_999));
    }

    /// 200,000 mx lines, half of them repeats: every repeat is noted against its first line
    /// (the repeats are found through a hash map, so this takes well under a second; a
    /// pairwise check took 37 s).
    #[test]
    fn duplicates_among_200k_mx_lines() {
        let mut body = String::from("version: STSv1\nmode: enforce\nmax_age: 86400\n");
        for i in 0..100_000 {
            body.push_str(&format!("mx: mx{i}.example\nmx: mx{i}.example\n"));
        }
        let parsed = parse_policy(&body);
        assert!(parsed.errors.is_empty(), "{:?}", &parsed.errors[..1]);
        assert_eq!(parsed.notes.len(), 100_000);
        assert_eq!(
            parsed.notes[99_999],
            PolicyNote::DuplicateMx {
                line: 200_003,
                pattern: mx("mx99999.example"),
                first_line: 200_002
            }
        );
    }

    #[test]
    fn partial_survives_errors() {
        let parsed = parse_policy("version: STSv1\nmode: enforce\nmx: a.example\nmx: *x.example");
        assert_eq!(parsed.partial.mode, Some(Mode::Enforce));
        assert_eq!(parsed.partial.mx, vec![mx("a.example")]);
        assert_eq!(parsed.partial.max_age, None);
        assert_eq!(parsed.errors.len(), 2);
    }

    #[test]
    fn utf8_extension_value() {
        let p = Policy::parse("version: STSv1\nmode: none\nmax_age: 0\ncomment: grüße aus köln")
            .unwrap();
        assert_eq!(p.extensions[0].1, "grüße aus köln");
    }

    #[test]
    fn policy_string_echoes_lines() {
        let cases: &[(&str, &[&str])] = &[
            ("", &[]),
            ("version: STSv1\n", &["version: STSv1"]),
            (
                "version: STSv1\r\nmode: Enforce \nmx: a\nmx: b",
                &["version: STSv1", "mode: Enforce ", "mx: a", "mx: b"],
            ),
            ("a\n\nb\n", &["a", "", "b"]),
            ("a\rb", &["a\rb"]),
        ];
        for (body, want) in cases {
            assert_eq!(policy_string(body), *want, "{body:?}");
        }
    }

    #[test]
    fn mode_serde_lowercase() {
        assert_eq!(
            serde_json::to_string(&Mode::Enforce).unwrap(),
            "\"enforce\""
        );
        assert_eq!(
            serde_json::from_str::<Mode>("\"none\"").unwrap(),
            Mode::None
        );
        assert!(serde_json::from_str::<Mode>("\"Enforce\"").is_err());
    }

    fn arb_policy() -> impl Strategy<Value = Policy> {
        // A label starting "xn--" is an A-label that must be valid Punycode ("xn---o" is not),
        // which the name parser rightly refuses: none is generated.
        let label = "[a-z0-9]([a-z0-9-]{0,6}[a-z0-9])?"
            .prop_filter("an A-label must be Punycode", |l| !l.starts_with("xn--"));
        let pattern = (
            any::<bool>(),
            proptest::collection::vec(label, 1..3),
            "[a-z]{2,5}",
        )
            .prop_map(|(w, labels, tld)| {
                let d = format!("{}.{tld}", labels.join("."));
                MxPattern::parse(&if w { format!("*.{d}") } else { d }).unwrap()
            });
        (
            prop_oneof![Just(Mode::Enforce), Just(Mode::Testing), Just(Mode::None)],
            0..=MAX_AGE_LIMIT,
            proptest::collection::vec(pattern, 0..4),
            proptest::collection::btree_map(
                "[a-zA-Z0-9][a-zA-Z0-9_.-]{0,31}".prop_filter("not a defined key", |k| {
                    !["version", "mode", "max_age", "mx"].contains(&k.as_str())
                }),
                "[!-~é]([ !-~é]{0,10}[!-~é])?",
                0..3,
            ),
        )
            .prop_filter("enforce and testing need mx", |(mode, _, mx, _)| {
                *mode == Mode::None || !mx.is_empty()
            })
            .prop_map(|(mode, max_age, mx, ext)| Policy {
                mode,
                max_age,
                mx,
                extensions: ext.into_iter().collect(),
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn parse_never_panics(s in any::<String>()) {
            let parsed = parse_policy(&s);
            prop_assert_eq!(parsed.policy.is_some(), parsed.errors.is_empty());
            let _ = policy_string(&s);
        }

        #[test]
        fn parse_never_panics_on_alphabet(
            s in "(version: STSv1\n)?([a-z_]{0,8}:[ \t]?[a-zA-Z0-9*. \t_-]{0,12}(\n|\r\n|\r|\u{b}))*"
        ) {
            let parsed = parse_policy(&s);
            prop_assert_eq!(parsed.policy.is_some(), parsed.errors.is_empty());
        }

        #[test]
        fn round_trip(p in arb_policy()) {
            let rendered = p.render();
            prop_assert_eq!(Policy::parse(&rendered), Ok(p.clone()));
            let crlf = rendered.replace('\n', "\r\n");
            prop_assert_eq!(Policy::parse(&crlf), Ok(p.clone()));
            prop_assert_eq!(policy_string(&rendered).len(), rendered.lines().count());
        }
    }
}
