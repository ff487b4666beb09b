//! Real DNS software, not the lab's: Debian's Unbound, a validating recursive resolver, in
//! front of zones signed by a real signer (`ldns-signzone` from Debian's ldnsutils). The test
//! makes a private DNS hierarchy in a temporary directory — a root zone whose key is the only
//! trust anchor, a `test` TLD, and three zones under it: `good.test` (sound),
//! `expired.test` (signed with RRSIGs that expired three days ago) and `dsmismatch.test` (the DS
//! in `test` names a key the zone does not use) — and starts its own `unbound` on a loopback
//! address and a free port, serving every zone from its own files (`auth-zone` with
//! `for-upstream`, so its resolver validates them as it would zones on the internet). Then
//! `mxprobe scan` asks it, as a user would with `--resolver` and `--trust-anchor`.
//!
//! Unbound answers SERVFAIL for both bogus zones, with an Extended DNS Error (RFC 8914); the
//! scan must still name the cause correctly (expired signatures with their time; a DS that
//! matches no key, with both key tags), by asking again with the CD bit and validating the
//! chain in-process, in `--dnssec validate` and in `--dnssec resolver` mode.
//!
//! Nothing leaves 127.0.0.0/8: unbound listens on one loopback address, sends from it
//! (`outgoing-interface`), has root hints that name only that address, no IPv6, and every
//! zone it resolves is one of its own files; trust-anchor signalling and the root key
//! sentinel are off. It runs unprivileged (`username: ""`).
//!
//! A second unbound, configured as a captive portal would be (NXDOMAIN for every name, the
//! root included), must be named as the problem instead of the domains.
//!
//! Needs the binaries that `.ci/install-real-servers.sh` installs (`.ci/run` calls it). When
//! one is missing the test says why on stderr and returns; when the environment has `CI` set
//! it fails instead, so CI can never skip it silently.

use std::fs;
use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::support::in_ci;
use serde_json::Value;
use time::OffsetDateTime;
use time::macros::format_description;

/// Unbound's address (the 6x block of loopback is the real-server tests' own).
const UNBOUND_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 64);
/// The longest unbound may take to start listening, and to stop.
const START_TIMEOUT: Duration = Duration::from_secs(10);
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// `name` in the PATH or in the sbin directories.
fn find_binary(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin", "/usr/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// The binaries, or `None` after saying why (a failure under CI).
fn tools(test: &str) -> Option<[PathBuf; 4]> {
    let found = [
        "unbound",
        "unbound-checkconf",
        "ldns-keygen",
        "ldns-signzone",
    ]
    .map(|name| (name, find_binary(name)));
    let missing: Vec<&str> = found
        .iter()
        .filter(|(_, p)| p.is_none())
        .map(|(n, _)| *n)
        .collect();
    if missing.is_empty() {
        return Some(found.map(|(_, p)| p.expect("checked")));
    }
    let reason = format!("{} not installed", missing.join(", "));
    assert!(
        !in_ci(),
        "{test}: cannot run: {reason}. CI is set, so this is a failure, not a skip: .ci/run \
         installs unbound and ldnsutils (bash .ci/install-real-servers.sh)"
    );
    let _ = writeln!(
        std::io::stderr().lock(),
        "skipping {test}: {reason} (`bash .ci/install-real-servers.sh` installs them, as \
         .ci/run does)"
    );
    None
}

/// A temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "mxprobe-{tag}-{}-{}",
            std::process::id(),
            OffsetDateTime::now_utc().unix_timestamp_nanos()
        ));
        fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Runs a tool in `dir`, failing the test with its output when it fails.
