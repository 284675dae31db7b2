//! What a parsed row means: the personnel event and its vocabulary.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::Date;

use crate::text::nfkc_trim;

/// A value that is not one of the accepted words for an enum of this crate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an accepted value: {0:?}")]
pub struct UnknownValue(pub String);

/// 異動種別: what happened to the person. K17.3 requires accounts to follow
/// these events promptly (速やかに).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// 採用: the person joins; the account is created.
    Hire,
    /// 異動: the person moves to another unit; grants tied to the old post end.
    Transfer,
    /// 派遣: the person is seconded to another organisation.
    Dispatch,
    /// 退職: the person leaves; the account can never log in after the date.
    Retire,
}

impl EventKind {
    /// Every kind, in the order HR usually lists them.
    pub const ALL: [EventKind; 4] = [Self::Hire, Self::Transfer, Self::Dispatch, Self::Retire];

    /// Stable English code: `hire`, `transfer`, `dispatch`, `retire`.
    pub const fn code(self) -> &'static str {
        match self {
            Self::Hire => "hire",
            Self::Transfer => "transfer",
            Self::Dispatch => "dispatch",
            Self::Retire => "retire",
        }
    }

    /// The Japanese word HR writes: 採用, 異動, 派遣, 退職.
    pub const fn ja(self) -> &'static str {
        match self {
            Self::Hire => "採用",
            Self::Transfer => "異動",
            Self::Dispatch => "派遣",
            Self::Retire => "退職",
        }
    }
}

impl FromStr for EventKind {
    type Err = UnknownValue;

    /// Accepts the Japanese word or the English code (any ASCII case), after
    /// NFKC normalisation and trimming.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = nfkc_trim(s);
        Self::ALL
            .into_iter()
            .find(|k| s == k.ja() || s.eq_ignore_ascii_case(k.code()))
            .ok_or(UnknownValue(s))
    }
}

/// 雇用形態: the employment type, the kinds of 職員等 of Y2.1.10.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmploymentType {
    /// 正規: a regular (permanent) official.
    Regular,
    /// 再任用: re-appointed after retirement age.
    Reappointed,
    /// 非常勤: part-time (会計年度任用職員 and the like).
    PartTime,
    /// 臨時: temporary.
    Temporary,
    /// 派遣: a worker sent by a staffing agency (not the 派遣 event, which
    /// seconds the ward's own official elsewhere).
    Dispatched,
}

impl EmploymentType {
    /// Every type.
    pub const ALL: [EmploymentType; 5] = [
        Self::Regular,
        Self::Reappointed,
        Self::PartTime,
        Self::Temporary,
        Self::Dispatched,
    ];

    /// Stable English code: `regular`, `reappointed`, `part_time`,
    /// `temporary`, `dispatched`.
    pub const fn code(self) -> &'static str {
        match self {
            Self::Regular => "regular",
            Self::Reappointed => "reappointed",
            Self::PartTime => "part_time",
            Self::Temporary => "temporary",
            Self::Dispatched => "dispatched",
        }
    }

    /// The Japanese word HR writes: 正規, 再任用, 非常勤, 臨時, 派遣.
    pub const fn ja(self) -> &'static str {
        match self {
            Self::Regular => "正規",
            Self::Reappointed => "再任用",
            Self::PartTime => "非常勤",
            Self::Temporary => "臨時",
            Self::Dispatched => "派遣",
        }
    }
}

impl FromStr for EmploymentType {
    type Err = UnknownValue;

    /// Accepts the Japanese word or the English code (any ASCII case), after
    /// NFKC normalisation and trimming.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = nfkc_trim(s);
        Self::ALL
            .into_iter()
            .find(|k| s == k.ja() || s.eq_ignore_ascii_case(k.code()))
            .ok_or(UnknownValue(s))
    }
}

/// 職員番号: the HR system's employee number, 1 to 10 ASCII digits after NFKC.
/// Leading zeros are significant and kept.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EmployeeNumber(String);

impl EmployeeNumber {
    /// The longest number accepted.
    pub const MAX_DIGITS: usize = 10;

    /// The number as digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for EmployeeNumber {
    type Err = UnknownValue;

    /// Normalises with NFKC (so full-width digits are accepted), trims, and
    /// accepts 1 to 10 ASCII digits.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = nfkc_trim(s);
        if (1..=Self::MAX_DIGITS).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(s))
        } else {
            Err(UnknownValue(s))
        }
    }
}

