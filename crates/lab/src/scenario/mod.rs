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

mod check;
mod error;
mod expect;
mod raw;

use std::path::Path;

use serde::Deserialize;

use mxprobe_core::domain::DomainName;
use mxprobe_core::evaluate::rua::Delivery;
use mxprobe_core::evaluate::verdict::Routing;
use mxprobe_core::finding::Severity;
use mxprobe_core::tlsrpt::{PolicyType, ResultType};

use check::Checker;
pub use error::ScenarioError;
use raw::RawScenario;

/// The scenario compiled into the binary, so `mxprobe demo` works from any directory.
const EMBEDDED: &str = include_str!("../../../../fixtures/lab/scenario.toml");

/// The name used for [`EMBEDDED`] in error messages.
const EMBEDDED_NAME: &str = "fixtures/lab/scenario.toml (embedded)";

/// The IPv4 MX hosts get 127.0.0.10, 127.0.0.11, … 127.0.0.254: one address each.
pub const FIRST_HOST_OCTET: u8 = 10;

/// How many MX hosts can have an IPv4 address (one loopback address each).
pub const MAX_IPV4_HOSTS: usize = (u8::MAX - FIRST_HOST_OCTET) as usize;

/// The longest TXT character-string (RFC 1035 §3.3).
const MAX_TXT_STRING: usize = 255;
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
    /// Whether reports reach each usable `rua` destination, in record order (empty: not
    /// checked).
    pub rua: Vec<Delivery>,
}

/// A TLS-RPT report endpoint (an `https:` rua) on the lab HTTPS server: `HEAD`, `OPTIONS`
/// and `POST` on any path; a `POST` is answered 200 and logged with its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportEndpointSpec {
    /// The host name (the URL's host).
    pub host: DomainName,
    /// The certificate it presents.
    pub certificate: CertProfile,
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
    /// A TLS-RPT report endpoint served for the domain.
    pub report_endpoint: Option<ReportEndpointSpec>,
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
