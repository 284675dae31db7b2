//! The check functions of [`super::CHECKS`]. Each reads live data through
//! the stores (its own in `super::store`, or the owning module's, such as
//! the asset flags of `assets::service`) and returns the offending items.
//! Labels are written in Japanese, the ward's language, with the names and
//! codes of the data.

use super::{store, CheckFuture, CheckItem};
use crate::app::AppState;
use crate::clock::{date_str, parse_date_str, JST};

/// The start of a stored date in the ward (00:00 JST), Unix seconds.
pub fn date_start(date: &str) -> Option<i64> {
    parse_date_str(date).map(|d| d.midnight().assume_offset(JST).unix_timestamp())
}

fn today(state: &AppState, now: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(now) {
        Ok(t) => date_str(t.to_offset(JST).date()),
        Err(_) => date_str(state.clock().today()),
    }
}

fn person_label(name: &str, number: &str) -> String {
    format!("{name}（職員番号 {number}）")
}

/// K17.3: people who left (退職) with an enabled account or rights still
/// open; transfers, dispatches and retirements due but not applied; and
/// rights from before an applied move that are still open.
pub fn departed_accounts(state: &AppState, now: i64) -> CheckFuture<'_> {
    Box::pin(async move {
        let today = today(state, now);
        let mut conn = state.db().pool().acquire().await?;
        let mut items = Vec::new();
        for f in store::departed_with_account(&mut conn, &today).await? {
            items.push(
                CheckItem::new(
                    format!("account:{}", f.count),
                    format!(
                        "{}: 退職日（{}）を過ぎてもアカウントが有効",
                        person_label(&f.name, &f.employee_number),
                        f.date.clone().unwrap_or_default()
                    ),
                )
                .unit(f.unit_id)
                .since(f.date.as_deref().and_then(date_start))
                .link(format!("/people/{}", f.person_id)),
            );
        }
        for f in store::departed_with_rights(&mut conn, &today).await? {
            items.push(
                CheckItem::new(
                    format!("rights:person:{}", f.person_id),
                    format!(
                        "{}: 退職後も権限（アクセス許可・運用管理者・役割）が {} 件有効",
                        person_label(&f.name, &f.employee_number),
                        f.count
                    ),
                )
                .unit(f.unit_id)
                .since(f.date.as_deref().and_then(date_start))
                .link(format!("/people/{}", f.person_id)),
            );
        }
        for (f, kind) in store::unapplied_moves(&mut conn, &today).await? {
            let what = match kind.as_str() {
                "retire" => "退職",
                "dispatch" => "派遣",
                _ => "異動",
            };
            items.push(
                CheckItem::new(
                    format!("event:{}", f.count),
                    format!(
                        "{}: {}（{}）が反映されておらず旧所属の権限が有効",
                        person_label(&f.name, &f.employee_number),
                        what,
                        f.date.clone().unwrap_or_default()
                    ),
                )
                .unit(f.unit_id)
                .since(f.date.as_deref().and_then(date_start))
                .link(format!("/people/{}", f.person_id)),
            );
        }
        for f in store::moved_with_old_rights(&mut conn).await? {
            let key = format!("old-post:person:{}", f.person_id);
            if items.iter().any(|i| i.key == key) {
                continue;
            }
            items.push(
                CheckItem::new(
                    key,
                    format!(
                        "{}: 異動（{}）前の権限が {} 件残っている",
                        person_label(&f.name, &f.employee_number),
                        f.date.clone().unwrap_or_default(),
                        f.count
                    ),
                )
                .unit(f.unit_id)
                .since(f.date.as_deref().and_then(date_start))
                .link(format!("/people/{}", f.person_id)),
            );
        }
        Ok(items)
    })
}

/// K17.4: passwords older than `password.max_age_days`; with the expiry
/// turned off (0) the setting itself is the item.
pub fn password_expired(state: &AppState, now: i64) -> CheckFuture<'_> {
    Box::pin(async move {
        let mut conn = state.db().pool().acquire().await?;
        let days = crate::settings::password_max_age_days(&mut conn).await?;
        if days <= 0 {
            return Ok(vec![CheckItem::new(
                "setting:password.max_age_days",
                "パスワードの有効期間が設定されていない（0 日）",
            )
            .link("/settings")]);
        }
        let max_age = days * 86_400;
        let rows = store::stale_passwords(&mut conn, now - max_age, &today(state, now)).await?;
        Ok(rows
            .into_iter()
            .map(|a| {
                let who = match &a.name {
                    Some(n) => format!("{}（{n}）", a.login),
                    None => a.login.clone(),
                };
                CheckItem::new(
                    format!("account:{}", a.account_id),
                    format!("{who}: パスワードが {days} 日を超えて変更されていない"),
                )
                .unit(a.unit_id)
                .since(Some(a.changed_at + max_age))
                .link(match a.person_id {
                    Some(p) => format!("/people/{p}"),
                    None => "/accounts".into(),
                })
            })
            .collect())
    })
}

