//! The bulk-scan benchmark: starts the in-process mail lab with a synthetic scenario
//! (`mxprobe_lab::bulk_scenario`: N domains sharing about 200 MX hosts, a few of them broken),
//! scans every domain through the bulk engine (`mxprobe_probe::bulk::run`) exactly as
//! `mxprobe scan --input` does, and prints one table: throughput, the SMTP sessions the lab
//! counted against the distinct (MX host, address) pairs, the most simultaneous connections
//! any lab address saw against `--per-ip`, policy fetches, DNS queries and peak memory.
//!
//! ```text
//! cargo bench --bench bulk -- [--domains N] [--mx M] [--latency-ms L] [--concurrency C] [--per-ip P]
//! ```
//!
//! Everything listens on loopback. With `--latency-ms`, every TCP connection the scanner
//! opens to the lab (SMTP and the HTTPS policy host) goes through a relay that waits that
//! long before the first byte passes, as a distant server would. The run is bounded: every
//! domain has a deadline and the whole scan stops after `--max-seconds`. Timings are printed,
//! never asserted.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, SocketAddr};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;
use mxprobe_core::finding::Severity;
use mxprobe_core::html::{HtmlReport, Kind, Meta};
use mxprobe_core::tls::Anchors;
use mxprobe_lab::bulk_scenario;
use mxprobe_lab::{Lab, RunningLab, Scenario};
use mxprobe_probe::bulk::{self, BulkOptions, DomainOutcome, Event};
use mxprobe_probe::resolver::{DnssecMode, TrustAnchor};
use mxprobe_probe::scan::{ScanConfig, Scanner};
use serde::{Deserialize, Serialize};
use time::macros::datetime;
use tokio::net::{TcpListener, TcpStream};

/// The lab clock: certificates are made relative to it and every domain is judged at it.
const LAB_NOW: time::OffsetDateTime = datetime!(2025-06-01 12:00 UTC);

/// The bulk-scan benchmark.
#[derive(Debug, Parser)]
#[command(
    name = "bulk",
    about = "Scan N synthetic lab domains through the bulk engine"
)]
struct Args {
    /// Synthetic domains to scan.
    #[arg(long, default_value_t = bulk_scenario::DEFAULT_DOMAINS)]
    domains: usize,
    /// MX hosts the domains share (one loopback address each, at most 245).
    #[arg(long, default_value_t = bulk_scenario::DEFAULT_MX_HOSTS)]
    mx: usize,
    /// How many of the MX hosts are broken (expired certificate, no STARTTLS, silent).
    #[arg(long, default_value_t = bulk_scenario::DEFAULT_BROKEN)]
    broken: usize,
    /// The seed that picks every domain's MX hosts and policy.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Milliseconds every TCP connection to the lab (SMTP, HTTPS) waits before its first byte.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Domains in flight at once.
    #[arg(long, default_value_t = 512)]
    concurrency: usize,
    /// Simultaneous SMTP connections allowed to one address.
    #[arg(long, default_value_t = 2)]
    per_ip: usize,
    /// Worker threads of the tokio runtime (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
    /// Stop the scan after this many seconds whatever is left (the run always ends).
    #[arg(long, default_value_t = 900)]
    max_seconds: u64,
    /// Run the lab in a child process, so memory and CPU figures are the scanner's alone.
    #[arg(long)]
    separate_lab: bool,
    /// Internal: be the lab of a `--separate-lab` run (JSON lines on stdout, commands on stdin).
    #[arg(long, hide = true)]
    serve_lab: bool,
    /// Also render the HTML report of the scan (as `--html` does) into FILE, and print its
    /// size and the time spent on it.
    #[arg(long, value_name = "FILE")]
    html: Option<std::path::PathBuf>,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

/// The names of the two runtimes' threads, by which their CPU time is told apart.
const LAB_THREADS: &str = "bench-lab";
const SCAN_THREADS: &str = "bench-scan";

fn main() -> Result<()> {
    let args = Args::parse();
    // The lab (standing in for the internet) and the scanner run on runtimes of their own,
    // so the CPU each one uses can be read per thread name at the end; both share the cores.
    let runtime = |name: &str| {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        if let Some(threads) = args.threads {
            builder.worker_threads(threads.max(1));
        }
        builder
            .thread_name(name)
            .enable_all()
            .build()
            .context("cannot start tokio")
    };
    let lab_runtime = runtime(LAB_THREADS)?;
    let result = if args.serve_lab {
        serve_lab(&args, &lab_runtime)
    } else {
        let scan_runtime = runtime(SCAN_THREADS)?;
        let result = bench(&args, &lab_runtime, &scan_runtime);
        scan_runtime.shutdown_background();
        result
    };
    lab_runtime.shutdown_background();
    result
}

/// CPU seconds (user + system) used so far by the threads named `name`, and by the whole
/// process. Threads that have ended count only in the process total.
fn cpu_seconds(name: &str) -> (f64, f64) {
    // /proc reports clock ticks of USER_HZ, which is 100 on Linux.
    const TICKS: f64 = 100.0;
    let ticks = |stat: &str| -> Option<(String, u64)> {
        let open = stat.find('(')?;
        let close = stat.rfind(')')?;
        let comm = stat[open + 1..close].to_owned();
        let rest: Vec<&str> = stat[close + 1..].split_ascii_whitespace().collect();
        // After the comm: state is field 3, utime field 14, stime field 15.
        let utime: u64 = rest.get(11)?.parse().ok()?;
        let stime: u64 = rest.get(12)?.parse().ok()?;
        Some((comm, utime + stime))
    };
    let mut named = 0;
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        for task in tasks.flatten() {
            let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
            if let Some((comm, t)) = ticks(&stat)
                && comm.starts_with(name)
            {
                named += t;
            }
        }
    }
    let total = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| ticks(&s))
        .map_or(0, |(_, t)| t);
    (named as f64 / TICKS, total as f64 / TICKS)
}

