//! Rules and transactions for the asset register and access rights. Every
//! change is checked, written with its record in one transaction, and then
//! applied to this server's decision engine ([`after_commit`]).

use super::conditions::ConditionsDoc;
use super::store::{self, AssetColumns, Scales, Terms};
use super::{AccessRequest, Asset, AssetKind, GrantRow, Level, Review, SubjectRef};
use crate::app::AppState;
use crate::auth::{Actor, ActorScope};
use crate::clock::{date_str, JST};
use crate::db::Conn;
use crate::ids::{OrgUnitId, PersonId};
use crate::org::service::{in_scope, valid_code};
use crate::records::{self, Record, Who};
use crate::web::error::{AppError, FieldError};
use crate::web::json::{check_text, done};
use mamori_policy::Role;
use serde::Deserialize;
use serde_json::json;
use std::collections::HashMap;

/// Applies this server's committed changes to its engine at once (other
/// servers pick them up from the feed within their poll interval).
pub async fn after_commit(state: &AppState) {
    if let Err(e) = state.access().sync(state.db(), state.clock().unix()).await {
        tracing::error!(error = %e, "access engine could not apply a committed change");
    }
}

async fn record(state: &AppState, conn: &mut Conn, rec: Record) -> Result<i64, AppError> {
    Ok(records::append(conn, state.clock().unix_micros(), &rec).await?)
}

fn who(actor: &Actor) -> Who {
    actor.who()
}

// ---------------------------------------------------------------------------
// Assets

/// An asset as entered (API body and, field by field, the edit form).
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct AssetInput {
    pub code: String,
    pub name: String,
    #[serde(default)]
    pub name_en: String,
    /// `system` or `dataset`.
    pub kind: String,
    /// For a data set: the system that holds it.
    #[serde(default)]
    pub parent_id: Option<i64>,
    pub owner_org_unit_id: i64,
    /// The セキュリティ管理者 responsible for it.
    #[serde(default)]
    pub security_manager_id: Option<i64>,
    /// A level code of the confidentiality scale (`secret`, `general`).
    pub confidentiality: String,
    /// For 秘密情報: `K3.1.1.a` or `K3.1.1.b`.
    #[serde(default)]
    pub secret_ground: Option<String>,
    /// Level codes (default: the scale's lowest).
    #[serde(default)]
    pub integrity: Option<String>,
    #[serde(default)]
    pub availability: Option<String>,
    /// A national level within the confidentiality level's mapping.
    #[serde(default)]
    pub national_c: Option<String>,
    #[serde(default)]
    pub national_c_r6: Option<String>,
    #[serde(default)]
    pub personal_info: bool,
    /// `my_number`, `lgwan` or `internet`.
    pub zone: String,
    #[serde(default)]
    pub external_connection: bool,
    #[serde(default)]
    pub description: String,
    /// Why the classification changes (required when it does, K3.1).
    #[serde(default)]
    pub classification_reason: Option<String>,
}

struct CheckedAsset {
    kind: AssetKind,
    integrity: String,
    availability: String,
    national_c: String,
    national_c_r6: String,
    secret_ground: Option<String>,
}

fn lowest(scales: &Scales, axis: &str) -> String {
    scales
        .axis(axis)
        .last()
        .map(|l| l.code.clone())
        .unwrap_or_default()
}

async fn check_asset(
    state: &AppState,
    conn: &mut Conn,
    scales: &Scales,
    input: &AssetInput,
    this: Option<i64>,
) -> Result<CheckedAsset, AppError> {
    let mut errors = Vec::new();
    if !valid_code(&input.code) {
        errors.push(FieldError::new("code", "field.bad_code", &[]));
    } else if let Some(other) = store::asset_id_by_code(conn, &input.code).await? {
        if Some(other) != this {
            errors.push(FieldError::new("code", "field.duplicate", &[]));
        }
    }
    check_text(&mut errors, "name", &input.name, 100, true);
    check_text(&mut errors, "name_en", &input.name_en, 100, false);
    check_text(&mut errors, "description", &input.description, 2000, false);
    let kind = AssetKind::parse(&input.kind);
    if kind.is_none() {
        errors.push(FieldError::new("kind", "assets.bad_kind", &[]));
    }
    match (kind, input.parent_id) {
        (Some(AssetKind::System), Some(_)) => errors.push(FieldError::new(
            "parent_id",
            "assets.system_has_no_parent",
            &[],
        )),
        (_, Some(p)) => match store::get_asset(conn, scales, p).await? {
            Some(parent) if parent.kind == AssetKind::System && parent.retired_at.is_none() => {}
            _ => errors.push(FieldError::new("parent_id", "assets.bad_parent", &[])),
        },
        _ => {}
    }
    let owner = OrgUnitId(input.owner_org_unit_id);
    if crate::org::store::get_unit(conn, owner).await?.is_none() {
        errors.push(FieldError::new(
            "owner_org_unit_id",
            "org.no_such_unit",
            &[],
        ));
    }
    if let Some(m) = input.security_manager_id {
        if !is_security_manager(state, conn, PersonId(m), owner).await? {
            errors.push(
                FieldError::new("security_manager_id", "assets.not_a_security_manager", &[])
                    .with_clause("K3.1"),
            );
        }
    }
    let level = scales.get("confidentiality", &input.confidentiality);
    let mut secret_ground = None;
    match level {
        None => errors.push(FieldError::new(
            "confidentiality",
            "assets.unknown_level",
            &[],
        )),
        Some(l) if l.is_secret => match input.secret_ground.as_deref().filter(|s| !s.is_empty()) {
            Some(g) if super::SECRET_GROUNDS.contains(&g) => secret_ground = Some(g.to_string()),
            Some(_) => errors.push(FieldError::new("secret_ground", "assets.bad_ground", &[])),
            None => errors.push(
                FieldError::new("secret_ground", "assets.ground_required", &[])
                    .with_clause("K3.1.1"),
            ),
        },
        Some(_) => {}
    }
    let mut axis_level = |axis: &'static str, given: &Option<String>| -> String {
        match given.as_deref().filter(|s| !s.is_empty()) {
            None => lowest(scales, axis),
            Some(c) if scales.get(axis, c).is_some() => c.to_string(),
            Some(_) => {
                errors.push(FieldError::new(axis, "assets.unknown_level", &[]));
                String::new()
            }
        }
    };
    let integrity = axis_level("integrity", &input.integrity);
    let availability = axis_level("availability", &input.availability);
    let pick =
        |given: &Option<String>, allowed: &[String], field: &str, errors: &mut Vec<FieldError>| {
            match given.as_deref().filter(|s| !s.is_empty()) {
                None => allowed.first().cloned().unwrap_or_default(),
                Some(v) if allowed.iter().any(|a| a == v) => v.to_string(),
                Some(_) => {
                    errors.push(FieldError::new(
                        field,
                        "assets.national_out_of_mapping",
                        &[("allowed", allowed.join(" / "))],
                    ));
                    String::new()
                }
            }
        };
    let (national_c, national_c_r6) = match level {
        Some(l) => (
            pick(&input.national_c, &l.national, "national_c", &mut errors),
            pick(
                &input.national_c_r6,
                &l.national_r6,
                "national_c_r6",
                &mut errors,
            ),
        ),
        None => (String::new(), String::new()),
    };
    if !super::ZONES.contains(&input.zone.as_str()) {
        errors.push(FieldError::new(
            "zone",
            "assets.bad_zone",
            &[("value", input.zone.chars().take(20).collect())],
        ));
    }
    done(errors)?;
    Ok(CheckedAsset {
        kind: kind.unwrap_or(AssetKind::System),
        integrity,
        availability,
        national_c,
        national_c_r6,
        secret_ground,
    })
}

