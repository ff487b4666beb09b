//! Delivering [`Alert`]s to people: a [`Channel`] is a webhook ([`Webhook`], HTTP POST of
//! JSON), an e-mail ([`Email`], SMTP through a relay, STARTTLS by default) or a program
//! ([`Exec`], the alert JSON on its standard input). [`Channel::deliver`] makes one attempt,
//! bounded by the channel's own timeout; [`deliver_with_retry`] repeats it with exponential
//! back-off ([`RetryPolicy`]) until a deadline, and stops early when an error cannot go away
//! by itself ([`DeliveryError::is_permanent`]) or the channel did not answer in time
//! ([`DeliveryError::is_timeout`]).
//!
//! This module does network and process I/O: it connects to the webhook receivers and mail
//! relays it is configured with and starts the configured programs; nothing else. Which
//! alerts to send, and when, is decided elsewhere ([`mxprobe_core::changes`]); what was delivered is
//! recorded by the caller ([`crate::history`], under [`Channel::name`]).
//!
//! # Secrets
//! Secrets reach this module only as values: webhook headers from `MXPROBE_WEBHOOK_HEADER_*`
//! ([`headers_from_env`]) and relay credentials from `MXPROBE_SMTP_USER` /
//! `MXPROBE_SMTP_PASSWORD` ([`credentials_from_env`]). No error message and no `Debug`
//! output shows a header value, a password, or more of a webhook URL than its scheme, host
//! and port (see [`Webhook::target`]): webhook URLs carry their secrets in the path (Slack,
//! Discord), in the query (Teams Workflows `sig=`) or in the user info.
//!
//! # What each channel sends
//! - [`WebhookFormat::Json`]: the alert JSON exactly as [`Alert`] serializes it (schema
//!   version [`mxprobe_core::alert::ALERT_SCHEMA_VERSION`]).
//! - [`WebhookFormat::Text`]: `{"text": "<Alert::text()>"}`, the body Slack incoming webhooks
//!   and Microsoft Teams incoming webhooks / Workflows accept.
//! - [`Email`]: subject [`Alert::subject`], a `text/plain; charset=utf-8` body
//!   [`Alert::text`], and the alert JSON attached as `application/json`.
//! - [`Exec`]: the alert JSON on standard input, with `MXPROBE_ALERT_DOMAIN` and
//!   `MXPROBE_ALERT_SEVERITY` in the environment.

mod email;
mod exec;
mod webhook;

use std::net::IpAddr;
use std::process::ExitStatus;
use std::time::Duration;

pub use email::{
    Accepted, DEFAULT_EMAIL_TIMEOUT, Email, RELAY_READ_LIMIT, RelaySecurity, SMTP_PASSWORD_VAR,
    SMTP_USER_VAR, credentials_from_env,
};
pub use exec::{ALERT_DOMAIN_VAR, ALERT_SEVERITY_VAR, Exec, STDERR_LIMIT, is_secret_variable};
pub use webhook::{
    WEBHOOK_HEADER_PREFIX, WEBHOOK_URL_VAR, Webhook, WebhookFormat, headers_from_env,
};

use mxprobe_core::alert::Alert;

/// One way of reaching people.
#[derive(Debug)]
pub enum Channel {
    /// An HTTP POST of the alert to a URL.
    Webhook(Webhook),
    /// An e-mail through an SMTP relay.
    Email(Email),
    /// A program that reads the alert on its standard input.
    Exec(Exec),
}

impl Channel {
    /// The channel kind as stored in the history database: `webhook`, `email` or `exec`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Webhook(_) => "webhook",
            Self::Email(_) => "email",
            Self::Exec(_) => "exec",
        }
    }

    /// Where this channel delivers, safe to show and store: the webhook's scheme, host and
    /// port, the relay and port, or the program's path.
    pub fn target(&self) -> String {
        match self {
            Self::Webhook(w) => w.target().to_owned(),
            Self::Email(e) => e.target(),
            Self::Exec(x) => x.program().display().to_string(),
        }
    }

    /// One delivery attempt.
    pub async fn deliver(&self, alert: &Alert) -> Result<(), DeliveryError> {
        match self {
            Self::Webhook(w) => w.deliver(alert).await,
            Self::Email(e) => e.deliver(alert).await,
            Self::Exec(x) => x.deliver(alert).await,
        }
    }
}

