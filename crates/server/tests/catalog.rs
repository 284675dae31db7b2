//! The policy catalog (SPEC §3.9), its versions and reviews (Y10, K34),
//! through the HTTP API and the pages, on both engines.

mod common;

use axum::http::{Method, StatusCode};
use common::{login_with_role, plain_staff, records_with, scalar, Client, Response, TestApp};
use serde_json::{json, Value};

const DIRECTOR: &str = "セキュリティ統括者";
const CIO: &str = "最高情報統括責任者";
const AUDITOR: &str = "外部監査人";

fn today(app: &TestApp) -> String {
    mamori_server::clock::date_str(app.state.clock().today())
}

fn assert_problem(r: &Response, status: StatusCode, field: &str) {
    assert_eq!(r.status, status, "{}", r.text());
    assert!(
        r.content_type().starts_with("application/problem+json"),
        "{}",
        r.content_type()
    );
    if !field.is_empty() {
        assert_eq!(r.json()["field"], field, "{}", r.text());
    }
}

/// Every clause id listed in a catalog answer.
fn listed_ids(v: &Value) -> Vec<String> {
    let mut ids = Vec::new();
    for d in v["documents"].as_array().into_iter().flatten() {
        for a in d["articles"].as_array().into_iter().flatten() {
            ids.push(a["article"]["id"].as_str().unwrap_or_default().to_string());
            for p in a["parts"].as_array().into_iter().flatten() {
                ids.push(p["id"].as_str().unwrap_or_default().to_string());
            }
        }
    }
    ids
}

async fn get_in(c: &mut Client, lang: &str, path: &str) -> Response {
    if lang == "ja" {
        c.get(path).await
    } else {
        c.request_with_cookie(Method::GET, path, &format!("mamori_lang={lang}"))
            .await
    }
}

