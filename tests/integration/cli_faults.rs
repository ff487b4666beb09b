//! The binary's own edges: a `--since` far outside the calendar (an error, never a panic), a
//! reader of standard output that goes away (every printing command ends quietly with 0, as
//! `| head` expects), and a `--db` that is not a regular file (refused, nothing created
//! beside it).

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

/// A scratch directory, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "mxprobe-cli-faults-{tag}-{}-{}",
            std::process::id(),
            time::OffsetDateTime::now_utc().unix_timestamp_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn mxprobe(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mxprobe"));
    command
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("MXPROBE_DB")
        .env_remove("MXPROBE_WEBHOOK_URL");
    command
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A history database with one stored report (for example.com), made by `reports ingest`.
fn history_with_a_report(scratch: &Scratch) -> PathBuf {
    let db = scratch.0.join("history.sqlite");
    let report = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/tlsrpt-reports/parsedmarc/smtp_tls.json"
    );
    let out = mxprobe(&["reports", "ingest", "--db", db.to_str().unwrap(), report])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    db
}

#[test]
fn a_since_outside_the_calendar_is_an_error_not_a_panic() {
    let scratch = Scratch::new("since");
    let db = history_with_a_report(&scratch);
    let db = db.to_str().unwrap();
    for since in [
        "99999999999d",
        "9223372036854775807d",
        "-9223372036854775808m",
        "-99999999h",
        "9999-12-31T23:59:59-23:59",
        "0000-01-01T00:00:00+00:01",
    ] {
        for args in [
            &["history", "example.com"][..],
            &["reports", "summary"][..],
            &["reports", "compare", "example.com"][..],
        ] {
            let out = mxprobe(args)
                .args(["--db", db, &format!("--since={since}")])
                .output()
                .unwrap();
            assert_eq!(
                out.status.code(),
                Some(2),
                "{args:?} {since}: {}",
                text(&out)
            );
            assert_eq!(
                String::from_utf8_lossy(&out.stderr),
                format!(
                    "mxprobe: --since {since:?}: that is outside the years 0000-9999 (UTC); \
                     give a later date or a smaller age\n"
                ),
                "{args:?} {since}"
            );
        }
    }
    // Ages and dates inside the calendar still work.
    for since in ["7d", "0m", "2024-01-01", "2024-01-09T00:00:00Z"] {
        let out = mxprobe(&["reports", "summary", "--format", "json"])
            .args(["--db", db, "--since", since])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{since}: {}", text(&out));
    }
}

#[test]
fn every_printing_command_ends_quietly_when_its_reader_goes_away() {
    let scratch = Scratch::new("pipe");
    let db = history_with_a_report(&scratch);
    let db = db.to_str().unwrap();
    let policy = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/lint/good-policy.txt");
    let commands: Vec<Vec<&str>> = vec![
        vec!["lint", "--domain", "example.com", "--policy", policy],
        vec![
            "lint",
            "--domain",
            "example.com",
            "--policy",
            policy,
            "--format",
            "json",
        ],
        vec!["history", "example.com", "--db", db],
        vec!["history", "example.com", "--db", db, "--format", "json"],
        vec!["reports", "summary", "--db", db],
        vec!["reports", "summary", "--db", db, "--format", "json"],
        vec!["reports", "summary", "--db", db, "--format", "csv"],
        vec!["reports", "compare", "example.com", "--db", db],
        vec![
            "reports",
            "compare",
            "example.com",
            "--db",
            db,
            "--format",
            "json",
        ],
        vec![
            "generate",
            "--domain",
            "example.com",
            "--mx",
            "mx.example.com",
            "--rua",
            "mailto:tlsrpt@example.com",
            "--format",
            "json",
        ],
    ];
    for args in commands {
        let mut child = mxprobe(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The reader goes away before the command writes: its first write fails with
        // EPIPE, as under `| head -0`.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", text(&out));
        assert!(out.stderr.is_empty(), "{args:?}: {}", text(&out));
    }
}

/// A database that cannot be opened is one message naming its cause once.
#[test]
fn a_db_in_a_missing_directory_is_one_clear_message() {
    for args in [
        &["history", "example.com", "--db", "/nonexistent/h.sqlite"][..],
        &["reports", "summary", "--db", "/nonexistent/h.sqlite"][..],
    ] {
        let out = mxprobe(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert_eq!(
            stderr.matches("unable to open database file").count(),
            1,
            "{args:?}: {stderr}"
        );
        assert!(stderr.starts_with("mxprobe: --db /nonexistent/h.sqlite: cannot open"));
    }
    // A named report path that does not exist is an error too.
    let out = mxprobe(&[
        "reports",
        "ingest",
        "--db",
        "/nonexistent/h.sqlite",
        "/nonexistent",
    ])
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "mxprobe: /nonexistent: no such file or directory\n"
    );
}

#[test]
fn a_db_that_is_not_a_regular_file_is_refused_and_nothing_is_created_beside_it() {
    let scratch = Scratch::new("not-a-file");
    let directory = scratch.0.join("a-directory");
    std::fs::create_dir(&directory).unwrap();
    let reports = scratch.0.to_str().unwrap().to_owned();
    for db in [PathBuf::from("/dev/null"), directory] {
        let db_text = db.to_str().unwrap();
        for args in [
            vec!["history", "example.com", "--db", db_text],
            vec!["reports", "summary", "--db", db_text],
            vec!["reports", "ingest", "--db", db_text, &reports],
            // Refused before anything is scanned.
            vec!["monitor", "example.com", "--db", db_text],
        ] {
            let out = mxprobe(&args).output().unwrap();
            assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                stderr.contains(&format!(
                    "{db_text} is not a regular file; give the path of an SQLite file for the \
                     history (it is created when missing)"
                )),
                "{args:?}: {}",
                text(&out)
            );
            let mut lock = db.clone().into_os_string();
            lock.push(".lock");
            assert!(!PathBuf::from(&lock).exists(), "{args:?} created {lock:?}");
        }
    }
}
