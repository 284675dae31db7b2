//! Bearer tokens of ward systems (SPEC §4): each belongs to one registered
//! system and carries scopes (`ledger:write`, `ledger:read`, `access:check`).
//! Printed once at creation; only the SHA-256 digest is stored.

use crate::app::AppState;
use crate::auth::token;
use crate::db::Conn;
use crate::records::{self, Record, Who};
use crate::web::error::AppError;
use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use sqlx::Row;

pub const SCOPES: [&str; 3] = ["ledger:write", "ledger:read", "access:check"];

/// A caller authenticated by a system token.
#[derive(Debug, Clone)]
pub struct SystemCaller {
    pub token_id: i64,
    pub system_code: String,
    pub scopes: Vec<String>,
}

impl SystemCaller {
    pub fn has(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("no system with code {0:?}")]
    NoSuchSystem(String),
    #[error("unknown scope {0:?} (known: ledger:write, ledger:read, access:check)")]
    BadScope(String),
    #[error("give at least one --scope")]
    NoScope,
    #[error("no live token with id {0}")]
    NoSuchToken(i64),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// Creates a token and returns (id, the token). The token is shown once.
pub async fn create(
    state: &AppState,
    system: &str,
    scopes: &[String],
) -> Result<(i64, String), TokenError> {
    if scopes.is_empty() {
        return Err(TokenError::NoScope);
    }
    for s in scopes {
        if !SCOPES.contains(&s.as_str()) {
            return Err(TokenError::BadScope(s.clone()));
        }
    }
    let mut tx = state.db().begin().await?;
    let row = sqlx::query("SELECT id FROM systems WHERE code = $1")
        .bind(system)
        .fetch_optional(&mut *tx)
        .await?;
    let system_id: i64 = row
        .ok_or_else(|| TokenError::NoSuchSystem(system.into()))?
        .try_get(0)?;
    let tok = format!("mamori_{}", token::new_token());
    let mut scopes = scopes.to_vec();
    scopes.sort();
    scopes.dedup();
    let id: i64 = sqlx::query("INSERT INTO api_tokens (system_id, scopes, digest, created_at) VALUES ($1, $2, $3, $4) RETURNING id")
        .bind(system_id)
        .bind(scopes.join(" "))
        .bind(token::digest(&tok))
        .bind(state.clock().unix())
        .fetch_one(&mut *tx)
        .await?
        .try_get(0)?;
    let rec = Record::new(Who::Cli, "token.create", format!("token:{id}"), "K16.2.2")
        .detail(serde_json::json!({ "system": system, "scopes": scopes }));
    records::append(&mut tx, state.clock().unix_micros(), &rec).await?;
    tx.commit().await?;
    Ok((id, tok))
}

pub async fn revoke(state: &AppState, id: i64) -> Result<(), TokenError> {
    let mut tx = state.db().begin().await?;
    let n =
        sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(state.clock().unix())
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
    if n == 0 {
        return Err(TokenError::NoSuchToken(id));
    }
    let rec = Record::new(Who::Cli, "token.revoke", format!("token:{id}"), "K16.2.2");
    records::append(&mut tx, state.clock().unix_micros(), &rec).await?;
    tx.commit().await?;
    cache::clear();
    Ok(())
}

/// (id, system code, scopes, created_at, revoked_at) of every token.
pub async fn list(
    conn: &mut Conn,
) -> Result<Vec<(i64, String, String, i64, Option<i64>)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT t.id, s.code, t.scopes, t.created_at, t.revoked_at FROM api_tokens t JOIN systems s ON s.id = t.system_id ORDER BY t.id",
    )
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get(0)?,
                r.try_get(1)?,
                r.try_get(2)?,
                r.try_get(3)?,
                r.try_get(4)?,
            ))
        })
        .collect()
}

/// The system behind a bearer token, if the request carries a live one.
/// A malformed or unknown token is an error (401), not "no token".
pub async fn from_headers(
    state: &AppState,
    parts: &Parts,
) -> Result<Option<SystemCaller>, AppError> {
    let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| AppError::Unauthenticated)?;
    let tok = value
        .strip_prefix("Bearer ")
        .ok_or(AppError::Unauthenticated)?
        .trim();
    if tok.is_empty() || tok.len() > 200 {
        return Err(AppError::Unauthenticated);
    }
    let digest = token::digest(tok);
    if let Some(hit) = cache::get(&digest) {
        return Ok(Some(hit));
    }
    let mut conn = state.db().pool().acquire().await?;
    let row = sqlx::query(
        "SELECT t.id, s.code, t.scopes FROM api_tokens t JOIN systems s ON s.id = t.system_id
         WHERE t.digest = $1 AND t.revoked_at IS NULL",
    )
    .bind(&digest)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(r) = row else {
        return Err(AppError::Unauthenticated);
    };
    let scopes: String = r.try_get(2)?;
    let caller = SystemCaller {
        token_id: r.try_get(0)?,
        system_code: r.try_get(1)?,
        scopes: scopes.split_whitespace().map(String::from).collect(),
    };
    cache::put(digest, caller.clone());
    Ok(Some(caller))
}

