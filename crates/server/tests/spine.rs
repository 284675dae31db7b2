//! The spine through its HTTP interface, on both engines: login and
//! lockout, password rules (K11.1.2), forced changes, personnel events
//! (K17.3), CSV import, roles and reporting chains, records, bad input.

mod common;

use axum::http::StatusCode;
use common::{login_with_role, plain_staff, records_with, TestApp};
use serde_json::json;

both_engines!(
    healthz_and_openapi_cover_every_api_route,
    |app: TestApp| async move {
        let mut c = app.client();
        assert_eq!(c.get("/healthz").await.status, StatusCode::OK);
        let doc = c.get("/api/v1/openapi.json").await.json();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
        let paths = doc["paths"].as_object().unwrap();
        for r in mamori_server::app::route_table() {
            if r.path.starts_with("/api/v1") {
                // OpenAPI has no wildcard segments: `{*path}` is documented as `{path}`.
                let documented = r.path.replace("{*", "{");
                let item = paths
                    .get(&documented)
                    .unwrap_or_else(|| panic!("{} missing from OpenAPI", r.path));
                assert!(
                    item.get(r.method.to_lowercase()).is_some(),
                    "{} {} missing from OpenAPI",
                    r.method,
                    r.path
                );
            }
        }
    }
);

both_engines!(
    k17_1_login_and_lockout_with_backoff,
    |app: TestApp| async move {
        let login = plain_staff(&app, "企画課");
        let mut c = app.client();
        for i in 0..5 {
            let r = c
                .post_json(
                    "/api/v1/session",
                    &json!({ "login": login, "password": format!("wrong-{i}") }),
                )
                .await;
            assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());
            assert_eq!(r.content_type(), "application/problem+json");
        }
        // Locked now: even the right password is refused, with the same message.
        let good = app.passwords[&login].clone();
        let r = c
            .post_json(
                "/api/v1/session",
                &json!({ "login": login, "password": good }),
            )
            .await;
        assert_eq!(r.status, StatusCode::CONFLICT);
        assert!(records_with(&app, "auth.login").await >= 6);
        // After the lock runs out, the right password works.
        app.state.clock().advance(61);
        let r = c
            .post_json(
                "/api/v1/session",
                &json!({ "login": login, "password": good }),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert_eq!(c.get("/api/v1/me").await.json()["login"], login.as_str());
    }
);

