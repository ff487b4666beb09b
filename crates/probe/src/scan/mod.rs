//! The scan of one domain: observe (DNS, policy fetch, one STARTTLS probe per MX address),
//! then evaluate; and the sharing and politeness that make many scans cheap and polite.
//!
//! [`Scanner::observe`] asks the questions a sender asks, in the order a sender asks them,
//! and records the answers as [`DomainFacts`]; [`Scanner::evaluate`] judges them
//! ([`mxprobe_core::evaluate`]). The network is reached only through the three observe
//! adapters: the resolver ([`Resolve`]), the policy fetcher ([`crate::fetch`]) and the SMTP
//! probe ([`crate::starttls()`]); this module adds no I/O of its own beyond driving them
//! (and timers). Nothing here is lab-only: the lab differs from the real network only by the
//! resolver address, the trust anchors and the port maps.
//!
//! # What a [`Scanner`] shares between the domains it scans
//! - **SMTP probes**: one probe per (MX host name, IP address), shared by every domain that
//!   uses that MX (the certificate an MX presents does not depend on the recipient domain:
//!   SNI is the MX name). Deduplicated *in flight*: a domain that asks while the probe runs
//!   awaits the same result. Finished probes are kept in a bounded cache
//!   ([`ProbeCacheConfig`]: two generations of `capacity` entries, each entry at most `ttl`
//!   old), so memory does not grow with the number of domains.
//! - **Policy fetches**: one fetch of `mta-sts.<domain>` per domain in flight (the policy host
//!   is per domain, so only truly identical requests are merged; nothing is kept afterwards).
//! - **DNS**: the resolver caches answers for the scanner's lifetime (hickory: 8,192
//!   responses, for their TTL); the A/AAAA and TLSA lookups of an MX host are also merged
//!   in flight, since the resolver's cache helps only once an answer has arrived.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::future::join_all;
use time::OffsetDateTime;
use tokio::sync::{OnceCell, OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, sleep, sleep_until};

use crate::fetch::{
    FetchConfig, check_report_endpoint, dns_error, dns_timeout, fetch_policy, not_found,
    policy_host,
};
use crate::resolver::{DnsConfig, DnsSetupError, Resolver};
use crate::starttls::{SmtpConfig, probe_with_sni};
use mxprobe_core::dns::{AddressLookups, Lookup, Mx, Resolve, ResolverProblem, Tlsa, Txt};
use mxprobe_core::domain::DomainName;
use mxprobe_core::evaluate::policy_fetch::ContentTypeRule;
use mxprobe_core::evaluate::verdict::DomainVerdict;
use mxprobe_core::evaluate::{EvalOptions, evaluate_domain};
use mxprobe_core::facts::{
    DomainFacts, FetchAttempt, FetchOutcome, HttpsRuaFacts, MAX_RUA_CHECKED, MailtoRuaFacts,
    MxHostFacts, PolicyFetchFacts, RuaFacts,
};
use mxprobe_core::mtasts::select_sts;
use mxprobe_core::result::DomainResult;
use mxprobe_core::smtp::{Phase, SmtpFacts, SmtpOutcome};
use mxprobe_core::tls::Anchors;
use mxprobe_core::tlsrpt::record::{Rua, RuaKind, select_tlsrpt};

mod flights;
mod local;
mod politeness;
mod shared;

use flights::{Flights, Keep};
pub use local::{LocalProbes, LocalSlots};
#[cfg(test)]
use politeness::MAX_INTERVAL;
pub use politeness::{Backoff, Politeness};
use politeness::{IpGates, busy, random};
pub use shared::{AddressSlots, ProbeExchange, ProbeKey, Sharing, SlotGuard};

/// The SMTP port senders connect to (RFC 5321 §4.5.4.2 … in practice 25).
pub const SMTP_PORT: u16 = 25;

/// Everything a scan needs, built once.
#[derive(Debug, Clone)]
pub struct ScanConfig {
    /// The resolver.
    pub dns: DnsConfig,
    /// The SMTP probe.
    pub smtp: SmtpConfig,
    /// Connect to this port instead of [`Self::default_smtp_port`] at these addresses (the
    /// lab, staging MX hosts).
    pub smtp_ports: HashMap<IpAddr, u16>,
    /// The SMTP port at every other address ([`SMTP_PORT`] unless changed).
    pub default_smtp_port: u16,
    /// The policy fetcher (with its own port map).
    pub fetch: FetchConfig,
    /// The trust anchors senders use.
    pub anchors: Anchors,
    /// How strictly to judge the policy's Content-Type.
    pub content_type: ContentTypeRule,
    /// Warn when a certificate expires within this many days.
    pub expiry_warn_days: i64,
    /// Do not probe SMTP (only DNS and HTTPS checks).
    pub no_smtp: bool,
    /// Limits on connections to the mail servers probed, and the retries of busy ones.
    pub politeness: Politeness,
    /// How many finished SMTP probes are kept for other domains, and for how long.
    pub probe_cache: ProbeCacheConfig,
}

