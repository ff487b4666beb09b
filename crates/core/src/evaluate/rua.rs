//! Whether TLS reports can arrive: each `rua` destination of the `_smtp._tls` record judged
//! as a reporting sender would meet it (RFC 8460 §5).
//!
//! - `mailto:`: the address's domain must receive mail: an MX RRset (or, without one, the
//!   implicit MX of RFC 5321 §5.1), not a null MX (RFC 7505), hosts with addresses and an SMTP
//!   server that answers. Reporters deliver despite TLS failures (RFC 8460 §5.3), so a broken
//!   certificate does not stop a report; a missing or failing STARTTLS only means the report
//!   travels in clear text.
//! - `https:`: the host must resolve and complete a TLS handshake. Reporters are allowed to
//!   ignore certificate errors (RFC 8460 §5.4) but need not: an invalid certificate loses the
//!   reports of those that check. A redirect is not followed by a reporter's POST; a status
//!   that says the URL does not exist is reported too.
//!
//! The facts are [`RuaFacts`] (observed by the scan); a destination of the record with no
//! facts (a candidate record in the gate, facts stored before) is "not checked". Pure.

use std::fmt;

use rustls_pki_types::CertificateDer;
use serde::{Deserialize, Serialize};

use crate::dns::{Lookup, Mx};
use crate::domain::DomainName;
use crate::facts::{
    DomainFacts, FetchOutcome, HttpsRuaFacts, MailtoRuaFacts, MxHostFacts, RuaFacts,
};
use crate::finding::{Code, Finding, Severity, Subject};
use crate::smtp::{Phase, SmtpOutcome};
use crate::tls::cert::judge_for_host;
use crate::tlsrpt::record::{Rua, RuaKind, SizeLimit};

use super::EvalOptions;

/// Whether reports can reach one destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Delivery {
    /// Mail: an MX host answers and completes STARTTLS.
    DeliverableTls,
    /// Mail: an MX host answers, but no STARTTLS completes: reports arrive in clear text.
    DeliverableNoTls,
    /// Mail: the MX hosts resolve, but SMTP was not probed (`--no-smtp`).
    Resolves,
    /// HTTPS: the endpoint answers over TLS with a valid certificate.
    Reachable,
    /// HTTPS: the endpoint answers, but with a certificate reporters that check reject.
    CertificateInvalid,
    /// HTTPS: the endpoint answers with a redirect or a status saying it is not there.
    WrongAnswer,
    /// No report can arrive.
    Undeliverable,
    /// The checks could not tell (DNS failure, timeout, busy server).
    Unknown,
    /// Not checked (no facts for this destination).
    NotChecked,
}

impl Delivery {
    /// The words shown after the destination in the text output.
    pub const fn words(self) -> &'static str {
        match self {
            Self::DeliverableTls => "deliverable over TLS",
            Self::DeliverableNoTls => "deliverable without TLS",
            Self::Resolves => "MX resolves, SMTP not probed",
            Self::Reachable => "reachable",
            Self::CertificateInvalid => "certificate invalid",
            Self::WrongAnswer => "wrong answer",
            Self::Undeliverable => "UNDELIVERABLE",
            Self::Unknown => "could not tell",
            Self::NotChecked => "not checked",
        }
    }
}

impl fmt::Display for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.words())
    }
}

/// The verdict on one destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuaVerdict {
    /// The URI as written.
    pub uri: String,
    /// Whether reports can arrive.
    pub delivery: Delivery,
    /// The hosts reports go to: the MX hosts of a `mailto:` domain in preference order, or
    /// the host of an `https:` URL.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub hosts: Vec<String>,
    /// A size limit written after a `mailto:` address (not defined by RFC 8460).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub size_limit: Option<SizeLimit>,
}

/// Judges every usable destination of the record (`usable`, in record order): one verdict
/// each, and the findings.
pub fn judge_destinations(
    facts: &DomainFacts,
    usable: &[Rua],
    opts: &EvalOptions<'_>,
    subject: &Subject,
    findings: &mut Vec<Finding>,
) -> Vec<RuaVerdict> {
    judge_observed(
        Some((&facts.mx, &facts.hosts)),
        &facts.rua,
        usable,
        opts,
        subject,
        findings,
    )
}

