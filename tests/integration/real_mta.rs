//! Real software, not our own lab servers: Debian's postfix answers the STARTTLS probe
//! (`mxprobe_probe::starttls`) and Debian's nginx serves an MTA-STS policy to the policy fetcher
//! (`mxprobe_probe::fetch::fetch_policy`). Each test writes its own configuration into a temporary
//! directory, starts its own server as a child process on a loopback address (127.0.0.6x) and
//! a free port, with a certificate chain made for the test by `mxprobe_testpki`, and stops
//! it when the test ends, on failure too (a drop guard). The servers' own logs are checked as
//! well, so the facts mxprobe records are confirmed from the other side of the connection.
//!
//! Nothing leaves 127.0.0.0/8: postfix listens on one loopback address, its
//! `inet_interfaces` is `127.0.0.1`, it relays nothing (`default_transport` and
//! `relay_transport` are `error`, no `relayhost`), looks up no client name
//! (`smtpd_peername_lookup = no`) and no MX (`smtp_dns_support_level = disabled`); nginx
//! listens on one loopback address and proxies nothing. One postfix instance also accepts
//! mail for one test domain and delivers it with its `virtual` agent into a Maildir in its
//! temporary directory: `scan --deliver-reports` sends a synthetic TLS report there (and to
//! an HTTPS report endpoint of the lab), and `reports ingest` reads it back.
//!
//! Needs root (postfix's `master` starts as root and drops privileges) and the binaries that
//! `.ci/install-real-servers.sh` installs (`.ci/run` calls it). When either is missing a test
//! says why on stderr and returns; when the environment has `CI` set (e.g. `CI=true`) it
//! fails instead, so CI can never skip these tests silently.

use std::fs;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::support::cannot_run;
use mxprobe_core::domain::DomainName;
use mxprobe_core::evaluate::policy_fetch::{ContentTypeRule, FetchVerdict, judge_fetch};
use mxprobe_core::facts::{FetchOutcome, HttpResponse, PolicyFetchFacts};
use mxprobe_core::mtasts::{Mode, MxPattern, Policy};
use mxprobe_core::smtp::{EhloName, SmtpFacts, SmtpOutcome};
use mxprobe_core::tls::{Anchors, judge_for_host};
use mxprobe_core::tlsrpt::ResultType;
use mxprobe_probe::capture;
use mxprobe_probe::fetch::{DEFAULT_USER_AGENT, FetchConfig, FetchTimeouts, fetch_policy};
use mxprobe_probe::starttls::{SmtpConfig, probe};
use mxprobe_testpki::{CertAuthority, Issued, KeyKind, LeafSpec, Validity};
use rustls_pki_types::CertificateDer;
use time::OffsetDateTime;

/// What makes these tests run: root, and the packages `.ci/run` installs.
const REMEDY: &str = "it needs root and the servers that `bash .ci/install-real-servers.sh` \
                      installs, as .ci/run does";

/// postfix's `myhostname`, the MX name probed and the certificate's DNS-ID.
const MX: &str = "mx.real-mta.test";
/// The name the probe sends in EHLO.
const EHLO_NAME: &str = "probe.real-mta.test";
/// The policy domain served by nginx (policy host `mta-sts.real-mta.test`).
const POLICY_DOMAIN: &str = "real-mta.test";
/// A second policy domain whose policy host answers with a redirect.
const MOVED_DOMAIN: &str = "moved.real-mta.test";
/// Where the redirect points.
const MOVED_TO: &str = "https://mta-sts.real-mta.test/.well-known/mta-sts.txt";
/// The policy nginx serves, as a file.
const POLICY: &str = "version: STSv1\nmode: enforce\nmx: mx.real-mta.test\nmx: *.backup.real-mta.test\nmax_age: 86400\n";

/// Loopback addresses of our own (127.0.0.53 is often a local resolver; the 6x block is not).
const POSTFIX_TLS_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 61);
const POSTFIX_PLAIN_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 62);
const NGINX_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 63);

/// The longest any server may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest a server may take to write the log line a test waits for.
const LOG_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest a server may take to exit after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------------------------------
// Whether the tests can run here.

/// The effective user id, from /proc (no libc in this crate).
fn effective_uid() -> Option<u32> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

