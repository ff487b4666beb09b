//! SMTP: what the STARTTLS probe records for one (MX host, address), and how it gets it.
//!
//! - [`reply`]: pure — SMTP replies parsed from bytes, EHLO keywords, the announced name.
//! - [`dialogue`]: pure — the probe's conversation as a state machine (greeting, EHLO, HELO
//!   fallback, STARTTLS, EHLO again, QUIT), deciding every protocol-level outcome.
//! - [`probe`](mod@probe): the only file here that touches the network (tokio + tokio-rustls): it drives
//!   the dialogue over one TCP connection and returns [`SmtpFacts`].
//!
//! This file holds the facts themselves: plain, serialisable data with no verdicts in it
//! (the certificate and DANE evaluators judge the recorded chain later). No I/O here.

pub mod dialogue;
pub mod reply;

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use rustls_pki_types::CertificateDer;
use serde::{Deserialize, Serialize};

use crate::domain::DomainName;

pub use dialogue::{Command, Step};
pub use reply::{Parse, Reply, ReplyError};

/// The name the probe gives in EHLO and HELO: a domain or an address literal (RFC 5321
/// §4.1.1.1), checked once so that no command line can be broken by it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EhloName(String);

/// Why a string cannot be sent as the EHLO name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EhloNameError {
    /// The name is empty.
    #[error("the EHLO name is empty")]
    Empty,
    /// The name is longer than a domain may be (RFC 5321 §4.5.3.1.2: 255 octets).
    #[error("the EHLO name is {len} bytes long; at most 255 are allowed")]
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// The name holds a character that cannot appear in a domain or address literal
    /// (a space, a control character such as CR or LF, or non-ASCII).
    #[error("the EHLO name {name:?} contains {found:?}, which is not allowed in a host name")]
    BadCharacter {
        /// The name as given.
        name: String,
        /// The first offending character.
        found: char,
    },
}

impl EhloName {
    /// Checks `name`: 1–255 visible ASCII characters (a domain, or an address literal such as
    /// `[192.0.2.1]`). The domain syntax itself is left to the caller.
    pub fn parse(name: &str) -> Result<Self, EhloNameError> {
        if name.is_empty() {
            return Err(EhloNameError::Empty);
        }
        if name.len() > 255 {
            return Err(EhloNameError::TooLong { len: name.len() });
        }
        if let Some(found) = name.chars().find(|c| !c.is_ascii_graphic()) {
            return Err(EhloNameError::BadCharacter {
                name: name.to_owned(),
                found,
            });
        }
        Ok(Self(name.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EhloName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A phase of the probe's conversation, named after what the probe waited for or did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Opening the TCP connection.
    Connect,
    /// Waiting for the 220 greeting (the banner).
    Greeting,
    /// EHLO sent, waiting for its reply.
    Ehlo,
    /// HELO sent (EHLO was refused with 5xx), waiting for its reply.
    Helo,
    /// STARTTLS sent, waiting for its reply.
    Starttls,
    /// The TLS handshake after a 220 to STARTTLS.
    TlsHandshake,
    /// EHLO sent again inside TLS, waiting for its reply.
    EhloAfterTls,
    /// QUIT sent, waiting for its reply.
    Quit,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Connect => "connect",
            Self::Greeting => "greeting",
            Self::Ehlo => "EHLO",
            Self::Helo => "HELO",
            Self::Starttls => "STARTTLS",
            Self::TlsHandshake => "TLS handshake",
            Self::EhloAfterTls => "EHLO after TLS",
            Self::Quit => "QUIT",
        })
    }
}

