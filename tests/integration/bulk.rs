//! Bulk scans (`mxprobe_probe::bulk::run` over a shared `mxprobe_probe::scan::Scanner`) against the mail
//! lab on loopback: probes shared by the domains that use the same MX address (counted by the
//! lab's servers), the per-address connection limit, back-off on busy servers, the
//! concurrency bound, the per-domain deadline, and shutdown with abandoned domains.
//!
//! Most tests use canned DNS answers (a `Resolve` of their own) that point many MX names at
//! one lab SMTP server, which the lab's scenario cannot do. Timeouts are a few hundred
//! milliseconds; no test asserts a duration, only counts and outcomes.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::StreamExt;
use futures::stream;
use mxprobe_core::dns::{AddressLookups, DnssecStatus, Lookup, Mx, Resolve, Tlsa, Txt};
use mxprobe_core::domain::DomainName;
use mxprobe_core::evaluate::policy_fetch::ContentTypeRule;
use mxprobe_core::facts::RuaFacts;
use mxprobe_core::result::DomainResult;
use mxprobe_core::smtp::{EhloName, Phase, SmtpOutcome};
use mxprobe_core::tls::Anchors;
use mxprobe_lab::scenario::SmtpBehaviour;
use mxprobe_lab::smtp::{Greeting, RunningSmtp, SmtpServer};
use mxprobe_lab::{Lab, Scenario};
use mxprobe_probe::bulk::{self, BulkOptions, BulkStats, DomainOutcome, Event};
use mxprobe_probe::capture;
use mxprobe_probe::fetch::FetchConfig;
use mxprobe_probe::resolver::DnsConfig;
use mxprobe_probe::scan::{Backoff, Politeness, ProbeCacheConfig, ScanConfig, Scanner};
use mxprobe_probe::starttls::SmtpConfig;
use time::OffsetDateTime;

/// No test here should come near this; it turns a hang into a failure.
const HANG_GUARD: Duration = Duration::from_secs(60);

/// Canned DNS: each domain has one MX host; each MX host one IPv4 address. Nothing else
/// exists (no MTA-STS or TLS-RPT records, no TLSA).
#[derive(Debug, Default)]
struct FakeDns {
    mx: HashMap<String, String>,
    ips: HashMap<String, IpAddr>,
}

impl FakeDns {
    fn route(&mut self, domain: &str, mx: &str, ip: IpAddr) {
        self.mx.insert(domain.to_owned(), mx.to_owned());
        self.ips.insert(mx.to_owned(), ip);
    }
}

fn records<T>(records: Vec<T>) -> Lookup<T> {
    Lookup::Records {
        records,
        dnssec: DnssecStatus::Insecure,
        cname_chain: Vec::new(),
    }
}

impl Resolve for FakeDns {
    fn mx(&self, domain: &DomainName) -> impl Future<Output = Lookup<Mx>> + Send {
        let answer = match self.mx.get(domain.as_str()) {
            Some(exchange) => records(vec![Mx {
                preference: 10,
                exchange: exchange.clone(),
            }]),
            None => Lookup::NxDomain {
                dnssec: DnssecStatus::Insecure,
            },
        };
        async move { answer }
    }

    async fn txt(&self, _name: &str) -> Lookup<Txt> {
        Lookup::NoData {
            dnssec: DnssecStatus::Insecure,
        }
    }

    fn addresses(&self, host: &DomainName) -> impl Future<Output = AddressLookups> + Send {
        let a = match self.ips.get(host.as_str()) {
            Some(ip) => records(vec![*ip]),
            None => Lookup::NxDomain {
                dnssec: DnssecStatus::Insecure,
            },
        };
        async move {
            AddressLookups {
                a: Some(a),
                aaaa: None,
            }
        }
    }

    async fn tlsa(&self, _host: &DomainName, _port: u16) -> Lookup<Tlsa> {
        Lookup::NoData {
            dnssec: DnssecStatus::Insecure,
        }
    }
}