/// The MX RRset and hosts of the policy domain itself, for destinations in it.
pub type OwnMail<'a> = (&'a Lookup<Mx>, &'a [MxHostFacts]);

/// [`judge_destinations`] from the destination facts alone (`lint --live`): `own` is the
/// policy domain's mail routing, when a destination in it was observed as such.
pub fn judge_observed(
    own: Option<OwnMail<'_>>,
    observed: &[RuaFacts],
    usable: &[Rua],
    opts: &EvalOptions<'_>,
    subject: &Subject,
    findings: &mut Vec<Finding>,
) -> Vec<RuaVerdict> {
    let mut mine = Vec::new();
    let verdicts: Vec<RuaVerdict> = usable
        .iter()
        .map(|rua| {
            let observed = observed.iter().find(|r| r.uri() == rua.uri());
            let subject = subject.clone().at(format!("rua {}", rua.uri()));
            match (observed, rua.kind()) {
                (Some(RuaFacts::Mailto(m)), _) => judge_mailto(own, m, &subject, &mut mine),
                (Some(RuaFacts::Https(h)), _) => judge_https(h, opts, &subject, &mut mine),
                (None, RuaKind::Mailto { .. }) => RuaVerdict {
                    uri: rua.uri().to_owned(),
                    delivery: Delivery::NotChecked,
                    hosts: Vec::new(),
                    size_limit: rua.mailbox().and_then(|(_, _, limit)| limit),
                },
                (None, _) => RuaVerdict {
                    uri: rua.uri().to_owned(),
                    delivery: Delivery::NotChecked,
                    hosts: Vec::new(),
                    size_limit: None,
                },
            }
        })
        .collect();
    // RFC 8460 §3: a reporter may send to each destination, and a report counts as
    // delivered once one accepts it. With another destination that works, a dead one loses
    // nothing yet: a warning, naming the one that works.
    let working = verdicts.iter().find(|v| {
        matches!(
            v.delivery,
            Delivery::DeliverableTls | Delivery::DeliverableNoTls | Delivery::Reachable
        )
    });
    if let Some(working) = working {
        for f in &mut mine {
            if f.is(Code::TlsRptRuaUndeliverable) {
                f.severity = Severity::Warning;
                f.message = format!(
                    "{}; reports still reach {}, but reporters that pick this destination \
                     lose theirs",
                    f.message, working.uri
                );
            }
        }
    }
    findings.extend(mine);
    verdicts
}

fn undeliverable(subject: &Subject, uri: &str, why: String, fix: String) -> Finding {
    Finding::new(
        Code::TlsRptRuaUndeliverable,
        Severity::Error,
        subject.clone(),
        format!("no TLS report sent to {uri} can arrive: {why}"),
    )
    .with_fix(fix)
}

fn unchecked(subject: &Subject, uri: &str, why: String) -> Finding {
    Finding::new(
        Code::TlsRptRuaUnchecked,
        Severity::Notice,
        subject.clone(),
        format!("could not tell whether reports sent to {uri} arrive: {why}"),
    )
    .with_fix("check again later; if it persists, check the destination's DNS and servers")
    .could_not_test()
}

/// How one SMTP session bears on delivering a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Reach {
    /// The server refused mail outright (5yz greeting, EHLO and HELO refused).
    Refused,
    /// Could not tell.
    Unknown,
    /// Not probed.
    NotTested,
    /// A server answered but no TLS session completed.
    Plain,
    /// STARTTLS completed.
    Tls,
}

