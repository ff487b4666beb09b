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
//!   name server pool, with a bounded validation cache (see [`Resolver`]). The status of each answer comes from
//!   `Record::proof`; a failed validation comes back as `DnsError::DnssecBogus` (or an NSEC
//!   proof marked bogus) and becomes [`Lookup::Bogus`].
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
//! anchor ([`super::chain::find_broken_link`]), as `delv` does: the first broken link becomes
//! the cause of a [`Lookup::Bogus`] (signatures expired, DS matching no key, …). No data
//! even with CD, or data that validates here, stays a [`Lookup::ServFail`]: could not tell.
//! With `--dnssec off` only the Extended DNS Errors are read. None of this runs for an
//! answer that succeeds, so a healthy scan sends no extra query.
//!
//! # Is the resolver fit at all?
//! [`Resolver::resolver_problem`] checks, once per run, that the resolver can serve a
//! validated chain: the root zone's DNSKEY records (they exist, are not NXDOMAIN, carry
//! RRSIGs that validate from the trust anchor, or the AD bit with `--dnssec resolver`), and,
//! once per top-level domain, that its DS and DNSKEY records come with their RRSIGs and that
//! an NXDOMAIN for it carries the root zone's signed denial. A resolver that fails this (a
//! captive portal answering NXDOMAIN to everything, a forwarder that strips RRSIGs) is an
//! environment problem: the scan says so once and judges no domain with it.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::stream::BoxStream;
use hickory_resolver::caching_client::CachingClient;
use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ProtocolConfig, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::dnssec::DnssecDnsHandle;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::xfer::{DnsExchange, DnsHandle, RetryDnsHandle};
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::dnssec::rdata::DNSSECRData;
use hickory_resolver::proto::dnssec::{Proof, TrustAnchors};
use hickory_resolver::proto::op::{
    DnsRequest, DnsRequestOptions, DnsResponse, Edns, Message, Query, ResponseCode,
};
use hickory_resolver::proto::rr::rdata::opt::{EdnsCode, EdnsOption};
use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};
use hickory_resolver::{ConnectionProvider, NameServerPool, PoolContext, TlsConfig};
use time::OffsetDateTime;
use tokio::sync::OnceCell;

use mxprobe_core::dns::Tlsa;
use mxprobe_core::dns::chain::{
    self, EDE_OPTION_CODE, ExtendedDnsError, MAX_EXTENDED_ERRORS, ResolverFault, ResolverProblem,
    ZoneLink,
};
use mxprobe_core::dns::{AddressLookups, DnssecStatus, Lookup, Mx, Resolve, Txt};
use mxprobe_core::domain::DomainName;

/// Where the DNSSEC trust anchor for [`DnssecMode::Validate`] comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrustAnchor {
    /// The IANA root KSKs built into hickory (2018 and 2024 keys).
    IanaRoot,
    /// A file of DNSKEY records in zone-file form, one per line, e.g.
    /// `. 3600 IN DNSKEY 257 3 13 <base64>` (`--trust-anchor FILE`).
    File(PathBuf),
    /// The same DNSKEY lines given as text (the lab hands its root key this way).
    Dnskeys(String),
}

/// How DNSSEC status is obtained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnssecMode {
    /// Validate in-process from the given trust anchor (the default, with the IANA root).
    Validate(TrustAnchor),
    /// Trust the AD bit of the configured (validating, trusted) resolver, as Postfix does.
    TrustResolverAd,
    /// No DNSSEC: every answer is indeterminate.
    Off,
}

/// Which address families [`Resolver::addresses`] asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpFamilies {
    /// A only (`-4`).
    V4,
    /// AAAA only (`-6`).
    V6,
    /// A and AAAA (the default: every address of every MX is probed).
    Both,
}

/// Resolver configuration, with no hickory types in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsConfig {
    /// The servers to ask (recursive resolvers, or the lab's authoritative server), each
    /// over UDP and TCP; `None` reads the system configuration (`/etc/resolv.conf`).
    pub servers: Option<Vec<SocketAddr>>,
    /// How DNSSEC status is obtained.
    pub dnssec: DnssecMode,
    /// How long to wait for one answer.
    pub timeout: Duration,
    /// How many times a query is sent before giving up (at least 1).
    pub attempts: usize,
    /// Which address families to look up.
    pub families: IpFamilies,
}