/// A scan configuration for canned DNS and lab servers at `servers`.
fn config(servers: &[&RunningSmtp], phase_timeout: Duration, per_ip: usize) -> ScanConfig {
    ScanConfig {
        dns: DnsConfig::default(),
        smtp: SmtpConfig {
            ehlo_name: EhloName::parse("probe.mxprobe.test").unwrap(),
            connect_timeout: Duration::from_secs(2),
            phase_timeout,
            deadline: phase_timeout * 2 + Duration::from_secs(2),
            tls: capture::client_config(),
        },
        smtp_ports: servers
            .iter()
            .map(|s| (s.addr().ip(), s.addr().port()))
            .collect(),
        default_smtp_port: 25,
        fetch: FetchConfig::default(),
        anchors: Anchors::mozilla(),
        content_type: ContentTypeRule::default(),
        expiry_warn_days: 30,
        no_smtp: false,
        politeness: Politeness {
            per_ip,
            per_ip_rate: None,
            backoff: Backoff {
                initial: Duration::from_millis(50),
                max: Duration::from_millis(200),
                max_attempts: 4,
            },
        },
        probe_cache: ProbeCacheConfig::default(),
    }
}

fn ip(last: u8, net: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, net, last))
}

async fn server(greeting: Greeting, ip: IpAddr) -> RunningSmtp {
    let mut spec = SmtpServer::new("mx.bulk.test");
    spec.greeting = greeting;
    spec.start(ip).await.expect("the lab server starts")
}

fn name(s: &str) -> DomainName {
    DomainName::parse(s).unwrap()
}

/// Everything a run reported, in order.
struct Recorded {
    events: Vec<Event<usize>>,
    stats: BulkStats,
}

impl Recorded {
    fn finished(&self) -> BTreeMap<String, &DomainOutcome> {
        let mut out = BTreeMap::new();
        for e in &self.events {
            if let Event::Finished {
                domain, outcome, ..
            } = e
            {
                assert!(
                    out.insert(domain.to_string(), outcome).is_none(),
                    "{domain} finished twice"
                );
            }
        }
        out
    }

    fn reports(&self) -> Vec<&DomainResult> {
        self.finished()
            .into_values()
            .map(|o| match o {
                DomainOutcome::Scanned(r) => r.as_ref(),
                other => panic!("expected a scan, got {other:?}"),
            })
            .collect()
    }

    fn named(&self, pick: impl Fn(&Event<usize>) -> Option<&DomainName>) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for e in &self.events {
            if let Some(d) = pick(e) {
                assert!(out.insert(d.to_string()), "{d} reported twice");
            }
        }
        out
    }

    fn started(&self) -> BTreeSet<String> {
        self.named(|e| match e {
            Event::Started { domain, .. } => Some(domain),
            _ => None,
        })
    }

    fn abandoned(&self) -> BTreeSet<String> {
        self.named(|e| match e {
            Event::Abandoned { domain, .. } => Some(domain),
            _ => None,
        })
    }
}

/// Runs `domains` to the end (no shutdown).
async fn run_all<R: Resolve + 'static>(
    scanner: Arc<Scanner<R>>,
    domains: Vec<DomainName>,
    options: BulkOptions,
    now: OffsetDateTime,
) -> Recorded {
    let mut events = Vec::new();
    let targets = stream::iter(domains.into_iter().enumerate());
    let stats = tokio::time::timeout(
        HANG_GUARD,
        bulk::run(
            scanner,
            targets,
            &options,
            || now,
            std::future::pending(),
            |e| events.push(e),
        ),
    )
    .await
    .expect("the run hung");
    Recorded { events, stats }
}

fn options(concurrency: usize) -> BulkOptions {
    BulkOptions {
        concurrency,
        domain_deadline: Duration::from_secs(30),
        grace: Duration::from_millis(200),
    }
}

