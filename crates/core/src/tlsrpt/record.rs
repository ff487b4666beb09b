//! The `_smtp._tls.<domain>` TXT record (RFC 8460 §3) and the choice of one record from the
//! TXT RRset.
//!
//! ```text
//! tlsrpt-record = tlsrpt-version 1*(field-delim tlsrpt-field) [field-delim]
//! tlsrpt-field  = tlsrpt-rua / tlsrpt-extension        ; rua required
//! tlsrpt-version = %s"v=TLSRPTv1"
//! tlsrpt-rua    = %s"rua=" tlsrpt-uri *(*WSP "," *WSP tlsrpt-uri)
//! tlsrpt-uri    = URI   ; RFC 3986; ',', '!' and ';' MUST be percent-encoded
//! ```
//!
//! The shared `name=value` grammar is [`crate::tagvalue`]; this module adds the `rua` list
//! (several `rua=` fields form one union, empty elements are invalid), the RFC 3986 URI
//! syntax check, and the destination kind: `mailto:` and `https:` are the schemes RFC 8460
//! defines; a URI with another scheme keeps the record valid but is not a usable destination.
//! Pure: no I/O; the DNS layer passes the joined TXT strings.

use std::fmt;
use std::net::Ipv6Addr;

use crate::tagvalue::{
    self, Conclusion, Grammar, IgnoredField, IgnoredReason, Selection, TagValueError, is_wsp,
};

/// The `_smtp._tls` grammar: version `v=TLSRPTv1`; `rua` has its own value grammar.
pub const TLSRPT_GRAMMAR: Grammar = Grammar {
    version: "v=TLSRPTv1",
    raw_fields: &["rua"],
};

/// Why a string is not an RFC 3986 `URI` acceptable in a `rua` list. Offsets are 0-based
/// byte offsets within the URI.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UriError {
    /// No `scheme:` prefix (a relative reference such as `reports@example.com`).
    #[error("it has no scheme (write e.g. \"mailto:reports@example.com\")")]
    NoScheme,
    /// The text before `:` is not `ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )`.
    #[error("{scheme:?} is not a valid URI scheme")]
    BadScheme {
        /// The scheme as written.
        scheme: String,
    },
    /// A character the URI grammar does not allow where it appears.
    #[error("offset {offset}: {ch:?} is not allowed in a URI here (percent-encode it)")]
    BadChar {
        /// Where.
        offset: usize,
        /// The character.
        ch: char,
    },
    /// `%` not followed by two hex digits.
    #[error("offset {offset}: '%' must be followed by two hex digits")]
    BadPercent {
        /// Where the `%` is.
        offset: usize,
    },
    /// `!` unencoded: RFC 8460 §3 requires `%21`.
    #[error("offset {offset}: '!' must be written as %21 in a rua URI (RFC 8460 §3)")]
    UnencodedBang {
        /// Where.
        offset: usize,
    },
    /// A bracketed host that is neither an IPv6 address nor an IPvFuture literal.
    #[error("{host:?} is not a valid IP literal")]
    BadIpLiteral {
        /// The bracketed host as written.
        host: String,
    },
    /// A port with something other than digits.
    #[error("port {port:?} is not a number")]
    BadPort {
        /// The port as written.
        port: String,
    },
}

/// RFC 3986 `unreserved`.
fn is_unreserved(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~')
}

/// RFC 3986 `sub-delims`.
fn is_sub_delim(c: char) -> bool {
    matches!(
        c,
        '!' | '$' | '&' | '\'' | '(' | ')' | '*' | '+' | ',' | ';' | '='
    )
}

/// Checks that every character of `part` (starting at byte `base` of the URI) is
/// `unreserved / pct-encoded / sub-delims` or one of `extra`.
fn check_chars(part: &str, base: usize, extra: &[char]) -> Result<(), UriError> {
    let bytes = part.as_bytes();
    for (i, c) in part.char_indices() {
        let offset = base + i;
        if c == '%' {
            let ok = bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit);
            if !ok {
                return Err(UriError::BadPercent { offset });
            }
            continue;
        }
        if c == '!' {
            // RFC 8460 §3: "commas, exclamation points, and semicolons MUST be encoded".
            return Err(UriError::UnencodedBang { offset });
        }
        if !(is_unreserved(c) || is_sub_delim(c) || extra.contains(&c)) {
            return Err(UriError::BadChar { offset, ch: c });
        }
    }
    // Hex digits after '%' are unreserved, so the loop above has already passed over them.
    Ok(())
}

