//! Where the domains of `scan` and `monitor` come from: the arguments, or `--input` read once
//! as a stream on a thread of its own, with what its rows held counted on the way.

use std::cell::{Cell, RefCell};
use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context as _;

use super::App;
use crate::input::{self, Column, Target};
use crate::progress;
use mxprobe_core::domain::DomainName;

/// The targets in input order.
pub type TargetIter = Box<dyn Iterator<Item = Result<Target, input::InputError>> + Send>;

/// Where the targets of a run come from.
pub struct Input {
    /// The targets, in input order.
    pub targets: TargetIter,
    /// What the progress display can know of the end.
    pub total: progress::Total,
    /// The input as named in messages, when the targets come from `--input`.
    pub name: Option<String>,
}

impl Input {
    /// Domains given as arguments, already checked.
    pub fn domains(names: Vec<String>) -> Self {
        let total = progress::Total::Domains(names.len() as u64);
        Self {
            targets: Box::new(input::from_args(names).map(Ok)),
            total,
            name: None,
        }
    }
}

/// A reader that counts the bytes it hands out (for the progress of an input file).
struct Metered<R> {
    inner: R,
    read: Arc<AtomicU64>,
}

impl<R: Read> Read for Metered<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// The scan targets: the domains typed as arguments (a bad one is a usage error, not a row
/// to skip as in an input file) or the rows of `--input` (`-` for standard input). The input
/// is opened here and read once, as a stream, while the run goes on: pipes, FIFOs and
/// `/dev/stdin` read like files, and nothing is counted beforehand (the progress of a
/// regular file is the share of its bytes read).
pub fn open_targets(
    app: &App,
    domains: &[String],
    input: Option<&Path>,
    column: Option<&str>,
) -> anyhow::Result<Input> {
    for d in domains {
        DomainName::parse(d).with_context(|| format!("domain {d:?}"))?;
    }
    let column = column
        .map(str::parse::<Column>)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--column: {e}"))?;
    let Some(path) = input else {
        return Ok(Input::domains(domains.to_vec()));
    };
    let (reader, total, name): (Box<dyn Read + Send>, _, _) = if path.as_os_str() == "-" {
        (
            app.stdin(),
            progress::Total::Unknown,
            "standard input".to_owned(),
        )
    } else {
        let file = std::fs::File::open(path)
            .with_context(|| format!("opening the input file {}", path.display()))?;
        let name = format!("the input file {}", path.display());
        match file.metadata() {
            Ok(meta) if meta.is_file() => {
                let read = Arc::new(AtomicU64::new(0));
                (
                    Box::new(Metered {
                        inner: file,
                        read: Arc::clone(&read),
                    }),
                    progress::Total::InputBytes {
                        len: meta.len(),
                        read,
                    },
                    name,
                )
            }
            _ => (Box::new(file), progress::Total::Unknown, name),
        }
    };
    let targets = input::targets(reader, column).with_context(|| format!("reading {name}"))?;
    Ok(Input {
        targets: Box::new(targets),
        total,
        name: Some(name),
    })
}

/// Refuses, before anything is read or written, an output file that is the input file: the
/// run would read its own output rows back forever. Compared as files (device and inode), so
/// other spellings of the same path, links and `--input -` redirected from the file are
/// caught too.
pub fn refuse_input_as_output(
    input: &Path,
    outputs: &[(&str, Option<&Path>)],
) -> anyhow::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let (shown, input_meta) = if input.as_os_str() == "-" {
        ("standard input".to_owned(), std::fs::metadata("/dev/stdin"))
    } else {
        (input.display().to_string(), std::fs::metadata(input))
    };
    // An input that cannot be looked at is reported when it is opened; only a regular file
    // can be read back after it was written (not a pipe, a terminal or `/dev/null`); an
    // output that does not exist yet cannot be the input.
    let Some(input_meta) = input_meta.ok().filter(std::fs::Metadata::is_file) else {
        return Ok(());
    };
    for (flag, path) in outputs {
        let Some(path) = path else { continue };
        if let Ok(meta) = std::fs::metadata(path)
            && meta.dev() == input_meta.dev()
            && meta.ino() == input_meta.ino()
        {
            anyhow::bail!(
                "{flag} {}: this is the input file ({shown}); writing it would read the \
                 output back as input, or destroy the input. Give {flag} another file",
                path.display()
            );
        }
    }
    Ok(())
}

