//! A TLS report by mail (RFC 8460 §5.3), through the MX hosts of the `rua` address's domain
//! or through a relay.

use base64::Engine as _;
use lettre::Message;
use lettre::message::header::{ContentTransferEncoding, ContentType, HeaderName, HeaderValue};
use lettre::message::{Attachment, Body, MultiPart, SinglePart};
use ring::rand::{SecureRandom, SystemRandom};

use super::{DeliverConfig, ReportToSend};
use crate::notify::{DeliveryError, Email, RelaySecurity};
use mxprobe_core::facts::{DomainFacts, MailtoRuaFacts};
use mxprobe_core::result::ReportDelivery;
use mxprobe_core::synthetic_report::SENDER_DOMAIN;

/// The media type of a gzip'd report (RFC 8460 §6.4).
pub const TLSRPT_GZIP: &str = "application/tlsrpt+gzip";

/// The human-readable first part of the report mail.
fn explanation(report: &ReportToSend) -> String {
    format!(
        "This is a synthetic aggregate TLS report (RFC 8460) for {domain}, written and sent by \
         mxprobe on request (scan --deliver-reports) to test the report pipeline of {domain}.\n\
         It was not written by a real sending MTA: its counts come from one scan, and its \
         organization-name and contact-info say so.\n\n\
         Report-ID: {id}\nFile: {file}\n",
        domain = report.domain,
        id = report.report_id,
        file = report.file_name,
    )
}

/// A random MIME boundary (the default one of lettre is not random enough to be unique
/// across messages written in the same run).
fn boundary() -> String {
    let mut random = [0_u8; 24];
    // The system RNG fails only on an OS without one; the boundary is then merely fixed.
    let _ = SystemRandom::new().fill(&mut random);
    format!(
        "tlsrpt-{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random)
    )
}

/// The RFC 8460 §5.3 message for `report`, from `from` to `to`.
pub fn message(report: &ReportToSend, from: &str, to: &str) -> Result<Message, String> {
    let from = from
        .parse()
        .map_err(|e| format!("the From address {from:?}: {e}"))?;
    let to = to
        .parse()
        .map_err(|e| format!("the rua address {to:?}: {e}"))?;
    let report_type = ContentType::parse(&format!(
        "multipart/report; report-type=\"tlsrpt\"; boundary=\"{}\"",
        boundary()
    ))
    .map_err(|e| format!("the multipart/report type: {e}"))?;
    let gzip_type = ContentType::parse(TLSRPT_GZIP).map_err(|e| e.to_string())?;
    let gzip = Body::new_with_encoding(report.gzip.clone(), ContentTransferEncoding::Base64)
        .map_err(|_| "base64 refused the report".to_owned())?;
    let body = MultiPart::builder()
        .header(report_type)
        .singlepart(SinglePart::plain(explanation(report)))
        .singlepart(Attachment::new(report.file_name.clone()).body(gzip, gzip_type));
    let header = |name: &'static str, value: String| {
        HeaderValue::new(HeaderName::new_from_ascii_str(name), value)
    };
    let mut random = [0_u8; 12];
    let _ = SystemRandom::new().fill(&mut random);
    let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
    Message::builder()
        .from(from)
        .to(to)
        // RFC 8460 §5.3: the suggested subject.
        .subject(format!(
            "Report Domain: {} Submitter: {SENDER_DOMAIN} Report-ID: <{}>",
            report.domain, report.report_id
        ))
        .message_id(Some(format!("<{hex}.tlsrpt@{SENDER_DOMAIN}>")))
        .raw_header(header("TLS-Report-Domain", report.domain.clone()))
        .raw_header(header("TLS-Report-Submitter", SENDER_DOMAIN.to_owned()))
        // RFC 3834 §5: no automatic replies to an automatic message.
        .raw_header(header("Auto-Submitted", "auto-generated".to_owned()))
        .multipart(body)
        .map_err(|e| e.to_string())
}

fn refused(uri: &str, via: String, answer: String, report: &ReportToSend) -> ReportDelivery {
    ReportDelivery {
        uri: uri.to_owned(),
        accepted: false,
        via,
        tls: None,
        answer,
        file_name: report.file_name.clone(),
    }
}

