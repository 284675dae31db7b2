//! 和暦 (Japanese era) dates: formatting for officials and parsing of the
//! forms HR systems and people write.

use time::{Date, Month};

/// A Japanese era with its first day (the day the era name took effect).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Era {
    /// 漢字 name, e.g. 「令和」.
    pub name: &'static str,
    /// One-letter abbreviation used in forms, e.g. `R`.
    pub letter: char,
    /// First day of the era (Gregorian).
    pub start: (i32, u8, u8),
}

/// Eras from 明治 on, oldest first.
pub const ERAS: [Era; 5] = [
    Era {
        name: "明治",
        letter: 'M',
        start: (1868, 10, 23),
    },
    Era {
        name: "大正",
        letter: 'T',
        start: (1912, 7, 30),
    },
    Era {
        name: "昭和",
        letter: 'S',
        start: (1926, 12, 25),
    },
    Era {
        name: "平成",
        letter: 'H',
        start: (1989, 1, 8),
    },
    Era {
        name: "令和",
        letter: 'R',
        start: (2019, 5, 1),
    },
];

fn era_start(era: &Era) -> Date {
    let (y, m, d) = era.start;
    // The table above is constant and valid.
    Date::from_calendar_date(y, Month::try_from(m).unwrap_or(Month::January), d)
        .unwrap_or(Date::MIN)
}

/// The era a date falls in and its year within the era (元年 = 1).
pub fn era_of(date: Date) -> Option<(&'static Era, i32)> {
    ERAS.iter()
        .rev()
        .find(|e| date >= era_start(e))
        .map(|e| (e, date.year() - e.start.0 + 1))
}

/// `令和8年11月28日`; 元年 is written as `元年`. Dates before 明治 fall back to
/// the Gregorian `YYYY年M月D日`.
pub fn format_date_ja(date: Date) -> String {
    match era_of(date) {
        Some((era, 1)) => format!(
            "{}元年{}月{}日",
            era.name,
            u8::from(date.month()),
            date.day()
        ),
        Some((era, y)) => format!(
            "{}{}年{}月{}日",
            era.name,
            y,
            u8::from(date.month()),
            date.day()
        ),
        None => format!(
            "{}年{}月{}日",
            date.year(),
            u8::from(date.month()),
            date.day()
        ),
    }
}

/// Turns a Gregorian year into an era year, if the given era covers it.
fn gregorian_year(era: &Era, era_year: i32) -> Option<i32> {
    era.start.0.checked_add(era_year)?.checked_sub(1)
}

/// Parses a date as people and HR systems write it: `2026-04-01`,
/// `2026/4/1`, `20260401`, `令和8年4月1日`, `令和元年5月1日`, `R8.4.1`,
/// `R08/04/01`, `H1.1.8`. Full-width digits are accepted. A date outside
/// the era it names (e.g. `平成32年`, `令和1年4月1日`) is rejected.
pub fn parse_date(input: &str) -> Option<Date> {
    let s: String = input
        .trim()
        .chars()
        .map(|c| match c {
            '０'..='９' => char::from_u32(c as u32 - '０' as u32 + '0' as u32).unwrap_or(c),
            '／' => '/',
            '－' | 'ー' => '-',
            '．' => '.',
            'Ｒ' | 'Ｈ' | 'Ｓ' | 'Ｔ' | 'Ｍ' => {
                char::from_u32(c as u32 - 'Ａ' as u32 + 'A' as u32).unwrap_or(c)
            }
            _ => c,
        })
        .collect();
    if s.is_empty() {
        return None;
    }
    // Era forms.
    let era_prefix = ERAS.iter().find_map(|e| {
        if let Some(rest) = s.strip_prefix(e.name) {
            Some((e, rest))
        } else {
            let mut chars = s.chars();
            let first = chars.next()?;
            (first.to_ascii_uppercase() == e.letter).then(|| (e, chars.as_str()))
        }
    });
    if let Some((era, rest)) = era_prefix {
        let (y, m, d) = split_ymd(rest.replace("元年", "1年").as_str())?;
        if !(1..=200).contains(&y) {
            return None;
        }
        let date = make_date(gregorian_year(era, y)?, m, d)?;
        // The date must fall inside the era it names.
        let next_start = ERAS
            .iter()
            .position(|e| e.name == era.name)
            .and_then(|i| ERAS.get(i + 1))
            .map(era_start);
        if date < era_start(era) || next_start.is_some_and(|n| date >= n) {
            return None;
        }
        return Some(date);
    }
    if s.len() == 8 && s.bytes().all(|b| b.is_ascii_digit()) {
        let y = s[0..4].parse().ok()?;
        let m = s[4..6].parse().ok()?;
        let d = s[6..8].parse().ok()?;
        return make_date(y, m, d);
    }
    let (y, m, d) = split_ymd(&s)?;
    if y < 1000 {
        return None;
    }
    make_date(y, m, d)
}

