//! The in-process mail lab; so far its certificate authority.
//!
//! [`pki`] makes the certificates the lab's servers (a later feature) present and the tests
//! judge. No I/O.

pub mod pki;
