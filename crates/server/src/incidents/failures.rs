//! Failure records (障害記録, K16.4), their recurrence analysis (K10.4) and
//! the per-system failure procedures with fallbacks (障害時の対応手順, K26).
//!
//! A failure record belongs to a report: the manager (or an operator of
//! the system) classifies what happened — system, cause category, start
//! and recovery (the duration follows), impact, handling — so records are
//! systematic and searchable. Recurrence: the same system with the same
//! cause category twice or more in the period.
//!
//! Procedures are versioned (a new version never changes an old one:
//! triggers). A system marked as one whose failure greatly affects
//! residents' lives or the ward's work (K26 「区民生活、事務運営に多大な影響」)
//! and that has no procedure is flagged.

use super::service::{check_system, check_time, entry};
use crate::app::AppState;
use crate::auth::{Actor, ActorScope};
use crate::db::Conn;
use crate::ids::{OrgUnitId, PersonId};
use crate::web::error::{AppError, FieldError};
use crate::web::json::{check_text, done};
use mamori_policy::permission::Action;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};

/// Cause categories.
pub const CAUSES: [&str; 10] = [
    "hardware",
    "software",
    "network",
    "operation",
    "attack",
    "virus",
    "power",
    "vendor",
    "unknown",
    "other",
];
/// Impact: none, the ward's work (事務運営), residents' lives (区民生活), both.
pub const IMPACTS: [&str; 4] = ["none", "operations", "residents", "both"];
const MAX_TEXT: usize = 10_000;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FailureRecord {
    pub incident_id: i64,
    pub title: String,
    pub system_code: String,
    pub cause_category: String,
    pub started_at: i64,
    pub resolved_at: Option<i64>,
    /// From start to recovery, in minutes (none while unresolved).
    pub duration_minutes: Option<i64>,
    pub impact: String,
    pub handling: String,
    pub recorded_by: Option<PersonId>,
    pub recorded_by_name: Option<String>,
    pub recorded_at: i64,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FailureInput {
    #[serde(default)]
    pub system_code: String,
    #[serde(default)]
    pub cause_category: String,
    /// When the failure began (not in the future).
    #[serde(default)]
    pub started_at: String,
    /// When service was restored, if it is.
    #[serde(default)]
    pub resolved_at: String,
    #[serde(default)]
    pub impact: String,
    /// 処理内容: what was done.
    #[serde(default)]
    pub handling: String,
}

/// Where a unit-scoped actor reaches: the reporter's unit, or the unit
/// owning the system.
async fn covers(
    conn: &mut Conn,
    scope: &ActorScope,
    units: &[Option<OrgUnitId>],
) -> Result<bool, sqlx::Error> {
    if *scope == ActorScope::Ward {
        return Ok(true);
    }
    for u in units.iter().flatten() {
        if crate::org::service::in_scope(conn, scope, *u).await? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Codes of the systems the actor operates as a system-scoped 運用管理者
/// (their `RecordFailures`/`ViewFailureRecords` reach those systems).
pub async fn operated_systems(conn: &mut Conn, actor: &Actor) -> Result<Vec<String>, sqlx::Error> {
    let ids: Vec<_> = actor
        .roles
        .iter()
        .filter(|h| h.role == mamori_policy::Role::Operator)
        .filter_map(|h| h.system)
        .collect();
    if ids.is_empty() {
        return Ok(vec![]);
    }
    Ok(crate::org::store::list_systems(conn)
        .await?
        .into_iter()
        .filter(|s| ids.contains(&s.id))
        .map(|s| s.code)
        .collect())
}

async fn system_owner(conn: &mut Conn, code: &str) -> Result<Option<OrgUnitId>, sqlx::Error> {
    Ok(crate::org::store::list_systems(conn)
        .await?
        .into_iter()
        .find(|s| s.code == code)
        .map(|s| s.owner_org_unit_id))
}

/// Records (or corrects) the failure record of a report (K16.4).
pub async fn record(
    state: &AppState,
    actor: &Actor,
    scope: &ActorScope,
    incident: i64,
    input: &FailureInput,
) -> Result<FailureRecord, AppError> {
    let now = state.clock().unix();
    let mut tx = state.db().begin().await?;
    let (inc, _) = super::store::get(&mut tx, incident, now)
        .await?
        .ok_or(AppError::NotFound("incident"))?;
    let owner = system_owner(&mut tx, inc.system_code.trim()).await?;
    let target_owner = system_owner(&mut tx, input.system_code.trim()).await?;
    let operated = operated_systems(&mut tx, actor).await?;
    let operates = [inc.system_code.trim(), input.system_code.trim()]
        .iter()
        .any(|c| !c.is_empty() && operated.iter().any(|o| o == c));
    if !operates && !covers(&mut tx, scope, &[inc.reporter_unit_id, owner, target_owner]).await? {
        return Err(AppError::NotFound("incident"));
    }
    let mut e = Vec::new();
    check_system(&mut tx, &mut e, "system_code", &input.system_code, true).await?;
    let cause = input.cause_category.trim();
    if cause.is_empty() {
        e.push(FieldError::new("cause_category", "field.required", &[]));
    } else if !CAUSES.contains(&cause) {
        e.push(FieldError::new("cause_category", "failure.bad_cause", &[]));
    }
    let impact = input.impact.trim();
    if impact.is_empty() {
        e.push(FieldError::new("impact", "field.required", &[]));
    } else if !IMPACTS.contains(&impact) {
        e.push(FieldError::new("impact", "failure.bad_impact", &[]));
    }
    let started = check_time(&mut e, "started_at", &input.started_at, true, now);
    let resolved = check_time(&mut e, "resolved_at", &input.resolved_at, false, now);
    if let (Some(s), Some(r)) = (started, resolved) {
        if r < s {
            e.push(FieldError::new(
                "resolved_at",
                "failure.resolved_before_start",
                &[],
            ));
        }
    }
    check_text(&mut e, "handling", &input.handling, MAX_TEXT, false);
    done(e)?;
    let started = started.ok_or_else(|| AppError::invalid("started_at", "field.required", &[]))?;
    store::upsert_record(
        &mut tx,
        &store::NewRecord {
            incident_id: incident,
            system_code: input.system_code.trim(),
            cause_category: cause,
            started_at: started,
            resolved_at: resolved,
            impact,
            handling: input.handling.trim(),
            recorded_by: actor.person_id,
        },
        now,
    )
    .await?;
    entry(&mut tx, state, &actor.who(), actor.ip(), incident, "failure_recorded", "failure.record", "K16.4",
        json!({ "system_code": input.system_code.trim(), "cause_category": cause, "started_at": started,
                "resolved_at": resolved, "impact": impact })).await?;
    let rec = store::get_record(&mut tx, incident)
        .await?
        .ok_or(AppError::NotFound("failure record"))?;
    tx.commit().await?;
    state.ledger().poke();
    Ok(rec)
}

/// Search criteria for failure records.
#[derive(Debug, Clone, Default, Deserialize, Serialize, IntoParams, ToSchema)]
#[serde(default)]
#[into_params(parameter_in = Query)]
pub struct FailureQuery {
    pub system_code: Option<String>,
    pub cause_category: Option<String>,
    pub impact: Option<String>,
    /// At least this long (minutes).
    pub min_minutes: Option<String>,
    /// Started on or after this date or time.
    pub from: Option<String>,
    /// Started before the end of this date, or before this time.
    pub to: Option<String>,
}

fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// Validated criteria.
#[derive(Debug, Default)]
pub struct Criteria {
    pub system_code: Option<String>,
    pub cause_category: Option<String>,
    pub impact: Option<String>,
    pub min_minutes: Option<i64>,
    pub from: Option<i64>,
    pub to: Option<i64>,
    /// None for the ward; else units (expanded).
    pub units: Option<Vec<OrgUnitId>>,
    /// Systems the actor operates (reached whatever the units).
    pub operated: Vec<String>,
}

pub async fn criteria(
    conn: &mut Conn,
    actor: &Actor,
    scope: &ActorScope,
    q: &FailureQuery,
) -> Result<Criteria, AppError> {
    let mut e = Vec::new();
    let mut c = Criteria {
        system_code: given(&q.system_code).map(str::to_string),
        ..Default::default()
    };
    if let Some(v) = given(&q.cause_category) {
        if CAUSES.contains(&v) {
            c.cause_category = Some(v.into());
        } else {
            e.push(FieldError::new("cause_category", "failure.bad_cause", &[]));
        }
    }
    if let Some(v) = given(&q.impact) {
        if IMPACTS.contains(&v) {
            c.impact = Some(v.into());
        } else {
            e.push(FieldError::new("impact", "failure.bad_impact", &[]));
        }
    }
    if let Some(v) = given(&q.min_minutes) {
        match v.parse::<i64>() {
            Ok(n) if (0..=10_000_000).contains(&n) => c.min_minutes = Some(n),
            _ => e.push(FieldError::new("min_minutes", "failure.bad_minutes", &[])),
        }
    }
    let day = 86_400;
    if let Some(v) = given(&q.from) {
        match super::service::parse_time(v) {
            Some(t) => c.from = Some(t),
            None => e.push(FieldError::new(
                "from",
                "incident.bad_time",
                &[("value", v.chars().take(40).collect())],
            )),
        }
    }
    if let Some(v) = given(&q.to) {
        let date_only = !v.contains(':');
        match super::service::parse_time(v) {
            Some(t) => c.to = Some(if date_only { t + day } else { t }),
            None => e.push(FieldError::new(
                "to",
                "incident.bad_time",
                &[("value", v.chars().take(40).collect())],
            )),
        }
    }
    done(e)?;
    c.units = crate::people::api::scope_units(conn, scope).await?;
    c.operated = operated_systems(conn, actor).await?;
    Ok(c)
}

pub async fn search(
    state: &AppState,
    actor: &Actor,
    scope: &ActorScope,
    q: &FailureQuery,
) -> Result<Vec<FailureRecord>, AppError> {
    let mut conn = state.db().pool().acquire().await?;
    let c = criteria(&mut conn, actor, scope, q).await?;
    Ok(store::search(&mut conn, &c, 2000).await?)
}

/// One recurring (system, cause) pair.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Recurrence {
    pub system_code: String,
    pub cause_category: String,
    pub count: i64,
    pub first_at: i64,
    pub last_at: i64,
    pub total_minutes: i64,
    pub incident_ids: Vec<i64>,
}

/// Failures per month, for the chart.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MonthCount {
    /// `YYYY-MM` in Japan time.
    pub month: String,
    pub count: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RecurrenceReport {
    pub total: i64,
    /// Pairs seen twice or more, most frequent first.
    pub recurring: Vec<Recurrence>,
    /// Counts per system.
    pub by_system: Vec<(String, i64)>,
    pub by_month: Vec<MonthCount>,
}

fn month_of(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .map(|d| {
            let d = d.to_offset(crate::clock::JST);
            format!("{:04}-{:02}", d.year(), u8::from(d.month()))
        })
        .unwrap_or_default()
}

/// Recurrence analysis of the records the criteria select (K10.4).
pub fn analyse(records: &[FailureRecord]) -> RecurrenceReport {
    let mut pairs: BTreeMap<(String, String), Recurrence> = BTreeMap::new();
    let mut systems: BTreeMap<String, i64> = BTreeMap::new();
    let mut months: BTreeMap<String, i64> = BTreeMap::new();
    for r in records {
        *systems.entry(r.system_code.clone()).or_default() += 1;
        *months.entry(month_of(r.started_at)).or_default() += 1;
        let p = pairs
            .entry((r.system_code.clone(), r.cause_category.clone()))
            .or_insert_with(|| Recurrence {
                system_code: r.system_code.clone(),
                cause_category: r.cause_category.clone(),
                count: 0,
                first_at: r.started_at,
                last_at: r.started_at,
                total_minutes: 0,
                incident_ids: vec![],
            });
        p.count += 1;
        p.first_at = p.first_at.min(r.started_at);
        p.last_at = p.last_at.max(r.started_at);
        p.total_minutes += r.duration_minutes.unwrap_or(0);
        p.incident_ids.push(r.incident_id);
    }
    let mut recurring: Vec<Recurrence> = pairs.into_values().filter(|p| p.count >= 2).collect();
    recurring.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then(a.system_code.cmp(&b.system_code))
    });
    // Months without failures still show, so the chart's time axis is even.
    let mut by_month = Vec::new();
    if let (Some(first), Some(last)) =
        (months.keys().next().cloned(), months.keys().last().cloned())
    {
        let parse = |m: &str| -> Option<(i32, u32)> {
            Some((m.get(..4)?.parse().ok()?, m.get(5..7)?.parse().ok()?))
        };
        if let (Some((mut y, mut m)), Some((ly, lm))) = (parse(&first), parse(&last)) {
            let mut guard = 0;
            while (y, m) <= (ly, lm) && guard < 600 {
                let key = format!("{y:04}-{m:02}");
                by_month.push(MonthCount {
                    count: months.get(&key).copied().unwrap_or(0),
                    month: key,
                });
                m += 1;
                if m > 12 {
                    m = 1;
                    y += 1;
                }
                guard += 1;
            }
        }
    }
    let mut by_system: Vec<(String, i64)> = systems.into_iter().collect();
    by_system.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    RecurrenceReport {
        total: records.len() as i64,
        recurring,
        by_system,
        by_month,
    }
}

