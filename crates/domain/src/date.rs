//! Calendar dates as the registers record them.
//!
//! Civil-status books often know only the year (or year and month) of a birth
//! or death, so [`PartialDate`] keeps exactly the precision that was recorded
//! instead of inventing a day. Comparisons between partial dates are therefore
//! three-valued: one can be definitely before another, definitely after, or
//! undecidable ([`PartialDate::compare`] returns `None`).

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use thiserror::Error;

/// Why a date string or date parts were rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DateError {
    #[error("date `{0}` is not in the form YYYY, YYYY-MM or YYYY-MM-DD")]
    Format(String),
    #[error("year {0} is outside 1..=9999")]
    Year(u32),
    #[error("month {0} is outside 1..=12")]
    Month(u32),
    #[error("day {day} does not exist in {year:04}-{month:02}")]
    Day { year: u16, month: u8, day: u32 },
    #[error("a full date YYYY-MM-DD is required here, got `{0}`")]
    NotFull(String),
}

/// Gregorian leap-year rule.
/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`). The
/// one implementation: the calendar, the API's time parsing and the fixtures call it.
pub fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian `(year, month, day)` of a day number (`civil_from_days`): the
/// inverse of [`days_from_civil`].
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

pub fn is_leap_year(year: u16) -> bool {
    (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400)
}

/// Number of days in `month` (1..=12) of `year`; 0 for an invalid month.
pub fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap_year(year) => 29,
        2 => 28,
        _ => 0,
    }
}

fn check_year(year: u32) -> Result<u16, DateError> {
    match u16::try_from(year) {
        Ok(y) if (1..=9999).contains(&y) => Ok(y),
        _ => Err(DateError::Year(year)),
    }
}

fn check_month(month: u32) -> Result<u8, DateError> {
    match u8::try_from(month) {
        Ok(m) if (1..=12).contains(&m) => Ok(m),
        _ => Err(DateError::Month(month)),
    }
}

/// A full, valid calendar date. Serialised as `YYYY-MM-DD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    // Field order matters: the derived Ord compares year, then month, then day.
    year: u16,
    month: u8,
    day: u8,
}

crate::text_form::serde_as_text!(Date);

impl Date {
    pub fn new(year: u32, month: u32, day: u32) -> Result<Self, DateError> {
        let year = check_year(year)?;
        let month = check_month(month)?;
        let max = u32::from(days_in_month(year, month));
        if day == 0 || day > max {
            return Err(DateError::Day { year, month, day });
        }
        // `day <= 31` was just checked, so the narrowing cannot fail.
        let day = u8::try_from(day).map_err(|_| DateError::Day { year, month, day })?;
        Ok(Self { year, month, day })
    }

    /// For compile-time constants only (each use is covered by a test that
    /// round-trips it through [`Date::new`]).
    pub(crate) const fn trusted(year: u16, month: u8, day: u8) -> Self {
        Self { year, month, day }
    }

    pub fn year(&self) -> u16 {
        self.year
    }
    pub fn month(&self) -> u8 {
        self.month
    }
    pub fn day(&self) -> u8 {
        self.day
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_date(f, self.year, &[self.month, self.day])
    }
}

/// `YYYY`, then `-MM` for each further part: one write (padded `write!`s cost ~1,200
/// instructions a date, and a state holds several). Year 1..=9999 and parts 1..=31 (every
/// constructor checks them), so each is exactly its width.
fn write_date(f: &mut fmt::Formatter<'_>, year: u16, parts: &[u8]) -> fmt::Result {
    let digit = |n: u16| b'0' + (n % 10) as u8;
    let mut text = [0u8; 10];
    text[..4].copy_from_slice(&[
        digit(year / 1000),
        digit(year / 100),
        digit(year / 10),
        digit(year),
    ]);
    let mut len = 4;
    for &part in parts.iter().take(2) {
        let part = u16::from(part);
        text[len..len + 3].copy_from_slice(&[b'-', digit(part / 10), digit(part)]);
        len += 3;
    }
    f.write_str(std::str::from_utf8(&text[..len]).map_err(|_| fmt::Error)?)
}

impl FromStr for Date {
    type Err = DateError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.parse::<PartialDate>()? {
            PartialDate::Full(d) => Ok(d),
            _ => Err(DateError::NotFull(s.to_owned())),
        }
    }
}

