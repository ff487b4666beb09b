//! RFC 8461 MTA-STS, the pure parts: the `_mta-sts` TXT record and the choice of one record
//! from the RRset ([`record`]), the policy body with its line-numbered errors, rendering and
//! RFC 8460 `policy-string` ([`policy`]), `mx` patterns and MX matching ([`pattern`]), and the
//! Content-Type verdict for the policy response ([`content_type`]).
//!
//! Nothing here does I/O: the DNS layer passes TXT strings in, the fetcher passes the HTTP
//! body and Content-Type in, and the evaluate stage and `mxprobe lint` turn the results into
//! findings.

pub mod content_type;
pub mod pattern;
pub mod policy;
pub mod record;

/// The size limit senders apply to the policy body (RFC 8461 §3.3 suggests 64 KiB).
pub const MAX_POLICY_BYTES: usize = 64 * 1024;

pub use content_type::{ContentTypeVerdict, judge_content_type};
pub use pattern::{MxPattern, MxPatternError};
pub use policy::{
    MAX_AGE_LIMIT, Mode, PartialPolicy, Policy, PolicyError, PolicyInvalid, PolicyNote,
    PolicyParse, parse_policy, policy_string,
};
pub use record::{StsConclusion, StsRecord, StsRecordError, StsSelection, select_sts};