/// The parts of a syntactically valid URI that the destination kind needs.
struct UriParts<'a> {
    scheme: &'a str,
    host: Option<&'a str>,
    path: &'a str,
}

/// Checks `uri` against RFC 3986 §3 `URI = scheme ":" hier-part [ "?" query ] [ "#" fragment ]`.
fn check_uri(uri: &str) -> Result<UriParts<'_>, UriError> {
    let Some((scheme, rest)) = uri.split_once(':') else {
        return Err(UriError::NoScheme);
    };
    if scheme.is_empty() || scheme.contains(['/', '?', '#']) {
        return Err(UriError::NoScheme);
    }
    let mut chars = scheme.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')) {
        return Err(UriError::BadScheme {
            scheme: scheme.to_owned(),
        });
    }
    let base = scheme.len() + 1;
    let (before_fragment, fragment) = match rest.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (rest, None),
    };
    let (hier, query) = match before_fragment.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (before_fragment, None),
    };
    // query / fragment = *( pchar / "/" / "?" )
    if let Some(q) = query {
        check_chars(q, base + hier.len() + 1, &[':', '@', '/', '?'])?;
    }
    if let Some(f) = fragment {
        check_chars(f, base + before_fragment.len() + 1, &[':', '@', '/', '?'])?;
    }
    let pchar_or_slash = [':', '@', '/'];
    let Some(after_slashes) = hier.strip_prefix("//") else {
        // path-absolute / path-rootless / path-empty: pchar and '/' (a leading "//" was
        // taken as an authority above).
        check_chars(hier, base, &pchar_or_slash)?;
        return Ok(UriParts {
            scheme,
            host: None,
            path: hier,
        });
    };
    let authority_end = after_slashes.find('/').unwrap_or(after_slashes.len());
    let authority = &after_slashes[..authority_end];
    let path = &after_slashes[authority_end..];
    let authority_base = base + 2;
    check_chars(path, authority_base + authority_end, &pchar_or_slash)?;
    // authority = [ userinfo "@" ] host [ ":" port ]
    let (userinfo, hostport, host_base) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h, authority_base + u.len() + 1),
        None => (None, authority, authority_base),
    };
    if let Some(u) = userinfo {
        check_chars(u, authority_base, &[':'])?;
    }
    let (host, port) = if let Some(literal) = hostport.strip_prefix('[') {
        let Some((inside, after)) = literal.split_once(']') else {
            return Err(UriError::BadIpLiteral {
                host: hostport.to_owned(),
            });
        };
        if !(inside.parse::<Ipv6Addr>().is_ok() || is_ipv_future(inside)) {
            return Err(UriError::BadIpLiteral {
                host: format!("[{inside}]"),
            });
        }
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or_else(|| UriError::BadChar {
                offset: host_base + inside.len() + 2,
                ch: p.chars().next().unwrap_or(']'),
            })?),
        };
        (&hostport[..inside.len() + 2], port)
    } else {
        // reg-name (and IPv4address, whose characters are a subset) has no ':'.
        let (h, p) = match hostport.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        };
        check_chars(h, host_base, &[])?;
        (h, p)
    };
    if let Some(p) = port
        && !p.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(UriError::BadPort { port: p.to_owned() });
    }
    Ok(UriParts {
        scheme,
        host: Some(host),
        path,
    })
}

/// RFC 3986 `IPvFuture = "v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" )`.
fn is_ipv_future(s: &str) -> bool {
    let Some(rest) = s.strip_prefix(['v', 'V']) else {
        return false;
    };
    let Some((hex, tail)) = rest.split_once('.') else {
        return false;
    };
    !hex.is_empty()
        && hex.bytes().all(|b| b.is_ascii_hexdigit())
        && !tail.is_empty()
        && tail
            .chars()
            .all(|c| is_unreserved(c) || is_sub_delim(c) || c == ':')
}

