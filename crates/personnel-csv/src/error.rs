//! What can be wrong with a file or a row, with stable codes and messages
//! from the catalogs `i18n/ja.toml` and `i18n/en.toml`.

use std::fmt;

use crate::model::{Column, EventKind};
use crate::{MAX_BYTES, MAX_ROWS};

/// Japanese messages, flat TOML: `"csv.code" = "text with {line} …"`.
pub const MESSAGES_JA: &str = include_str!("../i18n/ja.toml");
/// English messages, same keys as [`MESSAGES_JA`].
pub const MESSAGES_EN: &str = include_str!("../i18n/en.toml");

/// A stable error code. [`ErrorCode::as_str`] is the catalog key and what an
/// API should return; it never changes once released.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorCode {
    /// `csv.too_large`: the file is over [`MAX_BYTES`].
    TooLarge,
    /// `csv.encoding`: neither UTF-8 nor Shift_JIS.
    Encoding,
    /// `csv.empty`: no header row.
    Empty,
    /// `csv.unterminated_quote`: a quoted field never closes.
    UnterminatedQuote,
    /// `csv.too_many_rows`: over [`MAX_ROWS`] data rows.
    TooManyRows,
    /// `csv.header`: the header row has the problems listed with it.
    Header,
    /// `csv.unknown_column`: a header names a column this format lacks.
    UnknownColumn,
    /// `csv.duplicate_column`: a column appears twice in the header.
    DuplicateColumn,
    /// `csv.missing_column`: a column every file needs is absent.
    MissingColumn,
    /// `csv.blank_column`: a header cell is empty.
    BlankColumn,
    /// `csv.field_count`: a row has more or fewer fields than the header.
    FieldCount,
    /// `csv.required`: an always-required value is blank.
    Required,
    /// `csv.required_for_kind`: a value this 異動種別 needs is blank or its
    /// column is absent.
    RequiredForKind,
    /// `csv.control_char`: a value holds a control character.
    ControlChar,
    /// `csv.too_long`: a value is longer than its column allows.
    TooLong,
    /// `csv.employee_number`: 職員番号 is not 1–10 digits.
    EmployeeNumber,
    /// `csv.event_kind`: 異動種別 is not one of the four kinds.
    EventKind,
    /// `csv.date`: not a date.
    Date,
    /// `csv.birth_date`: 生年月日 is not before 発令日.
    BirthDate,
    /// `csv.name_format`: 氏名 lacks the space between family and given name.
    NameFormat,
    /// `csv.kana`: 氏名カナ has something other than katakana.
    Kana,
    /// `csv.romaji`: 氏名ローマ字 has something other than ASCII letters.
    Romaji,
    /// `csv.employment`: 雇用形態 is not one of the five types.
    Employment,
    /// `csv.org_unit_code`: 所属コード has characters outside `[A-Za-z0-9_-]`.
    OrgUnitCode,
    /// `csv.duplicate_employee`: the 職員番号 already appeared in the file.
    DuplicateEmployee,
}

impl ErrorCode {
    /// Every code.
    pub const ALL: [ErrorCode; 25] = [
        Self::TooLarge,
        Self::Encoding,
        Self::Empty,
        Self::UnterminatedQuote,
        Self::TooManyRows,
        Self::Header,
        Self::UnknownColumn,
        Self::DuplicateColumn,
        Self::MissingColumn,
        Self::BlankColumn,
        Self::FieldCount,
        Self::Required,
        Self::RequiredForKind,
        Self::ControlChar,
        Self::TooLong,
        Self::EmployeeNumber,
        Self::EventKind,
        Self::Date,
        Self::BirthDate,
        Self::NameFormat,
        Self::Kana,
        Self::Romaji,
        Self::Employment,
        Self::OrgUnitCode,
        Self::DuplicateEmployee,
    ];

