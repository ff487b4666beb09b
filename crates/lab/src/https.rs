//! The lab's HTTPS policy servers (hyper 1 + tokio-rustls), on loopback only.
//!
//! One [`PolicyServer`] listens on an ephemeral port of a loopback address and serves
//! `/.well-known/mta-sts.txt` for any number of policy hosts (`mta-sts.<domain>`), each with
//! its own certificate chain, chosen by SNI, and its own behaviour: a status, a Content-Type
//! or none, a body (whole, chunked, never-ending, stalled), a Location header, a response
//! head that is late or never comes, or a TLS handshake that never completes. Misbehaviour is
//! the point: the fetcher ([`mxprobe_probe::fetch`]) must record each case exactly and in bounded time.
//! [`RunningHttps::set_response`] changes what one host answers while the server runs (same
//! address, port and certificate): connections that start their handshake afterwards get the
//! new response, connections already open keep the one they started with.
//!
//! The server counts connections, handshakes and requests (benchmarks print them; tests
//! assert "exactly one request: the redirect was not followed") and keeps the first
//! [`REQUEST_LOG_LIMIT`] requests with their SNI, Host, path and User-Agent. It stops when
//! its [`RunningHttps`] is dropped. It never judges anything and never connects anywhere.

use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use bytes::Bytes;
use futures::stream::{self, StreamExt as _};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{CONTENT_TYPE, HOST, HeaderValue, LOCATION, USER_AGENT};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::ServerConfig;
use rustls::server::Acceptor;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::LazyConfigAcceptor;

use mxprobe_probe::fetch::POLICY_PATH;

/// How many requests a server keeps in its log (the counters count every request).
pub const REQUEST_LOG_LIMIT: usize = 4096;

/// Why a policy server could not start, or could not change a host's response.
#[derive(Debug, thiserror::Error)]
pub enum HttpsLabError {
    /// The lab listens on loopback only.
    #[error("the lab HTTPS server must listen on a loopback address, not {ip}")]
    NotLoopback {
        /// The address asked for.
        ip: IpAddr,
    },
    /// Two hosts of one server have the same name.
    #[error("the policy host {name} is configured twice on one server")]
    DuplicateHost {
        /// The host name.
        name: String,
    },
    /// The status is not a three-digit HTTP status code.
    #[error("{status} is not an HTTP status code (policy host {host})")]
    BadStatus {
        /// The policy host.
        host: String,
        /// The status given.
        status: u16,
    },
    /// A header value cannot be sent.
    #[error("the {header} value {value:?} cannot be sent in an HTTP header (policy host {host})")]
    BadHeader {
        /// The policy host.
        host: String,
        /// The header name.
        header: &'static str,
        /// The value given.
        value: String,
    },
    /// rustls refused the certificate chain or key.
    #[error("the certificate or key of policy host {host} is unusable: {source}")]
    Tls {
        /// The policy host.
        host: String,
        /// rustls's error.
        #[source]
        source: rustls::Error,
    },
    /// The server was asked to change a host it was not started with.
    #[error("the policy server has no host {name}; change only a host it was started with")]
    UnknownHost {
        /// The host name asked for.
        name: String,
    },
    /// Binding the listening socket failed.
    #[error("cannot listen on {ip}: {source}")]
    Bind {
        /// The address asked for.
        ip: IpAddr,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
}

/// When the response head is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pace {
    /// At once.
    #[default]
    Immediate,
    /// After this delay (a slow server).
    After(Duration),
    /// Never: the request is read and the connection then hangs.
    Never,
}

/// The body of a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyBody {
    /// Sent whole, with a Content-Length.
    Full(Bytes),
    /// Sent chunked (no Content-Length): `chunk` repeated `count` times, or forever when
    /// `count` is `None`.
    Chunked {
        /// One chunk.
        chunk: Bytes,
        /// How many chunks; `None` never ends.
        count: Option<u64>,
    },
    /// Sent chunked: these bytes, and then nothing more, without ever ending the body.
    Stalled(Bytes),
}

