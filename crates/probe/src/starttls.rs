//! The STARTTLS probe driver: the one SMTP file that touches the network (tokio +
//! tokio-rustls).
//!
//! [`probe`] connects to one address of one MX host, reads each reply with a bounded buffer
//! and a timeout, feeds it to the pure [`dialogue`](mxprobe_core::smtp::dialogue) and performs the step it
//! returns: send a command, upgrade to TLS (SNI = the MX name, through the recording verifier
//! of [`crate::capture`], so the chain is kept for the evaluators), or finish. It returns
//! [`SmtpFacts`] in every case; a failure is data, never an `Err`.
//!
//! Time bounds: `connect_timeout` for the TCP connection; `phase_timeout` for each wait for
//! bytes from the server (the timer restarts whenever bytes arrive, so a reply that trickles
//! in slowly is not cut off) and for the whole TLS handshake; `deadline` for the whole probe,
//! which is what stops a server that drips bytes forever. Size bounds: the reply parser's
//! limits ([`mxprobe_core::smtp::reply::MAX_LINE_LEN`], [`mxprobe_core::smtp::reply::MAX_LINES`]).

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use mxprobe_core::domain::DomainName;
use mxprobe_core::smtp::dialogue::{Command, Failure, State, Step, TlsUpgrade};
use mxprobe_core::smtp::reply::{self, Parse, Reply};
use mxprobe_core::smtp::{EhloName, Phase, PhaseTiming, SmtpFacts, SmtpOutcome, TlsFacts};

/// What the probe needs: plain data, built once by the configuration stage. The port is in
/// the address given to [`probe`] (the caller maps ports, e.g. to the lab's).
#[derive(Debug, Clone)]
pub struct SmtpConfig {
    /// The name sent with EHLO and HELO.
    pub ehlo_name: EhloName,
    /// The longest wait for the TCP connection.
    pub connect_timeout: Duration,
    /// The longest silence while waiting for a reply, and the longest TLS handshake.
    pub phase_timeout: Duration,
    /// The longest the whole probe may take, from connecting to QUIT.
    pub deadline: Duration,
    /// The TLS client configuration; normally [`crate::capture::client_config`], which
    /// accepts and records any chain.
    pub tls: Arc<ClientConfig>,
}

/// Probes `mx` at `addr`: connect, greeting, EHLO (HELO on 5yz), STARTTLS, TLS handshake with
/// SNI = `mx`, EHLO again, QUIT. Never sends MAIL or RCPT. Always returns facts; where and why
/// it stopped is in [`SmtpFacts::outcome`].
pub async fn probe(config: &SmtpConfig, mx: &DomainName, addr: SocketAddr) -> SmtpFacts {
    probe_with_sni(config, mx, mx, addr).await
}

/// [`probe`], sending `sni` as the TLS server name instead of the MX name: the TLSA base
/// domain when DANE found its records at the CNAME-expanded MX name (RFC 7672 §8.1).
pub async fn probe_with_sni(
    config: &SmtpConfig,
    mx: &DomainName,
    sni: &DomainName,
    addr: SocketAddr,
) -> SmtpFacts {
    let started = Instant::now();
    let mut run = Run {
        facts: SmtpFacts::new(mx.clone(), addr, SmtpOutcome::Completed),
        phase: Phase::Connect,
        phase_started: None,
    };
    let result = timeout(config.deadline, run.drive(config, sni, addr)).await;
    run.facts.outcome = match result {
        Ok(outcome) => outcome,
        Err(_elapsed) => {
            run.end_phase();
            SmtpOutcome::DeadlineExceeded { phase: run.phase }
        }
    };
    run.facts.total_ms = millis(started.elapsed());
    run.facts
}

/// The facts gathered so far and the phase in progress; outlives the drive future so that a
/// passed deadline still returns everything seen.
struct Run {
    facts: SmtpFacts,
    /// The phase in progress, or the last one when none is open.
    phase: Phase,
    /// When the open phase began; `None` between phases.
    phase_started: Option<Instant>,
}

/// The connection, before or after STARTTLS.
enum Conn {
    Plain(TcpStream),
    Tls(Box<TlsStream<Prefixed<TcpStream>>>),
}

