//! The page parsed back with an HTML5 parser: its structure, one grid row per domain with
//! its status, hostile text shown escaped, and a policy that allows exactly the inline
//! style sheet and script.

use std::io::Cursor;

use scraper::{ElementRef, Html, Selector};
use serde_json::{Value as Json, json};
use time::macros::datetime;

use super::*;
use crate::alert::ChangeKind;
use crate::evaluate::verdict::Status;
use crate::finding::{Severity, Subject};

const NOW: OffsetDateTime = datetime!(2026-11-20 12:00 UTC);

/// Text meant to break out of an element, an attribute, a style sheet or a script.
const HOSTILE: &str = "<script>alert(\"x\")</script></style>'\"><img src=x onerror=alert(1)>&amp;";

fn meta() -> Meta {
    Meta {
        title: "mxprobe scan".to_owned(),
        started_at: NOW,
        ehlo_name: Some("probe.example".to_owned()),
        resolver: "127.0.0.1:53".to_owned(),
        dnssec: "validate (IANA root)".to_owned(),
        version: "0.1.0".to_owned(),
    }
}

/// A result for `domain` with findings `(severity, code, could not test)`; hostile text in
/// the policy body, an MX exchange, the server's EHLO name and a finding's message.
fn result(domain: &str, findings: &[(&str, &str, bool)]) -> DomainResult {
    let list: Vec<Json> = findings
        .iter()
        .map(|(severity, code, inconclusive)| {
            json!({"code": code, "severity": severity, "subject": {"domain": domain},
                   "message": format!("message {HOSTILE}"), "fix": format!("fix {HOSTILE}"),
                   "inconclusive": inconclusive})
        })
        .collect();
    let inconclusive = findings.iter().any(|(_, _, i)| *i);
    serde_json::from_value(json!({
        "facts": {
            "domain": domain,
            "observed_at": "2026-11-20T11:59:00Z",
            "mx": {"status": "records", "records": [{"preference": 10,
                   "exchange": format!("mx.{domain}")}], "dnssec": "insecure",
                   "cname-chain": []},
            "sts_txt": {"status": "nodata", "dnssec": "insecure"},
            "tlsrpt_txt": {"status": "nodata", "dnssec": "insecure"},
            "policy_fetch": {"url": format!("https://mta-sts.{domain}/.well-known/mta-sts.txt"),
                "attempts": [{"address": "127.0.0.1", "outcome": {"status": "response",
                "http_status": 200, "content_type": "text/plain", "chain": [],
                "body": format!("version: STSv1\nmode: enforce\n{HOSTILE}\n")}}]},
            "hosts": [{"exchange": HOSTILE, "preference": 10}, {"exchange": format!("mx.{domain}"),
                       "name": format!("mx.{domain}"), "preference": 20}]
        },
        "verdict": {
            "domain": domain, "routing": "mx", "sts": {"record": "none"},
            "sessions": [{"mx": format!("mx.{domain}"), "ip": "127.0.0.9", "policy_type": "sts",
                          "helo": HOSTILE, "tls_version": "TLSv1.3", "result": "success"}],
            "inconclusive": inconclusive, "findings": list
        }
    }))
    .unwrap()
}

fn render(kind: Kind, add: impl FnOnce(&mut HtmlReport<Cursor<Vec<u8>>>)) -> String {
    let mut report = HtmlReport::new(meta(), kind, || Ok(Cursor::new(Vec::new()))).unwrap();
    add(&mut report);
    let mut out = Vec::new();
    report.finish(&mut out, NOW, None).unwrap();
    String::from_utf8(out).unwrap()
}

fn sel(s: &str) -> Selector {
    Selector::parse(s).unwrap()
}

fn text(e: ElementRef<'_>) -> String {
    e.text().collect()
}

