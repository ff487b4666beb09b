//! The scenario file's shape, as serde reads it; [`Checker`](super::check::Checker) turns it
//! into the public types.

use serde::Deserialize;

use mxprobe_core::evaluate::rua::Delivery;
use mxprobe_core::evaluate::verdict::Routing;
use mxprobe_core::finding::Severity;
use mxprobe_core::tlsrpt::{PolicyType, ResultType};

use super::{CertProfile, DomainDnssec, HostDnssec, ResolverBehaviour, SmtpBehaviour, TlsaProfile};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawScenario {
    #[serde(default)]
    pub(super) host: Vec<RawHost>,
    #[serde(default)]
    pub(super) domain: Vec<RawDomain>,
    #[serde(default)]
    pub(super) resolver: Vec<RawResolver>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawResolver {
    pub(super) name: String,
    pub(super) about: String,
    pub(super) behaviour: ResolverBehaviour,
    pub(super) domains: Vec<String>,
    pub(super) expect: RawExpect,
}

fn yes() -> bool {
    true
}

fn valid() -> CertProfile {
    CertProfile::Valid
}

fn starttls() -> SmtpBehaviour {
    SmtpBehaviour::Starttls
}

fn ok_status() -> u16 {
    200
}

fn text_plain() -> String {
    "text/plain".to_owned()
}

fn mx_routing() -> Routing {
    Routing::Mx
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHost {
    pub(super) name: String,
    #[serde(default = "yes")]
    pub(super) ipv4: bool,
    #[serde(default)]
    pub(super) ipv6: bool,
    #[serde(default = "valid")]
    pub(super) certificate: CertProfile,
    #[serde(default = "starttls")]
    pub(super) smtp: SmtpBehaviour,
    #[serde(default)]
    pub(super) tlsa: Vec<TlsaProfile>,
    #[serde(default)]
    pub(super) dnssec: HostDnssec,
    #[serde(default)]
    pub(super) aliases: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDomain {
    pub(super) name: String,
    pub(super) about: String,
    #[serde(default)]
    pub(super) mx: Vec<String>,
    #[serde(default)]
    pub(super) sts_txt: Vec<String>,
    #[serde(default)]
    pub(super) tlsrpt_txt: Vec<String>,
    pub(super) policy: Option<RawPolicy>,
    pub(super) report_endpoint: Option<RawReportEndpoint>,
    #[serde(default)]
    pub(super) dnssec: DomainDnssec,
    pub(super) expect: RawExpect,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPolicy {
    #[serde(default = "ok_status")]
    pub(super) status: u16,
    /// `"none"` sends no Content-Type header.
    #[serde(default = "text_plain")]
    pub(super) content_type: String,
    pub(super) location: Option<String>,
    #[serde(default)]
    pub(super) body: String,
    #[serde(default)]
    pub(super) oversized: bool,
    #[serde(default = "valid")]
    pub(super) certificate: CertProfile,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawReportEndpoint {
    pub(super) host: String,
    #[serde(default = "valid")]
    pub(super) certificate: CertProfile,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawExpect {
    #[serde(default = "mx_routing")]
    pub(super) routing: Routing,
    pub(super) sts_failure: Option<ResultType>,
    #[serde(default)]
    pub(super) inconclusive: bool,
    #[serde(default)]
    pub(super) findings: Vec<String>,
    pub(super) worst: Option<Severity>,
    #[serde(default)]
    pub(super) sessions: Vec<RawSession>,
    #[serde(default)]
    pub(super) rua: Vec<Delivery>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub(super) enum RawResult {
    Success,
    Failure,
    Inconclusive,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSession {
    pub(super) mx: String,
    pub(super) policy: PolicyType,
    pub(super) result: RawResult,
    #[serde(default)]
    pub(super) failures: Vec<ResultType>,
}
