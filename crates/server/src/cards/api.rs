//! JSON API of the cards: the WebAuthn ceremonies (the pages' script uses
//! them too), card lists and status changes, loss reports, card settings,
//! unlocking and re-authentication.

use super::service::{self, CardAction, CardSettings, For, Purpose};
use super::store::{self, CardView, LossReportView};
use crate::app::{AppState, Routes};
use crate::auth::perm::{ManageCards, ManageSettings, UseOwnAccount};
use crate::auth::{session, ActorScope, Require, SessionCtx};
use crate::ids::AccountId;
use crate::web::error::{ApiError, AppError};
use crate::web::json::ApiJson;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use webauthn_rs::prelude::{PublicKeyCredential, RegisterPublicKeyCredential};

pub fn routes(r: Routes) -> Routes {
    r.get("/api/v1/me/cards", my_cards)
        .post("/api/v1/me/cards/registrations", start_my_registration)
        .post(
            "/api/v1/me/cards/registrations/finish",
            finish_my_registration,
        )
        .post("/api/v1/me/cards/{id}/lost", report_my_card_lost)
        .get("/api/v1/cards", list_cards)
        .post("/api/v1/cards/registrations", start_registration)
        .post("/api/v1/cards/registrations/finish", finish_registration)
        .post("/api/v1/cards/{id}/actions", card_action)
        .get("/api/v1/cards/loss-reports", loss_reports)
        .get("/api/v1/cards/settings", get_settings)
        .put("/api/v1/cards/settings", put_settings)
        .post("/api/v1/session/card", start_card)
        .post("/api/v1/session/card/finish", finish_card)
        .post("/api/v1/session/unlock", unlock)
        .post("/api/v1/session/reauth", reauth)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MyRegistrationInput {
    /// The card's serial number or label as printed on it.
    pub label: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegistrationInput {
    /// The holder's account (a personal account: K11.2.1), or
    #[serde(default)]
    pub account_id: Option<AccountId>,
    /// the holder's login id (職員番号).
    #[serde(default)]
    pub login: Option<String>,
    pub label: String,
}

/// A ceremony to hand to `navigator.credentials.create()` or `.get()`.
#[derive(Debug, Serialize, ToSchema)]
pub struct CeremonyOutput {
    /// Send back with the response; good once, for five minutes.
    pub ceremony: String,
    /// The WebAuthn options (`publicKey`, base64url binary fields).
    #[schema(value_type = Object)]
    pub options: serde_json::Value,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegistrationFinish {
    pub ceremony: String,
    /// The `PublicKeyCredential` from `create()`, binary fields in base64url.
    #[schema(value_type = Object)]
    pub credential: RegisterPublicKeyCredential,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssertionFinish {
    pub ceremony: String,
    /// The `PublicKeyCredential` from `get()`, binary fields in base64url.
    #[schema(value_type = Object)]
    pub credential: PublicKeyCredential,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RegisteredOutput {
    pub card_id: i64,
}

fn ceremony<T: Serialize>(s: service::Started<T>) -> Result<Json<CeremonyOutput>, ApiError> {
    let options =
        serde_json::to_value(&s.options).map_err(|e| AppError::Internal(e.to_string()))?;
    Ok(Json(CeremonyOutput {
        ceremony: s.ceremony,
        options,
    }))
}

/// My cards (K11.2.1).
#[utoipa::path(get, path = "/api/v1/me/cards", tag = "cards", responses((status = 200, body = Vec<CardView>)))]
pub async fn my_cards(
    State(state): State<AppState>,
    req: Require<UseOwnAccount>,
) -> Result<Json<Vec<CardView>>, ApiError> {
    let mut conn = state.db().pool().acquire().await?;
    Ok(Json(
        store::list(&mut conn, Some(req.actor.account_id), None).await?,
    ))
}

/// Start registering a card of my own. Needs a recent authentication
/// (403 `error.reauth_required` otherwise: `POST /api/v1/session/reauth`).
#[utoipa::path(post, path = "/api/v1/me/cards/registrations", tag = "cards", request_body = MyRegistrationInput,
    responses((status = 200, body = CeremonyOutput), (status = 403, body = crate::web::error::Problem)))]
pub async fn start_my_registration(
    State(state): State<AppState>,
    req: Require<UseOwnAccount>,
    ApiJson(input): ApiJson<MyRegistrationInput>,
) -> Result<Json<CeremonyOutput>, ApiError> {
    ceremony(service::start_registration(&state, &req.actor, For::Me, &input.label).await?)
}

/// Finish registering my card.
#[utoipa::path(post, path = "/api/v1/me/cards/registrations/finish", tag = "cards", request_body = RegistrationFinish,
    responses((status = 200, body = RegisteredOutput), (status = 422, description = "refused: replayed, forged, not verified, model not accepted, already registered", body = crate::web::error::Problem)))]
pub async fn finish_my_registration(
    State(state): State<AppState>,
    req: Require<UseOwnAccount>,
    ApiJson(input): ApiJson<RegistrationFinish>,
) -> Result<Json<RegisteredOutput>, ApiError> {
    let card_id =
        service::finish_registration(&state, &req.actor, &input.ceremony, &input.credential)
            .await?;
    Ok(Json(RegisteredOutput { card_id }))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LostInput {
    /// Where and when it was lost, as far as known.
    #[serde(default)]
    pub note: String,
}

/// Report my card lost (K11.2.2): revoked at once, its sessions end, and
/// an incident report opens for the security manager.
#[utoipa::path(post, path = "/api/v1/me/cards/{id}/lost", tag = "cards", request_body = LostInput,
    params(("id" = i64, Path, description = "card id")),
    responses((status = 204), (status = 404, body = crate::web::error::Problem), (status = 409, body = crate::web::error::Problem)))]
