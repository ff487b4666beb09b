//! The lab runner: turns a [`Scenario`] into running servers on loopback and hands back
//! everything a scan of the lab needs.
//!
//! [`Lab::start`] makes the lab PKI (a root, an intermediate under it, and an unrelated
//! "unknown" root), one certificate per host and policy host with validity windows fixed
//! relative to the lab clock it is given, the lab DNS (one signed zone per lab TLD, plus a
//! zone of its own for every host or domain whose DNSSEC state differs, and the scenario's
//! broken resolvers serving the same zones on ports of their own), one SMTP server per MX host
//! address (each IPv4 host on its own 127.0.0.x, the IPv6 host on ::1, all on one port, so
//! that `--smtp-port` reaches every lab MX host as port 25 reaches real ones) and one HTTPS server
//! for every policy host (by SNI, on 127.0.0.1). [`RunningLab`] holds them all; dropping it
//! stops everything. The lab listens on loopback only, on ports the system chooses, and
//! never reads the clock: the caller passes `now`.
//!
//! A running lab can be changed between two scans without a restart, so that everything
//! else stays exactly as it was (ports, PKI, DNS keys and records):
//! [`RunningLab::replace_certificate`] makes an MX host present a certificate of another
//! profile, and [`RunningLab::set_policy`] makes a domain's policy host serve another body.
//! Connections opened afterwards see the change; [`RunningLab::scenario`] still describes the
//! lab as it started.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration as StdDuration;

use bytes::Bytes;
use rustls_pki_types::CertificateDer;
use time::{Duration, OffsetDateTime};

use crate::dns::{BrokenResolver, LabDns, LabDnsError, LabRecord, RunningDns, Signing};
use crate::https::{
    HostBehaviour, HttpsLabError, PolicyBody, PolicyHost, PolicyResponse, PolicyServer,
    RunningHttps,
};
use crate::scenario::{
    CertProfile, DomainDnssec, DomainSpec, Expectation, FIRST_HOST_OCTET, HostDnssec, HostSpec,
    ResolverBehaviour, Scenario, SmtpBehaviour, TlsaProfile,
};
use crate::smtp::{
    EhloAnswer, Greeting, LabSmtpError, RunningSmtp, SmtpServer, StartTls, tls_config,
};
use mxprobe_core::dns::{DANE_EE, DANE_TA, MATCH_SHA256, SELECTOR_SPKI, Tlsa};
use mxprobe_core::domain::DomainName;
use mxprobe_core::evaluate::policy_fetch::ContentTypeRule;
use mxprobe_core::result::DomainResult;
use mxprobe_core::smtp::EhloName;
use mxprobe_core::tls::Anchors;
use mxprobe_core::tls::anchors::AnchorError;
use mxprobe_probe::capture;
use mxprobe_probe::fetch::{FetchConfig, FetchTimeouts};
use mxprobe_probe::scan::{SMTP_PORT, ScanConfig};
use mxprobe_probe::starttls::SmtpConfig;
use mxprobe_testpki::{
    CertAuthority, Issued, KeyKind, LeafSpec, PkiError, Validity, self_signed_leaf,
};

/// The name the lab's scanner sends with EHLO.
pub const LAB_EHLO_NAME: &str = "probe.mxprobe.test";

/// Where the policy server listens (every policy host resolves here).
const POLICY_IP: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// The name a `wrong-name` certificate is issued for.
const WRONG_NAME: &str = "wrong-name.invalid";

/// How long the lab's CAs are valid around the lab clock.
const CA_BEFORE: Duration = Duration::days(5 * 365);
const CA_AFTER: Duration = Duration::days(10 * 365);

/// The pause between the bytes of a dripping server.
const DRIP_INTERVAL: StdDuration = StdDuration::from_millis(200);

/// The size of an oversized policy response: well over the 64 KiB cap (RFC 8461 §3.3).
const OVERSIZED_CHUNKS: u64 = 96;
const OVERSIZED_CHUNK: usize = 1024;

