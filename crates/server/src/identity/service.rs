//! Login, password changes and account administration.

use super::store::{self, AccountRow};
use crate::app::AppState;
use crate::auth::{session, Actor, ActorScope, SessionCtx};
use crate::clock::date_str;
use crate::db::Conn;
use crate::ids::{AccountId, OrgUnitId, PersonId};
use crate::org;
use crate::people::PersonSecrets;
use crate::records::{self, Outcome, Record, Who};
use crate::web::error::{AppError, FieldError};
use mamori_policy::password::{self, PersonFacts};
use rand::Rng;
use serde_json::json;
use std::borrow::Cow;

/// Why a login was refused. The user sees one message for all of them
/// (no hint whether the login id exists); the record keeps the reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginRefusal {
    BadCredentials,
    Locked,
    SourceThrottled,
    Disabled,
}

impl LoginRefusal {
    pub fn code(self) -> &'static str {
        match self {
            LoginRefusal::BadCredentials => "bad_credentials",
            LoginRefusal::Locked => "locked",
            LoginRefusal::SourceThrottled => "source_throttled",
            LoginRefusal::Disabled => "disabled",
        }
    }
}

/// A new session after a successful login.
pub struct LoginSuccess {
    pub token: String,
    pub account_id: AccountId,
    pub must_change: bool,
    /// The login needs a card as well (K11.2): the session is half-open
    /// until the card step (`/login/card`) completes it.
    pub card_step: bool,
}

fn backoff(failures: i64, threshold: i64, base: i64, max: i64) -> Option<i64> {
    if failures < threshold {
        return None;
    }
    let doublings = (failures - threshold).min(20) as u32;
    Some(base.saturating_mul(1i64 << doublings).min(max))
}

fn refuse(e: LoginRefusal) -> AppError {
    match e {
        LoginRefusal::SourceThrottled => AppError::TooManyRequests,
        _ => AppError::Conflict("login.failed"),
    }
}

