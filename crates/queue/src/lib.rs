//! Distributed scans through Redis: a work queue with crash recovery, global per-address
//! politeness and SMTP probes shared across workers (`mxprobe queue …` and `mxprobe worker`).
//!
//! Everything lives under keys named after the run (`mxprobe:{RUN}:…`; the braces are a
//! Redis Cluster hash tag, so one run's keys stay on one node):
//!
//! | key | type | what |
//! |---|---|---|
//! | `queue` | stream, group `workers` | one entry per target: `line`, `domain` |
//! | `results` | stream | one entry per domain stored (`kind` `domain`) or invalid row (`kind` `invalid`), `data` is JSON |
//! | `done` | hash | domain → `1`: the domains whose result is in `results` (each once) |
//! | `meta` | hash | `pushed`, `invalid`, `push-complete`, `taken-over` |
//! | `workers` | sorted set | consumer name → the time its heartbeat expires (ms) |
//! | `probe:<mx>\|<sni>\|<ip>\|<port>` | string, TTL | a shared probe result (JSON) |
//! | `probe-lease:…` | string, TTL | who is making that probe |
//! | `slot:<ip>:<n>`, `next:<ip>` | string, TTL | connection slots at one address; the rate |
//!
//! The guarantees (see `docs/distributed.md`): entries are delivered at least once (a worker
//! acknowledges an entry in the same script that stores its result, and entries a dead worker
//! held are taken over with `XAUTOCLAIM`); results are keyed by domain, so a domain done
//! twice is stored once; every lease (a connection slot, a probe in the making) expires on its
//! own, so a crashed worker holds nothing for longer than the lease.
//!
//! The URL's password never appears in an error or a note: every text this crate makes from
//! the URL or from a Redis error goes through [`RedisUrl::scrub`].

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{RedisError, RedisResult};
use serde::{Deserialize, Serialize};
use tokio::time::{Instant, sleep};

use mxprobe_core::domain::DomainName;
use mxprobe_core::result::DomainResult;

pub mod sharing;
pub mod work;

/// The run name used when none is given.
pub const DEFAULT_RUN: &str = "default";

/// The longest run name.
pub const MAX_RUN_NAME: usize = 64;

/// The largest stored record (one domain's facts and verdict as JSON) read back.
pub const MAX_RECORD_BYTES: usize = 8 * 1024 * 1024;

/// Why talking to Redis failed. Every text here is scrubbed of the URL's password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    /// The URL cannot be used.
    #[error("the Redis URL {url} cannot be used: {reason}")]
    BadUrl {
        /// The URL, its password replaced by `***`.
        url: String,
        /// Why.
        reason: String,
    },
    /// The run name is not usable.
    #[error(
        "the run name {name:?} cannot be used: use 1 to {MAX_RUN_NAME} letters, digits, '.', \
         '_' or '-'"
    )]
    BadRunName {
        /// The name given.
        name: String,
    },
    /// Redis could not be reached or kept failing for longer than the patience.
    #[error(
        "Redis at {url} failed {what} for {waited_secs} s ({message}); check that it runs, that \
         the URL, user and password are right, that this host may connect, and for rediss:// \
         that the system's CA certificates (or SSL_CERT_FILE) trust the server's certificate"
    )]
    Unavailable {
        /// The URL, its password replaced by `***`.
        url: String,
        /// What was being done.
        what: &'static str,
        /// How long it was retried.
        waited_secs: u64,
        /// The last error, scrubbed.
        message: String,
    },
    /// The run has no queue in this Redis.
    #[error(
        "there is no run {run} at {url}: start it with `mxprobe queue push --run {run}` (or check \
         --run and the database number in the URL)"
    )]
    NoRun {
        /// The run name.
        run: String,
        /// The URL, its password replaced by `***`.
        url: String,
    },
    /// Redis answered in a way this version does not understand.
    #[error("Redis at {url} answered {what} unexpectedly: {message}")]
    Protocol {
        /// The URL, its password replaced by `***`.
        url: String,
        /// What was being done.
        what: &'static str,
        /// What was wrong, scrubbed.
        message: String,
    },
}

/// A Redis URL (`redis://` or `rediss://`), kept with what it takes to hide its password.
#[derive(Clone)]
pub struct RedisUrl {
    url: String,
    secret: Option<String>,
}

impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RedisUrl({})", self.redacted())
    }
}

impl fmt::Display for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl RedisUrl {
    /// Checks the scheme and keeps `url`. The password (the part of the user information
    /// after `:`; a user alone is taken as a password too, as Redis does with `AUTH`) is what
    /// [`Self::scrub`] hides.
    pub fn parse(url: &str) -> Result<Self, QueueError> {
        let secret = userinfo(url).and_then(|info| {
            let password = info.split_once(':').map_or(info, |(_, p)| p);
            (!password.is_empty()).then(|| password.to_owned())
        });
        let parsed = Self {
            url: url.to_owned(),
            secret,
        };
        let scheme = url.split_once("://").map(|(s, _)| s);
        if !matches!(scheme, Some("redis" | "rediss")) {
            return Err(QueueError::BadUrl {
                url: parsed.redacted(),
                reason: "it must start with redis:// or rediss:// (TLS)".to_owned(),
            });
        }
        if let Err(e) = redis::Client::open(url) {
            return Err(QueueError::BadUrl {
                url: parsed.redacted(),
                reason: parsed.scrub(&e.to_string()),
            });
        }
        Ok(parsed)
    }

    /// The URL with its password replaced by `***`.
    pub fn redacted(&self) -> String {
        match (userinfo(&self.url), &self.secret) {
            (Some(info), Some(_)) => {
                let shown = match info.split_once(':') {
                    Some((user, _)) => format!("{user}:***"),
                    None => "***".to_owned(),
                };
                self.url
                    .replacen(&format!("{info}@"), &format!("{shown}@"), 1)
            }
            _ => self.url.clone(),
        }
    }

    /// `text` with the password (raw and percent-decoded) replaced by `***`.
    pub fn scrub(&self, text: &str) -> String {
        let Some(secret) = &self.secret else {
            return text.to_owned();
        };
        let mut out = text.replace(secret.as_str(), "***");
        if let Ok(decoded) = percent_encoding::percent_decode_str(secret).decode_utf8()
            && !decoded.is_empty()
        {
            out = out.replace(decoded.as_ref(), "***");
        }
        out
    }
}

/// The user information of `url` (between `://` and the last `@` of the authority).
fn userinfo(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    authority.rsplit_once('@').map(|(info, _)| info)
}

/// Checks a run name: 1 to [`MAX_RUN_NAME`] letters, digits, `.`, `_` or `-`.
pub fn check_run_name(name: &str) -> Result<(), QueueError> {
    let ok = (1..=MAX_RUN_NAME).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(QueueError::BadRunName {
            name: name.chars().take(80).collect(),
        })
    }
}

/// The keys of one run.
#[derive(Debug, Clone)]
pub struct Keys {
    name: String,
    prefix: String,
}

impl Keys {
    /// The keys of run `name` (checked with [`check_run_name`]).
    pub fn new(name: &str) -> Result<Self, QueueError> {
        check_run_name(name)?;
        Ok(Self {
            name: name.to_owned(),
            prefix: format!("mxprobe:{{{name}}}:"),
        })
    }

    fn key(&self, what: &str) -> String {
        format!("{}{what}", self.prefix)
    }

    /// The work queue (a stream).
    pub fn queue(&self) -> String {
        self.key("queue")
    }
    /// The stored results (a stream).
    pub fn results(&self) -> String {
        self.key("results")
    }
    /// The domains stored (a hash).
    pub fn done(&self) -> String {
        self.key("done")
    }
    /// The run's counters (a hash).
    pub fn meta(&self) -> String {
        self.key("meta")
    }
    /// The live workers (a sorted set).
    pub fn workers(&self) -> String {
        self.key("workers")
    }
    /// The run's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Every key whose name starts with this belongs to the run.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }
}

/// The consumer group every worker reads the queue in.
pub const GROUP: &str = "workers";

/// How a stored domain ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum StoredOutcome {
    /// Scanned: its facts and verdict.
    Scanned {
        /// The result.
        report: Box<DomainResult>,
    },
    /// Past its deadline.
    TimedOut {
        /// The deadline, in seconds.
        deadline_secs: u64,
    },
    /// The scan stopped on an internal error.
    Crashed {
        /// What the error said.
        message: String,
    },
}

