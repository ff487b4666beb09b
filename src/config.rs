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
