//! Why DNSSEC fails, in words an operator can act on: the broken link of a chain of trust
//! ([`BrokenLink`], found by [`find_broken_link`] as `delv` and DNSViz find it), the
//! Extended DNS Errors a resolver attached to its answer ([`ExtendedDnsError`], RFC 8914),
//! and what is wrong with a resolver that cannot serve a validated chain at all
//! ([`ResolverProblem`]).
//!
//! Pure: the records come in (the DNS adapter, [`super::hickory`], fetches them with the CD
//! bit set, so that a validating resolver hands over even bogus data), the verdict comes out,
//! and the time is a parameter. Signatures are checked with hickory-proto's DNSSEC code
//! (`Verifier::verify_rrsig`, `DS::covers`); nothing here does cryptography by hand.

use std::fmt;

use hickory_proto::dnssec::rdata::{DNSKEY, DNSSECRData, DS, RRSIG, SigInput};
use hickory_proto::dnssec::{PublicKey, TrustAnchors, Verifier};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

/// At most this many Extended DNS Errors are kept from one answer.
pub const MAX_EXTENDED_ERRORS: usize = 8;

/// At most this many bytes of an Extended DNS Error's EXTRA-TEXT are kept.
pub const MAX_EXTRA_TEXT: usize = 256;

/// The EDNS option code of an Extended DNS Error (RFC 8914 §2).
pub const EDE_OPTION_CODE: u16 = 15;

/// One Extended DNS Error (RFC 8914) that a resolver attached to its answer, e.g.
/// `{"code":7,"purpose":"Signature Expired"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtendedDnsError {
    /// The INFO-CODE (IANA "Extended DNS Error Codes").
    pub code: u16,
    /// The registered purpose of the code, when it is one mxprobe knows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    /// The EXTRA-TEXT, when the resolver sent one (at most [`MAX_EXTRA_TEXT`] bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

impl ExtendedDnsError {
    /// Reads the option data of one EDE option: a 16-bit INFO-CODE, then EXTRA-TEXT in
    /// UTF-8 (RFC 8914 §2). `None` when the data is shorter than the code.
    pub fn from_option_data(data: &[u8]) -> Option<Self> {
        let (code, text) = data.split_first_chunk::<2>()?;
        let code = u16::from_be_bytes(*code);
        let text = String::from_utf8_lossy(text);
        let mut text = text.trim_end_matches('\0').to_owned();
        if text.len() > MAX_EXTRA_TEXT {
            let mut end = MAX_EXTRA_TEXT;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
        }
        Some(Self {
            code,
            purpose: ede_purpose(code).map(str::to_owned),
            text: (!text.is_empty()).then_some(text),
        })
    }
}

impl fmt::Display for ExtendedDnsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EDE {}", self.code)?;
        if let Some(p) = &self.purpose {
            write!(f, " ({p})")?;
        }
        if let Some(t) = &self.text {
            write!(f, ": {t}")?;
        }
        Ok(())
    }
}

/// The purpose IANA registers for an Extended DNS Error code (RFC 8914 §4 and later).
pub fn ede_purpose(code: u16) -> Option<&'static str> {
    Some(match code {
        0 => "Other Error",
        1 => "Unsupported DNSKEY Algorithm",
        2 => "Unsupported DS Digest Type",
        3 => "Stale Answer",
        4 => "Forged Answer",
        5 => "DNSSEC Indeterminate",
        6 => "DNSSEC Bogus",
        7 => "Signature Expired",
        8 => "Signature Not Yet Valid",
        9 => "DNSKEY Missing",
        10 => "RRSIGs Missing",
        11 => "No Zone Key Bit Set",
        12 => "NSEC Missing",
        13 => "Cached Error",
        14 => "Not Ready",
        15 => "Blocked",
        16 => "Censored",
        17 => "Filtered",
        18 => "Prohibited",
        19 => "Stale NXDomain Answer",
        20 => "Not Authoritative",
        21 => "Not Supported",
        22 => "No Reachable Authority",
        23 => "Network Error",
        24 => "Invalid Data",
        25 => "Signature Expired before Valid",
        26 => "Too Early",
        27 => "Unsupported NSEC3 Iterations Value",
        28 => "Unable to conform to policy",
        29 => "Synthesized",
        30 => "Invalid Query Type",
        _ => return None,
    })
}

