//! `mxprobe monitor` end to end: two runs of the lab with a change in between (an MX
//! certificate replaced by an expired one, an MX dropped from the policy) deliver exactly the
//! expected alert to a local webhook receiver, a local SMTP relay (STARTTLS) and an `--exec`
//! program; a third, unchanged run sends nothing; a webhook that fails twice then succeeds
//! gets the alert once; a run killed before delivery loses nothing; the history and the
//! Prometheus file are written.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mxprobe_core::domain::DomainName;
use mxprobe_lab::scenario::CertProfile;
use serde_json::Value;
use time::OffsetDateTime;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use crate::support::{LabEnv, TestPki};

/// What the webhook receiver answers, in order (then 200 for ever), and what it saw.
#[derive(Default)]
struct Receiver {
    script: Vec<u16>,
    /// Every request: (status answered, body).
    seen: Vec<(u16, String)>,
    /// Accept connections but never answer (a hung endpoint).
    hang: bool,
}

/// An HTTP/1.1 receiver on loopback that records POST bodies.
async fn start_receiver(state: Arc<Mutex<Receiver>>) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let state = Arc::clone(&state);
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
                let mut body = vec![0; length];
                reader.read_exact(&mut body).await.unwrap();
                let status = {
                    let mut s = state.lock().unwrap();
                    if s.hang {
                        s.seen
                            .push((0, String::from_utf8_lossy(&body).into_owned()));
                        None
                    } else {
                        let status = if s.script.is_empty() {
                            200
                        } else {
                            s.script.remove(0)
                        };
                        s.seen
                            .push((status, String::from_utf8_lossy(&body).into_owned()));
                        Some(status)
                    }
                };
                let Some(status) = status else {
                    tokio::time::sleep(Duration::from_secs(600)).await;
                    return;
                };
                let response = format!(
                    "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                );
                let _ = reader.get_mut().write_all(response.as_bytes()).await;
            });
        }
    });
    addr
}

/// The messages an SMTP relay received: (MAIL FROM, RCPT TO, data).
type Mails = Arc<Mutex<Vec<(String, Vec<String>, String)>>>;

/// An SMTP relay on loopback that requires STARTTLS before accepting mail.
async fn start_relay(pki: &TestPki, mails: Mails) -> u16 {
    let leaf = pki.leaf(&["localhost"], leaf_window_now());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(pki.chain(&leaf), leaf.private_key())
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((mut tcp, _)) = listener.accept().await else {
                continue;
            };
            let acceptor = acceptor.clone();
            let mails = Arc::clone(&mails);
            tokio::spawn(async move {
                if tcp.write_all(b"220 relay.test ESMTP\r\n").await.is_err() {
                    return;
                }
                // Before TLS: EHLO offers STARTTLS; nothing else is accepted.
                let mut plain = BufReader::new(tcp);
                loop {
                    let mut line = String::new();
                    if plain.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
                    let reply: &[u8] = match verb.as_str() {
                        "EHLO" => b"250-relay.test\r\n250 STARTTLS\r\n",
                        "STAR" => b"220 go ahead\r\n",
                        "QUIT" => b"221 bye\r\n",
                        _ => b"530 5.7.0 must issue STARTTLS first\r\n",
                    };
                    if plain.get_mut().write_all(reply).await.is_err() {
                        return;
                    }
                    if verb == "STAR" {
                        break;
                    }
                    if verb == "QUIT" {
                        return;
                    }
                }
                let Ok(tls) = acceptor.accept(plain.into_inner()).await else {
                    return;
                };
                serve_mail(tls, mails).await;
            });
        }
    });
    port
}

