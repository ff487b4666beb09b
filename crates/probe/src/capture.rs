//! The recording certificate verifier: one TLS handshake yields every verdict.
//!
//! mxprobe's TLS clients (the SMTP STARTTLS probe and the HTTPS policy fetcher) do not decide
//! during the handshake whether a certificate is acceptable. [`RecordingVerifier`] accepts
//! every chain and keeps it, leaf first, exactly as the server sent it; the certificate
//! judgement ([`mxprobe_core::tls::cert`]) and DANE matching ([`mxprobe_core::dane`]) then judge the recorded
//! chain afterwards, for MTA-STS and DANE alike, without a second connection.
//!
//! Accepting any chain is not accepting any *server*: the handshake signatures are still
//! verified with *ring*'s algorithms against the presented leaf, so a server cannot present a
//! certificate whose private key it does not hold (RFC 8446 §4.4.3, RFC 5246 §7.4.8).
//!
//! This module builds configuration only; it opens no sockets and reads no clock.

use std::sync::{Arc, Mutex, PoisonError};

use rustls::client::Resumption;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

/// A presented certificate chain, leaf first, DER, in the order the server sent it.
pub type PresentedChain = Vec<CertificateDer<'static>>;

/// A place where a [`RecordingVerifier`] puts the chain of the handshake it verified.
///
/// Cloning a slot shares it. Use one slot per connection: a slot keeps only the chain of the
/// latest handshake, so a [`ClientConfig`] with a slot must not be shared by concurrent
/// connections (use [`client_config`] and the connection's `peer_certificates()` for that).
#[derive(Debug, Clone, Default)]
pub struct ChainSlot(Arc<Mutex<Option<PresentedChain>>>);

impl ChainSlot {
    /// The recorded chain, leaving it in the slot; `None` when no server certificate was seen.
    pub fn get(&self) -> Option<PresentedChain> {
        self.lock().clone()
    }

    /// The recorded chain, emptying the slot.
    pub fn take(&self) -> Option<PresentedChain> {
        self.lock().take()
    }

    fn put(&self, chain: PresentedChain) {
        *self.lock() = Some(chain);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<PresentedChain>> {
        // A panic while holding this lock cannot leave the Option half-written, so the value
        // of a poisoned lock is still sound.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A rustls [`ServerCertVerifier`] that accepts every certificate chain, optionally records it
/// in a [`ChainSlot`], and verifies the handshake signatures.
#[derive(Debug)]
pub struct RecordingVerifier {
    algorithms: WebPkiSupportedAlgorithms,
    slot: Option<ChainSlot>,
}

impl RecordingVerifier {
    /// A verifier that records nothing itself: read the chain from the connection after the
    /// handshake (`peer_certificates()`). Safe to share between any number of connections.
    pub fn new() -> Self {
        Self {
            algorithms: provider().signature_verification_algorithms,
            slot: None,
        }
    }

    /// A verifier that also puts each chain it sees into `slot` (before the handshake
    /// completes, so the chain is kept even when the handshake later fails).
    pub fn with_slot(slot: ChainSlot) -> Self {
        Self {
            slot: Some(slot),
            ..Self::new()
        }
    }
}

impl Default for RecordingVerifier {
    fn default() -> Self {
        Self::new()
    }
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // No judgement here: the evaluators judge the recorded chain after the handshake.
        if let Some(slot) = &self.slot {
            let mut chain = Vec::with_capacity(intermediates.len() + 1);
            chain.push(end_entity.clone().into_owned());
            chain.extend(intermediates.iter().map(|c| c.clone().into_owned()));
            slot.put(chain);
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        // RFC 5246 §7.4.3 / §7.4.8: proof of possession of the leaf's key.
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        // RFC 8446 §4.4.3: CertificateVerify proves possession of the leaf's key.
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

fn provider() -> CryptoProvider {
    rustls::crypto::ring::default_provider()
}

fn build(verifier: RecordingVerifier) -> ClientConfig {
    let mut config = ClientConfig::builder_with_provider(Arc::new(provider()))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .expect("ring's default provider has cipher suites and groups for TLS 1.2 and 1.3")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    // A resumed session presents no certificate: rustls would report the chain of the earlier
    // session. Every connection must show what the server presents now.
    config.resumption = Resumption::disabled();
    config
}

/// A TLS client configuration (ring, TLS 1.2 and 1.3, no session resumption, no client
/// certificate, SNI on) that accepts every server chain and checks the handshake signatures.
///
/// Share it between any number of connections; after each handshake read the chain from the
/// connection (`ClientConnection::peer_certificates()`, leaf first). This is what the SMTP
/// probe does.
pub fn client_config() -> Arc<ClientConfig> {
    Arc::new(build(RecordingVerifier::new()))
}

/// A TLS client configuration like [`client_config`] whose verifier also records every chain
/// it sees into the returned [`ChainSlot`].
///
/// For clients that do not expose the whole presented chain, such as reqwest (whose
/// `TlsInfo` has only the leaf): build one per fetch, pass it with
/// `reqwest::ClientBuilder::use_preconfigured_tls(config)`, and read the slot after the
/// request (set ALPN on the returned config first if the client needs it). The slot holds the
/// chain of the latest handshake made with this configuration, so do not share it between
/// concurrent connections.
pub fn recording_client_config() -> (ClientConfig, ChainSlot) {
    let slot = ChainSlot::default();
    (build(RecordingVerifier::with_slot(slot.clone())), slot)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_records_leaf_first_and_take_empties_it() {
        let slot = ChainSlot::default();
        let verifier = RecordingVerifier::with_slot(slot.clone());
        let leaf = CertificateDer::from(vec![1u8, 2, 3]);
        let inter = CertificateDer::from(vec![4u8, 5]);
        let name = ServerName::try_from("mx.example.com").expect("valid name");
        let verified = verifier.verify_server_cert(
            &leaf,
            std::slice::from_ref(&inter),
            &name,
            &[],
            UnixTime::since_unix_epoch(std::time::Duration::from_secs(0)),
        );
        assert!(verified.is_ok(), "every chain is accepted");
        assert_eq!(slot.get(), Some(vec![leaf.clone(), inter.clone()]));
        assert_eq!(slot.take(), Some(vec![leaf, inter]));
        assert_eq!(slot.get(), None);
    }

    #[test]
    fn shared_verifier_offers_ring_schemes_and_records_nothing() {
        let verifier = RecordingVerifier::new();
        assert!(verifier.slot.is_none());
        let schemes = verifier.supported_verify_schemes();
        assert!(schemes.contains(&SignatureScheme::ECDSA_NISTP256_SHA256));
        assert!(schemes.contains(&SignatureScheme::ED25519));
        assert!(schemes.contains(&SignatureScheme::RSA_PSS_SHA256));
    }
}
