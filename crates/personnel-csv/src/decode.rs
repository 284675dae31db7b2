//! From bytes to text: encoding detection, and the one CSV defect the `csv`
//! crate forgives silently.

use std::borrow::Cow;

use encoding_rs::SHIFT_JIS;

use crate::error::FileError;
use crate::Encoding;

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Valid UTF-8 (BOM or not) is UTF-8; anything else must decode as
/// Shift_JIS (encoding_rs's `SHIFT_JIS` is the WHATWG one, i.e. Windows-31J
/// / CP932, as Excel and Windows HR systems write it). A BOM commits the
/// file to UTF-8. The BOM is not part of the returned text.
pub(crate) fn decode(bytes: &[u8]) -> Result<(Encoding, Cow<'_, str>), FileError> {
    if let Some(rest) = bytes.strip_prefix(UTF8_BOM) {
        return std::str::from_utf8(rest)
            .map(|s| (Encoding::Utf8, Cow::Borrowed(s)))
            .map_err(|e| FileError::Encoding {
                line: line_at(rest, e.valid_up_to()),
            });
    }
    if let Ok(s) = std::str::from_utf8(bytes) {
        return Ok((Encoding::Utf8, Cow::Borrowed(s)));
    }
    match SHIFT_JIS.decode_without_bom_handling_and_without_replacement(bytes) {
        Some(s) => Ok((Encoding::ShiftJis, s)),
        None => Err(FileError::Encoding {
            line: first_bad_sjis_line(bytes),
        }),
    }
}

/// The 1-based line holding byte `offset`.
fn line_at(bytes: &[u8], offset: usize) -> usize {
    let before = bytes.get(..offset).unwrap_or(bytes);
    1 + before.iter().filter(|&&b| b == b'\n').count()
}

/// Shift_JIS trail bytes are 0x40..=0xFC, so a 0x0A byte always ends a line
/// and each line can be decoded on its own.
fn first_bad_sjis_line(bytes: &[u8]) -> usize {
    bytes
        .split(|&b| b == b'\n')
        .position(|line| {
            SHIFT_JIS
                .decode_without_bom_handling_and_without_replacement(line)
                .is_none()
        })
        .map_or(1, |i| i + 1)
}

/// The line where a quoted field opens and never closes, following the
/// `csv` crate's reading (RFC 4180 with doubled quotes; a quote inside an
/// unquoted field is a plain character). The `csv` crate would read such a
/// field to the end of the file without complaint.
pub(crate) fn unterminated_quote(text: &str) -> Option<usize> {
    #[derive(Clone, Copy)]
    enum State {
        FieldStart,
        Unquoted,
        Quoted,
        QuoteInQuoted,
    }
    let mut state = State::FieldStart;
    let mut line = 1;
    let mut opened_at = 1;
    for b in text.bytes() {
        state = match (state, b) {
            (State::FieldStart, b'"') => {
                opened_at = line;
                State::Quoted
            }
            (State::FieldStart | State::Unquoted | State::QuoteInQuoted, b',' | b'\r' | b'\n') => {
                State::FieldStart
            }
            (State::FieldStart | State::Unquoted, _) => State::Unquoted,
            (State::Quoted, b'"') => State::QuoteInQuoted,
            (State::Quoted, _) => State::Quoted,
            (State::QuoteInQuoted, b'"') => State::Quoted,
            (State::QuoteInQuoted, _) => State::Unquoted,
        };
        if b == b'\n' {
            line += 1;
        }
    }
    matches!(state, State::Quoted).then_some(opened_at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_encodings() {
        let (enc, s) = decode("職員番号".as_bytes()).unwrap();
        assert_eq!((enc, &*s), (Encoding::Utf8, "職員番号"));
        let (enc, s) = decode(b"\xEF\xBB\xBFa,b").unwrap();
        assert_eq!((enc, &*s), (Encoding::Utf8, "a,b"));
        let (sjis, _, _) = SHIFT_JIS.encode("職員番号");
        let (enc, s) = decode(&sjis).unwrap();
        assert_eq!((enc, &*s), (Encoding::ShiftJis, "職員番号"));
    }

    #[test]
    fn names_the_line_of_a_bad_byte() {
        assert_eq!(
            decode(b"a\nb\n\xFF\n"),
            Err(FileError::Encoding { line: 3 })
        );
        assert_eq!(
            decode(b"\xEF\xBB\xBFa\n\x82\xA0"),
            Err(FileError::Encoding { line: 2 })
        );
    }

    #[test]
    fn finds_unterminated_quotes() {
        for (text, expected) in [
            ("a,b\n1,2\n", None),
            ("a,\"b\nc\",d\n", None),
            ("a,\"b\"\"c\"\n", None),
            ("a,b\"c\n", None),
            ("a,b\n1,\"2\n3,4\n", Some(2)),
            ("\"", Some(1)),
            ("a,\"b\"\"\n", Some(1)),
        ] {
            assert_eq!(unterminated_quote(text), expected, "{text:?}");
        }
    }
}
