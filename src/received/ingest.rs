//! Finding and reading the TLS-RPT reports (RFC 8460) a domain owner received: report files
//! (`.json`, `.json.gz`, `.gz`), report mails (`.eml`, RFC 8460 §5.3), mbox files and
//! Maildir folders, or directories holding any of these.
//!
//! This module reads the file system (the only I/O it does) and decodes what it finds: MIME
//! and the mbox format with `mail-parser`, gzip with `flate2`, the report JSON with the
//! tolerant reader of [`mxprobe_core::tlsrpt::report`]. It writes nothing and keeps nothing: each
//! report is handed to the caller as soon as it is decoded (`mxprobe reports ingest` stores
//! it at once), so that memory holds one file and one decompressed report at a time however
//! many there are. One unreadable file, message or attachment is a [`Skipped`] entry naming
//! where it was and why, never an abort of the others, and every read is bounded
//! ([`MAX_FILE_BYTES`] per file, [`MAX_REPORT_BYTES`] per decompressed report).

use std::collections::HashSet;
use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;
use mail_parser::mailbox::mbox::MessageIterator;
use mail_parser::{Message, MessageParser, MessagePart, MimeHeaders, PartType};

use mxprobe_core::tlsrpt::report::{MAX_REPORT_BYTES, ReadError, ReadReport, Report};

/// The largest file, in bytes, that [`ingest`] reads: a report file, one mail, an mbox file
/// or a Maildir message. A larger one is [`Skipped`] without being read.
///
/// Daily reports are kilobytes; even a large receiver's gzip report stays far below this, and
/// a mailbox larger than this is better split (or its reports saved as files) than held in
/// memory whole.
pub const MAX_FILE_BYTES: u64 = 32 * 1024 * 1024;

/// The two bytes every gzip member starts with (RFC 1952 §2.3.1: ID1, ID2).
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Where one report (or one failure to read one) came from: the file, and for mbox files
/// the message in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The file (for a Maildir, the message's own file).
    pub path: PathBuf,
    /// Within an mbox file, which message: its position from 1, then its Message-ID when it
    /// has one (`3, Message-ID <id@example.com>`). `None` when the file is the message or
    /// the report.
    pub message: Option<String>,
}

impl Origin {
    /// The origin of a whole file: a report file, or a file holding one message.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            message: None,
        }
    }
}

impl fmt::Display for Origin {
    /// `path`, or `path (message …)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.message {
            None => write!(f, "{}", self.path.display()),
            Some(message) => write!(f, "{} (message {message})", self.path.display()),
        }
    }
}

/// One report read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ingested {
    /// Where it was found.
    pub origin: Origin,
    /// The report, with every departure from RFC 8460 the reader tolerated.
    pub read: ReadReport,
    /// The report's JSON as received (decompressed when it came gzipped), for keeping.
    pub json: Vec<u8>,
}

/// A file, message or attachment that gave no report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// Where it was found.
    pub origin: Origin,
    /// What is wrong with it and what was expected instead, e.g. `no
    /// application/tlsrpt+gzip or +json part; is this a TLS-RPT report mail?`.
    pub reason: String,
}

impl fmt::Display for Skipped {
    /// `origin: reason`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.origin, self.reason)
    }
}

/// One outcome of [`ingest`]: a report, or something that could not be read as one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// A report was read.
    Report(Ingested),
    /// A file, message or attachment gave no report.
    Skipped(Skipped),
}

impl Found {
    /// Where the report or the failure came from.
    pub fn origin(&self) -> &Origin {
        match self {
            Self::Report(ingested) => &ingested.origin,
            Self::Skipped(skipped) => &skipped.origin,
        }
    }
}

/// Why a file, message or attachment gave no report. Each message reads after the origin
/// (`path: …`) and says what was expected.
#[derive(Debug, thiserror::Error)]
enum Problem {
    /// The file is over [`MAX_FILE_BYTES`].
    #[error(
        "the file is {size} bytes, over the {limit}-byte limit for one report file, mail or \
         mbox file; split the mailbox or save the report attachments as files"
    )]
    FileTooLarge {
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The file or directory could not be opened, read or listed.
    #[error("cannot be read: {source}")]
    Unreadable {
        /// The operating system's complaint.
        #[source]
        source: io::Error,
    },
    /// A directory reached a second time through a symbolic link.
    #[error(
        "is a directory already read through another path (a symbolic link loop); \
         skipped so its reports are read once"
    )]
    AlreadyVisited,
    /// A device, socket or pipe.
    #[error(
        "is neither a regular file nor a directory; expected a report file, a mail, an mbox \
         file or a directory of them"
    )]
    NotAFile,
    /// An empty file.
    #[error("is empty; expected a TLS-RPT report (JSON or gzip) or a report mail")]
    Empty,
    /// A file that is none of the kinds [`ingest`] reads.
    #[error(
        "is not a TLS-RPT report: expected a .json, .json.gz or .gz report (RFC 8460 §4), \
         an .eml report mail (RFC 8460 §5.3), an mbox file (first line \"From \") or a \
         Maildir folder (cur/ and new/)"
    )]
    Unrecognised,
    /// Bytes read as a mail that have no header section.
    #[error("is not an e-mail message: it has no header fields (RFC 5322 §2.2)")]
    NotMail,
    /// A mail without a report attachment.
    #[error(
        "no application/tlsrpt+gzip or +json part; is this a TLS-RPT report mail? \
         (RFC 8460 §5.3 sends the report as such a part of a multipart/report message)"
    )]
    NoReportPart,
    /// A report attachment of a mail that could not be read.
    #[error("{part}: {source}")]
    Part {
        /// Which part, e.g. `the application/tlsrpt+gzip part "a.json.gz"`.
        part: String,
        /// What is wrong with it (boxed: the reader's errors are large, the rest small).
        #[source]
        source: Box<Content>,
    },
    /// A report file that could not be read.
    #[error(transparent)]
    Content(Box<Content>),
}

