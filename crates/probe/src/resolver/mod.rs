//! The DNS adapter: the only module that imports hickory-resolver. It owns the resolver
//! configuration ([`DnsConfig`]), the async [`Resolver`] that asks the questions of the scan
//! (MX, TXT, A/AAAA, TLSA) and turns hickory's answers and errors into the plain
//! [`Lookup`] outcomes of [`mxprobe_core::dns`]. This module does network I/O (DNS over UDP, with
//! TCP on truncation); nothing it returns is a hickory type.
//!
//! # DNSSEC modes
//! - [`DnssecMode::Validate`]: hickory validates in-process (`validate = true`) from a trust
//!   anchor: the IANA root keys built into hickory, a file of DNSKEY lines, or DNSKEY text
//!   (a private root such as the lab's). The anchor is loaded here and handed to hickory's
//!   `DnssecDnsHandle`, which this module places between hickory's answer cache and its
//!   name server pool, with a bounded validation cache (see [`Resolver`]). The status of
//!   each answer comes from `Record::proof`; a failed validation comes back as
//!   `DnsError::DnssecBogus` (or an NSEC proof marked bogus) and becomes [`Lookup::Bogus`].
//! - [`DnssecMode::TrustResolverAd`]: trust the AD bit of a validating resolver, as Postfix
//!   does (RFC 7672 §2.1.1 requires a trusted path to it, e.g. loopback). hickory's stub
//!   sets the DO bit only when it validates itself, so this adapter plugs its own
//!   `ConnectionProvider` into hickory: every outgoing query carries EDNS DO (RFC 3225) and
//!   AD (RFC 6840 §5.7, which asks a validating resolver to say whether the answer is
//!   authentic), and every response's records are stamped `Secure` when it has AD set and
//!   `Insecure` when not, before hickory caches or interprets them. A resolver that does
//!   not validate therefore makes everything look insecure (never secure: the failure is
//!   safe), and a validating resolver reports bogus data as SERVFAIL, which this mode cannot
//!   tell from other server failures (RFC 4035 §5.5). A negative answer is judged by the
//!   records of its authority section (hickory keeps no header flags for it), so a denial
//!   that comes without an SOA is indeterminate.
//! - [`DnssecMode::Off`]: no DNSSEC; every status is indeterminate, so DANE never applies.
//!
//! # When a lookup fails: the diagnosis
//! A SERVFAIL (or a bogus verdict of the in-process validator) says nothing about why. Only
//! then, the resolver is asked again directly, below hickory's cache and validator: once as
//! before (to read the Extended DNS Errors of RFC 8914 that a resolver such as Unbound
//! attaches to its SERVFAIL), and once with the CD (checking disabled) bit, so that a
//! validating resolver hands over even bogus data. That data and the DS and DNSKEY records
//! of every zone above it (also asked with CD) are validated in-process from the trust
//! anchor ([`chain::find_broken_link`](mxprobe_core::dns::chain::find_broken_link)), as
//! `delv` does: the first broken link becomes the cause of a [`Lookup::Bogus`] (signatures
//! expired, DS matching no key, …). No data even with CD, or data that validates here, stays
//! a [`Lookup::ServFail`]: could not tell. With `--dnssec off` only the Extended DNS Errors
//! are read. None of this runs for an answer that succeeds, so a healthy scan sends no extra
//! query.
//!
//! # Is the resolver fit at all?
//! [`Resolver::resolver_problem`] checks, once per run, that the resolver can serve a
//! validated chain: the root zone's DNSKEY records (they exist, are not NXDOMAIN, carry
//! RRSIGs that validate from the trust anchor, or the AD bit with `--dnssec resolver`), and,
//! once per top-level domain, that its DS and DNSKEY records come with their RRSIGs and that
//! an NXDOMAIN for it carries the root zone's signed denial. A resolver that fails this (a
//! captive portal answering NXDOMAIN to everything, a forwarder that strips RRSIGs) is an
//! environment problem: the scan says so once and judges no domain with it.

mod classify;
mod config;
mod diagnosis;
mod fitness;
mod raw;
mod stamping;

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use futures::StreamExt;
use futures::stream::BoxStream;
use hickory_resolver::caching_client::CachingClient;
use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ProtocolConfig, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::NetError;
use hickory_resolver::net::dnssec::DnssecDnsHandle;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::xfer::{DnsHandle, RetryDnsHandle};
use hickory_resolver::proto::dnssec::TrustAnchors;
use hickory_resolver::proto::op::{DnsRequest, DnsRequestOptions, DnsResponse, Query};
use hickory_resolver::proto::rr::{Name, RData, RecordType};
use hickory_resolver::{NameServerPool, PoolContext, TlsConfig};
use tokio::sync::OnceCell;