fn reach(outcome: &SmtpOutcome) -> Reach {
    match outcome {
        SmtpOutcome::Completed => Reach::Tls,
        SmtpOutcome::NotTested { .. } => Reach::NotTested,
        SmtpOutcome::StarttlsNotOffered
        | SmtpOutcome::StarttlsRejected { .. }
        | SmtpOutcome::TlsHandshakeFailed { .. }
        | SmtpOutcome::ProtocolError { .. } => Reach::Plain,
        SmtpOutcome::ClosedByServer { phase } | SmtpOutcome::ConnectionReset { phase }
            if matches!(
                phase,
                Phase::Starttls | Phase::TlsHandshake | Phase::EhloAfterTls | Phase::Quit
            ) =>
        {
            // The server spoke SMTP; a sender retries the report without STARTTLS.
            Reach::Plain
        }
        SmtpOutcome::Rejected { code, .. } if code / 100 == 5 => Reach::Refused,
        SmtpOutcome::EhloRejected { .. } => Reach::Refused,
        _ => Reach::Unknown,
    }
}

fn judge_mailto(
    own: Option<OwnMail<'_>>,
    m: &MailtoRuaFacts,
    subject: &Subject,
    findings: &mut Vec<Finding>,
) -> RuaVerdict {
    let uri = m.uri.as_str();
    let domain = m.domain.as_str();
    let (mx, hosts): (Option<&Lookup<Mx>>, &[MxHostFacts]) = match own {
        Some((mx, hosts)) if m.same_as_domain => (Some(mx), hosts),
        _ => (m.mx.as_ref(), &m.hosts),
    };
    let mut verdict = RuaVerdict {
        uri: uri.to_owned(),
        delivery: Delivery::Unknown,
        hosts: hosts.iter().map(|h| h.exchange.clone()).collect(),
        size_limit: m.size_limit,
    };
    if let Some(limit) = m.size_limit {
        findings.push(
            Finding::new(
                Code::TlsRptRuaSizeLimit,
                Severity::Notice,
                subject.clone(),
                format!(
                    "{uri} asks for reports of at most {limit} (a DMARC-style size limit, \
                     RFC 7489 §6.2); RFC 8460 defines no size limit, so most reporters ignore it \
                     and those that honour it drop larger reports"
                ),
            )
            .with_fix(format!(
                "write the address alone (mailto:{}) unless you need the limit",
                m.address
            )),
        );
    }
    let mut set = |delivery: Delivery, finding: Option<Finding>| {
        verdict.delivery = delivery;
        findings.extend(finding);
    };
    let fix_mx = format!(
        "publish an MX record for {domain} that points at a host accepting mail for \
         {}, or change the rua to a mailbox that receives mail",
        m.address
    );
    let Some(mx) = mx else {
        // An address literal (`a@[192.0.2.1]`) or a name mxprobe cannot look up: not
        // checked, and not condemned either.
        set(
            Delivery::Unknown,
            Some(unchecked(
                subject,
                uri,
                format!("{domain} is not a domain name whose MX records can be looked up"),
            )),
        );
        return verdict;
    };
    match mx {
        Lookup::NxDomain { .. } => {
            set(
                Delivery::Undeliverable,
                Some(undeliverable(
                    subject,
                    uri,
                    format!("the domain {domain} does not exist (NXDOMAIN)"),
                    fix_mx,
                )),
            );
            return verdict;
        }
        Lookup::Bogus { .. } => {
            set(
                Delivery::Undeliverable,
                Some(undeliverable(
                    subject,
                    uri,
                    format!(
                        "the MX records of {domain} fail DNSSEC validation ({}); validating \
                         senders cannot route mail there",
                        mx.failure().unwrap_or_default()
                    ),
                    format!("fix the DNSSEC signatures of {domain}"),
                )),
            );
            return verdict;
        }
        Lookup::Records { records, .. } if records.iter().any(Mx::is_null) => {
            set(
                Delivery::Undeliverable,
                Some(undeliverable(
                    subject,
                    uri,
                    format!("{domain} publishes a null MX (RFC 7505): it accepts no mail"),
                    fix_mx,
                )),
            );
            return verdict;
        }
        other if !other.is_definite() => {
            set(
                Delivery::Unknown,
                Some(unchecked(
                    subject,
                    uri,
                    format!(
                        "the MX lookup of {domain} failed: {}",
                        other.failure().unwrap_or_default()
                    ),
                )),
            );
            return verdict;
        }
        _ => {}
    }
    let addressed: Vec<&MxHostFacts> = hosts
        .iter()
        .filter(|h| {
            h.addresses
                .as_ref()
                .is_some_and(|a| !a.addresses().is_empty())
        })
        .collect();
    if addressed.is_empty() {
        let definite = hosts.iter().all(|h| {
            h.name.is_none()
                || h.addresses.as_ref().is_some_and(|a| {
                    // A bogus answer is definite for the validating senders it stops.
                    [&a.a, &a.aaaa]
                        .into_iter()
                        .flatten()
                        .all(|l| l.is_definite() || matches!(l, Lookup::Bogus { .. }))
                })
        });
        let names: Vec<&str> = hosts.iter().map(|h| h.exchange.as_str()).collect();
        let implicit = hosts.iter().any(|h| h.implicit);
        if definite {
            let why = if implicit {
                format!("{domain} has no MX record and no address of its own (no implicit MX)")
            } else {
                format!(
                    "no MX host of {domain} has a usable address ({}: none published, or \
                     failing DNSSEC validation)",
                    names.join(", ")
                )
            };
            set(
                Delivery::Undeliverable,
                Some(undeliverable(subject, uri, why, fix_mx)),
            );
        } else {
            set(
                Delivery::Unknown,
                Some(unchecked(
                    subject,
                    uri,
                    format!(
                        "the address lookups of the MX hosts of {domain} failed ({})",
                        names.join(", ")
                    ),
                )),
            );
        }
        return verdict;
    }
    let best = addressed
        .iter()
        .flat_map(|&h| h.sessions.iter().map(move |s| (h, reach(&s.outcome))))
        .max_by_key(|(_, r)| *r);
    match best {
        Some((_, Reach::Tls)) => set(Delivery::DeliverableTls, None),
        Some((host, Reach::Plain)) => set(
            Delivery::DeliverableNoTls,
            Some(
                Finding::new(
                    Code::TlsRptRuaNoTls,
                    Severity::Warning,
                    subject.clone(),
                    format!(
                        "reports sent to {uri} arrive, but in clear text: no MX host of \
                         {domain} completes STARTTLS (e.g. {}); anyone on the path reads \
                         which of your servers fail TLS",
                        host.exchange
                    ),
                )
                .with_fix(format!(
                    "offer STARTTLS with a working certificate on the MX hosts of {domain}"
                )),
            ),
        ),
        Some((_, Reach::NotTested)) => set(Delivery::Resolves, None),
        Some((_, Reach::Refused)) => set(
            Delivery::Undeliverable,
            Some(undeliverable(
                subject,
                uri,
                format!("every MX host of {domain} refuses mail (5yz before MAIL FROM)"),
                format!("make an MX host of {domain} accept mail for {}", m.address),
            )),
        ),
        Some((_, Reach::Unknown)) | None => set(
            Delivery::Unknown,
            Some(unchecked(
                subject,
                uri,
                format!("no MX host of {domain} could be reached (timeouts, busy, refused)"),
            )),
        ),
    }
    verdict
}

