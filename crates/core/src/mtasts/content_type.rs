//! The Content-Type of the policy response. RFC 8461 §3.2: "senders SHOULD validate that the
//! media type is "text/plain" ... All parameters other than charset=utf-8 or
//! charset=us-ascii are ignored."
//!
//! The header value is parsed as an RFC 9110 §8.3.1 media type: `type "/" subtype
//! *(OWS ";" OWS [parameter])`, type and subtype case-insensitive, parameters allowed. Only
//! the `charset` parameter matters: `utf-8` and `us-ascii` (case-insensitive, quoted or not)
//! are fine; another charset gets its own verdict so the caller can decide. Pure: no I/O;
//! the fetcher records the header and the evaluate stage decides how strict to be.

use std::fmt;

/// What the Content-Type header of the policy response says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContentTypeVerdict {
    /// `text/plain`, with no charset or with `utf-8` / `us-ascii`.
    TextPlain,
    /// `text/plain` with another charset.
    OtherCharset {
        /// The header value as received.
        value: String,
        /// The charset named.
        charset: String,
    },
    /// The response had no Content-Type header.
    Missing,
    /// Any other media type, or a value that is not a media type at all.
    NotTextPlain {
        /// The header value as received.
        value: String,
    },
}

impl fmt::Display for ContentTypeVerdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TextPlain => f.write_str("text/plain"),
            Self::OtherCharset { value, charset } => write!(
                f,
                "{value:?} (text/plain, but charset {charset:?} is neither utf-8 nor us-ascii)"
            ),
            Self::Missing => f.write_str("missing"),
            Self::NotTextPlain { value } => write!(f, "{value:?} (not text/plain)"),
        }
    }
}

/// RFC 9110 §5.6.2 `tchar`.
fn is_tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

fn is_token(s: &str) -> bool {
    !s.is_empty() && s.chars().all(is_tchar)
}

/// RFC 9110 `OWS`.
fn trim_ows(s: &str) -> &str {
    s.trim_matches(|c| c == ' ' || c == '\t')
}

/// Splits a quoted-string (RFC 9110 §5.6.4) off the front of `s` (which starts with `"`):
/// the unescaped content and the rest after the closing quote.
fn quoted_string(s: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut chars = s.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, &s[i + 1..])),
            '\\' => {
                let (_, escaped) = chars.next()?;
                if !(escaped == '\t' || (' '..='\x7e').contains(&escaped)) {
                    return None;
                }
                out.push(escaped);
            }
            c if c == '\t' || (' '..='\x7e').contains(&c) => out.push(c),
            _ => return None,
        }
    }
    None
}

/// Parses `*( OWS ";" OWS [ parameter ] )` (RFC 9110 §5.6.6) into (name, value) pairs.
fn parameters(mut rest: &str) -> Option<Vec<(&str, String)>> {
    let mut out = Vec::new();
    loop {
        rest = trim_ows(rest);
        if rest.is_empty() {
            return Some(out);
        }
        rest = trim_ows(rest.strip_prefix(';')?);
        if rest.is_empty() || rest.starts_with(';') {
            // An empty parameter is allowed by the grammar.
            continue;
        }
        let (name, after) = rest.split_once('=')?;
        if !is_token(name) {
            return None;
        }
        let (value, after) = if after.starts_with('"') {
            quoted_string(after)?
        } else {
            let end = after.find([';', ' ', '\t']).unwrap_or(after.len());
            let token = &after[..end];
            if !is_token(token) {
                return None;
            }
            (token.to_owned(), &after[end..])
        };
        out.push((name, value));
        rest = after;
    }
}

