//! The command line as the user typed it (clap derive).
//!
//! This module only describes flags and parses their values; it makes no syscalls, reads no
//! files and builds nothing. `main.rs` turns these values into work.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::finding::Severity;

/// The exit statuses, the same for every command, as `--help` prints them.
macro_rules! exit_status_help {
    () => {
        "Exit status:
  0  nothing at or above the --fail-on severity
  1  findings at or above the --fail-on severity (error by default)
  2  usage or configuration error (bad flag, unreadable file)"
    };
}

/// The exit statuses, the same for every command.
pub const EXIT_STATUS_HELP: &str = exit_status_help!();

/// mxprobe: find MTA-STS, DANE and STARTTLS problems in mail domains before senders do.
#[derive(Debug, Parser)]
#[command(name = "mxprobe", version, about, long_about = None, after_help = EXIT_STATUS_HELP)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check candidate MTA-STS and TLS-RPT records and a policy file offline, before publishing.
    ///
    /// Every check that needs no network is applied: the `_mta-sts` and `_smtp._tls` TXT
    /// grammars (RFC 8461 §3.1, RFC 8460 §3), the choice among several TXT records, the policy
    /// body (RFC 8461 §3.2) and, with --mx, which MX hosts the policy's mx patterns cover
    /// (RFC 8461 §4.1). Each finding says what is wrong and what to change.
    #[command(after_help = LINT_EXAMPLES)]
    Lint(LintArgs),
}

const LINT_EXAMPLES: &str = concat!(
    "Examples:
  mxprobe lint --policy mta-sts.txt --mx mx1.example.com --mx mx2.example.com
  mxprobe lint --sts-txt 'v=STSv1; id=20240101T000000' --tlsrpt-txt 'v=TLSRPTv1; rua=mailto:tlsrpt@example.com'
  curl -s https://mta-sts.example.com/.well-known/mta-sts.txt | mxprobe lint --policy - --format json

",
    exit_status_help!()
);

/// Flags of `mxprobe lint`.
#[derive(Debug, Args)]
pub struct LintArgs {
    /// The policy file to check (the body served at /.well-known/mta-sts.txt); `-` reads stdin.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,

    /// A TXT record to publish at `_mta-sts.<domain>`. Repeat it to check a whole record set
    /// (for example a stale record left beside the new one).
    #[arg(long = "sts-txt", value_name = "VALUE")]
    pub sts_txt: Vec<String>,

    /// A TXT record to publish at `_smtp._tls.<domain>`. Repeat it to check a whole record set.
    #[arg(long = "tlsrpt-txt", value_name = "VALUE")]
    pub tlsrpt_txt: Vec<String>,

    /// An MX host name the policy must cover (repeat for each MX, or give a comma list).
    #[arg(long, value_name = "HOST", value_delimiter = ',')]
    pub mx: Vec<String>,

    /// The policy domain the records are for; named in the findings.
    #[arg(long, value_name = "DOMAIN")]
    pub domain: Option<String>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,

    /// The lowest severity that makes the exit status 1.
    #[arg(long = "fail-on", value_name = "SEVERITY", default_value = "error", value_parser = parse_severity)]
    pub fail_on: Severity,

    /// When to colour the text output: auto colours only a terminal and honours NO_COLOR.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Human-readable text.
    Text,
    /// One JSON document (shape documented in docs/output.md).
    Json,
}

/// When to colour text output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// Colour when writing to a terminal and NO_COLOR is not set.
    Auto,
    /// Always colour.
    Always,
    /// Never colour.
    Never,
}

fn parse_severity(s: &str) -> Result<Severity, String> {
    s.parse()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn lint_flags_parse() {
        let cli = Cli::try_parse_from([
            "mxprobe",
            "lint",
            "--policy",
            "-",
            "--sts-txt",
            "v=STSv1; id=1",
            "--sts-txt",
            "v=STSv1; id=2",
            "--mx",
            "a.example,b.example",
            "--mx",
            "c.example",
            "--format",
            "json",
            "--fail-on",
            "warning",
        ])
        .unwrap();
        let Command::Lint(args) = cli.command;
        assert_eq!(args.policy.as_deref(), Some(std::path::Path::new("-")));
        assert_eq!(args.sts_txt.len(), 2);
        assert_eq!(args.mx, ["a.example", "b.example", "c.example"]);
        assert_eq!(args.format, Format::Json);
        assert_eq!(args.fail_on, Severity::Warning);
    }

    #[test]
    fn bad_severity_is_a_usage_error() {
        let err = Cli::try_parse_from(["mxprobe", "lint", "--fail-on", "fatal"]).unwrap_err();
        assert!(err.to_string().contains("not a severity"), "{err}");
    }
}
