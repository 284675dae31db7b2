//! Pages: my cards, the security manager's cards page, card login, the
//! lock screen and re-authentication. The WebAuthn ceremonies need the
//! browser's script (`/static/cards.js`, served from here, no inline
//! script); everything else works without it.

use super::service::{self, CardAction, CardSettings};
use super::store;
use crate::app::{AppState, Routes};
use crate::auth::perm::{ManageCards, ManageSettings, UseOwnAccount};
use crate::auth::{session, ActorScope, Require, SessionCtx};
use crate::web::csrf::CsrfForm;
use crate::web::error::{AppError, FieldError, PageError};
use crate::web::i18n;
use crate::web::templates::{render, Chrome};
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::json;

pub fn routes(r: Routes) -> Routes {
    r.get("/me/cards", my_cards_page)
        .post("/me/cards/lost", my_card_lost)
        .get("/cards", cards_page)
        .post("/cards/status", card_status)
        .post("/cards/settings", card_settings)
        .get("/login/card", card_login_page)
        .post("/login/cancel", cancel)
        .get("/lock", lock_page)
        .post("/lock", unlock_submit)
        .get("/reauth", reauth_page)
        .post("/reauth", reauth_submit)
        .get("/static/cards.js", script)
}

#[derive(Deserialize, Default)]
struct NextQuery {
    #[serde(default)]
    next: String,
    #[serde(default)]
    notice: String,
}

/// Only our own paths: never another site, never a protocol-relative URL.
fn local_path(next: &str, default: &str) -> String {
    if next.starts_with('/') && !next.starts_with("//") && !next.contains('\\') && next.len() < 200
    {
        next.to_string()
    } else {
        default.to_string()
    }
}

/// A notice key from the query, only from the known set.
fn notice(key: &str) -> Option<String> {
    match key {
        "registered" | "lost" | "status" | "settings" => Some(format!("cards.notice.{key}")),
        _ => None,
    }
}

async fn my_cards_page(
    State(state): State<AppState>,
    req: Require<UseOwnAccount>,
    Query(q): Query<NextQuery>,
) -> Result<Response, PageError> {
    let cards = {
        let mut conn = state.db().pool().acquire().await?;
        store::list(&mut conn, Some(req.actor.account_id), None).await?
    };
    let fresh = session::require_recent_auth(&state, &req.actor).is_ok();
    Ok(render(
        "cards_me.html",
        &Chrome::for_actor(&req.actor),
        json!({ "cards": cards, "fresh": fresh, "notice": notice(&q.notice) }),
    )?
    .into_response())
}

#[derive(Deserialize)]
struct LostForm {
    id: i64,
    #[serde(default)]
    note: String,
}

async fn my_card_lost(
    State(state): State<AppState>,
    req: Require<UseOwnAccount>,
    CsrfForm(form): CsrfForm<LostForm>,
) -> Result<Response, PageError> {
    service::change_status(
        &state,
        &req.actor,
        None,
        form.id,
        CardAction::ReportLost,
        &form.note,
    )
    .await?;
    Ok(Redirect::to("/me/cards?notice=lost").into_response())
}

async fn cards_page(
    State(state): State<AppState>,
    req: Require<ManageCards>,
    Query(q): Query<NextQuery>,
) -> Result<Response, PageError> {
    render_cards(&state, &req, &[], notice(&q.notice)).await
}

