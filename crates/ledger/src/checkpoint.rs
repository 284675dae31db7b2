//! Checkpoints (<https://c2sp.org/tlog-checkpoint>): the signed tree head,
//! as a signed note whose text is
//!
//! ```text
//! <origin>
//! <tree size in decimal>
//! <base64 root hash>
//! [extension lines]
//! ```
//!
//! Parsing is strict: exactly this shape, canonical decimal and base64.

use crate::hash::Hash;
use crate::note::{self, Note, NoteError, Signer, Verifier};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CheckpointError {
    #[error("malformed checkpoint: {0}")]
    Malformed(&'static str),
    #[error(transparent)]
    Note(#[from] NoteError),
}

/// A tree head: the log's identity, its size, and the root at that size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// Unique log identity, e.g. `mamori.example-ward.lg.jp/ledger`.
    pub origin: String,
    pub size: u64,
    pub root: Hash,
    /// Opaque extra lines; not recommended by the spec, kept for fidelity.
    pub extensions: Vec<String>,
}

fn valid_line(s: &str) -> bool {
    !s.is_empty() && !s.chars().any(|c| c < ' ')
}

impl Checkpoint {
    pub fn new(origin: &str, size: u64, root: Hash) -> Checkpoint {
        Checkpoint {
            origin: origin.to_owned(),
            size,
            root,
            extensions: Vec::new(),
        }
    }

    /// The note text (ends with a newline).
    pub fn to_text(&self) -> Result<String, CheckpointError> {
        if !valid_line(&self.origin) {
            return Err(CheckpointError::Malformed(
                "origin must be a non-empty line",
            ));
        }
        if !self.extensions.iter().all(|e| valid_line(e)) {
            return Err(CheckpointError::Malformed(
                "extension lines must be non-empty lines",
            ));
        }
        let mut s = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            self.root.to_base64()
        );
        for e in &self.extensions {
            s.push_str(e);
            s.push('\n');
        }
        Ok(s)
    }

    /// Parses a checkpoint note text. Never panics.
    pub fn parse(text: &str) -> Result<Checkpoint, CheckpointError> {
        use CheckpointError::Malformed as M;
        let body = text
            .strip_suffix('\n')
            .ok_or(M("must end with a newline"))?;
        let mut lines = body.split('\n');
        let origin = lines.next().unwrap_or("");
        if !valid_line(origin) {
            return Err(M("origin must be a non-empty line"));
        }
        let size = lines.next().ok_or(M("missing tree size"))?;
        let sb = size.as_bytes();
        if sb.is_empty()
            || sb.len() > 20
            || !sb.iter().all(u8::is_ascii_digit)
            || (sb.len() > 1 && sb[0] == b'0')
        {
            return Err(M("tree size must be a decimal without leading zeros"));
        }
        let size: u64 = size.parse().map_err(|_| M("tree size out of range"))?;
        let root = lines.next().ok_or(M("missing root hash"))?;
        let root = Hash::from_base64(root).ok_or(M("root hash must be base64 of 32 bytes"))?;
        let extensions: Vec<String> = lines.map(str::to_owned).collect();
        if !extensions.iter().all(|e| valid_line(e)) {
            return Err(M("extension lines must be non-empty"));
        }
        Ok(Checkpoint {
            origin: origin.to_owned(),
            size,
            root,
            extensions,
        })
    }

    /// The signed note for this checkpoint.
    pub fn sign(&self, signers: &[&Signer]) -> Result<String, CheckpointError> {
        Ok(note::sign(&self.to_text()?, signers)?)
    }
}

/// Opens a signed checkpoint note: verifies it against `known` keys, then
/// parses its text. Callers should also compare `origin` with the log they
/// expect.
pub fn open_checkpoint(
    msg: &[u8],
    known: &[Verifier],
) -> Result<(Checkpoint, Note), CheckpointError> {
    let note = note::open(msg, known)?;
    let cp = Checkpoint::parse(&note.text)?;
    Ok((cp, note))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_spec_example() {
        let text =
            "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";
        let cp = Checkpoint::parse(text).expect("spec example parses");
        assert_eq!(cp.origin, "example.com/behind-the-sofa");
        assert_eq!(cp.size, 20_852_163);
        assert_eq!(cp.to_text().expect("formats"), text);
    }

    #[test]
    fn strictness() {
        let root = Hash::EMPTY_TREE.to_base64();
        let ok = format!("o\n0\n{root}\n");
        assert!(Checkpoint::parse(&ok).is_ok());
        for bad in [
            format!("o\n0\n{root}"),
            format!("\n0\n{root}\n"),
            format!("o\n00\n{root}\n"),
            format!("o\n01\n{root}\n"),
            format!("o\n+1\n{root}\n"),
            format!("o\n-1\n{root}\n"),
            format!("o\n 1\n{root}\n"),
            format!("o\n18446744073709551616\n{root}\n"),
            format!("o\n1\n{root}x\n"),
            "o\n1\nAAAA\n".to_owned(),
            format!("o\n1\n{root}\n\n"),
            format!("o\n1\n{root}\next\n\n"),
            "o\n1\n".to_owned(),
            String::new(),
        ] {
            assert!(Checkpoint::parse(&bad).is_err(), "{bad:?}");
        }
        let with_ext = format!("o\n1\n{root}\nfoo bar\n");
        let cp = Checkpoint::parse(&with_ext).expect("extension line");
        assert_eq!(cp.extensions, vec!["foo bar".to_owned()]);
        assert_eq!(cp.to_text().expect("formats"), with_ext);
    }
}
