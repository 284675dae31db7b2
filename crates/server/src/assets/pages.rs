//! Pages for the asset register and access rights (SPEC §3.4): the list
//! with its flags, one asset (classification with its reason, operators
//! and the K18 count, grants, requests to decide, who can access, reviews),
//! a review, and "my access". Forms re-render with what was typed and
//! every error next to its field.

use super::conditions::{ConditionsDoc, WindowDoc};
use super::service::{self, AssetInput, RequestInput, ReviewDecision};
use super::{store, Asset, SubjectRef};
use crate::app::{AppState, Routes};
use crate::auth::perm::{DecideAccess, ManageAssets, RequestAccess, ViewAccess, ViewSystems};
use crate::auth::{Actor, ActorScope, Require};
use crate::db::Conn;
use crate::ids::OrgUnitId;
use crate::org::pages::{form_errors, parse_id, today, unit_options, NoticeQuery};
use crate::org::service::in_scope;
use crate::web::csrf::CsrfForm;
use crate::web::error::{AppError, FieldError, PageError};
use crate::web::templates::{render, Chrome};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use mamori_policy::permission::Action;
use mamori_policy::Role;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sqlx::Row;
use std::collections::HashMap;

pub fn routes(r: Routes) -> Routes {
    r.get("/assets", list_page)
        .post("/assets", create)
        .get("/assets/{id}", asset_page)
        .post("/assets/{id}", update)
        .post("/assets/{id}/retire", retire)
        .post("/assets/{id}/operators", name_operator)
        .post("/assets/{id}/operators/{op}/end", end_operator)
        .post("/assets/{id}/requests", request)
        .post("/assets/{id}/reviews", start_review)
        .post("/access-requests/{id}/decision", decide)
        .post("/access-requests/{id}/withdraw", withdraw)
        .post("/grants/{id}/end", end_grant)
        .get("/access-reviews/{id}", review_page)
        .post("/access-reviews/{id}/items", review_item)
        .post("/access-reviews/{id}/complete", complete_review)
        .get("/access", my_access)
}

/// A form that came back with errors: which one, what was typed, why.
struct Failed<'a> {
    form: &'a str,
    values: Value,
    errors: &'a [FieldError],
}

fn failed<'a>(
    form: &'a str,
    values: impl Serialize,
    errors: &'a [FieldError],
) -> Option<Failed<'a>> {
    Some(Failed {
        form,
        values: serde_json::to_value(values).unwrap_or(Value::Null),
        errors,
    })
}

/// Names and numbers of everyone, for display.
async fn names(conn: &mut Conn) -> Result<HashMap<i64, (String, String)>, AppError> {
    let rows = sqlx::query("SELECT id, name_kanji, employee_number FROM persons")
        .fetch_all(conn)
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, (r.try_get(1)?, r.try_get(2)?))))
        .collect::<Result<_, sqlx::Error>>()
        .map_err(AppError::from)
}

fn person_label(names: &HashMap<i64, (String, String)>, id: Option<i64>) -> String {
    match id.and_then(|i| names.get(&i)) {
        Some((n, num)) => format!("{n}（{num}）"),
        None => id.map(|i| format!("#{i}")).unwrap_or_else(|| "—".into()),
    }
}

fn zone_key(zone: &str) -> String {
    format!("assets.zone.{zone}")
}

// ---------------------------------------------------------------------------
// The asset form

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
struct AssetForm {
    #[serde(default)]
    code: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    name_en: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    parent_id: String,
    #[serde(default)]
    owner_org_unit_id: String,
    #[serde(default)]
    security_manager_id: String,
    #[serde(default)]
    confidentiality: String,
    #[serde(default)]
    secret_ground: String,
    #[serde(default)]
    integrity: String,
    #[serde(default)]
    availability: String,
    #[serde(default)]
    national_c: String,
    #[serde(default)]
    national_c_r6: String,
    #[serde(default)]
    personal_info: Option<String>,
    #[serde(default)]
    zone: String,
    #[serde(default)]
    external_connection: Option<String>,
    #[serde(default)]
    description: String,
    #[serde(default)]
    classification_reason: String,
}

impl AssetForm {
    fn of(a: &Asset) -> AssetForm {
        AssetForm {
            code: a.code.clone(),
            name: a.name.clone(),
            name_en: a.name_en.clone(),
            kind: a.kind.code().into(),
            parent_id: a.parent_id.map(|p| p.to_string()).unwrap_or_default(),
            owner_org_unit_id: a.owner_org_unit_id.0.to_string(),
            security_manager_id: a
                .security_manager_id
                .map(|p| p.0.to_string())
                .unwrap_or_default(),
            confidentiality: a.confidentiality.clone(),
            secret_ground: a.secret_ground.clone().unwrap_or_default(),
            integrity: a.integrity.clone(),
            availability: a.availability.clone(),
            national_c: a.national_c.clone(),
            national_c_r6: a.national_c_r6.clone(),
            personal_info: a.personal_info.then(|| "on".into()),
            zone: a.zone.clone(),
            external_connection: a.external_connection.then(|| "on".into()),
            description: a.description.clone(),
            classification_reason: String::new(),
        }
    }

