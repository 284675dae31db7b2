//! The ledger over HTTP (SPEC §4), on both engines: ingest with event ids,
//! checkpoints and proofs that verify with the ledger's independent
//! verifier, tiles, Mamori's own records moving in, and verification that
//! finds tampering.

mod common;

use axum::http::{Method, StatusCode};
use base64::Engine;
use common::TestApp;
use mamori_ledger::{Checkpoint, Hash, Verifier};
use serde_json::json;

async fn token(app: &TestApp, system: &str, scopes: &[&str]) -> String {
    let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
    mamori_server::tokens::create(&app.state, system, &scopes)
        .await
        .unwrap()
        .1
}

use common::bearer;

fn rec(id: &str) -> serde_json::Value {
    json!({ "event_id": id, "time": "2026-11-29T09:30:00+09:00", "actor": "staff:100101", "action": "read",
            "asset": "patron/123", "result": "success", "source_ip": "192.0.2.10", "detail": { "b": 2, "a": 1 } })
}

fn b64(s: &str) -> Hash {
    let v = base64::engine::general_purpose::STANDARD.decode(s).unwrap();
    Hash(v.try_into().unwrap())
}

async fn checkpoint(app: &TestApp, tok: &str) -> (Checkpoint, String) {
    let r = bearer(app, Method::GET, "/api/v1/ledger/checkpoint", tok, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let key = bearer(app, Method::GET, "/api/v1/ledger/key", tok, None)
        .await
        .text();
    let verifier = Verifier::parse(key.trim()).unwrap();
    let (cp, _note) = mamori_ledger::open_checkpoint(r.text().as_bytes(), &[verifier])
        .expect("checkpoint verifies with the published key");
    (cp, r.text())
}

both_engines!(
    k16_2_ingest_dedup_proofs_and_tiles,
    |app: TestApp| async move {
        let w = token(&app, "library", &["ledger:write"]).await;
        let rd = token(&app, "library", &["ledger:read"]).await;
        let batch = json!([rec("e1"), rec("e2"), { "event_id": "bad", "time": "yesterday", "actor": "a", "action": "b", "asset": "c", "result": "success" },
                       rec("e3"), { "event_id": "x", "unknown": 1 }, rec("e1")]);
        let r = bearer(
            &app,
            Method::POST,
            "/api/v1/ledger/records",
            &w,
            Some(batch),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let a = r.json();
        let accepted = a["accepted"].as_array().unwrap();
        assert_eq!(accepted.len(), 4);
        assert_eq!(
            accepted[0]["index"], accepted[3]["index"],
            "the repeat answers the first index: {a}"
        );
        let rejected = a["rejected"].as_array().unwrap();
        assert_eq!(rejected.len(), 2);
        assert_eq!(rejected[0]["position"], 2);
        assert!(rejected[0]["reason"].as_str().unwrap().contains("time"));
        assert!(rejected[1]["reason"].as_str().unwrap().contains("unknown"));
        // A resend answers the original indexes and adds nothing.
        // Count the library's records only: Mamori's own records may move
        // into the ledger meanwhile.
        let library = || async {
            let mut conn = app.state.db().pool().acquire().await.unwrap();
            let row: (i64,) =
                sqlx::query_as("SELECT COUNT(*) FROM ledger_index WHERE system = 'library'")
                    .fetch_one(&mut *conn)
                    .await
                    .unwrap();
            row.0
        };
        let before = library().await;
        let r = bearer(
            &app,
            Method::POST,
            "/api/v1/ledger/records",
            &w,
            Some(json!([rec("e2"), rec("e3")])),
        )
        .await;
        assert_eq!(r.json()["accepted"][0]["index"], accepted[1]["index"]);
        assert_eq!(library().await, before);

        // Checkpoint, inclusion proof and consistency proof verify independently.
        let (cp1, _) = checkpoint(&app, &rd).await;
        let index = accepted[2]["index"].as_u64().unwrap();
        let got = bearer(
            &app,
            Method::GET,
            &format!("/api/v1/ledger/records/{index}"),
            &rd,
            None,
        )
        .await
        .json();
        assert_eq!(got["event_id"], "e3");
        assert_eq!(got["system"], "library");
        assert_eq!(got["detail"], json!({ "a": 1, "b": 2 }));
        let leaf = b64(got["leaf_hash"].as_str().unwrap());
        let p = bearer(
            &app,
            Method::GET,
            &format!(
                "/api/v1/ledger/proof/inclusion?index={index}&size={}",
                cp1.size
            ),
            &rd,
            None,
        )
        .await
        .json();
        let hashes: Vec<Hash> = p["hashes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| b64(h.as_str().unwrap()))
            .collect();
        assert!(mamori_ledger::verify_inclusion(
            &leaf, index, cp1.size, &hashes, &cp1.root
        ));
        let r = bearer(
            &app,
            Method::POST,
            "/api/v1/ledger/records",
            &w,
            Some(json!([rec("e4"), rec("e5")])),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK);
        let (cp2, _) = checkpoint(&app, &rd).await;
        assert!(cp2.size > cp1.size);
        let p = bearer(
            &app,
            Method::GET,
            &format!(
                "/api/v1/ledger/proof/consistency?from={}&to={}",
                cp1.size, cp2.size
            ),
            &rd,
            None,
        )
        .await
        .json();
        let hashes: Vec<Hash> = p["hashes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| b64(h.as_str().unwrap()))
            .collect();
        assert!(mamori_ledger::verify_consistency(
            cp1.size, cp2.size, &cp1.root, &cp2.root, &hashes
        ));

        // Tiles: the level-0 partial tile holds the leaf hashes; the entry
        // bundle holds the exact leaf bytes.
        let n = cp2.size;
        let t = bearer(
            &app,
            Method::GET,
            &format!("/api/v1/ledger/tile/0/000.p/{n}"),
            &rd,
            None,
        )
        .await;
        assert_eq!(t.status, StatusCode::OK);
        assert_eq!(t.body.len() as u64, 32 * n);
        assert_eq!(
            &t.body[(index as usize) * 32..(index as usize + 1) * 32],
            &leaf.0
        );
        let e = bearer(
            &app,
            Method::GET,
            &format!("/api/v1/ledger/tile/entries/000.p/{n}"),
            &rd,
            None,
        )
        .await;
        assert_eq!(e.status, StatusCode::OK);
        let entries = mamori_ledger::tile::parse_entry_bundle(&e.body).unwrap();
        assert_eq!(Hash::leaf(entries[index as usize]), leaf);

        // Bad requests name the problem.
        for (path, code) in [
            (
                format!("/api/v1/ledger/proof/inclusion?index={n}&size={n}"),
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            (
                format!("/api/v1/ledger/proof/consistency?from=5&to=2"),
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            (
                format!("/api/v1/ledger/proof/consistency?from=0&to={}", n + 100),
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            (
                "/api/v1/ledger/proof/inclusion?index=-1&size=x".into(),
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            (
                "/api/v1/ledger/tile/9/x001/../etc".into(),
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            ("/api/v1/ledger/tile/0/999".into(), StatusCode::NOT_FOUND),
            (
                "/api/v1/ledger/records/999999".into(),
                StatusCode::NOT_FOUND,
            ),
        ] {
            let r = bearer(&app, Method::GET, &path, &rd, None).await;
            assert_eq!(r.status, code, "{path}: {}", r.text());
            assert_eq!(r.content_type(), "application/problem+json", "{path}");
        }
        // Scopes are enforced.
        let r = bearer(
            &app,
            Method::POST,
            "/api/v1/ledger/records",
            &rd,
            Some(json!([rec("z")])),
        )
        .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        let r = bearer(&app, Method::GET, "/api/v1/ledger/records/0", &w, None).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        let r = bearer(
            &app,
            Method::GET,
            "/api/v1/ledger/checkpoint",
            "mamori_nonsense",
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        let too_many: Vec<_> = (0..1001).map(|i| rec(&format!("m{i}"))).collect();
        let r = bearer(
            &app,
            Method::POST,
            "/api/v1/ledger/records",
            &w,
            Some(json!(too_many)),
        )
        .await;
        assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    }
);

both_engines!(
    k16_2_1_mamoris_own_records_enter_the_ledger,
    |app: TestApp| async move {
        while app.state.ledger().move_outbox().await.unwrap() {}
        let own = {
            let mut conn = app.state.db().pool().acquire().await.unwrap();
            mamori_server::records::store::count(&mut conn)
                .await
                .unwrap()
        };
        assert!(own > 0);
        assert!(app.state.ledger().size().await.unwrap() >= own as u64);
        // Moving again adds nothing: event ids make it idempotent.
        let size = app.state.ledger().size().await.unwrap();
        {
            let mut conn = app.state.db().pool().acquire().await.unwrap();
            sqlx::query("UPDATE ledger_outbox SET last_record_id = 0")
                .execute(&mut *conn)
                .await
                .unwrap();
        }
        while app.state.ledger().move_outbox().await.unwrap() {}
        assert_eq!(app.state.ledger().size().await.unwrap(), size);
        let v = app.state.ledger().verify().await.unwrap();
        assert!(v.problem.is_none(), "{v:?}");
        assert_eq!(v.size, size);
    }
);

both_engines!(k16_2_2_tampering_is_found, |app: TestApp| async move {
    let w = token(&app, "facility", &["ledger:write"]).await;
    let recs: Vec<_> = (0..300).map(|i| rec(&format!("t{i}"))).collect();
    let r = bearer(
        &app,
        Method::POST,
        "/api/v1/ledger/records",
        &w,
        Some(json!(recs)),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let _ = app
        .state
        .ledger()
        .checkpoint(app.state.clock().unix())
        .await
        .unwrap();
    assert!(app.state.ledger().verify().await.unwrap().problem.is_none());
    let victim = r.json()["accepted"][150]["index"].as_u64().unwrap();
    // Alter one stored record behind Mamori's back.
    let log = app.dir.path().join("ledger/log/entries.bin");
    let sql = app.state.config().ledger.store == mamori_server::ledger::StoreKind::Sql
        || app.state.db().engine() == mamori_server::db::Engine::Postgres;
    if sql {
        let mut conn = app.state.db().pool().acquire().await.unwrap();
        let row: (Vec<u8>,) = sqlx::query_as("SELECT data FROM ledger_entries WHERE idx = $1")
            .bind(victim as i64)
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        let mut data = row.0;
        let last = data.len() - 1;
        data[last] ^= 1;
        sqlx::query("UPDATE ledger_entries SET data = $1 WHERE idx = $2")
            .bind(data)
            .bind(victim as i64)
            .execute(&mut *conn)
            .await
            .unwrap();
    } else {
        let entries = app.state.ledger().read_entries(0, victim).await.unwrap();
        let offset: usize = entries
            .iter()
            .map(|e| e.as_ref().unwrap().len())
            .sum::<usize>()
            + 40;
        let mut bytes = std::fs::read(&log).unwrap();
        bytes[offset] ^= 1;
        std::fs::write(&log, bytes).unwrap();
    }
    let v = app.state.ledger().verify().await.unwrap();
    assert_eq!(v.first_bad, Some(victim), "{v:?}");
    assert!(app.state.ledger().alarm().is_some());
    // The セキュリティ総括管理者 sees it on every page.
    let chief = common::login_with_role(&app, "セキュリティ総括管理者");
    let mut c = app.logged_in(&chief).await;
    assert!(c.get("/me").await.text().contains("ledger-alarm"));
});
