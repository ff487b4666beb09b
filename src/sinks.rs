//! Where the results of `scan`, `demo`, `gate` and `monitor` go, and the one loop that
//! feeds them.
//!
//! A [`Sink`] takes each domain as it finishes and writes it to every output the flags ask
//! for: text for people, one JSON document, JSON Lines, CSV, synthetic report files, the CI
//! outputs (JUnit, GitHub annotations and step summary), the HTML report and the monitoring
//! history. It also
//! keeps the worst [`Status`] seen, which becomes the exit status. [`run`] streams the
//! targets through the bulk scanner into a sink, for `scan` and `monitor` alike.

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use futures::{FutureExt as _, StreamExt as _};
use time::OffsetDateTime;

use crate::cli::{ColorChoice, Format, Inconclusive, OutputArgs};
use crate::cmd::targets::{Input, RowCounts, target_stream};
use crate::cmd::{App, Outcome, warn_once_about_the_resolver};
use crate::history::HistoryError;
use crate::input::Target;
use crate::monitor::Monitor;
use crate::progress::{Progress, ProgressMode, Tally};
use mxprobe_core::ci::{self, CiDomain};
use mxprobe_core::domain::DomainName;
use mxprobe_core::evaluate::verdict::Status;
use mxprobe_core::finding::Severity;
use mxprobe_core::html::{HtmlReport, Kind, Meta, StripRun};
use mxprobe_core::output::{
    Totals, check_report_dir, write_domain, write_json, write_not_tested, write_report_files,
    write_totals,
};
use mxprobe_core::result::DomainResult;
use mxprobe_core::stream::{CsvWriter, JSONL_SCHEMA_VERSION, JsonlWriter, Record, resume_state};
use mxprobe_probe::bulk::{self, BulkOptions, BulkStats, DomainOutcome, Event};
use mxprobe_probe::resolver::{DnssecMode, TrustAnchor};
use mxprobe_probe::scan::{ScanConfig, Scanner};

/// Text for people on standard output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Text {
    /// Every domain, then the totals (`scan`); a failed write ends the run.
    Report,
    /// Every domain as it finishes (`monitor --verbose`); written as far as possible.
    Verbose,
}

/// A domain held back for the ordered output.
enum Held {
    Report(Box<DomainResult>),
    /// Ended without a report, for this reason.
    NotTested(DomainName, String),
}

/// The synthetic report files of `--report-dir`.
struct ReportDir {
    dir: PathBuf,
    gzip: bool,
    written: usize,
}

/// The CI outputs: `--junit`, and the GitHub annotations and step summary.
struct Ci {
    junit: Option<PathBuf>,
    /// The step summary's heading.
    title: String,
    /// Standard output carries one JSON document: the annotations go to standard error.
    json: bool,
    domains: Vec<CiDomain>,
}

/// The monitoring history: each domain compared with its previous runs, stored, and alerted
/// on.
struct Store {
    monitor: Monitor,
    /// The first failure to store; the run goes on and ends with it.
    error: Option<HistoryError>,
}

/// How many runs the status strip of `monitor --html` shows per domain.
const STRIP_RUNS: usize = 30;

/// The HTML report (`--html`): each domain rendered as it arrives into spool files, the
/// page written to `path` at the end.
struct Html {
    path: PathBuf,
    file: File,
    report: HtmlReport<File>,
}

/// The header of the HTML report of a run with `config`.
pub fn html_meta(app: &App, title: impl Into<String>, config: &ScanConfig) -> Meta {
    let resolver = match config.dns.servers.as_deref() {
        Some(servers) if !servers.is_empty() => servers
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        _ => "the system's resolver (/etc/resolv.conf)".to_owned(),
    };
    let dnssec = match &config.dns.dnssec {
        DnssecMode::Validate(TrustAnchor::IanaRoot) => {
            "validated by mxprobe from the IANA root keys".to_owned()
        }
        DnssecMode::Validate(TrustAnchor::File(path)) => {
            format!(
                "validated by mxprobe from --trust-anchor {}",
                path.display()
            )
        }
        DnssecMode::Validate(TrustAnchor::Dnskeys(_)) => {
            "validated by mxprobe from the given trust anchor".to_owned()
        }
        DnssecMode::TrustResolverAd => "the AD bit of the resolver (--dnssec resolver)".to_owned(),
        DnssecMode::Off => "off (--dnssec off: DANE not checked)".to_owned(),
    };
    Meta {
        title: title.into(),
        started_at: app.now(),
        ehlo_name: Some(config.smtp.ehlo_name.as_str().to_owned()),
        resolver,
        dnssec,
        version: env!("CARGO_PKG_VERSION").to_owned(),
    }
}

/// The files `scan` writes as each domain finishes.
#[derive(Debug, Clone, Copy, Default)]
pub struct ScanFiles<'p> {
    /// `--jsonl`.
    pub jsonl: Option<&'p Path>,
    /// `--csv`.
    pub csv: Option<&'p Path>,
    /// `--resume`: skip the domains the JSON Lines file has, and append to it.
    pub resume: bool,
}

