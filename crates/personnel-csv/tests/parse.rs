//! The personnel CSV end to end: encodings, every error code with its line
//! and column, mixed files, and the sample files.

use mamori_personnel_csv::{
    parse, Column, EmploymentType, Encoding, ErrorCode, EventKind, FileError, HeaderErrorKind,
    PersonnelEvent, MAX_BYTES, MAX_ROWS, MESSAGES_EN, MESSAGES_JA,
};
use time::macros::date;

const HEADER: &str =
    "職員番号,異動種別,発令日,氏名,氏名カナ,氏名ローマ字,生年月日,雇用形態,所属コード,役職,備考";
const SAMPLE_UTF8: &str = include_str!("../testdata/sample-utf8.csv");
const SAMPLE_SJIS: &[u8] = include_bytes!("../testdata/sample-sjis.csv");

fn event(number: &str, kind: EventKind, effective: time::Date) -> PersonnelEvent {
    PersonnelEvent {
        employee_number: number.parse().unwrap(),
        kind,
        effective,
        name_kanji: None,
        name_kana: None,
        name_romaji: None,
        birth_date: None,
        employment: None,
        org_unit_code: None,
        title: None,
        note: None,
    }
}

fn s(v: &str) -> Option<String> {
    Some(v.to_owned())
}

/// The events of `testdata/sample-*.csv`, with the lines they are on.
fn sample_events() -> Vec<(usize, PersonnelEvent)> {
    vec![
        (
            2,
            PersonnelEvent {
                name_kanji: s("江戸川 太郎"),
                name_kana: s("エドガワ タロウ"),
                name_romaji: s("Edogawa Taro"),
                birth_date: Some(date!(1998 - 05 - 12)),
                employment: Some(EmploymentType::Regular),
                org_unit_code: s("SOUMU-01"),
                title: s("主事"),
                note: s("新規採用"),
                ..event("0012345", EventKind::Hire, date!(2026 - 04 - 01))
            },
        ),
        (
            3,
            PersonnelEvent {
                name_kanji: s("葛西 花子"),
                name_kana: s("カサイ ハナコ"),
                birth_date: Some(date!(1998 - 07 - 07)),
                employment: Some(EmploymentType::PartTime),
                org_unit_code: s("KUMIN-03"),
                note: s("会計年度任用職員"),
                ..event("0012346", EventKind::Hire, date!(2026 - 04 - 01))
            },
        ),
        (
            4,
            PersonnelEvent {
                name_kanji: s("小岩 一郎"),
                org_unit_code: s("KIKAKU-02"),
                title: s("係長"),
                note: s("総務課から企画課へ"),
                ..event("0009876", EventKind::Transfer, date!(2026 - 04 - 01))
            },
        ),
        (
            5,
            PersonnelEvent {
                org_unit_code: s("TOKYO-KOIKI"),
                note: s("東京都へ派遣"),
                ..event("0007777", EventKind::Dispatch, date!(2026 - 04 - 01))
            },
        ),
        (
            6,
            PersonnelEvent {
                name_kanji: s("瑞江 次郎"),
                note: s("定年退職"),
                ..event("0005555", EventKind::Retire, date!(2026 - 03 - 31))
            },
        ),
        (
            7,
            PersonnelEvent {
                name_kanji: s("鹿骨 三郎"),
                name_kana: s("シシボネ サブロウ"),
                name_romaji: s("Shishibone Saburo"),
                birth_date: Some(date!(1966 - 02 - 03)),
                employment: Some(EmploymentType::Reappointed),
                org_unit_code: s("SOUMU-01"),
                note: s("定年後再任用、\"短時間\""),
                ..event("0001111", EventKind::Hire, date!(2026 - 04 - 01))
            },
        ),
    ]
}

