//! JSON API for the asset register, access rights and reviews, and the
//! decision API ward systems call (SPEC §4: `POST /api/v1/access/check`).

use super::engine::Model;
use super::service::{self, AssetFlags, AssetInput, RequestInput, ReviewDecision};
use super::{store, AccessRequest, Asset, GrantRow, Level, ManagedArea, Operator, Review};
use crate::app::{AppState, Routes};
use crate::auth::perm::{
    DecideAccess, ManageAssets, ManageSettings, RequestAccess, ViewAccess, ViewSystems,
};
use crate::auth::{ActorScope, Require};
use crate::ids::PersonId;
use crate::org::service::in_scope;
use crate::tokens::AccessChecker;
use crate::web::error::{ApiError, AppError, FieldError};
use crate::web::i18n;
use crate::web::json::ApiJson;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use mamori_policy::access::{self, AssetId, Context, DecideError, NetworkZone, Reason};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

/// Most requests in one batch check.
pub const MAX_BATCH: usize = 1000;

pub fn routes(r: Routes) -> Routes {
    r.post("/api/v1/access/check", check)
        .post("/api/v1/access/check/batch", check_batch)
        .get("/api/v1/assets", list_assets)
        .post("/api/v1/assets", create_asset)
        .get("/api/v1/assets/{id}", get_asset)
        .put("/api/v1/assets/{id}", update_asset)
        .post("/api/v1/assets/{id}/retire", retire_asset)
        .post("/api/v1/assets/{id}/operators", name_operator)
        .post("/api/v1/assets/{id}/operators/{op}/end", end_operator)
        .get("/api/v1/assets/{id}/grants", list_grants)
        .get("/api/v1/assets/{id}/access", who_can_access)
        .post("/api/v1/assets/{id}/reviews", start_review)
        .get("/api/v1/people/{id}/access", what_can_access)
        .get("/api/v1/access-requests", list_requests)
        .post("/api/v1/access-requests", request_access)
        .post("/api/v1/access-requests/{id}/decision", decide_request)
        .post("/api/v1/access-requests/{id}/withdraw", withdraw_request)
        .post("/api/v1/grants/{id}/end", end_grant)
        .get("/api/v1/access-reviews/{id}", get_review)
        .post("/api/v1/access-reviews/{id}/items", decide_item)
        .post("/api/v1/access-reviews/{id}/complete", complete_review)
        .get("/api/v1/classification-scales", get_scales)
        .put("/api/v1/classification-scales/{axis}", put_scale)
        .get("/api/v1/managed-areas", list_areas)
        .post("/api/v1/managed-areas", create_area)
}

// ---------------------------------------------------------------------------
// Decisions

/// Where and when the access would happen.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckContext {
    /// RFC 3339; default: now.
    #[serde(default)]
    pub time: Option<String>,
    /// The terminal's network zone: `my_number`, `lgwan` or `internet`.
    #[serde(default)]
    pub zone: Option<String>,
    /// Code of the managed area (管理区域) the terminal stands in.
    #[serde(default)]
    pub area: Option<String>,
}

/// One access question from a ward system.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckRequest {
    /// The person's 職員番号 (employee number, their login).
    pub subject: String,
    /// `read`, `write`, `export` or `administer`.
    pub action: String,
    /// The asset's code in the register.
    pub asset: String,
    #[serde(default)]
    pub context: CheckContext,
}

/// The answer: allowed or not, why, and the clauses behind the rule.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CheckResult {
    /// `allow` or `deny`.
    pub decision: &'static str,
    pub allow: bool,
    /// Stable reason code, e.g. `access.deny.secret_needs_grant`.
    pub reason: &'static str,
    /// The reason in words (Japanese unless `Accept-Language: en`).
    pub message: String,
    /// Clause ids (SPEC §2), e.g. `["K3.2.1", "K12.1.2"]`.
    pub clauses: Vec<&'static str>,
    /// The grant that allowed (or that exists but is not in effect).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grant_id: Option<i64>,
}

/// What a check resolved to, for recording.
pub struct Decided {
    pub result: CheckResult,
    pub person: i64,
    pub secret: bool,
}

