//! JSON API: login, logout, my account, my sessions, account administration.

use super::service::{self, AccountAction, SharedAccountInput};
use super::store;
use crate::app::{AppState, Routes};
use crate::auth::perm::{
    ForceChangeAll, ManageAccounts, ManageSettings, ManageSharedAccounts, UseOwnAccount,
};
use crate::auth::{session, PendingActor, Require, SessionCtx};
use crate::ids::{AccountId, OrgUnitId};
use crate::web::error::{ApiError, AppError};
use crate::web::json::ApiJson;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub fn routes(r: Routes) -> Routes {
    r.post("/api/v1/session", login)
        .delete("/api/v1/session", logout)
        .get("/api/v1/me", me)
        .put("/api/v1/me/password", change_password)
        .get("/api/v1/me/sessions", my_sessions)
        .delete("/api/v1/me/sessions/{id}", end_my_session)
        .post("/api/v1/accounts/{id}/actions", administer)
        .post("/api/v1/accounts/{id}/reset-password", reset_password)
        .post("/api/v1/accounts/force-password-change", force_change_many)
        .post("/api/v1/accounts/shared", create_shared)
        .get("/api/v1/settings", get_settings)
        .put("/api/v1/settings", put_settings)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginInput {
    pub login: String,
    pub password: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LoginOutput {
    pub account_id: AccountId,
    /// The password must be changed before anything else (first login,
    /// reset, expiry or a forced change).
    pub must_change_password: bool,
    /// A card is required too (K11.2): finish with
    /// `POST /api/v1/session/card` (purpose `step_up`) before anything else.
    pub card_required: bool,
}

/// Log in with a login id and password; sets the session cookie.
#[utoipa::path(post, path = "/api/v1/session", tag = "identity", request_body = LoginInput,
    responses((status = 200, body = LoginOutput), (status = 409, description = "login failed", body = crate::web::error::Problem),
              (status = 429, description = "too many failures from this address", body = crate::web::error::Problem)))]
pub async fn login(
    State(state): State<AppState>,
    ctx: SessionCtx,
    ApiJson(input): ApiJson<LoginInput>,
) -> Result<Response, ApiError> {
    let ok = service::login(&state, &ctx, &input.login, &input.password).await?;
    let body = LoginOutput {
        account_id: ok.account_id,
        must_change_password: ok.must_change,
        card_required: ok.card_step,
    };
    Ok((
        [(header::SET_COOKIE, session::set_cookie(&state, &ok.token))],
        Json(body),
    )
        .into_response())
}

/// End the current session.
#[utoipa::path(delete, path = "/api/v1/session", tag = "identity", responses((status = 204)))]
pub async fn logout(State(state): State<AppState>, ctx: SessionCtx) -> Result<Response, ApiError> {
    if ctx.account_id.is_some() && (ctx.locked || ctx.stage == "card") {
        // A locked or half-open session can always be ended.
        crate::cards::service::end_session(&state, &ctx).await?;
    } else {
        let actor = session::load_actor(&state, &ctx)
            .await?
            .ok_or(AppError::Unauthenticated)?;
        service::logout(&state, &actor).await?;
    }
    Ok((
        StatusCode::NO_CONTENT,
        [(header::SET_COOKIE, session::clear_cookie(&state))],
    )
        .into_response())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MeOutput {
    pub account_id: AccountId,
    pub login: String,
    pub person: Option<crate::people::Person>,
    pub roles: Vec<HeldRoleView>,
    pub must_change_password: bool,
    /// Days until the password expires (K17.4); negative when past.
    pub password_expires_in_days: Option<i64>,
    /// Who this person reports to (K10.1–3).
    pub reporting_chain: Vec<crate::org::ChainStep>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HeldRoleView {
    pub role: String,
    pub org_unit_id: Option<OrgUnitId>,
    pub system_id: Option<crate::ids::SystemId>,
}

/// My account, roles and reporting chain.
#[utoipa::path(get, path = "/api/v1/me", tag = "identity", responses((status = 200, body = MeOutput)))]
pub async fn me(
    State(state): State<AppState>,
    PendingActor(actor): PendingActor,
) -> Result<Json<MeOutput>, ApiError> {
    Ok(Json(me_data(&state, &actor).await?))
}

pub async fn me_data(state: &AppState, actor: &crate::auth::Actor) -> Result<MeOutput, AppError> {
    let today = crate::clock::date_str(state.clock().today());
    let mut conn = state.db().pool().acquire().await?;
    let person = match actor.person_id {
        Some(p) => crate::people::store::get_person(&mut conn, p).await?,
        None => None,
    };
    let unit = person.as_ref().and_then(|p| p.org_unit_id);
    let chain = crate::org::service::reporting_chain(&mut conn, unit, &today).await?;
    drop(conn);
    Ok(MeOutput {
        account_id: actor.account_id,
        login: actor.login.clone(),
        person,
        roles: actor
            .roles
            .iter()
            .map(|h| HeldRoleView {
                role: h.role.code().into(),
                org_unit_id: h.org_unit,
                system_id: h.system,
            })
            .collect(),
        must_change_password: actor.must_change,
        password_expires_in_days: service::days_to_expiry(state, actor.account_id).await?,
        reporting_chain: chain,
    })
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordInput {
    pub current_password: String,
    pub new_password: String,
}

/// Change my password (K11.1.2, K11.1.5, K17.4). Allowed while a change is due.
#[utoipa::path(put, path = "/api/v1/me/password", tag = "identity", request_body = PasswordInput,
    responses((status = 204), (status = 422, description = "a rule is broken; each error names the field and clause", body = crate::web::error::Problem)))]
pub async fn change_password(
    State(state): State<AppState>,
    PendingActor(actor): PendingActor,
    ApiJson(input): ApiJson<PasswordInput>,
) -> Result<StatusCode, ApiError> {
    service::change_own_password(&state, &actor, &input.current_password, &input.new_password)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// My live sessions.
#[utoipa::path(get, path = "/api/v1/me/sessions", tag = "identity", responses((status = 200, body = Vec<store::SessionView>)))]
pub async fn my_sessions(
    State(state): State<AppState>,
    req: Require<UseOwnAccount>,
) -> Result<Json<Vec<store::SessionView>>, ApiError> {
    let mut conn = state.db().pool().acquire().await?;
    Ok(Json(
        store::live_sessions(
            &mut conn,
            req.actor.account_id,
            req.actor.session.id_hash.as_deref(),
        )
        .await?,
    ))
}

/// End one of my sessions.
#[utoipa::path(delete, path = "/api/v1/me/sessions/{id}", tag = "identity", params(("id" = String, Path, description = "session id from the list")),
    responses((status = 204), (status = 404, body = crate::web::error::Problem)))]
