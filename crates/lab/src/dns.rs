//! The lab's authoritative DNS: one in-process hickory-server on 127.0.0.1 (UDP and TCP, an
//! ephemeral port) serving zones built from data given at start, with DNSSEC. It does
//! network I/O on loopback only.
//!
//! # Zones and the chain of trust
//! The lab always serves a root zone `.`, signed with a key generated at start; that key is
//! the trust anchor handed to the resolver ([`RunningDns::trust_anchor`]), which then
//! validates every answer from the lab root down, exactly as it would from the IANA root.
//! Every other zone is delegated from its closest enclosing lab zone: the parent gets an NS
//! record for the cut and, for a signed child, a DS record (SHA-256 of the child's key,
//! RFC 4509). What a zone's [`Signing`] says:
//! - [`Signing::Signed`]: a secure delegation; answers validate as secure, denials carry NSEC
//!   proofs (RFC 4035 §3.1.3) and validate as secure denials.
//! - [`Signing::Unsigned`]: no DS in the parent, whose NSEC at the cut proves the absence
//!   (RFC 4035 §5.2): provably insecure. A zone under an unsigned or bogus zone inherits it.
//! - [`Signing::BogusDs`]: signed, but the parent's DS matches a different key: every answer
//!   is bogus (RFC 4035 §5.2).
//! - [`Signing::BadSignatures`]: signed with a DS that matches, but every RRSIG is corrupted:
//!   bogus too (RFC 4035 §5.3).
//! - [`Signing::ExpiredSignatures`]: signed with a DS that matches, but every RRSIG expired
//!   three days before the lab started (RFC 4035 §5.3.1): bogus, the most common way a signed
//!   zone breaks.
//!
//! Each zone is signed with one ECDSA P-256 (algorithm 13) combined key (flags 257) by
//! hickory-server's in-memory zone handler, NSEC for denials.
//!
//! # Many domains
//! A delegated zone costs a key, a DS, an NS, an SOA, a DNSKEY and their signatures. For
//! thousands of lab domains, put the names that share a DNSSEC state inside one zone per
//! lab TLD (e.g. every secure domain as names under a signed `secure.test`, every insecure
//! one under an unsigned `insecure.test`): validation only needs the chain of zones, not one
//! zone per domain, and signing then costs one signature per RRset. Give a domain its own
//! zone only when its DNSSEC state differs from its neighbours' (a bogus one, say). Building
//! is cheap (zones and records are kept in maps), but answering is not: hickory-server's
//! in-memory zone handler walks a zone's records for lookups and NSEC denials, so a query
//! costs time in proportion to the zone's size. Keep zones to about a hundred domains each
//! (`lab::synthetic` does; see docs/benchmarks.md for the measurement).
//!
//! # Failures on purpose
//! Names registered with [`LabDnsBuilder::servfail`] (and every name below them) are
//! answered SERVFAIL; names registered with [`LabDnsBuilder::no_answer`] are never answered,
//! so the client times out. Every name is inside some lab zone (the root at least), so
//! anything not in the data gets a signed NXDOMAIN or NODATA.
//!
//! # Emulating a validating resolver
//! With [`LabDnsBuilder::act_as_validating_resolver`], the server answers as a validating
//! recursive resolver would (the path Postfix trusts): a query carrying DO or AD gets the AD
//! bit set when the answering zone's chain is secure, and SERVFAIL when it is bogus
//! (RFC 4035 §3.2.3, §5.5). This is what `DnssecMode::TrustResolverAd` is tested against.
//!
//! # Resolvers that are broken on purpose
//! [`RunningDns::start_broken`] serves the same zones on another port through a
//! [`BrokenResolver`]: one that answers NXDOMAIN to every query (a captive portal, a broken
//! forwarder), or one that strips RRSIG, NSEC and NSEC3 records from every answer (an old
//! forwarder or home router). Scans through them must blame the resolver, not the domains.
//!
//! In validating-resolver mode the SERVFAIL for bogus data carries an Extended DNS Error
//! (RFC 8914): 7 "Signature Expired" for a zone whose signatures expired, else 6 "DNSSEC
//! Bogus", as Unbound sends them.
//!
//! # Why DS queries need routing
//! A DS RRset lives in the parent zone, above the cut (RFC 4035 §3.1.4.1), but
//! hickory-server's catalog answers from the most specific zone, the child. The lab's request
//! handler therefore picks the zone itself — the parent for a DS query at a zone apex — and
//! hands the request to a one-zone catalog for that zone.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine as _;
use hickory_server::Server;
use hickory_server::dnssec::NxProofKind;
use hickory_server::net::NetError;
use hickory_server::net::runtime::{Time, TokioRuntimeProvider};
use hickory_server::proto::dnssec::TBS;
use hickory_server::proto::dnssec::crypto::EcdsaSigningKey;
use hickory_server::proto::dnssec::rdata::{DNSKEY, DNSSECRData, DS, RRSIG};
use hickory_server::proto::dnssec::{Algorithm, DigestType, DnssecSigner, PublicKey, SigningKey};
use hickory_server::proto::op::{
    Edns, Header, HeaderCounts, Message, MessageType, Metadata, ResponseCode,
};
use hickory_server::proto::rr::rdata::opt::EdnsOption;
use hickory_server::proto::rr::rdata::{A, AAAA, CNAME, MX, NS, SOA, TLSA, TXT};
use hickory_server::proto::rr::{LowerName, Name, RData, Record, RecordType, SerialNumber};
use hickory_server::proto::serialize::binary::{BinDecoder, BinEncodable, BinEncoder};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{
    AxfrPolicy, Catalog, MessageResponse, MessageResponseBuilder, Queries, ZoneHandler, ZoneType,
};
use tokio::net::{TcpListener, UdpSocket};

