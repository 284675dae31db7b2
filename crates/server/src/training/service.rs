//! Rules and transactions of training (K9). Every change is a record in
//! the same transaction.

use super::{
    store, AudienceMember, Instruction, InstructionInput, Missing, Session, SessionInput,
    UnitCompletion, AUDIENCES, AUDIENCE_ROLES,
};
use crate::app::AppState;
use crate::auth::{Actor, ActorScope};
use crate::clock::date_str;
use crate::db::Conn;
use crate::ids::OrgUnitId;
use crate::records::{self, Record};
use crate::web::error::{AppError, FieldError};
use serde_json::json;
use std::collections::{BTreeMap, HashSet};

/// The units a scope covers (with the units below), or `None` for the ward.
pub async fn scope_units(conn: &mut Conn, scope: &ActorScope) -> Result<Option<HashSet<i64>>, AppError> {
    match scope {
        ActorScope::Ward => Ok(None),
        ActorScope::Units(units) => {
            let mut all = HashSet::new();
            for u in units {
                for d in crate::org::store::descendants(conn, *u).await? {
                    all.insert(d.0);
                }
            }
            Ok(Some(all))
        }
    }
}

fn in_units(units: &Option<HashSet<i64>>, unit: Option<i64>) -> bool {
    match units {
        None => true,
        Some(set) => unit.is_some_and(|u| set.contains(&u)),
    }
}

/// Creates a session (K9.1). A unit-scoped organiser (a セキュリティ管理者)
/// may only aim it at units in their scope.
pub async fn create_session(
    state: &AppState,
    actor: &Actor,
    scope: &ActorScope,
    input: &SessionInput,
) -> Result<i64, AppError> {
    let mut errors = Vec::new();
    let title = input.title.trim();
    if title.is_empty() {
        errors.push(FieldError::new("title", "field.required", &[]));
    } else if title.chars().count() > 200 {
        errors.push(FieldError::new("title", "field.too_long", &[("max", "200".into())]));
    }
    if input.description.chars().count() > 5000 {
        errors.push(FieldError::new("description", "field.too_long", &[("max", "5000".into())]));
    }
    let held_on = mamori_policy::wareki::parse_date(&input.held_on);
    if input.held_on.trim().is_empty() {
        errors.push(FieldError::new("held_on", "field.required", &[]));
    } else if held_on.is_none() {
        errors.push(FieldError::new(
            "held_on",
            "field.bad_date",
            &[("value", input.held_on.clone())],
        ));
    }
    if !AUDIENCES.contains(&input.audience.as_str()) {
        errors.push(FieldError::new("audience", "training.bad_audience", &[]).with_clause("K9.1"));
    }
    let mut conn = state.db().pool().acquire().await?;
    let scope_set = scope_units(&mut conn, scope).await?;
    let mut units = input.units.clone();
    units.sort();
    units.dedup();
    let mut roles = input.roles.clone();
    roles.sort();
    roles.dedup();
    match input.audience.as_str() {
        "units" => {
            if units.is_empty() {
                errors.push(FieldError::new("units", "training.units_required", &[]));
            }
            for u in &units {
                if crate::org::store::get_unit(&mut conn, OrgUnitId(*u)).await?.is_none() {
                    errors.push(FieldError::new("units", "training.unknown_unit", &[]));
                    break;
                }
                if !in_units(&scope_set, Some(*u)) {
                    errors.push(FieldError::new("units", "training.unit_out_of_scope", &[]));
                    break;
                }
            }
            roles.clear();
        }
        "roles" => {
            if roles.is_empty() {
                errors.push(FieldError::new("roles", "training.roles_required", &[]));
            }
            if roles
                .iter()
                .any(|r| !AUDIENCE_ROLES.iter().any(|a| a.code() == r))
            {
                errors.push(FieldError::new("roles", "training.unknown_role", &[]));
            }
            if scope_set.is_some() {
                // A unit-scoped organiser cannot address a role ward-wide.
                errors.push(FieldError::new("audience", "training.ward_audience_only", &[]));
            }
            units.clear();
        }
        "all" => {
            if scope_set.is_some() {
                errors.push(FieldError::new("audience", "training.ward_audience_only", &[]));
            }
            units.clear();
            roles.clear();
        }
        _ => {}
    }
    drop(conn);
    if !errors.is_empty() {
        return Err(AppError::Invalid(errors));
    }
    let held_on = date_str(held_on.unwrap_or_else(|| state.clock().today()));
    let org_unit_id = match scope {
        ActorScope::Ward => None,
        ActorScope::Units(u) => u.first().map(|u| u.0),
    };
    let now = state.clock().unix();
    let mut tx = state.db().begin().await?;
    let id = store::insert_session(
        &mut tx,
        &store::NewSession {
            title,
            held_on: &held_on,
            description: input.description.trim(),
            audience: &input.audience,
            units: &units,
            roles: &roles,
            required: input.required,
            organiser_id: actor.person_id.map(|p| p.0),
            org_unit_id,
        },
        now,
    )
    .await?;
    let rec = Record::new(actor.who(), "training.session.create", format!("training_session:{id}"), "K9.1")
        .from_ip(actor.ip())
        .detail(json!({
            "title": title, "held_on": held_on, "audience": input.audience,
            "units": units, "roles": roles, "required": input.required,
        }));
    records::append(&mut tx, state.clock().unix_micros(), &rec).await?;
    tx.commit().await?;
    state.ledger().poke();
    Ok(id)
}

