//! SQL for persons and personnel events.

use super::{AccountSummary, Person, PersonSecrets, PersonnelEventView};
use crate::db::Conn;
use crate::ids::{AccountId, OrgUnitId, PersonId};
use sqlx::any::AnyRow;
use sqlx::Row;

const PERSON_SELECT: &str = "SELECT p.id, p.employee_number, p.name_kanji, p.name_kana, p.name_romaji, p.employment,
        p.org_unit_id, o.name, p.title, p.status, p.hired_on, p.left_on, p.birth_date,
        a.id, a.login, a.disabled, a.locked_until, a.manual_lock, a.must_change, a.password_hash,
        a.password_changed_at, a.last_login_at
    FROM persons p LEFT JOIN org_units o ON o.id = p.org_unit_id LEFT JOIN accounts a ON a.person_id = p.id";

fn person_from_row(r: &AnyRow, now: i64) -> Result<Person, sqlx::Error> {
    let account = match r.try_get::<Option<i64>, _>(13)? {
        Some(id) => {
            let locked_until: Option<i64> = r.try_get(16)?;
            let manual: i64 = r.try_get(17)?;
            Some(AccountSummary {
                id: AccountId(id),
                login: r.try_get(14)?,
                disabled: r.try_get::<i64, _>(15)? != 0,
                locked: manual != 0 || locked_until.is_some_and(|t| t > now),
                must_change: r.try_get::<i64, _>(18)? != 0,
                has_password: r.try_get::<Option<String>, _>(19)?.is_some(),
                password_changed_at: r.try_get(20)?,
                last_login_at: r.try_get(21)?,
            })
        }
        None => None,
    };
    Ok(Person {
        id: PersonId(r.try_get(0)?),
        employee_number: r.try_get(1)?,
        name_kanji: r.try_get(2)?,
        name_kana: r.try_get(3)?,
        name_romaji: r.try_get(4)?,
        employment: r.try_get(5)?,
        org_unit_id: r.try_get::<Option<i64>, _>(6)?.map(OrgUnitId),
        org_unit_name: r.try_get(7)?,
        title: r.try_get(8)?,
        status: r.try_get(9)?,
        hired_on: r.try_get(10)?,
        left_on: r.try_get(11)?,
        has_birth_date: r.try_get::<Option<String>, _>(12)?.is_some(),
        account,
    })
}

pub async fn get_person(conn: &mut Conn, id: PersonId) -> Result<Option<Person>, sqlx::Error> {
    let row = sqlx::query(&format!("{PERSON_SELECT} WHERE p.id = $1"))
        .bind(id.0)
        .fetch_optional(conn)
        .await?;
    row.as_ref()
        .map(|r| person_from_row(r, time::OffsetDateTime::now_utc().unix_timestamp()))
        .transpose()
}

pub async fn person_by_number(
    conn: &mut Conn,
    number: &str,
) -> Result<Option<Person>, sqlx::Error> {
    let row = sqlx::query(&format!("{PERSON_SELECT} WHERE p.employee_number = $1"))
        .bind(number)
        .fetch_optional(conn)
        .await?;
    row.as_ref()
        .map(|r| person_from_row(r, time::OffsetDateTime::now_utc().unix_timestamp()))
        .transpose()
}

/// People in the given units (all when `units` is `None`), filtered by a
/// substring of name, kana, romaji or number.
pub async fn list_people(
    conn: &mut Conn,
    units: Option<&[OrgUnitId]>,
    query: &str,
    now: i64,
    limit: i64,
) -> Result<Vec<Person>, sqlx::Error> {
    // NUL and other control characters cannot be in stored names, and
    // PostgreSQL refuses NUL in text: drop them from the search.
    let clean: String = query
        .chars()
        .filter(|c| !c.is_control() && *c != '%' && *c != '_')
        .collect();
    let pattern = format!("%{clean}%");
    let unit_list = units.map(|u| {
        u.iter()
            .map(|x| x.0.to_string())
            .collect::<Vec<_>>()
            .join(",")
    });
    // The unit list is made of integers we formatted ourselves, never input.
    let unit_cond = match &unit_list {
        Some(l) if !l.is_empty() => format!("p.org_unit_id IN ({l})"),
        Some(_) => "1 = 0".to_string(),
        None => "1 = 1".to_string(),
    };
    let rows = sqlx::query(&format!(
        "{PERSON_SELECT} WHERE {unit_cond} AND ($1 = '%%' OR p.name_kanji LIKE $1 OR p.name_kana LIKE $1
           OR p.name_romaji LIKE $1 OR p.employee_number LIKE $1)
         ORDER BY p.employee_number LIMIT $2"
    ))
    .bind(&pattern)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.iter().map(|r| person_from_row(r, now)).collect()
}

pub async fn secrets(conn: &mut Conn, id: PersonId) -> Result<Option<PersonSecrets>, sqlx::Error> {
    let row = sqlx::query("SELECT employee_number, name_kanji, name_kana, name_romaji, birth_date FROM persons WHERE id = $1")
        .bind(id.0)
        .fetch_optional(conn)
        .await?;
    let Some(r) = row else { return Ok(None) };
    let birth: Option<String> = r.try_get(4)?;
    Ok(Some(PersonSecrets {
        employee_number: r.try_get(0)?,
        name_kanji: r.try_get(1)?,
        name_kana: r.try_get(2)?,
        name_romaji: r.try_get(3)?,
        birth_date: birth.as_deref().and_then(crate::clock::parse_date_str),
    }))
}

