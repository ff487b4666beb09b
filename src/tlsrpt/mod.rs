//! RFC 8460 SMTP TLS Reporting: the `_smtp._tls` record, the result-type vocabulary, the
//! report model and report file names. Pure: no I/O.

pub mod filename;
pub mod record;
pub mod report;
mod result_type;

pub use result_type::{PolicyType, ResultType, UnknownValue};
