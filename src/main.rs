//! The `mxprobe` binary: parse the command line, run the command, map the outcome to an exit
//! status (0 nothing at or above --fail-on, 1 findings at or above it, 2 usage or
//! configuration error). All judgement lives in the library.

use std::cell::{Cell, RefCell};
use std::io::{self, BufRead, IsTerminal, Read, Write};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use time::OffsetDateTime;

use mxprobe::bulk::{self, BulkOptions, DomainOutcome, Event};
use mxprobe::ci::{self, CiDomain};
use mxprobe::cli::{
    Cli, ColorChoice, Command, DemoArgs, Format, GateArgs, GenerateArgs, GenerateMode,
    Inconclusive, LintArgs, OutputArgs, ScanArgs,
};
use mxprobe::config::{Environment, dns_config, probe_config, scan_config};
use mxprobe::domain::DomainName;
use mxprobe::gate::{self, Candidate, CandidatePolicy};
use mxprobe::input::{self, Column, Target};
use mxprobe::lab::{Lab, Scenario};
use mxprobe::lint::{self, LintInput};
use mxprobe::output::{write_domain, write_json, write_report_files, write_totals};
use mxprobe::progress::{Progress, ProgressMode, Tally};
use mxprobe::scan::{DomainReport, ScanConfig, Scanner};
use mxprobe::stream::{CsvWriter, JSONL_SCHEMA_VERSION, JsonlWriter, Record, resume_state};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Lint(args) => run_lint(args),
        Command::Scan(args) => run_scan(args),
        Command::Demo(args) => run_demo(args),
        Command::Gate(args) => run_gate(args),
        Command::Generate(args) => run_generate(args),
    };
    match result {
        Ok(code) => code,
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("mxprobe: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn color_stream(choice: ColorChoice) -> anstream::AutoStream<io::StdoutLock<'static>> {
    let stdout = io::stdout();
    let choice = match choice {
        ColorChoice::Auto if stdout.is_terminal() => anstream::ColorChoice::Auto,
        ColorChoice::Auto | ColorChoice::Never => anstream::ColorChoice::Never,
        ColorChoice::Always => anstream::ColorChoice::Always,
    };
    anstream::AutoStream::new(stdout.lock(), choice)
}

/// Reads a policy file named on the command line (`-` for standard input).
fn read_policy_file(path: Option<&std::path::Path>) -> anyhow::Result<Option<Vec<u8>>> {
    Ok(match path {
        None => None,
        Some(path) if path.as_os_str() == "-" => {
            let mut body = Vec::new();
            io::stdin()
                .read_to_end(&mut body)
                .context("reading the policy from standard input")?;
            Some(body)
        }
        Some(path) => Some(
            std::fs::read(path)
                .with_context(|| format!("reading the policy file {}", path.display()))?,
        ),
    })
}

fn environment() -> Environment {
    Environment {
        ssl_cert_file: std::env::var_os("SSL_CERT_FILE").map(Into::into),
        hostname: gethostname::gethostname().into_string().ok(),
    }
}

fn run_lint(args: LintArgs) -> anyhow::Result<ExitCode> {
    let policy = read_policy_file(args.policy.as_deref())?;
    let input = LintInput {
        domain: args.domain,
        policy,
        sts_txt: args.sts_txt,
        tlsrpt_txt: args.tlsrpt_txt,
        tlsrpt_name: Some(args.tlsrpt_name),
        mx: args.mx,
    };
    let report = lint::lint(&input).context("checking the command line")?;
    match args.format {
        Format::Json => {
            let mut out = io::stdout().lock();
            serde_json::to_writer_pretty(&mut out, &report)?;
            writeln!(out)?;
        }
        Format::Text => lint::write_text(&mut color_stream(args.color), &report)?,
    }
    // Lint tests nothing on the network, so it is never inconclusive.
    Ok(ExitCode::from(
        Inconclusive::Report.exit_status(report.fails(args.fail_on), false),
    ))
}

fn run_scan(args: ScanArgs) -> anyhow::Result<ExitCode> {
    let env = environment();
    // Command-line domains are typed by the user: a bad one is a usage error, not a row to
    // skip as in an input file.
    for d in &args.domains {
        DomainName::parse(d).with_context(|| format!("domain {d:?}"))?;
    }
    let config = scan_config(&args, &env)?;
    let column = args
        .column
        .as_deref()
        .map(str::parse::<Column>)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--column: {e}"))?;
    let (targets, total): (TargetIter, Option<u64>) = match &args.input {
        None => {
            let n = args.domains.len() as u64;
            (
                Box::new(input::from_args(args.domains.clone()).map(Ok)),
                Some(n),
            )
        }
        Some(path) if path.as_os_str() == "-" => (
            Box::new(input::targets(
                Box::new(io::stdin()) as Box<dyn Read>,
                column,
            )?),
            None,
        ),
        Some(path) => {
            let file = std::fs::File::open(path)
                .with_context(|| format!("opening the input file {}", path.display()))?;
            let total = count_rows(path);
            let targets = input::targets(Box::new(file) as Box<dyn Read>, column)
                .with_context(|| format!("reading {}", path.display()))?;
            let total = total.map(|n| n.saturating_sub(u64::from(targets.is_csv())));
            (Box::new(targets), total)
        }
    };
    let bulk = BulkOptions {
        concurrency: args.concurrency as usize,
        domain_deadline: Duration::from_secs(args.deadline.max(1)),
        ..BulkOptions::default()
    };
    // Results from the command line are printed in the order given; from a file, as each
    // domain finishes (streaming).
    let ordered = args.input.is_none();
    let sinks = Sinks::open(
        &args.output,
        args.jsonl.as_deref(),
        args.csv.as_deref(),
        args.resume,
        ordered,
    )?;
    let many = args.input.is_some() || args.domains.len() > 10;
    let progress = if args.quiet || !many {
        ProgressMode::Quiet
    } else if io::stderr().is_terminal() {
        ProgressMode::Bar
    } else {
        ProgressMode::Plain
    };
    runtime()?.block_on(run_bulk(config, targets, total, bulk, sinks, progress))
}

type TargetIter = Box<dyn Iterator<Item = Result<Target, input::InputError>>>;

/// Counts the rows of an input file that can be targets (for the progress bar's total).
fn count_rows(path: &std::path::Path) -> Option<u64> {
    let file = std::fs::File::open(path).ok()?;
    let mut n = 0u64;
    for line in io::BufReader::new(file).lines() {
        let line = line.ok()?;
        let t = line.trim();
        if !t.is_empty() && !t.starts_with('#') {
            n += 1;
        }
    }
    Some(n)
}

fn run_gate(args: GateArgs) -> anyhow::Result<ExitCode> {
    let domain =
        DomainName::parse(&args.domain).with_context(|| format!("domain {:?}", args.domain))?;
    let mx: Vec<DomainName> = args
        .mx
        .iter()
        .map(|m| DomainName::parse(m).with_context(|| format!("--mx {m:?}")))
        .collect::<anyhow::Result<_>>()?;
    let policy = read_policy_file(args.policy_file.as_deref())?.map(|bytes| {
        let not_utf8 = std::str::from_utf8(&bytes).is_err();
        CandidatePolicy {
            body: String::from_utf8_lossy(&bytes).into_owned(),
            not_utf8,
        }
    });
    let config = probe_config(&args.probe, &environment())?;
    let output = &args.output;
    let started = std::time::Instant::now();
    let (gated, scanner_config) = runtime()?.block_on(async {
        let scanner = Scanner::new(config).context("setting up the DNS resolver")?;
        let now = OffsetDateTime::now_utc();
        let candidate_hosts = futures::future::join_all(
            mx.iter()
                .zip((10u16..).step_by(10))
                .map(|(host, preference)| scanner.observe_host(host, preference)),
        );
        let (live, hosts) = futures::join!(scanner.observe(&domain, now), candidate_hosts);
        let wants_policy = policy.is_some() || !args.sts_txt.is_empty();
        let policy_host = if wants_policy && live.policy_fetch.is_none() {
            Some(scanner.fetch(&domain).await)
        } else {
            None
        };
        let candidate = Candidate {
            policy,
            sts_txt: args.sts_txt.clone(),
            tlsrpt_txt: args.tlsrpt_txt.clone(),
            mx: hosts,
            policy_host,
        };
        let gated = gate::judge(
            &live,
            &candidate,
            &scanner.eval_options(now),
            &mxprobe::generate::policy_id(now),
        );
        anyhow::Ok((gated, now))
    })?;
    let report = DomainReport {
        facts: gated.facts.clone(),
        verdict: gated.verdict.clone(),
    };
    match output.format {
        Format::Json => {
            let mut out = io::stdout().lock();
            serde_json::to_writer_pretty(
                &mut out,
                &GateDocument {
                    schema_version: GATE_SCHEMA_VERSION,
                    domain: &domain,
                    checked_at: scanner_config,
                    candidate: CandidateSummary {
                        policy_file: args.policy_file.as_deref(),
                        sts_txt: &args.sts_txt,
                        tlsrpt_txt: &args.tlsrpt_txt,
                        mx: &args.mx,
                    },
                    gated: &gated,
                },
            )?;
            writeln!(out)?;
        }
        Format::Text => {
            let mut out = color_stream(output.color);
            let mut proposed = Vec::new();
            if let Some(path) = &args.policy_file {
                proposed.push(format!("policy file {}", path.display()));
            }
            for txt in &args.sts_txt {
                proposed.push(format!("_mta-sts TXT \"{txt}\""));
            }
            for txt in &args.tlsrpt_txt {
                proposed.push(format!("_smtp._tls TXT \"{txt}\""));
            }
            if !args.mx.is_empty() {
                proposed.push(format!("MX {}", args.mx.join(", ")));
            }
            if proposed.is_empty() {
                writeln!(
                    out,
                    "mxprobe gate: {domain} as it is live (no candidate given)\n"
                )?;
            } else {
                writeln!(
                    out,
                    "mxprobe gate: {domain} judged as if published: {}\n",
                    proposed.join("; ")
                )?;
            }
            write_domain(&mut out, &report)?;
        }
    }
    if let Some(dir) = &output.report_dir {
        let written = write_report_files(
            dir,
            std::slice::from_ref(&report),
            report.facts.observed_at,
            OffsetDateTime::now_utc(),
            output.gzip,
        )?;
        eprintln!(
            "mxprobe: wrote {} synthetic TLS-RPT report(s) to {}",
            written.len(),
            dir.display()
        );
    }
    write_ci_outputs(
        output,
        &format!("mxprobe gate {domain}"),
        &[CiResult {
            domain: domain.clone(),
            findings: report.verdict.findings.clone(),
            inconclusive: report.verdict.inconclusive,
        }],
        started.elapsed(),
    )?;
    let failing = report
        .verdict
        .findings
        .iter()
        .any(|f| f.fails(output.fail_on));
    Ok(ExitCode::from(
        output
            .inconclusive
            .exit_status(failing, report.verdict.inconclusive),
    ))
}

fn run_generate(args: GenerateArgs) -> anyhow::Result<ExitCode> {
    let domain =
        DomainName::parse(&args.domain).with_context(|| format!("--domain {:?}", args.domain))?;
    let mut mx = args.mx.clone();
    if args.live {
        let config = dns_config(&args.dns, mxprobe::dns::hickory::IpFamilies::Both)?;
        let lookup = runtime()?.block_on(async {
            let resolver = mxprobe::dns::hickory::Resolver::new(&config)
                .context("setting up the DNS resolver")?;
            anyhow::Ok(resolver.mx(&domain).await)
        })?;
        let live = live_mx_hosts(&domain, &lookup)?;
        for host in live {
            if !mx.contains(&host) {
                mx.push(host);
            }
        }
    }
    let spec = mxprobe::generate::GenerateSpec {
        domain,
        mx,
        mode: match args.mode {
            GenerateMode::Testing => mxprobe::mtasts::Mode::Testing,
            GenerateMode::Enforce => mxprobe::mtasts::Mode::Enforce,
        },
        max_age: args.max_age,
        rua: args.rua.clone(),
    };
    let generated = mxprobe::generate::generate(&spec, OffsetDateTime::now_utc())?;
    let mut out = io::stdout().lock();
    match args.format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, &generated)?;
            writeln!(out)?;
        }
        Format::Text => generated.write_text(&mut out)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// The MX host names of a live MX lookup, in preference order, for `generate --live`.