/// How often and how patiently [`deliver_with_retry`] tries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (0 is taken as 1).
    pub attempts: u32,
    /// The pause after the first failed attempt; each later pause doubles it.
    pub initial: Duration,
    /// The longest pause.
    pub max: Duration,
}

impl Default for RetryPolicy {
    /// 3 attempts, pausing 1 s and then 2 s (at most 60 s).
    fn default() -> Self {
        Self {
            attempts: 3,
            initial: Duration::from_secs(1),
            max: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The pause after failed attempt number `failed` (1-based): `initial × 2^(failed-1)`,
    /// at most `max`.
    pub fn pause_after(&self, failed: u32) -> Duration {
        let doublings = failed.saturating_sub(1).min(31);
        self.initial
            .checked_mul(1 << doublings)
            .map_or(self.max, |pause| pause.min(self.max))
    }
}

/// Delivers `alert` through `channel`, retrying as `retry` says, all before `deadline`.
/// Stops at the first success; at a permanent error ([`DeliveryError::is_permanent`]:
/// retrying cannot help); at a timeout ([`DeliveryError::is_timeout`]: the channel is not
/// answering, and another attempt would only wait as long again); when the next pause would
/// end past the deadline; or after the last attempt. The error returned is the last one; an
/// attempt still running at the deadline is abandoned with [`DeliveryError::Deadline`].
pub async fn deliver_with_retry(
    channel: &Channel,
    alert: &Alert,
    retry: &RetryPolicy,
    deadline: tokio::time::Instant,
) -> Result<(), DeliveryError> {
    let attempts = retry.attempts.max(1);
    let mut attempt = 1;
    let started = tokio::time::Instant::now();
    loop {
        let error = match tokio::time::timeout_at(deadline, channel.deliver(alert)).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(error)) => error,
            Err(_elapsed) => {
                return Err(DeliveryError::Deadline {
                    channel: channel.name(),
                    target: channel.target(),
                    after: started.elapsed(),
                });
            }
        };
        if error.is_permanent() || error.is_timeout() || attempt >= attempts {
            return Err(error);
        }
        let pause = retry.pause_after(attempt);
        if tokio::time::Instant::now() + pause >= deadline {
            return Err(error);
        }
        tokio::time::sleep(pause).await;
        attempt += 1;
    }
}

