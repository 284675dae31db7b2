//! Organisation and roles (SPEC §3.1; Y2.1.1–4, Y4, K8, 別表第一/第二): the
//! org-unit tree with validity periods, role assignments, and the reporting
//! chain and approvers derived from them.

pub mod api;
pub mod pages;
pub mod service;
pub mod store;

use crate::ids::{OrgUnitId, PersonId, RoleAssignmentId, SystemId};
use serde::{Deserialize, Serialize};

/// Kinds of org unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UnitKind {
    /// 区 (the root).
    Ward,
    /// 部.
    Department,
    /// 課 (incl. 室, 副参事 and the 別表 offices, Y2.1.1).
    Section,
    /// 学校 (Y2.1.3).
    School,
    /// 関係団体 (Y2.1.12, Y11).
    RelatedOrganisation,
    /// 指定管理者 (Y2.1.13, Y12).
    DesignatedManager,
}

impl UnitKind {
    pub const ALL: [UnitKind; 6] = [
        UnitKind::Ward,
        UnitKind::Department,
        UnitKind::Section,
        UnitKind::School,
        UnitKind::RelatedOrganisation,
        UnitKind::DesignatedManager,
    ];

    pub fn code(self) -> &'static str {
        match self {
            UnitKind::Ward => "ward",
            UnitKind::Department => "department",
            UnitKind::Section => "section",
            UnitKind::School => "school",
            UnitKind::RelatedOrganisation => "related_organisation",
            UnitKind::DesignatedManager => "designated_manager",
        }
    }

    pub fn parse(s: &str) -> Option<UnitKind> {
        UnitKind::ALL.into_iter().find(|k| k.code() == s)
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct OrgUnit {
    pub id: OrgUnitId,
    pub code: String,
    pub name: String,
    pub name_en: String,
    pub kind: UnitKind,
    pub parent_id: Option<OrgUnitId>,
    /// First day (YYYY-MM-DD).
    pub valid_from: String,
    /// Last day, if the unit has ended.
    pub valid_to: Option<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RoleAssignment {
    pub id: RoleAssignmentId,
    pub person_id: PersonId,
    pub person_name: String,
    /// Role code, e.g. `security_manager`.
    pub role: String,
    pub org_unit_id: Option<OrgUnitId>,
    pub system_id: Option<SystemId>,
    pub valid_from: String,
    pub valid_to: Option<String>,
}

/// One step of a reporting chain (K10.1–3).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ChainStep {
    pub role: String,
    pub role_ja: String,
    pub person_id: Option<PersonId>,
    pub person_name: Option<String>,
    /// The unit whose manager this is, for the security manager step.
    pub org_unit_id: Option<OrgUnitId>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct System {
    pub id: SystemId,
    pub code: String,
    pub name: String,
    pub owner_org_unit_id: OrgUnitId,
}