fn bad(field: &str, code: &str, value: &str) -> FieldError {
    FieldError::new(field, code, &[("value", value.chars().take(64).collect())])
}

/// Answers one question against the model; errors name the fields.
pub fn decide(
    model: &Model,
    q: &CheckRequest,
    now: time::OffsetDateTime,
) -> Result<Decided, Vec<FieldError>> {
    let mut errors = Vec::new();
    let person = model.person_by_number.get(q.subject.as_str()).copied();
    if person.is_none() {
        errors.push(bad("subject", "access.unknown_subject", &q.subject));
    }
    let asset = model.asset_by_code.get(q.asset.as_str()).copied();
    if asset.is_none() {
        errors.push(bad("asset", "access.unknown_asset", &q.asset));
    }
    let action = q.action.parse::<access::Action>().ok();
    if action.is_none() {
        errors.push(bad("action", "access.unknown_action", &q.action));
    }
    let at = match q.context.time.as_deref() {
        None => Some(now),
        Some(t) => {
            time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
        }
    };
    if at.is_none() {
        errors.push(bad(
            "context.time",
            "access.bad_time",
            q.context.time.as_deref().unwrap_or(""),
        ));
    }
    let zone = match q.context.zone.as_deref() {
        None => Some(None),
        Some(z) => z.parse::<NetworkZone>().ok().map(Some),
    };
    if zone.is_none() {
        errors.push(bad(
            "context.zone",
            "access.unknown_zone",
            q.context.zone.as_deref().unwrap_or(""),
        ));
    }
    let area = match q.context.area.as_deref() {
        None => Some(None),
        Some(a) => model.area_by_code.get(a).copied().map(Some),
    };
    if area.is_none() {
        errors.push(bad(
            "context.area",
            "access.unknown_area",
            q.context.area.as_deref().unwrap_or(""),
        ));
    }
    let (Some(person), Some(asset), Some(action), Some(at), Some(zone), Some(area)) =
        (person, asset, action, at, zone, area)
    else {
        return Err(errors);
    };
    let request = access::Request {
        subject: person,
        action,
        asset,
        context: Context { at, zone, area },
    };
    let decision = model.engine.decide(&request).map_err(|e| {
        vec![match e {
            DecideError::UnknownPerson(_) => bad("subject", "access.unknown_subject", &q.subject),
            DecideError::UnknownAsset(_) => bad("asset", "access.unknown_asset", &q.asset),
            DecideError::UnknownAction(_) => bad("action", "access.unknown_action", &q.action),
            DecideError::UnknownZone(_) => bad("context.zone", "access.unknown_zone", ""),
            DecideError::TimeOutOfRange => bad("context.time", "access.bad_time", ""),
        }]
    })?;
    let secret = model
        .engine
        .asset(asset)
        .is_some_and(|a| a.classification.is_secret());
    let grant_id = match decision.reason {
        Reason::Granted(g) | Reason::GrantNotInEffect(g) => Some(g.0),
        _ => None,
    };
    Ok(Decided {
        result: CheckResult {
            decision: if decision.allow { "allow" } else { "deny" },
            allow: decision.allow,
            reason: decision.reason.code(),
            message: i18n::t(i18n::current(), decision.reason.code(), &[]),
            clauses: decision.clauses.to_vec(),
            grant_id,
        },
        person: person.0,
        secret,
    })
}

async fn record_decision(state: &AppState, caller: &str, q: &CheckRequest, d: &Decided, ip: &str) {
    if !d.secret {
        return;
    }
    if let Some(log) = state.decisions() {
        log.log(super::decisions::DecisionRecord {
            time_micros: state.clock().unix_micros(),
            subject: d.person,
            action: &q.action,
            asset_code: &q.asset,
            allow: d.result.allow,
            detail: json!({
                "caller": caller, "reason": d.result.reason, "clauses": d.result.clauses,
                "grant_id": d.result.grant_id, "time": q.context.time,
                "zone": q.context.zone, "area": q.context.area, "clause": "K16.2.1",
            }),
            source_ip: Some(ip),
        })
        .await;
    }
}

