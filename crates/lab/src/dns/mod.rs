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
//! (`lab::bulk_scenario` does; see docs/benchmarks.md for the measurement).
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
mod handler;
mod zone;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hickory_server::Server;
use hickory_server::proto::dnssec::rdata::DNSSECRData;
use hickory_server::proto::rr::rdata::NS;
use hickory_server::proto::rr::{LowerName, Name, RData, Record};
use hickory_server::zone_handler::{Catalog, ZoneHandler};
use tokio::net::{TcpListener, UdpSocket};

use mxprobe_core::dns::Tlsa;
use mxprobe_probe::resolver::{DnsConfig, DnssecMode, IpFamilies, TrustAnchor};

use handler::{LabHandler, Mode, Zone, Zones};
use zone::{
    ZoneKey, ZoneSpec, ZoneTrust, closest_zone, lab_ns_name, names, parent_of, parse_name, rdata,
};

/// TTL of every lab record, and the SOA minimum (negative-answer TTL, RFC 2308 §5).
const TTL: u32 = 300;

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

/// Lower-case, no trailing dot; the root is the empty string.
fn normalise(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
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
