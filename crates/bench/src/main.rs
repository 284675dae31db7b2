//! Measures the real `mamori` binary the way an operator would see it:
//! start-to-ready on an existing data folder, idle RSS with the demo ward,
//! and 100 concurrent logins (throughput and peak RSS, which must stay
//! bounded because Argon2 work is queued). Prints a Markdown table.
//!
//! Then the ledger over HTTP against a plain PostgreSQL table, and access
//! decisions over HTTP on the generated ward model.
//!
//! Usage: mamori-bench SPINE_BINARY [ROUNDS]
//! `MAMORI_BENCH_ONLY=access` runs the access-decision part alone,
//! `MAMORI_BENCH_ONLY=search` the search over 10 million records alone
//! (`MAMORI_BENCH_SEARCH_RECORDS` changes the count).

mod access;
mod ingest;
mod search;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(18080)
}

/// One HTTP/1.1 request over a fresh connection; returns the status.
async fn http(port: u16, method: &str, path: &str, body: Option<&str>) -> std::io::Result<u16> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await?;
    let body = body.unwrap_or("");
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await?;
    let head = String::from_utf8_lossy(&buf[..buf.len().min(16)]).to_string();
    Ok(head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0))
}

fn rss_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .map(|l| l.to_string())
        })
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

fn start(bin: &Path, data: &Path, port: u16, demo: bool) -> Child {
    let mut cmd = Command::new(bin);
    cmd.arg("--data")
        .arg(data)
        .arg("serve")
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"));
    if demo {
        cmd.arg("--demo");
    }
    cmd.env("MAMORI_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start mamori")
}

