//! The command line as the user typed it (clap derive).
//!
//! This module only describes flags and parses their values; it makes no syscalls, reads no
//! files and builds nothing. [`crate::cmd`] turns these values into work.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use mxprobe_core::finding::Severity;

/// The exit statuses, the same for every command but `demo`, as `--help` prints them.
macro_rules! exit_status_help {
    () => {
        "Exit status (the same for every command but demo):
  0    nothing at or above the --fail-on severity, and everything was tested
  1    findings at or above the --fail-on severity (error by default)
  2    usage or configuration error (bad flag, unreadable file)
  3    inconclusive: nothing fails, but something could not be tested (port 25 blocked,
       --no-smtp, DNS or policy host timing out, 421 from a busy server);
       --inconclusive pass turns this into 0, --inconclusive fail into 1
  130  a scan interrupted by SIGINT or SIGTERM (outputs stay valid; --resume continues)"
    };
}

/// The exit statuses, the same for every command but `demo`.
pub const EXIT_STATUS_HELP: &str = exit_status_help!();

/// The exit statuses of `demo`: its self-check, not the lab domains' findings.
const DEMO_EXIT_STATUS: &str = "Exit status:
  0    every lab domain was judged as the lab scenario expects (failing ones included)
  1    a lab domain was judged otherwise (named on standard error and in the last line)
  2    usage error, or the lab could not start
  130  interrupted by SIGINT or SIGTERM";

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

    /// Probe domains as a sender would: DNS, the MTA-STS policy, STARTTLS at every address of
    /// every MX host, certificates and DANE; say what senders will experience and report.
    ///
    /// For each domain: MX (null MX, implicit MX), `_mta-sts` and `_smtp._tls` TXT, TLSA for
    /// MX hosts with DNSSEC-secure addresses, the policy fetch (RFC 8461 §3.3), and one SMTP
    /// session per MX address (EHLO, STARTTLS, TLS handshake, EHLO, QUIT: never MAIL or RCPT).
    /// Each session is judged under the policy a sender would apply: DANE first, then
    /// MTA-STS, else none.
    #[command(after_help = SCAN_EXAMPLES)]
    Scan(ScanArgs),

    /// The CI pre-deploy gate: observe the live domain, then judge it as if the candidate
    /// policy file, TXT records or MX list were published.
    ///
    /// Answers, each as a finding with a fix: would every MX (live, or given with --mx) pass
    /// under the candidate policy (pattern, certificate name and validity, STARTTLS)? Would
    /// mode enforce break delivery to any MX? Does the policy change while the _mta-sts id stays
    /// the same (senders would never refetch)? Is an MX removed from the policy while still in
    /// DNS? Is max_age right for the change? Without candidates it judges the live state.
    /// Where outbound port 25 is blocked (detected, or --no-smtp), SMTP is "not tested"
    /// (exit 3), never a failure.
    #[command(after_help = GATE_EXAMPLES)]
    Gate(GateArgs),

    /// Print the records and the policy file for a new MTA-STS and TLS-RPT deployment.
    ///
    /// Prints the _mta-sts TXT record (with a fresh id), the _smtp._tls TXT record and the
    /// policy file to serve at `https://mta-sts.DOMAIN/.well-known/mta-sts.txt`; each passes
    /// `mxprobe lint`. With --live the MX hosts come from the domain's current MX records.
    #[command(after_help = GENERATE_EXAMPLES)]
    Generate(GenerateArgs),

    /// Scan on a schedule (cron, a systemd timer): remember every run in a SQLite database,
    /// alert once on what changed since the previous run, write Prometheus metrics.
    ///
    /// Each domain's facts and findings are stored; changes since its previous run (a new or
    /// resolved failure, a certificate expiring within --expiry-warn days or replaced, the
    /// policy id, mode or mx list, the MX set, the TLS-RPT rua, DANE appearing or going,
    /// inconclusive for --inconclusive-after runs) become one alert per domain, delivered by
    /// --webhook, --email and --exec. A delivery that fails is retried and kept until a later
    /// run delivers it. Prints nothing unless something changed. See docs/monitoring.md.
    #[command(after_help = MONITOR_EXAMPLES)]
    Monitor(MonitorArgs),

    /// Show a domain's timeline from the monitoring history.
    #[command(after_help = exit_status_help!())]
    History(HistoryArgs),

    /// Read the TLS-RPT reports real senders send you, summarise them, and compare them with
    /// mxprobe's findings.
    #[command(subcommand)]
    Reports(ReportsCommand),

    /// Start the built-in mail lab on loopback and scan all its domains: no network, no root.
    ///
    /// The lab serves DNS (with DNSSEC-signed zones), SMTP servers that speak STARTTLS well or
    /// badly, and HTTPS policy servers, built from fixtures/lab/scenario.toml (embedded in the
    /// binary). The output is the normal `scan` output; then each domain's verdict is held to
    /// what the scenario expects of it, and the last line says how many matched.
    #[command(after_help = DEMO_EXIT_STATUS)]
    Demo(DemoArgs),

    /// Start the built-in mail lab on loopback and keep it running, to try every command
    /// against it.
    ///
    /// Prints the shell `export` lines that point mxprobe at the lab (MXPROBE_RESOLVER,
    /// MXPROBE_TRUST_ANCHOR, MXPROBE_CA_FILE, MXPROBE_SMTP_PORT, MXPROBE_HTTPS_PORT; the files
    /// they name are in a temporary directory), MXPROBE_LAB_PID (its process id), then a
    /// comment listing the lab domains, and closes its standard output: `eval "$(mxprobe lab
    /// &)"` sets them in the current shell. The lab runs until SIGINT or SIGTERM (`kill
    /// "$MXPROBE_LAB_PID"`), then removes the temporary directory.
    #[command(after_help = LAB_EXAMPLES)]
    Lab(LabArgs),

    /// Serve Prometheus: scan the domain of each `/probe?target=DOMAIN` request and answer in
    /// the text exposition format (the blackbox_exporter pattern).
    ///
    /// Prometheus holds the target list and scrapes `/probe?target=…` for each domain
    /// (relabelling `__param_target`); `probe_success` is 1 when nothing is at error
    /// severity and everything was tested. Results are kept per target for --min-interval,
    /// so several Prometheus servers or a short scrape interval do not probe a mail server
    /// again; domains sharing MX hosts share probes and obey --per-ip; a probe answers before
    /// the X-Prometheus-Scrape-Timeout-Seconds Prometheus sends. `/metrics` has the
    /// exporter's own metrics, `/healthz` says it is up, `/` has a probe form. SIGINT or
    /// SIGTERM stops accepting connections, lets the probes in flight answer (at most
    /// --drain-timeout), and exits 0. See docs/monitoring.md.
    #[command(after_help = SERVE_EXAMPLES)]
    Serve(ServeArgs),

    /// A scan shared by many workers through Redis: push the targets, follow the run,
    /// collect the results (see docs/distributed.md).
    ///
    /// `push` enqueues the targets of a run; workers (`mxprobe worker`, on any number of
    /// machines) take them; `collect` writes the stored results as `scan --input` writes
    /// them (the same JSON Lines, CSV and report files), during the run or after it, each
    /// domain once; `status` shows where the run stands.
    #[command(subcommand)]
    Queue(QueueCommand),

    /// Scan the targets of a run in Redis, with the other workers: at most --per-ip
    /// connections to one address across all of them, one SMTP probe per (MX, address) for
    /// the whole run, and the entries of workers that stop taken over.
    ///
    /// Each domain's result is stored in Redis (once per domain) and its entry acknowledged in
    /// the same step. The worker exits 0 when the run is drained (every pushed domain stored),
    /// or keeps waiting for new targets with --follow. SIGINT or SIGTERM: the domains in flight
    /// get a few seconds to finish, the rest are given back to the queue, and it exits 130.
    #[command(after_help = WORKER_EXAMPLES)]
    Worker(WorkerArgs),
}