/// Whether `person` is today a セキュリティ管理者 of `unit` or a unit above
/// it, or the セキュリティ総括管理者 (who is the manager of ward-wide systems).
pub async fn is_security_manager(
    state: &AppState,
    conn: &mut Conn,
    person: PersonId,
    unit: OrgUnitId,
) -> Result<bool, AppError> {
    let today = date_str(state.clock().today());
    let held = crate::org::store::list_assignments(conn, Some(person), None, Some(&today)).await?;
    let up = crate::org::store::ancestors(conn, unit).await?;
    Ok(held.iter().any(|a| {
        a.role == Role::SecurityChiefManager.code()
            || (a.role == Role::SecurityManager.code()
                && a.org_unit_id.is_some_and(|u| up.contains(&u)))
    }))
}

fn columns<'a>(input: &'a AssetInput, c: &'a CheckedAsset) -> AssetColumns<'a> {
    AssetColumns {
        code: &input.code,
        name: input.name.trim(),
        name_en: input.name_en.trim(),
        kind: c.kind,
        parent_id: input.parent_id,
        owner_org_unit_id: OrgUnitId(input.owner_org_unit_id),
        security_manager_id: input.security_manager_id.map(PersonId),
        confidentiality: &input.confidentiality,
        secret_ground: c.secret_ground.as_deref(),
        integrity: &c.integrity,
        availability: &c.availability,
        national_c: &c.national_c,
        national_c_r6: &c.national_c_r6,
        personal_info: input.personal_info,
        zone: &input.zone,
        external_connection: input.external_connection,
        description: input.description.trim(),
    }
}

async fn require_unit(
    conn: &mut Conn,
    scope: &ActorScope,
    unit: OrgUnitId,
) -> Result<(), AppError> {
    if in_scope(conn, scope, unit).await? {
        Ok(())
    } else {
        Err(AppError::Forbidden("out_of_scope"))
    }
}

pub async fn create_asset(
    state: &AppState,
    actor: &Actor,
    scope: &ActorScope,
    input: AssetInput,
) -> Result<Asset, AppError> {
    let now = state.clock().unix();
    let mut tx = state.db().begin().await?;
    require_unit(&mut tx, scope, OrgUnitId(input.owner_org_unit_id)).await?;
    let scales = store::scales(&mut tx).await?;
    let checked = check_asset(state, &mut tx, &scales, &input, None).await?;
    let id = store::insert_asset(&mut tx, &columns(&input, &checked), now).await?;
    let asset = store::get_asset(&mut tx, &scales, id)
        .await?
        .ok_or(AppError::NotFound("asset"))?;
    record(
        state,
        &mut tx,
        Record::new(
            who(actor),
            "asset.create",
            format!("asset:{}", asset.code),
            "K3.1",
        )
        .from_ip(actor.ip())
        .detail(json!({
            "asset_id": id, "kind": asset.kind.code(), "owner_org_unit_id": asset.owner_org_unit_id,
            "confidentiality": asset.confidentiality, "secret_ground": asset.secret_ground,
            "integrity": asset.integrity, "availability": asset.availability,
            "zone": asset.zone, "personal_info": asset.personal_info,
            "external_connection": asset.external_connection,
            "security_manager_id": asset.security_manager_id,
        })),
    )
    .await?;
    if asset.kind == AssetKind::System {
        crate::ledger::store::restart_pruning(&mut tx).await?;
    }
    tx.commit().await?;
    state.ledger().poke();
    after_commit(state).await;
    Ok(asset)
}