/// The whole lab scenario at once: every (MX host, address) is probed once however many
/// domains use it (the lab's servers count the connections), except the servers that are
/// retried: the busy one (it stays inconclusive) and those that refuse TLS after their 220
/// to STARTTLS (a failure once every attempt ended so).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lab_run_probes_each_mx_address_once() {
    let scenario = Scenario::embedded().expect("the shipped scenario is valid");
    let lab = Lab::start(&scenario, OffsetDateTime::now_utc())
        .await
        .expect("the lab starts");
    let scanner = Arc::new(Scanner::new(lab.scan_config()).expect("the lab resolver"));
    let domains = lab.domains().to_vec();
    let n = domains.len();
    let recorded = run_all(Arc::clone(&scanner), domains, options(n), lab.now()).await;
    let stats = recorded.stats;
    assert_eq!((stats.started, stats.done), (n as u64, n as u64));
    assert!(!stats.interrupted);
    let reports = recorded.reports();
    assert_eq!(reports.len(), n);

    // Every use of a probe: the domains' own MX hosts, and those of the mailboxes their
    // TLS reports go to (a `mailto:` rua in another domain), each rua domain once: its check
    // is kept for the run, so a second domain reporting there uses no probe at all.
    let mut rua_domains = BTreeSet::new();
    let rua_hosts: Vec<_> = reports
        .iter()
        .flat_map(|r| r.facts.rua.iter())
        .filter_map(|rua| match rua {
            RuaFacts::Mailto(m) if !m.same_as_domain && rua_domains.insert(m.domain.clone()) => {
                Some(&m.hosts)
            }
            _ => None,
        })
        .flatten()
        .collect();
    assert!(!rua_hosts.is_empty(), "lab domains report to other domains");
    let sessions: Vec<_> = reports
        .iter()
        .flat_map(|r| r.facts.hosts.iter())
        .chain(rua_hosts)
        .flat_map(|h| h.sessions.iter())
        .collect();
    let pairs: BTreeSet<(String, SocketAddr)> = sessions
        .iter()
        .map(|s| (s.mx.to_string(), s.address))
        .collect();
    assert!(
        sessions.len() > pairs.len(),
        "several lab domains share MX hosts"
    );
    assert_eq!(stats.smtp_probes, pairs.len() as u64);
    assert_eq!(
        stats.smtp_probes_shared,
        (sessions.len() - pairs.len()) as u64
    );

    let busy = name("mx.busy-421.test");
    let retried = |host: &DomainName| {
        lab.scenario().host(host).is_some_and(|h| {
            matches!(
                h.smtp,
                SmtpBehaviour::Greeting421
                    | SmtpBehaviour::ResetAfterStarttls
                    | SmtpBehaviour::CloseAfterStarttls
            )
        })
    };
    let mut busy_connections = 0;
    let mut retries = 0;
    for (host, server) in lab.smtp_servers() {
        let probed = pairs
            .iter()
            // The server's host under its own name or an alias (a CNAME to it).
            .filter(|(mx, addr)| {
                *addr == server.addr()
                    && lab
                        .scenario()
                        .host(&name(mx))
                        .is_some_and(|h| h.name == *host)
            })
            .count();
        let connections = server.stats().connections;
        if retried(host) {
            assert!(connections >= 2, "{host} was retried: {connections}");
            assert_eq!(probed, 1, "{host}");
            retries += connections - 1;
            if *host == busy {
                busy_connections = connections;
            }
        } else {
            assert_eq!(connections, probed, "{host} at {}", server.addr());
        }
    }
    assert!(busy_connections >= 2, "the busy server was retried");
    assert_eq!(stats.smtp_attempts, (pairs.len() + retries) as u64);
    assert_eq!(
        lab.counters().smtp_connections as u64,
        stats.smtp_attempts,
        "every attempt reached a lab server"
    );

    let busy_reports: Vec<_> = reports
        .iter()
        .filter(|r| r.facts.hosts.iter().any(|h| h.name.as_ref() == Some(&busy)))
        .collect();
    assert!(!busy_reports.is_empty());
    for report in busy_reports {
        assert!(report.verdict.inconclusive, "{}", report.facts.domain);
        for session in report.facts.hosts.iter().flat_map(|h| &h.sessions) {
            if session.mx == busy {
                assert!(
                    matches!(
                        session.outcome,
                        SmtpOutcome::ServiceUnavailable421 {
                            phase: Phase::Greeting,
                            ..
                        }
                    ),
                    "{:?}",
                    session.outcome
                );
            }
        }
    }
    assert!(stats.policy_fetches > 0);
}

