//! Distributed scans through a real Redis (Debian's `redis-server`, started by each test on
//! 127.0.0.1 and a free port, in a temporary directory, and stopped at the end): `mxprobe
//! queue push`, several `mxprobe worker` processes, `mxprobe queue collect`, against the lab
//! serving a synthetic scenario whose MX hosts are each known by several names (so several
//! probes reach one address, which is what `--per-ip` limits).
//!
//! When `redis-server` is missing a test says why on stderr and returns; with `CI` set it
//! fails instead. No test asserts a duration.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{Read as _, Write as _};
use std::net::{IpAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::support::in_ci;
use mxprobe_core::domain::DomainName;
use mxprobe_lab::bulk_scenario;
use mxprobe_lab::{Lab, RunningLab, Scenario};
use serde_json::Value;

/// The longest a test waits for anything (a hang becomes a failure).
const HANG_GUARD: Duration = Duration::from_secs(240);

/// `redis-server`, or `None` (with the reason on stderr) when it is not installed here.
fn redis_server() -> Option<PathBuf> {
    let path = PathBuf::from("/usr/bin/redis-server");
    if path.exists() && Path::new("/usr/bin/redis-cli").exists() {
        return Some(path);
    }
    let why = "redis-server or redis-cli is not installed (apt-get install redis-server \
               redis-tools; .ci/run installs them)";
    assert!(!in_ci(), "{why}");
    eprintln!("skipped: {why}");
    None
}

/// A free TCP port on 127.0.0.1 (bound, then released for the server to take).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A scratch directory, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "mxprobe-dist-{tag}-{}-{}",
            std::process::id(),
            time::OffsetDateTime::now_utc().unix_timestamp_nanos()
        ));
        std::fs::create_dir_all(&dir).expect("scratch directory");
        Self(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A redis-server of the test's own, stopped (killed) on drop.
struct Redis {
    binary: PathBuf,
    dir: PathBuf,
    port: u16,
    persistent: bool,
    password: Option<String>,
    child: Option<Child>,
}

impl Redis {
    fn start(binary: PathBuf, dir: &Path, persistent: bool, password: Option<&str>) -> Self {
        let mut redis = Self {
            binary,
            dir: dir.to_owned(),
            port: free_port(),
            persistent,
            password: password.map(str::to_owned),
            child: None,
        };
        redis.spawn();
        redis
    }

    fn spawn(&mut self) {
        let mut cmd = Command::new(&self.binary);
        cmd.arg("--port")
            .arg(self.port.to_string())
            .args(["--bind", "127.0.0.1", "--save", "", "--daemonize", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .args(["--logfile", "redis.log"]);
        if self.persistent {
            cmd.args(["--appendonly", "yes", "--appendfsync", "always"]);
        }
        if let Some(p) = &self.password {
            cmd.args(["--requirepass", p]);
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        let started = Instant::now();
        while !self.pong() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "redis-server did not answer PING on port {} (see {}/redis.log)",
                self.port,
                self.dir.display()
            );
            sleep(Duration::from_millis(50));
        }
    }

    /// Whether the server answers (any reply to PING: +PONG, or an auth error).
    fn pong(&self) -> bool {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
        if s.write_all(b"PING\r\n").is_err() {
            return false;
        }
        let mut buf = [0u8; 64];
        matches!(s.read(&mut buf), Ok(n) if n > 0 && (buf[..n].starts_with(b"+PONG") || buf[..n].starts_with(b"-NOAUTH")))
    }

    /// Stops it with SIGTERM (it writes its data and exits), waiting for the exit.
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(child.id(), "TERM");
            let started = Instant::now();
            while child.try_wait().expect("wait").is_none() {
                if started.elapsed() > Duration::from_secs(10) {
                    let _ = child.kill();
                }
                sleep(Duration::from_millis(20));
            }
        }
    }

    /// How many keys match `pattern` (through redis-cli).
    fn count_keys(&self, pattern: &str) -> usize {
        let out = Command::new("redis-cli")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "--scan",
                "--pattern",
                pattern,
            ])
            .output()
            .expect("redis-cli runs");
        String::from_utf8_lossy(&out.stdout).lines().count()
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Starts `binary` as a TLS-only Redis on 127.0.0.1:`port` with the `redis.pem`, `redis.key`
/// and `ca.pem` in `dir`, and waits until the TLS port accepts connections.
fn tls_redis(binary: &Path, dir: &Path, port: u16) -> Child {
    let child = Command::new(binary)
        .args([
            "--port",
            "0",
            "--tls-port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
        ])
        .args([
            "--save",
            "",
            "--tls-auth-clients",
            "no",
            "--logfile",
            "redis.log",
        ])
        .arg("--dir")
        .arg(dir)
        .arg("--tls-cert-file")
        .arg(dir.join("redis.pem"))
        .arg("--tls-key-file")
        .arg(dir.join("redis.key"))
        .arg("--tls-ca-cert-file")
        .arg(dir.join("ca.pem"))
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server starts");
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no TLS listener"
        );
        sleep(Duration::from_millis(50));
    }
    child
}