/// Why one delivery attempt failed. Every message starts with the channel and its target
/// (never a secret) and says what failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeliveryError {
    /// The alert could not be serialized (a timestamp outside years 0–9999).
    #[error("{channel} {target}: the alert cannot be written as JSON: {reason}")]
    AlertJson {
        /// The channel kind.
        channel: &'static str,
        /// Where it was to go.
        target: String,
        /// serde_json's message.
        reason: String,
    },
    /// The receiver answered with a status other than 2xx (redirects are not followed).
    #[error(
        "webhook {target}: the receiver answered HTTP {status}{}; {}",
        body_suffix(body),
        status_advice(*status)
    )]
    WebhookStatus {
        /// The webhook URL's scheme, host and port.
        target: String,
        /// The HTTP status.
        status: u16,
        /// The start of the response body (one line, at most 200 characters), often the
        /// receiver's reason (`invalid_token`, `no_service`).
        body: String,
    },
    /// No complete answer within the webhook's timeout.
    #[error(
        "webhook {target}: no complete answer within {timeout:?}; check that the receiver is up"
    )]
    WebhookTimeout {
        /// The webhook URL's scheme, host and port.
        target: String,
        /// The timeout.
        timeout: Duration,
    },
    /// The request could not be sent or its answer could not be read (DNS, connection, TLS).
    #[error("webhook {target}: the request failed: {reason}")]
    WebhookRequest {
        /// The webhook URL's scheme, host and port.
        target: String,
        /// What failed, innermost cause last.
        reason: String,
    },
    /// The relay refused the message or the session failed (connection, STARTTLS, TLS,
    /// authentication, a rejected sender or recipient).
    #[error("email via {target}: {reason}")]
    Email {
        /// The relay and port.
        target: String,
        /// What failed, with the relay's reply where there was one.
        reason: String,
        /// A permanent SMTP reply (5xx) or a relay that cannot do what is required
        /// (no STARTTLS, no usable AUTH mechanism): retrying cannot help.
        permanent: bool,
    },
    /// The relay sent more than [`RELAY_READ_LIMIT`] bytes in one session (an endless reply
    /// line, say); the session was ended there.
    #[error(
        "email via {target}: the relay sent more than {limit} bytes in one session (an endless \
         or oversized reply), so the session was ended; check that the address is a mail relay"
    )]
    EmailAnswerTooLarge {
        /// The relay and port.
        target: String,
        /// The limit in bytes.
        limit: u64,
    },
    /// The SMTP session did not finish within the timeout.
    #[error("email via {target}: the relay did not finish within {timeout:?}")]
    EmailTimeout {
        /// The relay and port.
        target: String,
        /// The timeout.
        timeout: Duration,
    },
    /// The alert could not be made into a message.
    #[error("email via {target}: the alert cannot be made into a message: {reason}")]
    EmailMessage {
        /// The relay and port.
        target: String,
        /// lettre's message.
        reason: String,
    },
    /// The program could not be started (missing, not executable).
    #[error("exec {program}: cannot start it: {reason}; check the path and its execute bit")]
    ExecSpawn {
        /// The program's path.
        program: String,
        /// The operating system's message.
        reason: String,
    },
    /// Writing the alert to the program's standard input, or waiting for it, failed.
    #[error("exec {program}: {reason}")]
    ExecIo {
        /// The program's path.
        program: String,
        /// What failed, with the operating system's message.
        reason: String,
    },
    /// The program exited unsuccessfully.
    #[error("exec {program}: {status}{}", stderr_suffix(stderr))]
    ExecFailed {
        /// The program's path.
        program: String,
        /// How it exited (`exit status: 3`, `signal: 9 (SIGKILL)`).
        status: ExitStatus,
        /// The first [`STDERR_LIMIT`] bytes of its standard error, trimmed.
        stderr: String,
    },
    /// The program was still running at the timeout and was killed (with its process group).
    #[error("exec {program}: still running after {timeout:?}, so it was killed")]
    ExecTimeout {
        /// The program's path.
        program: String,
        /// The timeout.
        timeout: Duration,
    },
    /// The run's delivery deadline came while this attempt was still going; it was
    /// abandoned (an `--exec` program killed with its process group).
    #[error(
        "{channel} {target}: the run's delivery deadline came {after:.1?} into this delivery, \
         so it was abandoned"
    )]
    Deadline {
        /// The channel kind.
        channel: &'static str,
        /// Where it was going.
        target: String,
        /// How long the delivery of this alert had been going.
        after: Duration,
    },
}

/// `: <body>` when the receiver said something.
fn body_suffix(body: &str) -> String {
    if body.is_empty() {
        String::new()
    } else {
        format!(" ({body})")
    }
}

/// What to do about a non-2xx webhook status.
fn status_advice(status: u16) -> &'static str {
    match status {
        300..=399 => "redirects are not followed: configure the URL it points to",
        401 | 403 => "check the credentials set with MXPROBE_WEBHOOK_HEADER_*",
        404 | 410 => "check the URL: the receiver does not know it",
        408 | 425 | 429 | 500..=599 => {
            "the receiver failed or was busy; a later attempt may succeed"
        }
        _ => "check the URL and the headers the receiver expects",
    }
}

/// `; stderr: <stderr>` when the program wrote something.
fn stderr_suffix(stderr: &str) -> String {
    if stderr.is_empty() {
        "; it wrote nothing to stderr".to_owned()
    } else {
        format!("; stderr: {stderr}")
    }
}

