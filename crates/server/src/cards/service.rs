//! Card rules and transactions: registration, the card + PIN ceremony,
//! status changes (suspend, reinstate, lost), the card requirement of a
//! login, and the lock screen and re-authentication.

use super::store::{self, CardRow};
use crate::app::AppState;
use crate::auth::session::{self, Opened};
use crate::auth::{token, Actor, ActorScope, SessionCtx};
use crate::clock::date_str;
use crate::db::Conn;
use crate::identity::store::{self as accounts, AccountRow};
use crate::ids::AccountId;
use crate::org;
use crate::records::{self, Outcome, Record, Who};
use crate::web::error::{AppError, FieldError};
use base64::Engine;
use mamori_policy::access::NetworkZone;
use mamori_policy::permission::{self, Action};
use mamori_policy::Role;
use serde_json::json;
use sqlx::Row;
use std::net::IpAddr;
use webauthn_rs::prelude::{
    CreationChallengeResponse, Passkey, PasskeyAuthentication, PasskeyRegistration,
    PublicKeyCredential, RegisterPublicKeyCredential, RequestChallengeResponse, Url, Uuid,
    Webauthn, WebauthnBuilder, WebauthnError,
};

/// A ceremony's challenge is good for this long.
const CEREMONY_SECS: i64 = 300;

/// Ward settings of the cards (stored as text in `settings`).
pub const SETTING_MODELS: &str = "cards.allowed_models";
pub const SETTING_ROLES: &str = "cards.required_roles";
pub const SETTING_ZONES: &str = "cards.required_zones";
pub const SETTING_ADMIN: &str = "cards.admin_two_factor";

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The relying party as configured. A bad configuration is an internal
/// error (logged), never the user's fault.
fn webauthn(state: &AppState) -> Result<Webauthn, AppError> {
    let cfg = &state.config().cards;
    let origin = Url::parse(&cfg.origin)
        .map_err(|e| AppError::Internal(format!("cards.origin {:?}: {e}", cfg.origin)))?;
    WebauthnBuilder::new(&cfg.rp_id, &origin)
        .and_then(|b| b.rp_name(&cfg.rp_name).build())
        .map_err(|e| AppError::Internal(format!("WebAuthn relying party: {e}")))
}

/// What refuses a card response; each has a message and is recorded.
fn rejected(code: &'static str) -> AppError {
    AppError::Invalid(vec![
        FieldError::new("credential", code, &[]).with_clause("K11.2")
    ])
}

fn webauthn_reason(e: &WebauthnError) -> &'static str {
    match e {
        WebauthnError::UserNotVerified => "card.pin_not_verified",
        WebauthnError::CredentialPossibleCompromise => "card.counter_regressed",
        WebauthnError::MismatchedChallenge | WebauthnError::ChallengeNotFound => "card.replayed",
        _ => "card.invalid_response",
    }
}

/// The card settings of the ward.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CardSettings {
    /// AAGUIDs of the card models the ward accepts; empty accepts any.
    pub allowed_models: Vec<String>,
    /// Roles (codes such as `operator`) whose holders must log in with a card.
    pub required_roles: Vec<String>,
    /// Zones (`my_number`, `lgwan`, `internet`) where a login needs a card
    /// and password alone is refused.
    pub required_zones: Vec<String>,
    /// Administrators (roles with account-management rights) log in with
    /// password and card: 0 never, 1 once they hold an active card (the
    /// rollout default), 2 always (an administrator without a card cannot
    /// log in).
    pub admin_two_factor: i64,
}