fn live_mx_hosts(
    domain: &DomainName,
    lookup: &mxprobe::dns::Lookup<mxprobe::dns::Mx>,
) -> anyhow::Result<Vec<String>> {
    use mxprobe::dns::Lookup;
    match lookup {
        Lookup::Records { records, .. } => {
            let mut sorted: Vec<&mxprobe::dns::Mx> =
                records.iter().filter(|m| m.exchange != ".").collect();
            anyhow::ensure!(
                !sorted.is_empty(),
                "--live: {domain} publishes a null MX (it accepts no mail): it needs no MTA-STS \
                 policy"
            );
            sorted.sort_by_key(|m| m.preference);
            Ok(sorted.into_iter().map(|m| m.exchange.clone()).collect())
        }
        Lookup::NoData { .. } => Ok(vec![domain.to_string()]),
        Lookup::NxDomain { .. } => {
            anyhow::bail!("--live: {domain} does not exist in DNS (NXDOMAIN)")
        }
        other => anyhow::bail!(
            "--live: cannot read the MX records of {domain}: {}; give the hosts with --mx",
            other.failure().unwrap_or_default()
        ),
    }
}

/// One domain's result as the CI outputs need it.
struct CiResult {
    domain: DomainName,
    findings: Vec<mxprobe::finding::Finding>,
    inconclusive: bool,
}