const QUEUE_EXAMPLES: &str = "Examples:
  export MXPROBE_REDIS_URL=redis://scanner:PASSWORD@redis.internal:6379/0
  mxprobe queue push --run zone-2026-12 --input domains.csv
  mxprobe worker --run zone-2026-12 --concurrency 256 --per-ip 2      # on every machine
  mxprobe queue status --run zone-2026-12
  mxprobe queue collect --run zone-2026-12 --jsonl results.jsonl --csv results.csv

The password of the URL is never printed: it shows as *** in every message.";

const WORKER_EXAMPLES: &str = "Examples:
  mxprobe worker --redis redis://127.0.0.1:6379 --run zone-2026-12 --concurrency 256
  MXPROBE_REDIS_URL=rediss://scanner:PASSWORD@redis.internal:6380 mxprobe worker --follow

Exit status:
  0    the run is drained: every pushed domain is stored (collect writes the verdicts)
  2    usage or configuration error, or Redis could not be reached for --redis-patience
  130  stopped by SIGINT or SIGTERM (what it held was stored or given back)";

/// How to reach a run in Redis: shared by `queue …` and `worker`.
#[derive(Debug, Args)]
pub struct RedisArgs {
    /// The Redis server: redis://[USER:PASSWORD@]HOST[:PORT][/DB], or rediss:// for TLS.
    /// The password is never printed.
    #[arg(
        long,
        value_name = "URL",
        env = "MXPROBE_REDIS_URL",
        hide_env_values = true
    )]
    pub redis: String,

    /// The name of the run (several runs can share one Redis): 1 to 64 letters, digits,
    /// '.', '_' or '-'.
    #[arg(long, value_name = "NAME", default_value = "default")]
    pub run: String,

    /// Seconds to keep retrying (with back-off) while Redis cannot be reached or restarts,
    /// before giving up with an error.
    #[arg(long = "redis-patience", value_name = "SECONDS", default_value_t = 300)]
    pub patience: u64,
}

/// `mxprobe queue …`.
#[derive(Debug, Subcommand)]
pub enum QueueCommand {
    /// Enqueue the targets of --input (the same input rules as `scan --input`); invalid rows
    /// are stored for `collect` to report, as `scan` does.
    #[command(after_help = QUEUE_EXAMPLES)]
    Push(QueuePushArgs),

    /// Write the stored results as `scan --input` writes them: JSON Lines, CSV, report
    /// files, text or JSON on standard output; each domain once. Run it during the run (the
    /// summary then says `interrupted`, and it exits 130) and again later.
    #[command(after_help = QUEUE_EXAMPLES)]
    Collect(QueueCollectArgs),

    /// Show where the run stands: pushed, queued, in flight, done, taken over, the live
    /// workers.
    #[command(after_help = QUEUE_EXAMPLES)]
    Status(QueueStatusArgs),
}

/// Flags of `mxprobe queue push`.
#[derive(Debug, Args)]
pub struct QueuePushArgs {
    /// The run in Redis.
    #[command(flatten)]
    pub redis: RedisArgs,

    /// Read domains from FILE (`-` for standard input), as `scan --input` does.
    #[arg(long, short = 'i', value_name = "FILE")]
    pub input: PathBuf,

    /// The CSV column holding the domains: a header name or a 1-based number.
    #[arg(long, value_name = "NAME|N")]
    pub column: Option<String>,
}

/// Flags of `mxprobe queue collect`.
#[derive(Debug, Args)]
pub struct QueueCollectArgs {
    /// The run in Redis.
    #[command(flatten)]
    pub redis: RedisArgs,