/// The shortest justification the service accepts for a shared account.
const MIN_JUSTIFICATION: usize = 10;

/// K17.2: shared accounts in use without a justification (as the service
/// requires one today, this finds older or imported accounts) or whose
/// responsible owner has left or is missing.
pub fn shared_unjustified(state: &AppState, now: i64) -> CheckFuture<'_> {
    Box::pin(async move {
        let today = today(state, now);
        let mut conn = state.db().pool().acquire().await?;
        let mut items = Vec::new();
        for a in store::shared_in_use(&mut conn).await? {
            let short = a.justification.trim().chars().count() < MIN_JUSTIFICATION;
            let owner_gone = a.person_id.is_none()
                || a.owner_status.as_deref() == Some("retired")
                || a.owner_left_on.as_deref().is_some_and(|d| d <= today.as_str());
            if !short && !owner_gone {
                continue;
            }
            let why = match (short, owner_gone) {
                (true, true) => "利用理由がなく、責任者が不在",
                (true, false) => "利用理由が記録されていない",
                _ => "責任者が退職または不在",
            };
            items.push(
                CheckItem::new(
                    format!("account:{}", a.account_id),
                    format!("共用アカウント {}: {why}", a.login),
                )
                .unit(a.unit_id)
                .link("/accounts"),
            );
        }
        Ok(items)
    })
}

/// K18: assets whose admin-rights holders (manager + operators) exceed
/// `access.admin_limit_per_system` (the asset register's own flags).
pub fn operator_limit(state: &AppState, _now: i64) -> CheckFuture<'_> {
    Box::pin(async move {
        let mut conn = state.db().pool().acquire().await?;
        let scales = crate::assets::store::scales(&mut conn).await?;
        let assets = crate::assets::store::list_assets(&mut conn, &scales, false).await?;
        let flags = crate::assets::service::flags(state, &mut conn, &assets).await?;
        Ok(assets
            .iter()
            .filter_map(|a| {
                let f = flags.get(&a.id)?;
                f.over_admin_limit.then(|| {
                    CheckItem::new(
                        format!("asset:{}", a.id),
                        format!(
                            "{}（{}）: 管理者権限 {} 人（上限 {} 人）",
                            a.name, a.code, f.admins, f.admin_limit
                        ),
                    )
                    .unit(Some(a.owner_org_unit_id.0))
                    .link(format!("/assets/{}", a.id))
                })
            })
            .collect())
    })
}

/// K3.2.1: live 秘密情報 assets with no current grant.
pub fn secret_without_rules(state: &AppState, _now: i64) -> CheckFuture<'_> {
    Box::pin(async move {
        let mut conn = state.db().pool().acquire().await?;
        let scales = crate::assets::store::scales(&mut conn).await?;
        let assets = crate::assets::store::list_assets(&mut conn, &scales, false).await?;
        let grants = store::grant_counts(&mut conn).await?;
        Ok(assets
            .iter()
            .filter(|a| a.secret && a.retired_at.is_none() && !grants.contains_key(&a.id))
            .map(|a| {
                CheckItem::new(
                    format!("asset:{}", a.id),
                    format!("{}（{}）: 秘密情報にアクセス許可が定められていない", a.name, a.code),
                )
                .unit(Some(a.owner_org_unit_id.0))
                .since(Some(a.created_at))
                .link(format!("/assets/{}", a.id))
            })
            .collect())
    })
}

/// K3.2.1: 秘密情報 assets whose access review (棚卸し) is overdue
/// (`access.review_interval_days`, the asset register's own flag).
pub fn review_overdue(state: &AppState, _now: i64) -> CheckFuture<'_> {
    Box::pin(async move {
        let mut conn = state.db().pool().acquire().await?;
        let scales = crate::assets::store::scales(&mut conn).await?;
        let assets = crate::assets::store::list_assets(&mut conn, &scales, false).await?;
        let flags = crate::assets::service::flags(state, &mut conn, &assets).await?;
        let interval = crate::settings::get(&mut conn, "access.review_interval_days").await? * 86_400;
        Ok(assets
            .iter()
            .filter(|a| a.secret)
            .filter_map(|a| {
                let f = flags.get(&a.id)?;
                f.review_overdue.then(|| {
                    let last = f.last_review.unwrap_or(a.created_at);
                    CheckItem::new(
                        format!("asset:{}", a.id),
                        format!(
                            "{}（{}）: アクセス権の棚卸しが期限切れ（前回 {}）",
                            a.name,
                            a.code,
                            f.last_review
                                .map(crate::clock::format_unix)
                                .unwrap_or_else(|| "未実施".into())
                        ),
                    )
                    .unit(Some(a.owner_org_unit_id.0))
                    .since(Some(last + interval))
                    .link(format!("/assets/{}", a.id))
                })
            })
            .collect())
    })
}