async fn wait_ready(port: u16, limit: Duration) -> Option<Duration> {
    let t = Instant::now();
    while t.elapsed() < limit {
        if http(port, "GET", "/healthz", None).await.ok() == Some(200) {
            return Some(t.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    None
}

fn stop(mut child: Child) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let _ = child.wait();
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let bin = PathBuf::from(
        args.get(1)
            .cloned()
            .unwrap_or_else(|| "target/release/mamori".into()),
    );
    let rounds: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(5);
    if std::env::var("MAMORI_BENCH_ONLY").as_deref() == Ok("access") {
        println!("| measure | result | goal |");
        println!("| --- | --- | --- |");
        access_part(&bin).await;
        return;
    }
    if std::env::var("MAMORI_BENCH_ONLY").as_deref() == Ok("search") {
        println!("| measure | result | goal |");
        println!("| --- | --- | --- |");
        search::run().await;
        return;
    }
    let dir = std::env::temp_dir().join(format!("mamori-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);

    // First start loads the demo ward.
    let port = free_port();
    let child = start(&bin, &dir, port, true);
    wait_ready(port, Duration::from_secs(60))
        .await
        .expect("first start never became ready");
    stop(child);

    // Start to ready on the existing folder, several rounds.
    let mut starts = Vec::new();
    for _ in 0..rounds {
        let port = free_port();
        let t = Instant::now();
        let child = start(&bin, &dir, port, false);
        wait_ready(port, Duration::from_secs(30))
            .await
            .expect("restart never became ready");
        starts.push(t.elapsed());
        stop(child);
    }
    starts.sort();

    // Idle RSS with the demo ward, after a few requests.
    let port = free_port();
    let child = start(&bin, &dir, port, false);
    wait_ready(port, Duration::from_secs(30))
        .await
        .expect("ready");
    for _ in 0..10 {
        let _ = http(port, "GET", "/login", None).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle = rss_kib(child.id(), "VmRSS:");

    // 100 concurrent logins with the demo accounts.
    let accounts: Vec<(String, String)> = std::fs::read_to_string(dir.join("demo-accounts.txt"))
        .expect("demo accounts")
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let c: Vec<&str> = l.split('\t').collect();
            (c[0].to_string(), c[1].to_string())
        })
        .collect();
    let t = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..100 {
        let (login, pw) = accounts[i % accounts.len()].clone();
        tasks.push(tokio::spawn(async move {
            let body = serde_json::json!({ "login": login, "password": pw }).to_string();
            http(port, "POST", "/api/v1/session", Some(&body))
                .await
                .unwrap_or(0)
        }));
    }
    let mut ok = 0;
    for task in tasks {
        if task.await.unwrap_or(0) == 200 {
            ok += 1;
        }
    }
    let burst = t.elapsed();
    let peak = rss_kib(child.id(), "VmHWM:");
    let after = rss_kib(child.id(), "VmRSS:");
    stop(child);
    let _ = std::fs::remove_dir_all(&dir);

    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    println!("| measure | result | goal |");
    println!("| --- | --- | --- |");
    println!(
        "| start to ready, existing data folder (median of {rounds}; min–max) | {:.0} ms ({:.0}–{:.0}) | < 1 s |",
        starts[starts.len() / 2].as_secs_f64() * 1e3,
        starts[0].as_secs_f64() * 1e3,
        starts[starts.len() - 1].as_secs_f64() * 1e3
    );
    println!(
        "| idle RSS, demo ward | {:.1} MB | < 50 MB |",
        idle as f64 / 1024.0
    );
    println!("| 100 concurrent logins: succeeded | {ok}/100 | 100 |");
    println!(
        "| 100 concurrent logins: logins/s (Argon2id m=19 MiB t=2, {cores} cores) | {:.1} | — |",
        100.0 / burst.as_secs_f64()
    );
    println!(
        "| 100 concurrent logins: peak RSS (VmHWM) / RSS after | {:.1} MB / {:.1} MB | bounded |",
        peak as f64 / 1024.0,
        after as f64 / 1024.0
    );
    if ok != 100 {
        std::process::exit(1);
    }

    // The ledger over HTTP (issue 3).
    let dir = std::env::temp_dir().join(format!("mamori-bench-ledger-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let port = free_port();
    let child = start(&bin, &dir, port, true);
    wait_ready(port, Duration::from_secs(60))
        .await
        .expect("ready");
    let out = Command::new(&bin)
        .arg("--data")
        .arg(&dir)
        .args([
            "token",
            "create",
            "--system",
            "library",
            "--scope",
            "ledger:write",
        ])
        .output()
        .expect("token");
    let token = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let batches: usize = std::env::var("MAMORI_BENCH_BATCHES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let http_rate = ingest::batched(port, &token, 2, batches, 1000).await;
    let (single_rate, p50, p99) = ingest::single(port, &token, 64, 100).await;
    stop(child);
    let _ = std::fs::remove_dir_all(&dir);
    let pg = std::env::var("MAMORI_BENCH_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let peer = ingest::postgres_peer(&pg, 2, batches, 1000).await;
    println!("| ledger ingest over HTTP, SQLite + file log, batches of 1,000 (~300 B), 2 clients, durable | {http_rate:.0} records/s | ≥ 50,000/s |");
    match peer {
        Ok(p) => println!(
            "| peer: same batches into a plain indexed PostgreSQL table, 2 clients | {p:.0} records/s (Mamori/peer = {:.2}) | ratio ≥ 1 |",
            http_rate / p
        ),
        Err(e) => println!("| peer: plain PostgreSQL table | not measured: {e} | ratio ≥ 1 |"),
    }
    println!(
        "| ledger ingest, 64 clients × single-record requests | {single_rate:.0} records/s, p50 {:.1} ms, p99 {:.1} ms to durable | ≥ 10,000/s, p99 ≤ 50 ms |",
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3
    );
    access_part(&bin).await;
    search::run().await;
}

/// Access decisions over HTTP on the generated ward (issue 4).
async fn access_part(bin: &Path) {
    let dir = std::env::temp_dir().join(format!("mamori-bench-access-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let port = free_port();
    let child = start(bin, &dir, port, true);
    wait_ready(port, Duration::from_secs(60))
        .await
        .expect("ready");
    stop(child);
    let t = Instant::now();
    let grants = std::sync::Arc::new(
        access::generate(&dir)
            .await
            .expect("generate the ward model"),
    );
    let generated = t.elapsed();
    let port = free_port();
    let t = Instant::now();
    let child = start(bin, &dir, port, false);
    wait_ready(port, Duration::from_secs(120))
        .await
        .expect("ready");
    let ready = t.elapsed();
    let rss = rss_kib(child.id(), "VmRSS:");
    let out = Command::new(bin)
        .arg("--data")
        .arg(&dir)
        .args([
            "token",
            "create",
            "--system",
            "facility",
            "--scope",
            "access:check",
        ])
        .output()
        .expect("token");
    let token = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let each: usize = std::env::var("MAMORI_BENCH_CHECKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000);
    // Warm up, then measure.
    let _ = access::decisions(port, &token, &grants, 8, 200).await;
    let (rate, allowed, p50, p99) = access::decisions(port, &token, &grants, 32, each).await;
    stop(child);
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "| generated ward ({} units, {} staff, {} assets of which 20 % secret, {} grants) written in | {:.1} s | — |",
        access::UNITS, access::STAFF, access::ASSETS, access::GRANTS, generated.as_secs_f64()
    );
    println!(
        "| start to ready with that model loaded into the engine; RSS after | {:.0} ms; {:.1} MB | report |",
        ready.as_secs_f64() * 1e3,
        rss as f64 / 1024.0
    );
    println!(
        "| access decisions over HTTP, 32 keep-alive clients, {each} each (secret ones recorded) | {rate:.0} decisions/s ({:.1} % allowed), p50 {:.2} ms, p99 {:.2} ms | ≥ 20,000/s |",
        allowed * 100.0,
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3
    );
}
