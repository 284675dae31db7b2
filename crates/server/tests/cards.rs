//! IC cards (K11.2) and the session rules (K12.1.5) through the HTTP API,
//! on both engines. A software authenticator (P-256, `none` attestation)
//! answers the WebAuthn ceremonies so forged, replayed and unverified
//! responses can be made on purpose.

mod common;

use axum::http::StatusCode;
use base64::Engine as _;
use common::{manager_of, plain_staff, records_with, Client, TestApp};
use openssl::ec::{EcGroup, EcKey};
use openssl::nid::Nid;
use openssl::pkey::Private;
use serde_cbor_2::Value as Cbor;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

const ORIGIN: &str = "http://localhost:8080";

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn unb64(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .expect("base64url")
}

/// A FIDO2 key in software: one credential, a signature counter, and
/// whether it reports the PIN as verified.
struct SoftKey {
    key: EcKey<Private>,
    cred_id: Vec<u8>,
    counter: u32,
    aaguid: [u8; 16],
}

impl SoftKey {
    fn new(aaguid: [u8; 16]) -> SoftKey {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
        let mut cred_id = vec![0u8; 32];
        openssl::rand::rand_bytes(&mut cred_id).unwrap();
        SoftKey {
            key: EcKey::generate(&group).unwrap(),
            cred_id,
            counter: 0,
            aaguid,
        }
    }

    fn cose_key(&self) -> Vec<u8> {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
        let mut ctx = openssl::bn::BigNumContext::new().unwrap();
        let mut x = openssl::bn::BigNum::new().unwrap();
        let mut y = openssl::bn::BigNum::new().unwrap();
        self.key
            .public_key()
            .affine_coordinates(&group, &mut x, &mut y, &mut ctx)
            .unwrap();
        let mut m = BTreeMap::new();
        m.insert(Cbor::Integer(1), Cbor::Integer(2));
        m.insert(Cbor::Integer(3), Cbor::Integer(-7));
        m.insert(Cbor::Integer(-1), Cbor::Integer(1));
        m.insert(Cbor::Integer(-2), Cbor::Bytes(x.to_vec_padded(32).unwrap()));
        m.insert(Cbor::Integer(-3), Cbor::Bytes(y.to_vec_padded(32).unwrap()));
        serde_cbor_2::to_vec(&Cbor::Map(m)).unwrap()
    }

    fn client_data(kind: &str, challenge: &str) -> Vec<u8> {
        json!({ "type": kind, "challenge": challenge, "origin": ORIGIN, "crossOrigin": false })
            .to_string()
            .into_bytes()
    }

    /// Answers `navigator.credentials.create()` options.
    fn register(&self, options: &Value, uv: bool) -> Value {
        let pk = &options["publicKey"];
        let rp_id = pk["rp"]["id"].as_str().unwrap();
        let client_data = Self::client_data("webauthn.create", pk["challenge"].as_str().unwrap());
        let mut auth = Sha256::digest(rp_id.as_bytes()).to_vec();
        auth.push(0x01 | 0x40 | if uv { 0x04 } else { 0 });
        auth.extend(self.counter.to_be_bytes());
        auth.extend(self.aaguid);
        auth.extend((self.cred_id.len() as u16).to_be_bytes());
        auth.extend(&self.cred_id);
        auth.extend(self.cose_key());
        let mut att = BTreeMap::new();
        att.insert(Cbor::Text("fmt".into()), Cbor::Text("none".into()));
        att.insert(Cbor::Text("attStmt".into()), Cbor::Map(BTreeMap::new()));
        att.insert(Cbor::Text("authData".into()), Cbor::Bytes(auth));
        json!({
            "id": b64(&self.cred_id), "rawId": b64(&self.cred_id), "type": "public-key",
            "extensions": {},
            "response": {
                "attestationObject": b64(&serde_cbor_2::to_vec(&Cbor::Map(att)).unwrap()),
                "clientDataJSON": b64(&client_data),
            }
        })
    }

