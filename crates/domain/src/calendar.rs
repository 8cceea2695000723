//! The mainland-China working-day calendar (Asia/Shanghai): weekends, official public
//! holidays and make-up working days (调休), loaded from an operator-editable TOML file.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use serde::Deserialize;

/// The time zone of every deadline in the product.
pub const TIMEZONE: Tz = chrono_tz::Asia::Shanghai;

/// The calendar shipped with grantflow (`workflows/calendar/cn-workdays.toml`).
pub const BUILTIN_CALENDAR: &str = include_str!("../../../workflows/calendar/cn-workdays.toml");

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkCalendar {
    /// Rest days that would otherwise be working days, with their holiday's name.
    holidays: BTreeMap<NaiveDate, String>,
    /// Weekend days that are worked (调休).
    makeup_workdays: BTreeSet<NaiveDate>,
    years: BTreeSet<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    #[error("calendar file is not valid TOML: {0}")]
    Syntax(String),
    #[error("holiday `{name}`: `from` {from} is after `to` {to}")]
    InvertedRange {
        name: String,
        from: NaiveDate,
        to: NaiveDate,
    },
    #[error("holiday `{name}`: make-up working day {day} is not a Saturday or Sunday")]
    MakeupNotWeekend { name: String, day: NaiveDate },
    #[error("holiday `{name}`: {day} is outside the years the calendar covers ({years:?})")]
    OutsideYears {
        name: String,
        day: NaiveDate,
        years: Vec<i32>,
    },
    #[error("the calendar must use timezone Asia/Shanghai, not `{0}`")]
    Timezone(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CalendarFile {
    timezone: String,
    years: Vec<i32>,
    #[serde(default)]
    holidays: Vec<HolidayEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HolidayEntry {
    name: String,
    from: NaiveDate,
    to: NaiveDate,
    #[serde(default)]
    makeup_workdays: Vec<NaiveDate>,
}

impl WorkCalendar {
    pub fn from_toml_str(text: &str) -> Result<Self, CalendarError> {
        let file: CalendarFile =
            toml::from_str(text).map_err(|e| CalendarError::Syntax(e.message().to_string()))?;
        if file.timezone != "Asia/Shanghai" {
            return Err(CalendarError::Timezone(file.timezone));
        }
        let years: BTreeSet<i32> = file.years.iter().copied().collect();
        let mut holidays = BTreeMap::new();
        let mut makeup_workdays = BTreeSet::new();
        for h in file.holidays {
            if h.from > h.to {
                return Err(CalendarError::InvertedRange {
                    name: h.name,
                    from: h.from,
                    to: h.to,
                });
            }
            let outside = |day: NaiveDate| CalendarError::OutsideYears {
                name: h.name.clone(),
                day,
                years: years.iter().copied().collect(),
            };
            for day in h.from.iter_days().take_while(|d| *d <= h.to) {
                if !years.contains(&day.year()) {
                    return Err(outside(day));
                }
                holidays.insert(day, h.name.clone());
            }
            for m in &h.makeup_workdays {
                if !is_weekend(*m) {
                    return Err(CalendarError::MakeupNotWeekend {
                        name: h.name.clone(),
                        day: *m,
                    });
                }
                if !years.contains(&m.year()) {
                    return Err(outside(*m));
                }
                makeup_workdays.insert(*m);
            }
        }
        Ok(Self {
            holidays,
            makeup_workdays,
            years,
        })
    }

    /// The calendar compiled into the binary.
    pub fn builtin() -> Self {
        Self::from_toml_str(BUILTIN_CALENDAR).expect("the shipped calendar is valid")
    }

    /// Whether the calendar knows the official arrangement of this year.
    pub fn covers(&self, year: i32) -> bool {
        self.years.contains(&year)
    }

    pub fn holiday_name(&self, day: NaiveDate) -> Option<&str> {
        self.holidays.get(&day).map(String::as_str)
    }

    pub fn is_working_day(&self, day: NaiveDate) -> bool {
        if self.makeup_workdays.contains(&day) {
            return true;
        }
        !is_weekend(day) && !self.holidays.contains_key(&day)
    }

    /// The `n`-th working day after `day` (not counting `day` itself). With `n = 0`,
    /// `day` itself when it is a working day, else the next one. `None` past the last
    /// date chrono can represent (never for the dates of [`crate::dates`]).
    pub fn add_working_days(&self, day: NaiveDate, n: u32) -> Option<NaiveDate> {
        let mut current = day;
        if n == 0 {
            while !self.is_working_day(current) {
                current = current.succ_opt()?;
            }
            return Some(current);
        }
        let mut left = n;
        while left > 0 {
            current = current.succ_opt()?;
            if self.is_working_day(current) {
                left -= 1;
            }
        }
        Some(current)
    }

    /// The `n`-th working day before `day` (not counting `day` itself); `None` before
    /// the first date chrono can represent.
    pub fn sub_working_days(&self, day: NaiveDate, n: u32) -> Option<NaiveDate> {
        let mut current = day;
        let mut left = n;
        while left > 0 {
            current = current.pred_opt()?;
            if self.is_working_day(current) {
                left -= 1;
            }
        }
        Some(current)
    }

    /// Working days strictly after `from` up to and including `to` (0 when `to <= from`).
    pub fn working_days_between(&self, from: NaiveDate, to: NaiveDate) -> u32 {
        let count = from
            .iter_days()
            .skip(1)
            .take_while(|d| *d <= to)
            .filter(|d| self.is_working_day(*d))
            .count();
        u32::try_from(count).unwrap_or(u32::MAX)
    }
}

fn is_weekend(day: NaiveDate) -> bool {
    matches!(day.weekday(), Weekday::Sat | Weekday::Sun)
}

/// The local (Asia/Shanghai) calendar date of an instant.
pub fn local_date(at: DateTime<Utc>) -> NaiveDate {
    at.with_timezone(&TIMEZONE).date_naive()
}

/// The instant of a local wall-clock time on a local date. Asia/Shanghai observed
/// daylight saving in some years (1919, 1940–1949, 1986–1991): a time skipped by a
/// change is read at standard time (UTC+8), a repeated one at its first occurrence.
/// Saturates at chrono's ends, which the dates of [`crate::dates`] never reach.
pub fn local_instant(day: NaiveDate, time: NaiveTime) -> DateTime<Utc> {
    let naive = day.and_time(time);
    match TIMEZONE.from_local_datetime(&naive).earliest() {
        Some(t) => t.with_timezone(&Utc),
        None => naive
            .checked_sub_signed(Duration::hours(8))
            .map(|n| n.and_utc())
            .unwrap_or(if day.year() < 0 {
                DateTime::<Utc>::MIN_UTC
            } else {
                DateTime::<Utc>::MAX_UTC
            }),
    }
}

/// The end of a local date (24:00, i.e. the start of the next day), when day-based
/// deadlines fall due.
pub fn end_of_day(day: NaiveDate) -> DateTime<Utc> {
    match day.succ_opt() {
        Some(next) => local_instant(next, NaiveTime::MIN),
        None => DateTime::<Utc>::MAX_UTC,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn weekends_holidays_and_makeup_days() {
        let cal = WorkCalendar::builtin();
        assert!(
            cal.is_working_day(d("2024-02-09")),
            "Friday before Spring Festival"
        );
        assert!(
            !cal.is_working_day(d("2024-02-12")),
            "Spring Festival Monday"
        );
        assert!(cal.is_working_day(d("2024-02-04")), "调休 Sunday is worked");
        assert!(cal.is_working_day(d("2024-02-18")), "调休 Sunday is worked");
        assert!(!cal.is_working_day(d("2024-02-24")), "ordinary Saturday");
        assert!(
            cal.is_working_day(d("2024-10-12")),
            "调休 Saturday after National Day"
        );
        assert_eq!(
            cal.holiday_name(d("2025-10-08")),
            Some("国庆节、中秋节 National Day and Mid-Autumn Festival")
        );
    }

    #[test]
    fn working_days_across_spring_festival_2024() {
        let cal = WorkCalendar::builtin();
        // Thu 2024-02-08 + 1 working day = Fri 02-09; + 2 = Sun 02-18 (调休), since
        // 02-10..02-17 are the holiday; + 3 = Mon 02-19.
        assert_eq!(
            cal.add_working_days(d("2024-02-08"), 1).unwrap(),
            d("2024-02-09")
        );
        assert_eq!(
            cal.add_working_days(d("2024-02-08"), 2).unwrap(),
            d("2024-02-18")
        );
        assert_eq!(
            cal.add_working_days(d("2024-02-08"), 3).unwrap(),
            d("2024-02-19")
        );
        assert_eq!(
            cal.sub_working_days(d("2024-02-19"), 2).unwrap(),
            d("2024-02-09")
        );
        assert_eq!(
            cal.working_days_between(d("2024-02-08"), d("2024-02-19")),
            3
        );
    }

    #[test]
    fn working_days_across_national_day_2025_and_a_makeup_saturday() {
        let cal = WorkCalendar::builtin();
        // Fri 2025-09-26; Sun 09-28 is a 调休 working day; 10-01..10-08 rest;
        // Sat 10-11 is a 调休 working day.
        assert_eq!(
            cal.add_working_days(d("2025-09-26"), 1).unwrap(),
            d("2025-09-28")
        );
        assert_eq!(
            cal.add_working_days(d("2025-09-26"), 3).unwrap(),
            d("2025-09-30")
        );
        assert_eq!(
            cal.add_working_days(d("2025-09-26"), 4).unwrap(),
            d("2025-10-09")
        );
        assert_eq!(
            cal.add_working_days(d("2025-09-26"), 6).unwrap(),
            d("2025-10-11")
        );
        assert_eq!(
            cal.add_working_days(d("2025-09-26"), 7).unwrap(),
            d("2025-10-13")
        );
    }

    #[test]
    fn five_working_days_over_spring_festival_2026() {
        let cal = WorkCalendar::builtin();
        // Thu 2026-02-12 → Fri 13, Sat 14 (调休), then 15..23 rest, Tue 24, Wed 25, Thu 26.
        assert_eq!(
            cal.add_working_days(d("2026-02-12"), 5).unwrap(),
            d("2026-02-26")
        );
        assert_eq!(
            cal.add_working_days(d("2026-02-14"), 0).unwrap(),
            d("2026-02-14")
        );
        assert_eq!(
            cal.add_working_days(d("2026-02-15"), 0).unwrap(),
            d("2026-02-24")
        );
    }

    #[test]
    fn no_arithmetic_panics_at_the_ends_or_in_dst_gaps() {
        let cal = WorkCalendar::builtin();
        assert_eq!(cal.add_working_days(NaiveDate::MAX, 1), None);
        assert_eq!(cal.sub_working_days(NaiveDate::MIN, 1), None);
        assert_eq!(end_of_day(NaiveDate::MAX), DateTime::<Utc>::MAX_UTC);
        let _ = local_instant(NaiveDate::MIN, NaiveTime::MIN);
        // 1940-06-01 00:00 did not exist in Shanghai (clocks went to 01:00).
        let gap = local_instant(d("1940-06-01"), NaiveTime::MIN);
        assert_eq!(gap.to_rfc3339(), "1940-05-31T16:00:00+00:00");
        for day in d("1900-01-01")
            .iter_days()
            .take_while(|x| *x <= d("2200-12-31"))
            .step_by(7)
        {
            let _ = end_of_day(day);
        }
    }

    #[test]
    fn deadlines_fall_due_at_local_midnight() {
        let due = end_of_day(d("2024-06-29"));
        assert_eq!(due.to_rfc3339(), "2024-06-29T16:00:00+00:00");
        assert_eq!(local_date(due), d("2024-06-30"));
    }

    #[test]
    fn rejects_bad_calendar_files() {
        let base = "timezone = \"Asia/Shanghai\"\nyears = [2024]\n";
        let makeup_weekday = format!(
            "{base}[[holidays]]\nname = \"x\"\nfrom = \"2024-01-01\"\nto = \"2024-01-01\"\nmakeup_workdays = [\"2024-01-03\"]\n"
        );
        assert!(matches!(
            WorkCalendar::from_toml_str(&makeup_weekday),
            Err(CalendarError::MakeupNotWeekend { .. })
        ));
        let inverted = format!(
            "{base}[[holidays]]\nname = \"x\"\nfrom = \"2024-01-03\"\nto = \"2024-01-01\"\n"
        );
        assert!(matches!(
            WorkCalendar::from_toml_str(&inverted),
            Err(CalendarError::InvertedRange { .. })
        ));
        let outside = format!(
            "{base}[[holidays]]\nname = \"x\"\nfrom = \"2023-01-03\"\nto = \"2023-01-03\"\n"
        );
        assert!(matches!(
            WorkCalendar::from_toml_str(&outside),
            Err(CalendarError::OutsideYears { .. })
        ));
        assert!(matches!(
            WorkCalendar::from_toml_str("timezone = \"UTC\"\nyears = []\n"),
            Err(CalendarError::Timezone(_))
        ));
    }
}