    /// Write one JSON object per domain to FILE (JSON Lines, as `scan --jsonl`).
    #[arg(long, value_name = "FILE")]
    pub jsonl: PathBuf,

    /// Write a CSV summary, one row per domain, to FILE.
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,

    /// Output.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Flags of `mxprobe queue status`.
#[derive(Debug, Args)]
pub struct QueueStatusArgs {
    /// The run in Redis.
    #[command(flatten)]
    pub redis: RedisArgs,

    /// Output format: text for people, json for scripts.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// Flags of `mxprobe worker`.
#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// The run in Redis.
    #[command(flatten)]
    pub redis: RedisArgs,

    /// How many domains at once, how hard on one address, how long per domain.
    #[command(flatten)]
    pub bulk: BulkArgs,

    /// Seconds past --deadline after which the entries of a worker that stopped sending its
    /// heartbeat are taken over by the others.
    #[arg(long = "claim-grace", value_name = "SECONDS", default_value_t = 30)]
    pub claim_grace: u64,

    /// Keep waiting for new targets when the run is drained (a worker of a service).
    #[arg(long)]
    pub follow: bool,

    /// No progress on standard error.
    #[arg(long, short = 'q')]
    pub quiet: bool,

    /// How to reach DNS, SMTP and HTTPS.
    #[command(flatten)]
    pub probe: ProbeArgs,
}

const SERVE_EXAMPLES: &str = "Examples:
  mxprobe serve
  curl 'http://127.0.0.1:9469/probe?target=example.com'
  mxprobe serve --config mxprobe-serve.toml --min-interval 300
  curl 'http://127.0.0.1:9469/probe?target=example.com&module=no_smtp'
  mxprobe serve --listen 192.0.2.10:9469 --allow-remote

Exit status:
  0    stopped by SIGINT or SIGTERM after the probes in flight answered
  2    usage or configuration error (bad flag, unreadable --config, address in use)";

/// The pace flags of bulk scans, the same for `mxprobe scan` and `mxprobe worker`.
#[derive(Debug, Args)]
pub struct BulkArgs {
    /// Domains scanned at once (by this process).
    #[arg(long, value_name = "N", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub concurrency: u32,

    /// At most N simultaneous SMTP connections to one address (mail servers rate-limit and
    /// blocklist scanners); for `worker`, across all the workers of the run.
    #[arg(long = "per-ip", value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub per_ip: u32,

    /// At most N new SMTP connections per second to one address, counted as --per-ip is
    /// (default: no rate limit beyond --per-ip).
    #[arg(long = "per-ip-rate", value_name = "N")]
    pub per_ip_rate: Option<f64>,

    /// Seconds one domain may take in all; a domain past it is inconclusive (reported by
    /// `scan`, stored by `worker`).
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    pub deadline: u64,
}

/// Flags of `mxprobe serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The address and port to listen on (loopback unless --allow-remote).
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:9469")]
    pub listen: std::net::SocketAddr,

    /// Allow a --listen address other than loopback: anyone who reaches it can make mxprobe
    /// connect to mail servers (put it behind a firewall or a reverse proxy).
    #[arg(long = "allow-remote")]
    pub allow_remote: bool,

    /// Modules (named sets of probe options, chosen with `module=NAME`), in a TOML file
    /// (`[modules.no_smtp]` then `no_smtp = true`) or a YAML one, by its name's ending
    /// .yaml or .yml (`modules:`, `  no_smtp:`, `    no_smtp: true`); keys: no_smtp,
    /// smtp_port, https_port, ip
    /// ("4", "6" or "both"), strict_content_type, timeout (seconds one domain's probe may
    /// take), smtp_timeout (seconds one SMTP probe may take).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Seconds a target's result is kept: scrapes within it get the same result, and the
    /// mail servers are not probed again.
    #[arg(long = "min-interval", value_name = "SECONDS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub min_interval: u64,

    /// Seconds one domain's probe may take in all; the longest a scrape without an
    /// X-Prometheus-Scrape-Timeout-Seconds header waits.
    #[arg(long, value_name = "SECONDS", default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub deadline: u64,

    /// Domains probed at once; more wait for a free slot (within their scrape timeout).
    #[arg(long, value_name = "N", default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub concurrency: u32,

    /// At most N simultaneous SMTP connections to one address, over all scrapes of all
    /// modules.
    #[arg(long = "per-ip", value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub per_ip: u32,

    /// At most N new SMTP connections per second to one address, over all scrapes of all
    /// modules (default: no rate limit beyond --per-ip).
    #[arg(long = "per-ip-rate", value_name = "N")]
    pub per_ip_rate: Option<f64>,

    /// The most targets whose results are kept at once; the oldest results are dropped first.
    #[arg(long = "max-targets", value_name = "N", default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_targets: u32,

    /// Seconds the probes in flight may take to answer after SIGINT or SIGTERM.
    #[arg(long = "drain-timeout", value_name = "SECONDS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(0..=3600))]
    pub drain_timeout: u64,

    /// How to reach DNS, SMTP and HTTPS (the default module; --config modules change it).
    #[command(flatten)]
    pub probe: ProbeArgs,
}

const LAB_EXAMPLES: &str = "Examples:
  eval \"$(mxprobe lab &)\"
  mxprobe scan good.test
  kill \"$MXPROBE_LAB_PID\"
  mxprobe lab --list";

const SCAN_EXAMPLES: &str = concat!(
    "Examples:
  mxprobe scan example.com
  mxprobe scan example.com example.org --format json
  mxprobe scan example.com --report-dir reports --gzip
  mxprobe scan example.com --resolver 127.0.0.1:5353 --dnssec resolver --smtp-port 2525
  mxprobe scan example.com --deliver-reports --report-from tlsrpt-test@example.com

",
    exit_status_help!()
);