/// Memory figures from `/proc/self/status`, in KiB.
fn proc_status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Resets the peak-RSS mark (VmHWM), so the next reading covers only what follows.
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or_else(
        || "n/a".to_owned(),
        |k| format!("{:.1} MiB", k as f64 / 1024.0),
    )
}

/// A relay in front of one lab server that holds every connection `delay` before passing
/// bytes, counting connections and the most open at once.
struct Relay {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    max_open: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn relay(upstream: SocketAddr, delay: Duration) -> Result<Relay> {
    let listener = TcpListener::bind(SocketAddr::new(upstream.ip(), 0))
        .await
        .with_context(|| format!("cannot bind a relay for {upstream}"))?;
    let addr = listener.local_addr()?;
    let connections = Arc::new(AtomicUsize::new(0));
    let max_open = Arc::new(AtomicUsize::new(0));
    let open = Arc::new(AtomicUsize::new(0));
    let (c, m) = (Arc::clone(&connections), Arc::clone(&max_open));
    let task = tokio::spawn(async move {
        let mut live = tokio::task::JoinSet::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let Ok((mut client, _)) = accepted else { continue };
                    c.fetch_add(1, Ordering::SeqCst);
                    let now = open.fetch_add(1, Ordering::SeqCst) + 1;
                    m.fetch_max(now, Ordering::SeqCst);
                    let open = Arc::clone(&open);
                    live.spawn(async move {
                        // Connect at once (the server sees the connection open as long as the
                        // client does), then hold the first bytes back by `delay`.
                        if let Ok(mut server) = TcpStream::connect(upstream).await {
                            tokio::time::sleep(delay).await;
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                        }
                        open.fetch_sub(1, Ordering::SeqCst);
                    });
                }
                Some(_) = live.join_next(), if !live.is_empty() => {}
            }
        }
    });
    Ok(Relay {
        addr,
        connections,
        max_open,
        task,
    })
}

/// What a started lab tells the scanner: where everything listens and what it trusts.
#[derive(Debug, Serialize, Deserialize)]
struct LabInfo {
    /// The lab DNS server.
    dns: SocketAddr,
    /// The lab DNS root key (DNSKEY lines).
    dns_anchor: String,
    /// The lab root CA (PEM).
    root_pem: String,
    /// Where to connect for SMTP at each lab address (the relay when there is latency).
    smtp_ports: Vec<(IpAddr, u16)>,
    /// Where to connect for the policy host (the relay when there is latency).
    https: SocketAddr,
    /// The distinct (MX host, address) pairs the domains use.
    pairs: usize,
    /// The MX hosts the domains use.
    hosts_used: usize,
    /// How long the lab took to start.
    start_secs: f64,
    /// The lab's RSS once started, KiB (in its own process or with the scenario).
    rss_kib: Option<u64>,
}

