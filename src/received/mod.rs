//! Real TLS-RPT reports (RFC 8460) as received by a domain owner: reading them from files and
//! mail folders ([`ingest`]), summarising them ([`summary`]), and putting them next to
//! mxprobe's own findings ([`compare`]).

pub mod compare;
pub mod ingest;
pub mod summary;
