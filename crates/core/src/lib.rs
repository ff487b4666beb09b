//! mxprobe: probe mail domains for MTA-STS, DANE and STARTTLS problems and predict the
//! TLS-RPT reports that real senders will write.
//!
//! The design is *observe once, evaluate purely, report many ways* (see `docs/architecture.md`).
//!
//! # Layout
//! Observe (the only modules that reach the network):
//! - [`dns`]: plain DNS data and the [`dns::Resolve`] trait; [`dns::hickory`] is the adapter.
//! - [`fetch`]: the MTA-STS policy fetch (RFC 8461 §3.3).
//! - [`smtp`]: the SMTP reply parser and dialogue (pure) and the STARTTLS probe.
//! - [`facts`]: what observation records, with no verdicts.
//!
//! Evaluate (pure):
//! - [`domain`]: the validated domain-name type every other module uses.
//! - [`tagvalue`]: the `v=…; k=v` grammar shared by the `_mta-sts` and `_smtp._tls` TXT records.
//! - [`mtasts`]: RFC 8461 — the `_mta-sts` record, the policy body, mx patterns, Content-Type.
//! - [`tls`]: certificate judgement (PKIX and DNS-ID via rustls-webpki), description, and the
//!   recording verifier the probes use.
//! - [`dane`]: RFC 7672 / 7671 — TLSA usability and matching against a presented chain.
//! - [`evaluate`]: records, policies, the policy fetch and whole domains as senders see them.
//! - [`finding`]: the one model for everything mxprobe reports.
//!
//! Report:
//! - [`tlsrpt`]: RFC 8460 — the `_smtp._tls` record, result types, the report model (strict
//!   writer, tolerant reader) and report file names.
//! - [`render`], [`output`], [`stream`]: findings and scan results for people and programs;
//!   JSON Lines, CSV summaries and resuming; [`csv_cell`]: the one rule for text in CSV cells;
//!   [`synthetic_report`]: the TLS-RPT report a sender would write after mxprobe's sessions.
//! - [`limits`]: the caps on what mxprobe reads from files, and bounded reading.
//!
//! Around them:
//! - [`scan`]: observe then evaluate one domain; [`bulk`]: many domains, politely.
//! - [`input`]: scan targets from CSV files and lists; [`progress`]: progress on stderr.
//! - [`lint`]: offline judgement of candidate records and policies (`mxprobe lint`).
//! - [`gate`]: candidate changes judged against live observations (`mxprobe gate`);
//!   [`generate`]: the records and policy of a new deployment (`mxprobe generate`);
//!   [`ci`]: JUnit XML, GitHub Actions annotations and step summaries.
//! - Monitoring (`mxprobe monitor`, `mxprobe history`): [`alert`] (snapshots, changes,
//!   alerts), [`changes`] (what changed since the previous run), [`history`] (SQLite),
//!   [`notify`] (webhook, e-mail and command delivery), [`metrics`] (the Prometheus textfile),
//!   [`monitor`] (one run: compare, store, alert, deliver).
//! - [`lab`]: the in-process mail lab (`mxprobe demo`, the tests, the benchmarks).
//! - [`cli`], [`config`]: the command line as typed (clap), and turning it into a configuration.

#![forbid(unsafe_code)]

pub mod alert;
pub mod changes;
pub mod ci;
pub mod csv_cell;
pub mod dane;
pub mod dns;
pub mod domain;
pub mod evaluate;
pub mod facts;
pub mod finding;
pub mod gate;
pub mod generate;
pub mod html;
pub mod limits;
pub mod lint;
pub mod mtasts;
pub mod output;
pub mod render;
pub mod result;
pub mod smtp;
pub mod stream;
pub mod synthetic_report;
pub mod tagvalue;
pub mod tls;
pub mod tlsrpt;
