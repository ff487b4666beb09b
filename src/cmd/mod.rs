//! The commands of the binary, one module each: `run(args, app)` turns the parsed flags into
//! work and returns the [`Outcome`] (the exit status). [`App`] is what every command needs
//! from the process: its standard streams, the clock, the shutdown signal and the
//! environment; tests give one writing into memory.

use std::cell::{RefCell, RefMut};
use std::fmt;
use std::future::Future;
use std::io::{self, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::ExitCode;

use anyhow::Context as _;
use time::OffsetDateTime;

use crate::cli::{ColorChoice, Inconclusive};
use crate::config::Environment;
use mxprobe_core::dns::{DnssecStatus, Lookup, Txt};
use mxprobe_core::evaluate::verdict::Status;
use mxprobe_core::limits;
use mxprobe_probe::scan::Scanner;

pub mod demo;
pub mod gate;
pub mod generate;
pub mod history;
pub mod lab;
pub mod lint;
pub mod monitor;
pub mod queue;
pub mod reports;
pub mod scan;
pub mod serve;
pub mod targets;
pub mod worker;

/// How a command ended, as its exit status (the same for every command:
/// [`crate::cli::EXIT_STATUS_HELP`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// 0: nothing fails, and everything was tested (or `--inconclusive pass`).
    Pass,
    /// 1: something fails at `--fail-on` (or is inconclusive with `--inconclusive fail`).
    Fail,
    /// 2: a usage or configuration error, or the run could not be done.
    Error,
    /// 3: nothing fails, but something could not be tested.
    Inconclusive,
    /// 130: a scan stopped by SIGINT or SIGTERM.
    Interrupted,
}

impl Outcome {
    /// The exit status of a run whose worst result is `status`; `how` (`--inconclusive`) is
    /// what an inconclusive one exits with.
    pub const fn of(status: Status, how: Inconclusive) -> Self {
        match (status, how) {
            (Status::Fail, _) | (Status::Inconclusive, Inconclusive::Fail) => Self::Fail,
            (Status::Inconclusive, Inconclusive::Report) => Self::Inconclusive,
            (Status::Pass, _) | (Status::Inconclusive, Inconclusive::Pass) => Self::Pass,
        }
    }

    /// The exit status.
    pub const fn code(self) -> u8 {
        match self {
            Self::Pass => 0,
            Self::Fail => 1,
            Self::Error => 2,
            Self::Inconclusive => 3,
            Self::Interrupted => 130,
        }
    }
}

impl From<Outcome> for ExitCode {
    fn from(outcome: Outcome) -> Self {
        Self::from(outcome.code())
    }
}

/// A future that resolves when the run is asked to stop.
pub type Shutdown = Pin<Box<dyn Future<Output = ()>>>;

/// Under GitHub Actions (`GITHUB_ACTIONS=true`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GitHub {
    /// `$GITHUB_STEP_SUMMARY`: the Markdown file the step summary is appended to.
    pub step_summary: Option<PathBuf>,
}

/// What the commands take from the process.
pub struct App {
    out: RefCell<Box<dyn Write>>,
    err: RefCell<Box<dyn Write>>,
    stdin: Box<dyn Fn() -> Box<dyn Read + Send>>,
    /// What `--color auto` means for standard output: colour on a terminal unless NO_COLOR
    /// (or the like) says otherwise.
    auto_color: anstream::ColorChoice,
    /// Standard error is a terminal: progress is a bar rather than lines.
    pub stderr_is_terminal: bool,
    /// The columns text output is wrapped to: the terminal's, or [`TEXT_WIDTH`].
    pub text_width: usize,
    /// Set when running as a GitHub Actions step.
    pub github: Option<GitHub>,
    /// The environment variables the configuration reads.
    pub env: Environment,
    clock: fn() -> OffsetDateTime,
    shutdown: fn() -> Shutdown,
    close_stdout: fn(),
}

