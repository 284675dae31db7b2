//! SQL for cards, their ceremonies and loss reports.

use crate::db::Conn;
use crate::ids::{AccountId, OrgUnitId, PersonId};
use serde::Serialize;
use sqlx::Row;

/// A card as the service sees it (the credential JSON included).
#[derive(Debug, Clone)]
pub struct CardRow {
    pub id: i64,
    pub person_id: PersonId,
    pub account_id: AccountId,
    pub credential_id: String,
    pub passkey: String,
    pub status: String,
    pub org_unit_id: Option<OrgUnitId>,
}

/// A card as lists show it: never the credential itself.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CardView {
    pub id: i64,
    pub person_id: PersonId,
    pub person_name: String,
    pub login: String,
    pub label: String,
    /// The model's AAGUID (zeros when the authenticator gives none).
    pub aaguid: String,
    /// Who registered it (`person:12`).
    pub registered_by: String,
    pub registered_at: i64,
    /// `active`, `suspended` or `revoked`.
    pub status: String,
    pub status_at: i64,
    pub last_used_at: Option<i64>,
}

const CARD_SELECT: &str =
    "SELECT c.id, c.person_id, c.account_id, c.credential_id, c.passkey, c.status, p.org_unit_id
    FROM cards c JOIN persons p ON p.id = c.person_id";

fn card_row(r: &sqlx::any::AnyRow) -> Result<CardRow, sqlx::Error> {
    Ok(CardRow {
        id: r.try_get(0)?,
        person_id: PersonId(r.try_get(1)?),
        account_id: AccountId(r.try_get(2)?),
        credential_id: r.try_get(3)?,
        passkey: r.try_get(4)?,
        status: r.try_get(5)?,
        org_unit_id: r.try_get::<Option<i64>, _>(6)?.map(OrgUnitId),
    })
}

pub async fn get(conn: &mut Conn, id: i64) -> Result<Option<CardRow>, sqlx::Error> {
    let row = sqlx::query(&format!("{CARD_SELECT} WHERE c.id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(card_row).transpose()
}

pub async fn by_credential(
    conn: &mut Conn,
    credential_id: &str,
) -> Result<Option<CardRow>, sqlx::Error> {
    let row = sqlx::query(&format!("{CARD_SELECT} WHERE c.credential_id = $1"))
        .bind(credential_id)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(card_row).transpose()
}

/// The account's cards in a status (all statuses when `None`).
pub async fn of_account(
    conn: &mut Conn,
    account: AccountId,
    status: Option<&str>,
) -> Result<Vec<CardRow>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "{CARD_SELECT} WHERE c.account_id = $1 AND ($2 = '' OR c.status = $2) ORDER BY c.id"
    ))
    .bind(account.0)
    .bind(status.unwrap_or(""))
    .fetch_all(conn)
    .await?;
    rows.iter().map(card_row).collect()
}

#[allow(clippy::too_many_arguments)]
pub async fn insert(
    conn: &mut Conn,
    person: PersonId,
    account: AccountId,
    credential_id: &str,
    passkey: &str,
    label: &str,
    aaguid: &str,
    registered_by: &str,
    now: i64,
) -> Result<i64, sqlx::Error> {
    let row = sqlx::query(
        "INSERT INTO cards (person_id, account_id, credential_id, passkey, label, aaguid, registered_by, registered_at, status, status_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'active', $8) RETURNING id",
    )
    .bind(person.0)
    .bind(account.0)
    .bind(credential_id)
    .bind(passkey)
    .bind(label)
    .bind(aaguid)
    .bind(registered_by)
    .bind(now)
    .fetch_one(conn)
    .await?;
    row.try_get(0)
}

pub async fn set_status(
    conn: &mut Conn,
    id: i64,
    status: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE cards SET status = $1, status_at = $2 WHERE id = $3")
        .bind(status)
        .bind(now)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Saves the credential after a use (its signature counter moves on).
pub async fn used(conn: &mut Conn, id: i64, passkey: &str, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE cards SET passkey = $1, last_used_at = $2 WHERE id = $3")
        .bind(passkey)
        .bind(now)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Cards for lists: one account's, or those of people in the given units
/// (every card when `units` is `None`).
pub async fn list(
    conn: &mut Conn,
    account: Option<AccountId>,
    units: Option<&[OrgUnitId]>,
) -> Result<Vec<CardView>, sqlx::Error> {
    let cond = match (account, units) {
        // Integers we hold ourselves, never input.
        (Some(a), _) => format!("c.account_id = {}", a.0),
        // Integers we formatted ourselves, never input.
        (None, Some(u)) if !u.is_empty() => format!(
            "p.org_unit_id IN ({})",
            u.iter()
                .map(|x| x.0.to_string())
                .collect::<Vec<_>>()
                .join(",")
        ),
        (None, Some(_)) => "1 = 0".into(),
        (None, None) => "1 = 1".into(),
    };
    let rows = sqlx::query(&format!(
        "SELECT c.id, c.person_id, p.name_kanji, a.login, c.label, c.aaguid, c.registered_by, c.registered_at,
                c.status, c.status_at, c.last_used_at
         FROM cards c JOIN persons p ON p.id = c.person_id JOIN accounts a ON a.id = c.account_id
         WHERE {cond} ORDER BY c.id"
    ))
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(CardView {
                id: r.try_get(0)?,
                person_id: PersonId(r.try_get(1)?),
                person_name: r.try_get(2)?,
                login: r.try_get(3)?,
                label: r.try_get(4)?,
                aaguid: r.try_get(5)?,
                registered_by: r.try_get(6)?,
                registered_at: r.try_get(7)?,
                status: r.try_get(8)?,
                status_at: r.try_get(9)?,
                last_used_at: r.try_get(10)?,
            })
        })
        .collect()
}

