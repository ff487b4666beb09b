//! Politeness: how the SMTP probes treat the servers they visit.
//!
//! At most `per_ip` simultaneous SMTP connections to one destination address (a semaphore per
//! address, made on demand and dropped when idle), optionally at most `per_ip_rate` new
//! connections per second to it. A 421, a refused connection, or a connection closed or
//! reset before the greeting are what a busy or rate-limiting server does: the probe backs
//! off (exponentially, with jitter, bounded) and tries again while the probe deadline
//! leaves time. If the deadline runs out first, the last outcome stands, and it is
//! inconclusive ([`SmtpOutcome::is_inconclusive`]), never a failure. TLS refused after the
//! 220 to STARTTLS (the connection closed or reset, or an alert) is tried again the same
//! way; the facts keep how every attempt ended ([`SmtpFacts::earlier_outcomes`]), and a
//! server that refused TLS on every one of two or more attempts never accepts TLS, which
//! the evaluation reports as a failure ([`SmtpFacts::refused_tls_every_time`]).

use super::*;

/// How politely the SMTP probes treat the servers they visit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Politeness {
    /// At most this many simultaneous SMTP connections to one destination address (0 is
    /// taken as 1).
    pub per_ip: usize,
    /// At most this many new SMTP connections per second to one destination address; `None`
    /// (or a value that is not a positive number) sets no rate.
    pub per_ip_rate: Option<f64>,
    /// The waits between attempts when a server looks busy.
    pub backoff: Backoff,
}

impl Default for Politeness {
    /// Two connections per address, no rate, [`Backoff::default`].
    fn default() -> Self {
        Self {
            per_ip: 2,
            per_ip_rate: None,
            backoff: Backoff::default(),
        }
    }
}

/// Exponential back-off with jitter between attempts at a busy server. Attempt `n + 1`
/// waits a random time between half and all of `min(initial × 2^(n−1), max)`. Whatever these
/// say, every attempt happens within the probe's deadline ([`SmtpConfig::deadline`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The wait before the second attempt (before jitter).
    pub initial: Duration,
    /// The longest wait between two attempts.
    pub max: Duration,
    /// At most this many attempts in all (0 and 1 both mean: no retry).
    pub max_attempts: u32,
}

impl Default for Backoff {
    /// 1 s, doubling up to 15 s, at most 4 attempts.
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(15),
            max_attempts: 4,
        }
    }
}

impl Backoff {
    /// The wait after attempt `attempt` (1-based) before its jitter: `initial × 2^(attempt−1)`,
    /// at most `max`.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 1u32
            .checked_shl(attempt.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.initial.saturating_mul(factor).min(self.max)
    }

    /// The wait after attempt `attempt`, jittered with `random`: between half and all of
    /// [`Self::ceiling`] (the jitter spreads the retries of many probes that met the same
    /// busy server at once).
    pub fn delay(&self, attempt: u32, random: u64) -> Duration {
        let ceiling = self.ceiling(attempt);
        let half = ceiling / 2;
        let spread = u64::try_from((ceiling - half).as_nanos()).unwrap_or(u64::MAX);
        let extra = if spread == 0 {
            0
        } else {
            random % (spread + 1)
        };
        half + Duration::from_nanos(extra)
    }
}

/// Whether `outcome` is what a busy or rate-limiting server does, worth another try later:
/// RFC 5321 §3.8 421 ("service not available, closing transmission channel", in any
/// phase), a refused connection, a connection closed or reset before the greeting, or TLS
/// refused after the 220 to STARTTLS (closed, reset, alert: [`SmtpOutcome::refuses_tls`]).
pub(super) fn busy(outcome: &SmtpOutcome) -> bool {
    match outcome {
        SmtpOutcome::ServiceUnavailable421 { .. } | SmtpOutcome::ConnectionRefused => true,
        SmtpOutcome::ConnectionReset { phase } | SmtpOutcome::ClosedByServer { phase }
            if matches!(phase, Phase::Connect | Phase::Greeting) =>
        {
            true
        }
        other => other.refuses_tls(),
    }
}

/// A random number for jitter (std's per-instance random hash keys; no crate needed, and
/// nothing here needs to be unpredictable).
pub(super) fn random() -> u64 {
    RandomState::new().hash_one(0u8)
}

/// The per-destination-address limits: a semaphore of `per_ip` permits and the time the
/// next connection may start, per address, made on demand and dropped when idle.
pub(super) struct IpGates {
    pub(super) per_ip: usize,
    pub(super) interval: Option<Duration>,
    pub(super) gates: Mutex<HashMap<IpAddr, Arc<IpGate>>>,
}

pub(super) struct IpGate {
    pub(super) permits: Arc<Semaphore>,
    pub(super) next_start: Mutex<Instant>,
}

/// The longest pause between two connections to one address that a rate can ask for.
pub(super) const MAX_INTERVAL: Duration = Duration::from_secs(3600);

impl IpGates {
    pub(super) fn new(politeness: &Politeness) -> Self {
        let interval = politeness
            .per_ip_rate
            .filter(|r| r.is_finite() && *r > 0.0)
            .map(|r| {
                Duration::try_from_secs_f64(1.0 / r).map_or(MAX_INTERVAL, |d| d.min(MAX_INTERVAL))
            });
        Self {
            per_ip: politeness.per_ip.max(1),
            interval,
            gates: Mutex::new(HashMap::new()),
        }
    }

    /// Waits for a free connection slot at `ip` (and for the rate to allow a new
    /// connection); the slot is held until the returned pass is dropped.
    pub(super) async fn enter(self: &Arc<Self>, ip: IpAddr) -> Pass {
        let gate = {
            let mut gates = self.gates.lock().unwrap_or_else(PoisonError::into_inner);
            Arc::clone(gates.entry(ip).or_insert_with(|| {
                Arc::new(IpGate {
                    permits: Arc::new(Semaphore::new(self.per_ip)),
                    next_start: Mutex::new(Instant::now()),
                })
            }))
        };
        let mut pass = Pass {
            gates: Arc::clone(self),
            ip,
            gate,
            permit: None,
        };
        // The semaphore is never closed, so acquiring fails never; if it did, going ahead
        // without a permit would only be less polite, never wrong.
        pass.permit = Arc::clone(&pass.gate.permits).acquire_owned().await.ok();
        if let Some(interval) = self.interval {
            let start = {
                let mut next = pass
                    .gate
                    .next_start
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                let start = (*next).max(Instant::now());
                *next = start + interval;
                start
            };
            sleep_until(start).await;
        }
        pass
    }
}

/// A connection slot at one address.
pub(super) struct Pass {
    pub(super) gates: Arc<IpGates>,
    pub(super) ip: IpAddr,
    pub(super) gate: Arc<IpGate>,
    pub(super) permit: Option<OwnedSemaphorePermit>,
}

impl Drop for Pass {
    fn drop(&mut self) {
        self.permit.take();
        let mut gates = self
            .gates
            .gates
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Nobody else holds or awaits this gate, and its rate allows a connection now: a new
        // gate made later would behave the same, so this one can go.
        let idle = Arc::strong_count(&self.gate) == 2
            && *self
                .gate
                .next_start
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                <= Instant::now();
        if idle
            && gates
                .get(&self.ip)
                .is_some_and(|g| Arc::ptr_eq(g, &self.gate))
        {
            gates.remove(&self.ip);
        }
    }
}
