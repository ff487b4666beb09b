//! `mxprobe monitor` against hostile or broken alert channels, all on loopback: a relay that
//! answers with an endless line (memory stays flat under a limit, the alert stays pending), a
//! webhook receiver that echoes the request in its error page (no secret reaches stderr, the
//! database or the `--exec` program), and channels that hang (each attempt bounded by
//! `--alert-timeout`, the run by `--delivery-deadline`, a hung program killed with its
//! children).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use crate::support::{LabEnv, under_memory_limit};

/// Four lab domains that fail, so that a first run raises four alerts.
const FAILING: [&str; 4] = [
    "expired.test",
    "self-signed.test",
    "unknown-ca.test",
    "wrong-name.test",
];

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Every delivery in the history: (channel, state, attempts, last error), by alert.
fn deliveries(db: &Path) -> Vec<(String, String, i64, Option<String>)> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT channel, state, attempts, last_error FROM deliveries ORDER BY alert_id, channel",
        )
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
}

fn db(env: &LabEnv) -> PathBuf {
    PathBuf::from(&env.env["MXPROBE_DB"])
}

/// An executable `/bin/sh` script in the scratch directory.
fn script(env: &LabEnv, name: &str, body: &str) -> PathBuf {
    let path = env.write(name, &format!("#!/bin/sh\n{body}\n"));
    Command::new("chmod")
        .args(["+x", path.to_str().unwrap()])
        .status()
        .unwrap();
    path
}

/// A relay that greets with `220 ` and then sends `x` without end (at most `cap` bytes per
/// connection), on every connection; counts the connections and the bytes it got out.
async fn endless_relay(cap: usize, connections: Arc<AtomicUsize>, sent: Arc<AtomicUsize>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            connections.fetch_add(1, Ordering::Relaxed);
            let sent = Arc::clone(&sent);
            tokio::spawn(async move {
                if stream.write_all(b"220 ").await.is_err() {
                    return;
                }
                let chunk = vec![b'x'; 64 * 1024];
                let mut here = 0;
                while here < cap && stream.write_all(&chunk).await.is_ok() {
                    here += chunk.len();
                    sent.fetch_add(chunk.len(), Ordering::Relaxed);
                }
            });
        }
    });
    port
}

/// Accepts connections and holds them without a byte (a hung receiver or relay); counts
/// them.
async fn hanging(connections: Arc<AtomicUsize>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            connections.fetch_add(1, Ordering::Relaxed);
            held.push(stream);
        }
    });
    port
}

/// An HTTP receiver that refuses every request with 400 and, as a careless error page does,
/// repeats the whole request in its body: request line, headers and body.
async fn echoing_receiver() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut reader = BufReader::new(stream);
                let mut request = String::new();
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    if let Some((name, value)) = line.split_once(':')
                        && name.eq_ignore_ascii_case("content-length")
                    {
                        length = value.trim().parse().unwrap();
                    }
                    request.push_str(&line);
                    if line == "\r\n" {
                        break;
                    }
                }
                let mut body = vec![0; length];
                reader.read_exact(&mut body).await.unwrap();
                request.push_str(&String::from_utf8_lossy(&body));
                let response = format!(
                    "HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{request}",
                    request.len()
                );
                let _ = reader.get_mut().write_all(response.as_bytes()).await;
            });
        }
    });
    port
}

/// Whether the process is gone or a zombie (killed, not yet reaped by its new parent).
fn dead(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            stat.rsplit_once(") ")
                .and_then(|(_, rest)| rest.chars().next())
        })
        .is_none_or(|state| matches!(state, 'Z' | 'X'))
}

