//! JSON routes of the policy catalog, its versions and reviews.

use super::service::{
    self, CatalogView, ClauseDetail, ControlsView, ReviewInput, ReviewView, VersionView,
};
use crate::app::{AppState, Routes};
use crate::auth::perm::{RecordPolicyReview, ViewCatalog};
use crate::auth::Require;
use crate::web::error::ApiError;
use crate::web::json::ApiJson;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;

pub fn routes(r: Routes) -> Routes {
    r.get("/api/v1/catalog", get_catalog)
        .get("/api/v1/catalog/clauses/{id}", get_clause)
        .get("/api/v1/catalog/controls", get_controls)
        .get("/api/v1/policy/versions", get_versions)
        .get("/api/v1/policy/reviews", list_reviews)
        .post("/api/v1/policy/reviews", record_review)
}

/// The catalog on a date (today by default): every clause of the preface,
/// the 要綱 and the 基準 with its Japanese text, English gist and controls,
/// grouped by document and article, and the version in force that day.
#[utoipa::path(get, path = "/api/v1/catalog", tag = "catalog",
    params(("date" = Option<String>, Query, description = "YYYY-MM-DD or 和暦 (令和8年11月28日); a malformed date is a 422 naming `date`")),
    responses((status = 200, body = CatalogView), (status = 422, body = crate::web::error::Problem)))]
pub async fn get_catalog(
    State(state): State<AppState>,
    _req: Require<ViewCatalog>,
    RawQuery(q): RawQuery,
) -> Result<Json<CatalogView>, ApiError> {
    let date = service::date_param(q.as_deref())?;
    Ok(Json(service::catalog_on(&state, date).await?))
}

/// One clause (e.g. `K17.3`): its text, gist, controls (own and from the
/// clauses above it), its parts, and the reviews that named it. Unknown
/// or malformed ids are a 404.
#[utoipa::path(get, path = "/api/v1/catalog/clauses/{id}", tag = "catalog",
    params(("id" = String, Path, description = "clause id, e.g. K17.3 (SPEC §2)")),
    responses((status = 200, body = ClauseDetail), (status = 404, body = crate::web::error::Problem)))]
pub async fn get_clause(
    State(state): State<AppState>,
    _req: Require<ViewCatalog>,
    Path(id): Path<String>,
) -> Result<Json<ClauseDetail>, ApiError> {
    Ok(Json(service::clause_detail(&state, &id).await?))
}

/// The clause → control mapping with counts per kind; `kind` filters
/// (`enforced`, `checked`, `procedural`, `not_applicable`).
#[utoipa::path(get, path = "/api/v1/catalog/controls", tag = "catalog",
    params(("kind" = Option<String>, Query, description = "enforced | checked | procedural | not_applicable")),
    responses((status = 200, body = ControlsView), (status = 422, body = crate::web::error::Problem)))]
pub async fn get_controls(
    _req: Require<ViewCatalog>,
    RawQuery(q): RawQuery,
) -> Result<Json<ControlsView>, ApiError> {
    let kind = service::query_value(q.as_deref(), "kind");
    Ok(Json(service::controls(kind.as_deref())?))
}

/// The policy's versions and the one in force on a date.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct VersionsView {
    /// `YYYY-MM-DD`.
    pub date: String,
    pub in_force: Option<VersionView>,
    /// Oldest first: the 付則 of the 要綱 and 基準, then those reviews added.
    pub versions: Vec<VersionView>,
}

/// Every version (from the 付則 and from reviews) and the one in force on
/// `date` (today by default).
#[utoipa::path(get, path = "/api/v1/policy/versions", tag = "catalog",
    params(("date" = Option<String>, Query, description = "YYYY-MM-DD or 和暦")),
    responses((status = 200, body = VersionsView), (status = 422, body = crate::web::error::Problem)))]
pub async fn get_versions(
    State(state): State<AppState>,
    _req: Require<ViewCatalog>,
    RawQuery(q): RawQuery,
) -> Result<Json<VersionsView>, ApiError> {
    let date = service::date_param(q.as_deref())?.unwrap_or_else(|| state.clock().today());
    let versions = service::versions(&state).await?;
    Ok(Json(VersionsView {
        date: crate::clock::date_str(date),
        in_force: service::version_on(&versions, date).cloned(),
        versions,
    }))
}

/// Reviews of the policy (Y10, K34), newest first.
#[utoipa::path(get, path = "/api/v1/policy/reviews", tag = "catalog",
    responses((status = 200, body = Vec<ReviewView>)))]
pub async fn list_reviews(
    State(state): State<AppState>,
    _req: Require<ViewCatalog>,
) -> Result<Json<Vec<ReviewView>>, ApiError> {
    Ok(Json(service::reviews(&state).await?))
}

/// Record a review (セキュリティ統括者 or CIO). `outcome` `amended` also adds
/// the version it produces (`version_label`, `effective_on`).
#[utoipa::path(post, path = "/api/v1/policy/reviews", tag = "catalog", request_body = ReviewInput,
    responses((status = 201, body = ReviewView), (status = 422, body = crate::web::error::Problem)))]
pub async fn record_review(
    State(state): State<AppState>,
    req: Require<RecordPolicyReview>,
    ApiJson(input): ApiJson<ReviewInput>,
) -> Result<(StatusCode, Json<ReviewView>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(service::record_review(&state, &req.actor, &input).await?),
    ))
}