impl Default for DnsConfig {
    /// System resolvers, in-process validation from the IANA root, 5 s timeout, 2 attempts,
    /// both families.
    fn default() -> Self {
        Self {
            servers: None,
            dnssec: DnssecMode::Validate(TrustAnchor::IanaRoot),
            timeout: Duration::from_secs(5),
            attempts: 2,
            families: IpFamilies::Both,
        }
    }
}

/// Why the resolver could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DnsSetupError {
    /// The system resolver configuration could not be read.
    #[error("cannot read the system DNS configuration (/etc/resolv.conf): {reason}")]
    SystemConfig {
        /// What hickory reported.
        reason: String,
    },
    /// An empty server list was given.
    #[error("no DNS server was given; name at least one resolver address")]
    NoServers,
    /// The trust anchor file could not be read or parsed.
    #[error("cannot use the DNSSEC trust anchor file {path}: {reason}")]
    TrustAnchorFile {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The trust anchor text could not be parsed.
    #[error("the DNSSEC trust anchor is not a list of DNSKEY records: {reason}")]
    TrustAnchorText {
        /// What went wrong.
        reason: String,
    },
    /// The trust anchor holds no key.
    #[error("the DNSSEC trust anchor holds no DNSKEY record")]
    EmptyTrustAnchor,
    /// hickory refused the configuration.
    #[error("cannot build the DNS resolver: {reason}")]
    Build {
        /// What hickory reported.
        reason: String,
    },
}

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

/// At most this many top-level domains' fitness checks are kept; past that the map starts
/// again (a check costs two queries), so memory stays flat whatever the input.
const MAX_TLD_CHECKS: usize = 4096;

/// The longest chain of zones the diagnosis walks up (a name has at most 127 labels; real
/// chains are a handful of zones).
const MAX_CHAIN_ZONES: usize = 32;