pub async fn update_asset(
    state: &AppState,
    actor: &Actor,
    scope: &ActorScope,
    id: i64,
    input: AssetInput,
) -> Result<Asset, AppError> {
    let now = state.clock().unix();
    let mut tx = state.db().begin().await?;
    let scales = store::scales(&mut tx).await?;
    let before = store::get_asset(&mut tx, &scales, id)
        .await?
        .ok_or(AppError::NotFound("asset"))?;
    if before.retired_at.is_some() {
        return Err(AppError::Conflict("assets.is_retired"));
    }
    require_unit(&mut tx, scope, before.owner_org_unit_id).await?;
    require_unit(&mut tx, scope, OrgUnitId(input.owner_org_unit_id)).await?;
    let checked = check_asset(state, &mut tx, &scales, &input, Some(id)).await?;
    let reclassified = before.confidentiality != input.confidentiality
        || before.secret_ground != checked.secret_ground
        || before.integrity != checked.integrity
        || before.availability != checked.availability
        || before.national_c != checked.national_c
        || before.national_c_r6 != checked.national_c_r6;
    let reason = input
        .classification_reason
        .as_deref()
        .map(str::trim)
        .unwrap_or("");
    if reclassified {
        let mut errors = Vec::new();
        check_text(&mut errors, "classification_reason", reason, 500, true);
        done(errors.into_iter().map(|e| e.with_clause("K3.1")).collect())?;
    }
    store::update_asset(&mut tx, id, &columns(&input, &checked), now).await?;
    let after = store::get_asset(&mut tx, &scales, id)
        .await?
        .ok_or(AppError::NotFound("asset"))?;
    record(
        state,
        &mut tx,
        Record::new(who(actor), "asset.update", format!("asset:{}", after.code), "Y5")
            .from_ip(actor.ip())
            .detail(json!({
                "asset_id": id, "code_before": before.code, "owner_org_unit_id": after.owner_org_unit_id,
                "security_manager_id": after.security_manager_id, "zone": after.zone,
                "personal_info": after.personal_info, "external_connection": after.external_connection,
            })),
    )
    .await?;
    if reclassified {
        record(
            state,
            &mut tx,
            Record::new(who(actor), "asset.reclassify", format!("asset:{}", after.code), "K3.1")
                .from_ip(actor.ip())
                .detail(json!({
                    "asset_id": id, "reason": reason,
                    "from": { "confidentiality": before.confidentiality, "secret_ground": before.secret_ground,
                              "integrity": before.integrity, "availability": before.availability,
                              "national_c": before.national_c, "national_c_r6": before.national_c_r6 },
                    "to": { "confidentiality": after.confidentiality, "secret_ground": after.secret_ground,
                            "integrity": after.integrity, "availability": after.availability,
                            "national_c": after.national_c, "national_c_r6": after.national_c_r6 },
                })),
        )
        .await?;
        if after.kind == AssetKind::System || before.kind == AssetKind::System {
            crate::ledger::store::restart_pruning(&mut tx).await?;
        }
    }
    tx.commit().await?;
    state.ledger().poke();
    after_commit(state).await;
    Ok(after)
}

/// Takes an asset out of the register: its grants and operators end.
pub async fn retire_asset(
    state: &AppState,
    actor: &Actor,
    scope: &ActorScope,
    id: i64,
    reason: &str,
) -> Result<Asset, AppError> {
    let now = state.clock().unix();
    let mut errors = Vec::new();
    check_text(&mut errors, "reason", reason, 500, true);
    done(errors)?;
    let mut tx = state.db().begin().await?;
    let scales = store::scales(&mut tx).await?;
    let asset = store::get_asset(&mut tx, &scales, id)
        .await?
        .ok_or(AppError::NotFound("asset"))?;
    require_unit(&mut tx, scope, asset.owner_org_unit_id).await?;
    if asset.retired_at.is_some() {
        return Err(AppError::Conflict("assets.is_retired"));
    }
    let grants = store::list_grants(&mut tx, Some(id), None, true).await?;
    for g in &grants {
        store::end_grant(&mut tx, g.id, "asset_retired", actor.person_id, now).await?;
    }
    for o in store::operators(&mut tx, Some(id), true).await? {
        store::end_operator(&mut tx, o.id, actor.person_id, now).await?;
    }
    store::retire_asset(&mut tx, id, now).await?;
    record(
        state,
        &mut tx,
        Record::new(who(actor), "asset.retire", format!("asset:{}", asset.code), "Y5")
            .from_ip(actor.ip())
            .detail(json!({ "asset_id": id, "reason": reason.trim(), "grants_ended": grants.iter().map(|g| g.id).collect::<Vec<_>>() })),
    )
    .await?;
    tx.commit().await?;
    state.ledger().poke();
    after_commit(state).await;
    let mut conn = state.db().pool().acquire().await?;
    store::get_asset(&mut conn, &scales, id)
        .await?
        .ok_or(AppError::NotFound("asset"))
}

// ---------------------------------------------------------------------------
// Classification scales

const NATIONAL_C: [&str; 3] = ["3", "2", "1"];
const NATIONAL_C_R6: [&str; 5] = ["3A", "3B", "3C", "2", "1"];
const NATIONAL_IA: [&str; 2] = ["2", "1"];

/// Replaces an axis's levels (K3.1; SPEC §3.4 configurable scales).
pub async fn set_scale(
    state: &AppState,
    actor: &Actor,
    axis: &str,
    levels: Vec<Level>,
) -> Result<Vec<Level>, AppError> {
    if !super::AXES.contains(&axis) {
        return Err(AppError::NotFound("axis"));
    }
    let mut errors = Vec::new();
    if levels.is_empty() || levels.len() > 10 {
        errors.push(FieldError::new("levels", "assets.levels_count", &[]));
    }
    let (allowed, allowed_r6): (&[&str], &[&str]) = if axis == "confidentiality" {
        (&NATIONAL_C, &NATIONAL_C_R6)
    } else {
        (&NATIONAL_IA, &NATIONAL_IA)
    };
    let mut seen = Vec::new();
    for (i, l) in levels.iter().enumerate() {
        if !valid_code(&l.code) {
            errors.push(FieldError::new(
                format!("levels[{i}].code"),
                "field.bad_code",
                &[],
            ));
        } else if seen.contains(&l.code) {
            errors.push(FieldError::new(
                format!("levels[{i}].code"),
                "field.duplicate",
                &[],
            ));
        }
        seen.push(l.code.clone());
        check_text(&mut errors, &format!("levels[{i}].name"), &l.name, 50, true);
        check_text(
            &mut errors,
            &format!("levels[{i}].name_en"),
            &l.name_en,
            50,
            false,
        );
        if l.is_secret && axis != "confidentiality" {
            errors.push(FieldError::new(
                format!("levels[{i}].is_secret"),
                "assets.secret_only_confidentiality",
                &[],
            ));
        }
        for (field, list, ok) in [
            ("national", &l.national, allowed),
            ("national_r6", &l.national_r6, allowed_r6),
        ] {
            if list.is_empty() || list.iter().any(|v| !ok.contains(&v.as_str())) {
                errors.push(FieldError::new(
                    format!("levels[{i}].{field}"),
                    "assets.bad_national",
                    &[("allowed", ok.join(" / "))],
                ));
            }
        }
    }
    if axis == "confidentiality" && !levels.iter().any(|l| !l.is_secret) {
        errors.push(FieldError::new("levels", "assets.need_general_level", &[]));
    }
    done(errors)?;
    let now = state.clock().unix();
    let mut tx = state.db().begin().await?;
    let before = store::scales(&mut tx).await?;
    let mut errors = Vec::new();
    for old in before.axis(axis) {
        let in_use = store::assets_using_level(&mut tx, axis, &old.code).await?;
        if in_use == 0 {
            continue;
        }
        match levels.iter().position(|l| l.code == old.code) {
            None => errors.push(FieldError::new(
                "levels",
                "assets.level_in_use",
                &[("code", old.code.clone()), ("count", in_use.to_string())],
            )),
            Some(i) if levels[i].is_secret != old.is_secret => errors.push(FieldError::new(
                format!("levels[{i}].is_secret"),
                "assets.secrecy_of_level_in_use",
                &[("code", old.code.clone()), ("count", in_use.to_string())],
            )),
            Some(_) => {}
        }
    }
    done(errors)?;
    store::replace_levels(&mut tx, axis, &levels).await?;
    record(
        state,
        &mut tx,
        Record::new(
            who(actor),
            "classification.scale.set",
            format!("scale:{axis}"),
            "K3.1",
        )
        .from_ip(actor.ip())
        .detail(json!({ "axis": axis, "levels": levels, "at": now })),
    )
    .await?;
    tx.commit().await?;
    state.ledger().poke();
    after_commit(state).await;
    Ok(levels)
}