fn judge_https(
    h: &HttpsRuaFacts,
    opts: &EvalOptions<'_>,
    subject: &Subject,
    findings: &mut Vec<Finding>,
) -> RuaVerdict {
    let uri = h.uri.as_str();
    let mut verdict = RuaVerdict {
        uri: uri.to_owned(),
        delivery: Delivery::Unknown,
        hosts: vec![h.host.clone()],
        size_limit: None,
    };
    let mut set = |delivery: Delivery, finding: Option<Finding>| {
        verdict.delivery = delivery;
        findings.extend(finding);
    };
    let host = &h.host;
    let Some(response) = h.check.response() else {
        let outcomes: Vec<&FetchOutcome> = h.check.attempts.iter().map(|a| &a.outcome).collect();
        let words: Vec<String> = outcomes.iter().map(|o| outcome_words(o)).collect();
        let definite = !outcomes.is_empty()
            && outcomes.iter().all(|o| match o {
                FetchOutcome::DnsError { not_found, .. } => *not_found,
                FetchOutcome::ConnectError { .. } | FetchOutcome::TlsError { .. } => true,
                FetchOutcome::Timeout { .. } | FetchOutcome::Response(_) => false,
            });
        if definite {
            set(
                Delivery::Undeliverable,
                Some(undeliverable(
                    subject,
                    uri,
                    words.join("; "),
                    format!(
                        "serve the report endpoint over HTTPS at {host} (port 443 unless the URL \
                         names another), or change the rua"
                    ),
                )),
            );
        } else {
            set(
                Delivery::Unknown,
                Some(unchecked(subject, uri, words.join("; "))),
            );
        }
        return verdict;
    };
    let status = response.status;
    if (300..400).contains(&status) {
        let to = response.redirect_target();
        set(
            Delivery::WrongAnswer,
            Some(
                Finding::new(
                    Code::TlsRptRuaHttpsRedirect,
                    Severity::Warning,
                    subject.clone(),
                    format!(
                        "{uri} answers {status} (a redirect{to}); a reporter's POST is not \
                         redirected by most HTTP clients (and a 301/302 turns it into a GET), \
                         so reports are lost"
                    ),
                )
                .with_fix("put the final URL in the rua, so reports are posted there directly"),
            ),
        );
    } else if matches!(status, 404 | 410) || status >= 500 {
        set(
            Delivery::WrongAnswer,
            Some(
                Finding::new(
                    Code::TlsRptRuaHttpsStatus,
                    Severity::Warning,
                    subject.clone(),
                    format!(
                        "{uri} answers HTTP {status} to a HEAD request: the report endpoint \
                         looks {}",
                        if status >= 500 { "broken" } else { "absent" }
                    ),
                )
                .with_fix(format!(
                    "serve the report endpoint at {uri} (it must answer a POST of \
                     application/tlsrpt+gzip with 2xx, RFC 8460 §5.4)"
                )),
            ),
        );
    } else {
        set(Delivery::Reachable, None);
    }
    // The certificate, judged whatever the status: a reporter that checks it never gets
    // as far as the status.
    let chain: Vec<CertificateDer<'_>> = response
        .chain
        .iter()
        .map(|der| CertificateDer::from(der.as_slice()))
        .collect();
    if let Ok(name) = DomainName::parse(host) {
        let cert = judge_for_host(&chain, &name, opts.now, opts.anchors);
        if !cert.is_valid() {
            let problems: Vec<String> = cert.problems.iter().map(ToString::to_string).collect();
            if verdict.delivery == Delivery::Reachable {
                verdict.delivery = Delivery::CertificateInvalid;
            }
            findings.push(
                Finding::new(
                    Code::TlsRptRuaHttpsCert,
                    Severity::Warning,
                    subject.clone(),
                    format!(
                        "the certificate of {host} does not validate: {}. RFC 8460 §5.4 lets \
                         reporters ignore certificate errors, but reporters that verify it \
                         (every HTTPS client left at its defaults) drop the report",
                        problems.join("; ")
                    ),
                )
                .with_fix(format!(
                    "serve a certificate for {host} from a publicly trusted CA, with its full \
                     chain, and renew it before it expires"
                ))
                .with_reason_code(
                    cert.problems
                        .first()
                        .map(|p| p.reason_code())
                        .unwrap_or("certificate-invalid"),
                ),
            );
        }
    }
    verdict
}