/// Whether mxprobe runs as a GitHub Actions step.
fn github_actions() -> bool {
    std::env::var_os("GITHUB_ACTIONS").is_some_and(|v| v == "true")
}

/// The JUnit file (--junit) and, under GitHub Actions, the annotations and the step summary.
fn write_ci_outputs(
    output: &OutputArgs,
    title: &str,
    results: &[CiResult],
    elapsed: Duration,
) -> anyhow::Result<()> {
    let domains: Vec<CiDomain<'_>> = results
        .iter()
        .map(|r| CiDomain {
            domain: &r.domain,
            findings: &r.findings,
            inconclusive: r.inconclusive,
        })
        .collect();
    if let Some(path) = &output.junit {
        std::fs::write(
            path,
            ci::junit_xml("mxprobe", &domains, output.fail_on, elapsed),
        )
        .with_context(|| format!("writing --junit {}", path.display()))?;
    }
    if github_actions() {
        let annotations = ci::github_annotations(&domains, output.fail_on);
        // Workflow commands are read from standard output; JSON output keeps it clean.
        if output.format == Format::Json {
            eprint!("{annotations}");
        } else {
            print!("{annotations}");
        }
        if let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY") {
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .with_context(|| {
                    format!(
                        "opening $GITHUB_STEP_SUMMARY {}",
                        std::path::Path::new(&path).display()
                    )
                })?;
            file.write_all(ci::step_summary(title, &domains, output.fail_on).as_bytes())
                .context("writing $GITHUB_STEP_SUMMARY")?;
        }
    }
    Ok(())
}

