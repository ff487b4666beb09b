//! The DNS adapter against the lab's authoritative DNS, on loopback only: every resolver
//! here asks the lab server (or a silent loopback socket), never the system resolvers.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use mxprobe_core::dns::{BrokenLink, DnssecStatus, Lookup, Mx, Resolve, Tlsa, TlsaLookup, Txt};
use mxprobe_core::domain::DomainName;
use mxprobe_lab::dns::{LabDns, LabDnsBuilder, LabRecord, RunningDns, Signing};
use mxprobe_probe::resolver::{DnsConfig, DnssecMode, IpFamilies, Resolver, TrustAnchor};

const V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);

fn tlsa_record() -> Tlsa {
    Tlsa {
        usage: 3,
        selector: 1,
        matching_type: 1,
        data: (0u8..32).collect(),
    }
}

fn mx(preference: u16, exchange: &str) -> LabRecord {
    LabRecord::Mx {
        preference,
        exchange: exchange.to_owned(),
    }
}

fn txt(strings: &[&str]) -> LabRecord {
    LabRecord::Txt(strings.iter().map(|s| (*s).to_owned()).collect())
}

/// The lab every test uses: a signed `test` TLD holding secure names, an unsigned
/// delegation, two bogus delegations, and names that fail on purpose.
fn lab() -> LabDnsBuilder {
    LabDns::builder()
        .zone("test", Signing::Signed)
        .zone("secure.test", Signing::Signed)
        .zone("insecure.test", Signing::Unsigned)
        .zone("bogusds.test", Signing::BogusDs)
        .zone("badsig.test", Signing::BadSignatures)
        .record("secure.test", mx(10, "mx1.secure.test"))
        .record("secure.test", mx(20, "mx2.secure.test"))
        .record("mx1.secure.test", LabRecord::A(V4))
        .record("mx1.secure.test", LabRecord::Aaaa(V6))
        .record("mx2.secure.test", LabRecord::A(Ipv4Addr::new(192, 0, 2, 2)))
        .record("_25._tcp.mx1.secure.test", LabRecord::Tlsa(tlsa_record()))
        .record("_25._tcp.mx3.secure.test", txt(&["not a TLSA"]))
        .record("nullmx.secure.test", mx(0, "."))
        .record("nomx.secure.test", LabRecord::A(V4))
        .record(
            "_mta-sts.alias.secure.test",
            LabRecord::Cname("_mta-sts.policy.secure.test".into()),
        )
        .record(
            "_mta-sts.policy.secure.test",
            txt(&["v=STSv1; ", "id=20240101T000000"]),
        )
        .record(
            "multi.secure.test",
            txt(&["part one;", " part two;", "three"]),
        )
        .record("multi.secure.test", txt(&["v=spf1 -all"]))
        .record("insecure.test", mx(10, "mx.insecure.test"))
        .record("mx.insecure.test", LabRecord::A(V4))
        .record("bogusds.test", mx(10, "mx.bogusds.test"))
        .record("badsig.test", mx(10, "mx.badsig.test"))
        .servfail("broken.test")
        .no_answer("silent.test")
}

async fn start(builder: LabDnsBuilder) -> RunningDns {
    builder
        .build()
        .expect("lab zones build")
        .start()
        .await
        .expect("lab DNS starts")
}

fn resolver(config: &DnsConfig) -> Resolver {
    Resolver::new(config).expect("resolver builds")
}

fn domain(name: &str) -> DomainName {
    DomainName::parse(name).expect("valid domain")
}

fn secure_records<T: std::fmt::Debug>(lookup: Lookup<T>) -> (Vec<T>, Vec<String>) {
    match lookup {
        Lookup::Records {
            records,
            dnssec: DnssecStatus::Secure,
            cname_chain,
        } => (records, cname_chain),
        other => panic!("expected secure records, got {other:?}"),
    }
}

