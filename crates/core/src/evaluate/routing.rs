//! Mail routing as senders see it: the MX records (null MX, implicit MX, NXDOMAIN, a bogus
//! RRset) and the addresses of each MX host.

use std::net::IpAddr;

use super::verdict::{DnssecFailure, Routing};
use super::{bogus_words, lookup_failed};
use crate::dns::Lookup;
use crate::facts::{DomainFacts, MxHostFacts};
use crate::finding::{Code, Finding, Severity, Subject};
use crate::tlsrpt::{PolicyType, ResultType};

pub(super) fn routing(
    facts: &DomainFacts,
    subject: &Subject,
    findings: &mut Vec<Finding>,
    inconclusive: &mut bool,
    dnssec_failures: &mut Vec<DnssecFailure>,
) -> Routing {
    let (failed, bogus) = lookup_failed(
        "MX records",
        (Code::DnsMxFailed, Code::DnsMxBogus),
        &facts.mx,
        subject,
        findings,
        inconclusive,
    );
    if let Some(reason_code) = bogus {
        // RFC 7672 §2.2.1: DANE senders need a secure MX RRset; a bogus one is a DANE
        // failure for the whole domain.
        if let Some(f) = findings.last_mut() {
            f.result_type = Some(ResultType::DnssecInvalid);
            f.policy_type = Some(PolicyType::Tlsa);
        }
        dnssec_failures.push(DnssecFailure {
            policy_domain: facts.domain.clone(),
            mx: None,
            reason_code,
        });
    }
    if failed {
        return Routing::Unknown;
    }
    match &facts.mx {
        Lookup::NxDomain { .. } => {
            findings.push(
                Finding::new(
                    Code::MxNxdomain,
                    Severity::Error,
                    subject.clone(),
                    format!("{} does not exist in DNS (NXDOMAIN)", facts.domain),
                )
                .with_fix("check the spelling, or register and delegate the domain"),
            );
            Routing::NoSuchDomain
        }
        Lookup::NoData { .. } => {
            findings.push(
                Finding::new(
                    Code::MxImplicit,
                    Severity::Notice,
                    subject.clone(),
                    format!(
                        "{} has no MX records: senders deliver to the domain's own addresses \
                         (implicit MX, RFC 5321 §5.1)",
                        facts.domain
                    ),
                )
                .with_fix(format!(
                    "publish an MX record, or a null MX (\"0 .\") if {} receives no mail",
                    facts.domain
                )),
            );
            Routing::ImplicitMx
        }
        Lookup::Records { records, .. } => {
            if !records.iter().any(|m| m.exchange == ".") {
                return Routing::Mx;
            }
            if records.len() == 1 {
                if !records[0].is_null() {
                    findings.push(
                        Finding::new(
                            Code::MxNullPreference,
                            Severity::Notice,
                            subject.clone(),
                            format!(
                                "the null MX has preference {}; RFC 7505 §3 specifies 0",
                                records[0].preference
                            ),
                        )
                        .with_fix("publish the null MX as \"0 .\""),
                    );
                }
                findings.push(Finding::new(
                    Code::MxNull,
                    Severity::Notice,
                    subject.clone(),
                    format!(
                        "{} publishes a null MX (RFC 7505): it accepts no mail, and senders fail \
                         at once",
                        facts.domain
                    ),
                ));
                return Routing::NullMx;
            }
            findings.push(
                Finding::new(
                    Code::MxNullMixed,
                    Severity::Error,
                    subject.clone(),
                    "a null MX (\".\") is published beside other MX records; RFC 7505 §3 forbids \
                     it and senders may treat the domain as accepting no mail",
                )
                .with_fix("remove the \"0 .\" MX record, or all the others"),
            );
            Routing::Mx
        }
        _ => Routing::Unknown,
    }
}

