//! Self-inspection (K32.1, K29, K32.3) through HTTP, on both engines: the
//! セキュリティ統括者 orders a campaign, each department's セキュリティ管理者
//! answers with evidence and submits, the 統括者 returns and compiles;
//! the `k32.1.inspection-unfiled` check; bad input (malformed dates,
//! unknown questions, oversize evidence, answers to a closed campaign or
//! after submission) answered with a clear message, never a 5xx.

mod common;

use axum::http::{Method, StatusCode};
use common::{
    login_with_role, manager_of, multipart, plain_staff, records_with, scalar, Client, TestApp,
};
use serde_json::{json, Value};
use std::future::Future;

const DAY: i64 = 86_400;

/// A fresh app whose mail is queued in the outbox (nothing sends it).
async fn with_outbox<F, Fut>(engine: common::Engine, f: F)
where
    F: FnOnce(TestApp) -> Fut,
    Fut: Future<Output = ()>,
{
    let app = common::app_with(engine, |c| {
        c.mail.smtp_host = "127.0.0.1".into();
        c.mail.smtp_port = 9;
        c.mail.from = "mamori@city.edogawa.example".into();
    })
    .await;
    if let Some(app) = app {
        f(app).await;
    }
}

macro_rules! both_engines_outbox {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                with_outbox(common::Engine::Sqlite, $body).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                with_outbox(common::Engine::Postgres, $body).await;
            }
        }
    };
}

fn director(app: &TestApp) -> String {
    login_with_role(app, "セキュリティ統括者")
}

async fn unit_id(app: &TestApp, name: &str) -> i64 {
    scalar(
        app,
        &format!("SELECT id FROM org_units WHERE name = '{name}'"),
    )
    .await
}

/// The ward's date `days` from today, as YYYY-MM-DD.
fn date_in(app: &TestApp, days: i64) -> time::Date {
    app.state.clock().today() + time::Duration::days(days)
}

fn ymd(d: time::Date) -> String {
    mamori_server::clock::date_str(d)
}

/// Orders a campaign for the named departments; returns its id.
async fn open(c: &mut Client, app: &TestApp, title: &str, due_in_days: i64, units: &[&str]) -> i64 {
    let mut ids = Vec::new();
    for u in units {
        ids.push(unit_id(app, u).await);
    }
    let res = c
        .post_json(
            "/api/v1/inspection-campaigns",
            &json!({ "title": title, "due_on": ymd(date_in(app, due_in_days)), "org_unit_ids": ids }),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    res.json()["id"].as_i64().unwrap()
}

/// The inspection of `unit` in a campaign, as its viewer sees the list.
async fn inspection_of(c: &mut Client, campaign: i64, unit: &str) -> Value {
    let res = c
        .get(&format!("/api/v1/inspections?campaign_id={campaign}"))
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    res.json()
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["org_unit_name"] == unit)
        .cloned()
        .unwrap_or_else(|| panic!("no inspection of {unit}: {}", res.text()))
}

