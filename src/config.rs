//! From the command line to a [`ScanConfig`]: validating combinations and building the heavy
//! objects once (trust anchors, the TLS client configuration, the resolver settings).
//!
//! The command line (`cli`) holds only what was typed; this module reads the files it names
//! (CA and trust-anchor files, each within its cap in [`mxprobe_core::limits`]) and builds the
//! alert channels of `monitor` ([`monitor_channels`]). Environment variables are read once,
//! into [`Environment`], and passed in.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

use crate::cli::{
    DnsArgs, DnssecChoice, MonitorArgs, ProbeArgs, RelaySecurityArg, ScanArgs, WebhookFormatArg,
};
use crate::notify::Channel;
use mxprobe_core::evaluate::policy_fetch::ContentTypeRule;
use mxprobe_core::smtp::{EhloName, EhloNameError};
use mxprobe_core::tls::{AnchorError, Anchors};
use mxprobe_probe::capture::client_config;
use mxprobe_probe::fetch::{FetchConfig, FetchTimeouts};
use mxprobe_probe::resolver::{DnsConfig, DnssecMode, IpFamilies, TrustAnchor};
use mxprobe_probe::scan::ScanConfig;
use mxprobe_probe::starttls::SmtpConfig;

/// The name sent with EHLO when none is given and the host name has no dot.
pub const FALLBACK_EHLO_NAME: &str = "mxprobe.invalid";

pub use mxprobe_core::evaluate::EXPIRY_WARN_DAYS;