/// Checks a login id and password and starts a session. Failures count per
/// account and per source address, with locks that double in length.
pub async fn login(
    state: &AppState,
    ctx: &SessionCtx,
    login: &str,
    password: &str,
) -> Result<LoginSuccess, AppError> {
    let cfg = &state.config().lockout;
    let now = state.clock().unix();
    let today = date_str(state.clock().today());
    let source = if ctx.source_ip.is_empty() {
        "unknown".to_string()
    } else {
        ctx.source_ip.clone()
    };
    let login = login.trim();
    let (account, source_state) = {
        let mut conn = state.db().pool().acquire().await?;
        let a = if login.is_empty() || login.len() > 64 {
            None
        } else {
            store::by_login(&mut conn, login).await?
        };
        (a, store::source_state(&mut conn, &source).await?)
    };
    let refusal = |reason: LoginRefusal, account: Option<&AccountRow>| {
        Record::new(
            account
                .map(|a| Who::Account(a.id))
                .unwrap_or(Who::Anonymous),
            "auth.login",
            account
                .map(|a| a.id.record_ref())
                .unwrap_or_else(|| "account:unknown".into()),
            "K17.1",
        )
        .outcome(Outcome::Failure)
        .from_ip(&source)
        .detail(
            json!({ "reason": reason.code(), "login": login.chars().take(64).collect::<String>() }),
        )
    };
    if let Some((_, Some(until), _)) = source_state {
        if until > now {
            let mut tx = state.db().begin().await?;
            records::append(
                &mut tx,
                state.clock().unix_micros(),
                &refusal(LoginRefusal::SourceThrottled, account.as_ref()),
            )
            .await?;
            tx.commit().await?;
            return Err(refuse(LoginRefusal::SourceThrottled));
        }
    }
    let normalized = password::normalize_password(password);
    let verdict = match &account {
        None => {
            state.hasher().dummy_verify(&normalized).await;
            Err(LoginRefusal::BadCredentials)
        }
        Some(a) if a.manual_lock || a.locked_until.is_some_and(|t| t > now) => {
            state.hasher().dummy_verify(&normalized).await;
            Err(LoginRefusal::Locked)
        }
        Some(a) => {
            let ok = match &a.password_hash {
                Some(h) => state.hasher().verify(&normalized, h).await,
                None => {
                    state.hasher().dummy_verify(&normalized).await;
                    false
                }
            };
            let gone = a.disabled
                || matches!(
                    a.person_status.as_deref(),
                    Some("retired") | Some("pending")
                )
                || a.left_on.as_deref().is_some_and(|d| d <= today.as_str());
            match (ok, gone) {
                (false, _) => Err(LoginRefusal::BadCredentials),
                // K17.3: a retired person's account never logs in after the date.
                (true, true) => Err(LoginRefusal::Disabled),
                (true, false) => Ok(()),
            }
        }
    };
    let mut tx = state.db().begin().await?;
    match verdict {
        Err(reason) => {
            if let (Some(a), LoginRefusal::BadCredentials) = (&account, reason) {
                let failures = a.failed_logins + 1;
                let lock = backoff(failures, cfg.account_threshold, cfg.base_secs, cfg.max_secs)
                    .map(|d| now + d);
                store::record_failure(&mut tx, a.id, failures, lock).await?;
            }
            let prev = source_state
                .map(|s| if now - s.2 > cfg.max_secs { 0 } else { s.0 })
                .unwrap_or(0);
            let failures = prev + 1;
            let lock = backoff(failures, cfg.source_threshold, cfg.base_secs, cfg.max_secs)
                .map(|d| now + d);
            store::put_source_state(&mut tx, &source, failures, lock, now).await?;
            records::append(
                &mut tx,
                state.clock().unix_micros(),
                &refusal(reason, account.as_ref()),
            )
            .await?;
            tx.commit().await?;
            Err(refuse(reason))
        }
        Ok(()) => {
            let a = account.ok_or(AppError::Internal("account checked above".into()))?;
            // K32.2: an auditor account outside its audit's period does not log in.
            if let Err(e) =
                crate::audits::service::check_auditor_window(&mut tx, a.id, &today).await
            {
                let rec = refusal(LoginRefusal::Disabled, Some(&a))
                    .detail(json!({ "reason": "audit_period", "login": a.login }));
                records::append(&mut tx, state.clock().unix_micros(), &rec).await?;
                tx.commit().await?;
                return Err(e);
            }
            // K11.2: where a card is required, the password alone does not
            // open a session; without an active card there is no way in.
            let need = crate::cards::service::requirement(&mut tx, state, &a, &source).await?;
            if need.card && !need.has_card {
                let rec = refusal(LoginRefusal::BadCredentials, Some(&a))
                    .detail(json!({ "reason": "card_required_no_card", "login": a.login }));
                records::append(&mut tx, state.clock().unix_micros(), &rec).await?;
                tx.commit().await?;
                return Err(AppError::Conflict("login.card_required_no_card"));
            }
            store::record_success(&mut tx, a.id, now).await?;
            store::clear_source(&mut tx, &source).await?;
            if let Some(old) = &ctx.id_hash {
                session::end(&mut tx, now, old, "replaced_by_login").await?;
            }
            let opened = session::Opened {
                factors: "password",
                stage: if need.card { "card" } else { "full" },
                card_id: None,
            };
            let (token, _) =
                session::create_opened(&mut tx, state, Some(a.id), ctx, &opened).await?;
            let rec = Record::new(Who::Account(a.id), "auth.login", a.id.record_ref(), "K17.1")
                .from_ip(&source)
                .detail(json!({ "method": "password", "card_step": need.card }));
            records::append(&mut tx, state.clock().unix_micros(), &rec).await?;
            tx.commit().await?;
            Ok(LoginSuccess {
                token,
                account_id: a.id,
                must_change: a.must_change || a.password_hash.is_none(),
                card_step: need.card,
            })
        }
    }
}

