//! The MTA-STS policy fetcher (RFC 8461 §3.3): the one module that uses reqwest.
//!
//! [`fetch_policy`] performs `GET https://mta-sts.<domain>/.well-known/mta-sts.txt` against
//! every address of the policy host in turn and records what happened as plain
//! [`PolicyFetchFacts`]. It makes no judgement: it accepts any certificate (recording the
//! presented chain, leaf first), any status, any Content-Type and any body up to the size
//! limit. The pure judge ([`mxprobe_core::evaluate::policy_fetch::judge_fetch`]) decides afterwards
//! between a policy, `sts-webpki-invalid`, `sts-policy-fetch-error` and `sts-policy-invalid`.
//!
//! What it deliberately does not do: resolve the policy host (the DNS stage hands in the
//! addresses, and records a DNS failure with [`dns_error`] or [`dns_timeout`]), follow
//! redirects, retry, cache, keep cookies, use a proxy (system proxies included) or decompress.
//! Every read is bounded in size ([`MAX_POLICY_BYTES`]) and in time ([`FetchTimeouts`]).
//!
//! reqwest decides the connection's address and TLS configuration per client, not per
//! request, and reports only the leaf certificate (`TlsInfo::peer_certificate`). So every
//! attempt gets its own small client: pinned to one address with `resolve`, with a fresh
//! recording verifier ([`crate::capture::recording_client_config`]) whose slot only that
//! attempt's single handshake can fill. Concurrent fetches therefore never mix chains, and no
//! connection is ever reused.

use std::collections::HashMap;
use std::error::Error as StdError;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, HeaderValue, LOCATION};
use rustls::NamedGroup;
use rustls::client::{
    ClientSessionStore, Resumption, Tls12ClientSessionValue, Tls12Resumption,
    Tls13ClientSessionValue,
};
use rustls_pki_types::ServerName;
use tokio::time::{Instant, timeout_at};

pub use mxprobe_core::mtasts::MAX_POLICY_BYTES;

use crate::capture::{ChainSlot, recording_client_config};
use mxprobe_core::domain::DomainName;
use mxprobe_core::facts::{FetchAttempt, FetchOutcome, FetchPhase, HttpResponse, PolicyFetchFacts};

/// The path of the policy file on the policy host (RFC 8461 §3.3).
pub const POLICY_PATH: &str = "/.well-known/mta-sts.txt";

/// The port of the policy host unless a [`FetchConfig`] maps the address elsewhere
/// (RFC 8461 §3.3: HTTPS, so 443).
pub const HTTPS_PORT: u16 = 443;

/// The User-Agent mxprobe sends unless told otherwise.
pub const DEFAULT_USER_AGENT: &str = concat!(
    "mxprobe/",
    env!("CARGO_PKG_VERSION"),
    " (MTA-STS policy check)"
);

/// The policy host of `domain`: `mta-sts.<domain>` (RFC 8461 §3.3).
pub fn policy_host(domain: &DomainName) -> String {
    domain.prefixed("mta-sts")
}

/// The policy URL of `domain`: `https://mta-sts.<domain>/.well-known/mta-sts.txt`
/// (RFC 8461 §3.3).
pub fn policy_url(domain: &DomainName) -> String {
    format!("https://{}{POLICY_PATH}", policy_host(domain))
}

/// Time limits of one policy fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchTimeouts {
    /// The TCP connection plus the TLS handshake, to one address (reqwest times the two
    /// together).
    pub connect: Duration,
    /// One request to one address, from the start of the connection to the end of the body.
    pub request: Duration,
    /// The whole fetch, every address together. Addresses not yet tried when it runs out are
    /// not tried (and not recorded).
    pub overall: Duration,
}

impl Default for FetchTimeouts {
    /// 10 s to connect, and one minute for a request and for the whole fetch (RFC 8461 §3.3:
    /// "A suggested timeout is one minute").
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(10),
            request: Duration::from_secs(60),
            overall: Duration::from_secs(60),
        }
    }
}

