//! Sessions and the typed permission extractors. Every permission decision
//! is made here, from the one table in `mamori_policy::permission`: a
//! handler states what it needs in its signature (`Require<ViewPeople>`),
//! and nothing else grants access.

pub mod hasher;
pub mod session;
pub mod token;

use crate::app::AppState;
use crate::ids::{AccountId, OrgUnitId, PersonId, SystemId};
use crate::web::error::{ApiError, AppError, PageError};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use mamori_policy::permission::{self, Action, Scope};
use mamori_policy::Role;
use std::marker::PhantomData;

pub use session::SessionCtx;

/// A role a person holds today.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HeldRole {
    pub role: Role,
    pub org_unit: Option<OrgUnitId>,
    pub system: Option<SystemId>,
}

/// The logged-in account making a request.
#[derive(Debug, Clone)]
pub struct Actor {
    pub account_id: AccountId,
    pub person_id: Option<PersonId>,
    pub login: String,
    pub roles: Vec<HeldRole>,
    /// A password change is due (first login, reset, expiry, forced).
    pub must_change: bool,
    pub session: SessionCtx,
}

/// Where an actor may act for one action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActorScope {
    Ward,
    /// These units and everything below them.
    Units(Vec<OrgUnitId>),
}

impl Actor {
    /// The widest scope any of the actor's roles gives for `action`.
    pub fn scope(&self, action: Action) -> Option<ActorScope> {
        let mut units = Vec::new();
        for held in &self.roles {
            match permission::scope_for(held.role, action) {
                Some(Scope::Ward) => return Some(ActorScope::Ward),
                Some(Scope::Unit) => units.extend(held.org_unit),
                None => {}
            }
        }
        let any_unit_role = self
            .roles
            .iter()
            .any(|h| permission::scope_for(h.role, action) == Some(Scope::Unit));
        if any_unit_role {
            units.sort();
            units.dedup();
            Some(ActorScope::Units(units))
        } else {
            None
        }
    }

    pub fn holds(&self, role: Role) -> bool {
        self.roles.iter().any(|h| h.role == role)
    }

    /// How records name this actor.
    pub fn who(&self) -> crate::records::Who {
        match self.person_id {
            Some(p) => crate::records::Who::Person(p),
            None => crate::records::Who::Account(self.account_id),
        }
    }

    pub fn ip(&self) -> &str {
        &self.session.source_ip
    }
}

/// Whether a request is for the JSON API (problem+json errors) or a page.
pub(crate) fn is_api(parts: &Parts) -> bool {
    parts.uri.path().starts_with("/api/")
}

pub(crate) fn reject(parts: &Parts, e: AppError) -> Response {
    if is_api(parts) {
        ApiError(e).into_response()
    } else {
        PageError(e).into_response()
    }
}

/// Any logged-in account, even one whose password change is due (for the
/// password-change and logout routes only).
pub struct PendingActor(pub Actor);

impl FromRequestParts<AppState> for PendingActor {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let session = SessionCtx::from_request_parts(parts, state).await?;
        if session.account_id.is_some() && session.locked {
            return Err(reject(parts, AppError::SessionLocked));
        }
        if session.account_id.is_some() && session.stage == "card" {
            return Err(reject(parts, AppError::CardStepRequired));
        }
        match session::load_actor(state, &session).await {
            Ok(Some(actor)) => Ok(PendingActor(actor)),
            Ok(None) => Err(reject(parts, AppError::Unauthenticated)),
            Err(e) => Err(reject(parts, e)),
        }
    }
}

/// A marker type naming one [`Action`].
pub trait Permission: Send + Sync + 'static {
    const ACTION: Action;
}

/// A logged-in actor allowed to perform `P` somewhere; `scope` says where.
pub struct Require<P: Permission> {
    pub actor: Actor,
    pub scope: ActorScope,
    _p: PhantomData<P>,
}

impl<P: Permission> FromRequestParts<AppState> for Require<P> {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let PendingActor(actor) = PendingActor::from_request_parts(parts, state).await?;
        if actor.must_change {
            return Err(reject(parts, AppError::PasswordChangeRequired));
        }
        match actor.scope(P::ACTION) {
            Some(scope) => Ok(Require {
                actor,
                scope,
                _p: PhantomData,
            }),
            None => {
                session::record_denied(state, &actor, P::ACTION, parts.uri.path()).await;
                Err(reject(parts, AppError::Forbidden(P::ACTION.code())))
            }
        }
    }
}

macro_rules! permissions {
    ($($name:ident),* $(,)?) => {
        /// Marker types for `Require<…>`, one per [`Action`].
        pub mod perm {
            use super::*;
            $(
                pub struct $name;
                impl Permission for $name {
                    const ACTION: Action = Action::$name;
                }
            )*
        }
    };
}

permissions!(
    UseOwnAccount,
    ViewOrg,
    EditOrg,
    ViewPeople,
    RecordPersonnelEvent,
    ImportPersonnel,
    AssignRoles,
    ManageAccounts,
    ForceChangeAll,
    ManageSharedAccounts,
    ManageSettings,
    ViewRecords,
    ViewSystems,
    AuditLedger,
    AnalyzeLedger,
    ViewStaffRecords,
    ReadViewingReports,
    FreezeEvidence,
    ManageAssets,
    RequestAccess,
    DecideAccess,
    ViewAccess,
    ManageCards,
    ReportIncident,
    ReadIncidents,
    ViewIncidents,
    HandleIncidents,
    ReportEmergencyAction,
    RecordFailures,
    ViewFailureRecords,
    ManageFailureProcedures,
    ViewFailureProcedures,
    ViewAudits,
    ManageAudits,
    ReadFindings,
    FollowUpFindings,
    ViewComplianceReport,
    ViewCompliance,
    RunChecks,
    ManageTraining,
    AttendTraining,
    ViewTrainingRecords,
    InstructPromotionLeaders,
    AcknowledgeInstructions,
    ViewCatalog,
    RecordPolicyReview,
    ManageInspections,
    AnswerInspections,
    ViewInspections,
);

#[cfg(test)]
mod tests {
    use super::*;

    fn actor(roles: Vec<HeldRole>) -> Actor {
        Actor {
            account_id: AccountId(1),
            person_id: Some(PersonId(1)),
            login: "x".into(),
            roles,
            must_change: false,
            session: SessionCtx::default(),
        }
    }

    #[test]
    fn scope_is_the_widest_role() {
        let unit = |r, u| HeldRole {
            role: r,
            org_unit: Some(OrgUnitId(u)),
            system: None,
        };
        let a = actor(vec![unit(Role::Staff, 5), unit(Role::SecurityManager, 5)]);
        assert_eq!(
            a.scope(Action::ManageAccounts),
            Some(ActorScope::Units(vec![OrgUnitId(5)]))
        );
        assert_eq!(a.scope(Action::ViewOrg), Some(ActorScope::Ward));
        assert_eq!(a.scope(Action::EditOrg), None);
        let chief = actor(vec![HeldRole {
            role: Role::SecurityChiefManager,
            org_unit: None,
            system: None,
        }]);
        assert_eq!(chief.scope(Action::ManageAccounts), Some(ActorScope::Ward));
    }
}