impl PolicyBody {
    fn into_body(self) -> BoxBody<Bytes, Infallible> {
        match self {
            Self::Full(bytes) => Full::new(bytes).boxed(),
            Self::Chunked { chunk, count } => {
                let chunks = stream::repeat_with(move || Ok(Frame::data(chunk.clone())));
                match count {
                    Some(n) => BodyExt::boxed(StreamBody::new(
                        chunks.take(usize::try_from(n).unwrap_or(usize::MAX)),
                    )),
                    None => BodyExt::boxed(StreamBody::new(chunks)),
                }
            }
            Self::Stalled(prefix) => BodyExt::boxed(StreamBody::new(
                stream::once(async move { Ok(Frame::data(prefix)) }).chain(stream::pending()),
            )),
        }
    }
}

/// What a policy host answers to `GET /.well-known/mta-sts.txt`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyResponse {
    /// The status code.
    pub status: u16,
    /// The Content-Type header; `None` sends none.
    pub content_type: Option<String>,
    /// The Location header, if any.
    pub location: Option<String>,
    /// The body.
    pub body: PolicyBody,
    /// When the head is sent.
    pub pace: Pace,
}

impl PolicyResponse {
    /// `200`, `text/plain`, this body (a policy when the body is one).
    pub fn policy(body: &str) -> Self {
        Self {
            status: 200,
            content_type: Some("text/plain".to_owned()),
            location: None,
            body: PolicyBody::Full(Bytes::copy_from_slice(body.as_bytes())),
            pace: Pace::Immediate,
        }
    }

    /// This status with an empty body and no Content-Type.
    pub fn status(status: u16) -> Self {
        Self {
            status,
            content_type: None,
            location: None,
            body: PolicyBody::Full(Bytes::new()),
            pace: Pace::Immediate,
        }
    }

    /// A redirect: this status and Location, an empty body.
    pub fn redirect(status: u16, location: &str) -> Self {
        Self {
            location: Some(location.to_owned()),
            ..Self::status(status)
        }
    }

    /// The same response with this Content-Type (`None`: no header).
    pub fn with_content_type(mut self, content_type: Option<&str>) -> Self {
        self.content_type = content_type.map(str::to_owned);
        self
    }

    /// The same response with this body.
    pub fn with_body(mut self, body: PolicyBody) -> Self {
        self.body = body;
        self
    }

    /// The same response sent at this pace.
    pub fn with_pace(mut self, pace: Pace) -> Self {
        self.pace = pace;
        self
    }
}

/// How a policy host behaves once a client names it in SNI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostBehaviour {
    /// Completes the handshake and answers the policy path with this response (other paths:
    /// 404, other methods: 405).
    Respond(PolicyResponse),
    /// Reads the ClientHello and never answers it: the TLS handshake hangs.
    StallHandshake,
    /// A TLS-RPT report endpoint (RFC 8460 §5.4) on every path: `HEAD` and `OPTIONS` get
    /// 200 (with `Allow: POST, OPTIONS, HEAD`), a `POST` gets 200 once its body (at most
    /// [`REPORT_BODY_LIMIT`]) is read and logged; other methods 405, a larger body 413.
    ReportEndpoint,
}

/// The largest report body a lab report endpoint accepts.
pub const REPORT_BODY_LIMIT: usize = 1024 * 1024;

/// One policy host of a server.
#[derive(Debug)]
pub struct PolicyHost {
    /// The host name matched against the SNI of a connection (e.g. `mta-sts.example.com`),
    /// any case. The Host header is recorded, not matched.
    pub name: String,
    /// The chain presented, leaf first, exactly as sent.
    pub chain: Vec<CertificateDer<'static>>,
    /// The leaf's private key.
    pub key: PrivateKeyDer<'static>,
    /// How it behaves.
    pub behaviour: HostBehaviour,
}

impl PolicyHost {
    /// A host that answers with `response`.
    pub fn new(
        name: &str,
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
        response: PolicyResponse,
    ) -> Self {
        Self {
            name: name.to_owned(),
            chain,
            key,
            behaviour: HostBehaviour::Respond(response),
        }
    }
}