/// Registers a managed area (管理区域) grant conditions can name.
pub async fn create_area(
    state: &AppState,
    actor: &Actor,
    code: &str,
    name: &str,
) -> Result<super::ManagedArea, AppError> {
    let mut errors = Vec::new();
    if !valid_code(code) {
        errors.push(FieldError::new("code", "field.bad_code", &[]));
    }
    check_text(&mut errors, "name", name, 100, true);
    let mut tx = state.db().begin().await?;
    if store::areas(&mut tx).await?.iter().any(|a| a.code == code) {
        errors.push(FieldError::new("code", "field.duplicate", &[]));
    }
    done(errors)?;
    let id = store::insert_area(&mut tx, code, name.trim(), state.clock().unix()).await?;
    record(
        state,
        &mut tx,
        Record::new(who(actor), "area.create", format!("area:{code}"), "K5.1")
            .from_ip(actor.ip())
            .detail(json!({ "area_id": id, "name": name.trim() })),
    )
    .await?;
    tx.commit().await?;
    state.ledger().poke();
    after_commit(state).await;
    Ok(super::ManagedArea {
        id,
        code: code.into(),
        name: name.trim().into(),
    })
}

// ---------------------------------------------------------------------------
// Operators (K18)

/// The one who decides an asset's access and names its operators: its
/// security manager (K3.2.1, K18). Nobody else, whatever their role.
fn require_manager_of(actor: &Actor, asset: &Asset) -> Result<(), AppError> {
    match (actor.person_id, asset.security_manager_id) {
        (Some(me), Some(m)) if me == m => Ok(()),
        _ => Err(AppError::Forbidden("assets.not_the_security_manager")),
    }
}

/// Admin rights count of an asset: its security manager and its operators.
pub fn admin_count(asset: &Asset, operators: usize) -> usize {
    usize::from(asset.security_manager_id.is_some()) + operators
}

pub async fn name_operator(
    state: &AppState,
    actor: &Actor,
    asset_id: i64,
    person: i64,
    reason: &str,
) -> Result<super::Operator, AppError> {
    let now = state.clock().unix();
    let today = date_str(state.clock().today());
    let mut tx = state.db().begin().await?;
    let scales = store::scales(&mut tx).await?;
    let asset = store::get_asset(&mut tx, &scales, asset_id)
        .await?
        .filter(|a| a.retired_at.is_none())
        .ok_or(AppError::NotFound("asset"))?;
    require_manager_of(actor, &asset)?;
    let mut errors = Vec::new();
    check_text(&mut errors, "reason", reason, 500, true);
    let held =
        crate::org::store::list_assignments(&mut tx, Some(PersonId(person)), None, Some(&today))
            .await?;
    if !held.iter().any(|a| a.role == Role::Operator.code()) {
        errors.push(FieldError::new("person_id", "assets.not_an_operator", &[]).with_clause("K18"));
    }
    let current = store::operators(&mut tx, Some(asset_id), true).await?;
    if current.iter().any(|o| o.person_id.0 == person) {
        errors.push(FieldError::new("person_id", "assets.already_operator", &[]));
    }
    if asset.security_manager_id == Some(PersonId(person)) {
        errors.push(FieldError::new(
            "person_id",
            "assets.manager_is_not_operator",
            &[],
        ));
    }
    done(errors)?;
    let id = store::insert_operator(
        &mut tx,
        asset_id,
        PersonId(person),
        actor.person_id,
        reason.trim(),
        now,
    )
    .await?;
    let limit = crate::settings::get(&mut tx, "access.admin_limit_per_system").await?;
    let count = admin_count(&asset, current.len() + 1);
    record(
        state,
        &mut tx,
        Record::new(
            who(actor),
            "asset.operator.name",
            format!("asset:{}", asset.code),
            "K18",
        )
        .from_ip(actor.ip())
        .detail(
            json!({ "operator_id": id, "person_id": person, "reason": reason.trim(),
                            "admins": count, "limit": limit, "over_limit": count as i64 > limit }),
        ),
    )
    .await?;
    tx.commit().await?;
    state.ledger().poke();
    after_commit(state).await;
    let mut conn = state.db().pool().acquire().await?;
    store::get_operator(&mut conn, id)
        .await?
        .ok_or(AppError::NotFound("operator"))
}

