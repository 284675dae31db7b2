//! Search and histograms over 10,000,000 ledger records (issue 3, SPEC §6),
//! through Mamori's own search code (`ledger::search::store::search` and
//! `store::buckets`) over Mamori's own schema, against SQLite and DuckDB
//! (the `duckdb` Python package) on the same rows, in the same run.
//!
//! The rows are generated straight into the search index `ledger_index` of
//! a fresh Mamori database (its migrations create the schema), the table
//! ingest fills with one row per record; the Merkle log itself is not
//! written, as search never reads it. One transaction, a prepared
//! multi-row INSERT; the table's secondary indexes are dropped for the load
//! and created again afterwards from their own definitions (read from
//! `sqlite_master`), so the schema queried is exactly the migrations'.
//!
//! The generated ward (deterministic, seed 7): 5,000 persons and 20,000
//! assets with heavy-tailed activity (weight 1 / (rank + 10)^0.8 for
//! persons, 1 / (rank + 5)^0.9 for assets: a few busy counters and shared
//! data sets, a long tail of rare ones), 92 days from 2026-08-01 JST with
//! office hours (8:30–18:15 on weekdays) 50 times as busy as nights and
//! weekends 10 times; each record's own time is up to 5 s before its
//! arrival (senders batch), so time and index order almost but not quite
//! agree. Six systems, six actions (reads 70 %), results 96 % success,
//! 3 % failure, 1 % denied (logins fail more often).
//!
//! The queries: 1,000 searches, half by person and half by asset, each
//! chosen the way records are (busy ones more often), over one week from a
//! random JST midnight, newest first, the first 100; then the hourly
//! histogram of the 30 days from 2026-09-01 JST, five times. The same
//! queries go to the peers, which load the same rows (SQLite: a plain table
//! with an index on (actor, time), (asset, time) and (time), copied from
//! Mamori's file; DuckDB: a table read from a CSV of the rows).

use mamori_server::ledger::search::{store, Filter, Within};
use sqlx::{Connection, Executor};
use std::io::Write;
use std::path::Path;
use std::time::Instant;

use crate::access::Rng;

const PERSONS: usize = 5_000;
const ASSETS: usize = 20_000;
const DAYS: i64 = 92;
const US: i64 = 1_000_000;
const HOUR_US: i64 = 3600 * US;
const DAY_US: i64 = 24 * HOUR_US;
const JST_US: i64 = 9 * HOUR_US;
/// 2026-08-01 00:00 JST.
const START_US: i64 = 1_785_510_000 * US;
/// 2026-09-01 00:00 JST: the month of the histogram.
const MONTH_US: i64 = START_US + 31 * DAY_US;
const SEARCHES: usize = 1_000;
const HISTOGRAMS: usize = 5;
const ROWS_PER_INSERT: usize = 40;

const SYSTEMS: &[(&str, u32)] = &[
    ("juki", 30),
    ("zeimu", 20),
    ("fukushi", 20),
    ("kokuho", 15),
    ("library", 10),
    ("mamori", 5),
];
const ACTIONS: &[(&str, u32)] = &[
    ("record.read", 70),
    ("record.update", 12),
    ("record.print", 5),
    ("record.export", 3),
    ("record.delete", 2),
    ("auth.login", 8),
];

/// Cumulative weights, for drawing by binary search.
struct Weighted(Vec<f64>);

impl Weighted {
    fn new(w: impl Iterator<Item = f64>) -> Weighted {
        let mut acc = 0.0;
        Weighted(
            w.map(|x| {
                acc += x;
                acc
            })
            .collect(),
        )
    }
    fn draw(&self, rng: &mut Rng) -> usize {
        let total = *self.0.last().unwrap_or(&1.0);
        let x = (rng.next() >> 11) as f64 / (1u64 << 53) as f64 * total;
        self.0.partition_point(|&c| c <= x).min(self.0.len() - 1)
    }
}

/// Heavy-tailed weights over `n` items, shuffled so busy ones are spread.
fn heavy(n: usize, offset: f64, power: f64, rng: &mut Rng) -> Weighted {
    let mut w: Vec<f64> = (0..n)
        .map(|k| 1.0 / (k as f64 + offset).powf(power))
        .collect();
    for i in (1..n).rev() {
        w.swap(i, rng.below(i + 1));
    }
    Weighted::new(w.into_iter())
}

/// How busy hour `h` (from the start) is: office hours on weekdays.
fn hour_weight(h: i64) -> f64 {
    let day = h / 24;
    let hour = h % 24;
    // 2026-08-01 is a Saturday.
    let weekend = matches!(day % 7, 0 | 1);
    let office = (9..18).contains(&hour);
    let edge = hour == 8 || hour == 18;
    match (weekend, office, edge) {
        (true, true, _) => 5.0,
        (true, _, _) => 1.0,
        (false, true, _) => 50.0,
        (false, false, true) => 25.0,
        (false, false, false) if (7..22).contains(&hour) => 6.0,
        _ => 1.0,
    }
}