/// Why the lab could not start, or could not make a change.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LabError {
    /// A certificate could not be made.
    #[error("cannot make the lab certificate for {name}: {source}")]
    Pki {
        /// The host (or CA) the certificate is for.
        name: String,
        /// The factory's error.
        #[source]
        source: PkiError,
    },
    /// The lab root certificate could not be used as a trust anchor.
    #[error("cannot use the lab root CA as a trust anchor: {0}")]
    Anchor(#[from] AnchorError),
    /// The DNS zones could not be built or served.
    #[error("cannot start the lab DNS: {0}")]
    Dns(#[from] LabDnsError),
    /// An SMTP server could not start.
    #[error("cannot start the lab SMTP server of {host} on {ip}: {source}")]
    Smtp {
        /// The MX host.
        host: String,
        /// The address.
        ip: IpAddr,
        /// The server's error.
        #[source]
        source: LabSmtpError,
    },
    /// The policy server could not start.
    #[error("cannot start the lab policy server: {0}")]
    Https(#[from] HttpsLabError),
    /// `mta-sts.<domain>` is not a host name (the domain is too long to prefix).
    #[error("the policy host {host} is not a valid host name: {reason}")]
    PolicyHostName {
        /// The policy host.
        host: String,
        /// Why.
        reason: String,
    },
    /// A certificate change named a host the lab runs no SMTP server for.
    #[error(
        "the lab runs no SMTP server for {host}; name an MX host of the scenario that has an address"
    )]
    NoSmtpServer {
        /// The host asked for.
        host: String,
    },
    /// A certificate change named a host with a server that has no STARTTLS certificate:
    /// STARTTLS not offered, refused, or followed by garbage or a reset instead of TLS.
    #[error(
        "the lab SMTP server of {host} at {ip} answers STARTTLS without TLS, so it has no certificate to replace; name a host whose STARTTLS leads to a TLS handshake"
    )]
    NoStartTls {
        /// The host asked for.
        host: String,
        /// The address of the server without a certificate.
        ip: IpAddr,
    },
    /// The new certificate could not be made into a TLS server configuration.
    #[error("cannot serve the new certificate of {host}: {source}")]
    CertificateChange {
        /// The host.
        host: String,
        /// The server's error.
        #[source]
        source: LabSmtpError,
    },
    /// A policy change named a domain the lab serves no policy host for.
    #[error(
        "the lab serves no policy host for {domain}; name a scenario domain with a [domain.policy] table"
    )]
    NoPolicyHost {
        /// The domain asked for.
        domain: String,
    },
    /// The policy server refused the new response.
    #[error("cannot change the policy of {domain}: {source}")]
    PolicyChange {
        /// The domain.
        domain: String,
        /// The policy server's error.
        #[source]
        source: HttpsLabError,
    },
}

/// Counters of everything the lab served since it started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LabCounters {
    /// DNS queries received.
    pub dns_queries: u64,
    /// SMTP connections accepted, all servers together.
    pub smtp_connections: usize,
    /// HTTP requests received by the policy server.
    pub policy_requests: u64,
}

/// Starts labs.
#[derive(Debug, Clone, Copy)]
pub struct Lab;

/// The lab's certificate authorities.
struct Pki {
    intermediate: CertAuthority,
    root_pem: String,
    unknown: CertAuthority,
    now: OffsetDateTime,
}

/// A chain to present and its key.
struct Presented {
    chain: Vec<CertificateDer<'static>>,
    leaf: Issued,
}

impl Pki {
    fn new(now: OffsetDateTime) -> Result<Self, LabError> {
        let window = Validity::new(now - CA_BEFORE, now + CA_AFTER);
        let ca = |name: &str, r: Result<CertAuthority, PkiError>| {
            r.map_err(|source| LabError::Pki {
                name: name.to_owned(),
                source,
            })
        };
        let root = ca(
            "the lab root CA",
            CertAuthority::root("mxprobe lab root CA", window, KeyKind::EcdsaP256),
        )?;
        let intermediate = ca(
            "the lab intermediate CA",
            root.intermediate("mxprobe lab intermediate CA", window, KeyKind::EcdsaP256),
        )?;
        let unknown = ca(
            "the unknown CA",
            CertAuthority::root("mxprobe lab unknown CA", window, KeyKind::EcdsaP256),
        )?;
        Ok(Self {
            intermediate,
            root_pem: root.cert().pem().to_owned(),
            unknown,
            now,
        })
    }

