//! What one certificate says: names, dates, key, fingerprints.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use x509_parser::num_bigint::BigUint;
use x509_parser::prelude::{FromDer, SubjectPublicKeyInfo, X509Certificate};

use super::x509::{san_names, self_signed};

/// Why a certificate could not be described.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DescribeError {
    /// The bytes are not a DER X.509 certificate.
    #[error("not a DER X.509 certificate: {detail}")]
    NotACertificate {
        /// What x509-parser said.
        detail: String,
    },
    /// Bytes follow the certificate.
    #[error("{count} bytes follow the certificate")]
    TrailingData {
        /// How many.
        count: usize,
    },
}

/// What a certificate says, for facts and output.
///
/// Fingerprints are upper-case hex without separators, the form TLSA records use, so
/// `spki_sha256` can be compared with the data of a `3 1 1` record directly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertSummary {
    /// Subject DN (RFC 4514-like, as x509-parser prints it).
    pub subject: String,
    /// Issuer DN.
    pub issuer: String,
    /// SAN dNSNames, as written in the certificate.
    pub dns_names: Vec<String>,
    /// SAN iPAddresses.
    pub ip_addresses: Vec<IpAddr>,
    /// notBefore.
    #[serde(with = "time::serde::rfc3339")]
    pub not_before: OffsetDateTime,
    /// notAfter.
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    /// Key type and size: "ECDSA P-256", "RSA 2048", "Ed25519", …
    pub key: String,
    /// Serial number, upper-case hex.
    pub serial: String,
    /// SHA-256 of the whole certificate (DER), upper-case hex.
    pub sha256: String,
    /// SHA-256 of the SubjectPublicKeyInfo (DER), upper-case hex.
    pub spki_sha256: String,
    /// basicConstraints cA = true.
    pub is_ca: bool,
    /// Issuer = subject and the signature verifies with the certificate's own key.
    pub self_signed: bool,
}

pub(crate) fn hex_upper(bytes: &[u8]) -> String {
    use fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02X}");
            s
        })
}

fn sha256(bytes: &[u8]) -> String {
    hex_upper(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
}

/// The size in bits of an RSA modulus (big-endian, leading zero octets ignored).
fn rsa_bits(modulus: &[u8]) -> u64 {
    BigUint::from_bytes_be(modulus).bits()
}

fn key_description(spki: &SubjectPublicKeyInfo<'_>) -> String {
    let alg = spki.algorithm.algorithm.to_id_string();
    let bits = || match spki.parsed() {
        Ok(x509_parser::public_key::PublicKey::RSA(rsa)) => rsa_bits(rsa.modulus),
        _ => 0,
    };
    match alg.as_str() {
        "1.2.840.113549.1.1.1" => format!("RSA {}", bits()),
        "1.2.840.113549.1.1.10" => format!("RSA-PSS {}", bits()),
        "1.2.840.10045.2.1" => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|o| o.to_id_string());
            match curve.as_deref() {
                Some("1.2.840.10045.3.1.7") => "ECDSA P-256".to_owned(),
                Some("1.3.132.0.34") => "ECDSA P-384".to_owned(),
                Some("1.3.132.0.35") => "ECDSA P-521".to_owned(),
                Some(other) => format!("ECDSA (curve {other})"),
                None => "ECDSA (unnamed curve)".to_owned(),
            }
        }
        "1.3.101.112" => "Ed25519".to_owned(),
        "1.3.101.113" => "Ed448".to_owned(),
        other => format!("unknown key type {other}"),
    }
}