/// The link of a DNSSEC chain of trust that breaks it (RFC 4035 §5): what a validating
/// sender trips over, named with the zone that must fix it. Serialised with a `link` tag,
/// e.g. `{"link":"signatures-expired","zone":"bogus.test","rrset":"mx.bogus.test A",
/// "expired-at":"2025-05-01T00:00:00Z"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "link",
    rename_all = "kebab-case",
    rename_all_fields = "kebab-case"
)]
pub enum BrokenLink {
    /// Every RRSIG over the RRset has expired (RFC 4035 §5.3.1).
    SignaturesExpired {
        /// The zone that signs the RRset.
        zone: String,
        /// The RRset, as `owner TYPE`.
        rrset: String,
        /// When the latest of its signatures expired.
        #[serde(with = "time::serde::rfc3339")]
        expired_at: OffsetDateTime,
    },
    /// Every RRSIG over the RRset starts in the future (RFC 4035 §5.3.1).
    SignaturesNotYetValid {
        /// The zone that signs the RRset.
        zone: String,
        /// The RRset, as `owner TYPE`.
        rrset: String,
        /// When the earliest of its signatures becomes valid.
        #[serde(with = "time::serde::rfc3339")]
        valid_from: OffsetDateTime,
    },
    /// The parent's DS records match none of the zone's DNSKEYs (RFC 4035 §5.2).
    DsMismatch {
        /// The zone.
        zone: String,
        /// The key tags the DS records name.
        ds_key_tags: Vec<u16>,
        /// The key tags of the zone's DNSKEYs.
        dnskey_key_tags: Vec<u16>,
    },
    /// The parent has DS records for the zone, but the zone serves no DNSKEY.
    NoDnskey {
        /// The zone.
        zone: String,
    },
    /// An RRset of a signed zone comes without any RRSIG.
    MissingRrsig {
        /// The zone that should sign it.
        zone: String,
        /// The RRset, as `owner TYPE`.
        rrset: String,
    },
    /// The RRset's RRSIGs were made by keys that are not in the zone's DNSKEY set.
    UnknownKey {
        /// The zone.
        zone: String,
        /// The RRset, as `owner TYPE`.
        rrset: String,
        /// The key tags the RRSIGs name.
        key_tags: Vec<u16>,
    },
    /// An RRSIG within its validity window does not verify with the zone's key.
    BadSignature {
        /// The zone.
        zone: String,
        /// The RRset, as `owner TYPE`.
        rrset: String,
    },
    /// No DNSKEY of the root zone is a configured trust anchor.
    UntrustedRoot,
}

impl BrokenLink {
    /// The zone whose operator must act (`"."` for the root).
    pub fn zone(&self) -> &str {
        match self {
            Self::SignaturesExpired { zone, .. }
            | Self::SignaturesNotYetValid { zone, .. }
            | Self::DsMismatch { zone, .. }
            | Self::NoDnskey { zone }
            | Self::MissingRrsig { zone, .. }
            | Self::UnknownKey { zone, .. }
            | Self::BadSignature { zone, .. } => zone,
            Self::UntrustedRoot => ".",
        }
    }

    /// A short stable code for reports (RFC 8460 `failure-reason-code`).
    pub fn reason_code(&self) -> &'static str {
        match self {
            Self::SignaturesExpired { .. } => "rrsig-expired",
            Self::SignaturesNotYetValid { .. } => "rrsig-not-yet-valid",
            Self::DsMismatch { .. } => "ds-mismatch",
            Self::NoDnskey { .. } => "dnskey-missing",
            Self::MissingRrsig { .. } => "rrsig-missing",
            Self::UnknownKey { .. } => "rrsig-unknown-key",
            Self::BadSignature { .. } => "rrsig-invalid",
            Self::UntrustedRoot => "root-key-untrusted",
        }
    }

    /// What the zone's operator should change.
    pub fn fix(&self) -> String {
        match self {
            Self::SignaturesExpired {
                zone, expired_at, ..
            } => format!(
                "re-sign the zone {zone}: its RRSIGs expired at {}; make sure the signer re-signs \
                 it automatically before signatures expire",
                rfc3339(*expired_at)
            ),
            Self::SignaturesNotYetValid { zone, .. } => format!(
                "re-sign the zone {zone} with an inception time in the past, and check the \
                 signer's clock"
            ),
            Self::DsMismatch {
                zone, ds_key_tags, ..
            } => format!(
                "publish at the parent of {zone} (the registrar) the DS record of the zone's \
                 current key-signing key, and remove the stale DS record(s) (key tag {})",
                tags(ds_key_tags)
            ),
            Self::NoDnskey { zone } => format!(
                "serve the DNSKEY records of {zone} from all its name servers, or remove its DS \
                 records at the parent to make it unsigned"
            ),
            Self::MissingRrsig { zone, rrset } => {
                format!("re-sign the zone {zone}: {rrset} is served without a signature")
            }
            Self::UnknownKey { zone, .. } => format!(
                "re-sign the zone {zone} with a key published in its DNSKEY set, or publish the \
                 key that made these signatures"
            ),
            Self::BadSignature { zone, rrset } => format!(
                "re-sign the zone {zone}: the signature over {rrset} does not match the data \
                 (changed after signing, or corrupted)"
            ),
            Self::UntrustedRoot => {
                "check the DNSSEC trust anchor (--trust-anchor): it must hold the root zone's \
                 current key"
                    .to_owned()
            }
        }
    }
}

