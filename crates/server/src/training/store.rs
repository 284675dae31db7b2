//! SQL of training (K9).

use super::{AudienceMember, Instruction, Session};
use crate::db::Conn;
use sqlx::Row;

const SESSION_SELECT: &str = "SELECT s.id, s.title, s.held_on, s.description, s.audience, s.required,
    s.organiser_id, p.name_kanji, s.org_unit_id, s.created_at, s.cancelled_at
    FROM training_sessions s LEFT JOIN persons p ON p.id = s.organiser_id";

fn session_row(r: &sqlx::any::AnyRow) -> Result<Session, sqlx::Error> {
    Ok(Session {
        id: r.try_get(0)?,
        title: r.try_get(1)?,
        held_on: r.try_get(2)?,
        description: r.try_get(3)?,
        audience: r.try_get(4)?,
        units: vec![],
        roles: vec![],
        required: r.try_get::<i64, _>(5)? != 0,
        organiser_id: r.try_get(6)?,
        organiser_name: r.try_get(7)?,
        org_unit_id: r.try_get(8)?,
        created_at: r.try_get(9)?,
        cancelled_at: r.try_get(10)?,
    })
}

async fn fill_audience(conn: &mut Conn, s: &mut Session) -> Result<(), sqlx::Error> {
    let rows = sqlx::query(
        "SELECT kind, value FROM training_audience WHERE session_id = $1 ORDER BY kind, value",
    )
    .bind(s.id)
    .fetch_all(conn)
    .await?;
    for r in rows {
        let kind: String = r.try_get(0)?;
        let value: String = r.try_get(1)?;
        match kind.as_str() {
            "unit" => s.units.extend(value.parse::<i64>().ok()),
            _ => s.roles.push(value),
        }
    }
    Ok(())
}

pub async fn list_sessions(conn: &mut Conn) -> Result<Vec<Session>, sqlx::Error> {
    let rows = sqlx::query(&format!("{SESSION_SELECT} ORDER BY s.held_on DESC, s.id DESC"))
        .fetch_all(&mut *conn)
        .await?;
    let mut out = rows.iter().map(session_row).collect::<Result<Vec<_>, _>>()?;
    for s in &mut out {
        fill_audience(conn, s).await?;
    }
    Ok(out)
}

pub async fn get_session(conn: &mut Conn, id: i64) -> Result<Option<Session>, sqlx::Error> {
    let row = sqlx::query(&format!("{SESSION_SELECT} WHERE s.id = $1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    match row {
        Some(r) => {
            let mut s = session_row(&r)?;
            fill_audience(conn, &mut s).await?;
            Ok(Some(s))
        }
        None => Ok(None),
    }
}

pub struct NewSession<'a> {
    pub title: &'a str,
    pub held_on: &'a str,
    pub description: &'a str,
    pub audience: &'a str,
    pub units: &'a [i64],
    pub roles: &'a [String],
    pub required: bool,
    pub organiser_id: Option<i64>,
    pub org_unit_id: Option<i64>,
}

pub async fn insert_session(conn: &mut Conn, s: &NewSession<'_>, now: i64) -> Result<i64, sqlx::Error> {
    let id: i64 = sqlx::query(
        "INSERT INTO training_sessions (title, held_on, description, audience, required, organiser_id, org_unit_id, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
    )
    .bind(s.title)
    .bind(s.held_on)
    .bind(s.description)
    .bind(s.audience)
    .bind(i64::from(s.required))
    .bind(s.organiser_id)
    .bind(s.org_unit_id)
    .bind(now)
    .fetch_one(&mut *conn)
    .await?
    .try_get(0)?;
    for u in s.units {
        sqlx::query("INSERT INTO training_audience (session_id, kind, value) VALUES ($1, 'unit', $2) ON CONFLICT DO NOTHING")
            .bind(id)
            .bind(u.to_string())
            .execute(&mut *conn)
            .await?;
    }
    for r in s.roles {
        sqlx::query("INSERT INTO training_audience (session_id, kind, value) VALUES ($1, 'role', $2) ON CONFLICT DO NOTHING")
            .bind(id)
            .bind(r)
            .execute(&mut *conn)
            .await?;
    }
    Ok(id)
}