pub async fn report_my_card_lost(
    State(state): State<AppState>,
    req: Require<UseOwnAccount>,
    Path(id): Path<i64>,
    ApiJson(input): ApiJson<LostInput>,
) -> Result<StatusCode, ApiError> {
    service::change_status(
        &state,
        &req.actor,
        None,
        id,
        CardAction::ReportLost,
        &input.note,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

fn units(scope: &ActorScope) -> Option<&[crate::ids::OrgUnitId]> {
    match scope {
        ActorScope::Ward => None,
        ActorScope::Units(u) => Some(u),
    }
}

async fn scoped_units(
    state: &AppState,
    scope: &ActorScope,
) -> Result<Option<Vec<crate::ids::OrgUnitId>>, AppError> {
    match units(scope) {
        None => Ok(None),
        Some(roots) => {
            let mut conn = state.db().pool().acquire().await?;
            let mut all = Vec::new();
            for u in roots {
                all.extend(crate::org::store::descendants(&mut conn, *u).await?);
            }
            all.sort();
            all.dedup();
            Ok(Some(all))
        }
    }
}

/// Cards of the people in my scope.
#[utoipa::path(get, path = "/api/v1/cards", tag = "cards", responses((status = 200, body = Vec<CardView>)))]
pub async fn list_cards(
    State(state): State<AppState>,
    req: Require<ManageCards>,
) -> Result<Json<Vec<CardView>>, ApiError> {
    let units = scoped_units(&state, &req.scope).await?;
    let mut conn = state.db().pool().acquire().await?;
    Ok(Json(store::list(&mut conn, None, units.as_deref()).await?))
}

/// Start registering a card for a person in my scope (they are present
/// with the card and set its PIN). Needs a recent authentication.
#[utoipa::path(post, path = "/api/v1/cards/registrations", tag = "cards", request_body = RegistrationInput,
    responses((status = 200, body = CeremonyOutput), (status = 403, body = crate::web::error::Problem), (status = 422, body = crate::web::error::Problem)))]
pub async fn start_registration(
    State(state): State<AppState>,
    req: Require<ManageCards>,
    ApiJson(input): ApiJson<RegistrationInput>,
) -> Result<Json<CeremonyOutput>, ApiError> {
    let account = match (input.account_id, input.login.as_deref()) {
        (Some(id), None) => id,
        (None, Some(login)) => {
            let mut conn = state.db().pool().acquire().await?;
            crate::identity::store::by_login(&mut conn, login.trim())
                .await?
                .map(|a| a.id)
                .ok_or_else(|| AppError::invalid("login", "cards.no_such_login", &[]))?
        }
        _ => return Err(AppError::invalid("login", "cards.holder_needed", &[]).into()),
    };
    let target = For::Account(account, req.scope.clone());
    ceremony(service::start_registration(&state, &req.actor, target, &input.label).await?)
}

/// Finish a registration started by `POST /api/v1/cards/registrations`.
#[utoipa::path(post, path = "/api/v1/cards/registrations/finish", tag = "cards", request_body = RegistrationFinish,
    responses((status = 200, body = RegisteredOutput), (status = 422, body = crate::web::error::Problem)))]
