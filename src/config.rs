//! From the command line to a [`ScanConfig`]: validating combinations and building the heavy
//! objects once (trust anchors, the TLS client configuration, the resolver settings).
//!
//! The command line (`cli`) holds only what was typed; this module reads the files it names
//! (CA and trust-anchor files, each within its cap in [`mxprobe_core::limits`]). Environment
//! variables are read by `main` and passed in.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::cli::{DnsArgs, DnssecChoice, ProbeArgs, ScanArgs};
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
    File(#[from] mxprobe_core::limits::FileError),
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
        source: mxprobe_probe::resolver::DnsSetupError,
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

/// What the environment contributes (read by `main`, so that this module reads none).
#[derive(Debug, Clone, Default)]
pub struct Environment {
    /// SSL_CERT_FILE, when set: more trusted CAs.
    pub ssl_cert_file: Option<PathBuf>,
    /// This host's name, for the default EHLO name.
    pub hostname: Option<String>,
}

/// Builds the scan configuration of `mxprobe scan` (the probe settings and the politeness
/// flags of bulk scans).
pub fn scan_config(args: &ScanArgs, env: &Environment) -> Result<ScanConfig, ConfigError> {
    let mut config = probe_config(&args.probe, env)?;
    config.politeness = mxprobe_probe::scan::Politeness {
        per_ip: usize::try_from(args.per_ip).unwrap_or(usize::MAX),
        per_ip_rate: args.per_ip_rate,
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
            mxprobe_probe::resolver::check_trust_anchor(&anchor).map_err(|source| {
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