/// The EDNS buffer size of the direct queries (the DNS flag day 2020 value).
const RAW_EDNS_PAYLOAD: u16 = 1232;

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

    /// Whether this resolver is unfit to judge `name` at all (see the module
    /// documentation): checked once for the root and once per top-level domain.
    pub async fn resolver_problem(&self, name: &DomainName) -> Option<ResolverProblem> {
        if let Some(problem) = self.root_problem().await {
            return Some(problem);
        }
        let tld = name.labels().last()?.to_ascii_lowercase();
        let cell = {
            let mut tlds = self
                .tlds
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if tlds.len() >= MAX_TLD_CHECKS && !tlds.contains_key(&tld) {
                tlds.clear();
            }
            Arc::clone(tlds.entry(tld.clone()).or_default())
        };
        cell.get_or_init(|| self.check_tld(&tld)).await.clone()
    }

    async fn root_problem(&self) -> Option<ResolverProblem> {
        self.root.get_or_init(|| self.check_root()).await.clone()
    }

    fn problem(&self, fault: ResolverFault) -> Option<ResolverProblem> {
        Some(ResolverProblem {
            resolver: self.servers(),
            fault,
        })
    }

    async fn check_root(&self) -> Option<ResolverProblem> {
        let root = Name::root();
        let Some(answer) = self.raw.query(&root, RecordType::DNSKEY, false).await else {
            return self.problem(ResolverFault::Unreachable);
        };
        match answer.metadata.response_code {
            ResponseCode::NoError => {}
            ResponseCode::NXDomain => return self.problem(ResolverFault::NxdomainForRoot),
            code => {
                return self.problem(ResolverFault::FailsForRoot {
                    rcode: code.to_string(),
                });
            }
        }
        if !has_type(&answer.answers, &root, RecordType::DNSKEY) {
            return self.problem(ResolverFault::NoRootKeys);
        }
        match self.mode {
            ModeKind::Validate => {
                if !has_signature(&answer.answers, &root, RecordType::DNSKEY) {
                    return self.problem(ResolverFault::StripsDnssec {
                        rrset: ". DNSKEY".to_owned(),
                    });
                }
                let link = ZoneLink {
                    zone: root,
                    ds: Vec::new(),
                    dnskey: answer.answers,
                };
                if let Some(broken) = chain::find_broken_link(
                    &[link],
                    &[],
                    self.anchor.as_deref(),
                    OffsetDateTime::now_utc(),
                ) {
                    return self.problem(ResolverFault::CannotValidateRoot {
                        detail: broken.to_string(),
                    });
                }
            }
            ModeKind::ResolverAd if !answer.metadata.authentic_data => {
                return self.problem(ResolverFault::NoAdBit);
            }
            ModeKind::ResolverAd | ModeKind::Off => {}
        }
        None
    }

    async fn check_tld(&self, tld: &str) -> Option<ResolverProblem> {
        if self.mode == ModeKind::Off {
            // Without DNSSEC a lying NXDOMAIN cannot be told from a real one.
            return None;
        }
        let name = Name::from_ascii(format!("{tld}.")).ok()?;
        // A TLD whose servers do not answer is not the resolver's fault: no verdict.
        let answer = self.raw.query(&name, RecordType::DS, false).await?;
        match answer.metadata.response_code {
            // The root zone is signed: a real NXDOMAIN for a TLD carries its signed denial
            // (or the AD bit of a validating resolver).
            ResponseCode::NXDomain => {
                let signed = answer
                    .authorities
                    .iter()
                    .any(|r| r.record_type() == RecordType::RRSIG);
                if signed || answer.metadata.authentic_data {
                    None
                } else {
                    self.problem(ResolverFault::NxdomainForTld {
                        tld: tld.to_owned(),
                    })
                }
            }
            ResponseCode::NoError if self.mode == ModeKind::Validate => {
                if !has_type(&answer.answers, &name, RecordType::DS) {
                    return None; // an unsigned TLD: nothing to strip
                }
                if !has_signature(&answer.answers, &name, RecordType::DS) {
                    return self.problem(ResolverFault::StripsDnssec {
                        rrset: format!("{tld} DS"),
                    });
                }
                let keys = self.raw.query(&name, RecordType::DNSKEY, false).await?;
                if has_type(&keys.answers, &name, RecordType::DNSKEY)
                    && !has_signature(&keys.answers, &name, RecordType::DNSKEY)
                {
                    return self.problem(ResolverFault::StripsDnssec {
                        rrset: format!("{tld} DNSKEY"),
                    });
                }
                None
            }
            _ => None,
        }
    }

    /// Finds out why a lookup of `name`/`record_type` failed (`first`: SERVFAIL or bogus);
    /// see the module documentation. Returns the refined outcome.
    async fn diagnose<T>(
        &self,
        name: &Name,
        record_type: RecordType,
        first: Lookup<T>,
    ) -> Lookup<T> {
        // A resolver that cannot serve DNSSEC at all is reported once for the run; nothing
        // it answers is diagnosed (the domain is not to blame).
        if self.root_problem().await.is_some() {
            return first;
        }
        self.diagnosed
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // The Extended DNS Errors of the failed response itself; when it carried none (or
        // the failure was the in-process validator's), those of asking again.
        let mut extended_errors = self.failures.take(name, record_type);
        if extended_errors.is_empty() {
            extended_errors = self
                .raw
                .query(name, record_type, false)
                .await
                .map(|m| extended_errors_of(&m))
                .unwrap_or_default();
        }
        let first = with_extended_errors(first, extended_errors.clone());
        if self.mode == ModeKind::Off {
            return first;
        }
        let Some(checked) = self.raw.query(name, record_type, true).await else {
            return with_diagnosis(
                first,
                "no answer even with checking disabled (CD): the zone's name servers are \
                 unreachable or lame",
            );
        };
        match checked.metadata.response_code {
            ResponseCode::NoError | ResponseCode::NXDomain => {}
            code => {
                return with_diagnosis(
                    first,
                    &format!(
                        "{code} even with checking disabled (CD): the zone's name servers are \
                         unreachable or lame"
                    ),
                );
            }
        }
        let Some(zone) = self.signer_zone(name, &checked).await else {
            return with_diagnosis(
                first,
                "the zone of the answer could not be found to check its signatures",
            );
        };
        let data = if checked.answers.is_empty() {
            checked.authorities
        } else {
            checked.answers
        };
        let chain = self.fetch_chain(&zone).await;
        match chain::find_broken_link(
            &chain,
            &data,
            self.anchor.as_deref(),
            OffsetDateTime::now_utc(),
        ) {
            Some(link) => Lookup::Bogus {
                detail: link.to_string(),
                cause: Some(link),
                extended_errors,
            },
            None => with_diagnosis(
                first,
                "the answer fetched with checking disabled (CD) validates here; the failure is \
                 not a DNSSEC one",
            ),
        }
    }

    /// The zone that signs the answer: the signer of its RRSIGs, else the owner of the SOA
    /// of a denial, else the zone an SOA query names.
    async fn signer_zone(&self, name: &Name, answer: &Message) -> Option<Name> {
        let signer = |records: &[Record]| {
            records.iter().find_map(|r| match &r.data {
                RData::DNSSEC(DNSSECRData::RRSIG(sig)) => Some(sig.input().signer_name.clone()),
                _ => None,
            })
        };
        let soa_owner = |records: &[Record]| {
            records
                .iter()
                .find(|r| r.record_type() == RecordType::SOA)
                .map(|r| r.name.clone())
        };
        if let Some(zone) = signer(&answer.answers)
            .or_else(|| signer(&answer.authorities))
            .or_else(|| soa_owner(&answer.authorities))
        {
            return Some(zone);
        }
        let soa = self.raw.query(name, RecordType::SOA, true).await?;
        soa_owner(&soa.answers).or_else(|| soa_owner(&soa.authorities))
    }

    /// The DS and DNSKEY records of `zone` and of every zone above it, root first, each asked
    /// with CD. A zone's parent is the signer of its DS records (or the owner of the SOA of
    /// their denial), else the name one label up.
    async fn fetch_chain(&self, zone: &Name) -> Vec<ZoneLink> {
        let mut links = Vec::new();
        let mut current = zone.clone();
        for _ in 0..MAX_CHAIN_ZONES {
            let dnskey = self.raw_answers(&current, RecordType::DNSKEY).await;
            if current.is_root() {
                links.push(ZoneLink {
                    zone: current,
                    ds: Vec::new(),
                    dnskey,
                });
                break;
            }
            let ds_answer = self.raw.query(&current, RecordType::DS, true).await;
            let parent = ds_answer
                .as_ref()
                .and_then(|m| {
                    m.answers
                        .iter()
                        .chain(&m.authorities)
                        .find_map(|r| match &r.data {
                            RData::DNSSEC(DNSSECRData::RRSIG(sig)) => {
                                Some(sig.input().signer_name.clone())
                            }
                            RData::SOA(_) => Some(r.name.clone()),
                            _ => None,
                        })
                })
                .filter(|p| *p != current && p.zone_of(&current))
                .unwrap_or_else(|| current.base_name());
            links.push(ZoneLink {
                zone: current,
                ds: ds_answer.map(|m| m.answers).unwrap_or_default(),
                dnskey,
            });
            current = parent;
        }
        links.reverse();
        links
    }

    async fn raw_answers(&self, name: &Name, record_type: RecordType) -> Vec<Record> {
        self.raw
            .query(name, record_type, true)
            .await
            .map(|m| m.answers)
            .unwrap_or_default()
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

/// Direct queries to the configured servers with the flags the diagnosis chooses (CD, DO,
/// AD), below hickory's cache and validator, returning the whole response whatever its code.
/// Used only when a lookup failed, and for the fitness check (once per run and TLD).
struct RawClient {
    servers: Vec<SocketAddr>,
    context: Arc<PoolContext>,
    runtime: TokioRuntimeProvider,
    timeout: Duration,
    attempts: usize,
}

impl RawClient {
    /// The response to `name`/`record_type` with DO set (and CD when `checking_disabled`):
    /// UDP first, TCP when truncated; each server in turn, `attempts` rounds. `None` when no
    /// server answered in time.
    async fn query(
        &self,
        name: &Name,
        record_type: RecordType,
        checking_disabled: bool,
    ) -> Option<Message> {
        let mut message = Message::query();
        message
            .queries
            .push(Query::query(name.clone(), record_type));
        message.metadata.recursion_desired = true;
        message.metadata.checking_disabled = checking_disabled;
        // RFC 6840 §5.7: ask a validating resolver to say (AD) whether it validated.
        message.metadata.authentic_data = true;
        let mut edns = Edns::new();
        edns.set_max_payload(RAW_EDNS_PAYLOAD).set_dnssec_ok(true);
        message.edns = Some(edns);
        let mut options = DnsRequestOptions::default();
        options.use_edns = true;
        options.edns_set_dnssec_ok = true;
        options.edns_payload_len = RAW_EDNS_PAYLOAD;
        let request = DnsRequest::new(message, options);
        for _ in 0..self.attempts {
            for server in &self.servers {
                let Some(answer) = self
                    .exchange(*server, ProtocolConfig::Udp, request.clone())
                    .await
                else {
                    continue;
                };
                if answer.metadata.truncation
                    && let Some(full) = self
                        .exchange(*server, ProtocolConfig::Tcp, request.clone())
                        .await
                {
                    return Some(full);
                }
                return Some(answer);
            }
        }
        None
    }

    async fn exchange(
        &self,
        server: SocketAddr,
        protocol: ProtocolConfig,
        request: DnsRequest,
    ) -> Option<Message> {
        let mut config = ConnectionConfig::new(protocol);
        config.port = server.port();
        let connecting = self
            .runtime
            .new_connection(server.ip(), &config, &self.context)
            .ok()?;
        let exchange = async {
            let connection = connecting.await.ok()?;
            let response = connection.send(request).next().await?.ok()?;
            Some(response.into_message())
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .ok()
            .flatten()
    }
}

/// The addresses of the configured servers, as the direct queries reach them (each server's
/// UDP port, 53 by default).
fn raw_servers(servers: &[NameServerConfig]) -> Vec<SocketAddr> {
    servers
        .iter()
        .map(|s| {
            let port = s
                .connections
                .iter()
                .find(|c| matches!(c.protocol, ProtocolConfig::Udp))
                .map_or(53, |c| c.port);
            SocketAddr::new(s.ip, port)
        })
        .collect()
}

/// The Extended DNS Errors (RFC 8914) of the failed responses (any code but NOERROR and
/// NXDOMAIN) that came through hickory's connections, by query, until the diagnosis of that
/// query takes them. Bounded: past [`MAX_LOGGED_FAILURES`] entries it starts again (a
/// diagnosis that finds nothing here asks the resolver again).
#[derive(Default)]
struct FailureLog {
    entries: std::sync::Mutex<HashMap<(Name, RecordType), Vec<ExtendedDnsError>>>,
}

/// At most this many failed responses' Extended DNS Errors are kept for their diagnosis.
const MAX_LOGGED_FAILURES: usize = 1024;

impl FailureLog {
    fn record(&self, response: &DnsResponse) {
        if matches!(
            response.metadata.response_code,
            ResponseCode::NoError | ResponseCode::NXDomain
        ) {
            return;
        }
        let errors = extended_errors_of(response);
        let Some(query) = response.queries.first() else {
            return;
        };
        if errors.is_empty() {
            return;
        }
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if entries.len() >= MAX_LOGGED_FAILURES {
            entries.clear();
        }
        entries.insert((query.name().to_lowercase(), query.query_type()), errors);
    }

    fn take(&self, name: &Name, record_type: RecordType) -> Vec<ExtendedDnsError> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&(name.to_lowercase(), record_type))
            .unwrap_or_default()
    }
}

