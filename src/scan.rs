//! The scan of one domain: observe (DNS, policy fetch, one STARTTLS probe per MX address),
//! then evaluate.
//!
//! [`Scanner::observe`] asks the questions a sender asks, in the order a sender asks them,
//! and records the answers as [`DomainFacts`]; [`Scanner::evaluate`] judges them
//! ([`crate::evaluate::domain`]). The network is reached only through the three observe
//! adapters: the resolver ([`Resolve`]), the policy fetcher ([`crate::fetch`]) and the SMTP
//! probe ([`crate::smtp::probe`]). Nothing here is lab-only: the lab differs from the real
//! network only by the resolver address, the trust anchors and the port maps.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use futures::future::join_all;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::dns::hickory::{DnsConfig, DnsSetupError, Resolver};
use crate::dns::{Lookup, Mx, Resolve, Txt};
use crate::domain::DomainName;
use crate::evaluate::domain::{DomainVerdict, EvalOptions, evaluate_domain};
use crate::evaluate::policy_fetch::ContentTypeRule;
use crate::facts::{DomainFacts, MxHostFacts, PolicyFetchFacts};
use crate::fetch::{FetchConfig, dns_error, dns_timeout, fetch_policy, policy_host};
use crate::mtasts::select_sts;
use crate::smtp::{SmtpConfig, probe};
use crate::tls::Anchors;

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
}

/// What a scan of one domain produced: the facts and the verdict on them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainReport {
    /// What was seen.
    pub facts: DomainFacts,
    /// What it means.
    pub verdict: DomainVerdict,
}

/// Scans domains.
#[derive(Debug)]
pub struct Scanner<R = Resolver> {
    resolver: R,
    config: ScanConfig,
}

impl Scanner<Resolver> {
    /// A scanner with the hickory resolver built from `config.dns`.
    pub fn new(config: ScanConfig) -> Result<Self, DnsSetupError> {
        let resolver = Resolver::new(&config.dns)?;
        Ok(Self { resolver, config })
    }
}

impl<R: Resolve> Scanner<R> {
    /// A scanner with another resolver (canned answers in tests).
    pub fn with_resolver(resolver: R, config: ScanConfig) -> Self {
        Self { resolver, config }
    }

    /// The configuration.
    pub fn config(&self) -> &ScanConfig {
        &self.config
    }

    /// Observes and evaluates one domain.
    pub async fn scan(&self, domain: &DomainName, now: OffsetDateTime) -> DomainReport {
        let facts = self.observe(domain, now).await;
        let verdict = self.evaluate(&facts, now);
        DomainReport { facts, verdict }
    }

    /// Judges facts (observed now or earlier) at time `now`.
    pub fn evaluate(&self, facts: &DomainFacts, now: OffsetDateTime) -> DomainVerdict {
        evaluate_domain(
            facts,
            &EvalOptions {
                anchors: &self.config.anchors,
                now,
                content_type: self.config.content_type,
                expiry_warn_days: self.config.expiry_warn_days,
            },
        )
    }

    /// Asks everything a sender would ask about `domain`.
    pub async fn observe(&self, domain: &DomainName, observed_at: OffsetDateTime) -> DomainFacts {
        let sts_name = domain.prefixed("_mta-sts");
        let tlsrpt_name = domain.prefixed("_smtp._tls");
        let (mx, sts_txt, tlsrpt_txt) = futures::join!(
            self.resolver.mx(domain),
            self.resolver.txt(&sts_name),
            self.resolver.txt(&tlsrpt_name),
        );
        let (policy_fetch, hosts) = futures::join!(
            self.fetch_if_published(domain, &sts_txt),
            self.hosts(domain, &mx),
        );
        DomainFacts {
            domain: domain.clone(),
            observed_at,
            mx,
            sts_txt,
            tlsrpt_txt,
            policy_fetch,
            hosts,
        }
    }

    /// RFC 8461 §3.3: the policy is fetched only when the TXT record set yields a record.
    async fn fetch_if_published(
        &self,
        domain: &DomainName,
        sts_txt: &Lookup<Txt>,
    ) -> Option<PolicyFetchFacts> {
        let records: Vec<String> = sts_txt.records()?.iter().map(Txt::joined).collect();
        select_sts(&records).record()?;
        let host = policy_host(domain);
        let Ok(host_name) = DomainName::parse(&host) else {
            return Some(dns_error(
                domain,
                format!("{host} is not a valid host name"),
            ));
        };
        let lookups = self.resolver.addresses(&host_name).await;
        let addresses = lookups.addresses();
        if addresses.is_empty() {
            let all: Vec<&Lookup<IpAddr>> =
                [&lookups.a, &lookups.aaaa].into_iter().flatten().collect();
            if all.iter().any(|l| matches!(l, Lookup::Timeout)) {
                return Some(dns_timeout(domain));
            }
            let why: Vec<String> = all
                .iter()
                .map(|l| match l {
                    Lookup::NxDomain { .. } => "NXDOMAIN".to_owned(),
                    Lookup::NoData { .. } => "no address records".to_owned(),
                    other => other.failure().unwrap_or_default(),
                })
                .collect();
            return Some(dns_error(domain, why.join("; ")));
        }
        Some(fetch_policy(&self.config.fetch, domain, &addresses).await)
    }

    /// The MX hosts in preference order (RFC 5321 §5.1), each observed.
    async fn hosts(&self, domain: &DomainName, mx: &Lookup<Mx>) -> Vec<MxHostFacts> {
        let targets: Vec<(String, u16, bool)> = match mx {
            Lookup::Records { records, .. } => {
                let mut sorted: Vec<&Mx> = records.iter().filter(|m| !m.is_null()).collect();
                // Equal preferences keep the DNS order: a sender would randomise, a probe
                // visits them all anyway.
                sorted.sort_by_key(|m| m.preference);
                sorted
                    .into_iter()
                    .map(|m| (m.exchange.clone(), m.preference, false))
                    .collect()
            }
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

    async fn host(&self, exchange: String, preference: u16, implicit: bool) -> MxHostFacts {
        let name = DomainName::parse(&exchange).ok();
        let mut facts = MxHostFacts {
            exchange,
            name: name.clone(),
            preference,
            implicit,
            addresses: None,
            tlsa: None,
            sessions: Vec::new(),
        };
        let Some(name) = name else { return facts };
        let addresses = self.resolver.addresses(&name).await;
        // RFC 7672 §2.2.2: TLSA is asked for only when the host's addresses are secure.
        let secure = addresses.dnssec() == crate::dns::DnssecStatus::Secure
            && !addresses.addresses().is_empty();
        let tlsa = async {
            if secure {
                Some(self.resolver.tlsa(&name, SMTP_PORT).await)
            } else {
                None
            }
        };
        let ips = addresses.addresses();
        let probes = async {
            if self.config.no_smtp {
                return Vec::new();
            }
            join_all(ips.iter().map(|ip| {
                let port = self
                    .config
                    .smtp_ports
                    .get(ip)
                    .copied()
                    .unwrap_or(self.config.default_smtp_port);
                probe(&self.config.smtp, &name, SocketAddr::new(*ip, port))
            }))
            .await
        };
        let (tlsa, sessions) = futures::join!(tlsa, probes);
        facts.addresses = Some(addresses);
        facts.tlsa = tlsa;
        facts.sessions = sessions;
        facts
    }
}
