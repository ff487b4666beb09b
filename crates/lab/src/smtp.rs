//! The lab's SMTP servers: STARTTLS done well and done badly, on loopback only.
//!
//! An [`SmtpServer`] describes one server's behaviour: its banner (possibly multi-line, or a
//! 421, or never, or dripped one byte at a time), its EHLO keywords, how it answers EHLO
//! (normally, with a refusal that forces HELO, or with a reply far longer than any limit) and
//! STARTTLS (not offered, refused with 454 or 5xx, accepted with a given certificate chain,
//! or accepted and then answered with garbage or a TCP reset instead of a ServerHello).
//! [`SmtpServer::start`] binds a loopback address on an unprivileged port chosen by the
//! system and serves any number of connections at once, counting them ([`SmtpStats`]) and
//! logging the command verbs received, so tests can assert "one probe per (MX, address)",
//! per-address connection limits, and "never MAIL/RCPT". [`RunningSmtp::replace`] swaps the
//! behaviour of a running server (same address, same port): connections accepted afterwards
//! get the new one, connections already open keep the one they started with. The server
//! stops when its [`RunningSmtp`] handle is dropped or shut down; every connection task stops
//! with it.
//!
//! This is test and demo infrastructure: it accepts no mail and refuses to bind anything but
//! a loopback address.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use rustls::ServerConfig;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::timeout;
use tokio_rustls::TlsAcceptor;

use mxprobe_core::smtp::Reply;

/// The longest command line the lab reads (RFC 5321 §4.5.3.1.4: 512 octets; twice that).
const MAX_COMMAND_LEN: usize = 1024;

/// How long the lab waits for a client's next bytes before it hangs up.
const IDLE_LIMIT: Duration = Duration::from_secs(60);

/// How many command verbs the lab keeps in its log.
const MAX_LOGGED_COMMANDS: usize = 10_000;

/// Why a lab SMTP server could not start.
#[derive(Debug, thiserror::Error)]
pub enum LabSmtpError {
    /// The lab listens on loopback only.
    #[error("the lab SMTP server must listen on a loopback address, not {ip}")]
    NotLoopback {
        /// The address asked for.
        ip: IpAddr,
    },
    /// The listening socket could not be opened.
    #[error("cannot listen on {ip}: {source}")]
    Bind {
        /// The address asked for.
        ip: IpAddr,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// rustls refused the certificate chain or key.
    #[error("cannot build the TLS server configuration: {0}")]
    Tls(#[from] rustls::Error),
}

/// How the server greets a new connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Greeting {
    /// `220` with these lines of text (more than one line makes a multi-line banner; the
    /// first word of the first line is the announced name).
    Ready(Vec<String>),
    /// `421` with this text, then the connection is closed (rate limiting).
    ServiceUnavailable(String),
    /// Nothing at all: the connection is accepted and left silent.
    Silent,
    /// `220 ` and then one byte per interval, forever, never ending the line.
    Drip {
        /// The pause between bytes.
        interval: Duration,
    },
}

/// How the server answers EHLO before TLS (after TLS it always answers normally).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EhloAnswer {
    /// `250` with the server's name and keywords.
    Accept,
    /// This code and text (a 5yz forces HELO; a 421 also closes the connection).
    Reject {
        /// The reply code.
        code: u16,
        /// The reply text.
        text: String,
    },
    /// A 250 reply whose first line is 64 KiB long (far beyond any reply limit).
    Oversized,
}

/// How the server handles STARTTLS.
#[derive(Clone)]
pub enum StartTls {
    /// Not listed in EHLO; the command is answered `502`.
    NotOffered,
    /// Listed; answered `220`, then a TLS handshake with this configuration.
    Accept(Arc<ServerConfig>),
    /// Listed; answered with this code and text (e.g. 454) and the session goes on in
    /// plaintext.
    Refuse {
        /// The reply code.
        code: u16,
        /// The reply text.
        text: String,
    },
    /// Listed; answered `220`, then at once bytes that are not TLS, where the ServerHello
    /// belongs. Sent right behind the 220, so they reach the client with it or just after it,
    /// as packet timing decides (the probe must classify both the same way).
    GarbageAfter220,
    /// Listed; answered `220`, then the connection is reset (TCP RST) once the ClientHello
    /// starts to arrive.
    ResetAfter220,
    /// Listed; answered `220`, then the ClientHello is read and the connection closed (FIN)
    /// without a word of TLS.
    CloseAfter220,
}