    /// The input, and errors for ids that are not numbers.
    fn to_input(&self) -> (AssetInput, Vec<FieldError>) {
        let mut errors = Vec::new();
        let mut id = |field: &str, s: &str, required: bool| -> Option<i64> {
            if s.trim().is_empty() {
                if required {
                    errors.push(FieldError::new(field, "field.required", &[]));
                }
                return None;
            }
            let v = parse_id(s);
            if v.is_none() {
                errors.push(FieldError::new(field, "field.required", &[]));
            }
            v
        };
        let parent_id = id("parent_id", &self.parent_id, false);
        let owner = id("owner_org_unit_id", &self.owner_org_unit_id, true);
        let manager = id("security_manager_id", &self.security_manager_id, false);
        let opt = |s: &str| (!s.trim().is_empty()).then(|| s.trim().to_string());
        (
            AssetInput {
                code: self.code.trim().into(),
                name: self.name.clone(),
                name_en: self.name_en.clone(),
                kind: self.kind.clone(),
                parent_id,
                owner_org_unit_id: owner.unwrap_or(0),
                security_manager_id: manager,
                confidentiality: self.confidentiality.clone(),
                secret_ground: opt(&self.secret_ground),
                integrity: opt(&self.integrity),
                availability: opt(&self.availability),
                national_c: opt(&self.national_c),
                national_c_r6: opt(&self.national_c_r6),
                personal_info: self.personal_info.is_some(),
                zone: self.zone.clone(),
                external_connection: self.external_connection.is_some(),
                description: self.description.clone(),
                classification_reason: opt(&self.classification_reason),
            },
            errors,
        )
    }
}

const ASSET_FIELDS: [&str; 18] = [
    "code",
    "name",
    "name_en",
    "kind",
    "parent_id",
    "owner_org_unit_id",
    "security_manager_id",
    "confidentiality",
    "secret_ground",
    "integrity",
    "availability",
    "national_c",
    "national_c_r6",
    "personal_info",
    "zone",
    "external_connection",
    "description",
    "classification_reason",
];

/// Choices the asset form offers.
async fn form_choices(
    state: &AppState,
    conn: &mut Conn,
    scales: &store::Scales,
) -> Result<Value, AppError> {
    let today = today(state);
    let units = crate::org::store::list_units(conn).await?;
    let names = names(conn).await?;
    let held = crate::org::store::list_assignments(conn, None, None, Some(&today)).await?;
    let mut managers: Vec<Value> = held
        .iter()
        .filter(|a| {
            a.role == Role::SecurityManager.code() || a.role == Role::SecurityChiefManager.code()
        })
        .map(|a| json!({ "id": a.person_id.0, "label": person_label(&names, Some(a.person_id.0)) }))
        .collect();
    managers.dedup();
    let mut operators: Vec<Value> = held
        .iter()
        .filter(|a| a.role == Role::Operator.code())
        .map(|a| json!({ "id": a.person_id.0, "label": person_label(&names, Some(a.person_id.0)) }))
        .collect();
    operators.dedup();
    let systems: Vec<Value> = store::list_assets(conn, scales, false)
        .await?
        .into_iter()
        .filter(|a| a.kind == super::AssetKind::System)
        .map(|a| json!({ "id": a.id, "label": format!("{}（{}）", a.name, a.code) }))
        .collect();
    let level = |axis: &str| -> Vec<Value> {
        scales
            .axis(axis)
            .into_iter()
            .map(|l| json!({ "code": l.code, "name": l.name, "name_en": l.name_en, "is_secret": l.is_secret,
                             "national": l.national, "national_r6": l.national_r6 }))
            .collect()
    };
    Ok(json!({
        "units": unit_options(&units, &today, |_| true),
        "managers": managers,
        "operators": operators,
        "systems": systems,
        "confidentiality": level("confidentiality"),
        "integrity": level("integrity"),
        "availability": level("availability"),
        "zones": super::ZONES,
        "grounds": super::SECRET_GROUNDS,
    }))
}

// ---------------------------------------------------------------------------
// The list

async fn list_page(
    State(state): State<AppState>,
    req: Require<ViewSystems>,
    Query(q): Query<NoticeQuery>,
) -> Result<Response, PageError> {
    let notice = q.notice(&[("retired", "assets.notice.retired")]);
    render_list(&state, &req.actor, None, notice, StatusCode::OK).await
}