use mxprobe_core::dns::Tlsa;
use mxprobe_probe::resolver::{DnsConfig, DnssecMode, IpFamilies, TrustAnchor};

/// TTL of every lab record, and the SOA minimum (negative-answer TTL, RFC 2308 §5).
const TTL: u32 = 300;
/// How long the lab's signatures stay valid from start.
const SIGNATURE_VALIDITY: Duration = Duration::from_secs(30 * 24 * 3600);

/// How a lab zone is (or is not) signed; see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signing {
    /// Signed, with a matching DS in the parent: secure.
    Signed,
    /// Not signed, no DS in the parent: provably insecure.
    Unsigned,
    /// Signed, but the parent's DS names another key: bogus.
    BogusDs,
    /// Signed with a matching DS, but every signature corrupted: bogus.
    BadSignatures,
    /// Signed with a matching DS, but every signature expired three days before the lab
    /// started: bogus.
    ExpiredSignatures,
}

/// A resolver that misbehaves on purpose (see [`RunningDns::start_broken`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BrokenResolver {
    /// Answers NXDOMAIN (with nothing else) to every query.
    NxdomainToAll,
    /// Answers as the lab's server does, with every RRSIG, NSEC and NSEC3 record removed.
    StripDnssec,
}

/// How the lab's request handler answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// As the authoritative server of every lab zone.
    Authoritative,
    /// As a validating recursive resolver would (see the module documentation).
    ValidatingResolver,
    /// As a broken resolver would.
    Broken(BrokenResolver),
}

/// The data of one lab record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabRecord {
    /// An IPv4 address.
    A(Ipv4Addr),
    /// An IPv6 address.
    Aaaa(Ipv6Addr),
    /// A mail exchange; `exchange` `"."` makes the null MX of RFC 7505.
    Mx {
        /// The preference.
        preference: u16,
        /// The exchange host name.
        exchange: String,
    },
    /// A TXT record made of these character-strings (each at most 255 bytes).
    Txt(Vec<String>),
    /// An alias to another name.
    Cname(String),
    /// A TLSA record.
    Tlsa(Tlsa),
}

impl LabRecord {
    /// An A or AAAA record for `ip`.
    pub fn address(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Self::A(v4),
            IpAddr::V6(v6) => Self::Aaaa(v6),
        }
    }
}

/// Why the lab DNS could not be built or started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LabDnsError {
    /// A zone or record name is not a valid DNS name.
    #[error("{name:?} is not a valid DNS name: {reason}")]
    BadName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A TXT string longer than 255 bytes (RFC 1035 §3.3).
    #[error("a TXT string of {name} is {len} bytes; a character-string holds at most 255")]
    TxtTooLong {
        /// The record's owner name.
        name: String,
        /// The string's length.
        len: usize,
    },
    /// The zone could not be assembled (hickory refused a record).
    #[error("cannot build the zone {zone}: {reason}")]
    Zone {
        /// The zone.
        zone: String,
        /// What went wrong.
        reason: String,
    },
    /// Key generation or signing failed.
    #[error("cannot sign the zone {zone}: {reason}")]
    Signing {
        /// The zone.
        zone: String,
        /// What went wrong.
        reason: String,
    },
    /// The loopback sockets could not be bound.
    #[error("cannot listen for DNS on 127.0.0.1: {0}")]
    Bind(#[from] std::io::Error),
}

/// Builds the lab's zones; see the module documentation.
#[derive(Debug, Clone, Default)]
pub struct LabDnsBuilder {
    zones: BTreeMap<String, Signing>,
    records: Vec<(String, LabRecord)>,
    servfail: Vec<String>,
    no_answer: Vec<String>,
    validating_resolver: bool,
}

/// The lab's authoritative DNS server. Start with [`LabDns::builder`].
#[derive(Debug, Clone, Copy)]
pub struct LabDns;

impl LabDns {
    /// An empty lab: only the signed root zone.
    pub fn builder() -> LabDnsBuilder {
        LabDnsBuilder::default()
    }
}

impl LabDnsBuilder {
    /// Adds a zone (e.g. `"test"`, `"example.test"`), delegated from its closest enclosing
    /// lab zone. Adding a zone twice keeps the last signing mode.
    pub fn zone(mut self, origin: &str, signing: Signing) -> Self {
        self.zones.insert(normalise(origin), signing);
        self
    }

    /// Adds a record at `name` (absolute, without or with the trailing dot); it goes to the
    /// closest enclosing zone. Records of the same name and type form one RRset.
    pub fn record(mut self, name: &str, data: LabRecord) -> Self {
        self.records.push((normalise(name), data));
        self
    }

