//! Small text helpers shared by the header and field checks.

use time::Date;
use unicode_normalization::UnicodeNormalization;

/// NFKC, then trim. NFKC turns full-width ASCII and the ideographic space
/// into their half-width forms and half-width katakana into full-width.
pub(crate) fn nfkc_trim(s: &str) -> String {
    let n: String = s.nfkc().collect();
    n.trim().to_owned()
}

/// Replaces every run of whitespace (including U+3000) by one ASCII space
/// and trims the ends.
pub(crate) fn collapse_spaces(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The longest value echoed back in an error message.
const ECHO_CHARS: usize = 40;

/// A value cut to a length fit for an error message.
pub(crate) fn shorten(s: &str) -> String {
    if s.chars().count() <= ECHO_CHARS {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(ECHO_CHARS).collect();
        out.push('…');
        out
    }
}

/// Parses a date in any form `mamori_policy::wareki::parse_date` accepts,
/// after NFKC (so ㋿ and ㍻ read as 令和 and 平成).
pub(crate) fn parse_date(raw: &str) -> Option<Date> {
    let s = nfkc_trim(raw);
    // The wareki parser adds the era's first year to the parsed year in
    // `i32`; a long digit run could overflow it. No date form needs more
    // than 8 digits in a row (20260401), nor more than 32 characters.
    if s.chars().count() > 32 || longest_digit_run(&s) > 8 {
        return None;
    }
    mamori_policy::wareki::parse_date(&s)
}

fn longest_digit_run(s: &str) -> usize {
    s.split(|c: char| !c.is_ascii_digit())
        .map(str::len)
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn dates_in_every_form_hr_writes() {
        for (input, expected) in [
            ("2026-04-01", Some(date!(2026 - 04 - 01))),
            ("2026/4/1", Some(date!(2026 - 04 - 01))),
            ("20260401", Some(date!(2026 - 04 - 01))),
            ("令和8年4月1日", Some(date!(2026 - 04 - 01))),
            ("R8.4.1", Some(date!(2026 - 04 - 01))),
            ("２０２６／０４／０１", Some(date!(2026 - 04 - 01))),
            ("㋿8年4月1日", Some(date!(2026 - 04 - 01))),
            ("㍻31年4月30日", Some(date!(2019 - 04 - 30))),
            ("2026-02-30", None),
            ("R99999999999.1.1", None),
            ("R+2147483647.1.1", None),
            ("", None),
        ] {
            assert_eq!(parse_date(input), expected, "{input:?}");
        }
    }

    #[test]
    fn shorten_cuts_long_values() {
        assert_eq!(shorten("abc"), "abc");
        let long = "あ".repeat(100);
        assert_eq!(shorten(&long).chars().count(), ECHO_CHARS + 1);
    }

    #[test]
    fn spaces_collapse() {
        assert_eq!(
            collapse_spaces(" 江戸川\u{3000}\u{3000}太郎 "),
            "江戸川 太郎"
        );
    }
}
