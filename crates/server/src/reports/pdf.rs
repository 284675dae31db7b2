//! The report as PDF (K32.3–4), drawn with `krilla`: real Japanese text in
//! a subset of the configured font (embedded with a ToUnicode map, so the
//! text can be searched and extracted), 和暦 dates, tables and the
//! compliance chart as vector paths.
//!
//! Layout is a pure first pass ([`layout`]) into pages of drawing
//! operations; [`render`] then draws them. Widths come from the font being
//! monospaced in its two widths (IPAゴシック: full-width glyphs 1 em, ASCII
//! ½ em), which is all a table needs.

use super::{ComplianceReport, TrendPoint};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// A4 portrait, in points.
const W: f32 = 595.28;
const H: f32 = 841.89;
const MARGIN: f32 = 50.0;
const BOTTOM: f32 = H - 60.0;
const BODY: f32 = 9.0;
const ROW: f32 = 15.0;

#[derive(Debug, thiserror::Error)]
pub enum PdfError {
    /// The configured font is missing or unreadable (setting `report.font_path`).
    #[error("the report font {path} cannot be read: {reason}")]
    Font { path: PathBuf, reason: String },
    #[error("the PDF could not be written: {0}")]
    Write(String),
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Rgb(u8, u8, u8);

const BLACK: Rgb = Rgb(0x1a, 0x1a, 0x1a);
const GREY: Rgb = Rgb(0x66, 0x66, 0x66);
const LIGHT: Rgb = Rgb(0xdd, 0xdd, 0xdd);
const HEAD: Rgb = Rgb(0xe8, 0xee, 0xf4);
const BAD: Rgb = Rgb(0xb0, 0x20, 0x20);
const GOOD: Rgb = Rgb(0x1d, 0x6b, 0x3a);
const LINE: Rgb = Rgb(0x1f, 0x4e, 0x8c);

/// One drawing operation on a page (coordinates from the top left).
#[derive(Debug, Clone, PartialEq)]
enum Op {
    Text {
        x: f32,
        y: f32,
        size: f32,
        color: Rgb,
        text: String,
    },
    Rect {
        x: f32,
        y: f32,
        w: f32,
        h: f32,
        color: Rgb,
    },
    Line {
        points: Vec<(f32, f32)>,
        width: f32,
        color: Rgb,
    },
}

/// Width of `s` at `size`: full-width glyphs are 1 em, ASCII ½ em.
fn text_width(s: &str, size: f32) -> f32 {
    s.chars()
        .map(|c| {
            if (c as u32) < 0x80 || ('\u{ff61}'..='\u{ff9f}').contains(&c) {
                0.5
            } else {
                1.0
            }
        })
        .sum::<f32>()
        * size
}

/// `s` cut to fit `width`, with an ellipsis when cut.
fn fit(s: &str, size: f32, width: f32) -> String {
    if text_width(s, size) <= width {
        return s.to_string();
    }
    let mut out = String::new();
    for c in s.chars() {
        let next = format!("{out}{c}…");
        if text_width(&next, size) > width {
            break;
        }
        out.push(c);
    }
    out.push('…');
    out
}

/// Lines of `s` wrapped to `width`.
fn wrap(s: &str, size: f32, width: f32) -> Vec<String> {
    let mut lines = Vec::new();
    for para in s.lines() {
        let mut line = String::new();
        for c in para.chars() {
            let next = format!("{line}{c}");
            if text_width(&next, size) > width && !line.is_empty() {
                lines.push(std::mem::take(&mut line));
            }
            line.push(c);
        }
        lines.push(line);
    }
    lines
}

struct Pages {
    pages: Vec<Vec<Op>>,
    y: f32,
}

impl Pages {
    fn new() -> Pages {
        Pages {
            pages: vec![vec![]],
            y: MARGIN,
        }
    }

    fn ops(&mut self) -> &mut Vec<Op> {
        if self.pages.is_empty() {
            self.pages.push(vec![]);
        }
        let last = self.pages.len() - 1;
        &mut self.pages[last]
    }

    fn push(&mut self, op: Op) {
        self.ops().push(op);
    }

