//! Hostile and unlucky inputs to the `mxprobe` binary, each built by the test: `--input` from
//! pipes, FIFOs and `/dev/stdin` read once; inputs without a single domain; an output file
//! that is the input; signals while only invalid rows are read; endless and oversized files
//! given to file flags, under a memory limit.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::LabEnv;

/// The binary with a resolver that is never asked (nothing here scans a domain), no colour
/// and none of the caller's environment that would change its behaviour.
fn mxprobe() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mxprobe"));
    c.env("NO_COLOR", "1")
        .env("MXPROBE_RESOLVER", "127.0.0.1:9")
        .env_remove("SSL_CERT_FILE")
        .env_remove("MXPROBE_TRUST_ANCHOR")
        .env_remove("MXPROBE_CA_FILE")
        .env_remove("GITHUB_ACTIONS")
        .env_remove("MXPROBE_WEBHOOK_URL")
        .stdin(Stdio::null());
    c
}

/// The binary under `prlimit`: at most `bytes` of data segment (heap and anonymous
/// mappings), so memory that grows with the input ends the process instead of passing.
fn mxprobe_limited(bytes: u64) -> Command {
    let mut c = Command::new("prlimit");
    c.arg(format!("--data={bytes}"))
        .arg(env!("CARGO_BIN_EXE_mxprobe"))
        .env("NO_COLOR", "1")
        .env("MXPROBE_RESOLVER", "127.0.0.1:9")
        .env_remove("SSL_CERT_FILE")
        .env_remove("MXPROBE_TRUST_ANCHOR")
        .env_remove("MXPROBE_CA_FILE")
        .env_remove("GITHUB_ACTIONS")
        .stdin(Stdio::null());
    c
}

/// 96 MiB of heap: several times what a scan of a few domains needs, far below what reading
/// a stream whole would take.
const MEMORY_LIMIT: u64 = 96 * 1024 * 1024;

struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "mxprobe-hostile-{tag}-{}-{}",
            std::process::id(),
            time::OffsetDateTime::now_utc().unix_timestamp_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn write(&self, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The domains of the `domain` records of a JSON Lines file, sorted.
fn jsonl_domains(path: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["type"] == "domain")
        .map(|r| r["domain"].as_str().unwrap().to_owned())
        .collect();
    out.sort();
    out
}

/// Runs `command` with `input` written to its standard input by another thread (so a large
/// input cannot dead-lock against the child's output).
fn run_with_stdin(mut command: Command, input: Vec<u8>) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        // The child may stop reading early (and close the pipe): that is its right.
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