pub async fn end_operator(
    state: &AppState,
    actor: &Actor,
    asset_id: i64,
    operator_id: i64,
) -> Result<(), AppError> {
    let now = state.clock().unix();
    let mut tx = state.db().begin().await?;
    let scales = store::scales(&mut tx).await?;
    let asset = store::get_asset(&mut tx, &scales, asset_id)
        .await?
        .ok_or(AppError::NotFound("asset"))?;
    require_manager_of(actor, &asset)?;
    let op = store::get_operator(&mut tx, operator_id)
        .await?
        .filter(|o| o.asset_id == asset_id)
        .ok_or(AppError::NotFound("operator"))?;
    if op.ended_at.is_some() {
        return Err(AppError::Conflict("assets.operator_ended"));
    }
    store::end_operator(&mut tx, operator_id, actor.person_id, now).await?;
    record(
        state,
        &mut tx,
        Record::new(
            who(actor),
            "asset.operator.end",
            format!("asset:{}", asset.code),
            "K18",
        )
        .from_ip(actor.ip())
        .detail(json!({ "operator_id": operator_id, "person_id": op.person_id })),
    )
    .await?;
    tx.commit().await?;
    state.ledger().poke();
    after_commit(state).await;
    Ok(())
}

// ---------------------------------------------------------------------------
// Requests and grants (K3.2.1, K17.2)

/// A request for access as entered.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct RequestInput {
    pub asset_id: i64,
    /// Who the access is for; default: the requester.
    #[serde(default)]
    pub subject: Option<SubjectRef>,
    /// Some of `read`, `write`, `export` (administer is never granted: K18).
    pub actions: Vec<String>,
    /// RFC 3339, or a date (`YYYY-MM-DD`, 和暦) meaning that day's start in JST.
    #[serde(default)]
    pub valid_from: Option<String>,
    /// RFC 3339 (exclusive), or a date meaning through the end of that day.
    #[serde(default)]
    pub valid_until: Option<String>,
    #[serde(default)]
    pub conditions: ConditionsDoc,
    /// Why an org unit rather than named persons (K17.2); required for a unit.
    #[serde(default)]
    pub unit_reason: Option<String>,
    /// What the access is for.
    pub purpose: String,
}

/// Parses a moment: RFC 3339, or a date in JST (`end`: the day after).
pub fn parse_moment(s: &str, end: bool) -> Option<i64> {
    let s = s.trim();
    if let Ok(t) = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339) {
        return Some(t.unix_timestamp());
    }
    let d = mamori_policy::wareki::parse_date(s)?;
    let d = if end { d.next_day()? } else { d };
    Some(d.midnight().assume_offset(JST).unix_timestamp())
}

async fn check_terms(
    state: &AppState,
    conn: &mut Conn,
    actor: &Actor,
    input: &RequestInput,
    errors: &mut Vec<FieldError>,
) -> Result<Option<(Terms, Asset)>, AppError> {
    let scales = store::scales(conn).await?;
    let asset = store::get_asset(conn, &scales, input.asset_id)
        .await?
        .filter(|a| a.retired_at.is_none());
    if asset.is_none() {
        errors.push(FieldError::new("asset_id", "assets.no_such_asset", &[]));
    }
    let subject = match (input.subject, actor.person_id) {
        (Some(s), _) => s,
        (None, Some(me)) => SubjectRef::Person(me.0),
        (None, None) => {
            errors.push(FieldError::new("subject", "field.required", &[]));
            SubjectRef::Person(0)
        }
    };
    let mut unit_reason = None;
    match subject {
        SubjectRef::Person(p) => match crate::people::store::get_person(conn, PersonId(p)).await? {
            Some(person) if person.status != "retired" => {}
            _ => errors.push(FieldError::new("subject", "assets.no_such_person", &[])),
        },
        SubjectRef::OrgUnit(u) => {
            if crate::org::store::get_unit(conn, OrgUnitId(u))
                .await?
                .is_none()
            {
                errors.push(FieldError::new("subject", "org.no_such_unit", &[]));
            }
            let reason = input.unit_reason.as_deref().map(str::trim).unwrap_or("");
            if reason.is_empty() {
                errors.push(
                    FieldError::new("unit_reason", "assets.unit_reason_required", &[])
                        .with_clause("K17.2"),
                );
            } else {
                check_text(errors, "unit_reason", reason, 500, true);
                unit_reason = Some(reason.to_string());
            }
        }
    }
    let mut actions: Vec<String> = Vec::new();
    if input.actions.is_empty() {
        errors.push(FieldError::new("actions", "field.required", &[]));
    }
    for (i, a) in input.actions.iter().enumerate() {
        if a == "administer" {
            errors.push(
                FieldError::new(
                    format!("actions[{i}]"),
                    "assets.administer_not_grantable",
                    &[],
                )
                .with_clause("K18"),
            );
        } else if !super::GRANTABLE.contains(&a.as_str()) {
            errors.push(FieldError::new(
                format!("actions[{i}]"),
                "assets.bad_action",
                &[("value", a.chars().take(20).collect())],
            ));
        } else if !actions.contains(a) {
            actions.push(a.clone());
        }
    }
    let moment =
        |field: &'static str, v: &Option<String>, end: bool, errors: &mut Vec<FieldError>| {
            let v = v.as_deref().map(str::trim).filter(|s| !s.is_empty())?;
            let t = parse_moment(v, end);
            if t.is_none() {
                errors.push(FieldError::new(
                    field,
                    "assets.bad_moment",
                    &[("value", v.chars().take(40).collect())],
                ));
            }
            t
        };
    let valid_from = moment("valid_from", &input.valid_from, false, errors);
    let valid_until = moment("valid_until", &input.valid_until, true, errors);
    if let (Some(f), Some(u)) = (valid_from, valid_until) {
        if u <= f {
            errors.push(FieldError::new(
                "valid_until",
                "field.end_before_start",
                &[],
            ));
        }
    }
    if valid_until.is_some_and(|u| u <= state.clock().unix()) {
        errors.push(FieldError::new("valid_until", "assets.already_over", &[]));
    }
    let areas: HashMap<String, mamori_policy::access::AreaId> = store::areas(conn)
        .await?
        .into_iter()
        .map(|a| (a.code, mamori_policy::access::AreaId(a.id)))
        .collect();
    input.conditions.check("conditions", &areas, errors);
    check_text(errors, "purpose", &input.purpose, 500, true);
    Ok(asset.map(|asset| {
        (
            Terms {
                asset_id: asset.id,
                subject,
                actions,
                valid_from,
                valid_until,
                conditions: input.conditions.clone(),
                unit_reason,
            },
            asset,
        )
    }))
}

