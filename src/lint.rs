//! `mxprobe lint` (being written).

use std::io::{self, Write};

use serde::Serialize;

use crate::finding::{Finding, Severity};

/// What to check.
#[derive(Debug, Clone, Default)]
pub struct LintInput {
    /// The policy domain.
    pub domain: Option<String>,
    /// The policy body.
    pub policy: Option<Vec<u8>>,
    /// `_mta-sts` TXT records.
    pub sts_txt: Vec<String>,
    /// `_smtp._tls` TXT records.
    pub tlsrpt_txt: Vec<String>,
    /// MX hosts.
    pub mx: Vec<String>,
}

/// The result.
#[derive(Debug, Clone, Serialize)]
pub struct LintReport {
    /// Findings.
    pub findings: Vec<Finding>,
}

impl LintReport {
    /// Whether any finding is at or above `threshold`.
    pub fn fails(&self, threshold: Severity) -> bool {
        self.findings.iter().any(|f| f.severity >= threshold)
    }
}

/// A usage error.
#[derive(Debug, thiserror::Error)]
#[error("usage")]
pub struct LintError;

/// Checks the input.
pub fn lint(_input: &LintInput) -> Result<LintReport, LintError> {
    Ok(LintReport { findings: vec![] })
}

/// Writes text.
pub fn write_text(w: &mut dyn Write, report: &LintReport) -> io::Result<()> {
    crate::render::write_findings(w, &report.findings)
}