both_engines!(per_source_throttle, |app: TestApp| async move {
    let mut c = app.client();
    for i in 0..20 {
        let r = c
            .post_json(
                "/api/v1/session",
                &json!({ "login": format!("nobody{i}"), "password": "x" }),
            )
            .await;
        assert_eq!(r.status, StatusCode::CONFLICT);
    }
    let r = c
        .post_json(
            "/api/v1/session",
            &json!({ "login": "nobody", "password": "x" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    // Another address is not affected.
    let mut other = app.client();
    other.ip = "10.0.0.2:1".parse().unwrap();
    let login = plain_staff(&app, "企画課");
    let r = other
        .post_json(
            "/api/v1/session",
            &json!({ "login": login, "password": app.passwords[&login] }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
});

async fn reset(app: &TestApp, login: &str) -> String {
    let account = {
        let mut conn = app.state.db().pool().acquire().await.unwrap();
        mamori_server::identity::store::by_login(&mut conn, login)
            .await
            .unwrap()
            .unwrap()
            .id
    };
    mamori_server::identity::service::reset_password(
        &app.state,
        mamori_server::records::Who::Cli,
        "",
        account,
    )
    .await
    .unwrap()
}

both_engines!(
    k11_1_2_password_rules_and_forced_first_change,
    |app: TestApp| async move {
        let login = plain_staff(&app, "企画課");
        let otp = reset(&app, &login).await;
        let mut c = app.client();
        let r = c
            .post_json(
                "/api/v1/session",
                &json!({ "login": login, "password": otp }),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.json()["must_change_password"], true);
        // Nothing else works until the password is changed.
        let r = c.get("/api/v1/org-units").await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        assert_eq!(r.json()["code"], "error.password_change_required");
        // The employee number is refused, naming the field and the clause.
        let r = c
            .put_json(
                "/api/v1/me/password",
                &json!({ "current_password": otp, "new_password": format!("Tsuyu-{login}-Kawa!") }),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
        let p = r.json();
        assert_eq!(p["field"], "new_password");
        assert!(
            p["errors"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["code"] == "password.contains_employee_number"
                    && e["clause"] == "K11.1.2"),
            "{p}"
        );
        let r = c
            .put_json(
                "/api/v1/me/password",
                &json!({ "current_password": otp, "new_password": "Semi-Kawa-Tsuyu-Mado9" }),
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
        assert_eq!(c.get("/api/v1/org-units").await.status, StatusCode::OK);
        assert_eq!(records_with(&app, "password.change").await, 1);
    }
);

both_engines!(
    k11_1_2_no_two_users_share_a_password,
    |app: TestApp| async move {
        let a = plain_staff(&app, "企画課");
        let b = plain_staff(&app, "総務課");
        let shared = "Hotaru-Kawa-Semi-Mado7";
        let mut ca = app.logged_in(&a).await;
        let r = ca
            .put_json(
                "/api/v1/me/password",
                &json!({ "current_password": app.passwords[&a], "new_password": shared }),
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
        let mut cb = app.logged_in(&b).await;
        let r = cb
            .put_json(
                "/api/v1/me/password",
                &json!({ "current_password": app.passwords[&b], "new_password": shared }),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        let p = r.json();
        assert_eq!(p["errors"][0]["code"], "password.not_unique");
        // The message does not say who.
        assert!(!p.to_string().contains(&a));
        // The first holder must now change theirs, and both events are records.
        let me = ca.get("/api/v1/me").await;
        assert_eq!(me.status, StatusCode::OK);
        assert_eq!(me.json()["must_change_password"], true);
        assert_eq!(records_with(&app, "password.force_change").await, 1);
    }
);

both_engines!(k11_1_5_history_refuses_reuse, |app: TestApp| async move {
    let a = plain_staff(&app, "企画課");
    let mut c = app.logged_in(&a).await;
    let first = app.passwords[&a].clone();
    let r = c
        .put_json(
            "/api/v1/me/password",
            &json!({ "current_password": first, "new_password": "Hotaru-Kawa-Semi-Mado7" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = c
        .put_json(
            "/api/v1/me/password",
            &json!({ "current_password": "Hotaru-Kawa-Semi-Mado7", "new_password": first }),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.json()["errors"][0]["code"], "password.reused");
});

both_engines!(
    k17_4_expired_password_must_be_changed,
    |app: TestApp| async move {
        let a = plain_staff(&app, "企画課");
        let mut c = app.logged_in(&a).await;
        let me = c.get("/api/v1/me").await.json();
        let days = me["password_expires_in_days"].as_i64().unwrap();
        assert!((179..=180).contains(&days), "{me}");
        app.state.clock().advance(181 * 86_400);
        let mut c = app.logged_in(&a).await;
        let r = c.get("/api/v1/org-units").await;
        assert_eq!(r.json()["code"], "error.password_change_required");
    }
);

async fn event(c: &mut common::Client, body: serde_json::Value) -> common::Response {
    c.post_json("/api/v1/personnel-events", &body).await
}

both_engines!(k17_3_hire_transfer_retire, |app: TestApp| async move {
    let chief = login_with_role(&app, "セキュリティ総括管理者");
    let mut c = app.logged_in(&chief).await;
    let tomorrow = mamori_server::clock::date_str(app.state.clock().today().next_day().unwrap());
    // A future-dated hire is scheduled; the person exists but cannot log in.
    let r = event(&mut c, json!({ "employee_number": "900001", "kind": "hire", "effective_date": tomorrow,
        "name_kanji": "江戸 川子", "name_kana": "エド カワコ", "name_romaji": "Edo Kawako", "birth_date": "昭和60年5月5日",
        "employment": "正規", "org_unit_code": "koseki", "title": "主事" })).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(r.json()["status"], "scheduled");
    let pid = r.json()["person_id"].as_i64().unwrap();
    let otp = reset(&app, "900001").await;
    let mut newbie = app.client();
    assert_eq!(
        newbie
            .post_json(
                "/api/v1/session",
                &json!({ "login": "900001", "password": otp })
            )
            .await
            .status,
        StatusCode::CONFLICT
    );
    // On the day the scheduled task applies it.
    app.state.clock().advance(86_400);
    assert_eq!(
        mamori_server::people::service::apply_due(&app.state)
            .await
            .unwrap(),
        1
    );
    // A day later the chief's session has idled out; log in again.
    let mut c = app.logged_in(&chief).await;
    assert_eq!(
        newbie
            .post_json(
                "/api/v1/session",
                &json!({ "login": "900001", "password": otp })
            )
            .await
            .status,
        StatusCode::OK
    );
    // Give them a role in 戸籍住民課, then transfer them: the role ends.
    let unit = c
        .get("/api/v1/org-units")
        .await
        .json()
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["code"] == "koseki")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let r = c
        .post_json(
            "/api/v1/role-assignments",
            &json!({ "person_id": pid, "role": "operator", "org_unit_id": unit }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let today = mamori_server::clock::date_str(app.state.clock().today());
    let r = event(&mut c, json!({ "employee_number": "900001", "kind": "transfer", "effective_date": today, "org_unit_code": "kasai" })).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let roles = c
        .get(&format!(
            "/api/v1/role-assignments?person_id={pid}&current=true"
        ))
        .await
        .json();
    assert_eq!(roles.as_array().unwrap().len(), 0, "{roles}");
    let person = c.get(&format!("/api/v1/people/{pid}")).await.json();
    assert_eq!(person["org_unit_name"], "江戸川区葛西事務所");
    assert!(person.get("birth_date").is_none());
    // Retirement: the live session ends and the account never logs in again.
    let r = event(
        &mut c,
        json!({ "employee_number": "900001", "kind": "retire", "effective_date": today }),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(
        newbie.get("/api/v1/me").await.status,
        StatusCode::UNAUTHORIZED
    );
    let r = newbie
        .post_json(
            "/api/v1/session",
            &json!({ "login": "900001", "password": otp }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(records_with(&app, "personnel.apply").await >= 3);
});

both_engines!(
    k17_3_retired_person_cannot_log_in_from_the_effective_date,
    |app: TestApp| async move {
        let chief = login_with_role(&app, "セキュリティ総括管理者");
        let staff = plain_staff(&app, "企画課");
        let mut c = app.logged_in(&chief).await;
        let tomorrow =
            mamori_server::clock::date_str(app.state.clock().today().next_day().unwrap());
        let r = event(
            &mut c,
            json!({ "employee_number": staff, "kind": "retire", "effective_date": tomorrow }),
        )
        .await;
        assert_eq!(r.json()["status"], "scheduled");
        let mut s = app.logged_in(&staff).await;
        app.state.clock().advance(86_400);
        // Even before the scheduled task runs, the date itself shuts the door.
        assert_eq!(s.get("/api/v1/me").await.status, StatusCode::UNAUTHORIZED);
        let r = app
            .client()
            .post_json(
                "/api/v1/session",
                &json!({ "login": staff, "password": app.passwords[&staff] }),
            )
            .await;
        assert_eq!(r.status, StatusCode::CONFLICT);
    }
);

const CSV_HEADER: &str =
    "職員番号,異動種別,発令日,氏名,氏名カナ,氏名ローマ字,生年月日,雇用形態,所属コード,役職,備考\n";

both_engines!(
    k17_3_csv_import_is_all_or_nothing,
    |app: TestApp| async move {
        let chief = login_with_role(&app, "セキュリティ総括管理者");
        let mut c = app.logged_in(&chief).await;
        let csv = format!(
        "{CSV_HEADER}910001,採用,令和8年4月1日,新宿 一郎,シンジュク イチロウ,Shinjuku Ichiro,1990-01-02,正規,koseki,主事,\n\
         910002,採用,2026-04-01,品川 二郎,シナガワ ジロウ,,1991-02-03,非常勤,no-such-unit,,\n\
         910003,昇進,2026-04-01,,,,,,,,\n"
    );
        let r = c
            .request(
                axum::http::Method::POST,
                "/api/v1/personnel-events/import",
                Some("text/csv"),
                csv.clone().into_bytes(),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
        let rep = r.json();
        assert_eq!(rep["applied"], false);
        let lines: Vec<i64> = rep["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["line"].as_i64().unwrap())
            .collect();
        assert!(lines.contains(&3) && lines.contains(&4), "{rep}");
        assert!(
            c.get("/api/v1/people?q=910001")
                .await
                .json()
                .as_array()
                .unwrap()
                .is_empty(),
            "nothing half-applied"
        );
        // With apply_valid the good row goes in; in Shift_JIS too.
        let (sjis, _, bad) = encoding_rs::SHIFT_JIS.encode(&csv);
        assert!(!bad);
        let r = c
            .request(
                axum::http::Method::POST,
                "/api/v1/personnel-events/import?apply_valid=true",
                Some("text/csv"),
                sjis.into_owned(),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert_eq!(r.json()["encoding"], "shift_jis");
        assert_eq!(
            c.get("/api/v1/people?q=910001")
                .await
                .json()
                .as_array()
                .unwrap()
                .len(),
            1
        );
        assert_eq!(records_with(&app, "personnel.import").await, 1);
    }
);

both_engines!(
    k10_reporting_chain_and_approvers,
    |app: TestApp| async move {
        let staff = plain_staff(&app, "戸籍住民課");
        let mut c = app.logged_in(&staff).await;
        let me = c.get("/api/v1/me").await.json();
        let chain = me["reporting_chain"].as_array().unwrap();
        let roles: Vec<&str> = chain.iter().map(|s| s["role"].as_str().unwrap()).collect();
        assert_eq!(roles, ["security_manager", "security_director", "cio"]);
        assert!(chain.iter().all(|s| s["person_id"].is_number()), "{me}");
        let unit = me["person"]["org_unit_id"].as_i64().unwrap();
        let a = c
            .get(&format!("/api/v1/approver?clause=K13.3&org_unit_id={unit}"))
            .await
            .json();
        assert_eq!(a["role"], "security_chief_manager");
        let a = c
            .get(&format!(
                "/api/v1/approver?clause=K12.1.3&org_unit_id={unit}"
            ))
            .await
            .json();
        assert_eq!(a["role"], "security_manager");
        assert_eq!(a["org_unit_id"], unit);
        let r = c
            .get(&format!("/api/v1/approver?clause=zz&org_unit_id={unit}"))
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(r.json()["field"], "clause");
    }
);

both_engines!(
    managers_act_only_in_their_scope,
    |app: TestApp| async move {
        let mgr = common::manager_of(&app, "戸籍住民課");
        let mut c = app.logged_in(&mgr).await;
        let me = c.get("/api/v1/me").await.json();
        let my_unit = me["person"]["org_unit_id"].as_i64().unwrap();
        let people = c.get("/api/v1/people").await.json();
        assert!(
            people
                .as_array()
                .unwrap()
                .iter()
                .all(|p| p["org_unit_id"].as_i64() == Some(my_unit)),
            "{people}"
        );
        // A person elsewhere is out of scope.
        let other = plain_staff(&app, "総務課");
        let chief = login_with_role(&app, "セキュリティ総括管理者");
        let mut ch = app.logged_in(&chief).await;
        let other_id = ch.get(&format!("/api/v1/people?q={other}")).await.json()[0]["id"]
            .as_i64()
            .unwrap();
        let other_acc = ch.get(&format!("/api/v1/people/{other_id}")).await.json()["account"]["id"]
            .as_i64()
            .unwrap();
        assert_eq!(
            c.get(&format!("/api/v1/people/{other_id}")).await.status,
            StatusCode::FORBIDDEN
        );
        let r = c
            .post_json(
                &format!("/api/v1/accounts/{other_acc}/actions"),
                &json!({ "action": "lock" }),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        // A manager may not hand out ward-wide roles.
        let r = c
            .post_json(
                "/api/v1/role-assignments",
                &json!({ "person_id": other_id, "role": "cio" }),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        // The chief locks the account: its sessions end and login is refused.
        let mut o = app.logged_in(&other).await;
        let r = ch
            .post_json(
                &format!("/api/v1/accounts/{other_acc}/actions"),
                &json!({ "action": "lock" }),
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        assert_eq!(o.get("/api/v1/me").await.status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            app.client()
                .post_json(
                    "/api/v1/session",
                    &json!({ "login": other, "password": app.passwords[&other] })
                )
                .await
                .status,
            StatusCode::CONFLICT
        );
    }
);

both_engines!(
    k11_1_5_force_change_for_the_ward,
    |app: TestApp| async move {
        let director = login_with_role(&app, "セキュリティ統括者");
        let mut c = app.logged_in(&director).await;
        let r = c
            .post_json(
                "/api/v1/accounts/force-password-change",
                &json!({ "reason": "不正アクセスの疑い" }),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert!(r.json()["accounts"].as_i64().unwrap() >= 40);
        let staff = plain_staff(&app, "企画課");
        let mut s = app.logged_in(&staff).await;
        assert_eq!(
            s.get("/api/v1/org-units").await.json()["code"],
            "error.password_change_required"
        );
    }
);

both_engines!(
    k17_2_shared_accounts_need_a_justification,
    |app: TestApp| async move {
        let mgr = login_with_role(&app, "セキュリティ総括管理者");
        let mut c = app.logged_in(&mgr).await;
        let me = c.get("/api/v1/me").await.json();
        let pid = me["person"]["id"].as_i64().unwrap();
        let unit = me["person"]["org_unit_id"].as_i64().unwrap();
        let r = c.post_json("/api/v1/accounts/shared", &json!({ "login": "madoguchi", "justification": "", "owner_person_id": pid, "org_unit_id": unit })).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(r.json()["field"], "justification");
        let r = c.post_json("/api/v1/accounts/shared", &json!({ "login": "madoguchi", "justification": "窓口端末の交代勤務で個人IDを切り替えられないため（システム構築上やむを得ない）", "owner_person_id": pid, "org_unit_id": unit })).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    }
);

both_engines!(
    bad_input_gets_a_clear_4xx_naming_the_field,
    |app: TestApp| async move {
        let chief = login_with_role(&app, "セキュリティ総括管理者");
        let mut c = app.logged_in(&chief).await;
        let cases: Vec<(&str, &str, Option<&str>, Vec<u8>, &str)> = vec![
        ("/api/v1/org-units", "malformed", Some("application/json"), b"{\"code\": ".to_vec(), "body"),
        ("/api/v1/org-units", "wrong type", Some("application/json"), br#"{"code": 1, "name": "x", "kind": "section", "parent_id": 1}"#.to_vec(), "code"),
        ("/api/v1/org-units", "unknown field", Some("application/json"), br#"{"code": "a", "name": "x", "kind": "section", "parent_id": 1, "evil": true}"#.to_vec(), "evil"),
        ("/api/v1/org-units", "bad kind", Some("application/json"), br#"{"code": "a", "name": "x", "kind": "castle", "parent_id": 1}"#.to_vec(), "kind"),
        ("/api/v1/org-units", "overlong", Some("application/json"), format!(r#"{{"code": "a", "name": "{}", "kind": "section", "parent_id": 1}}"#, "長".repeat(101)).into_bytes(), "name"),
        ("/api/v1/org-units", "bad date", Some("application/json"), br#"{"code": "a", "name": "x", "kind": "section", "parent_id": 1, "valid_from": "2026-02-30"}"#.to_vec(), "valid_from"),
        ("/api/v1/org-units", "form content type", Some("application/x-www-form-urlencoded"), b"code=a".to_vec(), "Content-Type"),
        ("/api/v1/personnel-events", "bad number", Some("application/json"), br#"{"employee_number": "12ab", "kind": "hire", "effective_date": "2026-04-01"}"#.to_vec(), "employee_number"),
        ("/api/v1/personnel-events", "duplicate hire", Some("application/json"), format!(r#"{{"employee_number": "{}", "kind": "hire", "effective_date": "2026-04-01", "name_kanji": "a", "name_kana": "ア", "birth_date": "1990-01-01", "employment": "regular", "org_unit_code": "koseki"}}"#, chief).into_bytes(), "employee_number"),
        ("/api/v1/role-assignments", "unknown role", Some("application/json"), br#"{"person_id": 1, "role": "king"}"#.to_vec(), "role"),
    ];
        for (path, what, ct, body, field) in cases {
            let r = c.request(axum::http::Method::POST, path, ct, body).await;
            assert!(
                r.status.is_client_error(),
                "{what}: {} {}",
                r.status,
                r.text()
            );
            assert_eq!(r.content_type(), "application/problem+json", "{what}");
            let p = r.json();
            let fields: Vec<String> = p["errors"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|e| e["field"].as_str().unwrap_or("").to_string())
                        .collect()
                })
                .unwrap_or_default();
            assert!(
                fields.iter().any(|f| f.contains(field))
                    || p["field"].as_str().is_some_and(|f| f.contains(field)),
                "{what}: expected field {field} in {p}"
            );
        }
        // Nothing was created by any of them.
        let units = c.get("/api/v1/org-units").await.json();
        assert!(units.as_array().unwrap().iter().all(|u| u["code"] != "a"));
    }
);

both_engines!(
    every_change_is_a_record_and_records_are_append_only,
    |app: TestApp| async move {
        let chief = login_with_role(&app, "セキュリティ総括管理者");
        let mut c = app.logged_in(&chief).await;
        let root = c
            .get("/api/v1/org-units")
            .await
            .json()
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["kind"] == "ward")
            .unwrap()["id"]
            .as_i64()
            .unwrap();
        let before = records_with(&app, "org_unit.create").await;
        let r = c.post_json("/api/v1/org-units", &json!({ "code": "kikikanri", "name": "危機管理室", "kind": "section", "parent_id": root, "valid_from": "R8.4.1" })).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        assert_eq!(r.json()["valid_from"], "2026-04-01");
        assert_eq!(records_with(&app, "org_unit.create").await, before + 1);
        let recs = c.get("/api/v1/records?action=org_unit.").await.json();
        assert_eq!(recs[0]["action"], "org_unit.create");
        let mut conn = app.state.db().pool().acquire().await.unwrap();
        assert!(sqlx::query("UPDATE records SET result = 'failure'")
            .execute(&mut *conn)
            .await
            .is_err());
        assert!(sqlx::query("DELETE FROM records")
            .execute(&mut *conn)
            .await
            .is_err());
    }
);

both_engines!(
    k12_1_5_idle_sessions_end_and_users_end_their_own,
    |app: TestApp| async move {
        let staff = plain_staff(&app, "企画課");
        let mut a = app.logged_in(&staff).await;
        let mut b = app.logged_in(&staff).await;
        let sessions = a.get("/api/v1/me/sessions").await.json();
        assert_eq!(sessions.as_array().unwrap().len(), 2);
        let other = sessions
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["current"] == false)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(
            a.delete(&format!("/api/v1/me/sessions/{other}"))
                .await
                .status,
            StatusCode::NO_CONTENT
        );
        assert_eq!(b.get("/api/v1/me").await.status, StatusCode::UNAUTHORIZED);
        app.state.clock().advance(16 * 60);
        assert_eq!(a.get("/api/v1/me").await.status, StatusCode::UNAUTHORIZED);
    }
);

both_engines!(
    pages_need_csrf_and_login_works_in_the_browser_flow,
    |app: TestApp| async move {
        let staff = plain_staff(&app, "企画課");
        let mut c = app.client();
        let page = c.get("/login").await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.text().contains("ログイン"));
        // Without the token the form is refused.
        let r = c
            .request(
                axum::http::Method::POST,
                "/login",
                Some("application/x-www-form-urlencoded"),
                format!("login={staff}&password=x").into_bytes(),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        let r = c
            .post_form("/login", &[("login", &staff), ("password", "wrong")])
            .await;
        assert!(
            r.text().contains("ログインできませんでした"),
            "{}",
            r.text()
        );
        let pw = app.passwords[&staff].clone();
        let r = c
            .post_form("/login", &[("login", &staff), ("password", &pw)])
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);
        let me = c.get("/me").await;
        assert_eq!(me.status, StatusCode::OK);
        assert!(me.text().contains("マイページ"));
        assert!(!me.text().contains("生年月日"));
        let r = c.post_form("/logout", &[]).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);
        assert_eq!(c.get("/me").await.status, StatusCode::SEE_OTHER);
    }
);