impl TryFrom<String> for EmployeeNumber {
    type Error = UnknownValue;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<EmployeeNumber> for String {
    fn from(n: EmployeeNumber) -> String {
        n.0
    }
}

impl fmt::Display for EmployeeNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<str> for EmployeeNumber {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for EmployeeNumber {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

/// One personnel event, as read from one valid row. Dates serialise as
/// `YYYY-MM-DD`; enums as their English codes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonnelEvent {
    /// 職員番号.
    pub employee_number: EmployeeNumber,
    /// 異動種別.
    pub kind: EventKind,
    /// 発令日: the day the event takes effect.
    #[serde(with = "iso_date")]
    pub effective: Date,
    /// 氏名: family and given name separated by one ASCII space (a
    /// full-width or repeated space in the file is normalised to it);
    /// otherwise kept as written, so 異体字 survive.
    pub name_kanji: Option<String>,
    /// 氏名カナ: katakana after NFKC (half-width kana become full-width),
    /// runs of spaces collapsed to one ASCII space.
    pub name_kana: Option<String>,
    /// 氏名ローマ字: ASCII after NFKC, runs of spaces collapsed.
    pub name_romaji: Option<String>,
    /// 生年月日: kept only to reject passwords built from it; never list it.
    #[serde(default, with = "iso_date_opt")]
    pub birth_date: Option<Date>,
    /// 雇用形態.
    pub employment: Option<EmploymentType>,
    /// 所属コード: the unit the person belongs to from `effective` on (the
    /// destination for 異動 and 派遣). ASCII after NFKC.
    pub org_unit_code: Option<String>,
    /// 役職, trimmed, otherwise as written.
    pub title: Option<String>,
    /// 備考, trimmed, otherwise as written (line breaks allowed).
    pub note: Option<String>,
}

/// A CSV column this crate knows, named in the header by its Japanese name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Column {
    /// 職員番号 (always required).
    EmployeeNumber,
    /// 異動種別 (always required).
    EventKind,
    /// 発令日 (always required).
    Effective,
    /// 氏名.
    NameKanji,
    /// 氏名カナ.
    NameKana,
    /// 氏名ローマ字.
    NameRomaji,
    /// 生年月日.
    BirthDate,
    /// 雇用形態.
    Employment,
    /// 所属コード.
    OrgUnitCode,
    /// 役職.
    Title,
    /// 備考.
    Note,
}

impl Column {
    /// Every column, in the order of the documented layout.
    pub const ALL: [Column; 11] = [
        Self::EmployeeNumber,
        Self::EventKind,
        Self::Effective,
        Self::NameKanji,
        Self::NameKana,
        Self::NameRomaji,
        Self::BirthDate,
        Self::Employment,
        Self::OrgUnitCode,
        Self::Title,
        Self::Note,
    ];

    /// Columns every file must have.
    pub const REQUIRED: [Column; 3] = [Self::EmployeeNumber, Self::EventKind, Self::Effective];

    /// The header name HR writes.
    pub const fn ja(self) -> &'static str {
        match self {
            Self::EmployeeNumber => "職員番号",
            Self::EventKind => "異動種別",
            Self::Effective => "発令日",
            Self::NameKanji => "氏名",
            Self::NameKana => "氏名カナ",
            Self::NameRomaji => "氏名ローマ字",
            Self::BirthDate => "生年月日",
            Self::Employment => "雇用形態",
            Self::OrgUnitCode => "所属コード",
            Self::Title => "役職",
            Self::Note => "備考",
        }
    }

    /// Stable English code, the name of the matching [`PersonnelEvent`] field
    /// (`event_kind` for `kind`).
    pub const fn code(self) -> &'static str {
        match self {
            Self::EmployeeNumber => "employee_number",
            Self::EventKind => "event_kind",
            Self::Effective => "effective",
            Self::NameKanji => "name_kanji",
            Self::NameKana => "name_kana",
            Self::NameRomaji => "name_romaji",
            Self::BirthDate => "birth_date",
            Self::Employment => "employment",
            Self::OrgUnitCode => "org_unit_code",
            Self::Title => "title",
            Self::Note => "note",
        }
    }

    /// The column a header cell names, after NFKC and trimming.
    pub fn from_header(name: &str) -> Option<Column> {
        let name = nfkc_trim(name);
        Self::ALL.into_iter().find(|c| c.ja() == name)
    }

    /// Whether a row of this kind must fill this column.
    pub const fn required_for(self, kind: EventKind) -> bool {
        match self {
            Self::EmployeeNumber | Self::EventKind | Self::Effective => true,
            Self::NameKanji | Self::NameKana | Self::BirthDate | Self::Employment => {
                matches!(kind, EventKind::Hire)
            }
            Self::OrgUnitCode => !matches!(kind, EventKind::Retire),
            Self::NameRomaji | Self::Title | Self::Note => false,
        }
    }

    /// The most characters a value may have, where the rule is a length.
    pub const fn max_chars(self) -> Option<usize> {
        match self {
            Self::NameKanji | Self::NameKana | Self::NameRomaji => Some(100),
            Self::OrgUnitCode => Some(32),
            Self::Title => Some(50),
            Self::Note => Some(200),
            Self::EmployeeNumber
            | Self::EventKind
            | Self::Effective
            | Self::BirthDate
            | Self::Employment => None,
        }
    }

    pub(crate) const fn index(self) -> usize {
        self as usize
    }
}

