//! SQL for accounts, password history and throttling.

use crate::db::Conn;
use crate::ids::{AccountId, OrgUnitId, PersonId};
use sqlx::Row;

/// What login and password changes need of an account.
#[derive(Debug, Clone)]
pub struct AccountRow {
    pub id: AccountId,
    pub login: String,
    pub person_id: Option<PersonId>,
    pub kind: String,
    pub password_hash: Option<String>,
    pub must_change: bool,
    pub disabled: bool,
    pub failed_logins: i64,
    pub locked_until: Option<i64>,
    pub manual_lock: bool,
    pub person_status: Option<String>,
    pub left_on: Option<String>,
    pub org_unit_id: Option<OrgUnitId>,
}

const ACCOUNT_SELECT: &str = "SELECT a.id, a.login, a.person_id, a.kind, a.password_hash, a.must_change, a.disabled,
        a.failed_logins, a.locked_until, a.manual_lock, p.status, p.left_on, COALESCE(p.org_unit_id, a.shared_org_unit_id)
    FROM accounts a LEFT JOIN persons p ON p.id = a.person_id";

fn from_row(r: &sqlx::any::AnyRow) -> Result<AccountRow, sqlx::Error> {
    Ok(AccountRow {
        id: AccountId(r.try_get(0)?),
        login: r.try_get(1)?,
        person_id: r.try_get::<Option<i64>, _>(2)?.map(PersonId),
        kind: r.try_get(3)?,
        password_hash: r.try_get(4)?,
        must_change: r.try_get::<i64, _>(5)? != 0,
        disabled: r.try_get::<i64, _>(6)? != 0,
        failed_logins: r.try_get(7)?,
        locked_until: r.try_get(8)?,
        manual_lock: r.try_get::<i64, _>(9)? != 0,
        person_status: r.try_get(10)?,
        left_on: r.try_get(11)?,
        org_unit_id: r.try_get::<Option<i64>, _>(12)?.map(OrgUnitId),
    })
}

pub async fn by_login(conn: &mut Conn, login: &str) -> Result<Option<AccountRow>, sqlx::Error> {
    let row = sqlx::query(&format!("{ACCOUNT_SELECT} WHERE a.login = $1"))
        .bind(login)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn by_id(conn: &mut Conn, id: AccountId) -> Result<Option<AccountRow>, sqlx::Error> {
    let row = sqlx::query(&format!("{ACCOUNT_SELECT} WHERE a.id = $1"))
        .bind(id.0)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// Accounts in the given units (all when `None`), active ones only.
pub async fn ids_in_units(
    conn: &mut Conn,
    units: Option<&[OrgUnitId]>,
) -> Result<Vec<AccountId>, sqlx::Error> {
    let cond = match units {
        // Integers we formatted ourselves, never input.
        Some(u) if !u.is_empty() => format!(
            "COALESCE(p.org_unit_id, a.shared_org_unit_id) IN ({})",
            u.iter()
                .map(|x| x.0.to_string())
                .collect::<Vec<_>>()
                .join(",")
        ),
        Some(_) => "1 = 0".into(),
        None => "1 = 1".into(),
    };
    let rows = sqlx::query(&format!(
        "SELECT a.id FROM accounts a LEFT JOIN persons p ON p.id = a.person_id WHERE a.disabled = 0 AND {cond}"
    ))
    .fetch_all(conn)
    .await?;
    rows.iter().map(|r| r.try_get(0).map(AccountId)).collect()
}

pub async fn insert_personal_account(
    conn: &mut Conn,
    person: PersonId,
    login: &str,
    disabled: bool,
    now: i64,
) -> Result<AccountId, sqlx::Error> {
    let row = sqlx::query(
        "INSERT INTO accounts (login, person_id, kind, disabled, must_change, created_at)
         VALUES ($1, $2, 'personal', $3, 1, $4) RETURNING id",
    )
    .bind(login)
    .bind(person.0)
    .bind(i64::from(disabled))
    .bind(now)
    .fetch_one(conn)
    .await?;
    Ok(AccountId(row.try_get(0)?))
}

pub async fn insert_shared_account(
    conn: &mut Conn,
    login: &str,
    justification: &str,
    owner: PersonId,
    unit: OrgUnitId,
    now: i64,
) -> Result<AccountId, sqlx::Error> {
    let row = sqlx::query(
        "INSERT INTO accounts (login, kind, shared_justification, shared_owner_id, shared_org_unit_id, must_change, created_at)
         VALUES ($1, 'shared', $2, $3, $4, 1, $5) RETURNING id",
    )
    .bind(login)
    .bind(justification)
    .bind(owner.0)
    .bind(unit.0)
    .bind(now)
    .fetch_one(conn)
    .await?;
    Ok(AccountId(row.try_get(0)?))
}

/// Shared accounts with their justification and owner (K17.2).
pub async fn list_shared(
    conn: &mut Conn,
) -> Result<Vec<(AccountId, String, String, Option<String>, Option<i64>)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT a.id, a.login, COALESCE(a.shared_justification, ''), p.name_kanji, a.shared_org_unit_id
         FROM accounts a LEFT JOIN persons p ON p.id = a.shared_owner_id WHERE a.kind = 'shared' ORDER BY a.login",
    )
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok((
                AccountId(r.try_get(0)?),
                r.try_get(1)?,
                r.try_get(2)?,
                r.try_get(3)?,
                r.try_get(4)?,
            ))
        })
        .collect()
}

