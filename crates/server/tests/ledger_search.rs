//! Ledger search and analysis (K16.2.3) and restricted viewing of staff
//! records (K30), on both engines: filters and paging, scope by unit, every
//! search and opening recorded, the analyses counted on known data, viewing
//! reports filed and read, and garbage parameters answered with 4xx.

mod common;

use axum::http::{Method, StatusCode};
use common::{
    login_with_role, manager_of, plain_staff, records_with, scalar, Client, Response, TestApp,
};
use serde_json::{json, Value};
use std::collections::HashMap;

const CHIEF: &str = "セキュリティ総括管理者";

fn find(app: &TestApp, role: &str, unit: &str) -> String {
    app.logins
        .iter()
        .find(|(_, u, roles)| {
            (unit.is_empty() || u == unit) && roles.split('・').any(|r| r == role)
        })
        .map(|(l, _, _)| l.clone())
        .unwrap_or_else(|| panic!("no {role} in {unit}"))
}

/// `person:<id>` of a demo login.
async fn person_of(app: &TestApp, login: &str) -> String {
    let id = scalar(
        app,
        &format!("SELECT person_id FROM accounts WHERE login = '{login}'"),
    )
    .await;
    format!("person:{id}")
}

async fn account_of(app: &TestApp, login: &str) -> String {
    let id = scalar(
        app,
        &format!("SELECT id FROM accounts WHERE login = '{login}'"),
    )
    .await;
    format!("account:{id}")
}

async fn unit(app: &TestApp, code: &str) -> i64 {
    scalar(
        app,
        &format!("SELECT id FROM org_units WHERE code = '{code}'"),
    )
    .await
}

fn rec(id: &str, time: &str, actor: &str, action: &str, asset: &str, result: &str) -> Value {
    json!({ "event_id": id, "time": time, "actor": actor, "action": action, "asset": asset,
            "result": result, "source_ip": "192.0.2.10", "detail": { "screen": "counter" } })
}

/// Posts records as the library system; returns event id → index.
async fn ingest(app: &TestApp, records: Vec<Value>) -> HashMap<String, u64> {
    let tok = mamori_server::tokens::create(&app.state, "library", &["ledger:write".into()])
        .await
        .unwrap()
        .1;
    let mut out = HashMap::new();
    for chunk in records.chunks(500) {
        let req = axum::http::Request::builder()
            .method(Method::POST)
            .uri("/api/v1/ledger/records")
            .header("authorization", format!("Bearer {tok}"))
            .header("content-type", "application/json")
            .body(axum::body::Body::from(
                Value::from(chunk.to_vec()).to_string(),
            ))
            .unwrap();
        use http_body_util::BodyExt;
        use tower::ServiceExt;
        let res = app.router.clone().oneshot(req).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let body: Value =
            serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes()).unwrap();
        assert!(body["rejected"].as_array().unwrap().is_empty(), "{body}");
        for a in body["accepted"].as_array().unwrap() {
            out.insert(
                a["event_id"].as_str().unwrap().to_string(),
                a["index"].as_u64().unwrap(),
            );
        }
    }
    out
}

/// Moves Mamori's own records into the ledger.
async fn settle(app: &TestApp) {
    while app.state.ledger().move_outbox().await.unwrap() {}
}