    /// Adds many records at once (cheaper to write than a chain of [`Self::record`]).
    pub fn records(mut self, records: impl IntoIterator<Item = (String, LabRecord)>) -> Self {
        self.records.extend(
            records
                .into_iter()
                .map(|(name, data)| (normalise(&name), data)),
        );
        self
    }

    /// Answers SERVFAIL for `name` and every name below it.
    pub fn servfail(mut self, name: &str) -> Self {
        self.servfail.push(normalise(name));
        self
    }

    /// Never answers queries for `name` and every name below it (the client times out).
    pub fn no_answer(mut self, name: &str) -> Self {
        self.no_answer.push(normalise(name));
        self
    }

    /// Answers like a validating resolver: AD on secure answers, SERVFAIL on bogus ones.
    pub fn act_as_validating_resolver(mut self, on: bool) -> Self {
        self.validating_resolver = on;
        self
    }

    /// Generates the keys, builds and signs every zone. CPU work only; no socket yet.
    pub fn build(self) -> Result<LabDnsZones, LabDnsError> {
        let mut specs: BTreeMap<String, ZoneSpec> = BTreeMap::new();
        specs.insert(String::new(), ZoneSpec::new(Name::root(), Signing::Signed));
        for (origin, signing) in &self.zones {
            if origin.is_empty() {
                continue; // the root is always signed: it holds the trust anchor
            }
            specs.insert(origin.clone(), ZoneSpec::new(parse_name(origin)?, *signing));
        }

        // Keys first: a parent's DS needs the child's key.
        let mut keys: HashMap<String, ZoneKey> = HashMap::new();
        for (origin, spec) in &specs {
            if spec.signing != Signing::Unsigned {
                keys.insert(origin.clone(), ZoneKey::generate(origin)?);
            }
        }

        // Delegations: NS (and DS for a signed child) in the closest enclosing zone.
        let origins: Vec<String> = specs.keys().filter(|o| !o.is_empty()).cloned().collect();
        for origin in &origins {
            let parent = closest_zone(&specs, parent_of(origin));
            let child_name = specs[origin].name.clone();
            let ds = match (specs[origin].signing, keys.get(origin)) {
                (Signing::Unsigned, _) | (_, None) => None,
                (Signing::BogusDs, Some(_)) => Some(ZoneKey::generate(origin)?.ds(&child_name)?),
                (
                    Signing::Signed | Signing::BadSignatures | Signing::ExpiredSignatures,
                    Some(key),
                ) => Some(key.ds(&child_name)?),
            };
            let parent_spec = specs
                .get_mut(&parent)
                .expect("the root zone is always present, so every zone has a parent");
            parent_spec.push(Record::from_rdata(
                child_name.clone(),
                TTL,
                RData::NS(NS(lab_ns_name())),
            ));
            if let Some(ds) = ds {
                parent_spec.push(Record::from_rdata(
                    child_name,
                    TTL,
                    RData::DNSSEC(DNSSECRData::DS(ds)),
                ));
            }
        }

        for (name, data) in self.records {
            let zone = closest_zone(&specs, Some(name.as_str()));
            let record = Record::from_rdata(parse_name(&name)?, TTL, rdata(&name, data)?);
            specs
                .get_mut(&zone)
                .expect("closest_zone returns a key of specs")
                .push(record);
        }

        // Trust: secure only along an unbroken chain of signed zones from the root.
        // Parents before children: by number of labels.
        let mut by_depth: Vec<&String> = specs.keys().collect();
        by_depth.sort_by_key(|o| {
            if o.is_empty() {
                0
            } else {
                o.split('.').count()
            }
        });
        let mut trust: HashMap<String, ZoneTrust> = HashMap::new();
        for origin in by_depth {
            let own = match specs[origin].signing {
                Signing::Signed => ZoneTrust::Secure,
                Signing::Unsigned => ZoneTrust::Insecure,
                Signing::BogusDs | Signing::BadSignatures => ZoneTrust::Bogus,
                Signing::ExpiredSignatures => ZoneTrust::Expired,
            };
            let parent = if origin.is_empty() {
                None
            } else {
                Some(closest_zone(&specs, parent_of(origin)))
            };
            let inherited = parent.map_or(ZoneTrust::Secure, |p| trust[&p]);
            trust.insert(origin.clone(), inherited.then(own));
        }

        let mut zones = HashMap::with_capacity(specs.len());
        let mut trust_anchor = String::new();
        for (origin, spec) in specs {
            let key = keys.remove(&origin);
            if origin.is_empty() {
                let root_key = key.as_ref().expect("the root zone is always signed");
                trust_anchor = root_key.trust_anchor_line()?;
            }
            let zone_trust = trust[&origin];
            let lower = LowerName::new(&spec.name);
            let handler = spec.into_handler(&origin, key)?;
            let mut catalog = Catalog::new();
            catalog.upsert(
                lower.clone(),
                vec![Arc::new(handler) as Arc<dyn ZoneHandler>],
            );
            zones.insert(
                lower,
                Zone {
                    catalog,
                    trust: zone_trust,
                },
            );
        }

        Ok(LabDnsZones {
            handler: LabHandler {
                zones: Arc::new(Zones {
                    zones,
                    servfail: names(&self.servfail)?,
                    no_answer: names(&self.no_answer)?,
                }),
                mode: if self.validating_resolver {
                    Mode::ValidatingResolver
                } else {
                    Mode::Authoritative
                },
                queries: Arc::new(AtomicU64::new(0)),
            },
            trust_anchor,
        })
    }
}