    /// The chain a server of `name` presents under `profile`.
    fn present(&self, name: &DomainName, profile: CertProfile) -> Result<Presented, LabError> {
        let now = self.now;
        let current = Validity::new(now - Duration::days(30), now + Duration::days(365));
        let host = name.as_str().to_owned();
        let wildcard = name
            .parent()
            .map_or_else(|| host.clone(), |p| format!("*.{p}"));
        let (dns_name, validity) = match profile {
            CertProfile::Expired => (
                host.clone(),
                Validity::new(now - Duration::days(400), now - Duration::days(10)),
            ),
            CertProfile::NotYetValid => (
                host.clone(),
                Validity::new(now + Duration::days(10), now + Duration::days(400)),
            ),
            CertProfile::ExpiringSoon => (
                host.clone(),
                Validity::new(now - Duration::days(80), now + Duration::days(5)),
            ),
            CertProfile::WrongName => (WRONG_NAME.to_owned(), current),
            CertProfile::Wildcard => (wildcard, current),
            CertProfile::Valid
            | CertProfile::SelfSigned
            | CertProfile::UnknownCa
            | CertProfile::MissingIntermediate => (host.clone(), current),
        };
        let spec = LeafSpec::new(&[dns_name.as_str()], validity);
        let made = |r: Result<Issued, PkiError>| {
            r.map_err(|source| LabError::Pki {
                name: host.clone(),
                source,
            })
        };
        Ok(match profile {
            CertProfile::SelfSigned => {
                let leaf = made(self_signed_leaf(&spec))?;
                Presented {
                    chain: vec![leaf.der().clone()],
                    leaf,
                }
            }
            CertProfile::UnknownCa => {
                let leaf = made(self.unknown.leaf(&spec))?;
                Presented {
                    chain: self.unknown.chain_for(&leaf),
                    leaf,
                }
            }
            CertProfile::MissingIntermediate => {
                let leaf = made(self.intermediate.leaf(&spec))?;
                Presented {
                    chain: vec![leaf.der().clone()],
                    leaf,
                }
            }
            _ => {
                let leaf = made(self.intermediate.leaf(&spec))?;
                Presented {
                    chain: self.intermediate.chain_for(&leaf),
                    leaf,
                }
            }
        })
    }

    /// The TLSA record `profile` describes for a server presenting `leaf`.
    fn tlsa(&self, profile: TlsaProfile, leaf: &CertificateDer<'_>) -> Tlsa {
        let record = |usage, data| Tlsa {
            usage,
            selector: SELECTOR_SPKI,
            matching_type: MATCH_SHA256,
            data,
        };
        match profile {
            TlsaProfile::DaneEe => record(DANE_EE, spki_sha256(leaf)),
            TlsaProfile::DaneEeWrong => record(DANE_EE, spki_sha256(self.unknown.cert().der())),
            TlsaProfile::DaneTa => record(DANE_TA, spki_sha256(self.intermediate.cert().der())),
            // RFC 7672 §3.1.3: PKIX-EE(1) is not for SMTP.
            TlsaProfile::PkixOnly => record(1, spki_sha256(leaf)),
            TlsaProfile::BadDigestLength => {
                let mut short = spki_sha256(leaf);
                short.truncate(20);
                record(DANE_EE, short)
            }
        }
    }
}

/// SHA-256 of a certificate's SubjectPublicKeyInfo (selector 1, matching type 1). The lab
/// made the certificate itself, so it always parses; an unparsable one would give a digest
/// of nothing, which matches no server.
fn spki_sha256(der: &CertificateDer<'_>) -> Vec<u8> {
    let spki: &[u8] = match x509_parser::parse_x509_certificate(der.as_ref()) {
        Ok((_, cert)) => cert.tbs_certificate.subject_pki.raw,
        Err(_) => &[],
    };
    ring::digest::digest(&ring::digest::SHA256, spki)
        .as_ref()
        .to_vec()
}