fn run(dir: &Path, program: &Path, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
    assert!(
        out.status.success(),
        "{} {args:?} failed ({}): {}{}",
        program.display(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// One zone key made by ldns-keygen: the base name of its files and its key tag.
struct Key {
    base: String,
    tag: u16,
}

fn keygen(dir: &Path, keygen: &Path, zone: &str) -> Key {
    // A key-signing key (flags 257) that signs the whole zone, and its DS file.
    let base = run(dir, keygen, &["-k", "-a", "ECDSAP256SHA256", zone]);
    let tag = base
        .rsplit('+')
        .next()
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("no key tag in {base:?}"));
    Key { base, tag }
}

fn read(dir: &Path, file: &str) -> String {
    fs::read_to_string(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

/// The signed hierarchy: what the test needs to know about it.
struct Hierarchy {
    /// The root key's DNSKEY in zone-file form (the trust anchor, for unbound and mxprobe).
    anchor: PathBuf,
    /// When the RRSIGs of expired.test expired (whole seconds).
    expired_at: OffsetDateTime,
    /// The key tag the DS of dsmismatch.test names, and the key the zone uses.
    ds_tag: u16,
    dsmismatch_tag: u16,
}

/// Zone file text: SOA, NS, an MX and its host's address, a TLS-RPT record.
fn mail_zone(zone: &str) -> String {
    format!(
        "$TTL 300\n{zone}. IN SOA ns.lab. hostmaster.lab. 1 3600 600 86400 300\n\
         {zone}. IN NS ns.lab.\n{zone}. IN MX 10 mx.{zone}.\nmx.{zone}. IN A 127.0.0.1\n\
         _smtp._tls.{zone}. IN TXT \"v=TLSRPTv1; rua=mailto:tlsrpt@{zone}\"\n"
    )
}

fn sign_hierarchy(dir: &Path, keygen_bin: &Path, signzone: &Path) -> Hierarchy {
    let stamp = format_description!("[year][month][day][hour][minute][second]");
    let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
    // Three days ago: beyond the clock skew validators allow (unbound accepts a signature
    // up to `val-sig-skew-max`, one day, after it expired).
    let expired_at = now - time::Duration::days(3);
    let inception = now - time::Duration::days(33);

    let root = keygen(dir, keygen_bin, ".");
    let test = keygen(dir, keygen_bin, "test.");
    let good = keygen(dir, keygen_bin, "good.test.");
    let expired = keygen(dir, keygen_bin, "expired.test.");
    let dsmismatch = keygen(dir, keygen_bin, "dsmismatch.test.");
    // The key whose DS the parent publishes, although the zone is signed with another.
    let stale = keygen(dir, keygen_bin, "dsmismatch.test.");

    for (zone, key) in [
        ("good.test", &good),
        ("expired.test", &expired),
        ("dsmismatch.test", &dsmismatch),
    ] {
        fs::write(dir.join(format!("{zone}.zone")), mail_zone(zone)).unwrap();
        let file = format!("{zone}.zone");
        if zone == "expired.test" {
            let (i, e) = (
                inception.format(&stamp).unwrap(),
                expired_at.format(&stamp).unwrap(),
            );
            run(dir, signzone, &["-i", &i, "-e", &e, &file, &key.base]);
        } else {
            run(dir, signzone, &[&file, &key.base]);
        }
    }
    let mut tld = String::from(
        "$TTL 300\ntest. IN SOA ns.lab. hostmaster.lab. 1 3600 600 86400 300\ntest. IN NS ns.lab.\n",
    );
    for zone in ["good.test", "expired.test", "dsmismatch.test"] {
        tld.push_str(&format!("{zone}. IN NS ns.lab.\n"));
    }
    for key in [&good, &expired, &stale] {
        tld.push_str(&read(dir, &format!("{}.ds", key.base)));
        tld.push('\n');
    }
    fs::write(dir.join("test.zone"), tld).unwrap();
    run(dir, signzone, &["test.zone", &test.base]);
    let root_zone = format!(
        "$TTL 300\n. IN SOA ns.lab. hostmaster.lab. 1 3600 600 86400 300\n. IN NS ns.lab.\n\
         ns.lab. IN A {UNBOUND_IP}\ntest. IN NS ns.lab.\n{}\n",
        read(dir, &format!("{}.ds", test.base))
    );
    fs::write(dir.join("root.zone"), root_zone).unwrap();
    run(dir, signzone, &["-o", ".", "root.zone", &root.base]);

    // `.	IN	DNSKEY	257 3 13 <base64> ;{id = …}` → `. 3600 IN DNSKEY 257 3 13 <base64>`
    let key_line = read(dir, &format!("{}.key", root.base));
    let fields: Vec<&str> = key_line
        .split(';')
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(fields.get(2), Some(&"DNSKEY"), "{key_line}");
    let anchor = dir.join("root-anchor.txt");
    fs::write(&anchor, format!(". 3600 IN {}\n", fields[2..].join(" "))).unwrap();
    Hierarchy {
        anchor,
        expired_at,
        ds_tag: stale.tag,
        dsmismatch_tag: dsmismatch.tag,
    }
}

/// The `server:` lines every test's unbound has: loopback only, unprivileged, its own files.
fn server_lines(dir: &Path, port: u16) -> String {
    let d = dir.display();
    format!(
        "server:\n  interface: {UNBOUND_IP}\n  port: {port}\n  outgoing-interface: \
         {UNBOUND_IP}\n  do-ip6: no\n  do-udp: yes\n  do-tcp: yes\n  username: \"\"\n  \
         chroot: \"\"\n  directory: \"{d}\"\n  pidfile: \"{d}/unbound.pid\"\n  use-syslog: \
         no\n  logfile: \"{d}/unbound.log\"\n  verbosity: 1\n  access-control: 127.0.0.0/8 \
         allow\n  do-not-query-localhost: no\n  root-hints: \"{d}/root.hints\"\n  \
         trust-anchor-signaling: no\n  root-key-sentinel: no\n"
    )
}

/// A validating unbound that serves the signed hierarchy from its own files.
fn validating_config(dir: &Path, anchor: &Path, port: u16) -> String {
    let d = dir.display();
    let mut conf = server_lines(dir, port);
    conf.push_str(&format!(
        "  trust-anchor-file: \"{}\"\n  ede: yes\n  val-log-level: 2\n  module-config: \
         \"validator iterator\"\n  qname-minimisation: no\n  local-zone: \"test.\" nodefault\n",
        anchor.display()
    ));
    for (zone, file) in [
        (".", "root.zone.signed"),
        ("test.", "test.zone.signed"),
        ("good.test.", "good.test.zone.signed"),
        ("expired.test.", "expired.test.zone.signed"),
        ("dsmismatch.test.", "dsmismatch.test.zone.signed"),
    ] {
        conf.push_str(&format!(
            "auth-zone:\n  name: \"{zone}\"\n  zonefile: \"{d}/{file}\"\n  for-downstream: \
             no\n  for-upstream: yes\n  fallback-enabled: no\n"
        ));
    }
    conf
}

/// Our unbound, stopped on drop (SIGTERM, then SIGKILL).
struct Unbound {
    child: Child,
    addr: SocketAddr,
}

impl Unbound {
    /// Writes the configuration `config` gives for the chosen port and starts unbound with
    /// it, waiting until it listens.
    fn start(
        dir: &Path,
        unbound: &Path,
        checkconf: &Path,
        config: impl FnOnce(u16) -> String,
    ) -> Self {
        let port = TcpListener::bind((UNBOUND_IP, 0))
            .unwrap_or_else(|e| panic!("cannot bind {UNBOUND_IP}:0: {e}"))
            .local_addr()
            .unwrap()
            .port();
        fs::write(dir.join("unbound.conf"), config(port)).unwrap();
        fs::write(
            dir.join("root.hints"),
            format!(". 3600000 IN NS ns.lab.\nns.lab. 3600000 IN A {UNBOUND_IP}\n"),
        )
        .unwrap();
        run(dir, checkconf, &["unbound.conf"]);
        let out = fs::File::create(dir.join("unbound.out")).unwrap();
        let err = out.try_clone().unwrap();
        let child = Command::new(unbound)
            .args(["-d", "-c", "unbound.conf"])
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start unbound: {e}"));
        let mut server = Self {
            child,
            addr: SocketAddr::from((UNBOUND_IP, port)),
        };
        let logs = || {
            format!(
                "{}{}",
                fs::read_to_string(dir.join("unbound.out")).unwrap_or_default(),
                fs::read_to_string(dir.join("unbound.log")).unwrap_or_default()
            )
        };
        let started = Instant::now();
        loop {
            if let Some(status) = server.child.try_wait().unwrap() {
                panic!("unbound exited ({status}); its logs:\n{}", logs());
            }
            if TcpStream::connect_timeout(&server.addr, Duration::from_millis(200)).is_ok() {
                break;
            }
            assert!(
                started.elapsed() < START_TIMEOUT,
                "unbound did not listen on {} within {START_TIMEOUT:?}; its logs:\n{}",
                server.addr,
                logs()
            );
            sleep(Duration::from_millis(50));
        }
        server
    }
}

impl Drop for Unbound {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        let termed = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        let started = Instant::now();
        while termed && started.elapsed() < STOP_TIMEOUT {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `mxprobe scan <domains> --resolver <unbound> --no-smtp --format json` plus `extra`, with
/// nothing of the caller's environment that would change its behaviour.
fn scan(unbound: &Unbound, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mxprobe"))
        .args(["scan", "good.test", "expired.test", "dsmismatch.test"])
        .args(["--resolver", &unbound.addr.to_string(), "--no-smtp"])
        .args(["--format", "json"])
        .args(extra)
        .env("NO_COLOR", "1")
        .env_remove("MXPROBE_RESOLVER")
        .env_remove("MXPROBE_DNSSEC")
        .env_remove("MXPROBE_TRUST_ANCHOR")
        .env_remove("GITHUB_ACTIONS")
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The finding `code` of `domain` in a `scan --format json` document.
fn finding<'a>(doc: &'a Value, domain: &str, code: &str) -> &'a Value {
    let d = doc["domains"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["verdict"]["domain"] == domain)
        .unwrap_or_else(|| panic!("{domain} not in {doc:#}"));
    d["verdict"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == code)
        .unwrap_or_else(|| {
            panic!(
                "{domain}: no {code} in {:#}; facts {:#}",
                d["verdict"]["findings"], d["facts"]
            )
        })
}

fn domain<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["domains"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["verdict"]["domain"] == name)
        .unwrap_or_else(|| panic!("{name} not in {doc:#}"))
}

#[test]
fn unbound_in_front_of_bogus_zones_the_cause_is_named() {
    let test = "unbound_in_front_of_bogus_zones_the_cause_is_named";
    let Some([unbound_bin, checkconf, keygen_bin, signzone]) = tools(test) else {
        return;
    };
    let dir = TempDir::new("real-dns");
    let h = sign_hierarchy(dir.path(), &keygen_bin, &signzone);
    let unbound = Unbound::start(dir.path(), &unbound_bin, &checkconf, |port| {
        validating_config(dir.path(), &h.anchor, port)
    });
    let expired_at = h
        .expired_at
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();

    let anchor = h.anchor.display().to_string();
    let modes: [&[&str]; 2] = [
        // In-process validation from the private root key.
        &["--dnssec", "validate", "--trust-anchor", &anchor],
        // Trusting unbound's AD bit; the diagnosis trusts the root keys unbound vouched for.
        &["--dnssec", "resolver"],
    ];
    for mode in modes {
        let out = scan(&unbound, mode);
        // The bogus zones fail; the sound one is judged (nothing inconclusive but SMTP).
        assert_eq!(out.status.code(), Some(1), "{mode:?}: {}", text(&out));
        assert!(
            !String::from_utf8_lossy(&out.stderr).contains("the DNS resolver"),
            "{mode:?}: unbound is a sound resolver: {}",
            text(&out)
        );
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap();

        let good = domain(&doc, "good.test");
        assert_eq!(good["facts"]["mx"]["status"], "records", "{mode:?}");
        assert_eq!(good["facts"]["mx"]["dnssec"], "secure", "{mode:?}");
        assert!(
            good["verdict"]["findings"]
                .as_array()
                .unwrap()
                .iter()
                .all(|f| !f["code"].as_str().unwrap().starts_with("dns.")),
            "{mode:?}: {good:#}"
        );

        // Expired signatures: the zone and the time.
        let f = finding(&doc, "expired.test", "dns.mx.bogus");
        assert_eq!(f["severity"], "error");
        assert_eq!(f["failure_reason_code"], "rrsig-expired", "{mode:?}: {f:#}");
        let message = f["message"].as_str().unwrap();
        assert!(
            message.contains("zone expired.test") && message.contains(&expired_at),
            "{mode:?}: {message}"
        );
        assert!(
            f["fix"].as_str().unwrap().starts_with(&format!(
                "re-sign the zone expired.test: its RRSIGs expired at {expired_at}"
            )),
            "{mode:?}: {f:#}"
        );
        let mx = &domain(&doc, "expired.test")["facts"]["mx"];
        assert_eq!(mx["status"], "bogus");
        assert_eq!(mx["cause"]["link"], "signatures-expired", "{mx:#}");
        assert_eq!(mx["cause"]["zone"], "expired.test");
        assert_eq!(mx["cause"]["expired-at"], expired_at.as_str());

        // A DS that matches no key: both key tags.
        let f = finding(&doc, "dsmismatch.test", "dns.mx.bogus");
        assert_eq!(f["failure_reason_code"], "ds-mismatch", "{mode:?}: {f:#}");
        let mx = &domain(&doc, "dsmismatch.test")["facts"]["mx"];
        assert_eq!(mx["cause"]["link"], "ds-mismatch", "{mx:#}");
        assert_eq!(mx["cause"]["zone"], "dsmismatch.test");
        assert_eq!(mx["cause"]["ds-key-tags"], serde_json::json!([h.ds_tag]));
        assert_eq!(
            mx["cause"]["dnskey-key-tags"],
            serde_json::json!([h.dsmismatch_tag])
        );

        // Unbound's Extended DNS Errors (`ede: yes`) are in the facts: DNSSEC ones (6
        // DNSSEC Bogus, 7 Signature Expired, 9 DNSKEY Missing, ...).
        for name in ["expired.test", "dsmismatch.test"] {
            let errors = domain(&doc, name)["facts"]["mx"]["extended-errors"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            assert!(
                !errors.is_empty(),
                "{mode:?}: {name}: no EDE kept: {:#}",
                domain(&doc, name)["facts"]["mx"]
            );
            for e in &errors {
                let code = e["code"].as_u64().unwrap();
                assert!((6..=12).contains(&code), "{mode:?}: {name}: {e}");
            }
        }
    }
}

/// Unbound configured as a captive portal would be (`local-zone: "." always_nxdomain`:
/// NXDOMAIN for every name, the root included): the scan names the resolver once, every
/// domain is inconclusive (exit status 3), and nothing fails.
#[test]
fn an_unbound_answering_nxdomain_to_everything_is_blamed_not_the_domains() {
    let test = "an_unbound_answering_nxdomain_to_everything_is_blamed_not_the_domains";
    let Some([unbound_bin, checkconf, _, _]) = tools(test) else {
        return;
    };
    let dir = TempDir::new("real-dns-nxdomain");
    let unbound = Unbound::start(dir.path(), &unbound_bin, &checkconf, |port| {
        format!(
            "{}  local-zone: \".\" always_nxdomain\n",
            server_lines(dir.path(), port)
        )
    });
    for mode in ["validate", "resolver", "off"] {
        let out = scan(&unbound, &["--dnssec", mode]);
        assert_eq!(out.status.code(), Some(3), "{mode}: {}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        let said = format!(
            "mxprobe: the DNS resolver {} answers NXDOMAIN for the root zone",
            unbound.addr
        );
        assert_eq!(stderr.matches(&said).count(), 1, "{mode}: {stderr}");
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
        for d in doc["domains"].as_array().unwrap() {
            let codes: Vec<&str> = d["verdict"]["findings"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["code"].as_str().unwrap())
                .collect();
            assert_eq!(codes, ["dns.resolver.unusable"], "{mode}: {d:#}");
            assert_eq!(d["verdict"]["inconclusive"], true);
        }
    }
}