/// Built and signed zones, ready to serve.
pub struct LabDnsZones {
    handler: LabHandler,
    trust_anchor: String,
}

impl fmt::Debug for LabDnsZones {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LabDnsZones")
            .field("zones", &self.handler.zones.zones.len())
            .field("trust_anchor", &self.trust_anchor)
            .finish()
    }
}

impl LabDnsZones {
    /// Binds UDP and TCP on 127.0.0.1 (the same ephemeral port) and starts serving.
    pub async fn start(self) -> Result<RunningDns, LabDnsError> {
        serve(self.handler, self.trust_anchor).await
    }
}

async fn serve(handler: LabHandler, trust_anchor: String) -> Result<RunningDns, LabDnsError> {
    let (udp, tcp) = bind_pair().await?;
    let addr = udp.local_addr()?;
    let queries = handler.queries.clone();
    let zones = Arc::clone(&handler.zones);
    let mut server = Server::new(handler);
    server.register_socket(udp);
    server.register_listener(tcp, Duration::from_secs(5), 64);
    Ok(RunningDns {
        addr,
        trust_anchor,
        queries,
        zones,
        _server: server,
    })
}

/// A running lab DNS server. Dropping it stops the server.
pub struct RunningDns {
    /// The address it listens on, UDP and TCP.
    pub addr: SocketAddr,
    /// The lab root's DNSKEY in zone-file form (`. 300 IN DNSKEY 257 3 13 …`): the trust
    /// anchor to validate lab answers from (also what `--trust-anchor FILE` takes).
    pub trust_anchor: String,
    queries: Arc<AtomicU64>,
    zones: Arc<Zones>,
    _server: Server<LabHandler>,
}

impl fmt::Debug for RunningDns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunningDns")
            .field("addr", &self.addr)
            .field("queries", &self.query_count())
            .finish_non_exhaustive()
    }
}

impl RunningDns {
    /// How many queries the server has received (answered or not) since it started.
    pub fn query_count(&self) -> u64 {
        self.queries.load(Ordering::Relaxed)
    }

    /// Serves the same zones on a new loopback port as the broken resolver `broken`
    /// describes; its queries are counted apart.
    pub async fn start_broken(&self, broken: BrokenResolver) -> Result<Self, LabDnsError> {
        let handler = LabHandler {
            zones: Arc::clone(&self.zones),
            mode: Mode::Broken(broken),
            queries: Arc::new(AtomicU64::new(0)),
        };
        serve(handler, self.trust_anchor.clone()).await
    }

    /// A resolver configuration that asks only this server and validates from the lab root
    /// (both families, a 2 s timeout, 2 attempts).
    pub fn dns_config(&self) -> DnsConfig {
        DnsConfig {
            servers: Some(vec![self.addr]),
            dnssec: DnssecMode::Validate(TrustAnchor::Dnskeys(self.trust_anchor.clone())),
            timeout: Duration::from_secs(2),
            attempts: 2,
            families: IpFamilies::Both,
        }
    }
}

/// Binds a UDP socket on an ephemeral loopback port and TCP on the same port, retrying when
/// the TCP port happens to be taken.
async fn bind_pair() -> Result<(UdpSocket, TcpListener), LabDnsError> {
    let mut last = None;
    for _ in 0..16 {
        let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        match TcpListener::bind(udp.local_addr()?).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) => last = Some(e),
        }
    }
    Err(LabDnsError::Bind(last.unwrap_or_else(|| {
        std::io::Error::other("no free loopback port for UDP and TCP")
    })))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ZoneTrust {
    Secure,
    Insecure,
    Bogus,
    /// Bogus because the signatures expired (what a validating resolver's EDE says).
    Expired,
}

impl ZoneTrust {
    /// The trust of a zone whose own state is `own` under a parent with trust `self`: a
    /// bogus parent makes everything below bogus; an insecure parent cannot vouch for a
    /// key, so everything below is insecure (an island of trust without an anchor).
    fn then(self, own: Self) -> Self {
        match (self, own) {
            (Self::Bogus | Self::Expired, _) => self,
            (Self::Insecure, _) => Self::Insecure,
            (Self::Secure, own) => own,
        }
    }

    fn is_bogus(self) -> bool {
        matches!(self, Self::Bogus | Self::Expired)
    }
}

struct ZoneSpec {
    name: Name,
    signing: Signing,
    records: Vec<Record>,
}

impl ZoneSpec {
    fn new(name: Name, signing: Signing) -> Self {
        Self {
            name,
            signing,
            records: Vec::new(),
        }
    }

    fn push(&mut self, record: Record) {
        self.records.push(record);
    }