/// The SMTP server of `host` presenting `presented`.
fn smtp_server(host: &HostSpec, presented: &Presented) -> Result<SmtpServer, LabSmtpError> {
    let name = host.name.as_str();
    let mut server =
        SmtpServer::with_tls(name, presented.chain.clone(), presented.leaf.private_key())?;
    match host.smtp {
        SmtpBehaviour::Starttls => {}
        SmtpBehaviour::NoStarttls => server.starttls = StartTls::NotOffered,
        SmtpBehaviour::Starttls454 => {
            server.starttls = StartTls::Refuse {
                code: 454,
                text: "4.7.0 TLS not available due to temporary reason".to_owned(),
            };
        }
        SmtpBehaviour::EhloRejected => {
            server.ehlo = EhloAnswer::Reject {
                code: 502,
                text: "5.5.1 EHLO not implemented".to_owned(),
            };
        }
        SmtpBehaviour::Greeting421 => {
            server.greeting =
                Greeting::ServiceUnavailable(format!("4.7.0 {name} too many connections"));
        }
        SmtpBehaviour::Silent => server.greeting = Greeting::Silent,
        SmtpBehaviour::Drip => {
            server.greeting = Greeting::Drip {
                interval: DRIP_INTERVAL,
            };
        }
        SmtpBehaviour::GarbageAfterStarttls => server.starttls = StartTls::GarbageAfter220,
        SmtpBehaviour::ResetAfterStarttls => server.starttls = StartTls::ResetAfter220,
        SmtpBehaviour::CloseAfterStarttls => server.starttls = StartTls::CloseAfter220,
        SmtpBehaviour::OversizedEhlo => server.ehlo = EhloAnswer::Oversized,
    }
    Ok(server)
}

/// What the policy host of `domain` answers.
fn policy_response(domain: &DomainSpec, latency: StdDuration) -> Option<PolicyResponse> {
    let spec = domain.policy.as_ref()?;
    let body = if spec.oversized {
        PolicyBody::Chunked {
            chunk: Bytes::from(vec![b'x'; OVERSIZED_CHUNK]),
            count: Some(OVERSIZED_CHUNKS),
        }
    } else {
        PolicyBody::Full(Bytes::copy_from_slice(spec.body.as_bytes()))
    };
    Some(PolicyResponse {
        status: spec.status,
        content_type: spec.content_type.clone(),
        location: spec.location.clone(),
        body,
        pace: if latency.is_zero() {
            crate::https::Pace::Immediate
        } else {
            crate::https::Pace::After(latency)
        },
    })
}

/// The lab's addresses: each IPv4 host its own 127.0.0.x (in file order), the IPv6 host ::1.
fn addresses(scenario: &Scenario) -> HashMap<DomainName, Vec<IpAddr>> {
    let mut next = FIRST_HOST_OCTET;
    let mut out = HashMap::new();
    for host in &scenario.hosts {
        let mut ips = Vec::new();
        if host.ipv4 {
            ips.push(IpAddr::V4(Ipv4Addr::new(127, 0, 0, next)));
            // The scenario loader allows at most MAX_IPV4_HOSTS, so this never wraps.
            next = next.saturating_add(1);
        }
        if host.ipv6 {
            ips.push(IpAddr::V6(Ipv6Addr::LOCALHOST));
        }
        out.insert(host.name.clone(), ips);
    }
    out
}

impl Lab {
    /// Starts the lab described by `scenario`, with certificates valid (or not) relative to
    /// `now`. Must run inside a tokio runtime; everything listens on loopback.
    pub async fn start(scenario: &Scenario, now: OffsetDateTime) -> Result<RunningLab, LabError> {
        Self::start_with_latency(scenario, now, StdDuration::ZERO).await
    }