impl App {
    /// This process: its standard streams, environment, clock and signals.
    pub fn of_process() -> Self {
        let stdout = io::stdout();
        let auto_color = if stdout.is_terminal() {
            anstream::AutoStream::choice(&stdout)
        } else {
            anstream::ColorChoice::Never
        };
        let text_width = terminal_width(&stdout).unwrap_or(TEXT_WIDTH);
        Self {
            out: RefCell::new(Box::new(stdout)),
            err: RefCell::new(Box::new(io::stderr())),
            stdin: Box::new(|| Box::new(io::stdin())),
            auto_color,
            stderr_is_terminal: io::stderr().is_terminal(),
            text_width,
            github: (std::env::var_os("GITHUB_ACTIONS").is_some_and(|v| v == "true")).then(|| {
                GitHub {
                    step_summary: std::env::var_os("GITHUB_STEP_SUMMARY").map(Into::into),
                }
            }),
            env: Environment::of_process(),
            clock: OffsetDateTime::now_utc,
            shutdown: || Box::pin(shutdown_signal()),
            close_stdout: || {
                // /dev/null in place of standard output: whoever reads it sees its end.
                if let Ok(null) = std::fs::File::open("/dev/null") {
                    let _ = rustix::stdio::dup2_stdout(&null);
                }
            },
        }
    }

    /// The time now.
    pub fn now(&self) -> OffsetDateTime {
        (self.clock)()
    }

    /// The clock, for the scan engine.
    pub fn clock(&self) -> fn() -> OffsetDateTime {
        self.clock
    }

    /// Resolves when the run is asked to stop (SIGINT or SIGTERM).
    pub fn shutdown(&self) -> Shutdown {
        (self.shutdown)()
    }

    /// Standard output as written (JSON, CSV, text without styles).
    pub fn out(&self) -> RefMut<'_, Box<dyn Write>> {
        self.out.borrow_mut()
    }

    /// Runs `write` on standard output with styles as `color` says: kept on a terminal (or
    /// with `--color always`), stripped otherwise.
    pub fn styled<T>(
        &self,
        color: ColorChoice,
        write: impl FnOnce(&mut dyn Write) -> io::Result<T>,
    ) -> io::Result<T> {
        let choice = match color {
            ColorChoice::Auto => self.auto_color,
            ColorChoice::Always => anstream::ColorChoice::Always,
            ColorChoice::Never => anstream::ColorChoice::Never,
        };
        let mut out = self.out.borrow_mut();
        let raw: &mut dyn Write = &mut **out;
        write(&mut anstream::AutoStream::new(raw, choice))
    }

    /// Writes `line` and a newline on standard error. A message that cannot be written is
    /// dropped: it must not end the run.
    pub fn note(&self, line: impl fmt::Display) {
        let _ = writeln!(self.err.borrow_mut(), "{line}");
    }

    /// Standard error, for text written in pieces (GitHub annotations under JSON output).
    pub fn err(&self) -> RefMut<'_, Box<dyn Write>> {
        self.err.borrow_mut()
    }

    /// Ends standard output (a reader such as `$(…)` stops waiting); later writes are lost.
    pub fn close_stdout(&self) {
        (self.close_stdout)();
    }

    /// Standard input.
    pub fn stdin(&self) -> Box<dyn Read + Send> {
        (self.stdin)()
    }
}

/// The width of text output when standard output is not a terminal.
pub const TEXT_WIDTH: usize = 80;

/// The columns of the terminal `out` is, if it is one.
fn terminal_width(out: &io::Stdout) -> Option<usize> {
    if !out.is_terminal() {
        return None;
    }
    let size = rustix::termios::tcgetwinsize(out).ok()?;
    (size.ws_col > 0).then_some(usize::from(size.ws_col))
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => futures::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}