/// Sends SIGTERM or SIGKILL to `pid` (a child of this test).
fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -{name} {pid}");
}

/// The synthetic lab on its own runtime, with the files and environment that reach it.
struct SynLab {
    lab: RunningLab,
    _rt: tokio::runtime::Runtime,
    scratch: Scratch,
    env: BTreeMap<&'static str, String>,
    domains: Vec<DomainName>,
}

impl SynLab {
    /// `domains` domains over `hosts` MX hosts (2 of them broken: an expired certificate, no
    /// STARTTLS), each host known by `aliases` more names.
    fn start(tag: &str, domains: usize, hosts: usize, aliases: usize) -> Self {
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        let scenario: Scenario =
            bulk_scenario::scenario_with_aliases(domains, hosts, aliases, 2, 17);
        let lab = rt
            .block_on(Lab::start(&scenario, time::OffsetDateTime::now_utc()))
            .expect("lab starts");
        let scratch = Scratch::new(tag);
        std::fs::write(
            scratch.path("trust-anchor.txt"),
            format!("{}\n", lab.dns().trust_anchor),
        )
        .expect("write");
        std::fs::write(scratch.path("lab-root.pem"), lab.root_ca_pem()).expect("write");
        let names: Vec<DomainName> = lab.domains().to_vec();
        let list: String = names.iter().map(|d| format!("{d}\n")).collect();
        std::fs::write(scratch.path("domains.txt"), list).expect("write");
        let env = BTreeMap::from([
            ("MXPROBE_RESOLVER", lab.dns().addr.to_string()),
            (
                "MXPROBE_TRUST_ANCHOR",
                scratch.path("trust-anchor.txt").display().to_string(),
            ),
            (
                "MXPROBE_CA_FILE",
                scratch.path("lab-root.pem").display().to_string(),
            ),
            (
                "MXPROBE_SMTP_PORT",
                lab.smtp_port().expect("smtp").to_string(),
            ),
            ("MXPROBE_HTTPS_PORT", lab.https().addr.port().to_string()),
            ("MXPROBE_EHLO_NAME", "probe.mxprobe.test".to_owned()),
        ]);
        Self {
            lab,
            _rt: rt,
            scratch,
            env,
            domains: names,
        }
    }

    fn command(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_mxprobe"));
        c.current_dir(&self.scratch.0)
            .envs(&self.env)
            .env("NO_COLOR", "1")
            .env_remove("MXPROBE_REDIS_URL")
            .env_remove("SSL_CERT_FILE")
            .env_remove("GITHUB_ACTIONS");
        c
    }