pub struct Row {
    time_us: i64,
    system: &'static str,
    actor: String,
    action: &'static str,
    asset: String,
    result: &'static str,
}

/// The generator: records in arrival (index) order.
struct Gen {
    rng: Rng,
    persons: Weighted,
    assets: Weighted,
    systems: Weighted,
    actions: Weighted,
    /// Records per hour, and how many of this hour are left.
    per_hour: Vec<u64>,
    hour: usize,
    left: u64,
    at: Vec<i64>,
}

impl Gen {
    fn new(total: u64) -> Gen {
        let mut rng = Rng::new(7);
        let persons = heavy(PERSONS, 10.0, 0.8, &mut rng);
        let assets = heavy(ASSETS, 5.0, 0.9, &mut rng);
        let hours = (DAYS * 24) as usize;
        let w: Vec<f64> = (0..hours as i64).map(hour_weight).collect();
        let sum: f64 = w.iter().sum();
        // Largest remainders would be exact; cumulative rounding is enough.
        let mut per_hour = Vec::with_capacity(hours);
        let (mut acc, mut given) = (0.0, 0u64);
        for x in &w {
            acc += x / sum * total as f64;
            let upto = acc.round() as u64;
            per_hour.push(upto - given);
            given = upto;
        }
        Gen {
            rng,
            persons,
            assets,
            systems: Weighted::new(SYSTEMS.iter().map(|s| s.1 as f64)),
            actions: Weighted::new(ACTIONS.iter().map(|s| s.1 as f64)),
            per_hour,
            hour: 0,
            left: 0,
            at: Vec::new(),
        }
    }

    fn next(&mut self) -> Option<Row> {
        while self.at.is_empty() {
            if self.hour >= self.per_hour.len() {
                return None;
            }
            // Arrivals within the hour, in order (popped from the end).
            let n = self.per_hour[self.hour];
            let base = START_US + self.hour as i64 * HOUR_US;
            let mut at: Vec<i64> = (0..n)
                .map(|_| base + (self.rng.next() % HOUR_US as u64) as i64)
                .collect();
            at.sort_unstable_by(|a, b| b.cmp(a));
            self.at = at;
            self.left = n;
            self.hour += 1;
        }
        let arrival = self.at.pop()?;
        let rng = &mut self.rng;
        let time_us = arrival - (rng.next() % (5 * US as u64)) as i64;
        let system = SYSTEMS[self.systems.draw(rng)].0;
        let action = ACTIONS[self.actions.draw(rng)].0;
        let roll = rng.below(1000);
        let result = if action == "auth.login" {
            if roll < 80 {
                "failure"
            } else {
                "success"
            }
        } else if roll < 960 {
            "success"
        } else if roll < 990 {
            "failure"
        } else {
            "denied"
        };
        let actor = format!("person:{}", self.persons.draw(rng) + 1);
        let asset = if action == "auth.login" {
            format!("system:{system}")
        } else {
            format!("asset:{}", self.assets.draw(rng) + 1)
        };
        Some(Row {
            time_us,
            system,
            actor,
            action,
            asset,
            result,
        })
    }
}

/// One search of the benchmark: by person or asset, over one week.
struct Query {
    by_actor: bool,
    value: String,
    from_us: i64,
    to_us: i64,
}

fn queries() -> Vec<Query> {
    // The same draws as the records (a separate stream, same weights).
    let mut g = Gen::new(0);
    g.rng = Rng::new(99);
    (0..SEARCHES)
        .map(|i| {
            let by_actor = i % 2 == 0;
            let value = if by_actor {
                format!("person:{}", g.persons.draw(&mut g.rng) + 1)
            } else {
                format!("asset:{}", g.assets.draw(&mut g.rng) + 1)
            };
            let day = g.rng.below((DAYS - 7) as usize) as i64 + 1;
            let from_us = START_US + day * DAY_US;
            Query {
                by_actor,
                value,
                from_us,
                to_us: from_us + 7 * DAY_US,
            }
        })
        .collect()
}

/// Percentile `p` (0–100) of sorted microseconds, in milliseconds.
fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let k = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[k.min(sorted.len() - 1)] / 1e3
}

