//! `mxprobe serve`: a Prometheus multi-target exporter in the blackbox_exporter pattern.
//! Prometheus holds the targets and scrapes `/probe?target=DOMAIN[&module=NAME]`; the
//! exporter scans the domain and answers in the text exposition format.
//!
//! - [`Exporter`]: one long-lived [`Scanner`] per module, so that scrapes of domains sharing
//!   MX hosts share probes; the modules' scanners share one set of per-address connection
//!   slots, so that `--per-ip` and `--per-ip-rate` hold over every scrape of every module,
//!   and share probes between modules whose probes come out alike ([`module_sharing`]); the
//!   per-target [`cache`] (one probe per target in flight, its result kept for
//!   `--min-interval`); at most `--concurrency` domains probed at once; the exporter's own
//!   counters for `/metrics`.
//! - [`http`]: the HTTP server (hyper), its routes and the caps on what a client may send.
//! - [`modules`]: the `--config` file; [`series`]: the `/probe` answer.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use futures::FutureExt as _;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric as _};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family as LabelledFamily;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use time::OffsetDateTime;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use mxprobe_core::domain::DomainName;
use mxprobe_probe::scan::{
    AddressSlots, LocalProbes, LocalSlots, Politeness, ProbeCacheConfig, ProbeExchange, ScanConfig,
    Scanner, Sharing,
};

use cache::{Cache, Finished, Full, Key, Lookup, Probed};

pub mod cache;
pub mod http;
pub mod modules;
pub mod series;

/// Prometheus' header with the scrape timeout in seconds.
pub const SCRAPE_TIMEOUT_HEADER: &str = "x-prometheus-scrape-timeout-seconds";

/// How long before Prometheus' scrape timeout the answer is sent, so that it arrives in time.
pub const TIMEOUT_OFFSET: Duration = Duration::from_millis(500);

/// The shortest wait for a result, whatever the scrape timeout says.
pub const MIN_WAIT: Duration = Duration::from_millis(100);

/// One module: its scanner and the longest one of its probes may take.
pub struct Module {
    /// Shared by every scrape of the module.
    pub scanner: Arc<Scanner>,
    /// The longest one domain's probe may take.
    pub deadline: Duration,
}

/// The exporter's counters, exposed on `/metrics` through prometheus-client.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    /// Probes started (scans of a target not in the cache).
    pub probes: Counter,
    /// Scrapes answered with a result kept from an earlier scrape.
    pub cache_hits: Counter,
    /// Scrapes that awaited a probe another scrape had started.
    pub joined: Counter,
    /// Scrapes answered before their probe ended (the scrape timeout came first).
    pub scrape_timeouts: Counter,
    /// Probes that ended without a result, by reason (deadline, crashed).
    pub probe_errors: LabelledFamily<Vec<(&'static str, &'static str)>, Counter>,
    /// Requests refused, by HTTP status.
    pub rejected: LabelledFamily<Vec<(&'static str, String)>, Counter>,
    /// Probes running now.
    pub in_flight: Gauge<i64, AtomicI64>,
}

/// The scanners' own counts (SMTP probes made and shared), read at each scrape of
/// `/metrics`.
#[derive(Debug)]
struct ScannerStats(Vec<Arc<Scanner>>);

impl Collector for ScannerStats {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let (mut made, mut shared, mut fetches) = (0, 0, 0);
        for scanner in &self.0 {
            let stats = scanner.stats();
            made += stats.smtp_probes;
            shared += stats.smtp_probes_shared;
            fetches += stats.policy_fetches;
        }
        for (name, help, value) in [
            (
                "mxprobe_exporter_smtp_probes",
                "SMTP probes made (one per MX host and address not found in flight or kept).",
                made,
            ),
            (
                "mxprobe_exporter_smtp_probes_shared",
                "Times a probe of a domain used an SMTP probe made for another domain.",
                shared,
            ),
            (
                "mxprobe_exporter_policy_fetches",
                "MTA-STS policy fetches made.",
                fetches,
            ),
        ] {
            let counter = ConstCounter::new(value);
            let metric = encoder.encode_descriptor(name, help, None, counter.metric_type())?;
            counter.encode(metric)?;
        }
        Ok(())
    }
}