    /// The distinct (MX name, address) pairs the scenario's domains use.
    fn pairs(&self) -> BTreeSet<(String, IpAddr)> {
        let mut pairs = BTreeSet::new();
        for d in &self.lab.scenario().domains {
            for mx in d.mx.iter().filter_map(|m| m.exchange.as_ref()) {
                for ip in self.lab.addresses(mx) {
                    pairs.insert((mx.to_string(), *ip));
                }
            }
        }
        pairs
    }

    /// SMTP sessions the lab has served, and the most simultaneous at any one address.
    fn sessions(&self) -> (usize, usize) {
        let max = self
            .lab
            .smtp_servers()
            .map(|(_, s)| s.stats().max_simultaneous)
            .max()
            .unwrap_or(0);
        (self.lab.counters().smtp_connections, max)
    }

    /// `mxprobe queue push` of the domains in `input` to run `run`, which must succeed; its
    /// stderr.
    fn push(&self, url: &str, run: &str, input: &str) -> String {
        let (code, _, err) = self.run(&[
            "queue", "push", "--redis", url, "--run", run, "--input", input,
        ]);
        assert_eq!(code, 0, "{err}");
        err
    }

    /// `mxprobe queue collect` of run `run` into the JSON Lines file `jsonl` (and whatever
    /// `extra` adds), which must end with a code that a scan may end with (0, 1 or 3):
    /// (exit code, records written, verdict of each domain).
    fn collect(
        &self,
        url: &str,
        run: &str,
        jsonl: &str,
        extra: &[&str],
    ) -> (i32, usize, HashMap<String, (u64, Value)>) {
        let mut args = vec![
            "queue", "collect", "--redis", url, "--run", run, "--jsonl", jsonl, "--format", "json",
        ];
        args.extend_from_slice(extra);
        let (code, _, err) = self.run(&args);
        assert!([0, 1, 3].contains(&code), "{code}: {err}");
        let (records, collected) = verdicts(&self.scratch.path(jsonl));
        (code, records, collected)
    }

    /// `mxprobe <args>` run to its end: (exit code, stdout, stderr).
    fn run(&self, args: &[&str]) -> (i32, String, String) {
        let out = self.command().args(args).output().expect("mxprobe runs");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// A worker process (its stderr in the scratch directory).
    fn worker(&self, url: &str, run: &str, n: usize, extra: &[&str]) -> Child {
        let log =
            std::fs::File::create(self.scratch.path(&format!("worker-{n}.log"))).expect("log file");
        self.command()
            .args(["worker", "--redis", url, "--run", run, "-q"])
            .args([
                "--smtp-deadline",
                "5",
                // Generous: a domain past its deadline is left out of the results (said
                // on stderr, as `scan --input` does), and the 2-core CI machine runs other
                // tests beside these; the take-over of a killed worker's entries waits
                // deadline + grace.
                "--deadline",
                "30",
                "--claim-grace",
                "1",
            ])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("worker starts")
    }

    fn log(&self, n: usize) -> String {
        std::fs::read_to_string(self.scratch.path(&format!("worker-{n}.log"))).unwrap_or_default()
    }

    fn status(&self, url: &str, run: &str) -> Value {
        let (code, out, err) = self.run(&[
            "queue", "status", "--redis", url, "--run", run, "--format", "json",
        ]);
        assert_eq!(code, 0, "{err}");
        serde_json::from_str(&out).expect("status JSON")
    }
}

/// Waits for `child` to exit, within the hang guard; its exit code.
fn wait_exit(child: &mut Child, what: &str) -> i32 {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status.code().unwrap_or(-1);
        }
        if started.elapsed() > HANG_GUARD {
            let _ = child.kill();
            panic!("{what} did not exit within {HANG_GUARD:?}");
        }
        sleep(Duration::from_millis(50));
    }
}

