//! Plain DNS data shared by the observe and evaluate stages. Pure: no I/O.

use serde::{Deserialize, Serialize};

/// The DNSSEC status of one answer (RFC 4033 §5 terms).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DnssecStatus {
    /// A chain of trust from a trust anchor validates the answer (or a secure denial).
    Secure,
    /// Provably unsigned: a secure delegation says the zone is not signed.
    Insecure,
    /// Signed but failing validation (bad signatures, missing proofs).
    Bogus,
    /// The status could not be determined (no trust anchor, resolver did not say).
    Indeterminate,
}