/// Why the command line cannot become a configuration (exit status 2). Each message is
/// whole, its cause included, and no variant has a [`source`](std::error::Error::source): a
/// chain printed with `{:#}` names each cause once.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A CA file could not be loaded.
    #[error("--ca-file: {0}")]
    CaFile(AnchorError),
    /// The SSL_CERT_FILE file could not be loaded.
    #[error("SSL_CERT_FILE: {0}")]
    SslCertFile(AnchorError),
    /// The EHLO name is unusable.
    #[error("--ehlo-name: {0}")]
    EhloName(EhloNameError),
    /// A file named by a flag is unreadable or over its cap.
    #[error("{0}")]
    File(mxprobe_core::limits::FileError),
    /// The trust anchor file is not text.
    #[error("--trust-anchor {0}: not UTF-8 text; give DNSKEY records in zone-file form")]
    TrustAnchorNotText(PathBuf),
    /// The trust anchor file holds no usable key.
    #[error("--trust-anchor {path}: {error}")]
    TrustAnchorInvalid {
        /// The file as given.
        path: PathBuf,
        error: mxprobe_probe::resolver::DnsSetupError,
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

impl From<mxprobe_core::limits::FileError> for ConfigError {
    fn from(error: mxprobe_core::limits::FileError) -> Self {
        Self::File(error)
    }
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
    polite_config(&args.probe, args.bulk.per_ip, args.bulk.per_ip_rate, env)
}

/// The configuration for probing with `probe`, at most `per_ip` connections to one address
/// and `per_ip_rate` new ones a second (`scan`, `worker`).
pub fn polite_config(
    probe: &ProbeArgs,
    per_ip: u32,
    per_ip_rate: Option<f64>,
    env: &Environment,
) -> Result<ScanConfig, ConfigError> {
    let mut config = probe_config(probe, env)?;
    config.politeness = mxprobe_probe::scan::Politeness {
        per_ip: usize::try_from(per_ip).unwrap_or(usize::MAX),
        per_ip_rate,
        ..mxprobe_probe::scan::Politeness::default()
    };
    Ok(config)
}

/// The resolver settings alone (for commands that only ask DNS), asking for `families`.
pub fn dns_config(args: &DnsArgs, families: IpFamilies) -> Result<DnsConfig, ConfigError> {
    let dnssec = match (args.dnssec, &args.trust_anchor) {
        (DnssecChoice::Validate, Some(path)) => {
            // Read here, once and capped (a FIFO or `/dev/zero` included); the resolver gets
            // the text.
            let bytes = mxprobe_core::limits::read_capped(
                "--trust-anchor",
                path,
                mxprobe_core::limits::TRUST_ANCHOR_BYTES,
            )?;
            let text = String::from_utf8(bytes)
                .map_err(|_| ConfigError::TrustAnchorNotText(path.clone()))?;
            let anchor = TrustAnchor::Dnskeys(text);
            mxprobe_probe::resolver::check_trust_anchor(&anchor).map_err(|error| {
                ConfigError::TrustAnchorInvalid {
                    path: path.clone(),
                    error,
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
        default_smtp_port: mxprobe_probe::scan::SMTP_PORT,
        fetch: FetchConfig::new(FetchTimeouts::default()),
        anchors,
        content_type: if args.strict_content_type {
            ContentTypeRule::Reject
        } else {
            ContentTypeRule::Warn
        },
        expiry_warn_days: EXPIRY_WARN_DAYS,
        no_smtp: args.no_smtp,
        politeness: mxprobe_probe::scan::Politeness::default(),
        probe_cache: mxprobe_probe::scan::ProbeCacheConfig::default(),
    }
    .with_default_ports(args.smtp_port, args.https_port))
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    /// A directory of its own under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn validate_from(anchor: &std::path::Path) -> DnsArgs {
        DnsArgs {
            resolver: None,
            dnssec: DnssecChoice::Validate,
            trust_anchor: Some(anchor.to_owned()),
        }
    }

    /// As `main` prints it (`{:#}` of an anyhow chain), each error names its cause once.
    #[test]
    fn each_cause_is_named_once() {
        let dir =
            TempDir(std::env::temp_dir().join(format!("mxprobe-config-{}", std::process::id())));
        std::fs::create_dir_all(&dir.0).unwrap();
        let missing = dir.0.join("missing");
        let no_key = dir.0.join("no-key.txt");
        std::fs::write(&no_key, "; a comment and nothing else\n").unwrap();
        let not_found = std::fs::read(&missing).unwrap_err().to_string();
        let bad_ehlo = EhloName::parse("bad name").unwrap_err();
        let no_key_reason = mxprobe_probe::resolver::check_trust_anchor(&TrustAnchor::Dnskeys(
            std::fs::read_to_string(&no_key).unwrap(),
        ))
        .unwrap_err()
        .to_string();

        let cases = [
            (
                ConfigError::CaFile(Anchors::from_pem_file(&missing).unwrap_err()),
                "--ca-file: ",
                not_found.clone(),
            ),
            (
                ConfigError::SslCertFile(Anchors::from_pem_file(&missing).unwrap_err()),
                "SSL_CERT_FILE: ",
                not_found.clone(),
            ),
            (
                ConfigError::EhloName(bad_ehlo.clone()),
                "--ehlo-name: ",
                bad_ehlo.to_string(),
            ),
            (
                dns_config(&validate_from(&missing), IpFamilies::Both).unwrap_err(),
                "--trust-anchor ",
                not_found,
            ),
            (
                dns_config(&validate_from(&no_key), IpFamilies::Both).unwrap_err(),
                "--trust-anchor ",
                no_key_reason,
            ),
        ];
        for (error, starts, cause) in cases {
            assert!(error.source().is_none(), "{error:?}");
            let alone = error.to_string();
            let shown = format!("{:#}", anyhow::Error::new(error).context("scan"));
            assert_eq!(shown, format!("scan: {alone}"));
            assert!(alone.starts_with(starts), "{alone}");
            assert_eq!(shown.matches(cause.as_str()).count(), 1, "{shown}");
        }
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
            roots.push(mxprobe_core::limits::read_capped(
                "--ca-file",
                path,
                mxprobe_core::limits::CA_FILE_BYTES,
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

/// The delivery of `scan --deliver-reports`: the From address, the relay when one is
/// given (with the credentials and extra roots of alert mail), the scan's anchors and ports.
pub fn deliver_config(
    args: &ScanArgs,
    scan: &ScanConfig,
    env: &Environment,
) -> anyhow::Result<crate::deliver::DeliverConfig> {
    use crate::notify::RelaySecurity;
    let from = match &args.report_from {
        Some(f) => f.clone(),
        None => format!(
            "mxprobe@{}",
            env.hostname
                .clone()
                .filter(|h| h.contains('.'))
                .unwrap_or_else(|| "localhost".to_owned())
        ),
    };
    from.parse::<lettre::message::Mailbox>().map_err(|e| {
        anyhow::anyhow!(
            "--report-from {from:?} is not a mail address ({e}); give one such as \
             tlsrpt-test@example.com"
        )
    })?;
    let relay = match &args.smtp_relay {
        None => None,
        Some(relay) => {
            let (host, port) = relay_address(relay, args.smtp_relay_security)?;
            let mut extra_roots_pem = Vec::new();
            for path in &args.probe.ca_file {
                extra_roots_pem.push(mxprobe_core::limits::read_capped(
                    "--ca-file",
                    path,
                    mxprobe_core::limits::CA_FILE_BYTES,
                )?);
            }
            Some(crate::deliver::Relay {
                host,
                port,
                security: match args.smtp_relay_security {
                    RelaySecurityArg::Starttls => RelaySecurity::StartTls,
                    RelaySecurityArg::Tls => RelaySecurity::Tls,
                    RelaySecurityArg::None => RelaySecurity::None,
                },
                credentials: crate::notify::credentials_from_env(env.vars.iter().cloned())?,
                extra_roots_pem,
            })
        }
    };
    crate::deliver::DeliverConfig::new(scan, from, relay)
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
mod channel_tests {
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
