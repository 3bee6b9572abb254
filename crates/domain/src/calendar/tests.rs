use proptest::prelude::*;

use super::*;

fn d(s: &str) -> Date {
    s.parse().unwrap()
}

#[test]
fn the_data_file_parses_and_every_holiday_has_a_source() {
    let years = WorkingCalendar::listed(WorkingCalendar::vietnam_source()).unwrap();
    let listed: Vec<u16> = years.iter().map(|(y, _)| *y).collect();
    assert_eq!(listed, [2025, 2026, 2027]);
    for (year, holidays) in &years {
        assert!(!holidays.is_empty(), "{year}");
        for h in holidays {
            assert_eq!(h.date.year(), *year, "{h:?} listed under {year}");
            assert!(!h.source.trim().is_empty(), "{h:?} has no source");
            // A holiday on a weekend is no day off on its own: the file lists
            // its compensation day instead, and the weekday is what counts.
            assert!(
                weekday(h.date) < 5 || h.source.contains("Saturday"),
                "{h:?}"
            );
        }
    }
    let calendar = WorkingCalendar::vietnam();
    assert_eq!(calendar.covers(2026), Some("announced"));
    assert_eq!(calendar.covers(2027), Some("statutory-only"));
    assert_eq!(calendar.covers(2031), None);
}

#[test]
fn weekdays_and_day_numbers_round_trip() {
    assert_eq!(weekday(d("1970-01-01")), 3);
    assert_eq!(weekday(d("2026-12-01")), 1); // a Tuesday
    assert_eq!(weekday(d("2026-02-14")), 5); // Saturday, first day of the Tet break
    for s in [
        "1970-01-01",
        "2000-02-29",
        "2024-12-31",
        "2025-01-01",
        "2100-03-01",
    ] {
        assert_eq!(date_from_days(days_since_epoch(d(s))), Some(d(s)));
    }
    assert_eq!(next_day(d("2025-12-31")), Some(d("2026-01-01")));
    assert_eq!(next_day(d("2024-02-28")), Some(d("2024-02-29")));
}

#[test]
fn a_tet_week_is_skipped() {
    let c = WorkingCalendar::vietnam();
    // Friday 13 Feb 2026; the break runs Saturday 14 to Sunday 22 February.
    assert!(c.is_working_day(d("2026-02-13")));
    for day in 14..=22 {
        assert!(!c.is_working_day(d(&format!("2026-02-{day}"))), "{day}");
    }
    assert_eq!(
        c.add_working_days(d("2026-02-13"), 1),
        Some(d("2026-02-23"))
    );
    assert_eq!(
        c.add_working_days(d("2026-02-12"), 2),
        Some(d("2026-02-23"))
    );
    // Ten days from 10 Feb end on Friday 20 Feb, a Tet day: the period runs to
    // the next working day.
    assert_eq!(c.add_days(d("2026-02-10"), 10), Some(d("2026-02-23")));
}

#[test]
fn a_weekend_is_skipped() {
    let c = WorkingCalendar::vietnam();
    // Thursday 3 Dec 2026 + 2 working days = Monday 7 Dec.
    assert_eq!(
        c.add_working_days(d("2026-12-03"), 2),
        Some(d("2026-12-07"))
    );
    // Submitted on a Saturday: Monday counts one, Tuesday two.
    assert_eq!(
        c.add_working_days(d("2026-12-05"), 2),
        Some(d("2026-12-08"))
    );
    // Ten days from Wednesday 2 Dec end on Saturday 12 Dec: Monday 14 Dec.
    assert_eq!(c.add_days(d("2026-12-02"), 10), Some(d("2026-12-14")));
}

#[test]
fn a_year_boundary_is_crossed() {
    let c = WorkingCalendar::vietnam();
    // Wednesday 30 Dec 2026 + 2 working days: Thursday 31, (1 Jan holiday), Monday 4 Jan.
    assert_eq!(
        c.add_working_days(d("2026-12-30"), 2),
        Some(d("2027-01-04"))
    );
    // 1 May 2027 is a Saturday: its compensation day, Monday 3 May, is off.
    assert!(!c.is_working_day(d("2027-05-03")));
    assert_eq!(
        c.add_working_days(d("2027-04-29"), 1),
        Some(d("2027-05-04"))
    );
}

#[test]
fn a_make_up_saturday_is_a_working_day() {
    let c = WorkingCalendar::from_json(
        r#"{"years": [{"year": 2030, "status": "announced",
            "holidays": [{"date": "2030-01-02", "name": "bridge", "source": "test"}],
            "make_up_working_days": [{"date": "2030-01-05", "name": "make-up", "source": "test"}]}]}"#,
    )
    .unwrap();
    assert!(!c.is_working_day(d("2030-01-02")));
    assert!(c.is_working_day(d("2030-01-05")));
    // Tuesday 1 Jan (no holiday in this file) + 3: Thursday 3, Friday 4, Saturday 5.
    assert_eq!(
        c.add_working_days(d("2030-01-01"), 3),
        Some(d("2030-01-05"))
    );
}

fn any_date() -> impl Strategy<Value = Date> {
    (2024u32..=2028, 1u32..=12, 1u32..=28).prop_map(|(y, m, d)| Date::new(y, m, d).unwrap())
}

proptest! {
    #[test]
    fn due_dates_are_working_days_not_before_their_start(start in any_date(), n in 0u32..40) {
        let c = WorkingCalendar::vietnam();
        let due = c.add_working_days(start, n).unwrap();
        prop_assert!(c.is_working_day(due));
        prop_assert!(due >= start);
        if n > 0 {
            prop_assert!(due > start);
        }
        let due = c.add_days(start, n).unwrap();
        prop_assert!(c.is_working_day(due));
        prop_assert!(days_since_epoch(due) >= days_since_epoch(start) + i64::from(n));
    }

    #[test]
    fn one_more_working_day_is_later(start in any_date(), n in 1u32..30) {
        // From n = 1 on (zero working days after a Saturday is the Monday, as is one).
        let c = WorkingCalendar::vietnam();
        prop_assert!(c.add_working_days(start, n + 1) > c.add_working_days(start, n));
    }
}