/// K16.2.2: the ledger was verified in full within
/// `compliance.ledger_verify_max_age_hours`, and the last verification
/// (and this server's alarm) found no mismatch.
pub fn ledger_unverified(state: &AppState, now: i64) -> CheckFuture<'_> {
    Box::pin(async move {
        let mut conn = state.db().pool().acquire().await?;
        let hours = crate::settings::get(&mut conn, "compliance.ledger_verify_max_age_hours").await?;
        let mut items = Vec::new();
        match store::last_verification(&mut conn).await? {
            None => items.push(
                CheckItem::new("ledger:unverified", "記録（台帳）の全体検証がまだ行われていない")
                    .link("/records"),
            ),
            Some((time_us, result, detail)) => {
                let at = time_us / 1_000_000;
                if result != "success" {
                    let problem = serde_json::from_str::<serde_json::Value>(&detail)
                        .ok()
                        .and_then(|d| d.get("problem").and_then(|p| p.as_str()).map(String::from))
                        .unwrap_or_default();
                    items.push(
                        CheckItem::new(
                            "ledger:mismatch",
                            format!("記録（台帳）の検証で不一致: {problem}"),
                        )
                        .since(Some(at))
                        .link("/records"),
                    );
                } else if now - at > hours * 3600 {
                    items.push(
                        CheckItem::new(
                            "ledger:stale",
                            format!(
                                "記録（台帳）の最後の全体検証（{}）から {hours} 時間を超えている",
                                crate::clock::format_unix(at)
                            ),
                        )
                        .since(Some(at + hours * 3600))
                        .link("/records"),
                    );
                }
            }
        }
        if let Some(alarm) = state.ledger().alarm() {
            if !items.iter().any(|i| i.key == "ledger:mismatch") {
                items.push(
                    CheckItem::new("ledger:mismatch", format!("記録（台帳）の警報: {alarm}"))
                        .link("/records"),
                );
            }
        }
        Ok(items)
    })
}

/// K30.2: units with more designated viewers than
/// `ledger.max_viewers_per_unit` (the ledger search's own count).
pub fn viewer_limit(state: &AppState, _now: i64) -> CheckFuture<'_> {
    Box::pin(async move {
        let (counts, limit) = crate::ledger::search::viewer_counts(state, None).await?;
        Ok(counts
            .into_iter()
            .filter(|c| c.over_limit)
            .map(|c| {
                CheckItem::new(
                    format!("unit:{}", c.org_unit_id),
                    format!(
                        "{}: 指名閲覧者 {} 人（上限 {limit} 人）",
                        c.org_unit_name, c.viewers
                    ),
                )
                .unit(Some(c.org_unit_id))
                .link(format!("/org/units/{}", c.org_unit_id))
            })
            .collect())
    })
}

/// K10: open incidents with a reporting-chain step past its deadline.
pub fn chain_overdue(state: &AppState, now: i64) -> CheckFuture<'_> {
    Box::pin(async move {
        let mut conn = state.db().pool().acquire().await?;
        Ok(store::overdue_chains(&mut conn, now)
            .await?
            .into_iter()
            .map(|(id, title, unit, due, roles)| {
                let roles: Vec<String> = roles
                    .split(',')
                    .map(|r| {
                        r.parse::<mamori_policy::Role>()
                            .map(|r| r.ja().to_string())
                            .unwrap_or_else(|_| r.to_string())
                    })
                    .collect();
                CheckItem::new(
                    format!("incident:{id}"),
                    format!("#{id} {title}: {} への報告が期限切れ", roles.join("・")),
                )
                .unit(unit)
                .since(Some(due))
                .link(format!("/incidents/{id}"))
            })
            .collect())
    })
}

/// K9: people in the audience of a required training session whose date
/// has passed and who did not attend.
pub fn training_unattended(state: &AppState, now: i64) -> CheckFuture<'_> {
    Box::pin(async move {
        let today = today(state, now);
        let mut conn = state.db().pool().acquire().await?;
        let missing = crate::training::service::unattended(&mut conn, &today).await?;
        Ok(missing
            .into_iter()
            .map(|m| {
                CheckItem::new(
                    format!("session:{}:person:{}", m.session_id, m.person_id),
                    format!(
                        "{}: 「{}」（{}）を受講していない",
                        person_label(&m.name, &m.employee_number),
                        m.title,
                        m.held_on
                    ),
                )
                .unit(m.unit_id)
                .since(date_start(&m.held_on).map(|t| t + 86_400))
                .link(format!("/training/{}", m.session_id))
            })
            .collect())
    })
}
