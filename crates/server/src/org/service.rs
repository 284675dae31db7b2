//! Rules and transactions for the organisation: every change is checked
//! against the actor's scope and written with its record in one transaction.

use super::store::{self, NewAssignment, NewUnit};
use super::{ChainStep, OrgUnit, RoleAssignment, UnitKind};
use crate::app::AppState;
use crate::auth::{Actor, ActorScope};
use crate::clock::date_str;
use crate::db::Conn;
use crate::ids::{OrgUnitId, PersonId, RoleAssignmentId, SystemId};
use crate::records::{self, Record};
use crate::web::error::{AppError, FieldError};
use crate::web::json::{check_date, check_text, done};
use mamori_policy::role::{Approver, Readings};
use mamori_policy::{permission, Role};
use serde::Deserialize;
use serde_json::json;

/// Whether `unit` lies inside the actor's scope.
pub async fn in_scope(
    conn: &mut Conn,
    scope: &ActorScope,
    unit: OrgUnitId,
) -> Result<bool, sqlx::Error> {
    match scope {
        ActorScope::Ward => Ok(true),
        ActorScope::Units(units) => {
            let up = store::ancestors(conn, unit).await?;
            Ok(up.iter().any(|u| units.contains(u)))
        }
    }
}

/// Refuses unless `unit` is inside the scope.
pub async fn require_in_scope(
    conn: &mut Conn,
    scope: &ActorScope,
    unit: Option<OrgUnitId>,
) -> Result<(), AppError> {
    let ok = match (scope, unit) {
        (ActorScope::Ward, _) => true,
        (_, None) => false,
        (s, Some(u)) => in_scope(conn, s, u).await?,
    };
    if ok {
        Ok(())
    } else {
        Err(AppError::Forbidden("out_of_scope"))
    }
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UnitInput {
    /// ASCII code, unique (e.g. `kikaku-johoseisaku`).
    pub code: String,
    pub name: String,
    #[serde(default)]
    pub name_en: String,
    pub kind: UnitKind,
    pub parent_id: Option<OrgUnitId>,
    /// First day; defaults to today.
    #[serde(default)]
    pub valid_from: Option<String>,
    #[serde(default)]
    pub valid_to: Option<String>,
}

pub fn valid_code(code: &str) -> bool {
    !code.is_empty()
        && code.len() <= 32
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

async fn validate_unit(
    conn: &mut Conn,
    input: &UnitInput,
    today: &str,
    this: Option<OrgUnitId>,
) -> Result<(String, Option<String>), AppError> {
    let mut errors = Vec::new();
    if !valid_code(&input.code) {
        errors.push(FieldError::new("code", "field.bad_code", &[]));
    }
    check_text(&mut errors, "name", &input.name, 100, true);
    check_text(&mut errors, "name_en", &input.name_en, 100, false);
    let from = match input.valid_from.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => check_date(&mut errors, "valid_from", s).map(date_str),
        None => Some(today.to_string()),
    };
    let to = match input.valid_to.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => check_date(&mut errors, "valid_to", s).map(date_str),
        None => None,
    };
    if let (Some(f), Some(t)) = (&from, &to) {
        if t < f {
            errors.push(FieldError::new("valid_to", "field.end_before_start", &[]));
        }
    }
    match (input.kind, input.parent_id) {
        (UnitKind::Ward, Some(_)) => {
            errors.push(FieldError::new("parent_id", "org.ward_has_no_parent", &[]))
        }
        (UnitKind::Ward, None) => {}
        (_, None) => errors.push(FieldError::new("parent_id", "field.required", &[])),
        (_, Some(p)) => {
            if store::get_unit(conn, p).await?.is_none() {
                errors.push(FieldError::new("parent_id", "org.no_such_unit", &[]));
            } else if let Some(me) = this {
                if store::ancestors(conn, p).await?.contains(&me) {
                    errors.push(FieldError::new("parent_id", "org.cycle", &[]));
                }
            }
        }
    }
    if let Some(existing) = store::unit_by_code(conn, &input.code).await? {
        if Some(existing.id) != this {
            errors.push(FieldError::new("code", "field.duplicate", &[]));
        }
    }
    done(errors)?;
    Ok((from.unwrap_or_default(), to))
}