async fn question_ids(c: &mut Client, inspection: i64) -> Vec<i64> {
    let v = c.get(&format!("/api/v1/inspections/{inspection}")).await;
    assert_eq!(v.status, StatusCode::OK, "{}", v.text());
    v.json()["questions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["id"].as_i64().unwrap())
        .collect()
}

/// Answers every question with `answer` (and a comment).
async fn answer_all(c: &mut Client, inspection: i64, answer: &str) {
    let answers: Vec<Value> = question_ids(c, inspection)
        .await
        .into_iter()
        .map(|q| json!({ "question_id": q, "answer": answer, "comment": "確認済み" }))
        .collect();
    let res = c
        .put_json(
            &format!("/api/v1/inspections/{inspection}/answers"),
            &json!({ "answers": answers }),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
}

fn code(res: &common::Response) -> String {
    let v = res.json();
    v["errors"][0]["code"]
        .as_str()
        .or(v["code"].as_str())
        .unwrap_or("")
        .to_string()
}

both_engines_outbox!(
    k32_1_campaign_from_order_to_compilation,
    |app: TestApp| async move {
        let mut d = app.logged_in(&director(&app)).await;
        let outbox_before = scalar(&app, "SELECT COUNT(*) FROM mail_outbox").await;
        let cid = open(
            &mut d,
            &app,
            "令和8年度 自己点検",
            30,
            &["戸籍住民課", "企画課"],
        )
        .await;
        // One inspection per department, each mailed to its manager.
        assert_eq!(
            scalar(
                &app,
                &format!("SELECT COUNT(*) FROM inspections WHERE campaign_id = {cid}")
            )
            .await,
            2
        );
        assert_eq!(
            scalar(&app, "SELECT COUNT(*) FROM mail_outbox").await - outbox_before,
            2
        );
        assert_eq!(records_with(&app, "inspection.campaign_open").await, 1);

        // The questions are the catalog's procedural controls, with clauses.
        let camp = d
            .get(&format!("/api/v1/inspection-campaigns/{cid}"))
            .await
            .json();
        let questions = camp["questions"].as_array().unwrap().clone();
        assert!(!questions.is_empty());
        for q in &questions {
            assert!(!q["clauses"].as_array().unwrap().is_empty(), "{q}");
            assert!(!q["question_ja"].as_str().unwrap().is_empty(), "{q}");
        }

        // The manager of 戸籍住民課 sees only their department's inspection.
        let koseki = manager_of(&app, "戸籍住民課");
        let mut m = app.logged_in(&koseki).await;
        let mine = m.get("/api/v1/inspections").await.json();
        assert_eq!(mine.as_array().unwrap().len(), 1, "{mine}");
        let iid = mine[0]["id"].as_i64().unwrap();
        assert_eq!(mine[0]["status"], "not_started");
        let kikaku = inspection_of(&mut d, cid, "企画課").await["id"]
            .as_i64()
            .unwrap();
        assert_eq!(
            m.get(&format!("/api/v1/inspections/{kikaku}")).await.status,
            StatusCode::NOT_FOUND
        );
        // Plain staff see none of it.
        let mut s = app.logged_in(&plain_staff(&app, "戸籍住民課")).await;
        assert_eq!(
            s.get("/api/v1/inspections").await.status,
            StatusCode::FORBIDDEN
        );
        // Only the 統括者 orders.
        let res = m
            .post_json(
                "/api/v1/inspection-campaigns",
                &json!({ "title": "x", "due_on": ymd(date_in(&app, 3)) }),
            )
            .await;
        assert_eq!(res.status, StatusCode::FORBIDDEN);

        // A draft: the first answer only.
        let qids = question_ids(&mut m, iid).await;
        let res = m
            .put_json(
                &format!("/api/v1/inspections/{iid}/answers"),
                &json!({ "answers": [{ "question_id": qids[0], "answer": "not_conform" }] }),
            )
            .await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.text());
        assert_eq!(res.json()["status"], "draft");
        // Submitting an incomplete one names the unanswered question.
        if qids.len() > 1 {
            let res = m
                .post_json(&format!("/api/v1/inspections/{iid}/submit"), &json!({}))
                .await;
            assert_eq!(
                res.status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{}",
                res.text()
            );
            assert!(
                res.text().contains("inspection.unanswered"),
                "{}",
                res.text()
            );
        }
        // Everything conforms but the first, which does not and needs a comment.
        answer_all(&mut m, iid, "conforms").await;
        let res = m
            .put_json(
                &format!("/api/v1/inspections/{iid}/answers"),
                &json!({ "answers": [{ "question_id": qids[0], "answer": "not_conform", "comment": "" }] }),
            )
            .await;
        assert_eq!(res.status, StatusCode::OK);
        let res = m
            .request(
                Method::POST,
                &format!("/api/v1/inspections/{iid}/submit"),
                None,
                vec![],
            )
            .await;
        assert_eq!(
            res.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            res.text()
        );
        assert_eq!(code(&res), "inspection.comment_required");
        assert_eq!(res.json()["field"], format!("c-{}", qids[0]));
        m.put_json(
            &format!("/api/v1/inspections/{iid}/answers"),
            &json!({ "answers": [{ "question_id": qids[0], "answer": "not_conform", "comment": "持出し記録が未整備。12月までに整備する。" }] }),
        )
        .await;
        let res = m
            .request(
                Method::POST,
                &format!("/api/v1/inspections/{iid}/submit"),
                None,
                vec![],
            )
            .await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.text());
        assert_eq!(res.json()["status"], "submitted");
        assert_eq!(res.json()["editable"], false);
        // The 統括者 is told.
        assert!(
            scalar(
                &app,
                "SELECT COUNT(*) FROM mail_outbox WHERE subject LIKE '%自己点検の提出%'"
            )
            .await
                >= 1
        );

        // Read-only after submission: a change is refused and changes nothing.
        let res = m
            .put_json(
                &format!("/api/v1/inspections/{iid}/answers"),
                &json!({ "answers": [{ "question_id": qids[0], "answer": "conforms" }] }),
            )
            .await;
        assert_eq!(res.status, StatusCode::CONFLICT, "{}", res.text());
        assert_eq!(code(&res), "inspection.already_submitted");
        assert!(res.json()["detail"].as_str().unwrap().contains("提出済み"));
        let v = m.get(&format!("/api/v1/inspections/{iid}")).await.json();
        assert_eq!(v["questions"][0]["answer"], "not_conform");

        // The compilation (ward-wide viewers only).
        assert_eq!(
            m.get(&format!("/api/v1/inspection-campaigns/{cid}/compilation"))
                .await
                .status,
            StatusCode::FORBIDDEN
        );
        let comp = d
            .get(&format!("/api/v1/inspection-campaigns/{cid}/compilation"))
            .await;
        assert_eq!(comp.status, StatusCode::OK, "{}", comp.text());
        let comp = comp.json();
        assert_eq!(comp["counts"]["submitted"], 1);
        assert_eq!(comp["counts"]["not_started"], 1);
        assert_eq!(comp["questions"][0]["not_conform"], 1);
        assert_eq!(comp["questions"][0]["pending"], 1);
        if qids.len() > 1 {
            assert_eq!(comp["questions"][1]["conforms"], 1);
        }
        let nc = comp["nonconformities"].as_array().unwrap();
        assert_eq!(nc.len(), 1, "{comp}");
        assert_eq!(nc[0]["org_unit_name"], "戸籍住民課");
        assert_eq!(nc[0]["clauses"], questions[0]["clauses"]);
        let mut cio = app
            .logged_in(&login_with_role(&app, "最高情報統括責任者"))
            .await;
        assert_eq!(
            cio.get(&format!("/api/v1/inspection-campaigns/{cid}/compilation"))
                .await
                .status,
            StatusCode::OK
        );
        // The compilation is a function the reports can call too.
        {
            let mut conn = app.state.db().pool().acquire().await.unwrap();
            let c = mamori_server::inspections::service::compile(
                &mut conn,
                cid,
                app.state.clock().today(),
            )
            .await
            .unwrap();
            assert_eq!(c.nonconformities.len(), 1);
            assert_eq!(c.departments.len(), 2);
        }

        // Returned for correction, with a reason; the manager fixes and resubmits.
        let res = d
            .post_json(
                &format!("/api/v1/inspections/{iid}/return"),
                &json!({ "reason": " " }),
            )
            .await;
        assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(res.json()["field"], "reason");
        let res = d
            .post_json(
                &format!("/api/v1/inspections/{iid}/return"),
                &json!({ "reason": "設問1の対応期限を明記してください。" }),
            )
            .await;
        assert_eq!(res.status, StatusCode::NO_CONTENT, "{}", res.text());
        let res = d
            .post_json(
                &format!("/api/v1/inspections/{iid}/return"),
                &json!({ "reason": "再度" }),
            )
            .await;
        assert_eq!(res.status, StatusCode::CONFLICT);
        assert_eq!(code(&res), "inspection.not_submitted");
        let v = m.get(&format!("/api/v1/inspections/{iid}")).await.json();
        assert_eq!(v["status"], "returned");
        assert_eq!(v["return_reason"], "設問1の対応期限を明記してください。");
        assert_eq!(v["editable"], true);
        m.put_json(
            &format!("/api/v1/inspections/{iid}/answers"),
            &json!({ "answers": [{ "question_id": qids[0], "answer": "partly", "comment": "令和8年12月末までに整備する。" }] }),
        )
        .await;
        let res = m
            .request(
                Method::POST,
                &format!("/api/v1/inspections/{iid}/submit"),
                None,
                vec![],
            )
            .await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.text());
        let comp = d
            .get(&format!("/api/v1/inspection-campaigns/{cid}/compilation"))
            .await
            .json();
        assert_eq!(comp["nonconformities"][0]["answer"], "partly");

        assert_eq!(records_with(&app, "inspection.submit").await, 2);
        assert_eq!(records_with(&app, "inspection.return").await, 1);
        assert!(records_with(&app, "inspection.answer").await >= 4);

        // The questions are a snapshot: the database refuses to change them.
        let mut conn = app.state.db().pool().acquire().await.unwrap();
        let changed = sqlx::query("UPDATE inspection_questions SET question_ja = 'x'")
            .execute(&mut *conn)
            .await;
        assert!(changed.is_err());
    }
);