/// A stream that yields `prefix` before reading from `inner` (writes go straight to
/// `inner`): the TLS handshake's view of a connection whose first server bytes after the
/// 220 to STARTTLS were already read with the reply. `prefix` is at most what one reply read
/// left over (bounded by the reply parser's limits plus one read).
struct Prefixed<S> {
    prefix: Vec<u8>,
    read: usize,
    inner: S,
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.read < this.prefix.len() {
            let rest = &this.prefix[this.read..];
            let n = rest.len().min(out.remaining());
            out.put_slice(&rest[..n]);
            this.read += n;
            if this.read == this.prefix.len() {
                this.prefix = Vec::new();
                this.read = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, out)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, bytes)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl Run {
    fn begin(&mut self, phase: Phase) {
        self.phase = phase;
        self.phase_started = Some(Instant::now());
    }

    /// Records the open phase's duration (once; nothing when no phase is open).
    fn end_phase(&mut self) {
        if let Some(started) = self.phase_started.take() {
            self.facts.timings.push(PhaseTiming {
                phase: self.phase,
                ms: millis(started.elapsed()),
            });
        }
    }

    async fn drive(
        &mut self,
        config: &SmtpConfig,
        sni: &DomainName,
        addr: SocketAddr,
    ) -> SmtpOutcome {
        self.begin(Phase::Connect);
        let tcp = match timeout(config.connect_timeout, TcpStream::connect(addr)).await {
            Err(_elapsed) => return SmtpOutcome::ConnectTimeout,
            Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionRefused => {
                return SmtpOutcome::ConnectionRefused;
            }
            Ok(Err(e)) => {
                return SmtpOutcome::ConnectFailed {
                    error: e.to_string(),
                };
            }
            Ok(Ok(tcp)) => tcp,
        };
        self.end_phase();
        // RFC 8460 §4.4 sending-mta-ip: the address this connection came from.
        self.facts.source_ip = tcp.local_addr().ok().map(|a| a.ip());

        let mut conn = Conn::Plain(tcp);
        let mut buf = Vec::new();
        let mut state = State::start(config.ehlo_name.clone());
        self.begin(state.phase());
        loop {
            let reply = match read_reply(&mut conn, &mut buf, config.phase_timeout).await {
                Ok(reply) => reply,
                Err(failure) => {
                    self.end_phase();
                    shutdown(conn, config.phase_timeout).await;
                    return state.on_failure(failure);
                }
            };
            self.end_phase();
            self.facts.record_reply(state.phase(), &reply);
            let (command, next) = match state.on_reply(reply) {
                Step::Send { command, next } => (command, next),
                Step::Finish(outcome) => {
                    shutdown(conn, config.phase_timeout).await;
                    return outcome;
                }
                Step::UpgradeTls(upgrade) => {
                    // Bytes that came after the 220 reply are never read as SMTP (RFC 3207
                    // §4.2, CVE-2011-0411): they are what the server sent where its
                    // ServerHello belongs, so the TLS handshake reads them first. Whether
                    // they arrived in the same packet as the 220 or a moment later, the
                    // handshake sees the same bytes and the outcome is the same.
                    let early = std::mem::take(&mut buf);
                    let (tls, command, next) =
                        match self.upgrade(conn, early, config, sni, upgrade).await {
                            Ok(upgraded) => upgraded,
                            Err(outcome) => return outcome,
                        };
                    conn = Conn::Tls(Box::new(tls));
                    (command, next)
                }
            };
            // A phase runs from sending its command to receiving the reply.
            self.begin(next.phase());
            if let Err(failure) = conn.send(&command.to_wire(), config.phase_timeout).await {
                self.end_phase();
                shutdown(conn, config.phase_timeout).await;
                return next.on_failure(failure);
            }
            state = next;
        }
    }

    /// The TLS handshake after a 220 to STARTTLS, recording what it established. `early`:
    /// bytes the server sent after the 220 that were already read; the handshake reads them
    /// before anything else from the socket.
    async fn upgrade(
        &mut self,
        conn: Conn,
        early: Vec<u8>,
        config: &SmtpConfig,
        sni: &DomainName,
        upgrade: TlsUpgrade,
    ) -> Result<(TlsStream<Prefixed<TcpStream>>, Command, State), SmtpOutcome> {
        self.begin(Phase::TlsHandshake);
        let Conn::Plain(tcp) = conn else {
            return Err(SmtpOutcome::ProtocolError {
                phase: Phase::TlsHandshake,
                detail: "STARTTLS was accepted on a connection already in TLS".to_owned(),
            });
        };
        // SNI = the MX host name (RFC 8461 §4.1), or the TLSA base domain (RFC 7672 §8.1).
        let server_name = match ServerName::try_from(sni.as_str().to_owned()) {
            Ok(name) => name,
            Err(e) => {
                return Err(SmtpOutcome::TlsHandshakeFailed {
                    alert: None,
                    error: format!("{sni} cannot be sent as a TLS server name: {e}"),
                });
            }
        };
        let connector = TlsConnector::from(Arc::clone(&config.tls));
        let stream = Prefixed {
            prefix: early,
            read: 0,
            inner: tcp,
        };
        let handshake = timeout(config.phase_timeout, connector.connect(server_name, stream)).await;
        self.end_phase();
        let tls = match handshake {
            Err(_elapsed) => return Err(upgrade.failed(Failure::Timeout)),
            Ok(Err(e)) => return Err(handshake_failure(upgrade, e)),
            Ok(Ok(tls)) => tls,
        };
        let (_, session) = tls.get_ref();
        self.facts.tls = Some(TlsFacts {
            version: session
                .protocol_version()
                .map(version_name)
                .unwrap_or_default(),
            cipher_suite: session
                .negotiated_cipher_suite()
                .map(|s| suite_name(s.suite()))
                .unwrap_or_default(),
            sni: Some(sni.as_str().to_owned()),
            chain: session
                .peer_certificates()
                .map(<[_]>::to_vec)
                .unwrap_or_default(),
        });
        let (command, next) = upgrade.established();
        Ok((tls, command, next))
    }
}

/// Classifies a failed handshake: closes, resets and other socket errors by their kind; a TLS
/// error (alert, bad message, bad signature) as `tls-handshake-failed`.
fn handshake_failure(upgrade: TlsUpgrade, error: io::Error) -> SmtpOutcome {
    let tls_error = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .cloned();
    match tls_error {
        Some(rustls::Error::AlertReceived(alert)) => SmtpOutcome::TlsHandshakeFailed {
            alert: Some(format!("{alert:?}")),
            error: rustls::Error::AlertReceived(alert).to_string(),
        },
        Some(other) => SmtpOutcome::TlsHandshakeFailed {
            alert: None,
            error: other.to_string(),
        },
        None => upgrade.failed(io_failure(&error)),
    }
}

fn io_failure(error: &io::Error) -> Failure {
    match error.kind() {
        io::ErrorKind::UnexpectedEof => Failure::Closed,
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe => Failure::Reset,
        io::ErrorKind::TimedOut => Failure::Timeout,
        _ => Failure::Io(error.to_string()),
    }
}

/// `"TLSv1.2"`, `"TLSv1.3"`; other versions by rustls's name.
fn version_name(version: rustls::ProtocolVersion) -> String {
    match version {
        rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2".to_owned(),
        rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3".to_owned(),
        other => format!("{other:?}"),
    }
}

/// The IANA name of a cipher suite. rustls names TLS 1.3 suites `TLS13_…`; the IANA registry
/// (RFC 8446 §B.4) names them `TLS_…`. TLS 1.2 names are already IANA's.
fn suite_name(suite: rustls::CipherSuite) -> String {
    match suite.as_str() {
        Some(name) => match name.strip_prefix("TLS13_") {
            Some(rest) => format!("TLS_{rest}"),
            None => name.to_owned(),
        },
        None => format!("{suite:?}"),
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Reads one complete reply: parses what is buffered, reads more while it is incomplete.
/// Leaves any bytes after the reply in `buf`.
async fn read_reply(conn: &mut Conn, buf: &mut Vec<u8>, wait: Duration) -> Result<Reply, Failure> {
    let mut chunk = [0u8; 4096];
    loop {
        match reply::parse(buf) {
            Parse::Complete(reply, used) => {
                buf.drain(..used);
                return Ok(reply);
            }
            Parse::Invalid(e) => return Err(Failure::Malformed(e.to_string())),
            Parse::Incomplete => {}
        }
        // The parser answers Invalid once a line or the line count passes its limit, so
        // `buf` never grows beyond one maximal reply plus one chunk.
        let n = match timeout(wait, conn.read(&mut chunk)).await {
            Err(_elapsed) => return Err(Failure::Timeout),
            Ok(Err(e)) => return Err(io_failure(&e)),
            Ok(Ok(0)) => return Err(Failure::Closed),
            Ok(Ok(n)) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
    }
}

impl Conn {
    async fn read(&mut self, chunk: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Plain(s) => s.read(chunk).await,
            Self::Tls(s) => s.read(chunk).await,
        }
    }

    async fn send(&mut self, bytes: &[u8], wait: Duration) -> Result<(), Failure> {
        let written = match self {
            Self::Plain(s) => timeout(wait, write_flush(s, bytes)).await,
            Self::Tls(s) => timeout(wait, write_flush(s.as_mut(), bytes)).await,
        };
        match written {
            Err(_elapsed) => Err(Failure::Timeout),
            Ok(Err(e)) => Err(io_failure(&e)),
            Ok(Ok(())) => Ok(()),
        }
    }
}

async fn write_flush<S: AsyncRead + AsyncWrite + Unpin>(s: &mut S, bytes: &[u8]) -> io::Result<()> {
    s.write_all(bytes).await?;
    s.flush().await
}

/// Closes the connection politely (TLS close_notify, then FIN), bounded by `wait`.
async fn shutdown(conn: Conn, wait: Duration) {
    // Errors here change nothing: the outcome is decided and the socket is dropped anyway.
    let _ = match conn {
        Conn::Plain(mut s) => timeout(wait, s.shutdown()).await,
        Conn::Tls(mut s) => timeout(wait, s.shutdown()).await,
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suite_names_are_iana() {
        assert_eq!(
            suite_name(rustls::CipherSuite::TLS13_AES_128_GCM_SHA256),
            "TLS_AES_128_GCM_SHA256"
        );
        assert_eq!(
            suite_name(rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384),
            "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"
        );
    }

    #[test]
    fn io_errors_map_to_failures() {
        let cases = [
            (io::ErrorKind::UnexpectedEof, Failure::Closed),
            (io::ErrorKind::ConnectionReset, Failure::Reset),
            (io::ErrorKind::BrokenPipe, Failure::Reset),
            (io::ErrorKind::TimedOut, Failure::Timeout),
        ];
        for (kind, failure) in cases {
            assert_eq!(io_failure(&io::Error::from(kind)), failure, "{kind:?}");
        }
    }
}
