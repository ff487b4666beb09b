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

use mxprobe::alert::Snapshot;
use mxprobe::bulk::{self, BulkOptions, DomainOutcome, Event};
use mxprobe::ci::{self, CiDomain};
use mxprobe::cli::{
    Cli, ColorChoice, Command, DemoArgs, Format, GateArgs, GenerateArgs, GenerateMode, HistoryArgs,
    Inconclusive, LintArgs, MonitorArgs, OutputArgs, RelaySecurityArg, ReportsCommand,
    ReportsCompareArgs, ReportsIngestArgs, ReportsSummaryArgs, ScanArgs, SummaryFormat,
    WebhookFormatArg,
};
use mxprobe::config::{Environment, dns_config, probe_config, scan_config};
use mxprobe::domain::DomainName;
use mxprobe::gate::{self, Candidate, CandidatePolicy};
use mxprobe::input::{self, Column, Target};
use mxprobe::lab::{Lab, Scenario};
use mxprobe::lint::{self, LintInput};
use mxprobe::monitor::{Monitor, MonitorConfig};
use mxprobe::notify::Channel;
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
    let (targets, total) =
        open_targets(&args.domains, args.input.as_deref(), args.column.as_deref())?;
    let config = scan_config(&args, &env)?;
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

/// The scan targets: the domains typed as arguments (a bad one is a usage error, not a row
/// to skip as in an input file) or the rows of `--input` (`-` for standard input), with their
/// number when it can be known beforehand (for the progress bar).
fn open_targets(
    domains: &[String],
    input: Option<&std::path::Path>,
    column: Option<&str>,
) -> anyhow::Result<(TargetIter, Option<u64>)> {
    for d in domains {
        DomainName::parse(d).with_context(|| format!("domain {d:?}"))?;
    }
    let column = column
        .map(str::parse::<Column>)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--column: {e}"))?;
    Ok(match input {
        None => (
            Box::new(input::from_args(domains.to_vec()).map(Ok)),
            Some(domains.len() as u64),
        ),
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
    })
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

fn run_monitor(args: MonitorArgs) -> anyhow::Result<ExitCode> {
    let env = environment();
    let (targets, _) = open_targets(&args.domains, args.input.as_deref(), args.column.as_deref())?;
    let mut config = probe_config(&args.probe, &env)?;
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
        let stream = futures::stream::iter(targets.filter_map(|t| match t {
            Ok(Target::Domain { line, domain, .. }) => Some((line, domain)),
            Ok(Target::Invalid { line, text, error }) => {
                eprintln!("mxprobe: input line {line}: {text:?} skipped: {error}");
                None
            }
            Ok(Target::Duplicate { .. }) => None,
            Err(e) => {
                eprintln!("mxprobe: reading the input: {e}");
                None
            }
        }));
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
                let snapshot = Snapshot {
                    facts: report.facts,
                    verdict: report.verdict,
                };
                match monitor.observe(
                    snapshot,
                    &scanner.config().anchors,
                    OffsetDateTime::now_utc(),
                ) {
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
        monitor.finish(OffsetDateTime::now_utc())?;
        if stats.interrupted {
            eprintln!("mxprobe: interrupted; the domains finished so far are recorded");
            return Ok(ExitCode::from(130));
        }
        Ok(ExitCode::from(
            args.inconclusive.exit_status(failing, inconclusive),
        ))
    })
}

/// The alert channels the flags and the environment name.
fn monitor_channels(
    args: &MonitorArgs,
    env: &Environment,
    anchors: &mxprobe::tls::Anchors,
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
            Duration::from_secs(30),
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
            roots.push(
                std::fs::read(path).with_context(|| format!("--ca-file {}", path.display()))?,
            );
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
        )?;
        if let Some(name) = hostname {
            email = email.with_hello_name(name);
        }
        channels.push(Channel::Email(email));
    }
    if let Some(program) = &args.exec {
        channels.push(Channel::Exec(Exec::new(
            program.clone(),
            Vec::new(),
            Duration::from_secs(60),
        )));
    }
    Ok(channels)
}

