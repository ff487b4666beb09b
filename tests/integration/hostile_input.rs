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

/// A quoted CSV field that never closes runs to the end of a 256 MiB stream: one invalid row,
/// read with at most [`MEMORY_LIMIT`] of heap, and the run says there was no domain.
#[test]
fn an_endless_csv_row_is_read_in_bounded_memory() {
    const STREAM: usize = 256 * 1024 * 1024;
    let mut bytes = b"domain\n\"".to_vec();
    bytes.resize(STREAM, b'x');
    let mut c = mxprobe_limited(MEMORY_LIMIT);
    c.args(["scan", "--quiet", "--input", "-"]);
    let out = run_with_stdin(c, bytes);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("input line 2"), "{err}");
    assert!(err.contains("longer than 65536 bytes"), "{err}");
    assert!(err.contains("no domain to scan"), "{err}");
}