async fn render_cards(
    state: &AppState,
    req: &Require<ManageCards>,
    errors: &[FieldError],
    notice: Option<String>,
) -> Result<Response, PageError> {
    let units = match &req.scope {
        ActorScope::Ward => None,
        ActorScope::Units(roots) => {
            let mut conn = state.db().pool().acquire().await?;
            let mut all = Vec::new();
            for u in roots {
                all.extend(crate::org::store::descendants(&mut conn, *u).await?);
            }
            Some(all)
        }
    };
    let mut conn = state.db().pool().acquire().await?;
    let cards = store::list(&mut conn, None, units.as_deref()).await?;
    let reports = store::loss_reports(&mut conn, units.as_deref()).await?;
    let may_set = req
        .actor
        .scope(mamori_policy::permission::Action::ManageSettings)
        .is_some();
    let settings = if may_set {
        Some(service::settings(&mut conn).await?)
    } else {
        None
    };
    drop(conn);
    let fresh = session::require_recent_auth(state, &req.actor).is_ok();
    Ok(render(
        "cards.html",
        &Chrome::for_actor(&req.actor),
        json!({ "cards": cards, "reports": reports, "settings": settings, "fresh": fresh,
                "errors": errors, "notice": notice,
                "zones": mamori_policy::access::NetworkZone::ALL.iter().map(|z| (z.code(), z.ja())).collect::<Vec<_>>() }),
    )?
    .into_response())
}

#[derive(Deserialize)]
struct StatusForm {
    id: i64,
    action: String,
    #[serde(default)]
    note: String,
}

