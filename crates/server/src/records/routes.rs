//! Reading the records back (API and page).

use super::store::{self, Filter, StoredRecord};
use crate::app::{AppState, Routes};
use crate::auth::perm::ViewRecords;
use crate::auth::Require;
use crate::web::error::{ApiError, PageError};
use crate::web::templates::{render, Chrome};
use axum::extract::{Query, State};
use axum::response::Html;
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;

pub fn routes(r: Routes) -> Routes {
    r.get("/api/v1/records", list).get("/records", page)
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct RecordQuery {
    /// e.g. `person:12`.
    #[serde(default)]
    pub actor: Option<String>,
    /// e.g. `account:12`.
    #[serde(default)]
    pub target: Option<String>,
    /// Prefix of the action, e.g. `auth.`.
    #[serde(default)]
    pub action: Option<String>,
    /// Only records before this index (for paging back).
    #[serde(default)]
    pub before: Option<i64>,
    #[serde(default)]
    pub limit: Option<i64>,
}

fn filter(q: &RecordQuery) -> Filter {
    let clean = |s: &Option<String>| {
        s.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.chars().take(100).collect())
    };
    Filter {
        actor: clean(&q.actor),
        target: clean(&q.target),
        action_prefix: clean(&q.action),
        before: q.before,
        limit: q.limit.unwrap_or(100),
    }
}

/// Records of what Mamori did, newest first (K16.2).
#[utoipa::path(get, path = "/api/v1/records", tag = "records", params(RecordQuery), responses((status = 200, body = Vec<StoredRecord>)))]
pub async fn list(
    State(state): State<AppState>,
    _req: Require<ViewRecords>,
    Query(q): Query<RecordQuery>,
) -> Result<Json<Vec<StoredRecord>>, ApiError> {
    let mut conn = state.db().pool().acquire().await?;
    Ok(Json(store::list(&mut conn, &filter(&q)).await?))
}

pub async fn page(
    State(state): State<AppState>,
    req: Require<ViewRecords>,
    Query(q): Query<RecordQuery>,
) -> Result<Html<String>, PageError> {
    let mut conn = state.db().pool().acquire().await?;
    let records = store::list(&mut conn, &filter(&q)).await?;
    let total = store::count(&mut conn).await?;
    let next_before = records.last().map(|r| r.index);
    Ok(render(
        "records.html",
        &Chrome::for_actor(&req.actor),
        serde_json::json!({
            "records": records.iter().map(|r| serde_json::json!({
                "index": r.index, "time": crate::clock::format_unix(r.time_us / 1_000_000), "actor": r.actor,
                "action": r.action, "target": r.target, "result": r.result, "clause": r.clause,
                "source_ip": r.source_ip, "detail": r.detail.to_string(),
            })).collect::<Vec<_>>(),
            "total": total, "next_before": next_before,
            "q": { "actor": q.actor, "target": q.target, "action": q.action },
        }),
    )?)
}