/// Where the results of a run go (see the module documentation).
pub struct Sink<'a> {
    app: &'a App,
    fail_on: Severity,
    inconclusive: Inconclusive,
    color: ColorChoice,
    text: Option<Text>,
    json: bool,
    /// Domains held back to be printed in input order (text and JSON), by input line.
    held: Option<Vec<(usize, Held)>>,
    jsonl: Option<JsonlWriter<File>>,
    csv: Option<CsvWriter<BufWriter<File>>>,
    reports: Option<ReportDir>,
    ci: Option<Ci>,
    store: Option<Store>,
    html: Option<Html>,
    /// Domains a resumed run does not scan again.
    done: HashSet<DomainName>,
    status: Status,
    invalid: usize,
    /// Writing an invalid row's record failed.
    write_error: Option<anyhow::Error>,
    started: OffsetDateTime,
    /// The domains shown and their findings, for the closing line.
    totals: Totals,
    /// Every domain seen, with its report (none: not tested), kept for the caller.
    kept: Option<Vec<(DomainName, Option<DomainResult>)>>,
}

impl<'a> Sink<'a> {
    fn new(app: &'a App, fail_on: Severity, inconclusive: Inconclusive) -> Self {
        Self {
            app,
            fail_on,
            inconclusive,
            color: ColorChoice::Auto,
            text: None,
            json: false,
            held: None,
            jsonl: None,
            csv: None,
            reports: None,
            ci: None,
            store: None,
            html: None,
            done: HashSet::new(),
            status: Status::Pass,
            invalid: 0,
            write_error: None,
            started: app.now(),
            kept: None,
            totals: Totals::default(),
        }
    }

    /// The report directory and the CI outputs of `output`; the directory is checked now.
    fn with_files_of(mut self, output: &OutputArgs, title: String) -> anyhow::Result<Self> {
        if let Some(dir) = &output.report_dir {
            check_report_dir(dir)?;
            self.reports = Some(ReportDir {
                dir: dir.clone(),
                gzip: output.gzip,
                written: 0,
            });
        }
        self.ci = (output.junit.is_some() || self.app.github.is_some()).then(|| Ci {
            junit: output.junit.clone(),
            title,
            json: output.format == Format::Json,
            domains: Vec::new(),
        });
        Ok(self)
    }

    /// The outputs of `scan` (and `demo`): text or JSON on standard output, in input order
    /// when `ordered` (JSON always), the report directory, the CI outputs and `files`.
    pub fn scan(
        app: &'a App,
        output: &OutputArgs,
        files: ScanFiles<'_>,
        ordered: bool,
    ) -> anyhow::Result<Self> {
        let mut sink = Self::new(app, output.fail_on, output.inconclusive)
            .with_files_of(output, "mxprobe scan".to_owned())?;
        match files.jsonl {
            Some(path) if files.resume => {
                let (state, file) = resume_state(path, output.fail_on).context("--resume")?;
                // Domains found failing (or inconclusive) before the interruption count in
                // this run's exit status as if scanned now.
                sink.status = state.status;
                if state.truncated_bytes > 0 {
                    app.note(format_args!(
                        "mxprobe: {}: cut off an incomplete last line ({} bytes) left by an \
                         interrupted run",
                        path.display(),
                        state.truncated_bytes
                    ));
                }
                sink.done = state.done;
                sink.jsonl = Some(JsonlWriter::new(file));
            }
            Some(path) => {
                let file = File::create(path)
                    .with_context(|| format!("creating --jsonl {}", path.display()))?;
                sink.jsonl = Some(JsonlWriter::new(file));
            }
            None => {}
        }
        if let Some(path) = files.csv {
            let file =
                File::create(path).with_context(|| format!("creating --csv {}", path.display()))?;
            sink.csv = Some(CsvWriter::new(BufWriter::new(file))?);
        }
        sink.color = output.color;
        sink.text = (output.format == Format::Text).then_some(Text::Report);
        sink.json = output.format == Format::Json;
        // The JSON document needs every report; text waits only when ordered.
        sink.held = (ordered || sink.json).then(Vec::new);
        Ok(sink)
    }

    /// The outputs of `gate` besides its own document: the report directory and the CI
    /// outputs, headed `title`.
    pub fn gate(app: &'a App, output: &OutputArgs, title: String) -> anyhow::Result<Self> {
        Self::new(app, output.fail_on, output.inconclusive).with_files_of(output, title)
    }

    /// The outputs of `monitor`: the history (through `monitor`), the
    /// alerts on standard output, and every domain too when `verbose`.
    pub fn monitor(
        app: &'a App,
        monitor: Monitor,
        verbose: bool,
        fail_on: Severity,
        inconclusive: Inconclusive,
    ) -> Self {
        let mut sink = Self::new(app, fail_on, inconclusive);
        sink.store = Some(Store {
            monitor,
            error: None,
        });
        sink.text = verbose.then_some(Text::Verbose);
        sink
    }

    /// Writes the HTML report of `kind` to `path` (`--html`), headed by `meta`; the file is
    /// created now, so that a path that cannot be written is refused before the first
    /// domain.
    pub fn with_html(
        mut self,
        path: Option<&Path>,
        meta: Meta,
        kind: Kind,
    ) -> anyhow::Result<Self> {
        let Some(path) = path else {
            return Ok(self);
        };
        let file =
            File::create(path).with_context(|| format!("creating --html {}", path.display()))?;
        let report = HtmlReport::new(meta, kind, tempfile::tempfile)
            .context("creating the temporary files of --html (check TMPDIR)")?;
        self.html = Some(Html {
            path: path.to_owned(),
            file,
            report,
        });
        Ok(self)
    }

