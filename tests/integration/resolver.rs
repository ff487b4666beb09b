//! `mxprobe scan` and `mxprobe demo` through the lab's broken resolvers (one that answers
//! NXDOMAIN to every query, one that strips RRSIGs), and `--dnssec resolver` with a resolver
//! that does not validate: the resolver is named once on stderr with what to do, every
//! domain is inconclusive (exit status 3), and no finding fails.

use serde_json::Value;

use crate::support::LabEnv;

fn text(o: &std::process::Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn a_broken_resolver_is_named_once_and_the_scan_is_inconclusive() {
    let env = LabEnv::start("broken-resolver");
    let domains = ["good.test", "dane-ee.test", "rrsig-expired.test"];
    for (name, words) in [
        ("nxdomain-to-all", "answers NXDOMAIN for the root zone"),
        ("strip-dnssec", "strips DNSSEC records"),
    ] {
        let address = env.lab.broken_resolver(name).expect("a lab resolver").addr;
        let out = env
            .command()
            .env("MXPROBE_RESOLVER", address.to_string())
            .args(["scan", "--format", "json"])
            .args(domains)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(3), "{name}: {}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        let said = format!("mxprobe: the DNS resolver {address} ");
        assert_eq!(stderr.matches(&said).count(), 1, "{name}: {stderr}");
        assert!(stderr.contains(words), "{name}: {stderr}");
        assert!(stderr.contains("--resolver"), "{name}: {stderr}");
        assert!(
            stderr.contains("inconclusive because of the resolver"),
            "{stderr}"
        );
        let json: Value = serde_json::from_slice(&out.stdout).unwrap();
        let reported = json["domains"].as_array().unwrap();
        assert_eq!(reported.len(), domains.len());
        for d in reported {
            let verdict = &d["verdict"];
            assert_eq!(verdict["inconclusive"], true, "{name}: {d:#}");
            let findings = verdict["findings"].as_array().unwrap();
            let codes: Vec<&str> = findings
                .iter()
                .map(|f| f["code"].as_str().unwrap())
                .collect();
            assert_eq!(codes, ["dns.resolver.unusable"], "{name}");
            assert!(
                findings
                    .iter()
                    .all(|f| f["inconclusive"] == true && f["severity"] != "error"),
                "{name}: {findings:#?}"
            );
            assert_eq!(
                d["facts"]["resolver_problem"]["resolver"],
                address.to_string()
            );
        }
    }
    // With the lab's own resolver the same domains are judged: rrsig-expired.test fails.
    let out = env
        .command()
        .args(["scan", "rrsig-expired.test", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("mxprobe: the DNS resolver"),
        "{}",
        text(&out)
    );
}

#[test]
fn the_demo_shows_the_broken_resolvers() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mxprobe"))
        .arg("demo")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    // The lab has failing domains on purpose; each is judged as the scenario expects,
    // through the broken resolvers too.
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let scenario = mxprobe_lab::Scenario::embedded().unwrap();
    let through: usize = scenario.resolvers.iter().map(|r| r.domains.len()).sum();
    assert!(
        stdout.ends_with(&format!(
            "\n{n} of {n} lab domains judged as expected, and {through} of {through} scans \
             through broken resolvers\n",
            n = scenario.domains.len()
        )),
        "{stdout}"
    );
    for spec in &scenario.resolvers {
        assert!(
            stderr.contains(&format!(
                "the same lab through {} ({}",
                spec.about, spec.name
            )),
            "{stderr}"
        );
    }
    assert_eq!(
        stderr.matches("mxprobe: the DNS resolver").count(),
        scenario.resolvers.len(),
        "{stderr}"
    );
    assert!(stdout.contains("dns.resolver.unusable"), "{stdout}");
    assert!(
        stdout.contains("MX        not judged: the resolver cannot be used"),
        "{stdout}"
    );
    assert!(stdout.contains("rrsig-expired.test  FAIL"), "{stdout}");
    assert!(
        stdout.contains("rrsig-expired.test  INCONCLUSIVE"),
        "{stdout}"
    );
}

/// `--dnssec resolver` trusts the AD bit of the resolver: the lab's DNS server is
/// authoritative and sets none, so it cannot be trusted to say what is secure, and nothing
/// is judged with it.
#[test]
fn dnssec_resolver_mode_with_a_resolver_that_does_not_validate() {
    let env = LabEnv::start("no-ad-bit");
    let out = env
        .command()
        .env("MXPROBE_DNSSEC", "resolver")
        .env_remove("MXPROBE_TRUST_ANCHOR")
        .args(["scan", "good.test", "dane-ee.test", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.matches("sets no AD bit on the root zone").count(),
        1,
        "{stderr}"
    );
    assert!(stderr.contains("--dnssec validate"), "{stderr}");
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    for d in json["domains"].as_array().unwrap() {
        assert_eq!(
            d["facts"]["resolver_problem"]["fault"], "no-ad-bit",
            "{d:#}"
        );
        assert_eq!(d["verdict"]["inconclusive"], true);
    }
}
