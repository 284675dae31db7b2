//! Access decisions over HTTP (issue 4) against a running `mamori serve`
//! holding the generated ward model of the issue: 5,000 staff in 300 org
//! units, 20,000 assets (20 % secret), 50,000 grants with time-of-day,
//! weekday and zone conditions. The model is written straight into the
//! server's SQLite file (the triggers fill the engine's change feed as any
//! write would), then the server is restarted so it loads it at start.

use crate::ingest::Conn;
use sqlx::Connection;
use std::path::Path;
use std::time::{Duration, Instant};

pub const UNITS: usize = 300;
pub const STAFF: usize = 5_000;
pub const ASSETS: usize = 20_000;
pub const GRANTS: usize = 50_000;

/// A small deterministic generator (xorshift64*).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Writes the generated ward into the data folder's database; returns the
/// (person, asset) numbers of the grants, for questions that hit them.
pub async fn generate(data: &Path) -> Result<Vec<(usize, usize)>, sqlx::Error> {
    let url = format!("sqlite://{}", data.join("mamori.db").display());
    let mut db = sqlx::SqliteConnection::connect(&url).await?;
    let mut tx = db.begin().await?;
    let now = 1_764_000_000_i64;
    let root: i64 = sqlx::query_scalar("SELECT id FROM org_units WHERE parent_id IS NULL LIMIT 1")
        .fetch_one(&mut *tx)
        .await?;
    // 20 departments with 14 sections each, and the rest under the root.
    let mut units = Vec::with_capacity(UNITS);
    for i in 0..UNITS {
        let parent = if i < 20 || units.len() < 20 {
            root
        } else {
            units[i % 20]
        };
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO org_units (code, name, kind, parent_id, valid_from, created_at)
             VALUES ($1, $2, $3, $4, '2000-04-01', $5) RETURNING id",
        )
        .bind(format!("g-u{i:03}"))
        .bind(format!("生成組織{i}"))
        .bind(if i < 20 { "department" } else { "section" })
        .bind(parent)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        units.push(id);
    }
    let sections = &units[20..];
    let mut rng = Rng::new(42);
    let mut people = Vec::with_capacity(STAFF);
    for i in 0..STAFF {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO persons (employee_number, name_kanji, name_kana, employment, org_unit_id, status, created_at, updated_at)
             VALUES ($1, $2, $3, 'regular', $4, 'active', $5, $5) RETURNING id",
        )
        .bind(format!("g{i:06}"))
        .bind(format!("生成 職員{i}"))
        .bind("セイセイ ショクイン")
        .bind(sections[rng.below(sections.len())])
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        people.push(id);
    }
    let zones = ["my_number", "lgwan", "internet"];
    let mut assets = Vec::with_capacity(ASSETS);
    for i in 0..ASSETS {
        let secret = i % 5 == 0;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO assets (code, name, kind, owner_org_unit_id, security_manager_id, confidentiality,
               secret_ground, integrity, availability, zone, created_at, updated_at)
             VALUES ($1, $2, 'dataset', $3, $4, $5, $6, 'normal', 'normal', $7, $8, $8) RETURNING id",
        )
        .bind(format!("g-a{i:05}"))
        .bind(format!("生成資産{i}"))
        .bind(sections[rng.below(sections.len())])
        .bind(people[rng.below(people.len())])
        .bind(if secret { "secret" } else { "general" })
        .bind(secret.then_some("K3.1.1.a"))
        .bind(zones[i % 3])
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        assets.push(id);
    }
    let conditions = [
        r#"{"windows":[{"start":"08:30","end":"17:15"}],"weekdays":["mon","tue","wed","thu","fri"],"zones":["lgwan","my_number"]}"#,
        r#"{"windows":[{"start":"22:00","end":"06:00"}],"zones":["lgwan"]}"#,
        r#"{"weekdays":["mon","wed","fri"]}"#,
        "{}",
    ];
    let mut pairs = Vec::with_capacity(GRANTS);
    for i in 0..GRANTS {
        // Grants mostly on secret assets, as they are what needs them.
        let a = if i % 4 == 0 {
            rng.below(assets.len())
        } else {
            rng.below(ASSETS / 5) * 5
        };
        let p = rng.below(people.len());
        pairs.push((p, a));
        let asset = assets[a];
        sqlx::query(
            "INSERT INTO access_grants (asset_id, subject_kind, subject_id, actions, valid_from, valid_until, conditions, created_at)
             VALUES ($1, 'person', $2, $3, $4, $5, $6, $4)",
        )
        .bind(asset)
        .bind(people[p])
        .bind(if i % 3 == 0 { "read write" } else { "read" })
        .bind(now)
        .bind(now + 10 * 365 * 86_400)
        .bind(conditions[i % conditions.len()])
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    db.close().await?;
    Ok(pairs)
}

/// One question of the generated mix: 80 % read, 15 % write, 5 % export;
/// half of them by a grant's holder on its asset (so conditions are
/// evaluated), half by anyone on anything (mostly refused).
pub fn question(rng: &mut Rng, grants: &[(usize, usize)]) -> String {
    let action = match rng.below(20) {
        0 => "export",
        1..=3 => "write",
        _ => "read",
    };
    let (person, asset) = if rng.below(2) == 0 {
        grants[rng.below(grants.len())]
    } else {
        (rng.below(STAFF), rng.below(ASSETS))
    };
    format!(
        r#"{{"subject":"g{person:06}","action":"{action}","asset":"g-a{asset:05}","context":{{"time":"2026-12-01T10:00:00+09:00","zone":"lgwan"}}}}"#
    )
}

/// `clients` keep-alive connections, each asking `each` questions one at a
/// time; returns (decisions/s, allowed share, p50, p99).
pub async fn decisions(
    port: u16,
    token: &str,
    grants: &std::sync::Arc<Vec<(usize, usize)>>,
    clients: usize,
    each: usize,
) -> (f64, f64, Duration, Duration) {
    let t = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let token = token.to_string();
        let grants = grants.clone();
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng::new(1000 + c as u64);
            let mut conn = Conn::open(port).await.expect("connect");
            let mut lat = Vec::with_capacity(each);
            let mut allowed = 0usize;
            for _ in 0..each {
                let body = question(&mut rng, &grants);
                let s = Instant::now();
                let (st, resp) = conn
                    .post("/api/v1/access/check", &token, &body)
                    .await
                    .expect("post");
                lat.push(s.elapsed());
                assert_eq!(st, 200, "{}", String::from_utf8_lossy(&resp));
                if resp.starts_with(br#"{"decision":"allow""#) {
                    allowed += 1;
                }
            }
            (lat, allowed)
        }));
    }
    let mut all = Vec::new();
    let mut allowed = 0;
    for t in tasks {
        let (lat, a) = t.await.expect("client");
        all.extend(lat);
        allowed += a;
    }
    let rate = all.len() as f64 / t.elapsed().as_secs_f64();
    let share = allowed as f64 / all.len() as f64;
    all.sort();
    (rate, share, all[all.len() / 2], all[all.len() * 99 / 100])
}