#[test]
fn an_endless_relay_reply_is_cut_at_the_read_limit_with_memory_flat() {
    let env = LabEnv::start("faults-endless-relay");
    let (connections, sent) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    // Each connection is offered 2 GiB: far past the memory limit below, had the client kept
    // reading.
    let port = env.rt.block_on(endless_relay(
        2 * 1024 * 1024 * 1024,
        Arc::clone(&connections),
        Arc::clone(&sent),
    ));
    let relay = format!("127.0.0.1:{port}");
    let run = || {
        let mut command = env.command();
        command.args([
            "monitor",
            "expired.test",
            "--email",
            "ops@example.com",
            "--email-from",
            "mxprobe@monitor.example",
            "--smtp-relay",
            &relay,
        ]);
        under_memory_limit(&command, 512 * 1024 * 1024)
            .output()
            .unwrap()
    };

    let out = run();
    // expired.test fails (1); the run itself went through, the alert is kept.
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "mxprobe: not delivered (kept for the next run): email alert for expired.test: \
             email via 127.0.0.1:{port} (starttls): the relay sent more than 1048576 bytes in \
             one session"
        )),
        "{}",
        text(&out)
    );
    let recorded = deliveries(&db(&env));
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    let (channel, state, attempts, error) = &recorded[0];
    assert_eq!((channel.as_str(), state.as_str()), ("email", "pending"));
    assert_eq!(*attempts, 1, "one delivery recorded per run");
    assert_eq!(
        connections.load(Ordering::Relaxed),
        3,
        "not permanent: tried three times within the run"
    );
    assert!(
        error
            .as_deref()
            .is_some_and(|e| e.contains("more than 1048576 bytes")),
        "{error:?}"
    );
    // Three sessions, each read to the limit: what the relay got out is the limit plus the
    // loopback socket buffers, per session.
    let total = sent.load(Ordering::Relaxed);
    assert!(total < 3 * 32 * 1024 * 1024, "the relay sent {total} bytes");

    // The next run tries the pending alert again (nothing new changed).
    let out = run();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let recorded = deliveries(&db(&env));
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    assert_eq!((recorded[0].1.as_str(), recorded[0].2), ("pending", 2));
    assert_eq!(connections.load(Ordering::Relaxed), 6);
}