fn split(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

pub async fn settings(conn: &mut Conn) -> Result<CardSettings, AppError> {
    let admin = store::get_text(conn, SETTING_ADMIN).await?;
    Ok(CardSettings {
        allowed_models: split(&store::get_text(conn, SETTING_MODELS).await?),
        required_roles: split(&store::get_text(conn, SETTING_ROLES).await?),
        required_zones: split(&store::get_text(conn, SETTING_ZONES).await?),
        admin_two_factor: admin.parse().unwrap_or(1),
    })
}

/// Changes the card settings; every value is checked and the change is a record.
pub async fn put_settings(
    state: &AppState,
    actor: &Actor,
    input: CardSettings,
) -> Result<(), AppError> {
    let mut errors = Vec::new();
    let mut models = Vec::new();
    for (i, m) in input.allowed_models.iter().enumerate() {
        match Uuid::parse_str(m.trim()) {
            Ok(u) => models.push(u.hyphenated().to_string()),
            Err(_) => errors.push(FieldError::new(
                format!("allowed_models/{i}"),
                "cards.settings.bad_model",
                &[],
            )),
        }
    }
    for (i, r) in input.required_roles.iter().enumerate() {
        if r.parse::<Role>().is_err() {
            errors.push(FieldError::new(
                format!("required_roles/{i}"),
                "cards.settings.bad_role",
                &[],
            ));
        }
    }
    for (i, z) in input.required_zones.iter().enumerate() {
        if z.parse::<NetworkZone>().is_err() {
            errors.push(FieldError::new(
                format!("required_zones/{i}"),
                "cards.settings.bad_zone",
                &[],
            ));
        }
    }
    if !(0..=2).contains(&input.admin_two_factor) {
        errors.push(FieldError::new(
            "admin_two_factor",
            "cards.settings.bad_admin",
            &[],
        ));
    }
    crate::web::json::done(errors)?;
    let now = state.clock().unix();
    let by = actor.person_id.map(|p| p.0);
    let mut tx = state.db().begin().await?;
    store::put_text(&mut tx, SETTING_MODELS, &models.join(","), by, now).await?;
    store::put_text(
        &mut tx,
        SETTING_ROLES,
        &input.required_roles.join(","),
        by,
        now,
    )
    .await?;
    store::put_text(
        &mut tx,
        SETTING_ZONES,
        &input.required_zones.join(","),
        by,
        now,
    )
    .await?;
    store::put_text(
        &mut tx,
        SETTING_ADMIN,
        &input.admin_two_factor.to_string(),
        by,
        now,
    )
    .await?;
    let rec = Record::new(actor.who(), "settings.change", "settings:cards", "K11.2")
        .from_ip(actor.ip())
        .detail(json!({ "allowed_models": models, "required_roles": input.required_roles,
                        "required_zones": input.required_zones, "admin_two_factor": input.admin_two_factor }));
    records::append(&mut tx, state.clock().unix_micros(), &rec).await?;
    tx.commit().await?;
    Ok(())
}

/// The zone of a terminal address, from the configured networks.
pub fn zone_of(state: &AppState, ip: &str) -> Option<NetworkZone> {
    let ip: IpAddr = ip.parse().ok()?;
    state
        .config()
        .zones
        .iter()
        .find(|z| z.networks.iter().any(|n| in_network(ip, n)))
        .map(|z| z.zone)
}

/// Whether `ip` is in `net` (`10.0.0.0/8`, `::1/128`, or one address).
/// A malformed network matches nothing.
pub fn in_network(ip: IpAddr, net: &str) -> bool {
    let (addr, bits) = match net.split_once('/') {
        Some((a, b)) => match b.parse::<u32>() {
            Ok(b) => (a, Some(b)),
            Err(_) => return false,
        },
        None => (net, None),
    };
    let Ok(base) = addr.trim().parse::<IpAddr>() else {
        return false;
    };
    match (ip, base) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            let bits = bits.unwrap_or(32);
            if bits > 32 {
                return false;
            }
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(a) & mask == u32::from(b) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let bits = bits.unwrap_or(128);
            if bits > 128 {
                return false;
            }
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(a) & mask == u128::from(b) & mask
        }
        _ => false,
    }
}

/// What a login of one account from one address needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Requirement {
    /// A card with user verification (card + PIN).
    pub card: bool,
    /// The password too (administrators' two factors).
    pub password: bool,
    /// The account holds an active card.
    pub has_card: bool,
}