    /// [`Self::start`], every SMTP server waiting `latency` before its greeting and the
    /// policy server waiting `latency` before each response, as distant servers would (the
    /// benchmarks of latency-bound scans; DNS gets no delay).
    pub async fn start_with_latency(
        scenario: &Scenario,
        now: OffsetDateTime,
        latency: StdDuration,
    ) -> Result<RunningLab, LabError> {
        let pki = Pki::new(now)?;
        let addresses = addresses(scenario);
        let mut dns = LabDns::builder();

        // One signed zone per lab TLD (RFC 4035 chain: the lab root, the TLD, the names).
        let tlds: BTreeSet<&str> = scenario
            .hosts
            .iter()
            .flat_map(|h| std::iter::once(&h.name).chain(&h.aliases))
            .chain(scenario.domains.iter().map(|d| &d.name))
            .filter_map(|n| n.labels().last())
            .collect();
        for tld in tlds {
            dns = dns.zone(tld, Signing::Signed);
        }

        let mut smtp_hosts = Vec::new();
        for host in &scenario.hosts {
            let name = host.name.as_str();
            dns = match host.dnssec {
                HostDnssec::Signed => dns,
                HostDnssec::Unsigned => dns.zone(name, Signing::Unsigned),
                HostDnssec::Bogus => dns.zone(name, Signing::BadSignatures),
                HostDnssec::Expired => dns.zone(name, Signing::ExpiredSignatures),
                HostDnssec::DsMismatch => dns.zone(name, Signing::BogusDs),
                HostDnssec::BogusTlsa => {
                    dns.zone(&format!("_{SMTP_PORT}._tcp.{name}"), Signing::BadSignatures)
                }
            };
            let ips = addresses.get(&host.name).cloned().unwrap_or_default();
            for ip in &ips {
                dns = dns.record(name, LabRecord::address(*ip));
            }
            for alias in &host.aliases {
                dns = dns.record(alias.as_str(), LabRecord::Cname(name.to_owned()));
            }
            if ips.is_empty() {
                continue;
            }
            let presented = pki.present(&host.name, host.certificate)?;
            for profile in &host.tlsa {
                let tlsa = pki.tlsa(*profile, presented.leaf.der());
                dns = dns.record(&format!("_{SMTP_PORT}._tcp.{name}"), LabRecord::Tlsa(tlsa));
            }
            smtp_hosts.push((host, presented, ips));
        }
        let servers = start_smtp_servers(&smtp_hosts, latency).await?;

        let mut policy_hosts = Vec::new();
        for domain in &scenario.domains {
            let d = domain.name.as_str();
            dns = match domain.dnssec {
                DomainDnssec::Signed => dns,
                DomainDnssec::Expired => dns.zone(d, Signing::ExpiredSignatures),
                DomainDnssec::DsMismatch => dns.zone(d, Signing::BogusDs),
            };
            for mx in &domain.mx {
                dns = dns.record(
                    d,
                    LabRecord::Mx {
                        preference: mx.preference,
                        exchange: mx
                            .exchange
                            .as_ref()
                            .map_or_else(|| ".".to_owned(), ToString::to_string),
                    },
                );
            }
            for txt in &domain.sts_txt {
                dns = dns.record(&format!("_mta-sts.{d}"), LabRecord::Txt(vec![txt.clone()]));
            }
            for txt in &domain.tlsrpt_txt {
                dns = dns.record(
                    &format!("_smtp._tls.{d}"),
                    LabRecord::Txt(vec![txt.clone()]),
                );
            }
            if let (Some(spec), Some(response)) = (&domain.policy, policy_response(domain, latency))
            {
                let host = domain.name.prefixed("mta-sts");
                dns = dns.record(&host, LabRecord::address(POLICY_IP));
                let host_name = DomainName::parse(&host).map_err(|e| LabError::PolicyHostName {
                    host: host.clone(),
                    reason: e.to_string(),
                })?;
                let presented = pki.present(&host_name, spec.certificate)?;
                policy_hosts.push(PolicyHost::new(
                    &host,
                    presented.chain,
                    presented.leaf.private_key(),
                    response,
                ));
            }
            if let Some(endpoint) = &domain.report_endpoint {
                dns = dns.record(endpoint.host.as_str(), LabRecord::address(POLICY_IP));
                let presented = pki.present(&endpoint.host, endpoint.certificate)?;
                policy_hosts.push(PolicyHost {
                    name: endpoint.host.to_string(),
                    chain: presented.chain,
                    key: presented.leaf.private_key(),
                    behaviour: HostBehaviour::ReportEndpoint,
                });
            }
        }

        let dns = dns.build()?.start().await?;
        let mut resolvers = Vec::with_capacity(scenario.resolvers.len());
        for spec in &scenario.resolvers {
            let broken = match spec.behaviour {
                ResolverBehaviour::NxdomainToAll => BrokenResolver::NxdomainToAll,
                ResolverBehaviour::StripDnssec => BrokenResolver::StripDnssec,
            };
            resolvers.push((spec.name.clone(), dns.start_broken(broken).await?));
        }
        let https = PolicyServer::start(POLICY_IP, policy_hosts).await?;
        let anchors = Anchors::from_pem(pki.root_pem.as_bytes())?;
        let smtp_ports = servers
            .iter()
            .map(|(_, s)| (s.addr().ip(), s.addr().port()))
            .collect();
        Ok(RunningLab {
            pki,
            domains: scenario.domains.iter().map(|d| d.name.clone()).collect(),
            scenario: scenario.clone(),
            addresses,
            anchors,
            smtp_ports,
            dns,
            resolvers,
            smtp: servers,
            https,
        })
    }
}

