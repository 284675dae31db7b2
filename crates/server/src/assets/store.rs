//! SQL for assets, scales, operators, requests, grants, reviews and the
//! engine's change feed. Same SQL on both engines.

use super::conditions::ConditionsDoc;
use super::{
    split_actions, AccessRequest, Asset, AssetKind, GrantRow, Level, ManagedArea, Operator, Review,
    ReviewItem, SubjectRef,
};
use crate::db::Conn;
use crate::ids::{OrgUnitId, PersonId};
use sqlx::any::AnyRow;
use sqlx::Row;
use std::collections::HashMap;

// ---------------------------------------------------------------------------
// Classification scales

/// Every axis's levels, by (axis, code).
#[derive(Debug, Clone, Default)]
pub struct Scales {
    pub levels: HashMap<(String, String), Level>,
}

impl Scales {
    pub fn get(&self, axis: &str, code: &str) -> Option<&Level> {
        self.levels.get(&(axis.to_string(), code.to_string()))
    }

    /// An axis's levels, strictest first.
    pub fn axis(&self, axis: &str) -> Vec<&Level> {
        let mut v: Vec<&Level> = self
            .levels
            .iter()
            .filter(|((a, _), _)| a == axis)
            .map(|(_, l)| l)
            .collect();
        v.sort_by(|a, b| b.rank.cmp(&a.rank).then(a.code.cmp(&b.code)));
        v
    }

    pub fn is_secret(&self, confidentiality: &str) -> bool {
        self.get("confidentiality", confidentiality)
            .is_some_and(|l| l.is_secret)
    }
}

fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(String::from).collect()
}

pub async fn scales(conn: &mut Conn) -> Result<Scales, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT axis, code, name, name_en, rank, is_secret, national, national_r6
         FROM classification_levels",
    )
    .fetch_all(conn)
    .await?;
    let mut levels = HashMap::new();
    for r in rows {
        let axis: String = r.try_get(0)?;
        let level = Level {
            code: r.try_get(1)?,
            name: r.try_get(2)?,
            name_en: r.try_get(3)?,
            rank: r.try_get(4)?,
            is_secret: r.try_get::<i64, _>(5)? != 0,
            national: words(&r.try_get::<String, _>(6)?),
            national_r6: words(&r.try_get::<String, _>(7)?),
        };
        levels.insert((axis, level.code.clone()), level);
    }
    Ok(Scales { levels })
}

