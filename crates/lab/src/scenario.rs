//! The mail lab's scenario: one data file (`fixtures/lab/scenario.toml`) that describes every
//! lab MX host (addresses, certificate, SMTP behaviour, TLSA records, DNSSEC state), every
//! lab domain (MX records, `_mta-sts` and `_smtp._tls` TXT records, DNSSEC state, the policy
//! host's HTTPS behaviour) together with what a scan of the domain must conclude, and the
//! broken resolvers the lab also runs (with what a scan through each must conclude).
//!
//! This module only reads and checks the data: [`Scenario::from_toml_str`] parses it with
//! serde and then validates every name, MX entry, TXT string and expectation, so a mistake
//! in the file is reported with the file, the entry (`domain good.test`, `host mx.a.test`)
//! and the field. It does no I/O except [`Scenario::load`], which reads one file; the runner
//! ([`crate::run`]) turns a scenario into servers.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use mxprobe_core::domain::DomainName;
use mxprobe_core::evaluate::verdict::Routing;
use mxprobe_core::finding::Severity;
use mxprobe_core::tlsrpt::{PolicyType, ResultType};

/// The scenario compiled into the binary, so `mxprobe demo` works from any directory.
const EMBEDDED: &str = include_str!("../../../fixtures/lab/scenario.toml");

/// The name used for [`EMBEDDED`] in error messages.
const EMBEDDED_NAME: &str = "fixtures/lab/scenario.toml (embedded)";

/// The IPv4 MX hosts get 127.0.0.10, 127.0.0.11, … 127.0.0.254: one address each.
pub const FIRST_HOST_OCTET: u8 = 10;

/// How many MX hosts can have an IPv4 address (one loopback address each).
pub const MAX_IPV4_HOSTS: usize = (u8::MAX - FIRST_HOST_OCTET) as usize;

/// The longest TXT character-string (RFC 1035 §3.3).
const MAX_TXT_STRING: usize = 255;

/// Why a scenario could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("cannot read the lab scenario {}: {source}", file.display())]
    Read {
        /// The file.
        file: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not TOML, or a field is missing, unknown or of the wrong type.
    #[error("{file}: this is not a valid lab scenario: {message}")]
    Syntax {
        /// The file.
        file: String,
        /// The TOML parser's message (with line and column).
        message: String,
    },
    /// A name that is not a valid host name.
    #[error("{file}: {entry}, field `{field}`: {value:?} is not a valid host name ({reason})")]
    BadName {
        /// The file.
        file: String,
        /// The entry (`domain x.test`, `host mx.x.test`, or the position when the name
        /// itself is bad).
        entry: String,
        /// The field.
        field: &'static str,
        /// The value given.
        value: String,
        /// Why it is not a name.
        reason: String,
    },
    /// An MX entry that is not `"<preference> <host>"`.
    #[error(
        "{file}: {entry}, field `mx`: {value:?} is not \"<preference 0-65535> <host>\" (use \
         \"0 .\" for a null MX)"
    )]
    BadMx {
        /// The file.
        file: String,
        /// The domain entry.
        entry: String,
        /// The value given.
        value: String,
    },
    /// An MX entry naming a host that has no `[[host]]` entry.
    #[error(
        "{file}: {entry}, field `mx`: {host} has no [[host]] entry (declare it; give it \
         `ipv4 = false` to make it unresolvable)"
    )]
    UndeclaredHost {
        /// The file.
        file: String,
        /// The domain entry.
        entry: String,
        /// The host named.
        host: String,
    },
    /// A TXT string longer than one DNS character-string.
    #[error(
        "{file}: {entry}, field `{field}`: a string of {len} bytes; a TXT character-string holds \
         at most 255"
    )]
    TxtTooLong {
        /// The file.
        file: String,
        /// The domain entry.
        entry: String,
        /// The field.
        field: &'static str,
        /// The string's length.
        len: usize,
    },
    /// The same domain or host twice.
    #[error("{file}: {entry} is defined twice")]
    Duplicate {
        /// The file.
        file: String,
        /// The entry.
        entry: String,
    },
    /// A session expectation for a host that is not an MX host of the domain.
    #[error(
        "{file}: {entry}, field `expect.sessions`: {mx} is not a host this domain's mail goes \
         to (its MX hosts, or the domain itself without MX)"
    )]
    ExpectedMxUnknown {
        /// The file.
        file: String,
        /// The domain entry.
        entry: String,
        /// The host named in the expectation.
        mx: String,
    },
    /// A session expectation whose `result` and `failures` disagree.
    #[error("{file}: {entry}, field `expect.sessions` ({mx}): {reason}")]
    BadSessionExpectation {
        /// The file.
        file: String,
        /// The domain entry.
        entry: String,
        /// The host named in the expectation.
        mx: String,
        /// What disagrees.
        reason: &'static str,
    },
    /// A broken-resolver entry that names a domain the scenario does not have, or expects
    /// sessions (a scan through a broken resolver probes nothing).
    #[error("{file}: resolver {entry}: {reason}")]
    BadResolver {
        /// The file.
        file: String,
        /// The resolver entry's name.
        entry: String,
        /// What is wrong.
        reason: String,
    },
    /// A policy host whose response cannot be described this way.
    #[error("{file}: {entry}, field `policy.{field}`: {reason}")]
    BadPolicy {
        /// The file.
        file: String,
        /// The domain entry.
        entry: String,
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
    /// Two hosts with IPv6: the lab has one IPv6 loopback address.
    #[error(
        "{file}: hosts {first} and {second} both ask for IPv6; the lab has a single IPv6 \
         loopback address (::1), so only one host can have one"
    )]
    SecondIpv6Host {
        /// The file.
        file: String,
        /// The first host with IPv6.
        first: String,
        /// The second one.
        second: String,
    },
    /// More IPv4 hosts than loopback addresses the lab hands out.
    #[error("{file}: {count} hosts ask for IPv4; the lab has addresses for {MAX_IPV4_HOSTS}")]
    TooManyHosts {
        /// The file.
        file: String,
        /// How many hosts ask for IPv4.
        count: usize,
    },
}