/// Writes `total` generated records into the Mamori database at `db_path`
/// (schema already migrated) and into `csv` for DuckDB.
async fn generate(db_path: &Path, csv: &Path, total: u64) -> Result<u64, String> {
    let url = format!("sqlite://{}", db_path.display());
    let mut db = sqlx::SqliteConnection::connect(&url)
        .await
        .map_err(|e| e.to_string())?;
    let e = |e: sqlx::Error| e.to_string();
    for p in [
        "PRAGMA journal_mode=DELETE",
        "PRAGMA synchronous=OFF",
        "PRAGMA cache_size=-1000000",
    ] {
        db.execute(p).await.map_err(e)?;
    }
    let indexes: Vec<(String, String)> = sqlx::query_as(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'ledger_index' AND sql IS NOT NULL",
    )
    .fetch_all(&mut db)
    .await
    .map_err(e)?;
    for (name, _) in &indexes {
        db.execute(format!("DROP INDEX {name}").as_str())
            .await
            .map_err(e)?;
    }
    let mut out = std::io::BufWriter::with_capacity(
        1 << 20,
        std::fs::File::create(csv).map_err(|e| e.to_string())?,
    );
    let mut tx = db.begin().await.map_err(e)?;
    let one = "(?, ?, ?, ?, ?, ?, ?)";
    let full = format!(
        "INSERT INTO ledger_index (idx, time_us, system, actor, action, asset, result) VALUES {}",
        vec![one; ROWS_PER_INSERT].join(", ")
    );
    let mut gen = Gen::new(total);
    let mut idx: i64 = 0;
    let mut batch: Vec<Row> = Vec::with_capacity(ROWS_PER_INSERT);
    loop {
        let row = gen.next();
        let done = row.is_none();
        if let Some(r) = row {
            batch.push(r);
        }
        if batch.len() == ROWS_PER_INSERT || (done && !batch.is_empty()) {
            let sql = if batch.len() == ROWS_PER_INSERT {
                full.clone()
            } else {
                format!(
                    "INSERT INTO ledger_index (idx, time_us, system, actor, action, asset, result) VALUES {}",
                    vec![one; batch.len()].join(", ")
                )
            };
            let mut q = sqlx::query(&sql);
            for r in batch.drain(..) {
                writeln!(
                    out,
                    "{idx},{},{},{},{},{},{}",
                    r.time_us, r.system, r.actor, r.action, r.asset, r.result
                )
                .map_err(|e| e.to_string())?;
                q = q
                    .bind(idx)
                    .bind(r.time_us)
                    .bind(r.system)
                    .bind(r.actor)
                    .bind(r.action)
                    .bind(r.asset)
                    .bind(r.result);
                idx += 1;
            }
            q.execute(&mut *tx).await.map_err(e)?;
        }
        if done {
            break;
        }
    }
    tx.commit().await.map_err(e)?;
    out.flush().map_err(|e| e.to_string())?;
    for (_, sql) in &indexes {
        db.execute(sql.as_str()).await.map_err(e)?;
    }
    db.execute("PRAGMA journal_mode=WAL").await.map_err(e)?;
    db.close().await.map_err(e)?;
    Ok(idx as u64)
}

