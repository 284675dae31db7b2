//! Grant conditions as JSON (`{"windows": [{"start": "08:30", "end":
//! "17:15"}], "weekdays": ["mon"], "zones": ["lgwan"], "areas":
//! ["server-room"]}`) and their checks, which name the field at fault.

use crate::web::error::FieldError;
use mamori_policy::access::{AreaId, Conditions, NetworkZone, TimeWindow};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use time::{Time, Weekday};

/// A time-of-day window in JST, `HH:MM` each; `end` before `start` wraps
/// past midnight.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WindowDoc {
    pub start: String,
    pub end: String,
}

/// Conditions a grant holds under; each kind left empty is no limit.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConditionsDoc {
    /// Time-of-day windows (JST); any one suffices.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub windows: Vec<WindowDoc>,
    /// `mon` … `sun` (of the JST date); any one suffices.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub weekdays: Vec<String>,
    /// Network zones the terminal must be in: `my_number`, `lgwan`, `internet`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub zones: Vec<String>,
    /// Codes of managed areas the terminal must stand in.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub areas: Vec<String>,
}

const WEEKDAYS: [(&str, Weekday); 7] = [
    ("mon", Weekday::Monday),
    ("tue", Weekday::Tuesday),
    ("wed", Weekday::Wednesday),
    ("thu", Weekday::Thursday),
    ("fri", Weekday::Friday),
    ("sat", Weekday::Saturday),
    ("sun", Weekday::Sunday),
];

/// Most entries of one kind a grant may list.
const MAX_ENTRIES: usize = 16;

pub fn parse_weekday(s: &str) -> Option<Weekday> {
    WEEKDAYS.iter().find(|(c, _)| *c == s).map(|(_, d)| *d)
}

pub fn weekday_code(d: Weekday) -> &'static str {
    WEEKDAYS
        .iter()
        .find(|(_, w)| *w == d)
        .map(|(c, _)| *c)
        .unwrap_or("mon")
}

/// `HH:MM` (24-hour) to a time of day.
pub fn parse_hm(s: &str) -> Option<Time> {
    let (h, m) = s.trim().split_once(':')?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return None;
    }
    let h: u8 = h.parse().ok()?;
    let m: u8 = m.parse().ok()?;
    Time::from_hms(h, m, 0).ok()
}

impl ConditionsDoc {
    /// Checks every entry and turns it into the engine's form. `prefix` is
    /// the field path of the conditions in the input (`conditions`).
    pub fn check(
        &self,
        prefix: &str,
        areas: &HashMap<String, AreaId>,
        errors: &mut Vec<FieldError>,
    ) -> Conditions {
        let mut out = Conditions::default();
        for (kind, n) in [
            ("windows", self.windows.len()),
            ("weekdays", self.weekdays.len()),
            ("zones", self.zones.len()),
            ("areas", self.areas.len()),
        ] {
            if n > MAX_ENTRIES {
                errors.push(FieldError::new(
                    format!("{prefix}.{kind}"),
                    "field.too_many",
                    &[("max", MAX_ENTRIES.to_string())],
                ));
            }
        }
        for (i, w) in self.windows.iter().enumerate() {
            let start = parse_hm(&w.start);
            let end = parse_hm(&w.end);
            if start.is_none() {
                errors.push(FieldError::new(
                    format!("{prefix}.windows[{i}].start"),
                    "assets.bad_time_of_day",
                    &[("value", w.start.chars().take(20).collect())],
                ));
            }
            if end.is_none() {
                errors.push(FieldError::new(
                    format!("{prefix}.windows[{i}].end"),
                    "assets.bad_time_of_day",
                    &[("value", w.end.chars().take(20).collect())],
                ));
            }
            if let (Some(s), Some(e)) = (start, end) {
                if s == e {
                    errors.push(FieldError::new(
                        format!("{prefix}.windows[{i}].end"),
                        "assets.empty_window",
                        &[],
                    ));
                } else {
                    out.windows.push(TimeWindow { start: s, end: e });
                }
            }
        }
        for (i, d) in self.weekdays.iter().enumerate() {
            match parse_weekday(d) {
                Some(w) => out.weekdays.push(w),
                None => errors.push(FieldError::new(
                    format!("{prefix}.weekdays[{i}]"),
                    "assets.bad_weekday",
                    &[("value", d.chars().take(20).collect())],
                )),
            }
        }
        for (i, z) in self.zones.iter().enumerate() {
            match z.parse::<NetworkZone>() {
                Ok(zone) => out.zones.push(zone),
                Err(_) => errors.push(FieldError::new(
                    format!("{prefix}.zones[{i}]"),
                    "assets.bad_zone",
                    &[("value", z.chars().take(20).collect())],
                )),
            }
        }
        for (i, a) in self.areas.iter().enumerate() {
            match areas.get(a) {
                Some(id) => out.areas.push(*id),
                None => errors.push(FieldError::new(
                    format!("{prefix}.areas[{i}]"),
                    "assets.unknown_area",
                    &[("value", a.chars().take(40).collect())],
                )),
            }
        }
        out
    }

    /// Whether no condition is set.
    pub fn is_empty(&self) -> bool {
        self.windows.is_empty()
            && self.weekdays.is_empty()
            && self.zones.is_empty()
            && self.areas.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bad_entry_is_named() {
        let doc = ConditionsDoc {
            windows: vec![
                WindowDoc {
                    start: "25:00".into(),
                    end: "17:15".into(),
                },
                WindowDoc {
                    start: "22:00".into(),
                    end: "06:00".into(),
                },
            ],
            weekdays: vec!["mon".into(), "funday".into()],
            zones: vec!["lgwan".into(), "moon".into()],
            areas: vec!["server-room".into(), "nowhere".into()],
        };
        let mut areas = HashMap::new();
        areas.insert("server-room".to_string(), AreaId(4));
        let mut errors = Vec::new();
        let c = doc.check("conditions", &areas, &mut errors);
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "conditions.windows[0].start",
                "conditions.weekdays[1]",
                "conditions.zones[1]",
                "conditions.areas[1]"
            ]
        );
        assert_eq!(c.windows.len(), 1, "the wrapping window is kept");
        assert_eq!(c.areas, vec![AreaId(4)]);
    }

    #[test]
    fn times_are_strict() {
        assert!(parse_hm("08:30").is_some());
        assert!(parse_hm("8:30").is_some());
        assert!(parse_hm("08:3").is_none());
        assert!(parse_hm("24:00").is_none());
        assert!(parse_hm("0830").is_none());
        assert!(parse_hm("-1:00").is_none());
    }
}
