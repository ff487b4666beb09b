//! The mail lab's certificate factory (rcgen).
//!
//! Builds the certificates the lab's SMTP and HTTPS servers present and the tests judge: a
//! root CA, intermediates under it, leaf certificates with chosen SANs (wildcards included),
//! chosen validity windows (expired, not yet valid), self-signed leaves, and a choice of key
//! type. Every certificate comes back as DER and PEM and as the rustls types
//! ([`CertificateDer`], [`PrivateKeyDer`]) a `rustls::ServerConfig` takes.
//!
//! Deterministic where it matters: validity dates are always passed in and serial numbers
//! are derived from the public key (rcgen's default), so only the random keys differ between
//! runs. Key generation uses *ring*, which can generate ECDSA P-256 / P-384 and Ed25519 keys
//! but **not RSA keys** (ring has no RSA key generation); [`KeyKind`] therefore offers no
//! RSA variant. No I/O: nothing is written to disk.

use std::fmt;
use std::net::IpAddr;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use time::OffsetDateTime;

/// Why the factory could not make a certificate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PkiError {
    /// ring could not generate a key of this kind.
    #[error("cannot generate a {kind} key: {source}")]
    KeyGeneration {
        /// The key kind asked for.
        kind: KeyKind,
        /// rcgen's error.
        #[source]
        source: rcgen::Error,
    },
    /// A SAN dNSName that rcgen cannot encode (not IA5).
    #[error("{name:?} cannot be put in a certificate as a DNS name: {source}")]
    BadDnsName {
        /// The name as given.
        name: String,
        /// rcgen's error.
        #[source]
        source: rcgen::Error,
    },
    /// Signing the certificate failed.
    #[error("cannot sign the certificate for {subject:?}: {source}")]
    Sign {
        /// The subject common name.
        subject: String,
        /// rcgen's error.
        #[source]
        source: rcgen::Error,
    },
}

/// The kind of key pair to generate (what *ring* can generate).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum KeyKind {
    /// ECDSA on NIST P-256, signatures with SHA-256.
    #[default]
    EcdsaP256,
    /// ECDSA on NIST P-384, signatures with SHA-384.
    EcdsaP384,
    /// Ed25519.
    Ed25519,
}

impl KeyKind {
    fn algorithm(self) -> &'static rcgen::SignatureAlgorithm {
        match self {
            Self::EcdsaP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            Self::EcdsaP384 => &rcgen::PKCS_ECDSA_P384_SHA384,
            Self::Ed25519 => &rcgen::PKCS_ED25519,
        }
    }

    fn generate(self) -> Result<KeyPair, PkiError> {
        KeyPair::generate_for(self.algorithm())
            .map_err(|source| PkiError::KeyGeneration { kind: self, source })
    }
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::EcdsaP256 => "ECDSA P-256",
            Self::EcdsaP384 => "ECDSA P-384",
            Self::Ed25519 => "Ed25519",
        })
    }
}

/// A validity window (RFC 5280 §4.1.2.5), both ends inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    /// notBefore.
    pub not_before: OffsetDateTime,
    /// notAfter.
    pub not_after: OffsetDateTime,
}

impl Validity {
    /// A window from `not_before` to `not_after`.
    pub fn new(not_before: OffsetDateTime, not_after: OffsetDateTime) -> Self {
        Self {
            not_before,
            not_after,
        }
    }
}

/// What a leaf certificate should say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeafSpec {
    /// The subject common name (not used for name matching; RFC 9525 is DNS-ID only).
    pub common_name: String,
    /// SAN dNSNames, exactly as they go into the certificate (`*.example.com` allowed).
    pub dns_names: Vec<String>,
    /// SAN iPAddresses.
    pub ip_addresses: Vec<IpAddr>,
    /// The validity window.
    pub validity: Validity,
    /// The key kind.
    pub key: KeyKind,
    /// Whether the EKU extension lists id-kp-serverAuth; `false` puts only id-kp-clientAuth
    /// there, which a TLS client must reject (RFC 5280 §4.2.1.12).
    pub server_auth: bool,
}