pub async fn session(state: &AppState, id: i64) -> Result<Session, AppError> {
    let mut conn = state.db().pool().acquire().await?;
    store::get_session(&mut conn, id)
        .await?
        .ok_or(AppError::NotFound("training_session"))
}

/// Sessions, newest first.
pub async fn sessions(state: &AppState) -> Result<Vec<Session>, AppError> {
    let mut conn = state.db().pool().acquire().await?;
    Ok(store::list_sessions(&mut conn).await?)
}

/// The audience of a session within a scope.
pub async fn audience(
    state: &AppState,
    id: i64,
    scope: Option<&ActorScope>,
) -> Result<Vec<AudienceMember>, AppError> {
    let mut conn = state.db().pool().acquire().await?;
    let units = match scope {
        Some(s) => scope_units(&mut conn, s).await?,
        None => None,
    };
    Ok(store::audience(&mut conn, id)
        .await?
        .into_iter()
        .filter(|m| in_units(&units, m.unit_id))
        .collect())
}

/// Completion by department of a list of audiences.
pub fn completion(members: &[AudienceMember]) -> Vec<UnitCompletion> {
    let mut by: BTreeMap<(String, Option<i64>), (i64, i64)> = BTreeMap::new();
    for m in members {
        let e = by
            .entry((m.unit_name.clone().unwrap_or_default(), m.unit_id))
            .or_default();
        e.0 += 1;
        e.1 += i64::from(m.attended);
    }
    by.into_iter()
        .map(|((name, id), (n, a))| UnitCompletion {
            unit_id: id,
            unit_name: name,
            audience: n,
            attended: a,
            percent: if n == 0 { 100 } else { a * 100 / n },
        })
        .collect()
}

/// Completion by department over every required session whose date has
/// passed (the K9 view of the dashboard and the training page), within a
/// scope.
pub async fn overall_completion(
    state: &AppState,
    scope: Option<&ActorScope>,
) -> Result<Vec<UnitCompletion>, AppError> {
    let today = date_str(state.clock().today());
    let mut all = Vec::new();
    for s in sessions(state).await? {
        if s.required && s.cancelled_at.is_none() && s.held_on < today {
            all.extend(audience(state, s.id, scope).await?);
        }
    }
    Ok(completion(&all))
}