async fn serve_mail<S: AsyncRead + AsyncWrite + Unpin>(stream: S, mails: Mails) {
    let mut s = BufReader::new(stream);
    let (mut from, mut to) = (String::new(), Vec::new());
    loop {
        let mut line = String::new();
        if s.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        let upper = line.to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") {
            b"250-relay.test\r\n250 8BITMIME\r\n"
        } else if upper.starts_with("MAIL FROM:") {
            from = line[10..].trim().to_owned();
            b"250 ok\r\n"
        } else if upper.starts_with("RCPT TO:") {
            to.push(line[8..].trim().to_owned());
            b"250 ok\r\n"
        } else if upper.starts_with("DATA") {
            if s.get_mut().write_all(b"354 go\r\n").await.is_err() {
                return;
            }
            let mut data = String::new();
            loop {
                let mut l = String::new();
                if s.read_line(&mut l).await.unwrap_or(0) == 0 {
                    return;
                }
                if l == ".\r\n" {
                    break;
                }
                data.push_str(&l);
            }
            mails
                .lock()
                .unwrap()
                .push((from.clone(), std::mem::take(&mut to), data));
            b"250 queued\r\n"
        } else if upper.starts_with("QUIT") {
            let _ = s.get_mut().write_all(b"221 bye\r\n").await;
            return;
        } else {
            b"250 ok\r\n"
        };
        if s.get_mut().write_all(reply).await.is_err() {
            return;
        }
    }
}

/// A leaf window around the real clock (the relay is reached by lettre at the real time).
fn leaf_window_now() -> mxprobe_testpki::Validity {
    let now = OffsetDateTime::now_utc();
    mxprobe_testpki::Validity::new(
        now - time::Duration::days(1),
        now + time::Duration::days(90),
    )
}

/// The lab, a webhook receiver, an SMTP relay and an `--exec` program, all local.
struct Monitoring {
    env: LabEnv,
    webhook: Arc<Mutex<Receiver>>,
    webhook_addr: std::net::SocketAddr,
    mails: Mails,
    relay_port: u16,
    exec_log: PathBuf,
}

impl Monitoring {
    fn start(tag: &str) -> Self {
        let mut env = LabEnv::start(&format!("monitor-{tag}"));
        let relay_pki = TestPki::root("mxprobe test relay CA");
        let relay_ca = env.write("relay-root.pem", relay_pki.ca.cert().pem());
        // The relay's CA is trusted beside the lab's (a private CA for the mail relay).
        let lab_ca = env.env["MXPROBE_CA_FILE"].clone();
        env.env.insert(
            "MXPROBE_CA_FILE",
            format!("{lab_ca}:{}", relay_ca.display()),
        );
        let webhook = Arc::new(Mutex::new(Receiver::default()));
        let mails: Mails = Arc::default();
        let (webhook_addr, relay_port) = env.rt.block_on(async {
            (
                start_receiver(Arc::clone(&webhook)).await,
                start_relay(&relay_pki, Arc::clone(&mails)).await,
            )
        });
        let exec_log = env.dir.join("exec-alerts.jsonl");
        let script = env.write(
            "on-alert.sh",
            &format!(
                "#!/bin/sh\n# One alert per line, as received on stdin.\ntr -d '\\n' >> '{}'\necho >> '{}'\n",
                exec_log.display(),
                exec_log.display()
            ),
        );
        Command::new("chmod")
            .args(["+x", script.to_str().unwrap()])
            .status()
            .unwrap();
        Self {
            env,
            webhook,
            webhook_addr,
            mails,
            relay_port,
            exec_log,
        }
    }

    fn command(&self) -> Command {
        self.env.command()
    }

