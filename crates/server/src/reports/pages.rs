//! The report as a page (K32.3–4), with the chart drawn by the server as SVG.

use super::TrendPoint;
use crate::app::{AppState, Routes};
use crate::auth::perm::ViewComplianceReport;
use crate::auth::Require;
use crate::web::error::PageError;
use crate::web::templates::{render, Chrome};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

pub fn routes(r: Routes) -> Routes {
    r.get("/reports/compliance", page)
        .get("/reports/compliance.pdf", pdf)
}

async fn page(
    State(state): State<AppState>,
    req: Require<ViewComplianceReport>,
) -> Result<Response, PageError> {
    let report = super::build(&state).await?;
    let chart = trend_chart(&report.trend);
    let html = render(
        "compliance_report.html",
        &Chrome::for_actor(&req.actor),
        json!({ "report": report, "chart": chart, "title": super::pdf::TITLE }),
    )?;
    Ok(html.into_response())
}

async fn pdf(
    State(state): State<AppState>,
    _req: Require<ViewComplianceReport>,
) -> Result<Response, PageError> {
    Ok(super::api::pdf_response(&state).await?)
}

/// A line chart of the share of checks passing (viewBox 760 × 220).
fn trend_chart(trend: &[TrendPoint]) -> Value {
    const W: f64 = 760.0;
    const H: f64 = 220.0;
    const LEFT: f64 = 44.0;
    const TOP: f64 = 10.0;
    const BOTTOM: f64 = 28.0;
    let pts: Vec<&TrendPoint> = trend.iter().filter(|p| p.total > 0).collect();
    let plot_w = W - LEFT - 10.0;
    let plot_h = H - TOP - BOTTOM;
    let n = pts.len();
    let fmt = |v: f64| format!("{v:.1}");
    let xy: Vec<(f64, f64)> = pts
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let x = if n > 1 {
                LEFT + plot_w * i as f64 / (n - 1) as f64
            } else {
                LEFT + plot_w / 2.0
            };
            (x, TOP + plot_h - plot_h * p.passed as f64 / p.total as f64)
        })
        .collect();
    let every = n.div_ceil(10).max(1);
    let points: Vec<Value> = pts
        .iter()
        .zip(&xy)
        .enumerate()
        .map(|(i, (p, (x, y)))| {
            json!({ "x": fmt(*x), "y": fmt(*y), "date": p.date, "passed": p.passed, "total": p.total,
                    "label": (i % every == 0 || i + 1 == n).then(|| p.date.get(5..).unwrap_or("").replace('-', "/")) })
        })
        .collect();
    let line = xy
        .iter()
        .map(|(x, y)| format!("{},{}", fmt(*x), fmt(*y)))
        .collect::<Vec<_>>()
        .join(" ");
    let grid: Vec<Value> = [0, 50, 100]
        .iter()
        .map(|v| json!({ "y": fmt(TOP + plot_h - plot_h * *v as f64 / 100.0), "label": format!("{v}%") }))
        .collect();
    json!({ "w": W, "h": H, "left": LEFT, "right": fmt(W - 10.0), "label_y": fmt(H - 8.0),
            "points": points, "line": line, "grid": grid, "empty": n == 0 })
}
