//! The asset register, access rights and the decision API (SPEC §3.4;
//! K3, K12.1.2, K17, K18) on both engines, through HTTP as ward systems
//! and staff use them.

mod common;

use axum::http::{Method, StatusCode};
use common::{bearer, records_with, scalar, TestApp};
use serde_json::{json, Value};

/// The demo person at this position of the demo list (their login).
fn num(i: usize) -> String {
    format!("{:06}", 100_101 + i * 37)
}
const KOSEKI_MANAGER: usize = 14;
const KOSEKI_LEADER: usize = 15;
const KOSEKI_PART_TIME: usize = 17;
const KIKAKU_STAFF: usize = 8;
const SOMU_STAFF: usize = 10;
const BUNKA_OPERATOR: usize = 26;
const CHIEF: usize = 2;

/// A weekday morning and evening, and a Saturday, in JST.
const TUE_10: &str = "2026-12-01T10:00:00+09:00";
const TUE_20: &str = "2026-12-01T20:00:00+09:00";
const SAT_10: &str = "2026-12-05T10:00:00+09:00";

async fn token(app: &TestApp, scopes: &[&str]) -> String {
    let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
    mamori_server::tokens::create(&app.state, "facility", &scopes)
        .await
        .expect("token")
        .1
}

async fn check(app: &TestApp, tok: &str, body: Value) -> common::Response {
    bearer(app, Method::POST, "/api/v1/access/check", tok, Some(body)).await
}

fn q(subject: usize, action: &str, asset: &str, time: &str, zone: &str) -> Value {
    json!({ "subject": num(subject), "action": action, "asset": asset,
            "context": { "time": time, "zone": zone } })
}

async fn person_id(app: &TestApp, i: usize) -> i64 {
    scalar(
        app,
        &format!(
            "SELECT id FROM persons WHERE employee_number = '{}'",
            num(i)
        ),
    )
    .await
}

async fn asset_id(app: &TestApp, code: &str) -> i64 {
    scalar(app, &format!("SELECT id FROM assets WHERE code = '{code}'")).await
}

async fn decisions(app: &TestApp) {
    app.state
        .access()
        .sync(app.state.db(), app.state.clock().unix())
        .await
        .unwrap();
    if let Some(d) = app.state.decisions() {
        d.flush().await;
    }
}

