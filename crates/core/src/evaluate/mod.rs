//! Pure judgement of facts and candidate records: RFC rules applied to what was seen or
//! typed. No I/O.
//!
//! - [`domain`]: one domain as a sender sees it: the policy per MX, each session, findings.
//! - [`records`]: the `_mta-sts` and `_smtp._tls` TXT record sets.
//! - [`policy`]: the policy body and which MX hosts its patterns cover.
//! - [`policy_fetch`]: the policy fetch (RFC 8461 §3.3) and its three failure types.

pub mod domain;
pub mod policy;
pub mod policy_fetch;
pub mod records;