/// Replaces an axis's levels (the caller checked that no asset uses a
/// removed level). Unchanged levels are rewritten in place.
pub async fn replace_levels(
    conn: &mut Conn,
    axis: &str,
    levels: &[Level],
) -> Result<(), sqlx::Error> {
    let codes: Vec<&str> = levels.iter().map(|l| l.code.as_str()).collect();
    let existing = sqlx::query("SELECT code FROM classification_levels WHERE axis = $1")
        .bind(axis)
        .fetch_all(&mut *conn)
        .await?;
    for r in existing {
        let code: String = r.try_get(0)?;
        if !codes.contains(&code.as_str()) {
            sqlx::query("DELETE FROM classification_levels WHERE axis = $1 AND code = $2")
                .bind(axis)
                .bind(&code)
                .execute(&mut *conn)
                .await?;
        }
    }
    for l in levels {
        sqlx::query(
            "INSERT INTO classification_levels (axis, code, name, name_en, rank, is_secret, national, national_r6)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (axis, code) DO UPDATE SET name = excluded.name, name_en = excluded.name_en,
               rank = excluded.rank, is_secret = excluded.is_secret, national = excluded.national,
               national_r6 = excluded.national_r6",
        )
        .bind(axis)
        .bind(&l.code)
        .bind(&l.name)
        .bind(&l.name_en)
        .bind(l.rank)
        .bind(i64::from(l.is_secret))
        .bind(l.national.join(" "))
        .bind(l.national_r6.join(" "))
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// How many live assets use a level of an axis.
pub async fn assets_using_level(
    conn: &mut Conn,
    axis: &str,
    code: &str,
) -> Result<i64, sqlx::Error> {
    let column = match axis {
        "integrity" => "integrity",
        "availability" => "availability",
        _ => "confidentiality",
    };
    // `column` is one of three fixed names, never input.
    let sql = format!("SELECT COUNT(*) FROM assets WHERE {column} = $1 AND retired_at IS NULL");
    sqlx::query(&sql)
        .bind(code)
        .fetch_one(conn)
        .await?
        .try_get(0)
}

// ---------------------------------------------------------------------------
// Managed areas

pub async fn areas(conn: &mut Conn) -> Result<Vec<ManagedArea>, sqlx::Error> {
    let rows = sqlx::query("SELECT id, code, name FROM managed_areas ORDER BY code")
        .fetch_all(conn)
        .await?;
    rows.iter()
        .map(|r| {
            Ok(ManagedArea {
                id: r.try_get(0)?,
                code: r.try_get(1)?,
                name: r.try_get(2)?,
            })
        })
        .collect()
}

pub async fn insert_area(
    conn: &mut Conn,
    code: &str,
    name: &str,
    now: i64,
) -> Result<i64, sqlx::Error> {
    sqlx::query(
        "INSERT INTO managed_areas (code, name, created_at) VALUES ($1, $2, $3) RETURNING id",
    )
    .bind(code)
    .bind(name)
    .bind(now)
    .fetch_one(conn)
    .await?
    .try_get(0)
}

// ---------------------------------------------------------------------------
// Assets

const ASSET_COLUMNS: &str = "id, code, name, name_en, kind, parent_id, owner_org_unit_id,
    security_manager_id, confidentiality, secret_ground, integrity, availability, national_c,
    national_c_r6, personal_info, zone, external_connection, description, retired_at,
    created_at, updated_at";

fn asset_row(r: &AnyRow, scales: &Scales) -> Result<Asset, sqlx::Error> {
    let kind: String = r.try_get(4)?;
    let confidentiality: String = r.try_get(8)?;
    let integrity: String = r.try_get(10)?;
    let availability: String = r.try_get(11)?;
    let first = |axis: &str, code: &str| {
        scales
            .get(axis, code)
            .and_then(|l| l.national.first().cloned())
            .unwrap_or_default()
    };
    let national_i = first("integrity", &integrity);
    let national_a = first("availability", &availability);
    Ok(Asset {
        id: r.try_get(0)?,
        code: r.try_get(1)?,
        name: r.try_get(2)?,
        name_en: r.try_get(3)?,
        kind: AssetKind::parse(&kind).unwrap_or(AssetKind::System),
        parent_id: r.try_get(5)?,
        owner_org_unit_id: OrgUnitId(r.try_get(6)?),
        security_manager_id: r.try_get::<Option<i64>, _>(7)?.map(PersonId),
        secret: scales.is_secret(&confidentiality),
        confidentiality,
        secret_ground: r.try_get(9)?,
        integrity,
        availability,
        national_c: r.try_get(12)?,
        national_c_r6: r.try_get(13)?,
        national_i,
        national_a,
        personal_info: r.try_get::<i64, _>(14)? != 0,
        zone: r.try_get(15)?,
        external_connection: r.try_get::<i64, _>(16)? != 0,
        description: r.try_get(17)?,
        retired_at: r.try_get(18)?,
        created_at: r.try_get(19)?,
        updated_at: r.try_get(20)?,
    })
}

pub async fn list_assets(
    conn: &mut Conn,
    scales: &Scales,
    include_retired: bool,
) -> Result<Vec<Asset>, sqlx::Error> {
    let sql = format!(
        "SELECT {ASSET_COLUMNS} FROM assets WHERE ($1 = 1 OR retired_at IS NULL) ORDER BY code"
    );
    let rows = sqlx::query(&sql)
        .bind(i64::from(include_retired))
        .fetch_all(conn)
        .await?;
    rows.iter().map(|r| asset_row(r, scales)).collect()
}

pub async fn get_asset(
    conn: &mut Conn,
    scales: &Scales,
    id: i64,
) -> Result<Option<Asset>, sqlx::Error> {
    let sql = format!("SELECT {ASSET_COLUMNS} FROM assets WHERE id = $1");
    let row = sqlx::query(&sql).bind(id).fetch_optional(conn).await?;
    row.as_ref().map(|r| asset_row(r, scales)).transpose()
}

pub async fn asset_id_by_code(conn: &mut Conn, code: &str) -> Result<Option<i64>, sqlx::Error> {
    let row = sqlx::query("SELECT id FROM assets WHERE code = $1")
        .bind(code)
        .fetch_optional(conn)
        .await?;
    row.map(|r| r.try_get(0)).transpose()
}

/// The stored columns of an asset, as the service checked them.
#[derive(Debug, Clone)]
pub struct AssetColumns<'a> {
    pub code: &'a str,
    pub name: &'a str,
    pub name_en: &'a str,
    pub kind: AssetKind,
    pub parent_id: Option<i64>,
    pub owner_org_unit_id: OrgUnitId,
    pub security_manager_id: Option<PersonId>,
    pub confidentiality: &'a str,
    pub secret_ground: Option<&'a str>,
    pub integrity: &'a str,
    pub availability: &'a str,
    pub national_c: &'a str,
    pub national_c_r6: &'a str,
    pub personal_info: bool,
    pub zone: &'a str,
    pub external_connection: bool,
    pub description: &'a str,
}

pub async fn insert_asset(
    conn: &mut Conn,
    a: &AssetColumns<'_>,
    now: i64,
) -> Result<i64, sqlx::Error> {
    sqlx::query(
        "INSERT INTO assets (code, name, name_en, kind, parent_id, owner_org_unit_id,
           security_manager_id, confidentiality, secret_ground, integrity, availability,
           national_c, national_c_r6, personal_info, zone, external_connection, description,
           created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $18)
         RETURNING id",
    )
    .bind(a.code)
    .bind(a.name)
    .bind(a.name_en)
    .bind(a.kind.code())
    .bind(a.parent_id)
    .bind(a.owner_org_unit_id.0)
    .bind(a.security_manager_id.map(|p| p.0))
    .bind(a.confidentiality)
    .bind(a.secret_ground)
    .bind(a.integrity)
    .bind(a.availability)
    .bind(a.national_c)
    .bind(a.national_c_r6)
    .bind(i64::from(a.personal_info))
    .bind(a.zone)
    .bind(i64::from(a.external_connection))
    .bind(a.description)
    .bind(now)
    .fetch_one(conn)
    .await?
    .try_get(0)
}