/// Live tokens seen in the last [`cache::TTL`], so that the decision API
/// (tens of thousands of calls a second) does not read the database for
/// every call. Only tokens found live are kept, by digest; a token revoked
/// (`mamori token revoke`, possibly from another process) stops working
/// within the TTL, and at once in the process that revoked it.
pub mod cache {
    use super::SystemCaller;
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    use std::time::{Duration, Instant};

    pub const TTL: Duration = Duration::from_secs(2);
    const MAX: usize = 10_000;

    fn map() -> &'static Mutex<HashMap<String, (SystemCaller, Instant)>> {
        static M: OnceLock<Mutex<HashMap<String, (SystemCaller, Instant)>>> = OnceLock::new();
        M.get_or_init(|| Mutex::new(HashMap::new()))
    }

    pub fn get(digest: &str) -> Option<SystemCaller> {
        let m = map().lock().unwrap_or_else(|e| e.into_inner());
        m.get(digest)
            .filter(|(_, at)| at.elapsed() < TTL)
            .map(|(c, _)| c.clone())
    }

    pub fn put(digest: String, caller: SystemCaller) {
        let mut m = map().lock().unwrap_or_else(|e| e.into_inner());
        if m.len() >= MAX {
            m.retain(|_, (_, at)| at.elapsed() < TTL);
            if m.len() >= MAX {
                m.clear();
            }
        }
        m.insert(digest, (caller, Instant::now()));
    }

    /// Forgets everything (a revocation in this process).
    pub fn clear() {
        map().lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

/// A caller with the `ledger:write` scope.
pub struct LedgerWriter(pub SystemCaller);

impl FromRequestParts<AppState> for LedgerWriter {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match from_headers(state, parts).await {
            Ok(Some(c)) if c.has("ledger:write") => Ok(LedgerWriter(c)),
            Ok(Some(_)) => Err(
                crate::web::error::ApiError(AppError::Forbidden("ledger:write")).into_response(),
            ),
            Ok(None) => Err(crate::web::error::ApiError(AppError::Unauthenticated).into_response()),
            Err(e) => Err(crate::web::error::ApiError(e).into_response()),
        }
    }
}

/// Who may read the ledger's structure (checkpoints, keys, hash tiles,
/// proofs): a system token with a ledger scope, or a person whose role
/// allows auditing the ledger (the permission table's `AuditLedger`).
pub struct LedgerAuditor;

impl FromRequestParts<AppState> for LedgerAuditor {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match from_headers(state, parts).await {
            Ok(Some(c)) if c.has("ledger:read") || c.has("ledger:write") => {
                return Ok(LedgerAuditor)
            }
            Ok(Some(_)) => {
                return Err(
                    crate::web::error::ApiError(AppError::Forbidden("ledger:read")).into_response(),
                )
            }
            Ok(None) => {}
            Err(e) => return Err(crate::web::error::ApiError(e).into_response()),
        }
        crate::auth::Require::<crate::auth::perm::AuditLedger>::from_request_parts(parts, state)
            .await
            .map(|_| LedgerAuditor)
    }
}

/// Who may read record content: a system token with `ledger:read`.
pub struct LedgerContentReader;

impl FromRequestParts<AppState> for LedgerContentReader {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match from_headers(state, parts).await {
            Ok(Some(c)) if c.has("ledger:read") => Ok(LedgerContentReader),
            Ok(Some(_)) => {
                Err(crate::web::error::ApiError(AppError::Forbidden("ledger:read")).into_response())
            }
            Ok(None) => Err(crate::web::error::ApiError(AppError::Unauthenticated).into_response()),
            Err(e) => Err(crate::web::error::ApiError(e).into_response()),
        }
    }
}

/// A caller with the `access:check` scope, and its address.
pub struct AccessChecker(pub SystemCaller, pub String);

impl FromRequestParts<AppState> for AccessChecker {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let ip = crate::auth::session::client_ip(parts);
        match from_headers(state, parts).await {
            Ok(Some(c)) if c.has("access:check") => Ok(AccessChecker(c, ip)),
            Ok(Some(_)) => Err(
                crate::web::error::ApiError(AppError::Forbidden("access:check")).into_response(),
            ),
            Ok(None) => Err(crate::web::error::ApiError(AppError::Unauthenticated).into_response()),
            Err(e) => Err(crate::web::error::ApiError(e).into_response()),
        }
    }
}
