//! The header row and the checks on each data row.

use csv::StringRecord;
use time::Date;

use crate::error::{HeaderError, HeaderErrorKind, RowError, RowErrorKind};
use crate::model::{Column, EmployeeNumber, EmploymentType, EventKind, PersonnelEvent};
use crate::text::{collapse_spaces, nfkc_trim, parse_date, shorten};

/// Header problems reported before the list is cut (the missing columns
/// come on top), so that a header of a million commas stays cheap.
const MAX_HEADER_ERRORS: usize = 100;

/// Where each known column sits in the file.
#[derive(Debug)]
pub(crate) struct Header {
    width: usize,
    positions: [Option<usize>; Column::ALL.len()],
}

impl Header {
    /// Reads the header row; every problem is reported, not just the first.
    pub(crate) fn read(line: usize, record: &StringRecord) -> Result<Header, Vec<HeaderError>> {
        let mut positions = [None; Column::ALL.len()];
        let mut errors = Vec::new();
        for (i, raw) in record.iter().enumerate() {
            let position = i + 1;
            let name = nfkc_trim(raw);
            let kind = if name.is_empty() {
                HeaderErrorKind::Blank { position }
            } else if let Some(column) = Column::from_header(&name) {
                match positions[column.index()] {
                    Some(first) => HeaderErrorKind::Duplicate {
                        column,
                        first_position: first + 1,
                        position,
                    },
                    None => {
                        positions[column.index()] = Some(i);
                        continue;
                    }
                }
            } else {
                HeaderErrorKind::Unknown {
                    name: shorten(&name),
                    position,
                }
            };
            if errors.len() < MAX_HEADER_ERRORS {
                errors.push(HeaderError { line, kind });
            }
        }
        for column in Column::REQUIRED {
            if positions[column.index()].is_none() {
                errors.push(HeaderError {
                    line,
                    kind: HeaderErrorKind::Missing { column },
                });
            }
        }
        if errors.is_empty() {
            Ok(Header {
                width: record.len(),
                positions,
            })
        } else {
            Err(errors)
        }
    }

    pub(crate) fn width(&self) -> usize {
        self.width
    }
}

/// The outcome of checking one row: its employee number when that much is
/// valid (for the duplicate check), and the event or what is wrong.
pub(crate) struct Checked {
    pub(crate) employee_number: Option<EmployeeNumber>,
    pub(crate) result: Result<PersonnelEvent, Vec<RowError>>,
}

/// Checks one data row whose field count matches the header.
pub(crate) fn check(line: usize, header: &Header, record: &StringRecord) -> Checked {
    let mut row = RowCheck {
        line,
        header,
        record,
        errors: Vec::new(),
    };

    let employee_number = row.required(Column::EmployeeNumber, |v| {
        v.parse::<EmployeeNumber>()
            .map_err(|_| RowErrorKind::EmployeeNumber)
    });
    let kind = row.required(Column::EventKind, |v| {
        v.parse::<EventKind>().map_err(|_| RowErrorKind::EventKind)
    });
    let effective = row.required(Column::Effective, date);
    let name_kanji = row.optional(Column::NameKanji, name_kanji);
    let name_kana = row.optional(Column::NameKana, name_kana);
    let name_romaji = row.optional(Column::NameRomaji, name_romaji);
    let birth_date = row.optional(Column::BirthDate, date);
    let employment = row.optional(Column::Employment, |v| {
        v.parse::<EmploymentType>()
            .map_err(|_| RowErrorKind::Employment)
    });
    let org_unit_code = row.optional(Column::OrgUnitCode, org_unit_code);
    let title = row.optional(Column::Title, |v| Ok(v.to_owned()));
    let note = row.optional(Column::Note, |v| Ok(v.to_owned()));

    if let (Some(birth), Some(effective)) = (birth_date, effective) {
        if birth >= effective {
            row.fail(
                Column::BirthDate,
                None,
                RowErrorKind::BirthDateNotBeforeEffective,
            );
        }
    }
    if let Some(kind) = kind {
        for column in Column::ALL {
            // Always-required columns have been reported as `Required`.
            if column.required_for(kind)
                && !Column::REQUIRED.contains(&column)
                && row.raw(column).is_none()
            {
                row.fail(column, None, RowErrorKind::RequiredForKind(kind));
            }
        }
    }

    let result = match (kind, effective, employee_number.clone()) {
        (Some(kind), Some(effective), Some(employee_number)) if row.errors.is_empty() => {
            Ok(PersonnelEvent {
                employee_number,
                kind,
                effective,
                name_kanji,
                name_kana,
                name_romaji,
                birth_date,
                employment,
                org_unit_code,
                title,
                note,
            })
        }
        _ => Err(row.errors),
    };
    Checked {
        employee_number,
        result,
    }
}

struct RowCheck<'a> {
    line: usize,
    header: &'a Header,
    record: &'a StringRecord,
    errors: Vec<RowError>,
}

