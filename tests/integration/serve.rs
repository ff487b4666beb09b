//! `mxprobe serve` as Prometheus uses it: the binary started on a free loopback port against
//! the lab, scraped over HTTP. The answers for a good and a failing domain; one probe per
//! target within --min-interval (counted in lab SMTP connections); one SMTP probe shared by
//! concurrent scrapes of domains with the same MX host; one --per-ip budget over the scrapes
//! of every module, and probes shared between modules only when alike; an answer before the
//! scrape timeout; 400, 404, 405, 413 and 414 answers, and the header read timeout; SIGTERM
//! draining a probe in flight; `promtool check metrics` on /probe and /metrics; the alerting rules under
//! `promtool test rules`; and a real Prometheus scraping two lab domains through the
//! exporter with the scrape configuration of docs/monitoring.md.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::LabEnv;
use crate::support::in_ci;

/// `mxprobe serve` started by a test, stopped (SIGKILL) on drop if still running.
struct Serve {
    child: Child,
    addr: SocketAddr,
    /// The rest of its standard error, read by a thread.
    stderr: std::sync::mpsc::Receiver<String>,
}

impl Serve {
    /// Starts `mxprobe serve --listen 127.0.0.1:0 <args>` with the lab's environment and
    /// waits for its "listening on" line.
    fn start(lab: &LabEnv, args: &[&str]) -> Self {
        let mut child = lab
            .command()
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let first = lines
            .next()
            .expect("serve wrote nothing on stderr")
            .unwrap();
        let addr: SocketAddr = first
            .strip_prefix("mxprobe serve: listening on http://")
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_else(|| panic!("not the listening line: {first}"))
            .parse()
            .unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Self {
            child,
            addr,
            stderr: rx,
        }
    }

    fn get(&self, path: &str) -> Reply {
        request(self.addr, &format!("GET {path} HTTP/1.1\r\n"), "")
    }

    fn get_with(&self, path: &str, headers: &str) -> Reply {
        request(self.addr, &format!("GET {path} HTTP/1.1\r\n"), headers)
    }

    /// The value of a sample of /metrics (0 when absent).
    fn metric(&self, name: &str) -> f64 {
        sample(&self.get("/metrics").body, name).unwrap_or(0.0)
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP answer.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: String,
    body: String,
}

/// Sends `head` (request line and headers, without the Host and Connection headers) and
/// reads the whole answer.
fn request(addr: SocketAddr, line: &str, headers: &str) -> Reply {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    let text = format!("{line}Host: {addr}\r\nConnection: close\r\n{headers}\r\n");
    stream.write_all(text.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    parse_reply(&raw)
}

fn parse_reply(raw: &[u8]) -> Reply {
    let text = String::from_utf8_lossy(raw).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no end of headers in {text:?}"));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    Reply {
        status,
        headers: head.to_ascii_lowercase(),
        body: body.to_owned(),
    }
}

/// The value of the sample whose name and labels are written exactly as `series`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.parse().unwrap())
}

fn smtp_connections_of(lab: &LabEnv, host: &str) -> usize {
    lab.lab
        .smtp_servers()
        .filter(|(name, _)| name.as_str() == host)
        .map(|(_, s)| s.stats().connections)
        .sum()
}

/// `name` when installed; otherwise skips the calling test with a message on stderr, or
/// fails it under CI.
fn binary(test: &str, name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    if let Some(found) = std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
    {
        return Some(found);
    }
    assert!(
        !in_ci(),
        "{test}: {name} is not installed. CI is set, so this is a failure, not a skip: \
         .ci/run installs it (bash .ci/install-real-servers.sh)"
    );
    let _ = writeln!(
        std::io::stderr().lock(),
        "skipping {test}: {name} is not installed (Debian package prometheus; \
         `bash .ci/install-real-servers.sh` installs it)"
    );
    None
}

/// `promtool check metrics` accepts `text`.
fn promtool_check_metrics(promtool: &Path, text: &str) {
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn fixture_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/monitoring")
        .join(name)
}

// ---- /probe -----------------------------------------------------------------------------

