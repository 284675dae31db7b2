//! Incidents and failures through HTTP, on both engines: reports walking
//! the chain of K10.1–3 with deadlines and escalation, e-mail through a
//! real SMTP listener (and the outbox surviving a mail server that is
//! down), the K27 response, failure records and recurrence (K16.4, K10.4),
//! failure procedures (K26), views, exports and bad input.

mod common;

use axum::http::{Method, StatusCode};
use common::smtp::SmtpSink;
use common::{
    login_with_role, manager_of, multipart, plain_staff, records_with, scalar, Client, TestApp,
};
use serde_json::{json, Value};
use std::future::Future;

const DOMAIN: &str = mamori_server::demo::DEMO_MAIL_DOMAIN;

fn mail_of(login: &str) -> String {
    format!("{login}@{DOMAIN}")
}

/// A fresh app whose mail goes to an SMTP sink on loopback.
async fn with_mail<F, Fut>(engine: common::Engine, f: F)
where
    F: FnOnce(TestApp, SmtpSink) -> Fut,
    Fut: Future<Output = ()>,
{
    let sink = SmtpSink::start().await;
    let port = sink.addr.port();
    let app = common::app_with(engine, |c| {
        c.mail.smtp_host = "127.0.0.1".into();
        c.mail.smtp_port = port;
        c.mail.from = "mamori@city.edogawa.example".into();
    })
    .await;
    if let Some(app) = app {
        f(app, sink).await;
    }
}

macro_rules! both_engines_mail {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                with_mail(common::Engine::Sqlite, $body).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                with_mail(common::Engine::Postgres, $body).await;
            }
        }
    };
}

fn report_body(title: &str) -> Value {
    json!({
        "kind": "failure",
        "title": title,
        "description": "窓口端末で住民票が印刷できない。",
        "noticed_at": "2026-01-05 09:30",
        "system_code": "library",
    })
}