/// Marks (or unmarks) attendance of people in the session's audience.
/// A unit-scoped marker (a セキュリティ管理者) may mark only their staff.
pub async fn mark_attendance(
    state: &AppState,
    actor: &Actor,
    scope: &ActorScope,
    id: i64,
    person_ids: &[i64],
    attended: bool,
) -> Result<usize, AppError> {
    let s = session(state, id).await?;
    if s.cancelled_at.is_some() {
        return Err(AppError::invalid("session", "training.cancelled", &[]));
    }
    if person_ids.is_empty() {
        return Err(AppError::invalid("person_ids", "training.nobody_chosen", &[]));
    }
    let today = date_str(state.clock().today());
    if s.held_on > today {
        return Err(AppError::Invalid(vec![
            FieldError::new("session", "training.not_yet_held", &[]).with_clause("K9.3"),
        ]));
    }
    let members = audience(state, id, Some(scope)).await?;
    let known: HashSet<i64> = members.iter().map(|m| m.person_id).collect();
    if let Some(p) = person_ids.iter().find(|p| !known.contains(p)) {
        return Err(AppError::invalid(
            "person_ids",
            "training.not_in_audience",
            &[("person", p.to_string())],
        ));
    }
    let now = state.clock().unix();
    let mut tx = state.db().begin().await?;
    let mut changed = 0;
    for p in person_ids {
        if attended {
            store::mark(&mut tx, id, *p, "organiser", actor.person_id.map(|p| p.0), now).await?;
            changed += 1;
        } else if store::unmark(&mut tx, id, *p).await? {
            changed += 1;
        }
    }
    let rec = Record::new(
        actor.who(),
        if attended { "training.attendance.mark" } else { "training.attendance.unmark" },
        format!("training_session:{id}"),
        "K9.3",
    )
    .from_ip(actor.ip())
    .detail(json!({ "persons": person_ids, "changed": changed }));
    records::append(&mut tx, state.clock().unix_micros(), &rec).await?;
    tx.commit().await?;
    state.ledger().poke();
    Ok(changed)
}

/// A person reports their own attendance (K9.3) of a session held by today
/// that they are in the audience of; kept with source `self`.
pub async fn self_report(state: &AppState, actor: &Actor, id: i64) -> Result<(), AppError> {
    let s = session(state, id).await?;
    let me = actor
        .person_id
        .ok_or(AppError::invalid("session", "training.not_in_audience", &[]))?;
    if s.cancelled_at.is_some() {
        return Err(AppError::invalid("session", "training.cancelled", &[]));
    }
    let today = date_str(state.clock().today());
    if s.held_on > today {
        return Err(AppError::Invalid(vec![
            FieldError::new("session", "training.not_yet_held", &[]).with_clause("K9.3"),
        ]));
    }
    let members = audience(state, id, None).await?;
    let mine = members.iter().find(|m| m.person_id == me.0).ok_or(AppError::invalid(
        "session",
        "training.not_in_audience",
        &[],
    ))?;
    if mine.attended {
        return Ok(());
    }
    let now = state.clock().unix();
    let mut tx = state.db().begin().await?;
    store::mark(&mut tx, id, me.0, "self", Some(me.0), now).await?;
    let rec = Record::new(actor.who(), "training.attendance.self_report", format!("training_session:{id}"), "K9.3")
        .from_ip(actor.ip());
    records::append(&mut tx, state.clock().unix_micros(), &rec).await?;
    tx.commit().await?;
    state.ledger().poke();
    Ok(())
}