    /// The stable string, e.g. `csv.missing_column`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::TooLarge => "csv.too_large",
            Self::Encoding => "csv.encoding",
            Self::Empty => "csv.empty",
            Self::UnterminatedQuote => "csv.unterminated_quote",
            Self::TooManyRows => "csv.too_many_rows",
            Self::Header => "csv.header",
            Self::UnknownColumn => "csv.unknown_column",
            Self::DuplicateColumn => "csv.duplicate_column",
            Self::MissingColumn => "csv.missing_column",
            Self::BlankColumn => "csv.blank_column",
            Self::FieldCount => "csv.field_count",
            Self::Required => "csv.required",
            Self::RequiredForKind => "csv.required_for_kind",
            Self::ControlChar => "csv.control_char",
            Self::TooLong => "csv.too_long",
            Self::EmployeeNumber => "csv.employee_number",
            Self::EventKind => "csv.event_kind",
            Self::Date => "csv.date",
            Self::BirthDate => "csv.birth_date",
            Self::NameFormat => "csv.name_format",
            Self::Kana => "csv.kana",
            Self::Romaji => "csv.romaji",
            Self::Employment => "csv.employment",
            Self::OrgUnitCode => "csv.org_unit_code",
            Self::DuplicateEmployee => "csv.duplicate_employee",
        }
    }

    /// The placeholders an error with this code fills, beyond which the
    /// catalogs may not go. `{line}`, `{column}` and `{value}` as the
    /// catalogs' common ones; `{limit}`, `{expected}` and `{first_line}`
    /// where the rule has a number to name.
    pub const fn placeholders(self) -> &'static [&'static str] {
        match self {
            Self::TooLarge => &["value", "limit"],
            Self::Empty => &[],
            Self::Encoding | Self::UnterminatedQuote => &["line"],
            Self::TooManyRows => &["line", "limit"],
            Self::Header | Self::BlankColumn => &["line", "value"],
            Self::MissingColumn | Self::Required | Self::ControlChar | Self::BirthDate => {
                &["line", "column"]
            }
            Self::UnknownColumn | Self::DuplicateColumn => &["line", "column", "value"],
            Self::FieldCount => &["line", "value", "expected"],
            Self::TooLong => &["line", "column", "value", "limit"],
            Self::DuplicateEmployee => &["line", "column", "value", "first_line"],
            Self::RequiredForKind
            | Self::EmployeeNumber
            | Self::EventKind
            | Self::Date
            | Self::NameFormat
            | Self::Kana
            | Self::Romaji
            | Self::Employment
            | Self::OrgUnitCode => &["line", "column", "value"],
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Placeholder name and value, for a catalog message.
pub type Params = Vec<(&'static str, String)>;

/// A problem with the whole file: nothing in it can be trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileError {
    /// Over [`MAX_BYTES`] bytes.
    TooLarge {
        /// The file's size in bytes.
        size: usize,
    },
    /// Not valid UTF-8 nor valid Shift_JIS (or a UTF-8 BOM followed by
    /// invalid UTF-8).
    Encoding {
        /// The first line with an undecodable byte.
        line: usize,
    },
    /// No header row (nothing but blank lines).
    Empty,
    /// A field opens a quote that never closes, so it would swallow the rest
    /// of the file.
    UnterminatedQuote {
        /// The line where the quote opens.
        line: usize,
    },
    /// More than [`MAX_ROWS`] data rows.
    TooManyRows {
        /// The line of the first row over the limit.
        line: usize,
    },
    /// The header row has problems, all listed (at most 100 besides the
    /// missing columns).
    Header {
        /// The header's line.
        line: usize,
        /// What is wrong, in column order, then the missing columns.
        errors: Vec<HeaderError>,
    },
}

impl FileError {
    /// The stable code.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::TooLarge { .. } => ErrorCode::TooLarge,
            Self::Encoding { .. } => ErrorCode::Encoding,
            Self::Empty => ErrorCode::Empty,
            Self::UnterminatedQuote { .. } => ErrorCode::UnterminatedQuote,
            Self::TooManyRows { .. } => ErrorCode::TooManyRows,
            Self::Header { .. } => ErrorCode::Header,
        }
    }

    /// The line the problem is on, if it is on one.
    pub fn line(&self) -> Option<usize> {
        match self {
            Self::TooLarge { .. } | Self::Empty => None,
            Self::Encoding { line }
            | Self::UnterminatedQuote { line }
            | Self::TooManyRows { line }
            | Self::Header { line, .. } => Some(*line),
        }
    }

    /// Placeholder values for the catalog message.
    pub fn params(&self) -> Params {
        let mut p = Params::new();
        if let Some(line) = self.line() {
            p.push(("line", line.to_string()));
        }
        match self {
            Self::TooLarge { size } => {
                p.push(("value", size.to_string()));
                p.push(("limit", MAX_BYTES.to_string()));
            }
            Self::TooManyRows { .. } => p.push(("limit", MAX_ROWS.to_string())),
            Self::Header { errors, .. } => p.push(("value", errors.len().to_string())),
            Self::Encoding { .. } | Self::Empty | Self::UnterminatedQuote { .. } => {}
        }
        p
    }

    /// The message from `catalog` ([`MESSAGES_JA`] or [`MESSAGES_EN`]); for
    /// a header problem, the summary followed by one line per problem.
    pub fn render(&self, catalog: &str) -> String {
        let mut out = render(catalog, self.code(), &self.params());
        if let Self::Header { errors, .. } = self {
            for e in errors {
                out.push('\n');
                out.push_str(&e.render(catalog));
            }
        }
        out
    }
}

