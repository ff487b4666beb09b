//! Observe: the only stage of mxprobe that reaches the network.
//!
//! - [`resolver`]: the hickory-resolver adapter behind [`mxprobe_core::dns::Resolve`].
//! - [`fetch`]: the MTA-STS policy fetch over HTTPS (RFC 8461 §3.3).
//! - [`starttls`]: the SMTP STARTTLS probe, driving the sans-I/O dialogue of
//!   [`mxprobe_core::smtp`].
//! - [`capture`]: the recording certificate verifier the probes use; the judgement is core's.
//! - [`scan`]: observe one domain, then evaluate it; [`bulk`]: many domains, politely.

#![forbid(unsafe_code)]

pub mod bulk;
pub mod capture;
pub mod fetch;
pub mod resolver;
pub mod scan;
pub mod starttls;