/// What the lab has seen so far.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
struct LabReport {
    dns_queries: u64,
    smtp_connections: usize,
    policy_requests: u64,
    /// The most simultaneous connections any lab SMTP address saw.
    max_simultaneous: usize,
    /// The same, seen by the SMTP latency relays (when there are relays).
    relay_max: Option<usize>,
    /// Connections that went through the relays.
    relayed: usize,
    /// CPU seconds the lab has used.
    cpu_secs: f64,
    /// The lab process's peak RSS, KiB (child process only).
    peak_rss_kib: Option<u64>,
}

/// The lab and its latency relays.
struct LabSide {
    lab: RunningLab,
    smtp_relays: Vec<Relay>,
    https_relay: Option<Relay>,
}

impl LabSide {
    /// Builds the synthetic scenario and starts the lab (and relays) on `runtime`.
    fn start(args: &Args, runtime: &tokio::runtime::Runtime) -> Result<(Self, LabInfo)> {
        let t = Instant::now();
        let scenario = bulk_scenario::scenario(args.domains, args.mx, args.broken, args.seed);
        let lab = runtime
            .block_on(Lab::start(&scenario, LAB_NOW))
            .context("cannot start the lab")?;
        let start_secs = t.elapsed().as_secs_f64();
        let (pairs, hosts_used) = pairs(&scenario, &lab);
        drop(scenario);
        let DnssecMode::Validate(TrustAnchor::Dnskeys(dns_anchor)) = lab.dns().dns_config().dnssec
        else {
            anyhow::bail!("the lab DNS does not hand out its root key");
        };
        let mut side = Self {
            lab,
            smtp_relays: Vec::new(),
            https_relay: None,
        };
        let mut smtp_ports: Vec<(IpAddr, u16)> = side
            .lab
            .smtp_servers()
            .map(|(_, s)| (s.addr().ip(), s.addr().port()))
            .collect();
        let mut https = side.lab.https().addr;
        if args.latency_ms > 0 {
            let delay = Duration::from_millis(args.latency_ms);
            smtp_ports.clear();
            let upstreams: Vec<SocketAddr> =
                side.lab.smtp_servers().map(|(_, s)| s.addr()).collect();
            for upstream in upstreams {
                let r = runtime.block_on(relay(upstream, delay))?;
                smtp_ports.push((r.addr.ip(), r.addr.port()));
                side.smtp_relays.push(r);
            }
            let r = runtime.block_on(relay(https, delay))?;
            https = r.addr;
            side.https_relay = Some(r);
        }
        let info = LabInfo {
            dns: side.lab.dns().addr,
            dns_anchor,
            root_pem: side.lab.root_ca_pem().to_owned(),
            smtp_ports,
            https,
            pairs,
            hosts_used,
            start_secs,
            rss_kib: proc_status_kib("VmRSS"),
        };
        Ok((side, info))
    }

    /// The lab's counters (CPU left at zero: the caller knows how to measure it).
    fn report(&self) -> LabReport {
        let c = self.lab.counters();
        LabReport {
            dns_queries: c.dns_queries,
            smtp_connections: c.smtp_connections,
            policy_requests: c.policy_requests,
            max_simultaneous: self
                .lab
                .smtp_servers()
                .map(|(_, s)| s.stats().max_simultaneous)
                .max()
                .unwrap_or(0),
            relay_max: self
                .smtp_relays
                .iter()
                .map(|r| r.max_open.load(Ordering::SeqCst))
                .max(),
            relayed: self
                .smtp_relays
                .iter()
                .chain(&self.https_relay)
                .map(|r| r.connections.load(Ordering::SeqCst))
                .sum(),
            cpu_secs: 0.0,
            peak_rss_kib: None,
        }
    }
}

/// The distinct (MX host, address) pairs the scenario's domains use, and the hosts used.
fn pairs(scenario: &Scenario, lab: &RunningLab) -> (usize, usize) {
    let mut used = HashSet::new();
    for d in &scenario.domains {
        used.extend(d.mail_hosts());
    }
    (
        used.iter().map(|h| lab.addresses(h).len()).sum(),
        used.len(),
    )
}