/// Files a request for access. Anyone may ask for themselves; asking for
/// someone else (or a unit) needs that person or unit in the actor's scope.
pub async fn request_access(
    state: &AppState,
    actor: &Actor,
    scope: &ActorScope,
    input: RequestInput,
) -> Result<AccessRequest, AppError> {
    let now = state.clock().unix();
    let mut tx = state.db().begin().await?;
    let mut errors = Vec::new();
    let checked = check_terms(state, &mut tx, actor, &input, &mut errors).await?;
    done(errors)?;
    let (terms, asset) = checked.ok_or(AppError::NotFound("asset"))?;
    let for_self =
        matches!(terms.subject, SubjectRef::Person(p) if Some(PersonId(p)) == actor.person_id);
    if !for_self {
        let unit = match terms.subject {
            SubjectRef::Person(p) => crate::people::store::get_person(&mut tx, PersonId(p))
                .await?
                .and_then(|p| p.org_unit_id),
            SubjectRef::OrgUnit(u) => Some(OrgUnitId(u)),
        };
        match unit {
            Some(u) if in_scope(&mut tx, scope, u).await? => {}
            _ => return Err(AppError::Forbidden("out_of_scope")),
        }
    }
    let id =
        store::insert_request(&mut tx, &terms, input.purpose.trim(), actor.person_id, now).await?;
    record(
        state,
        &mut tx,
        Record::new(who(actor), "access.request", format!("asset:{}", asset.code), "K3.2.1")
            .from_ip(actor.ip())
            .detail(json!({ "request_id": id, "subject": terms.subject.record_ref(), "actions": terms.actions,
                            "valid_from": terms.valid_from, "valid_until": terms.valid_until,
                            "conditions": terms.conditions, "purpose": input.purpose.trim() })),
    )
    .await?;
    tx.commit().await?;
    state.ledger().poke();
    let mut conn = state.db().pool().acquire().await?;
    store::get_request(&mut conn, id)
        .await?
        .ok_or(AppError::NotFound("request"))
}

/// The decision on a request, by the asset's security manager. Approval
/// creates the grant in the same transaction as the decision and both records.
pub async fn decide_request(
    state: &AppState,
    actor: &Actor,
    id: i64,
    approve: bool,
    reason: &str,
) -> Result<AccessRequest, AppError> {
    let now = state.clock().unix();
    let mut tx = state.db().begin().await?;
    let req = store::get_request(&mut tx, id)
        .await?
        .ok_or(AppError::NotFound("request"))?;
    let scales = store::scales(&mut tx).await?;
    let asset = store::get_asset(&mut tx, &scales, req.asset_id)
        .await?
        .ok_or(AppError::NotFound("asset"))?;
    require_manager_of(actor, &asset)?;
    if req.status != "pending" {
        return Err(AppError::Conflict("assets.request_decided"));
    }
    let reason = reason.trim();
    let mut errors = Vec::new();
    check_text(&mut errors, "reason", reason, 500, !approve);
    done(errors)?;
    let self_approval =
        matches!(req.subject, SubjectRef::Person(p) if Some(PersonId(p)) == actor.person_id);
    let grant = if approve {
        // The terms are checked again: the subject may have left since.
        let input = RequestInput {
            asset_id: req.asset_id,
            subject: Some(req.subject),
            actions: req.actions.clone(),
            valid_from: req.valid_from.map(|t| rfc3339(t)),
            valid_until: req.valid_until.map(|t| rfc3339(t)),
            conditions: req.conditions.clone(),
            unit_reason: req.unit_reason.clone(),
            purpose: req.purpose.clone(),
        };
        let mut errors = Vec::new();
        let checked = check_terms(state, &mut tx, actor, &input, &mut errors).await?;
        done(errors)?;
        let (terms, _) = checked.ok_or(AppError::NotFound("asset"))?;
        let gid = store::insert_grant(&mut tx, &terms, Some(id), actor.person_id, now).await?;
        Some(gid)
    } else {
        None
    };
    let status = if approve { "approved" } else { "rejected" };
    if !store::decide_request(&mut tx, id, status, actor.person_id, reason, grant, now).await? {
        return Err(AppError::Conflict("assets.request_decided"));
    }
    record(
        state,
        &mut tx,
        Record::new(who(actor), if approve { "access.request.approve" } else { "access.request.reject" },
                    format!("asset:{}", asset.code), "K3.2.1")
            .from_ip(actor.ip())
            .detail(json!({ "request_id": id, "reason": reason, "grant_id": grant, "self_approval": self_approval })),
    )
    .await?;
    if let Some(gid) = grant {
        record(
            state,
            &mut tx,
            Record::new(
                who(actor),
                "access.grant",
                format!("asset:{}", asset.code),
                "K3.2.1",
            )
            .from_ip(actor.ip())
            .detail(
                json!({ "grant_id": gid, "request_id": id, "subject": req.subject.record_ref(),
                                "actions": req.actions, "valid_from": req.valid_from,
                                "valid_until": req.valid_until, "conditions": req.conditions,
                                "unit_reason": req.unit_reason }),
            ),
        )
        .await?;
    }
    tx.commit().await?;
    state.ledger().poke();
    after_commit(state).await;
    let mut conn = state.db().pool().acquire().await?;
    store::get_request(&mut conn, id)
        .await?
        .ok_or(AppError::NotFound("request"))
}