    fn into_handler(
        self,
        origin: &str,
        key: Option<ZoneKey>,
    ) -> Result<InMemoryZoneHandler<TokioRuntimeProvider>, LabDnsError> {
        let zone_error = |reason: String| LabDnsError::Zone {
            zone: display_origin(origin),
            reason,
        };
        let mut handler = InMemoryZoneHandler::<TokioRuntimeProvider>::empty(
            self.name.clone(),
            ZoneType::Primary,
            AxfrPolicy::Deny,
            key.as_ref().map(|_| NxProofKind::Nsec),
        );
        let soa = SOA::new(lab_ns_name(), hostmaster_name(), 1, 3600, 600, 86400, TTL);
        let apex = [
            Record::from_rdata(self.name.clone(), TTL, RData::SOA(soa)),
            Record::from_rdata(self.name.clone(), TTL, RData::NS(NS(lab_ns_name()))),
        ];
        for record in apex.into_iter().chain(self.records) {
            let shown = format!("{} {}", record.name, record.record_type());
            if !handler.upsert_mut(record, 1) {
                return Err(zone_error(format!("the record {shown} was refused")));
            }
        }
        if let Some(key) = key {
            let sign_error = |reason: String| LabDnsError::Signing {
                zone: display_origin(origin),
                reason,
            };
            handler
                .add_zone_signing_key_mut(key.signer(&self.name)?)
                .map_err(|e| sign_error(e.to_string()))?;
            handler
                .secure_zone_mut()
                .map_err(|e| sign_error(e.to_string()))?;
            match self.signing {
                Signing::BadSignatures => corrupt_signatures(&mut handler),
                Signing::ExpiredSignatures => {
                    let signer = key.signer(&self.name)?;
                    expire_signatures(&mut handler, &signer)
                        .map_err(|e| sign_error(e.to_string()))?;
                }
                Signing::Signed | Signing::Unsigned | Signing::BogusDs => {}
            }
        }
        Ok(handler)
    }
}

/// Signs every RRset of the zone again with a window that ended three days ago (inception
/// 33 days ago, by the wall clock the signer uses too), as a zone whose automatic re-signing
/// stopped looks. Three days, not one: validators allow some clock skew after expiry
/// (unbound up to a day), and every validator must find these expired.
fn expire_signatures(
    handler: &mut InMemoryZoneHandler<TokioRuntimeProvider>,
    signer: &DnssecSigner,
) -> Result<(), hickory_server::proto::ProtoError> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let at = |days: i64| SerialNumber::new(u32::try_from(now - days * 86_400).unwrap_or(0));
    for rrset in handler.records_get_mut().values_mut() {
        let rrset = Arc::make_mut(rrset);
        let mut expired = Vec::with_capacity(rrset.rrsigs().len());
        for record in rrset.rrsigs() {
            let RData::DNSSEC(DNSSECRData::RRSIG(rrsig)) = &record.data else {
                continue;
            };
            let mut input = rrsig.input().clone();
            input.sig_inception = at(33);
            input.sig_expiration = at(3);
            let tbs = TBS::from_input(
                rrset.name(),
                rrset.dns_class(),
                &input,
                rrset.records_without_rrsigs(),
            )?;
            let sig = signer.sign(&tbs)?;
            let mut record = record.clone();
            record.data = RData::DNSSEC(DNSSECRData::RRSIG(RRSIG::from_sig(input, sig)));
            expired.push(record);
        }
        rrset.set_rrsigs(expired);
    }
    Ok(())
}

/// Flips one bit in every RRSIG of the zone (RFC 4035 §5.3.3: the signature no longer
/// verifies).
fn corrupt_signatures(handler: &mut InMemoryZoneHandler<TokioRuntimeProvider>) {
    for rrset in handler.records_get_mut().values_mut() {
        let rrset = Arc::make_mut(rrset);
        let corrupted: Vec<Record> = rrset
            .rrsigs()
            .iter()
            .map(|record| {
                let mut record = record.clone();
                if let RData::DNSSEC(DNSSECRData::RRSIG(rrsig)) = &record.data {
                    let mut sig = rrsig.sig().to_vec();
                    if let Some(first) = sig.first_mut() {
                        *first ^= 0x01;
                    }
                    record.data = RData::DNSSEC(DNSSECRData::RRSIG(RRSIG::from_sig(
                        rrsig.input().clone(),
                        sig,
                    )));
                }
                record
            })
            .collect();
        rrset.set_rrsigs(corrupted);
    }
}

/// A zone's ECDSA P-256 key (algorithm 13, RFC 6605), kept as PKCS#8 so it can be loaded
/// once for the DS and once for the signer.
struct ZoneKey {
    pkcs8: Vec<u8>,
    origin: String,
}

impl ZoneKey {
    fn generate(origin: &str) -> Result<Self, LabDnsError> {
        let pkcs8 = EcdsaSigningKey::generate_pkcs8(Algorithm::ECDSAP256SHA256).map_err(|e| {
            LabDnsError::Signing {
                zone: display_origin(origin),
                reason: e.to_string(),
            }
        })?;
        Ok(Self {
            pkcs8: pkcs8.secret_pkcs8_der().to_vec(),
            origin: origin.to_owned(),
        })
    }