/// The domain records of a JSON Lines file: domain → (line, verdict).
fn verdicts(path: &Path) -> (usize, HashMap<String, (u64, Value)>) {
    let text = std::fs::read_to_string(path).expect("jsonl");
    let mut records = 0;
    let mut map = HashMap::new();
    for line in text.lines() {
        let v: Value = serde_json::from_str(line).expect("JSON line");
        if v["type"] == "domain" {
            records += 1;
            let domain = v["domain"].as_str().expect("domain").to_owned();
            let entry = (v["line"].as_u64().expect("line"), v["verdict"].clone());
            map.insert(domain, entry);
        }
    }
    (records, map)
}

/// 3,000 domains, 3 workers, one killed with SIGKILL while it holds entries: every domain is
/// collected once, with the verdict a single-process scan gives; the lab saw one SMTP
/// session per (MX, address) and never two at once at one address (`--per-ip 1`).
#[test]
fn three_workers_one_killed_every_domain_once_as_one_process_would() {
    let Some(binary) = redis_server() else { return };
    let lab = SynLab::start("kill", 3000, 20, 4);
    let redis = Redis::start(binary, &lab.scratch.0, false, None);
    let url = redis.url();
    let err = lab.push(&url, "k", "domains.txt");
    assert!(
        err.contains("pushed 3000 domain(s) and 0 invalid row(s) to run k"),
        "{err}"
    );

    let flags = ["--per-ip", "1", "--concurrency", "32"];
    let mut workers: Vec<Child> = (0..3).map(|n| lab.worker(&url, "k", n, &flags)).collect();
    let pairs = lab.pairs();
    // Kill worker 0 once every probe is made and stored (a probe cut off by the kill, or
    // made and not yet stored, is made again by another worker, by design) and while it
    // holds entries.
    let victim = format!("-{}", workers[0].id());
    let started = Instant::now();
    let held_at_kill = loop {
        assert!(
            started.elapsed() < HANG_GUARD,
            "the run never got going: {}",
            lab.log(0)
        );
        let status = lab.status(&url, "k");
        let holding = status["workers"]
            .as_array()
            .expect("workers")
            .iter()
            .find(|w| w["name"].as_str().is_some_and(|n| n.ends_with(&victim)))
            .and_then(|w| w["holding"].as_u64())
            .unwrap_or(0);
        if holding > 0
            && lab.sessions().0 >= pairs.len()
            && redis.count_keys("mxprobe:{k}:probe:*") >= pairs.len()
        {
            signal(workers[0].id(), "KILL");
            break holding;
        }
        assert!(
            status["done"].as_u64() < Some(3000),
            "the run ended before the kill"
        );
        sleep(Duration::from_millis(20));
    };
    let _ = workers[0].wait();
    for (n, w) in workers.iter_mut().enumerate().skip(1) {
        let code = wait_exit(w, "a worker");
        assert_eq!(code, 0, "worker {n}: {}", lab.log(n));
    }
    let status = lab.status(&url, "k");
    assert_eq!(status["done"], 3000, "{status}");
    assert_eq!(status["drained"], true, "{status}");
    assert!(
        status["taken_over"].as_u64() >= Some(1),
        "{held_at_kill} held at the kill, none taken over: {status}"
    );

    let (sessions, max_at_once) = lab.sessions();
    assert_eq!(
        sessions,
        pairs.len(),
        "SMTP sessions vs distinct (MX, address) pairs"
    );
    assert!(
        pairs.len() > 20,
        "aliases make several pairs per address: {}",
        pairs.len()
    );
    assert_eq!(max_at_once, 1, "--per-ip 1 across all workers");

    let (code, records, collected) =
        lab.collect(&url, "k", "collected.jsonl", &["--csv", "collected.csv"]);
    assert_eq!(records, 3000, "each domain once");
    assert_eq!(collected.len(), 3000);
    let csv = std::fs::read_to_string(lab.scratch.path("collected.csv")).expect("csv");
    assert_eq!(csv.lines().count(), 3001);

    // The same list in one process.
    let (single_code, _, err) = lab.run(&[
        "scan",
        "--input",
        "domains.txt",
        "--jsonl",
        "single.jsonl",
        "-q",
        "--per-ip",
        "1",
        "--concurrency",
        "96",
        "--smtp-deadline",
        "5",
        "--deadline",
        "30",
        "--format",
        "json",
    ]);
    assert_eq!(single_code, code, "{err}");
    let (_, single) = verdicts(&lab.scratch.path("single.jsonl"));
    assert_eq!(single.len(), 3000);
    let mut differ = Vec::new();
    for d in &lab.domains {
        if collected.get(d.as_str()) != single.get(d.as_str()) {
            differ.push(d.to_string());
        }
    }
    assert!(
        differ.is_empty(),
        "{} verdicts differ, e.g. {:?}",
        differ.len(),
        &differ[..differ.len().min(5)]
    );
    // A second collect writes the same, each domain once.
    let (again, _, collected_again) = lab.collect(&url, "k", "again.jsonl", &[]);
    assert_eq!(again, code);
    assert_eq!(collected_again, collected);
}