both_engines!(
    catalog_lists_every_clause_with_text_gist_and_controls,
    |app: TestApp| async move {
        let staff = plain_staff(&app, "企画課");
        let mut c = app.logged_in(&staff).await;
        let r = c.get("/api/v1/catalog").await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let v = r.json();
        let cat = mamori_policy::catalog::catalog();
        let ids = listed_ids(&v);
        assert_eq!(ids.len(), cat.clauses.len());
        assert_eq!(v["clause_count"], cat.clauses.len());
        let expected: Vec<String> = cat.clauses.iter().map(|c| c.id.to_string()).collect();
        assert_eq!(ids, expected, "policy order, nothing missing");
        let k17_3 = v["documents"][2]["articles"]
            .as_array()
            .and_then(|a| a.iter().find(|a| a["article"]["id"] == "K17"))
            .and_then(|a| a["parts"].as_array())
            .and_then(|p| p.iter().find(|p| p["id"] == "K17.3"))
            .cloned()
            .unwrap_or_default();
        assert!(k17_3["text_ja"]
            .as_str()
            .unwrap_or_default()
            .contains("退職に合わせ"));
        assert!(!k17_3["gist_en"].as_str().unwrap_or_default().is_empty());
        assert_eq!(k17_3["citation_ja"], "基準第17条第3項");
        let kinds: Vec<&str> = k17_3["controls"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["kind"].as_str())
            .collect();
        assert!(
            kinds.contains(&"checked") && kinds.contains(&"enforced"),
            "{kinds:?}"
        );
        // Today the last 付則 (平成19年4月1日) is in force.
        assert_eq!(v["version"]["label"], "平成19年4月1日施行");
        assert_eq!(v["later_versions"], json!([]));
        // Notes: preface preamble and the 別表.
        let notes: Vec<&str> = v["notes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|n| n["key"].as_str())
            .collect();
        assert!(notes.contains(&"P.preamble") && notes.contains(&"Y.appendix1"));
        // Auditors read the catalog too.
        let auditor = login_with_role(&app, AUDITOR);
        let mut a = app.logged_in(&auditor).await;
        assert_eq!(a.get("/api/v1/catalog").await.status, StatusCode::OK);
        // Anonymous: no.
        let mut anon = app.client();
        assert_eq!(
            anon.get("/api/v1/catalog").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
);

both_engines!(
    the_version_in_force_on_any_date,
    |app: TestApp| async move {
        let staff = plain_staff(&app, "企画課");
        let mut c = app.logged_in(&staff).await;
        let v = c.get("/api/v1/catalog?date=2005-12-24").await.json();
        assert_eq!(v["version"]["effective"], "2005-12-22");
        assert_eq!(v["version"]["documents"], json!(["K"]));
        let later: Vec<&str> = v["later_versions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|l| l["effective"].as_str())
            .collect();
        assert_eq!(later, ["2005-12-26", "2006-04-01", "2007-04-01"]);
        // 和暦 works too.
        let v = c
            .get("/api/v1/catalog?date=%E5%B9%B3%E6%88%9014%E5%B9%B44%E6%9C%881%E6%97%A5")
            .await
            .json();
        assert_eq!(v["date"], "2002-04-01");
        assert_eq!(v["version"]["effective"], "2002-04-01");
        // Before the policy: no version, and it says so.
        let v = c.get("/api/v1/catalog?date=2001-01-01").await.json();
        assert_eq!(v["version"], Value::Null);
        // Malformed dates are a 422 naming `date`, in the API and on the page.
        for bad in [
            "2026-13-01",
            "yesterday",
            "2026-02-30",
            "%E5%B9%B3%E6%88%9032%E5%B9%B41%E6%9C%881%E6%97%A5",
            "%ZZ",
            "2026-04-01%00",
        ] {
            let r = c.get(&format!("/api/v1/catalog?date={bad}")).await;
            assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "date");
            let r = c.get(&format!("/api/v1/policy/versions?date={bad}")).await;
            assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "date");
        }
        let r = c.get("/catalog?date=yesterday").await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        let html = r.text();
        assert!(html.contains("id=\"date-error\""), "{html}");
        assert!(html.contains("value=\"yesterday\""), "what was typed stays");
        for bad in ["yesterday", "%ZZ"] {
            let r = c.get(&format!("/policy/versions?date={bad}")).await;
            assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
            assert!(r.text().contains("id=\"date-error\""));
        }
        // The versions list: six from the 付則, today's is the last.
        let v = c.get("/api/v1/policy/versions").await.json();
        assert_eq!(v["versions"].as_array().map(Vec::len), Some(6));
        assert_eq!(v["in_force"]["effective"], "2007-04-01");
        assert!(v["versions"]
            .as_array()
            .into_iter()
            .flatten()
            .all(|v| v["source"] == "fusoku"));
    }
);

both_engines!(one_clause_and_unknown_ids, |app: TestApp| async move {
    let staff = plain_staff(&app, "企画課");
    let mut c = app.logged_in(&staff).await;
    let r = c.get("/api/v1/catalog/clauses/K27.1.2").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let d = r.json();
    assert_eq!(d["clause"]["citation_ja"], "基準第27条第1項第2号");
    let children: Vec<&str> = d["children"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["id"].as_str())
        .collect();
    assert_eq!(
        children,
        ["K27.1.2.a", "K27.1.2.b", "K27.1.2.c", "K27.1.2.d"]
    );
    let ancestors: Vec<&str> = d["ancestors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["id"].as_str())
        .collect();
    assert_eq!(ancestors, ["K27", "K27.1"]);
    assert!(d["controls"].as_array().is_some_and(|c| !c.is_empty()));
    // A sub-item is served by its item's control.
    let d = c.get("/api/v1/catalog/clauses/K27.1.2.a").await.json();
    assert_eq!(d["controls"], json!([]));
    assert!(d["inherited"].as_array().is_some_and(|c| !c.is_empty()));
    assert_eq!(d["clause"]["covered"], true);
    for bad in ["K99", "K18.1", "X1", "k17", "K17..3", "%E5%9F%BA%E6%BA%96"] {
        let r = c.get(&format!("/api/v1/catalog/clauses/{bad}")).await;
        assert_problem(&r, StatusCode::NOT_FOUND, "");
        let r = c.get(&format!("/catalog/{bad}")).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "/catalog/{bad}");
    }
    let r = c.get("/catalog/K27.1.2.a").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.text().contains("異常なアクセスが継続しているとき"));
});

both_engines!(
    the_control_mapping_is_complete_and_filterable,
    |app: TestApp| async move {
        let auditor = login_with_role(&app, AUDITOR);
        let mut c = app.logged_in(&auditor).await;
        let v = c.get("/api/v1/catalog/controls").await.json();
        let sum: u64 = v["counts"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|k| k["count"].as_u64())
            .sum();
        assert_eq!(Some(sum), v["total"].as_u64());
        assert_eq!(v["covered"], v["clauses"], "every clause has a control");
        for kind in ["enforced", "checked", "procedural", "not_applicable"] {
            let v = c
                .get(&format!("/api/v1/catalog/controls?kind={kind}"))
                .await
                .json();
            let list = v["controls"].as_array().cloned().unwrap_or_default();
            assert!(!list.is_empty(), "{kind}");
            assert!(list.iter().all(|k| k["kind"] == kind), "{kind}");
        }
        let r = c.get("/api/v1/catalog/controls?kind=magic").await;
        assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "kind");
        let r = c.get("/catalog/controls?kind=magic").await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(r.text().contains("id=\"kind-error\""));
        let r = c.get("/catalog/controls").await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.text().contains("ctl.k17.3.departed-accounts"));
    }
);