/// `name` in the PATH or in the sbin directories (not always in a non-root PATH).
fn find_binary(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// The numeric id of `name` in /etc/passwd or /etc/group.
fn id_in(file: &str, name: &str) -> Option<u32> {
    let text = fs::read_to_string(file).ok()?;
    text.lines().find_map(|line| {
        let mut fields = line.split(':');
        (fields.next()? == name).then_some(())?;
        fields.nth(1)?.parse().ok()
    })
}

/// What postfix needs: its `master` daemon and the accounts it runs under.
struct PostfixInstall {
    master: PathBuf,
    postfix_uid: u32,
    postdrop_gid: u32,
}

/// Finds postfix, or says why the test cannot run.
fn postfix_install(test: &str) -> Option<PostfixInstall> {
    if effective_uid() != Some(0) {
        cannot_run(
            test,
            "not root (postfix's master must start as root)",
            REMEDY,
        );
        return None;
    }
    let Some(postconf) = find_binary("postconf") else {
        cannot_run(test, "postfix is not installed (no postconf)", REMEDY);
        return None;
    };
    // The daemon directory is a build setting; ask postconf rather than guess it.
    let daemon_dir = Command::new(&postconf)
        .args(["-d", "-h", "daemon_directory"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    let master = daemon_dir.map(|d| Path::new(&d).join("master"));
    let Some(master) = master.filter(|m| m.is_file()) else {
        cannot_run(test, "postfix's master daemon is not installed", REMEDY);
        return None;
    };
    let (Some(postfix_uid), Some(postdrop_gid)) = (
        id_in("/etc/passwd", "postfix"),
        id_in("/etc/group", "postdrop"),
    ) else {
        cannot_run(
            test,
            "the postfix user or postdrop group is missing",
            REMEDY,
        );
        return None;
    };
    Some(PostfixInstall {
        master,
        postfix_uid,
        postdrop_gid,
    })
}

/// Finds nginx, or says why the test cannot run.
fn nginx_binary(test: &str) -> Option<PathBuf> {
    // nginx runs without root too (an unprivileged port, workers as the same user).
    let found = find_binary("nginx");
    if found.is_none() {
        cannot_run(test, "nginx is not installed", REMEDY);
    }
    found
}

// ---------------------------------------------------------------------------------------
// Temporary directories, ports, processes.

/// A directory under the system temp dir, removed on drop. World-traversable (0755) so that
/// postfix's and nginx's unprivileged processes can reach the files they read.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let base = std::env::temp_dir();
        // postfix and nginx configuration values are unquoted: keep the path plain.
        let base = if base.to_string_lossy().contains(char::is_whitespace) {
            PathBuf::from("/tmp")
        } else {
            base
        };
        let path = base.join(format!(
            "mxprobe-real-mta-{}-{}-{tag}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        if path.exists() {
            fs::remove_dir_all(&path).unwrap();
        }
        fs::create_dir_all(&path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        Self(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    /// Writes `name` with `mode`, returning its path.
    fn write(&self, name: &str, contents: &str, mode: u32) -> PathBuf {
        let p = self.0.join(name);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).unwrap();
        }
        fs::write(&p, contents).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    /// Creates directory `name` with `mode` and owner, returning its path.
    fn dir(&self, name: &str, mode: u32, owner: Option<(u32, u32)>) -> PathBuf {
        let p = self.0.join(name);
        fs::create_dir_all(&p).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(&p, Some(uid), Some(gid)).unwrap();
        }
        p
    }

    /// The contents of `name`, or an empty string when it does not exist (yet).
    fn read(&self, name: &str) -> String {
        fs::read_to_string(self.0.join(name)).unwrap_or_default()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Err(e) = fs::remove_dir_all(&self.0) {
            eprintln!("could not remove {}: {e}", self.0.display());
        }
    }
}

/// A port free on `ip` right now: bound with port 0 and released.
fn free_port(ip: Ipv4Addr) -> u16 {
    TcpListener::bind((ip, 0))
        .unwrap_or_else(|e| panic!("cannot bind {ip}:0 to find a free port: {e}"))
        .local_addr()
        .unwrap()
        .port()
}

/// A server process we started (its own process group), stopped on drop: SIGTERM, then
/// SIGKILL when it has not exited within [`STOP_TIMEOUT`].
struct Server {
    name: &'static str,
    child: Child,
}

impl Server {
    /// Starts `command` in its own process group (postfix's master signals its group when it
    /// stops, and must never reach the test harness's).
    fn spawn(name: &'static str, command: &mut Command, dir: &TempDir) -> Self {
        let out = fs::File::create(dir.path().join(format!("{name}.out"))).unwrap();
        let err = out.try_clone().unwrap();
        let child = command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Self { name, child }
    }

    /// Waits until `addr` accepts a TCP connection, failing with `logs()` when the server
    /// exits first or the wait passes [`START_TIMEOUT`].
    fn wait_listening(&mut self, addr: SocketAddr, logs: impl Fn() -> String) {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "{} exited before listening on {addr} ({status}); its logs:\n{}",
                    self.name,
                    logs()
                );
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return;
            }
            assert!(
                started.elapsed() < START_TIMEOUT,
                "{} did not listen on {addr} within {START_TIMEOUT:?}; its logs:\n{}",
                self.name,
                logs()
            );
            sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        // SIGTERM by process id: postfix's master then stops its own children, nginx its
        // workers. Without a `kill` binary, SIGKILL is all std offers.
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
        eprintln!("{} did not stop on SIGTERM; killing it", self.name);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `read` until `found` holds, failing with what was read after [`LOG_TIMEOUT`].
fn wait_for_log(what: &str, read: impl Fn() -> String, found: impl Fn(&str) -> bool) -> String {
    let started = Instant::now();
    loop {
        let text = read();
        if found(&text) {
            return text;
        }
        assert!(
            started.elapsed() < LOG_TIMEOUT,
            "{what} did not appear within {LOG_TIMEOUT:?}; the log so far:\n{text}"
        );
        sleep(Duration::from_millis(50));
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

// ---------------------------------------------------------------------------------------
// Certificates.

/// A root (the only trust anchor), an intermediate under it, and leaves issued by the
/// intermediate, valid from yesterday for thirty days.
struct Pki {
    anchors: Anchors,
    /// The root, as PEM (`--ca-file`).
    root_pem: String,
    ca: CertAuthority,
    window: Validity,
}

impl Pki {
    fn new() -> Self {
        let now = OffsetDateTime::now_utc();
        let window = Validity::new(
            now - time::Duration::days(1),
            now + time::Duration::days(30),
        );
        let root = CertAuthority::root("Real MTA Test Root", window, KeyKind::EcdsaP256).unwrap();
        let anchors = Anchors::from_pem(root.cert().pem().as_bytes()).unwrap();
        let root_pem = root.cert().pem().to_string();
        let ca = root
            .intermediate("Real MTA Test Intermediate", window, KeyKind::EcdsaP256)
            .unwrap();
        Self {
            anchors,
            root_pem,
            ca,
            window,
        }
    }

    /// A leaf for `name`, the chain a server must send (leaf, intermediate), and that chain
    /// as one PEM file.
    fn leaf(&self, name: &str) -> (Issued, Vec<CertificateDer<'static>>, String) {
        let leaf = self.ca.leaf(&LeafSpec::new(&[name], self.window)).unwrap();
        let chain = self.ca.chain_for(&leaf);
        let pem = format!("{}{}", leaf.pem(), self.ca.cert().pem());
        (leaf, chain, pem)
    }
}

fn name(s: &str) -> DomainName {
    DomainName::parse(s).unwrap()
}

// ---------------------------------------------------------------------------------------
// postfix.

/// One postfix instance: `master -d` in the foreground with its own configuration
/// directory, queue and data directories, and log file, all under one temporary directory.
/// Field order matters: the server stops before its directory is removed.
struct Postfix {
    _server: Server,
    dir: TempDir,
    addr: SocketAddr,
}

impl Postfix {
    /// Starts postfix on `ip` (a free port) with `tls`: `Some((cert chain PEM, key PEM))`
    /// for `smtpd_tls_security_level = may`, `None` for `none`.
    fn start(install: &PostfixInstall, ip: Ipv4Addr, tls: Option<(&str, &str)>) -> Self {
        Self::start_with(install, ip, tls, None)
    }

    /// [`Postfix::start`], and with `mailbox_domain` it accepts mail from loopback clients
    /// for that domain (every local part) and delivers it with its `virtual` agent into one
    /// Maildir, `mail/reports/` under its directory (see [`Postfix::maildir`]). Still nothing
    /// is relayed or sent anywhere.
    fn start_with(
        install: &PostfixInstall,
        ip: Ipv4Addr,
        tls: Option<(&str, &str)>,
        mailbox_domain: Option<&str>,
    ) -> Self {
        let dir = TempDir::new("postfix");
        let root = dir.path().display().to_string();
        let port = free_port(ip);
        let addr = SocketAddr::new(IpAddr::V4(ip), port);
        let postfix = Some((install.postfix_uid, 0));
        // The queue directory layout master and smtpd expect (postfix-files): pid/ for the
        // master's pid file, private/ and public/ for the service sockets.
        dir.dir("queue", 0o755, None);
        dir.dir("queue/pid", 0o755, None);
        dir.dir("queue/private", 0o700, postfix);
        dir.dir(
            "queue/public",
            0o710,
            Some((install.postfix_uid, install.postdrop_gid)),
        );
        dir.dir("data", 0o700, postfix);

        let tls_lines = match tls {
            Some((chain_pem, key_pem)) => {
                // The key stays root-only: smtpd reads it before it drops privileges.
                let cert = dir.write("tls/chain.pem", chain_pem, 0o644);
                let key = dir.write("tls/key.pem", key_pem, 0o600);
                format!(
                    "smtpd_tls_security_level = may\n\
                     smtpd_tls_cert_file = {}\n\
                     smtpd_tls_key_file = {}\n\
                     smtpd_tls_loglevel = 1\n",
                    cert.display(),
                    key.display()
                )
            }
            None => "smtpd_tls_security_level = none\n".to_owned(),
        };
        let (restrictions, delivery_lines, delivery_services) = match mailbox_domain {
            None => (
                "smtpd_relay_restrictions = reject\n\
                 smtpd_recipient_restrictions = reject\n"
                    .to_owned(),
                String::new(),
                "",
            ),
            Some(domain) => {
                // The queue directories master and its daemons expect (postfix-files); the
                // Maildir parent is the virtual user's (the postfix account).
                for queue in [
                    "incoming", "active", "deferred", "bounce", "defer", "trace", "corrupt",
                    "hold", "flush", "saved",
                ] {
                    dir.dir(&format!("queue/{queue}"), 0o700, postfix);
                }
                dir.dir(
                    "queue/maildrop",
                    0o730,
                    Some((install.postfix_uid, install.postdrop_gid)),
                );
                dir.dir("mail", 0o755, postfix);
                (
                    "smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination\n\
                     smtpd_recipient_restrictions = permit_mynetworks, reject\n"
                        .to_owned(),
                    format!(
                        "virtual_mailbox_domains = {domain}\n\
                         virtual_mailbox_base = {root}/mail\n\
                         virtual_mailbox_maps = static:reports/\n\
                         virtual_uid_maps = static:{uid}\n\
                         virtual_gid_maps = static:{gid}\n\
                         virtual_minimum_uid = 1\n\
                         virtual_transport = virtual\n",
                        uid = install.postfix_uid,
                        gid = install.postdrop_gid
                    ),
                    // The daemons one accepted message passes through on its way to the
                    // Maildir, chroot off as above.
                    "cleanup unix n - n - 0 cleanup\n\
                     qmgr unix n - n 300 1 qmgr\n\
                     rewrite unix - - n - - trivial-rewrite\n\
                     bounce unix - - n - 0 bounce\n\
                     defer unix - - n - 0 bounce\n\
                     trace unix - - n - 0 bounce\n\
                     verify unix - - n - 1 verify\n\
                     flush unix n - n 1000? 0 flush\n\
                     scache unix - - n - 1 scache\n\
                     error unix - - n - - error\n\
                     retry unix - - n - - error\n\
                     virtual unix - n n - - virtual\n",
                )
            }
        };
        let main_cf = format!(
            "# mxprobe's real-MTA test: one smtpd on {addr}; relays nothing.\n\
             compatibility_level = 3.6\n\
             myhostname = {MX}\n\
             mydomain = real-mta.test\n\
             myorigin = $myhostname\n\
             mydestination =\n\
             mynetworks = 127.0.0.0/8\n\
             relayhost =\n\
             default_transport = error:mxprobe test instance delivers nothing\n\
             relay_transport = error:mxprobe test instance delivers nothing\n\
             {restrictions}\
             inet_interfaces = 127.0.0.1\n\
             inet_protocols = ipv4\n\
             smtpd_peername_lookup = no\n\
             smtp_dns_support_level = disabled\n\
             alias_maps =\n\
             alias_database =\n\
             local_recipient_maps =\n\
             queue_directory = {root}/queue\n\
             data_directory = {root}/data\n\
             maillog_file = {root}/maillog\n\
             maillog_file_prefixes = {root}\n\
             {delivery_lines}\
             {tls_lines}"
        );
        dir.write("main.cf", &main_cf, 0o644);
        // chroot off (column 5 = n): the queue directory is not a chroot jail here.
        let master_cf = format!(
            "{addr} inet n - n - - smtpd\n\
             anvil unix - - n - 1 anvil\n\
             tlsmgr unix - - n 1000? 1 tlsmgr\n\
             postlog unix-dgram n - n - 1 postlogd\n\
             {delivery_services}"
        );
        dir.write("master.cf", &master_cf, 0o644);

        // `master -d`: stay in the foreground, so the test owns the process.
        let mut server = Server::spawn(
            "postfix",
            Command::new(&install.master)
                .arg("-c")
                .arg(dir.path())
                .arg("-d"),
            &dir,
        );
        server.wait_listening(addr, || {
            format!(
                "maillog:\n{}\nstdout/stderr:\n{}",
                dir.read("maillog"),
                dir.read("postfix.out")
            )
        });
        Self {
            _server: server,
            dir,
            addr,
        }
    }

    fn log(&self) -> String {
        self.dir.read("maillog")
    }

    /// The Maildir of [`Postfix::start_with`]'s mailbox domain.
    fn maildir(&self) -> PathBuf {
        self.dir.path().join("mail/reports")
    }

    /// postfix's `disconnect from` line for the session that sent EHLO (the readiness check
    /// connected without a word and logs `commands=0`).
    fn session_summary(&self) -> String {
        let log = wait_for_log(
            "postfix's disconnect line for the probe's session",
            || self.log(),
            |log| {
                log.lines()
                    .any(|l| l.contains("disconnect from") && l.contains("ehlo="))
            },
        );
        log.lines()
            .find(|l| l.contains("disconnect from") && l.contains("ehlo="))
            .unwrap_or_default()
            .to_owned()
    }
}

fn smtp_config() -> SmtpConfig {
    SmtpConfig {
        ehlo_name: EhloName::parse(EHLO_NAME).unwrap(),
        connect_timeout: Duration::from_secs(2),
        phase_timeout: Duration::from_secs(5),
        deadline: Duration::from_secs(10),
        tls: capture::client_config(),
    }
}

/// The greeting and EHLO facts every postfix session must show: the 220 banner and the 250
/// reply to EHLO both announce `myhostname`, which is also the RFC 8460 receiving-mx-helo.
fn assert_postfix_greeted(facts: &SmtpFacts, log: &str) {
    let banner = facts.banner.as_ref().expect("a banner");
    assert_eq!(banner.code, 220, "{facts:#?}\n{log}");
    assert_eq!(banner.announced_name(), Some(MX));
    // postfix's default smtpd_banner is "$myhostname ESMTP $mail_name ...".
    assert!(banner.text().contains("ESMTP Postfix"), "{banner:?}");
    let ehlo = facts.ehlo.as_ref().expect("a reply to EHLO");
    assert_eq!(ehlo.code, 250, "{facts:#?}");
    assert_eq!(ehlo.announced_name(), Some(MX));
    assert_eq!(facts.helo, None, "EHLO was accepted, so no HELO");
    // Keywords postfix always announces: the multi-line reply was read to its end.
    for keyword in ["PIPELINING", "ENHANCEDSTATUSCODES", "8BITMIME"] {
        assert!(
            facts.ehlo_keywords.iter().any(|k| k == keyword),
            "{keyword} missing from {:?}",
            facts.ehlo_keywords
        );
    }
    assert_eq!(facts.receiving_mx_helo(), Some(MX));
    let quit = facts.quit.as_ref().expect("a reply to QUIT");
    assert_eq!(quit.code, 221, "{quit:?}");
    // The source address mxprobe records (sending-mta-ip) is the one postfix saw.
    let source = facts.source_ip.expect("the local address is recorded");
    assert!(source.is_loopback(), "{source}");
    assert!(
        log.contains(&format!("connect from unknown[{source}]")),
        "postfix saw another client address than {source}:\n{log}"
    );
}

#[test]
fn postfix_starttls_session_is_recorded_and_judged() {
    const TEST: &str = "real_mta::postfix_starttls_session_is_recorded_and_judged";
    let Some(install) = postfix_install(TEST) else {
        return;
    };
    let pki = Pki::new();
    let (leaf, chain, chain_pem) = pki.leaf(MX);
    let postfix = Postfix::start(&install, POSTFIX_TLS_IP, Some((&chain_pem, leaf.key_pem())));
    let mx = name(MX);

    let facts = runtime().block_on(probe(&smtp_config(), &mx, postfix.addr));
    let summary = postfix.session_summary();
    let log = postfix.log();

    assert_eq!(facts.outcome, SmtpOutcome::Completed, "{facts:#?}\n{log}");
    assert_eq!(facts.address, postfix.addr);
    assert_postfix_greeted(&facts, &log);
    assert!(
        facts.ehlo_keywords.iter().any(|k| k == "STARTTLS"),
        "{:?}",
        facts.ehlo_keywords
    );
    assert_eq!(facts.starttls.as_ref().map(|r| r.code), Some(220));
    // RFC 3207 §4.2: after TLS the server must not offer STARTTLS again; everything else it
    // offered stays.
    let after = facts.ehlo_after_tls.as_ref().expect("EHLO inside TLS");
    assert_eq!(after.code, 250);
    assert_eq!(after.announced_name(), Some(MX));
    let mut expected_after = facts.ehlo_keywords.clone();
    expected_after.retain(|k| k != "STARTTLS");
    assert_eq!(facts.ehlo_keywords_after_tls, expected_after);

    let tls = facts.tls.as_ref().expect("TLS facts");
    assert!(
        tls.version == "TLSv1.2" || tls.version == "TLSv1.3",
        "{}",
        tls.version
    );
    assert_eq!(tls.sni.as_deref(), Some(MX));
    assert_eq!(
        tls.chain, chain,
        "the recorded chain is the configured leaf and intermediate, in order"
    );
    let verdict = judge_for_host(&tls.chain, &mx, OffsetDateTime::now_utc(), &pki.anchors);
    assert!(verdict.is_valid(), "{verdict:?}");
    // The same chain is not trusted without our root (Mozilla's roots only).
    let untrusted = judge_for_host(
        &tls.chain,
        &mx,
        OffsetDateTime::now_utc(),
        &Anchors::mozilla(),
    );
    assert!(!untrusted.pkix_valid(), "{untrusted:?}");

    // postfix's side of the same session: the TLS version and cipher mxprobe recorded, and
    // exactly EHLO, STARTTLS, EHLO, QUIT (never MAIL or RCPT).
    assert!(
        log.contains("TLS connection established from unknown["),
        "{log}"
    );
    assert!(
        log.contains(&format!("{} with cipher", tls.version)),
        "postfix logged another TLS version than {}:\n{log}",
        tls.version
    );
    if tls.version == "TLSv1.3" {
        // TLS 1.3 suites have the same name in OpenSSL and IANA.
        assert!(
            log.contains(&tls.cipher_suite),
            "{}:\n{log}",
            tls.cipher_suite
        );
    }
    assert!(
        summary.ends_with("ehlo=2 starttls=1 quit=1 commands=4"),
        "{summary}"
    );
}

#[test]
fn postfix_without_tls_is_starttls_not_offered() {
    const TEST: &str = "real_mta::postfix_without_tls_is_starttls_not_offered";
    let Some(install) = postfix_install(TEST) else {
        return;
    };
    let postfix = Postfix::start(&install, POSTFIX_PLAIN_IP, None);
    let mx = name(MX);

    let facts = runtime().block_on(probe(&smtp_config(), &mx, postfix.addr));
    let summary = postfix.session_summary();
    let log = postfix.log();

    assert_eq!(
        facts.outcome,
        SmtpOutcome::StarttlsNotOffered,
        "{facts:#?}\n{log}"
    );
    assert!(!facts.outcome.is_inconclusive());
    assert_postfix_greeted(&facts, &log);
    assert!(
        !facts.ehlo_keywords.iter().any(|k| k == "STARTTLS"),
        "{:?}",
        facts.ehlo_keywords
    );
    assert_eq!(facts.starttls, None);
    assert_eq!(facts.tls, None);
    assert_eq!(facts.ehlo_after_tls, None);
    assert!(summary.ends_with("ehlo=1 quit=1 commands=2"), "{summary}");
}

// ---------------------------------------------------------------------------------------
// nginx.

/// One nginx (master and one worker) in the foreground with its own prefix directory, two
/// HTTPS virtual hosts on one address chosen by SNI, and an access log that records the
/// SNI, Host, request line, status and User-Agent of every request.
struct Nginx {
    _server: Server,
    dir: TempDir,
    addr: SocketAddr,
}

/// One virtual host: its server name, the chain PEM and key PEM, and the `location` body.
struct VirtualHost<'a> {
    server_name: &'a str,
    chain_pem: &'a str,
    key_pem: &'a str,
    location: String,
}

impl Nginx {
    fn start(nginx: &Path, ip: Ipv4Addr, hosts: &[VirtualHost<'_>]) -> Self {
        let dir = TempDir::new("nginx");
        let root = dir.path().display().to_string();
        let port = free_port(ip);
        let addr = SocketAddr::new(IpAddr::V4(ip), port);
        dir.write("www/.well-known/mta-sts.txt", POLICY, 0o644);
        fs::set_permissions(
            dir.path().join("www/.well-known"),
            fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        fs::set_permissions(dir.path().join("www"), fs::Permissions::from_mode(0o755)).unwrap();

        let mut servers = String::new();
        for (i, host) in hosts.iter().enumerate() {
            let cert = dir.write(&format!("tls/{i}.chain.pem"), host.chain_pem, 0o644);
            let key = dir.write(&format!("tls/{i}.key.pem"), host.key_pem, 0o600);
            servers.push_str(&format!(
                "  server {{\n\
                 \x20   listen {addr} ssl;\n\
                 \x20   server_name {};\n\
                 \x20   ssl_certificate {};\n\
                 \x20   ssl_certificate_key {};\n\
                 \x20   root {root}/www;\n\
                 \x20   location = /.well-known/mta-sts.txt {{ {} }}\n\
                 \x20   location / {{ return 404; }}\n\
                 \x20 }}\n",
                host.server_name,
                cert.display(),
                key.display(),
                host.location
            ));
        }
        let conf = format!(
            "# mxprobe's real-MTA test: HTTPS on {addr} only.\n\
             worker_processes 1;\n\
             error_log {root}/error.log info;\n\
             events {{ worker_connections 64; }}\n\
             http {{\n\
             \x20 log_format probe '$ssl_server_name|$host|$request|$status|$http_user_agent';\n\
             \x20 access_log {root}/access.log probe;\n\
             \x20 client_body_temp_path {root}/tmp/body;\n\
             \x20 proxy_temp_path {root}/tmp/proxy;\n\
             \x20 fastcgi_temp_path {root}/tmp/fastcgi;\n\
             \x20 uwsgi_temp_path {root}/tmp/uwsgi;\n\
             \x20 scgi_temp_path {root}/tmp/scgi;\n\
             {servers}}}\n"
        );
        let conf_path = dir.write("nginx.conf", &conf, 0o644);
        dir.dir("tmp", 0o755, None);

        // -e: the error log before the configuration is read (not /var/log/nginx).
        let mut server = Server::spawn(
            "nginx",
            Command::new(nginx)
                .arg("-e")
                .arg(format!("{root}/error.log"))
                .arg("-p")
                .arg(dir.path())
                .arg("-c")
                .arg(&conf_path)
                .arg("-g")
                .arg(format!("daemon off; pid {root}/nginx.pid;")),
            &dir,
        );
        server.wait_listening(addr, || {
            format!(
                "error.log:\n{}\nstdout/stderr:\n{}",
                dir.read("error.log"),
                dir.read("nginx.out")
            )
        });
        Self {
            _server: server,
            dir,
            addr,
        }
    }

    /// The access-log line of the request for `host` (SNI|Host|request|status|User-Agent).
    fn access_line(&self, host: &str) -> String {
        let prefix = format!("{host}|");
        let log = wait_for_log(
            &format!("nginx's access-log line for {host}"),
            || self.dir.read("access.log"),
            |log| log.lines().any(|l| l.starts_with(&prefix)),
        );
        log.lines()
            .find(|l| l.starts_with(&prefix))
            .unwrap_or_default()
            .to_owned()
    }
}

/// The single response of a fetch from nginx's address.
fn nginx_response(facts: &PolicyFetchFacts, ip: Ipv4Addr) -> &HttpResponse {
    assert_eq!(facts.attempts.len(), 1, "{facts:#?}");
    assert_eq!(facts.attempts[0].address, Some(IpAddr::V4(ip)));
    match &facts.attempts[0].outcome {
        FetchOutcome::Response(r) => r,
        other => panic!("expected an HTTP response from nginx, got {other:?}"),
    }
}

fn der(chain: &[CertificateDer<'static>]) -> Vec<Vec<u8>> {
    chain.iter().map(|c| c.as_ref().to_vec()).collect()
}

#[test]
fn nginx_serves_a_policy_and_a_redirect() {
    const TEST: &str = "real_mta::nginx_serves_a_policy_and_a_redirect";
    let Some(nginx) = nginx_binary(TEST) else {
        return;
    };
    let pki = Pki::new();
    let domain = name(POLICY_DOMAIN);
    let moved = name(MOVED_DOMAIN);
    let host = format!("mta-sts.{POLICY_DOMAIN}");
    let moved_host = format!("mta-sts.{MOVED_DOMAIN}");
    let (leaf, chain, chain_pem) = pki.leaf(&host);
    let (moved_leaf, moved_chain, moved_pem) = pki.leaf(&moved_host);
    let server = Nginx::start(
        &nginx,
        NGINX_IP,
        &[
            VirtualHost {
                server_name: &host,
                chain_pem: &chain_pem,
                key_pem: leaf.key_pem(),
                location: "default_type text/plain;".to_owned(),
            },
            VirtualHost {
                server_name: &moved_host,
                chain_pem: &moved_pem,
                key_pem: moved_leaf.key_pem(),
                location: format!("return 301 {MOVED_TO};"),
            },
        ],
    );
    let config = FetchConfig::new(FetchTimeouts {
        connect: Duration::from_secs(3),
        request: Duration::from_secs(5),
        overall: Duration::from_secs(10),
    })
    .with_port(server.addr.ip(), server.addr.port());
    let rt = runtime();
    let now = OffsetDateTime::now_utc();

    // The policy: 200, text/plain, the file's bytes, the chain of this virtual host.
    let facts = rt.block_on(fetch_policy(&config, &domain, &[IpAddr::V4(NGINX_IP)]));
    assert_eq!(
        facts.url,
        "https://mta-sts.real-mta.test/.well-known/mta-sts.txt"
    );
    let response = nginx_response(&facts, NGINX_IP);
    assert_eq!(response.status, 200, "{response:#?}");
    assert_eq!(response.content_type.as_deref(), Some("text/plain"));
    assert_eq!(response.location, None);
    assert_eq!(response.body, POLICY);
    assert!(!response.body_truncated && !response.body_not_utf8);
    assert_eq!(response.chain, der(&chain), "nginx chose the vhost by SNI");
    let judged = judge_fetch(&domain, &facts, &pki.anchors, now, ContentTypeRule::Reject);
    let expected = Policy {
        mode: Mode::Enforce,
        max_age: 86400,
        mx: vec![
            MxPattern::exact(name(MX)),
            MxPattern::wildcard(name("backup.real-mta.test")),
        ],
        extensions: Vec::new(),
    };
    assert_eq!(judged.verdict, FetchVerdict::Policy(expected));
    assert_eq!(
        judged.findings,
        Vec::new(),
        "a clean policy has no findings"
    );
    assert_eq!(
        judged.policy_string,
        POLICY.lines().map(str::to_owned).collect::<Vec<_>>()
    );
    // nginx's side: SNI and Host are the policy host, not the address; no redirect followed.
    assert_eq!(
        server.access_line(&host),
        format!("{host}|{host}|GET /.well-known/mta-sts.txt HTTP/1.1|200|{DEFAULT_USER_AGENT}")
    );

    // The redirect: recorded, not followed; a policy-fetch error for senders.
    let facts = rt.block_on(fetch_policy(&config, &moved, &[IpAddr::V4(NGINX_IP)]));
    let response = nginx_response(&facts, NGINX_IP);
    assert_eq!(response.status, 301, "{response:#?}");
    assert_eq!(response.location.as_deref(), Some(MOVED_TO));
    assert_eq!(response.chain, der(&moved_chain));
    let judged = judge_fetch(&moved, &facts, &pki.anchors, now, ContentTypeRule::Reject);
    assert_eq!(
        judged.verdict,
        FetchVerdict::Failed {
            result_type: ResultType::StsPolicyFetchError,
            reason_code: "http-redirect-301".to_owned(),
        }
    );
    assert_eq!(
        server.access_line(&moved_host),
        format!(
            "{moved_host}|{moved_host}|GET /.well-known/mta-sts.txt HTTP/1.1|301|{DEFAULT_USER_AGENT}"
        )
    );
    let access = server.dir.read("access.log");
    assert_eq!(
        access.lines().count(),
        2,
        "one request per fetch:\n{access}"
    );
}

// ---------------------------------------------------------------------------------------
// Report delivery: `scan --deliver-reports` into postfix and an HTTPS receiver, read back.

/// The Maildir postfix delivers report mail into serves this domain.
const REPORT_MAIL_DOMAIN: &str = "reports.real-mta.test";
/// The host of the `https:` destination (the lab's report endpoint, hyper + tokio-rustls).
const REPORT_HTTPS_HOST: &str = "reports-http.real-mta.test";
const POSTFIX_DELIVERING_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 64);
const REPORT_HTTPS_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 65);

fn run_mxprobe(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_mxprobe"))
        .args(args)
        .env_remove("MXPROBE_DB")
        .output()
        .expect("mxprobe runs")
}

/// The whole loop of RFC 8460 §5 against real software: a scan finds a DANE failure at the
/// domain's MX, `--deliver-reports` sends the synthetic report to both `rua` destinations
/// (postfix, through STARTTLS, into a Maildir; an HTTPS endpoint by POST), the mail is held
/// to RFC 8460 §5.3, `reports ingest` reads exactly that report from the Maildir, and
/// `reports compare` lines its failure up with the scan's finding.
#[test]
fn a_delivered_report_arrives_in_postfix_and_reads_back() {
    use mail_parser::{MessageParser, MimeHeaders};
    use mxprobe_core::synthetic_report::{CONTACT, ORGANIZATION, SENDER_DOMAIN};
    use mxprobe_core::tlsrpt::filename::ReportFileName;
    use mxprobe_lab::dns::{LabDns, LabRecord, Signing};
    use mxprobe_lab::https::{HostBehaviour, PolicyHost, PolicyResponse, PolicyServer};
    use serde_json::Value;

    const TEST: &str = "real_mta::a_delivered_report_arrives_in_postfix_and_reads_back";
    let Some(install) = postfix_install(TEST) else {
        return;
    };
    let pki = Pki::new();
    // A certificate for another name: the MTA-STS failure (certificate-host-mismatch) the
    // report carries. Reporters deliver the report itself despite it (RFC 8460 §5.3).
    let (leaf, _, chain_pem) = pki.leaf("other.real-mta.test");
    let postfix = Postfix::start_with(
        &install,
        POSTFIX_DELIVERING_IP,
        Some((&chain_pem, leaf.key_pem())),
        Some(REPORT_MAIL_DOMAIN),
    );

    // DNS (the lab's signed `test` zone) and the HTTPS receiver, served from a runtime of
    // their own while the mxprobe processes run.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let record = format!(
        "v=TLSRPTv1; rua=mailto:tlsrpt@{REPORT_MAIL_DOMAIN},https://{REPORT_HTTPS_HOST}/v1/tlsrpt"
    );
    let dns = rt.block_on(async {
        LabDns::builder()
            .zone("test", Signing::Signed)
            .record(
                POLICY_DOMAIN,
                LabRecord::Mx {
                    preference: 10,
                    exchange: MX.to_owned(),
                },
            )
            .record(
                REPORT_MAIL_DOMAIN,
                LabRecord::Mx {
                    preference: 10,
                    exchange: MX.to_owned(),
                },
            )
            .record(MX, LabRecord::A(POSTFIX_DELIVERING_IP))
            .record(
                &format!("_mta-sts.{POLICY_DOMAIN}"),
                LabRecord::Txt(vec!["v=STSv1; id=20261202T000000".to_owned()]),
            )
            .record(
                &format!("mta-sts.{POLICY_DOMAIN}"),
                LabRecord::A(REPORT_HTTPS_IP),
            )
            .record(
                &format!("_smtp._tls.{POLICY_DOMAIN}"),
                LabRecord::Txt(vec![record.clone()]),
            )
            .record(REPORT_HTTPS_HOST, LabRecord::A(REPORT_HTTPS_IP))
            .build()
            .unwrap()
            .start()
            .await
            .unwrap()
    });
    let (https_leaf, https_chain, _) = pki.leaf(REPORT_HTTPS_HOST);
    let policy_host = format!("mta-sts.{POLICY_DOMAIN}");
    let (policy_leaf, policy_chain, _) = pki.leaf(&policy_host);
    let https = rt
        .block_on(PolicyServer::start(
            IpAddr::V4(REPORT_HTTPS_IP),
            vec![
                PolicyHost {
                    name: REPORT_HTTPS_HOST.to_owned(),
                    chain: https_chain,
                    key: https_leaf.private_key(),
                    behaviour: HostBehaviour::ReportEndpoint,
                },
                PolicyHost::new(
                    &policy_host,
                    policy_chain,
                    policy_leaf.private_key(),
                    PolicyResponse::policy(&format!(
                        "version: STSv1\nmode: enforce\nmx: {MX}\nmax_age: 86400\n"
                    )),
                ),
            ],
        ))
        .unwrap();
    let files = TempDir::new("deliver");
    let anchor = files.write("trust-anchor.txt", &dns.trust_anchor, 0o644);
    let ca = files.write("root.pem", &pki.root_pem, 0o644);
    let db = files.path().join("history.sqlite");
    let (dns_addr, smtp_port, https_port) = (
        dns.addr.to_string(),
        postfix.addr.port().to_string(),
        https.addr.port().to_string(),
    );
    let probe_flags = [
        "--resolver",
        dns_addr.as_str(),
        "--trust-anchor",
        anchor.to_str().unwrap(),
        "--ca-file",
        ca.to_str().unwrap(),
        "--smtp-port",
        smtp_port.as_str(),
        "--https-port",
        https_port.as_str(),
        "--ehlo-name",
        EHLO_NAME,
    ];

    // The scan, and the deliveries it reports.
    // `scan --deliver-reports` of the policy domain through the lab, with `extra` flags.
    let deliver_scan = |extra: &[&str]| {
        let mut args = vec![
            "scan",
            POLICY_DOMAIN,
            "--deliver-reports",
            "--report-from",
            "tlsrpt-test@real-mta.test",
            "--format",
            "json",
        ];
        args.extend_from_slice(extra);
        args.extend_from_slice(&probe_flags);
        run_mxprobe(&args)
    };
    let out = deliver_scan(&[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "the certificate fails: {stderr}"
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let domain = &doc["domains"][0];
    let codes: Vec<&str> = domain["verdict"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap())
        .collect();
    assert!(codes.contains(&"smtp.cert.name-mismatch"), "{codes:?}");
    let destinations: Vec<&str> = domain["verdict"]["tlsrpt_destinations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["delivery"].as_str().unwrap())
        .collect();
    assert_eq!(destinations, ["deliverable-tls", "reachable"]);
    let deliveries = domain["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), 2, "{deliveries:#?}");
    let mail = &deliveries[0];
    assert_eq!(mail["uri"], format!("mailto:tlsrpt@{REPORT_MAIL_DOMAIN}"));
    assert_eq!(mail["accepted"], true, "{mail:#}\n{}", postfix.log());
    assert_eq!(mail["tls"], true, "delivered through STARTTLS: {mail:#}");
    assert!(
        mail["answer"].as_str().unwrap().starts_with("250 "),
        "{mail:#}"
    );
    let web = &deliveries[1];
    assert_eq!(web["accepted"], true, "{web:#}");
    assert_eq!(web["answer"], "HTTP 200 OK");
    let file_name = mail["file_name"].as_str().unwrap().to_owned();
    assert_eq!(web["file_name"], file_name.as_str());

    // The mail, as postfix delivered it into the Maildir.
    let maildir = postfix.maildir();
    let new = maildir.join("new");
    // Waits until the Maildir holds `n` new mails.
    let wait_for_mails = |what: &str, n: usize| {
        wait_for_log(
            what,
            || {
                fs::read_dir(&new)
                    .map(|d| d.count().to_string())
                    .unwrap_or_default()
            },
            |count| count == n.to_string(),
        );
    };
    wait_for_mails("the report mail in the Maildir", 1);
    let path = fs::read_dir(&new).unwrap().next().unwrap().unwrap().path();
    let raw = fs::read(&path).unwrap();
    let message = MessageParser::default().parse(&raw).expect("a mail");
    let header = |name: &str| message.header_raw(name).map(str::trim).map(str::to_owned);
    assert_eq!(header("TLS-Report-Domain").as_deref(), Some(POLICY_DOMAIN));
    assert_eq!(
        header("TLS-Report-Submitter").as_deref(),
        Some(SENDER_DOMAIN)
    );
    let subject = message.subject().unwrap();
    assert!(
        subject.starts_with(&format!(
            "Report Domain: {POLICY_DOMAIN} Submitter: {SENDER_DOMAIN} Report-ID: <"
        )),
        "{subject}"
    );
    let top = message.content_type().unwrap();
    assert_eq!(
        (top.ctype(), top.subtype(), top.attribute("report-type")),
        ("multipart", Some("report"), Some("tlsrpt"))
    );
    // postfix received it over TLS (its Received header says so).
    assert!(
        header("Received").is_some_and(|r| r.contains("with ESMTPS")),
        "{:?}",
        header("Received")
    );
    let parts: Vec<_> = message.attachments().collect();
    assert_eq!(parts.len(), 1, "one report attachment");
    let part = parts[0];
    let ct = part.content_type().unwrap();
    assert_eq!(
        (ct.ctype(), ct.subtype()),
        ("application", Some("tlsrpt+gzip"))
    );
    assert_eq!(part.attachment_name(), Some(file_name.as_str()));
    let parsed: ReportFileName = file_name.parse().expect("an RFC 8460 file name");
    assert_eq!(parsed.to_string(), file_name);
    assert!(file_name.starts_with(&format!("{SENDER_DOMAIN}!{POLICY_DOMAIN}!")));
    assert!(file_name.ends_with(".json.gz"), "{file_name}");
    let gzip = part.contents().to_vec();
    let mut json = String::new();
    std::io::Read::read_to_string(
        &mut flate2::read::GzDecoder::new(gzip.as_slice()),
        &mut json,
    )
    .unwrap();
    let report: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(report["organization-name"], ORGANIZATION);
    assert_eq!(report["contact-info"], CONTACT);
    let report_id = report["report-id"].as_str().unwrap().to_owned();
    assert!(subject.ends_with(&format!("<{report_id}>")), "{subject}");

    // The same report, POSTed to the HTTPS receiver.
    let posts: Vec<_> = https
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .collect();
    assert_eq!(posts.len(), 1, "{posts:#?}");
    assert_eq!(posts[0].target, "/v1/tlsrpt");
    assert_eq!(
        posts[0].content_type.as_deref(),
        Some("application/tlsrpt+gzip")
    );
    assert_eq!(posts[0].body, gzip, "the POSTed body is the mailed report");

    // The loop: a monitor run of the domain, the Maildir read back, and the comparison.
    let mut args = vec!["monitor", "--db", db.to_str().unwrap(), POLICY_DOMAIN];
    args.extend(probe_flags);
    let out = run_mxprobe(&args);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run_mxprobe(&[
        "reports",
        "ingest",
        "--db",
        db.to_str().unwrap(),
        maildir.to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run_mxprobe(&[
        "reports",
        "summary",
        "--db",
        db.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert!(
        text.starts_with("1 report(s) stored, 0 already stored, 0 skipped"),
        "{text}"
    );
    // Exactly that report: its reporter, report-id and JSON, as sent.
    let stored: Vec<(String, String, String)> = rusqlite::Connection::open(&db)
        .unwrap()
        .prepare("SELECT reporter, report_id, json FROM reports")
        .unwrap()
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(stored[0].0, ORGANIZATION);
    assert_eq!(stored[0].1, report_id);
    assert_eq!(
        serde_json::from_str::<Value>(&stored[0].2).unwrap(),
        report,
        "the stored report is the one mailed"
    );
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["domains"][0]["policy_domain"], POLICY_DOMAIN);
    assert_eq!(summary["domains"][0]["reporters"][0]["reports"], 1);
    let out = run_mxprobe(&[
        "reports",
        "compare",
        POLICY_DOMAIN,
        "--db",
        db.to_str().unwrap(),
        "--format",
        "json",
    ]);
    let compare: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(compare["reports"], 1, "{compare:#}");
    let both = compare["both"].as_array().unwrap();
    assert!(
        both.iter().any(|b| b.to_string().contains(MX)),
        "the reported failure at {MX} lines up with the scan's finding: {compare:#}"
    );

    // The same report mail through a relay instead of the MX hosts (postfix again, as a
    // loopback relay: plaintext is accepted only there).
    let relay = postfix.addr.to_string();
    let out = deliver_scan(&[
        "--smtp-relay",
        relay.as_str(),
        "--smtp-relay-security",
        "none",
    ]);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mail = &doc["domains"][0]["deliveries"][0];
    assert_eq!(
        mail["accepted"],
        true,
        "{mail:#}
{}",
        postfix.log()
    );
    assert_eq!(mail["tls"], false, "{mail:#}");
    assert!(mail["via"].as_str().unwrap().contains(&relay), "{mail:#}");
    wait_for_mails("the relayed report mail in the Maildir", 2);
    drop(https);
    drop(dns);
}