mod iso_date {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::macros::format_description;
    use time::Date;

    pub fn serialize<S: Serializer>(d: &Date, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!(
            "{:04}-{:02}-{:02}",
            d.year(),
            u8::from(d.month()),
            d.day()
        ))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Date, D::Error> {
        let s = String::deserialize(d)?;
        Date::parse(&s, format_description!("[year]-[month]-[day]"))
            .map_err(serde::de::Error::custom)
    }
}

mod iso_date_opt {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::Date;

    pub fn serialize<S: Serializer>(d: &Option<Date>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::iso_date::serialize(d, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Date>, D::Error> {
        #[derive(Deserialize)]
        struct Wrap(#[serde(with = "super::iso_date")] Date);
        Ok(Option::<Wrap>::deserialize(d)?.map(|Wrap(d)| d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_parse_from_japanese_and_english() {
        for k in EventKind::ALL {
            assert_eq!(k.ja().parse::<EventKind>(), Ok(k));
            assert_eq!(k.code().parse::<EventKind>(), Ok(k));
            assert_eq!(k.code().to_uppercase().parse::<EventKind>(), Ok(k));
        }
        assert_eq!(" ｈｉｒｅ ".parse::<EventKind>(), Ok(EventKind::Hire));
        assert!("転勤".parse::<EventKind>().is_err());
        for e in EmploymentType::ALL {
            assert_eq!(e.ja().parse::<EmploymentType>(), Ok(e));
            assert_eq!(e.code().parse::<EmploymentType>(), Ok(e));
        }
        assert!("正社員".parse::<EmploymentType>().is_err());
    }

    #[test]
    fn serde_uses_english_codes_and_iso_dates() {
        let ev = PersonnelEvent {
            employee_number: "０００１２".parse().unwrap(),
            kind: EventKind::Dispatch,
            effective: time::macros::date!(2026 - 04 - 01),
            name_kanji: None,
            name_kana: None,
            name_romaji: None,
            birth_date: Some(time::macros::date!(1990 - 01 - 02)),
            employment: Some(EmploymentType::PartTime),
            org_unit_code: None,
            title: None,
            note: None,
        };
        let v = serde_json_like(&ev);
        assert!(v.contains("\"employee_number\":\"00012\""), "{v}");
        assert!(v.contains("\"kind\":\"dispatch\""), "{v}");
        assert!(v.contains("\"effective\":\"2026-04-01\""), "{v}");
        assert!(v.contains("\"birth_date\":\"1990-01-02\""), "{v}");
        assert!(v.contains("\"employment\":\"part_time\""), "{v}");
    }

    /// The crate has no JSON dependency; TOML shows the same serde names.
    fn serde_json_like(ev: &PersonnelEvent) -> String {
        let t = toml::to_string(ev).unwrap();
        t.lines()
            .map(|l| {
                let (k, v) = l.split_once(" = ").unwrap();
                format!("\"{k}\":{v}")
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    #[test]
    fn serde_round_trips() {
        let ev = PersonnelEvent {
            employee_number: "42".parse().unwrap(),
            kind: EventKind::Hire,
            effective: time::macros::date!(2026 - 04 - 01),
            name_kanji: Some("江戸川 太郎".into()),
            name_kana: Some("エドガワ タロウ".into()),
            name_romaji: None,
            birth_date: Some(time::macros::date!(2000 - 12 - 31)),
            employment: Some(EmploymentType::Regular),
            org_unit_code: Some("SOUMU-01".into()),
            title: None,
            note: None,
        };
        let back: PersonnelEvent = toml::from_str(&toml::to_string(&ev).unwrap()).unwrap();
        assert_eq!(back, ev);
    }

    #[test]
    fn employee_numbers_keep_leading_zeros_and_reject_the_rest() {
        assert_eq!("0001".parse::<EmployeeNumber>().unwrap().as_str(), "0001");
        assert_eq!("１２３".parse::<EmployeeNumber>().unwrap().as_str(), "123");
        for bad in ["", "12345678901", "12a", "-1", "1 2", "١٢"] {
            assert!(bad.parse::<EmployeeNumber>().is_err(), "{bad}");
        }
    }
}