impl DeliveryError {
    /// The channel kind ([`Channel::name`]).
    pub fn channel(&self) -> &'static str {
        match self {
            Self::AlertJson { channel, .. } | Self::Deadline { channel, .. } => channel,
            Self::WebhookStatus { .. }
            | Self::WebhookTimeout { .. }
            | Self::WebhookRequest { .. } => "webhook",
            Self::Email { .. }
            | Self::EmailAnswerTooLarge { .. }
            | Self::EmailTimeout { .. }
            | Self::EmailMessage { .. } => "email",
            Self::ExecSpawn { .. }
            | Self::ExecIo { .. }
            | Self::ExecFailed { .. }
            | Self::ExecTimeout { .. } => "exec",
        }
    }

    /// Where the delivery was going ([`Channel::target`]).
    pub fn target(&self) -> &str {
        match self {
            Self::AlertJson { target, .. }
            | Self::Deadline { target, .. }
            | Self::WebhookStatus { target, .. }
            | Self::WebhookTimeout { target, .. }
            | Self::WebhookRequest { target, .. }
            | Self::Email { target, .. }
            | Self::EmailAnswerTooLarge { target, .. }
            | Self::EmailTimeout { target, .. }
            | Self::EmailMessage { target, .. } => target,
            Self::ExecSpawn { program, .. }
            | Self::ExecIo { program, .. }
            | Self::ExecFailed { program, .. }
            | Self::ExecTimeout { program, .. } => program,
        }
    }

    /// Whether another attempt cannot succeed without a change of configuration: an alert
    /// that cannot be encoded, a 4xx answer other than 408, 425 and 429, a redirect, a
    /// permanent SMTP failure, a program that cannot be started.
    pub fn is_permanent(&self) -> bool {
        match self {
            Self::AlertJson { .. } | Self::EmailMessage { .. } | Self::ExecSpawn { .. } => true,
            Self::WebhookStatus { status, .. } => {
                (300..500).contains(status) && !matches!(status, 408 | 425 | 429)
            }
            Self::Email { permanent, .. } => *permanent,
            Self::WebhookTimeout { .. }
            | Self::WebhookRequest { .. }
            | Self::EmailAnswerTooLarge { .. }
            | Self::EmailTimeout { .. }
            | Self::ExecIo { .. }
            | Self::ExecFailed { .. }
            | Self::ExecTimeout { .. }
            | Self::Deadline { .. } => false,
        }
    }

    /// Whether the channel did not answer in time (its own timeout, or the run's deadline):
    /// the alert stays pending, and the channel is not tried again in this run.
    pub fn is_timeout(&self) -> bool {
        matches!(
            self,
            Self::WebhookTimeout { .. }
                | Self::EmailTimeout { .. }
                | Self::ExecTimeout { .. }
                | Self::Deadline { .. }
        )
    }
}