    /// Starts a new page when less than `need` points are left.
    fn need(&mut self, need: f32) -> bool {
        if self.y + need > BOTTOM {
            self.pages.push(vec![]);
            self.y = MARGIN;
            true
        } else {
            false
        }
    }

    fn text(&mut self, x: f32, size: f32, color: Rgb, text: impl Into<String>) {
        let y = self.y + size;
        self.push(Op::Text {
            x,
            y,
            size,
            color,
            text: text.into(),
        });
    }

    fn line(&mut self, text: impl Into<String>, size: f32, color: Rgb) {
        self.need(size * 1.6);
        self.text(MARGIN, size, color, text);
        self.y += size * 1.6;
    }

    fn paragraph(&mut self, text: &str) {
        for l in wrap(text, BODY, W - 2.0 * MARGIN) {
            self.line(l, BODY, BLACK);
        }
    }

    fn heading(&mut self, text: &str) {
        self.y += 8.0;
        self.need(40.0);
        self.text(MARGIN, 12.0, LINE, text);
        self.y += 16.0;
        self.push(Op::Line {
            points: vec![(MARGIN, self.y), (W - MARGIN, self.y)],
            width: 0.8,
            color: LINE,
        });
        self.y += 6.0;
    }

    /// A table: `cols` are (header, width); rows of cells with a color.
    fn table(&mut self, cols: &[(&str, f32)], rows: &[Vec<(String, Rgb)>]) {
        let header = |p: &mut Pages| {
            let total: f32 = cols.iter().map(|c| c.1).sum();
            p.push(Op::Rect {
                x: MARGIN,
                y: p.y,
                w: total,
                h: ROW,
                color: HEAD,
            });
            let mut x = MARGIN + 3.0;
            for (h, w) in cols {
                let y = p.y + 2.0;
                p.push(Op::Text {
                    x,
                    y: y + BODY,
                    size: BODY,
                    color: BLACK,
                    text: fit(h, BODY, w - 6.0),
                });
                x += w;
            }
            p.y += ROW;
        };
        self.need(ROW * 2.0);
        header(self);
        for row in rows {
            if self.need(ROW) {
                header(self);
            }
            let mut x = MARGIN + 3.0;
            for ((cell, color), (_, w)) in row.iter().zip(cols) {
                let y = self.y + 2.0 + BODY;
                self.push(Op::Text {
                    x,
                    y,
                    size: BODY,
                    color: *color,
                    text: fit(cell, BODY, w - 6.0),
                });
                x += w;
            }
            self.y += ROW;
            let total: f32 = cols.iter().map(|c| c.1).sum();
            self.push(Op::Line {
                points: vec![(MARGIN, self.y), (MARGIN + total, self.y)],
                width: 0.3,
                color: LIGHT,
            });
        }
    }

    /// The compliance chart: share of checks passing per day, as paths.
    fn chart(&mut self, trend: &[TrendPoint], empty: &str) {
        let (cw, ch) = (W - 2.0 * MARGIN, 170.0);
        self.need(ch + 30.0);
        let (left, top) = (MARGIN + 34.0, self.y + 6.0);
        let (pw, ph) = (cw - 44.0, ch - 30.0);
        for pct in [0, 50, 100] {
            let y = top + ph - ph * pct as f32 / 100.0;
            self.push(Op::Line {
                points: vec![(left, y), (left + pw, y)],
                width: if pct == 0 { 0.8 } else { 0.3 },
                color: if pct == 0 { GREY } else { LIGHT },
            });
            self.push(Op::Text {
                x: MARGIN,
                y: y + 3.0,
                size: 8.0,
                color: GREY,
                text: format!("{pct}%"),
            });
        }
        self.push(Op::Line {
            points: vec![(left, top), (left, top + ph)],
            width: 0.8,
            color: GREY,
        });
        let pts: Vec<&TrendPoint> = trend.iter().filter(|p| p.total > 0).collect();
        if pts.is_empty() {
            self.push(Op::Text {
                x: left + 10.0,
                y: top + ph / 2.0,
                size: BODY,
                color: GREY,
                text: empty.into(),
            });
        } else {
            let n = pts.len();
            let step = if n > 1 { pw / (n - 1) as f32 } else { 0.0 };
            let xy: Vec<(f32, f32)> = pts
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let x = if n > 1 {
                        left + step * i as f32
                    } else {
                        left + pw / 2.0
                    };
                    (x, top + ph - ph * p.passed as f32 / p.total as f32)
                })
                .collect();
            if xy.len() > 1 {
                self.push(Op::Line {
                    points: xy.clone(),
                    width: 1.6,
                    color: LINE,
                });
            }
            for (x, y) in &xy {
                self.push(Op::Rect {
                    x: x - 2.0,
                    y: y - 2.0,
                    w: 4.0,
                    h: 4.0,
                    color: LINE,
                });
            }
            let every = n.div_ceil(8).max(1);
            for (i, p) in pts.iter().enumerate() {
                if i % every == 0 || i == n - 1 {
                    let label = p.date.get(5..).unwrap_or("").replace('-', "/");
                    self.push(Op::Text {
                        x: xy[i].0 - text_width(&label, 8.0) / 2.0,
                        y: top + ph + 12.0,
                        size: 8.0,
                        color: GREY,
                        text: label,
                    });
                }
            }
        }
        self.y += ch;
    }
}