/// Why a [`FetchConfig`] could not be built.
#[derive(Debug, thiserror::Error)]
pub enum FetchConfigError {
    /// The User-Agent cannot be sent as an HTTP header value.
    #[error(
        "the User-Agent {value:?} cannot be sent in an HTTP header: use printable ASCII \
         characters and spaces only"
    )]
    InvalidUserAgent {
        /// The value given.
        value: String,
    },
}

/// Everything the policy fetcher needs: time limits, the port of each address, the
/// User-Agent. Build it once and share it between all fetches.
#[derive(Debug, Clone)]
pub struct FetchConfig {
    timeouts: FetchTimeouts,
    default_port: u16,
    ports: HashMap<IpAddr, u16>,
    user_agent: String,
}

impl Default for FetchConfig {
    fn default() -> Self {
        Self::new(FetchTimeouts::default())
    }
}

impl FetchConfig {
    /// A configuration with these time limits, port 443 everywhere and
    /// [`DEFAULT_USER_AGENT`].
    pub fn new(timeouts: FetchTimeouts) -> Self {
        Self {
            timeouts,
            default_port: HTTPS_PORT,
            ports: HashMap::new(),
            user_agent: DEFAULT_USER_AGENT.to_owned(),
        }
    }

    /// Connects to `port` instead of 443 at `ip` (the lab, or a staging server on another
    /// port). The URL, SNI and Host header keep the policy host name without a port.
    pub fn with_port(mut self, ip: IpAddr, port: u16) -> Self {
        self.ports.insert(ip, port);
        self
    }

    /// Connects to `port` instead of 443 at every address without its own entry.
    pub fn with_default_port(mut self, port: u16) -> Self {
        self.default_port = port;
        self
    }

    /// [`Self::with_port`] for each pair.
    pub fn with_ports(mut self, ports: impl IntoIterator<Item = (IpAddr, u16)>) -> Self {
        self.ports.extend(ports);
        self
    }

    /// Sends `user_agent` as the User-Agent header.
    pub fn with_user_agent(mut self, user_agent: &str) -> Result<Self, FetchConfigError> {
        // RFC 9110 §5.5: field values are visible characters, spaces and tabs; mxprobe keeps
        // to ASCII (obs-text is allowed on the wire but not portable).
        let printable = user_agent
            .bytes()
            .all(|b| b == b' ' || b.is_ascii_graphic());
        if !printable {
            return Err(FetchConfigError::InvalidUserAgent {
                value: user_agent.to_owned(),
            });
        }
        user_agent.clone_into(&mut self.user_agent);
        Ok(self)
    }

    /// The time limits.
    pub fn timeouts(&self) -> FetchTimeouts {
        self.timeouts
    }

    /// The port connected to at `ip`.
    pub fn port_for(&self, ip: IpAddr) -> u16 {
        self.ports.get(&ip).copied().unwrap_or(self.default_port)
    }

    /// The User-Agent sent.
    pub fn user_agent(&self) -> &str {
        &self.user_agent
    }
}

/// The facts of a fetch that never started because the policy host did not resolve: one
/// attempt without an address whose outcome is [`FetchOutcome::DnsError`] with the resolver's
/// words (NXDOMAIN, NODATA, SERVFAIL, …).
pub fn dns_error(domain: &DomainName, error: impl Into<String>) -> PolicyFetchFacts {
    unresolved(
        domain,
        FetchOutcome::DnsError {
            error: error.into(),
            not_found: false,
        },
    )
}

/// The facts of a fetch that never started because the policy host provably has no address
/// (NXDOMAIN, or no A and AAAA records).
pub fn not_found(domain: &DomainName, error: impl Into<String>) -> PolicyFetchFacts {
    unresolved(
        domain,
        FetchOutcome::DnsError {
            error: error.into(),
            not_found: true,
        },
    )
}

