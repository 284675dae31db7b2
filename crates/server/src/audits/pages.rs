//! Pages of external audits (K32.2): the audits with the order form and the
//! overdue findings; an audit's page with its auditor accounts, findings and
//! the forms of the 統括者; the findings (mine, or all) and a finding's page
//! with its follow-up. A form that does not go through re-renders with what
//! was typed and the message naming the field.

use super::api::{finding_filter, FindingQuery};
use super::service::{self, AuditInput, AuditorInput, EntryInput, FindingInput, NewAuditor};
use super::{ENTRY_KINDS, SEVERITIES};
use crate::app::{AppState, Routes};
use crate::auth::perm::{FollowUpFindings, ManageAudits, ReadFindings, ViewAudits};
use crate::auth::{Actor, Require};
use crate::incidents::api::path_id;
use crate::org::pages::{form_errors, NoticeQuery};
use crate::web::csrf::CsrfForm;
use crate::web::error::{AppError, FieldError, PageError};
use crate::web::i18n;
use crate::web::templates::{render, Chrome};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use mamori_policy::permission::Action;
use serde_json::{json, Value};

pub fn routes(r: Routes) -> Routes {
    r.get("/audits", audits_page)
        .post("/audits", create_submit)
        .get("/audits/{id}", audit_page)
        .post("/audits/{id}", update_submit)
        .post("/audits/{id}/close", close_submit)
        .post("/audits/{id}/auditors", auditor_submit)
        .post("/audits/{id}/findings", finding_submit)
        .get("/findings", findings_page)
        .get("/findings/{id}", finding_page)
        .post("/findings/{id}/entries", entry_submit)
}

/// A form that did not go through: which one, what was typed, what is wrong.
struct Failed {
    form: &'static str,
    typed: Value,
    errors: Vec<FieldError>,
}

impl Failed {
    fn from(
        form: &'static str,
        typed: Value,
        e: AppError,
    ) -> Result<(Failed, StatusCode), AppError> {
        let (errors, status) = match e {
            AppError::Invalid(errors) => (errors, StatusCode::UNPROCESSABLE_ENTITY),
            AppError::Conflict(code) => (
                vec![FieldError::new("form", code, &[])],
                StatusCode::CONFLICT,
            ),
            other => return Err(other),
        };
        Ok((
            Failed {
                form,
                typed,
                errors,
            },
            status,
        ))
    }
}

fn failed_ctx(failed: &Option<Failed>, fields: &[&str]) -> (String, Value, Value) {
    match failed {
        Some(f) => (
            f.form.to_string(),
            f.typed.clone(),
            form_errors(&f.errors, fields, &format!("{}-", f.form)),
        ),
        None => (String::new(), json!({}), form_errors(&[], fields, "")),
    }
}

fn options(prefix: &str, codes: &[&str]) -> Vec<Value> {
    codes
        .iter()
        .map(|c| json!({ "code": c, "label": i18n::t(i18n::current(), &format!("{prefix}.{c}"), &[]) }))
        .collect()
}

/// A form's fields (without its CSRF token) as the input the API takes.
fn form_fields<T: serde::de::DeserializeOwned>(
    mut f: serde_json::Map<String, Value>,
) -> Result<T, AppError> {
    f.remove("csrf");
    serde_json::from_value(Value::Object(f))
        .map_err(|e| AppError::invalid("form", "error.form_fields", &[("detail", e.to_string())]))
}

const AUDIT_FIELDS: &[&str] = &[
    "title",
    "scope",
    "auditor_org",
    "starts_on",
    "ends_on",
    "form",
];
const FINDING_FIELDS: &[&str] = &[
    "title",
    "description",
    "severity",
    "clauses",
    "owner",
    "due_on",
    "form",
];

// ---------------------------------------------------------------------------
// Audits

async fn audits_page(
    State(state): State<AppState>,
    req: Require<ViewAudits>,
    Query(n): Query<NoticeQuery>,
) -> Result<Response, PageError> {
    let notice = n.notice(&[("closed", "audit.done.closed")]);
    render_audits(&state, &req.actor, None, notice, StatusCode::OK).await
}