fn outcome_words(outcome: &FetchOutcome) -> String {
    match outcome {
        FetchOutcome::DnsError { error, .. } => format!("the host does not resolve: {error}"),
        FetchOutcome::ConnectError { error } => format!("the connection failed: {error}"),
        FetchOutcome::Timeout { phase } => format!("timed out ({phase:?})").to_lowercase(),
        FetchOutcome::TlsError { error } => format!("the TLS handshake failed: {error}"),
        FetchOutcome::Response(r) => format!("HTTP {}", r.status),
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use time::OffsetDateTime;

    use super::*;
    use crate::dns::{AddressLookups, DnssecStatus, Txt};
    use crate::evaluate::policy_fetch::ContentTypeRule;
    use crate::facts::{FetchAttempt, HttpResponse, PolicyFetchFacts};
    use crate::smtp::SmtpFacts;
    use crate::tls::Anchors;

    fn name(s: &str) -> DomainName {
        DomainName::parse(s).unwrap()
    }

    fn host(exchange: &str, ips: &[&str], outcomes: Vec<SmtpOutcome>) -> MxHostFacts {
        let ips: Vec<std::net::IpAddr> = ips.iter().map(|i| i.parse().unwrap()).collect();
        MxHostFacts {
            exchange: exchange.to_owned(),
            name: Some(name(exchange)),
            preference: 10,
            implicit: false,
            addresses: Some(AddressLookups {
                a: Some(if ips.is_empty() {
                    Lookup::NxDomain {
                        dnssec: DnssecStatus::Insecure,
                    }
                } else {
                    Lookup::Records {
                        records: ips.clone(),
                        dnssec: DnssecStatus::Insecure,
                        cname_chain: Vec::new(),
                    }
                }),
                aaaa: None,
            }),
            tlsa: None,
            tlsa_base: None,
            sessions: ips
                .iter()
                .zip(outcomes)
                .map(|(ip, o)| SmtpFacts::new(name(exchange), SocketAddr::new(*ip, 25), o))
                .collect(),
        }
    }

    fn mx(records: &[(u16, &str)]) -> Lookup<Mx> {
        Lookup::Records {
            records: records
                .iter()
                .map(|(p, e)| Mx {
                    preference: *p,
                    exchange: (*e).to_owned(),
                })
                .collect(),
            dnssec: DnssecStatus::Insecure,
            cname_chain: Vec::new(),
        }
    }

    fn facts(record: &str, rua: Vec<RuaFacts>, own_hosts: Vec<MxHostFacts>) -> DomainFacts {
        DomainFacts {
            domain: name("example.com"),
            observed_at: OffsetDateTime::UNIX_EPOCH,
            mx: mx(&[(10, "mx.example.com")]),
            sts_txt: Lookup::NoData {
                dnssec: DnssecStatus::Insecure,
            },
            tlsrpt_txt: Lookup::Records {
                records: vec![Txt {
                    strings: vec![record.to_owned()],
                }],
                dnssec: DnssecStatus::Insecure,
                cname_chain: Vec::new(),
            },
            policy_fetch: None,
            hosts: own_hosts,
            resolver_problem: None,
            rua,
        }
    }

    fn mailto(
        uri: &str,
        domain: &str,
        mx: Option<Lookup<Mx>>,
        hosts: Vec<MxHostFacts>,
    ) -> RuaFacts {
        let rua = Rua::parse(uri).unwrap();
        let (address, _, size_limit) = rua.mailbox().unwrap();
        RuaFacts::Mailto(MailtoRuaFacts {
            uri: uri.to_owned(),
            address: address.to_owned(),
            domain: domain.to_owned(),
            size_limit,
            same_as_domain: mx.is_none(),
            mx,
            hosts,
        })
    }

    /// The options the tests judge with (no trust anchors, the Unix epoch as now).
    fn options(anchors: &Anchors) -> EvalOptions<'_> {
        EvalOptions {
            anchors,
            now: OffsetDateTime::UNIX_EPOCH,
            content_type: ContentTypeRule::Warn,
            expiry_warn_days: 21,
        }
    }

    /// The domain's own MX host, which takes mail over TLS.
    fn own_mx() -> Vec<MxHostFacts> {
        vec![host(
            "mx.example.com",
            &["192.0.2.9"],
            vec![SmtpOutcome::Completed],
        )]
    }

    fn judge(facts: &DomainFacts) -> (Vec<Delivery>, Vec<String>) {
        let anchors = Anchors::empty();
        let opts = options(&anchors);
        let records: Vec<String> = facts
            .tlsrpt_txt
            .records()
            .unwrap()
            .iter()
            .map(Txt::joined)
            .collect();
        let selection = crate::tlsrpt::record::select_tlsrpt(&records);
        let usable: Vec<Rua> = selection.record().unwrap().usable_rua().cloned().collect();
        let mut findings = Vec::new();
        let verdicts = judge_destinations(
            facts,
            &usable,
            &opts,
            &Subject::domain(&facts.domain),
            &mut findings,
        );
        (
            verdicts.iter().map(|v| v.delivery).collect(),
            findings.iter().map(|f| f.code.to_string()).collect(),
        )
    }

    #[test]
    fn mailto_destinations_by_what_their_domain_receives() {
        let uri = "mailto:r@reports.example";
        let record = format!("v=TLSRPTv1; rua={uri}");
        /// The MX lookup, the hosts, the delivery and the finding codes expected.
        type Case = (
            Option<Lookup<Mx>>,
            Vec<MxHostFacts>,
            Delivery,
            &'static [&'static str],
        );
        // The reports domain's one MX host, at preference 10, and that host's facts.
        let reports_mx = || Some(mx(&[(10, "mx.reports.example")]));
        let reports_host = |addresses: &[&str], outcomes: Vec<SmtpOutcome>| {
            vec![host("mx.reports.example", addresses, outcomes)]
        };
        let cases: Vec<Case> = vec![
            (
                Some(Lookup::NxDomain {
                    dnssec: DnssecStatus::Insecure,
                }),
                vec![],
                Delivery::Undeliverable,
                &["tlsrpt.rua.undeliverable"],
            ),
            (
                Some(mx(&[(0, ".")])),
                vec![],
                Delivery::Undeliverable,
                &["tlsrpt.rua.undeliverable"],
            ),
            (
                reports_mx(),
                reports_host(&[], vec![]),
                Delivery::Undeliverable,
                &["tlsrpt.rua.undeliverable"],
            ),
            (
                reports_mx(),
                reports_host(
                    &["192.0.2.1", "192.0.2.2"],
                    vec![SmtpOutcome::ConnectTimeout, SmtpOutcome::Completed],
                ),
                Delivery::DeliverableTls,
                &[],
            ),
            (
                reports_mx(),
                reports_host(&["192.0.2.1"], vec![SmtpOutcome::StarttlsNotOffered]),
                Delivery::DeliverableNoTls,
                &["tlsrpt.rua.no-tls"],
            ),
            (
                reports_mx(),
                reports_host(
                    &["192.0.2.1"],
                    vec![SmtpOutcome::Rejected {
                        phase: Phase::Greeting,
                        code: 554,
                        text: "no service".to_owned(),
                    }],
                ),
                Delivery::Undeliverable,
                &["tlsrpt.rua.undeliverable"],
            ),
            (
                reports_mx(),
                reports_host(&["192.0.2.1"], vec![SmtpOutcome::ConnectTimeout]),
                Delivery::Unknown,
                &["tlsrpt.rua.unchecked"],
            ),
            (
                reports_mx(),
                reports_host(
                    &["192.0.2.1"],
                    vec![SmtpOutcome::NotTested {
                        reason: "--no-smtp".to_owned(),
                    }],
                ),
                Delivery::Resolves,
                &[],
            ),
            (
                Some(Lookup::Timeout),
                vec![],
                Delivery::Unknown,
                &["tlsrpt.rua.unchecked"],
            ),
        ];
        for (lookup, hosts, delivery, codes) in cases {
            let f = facts(
                &record,
                vec![mailto(uri, "reports.example", lookup.clone(), hosts)],
                vec![],
            );
            assert_eq!(
                judge(&f),
                (
                    vec![delivery],
                    codes.iter().map(|c| (*c).to_owned()).collect()
                ),
                "{lookup:?}"
            );
        }
    }

    #[test]
    fn a_dead_destination_beside_a_working_one_is_a_warning() {
        let record = "v=TLSRPTv1; rua=mailto:a@dead.example,mailto:tlsrpt@example.com";
        let own = own_mx();
        let f = facts(
            record,
            vec![
                mailto(
                    "mailto:a@dead.example",
                    "dead.example",
                    Some(Lookup::NxDomain {
                        dnssec: DnssecStatus::Insecure,
                    }),
                    vec![],
                ),
                mailto("mailto:tlsrpt@example.com", "example.com", None, vec![]),
            ],
            own,
        );
        let anchors = Anchors::empty();
        let opts = options(&anchors);
        let usable: Vec<Rua> = crate::tlsrpt::record::TlsRptRecord::parse(record)
            .unwrap()
            .rua;
        let mut findings = Vec::new();
        let verdicts = judge_destinations(&f, &usable, &opts, &Subject::default(), &mut findings);
        assert_eq!(
            verdicts.iter().map(|v| v.delivery).collect::<Vec<_>>(),
            [Delivery::Undeliverable, Delivery::DeliverableTls]
        );
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].severity, Severity::Warning);
        assert!(
            findings[0]
                .message
                .ends_with("reports still reach mailto:tlsrpt@example.com, but reporters that pick this destination lose theirs"),
            "{}",
            findings[0].message
        );
    }

    #[test]
    fn a_domain_reporting_to_itself_is_judged_by_its_own_mx() {
        let record = "v=TLSRPTv1; rua=mailto:tlsrpt@example.com%2110m";
        let own = own_mx();
        let f = facts(
            record,
            vec![mailto(
                "mailto:tlsrpt@example.com%2110m",
                "example.com",
                None,
                vec![],
            )],
            own,
        );
        assert_eq!(
            judge(&f),
            (
                vec![Delivery::DeliverableTls],
                vec!["tlsrpt.rua.size-limit".to_owned()]
            )
        );
        // Without facts (a candidate record), the destination is "not checked", silently.
        let unobserved = facts("v=TLSRPTv1; rua=mailto:a@other.example", vec![], vec![]);
        assert_eq!(judge(&unobserved), (vec![Delivery::NotChecked], vec![]));
    }

    #[test]
    fn https_destinations_by_their_answer() {
        let uri = "https://r.example/tlsrpt";
        let record = format!("v=TLSRPTv1; rua={uri}");
        let response = |status: u16| {
            FetchOutcome::Response(HttpResponse {
                status,
                content_type: None,
                location: (status == 301).then(|| "https://elsewhere.example/".to_owned()),
                chain: Vec::new(),
                body: String::new(),
                body_not_utf8: false,
                body_truncated: false,
            })
        };
        let cases: Vec<(FetchOutcome, Delivery, &[&str])> = vec![
            (
                FetchOutcome::DnsError {
                    error: "NXDOMAIN".to_owned(),
                    not_found: true,
                },
                Delivery::Undeliverable,
                &["tlsrpt.rua.undeliverable"],
            ),
            (
                FetchOutcome::DnsError {
                    error: "SERVFAIL".to_owned(),
                    not_found: false,
                },
                Delivery::Unknown,
                &["tlsrpt.rua.unchecked"],
            ),
            (
                FetchOutcome::ConnectError {
                    error: "refused".to_owned(),
                },
                Delivery::Undeliverable,
                &["tlsrpt.rua.undeliverable"],
            ),
            // No chain recorded and no anchors: the certificate never validates here.
            (
                response(405),
                Delivery::CertificateInvalid,
                &["tlsrpt.rua.https-cert"],
            ),
            (
                response(301),
                Delivery::WrongAnswer,
                &["tlsrpt.rua.https-redirect", "tlsrpt.rua.https-cert"],
            ),
            (
                response(404),
                Delivery::WrongAnswer,
                &["tlsrpt.rua.https-status", "tlsrpt.rua.https-cert"],
            ),
        ];
        for (outcome, delivery, codes) in cases {
            let f = facts(
                &record,
                vec![RuaFacts::Https(HttpsRuaFacts {
                    uri: uri.to_owned(),
                    host: "r.example".to_owned(),
                    check: PolicyFetchFacts {
                        url: uri.to_owned(),
                        attempts: vec![FetchAttempt {
                            address: None,
                            outcome: outcome.clone(),
                        }],
                    },
                })],
                vec![],
            );
            assert_eq!(
                judge(&f),
                (
                    vec![delivery],
                    codes.iter().map(|c| (*c).to_owned()).collect()
                ),
                "{outcome:?}"
            );
        }
    }
}
