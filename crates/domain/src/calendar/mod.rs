//! Working days in Viet Nam: Monday to Friday, except the public holidays of
//! `data/vietnam-public-holidays.json` (compiled in; each holiday carries its
//! source), plus the Saturdays announced as make-up working days.
//!
//! Legal deadlines of the citizens' requests are counted here (see
//! `docs/privacy.md, "Correction requests"`):
//! - "N working days after" ([`WorkingCalendar::add_working_days`]): the day of
//!   the event does not count, each following working day counts one;
//! - "N days after" ([`WorkingCalendar::add_days`]): calendar days from the
//!   day after the event (Civil Code 2015 art. 147), and a period whose last
//!   day is a day off ends on the next working day (art. 148(5)).
//!
//! So every deadline is a working day and never before its start.
//!
//! Years the file does not list are counted with weekends only: the calendar
//! says so through [`WorkingCalendar::covers`], and a missing holiday can only
//! bring a deadline earlier, never later.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use serde::Deserialize;

use crate::date::Date;

const DATA: &str = include_str!("../../data/vietnam-public-holidays.json");

#[derive(Deserialize)]
struct File {
    years: Vec<Year>,
}

#[derive(Deserialize)]
struct Year {
    year: u16,
    status: String,
    holidays: Vec<Holiday>,
    make_up_working_days: Vec<Holiday>,
}

/// One listed day and where it comes from.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Holiday {
    pub date: Date,
    pub name: String,
    pub source: String,
}

/// Which days are working days.
#[derive(Debug, Clone, Default)]
pub struct WorkingCalendar {
    holidays: BTreeSet<Date>,
    make_up: BTreeSet<Date>,
    /// Years listed, with their status (`announced` or `statutory-only`).
    years: Vec<(u16, String)>,
}

/// Day of the week, Monday = 0 … Sunday = 6.
pub fn weekday(date: Date) -> u8 {
    // 1970-01-01 was a Thursday (3).
    (days_since_epoch(date) + 3).rem_euclid(7) as u8
}

/// Days since 1970-01-01 (proleptic Gregorian).
pub fn days_since_epoch(date: Date) -> i64 {
    crate::date::days_from_civil(
        i64::from(date.year()),
        i64::from(date.month()),
        i64::from(date.day()),
    )
}

/// The date `days` after 1970-01-01; `None` outside the years [`Date`] accepts.
pub fn date_from_days(days: i64) -> Option<Date> {
    let (y, m, d) = crate::date::civil_from_days(days);
    Date::new(
        u32::try_from(y).ok()?,
        u32::try_from(m).ok()?,
        u32::try_from(d).ok()?,
    )
    .ok()
}

/// The day after `date` (`None` past the last year [`Date`] accepts).
pub fn next_day(date: Date) -> Option<Date> {
    date_from_days(days_since_epoch(date) + 1)
}

impl WorkingCalendar {
    /// Viet Nam's calendar from the repository's data file.
    pub fn vietnam() -> &'static WorkingCalendar {
        static CALENDAR: OnceLock<WorkingCalendar> = OnceLock::new();
        CALENDAR.get_or_init(|| {
            // The file is compiled in and parsed by a unit test
            // (`the_data_file_parses_and_every_holiday_has_a_source`), so a
            // failure here is a build that never passed its tests.
            Self::from_json(DATA).unwrap_or_default()
        })
    }

    /// A calendar from a file shaped like `data/vietnam-public-holidays.json`.
    pub fn from_json(text: &str) -> Result<WorkingCalendar, serde_json::Error> {
        let file: File = serde_json::from_str(text)?;
        let mut calendar = WorkingCalendar::default();
        for year in file.years {
            calendar.years.push((year.year, year.status));
            calendar
                .holidays
                .extend(year.holidays.iter().map(|h| h.date));
            calendar
                .make_up
                .extend(year.make_up_working_days.iter().map(|h| h.date));
        }
        Ok(calendar)
    }

    /// Every listed holiday with its source, for the docs and the tests.
    pub fn listed(text: &str) -> Result<Vec<(u16, Vec<Holiday>)>, serde_json::Error> {
        let file: File = serde_json::from_str(text)?;
        Ok(file
            .years
            .into_iter()
            .map(|y| (y.year, y.holidays))
            .collect())
    }

    /// The data file as compiled in.
    pub fn vietnam_source() -> &'static str {
        DATA
    }

    /// The status of `year` in the file, or `None` when the year is not
    /// listed (then only weekends are days off).
    pub fn covers(&self, year: u16) -> Option<&str> {
        self.years
            .iter()
            .find(|(y, _)| *y == year)
            .map(|(_, s)| s.as_str())
    }

    pub fn is_holiday(&self, date: Date) -> bool {
        self.holidays.contains(&date)
    }

    pub fn is_working_day(&self, date: Date) -> bool {
        if self.make_up.contains(&date) {
            return true;
        }
        weekday(date) < 5 && !self.is_holiday(date)
    }

    /// The first working day on or after `date`.
    pub fn on_or_after(&self, date: Date) -> Option<Date> {
        let mut day = date;
        // At most a Tet week plus two weekends of days off in a row.
        while !self.is_working_day(day) {
            day = next_day(day)?;
        }
        Some(day)
    }

    /// The `n`th working day after `start` (`start` itself never counts).
    pub fn add_working_days(&self, start: Date, n: u32) -> Option<Date> {
        let mut day = start;
        let mut left = n;
        while left > 0 {
            day = next_day(day)?;
            if self.is_working_day(day) {
                left -= 1;
            }
        }
        if n == 0 {
            return self.on_or_after(day);
        }
        Some(day)
    }

    /// `n` calendar days after `start`, moved to the next working day when
    /// the last day is a day off (Civil Code 2015 art. 148(5)).
    pub fn add_days(&self, start: Date, n: u32) -> Option<Date> {
        let last = date_from_days(days_since_epoch(start) + i64::from(n))?;
        self.on_or_after(last)
    }
}

#[cfg(test)]
mod tests;