impl fmt::Display for BrokenLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SignaturesExpired {
                zone,
                rrset,
                expired_at,
            } => write!(
                f,
                "the RRSIGs of zone {zone} over {rrset} expired at {}",
                rfc3339(*expired_at)
            ),
            Self::SignaturesNotYetValid {
                zone,
                rrset,
                valid_from,
            } => write!(
                f,
                "the RRSIGs of zone {zone} over {rrset} are not valid before {}",
                rfc3339(*valid_from)
            ),
            Self::DsMismatch {
                zone,
                ds_key_tags,
                dnskey_key_tags,
            } => write!(
                f,
                "the DS record(s) of zone {zone} in its parent (key tag {}) match none of its \
                 DNSKEYs (key tag {})",
                tags(ds_key_tags),
                tags(dnskey_key_tags)
            ),
            Self::NoDnskey { zone } => write!(
                f,
                "zone {zone} has DS records in its parent but serves no DNSKEY records"
            ),
            Self::MissingRrsig { zone, rrset } => {
                write!(f, "{rrset} in the signed zone {zone} has no RRSIG")
            }
            Self::UnknownKey {
                zone,
                rrset,
                key_tags,
            } => write!(
                f,
                "{rrset} in zone {zone} is signed only by keys that are not in the zone's DNSKEY \
                 set (key tag {})",
                tags(key_tags)
            ),
            Self::BadSignature { zone, rrset } => {
                write!(f, "the RRSIG of zone {zone} over {rrset} does not verify")
            }
            Self::UntrustedRoot => f.write_str("no DNSKEY of the root zone is a trust anchor"),
        }
    }
}

fn tags(list: &[u16]) -> String {
    if list.is_empty() {
        return "none".to_owned();
    }
    list.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

/// A resolver that cannot serve a validated chain of trust at all: an environment problem,
/// never the scanned domain's (nothing it answers can be judged).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolverProblem {
    /// The resolver(s) asked, e.g. `127.0.0.53:53`.
    pub resolver: String,
    /// What is wrong with it.
    #[serde(flatten)]
    pub fault: ResolverFault,
}

impl ResolverProblem {
    /// What to do about it.
    pub fn advice(&self) -> &'static str {
        match self.fault {
            ResolverFault::Unreachable
            | ResolverFault::FailsForRoot { .. }
            | ResolverFault::NxdomainForRoot
            | ResolverFault::NoRootKeys
            | ResolverFault::NxdomainForTld { .. } => {
                "run mxprobe with a working resolver (--resolver IP[:PORT], for example a local \
                 Unbound), then scan again"
            }
            ResolverFault::StripsDnssec { .. } => {
                "use a resolver that passes DNSSEC records through (--resolver IP[:PORT], for \
                 example a local Unbound), or scan without DNSSEC with --dnssec off (DANE is \
                 then not checked)"
            }
            ResolverFault::CannotValidateRoot { .. } => {
                "check --trust-anchor (it must hold the root zone's current key), or use a \
                 resolver that serves the real root zone (--resolver IP[:PORT])"
            }
            ResolverFault::NoAdBit => {
                "--dnssec resolver needs a validating resolver: name one with --resolver \
                 IP[:PORT], or validate in mxprobe with --dnssec validate"
            }
        }
    }
}

impl fmt::Display for ResolverProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the DNS resolver {} ", self.resolver)?;
        match &self.fault {
            ResolverFault::Unreachable => f.write_str(
                "does not answer (no reply to a query for the root zone's DNSKEY records)",
            ),
            ResolverFault::FailsForRoot { rcode } => {
                write!(f, "answers {rcode} for the root zone's DNSKEY records")
            }
            ResolverFault::NxdomainForRoot => f.write_str(
                "answers NXDOMAIN for the root zone, which always exists: none of its answers \
                 can be trusted",
            ),
            ResolverFault::NoRootKeys => {
                f.write_str("answers the query for the root zone's DNSKEY records without a key")
            }
            ResolverFault::NxdomainForTld { tld } => write!(
                f,
                "answers NXDOMAIN for the top-level domain {tld} without the signed proof that a \
                 real denial carries"
            ),
            ResolverFault::StripsDnssec { rrset } => write!(
                f,
                "strips DNSSEC records: {rrset} came without its RRSIG, so no answer can be \
                 validated"
            ),
            ResolverFault::CannotValidateRoot { detail } => write!(
                f,
                "serves root zone keys that do not validate from the trust anchor ({detail})"
            ),
            ResolverFault::NoAdBit => f.write_str(
                "does not validate DNSSEC: it sets no AD bit on the root zone's DNSKEY records, \
                 and --dnssec resolver trusts that bit",
            ),
        }
    }
}