pub async fn finish_registration(
    State(state): State<AppState>,
    req: Require<ManageCards>,
    ApiJson(input): ApiJson<RegistrationFinish>,
) -> Result<Json<RegisteredOutput>, ApiError> {
    let card_id =
        service::finish_registration(&state, &req.actor, &input.ceremony, &input.credential)
            .await?;
    Ok(Json(RegisteredOutput { card_id }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CardActionInput {
    pub action: CardAction,
    #[serde(default)]
    pub note: String,
}

/// Suspend, reinstate or report lost a card in my scope (K11.2.2).
#[utoipa::path(post, path = "/api/v1/cards/{id}/actions", tag = "cards", request_body = CardActionInput,
    params(("id" = i64, Path, description = "card id")),
    responses((status = 204), (status = 404, body = crate::web::error::Problem), (status = 409, body = crate::web::error::Problem)))]
pub async fn card_action(
    State(state): State<AppState>,
    req: Require<ManageCards>,
    Path(id): Path<i64>,
    ApiJson(input): ApiJson<CardActionInput>,
) -> Result<StatusCode, ApiError> {
    service::change_status(
        &state,
        &req.actor,
        Some(&req.scope),
        id,
        input.action,
        &input.note,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Lost-card reports in my scope, newest first.
#[utoipa::path(get, path = "/api/v1/cards/loss-reports", tag = "cards", responses((status = 200, body = Vec<LossReportView>)))]
pub async fn loss_reports(
    State(state): State<AppState>,
    req: Require<ManageCards>,
) -> Result<Json<Vec<LossReportView>>, ApiError> {
    let units = scoped_units(&state, &req.scope).await?;
    let mut conn = state.db().pool().acquire().await?;
    Ok(Json(
        store::loss_reports(&mut conn, units.as_deref()).await?,
    ))
}

/// The ward's card settings.
#[utoipa::path(get, path = "/api/v1/cards/settings", tag = "settings", responses((status = 200, body = CardSettings)))]
pub async fn get_settings(
    State(state): State<AppState>,
    _req: Require<ManageSettings>,
) -> Result<Json<CardSettings>, ApiError> {
    let mut conn = state.db().pool().acquire().await?;
    Ok(Json(service::settings(&mut conn).await?))
}

/// Change the card settings (a record names who).
#[utoipa::path(put, path = "/api/v1/cards/settings", tag = "settings", request_body = CardSettings,
    responses((status = 204), (status = 422, body = crate::web::error::Problem)))]
pub async fn put_settings(
    State(state): State<AppState>,
    req: Require<ManageSettings>,
    ApiJson(input): ApiJson<CardSettings>,
) -> Result<StatusCode, ApiError> {
    service::put_settings(&state, &req.actor, input).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CardStartInput {
    pub purpose: Purpose,
    /// The login id (purpose `login` only).
    #[serde(default)]
    pub login: Option<String>,
}

/// Start a card + PIN ceremony: log in (`login` with a login id), the card
/// step after a password (`step_up`), unlock a locked session (`unlock`),
/// or re-authenticate (`reauth`).
#[utoipa::path(post, path = "/api/v1/session/card", tag = "identity", request_body = CardStartInput,
    responses((status = 200, body = CeremonyOutput), (status = 409, description = "no usable card", body = crate::web::error::Problem)))]
pub async fn start_card(
    State(state): State<AppState>,
    ctx: SessionCtx,
    ApiJson(input): ApiJson<CardStartInput>,
) -> Result<Json<CeremonyOutput>, ApiError> {
    ceremony(service::start_assertion(&state, &ctx, input.purpose, input.login.as_deref()).await?)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CardFinishOutput {
    pub account_id: AccountId,
    pub must_change_password: bool,
}

/// Finish a card + PIN ceremony. A card login sets the session cookie.
#[utoipa::path(post, path = "/api/v1/session/card/finish", tag = "identity", request_body = AssertionFinish,
    responses((status = 200, body = CardFinishOutput),
              (status = 422, description = "refused: replayed or forged response, another person's card, suspended or revoked card, PIN not verified", body = crate::web::error::Problem)))]
pub async fn finish_card(
    State(state): State<AppState>,
    ctx: SessionCtx,
    ApiJson(input): ApiJson<AssertionFinish>,
) -> Result<Response, ApiError> {
    let done = service::finish_assertion(&state, &ctx, &input.ceremony, &input.credential).await?;
    let body = Json(CardFinishOutput {
        account_id: done.account_id,
        must_change_password: done.must_change,
    });
    Ok(match done.token {
        Some(tok) => (
            [(header::SET_COOKIE, session::set_cookie(&state, &tok))],
            body,
        )
            .into_response(),
        None => body.into_response(),
    })
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordAgainInput {
    pub password: String,
}

/// Unlock my locked session with my password (K12.1.5). A session opened
/// by card unlocks only with the card (`POST /api/v1/session/card`, `unlock`).
#[utoipa::path(post, path = "/api/v1/session/unlock", tag = "identity", request_body = PasswordAgainInput,
    responses((status = 204), (status = 401, body = crate::web::error::Problem), (status = 422, body = crate::web::error::Problem)))]
pub async fn unlock(
    State(state): State<AppState>,
    ctx: SessionCtx,
    ApiJson(input): ApiJson<PasswordAgainInput>,
) -> Result<StatusCode, ApiError> {
    if ctx.account_id.is_none() {
        return Err(AppError::Unauthenticated.into());
    }
    if !ctx.locked {
        return Err(AppError::Conflict("lock.not_locked").into());
    }
    service::password_again(&state, &ctx, &input.password).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Re-authenticate with my password before a sensitive action.
#[utoipa::path(post, path = "/api/v1/session/reauth", tag = "identity", request_body = PasswordAgainInput,
    responses((status = 204), (status = 401, body = crate::web::error::Problem), (status = 422, body = crate::web::error::Problem)))]
pub async fn reauth(
    State(state): State<AppState>,
    ctx: SessionCtx,
    ApiJson(input): ApiJson<PasswordAgainInput>,
) -> Result<StatusCode, ApiError> {
    if ctx.locked {
        return Err(AppError::SessionLocked.into());
    }
    service::password_again(&state, &ctx, &input.password).await?;
    Ok(StatusCode::NO_CONTENT)
}
