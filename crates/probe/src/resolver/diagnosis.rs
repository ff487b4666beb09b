//! Why a lookup failed: the Extended DNS Errors of the failed response, then the chain of
//! DS and DNSKEY records fetched with CD and validated here.

use std::collections::HashMap;

use hickory_resolver::proto::dnssec::rdata::DNSSECRData;
use hickory_resolver::proto::op::{DnsResponse, Message, ResponseCode};
use hickory_resolver::proto::rr::rdata::opt::{EdnsCode, EdnsOption};
use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};
use time::OffsetDateTime;

use mxprobe_core::dns::Lookup;
use mxprobe_core::dns::chain::{
    self, EDE_OPTION_CODE, ExtendedDnsError, MAX_EXTENDED_ERRORS, ZoneLink,
};

use super::{ModeKind, Resolver};

/// The longest chain of zones the diagnosis walks up (a name has at most 127 labels; real
/// chains are a handful of zones).
const MAX_CHAIN_ZONES: usize = 32;

impl Resolver {
    /// Finds out why a lookup of `name`/`record_type` failed (`first`: SERVFAIL or bogus);
    /// see the module documentation. Returns the refined outcome.
    pub(super) async fn diagnose<T>(
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
}

/// The Extended DNS Errors (RFC 8914) of the failed responses (any code but NOERROR and
/// NXDOMAIN) that came through hickory's connections, by query, until the diagnosis of that
/// query takes them. Bounded: past [`MAX_LOGGED_FAILURES`] entries it starts again (a
/// diagnosis that finds nothing here asks the resolver again).
#[derive(Default)]
pub(super) struct FailureLog {
    entries: std::sync::Mutex<HashMap<(Name, RecordType), Vec<ExtendedDnsError>>>,
}

/// At most this many failed responses' Extended DNS Errors are kept for their diagnosis.
const MAX_LOGGED_FAILURES: usize = 1024;

impl FailureLog {
    pub(super) fn record(&self, response: &DnsResponse) {
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

    pub(super) fn take(&self, name: &Name, record_type: RecordType) -> Vec<ExtendedDnsError> {
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
