//! Server-side sessions (a table Mamori owns). The cookie carries a random
//! token; the table keeps only its SHA-256. Nothing is remembered on the
//! terminal (K11.1.4).
//!
//! K12.1.5 rules: a session idle for `session.idle_secs` locks (the lock
//! screen needs the holder's password, or their card and PIN when the
//! session was opened by card); once it has opened secret information
//! ([`mark_secret`]) the shorter `session.secret_idle_secs` applies. The
//! absolute lifetime ends a session, locked or not. Sensitive actions call
//! [`require_recent_auth`]: the last authentication (login, unlock,
//! re-authentication) must be at most `session.reauth_secs` old.

use super::token;
use super::{Actor, HeldRole};
use crate::app::AppState;
use crate::ids::{AccountId, OrgUnitId, PersonId, SystemId};
use crate::records::{self, Outcome, Record};
use crate::web::error::AppError;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use axum::response::Response;
use mamori_policy::permission::Action;
use mamori_policy::Role;
use sqlx::Row;
use std::net::SocketAddr;

/// The request's session as found (or not) from its cookie.
#[derive(Debug, Clone, Default)]
pub struct SessionCtx {
    /// Digest of the cookie token, when a live session exists.
    pub id_hash: Option<String>,
    pub account_id: Option<AccountId>,
    pub csrf: String,
    pub source_ip: String,
    pub user_agent: String,
    /// The cookie named a session that has timed out or was ended.
    pub ended: Option<String>,
    /// The session is locked after idling: only unlocking (or logging out)
    /// is possible.
    pub locked: bool,
    /// `full`, or `card` while the second factor (a card) is still due.
    pub stage: String,
    /// How the session was opened: `password`, `card` or `password+card`.
    pub factors: String,
    /// The card that opened the session, if any (K11.2.2: a lost card ends it).
    pub card_id: Option<i64>,
    /// When the holder last proved who they are (login, unlock, re-authentication).
    pub auth_at: i64,
    /// The session has opened secret information (K12.1.5).
    pub secret: bool,
}

impl SessionCtx {
    /// A live session of an account, fully logged in and not locked.
    pub fn is_full(&self) -> bool {
        self.account_id.is_some() && !self.locked && self.stage == "full"
    }
}

/// How a new session was opened.
#[derive(Debug, Clone)]
pub struct Opened {
    pub factors: &'static str,
    pub stage: &'static str,
    pub card_id: Option<i64>,
}

impl Opened {
    pub const PASSWORD: Opened = Opened {
        factors: "password",
        stage: "full",
        card_id: None,
    };
}

pub fn cookie_name(state: &AppState) -> &'static str {
    if state.config().cookie_secure {
        "__Host-mamori_session"
    } else {
        "mamori_session"
    }
}

/// `Set-Cookie` value for a session token. `Max-Age` is deliberately not
/// set: the cookie dies with the browser, and the server enforces timeouts.
pub fn set_cookie(state: &AppState, token: &str) -> String {
    let secure = if state.config().cookie_secure {
        "; Secure"
    } else {
        ""
    };
    format!(
        "{}={token}; Path=/; HttpOnly; SameSite=Strict{secure}",
        cookie_name(state)
    )
}

pub fn clear_cookie(state: &AppState) -> String {
    let secure = if state.config().cookie_secure {
        "; Secure"
    } else {
        ""
    };
    format!(
        "{}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}",
        cookie_name(state)
    )
}

/// Reads one cookie from the request headers.
pub fn read_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

pub(crate) fn client_ip(parts: &Parts) -> String {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ci| ci.0.ip().to_string())
        .unwrap_or_default()
}

