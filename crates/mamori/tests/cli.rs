//! The `mamori` command as an operator runs it: serve (with the demo ward,
//! health check and graceful shutdown), import personnel, reset-password.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn mamori(data: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mamori"));
    c.arg("--data").arg(data).env("MAMORI_LOG", "warn");
    c
}

fn get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

#[test]
fn serve_demo_then_stop_gracefully() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = mamori(dir.path())
        .args(["serve", "--demo", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let t = Instant::now();
    let mut ok = false;
    while t.elapsed() < Duration::from_secs(120) {
        if get(port, "/healthz").is_some_and(|r| r.starts_with("HTTP/1.1 200")) {
            ok = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(ok, "server never became ready");
    let login = get(port, "/login").unwrap();
    assert!(login.contains("ログイン"), "{login}");
    assert!(
        login
            .to_lowercase()
            .contains("set-cookie: __host-mamori_session="),
        "{login}"
    );
    // The accounts file is private to its owner.
    let accounts = dir.path().join("demo-accounts.txt");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&accounts).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let text = std::fs::read_to_string(&accounts).unwrap();
    assert!(text.lines().filter(|l| !l.starts_with('#')).count() >= 40);
    Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "graceful shutdown exits 0: {status:?}");
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert!(out.contains("Demo ward loaded"), "{out}");
}

#[test]
fn import_personnel_all_or_nothing_and_reset_password() {
    let dir = tempfile::tempdir().unwrap();
    // Load the demo ward by starting once on a port that is free.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = mamori(dir.path())
        .args(["serve", "--demo", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(120) && get(port, "/healthz").is_none() {
        std::thread::sleep(Duration::from_millis(50));
    }
    Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    child.wait().unwrap();

    let header = "職員番号,異動種別,発令日,氏名,氏名カナ,生年月日,雇用形態,所属コード\n";
    let bad = format!("{header}920001,採用,2026-04-01,目黒 三郎,メグロ サブロウ,1992-03-04,正規,koseki\n920002,採用,2026-04-01,,,,,koseki\n");
    let file = dir.path().join("bad.csv");
    let (sjis, _, _) = encoding_rs::SHIFT_JIS.encode(&bad);
    std::fs::write(&file, &sjis).unwrap();
    let out = mamori(dir.path())
        .args(["import", "personnel"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(":3"), "the bad line is named: {err}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("nothing applied"));
    let out = mamori(dir.path())
        .args(["import", "personnel", "--apply-valid"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("1 events"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    let out = mamori(dir.path())
        .args(["user", "reset-password", "920001"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let otp = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(otp.len(), 19, "{otp}");
    let out = mamori(dir.path())
        .args(["user", "reset-password", "nobody"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no account"));
}

/// `mamori report export` (SPEC §5): the K32.3–4 report as PDF with
/// extractable Japanese text, or as JSON.
#[test]
fn report_export_pdf_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let pdf = dir.path().join("report.pdf");
    let out = mamori(dir.path())
        .args(["report", "export", "--out"])
        .arg(&pdf)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(&pdf).unwrap();
    assert!(bytes.starts_with(b"%PDF-"));
    let text = Command::new("pdftotext")
        .args(["-enc", "UTF-8"])
        .arg(&pdf)
        .arg("-")
        .output()
        .expect("pdftotext (poppler-utils)");
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("情報セキュリティ点検・監査結果報告書"),
        "{text}"
    );
    let json = dir.path().join("report.json");
    let out = mamori(dir.path())
        .args(["report", "export", "--out"])
        .arg(&json)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert!(v["as_of_wareki"].as_str().unwrap().starts_with("令和"));
    // A missing font is a clear error naming the setting, not a panic.
    let out = mamori(dir.path())
        .env("MAMORI_REPORT_FONT", "/nonexistent.ttf")
        .args(["report", "export", "--out"])
        .arg(&pdf)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("report.font_path"));
}