/// Judges the Content-Type header of the policy response (`None` = no header).
pub fn judge_content_type(header: Option<&str>) -> ContentTypeVerdict {
    let Some(value) = header else {
        return ContentTypeVerdict::Missing;
    };
    let not_text_plain = || ContentTypeVerdict::NotTextPlain {
        value: value.to_owned(),
    };
    let trimmed = trim_ows(value);
    let media_end = trimmed.find(';').unwrap_or(trimmed.len());
    let media_type = trim_ows(&trimmed[..media_end]);
    let Some((ty, subtype)) = media_type.split_once('/') else {
        return not_text_plain();
    };
    if !(is_token(ty) && is_token(subtype)) {
        return not_text_plain();
    }
    if !(ty.eq_ignore_ascii_case("text") && subtype.eq_ignore_ascii_case("plain")) {
        return not_text_plain();
    }
    let Some(parameters) = parameters(&trimmed[media_end..]) else {
        return not_text_plain();
    };
    // RFC 8461 §3.2 asks only for text/plain. The body is ASCII, which utf-8 and us-ascii
    // both read unchanged; any other charset gets its own verdict. The first charset counts.
    match parameters
        .into_iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("charset"))
    {
        Some((_, charset))
            if !charset.eq_ignore_ascii_case("utf-8")
                && !charset.eq_ignore_ascii_case("us-ascii") =>
        {
            ContentTypeVerdict::OtherCharset {
                value: value.to_owned(),
                charset,
            }
        }
        _ => ContentTypeVerdict::TextPlain,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn verdicts() {
        let plain = ContentTypeVerdict::TextPlain;
        let not = |v: &str| ContentTypeVerdict::NotTextPlain { value: v.into() };
        let other = |v: &str, c: &str| ContentTypeVerdict::OtherCharset {
            value: v.into(),
            charset: c.into(),
        };
        let cases = [
            ("text/plain", plain.clone()),
            ("TEXT/Plain", plain.clone()),
            (" text/plain ", plain.clone()),
            ("text/plain;charset=utf-8", plain.clone()),
            ("text/plain; charset=\"US-ASCII\"", plain.clone()),
            ("text/plain ; charset=UTF-8 ; format=flowed", plain.clone()),
            ("text/plain;", plain.clone()),
            (
                "text/plain; charset=iso-8859-1",
                other("text/plain; charset=iso-8859-1", "iso-8859-1"),
            ),
            (
                "text/plain; charset=\"utf\\-16\"",
                other("text/plain; charset=\"utf\\-16\"", "utf-16"),
            ),
            ("text/html", not("text/html")),
            ("text/plain+", not("text/plain+")),
            (
                "application/json+text/plain",
                not("application/json+text/plain"),
            ),
            ("text/ plain", not("text/ plain")),
            ("text/plain; charset", not("text/plain; charset")),
            (
                "text/plain; charset=\"utf-8",
                not("text/plain; charset=\"utf-8"),
            ),
            ("text/plain; charset=a b", not("text/plain; charset=a b")),
            ("text/plain; foo=\"a;b\"; charset=utf-8", plain.clone()),
            ("text/plain;;charset=us-ascii", plain.clone()),
            ("text/plain charset=utf-8", not("text/plain charset=utf-8")),
            ("text/plain; =x", not("text/plain; =x")),
            ("", not("")),
            ("textplain", not("textplain")),
        ];
        for (input, want) in cases {
            assert_eq!(judge_content_type(Some(input)), want, "{input:?}");
        }
        assert_eq!(judge_content_type(None), ContentTypeVerdict::Missing);
    }

    #[test]
    fn display_keeps_the_value() {
        assert_eq!(
            judge_content_type(Some("text/html")).to_string(),
            "\"text/html\" (not text/plain)"
        );
        assert_eq!(ContentTypeVerdict::Missing.to_string(), "missing");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn never_panics(s in any::<String>()) {
            let _ = judge_content_type(Some(&s));
        }

        #[test]
        fn never_panics_on_alphabet(s in "[a-zA-Z/;= \t\"\\\\+-]{0,30}") {
            let _ = judge_content_type(Some(&s));
        }
    }
}
