//! The shared parsing vectors (fixtures/vectors/*.json, transcribed from the RFC text and
//! peers' test suites) run through the public parsers: `_mta-sts` records and record sets,
//! policy bodies, mx patterns, Content-Type values, and `_smtp._tls` records and record sets.
//! `policy-fetch-scenarios.json` belongs to the fetch tests (tests/integration/fetch.rs).
//!
//! Every vector must agree with `valid` and the expected fields it gives, unless its input is
//! in [`DEVIATIONS`] with a reason; a vector with a key or an outcome this file does not know
//! fails the test, so new vectors cannot be skipped silently.

use std::collections::BTreeSet;

use mxprobe_core::domain::DomainName;
use mxprobe_core::mtasts::{
    ContentTypeVerdict, Mode, MxPattern, StsRecord, StsRecordError, judge_content_type,
    parse_policy, select_sts,
};
use mxprobe_core::tagvalue::{Conclusion, TagValueError};
use mxprobe_core::tlsrpt::record::{TlsRptRecord, TlsRptRecordError, select_tlsrpt};
use serde_json::Value;

const STS_TXT: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/vectors/mta-sts-txt-vectors.json"
));
const STS_POLICY: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/vectors/mta-sts-policy-vectors.json"
));
const MX_PATTERNS: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/vectors/mx-pattern-vectors.json"
));
const TLSRPT_TXT: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/vectors/tlsrpt-txt-vectors.json"
));
const CONTENT_TYPES: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/vectors/content-type-vectors.json"
));

/// Inputs where mxprobe deliberately disagrees with a vector's `valid`, with the reason.
/// Empty: every vector follows the strict RFC grammar, and so does mxprobe. (Vectors with a
/// `peer_disagreement` note are cases where *peers* are lenient; mxprobe sides with the
/// vector, and the tests below assert the exact error it gives.)
const DEVIATIONS: &[(&str, &str)] = &[];

/// Record sets given as a description rather than a list of TXT strings. They are about the
/// DNS layer, not about parsing, and are tested there.
const DNS_LAYER_SETS: &[(&str, &str)] = &[
    (
        "TEMPFAIL/SERVFAIL",
        "a temporary DNS failure is not 'no record': the DNS layer (src/dns) reports it as a \
         lookup error and never calls select_sts",
    ),
    (
        "CNAME _mta-sts.a.cnames.example -> _mta-sts.b.cnames.example -> _mta-sts.c.cnames.example TXT 'v=STSv1; id=1'",
        "CNAME chains are followed by the resolver (src/dns); the TXT strings it returns \
         ('v=STSv1; id=1') are the case of the first record-set vector",
    ),
];

fn parse_json(text: &str) -> Value {
    serde_json::from_str(text).expect("the vector file is valid JSON")
}

fn array<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .unwrap_or_else(|| panic!("vector file has no array {key:?}"))
}

/// Fails on a vector key this test does not understand.
fn check_keys(vector: &Value, known: &[&str]) {
    let object = vector.as_object().expect("each vector is an object");
    let unknown: Vec<&String> = object
        .keys()
        .filter(|k| !known.contains(&k.as_str()))
        .collect();
    assert!(
        unknown.is_empty(),
        "vector has keys this test does not understand: {unknown:?} in {vector}"
    );
}

fn str_of<'a>(vector: &'a Value, key: &str) -> &'a str {
    vector[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key:?} is not a string in {vector}"))
}

fn bool_of(vector: &Value, key: &str) -> bool {
    vector[key]
        .as_bool()
        .unwrap_or_else(|| panic!("{key:?} is not a bool in {vector}"))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("{v} is not an array"))
        .iter()
        .map(|s| s.as_str().expect("array of strings").to_owned())
        .collect()
}

/// Asserts `ours` agrees with the vector's `valid`, or that the input is an allowed
/// deviation (and then really deviates, so the allow-list stays honest).
fn agree(input: &str, valid: bool, ours: bool, detail: &str) {
    if let Some((_, why)) = DEVIATIONS.iter().find(|(i, _)| *i == input) {
        assert_ne!(
            ours, valid,
            "{input:?} is allowed to deviate ({why}) but does not"
        );
    } else {
        assert_eq!(
            ours, valid,
            "{input:?}: vector says valid={valid}, we say {detail}"
        );
    }
}

