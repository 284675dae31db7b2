//! The automatic compliance checks (issue 7 point 3), training (K9) and the
//! dashboard (point 9), through HTTP and the services, on both engines.
//! Every check is made to FAIL with the offending item listed, then to PASS
//! after the fix.

mod common;

use axum::http::{Method, StatusCode};
use common::{login_with_role, manager_of, plain_staff, records_with, scalar, Client, TestApp};
use serde_json::{json, Value};

const DIRECTOR: &str = "セキュリティ統括者";
const CHIEF: &str = "セキュリティ総括管理者";
const CIO: &str = "最高情報統括責任者";
const LEADER: &str = "情報化推進リーダー";

/// Runs every check (as the schedule does) and returns one check's latest
/// result as JSON.
async fn run(app: &TestApp, id: &str) -> Value {
    mamori_server::compliance::run_all(&app.state)
        .await
        .expect("run");
    latest(app, id).await
}

async fn latest(app: &TestApp, id: &str) -> Value {
    let mut conn = app.state.db().pool().acquire().await.unwrap();
    let all = mamori_server::compliance::latest(&mut conn).await.unwrap();
    let c = all.into_iter().find(|c| c.id == id).expect("check listed");
    serde_json::to_value(c).unwrap()
}

fn keys(c: &Value) -> Vec<String> {
    c["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["key"].as_str().unwrap().to_string())
        .collect()
}

fn item<'a>(c: &'a Value, key: &str) -> &'a Value {
    c["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["key"] == key)
        .unwrap_or_else(|| panic!("no item {key} in {c}"))
}

fn assert_fails(c: &Value) {
    assert_eq!(c["passed"], false, "{c}");
    assert!(c["since"].as_i64().is_some(), "{c}");
    assert!(c["item_count"].as_i64().unwrap() > 0, "{c}");
}

fn assert_passes(c: &Value) {
    assert_eq!(c["passed"], true, "{c}");
    assert!(c["since"].is_null(), "{c}");
    assert_eq!(c["items"], json!([]), "{c}");
}