#[test]
fn probe_answers_good_and_failing_domains_and_promtool_accepts_the_output() {
    let lab = LabEnv::start("serve-probe");
    let serve = Serve::start(&lab, &[]);

    let good = serve.get("/probe?target=good.test");
    assert_eq!(good.status, 200, "{good:?}");
    assert!(
        good.headers
            .contains("content-type: text/plain; version=0.0.4; charset=utf-8"),
        "{}",
        good.headers
    );
    let body = &good.body;
    assert_eq!(sample(body, "probe_success"), Some(1.0), "{body}");
    assert!(sample(body, "probe_duration_seconds").unwrap() > 0.0);
    assert_eq!(sample(body, "mxprobe_probe_timed_out"), Some(0.0));
    assert_eq!(
        sample(
            body,
            "mxprobe_domain_status{domain=\"good.test\",status=\"pass\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            body,
            "mxprobe_sts_mode{domain=\"good.test\",mode=\"enforce\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(body, "mxprobe_sts_max_age_seconds{domain=\"good.test\"}"),
        Some(604_800.0)
    );
    assert_eq!(
        sample(
            body,
            "mxprobe_sts_policy_id_info{domain=\"good.test\",id=\"20250101T000000\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(body, "mxprobe_tlsrpt_present{domain=\"good.test\"}"),
        Some(1.0)
    );
    for (mx, ip) in [
        ("mx1.good.test", "127.0.0.10"),
        ("mx2.good.test", "127.0.0.11"),
    ] {
        let at = format!("domain=\"good.test\",mx=\"{mx}\",ip=\"{ip}\"");
        assert_eq!(
            sample(
                body,
                &format!("mxprobe_mx_session{{{at},policy=\"sts\",result=\"success\"}}")
            ),
            Some(1.0),
            "{body}"
        );
        assert_eq!(
            sample(
                body,
                &format!("mxprobe_mx_tls_version{{{at},version=\"TLSv1.3\"}}")
            ),
            Some(1.0)
        );
        assert_eq!(
            sample(body, &format!("mxprobe_mx_dane{{{at},status=\"none\"}}")),
            Some(1.0)
        );
        let leaf = sample(
            body,
            &format!("mxprobe_mx_leaf_not_after_timestamp_seconds{{{at}}}"),
        )
        .unwrap();
        let chain = sample(
            body,
            &format!("mxprobe_mx_chain_not_after_timestamp_seconds{{{at}}}"),
        )
        .unwrap();
        let now = time::OffsetDateTime::now_utc().unix_timestamp() as f64;
        assert!(leaf > now && chain > now && chain <= leaf, "{leaf} {chain}");
        // The textfile's series, same name and labels.
        assert_eq!(
            sample(
                body,
                &format!(
                    "mxprobe_mx_certificate_expiry_timestamp_seconds{{domain=\"good.test\",mx=\"{mx}\"}}"
                )
            ),
            Some(leaf)
        );
    }

    let expired = serve.get("/probe?target=expired.test");
    assert_eq!(expired.status, 200);
    let body = &expired.body;
    assert_eq!(sample(body, "probe_success"), Some(0.0), "{body}");
    let at = "domain=\"expired.test\",mx=\"mx.expired.test\",ip=\"127.0.0.18\",policy=\"sts\"";
    assert_eq!(
        sample(
            body,
            &format!("mxprobe_mx_session{{{at},result=\"failure\"}}")
        ),
        Some(1.0),
        "{body}"
    );
    assert_eq!(
        sample(
            body,
            &format!("mxprobe_mx_session_failure{{{at},result_type=\"certificate-expired\"}}")
        ),
        Some(1.0)
    );
    assert!(
        sample(
            body,
            "mxprobe_domain_findings{domain=\"expired.test\",severity=\"error\"}"
        )
        .unwrap()
            >= 1.0
    );

    // DANE: a TLSA record that does not match is a DANE failure; a policy host without
    // an address is a policy failure.
    let wrong = serve.get("/probe?target=dane-ee-wrong.test").body;
    let mx = mxprobe_core::domain::DomainName::parse("mx.dane-ee-wrong.test").unwrap();
    let ip = lab.lab.addresses(&mx)[0];
    assert_eq!(
        sample(
            &wrong,
            &format!(
                "mxprobe_mx_dane{{domain=\"dane-ee-wrong.test\",mx=\"{mx}\",ip=\"{ip}\",status=\"failure\"}}"
            )
        ),
        Some(1.0),
        "{wrong}"
    );
    let no_host = serve.get("/probe?target=policy-no-host.test").body;
    assert_eq!(
        sample(
            &no_host,
            "mxprobe_sts_policy_failure{domain=\"policy-no-host.test\",result_type=\"sts-policy-fetch-error\"}"
        ),
        Some(1.0),
        "{no_host}"
    );

    let metrics = serve.get("/metrics");
    assert_eq!(metrics.status, 200);
    assert_eq!(
        sample(&metrics.body, "mxprobe_exporter_probes_total"),
        Some(4.0)
    );
    assert_eq!(
        sample(&metrics.body, "mxprobe_exporter_probes_in_flight"),
        Some(0.0)
    );

    let health = serve.get("/healthz");
    assert_eq!((health.status, health.body.as_str()), (200, "ok\n"));
    let page = serve.get("/");
    assert_eq!(page.status, 200);
    assert!(page.headers.contains("content-type: text/html"));
    assert!(
        page.body.contains("<form action=\"/probe\""),
        "{}",
        page.body
    );

    if let Some(promtool) = binary(
        "probe_answers_good_and_failing_domains_and_promtool_accepts_the_output",
        "promtool",
    ) {
        for text in [&good.body, &expired.body, &wrong, &no_host, &metrics.body] {
            promtool_check_metrics(&promtool, text);
        }
    }
}

#[test]
fn two_scrapes_within_the_interval_probe_once() {
    let lab = LabEnv::start("serve-cache");
    let serve = Serve::start(&lab, &["--min-interval", "4"]);
    let before = lab.lab.counters();

    let first = serve.get("/probe?target=good.test").body;
    let after_first = lab.lab.counters();
    // One SMTP session per MX address (two), one policy fetch.
    assert_eq!(after_first.smtp_connections - before.smtp_connections, 2);
    assert_eq!(after_first.policy_requests - before.policy_requests, 1);
    assert_eq!(sample(&first, "mxprobe_probe_cached"), Some(0.0));

    let second = serve.get("/probe?target=good.test").body;
    let after_second = lab.lab.counters();
    assert_eq!(
        after_second, after_first,
        "the second scrape reached the lab"
    );
    assert_eq!(sample(&second, "mxprobe_probe_cached"), Some(1.0));
    assert_eq!(sample(&second, "probe_success"), Some(1.0));
    assert_eq!(serve.metric("mxprobe_exporter_cache_hits_total"), 1.0);
    assert_eq!(serve.metric("mxprobe_exporter_probes_total"), 1.0);

    // A module is another target.
    let _ = serve.get("/probe?target=good.test&module=default");
    assert_eq!(lab.lab.counters(), after_first);

    // Past the interval the mail servers are probed again (SMTP probes are kept no longer).
    std::thread::sleep(Duration::from_millis(4200));
    let third = serve.get("/probe?target=good.test").body;
    let after_third = lab.lab.counters();
    assert_eq!(
        after_third.smtp_connections - after_first.smtp_connections,
        2
    );
    assert_eq!(sample(&third, "mxprobe_probe_cached"), Some(0.0));
    assert_eq!(serve.metric("mxprobe_exporter_probes_total"), 2.0);
}

#[test]
fn concurrent_scrapes_of_domains_sharing_an_mx_share_its_probe() {
    let lab = LabEnv::start("serve-shared");
    let serve = Serve::start(&lab, &["--per-ip", "1"]);
    // Every one of these domains has mx1.good.test (one address) as an MX host.
    let domains = [
        "good.test",
        "mode-none.test",
        "tlsrpt-bad-rua.test",
        "tlsrpt-syntax.test",
    ];
    let before = smtp_connections_of(&lab, "mx1.good.test");
    let addr = serve.addr;
    let bodies: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = domains
            .iter()
            .map(|d| {
                s.spawn(move || {
                    request(addr, &format!("GET /probe?target={d} HTTP/1.1\r\n"), "").body
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (domain, body) in domains.iter().zip(&bodies) {
        assert_eq!(
            sample(
                body,
                &format!(
                    "mxprobe_mx_session{{domain=\"{domain}\",mx=\"mx1.good.test\",ip=\"127.0.0.10\",policy=\"{}\",result=\"success\"}}",
                    if *domain == "good.test" {
                        "sts"
                    } else {
                        "no-policy-found"
                    }
                )
            ),
            Some(1.0),
            "{domain}: {body}"
        );
    }
    assert_eq!(
        smtp_connections_of(&lab, "mx1.good.test") - before,
        1,
        "four scrapes, one SMTP session with mx1.good.test"
    );
    assert_eq!(serve.metric("mxprobe_exporter_probes_total"), 4.0);
    assert_eq!(
        serve.metric("mxprobe_exporter_smtp_probes_shared_total"),
        3.0
    );
    // --per-ip 1: never two connections at once to one address.
    for (_, server) in lab.lab.smtp_servers() {
        assert!(server.stats().max_simultaneous <= 1);
    }
}

#[test]
fn modules_keep_one_per_ip_budget_and_share_probes_only_when_alike() {
    let lab = LabEnv::start("serve-modules-per-ip");
    // A distant server: every session lasts long enough for two to overlap if let.
    for (_, server) in lab
        .lab
        .smtp_servers()
        .filter(|(name, _)| name.as_str() == "mx1.good.test")
    {
        let mut slow = (*server.spec()).clone();
        slow.latency = Duration::from_millis(400);
        server.replace(slow);
    }
    // "v4" probes as the command line does (the address family changes only which
    // addresses are probed); "slow" and "slower" each give the SMTP probe another deadline.
    let config = lab.write(
        "serve.toml",
        "[modules.v4]\nip = \"4\"\n\n[modules.slow]\nsmtp_timeout = 50\n\n\
         [modules.slower]\nsmtp_timeout = 40\n",
    );
    let serve = Serve::start(
        &lab,
        &["--per-ip", "1", "--config", config.to_str().unwrap()],
    );
    // Every one of these domains has mx1.good.test (one address) as an MX host.
    let scrapes = [
        ("good.test", "default"),
        ("mode-none.test", "v4"),
        ("tlsrpt-bad-rua.test", "slow"),
        ("tlsrpt-syntax.test", "slower"),
    ];
    let before = smtp_connections_of(&lab, "mx1.good.test");
    let addr = serve.addr;
    let bodies: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = scrapes
            .iter()
            .map(|(d, m)| {
                s.spawn(move || {
                    let line = format!("GET /probe?target={d}&module={m} HTTP/1.1\r\n");
                    request(addr, &line, "").body
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for ((domain, module), body) in scrapes.iter().zip(&bodies) {
        let session = body
            .lines()
            .find(|l| {
                l.starts_with("mxprobe_mx_session{")
                    && l.contains("mx=\"mx1.good.test\",ip=\"127.0.0.10\"")
                    && l.contains("result=\"success\"")
            })
            .unwrap_or_else(|| panic!("{domain} ({module}): no successful session: {body}"));
        assert!(session.ends_with(" 1"), "{session}");
    }
    assert_eq!(
        smtp_connections_of(&lab, "mx1.good.test") - before,
        3,
        "one session for default and v4 (alike), one each for slow and slower"
    );
    // --per-ip 1 over all the modules: the three sessions one after another.
    for (name, server) in lab.lab.smtp_servers() {
        let most = server.stats().max_simultaneous;
        assert!(most <= 1, "{name}: {most} connections at once");
    }
    assert_eq!(
        serve.metric("mxprobe_exporter_smtp_probes_shared_total"),
        1.0,
        "v4 used the probe default made (or the other way round)"
    );
}

#[test]
fn a_scrape_answers_before_its_timeout_and_the_probe_goes_on() {
    let lab = LabEnv::start("serve-timeout");
    let serve = Serve::start(&lab, &[]);
    // The MX of silent.test accepts connections and never greets: the probe waits for the
    // SMTP phase timeout (30 s), far longer than the scrape.
    let started = Instant::now();
    let reply = serve.get_with(
        "/probe?target=silent.test",
        "X-Prometheus-Scrape-Timeout-Seconds: 2\r\n",
    );
    let took = started.elapsed();
    assert_eq!(reply.status, 200);
    assert_eq!(sample(&reply.body, "probe_success"), Some(0.0));
    assert_eq!(sample(&reply.body, "mxprobe_probe_timed_out"), Some(1.0));
    assert!(
        took < Duration::from_secs(20),
        "the answer came after {took:?}, not before the 2 s scrape timeout"
    );
    assert_eq!(serve.metric("mxprobe_exporter_scrape_timeouts_total"), 1.0);
    // The probe goes on: a second scrape joins it instead of starting another.
    let again = serve.get_with(
        "/probe?target=silent.test",
        "X-Prometheus-Scrape-Timeout-Seconds: 1\r\n",
    );
    assert_eq!(sample(&again.body, "mxprobe_probe_timed_out"), Some(1.0));
    assert_eq!(serve.metric("mxprobe_exporter_probes_total"), 1.0);
    assert_eq!(serve.metric("mxprobe_exporter_probes_joined_total"), 1.0);
    assert_eq!(serve.metric("mxprobe_exporter_probes_in_flight"), 1.0);
}

// ---- hostile requests -------------------------------------------------------------------

#[test]
fn bad_requests_are_refused_with_one_line_and_never_scanned() {
    let lab = LabEnv::start("serve-hostile");
    let serve = Serve::start(&lab, &[]);
    // Started first: a client that sends half a request head and then nothing is cut off
    // by the header read timeout (10 s).
    let addr = serve.addr;
    let slow = std::thread::spawn(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        stream
            .write_all(b"GET /probe?target=good.test HTTP/1.1\r\nHost: x\r\n")
            .unwrap();
        let mut rest = Vec::new();
        let read = stream.read_to_end(&mut rest);
        (read.is_ok(), rest)
    });

    let before = lab.lab.counters();
    for (path, headers, status, start) in [
        (
            "/probe?target=http%3A%2F%2Fgood.test%2F".to_owned(),
            "",
            400,
            "target \"http://good.test/\" is not a domain name: give the mail domain alone",
        ),
        (
            "/probe?target=192.0.2.1".to_owned(),
            "",
            400,
            "target \"192.0.2.1\" is not a domain name: ",
        ),
        (
            "/probe".to_owned(),
            "",
            400,
            "no target: ask /probe?target=DOMAIN",
        ),
        (
            "/probe?target=good.test&module=nope".to_owned(),
            "",
            400,
            "unknown module \"nope\"; the modules are: default",
        ),
        (
            "/probe?target=good.test".to_owned(),
            "X-Prometheus-Scrape-Timeout-Seconds: soon\r\n",
            400,
            "X-Prometheus-Scrape-Timeout-Seconds: \"soon\" is not a number of seconds",
        ),
        (
            format!("/probe?target=good.test&pad={}", "x".repeat(2000)),
            "",
            414,
            "the query string has 2021 bytes, at most 1024",
        ),
        (
            "/probe?target=good.test".to_owned(),
            "Content-Length: 5000\r\n",
            413,
            "the request body is over 1024 bytes",
        ),
        ("/nowhere".to_owned(), "", 404, "/nowhere: not found"),
    ] {
        let reply = serve.get_with(&path, headers);
        assert_eq!(reply.status, status, "{path}: {reply:?}");
        assert!(reply.body.starts_with(start), "{path}: {}", reply.body);
        assert_eq!(
            reply.body.matches('\n').count(),
            1,
            "one line: {:?}",
            reply.body
        );
    }
    // A chunked body over the cap.
    let chunk = "y".repeat(1500);
    let reply = request(
        serve.addr,
        "GET /probe?target=good.test HTTP/1.1\r\n",
        &format!(
            "Transfer-Encoding: chunked\r\n\r\n{:x}\r\n{chunk}\r\n0\r\n",
            chunk.len()
        ),
    );
    assert_eq!(reply.status, 413, "{reply:?}");
    // Headers over 16 KiB.
    let big = serve.get_with(
        "/probe?target=good.test",
        &format!("X-Padding: {}\r\n", "z".repeat(20_000)),
    );
    assert_eq!(big.status, 431, "{big:?}");
    let post = request(serve.addr, "POST /probe?target=good.test HTTP/1.1\r\n", "");
    assert_eq!(post.status, 405);
    assert!(
        post.headers.contains("allow: get, head"),
        "{}",
        post.headers
    );
    assert_eq!(
        lab.lab.counters(),
        before,
        "a refused request reached the lab"
    );
    assert_eq!(
        serve.metric("mxprobe_exporter_requests_rejected_total{code=\"400\"}"),
        5.0
    );

    let (closed, rest) = slow.join().unwrap();
    assert!(closed, "the half-sent request was not cut off");
    let rest = String::from_utf8_lossy(&rest);
    assert!(
        rest.is_empty() || rest.starts_with("HTTP/1.1 408"),
        "{rest}"
    );
}

#[test]
fn sigterm_lets_the_probe_in_flight_answer_then_exits_0() {
    let lab = LabEnv::start("serve-sigterm");
    let mut serve = Serve::start(&lab, &[]);
    let addr = serve.addr;
    let scrape = std::thread::spawn(move || {
        request(
            addr,
            "GET /probe?target=silent.test HTTP/1.1\r\n",
            "X-Prometheus-Scrape-Timeout-Seconds: 4\r\n",
        )
    });
    // The scrape is in flight once the exporter counts its probe.
    let start = Instant::now();
    while serve.metric("mxprobe_exporter_probes_in_flight") < 1.0 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no probe in flight"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = Command::new("kill")
        .args(["-TERM", &serve.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let reply = scrape.join().unwrap();
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(sample(&reply.body, "probe_success"), Some(0.0));
    assert!(reply.body.contains("# TYPE mxprobe_tlsrpt_present gauge"));
    let exit = serve.child.wait().unwrap();
    assert_eq!(exit.code(), Some(0));
    let notes: Vec<String> = serve.stderr.try_iter().collect();
    assert_eq!(
        notes.last().map(String::as_str),
        Some("mxprobe serve: stopped"),
        "{notes:?}"
    );
    assert!(
        TcpStream::connect(addr).is_err(),
        "still accepting after SIGTERM"
    );
}

#[test]
fn a_module_from_the_config_file_changes_the_probe() {
    let lab = LabEnv::start("serve-modules");
    let before = lab.lab.counters();
    // The module in TOML, and the same in YAML (read as YAML by the file's name).
    for (name, text) in [
        ("serve.toml", "[modules.no_smtp]\nno_smtp = true\n"),
        ("serve.yaml", "modules:\n  no_smtp:\n    no_smtp: true\n"),
    ] {
        let config = lab.write(name, text);
        let serve = Serve::start(&lab, &["--config", config.to_str().unwrap()]);
        let body = serve.get("/probe?target=good.test&module=no_smtp").body;
        assert_eq!(
            lab.lab.counters().smtp_connections,
            before.smtp_connections,
            "{name}"
        );
        // Not tested is inconclusive, never passing.
        assert_eq!(sample(&body, "probe_success"), Some(0.0), "{name}");
        assert_eq!(
            sample(
                &body,
                "mxprobe_domain_status{domain=\"good.test\",status=\"inconclusive\"}"
            ),
            Some(1.0),
            "{name}: {body}"
        );
    }
    // A misspelt field, in either format: refused with the file, line and column (exit 2).
    for (name, text, at) in [
        (
            "bad.yml",
            "modules:\n  a:\n    no_smpt: true\n",
            "line 3, column 5",
        ),
        (
            "bad.toml",
            "[modules.a]\nno_smpt = true\n",
            "line 2, column 1",
        ),
    ] {
        let bad = lab.write(name, text);
        let out = lab
            .command()
            .args(["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(&bad)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{name}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.starts_with(&format!(
                "mxprobe: --config {}: {at}: unknown field `no_smpt`",
                bad.display()
            )),
            "{err}"
        );
    }
    let remote = lab
        .command()
        .args(["serve", "--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert_eq!(remote.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&remote.stderr).contains("Add --allow-remote"),
        "{}",
        String::from_utf8_lossy(&remote.stderr)
    );
}

#[test]
fn an_unusable_resolver_is_named_once_and_blamed_on_no_domain() {
    let lab = LabEnv::start("serve-resolver");
    let broken = lab.lab.broken_resolver("nxdomain-to-all").unwrap().addr;
    let serve = Serve::start(&lab, &["--resolver", &broken.to_string()]);
    for domain in ["good.test", "dane-ee.test"] {
        let body = serve.get(&format!("/probe?target={domain}")).body;
        assert_eq!(sample(&body, "probe_success"), Some(0.0));
        assert_eq!(
            sample(
                &body,
                &format!("mxprobe_domain_status{{domain=\"{domain}\",status=\"inconclusive\"}}")
            ),
            Some(1.0),
            "{body}"
        );
    }
    let start = Instant::now();
    let mut notes = Vec::new();
    while notes.is_empty() && start.elapsed() < Duration::from_secs(10) {
        notes.extend(serve.stderr.try_iter());
        std::thread::sleep(Duration::from_millis(20));
    }
    notes.extend(serve.stderr.try_iter());
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0].starts_with("mxprobe serve: ") && notes[0].contains("What to do: "),
        "{notes:?}"
    );
}

#[test]
fn help_explains_every_flag_and_the_exit_status() {
    let out = Command::new(env!("CARGO_BIN_EXE_mxprobe"))
        .args(["serve", "--help"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--listen",
        "--allow-remote",
        "--config",
        "--min-interval",
        "--deadline",
        "--concurrency",
        "--per-ip ",
        "--per-ip-rate",
        "--max-targets",
        "--drain-timeout",
        "--resolver",
        "--no-smtp",
        "--smtp-port",
        "X-Prometheus-Scrape-Timeout-Seconds",
        "0    stopped by SIGINT or SIGTERM",
        "2    usage or configuration error",
        "curl 'http://127.0.0.1:9469/probe?target=example.com'",
    ] {
        assert!(help.contains(flag), "serve --help lacks {flag:?}:\n{help}");
    }
}

// ---- Prometheus -------------------------------------------------------------------------

#[test]
fn the_alerting_rules_pass_promtool_and_are_quoted_in_the_docs() {
    let docs =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/monitoring.md"))
            .unwrap();
    for name in ["mxprobe-alerts.yml", "prometheus.yml"] {
        let text = std::fs::read_to_string(fixture_path(name)).unwrap();
        assert!(
            docs.contains(&format!("```yaml\n{text}```\n")),
            "docs/monitoring.md does not quote fixtures/monitoring/{name} verbatim"
        );
    }
    let Some(promtool) = binary(
        "the_alerting_rules_pass_promtool_and_are_quoted_in_the_docs",
        "promtool",
    ) else {
        return;
    };
    for args in [
        ["check", "rules", "mxprobe-alerts.yml"],
        ["test", "rules", "mxprobe-alerts.test.yml"],
        ["check", "config", "prometheus.yml"],
    ] {
        let out = Command::new(&promtool)
            .args(args)
            .current_dir(fixture_path(""))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "promtool {args:?}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// A Prometheus server started by a test, stopped on drop.
struct Prometheus {
    child: Child,
    dir: PathBuf,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The result of an instant query: each series' labels (as `k="v"` text) and value.
fn query(api: SocketAddr, promql: &str) -> Vec<(serde_json::Value, f64)> {
    let encoded: String = form_urlencoded::byte_serialize(promql.as_bytes()).collect();
    let reply = request(
        api,
        &format!("GET /api/v1/query?query={encoded} HTTP/1.1\r\n"),
        "",
    );
    assert_eq!(reply.status, 200, "{reply:?}");
    let json: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
    json["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["metric"].clone(),
                r["value"][1].as_str().unwrap().parse().unwrap(),
            )
        })
        .collect()
}

#[test]
fn a_real_prometheus_scrapes_two_lab_domains_through_the_exporter() {
    let test = "a_real_prometheus_scrapes_two_lab_domains_through_the_exporter";
    let Some(prometheus) = binary(test, "prometheus") else {
        return;
    };
    let lab = LabEnv::start("serve-prometheus");
    let serve = Serve::start(&lab, &[]);

    // The documented configuration, pointed at this exporter and two lab domains, scraping
    // every second.
    let documented = std::fs::read_to_string(fixture_path("prometheus.yml")).unwrap();
    let mut config = documented.clone();
    for (from, to) in [
        ("127.0.0.1:9469", serve.addr.to_string()),
        (
            "          - example.com\n          - example.org\n",
            "          - good.test\n          - expired.test\n".to_owned(),
        ),
        ("scrape_interval: 5m", "scrape_interval: 1s".to_owned()),
        ("scrape_timeout: 60s", "scrape_timeout: 1s".to_owned()),
        ("rule_files:\n  - mxprobe-alerts.yml\n", String::new()),
    ] {
        assert!(config.contains(from), "{from} is not in prometheus.yml");
        config = config.replace(from, &to);
    }
    config = format!("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n{config}");
    let dir = lab.dir.join("prometheus");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("prometheus.yml"), &config).unwrap();
    let api = {
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        free.local_addr().unwrap()
    };
    let child = Command::new(prometheus)
        .arg(format!(
            "--config.file={}",
            dir.join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address={api}"))
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("prometheus.log")).unwrap())
        .spawn()
        .unwrap();
    let server = Prometheus {
        child,
        dir: dir.clone(),
    };

    // Until both domains have been scraped (Prometheus starts, then scrapes every second).
    let start = Instant::now();
    let success = loop {
        let ready = TcpStream::connect(api).is_ok();
        if ready {
            // A scrape answered before its probe ended (a loaded machine) says nothing yet:
            // the probe goes on, and a later scrape gets its result.
            let got = query(
                api,
                "probe_success{job=\"mxprobe\"} and on(instance) \
                 mxprobe_probe_timed_out{job=\"mxprobe\"} == 0",
            );
            if got.len() == 2 {
                break got;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "no scrape of both domains within 90 s; prometheus.log:\n{}",
            std::fs::read_to_string(server.dir.join("prometheus.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    let by_instance = |instance: &str| {
        success
            .iter()
            .find(|(m, _)| m["instance"] == instance)
            .map(|(_, v)| *v)
    };
    assert_eq!(by_instance("good.test"), Some(1.0), "{success:?}");
    assert_eq!(by_instance("expired.test"), Some(0.0), "{success:?}");

    let expiry = query(
        api,
        "mxprobe_mx_certificate_expiry_timestamp_seconds{job=\"mxprobe\"}",
    );
    let mut hosts: Vec<String> = expiry
        .iter()
        .map(|(m, _)| m["mx"].as_str().unwrap().to_owned())
        .collect();
    hosts.sort();
    assert_eq!(
        hosts,
        ["mx.expired.test", "mx1.good.test", "mx2.good.test"],
        "{expiry:?}"
    );
    let now = time::OffsetDateTime::now_utc().unix_timestamp() as f64;
    for (m, v) in &expiry {
        let expired = m["mx"] == "mx.expired.test";
        assert_eq!(*v < now, expired, "{m} {v}");
    }
    let leaf = query(
        api,
        "mxprobe_mx_leaf_not_after_timestamp_seconds{instance=\"good.test\"}",
    );
    assert_eq!(leaf.len(), 2, "{leaf:?}");
    // The exporter's own metrics, scraped by the second job.
    let probes = loop {
        // Both domains were probed before; a scrape of /metrics after that counts both.
        let probes = query(api, "mxprobe_exporter_probes_total");
        if probes.iter().any(|(_, v)| *v >= 2.0) {
            break probes;
        }
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "no scrape of the exporter's /metrics counting both probes within 90 s"
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    assert_eq!(probes.len(), 1, "{probes:?}");
    assert_eq!(probes[0].0["job"], "mxprobe_exporter", "{probes:?}");
    drop(server);
}