/// Delivers `report` to the `mailto:` destination `m`: through the relay when one is
/// configured, else to the MX hosts the scan found for the address's domain (`facts` holds
/// them when the domain reports to itself), in preference order, every address in turn until
/// one accepts or refuses for good (5yz).
pub async fn deliver(
    config: &DeliverConfig,
    report: &ReportToSend,
    m: &MailtoRuaFacts,
    facts: &DomainFacts,
) -> ReportDelivery {
    let message = match message(report, &config.from, &m.address) {
        Ok(message) => message,
        Err(why) => return refused(&m.uri, "-".to_owned(), why, report),
    };
    if let Some(relay) = &config.relay {
        let email = Email::new(
            relay.host.clone(),
            relay.port,
            relay.security,
            config.from.clone(),
            vec![m.address.clone()],
            relay.credentials.clone(),
            relay.extra_roots_pem.clone(),
        );
        let email = match email {
            Ok(e) => e.with_timeout(config.timeout),
            Err(e) => return refused(&m.uri, "relay".to_owned(), e.to_string(), report),
        };
        let email = match &config.hello_name {
            Some(name) => email.with_hello_name(name.clone()),
            None => email,
        };
        return sent(&m.uri, email.target(), email.send(&message).await, report);
    }
    let hosts = if m.same_as_domain {
        &facts.hosts
    } else {
        &m.hosts
    };
    let mut last: Option<ReportDelivery> = None;
    for host in hosts {
        for session in &host.sessions {
            let email = Email::new(
                host.exchange.clone(),
                session.address.port(),
                RelaySecurity::Opportunistic,
                config.from.clone(),
                vec![m.address.clone()],
                None,
                Vec::new(),
            );
            let email = match email {
                Ok(e) => e
                    .with_connect_address(session.address)
                    .with_timeout(config.timeout),
                Err(e) => {
                    last = Some(refused(
                        &m.uri,
                        host.exchange.clone(),
                        e.to_string(),
                        report,
                    ));
                    continue;
                }
            };
            let email = match &config.hello_name {
                Some(name) => email.with_hello_name(name.clone()),
                None => email,
            };
            let result = email.send(&message).await;
            let permanent = matches!(
                result,
                Err(DeliveryError::Email {
                    permanent: true,
                    ..
                })
            );
            let delivery = sent(&m.uri, email.target(), result, report);
            if delivery.accepted || permanent {
                return delivery;
            }
            last = Some(delivery);
        }
    }
    last.unwrap_or_else(|| {
        refused(
            &m.uri,
            format!("MX of {}", m.domain),
            format!(
                "not sent: the scan found no MX host address for {} (see the tlsrpt.rua \
                 findings)",
                m.domain
            ),
            report,
        )
    })
}

fn sent(
    uri: &str,
    via: String,
    result: Result<crate::notify::Accepted, DeliveryError>,
    report: &ReportToSend,
) -> ReportDelivery {
    match result {
        Ok(accepted) => ReportDelivery {
            uri: uri.to_owned(),
            accepted: true,
            via,
            tls: Some(accepted.encrypted),
            answer: accepted.reply,
            file_name: report.file_name.clone(),
        },
        // The target is already in `via`.
        Err(DeliveryError::Email { reason, .. }) => refused(uri, via, reason, report),
        Err(e) => refused(uri, via, e.to_string(), report),
    }
}

#[cfg(test)]
mod tests {
    use mail_parser::{MessageParser, MimeHeaders};

    use super::*;

    /// The message of RFC 8460 §5.3, read back by a mail parser: headers, the report type,
    /// the text part, the gzip'd report under its file name.
    #[test]
    fn the_report_mail_follows_rfc_8460() {
        let report = ReportToSend {
            domain: "example.com".to_owned(),
            report_id: "mxprobe1.example.com@mxprobe.invalid".to_owned(),
            file_name: "mxprobe.invalid!example.com!1!2!mxprobe1.json.gz".to_owned(),
            gzip: vec![0x1f, 0x8b, 8, 0, 1, 2, 3],
        };
        let mail = message(&report, "tester@example.org", "tlsrpt@example.com").unwrap();
        let raw = mail.formatted();
        let parsed = MessageParser::default().parse(&raw).unwrap();
        let header = |name: &str| parsed.header_raw(name).map(|v| v.trim().to_owned());
        assert_eq!(header("TLS-Report-Domain").as_deref(), Some("example.com"));
        assert_eq!(
            header("TLS-Report-Submitter").as_deref(),
            Some(SENDER_DOMAIN)
        );
        assert_eq!(header("Auto-Submitted").as_deref(), Some("auto-generated"));
        assert_eq!(
            parsed.subject(),
            Some(
                "Report Domain: example.com Submitter: mxprobe.invalid Report-ID: \
                 <mxprobe1.example.com@mxprobe.invalid>"
            )
        );
        let top = parsed.content_type().unwrap();
        assert_eq!(
            (top.ctype(), top.subtype(), top.attribute("report-type")),
            ("multipart", Some("report"), Some("tlsrpt"))
        );
        assert!(
            parsed
                .body_text(0)
                .is_some_and(|t| t.contains("synthetic aggregate TLS report")),
            "{:?}",
            parsed.body_text(0)
        );
        let parts: Vec<_> = parsed.attachments().collect();
        assert_eq!(parts.len(), 1);
        let ct = parts[0].content_type().unwrap();
        assert_eq!(
            (ct.ctype(), ct.subtype()),
            ("application", Some("tlsrpt+gzip"))
        );
        assert_eq!(parts[0].attachment_name(), Some(report.file_name.as_str()));
        assert_eq!(parts[0].contents(), report.gzip.as_slice());
        // Two messages never share a boundary.
        let again = message(&report, "tester@example.org", "tlsrpt@example.com").unwrap();
        assert_ne!(
            MessageParser::default()
                .parse(&again.formatted())
                .unwrap()
                .content_type()
                .unwrap()
                .attribute("boundary"),
            top.attribute("boundary")
        );
        // A From that is no address is refused, naming it.
        let err = message(&report, "nobody", "tlsrpt@example.com").unwrap_err();
        assert!(err.contains("\"nobody\""), "{err}");
    }
}