#[test]
fn input_from_pipes_fifos_and_dev_stdin_is_read_once() {
    let lab = LabEnv::start("pipes");
    let list = "# two lab domains\nnull-mx.test\n\ngood.test\n";
    let scan = |input: &str, jsonl: &Path| {
        let mut c = lab.command();
        c.args(["scan", "--quiet", "--input", input, "--jsonl"])
            .arg(jsonl)
            .args(["--no-smtp", "--inconclusive", "pass"]);
        c
    };
    let want = ["good.test", "null-mx.test"];

    for (name, input) in [("dash", "-"), ("dev-stdin", "/dev/stdin")] {
        let jsonl = lab.dir.join(format!("{name}.jsonl"));
        let out = lab
            .rt
            .block_on(async {
                let command = scan(input, &jsonl);
                let list = list.as_bytes().to_vec();
                tokio::task::spawn_blocking(move || run_with_stdin(command, list)).await
            })
            .unwrap();
        assert_ne!(out.status.code(), Some(2), "{name}: {}", stderr(&out));
        assert_eq!(jsonl_domains(&jsonl), want, "{name}");
    }

    // A FIFO (as `<(…)` gives): the writer opens it once the reader has.
    let fifo = lab.dir.join("targets.fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let jsonl = lab.dir.join("fifo.jsonl");
    let command = scan(fifo.to_str().unwrap(), &jsonl);
    let out = lab
        .rt
        .block_on(async {
            let fifo = fifo.clone();
            tokio::task::spawn_blocking(move || {
                let mut command = command;
                let child = command
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap();
                // Opening for writing waits for the reader, then the list goes in slowly.
                let mut w = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
                for line in list.lines() {
                    writeln!(w, "{line}").unwrap();
                    std::thread::sleep(Duration::from_millis(20));
                }
                drop(w);
                child.wait_with_output().unwrap()
            })
            .await
        })
        .unwrap();
    assert_ne!(out.status.code(), Some(2), "fifo: {}", stderr(&out));
    assert_eq!(jsonl_domains(&jsonl), want, "fifo");
}

#[test]
fn an_input_without_a_domain_exits_2_naming_it() {
    let dir = Scratch::new("no-domain");
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty.txt", Vec::new(), "has no rows"),
        (
            "comments.csv",
            b"# only a comment\n\n   \ndomain\n# and another\n".to_vec(),
            "has no rows",
        ),
        (
            "invalid.txt",
            b"not a domain\n=cmd|' /C calc'!A0\nx..y\n".to_vec(),
            "none of the 3 row(s)",
        ),
        (
            "utf16.csv",
            b"\xff\xfed\0o\0m\0a\0i\0n\0\n\0a\0.\0e\0x\0\n\0".to_vec(),
            "UTF-16",
        ),
    ];
    for (name, bytes, says) in cases {
        let path = dir.write(name, &bytes);
        for monitor in [false, true] {
            let mut c = mxprobe();
            if monitor {
                c.args(["monitor", "--db"])
                    .arg(dir.0.join("history.sqlite"));
            } else {
                c.args(["scan", "--quiet"]);
            }
            let out = c.arg("--input").arg(&path).output().unwrap();
            let err = stderr(&out);
            assert_eq!(
                out.status.code(),
                Some(2),
                "{name} (monitor {monitor}): {err}"
            );
            assert!(err.contains(says), "{name}: {err}");
            assert!(err.contains(path.to_str().unwrap()), "{name}: {err}");
            if !says.contains("UTF-16") {
                assert!(err.contains("no domain to scan"), "{name}: {err}");
            }
        }
    }
    // From a pipe: named as standard input.
    let mut c = mxprobe();
    c.args(["scan", "--quiet", "--input", "-"]);
    let out = run_with_stdin(c, b"x..y\n".to_vec());
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no domain to scan: none of the 1 row(s) of standard input"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn an_output_that_is_the_input_is_refused_up_front() {
    let dir = Scratch::new("same-file");
    let contents = "a.example\nb.example\n";
    let input = dir.write("domains.txt", contents);
    std::fs::create_dir_all(dir.0.join("sub")).unwrap();
    let link = dir.0.join("link.txt");
    std::fs::hard_link(&input, &link).unwrap();
    let spelled = dir.0.join("sub/../domains.txt");
    let cases: Vec<(&str, PathBuf)> = vec![
        ("--csv", input.clone()),
        ("--jsonl", spelled.clone()),
        ("--csv", link.clone()),
        ("--junit", input.clone()),
    ];
    for (flag, output) in &cases {
        let out = mxprobe()
            .args(["scan", "--quiet", "--input"])
            .arg(&input)
            .arg(flag)
            .arg(output)
            .output()
            .unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{flag} {output:?}: {err}");
        assert!(err.contains("this is the input file"), "{err}");
        assert!(err.contains(flag), "{err}");
        assert_eq!(std::fs::read_to_string(&input).unwrap(), contents);
    }
    // `--input -` with standard input redirected from the file.
    let out = mxprobe()
        .args(["scan", "--quiet", "--input", "-", "--jsonl"])
        .arg(&spelled)
        .stdin(std::fs::File::open(&input).unwrap())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("this is the input file (standard input)"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read_to_string(&input).unwrap(), contents);
    // monitor: the history database and the metrics file.
    for flag in ["--db", "--prometheus"] {
        let mut c = mxprobe();
        c.args(["monitor", "--input"]).arg(&input);
        if flag == "--prometheus" {
            c.arg("--db").arg(dir.0.join("h.sqlite"));
        }
        let out = c.arg(flag).arg(&link).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{flag}: {}", stderr(&out));
        assert!(stderr(&out).contains("this is the input file"), "{flag}");
        assert_eq!(std::fs::read_to_string(&input).unwrap(), contents);
    }
}