/// The certificate a server presents, made by the lab's CA at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CertProfile {
    /// Issued by the lab intermediate for the host name, valid now; chain leaf + intermediate.
    Valid,
    /// Like `valid`, but expired ten days before the lab clock.
    Expired,
    /// Like `valid`, but valid only from ten days after the lab clock.
    NotYetValid,
    /// Like `valid`, but expiring five days after the lab clock (inside the warning window).
    ExpiringSoon,
    /// Like `valid`, but for another name (`wrong-name.invalid`).
    WrongName,
    /// Self-signed, for the host name.
    SelfSigned,
    /// Issued for the host name by a CA that is not a lab trust anchor.
    UnknownCa,
    /// Like `valid`, but the server sends only the leaf, not the intermediate.
    MissingIntermediate,
    /// Like `valid`, but for `*.<parent of the host name>`.
    Wildcard,
}

/// How a lab SMTP server behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SmtpBehaviour {
    /// Offers STARTTLS and completes the handshake with the host's certificate.
    Starttls,
    /// Does not offer STARTTLS.
    NoStarttls,
    /// Offers STARTTLS and answers it `454 4.7.0 TLS not available`.
    #[serde(rename = "starttls-454")]
    Starttls454,
    /// Refuses EHLO with 502 (the probe falls back to HELO: no STARTTLS without EHLO).
    EhloRejected,
    /// Greets with 421 and hangs up (busy, rate limiting).
    #[serde(rename = "greeting-421")]
    Greeting421,
    /// Accepts the connection and never sends the banner.
    Silent,
    /// Sends `220 ` and then one byte at a time, forever.
    Drip,
    /// Answers STARTTLS 220, then bytes that are not TLS instead of a ServerHello.
    GarbageAfterStarttls,
    /// Answers STARTTLS 220, then resets the connection.
    ResetAfterStarttls,
    /// Answers STARTTLS 220, then closes the connection before the handshake.
    CloseAfterStarttls,
    /// Answers EHLO with a 64 KiB line.
    OversizedEhlo,
}

/// A TLSA record at `_25._tcp.<host>`, computed from the lab's certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TlsaProfile {
    /// `3 1 1` SHA-256 of the served leaf's SPKI (DANE-EE).
    DaneEe,
    /// `3 1 1` of a key the server does not have.
    DaneEeWrong,
    /// `2 1 1` SHA-256 of the lab intermediate's SPKI (DANE-TA).
    DaneTa,
    /// `1 1 1` of the served leaf (PKIX-EE): unusable for SMTP (RFC 7672 §3.1.3).
    PkixOnly,
    /// `3 1 1` with 20 bytes of data: unusable, SHA-256 digests are 32 bytes (RFC 6698 §2.1.3).
    BadDigestLength,
}