/// Where and why the probe stopped. Wire form: an object with `"kind"` set to the kebab-case
/// name below and the variant's fields in kebab-case.
///
/// Only [`Self::Completed`] means TLS was established and the session ended normally. The
/// "could not tell" outcomes (timeouts, `service-unavailable-421`, `connection-reset`,
/// `deadline-exceeded` …) are never verdicts of absence; [`Self::is_inconclusive`] names them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "kind",
    rename_all = "kebab-case",
    rename_all_fields = "kebab-case"
)]
pub enum SmtpOutcome {
    /// `completed`: greeting, EHLO, STARTTLS answered 220, TLS established, EHLO again
    /// answered 250. The QUIT exchange does not change this.
    Completed,
    /// `connection-refused`: the address answered the TCP SYN with a reset.
    ConnectionRefused,
    /// `connect-timeout`: no TCP connection within the connect timeout.
    ConnectTimeout,
    /// `connect-failed`: the connection could not be opened for another reason (no route,
    /// network unreachable …); `error` is the operating system's message.
    ConnectFailed {
        /// The error text.
        error: String,
    },
    /// `timeout`: the server sent nothing for longer than the phase timeout while the probe
    /// waited for a reply in `phase` (or the TLS handshake did not finish within it).
    Timeout {
        /// The phase.
        phase: Phase,
    },
    /// `closed-by-server`: the server closed the connection (end of stream) in `phase`.
    ClosedByServer {
        /// The phase.
        phase: Phase,
    },
    /// `connection-reset`: the connection was reset (TCP RST, broken pipe) in `phase`.
    ConnectionReset {
        /// The phase.
        phase: Phase,
    },
    /// `io-error`: another socket error in `phase`.
    IoError {
        /// The phase.
        phase: Phase,
        /// The error text.
        error: String,
    },
    /// `service-unavailable-421`: the server answered 421 in `phase` (RFC 5321 §3.8: it is
    /// closing the channel, often rate limiting). Inconclusive, not a failure of the server.
    #[serde(rename = "service-unavailable-421")]
    ServiceUnavailable421 {
        /// The phase.
        phase: Phase,
        /// The reply text.
        text: String,
    },
    /// `rejected`: a 4yz or 5yz reply where the dialogue needed a 2yz and no more specific
    /// outcome applies: a 554 greeting (RFC 5321 §3.1, "no SMTP service here"), a 4yz to
    /// EHLO, a refused HELO, a refused EHLO after TLS.
    Rejected {
        /// The phase.
        phase: Phase,
        /// The reply code.
        code: u16,
        /// The reply text.
        text: String,
    },
    /// `ehlo-rejected`: EHLO was refused with 5xx and HELO was accepted. Without EHLO there
    /// are no service extensions, so STARTTLS cannot be offered (RFC 3207 §4).
    EhloRejected {
        /// The code EHLO was refused with.
        code: u16,
        /// That reply's text.
        text: String,
    },
    /// `starttls-not-offered`: the 250 reply to EHLO does not list STARTTLS (RFC 3207 §4).
    StarttlsNotOffered,
    /// `starttls-rejected`: STARTTLS was answered with a code other than 220 and 421
    /// (RFC 3207 §4: 454 "TLS not available due to temporary reason", 501, 5xx …).
    StarttlsRejected {
        /// The reply code.
        code: u16,
        /// The reply text.
        text: String,
    },
    /// `tls-handshake-failed`: the TLS handshake failed for a reason other than the
    /// connection closing or timing out: an alert from the server, a malformed or unexpected
    /// TLS message (garbage instead of a ServerHello, whether it came with the 220 reply to
    /// STARTTLS or after it: the handshake reads those bytes first), no common version or
    /// cipher suite, a bad handshake signature.
    TlsHandshakeFailed {
        /// The TLS alert the server sent, when it sent one (e.g. `HandshakeFailure`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        alert: Option<String>,
        /// The error text.
        error: String,
    },
    /// `protocol-error`: the server broke the SMTP protocol in `phase`: bytes that are not a
    /// reply, a reply code that does not answer the command, or a reply longer than the
    /// limits.
    ProtocolError {
        /// The phase.
        phase: Phase,
        /// What was wrong.
        detail: String,
    },
    /// `deadline-exceeded`: the probe's overall deadline passed while in `phase` (a server
    /// that keeps dripping bytes never trips the phase timeout, but always this).
    DeadlineExceeded {
        /// The phase.
        phase: Phase,
    },
    /// `not-tested`: no connection was attempted, or its outcome says nothing about the
    /// server: SMTP probing was switched off (`--no-smtp`), or outbound connections to the
    /// SMTP port are blocked from where mxprobe runs. `reason` says which.
    NotTested {
        /// Why the server was not tested.
        reason: String,
    },
}

impl SmtpOutcome {
    /// Whether the server accepted STARTTLS with 220 and then ended the TLS handshake by
    /// closing or resetting the connection or with an alert: worth another try (a server
    /// under load does it too), and a failure when it happens every time
    /// ([`SmtpFacts::refused_tls_every_time`]).
    pub fn refuses_tls(&self) -> bool {
        match self {
            Self::ClosedByServer { phase } | Self::ConnectionReset { phase } => {
                *phase == Phase::TlsHandshake
            }
            Self::TlsHandshakeFailed { alert, .. } => alert.is_some(),
            _ => false,
        }
    }