fn rfc3339(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// The requester takes back a pending request.
pub async fn withdraw_request(
    state: &AppState,
    actor: &Actor,
    id: i64,
) -> Result<AccessRequest, AppError> {
    let now = state.clock().unix();
    let mut tx = state.db().begin().await?;
    let req = store::get_request(&mut tx, id)
        .await?
        .ok_or(AppError::NotFound("request"))?;
    if req.requested_by != actor.person_id || actor.person_id.is_none() {
        return Err(AppError::Forbidden("assets.not_your_request"));
    }
    if !store::decide_request(&mut tx, id, "withdrawn", actor.person_id, "", None, now).await? {
        return Err(AppError::Conflict("assets.request_decided"));
    }
    record(
        state,
        &mut tx,
        Record::new(
            who(actor),
            "access.request.withdraw",
            format!("access_request:{id}"),
            "K3.2.1",
        )
        .from_ip(actor.ip()),
    )
    .await?;
    tx.commit().await?;
    state.ledger().poke();
    let mut conn = state.db().pool().acquire().await?;
    store::get_request(&mut conn, id)
        .await?
        .ok_or(AppError::NotFound("request"))
}

/// Ends a grant before its time (the asset's security manager).
pub async fn revoke_grant(
    state: &AppState,
    actor: &Actor,
    id: i64,
    reason: &str,
) -> Result<GrantRow, AppError> {
    let now = state.clock().unix();
    let mut errors = Vec::new();
    check_text(&mut errors, "reason", reason, 500, true);
    done(errors)?;
    let mut tx = state.db().begin().await?;
    let g = store::get_grant(&mut tx, id)
        .await?
        .ok_or(AppError::NotFound("grant"))?;
    let scales = store::scales(&mut tx).await?;
    let asset = store::get_asset(&mut tx, &scales, g.asset_id)
        .await?
        .ok_or(AppError::NotFound("asset"))?;
    require_manager_of(actor, &asset)?;
    if !store::end_grant(&mut tx, id, "revoked", actor.person_id, now).await? {
        return Err(AppError::Conflict("assets.grant_ended"));
    }
    record(
        state,
        &mut tx,
        Record::new(who(actor), "access.grant.end", format!("asset:{}", asset.code), "K3.2.1")
            .from_ip(actor.ip())
            .detail(json!({ "grant_id": id, "reason": "revoked", "note": reason.trim(), "subject": g.subject.record_ref() })),
    )
    .await?;
    tx.commit().await?;
    state.ledger().poke();
    after_commit(state).await;
    let mut conn = state.db().pool().acquire().await?;
    store::get_grant(&mut conn, id)
        .await?
        .ok_or(AppError::NotFound("grant"))
}

/// K17.3: a transfer or retirement ends the person's own grants and
/// operator appointments (called inside the personnel event's transaction).
pub async fn end_post(
    conn: &mut Conn,
    state: &AppState,
    actor: &Who,
    person: PersonId,
    why: &str,
) -> Result<(), AppError> {
    let now = state.clock().unix();
    for g in store::list_grants(conn, None, Some(SubjectRef::Person(person.0)), true).await? {
        store::end_grant(conn, g.id, why, None, now).await?;
        let rec = Record::new(
            actor.clone(),
            "access.grant.end",
            person.record_ref(),
            "K17.3",
        )
        .detail(json!({ "grant_id": g.id, "asset_id": g.asset_id, "reason": why }));
        records::append(conn, state.clock().unix_micros(), &rec).await?;
    }
    for (op, asset) in store::operator_ids_of_person(conn, person).await? {
        store::end_operator(conn, op, None, now).await?;
        let rec = Record::new(
            actor.clone(),
            "asset.operator.end",
            person.record_ref(),
            "K17.3",
        )
        .detail(json!({ "operator_id": op, "asset_id": asset, "reason": why }));
        records::append(conn, state.clock().unix_micros(), &rec).await?;
    }
    Ok(())
}

/// Marks grants whose validity is over as ended (the engine already stops
/// allowing them at the second they lapse); returns how many.
pub async fn end_lapsed(state: &AppState) -> Result<usize, AppError> {
    let now = state.clock().unix();
    let mut tx = state.db().begin().await?;
    let lapsed = store::lapsed_grants(&mut tx, now).await?;
    for g in &lapsed {
        store::end_grant(&mut tx, g.id, "expired", None, now).await?;
        let rec = Record::new(Who::Scheduler, "access.grant.end", format!("grant:{}", g.id), "K17.2")
            .detail(json!({ "grant_id": g.id, "asset_id": g.asset_id, "reason": "expired", "valid_until": g.valid_until }));
        records::append(&mut tx, state.clock().unix_micros(), &rec).await?;
    }
    tx.commit().await?;
    if !lapsed.is_empty() {
        state.ledger().poke();
        after_commit(state).await;
    }
    Ok(lapsed.len())
}

// ---------------------------------------------------------------------------
// Reviews (棚卸し)

pub async fn start_review(
    state: &AppState,
    actor: &Actor,
    asset_id: i64,
) -> Result<Review, AppError> {
    let now = state.clock().unix();
    let mut tx = state.db().begin().await?;
    let scales = store::scales(&mut tx).await?;
    let asset = store::get_asset(&mut tx, &scales, asset_id)
        .await?
        .filter(|a| a.retired_at.is_none())
        .ok_or(AppError::NotFound("asset"))?;
    require_manager_of(actor, &asset)?;
    if store::open_review_of(&mut tx, asset_id).await?.is_some() {
        return Err(AppError::Conflict("assets.review_already_open"));
    }
    let grants: Vec<i64> = store::list_grants(&mut tx, Some(asset_id), None, true)
        .await?
        .iter()
        .map(|g| g.id)
        .collect();
    let id = store::insert_review(&mut tx, asset_id, actor.person_id, &grants, now).await?;
    record(
        state,
        &mut tx,
        Record::new(
            who(actor),
            "access.review.start",
            format!("asset:{}", asset.code),
            "K3.2.1",
        )
        .from_ip(actor.ip())
        .detail(json!({ "review_id": id, "grants": grants })),
    )
    .await?;
    tx.commit().await?;
    state.ledger().poke();
    let mut conn = state.db().pool().acquire().await?;
    store::get_review(&mut conn, id)
        .await?
        .ok_or(AppError::NotFound("review"))
}

/// One decision of a review: `confirm` or `remove` a grant.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewDecision {
    pub grant_id: i64,
    /// `confirm` or `remove`.
    pub decision: String,
    #[serde(default)]
    pub note: String,
}

