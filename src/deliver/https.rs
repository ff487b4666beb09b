//! A TLS report by HTTPS (RFC 8460 §5.4): one `POST` of the gzip'd report.

use std::net::SocketAddr;

use reqwest::header::CONTENT_TYPE;

use super::mail::TLSRPT_GZIP;
use super::{DeliverConfig, ReportToSend};
use mxprobe_core::facts::{FetchOutcome, HttpsRuaFacts};
use mxprobe_core::result::ReportDelivery;

/// The User-Agent of report POSTs.
pub const USER_AGENT: &str = concat!(
    "mxprobe/",
    env!("CARGO_PKG_VERSION"),
    " (synthetic TLS report delivery)"
);

/// POSTs `report` to the `https:` destination `h`, at the address the scan reached (the one
/// that answered, else the first tried), with the certificate verified and no redirect
/// followed: accepted on 2xx (RFC 8460 §5.4).
pub async fn deliver(
    config: &DeliverConfig,
    report: &ReportToSend,
    h: &HttpsRuaFacts,
) -> ReportDelivery {
    let refused = |via: String, answer: String| ReportDelivery {
        uri: h.uri.clone(),
        accepted: false,
        via,
        tls: None,
        answer,
        file_name: report.file_name.clone(),
    };
    let answered = h.check.attempts.iter().find_map(|a| match a.outcome {
        FetchOutcome::Response(_) => a.address,
        _ => None,
    });
    let Some(ip) = answered.or_else(|| h.check.attempts.iter().find_map(|a| a.address)) else {
        return refused(
            h.host.clone(),
            format!(
                "not sent: {} did not resolve when the scan checked it",
                h.host
            ),
        );
    };
    let address = SocketAddr::new(ip, config.fetch.port_for(ip));
    let client = match client(config, &h.host, address) {
        Ok(c) => c,
        Err(e) => return refused(h.host.clone(), format!("the HTTPS client: {e}")),
    };
    let via = format!("{} [{ip}]:{}", h.host, address.port());
    let sent = client
        .post(&h.uri)
        .header(CONTENT_TYPE, TLSRPT_GZIP)
        .body(report.gzip.clone())
        .send()
        .await;
    match sent {
        Ok(response) => {
            let status = response.status();
            // The body is not read: the status is the answer.
            ReportDelivery {
                uri: h.uri.clone(),
                accepted: status.is_success(),
                via,
                tls: None,
                answer: format!("HTTP {status}"),
                file_name: report.file_name.clone(),
            }
        }
        Err(e) => refused(via, innermost(&e)),
    }
}

fn client(
    config: &DeliverConfig,
    host: &str,
    address: SocketAddr,
) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .tls_backend_preconfigured(config.https_tls.clone())
        .resolve(host, address)
        .redirect(reqwest::redirect::Policy::none())
        .retry(reqwest::retry::never())
        .no_proxy()
        .timeout(config.timeout)
        .user_agent(USER_AGENT)
        .build()
}

/// The words of the deepest cause (reqwest's own message names only the URL).
fn innermost(error: &(dyn std::error::Error + 'static)) -> String {
    let mut deepest = error;
    while let Some(next) = deepest.source() {
        deepest = next;
    }
    format!("not accepted: {deepest}")
}
