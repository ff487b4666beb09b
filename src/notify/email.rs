//! The e-mail channel: one message per alert through an SMTP relay (lettre, async over tokio,
//! rustls with ring). The subject is [`Alert::subject`], the `text/plain; charset=utf-8` body
//! [`Alert::text`], and the alert JSON rides along as an `application/json` attachment, so a
//! mail rule or a script can read it.
//!
//! The session is encrypted unless the relay is this machine's loopback: STARTTLS by default
//! (a relay that does not offer it is an error, never a silent plaintext send), implicit TLS
//! on request. The relay's certificate is checked against the web PKI roots plus any extra
//! roots given. Relay credentials come from `MXPROBE_SMTP_USER` / `MXPROBE_SMTP_PASSWORD`
//! ([`credentials_from_env`]) and are never shown, not even when a relay repeats them in a
//! reply.
//!
//! Everything the relay sends in a session is read through a counter: past
//! [`RELAY_READ_LIMIT`] bytes the session ends with [`DeliveryError::EmailAnswerTooLarge`].
//! lettre reads each reply line whole before it checks its length, so without the counter a
//! relay (or anyone on the path before STARTTLS) sending an endless line would grow memory
//! without bound.
//!
//! I/O: one SMTP session with the configured relay per delivery.

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use lettre::Message;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Attachment, Body, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{
    AsyncSmtpConnection, AsyncTokioStream, Certificate, TlsParameters, TlsParametersBuilder,
};
use lettre::transport::smtp::extension::ClientId;
use ring::rand::{SecureRandom, SystemRandom};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::{DeliveryError, NotifyConfigError, is_loopback, scrub};
use mxprobe_core::alert::Alert;

/// The variable that holds the relay user name.
pub const SMTP_USER_VAR: &str = "MXPROBE_SMTP_USER";

/// The variable that holds the relay password.
pub const SMTP_PASSWORD_VAR: &str = "MXPROBE_SMTP_PASSWORD";

/// How long one SMTP session may take unless [`Email::with_timeout`] says otherwise.
pub const DEFAULT_EMAIL_TIMEOUT: Duration = Duration::from_secs(60);

/// The most the relay may send in one session, in bytes (TLS records included): a relay's
/// greeting, EHLO and command replies and its certificate chain take a few kilobytes.
pub const RELAY_READ_LIMIT: u64 = 1024 * 1024;

/// How the session with the relay is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RelaySecurity {
    /// Plain SMTP upgraded with STARTTLS (RFC 3207), usually port 587; the relay must offer
    /// it.
    #[default]
    StartTls,
    /// TLS from the first byte (RFC 8314 implicit TLS), usually port 465.
    Tls,
    /// No encryption: accepted for loopback relays only (a local MTA).
    None,
    /// STARTTLS when the server offers it, with any certificate; plain SMTP when it does
    /// not. How a reporting sender delivers a TLS report to a domain's MX (RFC 8460 §5.3:
    /// reports are delivered despite TLS failures); never used for a relay.
    Opportunistic,
}

impl RelaySecurity {
    /// The lower-case name: `starttls`, `tls` or `none`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::StartTls => "starttls",
            Self::Tls => "tls",
            Self::None => "none",
            Self::Opportunistic => "opportunistic STARTTLS",
        }
    }
}

impl fmt::Display for RelaySecurity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An e-mail channel: a relay, a sender, recipients and how to reach the relay.
pub struct Email {
    relay: String,
    port: u16,
    security: RelaySecurity,
    tls: RelayTls,
    from: Mailbox,
    to: Vec<Mailbox>,
    credentials: Option<Credentials>,
    /// The same credentials as text, to keep them out of error messages.
    plain_credentials: Option<(String, String)>,
    hello_name: Option<String>,
    timeout: Duration,
    /// Connect here instead of resolving `relay` (an MX address, with its port).
    connect_to: Option<SocketAddr>,
}