/// One record of the results stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum StoredRecord {
    /// A domain's result.
    Domain {
        /// Its input line.
        line: usize,
        /// The domain.
        domain: DomainName,
        /// How it ended.
        #[serde(flatten)]
        outcome: StoredOutcome,
    },
    /// An input row that is not a domain (stored by `queue push`).
    Invalid {
        /// Its input line.
        line: usize,
        /// The row's text.
        input: String,
        /// Why it is not a domain.
        error: String,
    },
}

/// Where notes about Redis going away and coming back go (standard error in the binary).
pub type Notes = Arc<dyn Fn(String) + Send + Sync>;

/// A connection to one run in Redis, retrying failed commands with back-off.
#[derive(Clone)]
pub struct Store {
    url: RedisUrl,
    keys: Keys,
    con: ConnectionManager,
    /// How long a command is retried before it is an error.
    patience: Duration,
    notes: Notes,
    down: Arc<AtomicBool>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("url", &self.url)
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

/// The first wait between two tries of a failed command.
const FIRST_RETRY: Duration = Duration::from_millis(100);
/// The longest wait between two tries.
const LAST_RETRY: Duration = Duration::from_secs(5);

impl Store {
    /// Connects to `url` for run `run`, trying for up to `patience`; `notes` hears when
    /// Redis goes away and comes back.
    pub async fn connect(
        url: &RedisUrl,
        run: &str,
        patience: Duration,
        notes: Notes,
    ) -> Result<Self, QueueError> {
        let keys = Keys::new(run)?;
        let client = redis::Client::open(url.url.as_str()).map_err(|e| QueueError::BadUrl {
            url: url.redacted(),
            reason: url.scrub(&e.to_string()),
        })?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_response_timeout(Some(Duration::from_secs(15)))
            .set_min_delay(FIRST_RETRY)
            .set_max_delay(LAST_RETRY)
            .set_number_of_retries(3);
        let started = Instant::now();
        let mut wait = FIRST_RETRY;
        let con = loop {
            match client
                .get_connection_manager_with_config(config.clone())
                .await
            {
                Ok(con) => break con,
                Err(e) if started.elapsed() + wait < patience && retryable(&e) => {
                    // Said once, at once: a wrong URL must not look like a hang for the
                    // whole patience.
                    if wait == FIRST_RETRY {
                        notes(format!(
                            "Redis at {} does not accept a connection yet ({}); retrying with \
                             back-off for up to {} s (--redis-patience)",
                            url,
                            url.scrub(&e.to_string()),
                            patience.as_secs()
                        ));
                    }
                    sleep(wait).await;
                    wait = (wait * 2).min(LAST_RETRY);
                }
                Err(e) => {
                    return Err(QueueError::Unavailable {
                        url: url.redacted(),
                        what: "to accept a connection",
                        waited_secs: started.elapsed().as_secs(),
                        message: url.scrub(&e.to_string()),
                    });
                }
            }
        };
        Ok(Self {
            url: url.clone(),
            keys,
            con,
            patience,
            notes,
            down: Arc::new(AtomicBool::new(false)),
        })
    }

    /// The run's keys.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// The URL (shown redacted).
    pub fn url(&self) -> &RedisUrl {
        &self.url
    }

    /// A connection for one command (connections are multiplexed: this is cheap).
    pub fn connection(&self) -> ConnectionManager {
        self.con.clone()
    }

    /// Runs `op` until it succeeds, retrying errors that a reconnect can cure with back-off
    /// for up to the patience. `what` names the operation in errors and notes.
    pub async fn retrying<T, F, Fut>(&self, what: &'static str, mut op: F) -> Result<T, QueueError>
    where
        F: FnMut(ConnectionManager) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let started = Instant::now();
        let mut wait = FIRST_RETRY;
        loop {
            match op(self.con.clone()).await {
                Ok(value) => {
                    if self.down.swap(false, Ordering::SeqCst) {
                        (self.notes)(format!("Redis at {} answers again", self.url));
                    }
                    return Ok(value);
                }
                Err(e) if retryable(&e) && started.elapsed() + wait < self.patience => {
                    if !self.down.swap(true, Ordering::SeqCst) {
                        (self.notes)(format!(
                            "Redis at {} failed {what} ({}); retrying with back-off for up to {} s",
                            self.url,
                            self.url.scrub(&e.to_string()),
                            self.patience.as_secs()
                        ));
                    }
                    sleep(wait).await;
                    wait = (wait * 2).min(LAST_RETRY);
                }
                Err(e) if retryable(&e) => {
                    return Err(QueueError::Unavailable {
                        url: self.url.redacted(),
                        what,
                        waited_secs: started.elapsed().as_secs(),
                        message: self.url.scrub(&e.to_string()),
                    });
                }
                Err(e) => {
                    return Err(QueueError::Protocol {
                        url: self.url.redacted(),
                        what,
                        message: self.url.scrub(&e.to_string()),
                    });
                }
            }
        }
    }

