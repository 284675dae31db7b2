//! Information assets, classification and access rights (SPEC §3.4; Y5,
//! K3, K12.1.2, K17, K18): the asset register with its classification
//! scales, access requests decided by the asset's security manager, the
//! grants they create, the 運用管理者 named for each asset, periodic access
//! reviews (棚卸し), and the in-memory decision engine behind
//! `POST /api/v1/access/check`.
//!
//! The database is the truth; [`engine::AccessModel`] is a copy of what
//! decides access, kept current by tailing `access_changes` (written by
//! triggers), so a change made by any server reaches every server's engine
//! one entity at a time, never by a full rebuild.

pub mod api;
pub mod conditions;
pub mod decisions;
pub mod engine;
pub mod pages;
pub mod service;
pub mod store;

use crate::ids::{OrgUnitId, PersonId};
use serde::{Deserialize, Serialize};

/// What an asset is: an information system or a data set held in one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AssetKind {
    System,
    Dataset,
}

impl AssetKind {
    pub fn code(self) -> &'static str {
        match self {
            AssetKind::System => "system",
            AssetKind::Dataset => "dataset",
        }
    }
    pub fn parse(s: &str) -> Option<AssetKind> {
        match s {
            "system" => Some(AssetKind::System),
            "dataset" => Some(AssetKind::Dataset),
            _ => None,
        }
    }
}

/// The two grounds of 秘密情報 (K3.1.1).
pub const SECRET_GROUNDS: [&str; 2] = ["K3.1.1.a", "K3.1.1.b"];

/// The three network zones (三層の対策).
pub const ZONES: [&str; 3] = ["my_number", "lgwan", "internet"];

/// The classification axes.
pub const AXES: [&str; 3] = ["confidentiality", "integrity", "availability"];

/// An asset as stored.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Asset {
    pub id: i64,
    /// ASCII code, unique; a system's code is the one its token and its
    /// ledger records use.
    pub code: String,
    pub name: String,
    pub name_en: String,
    pub kind: AssetKind,
    /// The system a data set is held in.
    pub parent_id: Option<i64>,
    /// 所管課: the unit that made the information (K3.1).
    pub owner_org_unit_id: OrgUnitId,
    /// セキュリティ管理者 of the asset: decides its access and holds its
    /// admin rights (K3.2.1, K18).
    pub security_manager_id: Option<PersonId>,
    /// Level code on the confidentiality scale (`secret`, `general` by default).
    pub confidentiality: String,
    /// Whether that level is 秘密情報.
    pub secret: bool,
    /// For 秘密情報: `K3.1.1.a` (秘密文書) or `K3.1.1.b` (system operation).
    pub secret_ground: Option<String>,
    pub integrity: String,
    pub availability: String,
    /// National level (機密性 3/2/1) within the level's mapping.
    pub national_c: String,
    /// National level since 令和6年 (3A/3B/3C/2/1) within the mapping.
    pub national_c_r6: String,
    /// National 完全性 and 可用性 levels from the scale's mapping.
    pub national_i: String,
    pub national_a: String,
    pub personal_info: bool,
    /// `my_number` (マイナンバー利用事務系), `lgwan` (LGWAN接続系) or
    /// `internet` (インターネット接続系).
    pub zone: String,
    /// Connects outside the ward (K16.3).
    pub external_connection: bool,
    pub description: String,
    pub retired_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// One level of a classification scale.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Level {
    pub code: String,
    pub name: String,
    #[serde(default)]
    pub name_en: String,
    /// Higher is stricter.
    pub rank: i64,
    /// Confidentiality only: this level is 秘密情報 (K3.1.1).
    #[serde(default)]
    pub is_secret: bool,
    /// National levels (機密性 3/2/1, 完全性 2/1, 可用性 2/1) this level maps
    /// onto; the first is the default.
    pub national: Vec<String>,
    /// The same in the 令和6年 scheme (機密性 3A/3B/3C/2/1).
    pub national_r6: Vec<String>,
}

/// A named 運用管理者 of an asset (K18).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Operator {
    pub id: i64,
    pub asset_id: i64,
    pub person_id: PersonId,
    pub named_by: Option<PersonId>,
    pub reason: String,
    pub created_at: i64,
    pub ended_at: Option<i64>,
}

/// Who a grant is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum SubjectRef {
    Person(i64),
    OrgUnit(i64),
}

impl SubjectRef {
    pub fn kind(self) -> &'static str {
        match self {
            SubjectRef::Person(_) => "person",
            SubjectRef::OrgUnit(_) => "org_unit",
        }
    }
    pub fn id(self) -> i64 {
        match self {
            SubjectRef::Person(i) | SubjectRef::OrgUnit(i) => i,
        }
    }
    pub fn from_parts(kind: &str, id: i64) -> Option<SubjectRef> {
        match kind {
            "person" => Some(SubjectRef::Person(id)),
            "org_unit" => Some(SubjectRef::OrgUnit(id)),
            _ => None,
        }
    }
    pub fn record_ref(self) -> String {
        format!("{}:{}", self.kind(), self.id())
    }
}

/// An access grant as stored (K3.2.1, K17.2).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct GrantRow {
    pub id: i64,
    pub request_id: Option<i64>,
    pub asset_id: i64,
    pub subject: SubjectRef,
    /// Some of `read`, `write`, `export`.
    pub actions: Vec<String>,
    /// Unix seconds; validity is `[valid_from, valid_until)`.
    pub valid_from: Option<i64>,
    pub valid_until: Option<i64>,
    pub conditions: conditions::ConditionsDoc,
    /// Why an org unit rather than persons (K17.2).
    pub unit_reason: Option<String>,
    pub granted_by: Option<PersonId>,
    pub created_at: i64,
    pub ended_at: Option<i64>,
    /// `revoked`, `expired`, `transfer`, `retirement`, `review`, `asset_retired`.
    pub ended_reason: Option<String>,
}

/// A request for access, waiting for or given its decision.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AccessRequest {
    pub id: i64,
    pub asset_id: i64,
    pub subject: SubjectRef,
    pub actions: Vec<String>,
    pub valid_from: Option<i64>,
    pub valid_until: Option<i64>,
    pub conditions: conditions::ConditionsDoc,
    pub unit_reason: Option<String>,
    pub purpose: String,
    pub requested_by: Option<PersonId>,
    pub requested_at: i64,
    /// `pending`, `approved`, `rejected`, `withdrawn`.
    pub status: String,
    pub decided_by: Option<PersonId>,
    pub decided_at: Option<i64>,
    pub decision_reason: Option<String>,
    pub grant_id: Option<i64>,
}

/// A periodic access review (棚卸し) of one asset.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Review {
    pub id: i64,
    pub asset_id: i64,
    pub started_by: Option<PersonId>,
    pub started_at: i64,
    pub completed_by: Option<PersonId>,
    pub completed_at: Option<i64>,
    /// The ledger index of the record that closed the review (the evidence).
    pub record_index: Option<i64>,
    pub items: Vec<ReviewItem>,
}

/// One grant in a review and what the manager decided for it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReviewItem {
    pub grant_id: i64,
    /// `confirm`, `remove`, or none yet.
    pub decision: Option<String>,
    pub note: String,
    pub decided_at: Option<i64>,
}

/// A managed area (管理区域) terminals can stand in.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ManagedArea {
    pub id: i64,
    pub code: String,
    pub name: String,
}

/// The actions a grant may list (administer is never granted: K18).
pub const GRANTABLE: [&str; 3] = ["read", "write", "export"];

pub fn split_actions(s: &str) -> Vec<String> {
    s.split_whitespace().map(String::from).collect()
}