#[tokio::test]
async fn mx_records_keep_their_preferences() {
    let dns = start(lab()).await;
    let r = resolver(&dns.dns_config());
    let (mut records, chain) = secure_records(r.mx(&domain("secure.test")).await);
    records.sort_by_key(|m| m.preference);
    assert_eq!(
        records,
        vec![
            Mx {
                preference: 10,
                exchange: "mx1.secure.test".into()
            },
            Mx {
                preference: 20,
                exchange: "mx2.secure.test".into()
            },
        ]
    );
    assert!(chain.is_empty());
    assert!(dns.query_count() > 0, "the lab counts queries");
}

#[tokio::test]
async fn null_mx_is_kept_as_a_dot() {
    let dns = start(lab()).await;
    let r = resolver(&dns.dns_config());
    let (records, _) = secure_records(r.mx(&domain("nullmx.secure.test")).await);
    assert_eq!(
        records,
        vec![Mx {
            preference: 0,
            exchange: ".".into()
        }]
    );
    assert!(records[0].is_null());
}

#[tokio::test]
async fn nodata_and_nxdomain_are_distinct_secure_denials() {
    let dns = start(lab()).await;
    let r = resolver(&dns.dns_config());
    assert_eq!(
        r.mx(&domain("nomx.secure.test")).await,
        Lookup::NoData {
            dnssec: DnssecStatus::Secure
        }
    );
    assert_eq!(
        r.mx(&domain("nothing-here.secure.test")).await,
        Lookup::NxDomain {
            dnssec: DnssecStatus::Secure
        }
    );
}

#[tokio::test]
async fn cname_to_txt_is_followed_and_recorded() {
    let dns = start(lab()).await;
    let r = resolver(&dns.dns_config());
    let (records, chain) = secure_records(r.txt("_mta-sts.alias.secure.test").await);
    assert_eq!(chain, vec!["_mta-sts.policy.secure.test".to_owned()]);
    assert_eq!(
        records,
        vec![Txt {
            strings: vec!["v=STSv1; ".into(), "id=20240101T000000".into()]
        }]
    );
    assert_eq!(records[0].joined(), "v=STSv1; id=20240101T000000");
}

#[tokio::test]
async fn multi_string_txt_keeps_each_string() {
    let dns = start(lab()).await;
    let r = resolver(&dns.dns_config());
    let (mut records, _) = secure_records(r.txt("multi.secure.test").await);
    records.sort_by_key(|t| t.strings.len());
    assert_eq!(
        records,
        vec![
            Txt {
                strings: vec!["v=spf1 -all".into()]
            },
            Txt {
                strings: vec!["part one;".into(), " part two;".into(), "three".into()]
            },
        ]
    );
    assert_eq!(records[1].joined(), "part one; part two;three");
}

#[tokio::test]
async fn a_and_aaaa_are_separate_lookups_per_family() {
    let dns = start(lab()).await;
    let both = resolver(&dns.dns_config());
    let lookups = both.addresses(&domain("mx1.secure.test")).await;
    assert_eq!(
        lookups.a,
        Some(Lookup::Records {
            records: vec![IpAddr::V4(V4)],
            dnssec: DnssecStatus::Secure,
            cname_chain: vec![]
        })
    );
    assert_eq!(
        lookups.aaaa,
        Some(Lookup::Records {
            records: vec![IpAddr::V6(V6)],
            dnssec: DnssecStatus::Secure,
            cname_chain: vec![]
        })
    );
    assert_eq!(lookups.addresses(), vec![IpAddr::V4(V4), IpAddr::V6(V6)]);
    assert_eq!(lookups.dnssec(), DnssecStatus::Secure);

    let v4_only = resolver(&DnsConfig {
        families: IpFamilies::V4,
        ..dns.dns_config()
    });
    let lookups = v4_only.addresses(&domain("mx2.secure.test")).await;
    assert!(lookups.aaaa.is_none());
    assert_eq!(
        lookups.addresses(),
        vec![IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2))]
    );

    let v6_only = resolver(&DnsConfig {
        families: IpFamilies::V6,
        ..dns.dns_config()
    });
    let lookups = v6_only.addresses(&domain("mx2.secure.test")).await;
    assert!(lookups.a.is_none());
    assert_eq!(
        lookups.aaaa,
        Some(Lookup::NoData {
            dnssec: DnssecStatus::Secure
        })
    );
}