/// Decide one access (bearer token with `access:check`). Unknown subject,
/// asset, action, zone or area is a 422 naming the field, never a silent deny.
/// Decisions on 秘密情報 are ledger records (system `mamori-access`).
#[utoipa::path(post, path = "/api/v1/access/check", tag = "access", request_body = CheckRequest,
    responses((status = 200, body = CheckResult), (status = 401, body = crate::web::error::Problem),
              (status = 403, body = crate::web::error::Problem), (status = 422, body = crate::web::error::Problem)))]
pub async fn check(
    State(state): State<AppState>,
    caller: AccessChecker,
    ApiJson(q): ApiJson<CheckRequest>,
) -> Result<Json<CheckResult>, ApiError> {
    let now = state.clock().now();
    let decided = decide(&state.access().read(), &q, now).map_err(AppError::Invalid)?;
    record_decision(&state, &caller.0.system_code, &q, &decided, &caller.1).await;
    Ok(Json(decided.result))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    /// Up to 1000 questions.
    pub requests: Vec<CheckRequest>,
}

/// One answer of a batch: the result, or the errors of that question.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchItem {
    pub position: usize,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub result: Option<CheckResult>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BatchResponse {
    pub results: Vec<BatchItem>,
}

/// Decide many accesses at once; a bad question gets its errors in its
/// place and the others are answered.
#[utoipa::path(post, path = "/api/v1/access/check/batch", tag = "access", request_body = BatchRequest,
    responses((status = 200, body = BatchResponse), (status = 401, body = crate::web::error::Problem),
              (status = 422, body = crate::web::error::Problem)))]
pub async fn check_batch(
    State(state): State<AppState>,
    caller: AccessChecker,
    ApiJson(batch): ApiJson<BatchRequest>,
) -> Result<Json<BatchResponse>, ApiError> {
    if batch.requests.is_empty() || batch.requests.len() > MAX_BATCH {
        return Err(AppError::invalid(
            "requests",
            "access.batch_size",
            &[("max", MAX_BATCH.to_string())],
        )
        .into());
    }
    let now = state.clock().now();
    let decided: Vec<Result<Decided, Vec<FieldError>>> = {
        let model = state.access().read();
        batch
            .requests
            .iter()
            .map(|q| decide(&model, q, now))
            .collect()
    };
    let mut results = Vec::with_capacity(decided.len());
    for (position, (d, q)) in decided.into_iter().zip(&batch.requests).enumerate() {
        match d {
            Ok(d) => {
                record_decision(&state, &caller.0.system_code, q, &d, &caller.1).await;
                results.push(BatchItem {
                    position,
                    result: Some(d.result),
                    errors: vec![],
                });
            }
            Err(errors) => {
                let errors = errors
                    .into_iter()
                    .map(|mut e| {
                        e.field = format!("requests[{position}].{}", e.field);
                        e
                    })
                    .collect();
                results.push(BatchItem {
                    position,
                    result: None,
                    errors,
                });
            }
        }
    }
    Ok(Json(BatchResponse { results }))
}

// ---------------------------------------------------------------------------
// The register

async fn scales(state: &AppState) -> Result<store::Scales, AppError> {
    let mut conn = state.db().pool().acquire().await?;
    Ok(store::scales(&mut conn).await?)
}

async fn load_asset(state: &AppState, id: i64) -> Result<Asset, AppError> {
    let scales = scales(state).await?;
    let mut conn = state.db().pool().acquire().await?;
    store::get_asset(&mut conn, &scales, id)
        .await?
        .ok_or(AppError::NotFound("asset"))
}