/// Why bytes that should hold a report (a file or a mail part) do not give one.
#[derive(Debug, thiserror::Error)]
enum Content {
    /// The part's transfer encoding could not be undone.
    #[error(
        "its Content-Transfer-Encoding ({encoding}) cannot be decoded: a character outside \
         the encoding's alphabet, or the part is cut off before its closing boundary"
    )]
    BrokenTransferEncoding {
        /// The Content-Transfer-Encoding as declared, e.g. `base64`.
        encoding: String,
    },
    /// Declared gzip, but neither gzip nor JSON.
    #[error(
        "{declared}, but does not start with the gzip bytes 1f 8b (RFC 1952) and is not \
         JSON either"
    )]
    NotGzip {
        /// How it was declared gzip: `is named .gz` or `is declared application/tlsrpt+gzip`.
        declared: &'static str,
    },
    /// The reader's complaint: bad gzip, bad JSON, a missing or wrong member.
    #[error(transparent)]
    Read(#[from] ReadError),
}

/// Every report under `paths`, handed to `each` as soon as it is read (and dropped
/// afterwards), in a deterministic order: the paths as given; within a directory, its
/// entries sorted by name; within an mbox file or a mail, file order. The first error
/// `each` returns ends the walk and is returned.
///
/// A path may be:
/// - a report file: `.json`, or `.json.gz` / `.gz` (gzip, RFC 8460 §5.2);
/// - a report mail (`.eml`), read with [`reports_in_message`];
/// - an mbox file, recognised by its first line starting with `From ` whatever its name;
///   its messages are split as mboxrd (a `>From ` line inside a message loses one `>`);
/// - a Maildir folder (a directory with `cur/` and `new/`): every file in `cur/` and `new/`
///   is one message; `tmp/` (deliveries in progress) is left alone;
/// - any other directory, walked recursively by the rules above. Hidden entries (names
///   starting with `.`) are passed over silently inside a walk; a Maildir++ subfolder such as
///   `~/Maildir/.tlsrpt` is read when given itself.
///
/// A file with another name is still read when its content shows what it is (gzip bytes,
/// a JSON object, or mail header fields, as in MH folders), except DMARC reports (`.xml`,
/// `.xml.gz`, `.zip`); anything else is [`Skipped`] with the kinds expected. Nothing here
/// is fatal: an unreadable path, message or attachment is one [`Found::Skipped`] among the
/// others.
pub fn ingest<E>(paths: &[PathBuf], mut each: impl FnMut(Found) -> Result<(), E>) -> Result<(), E> {
    let mut walk = Walk {
        each: &mut each,
        stopped: None,
        visited: HashSet::new(),
    };
    for path in paths {
        if walk.stopped.is_some() {
            break;
        }
        walk.path(path);
    }
    walk.stopped.map_or(Ok(()), Err)
}

/// The reports in one e-mail message (RFC 8460 §5.3), decoded, in part order: every
/// `application/tlsrpt+gzip` and `application/tlsrpt+json` part, and, tolerated, an
/// `application/gzip`, `application/x-gzip`, `application/json` or
/// `application/octet-stream` part whose file name ends in `.json`, `.json.gz` or `.gz`
/// (not a DMARC report's `.xml.gz`). Forwarded messages (`message/rfc822` parts) are
/// searched too.
///
/// A message without such a part gives one [`Skipped`]; each part that cannot be decoded
/// gives one [`Skipped`] naming the part, beside the reports of the others. Each outcome is
/// handed to `each` as soon as its part is decoded.
pub fn reports_in_message(raw: &[u8], origin: &Origin, each: &mut dyn FnMut(Found)) {
    let parsed = MessageParser::new().parse(raw);
    reports_in_parsed(parsed.as_ref(), origin, each);
}

/// [`reports_in_message`] for a message already parsed (`None`: no header section).
fn reports_in_parsed(message: Option<&Message<'_>>, origin: &Origin, each: &mut dyn FnMut(Found)) {
    let Some(message) = message else {
        return each(skipped(origin, &Problem::NotMail));
    };
    if collect_parts(message, origin, each) == 0 {
        each(skipped(origin, &Problem::NoReportPart));
    }
}

/// Hands on the outcome of every report part of `message` (and of messages nested in it);
/// returns how many there were.
fn collect_parts(message: &Message<'_>, origin: &Origin, each: &mut dyn FnMut(Found)) -> usize {
    let mut count = 0;
    for part in &message.parts {
        if let PartType::Message(nested) = &part.body {
            count += collect_parts(nested, origin, each);
            continue;
        }
        let Some(kind) = report_part(part) else {
            continue;
        };
        let outcome = if part.is_encoding_problem {
            // The parser forgets the encoding it failed on; the header still names it
            // (RFC 2045 §6.1: 7bit when absent).
            Err(Content::BrokenTransferEncoding {
                encoding: part
                    .content_transfer_encoding()
                    .unwrap_or("7bit")
                    .to_ascii_lowercase(),
            })
        } else {
            decode(part.contents(), kind.gzip_declared)
        };
        count += 1;
        each(match outcome {
            Ok((read, json)) => Found::Report(Ingested {
                origin: origin.clone(),
                read,
                json,
            }),
            Err(source) => skipped(
                origin,
                &Problem::Part {
                    part: kind.label,
                    source: Box::new(source),
                },
            ),
        });
    }
    count
}

/// A mail part that carries a report: how to describe it, and whether it says it is gzip.
struct ReportPart {
    /// `the application/tlsrpt+gzip part "name.json.gz"`.
    label: String,
    /// How the part declares gzip, if it does.
    gzip_declared: Option<&'static str>,
}

/// Whether `part` is a report attachment (RFC 8460 §5.3 media types, or a generic type
/// with a report file name, as some senders and forwarding clients write).
fn report_part(part: &MessagePart<'_>) -> Option<ReportPart> {
    let content_type = part.content_type()?;
    let media_type = format!(
        "{}/{}",
        content_type.ctype(),
        content_type.subtype().unwrap_or_default()
    )
    .to_ascii_lowercase();
    let name = part.attachment_name();
    let gzip_declared = match media_type.as_str() {
        "application/tlsrpt+gzip" => Some("is declared application/tlsrpt+gzip"),
        "application/tlsrpt+json" => None,
        "application/gzip"
        | "application/x-gzip"
        | "application/json"
        | "application/octet-stream" => match name.and_then(report_name)? {
            ReportName::Gzip => Some(NAMED_GZ),
            ReportName::Json => None,
        },
        _ => return None,
    };
    let label = match name {
        Some(name) => format!("the {media_type} part {name:?}"),
        None => format!("the {media_type} part"),
    };
    Some(ReportPart {
        label,
        gzip_declared,
    })
}

