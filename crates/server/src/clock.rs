//! The ward's clock. Dates are the ward's (Japan Standard Time); tests can
//! move the clock forward to reach timeouts and effective dates.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use time::{Date, OffsetDateTime, UtcOffset};

/// Japan Standard Time, UTC+9, without daylight saving.
pub const JST: UtcOffset = match UtcOffset::from_hms(9, 0, 0) {
    Ok(o) => o,
    Err(_) => UtcOffset::UTC,
};

#[derive(Clone, Default)]
pub struct Clock {
    skew_secs: Arc<AtomicI64>,
}

impl Clock {
    pub fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc() + time::Duration::seconds(self.skew_secs.load(Ordering::Relaxed))
    }

    /// Unix seconds.
    pub fn unix(&self) -> i64 {
        self.now().unix_timestamp()
    }

    /// Unix microseconds.
    pub fn unix_micros(&self) -> i64 {
        (self.now().unix_timestamp_nanos() / 1000) as i64
    }

    /// Today's date in the ward.
    pub fn today(&self) -> Date {
        self.now().to_offset(JST).date()
    }

    /// Moves the clock forward (tests only need this; the server never calls it).
    pub fn advance(&self, secs: i64) {
        self.skew_secs.fetch_add(secs, Ordering::Relaxed);
    }
}

/// `YYYY-MM-DD`, the form dates are stored in.
pub fn date_str(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// Parses a stored `YYYY-MM-DD`.
pub fn parse_date_str(s: &str) -> Option<Date> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(s, &fmt).ok()
}

/// A Unix time as ward-local `YYYY-MM-DD HH:MM`.
pub fn format_unix(secs: i64) -> String {
    match OffsetDateTime::from_unix_timestamp(secs) {
        Ok(t) => {
            let t = t.to_offset(JST);
            format!("{} {:02}:{:02}", date_str(t.date()), t.hour(), t.minute())
        }
        Err(_) => String::new(),
    }
}
