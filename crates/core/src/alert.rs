//! The data of scheduled monitoring: what is kept of a domain per run ([`DomainResult`]), what
//! changed since the previous run ([`Change`]), and what is sent to people ([`Alert`]).
//!
//! [`crate::changes`] compares two snapshots, [`mxprobe::history`] stores snapshots and
//! alerts in SQLite, [`mxprobe::notify`] delivers alerts, [`mxprobe::metrics`] writes the
//! Prometheus textfile. This module only defines the shared types and the alert's text form.
//! Pure: no I/O.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::domain::DomainName;
use crate::finding::{Severity, Subject};

/// The version of the alert JSON (documented in docs/monitoring.md).
pub const ALERT_SCHEMA_VERSION: u32 = 1;

/// A domain's overall state in one run: its verdict's [`crate::evaluate::verdict::DomainVerdict::status`] at error
/// severity.
pub use crate::evaluate::verdict::Status as DomainStatus;

/// What kind of change a [`Change`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChangeKind {
    /// A failing finding that the previous run did not have.
    NewFailure,
    /// A failing finding of the previous run that is gone.
    FailureResolved,
    /// A certificate (the leaf, or one of the verified chain) expires within a warning
    /// threshold it was not within before.
    CertificateExpiring,
    /// An MX address presents another certificate than in the previous run.
    CertificateChanged,
    /// The MTA-STS policy id, mode or mx list changed (or the policy appeared or went).
    PolicyChanged,
    /// The set of MX hosts changed.
    MxChanged,
    /// The TLS-RPT `rua` destinations changed.
    TlsrptRuaChanged,
    /// An MX host now has usable DANE TLSA records.
    DaneAppeared,
    /// An MX host no longer has usable DANE TLSA records.
    DaneDisappeared,
    /// The domain has been inconclusive for the configured number of runs in a row.
    Inconclusive,
    /// Problems still open, repeated after `--remind-every`.
    Reminder,
}

/// One change between two runs of a domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// What kind of change.
    pub kind: ChangeKind,
    /// How much it matters.
    pub severity: Severity,
    /// What it is about.
    pub subject: Subject,
    /// What changed, in one or two sentences naming the host, value or finding code.
    pub message: String,
    /// What to do, when there is something to do.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub fix: Option<String>,
}

/// One alert: everything that changed for one domain in one run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    /// [`ALERT_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The domain.
    pub domain: DomainName,
    /// When the run that saw the changes observed the domain.
    #[serde(with = "time::serde::rfc3339")]
    pub observed_at: OffsetDateTime,
    /// The domain's status in that run.
    pub status: DomainStatus,
    /// Its status in the previous run, if there was one.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub previous_status: Option<DomainStatus>,
    /// The changes, most severe first.
    pub changes: Vec<Change>,
}

impl Alert {
    /// An alert for `domain`, with the changes ordered most severe first (stable within a
    /// severity).
    pub fn new(
        domain: DomainName,
        observed_at: OffsetDateTime,
        status: DomainStatus,
        previous_status: Option<DomainStatus>,
        mut changes: Vec<Change>,
    ) -> Self {
        changes.sort_by_key(|c| std::cmp::Reverse(c.severity));
        Self {
            schema_version: ALERT_SCHEMA_VERSION,
            domain,
            observed_at,
            status,
            previous_status,
            changes,
        }
    }

    /// The most severe change.
    pub fn severity(&self) -> Severity {
        self.changes
            .iter()
            .map(|c| c.severity)
            .max()
            .unwrap_or(Severity::Notice)
    }

    /// A one-line summary (an e-mail subject).
    pub fn subject(&self) -> String {
        let n = self.changes.len();
        let what = if n == 1 {
            "1 change".to_owned()
        } else {
            format!("{n} changes")
        };
        format!(
            "mxprobe: {} is {} ({what})",
            self.domain,
            match self.status {
                DomainStatus::Pass => "passing",
                DomainStatus::Fail => "FAILING",
                DomainStatus::Inconclusive => "inconclusive",
            }
        )
    }

    /// The alert for people: the summary line, then one paragraph per change.
    pub fn text(&self) -> String {
        let mut out = self.subject();
        out.push('\n');
        let observed = self
            .observed_at
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|_| self.observed_at.to_string());
        out.push_str(&format!("observed at {observed}\n"));
        for c in &self.changes {
            out.push('\n');
            let subject = c.subject.to_string();
            out.push_str(&format!(
                "[{}] {}: {}{}",
                c.severity,
                serde_plain(&c.kind),
                if subject.is_empty() {
                    String::new()
                } else {
                    format!("{subject}: ")
                },
                c.message
            ));
            out.push('\n');
            if let Some(fix) = &c.fix {
                out.push_str(&format!("  fix: {fix}\n"));
            }
        }
        out
    }
}

/// The serde name of a unit enum variant (`new-failure`).
fn serde_plain(kind: &ChangeKind) -> String {
    serde_json::to_value(kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn alerts_read_well_and_sort_by_severity() {
        let domain = DomainName::parse("example.com").unwrap();
        let alert = Alert::new(
            domain.clone(),
            datetime!(2026-11-29 06:00 UTC),
            DomainStatus::Fail,
            Some(DomainStatus::Pass),
            vec![
                Change {
                    kind: ChangeKind::CertificateChanged,
                    severity: Severity::Notice,
                    subject: Subject::domain(&domain),
                    message: "mx1 presents a new certificate".to_owned(),
                    fix: None,
                },
                Change {
                    kind: ChangeKind::NewFailure,
                    severity: Severity::Error,
                    subject: Subject::domain(&domain),
                    message: "smtp.cert.leaf-expired: expired".to_owned(),
                    fix: Some("renew it".to_owned()),
                },
            ],
        );
        assert_eq!(alert.changes[0].kind, ChangeKind::NewFailure);
        assert_eq!(alert.severity(), Severity::Error);
        assert_eq!(
            alert.subject(),
            "mxprobe: example.com is FAILING (2 changes)"
        );
        assert_eq!(
            alert.text(),
            "mxprobe: example.com is FAILING (2 changes)\nobserved at 2026-11-29T06:00:00Z\n\n\
             [error] new-failure: example.com: smtp.cert.leaf-expired: expired\n  fix: renew it\n\n\
             [notice] certificate-changed: example.com: mx1 presents a new certificate\n"
        );
        let json = serde_json::to_value(&alert).unwrap();
        assert_eq!(json["changes"][0]["kind"], "new-failure");
        assert_eq!(json["status"], "fail");
        assert_eq!(json["previous_status"], "pass");
        let back: Alert = serde_json::from_value(json).unwrap();
        assert_eq!(back, alert);
    }
}