async fn require_owner_in(
    state: &AppState,
    scope: &ActorScope,
    asset: &Asset,
) -> Result<(), AppError> {
    let mut conn = state.db().pool().acquire().await?;
    if in_scope(&mut conn, scope, asset.owner_org_unit_id).await? {
        Ok(())
    } else {
        Err(AppError::Forbidden("out_of_scope"))
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Include assets taken out of the register.
    #[serde(default)]
    pub retired: bool,
}

/// The asset register (Y5, K3.1).
#[utoipa::path(get, path = "/api/v1/assets", tag = "assets", params(ListQuery), responses((status = 200, body = Vec<Asset>)))]
pub async fn list_assets(
    State(state): State<AppState>,
    _req: Require<ViewSystems>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Vec<Asset>>, ApiError> {
    let scales = scales(&state).await?;
    let mut conn = state.db().pool().acquire().await?;
    Ok(Json(
        store::list_assets(&mut conn, &scales, q.retired).await?,
    ))
}

/// Register an asset (the セキュリティ管理者 of its 課, K3.1).
#[utoipa::path(post, path = "/api/v1/assets", tag = "assets", request_body = AssetInput,
    responses((status = 201, body = Asset), (status = 403, body = crate::web::error::Problem), (status = 422, body = crate::web::error::Problem)))]
pub async fn create_asset(
    State(state): State<AppState>,
    req: Require<ManageAssets>,
    ApiJson(input): ApiJson<AssetInput>,
) -> Result<(StatusCode, Json<Asset>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(service::create_asset(&state, &req.actor, &req.scope, input).await?),
    ))
}

/// An asset with its operators and its flags (K18 admin count, review due).
#[derive(Debug, Serialize, ToSchema)]
pub struct AssetDetail {
    #[serde(flatten)]
    pub asset: Asset,
    pub operators: Vec<Operator>,
    pub flags: AssetFlags,
}

#[utoipa::path(get, path = "/api/v1/assets/{id}", tag = "assets", params(("id" = i64, Path)),
    responses((status = 200, body = AssetDetail), (status = 404, body = crate::web::error::Problem)))]
pub async fn get_asset(
    State(state): State<AppState>,
    _req: Require<ViewSystems>,
    Path(id): Path<i64>,
) -> Result<Json<AssetDetail>, ApiError> {
    let asset = load_asset(&state, id).await?;
    let mut conn = state.db().pool().acquire().await?;
    let operators = store::operators(&mut conn, Some(id), true).await?;
    let flags = service::flags(&state, &mut conn, std::slice::from_ref(&asset))
        .await?
        .remove(&id)
        .unwrap_or_default();
    Ok(Json(AssetDetail {
        asset,
        operators,
        flags,
    }))
}

/// Change an asset; a change of classification needs `classification_reason`
/// and is recorded with it (K3.1).
#[utoipa::path(put, path = "/api/v1/assets/{id}", tag = "assets", params(("id" = i64, Path)), request_body = AssetInput,
    responses((status = 200, body = Asset), (status = 403, body = crate::web::error::Problem), (status = 422, body = crate::web::error::Problem)))]
pub async fn update_asset(
    State(state): State<AppState>,
    req: Require<ManageAssets>,
    Path(id): Path<i64>,
    ApiJson(input): ApiJson<AssetInput>,
) -> Result<Json<Asset>, ApiError> {
    Ok(Json(
        service::update_asset(&state, &req.actor, &req.scope, id, input).await?,
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasonInput {
    pub reason: String,
}

/// Take an asset out of the register; its grants and operators end.
#[utoipa::path(post, path = "/api/v1/assets/{id}/retire", tag = "assets", params(("id" = i64, Path)), request_body = ReasonInput,
    responses((status = 200, body = Asset), (status = 409, body = crate::web::error::Problem)))]
pub async fn retire_asset(
    State(state): State<AppState>,
    req: Require<ManageAssets>,
    Path(id): Path<i64>,
    ApiJson(input): ApiJson<ReasonInput>,
) -> Result<Json<Asset>, ApiError> {
    Ok(Json(
        service::retire_asset(&state, &req.actor, &req.scope, id, &input.reason).await?,
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OperatorInput {
    /// A person who holds the 運用管理者 role today (K18).
    pub person_id: i64,
    pub reason: String,
}

/// Name a 運用管理者 to act for the security manager (K18); only the
/// asset's security manager may. Above the ward's limit the asset is flagged.
#[utoipa::path(post, path = "/api/v1/assets/{id}/operators", tag = "assets", params(("id" = i64, Path)), request_body = OperatorInput,
    responses((status = 201, body = Operator), (status = 403, body = crate::web::error::Problem), (status = 422, body = crate::web::error::Problem)))]
pub async fn name_operator(
    State(state): State<AppState>,
    req: Require<DecideAccess>,
    Path(id): Path<i64>,
    ApiJson(input): ApiJson<OperatorInput>,
) -> Result<(StatusCode, Json<Operator>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(service::name_operator(&state, &req.actor, id, input.person_id, &input.reason).await?),
    ))
}