    /// Keeps every domain seen, for [`Self::take_kept`].
    #[must_use]
    pub fn keeping_results(mut self) -> Self {
        self.kept = Some(Vec::new());
        self
    }

    /// The domains seen so far in the order they finished, each with its report (none: not
    /// tested), when [`Self::keeping_results`].
    pub fn take_kept(&mut self) -> Vec<(DomainName, Option<DomainResult>)> {
        self.kept.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// The exit status of what the sink has seen so far.
    pub fn outcome(&self) -> Outcome {
        Outcome::of(self.status, self.inconclusive)
    }

    /// An input row that is not a domain: reported, and recorded in the JSON Lines and CSV.
    pub fn invalid(&mut self, line: usize, text: &str, error: &str) -> io::Result<()> {
        self.invalid += 1;
        self.app.note(format_args!(
            "mxprobe: input line {line}: {text:?} skipped: {error}"
        ));
        if let Some(w) = &mut self.jsonl {
            w.write(&Record::Invalid {
                schema_version: JSONL_SCHEMA_VERSION,
                line,
                input: text,
                error,
            })?;
        }
        if let Some(w) = &mut self.csv {
            w.invalid(text, error)?;
        }
        Ok(())
    }

    /// A domain that ended without a report (its deadline passed, an internal error): it is
    /// inconclusive; the history keeps nothing of it.
    pub fn not_tested(
        &mut self,
        line: usize,
        domain: &DomainName,
        outcome: &DomainOutcome,
    ) -> anyhow::Result<()> {
        let recorded = self.store.is_some();
        match (outcome, recorded) {
            (DomainOutcome::TimedOut { deadline }, true) => self.app.note(format_args!(
                "mxprobe: {domain}: not finished within {}s; not recorded",
                deadline.as_secs()
            )),
            (DomainOutcome::TimedOut { deadline }, false) => self.app.note(format_args!(
                "mxprobe: {domain}: not finished within --deadline {}s; inconclusive",
                deadline.as_secs()
            )),
            (DomainOutcome::Crashed { message }, true) => self.app.note(format_args!(
                "mxprobe: {domain}: internal error: {message}; not recorded"
            )),
            (DomainOutcome::Crashed { message }, false) => self
                .app
                .note(format_args!("mxprobe: {domain}: internal error: {message}")),
            (DomainOutcome::Scanned(_), _) => return Ok(()),
        }
        if let Some(kept) = &mut self.kept {
            kept.push((domain.clone(), None));
        }
        self.status = self.status.max(Status::Inconclusive);
        self.totals.add_not_tested();
        if let Some(ci) = &mut self.ci {
            ci.domains.push(CiDomain::not_tested(domain.clone()));
        }
        let why = match outcome {
            DomainOutcome::TimedOut { deadline } => format!(
                "not finished within --deadline {}s: nothing could be judged",
                deadline.as_secs()
            ),
            DomainOutcome::Crashed { message } => format!("internal error: {message}"),
            DomainOutcome::Scanned(_) => return Ok(()),
        };
        if let (Some(html), None) = (&mut self.html, &self.held) {
            html.report
                .add_not_tested(domain.as_str(), &why)
                .context("--html")?;
        }
        match (&mut self.held, self.text) {
            (Some(held), _) => held.push((line, Held::NotTested(domain.clone(), why))),
            (None, Some(Text::Report)) => {
                self.app
                    .styled(self.color, |w| write_not_tested(w, domain, &why))?;
            }
            (None, Some(Text::Verbose)) => {
                let _ = self
                    .app
                    .styled(self.color, |w| write_not_tested(w, domain, &why));
            }
            (None, None) => {}
        }
        Ok(())
    }

    /// A scanned domain, from input line `line`.
    pub fn domain(&mut self, line: usize, report: DomainResult) -> anyhow::Result<()> {
        self.status = self.status.max(report.verdict.status(self.fail_on));
        self.totals.add(&report);
        if let Some(kept) = &mut self.kept {
            kept.push((report.verdict.domain.clone(), Some(report.clone())));
        }
        if let Some(ci) = &mut self.ci {
            ci.domains.push(CiDomain::of(&report.verdict));
        }
        if self.held.is_none() {
            match self.text {
                Some(Text::Report) => {
                    self.app.styled(self.color, |w| {
                        write_domain(w, &report, self.app.text_width)
                    })?;
                }
                Some(Text::Verbose) => {
                    let _ = self.app.styled(self.color, |w| {
                        write_domain(w, &report, self.app.text_width)
                    });
                }
                None => {}
            }
        }
        if let Some(w) = &mut self.jsonl {
            w.write(&Record::Domain {
                schema_version: JSONL_SCHEMA_VERSION,
                line,
                domain: &report.verdict.domain,
                report: &report,
            })?;
        }
        if let Some(w) = &mut self.csv {
            w.domain(&report)?;
        }
        if let Some(r) = &mut self.reports {
            let written = write_report_files(
                &r.dir,
                std::slice::from_ref(&report),
                report.facts.observed_at,
                self.app.now(),
                r.gzip,
            )?;
            r.written += written.len();
        }
        let alert = match &mut self.store {
            Some(store) if self.held.is_some() || self.html.is_some() => {
                store.observe(self.app, self.color, report.clone())
            }
            Some(store) => {
                store.observe(self.app, self.color, report);
                return Ok(());
            }
            None => None,
        };
        if let (Some(html), None) = (&mut self.html, &self.held) {
            let strip = match &mut self.store {
                Some(store) => store.strip(&report.verdict.domain),
                None => Vec::new(),
            };
            let changes = alert.map(|a| a.changes).unwrap_or_default();
            html.report
                .add(&report, &changes, &strip, self.app.now())
                .context("--html")?;
        }
        if let Some(held) = &mut self.held {
            held.push((line, Held::Report(Box::new(report))));
        }
        Ok(())
    }

    /// Says that the run stops (`scan`; the monitor only says what it recorded).
    fn stopping(&self, in_flight: usize) {
        if self.store.is_none() {
            self.app.note(format_args!(
                "mxprobe: interrupted: finishing {in_flight} domain(s) in flight, then stopping"
            ));
        }
    }

    /// Says that a domain was cancelled at shutdown.
    fn abandoned(&self, domain: &DomainName) {
        if self.store.is_none() {
            self.app.note(format_args!(
                "mxprobe: {domain}: abandoned (scan it again with --resume)"
            ));
        }
    }

    /// What an interrupted run leaves.
    fn interrupted_note(&self) -> &'static str {
        if self.store.is_some() {
            "mxprobe: interrupted; the domains finished so far are recorded"
        } else {
            "mxprobe: interrupted; the output is complete up to here (--resume continues)"
        }
    }

