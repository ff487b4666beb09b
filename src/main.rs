//! The `mxprobe` binary: parse the command line, run the command, map the outcome to an exit
//! status (0 nothing at or above --fail-on, 1 findings at or above it, 2 usage or
//! configuration error). All judgement lives in the library.

use std::io::{self, IsTerminal, Read, Write};
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

use mxprobe::cli::{Cli, ColorChoice, Command, Format, LintArgs};
use mxprobe::lint::{self, LintInput};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Lint(args) => run_lint(args),
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
        mx: args.mx,
    };
    let report = lint::lint(&input).context("checking the command line")?;
    let stdout = io::stdout();
    match args.format {
        Format::Json => {
            let mut out = stdout.lock();
            serde_json::to_writer_pretty(&mut out, &report)?;
            writeln!(out)?;
        }
        Format::Text => {
            let choice = match args.color {
                ColorChoice::Auto if stdout.is_terminal() => anstream::ColorChoice::Auto,
                ColorChoice::Auto | ColorChoice::Never => anstream::ColorChoice::Never,
                ColorChoice::Always => anstream::ColorChoice::Always,
            };
            let mut out = anstream::AutoStream::new(stdout.lock(), choice);
            lint::write_text(&mut out, &report)?;
        }
    }
    Ok(if report.fails(args.fail_on) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}