use mxprobe_core::dns::chain::ResolverProblem;
use mxprobe_core::dns::{AddressLookups, Lookup, Mx, Resolve, Tlsa, Txt};
use mxprobe_core::domain::DomainName;

use classify::{classify, name_text};
use config::load_trust_anchor;
pub use config::{
    DnsConfig, DnsSetupError, DnssecMode, IpFamilies, TrustAnchor, check_trust_anchor,
};
use diagnosis::FailureLog;
use raw::{RawClient, raw_servers};
use stamping::StampingProvider;

/// The scan's DNS resolver (hickory-resolver underneath). Cheap to share behind an `Arc`;
/// answers are cached for their TTL.
pub struct Resolver {
    inner: CachingClient<Transport>,
    request: DnsRequestOptions,
    families: IpFamilies,
    /// Direct queries for the diagnosis and the fitness check.
    raw: RawClient,
    /// The Extended DNS Errors of the failed responses the resolver sent to hickory.
    failures: Arc<FailureLog>,
    /// How many failed lookups were diagnosed (the only ones that cost extra queries).
    diagnosed: std::sync::atomic::AtomicU64,
    /// How DNSSEC status is obtained (without the anchor, which is in `anchor`).
    mode: ModeKind,
    /// The trust anchor the diagnosis validates from: the validator's in
    /// [`DnssecMode::Validate`]; none otherwise (with `--dnssec resolver` the resolver
    /// vouches for the root, and the check of its AD bit comes first).
    anchor: Option<Arc<TrustAnchors>>,
    /// The fitness of the resolver for the root zone, checked once.
    root: OnceCell<Option<ResolverProblem>>,
    /// The fitness of the resolver per top-level domain, checked once each.
    tlds: std::sync::Mutex<HashMap<String, Arc<OnceCell<Option<ResolverProblem>>>>>,
}

/// [`DnssecMode`] without its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ModeKind {
    Validate,
    ResolverAd,
    Off,
}

/// How many answers the resolver caches, and how many DNSSEC validation results. Both
/// caches are LRU: they stay this size however many domains a scan asks about. (hickory's
/// own `Resolver` gives its validator a cache of 1,048,576 results, which a scan of
/// 100,000 domains fills to hundreds of megabytes; that is why this module assembles the
/// resolver from hickory's parts instead of using `hickory_resolver::Resolver`.)
const ANSWER_CACHE_ENTRIES: u64 = 8192;
const VALIDATION_CACHE_ENTRIES: usize = 8192;

/// The part of the stack below the answer cache: hickory's name server pool with retries,
/// behind its DNSSEC validator when the resolver validates.
#[derive(Clone)]
enum Transport {
    Plain(RetryDnsHandle<NameServerPool<StampingProvider>>),
    Validating(DnssecDnsHandle<RetryDnsHandle<NameServerPool<StampingProvider>>>),
}

impl DnsHandle for Transport {
    type Response = BoxStream<'static, Result<DnsResponse, NetError>>;
    type Runtime = TokioRuntimeProvider;

    fn is_verifying_dnssec(&self) -> bool {
        match self {
            Self::Plain(h) => h.is_verifying_dnssec(),
            Self::Validating(h) => h.is_verifying_dnssec(),
        }
    }

    fn send(&self, request: DnsRequest) -> Self::Response {
        match self {
            Self::Plain(h) => h.send(request).boxed(),
            Self::Validating(h) => h.send(request).boxed(),
        }
    }
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver")
            .field("families", &self.families)
            .finish_non_exhaustive()
    }
}