fn indexes(r: &Response) -> Vec<u64> {
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json()["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["index"].as_u64().unwrap())
        .collect()
}

#[track_caller]
fn assert_problem(r: &Response, status: StatusCode, field: &str) {
    assert_eq!(r.status, status, "{}", r.text());
    assert_eq!(r.content_type(), "application/problem+json");
    assert_eq!(r.json()["field"], field, "{}", r.text());
}

both_engines!(
    k30_2_search_is_scoped_paged_and_recorded,
    |app: TestApp| async move {
        let viewer = find(&app, "指名閲覧者", "戸籍住民課");
        let ks = person_of(&app, &plain_staff(&app, "戸籍住民課")).await;
        let kl = person_of(&app, &find(&app, "情報化推進リーダー", "戸籍住民課")).await;
        let kk = person_of(&app, &plain_staff(&app, "企画課")).await;
        let ix = ingest(
            &app,
            vec![
                rec(
                    "s1",
                    "2026-11-30T09:00:00+09:00",
                    &ks,
                    "patron.read",
                    "patron/1",
                    "success",
                ),
                rec(
                    "s2",
                    "2026-11-30T10:00:00+09:00",
                    &ks,
                    "patron.update",
                    "patron/2",
                    "failure",
                ),
                rec(
                    "s3",
                    "2026-12-01T09:00:00+09:00",
                    &kl,
                    "patron.read",
                    "patron/1",
                    "success",
                ),
                rec(
                    "s4",
                    "2026-12-01T11:00:00+09:00",
                    &kk,
                    "patron.read",
                    "patron/1",
                    "success",
                ),
                rec(
                    "s5",
                    "2026-12-02T11:00:00+09:00",
                    "staff:100101",
                    "patron.read",
                    "patron/1",
                    "success",
                ),
            ],
        )
        .await;
        let i = |e: &str| ix[e];
        let mut v = app.logged_in(&viewer).await;
        let before = records_with(&app, "ledger.search").await;
        let cases: Vec<(String, Vec<u64>)> = vec![
            ("system=library".into(), vec![i("s3"), i("s2"), i("s1")]),
            (format!("system=library&actor={ks}"), vec![i("s2"), i("s1")]),
            ("system=library&action=patron.u".into(), vec![i("s2")]),
            ("system=library&result=failure".into(), vec![i("s2")]),
            ("asset=patron%2F2".into(), vec![i("s2")]),
            ("system=library&from=2026-12-01".into(), vec![i("s3")]),
            (
                "system=library&to=2026-11-30".into(),
                vec![i("s2"), i("s1")],
            ),
            (
                "system=library&from=2026-11-30T09:30&to=2026-11-30T23:00".into(),
                vec![i("s2")],
            ),
            (
                "system=library&from=%E4%BB%A4%E5%92%8C8%E5%B9%B412%E6%9C%881%E6%97%A5".into(),
                vec![i("s3")],
            ),
            // Another unit's staff and actors that are no person: nothing.
            (format!("actor={kk}"), vec![]),
            ("actor=staff%3A100101".into(), vec![]),
        ];
        for (q, want) in &cases {
            let r = v.get(&format!("/api/v1/ledger/search?{q}")).await;
            assert_eq!(&indexes(&r), want, "{q}");
        }
        // Paging by cursor, newest first.
        let r = v.get("/api/v1/ledger/search?system=library&limit=2").await;
        assert_eq!(indexes(&r), vec![i("s3"), i("s2")]);
        let next = r.json()["next_before"].as_u64().expect("a next page");
        assert_eq!(next, i("s2"));
        let r = v
            .get(&format!(
                "/api/v1/ledger/search?system=library&limit=2&before={next}"
            ))
            .await;
        assert_eq!(indexes(&r), vec![i("s1")]);
        assert!(r.json()["next_before"].is_null());
        // Every search is a record, with its filters and never the content.
        assert_eq!(
            records_with(&app, "ledger.search").await,
            before + cases.len() as i64 + 2
        );
        let detail: (String, String) = {
            let mut conn = app.state.db().pool().acquire().await.unwrap();
            sqlx::query_as("SELECT detail, clause FROM records WHERE action = 'ledger.search' ORDER BY id DESC LIMIT 1")
                .fetch_one(&mut *conn)
                .await
                .unwrap()
        };
        assert!(detail.0.contains("\"system\":\"library\""), "{}", detail.0);
        assert!(!detail.0.contains("patron"), "no content: {}", detail.0);
        assert_eq!(detail.1, "K30.2");

        // Opening: the viewer opens their unit's records only.
        let r = v.get(&format!("/api/v1/ledger/search/{}", i("s2"))).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let got = r.json();
        assert_eq!(got["actor"], ks.as_str());
        assert_eq!(got["source_ip"], "192.0.2.10");
        assert_eq!(got["detail"]["screen"], "counter");
        for other in ["s4", "s5"] {
            let r = v.get(&format!("/api/v1/ledger/search/{}", i(other))).await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{other}: {}", r.text());
        }
        let r = v.get("/api/v1/ledger/search/999999").await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        assert_eq!(
            scalar(
                &app,
                "SELECT COUNT(*) FROM records WHERE action = 'ledger.view' AND result = 'success'"
            )
            .await,
            1
        );
        assert_eq!(
            scalar(
                &app,
                "SELECT COUNT(*) FROM records WHERE action = 'ledger.view' AND result = 'denied'"
            )
            .await,
            3
        );
        assert_eq!(
            scalar(
                &app,
                &format!(
                    "SELECT COUNT(*) FROM records WHERE action = 'ledger.view' AND target = 'ledger:{}'",
                    i("s2")
                )
            )
            .await,
            1
        );

        // Nobody else searches or opens: staff, the manager, the chief, the auditor.
        for login in [
            plain_staff(&app, "戸籍住民課"),
            manager_of(&app, "戸籍住民課"),
            login_with_role(&app, CHIEF),
            login_with_role(&app, "外部監査人"),
        ] {
            let mut c = app.logged_in(&login).await;
            let r = c.get("/api/v1/ledger/search?system=library").await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{login}");
            let r = c.get(&format!("/api/v1/ledger/search/{}", i("s2"))).await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{login}");
            let r = c.get(&format!("/ledger/search/{}", i("s2"))).await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{login}");
        }

        // The searches and openings reach the ledger itself.
        settle(&app).await;
        assert_eq!(
            scalar(&app, "SELECT COUNT(*) FROM ledger_index WHERE system = 'mamori' AND action = 'ledger.view'").await,
            4
        );
        assert!(
            scalar(&app, "SELECT COUNT(*) FROM ledger_index WHERE system = 'mamori' AND action = 'ledger.search'").await
                >= cases.len() as i64
        );

        // The pages say the same.
        let html = v
            .get("/ledger/search?system=library&actor=&asset=&action=&result=&from=&to=")
            .await;
        assert_eq!(html.status, StatusCode::OK, "{}", html.text());
        let html = html.text();
        for e in ["s1", "s2", "s3"] {
            assert!(
                html.contains(&format!("href=\"/ledger/search/{}\"", i(e))),
                "{e}"
            );
        }
        assert!(!html.contains(&format!("href=\"/ledger/search/{}\"", i("s4"))));
        let html = v.get(&format!("/ledger/search/{}", i("s1"))).await;
        assert_eq!(html.status, StatusCode::OK);
        assert!(html.text().contains("192.0.2.10"));
        assert!(html.text().contains("令和8年11月30日 09:00:00"), "和暦");
        let r = v.get(&format!("/ledger/search/{}", i("s4"))).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        // Opening the form without criteria runs no search.
        let n = records_with(&app, "ledger.search").await;
        assert_eq!(v.get("/ledger/search").await.status, StatusCode::OK);
        assert_eq!(records_with(&app, "ledger.search").await, n);
    }
);

/// 12 records of one 戸籍住民課 person in the week of Monday 2026-11-30: 5 off-hours.
fn week(actor: &str, prefix: &str) -> Vec<Value> {
    [
        ("2026-11-30T07:59:59+09:00", true),
        ("2026-11-30T08:30:00+09:00", false),
        ("2026-11-30T12:00:00+09:00", false),
        ("2026-11-30T18:14:59+09:00", false),
        ("2026-11-30T18:15:00+09:00", true),
        ("2026-11-30T23:00:00+09:00", true),
        ("2026-12-01T09:00:00+09:00", false),
        ("2026-12-01T10:00:00+09:00", false),
        ("2026-12-01T11:00:00+09:00", false),
        ("2026-12-01T17:00:00+09:00", false),
        ("2026-12-05T10:00:00+09:00", true),
        ("2026-12-06T15:00:00+09:00", true),
    ]
    .iter()
    .enumerate()
    .map(|(n, (t, _))| {
        rec(
            &format!("{prefix}{n}"),
            t,
            actor,
            "patron.read",
            "patron/1",
            "success",
        )
    })
    .collect()
}

async fn analysis(c: &mut Client, q: &str) -> Value {
    let r = c.get(&format!("/api/v1/ledger/analysis?{q}")).await;
    assert_eq!(r.status, StatusCode::OK, "{q}: {}", r.text());
    r.json()
}

fn counts(a: &Value) -> (i64, i64) {
    (a["total"].as_i64().unwrap(), a["matched"].as_i64().unwrap())
}

both_engines!(k16_2_3_analysis_on_known_data, |app: TestApp| async move {
    let ks_login = plain_staff(&app, "戸籍住民課");
    let kk_login = plain_staff(&app, "企画課");
    let ks = person_of(&app, &ks_login).await;
    let kl = person_of(&app, &find(&app, "情報化推進リーダー", "戸籍住民課")).await;
    let kk = person_of(&app, &kk_login).await;
    let mut data = week(&ks, "w");
    // Two weekend records of a 企画課 person.
    data.push(rec(
        "k1",
        "2026-12-05T11:00:00+09:00",
        &kk,
        "patron.read",
        "patron/1",
        "success",
    ));
    data.push(rec(
        "k2",
        "2026-12-06T11:00:00+09:00",
        &kk,
        "patron.read",
        "patron/1",
        "success",
    ));
    // Bulk on Friday 2026-11-20: 101 records in 101 s, and 100 in 100 s.
    for n in 0..101 {
        data.push(rec(
            &format!("b{n}"),
            &format!("2026-11-20T10:{:02}:{:02}+09:00", n / 60, n % 60),
            &ks,
            "patron.read",
            &format!("patron/{n}"),
            "success",
        ));
    }
    for n in 0..100 {
        data.push(rec(
            &format!("c{n}"),
            &format!("2026-11-20T13:{:02}:{:02}+09:00", n / 60, n % 60),
            &kk,
            "patron.read",
            &format!("patron/{n}"),
            "success",
        ));
    }
    // Outside one's unit, on 2026-11-18.
    let kikaku_ka = unit(&app, "kikaku-ka").await;
    let koseki = unit(&app, "koseki").await;
    let kumin = unit(&app, "kumin").await;
    let kk_account = account_of(&app, &kk_login).await;
    for (n, (actor, asset)) in [
        (&ks, kk.clone()),                      // another unit's person: flagged
        (&ks, kl.clone()),                      // same unit: not
        (&ks, format!("org_unit:{kikaku_ka}")), // another unit: flagged
        (&ks, kk_account.clone()),              // another unit's account: flagged
        (&ks, format!("org_unit:{koseki}")),    // own unit: not
        (&ks, ks.clone()),                      // oneself: not
        (&ks, "patron/9".to_string()),          // not a unit's: not examined
        (&kk, format!("org_unit:{kumin}")),     // 区民部 is not 企画課's: flagged
    ]
    .into_iter()
    .enumerate()
    {
        data.push(rec(
            &format!("o{n}"),
            "2026-11-18T10:00:00+09:00",
            actor,
            "record.read",
            &asset,
            "success",
        ));
    }
    ingest(&app, data).await;

    let chief = login_with_role(&app, CHIEF);
    let mut c = app.logged_in(&chief).await;
    let week_q = "system=library&from=2026-11-30&to=2026-12-06";

    // Off-hours: 5 of 12 for 戸籍住民課, 7 of 14 ward-wide.
    let a = analysis(&mut c, &format!("kind=off_hours&{week_q}")).await;
    assert_eq!(counts(&a), (14, 7), "{a}");
    assert_eq!(a["groups"][0]["actor"], ks.as_str());
    assert_eq!(a["groups"][0]["count"], 5);
    assert_eq!(a["groups"][1]["actor"], kk.as_str());
    assert_eq!(a["groups"][1]["count"], 2);
    assert_eq!(a["ward_wide"], true);
    let per_day: Vec<i64> = a["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["count"].as_i64().unwrap())
        .collect();
    assert_eq!(per_day, vec![3, 0, 0, 0, 0, 2, 2], "off-hours per day");
    let mut m = app.logged_in(&manager_of(&app, "戸籍住民課")).await;
    let a = analysis(&mut m, &format!("kind=off_hours&{week_q}")).await;
    assert_eq!(
        counts(&a),
        (12, 5),
        "the manager counts their unit's staff only"
    );
    assert_eq!(a["ward_wide"], false);
    assert_eq!(a["groups"].as_array().unwrap().len(), 1);
    let mut m2 = app.logged_in(&manager_of(&app, "企画課")).await;
    let a = analysis(&mut m2, &format!("kind=off_hours&{week_q}")).await;
    assert_eq!(counts(&a), (2, 2));

    // Hourly histogram of Monday sums to Monday's records.
    let a = analysis(
        &mut m,
        "kind=hourly&system=library&from=2026-11-30&to=2026-11-30",
    )
    .await;
    let b = a["buckets"].as_array().unwrap();
    assert_eq!(b.len(), 24);
    assert_eq!(b[0]["start"], "2026-11-30T00:00:00+09:00");
    let by_hour: Vec<i64> = b.iter().map(|x| x["count"].as_i64().unwrap()).collect();
    assert_eq!(by_hour.iter().sum::<i64>(), 6);
    assert_eq!(a["total"], 6);
    for (h, n) in [(7, 1), (8, 1), (12, 1), (18, 2), (23, 1)] {
        assert_eq!(by_hour[h], n, "hour {h}");
    }
    let a = analysis(&mut m, &format!("kind=daily&{week_q}")).await;
    let days: Vec<i64> = a["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["count"].as_i64().unwrap())
        .collect();
    assert_eq!(days, vec![6, 4, 0, 0, 0, 1, 1]);

    // Bulk: only the 101st record within 10 minutes is flagged.
    let a = analysis(
        &mut c,
        "kind=bulk&system=library&from=2026-11-20&to=2026-11-20",
    )
    .await;
    assert_eq!(counts(&a), (201, 1), "{a}");
    assert_eq!(a["groups"].as_array().unwrap().len(), 1);
    assert_eq!(a["groups"][0]["actor"], ks.as_str());
    assert_eq!(a["parameters"]["more_than_records"], 100);

    // Outside one's unit.
    let a = analysis(&mut c, "kind=outside_unit&from=2026-11-18&to=2026-11-18").await;
    assert_eq!(counts(&a), (8, 4), "{a}");
    assert_eq!(a["groups"][0]["actor"], ks.as_str());
    assert_eq!(a["groups"][0]["count"], 3);
    assert_eq!(a["groups"][0]["reached"][0]["org_unit_name"], "企画課");
    assert_eq!(a["groups"][1]["actor"], kk.as_str());
    assert_eq!(a["groups"][1]["reached"][0]["org_unit_name"], "区民部");
    let a = analysis(&mut m, "kind=outside_unit&from=2026-11-18&to=2026-11-18").await;
    assert_eq!(counts(&a), (7, 3));

    // Failed logins, by account and by source address.
    for (login, ip) in [
        (&kk_login, "10.0.0.7"),
        (&kk_login, "10.0.0.7"),
        (&"nobody".to_string(), "10.0.0.8"),
    ] {
        let mut x = app.client();
        x.ip = format!("{ip}:1234").parse().unwrap();
        let r = x
            .post_json(
                "/api/v1/session",
                &json!({ "login": login, "password": "wrong-one" }),
            )
            .await;
        assert_eq!(r.status, StatusCode::CONFLICT);
    }
    // An admin action: the chief changes a setting.
    let r = c
        .put_json(
            "/api/v1/settings",
            &json!({ "key": "ledger.max_viewers_per_unit", "value": 3 }),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
    settle(&app).await;
    let a = analysis(&mut c, "kind=failed_logins").await;
    assert_eq!(a["matched"], 3, "{a}");
    assert_eq!(a["groups"][0]["actor"], kk_account.as_str());
    assert_eq!(a["groups"][0]["count"], 2);
    assert_eq!(a["groups"][1]["actor"], "anonymous");
    assert_eq!(a["sources"][0]["source"], "10.0.0.7");
    assert_eq!(a["sources"][0]["count"], 2);
    assert_eq!(a["sources"][1]["source"], "10.0.0.8");
    let a = analysis(&mut m2, "kind=failed_logins").await;
    assert_eq!(
        a["matched"], 2,
        "the 企画課 manager sees their staff's account: {a}"
    );
    let a = analysis(&mut m, "kind=failed_logins").await;
    assert_eq!(a["matched"], 0);
    let a = analysis(&mut c, "kind=admin_actions").await;
    let chief_p = person_of(&app, &chief).await;
    let g = a["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["action"] == "settings.change")
        .unwrap_or_else(|| panic!("{a}"));
    assert_eq!(g["actor"], chief_p.as_str());
    assert_eq!(g["count"], 1);
    assert!(a["groups"].as_array().unwrap().iter().all(|g| {
        let act = g["action"].as_str().unwrap();
        [
            "account.",
            "role.",
            "password.force_change",
            "settings.",
            "org_unit.",
        ]
        .iter()
        .any(|p| act.starts_with(p))
    }));
    // Each analysis is recorded as monitoring evidence.
    assert!(records_with(&app, "ledger.analyze").await >= 12);

    // The auditor and the 統括者 analyse ward-wide; the CIO and staff may not.
    for (login, status) in [
        (login_with_role(&app, "外部監査人"), StatusCode::OK),
        (login_with_role(&app, "セキュリティ統括者"), StatusCode::OK),
        (
            login_with_role(&app, "最高情報統括責任者"),
            StatusCode::FORBIDDEN,
        ),
        (plain_staff(&app, "戸籍住民課"), StatusCode::FORBIDDEN),
        (
            find(&app, "指名閲覧者", "戸籍住民課"),
            StatusCode::FORBIDDEN,
        ),
    ] {
        let mut x = app.logged_in(&login).await;
        let r = x
            .get(&format!("/api/v1/ledger/analysis?kind=off_hours&{week_q}"))
            .await;
        assert_eq!(r.status, status, "{login}");
        if status == StatusCode::OK {
            assert_eq!(counts(&r.json()), (14, 7));
        }
    }

    // The page draws the chart as SVG without inline style.
    for kind in [
        "daily",
        "hourly",
        "off_hours",
        "bulk",
        "outside_unit",
        "failed_logins",
        "admin_actions",
    ] {
        for lang in ["ja", "en"] {
            let path = format!("/ledger/analysis?kind={kind}&from=2026-11-18&to=2026-12-06");
            let r = c
                .request_with_cookie(Method::GET, &path, &format!("mamori_lang={lang}"))
                .await;
            assert_eq!(r.status, StatusCode::OK, "{kind} {lang}: {}", r.text());
            let html = r.text();
            assert!(!html.contains("style="), "{kind}: inline style");
            assert!(!html.contains("<script"), "{kind}: script");
            assert_no_keys(&html);
            if !["bulk", "outside_unit"].contains(&kind) {
                assert!(html.contains("<svg id=\"analysis-chart\""), "{kind}");
                assert!(html.contains("<rect class=\"bar\""), "{kind}");
            }
            if lang == "ja" {
                assert!(html.contains("令和8年"), "{kind}: 和暦");
            }
        }
    }
    let html = c
        .get("/ledger/analysis?kind=off_hours&system=library&from=2026-11-30&to=2026-12-06")
        .await
        .text();
    assert!(html.contains("該当: 7 件。"), "{}", html);
});

/// No catalog key of these pages shows.
#[track_caller]
fn assert_no_keys(html: &str) {
    for p in [
        "ledger.field.",
        "ledger.search.",
        "ledger.analysis.",
        "ledger.viewing.",
        "ledger.record.",
        "ledger.result.",
        "nav.",
        "pages.",
    ] {
        assert!(!html.contains(p), "catalog key {p} shows");
    }
}

both_engines!(
    k30_3_viewing_reports_go_to_the_manager,
    |app: TestApp| async move {
        let viewer = find(&app, "指名閲覧者", "戸籍住民課");
        let ks = person_of(&app, &plain_staff(&app, "戸籍住民課")).await;
        let ix = ingest(
            &app,
            vec![rec(
                "v1",
                "2026-11-30T09:00:00+09:00",
                &ks,
                "patron.read",
                "patron/1",
                "success",
            )],
        )
        .await;
        let koseki = unit(&app, "koseki").await;
        let mut v = app.logged_in(&viewer).await;
        v.get("/api/v1/ledger/search?system=library").await;
        v.get("/api/v1/ledger/search?actor=x").await;
        let r = v.get(&format!("/api/v1/ledger/search/{}", ix["v1"])).await;
        assert_eq!(r.status, StatusCode::OK);

        // Wrong reports are refused field by field; nothing is written.
        let kikaku = unit(&app, "kikaku-ka").await;
        for (body, field) in [
            (json!({}), "summary"),
            (json!({ "summary": "  " }), "summary"),
            (json!({ "summary": "x".repeat(2001) }), "summary"),
            (
                json!({ "summary": "ok", "org_unit_id": kikaku }),
                "org_unit_id",
            ),
            (
                json!({ "summary": "ok", "period_from": "きのう" }),
                "period_from",
            ),
            (
                json!({ "summary": "ok", "period_to": "2999-01-01" }),
                "period_to",
            ),
            (
                json!({ "summary": "ok", "period_from": "2026-12-02", "period_to": "2026-12-01" }),
                "period_to",
            ),
            (json!({ "summary": "ok", "extra": 1 }), ""),
            (json!({ "summary": "a\u{0}b" }), "summary"),
        ] {
            let r = v.post_json("/api/v1/ledger/viewing-reports", &body).await;
            assert_eq!(
                r.status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{body}: {}",
                r.text()
            );
            assert_eq!(r.content_type(), "application/problem+json");
            assert!(
                r.json()["field"].as_str().unwrap().contains(field),
                "{body}: {}",
                r.text()
            );
        }
        assert_eq!(
            scalar(&app, "SELECT COUNT(*) FROM viewing_reports").await,
            0
        );

        let summary = "課長の指示により、窓口端末の利用状況を確認した。";
        let r = v
            .post_json(
                "/api/v1/ledger/viewing-reports",
                &json!({ "summary": summary }),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        let report = r.json();
        assert_eq!(report["org_unit_id"], koseki);
        assert_eq!(
            report["searches"], 3,
            "two searches and one opening: {report}"
        );
        assert_eq!(report["summary"], summary);
        assert_eq!(records_with(&app, "ledger.viewing_report").await, 1);
        let detail = scalar(
            &app,
            "SELECT COUNT(*) FROM records WHERE action = 'ledger.viewing_report' AND clause = 'K30.3' AND detail LIKE '%summary_sha256%'",
        )
        .await;
        assert_eq!(detail, 1);
        // The table refuses changes.
        {
            let mut conn = app.state.db().pool().acquire().await.unwrap();
            assert!(sqlx::query("UPDATE viewing_reports SET summary = 'x'")
                .execute(&mut *conn)
                .await
                .is_err());
        }

        // The page form: an empty summary shows next to the field; a good one redirects.
        let r = v
            .post_form(
                "/ledger/viewing-reports",
                &[("summary", ""), ("org_unit_id", &koseki.to_string())],
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(r.text().contains("id=\"r-summary-error\""), "{}", r.text());
        let r = v
            .post_form(
                "/ledger/viewing-reports",
                &[
                    ("summary", "二回目の閲覧（確認のみ）"),
                    ("org_unit_id", &koseki.to_string()),
                    ("period_from", ""),
                    ("period_to", ""),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
        let html = v.get("/ledger/search?done=reported").await.text();
        assert!(html.contains("id=\"viewing-filed\""));
        let r = v
            .post_form("/ledger/viewing-reports", &[("summary", "x")])
            .await;
        assert_eq!(
            r.status,
            StatusCode::SEE_OTHER,
            "the one unit is the default"
        );
        let mut bad = v.clone();
        let r = bad
            .request(
                Method::POST,
                "/ledger/viewing-reports",
                Some("application/x-www-form-urlencoded"),
                b"summary=x&csrf=wrong".to_vec(),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "CSRF");

        // The manager of 戸籍住民課 sees them; another unit's manager does not.
        let mut m = app.logged_in(&manager_of(&app, "戸籍住民課")).await;
        let r = m.get("/api/v1/ledger/viewing-reports").await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let got = r.json();
        assert_eq!(got["reports"].as_array().unwrap().len(), 3);
        assert_eq!(got["reports"][2]["summary"], summary);
        assert_eq!(got["viewers"][0]["org_unit_id"], koseki);
        assert_eq!(got["viewers"][0]["viewers"], 1);
        assert_eq!(got["max_viewers_per_unit"], 2);
        let html = m.get("/ledger/viewing-reports").await;
        assert_eq!(html.status, StatusCode::OK);
        assert!(html.text().contains(summary));
        assert!(!html.text().contains("id=\"viewers-over\""));
        let mut other = app.logged_in(&manager_of(&app, "企画課")).await;
        let got = other.get("/api/v1/ledger/viewing-reports").await.json();
        assert!(got["reports"].as_array().unwrap().is_empty(), "{got}");
        assert!(!other
            .get("/ledger/viewing-reports")
            .await
            .text()
            .contains(summary));
        let mut chief = app.logged_in(&login_with_role(&app, CHIEF)).await;
        let got = chief.get("/api/v1/ledger/viewing-reports").await.json();
        assert_eq!(got["reports"].as_array().unwrap().len(), 3);
        let r = v.get("/api/v1/ledger/viewing-reports").await;
        assert_eq!(
            r.status,
            StatusCode::FORBIDDEN,
            "a viewer does not read reports"
        );

        // A second viewer in 戸籍住民課 and a limit of 1: the pages warn.
        let second = person_of(&app, &plain_staff(&app, "戸籍住民課")).await;
        let second: i64 = second.trim_start_matches("person:").parse().unwrap();
        let r = m
            .post_json(
                "/api/v1/role-assignments",
                &json!({ "person_id": second, "role": "designated_viewer", "org_unit_id": koseki }),
            )
            .await;
        assert!(r.status.is_success(), "{}", r.text());
        let r = chief
            .put_json(
                "/api/v1/settings",
                &json!({ "key": "ledger.max_viewers_per_unit", "value": 1 }),
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        let html = m.get("/ledger/viewing-reports").await.text();
        assert!(html.contains("id=\"viewers-over\""), "{html}");
        let html = v.get("/ledger/search").await.text();
        assert!(html.contains("id=\"viewers-over\""));
        assert!(html.contains("2 人"));
        let settings = chief.get("/settings").await.text();
        assert!(settings.contains("所属ごとの指名閲覧者の上限"));
    }
);

both_engines!(garbage_parameters_give_4xx, |app: TestApp| async move {
    let mut v = app.logged_in(&find(&app, "指名閲覧者", "戸籍住民課")).await;
    let long = "x".repeat(300);
    for (path, field) in [
        ("/api/v1/ledger/search?from=yesterday", "from"),
        ("/api/v1/ledger/search?to=2026-13-45", "to"),
        ("/api/v1/ledger/search?from=R99999999999.1.1", "from"),
        ("/api/v1/ledger/search?from=2026-12-01&to=2026-11-01", "to"),
        (&format!("/api/v1/ledger/search?actor={long}"), "actor"),
        ("/api/v1/ledger/search?result=maybe", "result"),
        ("/api/v1/ledger/search?before=abc", "before"),
        ("/api/v1/ledger/search?before=-1", "before"),
        ("/api/v1/ledger/search?before=99999999999", "before"),
        ("/api/v1/ledger/search?limit=0", "limit"),
        ("/api/v1/ledger/search?limit=100000", "limit"),
        ("/api/v1/ledger/search?unknown=1", "query"),
        ("/api/v1/ledger/search?actor=a&actor=b", "query"),
        ("/api/v1/ledger/search/abc", "index"),
        ("/api/v1/ledger/search/-1", "index"),
        ("/api/v1/ledger/search/99999999999999999999", "index"),
    ] {
        let r = v.get(path).await;
        assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, field);
    }
    // Control characters are dropped, not sent to the database.
    for path in [
        "/api/v1/ledger/search?actor=%00%00",
        "/api/v1/ledger/search?asset=%00x%01&system=%ff%fe&action=%25%25",
        "/api/v1/ledger/search?from=%00",
    ] {
        let r = v.get(path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text());
    }
    let mut c = app.logged_in(&login_with_role(&app, CHIEF)).await;
    for (path, field) in [
        ("/api/v1/ledger/analysis?kind=nope", "kind"),
        (
            "/api/v1/ledger/analysis?kind=hourly&from=2026-01-01&to=2026-12-31",
            "to",
        ),
        (
            "/api/v1/ledger/analysis?from=2020-01-01&to=2026-12-31",
            "to",
        ),
        ("/api/v1/ledger/analysis?from=%ff%fe", "from"),
        ("/api/v1/ledger/analysis?before=1", "query"),
        (
            "/api/v1/ledger/analysis?to=1900-01-01&from=2000-01-01",
            "to",
        ),
    ] {
        let r = c.get(path).await;
        assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, field);
    }
    for path in [
        "/api/v1/ledger/analysis?kind=off_hours&from=1970-01-01&to=1970-01-02",
        "/api/v1/ledger/analysis?kind=daily&from=9999-12-01",
        "/api/v1/ledger/analysis?kind=bulk&actor=%00",
    ] {
        let r = c.get(path).await;
        assert!(
            !r.status.is_server_error(),
            "{path}: {} {}",
            r.status,
            r.text()
        );
    }
    // Pages show the errors at their fields.
    let r = v.get("/ledger/search?from=yesterday&to=").await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().contains("id=\"s-from-error\""));
    let r = v.get("/ledger/search?nope=1").await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = v.get("/ledger/search/abc").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = c.get("/ledger/analysis?kind=nope").await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().contains("id=\"a-kind-error\""));
    let r = c.get("/ledger/analysis?from=%00%ff&to=x").await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    for path in [
        "/ledger/analysis?kind=hourly&from=8000-12-31",
        "/ledger/analysis?kind=daily&from=1970-01-01",
        "/ledger/analysis?kind=off_hours&to=1970-01-02",
    ] {
        let r = c.get(path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
    }
    let r = c.get("/ledger/analysis?kind=daily&from=9999-12-01").await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = c.get("/ledger/analysis?zzz=1").await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
});

both_engines!(pages_in_japanese_and_english, |app: TestApp| async move {
    // (login, path, Japanese title, English title)
    let viewer = find(&app, "指名閲覧者", "戸籍住民課");
    let manager = manager_of(&app, "戸籍住民課");
    let chief = login_with_role(&app, CHIEF);
    let pages = [
        (
            &viewer,
            "/ledger/search",
            "アクセス記録の閲覧",
            "View access records",
        ),
        (
            &viewer,
            "/ledger/search?system=library",
            "アクセス記録の閲覧",
            "View access records",
        ),
        (
            &manager,
            "/ledger/viewing-reports",
            "閲覧の実施報告",
            "Viewing reports",
        ),
        (
            &manager,
            "/ledger/analysis",
            "アクセス記録の分析",
            "Access analysis",
        ),
        (
            &chief,
            "/ledger/viewing-reports",
            "閲覧の実施報告",
            "Viewing reports",
        ),
        (
            &chief,
            "/ledger/analysis",
            "アクセス記録の分析",
            "Access analysis",
        ),
    ];
    for (login, path, ja, en) in pages {
        let mut c = app.logged_in(login).await;
        for (lang, title) in [("ja", ja), ("en", en)] {
            let r = c
                .request_with_cookie(Method::GET, path, &format!("mamori_lang={lang}"))
                .await;
            assert_eq!(r.status, StatusCode::OK, "{path} {lang}: {}", r.text());
            let html = r.text();
            assert!(html.contains(&format!("<html lang=\"{lang}\">")));
            assert!(html.contains(&format!("<title>{title}")), "{path} {lang}");
            assert!(!html.contains("style="));
            assert_no_keys(&html);
        }
    }
    // Navigation follows the permission.
    // Template values are HTML-escaped: `/` shows as `&#x2f;`.
    let nav = |html: &str, href: &str| {
        html.contains(&format!("<li><a href=\"{}\">", href.replace('/', "&#x2f;")))
    };
    let html = app.logged_in(&viewer).await.get("/me").await.text();
    assert!(nav(&html, "/ledger/search") && !nav(&html, "/ledger/analysis"));
    let html = app.logged_in(&manager).await.get("/me").await.text();
    assert!(
        !nav(&html, "/ledger/search")
            && nav(&html, "/ledger/analysis")
            && nav(&html, "/ledger/viewing-reports")
    );
    let html = app
        .logged_in(&plain_staff(&app, "企画課"))
        .await
        .get("/me")
        .await
        .text();
    assert!(
        !nav(&html, "/ledger/search")
            && !nav(&html, "/ledger/analysis")
            && !nav(&html, "/ledger/viewing-reports")
    );
    let html = app
        .logged_in(&manager_of(&app, "企画課"))
        .await
        .get("/ledger/analysis")
        .await
        .text();
    assert!(html.contains("企画課"), "the unit scope is named");
});