async fn decision_api(app: TestApp) {
    let tok = token(&app, &["access:check"]).await;
    // A grant with office-hours, weekday and zone conditions (K3.2.1).
    let r = check(
        &app,
        &tok,
        q(KOSEKI_LEADER, "read", "juki", TUE_10, "my_number"),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let j = r.json();
    assert_eq!(j["decision"], "allow");
    assert_eq!(j["reason"], "access.allow.grant");
    assert_eq!(j["clauses"], json!(["K3.2.1", "K17.2"]));
    assert!(j["grant_id"].as_i64().unwrap() > 0);
    assert!(j["message"].as_str().unwrap().contains("アクセス権限"));
    for (time, zone) in [
        (TUE_20, "my_number"),
        (SAT_10, "my_number"),
        (TUE_10, "lgwan"),
    ] {
        let j = check(&app, &tok, q(KOSEKI_LEADER, "read", "juki", time, zone))
            .await
            .json();
        assert_eq!(
            j["reason"], "access.deny.grant_not_in_effect",
            "{time} {zone}"
        );
        assert_eq!(j["allow"], false);
    }
    // No context zone: a zone condition is not met.
    let j = check(
        &app,
        &tok,
        json!({ "subject": num(KOSEKI_LEADER), "action": "read", "asset": "juki",
                                        "context": { "time": TUE_10 } }),
    )
    .await
    .json();
    assert_eq!(j["reason"], "access.deny.grant_not_in_effect");
    // 秘密情報 without a grant; export of secret needs an export grant.
    let j = check(
        &app,
        &tok,
        q(KIKAKU_STAFF, "read", "juki", TUE_10, "my_number"),
    )
    .await
    .json();
    assert_eq!(j["reason"], "access.deny.secret_needs_grant");
    assert_eq!(j["clauses"], json!(["K3.2.1", "K12.1.2"]));
    let j = check(
        &app,
        &tok,
        q(KOSEKI_LEADER, "export", "juki", TUE_10, "my_number"),
    )
    .await
    .json();
    assert_eq!(j["reason"], "access.deny.secret_export_needs_export_grant");
    // 一般情報: the owning section's staff read; others do not.
    let j = check(&app, &tok, q(SOMU_STAFF, "read", "bunsho", TUE_10, "lgwan"))
        .await
        .json();
    assert_eq!(j["reason"], "access.allow.general_own_unit");
    let j = check(
        &app,
        &tok,
        q(KIKAKU_STAFF, "read", "bunsho", TUE_10, "lgwan"),
    )
    .await
    .json();
    assert_eq!(j["reason"], "access.deny.no_grant");
    // K18: the manager and the named operator administer; nobody else.
    let j = check(
        &app,
        &tok,
        q(KOSEKI_MANAGER, "administer", "juki", TUE_10, "my_number"),
    )
    .await
    .json();
    assert_eq!(j["reason"], "access.allow.security_manager");
    let j = check(
        &app,
        &tok,
        q(BUNKA_OPERATOR, "administer", "facility", TUE_10, "internet"),
    )
    .await
    .json();
    assert_eq!(j["reason"], "access.allow.delegated_operator");
    let j = check(
        &app,
        &tok,
        q(KOSEKI_LEADER, "administer", "juki", TUE_10, "my_number"),
    )
    .await
    .json();
    assert_eq!(j["reason"], "access.deny.not_administrator");
    // The time defaults to now; a managed area is named by code.
    let r = check(
        &app,
        &tok,
        json!({ "subject": num(KOSEKI_PART_TIME), "action": "read", "asset": "juki-db",
        "context": { "time": TUE_10, "zone": "my_number", "area": "koseki-counter" } }),
    )
    .await;
    assert_eq!(r.json()["reason"], "access.allow.grant", "{}", r.text());
    let r = check(
        &app,
        &tok,
        json!({ "subject": num(KOSEKI_PART_TIME), "action": "read", "asset": "juki-db" }),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);

    // Unknown subject, asset, action, zone or area: a 422 naming the field.
    for (body, field) in [
        (q(999_999, "read", "juki", TUE_10, "lgwan"), "subject"),
        (
            q(KOSEKI_LEADER, "read", "no-such-asset", TUE_10, "lgwan"),
            "asset",
        ),
        (
            q(KOSEKI_LEADER, "delete", "juki", TUE_10, "lgwan"),
            "action",
        ),
        (
            q(KOSEKI_LEADER, "read", "juki", TUE_10, "moon"),
            "context.zone",
        ),
        (
            q(KOSEKI_LEADER, "read", "juki", "yesterday", "lgwan"),
            "context.time",
        ),
        (
            json!({ "subject": num(KOSEKI_LEADER), "action": "read", "asset": "juki", "context": { "area": "nowhere" } }),
            "context.area",
        ),
        (
            json!({ "subject": num(KOSEKI_LEADER), "action": "read" }),
            "asset",
        ),
        (
            json!({ "subject": num(KOSEKI_LEADER), "action": "read", "asset": "juki", "extra": 1 }),
            "extra",
        ),
    ] {
        let r = check(&app, &tok, body.clone()).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            r.text()
        );
        assert_eq!(r.content_type(), "application/problem+json");
        let fields: Vec<String> = r.json()["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap().to_string())
            .collect();
        assert!(
            fields.iter().any(|f| f.contains(field)),
            "{body}: {fields:?}"
        );
    }
    let r = bearer(&app, Method::POST, "/api/v1/access/check", &tok, None).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    // Only a token with access:check decides.
    let writer = token(&app, &["ledger:write"]).await;
    let r = check(
        &app,
        &writer,
        q(KOSEKI_LEADER, "read", "juki", TUE_10, "my_number"),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = check(
        &app,
        "not-a-token",
        q(KOSEKI_LEADER, "read", "juki", TUE_10, "my_number"),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // A revoked token stops at once (the lookup cache is dropped).
    let spare = token(&app, &["access:check"]).await;
    let ask = q(KOSEKI_LEADER, "read", "juki", TUE_10, "my_number");
    assert_eq!(
        check(&app, &spare, ask.clone()).await.status,
        StatusCode::OK
    );
    let spare_id = scalar(&app, "SELECT MAX(id) FROM api_tokens").await;
    mamori_server::tokens::revoke(&app.state, spare_id)
        .await
        .unwrap();
    let r = check(&app, &spare, ask).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    // The batch answers each in place; a bad one carries its errors.
    let r = bearer(
        &app,
        Method::POST,
        "/api/v1/access/check/batch",
        &tok,
        Some(json!({ "requests": [
            q(KOSEKI_LEADER, "read", "juki", TUE_10, "my_number"),
            q(KOSEKI_LEADER, "read", "nothing", TUE_10, "my_number"),
            q(SOMU_STAFF, "read", "bunsho", TUE_10, "lgwan"),
        ]})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let res = r.json()["results"].clone();
    assert_eq!(res[0]["decision"], "allow");
    assert_eq!(res[1]["errors"][0]["field"], "requests[1].asset");
    assert!(res[1].get("decision").is_none());
    assert_eq!(res[2]["reason"], "access.allow.general_own_unit");
    let r = bearer(
        &app,
        Method::POST,
        "/api/v1/access/check/batch",
        &tok,
        Some(json!({ "requests": [] })),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);

    // Every decision on 秘密情報 is a ledger record; general ones are not.
    decisions(&app).await;
    let secret = scalar(
        &app,
        "SELECT COUNT(*) FROM ledger_index WHERE system = 'mamori-access'",
    )
    .await;
    // 12 single checks on secret assets above (1 + 3 + 1 + 2 + 2 + 2, and
    // the one with the token later revoked) plus one in the batch.
    assert_eq!(secret, 13, "decision records");
    let denied = scalar(
        &app,
        "SELECT COUNT(*) FROM ledger_index WHERE system = 'mamori-access' AND result = 'denied'",
    )
    .await;
    let allowed = scalar(
        &app,
        "SELECT COUNT(*) FROM ledger_index WHERE system = 'mamori-access' AND result = 'success'",
    )
    .await;
    assert_eq!(
        allowed, 5,
        "leader read (twice), manager administer, part-time at the counter, the batch"
    );
    // The rest were refused (the check at "now" states no zone, so the
    // grant's zone condition is not met).
    assert_eq!(denied, 8);
    let general = scalar(&app, "SELECT COUNT(*) FROM ledger_index WHERE system = 'mamori-access' AND asset LIKE 'asset:bunsho%'").await;
    assert_eq!(general, 0);
}
both_engines!(decisions_answer_with_reason_and_clauses, decision_api);

async fn request_approve_flow(app: TestApp) {
    let tok = token(&app, &["access:check"]).await;
    let juki = asset_id(&app, "juki").await;
    let staff = num(KOSEKI_PART_TIME);
    let before = check(
        &app,
        &tok,
        q(KOSEKI_PART_TIME, "read", "juki", TUE_10, "my_number"),
    )
    .await
    .json();
    assert_eq!(before["reason"], "access.deny.secret_needs_grant");
    // Staff ask for themselves.
    let mut s = app.logged_in(&staff).await;
    let r = s.post_json("/api/v1/access-requests", &json!({
        "asset_id": juki, "actions": ["read"], "valid_until": "2099-03-31",
        "conditions": { "windows": [{ "start": "08:30", "end": "17:15" }], "zones": ["my_number"] },
        "purpose": "住民票の写しの交付"
    })).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let req = r.json();
    assert_eq!(req["status"], "pending");
    let id = req["id"].as_i64().unwrap();
    // Not the asset's manager: refused, even the セキュリティ総括管理者.
    let mut chief = app.logged_in(&num(CHIEF)).await;
    let r = chief
        .post_json(
            &format!("/api/v1/access-requests/{id}/decision"),
            &json!({ "approve": true }),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    // Still denied while pending.
    let j = check(
        &app,
        &tok,
        q(KOSEKI_PART_TIME, "read", "juki", TUE_10, "my_number"),
    )
    .await
    .json();
    assert_eq!(j["allow"], false);
    // Rejecting needs a reason.
    let mut m = app.logged_in(&num(KOSEKI_MANAGER)).await;
    let r = m
        .post_json(
            &format!("/api/v1/access-requests/{id}/decision"),
            &json!({ "approve": false }),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.json()["errors"][0]["field"], "reason");
    let grants_before = records_with(&app, "access.grant").await;
    let r = m
        .post_json(
            &format!("/api/v1/access-requests/{id}/decision"),
            &json!({ "approve": true, "reason": "窓口業務" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let decided = r.json();
    assert_eq!(decided["status"], "approved");
    let grant = decided["grant_id"].as_i64().unwrap();
    assert_eq!(records_with(&app, "access.grant").await, grants_before + 1);
    assert_eq!(records_with(&app, "access.request.approve").await, 1);
    // The engine has it at once.
    let j = check(
        &app,
        &tok,
        q(KOSEKI_PART_TIME, "read", "juki", TUE_10, "my_number"),
    )
    .await
    .json();
    assert_eq!(j["reason"], "access.allow.grant");
    assert_eq!(j["grant_id"], grant);
    let j = check(
        &app,
        &tok,
        q(KOSEKI_PART_TIME, "read", "juki", TUE_20, "my_number"),
    )
    .await
    .json();
    assert_eq!(j["reason"], "access.deny.grant_not_in_effect");
    // Deciding twice is a conflict.
    let r = m
        .post_json(
            &format!("/api/v1/access-requests/{id}/decision"),
            &json!({ "approve": true }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    // Who can access / what can access, from the engine.
    let who = m
        .get(&format!("/api/v1/assets/{juki}/access?any_conditions=true"))
        .await;
    assert_eq!(who.status, StatusCode::OK, "{}", who.text());
    let numbers: Vec<String> = who
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["employee_number"].as_str().unwrap().to_string())
        .collect();
    assert!(
        numbers.contains(&staff) && numbers.contains(&num(KOSEKI_MANAGER)),
        "{numbers:?}"
    );
    let pid = person_id(&app, KOSEKI_PART_TIME).await;
    let what = m
        .get(&format!(
            "/api/v1/people/{pid}/access?zone=my_number&at={}",
            TUE_10.replace('+', "%2B")
        ))
        .await;
    assert_eq!(what.status, StatusCode::OK, "{}", what.text());
    assert!(what
        .json()
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["asset_code"] == "juki"));
    // The manager ends it; the decision follows.
    let r = m
        .post_json(
            &format!("/api/v1/grants/{grant}/end"),
            &json!({ "reason": "異動予定" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["ended_reason"], "revoked");
    let j = check(
        &app,
        &tok,
        q(KOSEKI_PART_TIME, "read", "juki", TUE_10, "my_number"),
    )
    .await
    .json();
    assert_eq!(j["reason"], "access.deny.secret_needs_grant");
    // Staff may withdraw their own pending request, not others'.
    let r = s
        .post_json(
            "/api/v1/access-requests",
            &json!({ "asset_id": juki, "actions": ["write"], "purpose": "x" }),
        )
        .await;
    let other = r.json()["id"].as_i64().unwrap();
    let r = chief
        .request(
            Method::POST,
            &format!("/api/v1/access-requests/{other}/withdraw"),
            None,
            vec![],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = s
        .request(
            Method::POST,
            &format!("/api/v1/access-requests/{other}/withdraw"),
            None,
            vec![],
        )
        .await;
    assert_eq!(r.json()["status"], "withdrawn");
    let mine = s.get("/api/v1/access-requests").await.json();
    assert!(mine.as_array().unwrap().len() >= 2);
}
both_engines!(
    request_then_approval_creates_the_grant,
    request_approve_flow
);

async fn bad_requests(app: TestApp) {
    let juki = asset_id(&app, "juki").await;
    let mut s = app.logged_in(&num(KOSEKI_PART_TIME)).await;
    let koseki_unit = scalar(&app, "SELECT id FROM org_units WHERE code = 'koseki'").await;
    let cases = [
        (
            json!({ "asset_id": juki, "actions": ["administer"], "purpose": "x" }),
            "actions[0]",
            Some("K18"),
        ),
        (
            json!({ "asset_id": juki, "actions": ["read"], "subject": { "kind": "org_unit", "id": koseki_unit }, "purpose": "x" }),
            "unit_reason",
            Some("K17.2"),
        ),
        (
            json!({ "asset_id": juki, "actions": ["read"], "purpose": "x", "conditions": { "windows": [{ "start": "25:00", "end": "17:00" }] } }),
            "conditions.windows[0].start",
            None,
        ),
        (
            json!({ "asset_id": juki, "actions": ["read"], "purpose": "x", "conditions": { "weekdays": ["funday"] } }),
            "conditions.weekdays[0]",
            None,
        ),
        (
            json!({ "asset_id": juki, "actions": ["read"], "purpose": "x", "conditions": { "areas": ["nowhere"] } }),
            "conditions.areas[0]",
            None,
        ),
        (
            json!({ "asset_id": juki, "actions": ["read"], "purpose": "x", "valid_until": "2001-01-01" }),
            "valid_until",
            None,
        ),
        (
            json!({ "asset_id": juki, "actions": ["read"], "purpose": "x", "valid_from": "someday" }),
            "valid_from",
            None,
        ),
        (
            json!({ "asset_id": 987654, "actions": ["read"], "purpose": "x" }),
            "asset_id",
            None,
        ),
        (
            json!({ "asset_id": juki, "actions": [], "purpose": "" }),
            "purpose",
            None,
        ),
        (
            json!({ "asset_id": juki, "actions": ["read"], "purpose": "x", "conditions": { "colour": "red" } }),
            "conditions",
            None,
        ),
    ];
    let before = scalar(&app, "SELECT COUNT(*) FROM access_requests").await;
    for (body, field, clause) in cases {
        let r = s.post_json("/api/v1/access-requests", &body).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            r.text()
        );
        let errors = r.json()["errors"].clone();
        let hit = errors
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["field"].as_str().unwrap().starts_with(field));
        let hit = hit.unwrap_or_else(|| panic!("{body}: no error on {field}: {errors}"));
        if let Some(c) = clause {
            assert_eq!(hit["clause"], c, "{body}");
        }
        assert!(!hit["message"].as_str().unwrap().is_empty());
    }
    assert_eq!(
        scalar(&app, "SELECT COUNT(*) FROM access_requests").await,
        before,
        "nothing was written"
    );
    // Asking for someone outside one's scope is refused.
    let kikaku = person_id(&app, KIKAKU_STAFF).await;
    let r = s
        .post_json(
            "/api/v1/access-requests",
            &json!({ "asset_id": juki, "actions": ["read"],
        "subject": { "kind": "person", "id": kikaku }, "purpose": "x" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
}
both_engines!(bad_requests_name_the_field_and_write_nothing, bad_requests);

async fn transfer_ends_grants(app: TestApp) {
    let tok = token(&app, &["access:check"]).await;
    let leader = num(KOSEKI_LEADER);
    let j = check(
        &app,
        &tok,
        q(KOSEKI_LEADER, "read", "juki", TUE_10, "my_number"),
    )
    .await
    .json();
    assert_eq!(j["allow"], true);
    let pid = person_id(&app, KOSEKI_LEADER).await;
    assert_eq!(
        scalar(
            &app,
            &format!(
                "SELECT COUNT(*) FROM access_grants WHERE subject_id = {pid} AND ended_at IS NULL"
            )
        )
        .await,
        2
    );
    // 異動 today to 企画課 (K17.3): the grants tied to the old post end.
    let mut chief = app.logged_in(&num(CHIEF)).await;
    let today = mamori_server::clock::date_str(app.state.clock().today());
    let r = chief.post_json("/api/v1/personnel-events", &json!({
        "kind": "transfer", "employee_number": leader, "effective_date": today, "org_unit_code": "kikaku-ka"
    })).await;
    assert!(r.status.is_success(), "{}", r.text());
    assert_eq!(
        scalar(
            &app,
            &format!(
                "SELECT COUNT(*) FROM access_grants WHERE subject_id = {pid} AND ended_at IS NULL"
            )
        )
        .await,
        0
    );
    assert_eq!(scalar(&app, &format!("SELECT COUNT(*) FROM access_grants WHERE subject_id = {pid} AND ended_reason = 'personnel_event'")).await, 2);
    let j = check(
        &app,
        &tok,
        q(KOSEKI_LEADER, "read", "juki", TUE_10, "my_number"),
    )
    .await
    .json();
    assert_eq!(j["reason"], "access.deny.secret_needs_grant");
    // The operator of facility moves too: the appointment ends (K18, K17.3).
    let op = num(BUNKA_OPERATOR);
    let r = chief.post_json("/api/v1/personnel-events", &json!({
        "kind": "transfer", "employee_number": op, "effective_date": today, "org_unit_code": "kikaku-ka"
    })).await;
    assert!(r.status.is_success(), "{}", r.text());
    let j = check(
        &app,
        &tok,
        q(BUNKA_OPERATOR, "administer", "facility", TUE_10, "internet"),
    )
    .await
    .json();
    assert_eq!(j["reason"], "access.deny.not_administrator");
    // Retirement: never allowed again (K17.3).
    let r = chief
        .post_json(
            "/api/v1/personnel-events",
            &json!({
                "kind": "retire", "employee_number": num(SOMU_STAFF), "effective_date": today
            }),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text());
    let j = check(&app, &tok, q(SOMU_STAFF, "read", "bunsho", TUE_10, "lgwan"))
        .await
        .json();
    assert_eq!(j["reason"], "access.deny.person_retired");
    assert_eq!(j["clauses"], json!(["K17.3"]));
}
both_engines!(transfer_and_retirement_end_access, transfer_ends_grants);

async fn register_and_reclassify(app: TestApp) {
    let tok = token(&app, &["access:check"]).await;
    let mut m = app.logged_in(&num(KOSEKI_MANAGER)).await;
    let koseki = scalar(&app, "SELECT id FROM org_units WHERE code = 'koseki'").await;
    let me = person_id(&app, KOSEKI_MANAGER).await;
    // Scales with their national mapping.
    let scales = m.get("/api/v1/classification-scales").await.json();
    assert_eq!(scales["confidentiality"][0]["code"], "secret");
    assert_eq!(
        scales["confidentiality"][0]["national_r6"],
        json!(["3A", "3B", "3C"])
    );
    let body = json!({ "code": "inkan", "name": "印鑑登録システム", "kind": "system", "owner_org_unit_id": koseki,
        "security_manager_id": me, "confidentiality": "secret", "secret_ground": "K3.1.1.a",
        "national_c_r6": "3B", "integrity": "high", "personal_info": true, "zone": "my_number" });
    let r = m.post_json("/api/v1/assets", &body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let a = r.json();
    assert_eq!(a["secret"], true);
    assert_eq!(a["national_c"], "3");
    assert_eq!(a["national_c_r6"], "3B");
    assert_eq!(a["national_i"], "2");
    assert_eq!(a["national_a"], "1");
    let id = a["id"].as_i64().unwrap();
    // The engine knows the new asset at once.
    let j = check(
        &app,
        &tok,
        q(KOSEKI_MANAGER, "administer", "inkan", TUE_10, "my_number"),
    )
    .await
    .json();
    assert_eq!(j["reason"], "access.allow.security_manager");
    let j = check(
        &app,
        &tok,
        q(KOSEKI_PART_TIME, "read", "inkan", TUE_10, "my_number"),
    )
    .await
    .json();
    assert_eq!(j["reason"], "access.deny.secret_needs_grant");
    // Bad input names the field.
    for (patch, field) in [
        (json!({ "secret_ground": null }), "secret_ground"),
        (json!({ "national_c_r6": "2" }), "national_c_r6"),
        (json!({ "confidentiality": "top" }), "confidentiality"),
        (json!({ "zone": "moon" }), "zone"),
        (json!({ "code": "inkan" }), "code"),
        (
            json!({ "security_manager_id": person_id(&app, KIKAKU_STAFF).await }),
            "security_manager_id",
        ),
    ] {
        let mut b = body.clone();
        for (k, v) in patch.as_object().unwrap() {
            b[k] = v.clone();
        }
        if field != "code" {
            b["code"] = json!("inkan2");
        }
        let r = m.post_json("/api/v1/assets", &b).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{patch}: {}",
            r.text()
        );
        assert!(
            r.json()["errors"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["field"] == field),
            "{patch}: {}",
            r.text()
        );
    }
    // Another section's asset is out of a manager's scope.
    let kikaku = scalar(&app, "SELECT id FROM org_units WHERE code = 'kikaku-ka'").await;
    let mut b = body.clone();
    b["code"] = json!("elsewhere");
    b["owner_org_unit_id"] = json!(kikaku);
    let r = m.post_json("/api/v1/assets", &b).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Reclassifying needs a reason and is recorded with it (K3.1).
    let mut general = body.clone();
    general["confidentiality"] = json!("general");
    general["secret_ground"] = Value::Null;
    general["national_c_r6"] = Value::Null;
    let r = m.put_json(&format!("/api/v1/assets/{id}"), &general).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.json()["errors"][0]["field"], "classification_reason");
    assert_eq!(r.json()["errors"][0]["clause"], "K3.1");
    general["classification_reason"] = json!("公開情報のみを扱う運用に変更したため");
    let r = m.put_json(&format!("/api/v1/assets/{id}"), &general).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["national_c"], "2");
    assert_eq!(records_with(&app, "asset.reclassify").await, 1);
    // Now 一般情報: the owning section reads it.
    let j = check(
        &app,
        &tok,
        q(KOSEKI_PART_TIME, "read", "inkan", TUE_10, "my_number"),
    )
    .await
    .json();
    assert_eq!(j["reason"], "access.allow.general_own_unit");
    // Retire: gone from the engine, a 422 for callers.
    let r = m
        .post_json(
            &format!("/api/v1/assets/{id}/retire"),
            &json!({ "reason": "システム廃止" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = check(
        &app,
        &tok,
        q(KOSEKI_PART_TIME, "read", "inkan", TUE_10, "my_number"),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    // A level in use cannot stop being secret; the scale is otherwise editable.
    let mut chief = app.logged_in(&num(CHIEF)).await;
    let mut levels = scales["confidentiality"].clone();
    levels[0]["is_secret"] = json!(false);
    let r = chief
        .put_json(
            "/api/v1/classification-scales/confidentiality",
            &json!({ "levels": levels }),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    let mut levels = scales["confidentiality"].clone();
    levels[0]["name_en"] = json!("Secret");
    let r = chief
        .put_json(
            "/api/v1/classification-scales/confidentiality",
            &json!({ "levels": levels }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = chief
        .put_json(
            "/api/v1/classification-scales/integrity",
            &json!({ "levels": [
        { "code": "high", "name": "重要", "rank": 2, "national": ["4"], "national_r6": ["2"] } ] }),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.json()["errors"][0]["field"], "levels[0].national");
}
both_engines!(
    assets_are_registered_and_reclassified_with_reason,
    register_and_reclassify
);

async fn operators_and_limit(app: TestApp) {
    let facility = asset_id(&app, "facility").await;
    let mut chief = app.logged_in(&num(CHIEF)).await;
    // Manager + one operator = 2; a limit of 1 flags it (K18).
    let r = chief
        .put_json(
            "/api/v1/settings",
            &json!({ "key": "access.admin_limit_per_system", "value": 1 }),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text());
    let d = chief
        .get(&format!("/api/v1/assets/{facility}"))
        .await
        .json();
    assert_eq!(d["flags"]["admins"], 2);
    assert_eq!(d["flags"]["over_admin_limit"], true);
    assert_eq!(d["operators"].as_array().unwrap().len(), 1);
    // Only the asset's manager names operators, and only 運用管理者.
    let bunka_manager = num(25);
    let mut m = app.logged_in(&bunka_manager).await;
    let staff = person_id(&app, 27).await;
    let r = m
        .post_json(
            &format!("/api/v1/assets/{facility}/operators"),
            &json!({ "person_id": staff, "reason": "x" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    assert_eq!(r.json()["errors"][0]["clause"], "K18");
    let library_op = person_id(&app, 31).await;
    let r = chief
        .post_json(
            &format!("/api/v1/assets/{facility}/operators"),
            &json!({ "person_id": library_op, "reason": "x" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = m
        .post_json(
            &format!("/api/v1/assets/{facility}/operators"),
            &json!({ "person_id": library_op, "reason": "夜間保守の応援" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let op = r.json()["id"].as_i64().unwrap();
    let tok = token(&app, &["access:check"]).await;
    let j = check(
        &app,
        &tok,
        q(31, "administer", "facility", TUE_10, "internet"),
    )
    .await
    .json();
    assert_eq!(j["reason"], "access.allow.delegated_operator");
    let r = m
        .request(
            Method::POST,
            &format!("/api/v1/assets/{facility}/operators/{op}/end"),
            None,
            vec![],
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
    let j = check(
        &app,
        &tok,
        q(31, "administer", "facility", TUE_10, "internet"),
    )
    .await
    .json();
    assert_eq!(j["reason"], "access.deny.not_administrator");
    // The list page flags it for those who oversee access.
    let page = m.get("/assets").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text().contains("上限 1 名"), "flag shown");
}
both_engines!(
    operators_are_named_and_the_admin_limit_flags,
    operators_and_limit
);

async fn review_flow(app: TestApp) {
    let juki_db = asset_id(&app, "juki-db").await;
    let mut m = app.logged_in(&num(KOSEKI_MANAGER)).await;
    let r = m
        .request(
            Method::POST,
            &format!("/api/v1/assets/{juki_db}/reviews"),
            None,
            vec![],
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let review = r.json();
    let id = review["id"].as_i64().unwrap();
    let items: Vec<i64> = review["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["grant_id"].as_i64().unwrap())
        .collect();
    assert_eq!(items.len(), 2);
    // One open review at a time; completing needs every item decided.
    let r = m
        .request(
            Method::POST,
            &format!("/api/v1/assets/{juki_db}/reviews"),
            None,
            vec![],
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    let r = m
        .request(
            Method::POST,
            &format!("/api/v1/access-reviews/{id}/complete"),
            None,
            vec![],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    // Removing needs a note.
    let r = m
        .post_json(
            &format!("/api/v1/access-reviews/{id}/items"),
            &json!({ "grant_id": items[1], "decision": "remove" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.json()["errors"][0]["field"], "note");
    let r = m
        .post_json(
            &format!("/api/v1/access-reviews/{id}/items"),
            &json!({ "grant_id": items[0], "decision": "confirm" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = m
        .post_json(
            &format!("/api/v1/access-reviews/{id}/items"),
            &json!({ "grant_id": items[1], "decision": "remove", "note": "業務終了" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = m
        .request(
            Method::POST,
            &format!("/api/v1/access-reviews/{id}/complete"),
            None,
            vec![],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let done = r.json();
    assert!(done["completed_at"].as_i64().is_some());
    assert!(
        done["record_index"].as_i64().is_some(),
        "the review is evidence"
    );
    assert_eq!(
        scalar(
            &app,
            &format!(
                "SELECT COUNT(*) FROM access_grants WHERE id = {} AND ended_reason = 'review'",
                items[1]
            )
        )
        .await,
        1
    );
    assert_eq!(
        scalar(
            &app,
            &format!(
                "SELECT COUNT(*) FROM access_grants WHERE id = {} AND ended_at IS NULL",
                items[0]
            )
        )
        .await,
        1
    );
    assert_eq!(records_with(&app, "access.review.complete").await, 1);
    // An auditor reads the review; cannot act on it.
    let auditor = common::login_with_role(&app, "外部監査人");
    let mut a = app.logged_in(&auditor).await;
    assert_eq!(
        a.get(&format!("/api/v1/access-reviews/{id}")).await.status,
        StatusCode::OK
    );
    let page = a.get(&format!("/access-reviews/{id}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text().contains("棚卸し"));
    // Overdue: with no review within the interval the asset is flagged.
    let juki = asset_id(&app, "juki").await;
    let d = m.get(&format!("/api/v1/assets/{juki}")).await.json();
    assert_eq!(d["flags"]["review_overdue"], false);
    let mut chief = app.logged_in(&num(CHIEF)).await;
    let r = chief
        .put_json(
            "/api/v1/settings",
            &json!({ "key": "access.review_interval_days", "value": 30 }),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text());
    app.state.clock().advance(31 * 86_400);
    let mut m = app.logged_in(&num(KOSEKI_MANAGER)).await;
    let d = m.get(&format!("/api/v1/assets/{juki}")).await.json();
    assert_eq!(d["flags"]["review_overdue"], true);
}
both_engines!(reviews_confirm_or_remove_each_grant, review_flow);

async fn lapsed_and_feed(app: TestApp) {
    let tok = token(&app, &["access:check"]).await;
    // A change written by another process (here: straight SQL, as the
    // command line or a second server would) reaches the engine by the feed.
    let j = check(
        &app,
        &tok,
        q(32, "read", "library-patrons", TUE_10, "internet"),
    )
    .await
    .json();
    assert_eq!(j["reason"], "access.allow.grant");
    let mut conn = app.state.db().pool().acquire().await.unwrap();
    sqlx::query("UPDATE access_grants SET ended_at = 1, ended_reason = 'revoked' WHERE asset_id = (SELECT id FROM assets WHERE code = 'library-patrons')")
        .execute(&mut *conn).await.unwrap();
    drop(conn);
    let j = check(
        &app,
        &tok,
        q(32, "read", "library-patrons", TUE_10, "internet"),
    )
    .await
    .json();
    assert_eq!(j["reason"], "access.allow.grant", "not yet applied");
    let applied = app
        .state
        .access()
        .sync(app.state.db(), app.state.clock().unix())
        .await
        .unwrap();
    assert!(applied >= 1);
    let j = check(
        &app,
        &tok,
        q(32, "read", "library-patrons", TUE_10, "internet"),
    )
    .await
    .json();
    assert_eq!(j["reason"], "access.deny.secret_needs_grant");
    // A grant with an end date stops at it and is then marked ended.
    let juki = asset_id(&app, "juki").await;
    let mut s = app.logged_in(&num(KOSEKI_PART_TIME)).await;
    let until = app.state.clock().unix() + 3600;
    let until = time::OffsetDateTime::from_unix_timestamp(until)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let r = s.post_json("/api/v1/access-requests", &json!({ "asset_id": juki, "actions": ["read"], "valid_until": until, "purpose": "臨時" })).await;
    let id = r.json()["id"].as_i64().unwrap();
    let mut m = app.logged_in(&num(KOSEKI_MANAGER)).await;
    let r = m
        .post_json(
            &format!("/api/v1/access-requests/{id}/decision"),
            &json!({ "approve": true }),
        )
        .await;
    let grant = r.json()["grant_id"].as_i64().unwrap();
    let now = || {
        app.state
            .clock()
            .now()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    let j = check(&app, &tok, json!({ "subject": num(KOSEKI_PART_TIME), "action": "read", "asset": "juki", "context": { "time": now() } })).await.json();
    assert_eq!(j["reason"], "access.allow.grant");
    app.state.clock().advance(7200);
    let j = check(&app, &tok, json!({ "subject": num(KOSEKI_PART_TIME), "action": "read", "asset": "juki", "context": { "time": now() } })).await.json();
    assert_eq!(j["reason"], "access.deny.grant_not_in_effect");
    let n = mamori_server::assets::service::end_lapsed(&app.state)
        .await
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(scalar(&app, &format!("SELECT COUNT(*) FROM access_grants WHERE id = {grant} AND ended_reason = 'expired'")).await, 1);
    // A lockout reaches the engine: locked accounts are never allowed.
    let pid = person_id(&app, SOMU_STAFF).await;
    let mut chief = app.logged_in(&num(CHIEF)).await;
    let acc = scalar(
        &app,
        &format!("SELECT id FROM accounts WHERE person_id = {pid}"),
    )
    .await;
    let r = chief
        .post_json(
            &format!("/api/v1/accounts/{acc}/actions"),
            &json!({ "action": "lock" }),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text());
    let j = check(&app, &tok, q(SOMU_STAFF, "read", "bunsho", TUE_10, "lgwan"))
        .await
        .json();
    assert_eq!(j["reason"], "access.deny.person_locked");
}
both_engines!(changes_reach_the_engine_one_by_one, lapsed_and_feed);

async fn pages(app: TestApp) {
    // Staff see the register; the manager decides from the asset page.
    let mut s = app.logged_in(&num(KOSEKI_PART_TIME)).await;
    let r = s.get("/assets").await;
    assert_eq!(r.status, StatusCode::OK);
    let html = r.text();
    assert!(
        html.contains("住民基本台帳システム") && html.contains("秘密情報"),
        "register lists assets"
    );
    assert!(!html.contains("assets."), "no catalog key shows");
    let juki = asset_id(&app, "juki").await;
    let r = s.get(&format!("/assets/{juki}")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.text().contains("アクセス権限を申請する"));
    // A bad request form comes back with the message and what was typed.
    let r = s
        .post_form(
            &format!("/assets/{juki}/requests"),
            &[
                ("subject_kind", "self"),
                ("action_read", "on"),
                ("window_start", "8時"),
                ("window_end", "17:15"),
                ("purpose", "窓口対応のため"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let html = r.text();
    assert!(
        html.contains("時刻「8時」を読み取れません"),
        "message in Japanese"
    );
    assert!(html.contains("窓口対応のため"), "typed purpose kept");
    let r = s
        .post_form(
            &format!("/assets/{juki}/requests"),
            &[
                ("subject_kind", "self"),
                ("action_read", "on"),
                ("window_start", "08:30"),
                ("window_end", "17:15"),
                ("wd_mon", "on"),
                ("zone_my_number", "on"),
                ("purpose", "窓口対応のため"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    let id = scalar(&app, "SELECT MAX(id) FROM access_requests").await;
    // The manager sees it waiting and approves it.
    let mut m = app.logged_in(&num(KOSEKI_MANAGER)).await;
    let r = m.get("/access").await;
    assert!(r.text().contains("あなたの判断を待つ申請"));
    let r = m.get(&format!("/assets/{juki}")).await;
    assert!(r
        .text()
        .contains(&format!("/access-requests/{id}/decision")));
    let r = m
        .post_form(
            &format!("/access-requests/{id}/decision"),
            &[("decision", "approve"), ("reason", "")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    assert_eq!(
        scalar(
            &app,
            &format!(
                "SELECT COUNT(*) FROM access_requests WHERE id = {id} AND status = 'approved'"
            )
        )
        .await,
        1
    );
    // The staff member now sees the asset among theirs.
    let r = s.get("/access").await;
    assert!(r.text().contains("住民基本台帳システム"));
    // English too.
    let r = s
        .send(
            Method::GET,
            "/assets",
            &[("cookie", "mamori_lang=en")],
            vec![],
        )
        .await;
    assert!(r.text().contains("Information asset register"));
    // A reclassification without a reason, from the edit form.
    let r = m
        .post_form(
            &format!("/assets/{juki}"),
            &[
                ("code", "juki"),
                ("name", "住民基本台帳システム"),
                ("kind", "system"),
                (
                    "owner_org_unit_id",
                    &scalar(&app, "SELECT id FROM org_units WHERE code = 'koseki'")
                        .await
                        .to_string(),
                ),
                (
                    "security_manager_id",
                    &person_id(&app, KOSEKI_MANAGER).await.to_string(),
                ),
                ("confidentiality", "general"),
                ("zone", "my_number"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().contains("入力してください"), "reason required");
}
both_engines!(asset_pages_work_in_japanese, pages);

/// The API answers exactly what the engine answers in-process.
async fn api_equals_engine(app: TestApp) {
    use mamori_policy::access::{Action, Context, NetworkZone, Request};
    let tok = token(&app, &["access:check"]).await;
    let codes = [
        "juki",
        "juki-db",
        "network-config",
        "bunsho",
        "facility",
        "library",
        "library-patrons",
    ];
    let mut asks = Vec::new();
    for p in 0..43 {
        for code in codes {
            for action in ["read", "write", "export", "administer"] {
                asks.push((p, code, action));
            }
        }
    }
    let at = time::OffsetDateTime::parse(TUE_10, &time::format_description::well_known::Rfc3339)
        .unwrap();
    for chunk in asks.chunks(1000) {
        let requests: Vec<Value> = chunk
            .iter()
            .map(|(p, code, action)| q(*p, action, code, TUE_10, "my_number"))
            .collect();
        let r = bearer(
            &app,
            Method::POST,
            "/api/v1/access/check/batch",
            &tok,
            Some(json!({ "requests": requests })),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let results = r.json()["results"].clone();
        let model = app.state.access().read();
        for (i, (p, code, action)) in chunk.iter().enumerate() {
            let subject = model.person_by_number[&num(*p)];
            let asset = model.asset_by_code[*code];
            let d = model
                .engine
                .decide(&Request {
                    subject,
                    action: action.parse::<Action>().unwrap(),
                    asset,
                    context: Context {
                        at,
                        zone: Some(NetworkZone::MyNumber),
                        area: None,
                    },
                })
                .unwrap();
            assert_eq!(results[i]["allow"], d.allow, "{p} {action} {code}");
            assert_eq!(results[i]["reason"], d.reason.code(), "{p} {action} {code}");
        }
    }
}
both_engines!(the_api_answers_as_the_engine_does, api_equals_engine);
