//! Trust anchors: the set of root keys a certificate chain must lead to.
//!
//! [`Anchors`] holds rustls-pki-types [`TrustAnchor`]s (subject + key + optional name
//! constraints, RFC 5280 §6.1.1). [`Anchors::mozilla`] is the Mozilla root programme as
//! shipped by `webpki-roots`, which is what real sending MTAs trust; [`Anchors::from_pem`]
//! adds private roots (the mail lab's CA, an internal PKI). [`crate::dane`] builds a
//! one-anchor set for DANE-TA(2). Reading a file is the only I/O here, and only in
//! [`Anchors::from_pem_file`]; everything else is pure.

use std::path::{Path, PathBuf};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, TrustAnchor};

/// Why extra trust anchors could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AnchorError {
    /// The PEM file could not be opened or read.
    #[error("cannot read trust anchors from {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is larger than [`crate::limits::CA_FILE_BYTES`] (only that much is read).
    #[error(
        "{path} is larger than {}, the cap for a CA file; is this the right file?",
        crate::limits::size_text(crate::limits::CA_FILE_BYTES)
    )]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// The PEM text is broken (bad base64, a section without its END line, …).
    #[error("{origin}: certificate #{index} is not valid PEM: {detail}")]
    Pem {
        /// The file name, or "PEM input" for in-memory data.
        origin: String,
        /// 1-based index of the CERTIFICATE section that failed.
        index: usize,
        /// What the PEM decoder said.
        detail: String,
    },
    /// A CERTIFICATE section decoded but is not a certificate webpki can use as an anchor.
    #[error("{origin}: certificate #{index} cannot be used as a trust anchor: {detail}")]
    BadCertificate {
        /// The file name, or "PEM input" for in-memory data.
        origin: String,
        /// 1-based index of the CERTIFICATE section that failed.
        index: usize,
        /// What webpki said.
        detail: String,
    },
    /// The input holds no CERTIFICATE section at all.
    #[error("{origin} contains no PEM CERTIFICATE section")]
    Empty {
        /// The file name, or "PEM input" for in-memory data.
        origin: String,
    },
}

/// A set of trust anchors for PKIX validation.
#[derive(Debug, Clone, Default)]
pub struct Anchors {
    anchors: Vec<TrustAnchor<'static>>,
}

impl Anchors {
    /// No anchors at all: every chain is untrusted. Useful as a base for [`Self::extend`].
    pub fn empty() -> Self {
        Self::default()
    }

    /// The Mozilla root programme (webpki-roots): what public senders trust.
    pub fn mozilla() -> Self {
        Self {
            anchors: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        }
    }

    /// Anchors from already-built [`TrustAnchor`]s (DANE-TA builds a set of one).
    pub fn from_anchors(anchors: Vec<TrustAnchor<'static>>) -> Self {
        Self { anchors }
    }

    /// Anchors from the CERTIFICATE sections of PEM text; other sections (keys) are skipped.
    pub fn from_pem(pem: &[u8]) -> Result<Self, AnchorError> {
        Self::parse_pem(pem, "PEM input")
    }

    /// Anchors from a PEM file (a CA bundle), read up to [`crate::limits::CA_FILE_BYTES`].
    pub fn from_pem_file(path: &Path) -> Result<Self, AnchorError> {
        use crate::limits::{CA_FILE_BYTES, CappedReadError, read_capped_from};
        let read_error = |source| AnchorError::Read {
            path: path.to_owned(),
            source,
        };
        let file = std::fs::File::open(path).map_err(read_error)?;
        let bytes = read_capped_from(file, CA_FILE_BYTES).map_err(|e| match e {
            CappedReadError::Io(source) => read_error(source),
            CappedReadError::TooLarge => AnchorError::TooLarge {
                path: path.to_owned(),
            },
        })?;
        Self::parse_pem(&bytes, &path.display().to_string())
    }

    fn parse_pem(pem: &[u8], origin: &str) -> Result<Self, AnchorError> {
        let mut anchors = Vec::new();
        for (i, item) in CertificateDer::pem_slice_iter(pem).enumerate() {
            let index = i + 1;
            let der = item.map_err(|e| AnchorError::Pem {
                origin: origin.to_owned(),
                index,
                detail: e.to_string(),
            })?;
            let anchor =
                Self::anchor_from_der(&der).map_err(|detail| AnchorError::BadCertificate {
                    origin: origin.to_owned(),
                    index,
                    detail,
                })?;
            anchors.push(anchor);
        }
        if anchors.is_empty() {
            return Err(AnchorError::Empty {
                origin: origin.to_owned(),
            });
        }
        Ok(Self { anchors })
    }

    /// One certificate (DER) as an owned trust anchor; the error is webpki's reason in words.
    pub(crate) fn anchor_from_der(
        der: &CertificateDer<'_>,
    ) -> Result<TrustAnchor<'static>, String> {
        webpki::anchor_from_trusted_cert(der)
            .map(|a| a.to_owned())
            .map_err(|e| format!("{e:?}"))
    }

    /// Adds the anchors of `other`.
    pub fn extend(&mut self, other: Self) {
        self.anchors.extend(other.anchors);
    }

    /// Adds one anchor.
    pub fn push(&mut self, anchor: TrustAnchor<'static>) {
        self.anchors.push(anchor);
    }

    /// The anchors, for webpki.
    pub fn as_slice(&self) -> &[TrustAnchor<'static>] {
        &self.anchors
    }

    /// How many anchors there are.
    pub fn len(&self) -> usize {
        self.anchors.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.anchors.is_empty()
    }

    /// Whether some anchor has exactly this subject (the DER *contents* of the Name, as
    /// [`TrustAnchor::subject`] stores it).
    pub(crate) fn has_subject(&self, subject_contents: &[u8]) -> bool {
        self.anchors
            .iter()
            .any(|a| a.subject.as_ref() == subject_contents)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mozilla_is_not_empty() {
        assert!(Anchors::mozilla().len() > 100);
        assert!(Anchors::empty().is_empty());
    }

    #[test]
    fn pem_errors_name_the_index() {
        let cases: &[(&str, &[u8], &str)] = &[
            (
                "no sections",
                b"hello",
                "contains no PEM CERTIFICATE section",
            ),
            (
                "bad base64",
                b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
                "certificate #1 is not valid PEM",
            ),
            (
                "not a certificate",
                b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                "certificate #1 cannot be used as a trust anchor",
            ),
        ];
        for (name, input, want) in cases {
            let err = Anchors::from_pem(input).expect_err(name);
            assert!(err.to_string().contains(want), "{name}: {err}");
        }
    }

    #[test]
    fn missing_file_names_the_path() {
        let err = Anchors::from_pem_file(Path::new("/nonexistent/ca.pem")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
    }
}
