//! Exports of the incident list and the failure records, as CSV (UTF-8 with
//! a BOM, so Excel reads the Japanese headers) and as xlsx
//! (rust_xlsxwriter). Headers and codes are written in Japanese.

use super::failures::FailureRecord;
use super::IncidentSummary;
use crate::clock::format_unix;
use crate::web::error::AppError;
use crate::web::i18n::{self, Lang};
use rust_xlsxwriter::{Format, Workbook};

/// A table ready to write: headers and rows of text.
pub struct Table {
    pub sheet: &'static str,
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

fn ja(key: &str) -> String {
    i18n::t(Lang::Ja, key, &[])
}

fn time_or_blank(t: Option<i64>) -> String {
    t.map(format_unix).unwrap_or_default()
}

pub fn incidents_table(list: &[IncidentSummary]) -> Table {
    let headers = [
        "id",
        "kind",
        "title",
        "noticed_at",
        "system",
        "reporter",
        "unit",
        "outside",
        "status",
        "security",
        "created_at",
        "overdue",
    ]
    .iter()
    .map(|h| ja(&format!("incident.export.{h}")))
    .collect();
    let yes_no = |b: bool| {
        ja(if b {
            "incident.export.yes"
        } else {
            "incident.export.no"
        })
    };
    let rows = list
        .iter()
        .map(|i| {
            let mut kind = ja(&format!("incident.kind.{}", i.kind));
            if !i.lost_item.is_empty() {
                kind = format!(
                    "{kind}（{}）",
                    ja(&format!("incident.lost_item.{}", i.lost_item))
                );
            }
            vec![
                i.id.to_string(),
                kind,
                i.title.clone(),
                format_unix(i.noticed_at),
                i.system_code.clone(),
                i.reporter_name.clone(),
                i.reporter_unit_name.clone().unwrap_or_default(),
                yes_no(i.outside_org),
                ja(&format!("incident.status.{}", i.status)),
                yes_no(i.security),
                format_unix(i.created_at),
                yes_no(i.overdue),
            ]
        })
        .collect();
    Table {
        sheet: "事故等報告",
        headers,
        rows,
    }
}

pub fn failures_table(list: &[FailureRecord]) -> Table {
    let headers = [
        "id",
        "title",
        "system",
        "cause",
        "started_at",
        "resolved_at",
        "minutes",
        "impact",
        "handling",
        "recorded_by",
        "recorded_at",
    ]
    .iter()
    .map(|h| ja(&format!("failure.export.{h}")))
    .collect();
    let rows = list
        .iter()
        .map(|f| {
            vec![
                f.incident_id.to_string(),
                f.title.clone(),
                f.system_code.clone(),
                ja(&format!("failure.cause.{}", f.cause_category)),
                format_unix(f.started_at),
                time_or_blank(f.resolved_at),
                f.duration_minutes
                    .map(|m| m.to_string())
                    .unwrap_or_default(),
                ja(&format!("failure.impact.{}", f.impact)),
                f.handling.clone(),
                f.recorded_by_name.clone().unwrap_or_default(),
                format_unix(f.recorded_at),
            ]
        })
        .collect();
    Table {
        sheet: "障害記録",
        headers,
        rows,
    }
}

/// A cell as a spreadsheet would take it: a leading `=`, `+`, `-` or `@`
/// is escaped so a title cannot become a formula (CSV injection).
fn safe_cell(s: &str) -> String {
    if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_string()
    }
}

pub fn to_csv(t: &Table) -> Result<Vec<u8>, AppError> {
    let mut out = Vec::from("\u{feff}".as_bytes());
    {
        let mut w = csv::Writer::from_writer(&mut out);
        w.write_record(&t.headers)
            .map_err(|e| AppError::Internal(e.to_string()))?;
        for r in &t.rows {
            let r: Vec<String> = r.iter().map(|c| safe_cell(c)).collect();
            w.write_record(&r)
                .map_err(|e| AppError::Internal(e.to_string()))?;
        }
        w.flush().map_err(|e| AppError::Internal(e.to_string()))?;
    }
    Ok(out)
}

pub fn to_xlsx(t: &Table) -> Result<Vec<u8>, AppError> {
    let err = |e: rust_xlsxwriter::XlsxError| AppError::Internal(format!("xlsx: {e}"));
    let mut wb = Workbook::new();
    let bold = Format::new().set_bold();
    let ws = wb.add_worksheet();
    ws.set_name(t.sheet).map_err(err)?;
    for (c, h) in t.headers.iter().enumerate() {
        ws.write_string_with_format(0, c as u16, h, &bold)
            .map_err(err)?;
    }
    for (r, row) in t.rows.iter().enumerate() {
        for (c, v) in row.iter().enumerate() {
            // Strings, never formulas, whatever the text.
            ws.write_string((r + 1) as u32, c as u16, v).map_err(err)?;
        }
    }
    ws.autofit();
    wb.save_to_buffer().map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_has_a_bom_and_escapes_formulas() {
        let t = Table {
            sheet: "s",
            headers: vec!["番号".into(), "件名".into()],
            rows: vec![vec!["1".into(), "=HYPERLINK(\"x\")".into()]],
        };
        let csv = String::from_utf8(to_csv(&t).unwrap()).unwrap();
        assert!(csv.starts_with("\u{feff}番号,件名\n"));
        assert!(csv.contains("'=HYPERLINK"));
        let x = to_xlsx(&t).unwrap();
        assert!(x.starts_with(b"PK"));
    }
}
