//! mxprobe: probe mail domains for MTA-STS, DANE and STARTTLS problems and predict the
//! TLS-RPT reports that real senders will write.
//!
//! The design is *observe once, evaluate purely, report many ways* (see `docs/architecture.md`).
//!
//! # Layout
//! - [`domain`]: the validated domain-name type every other module uses.
//! - [`tagvalue`]: the `v=…; k=v` grammar shared by the `_mta-sts` and `_smtp._tls` TXT records.
//! - [`mtasts`]: RFC 8461 — the `_mta-sts` record, the policy body, mx patterns, Content-Type.
//! - [`tlsrpt`]: RFC 8460 — the `_smtp._tls` record, result types, the report model
//!   (strict writer, tolerant reader) and report file names.
//! - [`tls`]: certificate judgement (PKIX and DNS-ID via rustls-webpki) and description.
//! - [`dane`]: RFC 7672 / 6698 — TLSA usability and matching against a presented chain.
//! - [`dns`]: plain DNS data (DNSSEC status).
//! - [`facts`]: what the observe stage records (the policy fetch so far).
//! - [`finding`]: the one model for everything mxprobe reports.
//! - [`lab`]: the in-process mail lab (its certificate authority so far).
//! - [`lint`]: offline judgement of candidate records and policies (`mxprobe lint`).
//! - [`render`]: human-readable text for findings.
//! - [`cli`]: the command line as typed (clap); `main.rs` stays thin.

#![forbid(unsafe_code)]

pub mod cli;
pub mod config;
pub mod dane;
pub mod dns;
pub mod domain;
pub mod evaluate;
pub mod facts;
pub mod fetch;
pub mod finding;
pub mod lab;
pub mod lint;
pub mod mtasts;
pub mod output;
pub mod render;
pub mod scan;
pub mod smtp;
pub mod tagvalue;
pub mod tls;
pub mod tlsrpt;
