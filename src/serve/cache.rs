//! The per-target results of `mxprobe serve`: one probe per (module, domain) at a time,
//! awaited by every scrape that asks while it runs, and its result kept for the minimum
//! interval, so that several Prometheus servers or a short scrape interval do not probe a
//! mail server again. At most `capacity` targets are held: when full, results past the
//! interval go first, then the oldest finished ones; a target that finds every slot taken
//! by a probe in flight is refused ([`Full`]), so memory stays bounded whatever the number of
//! distinct targets asked for.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use mxprobe_core::domain::DomainName;
use mxprobe_core::result::DomainResult;

/// A target: the module's name and the domain.
pub type Key = (String, DomainName);

/// How one probe of a target ended.
#[derive(Debug, Clone)]
pub enum Probed {
    /// Scanned: the facts and the verdict.
    Scanned(Arc<DomainResult>),
    /// The domain passed its deadline before the scan ended.
    PastDeadline(Duration),
    /// The scan stopped on an internal error (a bug, never the network's doing).
    Crashed(String),
}

/// A finished probe.
#[derive(Debug, Clone)]
pub struct Finished {
    /// How it ended.
    pub probed: Probed,
    /// How long it took.
    pub duration: Duration,
    /// When it ended.
    pub at: Instant,
}

/// What a scrape gets from the cache.
#[derive(Debug)]
pub enum Lookup {
    /// A result within the minimum interval.
    Hit(Arc<Finished>),
    /// A probe of the target is in flight: await it.
    Joined(watch::Receiver<Option<Arc<Finished>>>),
    /// Nobody probes the target: the caller must, and hand the result to [`Cache::finish`]
    /// through the sender.
    Start(
        watch::Sender<Option<Arc<Finished>>>,
        watch::Receiver<Option<Arc<Finished>>>,
    ),
}

/// Every slot holds a probe in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0} targets are being probed at once, the most --max-targets allows; try again later or \
     raise --max-targets"
)]
pub struct Full(pub usize);

enum Slot {
    Running(watch::Receiver<Option<Arc<Finished>>>),
    Done(Arc<Finished>),
}

/// The results by target.
pub struct Cache {
    min_interval: Duration,
    capacity: usize,
    slots: Mutex<HashMap<Key, Slot>>,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("min_interval", &self.min_interval)
            .field("capacity", &self.capacity)
            .field("targets", &self.len())
            .finish()
    }
}

impl Cache {
    /// An empty cache keeping results for `min_interval`, at most `capacity` targets.
    pub fn new(min_interval: Duration, capacity: usize) -> Self {
        Self {
            min_interval,
            capacity: capacity.max(1),
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// How many targets are held.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Slot>> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The result of `key`, the probe in flight, or the order to start one.
    pub fn lookup(&self, key: &Key) -> Result<Lookup, Full> {
        let mut slots = self.lock();
        match slots.get(key) {
            Some(Slot::Done(done)) if done.at.elapsed() < self.min_interval => {
                return Ok(Lookup::Hit(Arc::clone(done)));
            }
            // A prober that went away without an answer (its task ended) leaves a closed
            // channel: probe again.
            Some(Slot::Running(rx)) if rx.has_changed().is_ok() => {
                return Ok(Lookup::Joined(rx.clone()));
            }
            _ => {}
        }
        slots.remove(key);
        if slots.len() >= self.capacity {
            self.make_room(&mut slots);
        }
        if slots.len() >= self.capacity {
            return Err(Full(slots.len()));
        }
        let (tx, rx) = watch::channel(None);
        slots.insert(key.clone(), Slot::Running(rx.clone()));
        Ok(Lookup::Start(tx, rx))
    }

    /// Records the result of the probe of `key` and hands it to every scrape awaiting it.
    pub fn finish(&self, key: &Key, tx: &watch::Sender<Option<Arc<Finished>>>, done: Finished) {
        let done = Arc::new(done);
        self.lock()
            .insert(key.clone(), Slot::Done(Arc::clone(&done)));
        tx.send_replace(Some(done));
    }

    /// Drops results past the interval and closed probes; if none, the oldest result.
    fn make_room(&self, slots: &mut HashMap<Key, Slot>) {
        slots.retain(|_, slot| match slot {
            Slot::Done(done) => done.at.elapsed() < self.min_interval,
            Slot::Running(rx) => rx.has_changed().is_ok(),
        });
        if slots.len() < self.capacity {
            return;
        }
        let oldest = slots
            .iter()
            .filter_map(|(key, slot)| match slot {
                Slot::Done(done) => Some((done.at, key)),
                Slot::Running(_) => None,
            })
            .min_by_key(|(at, _)| *at)
            .map(|(_, key)| key.clone());
        if let Some(key) = oldest {
            slots.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> Key {
        ("default".to_owned(), DomainName::parse(name).unwrap())
    }

    fn finished() -> Finished {
        Finished {
            probed: Probed::Crashed("test".to_owned()),
            duration: Duration::from_millis(5),
            at: Instant::now(),
        }
    }

    #[tokio::test]
    async fn one_probe_per_target_kept_for_the_interval() {
        let cache = Cache::new(Duration::from_millis(200), 10);
        let a = key("a.example");
        let Ok(Lookup::Start(tx, _)) = cache.lookup(&a) else {
            panic!("first lookup must start")
        };
        let Ok(Lookup::Joined(mut rx)) = cache.lookup(&a) else {
            panic!("second lookup must join")
        };
        cache.finish(&a, &tx, finished());
        rx.wait_for(Option::is_some).await.unwrap();
        assert!(matches!(cache.lookup(&a), Ok(Lookup::Hit(_))));
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert!(matches!(cache.lookup(&a), Ok(Lookup::Start(..))));
    }

    #[tokio::test]
    async fn a_prober_that_went_away_is_replaced() {
        let cache = Cache::new(Duration::from_secs(60), 10);
        let a = key("a.example");
        let Ok(Lookup::Start(tx, rx)) = cache.lookup(&a) else {
            panic!()
        };
        drop((tx, rx));
        assert!(matches!(cache.lookup(&a), Ok(Lookup::Start(..))));
    }

    #[tokio::test]
    async fn the_cache_is_bounded() {
        let cache = Cache::new(Duration::from_secs(60), 2);
        let (a, b, c) = (key("a.example"), key("b.example"), key("c.example"));
        let Ok(Lookup::Start(ta, _ra)) = cache.lookup(&a) else {
            panic!()
        };
        let Ok(Lookup::Start(_tb, _rb)) = cache.lookup(&b) else {
            panic!()
        };
        // Both slots hold probes in flight: refused.
        assert_eq!(cache.lookup(&c).unwrap_err(), Full(2));
        cache.finish(&a, &ta, finished());
        // The finished one gives way, even within its interval.
        let Ok(Lookup::Start(_tc, _rc)) = cache.lookup(&c) else {
            panic!("c must start once a has finished")
        };
        assert_eq!(cache.len(), 2);
        assert!(matches!(cache.lookup(&a), Err(Full(2))));
        // A probe whose prober went away frees its slot.
        drop((_tc, _rc));
        assert!(matches!(cache.lookup(&a), Ok(Lookup::Start(..))));
    }
}