impl Resolver {
    /// Builds a resolver from `config`. Reads `/etc/resolv.conf` when no servers are given,
    /// and the trust anchor file when one is named.
    pub fn new(config: &DnsConfig) -> Result<Self, DnsSetupError> {
        let (resolver_config, mut options) = match &config.servers {
            None => hickory_resolver::system_conf::read_system_conf().map_err(|e| {
                DnsSetupError::SystemConfig {
                    reason: e.to_string(),
                }
            })?,
            Some(servers) if servers.is_empty() => return Err(DnsSetupError::NoServers),
            Some(servers) => (
                ResolverConfig::from_parts(
                    None,
                    Vec::new(),
                    servers.iter().map(|addr| name_server(*addr)).collect(),
                ),
                ResolverOpts::default(),
            ),
        };
        options.timeout = config.timeout;
        options.attempts = config.attempts.max(1);
        // Names are always asked fully qualified, as given: the stack below has no search
        // list and never reads /etc/hosts.
        options.try_tcp_on_error = true;
        options.edns0 = true;
        options.validate = matches!(config.dnssec, DnssecMode::Validate(_));

        let failures = Arc::new(FailureLog::default());
        let provider = StampingProvider {
            runtime: TokioRuntimeProvider::default(),
            trust_ad: config.dnssec == DnssecMode::TrustResolverAd,
            failures: Arc::clone(&failures),
        };
        let mut request = DnsRequestOptions::default();
        request.recursion_desired = options.recursion_desired;
        request.use_edns = options.edns0;
        request.edns_payload_len = options.edns_payload_len;
        request.case_randomization = options.case_randomization;
        request.edns_set_dnssec_ok = options.validate;
        let attempts = options.attempts;
        let tls = TlsConfig::new().map_err(|e| DnsSetupError::Build {
            reason: e.to_string(),
        })?;
        let context = Arc::new(PoolContext::new(options, tls));
        let raw = RawClient {
            servers: raw_servers(resolver_config.name_servers()),
            context: Arc::clone(&context),
            runtime: TokioRuntimeProvider::default(),
            timeout: config.timeout,
            attempts,
        };
        let pool =
            NameServerPool::from_config(resolver_config.name_servers().to_vec(), context, provider);
        let retrying = RetryDnsHandle::new(pool, attempts);
        let (transport, anchor, mode) = match &config.dnssec {
            DnssecMode::Validate(anchor) => {
                let anchor = Arc::new(load_trust_anchor(anchor)?);
                (
                    Transport::Validating(
                        DnssecDnsHandle::with_trust_anchor(retrying, Arc::clone(&anchor))
                            .validation_cache_size(VALIDATION_CACHE_ENTRIES),
                    ),
                    Some(anchor),
                    ModeKind::Validate,
                )
            }
            DnssecMode::TrustResolverAd => (Transport::Plain(retrying), None, ModeKind::ResolverAd),
            DnssecMode::Off => (Transport::Plain(retrying), None, ModeKind::Off),
        };
        // Intermediate records (CNAMEs) are kept in answers.
        let inner = CachingClient::new(ANSWER_CACHE_ENTRIES, transport, true);
        Ok(Self {
            inner,
            request,
            families: config.families,
            raw,
            failures,
            diagnosed: std::sync::atomic::AtomicU64::new(0),
            mode,
            anchor,
            root: OnceCell::new(),
            tlds: std::sync::Mutex::new(HashMap::new()),
        })
    }