    /// Answers `navigator.credentials.get()` options.
    fn assert(&mut self, options: &Value, uv: bool) -> Value {
        let pk = &options["publicKey"];
        let rp_id = pk["rpId"].as_str().unwrap();
        let client_data = Self::client_data("webauthn.get", pk["challenge"].as_str().unwrap());
        self.counter += 1;
        let mut auth = Sha256::digest(rp_id.as_bytes()).to_vec();
        auth.push(0x01 | if uv { 0x04 } else { 0 });
        auth.extend(self.counter.to_be_bytes());
        let mut signed = auth.clone();
        signed.extend(Sha256::digest(&client_data));
        let pkey = openssl::pkey::PKey::from_ec_key(self.key.clone()).unwrap();
        let mut signer =
            openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &pkey).unwrap();
        signer.update(&signed).unwrap();
        let sig = signer.sign_to_vec().unwrap();
        json!({
            "id": b64(&self.cred_id), "rawId": b64(&self.cred_id), "type": "public-key",
            "extensions": {},
            "response": {
                "authenticatorData": b64(&auth), "clientDataJSON": b64(&client_data),
                "signature": b64(&sig), "userHandle": null,
            }
        })
    }
}

const MODEL: [u8; 16] = [
    0xee, 0x88, 0x28, 0x79, 0x72, 0x1c, 0x49, 0x13, 0x97, 0x75, 0x3d, 0xfc, 0xce, 0x97, 0x07, 0x2a,
];

/// Registers a new soft card to the logged-in client's own account.
async fn register_own(c: &mut Client, label: &str) -> (SoftKey, i64) {
    let key = SoftKey::new(MODEL);
    let start = c
        .post_json("/api/v1/me/cards/registrations", &json!({ "label": label }))
        .await;
    assert_eq!(start.status, StatusCode::OK, "{}", start.text());
    let start = start.json();
    let cred = key.register(&start["options"], true);
    let done = c
        .post_json(
            "/api/v1/me/cards/registrations/finish",
            &json!({ "ceremony": start["ceremony"], "credential": cred }),
        )
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text());
    let id = done.json()["card_id"].as_i64().unwrap();
    (key, id)
}

