//! `mxprobe lab` as a user runs it: the export lines evaluated by a shell, every command
//! pointed at the running lab by them, the README's "try it" commands as written, and a
//! clean stop on SIGTERM that leaves no temporary files.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_mxprobe");

/// PATH with the binary under test first.
fn path_with_mxprobe() -> String {
    let bin_dir = Path::new(BIN).parent().unwrap();
    format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// A scratch directory, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "mxprobe-lab-cli-{tag}-{}-{}",
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

fn alive(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|s| s.split(' ').nth(2) == Some("Z"))
}

/// Waits up to 30 s for the process to be gone.
fn gone(pid: i32) -> bool {
    let start = Instant::now();
    while alive(pid) {
        if start.elapsed() > Duration::from_secs(30) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

/// The value of `NAME=value` in the export lines.
fn value<'a>(exports: &'a str, name: &str) -> &'a str {
    exports
        .lines()
        .find_map(|l| {
            l.trim_start_matches("export ")
                .strip_prefix(&format!("{name}="))
        })
        .unwrap_or_else(|| panic!("no {name} in {exports}"))
}

#[test]
fn the_lab_runs_every_command_through_its_exports_and_stops_cleanly_on_sigterm() {
    let scratch = Scratch::new("exports");
    let mut lab = Command::new(BIN)
        .arg("lab")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Everything up to the end of standard output, which the lab closes once it is up.
    let mut exports = String::new();
    for line in BufReader::new(lab.stdout.take().unwrap()).lines() {
        exports.push_str(&line.unwrap());
        exports.push('\n');
    }
    let names: Vec<&str> = exports
        .lines()
        .filter_map(|l| l.strip_prefix("export "))
        .map(|l| l.split('=').next().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "MXPROBE_RESOLVER",
            "MXPROBE_TRUST_ANCHOR",
            "MXPROBE_CA_FILE",
            "MXPROBE_SMTP_PORT",
            "MXPROBE_HTTPS_PORT"
        ],
        "{exports}"
    );
    let last = exports.lines().last().unwrap();
    assert!(
        last.starts_with("# lab domains: ") && last.contains(" good.test "),
        "{last}"
    );
    let pid = i32::try_from(lab.id()).unwrap();
    assert_eq!(value(&exports, "MXPROBE_LAB_PID"), pid.to_string());
    let dir = Path::new(value(&exports, "MXPROBE_TRUST_ANCHOR"))
        .parent()
        .unwrap()
        .to_owned();
    assert!(dir.join("trust-anchor.txt").is_file() && dir.join("lab-root.pem").is_file());

    let run = |command: &str| -> i32 {
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("eval \"$EXPORTS\"; {command}"))
            .env("EXPORTS", &exports)
            .env("PATH", path_with_mxprobe())
            .env("NO_COLOR", "1")
            .current_dir(&scratch.0)
            .output()
            .unwrap();
        out.status.code().unwrap()
    };
    assert_eq!(run("mxprobe scan good.test"), 0);
    assert_eq!(run("mxprobe scan expired.test"), 1);
    assert_eq!(run("mxprobe gate good.test"), 0);
    assert_eq!(
        run("mxprobe monitor --db h.sqlite good.test expired.test --exec cat"),
        1
    );

    rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid).unwrap(),
        rustix::process::Signal::TERM,
    )
    .unwrap();
    let status = lab.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(!dir.exists(), "{} left behind", dir.display());
}

/// The `sh` block of the README's "Try it" section.
fn try_it_commands() -> String {
    let readme = include_str!("../../README.md");
    let section = readme
        .split("\n## Try it\n")
        .nth(1)
        .expect("a Try it section");
    let block = section
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("a sh block");
    block.to_owned()
}

#[test]
fn the_readme_try_it_commands_pass_as_written() {
    let scratch = Scratch::new("try-it");
    let script = try_it_commands();
    assert!(
        script.starts_with("eval \"$(mxprobe lab &)\"\n"),
        "{script}"
    );
    // Files, not pipes: the lab keeps standard error open until it stops.
    let out_path = scratch.0.join("out.txt");
    let err_path = scratch.0.join("err.txt");
    let status = Command::new("sh")
        .arg("-e")
        .arg("-c")
        .arg(&script)
        .env("PATH", path_with_mxprobe())
        .env("NO_COLOR", "1")
        .current_dir(&scratch.0)
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .status()
        .unwrap();
    let err = std::fs::read_to_string(&err_path).unwrap();
    let out = std::fs::read_to_string(&out_path).unwrap();
    let pid: i32 = err
        .split("stop it with: kill ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no lab pid in {err}"));
    let stopped = gone(pid);
    if !stopped {
        let _ = rustix::process::kill_process(
            rustix::process::Pid::from_raw(pid).unwrap(),
            rustix::process::Signal::KILL,
        );
    }
    assert!(status.success(), "{status}: {out}\n{err}");
    assert!(stopped, "the lab did not stop");
    assert!(out.contains("good.test  OK"), "{out}");
    assert!(out.contains("expired.test is FAILING"), "the alert: {out}");
    assert!(out.contains("expired.test: 1 run"), "the history: {out}");
    let err = std::fs::read_to_string(&err_path).unwrap();
    assert!(err.ends_with("mxprobe lab: stopped\n"), "{err}");
    assert!(
        !Path::new(&std::env::temp_dir())
            .join(format!("mxprobe-lab-{pid}"))
            .exists()
    );
}
