//! The resolver configuration and the DNSSEC trust anchor, with no hickory types in the
//! configuration.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use hickory_resolver::proto::dnssec::TrustAnchors;

/// Where the DNSSEC trust anchor for [`DnssecMode::Validate`] comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrustAnchor {
    /// The IANA root KSKs built into hickory (2018 and 2024 keys).
    IanaRoot,
    /// A file of DNSKEY records in zone-file form, one per line, e.g.
    /// `. 3600 IN DNSKEY 257 3 13 <base64>` (`--trust-anchor FILE`).
    File(PathBuf),
    /// The same DNSKEY lines given as text (the lab hands its root key this way).
    Dnskeys(String),
}

/// How DNSSEC status is obtained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnssecMode {
    /// Validate in-process from the given trust anchor (the default, with the IANA root).
    Validate(TrustAnchor),
    /// Trust the AD bit of the configured (validating, trusted) resolver, as Postfix does.
    TrustResolverAd,
    /// No DNSSEC: every answer is indeterminate.
    Off,
}

/// Which address families [`Resolver::addresses`](super::Resolver::addresses) asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpFamilies {
    /// A only (`-4`).
    V4,
    /// AAAA only (`-6`).
    V6,
    /// A and AAAA (the default: every address of every MX is probed).
    Both,
}

/// Resolver configuration, with no hickory types in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsConfig {
    /// The servers to ask (recursive resolvers, or the lab's authoritative server), each
    /// over UDP and TCP; `None` reads the system configuration (`/etc/resolv.conf`).
    pub servers: Option<Vec<SocketAddr>>,
    /// How DNSSEC status is obtained.
    pub dnssec: DnssecMode,
    /// How long to wait for one answer.
    pub timeout: Duration,
    /// How many times a query is sent before giving up (at least 1).
    pub attempts: usize,
    /// Which address families to look up.
    pub families: IpFamilies,
}

impl Default for DnsConfig {
    /// System resolvers, in-process validation from the IANA root, 5 s timeout, 2 attempts,
    /// both families.
    fn default() -> Self {
        Self {
            servers: None,
            dnssec: DnssecMode::Validate(TrustAnchor::IanaRoot),
            timeout: Duration::from_secs(5),
            attempts: 2,
            families: IpFamilies::Both,
        }
    }
}

/// Why the resolver could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DnsSetupError {
    /// The system resolver configuration could not be read.
    #[error("cannot read the system DNS configuration (/etc/resolv.conf): {reason}")]
    SystemConfig {
        /// What hickory reported.
        reason: String,
    },
    /// An empty server list was given.
    #[error("no DNS server was given; name at least one resolver address")]
    NoServers,
    /// The trust anchor file could not be read or parsed.
    #[error("cannot use the DNSSEC trust anchor file {path}: {reason}")]
    TrustAnchorFile {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The trust anchor text could not be parsed.
    #[error("the DNSSEC trust anchor is not a list of DNSKEY records: {reason}")]
    TrustAnchorText {
        /// What went wrong.
        reason: String,
    },
    /// The trust anchor holds no key.
    #[error("the DNSSEC trust anchor holds no DNSKEY record")]
    EmptyTrustAnchor,
    /// hickory refused the configuration.
    #[error("cannot build the DNS resolver: {reason}")]
    Build {
        /// What hickory reported.
        reason: String,
    },
}

/// Checks that `anchor` can be used (parsed, and holding a key) before any resolver is built,
/// so that the command line can name the file at fault.
pub fn check_trust_anchor(anchor: &TrustAnchor) -> Result<(), DnsSetupError> {
    load_trust_anchor(anchor).map(drop)
}

pub(super) fn load_trust_anchor(anchor: &TrustAnchor) -> Result<TrustAnchors, DnsSetupError> {
    let anchors = match anchor {
        TrustAnchor::IanaRoot => return Ok(TrustAnchors::default()),
        TrustAnchor::File(path) => {
            let file_error = |reason: String| DnsSetupError::TrustAnchorFile {
                path: path.clone(),
                reason,
            };
            let bytes = mxprobe_core::limits::read_capped(
                "--trust-anchor",
                path,
                mxprobe_core::limits::TRUST_ANCHOR_BYTES,
            )
            .map_err(|e| file_error(e.to_string()))?;
            let text =
                String::from_utf8(bytes).map_err(|_| file_error("not UTF-8 text".to_owned()))?;
            TrustAnchors::from_str(&text).map_err(|e| file_error(e.to_string()))?
        }
        TrustAnchor::Dnskeys(text) => {
            TrustAnchors::from_str(text).map_err(|e| DnsSetupError::TrustAnchorText {
                reason: e.to_string(),
            })?
        }
    };
    // `len` counts root keys only; a file of keys for other names is legitimate too, but a
    // file with nothing in it would silently validate nothing.
    if anchors.is_empty() && trust_anchor_text_is_empty(anchor) {
        return Err(DnsSetupError::EmptyTrustAnchor);
    }
    Ok(anchors)
}

/// True when the anchor source holds no DNSKEY line at all (only comments and blanks).
fn trust_anchor_text_is_empty(anchor: &TrustAnchor) -> bool {
    let text = match anchor {
        TrustAnchor::IanaRoot => return false,
        TrustAnchor::File(path) => std::fs::read_to_string(path).unwrap_or_default(),
        TrustAnchor::Dnskeys(text) => text.clone(),
    };
    !text.to_ascii_uppercase().contains("DNSKEY")
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_trust_anchor_is_refused() {
        let result = load_trust_anchor(&TrustAnchor::Dnskeys("; nothing\n".into()));
        assert!(
            matches!(result, Err(DnsSetupError::EmptyTrustAnchor)),
            "an anchor without keys must be refused"
        );
        assert!(load_trust_anchor(&TrustAnchor::IanaRoot).is_ok());
    }
}