/// The targets as a stream, read on a thread of their own so that a slow pipe never holds up
/// the run (nor its signal handling), at most [`TARGETS_AHEAD`] ahead of the scan.
pub(crate) fn target_stream(
    targets: TargetIter,
) -> anyhow::Result<impl futures::Stream<Item = Result<Target, input::InputError>>> {
    let (tx, rx) = tokio::sync::mpsc::channel(TARGETS_AHEAD);
    std::thread::Builder::new()
        .name("mxprobe-input".to_owned())
        .spawn(move || {
            for target in targets {
                // The run has ended (finished or interrupted): stop reading.
                if tx.blocking_send(target).is_err() {
                    break;
                }
            }
        })
        .context("starting the thread that reads the input")?;
    Ok(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|target| (target, rx))
    }))
}

/// How many read targets may wait for the scan.
const TARGETS_AHEAD: usize = 256;

/// After this many rows in a row that start no scan (invalid, duplicate, already done), the
/// run lets other work in, so a signal is honoured even while only such rows are read.
const SKIPPED_BETWEEN_YIELDS: u64 = 64;

/// What the rows of an input held, counted as they are read.
#[derive(Default)]
pub(crate) struct RowCounts {
    /// Rows with a domain (first occurrences; also those a resumed run skips).
    pub(crate) valid: Cell<u64>,
    /// Rows that are not a domain.
    pub(crate) invalid: Cell<u64>,
    /// Rows in a row that started no scan, since the last yield.
    skipped_in_a_row: Cell<u64>,
    /// Reading the input failed (the stream ended there).
    pub(crate) error: RefCell<Option<anyhow::Error>>,
}

