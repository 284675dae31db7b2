//! Pages: login, logout, forced/ordinary password change, my page.

use super::service;
use crate::app::{AppState, Routes};
use crate::auth::perm::UseOwnAccount;
use crate::auth::{session, PendingActor, Require, SessionCtx};
use crate::web::csrf::CsrfForm;
use crate::web::error::{AppError, FieldError, PageError};
use crate::web::i18n;
use crate::web::templates::{render, Chrome};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::json;

pub fn routes(r: Routes) -> Routes {
    r.get("/login", login_page)
        .post("/login", login_submit)
        .post("/logout", logout)
        .get("/password", password_page)
        .post("/password", password_submit)
        .get("/me", me_page)
        .post("/me/sessions/end", end_session)
}

/// Shows the login form. A visitor without a session gets an anonymous one,
/// so the form can carry a CSRF token.
async fn login_page(State(state): State<AppState>, ctx: SessionCtx) -> Result<Response, PageError> {
    if session::load_actor(&state, &ctx).await?.is_some() {
        return Ok(Redirect::to("/").into_response());
    }
    if ctx.account_id.is_some() && ctx.locked {
        return Ok(Redirect::to("/lock").into_response());
    }
    if ctx.account_id.is_some() && ctx.stage == "card" {
        return Ok(Redirect::to("/login/card").into_response());
    }
    let notice = ctx.ended.as_deref().map(|r| format!("session.ended.{r}"));
    render_login(&state, &ctx, "", &[], notice).await
}

async fn render_login(
    state: &AppState,
    ctx: &SessionCtx,
    login: &str,
    errors: &[FieldError],
    notice: Option<String>,
) -> Result<Response, PageError> {
    let (csrf, cookie) =
        if ctx.id_hash.is_some() && ctx.account_id.is_none() && !ctx.csrf.is_empty() {
            (ctx.csrf.clone(), None)
        } else {
            let mut tx = state.db().begin().await?;
            let (tok, csrf) = session::create(&mut tx, state, None, ctx).await?;
            tx.commit().await?;
            (csrf, Some(session::set_cookie(state, &tok)))
        };
    let html = render(
        "login.html",
        &Chrome::anonymous(&csrf),
        json!({ "login": login, "errors": errors, "notice": notice }),
    )?;
    Ok(match cookie {
        Some(c) => ([(header::SET_COOKIE, c)], html).into_response(),
        None => html.into_response(),
    })
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    login: String,
    #[serde(default)]
    password: String,
}

async fn login_submit(
    State(state): State<AppState>,
    ctx: SessionCtx,
    CsrfForm(form): CsrfForm<LoginForm>,
) -> Result<Response, PageError> {
    match service::login(&state, &ctx, &form.login, &form.password).await {
        Ok(ok) => {
            let to = if ok.card_step {
                "/login/card"
            } else if ok.must_change {
                "/password"
            } else {
                "/"
            };
            Ok((
                [(header::SET_COOKIE, session::set_cookie(&state, &ok.token))],
                Redirect::to(to),
            )
                .into_response())
        }
        Err(AppError::Conflict(code)) if code.starts_with("login.card") => {
            let e = FieldError::new("login", code, &[]).with_clause("K11.2");
            render_login(&state, &ctx, &form.login, &[e], None).await
        }
        Err(AppError::Conflict(_)) => {
            let e = FieldError::new("login", "login.failed", &[]);
            render_login(&state, &ctx, &form.login, &[e], None).await
        }
        Err(AppError::TooManyRequests) => {
            let e = FieldError::new("login", "login.throttled", &[]);
            render_login(&state, &ctx, &form.login, &[e], None).await
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
struct Empty {}

async fn logout(
    State(state): State<AppState>,
    PendingActor(actor): PendingActor,
    CsrfForm(_): CsrfForm<Empty>,
) -> Result<Response, PageError> {
    service::logout(&state, &actor).await?;
    Ok((
        [(header::SET_COOKIE, session::clear_cookie(&state))],
        Redirect::to("/login"),
    )
        .into_response())
}

async fn password_page(
    State(state): State<AppState>,
    PendingActor(actor): PendingActor,
) -> Result<Response, PageError> {
    render_password(&state, &actor, &[], false).await
}

async fn render_password(
    state: &AppState,
    actor: &crate::auth::Actor,
    errors: &[FieldError],
    done: bool,
) -> Result<Response, PageError> {
    let reason = {
        let mut conn = state.db().pool().acquire().await?;
        super::store::must_change_reason(&mut conn, actor.account_id).await?
    };
    let policy = &state.config().password;
    Ok(render(
        "password.html",
        &Chrome::for_actor(actor),
        json!({ "errors": errors, "done": done, "must_change": actor.must_change, "reason": reason,
                "min_length": policy.min_length }),
    )?
    .into_response())
}

#[derive(Deserialize)]
struct PasswordForm {
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    new_password: String,
    #[serde(default)]
    confirm_password: String,
}

async fn password_submit(
    State(state): State<AppState>,
    PendingActor(actor): PendingActor,
    CsrfForm(form): CsrfForm<PasswordForm>,
) -> Result<Response, PageError> {
    if form.new_password != form.confirm_password {
        let e = FieldError::new("confirm_password", "password.confirm_mismatch", &[]);
        return render_password(&state, &actor, &[e], false).await;
    }
    match service::change_own_password(&state, &actor, &form.current_password, &form.new_password)
        .await
    {
        Ok(()) => {
            let mut actor = actor;
            actor.must_change = false;
            render_password(&state, &actor, &[], true).await
        }
        Err(AppError::Invalid(errors)) => render_password(&state, &actor, &errors, false).await,
        Err(e) => Err(e.into()),
    }
}

async fn me_page(
    State(state): State<AppState>,
    req: Require<UseOwnAccount>,
) -> Result<Response, PageError> {
    let me = crate::identity::api::me_data(&state, &req.actor).await?;
    let sessions = {
        let mut conn = state.db().pool().acquire().await?;
        super::store::live_sessions(
            &mut conn,
            req.actor.account_id,
            req.actor.session.id_hash.as_deref(),
        )
        .await?
    };
    let warn_days = {
        let mut conn = state.db().pool().acquire().await?;
        crate::settings::get(&mut conn, "password.warn_days").await?
    };
    let expiry_warning = me.password_expires_in_days.filter(|d| *d <= warn_days);
    Ok(render("me.html", &Chrome::for_actor(&req.actor), json!({
        "me": me, "sessions": sessions, "expiry_warning": expiry_warning, "lang": i18n::current().code(),
    }))?
    .into_response())
}

#[derive(Deserialize)]
struct EndSessionForm {
    id: String,
}

async fn end_session(
    State(state): State<AppState>,
    req: Require<UseOwnAccount>,
    CsrfForm(form): CsrfForm<EndSessionForm>,
) -> Result<Response, PageError> {
    crate::identity::api::end_own_session(&state, &req.actor, &form.id).await?;
    Ok(Redirect::to("/me").into_response())
}