/// The exporter: modules, results, limits and counters.
pub struct Exporter {
    modules: BTreeMap<String, Module>,
    cache: Cache,
    permits: Arc<Semaphore>,
    clock: fn() -> OffsetDateTime,
    /// The counters.
    pub stats: Stats,
    registry: Registry,
    /// The unusable resolver has been named on standard error.
    resolver_named: AtomicBool,
}

impl std::fmt::Debug for Exporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exporter")
            .field("modules", &self.modules.keys().collect::<Vec<_>>())
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

/// Why a scrape gets no answer from the exporter.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProbeError {
    /// `module=` names no module.
    #[error("unknown module {0:?}; the modules are: {1}")]
    UnknownModule(String, String),
    /// Every slot holds a probe in flight.
    #[error(transparent)]
    Full(#[from] Full),
}

impl Exporter {
    /// An exporter with `modules` (the default module included), keeping results for
    /// `min_interval`, at most `max_targets` of them, probing at most `concurrency` domains
    /// at once.
    pub fn new(
        modules: BTreeMap<String, Module>,
        min_interval: Duration,
        max_targets: usize,
        concurrency: usize,
        clock: fn() -> OffsetDateTime,
    ) -> Self {
        let stats = Stats::default();
        let mut registry = Registry::default();
        for (name, help, counter) in [
            (
                "mxprobe_exporter_probes",
                "Probes started: scans of a target whose result was not kept",
                &stats.probes,
            ),
            (
                "mxprobe_exporter_cache_hits",
                "Scrapes answered with a result kept from an earlier scrape (within \
                 --min-interval)",
                &stats.cache_hits,
            ),
            (
                "mxprobe_exporter_probes_joined",
                "Scrapes that awaited a probe of the same target another scrape had started",
                &stats.joined,
            ),
            (
                "mxprobe_exporter_scrape_timeouts",
                "Scrapes answered before their probe ended (the scrape timeout came first)",
                &stats.scrape_timeouts,
            ),
        ] {
            registry.register(name, help, counter.clone());
        }
        registry.register(
            "mxprobe_exporter_probe_errors",
            "Probes that ended without a result, by reason (deadline, crashed)",
            stats.probe_errors.clone(),
        );
        registry.register(
            "mxprobe_exporter_requests_rejected",
            "Requests refused, by HTTP status (400 bad target or module, 404, 405, 413, 414, \
             503)",
            stats.rejected.clone(),
        );
        registry.register(
            "mxprobe_exporter_probes_in_flight",
            "Probes running now",
            stats.in_flight.clone(),
        );
        registry.register_collector(Box::new(ScannerStats(
            modules.values().map(|m| Arc::clone(&m.scanner)).collect(),
        )));
        Self {
            modules,
            cache: Cache::new(min_interval, max_targets),
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            clock,
            stats,
            registry,
            resolver_named: AtomicBool::new(false),
        }
    }

