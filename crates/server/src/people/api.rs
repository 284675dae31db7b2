//! JSON API for people and personnel events.

use super::service::{self, EventOutcome, ImportOptions, ImportReport, Source};
use super::{store, Person, PersonnelEventView};
use crate::app::{AppState, Routes};
use crate::auth::perm::{ImportPersonnel, RecordPersonnelEvent, ViewPeople};
use crate::auth::{ActorScope, Require};
use crate::ids::PersonId;
use crate::web::error::{ApiError, AppError, FieldError};
use crate::web::json::ApiJson;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use mamori_personnel_csv::{EmploymentType, EventKind, PersonnelEvent};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

pub fn routes(r: Routes) -> Routes {
    r.get("/api/v1/people", list)
        .get("/api/v1/people/{id}", get)
        .get("/api/v1/personnel-events", list_events)
        .post("/api/v1/personnel-events", submit)
        .post("/api/v1/personnel-events/import", import)
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PeopleQuery {
    /// Part of a name (kanji, kana, romaji) or employee number.
    #[serde(default)]
    pub q: String,
    #[serde(default)]
    pub limit: Option<i64>,
}

/// Units an actor's scope covers, expanded to everything below them.
pub async fn scope_units(
    conn: &mut crate::db::Conn,
    scope: &ActorScope,
) -> Result<Option<Vec<crate::ids::OrgUnitId>>, sqlx::Error> {
    match scope {
        ActorScope::Ward => Ok(None),
        ActorScope::Units(units) => {
            let mut all = Vec::new();
            for u in units {
                all.extend(crate::org::store::descendants(conn, *u).await?);
            }
            Ok(Some(all))
        }
    }
}

/// People in my scope (the birth date is never listed).
#[utoipa::path(get, path = "/api/v1/people", tag = "people", params(PeopleQuery), responses((status = 200, body = Vec<Person>)))]
pub async fn list(
    State(state): State<AppState>,
    req: Require<ViewPeople>,
    Query(q): Query<PeopleQuery>,
) -> Result<Json<Vec<Person>>, ApiError> {
    if q.q.chars().count() > 100 {
        return Err(AppError::invalid("q", "field.too_long", &[("max", "100".into())]).into());
    }
    let mut conn = state.db().pool().acquire().await?;
    let units = scope_units(&mut conn, &req.scope).await?;
    let list = store::list_people(
        &mut conn,
        units.as_deref(),
        q.q.trim(),
        state.clock().unix(),
        q.limit.unwrap_or(200).clamp(1, 1000),
    )
    .await?;
    Ok(Json(list))
}

#[utoipa::path(get, path = "/api/v1/people/{id}", tag = "people", params(("id" = i64, Path)),
    responses((status = 200, body = Person), (status = 403, body = crate::web::error::Problem), (status = 404, body = crate::web::error::Problem)))]