/// Japanese, for the CLI.
impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(MESSAGES_JA))
    }
}

impl std::error::Error for FileError {}

/// One problem in the header row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderError {
    /// The header's line.
    pub line: usize,
    /// What is wrong.
    pub kind: HeaderErrorKind,
}

/// What is wrong with a header cell. Positions count from 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderErrorKind {
    /// A name this format does not have (after NFKC and trimming).
    Unknown {
        /// The name as normalised, shortened if long.
        name: String,
        /// Its position in the header.
        position: usize,
    },
    /// A column named a second time.
    Duplicate {
        /// The column.
        column: Column,
        /// Where it first appears.
        first_position: usize,
        /// Where it appears again.
        position: usize,
    },
    /// A column every file needs is absent.
    Missing {
        /// The column.
        column: Column,
    },
    /// An empty header cell.
    Blank {
        /// Its position in the header.
        position: usize,
    },
}

impl HeaderError {
    /// The stable code.
    pub fn code(&self) -> ErrorCode {
        match self.kind {
            HeaderErrorKind::Unknown { .. } => ErrorCode::UnknownColumn,
            HeaderErrorKind::Duplicate { .. } => ErrorCode::DuplicateColumn,
            HeaderErrorKind::Missing { .. } => ErrorCode::MissingColumn,
            HeaderErrorKind::Blank { .. } => ErrorCode::BlankColumn,
        }
    }

    /// The column's name: as written for an unknown one, none for a blank.
    pub fn column(&self) -> Option<&str> {
        match &self.kind {
            HeaderErrorKind::Unknown { name, .. } => Some(name),
            HeaderErrorKind::Duplicate { column, .. } | HeaderErrorKind::Missing { column } => {
                Some(column.ja())
            }
            HeaderErrorKind::Blank { .. } => None,
        }
    }

    /// Placeholder values for the catalog message (`{value}` is the
    /// position, for all but a missing column).
    pub fn params(&self) -> Params {
        let mut p: Params = vec![("line", self.line.to_string())];
        if let Some(c) = self.column() {
            p.push(("column", c.to_owned()));
        }
        match &self.kind {
            HeaderErrorKind::Unknown { position, .. }
            | HeaderErrorKind::Duplicate { position, .. }
            | HeaderErrorKind::Blank { position } => p.push(("value", position.to_string())),
            HeaderErrorKind::Missing { .. } => {}
        }
        p
    }

    /// The message from `catalog`.
    pub fn render(&self, catalog: &str) -> String {
        render(catalog, self.code(), &self.params())
    }
}

/// Japanese, for the CLI.
impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(MESSAGES_JA))
    }
}

impl std::error::Error for HeaderError {}

