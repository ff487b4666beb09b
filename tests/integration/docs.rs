//! docs/findings.md lists every finding code mxprobe emits: lint runs over every vector and
//! the example policies, and each code seen must appear there in backticks.

use std::collections::BTreeSet;

use mxprobe_core::lint::{LintInput, lint};
use serde_json::Value;

fn fixture(path: &str) -> String {
    std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// Fails naming every code that docs/findings.md does not list.
pub(crate) fn assert_documented<'a>(codes: impl IntoIterator<Item = &'a str>) {
    let doc = fixture("docs/findings.md");
    let missing: BTreeSet<&str> = codes
        .into_iter()
        .filter(|c| !doc.contains(&format!("`{c}`")))
        .collect();
    assert!(missing.is_empty(), "docs/findings.md lacks {missing:?}");
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::Array(a) => a
            .iter()
            .filter_map(|s| s.as_str().map(str::to_owned))
            .collect(),
        Value::String(s) => vec![s.clone()],
        _ => Vec::new(),
    }
}

#[test]
fn every_lint_code_is_documented() {
    let mut inputs = Vec::new();
    let policies: Value =
        serde_json::from_str(&fixture("fixtures/vectors/mta-sts-policy-vectors.json")).unwrap();
    for v in policies["vectors"].as_array().unwrap() {
        inputs.push(LintInput {
            policy: Some(v["input"].as_str().unwrap().as_bytes().to_vec()),
            mx: vec!["mail.example.com".to_owned(), "other.example".to_owned()],
            ..LintInput::default()
        });
    }
    for (file, sts) in [
        ("fixtures/vectors/mta-sts-txt-vectors.json", true),
        ("fixtures/vectors/tlsrpt-txt-vectors.json", false),
    ] {
        let json: Value = serde_json::from_str(&fixture(file)).unwrap();
        let mut sets: Vec<Vec<String>> = json["single_record"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| strings(&v["input"]))
            .collect();
        sets.extend(
            json["record_sets"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| strings(&v["records"])),
        );
        for set in sets.into_iter().filter(|s| !s.is_empty()) {
            inputs.push(if sts {
                LintInput {
                    sts_txt: set,
                    ..LintInput::default()
                }
            } else {
                LintInput {
                    tlsrpt_txt: set,
                    tlsrpt_name: Some("_smtp-tlsrpt".to_owned()),
                    ..LintInput::default()
                }
            });
        }
    }
    for name in ["good-policy.txt", "broken-policy.txt"] {
        inputs.push(LintInput {
            policy: Some(fixture(&format!("fixtures/lint/{name}")).into_bytes()),
            mx: vec!["mx1.example.com".to_owned(), "mx9.example.org".to_owned()],
            ..LintInput::default()
        });
    }
    let mut codes = BTreeSet::new();
    for input in &inputs {
        for f in lint(input).unwrap().findings {
            codes.insert(f.code.into_owned());
        }
    }
    // The vectors exercise a wide range: make sure this test keeps seeing it.
    assert!(
        codes.len() >= 25,
        "only {} codes seen: {codes:?}",
        codes.len()
    );
    assert_documented(codes.iter().map(String::as_str));
}

/// docs/architecture.md draws the folder tree: each source folder's section lists every file
/// and folder in it (entries are the lines indented by two spaces, up to a gap of two spaces),
/// and lists nothing that is not there.
#[test]
fn the_architecture_tree_matches_the_folders() {
    let doc = fixture("docs/architecture.md");
    let start = doc.find("```\nCargo.toml").expect("the tree block");
    let block = &doc[start + 4..];
    let block = &block[..block.find("```").expect("the end of the tree block")];
    let roots = [
        "src/",
        "crates/core/src/",
        "crates/probe/src/",
        "crates/lab/src/",
        "crates/queue/src/",
        "crates/testpki/src/",
    ];
    for root in roots {
        let mut lines = block.lines().skip_while(|l| !l.starts_with(root));
        assert!(
            lines.next().is_some(),
            "docs/architecture.md: no section for {root}"
        );
        let listed: BTreeSet<&str> = lines
            .take_while(|l| l.starts_with(' '))
            .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
            .flat_map(|l| l[2..].split("  ").next().unwrap_or("").split(' '))
            .filter(|t| !t.is_empty())
            .collect();
        let dir = format!("{}/{root}", env!("CARGO_MANIFEST_DIR"));
        let mut on_disk = BTreeSet::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().into_string().unwrap();
            if name == "lib.rs" {
                continue;
            }
            on_disk.insert(if entry.path().is_dir() {
                format!("{name}/")
            } else {
                name
            });
        }
        let listed: BTreeSet<String> = listed.into_iter().map(str::to_owned).collect();
        assert_eq!(
            listed, on_disk,
            "docs/architecture.md: the section {root} lists the left set, the folder holds the right"
        );
    }
}