/// The DNSSEC state of an MX host's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HostDnssec {
    /// Inside the signed lab TLD zone: addresses and TLSA validate as secure.
    #[default]
    Signed,
    /// In its own unsigned zone: provably insecure, so senders ignore its TLSA records.
    Unsigned,
    /// Addresses secure, but the TLSA RRset sits in a zone with broken signatures (bogus).
    BogusTlsa,
    /// In its own zone with broken signatures: every answer about the host is bogus.
    Bogus,
    /// In its own zone whose signatures all expired: every answer about the host is bogus.
    Expired,
    /// In its own zone, whose DS in the parent names another key: every answer is bogus.
    DsMismatch,
}

/// The DNSSEC state of a domain's own names (MX, `_mta-sts`, `_smtp._tls`, the policy
/// host's address).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DomainDnssec {
    /// Inside the signed lab TLD zone.
    #[default]
    Signed,
    /// In its own zone whose signatures all expired: every answer about the domain is bogus.
    Expired,
    /// In its own zone, whose DS in the parent names another key: every answer is bogus.
    DsMismatch,
}

/// How a lab resolver is broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ResolverBehaviour {
    /// NXDOMAIN to every query.
    NxdomainToAll,
    /// Every RRSIG, NSEC and NSEC3 record removed from its answers.
    StripDnssec,
}

/// A broken resolver the lab runs beside its DNS server, and what a scan of some lab
/// domains through it must conclude.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolverSpec {
    /// Its name in the scenario (e.g. `nxdomain-to-all`).
    pub name: String,
    /// What it demonstrates, in one sentence.
    pub about: String,
    /// How it is broken.
    pub behaviour: ResolverBehaviour,
    /// The lab domains to scan through it.
    pub domains: Vec<DomainName>,
    /// What each of those scans must conclude.
    pub expect: Expectation,
}

/// One lab MX host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostSpec {
    /// Its name.
    pub name: DomainName,
    /// Whether it has an IPv4 address (its own 127.0.0.x).
    pub ipv4: bool,
    /// Whether it has the IPv6 address `::1`.
    pub ipv6: bool,
    /// The certificate its SMTP server presents.
    pub certificate: CertProfile,
    /// How its SMTP server behaves.
    pub smtp: SmtpBehaviour,
    /// Its TLSA records.
    pub tlsa: Vec<TlsaProfile>,
    /// The DNSSEC state of its names.
    pub dnssec: HostDnssec,
    /// Other names published as CNAMEs to this host (in the signed lab zone), for MX records
    /// that name an alias (RFC 7672 §2.2.2).
    pub aliases: Vec<DomainName>,
}

impl HostSpec {
    /// Whether `name` is this host's name or one of its aliases.
    pub fn answers_to(&self, name: &DomainName) -> bool {
        self.name == *name || self.aliases.contains(name)
    }

    /// Whether the host has any address (an unresolvable MX has none).
    pub fn has_address(&self) -> bool {
        self.ipv4 || self.ipv6
    }
}

/// One MX record of a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MxRecord {
    /// The preference.
    pub preference: u16,
    /// The exchange; `None` is the root, `"."`: a null MX (RFC 7505).
    pub exchange: Option<DomainName>,
}

/// How the policy host `mta-sts.<domain>` answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyHostSpec {
    /// The HTTP status.
    pub status: u16,
    /// The Content-Type header; `None` sends none.
    pub content_type: Option<String>,
    /// The Location header.
    pub location: Option<String>,
    /// The body (the policy text).
    pub body: String,
    /// Send a body of more than 64 KiB, chunked, instead of `body`.
    pub oversized: bool,
    /// The certificate the host presents.
    pub certificate: CertProfile,
}

/// What a session (one MX host address) must end with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpectedResult {
    /// A policy-compliant TLS session.
    Success,
    /// A failure with exactly these result types (in any order).
    Failure(Vec<ResultType>),
    /// The probe could not tell.
    Inconclusive,
}