#[utoipa::path(post, path = "/api/v1/assets/{id}/operators/{op}/end", tag = "assets",
    params(("id" = i64, Path), ("op" = i64, Path)),
    responses((status = 204), (status = 403, body = crate::web::error::Problem)))]
pub async fn end_operator(
    State(state): State<AppState>,
    req: Require<DecideAccess>,
    Path((id, op)): Path<(i64, i64)>,
) -> Result<StatusCode, ApiError> {
    service::end_operator(&state, &req.actor, id, op).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct GrantQuery {
    /// Include grants that have ended.
    #[serde(default)]
    pub ended: bool,
}

/// Grants on an asset.
#[utoipa::path(get, path = "/api/v1/assets/{id}/grants", tag = "access", params(("id" = i64, Path), GrantQuery),
    responses((status = 200, body = Vec<GrantRow>)))]
pub async fn list_grants(
    State(state): State<AppState>,
    req: Require<ViewAccess>,
    Path(id): Path<i64>,
    Query(q): Query<GrantQuery>,
) -> Result<Json<Vec<GrantRow>>, ApiError> {
    let asset = load_asset(&state, id).await?;
    require_owner_in(&state, &req.scope, &asset).await?;
    let mut conn = state.db().pool().acquire().await?;
    Ok(Json(
        store::list_grants(&mut conn, Some(id), None, !q.ended).await?,
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AccessQuery {
    /// RFC 3339 moment; default now.
    #[serde(default)]
    pub at: Option<String>,
    /// Take every grant's conditions as met (who could get in at some
    /// hour, from some terminal).
    #[serde(default)]
    pub any_conditions: bool,
    #[serde(default)]
    pub zone: Option<String>,
    #[serde(default)]
    pub area: Option<String>,
}

fn engine_query(
    model: &Model,
    q: &AccessQuery,
    now: time::OffsetDateTime,
) -> Result<access::Query, AppError> {
    let at = match q.at.as_deref() {
        None => now,
        Some(t) => time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
            .map_err(|_| AppError::Invalid(vec![bad("at", "access.bad_time", t)]))?,
    };
    if q.any_conditions {
        return Ok(access::Query::AnyConditions(at));
    }
    let zone = match q.zone.as_deref() {
        None => None,
        Some(z) => Some(
            z.parse::<NetworkZone>()
                .map_err(|_| AppError::Invalid(vec![bad("zone", "access.unknown_zone", z)]))?,
        ),
    };
    let area = match q.area.as_deref() {
        None => None,
        Some(a) => Some(
            *model
                .area_by_code
                .get(a)
                .ok_or_else(|| AppError::Invalid(vec![bad("area", "access.unknown_area", a)]))?,
        ),
    };
    Ok(access::Query::At(Context { at, zone, area }))
}

/// Someone and what they may do.
#[derive(Debug, Serialize, ToSchema)]
pub struct PersonAccessOut {
    pub person_id: i64,
    pub employee_number: String,
    pub actions: Vec<&'static str>,
}

/// Something and what may be done to it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AssetAccessOut {
    pub asset_id: i64,
    pub asset_code: String,
    pub actions: Vec<&'static str>,
}

/// 棚卸し: who can access this asset, computed by the decision engine.
#[utoipa::path(get, path = "/api/v1/assets/{id}/access", tag = "access", params(("id" = i64, Path), AccessQuery),
    responses((status = 200, body = Vec<PersonAccessOut>)))]