/// Ten domains asking at once for the same MX address share one probe still in flight.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn probe_in_flight_is_shared_by_every_domain() {
    let silent = server(Greeting::Silent, ip(1, 61)).await;
    let mut dns = FakeDns::default();
    let domains: Vec<DomainName> = (0..10)
        .map(|i| {
            let d = format!("d{i}.shared.test");
            dns.route(&d, "mx.shared.test", silent.addr().ip());
            name(&d)
        })
        .collect();
    let scanner = Arc::new(Scanner::with_resolver(
        dns,
        config(&[&silent], Duration::from_millis(300), 2),
    ));
    let recorded = run_all(scanner, domains, options(10), OffsetDateTime::now_utc()).await;
    assert_eq!(silent.stats().connections, 1);
    assert_eq!(
        (
            recorded.stats.smtp_probes,
            recorded.stats.smtp_probes_shared
        ),
        (1, 9)
    );
    let reports = recorded.reports();
    assert_eq!(reports.len(), 10);
    let first = &reports[0].facts.hosts[0].sessions;
    assert_eq!(first.len(), 1);
    assert_eq!(
        first[0].outcome,
        SmtpOutcome::Timeout {
            phase: Phase::Greeting
        }
    );
    for r in &reports {
        assert_eq!(&r.facts.hosts[0].sessions, first, "{}", r.facts.domain);
        assert!(r.verdict.inconclusive);
    }
}

/// Twelve MX names at one address: never more than `per_ip` connections to it at once, even
/// with every domain in flight; without the limit the same run overlaps far more.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn per_ip_limit_holds_across_mx_names() {
    for (per_ip, net) in [(2, 62), (64, 72)] {
        let silent = server(Greeting::Silent, ip(1, net)).await;
        let mut dns = FakeDns::default();
        let domains: Vec<DomainName> = (0..12)
            .map(|i| {
                let d = format!("d{i}.pool.test");
                dns.route(&d, &format!("mx{i}.pool.test"), silent.addr().ip());
                name(&d)
            })
            .collect();
        let scanner = Arc::new(Scanner::with_resolver(
            dns,
            config(&[&silent], Duration::from_millis(200), per_ip),
        ));
        let recorded = run_all(scanner, domains, options(12), OffsetDateTime::now_utc()).await;
        let stats = silent.stats();
        assert_eq!(stats.connections, 12, "one probe per MX name");
        assert_eq!(recorded.stats.smtp_probes, 12);
        // The lab counts a connection as open until its server task reads the client's
        // close, so a slot handed over at a close can briefly be counted twice: from the
        // server's side the bound is 2 × per_ip (12 here without the limit).
        if per_ip == 2 {
            assert!(
                (2..=4).contains(&stats.max_simultaneous),
                "the limit held: {stats:?}"
            );
        } else {
            assert!(
                stats.max_simultaneous > 4,
                "the control overlaps: {stats:?}"
            );
        }
    }
}