#[tokio::test]
async fn tlsa_is_parsed_and_secure() {
    let dns = start(lab()).await;
    let r = resolver(&dns.dns_config());
    let lookup = r.tlsa(&domain("mx1.secure.test"), 25).await;
    let answer = lookup.to_tlsa_answer();
    assert_eq!(answer.dnssec, DnssecStatus::Secure);
    assert_eq!(
        answer.lookup,
        TlsaLookup::Records {
            records: vec![tlsa_record()]
        }
    );
    assert_eq!(
        secure_records(lookup).0,
        vec![tlsa_record()],
        "the TLSA record arrives whole"
    );
}

#[tokio::test]
async fn tlsa_secure_denials_nodata_and_nxdomain() {
    let dns = start(lab()).await;
    let r = resolver(&dns.dns_config());
    // `_25._tcp.mx3` exists (a TXT) but has no TLSA: NODATA with an NSEC proof.
    let nodata = r.tlsa(&domain("mx3.secure.test"), 25).await;
    assert_eq!(
        nodata,
        Lookup::NoData {
            dnssec: DnssecStatus::Secure
        }
    );
    assert_eq!(nodata.to_tlsa_answer().lookup, TlsaLookup::NoRecords);
    assert_eq!(
        r.tlsa(&domain("mx2.secure.test"), 25).await,
        Lookup::NxDomain {
            dnssec: DnssecStatus::Secure
        }
    );
}

#[tokio::test]
async fn an_unsigned_delegation_is_insecure() {
    let dns = start(lab()).await;
    let r = resolver(&dns.dns_config());
    match r.mx(&domain("insecure.test")).await {
        Lookup::Records {
            records,
            dnssec: DnssecStatus::Insecure,
            ..
        } => assert_eq!(
            records,
            vec![Mx {
                preference: 10,
                exchange: "mx.insecure.test".into()
            }]
        ),
        other => panic!("expected insecure records, got {other:?}"),
    }
    assert_eq!(
        r.mx(&domain("nothing.insecure.test")).await,
        Lookup::NxDomain {
            dnssec: DnssecStatus::Insecure
        }
    );
    assert_eq!(
        r.tlsa(&domain("mx.insecure.test"), 25).await.dnssec(),
        DnssecStatus::Insecure
    );
}

#[tokio::test]
async fn bogus_zones_are_bogus_not_missing() {
    let dns = start(lab()).await;
    let r = resolver(&dns.dns_config());
    for name in [
        "bogusds.test",
        "badsig.test",
        "nothing.bogusds.test",
        "nothing.badsig.test",
    ] {
        let lookup = r.mx(&domain(name)).await;
        assert!(
            matches!(lookup, Lookup::Bogus { .. }),
            "{name}: expected bogus, got {lookup:?}"
        );
        assert_eq!(lookup.dnssec(), DnssecStatus::Bogus);
        assert!(!lookup.is_definite());
    }
}

/// The CD re-query and in-process chain check run only for failed lookups: a healthy
/// lookup costs no query beyond hickory's own. Bogus ones are diagnosed, and name the link.
#[tokio::test]
async fn only_failed_lookups_are_diagnosed() {
    let dns = start(lab()).await;
    let r = resolver(&dns.dns_config());
    r.mx(&domain("secure.test")).await;
    r.addresses(&domain("mx1.secure.test")).await;
    r.tlsa(&domain("mx1.secure.test"), 25).await;
    r.mx(&domain("nothing.secure.test")).await;
    r.mx(&domain("insecure.test")).await;
    assert_eq!(r.diagnosed(), 0, "healthy lookups are never diagnosed");
    let ds = r.mx(&domain("bogusds.test")).await;
    let sig = r.mx(&domain("badsig.test")).await;
    assert_eq!(r.diagnosed(), 2);
    assert!(
        matches!(ds.broken_link(), Some(BrokenLink::DsMismatch { zone, .. }) if zone == "bogusds.test"),
        "{ds:?}"
    );
    assert!(
        matches!(sig.broken_link(), Some(BrokenLink::BadSignature { zone, .. }) if zone == "badsig.test"),
        "{sig:?}"
    );
}