pub async fn logout(state: &AppState, actor: &Actor) -> Result<(), AppError> {
    let mut tx = state.db().begin().await?;
    if let Some(h) = &actor.session.id_hash {
        session::end(&mut tx, state.clock().unix(), h, "logout").await?;
    }
    let rec = Record::new(
        actor.who(),
        "auth.logout",
        actor.account_id.record_ref(),
        "K12.1.4",
    )
    .from_ip(actor.ip());
    records::append(&mut tx, state.clock().unix_micros(), &rec).await?;
    tx.commit().await?;
    Ok(())
}

fn split_name(full: &str) -> (String, String) {
    let normalized = full.replace('\u{3000}', " ");
    let mut parts = normalized.split_whitespace();
    let family = parts.next().unwrap_or("").to_string();
    let given = parts.collect::<Vec<_>>().join("");
    (family, given)
}

fn facts<'a>(login: &'a str, s: &'a PersonSecrets) -> PersonFacts<'a> {
    let (fk, gk) = split_name(&s.name_kanji);
    let (fa, ga) = split_name(&s.name_kana);
    let (fr, gr) = split_name(&s.name_romaji);
    PersonFacts {
        employee_number: Cow::Borrowed(&s.employee_number),
        login_id: Cow::Borrowed(login),
        family_name_kanji: Cow::Owned(fk),
        given_name_kanji: Cow::Owned(gk),
        full_name_kanji: Cow::Owned(s.name_kanji.replace([' ', '\u{3000}'], "")),
        family_name_kana: Cow::Owned(fa),
        given_name_kana: Cow::Owned(ga),
        family_name_romaji: Cow::Owned(fr),
        given_name_romaji: Cow::Owned(gr),
        birth_date: s.birth_date,
    }
}

/// Turns rule violations into field errors on `field`.
fn violations_to_errors(field: &str, v: Vec<password::Violation>) -> Vec<FieldError> {
    v.into_iter()
        .map(|v| {
            let params: Vec<(&str, String)> = v.params();
            FieldError::new(field, v.code(), &params).with_clause(v.clause())
        })
        .collect()
}

/// Sets a new password after every rule: K11.1.2 (not built from known
/// strings; unique among users), history (K11.1.5), strength. `who` is the
/// actor for the record.
async fn set_new_password(
    state: &AppState,
    account: &AccountRow,
    new_password: &str,
    must_change_after: bool,
    who: Who,
    ip: &str,
    action: &'static str,
) -> Result<(), AppError> {
    let normalized = password::normalize_password(new_password);
    let secrets = match account.person_id {
        Some(pid) => {
            let mut conn = state.db().pool().acquire().await?;
            crate::people::store::secrets(&mut conn, pid)
                .await?
                .unwrap_or_default()
        }
        None => PersonSecrets::default(),
    };
    if let Err(v) = password::check_password(
        &state.config().password,
        new_password,
        &facts(&account.login, &secrets),
    ) {
        return Err(AppError::Invalid(violations_to_errors("new_password", v)));
    }
    let (history_n, candidates) = {
        let mut conn = state.db().pool().acquire().await?;
        let n = crate::settings::get(&mut conn, "password.history").await?;
        let fp = i64::from(password::fingerprint_bits(
            state.fingerprint_key(),
            &normalized,
            password::DEFAULT_FINGERPRINT_BITS,
        ));
        (
            store::recent_hashes(&mut conn, account.id, n.max(1)).await?,
            (
                fp,
                store::fingerprint_candidates(&mut conn, fp, account.id).await?,
            ),
        )
    };
    for old in &history_n {
        if state.hasher().verify(&normalized, old).await {
            return Err(AppError::Invalid(vec![FieldError::new(
                "new_password",
                "password.reused",
                &[],
            )
            .with_clause("K11.1.5")]));
        }
    }
    let (fp, others) = candidates;
    for (other, hash) in &others {
        if state.hasher().verify(&normalized, hash).await {
            // K11.1.2: no two users share a password. The other holder's
            // password is now known to someone, so they must change it too.
            let mut tx = state.db().begin().await?;
            store::force_change(&mut tx, *other, "password_shared").await?;
            let now_us = state.clock().unix_micros();
            let r1 = Record::new(who.clone(), action, account.id.record_ref(), "K11.1.2")
                .outcome(Outcome::Failure)
                .from_ip(ip)
                .detail(json!({ "reason": "not_unique" }));
            let r2 = Record::new(
                Who::Scheduler,
                "password.force_change",
                other.record_ref(),
                "K11.1.2",
            )
            .detail(json!({ "reason": "password_shared", "with": account.id }));
            records::append(&mut tx, now_us, &r1).await?;
            records::append(&mut tx, now_us, &r2).await?;
            tx.commit().await?;
            return Err(AppError::Invalid(vec![FieldError::new(
                "new_password",
                "password.not_unique",
                &[],
            )
            .with_clause("K11.1.2")]));
        }
    }
    let hash = state
        .hasher()
        .hash(&normalized)
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?;
    let mut tx = state.db().begin().await?;
    store::set_password(
        &mut tx,
        account.id,
        &hash,
        fp,
        state.clock().unix(),
        must_change_after,
    )
    .await?;
    let rec = Record::new(who, action, account.id.record_ref(), "K17.4").from_ip(ip);
    records::append(&mut tx, state.clock().unix_micros(), &rec).await?;
    tx.commit().await?;
    Ok(())
}