/// The Extended DNS Errors of a response (RFC 8914), at most [`MAX_EXTENDED_ERRORS`].
fn extended_errors_of(message: &Message) -> Vec<ExtendedDnsError> {
    let Some(edns) = &message.edns else {
        return Vec::new();
    };
    edns.options()
        .get_all(EdnsCode::from(EDE_OPTION_CODE))
        .into_iter()
        .filter_map(|option| match option {
            EdnsOption::Unknown(_, data) => ExtendedDnsError::from_option_data(data),
            _ => None,
        })
        .take(MAX_EXTENDED_ERRORS)
        .collect()
}

fn with_extended_errors<T>(lookup: Lookup<T>, errors: Vec<ExtendedDnsError>) -> Lookup<T> {
    match lookup {
        Lookup::Bogus { detail, cause, .. } => Lookup::Bogus {
            detail,
            cause,
            extended_errors: errors,
        },
        Lookup::ServFail { diagnosis, .. } => Lookup::ServFail {
            extended_errors: errors,
            diagnosis,
        },
        other => other,
    }
}

/// Adds what the diagnosis found to a SERVFAIL (a bogus verdict of the in-process validator
/// keeps its own words).
fn with_diagnosis<T>(lookup: Lookup<T>, found: &str) -> Lookup<T> {
    match lookup {
        Lookup::ServFail {
            extended_errors, ..
        } => Lookup::ServFail {
            extended_errors,
            diagnosis: Some(found.to_owned()),
        },
        other => other,
    }
}

