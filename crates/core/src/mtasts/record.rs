//! The `_mta-sts.<domain>` TXT record (RFC 8461 §3.1) and the choice of one record from the
//! TXT RRset.
//!
//! ```text
//! sts-text-record = sts-version 1*(sts-field-delim sts-field) [sts-field-delim]
//! sts-field       = sts-id / sts-extension        ; id required
//! sts-version     = %s"v=STSv1"
//! sts-id          = %s"id=" 1*32(ALPHA / DIGIT)
//! ```
//!
//! The shared `name=value` grammar is [`crate::tagvalue`]; this module adds the `id` rule,
//! duplicates (first `id` wins, later ones are kept in [`StsRecord::ignored`] so `lint` can
//! warn) and the record-set rule. Pure: no I/O; the DNS layer passes the joined TXT strings.

use std::fmt;

use crate::tagvalue::{
    self, Conclusion, Grammar, IgnoredField, IgnoredReason, Selection, TagValueError,
};

/// The longest id RFC 8461 §3.1 allows.
const MAX_ID_LEN: usize = 32;

/// The `_mta-sts` grammar: version `v=STSv1`; every field value is an `ext-value` (the `id`
/// rule is narrower and checked here).
pub const STS_GRAMMAR: Grammar = Grammar {
    version: "v=STSv1",
    raw_fields: &[],
};

/// A syntactically valid `_mta-sts` TXT record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StsRecord {
    /// The policy id (`1*32(ALPHA / DIGIT)`); a change tells senders to fetch the policy again.
    pub id: String,
    /// Other fields, in order, as written (RFC 8461 §3.1: unknown fields are ignored).
    pub extensions: Vec<(String, String)>,
    /// Fields that were parsed but not used: later `id` fields (the first one wins).
    pub ignored: Vec<IgnoredField>,
}

/// Why a `_mta-sts` TXT record is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StsRecordError {
    /// The text does not follow the shared `v=…; name=value` grammar.
    #[error(transparent)]
    Syntax(#[from] TagValueError),
    /// No `id=` field.
    #[error("the record has no id field (write e.g. \"v=STSv1; id=20240101T000000\")")]
    MissingId,
    /// The id is longer than 32 characters.
    #[error("column {column}: the id is {len} characters long; the limit is 32")]
    IdTooLong {
        /// Where the id value starts.
        column: usize,
        /// Its length.
        len: usize,
    },
    /// The id contains something other than letters and digits.
    #[error("column {column}: the id contains {ch:?}; an id has only letters and digits")]
    IdBadChar {
        /// Where the character is.
        column: usize,
        /// The character.
        ch: char,
    },
}

impl StsRecord {
    /// Parses one record (the character-strings already joined).
    pub fn parse(input: &str) -> Result<Self, StsRecordError> {
        let list = tagvalue::lex(input, &STS_GRAMMAR)?;
        let mut id = None;
        let mut extensions = Vec::new();
        let mut ignored = Vec::new();
        for field in &list.fields {
            if field.name != "id" {
                extensions.push((field.name.to_owned(), field.value.to_owned()));
                continue;
            }
            if id.is_some() {
                // Duplicates: first wins (RFC 8461 §3.2 states it for the policy; mox and
                // checkdmarc apply it to the record, and the ABNF lets fields repeat).
                ignored.push(IgnoredField {
                    column: field.column,
                    name: field.name.to_owned(),
                    value: field.value.to_owned(),
                    reason: IgnoredReason::Duplicate,
                });
                continue;
            }
            // RFC 8461 §3.1: sts-id = %s"id=" 1*32(ALPHA / DIGIT); empty values were
            // rejected by the lexer.
            if let Some((at, ch)) = field
                .value
                .char_indices()
                .find(|(_, c)| !c.is_ascii_alphanumeric())
            {
                return Err(StsRecordError::IdBadChar {
                    column: field.value_column + at,
                    ch,
                });
            }
            if field.value.len() > MAX_ID_LEN {
                return Err(StsRecordError::IdTooLong {
                    column: field.value_column,
                    len: field.value.len(),
                });
            }
            id = Some(field.value.to_owned());
        }
        let id = id.ok_or(StsRecordError::MissingId)?;
        Ok(Self {
            id,
            extensions,
            ignored,
        })
    }
}

impl fmt::Display for StsRecord {
    /// The canonical form: `v=STSv1; id=…` then the extensions, `; ` between fields.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}; id={}", STS_GRAMMAR.version, self.id)?;
        for (name, value) in &self.extensions {
            write!(f, "; {name}={value}")?;
        }
        Ok(())
    }
}

/// The outcome of choosing the `_mta-sts` record from a TXT RRset.
pub type StsSelection = Selection<StsRecord, StsRecordError>;

/// What a sender concludes from the `_mta-sts` RRset.
pub type StsConclusion = Conclusion<StsRecord, StsRecordError>;