async fn person(c: &mut Client, login: &str) -> Value {
    let r = c.get(&format!("/api/v1/people?q={login}")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json()[0].clone()
}

async fn login_of_person(app: &TestApp, id: i64) -> String {
    let mut conn = app.state.db().pool().acquire().await.unwrap();
    let (login,): (String,) = sqlx::query_as("SELECT login FROM accounts WHERE person_id = $1")
        .bind(id)
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    login
}

async fn unit_id(app: &TestApp, code: &str) -> i64 {
    scalar(app, &format!("SELECT id FROM org_units WHERE code = '{code}'")).await
}

async fn asset(c: &mut Client, app: &TestApp, code: &str) -> Value {
    let id = scalar(app, &format!("SELECT id FROM assets WHERE code = '{code}'")).await;
    let r = c.get(&format!("/api/v1/assets/{id}")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json()
}

async fn set(c: &mut Client, key: &str, value: i64) {
    let r = c
        .put_json("/api/v1/settings", &json!({ "key": key, "value": value }))
        .await;
    assert!(r.status.is_success(), "{key}: {}", r.text());
}

fn today(app: &TestApp) -> String {
    mamori_server::clock::date_str(app.state.clock().today())
}

// ---------------------------------------------------------------------------
// The framework, the API and the dashboard

both_engines!(
    checks_run_on_demand_keep_history_and_show_on_the_dashboard,
    |app: TestApp| async move {
        // The demo ward loads with a first run.
        let demo_runs = scalar(&app, "SELECT COUNT(*) FROM compliance_runs").await;
        assert_eq!(demo_runs, 1);
        let mut d = app.logged_in(&login_with_role(&app, DIRECTOR)).await;
        let before = records_with(&app, "compliance.run").await;
        let r = d
            .request(Method::POST, "/api/v1/compliance/runs", None, vec![])
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        let created = r.json();
        assert_eq!(created["trigger"], "demand");
        assert_eq!(
            created["passed"].as_i64().unwrap() + created["failed"].as_i64().unwrap(),
            mamori_server::compliance::CHECKS.len() as i64
        );
        assert_eq!(records_with(&app, "compliance.run").await, before + 1);
        let list = d.get("/api/v1/compliance/checks").await;
        assert_eq!(list.status, StatusCode::OK);
        let list = list.json();
        assert_eq!(list["run"]["id"], created["id"]);
        let checks = list["checks"].as_array().unwrap();
        for id in [
            "k17.3.departed-accounts",
            "k17.4.password-expired",
            "k17.2.shared-unjustified",
            "k18.operator-limit",
            "k3.2.1.secret-without-rules",
            "k3.2.1.review-overdue",
            "k16.2.2.ledger-unverified",
            "k30.2.viewer-limit",
            "k10.chain-overdue",
            "k9.training-unattended",
        ] {
            let c = checks.iter().find(|c| c["id"] == id).expect(id);
            assert!(c["passed"].is_boolean(), "{c}");
            assert!(c["clause"].as_str().unwrap().starts_with('K'));
        }
        // The demo's missed training fails since the demo's run: the streak
        // keeps its start.
        let k9 = d
            .get("/api/v1/compliance/checks/k9.training-unattended")
            .await
            .json();
        assert_fails(&k9);
        let first_since = k9["since"].as_i64().unwrap();
        assert_eq!(k9["history"].as_array().unwrap().len(), 2);
        assert!(k9["items"][0]["link"]
            .as_str()
            .unwrap()
            .starts_with("/training/"));
        app.state.clock().advance(120);
        let again = run(&app, "k9.training-unattended").await;
        assert_eq!(again["since"].as_i64().unwrap(), first_since);
        let r = d.get("/api/v1/compliance/checks/no.such-check").await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        // The dashboard: by clause, by department, trend chart, top failing.
        let mut d = app.logged_in(&login_with_role(&app, DIRECTOR)).await;
        let page = d.get("/compliance").await;
        assert_eq!(page.status, StatusCode::OK);
        let html = page.text();
        for needle in [
            "id=\"by-clause\"",
            "id=\"by-department\"",
            "id=\"trend-chart\"",
            "<polyline",
            "id=\"top-failing\"",
            "K17.3",
            "k9.training-unattended",
        ] {
            assert!(html.contains(needle), "{needle} missing");
        }
        assert!(!html.contains("<script"), "no script");
        let page = d.get("/compliance/checks/k9.training-unattended").await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.text().contains("id=\"history-chart\""));
        // The button runs the checks.
        let r = d.post_form("/compliance/runs", &[]).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
        assert_eq!(scalar(&app, "SELECT COUNT(*) FROM compliance_runs").await, 4);
        // Staff and managers do not see the dashboard; auditors read it only.
        let mut s = app.logged_in(&plain_staff(&app, "戸籍住民課")).await;
        assert_eq!(s.get("/compliance").await.status, StatusCode::FORBIDDEN);
        let mut a = app.logged_in(&login_with_role(&app, "外部監査人")).await;
        assert_eq!(a.get("/compliance").await.status, StatusCode::OK);
        let r = a
            .request(Method::POST, "/api/v1/compliance/runs", None, vec![])
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        // In English too.
        let r = d
            .send(
                Method::GET,
                "/compliance",
                &[("cookie", "mamori_lang=en")],
                vec![],
            )
            .await;
        assert!(r.text().contains("Compliance by clause"));
        // The unit view keeps only the unit's items.
        let koseki = unit_id(&app, "koseki").await;
        let mut conn = app.state.db().pool().acquire().await.unwrap();
        let unit = mamori_server::compliance::latest_for_unit(&mut conn, koseki)
            .await
            .unwrap();
        let k9u = unit
            .iter()
            .find(|c| c.id == "k9.training-unattended")
            .unwrap();
        let koseki_persons: Vec<i64> = sqlx::query_as::<_, (i64,)>(
            "SELECT id FROM persons WHERE org_unit_id = $1",
        )
        .bind(koseki)
        .fetch_all(&mut *conn)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.0)
        .collect();
        for i in &k9u.items {
            assert_eq!(i.unit_id, Some(koseki), "{i:?}");
            assert!(koseki_persons.iter().any(|p| i.key.ends_with(&format!(":person:{p}"))));
        }
        let hist = mamori_server::compliance::history(&mut conn, "k9.training-unattended", 10)
            .await
            .unwrap();
        assert_eq!(hist.len(), 4);
        assert!(hist.windows(2).all(|w| w[0].run_at <= w[1].run_at));
    }
);

both_engines!(checks_run_on_their_schedule, |app: TestApp| async move {
    // Just after the demo's run nothing is due; after the interval one is.
    assert_eq!(
        mamori_server::compliance::run_if_due(&app.state)
            .await
            .unwrap(),
        None
    );
    app.state.clock().advance(61 * 60);
    assert!(mamori_server::compliance::run_if_due(&app.state)
        .await
        .unwrap()
        .is_some());
    assert_eq!(
        scalar(
            &app,
            "SELECT COUNT(*) FROM compliance_runs WHERE trigger_kind = 'schedule'"
        )
        .await,
        2
    );
});