    /// `mxprobe monitor good.test` with every channel.
    fn monitor_args(&self) -> Vec<String> {
        [
            "monitor",
            "good.test",
            "--webhook",
            &format!("http://{}/hooks/mxprobe?token=secret", self.webhook_addr),
            "--email",
            "postmaster@ops.example",
            "--email-from",
            "mxprobe@ops.example",
            "--smtp-relay",
            &format!("localhost:{}", self.relay_port),
            "--exec",
            self.env.dir.join("on-alert.sh").to_str().unwrap(),
            "--prometheus",
            self.env.dir.join("mxprobe.prom").to_str().unwrap(),
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect()
    }

    fn run(&self, args: &[String]) -> Output {
        self.command().args(args).output().unwrap()
    }

    fn webhook_bodies(&self) -> Vec<Value> {
        self.webhook
            .lock()
            .unwrap()
            .seen
            .iter()
            .filter(|(status, _)| *status == 200)
            .map(|(_, b)| serde_json::from_str(b).unwrap())
            .collect()
    }

    fn exec_alerts(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.exec_log)
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

fn kinds(alert: &Value) -> Vec<String> {
    let mut k: Vec<String> = alert["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["kind"].as_str().unwrap().to_owned())
        .collect();
    k.sort();
    k.dedup();
    k
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn a_change_between_runs_alerts_every_channel_exactly_once() {
    let m = Monitoring::start("change");
    let args = m.monitor_args();

    // Run 1: good.test passes; the first run has nothing to report.
    let out = m.run(&args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        out.stdout.is_empty(),
        "quiet when nothing changed: {}",
        text(&out)
    );
    assert!(m.webhook_bodies().is_empty());
    assert!(m.mails.lock().unwrap().is_empty());
    assert!(m.exec_alerts().is_empty());
    let prom = std::fs::read_to_string(m.env.dir.join("mxprobe.prom")).unwrap();
    assert!(
        prom.contains("mxprobe_domain_status{domain=\"good.test\",status=\"pass\"} 1"),
        "{prom}"
    );

    // The change: mx1.good.test now presents an expired certificate, and the policy no
    // longer lists mx2.good.test.
    let mx1 = DomainName::parse("mx1.good.test").unwrap();
    let good = DomainName::parse("good.test").unwrap();
    m.env
        .lab
        .replace_certificate(&mx1, CertProfile::Expired)
        .unwrap();
    m.env
        .lab
        .set_policy(
            &good,
            "version: STSv1\nmode: enforce\nmx: mx1.good.test\nmax_age: 604800\n",
        )
        .unwrap();

    // Run 2: one alert for good.test, on every channel.
    let out = m.run(&args);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(printed.contains("good.test"), "{printed}");
    let hooks = m.webhook_bodies();
    assert_eq!(hooks.len(), 1, "{hooks:#?}");
    let alert = &hooks[0];
    assert_eq!(alert["schema_version"], 1);
    assert_eq!(alert["domain"], "good.test");
    assert_eq!(alert["status"], "fail");
    assert_eq!(alert["previous_status"], "pass");
    assert_eq!(
        kinds(alert),
        ["certificate-changed", "new-failure", "policy-changed"],
        "{alert:#}"
    );
    let new_failures: Vec<&Value> = alert["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["kind"] == "new-failure")
        .collect();
    let mentions = |needle: &str| {
        new_failures
            .iter()
            .any(|c| c["message"].as_str().unwrap().contains(needle))
    };
    assert!(mentions("smtp.cert.leaf-expired"), "{alert:#}");
    assert!(mentions("mx2.good.test"), "{alert:#}");
    let changed: Vec<&Value> = alert["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["kind"] == "certificate-changed")
        .collect();
    assert_eq!(changed.len(), 1, "{alert:#}");
    assert_eq!(changed[0]["subject"]["mx"], "mx1.good.test");
    let exec = m.exec_alerts();
    assert_eq!(exec.len(), 1);
    assert_eq!(&exec[0], alert);
    {
        let mails = m.mails.lock().unwrap();
        assert_eq!(mails.len(), 1, "{mails:?}");
        let (from, to, data) = &mails[0];
        assert!(from.contains("mxprobe@ops.example"), "{from}");
        assert_eq!(to.len(), 1);
        assert!(to[0].contains("postmaster@ops.example"), "{to:?}");
        assert!(
            data.contains("Subject: mxprobe: good.test is FAILING"),
            "{data}"
        );
    }
    let prom = std::fs::read_to_string(m.env.dir.join("mxprobe.prom")).unwrap();
    assert!(
        prom.contains("mxprobe_domain_status{domain=\"good.test\",status=\"fail\"} 1"),
        "{prom}"
    );

    // Run 3: nothing changed, nothing sent.
    let out = m.run(&args);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(out.stdout.is_empty(), "{}", text(&out));
    assert_eq!(m.webhook_bodies().len(), 1);
    assert_eq!(m.exec_alerts().len(), 1);
    assert_eq!(m.mails.lock().unwrap().len(), 1);

    // The history shows the three runs.
    let out = m
        .command()
        .args(["history", "good.test", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let timeline: Value = serde_json::from_slice(&out.stdout).unwrap();
    let entries = timeline.as_array().unwrap();
    assert_eq!(entries.len(), 3, "{timeline:#}");
    let statuses: Vec<&str> = entries
        .iter()
        .map(|e| e["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["pass", "fail", "fail"]);
}

#[test]
fn failing_channels_retry_and_never_lose_an_alert() {
    let m = Monitoring::start("retry");
    let hook = format!("http://{}/hook", m.webhook_addr);
    let args = |extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = ["monitor", "expired.test", "--webhook", &hook]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        a.extend(extra.iter().map(|s| (*s).to_owned()));
        a
    };
    // The webhook answers 500 twice, then 200: the alert arrives once.
    m.webhook.lock().unwrap().script = vec![500, 500];
    let out = m.run(&args(&[]));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    {
        let w = m.webhook.lock().unwrap();
        let statuses: Vec<u16> = w.seen.iter().map(|(s, _)| *s).collect();
        assert_eq!(statuses, [500, 500, 200], "{}", text(&out));
    }
    assert_eq!(m.webhook_bodies().len(), 1);

    // A new alert (expired.test's certificate changes) while the webhook hangs: the process
    // is killed after it recorded the alert and before delivery finished.
    let mx = DomainName::parse("mx.expired.test").unwrap();
    m.env
        .lab
        .replace_certificate(&mx, CertProfile::Valid)
        .unwrap();
    m.webhook.lock().unwrap().hang = true;
    let mut child = m
        .command()
        .args(args(&[]))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while m.webhook.lock().unwrap().seen.len() < 4 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the alert never reached the webhook"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(m.webhook_bodies().len(), 1, "nothing new was accepted");

    // The next run (nothing changed since) delivers the pending alert.
    m.webhook.lock().unwrap().hang = false;
    let out = m.run(&args(&[]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let bodies = m.webhook_bodies();
    assert_eq!(bodies.len(), 2, "{bodies:#?}");
    assert_eq!(bodies[1]["domain"], "expired.test");
    assert_eq!(bodies[1]["status"], "pass");
    assert!(kinds(&bodies[1]).contains(&"failure-resolved".to_owned()));
    // And only once: a further run sends nothing.
    let out = m.run(&args(&[]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(m.webhook_bodies().len(), 2);

    // Overlapping runs: a second monitor on the same database is refused (exit 2) while the
    // first holds the lock.
    m.webhook.lock().unwrap().hang = true;
    m.env
        .lab
        .replace_certificate(&mx, CertProfile::Expired)
        .unwrap();
    let mut first = m
        .command()
        .args(args(&[]))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while m.webhook.lock().unwrap().seen.len() < 6 {
        assert!(started.elapsed() < Duration::from_secs(60));
        std::thread::sleep(Duration::from_millis(50));
    }
    let second = m.run(&args(&[]));
    assert_eq!(second.status.code(), Some(2), "{}", text(&second));
    assert!(
        String::from_utf8_lossy(&second.stderr).contains("lock"),
        "{}",
        text(&second)
    );
    first.kill().unwrap();
    first.wait().unwrap();
}