    /// A protocol error about `what`.
    pub(crate) fn unexpected(&self, what: &'static str, message: impl fmt::Display) -> QueueError {
        QueueError::Protocol {
            url: self.url.redacted(),
            what,
            message: self.url.scrub(&message.to_string()),
        }
    }
}

/// Whether a reconnect (or waiting) can cure `e`: I/O, timeouts, a server loading its data
/// or not yet ready, a failover; not a wrong password or a script error.
fn retryable(e: &RedisError) -> bool {
    use redis::ErrorKind;
    if e.is_io_error() || e.is_timeout() || e.is_connection_dropped() || e.is_connection_refusal() {
        return true;
    }
    matches!(
        e.kind(),
        ErrorKind::Server(redis::ServerErrorKind::BusyLoading)
            | ErrorKind::Server(redis::ServerErrorKind::TryAgain)
            | ErrorKind::Server(redis::ServerErrorKind::ClusterDown)
            | ErrorKind::Server(redis::ServerErrorKind::MasterDown)
            | ErrorKind::Server(redis::ServerErrorKind::ReadOnly)
    ) || e.code() == Some("LOADING")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show() {
        let cases = [
            (
                "redis://scanner:s3cr%40t@redis.example:6380/2",
                "redis://scanner:***@redis.example:6380/2",
            ),
            ("rediss://:hunter2@10.0.0.5", "rediss://:***@10.0.0.5"),
            ("redis://127.0.0.1:6379", "redis://127.0.0.1:6379"),
        ];
        for (url, shown) in cases {
            let parsed = RedisUrl::parse(url).expect(url);
            assert_eq!(parsed.redacted(), shown);
            assert_eq!(parsed.to_string(), shown);
            assert_eq!(format!("{parsed:?}"), format!("RedisUrl({shown})"));
        }
        let url = RedisUrl::parse("redis://u:s3cr%40t@h").expect("valid");
        assert_eq!(
            url.scrub("auth failed for s3cr@t and s3cr%40t"),
            "auth failed for *** and ***"
        );
        let err = RedisUrl::parse("http://u:topsecret@h").expect_err("not redis");
        assert!(!err.to_string().contains("topsecret"), "{err}");
        assert!(err.to_string().contains("http://u:***@h"), "{err}");
    }

    #[test]
    fn run_names_are_checked() {
        for good in ["default", "zone-2026.12_a", &"x".repeat(MAX_RUN_NAME)] {
            assert!(check_run_name(good).is_ok(), "{good}");
        }
        for bad in ["", "a b", "a{b}", "é", &"x".repeat(MAX_RUN_NAME + 1)] {
            assert!(check_run_name(bad).is_err(), "{bad}");
        }
        assert_eq!(
            Keys::new("z1").expect("valid").queue(),
            "mxprobe:{z1}:queue"
        );
    }

    #[test]
    fn records_round_trip() {
        let record = StoredRecord::Invalid {
            line: 3,
            input: "x y".to_owned(),
            error: "not a domain".to_owned(),
        };
        let text = serde_json::to_string(&record).expect("serialises");
        assert_eq!(
            text,
            r#"{"kind":"invalid","line":3,"input":"x y","error":"not a domain"}"#
        );
        assert_eq!(
            serde_json::from_str::<StoredRecord>(&text).expect("parses"),
            record
        );
        let timed_out = StoredRecord::Domain {
            line: 7,
            domain: DomainName::parse("a.example").expect("valid"),
            outcome: StoredOutcome::TimedOut { deadline_secs: 9 },
        };
        let text = serde_json::to_string(&timed_out).expect("serialises");
        assert_eq!(
            serde_json::from_str::<StoredRecord>(&text).expect("parses"),
            timed_out
        );
    }
}