/// One request a server received, as the client sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenRequest {
    /// The SNI of the connection.
    pub sni: String,
    /// The Host header, if any.
    pub host: Option<String>,
    /// The method.
    pub method: String,
    /// The request target (path and query).
    pub target: String,
    /// The User-Agent header, if any.
    pub user_agent: Option<String>,
    /// The Content-Type header, if any.
    pub content_type: Option<String>,
    /// The body of a `POST` to a report endpoint (empty otherwise).
    pub body: Vec<u8>,
}

/// The lab's HTTPS policy server.
#[derive(Debug)]
pub struct PolicyServer;

impl PolicyServer {
    /// Listens on an ephemeral port of `bind_ip` (a loopback address: 127.0.0.0/8 or ::1)
    /// and serves `hosts` until the returned [`RunningHttps`] is dropped.
    pub async fn start(
        bind_ip: IpAddr,
        hosts: Vec<PolicyHost>,
    ) -> Result<RunningHttps, HttpsLabError> {
        if !bind_ip.is_loopback() {
            return Err(HttpsLabError::NotLoopback { ip: bind_ip });
        }
        let mut prepared = HashMap::with_capacity(hosts.len());
        for host in hosts {
            let name = host.name.to_ascii_lowercase();
            let ready = PreparedHost::new(host)?;
            if prepared.insert(name.clone(), ready).is_some() {
                return Err(HttpsLabError::DuplicateHost { name });
            }
        }
        let listener =
            TcpListener::bind((bind_ip, 0))
                .await
                .map_err(|source| HttpsLabError::Bind {
                    ip: bind_ip,
                    source,
                })?;
        let addr = listener
            .local_addr()
            .map_err(|source| HttpsLabError::Bind {
                ip: bind_ip,
                source,
            })?;
        let counters = Arc::new(Counters {
            per_host: prepared
                .keys()
                .map(|k| (k.clone(), AtomicU64::new(0)))
                .collect(),
            ..Counters::default()
        });
        let shared = Arc::new(Shared {
            hosts: prepared,
            counters: counters.clone(),
        });
        let (stop, stopped) = watch::channel(());
        tokio::spawn(accept_loop(listener, shared.clone(), stopped));
        Ok(RunningHttps {
            addr,
            counters,
            shared,
            _stop: stop,
        })
    }
}

/// A running policy server. Dropping it (or calling [`Self::shutdown`]) stops the listener
/// and every open connection.
pub struct RunningHttps {
    /// The address it listens on.
    pub addr: SocketAddr,
    counters: Arc<Counters>,
    shared: Arc<Shared>,
    _stop: watch::Sender<()>,
}

impl fmt::Debug for RunningHttps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunningHttps")
            .field("addr", &self.addr)
            .field("requests", &self.request_count())
            .finish_non_exhaustive()
    }
}

impl RunningHttps {
    /// TCP connections accepted.
    pub fn connection_count(&self) -> u64 {
        self.counters.connections.load(Ordering::Relaxed)
    }

    /// TLS handshakes completed.
    pub fn handshake_count(&self) -> u64 {
        self.counters.handshakes.load(Ordering::Relaxed)
    }

    /// HTTP requests received, any host, path or method.
    pub fn request_count(&self) -> u64 {
        self.counters.requests.load(Ordering::Relaxed)
    }