impl LeafSpec {
    /// A server leaf for `dns_names` (the first is also the CN), ECDSA P-256, serverAuth.
    pub fn new(dns_names: &[&str], validity: Validity) -> Self {
        Self {
            common_name: dns_names
                .first()
                .copied()
                .unwrap_or("mxprobe lab leaf")
                .to_owned(),
            dns_names: dns_names.iter().map(|s| (*s).to_owned()).collect(),
            ip_addresses: Vec::new(),
            validity,
            key: KeyKind::EcdsaP256,
            server_auth: true,
        }
    }
}

/// One issued certificate with its private key.
#[derive(Clone)]
pub struct Issued {
    der: CertificateDer<'static>,
    pem: String,
    key_pkcs8: Vec<u8>,
    key_pem: String,
}

impl Issued {
    fn new(cert: &rcgen::Certificate, key: &KeyPair) -> Self {
        Self {
            der: cert.der().clone(),
            pem: cert.pem(),
            key_pkcs8: key.serialize_der(),
            key_pem: key.serialize_pem(),
        }
    }

    /// The certificate, DER.
    pub fn der(&self) -> &CertificateDer<'static> {
        &self.der
    }

    /// The certificate, PEM.
    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// The private key (PKCS#8), as rustls takes it.
    pub fn private_key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_pkcs8.clone()))
    }

    /// The private key, PKCS#8 PEM.
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }
}

impl fmt::Debug for Issued {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The key stays out of debug output, lab key or not.
        f.debug_struct("Issued")
            .field("der_len", &self.der.len())
            .finish_non_exhaustive()
    }
}

/// A certificate authority: a root or an intermediate that can issue certificates.
pub struct CertAuthority {
    issued: Issued,
    issuer: Issuer<'static, KeyPair>,
    /// The certificates above this one, nearest first (empty for a root).
    parents: Vec<CertificateDer<'static>>,
}

impl fmt::Debug for CertAuthority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertAuthority")
            .field("cert", &self.issued)
            .field("parents", &self.parents.len())
            .finish_non_exhaustive()
    }
}

fn name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "mxprobe lab");
    dn.push(DnType::CommonName, common_name);
    dn
}

fn ca_params(common_name: &str, validity: Validity) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = name(common_name);
    params.not_before = validity.not_before;
    params.not_after = validity.not_after;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

fn leaf_params(spec: &LeafSpec) -> Result<CertificateParams, PkiError> {
    let mut params = CertificateParams::default();
    params.distinguished_name = name(&spec.common_name);
    params.not_before = spec.validity.not_before;
    params.not_after = spec.validity.not_after;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![if spec.server_auth {
        ExtendedKeyUsagePurpose::ServerAuth
    } else {
        ExtendedKeyUsagePurpose::ClientAuth
    }];
    for dns in &spec.dns_names {
        let ia5 = dns
            .as_str()
            .try_into()
            .map_err(|source| PkiError::BadDnsName {
                name: dns.clone(),
                source,
            })?;
        params.subject_alt_names.push(SanType::DnsName(ia5));
    }
    params
        .subject_alt_names
        .extend(spec.ip_addresses.iter().map(|ip| SanType::IpAddress(*ip)));
    Ok(params)
}

impl CertAuthority {
    /// A self-signed root CA.
    pub fn root(common_name: &str, validity: Validity, key: KeyKind) -> Result<Self, PkiError> {
        let params = ca_params(common_name, validity);
        let key = key.generate()?;
        let cert = params.self_signed(&key).map_err(|source| PkiError::Sign {
            subject: common_name.to_owned(),
            source,
        })?;
        Ok(Self {
            issued: Issued::new(&cert, &key),
            issuer: Issuer::new(params, key),
            parents: Vec::new(),
        })
    }

    /// An intermediate CA issued by this one.
    pub fn intermediate(
        &self,
        common_name: &str,
        validity: Validity,
        key: KeyKind,
    ) -> Result<Self, PkiError> {
        let params = ca_params(common_name, validity);
        let key = key.generate()?;
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(|source| PkiError::Sign {
                subject: common_name.to_owned(),
                source,
            })?;
        let mut parents = vec![self.issued.der.clone()];
        parents.extend(self.parents.iter().cloned());
        Ok(Self {
            issued: Issued::new(&cert, &key),
            issuer: Issuer::new(params, key),
            parents,
        })
    }