pub async fn update_asset(
    conn: &mut Conn,
    id: i64,
    a: &AssetColumns<'_>,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE assets SET code = $2, name = $3, name_en = $4, kind = $5, parent_id = $6,
           owner_org_unit_id = $7, security_manager_id = $8, confidentiality = $9,
           secret_ground = $10, integrity = $11, availability = $12, national_c = $13,
           national_c_r6 = $14, personal_info = $15, zone = $16, external_connection = $17,
           description = $18, updated_at = $19
         WHERE id = $1",
    )
    .bind(id)
    .bind(a.code)
    .bind(a.name)
    .bind(a.name_en)
    .bind(a.kind.code())
    .bind(a.parent_id)
    .bind(a.owner_org_unit_id.0)
    .bind(a.security_manager_id.map(|p| p.0))
    .bind(a.confidentiality)
    .bind(a.secret_ground)
    .bind(a.integrity)
    .bind(a.availability)
    .bind(a.national_c)
    .bind(a.national_c_r6)
    .bind(i64::from(a.personal_info))
    .bind(a.zone)
    .bind(i64::from(a.external_connection))
    .bind(a.description)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn retire_asset(conn: &mut Conn, id: i64, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE assets SET retired_at = $2, updated_at = $2 WHERE id = $1")
        .bind(id)
        .bind(now)
        .execute(conn)
        .await?;
    Ok(())
}

// ---------------------------------------------------------------------------
// Operators (K18)

