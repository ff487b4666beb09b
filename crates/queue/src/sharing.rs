//! Politeness and probes shared by every worker of a run, kept in Redis as leases that
//! expire on their own ([`mxprobe_probe::scan::AddressSlots`],
//! [`mxprobe_probe::scan::ProbeExchange`]).
//!
//! - **Slots**: `slot:<ip>:<n>` for `n` in `0..per_ip`; a worker holds one (`SET NX PX`, its
//!   own token) for the time of one SMTP connection, renews it while it lasts, and deletes it
//!   (if still its own) when done. With `--per-ip-rate`, `next:<ip>` holds the time (Redis's
//!   clock) the next connection to the address may start; taking a slot reserves a start
//!   time in the same script. A worker that dies leaves its slot for at most [`LEASE`].
//! - **Probes**: `probe:<mx>|<sni>|<ip>|<port>` holds a finished probe (JSON) for the probe
//!   cache's TTL. A worker that finds none takes `probe-lease:…` and probes; the others poll
//!   until the result appears (or the lease expires, when one of them takes it over).

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::future::BoxFuture;
use redis::Script;
use tokio::task::JoinHandle;
use tokio::time::sleep;

use crate::Store;
use mxprobe_core::smtp::SmtpFacts;
use mxprobe_probe::scan::{AddressSlots, ProbeExchange, ProbeKey, SlotGuard};

/// How long a slot or a probe lease lives without renewal (a crashed worker's lease is
/// gone at most this long after it stopped renewing).
pub const LEASE: Duration = Duration::from_secs(10);

/// How often a held lease is renewed.
const RENEW_EVERY: Duration = Duration::from_secs(3);

/// The shortest and longest wait between two looks at a busy slot or a probe in the making.
const POLL_MIN: Duration = Duration::from_millis(10);
const POLL_MAX: Duration = Duration::from_millis(250);

/// The largest stored probe read back (a chain of a few certificates is a few KiB).
const MAX_PROBE_BYTES: usize = 1024 * 1024;

/// Takes the first free slot of `ARGV[2]` (per_ip) for token `ARGV[1]`, PX `ARGV[3]`; with a
/// rate interval `ARGV[4]` > 0 ms, also reserves the next start time at the address
/// (`KEYS[2]`). Returns `{slot, wait_ms}`, or `{-1, 0}` when every slot is held.
const TAKE_SLOT: &str = r"
local per_ip = tonumber(ARGV[2])
for n = 0, per_ip - 1 do
  if redis.call('SET', KEYS[1] .. n, ARGV[1], 'NX', 'PX', ARGV[3]) then
    local interval = tonumber(ARGV[4])
    if interval <= 0 then return {n, 0} end
    local t = redis.call('TIME')
    local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
    local next = tonumber(redis.call('GET', KEYS[2]) or '0')
    if next < now then next = now end
    redis.call('SET', KEYS[2], tostring(next + interval), 'PX', tostring(next + interval - now + 60000))
    return {n, next - now}
  end
end
return {-1, 0}
";

/// Renews `KEYS[1]` for `ARGV[2]` ms if it still holds token `ARGV[1]`.
const RENEW: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
";

/// Deletes `KEYS[1]` if it still holds token `ARGV[1]`.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// A probe result (`{"found", json}`), or the lease taken by token `ARGV[1]` for `ARGV[2]`
/// ms (`{"claimed", ""}`), or another worker's lease (`{"wait", ""}`).
const LOOK_OR_CLAIM: &str = r"
local found = redis.call('GET', KEYS[1])
if found then return {'found', found} end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return {'claimed', ''} end
return {'wait', ''}
";

/// Stores the probe `ARGV[1]` for `ARGV[2]` s and drops the lease if it is token `ARGV[3]`.
const PUBLISH: &str = r"
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
if redis.call('GET', KEYS[2]) == ARGV[3] then redis.call('DEL', KEYS[2]) end
return 1
";

/// A token unique to this process and call.
fn token() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    )
}

