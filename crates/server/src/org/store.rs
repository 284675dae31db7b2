//! SQL for org units, role assignments and systems.

use super::{OrgUnit, RoleAssignment, System, UnitKind};
use crate::db::Conn;
use crate::ids::{OrgUnitId, PersonId, RoleAssignmentId, SystemId};
use sqlx::any::AnyRow;
use sqlx::Row;

fn unit_from_row(r: &AnyRow) -> Result<OrgUnit, sqlx::Error> {
    let kind: String = r.try_get(4)?;
    Ok(OrgUnit {
        id: OrgUnitId(r.try_get(0)?),
        code: r.try_get(1)?,
        name: r.try_get(2)?,
        name_en: r.try_get(3)?,
        kind: UnitKind::parse(&kind).unwrap_or(UnitKind::Section),
        parent_id: r.try_get::<Option<i64>, _>(5)?.map(OrgUnitId),
        valid_from: r.try_get(6)?,
        valid_to: r.try_get(7)?,
    })
}

const UNIT_COLS: &str = "id, code, name, name_en, kind, parent_id, valid_from, valid_to";

pub async fn list_units(conn: &mut Conn) -> Result<Vec<OrgUnit>, sqlx::Error> {
    let rows = sqlx::query(&format!("SELECT {UNIT_COLS} FROM org_units ORDER BY code"))
        .fetch_all(conn)
        .await?;
    rows.iter().map(unit_from_row).collect()
}

pub async fn get_unit(conn: &mut Conn, id: OrgUnitId) -> Result<Option<OrgUnit>, sqlx::Error> {
    let row = sqlx::query(&format!("SELECT {UNIT_COLS} FROM org_units WHERE id = $1"))
        .bind(id.0)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(unit_from_row).transpose()
}

pub async fn unit_by_code(conn: &mut Conn, code: &str) -> Result<Option<OrgUnit>, sqlx::Error> {
    let row = sqlx::query(&format!(
        "SELECT {UNIT_COLS} FROM org_units WHERE code = $1"
    ))
    .bind(code)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(unit_from_row).transpose()
}

pub struct NewUnit<'a> {
    pub code: &'a str,
    pub name: &'a str,
    pub name_en: &'a str,
    pub kind: UnitKind,
    pub parent_id: Option<OrgUnitId>,
    pub valid_from: &'a str,
    pub valid_to: Option<&'a str>,
}

pub async fn insert_unit(
    conn: &mut Conn,
    u: &NewUnit<'_>,
    now: i64,
) -> Result<OrgUnitId, sqlx::Error> {
    let row = sqlx::query(
        "INSERT INTO org_units (code, name, name_en, kind, parent_id, valid_from, valid_to, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
    )
    .bind(u.code)
    .bind(u.name)
    .bind(u.name_en)
    .bind(u.kind.code())
    .bind(u.parent_id.map(|p| p.0))
    .bind(u.valid_from)
    .bind(u.valid_to)
    .bind(now)
    .fetch_one(conn)
    .await?;
    Ok(OrgUnitId(row.try_get(0)?))
}

pub async fn update_unit(
    conn: &mut Conn,
    id: OrgUnitId,
    u: &NewUnit<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE org_units SET code = $1, name = $2, name_en = $3, kind = $4, parent_id = $5,
                valid_from = $6, valid_to = $7 WHERE id = $8",
    )
    .bind(u.code)
    .bind(u.name)
    .bind(u.name_en)
    .bind(u.kind.code())
    .bind(u.parent_id.map(|p| p.0))
    .bind(u.valid_from)
    .bind(u.valid_to)
    .bind(id.0)
    .execute(conn)
    .await?;
    Ok(())
}

/// The unit and all its ancestors, nearest first.
pub async fn ancestors(conn: &mut Conn, id: OrgUnitId) -> Result<Vec<OrgUnitId>, sqlx::Error> {
    let rows = sqlx::query(
        "WITH RECURSIVE up(id, parent_id, depth) AS (
             SELECT id, parent_id, 0 FROM org_units WHERE id = $1
             UNION ALL
             SELECT o.id, o.parent_id, up.depth + 1 FROM org_units o JOIN up ON o.id = up.parent_id
             WHERE up.depth < 64)
         SELECT id FROM up ORDER BY depth",
    )
    .bind(id.0)
    .fetch_all(conn)
    .await?;
    rows.iter().map(|r| r.try_get(0).map(OrgUnitId)).collect()
}

/// The unit and everything below it.
pub async fn descendants(conn: &mut Conn, id: OrgUnitId) -> Result<Vec<OrgUnitId>, sqlx::Error> {
    let rows = sqlx::query(
        "WITH RECURSIVE down(id, depth) AS (
             SELECT id, 0 FROM org_units WHERE id = $1
             UNION ALL
             SELECT o.id, down.depth + 1 FROM org_units o JOIN down ON o.parent_id = down.id
             WHERE down.depth < 64)
         SELECT id FROM down",
    )
    .bind(id.0)
    .fetch_all(conn)
    .await?;
    rows.iter().map(|r| r.try_get(0).map(OrgUnitId)).collect()
}

fn assignment_from_row(r: &AnyRow) -> Result<RoleAssignment, sqlx::Error> {
    Ok(RoleAssignment {
        id: RoleAssignmentId(r.try_get(0)?),
        person_id: PersonId(r.try_get(1)?),
        person_name: r.try_get(2)?,
        role: r.try_get(3)?,
        org_unit_id: r.try_get::<Option<i64>, _>(4)?.map(OrgUnitId),
        system_id: r.try_get::<Option<i64>, _>(5)?.map(SystemId),
        valid_from: r.try_get(6)?,
        valid_to: r.try_get(7)?,
    })
}