/// Decodes `%XX` escapes; the input is a checked URI part, so every `%` has two hex digits.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = s.get(i + 1..i + 3)
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|_| s.to_owned())
}

/// Where a `rua` URI sends reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuaKind {
    /// `mailto:` (RFC 8460 §3): reports by e-mail.
    Mailto {
        /// The address (percent-decoded; the part before any `?`).
        address: String,
    },
    /// `https:` (RFC 8460 §3): reports by HTTPS POST to the URI.
    Https {
        /// The host of the URL (empty when the URI has no authority).
        host: String,
    },
    /// A syntactically valid URI with a scheme RFC 8460 does not define: the record stays
    /// valid, but no reporter can use this destination.
    Other {
        /// The scheme, lower-cased.
        scheme: String,
    },
}

/// One report destination from a `rua` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rua {
    uri: String,
    kind: RuaKind,
}

impl Rua {
    /// Parses one `tlsrpt-uri`.
    pub fn parse(uri: &str) -> Result<Self, UriError> {
        let parts = check_uri(uri)?;
        // RFC 3986 §3.1: schemes are case-insensitive.
        let scheme = parts.scheme.to_ascii_lowercase();
        let kind = match scheme.as_str() {
            "mailto" => RuaKind::Mailto {
                address: percent_decode(parts.path),
            },
            "https" => RuaKind::Https {
                host: parts.host.unwrap_or_default().to_owned(),
            },
            _ => RuaKind::Other { scheme },
        };
        Ok(Self {
            uri: uri.to_owned(),
            kind,
        })
    }

    /// The URI as written.
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// Its kind.
    pub fn kind(&self) -> &RuaKind {
        &self.kind
    }

    /// Whether a reporter can deliver to it: a `mailto:` with an address `local@domain`, or
    /// an `https:` URL with a host.
    pub fn usable(&self) -> bool {
        match &self.kind {
            RuaKind::Mailto { address } => address
                .rsplit_once('@')
                .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty()),
            RuaKind::Https { host } => !host.is_empty(),
            RuaKind::Other { .. } => false,
        }
    }
}

/// A size limit written after a `mailto:` address, in the style of DMARC (RFC 7489 §6.2):
/// `!10m` (here necessarily `%2110m`: RFC 8460 §3 requires the `!` to be percent-encoded).
/// RFC 8460 itself defines no size limit; mxprobe reads and shows it because owners copy the
/// habit from DMARC records, and a reporter that honours it drops larger reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SizeLimit {
    /// The limit in bytes.
    pub bytes: u64,
}

impl SizeLimit {
    /// Reads `<digits>[k|m|g|t]` (case-insensitive; no unit: bytes), as written after `!`.
    pub fn parse(text: &str) -> Option<Self> {
        let digits_end = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (digits, unit) = text.split_at(digits_end);
        if digits.is_empty() || digits.len() > 12 {
            return None;
        }
        let number: u64 = digits.parse().ok()?;
        let factor: u64 = match unit.to_ascii_lowercase().as_str() {
            "" => 1,
            "k" => 1 << 10,
            "m" => 1 << 20,
            "g" => 1 << 30,
            "t" => 1 << 40,
            _ => return None,
        };
        number.checked_mul(factor).map(|bytes| Self { bytes })
    }
}

impl fmt::Display for SizeLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [(u64, &str); 4] = [
            (1 << 40, "TiB"),
            (1 << 30, "GiB"),
            (1 << 20, "MiB"),
            (1 << 10, "KiB"),
        ];
        for (size, unit) in UNITS {
            if self.bytes >= size && self.bytes.is_multiple_of(size) {
                return write!(f, "{} {unit}", self.bytes / size);
            }
        }
        write!(f, "{} bytes", self.bytes)
    }
}