impl ScanConfig {
    /// Uses `smtp` and `https` as the ports for every address without an entry in the port
    /// maps (25 and 443 unless changed).
    pub fn with_default_ports(mut self, smtp: u16, https: u16) -> Self {
        self.default_smtp_port = smtp;
        self.fetch = self.fetch.with_default_port(https);
        self
    }
}

/// The cache of finished SMTP probes: two generations, each of at most `capacity` entries.
/// When the current generation is full it becomes the previous one and the old previous one
/// is dropped; an entry found in the previous generation moves to the current one, so MX
/// hosts in steady use stay. At most `2 × capacity` finished probes are held; probes in
/// flight are never dropped while awaited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeCacheConfig {
    /// Entries per generation (0 is taken as 1).
    pub capacity: usize,
    /// A finished probe older than this is made again.
    pub ttl: Duration,
}

impl Default for ProbeCacheConfig {
    /// 4,096 probes per generation, one hour.
    fn default() -> Self {
        Self {
            capacity: 4096,
            ttl: Duration::from_secs(3600),
        }
    }
}

/// What a [`Scanner`] has done since it was made (the counters only grow).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ScanStats {
    /// SMTP probes made: one per (MX host, address) not found in flight or in the cache.
    pub smtp_probes: u64,
    /// Times a domain used a probe another domain had made or was making.
    pub smtp_probes_shared: u64,
    /// SMTP connection attempts, retries of busy servers included.
    pub smtp_attempts: u64,
    /// Policy fetches made.
    pub policy_fetches: u64,
    /// Times a domain used a policy fetch already in flight for the same domain.
    pub policy_fetches_shared: u64,
    /// TLS-RPT destinations checked (a `mailto:` domain's MX, an `https:` URL), not counting
    /// those of a domain that reports to itself (its own MX is observed anyway).
    pub rua_checks: u64,
    /// Times a domain used a destination check another domain had made or was making.
    pub rua_checks_shared: u64,
}

impl ScanStats {
    /// The counts in `self` that happened after `earlier` was taken.
    pub fn since(&self, earlier: &Self) -> Self {
        Self {
            smtp_probes: self.smtp_probes - earlier.smtp_probes,
            smtp_probes_shared: self.smtp_probes_shared - earlier.smtp_probes_shared,
            smtp_attempts: self.smtp_attempts - earlier.smtp_attempts,
            policy_fetches: self.policy_fetches - earlier.policy_fetches,
            policy_fetches_shared: self.policy_fetches_shared - earlier.policy_fetches_shared,
            rua_checks: self.rua_checks - earlier.rua_checks,
            rua_checks_shared: self.rua_checks_shared - earlier.rua_checks_shared,
        }
    }
}

#[derive(Debug, Default)]
struct Counters {
    smtp_probes: AtomicU64,
    smtp_probes_shared: AtomicU64,
    smtp_attempts: AtomicU64,
    policy_fetches: AtomicU64,
    policy_fetches_shared: AtomicU64,
    rua_checks: AtomicU64,
    rua_checks_shared: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Scans domains. Share one scanner (behind an `Arc`) between all the domains of a run:
/// what it shares is described in the module documentation.
pub struct Scanner<R = Resolver> {
    resolver: R,
    config: ScanConfig,
    /// Keyed by (MX name, SNI, address).
    probes: Flights<(DomainName, DomainName, IpAddr), SmtpFacts>,
    policies: Flights<DomainName, PolicyFetchFacts>,
    addresses: Flights<DomainName, AddressLookups>,
    tlsa: Flights<DomainName, Lookup<Tlsa>>,
    /// TLS-RPT `mailto:` destinations by domain: the MX RRset and the observed hosts.
    rua_mail: Flights<DomainName, (Lookup<Mx>, Vec<MxHostFacts>)>,
    /// TLS-RPT `https:` destinations by URL.
    rua_https: Flights<String, PolicyFetchFacts>,
    gates: Arc<IpGates>,
    sharing: Sharing,
    counters: Counters,
    resolver_problem: std::sync::OnceLock<ResolverProblem>,
}

impl<R: fmt::Debug> fmt::Debug for Scanner<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scanner")
            .field("resolver", &self.resolver)
            .field("config", &self.config)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// The MX hosts of an MX RRset in preference order (RFC 5321 §5.1). "." names no host
/// (RFC 7505), whatever its preference. Equal preferences keep the DNS order: a sender would
/// randomise, a probe visits them all anyway. A host listed twice is kept once, at its best
/// preference.
pub fn mx_in_preference_order(records: &[Mx]) -> Vec<&Mx> {
    let mut sorted: Vec<&Mx> = records.iter().filter(|m| m.exchange != ".").collect();
    sorted.sort_by_key(|m| m.preference);
    let mut seen = std::collections::HashSet::new();
    sorted.retain(|m| seen.insert(m.exchange.as_str()));
    sorted
}

impl Scanner<Resolver> {
    /// A scanner with the hickory resolver built from `config.dns`.
    pub fn new(config: ScanConfig) -> Result<Self, DnsSetupError> {
        let resolver = Resolver::new(&config.dns)?;
        Ok(Self::with_resolver(resolver, config))
    }
}

impl<R> Scanner<R> {
    /// The configuration.
    pub fn config(&self) -> &ScanConfig {
        &self.config
    }