impl TryFrom<String> for Date {
    type Error = DateError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Date> for String {
    fn from(d: Date) -> Self {
        d.to_string()
    }
}

/// A date known to year, month or day precision. Serialised as `"1999"`,
/// `"1999-07"` or `"1999-07-21"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PartialDate {
    Year(u16),
    YearMonth(u16, u8),
    Full(Date),
}

crate::text_form::serde_as_text!(PartialDate);

impl PartialDate {
    pub fn year_only(year: u32) -> Result<Self, DateError> {
        Ok(Self::Year(check_year(year)?))
    }

    pub fn year_month(year: u32, month: u32) -> Result<Self, DateError> {
        Ok(Self::YearMonth(check_year(year)?, check_month(month)?))
    }

    pub fn year(&self) -> u16 {
        match self {
            Self::Year(y) | Self::YearMonth(y, _) => *y,
            Self::Full(d) => d.year,
        }
    }

    /// The first day the recorded value could denote.
    pub fn earliest(&self) -> Date {
        match *self {
            Self::Year(year) => Date {
                year,
                month: 1,
                day: 1,
            },
            Self::YearMonth(year, month) => Date {
                year,
                month,
                day: 1,
            },
            Self::Full(d) => d,
        }
    }

    /// The last day the recorded value could denote.
    pub fn latest(&self) -> Date {
        match *self {
            Self::Year(year) => Date {
                year,
                month: 12,
                day: 31,
            },
            Self::YearMonth(year, month) => Date {
                year,
                month,
                day: days_in_month(year, month),
            },
            Self::Full(d) => d,
        }
    }

    /// `Some(ordering)` when the two intervals of possible days are disjoint
    /// (or both are the same single day); `None` when they overlap, i.e. the
    /// register does not say which came first.
    pub fn compare(&self, other: &PartialDate) -> Option<Ordering> {
        if self.latest() < other.earliest() {
            Some(Ordering::Less)
        } else if self.earliest() > other.latest() {
            Some(Ordering::Greater)
        } else if self.earliest() == self.latest() && self == other {
            Some(Ordering::Equal)
        } else {
            None
        }
    }

    /// True only when every day this value could denote is before `date`.
    pub fn is_definitely_before(&self, date: Date) -> bool {
        self.latest() < date
    }

    /// True only when every day this value could denote is after `date`.
    pub fn is_definitely_after(&self, date: Date) -> bool {
        self.earliest() > date
    }
}

impl From<Date> for PartialDate {
    fn from(d: Date) -> Self {
        Self::Full(d)
    }
}

impl fmt::Display for PartialDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Year(y) => write_date(f, *y, &[]),
            Self::YearMonth(y, m) => write_date(f, *y, &[*m]),
            Self::Full(d) => d.fmt(f),
        }
    }
}

/// The ASCII digits of `bytes[range]` as a number (at most 4 of them: no overflow); `None` if
/// any is not a digit.
fn digits(bytes: &[u8], range: std::ops::Range<usize>) -> Option<u32> {
    bytes[range].iter().try_fold(0, |n, &b| {
        b.is_ascii_digit().then(|| n * 10 + u32::from(b - b'0'))
    })
}

impl FromStr for PartialDate {
    type Err = DateError;
    /// `YYYY`, `YYYY-MM` or `YYYY-MM-DD`, told apart by length and the dashes' places: every
    /// part's digits are read before a value is checked, so a malformed text is always
    /// `Format`, as when the text was split on `-` (a search per part: ~450 instructions a
    /// date, a tenth of decoding a citizen's state, docs/benchmarks.md, 2026-12-06).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let b = s.as_bytes();
        let format = || DateError::Format(s.to_owned());
        let part = |range| digits(b, range).ok_or_else(format);
        match b.len() {
            4 => Self::year_only(part(0..4)?),
            7 if b[4] == b'-' => Self::year_month(part(0..4)?, part(5..7)?),
            10 if b[4] == b'-' && b[7] == b'-' => Ok(Self::Full(Date::new(
                part(0..4)?,
                part(5..7)?,
                part(8..10)?,
            )?)),
            _ => Err(format()),
        }
    }
}