pub(super) fn host_findings(
    host: &MxHostFacts,
    domain_subject: &Subject,
    findings: &mut Vec<Finding>,
    inconclusive: &mut bool,
    dnssec_failures: &mut Vec<DnssecFailure>,
) {
    let Some(name) = &host.name else {
        findings.push(
            Finding::new(
                Code::MxInvalidName,
                Severity::Error,
                domain_subject.clone().at(format!("MX {}", host.exchange)),
                format!(
                    "the MX target {:?} is not a host name (an IP address or malformed name); \
                     senders cannot use it",
                    host.exchange
                ),
            )
            .with_fix("point the MX record at a host name that has A/AAAA records"),
        );
        return;
    };
    let subject = domain_subject.clone().with_mx(name);
    let Some(addrs) = &host.addresses else {
        return;
    };
    let lookups: Vec<&Lookup<IpAddr>> = [&addrs.a, &addrs.aaaa].into_iter().flatten().collect();
    let alias = lookups.iter().find_map(|l| match l {
        Lookup::Records { cname_chain, .. } => cname_chain.last(),
        _ => None,
    });
    if let Some(target) = alias {
        findings.push(
            Finding::new(
                Code::MxCname,
                Severity::Warning,
                subject.clone(),
                format!(
                    "MX {name} is an alias (CNAME to {target}); RFC 2181 §10.3 and RFC 5321 \
                     §5.1 require the MX target to be a host name with addresses"
                ),
            )
            .with_fix(format!("point the MX record at {target} directly")),
        );
    }
    // RFC 7672 §2.1.1: a bogus answer is a failure, not a "could not tell": validating
    // senders treat the host as unreachable (and DANE senders report dnssec-invalid).
    if let Some(bogus) = lookups.iter().find(|l| matches!(l, Lookup::Bogus { .. })) {
        let (link, fix, reason) = bogus_words(*bogus);
        findings.push(
            Finding::new(
                Code::DnsMxAddressBogus,
                Severity::Error,
                subject.clone(),
                format!(
                    "the addresses of MX {name} fail DNSSEC validation: {link}; every \
                     validating sender treats {name} as unreachable and refuses to deliver mail \
                     there"
                ),
            )
            .with_fix(format!(
                "{fix}; until then every validating sender refuses mail to {name}"
            ))
            .with_result(PolicyType::Tlsa, ResultType::DnssecInvalid)
            .with_reason_code(reason.clone()),
        );
        dnssec_failures.push(DnssecFailure {
            policy_domain: name.clone(),
            mx: Some(name.clone()),
            reason_code: reason,
        });
    }
    let not_bogus = |l: &&&Lookup<IpAddr>| !matches!(l, Lookup::Bogus { .. });
    if !addrs.addresses().is_empty() {
        // One family answered, the other failed: the failed one was not probed, and its
        // DNSSEC status is unknown (could not tell). A bogus family is reported above.
        let failed: Vec<String> = lookups
            .iter()
            .filter(not_bogus)
            .filter_map(|l| l.failure())
            .collect();
        if !failed.is_empty() {
            *inconclusive = true;
            findings.push(
                Finding::new(
                    Code::DnsMxAddressPartial,
                    Severity::Warning,
                    subject.clone(),
                    format!(
                        "one address lookup of MX {name} failed ({}); the addresses it would \
                         have given were not probed",
                        failed.join("; ")
                    ),
                )
                .with_fix("check that the MX host's name servers answer A and AAAA queries")
                .could_not_test(),
            );
        }
    }
    if addrs.addresses().is_empty() {
        if lookups.iter().any(|l| matches!(l, Lookup::Bogus { .. })) {
            // Reported above: a definite failure.
        } else if lookups.iter().all(|l| l.is_definite()) {
            findings.push(
                Finding::new(
                    Code::MxUnresolvable,
                    Severity::Error,
                    subject,
                    format!("MX {name} has no A or AAAA records: senders cannot deliver to it"),
                )
                .with_fix(format!(
                    "publish addresses for {name}, or remove the MX record"
                )),
            );
        } else {
            *inconclusive = true;
            let mut why: Vec<String> = lookups.iter().filter_map(|l| l.failure()).collect();
            why.dedup();
            findings.push(
                Finding::new(
                    Code::DnsMxAddressFailed,
                    Severity::Warning,
                    subject,
                    format!(
                        "could not tell the addresses of MX {name}: {}",
                        why.join("; ")
                    ),
                )
                .with_fix("check that the MX host's name servers answer (and try again)")
                .could_not_test(),
            );
        }
    }
}
