//! The in-process mail lab: authoritative DNS (with DNSSEC-signed zones), SMTP servers
//! speaking STARTTLS (well or badly), HTTPS policy servers, and the certificate authority
//! that makes their certificates at start. `mxprobe demo`, the integration tests and the
//! benchmarks all use this one lab. Everything listens on loopback.

pub mod dns;
pub mod https;
pub mod pki;
pub mod smtp;
