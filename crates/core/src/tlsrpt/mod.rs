//! RFC 8460 SMTP TLS Reporting: the `_smtp._tls` record ([`record`]), the result-type
//! vocabulary, the report model with its strict writer and tolerant reader ([`report`]) and
//! report file names ([`filename`]). mxprobe's synthetic reports are written by the report
//! stage ([`crate::synthetic_report`]).
//! Pure: no I/O.

pub mod filename;
pub mod record;
pub mod report;
mod result_type;

pub use result_type::{PolicyType, ResultType, UnknownValue};