/// A message the server accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The server's reply to the end of the data, e.g. `250 2.0.0 Ok: queued as 4Q…`.
    pub reply: String,
    /// Whether the session was encrypted (STARTTLS or implicit TLS).
    pub encrypted: bool,
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The credentials stay out; only whether there are some shows.
        let to: Vec<String> = self.to.iter().map(ToString::to_string).collect();
        f.debug_struct("Email")
            .field("relay", &self.relay)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("from", &self.from.to_string())
            .field("to", &to)
            .field("authenticates", &self.credentials.is_some())
            .field("hello_name", &self.hello_name)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Email {
    /// An e-mail channel sending from `from` to every address in `to` through
    /// `relay:port`.
    ///
    /// `relay` is a host name or an IP address (also the name its certificate must carry);
    /// [`RelaySecurity::None`] is refused unless it is loopback (`127.0.0.0/8`, `::1`,
    /// `localhost`). `credentials` (user, password) are used with AUTH PLAIN or LOGIN after
    /// the session is encrypted. `extra_roots_pem` are PEM files whose certificates are
    /// trusted for the relay besides the web PKI roots (a private CA).
    pub fn new(
        relay: String,
        port: u16,
        security: RelaySecurity,
        from: String,
        to: Vec<String>,
        credentials: Option<(String, String)>,
        extra_roots_pem: Vec<Vec<u8>>,
    ) -> Result<Self, NotifyConfigError> {
        if !is_host(&relay) {
            return Err(NotifyConfigError::RelayName { relay });
        }
        if security == RelaySecurity::None && !is_loopback(&relay) {
            return Err(NotifyConfigError::RelayPlaintext { relay });
        }
        let from = parse_mailbox("from", from)?;
        if to.is_empty() {
            return Err(NotifyConfigError::NoRecipients);
        }
        let to = to
            .into_iter()
            .map(|address| parse_mailbox("to", address))
            .collect::<Result<Vec<_>, _>>()?;
        let tls = match security {
            RelaySecurity::None => RelayTls::None,
            RelaySecurity::StartTls => {
                RelayTls::StartTls(tls_parameters(&relay, &extra_roots(&extra_roots_pem)?)?)
            }
            RelaySecurity::Tls => RelayTls::Implicit(
                implicit_tls(&relay, &extra_roots(&extra_roots_pem)?)?,
                server_name(&relay)?,
            ),
            RelaySecurity::Opportunistic => RelayTls::Opportunistic(
                TlsParametersBuilder::new(relay.clone())
                    .dangerous_accept_invalid_certs(true)
                    .dangerous_accept_invalid_hostnames(true)
                    .build_rustls()
                    .map_err(|e| NotifyConfigError::RelayTls {
                        relay: relay.clone(),
                        reason: e.to_string(),
                    })?,
            ),
        };
        Ok(Self {
            relay,
            port,
            security,
            tls,
            from,
            to,
            credentials: credentials
                .clone()
                .map(|(user, password)| Credentials::new(user, password)),
            plain_credentials: credentials,
            hello_name: None,
            timeout: DEFAULT_EMAIL_TIMEOUT,
            connect_to: None,
        })
    }

    /// The same channel connecting to `address` (an MX host's address and port) instead of
    /// resolving the relay name, which stays the name in EHLO replies and TLS.
    pub fn with_connect_address(mut self, address: SocketAddr) -> Self {
        self.connect_to = Some(address);
        self
    }

    /// The same channel with another bound on one SMTP session (connection to QUIT).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The same channel greeting the relay with `EHLO <name>` (this host's name) instead of
    /// the address literal `[127.0.0.1]`, which some relays refuse.
    pub fn with_hello_name(mut self, name: String) -> Self {
        self.hello_name = Some(name);
        self
    }

    /// `relay:port (security)`, for messages and logs.
    pub fn target(&self) -> String {
        if let Some(address) = self.connect_to {
            return format!("{} [{address}] ({})", self.relay, self.security);
        }
        if self.relay.contains(':') {
            format!("[{}]:{} ({})", self.relay, self.port, self.security)
        } else {
            format!("{}:{} ({})", self.relay, self.port, self.security)
        }
    }

    /// One SMTP session delivering `alert` to every recipient.
    pub async fn deliver(&self, alert: &Alert) -> Result<(), DeliveryError> {
        let message = self.message(alert)?;
        self.send(&message).await.map(|_| ())
    }

    /// One SMTP session sending `message` to the recipients of its envelope, bounded in time
    /// and in what the server may send; the server's final reply when it accepted it.
    pub async fn send(&self, message: &Message) -> Result<Accepted, DeliveryError> {
        let over_limit = Arc::new(AtomicBool::new(false));
        let session = self.session(message, Arc::clone(&over_limit));
        match tokio::time::timeout(self.timeout, session).await {
            Err(_elapsed) => Err(DeliveryError::EmailTimeout {
                target: self.target(),
                timeout: self.timeout,
            }),
            Ok(Err(_)) if over_limit.load(Ordering::Relaxed) => {
                Err(DeliveryError::EmailAnswerTooLarge {
                    target: self.target(),
                    limit: RELAY_READ_LIMIT,
                })
            }
            Ok(Err(SessionError::Connect(e))) => Err(DeliveryError::Email {
                target: self.target(),
                reason: format!("cannot connect: {e}"),
                permanent: false,
            }),
            Ok(Err(SessionError::Tls(e))) => Err(DeliveryError::Email {
                target: self.target(),
                reason: format!("the TLS handshake failed: {e}"),
                permanent: false,
            }),
            Ok(Err(SessionError::Smtp(e))) => Err(DeliveryError::Email {
                target: self.target(),
                reason: scrub(&explain(&e), &self.secrets()),
                permanent: e.is_permanent() || e.is_client(),
            }),
            Ok(Ok(accepted)) => Ok(accepted),
        }
    }

    /// Connection, greeting, TLS (STARTTLS or implicit), authentication, the message and
    /// QUIT, with everything the relay sends counted against [`RELAY_READ_LIMIT`]
    /// (`over_limit` is set when it is passed).
    async fn session(
        &self,
        message: &Message,
        over_limit: Arc<AtomicBool>,
    ) -> Result<Accepted, SessionError> {
        let tcp = match self.connect_to {
            Some(address) => TcpStream::connect(address).await,
            None => TcpStream::connect((self.relay.as_str(), self.port)).await,
        }
        .map_err(SessionError::Connect)?;
        let relay = Capped {
            inner: tcp,
            read: 0,
            over_limit,
        };
        let hello = self
            .hello_name
            .clone()
            .map_or_else(ClientId::default, ClientId::Domain);
        let mut connection = match &self.tls {
            RelayTls::Implicit(config, name) => {
                let tls = TlsConnector::from(Arc::clone(config))
                    .connect(name.clone(), relay)
                    .await
                    .map_err(SessionError::Tls)?;
                AsyncSmtpConnection::connect_with_transport(Box::new(Implicit(tls)), &hello).await?
            }
            RelayTls::StartTls(_) | RelayTls::Opportunistic(_) | RelayTls::None => {
                AsyncSmtpConnection::connect_with_transport(Box::new(relay), &hello).await?
            }
        };
        match &self.tls {
            RelayTls::StartTls(parameters) => {
                connection.starttls(parameters.clone(), &hello).await?;
            }
            RelayTls::Opportunistic(parameters) if connection.can_starttls() => {
                connection.starttls(parameters.clone(), &hello).await?;
            }
            _ => {}
        }
        if let Some(credentials) = &self.credentials {
            connection
                .auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                .await?;
        }
        let response = connection
            .send(message.envelope(), &message.formatted())
            .await?;
        let encrypted = connection.is_encrypted();
        // QUIT, and close: the message is accepted whatever the relay answers now.
        connection.abort().await;
        let text: Vec<&str> = response.message().collect();
        Ok(Accepted {
            reply: scrub(
                &format!("{} {}", response.code(), text.join(" ")),
                &self.secrets(),
            ),
            encrypted,
        })
    }

    /// The relay credentials in every form a relay could repeat them in a reply: as given,
    /// and base64-encoded as AUTH PLAIN and AUTH LOGIN send them.
    fn secrets(&self) -> Vec<String> {
        let Some((user, password)) = &self.plain_credentials else {
            return Vec::new();
        };
        vec![
            user.clone(),
            password.clone(),
            BASE64.encode(user),
            BASE64.encode(password),
            BASE64.encode(format!("\0{user}\0{password}")),
        ]
    }

    /// The message: subject, text body, JSON attachment.
    fn message(&self, alert: &Alert) -> Result<Message, DeliveryError> {
        let json = serde_json::to_vec(alert).map_err(|e| DeliveryError::AlertJson {
            channel: "email",
            target: self.target(),
            reason: e.to_string(),
        })?;
        let message_error = |reason: String| DeliveryError::EmailMessage {
            target: self.target(),
            reason,
        };
        // Base64: the JSON is one long line, which 7bit and 8bit transfer cannot carry.
        let json = Body::new_with_encoding(
            json,
            lettre::message::header::ContentTransferEncoding::Base64,
        )
        .map_err(|_| message_error("base64 refused the JSON".to_owned()))?;
        let json_type =
            ContentType::parse("application/json").expect("a constant, well-formed media type");
        let body = MultiPart::mixed()
            .singlepart(SinglePart::plain(alert.text()))
            .singlepart(
                Attachment::new(format!("mxprobe-alert-{}.json", alert.domain))
                    .body(json, json_type),
            );
        let mut builder = Message::builder()
            .from(self.from.clone())
            .subject(alert.subject())
            .message_id(Some(self.message_id()))
            // RFC 3834 §5: no vacation or out-of-office replies to an automatic message.
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("Auto-Submitted"),
                "auto-generated".to_owned(),
            ));
        for to in &self.to {
            builder = builder.to(to.clone());
        }
        builder
            .multipart(body)
            .map_err(|e| message_error(e.to_string()))
    }

    /// `<random@sender-domain>` (RFC 5322 §3.6.4): the sender's domain rather than
    /// `localhost`, which spam filters hold against a message.
    fn message_id(&self) -> String {
        let mut random = [0_u8; 16];
        // The system RNG fails only on an OS without one; the id is then merely not random.
        let _ = SystemRandom::new().fill(&mut random);
        let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
        format!("<{hex}.mxprobe@{}>", self.from.email.domain())
    }
}