/// A certificate-verifying TLS client configuration trusting `anchors` (Mozilla's roots,
/// --ca-file and SSL_CERT_FILE): never the probes' recording verifier.
fn verifying_tls(anchors: &mxprobe::tls::Anchors) -> anyhow::Result<rustls::ClientConfig> {
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
fn parse_since(s: &str, now: OffsetDateTime) -> anyhow::Result<OffsetDateTime> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Ok(t);
    }
    if let Ok(d) = time::Date::parse(
        s,
        &time::macros::format_description!("[year]-[month]-[day]"),
    ) {
        return Ok(d.midnight().assume_utc());
    }
    let (digits, unit) = s.split_at(s.len().saturating_sub(1));
    let n: i64 = digits.parse().map_err(|_| {
        anyhow::anyhow!("--since {s:?}: give a date (2026-11-01), a date-time (2026-11-01T06:00:00Z) or an age (7d, 12h, 30m)")
    })?;
    let age = match unit {
        "d" => time::Duration::days(n),
        "h" => time::Duration::hours(n),
        "m" => time::Duration::minutes(n),
        _ => anyhow::bail!("--since {s:?}: an age ends in d, h or m (7d, 12h, 30m)"),
    };
    Ok(now - age)
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
    use mxprobe::reports::ingest::{Found, ingest};
    let mut history = mxprobe::history::History::open(&args.db)
        .with_context(|| format!("--db {}", args.db.display()))?;
    let (mut stored, mut duplicates, mut skipped) = (0usize, 0usize, 0usize);
    let now = OffsetDateTime::now_utc();
    for found in ingest(&args.paths) {
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
    }
    println!("{stored} report(s) stored, {duplicates} already stored, {skipped} skipped");
    Ok(ExitCode::SUCCESS)
}

fn run_reports_summary(args: ReportsSummaryArgs) -> anyhow::Result<ExitCode> {
    let domain = args
        .domain
        .as_deref()
        .map(|d| DomainName::parse(d).with_context(|| format!("--domain {d:?}")))
        .transpose()?;
    let (history, since) = read_history(&args.db, args.since.as_deref())?;
    let stored = history.reports(domain.as_ref(), since)?;
    let summary = mxprobe::reports::summary::summarise(&stored, domain.as_ref());
    let mut out = io::stdout().lock();
    match args.format {
        SummaryFormat::Text => mxprobe::reports::summary::write_text(&mut out, &summary)?,
        SummaryFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &summary)?;
            writeln!(out)?;
        }
        SummaryFormat::Csv => mxprobe::reports::summary::write_csv(&mut out, &summary)?,
    }
    Ok(ExitCode::SUCCESS)
}

fn run_reports_compare(args: ReportsCompareArgs) -> anyhow::Result<ExitCode> {
    let domain =
        DomainName::parse(&args.domain).with_context(|| format!("domain {:?}", args.domain))?;
    let (history, since) = read_history(&args.db, args.since.as_deref())?;
    let reports: Vec<_> = history
        .reports(Some(&domain), since)?
        .into_iter()
        .map(|r| r.report)
        .collect();
    let latest = history
        .recent(&domain, 1)?
        .into_iter()
        .next()
        .map(|(_, s)| s);
    let comparison = mxprobe::reports::compare::compare(&domain, &reports, latest.as_ref());
    let mut out = io::stdout().lock();
    match args.format {
        Format::Text => mxprobe::reports::compare::write_text(&mut out, &comparison)?,
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
        let code = run_bulk(
            lab.scan_config(),
            Box::new(input::from_args(names).map(Ok)),
            Some(total),
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
                    Box::new(input::from_args(names).map(Ok)),
                    Some(total),
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
    let warned = Cell::new(false);
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

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}