/// Redis restarted in the middle of a run (with its append-only file on): the workers wait
/// and go on, and every domain is stored once.
#[test]
fn a_redis_restart_mid_run_loses_and_doubles_nothing() {
    let Some(binary) = redis_server() else { return };
    let lab = SynLab::start("restart", 800, 10, 1);
    let mut redis = Redis::start(binary, &lab.scratch.0, true, None);
    let url = redis.url();
    lab.push(&url, "r", "domains.txt");
    let flags = ["--concurrency", "8", "--redis-patience", "60"];
    let mut workers: Vec<Child> = (0..2).map(|n| lab.worker(&url, "r", n, &flags)).collect();
    let started = Instant::now();
    loop {
        assert!(started.elapsed() < HANG_GUARD, "the run never got going");
        let done = lab.status(&url, "r")["done"].as_u64().unwrap_or(0);
        if done >= 100 {
            assert!(done < 800, "the run ended before the restart");
            break;
        }
        sleep(Duration::from_millis(20));
    }
    redis.stop();
    sleep(Duration::from_millis(500));
    redis.spawn();
    for (n, w) in workers.iter_mut().enumerate() {
        let code = wait_exit(w, "a worker");
        assert_eq!(code, 0, "worker {n}: {}", lab.log(n));
    }
    let logs = format!("{}{}", lab.log(0), lab.log(1));
    assert!(logs.contains("answers again"), "{logs}");
    let status = lab.status(&url, "r");
    assert_eq!(
        (status["done"].as_u64(), status["drained"].as_bool()),
        (Some(800), Some(true)),
        "{status}"
    );
    let (_, records, collected) = lab.collect(&url, "r", "out.jsonl", &[]);
    assert_eq!((records, collected.len()), (800, 800));
}