pub async fn end_my_session(
    State(state): State<AppState>,
    req: Require<UseOwnAccount>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    end_own_session(&state, &req.actor, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn end_own_session(
    state: &AppState,
    actor: &crate::auth::Actor,
    id: &str,
) -> Result<(), AppError> {
    let mut tx = state.db().begin().await?;
    let n =
        store::end_session_by_prefix(&mut tx, actor.account_id, id, state.clock().unix()).await?;
    if n == 0 {
        return Err(AppError::NotFound("session"));
    }
    let rec = crate::records::Record::new(
        actor.who(),
        "session.end",
        actor.account_id.record_ref(),
        "K12.1.5",
    )
    .from_ip(actor.ip())
    .detail(serde_json::json!({ "session": id }));
    crate::records::append(&mut tx, state.clock().unix_micros(), &rec).await?;
    tx.commit().await?;
    Ok(())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountActionInput {
    pub action: AccountAction,
}

/// Lock, unlock, force a password change, or end all sessions of an account.
#[utoipa::path(post, path = "/api/v1/accounts/{id}/actions", tag = "accounts", request_body = AccountActionInput,
    params(("id" = i64, Path)), responses((status = 204), (status = 403, body = crate::web::error::Problem), (status = 404, body = crate::web::error::Problem)))]
pub async fn administer(
    State(state): State<AppState>,
    req: Require<ManageAccounts>,
    Path(id): Path<i64>,
    ApiJson(input): ApiJson<AccountActionInput>,
) -> Result<StatusCode, ApiError> {
    service::administer(&state, &req.actor, &req.scope, AccountId(id), input.action).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OneTimePassword {
    /// Shown once; must be changed at first login.
    pub one_time_password: String,
}

/// Issue a one-time password for an account in my scope.
#[utoipa::path(post, path = "/api/v1/accounts/{id}/reset-password", tag = "accounts", params(("id" = i64, Path)),
    responses((status = 200, body = OneTimePassword), (status = 403, body = crate::web::error::Problem)))]
pub async fn reset_password(
    State(state): State<AppState>,
    req: Require<ManageAccounts>,
    Path(id): Path<i64>,
) -> Result<Json<OneTimePassword>, ApiError> {
    let otp = reset_in_scope(&state, &req.actor, &req.scope, AccountId(id)).await?;
    Ok(Json(OneTimePassword {
        one_time_password: otp,
    }))
}