/// SIGTERM while the input yields nothing but invalid rows (1.5 million of them): the run
/// stops at once with status 130, long before the end of the file.
#[test]
fn sigterm_is_honoured_while_only_invalid_rows_are_read() {
    const ROWS: usize = 1_500_000;
    let dir = Scratch::new("sigterm-invalid");
    let input = dir.0.join("invalid.txt");
    {
        let mut w = std::io::BufWriter::new(std::fs::File::create(&input).unwrap());
        for _ in 0..ROWS {
            w.write_all(b"x..y\n").unwrap();
        }
    }
    let log = dir.0.join("stderr.log");
    let jsonl = dir.0.join("out.jsonl");
    let mut child = mxprobe()
        .args(["scan", "--quiet", "--input"])
        .arg(&input)
        .arg("--jsonl")
        .arg(&jsonl)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("skipped")
    {
        assert!(started.elapsed() < Duration::from_secs(30), "no row read");
        std::thread::sleep(Duration::from_millis(10));
    }
    let sent = Instant::now();
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if sent.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            panic!("still running 10 s after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let err = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        status.code(),
        Some(130),
        "{}",
        &err[err.len().saturating_sub(500)..]
    );
    let read = err.matches("skipped").count();
    assert!(read < ROWS, "all {ROWS} rows were read before stopping");
    let summary = std::fs::read_to_string(&jsonl).unwrap();
    let last: serde_json::Value = serde_json::from_str(summary.lines().last().unwrap()).unwrap();
    assert_eq!(last["type"], "summary");
    assert_eq!(last["interrupted"], true);
}

/// A CSV row of 128 MiB (a quoted field that closes, or one that never does and runs to the
/// end of the stream): one invalid row each, read with at most [`MEMORY_LIMIT`] of heap, and
/// the run says there was no domain.
#[test]
fn an_endless_csv_row_is_read_in_bounded_memory() {
    const ROW: usize = 128 * 1024 * 1024;
    for (closed, says) in [
        (true, "the row is longer than 65536 bytes"),
        (false, "a quoted field opened in this row is never closed"),
    ] {
        let mut bytes = b"domain\n\"".to_vec();
        bytes.resize(ROW, b'x');
        if closed {
            bytes.extend_from_slice(b"\"\nx..y\n");
        }
        let mut c = mxprobe_limited(MEMORY_LIMIT);
        c.args(["scan", "--quiet", "--input", "-"]);
        let out = run_with_stdin(c, bytes);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains("input line 2"), "{err}");
        assert!(err.contains(says), "{err}");
        assert!(err.contains("no domain to scan"), "{err}");
    }
}

/// Every file flag reads at most its cap: `/dev/zero` (endless) and an oversized standard
/// input fail at once with the flag, the file and the cap named, under a memory limit far
/// below what reading them whole would take.
#[test]
fn file_flags_refuse_endless_and_oversized_files() {
    let dir = Scratch::new("file-flags");
    let db = dir.0.join("h.sqlite");
    let db = db.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (
            &["scan", "example.com", "--ca-file", "/dev/zero"],
            "--ca-file: /dev/zero is larger than 4 MiB",
        ),
        (
            &["gate", "example.com", "--ca-file", "/dev/zero"],
            "--ca-file: /dev/zero is larger than 4 MiB",
        ),
        (
            &[
                "monitor",
                "example.com",
                "--db",
                db,
                "--ca-file",
                "/dev/zero",
            ],
            "--ca-file: /dev/zero is larger than 4 MiB",
        ),
        (
            &["scan", "example.com", "--trust-anchor", "/dev/zero"],
            "--trust-anchor /dev/zero: larger than 64 KiB",
        ),
        (
            &[
                "generate",
                "--domain",
                "example.com",
                "--live",
                "--rua",
                "mailto:a@example.com",
                "--trust-anchor",
                "/dev/zero",
            ],
            "--trust-anchor /dev/zero: larger than 64 KiB",
        ),
        (
            &["lint", "--policy", "/dev/zero"],
            "--policy /dev/zero: larger than 64 KiB",
        ),
        (
            &["gate", "example.com", "--policy-file", "/dev/zero"],
            "--policy-file /dev/zero: larger than 64 KiB",
        ),
    ];
    for (args, says) in cases {
        let out = mxprobe_limited(MEMORY_LIMIT).args(*args).output().unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    // Standard input as the policy: 1 MiB is refused, 64 KiB of blank lines is read.
    let mut c = mxprobe_limited(MEMORY_LIMIT);
    c.args(["lint", "--policy", "-"]);
    let out = run_with_stdin(c, vec![b'\n'; 1024 * 1024]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--policy -: the policy on standard input is larger than 64 KiB"),
        "{}",
        stderr(&out)
    );
    // A TXT value longer than any TXT record.
    let long = format!("v=STSv1; id={}", "a".repeat(70_000));
    for command in ["lint", "gate"] {
        let mut c = mxprobe();
        c.arg(command);
        if command == "gate" {
            c.arg("example.com");
        }
        let out = c.args(["--sts-txt", &long]).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{command}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("--sts-txt: the value is 70012 bytes long"),
            "{command}: {}",
            stderr(&out)
        );
    }
}

