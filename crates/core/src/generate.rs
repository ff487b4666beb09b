//! `mxprobe generate`: the three items that start an MTA-STS deployment, built from a domain,
//! its MX hosts, a mode, a max_age and TLS-RPT destinations — the `_mta-sts.<domain>` TXT
//! record with a fresh policy id (RFC 8461 §3.1), the `_smtp._tls.<domain>` TXT record
//! (RFC 8460 §3) and the policy file for `https://mta-sts.<domain>/.well-known/mta-sts.txt`
//! (RFC 8461 §3.2).
//!
//! Every value typed is parsed with the crate's own parsers ([`MxPattern`], [`DomainName`],
//! [`Rua`]) and the output is rendered from the parsed values, then parsed back with the
//! same parsers `mxprobe lint` uses, so what `generate` prints is what `lint` accepts. Pure:
//! no I/O besides the writer [`Generated::write_text`] is given; the time that makes the id is
//! a parameter, never read from the clock.

use std::io::{self, Write};

use serde::Serialize;
use time::{OffsetDateTime, UtcOffset};

use crate::domain::{DomainError, DomainName};
use crate::mtasts::{MAX_AGE_LIMIT, Mode, MxPattern, MxPatternError, Policy, StsRecord};
use crate::tlsrpt::record::{Rua, TlsRptRecord, UriError};

/// The max_age used when none is given: 604800 seconds, one week.
///
/// RFC 8461 §3.2 expects max_age "typically be in the range of weeks or greater" so that an
/// attacker who blocks the policy fetch cannot soon strip TLS, and uses 604800 in its own
/// example policy. One week is the shortest value in that range: a mistake made while still
/// in `testing` leaves senders' caches within a week, and `mxprobe lint` raises no warning
/// for it (its short-max_age warning starts below one day).
pub const DEFAULT_MAX_AGE: u32 = 604_800;

/// RFC 1035 §2.3.4: a name has at most 255 octets on the wire, which is 253 characters in
/// text form without the trailing dot.
const MAX_NAME_LEN: usize = 253;

/// What to generate, as the user gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenerateSpec {
    /// The policy domain (the mail domain senders look up).
    pub domain: DomainName,
    /// MX host names or RFC 8461 §4.1 patterns (`*.example.net`), as typed.
    pub mx: Vec<String>,
    /// [`Mode::Testing`] or [`Mode::Enforce`]; [`Mode::None`] is refused, because it
    /// withdraws a policy rather than deploying one.
    pub mode: Mode,
    /// The policy lifetime in seconds, 1 to [`MAX_AGE_LIMIT`] ([`DEFAULT_MAX_AGE`] when the
    /// user gives none).
    pub max_age: u32,
    /// TLS-RPT destinations: `mailto:` or `https:` URIs, as typed.
    pub rua: Vec<String>,
}

/// The generated records and policy, ready to publish. Serialised, this is the JSON output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Generated {
    /// The owner name of the MTA-STS TXT record, `_mta-sts.<domain>`.
    pub sts_txt_name: String,
    /// The MTA-STS TXT record, `v=STSv1; id=<id>`.
    pub sts_txt: String,
    /// The owner name of the TLS-RPT TXT record, `_smtp._tls.<domain>`.
    pub tlsrpt_txt_name: String,
    /// The TLS-RPT TXT record, `v=TLSRPTv1; rua=<uri>[,<uri>…]`.
    pub tlsrpt_txt: String,
    /// Where the policy must be served: `https://mta-sts.<domain>/.well-known/mta-sts.txt`.
    pub policy_url: String,
    /// The policy body, lines ending in CRLF.
    pub policy: String,
    /// The policy id in [`Generated::sts_txt`] (see [`policy_id`]).
    pub id: String,
}

