//! The raw pieces webpki compares (Names, SubjectPublicKeyInfo) and the SAN names, as
//! x509-parser hands them out.

use std::net::IpAddr;

use rustls_pki_types::TrustAnchor;
use x509_parser::asn1_rs::Any;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, SubjectPublicKeyInfo, X509Certificate, X509Name};

/// The SAN dNSNames and iPAddresses of a certificate, in certificate order; empty when the
/// certificate or its SAN extension cannot be read.
pub(super) fn san_names(der: &[u8]) -> (Vec<String>, Vec<IpAddr>) {
    let mut dns_names = Vec::new();
    let mut ip_addresses = Vec::new();
    if let Ok((_, x)) = X509Certificate::from_der(der)
        && let Ok(Some(san)) = x.subject_alternative_name()
    {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(d) => dns_names.push((*d).to_owned()),
                GeneralName::IPAddress(b) => {
                    if let Ok(v4) = <[u8; 4]>::try_from(*b) {
                        ip_addresses.push(IpAddr::from(v4));
                    } else if let Ok(v6) = <[u8; 16]>::try_from(*b) {
                        ip_addresses.push(IpAddr::from(v6));
                    }
                }
                _ => {}
            }
        }
    }
    (dns_names, ip_addresses)
}

/// The certificate in `der` if x509-parser reads one with nothing after it.
pub(crate) fn parse_exact(der: &[u8]) -> Option<X509Certificate<'_>> {
    match X509Certificate::from_der(der) {
        Ok(([], cert)) => Some(cert),
        _ => None,
    }
}

/// The contents of one DER value (without its tag and length), the form in which
/// [`TrustAnchor`] stores a Name and a SubjectPublicKeyInfo.
fn der_contents(der: &[u8]) -> Option<&[u8]> {
    Any::from_der(der).ok().map(|(_, any)| any.data)
}

/// A Name's contents, without its SEQUENCE header.
fn name_contents<'a>(name: &X509Name<'a>) -> Option<&'a [u8]> {
    der_contents(name.as_raw())
}

/// The issuer Name without its SEQUENCE header (as [`TrustAnchor::subject`] stores names).
pub(crate) fn issuer_contents<'a>(cert: &X509Certificate<'a>) -> Option<&'a [u8]> {
    name_contents(&cert.tbs_certificate.issuer)
}

/// The subject Name without its SEQUENCE header.
pub(super) fn subject_contents<'a>(cert: &X509Certificate<'a>) -> Option<&'a [u8]> {
    name_contents(&cert.tbs_certificate.subject)
}

/// Issuer and subject are the same Name (RFC 5280 §3.3: a self-issued certificate).
pub(super) fn self_issued(cert: &X509Certificate<'_>) -> bool {
    issuer_contents(cert).is_some_and(|issuer| subject_contents(cert) == Some(issuer))
}

/// Self-signed: self-issued, and the signature verifies with the certificate's own key.
pub(super) fn self_signed(cert: &X509Certificate<'_>) -> bool {
    self_issued(cert) && cert.verify_signature(None).is_ok()
}

/// The contents of `spki` if it is exactly one DER SubjectPublicKeyInfo (RFC 5280 §4.1:
/// SEQUENCE { AlgorithmIdentifier, BIT STRING }, nothing inside or after it besides).
pub(crate) fn spki_contents(spki: &[u8]) -> Option<&[u8]> {
    match SubjectPublicKeyInfo::from_der(spki) {
        Ok(([], parsed)) if parsed.raw.len() == spki.len() => der_contents(spki),
        _ => None,
    }
}

/// Whether `cert`'s signature verifies with the key of `anchor`.
pub(super) fn signed_by_anchor(cert: &X509Certificate<'_>, anchor: &TrustAnchor<'_>) -> bool {
    let der = webpki::spki_for_anchor(anchor);
    SubjectPublicKeyInfo::from_der(der.as_ref())
        .is_ok_and(|(_, spki)| cert.verify_signature(Some(&spki)).is_ok())
}