/// Starts a card ceremony; returns (ceremony, options).
async fn start_card(c: &mut Client, purpose: &str, login: Option<&str>) -> (String, Value) {
    let r = c
        .post_json(
            "/api/v1/session/card",
            &json!({ "purpose": purpose, "login": login }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let v = r.json();
    (
        v["ceremony"].as_str().unwrap().to_string(),
        v["options"].clone(),
    )
}

async fn finish_card(c: &mut Client, ceremony: &str, cred: &Value) -> common::Response {
    c.post_json(
        "/api/v1/session/card/finish",
        &json!({ "ceremony": ceremony, "credential": cred }),
    )
    .await
}

/// Logs a fresh client in with card + PIN.
async fn card_login(app: &TestApp, login: &str, key: &mut SoftKey) -> Client {
    let mut c = app.client();
    let (ceremony, options) = start_card(&mut c, "login", Some(login)).await;
    let cred = key.assert(&options, true);
    let r = finish_card(&mut c, &ceremony, &cred).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    c
}

fn code(r: &common::Response) -> String {
    let v = r.json();
    v["errors"][0]["code"]
        .as_str()
        .or(v["code"].as_str())
        .unwrap_or("")
        .to_string()
}

async fn failures(app: &TestApp, action: &str, reason: &str) -> i64 {
    let mut conn = app.state.db().pool().acquire().await.unwrap();
    let rows: Vec<(String,)> =
        sqlx::query_as("SELECT detail FROM records WHERE action = $1 AND result = 'failure'")
            .bind(action)
            .fetch_all(&mut *conn)
            .await
            .unwrap();
    rows.iter()
        .filter(|(d,)| {
            serde_json::from_str::<Value>(d).unwrap_or_default()["reason"].as_str() == Some(reason)
        })
        .count() as i64
}

both_engines!(
    k11_2_1_a_card_is_registered_to_one_person_after_reauthentication,
    |app: TestApp| async move {
        let staff = plain_staff(&app, "企画課");
        let other = plain_staff(&app, "戸籍住民課");
        let mut c = app.logged_in(&staff).await;
        let (key, id) = register_own(&mut c, "KC-0001").await;
        let mine = c.get("/api/v1/me/cards").await.json();
        assert_eq!(mine[0]["id"], id);
        assert_eq!(mine[0]["status"], "active");
        assert_eq!(mine[0]["label"], "KC-0001");
        assert_eq!(mine[0]["aaguid"], "ee882879-721c-4913-9775-3dfcce97072a");
        assert_eq!(records_with(&app, "card.register").await, 1);

        // The same card cannot be registered to someone else.
        let mut o = app.logged_in(&other).await;
        let start = o
            .post_json("/api/v1/me/cards/registrations", &json!({ "label": "x" }))
            .await
            .json();
        let r = o
            .post_json(
                "/api/v1/me/cards/registrations/finish",
                &json!({ "ceremony": start["ceremony"], "credential": key.register(&start["options"], true) }),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(code(&r), "card.already_registered");
        assert!(r.content_type().starts_with("application/problem+json"));
        assert_eq!(
            failures(&app, "card.register", "card.already_registered").await,
            1
        );

        // Registration without user verification (no PIN) is refused.
        let start = o
            .post_json("/api/v1/me/cards/registrations", &json!({ "label": "y" }))
            .await
            .json();
        let fresh = SoftKey::new(MODEL);
        let r = o
            .post_json(
                "/api/v1/me/cards/registrations/finish",
                &json!({ "ceremony": start["ceremony"], "credential": fresh.register(&start["options"], false) }),
            )
            .await;
        assert_eq!(code(&r), "card.pin_not_verified", "{}", r.text());

        // A finished ceremony cannot be replayed.
        let r = o
            .post_json(
                "/api/v1/me/cards/registrations/finish",
                &json!({ "ceremony": start["ceremony"], "credential": fresh.register(&start["options"], true) }),
            )
            .await;
        assert_eq!(code(&r), "card.replayed");

        // Six minutes later registering needs a fresh authentication.
        app.state.clock().advance(6 * 60);
        let r = c
            .post_json("/api/v1/me/cards/registrations", &json!({ "label": "z" }))
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        assert_eq!(code(&r), "error.reauth_required");
        let r = c
            .post_json("/api/v1/session/reauth", &json!({ "password": "wrong" }))
            .await;
        assert_eq!(code(&r), "lock.wrong_password");
        let pw = app.passwords[&staff].clone();
        let r = c
            .post_json("/api/v1/session/reauth", &json!({ "password": pw }))
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        let r = c
            .post_json("/api/v1/me/cards/registrations", &json!({ "label": "z" }))
            .await;
        assert_eq!(r.status, StatusCode::OK);

        // The ward accepts only listed models once it lists any.
        let chief = common::login_with_role(&app, "セキュリティ総括管理者");
        let mut ch = app.logged_in(&chief).await;
        let r = ch
            .put_json(
                "/api/v1/cards/settings",
                &json!({ "allowed_models": ["not-a-uuid"], "required_roles": [], "required_zones": [], "admin_two_factor": 1 }),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(r.json()["field"], "allowed_models/0");
        let r = ch
            .put_json(
                "/api/v1/cards/settings",
                &json!({ "allowed_models": ["00000000-0000-0000-0000-000000000001"], "required_roles": [], "required_zones": [], "admin_two_factor": 1 }),
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        let mut o = app.logged_in(&other).await;
        let start = o
            .post_json("/api/v1/me/cards/registrations", &json!({ "label": "w" }))
            .await
            .json();
        let r = o
            .post_json(
                "/api/v1/me/cards/registrations/finish",
                &json!({ "ceremony": start["ceremony"], "credential": SoftKey::new(MODEL).register(&start["options"], true) }),
            )
            .await;
        assert_eq!(code(&r), "card.model_not_allowed");
    }
);

both_engines!(
    k11_2_card_and_pin_login_refuses_bad_responses,
    |app: TestApp| async move {
        let staff = plain_staff(&app, "企画課");
        let other = plain_staff(&app, "戸籍住民課");
        let mut c = app.logged_in(&staff).await;
        let (mut key, card) = register_own(&mut c, "KC-1").await;
        let mut o = app.logged_in(&other).await;
        let (mut other_key, _) = register_own(&mut o, "KC-2").await;

        // Card + PIN opens a session.
        let mut s = card_login(&app, &staff, &mut key).await;
        let me = s.get("/api/v1/me").await;
        assert_eq!(me.status, StatusCode::OK);
        assert_eq!(me.json()["login"], staff.as_str());

        // A browser with a session (from the login page), so its ceremonies
        // are bound to it.
        let mut v = app.client();
        v.get("/login").await;
        // PIN not verified.
        let (ceremony, options) = start_card(&mut v, "login", Some(&staff)).await;
        let r = finish_card(&mut v, &ceremony, &key.assert(&options, false)).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(code(&r), "card.pin_not_verified");
        assert!(r.json()["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("PIN"));
        // Replayed: a good response to a challenge already answered.
        let (ceremony, options) = start_card(&mut v, "login", Some(&staff)).await;
        let good = key.assert(&options, true);
        assert_eq!(
            finish_card(&mut v, &ceremony, &good).await.status,
            StatusCode::OK
        );
        let r = finish_card(&mut v, &ceremony, &good).await;
        assert_eq!(code(&r), "card.replayed");
        // Forged: the signature does not verify.
        let mut v = app.client();
        v.get("/login").await;
        let (ceremony, options) = start_card(&mut v, "login", Some(&staff)).await;
        let mut forged = key.assert(&options, true);
        let mut sig = unb64(forged["response"]["signature"].as_str().unwrap());
        let last = sig.len() - 2;
        sig[last] ^= 0x55;
        forged["response"]["signature"] = json!(b64(&sig));
        let r = finish_card(&mut v, &ceremony, &forged).await;
        assert_eq!(code(&r), "card.invalid_response");
        // A response to another browser's challenge is refused too.
        let (ceremony, options) = start_card(&mut v, "login", Some(&staff)).await;
        let mut elsewhere = app.client();
        let r = finish_card(&mut elsewhere, &ceremony, &key.assert(&options, true)).await;
        assert_eq!(code(&r), "card.replayed");
        // Another person's card, answering this person's challenge.
        let (ceremony, options) = start_card(&mut v, "login", Some(&staff)).await;
        let r = finish_card(&mut v, &ceremony, &other_key.assert(&options, true)).await;
        assert_eq!(code(&r), "card.other_person");
        // Garbage never makes a 5xx.
        let r = v
            .post_json(
                "/api/v1/session/card/finish",
                &json!({ "ceremony": "x", "credential": { "id": "", "rawId": "!!", "type": "public-key", "response": {} } }),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());

        // Each refusal is a record.
        for reason in [
            "card.pin_not_verified",
            "card.replayed",
            "card.invalid_response",
            "card.other_person",
        ] {
            assert!(failures(&app, "auth.card", reason).await >= 1, "{reason}");
        }

        // A suspended card answers nothing; reinstated, it works again.
        let manager = manager_of(&app, "企画課");
        let mut m = app.logged_in(&manager).await;
        let (ceremony, options) = start_card(&mut v, "login", Some(&staff)).await;
        let r = m
            .post_json(
                &format!("/api/v1/cards/{card}/actions"),
                &json!({ "action": "suspend" }),
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
        // Its session ended with the suspension.
        assert_eq!(s.get("/api/v1/me").await.status, StatusCode::UNAUTHORIZED);
        let r = finish_card(&mut v, &ceremony, &key.assert(&options, true)).await;
        assert_eq!(code(&r), "card.suspended");
        let r = v
            .post_json(
                "/api/v1/session/card",
                &json!({ "purpose": "login", "login": staff }),
            )
            .await;
        assert_eq!(r.status, StatusCode::CONFLICT);
        assert_eq!(code(&r), "card.no_usable_card");
        let r = m
            .post_json(
                &format!("/api/v1/cards/{card}/actions"),
                &json!({ "action": "reinstate" }),
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        card_login(&app, &staff, &mut key).await;
        assert_eq!(records_with(&app, "card.suspend").await, 1);
        assert_eq!(records_with(&app, "card.reinstate").await, 1);
        // A manager of another unit does not see the card.
        let far = manager_of(&app, "戸籍住民課");
        let mut f = app.logged_in(&far).await;
        let r = f
            .post_json(
                &format!("/api/v1/cards/{card}/actions"),
                &json!({ "action": "suspend" }),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    }
);

both_engines!(
    k11_2_2_a_lost_card_is_revoked_its_sessions_end_and_a_report_opens,
    |app: TestApp| async move {
        let staff = plain_staff(&app, "企画課");
        let mut pw = app.logged_in(&staff).await;
        let (mut key, card) = register_own(&mut pw, "KC-9").await;
        let mut by_card = card_login(&app, &staff, &mut key).await;
        let mut by_card2 = card_login(&app, &staff, &mut key).await;
        let r = pw
            .post_json(
                &format!("/api/v1/me/cards/{card}/lost"),
                &json!({ "note": "駅で紛失" }),
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
        // Every session the card opened ends at once; the password session stays.
        assert_eq!(
            by_card.get("/api/v1/me").await.status,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            by_card2.get("/api/v1/me").await.status,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(pw.get("/api/v1/me").await.status, StatusCode::OK);
        assert_eq!(
            pw.get("/api/v1/me/cards").await.json()[0]["status"],
            "revoked"
        );
        // The card can no longer log in, and cannot be reinstated.
        let r = app
            .client()
            .post_json(
                "/api/v1/session/card",
                &json!({ "purpose": "login", "login": staff }),
            )
            .await;
        assert_eq!(code(&r), "card.no_usable_card");
        let manager = manager_of(&app, "企画課");
        let mut m = app.logged_in(&manager).await;
        let r = m
            .post_json(
                &format!("/api/v1/cards/{card}/actions"),
                &json!({ "action": "reinstate" }),
            )
            .await;
        assert_eq!(r.status, StatusCode::CONFLICT);
        assert_eq!(code(&r), "card.already_revoked");
        // The manager sees the report; the incident record is in the ledger.
        let reports = m.get("/api/v1/cards/loss-reports").await.json();
        assert_eq!(reports.as_array().unwrap().len(), 1);
        assert_eq!(reports[0]["card_id"], card);
        assert_eq!(reports[0]["sessions_ended"], 2);
        assert_eq!(reports[0]["note"], "駅で紛失");
        assert_eq!(reports[0]["status"], "open");
        assert_eq!(records_with(&app, "card.lost").await, 1);
        assert_eq!(records_with(&app, "incident.card_lost").await, 1);
        // Someone else cannot report a card that is not theirs.
        let other = plain_staff(&app, "戸籍住民課");
        let mut o = app.logged_in(&other).await;
        let r = o
            .post_json(&format!("/api/v1/me/cards/{card}/lost"), &json!({}))
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
    }
);

both_engines!(
    k11_2_cards_required_by_role_and_for_administrators,
    |app: TestApp| async move {
        let chief = common::login_with_role(&app, "セキュリティ総括管理者");
        let operator = common::login_with_role(&app, "運用管理者");
        let mut op = app.logged_in(&operator).await;
        let (mut op_key, _) = register_own(&mut op, "OP-1").await;
        let staff = plain_staff(&app, "企画課");
        let mut ch = app.logged_in(&chief).await;
        let r = ch
            .put_json(
                "/api/v1/cards/settings",
                &json!({ "allowed_models": [], "required_roles": ["operator"], "required_zones": [], "admin_two_factor": 1 }),
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
        assert_eq!(
            ch.get("/api/v1/cards/settings").await.json()["required_roles"][0],
            "operator"
        );
        // The operator's password alone opens only the card step.
        let mut c = app.client();
        let r = c
            .post_json(
                "/api/v1/session",
                &json!({ "login": operator, "password": app.passwords[&operator] }),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.json()["card_required"], true);
        let r = c.get("/api/v1/me").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert_eq!(code(&r), "error.card_step_required");
        let (ceremony, options) = start_card(&mut c, "step_up", None).await;
        let r = finish_card(&mut c, &ceremony, &op_key.assert(&options, true)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert_eq!(c.get("/api/v1/me").await.status, StatusCode::OK);
        // Plain staff are not affected.
        app.logged_in(&staff).await;

        // An administrator with a card uses password and card (setting 1);
        // card alone is refused.
        let manager = manager_of(&app, "企画課");
        let mut m = app.logged_in(&manager).await;
        let (mut m_key, _) = register_own(&mut m, "MG-1").await;
        let mut v = app.client();
        let (ceremony, options) = start_card(&mut v, "login", Some(&manager)).await;
        let r = finish_card(&mut v, &ceremony, &m_key.assert(&options, true)).await;
        assert_eq!(code(&r), "card.password_also_required");
        let r = v
            .post_json(
                "/api/v1/session",
                &json!({ "login": manager, "password": app.passwords[&manager] }),
            )
            .await;
        assert_eq!(r.json()["card_required"], true);
        let (ceremony, options) = start_card(&mut v, "step_up", None).await;
        let r = finish_card(&mut v, &ceremony, &m_key.assert(&options, true)).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(v.get("/api/v1/cards").await.status, StatusCode::OK);

        // Setting 2: an administrator without a card cannot log in at all.
        let r = ch
            .put_json(
                "/api/v1/cards/settings",
                &json!({ "allowed_models": [], "required_roles": [], "required_zones": [], "admin_two_factor": 2 }),
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        let r = app
            .client()
            .post_json(
                "/api/v1/session",
                &json!({ "login": chief, "password": app.passwords[&chief] }),
            )
            .await;
        assert_eq!(r.status, StatusCode::CONFLICT);
        assert_eq!(code(&r), "login.card_required_no_card");
        assert!(failures(&app, "auth.login", "card_required_no_card").await >= 1);
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn k11_2_the_my_number_zone_refuses_password_alone() {
    for engine in [common::Engine::Sqlite, common::Engine::Postgres] {
        let Some(app) = common::app_with(engine, |c| {
            // The harness's clients come from 10.0.0.1.
            c.zones = vec![mamori_server::config::ZoneNetworks {
                zone: mamori_policy::access::NetworkZone::MyNumber,
                networks: vec!["10.0.0.0/24".into()],
            }];
        })
        .await
        else {
            continue;
        };
        let staff = plain_staff(&app, "企画課");
        let mut c = app.logged_in(&staff).await;
        let (mut key, _) = register_own(&mut c, "MN-1").await;
        let chief = common::login_with_role(&app, "セキュリティ総括管理者");
        let mut ch = app.logged_in(&chief).await;
        let r = ch
            .put_json(
                "/api/v1/cards/settings",
                &json!({ "allowed_models": [], "required_roles": [], "required_zones": ["my_number"], "admin_two_factor": 0 }),
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        // Password alone: only the card step; no card at all: refused.
        let r = app
            .client()
            .post_json(
                "/api/v1/session",
                &json!({ "login": staff, "password": app.passwords[&staff] }),
            )
            .await;
        assert_eq!(r.json()["card_required"], true);
        let other = plain_staff(&app, "戸籍住民課");
        let r = app
            .client()
            .post_json(
                "/api/v1/session",
                &json!({ "login": other, "password": app.passwords[&other] }),
            )
            .await;
        assert_eq!(code(&r), "login.card_required_no_card");
        // Card + PIN is enough there.
        let mut s = card_login(&app, &staff, &mut key).await;
        assert_eq!(s.get("/api/v1/me").await.status, StatusCode::OK);
        // From another network the password alone still works.
        let mut outside = app.client();
        outside.ip = "10.9.0.1:5000".parse().unwrap();
        let r = outside
            .post_json(
                "/api/v1/session",
                &json!({ "login": other, "password": app.passwords[&other] }),
            )
            .await;
        assert_eq!(r.json()["card_required"], false);
    }
}

both_engines!(
    k12_1_5_idle_sessions_lock_sooner_after_secret_information,
    |app: TestApp| async move {
        let staff = plain_staff(&app, "企画課");
        let pw = app.passwords[&staff].clone();
        let mut c = app.logged_in(&staff).await;
        app.state.clock().advance(16 * 60);
        let r = c.get("/api/v1/me").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert_eq!(code(&r), "error.session_locked");
        // The page goes to the lock screen.
        let r = c.get("/me").await;
        assert_eq!(r.headers["location"], "/lock");
        let lock = c.get("/lock").await;
        assert_eq!(lock.status, StatusCode::OK);
        assert!(lock.text().contains("画面ロック"));
        let r = c
            .post_json("/api/v1/session/unlock", &json!({ "password": "nope" }))
            .await;
        assert_eq!(code(&r), "lock.wrong_password");
        let r = c
            .post_json("/api/v1/session/unlock", &json!({ "password": pw }))
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        assert_eq!(c.get("/api/v1/me").await.status, StatusCode::OK);
        assert_eq!(records_with(&app, "session.lock").await, 1);
        assert_eq!(records_with(&app, "session.unlock").await, 2);

        // After secret information, six idle minutes are enough to lock.
        let mut ctx = mamori_server::auth::SessionCtx::default();
        ctx.id_hash = Some(mamori_server::auth::token::digest(
            c.cookie.as_ref().unwrap(),
        ));
        mamori_server::auth::session::mark_secret(&app.state, &ctx)
            .await
            .unwrap();
        let mut plain = app.logged_in(&staff).await;
        app.state.clock().advance(6 * 60);
        assert_eq!(code(&c.get("/api/v1/me").await), "error.session_locked");
        assert_eq!(plain.get("/api/v1/me").await.status, StatusCode::OK);

        // Five wrong passwords at the lock screen end the session.
        for _ in 0..4 {
            let r = c.post_form("/lock", &[("password", "wrong")]).await;
            assert_eq!(r.status, StatusCode::OK);
            assert!(r.text().contains("lock-error"));
        }
        let r = c.post_form("/lock", &[("password", "wrong")]).await;
        assert_eq!(r.headers["location"], "/login");
        assert_eq!(c.get("/api/v1/me").await.status, StatusCode::UNAUTHORIZED);
        assert_eq!(code(&c.get("/api/v1/me").await), "error.unauthenticated");

        // A locked session can still be logged out of.
        app.state.clock().advance(16 * 60);
        assert_eq!(code(&plain.get("/api/v1/me").await), "error.session_locked");
        assert_eq!(
            plain.delete("/api/v1/session").await.status,
            StatusCode::NO_CONTENT
        );
        assert_eq!(
            code(&plain.get("/api/v1/me").await),
            "error.unauthenticated"
        );
    }
);

/// A catalog key shown instead of its message (`cards.admin.title`).
fn leaked(html: &str) -> Option<String> {
    for p in ["cards.", "card.", "lock.", "reauth.", "nav.", "error."] {
        for (i, _) in html.match_indices(p) {
            let before = if i == 0 { b' ' } else { html.as_bytes()[i - 1] };
            let rest = &html[i + p.len()..];
            if !before.is_ascii_alphanumeric()
                && !b"-_/.".contains(&before)
                && rest.starts_with(|c: char| c.is_ascii_lowercase())
                && !rest.starts_with("js")
            {
                return Some(html[i..].chars().take(40).collect());
            }
        }
    }
    None
}

both_engines!(
    card_pages_render_in_japanese_and_english,
    |app: TestApp| async move {
        let chief = common::login_with_role(&app, "セキュリティ総括管理者");
        let mut c = app.logged_in(&chief).await;
        for path in ["/me/cards", "/cards", "/reauth?next=/cards"] {
            for lang in ["mamori_lang=ja", "mamori_lang=en"] {
                let r = c
                    .request_with_cookie(axum::http::Method::GET, path, lang)
                    .await;
                assert_eq!(r.status, StatusCode::OK, "{path}");
                assert_eq!(leaked(&r.text()), None, "{path} {lang}");
            }
        }
        let page = c.get("/cards").await.text();
        assert!(page.contains("ICカード管理"));
        assert!(page.contains("ICカードの設定"));
        let mut v = app.client();
        let r = v.get("/login/card").await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.text().contains("ICカードでログイン"));
        assert_eq!(leaked(&r.text()), None);
        // The lock screen, in both languages.
        let mut locked = app.logged_in(&common::plain_staff(&app, "企画課")).await;
        app.state.clock().advance(16 * 60);
        for lang in ["mamori_lang=ja", "mamori_lang=en"] {
            let r = locked
                .request_with_cookie(axum::http::Method::GET, "/lock", lang)
                .await;
            assert_eq!(r.status, StatusCode::OK);
            assert_eq!(leaked(&r.text()), None, "/lock {lang}");
        }
        let mut c = app.logged_in(&chief).await;
        let js = v.get("/static/cards.js").await;
        assert!(js.content_type().starts_with("text/javascript"));
        // Settings through the page are recorded like the API's.
        let r = c
            .post_form(
                "/cards/settings",
                &[
                    ("allowed_models", ""),
                    ("required_roles", "operator"),
                    ("required_zones", "my_number, lgwan"),
                    ("admin_two_factor", "1"),
                ],
            )
            .await;
        assert_eq!(r.headers["location"], "/cards?notice=settings");
        let s = c.get("/api/v1/cards/settings").await.json();
        assert_eq!(s["required_zones"], json!(["my_number", "lgwan"]));
        assert_eq!(records_with(&app, "settings.change").await, 1);
    }
);

both_engines!(
    k11_2_1_the_security_manager_registers_a_card_for_a_person_in_scope,
    |app: TestApp| async move {
        let manager = manager_of(&app, "企画課");
        let mut m = app.logged_in(&manager).await;
        let account_of = |login: String| {
            let state = app.state.clone();
            async move {
                let mut conn = state.db().pool().acquire().await.unwrap();
                mamori_server::identity::store::by_login(&mut conn, &login)
                    .await
                    .unwrap()
                    .unwrap()
                    .id
                    .0
            }
        };
        let staff = plain_staff(&app, "企画課");
        let far = plain_staff(&app, "戸籍住民課");
        let start = m
            .post_json(
                "/api/v1/cards/registrations",
                &json!({ "account_id": account_of(staff.clone()).await, "label": "KC-M1" }),
            )
            .await;
        assert_eq!(start.status, StatusCode::OK, "{}", start.text());
        let start = start.json();
        let mut key = SoftKey::new(MODEL);
        let r = m
            .post_json(
                "/api/v1/cards/registrations/finish",
                &json!({ "ceremony": start["ceremony"], "credential": key.register(&start["options"], true) }),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        // The card is the person's, registered by the manager.
        let cards = m.get("/api/v1/cards").await.json();
        let card = cards
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["label"] == "KC-M1")
            .unwrap();
        assert_eq!(card["login"], staff.as_str());
        assert!(card["registered_by"]
            .as_str()
            .unwrap()
            .starts_with("person:"));
        card_login(&app, &staff, &mut key).await;
        // Not for someone outside the manager's units.
        let r = m
            .post_json(
                "/api/v1/cards/registrations",
                &json!({ "account_id": account_of(far).await, "label": "KC-M2" }),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
        let r = m
            .post_json("/api/v1/cards/registrations", &json!({ "label": "KC-M4" }))
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(r.json()["field"], "login");
        // A ceremony started by the manager cannot be finished by the holder.
        let start = m
            .post_json(
                "/api/v1/cards/registrations",
                &json!({ "login": staff, "label": "KC-M3" }),
            )
            .await;
        assert_eq!(start.status, StatusCode::OK, "{}", start.text());
        let start = start.json();
        let mut holder = app.logged_in(&staff).await;
        let r = holder
            .post_json(
                "/api/v1/me/cards/registrations/finish",
                &json!({ "ceremony": start["ceremony"], "credential": SoftKey::new(MODEL).register(&start["options"], true) }),
            )
            .await;
        assert_eq!(code(&r), "card.replayed");
    }
);

both_engines!(
    k12_1_5_granting_rights_needs_a_recent_authentication,
    |app: TestApp| async move {
        let chief = common::login_with_role(&app, "セキュリティ総括管理者");
        let mut c = app.logged_in(&chief).await;
        let person = c.get("/api/v1/people?q=").await.json()[0]["id"].clone();
        let unit = c.get("/api/v1/org-units").await.json()[0]["id"].clone();
        let body = json!({ "person_id": person, "role": "promotion_leader", "org_unit_id": unit });
        app.state.clock().advance(6 * 60);
        let r = c.post_json("/api/v1/role-assignments", &body).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
        assert_eq!(code(&r), "error.reauth_required");
        let pw = app.passwords[&chief].clone();
        let r = c
            .post_json("/api/v1/session/reauth", &json!({ "password": pw }))
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        let r = c.post_json("/api/v1/role-assignments", &body).await;
        assert_ne!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
        assert_eq!(records_with(&app, "session.reauth").await, 1);
    }
);
