//! Attachments to reports (screenshots, logs, documents): size-limited
//! (setting `incident.attachment_max_kb`), of an allowed type whose content
//! matches its name, kept in the data folder under their SHA-256
//! (`<data>/attachments/ab/abcd…`), so the same file is stored once and its
//! hash, recorded with the link, names its content.

use super::store::{self, NewAttachment};
use crate::app::AppState;
use crate::auth::Actor;
use crate::db::Conn;
use crate::web::error::{AppError, FieldError};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::path::PathBuf;

/// Allowed types: (extension, content type, magic bytes or empty for text).
pub const ALLOWED: &[(&str, &str, &[u8])] = &[
    ("pdf", "application/pdf", b"%PDF-"),
    ("png", "image/png", b"\x89PNG\r\n\x1a\n"),
    ("jpg", "image/jpeg", b"\xff\xd8\xff"),
    ("jpeg", "image/jpeg", b"\xff\xd8\xff"),
    ("gif", "image/gif", b"GIF8"),
    ("txt", "text/plain", b""),
    ("log", "text/plain", b""),
    ("csv", "text/csv", b""),
    (
        "xlsx",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        b"PK\x03\x04",
    ),
    (
        "docx",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        b"PK\x03\x04",
    ),
];

/// Most attachments per report form.
pub const MAX_FILES: usize = 5;
const MAX_NAME: usize = 200;

/// A file checked and stored, not yet linked to a report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Stored {
    pub file_name: String,
    pub content_type: String,
    pub size: i64,
    pub sha256: String,
}

fn dir(state: &AppState) -> PathBuf {
    state.config().data_dir.join("attachments")
}

fn path_of(state: &AppState, sha: &str) -> Option<PathBuf> {
    if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some(dir(state).join(&sha[..2]).join(sha))
}

/// The largest attachment in bytes (the ward's setting).
pub async fn max_bytes(conn: &mut Conn) -> Result<usize, sqlx::Error> {
    Ok(crate::settings::get(conn, "incident.attachment_max_kb").await? as usize * 1024)
}

/// The allowed type for a file name, by its extension.
fn type_of(name: &str) -> Option<&'static (&'static str, &'static str, &'static [u8])> {
    let ext = name.rsplit_once('.')?.1.to_ascii_lowercase();
    ALLOWED.iter().find(|(e, _, _)| *e == ext)
}

/// Checks one file; `field` names it in errors.
pub fn check(
    field: &str,
    name: &str,
    bytes: &[u8],
    max: usize,
) -> Result<(String, &'static str), FieldError> {
    let name = name
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or("")
        .trim()
        .to_string();
    if name.is_empty() || name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
        return Err(FieldError::new(field, "incident.attachment_bad_name", &[]));
    }
    if bytes.len() > max {
        return Err(FieldError::new(
            field,
            "incident.attachment_too_large",
            &[("name", name.clone()), ("max", (max / 1024).to_string())],
        ));
    }
    if bytes.is_empty() {
        return Err(FieldError::new(
            field,
            "incident.attachment_empty",
            &[("name", name.clone())],
        ));
    }
    let allowed = ALLOWED
        .iter()
        .map(|(e, _, _)| *e)
        .collect::<Vec<_>>()
        .join(", ");
    let Some((_, ct, magic)) = type_of(&name) else {
        return Err(FieldError::new(
            field,
            "incident.attachment_type",
            &[("name", name.clone()), ("allowed", allowed)],
        ));
    };
    // The content must be what the name says: a text file without NUL
    // bytes, anything else starting with its format's signature.
    let fits = if magic.is_empty() {
        !bytes.contains(&0)
    } else {
        bytes.starts_with(magic)
    };
    if !fits {
        return Err(FieldError::new(
            field,
            "incident.attachment_content",
            &[("name", name.clone())],
        ));
    }
    Ok((name, ct))
}

/// Checks and stores one file in the data folder.
pub async fn store_file(
    state: &AppState,
    field: &str,
    name: &str,
    bytes: &[u8],
) -> Result<Result<Stored, FieldError>, AppError> {
    let max = {
        let mut conn = state.db().pool().acquire().await?;
        max_bytes(&mut conn).await?
    };
    store_file_within(state, field, name, bytes, max).await
}