const ASSIGN_SELECT: &str =
    "SELECT ra.id, ra.person_id, p.name_kanji, ra.role, ra.org_unit_id, ra.system_id,
        ra.valid_from, ra.valid_to FROM role_assignments ra JOIN persons p ON p.id = ra.person_id";

/// Assignments, optionally for one person or one unit; `current_on` keeps
/// only those valid on that date.
pub async fn list_assignments(
    conn: &mut Conn,
    person: Option<PersonId>,
    unit: Option<OrgUnitId>,
    current_on: Option<&str>,
) -> Result<Vec<RoleAssignment>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "{ASSIGN_SELECT} WHERE ($1 = 0 OR ra.person_id = $1) AND ($2 = 0 OR ra.org_unit_id = $2)
           AND ($3 = '' OR (ra.valid_from <= $3 AND (ra.valid_to IS NULL OR ra.valid_to >= $3)))
         ORDER BY ra.role, ra.id"
    ))
    .bind(person.map(|p| p.0).unwrap_or(0))
    .bind(unit.map(|u| u.0).unwrap_or(0))
    .bind(current_on.unwrap_or(""))
    .fetch_all(conn)
    .await?;
    rows.iter().map(assignment_from_row).collect()
}

pub async fn get_assignment(
    conn: &mut Conn,
    id: RoleAssignmentId,
) -> Result<Option<RoleAssignment>, sqlx::Error> {
    let row = sqlx::query(&format!("{ASSIGN_SELECT} WHERE ra.id = $1"))
        .bind(id.0)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(assignment_from_row).transpose()
}

/// Holders of `role` valid on `date`, scoped to `unit` (or ward-wide when `None`).
pub async fn holders(
    conn: &mut Conn,
    role: &str,
    unit: Option<OrgUnitId>,
    date: &str,
) -> Result<Vec<(PersonId, String)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT p.id, p.name_kanji FROM role_assignments ra JOIN persons p ON p.id = ra.person_id
         WHERE ra.role = $1 AND ($2 = 0 OR ra.org_unit_id = $2)
           AND ra.valid_from <= $3 AND (ra.valid_to IS NULL OR ra.valid_to >= $3)
           AND p.status = 'active'
         ORDER BY ra.valid_from, ra.id",
    )
    .bind(role)
    .bind(unit.map(|u| u.0).unwrap_or(0))
    .bind(date)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| Ok((PersonId(r.try_get(0)?), r.try_get(1)?)))
        .collect()
}

pub struct NewAssignment<'a> {
    pub person_id: PersonId,
    pub role: &'a str,
    pub org_unit_id: Option<OrgUnitId>,
    pub system_id: Option<SystemId>,
    pub valid_from: &'a str,
    pub valid_to: Option<&'a str>,
    pub created_by: Option<PersonId>,
}

pub async fn insert_assignment(
    conn: &mut Conn,
    a: &NewAssignment<'_>,
    now: i64,
) -> Result<RoleAssignmentId, sqlx::Error> {
    let row = sqlx::query(
        "INSERT INTO role_assignments (person_id, role, org_unit_id, system_id, valid_from, valid_to, created_by, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
    )
    .bind(a.person_id.0)
    .bind(a.role)
    .bind(a.org_unit_id.map(|u| u.0))
    .bind(a.system_id.map(|s| s.0))
    .bind(a.valid_from)
    .bind(a.valid_to)
    .bind(a.created_by.map(|p| p.0))
    .bind(now)
    .fetch_one(conn)
    .await?;
    Ok(RoleAssignmentId(row.try_get(0)?))
}

/// Ends an assignment on `last_day` (kept as history, never deleted).
pub async fn end_assignment(
    conn: &mut Conn,
    id: RoleAssignmentId,
    last_day: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE role_assignments SET valid_to = $1 WHERE id = $2")
        .bind(last_day)
        .bind(id.0)
        .execute(conn)
        .await?;
    Ok(())
}

/// Assignments of a person still open on or after `date`.
pub async fn open_assignments_of(
    conn: &mut Conn,
    person: PersonId,
    date: &str,
) -> Result<Vec<RoleAssignment>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "{ASSIGN_SELECT} WHERE ra.person_id = $1 AND (ra.valid_to IS NULL OR ra.valid_to >= $2) ORDER BY ra.id"
    ))
    .bind(person.0)
    .bind(date)
    .fetch_all(conn)
    .await?;
    rows.iter().map(assignment_from_row).collect()
}

pub async fn list_systems(conn: &mut Conn) -> Result<Vec<System>, sqlx::Error> {
    let rows = sqlx::query("SELECT id, code, name, owner_org_unit_id FROM systems ORDER BY code")
        .fetch_all(conn)
        .await?;
    rows.iter()
        .map(|r| {
            Ok(System {
                id: SystemId(r.try_get(0)?),
                code: r.try_get(1)?,
                name: r.try_get(2)?,
                owner_org_unit_id: OrgUnitId(r.try_get(3)?),
            })
        })
        .collect()
}

pub async fn insert_system(
    conn: &mut Conn,
    code: &str,
    name: &str,
    owner: OrgUnitId,
    now: i64,
) -> Result<SystemId, sqlx::Error> {
    let row = sqlx::query("INSERT INTO systems (code, name, owner_org_unit_id, created_at) VALUES ($1, $2, $3, $4) RETURNING id")
        .bind(code)
        .bind(name)
        .bind(owner.0)
        .bind(now)
        .fetch_one(conn)
        .await?;
    Ok(SystemId(row.try_get(0)?))
}

pub async fn system_exists(conn: &mut Conn, id: SystemId) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query("SELECT 1 FROM systems WHERE id = $1")
        .bind(id.0)
        .fetch_optional(conn)
        .await?
        .is_some())
}
