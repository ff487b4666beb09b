#![forbid(unsafe_code)]

//! The in-process mail lab: authoritative DNS (with DNSSEC-signed zones), SMTP servers
//! speaking STARTTLS (well or badly), HTTPS policy servers, and the certificate authority
//! that makes their certificates at start. `mxprobe demo`, the integration tests and the
//! benchmarks all use this one lab. Everything listens on loopback.
//!
//! [`scenario`] reads the data file that describes the lab (`fixtures/lab/scenario.toml`)
//! and [`run`] starts it: `Lab::start(&Scenario::embedded()?, now)` returns a
//! [`run::RunningLab`] whose [`run::RunningLab::scan_config`] scans it.
//! [`bulk_scenario`] generates the many-domain scenario of the bulk-scan benchmark.

pub mod bulk_scenario;
pub mod dns;
pub mod https;
pub use mxprobe_testpki as pki;
pub mod run;
pub mod scenario;
pub mod smtp;

pub use run::{Lab, LabCounters, LabError, RunningLab};
pub use scenario::Scenario;
