//! Why a scenario could not be read, naming the file, the entry and the field.

use std::path::PathBuf;

use super::MAX_IPV4_HOSTS;

/// Why a scenario could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("cannot read the lab scenario {}: {source}", file.display())]
    Read {
        /// The file.
        file: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not TOML, or a field is missing, unknown or of the wrong type.
    #[error("{file}: this is not a valid lab scenario: {message}")]
    Syntax {
        /// The file.
        file: String,
        /// The TOML parser's message (with line and column).
        message: String,
    },
    /// A name that is not a valid host name.
    #[error("{file}: {entry}, field `{field}`: {value:?} is not a valid host name ({reason})")]
    BadName {
        /// The file.
        file: String,
        /// The entry (`domain x.test`, `host mx.x.test`, or the position when the name
        /// itself is bad).
        entry: String,
        /// The field.
        field: &'static str,
        /// The value given.
        value: String,
        /// Why it is not a name.
        reason: String,
    },
    /// An MX entry that is not `"<preference> <host>"`.
    #[error(
        "{file}: {entry}, field `mx`: {value:?} is not \"<preference 0-65535> <host>\" (use \
         \"0 .\" for a null MX)"
    )]
    BadMx {
        /// The file.
        file: String,
        /// The domain entry.
        entry: String,
        /// The value given.
        value: String,
    },
    /// An MX entry naming a host that has no `[[host]]` entry.
    #[error(
        "{file}: {entry}, field `mx`: {host} has no [[host]] entry (declare it; give it \
         `ipv4 = false` to make it unresolvable)"
    )]
    UndeclaredHost {
        /// The file.
        file: String,
        /// The domain entry.
        entry: String,
        /// The host named.
        host: String,
    },
    /// A TXT string longer than one DNS character-string.
    #[error(
        "{file}: {entry}, field `{field}`: a string of {len} bytes; a TXT character-string holds \
         at most 255"
    )]
    TxtTooLong {
        /// The file.
        file: String,
        /// The domain entry.
        entry: String,
        /// The field.
        field: &'static str,
        /// The string's length.
        len: usize,
    },
    /// The same domain or host twice.
    #[error("{file}: {entry} is defined twice")]
    Duplicate {
        /// The file.
        file: String,
        /// The entry.
        entry: String,
    },
    /// A session expectation for a host that is not an MX host of the domain.
    #[error(
        "{file}: {entry}, field `expect.sessions`: {mx} is not a host this domain's mail goes \
         to (its MX hosts, or the domain itself without MX)"
    )]
    ExpectedMxUnknown {
        /// The file.
        file: String,
        /// The domain entry.
        entry: String,
        /// The host named in the expectation.
        mx: String,
    },
    /// A session expectation whose `result` and `failures` disagree.
    #[error("{file}: {entry}, field `expect.sessions` ({mx}): {reason}")]
    BadSessionExpectation {
        /// The file.
        file: String,
        /// The domain entry.
        entry: String,
        /// The host named in the expectation.
        mx: String,
        /// What disagrees.
        reason: &'static str,
    },
    /// A broken-resolver entry that names a domain the scenario does not have, or expects
    /// sessions (a scan through a broken resolver probes nothing).
    #[error("{file}: resolver {entry}: {reason}")]
    BadResolver {
        /// The file.
        file: String,
        /// The resolver entry's name.
        entry: String,
        /// What is wrong.
        reason: String,
    },
    /// A policy host whose response cannot be described this way.
    #[error("{file}: {entry}, field `policy.{field}`: {reason}")]
    BadPolicy {
        /// The file.
        file: String,
        /// The domain entry.
        entry: String,
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
    /// Two hosts with IPv6: the lab has one IPv6 loopback address.
    #[error(
        "{file}: hosts {first} and {second} both ask for IPv6; the lab has a single IPv6 \
         loopback address (::1), so only one host can have one"
    )]
    SecondIpv6Host {
        /// The file.
        file: String,
        /// The first host with IPv6.
        first: String,
        /// The second one.
        second: String,
    },
    /// More IPv4 hosts than loopback addresses the lab hands out.
    #[error("{file}: {count} hosts ask for IPv4; the lab has addresses for {MAX_IPV4_HOSTS}")]
    TooManyHosts {
        /// The file.
        file: String,
        /// How many hosts ask for IPv4.
        count: usize,
    },
}