fn operator_row(r: &AnyRow) -> Result<Operator, sqlx::Error> {
    Ok(Operator {
        id: r.try_get(0)?,
        asset_id: r.try_get(1)?,
        person_id: PersonId(r.try_get(2)?),
        named_by: r.try_get::<Option<i64>, _>(3)?.map(PersonId),
        reason: r.try_get(4)?,
        created_at: r.try_get(5)?,
        ended_at: r.try_get(6)?,
    })
}

/// Operators of an asset (`None`: of every asset), current only if asked.
pub async fn operators(
    conn: &mut Conn,
    asset: Option<i64>,
    current_only: bool,
) -> Result<Vec<Operator>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, asset_id, person_id, named_by, reason, created_at, ended_at
         FROM asset_operators
         WHERE ($1 = 0 OR asset_id = $1) AND ($2 = 0 OR ended_at IS NULL)
         ORDER BY asset_id, id",
    )
    .bind(asset.unwrap_or(0))
    .bind(i64::from(current_only))
    .fetch_all(conn)
    .await?;
    rows.iter().map(operator_row).collect()
}

pub async fn insert_operator(
    conn: &mut Conn,
    asset: i64,
    person: PersonId,
    by: Option<PersonId>,
    reason: &str,
    now: i64,
) -> Result<i64, sqlx::Error> {
    sqlx::query(
        "INSERT INTO asset_operators (asset_id, person_id, named_by, reason, created_at)
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(asset)
    .bind(person.0)
    .bind(by.map(|p| p.0))
    .bind(reason)
    .bind(now)
    .fetch_one(conn)
    .await?
    .try_get(0)
}

pub async fn get_operator(conn: &mut Conn, id: i64) -> Result<Option<Operator>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT id, asset_id, person_id, named_by, reason, created_at, ended_at
         FROM asset_operators WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(operator_row).transpose()
}

pub async fn end_operator(
    conn: &mut Conn,
    id: i64,
    by: Option<PersonId>,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE asset_operators SET ended_at = $2, ended_by = $3 WHERE id = $1 AND ended_at IS NULL")
        .bind(id)
        .bind(now)
        .bind(by.map(|p| p.0))
        .execute(conn)
        .await?;
    Ok(())
}

/// Current operator appointments of a person (ended on transfer).
pub async fn operator_ids_of_person(
    conn: &mut Conn,
    person: PersonId,
) -> Result<Vec<(i64, i64)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, asset_id FROM asset_operators WHERE person_id = $1 AND ended_at IS NULL",
    )
    .bind(person.0)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect()
}

// ---------------------------------------------------------------------------
// Requests

const REQUEST_COLUMNS: &str = "id, asset_id, subject_kind, subject_id, actions, valid_from,
    valid_until, conditions, unit_reason, purpose, requested_by, requested_at, status,
    decided_by, decided_at, decision_reason, grant_id";

fn conditions_of(s: &str) -> ConditionsDoc {
    serde_json::from_str(s).unwrap_or_default()
}

fn subject_of(r: &AnyRow, kind: usize, id: usize) -> Result<SubjectRef, sqlx::Error> {
    let k: String = r.try_get(kind)?;
    let i: i64 = r.try_get(id)?;
    SubjectRef::from_parts(&k, i)
        .ok_or_else(|| sqlx::Error::Decode(format!("subject kind {k:?}").into()))
}

fn request_row(r: &AnyRow) -> Result<AccessRequest, sqlx::Error> {
    Ok(AccessRequest {
        id: r.try_get(0)?,
        asset_id: r.try_get(1)?,
        subject: subject_of(r, 2, 3)?,
        actions: split_actions(&r.try_get::<String, _>(4)?),
        valid_from: r.try_get(5)?,
        valid_until: r.try_get(6)?,
        conditions: conditions_of(&r.try_get::<String, _>(7)?),
        unit_reason: r.try_get(8)?,
        purpose: r.try_get(9)?,
        requested_by: r.try_get::<Option<i64>, _>(10)?.map(PersonId),
        requested_at: r.try_get(11)?,
        status: r.try_get(12)?,
        decided_by: r.try_get::<Option<i64>, _>(13)?.map(PersonId),
        decided_at: r.try_get(14)?,
        decision_reason: r.try_get(15)?,
        grant_id: r.try_get(16)?,
    })
}