/// `lint` of a policy of 64 KiB of blank lines (the most a fetch reads, and the cap of
/// `--policy`): four findings, one of them counting the 65,536 blank lines, in small output.
#[test]
fn lint_folds_65536_blank_lines_into_one_finding() {
    let mut c = mxprobe_limited(MEMORY_LIMIT);
    c.args(["lint", "--policy", "-", "--format", "json"]);
    let out = run_with_stdin(c, vec![b'\n'; 64 * 1024]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(out.stdout.len() < 16 * 1024, "{} bytes", out.stdout.len());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let findings = report["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 4, "{findings:?}");
    assert_eq!(findings[0]["code"], "sts.policy.blank-line");
    assert!(
        findings[0]["message"]
            .as_str()
            .unwrap()
            .starts_with("65,536 blank lines (lines 1, 2, 3, 4, 5 and 65,531 more)"),
        "{}",
        findings[0]["message"]
    );
}

/// A webhook receiver on loopback that answers 200 to every POST and keeps each body's
/// length.
fn start_receiver(
    rt: &tokio::runtime::Runtime,
) -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::Mutex<Vec<usize>>>,
) {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    let bodies = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = std::sync::Arc::clone(&bodies);
    let addr = rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let seen = std::sync::Arc::clone(&seen);
                tokio::spawn(async move {
                    let mut reader = BufReader::new(stream);
                    let mut length = 0usize;
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        let line = line.trim_end();
                        if line.is_empty() {
                            break;
                        }
                        if let Some((k, v)) = line.split_once(':')
                            && k.eq_ignore_ascii_case("content-length")
                        {
                            length = v.trim().parse().unwrap();
                        }
                    }
                    // Read the body in pieces; only its length is kept.
                    let mut left = length;
                    let mut buf = vec![0; 64 * 1024];
                    while left > 0 {
                        let n = reader.read(&mut buf[..left.min(64 * 1024)]).await.unwrap();
                        if n == 0 {
                            return;
                        }
                        left -= n;
                    }
                    seen.lock().unwrap().push(length);
                    let _ = reader
                        .get_mut()
                        .write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                        )
                        .await;
                });
            }
        });
        addr
    });
    (addr, bodies)
}