    /// HTTP requests received on connections whose SNI named `host` (any case); 0 for a host
    /// this server does not serve.
    pub fn requests_for(&self, host: &str) -> u64 {
        self.counters
            .per_host
            .get(&host.to_ascii_lowercase())
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// The first [`REQUEST_LOG_LIMIT`] requests, in arrival order.
    pub fn requests(&self) -> Vec<SeenRequest> {
        self.counters.lock_log().clone()
    }

    /// Answers later requests for `host` (matched as SNI is: any case) with `response`, on
    /// the same address with the same certificate; a host that stalled its handshakes now
    /// completes them. Connections that start their handshake after this call get the new
    /// response; connections already open keep the old one. The response is checked as at
    /// start.
    pub fn set_response(&self, host: &str, response: PolicyResponse) -> Result<(), HttpsLabError> {
        let name = host.to_ascii_lowercase();
        let Some(prepared) = self.shared.hosts.get(&name) else {
            return Err(HttpsLabError::UnknownHost {
                name: host.to_owned(),
            });
        };
        check_response(host, &response)?;
        *prepared
            .behaviour
            .write()
            .unwrap_or_else(PoisonError::into_inner) = HostBehaviour::Respond(response);
        Ok(())
    }

    /// Stops the server (the same as dropping it).
    pub fn shutdown(self) {}
}

#[derive(Debug, Default)]
struct Counters {
    connections: AtomicU64,
    handshakes: AtomicU64,
    requests: AtomicU64,
    per_host: HashMap<String, AtomicU64>,
    log: Mutex<Vec<SeenRequest>>,
}

impl Counters {
    fn lock_log(&self) -> std::sync::MutexGuard<'_, Vec<SeenRequest>> {
        // A push cannot leave the vector half-written, so a poisoned log is still sound.
        self.log.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn record(&self, request: SeenRequest) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if let Some(count) = self.per_host.get(&request.sni) {
            count.fetch_add(1, Ordering::Relaxed);
        }
        let mut log = self.lock_log();
        if log.len() < REQUEST_LOG_LIMIT {
            log.push(request);
        }
    }
}

/// A host with its response checked and its TLS configuration built. The behaviour can be
/// changed while the server runs ([`RunningHttps::set_response`]).
struct PreparedHost {
    tls: Arc<ServerConfig>,
    behaviour: RwLock<HostBehaviour>,
}

impl PreparedHost {
    /// The behaviour a connection starting now gets.
    fn behaviour(&self) -> HostBehaviour {
        // A writer only replaces the whole value, so a poisoned lock still holds a whole one.
        self.behaviour
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl PreparedHost {
    fn new(host: PolicyHost) -> Result<Self, HttpsLabError> {
        if let HostBehaviour::Respond(response) = &host.behaviour {
            check_response(&host.name, response)?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls_error = |source| HttpsLabError::Tls {
            host: host.name.clone(),
            source,
        };
        let mut tls = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(tls_error)?
            .with_no_client_auth()
            .with_single_cert(host.chain, host.key)
            .map_err(tls_error)?;
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            tls: Arc::new(tls),
            behaviour: RwLock::new(host.behaviour),
        })
    }
}

fn check_response(host: &str, response: &PolicyResponse) -> Result<(), HttpsLabError> {
    if StatusCode::from_u16(response.status).is_err() {
        return Err(HttpsLabError::BadStatus {
            host: host.to_owned(),
            status: response.status,
        });
    }
    let headers = [
        ("Content-Type", &response.content_type),
        ("Location", &response.location),
    ];
    for (header, value) in headers {
        if let Some(value) = value
            && HeaderValue::from_str(value).is_err()
        {
            return Err(HttpsLabError::BadHeader {
                host: host.to_owned(),
                header,
                value: value.clone(),
            });
        }
    }
    Ok(())
}

struct Shared {
    hosts: HashMap<String, PreparedHost>,
    counters: Arc<Counters>,
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, mut stop: watch::Receiver<()>) {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    shared.counters.connections.fetch_add(1, Ordering::Relaxed);
                    tokio::spawn(serve(stream, shared.clone(), stop.clone()));
                }
                // Out of file descriptors and the like: wait a little instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            },
            _ = stop.changed() => return,
        }
    }
}