/// The version of `mxprobe gate --format json`'s shape (docs/ci.md).
const GATE_SCHEMA_VERSION: u32 = 1;

/// `mxprobe gate --format json`.
#[derive(serde::Serialize)]
struct GateDocument<'a> {
    schema_version: u32,
    domain: &'a DomainName,
    #[serde(with = "time::serde::rfc3339")]
    checked_at: OffsetDateTime,
    candidate: CandidateSummary<'a>,
    #[serde(flatten)]
    gated: &'a gate::Gated,
}

/// What was proposed, as given on the command line.
#[derive(serde::Serialize)]
struct CandidateSummary<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    policy_file: Option<&'a std::path::Path>,
    sts_txt: &'a [String],
    tlsrpt_txt: &'a [String],
    mx: &'a [String],
}

fn run_demo(args: DemoArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let scenario = Scenario::embedded().context("reading the embedded lab scenario")?;
        let lab = Lab::start(&scenario, OffsetDateTime::now_utc())
            .await
            .context("starting the mail lab on loopback")?;
        let all = lab.domains();
        for d in &args.domains {
            let d = DomainName::parse(d).with_context(|| format!("domain {d:?}"))?;
            anyhow::ensure!(
                all.contains(&d),
                "{d} is not a lab domain (see fixtures/lab/scenario.toml)"
            );
        }
        let names: Vec<String> = if args.domains.is_empty() {
            all.iter().map(ToString::to_string).collect()
        } else {
            args.domains.clone()
        };
        if args.output.format == Format::Text {
            eprintln!(
                "mxprobe demo: mail lab on loopback ({} domains, DNS at {}); scanning {}\n",
                all.len(),
                lab.dns().addr,
                names.len()
            );
        }
        let total = names.len() as u64;
        let sinks = Sinks::open(&args.output, None, None, false, true)?;
        run_bulk(
            lab.scan_config(),
            Box::new(input::from_args(names).map(Ok)),
            Some(total),
            BulkOptions::default(),
            sinks,
            ProgressMode::Quiet,
        )
        .await
    })
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// Where results go as each domain finishes.
struct Sinks<'a> {
    output: &'a OutputArgs,
    text: Option<anstream::AutoStream<io::StdoutLock<'static>>>,
    json: bool,
    /// Reports held back to be printed in input order (text and JSON), by input line.
    held: Option<Vec<(usize, DomainReport)>>,
    jsonl: Option<JsonlWriter<std::fs::File>>,
    csv: Option<CsvWriter<io::BufWriter<std::fs::File>>>,
    done: std::collections::HashSet<DomainName>,
    reports_written: usize,
    failing: bool,
    inconclusive: bool,
    /// Each domain's findings, kept for the CI outputs (JUnit, GitHub) when asked for.
    ci: Option<Vec<CiResult>>,
    invalid: usize,
    input_error: Option<anyhow::Error>,
}

