//! JSON API for org units, role assignments, reporting chains, approvers, systems.

use super::service::{self, AssignInput, UnitInput};
use super::{store, ChainStep, OrgUnit, RoleAssignment, System};
use crate::app::{AppState, Routes};
use crate::auth::perm::{AssignRoles, EditOrg, ViewOrg, ViewSystems};
use crate::auth::Require;
use crate::clock::date_str;
use crate::ids::{OrgUnitId, PersonId, RoleAssignmentId};
use crate::web::error::{ApiError, AppError};
use crate::web::json::ApiJson;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

pub fn routes(r: Routes) -> Routes {
    r.get("/api/v1/org-units", list_units)
        .post("/api/v1/org-units", create_unit)
        .get("/api/v1/org-units/{id}", get_unit)
        .put("/api/v1/org-units/{id}", update_unit)
        .get("/api/v1/role-assignments", list_assignments)
        .post("/api/v1/role-assignments", assign)
        .post("/api/v1/role-assignments/{id}/end", end_assignment)
        .get("/api/v1/people/{id}/reporting-chain", chain)
        .get("/api/v1/approver", approver)
        .get("/api/v1/systems", list_systems)
}

/// The org-unit tree as a flat list (each with its parent).
#[utoipa::path(get, path = "/api/v1/org-units", tag = "org", responses((status = 200, body = Vec<OrgUnit>)))]
pub async fn list_units(
    State(state): State<AppState>,
    _req: Require<ViewOrg>,
) -> Result<Json<Vec<OrgUnit>>, ApiError> {
    let mut conn = state.db().pool().acquire().await?;
    Ok(Json(store::list_units(&mut conn).await?))
}

#[utoipa::path(post, path = "/api/v1/org-units", tag = "org", request_body = UnitInput,
    responses((status = 201, body = OrgUnit), (status = 422, body = crate::web::error::Problem)))]
pub async fn create_unit(
    State(state): State<AppState>,
    req: Require<EditOrg>,
    ApiJson(input): ApiJson<UnitInput>,
) -> Result<(StatusCode, Json<OrgUnit>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(service::create_unit(&state, &req.actor, input).await?),
    ))
}

#[utoipa::path(get, path = "/api/v1/org-units/{id}", tag = "org", params(("id" = i64, Path)),
    responses((status = 200, body = OrgUnit), (status = 404, body = crate::web::error::Problem)))]
pub async fn get_unit(
    State(state): State<AppState>,
    _req: Require<ViewOrg>,
    Path(id): Path<i64>,
) -> Result<Json<OrgUnit>, ApiError> {
    let mut conn = state.db().pool().acquire().await?;
    Ok(Json(
        store::get_unit(&mut conn, OrgUnitId(id))
            .await?
            .ok_or(AppError::NotFound("org_unit"))?,
    ))
}

/// Change a unit (rename, move, end its validity). History is in the records.
#[utoipa::path(put, path = "/api/v1/org-units/{id}", tag = "org", params(("id" = i64, Path)), request_body = UnitInput,
    responses((status = 200, body = OrgUnit), (status = 422, body = crate::web::error::Problem)))]
pub async fn update_unit(
    State(state): State<AppState>,
    req: Require<EditOrg>,
    Path(id): Path<i64>,
    ApiJson(input): ApiJson<UnitInput>,
) -> Result<Json<OrgUnit>, ApiError> {
    Ok(Json(
        service::update_unit(&state, &req.actor, OrgUnitId(id), input).await?,
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AssignmentQuery {
    pub person_id: Option<i64>,
    pub org_unit_id: Option<i64>,
    /// Only assignments valid today.
    #[serde(default)]
    pub current: bool,
}

#[utoipa::path(get, path = "/api/v1/role-assignments", tag = "org", params(AssignmentQuery), responses((status = 200, body = Vec<RoleAssignment>)))]
pub async fn list_assignments(
    State(state): State<AppState>,
    _req: Require<ViewOrg>,
    Query(q): Query<AssignmentQuery>,
) -> Result<Json<Vec<RoleAssignment>>, ApiError> {
    let today = date_str(state.clock().today());
    let mut conn = state.db().pool().acquire().await?;
    let list = store::list_assignments(
        &mut conn,
        q.person_id.map(PersonId),
        q.org_unit_id.map(OrgUnitId),
        q.current.then_some(today.as_str()),
    )
    .await?;
    Ok(Json(list))
}

/// Assign a role (Y4, K8, K18, K30.2). Managers assign 情報化推進リーダー,
/// 運用管理者 and 指名閲覧者 in their unit; the セキュリティ総括管理者 any role.
#[utoipa::path(post, path = "/api/v1/role-assignments", tag = "org", request_body = AssignInput,
    responses((status = 201, body = RoleAssignment), (status = 403, body = crate::web::error::Problem), (status = 422, body = crate::web::error::Problem)))]
pub async fn assign(
    State(state): State<AppState>,
    req: Require<AssignRoles>,
    ApiJson(input): ApiJson<AssignInput>,
) -> Result<(StatusCode, Json<RoleAssignment>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(service::assign_role(&state, &req.actor, &req.scope, input).await?),
    ))
}