impl FromRequestParts<AppState> for SessionCtx {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(ctx) = parts.extensions.get::<SessionCtx>() {
            return Ok(ctx.clone());
        }
        let mut ctx = SessionCtx {
            source_ip: client_ip(parts),
            user_agent: parts
                .headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(|s| s.chars().take(200).collect())
                .unwrap_or_default(),
            ..Default::default()
        };
        if let Some(tok) = read_cookie(&parts.headers, cookie_name(state)) {
            match lookup(state, &token::digest(&tok)).await {
                Ok(Some(found)) => {
                    if found.ended.is_some() {
                        ctx.ended = found.ended;
                    } else {
                        ctx.id_hash = Some(found.hash);
                        ctx.account_id = found.account;
                        ctx.csrf = found.csrf;
                        ctx.locked = found.locked;
                        ctx.stage = found.stage;
                        ctx.factors = found.factors;
                        ctx.card_id = found.card_id;
                        ctx.auth_at = found.auth_at;
                        ctx.secret = found.secret;
                    }
                }
                Ok(None) => {}
                Err(e) => return Err(super::reject(parts, e)),
            }
        }
        parts.extensions.insert(ctx.clone());
        Ok(ctx)
    }
}

struct Found {
    hash: String,
    account: Option<AccountId>,
    csrf: String,
    ended: Option<String>,
    locked: bool,
    stage: String,
    factors: String,
    card_id: Option<i64>,
    auth_at: i64,
    secret: bool,
}

impl Found {
    fn ended(hash: &str, reason: String) -> Found {
        Found {
            hash: hash.into(),
            account: None,
            csrf: String::new(),
            ended: Some(reason),
            locked: false,
            stage: String::new(),
            factors: String::new(),
            card_id: None,
            auth_at: 0,
            secret: false,
        }
    }
}

/// Finds a session, ending it past its absolute lifetime and locking it
/// when it has idled (K12.1.5).
async fn lookup(state: &AppState, hash: &str) -> Result<Option<Found>, AppError> {
    let now = state.clock().unix();
    let mut conn = state.db().pool().acquire().await?;
    let row = sqlx::query(
        "SELECT account_id, csrf, last_seen_at, expires_at, ended_at, ended_reason,
                locked_at, stage, factors, card_id, auth_at, created_at, secret_at
         FROM sessions WHERE id_hash = $1",
    )
    .bind(hash)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let account: Option<i64> = row.try_get(0)?;
    let csrf: String = row.try_get(1)?;
    let last_seen: i64 = row.try_get(2)?;
    let expires: i64 = row.try_get(3)?;
    let ended_at: Option<i64> = row.try_get(4)?;
    let ended_reason: Option<String> = row.try_get(5)?;
    let locked_at: Option<i64> = row.try_get(6)?;
    let stage: String = row.try_get(7)?;
    let factors: String = row.try_get(8)?;
    let card_id: Option<i64> = row.try_get(9)?;
    let auth_at: Option<i64> = row.try_get(10)?;
    let created_at: i64 = row.try_get(11)?;
    let secret_at: Option<i64> = row.try_get(12)?;
    drop(conn);
    if ended_at.is_some() {
        return Ok(Some(Found::ended(hash, ended_reason.unwrap_or_default())));
    }
    let cfg = &state.config().session;
    let idle = if secret_at.is_some() {
        cfg.idle_secs.min(cfg.secret_idle_secs)
    } else {
        cfg.idle_secs
    };
    if now > expires {
        end_where(state, "id_hash = $2", hash, "absolute_timeout").await?;
        return Ok(Some(Found::ended(hash, "absolute_timeout".into())));
    }
    let mut locked = locked_at.is_some();
    if let Some(acc) = account.filter(|_| !locked && now - last_seen > idle) {
        if stage != "full" {
            // Half a login (the card still due) is not worth a lock screen.
            end_where(state, "id_hash = $2", hash, "idle_timeout").await?;
            return Ok(Some(Found::ended(hash, "idle_timeout".into())));
        }
        let mut tx = state.db().begin().await?;
        let newly = sqlx::query(
            "UPDATE sessions SET locked_at = $1 WHERE id_hash = $2 AND locked_at IS NULL",
        )
        .bind(now)
        .bind(hash)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let rec = Record::new(
            crate::records::Who::Account(AccountId(acc)),
            "session.lock",
            AccountId(acc).record_ref(),
            "K12.1.5",
        )
        .detail(serde_json::json!({ "idle_secs": now - last_seen, "secret": secret_at.is_some() }));
        // Two requests may find the same idle session; one record says it locked.
        if newly > 0 {
            records::append(&mut tx, state.clock().unix_micros(), &rec).await?;
        }
        tx.commit().await?;
        locked = true;
    } else if !locked && now - last_seen >= 15 {
        // Touch at most every 15 s so a page with many requests writes once.
        sqlx::query(
            "UPDATE sessions SET last_seen_at = $1 WHERE id_hash = $2 AND ended_at IS NULL",
        )
        .bind(now)
        .bind(hash)
        .execute(state.db().pool())
        .await?;
    }
    Ok(Some(Found {
        hash: hash.into(),
        account: account.map(AccountId),
        csrf,
        ended: None,
        locked,
        stage,
        factors,
        card_id,
        auth_at: auth_at.unwrap_or(created_at),
        secret: secret_at.is_some(),
    }))
}