impl std::fmt::Debug for StartTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotOffered => f.write_str("NotOffered"),
            Self::Accept(_) => f.write_str("Accept(..)"),
            Self::Refuse { code, text } => f
                .debug_struct("Refuse")
                .field("code", code)
                .field("text", text)
                .finish(),
            Self::GarbageAfter220 => f.write_str("GarbageAfter220"),
            Self::ResetAfter220 => f.write_str("ResetAfter220"),
            Self::CloseAfter220 => f.write_str("CloseAfter220"),
        }
    }
}

impl StartTls {
    fn offered(&self) -> bool {
        !matches!(self, Self::NotOffered)
    }
}

/// A TLS server configuration for the lab: ring, TLS 1.2 and 1.3, presenting `chain` (leaf
/// first, as sent) with `key`.
pub fn tls_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<ServerConfig>, LabSmtpError> {
    let config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
            .with_no_client_auth()
            .with_single_cert(chain, key)?;
    Ok(Arc::new(config))
}

/// What one lab SMTP server does. Build it with [`SmtpServer::new`] and change the public
/// fields, then [`SmtpServer::start`] it (and [`RunningSmtp::replace`] it while it runs).
#[derive(Debug, Clone)]
pub struct SmtpServer {
    /// The name the server gives in its 250 replies to EHLO and HELO.
    pub hostname: String,
    /// The greeting.
    pub greeting: Greeting,
    /// EHLO keyword lines (with parameters) besides STARTTLS, which is listed before TLS
    /// whenever [`Self::starttls`] offers it.
    pub keywords: Vec<String>,
    /// The answer to EHLO before TLS.
    pub ehlo: EhloAnswer,
    /// The handling of STARTTLS.
    pub starttls: StartTls,
    /// How long each connection waits before the greeting (a distant server).
    pub latency: Duration,
}

impl SmtpServer {
    /// A well-behaved server named `hostname` that does not offer STARTTLS: banner
    /// `220 <hostname> ESMTP mxprobe lab`, keywords PIPELINING, SIZE, 8BITMIME.
    pub fn new(hostname: &str) -> Self {
        Self {
            hostname: hostname.to_owned(),
            greeting: Greeting::Ready(vec![format!("{hostname} ESMTP mxprobe lab")]),
            keywords: vec![
                "PIPELINING".to_owned(),
                "SIZE 10240000".to_owned(),
                "8BITMIME".to_owned(),
            ],
            ehlo: EhloAnswer::Accept,
            starttls: StartTls::NotOffered,
            latency: Duration::ZERO,
        }
    }

    /// [`Self::new`], offering STARTTLS and presenting `chain` with `key`.
    pub fn with_tls(
        hostname: &str,
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<Self, LabSmtpError> {
        Ok(Self {
            starttls: StartTls::Accept(tls_config(chain, key)?),
            ..Self::new(hostname)
        })
    }

    /// Starts serving on `ip` (a loopback address) at a port the system chooses.
    pub async fn start(self, ip: IpAddr) -> Result<RunningSmtp, LabSmtpError> {
        self.start_on(SocketAddr::new(ip, 0)).await
    }

    /// Starts serving on `addr` (a loopback address; port 0 lets the system choose).
    pub async fn start_on(self, addr: SocketAddr) -> Result<RunningSmtp, LabSmtpError> {
        let ip = addr.ip();
        if !ip.is_loopback() {
            return Err(LabSmtpError::NotLoopback { ip });
        }
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| LabSmtpError::Bind { ip, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| LabSmtpError::Bind { ip, source })?;
        let shared = Arc::new(Shared::default());
        let spec = Arc::new(RwLock::new(Arc::new(self)));
        let task = tokio::spawn(accept_loop(
            listener,
            Arc::clone(&spec),
            Arc::clone(&shared),
        ));
        Ok(RunningSmtp {
            addr,
            spec,
            shared,
            task,
        })
    }
}

/// Connection counters of a running server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SmtpStats {
    /// Connections accepted since start.
    pub connections: usize,
    /// Connections open now.
    pub active: usize,
    /// The most connections that were open at the same time (a connection counts from its
    /// accept until its task sees it end, or until the 221 to QUIT is sent).
    pub max_simultaneous: usize,
}

#[derive(Default)]
struct Shared {
    connections: AtomicUsize,
    active: AtomicUsize,
    max_simultaneous: AtomicUsize,
    commands: Mutex<Vec<String>>,
}