/// The account holder changes their own password; the current one is
/// required. Other sessions of the account end.
pub async fn change_own_password(
    state: &AppState,
    actor: &Actor,
    current: &str,
    new_password: &str,
) -> Result<(), AppError> {
    let account = {
        let mut conn = state.db().pool().acquire().await?;
        store::by_id(&mut conn, actor.account_id)
            .await?
            .ok_or(AppError::NotFound("account"))?
    };
    let ok = match &account.password_hash {
        Some(h) => {
            state
                .hasher()
                .verify(&password::normalize_password(current), h)
                .await
        }
        None => false,
    };
    if !ok {
        let mut tx = state.db().begin().await?;
        let rec = Record::new(
            actor.who(),
            "password.change",
            account.id.record_ref(),
            "K11.1.1",
        )
        .outcome(Outcome::Failure)
        .from_ip(actor.ip())
        .detail(json!({ "reason": "wrong_current_password" }));
        records::append(&mut tx, state.clock().unix_micros(), &rec).await?;
        tx.commit().await?;
        return Err(AppError::invalid(
            "current_password",
            "password.wrong_current",
            &[],
        ));
    }
    if current == new_password {
        return Err(AppError::invalid(
            "new_password",
            "password.same_as_current",
            &[],
        ));
    }
    set_new_password(
        state,
        &account,
        new_password,
        false,
        actor.who(),
        actor.ip(),
        "password.change",
    )
    .await?;
    // End the account's other sessions: whoever else was logged in with the
    // old password is out.
    let mut tx = state.db().begin().await?;
    let now = state.clock().unix();
    sqlx::query("UPDATE sessions SET ended_at = $1, ended_reason = 'password_changed' WHERE account_id = $2 AND ended_at IS NULL AND id_hash <> $3")
        .bind(now)
        .bind(account.id.0)
        .bind(actor.session.id_hash.clone().unwrap_or_default())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// A one-time password: 16 characters from an alphabet without look-alikes,
/// in groups of four. It must be changed at first login.
pub fn one_time_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rngs::OsRng;
    let chars: String = (0..16)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect();
    format!(
        "{}-{}-{}-{}",
        &chars[0..4],
        &chars[4..8],
        &chars[8..12],
        &chars[12..16]
    )
}