/// What is wrong with a resolver ([`ResolverProblem`]). Serialised with a `fault` tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "fault",
    rename_all = "kebab-case",
    rename_all_fields = "kebab-case"
)]
pub enum ResolverFault {
    /// No answer at all for the root zone's DNSKEY RRset.
    Unreachable,
    /// SERVFAIL, REFUSED or another error code for the root zone's DNSKEY RRset.
    FailsForRoot {
        /// The response code.
        rcode: String,
    },
    /// NXDOMAIN for the root zone.
    NxdomainForRoot,
    /// An answer for the root zone's DNSKEY RRset without any key.
    NoRootKeys,
    /// NXDOMAIN for a top-level domain, without the signed denial the root zone gives.
    NxdomainForTld {
        /// The TLD.
        tld: String,
    },
    /// DNSSEC records removed: an RRset of a signed zone without its RRSIG.
    StripsDnssec {
        /// The RRset that came unsigned, as `owner TYPE`.
        rrset: String,
    },
    /// The root zone's keys do not validate from the trust anchor.
    CannotValidateRoot {
        /// The broken link, in words.
        detail: String,
    },
    /// `--dnssec resolver`: no AD bit on the root zone's DNSKEY RRset.
    NoAdBit,
}

/// The DNSSEC records of one zone of a chain of trust, as fetched (with the CD bit, so
/// bogus data comes too): the answer sections, RRSIGs included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneLink {
    /// The zone's apex.
    pub zone: Name,
    /// The answer to `<zone> DS` (from the parent zone); empty for the root.
    pub ds: Vec<Record>,
    /// The answer to `<zone> DNSKEY`.
    pub dnskey: Vec<Record>,
}

/// The first link that breaks the chain of trust from the root to `data`, walking down
/// `chain` (root first, each zone the parent of the next, the last one the zone that signs
/// `data`); `None` when every link validates at `now` (or the chain is insecure: a zone
/// without DS records in its parent is unsigned, and nothing below it can be bogus).
///
/// `anchor`: the root keys to trust; `None` trusts the root zone's own keys (when a
/// validating resolver has vouched for the root already). `data`: the RRsets to check, with
/// their RRSIGs (the answer section, or the authority section of a denial); RRsets outside
/// the last zone are skipped.
pub fn find_broken_link(
    chain: &[ZoneLink],
    data: &[Record],
    anchor: Option<&TrustAnchors>,
    now: OffsetDateTime,
) -> Option<BrokenLink> {
    let (root, rest) = chain.split_first()?;
    if !root.zone.is_root() {
        return None;
    }
    let root_keys = zone_keys(&root.dnskey);
    if root_keys.is_empty() {
        return Some(BrokenLink::NoDnskey {
            zone: ".".to_owned(),
        });
    }
    let trusted: Vec<&DNSKEY> = match anchor {
        Some(anchor) => root_keys
            .iter()
            .copied()
            .filter(|k| anchor.contains(k.public_key()))
            .collect(),
        None => root_keys.clone(),
    };
    if trusted.is_empty() {
        return Some(BrokenLink::UntrustedRoot);
    }
    if let Err(link) = check_rrset(
        &root.zone,
        &root.zone,
        RecordType::DNSKEY,
        &root.dnskey,
        &trusted,
        now,
    ) {
        return Some(link);
    }
    let mut keys = root_keys;
    let mut parent = &root.zone;
    for link in rest {
        let ds: Vec<&DS> = link
            .ds
            .iter()
            .filter(|r| r.name == link.zone)
            .filter_map(|r| match &r.data {
                RData::DNSSEC(DNSSECRData::DS(ds)) => Some(ds),
                _ => None,
            })
            .collect();
        if ds.is_empty() {
            // An insecure delegation (RFC 4035 §5.2): nothing below is signed for senders.
            return None;
        }
        if let Err(broken) = check_rrset(parent, &link.zone, RecordType::DS, &link.ds, &keys, now) {
            return Some(broken);
        }
        let child_keys = zone_keys(&link.dnskey);
        if child_keys.is_empty() {
            return Some(BrokenLink::NoDnskey {
                zone: zone_text(&link.zone),
            });
        }
        let entry: Vec<&DNSKEY> = child_keys
            .iter()
            .copied()
            .filter(|k| ds.iter().any(|d| d.covers(&link.zone, k).unwrap_or(false)))
            .collect();
        if entry.is_empty() {
            return Some(BrokenLink::DsMismatch {
                zone: zone_text(&link.zone),
                ds_key_tags: sorted(ds.iter().map(|d| d.key_tag())),
                dnskey_key_tags: sorted(child_keys.iter().filter_map(|k| key_tag(k))),
            });
        }
        if let Err(broken) = check_rrset(
            &link.zone,
            &link.zone,
            RecordType::DNSKEY,
            &link.dnskey,
            &entry,
            now,
        ) {
            return Some(broken);
        }
        keys = child_keys;
        parent = &link.zone;
    }
    let mut seen: Vec<(&Name, RecordType)> = Vec::new();
    for record in data {
        let rtype = record.record_type();
        if rtype == RecordType::RRSIG
            || !parent.zone_of(&record.name)
            || seen.contains(&(&record.name, rtype))
        {
            continue;
        }
        seen.push((&record.name, rtype));
        if let Err(broken) = check_rrset(parent, &record.name, rtype, data, &keys, now) {
            return Some(broken);
        }
    }
    None
}

