//! The result of one domain: what was observed and how it was judged. Scans write it, the
//! monitoring history keeps it, every report writer reads it.

use serde::{Deserialize, Serialize};

use crate::evaluate::verdict::DomainVerdict;
use crate::facts::DomainFacts;

/// One domain's facts and their verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainResult {
    /// What was seen.
    pub facts: DomainFacts,
    /// What it means.
    pub verdict: DomainVerdict,
    /// The synthetic report's deliveries to the domain's own `rua` destinations, made only
    /// on request (`scan --deliver-reports`); empty otherwise.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub deliveries: Vec<ReportDelivery>,
}

impl DomainResult {
    /// A result without deliveries.
    pub fn new(facts: DomainFacts, verdict: DomainVerdict) -> Self {
        Self {
            facts,
            verdict,
            deliveries: Vec::new(),
        }
    }
}

/// One delivery of a synthetic report to one `rua` destination, as a reporting sender makes
/// it (RFC 8460 §5.3 mail, §5.4 HTTPS POST).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportDelivery {
    /// The destination as written in the record.
    pub uri: String,
    /// Whether the receiving server accepted the report (SMTP 250 to the data, HTTP 2xx).
    pub accepted: bool,
    /// Where it went: the MX host and address, the relay, or the URL and address.
    pub via: String,
    /// For mail: whether the session was encrypted (STARTTLS or implicit TLS).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub tls: Option<bool>,
    /// The server's answer (the SMTP reply, the HTTP status line), or why there was none.
    pub answer: String,
    /// The report's file name (RFC 8460 §5.1).
    pub file_name: String,
}
