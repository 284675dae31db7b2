//! The automatic check `k32.1.inspection-unfiled` (K32.1): departments
//! whose latest self-inspection past its deadline is not submitted. It is
//! one entry of `compliance::CHECKS`.

use super::store::{self, Unfiled};
use crate::app::AppState;
use crate::clock::{date_str, parse_date_str, JST};
use crate::compliance::{CheckFuture, CheckItem};
use crate::db::Conn;

/// The check's id in the checks framework.
pub const ID: &str = "k32.1.inspection-unfiled";

/// The departments that did not file, on `today` (YYYY-MM-DD).
pub async fn unfiled(conn: &mut Conn, today: &str) -> Result<Vec<Unfiled>, sqlx::Error> {
    store::unfiled(conn, today).await
}

/// The check function: one item per department not filed, since the end
/// of its deadline (the ward's midnight after it).
pub fn run(state: &AppState, now: i64) -> CheckFuture<'_> {
    Box::pin(async move {
        let today = match time::OffsetDateTime::from_unix_timestamp(now) {
            Ok(t) => date_str(t.to_offset(JST).date()),
            Err(_) => date_str(state.clock().today()),
        };
        let mut conn = state.db().pool().acquire().await?;
        Ok(unfiled(&mut conn, &today)
            .await?
            .into_iter()
            .map(|u| {
                let since = parse_date_str(&u.due_on)
                    .and_then(|d| d.next_day())
                    .map(|d| d.midnight().assume_offset(JST).unix_timestamp());
                CheckItem::new(
                    format!("inspection:{}", u.inspection_id),
                    format!(
                        "{}: 自己点検「{}」（提出期限 {}）が提出されていない",
                        u.org_unit_name, u.campaign_title, u.due_on
                    ),
                )
                .unit(Some(u.org_unit_id.0))
                .since(since)
                .link(format!("/inspections/{}", u.inspection_id))
            })
            .collect())
    })
}