/// The people a session is for, as of its date: active staff (hired by
/// then) of the whole ward (everyone with a unit: 職員等, 指定管理者 staff
/// included; an external auditor has none), of the chosen units and the units below them
/// (their current unit), or holding a chosen role on that date; with their
/// attendance.
pub async fn audience(conn: &mut Conn, session: i64) -> Result<Vec<AudienceMember>, sqlx::Error> {
    let rows = sqlx::query(
        "WITH RECURSIVE su(id, depth) AS (
             SELECT CAST(a.value AS BIGINT), 0 FROM training_audience a WHERE a.session_id = $1 AND a.kind = 'unit'
             UNION ALL
             SELECT o.id, su.depth + 1 FROM org_units o JOIN su ON o.parent_id = su.id WHERE su.depth < 64)
         SELECT p.id, p.name_kanji, p.employee_number, p.org_unit_id, u.name, t.source, t.marked_at
         FROM training_sessions s
         JOIN persons p ON p.status = 'active' AND (p.hired_on IS NULL OR p.hired_on <= s.held_on)
         LEFT JOIN org_units u ON u.id = p.org_unit_id
         LEFT JOIN training_attendance t ON t.session_id = s.id AND t.person_id = p.id
         WHERE s.id = $1 AND (
               (s.audience = 'all' AND p.org_unit_id IS NOT NULL)
            OR (s.audience = 'units' AND p.org_unit_id IN (SELECT id FROM su))
            OR (s.audience = 'roles' AND EXISTS (
                  SELECT 1 FROM role_assignments r JOIN training_audience a
                    ON a.session_id = s.id AND a.kind = 'role' AND a.value = r.role
                  WHERE r.person_id = p.id AND r.valid_from <= s.held_on
                    AND (r.valid_to IS NULL OR r.valid_to >= s.held_on))))
         ORDER BY p.org_unit_id, p.employee_number",
    )
    .bind(session)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            let source: Option<String> = r.try_get(5)?;
            Ok(AudienceMember {
                person_id: r.try_get(0)?,
                name: r.try_get(1)?,
                employee_number: r.try_get(2)?,
                unit_id: r.try_get(3)?,
                unit_name: r.try_get(4)?,
                attended: source.is_some(),
                source,
                marked_at: r.try_get(6)?,
            })
        })
        .collect()
}

/// Marks attendance (again: the newer mark wins).
pub async fn mark(
    conn: &mut Conn,
    session: i64,
    person: i64,
    source: &str,
    by: Option<i64>,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO training_attendance (session_id, person_id, source, marked_by, marked_at)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (session_id, person_id) DO UPDATE SET source = excluded.source,
           marked_by = excluded.marked_by, marked_at = excluded.marked_at",
    )
    .bind(session)
    .bind(person)
    .bind(source)
    .bind(by)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn unmark(conn: &mut Conn, session: i64, person: i64) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM training_attendance WHERE session_id = $1 AND person_id = $2")
        .bind(session)
        .bind(person)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() > 0)
}

const INSTRUCTION_SELECT: &str = "SELECT i.id, i.org_unit_id, u.name, i.from_person_id, f.name_kanji,
    i.to_person_id, t.name_kanji, i.body, i.created_at, i.acknowledged_at
    FROM training_instructions i JOIN org_units u ON u.id = i.org_unit_id
    JOIN persons f ON f.id = i.from_person_id JOIN persons t ON t.id = i.to_person_id";

fn instruction_row(r: &sqlx::any::AnyRow) -> Result<Instruction, sqlx::Error> {
    Ok(Instruction {
        id: r.try_get(0)?,
        org_unit_id: r.try_get(1)?,
        unit_name: r.try_get(2)?,
        from_person_id: r.try_get(3)?,
        from_name: r.try_get(4)?,
        to_person_id: r.try_get(5)?,
        to_name: r.try_get(6)?,
        body: r.try_get(7)?,
        created_at: r.try_get(8)?,
        acknowledged_at: r.try_get(9)?,
    })
}

pub async fn list_instructions(conn: &mut Conn) -> Result<Vec<Instruction>, sqlx::Error> {
    let rows = sqlx::query(&format!("{INSTRUCTION_SELECT} ORDER BY i.id DESC"))
        .fetch_all(conn)
        .await?;
    rows.iter().map(instruction_row).collect()
}

pub async fn get_instruction(conn: &mut Conn, id: i64) -> Result<Option<Instruction>, sqlx::Error> {
    let row = sqlx::query(&format!("{INSTRUCTION_SELECT} WHERE i.id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(instruction_row).transpose()
}

pub async fn insert_instruction(
    conn: &mut Conn,
    unit: i64,
    from: i64,
    to: i64,
    body: &str,
    now: i64,
) -> Result<i64, sqlx::Error> {
    sqlx::query(
        "INSERT INTO training_instructions (org_unit_id, from_person_id, to_person_id, body, created_at)
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(unit)
    .bind(from)
    .bind(to)
    .bind(body)
    .bind(now)
    .fetch_one(conn)
    .await?
    .try_get(0)
}

pub async fn acknowledge(conn: &mut Conn, id: i64, now: i64) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE training_instructions SET acknowledged_at = $1 WHERE id = $2 AND acknowledged_at IS NULL",
    )
    .bind(now)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The 情報化推進リーダー of a unit on a date: (person id, unit id).
pub async fn leader_unit(conn: &mut Conn, person: i64, today: &str) -> Result<Option<i64>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT org_unit_id FROM role_assignments WHERE person_id = $1 AND role = 'promotion_leader'
         AND org_unit_id IS NOT NULL AND valid_from <= $2 AND (valid_to IS NULL OR valid_to >= $2)
         ORDER BY id LIMIT 1",
    )
    .bind(person)
    .bind(today)
    .fetch_optional(conn)
    .await?;
    row.map(|r| r.try_get(0)).transpose()
}