#[tokio::test]
async fn lab_answers_are_bogus_against_the_iana_root() {
    let dns = start(lab()).await;
    let r = resolver(&DnsConfig {
        dnssec: DnssecMode::Validate(TrustAnchor::IanaRoot),
        ..dns.dns_config()
    });
    let lookup = r.mx(&domain("secure.test")).await;
    assert!(
        matches!(lookup, Lookup::Bogus { .. }),
        "a lab root is not the IANA root: {lookup:?}"
    );
}

#[tokio::test]
async fn the_trust_anchor_can_come_from_a_file() {
    let dns = start(lab()).await;
    let path = std::env::temp_dir().join(format!(
        "mxprobe-lab-anchor-{}-{}.txt",
        std::process::id(),
        dns.addr.port()
    ));
    std::fs::write(&path, format!("; lab root\n{}\n", dns.trust_anchor)).expect("write anchor");
    let r = resolver(&DnsConfig {
        dnssec: DnssecMode::Validate(TrustAnchor::File(path.clone())),
        ..dns.dns_config()
    });
    let lookup = r.mx(&domain("nullmx.secure.test")).await;
    std::fs::remove_file(&path).expect("remove anchor");
    assert_eq!(lookup.dnssec(), DnssecStatus::Secure, "{lookup:?}");
}

#[tokio::test]
async fn servfail_is_its_own_outcome() {
    let dns = start(lab()).await;
    let r = resolver(&DnsConfig {
        attempts: 1,
        ..dns.dns_config()
    });
    let lookup = r.mx(&domain("broken.test")).await;
    // The diagnosis asked again with the CD bit: still SERVFAIL, so it stays "could not
    // tell", and says why.
    match &lookup {
        Lookup::ServFail {
            diagnosis: Some(d), ..
        } => assert!(d.contains("even with checking disabled"), "{d}"),
        other => panic!("expected a diagnosed SERVFAIL, got {other:?}"),
    }
    assert_eq!(lookup.dnssec(), DnssecStatus::Indeterminate);
    assert!(!lookup.is_definite());
}

fn quick(config: DnsConfig) -> DnsConfig {
    DnsConfig {
        timeout: Duration::from_millis(200),
        attempts: 1,
        ..config
    }
}

#[tokio::test]
async fn a_name_never_answered_times_out() {
    let dns = start(lab()).await;
    let r = resolver(&quick(dns.dns_config()));
    assert_eq!(r.mx(&domain("silent.test")).await, Lookup::Timeout);
    assert_eq!(r.txt("_mta-sts.silent.test").await, Lookup::Timeout);
}

#[tokio::test]
async fn a_server_that_never_replies_times_out() {
    // A bound loopback UDP socket that reads nothing and answers nothing.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let config = quick(DnsConfig {
        servers: Some(vec![silent.local_addr().expect("addr")]),
        dnssec: DnssecMode::Off,
        ..DnsConfig::default()
    });
    let r = resolver(&config);
    let lookup = r.mx(&domain("example.test")).await;
    assert_eq!(lookup, Lookup::Timeout);
}

#[tokio::test]
async fn without_dnssec_everything_is_indeterminate() {
    let dns = start(lab()).await;
    let r = resolver(&DnsConfig {
        dnssec: DnssecMode::Off,
        ..dns.dns_config()
    });
    match r.mx(&domain("secure.test")).await {
        Lookup::Records {
            records, dnssec, ..
        } => {
            assert_eq!(records.len(), 2);
            assert_eq!(dnssec, DnssecStatus::Indeterminate);
        }
        other => panic!("expected records, got {other:?}"),
    }
    // Not validating, the bogus zone's data is simply unchecked.
    assert_eq!(
        r.mx(&domain("bogusds.test")).await.dnssec(),
        DnssecStatus::Indeterminate
    );
    assert_eq!(
        r.mx(&domain("nomx.secure.test")).await,
        Lookup::NoData {
            dnssec: DnssecStatus::Indeterminate
        }
    );
}