fn status_ja(s: &str) -> (&'static str, Rgb) {
    match s {
        "noncompliant" => ("不適合", BAD),
        "compliant" => ("適合", GOOD),
        "attested" => ("自己点検", BLACK),
        "enforced" => ("仕組みで担保", BLACK),
        "not_applicable" => ("対象外", GREY),
        _ => ("データなし", GREY),
    }
}

fn severity_ja(s: &str) -> &'static str {
    match s {
        "high" => "重大",
        "medium" => "中",
        "low" => "軽微",
        _ => "所見",
    }
}

fn finding_status_ja(s: &str) -> &'static str {
    match s {
        "open" => "未対応",
        "in_progress" => "対応中",
        _ => "完了",
    }
}

fn inspection_status_ja(s: &str) -> &'static str {
    match s {
        "submitted" => "提出済",
        "draft" => "作成中",
        "returned" => "差戻し",
        _ => "未着手",
    }
}

fn phase_ja(s: &str) -> &'static str {
    match s {
        "planned" => "開始前",
        "in_progress" => "実施中",
        "ended" => "期間終了",
        _ => "完了",
    }
}

fn wareki(d: &str) -> String {
    crate::clock::parse_date_str(d)
        .map(mamori_policy::wareki::format_date_ja)
        .unwrap_or_else(|| d.to_string())
}

/// The report's title as printed.
pub const TITLE: &str = "情報セキュリティ点検・監査結果報告書";

