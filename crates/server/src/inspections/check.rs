//! The automatic check `k32.1.inspection-unfiled` (K32.1): departments
//! whose latest self-inspection past its deadline is not submitted.

use super::store::{self, Unfiled};
use crate::db::Conn;

/// The check's id in the checks framework.
pub const ID: &str = "k32.1.inspection-unfiled";

/// The departments that did not file, on `today` (YYYY-MM-DD).
pub async fn unfiled(conn: &mut Conn, today: &str) -> Result<Vec<Unfiled>, sqlx::Error> {
    store::unfiled(conn, today).await
}