#[tokio::test]
async fn trusting_the_ad_bit_of_a_validating_resolver() {
    let dns = start(lab().act_as_validating_resolver(true)).await;
    let r = resolver(&DnsConfig {
        dnssec: DnssecMode::TrustResolverAd,
        attempts: 1,
        ..dns.dns_config()
    });
    assert_eq!(
        r.mx(&domain("secure.test")).await.dnssec(),
        DnssecStatus::Secure
    );
    assert_eq!(
        r.mx(&domain("insecure.test")).await.dnssec(),
        DnssecStatus::Insecure
    );
    assert_eq!(
        r.mx(&domain("nothing-here.secure.test")).await,
        Lookup::NxDomain {
            dnssec: DnssecStatus::Secure
        }
    );
    assert_eq!(
        r.tlsa(&domain("mx3.secure.test"), 25).await,
        Lookup::NoData {
            dnssec: DnssecStatus::Secure
        }
    );
    // A validating resolver hides bogus data behind SERVFAIL (RFC 4035 §5.5); asked again
    // with the CD bit it hands the data over, and the chain checked in-process names the
    // broken link. Its Extended DNS Error (RFC 8914, 6 "DNSSEC Bogus") is kept.
    match r.mx(&domain("bogusds.test")).await {
        Lookup::Bogus {
            cause: Some(BrokenLink::DsMismatch { zone, .. }),
            extended_errors,
            ..
        } => {
            assert_eq!(zone, "bogusds.test");
            assert_eq!(extended_errors.len(), 1, "{extended_errors:?}");
            assert_eq!(extended_errors[0].code, 6);
            assert_eq!(extended_errors[0].purpose.as_deref(), Some("DNSSEC Bogus"));
        }
        other => panic!("expected a DS mismatch, got {other:?}"),
    }
}

#[tokio::test]
async fn trusting_ad_from_a_server_that_never_sets_it_is_never_secure() {
    let dns = start(lab()).await;
    let r = resolver(&DnsConfig {
        dnssec: DnssecMode::TrustResolverAd,
        ..dns.dns_config()
    });
    assert_eq!(
        r.mx(&domain("secure.test")).await.dnssec(),
        DnssecStatus::Insecure
    );
}

/// The scan talks to DNS through the trait; the adapter answers the same through it.
async fn mx_through_the_trait(resolver: &impl Resolve, name: &DomainName) -> Lookup<Mx> {
    resolver.mx(name).await
}

#[tokio::test]
async fn the_adapter_implements_the_stage_trait() {
    let dns = start(lab()).await;
    let r = resolver(&dns.dns_config());
    let lookup = mx_through_the_trait(&r, &domain("nullmx.secure.test")).await;
    assert_eq!(lookup.dnssec(), DnssecStatus::Secure);
}

#[tokio::test]
async fn many_domains_in_one_signed_zone() {
    let records = (0..2000).flat_map(|i| {
        [
            (
                format!("d{i}.bulk.test"),
                mx(10, &format!("mx.d{i}.bulk.test")),
            ),
            (format!("mx.d{i}.bulk.test"), LabRecord::A(V4)),
        ]
    });
    let dns = start(
        LabDns::builder()
            .zone("bulk.test", Signing::Signed)
            .records(records),
    )
    .await;
    let r = resolver(&dns.dns_config());
    let (records, _) = secure_records(r.mx(&domain("d1234.bulk.test")).await);
    assert_eq!(records[0].exchange, "mx.d1234.bulk.test");
}

#[tokio::test]
async fn many_delegated_zones_each_with_its_own_state() {
    let mut builder = LabDns::builder().zone("test", Signing::Signed);
    for i in 0..300 {
        let zone = format!("z{i}.test");
        let signing = if i % 3 == 0 {
            Signing::BogusDs
        } else {
            Signing::Signed
        };
        builder = builder
            .zone(&zone, signing)
            .record(&zone, mx(10, &format!("mx.{zone}")));
    }
    let dns = start(builder).await;
    let r = resolver(&dns.dns_config());
    let (records, _) = secure_records(r.mx(&domain("z299.test")).await);
    assert_eq!(records[0].exchange, "mx.z299.test");
    let bogus = r.mx(&domain("z297.test")).await;
    assert!(matches!(bogus, Lookup::Bogus { .. }), "{bogus:?}");
}