    /// What this scanner has done so far.
    pub fn stats(&self) -> ScanStats {
        let c = &self.counters;
        ScanStats {
            smtp_probes: c.smtp_probes.load(Ordering::Relaxed),
            smtp_probes_shared: c.smtp_probes_shared.load(Ordering::Relaxed),
            smtp_attempts: c.smtp_attempts.load(Ordering::Relaxed),
            policy_fetches: c.policy_fetches.load(Ordering::Relaxed),
            policy_fetches_shared: c.policy_fetches_shared.load(Ordering::Relaxed),
            rua_checks: c.rua_checks.load(Ordering::Relaxed),
            rua_checks_shared: c.rua_checks_shared.load(Ordering::Relaxed),
        }
    }
}

impl<R: Resolve> Scanner<R> {
    /// A scanner with another resolver (canned answers in tests).
    pub fn with_resolver(resolver: R, config: ScanConfig) -> Self {
        let cache = config.probe_cache;
        let gates = Arc::new(IpGates::new(&config.politeness));
        Self {
            resolver,
            probes: Flights::new(Keep::Cache {
                capacity: cache.capacity.max(1),
                ttl: cache.ttl,
            }),
            policies: Flights::new(Keep::InFlight),
            addresses: Flights::new(Keep::InFlight),
            tlsa: Flights::new(Keep::InFlight),
            rua_mail: Flights::new(Keep::Cache {
                capacity: cache.capacity.max(1),
                ttl: cache.ttl,
            }),
            rua_https: Flights::new(Keep::Cache {
                capacity: cache.capacity.max(1),
                ttl: cache.ttl,
            }),
            gates,
            sharing: Sharing::default(),
            counters: Counters::default(),
            resolver_problem: std::sync::OnceLock::new(),
            config,
        }
    }

    /// The same scanner sharing connection slots and probes with other scanners through
    /// `sharing` (the workers of a distributed scan, the modules of `mxprobe serve`). With
    /// shared slots, the rate ([`Politeness::per_ip_rate`]) is left to them: this scanner's
    /// own gates then bound only its own simultaneous connections.
    #[must_use]
    pub fn with_sharing(mut self, sharing: Sharing) -> Self {
        if sharing.slots.is_some() {
            self.gates = Arc::new(IpGates::new(&Politeness {
                per_ip_rate: None,
                ..self.config.politeness
            }));
        }
        self.sharing = sharing;
        self
    }

    /// Observes and evaluates one domain.
    pub async fn scan(&self, domain: &DomainName, now: OffsetDateTime) -> DomainResult {
        let facts = self.observe(domain, now).await;
        let verdict = self.evaluate(&facts, now);
        DomainResult::new(facts, verdict)
    }

    /// Judges facts (observed now or earlier) at time `now`.
    pub fn evaluate(&self, facts: &DomainFacts, now: OffsetDateTime) -> DomainVerdict {
        evaluate_domain(facts, &self.eval_options(now))
    }

    /// The evaluation options of this scanner's configuration, judging at `now`.
    pub fn eval_options(&self, now: OffsetDateTime) -> EvalOptions<'_> {
        EvalOptions {
            anchors: &self.config.anchors,
            now,
            content_type: self.config.content_type,
            expiry_warn_days: self.config.expiry_warn_days,
        }
    }

    /// Asks everything a sender would ask about `domain`, and, alongside the domain's own
    /// three lookups, whether the resolver can serve a validated chain at all (checked once
    /// per run and top-level domain): when it cannot, only those three lookups are made and
    /// recorded, with the problem.
    pub async fn observe(&self, domain: &DomainName, observed_at: OffsetDateTime) -> DomainFacts {
        let sts_name = domain.prefixed("_mta-sts");
        let tlsrpt_name = domain.prefixed("_smtp._tls");
        let (resolver_problem, mx, sts_txt, tlsrpt_txt) = futures::join!(
            self.resolver.resolver_problem(domain),
            self.resolver.mx(domain),
            self.resolver.txt(&sts_name),
            self.resolver.txt(&tlsrpt_name),
        );
        if let Some(problem) = &resolver_problem {
            let _ = self.resolver_problem.set(problem.clone());
        }
        let (policy_fetch, hosts, rua) = if resolver_problem.is_some() {
            (None, Vec::new(), Vec::new())
        } else {
            futures::join!(
                self.fetch_if_published(domain, &sts_txt),
                self.hosts(domain, &mx),
                self.observe_rua(Some(domain), &tlsrpt_txt),
            )
        };
        DomainFacts {
            domain: domain.clone(),
            observed_at,
            mx,
            sts_txt,
            tlsrpt_txt,
            policy_fetch,
            hosts,
            resolver_problem,
            rua,
        }
    }