pub async fn who_can_access(
    State(state): State<AppState>,
    req: Require<ViewAccess>,
    Path(id): Path<i64>,
    Query(q): Query<AccessQuery>,
) -> Result<Json<Vec<PersonAccessOut>>, ApiError> {
    let asset = load_asset(&state, id).await?;
    require_owner_in(&state, &req.scope, &asset).await?;
    Ok(Json(who_can(&state, id, &q)?))
}

pub fn who_can(
    state: &AppState,
    id: i64,
    q: &AccessQuery,
) -> Result<Vec<PersonAccessOut>, AppError> {
    let model = state.access().read();
    let query = engine_query(&model, q, state.clock().now())?;
    let list = model
        .engine
        .who_can_access(AssetId(id), &query)
        .map_err(|_| AppError::NotFound("asset"))?;
    Ok(list
        .into_iter()
        .map(|p| PersonAccessOut {
            person_id: p.person.0,
            employee_number: model
                .number_of_person
                .get(&p.person)
                .cloned()
                .unwrap_or_default(),
            actions: p.actions.iter().map(|a| a.code()).collect(),
        })
        .collect())
}

pub fn what_can(
    state: &AppState,
    person: i64,
    q: &AccessQuery,
) -> Result<Vec<AssetAccessOut>, AppError> {
    let model = state.access().read();
    let query = engine_query(&model, q, state.clock().now())?;
    let list = model
        .engine
        .what_can_access(access::PersonId(person), &query)
        .map_err(|_| AppError::NotFound("person"))?;
    Ok(list
        .into_iter()
        .map(|a| AssetAccessOut {
            asset_id: a.asset.0,
            asset_code: model
                .code_of_asset
                .get(&a.asset)
                .cloned()
                .unwrap_or_default(),
            actions: a.actions.iter().map(|x| x.code()).collect(),
        })
        .collect())
}

/// 棚卸し: what this person can access, computed by the decision engine.
#[utoipa::path(get, path = "/api/v1/people/{id}/access", tag = "access", params(("id" = i64, Path), AccessQuery),
    responses((status = 200, body = Vec<AssetAccessOut>)))]
pub async fn what_can_access(
    State(state): State<AppState>,
    req: Require<ViewAccess>,
    Path(id): Path<i64>,
    Query(q): Query<AccessQuery>,
) -> Result<Json<Vec<AssetAccessOut>>, ApiError> {
    let mut conn = state.db().pool().acquire().await?;
    let person = crate::people::store::get_person(&mut conn, PersonId(id))
        .await?
        .ok_or(AppError::NotFound("person"))?;
    crate::org::service::require_in_scope(&mut conn, &req.scope, person.org_unit_id).await?;
    drop(conn);
    Ok(Json(what_can(&state, id, &q)?))
}

// ---------------------------------------------------------------------------
// Requests, grants, reviews

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct RequestQuery {
    /// `pending`, `approved`, `rejected` or `withdrawn`.
    #[serde(default)]
    pub status: Option<String>,
}

/// Requests I filed, and requests on assets I am the security manager of.
#[utoipa::path(get, path = "/api/v1/access-requests", tag = "access", params(RequestQuery),
    responses((status = 200, body = Vec<AccessRequest>)))]
pub async fn list_requests(
    State(state): State<AppState>,
    req: Require<RequestAccess>,
    Query(q): Query<RequestQuery>,
) -> Result<Json<Vec<AccessRequest>>, ApiError> {
    Ok(Json(
        requests_for(&state, req.actor.person_id, q.status.as_deref()).await?,
    ))
}

/// Requests the person filed or must decide, newest first.
pub async fn requests_for(
    state: &AppState,
    me: Option<PersonId>,
    status: Option<&str>,
) -> Result<Vec<AccessRequest>, AppError> {
    let Some(me) = me else { return Ok(vec![]) };
    let scales = scales(state).await?;
    let mut conn = state.db().pool().acquire().await?;
    let mine: Vec<i64> = store::list_assets(&mut conn, &scales, false)
        .await?
        .into_iter()
        .filter(|a| a.security_manager_id == Some(me))
        .map(|a| a.id)
        .collect();
    let mut out = store::list_requests(&mut conn, None, status, Some(me), 200).await?;
    for a in mine {
        for r in store::list_requests(&mut conn, Some(a), status, None, 200).await? {
            if !out.iter().any(|x| x.id == r.id) {
                out.push(r);
            }
        }
    }
    out.sort_by(|a, b| b.id.cmp(&a.id));
    Ok(out)
}