    /// How many failed lookups (SERVFAIL or bogus) this resolver has diagnosed so far: the
    /// only lookups that cost queries beyond hickory's own, besides the fitness check.
    pub fn diagnosed(&self) -> u64 {
        self.diagnosed.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The servers asked, as the messages name them (`127.0.0.1:53, [::1]:53`).
    pub fn servers(&self) -> String {
        let list: Vec<String> = self.raw.servers.iter().map(ToString::to_string).collect();
        if list.is_empty() {
            "(none configured)".to_owned()
        } else {
            list.join(", ")
        }
    }

    /// The MX RRset of `domain` (RFC 5321 §5.1). A null MX (RFC 7505) comes back as the
    /// record `0 .`.
    pub async fn mx(&self, domain: &DomainName) -> Lookup<Mx> {
        self.query(&fqdn(domain.as_str()), RecordType::MX, |data| match data {
            RData::MX(mx) => Some(Mx {
                preference: mx.preference,
                exchange: name_text(&mx.exchange),
            }),
            _ => None,
        })
        .await
    }

    /// The TXT RRset at `name` (e.g. `_mta-sts.example.com`), each record as its list of
    /// character-strings; CNAMEs are followed (RFC 8461 §8.2 policy delegation).
    pub async fn txt(&self, name: &str) -> Lookup<Txt> {
        self.query(&fqdn(name), RecordType::TXT, |data| match data {
            RData::TXT(txt) => Some(Txt {
                strings: txt
                    .txt_data
                    .iter()
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect(),
            }),
            _ => None,
        })
        .await
    }

    /// The A and AAAA RRsets of `host`, per the configured families, asked in parallel.
    pub async fn addresses(&self, host: &DomainName) -> AddressLookups {
        let name = fqdn(host.as_str());
        let a = async {
            match self.families {
                IpFamilies::V4 | IpFamilies::Both => Some(
                    self.query(&name, RecordType::A, |data| match data {
                        RData::A(a) => Some(IpAddr::V4(a.0)),
                        _ => None,
                    })
                    .await,
                ),
                IpFamilies::V6 => None,
            }
        };
        let aaaa = async {
            match self.families {
                IpFamilies::V6 | IpFamilies::Both => Some(
                    self.query(&name, RecordType::AAAA, |data| match data {
                        RData::AAAA(aaaa) => Some(IpAddr::V6(aaaa.0)),
                        _ => None,
                    })
                    .await,
                ),
                IpFamilies::V4 => None,
            }
        };
        let (a, aaaa) = futures::join!(a, aaaa);
        AddressLookups { a, aaaa }
    }

    /// The TLSA RRset at `_<port>._tcp.<host>` (RFC 7672 §2.2.3, RFC 6698 §3).
    pub async fn tlsa(&self, host: &DomainName, port: u16) -> Lookup<Tlsa> {
        let name = fqdn(&format!("_{port}._tcp.{}", host.as_str()));
        self.query(&name, RecordType::TLSA, |data| match data {
            RData::TLSA(tlsa) => Some(Tlsa {
                usage: tlsa.cert_usage.into(),
                selector: tlsa.selector.into(),
                matching_type: tlsa.matching.into(),
                data: tlsa.cert_data.clone(),
            }),
            _ => None,
        })
        .await
    }

    async fn query<T>(
        &self,
        name: &str,
        record_type: RecordType,
        convert: impl Fn(&RData) -> Option<T>,
    ) -> Lookup<T> {
        let name = match Name::from_ascii(name) {
            Ok(name) => name,
            Err(e) => {
                return Lookup::Error {
                    error: format!("{name:?} cannot be asked in DNS: {e}"),
                };
            }
        };
        let query = Query::query(name.clone(), record_type);
        let result = self.inner.lookup(query, self.request).await;
        match classify(&name, record_type, result, convert) {
            failed @ (Lookup::ServFail { .. } | Lookup::Bogus { .. }) => {
                self.diagnose(&name, record_type, failed).await
            }
            other => other,
        }
    }
}

impl Resolve for Resolver {
    fn mx(&self, domain: &DomainName) -> impl Future<Output = Lookup<Mx>> + Send {
        Self::mx(self, domain)
    }

    fn txt(&self, name: &str) -> impl Future<Output = Lookup<Txt>> + Send {
        Self::txt(self, name)
    }

    fn addresses(&self, host: &DomainName) -> impl Future<Output = AddressLookups> + Send {
        Self::addresses(self, host)
    }

    fn tlsa(&self, host: &DomainName, port: u16) -> impl Future<Output = Lookup<Tlsa>> + Send {
        Self::tlsa(self, host, port)
    }

    fn resolver_problem(
        &self,
        name: &DomainName,
    ) -> impl Future<Output = Option<ResolverProblem>> + Send {
        Self::resolver_problem(self, name)
    }
}

/// A server address as hickory wants it: UDP first, TCP for truncated answers.
fn name_server(addr: SocketAddr) -> NameServerConfig {
    let connection = |protocol| {
        let mut c = ConnectionConfig::new(protocol);
        c.port = addr.port();
        c
    };
    NameServerConfig::new(
        addr.ip(),
        true,
        vec![
            connection(ProtocolConfig::Udp),
            connection(ProtocolConfig::Tcp),
        ],
    )
}

/// `name` made absolute (a trailing dot), so no search domain is ever appended.
pub(super) fn fqdn(name: &str) -> String {
    if name.ends_with('.') {
        name.to_owned()
    } else {
        format!("{name}.")
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_server_list_is_refused() {
        let config = DnsConfig {
            servers: Some(Vec::new()),
            ..DnsConfig::default()
        };
        assert!(matches!(
            Resolver::new(&config),
            Err(DnsSetupError::NoServers)
        ));
    }
}