    /// Observes every usable destination of the `_smtp._tls` record found in `tlsrpt_txt`
    /// (at most [`MAX_RUA_CHECKED`]), as a reporter would reach it: a `mailto:` domain's MX
    /// RRset and hosts (probed like any MX host, the probes shared), an `https:` URL by one
    /// `HEAD`. A destination in the policy domain itself is not observed again: its facts
    /// point at the domain's own MX (`own_domain`; `None` observes every destination in full,
    /// for `lint --live`). Each check is kept for the run and shared by every domain naming
    /// the same destination.
    pub async fn observe_rua(
        &self,
        own_domain: Option<&DomainName>,
        tlsrpt_txt: &Lookup<Txt>,
    ) -> Vec<RuaFacts> {
        let Some(records) = tlsrpt_txt.records() else {
            return Vec::new();
        };
        let records: Vec<String> = records.iter().map(Txt::joined).collect();
        let selection = select_tlsrpt(&records);
        let Some(record) = selection.record() else {
            return Vec::new();
        };
        let usable: Vec<Rua> = record.usable_rua().take(MAX_RUA_CHECKED).cloned().collect();
        join_all(
            usable
                .iter()
                .map(|rua| self.observe_one_rua(own_domain, rua)),
        )
        .await
    }

    async fn observe_one_rua(&self, own_domain: Option<&DomainName>, rua: &Rua) -> RuaFacts {
        match rua.kind() {
            RuaKind::Https { host } => {
                let url = rua.uri().to_owned();
                let (check, ran) = self
                    .rua_https
                    .get(url.clone(), || self.check_endpoint(host, &url))
                    .await;
                bump(if ran {
                    &self.counters.rua_checks
                } else {
                    &self.counters.rua_checks_shared
                });
                RuaFacts::Https(HttpsRuaFacts {
                    uri: url,
                    host: host.clone(),
                    check,
                })
            }
            _ => {
                let (address, rua_domain, size_limit) = rua
                    .mailbox()
                    .map(|(a, d, l)| (a.to_owned(), d.to_owned(), l))
                    .unwrap_or_default();
                let mut facts = MailtoRuaFacts {
                    uri: rua.uri().to_owned(),
                    address,
                    domain: rua_domain.clone(),
                    size_limit,
                    same_as_domain: false,
                    mx: None,
                    hosts: Vec::new(),
                };
                let Ok(name) = DomainName::parse(&rua_domain) else {
                    return RuaFacts::Mailto(facts);
                };
                if own_domain == Some(&name) {
                    facts.same_as_domain = true;
                    return RuaFacts::Mailto(facts);
                }
                let ((mx, hosts), ran) = self
                    .rua_mail
                    .get(name.clone(), || async {
                        let mx = self.resolver.mx(&name).await;
                        let hosts = self.hosts(&name, &mx).await;
                        (mx, hosts)
                    })
                    .await;
                bump(if ran {
                    &self.counters.rua_checks
                } else {
                    &self.counters.rua_checks_shared
                });
                facts.mx = Some(mx);
                facts.hosts = hosts;
                RuaFacts::Mailto(facts)
            }
        }
    }

    /// Resolves the host of an `https:` destination and sends one `HEAD`.
    async fn check_endpoint(&self, host: &str, url: &str) -> PolicyFetchFacts {
        // An address literal (`https://192.0.2.1/`, `https://[2001:db8::1]/`) needs no DNS.
        if let Ok(ip) = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
        {
            return check_report_endpoint(&self.config.fetch, host, url, &[ip]).await;
        }
        let Ok(name) = DomainName::parse(host) else {
            return check_report_endpoint(&self.config.fetch, host, url, &[]).await;
        };
        let lookups = self
            .addresses
            .get(name.clone(), || self.resolver.addresses(&name))
            .await
            .0;
        let addresses = lookups.addresses();
        let all: Vec<&Lookup<IpAddr>> = [&lookups.a, &lookups.aaaa].into_iter().flatten().collect();
        if addresses.is_empty() && !all.iter().all(|l| l.is_definite()) {
            let why: Vec<String> = all.iter().filter_map(|l| l.failure()).collect();
            return PolicyFetchFacts {
                url: url.to_owned(),
                attempts: vec![FetchAttempt {
                    address: None,
                    outcome: FetchOutcome::DnsError {
                        error: format!("the address lookup of {host} failed: {}", why.join("; ")),
                        not_found: false,
                    },
                }],
            };
        }
        check_report_endpoint(&self.config.fetch, host, url, &addresses).await
    }