async fn end_where(
    state: &AppState,
    cond: &str,
    arg: &str,
    reason: &str,
) -> Result<u64, sqlx::Error> {
    let sql = format!(
        "UPDATE sessions SET ended_at = $1, ended_reason = $3 WHERE ended_at IS NULL AND {cond}"
    );
    Ok(sqlx::query(&sql)
        .bind(state.clock().unix())
        .bind(arg)
        .bind(reason)
        .execute(state.db().pool())
        .await?
        .rows_affected())
}

/// Starts a session (anonymous when `account` is `None`) and returns the
/// cookie token. Logging in always starts a new session, so a session id
/// seen before login is worthless after it.
pub async fn create(
    conn: &mut crate::db::Conn,
    state: &AppState,
    account: Option<AccountId>,
    ctx: &SessionCtx,
) -> Result<(String, String), sqlx::Error> {
    create_opened(conn, state, account, ctx, &Opened::PASSWORD).await
}

/// Starts a session opened as `opened` says (factors, stage, card).
pub async fn create_opened(
    conn: &mut crate::db::Conn,
    state: &AppState,
    account: Option<AccountId>,
    ctx: &SessionCtx,
    opened: &Opened,
) -> Result<(String, String), sqlx::Error> {
    let tok = token::new_token();
    let csrf = token::new_token();
    let now = state.clock().unix();
    let lifetime = if account.is_some() {
        state.config().session.absolute_secs
    } else {
        3600
    };
    sqlx::query(
        "INSERT INTO sessions (id_hash, account_id, csrf, created_at, last_seen_at, expires_at, source_ip, user_agent,
                               factors, stage, card_id, auth_at)
         VALUES ($1, $2, $3, $4, $4, $5, $6, $7, $8, $9, $10, $4)",
    )
    .bind(token::digest(&tok))
    .bind(account.map(|a| a.0))
    .bind(&csrf)
    .bind(now)
    .bind(now + lifetime)
    .bind(&ctx.source_ip)
    .bind(&ctx.user_agent)
    .bind(opened.factors)
    .bind(opened.stage)
    .bind(opened.card_id)
    .execute(conn)
    .await?;
    Ok((tok, csrf))
}

/// Ends one session by its digest.
pub async fn end(
    conn: &mut crate::db::Conn,
    now: i64,
    id_hash: &str,
    reason: &str,
) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query("UPDATE sessions SET ended_at = $1, ended_reason = $2 WHERE id_hash = $3 AND ended_at IS NULL")
        .bind(now)
        .bind(reason)
        .bind(id_hash)
        .execute(conn)
        .await?
        .rows_affected())
}