pub async fn reset_in_scope(
    state: &AppState,
    actor: &crate::auth::Actor,
    scope: &crate::auth::ActorScope,
    id: AccountId,
) -> Result<String, AppError> {
    // Changing someone's credentials is a sensitive action.
    crate::auth::session::require_recent_auth(state, actor)?;
    {
        let mut conn = state.db().pool().acquire().await?;
        let (_, unit) = service::account_unit(&mut conn, id).await?;
        crate::org::service::require_in_scope(&mut conn, scope, unit).await?;
    }
    service::reset_password(state, actor.who(), actor.ip(), id).await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ForceChangeInput {
    /// A unit (and everything below it); absent for the whole ward.
    #[serde(default)]
    pub org_unit_id: Option<OrgUnitId>,
    pub reason: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CountOutput {
    pub accounts: usize,
}

/// Force a password change for a unit or the whole ward after a suspected compromise (K11.1.5).
#[utoipa::path(post, path = "/api/v1/accounts/force-password-change", tag = "accounts", request_body = ForceChangeInput,
    responses((status = 200, body = CountOutput), (status = 403, body = crate::web::error::Problem)))]
pub async fn force_change_many(
    State(state): State<AppState>,
    req: Require<ForceChangeAll>,
    ApiJson(input): ApiJson<ForceChangeInput>,
) -> Result<Json<CountOutput>, ApiError> {
    if input.reason.trim().is_empty() {
        return Err(AppError::invalid("reason", "field.required", &[]).into());
    }
    let n = service::force_change_many(
        &state,
        &req.actor,
        &req.scope,
        input.org_unit_id,
        &input.reason,
    )
    .await?;
    Ok(Json(CountOutput { accounts: n }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedAccount {
    pub account_id: AccountId,
}

/// Create a shared account with a justification and owner (K17.2).
#[utoipa::path(post, path = "/api/v1/accounts/shared", tag = "accounts", request_body = SharedAccountInput,
    responses((status = 201, body = CreatedAccount), (status = 422, body = crate::web::error::Problem)))]
pub async fn create_shared(
    State(state): State<AppState>,
    req: Require<ManageSharedAccounts>,
    ApiJson(input): ApiJson<SharedAccountInput>,
) -> Result<(StatusCode, Json<CreatedAccount>), ApiError> {
    let id = service::create_shared(&state, &req.actor, &req.scope, input).await?;
    Ok((StatusCode::CREATED, Json(CreatedAccount { account_id: id })))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SettingView {
    pub key: String,
    pub value: i64,
    pub min: i64,
    pub max: i64,
    pub clause: String,
}

/// The ward's settings (password validity period, warning, history).
#[utoipa::path(get, path = "/api/v1/settings", tag = "settings", responses((status = 200, body = Vec<SettingView>)))]
pub async fn get_settings(
    State(state): State<AppState>,
    _req: Require<ManageSettings>,
) -> Result<Json<Vec<SettingView>>, ApiError> {
    let mut conn = state.db().pool().acquire().await?;
    let all = crate::settings::all(&mut conn).await?;
    Ok(Json(
        all.into_iter()
            .map(|(d, v)| SettingView {
                key: d.key.into(),
                value: v,
                min: d.min,
                max: d.max,
                clause: d.clause.into(),
            })
            .collect(),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingInput {
    pub key: String,
    pub value: i64,
}

/// Change one setting (K17.4). Each change is a record.
#[utoipa::path(put, path = "/api/v1/settings", tag = "settings", request_body = SettingInput,
    responses((status = 204), (status = 422, body = crate::web::error::Problem)))]
pub async fn put_settings(
    State(state): State<AppState>,
    req: Require<ManageSettings>,
    ApiJson(input): ApiJson<SettingInput>,
) -> Result<StatusCode, ApiError> {
    change_setting(&state, &req.actor, &input.key, input.value).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn change_setting(
    state: &AppState,
    actor: &crate::auth::Actor,
    key: &str,
    value: i64,
) -> Result<(), AppError> {
    let def = crate::settings::def(key)
        .ok_or_else(|| AppError::invalid("key", "settings.unknown_key", &[]))?;
    if value < def.min || value > def.max {
        return Err(AppError::invalid(
            "value",
            "field.out_of_range",
            &[("min", def.min.to_string()), ("max", def.max.to_string())],
        ));
    }
    let mut tx = state.db().begin().await?;
    let before = crate::settings::get(&mut tx, key).await?;
    crate::settings::put(
        &mut tx,
        key,
        value,
        actor.person_id.map(|p| p.0),
        state.clock().unix(),
    )
    .await?;
    let rec = crate::records::Record::new(
        actor.who(),
        "settings.change",
        format!("setting:{key}"),
        def.clause,
    )
    .from_ip(actor.ip())
    .detail(serde_json::json!({ "before": before, "after": value }));
    crate::records::append(&mut tx, state.clock().unix_micros(), &rec).await?;
    tx.commit().await?;
    Ok(())
}
