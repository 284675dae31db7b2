#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod decode;
mod error;
mod model;
mod row;
mod text;

use std::collections::HashMap;

use csv::StringRecord;

pub use error::{
    fill, message, ErrorCode, FileError, HeaderError, HeaderErrorKind, Params, RowError,
    RowErrorKind, MESSAGES_EN, MESSAGES_JA,
};
pub use model::{Column, EmployeeNumber, EmploymentType, EventKind, PersonnelEvent, UnknownValue};

/// The largest file accepted: 10 MiB.
pub const MAX_BYTES: usize = 10 * 1024 * 1024;
/// The most data rows accepted (blank rows and the header not counted).
pub const MAX_ROWS: usize = 50_000;

/// The encoding a file was read in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// UTF-8, with or without a BOM.
    Utf8,
    /// Shift_JIS as Windows writes it (Windows-31J / CP932).
    ShiftJis,
}

/// A file whose header was understood; each data row parsed or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// The encoding detected.
    pub encoding: Encoding,
    /// The data rows in file order (blank rows skipped).
    pub rows: Vec<Row>,
}

/// One data row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The line the row starts on (1-based; the header is usually line 1).
    pub line: usize,
    /// The event, or everything wrong with the row.
    pub result: Result<PersonnelEvent, Vec<RowError>>,
}

impl Parsed {
    /// Every row error, in file order.
    pub fn errors(&self) -> impl Iterator<Item = &RowError> {
        self.rows
            .iter()
            .filter_map(|r| r.result.as_ref().err())
            .flatten()
    }

    /// The valid rows' events with their lines, in file order.
    pub fn events(&self) -> impl Iterator<Item = (usize, &PersonnelEvent)> {
        self.rows
            .iter()
            .filter_map(|r| r.result.as_ref().ok().map(|e| (r.line, e)))
    }

    /// Whether every row parsed.
    pub fn is_valid(&self) -> bool {
        self.rows.iter().all(|r| r.result.is_ok())
    }

    /// All-or-nothing: every event if every row parsed, else every error.
    pub fn all_or_nothing(self) -> Result<Vec<PersonnelEvent>, Vec<RowError>> {
        let mut events = Vec::with_capacity(self.rows.len());
        let mut errors = Vec::new();
        for row in self.rows {
            match row.result {
                Ok(e) => events.push(e),
                Err(es) => errors.extend(es),
            }
        }
        if errors.is_empty() {
            Ok(events)
        } else {
            Err(errors)
        }
    }
}

/// Parses a personnel-event CSV as an HR system exports it (the format is
/// described in the crate documentation). Never panics: a whole-file
/// problem is a [`FileError`], a row's problems are in its [`Row`].
pub fn parse(bytes: &[u8]) -> Result<Parsed, FileError> {
    if bytes.len() > MAX_BYTES {
        return Err(FileError::TooLarge { size: bytes.len() });
    }
    let (encoding, text) = decode::decode(bytes)?;
    // A BOM survives decoding when a Shift_JIS file carries a UTF-8 BOM's
    // text, or a UTF-8 file has two; it is never part of a column name.
    let text = text.trim_start_matches('\u{feff}');
    if let Some(line) = decode::unterminated_quote(text) {
        return Err(FileError::UnterminatedQuote { line });
    }

    let mut records = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes())
        .into_records()
        .map(|r| {
            r.map(|rec| {
                let line = start_line(text, &rec);
                (line, rec)
            })
            // The input is a `str` and the reader is flexible, so the
            // `csv` crate has no error left to report but a UTF-8 one.
            .map_err(|e| FileError::Encoding {
                line: e.position().map_or(1, |p| to_usize(p.line())),
            })
        })
        .filter(|r| r.as_ref().map_or(true, |(_, rec)| !is_blank(rec)));

    let (header_line, header_record) = records.next().ok_or(FileError::Empty)??;
    let header =
        row::Header::read(header_line, &header_record).map_err(|errors| FileError::Header {
            line: header_line,
            errors,
        })?;

    let mut rows = Vec::new();
    let mut seen: HashMap<EmployeeNumber, usize> = HashMap::new();
    for record in records {
        let (line, record) = record?;
        if rows.len() == MAX_ROWS {
            return Err(FileError::TooManyRows { line });
        }
        if record.len() != header.width() {
            rows.push(Row {
                line,
                result: Err(vec![RowError {
                    line,
                    column: None,
                    value: None,
                    kind: RowErrorKind::FieldCount {
                        expected: header.width(),
                        found: record.len(),
                    },
                }]),
            });
            continue;
        }
        let checked = row::check(line, &header, &record);
        let mut result = checked.result;
        if let Some(number) = checked.employee_number {
            match seen.get(&number) {
                Some(&first_line) => {
                    let error = RowError {
                        line,
                        column: Some(Column::EmployeeNumber),
                        value: Some(number.to_string()),
                        kind: RowErrorKind::DuplicateEmployee { first_line },
                    };
                    match &mut result {
                        Ok(_) => result = Err(vec![error]),
                        Err(errors) => errors.insert(0, error),
                    }
                }
                None => {
                    seen.insert(number, line);
                }
            }
        }
        rows.push(Row { line, result });
    }
    Ok(Parsed { encoding, rows })
}

/// A record whose every field is blank carries no event; Excel writes such
/// rows (`,,,,`) after the data.
fn is_blank(record: &StringRecord) -> bool {
    record.iter().all(|f| f.trim().is_empty())
}

/// The line a record's first field is on. The `csv` crate reports where it
/// began reading, which is before any blank lines it skipped.
fn start_line(text: &str, record: &StringRecord) -> usize {
    let Some(pos) = record.position() else {
        return 1;
    };
    let start = usize::try_from(pos.byte()).unwrap_or(usize::MAX);
    let skipped = text
        .as_bytes()
        .get(start..)
        .unwrap_or_default()
        .iter()
        .take_while(|&&b| b == b'\n' || b == b'\r')
        .filter(|&&b| b == b'\n')
        .count();
    to_usize(pos.line()).saturating_add(skipped)
}

fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}
