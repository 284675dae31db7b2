//! JSON API of the compliance checks: the latest result of every check, one
//! check with its history, and a run on demand.

use super::{CheckStatus, RunPoint, RunSummary, Trigger};
use crate::app::{AppState, Routes};
use crate::auth::perm::{RunChecks, ViewCompliance};
use crate::auth::Require;
use crate::web::error::{ApiError, AppError};
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

pub fn routes(r: Routes) -> Routes {
    r.get("/api/v1/compliance/checks", list)
        .get("/api/v1/compliance/checks/{id}", get)
        .post("/api/v1/compliance/runs", run)
}

#[derive(OpenApi)]
#[openapi(
    paths(list, get, run),
    components(schemas(CheckStatus, RunPoint, RunSummary, CheckList, CheckDetail, super::CheckItem)),
    tags((name = "compliance", description = "automatic compliance checks from live data, on a schedule and on demand, with their history (Y8, K29, K32)"))
)]
pub struct ApiDoc;

#[derive(Debug, Serialize, ToSchema)]
pub struct CheckList {
    /// The latest run, if any.
    pub run: Option<RunSummary>,
    pub checks: Vec<CheckStatus>,
}

/// The latest result of every check.
#[utoipa::path(get, path = "/api/v1/compliance/checks", tag = "compliance",
    responses((status = 200, body = CheckList)))]
pub async fn list(
    State(state): State<AppState>,
    _req: Require<ViewCompliance>,
) -> Result<Json<CheckList>, ApiError> {
    let mut conn = state.db().pool().acquire().await.map_err(AppError::from)?;
    let run = super::store::last_run(&mut conn).await.map_err(AppError::from)?;
    let checks = super::latest(&mut conn).await?;
    Ok(Json(CheckList { run, checks }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CheckDetail {
    #[serde(flatten)]
    pub check: CheckStatus,
    /// The last results, oldest first (at most 200).
    pub history: Vec<RunPoint>,
}

/// One check: its latest items, since when it fails, and its history.
#[utoipa::path(get, path = "/api/v1/compliance/checks/{id}", tag = "compliance",
    params(("id" = String, Path, description = "check id, e.g. `k17.3.departed-accounts`")),
    responses((status = 200, body = CheckDetail), (status = 404, body = crate::web::error::Problem)))]
pub async fn get(
    State(state): State<AppState>,
    _req: Require<ViewCompliance>,
    Path(id): Path<String>,
) -> Result<Json<CheckDetail>, ApiError> {
    Ok(Json(detail(&state, &id).await?))
}

pub(crate) async fn detail(state: &AppState, id: &str) -> Result<CheckDetail, AppError> {
    let def = super::def(id).ok_or(AppError::NotFound("check"))?;
    let mut conn = state.db().pool().acquire().await?;
    let check = super::latest(&mut conn)
        .await?
        .into_iter()
        .find(|c| c.id == def.id)
        .ok_or(AppError::NotFound("check"))?;
    let history = super::history(&mut conn, def.id, 200).await?;
    Ok(CheckDetail { check, history })
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RunCreated {
    pub id: i64,
    pub passed: i64,
    pub failed: i64,
}

/// Run every check now (they also run every
/// `compliance.check_interval_minutes`). The run is a `compliance.run` record.
#[utoipa::path(post, path = "/api/v1/compliance/runs", tag = "compliance",
    responses((status = 201, body = RunSummary)))]
pub async fn run(
    State(state): State<AppState>,
    req: Require<RunChecks>,
) -> Result<Response, ApiError> {
    let id = super::run_all_as(
        &state,
        Trigger::Demand,
        &req.actor.who(),
        req.actor.person_id.map(|p| p.0),
    )
    .await?;
    let mut conn = state.db().pool().acquire().await.map_err(AppError::from)?;
    let run = super::store::last_run(&mut conn)
        .await
        .map_err(AppError::from)?
        .filter(|r| r.id == id)
        .ok_or(AppError::NotFound("run"))?;
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, "/api/v1/compliance/checks".to_string())],
        Json(run),
    )
        .into_response())
}