both_engines!(
    bad_input_names_the_field_and_loses_nothing,
    |app: TestApp| async move {
        let mut d = app.logged_in(&director(&app)).await;
        let post = |c: &mut Client, body: Value| {
            let mut c = c.clone();
            async move { c.post_json("/api/v1/inspection-campaigns", &body).await }
        };
        // Malformed and impossible dates name their field.
        for (body, field, want) in [
            (
                json!({ "title": "t", "due_on": "2026-13-45" }),
                "due_on",
                "field.bad_date",
            ),
            (
                json!({ "title": "t", "due_on": "来年" }),
                "due_on",
                "field.bad_date",
            ),
            (
                json!({ "title": "t", "due_on": ymd(date_in(&app, 10)), "starts_on": "2026/02/30" }),
                "starts_on",
                "field.bad_date",
            ),
            (
                json!({ "title": "t", "due_on": ymd(date_in(&app, -1)) }),
                "due_on",
                "inspection.due_in_past",
            ),
            (
                json!({ "title": "t", "due_on": ymd(date_in(&app, 5)), "starts_on": ymd(date_in(&app, 9)) }),
                "due_on",
                "inspection.due_before_start",
            ),
            (
                json!({ "title": "", "due_on": ymd(date_in(&app, 5)) }),
                "title",
                "field.required",
            ),
            (json!({ "title": "t" }), "due_on", "field.required"),
            (
                json!({ "title": "t", "due_on": ymd(date_in(&app, 5)), "fiscal_year": 99 }),
                "fiscal_year",
                "inspection.bad_fiscal_year",
            ),
            (
                json!({ "title": "t", "due_on": ymd(date_in(&app, 5)), "org_unit_ids": [999999] }),
                "org_unit_ids[0]",
                "inspection.not_a_department",
            ),
        ] {
            let res = post(&mut d, body.clone()).await;
            assert_eq!(
                res.status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{body}: {}",
                res.text()
            );
            let errs = res.json()["errors"].clone();
            assert!(
                errs.as_array()
                    .unwrap()
                    .iter()
                    .any(|e| e["field"] == field && e["code"] == want),
                "{body}: {errs}"
            );
        }
        let res = post(
            &mut d,
            json!({ "title": "t", "due_on": "2030-01-01", "colour": "red" }),
        )
        .await;
        assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            scalar(&app, "SELECT COUNT(*) FROM inspection_campaigns").await,
            0
        );
        // A 和暦 deadline is a date like any other.
        let due = date_in(&app, 40);
        let res = post(
            &mut d,
            json!({ "title": "和暦", "due_on": mamori_policy::wareki::format_date_ja(due), "org_unit_ids": [unit_id(&app, "戸籍住民課").await] }),
        )
        .await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
        let cid = res.json()["id"].as_i64().unwrap();
        assert_eq!(
            d.get(&format!("/api/v1/inspection-campaigns/{cid}"))
                .await
                .json()["due_on"],
            ymd(due)
        );

        let mut m = app.logged_in(&manager_of(&app, "戸籍住民課")).await;
        let iid = inspection_of(&mut m, cid, "戸籍住民課").await["id"]
            .as_i64()
            .unwrap();
        let qids = question_ids(&mut m, iid).await;
        // An unknown question, a bad answer: named, nothing saved.
        let res = m
            .put_json(
                &format!("/api/v1/inspections/{iid}/answers"),
                &json!({ "answers": [{ "question_id": qids[0], "answer": "conforms" }, { "question_id": 987654, "answer": "conforms" }] }),
            )
            .await;
        assert_eq!(
            res.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            res.text()
        );
        assert_eq!(res.json()["field"], "answers[1].question_id");
        assert_eq!(code(&res), "inspection.unknown_question");
        let res = m
            .put_json(
                &format!("/api/v1/inspections/{iid}/answers"),
                &json!({ "answers": [{ "question_id": qids[0], "answer": "maybe" }] }),
            )
            .await;
        assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(res.json()["field"], format!("a-{}", qids[0]));
        assert_eq!(
            scalar(&app, "SELECT COUNT(*) FROM inspection_answers").await,
            0
        );
        // Odd ids and queries are a 404 or a named 422, never a 5xx.
        for path in [
            "/api/v1/inspections/abc".to_string(),
            "/api/v1/inspections/-1".to_string(),
            "/api/v1/inspection-campaigns/99999999999999999999".to_string(),
        ] {
            assert_eq!(m.get(&path).await.status, StatusCode::NOT_FOUND, "{path}");
        }
        let res = m.get("/api/v1/inspections?campaign_id=xyz").await;
        assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(res.json()["field"], "campaign_id");

        // Evidence: over the ward's limit is refused with the limit named,
        // nothing stored, the answers kept.
        m.put_json(
            &format!("/api/v1/inspections/{iid}/answers"),
            &json!({ "answers": [{ "question_id": qids[0], "answer": "partly", "comment": "一部未実施" }] }),
        )
        .await;
        {
            let mut conn = app.state.db().pool().acquire().await.unwrap();
            mamori_server::settings::put(&mut conn, "inspection.evidence_max_kb", 16, None, 0)
                .await
                .unwrap();
        }
        let url = format!(
            "/api/v1/inspections/{iid}/evidence?question_id={}&name=big.txt",
            qids[0]
        );
        let res = m
            .send(
                Method::POST,
                &url,
                &[("x-mamori-upload", "1")],
                vec![b'a'; 16 * 1024 + 1],
            )
            .await;
        assert_eq!(
            res.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            res.text()
        );
        assert_eq!(code(&res), "incident.attachment_too_large");
        assert_eq!(res.json()["field"], "file");
        assert!(res.json()["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("16 KiB"));
        assert_eq!(
            scalar(&app, "SELECT COUNT(*) FROM inspection_evidence").await,
            0
        );
        let v = m.get(&format!("/api/v1/inspections/{iid}")).await.json();
        assert_eq!(v["questions"][0]["answer"], "partly");
        assert_eq!(v["questions"][0]["comment"], "一部未実施");
        // Evidence for an unknown question, or without the upload header.
        let res = m
            .send(
                Method::POST,
                &format!("/api/v1/inspections/{iid}/evidence?question_id=987654&name=a.txt"),
                &[("x-mamori-upload", "1")],
                b"x".to_vec(),
            )
            .await;
        assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(code(&res), "inspection.unknown_question");
        let res = m
            .send(
                Method::POST,
                &format!(
                    "/api/v1/inspections/{iid}/evidence?question_id={}&name=a.txt",
                    qids[0]
                ),
                &[],
                b"x".to_vec(),
            )
            .await;
        assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
        // Within the limit it is kept and can be read back.
        let res = m
            .send(
                Method::POST,
                &format!(
                    "/api/v1/inspections/{iid}/evidence?question_id={}&name=点検記録.txt",
                    qids[0]
                ),
                &[("x-mamori-upload", "1")],
                "持出し記録簿の写し".as_bytes().to_vec(),
            )
            .await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
        let eurl = res.json()["url"].as_str().unwrap().to_string();
        let got = m.get(&eurl).await;
        assert_eq!(got.status, StatusCode::OK);
        assert_eq!(got.text(), "持出し記録簿の写し");
        assert_eq!(records_with(&app, "inspection.evidence").await, 1);
        // Another department's manager cannot read it.
        let mut other = app.logged_in(&manager_of(&app, "企画課")).await;
        assert_eq!(other.get(&eurl).await.status, StatusCode::NOT_FOUND);

        // The page form: an oversize file is refused beside its question,
        // the answers typed with it are saved, the comment shown again.
        let (ct, body) = multipart(
            &m,
            &[
                (&format!("a-{}", qids[0]), "not_conform"),
                (&format!("c-{}", qids[0]), "台帳が未作成"),
                ("action", "save"),
            ],
            &[(&format!("e-{}", qids[0]), "big.txt", &vec![b'a'; 20 * 1024])],
        )
        .await;
        let res = m
            .request(
                Method::POST,
                &format!("/inspections/{iid}"),
                Some(&ct),
                body,
            )
            .await;
        assert_eq!(
            res.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            res.text()
        );
        let page = res.text();
        assert!(page.contains("大きすぎます"), "{page}");
        assert!(page.contains("台帳が未作成"));
        assert!(page.contains("回答は一時保存しました"));
        let v = m.get(&format!("/api/v1/inspections/{iid}")).await.json();
        assert_eq!(v["questions"][0]["answer"], "not_conform");
        assert_eq!(
            scalar(&app, "SELECT COUNT(*) FROM inspection_evidence").await,
            1
        );

        // A closed campaign takes nothing more, with a clear message.
        let res = d
            .post_json(
                &format!("/api/v1/inspection-campaigns/{cid}/close"),
                &json!({}),
            )
            .await;
        assert_eq!(res.status, StatusCode::NO_CONTENT, "{}", res.text());
        let res = d
            .post_json(
                &format!("/api/v1/inspection-campaigns/{cid}/close"),
                &json!({}),
            )
            .await;
        assert_eq!(res.status, StatusCode::CONFLICT);
        let res = m
            .put_json(
                &format!("/api/v1/inspections/{iid}/answers"),
                &json!({ "answers": [{ "question_id": qids[0], "answer": "conforms" }] }),
            )
            .await;
        assert_eq!(res.status, StatusCode::CONFLICT, "{}", res.text());
        assert_eq!(code(&res), "inspection.campaign_closed");
        assert!(res.json()["detail"]
            .as_str()
            .unwrap()
            .contains("締め切られています"));
        let res = m
            .request(
                Method::POST,
                &format!("/api/v1/inspections/{iid}/submit"),
                None,
                vec![],
            )
            .await;
        assert_eq!(res.status, StatusCode::CONFLICT);
        let res = m
            .send(
                Method::POST,
                &format!(
                    "/api/v1/inspections/{iid}/evidence?question_id={}&name=a.txt",
                    qids[0]
                ),
                &[("x-mamori-upload", "1")],
                b"x".to_vec(),
            )
            .await;
        assert_eq!(res.status, StatusCode::CONFLICT);
        let (ct, body) = multipart(
            &m,
            &[(&format!("a-{}", qids[0]), "conforms"), ("action", "save")],
            &[],
        )
        .await;
        let res = m
            .request(
                Method::POST,
                &format!("/inspections/{iid}"),
                Some(&ct),
                body,
            )
            .await;
        assert_eq!(res.status, StatusCode::CONFLICT);
        assert!(res.text().contains("締め切られています"));
        let v = m.get(&format!("/api/v1/inspections/{iid}")).await.json();
        assert_eq!(v["questions"][0]["answer"], "not_conform");
        assert_eq!(v["editable"], false);
    }
);

/// The departments the unfiled check lists today.
async fn unfiled(app: &TestApp) -> Vec<String> {
    let today = ymd(app.state.clock().today());
    let mut conn = app.state.db().pool().acquire().await.unwrap();
    mamori_server::inspections::check::unfiled(&mut conn, &today)
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.org_unit_name)
        .collect()
}