impl Rua {
    /// For a `mailto:` destination: the address without a size limit, the domain part of it,
    /// and the size limit when one is written (see [`SizeLimit`]). `None` for other kinds
    /// and for an address without `@`.
    pub fn mailbox(&self) -> Option<(&str, &str, Option<SizeLimit>)> {
        let RuaKind::Mailto { address } = &self.kind else {
            return None;
        };
        let (address, limit) = match address.rsplit_once('!') {
            Some((before, after)) if before.contains('@') => match SizeLimit::parse(after) {
                Some(limit) => (before, Some(limit)),
                None => (address.as_str(), None),
            },
            _ => (address.as_str(), None),
        };
        let (local, domain) = address.rsplit_once('@')?;
        (!local.is_empty() && !domain.is_empty()).then_some((address, domain, limit))
    }
}

impl fmt::Display for Rua {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.uri)
    }
}

/// A syntactically valid `_smtp._tls` TXT record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsRptRecord {
    /// Every destination of every `rua=` field, in order, without repeats.
    pub rua: Vec<Rua>,
    /// Other fields, in order, as written (RFC 8460 §3: unknown fields are ignored).
    pub extensions: Vec<(String, String)>,
    /// URIs listed more than once (kept once in `rua`).
    pub ignored: Vec<IgnoredField>,
}

/// Why a `_smtp._tls` TXT record is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TlsRptRecordError {
    /// The text does not follow the shared `v=…; name=value` grammar.
    #[error(transparent)]
    Syntax(#[from] TagValueError),
    /// No `rua=` field.
    #[error(
        "the record has no rua field (write e.g. \"v=TLSRPTv1; rua=mailto:tlsrpt@example.com\")"
    )]
    MissingRua,
    /// An empty element in a `rua` list (`a,,b`, a trailing `,`).
    #[error(
        "column {column}: empty element in the rua list (a ',' with no URI after it or before it)"
    )]
    EmptyRuaElement {
        /// Where the empty element is.
        column: usize,
    },
    /// An element that is not a valid URI.
    #[error("column {column}: rua {uri:?} is not a valid URI: {error}")]
    BadRua {
        /// Where the URI starts.
        column: usize,
        /// The URI as written.
        uri: String,
        /// Why.
        error: UriError,
    },
}

impl TlsRptRecord {
    /// Parses one record (the character-strings already joined).
    pub fn parse(input: &str) -> Result<Self, TlsRptRecordError> {
        let list = tagvalue::lex(input, &TLSRPT_GRAMMAR)?;
        let mut rua: Vec<Rua> = Vec::new();
        let mut extensions = Vec::new();
        let mut ignored = Vec::new();
        let mut saw_rua = false;
        for field in &list.fields {
            if field.name != "rua" {
                extensions.push((field.name.to_owned(), field.value.to_owned()));
                continue;
            }
            // tlsrpt-rua repeats as a tlsrpt-field: several rua= fields are one union.
            saw_rua = true;
            let mut offset = 0;
            for element in field.value.split(',') {
                let lead = element.len() - element.trim_start_matches(is_wsp).len();
                let uri = element.trim_matches(is_wsp);
                let column = field.value_column + offset + lead;
                offset += element.len() + 1;
                if uri.is_empty() {
                    return Err(TlsRptRecordError::EmptyRuaElement { column });
                }
                let parsed = Rua::parse(uri).map_err(|error| TlsRptRecordError::BadRua {
                    column,
                    uri: uri.to_owned(),
                    error,
                })?;
                if rua.iter().any(|r| r.uri == parsed.uri) {
                    ignored.push(IgnoredField {
                        column,
                        name: "rua".to_owned(),
                        value: uri.to_owned(),
                        reason: IgnoredReason::RepeatedValue,
                    });
                } else {
                    rua.push(parsed);
                }
            }
        }
        if !saw_rua {
            return Err(TlsRptRecordError::MissingRua);
        }
        Ok(Self {
            rua,
            extensions,
            ignored,
        })
    }

    /// The destinations a reporter can use (see [`Rua::usable`]).
    pub fn usable_rua(&self) -> impl Iterator<Item = &Rua> {
        self.rua.iter().filter(|r| r.usable())
    }
}

impl fmt::Display for TlsRptRecord {
    /// The canonical form: `v=TLSRPTv1; rua=a,b` then the extensions, `; ` between fields.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let uris: Vec<&str> = self.rua.iter().map(Rua::uri).collect();
        write!(f, "{}; rua={}", TLSRPT_GRAMMAR.version, uris.join(","))?;
        for (name, value) in &self.extensions {
            write!(f, "; {name}={value}")?;
        }
        Ok(())
    }
}

