//! Sharing within one process: the in-process [`AddressSlots`] and [`ProbeExchange`], for
//! several scanners with different options that live side by side (the modules of
//! `mxprobe serve`, one scanner each).
//!
//! - [`LocalSlots`]: one set of per-address gates ([`Politeness::per_ip`] simultaneous
//!   connections, [`Politeness::per_ip_rate`] new ones a second) for every scanner given it,
//!   so that the limits hold over all of them, not per scanner.
//! - [`LocalProbes`]: one single flight and one bounded cache of probes for the scanners
//!   given it. Give one only to scanners whose probes would come out the same
//!   ([`ScanConfig::probes_alike`]); the port is part of the [`ProbeKey`], so scanners that
//!   differ only in SMTP port never mix their probes.

use super::*;

/// Per-address connection slots held in this process and shared by every scanner given
/// them (through [`Scanner::with_sharing`]).
pub struct LocalSlots {
    gates: Arc<IpGates>,
}

impl LocalSlots {
    /// Slots with the limits of `politeness` (its back-off is not used: retries are the
    /// scanner's).
    pub fn new(politeness: &Politeness) -> Self {
        Self {
            gates: Arc::new(IpGates::new(politeness)),
        }
    }
}

impl fmt::Debug for LocalSlots {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalSlots")
            .field("per_ip", &self.gates.per_ip)
            .field("interval", &self.gates.interval)
            .finish_non_exhaustive()
    }
}

impl AddressSlots for LocalSlots {
    fn acquire(&self, ip: IpAddr) -> futures::future::BoxFuture<'_, SlotGuard> {
        Box::pin(async move { SlotGuard::new(self.gates.enter(ip).await) })
    }
}

/// Probes made in this process and shared by every scanner given them: one probe per
/// [`ProbeKey`] in flight, and finished probes kept as [`ProbeCacheConfig`] says.
pub struct LocalProbes {
    flights: Flights<ProbeKey, SmtpFacts>,
}

impl LocalProbes {
    /// An exchange keeping finished probes as `cache` says.
    pub fn new(cache: ProbeCacheConfig) -> Self {
        Self {
            flights: Flights::new(Keep::Cache {
                capacity: cache.capacity.max(1),
                ttl: cache.ttl,
            }),
        }
    }
}

impl fmt::Debug for LocalProbes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LocalProbes")
    }
}

impl ProbeExchange for LocalProbes {
    fn probe<'a>(
        &'a self,
        key: &'a ProbeKey,
        probe: futures::future::BoxFuture<'a, SmtpFacts>,
    ) -> futures::future::BoxFuture<'a, (SmtpFacts, bool)> {
        Box::pin(self.flights.get(key.clone(), || probe))
    }
}