#[test]
fn mta_sts_txt_single_records() {
    let file = parse_json(STS_TXT);
    let vectors = array(&file, "single_record");
    assert_eq!(
        vectors.len(),
        29,
        "vector count changed: review the new vectors"
    );
    for v in vectors {
        check_keys(
            v,
            &[
                "input",
                "valid",
                "reason",
                "source",
                "id",
                "peer_disagreement",
                "lenient_id",
            ],
        );
        let input = str_of(v, "input");
        let valid = bool_of(v, "valid");
        let parsed = StsRecord::parse(input);
        agree(input, valid, parsed.is_ok(), &format!("{parsed:?}"));
        if let (Ok(record), Some(id)) = (&parsed, v.get("id")) {
            assert_eq!(Some(record.id.as_str()), id.as_str(), "{input:?}");
        }
        // A one-record set yields a policy exactly when the record is valid.
        let selection = select_sts(&[input.to_owned()]);
        assert_eq!(
            selection.record().is_some(),
            valid,
            "{input:?}: {selection:?}"
        );
    }
}

/// The exact errors for the strict-versus-lenient and easily confused cases.
#[test]
fn mta_sts_txt_exact_errors() {
    let cases: &[(&str, StsRecordError)] = &[
        // postfix-mta-sts-resolver accepts this (peer_disagreement); the ABNF allows WSP
        // only inside a ';' delimiter, so mxprobe rejects it and says where.
        (
            "v=STSv1;        id=20160831085700Z   ",
            StsRecordError::Syntax(TagValueError::TrailingWhitespace { column: 35 }),
        ),
        (
            "v=STSv1",
            // Exactly the version: parsed alone it lacks an id; in a record set it is
            // discarded (no ';' after the version), see `sts_record_set_edge_cases`.
            StsRecordError::MissingId,
        ),
        ("v=STSv1;", StsRecordError::MissingId),
        (
            "v= STSv1; id=abc",
            StsRecordError::Syntax(TagValueError::WhitespaceAroundEquals {
                column: 3,
                field: "v= STSv1".into(),
            }),
        ),
        (
            "id=20180907T090909; v=STSv1;",
            StsRecordError::Syntax(TagValueError::MissingVersion {
                expected: "v=STSv1",
                found: "id=20180907T090909".into(),
            }),
        ),
        (
            "v=STSv12;id=20180907T090909;",
            StsRecordError::Syntax(TagValueError::WrongVersion {
                expected: "v=STSv1",
                found: "v=STSv12".into(),
            }),
        ),
    ];
    for (input, want) in cases {
        assert_eq!(StsRecord::parse(input).as_ref(), Err(want), "{input:?}");
    }
}

#[test]
fn mta_sts_txt_record_sets() {
    let file = parse_json(STS_TXT);
    let sets = array(&file, "record_sets");
    assert_eq!(
        sets.len(),
        9,
        "vector count changed: review the new vectors"
    );
    let mut skipped = BTreeSet::new();
    for v in sets {
        check_keys(v, &["records", "outcome", "reason", "source", "id"]);
        if let Some(description) = v["records"].as_str() {
            assert!(
                DNS_LAYER_SETS.iter().any(|(name, _)| *name == description),
                "record set given as text that this test does not know: {description:?}"
            );
            skipped.insert(description);
            continue;
        }
        let records = strings(&v["records"]);
        let selection = select_sts(&records);
        assert_eq!(selection.total, records.len());
        match str_of(v, "outcome") {
            "policy" => {
                let record = selection
                    .record()
                    .unwrap_or_else(|| panic!("{records:?}: expected a policy, got {selection:?}"));
                assert_eq!(record.id, str_of(v, "id"), "{records:?}");
            }
            "no-policy (multiple records)" => {
                assert!(
                    matches!(selection.conclusion, Conclusion::Several { ref indices } if indices.len() >= 2),
                    "{records:?}: {selection:?}"
                );
            }
            "no-policy (no record)" => {
                assert_eq!(selection.conclusion, Conclusion::None, "{records:?}");
            }
            other => panic!("outcome this test does not understand: {other:?}"),
        }
    }
    assert_eq!(
        skipped.len(),
        DNS_LAYER_SETS.len(),
        "every DNS-layer set was seen"
    );
}