    /// Ends the outputs written to files and standard output: the JSON Lines summary, the
    /// held reports, the totals, the report count and the CI outputs.
    pub fn finish_outputs(&mut self, stats: &BulkStats) -> anyhow::Result<()> {
        if let Some(w) = &mut self.jsonl {
            w.write(&Record::Summary {
                schema_version: JSONL_SCHEMA_VERSION,
                domains: stats.done as usize,
                invalid: self.invalid,
                failing: stats.failing as usize,
                inconclusive: stats.inconclusive as usize,
                abandoned: stats.abandoned as usize,
                interrupted: stats.interrupted,
            })?;
        }
        if let Some(mut held) = self.held.take() {
            held.sort_by_key(|(line, _)| *line);
            if let Some(html) = &mut self.html {
                let now = self.app.now();
                for (_, h) in &held {
                    match h {
                        Held::Report(r) => html.report.add(r, &[], &[], now),
                        Held::NotTested(domain, why) => {
                            html.report.add_not_tested(domain.as_str(), why)
                        }
                    }
                    .context("--html")?;
                }
            }
            if self.json {
                let reports: Vec<DomainResult> = held
                    .into_iter()
                    .filter_map(|(_, h)| match h {
                        Held::Report(r) => Some(*r),
                        Held::NotTested(..) => None,
                    })
                    .collect();
                write_json(&mut **self.app.out(), self.started, &reports)?;
            } else if self.text.is_some() {
                self.app.styled(self.color, |w| {
                    held.iter().try_for_each(|(_, h)| match h {
                        Held::Report(r) => write_domain(w, r, self.app.text_width),
                        Held::NotTested(domain, why) => write_not_tested(w, domain, why),
                    })
                })?;
            }
        }
        if self.text == Some(Text::Report) {
            self.app.styled(self.color, |w| {
                write_totals(
                    w,
                    &Totals {
                        invalid: self.invalid,
                        ..self.totals
                    },
                )
            })?;
        }
        if let Some(r) = &self.reports {
            self.app.note(format_args!(
                "mxprobe: wrote {} synthetic TLS-RPT report(s) to {}",
                r.written,
                r.dir.display()
            ));
        }
        if let Some(c) = &self.ci {
            let elapsed = (self.app.now() - self.started).unsigned_abs();
            write_ci_outputs(self.app, c, self.fail_on, elapsed)?;
        }
        if let Some(html) = self.html.take() {
            let mut out = BufWriter::new(&html.file);
            html.report
                .finish(&mut out, self.app.now(), None)
                .and_then(|()| out.flush().map_err(Into::into))
                .with_context(|| format!("writing --html {}", html.path.display()))?;
            self.app.note(format_args!(
                "mxprobe: wrote the HTML report to {}",
                html.path.display()
            ));
        }
        match self.write_error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Ends the monitoring run: what failed to be stored ends it with an error; else the
    /// pending alerts are delivered and the run is closed (the Prometheus textfile with it).
    async fn finish_store(&mut self) -> anyhow::Result<()> {
        let Some(mut store) = self.store.take() else {
            return Ok(());
        };
        if let Some(e) = store.error {
            return Err(anyhow::Error::new(e).context("recording the run in the history database"));
        }
        let delivery = store.monitor.deliver().await?;
        for failure in &delivery.failed {
            self.app.note(format_args!(
                "mxprobe: not delivered (kept for the next run): {failure}"
            ));
        }
        for postponed in &delivery.postponed {
            self.app.note(format_args!("mxprobe: {postponed}"));
        }
        store.monitor.finish(self.app.now())?;
        Ok(())
    }

    /// Ends every output.
    pub async fn finish(&mut self, stats: &BulkStats) -> anyhow::Result<()> {
        self.finish_outputs(stats)?;
        self.finish_store().await
    }
}

impl Store {
    /// Compares, stores and alerts on one domain; the alert is printed as far as possible,
    /// and returned.
    fn observe(
        &mut self,
        app: &App,
        color: ColorChoice,
        result: DomainResult,
    ) -> Option<mxprobe_core::alert::Alert> {
        match self.monitor.observe(result, app.now()) {
            Ok(Some(alert)) => {
                let _ = app.styled(color, |w| writeln!(w, "{}", alert.text()));
                Some(alert)
            }
            Ok(None) => None,
            Err(e) => {
                self.error.get_or_insert(e);
                None
            }
        }
    }