/// The relay credentials from `MXPROBE_SMTP_USER` and `MXPROBE_SMTP_PASSWORD` among `vars`
/// (pass `std::env::vars()`): both set (and not empty) gives them, neither gives `None`,
/// one alone is an error naming the other.
pub fn credentials_from_env(
    vars: impl Iterator<Item = (String, String)>,
) -> Result<Option<(String, String)>, NotifyConfigError> {
    let (mut user, mut password) = (None, None);
    for (var, value) in vars {
        if value.is_empty() {
            continue;
        }
        if var == SMTP_USER_VAR {
            user = Some(value);
        } else if var == SMTP_PASSWORD_VAR {
            password = Some(value);
        }
    }
    match (user, password) {
        (Some(user), Some(password)) => Ok(Some((user, password))),
        (None, None) => Ok(None),
        (Some(_), None) => Err(NotifyConfigError::CredentialsIncomplete {
            missing: SMTP_PASSWORD_VAR,
            present: SMTP_USER_VAR,
        }),
        (None, Some(_)) => Err(NotifyConfigError::CredentialsIncomplete {
            missing: SMTP_USER_VAR,
            present: SMTP_PASSWORD_VAR,
        }),
    }
}

/// A host name (letters, digits, `-`, `.`, `_`) or an IP address.
fn is_host(relay: &str) -> bool {
    relay.parse::<IpAddr>().is_ok()
        || (!relay.is_empty()
            && relay
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_')))
}

fn parse_mailbox(field: &'static str, value: String) -> Result<Mailbox, NotifyConfigError> {
    match value.parse::<Mailbox>() {
        Ok(mailbox) => Ok(mailbox),
        Err(e) => Err(NotifyConfigError::Address {
            field,
            reason: e.to_string(),
            value,
        }),
    }
}

/// The certificates of the extra trust roots, with the index of the PEM file each came
/// from; a file without a certificate, or with a broken one, is an error naming it.
fn extra_roots(
    extra_roots_pem: &[Vec<u8>],
) -> Result<Vec<(usize, CertificateDer<'static>)>, NotifyConfigError> {
    let mut roots = Vec::new();
    for (index, pem) in extra_roots_pem.iter().enumerate() {
        let ders = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| NotifyConfigError::RootPem {
                index,
                reason: e.to_string(),
            })?;
        if ders.is_empty() {
            return Err(NotifyConfigError::RootPem {
                index,
                reason: "it has no BEGIN CERTIFICATE block".to_owned(),
            });
        }
        roots.extend(ders.into_iter().map(|der| (index, der)));
    }
    Ok(roots)
}

