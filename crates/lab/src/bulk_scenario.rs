//! Synthetic lab scenarios for the bulk-scan benchmark: thousands of generated domains that
//! share a couple of hundred MX hosts, built in code instead of read from
//! `fixtures/lab/scenario.toml`.
//!
//! [`scenario`] is a pure function of its arguments (no I/O, no clock, no randomness but
//! the seed): the same `(domains, mx_hosts, broken, seed)` always gives the same
//! [`Scenario`]. The domains live under signed lab TLDs (`syn0.`, `syn1.`, …), about
//! [`DOMAINS_PER_TLD`] in each; the MX hosts live under `mx.syn0.`. The mix of domains imitates the internet: most publish
//! MTA-STS and TLS-RPT, some MX hosts have DANE records, some domains publish nothing, and a
//! few MX hosts are broken (expired certificate, no STARTTLS, silent). Synthetic domains
//! carry no expectations: the benchmark measures speed and politeness, not verdicts (the
//! hand-written scenario does that).

use crate::scenario::{
    CertProfile, DomainDnssec, DomainSpec, Expectation, HostDnssec, HostSpec, MAX_IPV4_HOSTS,
    MxRecord, PolicyHostSpec, Scenario, SmtpBehaviour, TlsaProfile,
};
use mxprobe_core::domain::DomainName;
use mxprobe_core::evaluate::verdict::Routing;

/// The default number of synthetic domains.
pub const DEFAULT_DOMAINS: usize = 10_000;

/// The default number of MX hosts the domains share.
pub const DEFAULT_MX_HOSTS: usize = 200;

/// The default number of broken MX hosts among them.
pub const DEFAULT_BROKEN: usize = 6;

/// Domains per lab TLD (each TLD one signed zone). The lab DNS (hickory's in-memory zone
/// handler) looks names and NSEC denials up by scanning a zone's records, so an answer costs
/// time in proportion to the zone's size: with 2,500 domains per zone the lab's DNS server,
/// not the scanner, used most of the CPU of a 10,000-domain benchmark. Zones of 100 domains
/// keep the lab cheap; on the internet every domain is a zone of its own.
pub const DOMAINS_PER_TLD: usize = 100;

/// One MX host in this many has a DANE-EE TLSA record.
const DANE_EVERY: usize = 4;

/// What the `broken` hosts do, in turn.
const BROKEN_KINDS: [(CertProfile, SmtpBehaviour); 3] = [
    (CertProfile::Expired, SmtpBehaviour::Starttls),
    (CertProfile::Valid, SmtpBehaviour::NoStarttls),
    (CertProfile::Valid, SmtpBehaviour::Silent),
];

/// The policy a synthetic domain publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// MTA-STS `enforce` and TLS-RPT (70 %).
    Enforce,
    /// MTA-STS `testing` and TLS-RPT (10 %).
    Testing,
    /// TLS-RPT only (10 %).
    ReportOnly,
    /// Nothing (10 %).
    Plain,
}

impl Kind {
    /// The kind for a draw in `0..100`.
    fn from_percent(p: u64) -> Self {
        match p {
            0..70 => Self::Enforce,
            70..80 => Self::Testing,
            80..90 => Self::ReportOnly,
            _ => Self::Plain,
        }
    }
}

/// SplitMix64: a small, well-mixed deterministic generator (no cryptographic use).
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `0..n` (`n` > 0; the tiny modulo bias does not matter here).
    fn below(&mut self, n: usize) -> usize {
        // usize → u64 is lossless on every supported target, and the result is < n.
        (self.next() % n as u64) as usize
    }
}

/// The name of MX host `i`.
fn host_name(i: usize) -> DomainName {
    name(&format!("mx{i:03}.mx.syn0"))
}

/// The name of domain `i` of `domains`: `d<i>.syn<k>`, spreading the domains evenly over
/// `ceil(domains / DOMAINS_PER_TLD)` TLDs.
fn domain_name(i: usize, domains: usize) -> DomainName {
    let tlds = domains.div_ceil(DOMAINS_PER_TLD).max(1);
    name(&format!("d{i:06}.syn{}", i % tlds))
}

/// Parses a generated name; every generated name is a few short LDH labels.
fn name(text: &str) -> DomainName {
    DomainName::parse(text).expect("generated names are short LDH labels")
}

