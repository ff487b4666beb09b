//! `scan --deliver-reports`: each scanned domain's synthetic TLS report sent to the domain's
//! own `rua` destinations, exactly as a reporting sender sends it (RFC 8460 §5), so an owner
//! can watch it go through their own pipeline (mailbox → parser → dashboard).
//!
//! - `mailto:` ([`mail`]): an RFC 8460 §5.3 message (`multipart/report;
//!   report-type="tlsrpt"`, the `TLS-Report-Domain` and `TLS-Report-Submitter` headers, the
//!   gzip'd report as `application/tlsrpt+gzip` under its RFC 8460 §5.1 file name), through
//!   the MX hosts of the address's domain as the scan found them (STARTTLS when offered, any
//!   certificate: reports are delivered despite TLS failures), or through `--smtp-relay` with
//!   the credentials rules of alert mail.
//! - `https:` ([`https`]): a `POST` of the gzip'd report as `application/tlsrpt+gzip` to the
//!   URL, at the address the scan reached, the certificate verified, no redirect followed.
//!
//! Only on request, only for domains named on the command line and at most
//! `--deliver-limit` of them (checked by the caller). The report says it is synthetic in
//! `organization-name` and `contact-info`. Each delivery's result (accepted, or refused with
//! the server's answer) becomes a [`ReportDelivery`] of the domain's result, shown in the text
//! and JSON outputs.
//!
//! I/O: SMTP sessions (lettre) and HTTPS requests (reqwest), each bounded in time; what a
//! server sends back is bounded as in alert mail ([`crate::notify::RELAY_READ_LIMIT`]) and
//! by reading no HTTP body.

use std::time::Duration;

use time::OffsetDateTime;

use crate::notify::RelaySecurity;
use mxprobe_core::facts::RuaFacts;
use mxprobe_core::result::{DomainResult, ReportDelivery};
use mxprobe_core::synthetic_report::{SENDER_DOMAIN, build_report, file_name};
use mxprobe_core::tlsrpt::report::DateRange;
use mxprobe_probe::fetch::FetchConfig;
use mxprobe_probe::scan::ScanConfig;

pub mod https;
pub mod mail;

/// The default of `--deliver-limit`: at most this many domains get their report delivered.
pub const DEFAULT_DELIVER_LIMIT: u32 = 10;

/// How long one delivery (one SMTP session, one POST) may take.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(60);

/// An SMTP relay for report mail (`--smtp-relay`), as alert mail uses it.
#[derive(Debug, Clone)]
pub struct Relay {
    /// The host.
    pub host: String,
    /// The port.
    pub port: u16,
    /// STARTTLS, implicit TLS, or none (loopback only).
    pub security: RelaySecurity,
    /// `MXPROBE_SMTP_USER` and `MXPROBE_SMTP_PASSWORD`.
    pub credentials: Option<(String, String)>,
    /// PEM files of extra trusted roots (`--ca-file`).
    pub extra_roots_pem: Vec<Vec<u8>>,
}

/// Everything a delivery needs besides the scan results.
#[derive(Debug, Clone)]
pub struct DeliverConfig {
    /// The envelope sender and From address of report mail.
    pub from: String,
    /// The EHLO name.
    pub hello_name: Option<String>,
    /// Send mail through this relay instead of the MX hosts.
    pub relay: Option<Relay>,
    /// The trust anchors for the HTTPS certificate (Mozilla's, `--ca-file`).
    pub https_tls: rustls::ClientConfig,
    /// The HTTPS port of each address (the lab, a staging endpoint).
    pub fetch: FetchConfig,
    /// The bound on one delivery.
    pub timeout: Duration,
}

impl DeliverConfig {
    /// The configuration of a scan run with `scan`: its anchors and HTTPS ports.
    pub fn new(scan: &ScanConfig, from: String, relay: Option<Relay>) -> anyhow::Result<Self> {
        let roots = rustls::RootCertStore {
            roots: scan.anchors.as_slice().to_vec(),
        };
        let https_tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
        Ok(Self {
            from,
            hello_name: Some(scan.smtp.ehlo_name.as_str().to_owned()),
            relay,
            https_tls,
            fetch: scan.fetch.clone(),
            timeout: DELIVERY_TIMEOUT,
        })
    }
}

/// One domain's synthetic report, ready to send.
#[derive(Debug, Clone)]
pub struct ReportToSend {
    /// The policy domain.
    pub domain: String,
    /// The report-id.
    pub report_id: String,
    /// The RFC 8460 §5.1 file name (`.json.gz`).
    pub file_name: String,
    /// The gzip'd JSON.
    pub gzip: Vec<u8>,
}

/// The synthetic report of `result` for the run from `started` to `finished`, as
/// `--report-dir --gzip` writes it.
pub fn report_of(
    result: &DomainResult,
    started: OffsetDateTime,
    finished: OffsetDateTime,
) -> anyhow::Result<ReportToSend> {
    let range = DateRange::new(started, finished.max(started))
        .map_err(|e| anyhow::anyhow!("the report's date range: {e}"))?;
    let unique = format!("mxprobe{}", started.unix_timestamp_nanos());
    let domain = &result.verdict.domain;
    let report_id = format!("{unique}.{domain}@{SENDER_DOMAIN}");
    let report = build_report(&result.facts, &result.verdict, range, report_id.clone());
    let name = file_name(domain, &range, &unique, true)
        .map_err(|e| anyhow::anyhow!("the report file name of {domain}: {e}"))?;
    Ok(ReportToSend {
        domain: domain.to_string(),
        report_id,
        file_name: name.to_string(),
        gzip: report.to_gzip(),
    })
}

/// Sends the report of `result` to each of its usable `rua` destinations (as the scan
/// checked them) and records every delivery in `result.deliveries`.
pub async fn deliver(
    config: &DeliverConfig,
    result: &mut DomainResult,
    started: OffsetDateTime,
    finished: OffsetDateTime,
) -> anyhow::Result<()> {
    let report = report_of(result, started, finished)?;
    let mut deliveries = Vec::new();
    for rua in &result.facts.rua {
        let delivery = match rua {
            RuaFacts::Mailto(m) => mail::deliver(config, &report, m, &result.facts).await,
            RuaFacts::Https(h) => https::deliver(config, &report, h).await,
        };
        deliveries.push(delivery);
    }
    if deliveries.is_empty() {
        // Nothing to send to: say so in the result rather than staying silent.
        deliveries.push(ReportDelivery {
            uri: "(none)".to_owned(),
            accepted: false,
            via: "-".to_owned(),
            tls: None,
            answer: "not sent: the scan found no usable rua destination (see the TLS-RPT line \
                     and its findings)"
                .to_owned(),
            file_name: report.file_name.clone(),
        });
    }
    result.deliveries = deliveries;
    Ok(())
}