#[derive(Debug, Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct EndInput {
    /// Last day the role holds (default: yesterday).
    #[serde(default)]
    pub valid_to: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/role-assignments/{id}/end", tag = "org", params(("id" = i64, Path)), request_body = EndInput,
    responses((status = 200, body = RoleAssignment), (status = 403, body = crate::web::error::Problem)))]
pub async fn end_assignment(
    State(state): State<AppState>,
    req: Require<AssignRoles>,
    Path(id): Path<i64>,
    ApiJson(input): ApiJson<EndInput>,
) -> Result<Json<RoleAssignment>, ApiError> {
    Ok(Json(
        service::end_role(
            &state,
            &req.actor,
            &req.scope,
            RoleAssignmentId(id),
            input.valid_to.as_deref(),
        )
        .await?,
    ))
}

/// A person's reporting chain (K10.1–3): security manager, セキュリティ統括者, CIO.
#[utoipa::path(get, path = "/api/v1/people/{id}/reporting-chain", tag = "org", params(("id" = i64, Path)),
    responses((status = 200, body = Vec<ChainStep>), (status = 404, body = crate::web::error::Problem)))]
pub async fn chain(
    State(state): State<AppState>,
    _req: Require<ViewOrg>,
    Path(id): Path<i64>,
) -> Result<Json<Vec<ChainStep>>, ApiError> {
    let today = date_str(state.clock().today());
    let mut conn = state.db().pool().acquire().await?;
    let person = crate::people::store::get_person(&mut conn, PersonId(id))
        .await?
        .ok_or(AppError::NotFound("person"))?;
    Ok(Json(
        service::reporting_chain(&mut conn, person.org_unit_id, &today).await?,
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ApproverQuery {
    /// The clause the request is made under, e.g. `K12.1.3`, `K13.3`, `K20`.
    pub clause: String,
    pub org_unit_id: i64,
}

/// Who approves a request under a clause from a unit (SPEC §3.7). K13.3's
/// 「セキュリティ総括者」 is read as the セキュリティ総括管理者 by default (SPEC §2).
#[utoipa::path(get, path = "/api/v1/approver", tag = "org", params(ApproverQuery),
    responses((status = 200, body = ChainStep), (status = 422, body = crate::web::error::Problem)))]
pub async fn approver(
    State(state): State<AppState>,
    _req: Require<ViewOrg>,
    Query(q): Query<ApproverQuery>,
) -> Result<Json<ChainStep>, ApiError> {
    if q.clause.parse::<mamori_policy::ClauseId>().is_err() {
        return Err(AppError::invalid("clause", "org.bad_clause", &[]).into());
    }
    let today = date_str(state.clock().today());
    let mut conn = state.db().pool().acquire().await?;
    if store::get_unit(&mut conn, OrgUnitId(q.org_unit_id))
        .await?
        .is_none()
    {
        return Err(AppError::invalid("org_unit_id", "org.no_such_unit", &[]).into());
    }
    let readings = mamori_policy::role::Readings::default();
    service::approver(
        &mut conn,
        &q.clause,
        OrgUnitId(q.org_unit_id),
        &today,
        &readings,
    )
    .await?
    .map(Json)
    .ok_or_else(|| AppError::invalid("clause", "org.no_approval_clause", &[]).into())
}

#[utoipa::path(get, path = "/api/v1/systems", tag = "org", responses((status = 200, body = Vec<System>)))]
pub async fn list_systems(
    State(state): State<AppState>,
    _req: Require<ViewSystems>,
) -> Result<Json<Vec<System>>, ApiError> {
    let mut conn = state.db().pool().acquire().await?;
    Ok(Json(store::list_systems(&mut conn).await?))
}