/// A server that answers 421 (or refuses the connection) is tried again after a back-off,
/// up to the attempt limit, and the result stays inconclusive.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn busy_server_is_retried_and_stays_inconclusive() {
    let busy = server(
        Greeting::ServiceUnavailable("4.7.0 too busy, try later".to_owned()),
        ip(1, 63),
    )
    .await;
    // A port where nothing listens: bind one, then let it go.
    let closed = std::net::TcpListener::bind((ip(2, 63), 0))
        .expect("bind")
        .local_addr()
        .expect("address");
    let mut dns = FakeDns::default();
    dns.route("busy.retry.test", "mx.busy.retry.test", busy.addr().ip());
    dns.route("refused.retry.test", "mx.refused.retry.test", closed.ip());
    let mut cfg = config(&[&busy], Duration::from_millis(300), 2);
    cfg.smtp_ports.insert(closed.ip(), closed.port());
    let scanner = Arc::new(Scanner::with_resolver(dns, cfg));
    let domains = vec![name("busy.retry.test"), name("refused.retry.test")];
    let recorded = run_all(scanner, domains, options(2), OffsetDateTime::now_utc()).await;

    assert_eq!(busy.stats().connections, 4, "max_attempts");
    assert_eq!(recorded.stats.smtp_probes, 2);
    assert_eq!(recorded.stats.smtp_attempts, 8);
    assert_eq!(recorded.stats.inconclusive, 2);
    assert_eq!(recorded.stats.failing, 0);
    for report in recorded.reports() {
        let session = &report.facts.hosts[0].sessions[0];
        // The facts say how many connections the result took.
        assert_eq!(session.attempts, 4, "{}", report.facts.domain);
        let outcome = &session.outcome;
        let expected_busy = report.facts.domain.as_str() == "busy.retry.test";
        match outcome {
            SmtpOutcome::ServiceUnavailable421 { phase, text } if expected_busy => {
                assert_eq!(*phase, Phase::Greeting);
                assert!(text.contains("too busy"), "{text}");
            }
            SmtpOutcome::ConnectionRefused if !expected_busy => {}
            other => panic!("{}: {other:?}", report.facts.domain),
        }
        assert!(report.verdict.inconclusive);
    }
}