/// Checks and stores one file of at most `max` bytes (other capabilities
/// keep their evidence the same way, under their own size setting).
pub async fn store_file_within(
    state: &AppState,
    field: &str,
    name: &str,
    bytes: &[u8],
    max: usize,
) -> Result<Result<Stored, FieldError>, AppError> {
    let (name, ct) = match check(field, name, bytes, max) {
        Ok(v) => v,
        Err(e) => return Ok(Err(e)),
    };
    let sha = hex::encode(Sha256::digest(bytes));
    let path = path_of(state, &sha).ok_or_else(|| AppError::Internal("hash".into()))?;
    if !path.exists() {
        let parent = path
            .parent()
            .ok_or_else(|| AppError::Internal("attachment folder".into()))?
            .to_path_buf();
        let tmp = parent.join(format!("{sha}.tmp-{}", crate::auth::token::random_hex(4)));
        let bytes = bytes.to_vec();
        let final_path = path.clone();
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            std::fs::create_dir_all(&parent)?;
            crate::app::write_private(&tmp, &bytes)?;
            std::fs::rename(&tmp, &final_path)
        })
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?
        .map_err(|e| AppError::Internal(format!("storing an attachment: {e}")))?;
    }
    Ok(Ok(Stored {
        file_name: name,
        content_type: ct.to_string(),
        size: bytes.len() as i64,
        sha256: sha,
    }))
}

/// Links a stored file to a report, with its record (same transaction).
pub async fn link(
    conn: &mut Conn,
    state: &AppState,
    actor: &Actor,
    incident: i64,
    f: &Stored,
) -> Result<i64, AppError> {
    // A draft's file reference must name a file that is really there.
    match path_of(state, &f.sha256) {
        Some(p) if p.exists() => {}
        _ => {
            return Err(AppError::invalid(
                "attachments",
                "incident.attachment_missing",
                &[],
            ))
        }
    }
    let id = store::insert_attachment(
        conn,
        &NewAttachment {
            incident_id: incident,
            file_name: &f.file_name,
            content_type: &f.content_type,
            size: f.size,
            sha256: &f.sha256,
            uploaded_by: actor.person_id,
        },
        state.clock().unix(),
    )
    .await?;
    super::service::entry(
        conn,
        state,
        &actor.who(),
        actor.ip(),
        incident,
        "attached",
        "incident.attach",
        "K27.1.3",
        json!({ "attachment_id": id, "file_name": f.file_name, "size": f.size, "sha256": f.sha256 }),
    )
    .await?;
    Ok(id)
}

/// Adds files to an existing report the actor may see.
pub async fn attach(
    state: &AppState,
    actor: &Actor,
    incident: i64,
    files: &[Stored],
) -> Result<(), AppError> {
    let now = state.clock().unix();
    let mut tx = state.db().begin().await?;
    super::service::load_visible(&mut tx, actor, incident, now).await?;
    for f in files {
        link(&mut tx, state, actor, incident, f).await?;
    }
    tx.commit().await?;
    state.ledger().poke();
    Ok(())
}

/// The content of a stored file, by its hash.
pub async fn read_blob(state: &AppState, sha: &str) -> Result<Vec<u8>, AppError> {
    let path = path_of(state, sha).ok_or(AppError::NotFound("attachment"))?;
    tokio::fs::read(&path)
        .await
        .map_err(|e| AppError::Internal(format!("reading an attachment: {e}")))
}

/// An attachment's metadata and content, for someone who may see the report.
pub async fn read(
    state: &AppState,
    actor: &Actor,
    incident: i64,
    id: i64,
) -> Result<(super::AttachmentView, Vec<u8>), AppError> {
    let now = state.clock().unix();
    let mut conn = state.db().pool().acquire().await?;
    super::service::load_visible(&mut conn, actor, incident, now).await?;
    let a = store::attachment(&mut conn, incident, id)
        .await?
        .ok_or(AppError::NotFound("attachment"))?;
    let path = path_of(state, &a.sha256).ok_or(AppError::NotFound("attachment"))?;
    let bytes = tokio::fs::read(&path)
        .await
        .map_err(|e| AppError::Internal(format!("reading an attachment: {e}")))?;
    Ok((a, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_sizes_and_contents() {
        let ok = |name: &str, bytes: &[u8]| check("f", name, bytes, 100).map(|v| v.1).ok();
        assert_eq!(ok("log.txt", b"hello"), Some("text/plain"));
        assert_eq!(
            ok("C:\\Users\\x\\shot.PNG", b"\x89PNG\r\n\x1a\nxx"),
            Some("image/png")
        );
        let code = |name: &str, bytes: &[u8]| check("f", name, bytes, 100).unwrap_err().code;
        assert_eq!(code("virus.exe", b"MZ"), "incident.attachment_type");
        assert_eq!(code("fake.pdf", b"MZ"), "incident.attachment_content");
        assert_eq!(
            code("big.txt", &[b'a'; 101]),
            "incident.attachment_too_large"
        );
        assert_eq!(code("empty.txt", b""), "incident.attachment_empty");
        assert_eq!(code("noext", b"a"), "incident.attachment_type");
        assert_eq!(code("bin.txt", b"a\0b"), "incident.attachment_content");
    }
}