/// The async runtime the network commands run in.
pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// Reads the policy file `flag` names (`-` for standard input), at most
/// [`limits::POLICY_FILE_BYTES`].
pub(crate) fn read_policy_file(
    app: &App,
    flag: &'static str,
    path: Option<&Path>,
) -> anyhow::Result<Option<Vec<u8>>> {
    Ok(match path {
        None => None,
        Some(path) if path.as_os_str() == "-" => {
            match limits::read_capped_from(app.stdin(), limits::POLICY_FILE_BYTES) {
                Ok(body) => Some(body),
                Err(limits::CappedReadError::TooLarge) => anyhow::bail!(
                    "{flag} -: the policy on standard input is larger than {} (the cap for \
                     {flag}); a policy is a few lines",
                    limits::size_text(limits::POLICY_FILE_BYTES)
                ),
                Err(limits::CappedReadError::Io(e)) => {
                    return Err(anyhow::Error::new(e)
                        .context(format!("{flag} -: reading the policy from standard input")));
                }
            }
        }
        Some(path) => Some(limits::read_capped(flag, path, limits::POLICY_FILE_BYTES)?),
    })
}

/// TXT records given on the command line (`--tlsrpt-txt`), one character-string each, as a
/// DNS answer with the DNSSEC status `dnssec`, so they are checked as published ones are.
pub(crate) fn given_txt(texts: &[String], dnssec: DnssecStatus) -> Lookup<Txt> {
    Lookup::Records {
        records: texts
            .iter()
            .map(|t| Txt {
                strings: vec![t.clone()],
            })
            .collect(),
        dnssec,
        cname_chain: Vec::new(),
    }
}

/// Says once, on stderr, that the resolver cannot be used (the domains scanned with it are
/// inconclusive because of it, not of themselves), and what to do.
pub(crate) fn warn_once_about_the_resolver(app: &App, scanner: &Scanner, warned: &mut bool) {
    if *warned {
        return;
    }
    if let Some(problem) = scanner.resolver_problem() {
        *warned = true;
        app.note(format_args!(
            "mxprobe: {problem}. No domain is judged with it: each is inconclusive because of \
             the resolver, not the domain. What to do: {}.",
            problem.advice()
        ));
    }
}

/// The error and its causes as one line, each cause once: the chain stops at the first cause
/// whose text the message above it already holds (errors that print their source).
pub fn error_text(err: &anyhow::Error) -> String {
    let mut text = err.to_string();
    let mut above = text.clone();
    for cause in err.chain().skip(1) {
        let line = cause.to_string();
        if above.contains(&line) {
            break;
        }
        text.push_str(": ");
        text.push_str(&line);
        above = line;
    }
    text
}

