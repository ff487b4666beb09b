//! The exec channel: runs a program of the user's (directly, no shell), writes the alert JSON
//! to its standard input and closes it, and waits for it within a timeout. The program runs
//! in a process group of its own; when the timeout passes (or the delivery is abandoned) the
//! whole group is killed, so that what the program started dies with it. Exit status 0 means
//! delivered; otherwise the error carries the status and the start of its standard error.
//!
//! The program gets this process's environment without mxprobe's own secrets
//! ([`is_secret_variable`]: the SMTP credentials, the webhook URL and the webhook headers),
//! plus `MXPROBE_ALERT_DOMAIN` and `MXPROBE_ALERT_SEVERITY` so that a short script can route
//! on them without parsing JSON. Its standard output is discarded.
//!
//! I/O: starts one process per delivery, talks to it through pipes, and signals its process
//! group.

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::process::{ChildStderr, ChildStdin, Command};

use rustix::process::{Pid, Signal, kill_process_group};

use super::email::{SMTP_PASSWORD_VAR, SMTP_USER_VAR};
use super::webhook::{WEBHOOK_HEADER_PREFIX, WEBHOOK_URL_VAR};
use super::{DeliveryError, one_line};
use mxprobe_core::alert::Alert;

/// The variable that tells the program the alert's domain (`example.com`).
pub const ALERT_DOMAIN_VAR: &str = "MXPROBE_ALERT_DOMAIN";

/// The variable that tells the program the alert's severity (`notice`, `warning`, `error`).
pub const ALERT_SEVERITY_VAR: &str = "MXPROBE_ALERT_SEVERITY";

/// How many bytes of the program's standard error an error keeps.
pub const STDERR_LIMIT: usize = 500;

/// A program to run per alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exec {
    program: PathBuf,
    args: Vec<String>,
    timeout: Duration,
}

impl Exec {
    /// Runs `program` with `args` (no shell: no globbing, quoting or variables), allowing it
    /// `timeout` from start to exit.
    ///
    /// A program that leaves a background process holding its standard error open counts as
    /// running until that process closes it; at the timeout the program's whole process group
    /// is killed, that background process included.
    pub fn new(program: PathBuf, args: Vec<String>, timeout: Duration) -> Self {
        Self {
            program,
            args,
            timeout,
        }
    }

    /// The program's path.
    pub fn program(&self) -> &Path {
        &self.program
    }

    /// One run of the program with `alert` on its standard input.
    pub async fn deliver(&self, alert: &Alert) -> Result<(), DeliveryError> {
        let program = self.program.display().to_string();
        let json = serde_json::to_vec(alert).map_err(|e| DeliveryError::AlertJson {
            channel: "exec",
            target: program.clone(),
            reason: e.to_string(),
        })?;
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .env(ALERT_DOMAIN_VAR, alert.domain.as_str())
            .env(ALERT_SEVERITY_VAR, alert.severity().as_str())
            // A group of its own (its id is the program's pid), so that the program and what
            // it starts can be killed together.
            .process_group(0)
            .kill_on_drop(true);
        for name in secret_names(std::env::vars_os().map(|(name, _)| name)) {
            command.env_remove(name);
        }
        let mut child = command.spawn().map_err(|e| DeliveryError::ExecSpawn {
            program: program.clone(),
            reason: e.to_string(),
        })?;
        // Killed when this delivery ends unfinished: at the timeout, or when the caller
        // drops it.
        let mut group = GroupGuard(
            child
                .id()
                .and_then(|id| i32::try_from(id).ok())
                .and_then(Pid::from_raw),
        );
        let stdin = child.stdin.take().expect("stdin was set to piped");
        let stderr = child.stderr.take().expect("stderr was set to piped");

        let mut captured = Vec::new();
        let run = async {
            let (fed, (exited, ())) = tokio::join!(feed(stdin, &json), async {
                tokio::join!(child.wait(), read_capped(stderr, &mut captured))
            });
            (fed, exited)
        };
        let (fed, exited) = match tokio::time::timeout(self.timeout, run).await {
            Ok(outcome) => outcome,
            Err(_elapsed) => {
                // SIGKILL to the whole group, then reap the program; an error here means it
                // is already gone.
                group.kill();
                let _ = child.kill().await;
                return Err(DeliveryError::ExecTimeout {
                    program,
                    timeout: self.timeout,
                });
            }
        };
        // It ended by itself: whatever it left running in the background is its business.
        group.0 = None;
        let status = exited.map_err(|e| DeliveryError::ExecIo {
            program: program.clone(),
            reason: format!("waiting for it to exit failed: {e}"),
        })?;
        if !status.success() {
            return Err(DeliveryError::ExecFailed {
                program,
                status,
                stderr: one_line(&String::from_utf8_lossy(&captured), STDERR_LIMIT),
            });
        }
        fed.map_err(|e| DeliveryError::ExecIo {
            program,
            reason: format!("writing the alert to its standard input failed: {e}"),
        })
    }
}