fn has_type(records: &[Record], owner: &Name, record_type: RecordType) -> bool {
    records
        .iter()
        .any(|r| r.name == *owner && r.record_type() == record_type)
}

fn has_signature(records: &[Record], owner: &Name, record_type: RecordType) -> bool {
    records.iter().any(|r| {
        r.name == *owner
            && matches!(&r.data, RData::DNSSEC(DNSSECRData::RRSIG(sig))
                if sig.input().type_covered == record_type)
    })
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

/// Checks that `anchor` can be used (parsed, and holding a key) before any resolver is built,
/// so that the command line can name the file at fault.
pub fn check_trust_anchor(anchor: &TrustAnchor) -> Result<(), DnsSetupError> {
    load_trust_anchor(anchor).map(drop)
}

fn load_trust_anchor(anchor: &TrustAnchor) -> Result<TrustAnchors, DnsSetupError> {
    let anchors = match anchor {
        TrustAnchor::IanaRoot => return Ok(TrustAnchors::default()),
        TrustAnchor::File(path) => {
            let file_error = |reason: String| DnsSetupError::TrustAnchorFile {
                path: path.clone(),
                reason,
            };
            let bytes = mxprobe_core::limits::read_capped(
                "--trust-anchor",
                path,
                mxprobe_core::limits::TRUST_ANCHOR_BYTES,
            )
            .map_err(|e| file_error(e.to_string()))?;
            let text =
                String::from_utf8(bytes).map_err(|_| file_error("not UTF-8 text".to_owned()))?;
            TrustAnchors::from_str(&text).map_err(|e| file_error(e.to_string()))?
        }
        TrustAnchor::Dnskeys(text) => {
            TrustAnchors::from_str(text).map_err(|e| DnsSetupError::TrustAnchorText {
                reason: e.to_string(),
            })?
        }
    };
    // `len` counts root keys only; a file of keys for other names is legitimate too, but a
    // file with nothing in it would silently validate nothing.
    if anchors.is_empty() && trust_anchor_text_is_empty(anchor) {
        return Err(DnsSetupError::EmptyTrustAnchor);
    }
    Ok(anchors)
}

/// True when the anchor source holds no DNSKEY line at all (only comments and blanks).
fn trust_anchor_text_is_empty(anchor: &TrustAnchor) -> bool {
    let text = match anchor {
        TrustAnchor::IanaRoot => return false,
        TrustAnchor::File(path) => std::fs::read_to_string(path).unwrap_or_default(),
        TrustAnchor::Dnskeys(text) => text.clone(),
    };
    !text.to_ascii_uppercase().contains("DNSKEY")
}

/// `name` made absolute (a trailing dot), so no search domain is ever appended.
fn fqdn(name: &str) -> String {
    if name.ends_with('.') {
        name.to_owned()
    } else {
        format!("{name}.")
    }
}

/// A name as mxprobe writes names: lower-case, no trailing dot, `"."` for the root.
fn name_text(name: &Name) -> String {
    if name.is_root() {
        return ".".to_owned();
    }
    let text = name.to_ascii().to_ascii_lowercase();
    text.strip_suffix('.').map(str::to_owned).unwrap_or(text)
}

fn proof_status(proof: Proof) -> DnssecStatus {
    match proof {
        Proof::Secure => DnssecStatus::Secure,
        Proof::Insecure => DnssecStatus::Insecure,
        Proof::Bogus => DnssecStatus::Bogus,
        Proof::Indeterminate => DnssecStatus::Indeterminate,
    }
}

/// The status of a set of records, RRSIGs left out (their proof is not the RRset's).
fn records_status<'r>(records: impl IntoIterator<Item = &'r Record>) -> DnssecStatus {
    DnssecStatus::combine(
        records
            .into_iter()
            .filter(|r| r.record_type() != RecordType::RRSIG)
            .map(|r| proof_status(r.proof)),
    )
}