    /// The module names, comma-separated.
    pub fn module_names(&self) -> String {
        self.modules
            .keys()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The text of `/metrics`.
    pub fn metrics_text(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        text
    }

    /// Counts a refused request.
    pub fn reject(&self, status: u16) {
        self.stats
            .rejected
            .get_or_create(&vec![("code", status.to_string())])
            .inc();
    }

    /// Probes `domain` with `module` (or answers from the cache), waiting at most `wait`
    /// for the result; the text of the `/probe` answer.
    pub async fn probe(
        self: &Arc<Self>,
        domain: DomainName,
        module: &str,
        wait: Duration,
    ) -> Result<String, ProbeError> {
        let started = Instant::now();
        let Some(m) = self.modules.get(module) else {
            return Err(ProbeError::UnknownModule(
                module.to_owned(),
                self.module_names(),
            ));
        };
        let key: Key = (module.to_owned(), domain);
        let mut rx = match self.cache.lookup(&key)? {
            Lookup::Hit(done) => {
                self.stats.cache_hits.inc();
                return Ok(answer(Some(&done), true, started));
            }
            Lookup::Joined(rx) => {
                self.stats.joined.inc();
                rx
            }
            Lookup::Start(tx, rx) => {
                self.stats.probes.inc();
                self.start(key, tx, Arc::clone(&m.scanner), m.deadline);
                rx
            }
        };
        let waited = tokio::time::timeout(wait, rx.wait_for(Option::is_some)).await;
        let done = match waited {
            Ok(Ok(value)) => value.clone(),
            Ok(Err(_)) => None,
            Err(_) => {
                self.stats.scrape_timeouts.inc();
                None
            }
        };
        Ok(answer(done.as_ref(), false, started))
    }

    /// Starts the probe of `key` in a task of its own, so that it ends (and is kept) even
    /// when the scrape that started it times out or goes away.
    fn start(
        self: &Arc<Self>,
        key: Key,
        tx: tokio::sync::watch::Sender<Option<Arc<Finished>>>,
        scanner: Arc<Scanner>,
        deadline: Duration,
    ) {
        let exporter = Arc::clone(self);
        tokio::spawn(async move {
            // Waiting for a slot counts against the deadline, as in a bulk scan.
            let started = Instant::now();
            let scan = async {
                let _permit = exporter.permits.acquire().await;
                exporter.stats.in_flight.inc();
                let now = (exporter.clock)();
                let result = std::panic::AssertUnwindSafe(scanner.scan(&key.1, now))
                    .catch_unwind()
                    .await;
                exporter.stats.in_flight.dec();
                result
            };
            let probed = match tokio::time::timeout(deadline, scan).await {
                Ok(Ok(result)) => Probed::Scanned(Arc::new(result)),
                Ok(Err(panic)) => {
                    exporter
                        .stats
                        .probe_errors
                        .get_or_create(&vec![("reason", "crashed")])
                        .inc();
                    Probed::Crashed(panic_text(panic.as_ref()))
                }
                Err(_) => {
                    exporter
                        .stats
                        .probe_errors
                        .get_or_create(&vec![("reason", "deadline")])
                        .inc();
                    Probed::PastDeadline(deadline)
                }
            };
            exporter.name_the_resolver(&scanner);
            let done = Finished {
                probed,
                duration: started.elapsed(),
                at: Instant::now(),
            };
            exporter.cache.finish(&key, &tx, done);
        });
    }
}

impl Exporter {
    /// Says once, on standard error, that the resolver cannot be used (every domain is then
    /// inconclusive because of it, not of itself), and what to do.
    fn name_the_resolver(&self, scanner: &Scanner) {
        let Some(problem) = scanner.resolver_problem() else {
            return;
        };
        if self.resolver_named.swap(true, Ordering::Relaxed) {
            return;
        }
        let _ = writeln!(
            std::io::stderr().lock(),
            "mxprobe serve: {problem}. No domain is judged with it: each is inconclusive \
             because of the resolver, not the domain. What to do: {}.",
            problem.advice()
        );
    }
}

/// The `/probe` text for a result (or none).
fn answer(done: Option<&Arc<Finished>>, cached: bool, scrape_started: Instant) -> String {
    let (duration, age) = match done {
        Some(d) => (d.duration, d.at.elapsed()),
        None => (scrape_started.elapsed(), Duration::ZERO),
    };
    series::render(&series::Answer {
        probed: done.map(|d| &d.probed),
        duration,
        cached,
        age,
    })
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_owned()
    }
}