/// At most `concurrency` domains are in flight, and results come as domains finish, not in
/// input order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrency_bounds_domains_in_flight() {
    let silent = server(Greeting::Silent, ip(1, 65)).await;
    let mut dns = FakeDns::default();
    let domains: Vec<DomainName> = (0..9)
        .map(|i| {
            let d = format!("d{i}.bound.test");
            dns.route(&d, &format!("mx{i}.bound.test"), silent.addr().ip());
            name(&d)
        })
        .collect();
    let scanner = Arc::new(Scanner::with_resolver(
        dns,
        config(&[&silent], Duration::from_millis(150), 64),
    ));
    let recorded = run_all(scanner, domains, options(3), OffsetDateTime::now_utc()).await;
    let mut in_flight: i64 = 0;
    let mut most = 0;
    for e in &recorded.events {
        match e {
            Event::Started { .. } => in_flight += 1,
            Event::Finished { progress, .. } => {
                in_flight -= 1;
                assert_eq!(progress.in_flight as i64, in_flight);
            }
            _ => {}
        }
        most = most.max(in_flight);
    }
    assert_eq!(most, 3);
    // The lab counts a connection as open until its task sees the client go, which can lag
    // the client's close under load, so its `max_simultaneous` is no exact witness here (the
    // engine's own count above is); every domain made exactly one connection.
    assert_eq!(silent.stats().connections, 9, "{:?}", silent.stats());
    assert_eq!(recorded.stats.done, 9);
    assert_eq!(recorded.finished().len(), 9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn results_come_in_the_order_domains_finish() {
    let slow = server(Greeting::Silent, ip(1, 66)).await;
    let fast = server(Greeting::Ready(vec!["fast.test ESMTP".into()]), ip(2, 66)).await;
    let mut dns = FakeDns::default();
    dns.route("a-slow.order.test", "mx.slow.order.test", slow.addr().ip());
    for i in 0..3 {
        dns.route(
            &format!("b{i}.order.test"),
            &format!("mx{i}.fast.order.test"),
            fast.addr().ip(),
        );
    }
    let scanner = Arc::new(Scanner::with_resolver(
        dns,
        config(&[&slow, &fast], Duration::from_millis(800), 64),
    ));
    let domains = [
        "a-slow.order.test",
        "b0.order.test",
        "b1.order.test",
        "b2.order.test",
    ]
    .map(name)
    .to_vec();
    let recorded = run_all(scanner, domains, options(4), OffsetDateTime::now_utc()).await;
    let order: Vec<String> = recorded
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Finished { domain, .. } => Some(domain.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(order.len(), 4);
    assert_eq!(order[3], "a-slow.order.test", "{order:?}");
}

/// A domain past its deadline ends as a timed-out result, counted as inconclusive.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn domain_past_its_deadline_is_a_timed_out_result() {
    let silent = server(Greeting::Silent, ip(1, 67)).await;
    let mut dns = FakeDns::default();
    dns.route("late.deadline.test", "mx.deadline.test", silent.addr().ip());
    let scanner = Arc::new(Scanner::with_resolver(
        dns,
        config(&[&silent], Duration::from_secs(20), 2),
    ));
    let opts = BulkOptions {
        domain_deadline: Duration::from_millis(200),
        ..options(1)
    };
    let recorded = run_all(
        scanner,
        vec![name("late.deadline.test")],
        opts,
        OffsetDateTime::now_utc(),
    )
    .await;
    let finished = recorded.finished();
    assert_eq!(
        finished.get("late.deadline.test"),
        Some(&&DomainOutcome::TimedOut {
            deadline: Duration::from_millis(200)
        })
    );
    let s = recorded.stats;
    assert_eq!(
        (s.done, s.timed_out, s.inconclusive, s.failing, s.abandoned),
        (1, 1, 1, 0, 0)
    );
}

/// Shutdown mid-run: no more targets are taken, the domains done stay done, the rest in
/// flight are abandoned after the grace period, and nothing is reported twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shutdown_abandons_the_domains_in_flight() {
    let fast = server(Greeting::Ready(vec!["fast.test ESMTP".into()]), ip(1, 68)).await;
    let slow = server(Greeting::Silent, ip(2, 68)).await;
    let mut dns = FakeDns::default();
    let mut domains = Vec::new();
    for i in 0..3 {
        let d = format!("f{i}.stop.test");
        dns.route(&d, &format!("mx{i}.fast.stop.test"), fast.addr().ip());
        domains.push(name(&d));
    }
    for i in 0..200 {
        let d = format!("s{i}.stop.test");
        dns.route(&d, &format!("mx{i}.slow.stop.test"), slow.addr().ip());
        domains.push(name(&d));
    }
    let scanner = Arc::new(Scanner::with_resolver(
        dns,
        config(&[&fast, &slow], Duration::from_secs(20), 64),
    ));

    let pulled = AtomicUsize::new(0);
    let targets = stream::iter(domains.into_iter().enumerate()).inspect(|_| {
        pulled.fetch_add(1, Ordering::SeqCst);
    });
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let mut stop = Some(stop);
    let mut events = Vec::new();
    let stats = tokio::time::timeout(
        HANG_GUARD,
        bulk::run(
            scanner,
            targets,
            &options(6),
            OffsetDateTime::now_utc,
            async {
                let _ = stopped.await;
            },
            |e| {
                if let Event::Finished { progress, .. } = &e
                    && progress.done == 3
                    && let Some(stop) = stop.take()
                {
                    let _ = stop.send(());
                }
                events.push(e);
            },
        ),
    )
    .await
    .expect("the run hung");
    let recorded = Recorded { events, stats };

    let finished: BTreeSet<String> = recorded.finished().into_keys().collect();
    let fast_names: BTreeSet<String> = (0..3).map(|i| format!("f{i}.stop.test")).collect();
    assert_eq!(finished, fast_names);
    let started = recorded.started();
    let abandoned = recorded.abandoned();
    assert!(abandoned.is_disjoint(&finished));
    assert_eq!(
        abandoned,
        started.difference(&finished).cloned().collect(),
        "every started domain ends once"
    );
    assert!(abandoned.len() >= 3, "{abandoned:?}");
    assert!(started.len() < 203, "targets stopped being taken");
    assert_eq!(pulled.load(Ordering::SeqCst), started.len(), "taken lazily");

    let stopping: Vec<usize> = recorded
        .events
        .iter()
        .enumerate()
        .filter(|(_, e)| matches!(e, Event::Stopping { .. }))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(stopping.len(), 1);
    let first_abandoned = recorded
        .events
        .iter()
        .position(|e| matches!(e, Event::Abandoned { .. }))
        .expect("some were abandoned");
    assert!(stopping[0] < first_abandoned);

    assert!(stats.interrupted);
    assert_eq!(stats.done, 3);
    assert_eq!(stats.abandoned, abandoned.len() as u64);
    assert_eq!(stats.started, started.len() as u64);
}