/// The expected verdict for every session of one MX host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionExpectation {
    /// The MX host.
    pub mx: DomainName,
    /// The policy type applied.
    pub policy: PolicyType,
    /// The result.
    pub result: ExpectedResult,
}

/// What a scan of a domain must conclude.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expectation {
    /// How mail is routed.
    pub routing: Routing,
    /// The MTA-STS policy-level failure, if any.
    pub sts_failure: Option<ResultType>,
    /// Whether the domain is inconclusive (something could not be tested).
    pub inconclusive: bool,
    /// Finding codes that must be present (others may be too).
    pub findings: Vec<String>,
    /// The most severe finding allowed, if limited.
    pub worst: Option<Severity>,
    /// One entry per MX host with sessions; hosts without sessions are not listed.
    pub sessions: Vec<SessionExpectation>,
}

/// One lab domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainSpec {
    /// Its name.
    pub name: DomainName,
    /// What it demonstrates, in one sentence.
    pub about: String,
    /// Its MX records (empty: none, so the implicit MX applies).
    pub mx: Vec<MxRecord>,
    /// `_mta-sts.<domain>` TXT records, one string each.
    pub sts_txt: Vec<String>,
    /// `_smtp._tls.<domain>` TXT records, one string each.
    pub tlsrpt_txt: Vec<String>,
    /// The policy host; `None`: `mta-sts.<domain>` does not exist.
    pub policy: Option<PolicyHostSpec>,
    /// The DNSSEC state of the domain's own names.
    pub dnssec: DomainDnssec,
    /// What a scan must conclude.
    pub expect: Expectation,
}

impl DomainSpec {
    /// The hosts mail for the domain goes to: the MX exchanges (null MX excluded), or the
    /// domain itself when it has no MX records (RFC 5321 §5.1).
    pub fn mail_hosts(&self) -> Vec<DomainName> {
        if self.mx.is_empty() {
            return vec![self.name.clone()];
        }
        self.mx.iter().filter_map(|m| m.exchange.clone()).collect()
    }
}

/// The whole lab.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scenario {
    /// The MX hosts, in file order.
    pub hosts: Vec<HostSpec>,
    /// The domains, in file order.
    pub domains: Vec<DomainSpec>,
    /// The broken resolvers, in file order.
    pub resolvers: Vec<ResolverSpec>,
}

impl Scenario {
    /// The scenario shipped with mxprobe (`fixtures/lab/scenario.toml`, compiled in).
    pub fn embedded() -> Result<Self, ScenarioError> {
        Self::parse(EMBEDDED, EMBEDDED_NAME)
    }