/// One problem in one data row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    /// The row's line in the file (1-based; the header is usually line 1).
    pub line: usize,
    /// The column at fault; none for a wrong field count.
    pub column: Option<Column>,
    /// The offending value as read (shortened if long); none where echoing
    /// it would not help (blank, control characters, a birth date).
    pub value: Option<String>,
    /// The rule broken.
    pub kind: RowErrorKind,
}

/// The rule a row breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowErrorKind {
    /// `csv.field_count`.
    FieldCount {
        /// Fields in the header.
        expected: usize,
        /// Fields in the row.
        found: usize,
    },
    /// `csv.required`.
    Required,
    /// `csv.required_for_kind`: the row's kind needs this column.
    RequiredForKind(EventKind),
    /// `csv.control_char`.
    ControlChar,
    /// `csv.too_long`.
    TooLong {
        /// The column's limit, in characters.
        limit: usize,
        /// The value's length, in characters.
        length: usize,
    },
    /// `csv.employee_number`.
    EmployeeNumber,
    /// `csv.event_kind`.
    EventKind,
    /// `csv.date`.
    Date,
    /// `csv.birth_date`.
    BirthDateNotBeforeEffective,
    /// `csv.name_format`.
    NameFormat,
    /// `csv.kana`.
    Kana,
    /// `csv.romaji`.
    Romaji,
    /// `csv.employment`.
    Employment,
    /// `csv.org_unit_code`.
    OrgUnitCode,
    /// `csv.duplicate_employee`.
    DuplicateEmployee {
        /// The line where the number first appears.
        first_line: usize,
    },
}

impl RowErrorKind {
    /// The stable code.
    pub fn code(self) -> ErrorCode {
        match self {
            Self::FieldCount { .. } => ErrorCode::FieldCount,
            Self::Required => ErrorCode::Required,
            Self::RequiredForKind(_) => ErrorCode::RequiredForKind,
            Self::ControlChar => ErrorCode::ControlChar,
            Self::TooLong { .. } => ErrorCode::TooLong,
            Self::EmployeeNumber => ErrorCode::EmployeeNumber,
            Self::EventKind => ErrorCode::EventKind,
            Self::Date => ErrorCode::Date,
            Self::BirthDateNotBeforeEffective => ErrorCode::BirthDate,
            Self::NameFormat => ErrorCode::NameFormat,
            Self::Kana => ErrorCode::Kana,
            Self::Romaji => ErrorCode::Romaji,
            Self::Employment => ErrorCode::Employment,
            Self::OrgUnitCode => ErrorCode::OrgUnitCode,
            Self::DuplicateEmployee { .. } => ErrorCode::DuplicateEmployee,
        }
    }
}

impl RowError {
    /// The stable code.
    pub fn code(&self) -> ErrorCode {
        self.kind.code()
    }

    /// Placeholder values for the catalog message.
    pub fn params(&self) -> Params {
        let mut p: Params = vec![("line", self.line.to_string())];
        if let Some(c) = self.column {
            p.push(("column", c.ja().to_owned()));
        }
        match self.kind {
            RowErrorKind::FieldCount { expected, found } => {
                p.push(("value", found.to_string()));
                p.push(("expected", expected.to_string()));
            }
            RowErrorKind::RequiredForKind(kind) => p.push(("value", kind.ja().to_owned())),
            RowErrorKind::TooLong { limit, length } => {
                p.push(("value", length.to_string()));
                p.push(("limit", limit.to_string()));
            }
            RowErrorKind::DuplicateEmployee { first_line } => {
                p.push(("value", self.value.clone().unwrap_or_default()));
                p.push(("first_line", first_line.to_string()));
            }
            _ => {
                if let Some(v) = &self.value {
                    p.push(("value", v.clone()));
                }
            }
        }
        p
    }

    /// The message from `catalog`.
    pub fn render(&self, catalog: &str) -> String {
        render(catalog, self.code(), &self.params())
    }
}

/// Japanese, for the CLI.
impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(MESSAGES_JA))
    }
}

impl std::error::Error for RowError {}

