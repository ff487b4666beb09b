//! From the command line to a [`ScanConfig`]: validating combinations and building the heavy
//! objects once (trust anchors, the TLS client configuration, the resolver settings).
//!
//! The command line (`cli`) holds only what was typed; this module reads the files it names
//! (CA and trust-anchor files, each within its cap in [`crate::limits`]) and builds the alert
//! channels of `monitor` ([`monitor_channels`]). Environment variables are read once, into
//! [`Environment`], and passed in.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

use crate::cli::{
    DnsArgs, DnssecChoice, MonitorArgs, ProbeArgs, RelaySecurityArg, ScanArgs, WebhookFormatArg,
};
use crate::dns::hickory::{DnsConfig, DnssecMode, IpFamilies, TrustAnchor};
use crate::evaluate::policy_fetch::ContentTypeRule;
use crate::fetch::{FetchConfig, FetchTimeouts};
use crate::notify::Channel;
use crate::scan::ScanConfig;
use crate::smtp::{EhloName, EhloNameError, SmtpConfig};
use crate::tls::capture::client_config;
use crate::tls::{AnchorError, Anchors};

/// The name sent with EHLO when none is given and the host name has no dot.
pub const FALLBACK_EHLO_NAME: &str = "mxprobe.invalid";

/// Days before expiry that a valid certificate draws a warning.
pub const EXPIRY_WARN_DAYS: i64 = 21;

