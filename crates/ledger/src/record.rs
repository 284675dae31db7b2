//! The canonical binary encoding of one access record (K16.2.2:
//! tamper-evident records of access), which is the leaf data of the log.
//!
//! One record has exactly one encoding, so its leaf hash is a function of
//! its content. Layout (all integers big-endian):
//!
//! | offset | size | field                                                        |
//! |-------:|-----:|--------------------------------------------------------------|
//! | 0      | 1    | version, `0x01`                                              |
//! | 1      | 8    | time: i64 microseconds since 1970-01-01T00:00:00Z            |
//! | 9      | 16   | salt: random bytes                                           |
//! | 25     | 1    | result: `0x00` success, `0x01` failure, `0x02` denied        |
//! | 26     | …    | system: u16 length + UTF-8, 1..=64 bytes                     |
//! |        | …    | event id: u16 length + UTF-8, 1..=128 bytes (the sender's id; a resend is not a duplicate) |
//! |        | …    | actor: u16 length + UTF-8, 1..=256 bytes                     |
//! |        | …    | action: u16 length + UTF-8, 1..=128 bytes                    |
//! |        | …    | asset: u16 length + UTF-8, 1..=512 bytes                     |
//! |        | …    | source address: `0x00` absent, or `0x01` + u16 length + UTF-8, 1..=64 bytes |
//! |        | …    | detail: `0x00` absent, or `0x01` + u16 length + UTF-8, 1..=8192 bytes |
//!
//! Nothing may follow. Text fields hold no control characters (U+0000 to
//! U+001F, U+007F); `detail` carries canonical JSON made by the caller and
//! is not interpreted here. An optional field present but empty is not
//! allowed, so absent and empty cannot be confused.
//!
//! The salt exists because records are pruned after their retention period
//! while their leaf hash stays in the tree: without it, a pruned record's
//! content could be recovered by hashing guesses (who, which asset, which
//! minute) until one matches the leaf.

use std::fmt;

/// Current and only encoding version.
pub const VERSION: u8 = 1;
pub const MAX_SYSTEM: usize = 64;
pub const MAX_EVENT_ID: usize = 128;
pub const MAX_ACTOR: usize = 256;
pub const MAX_ACTION: usize = 128;
pub const MAX_ASSET: usize = 512;
pub const MAX_SOURCE_ADDRESS: usize = 64;
pub const MAX_DETAIL: usize = 8192;
/// Largest possible encoding (well under a tile bundle's 65,535-byte limit).
pub const MAX_ENCODED_SIZE: usize = 26
    + (2 + MAX_SYSTEM)
    + (2 + MAX_EVENT_ID)
    + (2 + MAX_ACTOR)
    + (2 + MAX_ACTION)
    + (2 + MAX_ASSET)
    + (3 + MAX_SOURCE_ADDRESS)
    + (3 + MAX_DETAIL);

/// The outcome of the recorded access.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AccessResult {
    Success,
    Failure,
    Denied,
}

impl AccessResult {
    pub fn as_str(self) -> &'static str {
        match self {
            AccessResult::Success => "success",
            AccessResult::Failure => "failure",
            AccessResult::Denied => "denied",
        }
    }

    /// Parses the API spelling: `success`, `failure` or `denied`.
    pub fn parse(s: &str) -> Option<AccessResult> {
        match s {
            "success" => Some(AccessResult::Success),
            "failure" => Some(AccessResult::Failure),
            "denied" => Some(AccessResult::Denied),
            _ => None,
        }
    }

    fn code(self) -> u8 {
        match self {
            AccessResult::Success => 0,
            AccessResult::Failure => 1,
            AccessResult::Denied => 2,
        }
    }
}

impl fmt::Display for AccessResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Field names, used in errors so that callers can report which field broke
/// which rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    Version,
    Time,
    Salt,
    Result,
    System,
    EventId,
    Actor,
    Action,
    Asset,
    SourceAddress,
    Detail,
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Field::Version => "version",
            Field::Time => "time",
            Field::Salt => "salt",
            Field::Result => "result",
            Field::System => "system",
            Field::EventId => "event_id",
            Field::Actor => "actor",
            Field::Action => "action",
            Field::Asset => "asset",
            Field::SourceAddress => "source_address",
            Field::Detail => "detail",
        })
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RecordError {
    #[error("unknown record version {0}")]
    UnknownVersion(u8),
    #[error("record ends inside field {0}")]
    Truncated(Field),
    #[error("{field} must be 1..={max} bytes, got {len}")]
    BadLength {
        field: Field,
        len: usize,
        max: usize,
    },
    #[error("{0} is not valid UTF-8")]
    BadUtf8(Field),
    #[error("{0} contains a control character")]
    ControlCharacter(Field),
    #[error("{field} has invalid code {code:#04x}")]
    BadCode { field: Field, code: u8 },
    #[error("{0} bytes follow the record")]
    TrailingBytes(usize),
}