/// What a request or a grant says, as checked.
#[derive(Debug, Clone)]
pub struct Terms {
    pub asset_id: i64,
    pub subject: SubjectRef,
    pub actions: Vec<String>,
    pub valid_from: Option<i64>,
    pub valid_until: Option<i64>,
    pub conditions: ConditionsDoc,
    pub unit_reason: Option<String>,
}

pub async fn insert_request(
    conn: &mut Conn,
    t: &Terms,
    purpose: &str,
    by: Option<PersonId>,
    now: i64,
) -> Result<i64, sqlx::Error> {
    sqlx::query(
        "INSERT INTO access_requests (asset_id, subject_kind, subject_id, actions, valid_from,
           valid_until, conditions, unit_reason, purpose, requested_by, requested_at, status)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'pending') RETURNING id",
    )
    .bind(t.asset_id)
    .bind(t.subject.kind())
    .bind(t.subject.id())
    .bind(t.actions.join(" "))
    .bind(t.valid_from)
    .bind(t.valid_until)
    .bind(serde_json::to_string(&t.conditions).unwrap_or_else(|_| "{}".into()))
    .bind(t.unit_reason.as_deref())
    .bind(purpose)
    .bind(by.map(|p| p.0))
    .bind(now)
    .fetch_one(conn)
    .await?
    .try_get(0)
}

pub async fn get_request(conn: &mut Conn, id: i64) -> Result<Option<AccessRequest>, sqlx::Error> {
    let sql = format!("SELECT {REQUEST_COLUMNS} FROM access_requests WHERE id = $1");
    let row = sqlx::query(&sql).bind(id).fetch_optional(conn).await?;
    row.as_ref().map(request_row).transpose()
}

/// Requests, newest first: of one asset, in one status, by one requester.
pub async fn list_requests(
    conn: &mut Conn,
    asset: Option<i64>,
    status: Option<&str>,
    requested_by: Option<PersonId>,
    limit: i64,
) -> Result<Vec<AccessRequest>, sqlx::Error> {
    let sql = format!(
        "SELECT {REQUEST_COLUMNS} FROM access_requests
         WHERE ($1 = 0 OR asset_id = $1) AND ($2 = '' OR status = $2) AND ($3 = 0 OR requested_by = $3)
         ORDER BY id DESC LIMIT $4"
    );
    let rows = sqlx::query(&sql)
        .bind(asset.unwrap_or(0))
        .bind(status.unwrap_or(""))
        .bind(requested_by.map(|p| p.0).unwrap_or(0))
        .bind(limit)
        .fetch_all(conn)
        .await?;
    rows.iter().map(request_row).collect()
}

/// Sets a pending request's decision; `false` if it was no longer pending.
pub async fn decide_request(
    conn: &mut Conn,
    id: i64,
    status: &str,
    by: Option<PersonId>,
    reason: &str,
    grant: Option<i64>,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE access_requests SET status = $2, decided_by = $3, decided_at = $4,
           decision_reason = $5, grant_id = $6
         WHERE id = $1 AND status = 'pending'",
    )
    .bind(id)
    .bind(status)
    .bind(by.map(|p| p.0))
    .bind(now)
    .bind(reason)
    .bind(grant)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

// ---------------------------------------------------------------------------
// Grants

const GRANT_COLUMNS: &str = "id, request_id, asset_id, subject_kind, subject_id, actions,
    valid_from, valid_until, conditions, unit_reason, granted_by, created_at, ended_at,
    ended_reason";

fn grant_row(r: &AnyRow) -> Result<GrantRow, sqlx::Error> {
    Ok(GrantRow {
        id: r.try_get(0)?,
        request_id: r.try_get(1)?,
        asset_id: r.try_get(2)?,
        subject: subject_of(r, 3, 4)?,
        actions: split_actions(&r.try_get::<String, _>(5)?),
        valid_from: r.try_get(6)?,
        valid_until: r.try_get(7)?,
        conditions: conditions_of(&r.try_get::<String, _>(8)?),
        unit_reason: r.try_get(9)?,
        granted_by: r.try_get::<Option<i64>, _>(10)?.map(PersonId),
        created_at: r.try_get(11)?,
        ended_at: r.try_get(12)?,
        ended_reason: r.try_get(13)?,
    })
}