/// Decides the factors a login needs (K11.2, K17.1): a card where the
/// ward's settings require one for a held role or for the terminal's zone
/// (e.g. マイナンバー利用事務系: card + PIN, password alone refused); for
/// administrators (roles with account-management rights) password and card.
pub async fn requirement(
    conn: &mut Conn,
    state: &AppState,
    account: &AccountRow,
    source_ip: &str,
) -> Result<Requirement, AppError> {
    let s = settings(conn).await?;
    let today = date_str(state.clock().today());
    let mut roles: Vec<Role> = Vec::new();
    if let Some(pid) = account.person_id {
        let rows = sqlx::query(
            "SELECT role FROM role_assignments
             WHERE person_id = $1 AND valid_from <= $2 AND (valid_to IS NULL OR valid_to >= $2)",
        )
        .bind(pid.0)
        .bind(&today)
        .fetch_all(&mut *conn)
        .await?;
        for r in rows {
            if let Ok(role) = r.try_get::<String, _>(0)?.parse::<Role>() {
                roles.push(role);
            }
        }
    }
    roles.push(Role::Staff);
    let has_card = !store::of_account(conn, account.id, Some("active"))
        .await?
        .is_empty();
    let admin = roles
        .iter()
        .any(|r| permission::scope_for(*r, Action::ManageAccounts).is_some());
    let by_role = roles
        .iter()
        .any(|r| s.required_roles.iter().any(|c| c == r.code()));
    let by_zone =
        zone_of(state, source_ip).is_some_and(|z| s.required_zones.iter().any(|c| c == z.code()));
    let admin_card = admin
        && match s.admin_two_factor {
            0 => false,
            1 => has_card,
            _ => true,
        };
    Ok(Requirement {
        card: by_role || by_zone || admin_card,
        password: admin_card,
        has_card,
    })
}

/// The AAGUID (model) in a registration's attestation object: bytes 37–52
/// of its authenticator data. `None` when the object is malformed.
pub fn aaguid_of(attestation_object: &[u8]) -> Option<Uuid> {
    use serde_cbor_2::Value;
    let v: Value = serde_cbor_2::from_slice(attestation_object).ok()?;
    let Value::Map(map) = v else { return None };
    let auth = map.iter().find_map(|(k, v)| match (k, v) {
        (Value::Text(k), Value::Bytes(b)) if k == "authData" => Some(b),
        _ => None,
    })?;
    let bytes: [u8; 16] = auth.get(37..53)?.try_into().ok()?;
    Some(Uuid::from_bytes(bytes))
}

/// Asks for `direct` attestation instead of the passkey default `none`:
/// with `none` browsers blank the AAGUID, and the ward's list of accepted
/// models (K11.2.1) could not be checked. The statement that comes back is
/// verified (its signature) by `webauthn-rs`; its certificate chain is not
/// checked against a vendor list, so the model is the authenticator's
/// signed claim.
fn with_direct_attestation(
    options: &CreationChallengeResponse,
) -> Result<serde_json::Value, AppError> {
    let mut v = serde_json::to_value(options).map_err(|e| AppError::Internal(e.to_string()))?;
    if let Some(pk) = v.get_mut("publicKey").and_then(|p| p.as_object_mut()) {
        pk.insert("attestation".into(), json!("direct"));
    }
    Ok(v)
}

/// A ceremony handed to the browser: its id and the WebAuthn options.
pub struct Started<T> {
    pub ceremony: String,
    pub options: T,
}

async fn record_failure(
    state: &AppState,
    who: Who,
    action: &'static str,
    target: String,
    ip: &str,
    reason: &str,
    extra: serde_json::Value,
) -> Result<(), AppError> {
    let mut detail = json!({ "reason": reason });
    if let (Some(d), serde_json::Value::Object(e)) = (detail.as_object_mut(), extra) {
        d.extend(e);
    }
    let mut tx = state.db().begin().await?;
    let rec = Record::new(who, action, target, "K11.2")
        .outcome(Outcome::Failure)
        .from_ip(ip)
        .detail(detail);
    records::append(&mut tx, state.clock().unix_micros(), &rec).await?;
    tx.commit().await?;
    Ok(())
}

/// Whose card a registration is for.
pub enum For {
    /// The actor's own (from my page).
    Me,
    /// Another person's account, by the security manager in scope.
    Account(AccountId, ActorScope),
}