pub async fn set_disabled(
    conn: &mut Conn,
    person: PersonId,
    disabled: bool,
    reason: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE accounts SET disabled = $1, disabled_reason = $2 WHERE person_id = $3")
        .bind(i64::from(disabled))
        .bind(reason)
        .bind(person.0)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn set_password(
    conn: &mut Conn,
    id: AccountId,
    hash: &str,
    fp: i64,
    now: i64,
    must_change: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE accounts SET password_hash = $1, password_fp = $2, password_changed_at = $3, must_change = $4,
                must_change_reason = NULL, failed_logins = 0, locked_until = NULL WHERE id = $5",
    )
    .bind(hash)
    .bind(fp)
    .bind(now)
    .bind(i64::from(must_change))
    .bind(id.0)
    .execute(&mut *conn)
    .await?;
    sqlx::query("INSERT INTO password_history (account_id, hash, changed_at) VALUES ($1, $2, $3)")
        .bind(id.0)
        .bind(hash)
        .bind(now)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn recent_hashes(
    conn: &mut Conn,
    id: AccountId,
    n: i64,
) -> Result<Vec<String>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT hash FROM password_history WHERE account_id = $1 ORDER BY id DESC LIMIT $2",
    )
    .bind(id.0)
    .bind(n)
    .fetch_all(conn)
    .await?;
    rows.iter().map(|r| r.try_get(0)).collect()
}

/// Active accounts other than `me` whose password fingerprint is `fp`.
pub async fn fingerprint_candidates(
    conn: &mut Conn,
    fp: i64,
    me: AccountId,
) -> Result<Vec<(AccountId, String)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, password_hash FROM accounts
         WHERE password_fp = $1 AND id <> $2 AND disabled = 0 AND password_hash IS NOT NULL",
    )
    .bind(fp)
    .bind(me.0)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| Ok((AccountId(r.try_get(0)?), r.try_get(1)?)))
        .collect()
}