/// One connection: read the ClientHello, pick the host by SNI, handshake, serve HTTP/1.1.
async fn serve(stream: TcpStream, shared: Arc<Shared>, mut stop: watch::Receiver<()>) {
    let start = tokio::select! {
        start = LazyConfigAcceptor::new(Acceptor::default(), stream) => start,
        _ = stop.changed() => return,
    };
    let Ok(start) = start else { return };
    let sni = start
        .client_hello()
        .server_name()
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    // No certificate for that name (or no SNI): close, as a server without a default
    // certificate does; the client sees the handshake cut off.
    let Some(host) = shared.hosts.get(&sni) else {
        return;
    };
    let response = match host.behaviour() {
        HostBehaviour::StallHandshake => {
            // Hold the connection open, unanswered, until the server stops.
            let _held = start;
            let _ = stop.changed().await;
            return;
        }
        HostBehaviour::Respond(response) => Some(response),
        HostBehaviour::ReportEndpoint => None,
    };
    let tls = tokio::select! {
        tls = start.into_stream(host.tls.clone()) => tls,
        _ = stop.changed() => return,
    };
    let Ok(tls) = tls else { return };
    shared.counters.handshakes.fetch_add(1, Ordering::Relaxed);
    let counters = shared.counters.clone();
    let service = service_fn(move |request| {
        let response = response.clone();
        let counters = counters.clone();
        let sni = sni.clone();
        async move {
            Ok::<_, Infallible>(match response {
                Some(response) => answer(request, &sni, response, &counters).await,
                None => receive_report(request, &sni, &counters).await,
            })
        }
    });
    let connection = http1::Builder::new().serve_connection(TokioIo::new(tls), service);
    tokio::select! {
        _ = connection => {}
        _ = stop.changed() => {}
    }
}

impl SeenRequest {
    /// What `request`, arrived under `sni`, says of itself (its body not yet read).
    fn of<B>(request: &Request<B>, sni: &str) -> Self {
        let text = |v: &HeaderValue| String::from_utf8_lossy(v.as_bytes()).into_owned();
        Self {
            sni: sni.to_owned(),
            host: request.headers().get(HOST).map(text),
            method: request.method().to_string(),
            target: request
                .uri()
                .path_and_query()
                .map_or_else(|| request.uri().to_string(), ToString::to_string),
            user_agent: request.headers().get(USER_AGENT).map(text),
            content_type: request.headers().get(CONTENT_TYPE).map(text),
            body: Vec::new(),
        }
    }
}

async fn answer(
    request: Request<Incoming>,
    sni: &str,
    response: PolicyResponse,
    counters: &Counters,
) -> Response<BoxBody<Bytes, Infallible>> {
    counters.record(SeenRequest::of(&request, sni));
    if request.uri().path() != POLICY_PATH {
        return plain(StatusCode::NOT_FOUND, "not found\n");
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "only GET\n");
    }
    match response.pace {
        Pace::Immediate => {}
        Pace::After(delay) => tokio::time::sleep(delay).await,
        Pace::Never => std::future::pending::<()>().await,
    }
    let mut built = Response::new(response.body.into_body());
    // Checked in `check_response` when the server started or the response was set.
    *built.status_mut() = StatusCode::from_u16(response.status).unwrap_or(StatusCode::OK);
    let headers = built.headers_mut();
    for (name, value) in [
        (CONTENT_TYPE, response.content_type),
        (LOCATION, response.location),
    ] {
        if let Some(value) = value.and_then(|v| HeaderValue::from_str(&v).ok()) {
            headers.insert(name, value);
        }
    }
    built
}

/// A report endpoint's answer; a `POST` body is read (up to [`REPORT_BODY_LIMIT`]) and
/// logged with the request.
async fn receive_report(
    request: Request<Incoming>,
    sni: &str,
    counters: &Counters,
) -> Response<BoxBody<Bytes, Infallible>> {
    let mut seen = SeenRequest::of(&request, sni);
    let method = request.method().clone();
    let answer = if method == Method::POST {
        let limited = http_body_util::Limited::new(request.into_body(), REPORT_BODY_LIMIT);
        match limited.collect().await {
            Ok(body) => {
                seen.body = body.to_bytes().to_vec();
                plain(StatusCode::OK, "report accepted\n")
            }
            Err(_) => plain(StatusCode::PAYLOAD_TOO_LARGE, "report too large\n"),
        }
    } else if method == Method::HEAD || method == Method::OPTIONS {
        let mut ok = plain(StatusCode::OK, "");
        ok.headers_mut().insert(
            hyper::header::ALLOW,
            HeaderValue::from_static("POST, OPTIONS, HEAD"),
        );
        ok
    } else {
        plain(StatusCode::METHOD_NOT_ALLOWED, "only POST\n")
    };
    counters.record(seen);
    answer
}