/// Why the command line cannot become a configuration (exit status 2).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A CA file could not be loaded.
    #[error("--ca-file: {0}")]
    CaFile(#[source] AnchorError),
    /// The SSL_CERT_FILE file could not be loaded.
    #[error("SSL_CERT_FILE: {0}")]
    SslCertFile(#[source] AnchorError),
    /// The EHLO name is unusable.
    #[error("--ehlo-name: {0}")]
    EhloName(#[source] EhloNameError),
    /// A file named by a flag is unreadable or over its cap.
    #[error(transparent)]
    File(#[from] crate::limits::FileError),
    /// The trust anchor file is not text.
    #[error("--trust-anchor {0}: not UTF-8 text; give DNSKEY records in zone-file form")]
    TrustAnchorNotText(PathBuf),
    /// The trust anchor file holds no usable key.
    #[error("--trust-anchor {path}")]
    TrustAnchorInvalid {
        /// The file as given.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: crate::dns::hickory::DnsSetupError,
    },
    /// --trust-anchor without in-process validation.
    #[error("--trust-anchor only applies with --dnssec validate")]
    TrustAnchorWithoutValidation,
    /// --dnssec resolver needs a resolver to trust.
    #[error(
        "--dnssec resolver trusts the AD bit of a local validating resolver: name it with \
         --resolver (e.g. --resolver 127.0.0.1)"
    )]
    ResolverModeWithoutResolver,
}

/// What the environment contributes (read once at start, so that this module reads none).
#[derive(Clone, Default)]
pub struct Environment {
    /// SSL_CERT_FILE, when set: more trusted CAs.
    pub ssl_cert_file: Option<PathBuf>,
    /// This host's name, for the default EHLO name.
    pub hostname: Option<String>,
    /// The variables whose name and value are UTF-8: alert webhook headers and relay
    /// credentials come from them.
    pub vars: Vec<(String, String)>,
}

/// The variables by name only: their values may be credentials.
impl std::fmt::Debug for Environment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Environment")
            .field("ssl_cert_file", &self.ssl_cert_file)
            .field("hostname", &self.hostname)
            .field(
                "vars",
                &self.vars.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Environment {
    /// This process's environment.
    pub fn of_process() -> Self {
        Self {
            ssl_cert_file: std::env::var_os("SSL_CERT_FILE").map(Into::into),
            hostname: gethostname::gethostname().into_string().ok(),
            vars: std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .collect(),
        }
    }
}

/// Builds the scan configuration of `mxprobe scan` (the probe settings and the politeness
/// flags of bulk scans).
pub fn scan_config(args: &ScanArgs, env: &Environment) -> Result<ScanConfig, ConfigError> {
    let mut config = probe_config(&args.probe, env)?;
    config.politeness = crate::scan::Politeness {
        per_ip: usize::try_from(args.per_ip).unwrap_or(usize::MAX),
        per_ip_rate: args.per_ip_rate,
        ..crate::scan::Politeness::default()
    };
    Ok(config)
}

/// The resolver settings alone (for commands that only ask DNS), asking for `families`.
pub fn dns_config(args: &DnsArgs, families: IpFamilies) -> Result<DnsConfig, ConfigError> {
    let dnssec = match (args.dnssec, &args.trust_anchor) {
        (DnssecChoice::Validate, Some(path)) => {
            // Read here, once and capped (a FIFO or `/dev/zero` included); the resolver gets
            // the text.
            let bytes = crate::limits::read_capped(
                "--trust-anchor",
                path,
                crate::limits::TRUST_ANCHOR_BYTES,
            )?;
            let text = String::from_utf8(bytes)
                .map_err(|_| ConfigError::TrustAnchorNotText(path.clone()))?;
            let anchor = TrustAnchor::Dnskeys(text);
            crate::dns::hickory::check_trust_anchor(&anchor).map_err(|source| {
                ConfigError::TrustAnchorInvalid {
                    path: path.clone(),
                    source,
                }
            })?;
            DnssecMode::Validate(anchor)
        }
        (DnssecChoice::Validate, None) => DnssecMode::Validate(TrustAnchor::IanaRoot),
        (_, Some(_)) => return Err(ConfigError::TrustAnchorWithoutValidation),
        (DnssecChoice::Resolver, None) if args.resolver.is_none() => {
            return Err(ConfigError::ResolverModeWithoutResolver);
        }
        (DnssecChoice::Resolver, None) => DnssecMode::TrustResolverAd,
        (DnssecChoice::Off, None) => DnssecMode::Off,
    };
    Ok(DnsConfig {
        servers: args.resolver.map(|r| vec![r]),
        dnssec,
        families,
        ..DnsConfig::default()
    })
}

/// The configuration for probing with `args` (default politeness, as for a few domains).
pub fn probe_config(args: &ProbeArgs, env: &Environment) -> Result<ScanConfig, ConfigError> {
    let families = match (args.ipv4_only, args.ipv6_only) {
        (true, _) => IpFamilies::V4,
        (_, true) => IpFamilies::V6,
        _ => IpFamilies::Both,
    };
    let dns = dns_config(&args.dns, families)?;

    let mut anchors = Anchors::mozilla();
    for path in &args.ca_file {
        anchors.extend(Anchors::from_pem_file(path).map_err(ConfigError::CaFile)?);
    }
    if let Some(path) = &env.ssl_cert_file {
        anchors.extend(Anchors::from_pem_file(path).map_err(ConfigError::SslCertFile)?);
    }

    let ehlo = match &args.ehlo_name {
        Some(name) => name.clone(),
        None => env
            .hostname
            .clone()
            .filter(|h| h.contains('.'))
            .unwrap_or_else(|| FALLBACK_EHLO_NAME.to_owned()),
    };
    let smtp = SmtpConfig {
        ehlo_name: EhloName::parse(&ehlo).map_err(ConfigError::EhloName)?,
        connect_timeout: Duration::from_secs(10),
        phase_timeout: Duration::from_secs(30),
        deadline: Duration::from_secs(args.smtp_deadline.max(1)),
        tls: client_config(),
    };
    Ok(ScanConfig {
        dns,
        smtp,
        smtp_ports: HashMap::new(),
        default_smtp_port: crate::scan::SMTP_PORT,
        fetch: FetchConfig::new(FetchTimeouts::default()),
        anchors,
        content_type: if args.strict_content_type {
            ContentTypeRule::Reject
        } else {
            ContentTypeRule::Warn
        },
        expiry_warn_days: EXPIRY_WARN_DAYS,
        no_smtp: args.no_smtp,
        politeness: crate::scan::Politeness::default(),
        probe_cache: crate::scan::ProbeCacheConfig::default(),
    }
    .with_default_ports(args.smtp_port, args.https_port))
}

impl ScanConfig {
    /// Uses `smtp` and `https` as the ports for every address without an entry in the port
    /// maps (25 and 443 unless changed).
    pub fn with_default_ports(mut self, smtp: u16, https: u16) -> Self {
        self.default_smtp_port = smtp;
        self.fetch = self.fetch.with_default_port(https);
        self
    }
}

/// The alert channels the flags of `monitor` and the environment name.
pub fn monitor_channels(
    args: &MonitorArgs,
    env: &Environment,
    anchors: &Anchors,
) -> anyhow::Result<Vec<Channel>> {
    use crate::notify::{Email, Exec, RelaySecurity, Webhook, WebhookFormat};
    let mut channels = Vec::new();
    if let Some(url) = &args.webhook {
        let parsed = reqwest::Url::parse(url).map_err(|e| {
            anyhow::anyhow!("--webhook: not a URL ({e}); give the full https:// address")
        })?;
        let headers = crate::notify::headers_from_env(env.vars.iter().cloned())?;
        let webhook = Webhook::new(
            parsed,
            match args.webhook_format {
                WebhookFormatArg::Json => WebhookFormat::Json,
                WebhookFormatArg::Text => WebhookFormat::Text,
            },
            headers,
            Duration::from_secs(args.alert_timeout),
            verifying_tls(anchors)?,
        )?;
        channels.push(Channel::Webhook(webhook));
    }
    if !args.email.is_empty() {
        let relay = args
            .smtp_relay
            .as_deref()
            .context("--email needs --smtp-relay HOST[:PORT]")?;
        let (host, port) = relay_address(relay, args.smtp_relay_security)?;
        let hostname = env.hostname.clone().filter(|h| h.contains('.'));
        let from = match &args.email_from {
            Some(f) => f.clone(),
            None => format!(
                "mxprobe@{}",
                hostname.clone().unwrap_or_else(|| "localhost".to_owned())
            ),
        };
        let mut roots = Vec::new();
        for path in &args.probe.ca_file {
            roots.push(crate::limits::read_capped(
                "--ca-file",
                path,
                crate::limits::CA_FILE_BYTES,
            )?);
        }
        let mut email = Email::new(
            host,
            port,
            match args.smtp_relay_security {
                RelaySecurityArg::Starttls => RelaySecurity::StartTls,
                RelaySecurityArg::Tls => RelaySecurity::Tls,
                RelaySecurityArg::None => RelaySecurity::None,
            },
            from,
            args.email.clone(),
            crate::notify::credentials_from_env(env.vars.iter().cloned())?,
            roots,
        )?
        .with_timeout(Duration::from_secs(args.alert_timeout));
        if let Some(name) = hostname {
            email = email.with_hello_name(name);
        }
        channels.push(Channel::Email(email));
    }
    if let Some(program) = &args.exec {
        channels.push(Channel::Exec(Exec::new(
            program.clone(),
            Vec::new(),
            Duration::from_secs(args.alert_timeout),
        )));
    }
    Ok(channels)
}

/// `--smtp-relay HOST[:PORT]`: without a port (or for a bare IPv6 address), 465 for TLS
/// from the first byte, else 587.
fn relay_address(relay: &str, security: RelaySecurityArg) -> anyhow::Result<(String, u16)> {
    Ok(match relay.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (
            h.to_owned(),
            p.parse::<u16>()
                .map_err(|_| anyhow::anyhow!("--smtp-relay {relay:?}: {p:?} is not a port"))?,
        ),
        _ => (
            relay.to_owned(),
            if security == RelaySecurityArg::Tls {
                465
            } else {
                587
            },
        ),
    })
}

/// A certificate-verifying TLS client configuration trusting `anchors` (Mozilla's roots,
/// --ca-file and SSL_CERT_FILE): never the probes' recording verifier.
fn verifying_tls(anchors: &Anchors) -> anyhow::Result<rustls::ClientConfig> {
    let roots = rustls::RootCertStore {
        roots: anchors.as_slice().to_vec(),
    };
    Ok(rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn monitor_args(flags: &[&str]) -> MonitorArgs {
        let mut argv = vec!["mxprobe", "monitor", "--db", "h.sqlite", "a.example"];
        argv.extend_from_slice(flags);
        match Cli::try_parse_from(argv).unwrap().command {
            Command::Monitor(args) => args,
            other => panic!("not monitor: {other:?}"),
        }
    }

    fn channels(flags: &[&str], env: &Environment) -> anyhow::Result<Vec<String>> {
        let args = monitor_args(flags);
        Ok(monitor_channels(&args, env, &Anchors::mozilla())?
            .iter()
            .map(|c| format!("{} {}", c.name(), c.target()))
            .collect())
    }

    #[test]
    fn relay_port_defaults_by_security_and_ipv6_needs_no_port() {
        use RelaySecurityArg::{None as Plain, Starttls, Tls};
        let cases = [
            ("smtp.example.com", Starttls, ("smtp.example.com", 587)),
            ("smtp.example.com", Tls, ("smtp.example.com", 465)),
            ("smtp.example.com:2525", Tls, ("smtp.example.com", 2525)),
            ("127.0.0.1:25", Plain, ("127.0.0.1", 25)),
            // A bare IPv6 address: its colons are not a port.
            ("::1", Plain, ("::1", 587)),
        ];
        for (relay, security, (host, port)) in cases {
            let got = relay_address(relay, security).unwrap();
            assert_eq!(got, (host.to_owned(), port), "{relay}");
        }
        let err = relay_address("smtp.example.com:smtp", Starttls).unwrap_err();
        assert_eq!(
            err.to_string(),
            "--smtp-relay \"smtp.example.com:smtp\": \"smtp\" is not a port"
        );
    }

    #[test]
    fn channels_from_flags_and_environment() {
        let env = Environment {
            hostname: Some("probe.example.net".to_owned()),
            vars: vec![
                ("MXPROBE_SMTP_USER".to_owned(), "u".to_owned()),
                ("MXPROBE_SMTP_PASSWORD".to_owned(), "p".to_owned()),
            ],
            ..Environment::default()
        };
        assert!(channels(&[], &env).unwrap().is_empty());
        let shown = format!("{env:?}");
        assert!(
            shown.contains("MXPROBE_SMTP_PASSWORD") && !shown.contains("\"p\""),
            "{shown}"
        );
        let got = channels(
            &[
                "--webhook",
                "https://hooks.example.com/x",
                "--email",
                "ops@example.com",
                "--smtp-relay",
                "smtp.example.com",
                "--exec",
                "/bin/true",
            ],
            &env,
        )
        .unwrap();
        assert_eq!(got.len(), 3, "{got:?}");
        assert!(got[0].starts_with("webhook "), "{got:?}");
        assert_eq!(got[1], "email smtp.example.com:587 (starttls)");
        assert!(got[2].starts_with("exec "), "{got:?}");
    }

    #[test]
    fn channel_flags_are_checked() {
        let env = Environment::default();
        let err = channels(&["--webhook", "hooks.example.com/x"], &env).unwrap_err();
        assert!(err.to_string().starts_with("--webhook: not a URL"), "{err}");
        // Half the relay credentials is an error, not an anonymous session.
        let half = Environment {
            vars: vec![("MXPROBE_SMTP_USER".to_owned(), "u".to_owned())],
            ..Environment::default()
        };
        let flags = [
            "--email",
            "ops@example.com",
            "--smtp-relay",
            "smtp.example.com",
        ];
        assert!(channels(&flags, &half).is_err());
        assert!(channels(&flags, &env).is_ok());
    }
}