    fn signing_error(&self, reason: impl fmt::Display) -> LabDnsError {
        LabDnsError::Signing {
            zone: display_origin(&self.origin),
            reason: reason.to_string(),
        }
    }

    fn key(&self) -> Result<EcdsaSigningKey, LabDnsError> {
        let der = rustls_pki_types::PrivatePkcs8KeyDer::from(self.pkcs8.as_slice());
        EcdsaSigningKey::from_pkcs8(&der, Algorithm::ECDSAP256SHA256)
            .map_err(|e| self.signing_error(e))
    }

    fn dnskey(&self) -> Result<DNSKEY, LabDnsError> {
        let public = self
            .key()?
            .to_public_key()
            .map_err(|e| self.signing_error(e))?;
        Ok(DNSKEY::from_key(&public))
    }

    fn ds(&self, zone: &Name) -> Result<DS, LabDnsError> {
        let public = self
            .key()?
            .to_public_key()
            .map_err(|e| self.signing_error(e))?;
        DS::from_key(&public, zone, DigestType::SHA256).map_err(|e| self.signing_error(e))
    }

    fn signer(&self, zone: &Name) -> Result<DnssecSigner, LabDnsError> {
        Ok(DnssecSigner::new(
            self.dnskey()?,
            Box::new(self.key()?),
            zone.clone(),
            SIGNATURE_VALIDITY,
        ))
    }

    /// `. 300 IN DNSKEY 257 3 13 <base64>` (RFC 4034 §2.2 presentation form).
    fn trust_anchor_line(&self) -> Result<String, LabDnsError> {
        let dnskey = self.dnskey()?;
        let public = dnskey.public_key();
        Ok(format!(
            ". {TTL} IN DNSKEY {} 3 {} {}",
            dnskey.flags(),
            u8::from(public.algorithm()),
            base64::engine::general_purpose::STANDARD.encode(public.public_bytes())
        ))
    }
}

struct Zone {
    catalog: Catalog,
    trust: ZoneTrust,
}

/// The zones and failure names, shared by every server of one lab.
struct Zones {
    zones: HashMap<LowerName, Zone>,
    servfail: Vec<LowerName>,
    no_answer: Vec<LowerName>,
}

/// Routes each query to the zone that must answer it and applies the failure names.
struct LabHandler {
    zones: Arc<Zones>,
    mode: Mode,
    queries: Arc<AtomicU64>,
}

impl Zones {
    /// The zone that answers `name`/`record_type`: the closest enclosing zone, except that a
    /// DS query at a zone apex goes to the parent (RFC 4035 §3.1.4.1).
    fn zone_for(&self, name: &LowerName, record_type: RecordType) -> Option<&Zone> {
        let mut current = name.clone();
        if record_type == RecordType::DS && !current.is_root() && self.zones.contains_key(&current)
        {
            current = current.base_name();
        }
        loop {
            if let Some(zone) = self.zones.get(&current) {
                return Some(zone);
            }
            if current.is_root() {
                return None;
            }
            current = current.base_name();
        }
    }
}

fn at_or_below(list: &[LowerName], name: &LowerName) -> bool {
    list.iter().any(|n| n.zone_of(name))
}

#[async_trait::async_trait]
impl RequestHandler for LabHandler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        response_handle: R,
    ) -> ResponseInfo {
        self.queries.fetch_add(1, Ordering::Relaxed);
        let Ok(info) = request.request_info() else {
            return send_error(request, ResponseCode::FormErr, response_handle).await;
        };
        let name = info.query.name().clone();
        let record_type = info.query.query_type();
        if self.mode == Mode::Broken(BrokenResolver::NxdomainToAll) {
            return send_error(request, ResponseCode::NXDomain, response_handle).await;
        }
        let zones = &self.zones;
        if at_or_below(&zones.no_answer, &name) {
            return silent(request);
        }
        if at_or_below(&zones.servfail, &name) {
            return send_error(request, ResponseCode::ServFail, response_handle).await;
        }
        let Some(zone) = zones.zone_for(&name, record_type) else {
            return send_error(request, ResponseCode::Refused, response_handle).await;
        };
        match self.mode {
            Mode::Authoritative | Mode::Broken(BrokenResolver::NxdomainToAll) => {
                zone.catalog
                    .handle_request::<R, T>(request, response_handle)
                    .await
            }
            Mode::Broken(BrokenResolver::StripDnssec) => {
                let handle = Strip {
                    inner: response_handle,
                };
                zone.catalog
                    .handle_request::<Strip<R>, T>(request, handle)
                    .await
            }
            Mode::ValidatingResolver => {
                let asks_dnssec = request.metadata.authentic_data
                    || request.edns.as_ref().is_some_and(|e| e.flags().dnssec_ok);
                // RFC 4035 §5.5: a validating resolver answers SERVFAIL for bogus data unless
                // the client set CD; with an Extended DNS Error saying why (RFC 8914).
                if zone.trust.is_bogus() && !request.metadata.checking_disabled {
                    let ede = if zone.trust == ZoneTrust::Expired {
                        EDE_SIGNATURE_EXPIRED
                    } else {
                        EDE_DNSSEC_BOGUS
                    };
                    return send_servfail_with_ede(request, ede, response_handle).await;
                }
                let handle = SetAd {
                    inner: response_handle,
                    ad: asks_dnssec && zone.trust == ZoneTrust::Secure,
                };
                zone.catalog
                    .handle_request::<SetAd<R>, T>(request, handle)
                    .await
            }
        }
    }
}