/// Starts registering a card (K11.2.1). Needs a recent authentication.
pub async fn start_registration(
    state: &AppState,
    actor: &Actor,
    target: For,
    label: &str,
) -> Result<Started<serde_json::Value>, AppError> {
    session::require_recent_auth(state, actor)?;
    let label = label.trim();
    let mut errors = Vec::new();
    crate::web::json::check_text(&mut errors, "label", label, 60, true);
    crate::web::json::done(errors)?;
    let mut conn = state.db().pool().acquire().await?;
    let account_id = match &target {
        For::Me => actor.account_id,
        For::Account(a, _) => *a,
    };
    let account = accounts::by_id(&mut conn, account_id)
        .await?
        .ok_or(AppError::NotFound("account"))?;
    if let For::Account(_, scope) = &target {
        org::service::require_in_scope(&mut conn, scope, account.org_unit_id).await?;
    }
    // K11.2.1: a card belongs to one named person; a shared account has none.
    let Some(person) = account.person_id else {
        return Err(AppError::invalid(
            "account_id",
            "card.personal_accounts_only",
            &[],
        ));
    };
    let name = crate::people::store::get_person(&mut conn, person)
        .await?
        .map(|p| p.name_kanji)
        .unwrap_or_default();
    let existing: Vec<Vec<u8>> = store::of_account(&mut conn, account.id, None)
        .await?
        .iter()
        .filter_map(|c| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(&c.credential_id)
                .ok()
        })
        .collect();
    let user = Uuid::from_u64_pair(0x6d61_6d6f_7269, account.id.0 as u64);
    let (options, reg) = webauthn(state)?
        .start_passkey_registration(user, &account.login, &name, Some(existing))
        .map_err(|e| AppError::Internal(format!("start registration: {e}")))?;
    let options = with_direct_attestation(&options)?;
    let state_json = serde_json::to_string(&reg).map_err(|e| AppError::Internal(e.to_string()))?;
    let ceremony = token::new_token();
    store::put_ceremony(
        &mut conn,
        &token::digest(&ceremony),
        "register",
        account.id,
        actor.session.id_hash.as_deref(),
        label,
        &actor.who().record_ref(),
        &state_json,
        state.clock().unix(),
    )
    .await?;
    Ok(Started { ceremony, options })
}

/// Finishes a registration: the response must answer this session's
/// challenge, with user verification, from an accepted model, and the
/// card must not be registered already (to anyone).
pub async fn finish_registration(
    state: &AppState,
    actor: &Actor,
    ceremony: &str,
    credential: &RegisterPublicKeyCredential,
) -> Result<i64, AppError> {
    let now = state.clock().unix();
    let taken = {
        let mut conn = state.db().pool().acquire().await?;
        store::take_ceremony(&mut conn, &token::digest(ceremony)).await?
    };
    let fail = |reason: &'static str, target: String| async move {
        record_failure(
            state,
            actor.who(),
            "card.register",
            target,
            actor.ip(),
            reason,
            json!({}),
        )
        .await?;
        Err::<i64, AppError>(rejected(reason))
    };
    let Some(c) = taken.filter(|c| {
        c.purpose == "register"
            && c.session_hash.as_deref() == actor.session.id_hash.as_deref()
            && c.started_by == actor.who().record_ref()
            && now - c.created_at <= CEREMONY_SECS
    }) else {
        return fail("card.replayed", actor.account_id.record_ref()).await;
    };
    let target = c.account_id.record_ref();
    let Ok(reg) = serde_json::from_str::<PasskeyRegistration>(&c.state) else {
        return Err(AppError::Internal("stored registration state".into()));
    };
    let passkey = match webauthn(state)?.finish_passkey_registration(credential, &reg) {
        Ok(p) => p,
        Err(e) => return fail(webauthn_reason(&e), target).await,
    };
    let aaguid = aaguid_of(&credential.response.attestation_object).unwrap_or(Uuid::nil());
    let mut conn = state.db().pool().acquire().await?;
    let allowed = settings(&mut conn).await?.allowed_models;
    drop(conn);
    if !allowed.is_empty() && !allowed.contains(&aaguid.hyphenated().to_string()) {
        return fail("card.model_not_allowed", target).await;
    }
    let cred_id = b64(passkey.cred_id());
    let passkey_json =
        serde_json::to_string(&passkey).map_err(|e| AppError::Internal(e.to_string()))?;
    let mut tx = state.db().begin().await?;
    if store::by_credential(&mut tx, &cred_id).await?.is_some() {
        drop(tx);
        return fail("card.already_registered", target).await;
    }
    let account = accounts::by_id(&mut tx, c.account_id)
        .await?
        .ok_or(AppError::NotFound("account"))?;
    let person = account.person_id.ok_or(AppError::NotFound("person"))?;
    let id = store::insert(
        &mut tx,
        person,
        account.id,
        &cred_id,
        &passkey_json,
        &c.label,
        &aaguid.hyphenated().to_string(),
        &c.started_by,
        now,
    )
    .await?;
    let rec = Record::new(
        actor.who(),
        "card.register",
        format!("card:{id}"),
        "K11.2.1",
    )
    .from_ip(actor.ip())
    .detail(
        json!({ "person": person, "account": account.id, "label": c.label,
                        "aaguid": aaguid.hyphenated().to_string() }),
    );
    records::append(&mut tx, state.clock().unix_micros(), &rec).await?;
    tx.commit().await?;
    Ok(id)
}

