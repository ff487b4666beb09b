//! The bulk-scan benchmark: starts the in-process mail lab with a synthetic scenario
//! (`mxprobe::lab::synthetic`: N domains sharing about 200 MX hosts, a few of them broken),
//! scans every domain through the bulk engine (`mxprobe::bulk::run`) exactly as
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
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;
use mxprobe::bulk::{self, BulkOptions, DomainOutcome, Event};
use mxprobe::finding::Severity;
use mxprobe::lab::Lab;
use mxprobe::lab::synthetic;
use mxprobe::scan::Scanner;
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
    #[arg(long, default_value_t = synthetic::DEFAULT_DOMAINS)]
    domains: usize,
    /// MX hosts the domains share (one loopback address each, at most 245).
    #[arg(long, default_value_t = synthetic::DEFAULT_MX_HOSTS)]
    mx: usize,
    /// How many of the MX hosts are broken (expired certificate, no STARTTLS, silent).
    #[arg(long, default_value_t = synthetic::DEFAULT_BROKEN)]
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
    let scan_runtime = runtime(SCAN_THREADS)?;
    let result = bench(&args, &lab_runtime, &scan_runtime);
    scan_runtime.shutdown_background();
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

fn bench(
    args: &Args,
    lab_runtime: &tokio::runtime::Runtime,
    scan_runtime: &tokio::runtime::Runtime,
) -> Result<()> {
    let t0 = Instant::now();
    let scenario = synthetic::scenario(args.domains, args.mx, args.broken, args.seed);
    let build_time = t0.elapsed();
    let t1 = Instant::now();
    let lab = lab_runtime
        .block_on(Lab::start(&scenario, LAB_NOW))
        .context("cannot start the lab")?;
    let lab_start = t1.elapsed();

    // Distinct (MX host, address) pairs the domains use: what the SMTP sessions should be.
    let mut used_hosts = HashSet::new();
    for d in &scenario.domains {
        used_hosts.extend(d.mail_hosts());
    }
    let pairs: usize = used_hosts.iter().map(|h| lab.addresses(h).len()).sum();
    let used_host_count = used_hosts.len();
    drop(used_hosts);
    drop(scenario);

    let mut config = lab.scan_config();
    config.politeness.per_ip = args.per_ip;
    let mut relays = Vec::new();
    if args.latency_ms > 0 {
        let delay = Duration::from_millis(args.latency_ms);
        for (_, server) in lab.smtp_servers() {
            let r = lab_runtime.block_on(relay(server.addr(), delay))?;
            config.smtp_ports.insert(r.addr.ip(), r.addr.port());
            relays.push(r);
        }
        let r = lab_runtime.block_on(relay(lab.https().addr, delay))?;
        config.fetch = std::mem::take(&mut config.fetch).with_port(r.addr.ip(), r.addr.port());
        relays.push(r);
    }
    // The resolver is built inside the scan runtime (it may spawn its background work).
    let scanner = {
        let _in_runtime = scan_runtime.enter();
        Arc::new(Scanner::new(config).context("cannot build the scanner")?)
    };

    let rss_lab = proc_status_kib("VmRSS");
    let peak_start = proc_status_kib("VmHWM");
    let peak_reset = reset_peak_rss();
    let before = lab.counters();
    let (lab_cpu_before, total_cpu_before) = cpu_seconds(LAB_THREADS);
    let (scan_cpu_before, _) = cpu_seconds(SCAN_THREADS);
    let options = BulkOptions {
        concurrency: args.concurrency,
        domain_deadline: Duration::from_secs(30),
        grace: Duration::from_secs(5),
    };
    let targets = futures::stream::iter(lab.domains().iter().cloned().enumerate());
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
    let after = lab.counters();
    let (lab_cpu, total_cpu) = cpu_seconds(LAB_THREADS);
    let (scan_cpu, _) = cpu_seconds(SCAN_THREADS);
    let peak_end = proc_status_kib("VmHWM");
    let rss_end = proc_status_kib("VmRSS");

    let max_per_address = lab
        .smtp_servers()
        .map(|(_, s)| s.stats().max_simultaneous)
        .max()
        .unwrap_or(0);
    let relay_max = relays
        .iter()
        .take(relays.len().saturating_sub(1))
        .map(|r| r.max_open.load(Ordering::SeqCst))
        .max();
    let relayed: usize = relays
        .iter()
        .map(|r| r.connections.load(Ordering::SeqCst))
        .sum();

    let sessions = after.smtp_connections - before.smtp_connections;
    let secs = stats.elapsed.as_secs_f64();
    let rate = stats.done as f64 / secs.max(f64::EPSILON);
    let yes_no = |b: bool| if b { "yes" } else { "NO" };

    println!();
    println!("mxprobe bulk benchmark");
    println!(
        "  settings: --domains {} --mx {} --broken {} --seed {} --latency-ms {} --concurrency {} \
         --per-ip {}",
        args.domains,
        args.mx,
        args.broken,
        args.seed,
        args.latency_ms,
        args.concurrency,
        args.per_ip
    );
    println!(
        "  runtime threads: {}",
        args.threads.map_or_else(
            || format!("{} (one per core)", num_cores()),
            |t| t.to_string()
        )
    );
    println!();
    let row = |k: &str, v: String| println!("  {k:<44} {v}");
    row(
        "scenario built in",
        format!("{:.2} s", build_time.as_secs_f64()),
    );
    row(
        "lab started in (not timed below)",
        format!("{:.2} s", lab_start.as_secs_f64()),
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
        row(&format!("    domains with finding {code}"), n.to_string());
    }
    row("elapsed (scan only)", format!("{secs:.2} s"));
    row("domains/s", format!("{rate:.0}"));
    row(
        "SMTP sessions opened (lab) vs (MX, address)",
        format!(
            "{sessions} vs {pairs} ({used_host_count} hosts used) -> equal: {}",
            yes_no(sessions == pairs)
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
            "{max_per_address} vs --per-ip {} -> within: {}",
            args.per_ip,
            yes_no(max_per_address <= args.per_ip.max(1))
        ),
    );
    if let Some(m) = relay_max {
        row(
            "  same, seen by the latency relays",
            format!("{m} ({relayed} connections relayed)"),
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
            "{} ({:.1} per domain)",
            after.dns_queries - before.dns_queries,
            (after.dns_queries - before.dns_queries) as f64 / stats.done.max(1) as f64
        ),
    );
    row(
        "CPU during the scan: scanner / lab / all",
        format!(
            "{:.1} s / {:.1} s / {:.1} s ({} cores)",
            scan_cpu - scan_cpu_before,
            lab_cpu - lab_cpu_before,
            total_cpu - total_cpu_before,
            num_cores()
        ),
    );
    row("RSS after lab start (lab + scenario)", mib(rss_lab));
    row("peak RSS before the scan (lab start)", mib(peak_start));
    row(
        if peak_reset {
            "peak RSS during the scan (VmHWM, lab incl.)"
        } else {
            "peak RSS of the process (VmHWM, lab incl.)"
        },
        mib(peak_end),
    );
    row("RSS at the end", mib(rss_end));
    {
        let _in_runtime = scan_runtime.enter();
        drop(scanner);
    }
    let _in_runtime = lab_runtime.enter();
    drop(relays);
    drop(lab);
    Ok(())
}

fn num_cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}