impl<'a> Sinks<'a> {
    fn open(
        output: &'a OutputArgs,
        jsonl: Option<&std::path::Path>,
        csv: Option<&std::path::Path>,
        resume: bool,
        ordered: bool,
    ) -> anyhow::Result<Self> {
        let (done, jsonl) = match jsonl {
            Some(path) if resume => {
                let (state, file) = resume_state(path).context("--resume")?;
                if state.truncated_bytes > 0 {
                    eprintln!(
                        "mxprobe: {}: cut off an incomplete last line ({} bytes) left by an \
                         interrupted run",
                        path.display(),
                        state.truncated_bytes
                    );
                }
                (state.done, Some(JsonlWriter::new(file)))
            }
            Some(path) => {
                let file = std::fs::File::create(path)
                    .with_context(|| format!("creating --jsonl {}", path.display()))?;
                (Default::default(), Some(JsonlWriter::new(file)))
            }
            None => (Default::default(), None),
        };
        let csv = csv
            .map(|path| {
                let file = std::fs::File::create(path)
                    .with_context(|| format!("creating --csv {}", path.display()))?;
                Ok::<_, anyhow::Error>(CsvWriter::new(io::BufWriter::new(file))?)
            })
            .transpose()?;
        Ok(Self {
            output,
            text: (output.format == Format::Text).then(|| color_stream(output.color)),
            json: output.format == Format::Json,
            // The JSON document needs every report; text waits only when ordered.
            held: (ordered || output.format == Format::Json).then(Vec::new),
            jsonl,
            csv,
            done,
            reports_written: 0,
            failing: false,
            inconclusive: false,
            ci: (output.junit.is_some() || github_actions()).then(Vec::new),
            invalid: 0,
            input_error: None,
        })
    }