/// The password of the URL never shows: not in errors (a server that is not there, a wrong
/// password), not in `--help`, not in notes.
#[test]
fn the_redis_password_is_never_printed() {
    let Some(binary) = redis_server() else { return };
    let lab = SynLab::start("secret", 10, 2, 0);
    let redis = Redis::start(binary, &lab.scratch.0, false, Some("rightSecret123"));
    let closed = free_port();
    let cases = [
        format!("redis://scanner:hunter2Secret@127.0.0.1:{closed}/0"),
        format!("redis://:wrongSecret456@127.0.0.1:{}", redis.port),
        format!("redis://default:wrong%40Secret789@127.0.0.1:{}", redis.port),
    ];
    for url in &cases {
        for args in [
            vec![
                "queue",
                "push",
                "--input",
                "domains.txt",
                "--redis-patience",
                "1",
            ],
            vec!["queue", "status", "--redis-patience", "1"],
            vec!["worker", "--redis-patience", "1", "-q"],
        ] {
            // From the flag and from the environment.
            for via_env in [false, true] {
                let mut cmd = lab.command();
                cmd.args(&args);
                if via_env {
                    cmd.env("MXPROBE_REDIS_URL", url);
                } else {
                    cmd.args(["--redis", url]);
                }
                let out = cmd.output().expect("runs");
                let text = format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
                assert_eq!(out.status.code(), Some(2), "{args:?}: {text}");
                for secret in [
                    "hunter2Secret",
                    "wrongSecret456",
                    "wrong%40Secret789",
                    "wrong@Secret789",
                ] {
                    assert!(
                        !text.contains(secret),
                        "{args:?} printed the password: {text}"
                    );
                }
                assert!(text.contains(":***@127.0.0.1"), "{args:?}: {text}");
            }
        }
    }
    // Nothing listens: said at once that it keeps trying, and for how long, then the error.
    let (code, _, err) = lab.run(&[
        "queue",
        "status",
        "--redis",
        &cases[0],
        "--redis-patience",
        "4",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("does not accept a connection yet")
            && err.contains("for up to 4 s (--redis-patience)")
            && err.contains("failed to accept a connection for"),
        "{err}"
    );
    assert!(!err.contains("hunter2Secret"), "{err}");
    let out = lab
        .command()
        .args(["worker", "--help"])
        .env("MXPROBE_REDIS_URL", &cases[0])
        .output()
        .expect("runs");
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("MXPROBE_REDIS_URL"), "{help}");
    assert!(!help.contains("hunter2Secret"), "{help}");
    // The right password works, and is not echoed either.
    let right = format!("redis://:rightSecret123@127.0.0.1:{}", redis.port);
    let (code, _, err) = lab.run(&["queue", "status", "--redis", &right]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("there is no run default at redis://:***@127.0.0.1:"),
        "{err}"
    );
    let (code, _, err) = lab.run(&["queue", "push", "--redis", &right, "--input", "domains.txt"]);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("rightSecret123"), "{err}");
    let (code, out, err) = lab.run(&["queue", "status", "--redis", &right]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(":***@127.0.0.1") && !out.contains("rightSecret123"),
        "{out}"
    );
}

/// SIGTERM: the worker stores what finished, gives the rest back to the queue (nothing is
/// left pending for a take-over) and exits 130; another worker finishes the run.
#[test]
fn a_worker_stopped_by_sigterm_gives_back_what_it_holds() {
    let Some(binary) = redis_server() else { return };
    let lab = SynLab::start("term", 600, 10, 1);
    let redis = Redis::start(binary, &lab.scratch.0, false, None);
    let url = redis.url();
    lab.push(&url, "t", "domains.txt");
    let mut first = lab.worker(&url, "t", 0, &["--concurrency", "16"]);
    let started = Instant::now();
    loop {
        assert!(started.elapsed() < HANG_GUARD, "the run never got going");
        let done = lab.status(&url, "t")["done"].as_u64().unwrap_or(0);
        if done >= 50 {
            assert!(done < 600, "the run ended before the signal");
            break;
        }
        sleep(Duration::from_millis(20));
    }
    signal(first.id(), "TERM");
    assert_eq!(
        wait_exit(&mut first, "the first worker"),
        130,
        "{}",
        lab.log(0)
    );
    let log = lab.log(0);
    assert!(log.contains("given back"), "{log}");
    let status = lab.status(&url, "t");
    assert_eq!(status["in_flight"], 0, "nothing left pending: {status}");
    assert!(status["queued"].as_u64() > Some(0), "{status}");
    let mut second = lab.worker(&url, "t", 1, &["--concurrency", "16"]);
    assert_eq!(
        wait_exit(&mut second, "the second worker"),
        0,
        "{}",
        lab.log(1)
    );
    let status = lab.status(&url, "t");
    assert_eq!(
        (status["done"].as_u64(), status["taken_over"].as_u64()),
        (Some(600), Some(0)),
        "{status}"
    );
    let (_, records, collected) = lab.collect(&url, "t", "out.jsonl", &[]);
    assert_eq!((records, collected.len()), (600, 600));
}