fn layout(r: &ComplianceReport) -> Vec<Vec<Op>> {
    let mut p = Pages::new();
    p.text(MARGIN, 18.0, BLACK, TITLE);
    p.y += 26.0;
    p.line(
        "江戸川区情報管理安全対策基準 第32条第3項・第4項による報告",
        10.0,
        GREY,
    );
    p.y += 4.0;
    p.line(format!("作成日　{}", r.as_of_wareki), 10.0, BLACK);
    p.line(
        "報告者　セキュリティ統括者　／　報告先　最高情報統括責任者（第32条第3項）、情報化推進本部（第32条第4項）",
        BODY,
        BLACK,
    );
    if let Some(v) = &r.policy_version {
        p.line(format!("適用されるポリシーの版　{v}"), BODY, BLACK);
    }

    p.heading("1. 概要");
    let t = &r.totals;
    p.paragraph(&format!(
        "条項 {} 件のうち適合 {} 件、不適合 {} 件。自動点検 {} 件のうち不合格 {} 件。外部監査の未完了の指摘 {} 件（うち期限超過 {} 件、重大 {} 件）。",
        t.clauses, t.compliant, t.noncompliant, t.checks, t.checks_failing, t.open_findings,
        t.overdue_findings, t.high_findings
    ));

    p.heading("2. 条項別の遵守状況");
    if r.clauses.is_empty() {
        p.paragraph("条項別の状況を示すデータがありません。");
    } else {
        let rows: Vec<Vec<(String, Rgb)>> = r
            .clauses
            .iter()
            .map(|c| {
                let (label, color) = status_ja(&c.status);
                vec![
                    (c.clause_ja.clone(), BLACK),
                    (c.heading.clone(), BLACK),
                    (label.to_string(), color),
                    (
                        format!("{}/{}", c.checks_passed, c.checks_passed + c.checks_failed),
                        BLACK,
                    ),
                    (
                        c.open_findings.to_string(),
                        if c.open_findings > 0 { BAD } else { BLACK },
                    ),
                    (c.note.clone(), GREY),
                ]
            })
            .collect();
        p.table(
            &[
                ("条項", 110.0),
                ("見出し", 110.0),
                ("状況", 60.0),
                ("点検合格", 50.0),
                ("指摘", 30.0),
                ("備考", 135.0),
            ],
            &rows,
        );
    }

    p.heading("3. 遵守状況の推移（自動点検の合格率）");
    p.chart(&r.trend, "自動点検の実行記録がありません。");

    p.heading("4. 未完了の指摘事項（外部監査）");
    if r.open_findings.is_empty() {
        p.paragraph("未完了の指摘事項はありません。");
    } else {
        let rows: Vec<Vec<(String, Rgb)>> = r
            .open_findings
            .iter()
            .map(|f| {
                let due = if f.overdue {
                    (format!("{}（超過）", wareki(&f.due_on)), BAD)
                } else {
                    (wareki(&f.due_on), BLACK)
                };
                vec![
                    (f.title.clone(), BLACK),
                    (
                        severity_ja(&f.severity).to_string(),
                        if f.severity == "high" { BAD } else { BLACK },
                    ),
                    (f.clauses.join("、"), BLACK),
                    (f.owner_name.clone(), BLACK),
                    due,
                    (finding_status_ja(&f.status).to_string(), BLACK),
                ]
            })
            .collect();
        p.table(
            &[
                ("指摘事項", 140.0),
                ("重要度", 40.0),
                ("該当条項", 75.0),
                ("対応責任者", 70.0),
                ("対応期限", 120.0),
                ("状況", 50.0),
            ],
            &rows,
        );
    }

    p.heading("5. 外部監査（第32条第2項）");
    if r.audits.is_empty() {
        p.paragraph("外部監査の記録はありません。");
    } else {
        let rows: Vec<Vec<(String, Rgb)>> = r
            .audits
            .iter()
            .map(|a| {
                vec![
                    (a.title.clone(), BLACK),
                    (a.auditor_org.clone(), BLACK),
                    (
                        format!("{}〜{}", wareki(&a.starts_on), wareki(&a.ends_on)),
                        BLACK,
                    ),
                    (phase_ja(&a.phase).to_string(), BLACK),
                    (
                        a.open_findings.to_string(),
                        if a.open_findings > 0 { BAD } else { BLACK },
                    ),
                ]
            })
            .collect();
        p.table(
            &[
                ("監査名", 140.0),
                ("監査人", 100.0),
                ("監査期間", 165.0),
                ("状況", 50.0),
                ("未完了", 40.0),
            ],
            &rows,
        );
    }

    p.heading("6. 自己点検の結果（第32条第1項）");
    match &r.self_inspection {
        None => p.paragraph("自己点検の取りまとめ結果はまだありません。"),
        Some(s) => {
            p.paragraph(&format!(
                "{}：対象 {} 部署のうち提出 {} 部署。",
                s.campaign, s.departments, s.submitted
            ));
            let rows: Vec<Vec<(String, Rgb)>> = s
                .rows
                .iter()
                .map(|x| {
                    vec![
                        (x.unit.clone(), BLACK),
                        (
                            inspection_status_ja(&x.status).to_string(),
                            if x.status == "submitted" { BLACK } else { BAD },
                        ),
                        (x.manager.clone().unwrap_or_else(|| "-".into()), BLACK),
                        (
                            x.noncompliant.to_string(),
                            if x.noncompliant > 0 { BAD } else { BLACK },
                        ),
                    ]
                })
                .collect();
            p.table(
                &[
                    ("部署", 180.0),
                    ("提出状況", 90.0),
                    ("セキュリティ管理者", 120.0),
                    ("不適合の回答", 80.0),
                ],
                &rows,
            );
        }
    }

    // Footers: title, date, page n / N.
    let n = p.pages.len();
    for (i, ops) in p.pages.iter_mut().enumerate() {
        let footer = format!("{TITLE}　{}　{} / {n}", r.as_of_wareki, i + 1);
        ops.push(Op::Text {
            x: MARGIN,
            y: H - 30.0,
            size: 8.0,
            color: GREY,
            text: footer,
        });
    }
    p.pages
}