// ---------------------------------------------------------------------------
// One test per check: FAIL with the item, then PASS after the fix.

both_engines!(k17_3_departed_accounts, |app: TestApp| async move {
    const ID: &str = "k17.3.departed-accounts";
    assert_passes(&latest(&app, ID).await);
    let mut chief = app.logged_in(&login_with_role(&app, CHIEF)).await;
    let first_day = today(&app);
    let tomorrow = mamori_server::clock::date_str(app.state.clock().today().next_day().unwrap());
    // A retirement and a transfer dated tomorrow (applied by the scheduler).
    let leaving = plain_staff(&app, "戸籍住民課");
    let p = person(&mut chief, &leaving).await;
    let r = chief
        .post_json(
            "/api/v1/personnel-events",
            &json!({ "kind": "retire", "employee_number": leaving, "effective_date": tomorrow }),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text());
    let moving = plain_staff(&app, "企画課");
    let m = person(&mut chief, &moving).await;
    let r = chief
        .post_json(
            "/api/v1/personnel-events",
            &json!({ "kind": "transfer", "employee_number": moving, "effective_date": tomorrow, "org_unit_code": "somu-ka" }),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text());
    assert_passes(&run(&app, ID).await);
    // The date comes and the scheduler has not run: the retiree's account
    // still works and the transfer is not applied.
    app.state.clock().advance(2 * 86_400);
    let c = run(&app, ID).await;
    assert_fails(&c);
    let acc = item(&c, &format!("account:{}", p["account"]["id"]));
    assert!(acc["label"].as_str().unwrap().contains(&leaving), "{acc}");
    assert_eq!(acc["link"], format!("/people/{}", p["id"]));
    assert_eq!(acc["unit_id"], p["org_unit_id"]);
    assert_eq!(
        acc["since"].as_i64(),
        mamori_server::compliance::checks::date_start(&tomorrow),
        "since the leaving date"
    );
    assert!(keys(&c)
        .iter()
        .any(|k| k.starts_with("event:")), "{c}");
    assert!(c["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|i| i["link"] == format!("/people/{}", m["id"])));
    // The fix: the scheduled events apply.
    let applied = mamori_server::people::service::apply_due(&app.state)
        .await
        .unwrap();
    assert_eq!(applied, 2);
    assert_passes(&run(&app, ID).await);
    let mut chief = app.logged_in(&login_with_role(&app, CHIEF)).await;
    // A right from the old post that outlives an applied transfer is found
    // too (here written behind the service's back).
    let mid = m["id"].as_i64().unwrap();
    let unit = m["org_unit_id"].as_i64().unwrap();
    let mut conn = app.state.db().pool().acquire().await.unwrap();
    sqlx::query(
        "INSERT INTO role_assignments (person_id, role, org_unit_id, valid_from, created_at)
         VALUES ($1, 'promotion_leader', $2, '2020-04-01', 1)",
    )
    .bind(mid)
    .bind(unit)
    .execute(&mut *conn)
    .await
    .unwrap();
    drop(conn);
    let c = run(&app, ID).await;
    assert_fails(&c);
    assert_eq!(keys(&c), vec![format!("old-post:person:{mid}")]);
    let r = chief
        .post_json(
            &format!(
                "/api/v1/role-assignments/{}/end",
                scalar(&app, &format!("SELECT MAX(id) FROM role_assignments WHERE person_id = {mid}")).await
            ),
            &json!({ "valid_to": first_day }),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text());
    assert_passes(&run(&app, ID).await);
});

both_engines!(k17_4_password_expired, |app: TestApp| async move {
    const ID: &str = "k17.4.password-expired";
    assert_passes(&latest(&app, ID).await);
    // 181 days later every demo password is past the 180-day expiry.
    app.state.clock().advance(181 * 86_400);
    let c = run(&app, ID).await;
    assert_fails(&c);
    let chief_login = login_with_role(&app, CHIEF);
    let chief_account = scalar(
        &app,
        &format!("SELECT id FROM accounts WHERE login = '{chief_login}'"),
    )
    .await;
    let it = item(&c, &format!("account:{chief_account}"));
    assert!(it["label"].as_str().unwrap().contains(&chief_login));
    assert!(it["since"].as_i64().unwrap() <= app.state.clock().unix() - 86_400);
    // The chief changes their password (forced at login) …
    let mut chief = app.logged_in(&chief_login).await;
    let r = chief
        .put_json(
            "/api/v1/me/password",
            &json!({ "current_password": app.passwords[&chief_login], "new_password": "Kiri-Hana-Tsuki-Yama7" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
    let c = run(&app, ID).await;
    assert!(!keys(&c).contains(&format!("account:{chief_account}")));
    // … and, as the ward's security manager for Mamori, sets the period to a
    // year (K17.4): nothing is past it any more.
    set(&mut chief, "password.max_age_days", 365).await;
    assert_passes(&run(&app, ID).await);
    // Turning expiry off is itself a finding.
    set(&mut chief, "password.max_age_days", 0).await;
    let c = run(&app, ID).await;
    assert_eq!(keys(&c), vec!["setting:password.max_age_days".to_string()]);
});

both_engines!(k17_2_shared_unjustified, |app: TestApp| async move {
    const ID: &str = "k17.2.shared-unjustified";
    assert_passes(&latest(&app, ID).await);
    // A shared account carried over from before Mamori, without a reason.
    let koseki = unit_id(&app, "koseki").await;
    let mut conn = app.state.db().pool().acquire().await.unwrap();
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO accounts (login, kind, shared_justification, shared_org_unit_id, created_at)
         VALUES ('koseki-madoguchi', 'shared', '', $1, 1) RETURNING id",
    )
    .bind(koseki)
    .fetch_one(&mut *conn)
    .await
    .unwrap();
    drop(conn);
    let c = run(&app, ID).await;
    assert_fails(&c);
    let it = item(&c, &format!("account:{id}"));
    assert!(it["label"].as_str().unwrap().contains("koseki-madoguchi"));
    assert_eq!(it["unit_id"], koseki);
    // The manager stops it until it is justified.
    let mut m = app.logged_in(&manager_of(&app, "戸籍住民課")).await;
    let r = m
        .post_json(
            &format!("/api/v1/accounts/{id}/actions"),
            &json!({ "action": "lock" }),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text());
    assert_passes(&run(&app, ID).await);
});

both_engines!(k18_operator_limit, |app: TestApp| async move {
    const ID: &str = "k18.operator-limit";
    assert_passes(&latest(&app, ID).await);
    let mut chief = app.logged_in(&login_with_role(&app, CHIEF)).await;
    set(&mut chief, "access.admin_limit_per_system", 1).await;
    let facility = asset(&mut chief, &app, "facility").await;
    let fid = facility["id"].as_i64().unwrap();
    let c = run(&app, ID).await;
    assert_fails(&c);
    let it = item(&c, &format!("asset:{fid}"));
    assert_eq!(it["link"], format!("/assets/{fid}"));
    assert!(it["label"].as_str().unwrap().contains("2 人"), "{it}");
    // The manager ends the operator's appointment: that asset is within it.
    let manager = login_of_person(&app, facility["security_manager_id"].as_i64().unwrap()).await;
    let op = facility["operators"][0]["id"].as_i64().unwrap();
    let mut m = app.logged_in(&manager).await;
    let r = m
        .request(
            Method::POST,
            &format!("/api/v1/assets/{fid}/operators/{op}/end"),
            None,
            vec![],
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
    let c = run(&app, ID).await;
    assert!(!keys(&c).contains(&format!("asset:{fid}")), "{c}");
    set(&mut chief, "access.admin_limit_per_system", 2).await;
    assert_passes(&run(&app, ID).await);
});

both_engines!(k3_2_1_secret_without_rules, |app: TestApp| async move {
    const ID: &str = "k3.2.1.secret-without-rules";
    // The demo's network settings (秘密情報) have no grant yet.
    let mut chief = app.logged_in(&login_with_role(&app, CHIEF)).await;
    let net = asset(&mut chief, &app, "network-config").await;
    let nid = net["id"].as_i64().unwrap();
    let c = latest(&app, ID).await;
    assert_fails(&c);
    assert_eq!(keys(&c), vec![format!("asset:{nid}")]);
    assert_eq!(item(&c, &format!("asset:{nid}"))["link"], format!("/assets/{nid}"));
    // Its manager grants an operator read access: the rule exists.
    let manager = login_of_person(&app, net["security_manager_id"].as_i64().unwrap()).await;
    let staff = plain_staff(&app, "情報政策課");
    let mut s = app.logged_in(&staff).await;
    let r = s
        .post_json(
            "/api/v1/access-requests",
            &json!({ "asset_id": nid, "actions": ["read"], "purpose": "機器設定の確認" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let req = r.json()["id"].as_i64().unwrap();
    let mut m = app.logged_in(&manager).await;
    let r = m
        .post_json(
            &format!("/api/v1/access-requests/{req}/decision"),
            &json!({ "approve": true, "reason": "保守のため" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_passes(&run(&app, ID).await);
});

both_engines!(k3_2_1_review_overdue, |app: TestApp| async move {
    const ID: &str = "k3.2.1.review-overdue";
    assert_passes(&latest(&app, ID).await);
    let mut chief = app.logged_in(&login_with_role(&app, CHIEF)).await;
    set(&mut chief, "access.review_interval_days", 30).await;
    app.state.clock().advance(31 * 86_400);
    let c = run(&app, ID).await;
    assert_fails(&c);
    let mut chief = app.logged_in(&login_with_role(&app, CHIEF)).await;
    let db = asset(&mut chief, &app, "juki-db").await;
    let dbid = db["id"].as_i64().unwrap();
    assert!(keys(&c).contains(&format!("asset:{dbid}")), "{c}");
    // The manager reviews the resident data's access (棚卸し).
    let mut m = app.logged_in(&manager_of(&app, "戸籍住民課")).await;
    let r = m
        .request(
            Method::POST,
            &format!("/api/v1/assets/{dbid}/reviews"),
            None,
            vec![],
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let review = r.json();
    let rid = review["id"].as_i64().unwrap();
    for i in review["items"].as_array().unwrap() {
        let r = m
            .post_json(
                &format!("/api/v1/access-reviews/{rid}/items"),
                &json!({ "grant_id": i["grant_id"], "decision": "confirm" }),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    }
    let r = m
        .request(
            Method::POST,
            &format!("/api/v1/access-reviews/{rid}/complete"),
            None,
            vec![],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let c = run(&app, ID).await;
    assert!(!keys(&c).contains(&format!("asset:{dbid}")), "{c}");
    set(&mut chief, "access.review_interval_days", 365).await;
    assert_passes(&run(&app, ID).await);
});

both_engines!(k16_2_2_ledger_unverified, |app: TestApp| async move {
    const ID: &str = "k16.2.2.ledger-unverified";
    // No full verification has run in the fresh ward.
    let c = latest(&app, ID).await;
    assert_fails(&c);
    assert_eq!(keys(&c), vec!["ledger:unverified".to_string()]);
    let v = app
        .state
        .ledger()
        .verify_and_record(app.state.clock())
        .await
        .unwrap();
    assert!(v.problem.is_none());
    assert_passes(&run(&app, ID).await);
    // Too long without one.
    app.state.clock().advance(25 * 3600);
    let c = run(&app, ID).await;
    assert_eq!(keys(&c), vec!["ledger:stale".to_string()]);
    app.state
        .ledger()
        .verify_and_record(app.state.clock())
        .await
        .unwrap();
    assert_passes(&run(&app, ID).await);
    // A verification that found a mismatch (as the verifier records it).
    let mut conn = app.state.db().pool().acquire().await.unwrap();
    let rec = mamori_server::records::Record::new(
        mamori_server::records::Who::Scheduler,
        "ledger.verify",
        "ledger",
        "K16.2.2",
    )
    .outcome(mamori_server::records::Outcome::Failure)
    .detail(json!({ "size": 9, "problem": "leaf hash mismatch at 4", "first_bad": 4 }));
    mamori_server::records::append(&mut conn, app.state.clock().unix_micros(), &rec)
        .await
        .unwrap();
    drop(conn);
    let c = run(&app, ID).await;
    assert_eq!(keys(&c), vec!["ledger:mismatch".to_string()]);
    assert!(c["items"][0]["label"]
        .as_str()
        .unwrap()
        .contains("leaf hash mismatch at 4"));
});

both_engines!(k30_2_viewer_limit, |app: TestApp| async move {
    const ID: &str = "k30.2.viewer-limit";
    assert_passes(&latest(&app, ID).await);
    let mut chief = app.logged_in(&login_with_role(&app, CHIEF)).await;
    set(&mut chief, "ledger.max_viewers_per_unit", 1).await;
    assert_passes(&run(&app, ID).await);
    // The 戸籍住民課長 names a second viewer.
    let koseki = unit_id(&app, "koseki").await;
    let mut m = app.logged_in(&manager_of(&app, "戸籍住民課")).await;
    let staff = plain_staff(&app, "戸籍住民課");
    let p = person(&mut m, &staff).await;
    let r = m
        .post_json(
            "/api/v1/role-assignments",
            &json!({ "person_id": p["id"], "role": "designated_viewer", "org_unit_id": koseki }),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text());
    let assignment = r.json()["id"].as_i64().unwrap();
    let c = run(&app, ID).await;
    assert_fails(&c);
    assert_eq!(keys(&c), vec![format!("unit:{koseki}")]);
    assert!(item(&c, &format!("unit:{koseki}"))["label"]
        .as_str()
        .unwrap()
        .contains("2 人"));
    // The manager ends it today: from tomorrow the unit is within the limit.
    let r = m
        .post_json(
            &format!("/api/v1/role-assignments/{assignment}/end"),
            &json!({ "valid_to": today(&app) }),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text());
    assert_fails(&run(&app, ID).await);
    app.state.clock().advance(86_400);
    assert_passes(&run(&app, ID).await);
});

both_engines!(k10_chain_overdue, |app: TestApp| async move {
    const ID: &str = "k10.chain-overdue";
    assert_passes(&latest(&app, ID).await);
    let mut s = app.logged_in(&plain_staff(&app, "戸籍住民課")).await;
    let r = s
        .post_json(
            "/api/v1/incidents",
            &json!({
                "kind": "failure", "title": "窓口端末の障害",
                "description": "窓口端末で住民票が印刷できない。",
                "noticed_at": mamori_server::clock::format_unix(app.state.clock().unix() - 60).replace(' ', "T") + ":00+09:00",
            }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let id = r.json()["id"].as_i64().unwrap();
    assert_passes(&run(&app, ID).await);
    // The manager's hour passes without a forward (K10.2: 速やかに).
    app.state.clock().advance(61 * 60);
    let c = run(&app, ID).await;
    assert_fails(&c);
    let it = item(&c, &format!("incident:{id}"));
    assert_eq!(it["link"], format!("/incidents/{id}"));
    assert!(it["label"].as_str().unwrap().contains("セキュリティ管理者"), "{it}");
    // The chain is walked to the CIO.
    let steps = |v: &Value, seq: i64| {
        v["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["seq"] == seq)
            .map(|s| s["id"].as_i64().unwrap())
            .unwrap()
    };
    let mut m = app.logged_in(&manager_of(&app, "戸籍住民課")).await;
    let v = m.get(&format!("/api/v1/incidents/{id}")).await.json();
    let r = m
        .post_json(
            &format!("/api/v1/incidents/{id}/steps/{}", steps(&v, 1)),
            &json!({ "action": "forward", "comment": "遅れて報告" }),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text());
    let mut d = app.logged_in(&login_with_role(&app, DIRECTOR)).await;
    let v = d.get(&format!("/api/v1/incidents/{id}")).await.json();
    let r = d
        .post_json(
            &format!("/api/v1/incidents/{id}/steps/{}", steps(&v, 2)),
            &json!({ "action": "report", "comment": "" }),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text());
    let mut cio = app.logged_in(&login_with_role(&app, CIO)).await;
    let v = cio.get(&format!("/api/v1/incidents/{id}")).await.json();
    let r = cio
        .post_json(
            &format!("/api/v1/incidents/{id}/steps/{}", steps(&v, 3)),
            &json!({ "action": "acknowledge", "comment": "" }),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text());
    assert_passes(&run(&app, ID).await);
});

// ---------------------------------------------------------------------------
// Training (K9) and its check

both_engines!(k9_training_unattended, |app: TestApp| async move {
    const ID: &str = "k9.training-unattended";
    let koseki = unit_id(&app, "koseki").await;
    // The demo's basic training was missed by a few.
    let demo = latest(&app, ID).await;
    assert_fails(&demo);
    // The director holds a required briefing for 戸籍住民課 today.
    let mut d = app.logged_in(&login_with_role(&app, DIRECTOR)).await;
    let r = d
        .post_json(
            "/api/v1/training/sessions",
            &json!({ "title": "窓口の個人情報の扱い", "held_on": today(&app), "audience": "units", "units": [koseki] }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let sid = r.json()["id"].as_i64().unwrap();
    assert_eq!(records_with(&app, "training.session.create").await, 1);
    // Not missed yet on its own day.
    let c = run(&app, ID).await;
    assert!(!keys(&c).iter().any(|k| k.starts_with(&format!("session:{sid}:"))));
    app.state.clock().advance(86_400);
    let c = run(&app, ID).await;
    assert_fails(&c);
    let staff = plain_staff(&app, "戸籍住民課");
    let mut s = app.logged_in(&staff).await;
    let me = person(&mut app.logged_in(&manager_of(&app, "戸籍住民課")).await, &staff).await;
    let key = format!("session:{sid}:person:{}", me["id"]);
    let it = item(&c, &key);
    assert_eq!(it["unit_id"], koseki);
    assert_eq!(it["link"], format!("/training/{sid}"));
    assert!(it["label"].as_str().unwrap().contains("窓口の個人情報の扱い"));
    // The staff member reports attending (kept as a self-report).
    let r = s
        .request(
            Method::POST,
            &format!("/api/v1/training/sessions/{sid}/self-report"),
            None,
            vec![],
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
    let c = run(&app, ID).await;
    assert!(!keys(&c).contains(&key));
    // The manager marks the rest of the unit; the director the demo's misses.
    let mut m = app.logged_in(&manager_of(&app, "戸籍住民課")).await;
    let detail = m
        .get(&format!("/api/v1/training/sessions/{sid}"))
        .await
        .json();
    let audience = detail["audience"].as_array().unwrap();
    assert!(audience
        .iter()
        .any(|a| a["person_id"] == me["id"] && a["source"] == "self"));
    let missing: Vec<Value> = audience
        .iter()
        .filter(|a| a["attended"] == false)
        .map(|a| a["person_id"].clone())
        .collect();
    assert!(!missing.is_empty());
    let r = m
        .post_json(
            &format!("/api/v1/training/sessions/{sid}/attendance"),
            &json!({ "person_ids": missing }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let c = run(&app, ID).await;
    assert!(!keys(&c).iter().any(|k| k.starts_with(&format!("session:{sid}:"))), "{c}");
    let mut d = app.logged_in(&login_with_role(&app, DIRECTOR)).await;
    let mut demo_sessions: Vec<i64> = c["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["key"].as_str().unwrap().split(':').nth(1).unwrap().parse().unwrap())
        .collect();
    demo_sessions.dedup();
    for ds in demo_sessions {
        let detail = d
            .get(&format!("/api/v1/training/sessions/{ds}"))
            .await
            .json();
        let missing: Vec<Value> = detail["audience"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["attended"] == false)
            .map(|a| a["person_id"].clone())
            .collect();
        let r = d
            .post_json(
                &format!("/api/v1/training/sessions/{ds}/attendance"),
                &json!({ "person_ids": missing }),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    }
    assert_passes(&run(&app, ID).await);
    // Completion by department shows 100% for 戸籍住民課.
    let comp = d.get("/api/v1/training/completion").await.json();
    let row = comp
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["unit_id"] == koseki)
        .cloned()
        .unwrap();
    assert_eq!(row["percent"], 100, "{row}");
    assert!(records_with(&app, "training.attendance.mark").await >= 2);
    assert_eq!(records_with(&app, "training.attendance.self_report").await, 1);
});

both_engines!(k9_training_rules_and_bad_input, |app: TestApp| async move {
    let koseki = unit_id(&app, "koseki").await;
    let kikaku = unit_id(&app, "kikaku-ka").await;
    let mut d = app.logged_in(&login_with_role(&app, DIRECTOR)).await;
    // A malformed date and a missing audience name their fields.
    let r = d
        .post_json(
            "/api/v1/training/sessions",
            &json!({ "title": "研修", "held_on": "令和8年13月40日", "audience": "everyone" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    let fields: Vec<String> = r.json()["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap().to_string())
        .collect();
    assert!(fields.contains(&"held_on".to_string()) && fields.contains(&"audience".to_string()));
    // 和暦 dates are accepted; roles as the audience.
    let r = d
        .post_json(
            "/api/v1/training/sessions",
            &json!({ "title": "管理者研修", "held_on": "令和99年4月1日", "audience": "roles", "roles": ["security_manager"] }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let future = r.json()["id"].as_i64().unwrap();
    // Attendance cannot be recorded before the date.
    let m_login = manager_of(&app, "戸籍住民課");
    let mut m = app.logged_in(&m_login).await;
    let me = person(&mut m, &m_login).await;
    let r = m
        .request(
            Method::POST,
            &format!("/api/v1/training/sessions/{future}/self-report"),
            None,
            vec![],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.json()["errors"][0]["code"], "training.not_yet_held");
    let detail = m
        .get(&format!("/api/v1/training/sessions/{future}"))
        .await
        .json();
    assert_eq!(detail["for_me"], true, "a manager is in the role audience");
    assert_eq!(detail["held_on"], "2117-04-01");
    // A manager addresses only their own units.
    let r = m
        .post_json(
            "/api/v1/training/sessions",
            &json!({ "title": "課内説明会", "held_on": today(&app), "audience": "all" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.json()["field"], "audience");
    let r = m
        .post_json(
            "/api/v1/training/sessions",
            &json!({ "title": "課内説明会", "held_on": today(&app), "audience": "units", "units": [kikaku] }),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.json()["field"], "units");
    let r = m
        .post_json(
            "/api/v1/training/sessions",
            &json!({ "title": "課内説明会", "held_on": today(&app), "audience": "units", "units": [koseki], "required": false }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let own = r.json()["id"].as_i64().unwrap();
    // Someone outside the audience cannot report or be marked.
    let outsider = plain_staff(&app, "企画課");
    let mut o = app.logged_in(&outsider).await;
    let r = o
        .request(
            Method::POST,
            &format!("/api/v1/training/sessions/{own}/self-report"),
            None,
            vec![],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let op = person(&mut d, &outsider).await;
    let r = m
        .post_json(
            &format!("/api/v1/training/sessions/{own}/attendance"),
            &json!({ "person_ids": [op["id"]] }),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.json()["field"], "person_ids");
    // Unknown fields and sessions.
    let r = m
        .post_json(
            &format!("/api/v1/training/sessions/{own}/attendance"),
            &json!({ "person_ids": [me["id"]], "extra": 1 }),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = m.get("/api/v1/training/sessions/999999").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = m.get("/training/abc").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // The page form re-renders with what was typed and a Japanese message.
    let r = d
        .post_form(
            "/training",
            &[("title", "年末の説明会"), ("held_on", "2026-02-30"), ("audience", "all")],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let html = r.text();
    assert!(html.contains("年末の説明会") && html.contains("日付"), "kept and explained");
    let r = d
        .post_form(
            "/training",
            &[("title", "年末の説明会"), ("held_on", &today(&app)), ("audience", "units"), ("units", &koseki.to_string()), ("units", &kikaku.to_string()), ("required", "1")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    let page = d.get(r.headers["location"].to_str().unwrap()).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text().contains("戸籍住民課") && page.text().contains("企画課"));
    // Pages for staff: the list and the self-report button.
    let mut s = app.logged_in(&plain_staff(&app, "戸籍住民課")).await;
    let page = s.get("/training").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text().contains("年末の説明会"));
    let page = s.get(&format!("/training/{own}")).await;
    assert!(page.text().contains("id=\"self-report\""));
    let r = s.post_form(&format!("/training/{own}/self-report"), &[]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(s.get(&format!("/training/{own}")).await.text().contains("受講済み"));
});

both_engines!(k9_2_instructions_to_promotion_leaders, |app: TestApp| async move {
    let leader_login = app
        .logins
        .iter()
        .find(|(_, u, roles)| u == "戸籍住民課" && roles.split('・').any(|r| r == LEADER))
        .map(|(l, _, _)| l.clone())
        .unwrap();
    let mut m = app.logged_in(&manager_of(&app, "戸籍住民課")).await;
    let leader = person(&mut m, &leader_login).await;
    // Another unit's manager cannot instruct this leader.
    let mut other = app.logged_in(&manager_of(&app, "企画課")).await;
    let r = other
        .post_json(
            "/api/v1/training/instructions",
            &json!({ "to_person_id": leader["id"], "body": "課内研修を実施してください。" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.json()["field"], "to_person_id");
    let r = m
        .post_json(
            "/api/v1/training/instructions",
            &json!({ "to_person_id": leader["id"], "body": "" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.json()["field"], "body");
    let r = m
        .post_json(
            "/api/v1/training/instructions",
            &json!({ "to_person_id": leader["id"], "body": "未受講者に資料を配布してください。" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let id = r.json()["id"].as_i64().unwrap();
    assert_eq!(records_with(&app, "training.instruction").await, 1);
    // The leader sees and acknowledges it; nobody else can.
    let mut l = app.logged_in(&leader_login).await;
    let list = l.get("/api/v1/training/instructions").await.json();
    let mine = list
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == id)
        .cloned()
        .unwrap();
    assert!(mine["acknowledged_at"].is_null());
    let other_leader = app
        .logins
        .iter()
        .find(|(_, u, roles)| u != "戸籍住民課" && roles.split('・').any(|r| r == LEADER))
        .map(|(l, _, _)| l.clone())
        .unwrap();
    let mut ol = app.logged_in(&other_leader).await;
    let r = ol
        .request(
            Method::POST,
            &format!("/api/v1/training/instructions/{id}/acknowledge"),
            None,
            vec![],
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let page = l.get("/training").await.text();
    assert!(page.contains(&format!("/training/instructions/{id}/acknowledge")));
    let r = l
        .post_form(&format!("/training/instructions/{id}/acknowledge"), &[])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    let list = m.get("/api/v1/training/instructions").await.json();
    let it = list
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == id)
        .cloned()
        .unwrap();
    assert!(it["acknowledged_at"].as_i64().is_some());
    assert_eq!(records_with(&app, "training.instruction.acknowledge").await, 1);
});