/// Decisions the vectors leave open, stated here (see `tagvalue::discard_reason`):
/// - `v=STSv1` with no ';' is discarded ("records that do not begin with v=STSv1; are
///   discarded", RFC 8461 §3.1), so it neither counts as a second record nor as an invalid
///   one; the notes still say it looks like an STS record.
/// - `v=STSv1;` (delimiter, no id) survives the discard step and is then the one invalid
///   record: no policy, conclusion `Invalid`.
/// - `v=STSv1 ;` is ABNF-valid (field-delim = *WSP ";" *WSP) and is kept, with a note.
#[test]
fn sts_record_set_edge_cases() {
    let set = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let s = select_sts(&set(&["v=STSv1", "v=STSv1; id=9"]));
    assert!(matches!(s.conclusion, Conclusion::One { index: 1, .. }));
    let s = select_sts(&set(&["v=STSv1;", "bogus"]));
    assert_eq!(
        s.conclusion,
        Conclusion::Invalid {
            index: 0,
            error: StsRecordError::MissingId
        }
    );
    let s = select_sts(&set(&["v=STSv1 ; id=5"]));
    assert_eq!(s.record().map(|r| r.id.as_str()), Some("5"));
    let s = select_sts(&set(&["v=STSv1; id=1", "v=STSv1;id=2;;"]));
    assert!(matches!(s.conclusion, Conclusion::Several { .. }));
}

#[test]
fn mta_sts_policy_vectors() {
    let file = parse_json(STS_POLICY);
    let vectors = array(&file, "vectors");
    assert_eq!(
        vectors.len(),
        40,
        "vector count changed: review the new vectors"
    );
    for v in vectors {
        check_keys(
            v,
            &[
                "input",
                "valid",
                "reason",
                "source",
                "mode",
                "mx",
                "max_age",
                "peer_disagreement",
            ],
        );
        let input = str_of(v, "input");
        let valid = bool_of(v, "valid");
        let parsed = parse_policy(input);
        agree(
            input,
            valid,
            parsed.policy.is_some(),
            &format!("{:?}", parsed.errors),
        );
        let Some(policy) = parsed.policy else {
            assert!(!parsed.errors.is_empty(), "{input:?}");
            continue;
        };
        if let Some(mode) = v.get("mode") {
            let want: Mode = serde_json::from_value(mode.clone()).expect("a mode");
            assert_eq!(policy.mode, want, "{input:?}");
        }
        if let Some(mx) = v.get("mx") {
            let ours: Vec<String> = policy.mx.iter().map(MxPattern::to_string).collect();
            assert_eq!(ours, strings(mx), "{input:?}");
        }
        if let Some(max_age) = v.get("max_age") {
            assert_eq!(
                Some(u64::from(policy.max_age)),
                max_age.as_u64(),
                "{input:?}"
            );
        }
    }
}

#[test]
fn mx_pattern_vectors() {
    let file = parse_json(MX_PATTERNS);
    let vectors = array(&file, "vectors");
    assert_eq!(
        vectors.len(),
        15,
        "vector count changed: review the new vectors"
    );
    for v in vectors {
        check_keys(v, &["patterns", "host", "match", "reason", "source"]);
        let patterns: Vec<MxPattern> = strings(&v["patterns"])
            .iter()
            .map(|p| MxPattern::parse(p).unwrap_or_else(|e| panic!("{p:?}: {e}")))
            .collect();
        let host_text = str_of(v, "host");
        // MX targets arrive from DNS with a trailing dot and any case: DomainName::parse
        // normalises both before matching.
        let host = DomainName::parse(host_text).expect("vector hosts are valid names");
        let matched = patterns.iter().any(|p| p.matches(&host));
        assert_eq!(
            matched,
            bool_of(v, "match"),
            "{host_text:?} against {patterns:?}"
        );
    }
}

#[test]
fn content_type_vectors() {
    let file = parse_json(CONTENT_TYPES);
    let vectors = array(&file, "vectors");
    assert_eq!(
        vectors.len(),
        8,
        "vector count changed: review the new vectors"
    );
    for v in vectors {
        check_keys(v, &["content_type", "is_text_plain"]);
        let value = str_of(v, "content_type");
        let verdict = judge_content_type(Some(value));
        assert_eq!(
            verdict == ContentTypeVerdict::TextPlain,
            bool_of(v, "is_text_plain"),
            "{value:?}: {verdict:?}"
        );
        if !bool_of(v, "is_text_plain") {
            assert_eq!(
                verdict,
                ContentTypeVerdict::NotTextPlain {
                    value: value.to_owned()
                }
            );
        }
    }
    assert_eq!(judge_content_type(None), ContentTypeVerdict::Missing);
}