/// Starts the SMTP server of every (host, address), all on one port (each host has its own
/// loopback address), so that a scan with `--smtp-port` reaches every lab MX host as it
/// would reach real ones on port 25. The port is the one the system gives the first server;
/// if another program holds it on one of the other addresses, the lab tries again with a new
/// one.
async fn start_smtp_servers(
    hosts: &[(&HostSpec, Presented, Vec<IpAddr>)],
    latency: StdDuration,
) -> Result<Vec<(DomainName, RunningSmtp)>, LabError> {
    const TRIES: usize = 8;
    let mut last_error = None;
    for _ in 0..TRIES {
        let mut servers: Vec<(DomainName, RunningSmtp)> = Vec::new();
        let mut port = 0;
        let mut clash = false;
        for (host, presented, ips) in hosts {
            for ip in ips {
                let error = |source| LabError::Smtp {
                    host: host.name.to_string(),
                    ip: *ip,
                    source,
                };
                let mut server = smtp_server(host, presented).map_err(error)?;
                server.latency = latency;
                match server.start_on(SocketAddr::new(*ip, port)).await {
                    Ok(running) => {
                        port = running.addr().port();
                        servers.push((host.name.clone(), running));
                    }
                    Err(LabSmtpError::Bind { source, .. })
                        if port != 0 && source.kind() == std::io::ErrorKind::AddrInUse =>
                    {
                        last_error = Some(error(LabSmtpError::Bind { ip: *ip, source }));
                        clash = true;
                        break;
                    }
                    Err(e) => return Err(error(e)),
                }
            }
            if clash {
                break;
            }
        }
        if !clash {
            return Ok(servers);
        }
    }
    Err(last_error.expect("a clash was recorded before retrying"))
}

/// A running lab. Dropping it stops every server.
pub struct RunningLab {
    /// The lab's CAs and clock, kept to make certificates for later changes.
    pki: Pki,
    domains: Vec<DomainName>,
    scenario: Scenario,
    addresses: HashMap<DomainName, Vec<IpAddr>>,
    anchors: Anchors,
    smtp_ports: HashMap<IpAddr, u16>,
    dns: RunningDns,
    /// The broken resolvers, by scenario name.
    resolvers: Vec<(String, RunningDns)>,
    smtp: Vec<(DomainName, RunningSmtp)>,
    https: RunningHttps,
}

impl fmt::Debug for RunningLab {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunningLab")
            .field("domains", &self.domains.len())
            .field("dns", &self.dns.addr)
            .field("smtp_servers", &self.smtp.len())
            .field("https", &self.https.addr)
            .finish_non_exhaustive()
    }
}

impl RunningLab {
    /// The lab clock: the time certificates were made relative to; scan at this time.
    pub fn now(&self) -> OffsetDateTime {
        self.pki.now
    }

    /// The lab domains, in scenario order.
    pub fn domains(&self) -> &[DomainName] {
        &self.domains
    }

    /// The scenario the lab started from (with every domain's expectation); changes made
    /// since ([`Self::replace_certificate`], [`Self::set_policy`]) are not in it.
    pub fn scenario(&self) -> &Scenario {
        &self.scenario
    }

    /// The addresses the lab gave `host` (empty for an unresolvable host or an unknown name).
    pub fn addresses(&self, host: &DomainName) -> &[IpAddr] {
        // An alias (a CNAME to the host) has the host's addresses.
        let name = self.scenario.host(host).map_or(host, |h| &h.name);
        self.addresses.get(name).map_or(&[], Vec::as_slice)
    }

    /// Every way the scan of `name` in `report` differs from `expect` (empty: as expected);
    /// one session is expected per address the lab gave an MX host.
    pub fn judge(
        &self,
        expect: &Expectation,
        name: &DomainName,
        report: &DomainResult,
    ) -> Vec<String> {
        expect.mismatches(name, report, &|mx| self.addresses(mx).len())
    }

    /// The lab root CA certificate (PEM): the only trust anchor of a lab scan.
    pub fn root_ca_pem(&self) -> &str {
        &self.pki.root_pem
    }

    /// The lab DNS server.
    pub fn dns(&self) -> &RunningDns {
        &self.dns
    }