/// One access record: who did what to which asset, when, from where, with
/// what result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessRecord {
    /// Microseconds since the Unix epoch (UTC).
    pub time_micros: i64,
    /// Code of the system that sent the record (`mamori`, `facility`, …).
    pub system: String,
    /// The sending system's id for this record; unique per system, so a
    /// resend is recognised and not logged twice.
    pub event_id: String,
    pub actor: String,
    pub action: String,
    pub asset: String,
    pub result: AccessResult,
    /// Source network address, as text.
    pub source_address: Option<String>,
    /// Canonical JSON with further detail, made by the caller.
    pub detail: Option<String>,
    pub salt: [u8; 16],
}

/// A fresh random salt from the thread-local CSPRNG.
pub fn new_salt() -> [u8; 16] {
    rand::random()
}

fn check_text(field: Field, s: &str, max: usize) -> Result<(), RecordError> {
    if s.is_empty() || s.len() > max {
        return Err(RecordError::BadLength {
            field,
            len: s.len(),
            max,
        });
    }
    if s.chars().any(|c| c < ' ' || c == '\u{7f}') {
        return Err(RecordError::ControlCharacter(field));
    }
    Ok(())
}

fn put_text(out: &mut Vec<u8>, s: &str) {
    // Lengths were checked against maxima far below u16::MAX.
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

impl AccessRecord {
    /// The canonical encoding, or the first field that breaks a rule.
    pub fn encode(&self) -> Result<Vec<u8>, RecordError> {
        check_text(Field::System, &self.system, MAX_SYSTEM)?;
        check_text(Field::EventId, &self.event_id, MAX_EVENT_ID)?;
        check_text(Field::Actor, &self.actor, MAX_ACTOR)?;
        check_text(Field::Action, &self.action, MAX_ACTION)?;
        check_text(Field::Asset, &self.asset, MAX_ASSET)?;
        if let Some(a) = &self.source_address {
            check_text(Field::SourceAddress, a, MAX_SOURCE_ADDRESS)?;
        }
        if let Some(d) = &self.detail {
            check_text(Field::Detail, d, MAX_DETAIL)?;
        }
        let mut out = Vec::with_capacity(
            42 + self.system.len()
                + self.event_id.len()
                + self.actor.len()
                + self.action.len()
                + self.asset.len()
                + self.source_address.as_ref().map_or(0, String::len)
                + self.detail.as_ref().map_or(0, String::len),
        );
        out.push(VERSION);
        out.extend_from_slice(&self.time_micros.to_be_bytes());
        out.extend_from_slice(&self.salt);
        out.push(self.result.code());
        put_text(&mut out, &self.system);
        put_text(&mut out, &self.event_id);
        put_text(&mut out, &self.actor);
        put_text(&mut out, &self.action);
        put_text(&mut out, &self.asset);
        for opt in [&self.source_address, &self.detail] {
            match opt {
                None => out.push(0),
                Some(s) => {
                    out.push(1);
                    put_text(&mut out, s);
                }
            }
        }
        Ok(out)
    }

    /// Decodes a record, accepting only the canonical encoding. Never
    /// panics.
    pub fn decode(bytes: &[u8]) -> Result<AccessRecord, RecordError> {
        let mut r = Reader { bytes, at: 0 };
        let version = r.take::<1>(Field::Version)?[0];
        if version != VERSION {
            return Err(RecordError::UnknownVersion(version));
        }
        let time_micros = i64::from_be_bytes(r.take::<8>(Field::Time)?);
        let salt = r.take::<16>(Field::Salt)?;
        let result = match r.take::<1>(Field::Result)?[0] {
            0 => AccessResult::Success,
            1 => AccessResult::Failure,
            2 => AccessResult::Denied,
            code => {
                return Err(RecordError::BadCode {
                    field: Field::Result,
                    code,
                })
            }
        };
        let system = r.text(Field::System, MAX_SYSTEM)?;
        let event_id = r.text(Field::EventId, MAX_EVENT_ID)?;
        let actor = r.text(Field::Actor, MAX_ACTOR)?;
        let action = r.text(Field::Action, MAX_ACTION)?;
        let asset = r.text(Field::Asset, MAX_ASSET)?;
        let source_address = r.optional_text(Field::SourceAddress, MAX_SOURCE_ADDRESS)?;
        let detail = r.optional_text(Field::Detail, MAX_DETAIL)?;
        let rest = bytes.len() - r.at;
        if rest != 0 {
            return Err(RecordError::TrailingBytes(rest));
        }
        Ok(AccessRecord {
            time_micros,
            system,
            event_id,
            actor,
            action,
            asset,
            result,
            source_address,
            detail,
            salt,
        })
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self, field: Field) -> Result<[u8; N], RecordError> {
        let s = self
            .bytes
            .get(self.at..self.at + N)
            .ok_or(RecordError::Truncated(field))?;
        self.at += N;
        let mut out = [0u8; N];
        out.copy_from_slice(s);
        Ok(out)
    }

    fn text(&mut self, field: Field, max: usize) -> Result<String, RecordError> {
        let len = usize::from(u16::from_be_bytes(self.take::<2>(field)?));
        if len == 0 || len > max {
            return Err(RecordError::BadLength { field, len, max });
        }
        let raw = self
            .bytes
            .get(self.at..self.at + len)
            .ok_or(RecordError::Truncated(field))?;
        self.at += len;
        let s = std::str::from_utf8(raw).map_err(|_| RecordError::BadUtf8(field))?;
        check_text(field, s, max)?;
        Ok(s.to_owned())
    }

    fn optional_text(&mut self, field: Field, max: usize) -> Result<Option<String>, RecordError> {
        match self.take::<1>(field)?[0] {
            0 => Ok(None),
            1 => Ok(Some(self.text(field, max)?)),
            code => Err(RecordError::BadCode { field, code }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> AccessRecord {
        AccessRecord {
            time_micros: 1_700_000_000_123_456,
            system: "library".into(),
            event_id: "ev-1".into(),
            actor: "山田 太郎".into(),
            action: "read".into(),
            asset: "patron/123".into(),
            result: AccessResult::Denied,
            source_address: Some("192.0.2.1".into()),
            detail: Some(r#"{"reason":"k16"}"#.into()),
            salt: [7; 16],
        }
    }

    #[test]
    fn layout_is_as_documented() {
        let r = AccessRecord {
            source_address: None,
            detail: None,
            ..sample()
        };
        let b = r.encode().expect("valid");
        assert_eq!(b[0], 1);
        assert_eq!(&b[1..9], &1_700_000_000_123_456i64.to_be_bytes());
        assert_eq!(&b[9..25], &[7; 16]);
        assert_eq!(b[25], 2);
        assert_eq!(&b[26..28], &[0, 7]);
        assert_eq!(&b[28..35], b"library");
        assert_eq!(&b[b.len() - 2..], &[0, 0]);
        assert_eq!(AccessRecord::decode(&b), Ok(r));
    }

    #[test]
    fn rejects() {
        let good = sample().encode().expect("valid");
        assert_eq!(AccessRecord::decode(&good), Ok(sample()));
        let mut trailing = good.clone();
        trailing.push(0);
        assert_eq!(
            AccessRecord::decode(&trailing),
            Err(RecordError::TrailingBytes(1))
        );
        let mut v2 = good.clone();
        v2[0] = 2;
        assert_eq!(
            AccessRecord::decode(&v2),
            Err(RecordError::UnknownVersion(2))
        );
        let mut bad_result = good.clone();
        bad_result[25] = 3;
        assert!(AccessRecord::decode(&bad_result).is_err());
        for cut in 0..good.len() {
            assert!(AccessRecord::decode(&good[..cut]).is_err());
        }
        let mut bad_utf8 = good.clone();
        bad_utf8[28] = 0xff;
        assert_eq!(
            AccessRecord::decode(&bad_utf8),
            Err(RecordError::BadUtf8(Field::System))
        );
        let mut r = sample();
        r.actor = String::new();
        assert!(matches!(
            r.encode(),
            Err(RecordError::BadLength {
                field: Field::Actor,
                ..
            })
        ));
        r = sample();
        r.detail = Some("x".repeat(MAX_DETAIL + 1));
        assert!(matches!(
            r.encode(),
            Err(RecordError::BadLength {
                field: Field::Detail,
                ..
            })
        ));
        r = sample();
        r.asset = "a\nb".into();
        assert_eq!(r.encode(), Err(RecordError::ControlCharacter(Field::Asset)));
        r = sample();
        r.source_address = Some(String::new());
        assert!(r.encode().is_err());
    }
}