/// Ends every live session of an account; returns how many.
pub async fn end_all_for_account(
    conn: &mut crate::db::Conn,
    now: i64,
    account: AccountId,
    reason: &str,
) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query("UPDATE sessions SET ended_at = $1, ended_reason = $2 WHERE account_id = $3 AND ended_at IS NULL")
        .bind(now)
        .bind(reason)
        .bind(account.0)
        .execute(conn)
        .await?
        .rows_affected())
}

/// Ends every live session a card opened (K11.2.2); returns how many.
pub async fn end_all_for_card(
    conn: &mut crate::db::Conn,
    now: i64,
    card: i64,
    reason: &str,
) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query("UPDATE sessions SET ended_at = $1, ended_reason = $2 WHERE card_id = $3 AND ended_at IS NULL")
        .bind(now)
        .bind(reason)
        .bind(card)
        .execute(conn)
        .await?
        .rows_affected())
}

/// The holder proved who they are again: unlocks the session and restarts
/// the clocks of idling and re-authentication. `card` and `factors`, when
/// given, record a card that completed the login.
pub async fn authenticated(
    conn: &mut crate::db::Conn,
    now: i64,
    id_hash: &str,
    card: Option<i64>,
    factors: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE sessions SET locked_at = NULL, unlock_failures = 0, auth_at = $1, last_seen_at = $1, stage = 'full',
                card_id = COALESCE($2, card_id), factors = COALESCE($3, factors)
         WHERE id_hash = $4 AND ended_at IS NULL",
    )
    .bind(now)
    .bind(card)
    .bind(factors)
    .bind(id_hash)
    .execute(conn)
    .await?;
    Ok(())
}

/// Counts a failed unlock; after five the session ends. Returns whether it ended.
pub async fn unlock_failed(
    conn: &mut crate::db::Conn,
    now: i64,
    id_hash: &str,
) -> Result<bool, sqlx::Error> {
    sqlx::query("UPDATE sessions SET unlock_failures = unlock_failures + 1 WHERE id_hash = $1")
        .bind(id_hash)
        .execute(&mut *conn)
        .await?;
    let ended = sqlx::query(
        "UPDATE sessions SET ended_at = $1, ended_reason = 'unlock_failed'
         WHERE id_hash = $2 AND ended_at IS NULL AND unlock_failures >= 5",
    )
    .bind(now)
    .bind(id_hash)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(ended > 0)
}

/// Marks the session as having opened secret information (K12.1.5): from
/// now on the shorter idle time `session.secret_idle_secs` locks it. The
/// assets code calls this when it shows a secret asset's content.
pub async fn mark_secret(state: &AppState, session: &SessionCtx) -> Result<(), AppError> {
    if let Some(hash) = &session.id_hash {
        sqlx::query(
            "UPDATE sessions SET secret_at = COALESCE(secret_at, $1) WHERE id_hash = $2 AND ended_at IS NULL",
        )
        .bind(state.clock().unix())
        .bind(hash)
        .execute(state.db().pool())
        .await?;
    }
    Ok(())
}

/// Sensitive actions (changing credentials, registering cards, granting
/// rights) call this first: the holder must have authenticated within
/// `session.reauth_secs`, else [`AppError::ReauthRequired`] sends them to
/// the re-authentication page (403 `error.reauth_required` in the API).
pub fn require_recent_auth(state: &AppState, actor: &Actor) -> Result<(), AppError> {
    let age = state.clock().unix() - actor.session.auth_at;
    if age <= state.config().session.reauth_secs {
        Ok(())
    } else {
        Err(AppError::ReauthRequired)
    }
}