/// Ask for access (K3.2.1); the asset's security manager decides.
#[utoipa::path(post, path = "/api/v1/access-requests", tag = "access", request_body = RequestInput,
    responses((status = 201, body = AccessRequest), (status = 422, body = crate::web::error::Problem)))]
pub async fn request_access(
    State(state): State<AppState>,
    req: Require<RequestAccess>,
    ApiJson(input): ApiJson<RequestInput>,
) -> Result<(StatusCode, Json<AccessRequest>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(service::request_access(&state, &req.actor, &req.scope, input).await?),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionInput {
    pub approve: bool,
    /// Required to reject.
    #[serde(default)]
    pub reason: String,
}

/// The security manager's decision; approval creates the grant in the same
/// transaction.
#[utoipa::path(post, path = "/api/v1/access-requests/{id}/decision", tag = "access", params(("id" = i64, Path)), request_body = DecisionInput,
    responses((status = 200, body = AccessRequest), (status = 403, body = crate::web::error::Problem), (status = 409, body = crate::web::error::Problem)))]
pub async fn decide_request(
    State(state): State<AppState>,
    req: Require<DecideAccess>,
    Path(id): Path<i64>,
    ApiJson(input): ApiJson<DecisionInput>,
) -> Result<Json<AccessRequest>, ApiError> {
    Ok(Json(
        service::decide_request(&state, &req.actor, id, input.approve, &input.reason).await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/access-requests/{id}/withdraw", tag = "access", params(("id" = i64, Path)),
    responses((status = 200, body = AccessRequest), (status = 403, body = crate::web::error::Problem)))]
pub async fn withdraw_request(
    State(state): State<AppState>,
    req: Require<RequestAccess>,
    Path(id): Path<i64>,
) -> Result<Json<AccessRequest>, ApiError> {
    Ok(Json(
        service::withdraw_request(&state, &req.actor, id).await?,
    ))
}

/// End a grant before its time (the asset's security manager).
#[utoipa::path(post, path = "/api/v1/grants/{id}/end", tag = "access", params(("id" = i64, Path)), request_body = ReasonInput,
    responses((status = 200, body = GrantRow), (status = 403, body = crate::web::error::Problem)))]
pub async fn end_grant(
    State(state): State<AppState>,
    req: Require<DecideAccess>,
    Path(id): Path<i64>,
    ApiJson(input): ApiJson<ReasonInput>,
) -> Result<Json<GrantRow>, ApiError> {
    Ok(Json(
        service::revoke_grant(&state, &req.actor, id, &input.reason).await?,
    ))
}

/// Start an access review (棚卸し): every current grant becomes an item.
#[utoipa::path(post, path = "/api/v1/assets/{id}/reviews", tag = "access", params(("id" = i64, Path)),
    responses((status = 201, body = Review), (status = 409, body = crate::web::error::Problem)))]
pub async fn start_review(
    State(state): State<AppState>,
    req: Require<DecideAccess>,
    Path(id): Path<i64>,
) -> Result<(StatusCode, Json<Review>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(service::start_review(&state, &req.actor, id).await?),
    ))
}

#[utoipa::path(get, path = "/api/v1/access-reviews/{id}", tag = "access", params(("id" = i64, Path)),
    responses((status = 200, body = Review), (status = 404, body = crate::web::error::Problem)))]
pub async fn get_review(
    State(state): State<AppState>,
    req: Require<ViewAccess>,
    Path(id): Path<i64>,
) -> Result<Json<Review>, ApiError> {
    let review = {
        let mut conn = state.db().pool().acquire().await?;
        store::get_review(&mut conn, id)
            .await?
            .ok_or(AppError::NotFound("review"))?
    };
    let asset = load_asset(&state, review.asset_id).await?;
    require_owner_in(&state, &req.scope, &asset).await?;
    Ok(Json(review))
}