async fn report(c: &mut Client, body: &Value) -> i64 {
    let r = c.post_json("/api/v1/incidents", body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    r.json()["id"].as_i64().unwrap()
}

async fn incident(c: &mut Client, id: i64) -> Value {
    let r = c.get(&format!("/api/v1/incidents/{id}")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json()
}

fn step(v: &Value, seq: i64) -> Value {
    v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["seq"] == seq)
        .cloned()
        .unwrap_or(Value::Null)
}

async fn act(
    c: &mut Client,
    id: i64,
    step_id: i64,
    action: &str,
    comment: &str,
) -> common::Response {
    c.post_json(
        &format!("/api/v1/incidents/{id}/steps/{step_id}"),
        &json!({ "action": action, "comment": comment }),
    )
    .await
}

async fn person_id(app: &TestApp, login: &str) -> i64 {
    scalar(
        app,
        &format!("SELECT person_id FROM accounts WHERE login = '{login}'"),
    )
    .await
}

async fn send_mail(app: &TestApp, at: i64) -> mamori_server::mail::SendReport {
    mamori_server::mail::send_due(&app.state, at).await.unwrap()
}

both_engines_mail!(
    k10_report_walks_the_chain_with_timed_steps_and_mail,
    |app: TestApp, sink: SmtpSink| async move {
        let reporter = plain_staff(&app, "戸籍住民課");
        let manager = manager_of(&app, "戸籍住民課");
        let director = login_with_role(&app, "セキュリティ統括者");
        let cio = login_with_role(&app, "最高情報統括責任者");
        let mut r = app.logged_in(&reporter).await;
        let id = report(&mut r, &report_body("住民票が印刷できない")).await;

        // K10.1: the reporter's security manager holds the first step, with
        // a deadline from the settings (60 minutes by default).
        let v = incident(&mut r, id).await;
        assert_eq!(v["status"], "at_manager");
        let s1 = step(&v, 1);
        assert_eq!(
            s1["person_id"].as_i64().unwrap(),
            person_id(&app, &manager).await
        );
        assert_eq!(
            s1["due_at"].as_i64().unwrap() - s1["opened_at"].as_i64().unwrap(),
            3600
        );
        assert!(step(&v, 2).is_null());

        // The manager is told in the app and, after the commit, by e-mail.
        let now = app.state.clock().unix();
        assert_eq!(send_mail(&app, now).await.sent, 1);
        let mails = sink.to(&mail_of(&manager));
        assert_eq!(mails.len(), 1, "{:?}", sink.mails());
        assert!(
            mails[0].body().contains(&format!("/incidents/{id}")),
            "{}",
            mails[0].body()
        );
        assert!(
            !mails[0].body().contains("窓口端末で"),
            "no report content in mail"
        );
        assert_eq!(mails[0].from, "mamori@city.edogawa.example");
        let mut m = app.logged_in(&manager).await;
        let notes = m.get("/api/v1/notifications").await.json();
        assert_eq!(notes[0]["incident_id"].as_i64(), Some(id));

        // Acting on a step that is not yours: a clear 422 naming `step`.
        let mut d = app.logged_in(&director).await;
        let wrong = act(&mut d, id, s1["id"].as_i64().unwrap(), "forward", "").await;
        assert_eq!(
            wrong.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            wrong.text()
        );
        assert_eq!(wrong.content_type(), "application/problem+json");
        assert_eq!(wrong.json()["field"], "step");
        // A plain member of staff has no handling right at all.
        let refused = act(&mut r, id, s1["id"].as_i64().unwrap(), "forward", "").await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
        // The wrong action for the step names `action`.
        let bad = act(&mut m, id, s1["id"].as_i64().unwrap(), "report", "").await;
        assert_eq!(bad.json()["field"], "action");

        // K10.2: the manager acknowledges, then reports to the 統括者.
        let s1_id = s1["id"].as_i64().unwrap();
        assert_eq!(
            act(&mut m, id, s1_id, "acknowledge", "").await.status,
            StatusCode::NO_CONTENT
        );
        assert_eq!(
            act(&mut m, id, s1_id, "acknowledge", "").await.status,
            StatusCode::CONFLICT,
            "acknowledged once"
        );
        assert_eq!(
            act(&mut m, id, s1_id, "forward", "窓口を閉じて調査中")
                .await
                .status,
            StatusCode::NO_CONTENT
        );
        assert_eq!(
            act(&mut m, id, s1_id, "forward", "").await.status,
            StatusCode::CONFLICT
        );
        let v = incident(&mut d, id).await;
        assert_eq!(v["status"], "at_director");
        let s1 = step(&v, 1);
        assert!(s1["acknowledged_at"].as_i64().is_some());
        assert!(s1["completed_at"].as_i64().is_some());
        let s2 = step(&v, 2);
        assert_eq!(
            s2["person_id"].as_i64().unwrap(),
            person_id(&app, &director).await
        );
        assert_eq!(
            s2["due_at"].as_i64().unwrap() - s2["opened_at"].as_i64().unwrap(),
            7200
        );
        send_mail(&app, app.state.clock().unix()).await;
        assert_eq!(sink.to(&mail_of(&director)).len(), 1);

        // K10.3: the 統括者 instructs the manager (a comment is required)
        // and reports to the CIO.
        let s2_id = s2["id"].as_i64().unwrap();
        let no_comment = act(&mut d, id, s2_id, "instruct", " ").await;
        assert_eq!(no_comment.json()["field"], "comment");
        assert_eq!(
            act(&mut d, id, s2_id, "instruct", "端末を隔離すること")
                .await
                .status,
            StatusCode::NO_CONTENT
        );
        assert_eq!(
            act(&mut d, id, s2_id, "report", "").await.status,
            StatusCode::NO_CONTENT
        );
        let mut c = app.logged_in(&cio).await;
        let v = incident(&mut c, id).await;
        assert_eq!(v["status"], "at_cio");
        let s3 = step(&v, 3);
        assert_eq!(
            s3["person_id"].as_i64().unwrap(),
            person_id(&app, &cio).await
        );
        assert_eq!(
            act(&mut c, id, s3["id"].as_i64().unwrap(), "acknowledge", "")
                .await
                .status,
            StatusCode::NO_CONTENT
        );
        let v = incident(&mut r, id).await;
        assert_eq!(v["status"], "chain_done");

        send_mail(&app, app.state.clock().unix()).await;
        // The manager got the new report and the instruction; the CIO the
        // report; the reporter the news that it reached the CIO.
        assert_eq!(sink.to(&mail_of(&manager)).len(), 2);
        assert_eq!(sink.to(&mail_of(&cio)).len(), 1);
        assert_eq!(sink.to(&mail_of(&reporter)).len(), 1);

        // Every step is on the timeline, each with its record.
        let kinds: Vec<&str> = v["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["kind"].as_str().unwrap())
            .collect();
        assert_eq!(
            kinds,
            [
                "reported",
                "acknowledged",
                "forwarded",
                "instructed",
                "reported_to_cio",
                "acknowledged"
            ]
        );
        for a in [
            "incident.report",
            "incident.forward",
            "incident.instruct",
            "incident.report_to_cio",
        ] {
            assert_eq!(records_with(&app, a).await, 1, "{a}");
        }
        assert_eq!(records_with(&app, "incident.acknowledge").await, 2);
        let linked = scalar(&app, &format!(
            "SELECT COUNT(*) FROM incident_entries e JOIN records r ON r.id = e.record_id WHERE e.incident_id = {id} AND r.target = 'incident:{id}'"
        )).await;
        assert_eq!(linked, 6);
        // The timeline is append-only.
        let mut conn = app.state.db().pool().acquire().await.unwrap();
        assert!(sqlx::query("UPDATE incident_entries SET kind = 'x'")
            .execute(&mut *conn)
            .await
            .is_err());
        assert!(sqlx::query("DELETE FROM incident_entries")
            .execute(&mut *conn)
            .await
            .is_err());
    }
);

both_engines_mail!(
    k10_overdue_steps_are_flagged_and_escalated,
    |app: TestApp, sink: SmtpSink| async move {
        let reporter = plain_staff(&app, "戸籍住民課");
        let manager = manager_of(&app, "戸籍住民課");
        let director = login_with_role(&app, "セキュリティ統括者");
        let mut r = app.logged_in(&reporter).await;
        let id = report(&mut r, &report_body("端末が起動しない")).await;
        let v = incident(&mut r, id).await;
        let due = step(&v, 1)["due_at"].as_i64().unwrap();
        use mamori_server::incidents::service::escalate_overdue;

        // Not yet due: nothing happens.
        assert_eq!(escalate_overdue(&app.state, due).await.unwrap(), 0);
        // One second past the deadline: flagged, and the 統括者 gets it.
        assert_eq!(escalate_overdue(&app.state, due + 1).await.unwrap(), 1);
        assert_eq!(
            escalate_overdue(&app.state, due + 600).await.unwrap(),
            0,
            "escalates once"
        );
        let mut d = app.logged_in(&director).await;
        let v = incident(&mut d, id).await;
        assert_eq!(v["status"], "at_director");
        assert!(step(&v, 1)["escalated_at"].as_i64().is_some());
        assert!(step(&v, 1)["completed_at"].is_null());
        assert_eq!(
            step(&v, 2)["person_id"].as_i64().unwrap(),
            person_id(&app, &director).await
        );
        assert_eq!(records_with(&app, "incident.escalate").await, 1);

        // The list flags it as overdue (read at a time past the deadline;
        // sessions idle that long have ended, so log in again).
        app.state.clock().advance(3601);
        let mut d = app.logged_in(&director).await;
        let list = d.get("/api/v1/incidents?scope=all").await.json();
        let row = list["incidents"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["id"] == id)
            .cloned()
            .unwrap();
        assert_eq!(row["overdue"], true);

        // The late manager can still report; no second director step opens.
        let mut m = app.logged_in(&manager).await;
        let s1 = step(&incident(&mut m, id).await, 1)["id"].as_i64().unwrap();
        assert_eq!(
            act(&mut m, id, s1, "forward", "").await.status,
            StatusCode::NO_CONTENT
        );
        assert_eq!(
            scalar(
                &app,
                &format!("SELECT COUNT(*) FROM incident_steps WHERE incident_id = {id}")
            )
            .await,
            2
        );

        // Mail: the manager had the report and the reminder; the director
        // the escalation (the later forward adds no second director step).
        send_mail(&app, app.state.clock().unix()).await;
        assert_eq!(sink.to(&mail_of(&manager)).len(), 2);
        assert_eq!(sink.to(&mail_of(&director)).len(), 1);
        let reminder = sink.to(&mail_of(&manager))[1].body();
        assert!(reminder.contains("期限"), "{reminder}");
    }
);

/// The outbox: a change commits even when the mail server is down; the
/// mail is retried with backoff and delivered once the server is back.
async fn outbox_survives(engine: common::Engine) {
    // A port with nobody listening.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let Some(app) = common::app_with(engine, |c| {
        c.mail.smtp_host = "127.0.0.1".into();
        c.mail.smtp_port = port;
        c.mail.timeout_secs = 2;
    })
    .await
    else {
        return;
    };
    let reporter = plain_staff(&app, "戸籍住民課");
    let manager = manager_of(&app, "戸籍住民課");
    let mut r = app.logged_in(&reporter).await;
    let id = report(&mut r, &report_body("プリンタ障害")).await;
    assert_eq!(
        incident(&mut r, id).await["status"],
        "at_manager",
        "the report is kept"
    );
    let now = app.state.clock().unix();
    let first = send_mail(&app, now).await;
    assert_eq!((first.sent, first.failed), (0, 1));
    assert_eq!(
        scalar(
            &app,
            "SELECT COUNT(*) FROM mail_outbox WHERE sent_at IS NULL AND attempts = 1"
        )
        .await,
        1
    );
    let sink = SmtpSink::start_on(port).await;
    // Backoff: not retried at once.
    assert_eq!(send_mail(&app, now + 1).await, Default::default());
    let again = send_mail(&app, now + 61).await;
    assert_eq!((again.sent, again.failed), (1, 0));
    assert_eq!(sink.to(&mail_of(&manager)).len(), 1);
    assert_eq!(send_mail(&app, now + 3600).await.sent, 0, "sent once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_survives_a_down_mail_server_sqlite() {
    outbox_survives(common::Engine::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_survives_a_down_mail_server_postgres() {
    outbox_survives(common::Engine::Postgres).await;
}

both_engines!(
    bad_input_names_the_field_and_nothing_typed_is_lost,
    |app: TestApp| async move {
        let reporter = plain_staff(&app, "戸籍住民課");
        let mut r = app.logged_in(&reporter).await;
        // API: problem+json naming the field.
        let check = |body: Value, field: &'static str, code: &'static str| (body, field, code);
        let cases = [
            check(
                json!({ "kind": "failure", "description": "x", "noticed_at": "2026-01-05" }),
                "title",
                "field.required",
            ),
            check(
                json!({ "kind": "failure", "title": "t", "description": "x", "noticed_at": "2999-01-01 10:00" }),
                "noticed_at",
                "incident.future",
            ),
            check(
                json!({ "kind": "failure", "title": "t", "description": "x", "noticed_at": "いつか" }),
                "noticed_at",
                "incident.bad_time",
            ),
            check(
                json!({ "kind": "fire", "title": "t", "description": "x", "noticed_at": "2026-01-05" }),
                "kind",
                "incident.bad_kind",
            ),
            check(
                json!({ "kind": "loss", "title": "t", "description": "x", "noticed_at": "2026-01-05" }),
                "lost_item",
                "field.required",
            ),
            check(
                json!({ "kind": "failure", "title": "t", "description": "x", "noticed_at": "2026-01-05", "system_code": "nope" }),
                "system_code",
                "incident.unknown_system",
            ),
            check(
                json!({ "kind": "failure", "title": "t", "description": "", "noticed_at": "2026-01-05" }),
                "description",
                "field.required",
            ),
        ];
        for (body, field, code) in cases {
            let res = r.post_json("/api/v1/incidents", &body).await;
            assert_eq!(
                res.status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{body}: {}",
                res.text()
            );
            assert_eq!(res.content_type(), "application/problem+json");
            let p = res.json();
            let e = p["errors"]
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["field"] == field)
                .unwrap_or_else(|| panic!("{body}: {p}"));
            assert_eq!(e["code"], code, "{p}");
        }
        let unknown = r
            .post_json(
                "/api/v1/incidents",
                &json!({ "kind": "failure", "colour": 1 }),
            )
            .await;
        assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(scalar(&app, "SELECT COUNT(*) FROM incidents").await, 0);

        // The page: a disallowed attachment and a missing title; the form
        // comes back in Japanese with what was typed, and a draft is kept.
        let (ct, body) = multipart(
            &r,
            &[
                ("kind", "virus"),
                ("title", ""),
                ("description", "不審なメールの添付を開いた"),
                ("noticed_at", "2026-01-05 10:00"),
                ("system_code", ""),
            ],
            &[
                ("attachments", "invoice.exe", b"MZ\x90\x00"),
                ("attachments", "screen.png", b"\x89PNG\r\n\x1a\nrest"),
            ],
        )
        .await;
        let res = r
            .request(Method::POST, "/incidents/new", Some(&ct), body)
            .await;
        assert_eq!(
            res.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            res.text()
        );
        let html = res.text();
        assert!(
            html.contains("不審なメールの添付を開いた"),
            "typed text kept"
        );
        assert!(
            html.contains("「invoice.exe」は添付できない形式です"),
            "{html}"
        );
        assert!(
            html.contains("r-title-error") && html.contains("入力してください。"),
            "the title is named"
        );
        assert!(html.contains("screen.png"), "the good file is kept");
        let again = r.get("/incidents/new").await.text();
        assert!(again.contains("不審なメールの添付を開いた") && again.contains("draft-notice"));
        // Resubmitting with a title, keeping the stored file, goes through.
        let sha = {
            let mut conn = app.state.db().pool().acquire().await.unwrap();
            let (body,): (String,) = sqlx::query_as("SELECT body FROM incident_drafts")
                .fetch_one(&mut *conn)
                .await
                .unwrap();
            serde_json::from_str::<Value>(&body).unwrap()["files"][0]["sha256"]
                .as_str()
                .unwrap()
                .to_string()
        };
        let (ct, body) = multipart(
            &r,
            &[
                ("kind", "virus"),
                ("title", "不審メール"),
                ("description", "不審なメールの添付を開いた"),
                ("noticed_at", "2026-01-05 10:00"),
                ("kept", sha.as_str()),
            ],
            &[],
        )
        .await;
        let res = r
            .request(Method::POST, "/incidents/new", Some(&ct), body)
            .await;
        assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.text());
        assert_eq!(
            scalar(&app, "SELECT COUNT(*) FROM incident_drafts").await,
            0
        );
        let id = scalar(&app, "SELECT MAX(id) FROM incidents").await;
        let v = incident(&mut r, id).await;
        assert_eq!(v["attachments"][0]["file_name"], "screen.png");
        assert_eq!(v["attachments"][0]["sha256"], sha.as_str());
        let dl = r.get(v["attachments"][0]["url"].as_str().unwrap()).await;
        assert_eq!(dl.body, b"\x89PNG\r\n\x1a\nrest");

        // API upload: the limit and the type name the field.
        let url = format!("/api/v1/incidents/{id}/attachments?name=big.txt");
        let big = vec![b'a'; 10 * 1024 * 1024 + 1];
        let res = r
            .send(Method::POST, &url, &[("x-mamori-upload", "1")], big)
            .await;
        assert_eq!(
            res.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            res.text()
        );
        assert_eq!(
            res.json()["errors"][0]["code"],
            "incident.attachment_too_large"
        );
        let res = r
            .send(
                Method::POST,
                &format!("/api/v1/incidents/{id}/attachments?name=a.txt"),
                &[],
                b"hello".to_vec(),
            )
            .await;
        assert_eq!(res.json()["field"], "X-Mamori-Upload");
        let res = r
            .send(
                Method::POST,
                &format!("/api/v1/incidents/{id}/attachments?name=log.txt"),
                &[("x-mamori-upload", "1")],
                b"hello".to_vec(),
            )
            .await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
        // Someone else's report is not found.
        let other = plain_staff(&app, "企画課");
        let mut o = app.logged_in(&other).await;
        assert_eq!(
            o.get(&format!("/api/v1/incidents/{id}")).await.status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            o.get("/api/v1/incidents/abc").await.status,
            StatusCode::NOT_FOUND
        );
    }
);

both_engines!(
    k27_security_incident_response_and_k25,
    |app: TestApp| async move {
        let reporter = plain_staff(&app, "戸籍住民課");
        let manager = manager_of(&app, "戸籍住民課");
        let director = login_with_role(&app, "セキュリティ統括者");
        let chief = login_with_role(&app, "セキュリティ総括管理者");
        let cio = login_with_role(&app, "最高情報統括責任者");
        let mut r = app.logged_in(&reporter).await;
        let id = report(&mut r, &json!({ "kind": "intrusion", "title": "不審なログイン", "description": "夜間に管理者で多数のログイン",
            "noticed_at": "2026-01-06 08:00", "system_code": "facility" })).await;
        let mut m = app.logged_in(&manager).await;
        let entry = |kind: &str, extra: Value| {
            let mut b = extra;
            b["kind"] = json!(kind);
            b
        };
        let post = |c: &mut Client, body: Value| {
            let mut c = c.clone();
            async move {
                c.post_json(&format!("/api/v1/incidents/{id}/entries"), &body)
                    .await
            }
        };
        // K27 entries need a security incident first.
        let res = post(
            &mut m,
            entry(
                "assessment",
                json!({ "content": "c", "suspected_cause": "s", "damage_scope": "d" }),
            ),
        )
        .await;
        assert_eq!(res.json()["errors"][0]["code"], "incident.not_security");
        let res = m
            .post_json(
                &format!("/api/v1/incidents/{id}/promote"),
                &json!({ "reason": "不正アクセスの可能性" }),
            )
            .await;
        assert_eq!(res.status, StatusCode::NO_CONTENT, "{}", res.text());
        let v = incident(&mut m, id).await;
        assert_eq!(v["security"], true);
        assert!(v["checklist"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["done"] == false));

        // K27.1.1 a–c, every field required and named.
        let res = post(&mut m, entry("assessment", json!({ "content": "c" }))).await;
        let fields: Vec<String> = res.json()["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(fields, ["suspected_cause", "damage_scope"]);
        assert_eq!(post(&mut m, entry("assessment", json!({ "content": "管理者アカウントで深夜に大量のログイン", "suspected_cause": "パスワードの流出", "damage_scope": "予約情報の閲覧の可能性" }))).await.status, StatusCode::NO_CONTENT);
        // K27.1.2: the order and who executed it.
        let operator = login_with_role(&app, "運用管理者");
        let res = post(&mut m, entry("containment", json!({ "measure": "cut_network", "condition": "a", "employee_number": operator, "at": "2026-01-06 09:00", "note": "外部接続を切断" }))).await;
        assert_eq!(res.status, StatusCode::NO_CONTENT, "{}", res.text());
        // K27.1.4 only after K27.1.3.
        let res = post(
            &mut m,
            entry("recovery", json!({ "temporary_measure": "パスワード変更" })),
        )
        .await;
        assert_eq!(res.json()["errors"][0]["code"], "incident.evidence_first");
        // K27.1.3: link ledger records, and freeze a bundle (総括管理者).
        while app.state.ledger().move_outbox().await.unwrap() {}
        app.state
            .ledger()
            .checkpoint(app.state.clock().unix())
            .await
            .unwrap();
        let res = m
            .post_json(
                &format!("/api/v1/incidents/{id}/evidence"),
                &json!({ "ledger_indexes": [0, 1] }),
            )
            .await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
        let res = m
            .post_json(
                &format!("/api/v1/incidents/{id}/evidence"),
                &json!({ "ledger_indexes": [999999999] }),
            )
            .await;
        assert_eq!(res.json()["field"], "ledger_indexes");
        let mut ch = app.logged_in(&chief).await;
        let res = ch
            .post_json(
                &format!("/api/v1/incidents/{id}/evidence"),
                &json!({ "freeze": { "reason": " ", "query": { "system": "mamori" } } }),
            )
            .await;
        assert_eq!(res.json()["field"], "freeze.reason");
        let res = ch.post_json(&format!("/api/v1/incidents/{id}/evidence"), &json!({ "freeze": { "reason": "不審なログインの記録", "query": { "system": "mamori" } } })).await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
        let bundle = res.json()["bundle_id"].as_i64().unwrap();
        assert_eq!(records_with(&app, "ledger.freeze").await, 1);
        let res = m
            .post_json(
                &format!("/api/v1/incidents/{id}/evidence"),
                &json!({ "freeze": { "reason": "x", "query": { "system": "mamori" } } }),
            )
            .await;
        assert_eq!(
            res.status,
            StatusCode::FORBIDDEN,
            "freezing needs FreezeEvidence"
        );
        assert_eq!(post(&mut m, entry("recovery", json!({ "temporary_measure": "全管理者のパスワードを変更", "at": "2026-01-06 12:00" }))).await.status, StatusCode::NO_CONTENT);
        // K27.1.5: plan by the manager, agreed by the 統括者, reported to the CIO.
        let mut d = app.logged_in(&director).await;
        let res = post(&mut d, entry("prevention_agreed", json!({}))).await;
        assert_eq!(res.json()["errors"][0]["code"], "incident.plan_first");
        assert_eq!(
            post(
                &mut m,
                entry(
                    "prevention_plan",
                    json!({ "root_cause": "使い回しのパスワード", "plan": "多要素認証の導入" })
                )
            )
            .await
            .status,
            StatusCode::NO_CONTENT
        );
        assert_eq!(
            post(&mut m, entry("prevention_agreed", json!({})))
                .await
                .status,
            StatusCode::FORBIDDEN,
            "only the 統括者 agrees"
        );
        assert_eq!(
            post(
                &mut d,
                entry("prevention_agreed", json!({ "note": "了承" }))
            )
            .await
            .status,
            StatusCode::NO_CONTENT
        );
        // K27.3: only the CIO notifies outside parties.
        assert_eq!(
            post(
                &mut d,
                entry("outside_notice", json!({ "parties": "利用者" }))
            )
            .await
            .status,
            StatusCode::FORBIDDEN
        );
        let mut c = app.logged_in(&cio).await;
        assert_eq!(
            post(
                &mut c,
                entry(
                    "outside_notice",
                    json!({ "parties": "施設予約の利用者、総務省", "at": "2026-01-07 10:00" })
                )
            )
            .await
            .status,
            StatusCode::NO_CONTENT
        );
        // K25.3 police contact; K25.4 misconduct routed to the staff's manager.
        assert_eq!(
            post(
                &mut d,
                entry(
                    "police_contact",
                    json!({ "parties": "警視庁サイバー犯罪対策課" })
                )
            )
            .await
            .status,
            StatusCode::NO_CONTENT
        );
        let culprit = plain_staff(&app, "企画課");
        let kikaku_manager = manager_of(&app, "企画課");
        let res = post(
            &mut d,
            entry(
                "misconduct",
                json!({ "employee_number": culprit, "note": "業務外のアクセス" }),
            ),
        )
        .await;
        assert_eq!(res.status, StatusCode::NO_CONTENT, "{}", res.text());
        let mut km = app.logged_in(&kikaku_manager).await;
        let notes = km.get("/api/v1/notifications").await.json();
        assert!(
            notes
                .as_array()
                .unwrap()
                .iter()
                .any(|n| n["incident_id"] == id),
            "{notes}"
        );
        assert_eq!(
            km.get(&format!("/api/v1/incidents/{id}")).await.status,
            StatusCode::OK,
            "the notified manager can open it"
        );

        let v = incident(&mut m, id).await;
        for item in v["checklist"].as_array().unwrap() {
            assert_eq!(item["done"], true, "{item}");
        }
        let evidence: Vec<&Value> = v["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["kind"] == "evidence")
            .collect();
        assert_eq!(evidence[0]["detail"]["ledger_indexes"], json!([0, 1]));
        assert_eq!(evidence[1]["detail"]["bundle_id"].as_i64(), Some(bundle));
        for a in [
            "incident.assessment",
            "incident.containment",
            "incident.evidence",
            "incident.recovery",
            "incident.prevention_agreed",
            "incident.outside_notice",
            "incident.police_contact",
            "incident.misconduct",
        ] {
            assert!(records_with(&app, a).await >= 1, "{a}");
        }
        // The page shows the chain, deadlines and the checklist, in Japanese.
        let html = m.get(&format!("/incidents/{id}")).await.text();
        assert!(
            html.contains("セキュリティ障害等の対応")
                && html.contains("期限")
                && html.contains("K27.1.3")
        );
        assert!(
            html.contains("障害時対応手順がありません"),
            "facility has no K26 procedure"
        );
    }
);

both_engines!(
    k27_1_2_operator_reports_an_emergency_action_afterwards,
    |app: TestApp| async move {
        let operator = login_with_role(&app, "運用管理者");
        let chief = login_with_role(&app, "セキュリティ総括管理者");
        let mut o = app.logged_in(&operator).await;
        let id = report(
            &mut o,
            &json!({ "kind": "virus", "title": "ウイルス拡散", "description": "共有フォルダで検知",
            "noticed_at": "2026-01-06 08:00" }),
        )
        .await;
        let res = o
            .post_json(
                &format!("/api/v1/incidents/{id}/emergency-actions"),
                &json!({ "measure": "cut_network", "at": "2026-01-06 08:05" }),
            )
            .await;
        assert_eq!(res.json()["field"], "note", "why is required");
        let res = o.post_json(&format!("/api/v1/incidents/{id}/emergency-actions"), &json!({ "measure": "cut_network", "at": "2026-01-06 08:05", "note": "拡散が続いていたため" })).await;
        assert_eq!(res.status, StatusCode::NO_CONTENT, "{}", res.text());
        // 事後報告: the manager of the report (the 情報政策課長) is told.
        let mut c = app.logged_in(&chief).await;
        let notes = c.get("/api/v1/notifications").await.json();
        assert!(
            notes
                .as_array()
                .unwrap()
                .iter()
                .any(|n| n["message"].as_str().unwrap().contains("緊急")),
            "{notes}"
        );
        let v = incident(&mut c, id).await;
        let e = v["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["kind"] == "emergency_action")
            .unwrap()
            .clone();
        assert_eq!(e["detail"]["emergency"], true);
        assert_eq!(
            e["detail"]["executed_by"],
            format!("person:{}", person_id(&app, &operator).await)
        );
    }
);

both_engines!(
    k33_1_6_designated_manager_staff_report_reaches_the_ward,
    |app: TestApp| async move {
        let staff = plain_staff(&app, "スポーツランド指定管理者");
        let boss = manager_of(&app, "スポーツランド指定管理者");
        let mut s = app.logged_in(&staff).await;
        let id = report(
            &mut s,
            &json!({ "kind": "loss", "lost_item": "media", "title": "USBメモリ紛失",
            "description": "利用者名簿を保存したUSBメモリ", "noticed_at": "2026-01-06" }),
        )
        .await;
        let v = incident(&mut s, id).await;
        assert_eq!(v["outside_org"], true);
        assert_eq!(
            step(&v, 1)["person_id"].as_i64().unwrap(),
            person_id(&app, &boss).await
        );
        assert_eq!(v["timeline"][0]["kind"], "reported");
        let clause = scalar(
            &app,
            "SELECT COUNT(*) FROM records WHERE action = 'incident.report' AND clause = 'K33.1.6'",
        )
        .await;
        assert_eq!(clause, 1);
        // The ward's security manager hears at once.
        let mut ch = app
            .logged_in(&login_with_role(&app, "セキュリティ総括管理者"))
            .await;
        let notes = ch.get("/api/v1/notifications").await.json();
        assert!(
            notes
                .as_array()
                .unwrap()
                .iter()
                .any(|n| n["incident_id"] == id
                    && n["message"].as_str().unwrap().contains("K33.1.6")),
            "{notes}"
        );
        // The ward sees it: the 統括者 and the CIO list it ward-wide.
        let mut d = app
            .logged_in(&login_with_role(&app, "最高情報統括責任者"))
            .await;
        let list = d.get("/api/v1/incidents?scope=all&kind=loss").await.json();
        assert_eq!(list["incidents"][0]["id"].as_i64(), Some(id));
        assert_eq!(
            list["counts"][0],
            json!({ "kind": "loss", "status": "at_manager", "count": 1 })
        );
    }
);

both_engines!(
    views_are_scoped_and_exports_have_japanese_headers,
    |app: TestApp| async move {
        let a = plain_staff(&app, "戸籍住民課");
        let b = plain_staff(&app, "企画課");
        let mut ca = app.logged_in(&a).await;
        let mut cb = app.logged_in(&b).await;
        let ia = report(&mut ca, &report_body("戸籍の報告")).await;
        let ib = report(&mut cb, &report_body("企画の報告")).await;
        let ids = |v: &Value| -> Vec<i64> {
            v["incidents"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["id"].as_i64().unwrap())
                .collect()
        };
        assert_eq!(ids(&ca.get("/api/v1/incidents").await.json()), [ia]);
        assert_eq!(
            ca.get("/api/v1/incidents?scope=all").await.status,
            StatusCode::FORBIDDEN
        );
        let mut m = app.logged_in(&manager_of(&app, "戸籍住民課")).await;
        assert_eq!(
            ids(&m.get("/api/v1/incidents?scope=all").await.json()),
            [ia]
        );
        let mut d = app
            .logged_in(&login_with_role(&app, "セキュリティ統括者"))
            .await;
        assert_eq!(
            ids(&d.get("/api/v1/incidents?scope=all").await.json()),
            [ib, ia]
        );
        let bad = d.get("/api/v1/incidents?scope=all&status=lost").await;
        assert_eq!(bad.json()["field"], "status");
        let bad = d.get("/api/v1/incidents?scope=all&from=someday").await;
        assert_eq!(bad.json()["field"], "from");
        let yesterday =
            mamori_server::clock::date_str(app.state.clock().today().previous_day().unwrap());
        let tomorrow =
            mamori_server::clock::date_str(app.state.clock().today().next_day().unwrap());
        assert_eq!(
            ids(&d
                .get(&format!(
                    "/api/v1/incidents?scope=all&from={yesterday}&to={tomorrow}"
                ))
                .await
                .json()),
            [ib, ia]
        );
        assert_eq!(
            ids(&d
                .get(&format!("/api/v1/incidents?scope=all&from={tomorrow}"))
                .await
                .json()),
            Vec::<i64>::new()
        );
        // Pages in Japanese.
        let html = d.get("/incidents?kind=failure").await.text();
        assert!(html.contains("種別・状態ごとの件数") && html.contains("企画の報告"));
        assert!(ca.get("/incidents").await.text().contains("戸籍の報告"));
        // Exports.
        let csv = d.get("/incidents/export.csv").await;
        assert_eq!(csv.status, StatusCode::OK);
        let text = csv.text();
        assert!(
            text.starts_with("\u{feff}番号,種別,件名,発見日時"),
            "{text}"
        );
        assert!(text.contains("企画の報告") && text.contains("障害"));
        let x = d.get("/incidents/export.xlsx").await;
        assert!(x.body.starts_with(b"PK"));
        assert!(x.content_type().contains("spreadsheetml"));
        let mine = ca.get("/incidents/export.csv").await.text();
        assert!(
            mine.contains("戸籍の報告") && !mine.contains("企画の報告"),
            "staff export only their own"
        );
    }
);

both_engines!(
    k16_4_failure_records_and_k10_4_recurrence,
    |app: TestApp| async move {
        let reporter = plain_staff(&app, "江戸川区立中央図書館");
        let librarian = manager_of(&app, "江戸川区立中央図書館");
        let mut r = app.logged_in(&reporter).await;
        let mut m = app.logged_in(&librarian).await;
        let mut ids = Vec::new();
        for (title, cause, start, end) in [
            (
                "貸出停止1",
                "network",
                "2026-01-05 09:00",
                "2026-01-05 10:30",
            ),
            (
                "貸出停止2",
                "network",
                "2026-01-20 14:00",
                "2026-01-20 14:20",
            ),
            ("検索停止", "software", "2026-01-22 09:00", ""),
        ] {
            let id = report(&mut r, &report_body(title)).await;
            let res = m.put_json(&format!("/api/v1/incidents/{id}/failure-record"), &json!({
                "system_code": "library", "cause_category": cause, "started_at": start, "resolved_at": end,
                "impact": "residents", "handling": "保守業者が対応" })).await;
            assert_eq!(res.status, StatusCode::OK, "{}", res.text());
            ids.push(id);
        }
        let res = m
            .put_json(
                &format!("/api/v1/incidents/{}/failure-record", ids[0]),
                &json!({
            "system_code": "library", "cause_category": "network", "started_at": "2026-01-05 09:00",
            "resolved_at": "2026-01-05 08:00", "impact": "residents" }),
            )
            .await;
        assert_eq!(res.json()["field"], "resolved_at");
        let res = m.put_json(&format!("/api/v1/incidents/{}/failure-record", ids[0]), &json!({
            "system_code": "library", "cause_category": "weather", "started_at": "2999-01-01", "impact": "x" })).await;
        let fields: Vec<String> = res.json()["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(fields, ["cause_category", "impact", "started_at"]);
        assert_eq!(records_with(&app, "failure.record").await, 3);
        // The library system's own operator (scoped to the system, not a
        // unit) keeps its failure records too, and sees only that system's.
        let library_operator = app
            .logins
            .iter()
            .find(|(_, u, roles)| u == "江戸川区立中央図書館" && roles.contains("運用管理者"))
            .map(|(l, _, _)| l.clone())
            .unwrap();
        let mut op = app.logged_in(&library_operator).await;
        let res = op
            .put_json(&format!("/api/v1/incidents/{}/failure-record", ids[2]), &json!({
                "system_code": "library", "cause_category": "software", "started_at": "2026-01-22 09:00",
                "resolved_at": "2026-01-22 09:45", "impact": "residents", "handling": "パッチ適用" }))
            .await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.text());
        assert_eq!(res.json()["duration_minutes"], 45);
        assert_eq!(
            op.get("/api/v1/failure-records")
                .await
                .json()
                .as_array()
                .unwrap()
                .len(),
            3
        );
        let facility_operator = app
            .logins
            .iter()
            .find(|(_, u, roles)| u == "文化課" && roles.contains("運用管理者"))
            .map(|(l, _, _)| l.clone())
            .unwrap();
        let mut fo = app.logged_in(&facility_operator).await;
        assert_eq!(
            fo.get("/api/v1/failure-records")
                .await
                .json()
                .as_array()
                .unwrap()
                .len(),
            0
        );
        let res = fo
            .put_json(&format!("/api/v1/incidents/{}/failure-record", ids[2]), &json!({
                "system_code": "library", "cause_category": "software", "started_at": "2026-01-22 09:00", "impact": "residents" }))
            .await;
        assert_eq!(res.status, StatusCode::NOT_FOUND);

        let found = m
            .get("/api/v1/failure-records?system_code=library&min_minutes=60")
            .await
            .json();
        assert_eq!(found.as_array().unwrap().len(), 1);
        assert_eq!(found[0]["duration_minutes"], 90);
        let rec = m.get("/api/v1/failure-records/recurrence").await.json();
        assert_eq!(rec["total"], 3);
        assert_eq!(rec["recurring"].as_array().unwrap().len(), 1);
        assert_eq!(rec["recurring"][0]["cause_category"], "network");
        assert_eq!(rec["recurring"][0]["count"], 2);
        assert_eq!(rec["recurring"][0]["total_minutes"], 110);
        // Another manager's scope does not reach the library's records.
        let mut other = app.logged_in(&manager_of(&app, "企画課")).await;
        assert_eq!(
            other
                .get("/api/v1/failure-records")
                .await
                .json()
                .as_array()
                .unwrap()
                .len(),
            0
        );
        // The page draws the chart; the exports have Japanese headers.
        let html = m.get("/failures").await.text();
        assert!(html.contains("<svg id=\"failure-chart\"") && html.contains("再発の分析"));
        let csv = m
            .get("/failures/export.csv?cause_category=network")
            .await
            .text();
        assert!(
            csv.starts_with("\u{feff}報告番号,件名,情報システム,原因区分"),
            "{csv}"
        );
        assert!(csv.contains("ネットワーク") && !csv.contains("ソフトウェア"));
        assert!(m.get("/failures/export.xlsx").await.body.starts_with(b"PK"));
        assert_eq!(
            m.get("/failures?min_minutes=abc").await.status,
            StatusCode::UNPROCESSABLE_ENTITY
        );
    }
);

both_engines!(
    k26_failure_procedures_are_versioned_and_gaps_flagged,
    |app: TestApp| async move {
        let culture = manager_of(&app, "文化課");
        let mut m = app.logged_in(&culture).await;
        let overview = m.get("/api/v1/failure-procedures").await.json();
        let sys = |v: &Value, code: &str| {
            v.as_array()
                .unwrap()
                .iter()
                .find(|s| s["system_code"] == code)
                .cloned()
                .unwrap()
        };
        assert_eq!(sys(&overview, "facility")["flagged"], true);
        assert_eq!(sys(&overview, "library")["flagged"], false);
        let html = m.get("/failure-procedures").await.text();
        assert!(html.contains("手順がありません"));
        // The library's procedure belongs to the library's manager.
        let res = m
            .post_json(
                "/api/v1/failure-procedures",
                &json!({ "system_code": "library", "title": "t", "steps": "s", "fallback": "f" }),
            )
            .await;
        assert_eq!(res.status, StatusCode::FORBIDDEN);
        let res = m
            .post_json(
                "/api/v1/failure-procedures",
                &json!({ "system_code": "facility", "title": "施設予約の障害時手順", "steps": "" }),
            )
            .await;
        let fields: Vec<String> = res.json()["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(fields, ["steps", "fallback"]);
        for v in 1..=2 {
            let res = m
                .post_json(
                    "/api/v1/failure-procedures",
                    &json!({ "system_code": "facility", "title": format!("施設予約 第{v}版"),
                "steps": "保守業者へ連絡", "fallback": "電話で予約を受け付ける" }),
                )
                .await;
            assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
            assert_eq!(res.json()["version"], v);
        }
        let overview = m.get("/api/v1/failure-procedures").await.json();
        let f = sys(&overview, "facility");
        assert_eq!(f["flagged"], false);
        assert_eq!(f["current"]["version"], 2);
        assert_eq!(
            f["versions"].as_array().unwrap().len(),
            2,
            "old versions are kept"
        );
        let first = f["versions"][1]["url"].as_str().unwrap().to_string();
        assert!(m.get(&first).await.text().contains("施設予約 第1版"));
        let mut conn = app.state.db().pool().acquire().await.unwrap();
        assert!(sqlx::query("UPDATE failure_procedures SET title = 'x'")
            .execute(&mut *conn)
            .await
            .is_err());
        drop(conn);
        assert_eq!(records_with(&app, "failure_procedure.write").await, 2);
        // A report on the system links to the current procedure.
        let mut s = app.logged_in(&plain_staff(&app, "文化課")).await;
        let id = report(&mut s, &json!({ "kind": "failure", "title": "予約画面が出ない", "description": "d", "noticed_at": "2026-01-06", "system_code": "facility" })).await;
        let v = incident(&mut s, id).await;
        assert_eq!(v["procedure"]["version"], 2);
        // Unmarking a system takes no reason; marking one needs it.
        let res = m
            .put_json(
                "/api/v1/failure-procedures/critical",
                &json!({ "system_code": "facility", "critical": true }),
            )
            .await;
        assert_eq!(res.json()["field"], "reason");
        let res = m
            .put_json(
                "/api/v1/failure-procedures/critical",
                &json!({ "system_code": "facility", "critical": false }),
            )
            .await;
        assert_eq!(res.status, StatusCode::NO_CONTENT);
        // Through the page: a missing title comes back with what was typed.
        let res = m
            .post_form(
                "/failure-procedures",
                &[
                    ("system_code", "facility"),
                    ("title", ""),
                    ("steps", "電話で受付"),
                    ("fallback", "紙の台帳"),
                ],
            )
            .await;
        assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
        let html = res.text();
        assert!(
            html.contains("proc-title-error")
                && html.contains("電話で受付")
                && html.contains("紙の台帳")
        );
        let res = m
            .post_form(
                "/failure-procedures",
                &[
                    ("system_code", "facility"),
                    ("title", "第3版"),
                    ("steps", "電話で受付"),
                    ("fallback", "紙の台帳"),
                ],
            )
            .await;
        assert_eq!(res.status, StatusCode::SEE_OTHER);
        let res = m
            .post_form(
                "/failure-procedures/critical",
                &[
                    ("system_code", "facility"),
                    ("critical", "1"),
                    ("reason", "区民の予約"),
                ],
            )
            .await;
        assert_eq!(res.status, StatusCode::SEE_OTHER);
        assert_eq!(records_with(&app, "failure_procedure.critical").await, 2);
    }
);

// Every incident and failure page, for each role, in Japanese and English
// (the GET page routes under these prefixes must all be listed here).
both_engines!(
    every_incident_page_in_japanese_and_english_for_each_role,
    |app: TestApp| async move {
        let reporter = plain_staff(&app, "戸籍住民課");
        let mut r = app.logged_in(&reporter).await;
        let id = report(&mut r, &report_body("印刷できない")).await;
        let proc_id = scalar(&app, "SELECT MIN(id) FROM failure_procedures").await;
        let incident_path = format!("/incidents/{id}");
        let proc_path = format!("/failure-procedures/{proc_id}");
        // (route, path, Japanese title, English title, who may: one letter
        // per role of `cast`: reporter, staff elsewhere, operator,
        // manager, chief, director, CIO, auditor)
        let pages: Vec<(&str, &str, &str, &str, &str)> = vec![
            (
                "/incidents",
                "/incidents",
                "事故・障害の報告",
                "Incident and failure reports",
                "yyyyyyyy",
            ),
            (
                "/incidents/new",
                "/incidents/new",
                "事故・障害の報告",
                "Report an incident or failure",
                "yyyyyyyn",
            ),
            (
                "/incidents/{id}",
                &incident_path,
                "印刷できない",
                "印刷できない",
                "ynnyyyyy",
            ),
            (
                "/failures",
                "/failures",
                "障害記録と再発の分析",
                "Failure records and recurrence",
                "nnyyyyyy",
            ),
            (
                "/failure-procedures",
                "/failure-procedures",
                "障害時対応手順",
                "Failure procedures",
                "yyyyyyyy",
            ),
            (
                "/failure-procedures/{id}",
                &proc_path,
                "図書館システム障害時の対応手順",
                "図書館システム障害時の対応手順",
                "yyyyyyyy",
            ),
        ];
        let listed: Vec<&str> = pages.iter().map(|p| p.0).collect();
        for route in mamori_server::app::route_table() {
            let p = route.path;
            let ours = p.starts_with("/incidents")
                || p.starts_with("/failures")
                || p.starts_with("/failure-procedures");
            if route.method == "GET" && ours && !p.contains("export") {
                assert!(listed.contains(&p), "{p} is not rendered by this test");
            }
        }
        let cast = [
            reporter.clone(),
            plain_staff(&app, "企画課"),
            login_with_role(&app, "運用管理者"),
            manager_of(&app, "戸籍住民課"),
            login_with_role(&app, "セキュリティ総括管理者"),
            login_with_role(&app, "セキュリティ統括者"),
            login_with_role(&app, "最高情報統括責任者"),
            login_with_role(&app, "外部監査人"),
        ];
        for (col, login) in cast.iter().enumerate() {
            let mut c = app.logged_in(login).await;
            for lang in ["ja", "en"] {
                for (_, path, ja, en, who) in &pages {
                    let res = if lang == "ja" {
                        c.get(path).await
                    } else {
                        c.request_with_cookie(Method::GET, path, "mamori_lang=en")
                            .await
                    };
                    let html = res.text();
                    let what = format!("{path} as {login} (column {col}) in {lang}");
                    assert!(html.contains(&format!("<html lang=\"{lang}\">")), "{what}");
                    if who.as_bytes()[col] == b'y' {
                        assert_eq!(res.status, StatusCode::OK, "{what}: {html}");
                        let title = if lang == "ja" { ja } else { en };
                        assert!(
                            html.contains(&format!("<title>{title}"))
                                || html.contains(&format!("{title} —")),
                            "{what}: {title}"
                        );
                    } else {
                        assert!(
                            res.status == StatusCode::FORBIDDEN
                                || res.status == StatusCode::NOT_FOUND,
                            "{what}: {}",
                            res.status
                        );
                    }
                }
            }
        }
    }
);

// The incident page's forms: a step acted on through the page, a form
// refused for its field re-rendered in Japanese with what was typed.
both_engines!(
    incident_page_forms_keep_what_was_typed,
    |app: TestApp| async move {
        let reporter = plain_staff(&app, "戸籍住民課");
        let manager = manager_of(&app, "戸籍住民課");
        let director = login_with_role(&app, "セキュリティ統括者");
        let mut r = app.logged_in(&reporter).await;
        let id = report(&mut r, &report_body("システム停止")).await;
        let s1 = step(&incident(&mut r, id).await, 1)["id"].as_i64().unwrap();
        // Not the director's step: the page says so, in Japanese.
        let mut d = app.logged_in(&director).await;
        let res = d
            .post_form(
                &format!("/incidents/{id}/steps/{s1}"),
                &[("action", "forward"), ("comment", "代わりに報告")],
            )
            .await;
        assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
        let html = res.text();
        assert!(
            html.contains("この段階の担当者ではないため、処理できません。"),
            "{html}"
        );
        // The manager forwards through the page.
        let mut m = app.logged_in(&manager).await;
        let res = m
            .post_form(
                &format!("/incidents/{id}/steps/{s1}"),
                &[("action", "forward"), ("comment", "確認済み")],
            )
            .await;
        assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.text());
        assert!(m
            .get(&format!("/incidents/{id}?done=step"))
            .await
            .text()
            .contains("処理を記録しました。"));
        // Promote without a reason: re-rendered with the field named.
        let res = m
            .post_form(&format!("/incidents/{id}/promote"), &[("reason", "")])
            .await;
        assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(res.text().contains("promote-reason-error"));
        m.post_form(
            &format!("/incidents/{id}/promote"),
            &[("reason", "外部からの攻撃の疑い")],
        )
        .await;
        // An assessment with one field missing keeps the others.
        let res = m
            .post_form(
                &format!("/incidents/{id}/entries"),
                &[
                    ("kind", "assessment"),
                    ("content", "予約画面の改ざん"),
                    ("suspected_cause", ""),
                    ("damage_scope", "トップページ"),
                ],
            )
            .await;
        assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
        let html = res.text();
        assert!(html.contains("予約画面の改ざん") && html.contains("トップページ"));
        assert!(html.contains("entry-assessment-suspected_cause-error"));
        // The failure record form names the bad time.
        let res = m
            .post_form(
                &format!("/incidents/{id}/failure-record"),
                &[
                    ("system_code", "library"),
                    ("cause_category", "network"),
                    ("started_at", "2999-12-31 10:00"),
                    ("impact", "residents"),
                    ("handling", "再起動"),
                ],
            )
            .await;
        assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
        let html = res.text();
        assert!(
            html.contains("未来の日時は入力できません。") && html.contains("再起動"),
            "{html}"
        );
        // In English too.
        let res = m
            .post_form_with_cookie(
                &format!("/incidents/{id}/entries"),
                &[("kind", "note"), ("note", "")],
                "mamori_lang=en",
            )
            .await;
        assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(res.text().contains("<html lang=\"en\">"));
    }
);

both_engines_mail!(
    notification_address_is_kept_by_each_person,
    |app: TestApp, sink: SmtpSink| async move {
        let reporter = plain_staff(&app, "戸籍住民課");
        let manager = manager_of(&app, "戸籍住民課");
        let mut m = app.logged_in(&manager).await;
        let bad = m
            .put_json(
                "/api/v1/me/notification-address",
                &json!({ "email": "kacho at example" }),
            )
            .await;
        assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(bad.json()["field"], "email");
        let page = m
            .post_form(
                "/incidents/notification-address",
                &[("email", "kacho@@example")],
            )
            .await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
        let html = page.text();
        assert!(
            html.contains("メールアドレスとして正しくありません。")
                && html.contains("kacho@@example")
        );
        let ok = m
            .put_json(
                "/api/v1/me/notification-address",
                &json!({ "email": "kacho@koseki.example" }),
            )
            .await;
        assert_eq!(ok.status, StatusCode::NO_CONTENT);
        assert_eq!(
            m.get("/api/v1/me/notification-address").await.json()["email"],
            "kacho@koseki.example"
        );
        assert_eq!(records_with(&app, "notification_address.set").await, 1);
        let mut r = app.logged_in(&reporter).await;
        report(&mut r, &report_body("一件目")).await;
        send_mail(&app, app.state.clock().unix()).await;
        assert_eq!(sink.to("kacho@koseki.example").len(), 1);
        assert_eq!(sink.to(&mail_of(&manager)).len(), 0);
        // Empty: no more mail, the in-app notice still arrives.
        let res = m
            .post_form("/incidents/notification-address", &[("email", "")])
            .await;
        assert_eq!(res.status, StatusCode::SEE_OTHER);
        report(&mut r, &report_body("二件目")).await;
        assert_eq!(send_mail(&app, app.state.clock().unix()).await.sent, 0);
        assert_eq!(
            m.get("/api/v1/notifications")
                .await
                .json()
                .as_array()
                .unwrap()
                .len(),
            2
        );
    }
);

// A step acted on while the escalation runs: one of them opens the next
// step, never both, and nobody sees an error.
both_engines!(
    k10_forward_racing_the_escalation_opens_one_director_step,
    |app: TestApp| async move {
        let reporter = plain_staff(&app, "戸籍住民課");
        let manager = manager_of(&app, "戸籍住民課");
        let mut r = app.logged_in(&reporter).await;
        let mut m = app.logged_in(&manager).await;
        for round in 0..5 {
            let id = report(&mut r, &report_body(&format!("競合 {round}"))).await;
            let s1 = step(&incident(&mut m, id).await, 1);
            let due = s1["due_at"].as_i64().unwrap();
            let s1_id = s1["id"].as_i64().unwrap();
            let mut m2 = m.clone();
            let (escalated, forwarded) = tokio::join!(
                mamori_server::incidents::service::escalate_overdue(&app.state, due + 1),
                async move { act(&mut m2, id, s1_id, "forward", "").await }
            );
            assert!(escalated.is_ok(), "{escalated:?}");
            assert_eq!(
                forwarded.status,
                StatusCode::NO_CONTENT,
                "{}",
                forwarded.text()
            );
            let steps = scalar(
                &app,
                &format!("SELECT COUNT(*) FROM incident_steps WHERE incident_id = {id}"),
            )
            .await;
            assert_eq!(steps, 2, "round {round}");
        }
    }
);

// Two managers saving the same system's procedure at once: each gets a
// version or a clear conflict, never a 500.
both_engines!(
    k26_concurrent_versions_never_break,
    |app: TestApp| async move {
        let m = app.logged_in(&manager_of(&app, "文化課")).await;
        for round in 0..5 {
            let body = json!({ "system_code": "facility", "title": format!("版 {round}"), "steps": "s", "fallback": "f" });
            let (mut a, mut b) = (m.clone(), m.clone());
            let (ra, rb) = tokio::join!(
                a.post_json("/api/v1/failure-procedures", &body),
                b.post_json("/api/v1/failure-procedures", &body)
            );
            for r in [&ra, &rb] {
                assert!(
                    r.status == StatusCode::CREATED || r.status == StatusCode::CONFLICT,
                    "{}",
                    r.text()
                );
            }
            assert!(ra.status == StatusCode::CREATED || rb.status == StatusCode::CREATED);
        }
        let versions = scalar(
            &app,
            "SELECT COUNT(DISTINCT version) FROM failure_procedures WHERE system_code = 'facility'",
        )
        .await;
        let rows = scalar(
            &app,
            "SELECT COUNT(*) FROM failure_procedures WHERE system_code = 'facility'",
        )
        .await;
        assert_eq!(versions, rows);
        assert!(rows >= 5);
    }
);