/// Why a card is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    /// Log in with card + PIN (login id given).
    Login,
    /// The second factor after the password.
    StepUp,
    /// Unlock a locked session.
    Unlock,
    /// Re-authenticate before a sensitive action.
    Reauth,
}

impl Purpose {
    fn code(self) -> &'static str {
        match self {
            Purpose::Login => "login",
            Purpose::StepUp => "step_up",
            Purpose::Unlock => "unlock",
            Purpose::Reauth => "reauth",
        }
    }
}

/// The account a purpose is about, from the session or the login id.
async fn subject(
    conn: &mut Conn,
    ctx: &SessionCtx,
    purpose: Purpose,
    login: Option<&str>,
) -> Result<Option<AccountRow>, AppError> {
    let id = match purpose {
        Purpose::Login => {
            let login = login.unwrap_or("").trim();
            if login.is_empty() || login.len() > 64 {
                return Ok(None);
            }
            return Ok(accounts::by_login(conn, login).await?);
        }
        Purpose::StepUp if ctx.stage == "card" && !ctx.locked => ctx.account_id,
        Purpose::Unlock if ctx.locked && ctx.stage == "full" => ctx.account_id,
        Purpose::Reauth if ctx.is_full() => ctx.account_id,
        _ => None,
    };
    match id {
        Some(id) => Ok(accounts::by_id(conn, id).await?),
        None => Ok(None),
    }
}

/// Starts a card + PIN ceremony. The user sees one refusal whatever the
/// reason (unknown login, no active card), so login ids cannot be probed.
pub async fn start_assertion(
    state: &AppState,
    ctx: &SessionCtx,
    purpose: Purpose,
    login: Option<&str>,
) -> Result<Started<RequestChallengeResponse>, AppError> {
    let mut conn = state.db().pool().acquire().await?;
    let account = subject(&mut conn, ctx, purpose, login).await?;
    let cards = match &account {
        Some(a) => store::of_account(&mut conn, a.id, Some("active")).await?,
        None => Vec::new(),
    };
    let passkeys: Vec<Passkey> = cards
        .iter()
        .filter_map(|c| serde_json::from_str(&c.passkey).ok())
        .collect();
    drop(conn);
    let (Some(account), false) = (account, passkeys.is_empty()) else {
        if purpose == Purpose::Login || ctx.account_id.is_some() {
            record_failure(
                state,
                ctx.account_id.map(Who::Account).unwrap_or(Who::Anonymous),
                "auth.card",
                "account:unknown".into(),
                &ctx.source_ip,
                "no_active_card",
                json!({ "purpose": purpose.code(),
                        "login": login.unwrap_or("").chars().take(64).collect::<String>() }),
            )
            .await?;
        }
        return Err(AppError::Conflict("card.no_usable_card"));
    };
    let (options, auth) = webauthn(state)?
        .start_passkey_authentication(&passkeys)
        .map_err(|e| AppError::Internal(format!("start authentication: {e}")))?;
    let state_json = serde_json::to_string(&auth).map_err(|e| AppError::Internal(e.to_string()))?;
    let ceremony = token::new_token();
    let mut conn = state.db().pool().acquire().await?;
    store::put_ceremony(
        &mut conn,
        &token::digest(&ceremony),
        purpose.code(),
        account.id,
        ctx.id_hash.as_deref(),
        "",
        "",
        &state_json,
        state.clock().unix(),
    )
    .await?;
    Ok(Started { ceremony, options })
}

/// What a finished card ceremony did.
pub struct Asserted {
    pub account_id: AccountId,
    /// A new session's cookie token (card login only).
    pub token: Option<String>,
    pub must_change: bool,
}

