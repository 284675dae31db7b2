//! Retention of the ledger (K16.2.1, SPEC §3.5), on both engines: after
//! its retention period a record's content is pruned while its leaf hash
//! stays, so the whole log, old checkpoints and proofs still verify; secret
//! records live longer than general ones; a back-dated record is kept a
//! full period after it arrived; each prune is a `ledger.prune` record; the
//! periods are settings with a floor.

mod common;

use axum::http::{Method, StatusCode};
use base64::Engine;
use common::TestApp;
use mamori_ledger::{Checkpoint, Hash, Verifier};
use serde_json::{json, Value};

const DAY: i64 = 86_400;

async fn token(app: &TestApp, system: &str) -> String {
    mamori_server::tokens::create(
        &app.state,
        system,
        &["ledger:write".into(), "ledger:read".into()],
    )
    .await
    .unwrap()
    .1
}

use common::bearer;

/// Records `ids`, dated `days_ago` before the app's clock; their indexes.
async fn post(app: &TestApp, tok: &str, ids: &[&str], days_ago: i64) -> Vec<u64> {
    let t = app.state.clock().now() - time::Duration::days(days_ago);
    let time = t
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let recs: Vec<Value> = ids
        .iter()
        .map(|id| {
            json!({ "event_id": id, "time": time, "actor": "staff:100101", "action": "read",
                    "asset": "patron/123", "result": "success", "source_ip": "192.0.2.10",
                    "detail": { "secret_content": format!("content of {id}") } })
        })
        .collect();
    let r = bearer(
        app,
        Method::POST,
        "/api/v1/ledger/records",
        tok,
        Some(json!(recs)),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json()["accepted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["index"].as_u64().unwrap())
        .collect()
}

/// Moves Mamori's own records into the ledger and signs a checkpoint.
async fn checkpoint(app: &TestApp) -> Checkpoint {
    let ledger = app.state.ledger();
    while ledger.move_outbox().await.unwrap() {}
    let body = ledger.checkpoint(app.state.clock().unix()).await.unwrap();
    let verifier = Verifier::parse(&ledger.verifier_key()).unwrap();
    mamori_ledger::open_checkpoint(body.as_bytes(), &[verifier])
        .unwrap()
        .0
}

async fn record_status(app: &TestApp, tok: &str, index: u64) -> common::Response {
    bearer(
        app,
        Method::GET,
        &format!("/api/v1/ledger/records/{index}"),
        tok,
        None,
    )
    .await
}

async fn leaf_hash(app: &TestApp, tok: &str, index: u64) -> Hash {
    let r = record_status(app, tok, index).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let v = base64::engine::general_purpose::STANDARD
        .decode(r.json()["leaf_hash"].as_str().unwrap())
        .unwrap();
    Hash(v.try_into().unwrap())
}

async fn prune(app: &TestApp) -> mamori_server::ledger::PruneReport {
    app.state
        .ledger()
        .prune_expired(app.state.clock().unix_micros())
        .await
        .unwrap()
}

/// Classifies a sending system: through its entry in the asset register
/// when it has one (the demo's `facility` and `library`), else through the
/// older per-system table.
async fn classify(app: &TestApp, system: &str, class: &str) {
    let mut conn = app.state.db().pool().acquire().await.unwrap();
    let registered = sqlx::query("SELECT id FROM assets WHERE code = $1 AND kind = 'system'")
        .bind(system)
        .fetch_optional(&mut *conn)
        .await
        .unwrap()
        .is_some();
    if registered {
        let ground = (class == "secret").then_some("K3.1.1.b");
        sqlx::query("UPDATE assets SET confidentiality = $1, secret_ground = $2 WHERE code = $3")
            .bind(class)
            .bind(ground)
            .bind(system)
            .execute(&mut *conn)
            .await
            .unwrap();
        mamori_server::ledger::store::restart_pruning(&mut conn)
            .await
            .unwrap();
    } else {
        assert!(
            mamori_server::ledger::store::set_system_classification(&mut conn, system, class)
                .await
                .unwrap()
        );
    }
}

async fn assert_intact(app: &TestApp) {
    let v = app.state.ledger().verify().await.unwrap();
    assert_eq!(v.problem, None, "the ledger verifies after pruning");
}

/// The `ledger.prune` records so far (their detail).
async fn prune_records(app: &TestApp) -> Vec<Value> {
    let mut conn = app.state.db().pool().acquire().await.unwrap();
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT clause, detail FROM records WHERE action = 'ledger.prune' ORDER BY id",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    rows.into_iter()
        .map(|(clause, d)| {
            assert_eq!(clause, "K16.2.1");
            serde_json::from_str(&d).unwrap()
        })
        .collect()
}

fn listed(records: &[Value]) -> Vec<u64> {
    let mut out = Vec::new();
    for r in records {
        let mut keys: Vec<&String> = r.as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(
            keys,
            ["classification", "count", "ranges", "retention_days"],
            "counts and ranges only, never content"
        );
        for range in r["ranges"].as_array().unwrap() {
            let s = range.as_str().unwrap();
            let (a, b) = s.split_once('-').unwrap_or((s, s));
            out.extend(a.parse::<u64>().unwrap()..=b.parse::<u64>().unwrap());
        }
    }
    out
}

both_engines!(
    k16_2_1_old_records_pruned_proofs_still_verify,
    |app: TestApp| async move {
        // library is secret, facility general.
        classify(&app, "library", "secret").await;
        classify(&app, "facility", "general").await;
        let lib = token(&app, "library").await;
        let fac = token(&app, "facility").await;
        let secret = post(&app, &lib, &["l1", "l2", "l3"], 0).await;
        let general = post(&app, &fac, &["f1", "f2", "f3"], 0).await;
        let cp1 = checkpoint(&app).await;
        let leaves: Vec<(u64, Hash)> = {
            let mut v = Vec::new();
            for &i in secret.iter().chain(&general) {
                v.push((i, leaf_hash(&app, &lib, i).await));
            }
            v
        };
        // Nothing is due yet, and a second run has nothing to look at.
        assert_eq!(prune(&app).await, Default::default());
        assert!(prune_records(&app).await.is_empty());

        // A year and a day later: general records go, secret ones stay.
        app.state.clock().advance(366 * DAY);
        let fresh = post(&app, &fac, &["f4", "f5"], 0).await;
        let cp2 = checkpoint(&app).await;
        let report = prune(&app).await;
        assert_eq!(report.secret, 0);
        // facility's three, plus Mamori's own records covered by cp1
        // (general too): the token creations and classification.
        assert!(report.general >= 3, "{report:?}");
        for &i in &general {
            let r = record_status(&app, &lib, i).await;
            assert_eq!(r.status, StatusCode::GONE, "{}", r.text());
            assert_eq!(r.content_type(), "application/problem+json");
            let p = r.json();
            assert_eq!(p["code"], "ledger.pruned");
            assert_eq!(p["status"], 410);
            assert!(p["detail"].as_str().unwrap().contains(&i.to_string()));
        }
        for &i in secret.iter().chain(&fresh) {
            assert_eq!(record_status(&app, &lib, i).await.status, StatusCode::OK);
        }
        assert_intact(&app).await;
        // Inclusion proofs of pruned records still verify, against the old
        // checkpoint and the new one; the new one extends the old.
        for (i, leaf) in &leaves {
            for cp in [&cp1, &cp2] {
                let proof = app
                    .state
                    .ledger()
                    .inclusion_proof(*i, cp.size)
                    .await
                    .unwrap();
                assert!(
                    mamori_ledger::verify_inclusion(leaf, *i, cp.size, &proof, &cp.root),
                    "record {i} in the tree of {}",
                    cp.size
                );
            }
        }
        let proof = app
            .state
            .ledger()
            .consistency_proof(cp1.size, cp2.size)
            .await
            .unwrap();
        assert!(mamori_ledger::verify_consistency(
            cp1.size, cp2.size, &cp1.root, &cp2.root, &proof
        ));
        // Hash tiles still serve; an entry bundle with a pruned record is gone.
        let r = bearer(
            &app,
            Method::GET,
            &format!("/api/v1/ledger/tile/0/000.p/{}", cp2.size),
            &lib,
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let r = bearer(
            &app,
            Method::GET,
            &format!("/api/v1/ledger/tile/entries/000.p/{}", cp2.size),
            &lib,
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::GONE, "{}", r.text());
        assert_eq!(r.json()["code"], "ledger.pruned");

        // Every pruned index is listed in a ledger.prune record.
        let recs = prune_records(&app).await;
        assert!(!recs.is_empty());
        let pruned = listed(&recs);
        for &i in &general {
            assert!(pruned.contains(&i), "{i} listed in {recs:?}");
        }
        assert!(recs.iter().all(|r| r["classification"] == "general"));
        assert_eq!(recs[0]["retention_days"], 365);
        // The prune record itself goes into the ledger like any other.
        checkpoint(&app).await;
        let own: i64 = common::scalar(
            &app,
            "SELECT COUNT(*) FROM ledger_index WHERE system = 'mamori' AND action = 'ledger.prune'",
        )
        .await;
        assert_eq!(own, recs.len() as i64);

        // Running again right away finds nothing new.
        assert_eq!(prune(&app).await, Default::default());
        assert_eq!(prune_records(&app).await.len(), recs.len());

        // Five years after the first records, the secret ones go too.
        app.state.clock().advance((1827 - 366) * DAY);
        let report = prune(&app).await;
        assert_eq!(report.secret, 3, "{report:?}");
        for &i in &secret {
            assert_eq!(record_status(&app, &lib, i).await.status, StatusCode::GONE);
        }
        assert_intact(&app).await;
        let cp3 = checkpoint(&app).await;
        for (i, leaf) in &leaves {
            let proof = app
                .state
                .ledger()
                .inclusion_proof(*i, cp3.size)
                .await
                .unwrap();
            assert!(mamori_ledger::verify_inclusion(
                leaf, *i, cp3.size, &proof, &cp3.root
            ));
        }
        let proof = app
            .state
            .ledger()
            .consistency_proof(cp1.size, cp3.size)
            .await
            .unwrap();
        assert!(mamori_ledger::verify_consistency(
            cp1.size, cp3.size, &cp1.root, &cp3.root, &proof
        ));
        let recs = prune_records(&app).await;
        assert!(recs.iter().any(|r| r["classification"] == "secret"
            && r["retention_days"] == 1826
            && r["count"] == 3));
        // Neither the API nor anything else edits or deletes a record.
        for m in [Method::DELETE, Method::PUT, Method::PATCH] {
            let r = bearer(
                &app,
                m,
                &format!("/api/v1/ledger/records/{}", secret[0]),
                &lib,
                None,
            )
            .await;
            assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
        }
    }
);

both_engines!(
    k16_2_1_a_backdated_record_is_kept_a_full_period_after_it_arrived,
    |app: TestApp| async move {
        classify(&app, "facility", "general").await;
        let fac = token(&app, "facility").await;
        let old = post(&app, &fac, &["b1"], 800).await;
        checkpoint(&app).await;
        // Its own time is long past the retention, but it just arrived.
        prune(&app).await;
        assert_eq!(
            record_status(&app, &fac, old[0]).await.status,
            StatusCode::OK
        );
        app.state.clock().advance(200 * DAY);
        prune(&app).await;
        assert_eq!(
            record_status(&app, &fac, old[0]).await.status,
            StatusCode::OK
        );
        // Sent later, and not yet covered by any checkpoint: kept as well.
        let late = post(&app, &fac, &["b2"], 2000).await;
        app.state.clock().advance(166 * DAY);
        prune(&app).await;
        assert_eq!(
            record_status(&app, &fac, old[0]).await.status,
            StatusCode::GONE
        );
        assert_eq!(
            record_status(&app, &fac, late[0]).await.status,
            StatusCode::OK
        );
        assert_intact(&app).await;
    }
);

both_engines!(
    k16_2_1_secret_records_outlive_general_ones_and_classification_counts,
    |app: TestApp| async move {
        let lib = token(&app, "library").await;
        let fac = token(&app, "facility").await;
        classify(&app, "library", "secret").await;
        classify(&app, "facility", "general").await;
        let s = post(&app, &lib, &["s1"], 0).await;
        let g = post(&app, &fac, &["g1"], 0).await;
        checkpoint(&app).await;
        // General raised above secret: secret records keep the longer one.
        let mut conn = app.state.db().pool().acquire().await.unwrap();
        mamori_server::settings::put(&mut conn, "ledger.retention_days.general", 3000, None, 0)
            .await
            .unwrap();
        drop(conn);
        app.state.clock().advance(1900 * DAY);
        assert_eq!(prune(&app).await, Default::default());
        assert_eq!(record_status(&app, &lib, s[0]).await.status, StatusCode::OK);
        assert_eq!(record_status(&app, &lib, g[0]).await.status, StatusCode::OK);
        // Back to the defaults: both are due now.
        let mut conn = app.state.db().pool().acquire().await.unwrap();
        mamori_server::settings::put(&mut conn, "ledger.retention_days.general", 365, None, 0)
            .await
            .unwrap();
        drop(conn);
        let report = prune(&app).await;
        assert_eq!(report.secret, 1, "{report:?}");
        assert_eq!(
            record_status(&app, &lib, s[0]).await.status,
            StatusCode::GONE
        );
        assert_eq!(
            record_status(&app, &lib, g[0]).await.status,
            StatusCode::GONE
        );
        assert_intact(&app).await;
    }
);

both_engines!(
    k16_2_1_reclassified_system_is_pruned_on_its_new_period,
    |app: TestApp| async move {
        classify(&app, "library", "secret").await;
        let lib = token(&app, "library").await;
        let s = post(&app, &lib, &["r1", "r2"], 0).await;
        checkpoint(&app).await;
        app.state.clock().advance(400 * DAY);
        prune(&app).await;
        // Secret: kept.
        for &i in &s {
            assert_eq!(record_status(&app, &lib, i).await.status, StatusCode::OK);
        }
        classify(&app, "library", "general").await;
        let report = prune(&app).await;
        assert!(report.general >= 2, "{report:?}");
        for &i in &s {
            assert_eq!(record_status(&app, &lib, i).await.status, StatusCode::GONE);
        }
        assert_intact(&app).await;
    }
);

both_engines!(
    k16_2_1_retention_settings_have_a_floor,
    |app: TestApp| async move {
        let login = common::login_with_role(&app, "セキュリティ総括管理者");
        let mut c = app.logged_in(&login).await;
        let r = c.get("/api/v1/settings").await;
        assert_eq!(r.status, StatusCode::OK);
        let all = r.json();
        for (key, default) in [
            ("ledger.retention_days.secret", 1826),
            ("ledger.retention_days.general", 365),
        ] {
            let s = all
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["key"] == key)
                .unwrap_or_else(|| panic!("{key} listed"));
            assert_eq!(s["value"], default);
            assert_eq!(s["min"], 365);
            assert_eq!(s["clause"], "K16.2.1");
            for bad in [0, -1, 30, 364] {
                let r = c
                    .put_json("/api/v1/settings", &json!({ "key": key, "value": bad }))
                    .await;
                assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{key} = {bad}");
            }
            let r = c
                .put_json("/api/v1/settings", &json!({ "key": key, "value": 3650 }))
                .await;
            assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
        }
        // The settings page offers them, with their labels.
        let page = c.get("/settings").await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.text().contains("秘密情報の記録の保存期間"));
        // A plain member of staff cannot change them.
        let staff = common::plain_staff(&app, "企画課");
        let mut s = app.logged_in(&staff).await;
        let r = s
            .put_json(
                "/api/v1/settings",
                &json!({ "key": "ledger.retention_days.general", "value": 400 }),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
    }
);

/// Deletes record `victim`'s content behind Mamori's back and marks it
/// pruned, as a prune would, but writes no `ledger.prune` record.
async fn prune_behind_the_back(app: &TestApp, victim: u64) {
    let sql = app.state.config().ledger.store == mamori_server::ledger::StoreKind::Sql
        || app.state.db().engine() == mamori_server::db::Engine::Postgres;
    if sql {
        let mut conn = app.state.db().pool().acquire().await.unwrap();
        let n = sqlx::query("UPDATE ledger_entries SET data = NULL WHERE idx = $1")
            .bind(victim as i64)
            .execute(&mut *conn)
            .await
            .unwrap()
            .rows_affected();
        assert_eq!(n, 1);
    } else {
        use std::os::unix::fs::FileExt;
        let dir = app.dir.path().join("ledger/log");
        let offsets = std::fs::read(dir.join("offsets.bin")).unwrap();
        let end_of = |i: u64| {
            let at = (i * 8) as usize;
            u64::from_le_bytes(offsets[at..at + 8].try_into().unwrap())
        };
        let start = if victim == 0 { 0 } else { end_of(victim - 1) };
        let end = end_of(victim);
        let entries = std::fs::OpenOptions::new()
            .write(true)
            .open(dir.join("entries.bin"))
            .unwrap();
        entries
            .write_all_at(&vec![0u8; (end - start) as usize], start)
            .unwrap();
        let bitmap = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join("pruned.bin"))
            .unwrap();
        let mut byte = [0u8; 1];
        let _ = bitmap.read_at(&mut byte, victim / 8).unwrap();
        byte[0] |= 1 << (victim % 8);
        bitmap.write_all_at(&byte, victim / 8).unwrap();
    }
}

both_engines!(
    k16_2_1_a_pruned_mark_without_its_prune_record_is_found,
    |app: TestApp| async move {
        classify(&app, "facility", "general").await;
        let fac = token(&app, "facility").await;
        let old = post(&app, &fac, &["p1", "p2", "p3"], 0).await;
        checkpoint(&app).await;
        app.state.clock().advance(366 * DAY);
        let fresh = post(&app, &fac, &["p4", "p5", "p6"], 0).await;
        checkpoint(&app).await;
        // A proper prune verifies, before and after its record reaches the
        // ledger through the outbox.
        let report = prune(&app).await;
        assert!(report.general >= 3, "{report:?}");
        for &i in &old {
            assert_eq!(record_status(&app, &fac, i).await.status, StatusCode::GONE);
        }
        assert_intact(&app).await;
        checkpoint(&app).await;
        assert_intact(&app).await;
        assert!(app.state.ledger().alarm().is_none());

        // A record still within its retention, emptied and marked pruned
        // behind Mamori's back: the tree still verifies by its stored leaf
        // hash, but no ledger.prune record lists it.
        let victim = fresh[1];
        prune_behind_the_back(&app, victim).await;
        assert_eq!(
            record_status(&app, &fac, victim).await.status,
            StatusCode::GONE
        );
        let v = app.state.ledger().verify().await.unwrap();
        assert_eq!(v.first_bad, Some(victim), "{v:?}");
        let problem = v.problem.unwrap();
        assert!(
            problem.contains(&format!("record {victim} "))
                && problem.contains("no ledger.prune record"),
            "{problem}"
        );
        assert!(app.state.ledger().alarm().is_some());

        // A prune record that lists it does not make it right while the
        // record is younger than the retention the prune states.
        let mut conn = app.state.db().pool().acquire().await.unwrap();
        sqlx::query(
            "INSERT INTO records (time_us, actor, action, target, result, clause, detail)
             VALUES ($1, 'mamori:scheduler', 'ledger.prune', 'ledger', 'success', 'K16.2.1', $2)",
        )
        .bind(app.state.clock().unix_micros())
        .bind(
            json!({ "classification": "general", "retention_days": 365, "count": 1,
                    "ranges": [victim.to_string()] })
            .to_string(),
        )
        .execute(&mut *conn)
        .await
        .unwrap();
        drop(conn);
        let v = app.state.ledger().verify().await.unwrap();
        assert_eq!(v.first_bad, Some(victim), "{v:?}");
        let problem = v.problem.unwrap();
        assert!(
            problem.contains("before its retention period (365 days)"),
            "{problem}"
        );
    }
);

both_engines!(
    k16_2_1_prune_records_are_kept_past_their_own_retention,
    |app: TestApp| async move {
        classify(&app, "facility", "general").await;
        let fac = token(&app, "facility").await;
        post(&app, &fac, &["k1", "k2"], 0).await;
        checkpoint(&app).await;
        app.state.clock().advance(366 * DAY);
        checkpoint(&app).await;
        prune(&app).await;
        checkpoint(&app).await;
        // Years later every general record of that time is gone but the
        // prune records, which the pruned marks are checked against.
        app.state.clock().advance(800 * DAY);
        checkpoint(&app).await;
        prune(&app).await;
        let rows: Vec<(i64,)> = {
            let mut conn = app.state.db().pool().acquire().await.unwrap();
            sqlx::query_as(
                "SELECT idx FROM ledger_index WHERE system = 'mamori' AND action = 'ledger.prune'",
            )
            .fetch_all(&mut *conn)
            .await
            .unwrap()
        };
        assert!(!rows.is_empty());
        for (i,) in rows {
            assert_eq!(
                record_status(&app, &fac, i as u64).await.status,
                StatusCode::OK,
                "prune record {i} keeps its content"
            );
        }
        assert_intact(&app).await;
    }
);
