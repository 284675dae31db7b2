//! External audits (K32.2): the セキュリティ統括者 orders an audit, creates
//! time-limited read-only auditor accounts, records findings; owners follow
//! them up to closure. Both engines.

mod common;

use axum::http::StatusCode;
use common::{login_with_role, manager_of, records_with, Client, Engine, TestApp};
use serde_json::{json, Value};

/// Sessions that outlive a move of the ward clock by days, so a test can
/// watch one session cross the audit's last day.
async fn app_long(engine: Engine) -> Option<TestApp> {
    common::app_with(engine, |c| {
        c.session.idle_secs = 60 * 86_400;
        c.session.secret_idle_secs = 60 * 86_400;
        c.session.absolute_secs = 60 * 86_400;
        c.session.reauth_secs = 60 * 86_400;
    })
    .await
}

macro_rules! both {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                if let Some(app) = app_long(Engine::Sqlite).await {
                    ($body)(app).await;
                }
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(app) = app_long(Engine::Postgres).await {
                    ($body)(app).await;
                }
            }
        }
    };
}

fn day(app: &TestApp, offset: i64) -> String {
    let d = app.state.clock().today() + time::Duration::days(offset);
    mamori_server::clock::date_str(d)
}

fn wareki(app: &TestApp, offset: i64) -> String {
    mamori_policy::wareki::format_date_ja(app.state.clock().today() + time::Duration::days(offset))
}

async fn director(app: &TestApp) -> Client {
    app.logged_in(&login_with_role(app, "セキュリティ統括者"))
        .await
}