/// Why a channel cannot be built from its configuration. No variant holds a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NotifyConfigError {
    /// The webhook URL is not http or https.
    #[error("webhook {target}: the URL scheme {scheme:?} is not supported; use https://")]
    WebhookScheme {
        /// The URL's scheme, host and port.
        target: String,
        /// The scheme.
        scheme: String,
    },
    /// The webhook URL has no host.
    #[error("webhook URL with scheme {scheme:?} names no host; use https://host/path")]
    WebhookNoHost {
        /// The scheme.
        scheme: String,
    },
    /// Plain http to a host other than loopback would expose the alert and the headers.
    #[error(
        "webhook {target}: plain http:// is accepted only for loopback receivers \
         (127.0.0.1, ::1, localhost); use https://"
    )]
    WebhookPlainHttp {
        /// The URL's scheme, host and port.
        target: String,
    },
    /// `MXPROBE_WEBHOOK_HEADER_` with nothing after it.
    #[error("the variable {var} names no header; use {WEBHOOK_HEADER_PREFIX}<NAME>=value")]
    HeaderVariableEmpty {
        /// The variable.
        var: String,
    },
    /// Not an HTTP header name (RFC 9110 §5.1 token).
    #[error(
        "{name:?} is not an HTTP header name; in {WEBHOOK_HEADER_PREFIX}<NAME> use letters, \
         digits and _ (which becomes -)"
    )]
    HeaderName {
        /// The name as given.
        name: String,
    },
    /// Not an HTTP header value (control characters). The value is not shown.
    #[error(
        "the value of webhook header {name} is not a valid HTTP header value (it has control \
         characters or a line break); the value is not shown"
    )]
    HeaderValue {
        /// The header name.
        name: String,
    },
    /// A header mxprobe sets itself.
    #[error("webhook header {name} is set by mxprobe itself; remove it")]
    HeaderReserved {
        /// The header name.
        name: String,
    },
    /// The same header given twice (names are case-insensitive).
    #[error("webhook header {name} is given twice (header names ignore case); keep one")]
    HeaderDuplicate {
        /// The header name.
        name: String,
    },
    /// reqwest could not build the HTTP client.
    #[error("webhook {target}: cannot build the HTTP client: {reason}")]
    WebhookClient {
        /// The URL's scheme, host and port.
        target: String,
        /// reqwest's message.
        reason: String,
    },
    /// Only one of `MXPROBE_SMTP_USER` and `MXPROBE_SMTP_PASSWORD` is set.
    #[error("{missing} is not set but {present} is; set both or neither")]
    CredentialsIncomplete {
        /// The variable that is missing or empty.
        missing: &'static str,
        /// The variable that is set.
        present: &'static str,
    },
    /// The relay is empty or not a host name or address.
    #[error("{relay:?} is not a mail relay host name or IP address")]
    RelayName {
        /// The relay as given.
        relay: String,
    },
    /// An unencrypted relay session to a host other than loopback.
    #[error(
        "refusing to send e-mail without TLS to {relay}: plaintext is accepted only for \
         loopback relays (127.0.0.1, ::1, localhost); use starttls or tls"
    )]
    RelayPlaintext {
        /// The relay.
        relay: String,
    },
    /// A From or To address that is not an e-mail address.
    #[error("the {field} address {value:?} is not an e-mail address: {reason}")]
    Address {
        /// `from` or `to`.
        field: &'static str,
        /// The address as given.
        value: String,
        /// lettre's message.
        reason: String,
    },
    /// No recipient.
    #[error("an e-mail channel needs at least one recipient")]
    NoRecipients,
    /// An extra trust root that is not a PEM certificate.
    #[error("extra trust root #{index} for the relay is not a PEM certificate: {reason}")]
    RootPem {
        /// 0-based index in the list given.
        index: usize,
        /// What is wrong.
        reason: String,
    },
    /// lettre could not build the TLS parameters.
    #[error("cannot set up TLS for the relay {relay}: {reason}")]
    RelayTls {
        /// The relay.
        relay: String,
        /// lettre's message.
        reason: String,
    },
}

/// Whether a host (a name, an IP address, or an IPv6 address in brackets as URLs write it)
/// is this machine's loopback: `127.0.0.0/8`, `::1`, `localhost`.
fn is_loopback(host: &str) -> bool {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    match bare.parse::<IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => host.eq_ignore_ascii_case("localhost"),
    }
}

/// `text` with every occurrence of each of `secrets` replaced by `…` (ASCII case ignored,
/// longest secret first): what a receiver or a relay echoes of the request (a URL path, a
/// token, credentials) must reach neither a message nor the database. Empty secrets are
/// passed over.
fn scrub(text: &str, secrets: &[String]) -> String {
    let mut secrets: Vec<&str> = secrets
        .iter()
        .map(String::as_str)
        .filter(|s| !s.is_empty())
        .collect();
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let mut out = text.to_owned();
    for secret in secrets {
        let needle = secret.to_ascii_lowercase();
        let mut scrubbed = String::with_capacity(out.len());
        let mut rest = out.as_str();
        // ASCII lower-casing keeps every byte offset, so positions found in the lower-cased
        // copy cut the original at the same char boundaries.
        while let Some(at) = rest.to_ascii_lowercase().find(&needle) {
            scrubbed.push_str(&rest[..at]);
            scrubbed.push('…');
            rest = &rest[at + needle.len()..];
        }
        scrubbed.push_str(rest);
        out = scrubbed;
    }
    out
}