/// The font's bytes, read once per path.
fn font_bytes(path: &Path) -> Result<Arc<Vec<u8>>, PdfError> {
    static CACHE: Mutex<Option<(PathBuf, Arc<Vec<u8>>)>> = Mutex::new(None);
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((p, b)) = cache.as_ref() {
        if p == path {
            return Ok(b.clone());
        }
    }
    let bytes = std::fs::read(path).map_err(|e| PdfError::Font {
        path: path.into(),
        reason: e.to_string(),
    })?;
    let bytes = Arc::new(bytes);
    *cache = Some((path.into(), bytes.clone()));
    Ok(bytes)
}

/// Renders the report as PDF with the font at `font_path`.
pub fn render(report: &ComplianceReport, font_path: &Path) -> Result<Vec<u8>, PdfError> {
    use krilla::color::rgb;
    use krilla::geom::{PathBuilder, Point};
    use krilla::num::NormalizedF32;
    use krilla::page::PageSettings;
    use krilla::paint::{Fill, Stroke};
    use krilla::text::{Font, TextDirection};
    use krilla::Document;

    let bytes = font_bytes(font_path)?;
    let font = Font::new(bytes.into(), 0).ok_or_else(|| PdfError::Font {
        path: font_path.into(),
        reason: "not a font file this renderer can read".into(),
    })?;
    let paint = |c: Rgb| rgb::Color::new(c.0, c.1, c.2);
    let settings =
        PageSettings::from_wh(W, H).ok_or_else(|| PdfError::Write("page size".into()))?;
    let mut document = Document::new();
    for ops in layout(report) {
        let mut page = document.start_page_with(settings.clone());
        let mut surface = page.surface();
        for op in ops {
            match op {
                Op::Text {
                    x,
                    y,
                    size,
                    color,
                    text,
                } => {
                    surface.set_fill(Some(Fill {
                        paint: paint(color).into(),
                        opacity: NormalizedF32::ONE,
                        rule: Default::default(),
                    }));
                    surface.set_stroke(None);
                    surface.draw_text(
                        Point::from_xy(x, y),
                        font.clone(),
                        size,
                        &text,
                        false,
                        TextDirection::Auto,
                    );
                }
                Op::Rect { x, y, w, h, color } => {
                    let mut pb = PathBuilder::new();
                    pb.move_to(x, y);
                    pb.line_to(x + w, y);
                    pb.line_to(x + w, y + h);
                    pb.line_to(x, y + h);
                    pb.close();
                    if let Some(path) = pb.finish() {
                        surface.set_fill(Some(Fill {
                            paint: paint(color).into(),
                            opacity: NormalizedF32::ONE,
                            rule: Default::default(),
                        }));
                        surface.set_stroke(None);
                        surface.draw_path(&path);
                    }
                }
                Op::Line {
                    points,
                    width,
                    color,
                } => {
                    let mut pb = PathBuilder::new();
                    for (i, (x, y)) in points.iter().enumerate() {
                        if i == 0 {
                            pb.move_to(*x, *y);
                        } else {
                            pb.line_to(*x, *y);
                        }
                    }
                    if let Some(path) = pb.finish() {
                        surface.set_fill(None);
                        surface.set_stroke(Some(Stroke {
                            paint: paint(color).into(),
                            width,
                            ..Default::default()
                        }));
                        surface.draw_path(&path);
                    }
                }
            }
        }
        surface.finish();
        page.finish();
    }
    document
        .finish()
        .map_err(|e| PdfError::Write(format!("{e:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths_and_fitting() {
        assert_eq!(text_width("監査", 10.0), 20.0);
        assert_eq!(text_width("K17.3", 10.0), 25.0);
        let cut = fit("情報セキュリティ点検・監査結果報告書", 10.0, 60.0);
        assert!(text_width(&cut, 10.0) <= 60.0, "{cut}");
        assert!(cut.ends_with('…'));
        assert_eq!(wrap("あいうえお", 10.0, 20.0), ["あい", "うえ", "お"]);
    }
}