fn valid_events(bytes: &[u8], encoding: Encoding) -> Vec<(usize, PersonnelEvent)> {
    let parsed = parse(bytes).unwrap_or_else(|e| panic!("file error: {e}"));
    assert_eq!(parsed.encoding, encoding);
    assert!(
        parsed.is_valid(),
        "{:?}",
        parsed.errors().collect::<Vec<_>>()
    );
    parsed.events().map(|(l, e)| (l, e.clone())).collect()
}

#[test]
fn good_utf8_file() {
    assert_eq!(
        valid_events(SAMPLE_UTF8.as_bytes(), Encoding::Utf8),
        sample_events()
    );
}

#[test]
fn the_same_file_in_shift_jis() {
    let (bytes, _, unmappable) = encoding_rs::SHIFT_JIS.encode(SAMPLE_UTF8);
    assert!(!unmappable);
    assert!(
        std::str::from_utf8(&bytes).is_err(),
        "the test file must not be UTF-8"
    );
    assert_eq!(valid_events(&bytes, Encoding::ShiftJis), sample_events());
}

#[test]
fn utf8_with_bom() {
    let bytes = [b"\xEF\xBB\xBF", SAMPLE_UTF8.as_bytes()].concat();
    assert_eq!(valid_events(&bytes, Encoding::Utf8), sample_events());
}

#[test]
fn crlf_line_ends() {
    let crlf = SAMPLE_UTF8.replace('\n', "\r\n");
    assert_eq!(
        valid_events(crlf.as_bytes(), Encoding::Utf8),
        sample_events()
    );
}

#[test]
fn sample_files_cover_every_kind_and_agree() {
    let sjis = valid_events(SAMPLE_SJIS, Encoding::ShiftJis);
    assert_eq!(sjis, sample_events());
    for kind in EventKind::ALL {
        assert!(sjis.iter().any(|(_, e)| e.kind == kind), "{kind:?}");
    }
}

#[test]
fn header_order_spaces_and_width_are_free() {
    let csv = " 発令日 ,ｼｮｸｲﾝﾊﾞﾝｺﾞｳ,異動種別,所属コード\n\
               ２０２６／４／１,x,x,x\n";
    // Half-width katakana is not the kanji header name; NFKC cannot help.
    assert!(matches!(
        parse(csv.as_bytes()),
        Err(FileError::Header { .. })
    ));
    let csv = " 発令日 ,　職員番号　,異動種別,所属コード\n\
               ２０２６／４／１,０１２,ＴＲＡＮＳＦＥＲ,ＳＯＵＭＵ＿０１\n";
    let got = valid_events(csv.as_bytes(), Encoding::Utf8);
    assert_eq!(
        got,
        vec![(
            2,
            PersonnelEvent {
                org_unit_code: s("SOUMU_01"),
                ..event("012", EventKind::Transfer, date!(2026 - 04 - 01))
            }
        )]
    );
}

#[test]
fn lines_count_blank_and_multi_line_rows() {
    let csv = format!(
        "{HEADER}\n\n1,退職,2026-03-31,,,,,,,,\"一行目\r\n二行目\"\n,,,,,,,,,,\n2,退職,2026-03-31,,,,,,,,\n\n\n"
    );
    let parsed = parse(csv.as_bytes()).unwrap();
    let lines: Vec<usize> = parsed.rows.iter().map(|r| r.line).collect();
    assert_eq!(lines, vec![3, 6]);
    assert!(parsed.is_valid());
    let (_, first) = parsed.events().next().unwrap();
    assert_eq!(first.note.as_deref(), Some("一行目\r\n二行目"));
}

#[test]
fn a_header_only_file_has_no_rows() {
    let parsed = parse(format!("{HEADER}\r\n").as_bytes()).unwrap();
    assert!(parsed.rows.is_empty());
}

