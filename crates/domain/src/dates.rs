//! The one range of dates and instants grantflow accepts: 1900-01-01 to 2200-12-31
//! (Asia/Shanghai dates; an instant counts by its local date).
//!
//! chrono accepts years from -262143 to +262142, the stores do not (SQLite rows are read
//! back as RFC 3339, PostgreSQL `timestamptz` stops at 294276 AD and has no year 0), and
//! calendar arithmetic near chrono's ends overflows. Every date or instant a request
//! carries (workflow input, deadline extensions, calls, spending, indicators, review
//! dates, filters) is parsed or checked here, so nothing outside the range is stored and
//! nothing derived from an accepted date can overflow.

use chrono::{DateTime, NaiveDate, Utc};

use crate::calendar::local_date;

/// The first date accepted.
pub const MIN_DATE: NaiveDate = match NaiveDate::from_ymd_opt(1900, 1, 1) {
    Some(d) => d,
    None => panic!("a valid date"),
};

/// The last date accepted.
pub const MAX_DATE: NaiveDate = match NaiveDate::from_ymd_opt(2200, 12, 31) {
    Some(d) => d,
    None => panic!("a valid date"),
};

/// Why a text or value is not an accepted date or instant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DateError {
    #[error("`{0}` is not a date YYYY-MM-DD")]
    NotADate(String),
    #[error("`{0}` is not an RFC 3339 date and time (e.g. 2025-06-30T16:00:00Z)")]
    NotAnInstant(String),
    #[error("{0} is outside the accepted dates 1900-01-01 to 2200-12-31")]
    OutOfRange(String),
}

impl DateError {
    /// The stable code clients see in `details.fields[].code`.
    pub fn code(&self) -> &'static str {
        match self {
            // The code every malformed input value has carried (input::check_input).
            Self::NotADate(_) | Self::NotAnInstant(_) => "INVALID_VALUE",
            Self::OutOfRange(_) => "DATE_OUT_OF_RANGE",
        }
    }

    pub fn message_zh(&self) -> String {
        match self {
            Self::NotADate(s) => format!("「{s}」不是日期，格式应为 YYYY-MM-DD"),
            Self::NotAnInstant(s) => {
                format!("「{s}」不是 RFC 3339 日期时间（如 2025-06-30T16:00:00Z）")
            }
            Self::OutOfRange(s) => {
                format!("日期 {s} 超出允许范围（1900-01-01 至 2200-12-31）")
            }
        }
    }

    pub fn message_en(&self) -> String {
        self.to_string()
    }
}

/// `day` itself when it lies in the accepted range.
pub fn check_date(day: NaiveDate) -> Result<NaiveDate, DateError> {
    if (MIN_DATE..=MAX_DATE).contains(&day) {
        Ok(day)
    } else {
        Err(DateError::OutOfRange(day.to_string()))
    }
}

/// `at` itself when its Asia/Shanghai date lies in the accepted range.
pub fn check_instant(at: DateTime<Utc>) -> Result<DateTime<Utc>, DateError> {
    check_date(local_date(at))
        .map(|_| at)
        .map_err(|_| DateError::OutOfRange(at.to_rfc3339()))
}

/// A date written `YYYY-MM-DD` (four-digit year, surrounding blanks ignored) in the range.
pub fn parse_date(text: &str) -> Result<NaiveDate, DateError> {
    let t = text.trim();
    // chrono's `%Y` also reads signed and longer years (`-0001`, `+262142`): those are
    // refused by shape here, before any arithmetic.
    let shaped = t.len() == 10
        && t.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    let shown: String = t.chars().take(40).collect();
    if !shaped {
        return Err(DateError::NotADate(shown));
    }
    let day = NaiveDate::parse_from_str(t, "%Y-%m-%d").map_err(|_| DateError::NotADate(shown))?;
    check_date(day)
}

/// An RFC 3339 instant (`2025-06-30T16:00:00Z`, `2025-07-01T00:00:00+08:00`) in the range.
pub fn parse_instant(text: &str) -> Result<DateTime<Utc>, DateError> {
    let t = text.trim();
    let shown: String = t.chars().take(40).collect();
    let at = DateTime::parse_from_rfc3339(t)
        .map_err(|_| DateError::NotAnInstant(shown))?
        .with_timezone(&Utc);
    check_instant(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_range_and_nothing_else() {
        assert_eq!(parse_date("1900-01-01"), Ok(MIN_DATE));
        assert_eq!(parse_date(" 2200-12-31 "), Ok(MAX_DATE));
        for bad in ["1899-12-31", "2201-01-01", "9999-12-31"] {
            assert!(
                matches!(parse_date(bad), Err(DateError::OutOfRange(_))),
                "{bad}"
            );
        }
        for bad in [
            "-0001-12-31",
            "+262142-12-31",
            "2024-2-1",
            "2024-02-30",
            "",
            "x",
        ] {
            assert!(
                matches!(parse_date(bad), Err(DateError::NotADate(_))),
                "{bad}"
            );
        }
        assert!(parse_instant("2025-06-30T16:00:00Z").is_ok());
        // Shanghai kept local mean time (UTC+8:05:43) until 1901.
        assert!(parse_instant("1899-12-31T16:00:00Z").is_ok());
        assert!(parse_instant("1899-12-31T15:00:00Z").is_err());
        assert!(parse_instant("+262142-12-31T00:00:00Z").is_err());
        assert!(parse_instant("2201-01-01T00:00:00+08:00").is_err());
    }
}
