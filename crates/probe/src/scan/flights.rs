//! Single flight: one computation per key in flight, awaited by every caller, and what is
//! kept of it afterwards (the bounded cache of finished SMTP probes).

use super::*;

/// What a [`Flights`] map keeps once a value has been computed.
#[derive(Debug, Clone, Copy)]
pub(super) enum Keep {
    /// Nothing: the entry lives only while someone awaits it (later callers rely on the
    /// resolver's cache, or ask again).
    InFlight,
    /// Finished values, in two generations of `capacity`, each at most `ttl` old.
    Cache { capacity: usize, ttl: Duration },
}

/// One key's value, computed once by whichever caller gets there first.
pub(super) struct Slot<V> {
    pub(super) cell: Arc<OnceCell<V>>,
    pub(super) created: Instant,
}

pub(super) struct Generations<K, V> {
    pub(super) current: HashMap<K, Slot<V>>,
    pub(super) previous: HashMap<K, Slot<V>>,
}

/// Values computed once per key and shared with every caller that asks for the same key
/// while it is being computed (and, with [`Keep::Cache`], afterwards). If the caller
/// computing a value is cancelled (its domain passed its deadline), a caller still waiting
/// takes over the computation (`OnceCell` semantics); an entry nobody waits for any more is
/// removed, so nothing leaks.
pub(super) struct Flights<K, V> {
    pub(super) keep: Keep,
    pub(super) slots: Mutex<Generations<K, V>>,
}

impl<K: Eq + Hash + Clone, V: Clone> Flights<K, V> {
    pub(super) fn new(keep: Keep) -> Self {
        Self {
            keep,
            slots: Mutex::new(Generations {
                current: HashMap::new(),
                previous: HashMap::new(),
            }),
        }
    }

    /// The value for `key`, computed by `compute` unless it is in flight or kept; the flag
    /// says whether this call computed it.
    pub(super) async fn get<F, Fut>(&self, key: K, compute: F) -> (V, bool)
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = V>,
    {
        let release = Release {
            cell: self.cell(&key),
            flights: self,
            key,
        };
        let mut ran = false;
        let value = release
            .cell
            .get_or_init(|| {
                ran = true;
                compute()
            })
            .await
            .clone();
        (value, ran)
    }

    pub(super) fn cell(&self, key: &K) -> Arc<OnceCell<V>> {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        let fresh = |slot: &Slot<V>| match self.keep {
            Keep::Cache { ttl, .. } => !slot.cell.initialized() || slot.created.elapsed() < ttl,
            Keep::InFlight => true,
        };
        if let Some(slot) = slots.current.get(key).filter(|s| fresh(s)) {
            return Arc::clone(&slot.cell);
        }
        let slot = match slots.previous.remove(key).filter(|s| fresh(s)) {
            Some(promoted) => promoted,
            None => Slot {
                cell: Arc::new(OnceCell::new()),
                created: Instant::now(),
            },
        };
        let cell = Arc::clone(&slot.cell);
        if let Keep::Cache { capacity, .. } = self.keep
            && slots.current.len() >= capacity
        {
            slots.previous = std::mem::take(&mut slots.current);
        }
        slots.current.insert(key.clone(), slot);
        cell
    }

    /// Called by every caller when it is done waiting (or is cancelled): drops the entry if
    /// no one else holds it and it is not to be kept.
    pub(super) fn release(&self, key: &K, cell: &Arc<OnceCell<V>>) {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        // The map's reference and the releasing caller's: nobody else awaits this cell.
        let unused = Arc::strong_count(cell) == 2;
        let discard = unused && (matches!(self.keep, Keep::InFlight) || !cell.initialized());
        if !discard {
            return;
        }
        let Generations { current, previous } = &mut *slots;
        for map in [current, previous] {
            if map.get(key).is_some_and(|s| Arc::ptr_eq(&s.cell, cell)) {
                map.remove(key);
            }
        }
    }
}

pub(super) struct Release<'a, K: Eq + Hash + Clone, V: Clone> {
    pub(super) flights: &'a Flights<K, V>,
    pub(super) key: K,
    pub(super) cell: Arc<OnceCell<V>>,
}

impl<K: Eq + Hash + Clone, V: Clone> Drop for Release<'_, K, V> {
    fn drop(&mut self) {
        self.flights.release(&self.key, &self.cell);
    }
}