impl Shared {
    fn log(&self, verb: &str) {
        let mut log = self.commands.lock().unwrap_or_else(PoisonError::into_inner);
        if log.len() < MAX_LOGGED_COMMANDS {
            log.push(verb.to_owned());
        }
    }
}

/// Counts a connection as active while it lives (also when its task is aborted), or until
/// the session is over: the 221 to QUIT is sent, after which the client can only close (so a
/// client that waits for its 221 before opening the next connection is never counted twice,
/// however late this task sees the close).
struct ActiveGuard(Arc<Shared>, AtomicBool);

impl ActiveGuard {
    fn new(shared: Arc<Shared>) -> Self {
        shared.connections.fetch_add(1, Ordering::SeqCst);
        let now = shared.active.fetch_add(1, Ordering::SeqCst) + 1;
        shared.max_simultaneous.fetch_max(now, Ordering::SeqCst);
        Self(shared, AtomicBool::new(false))
    }

    /// The session is over (once).
    fn end(&self) {
        if !self.1.swap(true, Ordering::SeqCst) {
            self.0.active.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.end();
    }
}

/// The behaviour a running server gives the connections it accepts next. Each connection
/// clones the inner `Arc` once, when it is accepted, and keeps that behaviour to its end.
type CurrentSpec = Arc<RwLock<Arc<SmtpServer>>>;

/// A running lab SMTP server. Dropping it stops the server and all its connections.
pub struct RunningSmtp {
    addr: SocketAddr,
    spec: CurrentSpec,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for RunningSmtp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningSmtp")
            .field("addr", &self.addr)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl RunningSmtp {
    /// The address the server listens on (the chosen port included).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The connection counters.
    pub fn stats(&self) -> SmtpStats {
        SmtpStats {
            connections: self.shared.connections.load(Ordering::SeqCst),
            active: self.shared.active.load(Ordering::SeqCst),
            max_simultaneous: self.shared.max_simultaneous.load(Ordering::SeqCst),
        }
    }

    /// The command verbs received (upper-cased, e.g. `EHLO`, `STARTTLS`), over all
    /// connections, in the order they arrived (the first 10 000).
    pub fn commands(&self) -> Vec<String> {
        self.shared
            .commands
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The behaviour connections accepted from now on get (the one the server started
    /// with, or the last one given to [`Self::replace`]).
    pub fn spec(&self) -> Arc<SmtpServer> {
        // Writers only swap one `Arc` for another, so a poisoned lock still holds a whole one.
        Arc::clone(&self.spec.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Serves every connection accepted after this call with `spec`, on the same address
    /// and port; connections already open keep the behaviour they started with. The
    /// counters and the command log go on counting.
    pub fn replace(&self, spec: SmtpServer) {
        *self.spec.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(spec);
    }

    /// Stops the server and every open connection now.
    pub fn shutdown(&self) {
        self.task.abort();
    }
}

impl Drop for RunningSmtp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_loop(listener: TcpListener, spec: CurrentSpec, shared: Arc<Shared>) {
    // Dropping the set (when this task is aborted) aborts every connection task.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _peer)) => {
                    let guard = ActiveGuard::new(Arc::clone(&shared));
                    let current = Arc::clone(&spec.read().unwrap_or_else(PoisonError::into_inner));
                    connections.spawn(serve(tcp, current, guard));
                }
                // Out of descriptors or a connection aborted before accept: try again soon.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// How a plaintext or TLS command loop ended.
enum Exit {
    /// The session is over (QUIT, 421, client gone, error).
    Done,
    /// `220` was sent to STARTTLS.
    StartTls,
}

async fn serve(mut tcp: TcpStream, spec: Arc<SmtpServer>, guard: ActiveGuard) {
    if !spec.latency.is_zero() {
        tokio::time::sleep(spec.latency).await;
    }
    match &spec.greeting {
        Greeting::Silent => return drain_until_closed(&mut tcp).await,
        Greeting::Drip { interval } => return drip(&mut tcp, *interval).await,
        Greeting::ServiceUnavailable(text) => {
            let _ = send(&mut tcp, &Reply::new(421, &[text])).await;
            return;
        }
        Greeting::Ready(lines) => {
            let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
            if send(&mut tcp, &Reply::new(220, &lines)).await.is_err() {
                return;
            }
        }
    }
    if let Exit::Done = commands(&mut tcp, &spec, &guard, false).await {
        return;
    }
    match &spec.starttls {
        StartTls::Accept(config) => {
            let acceptor = TlsAcceptor::from(Arc::clone(config));
            if let Ok(Ok(mut tls)) = timeout(IDLE_LIMIT, acceptor.accept(tcp)).await {
                commands(&mut tls, &spec, &guard, true).await;
                let _ = tls.shutdown().await;
            }
        }
        StartTls::GarbageAfter220 => {
            // 't' (0x74) is no TLS record content type.
            if tcp
                .write_all(b"this is not a TLS ServerHello\r\n")
                .await
                .is_ok()
            {
                drain_until_closed(&mut tcp).await;
            }
        }
        StartTls::ResetAfter220 => {
            let mut first = [0u8; 1];
            let _ = timeout(IDLE_LIMIT, tcp.read(&mut first)).await;
            // SO_LINGER 0: closing sends RST instead of FIN.
            let _ = tcp.set_zero_linger();
            drop(tcp);
        }
        StartTls::CloseAfter220 => {
            let mut hello = [0u8; 4096];
            if let Ok(Ok(1..)) = timeout(IDLE_LIMIT, tcp.read(&mut hello)).await {
                // FIN, with the ClientHello read (closing with unread bytes would send a
                // reset instead); then wait for the client to go.
                let _ = tcp.shutdown().await;
                drain_until_closed(&mut tcp).await;
            }
        }
        // `commands` answers 220 to STARTTLS only for the behaviours above.
        StartTls::NotOffered | StartTls::Refuse { .. } => {}
    }
}

/// Reads and discards until the client closes (or goes quiet for [`IDLE_LIMIT`]).
async fn drain_until_closed(tcp: &mut TcpStream) {
    let mut sink = [0u8; 1024];
    while let Ok(Ok(1..)) = timeout(IDLE_LIMIT, tcp.read(&mut sink)).await {}
}

/// `220 ` then one byte per interval until the client goes away.
async fn drip(tcp: &mut TcpStream, interval: Duration) {
    if tcp.write_all(b"220 ").await.is_err() {
        return;
    }
    loop {
        tokio::time::sleep(interval).await;
        if tcp.write_all(b"x").await.is_err() {
            return;
        }
    }
}

async fn send<S: AsyncWrite + Unpin>(s: &mut S, reply: &Reply) -> std::io::Result<()> {
    s.write_all(&reply.to_wire()).await?;
    s.flush().await
}

/// Reads one command line (CRLF or LF), bounded by [`MAX_COMMAND_LEN`] and [`IDLE_LIMIT`];
/// `None` when the client is gone, silent or sends an overlong line.
async fn read_line<S: AsyncRead + Unpin>(s: &mut S, buf: &mut Vec<u8>) -> Option<String> {
    loop {
        if let Some(lf) = buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buf.drain(..=lf).collect();
            let line = String::from_utf8_lossy(&line);
            return Some(line.trim_end_matches(['\r', '\n']).to_owned());
        }
        if buf.len() > MAX_COMMAND_LEN {
            return None;
        }
        let mut chunk = [0u8; 512];
        match timeout(IDLE_LIMIT, s.read(&mut chunk)).await {
            Ok(Ok(n @ 1..)) => buf.extend_from_slice(&chunk[..n]),
            _ => return None,
        }
    }
}

/// The command loop, before TLS (`tls` false) or inside it.
async fn commands<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    spec: &SmtpServer,
    guard: &ActiveGuard,
    tls: bool,
) -> Exit {
    let shared = &guard.0;
    let mut buf = Vec::new();
    loop {
        let Some(line) = read_line(s, &mut buf).await else {
            return Exit::Done;
        };
        let verb = line
            .split_ascii_whitespace()
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        shared.log(&verb);
        let (reply, exit) = match verb.as_str() {
            "EHLO" => match (&spec.ehlo, tls) {
                (EhloAnswer::Oversized, false) => {
                    let long = format!(
                        "250-{} {}\r\n250 OK\r\n",
                        spec.hostname,
                        "x".repeat(64 * 1024)
                    );
                    let _ = s.write_all(long.as_bytes()).await;
                    let _ = s.flush().await;
                    continue;
                }
                (EhloAnswer::Reject { code, text }, false) => {
                    let exit = (*code == 421).then_some(Exit::Done);
                    (Reply::new(*code, &[text]), exit)
                }
                _ => (ehlo_reply(spec, tls), None),
            },
            "HELO" => (Reply::new(250, &[&spec.hostname]), None),
            "STARTTLS" if tls => (Reply::new(503, &["5.5.1 TLS already active"]), None),
            "STARTTLS" => match &spec.starttls {
                StartTls::NotOffered => (Reply::new(502, &["5.5.1 command not implemented"]), None),
                StartTls::Refuse { code, text } => (Reply::new(*code, &[text]), None),
                StartTls::Accept(_)
                | StartTls::GarbageAfter220
                | StartTls::ResetAfter220
                | StartTls::CloseAfter220 => (
                    Reply::new(220, &["2.0.0 Ready to start TLS"]),
                    Some(Exit::StartTls),
                ),
            },
            "QUIT" => (Reply::new(221, &["2.0.0 Bye"]), Some(Exit::Done)),
            "NOOP" | "RSET" => (Reply::new(250, &["2.0.0 OK"]), None),
            "MAIL" | "RCPT" | "DATA" => (
                Reply::new(554, &["5.7.1 the mxprobe lab accepts no mail"]),
                None,
            ),
            _ => (Reply::new(500, &["5.5.2 command not recognised"]), None),
        };
        if send(s, &reply).await.is_err() {
            return Exit::Done;
        }
        if verb == "QUIT" {
            guard.end();
        }
        if let Some(exit) = exit {
            return exit;
        }
    }
}

fn ehlo_reply(spec: &SmtpServer, tls: bool) -> Reply {
    let mut lines = vec![format!("{} greets you", spec.hostname)];
    lines.extend(spec.keywords.iter().cloned());
    if !tls && spec.starttls.offered() {
        lines.push("STARTTLS".to_owned());
    }
    Reply { code: 250, lines }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ehlo_lists_starttls_only_before_tls_and_when_offered() {
        let mut spec = SmtpServer::new("mx.lab.example");
        assert!(!ehlo_reply(&spec, false).has_ehlo_keyword("STARTTLS"));
        spec.starttls = StartTls::Refuse {
            code: 454,
            text: "no".into(),
        };
        assert!(ehlo_reply(&spec, false).has_ehlo_keyword("STARTTLS"));
        assert!(!ehlo_reply(&spec, true).has_ehlo_keyword("STARTTLS"));
        assert_eq!(
            ehlo_reply(&spec, true).announced_name(),
            Some("mx.lab.example")
        );
    }

    /// The first line the server sends after `command` (nothing is sent when it is empty).
    async fn line_after(conn: &mut tokio::io::BufReader<TcpStream>, command: &str) -> String {
        use tokio::io::AsyncBufReadExt;
        conn.get_mut()
            .write_all(command.as_bytes())
            .await
            .expect("send");
        let mut line = String::new();
        timeout(Duration::from_secs(5), conn.read_line(&mut line))
            .await
            .expect("the server answers in time")
            .expect("read");
        line
    }

    #[tokio::test]
    async fn replace_changes_new_connections_only() {
        let lo = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
        let running = SmtpServer::new("one.lab.example")
            .start(lo)
            .await
            .expect("starts");
        let connect = || async {
            tokio::io::BufReader::new(TcpStream::connect(running.addr()).await.expect("connect"))
        };
        let mut old = connect().await;
        assert_eq!(
            line_after(&mut old, "").await,
            "220 one.lab.example ESMTP mxprobe lab\r\n"
        );

        running.replace(SmtpServer::new("two.lab.example"));
        assert_eq!(running.spec().hostname, "two.lab.example");
        let mut new = connect().await;
        assert_eq!(
            line_after(&mut new, "").await,
            "220 two.lab.example ESMTP mxprobe lab\r\n"
        );
        assert_eq!(
            line_after(&mut old, "EHLO client.example\r\n").await,
            "250-one.lab.example greets you\r\n",
            "an open connection keeps its behaviour"
        );
        assert_eq!(
            line_after(&mut new, "EHLO client.example\r\n").await,
            "250-two.lab.example greets you\r\n"
        );
        assert_eq!(running.stats().connections, 2, "same server, same counters");
        assert_eq!(running.commands(), ["EHLO", "EHLO"]);
    }

    #[tokio::test]
    async fn refuses_to_listen_off_loopback() {
        let ip: IpAddr = "192.0.2.1".parse().expect("valid");
        let err = SmtpServer::new("mx")
            .start(ip)
            .await
            .expect_err("not loopback");
        assert!(matches!(err, LabSmtpError::NotLoopback { .. }), "{err}");
    }
}