/// Why nothing can be generated from a spec. Each message names the field and the value and
/// says what to give instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GenerateError {
    /// Mode `none` was asked for.
    #[error(
        "mode none withdraws an MTA-STS policy and is not generated; choose mode testing to \
         start (or enforce once TLS-RPT reports show no failures)"
    )]
    ModeNone,
    /// max_age 0.
    #[error(
        "max_age 0 makes senders drop the policy at once; give 1 to 31557600 seconds \
         (604800, one week, is the default)"
    )]
    MaxAgeZero,
    /// max_age above RFC 8461's maximum.
    #[error(
        "max_age {max_age} is above 31557600, the maximum RFC 8461 §3.2 allows; give at most \
         31557600 (one year)"
    )]
    MaxAgeTooLarge {
        /// The value given.
        max_age: u32,
    },
    /// A name derived from the domain is longer than DNS allows.
    #[error(
        "{name} would be {len} characters long; DNS names have at most 253, so the domain is \
         too long to publish MTA-STS under"
    )]
    NameTooLong {
        /// The derived name (`_mta-sts.<domain>`, `_smtp._tls.<domain>` or
        /// `mta-sts.<domain>`).
        name: String,
        /// Its length.
        len: usize,
    },
    /// No mx entry.
    #[error(
        "no mx given; name every MX host of the domain (or a \"*.\" pattern covering them), \
         since senders refuse (enforce) or report (testing) an MX the policy does not list"
    )]
    NoMx,
    /// An mx entry that is an IP address.
    #[error(
        "mx {entry:?} is an IP address; a policy lists MX host names (RFC 8461 §4.1 matches \
         the name in the MX record), so give the host name from the domain's MX record"
    )]
    MxIpLiteral {
        /// The entry as typed.
        entry: String,
    },
    /// An mx entry that is neither a host name nor a `*.` pattern.
    #[error(
        "mx {entry:?} is not a host name or \"*.\" pattern: {error}; give e.g. \
         \"mail.example.com\" or \"*.example.net\""
    )]
    BadMx {
        /// The entry as typed.
        entry: String,
        /// Why it is not a pattern.
        error: MxPatternError,
    },
    /// No rua entry.
    #[error(
        "no rua given; RFC 8460 §3 requires at least one TLS-RPT destination, e.g. \
         mailto:tlsrpt@example.com"
    )]
    NoRua,
    /// An empty rua entry.
    #[error("rua number {number} is empty; give a mailto: address or an https: URL")]
    RuaEmpty {
        /// Its 1-based position in the list.
        number: usize,
    },
    /// A rua entry without a URI scheme.
    #[error(
        "rua {value:?} has no scheme; write a mailto: address (as in \
         \"mailto:tlsrpt@example.com\") or an https: URL"
    )]
    RuaNoScheme {
        /// The entry as typed.
        value: String,
    },
    /// A rua entry with a scheme other than `mailto:` and `https:`.
    #[error(
        "rua {value:?} uses the scheme {scheme:?}; RFC 8460 §3 defines only mailto: and \
         https:, so write a mailto: address or an https: URL"
    )]
    RuaScheme {
        /// The entry as typed.
        value: String,
        /// The scheme, as typed.
        scheme: String,
    },
    /// A `mailto:` entry without `local-part@domain`.
    #[error(
        "rua {value:?} has no address of the form local-part@domain after \"mailto:\"; write \
         e.g. \"mailto:tlsrpt@example.com\""
    )]
    RuaMailtoNoAddress {
        /// The entry as typed.
        value: String,
    },
    /// A `mailto:` entry with more than one address.
    #[error(
        "rua {value:?} holds more than one address; give each destination as its own rua \
         value"
    )]
    RuaMailtoSeveral {
        /// The entry as typed.
        value: String,
    },
    /// A `mailto:` entry whose domain is not a domain name.
    #[error("rua {value:?}: the part after '@' is not a mail domain: {error}")]
    RuaMailtoBadDomain {
        /// The entry as typed.
        value: String,
        /// Why the part after `@` is not a domain name.
        error: DomainError,
    },
    /// An `https:` entry that is not a valid URI.
    #[error("rua {value:?} is not a valid https: URL ({uri:?}: {error})")]
    RuaBadUri {
        /// The entry as typed.
        value: String,
        /// The URI checked: the entry with the scheme in lower case and `,` `;` `!`
        /// percent-encoded (the offsets of `error` are in this text).
        uri: String,
        /// Why it is not a URI.
        error: UriError,
    },
    /// An `https:` entry without a host.
    #[error(
        "rua {value:?} has no host, so reports cannot be posted to it; write the full URL, \
         e.g. \"https://tlsrpt.example.com/v1\""
    )]
    RuaHttpsNoHost {
        /// The entry as typed.
        value: String,
    },
    /// The output did not read back as what was meant: a defect in mxprobe, never the input.
    #[error(
        "the generated {item} does not read back as generated ({detail}); this is a bug in \
         mxprobe, please report it with the command line used"
    )]
    ReadBack {
        /// Which item: `_mta-sts record`, `_smtp._tls record` or `policy`.
        item: &'static str,
        /// What the parser said instead.
        detail: String,
    },
}

/// A policy id made from `now`: its UTC date and time as `YYYYMMDDTHHMMSS`, e.g.
/// `20261129T044614`.
///
/// RFC 8461 §3.1 allows `1*32(ALPHA / DIGIT)` and requires the id to change whenever the
/// policy does; a timestamp to the second is alphanumeric, 15 characters long, and new for
/// every change made more than a second after the last.
pub fn policy_id(now: OffsetDateTime) -> String {
    // Within a day of the ends of the time crate's range the UTC instant is not
    // representable; the local fields still give an alphanumeric id there.
    let utc = now.checked_to_offset(UtcOffset::UTC).unwrap_or(now);
    // The supported years are -9999..=9999; a year before 1 cannot come from a real clock,
    // and its absolute value keeps the id free of '-'.
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}",
        utc.year().unsigned_abs(),
        u8::from(utc.month()),
        utc.day(),
        utc.hour(),
        utc.minute(),
        utc.second()
    )
}

/// Builds the records and policy for `spec`, with an id made from `now`.
pub fn generate(spec: &GenerateSpec, now: OffsetDateTime) -> Result<Generated, GenerateError> {
    if spec.mode == Mode::None {
        return Err(GenerateError::ModeNone);
    }
    if spec.max_age == 0 {
        return Err(GenerateError::MaxAgeZero);
    }
    if spec.max_age > MAX_AGE_LIMIT {
        return Err(GenerateError::MaxAgeTooLarge {
            max_age: spec.max_age,
        });
    }
    let sts_txt_name = spec.domain.prefixed("_mta-sts");
    let tlsrpt_txt_name = spec.domain.prefixed("_smtp._tls");
    // RFC 8461 §3.3: the policy host is `mta-sts.<domain>`.
    let policy_host = spec.domain.prefixed("mta-sts");
    for name in [&sts_txt_name, &tlsrpt_txt_name, &policy_host] {
        if name.len() > MAX_NAME_LEN {
            return Err(GenerateError::NameTooLong {
                name: name.clone(),
                len: name.len(),
            });
        }
    }

    let mx = mx_patterns(&spec.mx)?;
    let rua = rua_list(&spec.rua)?;

    let id = policy_id(now);
    let sts = StsRecord {
        id: id.clone(),
        extensions: Vec::new(),
        ignored: Vec::new(),
    };
    let tlsrpt = TlsRptRecord {
        rua,
        extensions: Vec::new(),
        ignored: Vec::new(),
    };
    let policy = Policy {
        mode: spec.mode,
        max_age: spec.max_age,
        mx,
        extensions: Vec::new(),
    };
    let sts_txt = sts.to_string();
    let tlsrpt_txt = tlsrpt.to_string();
    // RFC 8461 §3.2 calls the policy "CRLF-separated key/value pairs" while its ABNF
    // (`sts-policy-term = LF / CRLF`) lets senders accept LF too. CRLF is what every sender
    // accepts, whether it follows the prose or the grammar. `render` ends lines in LF and no
    // rendered value holds a line break, so replacing each LF is exact.
    let body = policy.render().replace('\n', "\r\n");

    read_back("_mta-sts record", StsRecord::parse(&sts_txt), &sts)?;
    read_back(
        "_smtp._tls record",
        TlsRptRecord::parse(&tlsrpt_txt),
        &tlsrpt,
    )?;
    read_back("policy", Policy::parse(&body), &policy)?;

    Ok(Generated {
        sts_txt_name,
        sts_txt,
        tlsrpt_txt_name,
        tlsrpt_txt,
        policy_url: format!("https://{policy_host}/.well-known/mta-sts.txt"),
        policy: body,
        id,
    })
}