/// Whether a broken pipe (the reader of standard output went away, as `head` does) is
/// anywhere in the error chain, also inside the JSON and CSV writers' errors: such a run
/// ends quietly with status 0, whatever the command.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        let kind = if let Some(e) = cause.downcast_ref::<io::Error>() {
            Some(e.kind())
        } else if let Some(e) = cause.downcast_ref::<serde_json::Error>() {
            e.io_error_kind()
        } else if let Some(e) = cause.downcast_ref::<csv::Error>() {
            match e.kind() {
                csv::ErrorKind::Io(e) => Some(e.kind()),
                _ => None,
            }
        } else {
            None
        };
        kind == Some(io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
pub(crate) mod testing {
    //! An [`App`] writing into memory, and the mail lab with the flags that reach it.

    use std::cell::RefCell;
    use std::io::{self, Write};
    use std::path::PathBuf;
    use std::rc::Rc;

    use time::OffsetDateTime;

    use super::{App, GitHub};
    use crate::cli::Cli;
    use crate::config::Environment;
    use mxprobe_lab::{Lab, RunningLab, Scenario};

    /// A writer whose bytes stay readable after it is handed away.
    #[derive(Clone, Default)]
    pub(crate) struct Captured(Rc<RefCell<Vec<u8>>>);

    impl Captured {
        pub(crate) fn text(&self) -> String {
            String::from_utf8(self.0.borrow().clone()).expect("mxprobe writes UTF-8")
        }
    }

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.borrow_mut().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// A writer that fails as a closed pipe does.
    pub(crate) struct ClosedPipe;

    impl Write for ClosedPipe {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// An app with standard output and error in memory, `stdin` as standard input, no
    /// colour, no GitHub Actions, and a shutdown that never comes.
    pub(crate) struct TestApp {
        pub(crate) app: App,
        pub(crate) out: Captured,
        pub(crate) err: Captured,
    }

    pub(crate) fn app_with_stdin(stdin: &[u8]) -> TestApp {
        let (out, err) = (Captured::default(), Captured::default());
        let input = stdin.to_vec();
        let app = App {
            out: RefCell::new(Box::new(out.clone())),
            err: RefCell::new(Box::new(err.clone())),
            stdin: Box::new(move || Box::new(io::Cursor::new(input.clone()))),
            auto_color: anstream::ColorChoice::Never,
            stderr_is_terminal: false,
            text_width: super::TEXT_WIDTH,
            github: None,
            env: Environment {
                hostname: Some("probe.mxprobe.test".to_owned()),
                ..Environment::default()
            },
            clock: OffsetDateTime::now_utc,
            shutdown: || Box::pin(futures::future::pending()),
            close_stdout: || {},
        };
        TestApp { app, out, err }
    }

    pub(crate) fn app() -> TestApp {
        app_with_stdin(b"")
    }

    impl TestApp {
        /// The same app under GitHub Actions, with the step summary in `summary`.
        pub(crate) fn under_github(mut self, summary: PathBuf) -> Self {
            self.app.github = Some(GitHub {
                step_summary: Some(summary),
            });
            self
        }

        /// The same app, its shutdown requested from the start.
        pub(crate) fn interrupted(mut self) -> Self {
            self.app.shutdown = || Box::pin(futures::future::ready(()));
            self
        }

        /// The same app with a standard output that is a closed pipe.
        pub(crate) fn closed_stdout(self) -> Self {
            *self.app.out.borrow_mut() = Box::new(ClosedPipe);
            self
        }
    }

    /// A scratch directory, removed on drop.
    pub(crate) struct TempDir(pub(crate) PathBuf);

    impl TempDir {
        pub(crate) fn new(tag: &str) -> Self {
            let dir = std::env::temp_dir().join(format!(
                "mxprobe-cmd-{tag}-{}-{}",
                std::process::id(),
                OffsetDateTime::now_utc().unix_timestamp_nanos()
            ));
            std::fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }

        pub(crate) fn path(&self, name: &str) -> PathBuf {
            self.0.join(name)
        }

        pub(crate) fn arg(&self, name: &str) -> String {
            self.path(name).display().to_string()
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// The embedded mail lab, serving on its own runtime, and the files its flags name.
    pub(crate) struct LabFixture {
        pub(crate) lab: RunningLab,
        pub(crate) dir: TempDir,
        _rt: tokio::runtime::Runtime,
    }

    impl LabFixture {
        pub(crate) fn start(tag: &str) -> Self {
            let rt = tokio::runtime::Runtime::new().unwrap();
            let lab = rt
                .block_on(Lab::start(
                    &Scenario::embedded().unwrap(),
                    OffsetDateTime::now_utc(),
                ))
                .unwrap();
            let dir = TempDir::new(tag);
            std::fs::write(
                dir.path("trust-anchor.txt"),
                format!("{}\n", lab.dns().trust_anchor),
            )
            .unwrap();
            std::fs::write(dir.path("lab-root.pem"), lab.root_ca_pem()).unwrap();
            Self { lab, dir, _rt: rt }
        }

        /// The flags that point DNS, SMTP and HTTPS at the lab.
        pub(crate) fn probe_flags(&self) -> Vec<String> {
            vec![
                "--resolver".to_owned(),
                self.lab.dns().addr.to_string(),
                "--trust-anchor".to_owned(),
                self.dir.arg("trust-anchor.txt"),
                "--ca-file".to_owned(),
                self.dir.arg("lab-root.pem"),
                "--smtp-port".to_owned(),
                self.lab.smtp_port().unwrap().to_string(),
                "--https-port".to_owned(),
                self.lab.https().addr.port().to_string(),
                "--ehlo-name".to_owned(),
                "probe.mxprobe.test".to_owned(),
            ]
        }
    }

    /// The command line `mxprobe <args>` parsed.
    pub(crate) fn parse<S: AsRef<str>>(args: &[S]) -> crate::cli::Command {
        use clap::Parser;
        let argv = std::iter::once("mxprobe").chain(args.iter().map(AsRef::as_ref));
        Cli::try_parse_from(argv)
            .unwrap_or_else(|e| panic!("{e}"))
            .command
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_status_contract() {
        use Inconclusive::{Fail, Pass, Report};
        // status → exit status, for --inconclusive report / pass / fail.
        for (status, report, pass, fail) in [
            (Status::Pass, 0, 0, 0),
            (Status::Fail, 1, 1, 1),
            (Status::Inconclusive, 3, 0, 1),
        ] {
            assert_eq!(Outcome::of(status, Report).code(), report, "{status:?}");
            assert_eq!(Outcome::of(status, Pass).code(), pass, "{status:?}");
            assert_eq!(Outcome::of(status, Fail).code(), fail, "{status:?}");
        }
        assert_eq!(Outcome::Error.code(), 2);
        assert_eq!(Outcome::Interrupted.code(), 130);
        assert_eq!(ExitCode::from(Outcome::Interrupted), ExitCode::from(130));
    }

    #[test]
    fn error_text_names_each_cause_once() {
        #[derive(Debug, thiserror::Error)]
        #[error("cannot open the database: {source}; check the path")]
        struct Open {
            source: io::Error,
        }
        let inner = io::Error::other("unable to open database file");
        let err = anyhow::Error::new(Open { source: inner }).context("--db h.sqlite");
        assert_eq!(
            error_text(&err),
            "--db h.sqlite: cannot open the database: unable to open database file; check the path"
        );
        // Causes that do not repeat themselves are all named, as `{:#}` does.
        let err = anyhow::Error::new(io::Error::other("disk full")).context("writing x");
        assert_eq!(error_text(&err), format!("{err:#}"));
        assert_eq!(error_text(&err), "writing x: disk full");
    }

    #[test]
    fn broken_pipe_is_found_inside_writer_errors() {
        let pipe = || io::Error::from(io::ErrorKind::BrokenPipe);
        assert!(is_broken_pipe(&anyhow::Error::new(pipe())));
        assert!(is_broken_pipe(
            &anyhow::Error::new(pipe()).context("writing the JSON")
        ));
        assert!(is_broken_pipe(&anyhow::Error::new(serde_json::Error::io(
            pipe()
        ))));
        assert!(is_broken_pipe(&anyhow::Error::new(
            csv::Error::from(pipe())
        )));
        let other = io::Error::from(io::ErrorKind::PermissionDenied);
        assert!(!is_broken_pipe(&anyhow::Error::new(other)));
    }

    #[test]
    fn styled_output_strips_styles_unless_asked_for_colour() {
        let t = testing::app();
        let bold = anstyle::Style::new().bold();
        for color in [ColorChoice::Auto, ColorChoice::Never, ColorChoice::Always] {
            t.app
                .styled(color, |w| writeln!(w, "{bold}x{bold:#}"))
                .unwrap();
        }
        assert_eq!(t.out.text(), "x\nx\n\u{1b}[1mx\u{1b}[0m\n");
    }
}