/// Everyone who missed a required session held before `today` (the K9
/// check).
pub async fn unattended(conn: &mut Conn, today: &str) -> Result<Vec<Missing>, AppError> {
    let mut out = Vec::new();
    for s in store::list_sessions(conn).await? {
        if !s.required || s.cancelled_at.is_some() || s.held_on.as_str() >= today {
            continue;
        }
        for m in store::audience(conn, s.id).await? {
            if !m.attended {
                out.push(Missing {
                    session_id: s.id,
                    title: s.title.clone(),
                    held_on: s.held_on.clone(),
                    person_id: m.person_id,
                    name: m.name,
                    employee_number: m.employee_number,
                    unit_id: m.unit_id,
                });
            }
        }
    }
    Ok(out)
}

/// K9.2: a security manager instructs a 情報化推進リーダー of one of their
/// units.
pub async fn instruct(
    state: &AppState,
    actor: &Actor,
    scope: &ActorScope,
    input: &InstructionInput,
) -> Result<i64, AppError> {
    let body = input.body.trim();
    let mut errors = Vec::new();
    if body.is_empty() {
        errors.push(FieldError::new("body", "field.required", &[]));
    } else if body.chars().count() > 5000 {
        errors.push(FieldError::new("body", "field.too_long", &[("max", "5000".into())]));
    }
    let today = date_str(state.clock().today());
    let mut conn = state.db().pool().acquire().await?;
    let unit = store::leader_unit(&mut conn, input.to_person_id, &today).await?;
    let scope_set = scope_units(&mut conn, scope).await?;
    match unit {
        Some(u) if in_units(&scope_set, Some(u)) => {}
        _ => errors.push(
            FieldError::new("to_person_id", "training.not_a_leader", &[]).with_clause("K9.2"),
        ),
    }
    drop(conn);
    let (Some(from), Some(unit), true) = (actor.person_id, unit, errors.is_empty()) else {
        return Err(AppError::Invalid(errors));
    };
    let now = state.clock().unix();
    let mut tx = state.db().begin().await?;
    let id = store::insert_instruction(&mut tx, unit, from.0, input.to_person_id, body, now).await?;
    let rec = Record::new(actor.who(), "training.instruction", format!("person:{}", input.to_person_id), "K9.2")
        .from_ip(actor.ip())
        .detail(json!({ "instruction_id": id, "org_unit_id": unit, "body": body }));
    records::append(&mut tx, state.clock().unix_micros(), &rec).await?;
    tx.commit().await?;
    state.ledger().poke();
    Ok(id)
}

/// The leader acknowledges an instruction addressed to them.
pub async fn acknowledge(state: &AppState, actor: &Actor, id: i64) -> Result<(), AppError> {
    let mut tx = state.db().begin().await?;
    let ins = store::get_instruction(&mut tx, id)
        .await?
        .ok_or(AppError::NotFound("instruction"))?;
    if actor.person_id.map(|p| p.0) != Some(ins.to_person_id) {
        return Err(AppError::NotFound("instruction"));
    }
    if !store::acknowledge(&mut tx, id, state.clock().unix()).await? {
        return Ok(());
    }
    let rec = Record::new(actor.who(), "training.instruction.acknowledge", format!("training_instruction:{id}"), "K9.2")
        .from_ip(actor.ip());
    records::append(&mut tx, state.clock().unix_micros(), &rec).await?;
    tx.commit().await?;
    state.ledger().poke();
    Ok(())
}

/// Instructions the actor may see: those in their scope of
/// `ViewTrainingRecords`, and those they gave or received.
pub async fn instructions(
    state: &AppState,
    actor: &Actor,
    scope: Option<&ActorScope>,
) -> Result<Vec<Instruction>, AppError> {
    let mut conn = state.db().pool().acquire().await?;
    let units = match scope {
        Some(s) => scope_units(&mut conn, s).await?,
        None => Some(HashSet::new()),
    };
    let me = actor.person_id.map(|p| p.0);
    Ok(store::list_instructions(&mut conn)
        .await?
        .into_iter()
        .filter(|i| {
            in_units(&units, Some(i.org_unit_id))
                || Some(i.from_person_id) == me
                || Some(i.to_person_id) == me
        })
        .collect())
}