    /// The first resolver problem this scanner met (see [`Resolve::resolver_problem`]): what
    /// to tell the user once, instead of blaming each domain.
    pub fn resolver_problem(&self) -> Option<&ResolverProblem> {
        self.resolver_problem.get()
    }

    /// RFC 8461 §3.3: the policy is fetched only when the TXT record set yields a record.
    async fn fetch_if_published(
        &self,
        domain: &DomainName,
        sts_txt: &Lookup<Txt>,
    ) -> Option<PolicyFetchFacts> {
        let records: Vec<String> = sts_txt.records()?.iter().map(Txt::joined).collect();
        select_sts(&records).record()?;
        let (facts, ran) = self
            .policies
            .get(domain.clone(), || self.fetch(domain))
            .await;
        if !ran {
            bump(&self.counters.policy_fetches_shared);
        }
        Some(facts)
    }

    /// Resolves the policy host and fetches the policy (one domain's fetch, not shared),
    /// whether or not an `_mta-sts` record is published: the CI gate asks before publishing.
    pub async fn fetch(&self, domain: &DomainName) -> PolicyFetchFacts {
        let host = policy_host(domain);
        let Ok(host_name) = DomainName::parse(&host) else {
            return dns_error(domain, format!("{host} is not a valid host name"));
        };
        let lookups = self.resolver.addresses(&host_name).await;
        let addresses = lookups.addresses();
        if addresses.is_empty() {
            let all: Vec<&Lookup<IpAddr>> =
                [&lookups.a, &lookups.aaaa].into_iter().flatten().collect();
            if all.iter().any(|l| matches!(l, Lookup::Timeout)) {
                return dns_timeout(domain);
            }
            let why: Vec<String> = all
                .iter()
                .map(|l| match l {
                    Lookup::NxDomain { .. } => "NXDOMAIN".to_owned(),
                    Lookup::NoData { .. } => "no address records".to_owned(),
                    other => other.failure().unwrap_or_default(),
                })
                .collect();
            // Could-not-tell is never "no policy host": only definite answers are.
            return if all.iter().all(|l| l.is_definite()) {
                not_found(domain, why.join("; "))
            } else {
                dns_error(domain, why.join("; "))
            };
        }
        bump(&self.counters.policy_fetches);
        fetch_policy(&self.config.fetch, domain, &addresses).await
    }

    /// The MX hosts in preference order (RFC 5321 §5.1), each observed.
    async fn hosts(&self, domain: &DomainName, mx: &Lookup<Mx>) -> Vec<MxHostFacts> {
        let targets: Vec<(String, u16, bool)> = match mx {
            Lookup::Records { records, .. } => mx_in_preference_order(records)
                .into_iter()
                .map(|m| (m.exchange.clone(), m.preference, false))
                .collect(),
            // No MX RRset: the domain itself, preference 0 (RFC 5321 §5.1). NXDOMAIN and
            // failures: nothing to probe (a temporary failure MUST NOT fall back to A).
            Lookup::NoData { .. } => vec![(domain.as_str().to_owned(), 0, true)],
            _ => Vec::new(),
        };
        join_all(
            targets
                .into_iter()
                .map(|(exchange, preference, implicit)| self.host(exchange, preference, implicit)),
        )
        .await
    }

    /// Observes one MX host as [`Scanner::observe`] does for each of a domain's MX hosts:
    /// addresses, TLSA when they are DNSSEC-secure, and one STARTTLS probe per address. The
    /// CI gate uses it for candidate MX hosts not yet in DNS.
    pub async fn observe_host(&self, exchange: &DomainName, preference: u16) -> MxHostFacts {
        self.host(exchange.to_string(), preference, false).await
    }