/// Orders an audit from `from` to `to` days from today; returns its id.
async fn order(app: &TestApp, d: &mut Client, from: i64, to: i64) -> i64 {
    let r = d
        .post_json(
            "/api/v1/audits",
            &json!({ "title": "令和8年度 情報セキュリティ外部監査", "scope": "住民記録システム、図書館システムと管理体制",
                     "auditor_org": "株式会社監査法人みなと", "starts_on": day(app, from), "ends_on": day(app, to) }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    r.json()["id"].as_i64().unwrap()
}

/// Creates an auditor account and logs it in with a new password.
async fn auditor(app: &TestApp, d: &mut Client, audit: i64) -> (Client, String, String) {
    let r = d
        .post_json(
            &format!("/api/v1/audits/{audit}/auditors"),
            &json!({ "name": "港 監査子", "name_kana": "みなと かんさこ" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let a = r.json();
    let login = a["login"].as_str().unwrap().to_string();
    let otp = a["one_time_password"].as_str().unwrap().to_string();
    let mut c = app.client();
    let r = c
        .post_json(
            "/api/v1/session",
            &json!({ "login": login, "password": otp }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let pw = "Sazanami-Yuki-Tsuru-83";
    let r = c
        .put_json(
            "/api/v1/me/password",
            &json!({ "current_password": otp, "new_password": pw }),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
    (c, login, pw.to_string())
}

fn field(r: &common::Response) -> String {
    r.json()["field"].as_str().unwrap_or_default().to_string()
}

both!(
    k32_2_auditor_reads_only_within_the_audit,
    |app: TestApp| async move {
        let mut d = director(&app).await;
        let audit = order(&app, &mut d, 0, 3).await;
        assert_eq!(records_with(&app, "audit.order").await, 1);
        let (mut a, login, pw) = auditor(&app, &mut d, audit).await;
        assert_eq!(records_with(&app, "audit.auditor_create").await, 1);

        // Inside the period the auditor reads: the audit, its page, records.
        let r = a.get(&format!("/api/v1/audits/{audit}")).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert_eq!(r.json()["auditors"][0]["login"], login.as_str());
        assert_eq!(r.json()["auditors"][0]["active"], true);
        assert_eq!(a.get("/audits").await.status, StatusCode::OK);
        assert_eq!(a.get("/api/v1/records").await.status, StatusCode::OK);
        // … and changes nothing.
        let r = a
            .post_json(
                &format!("/api/v1/audits/{audit}/findings"),
                &json!({ "title": "x" }),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        let r = a
            .post_json(
                "/api/v1/audits",
                &json!({ "title": "x", "scope": "x", "auditor_org": "x", "starts_on": day(&app, 0), "ends_on": day(&app, 1) }),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        let r = a.post_form("/audits", &[("title", "x")]).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);

        // The day after the audit's last day, the same session is refused on
        // every route, page and API, with a message naming the last day.
        app.state.clock().advance(4 * 86_400);
        let r = a.get("/audits").await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
        let last_day = wareki(&app, -1);
        assert!(r.text().contains("監査期間は"), "{}", r.text());
        assert!(r.text().contains(&last_day), "{last_day}: {}", r.text());
        let r = a.get("/api/v1/audits").await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        assert_eq!(r.json()["code"], "error.auditor_expired");
        assert!(r.json()["detail"].as_str().unwrap().contains(&last_day));
        let r = a.get("/api/v1/records").await;
        assert_eq!(r.json()["code"], "error.auditor_expired");
        let r = a.get("/").await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        // Logging in again is refused the same way, and is a record.
        let before = records_with(&app, "auth.login").await;
        let mut again = app.client();
        let r = again
            .post_json(
                "/api/v1/session",
                &json!({ "login": login, "password": pw }),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
        assert_eq!(r.json()["code"], "error.auditor_expired");
        assert_eq!(records_with(&app, "auth.login").await, before + 1);
        // The director sees the account as no longer usable.
        let r = d.get(&format!("/api/v1/audits/{audit}")).await;
        assert_eq!(r.json()["phase"], "ended");
        assert_eq!(r.json()["auditors"][0]["active"], false);
        // No auditor account can be added to an ended audit.
        let r = d
            .post_json(
                &format!("/api/v1/audits/{audit}/auditors"),
                &json!({ "name": "遅 来人" }),
            )
            .await;
        assert_eq!(r.status, StatusCode::CONFLICT);
        assert_eq!(r.json()["code"], "audit.ended");
        // Extending the period brings the auditor back; closing ends it at once.
        let r = d
            .put_json(
                &format!("/api/v1/audits/{audit}"),
                &json!({ "title": "令和8年度 情報セキュリティ外部監査", "scope": "延長", "auditor_org": "株式会社監査法人みなと",
                         "starts_on": day(&app, -4), "ends_on": day(&app, 2) }),
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
        assert_eq!(a.get("/api/v1/audits").await.status, StatusCode::OK);
        let r = d
            .post_json(&format!("/api/v1/audits/{audit}/close"), &json!({}))
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
        let r = a.get("/api/v1/audits").await;
        assert_eq!(r.json()["code"], "error.auditor_audit_closed");
        assert_eq!(records_with(&app, "audit.close").await, 1);
    }
);

both!(
    k32_2_auditor_of_a_future_audit_waits_for_its_first_day,
    |app: TestApp| async move {
        let mut d = director(&app).await;
        let audit = order(&app, &mut d, 2, 5).await;
        let r = d
            .post_json(
                &format!("/api/v1/audits/{audit}/auditors"),
                &json!({ "name": "早 着人" }),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
        let a = r.json();
        let mut c = app.client();
        let r = c
            .post_json(
                "/api/v1/session",
                &json!({ "login": a["login"], "password": a["one_time_password"] }),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
        assert_eq!(r.json()["code"], "error.auditor_not_yet");
        assert!(r.json()["detail"]
            .as_str()
            .unwrap()
            .contains(&wareki(&app, 2)));
        // On the first day the account works.
        app.state.clock().advance(2 * 86_400);
        let r = c
            .post_json(
                "/api/v1/session",
                &json!({ "login": a["login"], "password": a["one_time_password"] }),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    }
);

both!(
    k32_2_findings_follow_up_to_closure,
    |app: TestApp| async move {
        let mut d = director(&app).await;
        let audit = order(&app, &mut d, 0, 10).await;
        let owner = manager_of(&app, "戸籍住民課");
        let r = d
            .post_json(
                &format!("/api/v1/audits/{audit}/findings"),
                &json!({ "title": "退職者のアカウントが残存", "description": "退職後も有効なアカウントが2件",
                         "severity": "high", "clauses": "K17.3, 基準第11条第1項第2号", "owner": owner,
                         "due_on": day(&app, 1) }),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        let id = r.json()["id"].as_i64().unwrap();
        assert_eq!(records_with(&app, "audit.finding_create").await, 1);

        // The owner sees it (and only their own); others do not.
        let mut o = app.logged_in(&owner).await;
        let r = o.get("/api/v1/audit-findings").await;
        assert_eq!(r.status, StatusCode::OK);
        let list = r.json()["findings"].as_array().unwrap().clone();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0]["clauses"], json!(["K17.3", "K11.1.2"]));
        assert_eq!(list[0]["overdue"], false);
        let other = manager_of(&app, "企画課");
        let mut x = app.logged_in(&other).await;
        assert_eq!(
            x.get("/api/v1/audit-findings").await.json()["findings"],
            json!([])
        );
        assert_eq!(
            x.get(&format!("/api/v1/audit-findings/{id}")).await.status,
            StatusCode::NOT_FOUND
        );
        let r = x
            .post_json(
                &format!("/api/v1/audit-findings/{id}/entries"),
                &json!({ "kind": "progress", "note": "x" }),
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);

        // Past its due date, open, it is overdue: on the list and the audits page.
        app.state.clock().advance(2 * 86_400);
        let r = d.get("/api/v1/audit-findings?status=overdue").await;
        assert_eq!(r.json()["findings"][0]["id"], id);
        assert_eq!(r.json()["findings"][0]["overdue"], true);
        let page = d.get("/audits").await.text();
        assert!(page.contains("退職者のアカウントが残存"), "{page}");
        assert_eq!(
            d.get(&format!("/api/v1/audits/{audit}")).await.json()["overdue_findings"],
            1
        );

        // Follow-up: progress, then close (a note is required), by the owner.
        let url = format!("/api/v1/audit-findings/{id}/entries");
        let r = o
            .post_json(
                &url,
                &json!({ "kind": "progress", "note": "1件を無効化した" }),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        assert_eq!(r.json()["status"], "in_progress");
        let r = o
            .post_json(&url, &json!({ "kind": "close", "note": "" }))
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(field(&r), "note");
        let r = o
            .post_json(&url, &json!({ "kind": "finish", "note": "x" }))
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(field(&r), "kind");
        let r = o
            .post_json(
                &url,
                &json!({ "kind": "close", "note": "残る1件も無効化し、退職時の手順を改めた" }),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        assert_eq!(r.json()["status"], "closed");
        assert_eq!(r.json()["overdue"], false);
        assert_eq!(r.json()["entries"].as_array().unwrap().len(), 2);
        let r = o
            .post_json(&url, &json!({ "kind": "close", "note": "again" }))
            .await;
        assert_eq!(r.status, StatusCode::CONFLICT);
        // Only the 統括者 reopens.
        let r = o
            .post_json(&url, &json!({ "kind": "reopen", "note": "やはり" }))
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        let r = d
            .post_json(
                &url,
                &json!({ "kind": "reopen", "note": "検証で1件残存を確認" }),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        assert_eq!(r.json()["status"], "open");
        assert_eq!(records_with(&app, "audit.finding_close").await, 1);
        assert_eq!(records_with(&app, "audit.finding_reopen").await, 1);
        assert_eq!(records_with(&app, "audit.finding_progress").await, 1);

        // The pages: the finding with its follow-up, and the form through the UI.
        let page = o.get(&format!("/findings/{id}")).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.text().contains("検証で1件残存を確認"));
        let r = o
            .post_form(
                &format!("/findings/{id}/entries"),
                &[("kind", "close"), ("note", "")],
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(r.text().contains("入力してください"), "{}", r.text());
        let r = o
            .post_form(
                &format!("/findings/{id}/entries"),
                &[("kind", "close"), ("note", "全件無効化を確認")],
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
        assert!(o
            .get("/findings")
            .await
            .text()
            .contains("退職者のアカウントが残存"));
        // Every page in English too.
        for (path, want) in [
            ("/audits".to_string(), "External audits"),
            (format!("/audits/{audit}"), "Auditor accounts"),
            ("/findings".to_string(), "Audit findings"),
            (format!("/findings/{id}"), "Follow-up"),
        ] {
            let r = d
                .request_with_cookie(axum::http::Method::GET, &path, "mamori_lang=en")
                .await;
            assert_eq!(r.status, StatusCode::OK, "{path}");
            assert!(r.text().contains(want), "{path}: {}", r.text());
        }
    }
);

both!(
    k32_2_bad_input_names_the_field_never_a_5xx,
    |app: TestApp| async move {
        let mut d = director(&app).await;
        let base = json!({ "title": "監査", "scope": "範囲", "auditor_org": "監査法人",
                           "starts_on": day(&app, 0), "ends_on": day(&app, 5) });
        let with = |k: &str, v: Value| {
            let mut b = base.clone();
            b[k] = v;
            b
        };
        for (body, want) in [
            (with("starts_on", json!("2026-13-45")), "starts_on"),
            (with("ends_on", json!("来週")), "ends_on"),
            (with("ends_on", json!(day(&app, -1))), "ends_on"),
            (with("title", json!("")), "title"),
            (with("extra", json!(1)), "body"),
            (with("starts_on", json!(12)), "starts_on"),
        ] {
            let r = d.post_json("/api/v1/audits", &body).await;
            assert_eq!(
                r.status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{body}: {}",
                r.text()
            );
            let f = field(&r);
            assert!(
                f == want || (want == "body" && f.contains("extra")),
                "{body}: {f}"
            );
        }
        // 和暦 dates are understood.
        let r = d
            .post_json("/api/v1/audits", &with("ends_on", json!(wareki(&app, 5))))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        let audit = r.json()["id"].as_i64().unwrap();

        let owner = manager_of(&app, "戸籍住民課");
        let fbase = json!({ "title": "指摘", "severity": "medium", "clauses": "K32.2", "owner": owner, "due_on": day(&app, 30) });
        let fwith = |k: &str, v: Value| {
            let mut b = fbase.clone();
            b[k] = v;
            b
        };
        let url = format!("/api/v1/audits/{audit}/findings");
        for (body, want, code) in [
            (
                fwith("severity", json!("catastrophic")),
                "severity",
                "finding.bad_severity",
            ),
            (
                fwith("due_on", json!("yesterday")),
                "due_on",
                "field.bad_date",
            ),
            (
                fwith("due_on", json!(day(&app, -1))),
                "due_on",
                "finding.due_in_past",
            ),
            (
                fwith("due_on", json!("2026-02-30")),
                "due_on",
                "field.bad_date",
            ),
            (
                fwith("clauses", json!("Z99")),
                "clauses",
                "finding.bad_clause",
            ),
            (fwith("clauses", json!("")), "clauses", "field.required"),
            (
                fwith("owner", json!("no-such-person")),
                "owner",
                "finding.no_such_owner",
            ),
        ] {
            let r = d.post_json(&url, &body).await;
            assert_eq!(
                r.status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{body}: {}",
                r.text()
            );
            assert_eq!(field(&r), want, "{body}");
            assert_eq!(r.json()["errors"][0]["code"], code, "{body}");
        }
        assert_eq!(records_with(&app, "audit.finding_create").await, 0);
        // Unknown ids are 404s, not 500s.
        assert_eq!(
            d.post_json("/api/v1/audits/999/findings", &fbase)
                .await
                .status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            d.get("/api/v1/audits/abc").await.status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            d.get("/api/v1/audit-findings?status=late").await.status,
            StatusCode::UNPROCESSABLE_ENTITY
        );
        assert_eq!(
            d.get("/api/v1/audit-findings?severity=x").await.status,
            StatusCode::UNPROCESSABLE_ENTITY
        );

        // The page form re-renders with the message and what was typed.
        let r = d
            .post_form(
                "/audits",
                &[
                    ("title", "入力を保持する監査"),
                    ("scope", "範囲"),
                    ("auditor_org", "監査法人"),
                    ("starts_on", "2026-99-01"),
                    ("ends_on", ""),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        let t = r.text();
        assert!(t.contains("入力を保持する監査"), "{t}");
        assert!(
            t.contains("2026-99-01") && t.contains("読み取れません"),
            "{t}"
        );
        let r = d
            .post_form(
                &format!("/audits/{audit}/findings"),
                &[
                    ("title", "重要度不明"),
                    ("severity", "catastrophic"),
                    ("clauses", "K17.3"),
                    ("owner", &owner),
                    ("due_on", &day(&app, 3)),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            r.text().contains("重要度不明") && r.text().contains("catastrophic"),
            "{}",
            r.text()
        );
        // A closed audit takes no more findings.
        d.post_json(&format!("/api/v1/audits/{audit}/close"), &json!({}))
            .await;
        let r = d.post_json(&url, &fbase).await;
        assert_eq!(r.status, StatusCode::CONFLICT);
        assert_eq!(r.json()["code"], "audit.closed");
    }
);