/// Decodes report bytes: gunzips them when they start with the gzip magic (whatever they
/// were called), then reads the JSON. `gzip_declared` says how the bytes were declared
/// gzip, so that plain bytes under a gzip name get a clear complaint.
fn decode(
    bytes: &[u8],
    gzip_declared: Option<&'static str>,
) -> Result<(ReadReport, Vec<u8>), Content> {
    let json = if bytes.starts_with(&GZIP_MAGIC) {
        gunzip(bytes)?
    } else if let Some(declared) = gzip_declared
        && !looks_like_json(bytes)
    {
        return Err(Content::NotGzip { declared });
    } else {
        bytes.to_vec()
    };
    let read = Report::from_json(&json)?;
    Ok((read, json))
}

/// Every gzip member decompressed (RFC 1952 §2.2), reading at most one byte past
/// [`MAX_REPORT_BYTES`] so a gzip bomb stops early.
fn gunzip(bytes: &[u8]) -> Result<Vec<u8>, ReadError> {
    let cap = u64::try_from(MAX_REPORT_BYTES)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    let mut out = Vec::new();
    MultiGzDecoder::new(bytes)
        .take(cap)
        .read_to_end(&mut out)
        .map_err(|source| ReadError::Gzip { source })?;
    if out.len() > MAX_REPORT_BYTES {
        return Err(ReadError::TooLarge {
            limit: MAX_REPORT_BYTES,
        });
    }
    Ok(out)
}

/// Whether the first byte after white space (and a UTF-8 byte order mark, which some
/// reporters write) opens a JSON object, as a report does.
fn looks_like_json(bytes: &[u8]) -> bool {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
}

/// Whether the first line is an RFC 5322 header field (`name:`, the name printable ASCII
/// without `:`), as every mail starts.
fn looks_like_mail(bytes: &[u8]) -> bool {
    let name_len = bytes
        .iter()
        .position(|&b| !(b'!'..=b'~').contains(&b) || b == b':')
        .unwrap_or(bytes.len());
    name_len > 0 && bytes.get(name_len) == Some(&b':')
}

/// How a report file's name declares gzip.
const NAMED_GZ: &str = "is named .gz";

/// What a file name says about the report in it.
enum ReportName {
    /// `.json.gz` or `.gz`: gzip-compressed JSON.
    Gzip,
    /// `.json`: plain JSON.
    Json,
}

/// The endings of the other reports that travel the same way: DMARC aggregate reports
/// (RFC 7489 §7.2.1.1, XML, gzip or zip) land in the same folders and are not TLS-RPT.
const OTHER_REPORT_SUFFIXES: [&str; 3] = [".xml", ".xml.gz", ".zip"];

/// What `name` says by its ending (ASCII case ignored): `.json`, or `.json.gz` / `.gz`
/// except a DMARC report's `.xml.gz`.
fn report_name(name: &str) -> Option<ReportName> {
    if has_suffix(name, ".json") {
        Some(ReportName::Json)
    } else if has_suffix(name, ".gz") && !has_suffix(name, ".xml.gz") {
        Some(ReportName::Gzip)
    } else {
        None
    }
}

/// Whether a file name ends in `suffix`, ignoring ASCII case.
fn has_suffix(name: &str, suffix: &str) -> bool {
    name.len() >= suffix.len()
        && name
            .get(name.len() - suffix.len()..)
            .is_some_and(|end| end.eq_ignore_ascii_case(suffix))
}

/// Whether the last component of `path` starts with `.`.
fn is_hidden(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|name| name.as_encoded_bytes().starts_with(b"."))
}

/// A [`Found::Skipped`] at `origin`.
fn skipped(origin: &Origin, problem: &Problem) -> Found {
    Found::Skipped(Skipped {
        origin: origin.clone(),
        reason: problem.to_string(),
    })
}

/// What a file holds, by its first line, its name, then its content.
enum FileKind {
    /// An mbox file.
    Mbox,
    /// One mail.
    Message,
    /// One report, gzip or JSON.
    Report {
        /// How the name declares gzip, if it does.
        gzip_declared: Option<&'static str>,
    },
    /// Nothing in it.
    Empty,
    /// None of the above.
    Unrecognised,
}

/// Classifies a file; see [`ingest`] for the rules.
fn classify(path: &Path, bytes: &[u8]) -> FileKind {
    if bytes.starts_with(b"From ") {
        return FileKind::Mbox;
    }
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy())
        .unwrap_or_default();
    if let Some(named) = report_name(&name) {
        FileKind::Report {
            gzip_declared: match named {
                ReportName::Gzip => Some(NAMED_GZ),
                ReportName::Json => None,
            },
        }
    } else if OTHER_REPORT_SUFFIXES
        .iter()
        .any(|suffix| has_suffix(&name, suffix))
    {
        FileKind::Unrecognised
    } else if has_suffix(&name, ".eml") {
        FileKind::Message
    } else if bytes.is_empty() {
        FileKind::Empty
    } else if bytes.starts_with(&GZIP_MAGIC) || looks_like_json(bytes) {
        FileKind::Report {
            gzip_declared: None,
        }
    } else if looks_like_mail(bytes) {
        FileKind::Message
    } else {
        FileKind::Unrecognised
    }
}

