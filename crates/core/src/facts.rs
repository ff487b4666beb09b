//! What the observe stage records: plain, serialisable data with no verdicts in it.
//!
//! [`DomainFacts`] is everything mxprobe saw for one domain: the DNS answers (with their
//! DNSSEC status), the policy fetch, and the SMTP dialogue at every address of every MX
//! host. The evaluate stage judges these facts; the same facts can be judged again later
//! (against a candidate policy, or at another time). Pure data: no I/O.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::dns::{AddressLookups, Lookup, Mx, ResolverProblem, Tlsa, Txt};
use crate::domain::DomainName;
use crate::smtp::SmtpFacts;

/// Everything seen for one domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainFacts {
    /// The domain (the RFC 8461 Policy Domain).
    pub domain: DomainName,
    /// When the observation started.
    #[serde(with = "time::serde::rfc3339")]
    pub observed_at: OffsetDateTime,
    /// The MX RRset.
    pub mx: Lookup<Mx>,
    /// The `_mta-sts.<domain>` TXT RRset (CNAMEs followed).
    pub sts_txt: Lookup<Txt>,
    /// The `_smtp._tls.<domain>` TXT RRset.
    pub tlsrpt_txt: Lookup<Txt>,
    /// The policy fetch, made when the `_mta-sts` record set yields a record.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub policy_fetch: Option<PolicyFetchFacts>,
    /// Every MX host in preference order (the domain itself for an implicit MX).
    pub hosts: Vec<MxHostFacts>,
    /// The resolver could not serve a validated chain of trust for the root or the domain's
    /// top-level domain (see [`ResolverProblem`]). Then only the domain's own three lookups
    /// were made (no MX host, no policy fetch), and nothing about the domain can be judged.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub resolver_problem: Option<ResolverProblem>,
    /// The report destinations of the `_smtp._tls` record, each reached as a reporter would
    /// reach it (RFC 8460 §5): in `rua` order, at most [`MAX_RUA_CHECKED`]. Empty without a
    /// valid record (and in facts stored before destinations were checked).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub rua: Vec<RuaFacts>,
}

/// How many `rua` destinations of one record are checked (a record may list any number; a
/// reporter delivering to each would not go further either).
pub const MAX_RUA_CHECKED: usize = 8;

/// One `rua` destination as observed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "scheme", rename_all = "kebab-case")]
pub enum RuaFacts {
    /// `mailto:`: the mail routing of the address's domain, as for any mail domain.
    Mailto(MailtoRuaFacts),
    /// `https:`: an `HEAD` of the URL (never a `POST`), redirects recorded, not followed.
    Https(HttpsRuaFacts),
}

impl RuaFacts {
    /// The URI as written in the record.
    pub fn uri(&self) -> &str {
        match self {
            Self::Mailto(m) => &m.uri,
            Self::Https(h) => &h.uri,
        }
    }
}

/// A `mailto:` destination: where mail to its domain goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailtoRuaFacts {
    /// The URI as written.
    pub uri: String,
    /// The address (without a size limit).
    pub address: String,
    /// The domain of the address.
    pub domain: String,
    /// The size limit written after the address, if any (see
    /// [`crate::tlsrpt::record::SizeLimit`]).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub size_limit: Option<crate::tlsrpt::record::SizeLimit>,
    /// The address's domain is the policy domain itself: its MX RRset and hosts are the
    /// domain's own ([`DomainFacts::mx`], [`DomainFacts::hosts`]), observed once.
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub same_as_domain: bool,
    /// The MX RRset of the address's domain (absent when `same_as_domain`, or when the
    /// domain is not a valid host name).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub mx: Option<Lookup<Mx>>,
    /// Its MX hosts in preference order (the domain itself for an implicit MX), each probed
    /// like any MX host (the probes are shared with every domain that uses the host).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub hosts: Vec<MxHostFacts>,
}

/// An `https:` destination: the host's addresses and one `HEAD` of the URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpsRuaFacts {
    /// The URI as written.
    pub uri: String,
    /// The host of the URL.
    pub host: String,
    /// The request, one attempt per address (as for the policy fetch): the status, the
    /// Location of a redirect, the presented chain. The body of a `HEAD` is empty.
    pub check: PolicyFetchFacts,
}

/// What was seen of one MX host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MxHostFacts {
    /// The exchange name as published (lower-case, no trailing dot).
    pub exchange: String,
    /// The exchange as a host name, when it is one (an IP literal or a malformed name is not).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub name: Option<DomainName>,
    /// The MX preference.
    pub preference: u16,
    /// True when there is no MX RRset and the domain itself is the MX (RFC 5321 §5.1).
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub implicit: bool,
    /// The A and AAAA lookups.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub addresses: Option<AddressLookups>,
    /// The `_25._tcp.<host>` TLSA lookup, asked only when the addresses are DNSSEC-secure
    /// (RFC 7672 §2.2.2).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub tlsa: Option<Lookup<Tlsa>>,
    /// The TLSA base domain when it is not the exchange: the fully CNAME-expanded name, when
    /// the addresses came through a secure CNAME chain and TLSA records exist there
    /// (RFC 7672 §2.2.2). `tlsa` is then the lookup at `_25._tcp.<tlsa_base>`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub tlsa_base: Option<DomainName>,
    /// One STARTTLS probe per address.
    #[serde(default)]
    pub sessions: Vec<SmtpFacts>,
}