impl ScanConfig {
    /// Whether a probe made with this configuration is the probe `other` would make, so that
    /// the two may share probes: the same SMTP probe settings (EHLO name, timeouts, deadline,
    /// TLS client configuration) and the same retries of busy servers. The port is not
    /// compared: it is part of every [`ProbeKey`]. Nor are the options that change only
    /// which addresses are probed or how the facts are judged (address families, trust
    /// anchors, Content-Type rule), or the connection limits.
    pub fn probes_alike(&self, other: &Self) -> bool {
        let (a, b) = (&self.smtp, &other.smtp);
        a.ehlo_name == b.ehlo_name
            && a.connect_timeout == b.connect_timeout
            && a.phase_timeout == b.phase_timeout
            && a.deadline == b.deadline
            && Arc::ptr_eq(&a.tls, &b.tls)
            && self.politeness.backoff == other.politeness.backoff
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn local_slots_hold_per_ip_over_all_their_holders() {
        let slots = Arc::new(LocalSlots::new(&Politeness {
            per_ip: 1,
            ..Politeness::default()
        }));
        let ip: IpAddr = "192.0.2.1".parse().expect("valid");
        let other: IpAddr = "192.0.2.2".parse().expect("valid");
        let held = slots.acquire(ip).await;
        let second = tokio::time::timeout(Duration::from_millis(20), slots.acquire(ip)).await;
        assert!(second.is_err(), "a second connection to the address waits");
        let elsewhere = tokio::time::timeout(Duration::from_secs(5), slots.acquire(other)).await;
        assert!(elsewhere.is_ok(), "another address does not wait");
        drop(held);
        let again = tokio::time::timeout(Duration::from_secs(5), slots.acquire(ip)).await;
        assert!(again.is_ok(), "the slot was given back");
        drop((elsewhere, again));
        assert!(slots.gates.gates.lock().expect("lock").is_empty());
    }

    #[tokio::test]
    async fn local_probes_run_once_per_key_and_keep_the_result() {
        let probes = LocalProbes::new(ProbeCacheConfig::default());
        let runs = AtomicU64::new(0);
        let key = |port| ProbeKey {
            mx: DomainName::parse("mx.example").expect("valid"),
            sni: DomainName::parse("mx.example").expect("valid"),
            ip: "192.0.2.1".parse().expect("valid"),
            port,
        };
        let make = |port: u16| {
            let runs = &runs;
            Box::pin(async move {
                runs.fetch_add(1, Ordering::SeqCst);
                sleep(Duration::from_millis(20)).await;
                SmtpFacts::new(
                    DomainName::parse("mx.example").expect("valid"),
                    SocketAddr::new("192.0.2.1".parse().expect("valid"), port),
                    SmtpOutcome::Completed,
                )
            }) as futures::future::BoxFuture<'_, SmtpFacts>
        };
        let (k25, k2525) = (key(25), key(2525));
        let (a, b) = futures::join!(probes.probe(&k25, make(25)), probes.probe(&k25, make(25)));
        assert!(a.1 ^ b.1, "exactly one of the two ran");
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert!(!probes.probe(&k25, make(25)).await.1, "kept");
        let (other, ran) = probes.probe(&k2525, make(2525)).await;
        assert!(ran, "another port is another probe");
        assert_eq!(other.address.port(), 2525);
        assert_eq!(runs.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn probes_are_alike_only_with_the_same_probe_settings() {
        let base = ScanConfig {
            dns: DnsConfig::default(),
            smtp: SmtpConfig {
                ehlo_name: mxprobe_core::smtp::EhloName::parse("probe.example").expect("valid"),
                connect_timeout: Duration::from_secs(10),
                phase_timeout: Duration::from_secs(30),
                deadline: Duration::from_secs(60),
                tls: crate::capture::client_config(),
            },
            smtp_ports: HashMap::new(),
            default_smtp_port: SMTP_PORT,
            fetch: FetchConfig::default(),
            anchors: Anchors::mozilla(),
            content_type: ContentTypeRule::Warn,
            expiry_warn_days: 30,
            no_smtp: false,
            politeness: Politeness::default(),
            probe_cache: ProbeCacheConfig::default(),
        };
        let with = |change: &dyn Fn(&mut ScanConfig)| {
            let mut config = base.clone();
            change(&mut config);
            config
        };
        // Options that change which addresses are probed, or how facts are judged, or the
        // port (part of the key): still alike.
        for alike in [
            with(&|c| c.default_smtp_port = 2525),
            with(&|c| c.content_type = ContentTypeRule::Reject),
            with(&|c| c.no_smtp = true),
            with(&|c| c.politeness.per_ip = 1),
        ] {
            assert!(base.probes_alike(&alike), "{alike:?}");
        }
        for differs in [
            with(&|c| c.smtp.deadline = Duration::from_secs(20)),
            with(&|c| c.smtp.phase_timeout = Duration::from_secs(5)),
            with(&|c| c.smtp.connect_timeout = Duration::from_secs(5)),
            with(&|c| {
                c.smtp.ehlo_name =
                    mxprobe_core::smtp::EhloName::parse("other.example").expect("valid")
            }),
            with(&|c| c.smtp.tls = crate::capture::client_config()),
            with(&|c| c.politeness.backoff.max_attempts = 1),
        ] {
            assert!(!base.probes_alike(&differs), "{differs:?}");
        }
    }
}