#[test]
fn tlsrpt_txt_single_records() {
    let file = parse_json(TLSRPT_TXT);
    let vectors = array(&file, "single_record");
    assert_eq!(
        vectors.len(),
        23,
        "vector count changed: review the new vectors"
    );
    for v in vectors {
        check_keys(
            v,
            &[
                "input",
                "valid",
                "reason",
                "source",
                "rua",
                "usable_rua",
                "note",
            ],
        );
        let input = str_of(v, "input");
        let valid = bool_of(v, "valid");
        let parsed = TlsRptRecord::parse(input);
        agree(input, valid, parsed.is_ok(), &format!("{parsed:?}"));
        let selection = select_tlsrpt(&[input.to_owned()]);
        assert_eq!(
            selection.record().is_some(),
            valid,
            "{input:?}: {selection:?}"
        );
        let Ok(record) = parsed else { continue };
        if let Some(rua) = v.get("rua") {
            let ours: Vec<&str> = record.rua.iter().map(|r| r.uri()).collect();
            assert_eq!(ours, strings(rua), "{input:?}");
        }
        let usable: Vec<&str> = record.usable_rua().map(|r| r.uri()).collect();
        match v.get("usable_rua") {
            Some(want) => assert_eq!(usable, strings(want), "{input:?}"),
            // Without `usable_rua`, every listed destination is mailto/https and usable.
            None => assert_eq!(usable.len(), record.rua.len(), "{input:?}"),
        }
    }
}

/// The `v=TLSRPTv1 ; rua=…` vector (WSP before ';'): ABNF-valid, and mxprobe keeps it in
/// the record set too (the discard rule reads "begins with the version and the ABNF's
/// field-delim"), noting that a literal-prefix sender would discard it.
#[test]
fn tlsrpt_space_before_delimiter_is_kept_and_noted() {
    let input = "v=TLSRPTv1 ; rua=mailto:x@x.example; rua=mailto:y@x.example";
    let s = select_tlsrpt(&[input.to_owned()]);
    let record = s.record().expect("kept and valid");
    assert_eq!(record.rua.len(), 2);
    assert_eq!(
        s.notes,
        vec![mxprobe_core::tagvalue::SelectionNote::SpaceBeforeDelimiter { index: 0 }]
    );
}

#[test]
fn tlsrpt_exact_errors() {
    let cases: &[(&str, TlsRptRecordError)] = &[
        ("v=TLSRPTv1;", TlsRptRecordError::MissingRua),
        (
            "v=TLSRPTv1; rua=mailto:x@x.example;;",
            TlsRptRecordError::Syntax(TagValueError::EmptyField { column: 36 }),
        ),
        (
            "v=TLSRPTv1; rua=mailto:tlsrpt@example.com,mailto:tlsrpt@example.net,",
            TlsRptRecordError::EmptyRuaElement { column: 69 },
        ),
    ];
    for (input, want) in cases {
        assert_eq!(TlsRptRecord::parse(input).as_ref(), Err(want), "{input:?}");
    }
}

#[test]
fn tlsrpt_record_sets() {
    let file = parse_json(TLSRPT_TXT);
    let sets = array(&file, "record_sets");
    assert_eq!(
        sets.len(),
        2,
        "vector count changed: review the new vectors"
    );
    for v in sets {
        check_keys(v, &["records", "outcome", "reason", "source"]);
        let records = strings(&v["records"]);
        let selection = select_tlsrpt(&records);
        match str_of(v, "outcome") {
            "tlsrpt" => assert!(
                matches!(selection.conclusion, Conclusion::One { .. }),
                "{records:?}: {selection:?}"
            ),
            "no-tlsrpt (multiple records)" => assert!(
                matches!(selection.conclusion, Conclusion::Several { ref indices } if indices.len() >= 2),
                "{records:?}: {selection:?}"
            ),
            other => panic!("outcome this test does not understand: {other:?}"),
        }
    }
}