    /// Whether this outcome says nothing about the server's STARTTLS support, because the
    /// probe could not tell: a timeout, a 421, a reset, a closed or failed connection, a
    /// passed deadline, a 4yz reply.
    pub fn is_inconclusive(&self) -> bool {
        match self {
            Self::ConnectTimeout
            | Self::ConnectionRefused
            | Self::ConnectFailed { .. }
            | Self::Timeout { .. }
            | Self::ClosedByServer { .. }
            | Self::ConnectionReset { .. }
            | Self::IoError { .. }
            | Self::ServiceUnavailable421 { .. }
            | Self::DeadlineExceeded { .. }
            | Self::NotTested { .. } => true,
            Self::Rejected { code, .. } => code / 100 == 4,
            Self::Completed
            | Self::EhloRejected { .. }
            | Self::StarttlsNotOffered
            | Self::StarttlsRejected { .. }
            | Self::TlsHandshakeFailed { .. }
            | Self::ProtocolError { .. } => false,
        }
    }
}

/// What the TLS handshake established.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct TlsFacts {
    /// The protocol version: `"TLSv1.2"` or `"TLSv1.3"`.
    pub version: String,
    /// The cipher suite's IANA name, e.g. `"TLS_AES_128_GCM_SHA256"` or
    /// `"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"`.
    pub cipher_suite: String,
    /// The server name sent in SNI (the MX host name), when one was sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sni: Option<String>,
    /// The certificate chain the server presented, leaf first, DER (base64 in JSON).
    #[serde(with = "der_base64")]
    pub chain: Vec<CertificateDer<'static>>,
}

/// How long one phase took, in milliseconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct PhaseTiming {
    /// The phase.
    pub phase: Phase,
    /// Milliseconds from the start of the phase to its reply (or its end).
    pub ms: u64,
}

/// Everything the STARTTLS probe saw at one (MX host, address). No verdicts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct SmtpFacts {
    /// The MX host name probed (the SNI and the reference name for the certificate).
    pub mx: DomainName,
    /// The address and port connected to (RFC 8460 `receiving-ip` is its IP).
    pub address: SocketAddr,
    /// The local address of the connection (RFC 8460 `sending-mta-ip`), once connected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<IpAddr>,
    /// The greeting (banner), whatever its code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub banner: Option<Reply>,
    /// The reply to the first EHLO, whatever its code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ehlo: Option<Reply>,
    /// The reply to HELO, sent only when EHLO was refused with 5xx.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub helo: Option<Reply>,
    /// The EHLO keywords before TLS, upper-cased.
    #[serde(default)]
    pub ehlo_keywords: Vec<String>,
    /// The reply to STARTTLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starttls: Option<Reply>,
    /// The TLS session, once the handshake succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsFacts>,
    /// The reply to EHLO sent inside TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ehlo_after_tls: Option<Reply>,
    /// The EHLO keywords inside TLS, upper-cased.
    #[serde(default)]
    pub ehlo_keywords_after_tls: Vec<String>,
    /// The reply to QUIT, when one came.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quit: Option<Reply>,
    /// How long each phase took, in the order they ran.
    #[serde(default)]
    pub timings: Vec<PhaseTiming>,
    /// The whole probe, in milliseconds.
    pub total_ms: u64,
    /// Where and why the probe stopped.
    pub outcome: SmtpOutcome,
    /// How many connections this result took: more than 1 when a busy server (421, refused
    /// or closed before the greeting) or one that refused TLS after its 220 to STARTTLS
    /// (closed, reset, alert) was tried again after a back-off; these facts are the last
    /// attempt's.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub attempts: u32,
    /// How each earlier attempt ended, oldest first (`attempts` − 1 entries).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub earlier_outcomes: Vec<SmtpOutcome>,
}

fn one() -> u32 {
    1
}

fn is_one(n: &u32) -> bool {
    *n == 1
}

impl SmtpFacts {
    /// Facts with nothing seen yet, ending in `outcome` (the probe fills them in).
    pub fn new(mx: DomainName, address: SocketAddr, outcome: SmtpOutcome) -> Self {
        Self {
            mx,
            address,
            source_ip: None,
            banner: None,
            ehlo: None,
            helo: None,
            ehlo_keywords: Vec::new(),
            starttls: None,
            tls: None,
            ehlo_after_tls: None,
            ehlo_keywords_after_tls: Vec::new(),
            quit: None,
            timings: Vec::new(),
            total_ms: 0,
            outcome,
            attempts: 1,
            earlier_outcomes: Vec::new(),
        }
    }

    /// Whether the server accepted STARTTLS with 220 and then refused TLS (closed or reset
    /// the connection, or sent an alert) on every attempt, and there were at least two: a
    /// server that does that never accepts TLS, so senders count a failed negotiation
    /// (RFC 8460 §4.3.1 `validation-failure`). One such attempt alone could be load.
    pub fn refused_tls_every_time(&self) -> bool {
        let attempts = usize::try_from(self.attempts).unwrap_or(usize::MAX);
        attempts >= 2
            && self.earlier_outcomes.len() + 1 == attempts
            && self.outcome.refuses_tls()
            && self.earlier_outcomes.iter().all(SmtpOutcome::refuses_tls)
    }