/// Checks that an item parses back to exactly the value it was rendered from.
fn read_back<T: PartialEq + std::fmt::Debug, E: std::fmt::Display>(
    item: &'static str,
    parsed: Result<T, E>,
    meant: &T,
) -> Result<(), GenerateError> {
    match parsed {
        Ok(value) if value == *meant => Ok(()),
        Ok(value) => Err(GenerateError::ReadBack {
            item,
            detail: format!("read as {value:?}"),
        }),
        Err(error) => Err(GenerateError::ReadBack {
            item,
            detail: error.to_string(),
        }),
    }
}

/// Parses every mx entry; the patterns come out lower-cased, in A-label form, without
/// repeats, in the order given.
fn mx_patterns(entries: &[String]) -> Result<Vec<MxPattern>, GenerateError> {
    // RFC 8461 §3.2: mx is "required at least once" unless the mode is none.
    if entries.is_empty() {
        return Err(GenerateError::NoMx);
    }
    let mut out: Vec<MxPattern> = Vec::new();
    for entry in entries {
        let pattern = mx_pattern(entry)?;
        // A repeated pattern is a lint notice and tells senders nothing new.
        if !out.contains(&pattern) {
            out.push(pattern);
        }
    }
    Ok(out)
}

fn mx_pattern(entry: &str) -> Result<MxPattern, GenerateError> {
    let bad = |error: MxPatternError| match error {
        MxPatternError::Domain(DomainError::IpLiteral { .. }) => GenerateError::MxIpLiteral {
            entry: entry.to_owned(),
        },
        error => GenerateError::BadMx {
            entry: entry.to_owned(),
            error,
        },
    };
    let text = entry.trim();
    // A name copied from DNS output ends with the root dot; the policy's RFC 5321 `Domain`
    // has none, and the name is the same.
    let text = text.strip_suffix('.').unwrap_or(text);
    let (wildcard, rest) = match text.strip_prefix("*.") {
        Some(rest) => ("*.", rest),
        None => ("", text),
    };
    // RFC 8461 §3.2: mx values "MUST be A-labels"; a name typed with U-labels is converted
    // (IDNA) rather than refused, since it names the same host. A misplaced '*' is left for
    // the pattern parser to name, on the text as typed.
    let ascii = if rest.is_ascii() || rest.contains('*') {
        rest.to_owned()
    } else {
        DomainName::parse(rest)
            .map_err(|e| bad(MxPatternError::Domain(e)))?
            .as_str()
            .to_owned()
    };
    MxPattern::parse(&format!("{wildcard}{ascii}")).map_err(bad)
}

/// Normalises every rua entry into a URI a reporter can use; repeats are dropped (a repeated
/// URI is a lint warning), order is kept.
fn rua_list(entries: &[String]) -> Result<Vec<Rua>, GenerateError> {
    if entries.is_empty() {
        return Err(GenerateError::NoRua);
    }
    let mut out: Vec<Rua> = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let rua = rua_uri(i + 1, entry)?;
        if !out.iter().any(|r| r.uri() == rua.uri()) {
            out.push(rua);
        }
    }
    Ok(out)
}

fn rua_uri(number: usize, value: &str) -> Result<Rua, GenerateError> {
    let text = value.trim();
    if text.is_empty() {
        return Err(GenerateError::RuaEmpty { number });
    }
    let no_scheme = || GenerateError::RuaNoScheme {
        value: value.to_owned(),
    };
    let (scheme, rest) = text.split_once(':').ok_or_else(no_scheme)?;
    // RFC 3986 §3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ); anything else
    // before the ':' (an address such as "a@b:c") means the scheme was left out.
    let mut chars = scheme.chars();
    let scheme_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !scheme_ok {
        return Err(no_scheme());
    }
    // RFC 3986 §3.1: schemes are case-insensitive; the canonical form is lower case.
    let uri = match scheme.to_ascii_lowercase().as_str() {
        "mailto" => mailto_uri(value, rest)?,
        "https" => format!("https:{}", encode_rfc8460_delimiters(rest)),
        _ => {
            return Err(GenerateError::RuaScheme {
                value: value.to_owned(),
                scheme: scheme.to_owned(),
            });
        }
    };
    let rua = Rua::parse(&uri).map_err(|error| GenerateError::RuaBadUri {
        value: value.to_owned(),
        uri: uri.clone(),
        error,
    })?;
    if !rua.usable() {
        // A mailto: built above always has local@domain, so only https: lands here.
        return Err(GenerateError::RuaHttpsNoHost {
            value: value.to_owned(),
        });
    }
    Ok(rua)
}

/// `mailto:` + the address in `rest`, percent-encoded as RFC 6068 §2 and RFC 8460 §3
/// require. `rest` may already hold `%XX` escapes; they are decoded first so nothing is
/// encoded twice.
fn mailto_uri(value: &str, rest: &str) -> Result<String, GenerateError> {
    let decoded = percent_decode(rest);
    let no_address = || GenerateError::RuaMailtoNoAddress {
        value: value.to_owned(),
    };
    let at = decoded
        .iter()
        .rposition(|&b| b == b'@')
        .ok_or_else(no_address)?;
    let (local, domain) = (&decoded[..at], &decoded[at + 1..]);
    if local.is_empty() {
        return Err(no_address());
    }
    // Two '@' mean two addresses run together ("a@x,b@y"); RFC 6068 would read them as a
    // list, but a rua element is one destination.
    if local.contains(&b'@') {
        return Err(GenerateError::RuaMailtoSeveral {
            value: value.to_owned(),
        });
    }
    let domain = DomainName::parse(&String::from_utf8_lossy(domain)).map_err(|error| {
        GenerateError::RuaMailtoBadDomain {
            value: value.to_owned(),
            error,
        }
    })?;
    Ok(format!("mailto:{}@{domain}", encode_local_part(local)))
}