/// A lease held in Redis: renewed in the background while held, released when dropped.
struct Lease {
    store: Store,
    key: String,
    token: String,
    renewal: JoinHandle<()>,
}

impl Lease {
    fn hold(store: &Store, key: String, token: String) -> Self {
        let renewal = {
            let (store, key, token) = (store.clone(), key.clone(), token.clone());
            tokio::spawn(async move {
                let script = Script::new(RENEW);
                loop {
                    sleep(RENEW_EVERY).await;
                    let mut con = store.connection();
                    // A failed renewal is tried again at the next tick; the lease lasts
                    // three ticks.
                    let _: Result<i64, _> = script
                        .key(&key)
                        .arg(&token)
                        .arg(LEASE.as_millis() as u64)
                        .invoke_async(&mut con)
                        .await;
                }
            })
        };
        Self {
            store: store.clone(),
            key,
            token,
            renewal,
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.renewal.abort();
        let (store, key, token) = (
            self.store.clone(),
            std::mem::take(&mut self.key),
            std::mem::take(&mut self.token),
        );
        // Released in the background; if that fails, the lease expires on its own.
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                let _ = store
                    .retrying("releasing a lease", |mut con| {
                        let (key, token) = (key.clone(), token.clone());
                        async move {
                            Script::new(RELEASE)
                                .key(key)
                                .arg(token)
                                .invoke_async::<i64>(&mut con)
                                .await
                        }
                    })
                    .await;
            });
        }
    }
}

/// The next poll wait: doubled, at most [`POLL_MAX`].
fn next_poll(wait: Duration) -> Duration {
    (wait * 2).min(POLL_MAX)
}

/// Connection slots per address shared by every worker of the run.
#[derive(Debug, Clone)]
pub struct RedisSlots {
    store: Store,
    per_ip: usize,
    interval: Option<Duration>,
}

impl RedisSlots {
    /// At most `per_ip` connections to one address (0 is taken as 1), and with
    /// `per_ip_rate`, at most that many new ones a second (a rate that is not a positive
    /// number sets none).
    pub fn new(store: Store, per_ip: usize, per_ip_rate: Option<f64>) -> Self {
        let interval = per_ip_rate.filter(|r| r.is_finite() && *r > 0.0).map(|r| {
            Duration::try_from_secs_f64(1.0 / r).map_or(Duration::from_secs(3600), |d| {
                d.min(Duration::from_secs(3600))
            })
        });
        Self {
            store,
            per_ip: per_ip.max(1),
            interval,
        }
    }

    async fn take(&self, ip: IpAddr) -> SlotGuard {
        let prefix = format!("{}slot:{ip}:", self.store.keys().prefix());
        let next = format!("{}next:{ip}", self.store.keys().prefix());
        let interval_ms = self.interval.map_or(0, |d| d.as_millis().max(1) as u64);
        let mut wait = POLL_MIN;
        loop {
            let token = token();
            let taken = self
                .store
                .retrying("taking a connection slot", |mut con| {
                    let (prefix, next, token) = (prefix.clone(), next.clone(), token.clone());
                    async move {
                        Script::new(TAKE_SLOT)
                            .key(prefix)
                            .key(next)
                            .arg(token)
                            .arg(self.per_ip)
                            .arg(LEASE.as_millis() as u64)
                            .arg(interval_ms)
                            .invoke_async::<(i64, i64)>(&mut con)
                            .await
                    }
                })
                .await;
            match taken {
                Ok((slot, start_in)) if slot >= 0 => {
                    let lease = Lease::hold(&self.store, format!("{prefix}{slot}"), token);
                    if start_in > 0 {
                        sleep(Duration::from_millis(start_in.unsigned_abs())).await;
                    }
                    return SlotGuard::new(lease);
                }
                // Every slot is held, or Redis is away for longer than the patience: wait
                // and look again (the domain's deadline bounds the wait).
                Ok(_) | Err(_) => {
                    sleep(wait).await;
                    wait = next_poll(wait);
                }
            }
        }
    }
}