const MONITOR_EXAMPLES: &str = concat!(
    "Examples:
  mxprobe monitor --db history.sqlite example.com example.org --webhook https://hooks.example.com/x
  mxprobe monitor --db history.sqlite --input domains.csv --email ops@example.com \\
      --smtp-relay smtp.example.com --prometheus /var/lib/node_exporter/textfile/mxprobe.prom

",
    exit_status_help!()
);

const GATE_EXAMPLES: &str = concat!(
    "Examples:
  mxprobe gate example.com --policy-file mta-sts.txt --sts-txt 'v=STSv1; id=20261129T120000'
  mxprobe gate example.com --mx mx1.example.net --mx mx2.example.net
  mxprobe gate example.com --policy-file mta-sts.txt --junit mxprobe.xml --no-smtp

",
    exit_status_help!()
);

const GENERATE_EXAMPLES: &str = concat!(
    "Examples:
  mxprobe generate --domain example.com --mx mx1.example.com --mx mx2.example.com \\
      --rua mailto:tlsrpt@example.com
  mxprobe generate --domain example.com --live --mode enforce --rua mailto:tlsrpt@example.com

",
    exit_status_help!()
);

/// Flags of `mxprobe gate`.
#[derive(Debug, Args)]
pub struct GateArgs {
    /// The mail domain whose change is checked.
    #[arg(value_name = "DOMAIN")]
    pub domain: String,

    /// The candidate policy file (to be served at /.well-known/mta-sts.txt); `-` reads stdin.
    #[arg(long = "policy-file", value_name = "FILE")]
    pub policy_file: Option<PathBuf>,

    /// A candidate `_mta-sts` TXT record (repeat for a record set); replaces the live one.
    #[arg(long = "sts-txt", value_name = "VALUE")]
    pub sts_txt: Vec<String>,

    /// A candidate `_smtp._tls` TXT record (repeat for a record set); replaces the live one.
    #[arg(long = "tlsrpt-txt", value_name = "VALUE")]
    pub tlsrpt_txt: Vec<String>,

    /// A candidate MX host, in preference order (repeat, or a comma list); replaces the live
    /// MX set. Each is probed as it is now.
    #[arg(long, value_name = "HOST", value_delimiter = ',')]
    pub mx: Vec<String>,

    /// How to reach DNS, SMTP and HTTPS.
    #[command(flatten)]
    pub probe: ProbeArgs,

    /// Output.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// The modes `generate` writes (mode none is for withdrawing a policy, not deploying one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GenerateMode {
    /// Senders deliver anyway and report failures: the first step of every deployment.
    Testing,
    /// Senders refuse MX hosts that fail the policy.
    Enforce,
}

/// Flags of `mxprobe generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// The policy domain (the part after @ in addresses).
    #[arg(long, value_name = "DOMAIN")]
    pub domain: String,

    /// An MX host name or `*.` pattern the policy lists (repeat, or a comma list).
    #[arg(
        long,
        value_name = "HOST",
        value_delimiter = ',',
        required_unless_present = "live"
    )]
    pub mx: Vec<String>,

    /// Take the MX hosts from the domain's MX records (added to any --mx).
    #[arg(long)]
    pub live: bool,

    /// The policy mode.
    #[arg(long, value_enum, default_value_t = GenerateMode::Testing)]
    pub mode: GenerateMode,

    /// The policy's max_age in seconds.
    #[arg(long = "max-age", value_name = "SECONDS", default_value_t = mxprobe_core::generate::DEFAULT_MAX_AGE)]
    pub max_age: u32,

    /// Where senders send TLS-RPT reports: mailto: or https: (repeat for several).
    #[arg(long, value_name = "URI", required = true)]
    pub rua: Vec<String>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,

    /// How to ask DNS (for --live).
    #[command(flatten)]
    pub dns: DnsArgs,
}

/// Flags of `mxprobe monitor`.
#[derive(Debug, Args)]
pub struct MonitorArgs {
    /// The mail domains to watch.
    #[arg(value_name = "DOMAIN", required_unless_present = "input")]
    pub domains: Vec<String>,

    /// Read the domains from FILE (as `scan --input`: CSV or one per line; `-` for stdin).
    #[arg(long, short = 'i', value_name = "FILE", conflicts_with = "domains")]
    pub input: Option<PathBuf>,

    /// The CSV column holding the domains: a header name or a 1-based number.
    #[arg(long, value_name = "NAME|N", requires = "input")]
    pub column: Option<String>,

    /// The history database (SQLite; created and migrated as needed). Each run stores every
    /// domain's facts and findings and compares them with the previous run. Overlapping
    /// runs on the same database are refused (a lock file beside it).
    #[arg(long, value_name = "FILE", env = "MXPROBE_DB")]
    pub db: PathBuf,

    /// Write this run as one self-contained HTML page to FILE: the status grid with each
    /// domain's status in its last 30 runs, the changes of the run, the certificate expiry
    /// timeline and per-domain details. The page loads nothing from any host.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,

