//! The `mxprobe` binary: parse the command line, run the command, map the outcome to an exit
//! status (0 nothing at or above --fail-on, 1 findings at or above it, 2 usage or
//! configuration error). All judgement lives in the library.

use std::io::{self, IsTerminal, Read, Write};
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use time::OffsetDateTime;

use mxprobe::cli::{Cli, ColorChoice, Command, DemoArgs, Format, LintArgs, OutputArgs, ScanArgs};
use mxprobe::config::{Environment, scan_config};
use mxprobe::domain::DomainName;
use mxprobe::lab::{Lab, Scenario};
use mxprobe::lint::{self, LintInput};
use mxprobe::output::{write_domain, write_json, write_report_files, write_summary};
use mxprobe::scan::{DomainReport, ScanConfig, Scanner};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Lint(args) => run_lint(args),
        Command::Scan(args) => run_scan(args),
        Command::Demo(args) => run_demo(args),
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

fn run_lint(args: LintArgs) -> anyhow::Result<ExitCode> {
    let policy = match &args.policy {
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
    };
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
    Ok(exit_for(report.fails(args.fail_on)))
}

fn exit_for(fails: bool) -> ExitCode {
    if fails {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn run_scan(args: ScanArgs) -> anyhow::Result<ExitCode> {
    let domains = args
        .domains
        .iter()
        .map(|d| DomainName::parse(d).with_context(|| format!("domain {d:?}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let env = Environment {
        ssl_cert_file: std::env::var_os("SSL_CERT_FILE").map(Into::into),
        hostname: gethostname::gethostname().into_string().ok(),
    };
    let config = scan_config(&args, &env)?;
    runtime()?.block_on(scan_and_write(config, domains, &args.output))
}

fn run_demo(args: DemoArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let scenario = Scenario::embedded().context("reading the embedded lab scenario")?;
        let lab = Lab::start(&scenario, OffsetDateTime::now_utc())
            .await
            .context("starting the mail lab on loopback")?;
        let all = lab.domains();
        let domains = if args.domains.is_empty() {
            all.to_vec()
        } else {
            args.domains
                .iter()
                .map(|d| {
                    let d = DomainName::parse(d).with_context(|| format!("domain {d:?}"))?;
                    anyhow::ensure!(
                        all.contains(&d),
                        "{d} is not a lab domain (see fixtures/lab/scenario.toml)"
                    );
                    Ok(d)
                })
                .collect::<anyhow::Result<Vec<_>>>()?
        };
        if args.output.format == Format::Text {
            eprintln!(
                "mxprobe demo: mail lab on loopback ({} domains, DNS at {}); scanning {}\n",
                all.len(),
                lab.dns().addr,
                domains.len()
            );
        }
        scan_and_write(lab.scan_config(), domains, &args.output).await
    })
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

async fn scan_and_write(
    config: ScanConfig,
    domains: Vec<DomainName>,
    output: &OutputArgs,
) -> anyhow::Result<ExitCode> {
    let scanner = Scanner::new(config).context("setting up the DNS resolver")?;
    let started = OffsetDateTime::now_utc();
    let reports: Vec<DomainReport> = futures::future::join_all(
        domains
            .iter()
            .map(|d| scanner.scan(d, OffsetDateTime::now_utc())),
    )
    .await;
    let finished = OffsetDateTime::now_utc();
    match output.format {
        Format::Json => write_json(&mut io::stdout().lock(), started, &reports)?,
        Format::Text => {
            let mut out = color_stream(output.color);
            for r in &reports {
                write_domain(&mut out, r)?;
            }
            write_summary(&mut out, &reports)?;
        }
    }
    if let Some(dir) = &output.report_dir {
        let written = write_report_files(dir, &reports, started, finished, output.gzip)?;
        eprintln!(
            "mxprobe: wrote {} synthetic TLS-RPT report(s) to {}",
            written.len(),
            dir.display()
        );
    }
    Ok(exit_for(reports.iter().any(|r| {
        r.verdict
            .findings
            .iter()
            .any(|f| f.severity >= output.fail_on)
    })))
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}