/// Describes one certificate (DER). Lenient about extensions: an unreadable SAN extension
/// yields empty name lists rather than an error, since the rest is still worth showing.
pub fn describe(der: &[u8]) -> Result<CertSummary, DescribeError> {
    let (rest, x) = X509Certificate::from_der(der).map_err(|e| DescribeError::NotACertificate {
        detail: e.to_string(),
    })?;
    if !rest.is_empty() {
        return Err(DescribeError::TrailingData { count: rest.len() });
    }
    let (dns_names, ip_addresses) = san_names(der);
    Ok(CertSummary {
        subject: x.subject().to_string(),
        issuer: x.issuer().to_string(),
        dns_names,
        ip_addresses,
        not_before: x.validity().not_before.to_datetime(),
        not_after: x.validity().not_after.to_datetime(),
        key: key_description(x.public_key()),
        serial: hex_upper(x.raw_serial()),
        sha256: sha256(der),
        spki_sha256: sha256(x.public_key().raw),
        is_ca: x.is_ca(),
        self_signed: self_signed(&x),
    })
}

#[cfg(test)]
mod tests {
    use mxprobe_testpki::{CertAuthority, KeyKind, LeafSpec, self_signed_leaf};

    use super::super::fixtures::window;
    use super::*;
    use crate::tls::anchors::Anchors;

    #[test]
    fn key_description_of_rsa_and_p384_roots() {
        // ring cannot generate RSA keys, so the lab has none; the Mozilla roots do.
        let roots = Anchors::mozilla();
        let key_of = |name: &[u8]| {
            let anchor = roots
                .as_slice()
                .iter()
                .find(|a| a.subject.as_ref().windows(name.len()).any(|w| w == name))
                .unwrap();
            let der = webpki::spki_for_anchor(anchor);
            let (rest, spki) = SubjectPublicKeyInfo::from_der(der.as_ref()).unwrap();
            assert!(rest.is_empty());
            key_description(&spki)
        };
        assert_eq!(key_of(b"ISRG Root X1"), "RSA 4096");
        assert_eq!(key_of(b"ISRG Root X2"), "ECDSA P-384");
        assert_eq!(key_of(b"DigiCert Global Root G2"), "RSA 2048");
    }

    #[test]
    fn rsa_bits_counts_the_modulus() {
        assert_eq!(rsa_bits(&[0x00, 0x80, 0x00]), 16);
        assert_eq!(rsa_bits(&[0x01, 0x00]), 9);
        assert_eq!(rsa_bits(&[0x00]), 0);
        assert_eq!(rsa_bits(&[]), 0);
    }

    #[test]
    fn describe_reports_key_types() {
        for (kind, want) in [
            (KeyKind::EcdsaP256, "ECDSA P-256"),
            (KeyKind::EcdsaP384, "ECDSA P-384"),
            (KeyKind::Ed25519, "Ed25519"),
        ] {
            let mut spec = LeafSpec::new(&["mx.example.com"], window());
            spec.key = kind;
            let leaf = self_signed_leaf(&spec).unwrap();
            let s = describe(leaf.der()).unwrap();
            assert_eq!(s.key, want);
            assert!(s.self_signed, "{want}");
            assert!(!s.is_ca);
        }
    }

    #[test]
    fn describe_marks_issued_certs_not_self_signed() {
        let root = CertAuthority::root("Root", window(), KeyKind::EcdsaP256).unwrap();
        let leaf = root
            .leaf(&LeafSpec::new(&["mx.example.com"], window()))
            .unwrap();
        let s = describe(leaf.der()).unwrap();
        assert!(!s.self_signed);
        let r = describe(root.cert().der()).unwrap();
        assert!(r.self_signed && r.is_ca);
        assert_eq!(s.issuer, r.subject);
    }

    #[test]
    fn describe_rejects_trailing_data_and_garbage() {
        let leaf = self_signed_leaf(&LeafSpec::new(&["mx.example.com"], window())).unwrap();
        let mut bytes = leaf.der().to_vec();
        bytes.push(0);
        assert_eq!(
            describe(&bytes),
            Err(DescribeError::TrailingData { count: 1 })
        );
        assert!(matches!(
            describe(b"\x30\x03\x02\x01\x01"),
            Err(DescribeError::NotACertificate { .. })
        ));
    }
}
