//! Building and signing one lab zone: its records, its key and DS, its trust along the
//! chain, and the broken signatures some scenarios ask for.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use hickory_server::dnssec::NxProofKind;
use hickory_server::net::runtime::TokioRuntimeProvider;
use hickory_server::proto::dnssec::TBS;
use hickory_server::proto::dnssec::crypto::EcdsaSigningKey;
use hickory_server::proto::dnssec::rdata::{DNSKEY, DNSSECRData, DS, RRSIG};
use hickory_server::proto::dnssec::{Algorithm, DigestType, DnssecSigner, PublicKey, SigningKey};
use hickory_server::proto::rr::rdata::{A, AAAA, CNAME, MX, NS, SOA, TLSA, TXT};
use hickory_server::proto::rr::{LowerName, Name, RData, Record, SerialNumber};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, ZoneType};

use super::{LabDnsError, LabRecord, Signing, TTL, normalise};

/// How long the lab's signatures stay valid from start.
const SIGNATURE_VALIDITY: Duration = Duration::from_secs(30 * 24 * 3600);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ZoneTrust {
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
    pub(super) fn then(self, own: Self) -> Self {
        match (self, own) {
            (Self::Bogus | Self::Expired, _) => self,
            (Self::Insecure, _) => Self::Insecure,
            (Self::Secure, own) => own,
        }
    }

    pub(super) fn is_bogus(self) -> bool {
        matches!(self, Self::Bogus | Self::Expired)
    }
}

pub(super) struct ZoneSpec {
    pub(super) name: Name,
    pub(super) signing: Signing,
    records: Vec<Record>,
}

impl ZoneSpec {
    pub(super) fn new(name: Name, signing: Signing) -> Self {
        Self {
            name,
            signing,
            records: Vec::new(),
        }
    }

    pub(super) fn push(&mut self, record: Record) {
        self.records.push(record);
    }

    pub(super) fn into_handler(
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
pub(super) struct ZoneKey {
    pkcs8: Vec<u8>,
    origin: String,
}

impl ZoneKey {
    pub(super) fn generate(origin: &str) -> Result<Self, LabDnsError> {
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

    pub(super) fn ds(&self, zone: &Name) -> Result<DS, LabDnsError> {
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
    pub(super) fn trust_anchor_line(&self) -> Result<String, LabDnsError> {
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

fn display_origin(origin: &str) -> String {
    if origin.is_empty() {
        ".".to_owned()
    } else {
        origin.to_owned()
    }
}

pub(super) fn parse_name(name: &str) -> Result<Name, LabDnsError> {
    Name::from_ascii(format!("{name}.")).map_err(|e| LabDnsError::BadName {
        name: name.to_owned(),
        reason: e.to_string(),
    })
}

pub(super) fn names(list: &[String]) -> Result<Vec<LowerName>, LabDnsError> {
    list.iter()
        .map(|n| parse_name(n).map(|name| LowerName::new(&name)))
        .collect()
}

/// The name of the lab's (only) name server, used in SOA and NS records; never resolved.
pub(super) fn lab_ns_name() -> Name {
    Name::from_ascii("ns.mxprobe-lab.").expect("a fixed, valid name")
}

fn hostmaster_name() -> Name {
    Name::from_ascii("hostmaster.mxprobe-lab.").expect("a fixed, valid name")
}

/// `name` without its first label; `None` for a single label (whose parent is the root,
/// handled by [`closest_zone`] falling back to `""`).
pub(super) fn parent_of(name: &str) -> Option<&str> {
    name.split_once('.').map(|(_, rest)| rest)
}

/// The closest lab zone at or above `name` (`None` = the root); the root zone `""` is
/// always present, so there is always one.
pub(super) fn closest_zone(specs: &BTreeMap<String, ZoneSpec>, name: Option<&str>) -> String {
    let mut current = name;
    while let Some(n) = current {
        if specs.contains_key(n) {
            return n.to_owned();
        }
        current = parent_of(n);
    }
    String::new()
}

pub(super) fn rdata(name: &str, data: LabRecord) -> Result<RData, LabDnsError> {
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
}