/// A ceremony in progress.
#[derive(Debug, Clone)]
pub struct Ceremony {
    pub purpose: String,
    pub account_id: AccountId,
    pub session_hash: Option<String>,
    pub label: String,
    pub started_by: String,
    pub state: String,
    pub created_at: i64,
}

#[allow(clippy::too_many_arguments)]
pub async fn put_ceremony(
    conn: &mut Conn,
    id_hash: &str,
    purpose: &str,
    account: AccountId,
    session_hash: Option<&str>,
    label: &str,
    started_by: &str,
    state: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    // Ceremonies older than ten minutes are of no use to anyone.
    sqlx::query("DELETE FROM card_ceremonies WHERE created_at < $1")
        .bind(now - 600)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO card_ceremonies (id_hash, purpose, account_id, session_hash, label, started_by, state, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(id_hash)
    .bind(purpose)
    .bind(account.0)
    .bind(session_hash)
    .bind(label)
    .bind(started_by)
    .bind(state)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Takes a ceremony: it is deleted as it is read, so a challenge answers
/// once (a replayed response finds nothing).
pub async fn take_ceremony(
    conn: &mut Conn,
    id_hash: &str,
) -> Result<Option<Ceremony>, sqlx::Error> {
    let row = sqlx::query(
        "DELETE FROM card_ceremonies WHERE id_hash = $1
         RETURNING purpose, account_id, session_hash, label, started_by, state, created_at",
    )
    .bind(id_hash)
    .fetch_optional(conn)
    .await?;
    row.map(|r| {
        Ok(Ceremony {
            purpose: r.try_get(0)?,
            account_id: AccountId(r.try_get(1)?),
            session_hash: r.try_get(2)?,
            label: r.try_get(3)?,
            started_by: r.try_get(4)?,
            state: r.try_get(5)?,
            created_at: r.try_get(6)?,
        })
    })
    .transpose()
}

pub async fn insert_loss_report(
    conn: &mut Conn,
    card: i64,
    person: PersonId,
    reported_by: &str,
    now: i64,
    sessions_ended: u64,
    note: &str,
) -> Result<i64, sqlx::Error> {
    let row = sqlx::query(
        "INSERT INTO card_loss_reports (card_id, person_id, reported_by, reported_at, sessions_ended, note)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(card)
    .bind(person.0)
    .bind(reported_by)
    .bind(now)
    .bind(sessions_ended as i64)
    .bind(note)
    .fetch_one(conn)
    .await?;
    row.try_get(0)
}

/// A lost-card report, for the security manager.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LossReportView {
    pub id: i64,
    pub card_id: i64,
    pub card_label: String,
    pub person_id: PersonId,
    pub person_name: String,
    pub reported_by: String,
    pub reported_at: i64,
    pub sessions_ended: i64,
    pub note: String,
    /// `open` until the incident module takes it over.
    pub status: String,
}

pub async fn loss_reports(
    conn: &mut Conn,
    units: Option<&[OrgUnitId]>,
) -> Result<Vec<LossReportView>, sqlx::Error> {
    let cond = match units {
        // Integers we formatted ourselves, never input.
        Some(u) if !u.is_empty() => format!(
            "p.org_unit_id IN ({})",
            u.iter()
                .map(|x| x.0.to_string())
                .collect::<Vec<_>>()
                .join(",")
        ),
        Some(_) => "1 = 0".into(),
        None => "1 = 1".into(),
    };
    let rows = sqlx::query(&format!(
        "SELECT r.id, r.card_id, c.label, r.person_id, p.name_kanji, r.reported_by, r.reported_at,
                r.sessions_ended, r.note, r.status
         FROM card_loss_reports r JOIN cards c ON c.id = r.card_id JOIN persons p ON p.id = r.person_id
         WHERE {cond} ORDER BY r.id DESC"
    ))
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(LossReportView {
                id: r.try_get(0)?,
                card_id: r.try_get(1)?,
                card_label: r.try_get(2)?,
                person_id: PersonId(r.try_get(3)?),
                person_name: r.try_get(4)?,
                reported_by: r.try_get(5)?,
                reported_at: r.try_get(6)?,
                sessions_ended: r.try_get(7)?,
                note: r.try_get(8)?,
                status: r.try_get(9)?,
            })
        })
        .collect()
}

/// Text settings of the cards (comma-separated lists in `settings`).
pub async fn get_text(conn: &mut Conn, key: &str) -> Result<String, sqlx::Error> {
    let row = sqlx::query("SELECT value FROM settings WHERE key = $1")
        .bind(key)
        .fetch_optional(conn)
        .await?;
    Ok(match row {
        Some(r) => r.try_get(0)?,
        None => String::new(),
    })
}

pub async fn put_text(
    conn: &mut Conn,
    key: &str,
    value: &str,
    by: Option<i64>,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO settings (key, value, set_by, set_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value, set_by = excluded.set_by, set_at = excluded.set_at",
    )
    .bind(key)
    .bind(value)
    .bind(by)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}