/// RFC 8914 INFO-CODEs the lab's validating resolver sends with SERVFAIL.
const EDE_DNSSEC_BOGUS: u16 = 6;
const EDE_SIGNATURE_EXPIRED: u16 = 7;

async fn send_servfail_with_ede<R: ResponseHandler>(
    request: &Request,
    code: u16,
    mut response_handle: R,
) -> ResponseInfo {
    let mut edns = Edns::new();
    edns.options_mut().insert(EdnsOption::Unknown(
        mxprobe_core::dns::chain::EDE_OPTION_CODE,
        code.to_be_bytes().to_vec(),
    ));
    let response = MessageResponseBuilder::new(&request.queries, Some(&edns))
        .error_msg(&request.metadata, ResponseCode::ServFail);
    match response_handle.send_response(response).await {
        Ok(info) => info,
        Err(_) => silent(request),
    }
}

/// Removes every RRSIG, NSEC and NSEC3 record from a response before sending it, as a
/// resolver that strips DNSSEC does.
#[derive(Clone)]
struct Strip<R> {
    inner: R,
}

#[async_trait::async_trait]
impl<R: ResponseHandler> ResponseHandler for Strip<R> {
    async fn send_response<'a>(
        &mut self,
        response: MessageResponse<
            '_,
            'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
        >,
    ) -> Result<ResponseInfo, NetError> {
        let mut wire = Vec::with_capacity(512);
        let mut encoder = BinEncoder::new(&mut wire);
        response.destructive_emit(&mut encoder)?;
        let message = Message::from_vec(&wire)?;
        let keep = |records: Vec<Record>| -> Vec<Record> {
            records
                .into_iter()
                .filter(|r| {
                    !matches!(
                        r.record_type(),
                        RecordType::RRSIG | RecordType::NSEC | RecordType::NSEC3
                    )
                })
                .collect()
        };
        let answers = keep(message.answers);
        let authorities = keep(message.authorities);
        let additionals = keep(message.additionals);
        let mut asked = Vec::new();
        let mut encoder = BinEncoder::new(&mut asked);
        for query in &message.queries {
            query.emit(&mut encoder)?;
        }
        let queries = Queries::read(&mut BinDecoder::new(&asked), message.queries.len())?;
        let stripped = MessageResponseBuilder::new(&queries, message.edns.as_ref()).build(
            message.metadata,
            answers.iter(),
            authorities.iter(),
            std::iter::empty(),
            additionals.iter(),
        );
        self.inner.send_response(stripped).await
    }
}

/// Sets the AD bit of the response (and RA, as a recursive resolver would).
#[derive(Clone)]
struct SetAd<R> {
    inner: R,
    ad: bool,
}

#[async_trait::async_trait]
impl<R: ResponseHandler> ResponseHandler for SetAd<R> {
    async fn send_response<'a>(
        &mut self,
        mut response: MessageResponse<
            '_,
            'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
        >,
    ) -> Result<ResponseInfo, NetError> {
        let metadata = response.metadata_mut();
        metadata.authentic_data = self.ad;
        metadata.recursion_available = true;
        self.inner.send_response(response).await
    }
}

async fn send_error<R: ResponseHandler>(
    request: &Request,
    code: ResponseCode,
    mut response_handle: R,
) -> ResponseInfo {
    let edns = request.edns.as_ref().map(|_| Edns::new());
    let response = MessageResponseBuilder::new(&request.queries, edns.as_ref())
        .error_msg(&request.metadata, code);
    match response_handle.send_response(response).await {
        Ok(info) => info,
        Err(_) => silent(request),
    }
}

/// The record of a query left unanswered.
fn silent(request: &Request) -> ResponseInfo {
    let mut metadata = Metadata::new(
        request.metadata.id,
        MessageType::Response,
        request.metadata.op_code,
    );
    metadata.response_code = ResponseCode::ServFail;
    ResponseInfo::from(Header {
        metadata,
        counts: HeaderCounts::default(),
    })
}