    /// Files `reply` as the answer received in `phase`. Replies in the connect and TLS
    /// handshake phases do not exist and are ignored.
    pub fn record_reply(&mut self, phase: Phase, reply: &Reply) {
        match phase {
            Phase::Greeting => self.banner = Some(reply.clone()),
            Phase::Ehlo => {
                self.ehlo_keywords = reply.ehlo_keywords();
                self.ehlo = Some(reply.clone());
            }
            Phase::Helo => self.helo = Some(reply.clone()),
            Phase::Starttls => self.starttls = Some(reply.clone()),
            Phase::EhloAfterTls => {
                self.ehlo_keywords_after_tls = reply.ehlo_keywords();
                self.ehlo_after_tls = Some(reply.clone());
            }
            Phase::Quit => self.quit = Some(reply.clone()),
            Phase::Connect | Phase::TlsHandshake => {}
        }
    }

    /// The RFC 8460 §4.4 `receiving-mx-helo`: the name the server announced in its 250 reply
    /// to EHLO (inside TLS if it got that far, else before TLS) or HELO, else in its 220
    /// greeting (RFC 5321 §4.2: both begin with the server's domain).
    pub fn receiving_mx_helo(&self) -> Option<&str> {
        [&self.ehlo_after_tls, &self.ehlo, &self.helo, &self.banner]
            .into_iter()
            .flatten()
            .filter(|r| r.class() == 2)
            .find_map(Reply::announced_name)
    }

    /// The RFC 8460 §4.4 `sending-mta-ip`: the local address of the probe's connection.
    pub fn sending_mta_ip(&self) -> Option<IpAddr> {
        self.source_ip
    }
}

