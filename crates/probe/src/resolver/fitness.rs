//! Is the resolver fit to judge a name at all? Checked once for the root and once per
//! top-level domain.

use std::sync::Arc;

use hickory_resolver::proto::dnssec::rdata::DNSSECRData;
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};
use time::OffsetDateTime;

use mxprobe_core::dns::chain::{self, ResolverFault, ResolverProblem, ZoneLink};
use mxprobe_core::domain::DomainName;

use super::{ModeKind, Resolver};

/// At most this many top-level domains' fitness checks are kept; past that the map starts
/// again (a check costs two queries), so memory stays flat whatever the input.
const MAX_TLD_CHECKS: usize = 4096;

impl Resolver {
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

    pub(super) async fn root_problem(&self) -> Option<ResolverProblem> {
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
