//! The one rule every CSV writer of mxprobe applies to the text it puts in a cell, so that a
//! spreadsheet opening the file shows text and runs nothing (OWASP "CSV injection").
//!
//! Text cells carry what strangers wrote: an input row that is not a domain, a reporter's
//! organisation name, result types from a mailed report. The rule, for every text cell:
//!
//! 1. Every control character (Unicode category Cc: U+0000–U+001F, U+007F–U+009F; NUL, BEL,
//!    ESC, TAB, CR and LF among them) becomes U+FFFD (�): a terminal never sees a raw escape
//!    sequence and no cell spans lines.
//! 2. A cell whose first character (after blanks) is `=`, `+`, `-` or `@` gets a leading `'`,
//!    which spreadsheets take as "this is text" and do not show. (TAB and CR, the other two
//!    starters OWASP lists, are already gone by rule 1.)
//!
//! Numeric columns (counts) are written as plain integers by mxprobe itself and pass through
//! untouched, so they stay numbers; negative values never occur in them. Quoting (RFC 4180)
//! is the writer's business and comes after this rule. Pure.

use std::borrow::Cow;

/// The characters that make a spreadsheet read a cell as a formula when they come first.
const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// `text` made safe for a CSV text cell (see the module documentation for the rule).
pub fn text(text: &str) -> Cow<'_, str> {
    let cleaned: Cow<'_, str> = if text.chars().any(char::is_control) {
        Cow::Owned(
            text.chars()
                .map(|c| if c.is_control() { '\u{FFFD}' } else { c })
                .collect(),
        )
    } else {
        Cow::Borrowed(text)
    };
    if cleaned.trim_start_matches(' ').starts_with(FORMULA_STARTS) {
        Cow::Owned(format!("'{cleaned}"))
    } else {
        cleaned
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn formulas_and_control_bytes() {
        let cases: &[(&str, &str)] = &[
            ("example.com", "example.com"),
            ("=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"),
            ("+cmd", "'+cmd"),
            ("-2+3", "'-2+3"),
            ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
            ("  =1+1", "'  =1+1"),
            // The control character is replaced first, so nothing starts a formula any more.
            ("\t=1", "\u{FFFD}=1"),
            ("\r-1", "\u{FFFD}-1"),
            ("a\u{1b}[31mred", "a\u{FFFD}[31mred"),
            ("bell\u{7}nul\0", "bell\u{FFFD}nul\u{FFFD}"),
            ("two\nlines", "two\u{FFFD}lines"),
            ("c1\u{9b}31m", "c1\u{FFFD}31m"),
            ("a-b=c", "a-b=c"),
            ("", ""),
            ("grüße", "grüße"),
        ];
        for (input, want) in cases {
            assert_eq!(text(input), *want, "{input:?}");
        }
        assert!(matches!(text("plain"), Cow::Borrowed(_)));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// No control character survives, no cell starts a formula, and text that needs
        /// nothing comes back unchanged; the cell is at most one character longer in chars.
        #[test]
        fn cells_are_inert(s in any::<String>()) {
            let cell = text(&s);
            prop_assert!(!cell.chars().any(char::is_control));
            let start = cell.trim_start_matches(' ');
            prop_assert!(!start.starts_with(['=', '+', '-', '@']));
            let needs_nothing = !s.chars().any(char::is_control)
                && !s.trim_start_matches(' ').starts_with(FORMULA_STARTS);
            if needs_nothing {
                prop_assert_eq!(cell.as_ref(), s.as_str());
            }
            // Only the documented changes: one character for one, and perhaps a leading '.
            let (n, m) = (cell.chars().count(), s.chars().count());
            prop_assert!(n == m || (n == m + 1 && cell.starts_with('\'')));
            let kept = cell.chars().skip(n - m).zip(s.chars());
            for (got, was) in kept {
                let replaced = was.is_control() && got == char::REPLACEMENT_CHARACTER;
                prop_assert!(got == was || replaced, "{:?} became {:?}", was, got);
            }
        }
    }
}
