//! Pages of the policy catalog: every clause grouped by document and
//! article with its controls (on a date), one clause, the whole control
//! mapping with counts per kind, and the versions with the review form.

use super::service::{self, ReviewInput};
use crate::app::{AppState, Routes};
use crate::auth::perm::{RecordPolicyReview, ViewCatalog};
use crate::auth::{Actor, Require};
use crate::org::pages::{form_errors, NoticeQuery};
use crate::web::csrf::CsrfForm;
use crate::web::error::{AppError, FieldError, PageError};
use crate::web::templates::{render, Chrome};
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use mamori_policy::permission::Action;
use serde_json::{json, Value};

pub fn routes(r: Routes) -> Routes {
    r.get("/catalog", catalog_page)
        .get("/catalog/controls", controls_page)
        .get("/catalog/{id}", clause_page)
        .get("/policy/versions", versions_page)
        .post("/policy/reviews", review_submit)
}

/// The message of the first error about `field`, for a page.
fn first_message(errors: &[FieldError]) -> Option<String> {
    errors.first().map(|e| e.message.clone())
}

async fn catalog_page(
    State(state): State<AppState>,
    req: Require<ViewCatalog>,
    RawQuery(q): RawQuery,
) -> Result<Response, PageError> {
    let typed = service::query_value(q.as_deref(), "date").unwrap_or_default();
    let (date, error, status) = match service::date_param(q.as_deref()) {
        Ok(d) => (d, None, StatusCode::OK),
        Err(AppError::Invalid(e)) => (None, first_message(&e), StatusCode::UNPROCESSABLE_ENTITY),
        Err(e) => return Err(e.into()),
    };
    let view = service::catalog_on(&state, date).await?;
    let html = render(
        "catalog.html",
        &Chrome::for_actor(&req.actor),
        json!({ "c": view, "typed_date": typed, "date_error": error }),
    )?;
    Ok((status, html).into_response())
}

async fn controls_page(
    req: Require<ViewCatalog>,
    RawQuery(q): RawQuery,
) -> Result<Response, PageError> {
    let kind = service::query_value(q.as_deref(), "kind");
    let (view, error, status) = match service::controls(kind.as_deref()) {
        Ok(v) => (v, None, StatusCode::OK),
        Err(AppError::Invalid(e)) => (
            service::controls(None)?,
            first_message(&e),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        Err(e) => return Err(e.into()),
    };
    let html = render(
        "catalog_controls.html",
        &Chrome::for_actor(&req.actor),
        json!({ "m": view, "kind_error": error }),
    )?;
    Ok((status, html).into_response())
}

async fn clause_page(
    State(state): State<AppState>,
    req: Require<ViewCatalog>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let detail = service::clause_detail(&state, &id).await?;
    let html = render(
        "catalog_clause.html",
        &Chrome::for_actor(&req.actor),
        json!({ "d": detail }),
    )?;
    Ok(html.into_response())
}

async fn versions_page(
    State(state): State<AppState>,
    req: Require<ViewCatalog>,
    RawQuery(q): RawQuery,
) -> Result<Response, PageError> {
    // Read from the raw query so an undecodable one is refused by name below.
    let n = NoticeQuery {
        done: service::query_value(q.as_deref(), "done"),
        count: None,
    };
    let typed = service::query_value(q.as_deref(), "date").unwrap_or_default();
    let (date, error, status) = match service::date_param(q.as_deref()) {
        Ok(d) => (d, None, StatusCode::OK),
        Err(AppError::Invalid(e)) => (None, first_message(&e), StatusCode::UNPROCESSABLE_ENTITY),
        Err(e) => return Err(e.into()),
    };
    let notice = n.notice(&[("recorded", "catalog.done.recorded")]);
    render_versions(
        &state,
        &req.actor,
        VersionsCtx {
            date,
            typed_date: typed,
            date_error: error,
            notice,
            typed: json!({}),
            errors: vec![],
        },
        status,
    )
    .await
}

struct VersionsCtx {
    date: Option<time::Date>,
    typed_date: String,
    date_error: Option<String>,
    notice: Option<&'static str>,
    typed: Value,
    errors: Vec<FieldError>,
}

async fn render_versions(
    state: &AppState,
    actor: &Actor,
    ctx: VersionsCtx,
    status: StatusCode,
) -> Result<Response, PageError> {
    let versions = service::versions(state).await?;
    let date = ctx.date.unwrap_or_else(|| state.clock().today());
    let in_force = service::version_on(&versions, date).cloned();
    let reviews = service::reviews(state).await?;
    let html = render(
        "policy_versions.html",
        &Chrome::for_actor(actor),
        json!({
            "versions": versions,
            "date": crate::clock::date_str(date),
            "in_force": in_force,
            "typed_date": ctx.typed_date,
            "date_error": ctx.date_error,
            "reviews": reviews,
            "notice": ctx.notice,
            "may_record": actor.scope(Action::RecordPolicyReview).is_some(),
            "today": crate::clock::date_str(state.clock().today()),
            "typed": ctx.typed,
            "errors": form_errors(
                &ctx.errors,
                &["reviewed_on", "summary", "clauses", "outcome", "version_label", "effective_on"],
                "review-",
            ),
        }),
    )?;
    Ok((status, html).into_response())
}

async fn review_submit(
    State(state): State<AppState>,
    req: Require<RecordPolicyReview>,
    CsrfForm(f): CsrfForm<serde_json::Map<String, Value>>,
) -> Result<Response, PageError> {
    let mut fields = f;
    fields.remove("csrf");
    let typed = Value::Object(fields.clone());
    let input: Result<ReviewInput, AppError> = serde_json::from_value(Value::Object(fields))
        .map_err(|e| AppError::invalid("form", "error.form_fields", &[("detail", e.to_string())]));
    let outcome = match input {
        Ok(input) => service::record_review(&state, &req.actor, &input).await,
        Err(e) => Err(e),
    };
    match outcome {
        Ok(_) => Ok(Redirect::to("/policy/versions?done=recorded").into_response()),
        Err(AppError::Invalid(errors)) => {
            render_versions(
                &state,
                &req.actor,
                VersionsCtx {
                    date: None,
                    typed_date: String::new(),
                    date_error: None,
                    notice: None,
                    typed,
                    errors,
                },
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}