async fn render_audits(
    state: &AppState,
    actor: &Actor,
    failed: Option<Failed>,
    notice: Option<&str>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let audits = service::list_audits(state).await?;
    let overdue = service::list_findings(
        state,
        actor,
        super::store::FindingFilter {
            overdue_only: true,
            ..Default::default()
        },
    )
    .await?;
    let (form, typed, errors) = failed_ctx(&failed, AUDIT_FIELDS);
    let html = render(
        "audits.html",
        &Chrome::for_actor(actor),
        json!({
            "audits": audits, "overdue": overdue, "notice": notice,
            "may_manage": actor.scope(Action::ManageAudits).is_some(),
            "failed_form": form, "typed": typed, "errors": errors,
        }),
    )?;
    Ok((status, html).into_response())
}

async fn create_submit(
    State(state): State<AppState>,
    req: Require<ManageAudits>,
    CsrfForm(f): CsrfForm<serde_json::Map<String, Value>>,
) -> Result<Response, PageError> {
    let typed = Value::Object(f.clone());
    let outcome = match form_fields::<AuditInput>(f) {
        Ok(input) => service::create_audit(&state, &req.actor, &input).await,
        Err(e) => Err(e),
    };
    match outcome {
        Ok(id) => Ok(Redirect::to(&format!("/audits/{id}?done=ordered")).into_response()),
        Err(e) => {
            let (failed, status) = Failed::from("audit", typed, e)?;
            render_audits(&state, &req.actor, Some(failed), None, status).await
        }
    }
}

async fn audit_page(
    State(state): State<AppState>,
    req: Require<ViewAudits>,
    Path(id): Path<String>,
    Query(n): Query<NoticeQuery>,
) -> Result<Response, PageError> {
    let id = path_id(&id, "audit")?;
    let notice = n.notice(&[
        ("ordered", "audit.done.ordered"),
        ("updated", "audit.done.updated"),
        ("finding", "audit.done.finding"),
    ]);
    render_audit(&state, &req.actor, id, None, None, notice, StatusCode::OK).await
}

async fn render_audit(
    state: &AppState,
    actor: &Actor,
    id: i64,
    failed: Option<Failed>,
    new_auditor: Option<NewAuditor>,
    notice: Option<&str>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let view = service::get_audit(state, id).await?;
    let fields: Vec<&str> = AUDIT_FIELDS
        .iter()
        .chain(FINDING_FIELDS)
        .chain(&["name", "name_kana"])
        .copied()
        .collect();
    let (form, typed, errors) = failed_ctx(&failed, &fields);
    let html = render(
        "audit.html",
        &Chrome::for_actor(actor),
        json!({
            "audit": view, "notice": notice, "new_auditor": new_auditor,
            "may_manage": actor.scope(Action::ManageAudits).is_some() && view.summary.status != "closed",
            "severities": options("finding.severity", &SEVERITIES),
            "failed_form": form, "typed": typed, "errors": errors,
        }),
    )?;
    Ok((status, html).into_response())
}

async fn update_submit(
    State(state): State<AppState>,
    req: Require<ManageAudits>,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<serde_json::Map<String, Value>>,
) -> Result<Response, PageError> {
    let id = path_id(&id, "audit")?;
    let typed = Value::Object(f.clone());
    let outcome = match form_fields::<AuditInput>(f) {
        Ok(input) => service::update_audit(&state, &req.actor, id, &input).await,
        Err(e) => Err(e),
    };
    match outcome {
        Ok(()) => Ok(Redirect::to(&format!("/audits/{id}?done=updated")).into_response()),
        Err(e) => {
            let (failed, status) = Failed::from("audit", typed, e)?;
            render_audit(&state, &req.actor, id, Some(failed), None, None, status).await
        }
    }
}

async fn close_submit(
    State(state): State<AppState>,
    req: Require<ManageAudits>,
    Path(id): Path<String>,
    CsrfForm(_f): CsrfForm<serde_json::Map<String, Value>>,
) -> Result<Response, PageError> {
    let id = path_id(&id, "audit")?;
    match service::close_audit(&state, &req.actor, id).await {
        Ok(()) => Ok(Redirect::to("/audits?done=closed").into_response()),
        Err(e) => {
            let (failed, status) = Failed::from("close", json!({}), e)?;
            render_audit(&state, &req.actor, id, Some(failed), None, None, status).await
        }
    }
}

async fn auditor_submit(
    State(state): State<AppState>,
    req: Require<ManageAudits>,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<serde_json::Map<String, Value>>,
) -> Result<Response, PageError> {
    let id = path_id(&id, "audit")?;
    let typed = Value::Object(f.clone());
    let outcome = match form_fields::<AuditorInput>(f) {
        Ok(input) => service::add_auditor(&state, &req.actor, id, &input).await,
        Err(e) => Err(e),
    };
    match outcome {
        // The one-time password is shown once, on this answer only.
        Ok(a) => render_audit(&state, &req.actor, id, None, Some(a), None, StatusCode::OK).await,
        Err(e) => {
            let (failed, status) = Failed::from("auditor", typed, e)?;
            render_audit(&state, &req.actor, id, Some(failed), None, None, status).await
        }
    }
}