/// The policy fetch of RFC 8461 §3.3: `GET https://mta-sts.<domain>/.well-known/mta-sts.txt`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyFetchFacts {
    /// The URL fetched.
    pub url: String,
    /// One entry per address of the policy host that was tried, in order. The fetcher moves to
    /// the next address only when no HTTP response was obtained from the previous one.
    pub attempts: Vec<FetchAttempt>,
}

impl PolicyFetchFacts {
    /// The HTTP response of the first attempt that got one.
    pub fn response(&self) -> Option<&HttpResponse> {
        self.attempts.iter().find_map(|a| match &a.outcome {
            FetchOutcome::Response(r) => Some(r),
            _ => None,
        })
    }
}

/// One try of the policy fetch against one address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchAttempt {
    /// The address tried; absent when the host name did not resolve.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub address: Option<IpAddr>,
    /// What happened.
    pub outcome: FetchOutcome,
}

/// The phase of an HTTPS exchange in which a timeout struck.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FetchPhase {
    /// Resolving the policy host.
    Dns,
    /// Opening the TCP connection.
    Connect,
    /// The TLS handshake.
    Tls,
    /// Waiting for the response head.
    Response,
    /// Reading the body.
    Body,
}

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum FetchOutcome {
    /// The policy host name did not resolve (NXDOMAIN, NODATA, SERVFAIL, …).
    DnsError {
        /// What the resolver said.
        error: String,
        /// The answer was definite: the name provably has no address (NXDOMAIN or NODATA).
        /// Otherwise the lookup failed (SERVFAIL, refused, …): could not tell.
        #[serde(skip_serializing_if = "std::ops::Not::not", default)]
        not_found: bool,
    },
    /// The TCP connection failed (refused, unreachable, reset).
    ConnectError {
        /// The operating system's error.
        error: String,
    },
    /// A phase did not finish in time.
    Timeout {
        /// Which phase.
        phase: FetchPhase,
    },
    /// The TLS handshake failed for a reason other than the certificate (mxprobe records the
    /// certificate and judges it afterwards, so a bad certificate never fails the handshake).
    TlsError {
        /// The TLS library's error, e.g. a received alert.
        error: String,
    },
    /// An HTTP response arrived over TLS.
    Response(HttpResponse),
}

/// An HTTP response to the policy request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpResponse {
    /// The status code. On the wire `http_status`: [`FetchOutcome`]'s tag is `status`.
    #[serde(rename = "http_status")]
    pub status: u16,
    /// The Content-Type header, if any.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub content_type: Option<String>,
    /// The Location header, if any (shown for redirects, never followed).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub location: Option<String>,
    /// The certificate chain the server presented, leaf first, DER encoded.
    #[serde(with = "der_list")]
    pub chain: Vec<Vec<u8>>,
    /// The body as read, up to the size limit (invalid UTF-8 replaced, see `body_not_utf8`).
    pub body: String,
    /// The body was not valid UTF-8 (a policy is ASCII, RFC 8461 §3.2).
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub body_not_utf8: bool,
    /// The body was longer than the limit, which stopped the read.
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub body_truncated: bool,
}

impl HttpResponse {
    /// Where a redirect points, as words to put after "a redirect": ` to <Location>`, or
    /// nothing without a Location header.
    pub fn redirect_target(&self) -> String {
        self.location
            .as_deref()
            .map(|l| format!(" to {l}"))
            .unwrap_or_default()
    }
}

/// DER certificates as base64 strings in JSON.
mod der_list {
    use serde::{Deserialize, Deserializer, Serializer};

    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;

    pub(super) fn serialize<S: Serializer>(v: &[Vec<u8>], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(|c| STANDARD.encode(c)))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<u8>>, D::Error> {
        let strings = Vec::<String>::deserialize(d)?;
        strings
            .into_iter()
            .map(|s| STANDARD.decode(s).map_err(serde::de::Error::custom))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The outcome's tag and the response's status code are distinct members, so the facts
    /// read back exactly (the monitoring history stores them as JSON).
    #[test]
    fn a_fetch_response_round_trips_through_json() {
        let outcome = FetchOutcome::Response(HttpResponse {
            status: 404,
            content_type: Some("text/plain".to_owned()),
            location: None,
            chain: vec![vec![1, 2, 3]],
            body: "not found".to_owned(),
            body_not_utf8: false,
            body_truncated: false,
        });
        let json = serde_json::to_string(&outcome).unwrap();
        assert_eq!(
            json,
            r#"{"status":"response","http_status":404,"content_type":"text/plain","chain":["AQID"],"body":"not found"}"#
        );
        let back: FetchOutcome = serde_json::from_str(&json).unwrap();
        assert_eq!(back, outcome);
    }
}
