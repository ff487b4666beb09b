//! The distributed-scan benchmark: N synthetic lab domains pushed to a run in a real
//! `redis-server` (started here on 127.0.0.1 and a free port, no persistence), then scanned
//! by 1, 2, 4 … `mxprobe worker` processes, each under `/usr/bin/time`. Every SMTP greeting
//! and every policy response of the lab waits `--latency-ms` (a distant server), so the scan
//! is latency bound and the scaling with workers shows on a small machine.
//!
//! ```text
//! cargo bench --bench distributed -- [--domains N] [--mx M] [--latency-ms L] [--workers 1,2,4]
//!                                    [--concurrency C] [--per-ip P]
//! ```
//!
//! For each worker count a fresh lab and a fresh run: the wall time from the first worker's
//! start to the last one's exit, domains/s, the SMTP sessions the lab counted against the
//! distinct (MX, address) pairs, the most simultaneous connections at one address, and each
//! worker's CPU time and peak RSS as `/usr/bin/time` measured them. Printed, never asserted.

use std::collections::BTreeSet;
use std::net::{IpAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use mxprobe_lab::bulk_scenario;
use mxprobe_lab::{Lab, RunningLab};

/// The distributed-scan benchmark.
#[derive(Debug, Parser)]
#[command(
    name = "distributed",
    about = "Scan N synthetic lab domains with 1, 2, 4 … workers through Redis"
)]
struct Args {
    /// Synthetic domains.
    #[arg(long, default_value_t = 3000)]
    domains: usize,
    /// MX hosts the domains share (one loopback address each).
    #[arg(long, default_value_t = 200)]
    mx: usize,
    /// Milliseconds each SMTP greeting and each policy response waits.
    #[arg(long, default_value_t = 50)]
    latency_ms: u64,
    /// The worker counts to run, one run each.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4")]
    workers: Vec<usize>,
    /// `--concurrency` of each worker.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// `--per-ip` of each worker.
    #[arg(long, default_value_t = 2)]
    per_ip: usize,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A redis-server of our own, killed on drop.
struct Redis(Child, u16);

impl Redis {
    fn start(dir: &Path) -> Result<Self> {
        let port = free_port()?;
        let child = Command::new("/usr/bin/redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .arg("--dir")
            .arg(dir)
            .stdout(Stdio::null())
            .spawn()
            .context("starting /usr/bin/redis-server (apt-get install redis-server)")?;
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if started.elapsed() > Duration::from_secs(10) {
                bail!("redis-server did not listen on {port}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(Self(child, port))
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One worker count's results.
struct Row {
    workers: usize,
    elapsed: f64,
    sessions: usize,
    pairs: usize,
    max_at_once: usize,
    /// Per worker: (user + system CPU seconds, peak RSS KiB).
    per_worker: Vec<(f64, u64)>,
    exit: Vec<i32>,
}

fn pairs(lab: &RunningLab) -> usize {
    let mut set = BTreeSet::<(String, IpAddr)>::new();
    for d in &lab.scenario().domains {
        for mx in d.mx.iter().filter_map(|m| m.exchange.as_ref()) {
            for ip in lab.addresses(mx) {
                set.insert((mx.to_string(), *ip));
            }
        }
    }
    set.len()
}

fn run(args: &Args, workers: usize, dir: &Path, redis: &Redis) -> Result<Row> {
    let rt = tokio::runtime::Runtime::new()?;
    let scenario = bulk_scenario::scenario(args.domains, args.mx, 0, 1);
    let lab = rt.block_on(Lab::start_with_latency(
        &scenario,
        time::OffsetDateTime::now_utc(),
        Duration::from_millis(args.latency_ms),
    ))?;
    std::fs::write(
        dir.join("anchor.txt"),
        format!("{}\n", lab.dns().trust_anchor),
    )?;
    std::fs::write(dir.join("root.pem"), lab.root_ca_pem())?;
    let list: String = lab.domains().iter().map(|d| format!("{d}\n")).collect();
    std::fs::write(dir.join("domains.txt"), list)?;
    let url = format!("redis://127.0.0.1:{}", redis.1);
    let run_name = format!("bench-{workers}-{}", std::process::id());
    let mxprobe = PathBuf::from(env!("CARGO_BIN_EXE_mxprobe"));
    let probe_env = [
        ("MXPROBE_RESOLVER", lab.dns().addr.to_string()),
        (
            "MXPROBE_TRUST_ANCHOR",
            dir.join("anchor.txt").display().to_string(),
        ),
        (
            "MXPROBE_CA_FILE",
            dir.join("root.pem").display().to_string(),
        ),
        (
            "MXPROBE_SMTP_PORT",
            lab.smtp_port().context("smtp")?.to_string(),
        ),
        ("MXPROBE_HTTPS_PORT", lab.https().addr.port().to_string()),
        ("MXPROBE_EHLO_NAME", "probe.mxprobe.test".to_owned()),
    ];
    let push = Command::new(&mxprobe)
        .args([
            "queue", "push", "--redis", &url, "--run", &run_name, "--input",
        ])
        .arg(dir.join("domains.txt"))
        .output()?;
    if !push.status.success() {
        bail!("push failed: {}", String::from_utf8_lossy(&push.stderr));
    }
    let started = Instant::now();
    let mut children: Vec<(Child, PathBuf)> = Vec::new();
    for n in 0..workers {
        let times = dir.join(format!("time-{workers}-{n}.txt"));
        let child = Command::new("/usr/bin/time")
            .args(["-f", "%U %S %M", "-o"])
            .arg(&times)
            .arg(&mxprobe)
            .args(["worker", "--redis", &url, "--run", &run_name, "-q"])
            .args(["--concurrency", &args.concurrency.to_string()])
            .args(["--per-ip", &args.per_ip.to_string()])
            .args(["--smtp-deadline", "10", "--deadline", "30"])
            .envs(probe_env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting /usr/bin/time mxprobe worker")?;
        children.push((child, times));
    }
    let mut exit = Vec::new();
    let mut per_worker = Vec::new();
    for (mut child, times) in children {
        exit.push(child.wait()?.code().unwrap_or(-1));
        let text = std::fs::read_to_string(&times).unwrap_or_default();
        let fields: Vec<&str> = text.split_whitespace().collect();
        let parse = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        per_worker.push((parse(0) + parse(1), parse(2) as u64));
    }
    let elapsed = started.elapsed().as_secs_f64();
    let max_at_once = lab
        .smtp_servers()
        .map(|(_, s)| s.stats().max_simultaneous)
        .max()
        .unwrap_or(0);
    let row = Row {
        workers,
        elapsed,
        sessions: lab.counters().smtp_connections,
        pairs: pairs(&lab),
        max_at_once,
        per_worker,
        exit,
    };
    let _in = rt.enter();
    drop(lab);
    Ok(row)
}

fn main() -> Result<()> {
    let args = Args::parse();
    let dir = std::env::temp_dir().join(format!("mxprobe-bench-dist-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let redis = Redis::start(&dir)?;
    println!(
        "{} domains, {} MX hosts, {} ms latency, per worker --concurrency {} --per-ip {}, {} cores",
        args.domains,
        args.mx,
        args.latency_ms,
        args.concurrency,
        args.per_ip,
        std::thread::available_parallelism().map_or(1, usize::from)
    );
    println!(
        "| workers | elapsed | domains/s | SMTP sessions / (MX, address) pairs | max conns per address | CPU s per worker | peak RSS per worker | exit |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for &n in &args.workers {
        let row = run(&args, n.max(1), &dir, &redis)?;
        let cpu: Vec<String> = row
            .per_worker
            .iter()
            .map(|(c, _)| format!("{c:.1}"))
            .collect();
        let rss: Vec<String> = row
            .per_worker
            .iter()
            .map(|(_, k)| format!("{:.0} MiB", *k as f64 / 1024.0))
            .collect();
        println!(
            "| {} | {:.1} s | **{:.0}** | {} / {} | {} | {} | {} | {:?} |",
            row.workers,
            row.elapsed,
            args.domains as f64 / row.elapsed,
            row.sessions,
            row.pairs,
            row.max_at_once,
            cpu.join(", "),
            rss.join(", "),
            row.exit
        );
    }
    drop(redis);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
