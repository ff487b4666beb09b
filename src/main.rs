//! The `mxprobe` binary: parse the command line, run the command, map the outcome to an exit
//! status (0 nothing at or above --fail-on, 1 findings at or above it, 2 usage or
//! configuration error). All judgement lives in the library.

use std::cell::{Cell, RefCell};
use std::io::{self, IsTerminal, Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use time::OffsetDateTime;

use mxprobe::cli::{
    Cli, ColorChoice, Command, DemoArgs, Format, GateArgs, GenerateArgs, GenerateMode, HistoryArgs,
    Inconclusive, LintArgs, MonitorArgs, OutputArgs, RelaySecurityArg, ReportsCommand,
    ReportsCompareArgs, ReportsIngestArgs, ReportsSummaryArgs, ScanArgs, SummaryFormat,
    WebhookFormatArg,
};
use mxprobe::config::{Environment, dns_config, probe_config, scan_config};
use mxprobe::input::{self, Column, Target};
use mxprobe::monitor::{Monitor, MonitorConfig};
use mxprobe::notify::Channel;
use mxprobe::progress::{self, Progress, ProgressMode, Tally};
use mxprobe_core::ci::{self, CiDomain};
use mxprobe_core::domain::DomainName;
use mxprobe_core::gate::{self, Candidate, CandidatePolicy};
use mxprobe_core::limits;
use mxprobe_core::lint::{self, LintInput};
use mxprobe_core::output::{
    check_report_dir, write_domain, write_json, write_report_files, write_totals,
};
use mxprobe_core::result::DomainResult;
use mxprobe_core::stream::{CsvWriter, JSONL_SCHEMA_VERSION, JsonlWriter, Record, resume_state};
use mxprobe_lab::{Lab, Scenario};
use mxprobe_probe::bulk::{self, BulkOptions, DomainOutcome, Event};
use mxprobe_probe::scan::{ScanConfig, Scanner};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Lint(args) => run_lint(args),
        Command::Scan(args) => run_scan(args),
        Command::Demo(args) => run_demo(args),
        Command::Gate(args) => run_gate(args),
        Command::Generate(args) => run_generate(args),
        Command::Monitor(args) => run_monitor(args),
        Command::History(args) => run_history(args),
        Command::Reports(command) => run_reports(command),
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

/// Reads the policy file `flag` names (`-` for standard input), at most
/// [`limits::POLICY_FILE_BYTES`].
fn read_policy_file(
    flag: &'static str,
    path: Option<&std::path::Path>,
) -> anyhow::Result<Option<Vec<u8>>> {
    Ok(match path {
        None => None,
        Some(path) if path.as_os_str() == "-" => {
            match limits::read_capped_from(io::stdin(), limits::POLICY_FILE_BYTES) {
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

fn environment() -> Environment {
    Environment {
        ssl_cert_file: std::env::var_os("SSL_CERT_FILE").map(Into::into),
        hostname: gethostname::gethostname().into_string().ok(),
    }
}

fn run_lint(args: LintArgs) -> anyhow::Result<ExitCode> {
    let policy = read_policy_file("--policy", args.policy.as_deref())?;
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
        Format::Text => {
            mxprobe_core::render::write_lint_report(&mut color_stream(args.color), &report)?
        }
    }
    // Lint tests nothing on the network, so it is never inconclusive.
    Ok(ExitCode::from(
        Inconclusive::Report.exit_status(report.fails(args.fail_on), false),
    ))
}

fn run_scan(args: ScanArgs) -> anyhow::Result<ExitCode> {
    let env = environment();
    if let Some(input) = &args.input {
        refuse_input_as_output(
            input,
            &[
                ("--jsonl", args.jsonl.as_deref()),
                ("--csv", args.csv.as_deref()),
                ("--junit", args.output.junit.as_deref()),
            ],
        )?;
    }
    let config = scan_config(&args, &env)?;
    let targets = open_targets(&args.domains, args.input.as_deref(), args.column.as_deref())?;
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
    runtime()?.block_on(run_bulk(config, targets, bulk, sinks, progress))
}

/// Refuses, before anything is read or written, an output file that is the input file: the
/// run would read its own output rows back forever. Compared as files (device and inode), so
/// other spellings of the same path, links and `--input -` redirected from the file are
/// caught too.
fn refuse_input_as_output(
    input: &std::path::Path,
    outputs: &[(&str, Option<&std::path::Path>)],
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

/// Where the targets of a run come from.
struct Input {
    /// The targets, in input order.
    targets: TargetIter,
    /// What the progress display can know of the end.
    total: progress::Total,
    /// The input as named in messages, when the targets come from `--input`.
    name: Option<String>,
}

/// A reader that counts the bytes it hands out (for the progress of an input file).
struct Metered<R> {
    inner: R,
    read: Arc<AtomicU64>,
}

impl<R: Read> Read for Metered<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
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
fn open_targets(
    domains: &[String],
    input: Option<&std::path::Path>,
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
        return Ok(Input {
            targets: Box::new(input::from_args(domains.to_vec()).map(Ok)),
            total: progress::Total::Domains(domains.len() as u64),
            name: None,
        });
    };
    let (reader, total, name): (Box<dyn Read + Send>, _, _) = if path.as_os_str() == "-" {
        (
            Box::new(io::stdin()),
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

type TargetIter = Box<dyn Iterator<Item = Result<Target, input::InputError>> + Send>;

/// The targets as a stream, read on a thread of their own so that a slow pipe never holds up
/// the run (nor its signal handling), at most [`TARGETS_AHEAD`] ahead of the scan.
fn target_stream(
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

fn run_gate(args: GateArgs) -> anyhow::Result<ExitCode> {
    let domain =
        DomainName::parse(&args.domain).with_context(|| format!("domain {:?}", args.domain))?;
    let mx: Vec<DomainName> = args
        .mx
        .iter()
        .map(|m| DomainName::parse(m).with_context(|| format!("--mx {m:?}")))
        .collect::<anyhow::Result<_>>()?;
    lint::check_txt_lengths(&args.sts_txt, &args.tlsrpt_txt)?;
    let policy = read_policy_file("--policy-file", args.policy_file.as_deref())?.map(|bytes| {
        let not_utf8 = std::str::from_utf8(&bytes).is_err();
        CandidatePolicy {
            body: String::from_utf8_lossy(&bytes).into_owned(),
            not_utf8,
        }
    });
    let config = probe_config(&args.probe, &environment())?;
    let output = &args.output;
    if let Some(dir) = &output.report_dir {
        check_report_dir(dir)?;
    }
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
        warn_once_about_the_resolver(&scanner, &Cell::new(false));
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
            &mxprobe_core::generate::policy_id(now),
        );
        anyhow::Ok((gated, now))
    })?;
    let report = DomainResult {
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
        let config = dns_config(&args.dns, mxprobe_probe::resolver::IpFamilies::Both)?;
        let lookup = runtime()?.block_on(async {
            let resolver = mxprobe_probe::resolver::Resolver::new(&config)
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
    let spec = mxprobe_core::generate::GenerateSpec {
        domain,
        mx,
        mode: match args.mode {
            GenerateMode::Testing => mxprobe_core::mtasts::Mode::Testing,
            GenerateMode::Enforce => mxprobe_core::mtasts::Mode::Enforce,
        },
        max_age: args.max_age,
        rua: args.rua.clone(),
    };
    let generated = mxprobe_core::generate::generate(&spec, OffsetDateTime::now_utc())?;
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
    lookup: &mxprobe_core::dns::Lookup<mxprobe_core::dns::Mx>,
) -> anyhow::Result<Vec<String>> {
    use mxprobe_core::dns::Lookup;
    match lookup {
        Lookup::Records { records, .. } => {
            let mut sorted: Vec<&mxprobe_core::dns::Mx> =
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

fn run_monitor(args: MonitorArgs) -> anyhow::Result<ExitCode> {
    let env = environment();
    if let Some(input) = &args.input {
        refuse_input_as_output(
            input,
            &[
                ("--db", Some(args.db.as_path())),
                ("--prometheus", args.prometheus.as_deref()),
            ],
        )?;
    }
    let mut config = probe_config(&args.probe, &env)?;
    let input = open_targets(&args.domains, args.input.as_deref(), args.column.as_deref())?;
    config.politeness.per_ip = usize::try_from(args.per_ip).unwrap_or(usize::MAX);
    let channels = monitor_channels(&args, &env, &config.anchors)?;
    let history = mxprobe::history::History::open(&args.db)
        .with_context(|| format!("--db {}", args.db.display()))?;
    let monitor_config = MonitorConfig {
        expiry_warn_days: args.expiry_warn.clone(),
        remind_every: args
            .remind_every
            .map(|h| time::Duration::hours(i64::try_from(h).unwrap_or(i64::MAX / 3600))),
        inconclusive_after: args.inconclusive_after,
        channels,
        retry: mxprobe::notify::RetryPolicy::default(),
        delivery_deadline: Duration::from_secs(args.delivery_deadline),
        prometheus: args.prometheus.clone().map(|p| {
            (
                p,
                mxprobe::metrics::MetricsOptions {
                    per_ip: args.prometheus_per_ip,
                },
            )
        }),
    };
    let bulk = BulkOptions {
        concurrency: args.concurrency as usize,
        ..BulkOptions::default()
    };
    runtime()?.block_on(async {
        let scanner = Arc::new(Scanner::new(config).context("setting up the DNS resolver")?);
        let mut monitor = Monitor::start(history, monitor_config, OffsetDateTime::now_utc())?;
        let mut out = color_stream(ColorChoice::Auto);
        let mut failing = false;
        let mut inconclusive = false;
        let mut error: Option<anyhow::Error> = None;
        let warned = Cell::new(false);
        let rows = RowCounts::default();
        let stream = target_stream(input.targets)?.filter_map(|t| {
            let item = match t {
                Ok(Target::Domain { line, domain, .. }) => {
                    rows.valid.set(rows.valid.get() + 1);
                    Some((line, domain))
                }
                Ok(Target::Invalid { line, text, error }) => {
                    rows.invalid.set(rows.invalid.get() + 1);
                    eprintln!("mxprobe: input line {line}: {text:?} skipped: {error}");
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
        let stats = bulk::run(
            Arc::clone(&scanner),
            stream,
            &bulk,
            OffsetDateTime::now_utc,
            shutdown_signal(),
            |event| {
                let Event::Finished {
                    domain, outcome, ..
                } = event
                else {
                    return;
                };
                warn_once_about_the_resolver(&scanner, &warned);
                let report = match outcome {
                    DomainOutcome::Scanned(report) => *report,
                    DomainOutcome::TimedOut { deadline } => {
                        inconclusive = true;
                        eprintln!(
                            "mxprobe: {domain}: not finished within {}s; not recorded",
                            deadline.as_secs()
                        );
                        return;
                    }
                    DomainOutcome::Crashed { message } => {
                        inconclusive = true;
                        eprintln!("mxprobe: {domain}: internal error: {message}; not recorded");
                        return;
                    }
                };
                failing |= report
                    .verdict
                    .findings
                    .iter()
                    .any(|f| f.fails(args.fail_on));
                inconclusive |= report.verdict.inconclusive;
                if args.verbose {
                    let _ = write_domain(&mut out, &report);
                }
                let snapshot = DomainResult {
                    facts: report.facts,
                    verdict: report.verdict,
                };
                match monitor.observe(snapshot, OffsetDateTime::now_utc()) {
                    Ok(Some(alert)) => {
                        let _ = writeln!(out, "{}", alert.text());
                    }
                    Ok(None) => {}
                    Err(e) => {
                        error.get_or_insert_with(|| anyhow::Error::new(e));
                    }
                }
            },
        )
        .await;
        if let Some(e) = error {
            return Err(e.context("recording the run in the history database"));
        }
        let delivery = monitor.deliver().await?;
        for failure in &delivery.failed {
            eprintln!("mxprobe: not delivered (kept for the next run): {failure}");
        }
        for postponed in &delivery.postponed {
            eprintln!("mxprobe: {postponed}");
        }
        monitor.finish(OffsetDateTime::now_utc())?;
        if stats.interrupted {
            eprintln!("mxprobe: interrupted; the domains finished so far are recorded");
            return Ok(ExitCode::from(130));
        }
        rows.read_error(input.name.as_deref())?;
        rows.some_domain(input.name.as_deref())?;
        Ok(ExitCode::from(
            args.inconclusive.exit_status(failing, inconclusive),
        ))
    })
}

/// The alert channels the flags and the environment name.
fn monitor_channels(
    args: &MonitorArgs,
    env: &Environment,
    anchors: &mxprobe_core::tls::Anchors,
) -> anyhow::Result<Vec<Channel>> {
    use mxprobe::notify::{Email, Exec, RelaySecurity, Webhook, WebhookFormat};
    let mut channels = Vec::new();
    if let Some(url) = &args.webhook {
        let parsed = reqwest::Url::parse(url).map_err(|e| {
            anyhow::anyhow!("--webhook: not a URL ({e}); give the full https:// address")
        })?;
        let headers = mxprobe::notify::headers_from_env(std::env::vars())?;
        let webhook = Webhook::new(
            parsed,
            match args.webhook_format {
                WebhookFormatArg::Json => WebhookFormat::Json,
                WebhookFormatArg::Text => WebhookFormat::Text,
            },
            headers,
            Duration::from_secs(args.alert_timeout),
            verifying_tls(anchors)?,
        )?;
        channels.push(Channel::Webhook(webhook));
    }
    if !args.email.is_empty() {
        let relay = args
            .smtp_relay
            .as_deref()
            .context("--email needs --smtp-relay HOST[:PORT]")?;
        let (host, port) = match relay.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') => (
                h.to_owned(),
                p.parse::<u16>()
                    .map_err(|_| anyhow::anyhow!("--smtp-relay {relay:?}: {p:?} is not a port"))?,
            ),
            _ => (
                relay.to_owned(),
                if args.smtp_relay_security == RelaySecurityArg::Tls {
                    465
                } else {
                    587
                },
            ),
        };
        let hostname = env.hostname.clone().filter(|h| h.contains('.'));
        let from = match &args.email_from {
            Some(f) => f.clone(),
            None => format!(
                "mxprobe@{}",
                hostname.clone().unwrap_or_else(|| "localhost".to_owned())
            ),
        };
        let mut roots = Vec::new();
        for path in &args.probe.ca_file {
            roots.push(limits::read_capped(
                "--ca-file",
                path,
                limits::CA_FILE_BYTES,
            )?);
        }
        let mut email = Email::new(
            host,
            port,
            match args.smtp_relay_security {
                RelaySecurityArg::Starttls => RelaySecurity::StartTls,
                RelaySecurityArg::Tls => RelaySecurity::Tls,
                RelaySecurityArg::None => RelaySecurity::None,
            },
            from,
            args.email.clone(),
            mxprobe::notify::credentials_from_env(std::env::vars())?,
            roots,
        )?
        .with_timeout(Duration::from_secs(args.alert_timeout));
        if let Some(name) = hostname {
            email = email.with_hello_name(name);
        }
        channels.push(Channel::Email(email));
    }
    if let Some(program) = &args.exec {
        channels.push(Channel::Exec(Exec::new(
            program.clone(),
            Vec::new(),
            Duration::from_secs(args.alert_timeout),
        )));
    }
    Ok(channels)
}

/// A certificate-verifying TLS client configuration trusting `anchors` (Mozilla's roots,
/// --ca-file and SSL_CERT_FILE): never the probes' recording verifier.
fn verifying_tls(anchors: &mxprobe_core::tls::Anchors) -> anyhow::Result<rustls::ClientConfig> {
    let roots = rustls::RootCertStore {
        roots: anchors.as_slice().to_vec(),
    };
    Ok(rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth())
}

fn run_history(args: HistoryArgs) -> anyhow::Result<ExitCode> {
    let domain =
        DomainName::parse(&args.domain).with_context(|| format!("domain {:?}", args.domain))?;
    let (history, since) = read_history(&args.db, args.since.as_deref())?;
    let entries = history.timeline(&domain, since)?;
    let mut out = io::stdout().lock();
    match args.format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, &entries)?;
            writeln!(out)?;
        }
        Format::Text => mxprobe::history::write_timeline(&mut out, &domain, &entries)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// The history database opened for reading (`history`, `reports summary`, `reports
/// compare`), and the `--since` time.
fn read_history(
    db: &std::path::Path,
    since: Option<&str>,
) -> anyhow::Result<(mxprobe::history::History, Option<OffsetDateTime>)> {
    let since = since
        .map(|s| parse_since(s, OffsetDateTime::now_utc()))
        .transpose()?;
    let history = mxprobe::history::History::open_read_only(db)
        .with_context(|| format!("--db {}", db.display()))?;
    Ok((history, since))
}

/// `--since`: an RFC 3339 date-time, a date (midnight UTC), or an age (`7d`, `12h`, `30m`).
/// A time outside the years 0000-9999 (in UTC) is an error, never an overflow.
fn parse_since(s: &str, now: OffsetDateTime) -> anyhow::Result<OffsetDateTime> {
    use time::format_description::well_known::Rfc3339;
    let since = if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        Some(t)
    } else if let Ok(d) = time::Date::parse(
        s,
        &time::macros::format_description!("[year]-[month]-[day]"),
    ) {
        Some(d.midnight().assume_utc())
    } else {
        let (digits, unit) = s.split_at(s.len().saturating_sub(1));
        let n: i64 = digits.parse().map_err(|_| {
            anyhow::anyhow!("--since {s:?}: give a date (2026-11-01), a date-time (2026-11-01T06:00:00Z) or an age (7d, 12h, 30m)")
        })?;
        let unit_seconds: i64 = match unit {
            "d" => 86_400,
            "h" => 3_600,
            "m" => 60,
            _ => anyhow::bail!("--since {s:?}: an age ends in d, h or m (7d, 12h, 30m)"),
        };
        n.checked_mul(unit_seconds)
            .and_then(|seconds| now.checked_sub(time::Duration::seconds(seconds)))
    };
    since
        .and_then(|t| t.checked_to_offset(time::UtcOffset::UTC))
        .filter(|t| (0..=9999).contains(&t.year()))
        .ok_or_else(|| {
            anyhow::anyhow!(
                "--since {s:?}: that is outside the years 0000-9999 (UTC); give a later date or \
                 a smaller age"
            )
        })
}

fn run_reports(command: ReportsCommand) -> anyhow::Result<ExitCode> {
    match command {
        ReportsCommand::Ingest(args) => run_reports_ingest(args),
        ReportsCommand::Summary(args) => run_reports_summary(args),
        ReportsCommand::Compare(args) => run_reports_compare(args),
    }
}

fn run_reports_ingest(args: ReportsIngestArgs) -> anyhow::Result<ExitCode> {
    use mxprobe::history::StoreOutcome;
    use mxprobe::received::ingest::{Found, ingest};
    let mut history = mxprobe::history::History::open(&args.db)
        .with_context(|| format!("--db {}", args.db.display()))?;
    let (mut stored, mut duplicates, mut skipped) = (0usize, 0usize, 0usize);
    let now = OffsetDateTime::now_utc();
    // Each report is stored (one transaction) as soon as it is read, then dropped.
    ingest(&args.paths, |found| {
        match found {
            Found::Report(r) => {
                for quirk in &r.read.quirks {
                    eprintln!("mxprobe: {}: tolerated: {quirk}", r.origin);
                }
                match history.store_report(&r.read.report, &r.json, &r.origin.to_string(), now)? {
                    StoreOutcome::Stored => stored += 1,
                    StoreOutcome::Duplicate => duplicates += 1,
                }
            }
            Found::Skipped(s) => {
                skipped += 1;
                eprintln!("mxprobe: {}: skipped: {}", s.origin, s.reason);
            }
        }
        Ok::<_, mxprobe::history::HistoryError>(())
    })?;
    writeln!(
        io::stdout().lock(),
        "{stored} report(s) stored, {duplicates} already stored, {skipped} skipped"
    )?;
    Ok(ExitCode::SUCCESS)
}

fn run_reports_summary(args: ReportsSummaryArgs) -> anyhow::Result<ExitCode> {
    let domain = args
        .domain
        .as_deref()
        .map(|d| DomainName::parse(d).with_context(|| format!("--domain {d:?}")))
        .transpose()?;
    let (history, since) = read_history(&args.db, args.since.as_deref())?;
    use mxprobe::received::summary::{Format as Summary, summaries, write};
    let format = match args.format {
        SummaryFormat::Text => Summary::Text,
        SummaryFormat::Json => Summary::Json,
        SummaryFormat::Csv => Summary::Csv,
    };
    write(
        &mut io::stdout().lock(),
        format,
        summaries(&history, domain.as_ref(), since),
    )?;
    Ok(ExitCode::SUCCESS)
}

fn run_reports_compare(args: ReportsCompareArgs) -> anyhow::Result<ExitCode> {
    let domain =
        DomainName::parse(&args.domain).with_context(|| format!("domain {:?}", args.domain))?;
    let (history, since) = read_history(&args.db, args.since.as_deref())?;
    let reported = mxprobe::received::compare::reported(&history, &domain, since)?;
    let latest = history
        .recent(&domain, 1)?
        .into_iter()
        .next()
        .map(|(_, s)| s);
    let comparison = mxprobe::received::compare::compare(&domain, reported, latest.as_ref());
    let mut out = io::stdout().lock();
    match args.format {
        Format::Text => mxprobe::received::compare::write_text(&mut out, &comparison)?,
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, &comparison)?;
            writeln!(out)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One domain's result as the CI outputs need it.
struct CiResult {
    domain: DomainName,
    findings: Vec<mxprobe_core::finding::Finding>,
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
            io::stdout().lock().write_all(annotations.as_bytes())?;
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
        let code = run_bulk(
            lab.scan_config(),
            Input {
                targets: Box::new(input::from_args(names).map(Ok)),
                total: progress::Total::Domains(total),
                name: None,
            },
            BulkOptions::default(),
            sinks,
            ProgressMode::Quiet,
        )
        .await?;
        // The broken resolvers of the scenario, each with the domains it lists: the resolver
        // is named once on stderr and every domain is inconclusive, none failing. Shown with
        // the full text demo only (one JSON document, report files and CI outputs stay those
        // of the lab scan).
        let full_text = args.output.format == Format::Text
            && args.domains.is_empty()
            && args.output.report_dir.is_none()
            && args.output.junit.is_none();
        if full_text {
            for spec in &scenario.resolvers {
                let config = lab
                    .scan_config_through(&spec.name)
                    .with_context(|| format!("the lab resolver {}", spec.name))?;
                let servers = config
                    .dns
                    .servers
                    .as_deref()
                    .unwrap_or_default()
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ");
                eprintln!(
                    "\nmxprobe demo: the same lab through {} ({}, at {servers}); scanning {}\n",
                    spec.about,
                    spec.name,
                    spec.domains.len()
                );
                let names: Vec<String> = spec.domains.iter().map(ToString::to_string).collect();
                let total = names.len() as u64;
                let sinks = Sinks::open(&args.output, None, None, false, true)?;
                run_bulk(
                    config,
                    Input {
                        targets: Box::new(input::from_args(names).map(Ok)),
                        total: progress::Total::Domains(total),
                        name: None,
                    },
                    BulkOptions::default(),
                    sinks,
                    ProgressMode::Quiet,
                )
                .await?;
            }
        }
        Ok(code)
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
    held: Option<Vec<(usize, DomainResult)>>,
    jsonl: Option<JsonlWriter<std::fs::File>>,
    csv: Option<CsvWriter<io::BufWriter<std::fs::File>>>,
    done: std::collections::HashSet<DomainName>,
    reports_written: usize,
    failing: bool,
    inconclusive: bool,
    /// Each domain's findings, kept for the CI outputs (JUnit, GitHub) when asked for.
    ci: Option<Vec<CiResult>>,
    invalid: usize,
    /// Writing an invalid row's record failed.
    write_error: Option<anyhow::Error>,
}

impl<'a> Sinks<'a> {
    fn open(
        output: &'a OutputArgs,
        jsonl: Option<&std::path::Path>,
        csv: Option<&std::path::Path>,
        resume: bool,
        ordered: bool,
    ) -> anyhow::Result<Self> {
        if let Some(dir) = &output.report_dir {
            check_report_dir(dir)?;
        }
        let (mut failing, mut inconclusive) = (false, false);
        let (done, jsonl) = match jsonl {
            Some(path) if resume => {
                let (state, file) = resume_state(path, output.fail_on).context("--resume")?;
                // Domains found failing (or inconclusive) before the interruption count in
                // this run's exit status as if scanned now.
                failing = state.failing > 0;
                inconclusive = state.inconclusive > 0;
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
            failing,
            inconclusive,
            ci: (output.junit.is_some() || github_actions()).then(Vec::new),
            invalid: 0,
            write_error: None,
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

    fn domain(&mut self, line: usize, report: DomainResult) -> anyhow::Result<()> {
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

/// What the rows of an input held, counted as they are read.
#[derive(Default)]
struct RowCounts {
    /// Rows with a domain (first occurrences; also those a resumed run skips).
    valid: Cell<u64>,
    /// Rows that are not a domain.
    invalid: Cell<u64>,
    /// Rows in a row that started no scan, since the last yield.
    skipped_in_a_row: Cell<u64>,
    /// Reading the input failed (the stream ended there).
    error: RefCell<Option<anyhow::Error>>,
}

impl RowCounts {
    /// A future that lets other work in (the shutdown signal among it) after every
    /// [`SKIPPED_BETWEEN_YIELDS`] rows in a row that start no scan, and is ready at once
    /// otherwise.
    fn pause_after(&self, skipped: bool) -> futures::future::BoxFuture<'static, ()> {
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
    fn read_error(&self, name: Option<&str>) -> anyhow::Result<()> {
        match self.error.take() {
            Some(e) => Err(e.context(format!("reading {}", name.unwrap_or("the input")))),
            None => Ok(()),
        }
    }

    /// An input without a single domain is an error (exit status 2) naming the input: a run
    /// that scanned nothing must not pass.
    fn some_domain(&self, name: Option<&str>) -> anyhow::Result<()> {
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

async fn run_bulk(
    config: ScanConfig,
    input: Input,
    options: BulkOptions,
    sinks: Sinks<'_>,
    progress: ProgressMode,
) -> anyhow::Result<ExitCode> {
    let scanner = Arc::new(Scanner::new(config).context("setting up the DNS resolver")?);
    let started = OffsetDateTime::now_utc();
    let sinks = RefCell::new(sinks);
    let display = RefCell::new(Progress::new(progress, input.total));
    let tally = Cell::new(Tally::default());
    let skipped = Cell::new(0u64);
    let rows = RowCounts::default();
    let warned = Cell::new(false);
    // Invalid rows, duplicates and resumed domains never reach the engine.
    let stream = target_stream(input.targets)?.filter_map(|t| {
        let item = match t {
            Ok(Target::Domain { line, domain, .. }) => {
                rows.valid.set(rows.valid.get() + 1);
                if sinks.borrow().done.contains(&domain) {
                    skipped.set(skipped.get() + 1);
                    None
                } else {
                    Some((line, domain))
                }
            }
            Ok(Target::Invalid { line, text, error }) => {
                rows.invalid.set(rows.invalid.get() + 1);
                if let Err(e) = sinks.borrow_mut().invalid(line, &text, &error.to_string()) {
                    sinks
                        .borrow_mut()
                        .write_error
                        .get_or_insert_with(|| e.into());
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
                warn_once_about_the_resolver(&scanner, &warned);
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
        let reports: Vec<DomainResult> = held.into_iter().map(|(_, r)| r).collect();
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
    if let Some(e) = sinks.write_error.take() {
        return Err(e);
    }
    rows.read_error(input.name.as_deref())?;
    if stats.interrupted {
        eprintln!("mxprobe: interrupted; the output is complete up to here (--resume continues)");
        return Ok(ExitCode::from(130));
    }
    rows.some_domain(input.name.as_deref())?;
    Ok(ExitCode::from(
        sinks
            .output
            .inconclusive
            .exit_status(sinks.failing, sinks.inconclusive),
    ))
}

/// Says once, on stderr, that the resolver cannot be used (the domains scanned with it are
/// inconclusive because of it, not of themselves), and what to do.
fn warn_once_about_the_resolver(scanner: &Scanner, warned: &Cell<bool>) {
    if warned.get() {
        return;
    }
    if let Some(problem) = scanner.resolver_problem() {
        warned.set(true);
        eprintln!(
            "mxprobe: {problem}. No domain is judged with it: each is inconclusive because of \
             the resolver, not the domain. What to do: {}.",
            problem.advice()
        );
    }
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

/// Whether a broken pipe (the reader of standard output went away, as `head` does) is
/// anywhere in the error chain, also inside the JSON and CSV writers' errors: such a run
/// ends quietly with status 0, whatever the command.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
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