/// STARTTLS parameters for lettre: the web PKI roots plus the extra roots, name = the relay.
fn tls_parameters(
    relay: &str,
    roots: &[(usize, CertificateDer<'static>)],
) -> Result<TlsParameters, NotifyConfigError> {
    let mut builder = TlsParametersBuilder::new(relay.to_owned());
    for (index, der) in roots {
        let root = Certificate::from_der(der.to_vec()).map_err(|e| NotifyConfigError::RootPem {
            index: *index,
            reason: e.to_string(),
        })?;
        builder = builder.add_root_certificate(root);
    }
    builder
        .build_rustls()
        .map_err(|e| NotifyConfigError::RelayTls {
            relay: relay.to_owned(),
            reason: e.to_string(),
        })
}

/// The client configuration for implicit TLS: the web PKI roots plus the extra roots, as
/// for STARTTLS.
fn implicit_tls(
    relay: &str,
    roots: &[(usize, CertificateDer<'static>)],
) -> Result<Arc<rustls::ClientConfig>, NotifyConfigError> {
    let mut store = rustls::RootCertStore::empty();
    store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for (index, der) in roots {
        store
            .add(der.clone())
            .map_err(|e| NotifyConfigError::RootPem {
                index: *index,
                reason: e.to_string(),
            })?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| NotifyConfigError::RelayTls {
        relay: relay.to_owned(),
        reason: e.to_string(),
    })?
    .with_root_certificates(store)
    .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The name the relay's certificate must carry (a host name or an IP address).
fn server_name(relay: &str) -> Result<ServerName<'static>, NotifyConfigError> {
    ServerName::try_from(relay.to_owned()).map_err(|e| NotifyConfigError::RelayTls {
        relay: relay.to_owned(),
        reason: e.to_string(),
    })
}

/// How the session is protected, ready to use.
enum RelayTls {
    /// Plaintext (loopback only).
    None,
    /// STARTTLS with these parameters (lettre upgrades the session).
    StartTls(TlsParameters),
    /// STARTTLS with these parameters when offered, else plaintext.
    Opportunistic(TlsParameters),
    /// TLS from the first byte, with this configuration and name.
    Implicit(Arc<rustls::ClientConfig>, ServerName<'static>),
}

/// Why a session failed before or inside the SMTP dialogue.
enum SessionError {
    /// No TCP connection.
    Connect(io::Error),
    /// The implicit TLS handshake failed.
    Tls(io::Error),
    /// lettre's error: a reply, STARTTLS, authentication, the network.
    Smtp(lettre::transport::smtp::Error),
}

impl From<lettre::transport::smtp::Error> for SessionError {
    fn from(e: lettre::transport::smtp::Error) -> Self {
        Self::Smtp(e)
    }
}

/// The relay's TCP stream, counting what it reads: past [`RELAY_READ_LIMIT`] bytes every
/// read fails and `over_limit` is set. Writes pass through.
#[derive(Debug)]
struct Capped {
    inner: TcpStream,
    read: u64,
    over_limit: Arc<AtomicBool>,
}

impl AsyncRead for Capped {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let room = RELAY_READ_LIMIT.saturating_sub(this.read);
        if room == 0 {
            this.over_limit.store(true, Ordering::Relaxed);
            return Poll::Ready(Err(io::Error::other(format!(
                "the relay sent more than {RELAY_READ_LIMIT} bytes in one session"
            ))));
        }
        let room = usize::try_from(room)
            .unwrap_or(usize::MAX)
            .min(buf.remaining());
        let mut limited = ReadBuf::new(buf.initialize_unfilled_to(room));
        ready!(Pin::new(&mut this.inner).poll_read(cx, &mut limited))?;
        let n = limited.filled().len();
        buf.advance(n);
        this.read += n as u64;
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Capped {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

impl AsyncTokioStream for Capped {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.peer_addr()
    }
}

/// An implicit-TLS session over the counted stream, as lettre takes a stream.
#[derive(Debug)]
struct Implicit(TlsStream<Capped>);

impl AsyncRead for Implicit {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Implicit {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}

impl AsyncTokioStream for Implicit {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.0.get_ref().0.peer_addr()
    }
}

/// lettre's error, with what to do where lettre's words are terse.
fn explain(error: &lettre::transport::smtp::Error) -> String {
    let text = error.to_string();
    if error.is_client() && text.contains("STARTTLS") {
        "the relay does not offer STARTTLS, which is required, so nothing was sent; use a \
         relay or port that offers it, or implicit TLS (usually port 465)"
            .to_owned()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, SocketAddr};
    use std::sync::{Arc, Mutex};

    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD as BASE64;
    use time::OffsetDateTime;
    use tokio::io::{AsyncBufReadExt as _, AsyncRead, AsyncWrite, AsyncWriteExt as _, BufReader};
    use tokio::net::{TcpListener, TcpStream};
    use tokio::task::JoinHandle;
    use tokio_rustls::TlsAcceptor;

    use super::*;
    use crate::notify::test_support::alert;
    use mxprobe_testpki::{CertAuthority, KeyKind, LeafSpec, Validity};

    /// What a sink does.
    #[derive(Clone, Default)]
    struct SinkConfig {
        /// Offer STARTTLS in the EHLO reply of the plaintext session.
        starttls: bool,
        /// TLS from the first byte.
        implicit_tls: bool,
        /// Require AUTH PLAIN with this user and password before MAIL.
        auth: Option<(&'static str, &'static str)>,
    }

    /// One SMTP session as the sink saw it.
    #[derive(Debug, Clone, Default)]
    struct Session {
        commands: Vec<String>,
        tls: bool,
        authenticated_as: Option<String>,
        mail_from: Option<String>,
        rcpt_to: Vec<String>,
        data: Option<String>,
        closed: bool,
    }

    trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
    impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

    /// A loopback SMTP sink with a certificate for 127.0.0.1 from its own CA.
    struct Sink {
        addr: SocketAddr,
        ca_pem: String,
        sessions: Arc<Mutex<Vec<Session>>>,
        task: JoinHandle<()>,
    }

    impl Drop for Sink {
        fn drop(&mut self) {
            self.task.abort();
        }
    }

    impl Sink {
        async fn start(config: SinkConfig) -> Self {
            let now = OffsetDateTime::now_utc();
            let validity = Validity::new(
                now - time::Duration::days(1),
                now + time::Duration::days(30),
            );
            let ca = CertAuthority::root("mxprobe notify test CA", validity, KeyKind::EcdsaP256)
                .unwrap();
            let mut spec = LeafSpec::new(&["relay.test"], validity);
            spec.ip_addresses = vec![IpAddr::V4(Ipv4Addr::LOCALHOST)];
            let leaf = ca.leaf(&spec).unwrap();
            let server = rustls::ServerConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(ca.chain_for(&leaf), leaf.private_key())
            .unwrap();
            let acceptor = TlsAcceptor::from(Arc::new(server));

            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let sessions = Arc::new(Mutex::new(Vec::new()));
            let log = sessions.clone();
            let task = tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    let index = {
                        let mut log = log.lock().unwrap();
                        log.push(Session::default());
                        log.len() - 1
                    };
                    let (log, config, acceptor) = (log.clone(), config.clone(), acceptor.clone());
                    tokio::spawn(async move {
                        serve(stream, &config, &acceptor, &log, index).await;
                        log.lock().unwrap()[index].closed = true;
                    });
                }
            });
            Self {
                addr,
                ca_pem: ca.cert().pem().to_owned(),
                sessions,
                task,
            }
        }

        /// The sessions, once every one has ended (at most 5 s).
        async fn sessions(&self) -> Vec<Session> {
            for _ in 0..500 {
                let sessions = self.sessions.lock().unwrap().clone();
                if sessions.iter().all(|s| s.closed) {
                    return sessions;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            panic!("an SMTP session did not end");
        }

        fn email(&self, security: RelaySecurity, credentials: Option<(&str, &str)>) -> Email {
            Email::new(
                "127.0.0.1".to_owned(),
                self.addr.port(),
                security,
                "mxprobe alerts <alerts@monitor.example>".to_owned(),
                vec![
                    "ops@example.com".to_owned(),
                    "Postmaster <postmaster@example.net>".to_owned(),
                ],
                credentials.map(|(u, p)| (u.to_owned(), p.to_owned())),
                vec![self.ca_pem.as_bytes().to_vec()],
            )
            .unwrap()
            .with_timeout(Duration::from_secs(10))
        }
    }

    /// Serves one connection; records into `log[index]`.
    async fn serve(
        stream: TcpStream,
        config: &SinkConfig,
        acceptor: &TlsAcceptor,
        log: &Mutex<Vec<Session>>,
        index: usize,
    ) {
        let record = |f: &dyn Fn(&mut Session)| f(&mut log.lock().unwrap()[index]);
        let mut tls = config.implicit_tls;
        let io: Box<dyn Io> = if tls {
            let Ok(stream) = acceptor.accept(stream).await else {
                return;
            };
            record(&|s| s.tls = true);
            Box::new(stream)
        } else {
            Box::new(stream)
        };
        let mut io = BufReader::new(io);
        let mut authenticated = false;
        if io.write_all(b"220 sink.test ESMTP\r\n").await.is_err() {
            return;
        }
        loop {
            let mut line = String::new();
            match io.read_line(&mut line).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let command = line.trim_end().to_owned();
            record(&|s| s.commands.push(command.clone()));
            let verb = command
                .split([' ', ':'])
                .next()
                .unwrap_or_default()
                .to_ascii_uppercase();
            let reply = match verb.as_str() {
                "EHLO" => {
                    let mut reply = "250-sink.test\r\n".to_owned();
                    if config.starttls && !tls {
                        reply.push_str("250-STARTTLS\r\n");
                    }
                    if config.auth.is_some() && tls {
                        reply.push_str("250-AUTH PLAIN LOGIN\r\n");
                    }
                    reply.push_str("250 HELP\r\n");
                    reply
                }
                "STARTTLS" if config.starttls && !tls => {
                    if io.write_all(b"220 2.0.0 go ahead\r\n").await.is_err() {
                        return;
                    }
                    let Ok(stream) = acceptor.accept(io.into_inner()).await else {
                        return;
                    };
                    tls = true;
                    record(&|s| s.tls = true);
                    io = BufReader::new(Box::new(stream));
                    continue;
                }
                "AUTH" => {
                    let initial = command.strip_prefix("AUTH PLAIN ").unwrap_or_default();
                    let decoded = BASE64.decode(initial).unwrap_or_default();
                    let fields: Vec<&[u8]> = decoded.split(|b| *b == 0).collect();
                    match (config.auth, fields.as_slice()) {
                        (Some((user, password)), [_, u, p])
                            if *u == user.as_bytes() && *p == password.as_bytes() =>
                        {
                            authenticated = true;
                            record(&|s| s.authenticated_as = Some(user.to_owned()));
                            "235 2.7.0 accepted\r\n".to_owned()
                        }
                        _ => "535 5.7.8 bad credentials\r\n".to_owned(),
                    }
                }
                "MAIL" if config.auth.is_some() && !authenticated => {
                    "530 5.7.0 authentication required\r\n".to_owned()
                }
                "MAIL" => {
                    record(&|s| s.mail_from = Some(command[10..].to_owned()));
                    "250 2.1.0 ok\r\n".to_owned()
                }
                "RCPT" => {
                    record(&|s| s.rcpt_to.push(command[8..].to_owned()));
                    "250 2.1.5 ok\r\n".to_owned()
                }
                "DATA" => {
                    if io.write_all(b"354 go on\r\n").await.is_err() {
                        return;
                    }
                    let mut data = String::new();
                    loop {
                        let mut line = String::new();
                        match io.read_line(&mut line).await {
                            Ok(0) | Err(_) => return,
                            Ok(_) => {}
                        }
                        if line == ".\r\n" {
                            break;
                        }
                        data.push_str(line.strip_prefix('.').unwrap_or(&line));
                    }
                    record(&|s| s.data = Some(data.clone()));
                    "250 2.0.0 queued\r\n".to_owned()
                }
                "QUIT" => {
                    let _ = io.write_all(b"221 2.0.0 bye\r\n").await;
                    return;
                }
                "RSET" | "NOOP" => "250 2.0.0 ok\r\n".to_owned(),
                _ => "502 5.5.2 not implemented\r\n".to_owned(),
            };
            if io.write_all(reply.as_bytes()).await.is_err() {
                return;
            }
        }
    }

    /// Headers (unfolded) and body of a message or a MIME part.
    fn split(message: &str) -> (Vec<(String, String)>, &str) {
        let (head, body) = message.split_once("\r\n\r\n").unwrap();
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in head.split("\r\n") {
            if line.starts_with([' ', '\t']) {
                headers.last_mut().unwrap().1.push_str(line);
            } else {
                let (name, value) = line.split_once(':').unwrap();
                headers.push((name.to_ascii_lowercase(), value.trim().to_owned()));
            }
        }
        (headers, body)
    }

    fn header<'a>(headers: &'a [(String, String)], name: &str) -> &'a str {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no {name} header in {headers:?}"))
    }

    /// The part body decoded per its Content-Transfer-Encoding.
    fn decode(headers: &[(String, String)], body: &str) -> Vec<u8> {
        let encoding = headers
            .iter()
            .find(|(n, _)| n == "content-transfer-encoding")
            .map_or_else(|| "7bit".to_owned(), |(_, v)| v.to_ascii_lowercase());
        match encoding.as_str() {
            "base64" => BASE64
                .decode(body.split_whitespace().collect::<String>())
                .unwrap(),
            "quoted-printable" => {
                let soft = body.replace("=\r\n", "");
                let bytes = soft.as_bytes();
                let mut out = Vec::new();
                let mut i = 0;
                while i < bytes.len() {
                    if bytes[i] == b'=' {
                        let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                        out.push(u8::from_str_radix(hex, 16).unwrap());
                        i += 3;
                    } else {
                        out.push(bytes[i]);
                        i += 1;
                    }
                }
                out
            }
            _ => body.as_bytes().to_vec(),
        }
    }

    /// The parts of a multipart message body.
    fn parts<'a>(content_type: &str, body: &'a str) -> Vec<(Vec<(String, String)>, &'a str)> {
        let boundary = content_type
            .split_once("boundary=\"")
            .and_then(|(_, rest)| rest.split_once('"'))
            .map(|(b, _)| b)
            .unwrap_or_else(|| panic!("no boundary in {content_type}"));
        let delimiter = format!("--{boundary}");
        body.split(delimiter.as_str())
            .skip(1)
            .take_while(|part| !part.starts_with("--"))
            .map(|part| {
                let part = part.strip_prefix("\r\n").unwrap();
                let part = part.strip_suffix("\r\n").unwrap_or(part);
                split(part)
            })
            .collect()
    }

    #[tokio::test]
    async fn starttls_delivers_subject_text_and_the_json_attachment() {
        let sink = Sink::start(SinkConfig {
            starttls: true,
            ..SinkConfig::default()
        })
        .await;
        let email = sink.email(RelaySecurity::StartTls, None);
        assert_eq!(
            email.target(),
            format!("127.0.0.1:{} (starttls)", sink.addr.port())
        );
        let alert = alert();
        email.deliver(&alert).await.unwrap();

        let sessions = sink.sessions().await;
        assert_eq!(sessions.len(), 1);
        let session = &sessions[0];
        assert!(session.tls);
        let verbs: Vec<&str> = session
            .commands
            .iter()
            .map(|c| c.split([' ', ':']).next().unwrap())
            .collect();
        assert_eq!(
            verbs,
            [
                "EHLO", "STARTTLS", "EHLO", "MAIL", "RCPT", "RCPT", "DATA", "QUIT"
            ]
        );
        assert_eq!(
            session.mail_from.as_deref(),
            Some("<alerts@monitor.example>")
        );
        assert_eq!(
            session.rcpt_to,
            ["<ops@example.com>", "<postmaster@example.net>"]
        );

        let data = session.data.as_deref().unwrap();
        let (headers, body) = split(data);
        assert_eq!(header(&headers, "subject"), alert.subject());
        assert_eq!(
            header(&headers, "from"),
            "\"mxprobe alerts\" <alerts@monitor.example>"
        );
        assert!(header(&headers, "message-id").ends_with(".mxprobe@monitor.example>"));
        assert_eq!(header(&headers, "auto-submitted"), "auto-generated");
        let content_type = header(&headers, "content-type");
        assert!(
            content_type.starts_with("multipart/mixed;"),
            "{content_type}"
        );
        let parts = parts(content_type, body);
        assert_eq!(parts.len(), 2);

        let (text_headers, text) = &parts[0];
        assert_eq!(
            header(text_headers, "content-type"),
            "text/plain; charset=utf-8"
        );
        let text = String::from_utf8(decode(text_headers, text)).unwrap();
        assert_eq!(text.replace("\r\n", "\n"), alert.text());

        let (json_headers, json) = &parts[1];
        assert_eq!(header(json_headers, "content-type"), "application/json");
        assert_eq!(
            header(json_headers, "content-disposition"),
            "attachment; filename=\"mxprobe-alert-example.com.json\""
        );
        assert_eq!(header(json_headers, "content-transfer-encoding"), "base64");
        let back: Alert = serde_json::from_slice(&decode(json_headers, json)).unwrap();
        assert_eq!(back, alert);
    }

    /// A relay that sends `prefix`, then `x` without end (at most `cap` bytes in all); gives
    /// its address and, once the client has gone, how many bytes it managed to send.
    async fn endless_relay(
        prefix: &'static [u8],
        read_a_line_first: bool,
        cap: usize,
    ) -> (SocketAddr, JoinHandle<usize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let mut stream = BufReader::new(stream);
            let mut sent = 0;
            if read_a_line_first {
                stream.write_all(b"220 relay.test ESMTP\r\n").await.unwrap();
                let mut line = String::new();
                stream.read_line(&mut line).await.unwrap();
            }
            if stream.write_all(prefix).await.is_err() {
                return sent;
            }
            let chunk = vec![b'x'; 64 * 1024];
            while sent < cap {
                match stream.write_all(&chunk).await {
                    Ok(()) => sent += chunk.len(),
                    Err(_) => break,
                }
            }
            sent
        });
        (addr, task)
    }

    #[tokio::test]
    async fn an_endless_reply_line_ends_the_session_at_the_read_limit() {
        // Without the limit the client would read all 256 MiB into one line.
        let cap = 256 * 1024 * 1024;
        for (prefix, after_ehlo, security) in [
            (&b"220 "[..], false, RelaySecurity::None),
            (&b"220 "[..], false, RelaySecurity::StartTls),
            (&b"250-"[..], true, RelaySecurity::StartTls),
        ] {
            let (addr, relay) = endless_relay(prefix, after_ehlo, cap).await;
            let email = Email::new(
                "127.0.0.1".to_owned(),
                addr.port(),
                security,
                "alerts@monitor.example".to_owned(),
                vec!["ops@example.com".to_owned()],
                Some(("alerts".to_owned(), "pa55 word".to_owned())),
                Vec::new(),
            )
            .unwrap()
            .with_timeout(Duration::from_secs(30));
            let err = email.deliver(&alert()).await.unwrap_err();
            assert!(
                matches!(&err, DeliveryError::EmailAnswerTooLarge { limit, target }
                    if *limit == RELAY_READ_LIMIT && *target == email.target()),
                "{err:?}"
            );
            assert!(!err.is_permanent());
            assert_eq!(
                err.to_string(),
                format!(
                    "email via {}: the relay sent more than 1048576 bytes in one session (an \
                     endless or oversized reply), so the session was ended; check that the \
                     address is a mail relay",
                    email.target()
                )
            );
            // The client stopped reading at the limit: what the relay got out is the limit
            // plus what the loopback socket buffers hold, far below the 256 MiB it offered.
            let sent = relay.await.unwrap();
            assert!(sent < 32 * 1024 * 1024, "the relay sent {sent} bytes");
        }
    }

    #[tokio::test]
    async fn a_relay_repeating_the_credentials_does_not_get_them_into_the_error() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // Plaintext (loopback): greets, offers AUTH, and refuses the AUTH command quoting it.
        let relay = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let mut stream = BufReader::new(stream);
            stream.write_all(b"220 relay.test\r\n").await.unwrap();
            loop {
                let mut line = String::new();
                if stream.read_line(&mut line).await.unwrap_or(0) == 0 {
                    return;
                }
                let reply = if line.starts_with("EHLO") {
                    "250-relay.test\r\n250 AUTH PLAIN LOGIN\r\n".to_owned()
                } else if line.starts_with("QUIT") {
                    return;
                } else {
                    format!("535 5.7.8 refused: {}\r\n", line.trim_end())
                };
                stream.write_all(reply.as_bytes()).await.unwrap();
            }
        });
        let email = Email::new(
            "127.0.0.1".to_owned(),
            addr.port(),
            RelaySecurity::None,
            "alerts@monitor.example".to_owned(),
            vec!["ops@example.com".to_owned()],
            Some(("alerts-user".to_owned(), "Pa55-w0rd".to_owned())),
            Vec::new(),
        )
        .unwrap()
        .with_timeout(Duration::from_secs(10));
        let err = email.deliver(&alert()).await.unwrap_err();
        relay.abort();
        let shown = format!("{err} {err:?}");
        assert!(shown.contains("535"), "{shown}");
        assert!(shown.contains("refused: AUTH PLAIN …"), "{shown}");
        let plain = BASE64.encode("\0alerts-user\0Pa55-w0rd");
        for secret in ["alerts-user", "Pa55-w0rd", plain.as_str()] {
            assert!(!shown.contains(secret), "{secret} leaked: {shown}");
        }
    }

    #[tokio::test]
    async fn a_relay_without_starttls_gets_nothing() {
        let sink = Sink::start(SinkConfig::default()).await;
        let email = sink.email(RelaySecurity::StartTls, None);
        let err = email.deliver(&alert()).await.unwrap_err();
        let DeliveryError::Email {
            target,
            reason,
            permanent,
        } = &err
        else {
            panic!("{err:?}");
        };
        assert_eq!(*target, email.target());
        assert!(
            reason.starts_with("the relay does not offer STARTTLS"),
            "{reason}"
        );
        assert!(permanent);

        let sessions = sink.sessions().await;
        assert_eq!(sessions.len(), 1);
        assert!(!sessions[0].tls);
        assert!(
            sessions[0].mail_from.is_none(),
            "{:?}",
            sessions[0].commands
        );
        assert!(sessions[0].data.is_none());
        assert!(
            sessions[0]
                .commands
                .iter()
                .all(|c| c.starts_with("EHLO") || c == "QUIT"),
            "{:?}",
            sessions[0].commands
        );
    }

    #[tokio::test]
    async fn credentials_are_sent_with_auth_plain_after_starttls() {
        let sink = Sink::start(SinkConfig {
            starttls: true,
            auth: Some(("alerts", "pa55 word")),
            ..SinkConfig::default()
        })
        .await;
        let email = sink.email(RelaySecurity::StartTls, Some(("alerts", "pa55 word")));
        let debug = format!("{email:?}");
        assert!(!debug.contains("pa55"), "{debug}");
        assert!(debug.contains("authenticates: true"), "{debug}");
        email.deliver(&alert()).await.unwrap();

        let sessions = sink.sessions().await;
        assert_eq!(sessions[0].authenticated_as.as_deref(), Some("alerts"));
        let auth_at = sessions[0]
            .commands
            .iter()
            .position(|c| c.starts_with("AUTH PLAIN "));
        let starttls_at = sessions[0].commands.iter().position(|c| c == "STARTTLS");
        assert!(
            starttls_at < auth_at && auth_at.is_some(),
            "{:?}",
            sessions[0].commands
        );
        assert!(sessions[0].data.is_some());
    }

    #[tokio::test]
    async fn wrong_credentials_are_a_permanent_error() {
        let sink = Sink::start(SinkConfig {
            starttls: true,
            auth: Some(("alerts", "right")),
            ..SinkConfig::default()
        })
        .await;
        let err = sink
            .email(RelaySecurity::StartTls, Some(("alerts", "wrong")))
            .deliver(&alert())
            .await
            .unwrap_err();
        assert!(
            matches!(&err, DeliveryError::Email { reason, permanent: true, .. }
                if reason.contains("535") && !reason.contains("wrong")),
            "{err:?}"
        );
        assert!(sink.sessions().await[0].data.is_none());
    }

    #[tokio::test]
    async fn implicit_tls_delivers() {
        let sink = Sink::start(SinkConfig {
            implicit_tls: true,
            ..SinkConfig::default()
        })
        .await;
        sink.email(RelaySecurity::Tls, None)
            .deliver(&alert())
            .await
            .unwrap();
        let sessions = sink.sessions().await;
        assert!(sessions[0].tls);
        assert!(!sessions[0].commands.contains(&"STARTTLS".to_owned()));
        assert!(sessions[0].data.is_some());
    }

    #[tokio::test]
    async fn an_untrusted_relay_certificate_stops_the_session() {
        let sink = Sink::start(SinkConfig {
            starttls: true,
            ..SinkConfig::default()
        })
        .await;
        let email = Email::new(
            "127.0.0.1".to_owned(),
            sink.addr.port(),
            RelaySecurity::StartTls,
            "alerts@monitor.example".to_owned(),
            vec!["ops@example.com".to_owned()],
            None,
            Vec::new(),
        )
        .unwrap()
        .with_timeout(Duration::from_secs(10));
        let err = email.deliver(&alert()).await.unwrap_err();
        assert!(
            matches!(&err, DeliveryError::Email { reason, .. } if reason.contains("certificate")),
            "{err:?}"
        );
        let sessions = sink.sessions().await;
        assert!(sessions[0].mail_from.is_none());
        assert!(sessions[0].data.is_none());
    }

    #[tokio::test]
    async fn plaintext_is_allowed_to_a_loopback_relay() {
        let sink = Sink::start(SinkConfig::default()).await;
        sink.email(RelaySecurity::None, None)
            .deliver(&alert())
            .await
            .unwrap();
        let sessions = sink.sessions().await;
        assert!(!sessions[0].tls);
        assert!(sessions[0].data.is_some());
    }

    #[test]
    fn configuration_is_checked() {
        let new = |relay: &str, security, from: &str, to: &[&str], roots: Vec<Vec<u8>>| {
            Email::new(
                relay.to_owned(),
                587,
                security,
                from.to_owned(),
                to.iter().map(|t| (*t).to_owned()).collect(),
                None,
                roots,
            )
        };
        let ok =
            |relay: &str, security| new(relay, security, "a@b.example", &["c@d.example"], vec![]);
        let cases: Vec<(&str, Result<Email, NotifyConfigError>, &str)> = vec![
            (
                "plaintext off loopback",
                ok("smtp.example.com", RelaySecurity::None),
                "refusing to send e-mail without TLS to smtp.example.com",
            ),
            (
                "empty relay",
                ok("", RelaySecurity::StartTls),
                "\"\" is not a mail relay",
            ),
            (
                "relay with a port",
                ok("smtp.example.com:587", RelaySecurity::Tls),
                "\"smtp.example.com:587\" is not a mail relay",
            ),
            (
                "bad from",
                new(
                    "smtp.example.com",
                    RelaySecurity::StartTls,
                    "not an address",
                    &["c@d.example"],
                    vec![],
                ),
                "the from address \"not an address\" is not an e-mail address",
            ),
            (
                "bad to",
                new(
                    "smtp.example.com",
                    RelaySecurity::StartTls,
                    "a@b.example",
                    &["c@d.example", "@@"],
                    vec![],
                ),
                "the to address \"@@\" is not an e-mail address",
            ),
            (
                "no recipients",
                new(
                    "smtp.example.com",
                    RelaySecurity::StartTls,
                    "a@b.example",
                    &[],
                    vec![],
                ),
                "an e-mail channel needs at least one recipient",
            ),
            (
                "not PEM",
                new(
                    "smtp.example.com",
                    RelaySecurity::StartTls,
                    "a@b.example",
                    &["c@d.example"],
                    vec![b"hello".to_vec()],
                ),
                "extra trust root #0 for the relay is not a PEM certificate: it has no BEGIN CERTIFICATE block",
            ),
        ];
        for (name, result, expected) in cases {
            let err = result.unwrap_err().to_string();
            assert!(err.starts_with(expected), "{name}: {err}");
        }
        for relay in ["127.0.0.1", "127.0.0.53", "::1", "localhost", "LOCALHOST"] {
            assert!(ok(relay, RelaySecurity::None).is_ok(), "{relay}");
        }
        assert_eq!(
            ok("::1", RelaySecurity::None).unwrap().target(),
            "[::1]:587 (none)"
        );
        assert!(ok("smtp.example.com", RelaySecurity::StartTls).is_ok());
    }

    #[test]
    fn credentials_come_in_pairs_from_the_environment() {
        let env = |pairs: &[(&str, &str)]| {
            credentials_from_env(
                pairs
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect::<Vec<_>>()
                    .into_iter(),
            )
        };
        assert_eq!(
            env(&[
                ("HOME", "/"),
                ("MXPROBE_SMTP_USER", "u"),
                ("MXPROBE_SMTP_PASSWORD", "secret")
            ])
            .unwrap(),
            Some(("u".to_owned(), "secret".to_owned()))
        );
        assert_eq!(env(&[("HOME", "/")]).unwrap(), None);
        assert_eq!(
            env(&[("MXPROBE_SMTP_USER", ""), ("MXPROBE_SMTP_PASSWORD", "")]).unwrap(),
            None
        );
        let err = env(&[("MXPROBE_SMTP_PASSWORD", "secret")])
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "MXPROBE_SMTP_USER is not set but MXPROBE_SMTP_PASSWORD is; set both or neither"
        );
        let err = env(&[("MXPROBE_SMTP_USER", "u"), ("MXPROBE_SMTP_PASSWORD", "")])
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "MXPROBE_SMTP_PASSWORD is not set but MXPROBE_SMTP_USER is; set both or neither"
        );
    }
}