    async fn host(&self, exchange: String, preference: u16, implicit: bool) -> MxHostFacts {
        let name = DomainName::parse(&exchange).ok();
        let mut facts = MxHostFacts {
            exchange,
            name: name.clone(),
            preference,
            implicit,
            addresses: None,
            tlsa: None,
            tlsa_base: None,
            sessions: Vec::new(),
        };
        let Some(name) = name else { return facts };
        let (addresses, _) = self
            .addresses
            .get(name.clone(), || self.resolver.addresses(&name))
            .await;
        // RFC 7672 §2.2.2: TLSA is asked for only when the host's addresses are secure.
        // A family whose lookup failed leaves the status unknown, but must not switch DANE
        // off for the other: the answered families decide (the failure is reported).
        let answered: Vec<&Lookup<IpAddr>> = [&addresses.a, &addresses.aaaa]
            .into_iter()
            .flatten()
            .filter(|l| l.is_definite())
            .collect();
        let secure = !addresses.addresses().is_empty()
            && answered
                .iter()
                .all(|l| l.dnssec() == mxprobe_core::dns::DnssecStatus::Secure);
        // RFC 7672 §2.2.2: when the addresses came through a (secure) CNAME chain, the TLSA
        // base domain is the fully expanded name first; only when that has no TLSA records
        // (a definite denial) is the original name asked. A failed lookup decides: no
        // fallback.
        let expanded: Option<DomainName> = answered
            .iter()
            .find_map(|l| match l {
                Lookup::Records { cname_chain, .. } => cname_chain.last(),
                _ => None,
            })
            .and_then(|target| DomainName::parse(target).ok())
            .filter(|target| *target != name);
        let tlsa = async {
            if !secure {
                return (None, None);
            }
            if let Some(target) = &expanded {
                let (at_target, _) = self
                    .tlsa
                    .get(target.clone(), || self.resolver.tlsa(target, SMTP_PORT))
                    .await;
                if !matches!(at_target, Lookup::NoData { .. } | Lookup::NxDomain { .. }) {
                    return (Some(at_target), Some(target.clone()));
                }
            }
            let (tlsa, _) = self
                .tlsa
                .get(name.clone(), || self.resolver.tlsa(&name, SMTP_PORT))
                .await;
            (Some(tlsa), None)
        };
        let ips = addresses.addresses();
        let ((tlsa, tlsa_base), sessions) = if secure && expanded.is_some() {
            // RFC 7672 §8.1: the SNI is the TLSA base domain, known once TLSA is answered.
            let (tlsa, base) = tlsa.await;
            let sni = base.clone().unwrap_or_else(|| name.clone());
            let sessions = self.probe_addresses(&name, &sni, &ips).await;
            ((tlsa, base), sessions)
        } else {
            futures::join!(tlsa, self.probe_addresses(&name, &name, &ips))
        };
        facts.addresses = Some(addresses);
        facts.tlsa = tlsa;
        facts.tlsa_base = tlsa_base;
        facts.sessions = sessions;
        facts
    }

    /// One STARTTLS probe of `mx` per address, sending `sni`.
    async fn probe_addresses(
        &self,
        mx: &DomainName,
        sni: &DomainName,
        ips: &[IpAddr],
    ) -> Vec<SmtpFacts> {
        if self.config.no_smtp {
            // Recorded, not silently skipped: each address is "not tested", which the
            // evaluation reports as inconclusive, never as a STARTTLS failure.
            return ips
                .iter()
                .map(|ip| {
                    SmtpFacts::new(
                        mx.clone(),
                        SocketAddr::new(*ip, self.smtp_port(*ip)),
                        SmtpOutcome::NotTested {
                            reason: "SMTP probing is switched off (--no-smtp)".to_owned(),
                        },
                    )
                })
                .collect();
        }
        join_all(ips.iter().map(|ip| self.shared_probe(mx, sni, *ip))).await
    }

    /// The SMTP port to connect to at `ip`.
    fn smtp_port(&self, ip: IpAddr) -> u16 {
        self.config
            .smtp_ports
            .get(&ip)
            .copied()
            .unwrap_or(self.config.default_smtp_port)
    }

    /// The probe of `mx` at `ip` with `sni`: made once and shared by every domain that uses
    /// this MX host at this address (the certificate does not depend on the recipient domain;
    /// SNI is the MX name, RFC 8461 §4.1, or the TLSA base domain, RFC 7672 §8.1).
    async fn shared_probe(&self, mx: &DomainName, sni: &DomainName, ip: IpAddr) -> SmtpFacts {
        let (facts, ran) = self
            .probes
            .get((mx.clone(), sni.clone(), ip), || async {
                match &self.sharing.probes {
                    None => self.polite_probe(mx, sni, ip).await,
                    Some(exchange) => {
                        let key = ProbeKey {
                            mx: mx.clone(),
                            sni: sni.clone(),
                            ip,
                            port: self.smtp_port(ip),
                        };
                        let (facts, ran) = exchange
                            .probe(&key, Box::pin(self.polite_probe(mx, sni, ip)))
                            .await;
                        if !ran {
                            bump(&self.counters.smtp_probes_shared);
                        }
                        facts
                    }
                }
            })
            .await;
        if !ran {
            bump(&self.counters.smtp_probes_shared);
        }
        facts
    }