/// The names of the domains of [`scenario`]`(domains, …)`, in order, made one at a time (a
/// scanner in another process than the lab needs only these).
pub fn domain_names(domains: usize) -> impl Iterator<Item = DomainName> {
    (0..domains).map(move |i| domain_name(i, domains))
}

/// A synthetic lab of `domains` domains sharing `mx_hosts` MX hosts (1 to
/// [`MAX_IPV4_HOSTS`]; values outside are clamped, one IPv4 loopback address each), the last
/// `broken` of which misbehave (clamped to `mx_hosts`), in turn: an expired certificate, no
/// STARTTLS, a silent server. Every domain has one or two MX records drawn from `seed`; 70 %
/// publish MTA-STS `enforce` and TLS-RPT, 10 % MTA-STS `testing` and TLS-RPT, 10 % only
/// TLS-RPT, 10 % nothing. One MX host in four (broken ones aside) has a DANE-EE record, so
/// the domains using it are DANE domains. All names are in signed zones.
pub fn scenario(domains: usize, mx_hosts: usize, broken: usize, seed: u64) -> Scenario {
    scenario_with_aliases(domains, mx_hosts, 0, broken, seed)
}

/// The name of alias `k` of MX host `i`.
fn alias_name(i: usize, k: usize) -> DomainName {
    name(&format!("a{k}-mx{i:03}.mx.syn0"))
}

/// [`scenario`], each MX host also known by `aliases` other names (CNAMEs to it, as one
/// provider's address serves several MX names): a domain's MX record names the host or one
/// of its aliases, drawn from `seed`. Probes are per (MX name, address), so several probes
/// then reach one address: what `--per-ip` limits. With `aliases` 0 this is [`scenario`].
pub fn scenario_with_aliases(
    domains: usize,
    mx_hosts: usize,
    aliases: usize,
    broken: usize,
    seed: u64,
) -> Scenario {
    let mx_hosts = mx_hosts.clamp(1, MAX_IPV4_HOSTS);
    let broken = broken.min(mx_hosts);
    let healthy = mx_hosts - broken;
    let hosts = (0..mx_hosts)
        .map(|i| {
            let (certificate, smtp) = match i.checked_sub(healthy) {
                Some(b) => BROKEN_KINDS[b % BROKEN_KINDS.len()],
                None => (CertProfile::Valid, SmtpBehaviour::Starttls),
            };
            let dane = i < healthy && i % DANE_EVERY == 0;
            HostSpec {
                name: host_name(i),
                ipv4: true,
                ipv6: false,
                certificate,
                smtp,
                tlsa: if dane {
                    vec![TlsaProfile::DaneEe]
                } else {
                    Vec::new()
                },
                dnssec: HostDnssec::Signed,
                aliases: (0..aliases).map(|k| alias_name(i, k)).collect(),
            }
        })
        .collect();
    let mut rng = SplitMix(seed);
    let domains = (0..domains)
        .map(|i| synthetic_domain(i, domains, mx_hosts, aliases, &mut rng))
        .collect();
    Scenario {
        hosts,
        domains,
        resolvers: Vec::new(),
    }
}