/// A policy host serving 64 KiB of blank lines (within the fetch cap) gave 65,539 findings:
/// 37 MB of JSON per domain, a 24 MB snapshot, a 14.8 MB webhook POST and a 210 MB JUnit
/// file. Every output of `scan`, `gate` and `monitor` now stays small.
#[test]
fn a_policy_of_blank_lines_keeps_every_output_small() {
    const SMALL: usize = 512 * 1024;
    let lab = LabEnv::start("blank-policy");
    let (addr, bodies) = start_receiver(&lab.rt);
    let db = lab.dir.join("history.sqlite");
    let monitor = || {
        lab.command()
            .args(["monitor", "good.test", "--no-smtp", "--db"])
            .arg(&db)
            .args(["--webhook", &format!("http://{addr}/hook")])
            .output()
            .unwrap()
    };
    // The first monitor run sees good.test as it is.
    let out = monitor();
    assert_ne!(out.status.code(), Some(2), "{}", stderr(&out));
    let good = mxprobe_core::domain::DomainName::parse("good.test").unwrap();
    lab.lab.set_policy(&good, &"\n".repeat(64 * 1024)).unwrap();

    let jsonl = lab.dir.join("out.jsonl");
    let junit = lab.dir.join("scan.xml");
    let out = lab
        .command()
        .args([
            "scan",
            "good.test",
            "--no-smtp",
            "--format",
            "json",
            "--jsonl",
        ])
        .arg(&jsonl)
        .arg("--junit")
        .arg(&junit)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    // The document holds the policy twice (the body as fetched, and the RFC 8460
    // policy-string of 65,536 empty lines, one per line of pretty JSON): bounded by the fetch
    // cap, not by the findings.
    assert!(
        out.stdout.len() < 4 * SMALL,
        "scan JSON: {} bytes",
        out.stdout.len()
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let findings = doc["domains"][0]["verdict"]["findings"].as_array().unwrap();
    assert!(findings.len() < 20, "{} findings", findings.len());
    assert!(
        findings.iter().any(|f| f["code"] == "sts.policy.blank-line"
            && f["message"]
                .as_str()
                .unwrap()
                .starts_with("65,536 blank lines")),
        "{findings:?}"
    );
    for path in [&jsonl, &junit] {
        let size = std::fs::metadata(path).unwrap().len();
        assert!(size < SMALL as u64, "{}: {size} bytes", path.display());
    }

    let gate_junit = lab.dir.join("gate.xml");
    let policy = lab.write("candidate.txt", &"\n".repeat(64 * 1024));
    let out = lab
        .command()
        .args(["gate", "good.test", "--no-smtp", "--policy-file"])
        .arg(&policy)
        .arg("--junit")
        .arg(&gate_junit)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        out.stdout.len() < SMALL,
        "gate text: {} bytes",
        out.stdout.len()
    );
    let size = std::fs::metadata(&gate_junit).unwrap().len();
    assert!(size < SMALL as u64, "gate JUnit: {size} bytes");

    let before = bodies.lock().unwrap().len();
    let out = monitor();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let bodies = bodies.lock().unwrap()[before..].to_vec();
    assert_eq!(bodies.len(), 1, "one alert for the new failure");
    assert!(bodies[0] < SMALL, "webhook POST: {} bytes", bodies[0]);
    let size = std::fs::metadata(&db).unwrap().len();
    assert!(
        size < 4 * SMALL as u64,
        "history with one snapshot: {size} bytes"
    );
}

/// `--report-dir` that cannot take files is refused before the first domain: exit status 2,
/// nothing scanned, nothing printed.
#[test]
fn an_unusable_report_dir_is_refused_before_the_first_domain() {
    let dir = Scratch::new("report-dir");
    let file = dir.write("not-a-dir", "x");
    let mut cases = vec![
        (file.clone(), "not a directory"),
        (file.join("below"), "cannot create the directory"),
    ];
    // sysfs refuses new files even to root.
    if Path::new("/sys/kernel").is_dir() {
        cases.push((PathBuf::from("/sys/kernel"), "cannot create files there"));
    }
    for (path, says) in cases {
        for command in ["scan", "gate"] {
            let out = mxprobe()
                .args([command, "example.com", "--report-dir"])
                .arg(&path)
                .output()
                .unwrap();
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(2), "{command} {path:?}: {err}");
            assert!(err.contains("--report-dir"), "{err}");
            assert!(err.contains(says), "{command} {path:?}: {err}");
            assert!(
                out.stdout.is_empty(),
                "{}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
    }
}

/// `--resume` counts the domains an interrupted run found failing: the resumed run, which
/// scans only the rest, still exits 1.
#[test]
fn resume_counts_failures_found_before_the_interruption() {
    let lab = LabEnv::start("resume-failing");
    let input = lab.write("domains.txt", "expired.test\ngood.test\n");
    let jsonl = lab.dir.join("out.jsonl");
    // The first run saw expired.test fail, then was interrupted (its summary line is gone).
    let out = lab
        .command()
        .args(["scan", "expired.test", "--quiet", "--jsonl"])
        .arg(&jsonl)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = std::fs::read_to_string(&jsonl).unwrap();
    let domain_line = text.lines().next().unwrap();
    std::fs::write(&jsonl, format!("{domain_line}\n")).unwrap();
    let good_alone = lab
        .command()
        .args(["scan", "good.test", "--quiet"])
        .output()
        .unwrap();
    let out = lab
        .command()
        .args(["scan", "--quiet", "--resume", "--input"])
        .arg(&input)
        .arg("--jsonl")
        .arg(&jsonl)
        .output()
        .unwrap();
    assert_ne!(good_alone.status.code(), Some(1), "good.test alone passes");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(jsonl_domains(&jsonl), ["expired.test", "good.test"]);
}