    /// One probe of `mx` at `ip` within the per-address limits, retried with back-off while
    /// the server looks busy and the probe deadline leaves time.
    async fn polite_probe(&self, mx: &DomainName, sni: &DomainName, ip: IpAddr) -> SmtpFacts {
        bump(&self.counters.smtp_probes);
        let addr = SocketAddr::new(ip, self.smtp_port(ip));
        let budget = self.config.smtp.deadline;
        let backoff = self.config.politeness.backoff;
        let mut started: Option<Instant> = None;
        let mut attempt: u32 = 1;
        let mut earlier: Vec<SmtpOutcome> = Vec::new();
        loop {
            let pass = self.gates.enter(ip).await;
            let shared_slot = match &self.sharing.slots {
                Some(slots) => Some(slots.acquire(ip).await),
                None => None,
            };
            // The deadline runs from the first connection, not from the wait for a slot.
            let first = *started.get_or_insert_with(Instant::now);
            let mut facts = if attempt == 1 {
                probe_with_sni(&self.config.smtp, mx, sni, addr).await
            } else {
                let mut config = self.config.smtp.clone();
                config.deadline = budget.saturating_sub(first.elapsed());
                probe_with_sni(&config, mx, sni, addr).await
            };
            bump(&self.counters.smtp_attempts);
            facts.attempts = attempt;
            drop(shared_slot);
            drop(pass);
            if !busy(&facts.outcome) || attempt >= backoff.max_attempts {
                facts.earlier_outcomes = earlier;
                return facts;
            }
            let delay = backoff.delay(attempt, random());
            // A retry needs time to be worth making: at least a quarter of the deadline.
            if first.elapsed() + delay + budget / 4 > budget {
                facts.earlier_outcomes = earlier;
                return facts;
            }
            earlier.push(facts.outcome);
            sleep(delay).await;
            attempt += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mx_order_drops_the_root_sorts_stably_and_keeps_each_host_once() {
        let mx = |preference, exchange: &str| Mx {
            preference,
            exchange: exchange.to_owned(),
        };
        let records = [
            mx(20, "b.example"),
            mx(0, "."),
            mx(10, "c.example"),
            mx(20, "a.example"),
            mx(5, "b.example"),
        ];
        let got: Vec<(u16, &str)> = mx_in_preference_order(&records)
            .into_iter()
            .map(|m| (m.preference, m.exchange.as_str()))
            .collect();
        assert_eq!(
            got,
            [(5, "b.example"), (10, "c.example"), (20, "a.example")]
        );
        assert!(mx_in_preference_order(&[mx(0, ".")]).is_empty());
    }

    #[test]
    fn backoff_doubles_up_to_its_maximum() {
        let b = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_millis(500),
            max_attempts: 10,
        };
        let cases = [
            (0, 100),
            (1, 100),
            (2, 200),
            (3, 400),
            (4, 500),
            (40, 500),
            (u32::MAX, 500),
        ];
        for (attempt, ms) in cases {
            assert_eq!(
                b.ceiling(attempt),
                Duration::from_millis(ms),
                "attempt {attempt}"
            );
        }
    }

    #[test]
    fn backoff_jitter_stays_between_half_and_all() {
        let b = Backoff::default();
        for attempt in 1..8 {
            let ceiling = b.ceiling(attempt);
            for random in [0, 1, 12345, u64::MAX / 3, u64::MAX] {
                let d = b.delay(attempt, random);
                assert!(
                    d >= ceiling / 2 && d <= ceiling,
                    "{attempt} {random}: {d:?}"
                );
            }
        }
        assert_eq!(b.delay(1, 0), Duration::from_millis(500));
        let zero = Backoff {
            initial: Duration::ZERO,
            ..b
        };
        assert_eq!(zero.delay(3, u64::MAX), Duration::ZERO);
    }

    #[test]
    fn busy_outcomes_are_the_retryable_ones() {
        let cases = [
            (SmtpOutcome::ConnectionRefused, true),
            (
                SmtpOutcome::ServiceUnavailable421 {
                    phase: Phase::Ehlo,
                    text: "busy".into(),
                },
                true,
            ),
            (
                SmtpOutcome::ConnectionReset {
                    phase: Phase::Greeting,
                },
                true,
            ),
            (
                SmtpOutcome::ClosedByServer {
                    phase: Phase::Greeting,
                },
                true,
            ),
            (
                SmtpOutcome::ConnectionReset {
                    phase: Phase::TlsHandshake,
                },
                true,
            ),
            (
                SmtpOutcome::ClosedByServer {
                    phase: Phase::TlsHandshake,
                },
                true,
            ),
            (
                SmtpOutcome::TlsHandshakeFailed {
                    alert: Some("HandshakeFailure".into()),
                    error: "alert".into(),
                },
                true,
            ),
            (
                SmtpOutcome::TlsHandshakeFailed {
                    alert: None,
                    error: "received corrupt message".into(),
                },
                false,
            ),
            (
                SmtpOutcome::ConnectionReset {
                    phase: Phase::EhloAfterTls,
                },
                false,
            ),
            (
                SmtpOutcome::Timeout {
                    phase: Phase::Greeting,
                },
                false,
            ),
            (SmtpOutcome::ConnectTimeout, false),
            (SmtpOutcome::StarttlsNotOffered, false),
            (SmtpOutcome::Completed, false),
        ];
        for (outcome, expected) in cases {
            assert_eq!(busy(&outcome), expected, "{outcome:?}");
        }
    }

    #[test]
    fn rates_become_bounded_intervals() {
        let with_rate = |rate| {
            IpGates::new(&Politeness {
                per_ip_rate: rate,
                ..Politeness::default()
            })
            .interval
        };
        assert_eq!(with_rate(None), None);
        assert_eq!(with_rate(Some(4.0)), Some(Duration::from_millis(250)));
        assert_eq!(with_rate(Some(0.0)), None);
        assert_eq!(with_rate(Some(-1.0)), None);
        assert_eq!(with_rate(Some(f64::NAN)), None);
        assert_eq!(with_rate(Some(f64::INFINITY)), None);
        assert_eq!(with_rate(Some(1e-300)), Some(MAX_INTERVAL));
    }

    #[tokio::test]
    async fn flights_share_in_flight_and_forget_after() {
        let flights: Flights<u8, u32> = Flights::new(Keep::InFlight);
        let runs = AtomicU64::new(0);
        let compute = || async {
            runs.fetch_add(1, Ordering::SeqCst);
            sleep(Duration::from_millis(20)).await;
            7
        };
        let (a, b) = futures::join!(flights.get(1, compute), flights.get(1, compute));
        assert_eq!((a.0, b.0), (7, 7));
        assert!(a.1 ^ b.1, "exactly one of the two computed: {a:?} {b:?}");
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert!(flights.slots.lock().expect("lock").current.is_empty());
        let (_, ran) = flights.get(1, compute).await;
        assert!(ran, "nothing is kept once nobody waits");
        assert_eq!(runs.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn cancelled_computation_is_taken_over_or_dropped() {
        let flights: Flights<u8, u32> = Flights::new(Keep::Cache {
            capacity: 8,
            ttl: Duration::from_secs(60),
        });
        let slow = || async {
            sleep(Duration::from_secs(60)).await;
            1
        };
        // The only caller gives up: the unfinished entry goes.
        let gave_up = tokio::time::timeout(Duration::from_millis(10), flights.get(1, slow)).await;
        assert!(gave_up.is_err());
        assert!(flights.slots.lock().expect("lock").current.is_empty());
        // A finished value is kept and shared.
        assert_eq!(flights.get(2, || async { 5 }).await, (5, true));
        assert_eq!(flights.get(2, || async { 6 }).await, (5, false));
    }

    #[tokio::test]
    async fn cache_keeps_two_generations_and_promotes_hits() {
        let flights: Flights<u8, u8> = Flights::new(Keep::Cache {
            capacity: 2,
            ttl: Duration::from_secs(60),
        });
        for k in [1, 2] {
            assert_eq!(flights.get(k, || async move { k }).await, (k, true));
        }
        // 3 rolls {1, 2} into the previous generation; 1 is promoted back.
        assert_eq!(flights.get(3, || async { 3 }).await, (3, true));
        assert_eq!(flights.get(1, || async { 0 }).await, (1, false));
        // 4 rolls {3, 1} over and drops 2.
        assert_eq!(flights.get(4, || async { 4 }).await, (4, true));
        assert_eq!(flights.get(2, || async { 0 }).await, (0, true));
        assert_eq!(flights.get(1, || async { 0 }).await, (1, false));
    }

    #[tokio::test]
    async fn cache_entries_expire_after_their_ttl() {
        let long: Flights<u8, u8> = Flights::new(Keep::Cache {
            capacity: 8,
            ttl: Duration::from_secs(3600),
        });
        assert_eq!(long.get(1, || async { 1 }).await, (1, true));
        assert_eq!(long.get(1, || async { 2 }).await, (1, false));
        let short: Flights<u8, u8> = Flights::new(Keep::Cache {
            capacity: 8,
            ttl: Duration::from_millis(1),
        });
        assert_eq!(short.get(1, || async { 1 }).await, (1, true));
        sleep(Duration::from_millis(5)).await;
        assert_eq!(short.get(1, || async { 3 }).await, (3, true));
    }

    #[tokio::test]
    async fn gates_limit_and_forget_idle_addresses() {
        let gates = Arc::new(IpGates::new(&Politeness {
            per_ip: 2,
            ..Politeness::default()
        }));
        let ip: IpAddr = "192.0.2.1".parse().expect("valid");
        let a = gates.enter(ip).await;
        let b = gates.enter(ip).await;
        let third = tokio::time::timeout(Duration::from_millis(20), gates.enter(ip)).await;
        assert!(third.is_err(), "a third connection waits");
        drop(a);
        let c = tokio::time::timeout(Duration::from_secs(5), gates.enter(ip))
            .await
            .expect("a slot was freed");
        drop((b, c));
        assert!(gates.gates.lock().expect("lock").is_empty());
    }

    #[tokio::test]
    async fn gates_space_new_connections_by_the_rate() {
        let gates = Arc::new(IpGates::new(&Politeness {
            per_ip: 8,
            per_ip_rate: Some(20.0),
            ..Politeness::default()
        }));
        let ip: IpAddr = "192.0.2.1".parse().expect("valid");
        let t0 = Instant::now();
        let mut held = Vec::new();
        for n in 0..3u32 {
            held.push(gates.enter(ip).await);
            // Lower bounds only: a timer never fires early, it may fire late.
            assert!(
                t0.elapsed() >= Duration::from_millis(50) * n,
                "connection {n}"
            );
        }
    }
}
