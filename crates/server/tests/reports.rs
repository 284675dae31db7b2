//! The compiled inspection and audit report (K32.3–4): HTML, JSON and a PDF
//! whose Japanese text (title, 和暦 date, findings) comes back out with
//! poppler's `pdftotext`. Both engines.

mod common;

use axum::http::StatusCode;
use common::{login_with_role, manager_of, plain_staff, TestApp};
use serde_json::json;

/// The PDF's text as `pdftotext` extracts it.
fn pdf_text(bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.pdf");
    std::fs::write(&path, bytes).unwrap();
    let out = std::process::Command::new("pdftotext")
        .args(["-enc", "UTF-8"])
        .arg(&path)
        .arg("-")
        .output()
        .expect(
            "pdftotext (Debian poppler-utils) must be installed: apt-get install poppler-utils",
        );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// An audit with one overdue-to-be finding, so the report has content.
async fn with_finding(app: &TestApp) {
    let mut d = app
        .logged_in(&login_with_role(app, "セキュリティ統括者"))
        .await;
    let today = app.state.clock().today();
    let day = |n: i64| mamori_server::clock::date_str(today + time::Duration::days(n));
    let r = d
        .post_json(
            "/api/v1/audits",
            &json!({ "title": "令和8年度外部監査", "scope": "主要な情報システム", "auditor_org": "監査法人みなと",
                     "starts_on": day(0), "ends_on": day(5) }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let id = r.json()["id"].as_i64().unwrap();
    let r = d
        .post_json(
            &format!("/api/v1/audits/{id}/findings"),
            &json!({ "title": "運用管理者が上限を超過", "severity": "high", "clauses": "K18",
                     "owner": manager_of(app, "戸籍住民課"), "due_on": day(0) }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    // A self-inspection campaign (K32.1), compiled into the report.
    let r = d
        .post_json(
            "/api/v1/inspection-campaigns",
            &json!({ "title": "令和8年度自己点検", "due_on": day(20) }),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text());
}

both_engines!(
    k32_3_report_pdf_has_extractable_japanese_text,
    |app: TestApp| async move {
        if !std::path::Path::new(&app.state.config().report.font_path).exists() {
            panic!(
                "the report font {} is missing: apt-get install fonts-ipafont-gothic",
                app.state.config().report.font_path.display()
            );
        }
        with_finding(&app).await;
        // Two days of check runs make the compliance chart.
        mamori_server::compliance::run_all(&app.state)
            .await
            .unwrap();
        app.state.clock().advance(86_400);
        mamori_server::compliance::run_all(&app.state)
            .await
            .unwrap();
        let mut cio = app
            .logged_in(&login_with_role(&app, "最高情報統括責任者"))
            .await;
        let r = cio.get("/api/v1/reports/compliance.pdf").await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert_eq!(r.content_type(), "application/pdf");
        assert!(r.body.starts_with(b"%PDF-"));
        // The font is embedded as a subset, not whole (ipag.ttf is ~6 MB).
        assert!(r.body.len() < 1_000_000, "{} bytes", r.body.len());
        let text = pdf_text(&r.body);
        let today = mamori_policy::wareki::format_date_ja(app.state.clock().today());
        assert!(today.starts_with("令和"), "{today}");
        for want in [
            "情報セキュリティ点検・監査結果報告書",
            today.as_str(),
            "条項別の遵守状況",
            "運用管理者が上限を超過",
            "基準第18条",
            "重大",
            "（超過）",
            "未完了の指摘事項",
            "遵守状況の推移",
            "令和8年度自己点検",
            "未着手",
        ] {
            assert!(text.contains(want), "{want:?} not in the PDF text:\n{text}");
        }
        // The page (same data) and the JSON.
        let page = cio.get("/reports/compliance").await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.text().contains(&today) && page.text().contains("運用管理者が上限を超過"));
        let j = cio.get("/api/v1/reports/compliance").await.json();
        assert_eq!(j["as_of_wareki"], today.as_str());
        assert_eq!(j["totals"]["overdue_findings"], 1);
        let k18 = j["clauses"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["clause"] == "K18")
            .cloned()
            .unwrap();
        assert_eq!(k18["status"], "noncompliant");
        // The clause table comes from the catalog, the checks feed it and the trend.
        assert!(j["clauses"].as_array().unwrap().len() > 20);
        assert!(j["policy_version"].is_string(), "{}", j["policy_version"]);
        assert_eq!(j["trend"].as_array().unwrap().len(), 2, "{}", j["trend"]);
        assert!(j["totals"]["checks"].as_i64().unwrap() >= 10);
        assert!(page.text().contains("id=\"trend-chart\""));
        assert_eq!(j["self_inspection"]["campaign"], "令和8年度自己点検");
        assert!(j["self_inspection"]["departments"].as_i64().unwrap() > 0);
        assert_eq!(j["self_inspection"]["submitted"], 0);
        // The page's PDF link works too; staff may not read the report.
        assert_eq!(
            cio.get("/reports/compliance.pdf").await.status,
            StatusCode::OK
        );
        let mut s = app.logged_in(&plain_staff(&app, "企画課")).await;
        assert_eq!(
            s.get("/api/v1/reports/compliance.pdf").await.status,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            s.get("/reports/compliance").await.status,
            StatusCode::FORBIDDEN
        );
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn k32_3_missing_font_gives_a_clear_503() {
    let Some(app) = common::app_with(common::Engine::Sqlite, |c| {
        c.report.font_path = "/nonexistent/ipag.ttf".into();
    })
    .await
    else {
        return;
    };
    let mut d = app
        .logged_in(&login_with_role(&app, "セキュリティ統括者"))
        .await;
    let r = d.get("/api/v1/reports/compliance.pdf").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text());
    assert_eq!(r.json()["code"], "report.font_missing");
    assert!(r.json()["detail"]
        .as_str()
        .unwrap()
        .contains("report.font_path"));
    let r = d.get("/reports/compliance.pdf").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.text().contains("report.font_path"));
    // The HTML report does not need the font.
    assert_eq!(d.get("/reports/compliance").await.status, StatusCode::OK);
}
