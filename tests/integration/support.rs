//! Shared test helpers: a test certificate authority with fixed validity windows.

use mxprobe::lab::pki::{CertAuthority, Issued, KeyKind, LeafSpec, Validity};
use mxprobe::tls::Anchors;
use rustls_pki_types::CertificateDer;
use time::macros::datetime;

/// 2020 to 2035: the CA certificates' window.
pub(crate) fn ca_window() -> Validity {
    Validity::new(
        datetime!(2020-01-01 0:00 UTC),
        datetime!(2035-01-01 0:00 UTC),
    )
}

/// 2025: the window of a leaf that is valid at the tests' fixed "now" (mid-2025).
pub(crate) fn leaf_window() -> Validity {
    Validity::new(
        datetime!(2025-01-01 0:00 UTC),
        datetime!(2026-01-01 0:00 UTC),
    )
}

/// A test CA that issues leaves, and the anchors that trust it.
pub(crate) struct TestPki {
    /// The issuing CA (the root itself, or an intermediate under it).
    pub(crate) ca: CertAuthority,
    /// Trusts the root.
    pub(crate) anchors: Anchors,
}

impl TestPki {
    /// A root that issues leaves itself.
    pub(crate) fn root(name: &str) -> Self {
        let ca = CertAuthority::root(name, ca_window(), KeyKind::EcdsaP256).unwrap();
        let anchors = Anchors::from_pem(ca.cert().pem().as_bytes()).unwrap();
        Self { ca, anchors }
    }

    /// A root and an intermediate under it that issues leaves, so chains have two entries.
    pub(crate) fn with_intermediate(name: &str) -> Self {
        let root = Self::root(name);
        let ca = root
            .ca
            .intermediate(
                &format!("{name} Intermediate"),
                ca_window(),
                KeyKind::EcdsaP256,
            )
            .unwrap();
        Self {
            ca,
            anchors: root.anchors,
        }
    }

    /// A leaf for `names`, valid during `validity`.
    pub(crate) fn leaf(&self, names: &[&str], validity: Validity) -> Issued {
        self.ca.leaf(&LeafSpec::new(names, validity)).unwrap()
    }

    /// The chain a server would present for a leaf (leaf first).
    pub(crate) fn chain(&self, leaf: &Issued) -> Vec<CertificateDer<'static>> {
        self.ca.chain_for(leaf)
    }

    /// A chain for a leaf valid in [`leaf_window`], as DER bytes (what the fetcher records).
    pub(crate) fn der_chain(&self, names: &[&str]) -> Vec<Vec<u8>> {
        let leaf = self.leaf(names, leaf_window());
        self.chain(&leaf)
            .into_iter()
            .map(|c| c.as_ref().to_vec())
            .collect()
    }
}