async fn finding_submit(
    State(state): State<AppState>,
    req: Require<ManageAudits>,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<serde_json::Map<String, Value>>,
) -> Result<Response, PageError> {
    let id = path_id(&id, "audit")?;
    let typed = Value::Object(f.clone());
    let outcome = match form_fields::<FindingInput>(f) {
        Ok(input) => service::add_finding(&state, &req.actor, id, &input).await,
        Err(e) => Err(e),
    };
    match outcome {
        Ok(_) => Ok(Redirect::to(&format!("/audits/{id}?done=finding")).into_response()),
        Err(e) => {
            let (failed, status) = Failed::from("finding", typed, e)?;
            render_audit(&state, &req.actor, id, Some(failed), None, None, status).await
        }
    }
}

// ---------------------------------------------------------------------------
// Findings

async fn findings_page(
    State(state): State<AppState>,
    req: Require<ReadFindings>,
    Query(q): Query<FindingQuery>,
) -> Result<Response, PageError> {
    let (findings, errors, status) = match finding_filter(&q, req.actor.person_id) {
        Ok(f) => (
            service::list_findings(&state, &req.actor, f).await?,
            vec![],
            StatusCode::OK,
        ),
        Err(AppError::Invalid(e)) => (vec![], e, StatusCode::UNPROCESSABLE_ENTITY),
        Err(e) => return Err(e.into()),
    };
    let html = render(
        "findings.html",
        &Chrome::for_actor(&req.actor),
        json!({
            "findings": findings, "q": q,
            "wide": req.actor.scope(Action::ViewAudits).is_some(),
            "severities": options("finding.severity", &SEVERITIES),
            "errors": form_errors(&errors, &["audit_id", "status", "severity"], "fq-"),
        }),
    )?;
    Ok((status, html).into_response())
}

async fn finding_page(
    State(state): State<AppState>,
    req: Require<ReadFindings>,
    Path(id): Path<String>,
    Query(n): Query<NoticeQuery>,
) -> Result<Response, PageError> {
    let id = path_id(&id, "finding")?;
    let notice = n.notice(&[("entry", "finding.done.entry")]);
    render_finding(&state, &req.actor, id, None, notice, StatusCode::OK).await
}

async fn render_finding(
    state: &AppState,
    actor: &Actor,
    id: i64,
    failed: Option<Failed>,
    notice: Option<&str>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let view = service::get_finding(state, actor, id).await?;
    let manages = actor.scope(Action::ManageAudits).is_some();
    let owns = actor.person_id == Some(view.summary.owner_id);
    let may_follow = actor.scope(Action::FollowUpFindings).is_some() && (owns || manages);
    let kinds: Vec<&str> = ENTRY_KINDS
        .iter()
        .copied()
        .filter(|k| match *k {
            "reopen" => manages && view.summary.status == "closed",
            _ => view.summary.status != "closed",
        })
        .collect();
    let (form, typed, errors) = failed_ctx(&failed, &["kind", "note", "form"]);
    let html = render(
        "finding.html",
        &Chrome::for_actor(actor),
        json!({
            "finding": view, "notice": notice,
            "may_follow": may_follow && !kinds.is_empty(),
            "kinds": options("finding.entry", &kinds),
            "failed_form": form, "typed": typed, "errors": errors,
        }),
    )?;
    Ok((status, html).into_response())
}

async fn entry_submit(
    State(state): State<AppState>,
    req: Require<FollowUpFindings>,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<serde_json::Map<String, Value>>,
) -> Result<Response, PageError> {
    let id = path_id(&id, "finding")?;
    let typed = Value::Object(f.clone());
    let outcome = match form_fields::<EntryInput>(f) {
        Ok(input) => service::follow_up(&state, &req.actor, id, &input).await,
        Err(e) => Err(e),
    };
    match outcome {
        Ok(()) => Ok(Redirect::to(&format!("/findings/{id}?done=entry")).into_response()),
        Err(e) => {
            let (failed, status) = Failed::from("entry", typed, e)?;
            render_finding(&state, &req.actor, id, Some(failed), None, status).await
        }
    }
}