    /// A leaf certificate issued by this CA.
    pub fn leaf(&self, spec: &LeafSpec) -> Result<Issued, PkiError> {
        let params = leaf_params(spec)?;
        let key = spec.key.generate()?;
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(|source| PkiError::Sign {
                subject: spec.common_name.clone(),
                source,
            })?;
        Ok(Issued::new(&cert, &key))
    }

    /// This CA's own certificate and key.
    pub fn cert(&self) -> &Issued {
        &self.issued
    }

    /// The chain a correctly configured server sends for `leaf`: the leaf, this CA and every
    /// CA above it except the root (RFC 8446 §4.4.2: the root MAY be omitted).
    pub fn chain_for(&self, leaf: &Issued) -> Vec<CertificateDer<'static>> {
        let mut chain = vec![leaf.der.clone()];
        if !self.parents.is_empty() {
            chain.push(self.issued.der.clone());
            let above = self.parents.len() - 1;
            chain.extend(self.parents.iter().take(above).cloned());
        }
        chain
    }

    /// [`Self::chain_for`] plus the root certificate at the end.
    pub fn full_chain_for(&self, leaf: &Issued) -> Vec<CertificateDer<'static>> {
        let mut chain = self.chain_for(leaf);
        chain.push(self.parents.last().unwrap_or(&self.issued.der).clone());
        chain
    }
}

/// A self-signed leaf (not a CA): what a server presents when nobody issued it a certificate.
pub fn self_signed_leaf(spec: &LeafSpec) -> Result<Issued, PkiError> {
    let params = leaf_params(spec)?;
    let key = spec.key.generate()?;
    let cert = params.self_signed(&key).map_err(|source| PkiError::Sign {
        subject: spec.common_name.clone(),
        source,
    })?;
    Ok(Issued::new(&cert, &key))
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    fn window() -> Validity {
        Validity::new(
            datetime!(2024-01-01 0:00 UTC),
            datetime!(2034-01-01 0:00 UTC),
        )
    }

    #[test]
    fn every_key_kind_issues() {
        for kind in [KeyKind::EcdsaP256, KeyKind::EcdsaP384, KeyKind::Ed25519] {
            let root = CertAuthority::root("Root", window(), kind).unwrap();
            let mut spec = LeafSpec::new(&["mx.example.com"], window());
            spec.key = kind;
            let leaf = root.leaf(&spec).unwrap();
            assert!(
                leaf.pem().starts_with("-----BEGIN CERTIFICATE-----"),
                "{kind}"
            );
            assert!(leaf.key_pem().contains("PRIVATE KEY"), "{kind}");
            assert!(matches!(leaf.private_key(), PrivateKeyDer::Pkcs8(_)));
        }
    }

    #[test]
    fn ring_cannot_generate_rsa() {
        assert!(KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).is_err());
    }

    #[test]
    fn chains_have_the_documented_shape() {
        let root = CertAuthority::root("Root", window(), KeyKind::EcdsaP256).unwrap();
        let int = root
            .intermediate("Int", window(), KeyKind::EcdsaP256)
            .unwrap();
        let leaf = int
            .leaf(&LeafSpec::new(&["mx.example.com"], window()))
            .unwrap();
        assert_eq!(
            int.chain_for(&leaf),
            vec![leaf.der().clone(), int.cert().der().clone()]
        );
        assert_eq!(
            int.full_chain_for(&leaf),
            vec![
                leaf.der().clone(),
                int.cert().der().clone(),
                root.cert().der().clone()
            ]
        );
        let direct = root
            .leaf(&LeafSpec::new(&["mx.example.com"], window()))
            .unwrap();
        assert_eq!(root.chain_for(&direct), vec![direct.der().clone()]);
    }

    #[test]
    fn bad_dns_name_is_an_error() {
        let spec = LeafSpec::new(&["m\u{e9}.example"], window());
        let err = self_signed_leaf(&spec).unwrap_err();
        assert!(matches!(err, PkiError::BadDnsName { .. }), "{err}");
    }
}