/// A resolver where `mx.alias.test` is a secure CNAME to `mx.target.test`, with the TLSA
/// answer at each name given by the test.
struct AliasDns {
    at_target: Lookup<Tlsa>,
    at_alias: Lookup<Tlsa>,
}

fn secure<T>(records: Vec<T>, cname_chain: Vec<String>) -> Lookup<T> {
    Lookup::Records {
        records,
        dnssec: DnssecStatus::Secure,
        cname_chain,
    }
}

impl Resolve for AliasDns {
    async fn mx(&self, _domain: &DomainName) -> Lookup<Mx> {
        secure(
            vec![Mx {
                preference: 10,
                exchange: "mx.alias.test".to_owned(),
            }],
            Vec::new(),
        )
    }

    async fn txt(&self, _name: &str) -> Lookup<Txt> {
        Lookup::NoData {
            dnssec: DnssecStatus::Secure,
        }
    }

    async fn addresses(&self, _host: &DomainName) -> AddressLookups {
        AddressLookups {
            a: Some(secure(vec![ip(9, 70)], vec!["mx.target.test".to_owned()])),
            aaaa: Some(Lookup::NoData {
                dnssec: DnssecStatus::Secure,
            }),
        }
    }

    async fn tlsa(&self, host: &DomainName, _port: u16) -> Lookup<Tlsa> {
        match host.as_str() {
            "mx.target.test" => self.at_target.clone(),
            "mx.alias.test" => self.at_alias.clone(),
            other => panic!("TLSA asked at {other}"),
        }
    }
}

/// RFC 7672 §2.2.2: TLSA is asked at the fully CNAME-expanded MX name first; the name as
/// published is asked only when the expanded one has no TLSA records, never after a
/// failed lookup.
#[tokio::test]
async fn tlsa_base_domain_follows_a_secure_cname() {
    let tlsa = |byte: u8| Tlsa {
        usage: 3,
        selector: 1,
        matching_type: 1,
        data: vec![byte; 32],
    };
    let denial = Lookup::NoData {
        dnssec: DnssecStatus::Secure,
    };
    let cases = [
        // Records at the expanded name: they are used, and the base domain recorded.
        (
            secure(vec![tlsa(1)], Vec::new()),
            secure(vec![tlsa(2)], Vec::new()),
            secure(vec![tlsa(1)], Vec::new()),
            Some("mx.target.test"),
        ),
        // None there: the original name's records.
        (
            denial.clone(),
            secure(vec![tlsa(2)], Vec::new()),
            secure(vec![tlsa(2)], Vec::new()),
            None,
        ),
        // A failure at the expanded name decides: no fallback.
        (
            Lookup::servfail(),
            secure(vec![tlsa(2)], Vec::new()),
            Lookup::servfail(),
            Some("mx.target.test"),
        ),
    ];
    for (at_target, at_alias, expected, base) in cases {
        let mut cfg = config(&[], Duration::from_millis(300), 2);
        cfg.no_smtp = true;
        let scanner = Scanner::with_resolver(
            AliasDns {
                at_target,
                at_alias,
            },
            cfg,
        );
        let facts = scanner
            .observe(&name("alias.test"), OffsetDateTime::now_utc())
            .await;
        let host = &facts.hosts[0];
        assert_eq!(host.tlsa.as_ref(), Some(&expected));
        assert_eq!(host.tlsa_base.as_ref().map(DomainName::as_str), base);
    }
}