pub struct NewPerson<'a> {
    pub employee_number: &'a str,
    pub name_kanji: &'a str,
    pub name_kana: &'a str,
    pub name_romaji: &'a str,
    pub birth_date: Option<&'a str>,
    pub employment: &'a str,
    pub org_unit_id: Option<OrgUnitId>,
    pub title: &'a str,
    pub status: &'a str,
    pub hired_on: Option<&'a str>,
}

pub async fn insert_person(
    conn: &mut Conn,
    p: &NewPerson<'_>,
    now: i64,
) -> Result<PersonId, sqlx::Error> {
    let row = sqlx::query(
        "INSERT INTO persons (employee_number, name_kanji, name_kana, name_romaji, birth_date, employment,
                              org_unit_id, title, status, hired_on, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11) RETURNING id",
    )
    .bind(p.employee_number)
    .bind(p.name_kanji)
    .bind(p.name_kana)
    .bind(p.name_romaji)
    .bind(p.birth_date)
    .bind(p.employment)
    .bind(p.org_unit_id.map(|u| u.0))
    .bind(p.title)
    .bind(p.status)
    .bind(p.hired_on)
    .bind(now)
    .fetch_one(conn)
    .await?;
    Ok(PersonId(row.try_get(0)?))
}

/// Moves a person (transfer or dispatch) and sets their status.
pub async fn set_post(
    conn: &mut Conn,
    id: PersonId,
    unit: Option<OrgUnitId>,
    title: Option<&str>,
    status: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE persons SET org_unit_id = $1, title = COALESCE($2, title), status = $3, updated_at = $4 WHERE id = $5",
    )
    .bind(unit.map(|u| u.0))
    .bind(title)
    .bind(status)
    .bind(now)
    .bind(id.0)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn set_status(
    conn: &mut Conn,
    id: PersonId,
    status: &str,
    left_on: Option<&str>,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE persons SET status = $1, left_on = COALESCE($2, left_on), updated_at = $3 WHERE id = $4")
        .bind(status)
        .bind(left_on)
        .bind(now)
        .bind(id.0)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn set_left_on(
    conn: &mut Conn,
    id: PersonId,
    left_on: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE persons SET left_on = $1, updated_at = $2 WHERE id = $3")
        .bind(left_on)
        .bind(now)
        .bind(id.0)
        .execute(conn)
        .await?;
    Ok(())
}

pub struct NewEvent<'a> {
    pub employee_number: &'a str,
    pub kind: &'a str,
    pub effective_date: &'a str,
    pub payload: String,
    pub status: &'a str,
    pub source: &'a str,
    pub created_by: Option<PersonId>,
}

pub async fn insert_event(conn: &mut Conn, e: &NewEvent<'_>, now: i64) -> Result<i64, sqlx::Error> {
    let applied = (e.status == "applied").then_some(now);
    let row = sqlx::query(
        "INSERT INTO personnel_events (employee_number, kind, effective_date, payload, status, source, created_by, created_at, applied_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
    )
    .bind(e.employee_number)
    .bind(e.kind)
    .bind(e.effective_date)
    .bind(&e.payload)
    .bind(e.status)
    .bind(e.source)
    .bind(e.created_by.map(|p| p.0))
    .bind(now)
    .bind(applied)
    .fetch_one(conn)
    .await?;
    row.try_get(0)
}

pub async fn mark_event(
    conn: &mut Conn,
    id: i64,
    status: &str,
    error: Option<&str>,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE personnel_events SET status = $1, error = $2, applied_at = $3 WHERE id = $4",
    )
    .bind(status)
    .bind(error)
    .bind(now)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Scheduled events due on or before `date`, oldest first.
pub async fn due_events(conn: &mut Conn, date: &str) -> Result<Vec<(i64, String)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, payload FROM personnel_events WHERE status = 'scheduled' AND effective_date <= $1
         ORDER BY effective_date, id",
    )
    .bind(date)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect()
}

pub async fn list_events(
    conn: &mut Conn,
    number: Option<&str>,
    limit: i64,
) -> Result<Vec<PersonnelEventView>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, employee_number, kind, effective_date, status, source, error, created_at, applied_at, payload
         FROM personnel_events WHERE ($1 = '' OR employee_number = $1) ORDER BY id DESC LIMIT $2",
    )
    .bind(number.unwrap_or(""))
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            let payload: String = r.try_get(9)?;
            let mut detail: serde_json::Value = serde_json::from_str(&payload).unwrap_or_default();
            // The birth date stays out of every listing.
            if let Some(o) = detail.as_object_mut() {
                o.remove("birth_date");
            }
            Ok(PersonnelEventView {
                id: r.try_get(0)?,
                employee_number: r.try_get(1)?,
                kind: r.try_get(2)?,
                effective_date: r.try_get(3)?,
                status: r.try_get(4)?,
                source: r.try_get(5)?,
                error: r.try_get(6)?,
                created_at: r.try_get(7)?,
                applied_at: r.try_get(8)?,
                detail,
            })
        })
        .collect()
}