/// The facts of a fetch that never started because resolving the policy host timed out.
pub fn dns_timeout(domain: &DomainName) -> PolicyFetchFacts {
    unresolved(
        domain,
        FetchOutcome::Timeout {
            phase: FetchPhase::Dns,
        },
    )
}

fn unresolved(domain: &DomainName, outcome: FetchOutcome) -> PolicyFetchFacts {
    PolicyFetchFacts {
        url: policy_url(domain),
        attempts: vec![FetchAttempt {
            address: None,
            outcome,
        }],
    }
}

/// Fetches the MTA-STS policy of `domain` from `addresses` (the A and AAAA records of
/// `mta-sts.<domain>`, in the order to try them) and records every attempt.
///
/// Addresses are tried in order until one yields an HTTP response of any status; a connect
/// failure, TLS failure or timeout moves on to the next address (a duplicate address is tried
/// once). With no address at all the result is a [`FetchOutcome::DnsError`]. Never fails:
/// every failure is recorded in the facts.
pub async fn fetch_policy(
    config: &FetchConfig,
    domain: &DomainName,
    addresses: &[IpAddr],
) -> PolicyFetchFacts {
    let host = policy_host(domain);
    let url = policy_url(domain);
    if addresses.is_empty() {
        return not_found(domain, format!("{host} has no A or AAAA record"));
    }
    each_address(config, reqwest::Method::GET, &host, url, addresses).await
}

/// Checks a TLS-RPT report endpoint (an `https:` rua, RFC 8460 §5.4) as the policy fetch
/// reaches a policy host: one `HEAD` of `url` per address of `host` until one answers, the
/// presented chain recorded, redirects recorded and not followed, no body read. Never a
/// `POST`: nothing is delivered. With no address the result is a DNS error naming `host`.
pub async fn check_report_endpoint(
    config: &FetchConfig,
    host: &str,
    url: &str,
    addresses: &[IpAddr],
) -> PolicyFetchFacts {
    if addresses.is_empty() {
        return PolicyFetchFacts {
            url: url.to_owned(),
            attempts: vec![FetchAttempt {
                address: None,
                outcome: FetchOutcome::DnsError {
                    error: format!("{host} has no A or AAAA record"),
                    not_found: true,
                },
            }],
        };
    }
    each_address(
        config,
        reqwest::Method::HEAD,
        host,
        url.to_owned(),
        addresses,
    )
    .await
}

/// One request per address in turn until one gets an HTTP response (see [`fetch_policy`]).
async fn each_address(
    config: &FetchConfig,
    method: reqwest::Method,
    host: &str,
    url: String,
    addresses: &[IpAddr],
) -> PolicyFetchFacts {
    let overall = Instant::now() + config.timeouts.overall;
    let mut attempts: Vec<FetchAttempt> = Vec::with_capacity(addresses.len());
    for &ip in addresses {
        if attempts.iter().any(|a| a.address == Some(ip)) {
            continue;
        }
        let now = Instant::now();
        if now >= overall {
            break;
        }
        let deadline = (now + config.timeouts.request).min(overall);
        let outcome = attempt(config, method.clone(), host, &url, ip, deadline).await;
        // RFC 8461 §3.3 gives no rule for several addresses; any HTTP response, whatever
        // its status, is the policy host's answer, so only a failure to get one moves on.
        let answered = matches!(outcome, FetchOutcome::Response(_));
        attempts.push(FetchAttempt {
            address: Some(ip),
            outcome,
        });
        if answered {
            break;
        }
    }
    PolicyFetchFacts { url, attempts }
}