/// Confirm or remove one grant of an open review.
#[utoipa::path(post, path = "/api/v1/access-reviews/{id}/items", tag = "access", params(("id" = i64, Path)), request_body = ReviewDecision,
    responses((status = 200, body = Review), (status = 422, body = crate::web::error::Problem)))]
pub async fn decide_item(
    State(state): State<AppState>,
    req: Require<DecideAccess>,
    Path(id): Path<i64>,
    ApiJson(input): ApiJson<ReviewDecision>,
) -> Result<Json<Review>, ApiError> {
    Ok(Json(
        service::decide_review_item(&state, &req.actor, id, input).await?,
    ))
}

/// Close a review whose every item is decided; removed grants end and one
/// record keeps the review as evidence.
#[utoipa::path(post, path = "/api/v1/access-reviews/{id}/complete", tag = "access", params(("id" = i64, Path)),
    responses((status = 200, body = Review), (status = 422, body = crate::web::error::Problem)))]
pub async fn complete_review(
    State(state): State<AppState>,
    req: Require<DecideAccess>,
    Path(id): Path<i64>,
) -> Result<Json<Review>, ApiError> {
    Ok(Json(
        service::complete_review(&state, &req.actor, id).await?,
    ))
}

// ---------------------------------------------------------------------------
// Scales and areas

/// The classification scales by axis, with their national mappings.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScalesOut {
    pub confidentiality: Vec<Level>,
    pub integrity: Vec<Level>,
    pub availability: Vec<Level>,
}

#[utoipa::path(get, path = "/api/v1/classification-scales", tag = "assets", responses((status = 200, body = ScalesOut)))]
pub async fn get_scales(
    State(state): State<AppState>,
    _req: Require<ViewSystems>,
) -> Result<Json<ScalesOut>, ApiError> {
    let s = scales(&state).await?;
    let axis = |a: &str| s.axis(a).into_iter().cloned().collect();
    Ok(Json(ScalesOut {
        confidentiality: axis("confidentiality"),
        integrity: axis("integrity"),
        availability: axis("availability"),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScaleInput {
    pub levels: Vec<Level>,
}

/// Replace an axis's levels (`confidentiality`, `integrity`, `availability`).
/// A level in use cannot be removed or change whether it is secret.
#[utoipa::path(put, path = "/api/v1/classification-scales/{axis}", tag = "assets", params(("axis" = String, Path)), request_body = ScaleInput,
    responses((status = 200, body = Vec<Level>), (status = 422, body = crate::web::error::Problem)))]
pub async fn put_scale(
    State(state): State<AppState>,
    req: Require<ManageSettings>,
    Path(axis): Path<String>,
    ApiJson(input): ApiJson<ScaleInput>,
) -> Result<Json<Vec<Level>>, ApiError> {
    Ok(Json(
        service::set_scale(&state, &req.actor, &axis, input.levels).await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/managed-areas", tag = "assets", responses((status = 200, body = Vec<ManagedArea>)))]
pub async fn list_areas(
    State(state): State<AppState>,
    _req: Require<ViewSystems>,
) -> Result<Json<Vec<ManagedArea>>, ApiError> {
    let mut conn = state.db().pool().acquire().await?;
    Ok(Json(store::areas(&mut conn).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AreaInput {
    pub code: String,
    pub name: String,
}

/// Register a managed area (管理区域, K5) grant conditions can name.
#[utoipa::path(post, path = "/api/v1/managed-areas", tag = "assets", request_body = AreaInput,
    responses((status = 201, body = ManagedArea), (status = 422, body = crate::web::error::Problem)))]
pub async fn create_area(
    State(state): State<AppState>,
    req: Require<ManageSettings>,
    ApiJson(input): ApiJson<AreaInput>,
) -> Result<(StatusCode, Json<ManagedArea>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(service::create_area(&state, &req.actor, &input.code, &input.name).await?),
    ))
}