/// (line, code, column) of every row error.
type Found = Vec<(usize, ErrorCode, Option<&'static str>)>;

fn row_errors(csv: &str) -> Found {
    let parsed = parse(csv.as_bytes()).unwrap_or_else(|e| panic!("file error: {e}"));
    parsed
        .errors()
        .map(|e| (e.line, e.code(), e.column.map(Column::ja)))
        .collect()
}

const HIRE: &str =
    "1,採用,2026-04-01,江戸川 太郎,エドガワ タロウ,Edogawa Taro,1990-01-01,正規,SOUMU-01,主事,メモ";

/// Each case: data rows under the full header, and the errors expected.
fn row_cases() -> Vec<(&'static str, String, Found)> {
    use ErrorCode as C;
    let with = |field: usize, value: &str| {
        let mut f: Vec<String> = HIRE.split(',').map(str::to_owned).collect();
        f[field] = value.to_owned();
        f.join(",")
    };
    vec![
        ("a good hire", HIRE.to_owned(), vec![]),
        (
            "too few fields",
            "1,退職,2026-04-01".into(),
            vec![(2, C::FieldCount, None)],
        ),
        (
            "too many fields",
            format!("{HIRE},"),
            vec![(2, C::FieldCount, None)],
        ),
        (
            "the three always-required values blank",
            " , ,\u{3000},,,,,,,主事,".into(),
            vec![
                (2, C::Required, Some("職員番号")),
                (2, C::Required, Some("異動種別")),
                (2, C::Required, Some("発令日")),
            ],
        ),
        (
            "a hire needs names, birth date, employment and unit",
            "1,採用,2026-04-01,,,,,,,,".into(),
            vec![
                (2, C::RequiredForKind, Some("氏名")),
                (2, C::RequiredForKind, Some("氏名カナ")),
                (2, C::RequiredForKind, Some("生年月日")),
                (2, C::RequiredForKind, Some("雇用形態")),
                (2, C::RequiredForKind, Some("所属コード")),
            ],
        ),
        (
            "a transfer and a dispatch need a unit; a retirement does not",
            "1,異動,2026-04-01,,,,,,,,\n2,派遣,2026-04-01,,,,,,,,\n3,退職,2026-04-01,,,,,,,,"
                .into(),
            vec![
                (2, C::RequiredForKind, Some("所属コード")),
                (3, C::RequiredForKind, Some("所属コード")),
            ],
        ),
        (
            "a tab in 役職",
            with(9, "\"主\t事\""),
            vec![(2, C::ControlChar, Some("役職"))],
        ),
        (
            "a NUL in 氏名",
            with(3, "江戸川 \0太郎"),
            vec![(2, C::ControlChar, Some("氏名"))],
        ),
        (
            "line breaks in 備考 are fine",
            with(10, "\"一\n二\""),
            vec![],
        ),
        (
            "役職 of 51 characters",
            with(9, &"長".repeat(51)),
            vec![(2, C::TooLong, Some("役職"))],
        ),
        ("役職 of 50 characters", with(9, &"長".repeat(50)), vec![]),
        (
            "備考 of 201 characters",
            with(10, &"a".repeat(201)),
            vec![(2, C::TooLong, Some("備考"))],
        ),
        (
            "所属コード of 33",
            with(8, &"A".repeat(33)),
            vec![(2, C::TooLong, Some("所属コード"))],
        ),
        (
            "氏名 of 101",
            with(3, &format!("江 {}", "太".repeat(99))),
            vec![(2, C::TooLong, Some("氏名"))],
        ),
        (
            "letters in 職員番号",
            with(0, "12a"),
            vec![(2, C::EmployeeNumber, Some("職員番号"))],
        ),
        (
            "11 digits",
            with(0, "12345678901"),
            vec![(2, C::EmployeeNumber, Some("職員番号"))],
        ),
        (
            "10 full-width digits",
            with(0, "０１２３４５６７８９"),
            vec![],
        ),
        (
            "an unknown kind",
            with(1, "転勤"),
            vec![(2, C::EventKind, Some("異動種別"))],
        ),
        (
            "no 30 February",
            with(2, "2026-02-30"),
            vec![(2, C::Date, Some("発令日"))],
        ),
        (
            "昭和 has no year 99",
            with(6, "昭和99年1月1日"),
            vec![(2, C::Date, Some("生年月日"))],
        ),
        (
            "born on the effective day",
            with(6, "R8.4.1"),
            vec![(2, C::BirthDate, Some("生年月日"))],
        ),
        (
            "no space in 氏名",
            with(3, "江戸川太郎"),
            vec![(2, C::NameFormat, Some("氏名"))],
        ),
        (
            "hiragana in カナ",
            with(4, "えどがわ たろう"),
            vec![(2, C::Kana, Some("氏名カナ"))],
        ),
        (
            "a macron in ローマ字",
            with(5, "Edogawa Tarō"),
            vec![(2, C::Romaji, Some("氏名ローマ字"))],
        ),
        (
            "an unknown employment",
            with(7, "正社員"),
            vec![(2, C::Employment, Some("雇用形態"))],
        ),
        (
            "kanji in 所属コード",
            with(8, "総務課"),
            vec![(2, C::OrgUnitCode, Some("所属コード"))],
        ),
        (
            "the same number twice",
            format!("{HIRE}\n2,退職,2026-04-01,,,,,,,,\n{}", with(0, "１")),
            vec![(4, C::DuplicateEmployee, Some("職員番号"))],
        ),
        (
            "every problem of a row is listed",
            "x,転勤,昨日,江戸川太郎,えどがわ,Tarō,いつか,正社員,総務課,,".into(),
            vec![
                (2, C::EmployeeNumber, Some("職員番号")),
                (2, C::EventKind, Some("異動種別")),
                (2, C::Date, Some("発令日")),
                (2, C::NameFormat, Some("氏名")),
                (2, C::Kana, Some("氏名カナ")),
                (2, C::Romaji, Some("氏名ローマ字")),
                (2, C::Date, Some("生年月日")),
                (2, C::Employment, Some("雇用形態")),
                (2, C::OrgUnitCode, Some("所属コード")),
            ],
        ),
    ]
}

#[test]
fn row_errors_name_line_column_and_rule() {
    for (name, rows, expected) in row_cases() {
        let csv = format!("{HEADER}\n{rows}\n");
        assert_eq!(row_errors(&csv), expected, "{name}");
    }
}

#[test]
fn a_kind_needs_its_columns_even_when_the_header_lacks_them() {
    let csv = "職員番号,異動種別,発令日\n1,退職,2026-03-31\n2,派遣,2026-04-01\n";
    assert_eq!(
        row_errors(csv),
        vec![(3, ErrorCode::RequiredForKind, Some("所属コード"))]
    );
}

#[test]
fn duplicate_employee_names_the_first_line() {
    let csv = format!("{HEADER}\n{HIRE}\n\n{HIRE}\n");
    let parsed = parse(csv.as_bytes()).unwrap();
    let e = parsed.errors().next().unwrap();
    assert_eq!(e.line, 4);
    assert_eq!(
        e.render(MESSAGES_JA),
        "4行目 「職員番号」: 職員番号 1 は 2 行目にもあります。1ファイルに1人1行にしてください。"
    );
}

/// Each case: a whole file, the code expected and its line.
fn file_cases() -> Vec<(&'static str, Vec<u8>, ErrorCode, Option<usize>)> {
    use ErrorCode as C;
    let sjis = |s: &str| encoding_rs::SHIFT_JIS.encode(s).0.into_owned();
    let many_rows = {
        let mut s = String::from("職員番号,異動種別,発令日\n");
        for i in 0..=MAX_ROWS {
            s.push_str(&format!("{i},退職,20260331\n"));
        }
        s.into_bytes()
    };
    vec![
        ("over 10 MiB", vec![b'\n'; MAX_BYTES + 1], C::TooLarge, None),
        ("a byte neither encoding has", b"a,b\nc,d\n\xFF\n".to_vec(), C::Encoding, Some(3)),
        (
            "a Shift_JIS lead byte without its trail",
            [sjis(&format!("{HEADER}\n1,退職,2026-04-01,,,,,,,,\n")), b"\x82\n".to_vec()].concat(),
            C::Encoding,
            Some(3),
        ),
        ("a BOM, then not UTF-8", [b"\xEF\xBB\xBF".to_vec(), sjis("職員番号")].concat(), C::Encoding, Some(1)),
        ("no bytes", vec![], C::Empty, None),
        ("only a BOM and blank lines", b"\xEF\xBB\xBF\r\n \r\n,,\r\n".to_vec(), C::Empty, None),
        (
            "a quote never closed",
            format!("{HEADER}\n1,退職,2026-04-01,,,,,,,,\n2,退職,\"2026-04-01,,,,,,,,\n3,退職,2026-04-01,,,,,,,,\n")
                .into_bytes(),
            C::UnterminatedQuote,
            Some(3),
        ),
        ("50,001 rows", many_rows, C::TooManyRows, Some(MAX_ROWS + 2)),
        ("a header problem", "職員番号,異動種別\n".as_bytes().to_vec(), C::Header, Some(1)),
    ]
}

#[test]
fn file_errors_name_the_line() {
    for (name, bytes, code, line) in file_cases() {
        let e = parse(&bytes).expect_err(name);
        assert_eq!((e.code(), e.line()), (code, line), "{name}: {e}");
    }
}

/// (line, code, column, position) of every header error.
type HeaderFound = Vec<(usize, ErrorCode, Option<&'static str>, Option<usize>)>;

/// Each case: a header, and the errors expected.
fn header_cases() -> Vec<(&'static str, &'static str, HeaderFound)> {
    use ErrorCode as C;
    vec![
        (
            "an unknown column",
            "職員番号,異動種別,発令日,部署",
            vec![(1, C::UnknownColumn, Some("部署"), Some(4))],
        ),
        (
            "a duplicated column",
            "職員番号,異動種別,発令日,氏名,ｼ,氏名",
            vec![
                (1, C::UnknownColumn, Some("シ"), Some(5)),
                (1, C::DuplicateColumn, Some("氏名"), Some(6)),
            ],
        ),
        (
            "a missing column",
            "職員番号,発令日",
            vec![(1, C::MissingColumn, Some("異動種別"), None)],
        ),
        (
            "a blank column",
            "職員番号,異動種別,発令日,",
            vec![(1, C::BlankColumn, None, Some(4))],
        ),
        (
            "all at once, after blank lines",
            "\n\n備考,備考,,ID",
            vec![
                (3, C::DuplicateColumn, Some("備考"), Some(2)),
                (3, C::BlankColumn, None, Some(3)),
                (3, C::UnknownColumn, Some("ID"), Some(4)),
                (3, C::MissingColumn, Some("職員番号"), None),
                (3, C::MissingColumn, Some("異動種別"), None),
                (3, C::MissingColumn, Some("発令日"), None),
            ],
        ),
    ]
}

#[test]
fn header_errors_name_the_column() {
    for (name, header, expected) in header_cases() {
        let csv = format!("{header}\n1,退職,2026-04-01\n");
        let Err(FileError::Header { errors, .. }) = parse(csv.as_bytes()) else {
            panic!("{name}: expected a header error");
        };
        let got: Vec<_> = errors
            .iter()
            .map(|e| {
                let position = match e.kind {
                    HeaderErrorKind::Unknown { position, .. }
                    | HeaderErrorKind::Duplicate { position, .. }
                    | HeaderErrorKind::Blank { position } => Some(position),
                    HeaderErrorKind::Missing { .. } => None,
                };
                (e.line, e.code(), e.column(), position)
            })
            .collect();
        assert_eq!(got, expected, "{name}");
    }
}

#[test]
fn every_error_code_is_tested() {
    let mut seen: Vec<ErrorCode> = row_cases()
        .into_iter()
        .flat_map(|(_, _, found)| found.into_iter().map(|(_, c, _)| c))
        .chain(file_cases().into_iter().map(|(_, _, c, _)| c))
        .chain(
            header_cases()
                .into_iter()
                .flat_map(|(_, _, f)| f.into_iter().map(|(_, c, _, _)| c)),
        )
        .collect();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen, ErrorCode::ALL.to_vec());
}

#[test]
fn a_mixed_file_keeps_valid_rows_and_lists_bad_ones() {
    let csv = format!(
        "{HEADER}\n{HIRE}\n2,採用,2026-04-01,江戸川太郎,エドガワ ジロウ,,1990-01-01,正社員,SOUMU-01,,\n\
         3,退職,2026-03-31,,,,,,,,\n4,異動\n"
    );
    let parsed = parse(csv.as_bytes()).unwrap();
    let valid: Vec<(usize, &str)> = parsed
        .events()
        .map(|(l, e)| (l, e.employee_number.as_str()))
        .collect();
    assert_eq!(valid, vec![(2, "1"), (4, "3")]);
    let found: Found = parsed
        .errors()
        .map(|e| (e.line, e.code(), e.column.map(Column::ja)))
        .collect();
    assert_eq!(
        found,
        vec![
            (3, ErrorCode::NameFormat, Some("氏名")),
            (3, ErrorCode::Employment, Some("雇用形態")),
            (5, ErrorCode::FieldCount, None),
        ]
    );
    let errors = parsed.all_or_nothing().unwrap_err();
    assert_eq!(errors.len(), 3);
}

#[test]
fn all_or_nothing_returns_every_event_of_a_clean_file() {
    let events = parse(SAMPLE_SJIS).unwrap().all_or_nothing().unwrap();
    assert_eq!(
        events,
        sample_events()
            .into_iter()
            .map(|(_, e)| e)
            .collect::<Vec<_>>()
    );
}

#[test]
fn messages_render_in_both_languages_with_every_placeholder_filled() {
    let mut rendered = 0;
    for (_, rows, _) in row_cases() {
        let csv = format!("{HEADER}\n{rows}\n");
        for e in parse(csv.as_bytes()).unwrap().errors() {
            for catalog in [MESSAGES_JA, MESSAGES_EN] {
                let m = e.render(catalog);
                assert!(!m.contains('{') && m.contains(&e.line.to_string()), "{m}");
                if let Some(c) = e.column {
                    assert!(m.contains(c.ja()), "{m}");
                }
                rendered += 1;
            }
        }
    }
    for (_, bytes, _, _) in file_cases() {
        let e = parse(&bytes).unwrap_err();
        for catalog in [MESSAGES_JA, MESSAGES_EN] {
            let m = e.render(catalog);
            assert!(!m.contains('{') && !m.contains("csv."), "{m}");
            rendered += 1;
        }
    }
    assert!(rendered > 60);
}

#[test]
fn display_is_japanese() {
    let e = parse("職員番号,異動種別\n".as_bytes()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "1行目: 列名の行に 1 件の誤りがあります。\n1行目: 必須の列「発令日」がありません。"
    );
    let csv = format!("{HEADER}\n1,退職,2026-02-30,,,,,,,,\n");
    let parsed = parse(csv.as_bytes()).unwrap();
    let e = parsed.errors().next().unwrap();
    assert_eq!(
        e.to_string(),
        "2行目 「発令日」: 「2026-02-30」を日付として読めません（例: 2026-04-01、令和8年4月1日、R8.4.1）。"
    );
    assert_eq!(
        e.render(MESSAGES_EN),
        "Line 2, “発令日”: “2026-02-30” is not a date (e.g. 2026-04-01, 令和8年4月1日, R8.4.1)."
    );
}

#[test]
fn long_values_are_shortened_in_messages() {
    let csv = format!("{HEADER}\n1,{},2026-04-01,,,,,,,,\n", "転".repeat(1000));
    let parsed = parse(csv.as_bytes()).unwrap();
    let e = parsed.errors().next().unwrap();
    assert!(e.value.as_ref().unwrap().chars().count() <= 41);
}