/// What the checks framework says of the check after a run now: (passed,
/// items), and the items in one department.
async fn framework_says(app: &TestApp, unit: &str) -> (bool, i64, i64) {
    mamori_server::compliance::run_all(&app.state)
        .await
        .unwrap();
    let mut conn = app.state.db().pool().acquire().await.unwrap();
    let all = mamori_server::compliance::latest(&mut conn).await.unwrap();
    let s = all
        .into_iter()
        .find(|s| s.id == mamori_server::inspections::check::ID)
        .expect("the check is registered");
    let uid = unit_id(app, unit).await;
    let mine = mamori_server::compliance::latest_for_unit(&mut conn, uid)
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.id == mamori_server::inspections::check::ID)
        .unwrap();
    (s.passed.unwrap(), s.item_count, mine.item_count)
}

both_engines!(
    k32_1_inspection_unfiled_check_fails_then_passes,
    |app: TestApp| async move {
        let mut d = app.logged_in(&director(&app)).await;
        let cid = open(&mut d, &app, "臨時点検", 0, &["戸籍住民課", "企画課"]).await;
        // Before the deadline has passed nobody is late.
        assert!(unfiled(&app).await.is_empty());
        assert_eq!(framework_says(&app, "企画課").await, (true, 0, 0));
        app.state.clock().advance(2 * DAY);
        let mut late = unfiled(&app).await;
        late.sort();
        assert_eq!(late, vec!["企画課".to_string(), "戸籍住民課".to_string()]);
        assert_eq!(framework_says(&app, "企画課").await, (false, 2, 1));
        // A late submission is still accepted while the campaign is open.
        let mut m = app.logged_in(&manager_of(&app, "戸籍住民課")).await;
        let iid = inspection_of(&mut m, cid, "戸籍住民課").await["id"]
            .as_i64()
            .unwrap();
        answer_all(&mut m, iid, "conforms").await;
        let res = m
            .request(
                Method::POST,
                &format!("/api/v1/inspections/{iid}/submit"),
                None,
                vec![],
            )
            .await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.text());
        assert_eq!(unfiled(&app).await, vec!["企画課".to_string()]);
        assert_eq!(framework_says(&app, "戸籍住民課").await, (false, 1, 0));
        // The department's inspection page shows its check results beside the questions.
        let v = m.get(&format!("/api/v1/inspections/{iid}")).await.json();
        assert_eq!(v["checks_frozen"], true);
        // Sessions idle out while the clock moves: log in again.
        let mut d = app.logged_in(&director(&app)).await;
        // Closing the campaign does not excuse the department.
        d.post_json(
            &format!("/api/v1/inspection-campaigns/{cid}/close"),
            &json!({}),
        )
        .await;
        assert_eq!(unfiled(&app).await, vec!["企画課".to_string()]);
        // The next campaign past its deadline is what counts, once it is filed.
        let next = open(&mut d, &app, "次の点検", 0, &["企画課"]).await;
        let mut k = app.logged_in(&manager_of(&app, "企画課")).await;
        let kid = inspection_of(&mut k, next, "企画課").await["id"]
            .as_i64()
            .unwrap();
        answer_all(&mut k, kid, "not_applicable").await;
        let res = k
            .request(
                Method::POST,
                &format!("/api/v1/inspections/{kid}/submit"),
                None,
                vec![],
            )
            .await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.text());
        app.state.clock().advance(2 * DAY);
        assert!(unfiled(&app).await.is_empty(), "{:?}", unfiled(&app).await);
        assert_eq!(framework_says(&app, "企画課").await, (true, 0, 0));
    }
);