async fn render_list(
    state: &AppState,
    actor: &Actor,
    fail: Option<Failed<'_>>,
    notice: Option<&str>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let mut conn = state.db().pool().acquire().await?;
    let scales = store::scales(&mut conn).await?;
    let assets = store::list_assets(&mut conn, &scales, false).await?;
    let flags = service::flags(state, &mut conn, &assets).await?;
    let units: HashMap<OrgUnitId, String> = crate::org::store::list_units(&mut conn)
        .await?
        .into_iter()
        .map(|u| (u.id, u.name))
        .collect();
    let names = names(&mut conn).await?;
    let show_flags =
        actor.scope(Action::ViewAccess).is_some() || actor.scope(Action::DecideAccess).is_some();
    let rows: Vec<Value> = assets
        .iter()
        .map(|a| {
            json!({
                "id": a.id, "code": a.code, "name": a.name, "kind": a.kind.code(),
                "owner": units.get(&a.owner_org_unit_id).cloned().unwrap_or_default(),
                "level": scales.get("confidentiality", &a.confidentiality).map(|l| l.name.clone()).unwrap_or_default(),
                "secret": a.secret, "ground": a.secret_ground,
                "national_c": a.national_c, "national_c_r6": a.national_c_r6,
                "national_i": a.national_i, "national_a": a.national_a,
                "zone": zone_key(&a.zone), "personal_info": a.personal_info,
                "external": a.external_connection,
                "manager": person_label(&names, a.security_manager_id.map(|p| p.0)),
                "mine": actor.person_id.is_some() && a.security_manager_id == actor.person_id,
                "flags": if show_flags { serde_json::to_value(flags.get(&a.id)).unwrap_or(Value::Null) } else { Value::Null },
            })
        })
        .collect();
    let can_create = actor.scope(Action::ManageAssets).is_some();
    let choices = if can_create {
        form_choices(state, &mut conn, &scales).await?
    } else {
        Value::Null
    };
    let (values, errors) = match &fail {
        Some(f) => (
            f.values.clone(),
            form_errors(f.errors, &ASSET_FIELDS, "new-"),
        ),
        None => (
            serde_json::to_value(AssetForm {
                kind: "system".into(),
                confidentiality: "general".into(),
                zone: "lgwan".into(),
                ..Default::default()
            })
            .unwrap_or_default(),
            form_errors(&[], &[], ""),
        ),
    };
    let html = render(
        "assets.html",
        &Chrome::for_actor(actor),
        json!({ "assets": rows, "can_create": can_create, "choices": choices, "form": values,
                "errors": errors, "notice": notice, "show_flags": show_flags }),
    )?;
    Ok((status, html).into_response())
}