/// Turns hickory's outcome into a [`Lookup`]. Positive answers: the records of the asked
/// type, the CNAME chain from the asked name, and the weakest proof among them. Negative
/// answers: NXDOMAIN vs NODATA from the response code, the status from the proofs of the
/// authority records (SOA, NSEC/NSEC3) that carry the denial (RFC 4035 §5.4).
fn classify<T>(
    asked: &Name,
    record_type: RecordType,
    result: Result<hickory_resolver::lookup::Lookup, NetError>,
    convert: impl Fn(&RData) -> Option<T>,
) -> Lookup<T> {
    match result {
        Ok(lookup) => {
            let answers = lookup.answers();
            let mut cname_chain = Vec::new();
            let mut used: Vec<&Record> = Vec::new();
            let mut current = asked.clone();
            // Each step must consume a distinct CNAME, so the walk ends within
            // `answers.len()` steps even on a loop in the data.
            for _ in 0..answers.len() {
                let Some(cname) = answers
                    .iter()
                    .find(|r| r.name == current && matches!(r.data, RData::CNAME(_)))
                else {
                    break;
                };
                let RData::CNAME(target) = &cname.data else {
                    break;
                };
                used.push(cname);
                current = target.0.clone();
                cname_chain.push(name_text(&current));
            }
            let typed: Vec<&Record> = answers
                .iter()
                .filter(|r| r.record_type() == record_type)
                .collect();
            let dnssec = records_status(used.iter().copied().chain(typed.iter().copied()));
            let records: Vec<T> = typed.iter().filter_map(|r| convert(&r.data)).collect();
            if records.is_empty() {
                Lookup::NoData { dnssec }
            } else {
                Lookup::Records {
                    records,
                    dnssec,
                    cname_chain,
                }
            }
        }
        Err(error) => classify_error(error),
    }
}

