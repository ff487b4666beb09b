//! `mxprobe generate`: the records and the policy of a new deployment.

use std::io::Write as _;

use anyhow::Context as _;

use super::{App, Outcome, runtime};
use crate::cli::{Format, GenerateArgs, GenerateMode};
use crate::config::dns_config;
use mxprobe_core::dns::{Lookup, Mx};
use mxprobe_core::domain::DomainName;
use mxprobe_core::generate::{GenerateSpec, generate};
use mxprobe_core::mtasts::Mode;
use mxprobe_probe::resolver::{IpFamilies, Resolver};
use mxprobe_probe::scan::mx_in_preference_order;

/// Runs `mxprobe generate`.
pub fn run(args: GenerateArgs, app: &App) -> anyhow::Result<Outcome> {
    let domain =
        DomainName::parse(&args.domain).with_context(|| format!("--domain {:?}", args.domain))?;
    let mut mx = args.mx.clone();
    if args.live {
        let config = dns_config(&args.dns, IpFamilies::Both)?;
        let lookup = runtime()?.block_on(async {
            let resolver = Resolver::new(&config).context("setting up the DNS resolver")?;
            anyhow::Ok(resolver.mx(&domain).await)
        })?;
        for host in live_mx_hosts(&domain, &lookup)? {
            if !mx.contains(&host) {
                mx.push(host);
            }
        }
    }
    let spec = GenerateSpec {
        domain,
        mx,
        mode: match args.mode {
            GenerateMode::Testing => Mode::Testing,
            GenerateMode::Enforce => Mode::Enforce,
        },
        max_age: args.max_age,
        rua: args.rua.clone(),
    };
    let generated = generate(&spec, app.now())?;
    let mut out = app.out();
    match args.format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut *out, &generated)?;
            writeln!(out)?;
        }
        Format::Text => generated.write_text(&mut *out)?,
    }
    Ok(Outcome::Pass)
}

/// The MX host names of a live MX lookup, in the order a scan visits them, for
/// `generate --live`.
fn live_mx_hosts(domain: &DomainName, lookup: &Lookup<Mx>) -> anyhow::Result<Vec<String>> {
    match lookup {
        Lookup::Records { records, .. } => {
            let hosts = mx_in_preference_order(records);
            anyhow::ensure!(
                !hosts.is_empty(),
                "--live: {domain} publishes a null MX (it accepts no mail): it needs no MTA-STS \
                 policy"
            );
            Ok(hosts.into_iter().map(|m| m.exchange.clone()).collect())
        }
        Lookup::NoData { .. } => Ok(vec![domain.to_string()]),
        Lookup::NxDomain { .. } => {
            anyhow::bail!("--live: {domain} does not exist in DNS (NXDOMAIN)")
        }
        other => anyhow::bail!(
            "--live: cannot read the MX records of {domain}: {}; give the hosts with --mx",
            other.failure().unwrap_or_default()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Command;
    use crate::cmd::testing::{LabFixture, app, parse};
    use mxprobe_core::dns::DnssecStatus;

    fn generate_args(args: &[String]) -> GenerateArgs {
        match parse(args) {
            Command::Generate(args) => args,
            other => panic!("not generate: {other:?}"),
        }
    }

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn generated_records_pass_lint_and_name_the_hosts() {
        let t = app();
        let argv = strings(&[
            "generate",
            "--domain",
            "example.com",
            "--mx",
            "mx1.example.com,mx2.example.com",
            "--rua",
            "mailto:tlsrpt@example.com",
            "--format",
            "json",
        ]);
        assert_eq!(run(generate_args(&argv), &t.app).unwrap(), Outcome::Pass);
        let doc: serde_json::Value = serde_json::from_str(&t.out.text()).unwrap();
        let policy = doc.to_string();
        assert!(policy.contains("mx: mx1.example.com"), "{policy}");
        assert!(policy.contains("mx: mx2.example.com"), "{policy}");
        assert!(policy.contains("mode: testing"), "{policy}");
    }

    fn records(mx: &[(u16, &str)]) -> Lookup<Mx> {
        Lookup::Records {
            records: mx
                .iter()
                .map(|(preference, exchange)| Mx {
                    preference: *preference,
                    exchange: (*exchange).to_owned(),
                })
                .collect(),
            dnssec: DnssecStatus::Insecure,
            cname_chain: Vec::new(),
        }
    }

    #[test]
    fn live_hosts_are_those_a_scan_visits() {
        let d = DomainName::parse("example.com").unwrap();
        let lookup = records(&[
            (20, "b.example.com"),
            (10, "a.example.com"),
            (30, "b.example.com"),
        ]);
        assert_eq!(
            live_mx_hosts(&d, &lookup).unwrap(),
            ["a.example.com", "b.example.com"]
        );
        // No MX: the domain itself (implicit MX).
        let nodata = Lookup::NoData {
            dnssec: DnssecStatus::Insecure,
        };
        assert_eq!(live_mx_hosts(&d, &nodata).unwrap(), ["example.com"]);
        let null = records(&[(0, ".")]);
        let err = live_mx_hosts(&d, &null).unwrap_err();
        assert!(err.to_string().contains("publishes a null MX"), "{err}");
        let nx = Lookup::NxDomain {
            dnssec: DnssecStatus::Insecure,
        };
        let err = live_mx_hosts(&d, &nx).unwrap_err();
        assert_eq!(
            err.to_string(),
            "--live: example.com does not exist in DNS (NXDOMAIN)"
        );
    }

    #[test]
    fn live_reads_the_lab_mx_records() {
        let lab = LabFixture::start("generate");
        let flags = lab.probe_flags();
        let argv = strings(&[
            "generate",
            "--domain",
            "good.test",
            "--live",
            "--rua",
            "mailto:t@good.test",
            "--resolver",
            &flags[1],
            "--trust-anchor",
            &flags[3],
        ]);
        let t = app();
        assert_eq!(run(generate_args(&argv), &t.app).unwrap(), Outcome::Pass);
        assert!(
            t.out.text().contains("mx: mx1.good.test"),
            "{}",
            t.out.text()
        );
    }
}
