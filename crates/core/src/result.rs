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
}