impl TryFrom<String> for PartialDate {
    type Error = DateError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<PartialDate> for String {
    fn from(d: PartialDate) -> Self {
        d.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn leap_years_follow_the_gregorian_rule() {
        assert!(Date::new(2024, 2, 29).is_ok());
        assert!(Date::new(2000, 2, 29).is_ok());
        assert_eq!(
            Date::new(1900, 2, 29),
            Err(DateError::Day {
                year: 1900,
                month: 2,
                day: 29
            })
        );
        assert!(Date::new(2023, 2, 29).is_err());
        assert!(Date::new(2023, 4, 31).is_err());
        assert!(Date::new(2023, 13, 1).is_err());
        assert!(Date::new(0, 1, 1).is_err());
    }

    #[test]
    fn partial_dates_parse_each_precision() {
        assert_eq!("1999".parse::<PartialDate>(), Ok(PartialDate::Year(1999)));
        assert_eq!(
            "1999-07".parse::<PartialDate>(),
            Ok(PartialDate::YearMonth(1999, 7))
        );
        assert_eq!(
            "1999-07-21".parse::<PartialDate>().map(|d| d.to_string()),
            Ok("1999-07-21".to_owned())
        );
        for bad in [
            "99",
            "1999-7",
            "1999-07-1",
            "1999-00",
            "1999-02-30",
            "",
            "1999-07-21-1",
            "x999",
        ] {
            assert!(bad.parse::<PartialDate>().is_err(), "{bad}");
        }
        assert!(matches!(
            "1999-07".parse::<Date>(),
            Err(DateError::NotFull(_))
        ));
    }

    #[test]
    fn serde_uses_the_string_forms() {
        let d: PartialDate = serde_json::from_str("\"1999-07\"").unwrap();
        assert_eq!(serde_json::to_string(&d).unwrap(), "\"1999-07\"");
        assert!(serde_json::from_str::<PartialDate>("\"1999-13\"").is_err());
    }

    #[test]
    fn comparison_is_undecided_when_intervals_overlap() {
        let y: PartialDate = "1999".parse().unwrap();
        let ym: PartialDate = "1999-07".parse().unwrap();
        let d: PartialDate = "2000-01-01".parse().unwrap();
        assert_eq!(y.compare(&ym), None);
        assert_eq!(y.compare(&d), Some(Ordering::Less));
        assert_eq!(d.compare(&ym), Some(Ordering::Greater));
        assert_eq!(d.compare(&d), Some(Ordering::Equal));
        assert_eq!(y.compare(&y), None);
        assert_eq!(
            PartialDate::YearMonth(2024, 2).latest().to_string(),
            "2024-02-29"
        );
    }

    proptest! {
        #[test]
        fn display_parse_round_trips(y in 1u32..=9999, m in 1u32..=12, d in 1u32..=31, which in 0u8..3) {
            let pd = match which {
                0 => PartialDate::year_only(y).unwrap(),
                1 => PartialDate::year_month(y, m).unwrap(),
                _ => match Date::new(y, m, d) { Ok(d) => PartialDate::Full(d), Err(_) => return Ok(()) },
            };
            prop_assert_eq!(pd.to_string().parse::<PartialDate>(), Ok(pd));
            let padded = match pd {
                PartialDate::Year(y) => format!("{y:04}"),
                PartialDate::YearMonth(y, m) => format!("{y:04}-{m:02}"),
                PartialDate::Full(d) => format!("{:04}-{:02}-{:02}", d.year, d.month, d.day),
            };
            prop_assert_eq!(pd.to_string(), padded);
        }

        /// Any text: the same answer as splitting into a `Vec` and `str::parse`, as before —
        /// for text of every shape, near-dates (a part one digit short or long, a year 0, a
        /// month 13) and text that is not ASCII.
        #[test]
        fn parsing_any_text_agrees_with_the_plain_reading(
            s in "[0-9+ -]{0,12}|[0-9]{4}([0-9+-][0-9]{1,3}){0,3}|[0-9é-]{0,10}"
        ) {
            let plain = |s: &str| -> Result<PartialDate, DateError> {
                let bad = || DateError::Format(s.to_owned());
                let num = |p: &str, w: usize| -> Result<u32, DateError> {
                    if p.len() != w || !p.bytes().all(|b| b.is_ascii_digit()) {
                        return Err(bad());
                    }
                    p.parse().map_err(|_| bad())
                };
                match s.split('-').collect::<Vec<_>>().as_slice() {
                    [y] => PartialDate::year_only(num(y, 4)?),
                    [y, m] => PartialDate::year_month(num(y, 4)?, num(m, 2)?),
                    [y, m, d] => Ok(PartialDate::Full(Date::new(num(y, 4)?, num(m, 2)?, num(d, 2)?)?)),
                    _ => Err(bad()),
                }
            };
            prop_assert_eq!(s.parse::<PartialDate>(), plain(&s));
        }
    }
}