/// Finishes a card + PIN ceremony. Refused, with a record and a clear
/// message: a response to no open challenge (replayed or forged), a card
/// of another person, a suspended or revoked card, a failed PIN (user
/// verification), a signature that does not verify, a counter gone back.
pub async fn finish_assertion(
    state: &AppState,
    ctx: &SessionCtx,
    ceremony: &str,
    credential: &PublicKeyCredential,
) -> Result<Asserted, AppError> {
    let now = state.clock().unix();
    let who = ctx.account_id.map(Who::Account).unwrap_or(Who::Anonymous);
    let cred_id = b64(&credential.raw_id);
    let fail = |reason: &'static str, target: String, purpose: &str| {
        let who = who.clone();
        let purpose = purpose.to_string();
        let cred = cred_id.clone();
        async move {
            record_failure(
                state,
                who,
                "auth.card",
                target,
                &ctx.source_ip,
                reason,
                json!({ "purpose": purpose, "credential": cred.chars().take(16).collect::<String>() }),
            )
            .await?;
            Err::<Asserted, AppError>(rejected(reason))
        }
    };
    let taken = {
        let mut conn = state.db().pool().acquire().await?;
        store::take_ceremony(&mut conn, &token::digest(ceremony)).await?
    };
    let Some(c) = taken.filter(|c| {
        c.purpose != "register"
            && c.session_hash.as_deref() == ctx.id_hash.as_deref()
            && now - c.created_at <= CEREMONY_SECS
    }) else {
        return fail("card.replayed", "account:unknown".into(), "").await;
    };
    let target = c.account_id.record_ref();
    let card: Option<CardRow> = {
        let mut conn = state.db().pool().acquire().await?;
        store::by_credential(&mut conn, &cred_id).await?
    };
    let Some(card) = card else {
        return fail("card.unknown", target, &c.purpose).await;
    };
    if card.account_id != c.account_id {
        return fail("card.other_person", target, &c.purpose).await;
    }
    match card.status.as_str() {
        "active" => {}
        "suspended" => return fail("card.suspended", target, &c.purpose).await,
        _ => return fail("card.revoked", target, &c.purpose).await,
    }
    let Ok(auth) = serde_json::from_str::<PasskeyAuthentication>(&c.state) else {
        return Err(AppError::Internal("stored authentication state".into()));
    };
    let result = match webauthn(state)?.finish_passkey_authentication(credential, &auth) {
        Ok(r) => r,
        Err(e) => return fail(webauthn_reason(&e), target, &c.purpose).await,
    };
    if !result.user_verified() {
        return fail("card.pin_not_verified", target, &c.purpose).await;
    }
    let mut passkey: Passkey =
        serde_json::from_str(&card.passkey).map_err(|e| AppError::Internal(e.to_string()))?;
    passkey.update_credential(&result);
    let passkey_json =
        serde_json::to_string(&passkey).map_err(|e| AppError::Internal(e.to_string()))?;
    let mut tx = state.db().begin().await?;
    let account = accounts::by_id(&mut tx, c.account_id)
        .await?
        .ok_or(AppError::NotFound("account"))?;
    let today = date_str(state.clock().today());
    let gone = account.disabled
        || account.manual_lock
        || account.locked_until.is_some_and(|t| t > now)
        || matches!(
            account.person_status.as_deref(),
            Some("retired") | Some("pending")
        )
        || account
            .left_on
            .as_deref()
            .is_some_and(|d| d <= today.as_str());
    if gone {
        drop(tx);
        return fail("card.account_unavailable", target, &c.purpose)
            .await
            .map_err(|_| AppError::Conflict("login.failed"));
    }
    store::used(&mut tx, card.id, &passkey_json, now).await?;
    let purpose = c.purpose.as_str();
    let mut out = Asserted {
        account_id: account.id,
        token: None,
        must_change: account.must_change || account.password_hash.is_none(),
    };
    let (action, clause) = match purpose {
        "login" => {
            let req = requirement(&mut tx, state, &account, &ctx.source_ip).await?;
            if req.password {
                drop(tx);
                return fail("card.password_also_required", target, purpose).await;
            }
            if let Some(old) = &ctx.id_hash {
                session::end(&mut tx, now, old, "replaced_by_login").await?;
            }
            let opened = Opened {
                factors: "card",
                stage: "full",
                card_id: Some(card.id),
            };
            let (tok, _) =
                session::create_opened(&mut tx, state, Some(account.id), ctx, &opened).await?;
            accounts::record_success(&mut tx, account.id, now).await?;
            out.token = Some(tok);
            ("auth.login", "K11.2")
        }
        "step_up" => {
            let hash = ctx.id_hash.as_deref().unwrap_or("");
            session::authenticated(&mut tx, now, hash, Some(card.id), Some("password+card"))
                .await?;
            ("auth.login", "K11.2")
        }
        "unlock" => {
            let hash = ctx.id_hash.as_deref().unwrap_or("");
            session::authenticated(&mut tx, now, hash, None, None).await?;
            ("session.unlock", "K12.1.5")
        }
        _ => {
            let hash = ctx.id_hash.as_deref().unwrap_or("");
            session::authenticated(&mut tx, now, hash, None, None).await?;
            ("session.reauth", "K12.1.5")
        }
    };
    let rec = Record::new(Who::Account(account.id), action, target, clause)
        .from_ip(&ctx.source_ip)
        .detail(json!({ "method": "card", "card": card.id, "purpose": purpose }));
    records::append(&mut tx, state.clock().unix_micros(), &rec).await?;
    tx.commit().await?;
    Ok(out)
}