impl RowCounts {
    /// A future that lets other work in (the shutdown signal among it) after every
    /// [`SKIPPED_BETWEEN_YIELDS`] rows in a row that start no scan, and is ready at once
    /// otherwise.
    pub(crate) fn pause_after(&self, skipped: bool) -> futures::future::BoxFuture<'static, ()> {
        let n = if skipped {
            self.skipped_in_a_row.get() + 1
        } else {
            0
        };
        self.skipped_in_a_row.set(n % SKIPPED_BETWEEN_YIELDS);
        if skipped && n % SKIPPED_BETWEEN_YIELDS == 0 {
            Box::pin(tokio::task::yield_now())
        } else {
            Box::pin(futures::future::ready(()))
        }
    }

    /// A failure to read the input is an error (exit status 2) naming the input.
    pub(crate) fn read_error(&self, name: Option<&str>) -> anyhow::Result<()> {
        match self.error.take() {
            Some(e) => Err(e.context(format!("reading {}", name.unwrap_or("the input")))),
            None => Ok(()),
        }
    }

    /// An input without a single domain is an error (exit status 2) naming the input: a run
    /// that scanned nothing must not pass.
    pub(crate) fn some_domain(&self, name: Option<&str>) -> anyhow::Result<()> {
        let Some(name) = name else { return Ok(()) };
        if self.valid.get() > 0 {
            return Ok(());
        }
        match self.invalid.get() {
            0 => anyhow::bail!(
                "no domain to scan: {name} has no rows (it is empty, or holds only blank \
                 lines, comments and a header)"
            ),
            n => anyhow::bail!(
                "no domain to scan: none of the {n} row(s) of {name} is a domain (each is \
                 reported above with its line and why)"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::testing::{TempDir, app, app_with_stdin};

    /// Reads every target of `input`, as `(line, what)`.
    fn read(input: Input) -> Vec<(usize, String)> {
        input
            .targets
            .map(|t| match t.unwrap() {
                Target::Domain { line, domain, .. } => (line, domain.to_string()),
                Target::Invalid { line, text, .. } => (line, format!("invalid {text}")),
                Target::Duplicate { line, .. } => (line, "duplicate".to_owned()),
            })
            .collect()
    }

    #[test]
    fn arguments_are_checked_and_read_in_order() {
        let t = app();
        let input = open_targets(
            &t.app,
            &["b.example".into(), "a.example".into()],
            None,
            None,
        )
        .unwrap();
        assert!(input.name.is_none());
        assert!(matches!(input.total, progress::Total::Domains(2)));
        assert_eq!(
            read(input).into_iter().map(|(_, d)| d).collect::<Vec<_>>(),
            ["b.example", "a.example"]
        );
        let err = open_targets(&t.app, &["not a domain".into()], None, None)
            .err()
            .expect("a bad domain argument is an error");
        assert!(
            err.to_string().starts_with("domain \"not a domain\""),
            "{err}"
        );
    }

    /// The rows a run counts are the targets `input.rs` reads, with its one comment rule: a
    /// line whose first non-blank character is `#` (indented, or after a byte-order mark),
    /// never a quoted `#`; the header is no row, and a quoted field may span lines. (The row
    /// count once made for the progress bar trimmed lines and skipped those starting with
    /// `#`: it counted the header, the comment after the mark and both lines of the field.)
    #[test]
    fn standard_input_rows_follow_the_input_rules() {
        let t = app_with_stdin(
            b"\xEF\xBB\xBF# targets\ndomain,owner\n  # indented\ngood.example,\"two\nlines\"\n\
              \"#x.example\",b\nbad domain,c\ngood.example,d\n",
        );
        let input = open_targets(&t.app, &[], Some(Path::new("-")), None).unwrap();
        assert_eq!(input.name.as_deref(), Some("standard input"));
        let got = read(input);
        assert_eq!(
            got,
            [
                (4, "good.example".to_owned()),
                (6, "invalid #x.example".to_owned()),
                (7, "invalid bad domain".to_owned()),
                (8, "duplicate".to_owned())
            ]
        );
    }

    #[test]
    fn input_file_errors_name_the_file() {
        let t = app();
        let dir = TempDir::new("targets");
        let missing = dir.path("missing.csv");
        let err = open_targets(&t.app, &[], Some(&missing), None)
            .err()
            .expect("a missing file is an error");
        assert!(
            format!("{err:#}")
                .starts_with(&format!("opening the input file {}", missing.display())),
            "{err:#}"
        );
        let file = dir.path("in.csv");
        std::fs::write(&file, "domain\na.example\n").unwrap();
        let err = open_targets(&t.app, &[], Some(&file), Some("0"))
            .err()
            .expect("column 0 does not exist");
        assert!(err.to_string().starts_with("--column: "), "{err}");
        // The output is the input: refused, however it is spelled.
        let other = dir.0.join(".").join("in.csv");
        let err = refuse_input_as_output(&file, &[("--csv", None), ("--jsonl", Some(&other))])
            .unwrap_err();
        assert!(err.to_string().starts_with("--jsonl "), "{err}");
        assert!(refuse_input_as_output(&file, &[("--csv", Some(&dir.path("out.csv")))]).is_ok());
    }

    #[test]
    fn counts_name_the_input_when_nothing_is_a_domain() {
        let counts = RowCounts::default();
        assert!(counts.some_domain(None).is_ok());
        let err = counts.some_domain(Some("the input file x")).unwrap_err();
        assert!(err.to_string().contains("x has no rows"), "{err}");
        counts.invalid.set(2);
        let err = counts.some_domain(Some("the input file x")).unwrap_err();
        assert!(err.to_string().contains("none of the 2 row(s)"), "{err}");
        counts.valid.set(1);
        assert!(counts.some_domain(Some("the input file x")).is_ok());
        counts.error.replace(Some(anyhow::anyhow!("invalid UTF-8")));
        let err = counts.read_error(Some("standard input")).unwrap_err();
        assert_eq!(format!("{err:#}"), "reading standard input: invalid UTF-8");
        assert!(counts.read_error(None).is_ok());
    }
}
