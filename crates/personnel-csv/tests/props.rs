//! Properties: `parse` never panics, whatever it is given, and reads back
//! any valid file it could be given.

use mamori_personnel_csv::{
    parse, EmploymentType, ErrorCode, EventKind, FileError, Params, PersonnelEvent, MESSAGES_EN,
    MESSAGES_JA,
};
use proptest::prelude::*;
use proptest::sample::select;
use time::{Date, Month};

const HEADER: &str =
    "職員番号,異動種別,発令日,氏名,氏名カナ,氏名ローマ字,生年月日,雇用形態,所属コード,役職,備考";

/// Renders every error both ways, so that rendering cannot panic either,
/// and checks each error fills every placeholder its code promises. (A
/// rendered message may hold `{` when the value echoed does.)
fn render_all(result: &Result<mamori_personnel_csv::Parsed, FileError>) {
    fn check(code: ErrorCode, params: Params, ja: String, en: String) {
        for p in code.placeholders() {
            assert!(
                params.iter().any(|(k, _)| k == p),
                "{code}: {{{p}}} not filled"
            );
        }
        assert!(!ja.starts_with("csv.") && !en.starts_with("csv."), "{ja}");
    }
    match result {
        Ok(parsed) => {
            for e in parsed.errors() {
                check(
                    e.code(),
                    e.params(),
                    e.render(MESSAGES_JA),
                    e.render(MESSAGES_EN),
                );
            }
        }
        Err(e) => check(
            e.code(),
            e.params(),
            e.render(MESSAGES_JA),
            e.render(MESSAGES_EN),
        ),
    }
    if let Err(FileError::Header { errors, .. }) = result {
        for e in errors {
            check(
                e.code(),
                e.params(),
                e.render(MESSAGES_JA),
                e.render(MESSAGES_EN),
            );
        }
    }
}

/// Values near the rules' edges, and the bytes CSV cares about.
fn token() -> impl Strategy<Value = String> {
    prop_oneof![
        select(vec![
            "",
            " ",
            "\u{3000}",
            "\"",
            "\"\"",
            ",",
            "\r\n",
            "\n",
            "\r",
            "\0",
            "\t",
            "1",
            "0012345",
            "１２３",
            "12345678901",
            "採用",
            "異動",
            "派遣",
            "退職",
            "hire",
            "RETIRE",
            "転勤",
            "2026-04-01",
            "20260401",
            "令和8年4月1日",
            "R8.4.1",
            "R99999999999.1.1",
            "R+2147483647.1.1",
            "平成32年1月1日",
            "2026-02-30",
            "江戸川 太郎",
            "江戸川太郎",
            "エドガワ タロウ",
            "ｴﾄﾞｶﾞﾜ",
            "えどがわ",
            "Edogawa Taro",
            "Tarō",
            "正規",
            "派遣",
            "正社員",
            "SOUMU-01",
            "総務課",
            "\u{feff}",
            "{line}",
            "\u{FA19}",
        ])
        .prop_map(str::to_owned),
        "\\PC{0,12}",
        "[0-9A-Za-z]{30,40}",
    ]
}

fn field() -> impl Strategy<Value = String> {
    prop_oneof![
        token(),
        token().prop_map(|t| format!("\"{}\"", t.replace('"', "\"\""))),
    ]
}

fn row() -> impl Strategy<Value = String> {
    prop::collection::vec(field(), 0..14).prop_map(|f| f.join(","))
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        // Integration tests have no lib.rs beside them to persist to.
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        render_all(&parse(&bytes));
    }

    #[test]
    fn never_panics_on_arbitrary_text_under_a_valid_header(body in any::<String>()) {
        let csv = format!("{HEADER}\n{body}");
        let result = parse(csv.as_bytes());
        render_all(&result);
        prop_assert!(matches!(result, Ok(_) | Err(FileError::UnterminatedQuote { .. })), "{result:?}");
    }

    #[test]
    fn never_panics_on_csv_like_rows(rows in prop::collection::vec(row(), 0..20), crlf in any::<bool>()) {
        let eol = if crlf { "\r\n" } else { "\n" };
        let csv = format!("{HEADER}{eol}{}", rows.join(eol));
        let result = parse(csv.as_bytes());
        render_all(&result);
        let (sjis, _, _) = encoding_rs::SHIFT_JIS.encode(&csv);
        render_all(&parse(&sjis));
    }

    #[test]
    fn never_panics_on_csv_like_headers(header in row(), rows in prop::collection::vec(row(), 0..5)) {
        let csv = format!("{header}\n{}", rows.join("\n"));
        render_all(&parse(csv.as_bytes()));
    }

    #[test]
    fn reads_back_any_valid_file(events in prop::collection::vec(valid_event(), 0..30), styles in prop::collection::vec(0u8..4, 30)) {
        // Make the numbers unique; the file may name each person once.
        let events: Vec<PersonnelEvent> = events
            .into_iter()
            .enumerate()
            .map(|(i, mut e)| {
                e.employee_number = format!("{:03}{}", i, e.employee_number).parse().unwrap();
                e
            })
            .collect();
        let mut csv = String::from(HEADER);
        for (e, style) in events.iter().zip(styles.iter().cycle()) {
            csv.push('\n');
            csv.push_str(&to_csv_row(e, *style));
        }
        let parsed = parse(csv.as_bytes()).unwrap();
        let errors: Vec<String> = parsed.errors().map(ToString::to_string).collect();
        prop_assert!(errors.is_empty(), "{errors:?}\n{csv}");
        prop_assert_eq!(parsed.all_or_nothing().unwrap(), events);
    }
}