impl<'a> RowCheck<'a> {
    /// The trimmed value of a column, none if the column is absent or blank.
    fn raw(&self, column: Column) -> Option<&'a str> {
        let i = self.header.positions[column.index()]?;
        let v = self.record.get(i)?.trim();
        (!v.is_empty()).then_some(v)
    }

    fn fail(&mut self, column: Column, value: Option<&str>, kind: RowErrorKind) {
        self.errors.push(RowError {
            line: self.line,
            column: Some(column),
            value: value.map(shorten),
            kind,
        });
    }

    fn required<T>(
        &mut self,
        column: Column,
        read: impl FnOnce(&str) -> Result<T, RowErrorKind>,
    ) -> Option<T> {
        if self.raw(column).is_none() {
            self.fail(column, None, RowErrorKind::Required);
            return None;
        }
        self.optional(column, read)
    }

    /// Checks a value that may be blank: control characters, then length,
    /// then the column's own rule.
    fn optional<T>(
        &mut self,
        column: Column,
        read: impl FnOnce(&str) -> Result<T, RowErrorKind>,
    ) -> Option<T> {
        let raw = self.raw(column)?;
        // 備考 may span lines; nothing else may hold a control character.
        let allowed = |c: char| column == Column::Note && (c == '\n' || c == '\r');
        if raw.chars().any(|c| c.is_control() && !allowed(c)) {
            self.fail(column, None, RowErrorKind::ControlChar);
            return None;
        }
        if let Some(limit) = column.max_chars() {
            let length = raw.chars().count();
            if length > limit {
                self.fail(column, None, RowErrorKind::TooLong { limit, length });
                return None;
            }
        }
        match read(raw) {
            Ok(v) => Some(v),
            Err(kind) => {
                self.fail(column, Some(raw), kind);
                None
            }
        }
    }
}

fn date(v: &str) -> Result<Date, RowErrorKind> {
    parse_date(v).ok_or(RowErrorKind::Date)
}

/// 氏名: family and given name with a space between; kept as written (no
/// NFKC, which would replace compatibility ideographs some names use) but
/// with the space normalised.
fn name_kanji(v: &str) -> Result<String, RowErrorKind> {
    let name = collapse_spaces(v);
    if name.contains(' ') {
        Ok(name)
    } else {
        Err(RowErrorKind::NameFormat)
    }
}

/// 氏名カナ: full-width katakana (after NFKC), the long-vowel mark ー, the
/// middle dot ・ of foreign names, and spaces.
fn name_kana(v: &str) -> Result<String, RowErrorKind> {
    let kana = collapse_spaces(&nfkc_trim(v));
    let ok = |c: char| matches!(c, '\u{30A1}'..='\u{30FA}' | 'ー' | '・' | 'ヽ' | 'ヾ' | ' ');
    if kana.chars().all(ok) && kana.chars().any(|c| c != ' ') {
        Ok(kana)
    } else {
        Err(RowErrorKind::Kana)
    }
}

/// 氏名ローマ字: ASCII letters, spaces, hyphens and apostrophes (a typographic
/// apostrophe counts as one), with at least one letter.
fn name_romaji(v: &str) -> Result<String, RowErrorKind> {
    let romaji = collapse_spaces(&nfkc_trim(v).replace('\u{2019}', "'"));
    let ok = |c: char| c.is_ascii_alphabetic() || matches!(c, ' ' | '-' | '\'');
    if romaji.chars().all(ok) && romaji.chars().any(|c| c.is_ascii_alphabetic()) {
        Ok(romaji)
    } else {
        Err(RowErrorKind::Romaji)
    }
}

/// 所属コード: ASCII letters, digits, `_` and `-` after NFKC.
fn org_unit_code(v: &str) -> Result<String, RowErrorKind> {
    let code = nfkc_trim(v);
    let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-');
    if code.chars().all(ok) {
        Ok(code)
    } else {
        Err(RowErrorKind::OrgUnitCode)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kanji_names_need_a_space_and_keep_their_glyphs() {
        assert_eq!(name_kanji("江戸川\u{3000}太郎"), Ok("江戸川 太郎".into()));
        assert_eq!(name_kanji("髙﨑  花子"), Ok("髙﨑 花子".into()));
        // U+FA19 is a compatibility ideograph NFKC would replace.
        assert_eq!(name_kanji("\u{FA19}田 一郎"), Ok("\u{FA19}田 一郎".into()));
        assert_eq!(name_kanji("江戸川太郎"), Err(RowErrorKind::NameFormat));
    }

    #[test]
    fn kana_accepts_katakana_only() {
        assert_eq!(name_kana("ｴﾄﾞｶﾞﾜ ﾀﾛｳ"), Ok("エドガワ タロウ".into()));
        assert_eq!(name_kana("スミス・ジョーン"), Ok("スミス・ジョーン".into()));
        for bad in ["えどがわ", "エドガワ太郎", "Edogawa", "ー1"] {
            assert_eq!(name_kana(bad), Err(RowErrorKind::Kana), "{bad}");
        }
    }

    #[test]
    fn romaji_accepts_ascii_letters() {
        assert_eq!(
            name_romaji("Ｅｄｏｇａｗａ  Taro"),
            Ok("Edogawa Taro".into())
        );
        assert_eq!(
            name_romaji("O’Brien Mary-Ann"),
            Ok("O'Brien Mary-Ann".into())
        );
        for bad in ["Tarō", "Taro1", "-", "江戸川"] {
            assert_eq!(name_romaji(bad), Err(RowErrorKind::Romaji), "{bad}");
        }
    }

    #[test]
    fn org_unit_codes_are_ascii() {
        assert_eq!(org_unit_code("ＳＯＵＭＵ－０１"), Ok("SOUMU-01".into()));
        assert_eq!(org_unit_code("総務課"), Err(RowErrorKind::OrgUnitCode));
        assert_eq!(org_unit_code("a.b"), Err(RowErrorKind::OrgUnitCode));
    }
}