/// One request to one address, bounded by `deadline`.
async fn attempt(
    config: &FetchConfig,
    method: reqwest::Method,
    host: &str,
    url: &str,
    ip: IpAddr,
    deadline: Instant,
) -> FetchOutcome {
    let address = SocketAddr::new(ip, config.port_for(ip));
    let (tls, slot) = recording_client_config();
    let watch = HandshakeWatch {
        hello: Arc::new(AtomicBool::new(false)),
        slot,
    };
    let client = match build_client(config, host, address, tls, &watch) {
        Ok(client) => client,
        Err(e) => {
            return FetchOutcome::ConnectError {
                error: format!("the HTTPS client could not be set up: {}", innermost(&e)),
            };
        }
    };
    let response = match timeout_at(deadline, client.request(method, url).send()).await {
        Err(_elapsed) => {
            return FetchOutcome::Timeout {
                phase: watch.phase(),
            };
        }
        Ok(Err(e)) => return send_failure(&e, &watch),
        Ok(Ok(response)) => response,
    };
    read_response(response, deadline, watch.chain()).await
}

/// A client for one attempt: one address, one recording verifier, nothing reused.
fn build_client(
    config: &FetchConfig,
    host: &str,
    address: SocketAddr,
    mut tls: rustls::ClientConfig,
    watch: &HandshakeWatch,
) -> reqwest::Result<reqwest::Client> {
    // Resumption stays impossible (the store never stores); the store only notes that a
    // ClientHello was built, which tells a TCP timeout from a TLS one.
    tls.resumption = Resumption::store(Arc::new(HelloMarker(watch.hello.clone())))
        .tls12_resumption(Tls12Resumption::Disabled);
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        // The connection goes to exactly this address; the URL, SNI and Host keep the name.
        // A non-zero port here is used because the URL names none.
        .resolve(host, address)
        // RFC 8461 §3.3: "Senders MUST NOT follow HTTP redirects"; status and Location are
        // recorded instead.
        .redirect(reqwest::redirect::Policy::none())
        .retry(reqwest::retry::never())
        .referer(false)
        // System proxies (HTTPS_PROXY, …) would change which server answers.
        .no_proxy()
        // Every attempt is a fresh connection: a reused one would present no certificate.
        .pool_max_idle_per_host(0)
        .connect_timeout(config.timeouts.connect)
        .user_agent(config.user_agent.as_str())
        .http1_only()
        .build()
}

/// Reads the status, headers and the body up to the size limit.
async fn read_response(
    mut response: reqwest::Response,
    deadline: Instant,
    chain: Vec<Vec<u8>>,
) -> FetchOutcome {
    let header = |name| {
        response
            .headers()
            .get(name)
            .map(|v: &HeaderValue| String::from_utf8_lossy(v.as_bytes()).into_owned())
    };
    let status = response.status().as_u16();
    let content_type = header(CONTENT_TYPE);
    let location = header(LOCATION);
    let mut body = CappedBody::new(MAX_POLICY_BYTES);
    // RFC 8461 §3.3: a body over the limit is not read at all when its length is announced.
    let announced = response.content_length().unwrap_or(0);
    if announced > MAX_POLICY_BYTES as u64 {
        body.truncated = true;
    }
    while !body.truncated {
        match timeout_at(deadline, response.chunk()).await {
            Err(_elapsed) => {
                return FetchOutcome::Timeout {
                    phase: FetchPhase::Body,
                };
            }
            Ok(Err(e)) => {
                return FetchOutcome::ConnectError {
                    error: format!(
                        "the connection broke while the body was read: {}",
                        innermost(&e)
                    ),
                };
            }
            Ok(Ok(None)) => break,
            Ok(Ok(Some(chunk))) => body.push(&chunk),
        }
    }
    // Dropping the response closes the connection, so a body past the limit is not read on.
    drop(response);
    let (body, body_not_utf8, body_truncated) = body.finish();
    FetchOutcome::Response(HttpResponse {
        status,
        content_type,
        location,
        chain,
        body,
        body_not_utf8,
        body_truncated,
    })
}