pub async fn insert_grant(
    conn: &mut Conn,
    t: &Terms,
    request: Option<i64>,
    by: Option<PersonId>,
    now: i64,
) -> Result<i64, sqlx::Error> {
    sqlx::query(
        "INSERT INTO access_grants (request_id, asset_id, subject_kind, subject_id, actions,
           valid_from, valid_until, conditions, unit_reason, granted_by, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
    )
    .bind(request)
    .bind(t.asset_id)
    .bind(t.subject.kind())
    .bind(t.subject.id())
    .bind(t.actions.join(" "))
    .bind(t.valid_from)
    .bind(t.valid_until)
    .bind(serde_json::to_string(&t.conditions).unwrap_or_else(|_| "{}".into()))
    .bind(t.unit_reason.as_deref())
    .bind(by.map(|p| p.0))
    .bind(now)
    .fetch_one(conn)
    .await?
    .try_get(0)
}

pub async fn get_grant(conn: &mut Conn, id: i64) -> Result<Option<GrantRow>, sqlx::Error> {
    let sql = format!("SELECT {GRANT_COLUMNS} FROM access_grants WHERE id = $1");
    let row = sqlx::query(&sql).bind(id).fetch_optional(conn).await?;
    row.as_ref().map(grant_row).transpose()
}

/// Grants of an asset and/or a subject; only those not ended if asked.
pub async fn list_grants(
    conn: &mut Conn,
    asset: Option<i64>,
    subject: Option<SubjectRef>,
    current_only: bool,
) -> Result<Vec<GrantRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {GRANT_COLUMNS} FROM access_grants
         WHERE ($1 = 0 OR asset_id = $1) AND ($2 = '' OR (subject_kind = $2 AND subject_id = $3))
           AND ($4 = 0 OR ended_at IS NULL)
         ORDER BY id"
    );
    let rows = sqlx::query(&sql)
        .bind(asset.unwrap_or(0))
        .bind(subject.map(|s| s.kind()).unwrap_or(""))
        .bind(subject.map(|s| s.id()).unwrap_or(0))
        .bind(i64::from(current_only))
        .fetch_all(conn)
        .await?;
    rows.iter().map(grant_row).collect()
}

/// Ends a grant; `false` if it had already ended.
pub async fn end_grant(
    conn: &mut Conn,
    id: i64,
    reason: &str,
    by: Option<PersonId>,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE access_grants SET ended_at = $2, ended_reason = $3, ended_by = $4
         WHERE id = $1 AND ended_at IS NULL",
    )
    .bind(id)
    .bind(now)
    .bind(reason)
    .bind(by.map(|p| p.0))
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Grants whose validity ended at or before `now` but are not marked ended.
pub async fn lapsed_grants(conn: &mut Conn, now: i64) -> Result<Vec<GrantRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {GRANT_COLUMNS} FROM access_grants
         WHERE ended_at IS NULL AND valid_until IS NOT NULL AND valid_until <= $1 ORDER BY id LIMIT 1000"
    );
    let rows = sqlx::query(&sql).bind(now).fetch_all(conn).await?;
    rows.iter().map(grant_row).collect()
}

// ---------------------------------------------------------------------------
// Reviews (棚卸し)

pub async fn insert_review(
    conn: &mut Conn,
    asset: i64,
    by: Option<PersonId>,
    grants: &[i64],
    now: i64,
) -> Result<i64, sqlx::Error> {
    let id: i64 = sqlx::query(
        "INSERT INTO access_reviews (asset_id, started_by, started_at) VALUES ($1, $2, $3) RETURNING id",
    )
    .bind(asset)
    .bind(by.map(|p| p.0))
    .bind(now)
    .fetch_one(&mut *conn)
    .await?
    .try_get(0)?;
    for g in grants {
        sqlx::query("INSERT INTO access_review_items (review_id, grant_id) VALUES ($1, $2)")
            .bind(id)
            .bind(g)
            .execute(&mut *conn)
            .await?;
    }
    Ok(id)
}