fn classify_error<T>(error: NetError) -> Lookup<T> {
    match error {
        NetError::Dns(DnsError::NoRecordsFound(no_records)) => {
            let dnssec = no_records
                .authorities
                .as_deref()
                .map_or(DnssecStatus::Indeterminate, records_status);
            negative(no_records.response_code, dnssec)
        }
        NetError::Dns(DnsError::Nsec {
            response, proof, ..
        }) => match proof {
            Proof::Bogus => Lookup::bogus("the denial of existence does not validate"),
            other => negative(response.response_code, proof_status(other)),
        },
        NetError::Dns(DnsError::DnssecBogus) => {
            Lookup::bogus("the answer does not validate from the trust anchor")
        }
        NetError::Dns(DnsError::ResponseCode(ResponseCode::ServFail)) => Lookup::servfail(),
        NetError::Dns(DnsError::ResponseCode(ResponseCode::Refused)) => Lookup::Refused,
        NetError::Dns(DnsError::ResponseCode(code)) => Lookup::Error {
            error: format!("the DNS server answered {code}"),
        },
        NetError::Timeout => Lookup::Timeout,
        NetError::Io(e) if e.kind() == std::io::ErrorKind::TimedOut => Lookup::Timeout,
        other => Lookup::Error {
            error: format!("DNS lookup failed: {other}"),
        },
    }
}

fn negative<T>(code: ResponseCode, dnssec: DnssecStatus) -> Lookup<T> {
    if code == ResponseCode::NXDomain {
        Lookup::NxDomain { dnssec }
    } else {
        Lookup::NoData { dnssec }
    }
}

/// hickory's connection provider, which keeps the Extended DNS Errors of failed responses
/// for their diagnosis ([`FailureLog`]), with one addition for [`DnssecMode::TrustResolverAd`]:
/// queries ask for DNSSEC (DO and AD bits) and each response's records are stamped with the
/// resolver's verdict (the AD bit) before hickory interprets them. With `trust_ad` false it
/// passes everything through unchanged.
#[derive(Clone)]
struct StampingProvider {
    runtime: TokioRuntimeProvider,
    trust_ad: bool,
    failures: Arc<FailureLog>,
}

type ConnFuture = Pin<Box<dyn Future<Output = Result<StampingConn, NetError>> + Send + 'static>>;

impl ConnectionProvider for StampingProvider {
    type Conn = StampingConn;
    type FutureConn = ConnFuture;
    type RuntimeProvider = TokioRuntimeProvider;

    fn new_connection(
        &self,
        ip: IpAddr,
        config: &ConnectionConfig,
        cx: &PoolContext,
    ) -> Result<Self::FutureConn, NetError> {
        let connecting = self.runtime.new_connection(ip, config, cx)?;
        let trust_ad = self.trust_ad;
        let failures = Arc::clone(&self.failures);
        Ok(Box::pin(async move {
            Ok(StampingConn {
                inner: connecting.await?,
                trust_ad,
                failures,
            })
        }))
    }