/// What the scanner of each module in `configs` shares with the others, in the same order:
/// one set of per-address connection slots with the limits of `politeness` for all of
/// them, and one exchange of probes (kept as `cache` says) for each group of modules whose
/// probes come out alike ([`ScanConfig::probes_alike`]); a module with other probe settings
/// (another SMTP deadline) makes its own probes.
pub fn module_sharing(
    configs: &[&ScanConfig],
    politeness: &Politeness,
    cache: ProbeCacheConfig,
) -> Vec<Sharing> {
    let slots: Arc<dyn AddressSlots> = Arc::new(LocalSlots::new(politeness));
    let mut groups: Vec<(&ScanConfig, Arc<dyn ProbeExchange>)> = Vec::new();
    configs
        .iter()
        .map(|config| {
            let probes = match groups.iter().find(|(c, _)| c.probes_alike(config)) {
                Some((_, exchange)) => Arc::clone(exchange),
                None => {
                    let exchange: Arc<dyn ProbeExchange> = Arc::new(LocalProbes::new(cache));
                    groups.push((config, Arc::clone(&exchange)));
                    exchange
                }
            };
            Sharing {
                slots: Some(Arc::clone(&slots)),
                probes: Some(probes),
            }
        })
        .collect()
}

/// How long a scrape waits for its result: Prometheus' scrape timeout less
/// [`TIMEOUT_OFFSET`], at most `deadline` (the module's), at least [`MIN_WAIT`].
pub fn wait_for(scrape_timeout: Option<f64>, deadline: Duration) -> Duration {
    let Some(seconds) = scrape_timeout else {
        return deadline;
    };
    Duration::from_secs_f64(seconds)
        .saturating_sub(TIMEOUT_OFFSET)
        .clamp(MIN_WAIT, deadline.max(MIN_WAIT))
}

impl Exporter {
    /// The deadline of `module`, if it exists.
    pub fn deadline(&self, module: &str) -> Option<Duration> {
        self.modules.get(module).map(|m| m.deadline)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_is_the_scrape_timeout_less_the_offset_within_the_deadline() {
        let deadline = Duration::from_secs(120);
        assert_eq!(wait_for(None, deadline), deadline);
        assert_eq!(wait_for(Some(10.0), deadline), Duration::from_millis(9500));
        assert_eq!(wait_for(Some(0.2), deadline), MIN_WAIT);
        assert_eq!(wait_for(Some(600.0), deadline), deadline);
    }

    #[test]
    fn modules_share_slots_always_and_probes_only_when_alike() {
        use clap::Parser as _;

        let crate::cli::Command::Serve(args) =
            crate::cli::Cli::try_parse_from(["mxprobe", "serve"])
                .unwrap()
                .command
        else {
            panic!("not serve");
        };
        let base = crate::config::probe_config(&args.probe, &crate::config::Environment::default())
            .unwrap();
        let mut deadline = Duration::from_secs(120);
        let spec = |text: &str| {
            modules::parse(&format!("[modules.m]\n{text}\n"), "m.toml").unwrap()["m"].clone()
        };
        let other_port =
            spec("smtp_port = 2525\nip = \"4\"\nno_smtp = true").apply(base.clone(), &mut deadline);
        let slower = spec("smtp_timeout = 20").apply(base.clone(), &mut deadline);
        let slower_too = spec("smtp_timeout = 20\ntimeout = 30").apply(base.clone(), &mut deadline);
        let sharing = module_sharing(
            &[&base, &other_port, &slower, &slower_too],
            &base.politeness,
            base.probe_cache,
        );
        let slots: Vec<_> = sharing.iter().map(|s| s.slots.clone().unwrap()).collect();
        let probes: Vec<_> = sharing.iter().map(|s| s.probes.clone().unwrap()).collect();
        assert!(
            slots.iter().all(|s| Arc::ptr_eq(s, &slots[0])),
            "one set of slots"
        );
        assert!(
            Arc::ptr_eq(&probes[0], &probes[1]),
            "the port is in the probe's key"
        );
        assert!(
            !Arc::ptr_eq(&probes[0], &probes[2]),
            "another SMTP deadline"
        );
        assert!(
            Arc::ptr_eq(&probes[2], &probes[3]),
            "the same SMTP deadline"
        );
    }
}