both_engines!(pages_order_answer_and_compile, |app: TestApp| async move {
    let mut d = app.logged_in(&director(&app)).await;
    let page = d.get("/inspections").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text().contains("自己点検を指示する"));
    // A malformed date: the form comes back with the message and what was typed.
    let res = d
        .post_form(
            "/inspections/campaigns",
            &[
                ("title", "令和8年度 第2回"),
                ("due_on", "2026-02-31"),
                ("fiscal_year", ""),
            ],
        )
        .await;
    assert_eq!(
        res.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        res.text()
    );
    assert!(res.text().contains("令和8年度 第2回"));
    assert!(res.text().contains("c-due_on-error"));
    let res = d
        .post_form(
            "/inspections/campaigns",
            &[
                ("title", "t"),
                ("due_on", &ymd(date_in(&app, 9))),
                ("fiscal_year", "二〇二六"),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        scalar(&app, "SELECT COUNT(*) FROM inspection_campaigns").await,
        0
    );
    let koseki = unit_id(&app, "戸籍住民課").await.to_string();
    let res = d
        .post_form(
            "/inspections/campaigns",
            &[
                ("title", "令和8年度 第2回"),
                ("due_on", &ymd(date_in(&app, 9))),
                ("org_unit_ids", &koseki),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.text());
    let to = res
        .headers
        .get("location")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let camp = d.get(&to).await;
    assert_eq!(camp.status, StatusCode::OK);
    assert!(camp.text().contains("令和8年度 第2回"));
    assert!(camp.text().contains("戸籍住民課"));

    // The manager answers through the page form, then submits.
    let mut m = app.logged_in(&manager_of(&app, "戸籍住民課")).await;
    let list = m.get("/inspections").await;
    assert!(list.text().contains("令和8年度 第2回"));
    let cid: i64 = to
        .trim_start_matches("/inspections/campaigns/")
        .split('?')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let iid = inspection_of(&mut m, cid, "戸籍住民課").await["id"]
        .as_i64()
        .unwrap();
    let page = m.get(&format!("/inspections/{iid}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text().contains("自動チェックの結果"));
    let qids = question_ids(&mut m, iid).await;
    let fields: Vec<(String, String)> = qids
        .iter()
        .flat_map(|q| {
            [
                (format!("a-{q}"), "conforms".to_string()),
                (format!("c-{q}"), String::new()),
            ]
        })
        .chain([("action".to_string(), "submit".to_string())])
        .collect();
    let refs: Vec<(&str, &str)> = fields
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let (ct, body) = multipart(
        &m,
        &refs,
        &[(&format!("e-{}", qids[0]), "記録.txt", "点検記録".as_bytes())],
    )
    .await;
    let res = m
        .request(
            Method::POST,
            &format!("/inspections/{iid}"),
            Some(&ct),
            body,
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.text());
    let page = m.get(&format!("/inspections/{iid}?done=submitted")).await;
    assert!(page.text().contains("提出しました"));
    assert!(page.text().contains("記録.txt"));
    assert!(page.text().contains("read-only"));
    // In English too.
    let en = m
        .request_with_cookie(
            Method::GET,
            &format!("/inspections/{iid}"),
            "mamori_lang=en",
        )
        .await;
    assert!(en.text().contains("Submitted"), "{}", en.text());

    // The 統括者 sees the compilation and returns it through the form.
    let camp = d.get(&format!("/inspections/campaigns/{cid}")).await.text();
    assert!(camp.contains("id=\"tally\""));
    assert!(camp.contains("不適合・一部適合"));
    for path in [
        "/inspections".to_string(),
        format!("/inspections/campaigns/{cid}"),
    ] {
        let en = d
            .request_with_cookie(Method::GET, &path, "mamori_lang=en")
            .await;
        assert_eq!(en.status, StatusCode::OK, "{path}");
        assert!(en.text().contains("Self-inspection"), "{path}");
    }
    let res = d
        .post_form(&format!("/inspections/{iid}/return"), &[("reason", "")])
        .await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
    let res = d
        .post_form(
            &format!("/inspections/{iid}/return"),
            &[("reason", "根拠資料を追加してください")],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.text());
    let page = m.get(&format!("/inspections/{iid}")).await.text();
    assert!(page.contains("根拠資料を追加してください"));
    // Staff have no inspection pages.
    let mut s = app.logged_in(&plain_staff(&app, "戸籍住民課")).await;
    assert_eq!(s.get("/inspections").await.status, StatusCode::FORBIDDEN);
});