pub async fn get_review(conn: &mut Conn, id: i64) -> Result<Option<Review>, sqlx::Error> {
    let Some(r) = sqlx::query(
        "SELECT id, asset_id, started_by, started_at, completed_by, completed_at, record_index
         FROM access_reviews WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(None);
    };
    let items = sqlx::query(
        "SELECT grant_id, decision, note, decided_at FROM access_review_items
         WHERE review_id = $1 ORDER BY grant_id",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(Some(Review {
        id: r.try_get(0)?,
        asset_id: r.try_get(1)?,
        started_by: r.try_get::<Option<i64>, _>(2)?.map(PersonId),
        started_at: r.try_get(3)?,
        completed_by: r.try_get::<Option<i64>, _>(4)?.map(PersonId),
        completed_at: r.try_get(5)?,
        record_index: r.try_get(6)?,
        items: items
            .iter()
            .map(|i| {
                Ok(ReviewItem {
                    grant_id: i.try_get(0)?,
                    decision: i.try_get(1)?,
                    note: i.try_get(2)?,
                    decided_at: i.try_get(3)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()?,
    }))
}

/// Review ids of an asset, newest first.
pub async fn review_ids(conn: &mut Conn, asset: i64) -> Result<Vec<i64>, sqlx::Error> {
    let rows = sqlx::query("SELECT id FROM access_reviews WHERE asset_id = $1 ORDER BY id DESC")
        .bind(asset)
        .fetch_all(conn)
        .await?;
    rows.iter().map(|r| r.try_get(0)).collect()
}

pub async fn open_review_of(conn: &mut Conn, asset: i64) -> Result<Option<i64>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT id FROM access_reviews WHERE asset_id = $1 AND completed_at IS NULL ORDER BY id DESC",
    )
    .bind(asset)
    .fetch_optional(conn)
    .await?;
    row.map(|r| r.try_get(0)).transpose()
}

pub async fn decide_item(
    conn: &mut Conn,
    review: i64,
    grant: i64,
    decision: &str,
    note: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE access_review_items SET decision = $3, note = $4, decided_at = $5
         WHERE review_id = $1 AND grant_id = $2",
    )
    .bind(review)
    .bind(grant)
    .bind(decision)
    .bind(note)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn complete_review(
    conn: &mut Conn,
    review: i64,
    by: Option<PersonId>,
    record_index: i64,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE access_reviews SET completed_by = $2, completed_at = $3, record_index = $4
         WHERE id = $1 AND completed_at IS NULL",
    )
    .bind(review)
    .bind(by.map(|p| p.0))
    .bind(now)
    .bind(record_index)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// When each asset's access was last reviewed to the end.
pub async fn last_reviews(conn: &mut Conn) -> Result<HashMap<i64, i64>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT asset_id, MAX(completed_at) FROM access_reviews
         WHERE completed_at IS NOT NULL GROUP BY asset_id",
    )
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect()
}

// ---------------------------------------------------------------------------
// The engine's change feed

pub async fn last_change(conn: &mut Conn) -> Result<i64, sqlx::Error> {
    sqlx::query("SELECT COALESCE(MAX(id), 0) FROM access_changes")
        .fetch_one(conn)
        .await?
        .try_get(0)
}

pub async fn changes_after(
    conn: &mut Conn,
    after: i64,
    limit: i64,
) -> Result<Vec<(i64, String, i64)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, entity, entity_id FROM access_changes WHERE id > $1 ORDER BY id LIMIT $2",
    )
    .bind(after)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
        .collect()
}

/// Drops feed rows every server has long read (keeps the last `keep`).
pub async fn trim_changes(conn: &mut Conn, keep: i64) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM access_changes WHERE id < (SELECT COALESCE(MAX(id), 0) FROM access_changes) - $1")
        .bind(keep)
        .execute(conn)
        .await?;
    Ok(())
}