#[test]
fn an_echoing_receiver_gets_no_secret_into_stderr_the_database_or_the_program() {
    let env = LabEnv::start("faults-secrets");
    let port = env.rt.block_on(echoing_receiver());
    let env_dump = env.dir.join("program-env.txt");
    let program = script(
        &env,
        "dump-env.sh",
        &format!("env > '{}'", env_dump.display()),
    );
    let secrets = [
        "T123",
        "B456",
        "SeCrEtPaTh",
        "TopSecretSig",
        "hunter2-token",
        "relay-user",
        "relay-pa55",
    ];
    let out = env
        .command()
        .env(
            "MXPROBE_WEBHOOK_URL",
            format!("http://127.0.0.1:{port}/services/T123/B456/SeCrEtPaTh?sig=TopSecretSig"),
        )
        .env(
            "MXPROBE_WEBHOOK_HEADER_AUTHORIZATION",
            "Bearer hunter2-token",
        )
        .env("MXPROBE_SMTP_USER", "relay-user")
        .env("MXPROBE_SMTP_PASSWORD", "relay-pa55")
        .args([
            "monitor",
            "expired.test",
            "--exec",
            program.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The receiver did echo the request: the refusal is reported, without what it repeated.
    assert!(
        stderr.contains(&format!(
            "webhook alert for expired.test: webhook http://127.0.0.1:{port}/…: the receiver \
             answered HTTP 400 (POST … HTTP/1.1"
        )),
        "{}",
        text(&out)
    );
    let recorded = deliveries(&db(&env));
    let webhook: Vec<_> = recorded.iter().filter(|d| d.0 == "webhook").collect();
    assert_eq!(webhook.len(), 1, "{recorded:?}");
    let stored = webhook[0].3.clone().unwrap();
    assert!(stored.contains("answered HTTP 400"), "{stored}");
    let program_env = std::fs::read_to_string(&env_dump).unwrap();
    assert!(
        program_env.contains("MXPROBE_ALERT_DOMAIN=expired.test"),
        "{program_env}"
    );
    for secret in secrets {
        assert!(!stderr.contains(secret), "{secret} in stderr: {stderr}");
        assert!(
            !stored.contains(secret),
            "{secret} in the database: {stored}"
        );
        assert!(
            !program_env.contains(secret),
            "{secret} in the program's environment: {program_env}"
        );
    }
    for var in [
        "MXPROBE_WEBHOOK_URL",
        "MXPROBE_WEBHOOK_HEADER_AUTHORIZATION",
        "MXPROBE_SMTP_USER",
        "MXPROBE_SMTP_PASSWORD",
    ] {
        assert!(
            !program_env.contains(&format!("{var}=")),
            "{var} in {program_env}"
        );
    }
}

#[test]
fn hanging_channels_are_bounded_by_the_alert_timeout_and_the_run_deadline() {
    let env = LabEnv::start("faults-hanging");
    let (hook_connections, relay_connections) =
        (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (hook_port, relay_port) = env.rt.block_on(async {
        (
            hanging(Arc::clone(&hook_connections)).await,
            hanging(Arc::clone(&relay_connections)).await,
        )
    });
    // The program starts a child that keeps running, records its pid, and hangs itself.
    let pids = env.dir.join("child-pids.txt");
    let program = script(
        &env,
        "hang.sh",
        &format!("sleep 300 &\necho $! >> '{}'\nwait", pids.display()),
    );
    let run = |timeout: &str, deadline: &str| {
        let mut args = vec![
            "monitor".to_owned(),
            "--webhook".to_owned(),
            format!("http://127.0.0.1:{hook_port}/hook"),
            "--email".to_owned(),
            "ops@example.com".to_owned(),
            "--email-from".to_owned(),
            "mxprobe@monitor.example".to_owned(),
            "--smtp-relay".to_owned(),
            format!("127.0.0.1:{relay_port}"),
            "--exec".to_owned(),
            program.display().to_string(),
            "--alert-timeout".to_owned(),
            timeout.to_owned(),
            "--delivery-deadline".to_owned(),
            deadline.to_owned(),
        ];
        args.extend(FAILING.iter().map(|d| (*d).to_owned()));
        let started = Instant::now();
        let out = env.command().args(&args).output().unwrap();
        (out, started.elapsed())
    };
    let child_pids = || -> Vec<u32> {
        std::fs::read_to_string(&pids)
            .unwrap_or_default()
            .split_whitespace()
            .map(|p| p.parse().unwrap())
            .collect()
    };

    // Each channel times out on its first alert after 1 s and is left alone for the rest of
    // the run: about 1 s of delivery in all, not 4 alerts × 3 attempts per channel.
    let (out, took) = run("1", "60");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(took < Duration::from_secs(30), "{took:?}\n{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for (channel, target, error) in [
        (
            "webhook",
            format!("http://127.0.0.1:{hook_port}/…"),
            "no complete answer within 1s".to_owned(),
        ),
        (
            "email",
            format!("127.0.0.1:{relay_port} (starttls)"),
            "the relay did not finish within 1s".to_owned(),
        ),
        (
            "exec",
            program.display().to_string(),
            "still running after 1s, so it was killed".to_owned(),
        ),
    ] {
        assert!(
            stderr.contains(&format!(
                "mxprobe: {channel} {target}: 3 more alert(s) not tried in this run (the \
                 channel did not answer in time); they stay pending for the next run"
            )),
            "{channel}: {}",
            text(&out)
        );
        assert_eq!(
            stderr.matches(&error).count(),
            1,
            "{channel} tried once: {}",
            text(&out)
        );
    }
    assert_eq!(hook_connections.load(Ordering::Relaxed), 1);
    assert_eq!(relay_connections.load(Ordering::Relaxed), 1);
    let recorded = deliveries(&db(&env));
    assert_eq!(recorded.len(), 12, "{recorded:?}");
    assert!(recorded.iter().all(|d| d.1 == "pending"), "{recorded:?}");
    let attempts: i64 = recorded.iter().map(|d| d.2).sum();
    assert_eq!(attempts, 3, "one attempt per channel: {recorded:?}");
    // The program's child died with it.
    let children = child_pids();
    assert_eq!(children.len(), 1, "{children:?}");
    let until = Instant::now() + Duration::from_secs(5);
    while !dead(children[0]) {
        assert!(
            Instant::now() < until,
            "the program's child {} lives on",
            children[0]
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    // A deadline shorter than the channels' timeout: every channel is cut off at the
    // deadline, the program killed with its child, and everything stays pending.
    let (out, took) = run("60", "2");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(took < Duration::from_secs(30), "{took:?}\n{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr
            .matches(": the run's delivery deadline came ")
            .count(),
        3,
        "{}",
        text(&out)
    );
    assert_eq!(
        stderr
            .matches(
                "3 more alert(s) not tried in this run (the delivery deadline of 2s for the run \
                 passed)"
            )
            .count(),
        3,
        "{}",
        text(&out)
    );
    let recorded = deliveries(&db(&env));
    assert_eq!(recorded.len(), 12, "{recorded:?}");
    assert!(recorded.iter().all(|d| d.1 == "pending"), "{recorded:?}");
    let children = child_pids();
    assert_eq!(children.len(), 2, "{children:?}");
    let until = Instant::now() + Duration::from_secs(5);
    while !dead(children[1]) {
        assert!(
            Instant::now() < until,
            "the program's child {} lives on",
            children[1]
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
