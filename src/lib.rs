//! The `mxprobe` command: everything that only the binary uses. The stages live in their own
//! crates: [`mxprobe_core`] (pure: data, rules, report writers), [`mxprobe_probe`] (the
//! network) and [`mxprobe_lab`] (the in-process mail lab); see `docs/architecture.md`.
//!
//! - [`cli`], [`config`]: the command line as typed (clap), and the runtime objects built from it.
//! - [`input`]: scan targets from CSV files and lists; [`progress`]: progress on stderr.
//! - Monitoring (`mxprobe monitor`, `mxprobe history`): [`history`] (SQLite), [`notify`]
//!   (webhook, e-mail and command delivery), [`metrics`] (the Prometheus textfile),
//!   [`monitor`] (one run: compare, store, alert, deliver).
//! - [`serve`]: the Prometheus exporter (`mxprobe serve`); [`exposition`]: the metric families
//!   of a domain it shares with the textfile.
//! - [`received`]: TLS-RPT reports received from senders (`mxprobe reports`: ingest, summary,
//!   compare); [`deliver`]: synthetic reports sent to a domain's own destinations
//!   (`scan --deliver-reports`).
//! - [`cmd`]: the commands of the binary, each from its flags to an exit status;
//!   [`sinks`]: where the results of a run go, and the one loop that feeds them.

#![forbid(unsafe_code)]

pub mod cli;
pub mod cmd;
pub mod config;
pub mod deliver;
pub mod exposition;
pub mod history;
pub mod input;
pub mod metrics;
pub mod monitor;
pub mod notify;
pub mod progress;
pub mod received;
pub mod serve;
pub mod sinks;