/// A one-line, bounded rendering of text that came from elsewhere (a response body, stderr):
/// control characters become spaces, runs of whitespace one space, at most `limit` chars.
fn one_line(text: &str, limit: usize) -> String {
    let mut out = String::new();
    for word in text.split(|c: char| c.is_whitespace() || c.is_control()) {
        if word.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    match out.char_indices().nth(limit) {
        Some((cut, _)) => {
            out.truncate(cut);
            out.push('…');
            out
        }
        None => out,
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    //! A sample alert and a client TLS configuration for the channel tests.

    use std::sync::Arc;

    use time::macros::datetime;

    use mxprobe_core::alert::{Alert, Change, ChangeKind, DomainStatus};
    use mxprobe_core::domain::DomainName;
    use mxprobe_core::finding::{Severity, Subject};

    /// An alert with two changes, one with a non-ASCII message.
    pub(crate) fn alert() -> Alert {
        let domain = DomainName::parse("example.com").unwrap();
        Alert::new(
            domain.clone(),
            datetime!(2026-11-29 06:00 UTC),
            DomainStatus::Fail,
            Some(DomainStatus::Pass),
            vec![
                Change {
                    kind: ChangeKind::CertificateChanged,
                    severity: Severity::Notice,
                    subject: Subject::domain(&domain),
                    message: "mx1.example.com presents a new certificate (Grüße)".to_owned(),
                    fix: None,
                },
                Change {
                    kind: ChangeKind::NewFailure,
                    severity: Severity::Error,
                    subject: Subject::domain(&domain),
                    message: "smtp.cert.leaf-expired: the certificate of mx1.example.com \
                              expired on 2026-11-28, so senders that enforce MTA-STS defer mail"
                        .to_owned(),
                    fix: Some("renew the certificate".to_owned()),
                },
            ],
        )
    }

    /// A delivery deadline no test reaches.
    pub(crate) fn far() -> tokio::time::Instant {
        tokio::time::Instant::now() + std::time::Duration::from_secs(3600)
    }

    /// A client configuration with the web PKI roots (ring).
    pub(crate) fn client_tls() -> rustls::ClientConfig {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_from_initial_up_to_max() {
        let retry = RetryPolicy::default();
        let pauses: Vec<_> = (1..=8).map(|n| retry.pause_after(n).as_secs()).collect();
        assert_eq!(pauses, [1, 2, 4, 8, 16, 32, 60, 60]);
        let huge = RetryPolicy {
            attempts: 100,
            initial: Duration::from_secs(u64::MAX / 2),
            max: Duration::from_secs(7),
        };
        assert_eq!(huge.pause_after(40), Duration::from_secs(7));
        assert_eq!(RetryPolicy::default().attempts, 3);
    }

    #[test]
    fn permanence_follows_the_status() {
        let status = |status| DeliveryError::WebhookStatus {
            target: "https://hooks.example".to_owned(),
            status,
            body: String::new(),
        };
        for (code, permanent) in [
            (302, true),
            (400, true),
            (401, true),
            (404, true),
            (408, false),
            (425, false),
            (429, false),
            (500, false),
            (503, false),
        ] {
            assert_eq!(status(code).is_permanent(), permanent, "HTTP {code}");
        }
    }

    #[test]
    fn scrub_replaces_every_secret_ignoring_case() {
        let secrets = [
            "SeCrEt".to_owned(),
            String::new(),
            "Bearer tok".to_owned(),
            "tok".to_owned(),
        ];
        assert_eq!(
            scrub(
                "GET /x/secret/SECRET?q=Secret Authorization: bearer TOK, tok Grüße",
                &secrets
            ),
            "GET /x/…/…?q=… Authorization: …, … Grüße"
        );
        assert_eq!(scrub("nothing here", &secrets), "nothing here");
        assert_eq!(scrub("", &secrets), "");
    }

    #[test]
    fn one_line_flattens_and_bounds() {
        assert_eq!(one_line("  a\r\nb\t\u{7}c  ", 10), "a b c");
        assert_eq!(one_line("abcdef", 3), "abc…");
        assert_eq!(one_line("äöü", 3), "äöü");
        assert_eq!(one_line("", 3), "");
    }
}
