//! Checks the raw scenario data: every name, MX entry, TXT string and expectation.

use std::collections::HashSet;

use mxprobe_core::domain::DomainName;

use super::raw::{RawDomain, RawPolicy, RawResolver, RawResult, RawScenario};
use super::{
    DomainSpec, Expectation, ExpectedResult, HostSpec, MAX_IPV4_HOSTS, MAX_TXT_STRING, MxRecord,
    PolicyHostSpec, ReportEndpointSpec, ResolverSpec, Scenario, ScenarioError, SessionExpectation,
};

/// Checks the raw data and names the file in every error.
pub(super) struct Checker<'a> {
    pub(super) file: &'a str,
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

    pub(super) fn scenario(&self, raw: RawScenario) -> Result<Scenario, ScenarioError> {
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
                rua: raw.expect.rua,
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
        let report_endpoint = raw
            .report_endpoint
            .map(|r| {
                Ok::<_, ScenarioError>(ReportEndpointSpec {
                    host: self.name(&entry, "report_endpoint.host", &r.host)?,
                    certificate: r.certificate,
                })
            })
            .transpose()?;
        let mut spec = DomainSpec {
            name,
            about: raw.about,
            mx,
            sts_txt: raw.sts_txt,
            tlsrpt_txt: raw.tlsrpt_txt,
            policy,
            report_endpoint,
            dnssec: raw.dnssec,
            expect: Expectation {
                routing: raw.expect.routing,
                sts_failure: raw.expect.sts_failure,
                inconclusive: raw.expect.inconclusive,
                findings: raw.expect.findings,
                worst: raw.expect.worst,
                sessions: Vec::new(),
                rua: raw.expect.rua,
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