#[test]
fn one_row_per_domain_failing_first_each_with_its_status() {
    let html = render(Kind::Scan, |r| {
        r.add(&result("ok.example", &[]), &[], &[], NOW).unwrap();
        r.add(
            &result("bad.example", &[("error", "smtp.cert.leaf-expired", false)]),
            &[],
            &[],
            NOW,
        )
        .unwrap();
        r.add(
            &result(
                "warn.example",
                &[("warning", "sts.policy.max-age-short", false)],
            ),
            &[],
            &[],
            NOW,
        )
        .unwrap();
        r.add(
            &result("slow.example", &[("error", "smtp.inconclusive", true)]),
            &[],
            &[],
            NOW,
        )
        .unwrap();
        r.add_not_tested("late.example", "not finished within --deadline 3s")
            .unwrap();
    });
    let doc = Html::parse_document(&html);
    assert!(doc.errors.is_empty(), "parse errors: {:?}", doc.errors);
    let rows: Vec<(String, String)> = doc
        .select(&sel("#grid tbody tr"))
        .map(|tr| {
            (
                text(tr.select(&sel("td.domain a")).next().unwrap()),
                tr.value().attr("data-status").unwrap().to_owned(),
            )
        })
        .collect();
    let want = [
        ("bad.example", "fail"),
        ("slow.example", "inconclusive"),
        ("late.example", "inconclusive"),
        ("warn.example", "warn"),
        ("ok.example", "ok"),
    ];
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(d, s)| ((*d).to_owned(), (*s).to_owned()))
        .collect();
    assert_eq!(rows, want);
    // Each grid row has the status cell and the seven concerns; the certificate cell of
    // the failing domain is failing (its finding), the policy cell of the warning one warns.
    let bad = doc.select(&sel("#grid tbody tr")).next().unwrap();
    let cells: Vec<ElementRef<'_>> = bad.select(&sel("td")).collect();
    assert_eq!(cells.len(), 2 + 7);
    assert_eq!(cells[1].value().attr("class"), Some("s-fail"));
    assert!(text(cells[1]).contains("FAIL"));
    assert_eq!(
        cells[6].value().attr("class"),
        Some("s-fail"),
        "{}",
        text(cells[6])
    );
    let warn = doc.select(&sel("#grid tbody tr")).nth(3).unwrap();
    let cells: Vec<ElementRef<'_>> = warn.select(&sel("td")).collect();
    assert_eq!(cells[3].value().attr("class"), Some("s-warn"));
    // A detail section per domain, in the same order, each linked from its row.
    let details: Vec<&str> = doc
        .select(&sel("details.domain"))
        .map(|d| d.value().id().unwrap())
        .collect();
    let links: Vec<String> = doc
        .select(&sel("#grid td.domain a"))
        .map(|a| {
            a.value()
                .attr("href")
                .unwrap()
                .trim_start_matches('#')
                .to_owned()
        })
        .collect();
    assert_eq!(details, links);
    // The header counts.
    let counts: Vec<String> = doc.select(&sel("ul.counts li")).map(text).collect();
    assert_eq!(counts.len(), 4);
    assert!(counts[0].contains("1 FAIL"), "{counts:?}");
    assert!(counts[1].contains("2 INCONCLUSIVE"), "{counts:?}");
    // Every domain's synthetic report is JSON.
    for pre in doc.select(&sel("pre.tlsrpt")) {
        let report: Json = serde_json::from_str(&text(pre)).unwrap();
        assert_eq!(
            report["organization-name"],
            crate::synthetic_report::ORGANIZATION
        );
    }
}

#[test]
fn hostile_text_is_shown_as_text_never_as_markup() {
    let html = render(Kind::Monitor, |r| {
        let change = Change {
            kind: ChangeKind::PolicyChanged,
            severity: Severity::Warning,
            subject: Subject::default(),
            message: format!("changed {HOSTILE}"),
            fix: Some(HOSTILE.to_owned()),
        };
        let strip = [StripRun {
            observed_at: NOW,
            status: Status::Fail,
        }];
        r.add(
            &result("bad.example", &[("error", "sts.policy.bad-mode", false)]),
            &[change],
            &strip,
            NOW,
        )
        .unwrap();
    });
    let doc = Html::parse_document(&html);
    assert!(doc.errors.is_empty(), "parse errors: {:?}", doc.errors);
    // Only the page's own script and style sheet, no injected element.
    assert_eq!(doc.select(&sel("script")).count(), 1);
    assert_eq!(doc.select(&sel("style")).count(), 1);
    assert_eq!(doc.select(&sel("img")).count(), 0);
    assert!(!html.contains("<script>alert"), "unescaped");
    assert!(!html.contains("<img src=x"), "unescaped");
    // The text reads back exactly where it is shown.
    let policy = text(doc.select(&sel("pre.policy")).next().unwrap());
    assert!(policy.contains(HOSTILE), "{policy}");
    let hosts = text(doc.select(&sel("table.hosts")).next().unwrap());
    assert!(hosts.contains(HOSTILE), "{hosts}");
    let findings = text(doc.select(&sel("ul.findings")).next_back().unwrap());
    assert!(
        findings.contains(&format!("message {HOSTILE}")),
        "{findings}"
    );
    let changes = text(doc.select(&sel("#changes-table")).next().unwrap());
    assert!(changes.contains(&format!("changed {HOSTILE}")), "{changes}");
    // Attributes hold it whole too (the row's title repeats a cell's text).
    assert_eq!(doc.select(&sel("#grid tbody tr")).count(), 1);
    let strip = doc.select(&sel(".strip span")).count();
    assert_eq!(strip, 1);
}