pub async fn force_change(conn: &mut Conn, id: AccountId, reason: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE accounts SET must_change = 1, must_change_reason = $1 WHERE id = $2")
        .bind(reason)
        .bind(id.0)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn must_change_reason(
    conn: &mut Conn,
    id: AccountId,
) -> Result<Option<String>, sqlx::Error> {
    let row = sqlx::query("SELECT must_change_reason FROM accounts WHERE id = $1")
        .bind(id.0)
        .fetch_optional(conn)
        .await?;
    Ok(match row {
        Some(r) => r.try_get(0)?,
        None => None,
    })
}

pub async fn password_changed_at(
    conn: &mut Conn,
    id: AccountId,
) -> Result<Option<i64>, sqlx::Error> {
    let row = sqlx::query("SELECT password_changed_at FROM accounts WHERE id = $1")
        .bind(id.0)
        .fetch_optional(conn)
        .await?;
    Ok(match row {
        Some(r) => r.try_get(0)?,
        None => None,
    })
}

pub async fn record_failure(
    conn: &mut Conn,
    id: AccountId,
    failures: i64,
    locked_until: Option<i64>,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE accounts SET failed_logins = $1, locked_until = $2 WHERE id = $3")
        .bind(failures)
        .bind(locked_until)
        .bind(id.0)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn record_success(conn: &mut Conn, id: AccountId, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE accounts SET failed_logins = 0, locked_until = NULL, last_login_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id.0)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn set_manual_lock(
    conn: &mut Conn,
    id: AccountId,
    locked: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE accounts SET manual_lock = $1, failed_logins = 0, locked_until = NULL WHERE id = $2")
        .bind(i64::from(locked))
        .bind(id.0)
        .execute(conn)
        .await?;
    Ok(())
}

/// The per-source failure counter: (failures, locked_until).
pub async fn source_state(
    conn: &mut Conn,
    source: &str,
) -> Result<Option<(i64, Option<i64>, i64)>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT failures, locked_until, last_failure_at FROM source_throttle WHERE source = $1",
    )
    .bind(source)
    .fetch_optional(conn)
    .await?;
    row.map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
        .transpose()
}

pub async fn put_source_state(
    conn: &mut Conn,
    source: &str,
    failures: i64,
    locked_until: Option<i64>,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO source_throttle (source, failures, locked_until, last_failure_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (source) DO UPDATE SET failures = excluded.failures, locked_until = excluded.locked_until,
             last_failure_at = excluded.last_failure_at",
    )
    .bind(source)
    .bind(failures)
    .bind(locked_until)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn clear_source(conn: &mut Conn, source: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM source_throttle WHERE source = $1")
        .bind(source)
        .execute(conn)
        .await?;
    Ok(())
}

/// A session as listed on "my sessions".
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct SessionView {
    /// A short public id: the first 16 hex digits of the session digest.
    pub id: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub source_ip: String,
    pub user_agent: String,
    pub current: bool,
}

pub async fn live_sessions(
    conn: &mut Conn,
    account: AccountId,
    current: Option<&str>,
) -> Result<Vec<SessionView>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id_hash, created_at, last_seen_at, source_ip, user_agent FROM sessions
         WHERE account_id = $1 AND ended_at IS NULL ORDER BY created_at DESC",
    )
    .bind(account.0)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            let hash: String = r.try_get(0)?;
            Ok(SessionView {
                id: hash.chars().take(16).collect(),
                current: current == Some(hash.as_str()),
                created_at: r.try_get(1)?,
                last_seen_at: r.try_get(2)?,
                source_ip: r.try_get(3)?,
                user_agent: r.try_get(4)?,
            })
        })
        .collect()
}

/// Ends one of an account's sessions by its public id prefix.
pub async fn end_session_by_prefix(
    conn: &mut Conn,
    account: AccountId,
    prefix: &str,
    now: i64,
) -> Result<u64, sqlx::Error> {
    if prefix.len() != 16 || !prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(0);
    }
    Ok(sqlx::query(
        "UPDATE sessions SET ended_at = $1, ended_reason = 'ended_by_user'
         WHERE account_id = $2 AND ended_at IS NULL AND substr(id_hash, 1, 16) = $3",
    )
    .bind(now)
    .bind(account.0)
    .bind(prefix)
    .execute(conn)
    .await?
    .rows_affected())
}