    /// The domain's status in its latest runs, this one included, oldest first; a failure
    /// to read them is the run's error (kept like a failure to store).
    fn strip(&mut self, domain: &DomainName) -> Vec<StripRun> {
        match self.monitor.statuses(domain, STRIP_RUNS) {
            Ok(runs) => runs
                .into_iter()
                .map(|(observed_at, status)| StripRun {
                    observed_at,
                    status,
                })
                .collect(),
            Err(e) => {
                self.error.get_or_insert(e);
                Vec::new()
            }
        }
    }
}

/// The JUnit file (--junit) and, under GitHub Actions, the annotations and the step summary.
fn write_ci_outputs(
    app: &App,
    ci: &Ci,
    fail_on: Severity,
    elapsed: std::time::Duration,
) -> anyhow::Result<()> {
    if let Some(path) = &ci.junit {
        std::fs::write(
            path,
            ci::junit_xml("mxprobe", &ci.domains, fail_on, elapsed),
        )
        .with_context(|| format!("writing --junit {}", path.display()))?;
    }
    if let Some(github) = &app.github {
        let annotations = ci::github_annotations(&ci.domains, fail_on);
        // Workflow commands are read from standard output; JSON output keeps it clean.
        if ci.json {
            let _ = app.err().write_all(annotations.as_bytes());
        } else {
            app.out().write_all(annotations.as_bytes())?;
        }
        if let Some(path) = &github.step_summary {
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("opening $GITHUB_STEP_SUMMARY {}", path.display()))?;
            file.write_all(ci::step_summary(&ci.title, &ci.domains, fail_on).as_bytes())
                .context("writing $GITHUB_STEP_SUMMARY")?;
        }
    }
    Ok(())
}

/// Scans the targets of `input` with `scanner` into `sink`, showing `progress`: invalid
/// rows, duplicates and the domains a resumed run has are never scanned. The outcome is the
/// sink's, or 130 when the run was interrupted; an input that cannot be read, or holds no
/// domain, is an error.
pub async fn run(
    scanner: Arc<Scanner>,
    input: Input,
    options: &BulkOptions,
    sink: Sink<'_>,
    progress: ProgressMode,
) -> anyhow::Result<Outcome> {
    run_into(scanner, input, options, sink, progress)
        .await
        .map(|(outcome, _)| outcome)
}