    /// Reads a scenario from a file.
    pub fn load(path: &Path) -> Result<Self, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            file: path.to_owned(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Reads a scenario from TOML text (named `<string>` in errors).
    pub fn from_toml_str(text: &str) -> Result<Self, ScenarioError> {
        Self::parse(text, "<string>")
    }

    /// The host named `name`.
    pub fn host(&self, name: &DomainName) -> Option<&HostSpec> {
        self.hosts.iter().find(|h| h.answers_to(name))
    }

    /// The domain named `name`.
    pub fn domain(&self, name: &DomainName) -> Option<&DomainSpec> {
        self.domains.iter().find(|d| &d.name == name)
    }

    fn parse(text: &str, file: &str) -> Result<Self, ScenarioError> {
        let raw: RawScenario = toml::from_str(text).map_err(|e| ScenarioError::Syntax {
            file: file.to_owned(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        Checker { file }.scenario(raw)
    }
}

// The file's shape, as serde reads it; [`Checker`] turns it into the public types.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    #[serde(default)]
    host: Vec<RawHost>,
    #[serde(default)]
    domain: Vec<RawDomain>,
    #[serde(default)]
    resolver: Vec<RawResolver>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawResolver {
    name: String,
    about: String,
    behaviour: ResolverBehaviour,
    domains: Vec<String>,
    expect: RawExpect,
}

fn yes() -> bool {
    true
}

fn valid() -> CertProfile {
    CertProfile::Valid
}

fn starttls() -> SmtpBehaviour {
    SmtpBehaviour::Starttls
}

fn ok_status() -> u16 {
    200
}

fn text_plain() -> String {
    "text/plain".to_owned()
}

fn mx_routing() -> Routing {
    Routing::Mx
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHost {
    name: String,
    #[serde(default = "yes")]
    ipv4: bool,
    #[serde(default)]
    ipv6: bool,
    #[serde(default = "valid")]
    certificate: CertProfile,
    #[serde(default = "starttls")]
    smtp: SmtpBehaviour,
    #[serde(default)]
    tlsa: Vec<TlsaProfile>,
    #[serde(default)]
    dnssec: HostDnssec,
    #[serde(default)]
    aliases: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDomain {
    name: String,
    about: String,
    #[serde(default)]
    mx: Vec<String>,
    #[serde(default)]
    sts_txt: Vec<String>,
    #[serde(default)]
    tlsrpt_txt: Vec<String>,
    policy: Option<RawPolicy>,
    #[serde(default)]
    dnssec: DomainDnssec,
    expect: RawExpect,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    #[serde(default = "ok_status")]
    status: u16,
    /// `"none"` sends no Content-Type header.
    #[serde(default = "text_plain")]
    content_type: String,
    location: Option<String>,
    #[serde(default)]
    body: String,
    #[serde(default)]
    oversized: bool,
    #[serde(default = "valid")]
    certificate: CertProfile,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExpect {
    #[serde(default = "mx_routing")]
    routing: Routing,
    sts_failure: Option<ResultType>,
    #[serde(default)]
    inconclusive: bool,
    #[serde(default)]
    findings: Vec<String>,
    worst: Option<Severity>,
    #[serde(default)]
    sessions: Vec<RawSession>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
enum RawResult {
    Success,
    Failure,
    Inconclusive,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSession {
    mx: String,
    policy: PolicyType,
    result: RawResult,
    #[serde(default)]
    failures: Vec<ResultType>,
}

/// Checks the raw data and names the file in every error.
struct Checker<'a> {
    file: &'a str,
}

impl Checker<'_> {
    fn name(
        &self,
        entry: &str,
        field: &'static str,
        value: &str,
    ) -> Result<DomainName, ScenarioError> {
        DomainName::parse(value).map_err(|e| ScenarioError::BadName {
            file: self.file.to_owned(),
            entry: entry.to_owned(),
            field,
            value: value.to_owned(),
            reason: e.to_string(),
        })
    }

    fn scenario(&self, raw: RawScenario) -> Result<Scenario, ScenarioError> {
        let mut hosts: Vec<HostSpec> = Vec::with_capacity(raw.host.len());
        for (i, h) in raw.host.into_iter().enumerate() {
            let name = self.name(&format!("host #{}", i + 1), "name", &h.name)?;
            if hosts.iter().any(|o| o.name == name) {
                return Err(self.duplicate(format!("host {name}")));
            }
            let aliases = h
                .aliases
                .iter()
                .map(|a| self.name(&format!("host {name}"), "aliases", a))
                .collect::<Result<Vec<_>, _>>()?;
            hosts.push(HostSpec {
                name,
                ipv4: h.ipv4,
                ipv6: h.ipv6,
                certificate: h.certificate,
                smtp: h.smtp,
                tlsa: h.tlsa,
                dnssec: h.dnssec,
                aliases,
            });
        }
        let mut v6 = hosts.iter().filter(|h| h.ipv6);
        if let (Some(first), Some(second)) = (v6.next(), v6.next()) {
            return Err(ScenarioError::SecondIpv6Host {
                file: self.file.to_owned(),
                first: first.name.to_string(),
                second: second.name.to_string(),
            });
        }
        let v4 = hosts.iter().filter(|h| h.ipv4).count();
        if v4 > MAX_IPV4_HOSTS {
            return Err(ScenarioError::TooManyHosts {
                file: self.file.to_owned(),
                count: v4,
            });
        }
        let mut domains: Vec<DomainSpec> = Vec::with_capacity(raw.domain.len());
        let mut seen = HashSet::new();
        for (i, d) in raw.domain.into_iter().enumerate() {
            let name = self.name(&format!("domain #{}", i + 1), "name", &d.name)?;
            if !seen.insert(name.clone()) {
                return Err(self.duplicate(format!("domain {name}")));
            }
            domains.push(self.domain(name, d, &hosts)?);
        }
        let mut resolvers: Vec<ResolverSpec> = Vec::with_capacity(raw.resolver.len());
        for r in raw.resolver {
            if resolvers.iter().any(|o| o.name == r.name) {
                return Err(self.duplicate(format!("resolver {}", r.name)));
            }
            resolvers.push(self.resolver(r, &domains)?);
        }
        Ok(Scenario {
            hosts,
            domains,
            resolvers,
        })
    }

    fn resolver(
        &self,
        raw: RawResolver,
        domains: &[DomainSpec],
    ) -> Result<ResolverSpec, ScenarioError> {
        let bad = |reason: String| ScenarioError::BadResolver {
            file: self.file.to_owned(),
            entry: raw.name.clone(),
            reason,
        };
        let mut names = Vec::with_capacity(raw.domains.len());
        for d in &raw.domains {
            let name = self.name(&format!("resolver {}", raw.name), "domains", d)?;
            if !domains.iter().any(|s| s.name == name) {
                return Err(bad(format!(
                    "{name} is not a lab domain; name [[domain]] entries in `domains`"
                )));
            }
            names.push(name);
        }
        if !raw.expect.sessions.is_empty() {
            return Err(bad(
                "`expect.sessions` must be empty: a scan through a broken resolver probes no \
                 MX host"
                    .to_owned(),
            ));
        }
        Ok(ResolverSpec {
            name: raw.name,
            about: raw.about,
            behaviour: raw.behaviour,
            domains: names,
            expect: Expectation {
                routing: raw.expect.routing,
                sts_failure: raw.expect.sts_failure,
                inconclusive: raw.expect.inconclusive,
                findings: raw.expect.findings,
                worst: raw.expect.worst,
                sessions: Vec::new(),
            },
        })
    }

    fn duplicate(&self, entry: String) -> ScenarioError {
        ScenarioError::Duplicate {
            file: self.file.to_owned(),
            entry,
        }
    }

    fn domain(
        &self,
        name: DomainName,
        raw: RawDomain,
        hosts: &[HostSpec],
    ) -> Result<DomainSpec, ScenarioError> {
        let entry = format!("domain {name}");
        let mut mx = Vec::with_capacity(raw.mx.len());
        for value in &raw.mx {
            mx.push(self.mx(&entry, value, hosts)?);
        }
        for (field, strings) in [("sts_txt", &raw.sts_txt), ("tlsrpt_txt", &raw.tlsrpt_txt)] {
            if let Some(long) = strings.iter().find(|s| s.len() > MAX_TXT_STRING) {
                return Err(ScenarioError::TxtTooLong {
                    file: self.file.to_owned(),
                    entry,
                    field,
                    len: long.len(),
                });
            }
        }
        let policy = raw.policy.map(|p| self.policy(&entry, p)).transpose()?;
        let mut spec = DomainSpec {
            name,
            about: raw.about,
            mx,
            sts_txt: raw.sts_txt,
            tlsrpt_txt: raw.tlsrpt_txt,
            policy,
            dnssec: raw.dnssec,
            expect: Expectation {
                routing: raw.expect.routing,
                sts_failure: raw.expect.sts_failure,
                inconclusive: raw.expect.inconclusive,
                findings: raw.expect.findings,
                worst: raw.expect.worst,
                sessions: Vec::new(),
            },
        };
        let mail_hosts = spec.mail_hosts();
        for s in raw.expect.sessions {
            let mx = self.name(&entry, "expect.sessions", &s.mx)?;
            if !mail_hosts.contains(&mx) {
                return Err(ScenarioError::ExpectedMxUnknown {
                    file: self.file.to_owned(),
                    entry,
                    mx: mx.to_string(),
                });
            }
            let bad = |reason| ScenarioError::BadSessionExpectation {
                file: self.file.to_owned(),
                entry: entry.clone(),
                mx: mx.to_string(),
                reason,
            };
            let result = match (s.result, s.failures.is_empty()) {
                (RawResult::Failure, true) => {
                    return Err(bad("result \"failure\" needs the `failures` result types"));
                }
                (RawResult::Failure, false) => ExpectedResult::Failure(s.failures),
                (_, false) => {
                    return Err(bad("`failures` is only for result \"failure\""));
                }
                (RawResult::Success, true) => ExpectedResult::Success,
                (RawResult::Inconclusive, true) => ExpectedResult::Inconclusive,
            };
            spec.expect.sessions.push(SessionExpectation {
                mx,
                policy: s.policy,
                result,
            });
        }
        Ok(spec)
    }

    fn mx(&self, entry: &str, value: &str, hosts: &[HostSpec]) -> Result<MxRecord, ScenarioError> {
        let bad = || ScenarioError::BadMx {
            file: self.file.to_owned(),
            entry: entry.to_owned(),
            value: value.to_owned(),
        };
        let mut parts = value.split_ascii_whitespace();
        let (Some(preference), Some(exchange), None) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let preference: u16 = preference.parse().map_err(|_| bad())?;
        if exchange == "." {
            return Ok(MxRecord {
                preference,
                exchange: None,
            });
        }
        let exchange = self.name(entry, "mx", exchange)?;
        if !hosts.iter().any(|h| h.answers_to(&exchange)) {
            return Err(ScenarioError::UndeclaredHost {
                file: self.file.to_owned(),
                entry: entry.to_owned(),
                host: exchange.to_string(),
            });
        }
        Ok(MxRecord {
            preference,
            exchange: Some(exchange),
        })
    }

    fn policy(&self, entry: &str, raw: RawPolicy) -> Result<PolicyHostSpec, ScenarioError> {
        let bad = |field, reason| ScenarioError::BadPolicy {
            file: self.file.to_owned(),
            entry: entry.to_owned(),
            field,
            reason,
        };
        if !(100..=999).contains(&raw.status) {
            return Err(bad("status", "an HTTP status is three digits"));
        }
        if raw.oversized && !raw.body.is_empty() {
            return Err(bad(
                "oversized",
                "an oversized response replaces the body; give one or the other",
            ));
        }
        let content_type = (raw.content_type != "none").then_some(raw.content_type);
        Ok(PolicyHostSpec {
            status: raw.status,
            content_type,
            location: raw.location,
            body: raw.body,
            oversized: raw.oversized,
            certificate: raw.certificate,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
        [[host]]
        name = "mx.a.test"

        [[domain]]
        name = "a.test"
        about = "minimal"
        mx = ["10 mx.a.test"]
        [domain.expect]
        sessions = [{ mx = "mx.a.test", policy = "no-policy-found", result = "success" }]
    "#;

    #[test]
    fn the_embedded_scenario_loads() {
        let s = Scenario::embedded().expect("the shipped scenario is valid");
        assert!(s.domains.len() >= 30, "{}", s.domains.len());
    }

    #[test]
    fn minimal_scenario_uses_the_defaults() {
        let s = Scenario::from_toml_str(MINIMAL).expect("valid");
        let host = &s.hosts[0];
        assert_eq!(
            (
                host.ipv4,
                host.ipv6,
                host.certificate,
                host.smtp,
                host.dnssec
            ),
            (
                true,
                false,
                CertProfile::Valid,
                SmtpBehaviour::Starttls,
                HostDnssec::Signed
            )
        );
        let d = &s.domains[0];
        assert_eq!(
            d.mx,
            vec![MxRecord {
                preference: 10,
                exchange: Some(host.name.clone())
            }]
        );
        assert_eq!(d.expect.routing, Routing::Mx);
        assert_eq!(d.expect.sessions[0].result, ExpectedResult::Success);
        assert_eq!(d.mail_hosts(), vec![host.name.clone()]);
    }

    #[test]
    fn null_and_missing_mx() {
        let text = MINIMAL.replace("mx = [\"10 mx.a.test\"]", "mx = [\"0 .\"]");
        let err = Scenario::from_toml_str(&text).expect_err("mx.a.test is no longer a mail host");
        assert!(
            matches!(err, ScenarioError::ExpectedMxUnknown { .. }),
            "{err}"
        );
        let text = text.replace(
            "sessions = [{ mx = \"mx.a.test\", policy = \"no-policy-found\", result = \"success\" }]",
            "routing = \"null-mx\"",
        );
        let s = Scenario::from_toml_str(&text).expect("valid");
        assert_eq!(
            s.domains[0].mx,
            vec![MxRecord {
                preference: 0,
                exchange: None
            }]
        );
        assert!(s.domains[0].mail_hosts().is_empty());
    }

    #[test]
    fn errors_name_the_entry_and_field() {
        let long = format!("sts_txt = [\"{}\"]\n[domain.expect]", "x".repeat(256));
        let cases: Vec<(String, &str)> = vec![
            (
                MINIMAL.replace("10 mx.a.test", "ten mx.a.test"),
                "domain a.test, field `mx`",
            ),
            (
                MINIMAL.replace("10 mx.a.test", "10 mx.b.test"),
                "mx.b.test has no [[host]] entry",
            ),
            (
                MINIMAL.replace("name = \"a.test\"", "name = \"a..test\""),
                "domain #1, field `name`",
            ),
            (
                MINIMAL.replace("[domain.expect]", &long),
                "field `sts_txt`: a string of 256 bytes",
            ),
            (
                MINIMAL.replace("result = \"success\"", "result = \"failure\""),
                "needs the `failures` result types",
            ),
            (
                MINIMAL.replace(
                    "result = \"success\"",
                    "result = \"success\", failures = [\"tlsa-invalid\"]",
                ),
                "only for result \"failure\"",
            ),
            (
                MINIMAL.replace("policy = \"no-policy-found\"", "policy = \"dane\""),
                "<string>",
            ),
            (
                MINIMAL.replace("name = \"mx.a.test\"", "name = \"mx.a.test\"\ncolour = 1"),
                "colour",
            ),
            (
                format!("{MINIMAL}\n[[host]]\nname = \"MX.a.test\""),
                "host mx.a.test is defined twice",
            ),
            (
                format!(
                    "{MINIMAL}\n[[host]]\nname = \"b.test\"\nipv6 = true\n[[host]]\nname = \
                     \"c.test\"\nipv6 = true"
                ),
                "hosts b.test and c.test both ask for IPv6",
            ),
            (
                MINIMAL.replace(
                    "[domain.expect]",
                    "[domain.policy]\nstatus = 2000\n[domain.expect]",
                ),
                "field `policy.status`",
            ),
        ];
        for (text, words) in cases {
            let err = Scenario::from_toml_str(&text).expect_err(words).to_string();
            assert!(err.contains(words), "expected {words:?} in: {err}");
        }
    }

    #[test]
    fn broken_resolvers_name_lab_domains_and_expect_no_sessions() {
        let resolver = |domains: &str, extra: &str| {
            format!(
                "{MINIMAL}\n[[resolver]]\nname = \"r\"\nabout = \"x\"\nbehaviour = \
                 \"strip-dnssec\"\ndomains = [{domains}]\n[resolver.expect]\ninconclusive = \
                 true\n{extra}"
            )
        };
        let s = Scenario::from_toml_str(&resolver("\"a.test\"", "")).expect("valid");
        assert_eq!(s.resolvers.len(), 1);
        assert_eq!(s.resolvers[0].behaviour, ResolverBehaviour::StripDnssec);
        assert_eq!(s.resolvers[0].domains[0].as_str(), "a.test");
        assert!(s.resolvers[0].expect.inconclusive);
        let err = Scenario::from_toml_str(&resolver("\"b.test\"", ""))
            .expect_err("not a lab domain")
            .to_string();
        assert!(
            err.contains("resolver r: b.test is not a lab domain"),
            "{err}"
        );
        let err = Scenario::from_toml_str(&resolver(
            "\"a.test\"",
            "sessions = [{ mx = \"mx.a.test\", policy = \"sts\", result = \"success\" }]",
        ))
        .expect_err("sessions")
        .to_string();
        assert!(err.contains("`expect.sessions` must be empty"), "{err}");
    }

    #[test]
    fn an_unreadable_file_names_the_file() {
        let err = Scenario::load(Path::new("/nonexistent/scenario.toml")).expect_err("no file");
        assert!(
            err.to_string().contains("/nonexistent/scenario.toml"),
            "{err}"
        );
    }

    #[test]
    fn content_type_none_sends_no_header() {
        let text = MINIMAL.replace(
            "[domain.expect]",
            "[domain.policy]\ncontent_type = \"none\"\nbody = \"x\"\n[domain.expect]",
        );
        let s = Scenario::from_toml_str(&text).expect("valid");
        let policy = s.domains[0].policy.as_ref().expect("a policy host");
        assert_eq!(policy.content_type, None);
        assert_eq!(policy.status, 200);
    }
}