/// Loads the actor behind a session, or `None` when nobody is logged in,
/// the session is locked or half-open (card still due), or the account may
/// no longer log in (disabled, retired: K17.3).
pub async fn load_actor(state: &AppState, ctx: &SessionCtx) -> Result<Option<Actor>, AppError> {
    if !ctx.is_full() {
        return Ok(None);
    }
    let (Some(account), Some(hash)) = (ctx.account_id, ctx.id_hash.as_ref()) else {
        return Ok(None);
    };
    let today = crate::clock::date_str(state.clock().today());
    let now = state.clock().unix();
    let mut conn = state.db().pool().acquire().await?;
    let row = sqlx::query(
        "SELECT a.login, a.person_id, a.must_change, a.disabled, a.password_changed_at, a.password_hash,
                a.shared_org_unit_id, p.status, p.left_on, p.org_unit_id
         FROM accounts a LEFT JOIN persons p ON p.id = a.person_id WHERE a.id = $1",
    )
    .bind(account.0)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let login: String = row.try_get(0)?;
    let person: Option<i64> = row.try_get(1)?;
    let must_change: i64 = row.try_get(2)?;
    let disabled: i64 = row.try_get(3)?;
    let changed_at: Option<i64> = row.try_get(4)?;
    let has_password = row.try_get::<Option<String>, _>(5)?.is_some();
    let shared_unit: Option<i64> = row.try_get(6)?;
    let status: Option<String> = row.try_get(7)?;
    let left_on: Option<String> = row.try_get(8)?;
    let org_unit: Option<i64> = row.try_get(9)?;
    let gone = disabled != 0
        || status.as_deref() == Some("retired")
        || left_on.as_deref().is_some_and(|d| d <= today.as_str());
    if gone {
        drop(conn);
        end_where(state, "id_hash = $2", hash, "account_disabled").await?;
        return Ok(None);
    }
    // K32.2: an auditor account created for an audit works only within the
    // audit's period; every route refuses it outside, saying why.
    crate::audits::service::check_auditor_window(&mut conn, account, &today).await?;
    let mut roles = Vec::new();
    if let Some(pid) = person {
        let rows = sqlx::query(
            "SELECT role, org_unit_id, system_id FROM role_assignments
             WHERE person_id = $1 AND valid_from <= $2 AND (valid_to IS NULL OR valid_to >= $2)",
        )
        .bind(pid)
        .bind(&today)
        .fetch_all(&mut *conn)
        .await?;
        for r in rows {
            let code: String = r.try_get(0)?;
            if let Ok(role) = code.parse::<Role>() {
                roles.push(HeldRole {
                    role,
                    org_unit: r.try_get::<Option<i64>, _>(1)?.map(OrgUnitId),
                    system: r.try_get::<Option<i64>, _>(2)?.map(SystemId),
                });
            }
        }
    }
    // Every member of staff, and a shared account, acts as 職員等 in its unit.
    if let Some(unit) = org_unit.or(shared_unit) {
        roles.push(HeldRole {
            role: Role::Staff,
            org_unit: Some(OrgUnitId(unit)),
            system: None,
        });
    }
    let max_age_days = crate::settings::password_max_age_days(&mut conn).await?;
    let expired = max_age_days > 0 && changed_at.is_some_and(|c| now - c > max_age_days * 86_400);
    Ok(Some(Actor {
        account_id: account,
        person_id: person.map(PersonId),
        login,
        roles,
        must_change: must_change != 0 || expired || !has_password,
        session: ctx.clone(),
    }))
}

/// Records a refused request (K16.2.1: access records include refusals).
pub async fn record_denied(state: &AppState, actor: &Actor, action: Action, path: &str) {
    let rec = Record::new(
        actor.who(),
        "access.denied",
        format!("route:{path}"),
        "K12.1.2",
    )
    .outcome(Outcome::Denied)
    .from_ip(actor.ip())
    .detail(serde_json::json!({ "needed": action.code() }));
    let result = async {
        let mut tx = state.db().begin().await?;
        records::append(&mut tx, state.clock().unix_micros(), &rec).await?;
        tx.commit().await
    }
    .await;
    if let Err(e) = result {
        tracing::error!(error = %e, "could not record a refusal");
    }
}
