//! The permission matrix (SPEC §6): every route × every role, in one table.
//! A route the application serves that is missing here fails the test, so
//! no route can be added without deciding who may use it.

mod common;

use axum::http::{Method, StatusCode};
use common::{manager_of, plain_staff, TestApp};
use std::collections::HashSet;

/// Columns of the matrix, in order.
const ROLES: [&str; 10] = [
    "anon", "staff", "leader", "operator", "viewer", "manager", "chief", "director", "cio",
    "auditor",
];

/// How a request is sent.
#[derive(Clone, Copy)]
enum Body {
    None,
    Json(&'static str),
    Form(&'static [(&'static str, &'static str)]),
    Csv(&'static str),
}

/// (method, route as registered, body, who may: one letter per role above,
/// `y` allowed / `n` refused). `{unit}`, `{person}`, `{account}`,
/// `{assignment}` are filled with targets in 戸籍住民課.
const MATRIX: &[(&str, &str, Body, &str)] = &[
    //                                                                        a s l o v m c d c a
    ("GET", "/healthz", Body::None, "yyyyyyyyyy"),
    ("GET", "/api/v1/openapi.json", Body::None, "yyyyyyyyyy"),
    ("GET", "/", Body::None, "nyyyyyyyyy"),
    ("GET", "/lang/{code}", Body::None, "yyyyyyyyyy"),
    ("GET", "/static/mamori.css", Body::None, "yyyyyyyyyy"),
    ("GET", "/login", Body::None, "yyyyyyyyyy"),
    (
        "POST",
        "/login",
        Body::Form(&[("login", "nobody"), ("password", "x")]),
        "yyyyyyyyyy",
    ),
    (
        "POST",
        "/api/v1/session",
        Body::Json(r#"{"login": "nobody", "password": "x"}"#),
        "yyyyyyyyyy",
    ),
    ("POST", "/logout", Body::Form(&[]), "nyyyyyyyyy"),
    ("DELETE", "/api/v1/session", Body::None, "nyyyyyyyyy"),
    ("GET", "/password", Body::None, "nyyyyyyyyy"),
    (
        "POST",
        "/password",
        Body::Form(&[
            ("current_password", "x"),
            ("new_password", "y"),
            ("confirm_password", "z"),
        ]),
        "nyyyyyyyyy",
    ),
    (
        "PUT",
        "/api/v1/me/password",
        Body::Json(r#"{"current_password": "x", "new_password": "y"}"#),
        "nyyyyyyyyy",
    ),
    ("GET", "/api/v1/me", Body::None, "nyyyyyyyyy"),
    ("GET", "/me", Body::None, "nyyyyyyyyy"),
    (
        "POST",
        "/me/sessions/end",
        Body::Form(&[("id", "0000000000000000")]),
        "nyyyyyyyyy",
    ),
    ("GET", "/api/v1/me/sessions", Body::None, "nyyyyyyyyy"),
    (
        "DELETE",
        "/api/v1/me/sessions/{id}",
        Body::None,
        "nyyyyyyyyy",
    ),
    ("GET", "/api/v1/org-units", Body::None, "nyyyyyyyyy"),
    ("GET", "/api/v1/org-units/{id}", Body::None, "nyyyyyyyyy"),
    ("POST", "/api/v1/org-units", Body::Json("{}"), "nnnnnnynnn"),
    (
        "PUT",
        "/api/v1/org-units/{id}",
        Body::Json("{}"),
        "nnnnnnynnn",
    ),
    ("GET", "/api/v1/role-assignments", Body::None, "nyyyyyyyyy"),
    (
        "POST",
        "/api/v1/role-assignments",
        Body::Json("{}"),
        "nnnnnyynnn",
    ),
    (
        "POST",
        "/api/v1/role-assignments/{id}/end",
        Body::Json(r#"{"valid_to": "not a date"}"#),
        "nnnnnyynnn",
    ),
    (
        "GET",
        "/api/v1/people/{id}/reporting-chain",
        Body::None,
        "nyyyyyyyyy",
    ),
    ("GET", "/api/v1/approver", Body::None, "nyyyyyyyyy"),
    ("GET", "/api/v1/systems", Body::None, "nyyyyyyyyy"),
    ("GET", "/api/v1/people", Body::None, "nnynnyyyyy"),
    ("GET", "/api/v1/people/{id}", Body::None, "nnynnyyyyy"),
    ("GET", "/api/v1/personnel-events", Body::None, "nnnnnyynnn"),
    (
        "POST",
        "/api/v1/personnel-events",
        Body::Json("{}"),
        "nnnnnyynnn",
    ),
    (
        "POST",
        "/api/v1/personnel-events/import",
        Body::Csv(""),
        "nnnnnnynnn",
    ),
    (
        "POST",
        "/api/v1/accounts/{id}/actions",
        Body::Json(r#"{"action": "none"}"#),
        "nnnnnyynnn",
    ),
    (
        "POST",
        "/api/v1/accounts/{id}/reset-password",
        Body::None,
        "nnnnnyynnn",
    ),
    (
        "POST",
        "/api/v1/accounts/force-password-change",
        Body::Json(r#"{"reason": ""}"#),
        "nnnnnnyynn",
    ),
    (
        "POST",
        "/api/v1/accounts/shared",
        Body::Json("{}"),
        "nnnnnyynnn",
    ),
    ("GET", "/api/v1/settings", Body::None, "nnnnnnynnn"),
    (
        "PUT",
        "/api/v1/settings",
        Body::Json(r#"{"key": "none", "value": 0}"#),
        "nnnnnnynnn",
    ),
    ("GET", "/api/v1/records", Body::None, "nnnnnnyyyy"),
    ("GET", "/records", Body::None, "nnnnnnyyyy"),
    // The ledger: writing and reading content need a system token; its
    // structure is open to those who audit it.
    (
        "POST",
        "/api/v1/ledger/records",
        Body::Json("[]"),
        "nnnnnnnnnn",
    ),
    ("GET", "/api/v1/ledger/checkpoint", Body::None, "nnnnynyyyy"),
    ("GET", "/api/v1/ledger/key", Body::None, "nnnnynyyyy"),
    ("GET", "/api/v1/ledger/keys", Body::None, "nnnnynyyyy"),
    (
        "GET",
        "/api/v1/ledger/tile/{*path}",
        Body::None,
        "nnnnynyyyy",
    ),
    (
        "GET",
        "/api/v1/ledger/records/{index}",
        Body::None,
        "nnnnnnnnnn",
    ),
    (
        "GET",
        "/api/v1/ledger/proof/inclusion",
        Body::None,
        "nnnnynyyyy",
    ),
    (
        "GET",
        "/api/v1/ledger/proof/consistency",
        Body::None,
        "nnnnynyyyy",
    ),
    // Ledger search, analysis and viewing (K16.2.3, K30).
    // Searching and opening staff records: only the designated viewer (a
    // record outside their units is "not found", not refused). Analysis:
    // managers in their units, the 総括管理者, the 統括者 and auditors.
    // Reports: filed by viewers, read by managers and the 総括管理者.
    ("GET", "/api/v1/ledger/search", Body::None, "nnnnynnnnn"),
    (
        "GET",
        "/api/v1/ledger/search/{index}",
        Body::None,
        "nnnnynnnnn",
    ),
    ("GET", "/api/v1/ledger/analysis", Body::None, "nnnnnyyyny"),
    (
        "GET",
        "/api/v1/ledger/viewing-reports",
        Body::None,
        "nnnnnyynnn",
    ),
    (
        "POST",
        "/api/v1/ledger/viewing-reports",
        Body::Json("{}"),
        "nnnnynnnnn",
    ),
    ("GET", "/ledger/search", Body::None, "nnnnynnnnn"),
    ("GET", "/ledger/search/{index}", Body::None, "nnnnynnnnn"),
    (
        "POST",
        "/ledger/viewing-reports",
        Body::Form(&[("summary", "")]),
        "nnnnynnnnn",
    ),
    ("GET", "/ledger/viewing-reports", Body::None, "nnnnnyynnn"),
    ("GET", "/ledger/analysis", Body::None, "nnnnnyyyny"),
    // Pages.
    ("GET", "/org", Body::None, "nyyyyyyyyy"),
    ("POST", "/org/units", Body::Form(&[]), "nnnnnnynnn"),
    ("POST", "/org/roles", Body::Form(&[]), "nnnnnyynnn"),
    ("GET", "/org/units/{id}", Body::None, "nyyyyyyyyy"),
    ("POST", "/org/units/{id}", Body::Form(&[]), "nnnnnnynnn"),
    (
        "POST",
        "/org/units/{id}/roles",
        Body::Form(&[]),
        "nnnnnyynnn",
    ),
    (
        "POST",
        "/org/roles/{id}/end",
        Body::Form(&[("valid_to", "not a date")]),
        "nnnnnyynnn",
    ),
    ("GET", "/people", Body::None, "nnynnyyyyy"),
    ("GET", "/people/{id}", Body::None, "nnynnyyyyy"),
    (
        "POST",
        "/people/{id}/account",
        Body::Form(&[("action", "none")]),
        "nnnnnyynnn",
    ),
    (
        "POST",
        "/people/{id}/reset-password",
        Body::Form(&[]),
        "nnnnnyynnn",
    ),
    ("GET", "/people/new-event", Body::None, "nnnnnyynnn"),
    ("POST", "/people/new-event", Body::Form(&[]), "nnnnnyynnn"),
    ("GET", "/people/import", Body::None, "nnnnnnynnn"),
    ("POST", "/people/import", Body::Form(&[]), "nnnnnnynnn"),
    ("GET", "/accounts", Body::None, "nnnnnyynnn"),
    ("POST", "/accounts/shared", Body::Form(&[]), "nnnnnyynnn"),
    (
        "POST",
        "/accounts/force-change",
        Body::Form(&[("reason", "")]),
        "nnnnnyynnn",
    ),
    ("GET", "/settings", Body::None, "nnnnnnynnn"),
    (
        "POST",
        "/settings",
        Body::Form(&[("key", "none"), ("value", "0")]),
        "nnnnnnynnn",
    ),
    // Evidence freeze (K27.1.3).
    (
        "POST",
        "/api/v1/ledger/evidence",
        Body::Json("{}"),
        "nnnnnnyynn",
    ),
    ("GET", "/api/v1/ledger/evidence", Body::None, "nnnnnnyynn"),
    (
        "GET",
        "/api/v1/ledger/evidence/{id}",
        Body::None,
        "nnnnnnyynn",
    ),
    ("GET", "/ledger/evidence", Body::None, "nnnnnnyynn"),
    (
        "POST",
        "/ledger/evidence",
        Body::Form(&[("reason", "")]),
        "nnnnnnyynn",
    ),
    // Information assets and access rights (SPEC §3.4).
    (
        "POST",
        "/api/v1/access/check",
        Body::Json("{}"),
        "nnnnnnnnnn",
    ),
    (
        "POST",
        "/api/v1/access/check/batch",
        Body::Json("{}"),
        "nnnnnnnnnn",
    ),
    ("GET", "/api/v1/assets", Body::None, "nyyyyyyyyy"),
    ("POST", "/api/v1/assets", Body::Json("{}"), "nnnnnyynnn"),
    ("GET", "/api/v1/assets/{id}", Body::None, "nyyyyyyyyy"),
    ("PUT", "/api/v1/assets/{id}", Body::Json("{}"), "nnnnnyynnn"),
    (
        "POST",
        "/api/v1/assets/{id}/retire",
        Body::Json(r#"{"reason": "x"}"#),
        "nnnnnyynnn",
    ),
    (
        "POST",
        "/api/v1/assets/{id}/operators",
        Body::Json(r#"{"person_id": 1, "reason": "x"}"#),
        "nnnnnyynnn",
    ),
    (
        "POST",
        "/api/v1/assets/{id}/operators/{op}/end",
        Body::None,
        "nnnnnyynnn",
    ),
    (
        "GET",
        "/api/v1/assets/{id}/grants",
        Body::None,
        "nnnnnyyyyy",
    ),
    (
        "GET",
        "/api/v1/assets/{id}/access",
        Body::None,
        "nnnnnyyyyy",
    ),
    (
        "POST",
        "/api/v1/assets/{id}/reviews",
        Body::None,
        "nnnnnyynnn",
    ),
    (
        "GET",
        "/api/v1/people/{id}/access",
        Body::None,
        "nnnnnyyyyy",
    ),
    ("GET", "/api/v1/access-requests", Body::None, "nyyyyyyyyn"),
    (
        "POST",
        "/api/v1/access-requests",
        Body::Json("{}"),
        "nyyyyyyyyn",
    ),
    (
        "POST",
        "/api/v1/access-requests/{id}/decision",
        Body::Json(r#"{"approve": false}"#),
        "nnnnnyynnn",
    ),
    (
        "POST",
        "/api/v1/access-requests/{id}/withdraw",
        Body::None,
        "nyyyyyyyyn",
    ),
    (
        "POST",
        "/api/v1/grants/{id}/end",
        Body::Json(r#"{"reason": "x"}"#),
        "nnnnnyynnn",
    ),
    (
        "GET",
        "/api/v1/access-reviews/{id}",
        Body::None,
        "nnnnnyyyyy",
    ),
    (
        "POST",
        "/api/v1/access-reviews/{id}/items",
        Body::Json(r#"{"grant_id": 0, "decision": "confirm"}"#),
        "nnnnnyynnn",
    ),
    (
        "POST",
        "/api/v1/access-reviews/{id}/complete",
        Body::None,
        "nnnnnyynnn",
    ),
    (
        "GET",
        "/api/v1/classification-scales",
        Body::None,
        "nyyyyyyyyy",
    ),
    (
        "PUT",
        "/api/v1/classification-scales/{axis}",
        Body::Json(r#"{"levels": []}"#),
        "nnnnnnynnn",
    ),
    ("GET", "/api/v1/managed-areas", Body::None, "nyyyyyyyyy"),
    (
        "POST",
        "/api/v1/managed-areas",
        Body::Json("{}"),
        "nnnnnnynnn",
    ),
    ("GET", "/assets", Body::None, "nyyyyyyyyy"),
    ("POST", "/assets", Body::Form(&[("code", "")]), "nnnnnyynnn"),
    ("GET", "/assets/{id}", Body::None, "nyyyyyyyyy"),
    (
        "POST",
        "/assets/{id}",
        Body::Form(&[("code", "")]),
        "nnnnnyynnn",
    ),
    (
        "POST",
        "/assets/{id}/retire",
        Body::Form(&[("reason", "")]),
        "nnnnnyynnn",
    ),
    (
        "POST",
        "/assets/{id}/operators",
        Body::Form(&[("person_id", "")]),
        "nnnnnyynnn",
    ),
    (
        "POST",
        "/assets/{id}/operators/{op}/end",
        Body::Form(&[]),
        "nnnnnyynnn",
    ),
    (
        "POST",
        "/assets/{id}/requests",
        Body::Form(&[("purpose", "")]),
        "nyyyyyyyyn",
    ),
    (
        "POST",
        "/assets/{id}/reviews",
        Body::Form(&[]),
        "nnnnnyynnn",
    ),
    (
        "POST",
        "/access-requests/{id}/decision",
        Body::Form(&[("decision", "reject")]),
        "nnnnnyynnn",
    ),
    (
        "POST",
        "/access-requests/{id}/withdraw",
        Body::Form(&[]),
        "nyyyyyyyyn",
    ),
    (
        "POST",
        "/grants/{id}/end",
        Body::Form(&[("reason", "")]),
        "nnnnnyynnn",
    ),
    ("GET", "/access-reviews/{id}", Body::None, "nnnnnyyyyy"),
    (
        "POST",
        "/access-reviews/{id}/items",
        Body::Form(&[("grant_id", "")]),
        "nnnnnyynnn",
    ),
    (
        "POST",
        "/access-reviews/{id}/complete",
        Body::Form(&[]),
        "nnnnnyynnn",
    ),
    ("GET", "/access", Body::None, "nyyyyyyyyn"),
    // IC cards (K11.2) and the session rules (K12.1.5).
    ("GET", "/api/v1/me/cards", Body::None, "nyyyyyyyyy"),
    (
        "POST",
        "/api/v1/me/cards/registrations",
        Body::Json(r#"{"label": "x"}"#),
        "nyyyyyyyyy",
    ),
    (
        "POST",
        "/api/v1/me/cards/registrations/finish",
        Body::Json("{}"),
        "nyyyyyyyyy",
    ),
    (
        "POST",
        "/api/v1/me/cards/{id}/lost",
        Body::Json("{}"),
        "nyyyyyyyyy",
    ),
    ("GET", "/api/v1/cards", Body::None, "nnnnnyynnn"),
    (
        "POST",
        "/api/v1/cards/registrations",
        Body::Json("{}"),
        "nnnnnyynnn",
    ),
    (
        "POST",
        "/api/v1/cards/registrations/finish",
        Body::Json("{}"),
        "nnnnnyynnn",
    ),
    (
        "POST",
        "/api/v1/cards/{id}/actions",
        Body::Json(r#"{"action": "suspend"}"#),
        "nnnnnyynnn",
    ),
    (
        "GET",
        "/api/v1/cards/loss-reports",
        Body::None,
        "nnnnnyynnn",
    ),
    ("GET", "/api/v1/cards/settings", Body::None, "nnnnnnynnn"),
    (
        "PUT",
        "/api/v1/cards/settings",
        Body::Json("{}"),
        "nnnnnnynnn",
    ),
    (
        "POST",
        "/api/v1/session/card",
        Body::Json(r#"{"purpose": "login", "login": "nobody"}"#),
        "yyyyyyyyyy",
    ),
    (
        "POST",
        "/api/v1/session/card/finish",
        Body::Json("{}"),
        "yyyyyyyyyy",
    ),
    (
        "POST",
        "/api/v1/session/unlock",
        Body::Json(r#"{"password": "x"}"#),
        "nyyyyyyyyy",
    ),
    (
        "POST",
        "/api/v1/session/reauth",
        Body::Json(r#"{"password": "x"}"#),
        "nyyyyyyyyy",
    ),
    ("GET", "/me/cards", Body::None, "nyyyyyyyyy"),
    (
        "POST",
        "/me/cards/lost",
        Body::Form(&[("id", "0")]),
        "nyyyyyyyyy",
    ),
    ("GET", "/cards", Body::None, "nnnnnyynnn"),
    (
        "POST",
        "/cards/status",
        Body::Form(&[("id", "0"), ("action", "suspend")]),
        "nnnnnyynnn",
    ),
    (
        "POST",
        "/cards/settings",
        Body::Form(&[("admin_two_factor", "9")]),
        "nnnnnnynnn",
    ),
    ("GET", "/login/card", Body::None, "yyyyyyyyyy"),
    ("POST", "/login/cancel", Body::Form(&[]), "nyyyyyyyyy"),
    ("GET", "/lock", Body::None, "nyyyyyyyyy"),
    (
        "POST",
        "/lock",
        Body::Form(&[("password", "x")]),
        "nyyyyyyyyy",
    ),
    ("GET", "/reauth", Body::None, "nyyyyyyyyy"),
    (
        "POST",
        "/reauth",
        Body::Form(&[("password", "x")]),
        "nyyyyyyyyy",
    ),
    ("GET", "/static/cards.js", Body::None, "yyyyyyyyyy"),
    // Incidents and failures (K10, K16.4, K25–K27, K33.1.6).
    ("POST", "/api/v1/incidents", Body::Json("{}"), "nyyyyyyyyn"),
    ("GET", "/api/v1/incidents", Body::None, "nyyyyyyyyy"),
    ("GET", "/api/v1/incidents/{id}", Body::None, "nyyyyyyyyy"),
    (
        "POST",
        "/api/v1/incidents/{id}/steps/{step}",
        Body::Json("{}"),
        "nnnnnyyyyn",
    ),
    (
        "POST",
        "/api/v1/incidents/{id}/promote",
        Body::Json("{}"),
        "nnnnnyyyyn",
    ),
    (
        "POST",
        "/api/v1/incidents/{id}/entries",
        Body::Json("{}"),
        "nnnnnyyyyn",
    ),
    (
        "POST",
        "/api/v1/incidents/{id}/emergency-actions",
        Body::Json("{}"),
        "nnnynnnnnn",
    ),
    (
        "POST",
        "/api/v1/incidents/{id}/evidence",
        Body::Json("{}"),
        "nnnnnyyyyn",
    ),
    (
        "POST",
        "/api/v1/incidents/{id}/attachments",
        Body::None,
        "nyyyyyyyyn",
    ),
    (
        "GET",
        "/api/v1/incidents/{id}/attachments/{aid}",
        Body::None,
        "nyyyyyyyyy",
    ),
    (
        "PUT",
        "/api/v1/incidents/{id}/failure-record",
        Body::Json("{}"),
        "nnnynyynnn",
    ),
    ("GET", "/api/v1/notifications", Body::None, "nyyyyyyyyy"),
    (
        "GET",
        "/api/v1/me/notification-address",
        Body::None,
        "nyyyyyyyyy",
    ),
    (
        "PUT",
        "/api/v1/me/notification-address",
        Body::Json("{}"),
        "nyyyyyyyyy",
    ),
    (
        "POST",
        "/incidents/notification-address",
        Body::Form(&[("email", "not an address")]),
        "nyyyyyyyyy",
    ),
    ("GET", "/api/v1/failure-records", Body::None, "nnnynyyyyy"),
    (
        "GET",
        "/api/v1/failure-records/recurrence",
        Body::None,
        "nnnynyyyyy",
    ),
    (
        "GET",
        "/api/v1/failure-procedures",
        Body::None,
        "nyyyyyyyyy",
    ),
    (
        "POST",
        "/api/v1/failure-procedures",
        Body::Json("{}"),
        "nnnnnyynnn",
    ),
    (
        "PUT",
        "/api/v1/failure-procedures/critical",
        Body::Json("{}"),
        "nnnnnyynnn",
    ),
    ("GET", "/incidents", Body::None, "nyyyyyyyyy"),
    ("GET", "/incidents/new", Body::None, "nyyyyyyyyn"),
    ("POST", "/incidents/new", Body::Form(&[]), "nyyyyyyyyn"),
    (
        "POST",
        "/incidents/notifications/read",
        Body::Form(&[]),
        "nyyyyyyyyy",
    ),
    ("GET", "/incidents/export.csv", Body::None, "nyyyyyyyyy"),
    ("GET", "/incidents/export.xlsx", Body::None, "nyyyyyyyyy"),
    ("GET", "/incidents/{id}", Body::None, "nyyyyyyyyy"),
    (
        "POST",
        "/incidents/{id}/steps/{step}",
        Body::Form(&[("action", "acknowledge")]),
        "nnnnnyyyyn",
    ),
    (
        "POST",
        "/incidents/{id}/promote",
        Body::Form(&[("reason", "")]),
        "nnnnnyyyyn",
    ),
    (
        "POST",
        "/incidents/{id}/entries",
        Body::Form(&[("kind", "note")]),
        "nnnnnyyyyn",
    ),
    (
        "POST",
        "/incidents/{id}/emergency-actions",
        Body::Form(&[]),
        "nnnynnnnnn",
    ),
    (
        "POST",
        "/incidents/{id}/evidence",
        Body::Form(&[]),
        "nnnnnyyyyn",
    ),
    (
        "POST",
        "/incidents/{id}/attachments",
        Body::Form(&[]),
        "nyyyyyyyyn",
    ),
    (
        "POST",
        "/incidents/{id}/failure-record",
        Body::Form(&[]),
        "nnnynyynnn",
    ),
    ("GET", "/failures", Body::None, "nnnynyyyyy"),
    ("GET", "/failures/export.csv", Body::None, "nnnynyyyyy"),
    ("GET", "/failures/export.xlsx", Body::None, "nnnynyyyyy"),
    ("GET", "/failure-procedures", Body::None, "nyyyyyyyyy"),
    ("POST", "/failure-procedures", Body::Form(&[]), "nnnnnyynnn"),
    (
        "POST",
        "/failure-procedures/critical",
        Body::Form(&[]),
        "nnnnnyynnn",
    ),
    ("GET", "/failure-procedures/{id}", Body::None, "nyyyyyyyyy"),
    // External audits (K32.2): the 統括者 orders and records; the CIO, the
    // 総括管理者 and auditors read; owners follow up their findings.
    ("GET", "/api/v1/audits", Body::None, "nnnnnnyyyy"),
    ("POST", "/api/v1/audits", Body::Json("{}"), "nnnnnnnynn"),
    ("GET", "/api/v1/audits/{id}", Body::None, "nnnnnnyyyy"),
    ("PUT", "/api/v1/audits/{id}", Body::Json("{}"), "nnnnnnnynn"),
    (
        "POST",
        "/api/v1/audits/{id}/close",
        Body::None,
        "nnnnnnnynn",
    ),
    (
        "POST",
        "/api/v1/audits/{id}/auditors",
        Body::Json("{}"),
        "nnnnnnnynn",
    ),
    (
        "POST",
        "/api/v1/audits/{id}/findings",
        Body::Json("{}"),
        "nnnnnnnynn",
    ),
    ("GET", "/api/v1/audit-findings", Body::None, "nyyyyyyyyy"),
    (
        "GET",
        "/api/v1/audit-findings/{id}",
        Body::None,
        "nyyyyyyyyy",
    ),
    (
        "POST",
        "/api/v1/audit-findings/{id}/entries",
        Body::Json("{}"),
        "nyyyyyyyyn",
    ),
    ("GET", "/audits", Body::None, "nnnnnnyyyy"),
    ("POST", "/audits", Body::Form(&[]), "nnnnnnnynn"),
    ("GET", "/audits/{id}", Body::None, "nnnnnnyyyy"),
    ("POST", "/audits/{id}", Body::Form(&[]), "nnnnnnnynn"),
    ("POST", "/audits/{id}/close", Body::Form(&[]), "nnnnnnnynn"),
    (
        "POST",
        "/audits/{id}/auditors",
        Body::Form(&[]),
        "nnnnnnnynn",
    ),
    (
        "POST",
        "/audits/{id}/findings",
        Body::Form(&[]),
        "nnnnnnnynn",
    ),
    ("GET", "/findings", Body::None, "nyyyyyyyyy"),
    ("GET", "/findings/{id}", Body::None, "nyyyyyyyyy"),
    (
        "POST",
        "/findings/{id}/entries",
        Body::Form(&[]),
        "nyyyyyyyyn",
    ),
    // The compiled report (K32.3–4): the CIO, the 統括者, the 総括管理者, auditors.
    (
        "GET",
        "/api/v1/reports/compliance",
        Body::None,
        "nnnnnnyyyy",
    ),
    (
        "GET",
        "/api/v1/reports/compliance.pdf",
        Body::None,
        "nnnnnnyyyy",
    ),
    ("GET", "/reports/compliance", Body::None, "nnnnnnyyyy"),
    ("GET", "/reports/compliance.pdf", Body::None, "nnnnnnyyyy"),
    // Self-inspection (K32.1, K29, K32.3): the 統括者 orders and returns,
    // managers answer, ward-wide viewers see the compilation.
    (
        "GET",
        "/api/v1/inspection-campaigns",
        Body::None,
        "nnnnnyyyyy",
    ),
    (
        "POST",
        "/api/v1/inspection-campaigns",
        Body::Json("{}"),
        "nnnnnnnynn",
    ),
    (
        "GET",
        "/api/v1/inspection-campaigns/{id}",
        Body::None,
        "nnnnnyyyyy",
    ),
    (
        "POST",
        "/api/v1/inspection-campaigns/{id}/close",
        Body::None,
        "nnnnnnnynn",
    ),
    (
        "GET",
        "/api/v1/inspection-campaigns/{id}/compilation",
        Body::None,
        "nnnnnnyyyy",
    ),
    ("GET", "/api/v1/inspections", Body::None, "nnnnnyyyyy"),
    ("GET", "/api/v1/inspections/{id}", Body::None, "nnnnnyyyyy"),
    (
        "PUT",
        "/api/v1/inspections/{id}/answers",
        Body::Json("{}"),
        "nnnnnyynnn",
    ),
    (
        "POST",
        "/api/v1/inspections/{id}/submit",
        Body::None,
        "nnnnnyynnn",
    ),
    (
        "POST",
        "/api/v1/inspections/{id}/return",
        Body::Json("{}"),
        "nnnnnnnynn",
    ),
    (
        "POST",
        "/api/v1/inspections/{id}/evidence",
        Body::None,
        "nnnnnyynnn",
    ),
    (
        "GET",
        "/api/v1/inspections/{id}/evidence/{aid}",
        Body::None,
        "nnnnnyyyyy",
    ),
    ("GET", "/inspections", Body::None, "nnnnnyyyyy"),
    (
        "POST",
        "/inspections/campaigns",
        Body::Form(&[]),
        "nnnnnnnynn",
    ),
    (
        "GET",
        "/inspections/campaigns/{id}",
        Body::None,
        "nnnnnyyyyy",
    ),
    (
        "POST",
        "/inspections/campaigns/{id}/close",
        Body::Form(&[]),
        "nnnnnnnynn",
    ),
    ("GET", "/inspections/{id}", Body::None, "nnnnnyyyyy"),
    ("POST", "/inspections/{id}", Body::Form(&[]), "nnnnnyynnn"),
    (
        "POST",
        "/inspections/{id}/return",
        Body::Form(&[]),
        "nnnnnnnynn",
    ),
    // Compliance checks and the dashboard (issue 7 points 3, 9); training (K9).
    ("GET", "/api/v1/compliance/checks", Body::None, "nnnnnnyyyy"),
    (
        "GET",
        "/api/v1/compliance/checks/{id}",
        Body::None,
        "nnnnnnyyyy",
    ),
    ("POST", "/api/v1/compliance/runs", Body::None, "nnnnnnyyyn"),
    ("GET", "/compliance", Body::None, "nnnnnnyyyy"),
    ("POST", "/compliance/runs", Body::Form(&[]), "nnnnnnyyyn"),
    ("GET", "/compliance/checks/{id}", Body::None, "nnnnnnyyyy"),
    ("GET", "/api/v1/training/sessions", Body::None, "nyyyyyyyyn"),
    (
        "POST",
        "/api/v1/training/sessions",
        Body::Json(r#"{"title": "", "held_on": "", "audience": ""}"#),
        "nnnnnyyynn",
    ),
    (
        "GET",
        "/api/v1/training/sessions/{id}",
        Body::None,
        "nyyyyyyyyn",
    ),
    (
        "POST",
        "/api/v1/training/sessions/{id}/attendance",
        Body::Json(r#"{"person_ids": []}"#),
        "nnnnnyyynn",
    ),
    (
        "POST",
        "/api/v1/training/sessions/{id}/self-report",
        Body::None,
        "nyyyyyyyyn",
    ),
    (
        "GET",
        "/api/v1/training/completion",
        Body::None,
        "nnynnyyyyy",
    ),
    (
        "GET",
        "/api/v1/training/instructions",
        Body::None,
        "nnynnyyyyy",
    ),
    (
        "POST",
        "/api/v1/training/instructions",
        Body::Json(r#"{"to_person_id": 0, "body": ""}"#),
        "nnnnnyynnn",
    ),
    (
        "POST",
        "/api/v1/training/instructions/{id}/acknowledge",
        Body::None,
        "nnynnnnnnn",
    ),
    ("GET", "/training", Body::None, "nyyyyyyyyn"),
    ("POST", "/training", Body::Form(&[]), "nnnnnyyynn"),
    (
        "POST",
        "/training/instructions",
        Body::Form(&[]),
        "nnnnnyynnn",
    ),
    (
        "POST",
        "/training/instructions/{id}/acknowledge",
        Body::Form(&[]),
        "nnynnnnnnn",
    ),
    ("GET", "/training/{id}", Body::None, "nyyyyyyyyn"),
    (
        "POST",
        "/training/{id}/attendance",
        Body::Form(&[]),
        "nnnnnyyynn",
    ),
    (
        "POST",
        "/training/{id}/self-report",
        Body::Form(&[]),
        "nyyyyyyyyn",
    ),
    // The policy catalog, versions and reviews (SPEC §3.9; Y10, K34).
    ("GET", "/api/v1/catalog", Body::None, "nyyyyyyyyy"),
    (
        "GET",
        "/api/v1/catalog/clauses/{id}",
        Body::None,
        "nyyyyyyyyy",
    ),
    ("GET", "/api/v1/catalog/controls", Body::None, "nyyyyyyyyy"),
    ("GET", "/api/v1/policy/versions", Body::None, "nyyyyyyyyy"),
    ("GET", "/api/v1/policy/reviews", Body::None, "nyyyyyyyyy"),
    (
        "POST",
        "/api/v1/policy/reviews",
        Body::Json("{}"),
        "nnnnnnnyyn",
    ),
    ("GET", "/catalog", Body::None, "nyyyyyyyyy"),
    ("GET", "/catalog/controls", Body::None, "nyyyyyyyyy"),
    ("GET", "/catalog/{id}", Body::None, "nyyyyyyyyy"),
    ("GET", "/policy/versions", Body::None, "nyyyyyyyyy"),
    ("POST", "/policy/reviews", Body::Form(&[]), "nnnnnnnyyn"),
];

/// Logins for each column (None for anonymous).
fn testers(app: &TestApp) -> Vec<Option<String>> {
    let find = |role: &str, unit: &str| {
        app.logins
            .iter()
            .find(|(_, u, roles)| {
                (unit.is_empty() || u == unit) && roles.split('・').any(|r| r == role)
            })
            .map(|(l, _, _)| l.clone())
            .unwrap_or_else(|| panic!("no {role} in {unit}"))
    };
    vec![
        None,
        Some(plain_staff(app, "企画課")),
        Some(find("情報化推進リーダー", "戸籍住民課")),
        Some(find("運用管理者", "情報政策課")),
        Some(find("指名閲覧者", "戸籍住民課")),
        Some(manager_of(app, "戸籍住民課")),
        Some(find("セキュリティ総括管理者", "")),
        Some(find("セキュリティ統括者", "")),
        Some(find("最高情報統括責任者", "")),
        Some(find("外部監査人", "")),
    ]
}

async fn check_matrix(app: TestApp) {
    // Every served route is in the table, and nothing in the table is stale.
    let served: HashSet<(String, String)> = mamori_server::app::route_table()
        .into_iter()
        .map(|r| (r.method.to_string(), r.path.to_string()))
        .collect();
    let listed: HashSet<(String, String)> = MATRIX
        .iter()
        .map(|(m, p, _, _)| (m.to_string(), p.to_string()))
        .collect();
    let missing: Vec<_> = served.difference(&listed).collect();
    assert!(
        missing.is_empty(),
        "routes without a row in the permission matrix: {missing:?}"
    );
    let stale: Vec<_> = listed.difference(&served).collect();
    assert!(
        stale.is_empty(),
        "rows for routes that do not exist: {stale:?}"
    );

    // Targets in 戸籍住民課 so unit-scoped roles are in scope.
    let chief = testers(&app)[6].clone().unwrap();
    let mut c = app.logged_in(&chief).await;
    let target = plain_staff(&app, "戸籍住民課");
    let person = c.get(&format!("/api/v1/people?q={target}")).await.json()[0].clone();
    let person_id = person["id"].as_i64().unwrap().to_string();
    let account_id = person["account"]["id"].as_i64().unwrap().to_string();
    let unit_id = person["org_unit_id"].as_i64().unwrap().to_string();
    let assignment = c
        .get(&format!("/api/v1/role-assignments?org_unit_id={unit_id}"))
        .await
        .json()[0]["id"]
        .as_i64()
        .unwrap()
        .to_string();

    let testers = testers(&app);
    let mut failures = Vec::new();
    for (method, route, body, expect) in MATRIX {
        let id = if route.starts_with("/api/v1/accounts/")
            || route.starts_with("/people/{id}/account")
        {
            &account_id
        } else if route.contains("role-assignments") || route.starts_with("/org/roles") {
            &assignment
        } else if route.contains("org-units") || route.starts_with("/org/units") {
            &unit_id
        } else if route.starts_with("/people/") || route.starts_with("/api/v1/people/") {
            &person_id
        } else {
            "0"
        };
        let mut path = route
            .replace("{id}", id)
            .replace("{code}", "en")
            .replace("{*path}", "0/000.p/1")
            .replace("{index}", "0")
            .replace("{op}", "0")
            .replace("{axis}", "integrity")
            .replace("{step}", "0")
            .replace("{aid}", "0");
        if route.contains("/proof/inclusion") {
            path = format!("{path}?index=0&size=1");
        } else if route.contains("/proof/consistency") {
            path = format!("{path}?from=0&to=1");
        }
        if *route == "/api/v1/approver" {
            path = format!("{path}?clause=K13.3&org_unit_id={unit_id}");
        }
        // The people pages address accounts by person.
        if route.starts_with("/people/{id}") {
            path = route.replace("{id}", &person_id);
        }
        for (col, who) in testers.iter().enumerate() {
            let mut client = match who {
                Some(login) => app.logged_in(login).await,
                None => {
                    // A visitor gets a session (and its CSRF token) from the login page.
                    let mut c = app.client();
                    c.get("/login").await;
                    c
                }
            };
            let m = Method::from_bytes(method.as_bytes()).unwrap();
            let r = match body {
                Body::None => client.request(m, &path, None, vec![]).await,
                Body::Json(j) => {
                    client
                        .request(m, &path, Some("application/json"), j.as_bytes().to_vec())
                        .await
                }
                Body::Csv(s) => {
                    client
                        .request(m, &path, Some("text/csv"), s.as_bytes().to_vec())
                        .await
                }
                Body::Form(fields) => client.post_form(&path, fields).await,
            };
            assert!(
                !r.status.is_server_error(),
                "{method} {path} as {}: {} {}",
                ROLES[col],
                r.status,
                r.text()
            );
            let refused = r.status == StatusCode::FORBIDDEN
                || r.status == StatusCode::UNAUTHORIZED
                || (who.is_none()
                    && r.status == StatusCode::SEE_OTHER
                    && r.headers.get("location").is_some_and(|l| l == "/login"));
            let allowed = expect.as_bytes()[col] == b'y';
            if allowed == refused {
                failures.push(format!(
                    "{method} {route} as {}: expected {} but got {}",
                    ROLES[col],
                    if allowed { "allowed" } else { "refused" },
                    r.status
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "permission matrix mismatches:\n{}",
        failures.join("\n")
    );
}

both_engines!(every_route_times_every_role, check_matrix);