pub async fn get(
    State(state): State<AppState>,
    req: Require<ViewPeople>,
    Path(id): Path<i64>,
) -> Result<Json<Person>, ApiError> {
    let mut conn = state.db().pool().acquire().await?;
    let person = store::get_person(&mut conn, PersonId(id))
        .await?
        .ok_or(AppError::NotFound("person"))?;
    crate::org::service::require_in_scope(&mut conn, &req.scope, person.org_unit_id).await?;
    Ok(Json(person))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct EventQuery {
    pub employee_number: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/personnel-events", tag = "people", params(EventQuery), responses((status = 200, body = Vec<PersonnelEventView>)))]
pub async fn list_events(
    State(state): State<AppState>,
    _req: Require<RecordPersonnelEvent>,
    Query(q): Query<EventQuery>,
) -> Result<Json<Vec<PersonnelEventView>>, ApiError> {
    let mut conn = state.db().pool().acquire().await?;
    Ok(Json(
        store::list_events(&mut conn, q.employee_number.as_deref(), 500).await?,
    ))
}

/// A personnel event as the API and the UI form take it.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventInput {
    pub employee_number: String,
    /// hire (採用), transfer (異動), dispatch (派遣), retire (退職).
    pub kind: String,
    /// Effective date: YYYY-MM-DD or 和暦 (令和8年4月1日, R8.4.1).
    pub effective_date: String,
    #[serde(default)]
    pub name_kanji: Option<String>,
    #[serde(default)]
    pub name_kana: Option<String>,
    #[serde(default)]
    pub name_romaji: Option<String>,
    #[serde(default)]
    pub birth_date: Option<String>,
    /// regular (正規), reappointed (再任用), part_time (非常勤), temporary (臨時), dispatched (派遣).
    #[serde(default)]
    pub employment: Option<String>,
    /// The destination unit's code.
    #[serde(default)]
    pub org_unit_code: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub note: Option<String>,
}

fn opt(s: &Option<String>) -> Option<String> {
    s.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
}

/// Checks the input's shape; state-dependent checks come in the service.
pub fn to_event(input: &EventInput) -> Result<PersonnelEvent, AppError> {
    let mut errors = Vec::new();
    let number = input
        .employee_number
        .parse()
        .map_err(|_| {
            errors.push(FieldError::new(
                "employee_number",
                "people.bad_employee_number",
                &[],
            ))
        })
        .ok();
    let kind = input
        .kind
        .parse::<EventKind>()
        .map_err(|_| errors.push(FieldError::new("kind", "people.bad_event_kind", &[])))
        .ok();
    let effective =
        crate::web::json::check_date(&mut errors, "effective_date", &input.effective_date);
    let birth = opt(&input.birth_date)
        .and_then(|s| crate::web::json::check_date(&mut errors, "birth_date", &s));
    let employment = match opt(&input.employment) {
        Some(s) => s
            .parse::<EmploymentType>()
            .map_err(|_| errors.push(FieldError::new("employment", "people.bad_employment", &[])))
            .ok(),
        None => None,
    };
    for (field, value, max) in [
        ("name_kanji", &input.name_kanji, 100),
        ("name_kana", &input.name_kana, 100),
        ("name_romaji", &input.name_romaji, 100),
        ("org_unit_code", &input.org_unit_code, 32),
        ("title", &input.title, 50),
        ("note", &input.note, 200),
    ] {
        if let Some(v) = value {
            crate::web::json::check_text(&mut errors, field, v, max, false);
        }
    }
    crate::web::json::done(errors)?;
    match (number, kind, effective) {
        (Some(employee_number), Some(kind), Some(effective)) => Ok(PersonnelEvent {
            employee_number,
            kind,
            effective,
            name_kanji: opt(&input.name_kanji),
            name_kana: opt(&input.name_kana),
            name_romaji: opt(&input.name_romaji),
            birth_date: birth,
            employment,
            org_unit_code: opt(&input.org_unit_code),
            title: opt(&input.title),
            note: opt(&input.note),
        }),
        _ => Err(AppError::Internal("checked above".into())),
    }
}

/// Validates, checks scope, and submits one event in a transaction.
pub async fn submit_one(
    state: &AppState,
    actor: &crate::auth::Actor,
    scope: &ActorScope,
    source: Source,
    input: &EventInput,
) -> Result<EventOutcome, AppError> {
    let ev = to_event(input)?;
    let mut tx = state.db().begin().await?;
    for unit in service::units_touched(&mut tx, &ev).await? {
        crate::org::service::require_in_scope(&mut tx, scope, unit).await?;
    }
    let out = service::submit(&mut tx, state, &actor.who(), actor.person_id, source, &ev).await?;
    tx.commit().await?;
    Ok(out)
}

/// Enter a personnel event (K17.3). Dated today or earlier: applied now;
/// later: scheduled for its date.
#[utoipa::path(post, path = "/api/v1/personnel-events", tag = "people", request_body = EventInput,
    responses((status = 201, body = EventOutcome), (status = 422, body = crate::web::error::Problem)))]
pub async fn submit(
    State(state): State<AppState>,
    req: Require<RecordPersonnelEvent>,
    ApiJson(input): ApiJson<EventInput>,
) -> Result<(StatusCode, Json<EventOutcome>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(submit_one(&state, &req.actor, &req.scope, Source::Api, &input).await?),
    ))
}

/// Import the HR system's CSV (UTF-8 or Shift_JIS; Japanese headers). All
/// or nothing unless `apply_valid=true`; every bad row is listed.
#[utoipa::path(post, path = "/api/v1/personnel-events/import", tag = "people", params(ImportOptions),
    request_body(content = String, content_type = "text/csv"),
    responses((status = 200, description = "applied", body = ImportReport), (status = 422, description = "nothing applied", body = ImportReport)))]
pub async fn import(
    State(state): State<AppState>,
    req: Require<ImportPersonnel>,
    Query(opts): Query<ImportOptions>,
    body: Bytes,
) -> Result<(StatusCode, Json<ImportReport>), ApiError> {
    let report = service::import_csv(
        &state,
        &req.actor.who(),
        req.actor.person_id,
        Some(&req.scope),
        &body,
        opts,
    )
    .await?;
    let status = if report.errors.is_empty() || report.applied {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    Ok((status, Json(report)))
}
