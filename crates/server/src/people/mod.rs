//! People and personnel events (SPEC §3.2; K17.2–3, Y2.1.10): 採用, 異動,
//! 派遣 and 退職 from the UI, the API or the HR system's CSV, applied on
//! their effective date.

pub mod api;
pub mod pages;
pub mod service;
pub mod store;

use crate::ids::{AccountId, OrgUnitId, PersonId};
use serde::Serialize;

/// A person as shown to those who may see people. The birth date is kept
/// only to refuse passwords built from it (K11.1.2) and is never shown.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Person {
    pub id: PersonId,
    pub employee_number: String,
    pub name_kanji: String,
    pub name_kana: String,
    pub name_romaji: String,
    /// Employment type code (regular, reappointed, part_time, temporary,
    /// dispatched, outside).
    pub employment: String,
    pub org_unit_id: Option<OrgUnitId>,
    pub org_unit_name: Option<String>,
    pub title: String,
    /// pending (hire not yet effective), active, dispatched, retired.
    pub status: String,
    pub hired_on: Option<String>,
    pub left_on: Option<String>,
    pub has_birth_date: bool,
    pub account: Option<AccountSummary>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AccountSummary {
    pub id: AccountId,
    pub login: String,
    pub disabled: bool,
    pub locked: bool,
    pub must_change: bool,
    pub has_password: bool,
    pub password_changed_at: Option<i64>,
    pub last_login_at: Option<i64>,
}

/// The facts password rules need about a person (K11.1.2). Held only in
/// memory while a password is checked.
#[derive(Debug, Clone, Default)]
pub struct PersonSecrets {
    pub employee_number: String,
    pub name_kanji: String,
    pub name_kana: String,
    pub name_romaji: String,
    pub birth_date: Option<time::Date>,
}

/// A personnel event as stored.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PersonnelEventView {
    pub id: i64,
    pub employee_number: String,
    /// hire, transfer, dispatch, retire.
    pub kind: String,
    pub effective_date: String,
    /// scheduled, applied, failed.
    pub status: String,
    /// ui, api, csv.
    pub source: String,
    pub error: Option<String>,
    pub created_at: i64,
    pub applied_at: Option<i64>,
    pub detail: serde_json::Value,
}