pub async fn create_unit(
    state: &AppState,
    actor: &Actor,
    input: UnitInput,
) -> Result<OrgUnit, AppError> {
    let today = date_str(state.clock().today());
    let mut tx = state.db().begin().await?;
    let (from, to) = validate_unit(&mut tx, &input, &today, None).await?;
    let new = NewUnit {
        code: &input.code,
        name: input.name.trim(),
        name_en: input.name_en.trim(),
        kind: input.kind,
        parent_id: input.parent_id,
        valid_from: &from,
        valid_to: to.as_deref(),
    };
    let id = store::insert_unit(&mut tx, &new, state.clock().unix()).await?;
    let rec = Record::new(actor.who(), "org_unit.create", id.record_ref(), "Y4.4")
        .from_ip(actor.ip())
        .detail(json!({ "code": input.code, "name": input.name, "kind": input.kind.code(), "parent_id": input.parent_id }));
    records::append(&mut tx, state.clock().unix_micros(), &rec).await?;
    let unit = store::get_unit(&mut tx, id)
        .await?
        .ok_or(AppError::NotFound("org_unit"))?;
    tx.commit().await?;
    Ok(unit)
}

pub async fn update_unit(
    state: &AppState,
    actor: &Actor,
    id: OrgUnitId,
    input: UnitInput,
) -> Result<OrgUnit, AppError> {
    let today = date_str(state.clock().today());
    let mut tx = state.db().begin().await?;
    let before = store::get_unit(&mut tx, id)
        .await?
        .ok_or(AppError::NotFound("org_unit"))?;
    let (from, to) = validate_unit(&mut tx, &input, &today, Some(id)).await?;
    let new = NewUnit {
        code: &input.code,
        name: input.name.trim(),
        name_en: input.name_en.trim(),
        kind: input.kind,
        parent_id: input.parent_id,
        valid_from: &from,
        valid_to: to.as_deref(),
    };
    store::update_unit(&mut tx, id, &new).await?;
    let rec = Record::new(actor.who(), "org_unit.update", id.record_ref(), "Y4.4").from_ip(actor.ip()).detail(json!({
        "before": before, "after": { "code": input.code, "name": input.name, "kind": input.kind.code(),
        "parent_id": input.parent_id, "valid_from": from, "valid_to": to }
    }));
    records::append(&mut tx, state.clock().unix_micros(), &rec).await?;
    let unit = store::get_unit(&mut tx, id)
        .await?
        .ok_or(AppError::NotFound("org_unit"))?;
    tx.commit().await?;
    Ok(unit)
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignInput {
    pub person_id: PersonId,
    /// Role code (`security_manager`, `operator`, …) or its Japanese title.
    pub role: String,
    /// Required for unit roles; absent for ward-wide ones.
    #[serde(default)]
    pub org_unit_id: Option<OrgUnitId>,
    /// For an operator of one system.
    #[serde(default)]
    pub system_id: Option<SystemId>,
    #[serde(default)]
    pub valid_from: Option<String>,
    #[serde(default)]
    pub valid_to: Option<String>,
}

/// Assigns a role (Y4, K8; operators K8.1.3.f / K18, viewers K30.2).
pub async fn assign_role(
    state: &AppState,
    actor: &Actor,
    scope: &ActorScope,
    input: AssignInput,
) -> Result<RoleAssignment, AppError> {
    // Granting rights is a sensitive action (K12.1.5 re-authentication).
    crate::auth::session::require_recent_auth(state, actor)?;
    let today = date_str(state.clock().today());
    let mut errors = Vec::new();
    let role = match input.role.parse::<Role>() {
        Ok(r) => Some(r),
        Err(_) => {
            errors.push(FieldError::new(
                "role",
                "org.unknown_role",
                &[("value", input.role.chars().take(40).collect())],
            ));
            None
        }
    };
    let from = match input.valid_from.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => check_date(&mut errors, "valid_from", s).map(date_str),
        None => Some(today.clone()),
    };
    let to = match input.valid_to.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => check_date(&mut errors, "valid_to", s).map(date_str),
        None => None,
    };
    if let (Some(f), Some(t)) = (&from, &to) {
        if t < f {
            errors.push(FieldError::new("valid_to", "field.end_before_start", &[]));
        }
    }
    let mut tx = state.db().begin().await?;
    if crate::people::store::get_person(&mut tx, input.person_id)
        .await?
        .is_none()
    {
        errors.push(FieldError::new("person_id", "people.no_such_person", &[]));
    }
    if let Some(role) = role {
        match (role.is_ward_wide(), input.org_unit_id) {
            (true, Some(_)) => errors.push(FieldError::new(
                "org_unit_id",
                "org.ward_role_has_no_unit",
                &[],
            )),
            (false, None) if input.system_id.is_none() => {
                errors.push(FieldError::new("org_unit_id", "field.required", &[]))
            }
            (_, Some(u)) if store::get_unit(&mut tx, u).await?.is_none() => {
                errors.push(FieldError::new("org_unit_id", "org.no_such_unit", &[]))
            }
            _ => {}
        }
        // K32.2: an external auditor's access is time-limited.
        if role == Role::ExternalAuditor && to.is_none() {
            errors.push(
                FieldError::new("valid_to", "org.auditor_needs_end", &[]).with_clause("K32.2"),
            );
        }
        if let Some(s) = input.system_id {
            if role != Role::Operator {
                errors.push(FieldError::new(
                    "system_id",
                    "org.system_only_for_operator",
                    &[],
                ));
            } else if !store::system_exists(&mut tx, s).await? {
                errors.push(FieldError::new("system_id", "org.no_such_system", &[]));
            }
        }
    }
    done(errors)?;
    let role = role.ok_or(AppError::Internal("role checked above".into()))?;
    // The assigner must hold a role that may hand this one out, in scope.
    let may = actor
        .roles
        .iter()
        .any(|h| permission::may_assign(h.role, role));
    if !may {
        return Err(AppError::Forbidden("assign_this_role"));
    }
    require_in_scope(&mut tx, scope, input.org_unit_id).await?;
    let new = NewAssignment {
        person_id: input.person_id,
        role: role.code(),
        org_unit_id: input.org_unit_id,
        system_id: input.system_id,
        valid_from: from.as_deref().unwrap_or(&today),
        valid_to: to.as_deref(),
        created_by: actor.person_id,
    };
    let id = store::insert_assignment(&mut tx, &new, state.clock().unix()).await?;
    let rec = Record::new(actor.who(), "role.assign", input.person_id.record_ref(), role.clause())
        .from_ip(actor.ip())
        .detail(json!({ "assignment_id": id, "role": role.code(), "org_unit_id": input.org_unit_id,
                         "system_id": input.system_id, "valid_from": new.valid_from, "valid_to": new.valid_to }));
    records::append(&mut tx, state.clock().unix_micros(), &rec).await?;
    let a = store::get_assignment(&mut tx, id)
        .await?
        .ok_or(AppError::NotFound("role_assignment"))?;
    tx.commit().await?;
    Ok(a)
}