/// How a failed `send` is recorded: the stage it stopped in decides between a connect
/// failure, a TLS failure and a timeout.
fn send_failure(error: &reqwest::Error, watch: &HandshakeWatch) -> FetchOutcome {
    if error.is_timeout() {
        // Our own deadline is applied outside reqwest, so this is reqwest's connect timeout,
        // which covers the TCP connection and the TLS handshake.
        return FetchOutcome::Timeout {
            phase: if watch.hello_sent() {
                FetchPhase::Tls
            } else {
                FetchPhase::Connect
            },
        };
    }
    if let Some(tls) = rustls_error(error) {
        return FetchOutcome::TlsError {
            error: tls.to_string(),
        };
    }
    let cause = innermost(error);
    if error.is_connect() && watch.hello_sent() {
        // The TCP connection stood (the ClientHello was built) and the handshake broke,
        // e.g. the server closed the connection instead of answering.
        return FetchOutcome::TlsError {
            error: format!("the TLS handshake was cut off: {cause}"),
        };
    }
    if error.is_connect() {
        return FetchOutcome::ConnectError { error: cause };
    }
    FetchOutcome::ConnectError {
        error: format!("the connection broke before the response: {cause}"),
    }
}

/// The rustls error somewhere in the chain of causes (tokio-rustls wraps it in an
/// `io::Error`, whose `source()` skips it).
fn rustls_error<'e>(error: &'e (dyn StdError + 'static)) -> Option<&'e rustls::Error> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        if let Some(tls) = e
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            return Some(tls);
        }
        current = e.source();
    }
    None
}