/// Splits `Y?M?D` where the separators are one of `-`, `/`, `.`, or the
/// kanji 年/月/日.
fn split_ymd(s: &str) -> Option<(i32, u8, u8)> {
    let normalised: String = s
        .chars()
        .map(|c| match c {
            '年' | '月' | '-' | '/' | '.' => ' ',
            '日' => ' ',
            c => c,
        })
        .collect();
    let mut parts = normalised.split_whitespace();
    let y: i32 = parts.next()?.parse().ok()?;
    let m: u8 = parts.next()?.parse().ok()?;
    let d: u8 = parts.next()?.parse().ok()?;
    if parts.next().is_some() {
        return None;
    }
    Some((y, m, d))
}

fn make_date(y: i32, m: u8, d: u8) -> Option<Date> {
    Date::from_calendar_date(y, Month::try_from(m).ok()?, d).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    fn check(input: &str, expected: Option<Date>) {
        assert_eq!(parse_date(input), expected, "input {input:?}");
    }

    #[test]
    fn parses_gregorian_and_era_forms() {
        check("2026-04-01", Some(date!(2026 - 04 - 01)));
        check("2026/4/1", Some(date!(2026 - 04 - 01)));
        check("20260401", Some(date!(2026 - 04 - 01)));
        check("２０２６／４／１", Some(date!(2026 - 04 - 01)));
        check("令和8年4月1日", Some(date!(2026 - 04 - 01)));
        check("R8.4.1", Some(date!(2026 - 04 - 01)));
        check("r08/04/01", Some(date!(2026 - 04 - 01)));
        check("令和元年5月1日", Some(date!(2019 - 05 - 01)));
        check("S55.1.23", Some(date!(1980 - 01 - 23)));
        check("昭和55年1月23日", Some(date!(1980 - 01 - 23)));
        check("H1.1.8", Some(date!(1989 - 01 - 08)));
    }

    #[test]
    fn rejects_dates_outside_their_era_and_garbage() {
        check("平成32年1月1日", None);
        check("令和1年4月1日", None);
        check("H1.1.7", None);
        check("2026-02-30", None);
        check("", None);
        check("R", None);
        check("abc", None);
        check("99/1/1", None);
        check("R2147483647.1.1", None);
        check("R+2147483647.1.1", None);
        check("2147483647-1-1", None);
        check("2026-04-01-02", None);
    }

    #[test]
    fn formats_in_the_era_officials_use() {
        assert_eq!(format_date_ja(date!(2026 - 11 - 28)), "令和8年11月28日");
        assert_eq!(format_date_ja(date!(2019 - 05 - 01)), "令和元年5月1日");
        assert_eq!(format_date_ja(date!(2019 - 04 - 30)), "平成31年4月30日");
        assert_eq!(format_date_ja(date!(1980 - 01 - 23)), "昭和55年1月23日");
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,20}") {
            let _ = parse_date(&s);
        }

        #[test]
        fn format_then_parse_round_trips(days in 0i32..60000) {
            let d = date!(1900 - 01 - 01) + time::Duration::days(days as i64);
            proptest::prop_assert_eq!(parse_date(&format_date_ja(d)), Some(d));
        }
    }
}