    /// POST each alert to URL as JSON (docs/monitoring.md). Prefer MXPROBE_WEBHOOK_URL for
    /// URLs that carry a secret (Slack, Teams); extra headers come from
    /// `MXPROBE_WEBHOOK_HEADER_<NAME>` variables.
    #[arg(
        long,
        value_name = "URL",
        env = crate::notify::WEBHOOK_URL_VAR,
        hide_env_values = true,
        // The help as printed: the variable without the backticks of the documentation.
        help = "POST each alert to URL as JSON (docs/monitoring.md). Prefer MXPROBE_WEBHOOK_URL \
                for URLs that carry a secret (Slack, Teams); extra headers come from \
                MXPROBE_WEBHOOK_HEADER_<NAME> variables"
    )]
    pub webhook: Option<String>,

    /// The webhook body: the alert JSON, or {"text": …} for Slack and Teams.
    #[arg(long = "webhook-format", value_enum, default_value_t = WebhookFormatArg::Json)]
    pub webhook_format: WebhookFormatArg,

    /// Mail each alert to ADDRESS (repeat for several) through --smtp-relay.
    #[arg(long, value_name = "ADDRESS", requires = "smtp_relay")]
    pub email: Vec<String>,

    /// The From address of alert mails (default: `mxprobe@<this host>`).
    #[arg(
        long = "email-from",
        value_name = "ADDRESS",
        help = "The From address of alert mails (default: mxprobe@<this host>)"
    )]
    pub email_from: Option<String>,

    /// The SMTP relay for --email (HOST or HOST:PORT, port 587 by default). Credentials come
    /// from MXPROBE_SMTP_USER and MXPROBE_SMTP_PASSWORD.
    #[arg(
        long = "smtp-relay",
        value_name = "HOST[:PORT]",
        env = "MXPROBE_SMTP_RELAY"
    )]
    pub smtp_relay: Option<String>,

    /// How to secure the relay connection: STARTTLS (required, the default), TLS from the
    /// first byte (port 465), or none (a relay on loopback only).
    #[arg(long = "smtp-relay-security", value_enum, default_value_t = RelaySecurityArg::Starttls)]
    pub smtp_relay_security: RelaySecurityArg,

    /// Run PROGRAM for each alert, with the alert JSON on its standard input (no shell).
    #[arg(long, value_name = "PROGRAM")]
    pub exec: Option<PathBuf>,

    /// How long one attempt to deliver one alert may take: the webhook request, the session
    /// with the SMTP relay, the --exec program (killed with what it started). A channel that
    /// times out is not tried again in this run; its alerts stay pending.
    #[arg(long = "alert-timeout", value_name = "SECONDS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub alert_timeout: u64,

    /// How long the run may spend delivering alerts, all channels together. What is not
    /// delivered by then stays pending for the next run.
    #[arg(long = "delivery-deadline", value_name = "SECONDS", default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub delivery_deadline: u64,

    /// Write metrics for node_exporter's textfile collector to FILE (replaced atomically).
    #[arg(long, value_name = "FILE")]
    pub prometheus: Option<PathBuf>,

    /// Label certificate-expiry metrics by address too (one series per MX address).
    #[arg(long = "prometheus-per-ip", requires = "prometheus")]
    pub prometheus_per_ip: bool,

    /// Alert when a certificate (the leaf or one of its verified chain) gets within this many
    /// days of expiry; a comma list of thresholds.
    #[arg(long = "expiry-warn", value_name = "DAYS", value_delimiter = ',', default_values_t = [21u32, 7])]
    pub expiry_warn: Vec<u32>,

    /// Repeat still-open failures when the last alert for a domain is this many hours old
    /// (default: never; an unchanged result raises nothing).
    #[arg(long = "remind-every", value_name = "HOURS")]
    pub remind_every: Option<u64>,

    /// Alert when a domain has been inconclusive this many runs in a row.
    #[arg(long = "inconclusive-after", value_name = "RUNS", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    pub inconclusive_after: u32,

    /// Print every domain's status, not only what changed.
    #[arg(long, short = 'v')]
    pub verbose: bool,

    /// Domains scanned at once.
    #[arg(long, value_name = "N", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub concurrency: u32,

    /// At most N simultaneous SMTP connections to one address.
    #[arg(long = "per-ip", value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub per_ip: u32,

    /// How to reach DNS, SMTP and HTTPS.
    #[command(flatten)]
    pub probe: ProbeArgs,

    /// The lowest severity that makes the exit status 1.
    #[arg(long = "fail-on", value_name = "SEVERITY", default_value = "error", value_parser = severity_parser())]
    pub fail_on: Severity,

    /// What an inconclusive result exits with: report (3), pass (0) or fail (1).
    #[arg(long, value_enum, value_name = "HOW", default_value_t = Inconclusive::Report)]
    pub inconclusive: Inconclusive,
}

/// The `--webhook-format` choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WebhookFormatArg {
    /// The alert JSON (docs/monitoring.md).
    Json,
    /// {"text": "…"}: Slack and Microsoft Teams incoming webhooks.
    Text,
}

/// The `--smtp-relay-security` choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RelaySecurityArg {
    /// STARTTLS, required.
    Starttls,
    /// TLS from the first byte (SMTPS, port 465).
    Tls,
    /// No TLS: only for a relay on loopback.
    None,
}

/// `mxprobe reports …`.
#[derive(Debug, Subcommand)]
pub enum ReportsCommand {
    /// Store TLS-RPT reports from files and mail: .json, .json.gz, .eml (RFC 8460 §5.3
    /// report mails), Maildir folders and mbox files.
    ///
    /// Each report is read with the tolerant reader (real reports break the RFC in known
    /// ways: mx-host as a string, missing fields …) and stored once per reporter and
    /// report-id. A file or message that holds no readable report is named with the reason
    /// and skipped; the others are still stored.
    #[command(after_help = REPORTS_EXAMPLES)]
    Ingest(ReportsIngestArgs),

    /// Per policy domain and reporter: sessions succeeded and failed, failures by result
    /// type, receiving MX and address, sending address, and per day.
    #[command(after_help = REPORTS_EXAMPLES)]
    Summary(ReportsSummaryArgs),

    /// Put the reports for DOMAIN next to mxprobe's latest findings for it (from `monitor`):
    /// failures both show, failures only the reports show, and problems mxprobe sees that no
    /// reporter has reported yet.
    #[command(after_help = REPORTS_EXAMPLES)]
    Compare(ReportsCompareArgs),
}