/// Ends an assignment on `last_day` (default: yesterday, so it no longer
/// holds today).
pub async fn end_role(
    state: &AppState,
    actor: &Actor,
    scope: &ActorScope,
    id: RoleAssignmentId,
    last_day: Option<&str>,
) -> Result<RoleAssignment, AppError> {
    let yesterday = date_str(
        state
            .clock()
            .today()
            .previous_day()
            .unwrap_or(time::Date::MIN),
    );
    let last = match last_day.filter(|s| !s.is_empty()) {
        Some(s) => {
            let mut errors = Vec::new();
            let d = check_date(&mut errors, "valid_to", s);
            done(errors)?;
            d.map(date_str).unwrap_or(yesterday)
        }
        None => yesterday,
    };
    let mut tx = state.db().begin().await?;
    let a = store::get_assignment(&mut tx, id)
        .await?
        .ok_or(AppError::NotFound("role_assignment"))?;
    let role: Role = a
        .role
        .parse()
        .map_err(|_| AppError::Internal("stored role".into()))?;
    if !actor
        .roles
        .iter()
        .any(|h| permission::may_assign(h.role, role))
    {
        return Err(AppError::Forbidden("assign_this_role"));
    }
    require_in_scope(&mut tx, scope, a.org_unit_id).await?;
    if last < a.valid_from {
        return Err(AppError::invalid("valid_to", "field.end_before_start", &[]));
    }
    store::end_assignment(&mut tx, id, &last).await?;
    let rec = Record::new(
        actor.who(),
        "role.end",
        a.person_id.record_ref(),
        role.clause(),
    )
    .from_ip(actor.ip())
    .detail(json!({ "assignment_id": id, "role": a.role, "valid_to": last }));
    records::append(&mut tx, state.clock().unix_micros(), &rec).await?;
    let a = store::get_assignment(&mut tx, id)
        .await?
        .ok_or(AppError::NotFound("role_assignment"))?;
    tx.commit().await?;
    Ok(a)
}