#[cfg(test)]
mod tests {
    use mxprobe_testpki::{CertAuthority, KeyKind, LeafSpec, self_signed_leaf};

    use super::super::describe;
    use super::super::fixtures::window;
    use super::*;
    use crate::tls::anchors::Anchors;

    #[test]
    fn spki_contents_takes_exactly_one_spki() {
        let leaf = self_signed_leaf(&LeafSpec::new(&["mx.example.com"], window())).unwrap();
        let anchor = Anchors::anchor_from_der(leaf.der()).unwrap();
        let spki = parse_exact(leaf.der()).unwrap().public_key().raw.to_vec();
        let mut trailing = spki.clone();
        trailing.push(0);
        // One octet of junk inside the SEQUENCE, after the key (a P-256 SPKI has a short-form
        // length).
        let mut inside = spki.clone();
        inside[1] += 1;
        inside.push(0);
        // (case, input, the contents expected)
        type Case<'a> = (&'a str, &'a [u8], Option<&'a [u8]>);
        let cases: &[Case<'_>] = &[
            (
                "a P-256 key",
                &spki,
                Some(anchor.subject_public_key_info.as_ref()),
            ),
            ("empty", b"", None),
            ("truncated", &spki[..spki.len() - 1], None),
            ("a byte after it", &trailing, None),
            ("a byte inside it after the key", &inside, None),
            ("empty SEQUENCE", b"\x30\x00", None),
            ("indefinite length", b"\x30\x80\x00\x00", None),
            // RFC 5280 §4.1.1.2: an AlgorithmIdentifier starts with its OID.
            (
                "algorithm without OID",
                b"\x30\x06\x30\x00\x03\x02\x00\x00",
                None,
            ),
        ];
        for (name, input, want) in cases {
            assert_eq!(spki_contents(input), *want, "{name}");
        }
    }

    #[test]
    fn names_and_keys_are_the_bytes_webpki_stores() {
        let root = CertAuthority::root("Root", window(), KeyKind::EcdsaP256).unwrap();
        let leaf = root
            .leaf(&LeafSpec::new(&["mx.example.com"], window()))
            .unwrap();
        let root_anchor = Anchors::anchor_from_der(root.cert().der()).unwrap();
        let leaf_anchor = Anchors::anchor_from_der(leaf.der()).unwrap();
        let root_x = parse_exact(root.cert().der()).unwrap();
        let leaf_x = parse_exact(leaf.der()).unwrap();
        assert_eq!(
            subject_contents(&root_x),
            Some(root_anchor.subject.as_ref())
        );
        assert_eq!(issuer_contents(&root_x), Some(root_anchor.subject.as_ref()));
        assert_eq!(issuer_contents(&leaf_x), Some(root_anchor.subject.as_ref()));
        assert_eq!(
            subject_contents(&leaf_x),
            Some(leaf_anchor.subject.as_ref())
        );
        assert!(signed_by_anchor(&leaf_x, &root_anchor));
        assert!(signed_by_anchor(&root_x, &root_anchor));
        assert!(!signed_by_anchor(&leaf_x, &leaf_anchor));
        assert!(self_signed(&root_x) && !self_issued(&leaf_x));
    }

    #[test]
    fn self_issued_is_not_self_signed() {
        // An intermediate named like its root: issuer = subject, but the root's key signed it.
        let root = CertAuthority::root("Root", window(), KeyKind::EcdsaP256).unwrap();
        let int = root
            .intermediate("Root", window(), KeyKind::EcdsaP256)
            .unwrap();
        let x = parse_exact(int.cert().der()).unwrap();
        assert!(self_issued(&x));
        assert!(!self_signed(&x));
        assert!(!describe(int.cert().der()).unwrap().self_signed);
    }
}