    fn invalid(&mut self, line: usize, text: &str, error: &str) -> io::Result<()> {
        self.invalid += 1;
        eprintln!("mxprobe: input line {line}: {text:?} skipped: {error}");
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

    /// A domain that ended without a report (deadline passed, internal error).
    fn not_tested(&mut self, domain: &DomainName) {
        self.inconclusive = true;
        if let Some(ci) = &mut self.ci {
            ci.push(CiResult {
                domain: domain.clone(),
                findings: Vec::new(),
                inconclusive: true,
            });
        }
    }

    fn domain(&mut self, line: usize, report: DomainReport) -> anyhow::Result<()> {
        self.failing |= report
            .verdict
            .findings
            .iter()
            .any(|f| f.fails(self.output.fail_on));
        self.inconclusive |= report.verdict.inconclusive;
        if let Some(ci) = &mut self.ci {
            ci.push(CiResult {
                domain: report.verdict.domain.clone(),
                findings: report.verdict.findings.clone(),
                inconclusive: report.verdict.inconclusive,
            });
        }
        if let (Some(out), None) = (&mut self.text, &self.held) {
            write_domain(out, &report)?;
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
        if let Some(dir) = &self.output.report_dir {
            let written = write_report_files(
                dir,
                std::slice::from_ref(&report),
                report.facts.observed_at,
                OffsetDateTime::now_utc(),
                self.output.gzip,
            )?;
            self.reports_written += written.len();
        }
        if let Some(held) = &mut self.held {
            held.push((line, report));
        }
        Ok(())
    }
}

async fn run_bulk(
    config: ScanConfig,
    targets: TargetIter,
    total: Option<u64>,
    options: BulkOptions,
    sinks: Sinks<'_>,
    progress: ProgressMode,
) -> anyhow::Result<ExitCode> {
    let scanner = Arc::new(Scanner::new(config).context("setting up the DNS resolver")?);
    let started = OffsetDateTime::now_utc();
    let sinks = RefCell::new(sinks);
    let display = RefCell::new(Progress::new(progress, total));
    let tally = Cell::new(Tally::default());
    let skipped = Cell::new(0u64);
    // Invalid rows, duplicates and resumed domains never reach the engine.
    let stream = futures::stream::iter(targets.map_while(|t| match t {
        Ok(t) => Some(t),
        Err(e) => {
            sinks.borrow_mut().input_error = Some(anyhow::Error::new(e));
            None
        }
    }))
    .filter_map(|t| {
        let item = match t {
            Target::Domain { line, domain, .. } => {
                if sinks.borrow().done.contains(&domain) {
                    skipped.set(skipped.get() + 1);
                    None
                } else {
                    Some((line, domain))
                }
            }
            Target::Invalid { line, text, error } => {
                if let Err(e) = sinks.borrow_mut().invalid(line, &text, &error.to_string()) {
                    sinks.borrow_mut().input_error = Some(e.into());
                }
                let mut t = tally.get();
                t.done += 1;
                tally.set(t);
                None
            }
            Target::Duplicate { .. } => None,
        };
        futures::future::ready(item)
    });
    let mut write_error: Option<anyhow::Error> = None;
    let stats = bulk::run(
        Arc::clone(&scanner),
        stream,
        &options,
        OffsetDateTime::now_utc,
        shutdown_signal(),
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
                    DomainOutcome::Scanned(report) => sinks.borrow_mut().domain(id, *report),
                    DomainOutcome::TimedOut { deadline } => {
                        sinks.borrow_mut().not_tested(&domain);
                        eprintln!(
                            "mxprobe: {domain}: not finished within --deadline {}s; inconclusive",
                            deadline.as_secs()
                        );
                        Ok(())
                    }
                    DomainOutcome::Crashed { message } => {
                        sinks.borrow_mut().not_tested(&domain);
                        eprintln!("mxprobe: {domain}: internal error: {message}");
                        Ok(())
                    }
                };
                if let Err(e) = result {
                    write_error.get_or_insert(e);
                }
            }
            Event::Stopping { in_flight } => eprintln!(
                "mxprobe: interrupted: finishing {in_flight} domain(s) in flight, then stopping"
            ),
            Event::Abandoned { domain, .. } => {
                eprintln!("mxprobe: {domain}: abandoned (scan it again with --resume)");
            }
            Event::Started { .. } => {}
        },
    )
    .await;
    display.into_inner().finish(tally.get());
    let mut sinks = sinks.into_inner();
    if let Some(e) = write_error {
        return Err(e);
    }
    if let Some(w) = &mut sinks.jsonl {
        w.write(&Record::Summary {
            schema_version: JSONL_SCHEMA_VERSION,
            domains: stats.done as usize,
            invalid: sinks.invalid,
            failing: stats.failing as usize,
            inconclusive: stats.inconclusive as usize,
            abandoned: stats.abandoned as usize,
            interrupted: stats.interrupted,
        })?;
    }
    if let Some(mut held) = sinks.held.take() {
        held.sort_by_key(|(line, _)| *line);
        let reports: Vec<DomainReport> = held.into_iter().map(|(_, r)| r).collect();
        if sinks.json {
            write_json(&mut io::stdout().lock(), started, &reports)?;
        } else if let Some(out) = &mut sinks.text {
            for r in &reports {
                write_domain(out, r)?;
            }
        }
    }
    if let Some(out) = &mut sinks.text {
        write_totals(
            out,
            stats.done,
            stats.failing,
            stats.inconclusive,
            sinks.invalid,
        )?;
    }
    if let Some(dir) = &sinks.output.report_dir {
        eprintln!(
            "mxprobe: wrote {} synthetic TLS-RPT report(s) to {}",
            sinks.reports_written,
            dir.display()
        );
    }
    if let Some(results) = &sinks.ci {
        write_ci_outputs(
            sinks.output,
            "mxprobe scan",
            results,
            (OffsetDateTime::now_utc() - started).unsigned_abs(),
        )?;
    }
    if let Some(e) = sinks.input_error.take() {
        return Err(e.context("reading the input"));
    }
    if stats.interrupted {
        eprintln!("mxprobe: interrupted; the output is complete up to here (--resume continues)");
        return Ok(ExitCode::from(130));
    }
    Ok(ExitCode::from(
        sinks
            .output
            .inconclusive
            .exit_status(sinks.failing, sinks.inconclusive),
    ))
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

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}