    /// The broken resolver the scenario names `name` (a `[[resolver]]` entry).
    pub fn broken_resolver(&self, name: &str) -> Option<&RunningDns> {
        self.resolvers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, dns)| dns)
    }

    /// [`Self::scan_config`] with the broken resolver the scenario names `name` as the only
    /// DNS server (the same trust anchor and everything else).
    pub fn scan_config_through(&self, name: &str) -> Option<ScanConfig> {
        let resolver = self.broken_resolver(name)?;
        let mut config = self.scan_config();
        config.dns.servers = Some(vec![resolver.addr]);
        Some(config)
    }

    /// The port every lab SMTP server listens on (each host on its own loopback address),
    /// or `None` when the scenario has no SMTP server.
    pub fn smtp_port(&self) -> Option<u16> {
        self.smtp.first().map(|(_, s)| s.addr().port())
    }

    /// The SMTP servers with the host each belongs to, in scenario order.
    pub fn smtp_servers(&self) -> impl Iterator<Item = (&DomainName, &RunningSmtp)> {
        self.smtp.iter().map(|(h, s)| (h, s))
    }

    /// The policy server.
    pub fn https(&self) -> &RunningHttps {
        &self.https
    }

    /// Makes every SMTP server of `host` (one per address) present a certificate of
    /// `certificate`'s profile, made by the lab's PKI relative to the lab clock, to the
    /// connections they accept from now on; connections already open keep the old one.
    /// Everything else the servers do (greeting, EHLO, STARTTLS) stays as it is.
    ///
    /// The host's TLSA records in the lab DNS are NOT changed: they still describe the
    /// certificate the host started with, so a DANE-EE record stops matching, as it does
    /// when a real operator rolls a key without publishing its digest first.
    ///
    /// Fails, changing nothing, when the lab runs no SMTP server for `host` or when one of
    /// them answers STARTTLS without TLS (so has no certificate to replace).
    pub fn replace_certificate(
        &self,
        host: &DomainName,
        certificate: CertProfile,
    ) -> Result<(), LabError> {
        let servers: Vec<(&RunningSmtp, Arc<SmtpServer>)> = self
            .smtp
            .iter()
            .filter(|(name, _)| name == host)
            .map(|(_, server)| (server, server.spec()))
            .collect();
        if servers.is_empty() {
            return Err(LabError::NoSmtpServer {
                host: host.to_string(),
            });
        }
        if let Some((server, _)) = servers
            .iter()
            .find(|(_, spec)| !matches!(spec.starttls, StartTls::Accept(_)))
        {
            return Err(LabError::NoStartTls {
                host: host.to_string(),
                ip: server.addr().ip(),
            });
        }
        let presented = self.pki.present(host, certificate)?;
        let config =
            tls_config(presented.chain, presented.leaf.private_key()).map_err(|source| {
                LabError::CertificateChange {
                    host: host.to_string(),
                    source,
                }
            })?;
        for (server, spec) in servers {
            server.replace(SmtpServer {
                starttls: StartTls::Accept(Arc::clone(&config)),
                ..(*spec).clone()
            });
        }
        Ok(())
    }

    /// Makes the policy host of `domain` (`mta-sts.<domain>`) answer later fetches with
    /// `body`, status 200 and `Content-Type: text/plain`, with the same certificate; fetches
    /// on connections already open get the old answer. The `_mta-sts` TXT record (and its
    /// id) is not changed.
    ///
    /// Fails when the lab serves no policy host for `domain`.
    pub fn set_policy(&self, domain: &DomainName, body: &str) -> Result<(), LabError> {
        let host = domain.prefixed("mta-sts");
        match self.https.set_response(&host, PolicyResponse::policy(body)) {
            Ok(()) => Ok(()),
            Err(HttpsLabError::UnknownHost { .. }) => Err(LabError::NoPolicyHost {
                domain: domain.to_string(),
            }),
            Err(source) => Err(LabError::PolicyChange {
                domain: domain.to_string(),
                source,
            }),
        }
    }

    /// What the lab has served so far.
    pub fn counters(&self) -> LabCounters {
        LabCounters {
            dns_queries: self.dns.query_count(),
            smtp_connections: self.smtp.iter().map(|(_, s)| s.stats().connections).sum(),
            policy_requests: self.https.request_count(),
        }
    }

    /// The configuration that scans the lab as a sender would scan the internet: the lab
    /// resolver validating DNSSEC from the lab root key, the lab root CA as the only trust
    /// anchor, the lab's port maps, and timeouts short enough that the misbehaving servers
    /// (silent, dripping) end a whole lab scan within seconds.
    pub fn scan_config(&self) -> ScanConfig {
        let ehlo_name = EhloName::parse(LAB_EHLO_NAME).expect("a fixed, valid host name");
        ScanConfig {
            dns: self.dns.dns_config(),
            smtp: SmtpConfig {
                ehlo_name,
                connect_timeout: StdDuration::from_secs(2),
                phase_timeout: StdDuration::from_millis(1500),
                deadline: StdDuration::from_secs(4),
                tls: capture::client_config(),
            },
            smtp_ports: self.smtp_ports.clone(),
            default_smtp_port: SMTP_PORT,
            fetch: FetchConfig::new(FetchTimeouts {
                connect: StdDuration::from_secs(2),
                request: StdDuration::from_secs(3),
                overall: StdDuration::from_secs(5),
            })
            .with_port(self.https.addr.ip(), self.https.addr.port()),
            anchors: self.anchors.clone(),
            content_type: ContentTypeRule::default(),
            expiry_warn_days: mxprobe_core::evaluate::EXPIRY_WARN_DAYS,
            no_smtp: false,
            // Busy lab servers are retried quickly, so a lab scan stays short.
            politeness: mxprobe_probe::scan::Politeness {
                backoff: mxprobe_probe::scan::Backoff {
                    initial: StdDuration::from_millis(200),
                    max: StdDuration::from_secs(1),
                    max_attempts: 4,
                },
                ..mxprobe_probe::scan::Politeness::default()
            },
            probe_cache: mxprobe_probe::scan::ProbeCacheConfig::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2025-06-01 12:00 UTC);

    #[test]
    fn profiles_shape_the_certificate() {
        let pki = Pki::new(NOW).expect("pki");
        let name = DomainName::parse("mx.a.test").expect("name");
        let cases = [
            (CertProfile::Valid, 2, "mx.a.test", true),
            (CertProfile::Expired, 2, "mx.a.test", false),
            (CertProfile::NotYetValid, 2, "mx.a.test", false),
            (CertProfile::ExpiringSoon, 2, "mx.a.test", true),
            (CertProfile::WrongName, 2, WRONG_NAME, true),
            (CertProfile::Wildcard, 2, "*.a.test", true),
            (CertProfile::SelfSigned, 1, "mx.a.test", true),
            (CertProfile::UnknownCa, 1, "mx.a.test", true),
            (CertProfile::MissingIntermediate, 1, "mx.a.test", true),
        ];
        for (profile, len, san, current) in cases {
            let p = pki.present(&name, profile).expect("issued");
            assert_eq!(p.chain.len(), len, "{profile:?}");
            let summary = mxprobe_core::tls::describe(p.chain[0].as_ref()).expect("parses");
            assert_eq!(summary.dns_names, vec![san.to_owned()], "{profile:?}");
            let valid_now = summary.not_before <= NOW && NOW <= summary.not_after;
            assert_eq!(valid_now, current, "{profile:?}");
        }
    }

    #[test]
    fn tlsa_profiles_have_the_documented_parameters() {
        let pki = Pki::new(NOW).expect("pki");
        let name = DomainName::parse("mx.a.test").expect("name");
        let leaf = pki.present(&name, CertProfile::Valid).expect("issued").leaf;
        let cases = [
            (TlsaProfile::DaneEe, 3, 32),
            (TlsaProfile::DaneEeWrong, 3, 32),
            (TlsaProfile::DaneTa, 2, 32),
            (TlsaProfile::PkixOnly, 1, 32),
            (TlsaProfile::BadDigestLength, 3, 20),
        ];
        for (profile, usage, len) in cases {
            let t = pki.tlsa(profile, leaf.der());
            assert_eq!(
                (t.usage, t.selector, t.matching_type),
                (usage, 1, 1),
                "{profile:?}"
            );
            assert_eq!(t.data.len(), len, "{profile:?}");
        }
        assert_ne!(
            pki.tlsa(TlsaProfile::DaneEe, leaf.der()).data,
            pki.tlsa(TlsaProfile::DaneEeWrong, leaf.der()).data
        );
    }

    #[test]
    fn each_ipv4_host_gets_its_own_address() {
        let s = Scenario::embedded().expect("valid");
        let map = addresses(&s);
        let mut seen = BTreeSet::new();
        for host in &s.hosts {
            for ip in &map[&host.name] {
                assert!(ip.is_loopback(), "{ip}");
                if ip.is_ipv4() {
                    assert!(seen.insert(*ip), "{ip} given twice");
                }
            }
            assert_eq!(
                map[&host.name].len(),
                usize::from(host.ipv4) + usize::from(host.ipv6)
            );
        }
    }
}