/// Lower-case, no trailing dot; the root is the empty string.
fn normalise(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

fn display_origin(origin: &str) -> String {
    if origin.is_empty() {
        ".".to_owned()
    } else {
        origin.to_owned()
    }
}

fn parse_name(name: &str) -> Result<Name, LabDnsError> {
    Name::from_ascii(format!("{name}.")).map_err(|e| LabDnsError::BadName {
        name: name.to_owned(),
        reason: e.to_string(),
    })
}

fn names(list: &[String]) -> Result<Vec<LowerName>, LabDnsError> {
    list.iter()
        .map(|n| parse_name(n).map(|name| LowerName::new(&name)))
        .collect()
}

/// The name of the lab's (only) name server, used in SOA and NS records; never resolved.
fn lab_ns_name() -> Name {
    Name::from_ascii("ns.mxprobe-lab.").expect("a fixed, valid name")
}

fn hostmaster_name() -> Name {
    Name::from_ascii("hostmaster.mxprobe-lab.").expect("a fixed, valid name")
}

/// `name` without its first label; `None` for a single label (whose parent is the root,
/// handled by [`closest_zone`] falling back to `""`).
fn parent_of(name: &str) -> Option<&str> {
    name.split_once('.').map(|(_, rest)| rest)
}

/// The closest lab zone at or above `name` (`None` = the root); the root zone `""` is
/// always present, so there is always one.
fn closest_zone(specs: &BTreeMap<String, ZoneSpec>, name: Option<&str>) -> String {
    let mut current = name;
    while let Some(n) = current {
        if specs.contains_key(n) {
            return n.to_owned();
        }
        current = parent_of(n);
    }
    String::new()
}

fn rdata(name: &str, data: LabRecord) -> Result<RData, LabDnsError> {
    Ok(match data {
        LabRecord::A(v4) => RData::A(A(v4)),
        LabRecord::Aaaa(v6) => RData::AAAA(AAAA(v6)),
        LabRecord::Mx {
            preference,
            exchange,
        } => RData::MX(MX::new(preference, target_name(&exchange)?)),
        LabRecord::Txt(strings) => {
            if let Some(long) = strings.iter().find(|s| s.len() > 255) {
                return Err(LabDnsError::TxtTooLong {
                    name: name.to_owned(),
                    len: long.len(),
                });
            }
            RData::TXT(TXT::new(strings))
        }
        LabRecord::Cname(target) => RData::CNAME(CNAME(target_name(&target)?)),
        LabRecord::Tlsa(tlsa) => RData::TLSA(TLSA::new(
            tlsa.usage.into(),
            tlsa.selector.into(),
            tlsa.matching_type.into(),
            tlsa.data,
        )),
    })
}

/// A target name (MX exchange, CNAME target): `"."` is the root.
fn target_name(name: &str) -> Result<Name, LabDnsError> {
    if name == "." {
        Ok(Name::root())
    } else {
        parse_name(&normalise(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Whatever names a scenario file holds, building the lab returns a result (a zone
        /// or an error naming the bad input), never a panic.
        #[test]
        fn any_names_build_or_fail_cleanly(
            zone in "[a-z0-9.-]{0,20}|.{0,20}",
            name in "[a-z0-9_.-]{0,30}|.{0,30}",
            target in "[a-z0-9.-]{0,20}|.{0,20}|\\.",
        ) {
            let built = LabDns::builder()
                .zone(&zone, Signing::Signed)
                .record(&name, LabRecord::Cname(target.clone()))
                .record(&name, LabRecord::Mx { preference: 0, exchange: target })
                .build();
            if let Err(e) = built {
                prop_assert!(!e.to_string().is_empty());
            }
        }
    }

    fn specs(origins: &[&str]) -> BTreeMap<String, ZoneSpec> {
        origins
            .iter()
            .map(|o| {
                (
                    (*o).to_owned(),
                    ZoneSpec::new(Name::root(), Signing::Signed),
                )
            })
            .collect()
    }

    #[test]
    fn closest_zone_walks_up_to_the_root() {
        let specs = specs(&["", "test", "a.test"]);
        let cases = [
            (Some("x.a.test"), "a.test"),
            (Some("a.test"), "a.test"),
            (Some("b.test"), "test"),
            (Some("other"), ""),
            (None, ""),
        ];
        for (name, expected) in cases {
            assert_eq!(closest_zone(&specs, name), expected, "{name:?}");
        }
    }

    #[test]
    fn trust_is_inherited_down_the_chain() {
        use ZoneTrust::{Bogus, Insecure, Secure};
        let cases = [
            (Secure, Secure, Secure),
            (Secure, Insecure, Insecure),
            (Secure, Bogus, Bogus),
            (Insecure, Secure, Insecure),
            (Bogus, Secure, Bogus),
            (Bogus, Insecure, Bogus),
        ];
        for (parent, own, expected) in cases {
            assert_eq!(parent.then(own), expected, "{parent:?} {own:?}");
        }
    }

    #[test]
    fn the_trust_anchor_is_a_root_dnskey_line() {
        let zones = LabDns::builder().build().expect("build");
        let anchor = &zones.trust_anchor;
        assert!(anchor.starts_with(". 300 IN DNSKEY 257 3 13 "), "{anchor}");
        let anchors: hickory_server::proto::dnssec::TrustAnchors =
            anchor.parse().expect("hickory reads the anchor");
        assert_eq!(anchors.len(), 1);
    }

    #[test]
    fn long_txt_strings_and_bad_names_are_refused() {
        // A TXT string over 255 bytes is refused with its length.
        let err = LabDns::builder()
            .zone("test", Signing::Signed)
            .record("a.test", LabRecord::Txt(vec!["x".repeat(256)]))
            .build()
            .expect_err("too long");
        assert!(
            matches!(err, LabDnsError::TxtTooLong { len: 256, .. }),
            "{err}"
        );
        let err = LabDns::builder()
            .record("bad name.test", LabRecord::A(Ipv4Addr::LOCALHOST))
            .build()
            .expect_err("bad name");
        assert!(matches!(err, LabDnsError::BadName { .. }), "{err}");
    }
}
