//! RFC 8460 SMTP TLS Reporting: the `_smtp._tls` record ([`record`]), the result-type
//! vocabulary, the report model with its strict writer and tolerant reader ([`report`]),
//! report file names ([`filename`]) and mxprobe's synthetic reports ([`synthetic`]).
//! Pure: no I/O.

pub mod filename;
pub mod record;
pub mod report;
mod result_type;
pub mod synthetic;

pub use result_type::{PolicyType, ResultType, UnknownValue};