#[test]
fn the_policy_allows_exactly_the_inline_style_and_script() {
    let html = render(Kind::Scan, |r| {
        r.add(&result("ok.example", &[]), &[], &[], NOW).unwrap();
    });
    let doc = Html::parse_document(&html);
    let csp = doc
        .select(&sel("meta[http-equiv=\"Content-Security-Policy\"]"))
        .next()
        .unwrap()
        .value()
        .attr("content")
        .unwrap()
        .to_owned();
    let style = text(doc.select(&sel("style")).next().unwrap());
    let script = text(doc.select(&sel("script")).next().unwrap());
    assert!(csp.starts_with("default-src 'none'; "), "{csp}");
    assert!(
        csp.contains(&format!("style-src {};", csp_hash(&style))),
        "{csp}"
    );
    assert!(
        csp.contains(&format!("script-src {};", csp_hash(&script))),
        "{csp}"
    );
    assert!(!csp.contains("unsafe"), "{csp}");
    // No attribute that loads anything or runs script.
    for e in doc.select(&sel("*")) {
        for (name, _) in e.value().attrs() {
            assert!(
                !["src", "style"].contains(&name) && !name.starts_with("on"),
                "{name} on <{}>",
                e.value().name()
            );
        }
    }
    let hrefs: Vec<&str> = doc
        .select(&sel("[href]"))
        .map(|e| e.value().attr("href").unwrap())
        .collect();
    assert!(hrefs.iter().all(|h| h.starts_with('#')), "{hrefs:?}");
}

#[test]
fn the_timeline_keeps_the_certificates_that_expire_first() {
    let mut t = Timeline::default();
    use mxprobe_testpki::{CertAuthority, KeyKind, LeafSpec, Validity};
    let base = datetime!(2026-01-01 00:00 UTC);
    let ca = CertAuthority::root(
        "Timeline CA",
        Validity::new(base, base + time::Duration::days(3650)),
        KeyKind::default(),
    )
    .unwrap();
    // More certificates than kept, expiring one day apart, given latest first.
    let n = MAX_CERTIFICATES + 5;
    for i in (0..n).rev() {
        let name = format!("mx{i}.example");
        let validity = Validity::new(base, NOW + time::Duration::days(i as i64 + 1));
        let leaf = ca.leaf(&LeafSpec::new(&[&name], validity)).unwrap();
        let c = crate::tls::cert::describe(leaf.der().as_ref()).unwrap();
        t.add_cert(&c, format!("{name} (MX)"));
        // The same certificate again: one entry, the host named once.
        t.add_cert(&c, format!("{name} (MX)"));
    }
    let view = t.view(NOW);
    assert_eq!(view.rows.len(), MAX_CERTIFICATES);
    assert_eq!(t.dropped, 5);
    let first = serde_json::to_value(&view.rows[0]).unwrap();
    assert_eq!(first["hosts"], "mx0.example (MX)");
    assert_eq!(first["state"], "fail");
    let twentieth = serde_json::to_value(&view.rows[19]).unwrap();
    assert_eq!(twentieth["state"], "warn");
}

#[test]
fn a_huge_policy_body_is_shown_cut() {
    let mut r = result("big.example", &[]);
    let body = format!("version: STSv1\n{}", "x".repeat(70_000));
    let fetch = r.facts.policy_fetch.as_mut().unwrap();
    match &mut fetch.attempts[0].outcome {
        crate::facts::FetchOutcome::Response(resp) => resp.body = body.clone(),
        other => panic!("{other:?}"),
    }
    let html = render(Kind::Scan, |rep| rep.add(&r, &[], &[], NOW).unwrap());
    let doc = Html::parse_document(&html);
    let shown = text(doc.select(&sel("pre.policy")).next().unwrap());
    assert_eq!(shown.len(), view::POLICY_SHOWN);
    assert!(body.starts_with(&shown));
    assert!(
        html.contains(&format!(
            "The first {} characters of {} bytes are shown.",
            view::POLICY_SHOWN,
            body.len()
        )),
        "the cut is said"
    );
    assert!(html.len() < 40_000, "{} bytes", html.len());
}

#[test]
fn text_escaping_keeps_quotes_and_escapes_markup() {
    assert_eq!(
        escape_text(r#"{"a": "<b> & </pre>"}"#),
        r#"{"a": "&lt;b&gt; &amp; &lt;/pre&gt;"}"#
    );
}