/// Fills a catalog message. A code missing from the catalog (a catalog from
/// elsewhere, out of date) still yields its code and values.
fn render(catalog: &str, code: ErrorCode, params: &[(&'static str, String)]) -> String {
    match message(catalog, code.as_str()) {
        Some(template) => fill(&template, params),
        None => {
            let mut out = code.as_str().to_owned();
            for (k, v) in params {
                out.push_str(&format!(" {k}={v}"));
            }
            out
        }
    }
}

/// Replaces each `{name}` by its value; unknown placeholders stay as written.
pub fn fill(template: &str, params: &[(&str, String)]) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) => {
                let name = &after[..close];
                match params.iter().find(|(k, _)| *k == name) {
                    Some((_, v)) => out.push_str(v),
                    None => {
                        out.push('{');
                        out.push_str(name);
                        out.push('}');
                    }
                }
                rest = &after[close + 1..];
            }
            None => {
                out.push_str(&rest[open..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// Looks `key` up in a flat TOML catalog of `"key" = "text"` lines (the only
/// shape the catalogs use: basic strings, quoted or bare keys, `#`
/// comments). A line of another shape is skipped.
pub fn message(catalog: &str, key: &str) -> Option<String> {
    catalog.lines().find_map(|line| {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            return None;
        }
        let (k, rest) = if line.starts_with('"') {
            basic_string(line)?
        } else {
            let eq = line.find('=')?;
            (line[..eq].trim().to_owned(), &line[eq..])
        };
        if k != key {
            return None;
        }
        let rest = rest.trim_start().strip_prefix('=')?.trim_start();
        let (v, tail) = basic_string(rest)?;
        let tail = tail.trim();
        (tail.is_empty() || tail.starts_with('#')).then_some(v)
    })
}

/// Reads a TOML basic string at the start of `s`; returns it unescaped and
/// what follows the closing quote.
fn basic_string(s: &str) -> Option<(String, &str)> {
    let body = s.strip_prefix('"')?;
    let mut out = String::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, &body[i + 1..])),
            '\\' => {
                let (_, e) = chars.next()?;
                match e {
                    '"' => out.push('"'),
                    '\\' => out.push('\\'),
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    'r' => out.push('\r'),
                    'u' => {
                        let hex: String = (0..4)
                            .filter_map(|_| chars.next().map(|(_, h)| h))
                            .collect();
                        out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                    }
                    _ => return None,
                }
            }
            c => out.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn placeholders_in(text: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            let after = &rest[open + 1..];
            let Some(close) = after.find('}') else { break };
            out.push(after[..close].to_owned());
            rest = &after[close + 1..];
        }
        out
    }

    #[test]
    fn catalogs_are_toml_and_cover_exactly_the_codes() {
        for (name, catalog) in [("ja", MESSAGES_JA), ("en", MESSAGES_EN)] {
            let table: toml::Table =
                toml::from_str(catalog).unwrap_or_else(|e| panic!("{name}: {e}"));
            let mut keys: Vec<&str> = table.keys().map(String::as_str).collect();
            keys.sort_unstable();
            let mut codes: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
            codes.sort_unstable();
            assert_eq!(keys, codes, "{name}: keys differ from the codes");
            for code in ErrorCode::ALL {
                let expected = table[code.as_str()].as_str().unwrap();
                assert_eq!(
                    message(catalog, code.as_str()).as_deref(),
                    Some(expected),
                    "{name} {code}"
                );
                for p in placeholders_in(expected) {
                    assert!(
                        code.placeholders().contains(&p.as_str()),
                        "{name} {code}: unknown placeholder {{{p}}}"
                    );
                }
            }
        }
    }

    #[test]
    fn fill_replaces_known_placeholders_only() {
        let p = vec![("line", "3".to_owned())];
        assert_eq!(fill("{line}行目 {other} {", &p), "3行目 {other} {");
    }

    #[test]
    fn basic_strings_unescape() {
        assert_eq!(
            basic_string(r#""a\"b\\c\u3042" tail"#),
            Some(("a\"b\\cあ".to_owned(), " tail"))
        );
        assert_eq!(basic_string(r#""open"#), None);
        assert_eq!(basic_string(r#""bad\q""#), None);
    }
}
