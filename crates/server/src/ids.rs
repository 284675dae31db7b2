//! Newtype ids so kinds cannot be mixed.

use serde::{Deserialize, Serialize};

macro_rules! id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl $name {
            /// How the id appears as a record's actor or target.
            pub fn record_ref(self) -> String {
                format!(concat!($prefix, ":{}"), self.0)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}

id!(/// A person (職員等, auditor, or outside organisation's staff).
    PersonId, "person");
id!(/// An org unit: 部, 課, 学校, 関係団体, 指定管理者.
    OrgUnitId, "org_unit");
id!(/// A login account.
    AccountId, "account");
id!(/// A registered information system.
    SystemId, "system");
id!(/// A role assignment.
    RoleAssignmentId, "role_assignment");
id!(/// A personnel event.
    PersonnelEventId, "personnel_event");