/// The outcome of choosing the `_smtp._tls` record from a TXT RRset.
pub type TlsRptSelection = Selection<TlsRptRecord, TlsRptRecordError>;

/// What a sender concludes from the `_smtp._tls` RRset.
pub type TlsRptConclusion = Conclusion<TlsRptRecord, TlsRptRecordError>;

/// RFC 8460 §3: discards the records that do not begin with `v=TLSRPTv1` and the delimiter
/// (`v=TLSRPTv1 ;` is kept, see [`tagvalue::discard_reason`]), then requires exactly one;
/// otherwise the domain does not implement TLSRPT.
pub fn select_tlsrpt(records: &[String]) -> TlsRptSelection {
    tagvalue::select(records, &TLSRPT_GRAMMAR, TlsRptRecord::parse)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tagvalue::SelectionNote;
    use proptest::prelude::*;

    #[test]
    fn uri_syntax() {
        let ok = [
            "mailto:reports@example.com",
            "MAILTO:a@b",
            "https://reporting.example.com/v1/tlsrpt",
            "https://reportbot.example.com:12345/tlsrpt?x=1&y=%2C#frag",
            "https://user:pw@[2001:db8::1]:443/",
            "https://[v1.fe80::a+en1]/",
            "http://reports.example.com/tlsrpt",
            "urn:isbn:0451450523",
            "mailto:",
            "https:",
            "x-y.z+w:opaque",
        ];
        for uri in ok {
            assert!(check_uri(uri).is_ok(), "{uri}");
        }
        let bad = [
            ("noscheme", UriError::NoScheme),
            ("reports@example.com", UriError::NoScheme),
            ("/x:y", UriError::NoScheme),
            (":x", UriError::NoScheme),
            (
                "1http://x",
                UriError::BadScheme {
                    scheme: "1http".into(),
                },
            ),
            (
                "ht tp://x",
                UriError::BadScheme {
                    scheme: "ht tp".into(),
                },
            ),
            ("mailto:a b@x", UriError::BadChar { offset: 8, ch: ' ' }),
            (
                "mailto:a@x\"",
                UriError::BadChar {
                    offset: 10,
                    ch: '"',
                },
            ),
            (
                "https://x/é",
                UriError::BadChar {
                    offset: 10,
                    ch: 'é',
                },
            ),
            ("mailto:a%2", UriError::BadPercent { offset: 8 }),
            ("mailto:a%zz@x", UriError::BadPercent { offset: 8 }),
            ("mailto:a!b@x", UriError::UnencodedBang { offset: 8 }),
            (
                "https://[::1/",
                UriError::BadIpLiteral {
                    host: "[::1".into(),
                },
            ),
            (
                "https://[zz]/",
                UriError::BadIpLiteral {
                    host: "[zz]".into(),
                },
            ),
            (
                "https://[::1]x/",
                UriError::BadChar {
                    offset: 13,
                    ch: 'x',
                },
            ),
            ("https://x:44a/", UriError::BadPort { port: "44a".into() }),
            ("https://x y/", UriError::BadChar { offset: 9, ch: ' ' }),
            (
                "https://x/?a b",
                UriError::BadChar {
                    offset: 12,
                    ch: ' ',
                },
            ),
            (
                "https://x/#a#b",
                UriError::BadChar {
                    offset: 12,
                    ch: '#',
                },
            ),
        ];
        for (uri, want) in bad {
            assert_eq!(check_uri(uri).err(), Some(want), "{uri}");
        }
    }

    #[test]
    fn rua_kinds() {
        let cases = [
            (
                "mailto:tlsrpt@example.com",
                RuaKind::Mailto {
                    address: "tlsrpt@example.com".into(),
                },
                true,
            ),
            (
                "mailto:tls%2Brpt@example.com?subject=x",
                RuaKind::Mailto {
                    address: "tls+rpt@example.com".into(),
                },
                true,
            ),
            (
                "mailto:nobody",
                RuaKind::Mailto {
                    address: "nobody".into(),
                },
                false,
            ),
            (
                "https://r.example/v1",
                RuaKind::Https {
                    host: "r.example".into(),
                },
                true,
            ),
            (
                "HTTPS://r.example",
                RuaKind::Https {
                    host: "r.example".into(),
                },
                true,
            ),
            (
                "https:/path",
                RuaKind::Https {
                    host: String::new(),
                },
                false,
            ),
            (
                "http://r.example",
                RuaKind::Other {
                    scheme: "http".into(),
                },
                false,
            ),
        ];
        for (uri, kind, usable) in cases {
            let r = Rua::parse(uri).unwrap();
            assert_eq!(r.kind(), &kind, "{uri}");
            assert_eq!(r.usable(), usable, "{uri}");
            assert_eq!(r.uri(), uri);
        }
    }

    #[test]
    fn mailboxes_and_size_limits() {
        /// The address, its domain and the size limit in bytes.
        type Mailbox<'a> = Option<(&'a str, &'a str, Option<u64>)>;
        let cases: &[(&str, Mailbox<'_>)] = &[
            (
                "mailto:tlsrpt@example.com",
                Some(("tlsrpt@example.com", "example.com", None)),
            ),
            (
                "mailto:tlsrpt@example.com%2110m",
                Some(("tlsrpt@example.com", "example.com", Some(10 << 20))),
            ),
            (
                "mailto:tlsrpt@example.com%21500K",
                Some(("tlsrpt@example.com", "example.com", Some(500 << 10))),
            ),
            (
                "mailto:tlsrpt@example.com%21123",
                Some(("tlsrpt@example.com", "example.com", Some(123))),
            ),
            // Not a size: the whole text is the address.
            (
                "mailto:tlsrpt@example.com%21x",
                Some(("tlsrpt@example.com!x", "example.com!x", None)),
            ),
            ("mailto:nobody", None),
            ("https://r.example/v1", None),
        ];
        for (uri, want) in cases {
            let rua = Rua::parse(uri).unwrap();
            let got = rua.mailbox().map(|(a, d, l)| (a, d, l.map(|l| l.bytes)));
            assert_eq!(got, *want, "{uri}");
        }
        assert_eq!(SizeLimit::parse("10m").unwrap().to_string(), "10 MiB");
        assert_eq!(SizeLimit::parse("1500").unwrap().to_string(), "1500 bytes");
        assert_eq!(SizeLimit::parse("99999999999999999999"), None);
        assert_eq!(SizeLimit::parse("999999999999t"), None);
        assert_eq!(SizeLimit::parse(""), None);
    }

    #[test]
    fn record_errors_with_columns() {
        use TlsRptRecordError as E;
        let cases = [
            ("v=TLSRPTv1;", E::MissingRua),
            ("v=TLSRPTv1; ext=1", E::MissingRua),
            ("v=TLSRPTv1; RUA=mailto:a@b", E::MissingRua),
            ("v=TLSRPTv1; rua=,, ,", E::EmptyRuaElement { column: 17 }),
            (
                "v=TLSRPTv1; rua=mailto:a@b ,",
                E::EmptyRuaElement { column: 29 },
            ),
            (
                "v=TLSRPTv1; rua=mailto:a@b,, mailto:c@d",
                E::EmptyRuaElement { column: 28 },
            ),
            (
                "v=TLSRPTv1; rua=noscheme",
                E::BadRua {
                    column: 17,
                    uri: "noscheme".into(),
                    error: UriError::NoScheme,
                },
            ),
            (
                "v=TLSRPTv1; rua=mailto:x@x.example other",
                E::BadRua {
                    column: 17,
                    uri: "mailto:x@x.example other".into(),
                    error: UriError::BadChar {
                        offset: 18,
                        ch: ' ',
                    },
                },
            ),
            (
                "v=TLSRPTv1; rua= mailto:a@b",
                E::Syntax(TagValueError::WhitespaceAroundEquals {
                    column: 17,
                    field: "rua= mailto:a@b".into(),
                }),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(TlsRptRecord::parse(input), Err(want), "{input:?}");
        }
    }

    #[test]
    fn union_of_rua_fields() {
        let r = TlsRptRecord::parse(
            "v=TLSRPTv1 ; rua=mailto:a@x.example \t,  https://r.example/; x=y; rua=mailto:a@x.example,mailto:b@x.example",
        )
        .unwrap();
        let uris: Vec<&str> = r.rua.iter().map(Rua::uri).collect();
        assert_eq!(
            uris,
            [
                "mailto:a@x.example",
                "https://r.example/",
                "mailto:b@x.example"
            ]
        );
        assert_eq!(r.extensions, vec![("x".to_owned(), "y".to_owned())]);
        assert_eq!(r.ignored.len(), 1);
        assert_eq!(r.ignored[0].column, 70);
        assert_eq!(r.ignored[0].reason, IgnoredReason::RepeatedValue);
        assert_eq!(
            r.to_string(),
            "v=TLSRPTv1; rua=mailto:a@x.example,https://r.example/,mailto:b@x.example; x=y"
        );
        assert_eq!(r.usable_rua().count(), 3);
    }

    #[test]
    fn selection_keeps_space_before_delimiter() {
        // `v=TLSRPTv1 ;` is ABNF-valid: kept, with a note that a literal-prefix sender would
        // discard it.
        let set = vec![
            "v=spf1 -all".to_owned(),
            "v=TLSRPTv1 ; rua=mailto:a@b".to_owned(),
        ];
        let s = select_tlsrpt(&set);
        assert!(matches!(s.conclusion, Conclusion::One { index: 1, .. }));
        assert!(
            s.notes
                .contains(&SelectionNote::SpaceBeforeDelimiter { index: 1 })
        );
    }

    fn arb_record() -> impl Strategy<Value = TlsRptRecord> {
        let uri = prop_oneof![
            "[a-z0-9.]{1,8}@[a-z0-9]{1,8}\\.example".prop_map(|a| format!("mailto:{a}")),
            "[a-z0-9]{1,8}\\.example(:[0-9]{1,5})?(/[a-zA-Z0-9._~%=&-]{0,8}){0,2}"
                .prop_map(|a| format!("https://{a}")),
            "[a-z][a-z0-9+.-]{0,6}:[a-zA-Z0-9/]{0,8}".prop_map(|a| a),
        ]
        .prop_filter("valid URI", |u| Rua::parse(u).is_ok());
        (
            proptest::collection::btree_set(uri, 1..4),
            proptest::collection::vec(
                (
                    "[a-z0-9][a-z0-9_.-]{0,31}".prop_filter("not rua", |n| n != "rua"),
                    "[!-:<>-~]{1,12}",
                ),
                0..3,
            ),
        )
            .prop_map(|(uris, extensions)| TlsRptRecord {
                rua: uris.iter().map(|u| Rua::parse(u).unwrap()).collect(),
                extensions,
                ignored: Vec::new(),
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn parse_never_panics(s in any::<String>()) {
            let _ = TlsRptRecord::parse(&s);
            let _ = Rua::parse(&s);
            let _ = select_tlsrpt(&[s]);
        }

        #[test]
        fn parse_never_panics_on_alphabet(
            s in "(v=TLSRPTv1)?[a-z0-9=;:,/@%!\\[\\] \t._-]{0,40}"
        ) {
            let _ = TlsRptRecord::parse(&s);
        }

        #[test]
        fn round_trip(r in arb_record()) {
            prop_assert_eq!(TlsRptRecord::parse(&r.to_string()), Ok(r));
        }

        /// RFC 8460 §3: records that do not begin with `v=TLSRPTv1` are discarded, so the one
        /// record among any such noise is chosen wherever it stands, with every usable rua.
        #[test]
        fn the_one_record_is_chosen_among_noise(
            r in arb_record(),
            noise in proptest::collection::vec("[^v][ -~]{0,20}", 0..4),
            at in any::<prop::sample::Index>(),
        ) {
            let mut set = noise.clone();
            set.insert(at.index(noise.len() + 1), r.to_string());
            let selection = select_tlsrpt(&set);
            prop_assert_eq!(selection.total, set.len());
            prop_assert_eq!(selection.record(), Some(&r));
            let usable = r.rua.iter().filter(|u| u.usable()).count();
            prop_assert_eq!(selection.record().map(|x| x.usable_rua().count()), Some(usable));
        }
    }
}