async fn create(
    State(state): State<AppState>,
    req: Require<ManageAssets>,
    CsrfForm(form): CsrfForm<AssetForm>,
) -> Result<Response, PageError> {
    let (input, mut errors) = form.to_input();
    let result = if errors.is_empty() {
        service::create_asset(&state, &req.actor, &req.scope, input).await
    } else {
        Err(AppError::Invalid(std::mem::take(&mut errors)))
    };
    match result {
        Ok(a) => Ok(Redirect::to(&format!("/assets/{}?done=created", a.id)).into_response()),
        Err(AppError::Invalid(errors)) => {
            render_list(
                &state,
                &req.actor,
                failed("new", &form, &errors),
                None,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

// ---------------------------------------------------------------------------
// One asset

async fn asset_page(
    State(state): State<AppState>,
    req: Require<ViewSystems>,
    Path(id): Path<i64>,
    Query(q): Query<NoticeQuery>,
) -> Result<Response, PageError> {
    let notice = q.notice(&[
        ("created", "assets.notice.created"),
        ("saved", "assets.notice.saved"),
        ("operator", "assets.notice.operator"),
        ("operator_ended", "assets.notice.operator_ended"),
        ("requested", "assets.notice.requested"),
        ("decided", "assets.notice.decided"),
        ("grant_ended", "assets.notice.grant_ended"),
    ]);
    render_asset(&state, &req.actor, id, None, notice, StatusCode::OK).await
}

async fn render_asset(
    state: &AppState,
    actor: &Actor,
    id: i64,
    fail: Option<Failed<'_>>,
    notice: Option<&str>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let mut conn = state.db().pool().acquire().await?;
    let scales = store::scales(&mut conn).await?;
    let asset = store::get_asset(&mut conn, &scales, id)
        .await?
        .ok_or(AppError::NotFound("asset"))?;
    let names = names(&mut conn).await?;
    let owner = crate::org::store::get_unit(&mut conn, asset.owner_org_unit_id).await?;
    let in_scope_of = |action: Action| actor.scope(action);
    let owner_in = |scope: Option<ActorScope>| {
        let unit = asset.owner_org_unit_id;
        async move {
            match scope {
                None => Ok::<bool, AppError>(false),
                Some(s) => Ok(in_scope(&mut *state.db().pool().acquire().await?, &s, unit).await?),
            }
        }
    };
    let can_edit =
        asset.retired_at.is_none() && owner_in(in_scope_of(Action::ManageAssets)).await?;
    let can_view_access = owner_in(in_scope_of(Action::ViewAccess)).await?;
    let is_manager = asset.retired_at.is_none()
        && actor.person_id.is_some()
        && asset.security_manager_id == actor.person_id
        && actor.scope(Action::DecideAccess).is_some();
    let can_request = asset.retired_at.is_none() && actor.scope(Action::RequestAccess).is_some();
    let operators = store::operators(&mut conn, Some(id), true).await?;
    let flags = service::flags(state, &mut conn, std::slice::from_ref(&asset))
        .await?
        .remove(&id)
        .unwrap_or_default();
    let unit_names: HashMap<i64, String> = crate::org::store::list_units(&mut conn)
        .await?
        .into_iter()
        .map(|u| (u.id.0, u.name))
        .collect();
    let subject_label = |s: SubjectRef| match s {
        SubjectRef::Person(p) => person_label(&names, Some(p)),
        SubjectRef::OrgUnit(u) => format!(
            "{}（組織）",
            unit_names.get(&u).cloned().unwrap_or_default()
        ),
    };
    let grants: Vec<Value> = if can_view_access || is_manager {
        store::list_grants(&mut conn, Some(id), None, true)
            .await?
            .into_iter()
            .map(|g| json!({ "id": g.id, "subject": subject_label(g.subject), "actions": g.actions,
                             "valid_from": g.valid_from, "valid_until": g.valid_until,
                             "conditions": conditions_text(&g.conditions), "unit_reason": g.unit_reason,
                             "granted_by": person_label(&names, g.granted_by.map(|p| p.0)) }))
            .collect()
    } else {
        vec![]
    };
    let pending: Vec<Value> = if is_manager || can_view_access {
        store::list_requests(&mut conn, Some(id), Some("pending"), None, 100)
            .await?
            .into_iter()
            .map(|r| json!({ "id": r.id, "subject": subject_label(r.subject), "actions": r.actions,
                             "valid_from": r.valid_from, "valid_until": r.valid_until,
                             "conditions": conditions_text(&r.conditions), "unit_reason": r.unit_reason,
                             "purpose": r.purpose, "requested_by": person_label(&names, r.requested_by.map(|p| p.0)),
                             "requested_at": r.requested_at }))
            .collect()
    } else {
        vec![]
    };
    let who: Vec<Value> = if can_view_access {
        let q = super::api::AccessQuery {
            at: None,
            any_conditions: true,
            zone: None,
            area: None,
        };
        super::api::who_can(state, id, &q)
            .unwrap_or_default()
            .into_iter()
            .map(|p| json!({ "person": person_label(&names, Some(p.person_id)), "actions": p.actions }))
            .collect()
    } else {
        vec![]
    };
    let reviews: Vec<Value> = if can_view_access || is_manager {
        let mut out = Vec::new();
        for rid in store::review_ids(&mut conn, id).await? {
            if let Some(r) = store::get_review(&mut conn, rid).await? {
                out.push(
                    json!({ "id": r.id, "started_at": r.started_at, "completed_at": r.completed_at,
                                 "items": r.items.len(), "record_index": r.record_index }),
                );
            }
        }
        out
    } else {
        vec![]
    };
    let choices = if can_edit || is_manager || can_request {
        form_choices(state, &mut conn, &scales).await?
    } else {
        Value::Null
    };
    let areas = store::areas(&mut conn).await?;
    let fail_form = fail.as_ref().map(|f| f.form).unwrap_or("");
    let values = |form: &str, default: Value| -> Value {
        match &fail {
            Some(f) if f.form == form => f.values.clone(),
            _ => default,
        }
    };
    let errs = |form: &str, fields: &[&str]| -> Value {
        match &fail {
            Some(f) if f.form == form => form_errors(f.errors, fields, &format!("{form}-")),
            _ => form_errors(&[], &[], ""),
        }
    };
    let level = scales
        .get("confidentiality", &asset.confidentiality)
        .cloned();
    let html = render(
        "asset.html",
        &Chrome::for_actor(actor),
        json!({
            "asset": asset,
            "zone": zone_key(&asset.zone),
            "level": level,
            "integrity": scales.get("integrity", &asset.integrity).cloned(),
            "availability": scales.get("availability", &asset.availability).cloned(),
            "owner": owner.map(|u| u.name).unwrap_or_default(),
            "manager": person_label(&names, asset.security_manager_id.map(|p| p.0)),
            "operators": operators.iter().map(|o| json!({ "id": o.id, "person": person_label(&names, Some(o.person_id.0)), "reason": o.reason, "since": o.created_at })).collect::<Vec<_>>(),
            "flags": flags,
            "grants": grants,
            "pending": pending,
            "who": who,
            "reviews": reviews,
            "areas": areas,
            "can_edit": can_edit, "is_manager": is_manager, "can_request": can_request,
            "can_view_access": can_view_access,
            "choices": choices,
            "notice": notice,
            "fail_form": fail_form,
            "edit": values("edit", serde_json::to_value(AssetForm::of(&asset)).unwrap_or_default()),
            "edit_errors": errs("edit", &ASSET_FIELDS),
            "request": values("request", json!({ "subject_kind": "self", "action_read": "on" })),
            "request_errors": errs("request", &REQUEST_FIELDS),
            "operator_errors": errs("operator", &["person_id", "reason"]),
            "operator": values("operator", json!({})),
            "retire_errors": errs("retire", &["reason"]),
            "decide_errors": errs("decide", &["reason"]),
            "grant_errors": errs("grant", &["reason"]),
        }),
    )?;
    Ok((status, html).into_response())
}

fn conditions_text(c: &ConditionsDoc) -> String {
    let mut parts = Vec::new();
    if !c.windows.is_empty() {
        parts.push(
            c.windows
                .iter()
                .map(|w| format!("{}–{}", w.start, w.end))
                .collect::<Vec<_>>()
                .join(", "),
        );
    }
    if !c.weekdays.is_empty() {
        parts.push(c.weekdays.join(" "));
    }
    if !c.zones.is_empty() {
        parts.push(c.zones.join(" "));
    }
    if !c.areas.is_empty() {
        parts.push(c.areas.join(" "));
    }
    parts.join(" / ")
}

async fn update(
    State(state): State<AppState>,
    req: Require<ManageAssets>,
    Path(id): Path<i64>,
    CsrfForm(form): CsrfForm<AssetForm>,
) -> Result<Response, PageError> {
    let (input, errors) = form.to_input();
    let result = if errors.is_empty() {
        service::update_asset(&state, &req.actor, &req.scope, id, input)
            .await
            .map(drop)
    } else {
        Err(AppError::Invalid(errors))
    };
    after(&state, &req.actor, id, "saved", "edit", &form, result).await
}

/// Redirects on success; re-renders the asset page with the form's errors.
async fn after<T: Serialize>(
    state: &AppState,
    actor: &Actor,
    id: i64,
    done: &str,
    form: &str,
    values: &T,
    result: Result<(), AppError>,
) -> Result<Response, PageError> {
    match result {
        Ok(()) => Ok(Redirect::to(&format!("/assets/{id}?done={done}")).into_response()),
        Err(AppError::Invalid(errors)) => {
            render_asset(
                state,
                actor,
                id,
                failed(form, values, &errors),
                None,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
struct ReasonForm {
    #[serde(default)]
    reason: String,
}

async fn retire(
    State(state): State<AppState>,
    req: Require<ManageAssets>,
    Path(id): Path<i64>,
    CsrfForm(form): CsrfForm<ReasonForm>,
) -> Result<Response, PageError> {
    match service::retire_asset(&state, &req.actor, &req.scope, id, &form.reason).await {
        Ok(_) => Ok(Redirect::to("/assets?done=retired").into_response()),
        Err(AppError::Invalid(errors)) => {
            render_asset(
                &state,
                &req.actor,
                id,
                failed("retire", &form, &errors),
                None,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
struct OperatorForm {
    #[serde(default)]
    person_id: String,
    #[serde(default)]
    reason: String,
}

async fn name_operator(
    State(state): State<AppState>,
    req: Require<DecideAccess>,
    Path(id): Path<i64>,
    CsrfForm(form): CsrfForm<OperatorForm>,
) -> Result<Response, PageError> {
    let result = match parse_id(&form.person_id) {
        Some(p) => service::name_operator(&state, &req.actor, id, p, &form.reason)
            .await
            .map(drop),
        None => Err(AppError::invalid("person_id", "field.required", &[])),
    };
    after(
        &state, &req.actor, id, "operator", "operator", &form, result,
    )
    .await
}

async fn end_operator(
    State(state): State<AppState>,
    req: Require<DecideAccess>,
    Path((id, op)): Path<(i64, i64)>,
    CsrfForm(_form): CsrfForm<ReasonForm>,
) -> Result<Response, PageError> {
    let result = service::end_operator(&state, &req.actor, id, op).await;
    after(
        &state,
        &req.actor,
        id,
        "operator_ended",
        "operator",
        &json!({}),
        result,
    )
    .await
}

// ---------------------------------------------------------------------------
// Requests

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
struct RequestForm {
    /// `self`, `person` or `org_unit`.
    #[serde(default)]
    subject_kind: String,
    #[serde(default)]
    subject_id: String,
    #[serde(default)]
    action_read: Option<String>,
    #[serde(default)]
    action_write: Option<String>,
    #[serde(default)]
    action_export: Option<String>,
    #[serde(default)]
    valid_from: String,
    #[serde(default)]
    valid_until: String,
    #[serde(default)]
    window_start: String,
    #[serde(default)]
    window_end: String,
    #[serde(default)]
    wd_mon: Option<String>,
    #[serde(default)]
    wd_tue: Option<String>,
    #[serde(default)]
    wd_wed: Option<String>,
    #[serde(default)]
    wd_thu: Option<String>,
    #[serde(default)]
    wd_fri: Option<String>,
    #[serde(default)]
    wd_sat: Option<String>,
    #[serde(default)]
    wd_sun: Option<String>,
    #[serde(default)]
    zone_my_number: Option<String>,
    #[serde(default)]
    zone_lgwan: Option<String>,
    #[serde(default)]
    zone_internet: Option<String>,
    /// Area codes, separated by spaces or commas.
    #[serde(default)]
    areas: String,
    #[serde(default)]
    unit_reason: String,
    #[serde(default)]
    purpose: String,
}

const REQUEST_FIELDS: [&str; 10] = [
    "subject",
    "actions",
    "valid_from",
    "valid_until",
    "conditions.windows[0].start",
    "conditions.windows[0].end",
    "conditions.weekdays",
    "conditions.areas",
    "unit_reason",
    "purpose",
];

impl RequestForm {
    fn to_input(&self, asset_id: i64) -> (RequestInput, Vec<FieldError>) {
        let mut errors = Vec::new();
        let subject = match self.subject_kind.as_str() {
            "person" | "org_unit" => match parse_id(&self.subject_id) {
                Some(i) if self.subject_kind == "person" => Some(SubjectRef::Person(i)),
                Some(i) => Some(SubjectRef::OrgUnit(i)),
                None => {
                    errors.push(FieldError::new("subject", "field.required", &[]));
                    None
                }
            },
            _ => None,
        };
        let mut actions = Vec::new();
        for (on, a) in [
            (&self.action_read, "read"),
            (&self.action_write, "write"),
            (&self.action_export, "export"),
        ] {
            if on.is_some() {
                actions.push(a.to_string());
            }
        }
        let mut conditions = ConditionsDoc::default();
        if !self.window_start.trim().is_empty() || !self.window_end.trim().is_empty() {
            conditions.windows.push(WindowDoc {
                start: self.window_start.trim().into(),
                end: self.window_end.trim().into(),
            });
        }
        for (on, d) in [
            (&self.wd_mon, "mon"),
            (&self.wd_tue, "tue"),
            (&self.wd_wed, "wed"),
            (&self.wd_thu, "thu"),
            (&self.wd_fri, "fri"),
            (&self.wd_sat, "sat"),
            (&self.wd_sun, "sun"),
        ] {
            if on.is_some() {
                conditions.weekdays.push(d.into());
            }
        }
        for (on, z) in [
            (&self.zone_my_number, "my_number"),
            (&self.zone_lgwan, "lgwan"),
            (&self.zone_internet, "internet"),
        ] {
            if on.is_some() {
                conditions.zones.push(z.into());
            }
        }
        conditions.areas = self
            .areas
            .split(|c: char| c == ',' || c == '、' || c.is_whitespace())
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        let opt = |s: &str| (!s.trim().is_empty()).then(|| s.trim().to_string());
        (
            RequestInput {
                asset_id,
                subject,
                actions,
                valid_from: opt(&self.valid_from),
                valid_until: opt(&self.valid_until),
                conditions,
                unit_reason: opt(&self.unit_reason),
                purpose: self.purpose.clone(),
            },
            errors,
        )
    }
}

async fn request(
    State(state): State<AppState>,
    req: Require<RequestAccess>,
    Path(id): Path<i64>,
    CsrfForm(form): CsrfForm<RequestForm>,
) -> Result<Response, PageError> {
    let (input, errors) = form.to_input(id);
    let result = if errors.is_empty() {
        service::request_access(&state, &req.actor, &req.scope, input)
            .await
            .map(drop)
    } else {
        Err(AppError::Invalid(errors))
    };
    after(
        &state,
        &req.actor,
        id,
        "requested",
        "request",
        &form,
        result,
    )
    .await
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
struct DecideForm {
    /// `approve` or `reject`.
    #[serde(default)]
    decision: String,
    #[serde(default)]
    reason: String,
}

async fn decide(
    State(state): State<AppState>,
    req: Require<DecideAccess>,
    Path(id): Path<i64>,
    CsrfForm(form): CsrfForm<DecideForm>,
) -> Result<Response, PageError> {
    let asset = {
        let mut conn = state.db().pool().acquire().await?;
        store::get_request(&mut conn, id)
            .await?
            .ok_or(AppError::NotFound("request"))?
            .asset_id
    };
    let result = service::decide_request(
        &state,
        &req.actor,
        id,
        form.decision == "approve",
        &form.reason,
    )
    .await
    .map(drop);
    after(
        &state, &req.actor, asset, "decided", "decide", &form, result,
    )
    .await
}

async fn withdraw(
    State(state): State<AppState>,
    req: Require<RequestAccess>,
    Path(id): Path<i64>,
    CsrfForm(_form): CsrfForm<ReasonForm>,
) -> Result<Response, PageError> {
    service::withdraw_request(&state, &req.actor, id).await?;
    Ok(Redirect::to("/access?done=withdrawn").into_response())
}

async fn end_grant(
    State(state): State<AppState>,
    req: Require<DecideAccess>,
    Path(id): Path<i64>,
    CsrfForm(form): CsrfForm<ReasonForm>,
) -> Result<Response, PageError> {
    let asset = {
        let mut conn = state.db().pool().acquire().await?;
        store::get_grant(&mut conn, id)
            .await?
            .ok_or(AppError::NotFound("grant"))?
            .asset_id
    };
    let result = service::revoke_grant(&state, &req.actor, id, &form.reason)
        .await
        .map(drop);
    after(
        &state,
        &req.actor,
        asset,
        "grant_ended",
        "grant",
        &form,
        result,
    )
    .await
}

// ---------------------------------------------------------------------------
// Reviews

async fn start_review(
    State(state): State<AppState>,
    req: Require<DecideAccess>,
    Path(id): Path<i64>,
    CsrfForm(_form): CsrfForm<ReasonForm>,
) -> Result<Response, PageError> {
    let review = service::start_review(&state, &req.actor, id).await?;
    Ok(Redirect::to(&format!("/access-reviews/{}", review.id)).into_response())
}

async fn review_page(
    State(state): State<AppState>,
    req: Require<ViewAccess>,
    Path(id): Path<i64>,
    Query(q): Query<NoticeQuery>,
) -> Result<Response, PageError> {
    let notice = q.notice(&[
        ("item", "assets.notice.review_item"),
        ("completed", "assets.notice.review_completed"),
    ]);
    render_review(
        &state,
        &req.actor,
        &req.scope,
        id,
        None,
        notice,
        StatusCode::OK,
    )
    .await
}

async fn render_review(
    state: &AppState,
    actor: &Actor,
    scope: &ActorScope,
    id: i64,
    fail: Option<Failed<'_>>,
    notice: Option<&str>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let mut conn = state.db().pool().acquire().await?;
    let review = store::get_review(&mut conn, id)
        .await?
        .ok_or(AppError::NotFound("review"))?;
    let scales = store::scales(&mut conn).await?;
    let asset = store::get_asset(&mut conn, &scales, review.asset_id)
        .await?
        .ok_or(AppError::NotFound("asset"))?;
    if !in_scope(&mut conn, scope, asset.owner_org_unit_id).await? {
        return Err(AppError::Forbidden("out_of_scope").into());
    }
    let names = names(&mut conn).await?;
    let mut items = Vec::new();
    for i in &review.items {
        let g = store::get_grant(&mut conn, i.grant_id).await?;
        items.push(json!({
            "grant_id": i.grant_id, "decision": i.decision, "note": i.note, "decided_at": i.decided_at,
            "subject": g.as_ref().map(|g| match g.subject {
                SubjectRef::Person(p) => person_label(&names, Some(p)),
                SubjectRef::OrgUnit(u) => format!("org_unit:{u}"),
            }),
            "actions": g.as_ref().map(|g| g.actions.clone()).unwrap_or_default(),
            "valid_until": g.as_ref().and_then(|g| g.valid_until),
            "conditions": g.as_ref().map(|g| conditions_text(&g.conditions)).unwrap_or_default(),
        }));
    }
    let is_manager = review.completed_at.is_none()
        && asset.security_manager_id == actor.person_id
        && actor.person_id.is_some();
    let errors = match &fail {
        Some(f) => form_errors(
            f.errors,
            &["decision", "note", "grant_id", "items"],
            "item-",
        ),
        None => form_errors(&[], &[], ""),
    };
    let html = render(
        "access_review.html",
        &Chrome::for_actor(actor),
        json!({ "review": review, "asset": asset, "items": items, "is_manager": is_manager,
                "errors": errors, "notice": notice,
                "started_by": person_label(&names, review.started_by.map(|p| p.0)),
                "completed_by": person_label(&names, review.completed_by.map(|p| p.0)),
                "failed": fail.as_ref().map(|f| f.values.clone()) }),
    )?;
    Ok((status, html).into_response())
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
struct ItemForm {
    #[serde(default)]
    grant_id: String,
    #[serde(default)]
    decision: String,
    #[serde(default)]
    note: String,
}

async fn review_item(
    State(state): State<AppState>,
    req: Require<DecideAccess>,
    Path(id): Path<i64>,
    CsrfForm(form): CsrfForm<ItemForm>,
) -> Result<Response, PageError> {
    let result = match parse_id(&form.grant_id) {
        Some(g) => service::decide_review_item(
            &state,
            &req.actor,
            id,
            ReviewDecision {
                grant_id: g,
                decision: form.decision.clone(),
                note: form.note.clone(),
            },
        )
        .await
        .map(drop),
        None => Err(AppError::invalid("grant_id", "field.required", &[])),
    };
    review_after(&state, &req.actor, &req.scope, id, "item", &form, result).await
}

async fn complete_review(
    State(state): State<AppState>,
    req: Require<DecideAccess>,
    Path(id): Path<i64>,
    CsrfForm(form): CsrfForm<ReasonForm>,
) -> Result<Response, PageError> {
    let result = service::complete_review(&state, &req.actor, id)
        .await
        .map(drop);
    review_after(
        &state,
        &req.actor,
        &req.scope,
        id,
        "completed",
        &form,
        result,
    )
    .await
}

async fn review_after<T: Serialize>(
    state: &AppState,
    actor: &Actor,
    scope: &ActorScope,
    id: i64,
    done: &str,
    values: &T,
    result: Result<(), AppError>,
) -> Result<Response, PageError> {
    match result {
        Ok(()) => Ok(Redirect::to(&format!("/access-reviews/{id}?done={done}")).into_response()),
        Err(AppError::Invalid(errors)) => {
            render_review(
                state,
                actor,
                scope,
                id,
                failed("item", values, &errors),
                None,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

// ---------------------------------------------------------------------------
// My access

async fn my_access(
    State(state): State<AppState>,
    req: Require<RequestAccess>,
    Query(q): Query<NoticeQuery>,
) -> Result<Response, PageError> {
    let notice = q.notice(&[("withdrawn", "assets.notice.withdrawn")]);
    let me = req.actor.person_id;
    let requests = super::api::requests_for(&state, me, None).await?;
    let mut conn = state.db().pool().acquire().await?;
    let names = names(&mut conn).await?;
    let scales = store::scales(&mut conn).await?;
    let assets: HashMap<i64, Asset> = store::list_assets(&mut conn, &scales, true)
        .await?
        .into_iter()
        .map(|a| (a.id, a))
        .collect();
    let asset_label = |id: i64| {
        assets
            .get(&id)
            .map(|a| format!("{}（{}）", a.name, a.code))
            .unwrap_or_default()
    };
    let to_decide: Vec<Value> = requests
        .iter()
        .filter(|r| r.status == "pending" && assets.get(&r.asset_id).is_some_and(|a| a.security_manager_id == me))
        .map(|r| json!({ "id": r.id, "asset_id": r.asset_id, "asset": asset_label(r.asset_id),
                         "subject": match r.subject { SubjectRef::Person(p) => person_label(&names, Some(p)), SubjectRef::OrgUnit(u) => format!("org_unit:{u}") },
                         "actions": r.actions, "purpose": r.purpose }))
        .collect();
    let mine: Vec<Value> = requests
        .iter()
        .filter(|r| r.requested_by == me)
        .map(|r| json!({ "id": r.id, "asset_id": r.asset_id, "asset": asset_label(r.asset_id), "actions": r.actions,
                         "status": r.status, "requested_at": r.requested_at, "decision_reason": r.decision_reason }))
        .collect();
    let access: Vec<Value> = match me {
        Some(p) => {
            let q = super::api::AccessQuery {
                at: None,
                any_conditions: true,
                zone: None,
                area: None,
            };
            super::api::what_can(&state, p.0, &q)
                .unwrap_or_default()
                .into_iter()
                .map(|a| json!({ "asset_id": a.asset_id, "asset": asset_label(a.asset_id), "actions": a.actions,
                                 "secret": assets.get(&a.asset_id).is_some_and(|x| x.secret) }))
                .collect()
        }
        None => vec![],
    };
    let html = render(
        "access.html",
        &Chrome::for_actor(&req.actor),
        json!({ "to_decide": to_decide, "mine": mine, "access": access, "notice": notice }),
    )?;
    Ok(html.into_response())
}
