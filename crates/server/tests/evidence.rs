//! Evidence freezing (K27.1.3, K25.3) on both engines: records chosen by a
//! query are frozen into a bundle that verifies offline, tampering with any
//! part of it is named, the freeze is itself a record, only the
//! セキュリティ総括管理者 and セキュリティ統括者 may freeze, and bad input is
//! a 422 naming the field.

mod common;

use axum::http::{Method, StatusCode};
use base64::Engine;
use common::{login_with_role, plain_staff, TestApp};
use mamori_ledger::{AccessRecord, Hash, Signer};
use mamori_server::ledger::bundle::{verify_bundle, Bundle, BundleError, KeySource};
use serde_json::{json, Value};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

async fn ingest(app: &TestApp, records: &[Value]) -> Vec<u64> {
    let tok = mamori_server::tokens::create(&app.state, "library", &["ledger:write".into()])
        .await
        .unwrap()
        .1;
    let req = axum::http::Request::builder()
        .method(Method::POST)
        .uri("/api/v1/ledger/records")
        .header("authorization", format!("Bearer {tok}"))
        .header("content-type", "application/json")
        .body(axum::body::Body::from(
            Value::from(records.to_vec()).to_string(),
        ))
        .unwrap();
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let res = app.router.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value =
        serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(body["rejected"], json!([]), "{body}");
    body["accepted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["index"].as_u64().unwrap())
        .collect()
}

fn rec(id: usize, actor: &str, result: &str, time: &str) -> Value {
    json!({ "event_id": format!("e{id}"), "time": time, "actor": actor, "action": "patron.read",
            "asset": format!("patron/{id}"), "result": result, "detail": { "n": id } })
}

/// 12 records: staff:1 reads on 11-28 and 11-29 (one denied), staff:2 on 11-29.
async fn sample(app: &TestApp) -> Vec<u64> {
    let mut records = Vec::new();
    for i in 0..12 {
        let actor = if i % 3 == 2 { "staff:2" } else { "staff:1" };
        let result = if i == 4 { "denied" } else { "success" };
        let day = if i < 4 { 28 } else { 29 };
        records.push(rec(
            i,
            actor,
            result,
            &format!("2026-11-{day}T09:{i:02}:00+09:00"),
        ));
    }
    ingest(app, &records).await
}

/// Freezes through the API; returns the answer.
async fn freeze(c: &mut common::Client, body: &Value) -> common::Response {
    c.post_json("/api/v1/ledger/evidence", body).await
}

fn field(r: &common::Response) -> String {
    assert_eq!(
        r.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "expected 422: {}",
        r.text()
    );
    assert!(r.content_type().starts_with("application/problem+json"));
    r.json()["field"].as_str().unwrap_or("").to_string()
}

fn edit(file: &[u8], f: impl FnOnce(&mut Bundle)) -> Vec<u8> {
    let mut b: Bundle = serde_json::from_slice(file).unwrap();
    f(&mut b);
    b.to_json().into_bytes()
}

both_engines!(k27_1_3_freeze_download_verify, |app: TestApp| async move {
    let idx = sample(&app).await;
    let chief = login_with_role(&app, "セキュリティ総括管理者");
    let mut c = app.logged_in(&chief).await;

    // staff:1 on 2026-11-29 (JST): records 4, 6, 7, 9, 10.
    let r = freeze(
        &mut c,
        &json!({ "reason": "事故 2026-001 の調査", "query": {
            "actor": "staff:1", "system": "library", "action_prefix": "patron.",
            "from": "R8.11.29", "to": "2026-11-29" } }),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let answer = r.json();
    assert_eq!(answer["record_count"], 5);
    let url = answer["url"].as_str().unwrap().to_string();
    let id = answer["id"].as_i64().unwrap();

    let file = c.get(&url).await;
    assert_eq!(file.status, StatusCode::OK, "{}", file.text());
    let disposition = file.headers["content-disposition"].to_str().unwrap();
    assert!(disposition.starts_with("attachment"), "{disposition}");
    assert!(disposition.contains(&format!("mamori-evidence-{id}.json")));

    // The bundle: exact leaf bytes of the chosen records, who, why, the query.
    let bundle: Bundle = serde_json::from_slice(&file.body).unwrap();
    let chosen: Vec<u64> = bundle.records.iter().map(|r| r.index).collect();
    let expect: Vec<u64> = [4, 6, 7, 9, 10].iter().map(|&i| idx[i]).collect();
    assert_eq!(chosen, expect);
    for r in &bundle.records {
        let leaf = AccessRecord::decode(&B64.decode(&r.leaf).unwrap()).unwrap();
        assert_eq!(leaf.actor, "staff:1");
        assert_eq!(leaf.system, "library");
    }
    assert_eq!(bundle.reason, "事故 2026-001 の調査");
    assert_eq!(bundle.frozen_by_login, chief);
    assert_eq!(bundle.query["actor"], "staff:1");
    assert!(bundle.frozen_at.ends_with("+09:00"), "{}", bundle.frozen_at);

    // It verifies with the key in it, and with the server's published key.
    let s = verify_bundle(&file.body, None).expect("the bundle verifies");
    assert_eq!(s.records, 5);
    assert_eq!(s.key_source, KeySource::Bundle);
    assert_eq!(s.records_digest.to_hex(), answer["records_digest"]);
    let key = c.get("/api/v1/ledger/key").await.text();
    let s = verify_bundle(&file.body, Some(key.trim())).expect("verifies with the trusted key");
    assert_eq!(s.key_source, KeySource::Trusted);
    assert!(s.bundled_key_matches);

    // Tampering, each named.
    let flipped_leaf = edit(&file.body, |b| {
        let mut leaf = B64.decode(&b.records[2].leaf).unwrap();
        let last = leaf.len() - 1;
        leaf[last] ^= 1;
        b.records[2].leaf = B64.encode(leaf);
    });
    match verify_bundle(&flipped_leaf, Some(key.trim())) {
        Err(BundleError::Record {
            index, position, ..
        }) => {
            assert_eq!((index, position), (expect[2], 2))
        }
        other => panic!("a flipped leaf byte: {other:?}"),
    }
    let flipped_proof = edit(&file.body, |b| {
        let mut h = Hash::from_base64(&b.records[4].inclusion_proof[0]).unwrap();
        h.0[0] ^= 0x40;
        b.records[4].inclusion_proof[0] = h.to_base64();
    });
    match verify_bundle(&flipped_proof, None) {
        Err(BundleError::Record { index, .. }) => assert_eq!(index, expect[4]),
        other => panic!("a flipped proof byte: {other:?}"),
    }
    let flipped_sig = edit(&file.body, |b| {
        let (text, sig) = b.checkpoint.trim_end().rsplit_once(' ').unwrap();
        let mut raw = B64.decode(sig).unwrap();
        raw[20] ^= 1;
        b.checkpoint = format!("{text} {}\n", B64.encode(raw));
    });
    assert!(
        matches!(
            verify_bundle(&flipped_sig, None),
            Err(BundleError::Signature { .. })
        ),
        "a flipped signature byte"
    );
    let origin = bundle.origin.clone();
    let other = Signer::generate(&origin)
        .unwrap()
        .verifier()
        .to_key_string();
    let swapped = edit(&file.body, |b| b.verifier_key = other.clone());
    let e = verify_bundle(&swapped, None).expect_err("another key in the file");
    assert!(matches!(e, BundleError::Signature { .. }), "{e}");
    assert!(e.to_string().contains(&other), "{e}");
    // A trusted key catches the swap that the bundled key cannot.
    assert!(matches!(
        verify_bundle(&file.body, Some(&other)),
        Err(BundleError::Signature {
            key_source: KeySource::Trusted,
            ..
        })
    ));
    assert!(verify_bundle(b"garbage", None)
        .expect_err("garbage")
        .is_malformed());

    // The freeze and the download are records, without record content.
    let mut conn = app.state.db().pool().acquire().await.unwrap();
    let (target, detail, clause): (String, String, String) =
        sqlx::query_as("SELECT target, detail, clause FROM records WHERE action = 'ledger.freeze'")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
    drop(conn);
    assert_eq!(target, format!("evidence:{id}"));
    assert_eq!(clause, "K27.1.3");
    let detail: Value = serde_json::from_str(&detail).unwrap();
    assert_eq!(detail["reason"], "事故 2026-001 の調査");
    assert_eq!(detail["count"], 5);
    assert_eq!(detail["checkpoint_size"], s.tree_size);
    assert_eq!(detail["records_digest"], answer["records_digest"]);
    assert!(!detail.to_string().contains("patron"), "{detail}");
    assert_eq!(
        common::records_with(&app, "ledger.evidence_download").await,
        1
    );

    // The freeze reaches the ledger, where it can itself be frozen.
    while app.state.ledger().move_outbox().await.unwrap() {}
    let r = freeze(
        &mut c,
        &json!({ "reason": "freezes", "query": { "system": "mamori", "action_prefix": "ledger.freeze" } }),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(r.json()["record_count"], 1);

    // Explicit indexes, alone and added to criteria.
    let r = freeze(
        &mut c,
        &json!({ "reason": "r", "query": { "actor": "staff:2", "indexes": [idx[0], idx[2]] } }),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    // staff:2 has 2, 5, 8, 11; index 0 is added.
    assert_eq!(r.json()["record_count"], 5);
    let r = freeze(
        &mut c,
        &json!({ "reason": "r", "query": { "indexes": [idx[3]], "result": "denied" } }),
    )
    .await;
    assert_eq!(r.json()["record_count"], 2, "{}", r.text());

    // The list, newest first.
    let list = c.get("/api/v1/ledger/evidence").await.json();
    assert_eq!(list.as_array().unwrap().len(), 4);
    assert_eq!(list[3]["id"], id);
    assert_eq!(list[3]["record_count"], 5);
    assert_eq!(list[3]["url"], url);
    assert_eq!(
        c.get("/api/v1/ledger/evidence/999").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        c.get("/api/v1/ledger/evidence/x").await.status,
        StatusCode::NOT_FOUND
    );

    // The page: Japanese by default, the list and the form; freezing from it.
    let page = c.get("/ledger/evidence").await;
    assert_eq!(page.status, StatusCode::OK);
    let html = page.text();
    assert!(html.contains("証拠保全"), "{html}");
    // minijinja escapes `/` in attributes.
    assert!(html.contains(&url.replace('/', "&#x2f;")), "{html}");
    assert!(html.contains("name=\"csrf\""));
    let r = c
        .post_form(
            "/ledger/evidence",
            &[
                ("reason", "画面から"),
                ("indexes", &format!("{}-{}", idx[0], idx[1])),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    assert_eq!(
        r.headers["location"].to_str().unwrap(),
        "/ledger/evidence?done=frozen"
    );
    let r = c
        .post_form("/ledger/evidence", &[("reason", ""), ("actor", "staff:1")])
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().contains("入力してください"), "{}", r.text());
    let r = c
        .post_form("/ledger/evidence", &[("reason", "x"), ("from", "いつか")])
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().contains("aria-invalid"), "{}", r.text());
    assert_eq!(common::records_with(&app, "ledger.freeze").await, 5);
});

both_engines!(k27_1_3_only_the_chiefs_freeze, |app: TestApp| async move {
    sample(&app).await;
    let director = login_with_role(&app, "セキュリティ統括者");
    let mut d = app.logged_in(&director).await;
    let r = freeze(
        &mut d,
        &json!({ "reason": "r", "query": { "indexes": [0] } }),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let url = r.json()["url"].as_str().unwrap().to_string();

    let staff = plain_staff(&app, "企画課");
    let mut s = app.logged_in(&staff).await;
    let r = freeze(
        &mut s,
        &json!({ "reason": "r", "query": { "indexes": [0] } }),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.content_type().starts_with("application/problem+json"));
    assert_eq!(s.get(&url).await.status, StatusCode::FORBIDDEN);
    assert_eq!(
        s.get("/api/v1/ledger/evidence").await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        s.get("/ledger/evidence").await.status,
        StatusCode::FORBIDDEN
    );
    let manager = common::manager_of(&app, "戸籍住民課");
    let mut m = app.logged_in(&manager).await;
    assert_eq!(m.get(&url).await.status, StatusCode::FORBIDDEN);
    assert_eq!(common::records_with(&app, "ledger.freeze").await, 1);
});

both_engines!(
    k27_1_3_bad_input_is_422_naming_the_field,
    |app: TestApp| async move {
        let idx = sample(&app).await;
        let chief = login_with_role(&app, "セキュリティ総括管理者");
        let mut c = app.logged_in(&chief).await;
        let q = |query: Value| json!({ "reason": "incident", "query": query });
        let cases: Vec<(Value, &str)> = vec![
            (
                json!({ "reason": "  ", "query": { "actor": "staff:1" } }),
                "reason",
            ),
            (json!({ "query": { "actor": "staff:1" } }), "reason"),
            (q(json!({})), "query"),
            (q(json!({ "actor": "nobody" })), "query"),
            (q(json!({ "from": "2026-02-30" })), "query.from"),
            (q(json!({ "to": "tomorrow" })), "query.to"),
            (
                q(json!({ "from": "2026-11-29", "to": "2026-11-28" })),
                "query.to",
            ),
            (q(json!({ "result": "ok" })), "query.result"),
            (q(json!({ "indexes": [idx[11] + 1_000] })), "query.indexes"),
            (q(json!({ "indexes": [-1] })), "query.indexes[0]"),
            (
                q(json!({ "indexes": (0..10_001).collect::<Vec<u64>>() })),
                "query.indexes",
            ),
            (q(json!({ "actor": "x".repeat(201) })), "query.actor"),
            (q(json!({ "colour": "red" })), "query"),
        ];
        for (body, expect) in cases {
            let r = freeze(&mut c, &body).await;
            let f = field(&r);
            assert!(
                f == expect
                    || (expect == "query" && f.starts_with("query"))
                    || (expect == "body" && f == "."),
                "{body}: field {f}, expected {expect}: {}",
                r.text()
            );
        }
        // Not JSON at all.
        let r = c
            .request(
                Method::POST,
                "/api/v1/ledger/evidence",
                Some("application/json"),
                b"{".to_vec(),
            )
            .await;
        assert_eq!(field(&r), "body");
        assert_eq!(common::records_with(&app, "ledger.freeze").await, 0);
        assert_eq!(
            common::scalar(&app, "SELECT COUNT(*) FROM evidence_bundles").await,
            0
        );
    }
);

both_engines!(k27_1_3_at_most_10_000_records, |app: TestApp| async move {
    // 11,000 records: 10,000 by staff:9, 1,000 by staff:8.
    for batch in 0..11 {
        let records: Vec<Value> = (0..1000)
            .map(|k| {
                let i = batch * 1000 + k;
                let actor = if i < 10_000 { "staff:9" } else { "staff:8" };
                rec(i, actor, "success", "2026-11-30T09:00:00+09:00")
            })
            .collect();
        ingest(&app, &records).await;
    }
    let chief = login_with_role(&app, "セキュリティ総括管理者");
    let mut c = app.logged_in(&chief).await;
    for query in [
        json!({ "system": "library" }),
        json!({ "actor": "staff:9", "indexes": [10_500] }),
    ] {
        let r = freeze(&mut c, &json!({ "reason": "r", "query": query })).await;
        assert_eq!(field(&r), "query", "{query}");
        assert!(r.text().contains("10000"), "{}", r.text());
    }
    assert_eq!(
        common::scalar(&app, "SELECT COUNT(*) FROM evidence_bundles").await,
        0
    );
    // Exactly the limit freezes, and verifies.
    let t = std::time::Instant::now();
    let r = freeze(
        &mut c,
        &json!({ "reason": "r", "query": { "actor": "staff:9" } }),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    println!("froze 10,000 records in {:?}", t.elapsed());
    let file = c.get(r.json()["url"].as_str().unwrap()).await;
    let s = verify_bundle(&file.body, None).expect("verifies");
    assert_eq!(s.records, 10_000);
});