/// The security manager responsible for `unit`: the nearest holder going
/// up the tree (a 課's 課長; for a unit without one, the unit above).
pub async fn unit_security_manager(
    conn: &mut Conn,
    unit: OrgUnitId,
    date: &str,
) -> Result<Option<ChainStep>, sqlx::Error> {
    for u in store::ancestors(conn, unit).await? {
        if let Some((pid, name)) = store::holders(conn, Role::SecurityManager.code(), Some(u), date)
            .await?
            .into_iter()
            .next()
        {
            return Ok(Some(step(
                Role::SecurityManager,
                Some((pid, name)),
                Some(u),
            )));
        }
    }
    Ok(None)
}

fn step(role: Role, holder: Option<(PersonId, String)>, unit: Option<OrgUnitId>) -> ChainStep {
    ChainStep {
        role: role.code().into(),
        role_ja: role.ja().into(),
        person_id: holder.as_ref().map(|h| h.0),
        person_name: holder.map(|h| h.1),
        org_unit_id: unit,
    }
}

async fn ward_holder(conn: &mut Conn, role: Role, date: &str) -> Result<ChainStep, sqlx::Error> {
    let holder = store::holders(conn, role.code(), None, date)
        .await?
        .into_iter()
        .next();
    Ok(step(role, holder, None))
}

/// The reporting chain of K10.1–3 for a person: their unit's security
/// manager, the セキュリティ統括者, the 最高情報統括責任者. A step nobody
/// holds is still listed, without a person, so the gap shows.
pub async fn reporting_chain(
    conn: &mut Conn,
    unit: Option<OrgUnitId>,
    date: &str,
) -> Result<Vec<ChainStep>, sqlx::Error> {
    let mut chain = Vec::new();
    let manager = match unit {
        Some(u) => unit_security_manager(conn, u, date).await?,
        None => None,
    };
    chain.push(manager.unwrap_or_else(|| step(Role::SecurityManager, None, unit)));
    chain.push(ward_holder(conn, Role::SecurityDirector, date).await?);
    chain.push(ward_holder(conn, Role::Cio, date).await?);
    Ok(chain)
}

/// The approver of a request under `clause` from `unit` (SPEC §3.7).
pub async fn approver(
    conn: &mut Conn,
    clause: &str,
    unit: OrgUnitId,
    date: &str,
    readings: &Readings,
) -> Result<Option<ChainStep>, sqlx::Error> {
    match mamori_policy::role::approver_for(clause, readings) {
        Some(Approver::UnitSecurityManager) => unit_security_manager(conn, unit, date).await,
        Some(Approver::Ward(role)) => Ok(Some(ward_holder(conn, role, date).await?)),
        None => Ok(None),
    }
}