async fn open_review(
    conn: &mut Conn,
    actor: &Actor,
    review_id: i64,
) -> Result<(Review, Asset), AppError> {
    let review = store::get_review(conn, review_id)
        .await?
        .ok_or(AppError::NotFound("review"))?;
    let scales = store::scales(conn).await?;
    let asset = store::get_asset(conn, &scales, review.asset_id)
        .await?
        .ok_or(AppError::NotFound("asset"))?;
    require_manager_of(actor, &asset)?;
    if review.completed_at.is_some() {
        return Err(AppError::Conflict("assets.review_closed"));
    }
    Ok((review, asset))
}

pub async fn decide_review_item(
    state: &AppState,
    actor: &Actor,
    review_id: i64,
    d: ReviewDecision,
) -> Result<Review, AppError> {
    let now = state.clock().unix();
    let mut tx = state.db().begin().await?;
    let (review, _) = open_review(&mut tx, actor, review_id).await?;
    let mut errors = Vec::new();
    if !review.items.iter().any(|i| i.grant_id == d.grant_id) {
        errors.push(FieldError::new("grant_id", "assets.not_in_review", &[]));
    }
    if d.decision != "confirm" && d.decision != "remove" {
        errors.push(FieldError::new(
            "decision",
            "assets.bad_review_decision",
            &[],
        ));
    }
    check_text(&mut errors, "note", &d.note, 500, d.decision == "remove");
    done(errors)?;
    store::decide_item(
        &mut tx,
        review_id,
        d.grant_id,
        &d.decision,
        d.note.trim(),
        now,
    )
    .await?;
    tx.commit().await?;
    let mut conn = state.db().pool().acquire().await?;
    store::get_review(&mut conn, review_id)
        .await?
        .ok_or(AppError::NotFound("review"))
}

/// Closes a review whose every item is decided: removed grants end, and
/// one record holds the whole review as evidence.
pub async fn complete_review(
    state: &AppState,
    actor: &Actor,
    review_id: i64,
) -> Result<Review, AppError> {
    let now = state.clock().unix();
    let mut tx = state.db().begin().await?;
    let (review, asset) = open_review(&mut tx, actor, review_id).await?;
    let undecided: Vec<i64> = review
        .items
        .iter()
        .filter(|i| i.decision.is_none())
        .map(|i| i.grant_id)
        .collect();
    if !undecided.is_empty() {
        return Err(AppError::invalid(
            "items",
            "assets.review_undecided",
            &[(
                "grants",
                undecided
                    .iter()
                    .map(|g| g.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            )],
        ));
    }
    let mut removed = Vec::new();
    for i in review
        .items
        .iter()
        .filter(|i| i.decision.as_deref() == Some("remove"))
    {
        if store::end_grant(&mut tx, i.grant_id, "review", actor.person_id, now).await? {
            removed.push(i.grant_id);
        }
    }
    let items: Vec<_> = review
        .items
        .iter()
        .map(|i| json!({ "grant_id": i.grant_id, "decision": i.decision, "note": i.note }))
        .collect();
    let index = record(
        state,
        &mut tx,
        Record::new(
            who(actor),
            "access.review.complete",
            format!("asset:{}", asset.code),
            "K3.2.1",
        )
        .from_ip(actor.ip())
        .detail(json!({ "review_id": review_id, "items": items, "removed": removed })),
    )
    .await?;
    store::complete_review(&mut tx, review_id, actor.person_id, index, now).await?;
    tx.commit().await?;
    state.ledger().poke();
    after_commit(state).await;
    let mut conn = state.db().pool().acquire().await?;
    store::get_review(&mut conn, review_id)
        .await?
        .ok_or(AppError::NotFound("review"))
}

/// Flags of an asset for its manager's page and the compliance checks.
#[derive(Debug, Clone, Default, serde::Serialize, utoipa::ToSchema)]
pub struct AssetFlags {
    /// Admin rights holders (manager + operators), K18.
    pub admins: i64,
    /// The ward's limit (setting `access.admin_limit_per_system`).
    pub admin_limit: i64,
    pub over_admin_limit: bool,
    /// When access was last reviewed to the end.
    pub last_review: Option<i64>,
    /// Review due (setting `access.review_interval_days`) and not done.
    pub review_overdue: bool,
    /// No security manager named.
    pub no_manager: bool,
}

/// Flags for every live asset, by id.
pub async fn flags(
    state: &AppState,
    conn: &mut Conn,
    assets: &[Asset],
) -> Result<HashMap<i64, AssetFlags>, AppError> {
    let now = state.clock().unix();
    let limit = crate::settings::get(conn, "access.admin_limit_per_system").await?;
    let interval = crate::settings::get(conn, "access.review_interval_days").await? * 86_400;
    // One asset's page reads only that asset's operators and grants, not
    // the whole ward's.
    let only = match assets {
        [one] => Some(one.id),
        _ => None,
    };
    let mut ops: HashMap<i64, i64> = HashMap::new();
    for o in store::operators(conn, only, true).await? {
        *ops.entry(o.asset_id).or_default() += 1;
    }
    let mut with_grants: HashMap<i64, i64> = HashMap::new();
    for g in store::list_grants(conn, only, None, true).await? {
        *with_grants.entry(g.asset_id).or_default() += 1;
    }
    let last = store::last_reviews(conn).await?;
    Ok(assets
        .iter()
        .filter(|a| a.retired_at.is_none())
        .map(|a| {
            let admins = admin_count(a, ops.get(&a.id).copied().unwrap_or(0) as usize) as i64;
            let last_review = last.get(&a.id).copied();
            let needs_review = a.secret || with_grants.contains_key(&a.id);
            let since = last_review.unwrap_or(a.created_at);
            (
                a.id,
                AssetFlags {
                    admins,
                    admin_limit: limit,
                    over_admin_limit: admins > limit,
                    last_review,
                    review_overdue: needs_review && now - since > interval,
                    no_manager: a.security_manager_id.is_none(),
                },
            )
        })
        .collect())
}