/// Reads a whole file of at most [`MAX_FILE_BYTES`]; the size is checked before reading,
/// and the read stops one byte past the limit should the file grow meanwhile.
fn read_bounded(path: &Path) -> Result<Vec<u8>, Problem> {
    let unreadable = |source| Problem::Unreadable { source };
    let file = File::open(path).map_err(unreadable)?;
    let size = file.metadata().map_err(unreadable)?.len();
    if size > MAX_FILE_BYTES {
        return Err(Problem::FileTooLarge {
            size,
            limit: MAX_FILE_BYTES,
        });
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    let read = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
    if read > MAX_FILE_BYTES {
        return Err(Problem::FileTooLarge {
            size: read,
            limit: MAX_FILE_BYTES,
        });
    }
    Ok(bytes)
}

/// The state of one [`ingest`] call.
struct Walk<'a, E> {
    /// Where each outcome goes.
    each: &'a mut dyn FnMut(Found) -> Result<(), E>,
    /// The error that ended the walk.
    stopped: Option<E>,
    /// Directories already read (canonical paths), so a symbolic link loop ends.
    visited: HashSet<PathBuf>,
}

impl<E> Walk<'_, E> {
    /// Hands on one outcome, unless the walk has stopped.
    fn emit(&mut self, found: Found) {
        if self.stopped.is_none()
            && let Err(e) = (self.each)(found)
        {
            self.stopped = Some(e);
        }
    }

    /// The outcomes of one message.
    fn message(&mut self, bytes: &[u8], origin: &Origin) {
        reports_in_message(bytes, origin, &mut |found| self.emit(found));
    }

    /// One path given or met in a walk: a file or a directory.
    fn path(&mut self, path: &Path) {
        match fs::metadata(path) {
            Err(source) => self.skip(path, &Problem::Unreadable { source }),
            Ok(meta) if meta.is_dir() => self.directory(path),
            Ok(meta) if meta.is_file() => self.file(path),
            Ok(_) => self.skip(path, &Problem::NotAFile),
        }
    }

    /// A directory: a Maildir, or a folder to walk.
    fn directory(&mut self, path: &Path) {
        let canonical = match fs::canonicalize(path) {
            Ok(canonical) => canonical,
            Err(source) => return self.skip(path, &Problem::Unreadable { source }),
        };
        if !self.visited.insert(canonical) {
            return self.skip(path, &Problem::AlreadyVisited);
        }
        if path.join("cur").is_dir() && path.join("new").is_dir() {
            for sub in ["cur", "new"] {
                let folder = path.join(sub);
                let Some(entries) = self.entries(&folder) else {
                    continue;
                };
                for entry in entries {
                    if self.stopped.is_some() {
                        return;
                    }
                    self.maildir_message(&entry);
                }
            }
        } else if let Some(entries) = self.entries(path) {
            for entry in entries {
                if self.stopped.is_some() {
                    return;
                }
                self.path(&entry);
            }
        }
    }

    /// The visible entries of a directory, sorted; `None` (and a [`Skipped`]) when it
    /// cannot be listed.
    fn entries(&mut self, dir: &Path) -> Option<Vec<PathBuf>> {
        let listed: io::Result<Vec<PathBuf>> = fs::read_dir(dir).and_then(|entries| {
            entries
                .map(|entry| entry.map(|entry| entry.path()))
                .collect()
        });
        match listed {
            Ok(mut entries) => {
                entries.retain(|entry| !is_hidden(entry));
                entries.sort();
                Some(entries)
            }
            Err(source) => {
                self.skip(dir, &Problem::Unreadable { source });
                None
            }
        }
    }

    /// One file of a Maildir's `cur/` or `new/`: one message, whatever its name.
    fn maildir_message(&mut self, path: &Path) {
        match fs::metadata(path) {
            Err(source) => self.skip(path, &Problem::Unreadable { source }),
            Ok(meta) if !meta.is_file() => self.skip(path, &Problem::NotAFile),
            Ok(_) => match read_bounded(path) {
                Ok(bytes) => self.message(&bytes, &Origin::file(path)),
                Err(problem) => self.skip(path, &problem),
            },
        }
    }

    /// One regular file, by [`classify`].
    fn file(&mut self, path: &Path) {
        let bytes = match read_bounded(path) {
            Ok(bytes) => bytes,
            Err(problem) => return self.skip(path, &problem),
        };
        let origin = Origin::file(path);
        match classify(path, &bytes) {
            FileKind::Mbox => self.mbox(path, &bytes),
            FileKind::Message => self.message(&bytes, &origin),
            FileKind::Report { gzip_declared } => {
                let found = match decode(&bytes, gzip_declared) {
                    Ok((read, json)) => Found::Report(Ingested { origin, read, json }),
                    Err(content) => skipped(&origin, &Problem::Content(Box::new(content))),
                };
                // The file's bytes go before the report is handed on.
                drop(bytes);
                self.emit(found);
            }
            FileKind::Empty => self.skip(path, &Problem::Empty),
            FileKind::Unrecognised => self.skip(path, &Problem::Unrecognised),
        }
    }

    /// The messages of an mbox file, in file order.
    fn mbox(&mut self, path: &Path, bytes: &[u8]) {
        let parser = MessageParser::new();
        for (index, message) in MessageIterator::new(bytes).enumerate() {
            if self.stopped.is_some() {
                return;
            }
            let number = index + 1;
            let message = match message {
                Ok(message) => message,
                // The mbox is in memory, so this does not happen; were it to, the rest of
                // the file could not be read either.
                Err(source) => {
                    let origin = Origin {
                        path: path.to_owned(),
                        message: Some(number.to_string()),
                    };
                    self.emit(skipped(&origin, &Problem::Unreadable { source }));
                    return;
                }
            };
            let parsed = parser.parse(message.contents());
            let label = match parsed.as_ref().and_then(Message::message_id) {
                Some(id) => format!("{number}, Message-ID <{id}>"),
                None => number.to_string(),
            };
            let origin = Origin {
                path: path.to_owned(),
                message: Some(label),
            };
            reports_in_parsed(parsed.as_ref(), &origin, &mut |found| self.emit(found));
        }
    }

    /// Records a [`Skipped`] for a whole file or directory.
    fn skip(&mut self, path: &Path, problem: &Problem) {
        self.emit(skipped(&Origin::file(path), problem));
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;
    use std::process;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD as BASE64;
    use flate2::Compression;
    use flate2::write::GzEncoder;

    use super::*;

    /// Every outcome of [`ingest`], collected.
    fn ingest_all(paths: &[PathBuf]) -> Vec<Found> {
        let mut found = Vec::new();
        ingest(paths, |f| {
            found.push(f);
            Ok::<_, ()>(())
        })
        .unwrap();
        found
    }

    /// Every outcome of [`reports_in_message`], collected.
    fn message_reports(raw: &[u8], origin: &Origin) -> Vec<Found> {
        let mut found = Vec::new();
        reports_in_message(raw, origin, &mut |f| found.push(f));
        found
    }

    /// A directory under the system temp dir, removed when dropped.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> Self {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let path =
                std::env::temp_dir().join(format!("mxprobe-ingest-{name}-{}-{n}", process::id()));
            let _ = fs::remove_dir_all(&path);
            fs::create_dir_all(&path).unwrap();
            Self(path)
        }

        /// Writes `bytes` to `relative`, creating parent directories.
        fn write(&self, relative: &str, bytes: &[u8]) -> PathBuf {
            let path = self.0.join(relative);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, bytes).unwrap();
            path
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn fixtures() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/tlsrpt-reports")
    }

    fn fixture(relative: &str) -> Vec<u8> {
        fs::read(fixtures().join(relative)).unwrap()
    }

    const EXAMPLE_EML: &str = "mox/example.eml";
    const MICROSOFT_EML: &str = "mox/microsoft.eml";
    const GOOGLE_EML: &str = "parsedmarc/google.com_smtp_tls_report.eml";
    const EXAMPLE_JSON: &str =
        "extracted/mox_example__google.com!test.xmox.nl!1663200000!1663286399!001.json";
    const MICROSOFT_JSON: &str = "extracted/mox_microsoft__microsoft.com!test.xmox.nl!1673308800!1673395199!133198585438131172.json";
    const GOOGLE_JSON: &str = "extracted/parsedmarc_google.com_smtp_tls_report__google.com!cardinalhealth.ca!1725321600!1725407999!001.json";
    const EXAMPLE_PART: &str = "google.com!test.xmox.nl!1663200000!1663286399!001.json.gz";

    /// (organization-name, report-id) of the report in each .eml fixture.
    const EXAMPLE_IDS: (&str, &str) = ("Google Inc.", "2022-09-15T00:00:00Z_test.xmox.nl");
    const MICROSOFT_IDS: (&str, &str) =
        ("Microsoft Corporation", "133198585438131172+test.xmox.nl");
    const GOOGLE_IDS: (&str, &str) = ("Google Inc.", "2024-09-03T00:00:00Z_cardinalhealth.ca");

    /// A mail with no report in it; its body has lines an mbox must escape.
    const NOTE_EML: &str = "From: postmaster@example.com\r\nTo: tlsrpt@example.com\r\n\
        Subject: hello\r\nMessage-ID: <note@example.com>\r\n\r\n\
        From the desk of the postmaster:\r\n>From an earlier mail\r\nno report here\r\n";

    /// One line per outcome: `origin → org | id` or `origin → SKIP reason`, origins
    /// relative to `base`.
    fn outline(found: &[Found], base: &Path) -> Vec<String> {
        found
            .iter()
            .map(|f| {
                let origin = f.origin();
                let relative = Origin {
                    path: origin
                        .path
                        .strip_prefix(base)
                        .unwrap_or(&origin.path)
                        .to_owned(),
                    message: origin.message.clone(),
                };
                match f {
                    Found::Report(i) => format!(
                        "{relative} → {} | {}",
                        i.read.report.organization_name, i.read.report.report_id
                    ),
                    Found::Skipped(s) => format!("{relative} → SKIP {}", s.reason),
                }
            })
            .collect()
    }

    fn only_report(found: Vec<Found>) -> Ingested {
        match <[Found; 1]>::try_from(found) {
            Ok([Found::Report(ingested)]) => ingested,
            other => panic!("expected one report, got {other:?}"),
        }
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    /// Base64 in 76-character lines (RFC 2045 §6.8).
    fn base64_lines(bytes: &[u8]) -> String {
        let text = BASE64.encode(bytes);
        text.as_bytes()
            .chunks(76)
            .map(|line| format!("{}\r\n", std::str::from_utf8(line).unwrap()))
            .collect()
    }

    /// An mboxrd file: a `From ` line before each message, and one more `>` on every
    /// line of a message that matches `^>*From `.
    fn mboxrd(messages: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for message in messages {
            out.extend_from_slice(b"From tlsrpt@example.com Thu Sep 15 12:10:00 2022\n");
            for line in message.split_inclusive(|&b| b == b'\n') {
                let quotes = line.iter().take_while(|&&b| b == b'>').count();
                if line[quotes..].starts_with(b"From ") {
                    out.push(b'>');
                }
                out.extend_from_slice(line);
            }
            out.push(b'\n');
        }
        out
    }

    #[test]
    fn every_fixture_report_ingests() {
        let found = ingest_all(&[fixtures()]);
        assert_eq!(
            outline(&found, &fixtures()),
            vec![
                format!("{EXAMPLE_JSON} → Google Inc. | 2022-09-15T00:00:00Z_test.xmox.nl"),
                format!(
                    "{MICROSOFT_JSON} → Microsoft Corporation | 133198585438131172+test.xmox.nl"
                ),
                format!("{GOOGLE_JSON} → Google Inc. | 2024-09-03T00:00:00Z_cardinalhealth.ca"),
                "mox/example.eml → Google Inc. | 2022-09-15T00:00:00Z_test.xmox.nl".to_owned(),
                "mox/microsoft.eml → Microsoft Corporation | 133198585438131172+test.xmox.nl"
                    .to_owned(),
                format!("{GOOGLE_EML} → Google Inc. | 2024-09-03T00:00:00Z_cardinalhealth.ca"),
                "parsedmarc/mail.ru.json → Mail.ru | b28254de-7b2e-be36-bb5c-4c3b92da8b25@mail.ru"
                    .to_owned(),
                "parsedmarc/rfc8460.json → Company-X | 5065427c-23d3-47ca-b6e0-946ea0e8c4be"
                    .to_owned(),
                "parsedmarc/smtp_tls.json → Example Inc. | 2024-01-09T00:00:00Z_example.com"
                    .to_owned(),
            ]
        );
        // A JSON file's bytes are kept as they were.
        let Found::Report(mail_ru) = &found[6] else {
            panic!("{:?}", found[6]);
        };
        assert_eq!(mail_ru.json, fixture("parsedmarc/mail.ru.json"));
        // The same call gives the same list.
        assert_eq!(ingest_all(&[fixtures()]), found);
    }

    #[test]
    fn eml_report_equals_its_extracted_json() {
        for (eml, json, (org, id)) in [
            (EXAMPLE_EML, EXAMPLE_JSON, EXAMPLE_IDS),
            (MICROSOFT_EML, MICROSOFT_JSON, MICROSOFT_IDS),
            (GOOGLE_EML, GOOGLE_JSON, GOOGLE_IDS),
        ] {
            let origin = Origin::file(eml);
            let ingested = only_report(message_reports(&fixture(eml), &origin));
            let extracted = fixture(json);
            assert_eq!(ingested.origin, origin, "{eml}");
            assert_eq!(ingested.json, extracted, "{eml}: the gunzipped attachment");
            assert_eq!(
                ingested.read,
                Report::from_json(&extracted).unwrap(),
                "{eml}"
            );
            assert_eq!(ingested.read.report.organization_name, org, "{eml}");
            assert_eq!(ingested.read.report.report_id, id, "{eml}");
        }
    }

    #[test]
    fn gzip_report_files_read_by_name_or_by_content() {
        let dir = TempDir::new("gzip");
        let json = fixture("parsedmarc/smtp_tls.json");
        dir.write("a.json.gz", &gzip(&json));
        dir.write("b.GZ", &gzip(&json));
        dir.write("c.json", &gzip(&json)); // gzip under a .json name: the magic decides
        dir.write("d-report", &gzip(&json)); // no known extension: sniffed
        dir.write("e.gz", &json); // plain JSON under a .gz name: tolerated
        let found = ingest_all(std::slice::from_ref(&dir.0));
        assert_eq!(
            outline(&found, &dir.0),
            ["a.json.gz", "b.GZ", "c.json", "d-report", "e.gz"]
                .map(|name| format!("{name} → Example Inc. | 2024-01-09T00:00:00Z_example.com"))
        );
        for f in &found {
            let Found::Report(ingested) = f else {
                panic!("{f:?}");
            };
            assert_eq!(ingested.json, json, "{}", ingested.origin);
        }
    }

    #[test]
    fn maildir_reads_every_message_in_cur_and_new() {
        let dir = TempDir::new("maildir");
        let maildir = dir.0.join("Maildir");
        dir.write(
            "Maildir/cur/1663330200.M1P1.mx:2,S",
            &fixture(MICROSOFT_EML),
        );
        dir.write("Maildir/cur/1663330300.M2P1.mx:2,", NOTE_EML.as_bytes());
        dir.write("Maildir/cur/.hidden", b"not looked at");
        dir.write("Maildir/new/1663330100.M3P1.mx", &fixture(EXAMPLE_EML));
        dir.write("Maildir/new/1663330400.M4P1.mx", &fixture(GOOGLE_EML));
        // Deliveries in progress and index files are not messages.
        dir.write("Maildir/tmp/1663330500.M5P1.mx", &fixture(EXAMPLE_EML));
        dir.write("Maildir/dovecot-uidlist", b"3 V1663330000 N5\n");
        let found = ingest_all(std::slice::from_ref(&maildir));
        assert_eq!(
            outline(&found, &maildir),
            vec![
                "cur/1663330200.M1P1.mx:2,S → Microsoft Corporation | 133198585438131172+test.xmox.nl",
                "cur/1663330300.M2P1.mx:2, → SKIP no application/tlsrpt+gzip or +json part; is \
                 this a TLS-RPT report mail? (RFC 8460 §5.3 sends the report as such a part of a \
                 multipart/report message)",
                "new/1663330100.M3P1.mx → Google Inc. | 2022-09-15T00:00:00Z_test.xmox.nl",
                "new/1663330400.M4P1.mx → Google Inc. | 2024-09-03T00:00:00Z_cardinalhealth.ca",
            ]
        );
        // A Maildir met while walking a directory is read the same way.
        assert_eq!(
            outline(&ingest_all(std::slice::from_ref(&dir.0)), &maildir),
            outline(&found, &maildir)
        );
    }

    #[test]
    fn mbox_reads_messages_in_file_order() {
        let dir = TempDir::new("mbox");
        let (example, microsoft, google) = (
            fixture(EXAMPLE_EML),
            fixture(MICROSOFT_EML),
            fixture(GOOGLE_EML),
        );
        // No extension: the first line "From " says it is an mbox file.
        let path = dir.write(
            "inbox",
            &mboxrd(&[&example, NOTE_EML.as_bytes(), &microsoft, &google]),
        );
        let found = ingest_all(std::slice::from_ref(&path));
        assert_eq!(
            outline(&found, &dir.0),
            vec![
                "inbox (message 1, Message-ID <000000000000f47cc505e8c8905c@google.com>) → \
                 Google Inc. | 2022-09-15T00:00:00Z_test.xmox.nl",
                "inbox (message 2, Message-ID <note@example.com>) → SKIP no \
                 application/tlsrpt+gzip or +json part; is this a TLS-RPT report mail? (RFC 8460 \
                 §5.3 sends the report as such a part of a multipart/report message)",
                "inbox (message 3, Message-ID <133198585438131172+test.xmox.nl@test.xmox.nl>) → \
                 Microsoft Corporation | 133198585438131172+test.xmox.nl",
                "inbox (message 4, Message-ID <66d83c20.050a0220.a0566.1e8dtls@google.com>) → \
                 Google Inc. | 2024-09-03T00:00:00Z_cardinalhealth.ca",
            ]
        );
        let Found::Report(first) = &found[0] else {
            panic!("{:?}", found[0]);
        };
        assert_eq!(first.json, fixture(EXAMPLE_JSON));
        // Without the mboxrd escaping, the note's "From the desk" line would start a
        // fifth message: the escaping is what keeps the count at four.
        let mut unescaped = mboxrd(&[&example]);
        unescaped.extend_from_slice(b"From tlsrpt@example.com Thu Sep 15 12:10:00 2022\n");
        unescaped.extend_from_slice(NOTE_EML.as_bytes());
        let path = dir.write("unescaped.mbox", &unescaped);
        assert_eq!(ingest_all(&[path]).len(), 3);
    }

    #[test]
    fn malformed_inputs_are_skipped_naming_file_and_cause() {
        let dir = TempDir::new("malformed");
        let json = fixture("parsedmarc/smtp_tls.json");
        dir.write("1-truncated.json", &json[..json.len() / 2]);
        let mut corrupt = gzip(&json);
        let middle = corrupt.len() / 2;
        for byte in &mut corrupt[middle..middle + 8] {
            *byte ^= 0x5a;
        }
        dir.write("2-corrupt.json.gz", &corrupt);
        dir.write("3-not-gzip.gz", b"PK\x03\x04 a zip archive, not gzip");
        let without_id = String::from_utf8(json.clone())
            .unwrap()
            .replace("\"report-id\":", "\"report-name\":");
        dir.write("4-no-report-id.json", without_id.as_bytes());
        let example = String::from_utf8(fixture(EXAMPLE_EML)).unwrap();
        let first_line =
            "H4sIAAAAAAAAAHVRwWrDMAz9leBzHdx0HatPu42d21NHKcZxM3exFSylpCv598npNlhZQWDp6fnp";
        let third_line =
            "fYdVLfRyxbEV40xYiGQsSR8PwDQM1ElqUSbXQSIfm+dmMlNaCKx6haWv7wzek0MqhwBDGVvmd9B6";
        assert!(example.contains(first_line) && example.contains(third_line));
        // A character outside the base64 alphabet: the attachment cannot be decoded.
        dir.write(
            "5-bad-base64.eml",
            example
                .replace(first_line, &first_line.replace('w', "*"))
                .as_bytes(),
        );
        // Cut off in the middle of the attachment, as a partial download leaves it.
        dir.write(
            "5b-cut-off.eml",
            &example.as_bytes()[..example.find(third_line).unwrap()],
        );
        // Valid base64 of damaged gzip data.
        dir.write(
            "6-damaged-gzip.eml",
            example
                .replace(third_line, &"A".repeat(third_line.len()))
                .as_bytes(),
        );
        let mut state: u32 = 0x2545_f491;
        let mut random: Vec<u8> = (0..4096)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                state.to_le_bytes()[0]
            })
            .collect();
        random[0] = 0x00;
        dir.write("7-random.bin", &random);
        dir.write("8-empty.dat", b"");
        dir.write("9-dmarc.xml.gz", &gzip(b"<feedback/>"));
        dir.write(".hidden.json", b"not JSON");
        let found = ingest_all(std::slice::from_ref(&dir.0));
        let outline = outline(&found, &dir.0);
        // Where the cause ends in a library's own words (JSON and gzip errors), only the
        // start, which is ours, is compared.
        let unrecognised = "is not a TLS-RPT report: expected a .json, .json.gz or .gz report \
                            (RFC 8460 §4), an .eml report mail (RFC 8460 §5.3), an mbox file \
                            (first line \"From \") or a Maildir folder (cur/ and new/)";
        let expected: [(String, bool); 10] = [
            (
                "1-truncated.json → SKIP the report is not valid JSON (line 23, column 8): ".into(),
                false,
            ),
            (
                "2-corrupt.json.gz → SKIP the report starts like gzip but does not decompress: "
                    .into(),
                false,
            ),
            (
                "3-not-gzip.gz → SKIP is named .gz, but does not start with the gzip bytes 1f 8b \
                 (RFC 1952) and is not JSON either"
                    .into(),
                true,
            ),
            (
                "4-no-report-id.json → SKIP $.report-id is required by RFC 8460 §4.4 but missing"
                    .into(),
                true,
            ),
            (
                format!(
                    "5-bad-base64.eml → SKIP the application/tlsrpt+gzip part \"{EXAMPLE_PART}\": \
                     its Content-Transfer-Encoding (base64) cannot be decoded: a character \
                     outside the encoding's alphabet, or the part is cut off before its closing \
                     boundary"
                ),
                true,
            ),
            (
                format!(
                    "5b-cut-off.eml → SKIP the application/tlsrpt+gzip part \"{EXAMPLE_PART}\": \
                     its Content-Transfer-Encoding (base64) cannot be decoded: a character \
                     outside the encoding's alphabet, or the part is cut off before its closing \
                     boundary"
                ),
                true,
            ),
            (
                format!(
                    "6-damaged-gzip.eml → SKIP the application/tlsrpt+gzip part \"{EXAMPLE_PART}\": \
                     the report starts like gzip but does not decompress: "
                ),
                false,
            ),
            (format!("7-random.bin → SKIP {unrecognised}"), true),
            (
                "8-empty.dat → SKIP is empty; expected a TLS-RPT report (JSON or gzip) or a \
                 report mail"
                    .into(),
                true,
            ),
            (format!("9-dmarc.xml.gz → SKIP {unrecognised}"), true),
        ];
        assert_eq!(outline.len(), expected.len(), "{outline:#?}");
        for (got, (want, exact)) in outline.iter().zip(&expected) {
            if *exact {
                assert_eq!(got, want);
            } else {
                assert!(
                    got.starts_with(want.as_str()),
                    "{got}\nshould start with\n{want}"
                );
            }
        }
        // Skipped reads as "path: reason", with the full path.
        let Found::Skipped(empty) = &found[8] else {
            panic!("{:?}", found[8]);
        };
        assert_eq!(
            empty.to_string(),
            format!(
                "{}: is empty; expected a TLS-RPT report (JSON or gzip) or a report mail",
                dir.0.join("8-empty.dat").display()
            )
        );
        // A hidden file is passed over in a walk but read when named.
        let hidden = ingest_all(&[dir.0.join(".hidden.json")]);
        assert!(
            matches!(&hidden[..], [Found::Skipped(s)] if s.reason.starts_with("the report is not valid JSON (line 1, column 2)")),
            "{hidden:?}"
        );
    }

    #[test]
    fn tolerated_part_types_and_forwarded_reports() {
        let smtp_tls = fixture("parsedmarc/smtp_tls.json");
        let mail_ru = String::from_utf8(fixture("parsedmarc/mail.ru.json")).unwrap();
        let example = String::from_utf8(fixture(EXAMPLE_EML)).unwrap();
        let raw = format!(
            "From: someone@example.net\r\nTo: tlsrpt@example.com\r\nSubject: Fwd: reports\r\n\
             MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
             --b1\r\nContent-Type: text/plain\r\n\r\nThree reports attached.\r\n\
             --b1\r\nContent-Type: application/octet-stream; name=\"r.json.gz\"\r\n\
             Content-Transfer-Encoding: base64\r\n\r\n{}\
             --b1\r\nContent-Type: application/json\r\n\
             Content-Disposition: attachment; filename=\"mail.ru.json\"\r\n\r\n{}\r\n\
             --b1\r\nContent-Type: application/gzip; name=\"dmarc.xml.gz\"\r\n\
             Content-Transfer-Encoding: base64\r\n\r\n{}\
             --b1\r\nContent-Type: application/octet-stream; name=\"notes.txt\"\r\n\r\nnotes\r\n\
             --b1\r\nContent-Type: message/rfc822\r\n\r\n{}\r\n\
             --b1--\r\n",
            base64_lines(&gzip(&smtp_tls)),
            mail_ru.trim_end(),
            base64_lines(&gzip(b"<feedback/>")),
            example,
        );
        let found = message_reports(raw.as_bytes(), &Origin::file("fwd.eml"));
        assert_eq!(
            outline(&found, Path::new("")),
            vec![
                "fwd.eml → Example Inc. | 2024-01-09T00:00:00Z_example.com",
                "fwd.eml → Mail.ru | b28254de-7b2e-be36-bb5c-4c3b92da8b25@mail.ru",
                "fwd.eml → Google Inc. | 2022-09-15T00:00:00Z_test.xmox.nl",
            ]
        );
        let Found::Report(inline) = &found[1] else {
            panic!("{:?}", found[1]);
        };
        assert_eq!(inline.json, mail_ru.trim_end().as_bytes());
    }

    #[test]
    fn plain_json_part_and_mislabelled_part() {
        let json = String::from_utf8(fixture("parsedmarc/rfc8460.json")).unwrap();
        let message = |content_type: &str, body: &str| {
            format!(
                "From: r@example.net\r\nSubject: Report Domain: company-y.example\r\n\
                 Content-Type: multipart/report; report-type=tlsrpt; boundary=\"x\"\r\n\r\n\
                 --x\r\nContent-Type: text/plain\r\n\r\nA report.\r\n\
                 --x\r\nContent-Type: {content_type}\r\n\r\n{body}\r\n--x--\r\n"
            )
        };
        let origin = Origin::file("r.eml");
        // RFC 8460 §5.3 allows the report uncompressed as application/tlsrpt+json.
        let read = only_report(message_reports(
            message("application/tlsrpt+json", json.trim_end()).as_bytes(),
            &origin,
        ));
        assert_eq!(read.read.report.organization_name, "Company-X");
        // Declared gzip, sent as plain JSON: tolerated.
        let read = only_report(message_reports(
            message("application/tlsrpt+gzip", json.trim_end()).as_bytes(),
            &origin,
        ));
        assert_eq!(
            read.read.report.report_id,
            "5065427c-23d3-47ca-b6e0-946ea0e8c4be"
        );
        // Declared gzip, neither gzip nor JSON.
        assert_eq!(
            outline(
                &message_reports(
                    message("application/tlsrpt+gzip", "garbage").as_bytes(),
                    &origin
                ),
                Path::new("")
            ),
            vec![
                "r.eml → SKIP the application/tlsrpt+gzip part: is declared \
                 application/tlsrpt+gzip, but does not start with the gzip bytes 1f 8b (RFC 1952) \
                 and is not JSON either"
            ]
        );
    }

    #[test]
    fn bytes_without_a_header_are_not_mail() {
        let found = message_reports(b"", &Origin::file("x.eml"));
        assert_eq!(
            outline(&found, Path::new("")),
            vec!["x.eml → SKIP is not an e-mail message: it has no header fields (RFC 5322 §2.2)"]
        );
    }

    #[test]
    fn oversized_file_is_skipped_without_reading_it() {
        let dir = TempDir::new("large");
        let path = dir.0.join("huge.json");
        File::create(&path)
            .unwrap()
            .set_len(MAX_FILE_BYTES + 1)
            .unwrap();
        assert_eq!(
            outline(&ingest_all(&[path]), &dir.0),
            vec![
                "huge.json → SKIP the file is 33554433 bytes, over the 33554432-byte limit for \
                 one report file, mail or mbox file; split the mailbox or save the report \
                 attachments as files"
            ]
        );
    }

    #[test]
    fn missing_paths_and_link_loops_are_skipped() {
        let dir = TempDir::new("paths");
        dir.write("a/r.json", &fixture("parsedmarc/rfc8460.json"));
        std::os::unix::fs::symlink(&dir.0, dir.0.join("a/loop")).unwrap();
        let missing = dir.0.join("missing.json");
        let found = ingest_all(&[missing, dir.0.clone()]);
        assert_eq!(
            outline(&found, &dir.0),
            vec![
                "missing.json → SKIP cannot be read: No such file or directory (os error 2)",
                "a/loop → SKIP is a directory already read through another path (a symbolic \
                 link loop); skipped so its reports are read once",
                "a/r.json → Company-X | 5065427c-23d3-47ca-b6e0-946ea0e8c4be",
            ]
        );
    }

    #[test]
    fn origin_display() {
        assert_eq!(Origin::file("reports/a.json").to_string(), "reports/a.json");
        let in_mbox = Origin {
            path: PathBuf::from("mail/inbox"),
            message: Some("2, Message-ID <x@example.com>".to_owned()),
        };
        assert_eq!(
            in_mbox.to_string(),
            "mail/inbox (message 2, Message-ID <x@example.com>)"
        );
    }
}