impl AddressSlots for RedisSlots {
    fn acquire(&self, ip: IpAddr) -> BoxFuture<'_, SlotGuard> {
        Box::pin(self.take(ip))
    }
}

/// SMTP probes shared by every worker of the run.
#[derive(Debug, Clone)]
pub struct RedisProbes {
    store: Store,
    ttl: Duration,
}

impl RedisProbes {
    /// Probe results are kept `ttl` (at least one second).
    pub fn new(store: Store, ttl: Duration) -> Self {
        Self {
            store,
            ttl: ttl.max(Duration::from_secs(1)),
        }
    }

    fn key_text(key: &ProbeKey) -> String {
        format!("{}|{}|{}|{}", key.mx, key.sni, key.ip, key.port)
    }

    async fn shared(&self, key: &ProbeKey, probe: BoxFuture<'_, SmtpFacts>) -> (SmtpFacts, bool) {
        let name = Self::key_text(key);
        let result_key = format!("{}probe:{name}", self.store.keys().prefix());
        let lease_key = format!("{}probe-lease:{name}", self.store.keys().prefix());
        let mut wait = POLL_MIN;
        let token = token();
        loop {
            let looked = self
                .store
                .retrying("looking up a shared probe", |mut con| {
                    let (r, l, t) = (result_key.clone(), lease_key.clone(), token.clone());
                    async move {
                        Script::new(LOOK_OR_CLAIM)
                            .key(r)
                            .key(l)
                            .arg(t)
                            .arg(LEASE.as_millis() as u64)
                            .invoke_async::<(String, Vec<u8>)>(&mut con)
                            .await
                    }
                })
                .await;
            match looked {
                Ok((state, json)) if state == "found" => {
                    if json.len() <= MAX_PROBE_BYTES
                        && let Ok(facts) = serde_json::from_slice::<SmtpFacts>(&json)
                    {
                        return (facts, false);
                    }
                    // Unreadable (another version, or damaged): probe here and overwrite it.
                    let facts = probe.await;
                    self.publish(&facts, &result_key, &lease_key, &token).await;
                    return (facts, true);
                }
                Ok((state, _)) if state == "claimed" => {
                    // Renewed while the probe runs; dropped (released) if it is cancelled,
                    // so another worker takes over at once.
                    let lease = Lease::hold(&self.store, lease_key.clone(), token.clone());
                    let facts = probe.await;
                    self.publish(&facts, &result_key, &lease_key, &token).await;
                    drop(lease);
                    return (facts, true);
                }
                Ok(_) | Err(_) => {
                    sleep(wait).await;
                    wait = next_poll(wait);
                }
            }
        }
    }

    /// Stores `facts` for the TTL and lets go of the lease. A probe that cannot be stored
    /// (Redis away past the patience) is still this domain's result; the others probe again.
    async fn publish(&self, facts: &SmtpFacts, result_key: &str, lease_key: &str, token: &str) {
        let Ok(json) = serde_json::to_string(facts) else {
            return;
        };
        let ttl = self.ttl.as_secs();
        let _ = self
            .store
            .retrying("storing a shared probe", |mut con| {
                let (r, l, j, t) = (
                    result_key.to_owned(),
                    lease_key.to_owned(),
                    json.clone(),
                    token.to_owned(),
                );
                async move {
                    Script::new(PUBLISH)
                        .key(r)
                        .key(l)
                        .arg(j)
                        .arg(ttl)
                        .arg(t)
                        .invoke_async::<i64>(&mut con)
                        .await
                }
            })
            .await;
    }
}

impl ProbeExchange for RedisProbes {
    fn probe<'a>(
        &'a self,
        key: &'a ProbeKey,
        probe: BoxFuture<'a, SmtpFacts>,
    ) -> BoxFuture<'a, (SmtpFacts, bool)> {
        Box::pin(self.shared(key, probe))
    }
}