/// [`run`], which also gives back the finished sink.
pub async fn run_into<'a>(
    scanner: Arc<Scanner>,
    input: Input,
    options: &BulkOptions,
    sink: Sink<'a>,
    progress: ProgressMode,
) -> anyhow::Result<(Outcome, Sink<'a>)> {
    let app = sink.app;
    let sink = RefCell::new(sink);
    let display = RefCell::new(Progress::new(progress, input.total));
    let tally = Cell::new(Tally::default());
    let skipped = Cell::new(0u64);
    let rows = RowCounts::default();
    let mut warned = false;
    let stream = target_stream(input.targets)?.filter_map(|t| {
        let item = match t {
            Ok(Target::Domain { line, domain, .. }) => {
                rows.valid.set(rows.valid.get() + 1);
                if sink.borrow().done.contains(&domain) {
                    skipped.set(skipped.get() + 1);
                    None
                } else {
                    Some((line, domain))
                }
            }
            Ok(Target::Invalid { line, text, error }) => {
                rows.invalid.set(rows.invalid.get() + 1);
                let mut s = sink.borrow_mut();
                if let Err(e) = s.invalid(line, &text, &error.to_string()) {
                    s.write_error.get_or_insert_with(|| e.into());
                }
                let mut t = tally.get();
                t.done += 1;
                tally.set(t);
                None
            }
            Ok(Target::Duplicate { .. }) => None,
            Err(e) => {
                rows.error.replace(Some(anyhow::Error::new(e)));
                None
            }
        };
        rows.pause_after(item.is_none()).map(move |()| item)
    });
    let mut write_error: Option<anyhow::Error> = None;
    let stats = bulk::run(
        Arc::clone(&scanner),
        stream,
        options,
        app.clock(),
        app.shutdown(),
        |event| match event {
            Event::Finished {
                id,
                domain,
                outcome,
                progress: p,
            } => {
                let mut t = tally.get();
                t.done = p.done + skipped.get();
                t.failing = p.failing;
                t.inconclusive = p.inconclusive;
                tally.set(t);
                display.borrow_mut().update(t);
                let result = match outcome {
                    DomainOutcome::Scanned(report) => sink.borrow_mut().domain(id, *report),
                    other => sink.borrow_mut().not_tested(id, &domain, &other),
                };
                if let Err(e) = result {
                    write_error.get_or_insert(e);
                }
                warn_once_about_the_resolver(app, &scanner, &mut warned);
            }
            Event::Stopping { in_flight } => sink.borrow().stopping(in_flight),
            Event::Abandoned { domain, .. } => sink.borrow().abandoned(&domain),
            Event::Started { .. } => {}
        },
    )
    .await;
    display.into_inner().finish(tally.get());
    if let Some(e) = write_error {
        return Err(e);
    }
    let mut sink = sink.into_inner();
    let interrupted_note = sink.interrupted_note();
    sink.finish(&stats).await?;
    rows.read_error(input.name.as_deref())?;
    if stats.interrupted {
        app.note(interrupted_note);
        return Ok((Outcome::Interrupted, sink));
    }
    rows.some_domain(input.name.as_deref())?;
    Ok((sink.outcome(), sink))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Command;
    use crate::cmd::testing::{LabFixture, TempDir, app, parse};
    use serde_json::{Value, json};

    fn output(flags: &[&str]) -> OutputArgs {
        let argv: Vec<&str> = ["scan", "a.example"].iter().chain(flags).copied().collect();
        match parse(&argv) {
            Command::Scan(args) => args.output,
            other => panic!("not scan: {other:?}"),
        }
    }

    /// A report on `domain` with one finding per `(severity, could not test)`.
    fn report(domain: &str, findings: &[(&str, bool)]) -> DomainResult {
        let list: Vec<Value> = findings
            .iter()
            .enumerate()
            .map(|(i, (severity, inconclusive))| {
                json!({"code": format!("sts.policy.t{i}"), "severity": severity,
                       "subject": {"domain": domain}, "message": format!("finding {i}"),
                       "inconclusive": inconclusive})
            })
            .collect();
        let inconclusive = findings.iter().any(|(_, i)| *i);
        serde_json::from_value(json!({
            "facts": {
                "domain": domain,
                "observed_at": "2026-11-20T12:00:00Z",
                "mx": {"status": "records", "records": [{"preference": 10,
                       "exchange": format!("mx.{domain}")}], "dnssec": "insecure",
                       "cname-chain": []},
                "sts_txt": {"status": "nodata", "dnssec": "insecure"},
                "tlsrpt_txt": {"status": "nodata", "dnssec": "insecure"},
                "hosts": []
            },
            "verdict": {
                "domain": domain, "routing": "mx", "sts": {}, "sessions": [],
                "inconclusive": inconclusive, "findings": list
            }
        }))
        .unwrap()
    }

    fn stats(done: u64, failing: u64, inconclusive: u64) -> BulkStats {
        BulkStats {
            done,
            failing,
            inconclusive,
            ..BulkStats::default()
        }
    }

    fn name(d: &str) -> DomainName {
        DomainName::parse(d).unwrap()
    }

    #[test]
    fn text_in_input_order_then_the_totals_and_the_worst_status() {
        let t = app();
        let out = output(&[]);
        let mut sink = Sink::scan(&t.app, &out, ScanFiles::default(), true).unwrap();
        sink.domain(2, report("b.example", &[("error", false)]))
            .unwrap();
        sink.domain(1, report("a.example", &[("warning", false)]))
            .unwrap();
        // Held for the order: nothing printed yet.
        assert_eq!(t.out.text(), "");
        sink.invalid(3, "not a domain", "bad").unwrap();
        sink.finish_outputs(&stats(2, 1, 0)).unwrap();
        let text = t.out.text();
        let a = text.find("a.example  WARN").expect("a.example");
        let b = text.find("b.example  FAIL").expect("b.example");
        assert!(a < b, "{text}");
        assert!(
            text.ends_with(
                "2 domains: 1 WARN, 1 FAIL; findings: 1 error, 1 warning; 1 invalid input row \
                 skipped\n"
            ),
            "{text}"
        );
        assert_eq!(
            t.err.text(),
            "mxprobe: input line 3: \"not a domain\" skipped: bad\n"
        );
        assert_eq!(sink.outcome(), Outcome::Fail);
    }

    #[test]
    fn fail_on_and_inconclusive_flags_decide_the_outcome() {
        // (flags, findings of a.example, outcome); b.example has no finding.
        type Case<'a> = (&'a [&'a str], &'a [(&'a str, bool)], Outcome);
        let cases: &[Case<'_>] = &[
            (&[], &[("warning", false)], Outcome::Pass),
            (
                &["--fail-on", "warning"],
                &[("warning", false)],
                Outcome::Fail,
            ),
            // A could-not-test error never fails; it is inconclusive.
            (&[], &[("error", true)], Outcome::Inconclusive),
            (
                &["--inconclusive", "pass"],
                &[("error", true)],
                Outcome::Pass,
            ),
            (
                &["--inconclusive", "fail"],
                &[("warning", true)],
                Outcome::Fail,
            ),
            (
                &["--inconclusive", "pass"],
                &[("error", true), ("error", false)],
                Outcome::Fail,
            ),
        ];
        for (flags, findings, want) in cases {
            let t = app();
            let out = output(flags);
            let mut sink = Sink::scan(&t.app, &out, ScanFiles::default(), false).unwrap();
            sink.domain(1, report("a.example", findings)).unwrap();
            sink.domain(2, report("b.example", &[])).unwrap();
            assert_eq!(sink.outcome(), *want, "{flags:?} {findings:?}");
        }
        // A domain that ended without a report is inconclusive, not passing.
        let t = app();
        let out = output(&[]);
        let mut sink = Sink::scan(&t.app, &out, ScanFiles::default(), false).unwrap();
        sink.domain(1, report("a.example", &[])).unwrap();
        assert_eq!(sink.outcome(), Outcome::Pass);
        sink.not_tested(
            2,
            &name("b.example"),
            &DomainOutcome::TimedOut {
                deadline: std::time::Duration::from_secs(7),
            },
        )
        .unwrap();
        assert_eq!(sink.outcome(), Outcome::Inconclusive);
        assert_eq!(
            t.err.text(),
            "mxprobe: b.example: not finished within --deadline 7s; inconclusive\n"
        );
        // Its block is in the text output too.
        assert!(
            t.out.text().ends_with(
                "b.example  INCONCLUSIVE\n  not finished within --deadline 7s: nothing could \
                 be judged\n\n"
            ),
            "{}",
            t.out.text()
        );
    }

    #[test]
    fn a_domain_without_a_report_keeps_its_place_in_ordered_text_and_stays_out_of_json() {
        let timed_out = DomainOutcome::TimedOut {
            deadline: std::time::Duration::from_secs(3),
        };
        let t = app();
        let mut sink = Sink::scan(&t.app, &output(&[]), ScanFiles::default(), true).unwrap();
        sink.domain(2, report("b.example", &[])).unwrap();
        sink.not_tested(1, &name("a.example"), &timed_out).unwrap();
        sink.finish_outputs(&stats(2, 0, 1)).unwrap();
        let text = t.out.text();
        let a = text.find("a.example  INCONCLUSIVE\n  not finished within --deadline 3s");
        let b = text.find("b.example  OK");
        assert!(a.is_some() && b.is_some() && a < b, "{text}");

        let t = app();
        let out = output(&["--format", "json"]);
        let mut sink = Sink::scan(&t.app, &out, ScanFiles::default(), true).unwrap();
        sink.domain(2, report("b.example", &[])).unwrap();
        sink.not_tested(1, &name("a.example"), &timed_out).unwrap();
        sink.finish_outputs(&stats(2, 0, 1)).unwrap();
        let doc: Value = serde_json::from_str(&t.out.text()).unwrap();
        assert_eq!(doc["domains"].as_array().unwrap().len(), 1, "{doc}");
    }

    #[test]
    fn json_document_jsonl_and_csv_carry_every_domain() {
        let dir = TempDir::new("sink-files");
        let t = app();
        let out = output(&["--format", "json"]);
        let (jsonl, csv) = (dir.path("out.jsonl"), dir.path("out.csv"));
        let files = ScanFiles {
            jsonl: Some(&jsonl),
            csv: Some(&csv),
            resume: false,
        };
        // Not ordered, but JSON waits for every domain anyway.
        let mut sink = Sink::scan(&t.app, &out, files, false).unwrap();
        sink.domain(5, report("b.example", &[("error", false)]))
            .unwrap();
        sink.invalid(3, "x y", "not a domain").unwrap();
        sink.domain(4, report("a.example", &[])).unwrap();
        sink.finish_outputs(&stats(2, 1, 0)).unwrap();
        let doc: Value = serde_json::from_str(&t.out.text()).unwrap();
        let domains: Vec<&str> = doc["domains"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["verdict"]["domain"].as_str().unwrap())
            .collect();
        assert_eq!(domains, ["a.example", "b.example"]);
        assert_eq!(doc["counts"]["error"], 1);
        let records: Vec<Value> = std::fs::read_to_string(&jsonl)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let kinds: Vec<(&str, u64)> = records
            .iter()
            .map(|r| (r["type"].as_str().unwrap(), r["line"].as_u64().unwrap_or(0)))
            .collect();
        assert_eq!(
            kinds,
            [("domain", 5), ("invalid", 3), ("domain", 4), ("summary", 0)]
        );
        assert_eq!(records[3]["invalid"], 1);
        let csv = std::fs::read_to_string(&csv).unwrap();
        let rows: Vec<&str> = csv.lines().map(|l| l.split(',').next().unwrap()).collect();
        assert_eq!(rows, ["domain", "b.example", "x y", "a.example"]);
    }

    #[test]
    fn ci_outputs_and_report_files() {
        let dir = TempDir::new("sink-ci");
        let junit = dir.arg("junit.xml");
        let reports = dir.arg("reports");
        let t = app().under_github(dir.path("summary.md"));
        let out = output(&["--junit", &junit, "--report-dir", &reports]);
        let mut sink = Sink::scan(&t.app, &out, ScanFiles::default(), false).unwrap();
        sink.domain(1, report("a.example", &[("error", false)]))
            .unwrap();
        sink.not_tested(
            2,
            &name("b.example"),
            &DomainOutcome::Crashed {
                message: "boom".to_owned(),
            },
        )
        .unwrap();
        sink.finish_outputs(&stats(2, 1, 1)).unwrap();
        let xml = std::fs::read_to_string(&junit).unwrap();
        assert_eq!(xml.matches("<testsuite ").count(), 2, "{xml}");
        assert!(xml.contains("<failure"), "{xml}");
        // Text output: the annotations follow it on standard output.
        let text = t.out.text();
        assert!(
            text.contains("::error title=mxprobe sts.policy.t0 (a.example)::"),
            "{text}"
        );
        assert!(
            text.contains("::warning title=mxprobe inconclusive (b.example)::"),
            "{text}"
        );
        let summary = std::fs::read_to_string(dir.path("summary.md")).unwrap();
        assert!(summary.starts_with("## mxprobe scan\n"), "{summary}");
        assert!(summary.contains("| a.example | FAIL |"), "{summary}");
        assert!(
            summary.contains("| b.example | inconclusive |"),
            "{summary}"
        );
        let err = t.err.text();
        assert!(
            err.contains("mxprobe: b.example: internal error: boom\n"),
            "{err}"
        );
        assert!(
            err.contains(&format!(
                "mxprobe: wrote {} synthetic TLS-RPT report(s) to {reports}",
                std::fs::read_dir(&reports).unwrap().count()
            )),
            "{err}"
        );
    }

    /// `scan --input` writes as domains finish (nothing held); the HTML report still has
    /// every domain, failing first, the one not tested among them.
    #[test]
    fn html_of_a_streamed_scan_has_every_domain() {
        use scraper::{Html, Selector};
        let dir = TempDir::new("sink-html");
        let path = dir.arg("out.html");
        let t = app();
        let out = output(&["--html", &path]);
        let meta = Meta {
            title: "mxprobe scan".to_owned(),
            started_at: t.app.now(),
            ehlo_name: None,
            resolver: "127.0.0.1:53".to_owned(),
            dnssec: "off".to_owned(),
            version: "0".to_owned(),
        };
        let mut sink = Sink::scan(&t.app, &out, ScanFiles::default(), false)
            .unwrap()
            .with_html(out.html.as_deref(), meta, Kind::Scan)
            .unwrap();
        sink.domain(1, report("a.example", &[])).unwrap();
        sink.domain(2, report("b.example", &[("error", false)]))
            .unwrap();
        sink.not_tested(
            3,
            &name("c.example"),
            &DomainOutcome::TimedOut {
                deadline: std::time::Duration::from_secs(5),
            },
        )
        .unwrap();
        sink.finish_outputs(&stats(3, 1, 1)).unwrap();
        let doc = Html::parse_document(&std::fs::read_to_string(&path).unwrap());
        assert!(doc.errors.is_empty(), "{:?}", doc.errors);
        let link = Selector::parse("td.domain a").unwrap();
        let rows: Vec<(String, &str)> = doc
            .select(&Selector::parse("#grid tbody tr").unwrap())
            .map(|tr| {
                (
                    tr.select(&link).next().unwrap().text().collect(),
                    tr.value().attr("data-status").unwrap(),
                )
            })
            .collect();
        assert_eq!(
            rows,
            [
                ("b.example".to_owned(), "fail"),
                ("c.example".to_owned(), "inconclusive"),
                ("a.example".to_owned(), "ok")
            ]
        );
        assert!(
            t.err
                .text()
                .contains(&format!("mxprobe: wrote the HTML report to {path}")),
            "{}",
            t.err.text()
        );
    }

    #[test]
    fn an_html_file_that_cannot_be_created_is_refused_up_front() {
        let dir = TempDir::new("sink-html-dir");
        let t = app();
        let missing = dir.arg("no/such/dir/out.html");
        let out = output(&["--html", &missing]);
        let meta = Meta {
            title: String::new(),
            started_at: t.app.now(),
            ehlo_name: None,
            resolver: String::new(),
            dnssec: String::new(),
            version: String::new(),
        };
        let err = Sink::scan(&t.app, &out, ScanFiles::default(), true)
            .unwrap()
            .with_html(out.html.as_deref(), meta, Kind::Scan)
            .err()
            .expect("no such directory");
        assert!(
            format!("{err:#}").starts_with(&format!("creating --html {missing}: ")),
            "{err:#}"
        );
    }

    #[test]
    fn a_report_dir_that_is_a_file_is_refused_up_front() {
        let dir = TempDir::new("sink-dir");
        std::fs::write(dir.path("file"), "").unwrap();
        let t = app();
        let out = output(&["--report-dir", &dir.arg("file")]);
        let err = Sink::scan(&t.app, &out, ScanFiles::default(), true)
            .err()
            .expect("not a directory");
        assert!(err.to_string().contains("not a directory"), "{err}");
    }

    #[test]
    fn an_interrupted_scan_exits_130_with_valid_outputs() {
        let lab = LabFixture::start("sink-stop");
        let dir = TempDir::new("sink-stop");
        let jsonl = dir.path("out.jsonl");
        let t = app().interrupted();
        let out = output(&["--format", "json"]);
        let files = ScanFiles {
            jsonl: Some(&jsonl),
            ..ScanFiles::default()
        };
        let sink = Sink::scan(&t.app, &out, files, true).unwrap();
        let input = Input::domains(vec!["good.test".to_owned(), "expired.test".to_owned()]);
        let outcome = crate::cmd::runtime()
            .unwrap()
            .block_on(async {
                let scanner = Arc::new(Scanner::new(lab.lab.scan_config()).unwrap());
                run(
                    scanner,
                    input,
                    &BulkOptions::default(),
                    sink,
                    ProgressMode::Quiet,
                )
                .await
            })
            .unwrap();
        assert_eq!(outcome, Outcome::Interrupted);
        assert!(
            t.err.text().ends_with(
                "mxprobe: interrupted; the output is complete up to here (--resume continues)\n"
            ),
            "{}",
            t.err.text()
        );
        let last: Value = serde_json::from_str(
            std::fs::read_to_string(&jsonl)
                .unwrap()
                .lines()
                .last()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            (last["type"].as_str(), last["interrupted"].as_bool()),
            (Some("summary"), Some(true))
        );
        let _: Value = serde_json::from_str(&t.out.text()).expect("one JSON document");
    }
}