/// `rediss://`: TLS through rustls to a redis-server with a certificate from a test CA,
/// trusted through SSL_CERT_FILE (read as the system's CA certificates); without it, the
/// certificate is refused and the error names the URL.
#[test]
fn rediss_connects_over_tls_with_the_system_trust() {
    let Some(binary) = redis_server() else { return };
    use mxprobe_testpki::{CertAuthority, KeyKind, LeafSpec, Validity};
    let lab = SynLab::start("tls", 10, 2, 0);
    let now = time::OffsetDateTime::now_utc();
    let window = Validity::new(
        now - time::Duration::days(1),
        now + time::Duration::days(30),
    );
    let ca = CertAuthority::root("mxprobe test Redis CA", window, KeyKind::EcdsaP256).expect("CA");
    let leaf = ca
        .leaf(&LeafSpec::new(&["localhost"], window))
        .expect("leaf");
    let dir = &lab.scratch.0;
    std::fs::write(dir.join("ca.pem"), ca.cert().pem()).expect("write");
    std::fs::write(dir.join("redis.pem"), leaf.pem()).expect("write");
    std::fs::write(dir.join("redis.key"), leaf.key_pem()).expect("write");
    let port = free_port();
    let mut child = tls_redis(&binary, dir, port);
    let url = format!("rediss://127.0.0.1:{port}");
    let url = url.replace("127.0.0.1", "localhost");
    let trusted = lab
        .command()
        .args(["queue", "push", "--redis", &url, "--input", "domains.txt"])
        .env("SSL_CERT_FILE", dir.join("ca.pem"))
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&trusted.stderr);
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(trusted.status.code(), Some(0), "{err}");
    assert!(err.contains("pushed 10 domain(s)"), "{err}");
    assert!(err.contains("rediss://localhost:"), "{err}");
    // The same server without the test CA among the trusted ones: refused.
    let mut child = tls_redis(&binary, dir, port);
    let refused = lab
        .command()
        .args(["queue", "status", "--redis", &url, "--redis-patience", "1"])
        .output()
        .expect("runs");
    let _ = child.kill();
    let _ = child.wait();
    let err = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{err}");
    assert!(err.contains(&url), "{err}");
    assert!(
        err.contains("invalid peer certificate: UnknownIssuer"),
        "{err}"
    );
    assert!(err.contains("SSL_CERT_FILE"), "{err}");
}

/// `--follow`: a drained run does not end the worker; a later push is scanned; SIGTERM ends
/// it (130).
#[test]
fn a_following_worker_waits_for_the_next_push() {
    let Some(binary) = redis_server() else { return };
    let lab = SynLab::start("follow", 40, 4, 0);
    let redis = Redis::start(binary, &lab.scratch.0, false, None);
    let url = redis.url();
    let names: Vec<String> = lab.domains.iter().map(ToString::to_string).collect();
    std::fs::write(lab.scratch.path("first.txt"), names[..20].join("\n")).expect("write");
    std::fs::write(lab.scratch.path("second.txt"), names[20..].join("\n")).expect("write");
    let push = |file: &str| {
        lab.push(&url, "f", file);
    };
    let wait_done = |n: u64| {
        let started = Instant::now();
        while lab.status(&url, "f")["done"].as_u64() != Some(n) {
            assert!(started.elapsed() < HANG_GUARD, "never reached {n} done");
            sleep(Duration::from_millis(50));
        }
    };
    push("first.txt");
    let mut worker = lab.worker(&url, "f", 0, &["--follow"]);
    wait_done(20);
    sleep(Duration::from_millis(1500));
    assert!(
        worker.try_wait().expect("wait").is_none(),
        "a following worker stays: {}",
        lab.log(0)
    );
    push("second.txt");
    wait_done(40);
    signal(worker.id(), "TERM");
    assert_eq!(wait_exit(&mut worker, "the worker"), 130, "{}", lab.log(0));
    let (_, _, collected) = lab.collect(&url, "f", "out.jsonl", &[]);
    assert_eq!(collected.len(), 40);
}

