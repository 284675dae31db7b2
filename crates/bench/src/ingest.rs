//! Ledger ingest over HTTP against a running `mamori serve`, and its peer:
//! the same batches into a plain indexed PostgreSQL table (no Merkle tree,
//! no proofs), in the same run.

use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// A keep-alive HTTP/1.1 connection.
pub struct Conn {
    r: BufReader<TcpStream>,
}

impl Conn {
    pub async fn open(port: u16) -> std::io::Result<Conn> {
        let s = TcpStream::connect(("127.0.0.1", port)).await?;
        s.set_nodelay(true)?;
        Ok(Conn {
            r: BufReader::new(s),
        })
    }

    /// Sends one request and reads the whole answer; returns (status, body).
    pub async fn post(
        &mut self,
        path: &str,
        token: &str,
        body: &str,
    ) -> std::io::Result<(u16, Vec<u8>)> {
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        let s = self.r.get_mut();
        s.write_all(head.as_bytes()).await?;
        s.write_all(body.as_bytes()).await?;
        let mut status = 0;
        let mut len = 0usize;
        let mut line = String::new();
        loop {
            line.clear();
            if self.r.read_line(&mut line).await? == 0 {
                return Err(std::io::Error::other("connection closed"));
            }
            let l = line.trim_end();
            if status == 0 {
                status = l
                    .split_whitespace()
                    .nth(1)
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
            } else if l.is_empty() {
                break;
            } else if let Some(v) = l.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; len];
        self.r.read_exact(&mut body).await?;
        Ok((status, body))
    }
}

/// One record of about 300 bytes as JSON.
pub fn record(client: usize, i: usize) -> String {
    format!(
        r#"{{"event_id":"c{client}-{i:09}","time":"2026-11-29T10:{:02}:{:02}+09:00","actor":"staff:{:06}","action":"resident.record.read","asset":"juminhyo/{:08}","result":"success","source_ip":"10.20.{}.{}","detail":{{"terminal":"T-{:04}","purpose":"窓口交付","screen":"detail"}}}}"#,
        (i / 60) % 60,
        i % 60,
        100_000 + i % 5000,
        i * 7919 % 100_000_000,
        i % 250,
        client,
        i % 3000
    )
}

pub fn batch(client: usize, from: usize, n: usize) -> String {
    let v: Vec<String> = (from..from + n).map(|i| record(client, i)).collect();
    format!("[{}]", v.join(","))
}

/// Batched ingest with `clients` connections; returns records/s.
pub async fn batched(port: u16, token: &str, clients: usize, batches: usize, size: usize) -> f64 {
    let t = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let token = token.to_string();
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::open(port).await.expect("connect");
            for b in 0..batches {
                let body = batch(c, b * size, size);
                let (st, resp) = conn
                    .post("/api/v1/ledger/records", &token, &body)
                    .await
                    .expect("post");
                assert_eq!(st, 200, "{}", String::from_utf8_lossy(&resp));
            }
        }));
    }
    for t in tasks {
        t.await.expect("client");
    }
    (clients * batches * size) as f64 / t.elapsed().as_secs_f64()
}

/// `clients` concurrent clients each sending `each` single-record requests;
/// returns (records/s, p50, p99 time to acknowledgement).
pub async fn single(
    port: u16,
    token: &str,
    clients: usize,
    each: usize,
) -> (f64, Duration, Duration) {
    let t = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let token = token.to_string();
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::open(port).await.expect("connect");
            let mut lat = Vec::with_capacity(each);
            for i in 0..each {
                let body = format!("[{}]", record(1000 + c, i));
                let s = Instant::now();
                let (st, resp) = conn
                    .post("/api/v1/ledger/records", &token, &body)
                    .await
                    .expect("post");
                assert_eq!(st, 200, "{}", String::from_utf8_lossy(&resp));
                lat.push(s.elapsed());
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("client"));
    }
    let rate = all.len() as f64 / t.elapsed().as_secs_f64();
    all.sort();
    (rate, all[all.len() / 2], all[all.len() * 99 / 100])
}

/// The peer: the same batches into a plain PostgreSQL table with the same
/// indexes as the ledger's search index, one transaction per batch.
pub async fn postgres_peer(
    url: &str,
    clients: usize,
    batches: usize,
    size: usize,
) -> Result<f64, sqlx::Error> {
    sqlx::any::install_default_drivers();
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(clients as u32 + 1)
        .connect(url)
        .await?;
    for stmt in [
        "DROP TABLE IF EXISTS bench_peer_records",
        "CREATE TABLE bench_peer_records (id BIGSERIAL PRIMARY KEY, system TEXT NOT NULL, event_id TEXT NOT NULL,
            time_us BIGINT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL, asset TEXT NOT NULL, result TEXT NOT NULL,
            source_ip TEXT, detail TEXT, UNIQUE (system, event_id))",
        "CREATE INDEX ON bench_peer_records (actor, time_us)",
        "CREATE INDEX ON bench_peer_records (asset, time_us)",
        "CREATE INDEX ON bench_peer_records (system, time_us)",
        "CREATE INDEX ON bench_peer_records (time_us)",
    ] {
        sqlx::query(stmt).execute(&pool).await?;
    }
    let t = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            for b in 0..batches {
                let body = batch(c, b * size, size);
                let recs: Vec<serde_json::Value> = serde_json::from_str(&body).expect("json");
                let mut tx = pool.begin().await?;
                for chunk in recs.chunks(500) {
                    let mut sql = String::from("INSERT INTO bench_peer_records (system, event_id, time_us, actor, action, asset, result, source_ip, detail) VALUES ");
                    for k in 0..chunk.len() {
                        if k > 0 {
                            sql.push(',');
                        }
                        let p = k * 9;
                        sql.push_str(&format!("(${},${},${},${},${},${},${},${},${})", p + 1, p + 2, p + 3, p + 4, p + 5, p + 6, p + 7, p + 8, p + 9));
                    }
                    let mut q = sqlx::query(&sql);
                    for r in chunk {
                        q = q
                            .bind("library")
                            .bind(r["event_id"].as_str().unwrap_or("").to_string())
                            .bind(1_795_900_000_000_000i64)
                            .bind(r["actor"].as_str().unwrap_or("").to_string())
                            .bind(r["action"].as_str().unwrap_or("").to_string())
                            .bind(r["asset"].as_str().unwrap_or("").to_string())
                            .bind(r["result"].as_str().unwrap_or("").to_string())
                            .bind(r["source_ip"].as_str().unwrap_or("").to_string())
                            .bind(r["detail"].to_string());
                    }
                    q.execute(&mut *tx).await?;
                }
                tx.commit().await?;
            }
            Ok::<(), sqlx::Error>(())
        }));
    }
    for t in tasks {
        t.await.expect("client")?;
    }
    let rate = (clients * batches * size) as f64 / t.elapsed().as_secs_f64();
    sqlx::query("DROP TABLE IF EXISTS bench_peer_records")
        .execute(&pool)
        .await?;
    Ok(rate)
}