fn plain(status: StatusCode, body: &'static str) -> Response<BoxBody<Bytes, Infallible>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())).boxed());
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use time::macros::datetime;

    use super::*;
    use mxprobe_testpki::{CertAuthority, KeyKind, LeafSpec, Validity};

    fn host(name: &str, response: PolicyResponse) -> PolicyHost {
        let window = Validity::new(
            datetime!(2024-01-01 0:00 UTC),
            datetime!(2034-01-01 0:00 UTC),
        );
        let root = CertAuthority::root("Lab Root", window, KeyKind::EcdsaP256).unwrap();
        let leaf = root.leaf(&LeafSpec::new(&[name], window)).unwrap();
        PolicyHost::new(name, root.chain_for(&leaf), leaf.private_key(), response)
    }

    fn start_error(ip: IpAddr, hosts: Vec<PolicyHost>) -> HttpsLabError {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime
            .block_on(PolicyServer::start(ip, hosts))
            .expect_err("the server must refuse this configuration")
    }

    #[test]
    fn refuses_bad_configurations_before_listening() {
        let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let documentation = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        let cases: Vec<(&str, IpAddr, Vec<PolicyHost>, &str)> = vec![
            ("not loopback", documentation, vec![], "loopback"),
            (
                "bad status",
                lo,
                vec![host("mta-sts.a.example", PolicyResponse::status(1000))],
                "1000 is not an HTTP status code",
            ),
            (
                "bad content type",
                lo,
                vec![host(
                    "mta-sts.a.example",
                    PolicyResponse::policy("x").with_content_type(Some("text/plain\r\n")),
                )],
                "Content-Type",
            ),
            (
                "duplicate host",
                lo,
                vec![
                    host("mta-sts.a.example", PolicyResponse::status(200)),
                    host("MTA-STS.a.example", PolicyResponse::status(200)),
                ],
                "configured twice",
            ),
        ];
        for (name, ip, hosts, words) in cases {
            let err = start_error(ip, hosts).to_string();
            assert!(err.contains(words), "{name}: {err}");
        }
    }

    #[tokio::test]
    async fn set_response_changes_the_named_host_only() {
        let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let running = PolicyServer::start(
            lo,
            vec![
                host("mta-sts.a.example", PolicyResponse::policy("old a")),
                host("mta-sts.b.example", PolicyResponse::policy("old b")),
            ],
        )
        .await
        .expect("starts");
        let behaviour = |name: &str| running.shared.hosts[name].behaviour();

        running
            .set_response("MTA-STS.A.example", PolicyResponse::status(404))
            .expect("known host, any case");
        assert_eq!(
            behaviour("mta-sts.a.example"),
            HostBehaviour::Respond(PolicyResponse::status(404))
        );
        assert_eq!(
            behaviour("mta-sts.b.example"),
            HostBehaviour::Respond(PolicyResponse::policy("old b"))
        );

        let err = running
            .set_response("mta-sts.c.example", PolicyResponse::status(200))
            .expect_err("unknown host");
        assert!(
            matches!(&err, HttpsLabError::UnknownHost { name } if name == "mta-sts.c.example"),
            "{err}"
        );
        let err = running
            .set_response("mta-sts.b.example", PolicyResponse::status(1000))
            .expect_err("bad status");
        assert!(
            matches!(
                &err,
                HttpsLabError::BadStatus { host, status: 1000 } if host == "mta-sts.b.example"
            ),
            "{err}"
        );
        assert_eq!(
            behaviour("mta-sts.b.example"),
            HostBehaviour::Respond(PolicyResponse::policy("old b")),
            "a refused response changes nothing"
        );
    }

    #[test]
    fn mismatched_key_is_a_tls_error() {
        let mut a = host("mta-sts.a.example", PolicyResponse::status(200));
        let b = host("mta-sts.b.example", PolicyResponse::status(200));
        a.key = b.key;
        let err = start_error(IpAddr::V4(Ipv4Addr::LOCALHOST), vec![a]);
        assert!(matches!(err, HttpsLabError::Tls { .. }), "{err}");
    }
}