/// `--serve-lab`: start the lab, print its [`LabInfo`] as one JSON line, then answer each
/// `report` line on stdin with a [`LabReport`] line, until stdin closes.
fn serve_lab(args: &Args, runtime: &tokio::runtime::Runtime) -> Result<()> {
    let (side, info) = LabSide::start(args, runtime)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", serde_json::to_string(&info)?)?;
    out.flush()?;
    for line in std::io::stdin().lock().lines() {
        if line?.trim() == "report" {
            let report = LabReport {
                cpu_secs: cpu_seconds(LAB_THREADS).1,
                peak_rss_kib: proc_status_kib("VmHWM"),
                ..side.report()
            };
            writeln!(out, "{}", serde_json::to_string(&report)?)?;
            out.flush()?;
        }
    }
    let _in_runtime = runtime.enter();
    drop(side);
    Ok(())
}

/// The lab as the scanner sees it: in this process, or a child process behind a pipe.
enum LabHandle {
    InProcess(Box<LabSide>),
    Child {
        child: Child,
        stdin: Option<ChildStdin>,
        stdout: BufReader<ChildStdout>,
    },
}

impl LabHandle {
    fn report(&mut self) -> Result<LabReport> {
        match self {
            Self::InProcess(side) => Ok(LabReport {
                cpu_secs: cpu_seconds(LAB_THREADS).0,
                ..side.report()
            }),
            Self::Child { stdin, stdout, .. } => {
                let stdin = stdin.as_mut().context("the lab's stdin is closed")?;
                writeln!(stdin, "report")?;
                stdin.flush()?;
                let mut line = String::new();
                stdout.read_line(&mut line)?;
                serde_json::from_str(&line).context("the lab process sent no report")
            }
        }
    }

    fn stop(self, runtime: &tokio::runtime::Runtime) -> Result<()> {
        match self {
            Self::InProcess(side) => {
                let _in_runtime = runtime.enter();
                drop(side);
            }
            Self::Child {
                mut child, stdin, ..
            } => {
                drop(stdin);
                child.wait()?;
            }
        }
        Ok(())
    }
}

/// Starts the lab in a child process (this program with `--serve-lab`).
fn spawn_lab(args: &Args) -> Result<(LabHandle, LabInfo)> {
    let exe = std::env::current_exe().context("cannot find this program to start the lab")?;
    let mut command = Command::new(exe);
    command.args([
        "--serve-lab".to_owned(),
        format!("--domains={}", args.domains),
        format!("--mx={}", args.mx),
        format!("--broken={}", args.broken),
        format!("--seed={}", args.seed),
        format!("--latency-ms={}", args.latency_ms),
    ]);
    if let Some(t) = args.threads {
        command.arg(format!("--threads={t}"));
    }
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot start the lab process")?;
    let stdin = child.stdin.take();
    let mut stdout = BufReader::new(child.stdout.take().context("no pipe from the lab")?);
    let mut line = String::new();
    stdout.read_line(&mut line)?;
    let info: LabInfo =
        serde_json::from_str(&line).context("the lab process did not start (see above)")?;
    Ok((
        LabHandle::Child {
            child,
            stdin,
            stdout,
        },
        info,
    ))
}

/// The scan configuration for the lab `info` describes, from the lab's own template (timeouts,
/// politeness, TLS) with the addresses, keys and `--per-ip` of this run.
fn scan_config(mut config: ScanConfig, info: &LabInfo, per_ip: usize) -> Result<ScanConfig> {
    config.dns.servers = Some(vec![info.dns]);
    config.dns.dnssec = DnssecMode::Validate(TrustAnchor::Dnskeys(info.dns_anchor.clone()));
    config.anchors = Anchors::from_pem(info.root_pem.as_bytes())?;
    config.smtp_ports = info.smtp_ports.iter().copied().collect();
    config.fetch = std::mem::take(&mut config.fetch).with_port(info.https.ip(), info.https.port());
    config.politeness.per_ip = per_ip;
    Ok(config)
}