/// Unlocks a locked session, or re-authenticates a live one, with the
/// account's password. A session opened by card unlocks only with the
/// card (the card is touched again, K11.2.3). Five wrong passwords in a
/// row end the session, so a session left open cannot be used to guess.
pub async fn password_again(
    state: &AppState,
    ctx: &SessionCtx,
    password: &str,
) -> Result<(), AppError> {
    let unlock = ctx.locked;
    let usable = ctx.account_id.is_some()
        && ctx.stage == "full"
        && (unlock || ctx.is_full())
        && ctx.id_hash.is_some();
    let (Some(account_id), Some(hash), true) = (ctx.account_id, ctx.id_hash.as_deref(), usable)
    else {
        return Err(AppError::Unauthenticated);
    };
    if unlock && ctx.factors.contains("card") {
        return Err(AppError::invalid("password", "lock.card_needed", &[]));
    }
    let account = {
        let mut conn = state.db().pool().acquire().await?;
        accounts::by_id(&mut conn, account_id)
            .await?
            .ok_or(AppError::Unauthenticated)?
    };
    let normalized = mamori_policy::password::normalize_password(password);
    let ok = match &account.password_hash {
        Some(h) => state.hasher().verify(&normalized, h).await,
        None => {
            state.hasher().dummy_verify(&normalized).await;
            false
        }
    };
    let now = state.clock().unix();
    let action = if unlock {
        "session.unlock"
    } else {
        "session.reauth"
    };
    let mut tx = state.db().begin().await?;
    if !ok {
        let ended = session::unlock_failed(&mut tx, now, hash).await?;
        let rec = Record::new(
            Who::Account(account_id),
            action,
            account_id.record_ref(),
            "K12.1.5",
        )
        .outcome(Outcome::Failure)
        .from_ip(&ctx.source_ip)
        .detail(json!({ "method": "password", "reason": "bad_password", "session_ended": ended }));
        records::append(&mut tx, state.clock().unix_micros(), &rec).await?;
        tx.commit().await?;
        return Err(if ended {
            AppError::Unauthenticated
        } else {
            AppError::invalid("password", "lock.wrong_password", &[])
        });
    }
    session::authenticated(&mut tx, now, hash, None, None).await?;
    let rec = Record::new(
        Who::Account(account_id),
        action,
        account_id.record_ref(),
        "K12.1.5",
    )
    .from_ip(&ctx.source_ip)
    .detail(json!({ "method": "password" }));
    records::append(&mut tx, state.clock().unix_micros(), &rec).await?;
    tx.commit().await?;
    Ok(())
}

/// Ends the request's session whatever its state (locked, or waiting for
/// its card): the lock screen's and the card step's way out.
pub async fn end_session(state: &AppState, ctx: &SessionCtx) -> Result<(), AppError> {
    if let (Some(hash), Some(account)) = (&ctx.id_hash, ctx.account_id) {
        let mut tx = state.db().begin().await?;
        session::end(&mut tx, state.clock().unix(), hash, "logout").await?;
        let rec = Record::new(
            Who::Account(account),
            "auth.logout",
            account.record_ref(),
            "K12.1.4",
        )
        .from_ip(&ctx.source_ip);
        records::append(&mut tx, state.clock().unix_micros(), &rec).await?;
        tx.commit().await?;
    }
    Ok(())
}