/// Issues a one-time password (CLI `mamori user reset-password`, or a
/// manager for their unit). Ends the account's sessions and unlocks it.
pub async fn reset_password(
    state: &AppState,
    who: Who,
    ip: &str,
    account: AccountId,
) -> Result<String, AppError> {
    let acc = {
        let mut conn = state.db().pool().acquire().await?;
        store::by_id(&mut conn, account)
            .await?
            .ok_or(AppError::NotFound("account"))?
    };
    // A random one-time password can collide with the rules only by a
    // freak chance (e.g. containing a short name); try again then.
    let mut last_err = None;
    for _ in 0..5 {
        let otp = one_time_password();
        match set_new_password(state, &acc, &otp, true, who.clone(), ip, "password.reset").await {
            Ok(()) => {
                let mut tx = state.db().begin().await?;
                store::set_manual_lock(&mut tx, account, false).await?;
                session::end_all_for_account(
                    &mut tx,
                    state.clock().unix(),
                    account,
                    "password_reset",
                )
                .await?;
                tx.commit().await?;
                return Ok(otp);
            }
            Err(e @ AppError::Invalid(_)) => last_err = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last_err.unwrap_or(AppError::Internal(
        "could not make a one-time password".into(),
    )))
}

/// The account's unit, for scope checks.
pub async fn account_unit(
    conn: &mut Conn,
    account: AccountId,
) -> Result<(AccountRow, Option<OrgUnitId>), AppError> {
    let acc = store::by_id(conn, account)
        .await?
        .ok_or(AppError::NotFound("account"))?;
    let unit = acc.org_unit_id;
    Ok((acc, unit))
}

/// What an administrator does to one account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AccountAction {
    Lock,
    Unlock,
    ForcePasswordChange,
    EndSessions,
}

impl AccountAction {
    fn record(self) -> (&'static str, &'static str) {
        match self {
            AccountAction::Lock => ("account.lock", "K17.3"),
            AccountAction::Unlock => ("account.unlock", "K17.3"),
            AccountAction::ForcePasswordChange => ("password.force_change", "K11.1.5"),
            AccountAction::EndSessions => ("session.end_all", "K12.1.5"),
        }
    }
}

pub async fn administer(
    state: &AppState,
    actor: &Actor,
    scope: &ActorScope,
    account: AccountId,
    what: AccountAction,
) -> Result<(), AppError> {
    let mut tx = state.db().begin().await?;
    let (_, unit) = account_unit(&mut tx, account).await?;
    org::service::require_in_scope(&mut tx, scope, unit).await?;
    let now = state.clock().unix();
    let mut detail = json!({});
    match what {
        AccountAction::Lock => {
            store::set_manual_lock(&mut tx, account, true).await?;
            session::end_all_for_account(&mut tx, now, account, "locked").await?;
        }
        AccountAction::Unlock => store::set_manual_lock(&mut tx, account, false).await?,
        AccountAction::ForcePasswordChange => {
            store::force_change(&mut tx, account, "forced_by_manager").await?
        }
        AccountAction::EndSessions => {
            let n = session::end_all_for_account(&mut tx, now, account, "ended_by_manager").await?;
            detail = json!({ "sessions": n });
        }
    }
    let (action, clause) = what.record();
    let rec = Record::new(actor.who(), action, account.record_ref(), clause)
        .from_ip(actor.ip())
        .detail(detail);
    records::append(&mut tx, state.clock().unix_micros(), &rec).await?;
    tx.commit().await?;
    Ok(())
}