/// Writes the alert and closes standard input. A program that exits without reading it
/// (a broken pipe) is judged by its exit status alone.
async fn feed(mut stdin: ChildStdin, json: &[u8]) -> io::Result<()> {
    match stdin.write_all(json).await {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        written => written,
    }
    // Dropping `stdin` closes it: the program sees end of input.
}

/// Keeps the first [`STDERR_LIMIT`] bytes and reads the rest away to the end, so that a
/// talkative program never blocks on a full pipe.
async fn read_capped(mut stderr: ChildStderr, captured: &mut Vec<u8>) {
    let mut chunk = [0_u8; 4096];
    loop {
        match stderr.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                let room = STDERR_LIMIT.saturating_sub(captured.len());
                captured.extend_from_slice(&chunk[..n.min(room)]);
            }
        }
    }
}

/// The process group of a running program, killed (SIGKILL) when this is dropped while it
/// still names one.
struct GroupGuard(Option<Pid>);

impl GroupGuard {
    /// Kills every process of the group; an error means none is left.
    fn kill(&mut self) {
        if let Some(group) = self.0.take() {
            let _ = kill_process_group(group, Signal::KILL);
        }
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Whether an environment variable holds one of mxprobe's secrets, which a program run for
/// an alert never sees: the relay credentials (`MXPROBE_SMTP_USER`, `MXPROBE_SMTP_PASSWORD`),
/// the webhook URL (`MXPROBE_WEBHOOK_URL`) and the webhook headers
/// (`MXPROBE_WEBHOOK_HEADER_*`).
pub fn is_secret_variable(name: &str) -> bool {
    name == SMTP_USER_VAR
        || name == SMTP_PASSWORD_VAR
        || name == WEBHOOK_URL_VAR
        || name.starts_with(WEBHOOK_HEADER_PREFIX)
}

/// Which of `names` hold mxprobe's secrets and stay out of the program's environment.
fn secret_names(names: impl Iterator<Item = OsString>) -> Vec<OsString> {
    names
        .filter(|name| name.to_str().is_some_and(is_secret_variable))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;
    use std::time::Instant;

    use super::*;
    use crate::notify::test_support::{alert, far};
    use crate::notify::{Channel, RetryPolicy, deliver_with_retry};

    /// A directory of its own for one test, removed at the end.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> Self {
            let dir = std::env::temp_dir()
                .join(format!("mxprobe-notify-exec-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }

        /// An executable `/bin/sh` script with this body.
        fn script(&self, name: &str, body: &str) -> PathBuf {
            let path = self.0.join(name);
            std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
            path
        }

        fn path(&self, name: &str) -> String {
            self.0.join(name).display().to_string()
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn exec(program: PathBuf, args: &[String], timeout: Duration) -> Exec {
        Exec::new(program, args.to_vec(), timeout)
    }

    #[tokio::test]
    async fn the_program_reads_the_alert_json_and_sees_domain_and_severity() {
        let dir = TempDir::new("copy");
        let program = dir.script(
            "copy.sh",
            "cat > \"$1\"\nprintf '%s %s\\n' \"$MXPROBE_ALERT_DOMAIN\" \"$MXPROBE_ALERT_SEVERITY\" > \"$2\"",
        );
        let args = [dir.path("alert.json"), dir.path("env.txt")];
        let alert = alert();
        exec(program, &args, Duration::from_secs(10))
            .deliver(&alert)
            .await
            .unwrap();

        let written = std::fs::read(&args[0]).unwrap();
        assert_eq!(written, serde_json::to_vec(&alert).unwrap());
        let back: Alert = serde_json::from_slice(&written).unwrap();
        assert_eq!(back, alert);
        assert_eq!(
            std::fs::read_to_string(&args[1]).unwrap(),
            "example.com error\n"
        );
    }

    #[tokio::test]
    async fn a_failing_program_is_an_error_with_its_status_and_stderr() {
        let dir = TempDir::new("fail");
        let program = dir.script(
            "fail.sh",
            "echo 'relay said no:' >&2\necho '  554 denied' >&2\nexit 3",
        );
        let err = exec(program.clone(), &[], Duration::from_secs(10))
            .deliver(&alert())
            .await
            .unwrap_err();
        let DeliveryError::ExecFailed { status, stderr, .. } = &err else {
            panic!("{err:?}");
        };
        assert_eq!(status.code(), Some(3));
        assert_eq!(stderr, "relay said no: 554 denied");
        assert_eq!(
            err.to_string(),
            format!(
                "exec {}: exit status: 3; stderr: relay said no: 554 denied",
                program.display()
            )
        );
        assert!(!err.is_permanent());
    }

    #[tokio::test]
    async fn only_the_first_500_bytes_of_stderr_are_kept_and_the_rest_is_drained() {
        let dir = TempDir::new("noisy");
        // 200 000 bytes: more than a pipe holds, so the program finishes only if the pipe
        // is read to the end.
        let program = dir.script(
            "noisy.sh",
            "head -c 200000 /dev/zero | tr '\\0' x >&2\nexit 1",
        );
        let err = exec(program, &[], Duration::from_secs(10))
            .deliver(&alert())
            .await
            .unwrap_err();
        let DeliveryError::ExecFailed { stderr, .. } = &err else {
            panic!("{err:?}");
        };
        assert_eq!(*stderr, "x".repeat(STDERR_LIMIT));
    }

    #[tokio::test]
    async fn a_program_past_its_timeout_is_killed() {
        let dir = TempDir::new("sleep");
        let program = dir.script("sleep.sh", "exec sleep 30");
        let started = Instant::now();
        let err = exec(program, &[], Duration::from_millis(300))
            .deliver(&alert())
            .await
            .unwrap_err();
        assert!(
            matches!(err, DeliveryError::ExecTimeout { timeout, .. }
                if timeout == Duration::from_millis(300)),
            "{err:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        assert!(
            err.to_string()
                .ends_with("still running after 300ms, so it was killed")
        );
    }

    #[tokio::test]
    async fn a_timed_out_program_dies_with_the_processes_it_started() {
        let dir = TempDir::new("group");
        // A child in the background that keeps its standard error open and records its pid,
        // and a grandchild under it: both must die with the program at the timeout.
        let pids = dir.path("pids.txt");
        let program = dir.script(
            "spawner.sh",
            "sh -c 'sleep 300 & echo $! >> \"$1\"; wait' inner \"$1\" &\necho $! >> \"$1\"\nsleep 300",
        );
        let started = Instant::now();
        let err = exec(
            program,
            std::slice::from_ref(&pids),
            Duration::from_millis(500),
        )
        .deliver(&alert())
        .await
        .unwrap_err();
        assert!(matches!(err, DeliveryError::ExecTimeout { .. }), "{err:?}");
        assert!(started.elapsed() < Duration::from_secs(10));
        let recorded: Vec<u32> = std::fs::read_to_string(&pids)
            .unwrap()
            .split_whitespace()
            .map(|p| p.parse().unwrap())
            .collect();
        assert_eq!(recorded.len(), 2, "{recorded:?}");
        // SIGKILL is delivered at once, but a killed process stays a zombie until its parent
        // (init, once the program is gone) reaps it: wait for each to leave or turn zombie.
        for pid in recorded {
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                let state = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .ok()
                    .and_then(|stat| {
                        stat.rsplit_once(") ")
                            .and_then(|(_, rest)| rest.chars().next())
                    });
                match state {
                    None | Some('Z' | 'X') => break,
                    Some(other) => assert!(
                        Instant::now() < deadline,
                        "process {pid} still running (state {other})"
                    ),
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }

    #[tokio::test]
    async fn a_program_that_ignores_its_input_is_judged_by_its_status() {
        let dir = TempDir::new("ignore");
        let program = dir.script("ignore.sh", "exit 0");
        exec(program, &[], Duration::from_secs(10))
            .deliver(&alert())
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn failed_runs_are_retried_up_to_the_attempts() {
        let dir = TempDir::new("retry");
        let program = dir.script("count.sh", "echo run >> \"$1\"\nexit 75");
        let counter = dir.path("runs.txt");
        let channel = Channel::Exec(exec(
            program,
            std::slice::from_ref(&counter),
            Duration::from_secs(10),
        ));
        let mut retry = RetryPolicy {
            attempts: 3,
            initial: Duration::from_millis(5),
            max: Duration::from_millis(10),
        };
        let err = deliver_with_retry(&channel, &alert(), &retry, far())
            .await
            .unwrap_err();
        assert!(
            matches!(&err, DeliveryError::ExecFailed { status, .. } if status.code() == Some(75)),
            "{err:?}"
        );
        assert_eq!(
            std::fs::read_to_string(&counter).unwrap(),
            "run\nrun\nrun\n"
        );

        std::fs::remove_file(&counter).unwrap();
        retry.attempts = 0;
        deliver_with_retry(&channel, &alert(), &retry, far())
            .await
            .unwrap_err();
        assert_eq!(std::fs::read_to_string(&counter).unwrap(), "run\n");
    }

    #[tokio::test]
    async fn a_timeout_is_not_retried_and_the_deadline_bounds_the_retries() {
        let dir = TempDir::new("deadline");
        let counter = dir.path("runs.txt");
        let retry = RetryPolicy {
            attempts: 3,
            initial: Duration::from_millis(10),
            max: Duration::from_millis(10),
        };
        // A program that hangs: one attempt, then the timeout ends the delivery.
        let hang = dir.script("hang.sh", "echo run >> \"$1\"\nexec sleep 30");
        let channel = Channel::Exec(exec(
            hang.clone(),
            std::slice::from_ref(&counter),
            Duration::from_millis(300),
        ));
        let err = deliver_with_retry(&channel, &alert(), &retry, far())
            .await
            .unwrap_err();
        assert!(matches!(err, DeliveryError::ExecTimeout { .. }), "{err:?}");
        assert!(err.is_timeout() && !err.is_permanent());
        assert_eq!(std::fs::read_to_string(&counter).unwrap(), "run\n");

        // The deadline comes before the program's own timeout: the attempt is abandoned at
        // the deadline, and the program is killed with it.
        std::fs::remove_file(&counter).unwrap();
        let channel = Channel::Exec(exec(
            hang,
            std::slice::from_ref(&counter),
            Duration::from_secs(30),
        ));
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + Duration::from_millis(400);
        let err = deliver_with_retry(&channel, &alert(), &retry, deadline)
            .await
            .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(
            matches!(&err, DeliveryError::Deadline { channel: "exec", after, .. }
                if *after >= Duration::from_millis(300)),
            "{err:?}"
        );
        assert!(err.is_timeout());
        assert!(
            err.to_string()
                .contains(": the run's delivery deadline came "),
            "{err}"
        );

        // A failing program whose next pause would end past the deadline: no second run.
        std::fs::remove_file(&counter).unwrap();
        let fail = dir.script("fail.sh", "echo run >> \"$1\"\nexit 75");
        let channel = Channel::Exec(exec(
            fail,
            std::slice::from_ref(&counter),
            Duration::from_secs(10),
        ));
        let slow = RetryPolicy {
            attempts: 3,
            initial: Duration::from_secs(60),
            max: Duration::from_secs(60),
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let err = deliver_with_retry(&channel, &alert(), &slow, deadline)
            .await
            .unwrap_err();
        assert!(matches!(err, DeliveryError::ExecFailed { .. }), "{err:?}");
        assert_eq!(std::fs::read_to_string(&counter).unwrap(), "run\n");
    }

    #[tokio::test]
    async fn a_missing_program_is_a_permanent_error_tried_once() {
        let channel = Channel::Exec(exec(
            PathBuf::from("/nonexistent/mxprobe-hook"),
            &[],
            Duration::from_secs(10),
        ));
        assert_eq!(channel.name(), "exec");
        assert_eq!(channel.target(), "/nonexistent/mxprobe-hook");
        let err = deliver_with_retry(&channel, &alert(), &RetryPolicy::default(), far())
            .await
            .unwrap_err();
        assert!(matches!(err, DeliveryError::ExecSpawn { .. }), "{err:?}");
        assert!(err.is_permanent());
        assert_eq!(err.channel(), "exec");
        assert_eq!(err.target(), "/nonexistent/mxprobe-hook");
        assert!(
            err.to_string()
                .starts_with("exec /nonexistent/mxprobe-hook: cannot start it: "),
            "{err}"
        );
    }

    #[test]
    fn secrets_stay_out_of_the_programs_environment() {
        let names = [
            "PATH",
            "MXPROBE_SMTP_USER",
            "MXPROBE_SMTP_PASSWORD",
            "MXPROBE_WEBHOOK_URL",
            "MXPROBE_WEBHOOK_HEADER_AUTHORIZATION",
            "MXPROBE_CONFIG",
            "MXPROBE_SMTP_RELAY",
            "HOME",
        ];
        let removed = secret_names(names.iter().map(OsString::from));
        assert_eq!(
            removed,
            [
                "MXPROBE_SMTP_USER",
                "MXPROBE_SMTP_PASSWORD",
                "MXPROBE_WEBHOOK_URL",
                "MXPROBE_WEBHOOK_HEADER_AUTHORIZATION"
            ]
        );
    }
}