/// RFC 8461 §3.1: discards the records that do not begin with `v=STSv1` and the delimiter
/// (see [`tagvalue::discard_reason`] for `v=STSv1 ;`), then requires exactly one valid record;
/// otherwise the domain has no available policy.
pub fn select_sts(records: &[String]) -> StsSelection {
    tagvalue::select(records, &STS_GRAMMAR, StsRecord::parse)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tagvalue::{DiscardReason, SelectionNote, join_txt};
    use proptest::prelude::*;

    #[test]
    fn parses_fields() {
        let r = StsRecord::parse("v=STSv1; id=abc; extension=foo; id=bar;").unwrap();
        assert_eq!(r.id, "abc");
        assert_eq!(r.extensions, vec![("extension".into(), "foo".into())]);
        assert_eq!(
            r.ignored,
            vec![IgnoredField {
                column: 33,
                name: "id".into(),
                value: "bar".into(),
                reason: IgnoredReason::Duplicate
            }]
        );
        assert_eq!(r.to_string(), "v=STSv1; id=abc; extension=foo");
        assert_eq!(
            r.ignored[0].to_string(),
            "column 33: id=bar repeats the field \"id\"; the first one is used"
        );
    }

    #[test]
    fn id_errors() {
        let cases = [
            ("v=STSv1", StsRecordError::MissingId),
            ("v=STSv1;", StsRecordError::MissingId),
            ("v=STSv1; x=1", StsRecordError::MissingId),
            // `ID` is an extension: names are case-sensitive.
            ("v=STSv1; ID=1", StsRecordError::MissingId),
            (
                "v=STSv1; id=test-123",
                StsRecordError::IdBadChar {
                    column: 17,
                    ch: '-',
                },
            ),
            (
                "v=STSv1; id=012345678901234567890123456789012",
                StsRecordError::IdTooLong {
                    column: 13,
                    len: 33,
                },
            ),
            (
                "v=STSv1; id=",
                StsRecordError::Syntax(TagValueError::EmptyValue {
                    column: 10,
                    name: "id".into(),
                }),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(StsRecord::parse(input), Err(want), "{input:?}");
        }
        assert!(StsRecord::parse(&format!("v=STSv1; id={}", "a".repeat(32))).is_ok());
    }

    #[test]
    fn selection_conclusions() {
        let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        // `v=STSv1;` (delimiter, no id) is kept by the discard step and then invalid: the
        // sender has no policy, and the conclusion says why.
        let s = select_sts(&set(&["v=STSv1;", "v=spf1 -all"]));
        assert_eq!(
            s.conclusion,
            Conclusion::Invalid {
                index: 0,
                error: StsRecordError::MissingId
            }
        );
        // `v=STSv1` with no delimiter is discarded (the prose's "begin with v=STSv1;"), but
        // the note says it looks like an STS record.
        let s = select_sts(&set(&["v=STSv1", "v=STSv1; id=2"]));
        assert_eq!(s.record().map(|r| r.id.as_str()), Some("2"));
        assert!(matches!(
            &s.notes[..],
            [SelectionNote::Discarded {
                index: 0,
                reason: DiscardReason::NoDelimiter
            }]
        ));
        // `v=STSv1 ;` is ABNF-valid and kept, with a note that literal-prefix senders
        // would discard it.
        let s = select_sts(&set(&["v=STSv1 ; id=3"]));
        assert_eq!(s.record().map(|r| r.id.as_str()), Some("3"));
        assert_eq!(
            s.notes,
            vec![SelectionNote::SpaceBeforeDelimiter { index: 0 }]
        );
        let s = select_sts(&[]);
        assert_eq!(s.conclusion, Conclusion::None);
        assert_eq!(s.total, 0);
    }

    fn arb_record() -> impl Strategy<Value = StsRecord> {
        (
            "[A-Za-z0-9]{1,32}",
            proptest::collection::vec(
                (
                    "[a-z0-9][a-z0-9_.-]{0,31}".prop_filter("not id", |n| n != "id"),
                    "[!-:<>-~]{1,12}",
                ),
                0..4,
            ),
        )
            .prop_map(|(id, extensions)| StsRecord {
                id,
                extensions,
                ignored: Vec::new(),
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn parse_never_panics(s in any::<String>()) {
            let _ = StsRecord::parse(&s);
            let _ = select_sts(&[s.clone(), s]);
        }

        #[test]
        fn parse_never_panics_on_alphabet(s in "(v=STSv1)?[a-zA-Z0-9=; \t_.-]{0,40}") {
            let _ = StsRecord::parse(&s);
        }

        #[test]
        fn round_trip(r in arb_record()) {
            prop_assert_eq!(StsRecord::parse(&r.to_string()), Ok(r));
        }

        /// RFC 8461 §3.1: records that do not begin with `v=STSv1` are discarded, so the one
        /// record among any such noise is chosen, wherever it stands, and split into any
        /// character-strings it reads the same.
        #[test]
        fn the_one_record_is_chosen_among_noise(
            r in arb_record(),
            noise in proptest::collection::vec("[^v][ -~]{0,20}", 0..4),
            at in any::<prop::sample::Index>(),
            cut in any::<prop::sample::Index>(),
        ) {
            let text = r.to_string();
            let mut set = noise.clone();
            set.insert(at.index(noise.len() + 1), text.clone());
            let selection = select_sts(&set);
            prop_assert_eq!(selection.total, set.len());
            prop_assert_eq!(selection.record(), Some(&r));
            let cut = cut.index(text.len() + 1);
            let joined = join_txt(&[&text[..cut], &text[cut..]]).unwrap();
            prop_assert_eq!(StsRecord::parse(&joined), Ok(r));
        }
    }
}