/// The zone keys (flag bit 7) of a DNSKEY answer, revoked ones left out (RFC 5011 §2.1).
fn zone_keys(records: &[Record]) -> Vec<&DNSKEY> {
    records
        .iter()
        .filter_map(|r| match &r.data {
            RData::DNSSEC(DNSSECRData::DNSKEY(k)) if k.zone_key() && !k.revoke() => Some(k),
            _ => None,
        })
        .collect()
}

fn key_tag(key: &DNSKEY) -> Option<u16> {
    key.calculate_key_tag().ok()
}

fn sorted(tags: impl Iterator<Item = u16>) -> Vec<u16> {
    let mut v: Vec<u16> = tags.collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// A zone name as mxprobe writes names: lower-case, no trailing dot, `"."` for the root.
fn zone_text(name: &Name) -> String {
    if name.is_root() {
        return ".".to_owned();
    }
    let text = name.to_ascii().to_ascii_lowercase();
    text.strip_suffix('.').map(str::to_owned).unwrap_or(text)
}

fn rrset_text(owner: &Name, rtype: RecordType) -> String {
    format!("{} {rtype}", zone_text(owner))
}

/// Where `now` falls in a signature's validity window (RFC 4034 §3.1.5: serial number
/// arithmetic on 32-bit seconds, so the times are read relative to `now`).
enum Window {
    Valid,
    Expired(OffsetDateTime),
    NotYet(OffsetDateTime),
}

fn window(input: &SigInput, now: OffsetDateTime) -> Window {
    let now32 = u32::try_from(now.unix_timestamp().rem_euclid(1 << 32)).unwrap_or(0);
    let relative = |t: u32| i64::from(i32::from_ne_bytes(t.wrapping_sub(now32).to_ne_bytes()));
    let to_expiry = relative(input.sig_expiration.get());
    let to_inception = relative(input.sig_inception.get());
    // Whole seconds, as the RRSIG states them.
    let at = |offset: i64| {
        OffsetDateTime::from_unix_timestamp(now.unix_timestamp() + offset)
            .unwrap_or_else(|_| now + Duration::seconds(offset))
    };
    if to_expiry < 0 {
        Window::Expired(at(to_expiry))
    } else if to_inception > 0 {
        Window::NotYet(at(to_inception))
    } else {
        Window::Valid
    }
}

/// Checks the RRset `owner`/`rtype` found in `records` against its RRSIGs there, made by
/// one of `keys` of `zone`. An absent RRset passes (nothing to check).
fn check_rrset(
    zone: &Name,
    owner: &Name,
    rtype: RecordType,
    records: &[Record],
    keys: &[&DNSKEY],
    now: OffsetDateTime,
) -> Result<(), BrokenLink> {
    let rrset: Vec<&Record> = records
        .iter()
        .filter(|r| r.name == *owner && r.record_type() == rtype)
        .collect();
    if rrset.is_empty() {
        return Ok(());
    }
    let sigs: Vec<&RRSIG> = records
        .iter()
        .filter(|r| r.name == *owner)
        .filter_map(|r| match &r.data {
            RData::DNSSEC(DNSSECRData::RRSIG(sig)) if sig.input().type_covered == rtype => {
                Some(sig)
            }
            _ => None,
        })
        .collect();
    let name = || (zone_text(zone), rrset_text(owner, rtype));
    if sigs.is_empty() {
        let (zone, rrset) = name();
        return Err(BrokenLink::MissingRrsig { zone, rrset });
    }
    let mut expired: Option<OffsetDateTime> = None;
    let mut not_yet: Option<OffsetDateTime> = None;
    let mut unknown: Vec<u16> = Vec::new();
    let mut known_key = false;
    for sig in sigs {
        let input = sig.input();
        let candidates: Vec<&DNSKEY> = keys
            .iter()
            .copied()
            .filter(|k| {
                key_tag(k) == Some(input.key_tag) && k.public_key().algorithm() == input.algorithm
            })
            .collect();
        if candidates.is_empty() {
            unknown.push(input.key_tag);
            continue;
        }
        known_key = true;
        match window(input, now) {
            Window::Expired(at) => expired = Some(expired.map_or(at, |e| e.max(at))),
            Window::NotYet(from) => not_yet = Some(not_yet.map_or(from, |n| n.min(from))),
            Window::Valid => {
                let verifies = candidates.iter().any(|k| {
                    k.verify_rrsig(owner, DNSClass::IN, sig, rrset.iter().copied())
                        .is_ok()
                });
                if verifies {
                    return Ok(());
                }
            }
        }
    }
    let (zone, rrset) = name();
    Err(if let Some(expired_at) = expired {
        BrokenLink::SignaturesExpired {
            zone,
            rrset,
            expired_at,
        }
    } else if let Some(valid_from) = not_yet {
        BrokenLink::SignaturesNotYetValid {
            zone,
            rrset,
            valid_from,
        }
    } else if !known_key {
        BrokenLink::UnknownKey {
            zone,
            rrset,
            key_tags: sorted(unknown.into_iter()),
        }
    } else {
        BrokenLink::BadSignature { zone, rrset }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use hickory_proto::dnssec::crypto::EcdsaSigningKey;
    use hickory_proto::dnssec::{Algorithm, DigestType, SigningKey, TBS};
    use hickory_proto::rr::SerialNumber;
    use hickory_proto::rr::rdata::A;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2025-06-01 12:00 UTC);

    struct Key {
        signing: EcdsaSigningKey,
        dnskey: DNSKEY,
    }

    fn key() -> Key {
        let pkcs8 = EcdsaSigningKey::generate_pkcs8(Algorithm::ECDSAP256SHA256).expect("key");
        let signing =
            EcdsaSigningKey::from_pkcs8(&pkcs8, Algorithm::ECDSAP256SHA256).expect("load key");
        let public = signing.to_public_key().expect("public key");
        // Flags 257: a zone key and secure entry point.
        let dnskey = DNSKEY::from_key(&public);
        Key { signing, dnskey }
    }

    fn name(text: &str) -> Name {
        Name::from_ascii(text).expect("name")
    }

    /// The RRSIG over `rrset` by `key` of `zone`, valid from `inception` to `expiration`.
    fn sign(
        rrset: &[Record],
        zone: &Name,
        key: &Key,
        inception: OffsetDateTime,
        expiration: OffsetDateTime,
    ) -> Record {
        let first = &rrset[0];
        let seconds = |t: OffsetDateTime| u32::try_from(t.unix_timestamp()).expect("fits");
        let input = SigInput {
            type_covered: first.record_type(),
            algorithm: Algorithm::ECDSAP256SHA256,
            num_labels: first.name.num_labels(),
            original_ttl: first.ttl,
            sig_expiration: SerialNumber::new(seconds(expiration)),
            sig_inception: SerialNumber::new(seconds(inception)),
            key_tag: key.dnskey.calculate_key_tag().expect("tag"),
            signer_name: zone.clone(),
        };
        let tbs = TBS::from_input(&first.name, DNSClass::IN, &input, rrset.iter()).expect("tbs");
        let sig = key.signing.sign(&tbs).expect("sign");
        Record::from_rdata(
            first.name.clone(),
            first.ttl,
            RData::DNSSEC(DNSSECRData::RRSIG(RRSIG::from_sig(input, sig))),
        )
    }

    fn valid(rrset: &[Record], zone: &Name, key: &Key) -> Vec<Record> {
        let mut out = rrset.to_vec();
        out.push(sign(
            rrset,
            zone,
            key,
            NOW - Duration::days(1),
            NOW + Duration::days(30),
        ));
        out
    }

    fn dnskey_rrset(zone: &Name, key: &Key) -> Vec<Record> {
        vec![Record::from_rdata(
            zone.clone(),
            300,
            RData::DNSSEC(DNSSECRData::DNSKEY(key.dnskey.clone())),
        )]
    }

    fn ds_rrset(zone: &Name, key: &Key) -> Vec<Record> {
        let ds = DS::from_key(key.dnskey.public_key(), zone, DigestType::SHA256).expect("ds");
        vec![Record::from_rdata(
            zone.clone(),
            300,
            RData::DNSSEC(DNSSECRData::DS(ds)),
        )]
    }

    fn a_rrset(owner: &Name) -> Vec<Record> {
        vec![Record::from_rdata(
            owner.clone(),
            300,
            RData::A(A::new(192, 0, 2, 1)),
        )]
    }

    /// A root, `test` and `bogus.test`, each signed by its own key, every link valid; and
    /// the keys, for tests to break one link.
    struct Hierarchy {
        keys: [Key; 3],
        names: [Name; 3],
    }

    impl Hierarchy {
        fn new() -> Self {
            Self {
                keys: [key(), key(), key()],
                names: [name("."), name("test."), name("bogus.test.")],
            }
        }

        fn anchor(&self) -> TrustAnchors {
            let mut anchors = TrustAnchors::empty();
            anchors.insert(self.keys[0].dnskey.public_key());
            anchors
        }

        fn chain(&self) -> Vec<ZoneLink> {
            (0..3)
                .map(|i| {
                    let zone = &self.names[i];
                    let ds = if i == 0 {
                        Vec::new()
                    } else {
                        valid(
                            &ds_rrset(zone, &self.keys[i]),
                            &self.names[i - 1],
                            &self.keys[i - 1],
                        )
                    };
                    ZoneLink {
                        zone: zone.clone(),
                        ds,
                        dnskey: valid(&dnskey_rrset(zone, &self.keys[i]), zone, &self.keys[i]),
                    }
                })
                .collect()
        }

        fn data(&self) -> Vec<Record> {
            valid(
                &a_rrset(&name("mx.bogus.test.")),
                &self.names[2],
                &self.keys[2],
            )
        }
    }

    #[test]
    fn a_sound_chain_has_no_broken_link() {
        let h = Hierarchy::new();
        let anchor = h.anchor();
        assert_eq!(
            find_broken_link(&h.chain(), &h.data(), Some(&anchor), NOW),
            None
        );
        // Trusting the root's own keys (a validating resolver vouched for it) works too.
        assert_eq!(find_broken_link(&h.chain(), &h.data(), None, NOW), None);
    }

    #[test]
    fn expired_signatures_name_the_zone_and_the_time() {
        let h = Hierarchy::new();
        let owner = name("mx.bogus.test.");
        let expired_at = NOW - Duration::days(2);
        let mut data = a_rrset(&owner);
        data.push(sign(
            &a_rrset(&owner),
            &h.names[2],
            &h.keys[2],
            NOW - Duration::days(32),
            expired_at,
        ));
        let link = find_broken_link(&h.chain(), &data, Some(&h.anchor()), NOW);
        assert_eq!(
            link,
            Some(BrokenLink::SignaturesExpired {
                zone: "bogus.test".into(),
                rrset: "mx.bogus.test A".into(),
                expired_at,
            })
        );
        let link = link.expect("broken");
        assert_eq!(link.reason_code(), "rrsig-expired");
        assert!(
            link.fix().contains(
                "re-sign the zone bogus.test: its RRSIGs expired at 2025-05-30T12:00:00Z"
            ),
            "{}",
            link.fix()
        );
    }

    #[test]
    fn signatures_from_the_future_are_not_yet_valid() {
        let h = Hierarchy::new();
        let mut chain = h.chain();
        let zone = &h.names[2];
        let valid_from = NOW + Duration::days(3);
        chain[2].dnskey = dnskey_rrset(zone, &h.keys[2]);
        chain[2].dnskey.push(sign(
            &dnskey_rrset(zone, &h.keys[2]),
            zone,
            &h.keys[2],
            valid_from,
            NOW + Duration::days(30),
        ));
        assert_eq!(
            find_broken_link(&chain, &h.data(), Some(&h.anchor()), NOW),
            Some(BrokenLink::SignaturesNotYetValid {
                zone: "bogus.test".into(),
                rrset: "bogus.test DNSKEY".into(),
                valid_from,
            })
        );
    }

    #[test]
    fn a_ds_for_another_key_is_a_ds_mismatch() {
        let h = Hierarchy::new();
        let mut chain = h.chain();
        let other = key();
        chain[2].ds = valid(&ds_rrset(&h.names[2], &other), &h.names[1], &h.keys[1]);
        let link = find_broken_link(&chain, &h.data(), Some(&h.anchor()), NOW);
        let expected_ds = other.dnskey.calculate_key_tag().expect("tag");
        let expected_key = h.keys[2].dnskey.calculate_key_tag().expect("tag");
        assert_eq!(
            link,
            Some(BrokenLink::DsMismatch {
                zone: "bogus.test".into(),
                ds_key_tags: vec![expected_ds],
                dnskey_key_tags: vec![expected_key],
            })
        );
        assert_eq!(link.expect("broken").reason_code(), "ds-mismatch");
    }

    #[test]
    fn missing_keys_signatures_and_bad_signatures() {
        let h = Hierarchy::new();
        let anchor = h.anchor();

        let mut chain = h.chain();
        chain[2].dnskey.clear();
        assert_eq!(
            find_broken_link(&chain, &h.data(), Some(&anchor), NOW),
            Some(BrokenLink::NoDnskey {
                zone: "bogus.test".into()
            })
        );

        let unsigned = a_rrset(&name("mx.bogus.test."));
        assert_eq!(
            find_broken_link(&h.chain(), &unsigned, Some(&anchor), NOW),
            Some(BrokenLink::MissingRrsig {
                zone: "bogus.test".into(),
                rrset: "mx.bogus.test A".into()
            })
        );

        // Signed over other data: the signature does not verify.
        let owner = name("mx.bogus.test.");
        let mut tampered = vec![Record::from_rdata(
            owner.clone(),
            300,
            RData::A(A::new(198, 51, 100, 7)),
        )];
        tampered.push(sign(
            &a_rrset(&owner),
            &h.names[2],
            &h.keys[2],
            NOW - Duration::days(1),
            NOW + Duration::days(1),
        ));
        assert_eq!(
            find_broken_link(&h.chain(), &tampered, Some(&anchor), NOW),
            Some(BrokenLink::BadSignature {
                zone: "bogus.test".into(),
                rrset: "mx.bogus.test A".into()
            })
        );

        // Signed by a key the zone does not publish.
        let stranger = key();
        let signed_by_stranger = valid(&a_rrset(&owner), &h.names[2], &stranger);
        assert!(matches!(
            find_broken_link(&h.chain(), &signed_by_stranger, Some(&anchor), NOW),
            Some(BrokenLink::UnknownKey { .. })
        ));
    }

    #[test]
    fn the_root_must_match_the_anchor() {
        let h = Hierarchy::new();
        let mut other = TrustAnchors::empty();
        other.insert(key().dnskey.public_key());
        assert_eq!(
            find_broken_link(&h.chain(), &h.data(), Some(&other), NOW),
            Some(BrokenLink::UntrustedRoot)
        );
    }

    #[test]
    fn an_unsigned_delegation_is_not_bogus() {
        let h = Hierarchy::new();
        let mut chain = h.chain();
        chain[2].ds.clear();
        assert_eq!(
            find_broken_link(&chain, &a_rrset(&name("mx.bogus.test.")), None, NOW),
            None
        );
    }

    #[test]
    fn extended_errors_are_read_and_bounded() {
        let mut data = 7u16.to_be_bytes().to_vec();
        data.extend_from_slice(b"signature expired\0");
        let ede = ExtendedDnsError::from_option_data(&data).expect("ede");
        assert_eq!(ede.code, 7);
        assert_eq!(ede.purpose.as_deref(), Some("Signature Expired"));
        assert_eq!(ede.text.as_deref(), Some("signature expired"));
        assert_eq!(
            ede.to_string(),
            "EDE 7 (Signature Expired): signature expired"
        );
        let long = [&9u16.to_be_bytes()[..], "é".repeat(400).as_bytes()].concat();
        let ede = ExtendedDnsError::from_option_data(&long).expect("ede");
        assert!(ede.text.expect("text").len() <= MAX_EXTRA_TEXT);
        assert_eq!(ExtendedDnsError::from_option_data(&[1]), None);
        let unknown = ExtendedDnsError::from_option_data(&60000u16.to_be_bytes()).expect("ede");
        assert_eq!((unknown.purpose, unknown.text), (None, None));
    }

    #[test]
    fn broken_links_serialise_with_a_tag() {
        let link = BrokenLink::SignaturesExpired {
            zone: "bogus.test".into(),
            rrset: "bogus.test DNSKEY".into(),
            expired_at: NOW,
        };
        let json = serde_json::to_string(&link).expect("json");
        assert_eq!(
            json,
            r#"{"link":"signatures-expired","zone":"bogus.test","rrset":"bogus.test DNSKEY","expired-at":"2025-06-01T12:00:00Z"}"#
        );
        assert_eq!(
            serde_json::from_str::<BrokenLink>(&json).expect("back"),
            link
        );
        let problem = ResolverProblem {
            resolver: "127.0.0.1:53".into(),
            fault: ResolverFault::NxdomainForTld { tld: "test".into() },
        };
        let json = serde_json::to_string(&problem).expect("json");
        assert_eq!(
            json,
            r#"{"resolver":"127.0.0.1:53","fault":"nxdomain-for-tld","tld":"test"}"#
        );
        assert_eq!(
            serde_json::from_str::<ResolverProblem>(&json).expect("back"),
            problem
        );
    }
}