/// Runs the whole search benchmark; prints Markdown table rows.
pub async fn run() {
    let total: u64 = std::env::var("MAMORI_BENCH_SEARCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000);
    let dir = std::env::temp_dir().join(format!("mamori-bench-search-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("bench folder");
    let db_path = dir.join("mamori.db");
    let csv = dir.join("records.csv");
    let url = format!("sqlite://{}?mode=rwc", db_path.display());
    // Mamori's schema, by its own migrations.
    mamori_server::db::Db::connect(&url)
        .await
        .expect("create the database")
        .close()
        .await;
    let t = Instant::now();
    let n = generate(&db_path, &csv, total)
        .await
        .expect("generate the records");
    let generated = t.elapsed();

    let db = mamori_server::db::Db::connect(&url)
        .await
        .expect("open the database");
    let mut conn = db.pool().acquire().await.expect("connection");
    let qs = queries();
    let filter = |q: &Query| Filter {
        actor: q.by_actor.then(|| q.value.clone()),
        asset: (!q.by_actor).then(|| q.value.clone()),
        from_us: Some(q.from_us),
        to_us: Some(q.to_us),
        ..Filter::default()
    };
    // Warm-up: the first 100 queries once.
    for q in qs.iter().take(100) {
        store::search(&mut conn, &filter(q), &Within::Ward, None, 100)
            .await
            .expect("search");
    }
    let mut times = Vec::with_capacity(qs.len());
    let mut hits = 0usize;
    for q in &qs {
        let t = Instant::now();
        let h = store::search(&mut conn, &filter(q), &Within::Ward, None, 100)
            .await
            .expect("search");
        times.push(t.elapsed().as_secs_f64() * 1e6);
        hits += h.len();
    }
    times.sort_by(f64::total_cmp);
    let month = Filter {
        from_us: Some(MONTH_US),
        to_us: Some(MONTH_US + 30 * DAY_US),
        ..Filter::default()
    };
    let mut hist = Vec::new();
    let mut month_total = 0;
    for _ in 0..HISTOGRAMS {
        let t = Instant::now();
        let rows = store::buckets(
            &mut conn,
            &month,
            &Within::Ward,
            store::Extra::None,
            HOUR_US,
        )
        .await
        .expect("histogram");
        hist.push(t.elapsed().as_secs_f64() * 1e6);
        month_total = rows.iter().map(|r| r.1).sum::<i64>();
    }
    hist.sort_by(f64::total_cmp);
    drop(conn);
    db.close().await;

    // The peers, on the same rows and queries.
    let spec = serde_json::json!({
        "mamori_db": db_path,
        "csv": csv,
        "dir": dir,
        "searches": qs.iter().map(|q| serde_json::json!([if q.by_actor { "actor" } else { "asset" }, q.value, q.from_us, q.to_us])).collect::<Vec<_>>(),
        "month": [MONTH_US, MONTH_US + 30 * DAY_US],
        "histograms": HISTOGRAMS,
        "jst_us": JST_US,
        "hour_us": HOUR_US,
    });
    let spec_path = dir.join("spec.json");
    std::fs::write(&spec_path, spec.to_string()).expect("spec");
    let script = dir.join("search_peers.py");
    std::fs::write(&script, include_str!("../../../bench/search_peers.py")).expect("script");
    let out = std::process::Command::new("python3")
        .arg(&script)
        .arg(&spec_path)
        .output();
    let peers: Result<serde_json::Value, String> = match out {
        Ok(o) if o.status.success() => {
            serde_json::from_slice(&o.stdout).map_err(|e| format!("peer output: {e}"))
        }
        Ok(o) => Err(String::from_utf8_lossy(&o.stderr)
            .lines()
            .last()
            .unwrap_or("peer failed")
            .to_string()),
        Err(e) => Err(format!("python3: {e}")),
    };
    let _ = std::fs::remove_dir_all(&dir);

    let (p50, p95, p99) = (pct(&times, 50.0), pct(&times, 95.0), pct(&times, 99.0));
    let (h50, hmax) = (pct(&hist, 50.0), pct(&hist, 100.0));
    println!(
        "| {n} generated records written into Mamori's ledger_index (indexes rebuilt) | {:.1} s | — |",
        generated.as_secs_f64()
    );
    println!(
        "| Mamori search (store::search), person or asset + one week, first 100, {} queries ({:.1} hits each) | p50 {p50:.2} ms, p95 {p95:.2} ms, p99 {p99:.2} ms | p95 < 20 ms |",
        qs.len(),
        hits as f64 / qs.len() as f64
    );
    println!(
        "| Mamori hourly histogram of 30 days (store::buckets, {month_total} records), {HISTOGRAMS} runs | median {h50:.0} ms, max {hmax:.0} ms | < 500 ms |"
    );
    match peers {
        Ok(p) => {
            for (name, key) in [("SQLite", "sqlite"), ("DuckDB", "duckdb")] {
                let v = &p[key];
                let mut s: Vec<f64> = v["search_us"]
                    .as_array()
                    .map(|a| a.iter().filter_map(|x| x.as_f64()).collect())
                    .unwrap_or_default();
                s.sort_by(f64::total_cmp);
                let mut h: Vec<f64> = v["hist_us"]
                    .as_array()
                    .map(|a| a.iter().filter_map(|x| x.as_f64()).collect())
                    .unwrap_or_default();
                h.sort_by(f64::total_cmp);
                let ok = v["hist_total"].as_i64() == Some(month_total)
                    && v["hits"].as_u64() == Some(hits as u64);
                println!(
                    "| peer {name} ({}; load {:.1} s{}) search | p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms (Mamori p95 / peer p95 = {:.2}) | — |",
                    v["what"].as_str().unwrap_or(""),
                    v["load_s"].as_f64().unwrap_or(f64::NAN),
                    if ok { "" } else { "; ANSWERS DIFFER" },
                    pct(&s, 50.0),
                    pct(&s, 95.0),
                    pct(&s, 99.0),
                    p95 / pct(&s, 95.0)
                );
                println!(
                    "| peer {name} hourly histogram of 30 days | median {:.0} ms, max {:.0} ms (Mamori / peer = {:.2}) | — |",
                    pct(&h, 50.0),
                    pct(&h, 100.0),
                    h50 / pct(&h, 50.0)
                );
            }
        }
        Err(e) => println!("| peers SQLite and DuckDB | not measured: {e} | — |"),
    }
}