    fn runtime_provider(&self) -> &Self::RuntimeProvider {
        &self.runtime
    }
}

#[derive(Clone)]
struct StampingConn {
    inner: DnsExchange<TokioRuntimeProvider>,
    trust_ad: bool,
    failures: Arc<FailureLog>,
}

impl DnsHandle for StampingConn {
    type Response = BoxStream<'static, Result<DnsResponse, NetError>>;
    type Runtime = TokioRuntimeProvider;

    fn send(&self, mut request: DnsRequest) -> Self::Response {
        let failures = Arc::clone(&self.failures);
        let log = move |response: DnsResponse| {
            failures.record(&response);
            response
        };
        if !self.trust_ad {
            return self.inner.send(request).map(move |r| r.map(&log)).boxed();
        }
        // RFC 3225 §3: DO asks the resolver for DNSSEC data; RFC 6840 §5.7: AD in a query
        // asks it to report, in the response's AD bit, whether it validated the answer.
        request.metadata.authentic_data = true;
        request
            .edns
            .get_or_insert_with(Edns::new)
            .set_dnssec_ok(true);
        self.inner
            .send(request)
            .map(move |r| r.map(&log).map(stamp_proofs))
            .boxed()
    }
}

/// RFC 4035 §3.2.3: a validating resolver sets AD only when every RRset in the answer and
/// authority sections is authentic; without AD nothing in the response was validated.
fn stamp_proofs(mut response: DnsResponse) -> DnsResponse {
    let proof = if response.metadata.authentic_data {
        Proof::Secure
    } else {
        Proof::Insecure
    };
    let message = &mut *response;
    for record in message
        .answers
        .iter_mut()
        .chain(message.authorities.iter_mut())
    {
        record.proof = proof;
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_resolver::net::NoRecords;
    use hickory_resolver::proto::op::Query;

    #[test]
    fn names_are_written_without_the_trailing_dot() {
        let cases = [
            (".", "."),
            ("MX1.Example.COM.", "mx1.example.com"),
            ("a.b", "a.b"),
        ];
        for (input, expected) in cases {
            let name = Name::from_ascii(input).expect("name");
            assert_eq!(name_text(&name), expected);
        }
        assert_eq!(fqdn("example.com"), "example.com.");
        assert_eq!(fqdn("example.com."), "example.com.");
    }

    #[test]
    fn errors_are_classified_precisely() {
        let query = Query::query(Name::from_ascii("x.test.").expect("name"), RecordType::MX);
        let cases: Vec<(NetError, Lookup<Mx>)> = vec![
            (
                NoRecords::new(query.clone(), ResponseCode::NXDomain).into(),
                Lookup::NxDomain {
                    dnssec: DnssecStatus::Indeterminate,
                },
            ),
            (
                NoRecords::new(query, ResponseCode::NoError).into(),
                Lookup::NoData {
                    dnssec: DnssecStatus::Indeterminate,
                },
            ),
            (
                DnsError::ResponseCode(ResponseCode::ServFail).into(),
                Lookup::servfail(),
            ),
            (
                DnsError::ResponseCode(ResponseCode::Refused).into(),
                Lookup::Refused,
            ),
            (
                DnsError::ResponseCode(ResponseCode::NotImp).into(),
                Lookup::Error {
                    error: "the DNS server answered Not Implemented".into(),
                },
            ),
            (NetError::Timeout, Lookup::Timeout),
            (
                DnsError::DnssecBogus.into(),
                Lookup::bogus("the answer does not validate from the trust anchor"),
            ),
        ];
        for (error, expected) in cases {
            let shown = error.to_string();
            assert_eq!(classify_error::<Mx>(error), expected, "{shown}");
        }
    }

    #[test]
    fn an_empty_trust_anchor_is_refused() {
        let result = load_trust_anchor(&TrustAnchor::Dnskeys("; nothing\n".into()));
        assert!(
            matches!(result, Err(DnsSetupError::EmptyTrustAnchor)),
            "an anchor without keys must be refused"
        );
        assert!(load_trust_anchor(&TrustAnchor::IanaRoot).is_ok());
    }

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