/// Forces a password change for everyone in a unit (and below), or the
/// whole ward, after a suspected compromise (K11.1.5). Returns the count.
pub async fn force_change_many(
    state: &AppState,
    actor: &Actor,
    scope: &ActorScope,
    unit: Option<OrgUnitId>,
    reason: &str,
) -> Result<usize, AppError> {
    let mut tx = state.db().begin().await?;
    let units = match unit {
        Some(u) => {
            if org::store::get_unit(&mut tx, u).await?.is_none() {
                return Err(AppError::invalid("org_unit_id", "org.no_such_unit", &[]));
            }
            org::service::require_in_scope(&mut tx, scope, Some(u)).await?;
            Some(org::store::descendants(&mut tx, u).await?)
        }
        None => {
            if *scope != ActorScope::Ward {
                return Err(AppError::Forbidden("force_change_all"));
            }
            None
        }
    };
    let ids = store::ids_in_units(&mut tx, units.as_deref()).await?;
    let reason = reason.chars().take(200).collect::<String>();
    for id in &ids {
        store::force_change(&mut tx, *id, "forced_after_compromise").await?;
    }
    let rec = Record::new(
        actor.who(),
        "password.force_change_many",
        unit.map(|u| u.record_ref())
            .unwrap_or_else(|| "ward".into()),
        "K11.1.5",
    )
    .from_ip(actor.ip())
    .detail(json!({ "accounts": ids.len(), "reason": reason }));
    records::append(&mut tx, state.clock().unix_micros(), &rec).await?;
    tx.commit().await?;
    Ok(ids.len())
}

#[derive(Debug, Clone, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SharedAccountInput {
    pub login: String,
    /// Why a personal account will not do (K17.2 「やむを得ない場合」).
    pub justification: String,
    pub owner_person_id: PersonId,
    pub org_unit_id: OrgUnitId,
}

/// Creates a shared account for a 課 or 係, only with a justification and
/// a named owner (K17.2); it is flagged wherever accounts are listed.
pub async fn create_shared(
    state: &AppState,
    actor: &Actor,
    scope: &ActorScope,
    input: SharedAccountInput,
) -> Result<AccountId, AppError> {
    let mut errors = Vec::new();
    if !org::service::valid_code(&input.login) {
        errors.push(FieldError::new("login", "field.bad_code", &[]));
    }
    crate::web::json::check_text(
        &mut errors,
        "justification",
        &input.justification,
        500,
        true,
    );
    if input.justification.trim().chars().count() < 10 {
        errors.push(
            FieldError::new("justification", "account.justification_too_short", &[])
                .with_clause("K17.2"),
        );
    }
    let mut tx = state.db().begin().await?;
    if store::by_login(&mut tx, &input.login).await?.is_some() {
        errors.push(FieldError::new("login", "field.duplicate", &[]));
    }
    if crate::people::store::get_person(&mut tx, input.owner_person_id)
        .await?
        .is_none()
    {
        errors.push(FieldError::new(
            "owner_person_id",
            "people.no_such_person",
            &[],
        ));
    }
    if org::store::get_unit(&mut tx, input.org_unit_id)
        .await?
        .is_none()
    {
        errors.push(FieldError::new("org_unit_id", "org.no_such_unit", &[]));
    }
    crate::web::json::done(errors)?;
    org::service::require_in_scope(&mut tx, scope, Some(input.org_unit_id)).await?;
    let id = store::insert_shared_account(
        &mut tx,
        &input.login,
        input.justification.trim(),
        input.owner_person_id,
        input.org_unit_id,
        state.clock().unix(),
    )
    .await?;
    let rec = Record::new(actor.who(), "account.create_shared", id.record_ref(), "K17.2")
        .from_ip(actor.ip())
        .detail(json!({ "login": input.login, "owner": input.owner_person_id, "org_unit_id": input.org_unit_id, "justification": input.justification.trim() }));
    records::append(&mut tx, state.clock().unix_micros(), &rec).await?;
    tx.commit().await?;
    Ok(id)
}

/// Days until the password expires (negative when past), if it expires.
pub async fn days_to_expiry(state: &AppState, account: AccountId) -> Result<Option<i64>, AppError> {
    let mut conn = state.db().pool().acquire().await?;
    let max_age = crate::settings::password_max_age_days(&mut conn).await?;
    let changed = store::password_changed_at(&mut conn, account).await?;
    Ok(match (max_age, changed) {
        (0, _) | (_, None) => None,
        (m, Some(c)) => Some((c + m * 86_400 - state.clock().unix()).div_euclid(86_400)),
    })
}