fn bench(
    args: &Args,
    lab_runtime: &tokio::runtime::Runtime,
    scan_runtime: &tokio::runtime::Runtime,
) -> Result<()> {
    let (mut lab, info, template) = if args.separate_lab {
        let (handle, info) = spawn_lab(args)?;
        // A lab without domains gives the lab's scan settings; only they are kept.
        let empty = Scenario {
            hosts: Vec::new(),
            domains: Vec::new(),
            resolvers: Vec::new(),
        };
        let template = {
            let lab = lab_runtime
                .block_on(Lab::start(&empty, LAB_NOW))
                .context("cannot start the template lab")?;
            let config = lab.scan_config();
            let _in_runtime = lab_runtime.enter();
            drop(lab);
            config
        };
        (handle, info, template)
    } else {
        let (side, info) = LabSide::start(args, lab_runtime)?;
        let template = side.lab.scan_config();
        (LabHandle::InProcess(Box::new(side)), info, template)
    };
    let config = scan_config(template, &info, args.per_ip)?;
    // The resolver is built inside the scan runtime (it may spawn its background work).
    let scanner = {
        let _in_runtime = scan_runtime.enter();
        Arc::new(Scanner::new(config).context("cannot build the scanner")?)
    };

    let rss_before = proc_status_kib("VmRSS");
    let peak_start = proc_status_kib("VmHWM");
    let peak_reset = reset_peak_rss();
    let before = lab.report()?;
    let (scan_cpu_before, total_cpu_before) = cpu_seconds(SCAN_THREADS);
    let options = BulkOptions {
        concurrency: args.concurrency,
        domain_deadline: Duration::from_secs(30),
        grace: Duration::from_secs(5),
    };
    let targets = futures::stream::iter(bulk_scenario::domain_names(args.domains).enumerate());
    let mut html = args
        .html
        .as_ref()
        .map(|_| {
            let meta = Meta {
                title: "mxprobe bulk benchmark".to_owned(),
                started_at: LAB_NOW,
                ehlo_name: None,
                resolver: info.dns.to_string(),
                dnssec: "validated by mxprobe from the lab's trust anchor".to_owned(),
                version: env!("CARGO_PKG_VERSION").to_owned(),
            };
            HtmlReport::new(meta, Kind::Scan, tempfile::tempfile)
        })
        .transpose()?;
    let mut html_render = Duration::ZERO;
    let mut timed_out = 0u64;
    let mut crashed = 0u64;
    let mut problems: BTreeMap<String, u64> = BTreeMap::new();
    let stats = scan_runtime.block_on(bulk::run(
        Arc::clone(&scanner),
        targets,
        &options,
        || LAB_NOW,
        // Created lazily, inside the runtime.
        async { tokio::time::sleep(Duration::from_secs(args.max_seconds)).await },
        |event| {
            if let Event::Finished { outcome, .. } = event {
                match outcome {
                    DomainOutcome::Scanned(report) => {
                        if let Some(html) = &mut html {
                            let started = Instant::now();
                            html.add(&report, &[], &[], LAB_NOW)
                                .expect("rendering into the spool");
                            html_render += started.elapsed();
                        }
                        // Which findings the failing and inconclusive domains have (counts only).
                        if report.verdict.inconclusive
                            || report.verdict.worst() == Some(Severity::Error)
                        {
                            let codes: BTreeSet<&str> =
                                report.verdict.findings.iter().map(|f| &*f.code).collect();
                            for code in codes {
                                *problems.entry(code.to_owned()).or_default() += 1;
                            }
                        }
                    }
                    DomainOutcome::TimedOut { .. } => timed_out += 1,
                    DomainOutcome::Crashed { .. } => crashed += 1,
                }
            }
        },
    ));
    let (scan_cpu, total_cpu) = cpu_seconds(SCAN_THREADS);
    let peak_end = proc_status_kib("VmHWM");
    let rss_end = proc_status_kib("VmRSS");
    let after = lab.report()?;

    let sessions = after.smtp_connections - before.smtp_connections;
    let dns_queries = after.dns_queries - before.dns_queries;
    let secs = stats.elapsed.as_secs_f64();
    let rate = stats.done as f64 / secs.max(f64::EPSILON);
    let yes_no = |b: bool| if b { "yes" } else { "NO" };
    let separate = args.separate_lab;

    println!();
    println!("mxprobe bulk benchmark");
    println!(
        "  settings: --domains {} --mx {} --broken {} --seed {} --latency-ms {} --concurrency {} \
         --per-ip {}{}",
        args.domains,
        args.mx,
        args.broken,
        args.seed,
        args.latency_ms,
        args.concurrency,
        args.per_ip,
        if separate { " --separate-lab" } else { "" }
    );
    println!(
        "  runtime threads: {} per runtime; lab {}",
        args.threads.map_or_else(
            || format!("{} (one per core)", num_cores()),
            |t| t.to_string()
        ),
        if separate {
            "in a child process"
        } else {
            "in this process"
        }
    );
    println!();
    let row = |k: &str, v: String| println!("  {k:<48} {v}");
    row(
        "lab started in (not timed below)",
        format!("{:.2} s", info.start_secs),
    );
    row(
        "domains scanned",
        format!("{} of {}", stats.done, args.domains),
    );
    row(
        "  timed out / crashed / abandoned",
        format!("{timed_out} / {crashed} / {}", stats.abandoned),
    );
    row(
        "  failing / inconclusive",
        format!("{} / {}", stats.failing, stats.inconclusive),
    );
    let mut top: Vec<(&String, &u64)> = problems.iter().collect();
    top.sort_by(|a, b| b.1.cmp(a.1));
    for (code, n) in top.iter().take(6) {
        row(&format!("    with finding {code}"), n.to_string());
    }
    row("elapsed (scan only)", format!("{secs:.2} s"));
    row("domains/s", format!("{rate:.0}"));
    row(
        "SMTP sessions (lab) vs distinct (MX, address)",
        format!(
            "{sessions} vs {} ({} hosts used) -> equal: {}",
            info.pairs,
            info.hosts_used,
            yes_no(sessions == info.pairs)
        ),
    );
    row(
        "  scanner: probes / shared / attempts",
        format!(
            "{} / {} / {}",
            stats.smtp_probes, stats.smtp_probes_shared, stats.smtp_attempts
        ),
    );
    row(
        "max simultaneous conns to one address (lab)",
        format!(
            "{} vs --per-ip {} -> within: {}",
            after.max_simultaneous,
            args.per_ip,
            yes_no(after.max_simultaneous <= args.per_ip.max(1))
        ),
    );
    if let Some(m) = after.relay_max {
        row(
            "  same, seen by the latency relays",
            format!("{m} ({} connections relayed)", after.relayed),
        );
    }
    row(
        "policy fetches (scanner) / HTTP requests (lab)",
        format!(
            "{} / {}",
            stats.policy_fetches,
            after.policy_requests - before.policy_requests
        ),
    );
    row(
        "DNS queries (lab)",
        format!(
            "{dns_queries} ({:.1} per domain)",
            dns_queries as f64 / stats.done.max(1) as f64
        ),
    );
    row(
        "CPU during the scan: scanner / lab / process",
        format!(
            "{:.1} s / {:.1} s / {:.1} s ({} cores)",
            scan_cpu - scan_cpu_before,
            after.cpu_secs - before.cpu_secs,
            total_cpu - total_cpu_before,
            num_cores()
        ),
    );
    row("lab RSS once started", mib(info.rss_kib));
    if separate {
        row("lab process peak RSS", mib(after.peak_rss_kib));
    }
    row("RSS of this process before the scan", mib(rss_before));
    row("peak RSS of this process before the scan", mib(peak_start));
    row(
        match (peak_reset, separate) {
            (true, true) => "PEAK RSS DURING THE SCAN (scanner alone)",
            (true, false) => "peak RSS during the scan (lab included)",
            (false, _) => "peak RSS of this process (VmHWM)",
        },
        mib(peak_end),
    );
    row("RSS of this process at the end", mib(rss_end));
    if let (Some(report), Some(path)) = (html, &args.html) {
        let started = Instant::now();
        let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
        report.finish(&mut out, LAB_NOW, None)?;
        out.flush()?;
        drop(out);
        let written = started.elapsed();
        let size = std::fs::metadata(path)?.len();
        row(
            "HTML report (--html): size",
            format!(
                "{:.1} MB ({} bytes per domain)",
                size as f64 / 1e6,
                size / stats.done.max(1)
            ),
        );
        row(
            "  rendered during the scan / written at the end",
            format!(
                "{:.2} s / {:.2} s",
                html_render.as_secs_f64(),
                written.as_secs_f64()
            ),
        );
        row("  peak RSS with it (VmHWM)", mib(proc_status_kib("VmHWM")));
    }
    {
        let _in_runtime = scan_runtime.enter();
        drop(scanner);
    }
    lab.stop(lab_runtime)
}

fn num_cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}