const REPORTS_EXAMPLES: &str = concat!(
    "Examples:
  mxprobe reports ingest --db history.sqlite ~/Maildir/.tlsrpt reports/*.json.gz
  mxprobe reports summary --db history.sqlite --domain example.com --since 30d
  mxprobe reports summary --db history.sqlite --format csv > tlsrpt.csv
  mxprobe reports compare example.com --db history.sqlite

",
    exit_status_help!()
);

/// Flags of `mxprobe reports ingest`.
#[derive(Debug, Args)]
pub struct ReportsIngestArgs {
    /// Report files, report mails, Maildir folders, mbox files or directories of them.
    #[arg(value_name = "PATH", required = true)]
    pub paths: Vec<PathBuf>,

    /// The database (the same as `monitor --db`).
    #[arg(long, value_name = "FILE", env = "MXPROBE_DB")]
    pub db: PathBuf,
}

/// Flags of `mxprobe reports summary`.
#[derive(Debug, Args)]
pub struct ReportsSummaryArgs {
    /// The database.
    #[arg(long, value_name = "FILE", env = "MXPROBE_DB")]
    pub db: PathBuf,

    /// Only this policy domain.
    #[arg(long, value_name = "DOMAIN")]
    pub domain: Option<String>,

    /// Only reports whose period ends at or after this time (a date, an RFC 3339 date-time,
    /// or an age such as 30d).
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = SummaryFormat::Text)]
    pub format: SummaryFormat,
}

/// Output formats of `reports summary`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SummaryFormat {
    /// Tables for people.
    Text,
    /// One JSON document.
    Json,
    /// CSV rows for spreadsheets.
    Csv,
}

/// Flags of `mxprobe reports compare`.
#[derive(Debug, Args)]
pub struct ReportsCompareArgs {
    /// The policy domain.
    #[arg(value_name = "DOMAIN")]
    pub domain: String,

    /// The database (with `monitor` runs of DOMAIN and ingested reports).
    #[arg(long, value_name = "FILE", env = "MXPROBE_DB")]
    pub db: PathBuf,

    /// Only reports whose period ends at or after this time.
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// Flags of `mxprobe history`.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// The domain whose timeline to show.
    #[arg(value_name = "DOMAIN")]
    pub domain: String,

    /// The history database written by `mxprobe monitor --db`.
    #[arg(long, value_name = "FILE", env = "MXPROBE_DB")]
    pub db: PathBuf,

    /// Only runs at or after this time: an RFC 3339 date-time (2026-11-01T00:00:00Z), a date
    /// (2026-11-01), or an age such as 7d or 12h.
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,

    /// Also write the domain's history as one self-contained HTML page to FILE: its status
    /// in every run, the changes alerted on, and the latest run in detail (grid row,
    /// certificate expiry timeline, findings, synthetic TLS-RPT report).
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}

/// Output flags shared by `scan`, `gate` and `demo`.
#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Output format: text for people, json for the full facts and findings.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,

    /// Write one synthetic RFC 8460 report per domain into DIR (file names per RFC 8460 §5.1).
    #[arg(long = "report-dir", value_name = "DIR")]
    pub report_dir: Option<PathBuf>,

    /// Write a JUnit XML report to FILE: one test case per domain and check (GitLab,
    /// Jenkins and GitHub test reporters show it). Under GitHub Actions (GITHUB_ACTIONS=true)
    /// mxprobe also prints ::error/::warning annotations and appends a Markdown summary to
    /// $GITHUB_STEP_SUMMARY.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,

    /// Gzip the report files (.json.gz), as senders do.
    #[arg(long, requires = "report_dir")]
    pub gzip: bool,

    /// Write the results as one self-contained HTML page to FILE: counts by status, a status
    /// grid (one row per domain, failing first, sortable and filterable), the certificate
    /// expiry timeline, and per domain its MX hosts, findings with their fixes and synthetic
    /// TLS-RPT report. The page loads nothing from any host.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,

    /// The lowest severity that makes the exit status 1.
    #[arg(long = "fail-on", value_name = "SEVERITY", default_value = "error", value_parser = severity_parser())]
    pub fail_on: Severity,

    /// What an inconclusive result (something could not be tested) exits with: report
    /// (status 3), pass (0) or fail (1). Findings at or above --fail-on exit 1 regardless.
    #[arg(long, value_enum, value_name = "HOW", default_value_t = Inconclusive::Report)]
    pub inconclusive: Inconclusive,

    /// When to colour the text output: auto colours only a terminal and honours NO_COLOR.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
}

/// How `--inconclusive` maps an inconclusive result to the exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Inconclusive {
    /// Exit 3, so that CI can tell "could not test" from both pass and fail.
    Report,
    /// Exit 0: treat what could not be tested as passing.
    Pass,
    /// Exit 1: treat what could not be tested as failing.
    Fail,
}

/// Flags of `mxprobe scan`.
#[derive(Debug, Args)]
pub struct ScanArgs {
    /// The mail domains to scan (the part after @ in addresses).
    #[arg(value_name = "DOMAIN", required_unless_present = "input")]
    pub domains: Vec<String>,

    /// Read domains from FILE (`-` for standard input): CSV with a header (the `domain`
    /// column, or --column), or one domain per line; blank lines and `#` comments skipped,
    /// duplicates merged, bad rows reported with their line and skipped.
    #[arg(long, short = 'i', value_name = "FILE", conflicts_with = "domains")]
    pub input: Option<PathBuf>,

    /// The CSV column holding the domains: a header name or a 1-based number.
    #[arg(long, value_name = "NAME|N", requires = "input")]
    pub column: Option<String>,

    /// How many domains at once, how hard on one address, how long per domain.
    #[command(flatten)]
    pub bulk: BulkArgs,

    /// Write one JSON object per domain to FILE as each domain finishes (JSON Lines).
    #[arg(long, value_name = "FILE")]
    pub jsonl: Option<PathBuf>,

    /// Write a CSV summary, one row per domain, to FILE.
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,

    /// Skip the domains the --jsonl file already has (after an interrupted run) and append.
    #[arg(long, requires = "jsonl")]
    pub resume: bool,

    /// No progress on standard error.
    #[arg(long, short = 'q')]
    pub quiet: bool,

    /// Send each domain's synthetic report to the domain's own rua destinations, as a
    /// reporting sender does (RFC 8460 §5): mail through the rua domain's MX (STARTTLS when
    /// offered) or --smtp-relay, HTTPS by POST. Domains named on the command line only (not
    /// with --input), at most --deliver-limit of them.
    #[arg(long = "deliver-reports", conflicts_with = "input")]
    pub deliver_reports: bool,

    /// With --deliver-reports: the most domains whose reports are sent; more is an error.
    #[arg(long = "deliver-limit", value_name = "N", default_value_t = crate::deliver::DEFAULT_DELIVER_LIMIT, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub deliver_limit: u32,

    /// With --deliver-reports: the From and envelope sender of report mail (default:
    /// mxprobe@<this host>).
    #[arg(
        long = "report-from",
        value_name = "ADDRESS",
        help = "With --deliver-reports: the From and envelope sender of report mail (default: \
                mxprobe@<this host>)"
    )]
    pub report_from: Option<String>,

    /// With --deliver-reports: send report mail through this relay (HOST or HOST:PORT, port
    /// 587 by default) instead of the rua domain's MX. Credentials come from
    /// MXPROBE_SMTP_USER and MXPROBE_SMTP_PASSWORD, as for alert mail.
    #[arg(long = "smtp-relay", value_name = "HOST[:PORT]")]
    pub smtp_relay: Option<String>,

    /// How to secure the relay connection: STARTTLS (required, the default), TLS from the
    /// first byte (port 465), or none (a relay on loopback only).
    #[arg(long = "smtp-relay-security", value_enum, default_value_t = RelaySecurityArg::Starttls)]
    pub smtp_relay_security: RelaySecurityArg,

    /// How to reach DNS, SMTP and HTTPS.
    #[command(flatten)]
    pub probe: ProbeArgs,

    /// Output.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// How to reach DNS, SMTP and HTTPS: shared by `scan` and `gate`. Each flag can also come
/// from the environment variable named in `--help` (a CI job's settings), the flag winning.
#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// How to ask DNS.
    #[command(flatten)]
    pub dns: DnsArgs,

    /// Only IPv4 addresses of MX hosts.
    #[arg(short = '4', conflicts_with = "ipv6_only")]
    pub ipv4_only: bool,

    /// Only IPv6 addresses of MX hosts.
    #[arg(short = '6')]
    pub ipv6_only: bool,

    /// The name to send with EHLO (default: this host's name when it has a dot, else
    /// mxprobe.invalid).
    #[arg(long = "ehlo-name", value_name = "NAME", env = "MXPROBE_EHLO_NAME")]
    pub ehlo_name: Option<String>,

    /// Extra trusted CA certificates (PEM), added to Mozilla's roots. SSL_CERT_FILE, when
    /// set, is added too.
    #[arg(
        long = "ca-file",
        value_name = "PEM",
        env = "MXPROBE_CA_FILE",
        value_delimiter = ':'
    )]
    pub ca_file: Vec<PathBuf>,

    /// Connect to this port instead of 25 (a staging MX on another port).
    #[arg(
        long = "smtp-port",
        value_name = "PORT",
        default_value_t = 25,
        env = "MXPROBE_SMTP_PORT"
    )]
    pub smtp_port: u16,

    /// Fetch the policy from this port instead of 443.
    #[arg(
        long = "https-port",
        value_name = "PORT",
        default_value_t = 443,
        env = "MXPROBE_HTTPS_PORT"
    )]
    pub https_port: u16,

    /// Seconds one SMTP probe may take in all (connect to QUIT).
    #[arg(long = "smtp-deadline", value_name = "SECONDS", default_value_t = 60)]
    pub smtp_deadline: u64,

    /// Do not probe SMTP (port 25 blocked, as on many CI runners): DNS and HTTPS checks only;
    /// every MX address is reported "not tested" (inconclusive), never as failing.
    #[arg(long = "no-smtp", env = "MXPROBE_NO_SMTP")]
    pub no_smtp: bool,

    /// Treat a policy served without "Content-Type: text/plain" as invalid, as some senders
    /// do (default: a warning).
    #[arg(long = "strict-content-type")]
    pub strict_content_type: bool,
}

/// How to ask DNS: shared by every command that does.
#[derive(Debug, Args)]
pub struct DnsArgs {
    /// Ask this DNS server (IP or IP:PORT) instead of the system's resolvers.
    #[arg(long, value_name = "IP[:PORT]", value_parser = parse_resolver, env = "MXPROBE_RESOLVER")]
    pub resolver: Option<std::net::SocketAddr>,

    /// How to learn DNSSEC status: validate in-process from the IANA root keys (or
    /// --trust-anchor), trust the AD bit of a local validating resolver (as Postfix does), or
    /// off (no DANE).
    #[arg(long, value_enum, default_value_t = DnssecChoice::Validate, env = "MXPROBE_DNSSEC")]
    pub dnssec: DnssecChoice,

    /// DNSKEY records (zone-file lines) to validate from instead of the IANA root keys.
    #[arg(
        long = "trust-anchor",
        value_name = "FILE",
        env = "MXPROBE_TRUST_ANCHOR"
    )]
    pub trust_anchor: Option<PathBuf>,
}

/// Flags of `mxprobe demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Scan only these lab domains (default: all of them).
    #[arg(value_name = "DOMAIN")]
    pub domains: Vec<String>,

    /// Output.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `mxprobe lab`.
#[derive(Debug, Args)]
pub struct LabArgs {
    /// List the lab domains, each with what it shows, and exit.
    #[arg(long)]
    pub list: bool,
}

/// The `--dnssec` choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DnssecChoice {
    /// Validate in-process.
    Validate,
    /// Trust the AD bit of the configured resolver.
    Resolver,
    /// No DNSSEC (and so no DANE).
    Off,
}

fn parse_resolver(s: &str) -> Result<std::net::SocketAddr, String> {
    if let Ok(addr) = s.parse::<std::net::SocketAddr>() {
        return Ok(addr);
    }
    s.parse::<std::net::IpAddr>()
        .map(|ip| std::net::SocketAddr::new(ip, 53))
        .map_err(|_| {
            format!("{s:?} is not an IP address or IP:PORT (use [::1]:53 for IPv6 with a port)")
        })
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

    /// The owner name the --tlsrpt-txt records are published under. Senders query only
    /// `_smtp._tls`; the pre-standard `_smtp-tlsrpt` draws a warning.
    #[arg(
        long = "tlsrpt-name",
        value_name = "NAME",
        default_value = "_smtp._tls"
    )]
    pub tlsrpt_name: String,

    /// An MX host name the policy must cover (repeat for each MX, or give a comma list).
    #[arg(long, value_name = "HOST", value_delimiter = ',')]
    pub mx: Vec<String>,

    /// The policy domain the records are for; named in the findings.
    #[arg(long, value_name = "DOMAIN")]
    pub domain: Option<String>,

    /// Also check the report destinations of the --tlsrpt-txt records on the network, as a
    /// scan does: the MX of each mailto: domain (its hosts probed), one HEAD of each https:
    /// URL. Without it lint asks nothing of the network.
    #[arg(long, requires = "tlsrpt_txt")]
    pub live: bool,

    /// With --live: how to reach DNS, SMTP and HTTPS.
    #[command(flatten)]
    pub probe: ProbeArgs,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,

    /// The lowest severity that makes the exit status 1.
    #[arg(long = "fail-on", value_name = "SEVERITY", default_value = "error", value_parser = severity_parser())]
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

/// `--fail-on`: the severities by name, listed in `--help`.
fn severity_parser() -> impl clap::builder::TypedValueParser<Value = Severity> {
    use clap::builder::TypedValueParser as _;
    clap::builder::PossibleValuesParser::new([
        Severity::Notice.as_str(),
        Severity::Warning.as_str(),
        Severity::Error.as_str(),
    ])
    .try_map(|s: String| s.parse::<Severity>())
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
        let Command::Lint(args) = cli.command else {
            panic!("not lint")
        };
        assert_eq!(args.policy.as_deref(), Some(std::path::Path::new("-")));
        assert_eq!(args.sts_txt.len(), 2);
        assert_eq!(args.mx, ["a.example", "b.example", "c.example"]);
        assert_eq!(args.format, Format::Json);
        assert_eq!(args.fail_on, Severity::Warning);
    }

    #[test]
    fn scan_flags_parse() {
        let cli = Cli::try_parse_from([
            "mxprobe",
            "scan",
            "example.com",
            "example.org",
            "--resolver",
            "127.0.0.1",
            "-4",
            "--report-dir",
            "out",
            "--gzip",
        ])
        .unwrap();
        let Command::Scan(args) = cli.command else {
            panic!("not scan")
        };
        assert_eq!(args.domains, ["example.com", "example.org"]);
        assert_eq!(
            args.probe.dns.resolver,
            Some("127.0.0.1:53".parse().unwrap())
        );
        assert!(args.probe.ipv4_only && !args.probe.ipv6_only);
        assert!(args.output.gzip);
        assert!(Cli::try_parse_from(["mxprobe", "scan", "a.example", "-4", "-6"]).is_err());
        assert!(Cli::try_parse_from(["mxprobe", "scan", "a.example", "--gzip"]).is_err());
        assert!(Cli::try_parse_from(["mxprobe", "scan", "--resolver", "x", "a.example"]).is_err());
        assert!(Cli::try_parse_from(["mxprobe", "scan"]).is_err());
        // Domains come from the arguments or from --input, not both.
        assert!(Cli::try_parse_from(["mxprobe", "scan", "a.example", "--input", "f.csv"]).is_err());
        assert!(Cli::try_parse_from(["mxprobe", "scan", "--input", "f.csv"]).is_ok());
    }

    #[test]
    fn bad_severity_is_a_usage_error() {
        let err = Cli::try_parse_from(["mxprobe", "lint", "--fail-on", "fatal"]).unwrap_err();
        assert!(
            err.to_string()
                .contains("[possible values: notice, warning, error]"),
            "{err}"
        );
        assert_eq!(err.exit_code(), 2);
        // The values are listed in every command's help.
        for command in ["lint", "scan", "gate", "monitor", "demo"] {
            let err = Cli::try_parse_from(["mxprobe", command, "--help"]).unwrap_err();
            let help = err.to_string();
            let flag = help
                .split("--fail-on <SEVERITY>")
                .nth(1)
                .unwrap_or_else(|| panic!("{command}: no --fail-on: {help}"));
            // Up to the next flag.
            let end = flag
                .lines()
                .skip(1)
                .take_while(|l| !l.trim_start().starts_with('-'))
                .map(|l| l.len() + 1)
                .sum::<usize>();
            let entry = &flag[..end.min(flag.len())];
            assert!(
                entry.contains("[possible values: notice, warning, error]"),
                "{command}: {entry}"
            );
        }
    }
}