/// The Redis side of the scanner's seams, driven directly: connection slots per address
/// (at most `per_ip` held, the next one waits until one is dropped), and a shared probe made
/// once by whichever caller gets the lease while the others wait for its stored result.
#[test]
fn slots_and_shared_probes_hold_across_callers() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use mxprobe_core::smtp::{SmtpFacts, SmtpOutcome};
    use mxprobe_probe::scan::{AddressSlots, ProbeExchange, ProbeKey};
    use mxprobe_queue::sharing::{RedisProbes, RedisSlots};
    use mxprobe_queue::{RedisUrl, Store};

    let Some(binary) = redis_server() else { return };
    let scratch = Scratch::new("seams");
    let redis = Redis::start(binary, &scratch.0, false, None);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let url = RedisUrl::parse(&redis.url()).expect("url");
        let notes: mxprobe_queue::Notes = Arc::new(|_| {});
        let store = Store::connect(&url, "seams", Duration::from_secs(5), notes)
            .await
            .expect("connects");

        // Two slot holders, as if in two workers: at most 2 at 192.0.2.7.
        let ip: IpAddr = "192.0.2.7".parse().expect("ip");
        let a = RedisSlots::new(store.clone(), 2, None);
        let b = RedisSlots::new(store.clone(), 2, None);
        let first = a.acquire(ip).await;
        let second = b.acquire(ip).await;
        let third = tokio::time::timeout(Duration::from_millis(300), a.acquire(ip)).await;
        assert!(third.is_err(), "a third connection waits");
        drop(first);
        let third = tokio::time::timeout(Duration::from_secs(10), b.acquire(ip))
            .await
            .expect("a slot was given back");
        // Another address is not held up.
        let other = tokio::time::timeout(
            Duration::from_secs(10),
            a.acquire("192.0.2.8".parse().expect("ip")),
        )
        .await
        .expect("another address has its own slots");
        drop((second, third, other));

        // Four callers want the same probe: one probes, three get its stored result.
        let runs = Arc::new(AtomicUsize::new(0));
        let key = ProbeKey {
            mx: DomainName::parse("mx.shared.test").expect("name"),
            sni: DomainName::parse("mx.shared.test").expect("name"),
            ip,
            port: 25,
        };
        let facts = SmtpFacts::new(
            key.mx.clone(),
            std::net::SocketAddr::new(ip, 25),
            SmtpOutcome::StarttlsNotOffered,
        );
        let callers = (0..4).map(|_| {
            let exchange = RedisProbes::new(store.clone(), Duration::from_secs(60));
            let (runs, key, facts) = (Arc::clone(&runs), key.clone(), facts.clone());
            tokio::spawn(async move {
                let probe = Box::pin(async move {
                    runs.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    facts
                });
                exchange.probe(&key, probe).await
            })
        });
        let results = futures::future::join_all(callers).await;
        let ran: Vec<bool> = results
            .iter()
            .map(|r| r.as_ref().expect("joined").1)
            .collect();
        assert_eq!(runs.load(Ordering::SeqCst), 1, "{ran:?}");
        assert_eq!(ran.iter().filter(|r| **r).count(), 1, "{ran:?}");
        for r in &results {
            assert_eq!(r.as_ref().expect("joined").0, facts);
        }
        // Later callers find it stored.
        let later = RedisProbes::new(store.clone(), Duration::from_secs(60));
        let (found, ran) = later
            .probe(&key, Box::pin(async { unreachable!("stored already") }))
            .await;
        assert_eq!((found, ran), (facts, false));
    });
}