/// Domain `i` of `domains`, drawing its MX hosts and its kind from `rng`.
fn synthetic_domain(
    i: usize,
    domains: usize,
    mx_hosts: usize,
    aliases: usize,
    rng: &mut SplitMix,
) -> DomainSpec {
    let name = domain_name(i, domains);
    let first = rng.below(mx_hosts);
    let mut exchanges = vec![first];
    if mx_hosts > 1 && rng.below(2) == 1 {
        // A second, different host: an offset in 1..mx_hosts never lands on `first`.
        exchanges.push((first + 1 + rng.below(mx_hosts - 1)) % mx_hosts);
    }
    let mx: Vec<MxRecord> = exchanges
        .iter()
        .zip([10u16, 20])
        .map(|(&h, preference)| {
            // Drawn only when there are aliases, so that `scenario` is unchanged by them.
            let exchange = match aliases {
                0 => host_name(h),
                n => match rng.below(n + 1) {
                    0 => host_name(h),
                    k => alias_name(h, k - 1),
                },
            };
            MxRecord {
                preference,
                exchange: Some(exchange),
            }
        })
        .collect();
    let kind = Kind::from_percent(rng.next() % 100);
    let mode = match kind {
        Kind::Enforce => Some("enforce"),
        Kind::Testing => Some("testing"),
        Kind::ReportOnly | Kind::Plain => None,
    };
    let (sts_txt, policy) = match mode {
        Some(mode) => {
            // RFC 8461 §3.2: one `mx` line per permitted MX host pattern.
            let mx_lines: String = mx
                .iter()
                .filter_map(|m| m.exchange.as_ref())
                .map(|h| format!("mx: {h}\n"))
                .collect();
            let body = format!("version: STSv1\nmode: {mode}\n{mx_lines}max_age: 604800\n");
            (
                // RFC 8461 §3.1: `v=STSv1; id=<1–32 alphanumerics>`.
                vec!["v=STSv1; id=20250601T000000;".to_owned()],
                Some(PolicyHostSpec {
                    status: 200,
                    content_type: Some("text/plain".to_owned()),
                    location: None,
                    body,
                    oversized: false,
                    certificate: CertProfile::Valid,
                }),
            )
        }
        None => (Vec::new(), None),
    };
    let tlsrpt_txt = match kind {
        Kind::Plain => Vec::new(),
        // RFC 8460 §3: `v=TLSRPTv1; rua=<URI>`.
        Kind::Enforce | Kind::Testing | Kind::ReportOnly => {
            vec![format!("v=TLSRPTv1; rua=mailto:tlsrpt@{name}")]
        }
    };
    DomainSpec {
        about: format!("synthetic domain #{i}"),
        name,
        mx,
        sts_txt,
        tlsrpt_txt,
        policy,
        report_endpoint: None,
        dnssec: DomainDnssec::Signed,
        expect: Expectation {
            routing: Routing::Mx,
            sts_failure: None,
            inconclusive: false,
            findings: Vec::new(),
            worst: None,
            sessions: Vec::new(),
            rua: Vec::new(),
        },
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn hosts_of(s: &Scenario) -> HashSet<DomainName> {
        s.hosts.iter().map(|h| h.name.clone()).collect()
    }

    #[test]
    fn same_seed_same_lab_other_seed_other_lab() {
        assert_eq!(scenario(500, 50, 3, 7), scenario(500, 50, 3, 7));
        assert_ne!(scenario(500, 50, 3, 7), scenario(500, 50, 3, 8));
    }

    #[test]
    fn domain_names_are_the_scenarios_names() {
        let s = scenario(250, 20, 1, 9);
        let names: Vec<DomainName> = domain_names(250).collect();
        let expected: Vec<DomainName> = s.domains.iter().map(|d| d.name.clone()).collect();
        assert_eq!(names, expected);
    }

    #[test]
    fn aliases_name_the_hosts_and_leave_the_plain_scenario_alone() {
        assert_eq!(
            scenario_with_aliases(300, 20, 0, 2, 5),
            scenario(300, 20, 2, 5)
        );
        let s = scenario_with_aliases(2000, 10, 3, 0, 5);
        let mut known: HashSet<DomainName> = hosts_of(&s);
        for h in &s.hosts {
            assert_eq!(h.aliases.len(), 3, "{}", h.name);
            known.extend(h.aliases.iter().cloned());
        }
        let used: HashSet<DomainName> = s
            .domains
            .iter()
            .flat_map(|d| d.mx.iter().filter_map(|m| m.exchange.clone()))
            .collect();
        assert!(used.iter().all(|n| known.contains(n)));
        // Every host and every alias is drawn from 2,000 domains.
        assert_eq!(used.len(), 40, "{used:?}");
    }

    #[test]
    fn sizes_are_clamped_to_what_the_lab_can_address() {
        let cases = [
            // (mx_hosts, broken) → (hosts, broken hosts)
            ((200, 6), (200, 6)),
            ((0, 0), (1, 0)),
            ((1000, 2), (MAX_IPV4_HOSTS, 2)),
            ((5, 9), (5, 5)),
        ];
        for ((mx, broken), (hosts, bad)) in cases {
            let s = scenario(10, mx, broken, 1);
            assert_eq!(s.hosts.len(), hosts, "{mx} {broken}");
            let misbehaving = s
                .hosts
                .iter()
                .filter(|h| {
                    h.certificate != CertProfile::Valid || h.smtp != SmtpBehaviour::Starttls
                })
                .count();
            assert_eq!(misbehaving, bad, "{mx} {broken}");
        }
    }

    #[test]
    fn broken_hosts_take_turns() {
        let s = scenario(0, 10, 4, 1);
        let kinds: Vec<(CertProfile, SmtpBehaviour, bool)> = s.hosts[6..]
            .iter()
            .map(|h| (h.certificate, h.smtp, h.tlsa.is_empty()))
            .collect();
        assert_eq!(
            kinds,
            vec![
                (CertProfile::Expired, SmtpBehaviour::Starttls, true),
                (CertProfile::Valid, SmtpBehaviour::NoStarttls, true),
                (CertProfile::Valid, SmtpBehaviour::Silent, true),
                (CertProfile::Expired, SmtpBehaviour::Starttls, true),
            ]
        );
        let dane: Vec<usize> = (0..10).filter(|&i| !s.hosts[i].tlsa.is_empty()).collect();
        assert_eq!(dane, vec![0, 4]);
    }

    #[test]
    fn every_domain_has_one_or_two_distinct_declared_mx_hosts() {
        let s = scenario(2000, 200, 6, 42);
        let declared = hosts_of(&s);
        let mut names = HashSet::new();
        let mut two = 0;
        for d in &s.domains {
            assert!(names.insert(d.name.clone()), "{} twice", d.name);
            let hosts = d.mail_hosts();
            assert!((1..=2).contains(&hosts.len()), "{}", d.name);
            assert!(hosts.iter().all(|h| declared.contains(h)), "{}", d.name);
            if let [a, b] = hosts.as_slice() {
                assert_ne!(a, b, "{}", d.name);
                two += 1;
            }
        }
        assert_eq!(names.len(), 2000);
        assert!((800..1200).contains(&two), "{two} of 2000 with two MX");
        assert_eq!(s.domains[0].name.as_str(), "d000000.syn0");
        assert_eq!(s.domains[1999].name.as_str(), "d001999.syn19");
        let tlds: HashSet<&str> = s
            .domains
            .iter()
            .filter_map(|d| d.name.labels().last())
            .collect();
        assert_eq!(tlds.len(), 2000 / DOMAINS_PER_TLD);
    }

    #[test]
    fn the_mix_is_mostly_mta_sts_with_tls_rpt() {
        let s = scenario(10_000, 200, 6, 1);
        let count = |f: &dyn Fn(&DomainSpec) -> bool| s.domains.iter().filter(|d| f(d)).count();
        let enforce = count(&|d| {
            d.policy
                .as_ref()
                .is_some_and(|p| p.body.contains("mode: enforce"))
        });
        let testing = count(&|d| {
            d.policy
                .as_ref()
                .is_some_and(|p| p.body.contains("mode: testing"))
        });
        let report_only = count(&|d| d.policy.is_none() && !d.tlsrpt_txt.is_empty());
        let plain = count(&|d| d.policy.is_none() && d.tlsrpt_txt.is_empty());
        for (what, n, lo, hi) in [
            ("enforce", enforce, 6700, 7300),
            ("testing", testing, 800, 1200),
            ("report-only", report_only, 800, 1200),
            ("plain", plain, 800, 1200),
        ] {
            assert!((lo..hi).contains(&n), "{what}: {n}");
        }
        assert_eq!(enforce + testing + report_only + plain, 10_000);
        // Every policy has a TXT record, TLS-RPT, and lists exactly the domain's MX hosts.
        for d in s.domains.iter().filter(|d| d.policy.is_some()) {
            assert_eq!(d.sts_txt.len(), 1, "{}", d.name);
            assert_eq!(d.tlsrpt_txt.len(), 1, "{}", d.name);
            let body = &d.policy.as_ref().expect("filtered").body;
            let listed: Vec<&str> = body
                .lines()
                .filter_map(|l| l.strip_prefix("mx: "))
                .collect();
            let hosts: Vec<String> = d.mail_hosts().iter().map(ToString::to_string).collect();
            assert_eq!(listed, hosts, "{}", d.name);
        }
    }

    #[test]
    fn synthetic_policies_and_records_parse() {
        let s = scenario(200, 20, 2, 3);
        for d in &s.domains {
            for txt in &d.sts_txt {
                mxprobe_core::mtasts::StsRecord::parse(txt).expect("valid MTA-STS record");
            }
            for txt in &d.tlsrpt_txt {
                mxprobe_core::tlsrpt::record::TlsRptRecord::parse(txt)
                    .expect("valid TLS-RPT record");
            }
            if let Some(p) = &d.policy {
                let parsed = mxprobe_core::mtasts::policy::parse_policy(&p.body);
                assert_eq!(parsed.errors, Vec::new(), "{}", d.name);
                assert!(parsed.policy.is_some(), "{}", d.name);
            }
        }
    }
}