/// The words of the deepest cause (reqwest's own message names only the URL).
fn innermost(error: &(dyn StdError + 'static)) -> String {
    let mut deepest = error;
    while let Some(next) = deepest.source() {
        deepest = next;
    }
    deepest.to_string()
}

/// What one attempt's handshake got to: whether a ClientHello was built (so TCP connected)
/// and the recorded chain (so the server's certificate arrived).
#[derive(Debug)]
struct HandshakeWatch {
    hello: Arc<AtomicBool>,
    slot: ChainSlot,
}

impl HandshakeWatch {
    fn hello_sent(&self) -> bool {
        self.hello.load(Ordering::Acquire)
    }

    /// The presented chain, leaf first, DER (empty when no certificate arrived).
    fn chain(&self) -> Vec<Vec<u8>> {
        self.slot
            .get()
            .map(|chain| chain.iter().map(|c| c.as_ref().to_vec()).collect())
            .unwrap_or_default()
    }

    /// The phase a timeout struck in, judged from how far the handshake got.
    fn phase(&self) -> FetchPhase {
        if self.slot.get().is_some() {
            // The certificate arrived, and the handshake finishes right after it unless the
            // server stalls mid-handshake; so the wait was for the response head.
            FetchPhase::Response
        } else if self.hello_sent() {
            FetchPhase::Tls
        } else {
            FetchPhase::Connect
        }
    }
}

/// A rustls session store that stores nothing (so there is never session resumption, and
/// every handshake presents the certificate) and notes that it was asked.
///
/// rustls consults the store for a session to resume and for a key-share hint while it
/// builds the ClientHello, necessarily, since both go into the ClientHello; tokio-rustls builds
/// it once the TCP connection stands. So "the store was asked" means "TCP connected, the TLS
/// handshake began".
#[derive(Debug)]
struct HelloMarker(Arc<AtomicBool>);

impl HelloMarker {
    fn mark(&self) {
        self.0.store(true, Ordering::Release);
    }
}

impl ClientSessionStore for HelloMarker {
    fn set_kx_hint(&self, _: ServerName<'static>, _: NamedGroup) {}

    fn kx_hint(&self, _: &ServerName<'_>) -> Option<NamedGroup> {
        self.mark();
        None
    }

    fn set_tls12_session(&self, _: ServerName<'static>, _: Tls12ClientSessionValue) {}

    fn tls12_session(&self, _: &ServerName<'_>) -> Option<Tls12ClientSessionValue> {
        self.mark();
        None
    }

    fn remove_tls12_session(&self, _: &ServerName<'static>) {}

    fn insert_tls13_ticket(&self, _: ServerName<'static>, _: Tls13ClientSessionValue) {}

    fn take_tls13_ticket(&self, _: &ServerName<'static>) -> Option<Tls13ClientSessionValue> {
        self.mark();
        None
    }
}

/// A body read up to `limit` bytes; one byte more marks it truncated and ends the read.
#[derive(Debug)]
struct CappedBody {
    bytes: Vec<u8>,
    limit: usize,
    truncated: bool,
}

impl CappedBody {
    fn new(limit: usize) -> Self {
        Self {
            bytes: Vec::new(),
            limit,
            truncated: false,
        }
    }

    /// Adds a chunk, keeping at most `limit` bytes in all.
    fn push(&mut self, chunk: &[u8]) {
        let room = self.limit - self.bytes.len();
        if chunk.len() > room {
            // RFC 8461 §3.3: the 64 KiB limit is enforced while reading (chunked bodies
            // have no announced length).
            self.bytes.extend_from_slice(&chunk[..room]);
            self.truncated = true;
        } else {
            self.bytes.extend_from_slice(chunk);
        }
    }

    /// The body as text, whether it was not UTF-8, whether it was truncated.
    fn finish(self) -> (String, bool, bool) {
        match String::from_utf8(self.bytes) {
            Ok(text) => (text, false, self.truncated),
            Err(e) => (
                String::from_utf8_lossy(e.as_bytes()).into_owned(),
                true,
                self.truncated,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn domain(s: &str) -> DomainName {
        DomainName::parse(s).unwrap()
    }

    #[test]
    fn url_and_host_follow_rfc_8461() {
        let d = domain("Example.COM");
        assert_eq!(policy_host(&d), "mta-sts.example.com");
        assert_eq!(
            policy_url(&d),
            "https://mta-sts.example.com/.well-known/mta-sts.txt"
        );
    }

    /// Name, chunks, then the expected body, not-UTF-8 flag and truncated flag.
    type BodyCase = (
        &'static str,
        &'static [&'static [u8]],
        &'static str,
        bool,
        bool,
    );

    #[test]
    fn capped_body_table() {
        let limit = 8;
        let cases: &[BodyCase] = &[
            ("empty", &[], "", false, false),
            ("under", &[b"abc", b"de"], "abcde", false, false),
            (
                "exactly the limit",
                &[b"abcd", b"efgh"],
                "abcdefgh",
                false,
                false,
            ),
            (
                "limit then an empty chunk",
                &[b"abcdefgh", b""],
                "abcdefgh",
                false,
                false,
            ),
            (
                "one byte over",
                &[b"abcdefgh", b"i"],
                "abcdefgh",
                false,
                true,
            ),
            (
                "one big chunk",
                &[b"abcdefghijklmnop"],
                "abcdefgh",
                false,
                true,
            ),
            ("invalid utf-8", &[b"a\xffb"], "a\u{fffd}b", true, false),
        ];
        for (name, chunks, body, not_utf8, truncated) in cases {
            let mut capped = CappedBody::new(limit);
            for chunk in *chunks {
                if capped.truncated {
                    break;
                }
                capped.push(chunk);
            }
            assert_eq!(
                capped.finish(),
                ((*body).to_owned(), *not_utf8, *truncated),
                "{name}"
            );
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// Whatever the chunking, the kept body is the first `limit` bytes and the flag says
        /// exactly whether there were more.
        #[test]
        fn capped_body_keeps_the_prefix(
            chunks in proptest::collection::vec(
                proptest::collection::vec(proptest::num::u8::ANY, 0..40),
                0..12,
            ),
            limit in 0usize..120,
        ) {
            let all: Vec<u8> = chunks.concat();
            let mut capped = CappedBody::new(limit);
            for chunk in &chunks {
                if capped.truncated {
                    break;
                }
                capped.push(chunk);
            }
            proptest::prop_assert_eq!(capped.truncated, all.len() > limit);
            proptest::prop_assert_eq!(&capped.bytes[..], &all[..all.len().min(limit)]);
        }
    }

    #[test]
    fn ports_default_to_443_and_map_per_address() {
        let lab: IpAddr = "127.0.0.2".parse().unwrap();
        let other: IpAddr = "::1".parse().unwrap();
        let config = FetchConfig::default().with_port(lab, 8443);
        assert_eq!(config.port_for(lab), 8443);
        assert_eq!(config.port_for(other), 443);
        let config = config.with_ports([(other, 9443)]);
        assert_eq!(config.port_for(other), 9443);
    }

    #[test]
    fn user_agent_names_mxprobe_and_rejects_control_characters() {
        let config = FetchConfig::default();
        assert!(config.user_agent().starts_with("mxprobe/"));
        let err = FetchConfig::default()
            .with_user_agent("bad\r\nX-Injected: 1")
            .unwrap_err();
        assert!(
            matches!(err, FetchConfigError::InvalidUserAgent { .. }),
            "{err}"
        );
        let ok = FetchConfig::default().with_user_agent("ci-gate/1").unwrap();
        assert_eq!(ok.user_agent(), "ci-gate/1");
    }

    #[test]
    fn dns_helpers_record_one_addressless_attempt() {
        let d = domain("example.org");
        let facts = dns_error(&d, "SERVFAIL");
        assert_eq!(
            facts.url,
            "https://mta-sts.example.org/.well-known/mta-sts.txt"
        );
        assert_eq!(
            facts.attempts,
            vec![FetchAttempt {
                address: None,
                outcome: FetchOutcome::DnsError {
                    error: "SERVFAIL".to_owned(),
                    not_found: false,
                }
            }]
        );
        assert!(matches!(
            not_found(&d, "NXDOMAIN").attempts[0].outcome,
            FetchOutcome::DnsError {
                not_found: true,
                ..
            }
        ));
        let facts = dns_timeout(&d);
        assert_eq!(
            facts.attempts[0].outcome,
            FetchOutcome::Timeout {
                phase: FetchPhase::Dns
            }
        );
    }

    #[test]
    fn building_a_client_hello_marks_the_store() {
        // Guards the assumption HandshakeWatch rests on: rustls asks the session store while
        // it builds the ClientHello (no I/O: the hello is only queued).
        let (mut config, _slot) = recording_client_config();
        let seen = Arc::new(AtomicBool::new(false));
        config.resumption = Resumption::store(Arc::new(HelloMarker(seen.clone())));
        assert!(!seen.load(Ordering::Acquire));
        let name = ServerName::try_from("mta-sts.example.com").unwrap();
        let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
        assert!(conn.wants_write(), "the ClientHello is queued");
        assert!(seen.load(Ordering::Acquire));
    }

    #[test]
    fn phase_follows_the_handshake() {
        let watch = HandshakeWatch {
            hello: Arc::new(AtomicBool::new(false)),
            slot: ChainSlot::default(),
        };
        assert_eq!(watch.phase(), FetchPhase::Connect);
        watch.hello.store(true, Ordering::Release);
        assert_eq!(watch.phase(), FetchPhase::Tls);
        assert!(watch.chain().is_empty());
    }

    #[test]
    fn rustls_error_is_found_inside_an_io_error() {
        let io = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::AlertReceived(rustls::AlertDescription::HandshakeFailure),
        );
        assert_eq!(
            rustls_error(&io),
            Some(&rustls::Error::AlertReceived(
                rustls::AlertDescription::HandshakeFailure
            ))
        );
        let plain = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(rustls_error(&plain), None);
        assert_eq!(innermost(&plain), plain.to_string());
    }
}