/// DER certificates as standard base64 strings.
mod der_base64 {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use rustls_pki_types::CertificateDer;
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        chain: &[CertificateDer<'static>],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(chain.iter().map(|c| STANDARD.encode(c.as_ref())))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<CertificateDer<'static>>, D::Error> {
        Vec::<String>::deserialize(deserializer)?
            .iter()
            .map(|s| {
                STANDARD
                    .decode(s)
                    .map(CertificateDer::from)
                    .map_err(|e| D::Error::custom(format!("certificate is not base64: {e}")))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ehlo_name_table() {
        let cases: [(&str, Result<(), EhloNameError>); 5] = [
            ("probe.example.net", Ok(())),
            ("[192.0.2.1]", Ok(())),
            ("", Err(EhloNameError::Empty)),
            (
                "a b",
                Err(EhloNameError::BadCharacter {
                    name: "a b".into(),
                    found: ' ',
                }),
            ),
            (
                "x\r\nMAIL FROM:<>",
                Err(EhloNameError::BadCharacter {
                    name: "x\r\nMAIL FROM:<>".into(),
                    found: '\r',
                }),
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(EhloName::parse(input).map(|_| ()), expected, "{input:?}");
        }
        assert_eq!(
            EhloName::parse(&"a".repeat(256)),
            Err(EhloNameError::TooLong { len: 256 })
        );
    }

    #[test]
    fn outcome_wire_names() {
        let cases = [
            (SmtpOutcome::Completed, r#"{"kind":"completed"}"#),
            (
                SmtpOutcome::ServiceUnavailable421 {
                    phase: Phase::Greeting,
                    text: "busy".into(),
                },
                r#"{"kind":"service-unavailable-421","phase":"greeting","text":"busy"}"#,
            ),
            (
                SmtpOutcome::Timeout {
                    phase: Phase::EhloAfterTls,
                },
                r#"{"kind":"timeout","phase":"ehlo-after-tls"}"#,
            ),
            (
                SmtpOutcome::StarttlsRejected {
                    code: 454,
                    text: "no".into(),
                },
                r#"{"kind":"starttls-rejected","code":454,"text":"no"}"#,
            ),
            (
                SmtpOutcome::TlsHandshakeFailed {
                    alert: None,
                    error: "e".into(),
                },
                r#"{"kind":"tls-handshake-failed","error":"e"}"#,
            ),
            (
                SmtpOutcome::DeadlineExceeded {
                    phase: Phase::TlsHandshake,
                },
                r#"{"kind":"deadline-exceeded","phase":"tls-handshake"}"#,
            ),
        ];
        for (outcome, json) in cases {
            assert_eq!(serde_json::to_string(&outcome).expect("serialise"), json);
            let back: SmtpOutcome = serde_json::from_str(json).expect("deserialise");
            assert_eq!(back, outcome);
        }
    }

    #[test]
    fn facts_round_trip_with_base64_chain() {
        let mx = DomainName::parse("mx.example.com").expect("valid");
        let addr: SocketAddr = "127.0.0.1:25".parse().expect("valid");
        let mut facts = SmtpFacts::new(mx, addr, SmtpOutcome::Completed);
        facts.record_reply(Phase::Greeting, &Reply::new(220, &["banner.example ESMTP"]));
        facts.record_reply(Phase::Ehlo, &Reply::new(250, &["ehlo.example", "STARTTLS"]));
        facts.tls = Some(TlsFacts {
            version: "TLSv1.3".into(),
            cipher_suite: "TLS_AES_128_GCM_SHA256".into(),
            sni: Some("mx.example.com".into()),
            chain: vec![CertificateDer::from(vec![0x30, 0x03, 1, 2, 3])],
        });
        let json = serde_json::to_value(&facts).expect("serialise");
        assert_eq!(json["tls"]["chain"][0], "MAMBAgM=");
        assert_eq!(json["ehlo-keywords"][0], "STARTTLS");
        let back: SmtpFacts = serde_json::from_value(json).expect("deserialise");
        assert_eq!(back, facts);
        assert_eq!(back.receiving_mx_helo(), Some("ehlo.example"));
    }

    #[test]
    fn tls_refused_on_every_attempt_needs_two_attempts_all_refused() {
        let mx = DomainName::parse("mx.example.com").expect("valid");
        let addr: SocketAddr = "127.0.0.1:25".parse().expect("valid");
        let reset = SmtpOutcome::ConnectionReset {
            phase: Phase::TlsHandshake,
        };
        let closed = SmtpOutcome::ClosedByServer {
            phase: Phase::TlsHandshake,
        };
        let facts = |attempts: u32, earlier: Vec<SmtpOutcome>, last: SmtpOutcome| {
            let mut f = SmtpFacts::new(mx.clone(), addr, last);
            f.attempts = attempts;
            f.earlier_outcomes = earlier;
            f
        };
        let busy = SmtpOutcome::ServiceUnavailable421 {
            phase: Phase::Greeting,
            text: "busy".into(),
        };
        let alert = SmtpOutcome::TlsHandshakeFailed {
            alert: Some("HandshakeFailure".into()),
            error: "alert".into(),
        };
        let cases = [
            (facts(1, vec![], reset.clone()), false),
            (facts(2, vec![reset.clone()], reset.clone()), true),
            (
                facts(3, vec![closed.clone(), alert.clone()], reset.clone()),
                true,
            ),
            (facts(2, vec![busy], reset.clone()), false),
            (facts(2, vec![reset.clone()], SmtpOutcome::Completed), false),
            // The earlier outcomes must account for every attempt.
            (facts(3, vec![reset.clone()], reset.clone()), false),
            (
                facts(
                    2,
                    vec![reset.clone()],
                    SmtpOutcome::ConnectionReset {
                        phase: Phase::Greeting,
                    },
                ),
                false,
            ),
        ];
        for (f, expected) in cases {
            assert_eq!(f.refused_tls_every_time(), expected, "{f:?}");
        }
        // The earlier outcomes read back from JSON (the monitoring history keeps facts).
        let f = facts(2, vec![closed], reset);
        let json = serde_json::to_string(&f).expect("json");
        assert!(json.contains("\"earlier-outcomes\":[{\"kind\":\"closed-by-server\""));
        let back: SmtpFacts = serde_json::from_str(&json).expect("back");
        assert_eq!(back, f);
    }

    #[test]
    fn receiving_mx_helo_prefers_ehlo_then_banner_and_skips_refusals() {
        let mx = DomainName::parse("mx.example.com").expect("valid");
        let addr: SocketAddr = "127.0.0.1:25".parse().expect("valid");
        let mut facts = SmtpFacts::new(mx, addr, SmtpOutcome::StarttlsNotOffered);
        assert_eq!(facts.receiving_mx_helo(), None);
        facts.record_reply(Phase::Greeting, &Reply::new(220, &["banner.example"]));
        facts.record_reply(Phase::Ehlo, &Reply::new(550, &["no.example"]));
        assert_eq!(facts.receiving_mx_helo(), Some("banner.example"));
        facts.record_reply(Phase::Helo, &Reply::new(250, &["helo.example"]));
        assert_eq!(facts.receiving_mx_helo(), Some("helo.example"));
    }
}