fn review(reviewed_on: &str, outcome: &str, label: &str, effective: &str) -> Value {
    json!({
        "reviewed_on": reviewed_on,
        "summary": "パスワードの有効期間の規定を見直した。",
        "clauses": "K17.4, K34",
        "outcome": outcome,
        "version_label": label,
        "effective_on": effective,
    })
}

both_engines!(
    y10_k34_a_review_records_who_when_what_and_the_version,
    |app: TestApp| async move {
        let director = login_with_role(&app, DIRECTOR);
        let mut d = app.logged_in(&director).await;
        let today = today(&app);
        // Reviewed, nothing to change.
        let r = d
            .post_json(
                "/api/v1/policy/reviews",
                &json!({ "reviewed_on": today, "summary": "監査結果を踏まえ確認した。改正不要。", "outcome": "unchanged" }),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        assert_eq!(r.json()["version"], Value::Null);
        assert_eq!(r.json()["reviewer_role"], "security_director");
        // Amended: a version effective 2030-04-01.
        let r = d
            .post_json(
                "/api/v1/policy/reviews",
                &review(&today, "amended", "令和12年4月1日改正", "2030-04-01"),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        let v = r.json();
        assert_eq!(v["clauses"], json!(["K17.4", "K34"]));
        assert_eq!(v["version"]["label"], "令和12年4月1日改正");
        assert_eq!(v["version"]["effective_ja"], "令和12年4月1日");
        assert_eq!(v["version"]["documents"], json!(["K"]));
        assert!(v["reviewer"].as_str().is_some_and(|s| !s.is_empty()));
        // Each review is a record in the ledger.
        assert_eq!(records_with(&app, "policy_review.record").await, 2);
        // The catalog shows the version in force on each side of the date.
        let staff = plain_staff(&app, "企画課");
        let mut s = app.logged_in(&staff).await;
        let before = s.get("/api/v1/catalog?date=2030-03-31").await.json();
        assert_eq!(before["version"]["label"], "平成19年4月1日施行");
        assert_eq!(before["later_versions"][0]["label"], "令和12年4月1日改正");
        let after = s.get("/api/v1/catalog?date=2030-04-01").await.json();
        assert_eq!(after["version"]["label"], "令和12年4月1日改正");
        assert_eq!(after["version"]["source"], "review");
        let versions = s
            .get("/api/v1/policy/versions?date=2031-01-01")
            .await
            .json();
        assert_eq!(versions["versions"].as_array().map(Vec::len), Some(7));
        assert_eq!(versions["in_force"]["label"], "令和12年4月1日改正");
        // Everyone reads the reviews; the clause page names them.
        let reviews = s.get("/api/v1/policy/reviews").await.json();
        assert_eq!(reviews.as_array().map(Vec::len), Some(2));
        let k17_4 = s.get("/api/v1/catalog/clauses/K17.4").await.json();
        assert_eq!(k17_4["reviews"].as_array().map(Vec::len), Some(1));
        // The CIO may record too; staff, managers and auditors may not.
        let cio = login_with_role(&app, CIO);
        let mut ci = app.logged_in(&cio).await;
        let r = ci
            .post_json(
                "/api/v1/policy/reviews",
                &json!({ "reviewed_on": today, "summary": "年次の見直し", "outcome": "unchanged" }),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        assert_eq!(r.json()["reviewer_role"], "cio");
        for who in [
            staff.clone(),
            login_with_role(&app, AUDITOR),
            login_with_role(&app, "セキュリティ総括管理者"),
        ] {
            let mut c = app.logged_in(&who).await;
            let r = c
                .post_json(
                    "/api/v1/policy/reviews",
                    &json!({ "reviewed_on": today, "summary": "x", "outcome": "unchanged" }),
                )
                .await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{who}");
        }
        assert_eq!(scalar(&app, "SELECT COUNT(*) FROM policy_reviews").await, 3);
        // Kept as recorded: the tables refuse changes.
        let mut conn = app.state.db().pool().acquire().await.unwrap();
        assert!(sqlx::query("UPDATE policy_reviews SET summary = 'x'")
            .execute(&mut *conn)
            .await
            .is_err());
        assert!(sqlx::query("DELETE FROM policy_versions")
            .execute(&mut *conn)
            .await
            .is_err());
    }
);

both_engines!(
    bad_reviews_name_the_field_and_write_nothing,
    |app: TestApp| async move {
        let director = login_with_role(&app, DIRECTOR);
        let mut d = app.logged_in(&director).await;
        let today = today(&app);
        let cases: Vec<(Value, &str)> = vec![
            (
                json!({ "reviewed_on": today, "summary": "   ", "outcome": "unchanged" }),
                "summary",
            ),
            (
                json!({ "reviewed_on": today, "summary": "x".repeat(4001), "outcome": "unchanged" }),
                "summary",
            ),
            (
                json!({ "reviewed_on": "", "summary": "見直し", "outcome": "unchanged" }),
                "reviewed_on",
            ),
            (
                json!({ "reviewed_on": "2026-02-30", "summary": "見直し", "outcome": "unchanged" }),
                "reviewed_on",
            ),
            (
                json!({ "reviewed_on": "2999-01-01", "summary": "見直し", "outcome": "unchanged" }),
                "reviewed_on",
            ),
            (
                json!({ "reviewed_on": today, "summary": "見直し", "clauses": "K17.4 K99", "outcome": "unchanged" }),
                "clauses",
            ),
            (
                json!({ "reviewed_on": today, "summary": "見直し", "outcome": "maybe" }),
                "outcome",
            ),
            (
                json!({ "reviewed_on": today, "summary": "見直し", "outcome": "amended", "effective_on": "2030-01-01" }),
                "version_label",
            ),
            (
                json!({ "reviewed_on": today, "summary": "見直し", "outcome": "amended", "version_label": "平成19年4月1日施行", "effective_on": "2030-01-01" }),
                "version_label",
            ),
            (
                json!({ "reviewed_on": today, "summary": "見直し", "outcome": "amended", "version_label": "新版", "effective_on": "someday" }),
                "effective_on",
            ),
            (
                json!({ "reviewed_on": today, "summary": "見直し", "outcome": "amended", "version_label": "新版" }),
                "effective_on",
            ),
        ];
        for (body, field) in cases {
            let r = d.post_json("/api/v1/policy/reviews", &body).await;
            assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, field);
        }
        // Unknown fields and non-JSON are refused, never a 5xx.
        let r = d
            .post_json(
                "/api/v1/policy/reviews",
                &json!({ "reviewed_on": today, "summary": "x", "outcome": "unchanged", "approved": true }),
            )
            .await;
        assert!(r.status.is_client_error(), "{}", r.status);
        let r = d
            .request(
                Method::POST,
                "/api/v1/policy/reviews",
                Some("application/json"),
                b"[1, 2".to_vec(),
            )
            .await;
        assert!(r.status.is_client_error(), "{}", r.status);
        // A label taken by an earlier review.
        let ok = review(&today, "amended", "令和9年改正", "2027-04-01");
        assert_eq!(
            d.post_json("/api/v1/policy/reviews", &ok).await.status,
            StatusCode::CREATED
        );
        let r = d.post_json("/api/v1/policy/reviews", &ok).await;
        assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "version_label");
        assert_eq!(scalar(&app, "SELECT COUNT(*) FROM policy_reviews").await, 1);
        assert_eq!(
            scalar(&app, "SELECT COUNT(*) FROM policy_versions").await,
            1
        );
        assert_eq!(records_with(&app, "policy_review.record").await, 1);
        // The form re-renders in Japanese with what was typed.
        let r = d
            .post_form(
                "/policy/reviews",
                &[
                    ("reviewed_on", today.as_str()),
                    ("summary", ""),
                    ("clauses", "K17.4 K999"),
                    ("outcome", "unchanged"),
                    ("version_label", ""),
                    ("effective_on", ""),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        let html = r.text();
        assert!(html.contains("id=\"review-summary-error\""), "{html}");
        assert!(html.contains("id=\"review-clauses-error\""));
        assert!(html.contains("K999"), "the typed clauses stay");
        assert!(html.contains("入力してください"));
        assert_eq!(scalar(&app, "SELECT COUNT(*) FROM policy_reviews").await, 1);
        // And records through the form.
        let r = d
            .post_form(
                "/policy/reviews",
                &[
                    ("reviewed_on", today.as_str()),
                    ("summary", "情報化推進本部の議を経て確認した。"),
                    ("clauses", "Y10"),
                    ("outcome", "unchanged"),
                    ("version_label", ""),
                    ("effective_on", ""),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
        let r = d.get("/policy/versions?done=recorded").await;
        assert!(r.text().contains("情報化推進本部の議を経て確認した。"));
    }
);

both_engines!(
    catalog_pages_in_japanese_and_english,
    |app: TestApp| async move {
        for who in [
            plain_staff(&app, "企画課"),
            login_with_role(&app, AUDITOR),
            login_with_role(&app, DIRECTOR),
        ] {
            let mut c = app.logged_in(&who).await;
            for (lang, word, nav) in [
                ("ja", "基準第17条第3項", "ポリシーカタログ"),
                ("en", "Control mapping", "Policy catalog"),
            ] {
                let r = get_in(&mut c, lang, "/catalog").await;
                assert_eq!(r.status, StatusCode::OK, "{who} {lang}");
                assert!(r.text().contains(word), "{who} {lang}: {word}");
                assert!(r.text().contains(nav), "{who} {lang}: the nav link");
                for path in [
                    "/catalog/controls",
                    "/catalog/K3.1.1.a",
                    "/catalog/P2",
                    "/policy/versions",
                ] {
                    let r = get_in(&mut c, lang, path).await;
                    assert_eq!(r.status, StatusCode::OK, "{who} {lang} {path}");
                }
            }
            let form = c
                .get("/policy/versions")
                .await
                .text()
                .contains("action=\"/policy/reviews\"");
            assert_eq!(
                form,
                who == login_with_role(&app, DIRECTOR),
                "{who}: the form only for reviewers"
            );
        }
    }
);