// ---------------------------------------------------------------------------
// Procedures (K26)

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProcedureSummary {
    pub id: i64,
    pub system_code: String,
    pub version: i64,
    pub title: String,
    pub created_at: i64,
    pub url: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Procedure {
    #[serde(flatten)]
    pub summary: ProcedureSummary,
    /// 対応手順.
    pub steps: String,
    /// 代替措置 (fallback while the system is down).
    pub fallback: String,
    pub created_by_name: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProcedureInput {
    #[serde(default)]
    pub system_code: String,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub steps: String,
    #[serde(default)]
    pub fallback: String,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CriticalInput {
    #[serde(default)]
    pub system_code: String,
    /// Its failure greatly affects residents' lives or the ward's work.
    #[serde(default)]
    pub critical: bool,
    #[serde(default)]
    pub reason: String,
}

/// A system as the procedures page shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SystemProcedures {
    pub system_code: String,
    pub system_name: String,
    pub owner_org_unit_id: OrgUnitId,
    pub critical: bool,
    pub critical_reason: String,
    pub current: Option<ProcedureSummary>,
    pub versions: Vec<ProcedureSummary>,
    /// Critical without a procedure (K26).
    pub flagged: bool,
}

async fn require_system_scope(conn: &mut Conn, actor: &Actor, code: &str) -> Result<(), AppError> {
    let owner = system_owner(conn, code).await?;
    let scope = actor
        .scope(Action::ManageFailureProcedures)
        .ok_or(AppError::Forbidden(Action::ManageFailureProcedures.code()))?;
    if !covers(conn, &scope, &[owner]).await? {
        return Err(AppError::Forbidden("out_of_scope"));
    }
    Ok(())
}

/// Writes a new version of a system's procedure (K26).
pub async fn write_procedure(
    state: &AppState,
    actor: &Actor,
    input: &ProcedureInput,
) -> Result<ProcedureSummary, AppError> {
    let now = state.clock().unix();
    let mut tx = state.db().begin().await?;
    let mut e = Vec::new();
    check_system(&mut tx, &mut e, "system_code", &input.system_code, true).await?;
    check_text(&mut e, "title", input.title.trim(), 200, true);
    check_text(&mut e, "steps", &input.steps, MAX_TEXT, true);
    check_text(&mut e, "fallback", &input.fallback, MAX_TEXT, true);
    done(e)?;
    let code = input.system_code.trim();
    require_system_scope(&mut tx, actor, code).await?;
    let version = store::max_version(&mut tx, code).await? + 1;
    let id = store::insert_procedure(
        &mut tx,
        code,
        version,
        input.title.trim(),
        &input.steps,
        &input.fallback,
        actor.person_id,
        now,
    )
    .await
    .map_err(|e| match e {
        // Someone saved the same version a moment earlier.
        sqlx::Error::Database(d) if d.is_unique_violation() => {
            AppError::Conflict("failure.version_taken")
        }
        e => AppError::Db(e),
    })?;
    let rec = crate::records::Record::new(
        actor.who(),
        "failure_procedure.write",
        format!("failure_procedure:{id}"),
        "K26",
    )
    .from_ip(actor.ip())
    .detail(json!({ "system_code": code, "version": version, "title": input.title.trim() }));
    crate::records::append(&mut tx, state.clock().unix_micros(), &rec).await?;
    let p = store::procedure(&mut tx, id)
        .await?
        .ok_or(AppError::NotFound("failure procedure"))?;
    tx.commit().await?;
    state.ledger().poke();
    Ok(p.summary)
}

/// Marks a system as one that needs a failure procedure (K26), or not.
pub async fn set_critical(
    state: &AppState,
    actor: &Actor,
    input: &CriticalInput,
) -> Result<(), AppError> {
    let now = state.clock().unix();
    let mut tx = state.db().begin().await?;
    let mut e = Vec::new();
    check_system(&mut tx, &mut e, "system_code", &input.system_code, true).await?;
    check_text(&mut e, "reason", &input.reason, 2000, input.critical);
    done(e)?;
    let code = input.system_code.trim();
    require_system_scope(&mut tx, actor, code).await?;
    store::set_critical(
        &mut tx,
        code,
        input.critical,
        input.reason.trim(),
        actor.person_id,
        now,
    )
    .await?;
    let rec = crate::records::Record::new(
        actor.who(),
        "failure_procedure.critical",
        format!("system:{code}"),
        "K26",
    )
    .from_ip(actor.ip())
    .detail(json!({ "critical": input.critical, "reason": input.reason.trim() }));
    crate::records::append(&mut tx, state.clock().unix_micros(), &rec).await?;
    tx.commit().await?;
    state.ledger().poke();
    Ok(())
}

/// Every registered system with its procedures and flag.
pub async fn overview(state: &AppState) -> Result<Vec<SystemProcedures>, AppError> {
    let mut conn = state.db().pool().acquire().await?;
    let systems = crate::org::store::list_systems(&mut conn).await?;
    let mut out = Vec::new();
    for s in systems {
        let versions = store::versions(&mut conn, &s.code).await?;
        let (critical, reason) = store::critical(&mut conn, &s.code).await?;
        let current = versions.first().cloned();
        out.push(SystemProcedures {
            flagged: critical && current.is_none(),
            system_code: s.code,
            system_name: s.name,
            owner_org_unit_id: s.owner_org_unit_id,
            critical,
            critical_reason: reason,
            current,
            versions,
        });
    }
    Ok(out)
}

pub async fn procedure(state: &AppState, id: i64) -> Result<Procedure, AppError> {
    let mut conn = state.db().pool().acquire().await?;
    store::procedure(&mut conn, id)
        .await?
        .ok_or(AppError::NotFound("failure procedure"))
}

/// SQL of failure records and procedures.
pub mod store {
    use super::{Criteria, FailureRecord, Procedure, ProcedureSummary};
    use crate::db::Conn;
    use crate::ids::PersonId;
    use sqlx::any::AnyRow;
    use sqlx::Row;

    pub struct NewRecord<'a> {
        pub incident_id: i64,
        pub system_code: &'a str,
        pub cause_category: &'a str,
        pub started_at: i64,
        pub resolved_at: Option<i64>,
        pub impact: &'a str,
        pub handling: &'a str,
        pub recorded_by: Option<PersonId>,
    }

    pub async fn upsert_record(
        conn: &mut Conn,
        r: &NewRecord<'_>,
        now: i64,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO failure_records (incident_id, system_code, cause_category, started_at, resolved_at, impact, handling, recorded_by, recorded_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (incident_id) DO UPDATE SET system_code = excluded.system_code,
               cause_category = excluded.cause_category, started_at = excluded.started_at,
               resolved_at = excluded.resolved_at, impact = excluded.impact, handling = excluded.handling,
               recorded_by = excluded.recorded_by, recorded_at = excluded.recorded_at",
        )
        .bind(r.incident_id)
        .bind(r.system_code)
        .bind(r.cause_category)
        .bind(r.started_at)
        .bind(r.resolved_at)
        .bind(r.impact)
        .bind(r.handling)
        .bind(r.recorded_by.map(|p| p.0))
        .bind(now)
        .execute(conn)
        .await?;
        Ok(())
    }

    const RECORD_SELECT: &str =
        "SELECT f.incident_id, i.title, f.system_code, f.cause_category, f.started_at,
        f.resolved_at, f.impact, f.handling, f.recorded_by, p.name_kanji, f.recorded_at
        FROM failure_records f JOIN incidents i ON i.id = f.incident_id
        LEFT JOIN persons p ON p.id = f.recorded_by";

    fn record_from_row(r: &AnyRow) -> Result<FailureRecord, sqlx::Error> {
        let started_at: i64 = r.try_get(4)?;
        let resolved_at: Option<i64> = r.try_get(5)?;
        Ok(FailureRecord {
            incident_id: r.try_get(0)?,
            title: r.try_get(1)?,
            system_code: r.try_get(2)?,
            cause_category: r.try_get(3)?,
            started_at,
            resolved_at,
            duration_minutes: resolved_at.map(|e| (e - started_at).max(0) / 60),
            impact: r.try_get(6)?,
            handling: r.try_get(7)?,
            recorded_by: r.try_get::<Option<i64>, _>(8)?.map(PersonId),
            recorded_by_name: r.try_get(9)?,
            recorded_at: r.try_get(10)?,
        })
    }

    pub async fn get_record(
        conn: &mut Conn,
        incident: i64,
    ) -> Result<Option<FailureRecord>, sqlx::Error> {
        let row = sqlx::query(&format!("{RECORD_SELECT} WHERE f.incident_id = $1"))
            .bind(incident)
            .fetch_optional(conn)
            .await?;
        row.as_ref().map(record_from_row).transpose()
    }

    pub async fn search(
        conn: &mut Conn,
        c: &Criteria,
        limit: i64,
    ) -> Result<Vec<FailureRecord>, sqlx::Error> {
        let mut conds: Vec<String> = Vec::new();
        let mut binds: Vec<String> = Vec::new();
        for (col, v) in [
            ("f.system_code", &c.system_code),
            ("f.cause_category", &c.cause_category),
            ("f.impact", &c.impact),
        ] {
            if let Some(v) = v {
                binds.push(v.clone());
                conds.push(format!("{col} = ${}", binds.len()));
            }
        }
        // Integers the code produced itself.
        if let Some(m) = c.min_minutes {
            conds.push(format!(
                "f.resolved_at IS NOT NULL AND f.resolved_at - f.started_at >= {}",
                m * 60
            ));
        }
        if let Some(t) = c.from {
            conds.push(format!("f.started_at >= {t}"));
        }
        if let Some(t) = c.to {
            conds.push(format!("f.started_at < {t}"));
        }
        if let Some(units) = &c.units {
            let list: Vec<String> = units.iter().map(|u| u.0.to_string()).collect();
            let list = if list.is_empty() {
                "0".to_string()
            } else {
                list.join(",")
            };
            let mut operated = Vec::new();
            for code in &c.operated {
                binds.push(code.clone());
                operated.push(format!("${}", binds.len()));
            }
            let operated = if operated.is_empty() {
                String::new()
            } else {
                format!(" OR f.system_code IN ({})", operated.join(", "))
            };
            conds.push(format!(
                "(i.reporter_unit_id IN ({list}) OR f.system_code IN (SELECT code FROM systems WHERE owner_org_unit_id IN ({list})){operated})"
            ));
        }
        let w = if conds.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conds.join(" AND "))
        };
        let sql = format!(
            "{RECORD_SELECT}{w} ORDER BY f.started_at DESC, f.incident_id DESC LIMIT {limit}"
        );
        let mut q = sqlx::query(&sql);
        for b in &binds {
            q = q.bind(b.clone());
        }
        let rows = q.fetch_all(conn).await?;
        rows.iter().map(record_from_row).collect()
    }

    pub async fn max_version(conn: &mut Conn, code: &str) -> Result<i64, sqlx::Error> {
        let row = sqlx::query(
            "SELECT COALESCE(MAX(version), 0) FROM failure_procedures WHERE system_code = $1",
        )
        .bind(code)
        .fetch_one(conn)
        .await?;
        row.try_get(0)
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn insert_procedure(
        conn: &mut Conn,
        code: &str,
        version: i64,
        title: &str,
        steps: &str,
        fallback: &str,
        by: Option<PersonId>,
        now: i64,
    ) -> Result<i64, sqlx::Error> {
        let row = sqlx::query(
            "INSERT INTO failure_procedures (system_code, version, title, steps, fallback, created_by, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(code)
        .bind(version)
        .bind(title)
        .bind(steps)
        .bind(fallback)
        .bind(by.map(|p| p.0))
        .bind(now)
        .fetch_one(conn)
        .await?;
        row.try_get(0)
    }

    const PROC_SELECT: &str = "SELECT f.id, f.system_code, f.version, f.title, f.created_at, f.steps, f.fallback, p.name_kanji
        FROM failure_procedures f LEFT JOIN persons p ON p.id = f.created_by";

    fn summary_from_row(r: &AnyRow) -> Result<ProcedureSummary, sqlx::Error> {
        let id: i64 = r.try_get(0)?;
        Ok(ProcedureSummary {
            id,
            system_code: r.try_get(1)?,
            version: r.try_get(2)?,
            title: r.try_get(3)?,
            created_at: r.try_get(4)?,
            url: format!("/failure-procedures/{id}"),
        })
    }

    /// Versions of a system's procedure, newest first.
    pub async fn versions(
        conn: &mut Conn,
        code: &str,
    ) -> Result<Vec<ProcedureSummary>, sqlx::Error> {
        let rows = sqlx::query(&format!(
            "{PROC_SELECT} WHERE f.system_code = $1 ORDER BY f.version DESC"
        ))
        .bind(code)
        .fetch_all(conn)
        .await?;
        rows.iter().map(summary_from_row).collect()
    }

    pub async fn current_procedure(
        conn: &mut Conn,
        code: &str,
    ) -> Result<Option<ProcedureSummary>, sqlx::Error> {
        Ok(versions(conn, code).await?.into_iter().next())
    }

    pub async fn procedure(conn: &mut Conn, id: i64) -> Result<Option<Procedure>, sqlx::Error> {
        let row = sqlx::query(&format!("{PROC_SELECT} WHERE f.id = $1"))
            .bind(id)
            .fetch_optional(conn)
            .await?;
        row.as_ref()
            .map(|r| {
                Ok(Procedure {
                    summary: summary_from_row(r)?,
                    steps: r.try_get(5)?,
                    fallback: r.try_get(6)?,
                    created_by_name: r.try_get(7)?,
                })
            })
            .transpose()
    }

    pub async fn set_critical(
        conn: &mut Conn,
        code: &str,
        critical: bool,
        reason: &str,
        by: Option<PersonId>,
        now: i64,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO failure_critical_systems (system_code, critical, reason, set_by, set_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (system_code) DO UPDATE SET critical = excluded.critical, reason = excluded.reason,
               set_by = excluded.set_by, set_at = excluded.set_at",
        )
        .bind(code)
        .bind(i64::from(critical))
        .bind(reason)
        .bind(by.map(|p| p.0))
        .bind(now)
        .execute(conn)
        .await?;
        Ok(())
    }

    pub async fn critical(conn: &mut Conn, code: &str) -> Result<(bool, String), sqlx::Error> {
        let row = sqlx::query(
            "SELECT critical, reason FROM failure_critical_systems WHERE system_code = $1",
        )
        .bind(code)
        .fetch_optional(conn)
        .await?;
        match row {
            Some(r) => Ok((r.try_get::<i64, _>(0)? != 0, r.try_get(1)?)),
            None => Ok((false, String::new())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: i64, sys: &str, cause: &str, start: i64, mins: i64) -> FailureRecord {
        FailureRecord {
            incident_id: id,
            title: String::new(),
            system_code: sys.into(),
            cause_category: cause.into(),
            started_at: start,
            resolved_at: Some(start + mins * 60),
            duration_minutes: Some(mins),
            impact: "operations".into(),
            handling: String::new(),
            recorded_by: None,
            recorded_by_name: None,
            recorded_at: start,
        }
    }

    #[test]
    fn k10_4_same_system_and_cause_twice_is_recurrence() {
        // 2026-01-10, 2026-03-05 and 2026-03-20 (JST noon).
        let jan = 1_768_014_000;
        let mar = 1_772_679_600;
        let records = [
            rec(1, "library", "network", jan, 30),
            rec(2, "library", "network", mar, 90),
            rec(3, "library", "hardware", mar + 15 * 86_400, 10),
            rec(4, "facility", "network", mar, 5),
        ];
        let r = analyse(&records);
        assert_eq!(r.total, 4);
        assert_eq!(r.recurring.len(), 1);
        assert_eq!(r.recurring[0].system_code, "library");
        assert_eq!(r.recurring[0].count, 2);
        assert_eq!(r.recurring[0].total_minutes, 120);
        let months: Vec<(&str, i64)> = r
            .by_month
            .iter()
            .map(|m| (m.month.as_str(), m.count))
            .collect();
        assert_eq!(months, [("2026-01", 1), ("2026-02", 0), ("2026-03", 3)]);
        assert_eq!(r.by_system[0], ("library".to_string(), 3));
    }
}