async fn card_status(
    State(state): State<AppState>,
    req: Require<ManageCards>,
    CsrfForm(form): CsrfForm<StatusForm>,
) -> Result<Response, PageError> {
    let action = match form.action.as_str() {
        "suspend" => CardAction::Suspend,
        "reinstate" => CardAction::Reinstate,
        "report_lost" => CardAction::ReportLost,
        _ => return Err(AppError::invalid("action", "cards.bad_action", &[]).into()),
    };
    match service::change_status(
        &state,
        &req.actor,
        Some(&req.scope),
        form.id,
        action,
        &form.note,
    )
    .await
    {
        Ok(()) => Ok(Redirect::to("/cards?notice=status").into_response()),
        Err(AppError::Conflict(code)) => {
            let e = FieldError::new("action", code, &[]);
            render_cards(&state, &req, &[e], None).await
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
struct SettingsForm {
    #[serde(default)]
    allowed_models: String,
    #[serde(default)]
    required_roles: String,
    #[serde(default)]
    required_zones: String,
    #[serde(default)]
    admin_two_factor: i64,
}

fn list(s: &str) -> Vec<String> {
    s.split([',', '\n', ' ', '\u{3000}'])
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(String::from)
        .collect()
}

async fn card_settings(
    State(state): State<AppState>,
    req: Require<ManageSettings>,
    CsrfForm(form): CsrfForm<SettingsForm>,
) -> Result<Response, PageError> {
    let input = CardSettings {
        allowed_models: list(&form.allowed_models),
        required_roles: list(&form.required_roles),
        required_zones: list(&form.required_zones),
        admin_two_factor: form.admin_two_factor,
    };
    service::put_settings(&state, &req.actor, input).await?;
    Ok(Redirect::to("/cards?notice=settings").into_response())
}

/// An anonymous session so the page's ceremony is bound to this browser.
async fn ensure_session(
    state: &AppState,
    ctx: &SessionCtx,
) -> Result<(String, Option<String>), AppError> {
    if ctx.id_hash.is_some() && !ctx.csrf.is_empty() {
        return Ok((ctx.csrf.clone(), None));
    }
    let mut tx = state.db().begin().await?;
    let (tok, csrf) = session::create(&mut tx, state, None, ctx).await?;
    tx.commit().await?;
    Ok((csrf, Some(session::set_cookie(state, &tok))))
}

fn with_cookie(cookie: Option<String>, html: axum::response::Html<String>) -> Response {
    match cookie {
        Some(c) => ([(header::SET_COOKIE, c)], html).into_response(),
        None => html.into_response(),
    }
}

async fn card_login_page(
    State(state): State<AppState>,
    ctx: SessionCtx,
) -> Result<Response, PageError> {
    if ctx.is_full() {
        return Ok(Redirect::to("/").into_response());
    }
    if ctx.account_id.is_some() && ctx.locked {
        return Ok(Redirect::to("/lock").into_response());
    }
    let step_up = ctx.account_id.is_some() && ctx.stage == "card";
    let (csrf, cookie) = ensure_session(&state, &ctx).await?;
    let html = render(
        "card_login.html",
        &Chrome::anonymous(&csrf),
        json!({ "step_up": step_up }),
    )?;
    Ok(with_cookie(cookie, html))
}

#[derive(Deserialize)]
struct Empty {}

/// Ends a locked or half-open session (the lock screen's and the card
/// step's way out).
async fn cancel(
    State(state): State<AppState>,
    ctx: SessionCtx,
    CsrfForm(_): CsrfForm<Empty>,
) -> Result<Response, PageError> {
    service::end_session(&state, &ctx).await?;
    Ok((
        [(header::SET_COOKIE, session::clear_cookie(&state))],
        Redirect::to("/login"),
    )
        .into_response())
}

async fn login_of(state: &AppState, ctx: &SessionCtx) -> Result<String, AppError> {
    let Some(id) = ctx.account_id else {
        return Err(AppError::Unauthenticated);
    };
    let mut conn = state.db().pool().acquire().await?;
    Ok(crate::identity::store::by_id(&mut conn, id)
        .await?
        .map(|a| a.login)
        .unwrap_or_default())
}

async fn render_again(
    state: &AppState,
    ctx: &SessionCtx,
    template: &str,
    next: &str,
    errors: &[FieldError],
) -> Result<Response, PageError> {
    let login = login_of(state, ctx).await?;
    let chrome = Chrome {
        lang: i18n::current().code(),
        csrf: ctx.csrf.clone(),
        // No header menu or logout button: these pages have their own way out.
        login: None,
        ..Default::default()
    };
    Ok(render(
        template,
        &chrome,
        json!({ "login": login, "errors": errors, "next": next,
                "card_session": ctx.factors.contains("card"), "secret": ctx.secret }),
    )?
    .into_response())
}

async fn lock_page(State(state): State<AppState>, ctx: SessionCtx) -> Result<Response, PageError> {
    if ctx.account_id.is_none() {
        return Ok(Redirect::to("/login").into_response());
    }
    if !ctx.locked {
        return Ok(Redirect::to("/").into_response());
    }
    render_again(&state, &ctx, "lock.html", "/", &[]).await
}

#[derive(Deserialize)]
struct PasswordForm {
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: String,
}

async fn unlock_submit(
    State(state): State<AppState>,
    ctx: SessionCtx,
    CsrfForm(form): CsrfForm<PasswordForm>,
) -> Result<Response, PageError> {
    if ctx.account_id.is_none() {
        return Ok(Redirect::to("/login").into_response());
    }
    if !ctx.locked {
        return Ok(Redirect::to("/").into_response());
    }
    match service::password_again(&state, &ctx, &form.password).await {
        Ok(()) => Ok(Redirect::to("/").into_response()),
        Err(AppError::Invalid(errors)) => {
            render_again(&state, &ctx, "lock.html", "/", &errors).await
        }
        Err(e) => Err(e.into()),
    }
}

async fn reauth_page(
    State(state): State<AppState>,
    req: Require<UseOwnAccount>,
    Query(q): Query<NextQuery>,
) -> Result<Response, PageError> {
    let next = local_path(&q.next, "/me");
    render_again(&state, &req.actor.session, "reauth.html", &next, &[]).await
}

async fn reauth_submit(
    State(state): State<AppState>,
    req: Require<UseOwnAccount>,
    CsrfForm(form): CsrfForm<PasswordForm>,
) -> Result<Response, PageError> {
    let next = local_path(&form.next, "/me");
    match service::password_again(&state, &req.actor.session, &form.password).await {
        Ok(()) => Ok(Redirect::to(&next).into_response()),
        Err(AppError::Invalid(errors)) => {
            render_again(&state, &req.actor.session, "reauth.html", &next, &errors).await
        }
        Err(e) => Err(e.into()),
    }
}

async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        include_str!("../../templates/cards.js"),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_this_site() {
        for (input, expected) in [
            ("/me/cards", "/me/cards"),
            ("//evil.example/", "/me"),
            ("https://evil.example/", "/me"),
            ("/\\evil", "/me"),
            ("", "/me"),
        ] {
            assert_eq!(local_path(input, "/me"), expected, "{input}");
        }
    }
}