fn date_in(years: std::ops::Range<i32>) -> impl Strategy<Value = Date> {
    (years, 1u8..=12, 1u8..=28)
        .prop_map(|(y, m, d)| Date::from_calendar_date(y, Month::try_from(m).unwrap(), d).unwrap())
}

fn opt(s: impl Strategy<Value = String>) -> impl Strategy<Value = Option<String>> {
    prop::option::of(s)
}

fn valid_event() -> impl Strategy<Value = PersonnelEvent> {
    let kind = select(EventKind::ALL.to_vec());
    let employment = select(EmploymentType::ALL.to_vec());
    let unit = "[A-Za-z0-9_-]{1,32}";
    let kanji = "[江戸川葛西小岩髙﨑]{1,4} [太郎花子一]{1,3}";
    let kana = "[ア-ヴー]{1,8}( [ア-ヴ]{1,8})?";
    let romaji = "[A-Za-z][A-Za-z'-]{0,10}( [A-Za-z]{1,10})?";
    let free = "[あ-ん漢字A-z,\"]([あ-ん漢字A-z,\" ]{0,20}[あ-ん漢字A-z,\"])?";
    (
        ("[0-9]{1,7}", kind, date_in(2000..2100), date_in(1940..1999)),
        (
            opt(kanji.prop_map(String::from)),
            opt(kana.prop_map(String::from)),
            opt(romaji.prop_map(String::from)),
        ),
        (
            prop::option::of(employment),
            opt(unit.prop_map(String::from)),
        ),
        (
            opt(free.prop_map(|s: String| s.chars().take(50).collect())),
            opt(free.prop_map(String::from)),
        ),
    )
        .prop_map(
            |(
                (number, kind, effective, birth),
                (kanji, kana, romaji),
                (employment, unit),
                (title, note),
            )| {
                let hire = kind == EventKind::Hire;
                PersonnelEvent {
                    employee_number: number.parse().unwrap(),
                    kind,
                    effective,
                    name_kanji: if hire {
                        Some(kanji.unwrap_or_else(|| "江戸川 太郎".into()))
                    } else {
                        kanji
                    },
                    name_kana: if hire {
                        Some(kana.unwrap_or_else(|| "エドガワ".into()))
                    } else {
                        kana
                    },
                    name_romaji: romaji,
                    birth_date: hire.then_some(birth),
                    employment: if hire {
                        Some(employment.unwrap_or(EmploymentType::Regular))
                    } else {
                        employment
                    },
                    org_unit_code: if kind == EventKind::Retire {
                        unit
                    } else {
                        Some(unit.unwrap_or_else(|| "X".into()))
                    },
                    title,
                    note,
                }
            },
        )
}

/// Writes an event as a row, every field quoted, dates in one of the forms
/// HR systems use.
fn to_csv_row(e: &PersonnelEvent, style: u8) -> String {
    let date = |d: Date| match style {
        0 => format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day()),
        1 => format!("{}/{}/{}", d.year(), u8::from(d.month()), d.day()),
        2 => format!("{:04}{:02}{:02}", d.year(), u8::from(d.month()), d.day()),
        _ => mamori_policy::wareki::format_date_ja(d),
    };
    let kind = if matches!(style, 0 | 2) {
        e.kind.ja()
    } else {
        e.kind.code()
    };
    let fields = [
        e.employee_number.to_string(),
        kind.to_owned(),
        date(e.effective),
        e.name_kanji.clone().unwrap_or_default(),
        e.name_kana.clone().unwrap_or_default(),
        e.name_romaji.clone().unwrap_or_default(),
        e.birth_date.map(date).unwrap_or_default(),
        e.employment.map(|t| t.ja().to_owned()).unwrap_or_default(),
        e.org_unit_code.clone().unwrap_or_default(),
        e.title.clone().unwrap_or_default(),
        e.note.clone().unwrap_or_default(),
    ];
    fields
        .iter()
        .map(|f| format!("\"{}\"", f.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(",")
}