/// Decodes `%XX` escapes; a `%` not followed by two hex digits stays a literal `%`.
fn percent_decode(s: &str) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = s.get(i + 1..i + 3)
            && hex.bytes().all(|b| b.is_ascii_hexdigit())
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

/// Percent-encodes a mailto local part. RFC 6068 §2 lets an address hold `unreserved` and
/// `some-delims` as they are; of those, RFC 8460 §3 requires `!`, `,` and `;` encoded
/// ("commas, exclamation points, and semicolons MUST be encoded"), because `,` separates rua
/// URIs and `;` ends the record's field. Everything else (space, quotes, `%`, `?`, `&`, `=`,
/// `@`, non-ASCII bytes) is encoded as RFC 6068 requires.
fn encode_local_part(local: &[u8]) -> String {
    let mut out = String::with_capacity(local.len());
    for &b in local {
        let keep = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.' | b'_' | b'~' | b'$' | b'\'' | b'(' | b')' | b'*' | b'+' | b':'
            );
        if keep {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Encodes the three characters RFC 8460 §3 forbids unencoded in any rua URI; the rest of
/// an https: URL is kept as typed and checked by [`Rua::parse`].
fn encode_rfc8460_delimiters(s: &str) -> String {
    s.replace(',', "%2C")
        .replace(';', "%3B")
        .replace('!', "%21")
}

/// A TXT value as a zone file (RFC 1035 §5.1) needs it: in double quotes, `"` and `\`
/// escaped, split into character-strings of at most 255 octets (RFC 1035 §3.3.14), which
/// a resolver joins again.
fn zone_quoted(value: &str) -> String {
    let mut strings = Vec::new();
    let mut current = String::new();
    let mut octets = 0;
    for c in value.chars() {
        if octets + c.len_utf8() > 255 {
            strings.push(std::mem::take(&mut current));
            octets = 0;
        }
        octets += c.len_utf8();
        if matches!(c, '"' | '\\') {
            current.push('\\');
        }
        current.push(c);
    }
    strings.push(current);
    strings
        .iter()
        .map(|s| format!("\"{s}\""))
        .collect::<Vec<_>>()
        .join(" ")
}

impl Generated {
    /// Prints the three items for a person to paste into a DNS console and a web server:
    /// each TXT record's owner name and its value quoted as a zone file needs, then the
    /// policy URL and the body between marker lines, and a reminder about the id.
    pub fn write_text(&self, out: &mut impl Write) -> io::Result<()> {
        writeln!(out, "1. DNS TXT record (MTA-STS)")?;
        writeln!(out, "   name:  {}", self.sts_txt_name)?;
        writeln!(out, "   value: {}", zone_quoted(&self.sts_txt))?;
        writeln!(out)?;
        writeln!(out, "2. DNS TXT record (TLS reporting)")?;
        writeln!(out, "   name:  {}", self.tlsrpt_txt_name)?;
        writeln!(out, "   value: {}", zone_quoted(&self.tlsrpt_txt))?;
        writeln!(out)?;
        writeln!(
            out,
            "3. Policy file, served over HTTPS with a valid certificate, as text/plain"
        )?;
        writeln!(out, "   url:   {}", self.policy_url)?;
        writeln!(out, "   body (the lines between the markers):")?;
        writeln!(out, "-----")?;
        out.write_all(self.policy.as_bytes())?;
        writeln!(out, "-----")?;
        writeln!(out)?;
        writeln!(
            out,
            "Any later change to the policy needs a new id in the _mta-sts TXT record \
             (currently {}), or senders keep the cached policy.",
            self.id
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::Severity;
    use crate::lint::{LintInput, lint};
    use proptest::prelude::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-11-29 04:46:14 UTC);

    fn spec(domain: &str, mx: &[&str], mode: Mode, max_age: u32, rua: &[&str]) -> GenerateSpec {
        GenerateSpec {
            domain: DomainName::parse(domain).unwrap(),
            mx: mx.iter().map(|s| (*s).to_owned()).collect(),
            mode,
            max_age,
            rua: rua.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    fn base() -> GenerateSpec {
        spec(
            "example.com",
            &["mail.example.com"],
            Mode::Testing,
            DEFAULT_MAX_AGE,
            &["mailto:tlsrpt@example.com"],
        )
    }

    /// Lints everything generated; `hosts` are the MX host names the policy must cover.
    fn lint_generated(g: &Generated, domain: &str, hosts: &[&str]) -> crate::lint::LintReport {
        lint(&LintInput {
            domain: Some(domain.to_owned()),
            policy: Some(g.policy.as_bytes().to_vec()),
            sts_txt: vec![g.sts_txt.clone()],
            tlsrpt_txt: vec![g.tlsrpt_txt.clone()],
            tlsrpt_name: Some(
                g.tlsrpt_txt_name
                    .strip_suffix(&format!(".{domain}"))
                    .unwrap()
                    .to_owned(),
            ),
            mx: hosts.iter().map(|s| (*s).to_owned()).collect(),
        })
        .unwrap()
    }

    struct Case {
        name: &'static str,
        spec: GenerateSpec,
        /// MX host names to check coverage with.
        hosts: &'static [&'static str],
        /// The policy's mx lines, in order.
        want_mx: &'static [&'static str],
        /// The rua URIs, in order.
        want_rua: &'static [&'static str],
    }

    fn cases() -> Vec<Case> {
        vec![
            Case {
                name: "one MX, testing",
                spec: base(),
                hosts: &["mail.example.com"],
                want_mx: &["mail.example.com"],
                want_rua: &["mailto:tlsrpt@example.com"],
            },
            Case {
                name: "several MX, enforce, repeats and case folded, trailing dot",
                spec: spec(
                    "example.org",
                    &[
                        "MX1.Example.org",
                        "mx2.example.org.",
                        "mx1.example.org",
                        " backup.example.net ",
                    ],
                    Mode::Enforce,
                    31_557_600,
                    &["mailto:tls@example.org"],
                ),
                hosts: &["mx1.example.org", "mx2.example.org", "backup.example.net"],
                want_mx: &["mx1.example.org", "mx2.example.org", "backup.example.net"],
                want_rua: &["mailto:tls@example.org"],
            },
            Case {
                name: "wildcard pattern",
                spec: spec(
                    "example.com",
                    &["*.mail.protection.example.net", "mail.example.com"],
                    Mode::Enforce,
                    DEFAULT_MAX_AGE,
                    &["mailto:tlsrpt@example.com"],
                ),
                hosts: &[
                    "example-com.mail.protection.example.net",
                    "mail.example.com",
                ],
                want_mx: &["*.mail.protection.example.net", "mail.example.com"],
                want_rua: &["mailto:tlsrpt@example.com"],
            },
            Case {
                name: "several rua, mailto and https, scheme case, repeat",
                spec: spec(
                    "example.com",
                    &["mail.example.com"],
                    Mode::Testing,
                    1_209_600,
                    &[
                        "mailto:tlsrpt@example.com",
                        "https://reports.example.net/v1/tlsrpt?x=1",
                        "MAILTO:tlsrpt@EXAMPLE.com",
                        "HTTPS://collector.example.org:8443/tlsrpt",
                    ],
                ),
                hosts: &["mail.example.com"],
                want_mx: &["mail.example.com"],
                want_rua: &[
                    "mailto:tlsrpt@example.com",
                    "https://reports.example.net/v1/tlsrpt?x=1",
                    "https://collector.example.org:8443/tlsrpt",
                ],
            },
            Case {
                name: "addresses needing percent-encoding",
                spec: spec(
                    "example.com",
                    &["mail.example.com"],
                    Mode::Testing,
                    DEFAULT_MAX_AGE,
                    &[
                        "mailto:tls,rpt;x!y@example.com",
                        "mailto:already%2Cencoded@example.com",
                        "mailto:a b\"c%zz@example.com",
                        "https://r.example.net/a,b;c!d",
                    ],
                ),
                hosts: &["mail.example.com"],
                want_mx: &["mail.example.com"],
                want_rua: &[
                    "mailto:tls%2Crpt%3Bx%21y@example.com",
                    "mailto:already%2Cencoded@example.com",
                    "mailto:a%20b%22c%25zz@example.com",
                    "https://r.example.net/a%2Cb%3Bc%21d",
                ],
            },
            Case {
                name: "IDN domain given as an A-label, U-label MX and mail domain converted",
                spec: spec(
                    "xn--bcher-kva.example",
                    &["mx.xn--bcher-kva.example", "*.bücher.example"],
                    Mode::Enforce,
                    DEFAULT_MAX_AGE,
                    &["mailto:tlsrpt@bücher.example"],
                ),
                hosts: &["mx.xn--bcher-kva.example", "mx2.xn--bcher-kva.example"],
                want_mx: &["mx.xn--bcher-kva.example", "*.xn--bcher-kva.example"],
                want_rua: &["mailto:tlsrpt@xn--bcher-kva.example"],
            },
            Case {
                name: "short max_age still accepted, single-label-deep wildcard",
                spec: spec(
                    "example.com",
                    &["*.example.com"],
                    Mode::Testing,
                    86_400,
                    &["https://tlsrpt.example.com/"],
                ),
                hosts: &["mx1.example.com"],
                want_mx: &["*.example.com"],
                want_rua: &["https://tlsrpt.example.com/"],
            },
        ]
    }

    #[test]
    fn generated_items_pass_lint_and_read_back() {
        for case in cases() {
            let name = case.name;
            let g = generate(&case.spec, NOW).unwrap_or_else(|e| panic!("{name}: {e}"));
            let domain = case.spec.domain.as_str();
            let report = lint_generated(&g, domain, case.hosts);
            let loud: Vec<_> = report
                .findings
                .iter()
                .filter(|f| f.severity >= Severity::Warning)
                .collect();
            assert!(loud.is_empty(), "{name}: {loud:#?}");
            assert!(!report.fails(Severity::Warning), "{name}");

            let policy = Policy::parse(&g.policy).unwrap();
            assert_eq!(policy.mode, case.spec.mode, "{name}");
            assert_eq!(policy.max_age, case.spec.max_age, "{name}");
            let mx: Vec<String> = policy.mx.iter().map(ToString::to_string).collect();
            assert_eq!(mx, case.want_mx, "{name}");
            assert!(policy.extensions.is_empty(), "{name}");

            let sts = StsRecord::parse(&g.sts_txt).unwrap();
            assert_eq!(sts.id, "20261129T044614", "{name}");
            assert_eq!(g.id, sts.id, "{name}");
            let tlsrpt = TlsRptRecord::parse(&g.tlsrpt_txt).unwrap();
            let rua: Vec<&str> = tlsrpt.rua.iter().map(Rua::uri).collect();
            assert_eq!(rua, case.want_rua, "{name}");

            assert_eq!(g.sts_txt_name, format!("_mta-sts.{domain}"), "{name}");
            assert_eq!(g.tlsrpt_txt_name, format!("_smtp._tls.{domain}"), "{name}");
            assert_eq!(
                g.policy_url,
                format!("https://mta-sts.{domain}/.well-known/mta-sts.txt"),
                "{name}"
            );
            // Every line ends in CRLF, including the last.
            assert!(g.policy.ends_with("\r\n"), "{name}");
            assert_eq!(
                g.policy.matches('\n').count(),
                g.policy.matches("\r\n").count(),
                "{name}"
            );
        }
    }

    #[test]
    fn exact_output() {
        let mut s = base();
        s.mx.push("*.example.net".to_owned());
        s.rua.push("https://r.example.net/tlsrpt".to_owned());
        let g = generate(&s, NOW).unwrap();
        assert_eq!(
            g,
            Generated {
                sts_txt_name: "_mta-sts.example.com".into(),
                sts_txt: "v=STSv1; id=20261129T044614".into(),
                tlsrpt_txt_name: "_smtp._tls.example.com".into(),
                tlsrpt_txt:
                    "v=TLSRPTv1; rua=mailto:tlsrpt@example.com,https://r.example.net/tlsrpt".into(),
                policy_url: "https://mta-sts.example.com/.well-known/mta-sts.txt".into(),
                policy: "version: STSv1\r\nmode: testing\r\nmx: mail.example.com\r\n\
                         mx: *.example.net\r\nmax_age: 604800\r\n"
                    .into(),
                id: "20261129T044614".into(),
            }
        );
        let json = serde_json::to_value(&g).unwrap();
        let keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys.len(),
            7,
            "sts_txt_name, sts_txt, tlsrpt_txt_name, tlsrpt_txt, policy_url, policy, id: {keys:?}"
        );
        assert_eq!(json["policy"], g.policy.as_str());
    }

    #[test]
    fn text_output() {
        let g = generate(&base(), NOW).unwrap();
        let mut out = Vec::new();
        g.write_text(&mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "1. DNS TXT record (MTA-STS)\n\
             \x20  name:  _mta-sts.example.com\n\
             \x20  value: \"v=STSv1; id=20261129T044614\"\n\
             \n\
             2. DNS TXT record (TLS reporting)\n\
             \x20  name:  _smtp._tls.example.com\n\
             \x20  value: \"v=TLSRPTv1; rua=mailto:tlsrpt@example.com\"\n\
             \n\
             3. Policy file, served over HTTPS with a valid certificate, as text/plain\n\
             \x20  url:   https://mta-sts.example.com/.well-known/mta-sts.txt\n\
             \x20  body (the lines between the markers):\n\
             -----\n\
             version: STSv1\r\n\
             mode: testing\r\n\
             mx: mail.example.com\r\n\
             max_age: 604800\r\n\
             -----\n\
             \n\
             Any later change to the policy needs a new id in the _mta-sts TXT record \
             (currently 20261129T044614), or senders keep the cached policy.\n"
        );
    }

    #[test]
    fn zone_quoting() {
        let cases = [
            ("v=STSv1; id=1".to_owned(), "\"v=STSv1; id=1\"".to_owned()),
            ("a\"b\\c".to_owned(), "\"a\\\"b\\\\c\"".to_owned()),
            (String::new(), "\"\"".to_owned()),
            ("x".repeat(256), format!("\"{}\" \"x\"", "x".repeat(255))),
            (
                "y".repeat(510),
                format!("\"{}\" \"{}\"", "y".repeat(255), "y".repeat(255)),
            ),
        ];
        for (value, want) in cases {
            assert_eq!(zone_quoted(&value), want, "{value:?}");
        }
    }

    #[test]
    fn long_rua_list_is_split_in_the_text_output() {
        let mut s = base();
        s.rua = (0..12)
            .map(|i| format!("mailto:tlsrpt-destination-{i}@reports.example.com"))
            .collect();
        let g = generate(&s, NOW).unwrap();
        assert!(g.tlsrpt_txt.len() > 255);
        let mut out = Vec::new();
        g.write_text(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let line = text
            .lines()
            .find(|l| l.contains("v=TLSRPTv1"))
            .unwrap()
            .trim_start()
            .strip_prefix("value: ")
            .unwrap();
        let strings: Vec<&str> = line.split("\" \"").map(|s| s.trim_matches('"')).collect();
        assert!(strings.len() > 1);
        assert!(strings.iter().all(|s| s.len() <= 255));
        assert_eq!(strings.concat(), g.tlsrpt_txt);
        let report = lint_generated(&g, "example.com", &["mail.example.com"]);
        assert!(!report.fails(Severity::Warning), "{:#?}", report.findings);
    }

    #[test]
    fn default_max_age_passes_lint_and_short_ones_are_warned_not_refused() {
        assert_eq!(DEFAULT_MAX_AGE, 604_800);
        let mut s = base();
        s.max_age = 1;
        let g = generate(&s, NOW).unwrap();
        let report = lint_generated(&g, "example.com", &["mail.example.com"]);
        let codes: Vec<&str> = report
            .findings
            .iter()
            .filter(|f| f.severity >= Severity::Warning)
            .map(|f| f.code.as_ref())
            .collect();
        assert_eq!(codes, ["sts.policy.max-age-short"]);
    }

    #[test]
    fn errors_with_exact_messages() {
        type Edit = fn(&mut GenerateSpec);
        let cases: &[(Edit, GenerateError, &str)] = &[
            (
                |s| s.mode = Mode::None,
                GenerateError::ModeNone,
                "mode none withdraws an MTA-STS policy and is not generated; choose mode testing \
                 to start (or enforce once TLS-RPT reports show no failures)",
            ),
            (
                |s| s.max_age = 0,
                GenerateError::MaxAgeZero,
                "max_age 0 makes senders drop the policy at once; give 1 to 31557600 seconds \
                 (604800, one week, is the default)",
            ),
            (
                |s| s.max_age = 31_557_601,
                GenerateError::MaxAgeTooLarge {
                    max_age: 31_557_601,
                },
                "max_age 31557601 is above 31557600, the maximum RFC 8461 §3.2 allows; give at \
                 most 31557600 (one year)",
            ),
            (
                |s| s.mx.clear(),
                GenerateError::NoMx,
                "no mx given; name every MX host of the domain (or a \"*.\" pattern covering \
                 them), since senders refuse (enforce) or report (testing) an MX the policy does \
                 not list",
            ),
            (
                |s| s.mx = vec!["192.0.2.25".into()],
                GenerateError::MxIpLiteral {
                    entry: "192.0.2.25".into(),
                },
                "mx \"192.0.2.25\" is an IP address; a policy lists MX host names (RFC 8461 §4.1 \
                 matches the name in the MX record), so give the host name from the domain's MX \
                 record",
            ),
            (
                |s| s.mx = vec!["mail.example.com".into(), "*.[2001:db8::1]".into()],
                GenerateError::MxIpLiteral {
                    entry: "*.[2001:db8::1]".into(),
                },
                "mx \"*.[2001:db8::1]\" is an IP address; a policy lists MX host names (RFC 8461 \
                 §4.1 matches the name in the MX record), so give the host name from the \
                 domain's MX record",
            ),
            (
                |s| s.mx = vec!["mail.*.example.com".into()],
                GenerateError::BadMx {
                    entry: "mail.*.example.com".into(),
                    error: MxPatternError::WildcardNotLeftmost {
                        input: "mail.*.example.com".into(),
                    },
                },
                "mx \"mail.*.example.com\" is not a host name or \"*.\" pattern: \
                 \"mail.*.example.com\": a wildcard is only allowed as the leftmost label; give \
                 e.g. \"mail.example.com\" or \"*.example.net\"",
            ),
            (
                |s| s.mx = vec!["  ".into()],
                GenerateError::BadMx {
                    entry: "  ".into(),
                    error: MxPatternError::Empty,
                },
                "mx \"  \" is not a host name or \"*.\" pattern: the mx value is empty; give e.g. \
                 \"mail.example.com\" or \"*.example.net\"",
            ),
            (
                |s| s.mx = vec!["mail_1.example.com".into()],
                GenerateError::BadMx {
                    entry: "mail_1.example.com".into(),
                    error: MxPatternError::Domain(DomainError::BadCharacter {
                        input: "mail_1.example.com".into(),
                        label: "mail_1".into(),
                        ch: '_',
                    }),
                },
                "mx \"mail_1.example.com\" is not a host name or \"*.\" pattern: label \"mail_1\" \
                 of \"mail_1.example.com\" contains '_'; host names use only letters, digits and \
                 '-'; give e.g. \"mail.example.com\" or \"*.example.net\"",
            ),
            (
                |s| s.rua.clear(),
                GenerateError::NoRua,
                "no rua given; RFC 8460 §3 requires at least one TLS-RPT destination, e.g. \
                 mailto:tlsrpt@example.com",
            ),
            (
                |s| s.rua.push(" ".into()),
                GenerateError::RuaEmpty { number: 2 },
                "rua number 2 is empty; give a mailto: address or an https: URL",
            ),
            (
                |s| s.rua = vec!["tlsrpt@example.com".into()],
                GenerateError::RuaNoScheme {
                    value: "tlsrpt@example.com".into(),
                },
                "rua \"tlsrpt@example.com\" has no scheme; write a mailto: address (as in \
                 \"mailto:tlsrpt@example.com\") or an https: URL",
            ),
            (
                |s| s.rua = vec!["tls@rpt:x@example.com".into()],
                GenerateError::RuaNoScheme {
                    value: "tls@rpt:x@example.com".into(),
                },
                "rua \"tls@rpt:x@example.com\" has no scheme; write a mailto: address (as in \
                 \"mailto:tlsrpt@example.com\") or an https: URL",
            ),
            (
                |s| s.rua = vec!["http://r.example.com/".into()],
                GenerateError::RuaScheme {
                    value: "http://r.example.com/".into(),
                    scheme: "http".into(),
                },
                "rua \"http://r.example.com/\" uses the scheme \"http\"; RFC 8460 §3 defines only \
                 mailto: and https:, so write a mailto: address or an https: URL",
            ),
            (
                |s| s.rua = vec!["mailto:tlsrpt".into()],
                GenerateError::RuaMailtoNoAddress {
                    value: "mailto:tlsrpt".into(),
                },
                "rua \"mailto:tlsrpt\" has no address of the form local-part@domain after \
                 \"mailto:\"; write e.g. \"mailto:tlsrpt@example.com\"",
            ),
            (
                |s| s.rua = vec!["mailto:@example.com".into()],
                GenerateError::RuaMailtoNoAddress {
                    value: "mailto:@example.com".into(),
                },
                "rua \"mailto:@example.com\" has no address of the form local-part@domain after \
                 \"mailto:\"; write e.g. \"mailto:tlsrpt@example.com\"",
            ),
            (
                |s| s.rua = vec!["mailto:".into()],
                GenerateError::RuaMailtoNoAddress {
                    value: "mailto:".into(),
                },
                "rua \"mailto:\" has no address of the form local-part@domain after \
                 \"mailto:\"; write e.g. \"mailto:tlsrpt@example.com\"",
            ),
            (
                |s| s.rua = vec!["mailto:a@example.com,mailto:b@example.com".into()],
                GenerateError::RuaMailtoSeveral {
                    value: "mailto:a@example.com,mailto:b@example.com".into(),
                },
                "rua \"mailto:a@example.com,mailto:b@example.com\" holds more than one address; \
                 give each destination as its own rua value",
            ),
            (
                |s| s.rua = vec!["mailto:a@".into()],
                GenerateError::RuaMailtoBadDomain {
                    value: "mailto:a@".into(),
                    error: DomainError::Empty,
                },
                "rua \"mailto:a@\": the part after '@' is not a mail domain: the name is empty",
            ),
            (
                |s| s.rua = vec!["mailto:a@example.com?subject=tls".into()],
                GenerateError::RuaMailtoBadDomain {
                    value: "mailto:a@example.com?subject=tls".into(),
                    error: DomainError::BadCharacter {
                        input: "example.com?subject=tls".into(),
                        label: "com?subject=tls".into(),
                        ch: '?',
                    },
                },
                "rua \"mailto:a@example.com?subject=tls\": the part after '@' is not a mail \
                 domain: label \"com?subject=tls\" of \"example.com?subject=tls\" contains '?'; \
                 host names use only letters, digits and '-'",
            ),
            (
                |s| s.rua = vec!["https://r.example.com/a b,c".into()],
                GenerateError::RuaBadUri {
                    value: "https://r.example.com/a b,c".into(),
                    uri: "https://r.example.com/a b%2Cc".into(),
                    error: UriError::BadChar {
                        offset: 23,
                        ch: ' ',
                    },
                },
                "rua \"https://r.example.com/a b,c\" is not a valid https: URL \
                 (\"https://r.example.com/a b%2Cc\": offset 23: ' ' is not allowed in a URI here \
                 (percent-encode it))",
            ),
            (
                |s| s.rua = vec!["https:/tlsrpt".into()],
                GenerateError::RuaHttpsNoHost {
                    value: "https:/tlsrpt".into(),
                },
                "rua \"https:/tlsrpt\" has no host, so reports cannot be posted to it; write the \
                 full URL, e.g. \"https://tlsrpt.example.com/v1\"",
            ),
        ];
        for (i, (edit, want, message)) in cases.iter().enumerate() {
            let mut s = base();
            edit(&mut s);
            let got = generate(&s, NOW).unwrap_err();
            assert_eq!(&got, want, "case {i}");
            assert_eq!(got.to_string(), *message, "case {i}");
        }
    }

    #[test]
    fn names_too_long_for_dns() {
        // 63+1+63+1+63+1+49 = 241 characters: `_smtp._tls.` (11) makes 252 and
        // `_mta-sts.` (9) 250, both fine; 245 makes `_mta-sts.` 254.
        let label = "a".repeat(63);
        let fits = format!("{label}.{label}.{label}.{}", "b".repeat(49));
        assert_eq!(fits.len(), 241);
        let mut s = base();
        s.domain = DomainName::parse(&fits).unwrap();
        s.mx = vec![format!("mx.{}", "c".repeat(10))];
        assert!(generate(&s, NOW).is_ok());

        let long = format!("{label}.{label}.{label}.{}", "b".repeat(53));
        s.domain = DomainName::parse(&long).unwrap();
        let err = generate(&s, NOW).unwrap_err();
        assert_eq!(
            err,
            GenerateError::NameTooLong {
                name: format!("_mta-sts.{long}"),
                len: 254,
            }
        );
        assert_eq!(
            err.to_string(),
            format!(
                "_mta-sts.{long} would be 254 characters long; DNS names have at most 253, so the \
                 domain is too long to publish MTA-STS under"
            )
        );

        let middle = format!("{label}.{label}.{label}.{}", "b".repeat(51));
        s.domain = DomainName::parse(&middle).unwrap();
        assert_eq!(
            generate(&s, NOW).unwrap_err(),
            GenerateError::NameTooLong {
                name: format!("_smtp._tls.{middle}"),
                len: 254,
            }
        );
    }

    #[test]
    fn read_back_error_message() {
        let err = read_back::<u32, String>("policy", Err("line 2: oops".to_owned()), &1);
        assert_eq!(
            err.unwrap_err().to_string(),
            "the generated policy does not read back as generated (line 2: oops); this is a bug \
             in mxprobe, please report it with the command line used"
        );
        let err = read_back::<u32, String>("_mta-sts record", Ok(2), &1);
        assert_eq!(
            err.unwrap_err(),
            GenerateError::ReadBack {
                item: "_mta-sts record",
                detail: "read as 2".into(),
            }
        );
        assert_eq!(read_back::<u32, String>("policy", Ok(1), &1), Ok(()));
    }

    #[test]
    fn policy_id_format() {
        let cases = [
            (datetime!(2026-11-29 04:46:14 UTC), "20261129T044614"),
            // Converted to UTC first.
            (datetime!(2026-11-29 06:46:14 +02:00), "20261129T044614"),
            (datetime!(2026-12-31 23:30:00 -01:00), "20270101T003000"),
            (datetime!(0999-01-02 03:04:05 UTC), "09990102T030405"),
            (datetime!(1970-01-01 00:00:00 UTC), "19700101T000000"),
            (datetime!(9999-12-31 23:59:59 UTC), "99991231T235959"),
            // The UTC instant is past the supported range: the given fields are used.
            (datetime!(9999-12-31 23:00:00 -05:00), "99991231T230000"),
        ];
        for (now, want) in cases {
            let id = policy_id(now);
            assert_eq!(id, want, "{now}");
            assert!(id.len() <= 32 && id.bytes().all(|b| b.is_ascii_alphanumeric()));
        }
        assert_ne!(policy_id(NOW), policy_id(NOW + time::Duration::seconds(1)));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// generate never panics on arbitrary mx and rua strings, and whatever it accepts
        /// passes lint without a warning.
        #[test]
        fn accepted_output_passes_lint(
            mx in proptest::collection::vec(
                prop_oneof![
                    1 => "\\PC{0,24}",
                    1 => "(\\*\\.)?[a-z0-9ü*_. -]{1,10}\\.example",
                    10 => "(\\*\\.)?([a-zA-Z0-9]([a-zA-Z0-9-]{0,6}[a-zA-Z0-9])?\\.){1,3}[a-zA-Z]{2,4}\\.?",
                ],
                1..4,
            ),
            rua in proptest::collection::vec(
                prop_oneof![
                    1 => "\\PC{0,24}",
                    1 => "(mailto:|https://|http://)[a-z0-9@.,;!%?&=/ :\"ü#\\[\\]-]{0,24}",
                    8 => "(mailto|MailTo):[a-zA-Z0-9.,;!%?&=/ :\"ü#+@-]{1,12}@[a-z0-9-]{1,8}\\.example",
                    4 => "(https|HTTPS)://[a-z0-9-]{1,8}\\.example(:[0-9]{1,5})?(/[a-zA-Z0-9.,;!%?&=_~-]{0,12})?",
                ],
                1..4,
            ),
            max_age in 86_400u32..=31_557_600,
            enforce in any::<bool>(),
        ) {
            let s = GenerateSpec {
                domain: DomainName::parse("example.com").unwrap(),
                mx,
                mode: if enforce { Mode::Enforce } else { Mode::Testing },
                max_age,
                rua,
            };
            if let Ok(g) = generate(&s, NOW) {
                // Cover every exact pattern and one host under every wildcard.
                let policy = Policy::parse(&g.policy).unwrap();
                let hosts: Vec<String> = policy
                    .mx
                    .iter()
                    .map(|p| if p.is_wildcard() {
                        format!("mx.{}", p.domain())
                    } else {
                        p.domain().to_string()
                    })
                    .filter(|h| DomainName::parse(h).is_ok())
                    .collect();
                let hosts: Vec<&str> = hosts.iter().map(String::as_str).collect();
                let report = lint_generated(&g, "example.com", &hosts);
                prop_assert!(!report.fails(Severity::Warning), "{:#?}", report.findings);
            }
        }
    }
}