/// What is done to a card.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CardAction {
    /// Stop the card for now; its sessions end.
    Suspend,
    /// Let a suspended card be used again.
    Reinstate,
    /// K11.2.2: revoked at once, its sessions end, an incident report opens.
    ReportLost,
}

/// Changes a card's status. `scope` is `None` for the holder (who may only
/// report it lost), else the manager's scope.
pub async fn change_status(
    state: &AppState,
    actor: &Actor,
    scope: Option<&ActorScope>,
    card_id: i64,
    what: CardAction,
    note: &str,
) -> Result<(), AppError> {
    let note: String = note.trim().chars().take(500).collect();
    let now = state.clock().unix();
    let mut tx = state.db().begin().await?;
    let card = store::get(&mut tx, card_id)
        .await?
        .ok_or(AppError::NotFound("card"))?;
    match scope {
        None => {
            if card.account_id != actor.account_id {
                return Err(AppError::NotFound("card"));
            }
            if what != CardAction::ReportLost {
                return Err(AppError::Forbidden("manage_cards"));
            }
        }
        Some(scope) => org::service::require_in_scope(&mut tx, scope, card.org_unit_id).await?,
    }
    let target = format!("card:{}", card.id);
    let mut records_out = Vec::new();
    match (what, card.status.as_str()) {
        (_, "revoked") => return Err(AppError::Conflict("card.already_revoked")),
        (CardAction::ReportLost, _) => {
            store::set_status(&mut tx, card.id, "revoked", now).await?;
            let ended = session::end_all_for_card(&mut tx, now, card.id, "card_lost").await?;
            let by = actor.who().record_ref();
            let report =
                store::insert_loss_report(&mut tx, card.id, card.person_id, &by, now, ended, &note)
                    .await?;
            records_out.push(
                Record::new(actor.who(), "card.lost", target.clone(), "K11.2.2").detail(
                    json!({ "person": card.person_id, "sessions_ended": ended, "report": report }),
                ),
            );
            // The incident module takes open reports over (SPEC §3.6: lost card).
            records_out.push(
                Record::new(
                    actor.who(),
                    "incident.card_lost",
                    format!("card_loss_report:{report}"),
                    "K10.1",
                )
                .detail(json!({ "card": card.id, "person": card.person_id, "note": note })),
            );
        }
        (CardAction::Suspend, "active") => {
            store::set_status(&mut tx, card.id, "suspended", now).await?;
            let ended = session::end_all_for_card(&mut tx, now, card.id, "card_suspended").await?;
            records_out.push(
                Record::new(actor.who(), "card.suspend", target.clone(), "K11.2.2").detail(
                    json!({ "person": card.person_id, "sessions_ended": ended, "note": note }),
                ),
            );
        }
        (CardAction::Reinstate, "suspended") => {
            store::set_status(&mut tx, card.id, "active", now).await?;
            records_out.push(
                Record::new(actor.who(), "card.reinstate", target.clone(), "K11.2.2")
                    .detail(json!({ "person": card.person_id, "note": note })),
            );
        }
        (CardAction::Suspend, _) => return Err(AppError::Conflict("card.not_active")),
        (CardAction::Reinstate, _) => return Err(AppError::Conflict("card.not_suspended")),
    }
    let t = state.clock().unix_micros();
    for r in records_out {
        records::append(&mut tx, t, &r.from_ip(actor.ip())).await?;
    }
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_match_by_prefix() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        for (addr, net, expected) in [
            ("10.10.3.4", "10.10.0.0/16", true),
            ("10.11.3.4", "10.10.0.0/16", false),
            ("127.0.0.1", "127.0.0.1", true),
            ("127.0.0.2", "127.0.0.0/8", true),
            ("1.2.3.4", "0.0.0.0/0", true),
            ("::1", "::1/128", true),
            ("::1", "127.0.0.0/8", false),
            ("10.0.0.1", "10.0.0.0/33", false),
            ("10.0.0.1", "not a network", false),
            ("10.0.0.1", "10.0.0.0/x", false),
        ] {
            assert_eq!(in_network(ip(addr), net), expected, "{addr} in {net}");
        }
    }

    #[test]
    fn aaguid_needs_a_well_formed_object() {
        assert_eq!(aaguid_of(b""), None);
        assert_eq!(aaguid_of(&[0xa0]), None);
    }
}
